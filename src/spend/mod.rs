//! Ad spend: `lux import spend FILE --company ID [--format google|meta|generic]` reads a CSV
//! export of Google Ads, Meta Ads or our generic layout into `ad_spend`, one row per company,
//! local day, platform, campaign and ad.
//!
//! A file is read whole and checked before anything is written: the header is found by its
//! column names (after any title lines), each data line becomes a row or is skipped with its
//! line number and reason, lines with the same key are summed, and the rows are then upserted
//! in one company-scoped transaction. A row whose values did not change is not touched, so
//! importing the same file twice changes nothing, `imported_at` included. Rows absent from a
//! file are left alone (an export covers some days and campaigns, not all of them), except
//! that a campaign's day is stored in total or by ad, never both: the file's granularity
//! replaces the other one for the days and campaigns it has.
//!
//! Days are stored as the platforms print them, in the ad account's time zone, which is
//! assumed to be the company's: a daily total cannot be split across another zone's days.

pub mod generic;
pub mod google;
pub mod meta;
pub mod numbers;
mod table;

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;

use chrono::NaiveDate;
use serde::Serialize;
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

use crate::commerce::money::Currency;
use crate::ids::CompanyId;
pub use numbers::Micros;
use table::{Header, Line};

/// Lines searched for the header: Google puts a title and a date range above it.
const HEADER_SEARCH_LINES: usize = 10;
/// Skipped lines listed one by one in the summary (all are counted).
const SKIPPED_LISTED: usize = 1000;
/// Rows per INSERT statement.
const ROWS_PER_STATEMENT: usize = 1000;

/// The `--format` of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Google,
    Meta,
    Generic,
}

impl Format {
    pub const ALL: [Format; 3] = [Format::Google, Format::Meta, Format::Generic];

    pub fn parse(text: &str) -> Option<Format> {
        Format::ALL
            .into_iter()
            .find(|f| f.as_str().eq_ignore_ascii_case(text.trim()))
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Format::Google => "google",
            Format::Meta => "meta",
            Format::Generic => "generic",
        }
    }

    fn looks_like(self, header: &Header) -> bool {
        match self {
            Format::Google => google::looks_like(header),
            Format::Meta => meta::looks_like(header),
            Format::Generic => generic::looks_like(header),
        }
    }

    fn expected(self) -> &'static str {
        match self {
            Format::Google => google::EXPECTED,
            Format::Meta => meta::EXPECTED,
            Format::Generic => generic::EXPECTED,
        }
    }
}

/// The layout a file turned out to have: a format, and for Google which of its two CSVs
/// (they differ in the unit of `Cost`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Layout {
    /// Google Ads UI download: Cost in currency units.
    GoogleUi,
    /// Google's API example script: Cost in micros.
    GoogleApiScript,
    Meta,
    Generic,
}

/// Why a whole file was refused (nothing of it is imported).
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("the file is neither UTF-8 nor UTF-16 text with a byte order mark (export it as CSV)")]
    Encoding,
    #[error("line {line}: not readable as CSV: {message}")]
    Csv { line: u64, message: String },
    #[error(
        "cannot tell the format: no known header in the first {HEADER_SEARCH_LINES} lines; \
         expected one of\n  - {}\n  - {}\n  - {}\n(or give --format google|meta|generic)",
        google::EXPECTED,
        meta::EXPECTED,
        generic::EXPECTED
    )]
    UnknownFormat,
    #[error(
        "line {line}: the header fits more than one format ({}): give --format",
        formats.join(", ")
    )]
    Ambiguous {
        line: u64,
        formats: Vec<&'static str>,
    },
    #[error(
        "no {} header in the first {HEADER_SEARCH_LINES} lines; expected {}{}",
        format.as_str(), format.expected(),
        found.map(|f| format!(" (the file looks like {}: try --format {})", f.as_str(), f.as_str()))
            .unwrap_or_default()
    )]
    NoHeader {
        format: Format,
        found: Option<Format>,
    },
    #[error("line {line}: {message}")]
    Header { line: u64, message: String },
    #[error("line {line}: the row covers {from} to {to}, not one day: {hint}")]
    NotDaily {
        line: u64,
        from: NaiveDate,
        to: NaiveDate,
        hint: &'static str,
    },
    #[error("no data lines after the header on line {0}")]
    NoData(u64),
}

