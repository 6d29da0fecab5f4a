//! What a dashboard page is asked for, parsed once from its query string: the date range (a
//! preset or custom days), the comparison period, the filters, and CSV export.

use chrono::{Datelike, Days, NaiveDate};

use crate::attribution::settings::Model;
use crate::reports::request::{DEFAULT_FUNNEL, DEFAULT_MODEL, DateRange, FunnelName};

/// The range presets, as the page offers them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preset {
    Last7,
    Last28,
    Last90,
    MonthToDate,
    Custom,
}

impl Preset {
    pub const ALL: [Preset; 5] = [
        Preset::Last7,
        Preset::Last28,
        Preset::Last90,
        Preset::MonthToDate,
        Preset::Custom,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Preset::Last7 => "7d",
            Preset::Last28 => "28d",
            Preset::Last90 => "90d",
            Preset::MonthToDate => "mtd",
            Preset::Custom => "custom",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Preset::Last7 => "Last 7 days",
            Preset::Last28 => "Last 28 days",
            Preset::Last90 => "Last 90 days",
            Preset::MonthToDate => "Month to date",
            Preset::Custom => "Custom",
        }
    }

    fn parse(text: &str) -> Option<Preset> {
        Preset::ALL.into_iter().find(|p| p.as_str() == text)
    }
}

/// A page request's parameters, valid.
#[derive(Debug, Clone)]
pub struct Params {
    pub preset: Preset,
    pub range: DateRange,
    /// The period just before `range`, as long (`None`: no comparison asked).
    pub previous: Option<DateRange>,
    pub model: Model,
    pub channel: Option<String>,
    pub campaign: Option<String>,
    pub funnel: FunnelName,
    /// `?format=csv`: one table as CSV, the one named by `?table=` (else the first).
    pub csv: bool,
    pub table: Option<String>,
}

/// A parameter the page cannot use; the message names it and says what it takes.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ParamError(pub String);

impl Params {
    /// Parses the query string; `today` is the company's local date (presets end on it).
    pub fn parse(query: Option<&str>, today: NaiveDate) -> Result<Params, ParamError> {
        let pairs: Vec<(String, String)> =
            url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
                .into_owned()
                .collect();
        let get = |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.trim())
                .filter(|v| !v.is_empty())
        };
        let day = |name: &str| -> Result<Option<NaiveDate>, ParamError> {
            get(name)
                .map(|v| {
                    NaiveDate::parse_from_str(v, "%Y-%m-%d")
                        .map_err(|_| ParamError(format!("{name}={v:?} is not a date (YYYY-MM-DD)")))
                })
                .transpose()
        };
        let (from, to) = (day("from")?, day("to")?);
        let preset = match get("range") {
            Some(text) => Preset::parse(text).ok_or_else(|| {
                ParamError(format!("range={text:?}: use 7d, 28d, 90d, mtd or custom"))
            })?,
            None if from.is_some() || to.is_some() => Preset::Custom,
            None => Preset::Last28,
        };
        let days_back = |n: u64| today.checked_sub_days(Days::new(n - 1)).unwrap_or(today);
        let (start, end) = match preset {
            Preset::Last7 => (days_back(7), today),
            Preset::Last28 => (days_back(28), today),
            Preset::Last90 => (days_back(90), today),
            Preset::MonthToDate => (today.with_day(1).unwrap_or(today), today),
            Preset::Custom => {
                let end = to.unwrap_or(today);
                (from.unwrap_or_else(|| end - Days::new(27)), end)
            }
        };
        let range = DateRange::new(start, end).map_err(|e| ParamError(e.to_string()))?;
        let previous = match get("compare") {
            None | Some("previous") => Some(previous_period(range)),
            Some("none") => None,
            Some(other) => {
                return Err(ParamError(format!(
                    "compare={other:?}: use previous or none"
                )));
            }
        };
        let model = match get("model") {
            None => DEFAULT_MODEL,
            Some(text) => Model::parse(text).ok_or_else(|| {
                ParamError(format!(
                    "model={text:?}: use one of {}",
                    Model::ALL.map(Model::as_str).join(", ")
                ))
            })?,
        };
        let funnel = FunnelName::parse(get("funnel").unwrap_or(DEFAULT_FUNNEL))
            .map_err(|e| ParamError(e.to_string()))?;
        let csv = match get("format") {
            None | Some("html") => false,
            Some("csv") => true,
            Some(other) => return Err(ParamError(format!("format={other:?}: use csv"))),
        };
        let text = |name: &str| get(name).map(|v| v.chars().take(500).collect::<String>());
        Ok(Params {
            preset,
            range,
            previous,
            model,
            channel: text("channel"),
            campaign: text("campaign"),
            funnel,
            csv,
            table: text("table"),
        })
    }

    /// The query string of this request without `format` and `table` (for links: CSV
    /// export, the navigation keeping the range).
    pub fn query_string(&self) -> String {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        q.append_pair("range", self.preset.as_str());
        if self.preset == Preset::Custom {
            q.append_pair("from", &self.range.from().to_string());
            q.append_pair("to", &self.range.to().to_string());
        }
        if self.previous.is_none() {
            q.append_pair("compare", "none");
        }
        if self.model != DEFAULT_MODEL {
            q.append_pair("model", self.model.as_str());
        }
        if let Some(channel) = &self.channel {
            q.append_pair("channel", channel);
        }
        if let Some(campaign) = &self.campaign {
            q.append_pair("campaign", campaign);
        }
        if self.funnel.as_ref() != DEFAULT_FUNNEL {
            q.append_pair("funnel", self.funnel.as_ref());
        }
        q.finish()
    }
}

/// The days just before `range`, as many as it has.
pub fn previous_period(range: DateRange) -> DateRange {
    let days = (range.to() - range.from()).num_days() + 1;
    let to = range.from() - Days::new(1);
    let from = range.from() - Days::new(days as u64);
    DateRange::new(from, to).expect("as long as a valid range")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(text: &str) -> NaiveDate {
        text.parse().unwrap()
    }

    #[test]
    fn presets_end_today_and_compare_with_the_period_before() {
        let today = d("2026-03-15");
        let p = Params::parse(None, today).unwrap();
        assert_eq!((p.range.from(), p.range.to()), (d("2026-02-16"), today));
        let prev = p.previous.unwrap();
        assert_eq!((prev.from(), prev.to()), (d("2026-01-19"), d("2026-02-15")));
        let p = Params::parse(Some("range=mtd"), today).unwrap();
        assert_eq!(p.range.from(), d("2026-03-01"));
        let p = Params::parse(Some("range=7d&compare=none"), today).unwrap();
        assert_eq!(p.range.from(), d("2026-03-09"));
        assert!(p.previous.is_none());
    }

    #[test]
    fn custom_days_and_filters_are_read_and_bad_ones_named() {
        let today = d("2026-03-15");
        let p = Params::parse(
            Some("from=2026-01-01&to=2026-01-31&model=linear&channel=Email&format=csv"),
            today,
        )
        .unwrap();
        assert_eq!(p.preset, Preset::Custom);
        assert_eq!(p.model, Model::Linear);
        assert_eq!(p.channel.as_deref(), Some("Email"));
        assert!(p.csv);
        assert!(p.query_string().contains("from=2026-01-01"));
        for (query, needle) in [
            ("from=yesterday", "from="),
            ("range=year", "range="),
            ("model=magic", "model="),
            ("from=2026-02-01&to=2026-01-01", "2026"),
            ("format=xml", "format="),
        ] {
            let error = Params::parse(Some(query), today).unwrap_err().to_string();
            assert!(error.contains(needle), "{query}: {error}");
        }
    }
}
