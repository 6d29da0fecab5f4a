//! The creative catalog: `lux import creatives FILE --company ID` reads a CSV with the header
//! [`FIELDS`] and upserts it into `creatives` by `(company_id, creative_id)`. Each bad line is
//! skipped with its line number and reason; the rest is written.

use chrono::NaiveDate;
use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

/// The header, exactly (SPEC §8.2).
pub const FIELDS: [&str; 8] = [
    "creative_id",
    "name",
    "platform",
    "campaign",
    "concept",
    "angle",
    "format",
    "launched_on",
];
/// Rows per upsert statement.
pub const BATCH_ROWS: usize = 1_000;
/// Longest `creative_id` (as the table's check says).
const MAX_ID_CHARS: usize = 200;
/// Skipped lines listed one by one in the summary (all are counted).
const SKIPPED_LISTED: usize = 1_000;

/// A line left out, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Skipped {
    pub line: u64,
    pub reason: String,
}

/// What `lux import creatives` prints.
#[derive(Debug, Serialize)]
pub struct ImportSummary {
    pub company_id: Uuid,
    /// Data lines read (blank lines not counted).
    pub lines: u64,
    pub stored: usize,
    pub updated: usize,
    /// Lines identical to the row already stored.
    pub unchanged: usize,
    pub skipped_total: usize,
    /// The first skipped lines (up to 1000), with their reasons.
    pub skipped: Vec<Skipped>,
}

/// Why a whole file was refused.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("no company {0} (see `lux company list`)")]
    NoCompany(Uuid),
    #[error("the file has no header line; expected {}", FIELDS.join(","))]
    NoHeader,
    #[error("line 1: {0}")]
    Header(String),
    #[error("writing creatives")]
    Database(#[from] sqlx::Error),
}

/// One valid line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Creative {
    pub creative_id: String,
    pub name: Option<String>,
    pub platform: Option<String>,
    pub campaign: Option<String>,
    pub concept: Option<String>,
    pub angle: Option<String>,
    pub format: Option<String>,
    pub launched_on: NaiveDate,
}

/// The file read and checked: valid creatives (with their line numbers) and skipped lines.
#[derive(Debug, Default)]
pub struct Parsed {
    pub lines: u64,
    pub creatives: Vec<(u64, Creative)>,
    pub skipped: Vec<Skipped>,
}

/// Reads the CSV text. Refuses the whole file only for its header; every other problem is
/// its line's.
pub fn parse(text: &str) -> Result<Parsed, ImportError> {
    let text = keep_blank_lines(text.strip_prefix('\u{feff}').unwrap_or(text));
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut records = reader.records();
    check_header(&mut records)?;
    let mut parsed = Parsed::default();
    let mut seen = FirstWins::default();
    for record in records {
        let (line, result) = match record {
            Ok(r) if r.iter().all(|c| c.trim().is_empty()) => continue,
            Ok(r) => (line_of(r.position()), line_to_creative(&r)),
            Err(e) => (line_of(e.position()), Err(e.to_string())),
        };
        parsed.lines += 1;
        let result = result.and_then(|c| seen.check(c, line, "line"));
        match result {
            Ok(creative) => parsed.creatives.push((line, creative)),
            Err(reason) => parsed.skipped.push(Skipped { line, reason }),
        }
    }
    Ok(parsed)
}

fn line_of(position: Option<&csv::Position>) -> u64 {
    position.map_or(0, |p| p.line())
}

/// Puts a space on every empty line: the CSV reader skips empty lines and then numbers the
/// next record from the empty one; as a record of its own (skipped by us as blank) every line
/// number stays right.
fn keep_blank_lines(text: &str) -> String {
    text.split_inclusive('\n')
        .map(|line| {
            if line == "\n" || line == "\r\n" {
                format!(" {line}")
            } else {
                line.to_owned()
            }
        })
        .collect()
}

