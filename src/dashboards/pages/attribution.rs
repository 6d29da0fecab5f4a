//! Attribution paths: the paths of channels orders took, and how each model splits the
//! revenue between channels (the revenue-by-channel report, model by model).

use sqlx::PgConnection;

use super::Context;
use crate::attribution::settings::Model;
use crate::dashboards::DashboardError;
use crate::dashboards::chart;
use crate::dashboards::period::Params;
use crate::dashboards::view::{Cell, Column, Content, Table, Tile, Value};
use crate::reports::format::ratio;
use crate::reports::request::DateRange;
use crate::reports::revenue::revenue_by_channel;

/// Orders by path over the range (`reporting.paths_daily`).
#[derive(Debug, sqlx::FromRow)]
pub struct PathRow {
    pub path: String,
    pub steps: i32,
    pub orders: i64,
    pub revenue: i64,
}

/// `$3` channel: only the paths through it (NULL: all).
pub async fn paths(
    conn: &mut PgConnection,
    range: DateRange,
    currency: &str,
    channel: Option<&str>,
) -> Result<Vec<PathRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT path, min(steps) AS steps, sum(orders)::bigint AS orders,
                round(sum(revenue) / reporting.to_major(1, $4))::bigint AS revenue
         FROM reporting.paths_daily
         WHERE day BETWEEN $1 AND $2 AND currency = $4
           AND ($3::text IS NULL OR $3 = ANY(string_to_array(path, ' > ')))
         GROUP BY path
         ORDER BY 3 DESC, 4 DESC, 1",
    )
    .bind(range.from())
    .bind(range.to())
    .bind(channel)
    .bind(currency)
    .fetch_all(conn)
    .await
}

/// (orders, orders with 2+ channels, Σ channels × orders).
fn summary(rows: &[PathRow]) -> (i64, i64, i64) {
    rows.iter().fold((0, 0, 0), |(n, multi, steps), r| {
        (
            n + r.orders,
            multi + if r.steps >= 2 { r.orders } else { 0 },
            steps + i64::from(r.steps) * r.orders,
        )
    })
}

fn tiles_of(rows: &[PathRow], currency: &str) -> [Value; 4] {
    let (orders, multi, steps) = summary(rows);
    let revenue: i64 = rows.iter().map(|r| r.revenue).sum();
    [
        Value::Count(orders as f64),
        Value::money(Some(revenue), currency),
        // An average, not a percentage: 2 decimals.
        ratio(steps, orders).map_or(Value::None, |r| Value::Count((r * 100.0).round() / 100.0)),
        Value::rate(ratio(multi, orders)),
    ]
}