/// One row of `ad_spend`, for one company.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpendRow {
    pub day: NaiveDate,
    pub platform: String,
    pub campaign: String,
    pub ad_id: String,
    pub channel: String,
    pub source: String,
    pub medium: String,
    pub currency: Currency,
    pub spend: Micros,
    pub impressions: i64,
    pub clicks: i64,
    /// Unique people reached, when the export says (the generic CSV's optional `reach`).
    pub reach: Option<i64>,
}

impl SpendRow {
    fn key(&self) -> (NaiveDate, String, String, String) {
        (
            self.day,
            self.platform.clone(),
            self.campaign.clone(),
            self.ad_id.clone(),
        )
    }

    /// The table's constraints, checked here so one bad line is skipped with its reason
    /// instead of failing the whole transaction.
    fn check(self) -> Result<SpendRow, RowError> {
        if self.spend.is_negative() {
            return Err(RowError::NegativeSpend(self.spend));
        }
        if self.platform.is_empty()
            || self.platform.len() > 64
            || !self
                .platform
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_.-".contains(&b))
        {
            return Err(RowError::Platform(self.platform));
        }
        if self.campaign.chars().count() > 500 {
            return Err(RowError::CampaignTooLong);
        }
        if self.ad_id.chars().count() > 200 {
            return Err(RowError::AdIdTooLong);
        }
        let texts = [
            &self.platform,
            &self.campaign,
            &self.ad_id,
            &self.channel,
            &self.source,
            &self.medium,
        ];
        if texts.iter().any(|t| t.contains('\0')) {
            return Err(RowError::Nul);
        }
        Ok(self)
    }

    /// Adds a line with the same key, which must agree on everything but the amounts.
    fn add(&mut self, other: &SpendRow) -> Result<(), SumConflict> {
        let differs = if self.currency != other.currency {
            Some(("currency", self.currency.to_string()))
        } else if self.channel != other.channel {
            Some(("channel", self.channel.clone()))
        } else if self.source != other.source {
            Some(("source", self.source.clone()))
        } else if self.medium != other.medium {
            Some(("medium", self.medium.clone()))
        } else {
            None
        };
        if let Some((what, value)) = differs {
            return Err(SumConflict::Differs { what, value });
        }
        let overflow = || SumConflict::Overflow;
        let spend = self.spend.checked_add(other.spend).ok_or_else(overflow)?;
        let impressions = self
            .impressions
            .checked_add(other.impressions)
            .ok_or_else(overflow)?;
        let clicks = self.clicks.checked_add(other.clicks).ok_or_else(overflow)?;
        // Reach does not add up (the same person can be in both lines); lines of one key are
        // summed as parts of one row, so the sum is what the parts say, an upper bound.
        let reach = match (self.reach, other.reach) {
            (Some(a), Some(b)) => Some(a.checked_add(b).ok_or_else(overflow)?),
            (a, b) => a.or(b),
        };
        (self.spend, self.impressions, self.clicks, self.reach) =
            (spend, impressions, clicks, reach);
        Ok(())
    }
}

/// Why a row breaks the table's constraints.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RowError {
    #[error("spend {0} is negative")]
    NegativeSpend(Micros),
    #[error("platform {0:?} is not 1 to 64 of a-z, 0-9, '_', '.', '-'")]
    Platform(String),
    #[error("campaign is longer than 500 characters")]
    CampaignTooLong,
    #[error("ad id is longer than 200 characters")]
    AdIdTooLong,
    #[error("a cell contains a NUL character")]
    Nul,
    #[error("same day, platform, campaign and ad as line {first} but {conflict} there: not summed")]
    NotSummed { first: u64, conflict: SumConflict },
}