/// The header must be exactly [`FIELDS`] (case and spaces aside): an unknown or missing
/// column would silently drop data.
fn check_header(records: &mut csv::StringRecordsIter<'_, &[u8]>) -> Result<(), ImportError> {
    let header = loop {
        match records.next() {
            None | Some(Err(_)) => return Err(ImportError::NoHeader),
            Some(Ok(r)) if r.iter().all(|c| c.trim().is_empty()) => continue,
            Some(Ok(r)) => break r,
        }
    };
    let names: Vec<String> = header
        .iter()
        .map(|n| n.trim().to_ascii_lowercase())
        .collect();
    if let Some(unknown) = names.iter().find(|n| !FIELDS.contains(&n.as_str())) {
        return Err(ImportError::Header(format!(
            "unknown column {:?}; the header must be {}",
            unknown.chars().take(60).collect::<String>(),
            FIELDS.join(",")
        )));
    }
    if names != FIELDS {
        return Err(ImportError::Header(format!(
            "the header must be exactly {}",
            FIELDS.join(",")
        )));
    }
    Ok(())
}

/// One statement cannot upsert the same key twice: the first line (or item) with a
/// `creative_id` wins, and a later one is refused naming it.
#[derive(Default)]
pub struct FirstWins(std::collections::HashMap<String, u64>);

impl FirstWins {
    /// `creative` at `at` (a line number, an item index), or why not: `what` names `at`.
    pub fn check(&mut self, creative: Creative, at: u64, what: &str) -> Result<Creative, String> {
        match self.0.get(&creative.creative_id) {
            Some(first) => Err(format!(
                "creative_id {:?} repeats {what} {first}",
                creative.creative_id
            )),
            None => {
                self.0.insert(creative.creative_id.clone(), at);
                Ok(creative)
            }
        }
    }
}

fn line_to_creative(record: &csv::StringRecord) -> Result<Creative, String> {
    if record.len() != FIELDS.len() {
        return Err(format!(
            "{} cells where the header has {} (a comma in a value without quotes?)",
            record.len(),
            FIELDS.len()
        ));
    }
    let cells: [&str; 8] = std::array::from_fn(|i| &record[i]);
    Creative::from_fields(cells.map(Some))
}

impl Creative {
    /// Checks one creative's fields, given in the order of [`FIELDS`] (a CSV line's cells, a
    /// JSON item's values); blank or absent is none. The one validation of the CSV import and
    /// `POST /api/v1/creatives`.
    pub fn from_fields(fields: [Option<&str>; 8]) -> Result<Creative, String> {
        let cell = |i: usize| {
            let value = fields[i].unwrap_or_default().trim();
            (!value.is_empty()).then(|| value.to_owned())
        };
        Creative::from_cells(cell)
    }

    fn from_cells(cell: impl Fn(usize) -> Option<String>) -> Result<Creative, String> {
        let creative_id = cell(0).ok_or("creative_id is missing")?;
        if creative_id.chars().count() > MAX_ID_CHARS {
            return Err(format!(
                "creative_id is longer than {MAX_ID_CHARS} characters"
            ));
        }
        let launched_on = cell(7).ok_or("launched_on is missing")?;
        let launched_on = NaiveDate::parse_from_str(&launched_on, "%Y-%m-%d")
            .ok()
            .filter(|_| launched_on.len() == 10)
            .ok_or_else(|| format!("launched_on {launched_on:?} is not a date YYYY-MM-DD"))?;
        Ok(Creative {
            creative_id,
            name: cell(1),
            platform: cell(2),
            campaign: cell(3),
            concept: cell(4),
            angle: cell(5),
            format: cell(6),
            launched_on,
        })
    }
}

/// Upserts checked creatives for one company through `pool`, [`BATCH_ROWS`] per
/// transaction. Returns (stored, updated); the rest were unchanged.
pub async fn store(
    pool: &PgPool,
    company_id: Uuid,
    creatives: &[(u64, Creative)],
) -> Result<(usize, usize), sqlx::Error> {
    let (mut stored, mut updated) = (0, 0);
    for batch in creatives.chunks(BATCH_ROWS) {
        let (s, u) = upsert(pool, company_id, batch).await?;
        stored += s;
        updated += u;
    }
    Ok((stored, updated))
}

/// Imports a CSV of creatives for one company through `pool` (the service's role: row-level
/// security applies), [`BATCH_ROWS`] rows per transaction.
pub async fn import(
    pool: &PgPool,
    company_id: Uuid,
    text: &str,
) -> Result<ImportSummary, ImportError> {
    let parsed = parse(text)?;
    check_company(pool, company_id).await?;
    let (stored, updated) = store(pool, company_id, &parsed.creatives).await?;
    let mut skipped = parsed.skipped;
    skipped.sort_by_key(|s| s.line);
    Ok(ImportSummary {
        company_id,
        lines: parsed.lines,
        stored,
        updated,
        unchanged: parsed.creatives.len() - stored - updated,
        skipped_total: skipped.len(),
        skipped: skipped.into_iter().take(SKIPPED_LISTED).collect(),
    })
}

