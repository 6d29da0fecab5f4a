//! Time to conversion (first touch → purchase) and qualified sessions: the two reports that
//! count sessions and orders rather than money.

use serde::Serialize;
use sqlx::PgConnection;

use super::ReportError;
use super::format::ratio;
use super::request::DateRange;

#[derive(Debug, Serialize, PartialEq)]
pub struct ConversionSummary {
    pub orders: i64,
    pub median_seconds: Option<i64>,
    pub p75_seconds: Option<i64>,
    pub p90_seconds: Option<i64>,
}

#[derive(Debug, Serialize)]
pub struct ConversionBucket {
    pub bucket: &'static str,
    pub min_seconds: i64,
    pub max_seconds: Option<i64>,
    pub orders: i64,
    pub share: Option<f64>,
}

const HOUR: i64 = 3600;
const DAY: i64 = 24 * HOUR;

/// The buckets' lower bounds, in seconds, and their names. Each bucket runs up to the next
/// bound, excluded; the last has no upper bound.
const BUCKETS: [(i64, &str); 7] = [
    (0, "0-1h"),
    (HOUR, "1h-24h"),
    (DAY, "1d-3d"),
    (3 * DAY, "3d-7d"),
    (7 * DAY, "7d-14d"),
    (14 * DAY, "14d-30d"),
    (30 * DAY, "30d+"),
];

#[derive(sqlx::FromRow)]
struct Percentiles {
    orders: i64,
    median: Option<i64>,
    p75: Option<i64>,
    p90: Option<i64>,
}

/// Time from first touch to purchase of the orders of the range (`rollup_conversions`: one
/// row per attributed order with a first touch, by its local day).
///
/// Summary: `orders` = their number; `median_seconds`, `p75_seconds`, `p90_seconds` = the
/// nearest-rank percentiles (`percentile_disc`: the smallest value with at least 50/75/90 %
/// of the orders at or below it; null without orders).
///
/// Rows: buckets [0, 1 h), [1 h, 24 h), [1 d, 3 d), [3 d, 7 d), [7 d, 14 d), [14 d, 30 d),
/// [30 d, ∞) (a value on a bound goes to the upper bucket) with `orders` in it and
/// `share` = orders ÷ all orders (null without orders).
pub async fn time_to_conversion(
    conn: &mut PgConnection,
    range: DateRange,
) -> Result<(ConversionSummary, Vec<ConversionBucket>), ReportError> {
    let p: Percentiles = sqlx::query_as(
        "SELECT count(*) AS orders,
                percentile_disc(0.5) WITHIN GROUP (ORDER BY seconds) AS median,
                percentile_disc(0.75) WITHIN GROUP (ORDER BY seconds) AS p75,
                percentile_disc(0.9) WITHIN GROUP (ORDER BY seconds) AS p90
         FROM rollup_conversions
         WHERE day BETWEEN $1 AND $2",
    )
    .bind(range.from())
    .bind(range.to())
    .fetch_one(&mut *conn)
    .await?;
    let bounds: Vec<i64> = BUCKETS.iter().map(|(lower, _)| *lower).collect();
    // width_bucket(x, thresholds) = how many thresholds are ≤ x: 1 for the first bucket.
    let counts: Vec<(i32, i64)> = sqlx::query_as(
        "SELECT width_bucket(seconds, $1::bigint[]), count(*)
         FROM rollup_conversions
         WHERE day BETWEEN $2 AND $3
         GROUP BY 1",
    )
    .bind(&bounds)
    .bind(range.from())
    .bind(range.to())
    .fetch_all(&mut *conn)
    .await?;
    let rows = BUCKETS
        .iter()
        .enumerate()
        .map(|(i, (lower, name))| {
            let orders = counts
                .iter()
                .find(|(bucket, _)| *bucket as usize == i + 1)
                .map_or(0, |(_, n)| *n);
            ConversionBucket {
                bucket: name,
                min_seconds: *lower,
                max_seconds: BUCKETS.get(i + 1).map(|(upper, _)| *upper),
                orders,
                share: ratio(orders, p.orders),
            }
        })
        .collect();
    let summary = ConversionSummary {
        orders: p.orders,
        median_seconds: p.median,
        p75_seconds: p.p75,
        p90_seconds: p.p90,
    };
    Ok((summary, rows))
}

#[derive(Debug, Serialize)]
pub struct QualifiedRow {
    pub channel: String,
    pub sessions: i64,
    pub engaged_sessions: i64,
    pub rate: Option<f64>,
}

/// Qualified session rate per channel (`rollup_sessions_daily`, bots excluded by the job):
/// `sessions` = Σ sessions, `engaged_sessions` = Σ engaged_sessions,
/// `rate` = engaged_sessions ÷ sessions (null when 0 sessions); ordered by sessions
/// descending, then channel; then the total row, channel `"All"`.
pub async fn qualified_sessions(
    conn: &mut PgConnection,
    range: DateRange,
) -> Result<Vec<QualifiedRow>, ReportError> {
    let channels: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT channel, sum(sessions)::bigint, sum(engaged_sessions)::bigint
         FROM rollup_sessions_daily
         WHERE day BETWEEN $1 AND $2
         GROUP BY channel
         ORDER BY 2 DESC, channel",
    )
    .bind(range.from())
    .bind(range.to())
    .fetch_all(conn)
    .await?;
    let (sessions, engaged) = channels
        .iter()
        .fold((0, 0), |(s, e), (_, cs, ce)| (s + cs, e + ce));
    let row = |channel: String, sessions: i64, engaged_sessions: i64| QualifiedRow {
        channel,
        sessions,
        engaged_sessions,
        rate: ratio(engaged_sessions, sessions),
    };
    let mut rows: Vec<QualifiedRow> = channels
        .into_iter()
        .map(|(channel, s, e)| row(channel, s, e))
        .collect();
    rows.push(row("All".into(), sessions, engaged));
    Ok(rows)
}
