//! Creatives: what each ad creative delivered (impressions, clicks, CTR), cost and earned
//! under the attribution model (spend, CPA, ROAS), from the `creatives` report's own
//! function, with the fatigue verdicts of `creative_fatigue`. The daily CTR line reads
//! `reporting.creative_daily`, the view Metabase reads.

use std::collections::HashSet;

use sqlx::PgConnection;

use super::{Context, day_labels, per_day_or};
use crate::dashboards::DashboardError;
use crate::dashboards::chart::{self, Series};
use crate::dashboards::period::Params;
use crate::dashboards::view::{Cell, Column, Content, Table, Tile, Value};
use crate::reports::creatives::{CreativeRow, creative_fatigue, creatives};
use crate::reports::format::ratio;
use crate::reports::request::{CreativeGroup, DateRange};

/// Sums of the report's rows (money in minor units of the company's currency).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Totals {
    pub impressions: i64,
    pub clicks: i64,
    pub sessions: i64,
    pub spend: i64,
    pub orders: f64,
    pub revenue: i64,
}

impl Totals {
    /// Counts once per creative (the report repeats them on each currency row), money of
    /// the company's currency only.
    pub fn of(rows: &[CreativeRow], currency: &str) -> Totals {
        let mut totals = Totals::default();
        let mut seen = HashSet::new();
        for row in rows {
            if seen.insert(row.creative_id.clone()) {
                totals.impressions += row.impressions;
                totals.clicks += row.clicks;
                totals.sessions += row.sessions;
            }
            if row.currency == currency {
                totals.spend += super::minor_units(&row.spend);
                totals.revenue += super::minor_units(&row.revenue);
                totals.orders += row.orders.parse::<f64>().unwrap_or(0.0);
            }
        }
        totals
    }

    pub fn ctr(&self) -> Option<f64> {
        ratio(self.clicks, self.impressions)
    }

    pub fn roas(&self) -> Option<f64> {
        ratio(self.revenue, self.spend)
    }

    pub fn cpa(&self) -> Option<i64> {
        super::money_ratio(self.spend, self.orders)
    }
}

/// Click-through rate per day of `range` (clicks ÷ impressions of the day, over all
/// creatives), from `reporting.creative_daily`; NaN (a gap in the line, not a 0 % day) on a
/// day without impressions.
async fn ctr_per_day(conn: &mut PgConnection, range: DateRange) -> Result<Vec<f64>, sqlx::Error> {
    let rows: Vec<(chrono::NaiveDate, f64)> = sqlx::query_as(
        "SELECT day, sum(clicks)::float8 / sum(impressions)::float8
         FROM reporting.creative_daily WHERE day BETWEEN $1 AND $2
         GROUP BY day HAVING sum(impressions) > 0",
    )
    .bind(range.from())
    .bind(range.to())
    .fetch_all(conn)
    .await?;
    Ok(per_day_or(range, &rows, f64::NAN))
}

