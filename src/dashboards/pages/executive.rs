//! Executive: the company's week (or month) in one screen: revenue, orders, AOV, new
//! customers, CAC, blended ROAS, MER, conversion rate and owned-channel revenue, each with
//! its change against the previous period, a revenue line, and revenue by channel.

use sqlx::PgConnection;

use super::{Context, day_labels, money_axis, per_day};
use crate::dashboards::DashboardError;
use crate::dashboards::chart::{self, Series};
use crate::dashboards::period::Params;
use crate::dashboards::view::{Cell, Column, Content, Table, Tile, Value};
use crate::reports::request::DateRange;
use crate::reports::revenue::revenue_by_channel;

/// The executive numbers of one range (money in minor units of the company's currency).
#[derive(Debug, sqlx::FromRow)]
pub struct Totals {
    pub orders: f64,
    pub revenue: i64,
    pub new_customers: f64,
    pub owned_revenue: i64,
    pub spend: i64,
    pub aov: Option<i64>,
    pub cac: Option<i64>,
    pub blended_roas: Option<f64>,
    pub mer: Option<f64>,
    pub sessions: i64,
    pub conversion_rate: Option<f64>,
}

/// The totals, from `reporting.executive_daily`, `reporting.revenue_daily`,
/// `reporting.spend_daily` and `reporting.sessions_daily` (formulas in docs/metrics.md,
/// "Dashboards"). Ratios are taken between unrounded sums, as the reports do.
pub async fn totals(
    conn: &mut PgConnection,
    range: DateRange,
    model: &str,
    currency: &str,
) -> Result<Totals, sqlx::Error> {
    sqlx::query_as(
        "WITH e AS (
             SELECT * FROM reporting.executive_daily
             WHERE model = $1 AND currency = $2 AND day BETWEEN $3 AND $4
         ), s AS (
             SELECT coalesce(sum(sessions), 0)::bigint AS sessions
             FROM reporting.sessions_daily WHERE day BETWEEN $3 AND $4
         ), paid AS (
             SELECT coalesce(sum(revenue), 0) AS revenue
             FROM reporting.revenue_daily
             WHERE model = $1 AND currency = $2 AND day BETWEEN $3 AND $4
               AND channel IN (SELECT channel FROM reporting.spend_daily
                               WHERE currency = $2 AND day BETWEEN $3 AND $4)
         )
         SELECT round(coalesce(sum(e.orders), 0), 2)::float8 AS orders,
                round(coalesce(sum(e.revenue), 0) / reporting.to_major(1, $2))::bigint AS revenue,
                round(coalesce(sum(e.new_customers), 0), 2)::float8 AS new_customers,
                round(coalesce(sum(e.owned_revenue), 0) / reporting.to_major(1, $2))::bigint
                    AS owned_revenue,
                round(coalesce(sum(e.spend), 0) / reporting.to_major(1, $2))::bigint AS spend,
                round(sum(e.revenue) / reporting.to_major(1, $2) / nullif(sum(e.orders), 0))::bigint
                    AS aov,
                round(sum(e.spend) / reporting.to_major(1, $2) / nullif(sum(e.new_customers), 0))::bigint
                    AS cac,
                round((SELECT revenue FROM paid) / nullif(sum(e.spend), 0), 4)::float8 AS blended_roas,
                round(sum(e.revenue) / nullif(sum(e.spend), 0), 4)::float8 AS mer,
                (SELECT sessions FROM s) AS sessions,
                round(sum(e.orders) / nullif((SELECT sessions FROM s), 0), 4)::float8
                    AS conversion_rate
         FROM e",
    )
    .bind(model)
    .bind(currency)
    .bind(range.from())
    .bind(range.to())
    .fetch_one(conn)
    .await
}

/// Net revenue per day (minor units).
async fn revenue_per_day(
    conn: &mut PgConnection,
    range: DateRange,
    model: &str,
    currency: &str,
) -> Result<Vec<f64>, sqlx::Error> {
    let rows: Vec<(chrono::NaiveDate, f64)> = sqlx::query_as(
        "SELECT day, round(sum(revenue) / reporting.to_major(1, $2))::float8
         FROM reporting.executive_daily
         WHERE model = $1 AND currency = $2 AND day BETWEEN $3 AND $4
         GROUP BY day",
    )
    .bind(model)
    .bind(currency)
    .bind(range.from())
    .bind(range.to())
    .fetch_all(conn)
    .await?;
    Ok(per_day(range, &rows))
}