/// Why two lines with the same key cannot be summed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SumConflict {
    #[error("{what} {value:?}")]
    Differs { what: &'static str, value: String },
    #[error("the sum is too large")]
    Overflow,
}

/// What one data line turned into.
#[derive(Debug)]
pub enum Outcome {
    Row(SpendRow),
    /// A totals or summary row (Google's `Total: ...`, Meta's summary row): not data.
    Summary,
    Skip(String),
}

/// A line left out, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Skipped {
    pub line: u64,
    pub reason: String,
}

/// A file read and checked, its rows summed by key: what will be written.
#[derive(Debug)]
pub struct Parsed {
    pub format: Format,
    pub layout: Layout,
    pub guessed: bool,
    pub header_line: u64,
    /// Lines after the header, blank ones not counted.
    pub data_lines: usize,
    pub summary_rows: usize,
    /// Valid lines added into an earlier line's row (same day, platform, campaign and ad).
    pub summed: usize,
    pub skipped: Vec<Skipped>,
    /// One per key, in key order.
    pub rows: Vec<SpendRow>,
}

enum Columns {
    Google(google::Columns),
    Meta(meta::Columns),
    Generic(generic::Columns),
}

impl Columns {
    fn row(&self, line: &Line, company_currency: Currency) -> Result<Outcome, FileError> {
        match self {
            Columns::Google(c) => Ok(c.row(line, company_currency)),
            Columns::Meta(c) => c.row(line),
            Columns::Generic(c) => Ok(c.row(line, company_currency)),
        }
    }
}

/// Reads a file. `format` is `--format`, guessed from the header when `None`;
/// `company_currency` is what rows without a currency are in.
pub fn parse(
    bytes: &[u8],
    format: Option<Format>,
    company_currency: Currency,
) -> Result<Parsed, FileError> {
    let text = table::decode(bytes)?;
    let (lines, at, found) = find_header(&text, format)?;
    let header = Header {
        line: lines[at].number,
        names: lines[at].cells.clone(),
        first_line: lines[at].number == 1,
    };
    let (columns, layout) = match found {
        Format::Google => {
            let c = google::Columns::new(&header)?;
            let layout = c.layout();
            (Columns::Google(c), layout)
        }
        Format::Meta => (Columns::Meta(meta::Columns::new(&header)?), Layout::Meta),
        Format::Generic => (
            Columns::Generic(generic::Columns::new(&header)?),
            Layout::Generic,
        ),
    };
    let mut parsed = Parsed {
        format: found,
        layout,
        guessed: format.is_none(),
        header_line: header.line,
        data_lines: 0,
        summary_rows: 0,
        summed: 0,
        skipped: Vec::new(),
        rows: Vec::new(),
    };
    // Key → (line of its first row, the row so far).
    let mut rows: BTreeMap<_, (u64, SpendRow)> = BTreeMap::new();
    for line in &lines[at + 1..] {
        parsed.data_lines += 1;
        // More cells than the header is how an unquoted comma in a name shows: every later
        // cell would be read from the wrong column.
        if line
            .cells
            .iter()
            .skip(header.names.len())
            .any(|c| !c.is_empty())
        {
            parsed.skipped.push(Skipped {
                line: line.number,
                reason: format!(
                    "{} cells where the header has {} (a comma in a name without quotes?)",
                    line.cells.len(),
                    header.names.len()
                ),
            });
            continue;
        }
        let row = match columns.row(line, company_currency)? {
            Outcome::Row(row) => row.check().map_err(|e| e.to_string()),
            Outcome::Summary => {
                parsed.summary_rows += 1;
                continue;
            }
            Outcome::Skip(reason) => Err(reason),
        };
        let outcome = row.and_then(|row| match rows.entry(row.key()) {
            Entry::Vacant(slot) => {
                slot.insert((line.number, row));
                Ok(())
            }
            Entry::Occupied(mut slot) => {
                let (first, sum) = slot.get_mut();
                sum.add(&row).map_err(|conflict| {
                    let first = *first;
                    RowError::NotSummed { first, conflict }.to_string()
                })?;
                parsed.summed += 1;
                Ok(())
            }
        });
        if let Err(reason) = outcome {
            parsed.skipped.push(Skipped {
                line: line.number,
                reason,
            });
        }
    }
    if parsed.data_lines == 0 {
        return Err(FileError::NoData(header.line));
    }
    parsed.rows = rows.into_values().map(|(_, row)| row).collect();
    Ok(parsed)
}

