//! Funnel: sessions reaching each step of a funnel (the report's numbers), where they drop
//! off, and how long orders take from first touch to purchase.

use sqlx::PgConnection;

use super::Context;
use crate::dashboards::DashboardError;
use crate::dashboards::chart;
use crate::dashboards::period::Params;
use crate::dashboards::view::{Cell, Column, Content, Table, Tile, Value};
use crate::reports::conversion::time_to_conversion;
use crate::reports::funnel::{FunnelDefinitions, FunnelRow, funnel};
use crate::reports::request::DateRange;

async fn steps(
    conn: &mut PgConnection,
    range: DateRange,
    params: &Params,
    funnels: &FunnelDefinitions,
) -> Result<Vec<FunnelRow>, DashboardError> {
    match funnel(conn, range, &params.funnel, funnels).await {
        Ok(rows) => Ok(rows),
        Err(crate::reports::ReportError::Request(e)) => {
            Err(DashboardError::BadRequest(e.to_string()))
        }
        Err(e) => Err(e.into()),
    }
}

fn summary(rows: &[FunnelRow]) -> (Value, Value, Value) {
    let start = rows.first().map_or(0, |r| r.sessions);
    let end = rows.last().map_or(0, |r| r.sessions);
    (
        Value::Count(start as f64),
        Value::Count(end as f64),
        Value::rate(rows.last().and_then(|r| r.conversion_from_start)),
    )
}

pub async fn load(
    conn: &mut PgConnection,
    params: &Params,
    context: &Context,
) -> Result<Content, DashboardError> {
    let empty_definitions = FunnelDefinitions::default();
    let funnels = context.funnels.as_ref().unwrap_or(&empty_definitions);
    let rows = steps(&mut *conn, params.range, params, funnels).await?;
    let previous = match params.previous {
        Some(range) => Some(steps(&mut *conn, range, params, funnels).await?),
        None => None,
    };
    let (start, end, conversion) = summary(&rows);
    let before = previous.as_deref().map(summary);
    let (timing, buckets) = time_to_conversion(&mut *conn, params.range).await?;
    let timing_before = match params.previous {
        Some(range) => Some(time_to_conversion(&mut *conn, range).await?.0),
        None => None,
    };
    let seconds = |s: Option<i64>| s.map_or(Value::None, Value::Seconds);
    let mut content = Content {
        tiles: vec![
            Tile::new("funnel_start", start, before.as_ref().map(|b| b.0.clone())),
            Tile::new("funnel_end", end, before.as_ref().map(|b| b.1.clone())),
            Tile::new(
                "funnel_conversion",
                conversion,
                before.as_ref().map(|b| b.2.clone()),
            ),
            Tile::new(
                "median_time_to_convert",
                seconds(timing.median_seconds),
                timing_before.as_ref().map(|t| seconds(t.median_seconds)),
            ),
            Tile::new(
                "p90_time_to_convert",
                seconds(timing.p90_seconds),
                timing_before.as_ref().map(|t| seconds(t.p90_seconds)),
            ),
        ],
        filters: vec!["funnel"],
        funnels: funnels.names(),
        ..Content::default()
    };
    if rows.first().is_none_or(|r| r.sessions == 0) {
        content.empty = Some(format!(
            "No session reached the first step of the {} funnel in this range. Its steps are \
             events your site sends (`lux.track('add_to_cart')`, ...): check they arrive on \
             the development page, or pick a longer range.",
            params.funnel.as_ref()
        ));
        return Ok(content);
    }
    let chart_steps: Vec<(String, i64)> = rows
        .iter()
        .map(|r| (r.event_name.clone(), r.sessions))
        .collect();
    content.charts.push(chart::funnel(
        "funnel-chart",
        &format!("The {} funnel", params.funnel.as_ref()),
        &chart_steps,
    ));
    let bucket_bars: Vec<(String, f64)> = buckets
        .iter()
        .map(|b| (b.bucket.to_string(), b.orders as f64))
        .collect();
    content.charts.push(chart::bars(
        "time-to-convert",
        "Orders by time from first touch to purchase",
        &bucket_bars,
        &|v| Value::Count(v).display(),
    ));
    content.tables.push(Table {
        key: "steps",
        title: format!("Steps of the {} funnel", params.funnel.as_ref()),
        columns: vec![
            Column::text("Step", "The step's position in the funnel."),
            Column::text("Event", "The event that marks the step."),
            Column::metric("step_sessions"),
            Column::metric("conversion_from_previous"),
            Column::metric("conversion_from_start"),
            Column::metric("drop_off"),
            Column::metric("drop_off_rate"),
        ],
        rows: rows
            .iter()
            .map(|r| {
                vec![
                    Cell::Text(r.step.to_string()),
                    Cell::Text(r.event_name.clone()),
                    Cell::Value(Value::Count(r.sessions as f64)),
                    Cell::Value(Value::rate(r.conversion_from_previous)),
                    Cell::Value(Value::rate(r.conversion_from_start)),
                    Cell::Value(Value::Count(r.drop_off as f64)),
                    Cell::Value(Value::rate(r.drop_off_rate)),
                ]
            })
            .collect(),
    });
    content.tables.push(Table {
        key: "time_to_conversion",
        title: "Time to conversion".into(),
        columns: vec![
            Column::text(
                "Bucket",
                "Time from the first touch's start to the purchase.",
            ),
            Column::metric("bucket_orders"),
            Column::metric("share"),
        ],
        rows: buckets
            .iter()
            .map(|b| {
                vec![
                    Cell::Text(b.bucket.to_string()),
                    Cell::Value(Value::Count(b.orders as f64)),
                    Cell::Value(Value::rate(b.share)),
                ]
            })
            .collect(),
    });
    Ok(content)
}
