//! The consent ledger (`consent_events`, append-only): every consent change, from the snippet,
//! the API, GPC, a person's opt-out request and the email/SMS providers, with its purpose,
//! value, source, notice version and time. `consent_current` is the state a person is in.

use chrono::{DateTime, Utc};
use sqlx::{Postgres, Transaction};
use uuid::Uuid;

/// What a consent is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Purpose {
    Analytics,
    Marketing,
    /// CCPA "sale or sharing": what GPC opts out of.
    SaleSharing,
}

impl Purpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Analytics => "analytics",
            Purpose::Marketing => "marketing",
            Purpose::SaleSharing => "sale_sharing",
        }
    }
}

/// A change to append: `subject_kind` is 'visitor', 'user', 'email' or 'phone' and `subject`
/// the identifier (hashes in hex).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub subject_kind: &'static str,
    pub subject: String,
    pub purpose: Purpose,
    pub granted: bool,
    pub source: String,
    pub notice_version: Option<String>,
    pub message_id: Option<String>,
    pub at: DateTime<Utc>,
}

/// Appends `changes` as they are. Returns the rows appended.
pub async fn append(
    tx: &mut Transaction<'_, Postgres>,
    company_id: Uuid,
    changes: &[Change],
) -> Result<u64, sqlx::Error> {
    if changes.is_empty() {
        return Ok(0);
    }
    let ids: Vec<Uuid> = changes.iter().map(|_| Uuid::now_v7()).collect();
    let kinds: Vec<&str> = changes.iter().map(|c| c.subject_kind).collect();
    let subjects: Vec<&str> = changes.iter().map(|c| c.subject.as_str()).collect();
    let purposes: Vec<&str> = changes.iter().map(|c| c.purpose.as_str()).collect();
    let granted: Vec<bool> = changes.iter().map(|c| c.granted).collect();
    let sources: Vec<&str> = changes.iter().map(|c| c.source.as_str()).collect();
    let notices: Vec<Option<&str>> = changes
        .iter()
        .map(|c| c.notice_version.as_deref())
        .collect();
    let messages: Vec<Option<&str>> = changes.iter().map(|c| c.message_id.as_deref()).collect();
    let at: Vec<DateTime<Utc>> = changes.iter().map(|c| c.at).collect();
    Ok(sqlx::query(
        "INSERT INTO consent_events (company_id, consent_id, subject_kind, subject, purpose,
             granted, source, notice_version, message_id, recorded_at)
         SELECT $1, * FROM unnest($2::uuid[], $3::text[], $4::text[], $5::text[], $6::bool[],
             $7::text[], $8::text[], $9::text[], $10::timestamptz[])",
    )
    .bind(company_id)
    .bind(&ids)
    .bind(&kinds)
    .bind(&subjects)
    .bind(&purposes)
    .bind(&granted)
    .bind(&sources)
    .bind(&notices)
    .bind(&messages)
    .bind(&at)
    .execute(&mut **tx)
    .await?
    .rows_affected())
}

/// Appends those of `changes` (visitor subjects, in time order) that differ from the
/// subject's state: the latest recorded value, or an earlier change of the same batch. Events
/// repeat their consent flags on every hit; the ledger keeps only the changes. One read of the
/// visitors' current state per batch, and only for batches that state a choice.
pub async fn append_visitor_changes(
    tx: &mut Transaction<'_, Postgres>,
    company_id: Uuid,
    changes: Vec<Change>,
) -> Result<u64, sqlx::Error> {
    if changes.is_empty() {
        return Ok(0);
    }
    let mut subjects: Vec<String> = changes.iter().map(|c| c.subject.clone()).collect();
    subjects.sort_unstable();
    subjects.dedup();
    let current: Vec<(String, String, bool)> = sqlx::query_as(
        "SELECT DISTINCT ON (subject, purpose) subject, purpose, granted
         FROM consent_events
         WHERE company_id = $1 AND subject_kind = 'visitor' AND subject = ANY($2)
         ORDER BY subject, purpose, recorded_at DESC, consent_id DESC",
    )
    .bind(company_id)
    .bind(&subjects)
    .fetch_all(&mut **tx)
    .await?;
    let mut state: std::collections::HashMap<(String, &'static str), bool> = current
        .into_iter()
        .filter_map(|(subject, purpose, granted)| {
            let purpose = [Purpose::Analytics, Purpose::Marketing, Purpose::SaleSharing]
                .into_iter()
                .find(|p| p.as_str() == purpose)?;
            Some(((subject, purpose.as_str()), granted))
        })
        .collect();
    let fresh: Vec<Change> = changes
        .into_iter()
        .filter(|c| {
            let key = (c.subject.clone(), c.purpose.as_str());
            state.insert(key, c.granted) != Some(c.granted)
        })
        .collect();
    append(tx, company_id, &fresh).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purposes_have_the_names_of_the_table() {
        assert_eq!(Purpose::SaleSharing.as_str(), "sale_sharing");
        assert_eq!(Purpose::Analytics.as_str(), "analytics");
        assert_eq!(Purpose::Marketing.as_str(), "marketing");
    }
}
