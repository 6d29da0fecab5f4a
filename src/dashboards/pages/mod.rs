//! One module per dashboard page. Each reads, in the page's reader transaction, through the
//! report functions and the `reporting` views, and fills a [`Content`]. Adding a page: a
//! module with a `load`, a variant here.

pub mod acquisition;
pub mod alerts;
pub mod attribution;
pub mod creatives;
pub mod executive;
pub mod experiments;
pub mod funnel;
pub mod messages;
pub mod retention;

use chrono::NaiveDate;
use sqlx::PgConnection;
use uuid::Uuid;

use super::DashboardError;
use super::period::Params;
use super::view::Content;
use crate::reports::funnel::FunnelDefinitions;
use crate::reports::request::DateRange;

/// What a page knows about its company besides the request.
pub struct Context {
    pub company_id: Uuid,
    /// The company's currency: the one its money tiles are in.
    pub currency: String,
    /// The company's local date.
    pub today: NaiveDate,
    /// The company's funnels (the funnel page only).
    pub funnels: Option<FunnelDefinitions>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Page {
    Executive,
    Acquisition,
    Funnel,
    Retention,
    Attribution,
    Messages,
    Creatives,
    Experiments,
    Alerts,
}

impl Page {
    pub const ALL: [Page; 9] = [
        Page::Executive,
        Page::Acquisition,
        Page::Funnel,
        Page::Retention,
        Page::Attribution,
        Page::Messages,
        Page::Creatives,
        Page::Experiments,
        Page::Alerts,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Page::Executive => "executive",
            Page::Acquisition => "acquisition",
            Page::Funnel => "funnel",
            Page::Retention => "retention",
            Page::Attribution => "attribution",
            Page::Messages => "messages",
            Page::Alerts => "alerts",
            Page::Creatives => "creatives",
            Page::Experiments => "experiments",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Page::Executive => "Executive",
            Page::Acquisition => "Acquisition & quality",
            Page::Funnel => "Funnel",
            Page::Retention => "Retention & cohorts",
            Page::Attribution => "Attribution paths",
            Page::Messages => "Email & SMS",
            Page::Alerts => "Alert history",
            Page::Creatives => "Creatives",
            Page::Experiments => "Experiments",
        }
    }

    pub fn parse(text: &str) -> Option<Page> {
        Page::ALL.into_iter().find(|p| p.as_str() == text)
    }

    pub async fn load(
        self,
        conn: &mut PgConnection,
        params: &Params,
        context: &Context,
    ) -> Result<Content, DashboardError> {
        match self {
            Page::Executive => executive::load(conn, params, context).await,
            Page::Acquisition => acquisition::load(conn, params, context).await,
            Page::Funnel => funnel::load(conn, params, context).await,
            Page::Retention => retention::load(conn, params, context).await,
            Page::Attribution => attribution::load(conn, params, context).await,
            Page::Messages => messages::load(conn, params, context).await,
            Page::Alerts => alerts::load(conn, params, context).await,
            Page::Creatives => creatives::load(conn, params, context).await,
            Page::Experiments => experiments::load(conn, params, context).await,
        }
    }
}

/// The days of `range`, as `YYYY-MM-DD` labels.
pub fn day_labels(range: DateRange) -> Vec<String> {
    range
        .from()
        .iter_days()
        .take_while(|d| *d <= range.to())
        .map(|d| d.to_string())
        .collect()
}

/// Values per day of `range` from (day, value) rows, 0 on days without a row.
pub fn per_day(range: DateRange, rows: &[(NaiveDate, f64)]) -> Vec<f64> {
    per_day_or(range, rows, 0.0)
}

/// Values per day of `range` from (day, value) rows, `missing` on days without a row (NaN
/// for a rate, which a day without its denominator does not have).
pub fn per_day_or(range: DateRange, rows: &[(NaiveDate, f64)], missing: f64) -> Vec<f64> {
    range
        .from()
        .iter_days()
        .take_while(|d| *d <= range.to())
        .map(|d| {
            rows.iter()
                .find(|(day, _)| *day == d)
                .map_or(missing, |(_, v)| *v)
        })
        .collect()
}

/// The `n` largest (label, value) bars, largest first, ties by label: the ranking of the
/// creatives', messages' and alerts' bar charts.
pub fn largest(mut bars: Vec<(String, f64)>, n: usize) -> Vec<(String, f64)> {
    bars.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    bars.truncate(n);
    bars
}

/// `minor` units of the company's currency written for a chart axis (`$1,234`).
pub fn money_axis(currency: &str) -> impl Fn(f64) -> String + '_ {
    move |minor: f64| {
        let value = super::view::Value::Money {
            minor: (minor / 100.0).round() as i64 * 100,
            currency: currency.to_string(),
        };
        let text = value.display();
        text.strip_suffix(".00").map(str::to_string).unwrap_or(text)
    }
}

/// SQL: a sum of major units of a `reporting` view turned back into whole minor units of
/// the currency bound as `$n` (exact: the views multiply by the exponent's power of ten).
pub fn minor_sum(expression: &str, currency_param: &str) -> String {
    format!(
        "coalesce(round(sum({expression}) / reporting.to_major(1, {currency_param})), 0)::bigint"
    )
}

/// Ratio helpers that round as the reports do (4 decimals, None for a zero denominator).
pub fn ratio(numerator: f64, denominator: f64) -> Option<f64> {
    (denominator != 0.0).then(|| ((numerator / denominator) * 10_000.0).round() / 10_000.0)
}

/// A money ratio in minor units, rounded half away from zero (None for a zero denominator).
pub fn money_ratio(minor: i64, denominator: f64) -> Option<i64> {
    (denominator != 0.0).then(|| (minor as f64 / denominator).round() as i64)
}

/// An amount as the reports write it (`"123.45"`, `"20000"`, `"-0.05"`) in minor units: the
/// reports always write the currency's full number of decimals, so dropping the point is
/// exact.
pub fn minor_units(text: &str) -> i64 {
    text.replace('.', "").parse().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn largest_keeps_the_n_biggest_bars_biggest_first_ties_by_label() {
        let bars = vec![
            ("b".to_string(), 2.0),
            ("a".to_string(), 2.0),
            ("c".to_string(), 5.0),
            ("d".to_string(), 1.0),
        ];
        let top: Vec<String> = largest(bars, 3).into_iter().map(|(l, _)| l).collect();
        assert_eq!(top, ["c", "a", "b"]);
    }
}
