//! `lux import sends FILE --company ID`: a CSV with the fields of `POST /api/v1/messages` as
//! its header, read batch by batch on a thread while the database writes the previous batch.
//! Each bad line is skipped with its line number and reason; the rest is written.

use std::io::Read;
use std::time::Instant;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

use super::{FIELDS, NewSend, Origin, SendFields, shorten, store_in_transaction};

/// Lines per upsert.
pub const BATCH_LINES: usize = 5_000;
/// Skipped lines listed one by one in the summary (all are counted).
const SKIPPED_LISTED: usize = 1_000;

/// A line left out, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Skipped {
    pub line: u64,
    pub reason: String,
}

/// Counts so far, handed to the caller's progress display after each batch.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Progress {
    /// Data lines read (blank lines not counted).
    pub lines: u64,
    pub stored: usize,
    pub updated: usize,
    pub unchanged: usize,
    /// Valid lines not stored: tracking off, or a suppressed email.
    pub suppressed: usize,
    pub skipped: usize,
}

/// What `lux import sends` prints.
#[derive(Debug, Serialize)]
pub struct ImportSummary {
    pub company_id: Uuid,
    pub lines: u64,
    pub stored: usize,
    pub updated: usize,
    pub unchanged: usize,
    /// Valid lines not stored: tracking off, or a suppressed email.
    pub suppressed: usize,
    pub skipped_total: usize,
    /// The first skipped lines (up to 1000), with their reasons.
    pub skipped: Vec<Skipped>,
    pub seconds: f64,
    pub lines_per_second: u64,
}