pub async fn load(
    conn: &mut PgConnection,
    params: &Params,
    context: &Context,
) -> Result<Content, DashboardError> {
    let currency = context.currency.as_str();
    let group = CreativeGroup::Creative;
    let rows = creatives(&mut *conn, params.range, params.model, group, currency).await?;
    let now = Totals::of(&rows, currency);
    let before = match params.previous {
        Some(previous) => {
            let rows = creatives(&mut *conn, previous, params.model, group, currency).await?;
            Some(Totals::of(&rows, currency))
        }
        None => None,
    };
    let money = |minor: Option<i64>| Value::money(minor, currency);
    let tile = |key, f: &dyn Fn(&Totals) -> Value| Tile::new(key, f(&now), before.as_ref().map(f));
    let mut content = Content {
        tiles: vec![
            tile("impressions", &|t| Value::Count(t.impressions as f64)),
            tile("clicks", &|t| Value::Count(t.clicks as f64)),
            tile("ctr", &|t| Value::rate(t.ctr())),
            tile("spend", &|t| money(Some(t.spend))),
            tile("creative_revenue", &|t| money(Some(t.revenue))),
            tile("cpa", &|t| money(t.cpa())),
            tile("roas", &|t| Value::multiple(t.roas())),
        ],
        filters: vec!["model"],
        ..Content::default()
    };
    if rows.is_empty() || (now.impressions == 0 && now.spend == 0) {
        content.empty = Some(
            "No creative delivered in this range. Import spend with an ad_id \
             (`lux import spend`), tag landing pages with utm_content, or widen the range."
                .into(),
        );
        return Ok(content);
    }
    // CTR, not clicks beside impressions: clicks are about 1 % of impressions, so on one
    // axis they would lie flat along zero.
    let mut series = vec![Series {
        name: "CTR, this period".into(),
        values: ctr_per_day(&mut *conn, params.range).await?,
        comparison: false,
    }];
    if let Some(previous) = params.previous {
        series.push(Series {
            name: "Previous period".into(),
            values: ctr_per_day(&mut *conn, previous).await?,
            comparison: true,
        });
    }
    content.charts.push(chart::time_series_summed_up(
        "creatives-ctr-line",
        "Click-through rate per day",
        &day_labels(params.range),
        &series,
        &|v| Value::Rate(v).display(),
        &format!("CTR over the range {}", Value::rate(now.ctr()).display()),
    ));
    let bars = super::largest(
        rows.iter()
            .filter(|r| r.currency == currency)
            .filter_map(|r| r.roas.map(|roas| (label(r), roas)))
            .collect(),
        10,
    );
    if !bars.is_empty() {
        content.charts.push(chart::bars(
            "creatives-roas-bars",
            "ROAS by creative (top 10)",
            &bars,
            &|v| Value::Multiple(v).display(),
        ));
    }
    content.tables.push(creative_table(&rows));
    let fatigue = creative_fatigue(&mut *conn, params.range).await?;
    content.tables.push(Table {
        key: "fatigue",
        title: "Fatigue".into(),
        columns: vec![
            Column::text("Creative", "The ad's creative id (utm_content / ad_id)."),
            Column::text("Day", "The day of the verdict."),
            Column::text("Status", "The fatigue job's verdict."),
            Column::text(
                "Explanation",
                "Baseline and recent CTR and the test behind it.",
            ),
        ],
        rows: fatigue
            .iter()
            .map(|f| {
                vec![
                    Cell::Text(f.creative_id.clone()),
                    Cell::Text(f.day.to_string()),
                    Cell::Text(f.status.clone()),
                    Cell::Text(f.explanation.clone()),
                ]
            })
            .collect(),
    });
    Ok(content)
}

fn label(row: &CreativeRow) -> String {
    match (&row.name, &row.creative_id) {
        (Some(Some(name)), _) => name.clone(),
        (_, Some(id)) => id.clone(),
        _ => "(none)".into(),
    }
}

fn creative_table(rows: &[CreativeRow]) -> Table {
    let inner = |v: &Option<Option<String>>| v.clone().flatten().unwrap_or_default();
    Table {
        key: "creatives",
        title: "Creatives".into(),
        columns: vec![
            Column::text("Creative", "The ad's creative id (utm_content / ad_id)."),
            Column::text("Name", "The catalog's name."),
            Column::text("Concept", "The catalog's concept."),
            Column::text("Angle", "The catalog's angle."),
            Column::metric("impressions"),
            Column::metric("clicks"),
            Column::metric("ctr"),
            Column::metric("spend"),
            Column::metric("attributed_orders"),
            Column::metric("creative_revenue"),
            Column::metric("cpa"),
            Column::metric("roas"),
            Column::text("Currency", "The currency of the row's money."),
        ],
        rows: rows
            .iter()
            .map(|r| {
                vec![
                    Cell::Text(r.creative_id.clone().unwrap_or_default()),
                    Cell::Text(inner(&r.name)),
                    Cell::Text(inner(&r.concept)),
                    Cell::Text(inner(&r.angle)),
                    Cell::Value(Value::Count(r.impressions as f64)),
                    Cell::Value(Value::Count(r.clicks as f64)),
                    Cell::Value(Value::rate(r.ctr)),
                    Cell::Value(Value::amount(Some(&r.spend), &r.currency)),
                    Cell::Value(Value::count_text(&r.orders)),
                    Cell::Value(Value::amount(Some(&r.revenue), &r.currency)),
                    Cell::Value(Value::amount(r.cpa.as_deref(), &r.currency)),
                    Cell::Value(Value::multiple(r.roas)),
                    Cell::Text(r.currency.clone()),
                ]
            })
            .collect(),
    }
}
