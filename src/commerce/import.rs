//! `lux import stripe|woocommerce FILE --company ID`: exported Stripe events or WooCommerce
//! REST API v3 orders, as a JSON array, one JSON object, or JSON lines. Each record goes
//! through the same path as a verified webhook, in its own transaction: a bad record is
//! skipped with its reason and never stops the rest.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};

use serde_json::Value;
use sqlx::PgPool;

use super::apply::{Applied, ApplyError, apply_verified};
use super::deliveries::{Channel, Delivery};
use super::secrets::{Provider, SecretsKey};
use crate::clock::Clock;
use crate::ids::CompanyId;

#[derive(Debug, Default)]
pub struct ImportSummary {
    pub read: usize,
    pub imported: usize,
    pub duplicates: usize,
    pub ignored: usize,
    /// Reason → count.
    pub skipped: BTreeMap<String, usize>,
}

impl ImportSummary {
    pub fn skipped_total(&self) -> usize {
        self.skipped.values().sum()
    }
}

/// Why a record could not be read from the file.
#[derive(Debug, thiserror::Error)]
enum RecordError {
    #[error("the file is not a valid JSON array: {0}")]
    NotAnArray(#[source] serde_json::Error),
    #[error("malformed JSON line: {0}")]
    MalformedLine(#[source] serde_json::Error),
}

/// Splits a file into records: a JSON array's elements, a single object, or JSON lines
/// (a line that does not parse is one skipped record, not a failed import).
fn records(text: &str) -> Vec<Result<Vec<u8>, RecordError>> {
    let trimmed = text.trim_start();
    if trimmed.starts_with('[') {
        return match serde_json::from_str::<Vec<Value>>(trimmed) {
            Ok(items) => items
                .into_iter()
                .map(|v| Ok(serde_json::to_vec(&v).expect("a Value serialises")))
                .collect(),
            Err(e) => vec![Err(RecordError::NotAnArray(e))],
        };
    }
    if let Ok(single) = serde_json::from_str::<Value>(trimmed)
        && single.is_object()
    {
        return vec![Ok(trimmed.as_bytes().to_vec())];
    }
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            serde_json::from_str::<Value>(line)
                .map(|_| line.as_bytes().to_vec())
                .map_err(RecordError::MalformedLine)
        })
        .collect()
}

pub async fn run(
    owner: &PgPool,
    key: &SecretsKey,
    company: CompanyId,
    provider: Provider,
    text: &str,
    clock: &Clock,
) -> Result<ImportSummary, crate::tenancy::TenancyError> {
    crate::tenancy::require_company(owner, company).await?;
    let company_id = company.uuid();
    let mut summary = ImportSummary::default();
    let terminal = std::io::stderr().is_terminal();
    for record in records(text) {
        summary.read += 1;
        let payload = match record {
            Ok(payload) => payload,
            Err(reason) => {
                *summary.skipped.entry(reason.to_string()).or_default() += 1;
                continue;
            }
        };
        let delivery = Delivery {
            company_id,
            provider,
            channel: Channel::Import,
            payload: &payload,
            received_at: clock.now(),
        };
        match import_one(owner, key, &delivery).await {
            Ok(Applied::Order(_)) => summary.imported += 1,
            Ok(Applied::Duplicate) => summary.duplicates += 1,
            Ok(Applied::Ignored(_)) => summary.ignored += 1,
            Err(problem) => {
                if let ApplyError::Database(error) = &problem {
                    tracing::warn!(error = %error, "import record failed");
                }
                *summary.skipped.entry(problem.to_string()).or_default() += 1;
            }
        }
        if terminal && summary.read.is_multiple_of(50) {
            eprint!(
                "\rread {}  imported {}  skipped {}",
                summary.read,
                summary.imported,
                summary.skipped_total()
            );
            let _ = std::io::stderr().flush();
        }
    }
    if terminal {
        eprintln!();
    }
    Ok(summary)
}

/// One record in its own transaction: a problem with the record keeps it in the delivery
/// log, a database error keeps nothing.
async fn import_one(
    owner: &PgPool,
    key: &SecretsKey,
    delivery: &Delivery<'_>,
) -> Result<Applied, ApplyError> {
    let mut tx = owner.begin().await?;
    crate::db::set_company(&mut tx, delivery.company_id).await?;
    let applied = match apply_verified(&mut tx, key, delivery, None).await {
        Err(ApplyError::Database(error)) => return Err(error.into()),
        applied => applied,
    };
    tx.commit().await?;
    applied
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_arrays_objects_or_json_lines() {
        assert_eq!(records(r#"[{"a":1},{"b":2}]"#).len(), 2);
        assert_eq!(records(r#"{"a":1}"#).len(), 1);
        let lines = records("{\"a\":1}\nnot json\n\n{\"b\":2}\n");
        assert_eq!(lines.len(), 3);
        assert!(lines[1].is_err());
    }
}