/// Why a whole file was refused. Lines already written stay (they are complete sends, and a
/// second run of the same file changes nothing).
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("no company {0} (see `lux company list`)")]
    NoCompany(Uuid),
    #[error("reading the file")]
    Read(#[source] std::io::Error),
    #[error("the file has no header line; expected {}", FIELDS.join(","))]
    NoHeader,
    #[error("line 1: {0}")]
    Header(String),
    #[error("writing message_sends")]
    Database(#[from] sqlx::Error),
}

/// Imports a CSV of sends for one company through `pool` (the service's role: row-level
/// security applies), [`BATCH_LINES`] lines per transaction. A thread reads, checks and
/// hashes the next batch while the database writes the last one. `progress` is called after
/// each batch.
pub async fn run(
    pool: &PgPool,
    company_id: Uuid,
    file: impl Read + Send + 'static,
    now: DateTime<Utc>,
    progress: &mut dyn FnMut(&Progress),
) -> Result<ImportSummary, ImportError> {
    let started = Instant::now();
    let hash_key = company_hash_key(pool, company_id).await?;
    // Two batches ahead at most: memory stays bounded whatever the file's size.
    let (sender, mut batches) = tokio::sync::mpsc::channel(2);
    std::thread::spawn(move || read_file(file, &hash_key, now, &sender));
    let mut counts = Progress::default();
    let mut skipped = Vec::new();
    while let Some(batch) = batches.recv().await {
        let batch: Batch = batch?;
        counts.lines += batch.lines;
        skipped.extend(batch.skipped);
        if !batch.sends.is_empty() {
            let outcome =
                store_in_transaction(pool, company_id, Origin::Import, batch.sends).await?;
            counts.stored += outcome.stored;
            counts.updated += outcome.updated;
            counts.unchanged += outcome.unchanged;
            counts.suppressed += outcome.suppressed;
            skipped.extend(outcome.conflicts.into_iter().map(|(line, c)| Skipped {
                line: line as u64,
                reason: c.reason("line"),
            }));
        }
        counts.skipped = skipped.len();
        progress(&counts);
    }
    skipped.sort_by_key(|s| s.line);
    let seconds = started.elapsed().as_secs_f64();
    Ok(ImportSummary {
        company_id,
        lines: counts.lines,
        stored: counts.stored,
        updated: counts.updated,
        unchanged: counts.unchanged,
        suppressed: counts.suppressed,
        skipped_total: skipped.len(),
        skipped: skipped.into_iter().take(SKIPPED_LISTED).collect(),
        seconds,
        lines_per_second: (counts.lines as f64 / seconds.max(1e-6)) as u64,
    })
}

/// Up to [`BATCH_LINES`] lines of the file, read and checked.
struct Batch {
    /// Data lines read (blank ones not counted).
    lines: u64,
    sends: Vec<(usize, NewSend)>,
    skipped: Vec<Skipped>,
}

/// Reads the file batch by batch into `sender`, until the end, an error (sent as the last
/// message), or the receiver is gone (the import failed).
fn read_file(
    file: impl Read,
    hash_key: &[u8],
    now: DateTime<Utc>,
    sender: &tokio::sync::mpsc::Sender<Result<Batch, ImportError>>,
) {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(KeepBlankLines::new(file));
    let mut records = reader.records();
    let columns = match read_header(&mut records) {
        Ok(columns) => columns,
        Err(error) => {
            let _ = sender.blocking_send(Err(error));
            return;
        }
    };
    loop {
        let mut skipped = Vec::new();
        let (sends, done) = match read_batch(&mut records, &columns, hash_key, now, &mut skipped) {
            Ok(read) => read,
            Err(error) => {
                let _ = sender.blocking_send(Err(error));
                return;
            }
        };
        let lines = (sends.len() + skipped.len()) as u64;
        let batch = Batch {
            lines,
            sends,
            skipped,
        };
        if sender.blocking_send(Ok(batch)).is_err() || done {
            return;
        }
    }
}

/// The company's hash key, read in a transaction scoped to it (so a wrong id reads nothing).
async fn company_hash_key(pool: &PgPool, company_id: Uuid) -> Result<Vec<u8>, ImportError> {
    let mut tx = crate::db::begin_for_company(pool, company_id).await?;
    let key: Option<Vec<u8>> =
        sqlx::query_scalar("SELECT hash_key FROM companies WHERE company_id = $1")
            .bind(company_id)
            .fetch_optional(&mut *tx)
            .await?;
    tx.commit().await?;
    key.ok_or(ImportError::NoCompany(company_id))
}

/// Puts a space on every empty line. The CSV reader skips empty lines, and a record after
/// one is then said to start on the empty line: with a space there, the empty line is a
/// record of its own (skipped by us as blank) and every line number is right. Inside a quoted
/// cell the space changes nothing that matters: a cell spanning lines holds a control
/// character and is refused anyway.
struct KeepBlankLines<R> {
    inner: R,
    out: Vec<u8>,
    at: usize,
    at_line_start: bool,
}

impl<R: Read> KeepBlankLines<R> {
    fn new(inner: R) -> Self {
        KeepBlankLines {
            inner,
            out: Vec::with_capacity(70_000),
            at: 0,
            at_line_start: true,
        }
    }
}

impl<R: Read> Read for KeepBlankLines<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.at == self.out.len() {
            let mut chunk = [0u8; 64 * 1024];
            let n = self.inner.read(&mut chunk)?;
            self.out.clear();
            self.at = 0;
            for &byte in &chunk[..n] {
                if self.at_line_start && (byte == b'\n' || byte == b'\r') {
                    self.out.push(b' ');
                }
                self.out.push(byte);
                self.at_line_start = byte == b'\n';
            }
        }
        let n = buf.len().min(self.out.len() - self.at);
        buf[..n].copy_from_slice(&self.out[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

type Records<'r, R> = csv::StringRecordsIter<'r, KeepBlankLines<R>>;

/// The header: which field each column holds. Every column must be a known field (a typo
/// would silently drop a column), and the required ones must be there.
fn read_header<R: Read>(records: &mut Records<'_, R>) -> Result<Vec<&'static str>, ImportError> {
    let header = loop {
        match records.next() {
            None => return Err(ImportError::NoHeader),
            Some(Err(e)) => return Err(csv_fatal(e).unwrap_or(ImportError::NoHeader)),
            Some(Ok(record)) if record.iter().all(|c| c.trim().is_empty()) => continue,
            Some(Ok(record)) => break record,
        }
    };
    let mut columns = Vec::with_capacity(header.len());
    for name in header.iter().map(|n| n.trim().to_ascii_lowercase()) {
        let Some(field) = FIELDS.iter().find(|f| **f == name) else {
            return Err(ImportError::Header(format!(
                "unknown column {:?}; the header must name only {}",
                shorten(&name),
                FIELDS.join(",")
            )));
        };
        if columns.contains(field) {
            return Err(ImportError::Header(format!("column {field} appears twice")));
        }
        columns.push(*field);
    }
    let missing: Vec<&str> = ["message_id", "provider", "recipient", "sent_at"]
        .into_iter()
        .filter(|f| !columns.contains(f))
        .collect();
    if !missing.is_empty() {
        return Err(ImportError::Header(format!(
            "missing column(s) {}; expected {}",
            missing.join(", "),
            FIELDS.join(",")
        )));
    }
    Ok(columns)
}

/// An I/O failure stops the import; anything else about a record is that line's problem.
fn csv_fatal(error: csv::Error) -> Option<ImportError> {
    match error.into_kind() {
        csv::ErrorKind::Io(e) => Some(ImportError::Read(e)),
        _ => None,
    }
}

/// Up to [`BATCH_LINES`] valid sends (with their line numbers); bad lines go to `skipped`.
/// `true` when the file is done.
#[allow(clippy::type_complexity)]
fn read_batch<R: Read>(
    records: &mut Records<'_, R>,
    columns: &[&'static str],
    hash_key: &[u8],
    now: DateTime<Utc>,
    skipped: &mut Vec<Skipped>,
) -> Result<(Vec<(usize, NewSend)>, bool), ImportError> {
    let mut batch = Vec::with_capacity(BATCH_LINES);
    while batch.len() < BATCH_LINES {
        let record = match records.next() {
            None => return Ok((batch, true)),
            Some(Ok(record)) => record,
            Some(Err(error)) => {
                let line = error.position().map_or(0, |p| p.line());
                let reason = error.to_string();
                if let Some(fatal) = csv_fatal(error) {
                    return Err(fatal);
                }
                skipped.push(Skipped { line, reason });
                continue;
            }
        };
        if record.iter().all(|c| c.trim().is_empty()) {
            continue;
        }
        let line = record.position().map_or(0, |p| p.line());
        match line_to_send(&record, columns, hash_key, now) {
            Ok(send) => batch.push((line as usize, send)),
            Err(reason) => skipped.push(Skipped { line, reason }),
        }
    }
    Ok((batch, false))
}

fn line_to_send(
    record: &csv::StringRecord,
    columns: &[&'static str],
    hash_key: &[u8],
    now: DateTime<Utc>,
) -> Result<NewSend, String> {
    if record.len() != columns.len() {
        return Err(format!(
            "{} cells where the header has {} (a comma in a value without quotes?)",
            record.len(),
            columns.len()
        ));
    }
    let mut fields = SendFields::default();
    for (name, cell) in columns.iter().zip(record.iter()) {
        fields.set(name, cell);
    }
    NewSend::parse(&fields, hash_key, now).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_lines_get_a_space_so_line_numbers_stay_right() {
        let mut text = String::new();
        KeepBlankLines::new("\na,b\n\n\r\nc\r\n".as_bytes())
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, " \na,b\n \n \r\nc\r\n");
    }
}