/// The company must exist (read in a transaction scoped to it, so a wrong id reads nothing).
async fn check_company(pool: &PgPool, company_id: Uuid) -> Result<(), ImportError> {
    let mut tx = crate::db::begin_for_company(pool, company_id).await?;
    let found: Option<Uuid> =
        sqlx::query_scalar("SELECT company_id FROM companies WHERE company_id = $1")
            .bind(company_id)
            .fetch_optional(&mut *tx)
            .await?;
    tx.commit().await?;
    found.map(|_| ()).ok_or(ImportError::NoCompany(company_id))
}

/// Upserts one batch; rows whose values are all the same are left alone (their `updated_at`
/// does not move). Returns (stored, updated).
async fn upsert(
    pool: &PgPool,
    company_id: Uuid,
    batch: &[(u64, Creative)],
) -> Result<(usize, usize), sqlx::Error> {
    let column = |f: fn(&Creative) -> Option<String>| -> Vec<Option<String>> {
        batch.iter().map(|(_, c)| f(c)).collect()
    };
    let ids: Vec<String> = batch.iter().map(|(_, c)| c.creative_id.clone()).collect();
    let dates: Vec<NaiveDate> = batch.iter().map(|(_, c)| c.launched_on).collect();
    let mut tx = crate::db::begin_for_company(pool, company_id).await?;
    let inserted: Vec<bool> = sqlx::query_scalar(
        "INSERT INTO creatives AS c (company_id, creative_id, name, platform, campaign, concept,
                                     angle, format, launched_on)
         SELECT $1, * FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                                  $7::text[], $8::text[], $9::date[])
         ON CONFLICT (company_id, creative_id) DO UPDATE
            SET name = EXCLUDED.name, platform = EXCLUDED.platform,
                campaign = EXCLUDED.campaign, concept = EXCLUDED.concept,
                angle = EXCLUDED.angle, format = EXCLUDED.format,
                launched_on = EXCLUDED.launched_on, updated_at = now()
          WHERE (c.name, c.platform, c.campaign, c.concept, c.angle, c.format, c.launched_on)
                IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.platform, EXCLUDED.campaign,
                                  EXCLUDED.concept, EXCLUDED.angle, EXCLUDED.format,
                                  EXCLUDED.launched_on)
         RETURNING (xmax = 0)",
    )
    .bind(company_id)
    .bind(ids)
    .bind(column(|c| c.name.clone()))
    .bind(column(|c| c.platform.clone()))
    .bind(column(|c| c.campaign.clone()))
    .bind(column(|c| c.concept.clone()))
    .bind(column(|c| c.angle.clone()))
    .bind(column(|c| c.format.clone()))
    .bind(dates)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    let stored = inserted.iter().filter(|i| **i).count();
    Ok((stored, inserted.len() - stored))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "creative_id,name,platform,campaign,concept,angle,format,launched_on\n";

    #[test]
    fn bad_lines_are_named_by_line_number_and_blank_lines_count() {
        let text = format!(
            "{HEADER}c1,One,meta,bf,ugc,price,video,2026-11-01\n\n,x,,,,,,2026-11-01\n\
             c2,,,,,,,2026-13-01\nc1,dup,,,,,,2026-11-01\nc3,,,,,,,2026-11-02,extra\n"
        );
        let parsed = parse(&text).unwrap();
        assert_eq!(parsed.creatives.len(), 1);
        assert_eq!(parsed.creatives[0].1.angle.as_deref(), Some("price"));
        let lines: Vec<u64> = parsed.skipped.iter().map(|s| s.line).collect();
        assert_eq!(lines, [4, 5, 6, 7]);
        assert!(parsed.skipped[2].reason.contains("repeats line 2"));
    }

    #[test]
    fn an_unknown_column_refuses_the_file() {
        let error = parse("creative_id,name,colour\n").unwrap_err();
        assert!(
            error.to_string().contains("unknown column \"colour\""),
            "{error}"
        );
        assert!(parse("creative_id,name\n").is_err());
        assert!(matches!(parse(""), Err(ImportError::NoHeader)));
    }
}
