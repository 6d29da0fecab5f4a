//! Meta (Facebook, Instagram) Ads: an Ads Manager export in English.
//!
//! The account's currency is in the spend column's name, `Amount spent (USD)`. Rows are days
//! only when the export has the Day breakdown: without it, `Reporting starts` and `Reporting
//! ends` span the whole period and each row is a period total, which cannot be spread over
//! days honestly, so such a file is refused as a whole. A report of a single day is daily
//! either way and is accepted.

use crate::analytics::channel::Channel;
use crate::commerce::money::Currency;

use super::numbers::{Micros, is_blank_metric, parse_iso_day, parse_metric_counts};
use super::table::{Header, Line};
use super::{FileError, Outcome, SpendRow};

pub const PLATFORM: &str = "meta_ads";
pub const SOURCE: &str = "facebook";
pub const MEDIUM: &str = "paid_social";

/// What the error for an unrecognised file says about this format.
pub const EXPECTED: &str = "meta: an Ads Manager export in English with the columns \
    Amount spent (CUR), Day (Breakdown → By time → Day) or Reporting starts and Reporting \
    ends, Campaign name (optional: Ad ID, Impressions, Link clicks or Clicks (all))";

const NOT_DAILY_HINT: &str = "export again from Ads Manager with the Day breakdown \
    (Breakdown → By time → Day): period totals cannot be imported as days";

/// The currency code in a column named `Amount spent (XXX)`, if the name has that shape.
fn spend_column_currency(name: &str) -> Option<&str> {
    let lower = name.to_ascii_lowercase();
    if lower.starts_with("amount spent (") && lower.ends_with(')') {
        name.get("amount spent (".len()..name.len() - 1)
    } else {
        None
    }
}

pub fn looks_like(header: &Header) -> bool {
    header
        .names
        .iter()
        .any(|n| spend_column_currency(n).is_some())
}

#[derive(Debug)]
pub struct Columns {
    currency: Currency,
    spend: usize,
    day: Option<usize>,
    starts: Option<usize>,
    ends: Option<usize>,
    campaign: Option<usize>,
    /// Name columns: a row with all of them empty is Ads Manager's summary row.
    names: Vec<usize>,
    ad_id: Option<usize>,
    impressions: Option<usize>,
    clicks: Option<usize>,
}

impl Columns {
    pub fn new(header: &Header) -> Result<Columns, FileError> {
        let (spend, code) = header
            .names
            .iter()
            .enumerate()
            .find_map(|(i, n)| spend_column_currency(n).map(|code| (i, code)))
            .expect("looks_like checked it");
        let currency = Currency::parse(code).ok_or_else(|| FileError::Header {
            line: header.line,
            message: format!(
                "{:?}: {code:?} is not an ISO 4217 currency code",
                header.names[spend]
            ),
        })?;
        let day = header.find("Day");
        let (starts, ends) = (
            header.find("Reporting starts"),
            header.find("Reporting ends"),
        );
        if day.is_none() && (starts.is_none() || ends.is_none()) {
            return Err(FileError::Header {
                line: header.line,
                message: format!(
                    "the Meta export has neither a Day column nor Reporting starts and \
                     Reporting ends: {NOT_DAILY_HINT}"
                ),
            });
        }
        let campaign = header.find("Campaign name");
        let ad_id = header.find("Ad ID");
        let names = [
            campaign,
            header.find("Ad set name"),
            header.find("Ad name"),
            ad_id,
        ]
        .into_iter()
        .flatten()
        .collect();
        Ok(Columns {
            currency,
            spend,
            day,
            starts,
            ends,
            campaign,
            names,
            ad_id,
            impressions: header.find("Impressions"),
            // Link clicks (the API's inline_link_clicks) are the clicks that reach the site,
            // like Google's Clicks; Clicks (all) counts likes and profile taps too.
            clicks: header.find_any(&["Link clicks", "Clicks (all)"]),
        })
    }

    pub fn row(&self, line: &Line) -> Result<Outcome, FileError> {
        if !self.names.is_empty() && self.names.iter().all(|&i| line.cell(Some(i)).is_empty()) {
            return Ok(Outcome::Summary);
        }
        let day = if let Some(day) = self.day {
            match parse_iso_day(line.cell(Some(day))) {
                Ok(day) => day,
                Err(e) => return Ok(Outcome::Skip(format!("Day: {e}"))),
            }
        } else {
            let (starts, ends) = (
                parse_iso_day(line.cell(self.starts)),
                parse_iso_day(line.cell(self.ends)),
            );
            match (starts, ends) {
                (Ok(from), Ok(to)) if from == to => from,
                (Ok(from), Ok(to)) => {
                    return Err(FileError::NotDaily {
                        line: line.number,
                        from,
                        to,
                        hint: NOT_DAILY_HINT,
                    });
                }
                (Err(e), _) => return Ok(Outcome::Skip(format!("Reporting starts: {e}"))),
                (_, Err(e)) => return Ok(Outcome::Skip(format!("Reporting ends: {e}"))),
            }
        };
        let spend_text = line.cell(Some(self.spend));
        let spend = if is_blank_metric(spend_text) {
            Micros::ZERO
        } else {
            match Micros::parse_major(spend_text) {
                Ok(spend) => spend,
                Err(e) => return Ok(Outcome::Skip(format!("Amount spent: {e}"))),
            }
        };
        let (impressions, clicks) =
            match parse_metric_counts(line.cell(self.impressions), line.cell(self.clicks)) {
                Ok(counts) => counts,
                Err(e) => return Ok(Outcome::Skip(e.to_string())),
            };
        Ok(Outcome::Row(SpendRow {
            day,
            platform: PLATFORM.into(),
            campaign: line.cell(self.campaign).into(),
            ad_id: line.cell(self.ad_id).into(),
            channel: Channel::PaidSocial.as_str().into(),
            source: SOURCE.into(),
            medium: MEDIUM.into(),
            currency: self.currency,
            spend,
            impressions,
            clicks,
            reach: None,
        }))
    }
}