fn tiles(now: &Totals, before: Option<&Totals>, currency: &str) -> Vec<Tile> {
    let money = |minor: i64| Value::money(Some(minor), currency);
    let tile = |key, f: &dyn Fn(&Totals) -> Value| Tile::new(key, f(now), before.map(f));
    vec![
        tile("revenue", &|t| money(t.revenue)),
        tile("orders", &|t| Value::Count(t.orders)),
        tile("aov", &|t| Value::money(t.aov, currency)),
        tile("new_customers", &|t| Value::Count(t.new_customers)),
        tile("cac", &|t| Value::money(t.cac, currency)),
        tile("blended_roas", &|t| Value::multiple(t.blended_roas)),
        tile("mer", &|t| Value::multiple(t.mer)),
        tile("conversion_rate", &|t| Value::rate(t.conversion_rate)),
        tile("owned_revenue", &|t| money(t.owned_revenue)),
    ]
}

pub async fn load(
    conn: &mut PgConnection,
    params: &Params,
    context: &Context,
) -> Result<Content, DashboardError> {
    let model = params.model.as_str();
    let currency = context.currency.as_str();
    let now = totals(&mut *conn, params.range, model, currency).await?;
    let before = match params.previous {
        Some(previous) => Some(totals(&mut *conn, previous, model, currency).await?),
        None => None,
    };
    let mut content = Content {
        tiles: tiles(&now, before.as_ref(), currency),
        filters: vec!["model"],
        ..Content::default()
    };
    if now.orders == 0.0 && now.sessions == 0 && now.spend == 0 {
        content.empty = Some(
            "No orders, sessions or ad spend in this range yet. Install the snippet (/lux.js) \
             and send purchases, import spend with `lux import spend`, then wait for the next \
             rollups run (or run `lux jobs run rollups`), or pick a longer range."
                .into(),
        );
        return Ok(content);
    }

    let labels = day_labels(params.range);
    let mut series = vec![Series {
        name: "Revenue, this period".into(),
        values: revenue_per_day(&mut *conn, params.range, model, currency).await?,
        comparison: false,
    }];
    if let Some(previous) = params.previous {
        series.push(Series {
            name: "Previous period".into(),
            values: revenue_per_day(&mut *conn, previous, model, currency).await?,
            comparison: true,
        });
    }
    content.charts.push(chart::time_series(
        "revenue-line",
        "Net revenue per day",
        &labels,
        &series,
        &money_axis(currency),
    ));

    let channels = revenue_by_channel(&mut *conn, params.range, params.model).await?;
    let bars: Vec<(String, f64)> = channels
        .iter()
        .filter(|r| r.currency == currency)
        .map(|r| (r.channel.clone(), r.revenue.parse::<f64>().unwrap_or(0.0)))
        .take(10)
        .collect();
    let format = |v: f64| Value::amount(Some(&format!("{v:.2}")), currency).display();
    content.charts.push(chart::bars(
        "revenue-channels",
        &format!("Revenue by channel ({})", params.model.as_str()),
        &bars,
        &format,
    ));
    content.tables.push(Table {
        key: "channels",
        title: format!("Revenue by channel ({})", params.model.as_str()),
        columns: vec![
            Column::text(
                "Channel",
                "The channel credited, GA4's default channel grouping.",
            ),
            Column::metric("attributed_orders"),
            Column::metric("revenue"),
            Column::metric("aov"),
            Column::text("Currency", "ISO 4217 code of the amounts."),
        ],
        rows: channels
            .iter()
            .map(|r| {
                vec![
                    Cell::Text(r.channel.clone()),
                    Cell::Value(Value::count_text(&r.orders)),
                    Cell::Value(Value::amount(Some(&r.revenue), &r.currency)),
                    Cell::Value(Value::amount(r.aov.as_deref(), &r.currency)),
                    Cell::Text(r.currency.clone()),
                ]
            })
            .collect(),
    });
    Ok(content)
}
