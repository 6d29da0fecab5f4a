//! Google Ads: a report downloaded from the Google Ads UI as CSV, and the CSV that Google's
//! API example script writes (`examples/reporting/get_campaign_stats_to_csv.py`).
//!
//! The UI download has a title line and a date-range line above its header, `Cost` in
//! currency units (`"1,234.56"`), `--` for no value, `Impr.` for impressions, and trailing
//! `Total: ...` rows. The script's file starts with its header, exactly
//! `Account,Date,Campaign,Impressions,Clicks,Cost`, and its `Cost` is `cost_micros`.
//!
//! Telling them apart decides whether 12500000 means 12.50 or twelve and a half million, so
//! the micros layout is recognised only on both signs at once: exactly those six columns
//! (the UI says `Impr.` and `Day`), on the file's first line (the UI puts two lines above).
//! Those six columns below other lines are refused as ambiguous. And a micros `Cost` must be
//! a whole number, or the line is skipped.

use crate::analytics::channel::Channel;
use crate::commerce::money::Currency;

use super::numbers::{Micros, is_blank_metric, parse_google_day, parse_metric_counts};
use super::table::{Header, Line};
use super::{FileError, Layout, Outcome, SpendRow};

pub const PLATFORM: &str = "google_ads";
pub const SOURCE: &str = "google";
pub const MEDIUM: &str = "cpc";

/// What the error for an unrecognised file says about this format.
pub const EXPECTED: &str = "google: a Google Ads report downloaded as CSV, with the columns \
    Campaign, Day and Cost (optional: Impr., Clicks, Currency code, Ad ID), title lines above \
    allowed; or the CSV of Google's API example script, header \
    Account,Date,Campaign,Impressions,Clicks,Cost (Cost in micros)";

const API_SCRIPT_COLUMNS: [&str; 6] = [
    "account",
    "campaign",
    "clicks",
    "cost",
    "date",
    "impressions",
];

pub fn looks_like(header: &Header) -> bool {
    header.has("Campaign") && header.has("Cost")
}

#[derive(Debug)]
pub struct Columns {
    micros: bool,
    campaign: usize,
    day: usize,
    cost: usize,
    impressions: Option<usize>,
    clicks: Option<usize>,
    currency: Option<usize>,
    ad_id: Option<usize>,
}

impl Columns {
    pub fn new(header: &Header) -> Result<Columns, FileError> {
        let mut names: Vec<String> = header.lowercase_names().collect();
        names.sort();
        let api_script = names == API_SCRIPT_COLUMNS;
        if api_script && !header.first_line {
            return Err(FileError::Header {
                line: header.line,
                message: "these are the columns of Google's API example script, whose Cost is in \
                          micros, but there are lines above the header as in a UI download: \
                          cannot tell whether Cost is micros or currency units (remove the lines \
                          above the header if Cost is in micros, or use --format generic)"
                    .into(),
            });
        }
        let day = header
            .find_any(&["Day", "Date"])
            .ok_or_else(|| FileError::Header {
                line: header.line,
                message:
                    "the Google Ads report has no Day column: spend is imported by day, so add \
                      the Day segment (Segments → Time → Day) and download the report again"
                        .into(),
            })?;
        Ok(Columns {
            micros: api_script,
            campaign: header.find("Campaign").expect("looks_like checked it"),
            day,
            cost: header.find("Cost").expect("looks_like checked it"),
            impressions: header.find_any(&["Impr.", "Impressions"]),
            clicks: header.find("Clicks"),
            currency: header.find_any(&["Currency code", "Currency"]),
            ad_id: header.find("Ad ID"),
        })
    }

    pub fn layout(&self) -> Layout {
        if self.micros {
            Layout::GoogleApiScript
        } else {
            Layout::GoogleUi
        }
    }

    pub fn row(&self, line: &Line, company_currency: Currency) -> Outcome {
        let day_cell = line.cell(Some(self.day));
        let day = match parse_google_day(day_cell) {
            Ok(day) => day,
            // `Total: Account`, `Total: Campaigns`, ...: the UI's totals, never a campaign.
            // A campaign that happens to be named "Total: ..." still has a day.
            Err(_) if is_total(line) => return Outcome::Summary,
            Err(e) => return Outcome::Skip(format!("Day: {e}")),
        };
        let campaign = line.cell(Some(self.campaign));
        if campaign.is_empty() || campaign == "--" {
            return Outcome::Skip("Campaign is empty".into());
        }
        let cost = line.cell(Some(self.cost));
        let spend = if self.micros {
            Micros::parse_micros(cost)
        } else if is_blank_metric(cost) {
            Ok(Micros::ZERO)
        } else {
            Micros::parse_major(cost)
        };
        let spend = match spend {
            Ok(spend) => spend,
            Err(e) => return Outcome::Skip(format!("Cost: {e}")),
        };
        let (impressions, clicks) =
            match parse_metric_counts(line.cell(self.impressions), line.cell(self.clicks)) {
                Ok(counts) => counts,
                Err(e) => return Outcome::Skip(e.to_string()),
            };
        let currency = match self.currency {
            None => company_currency,
            Some(index) => match Currency::parse(line.cell(Some(index))) {
                Some(currency) => currency,
                None => {
                    return Outcome::Skip(format!(
                        "Currency code {:?} is not an ISO 4217 code",
                        line.cell(Some(index))
                    ));
                }
            },
        };
        let ad_id = line.cell(self.ad_id);
        Outcome::Row(SpendRow {
            day,
            platform: PLATFORM.into(),
            campaign: campaign.into(),
            ad_id: if ad_id == "--" { "" } else { ad_id }.into(),
            channel: Channel::PaidSearch.as_str().into(),
            source: SOURCE.into(),
            medium: MEDIUM.into(),
            currency,
            spend,
            impressions,
            clicks,
            reach: None,
        })
    }
}

/// A totals row: its first non-empty cell starts with `Total:`.
fn is_total(line: &Line) -> bool {
    line.cells
        .iter()
        .find(|c| !c.is_empty())
        .and_then(|c| c.get(..6))
        .is_some_and(|prefix| prefix.eq_ignore_ascii_case("total:"))
}