/// The file's lines, the index of the header among them, and its format. Tries commas, then
/// tabs (the UTF-16 "CSV (Excel)" download).
fn find_header(
    text: &str,
    format: Option<Format>,
) -> Result<(Vec<Line>, usize, Format), FileError> {
    let mut other = None;
    for delimiter in [b',', b'\t'] {
        let lines = table::lines(text, delimiter)?;
        for (at, line) in lines.iter().take(HEADER_SEARCH_LINES).enumerate() {
            let header = Header {
                line: line.number,
                names: line.cells.clone(),
                first_line: line.number == 1,
            };
            let fits: Vec<Format> = Format::ALL
                .into_iter()
                .filter(|f| f.looks_like(&header))
                .collect();
            match (format, fits.as_slice()) {
                (_, []) => continue,
                (Some(wanted), fits) if fits.contains(&wanted) => {
                    return Ok((lines, at, wanted));
                }
                (Some(_), [first, ..]) => {
                    other.get_or_insert(*first);
                }
                (None, [only]) => {
                    let only = *only;
                    return Ok((lines, at, only));
                }
                (None, several) => {
                    return Err(FileError::Ambiguous {
                        line: header.line,
                        formats: several.iter().map(|f| f.as_str()).collect(),
                    });
                }
            }
        }
    }
    Err(match format {
        Some(format) => FileError::NoHeader {
            format,
            found: other,
        },
        None => FileError::UnknownFormat,
    })
}

/// What `lux import spend` prints.
#[derive(Debug, Serialize)]
pub struct ImportSummary {
    pub company_id: Uuid,
    pub format: &'static str,
    pub layout: Layout,
    pub format_guessed: bool,
    pub header_line: u64,
    /// Lines after the header: each is a row, summed into a row, a summary row, or skipped.
    pub data_lines: usize,
    pub summary_rows_ignored: usize,
    pub lines_summed: usize,
    /// Rows after summing, one per day, platform, campaign and ad.
    pub rows: usize,
    pub inserted: usize,
    pub updated: usize,
    pub unchanged: usize,
    /// Stored rows of the same days and campaigns at the other granularity (a campaign's
    /// total where this file has its ads, or its ads where this file has the total), deleted.
    pub replaced: u64,
    pub first_day: Option<NaiveDate>,
    pub last_day: Option<NaiveDate>,
    pub skipped_total: usize,
    /// The first skipped lines (up to 1000), with their reasons.
    pub skipped: Vec<Skipped>,
}

/// Why a file was not imported (nothing was written).
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("no company {0} (see `lux company list`)")]
    NoCompany(CompanyId),
    #[error("the company's currency {0:?} is not a code")]
    CompanyCurrency(String),
    #[error(transparent)]
    File(#[from] FileError),
    #[error(
        "nothing to import: none of the {data_lines} data lines after the header (line \
         {header_line}) is a valid row{reasons}"
    )]
    NothingToImport {
        data_lines: usize,
        header_line: u64,
        /// The first reasons, one per line, after a colon; empty without any.
        reasons: String,
    },
    #[error("{step}: {error}")]
    Database {
        step: &'static str,
        #[source]
        error: sqlx::Error,
    },
}

