//! The funnel report, from `rollup_funnel_daily` (sessions that reached each step, in order).

use serde::Serialize;
use sqlx::PgConnection;

use super::ReportError;
use super::format::ratio;
use super::request::{DateRange, FunnelName, RequestError};

/// The funnels a company has now (built-in and its own), by name, with their steps.
#[derive(Debug, Default)]
pub struct FunnelDefinitions(Vec<(String, Vec<String>)>);

impl FunnelDefinitions {
    pub fn new(funnels: Vec<(String, Vec<String>)>) -> Self {
        FunnelDefinitions(funnels)
    }

    fn steps(&self, name: &str) -> Option<&[String]> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, steps)| steps.as_slice())
    }

    pub fn names(&self) -> Vec<String> {
        self.0.iter().map(|(name, _)| name.clone()).collect()
    }
}

/// A defined funnel's steps over a range without sessions: every count 0, every ratio null
/// (0 ÷ 0).
fn zero_steps(events: &[String]) -> Vec<FunnelRow> {
    events
        .iter()
        .zip(1..)
        .map(|(event_name, step)| FunnelRow {
            step,
            event_name: event_name.clone(),
            sessions: 0,
            conversion_from_previous: None,
            conversion_from_start: None,
            drop_off: 0,
            drop_off_rate: None,
        })
        .collect()
}

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
/// The rollups job writes every step (zeros included) for each day with sessions. A funnel
/// the company defines (`defined`: its steps, when known) with no sessions in the range
/// answers its steps at zero, like every other report over an empty range (ratios null); a
/// name that is neither defined nor in the rollups is a 400 naming the company's funnels.
pub async fn funnel(
    conn: &mut PgConnection,
    range: DateRange,
    funnel: &FunnelName,
    defined: &FunnelDefinitions,
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
        let Some(events) = defined.steps(funnel.as_ref()) else {
            return Err(RequestError::UnknownFunnel {
                funnel: funnel.as_ref().to_string(),
                known: defined.names(),
            }
            .into());
        };
        return Ok(zero_steps(events));
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