pub async fn load(
    conn: &mut PgConnection,
    params: &Params,
    context: &Context,
) -> Result<Content, DashboardError> {
    let currency = context.currency.as_str();
    let channel = params.channel.as_deref();
    let rows = paths(&mut *conn, params.range, currency, channel).await?;
    let before = match params.previous {
        Some(range) => Some(paths(&mut *conn, range, currency, channel).await?),
        None => None,
    };
    let now = tiles_of(&rows, currency);
    let then = before.as_deref().map(|b| tiles_of(b, currency));
    let keys = [
        "path_orders",
        "path_revenue",
        "touches_per_order",
        "multi_channel_share",
    ];
    let mut content = Content {
        tiles: keys
            .iter()
            .enumerate()
            .map(|(i, key)| Tile::new(key, now[i].clone(), then.as_ref().map(|t| t[i].clone())))
            .collect(),
        filters: vec!["channel", "model"],
        ..Content::default()
    };
    let by_model = revenue_by_channel(&mut *conn, params.range, params.model).await?;
    content.channels = by_model.iter().map(|r| r.channel.clone()).collect();
    if rows.is_empty() {
        content.empty = Some(
            "No attributed order in this range. Orders are attributed to the sessions before \
             them by the attribution job (every minute under `lux serve`, or `lux jobs run \
             attribution` then `lux jobs run rollups`); pick a longer range or clear the \
             channel filter."
                .into(),
        );
        return Ok(content);
    }
    let top: Vec<(Vec<String>, f64)> = rows
        .iter()
        .take(12)
        .map(|r| {
            (
                r.path.split(" > ").map(str::to_string).collect(),
                r.orders as f64,
            )
        })
        .collect();
    content.charts.push(chart::paths(
        "paths",
        "Top conversion paths (orders)",
        &top,
        "orders",
    ));
    let bars: Vec<(String, f64)> = by_model
        .iter()
        .filter(|r| r.currency == currency)
        .filter(|r| channel.is_none_or(|c| c == r.channel))
        .take(10)
        .map(|r| (r.channel.clone(), r.revenue.parse::<f64>().unwrap_or(0.0)))
        .collect();
    let money = |v: f64| Value::amount(Some(&format!("{v:.2}")), currency).display();
    content.charts.push(chart::bars(
        "model-revenue",
        &format!("Revenue by channel ({})", params.model.as_str()),
        &bars,
        &money,
    ));
    let total_orders = summary(&rows).0;
    content.tables.push(Table {
        key: "paths",
        title: "Conversion paths".into(),
        columns: vec![
            Column::text(
                "Path",
                "The channels of the order's touches, oldest first, repeats shown once.",
            ),
            Column::metric("steps"),
            Column::metric("path_orders"),
            Column::metric("path_revenue"),
            Column::metric("share"),
        ],
        rows: rows
            .iter()
            .map(|r| {
                vec![
                    Cell::Text(r.path.clone()),
                    Cell::Value(Value::Count(f64::from(r.steps))),
                    Cell::Value(Value::Count(r.orders as f64)),
                    Cell::Value(Value::money(Some(r.revenue), currency)),
                    Cell::Value(Value::rate(ratio(r.orders, total_orders))),
                ]
            })
            .collect(),
    });
    // Model comparison: each channel's revenue under every model.
    let mut comparison: Vec<(String, Vec<Option<String>>)> = Vec::new();
    for (m, model) in Model::ALL.iter().enumerate() {
        for row in revenue_by_channel(&mut *conn, params.range, *model).await? {
            if row.currency != currency || channel.is_some_and(|c| c != row.channel) {
                continue;
            }
            let at = match comparison.iter().position(|(c, _)| *c == row.channel) {
                Some(at) => at,
                None => {
                    comparison.push((row.channel.clone(), vec![None; Model::ALL.len()]));
                    comparison.len() - 1
                }
            };
            comparison[at].1[m] = Some(row.revenue);
        }
    }
    let mut columns = vec![Column::text("Channel", "The channel credited.")];
    columns.extend(
        Model::ALL
            .iter()
            // Money: right-aligned like every amount column.
            .map(|m| Column {
                numeric: true,
                ..Column::text(model_label(*m), model_definition(*m))
            }),
    );
    content.tables.push(Table {
        key: "models",
        title: "Revenue by channel under each model".into(),
        columns,
        rows: comparison
            .into_iter()
            .map(|(channel, amounts)| {
                let mut cells = vec![Cell::Text(channel)];
                cells.extend(amounts.iter().map(|a| {
                    Cell::Value(Value::amount(
                        Some(a.as_deref().unwrap_or("0.00")),
                        currency,
                    ))
                }));
                cells
            })
            .collect(),
    });
    Ok(content)
}

fn model_label(model: Model) -> &'static str {
    match model {
        Model::FirstTouch => "First touch",
        Model::LastTouch => "Last touch",
        Model::Linear => "Linear",
        Model::TimeDecay => "Time decay",
        Model::PositionBased => "Position based",
        Model::LastNonDirect => "Last non-direct",
    }
}

fn model_definition(model: Model) -> &'static str {
    match model {
        Model::FirstTouch => "All the credit to the first touch.",
        Model::LastTouch => "All the credit to the last touch within 72 hours.",
        Model::Linear => "Equal credit to every touch.",
        Model::TimeDecay => "More credit to recent touches (half-life 7 days).",
        Model::PositionBased => "40 % first, 40 % last, 20 % shared by the middle.",
        Model::LastNonDirect => "All the credit to the last touch that was not Direct.",
    }
}