/// Names the step a database error happened at.
fn at(step: &'static str) -> impl FnOnce(sqlx::Error) -> ImportError {
    move |error| ImportError::Database { step, error }
}

/// Imports a file for one company, through `pool` (the service's role, so row-level
/// security applies). Fails, writing nothing, when the file is refused or has no valid row.
pub async fn import(
    pool: &PgPool,
    company: CompanyId,
    bytes: &[u8],
    format: Option<Format>,
) -> Result<ImportSummary, ImportError> {
    let company_id = company.uuid();
    let mut tx = crate::db::begin_for_company(pool, company_id)
        .await
        .map_err(at("opening a transaction"))?;
    // Row-level security shows the company its own row only.
    let currency: Option<String> =
        sqlx::query_scalar("SELECT currency::text FROM companies WHERE company_id = $1")
            .bind(company_id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(at("reading the company"))?;
    let Some(currency) = currency else {
        return Err(ImportError::NoCompany(company));
    };
    let currency =
        Currency::parse(&currency).ok_or_else(|| ImportError::CompanyCurrency(currency.clone()))?;
    let parsed = parse(bytes, format, currency)?;
    if parsed.rows.is_empty() {
        let mut reasons: Vec<String> = parsed
            .skipped
            .iter()
            .take(10)
            .map(|s| format!("  line {}: {}", s.line, s.reason))
            .collect();
        if parsed.skipped.len() > 10 {
            reasons.push(format!("  ... and {} more", parsed.skipped.len() - 10));
        }
        let reasons = if reasons.is_empty() {
            String::new()
        } else {
            format!(":\n{}", reasons.join("\n"))
        };
        return Err(ImportError::NothingToImport {
            data_lines: parsed.data_lines,
            header_line: parsed.header_line,
            reasons,
        });
    }
    let replaced = replace_other_granularity(&mut tx, company_id, &parsed.rows)
        .await
        .map_err(at("replacing rows of the other granularity"))?;
    let (inserted, updated) = upsert(&mut tx, company_id, &parsed.rows)
        .await
        .map_err(at("writing ad_spend"))?;
    tx.commit().await.map_err(at("committing the import"))?;
    Ok(ImportSummary {
        company_id,
        format: parsed.format.as_str(),
        layout: parsed.layout,
        format_guessed: parsed.guessed,
        header_line: parsed.header_line,
        data_lines: parsed.data_lines,
        summary_rows_ignored: parsed.summary_rows,
        lines_summed: parsed.summed,
        rows: parsed.rows.len(),
        inserted,
        updated,
        unchanged: parsed.rows.len() - inserted - updated,
        replaced,
        first_day: parsed.rows.iter().map(|r| r.day).min(),
        last_day: parsed.rows.iter().map(|r| r.day).max(),
        skipped_total: parsed.skipped.len(),
        skipped: parsed.skipped.into_iter().take(SKIPPED_LISTED).collect(),
    })
}

/// A campaign's day is stored either as its total (ad id '') or by ad, never both: both
/// would count its spend twice. Rows of this file replace the stored rows of the same day,
/// platform and campaign at the other granularity (an export by campaign after one by ad, or
/// the reverse). Returns how many were deleted.
async fn replace_other_granularity(
    tx: &mut Transaction<'_, Postgres>,
    company_id: Uuid,
    rows: &[SpendRow],
) -> Result<u64, sqlx::Error> {
    let mut keys: Vec<(NaiveDate, &str, &str, bool)> = rows
        .iter()
        .map(|r| {
            (
                r.day,
                r.platform.as_str(),
                r.campaign.as_str(),
                !r.ad_id.is_empty(),
            )
        })
        .collect();
    keys.sort_unstable();
    keys.dedup();
    let mut deleted = 0;
    for chunk in keys.chunks(ROWS_PER_STATEMENT) {
        deleted += sqlx::query(
            "DELETE FROM ad_spend s
             USING unnest($2::date[], $3::text[], $4::text[], $5::bool[])
                 AS k(day, platform, campaign, by_ad)
             WHERE s.company_id = $1 AND s.day = k.day AND s.platform = k.platform
               AND s.campaign = k.campaign
               AND (CASE WHEN k.by_ad THEN s.ad_id = '' ELSE s.ad_id <> '' END)",
        )
        .bind(company_id)
        .bind(chunk.iter().map(|k| k.0).collect::<Vec<_>>())
        .bind(chunk.iter().map(|k| k.1).collect::<Vec<_>>())
        .bind(chunk.iter().map(|k| k.2).collect::<Vec<_>>())
        .bind(chunk.iter().map(|k| k.3).collect::<Vec<_>>())
        .execute(&mut **tx)
        .await?
        .rows_affected();
    }
    Ok(deleted)
}

/// Inserts new rows and updates changed ones; returns (inserted, updated). A row equal to
/// the stored one is not updated, so its `imported_at` stays and the rollups job does not
/// redo its day. Only inserted and updated rows come back from `RETURNING`; `xmax = 0` tells
/// an inserted row (no earlier version) from an updated one.
async fn upsert(
    tx: &mut Transaction<'_, Postgres>,
    company_id: Uuid,
    rows: &[SpendRow],
) -> Result<(usize, usize), sqlx::Error> {
    let (mut inserted, mut updated) = (0, 0);
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let column = |f: fn(&SpendRow) -> String| chunk.iter().map(f).collect::<Vec<String>>();
        let fresh: Vec<bool> = sqlx::query_scalar(
            "INSERT INTO ad_spend AS s (company_id, day, platform, campaign, ad_id, channel,
                 source, medium, currency, spend, impressions, clicks, reach)
             SELECT $1, r.day, r.platform, r.campaign, r.ad_id, r.channel, r.source, r.medium,
                 r.currency, r.spend, r.impressions, r.clicks, r.reach
             FROM UNNEST($2::date[], $3::text[], $4::text[], $5::text[], $6::text[],
                 $7::text[], $8::text[], $9::text[], $10::text[]::numeric[], $11::int8[],
                 $12::int8[], $13::int8[])
                 AS r(day, platform, campaign, ad_id, channel, source, medium, currency, spend,
                      impressions, clicks, reach)
             ON CONFLICT (company_id, day, platform, campaign, ad_id) DO UPDATE SET
                 channel = EXCLUDED.channel, source = EXCLUDED.source,
                 medium = EXCLUDED.medium, currency = EXCLUDED.currency,
                 spend = EXCLUDED.spend, impressions = EXCLUDED.impressions,
                 clicks = EXCLUDED.clicks, reach = EXCLUDED.reach, imported_at = now()
             WHERE (s.channel, s.source, s.medium, s.currency, s.spend, s.impressions,
                    s.clicks, s.reach)
                   IS DISTINCT FROM
                   (EXCLUDED.channel, EXCLUDED.source, EXCLUDED.medium, EXCLUDED.currency,
                    EXCLUDED.spend, EXCLUDED.impressions, EXCLUDED.clicks, EXCLUDED.reach)
             RETURNING s.xmax = 0",
        )
        .bind(company_id)
        .bind(chunk.iter().map(|r| r.day).collect::<Vec<_>>())
        .bind(column(|r| r.platform.clone()))
        .bind(column(|r| r.campaign.clone()))
        .bind(column(|r| r.ad_id.clone()))
        .bind(column(|r| r.channel.clone()))
        .bind(column(|r| r.source.clone()))
        .bind(column(|r| r.medium.clone()))
        .bind(column(|r| r.currency.code().to_string()))
        .bind(column(|r| r.spend.to_string()))
        .bind(chunk.iter().map(|r| r.impressions).collect::<Vec<_>>())
        .bind(chunk.iter().map(|r| r.clicks).collect::<Vec<_>>())
        .bind(chunk.iter().map(|r| r.reach).collect::<Vec<_>>())
        .fetch_all(&mut **tx)
        .await?;
        let new = fresh.iter().filter(|&&f| f).count();
        inserted += new;
        updated += fresh.len() - new;
    }
    Ok((inserted, updated))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eur() -> Currency {
        Currency::parse("EUR").unwrap()
    }

    fn parse_text(text: &str) -> Result<Parsed, FileError> {
        parse(text.as_bytes(), None, eur())
    }

    fn reasons(parsed: &Parsed) -> Vec<(u64, &str)> {
        parsed
            .skipped
            .iter()
            .map(|s| (s.line, s.reason.as_str()))
            .collect()
    }

    #[test]
    fn lines_with_one_key_but_another_currency_or_channel_are_not_summed() {
        let parsed = parse_text(
            "date,platform,channel,source,medium,campaign,ad_id,spend,impressions,clicks,currency\n\
             2025-01-01,x,Paid Search,s,m,c,,1.10,1,1,USD\n\
             2025-01-01,x,Paid Search,s,m,c,,2.20,2,2,EUR\n\
             2025-01-01,x,Display,s,m,c,,2.20,2,2,USD\n\
             2025-01-01,x,Paid Search,s,m,c,,0.01,3,3,usd\n",
        )
        .unwrap();
        assert_eq!(parsed.rows.len(), 1);
        assert_eq!(parsed.rows[0].spend.to_string(), "1.110000");
        assert_eq!((parsed.rows[0].impressions, parsed.rows[0].clicks), (4, 4));
        assert_eq!(parsed.summed, 1);
        let skipped = reasons(&parsed);
        assert_eq!(skipped.len(), 2);
        assert!(
            skipped[0].1.contains("as line 2 but currency \"USD\""),
            "{skipped:?}"
        );
        assert!(
            skipped[1].1.contains("channel \"Paid Search\""),
            "{skipped:?}"
        );
    }

    #[test]
    fn rows_that_the_table_would_refuse_are_skipped_one_by_one() {
        let long = "c".repeat(501);
        let parsed = parse_text(&format!(
            "date,platform,channel,source,medium,campaign,ad_id,spend,impressions,clicks\n\
             2025-01-01,Google Ads,Paid Search,s,m,c,,1,0,0\n\
             2025-01-01,x,Paid Search,s,m,{long},,1,0,0\n\
             2025-01-01,x,Paid Search,s,m,c\0,,1,0,0\n\
             2025-01-01,x,Paid Search,s,m,c,,1,-5,0\n\
             2025-01-01,x,Paid Search,s,m,c,,1,0,0,EURO\n\
             2025-01-01,x,Paid Search,s,m,c,,,0,0\n\
             2025-01-01,x,Paid Search,s,m,ok,,1,0,0\n"
        ))
        .unwrap();
        let skipped = reasons(&parsed);
        let expected = [
            (2, "platform \"google ads\""),
            (3, "longer than 500"),
            (4, "NUL"),
            (5, "negative"),
            (6, "11 cells where the header has 10"),
            (7, "spend is empty"),
        ];
        assert_eq!(skipped.len(), expected.len(), "{skipped:?}");
        for ((line, reason), (want_line, want)) in skipped.iter().zip(expected) {
            assert_eq!(*line, want_line, "{reason}");
            assert!(reason.contains(want), "line {line}: {reason}");
        }
        assert_eq!(parsed.rows.len(), 1, "line 8");
    }

    #[test]
    fn a_utf16_tab_separated_google_download_is_read() {
        let text = "Campaign report\n\"Jan 1, 2025 - Jan 1, 2025\"\n\
                    Campaign\tAd ID\tDay\tCurrency code\tCost\tImpr.\tClicks\n\
                    Brand\t--\tJan 1, 2025\tusd\t\"1,234.56\"\t10\t1\n\
                    Total: Account\t\t\tUSD\t\"1,234.56\"\t10\t1\n";
        let bytes: Vec<u8> = [0xFF, 0xFE]
            .into_iter()
            .chain(text.encode_utf16().flat_map(u16::to_le_bytes))
            .collect();
        let parsed = parse(&bytes, Some(Format::Google), eur()).unwrap();
        assert_eq!(parsed.layout, Layout::GoogleUi);
        assert_eq!(parsed.summary_rows, 1);
        let row = &parsed.rows[0];
        assert_eq!(row.day, NaiveDate::from_ymd_opt(2025, 1, 1).unwrap());
        assert_eq!((row.ad_id.as_str(), row.currency.code()), ("", "USD"));
        assert_eq!(row.spend.to_string(), "1234.560000");
    }

    #[test]
    fn a_google_campaign_named_total_is_still_a_campaign_when_it_has_a_day() {
        let parsed =
            parse_text("Campaign,Day,Cost\nTotal: brand,2025-01-01,5\nTotal: Account,--,5\n")
                .unwrap();
        assert_eq!(parsed.rows.len(), 1);
        assert_eq!(parsed.rows[0].campaign, "Total: brand");
        assert_eq!(parsed.rows[0].currency, eur(), "no Currency code column");
        assert_eq!(parsed.summary_rows, 1);
    }

    #[test]
    fn meta_summary_rows_are_ignored_and_a_single_day_report_needs_no_day_column() {
        let parsed = parse_text(
            "Reporting starts,Reporting ends,Campaign name,Ad name,Ad ID,Impressions,Clicks (all),Amount spent (EUR)\n\
             2025-03-30,2025-03-30,,,,300,9,30.00\n\
             2025-03-30,2025-03-30,Spring,Video A,120210000000000001,100,3,10.00\n\
             2025-03-30,2025-03-30,Spring,Video B,120210000000000002,200,6,20.00\n",
        )
        .unwrap();
        assert_eq!(parsed.summary_rows, 1);
        let ads: Vec<(&str, i64)> = parsed
            .rows
            .iter()
            .map(|r| (r.ad_id.as_str(), r.clicks))
            .collect();
        assert_eq!(
            ads,
            [("120210000000000001", 3), ("120210000000000002", 6)],
            "Clicks (all) when there is no Link clicks column"
        );
    }

    #[test]
    fn headers_are_found_in_any_case_and_order_and_the_guess_is_reported() {
        let parsed = parse_text(
            "CLICKS,Spend,Date,Platform,Channel,Source,Medium,Campaign,Ad_ID,Impressions\n\
             1,2,2025-01-01,p,Email,s,m,c,a,3\n",
        )
        .unwrap();
        assert_eq!((parsed.format, parsed.guessed), (Format::Generic, true));
        assert_eq!(parsed.rows[0].channel, "Email");
        assert_eq!(parsed.rows[0].spend.to_string(), "2.000000");
    }

    #[test]
    fn the_documented_generic_sample_imports_whole() {
        let parsed = parse(
            include_bytes!("../../docs/samples/ad_spend_generic.csv"),
            None,
            eur(),
        )
        .unwrap();
        assert_eq!((parsed.rows.len(), parsed.skipped.len()), (5, 0));
    }

    #[test]
    fn garbage_never_panics() {
        for text in [
            "",
            "\u{feff}",
            "\"",
            "Campaign,Cost\n",
            "Campaign,Cost,Day\n\"unterminated,1,2025-01-01\n",
            "Amount spent (),Day\n1,2\n",
            "Amount spent (ÉÉÉ),Day\n1,2\n",
            "Total:\u{e9},Campaign,Cost,Day\n\u{e9}\u{e9}\u{e9},a,1,2025-01-01\nTot\u{e9}l:,--,1,--\n",
        ] {
            let _ = parse_text(text);
            let _ = parse(text.as_bytes(), Some(Format::Meta), eur());
        }
        let _ = parse(&[0xFF, 0xFE, 0x00], None, eur());
    }
}
