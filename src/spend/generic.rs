//! The generic spend CSV (SPEC §11): our own layout, for any platform.
//!
//! `date,platform,channel,source,medium,campaign,ad_id,spend,impressions,clicks,currency`
//! in any order; `currency` may be left out or empty (the company's currency), and an
//! optional `reach` column (unique people reached; empty = unknown) may follow. Being our
//! contract, it is strict where the vendors' layouts are lenient: a column we do not know is
//! refused rather than ignored, so a misspelt `currecny` cannot silently fall back to the
//! company's currency; and a channel must be one of the channel names sessions get (GA4's),
//! or its spend would never meet that channel's revenue.

use crate::analytics::channel::Channel;
use crate::commerce::money::Currency;

use super::numbers::{CellError, Micros, parse_count, parse_iso_day};
use super::table::{Header, Line};
use super::{FileError, Outcome, SpendRow};

/// Why a line of the generic layout is skipped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    #[error(transparent)]
    Cell(#[from] CellError),
    #[error("channel {0:?} is not one of {names}", names = channel_names())]
    UnknownChannel(String),
    #[error("spend is empty")]
    EmptySpend,
    #[error("currency {0:?} is not an ISO 4217 code")]
    Currency(String),
}

fn channel_names() -> String {
    let names: Vec<&str> = Channel::ALL.iter().map(|c| c.as_str()).collect();
    names.join(", ")
}

pub const COLUMNS: [&str; 12] = [
    "date",
    "platform",
    "channel",
    "source",
    "medium",
    "campaign",
    "ad_id",
    "spend",
    "impressions",
    "clicks",
    "currency",
    "reach",
];

/// What the error for an unrecognised file says about this format.
pub const EXPECTED: &str = "generic: the header \
    date,platform,channel,source,medium,campaign,ad_id,spend,impressions,clicks,currency \
    (any order; currency may be left out; an optional reach column may be added)";

pub fn looks_like(header: &Header) -> bool {
    header.has("date") && header.has("platform") && header.has("spend")
}

#[derive(Debug)]
pub struct Columns {
    /// Positions of `COLUMNS[..10]`, in that order.
    at: [usize; 10],
    currency: Option<usize>,
    reach: Option<usize>,
}

impl Columns {
    pub fn new(header: &Header) -> Result<Columns, FileError> {
        let names: Vec<String> = header.lowercase_names().collect();
        let unknown: Vec<&str> = names
            .iter()
            .map(String::as_str)
            .filter(|n| !COLUMNS.contains(n))
            .collect();
        let repeated: Vec<&str> = COLUMNS
            .into_iter()
            .filter(|c| names.iter().filter(|n| n == c).count() > 1)
            .collect();
        let missing: Vec<&str> = COLUMNS[..10]
            .iter()
            .copied()
            .filter(|c| !header.has(c))
            .collect();
        let mut problems = Vec::new();
        if !missing.is_empty() {
            problems.push(format!("missing {}", missing.join(", ")));
        }
        if !unknown.is_empty() {
            problems.push(format!("unknown column(s) {}", unknown.join(", ")));
        }
        if !repeated.is_empty() {
            problems.push(format!("repeated {}", repeated.join(", ")));
        }
        if !problems.is_empty() {
            return Err(FileError::Header {
                line: header.line,
                message: format!(
                    "the generic header is {}: expected {} (reach optional)",
                    problems.join("; "),
                    COLUMNS[..11].join(",")
                ),
            });
        }
        let mut at = [0; 10];
        for (slot, name) in at.iter_mut().zip(COLUMNS) {
            *slot = header.find(name).expect("checked above");
        }
        Ok(Columns {
            at,
            currency: header.find("currency"),
            reach: header.find("reach"),
        })
    }

    pub fn row(&self, line: &Line, company_currency: Currency) -> Outcome {
        match self.try_row(line, company_currency) {
            Ok(row) => Outcome::Row(row),
            Err(reason) => Outcome::Skip(reason.to_string()),
        }
    }

    fn try_row(&self, line: &Line, company_currency: Currency) -> Result<SpendRow, LineError> {
        let [
            date,
            platform,
            channel,
            source,
            medium,
            campaign,
            ad_id,
            spend,
            impressions,
            clicks,
        ] = self.at.map(|i| line.cell(Some(i)));
        let day = parse_iso_day(date).map_err(|e| e.in_column("date"))?;
        let channel_name = Channel::from_name(channel)
            .ok_or_else(|| LineError::UnknownChannel(channel.to_string()))?;
        if spend.is_empty() {
            return Err(LineError::EmptySpend);
        }
        let spend = Micros::parse_major(spend).map_err(|e| e.in_column("spend"))?;
        let count = |text: &str, name: &'static str| {
            if text.is_empty() {
                Ok(0)
            } else {
                parse_count(text).map_err(|e| e.in_column(name))
            }
        };
        let currency_text = line.cell(self.currency);
        let currency = if currency_text.is_empty() {
            company_currency
        } else {
            Currency::parse(currency_text)
                .ok_or_else(|| LineError::Currency(currency_text.to_string()))?
        };
        let reach_text = line.cell(self.reach);
        let reach = if reach_text.is_empty() {
            None
        } else {
            Some(parse_count(reach_text).map_err(|e| e.in_column("reach"))?)
        };
        Ok(SpendRow {
            day,
            platform: platform.to_ascii_lowercase(),
            campaign: campaign.into(),
            ad_id: ad_id.into(),
            channel: channel_name.as_str().into(),
            source: source.into(),
            medium: medium.into(),
            currency,
            spend,
            impressions: count(impressions, "impressions")?,
            clicks: count(clicks, "clicks")?,
            reach,
        })
    }
}
