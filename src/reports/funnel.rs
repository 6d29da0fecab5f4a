//! The funnel report, from `rollup_funnel_daily` (sessions that reached each step, in order).

use serde::Serialize;
use sqlx::PgConnection;

use super::ReportError;
use super::format::ratio;
use super::request::{DateRange, FunnelName, RequestError};

#[derive(Debug, Serialize)]
pub struct FunnelRow {
    pub step: i32,
    pub event_name: String,
    pub sessions: i64,
    pub conversion_from_previous: Option<f64>,
    pub conversion_from_start: Option<f64>,
    pub drop_off: i64,
    pub drop_off_rate: Option<f64>,
}

/// Steps of `funnel` over the range, with sessions = Σ sessions of the step, and for step
/// *i* > 1 (*s*ᵢ its sessions):
/// - `conversion_from_previous` = *s*ᵢ ÷ *s*ᵢ₋₁; `conversion_from_start` = *s*ᵢ ÷ *s*₁;
/// - `drop_off` = *s*ᵢ₋₁ − *s*ᵢ; `drop_off_rate` = drop_off ÷ *s*ᵢ₋₁
///
/// (ratios null when their denominator is 0). Step 1 has both conversions 1 and drop-off 0.
/// A step's event name is the one of its latest day, should the funnel have been redefined.
///
/// The rollups job writes every step (zeros included) for each day with sessions, so no row
/// at all means the funnel is unknown or had no sessions: a 400 that lists the funnels with
/// data in the range.
pub async fn funnel(
    conn: &mut PgConnection,
    range: DateRange,
    funnel: &FunnelName,
) -> Result<Vec<FunnelRow>, ReportError> {
    let steps: Vec<(i32, String, i64)> = sqlx::query_as(
        "SELECT step, (array_agg(event_name ORDER BY day DESC))[1], sum(sessions)::bigint
         FROM rollup_funnel_daily
         WHERE funnel = $1 AND day BETWEEN $2 AND $3
         GROUP BY step
         ORDER BY step",
    )
    .bind(funnel.as_ref())
    .bind(range.from())
    .bind(range.to())
    .fetch_all(&mut *conn)
    .await?;
    if steps.is_empty() {
        let with_data: Vec<String> = sqlx::query_scalar(
            "SELECT DISTINCT funnel FROM rollup_funnel_daily
             WHERE day BETWEEN $1 AND $2 ORDER BY funnel",
        )
        .bind(range.from())
        .bind(range.to())
        .fetch_all(&mut *conn)
        .await?;
        return Err(RequestError::NoFunnelData(with_data).into());
    }
    let start = steps[0].2;
    let mut previous: Option<i64> = None;
    let mut rows = Vec::with_capacity(steps.len());
    for (step, event_name, sessions) in steps {
        let row = match previous {
            None => FunnelRow {
                step,
                event_name,
                sessions,
                conversion_from_previous: Some(1.0),
                conversion_from_start: Some(1.0),
                drop_off: 0,
                drop_off_rate: Some(0.0),
            },
            Some(previous) => FunnelRow {
                step,
                event_name,
                sessions,
                conversion_from_previous: ratio(sessions, previous),
                conversion_from_start: ratio(sessions, start),
                drop_off: previous - sessions,
                drop_off_rate: ratio(previous - sessions, previous),
            },
        };
        previous = Some(sessions);
        rows.push(row);
    }
    Ok(rows)
}
