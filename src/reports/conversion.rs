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

use crate::rollups::conversion_buckets::BUCKETS;

/// The percentiles of the summary.
const PERCENTILES: [f64; 3] = [0.5, 0.75, 0.9];

/// Time from first touch to purchase of the orders of the range (`rollup_conversions`: one
/// row per attributed order with a first touch, by its local day).
///
/// Summary: `orders` = their number; `median_seconds`, `p75_seconds`, `p90_seconds` = the
/// nearest-rank percentiles (`percentile_disc`: the smallest value with at least 50/75/90 %
/// of the orders at or below it, i.e. the ⌈p × orders⌉-th smallest; null without orders).
///
/// Rows: buckets [0, 1 h), [1 h, 24 h), [1 d, 3 d), [3 d, 7 d), [7 d, 14 d), [14 d, 30 d),
/// [30 d, ∞) (a value on a bound goes to the upper bucket) with `orders` in it and
/// `share` = orders ÷ all orders (null without orders).
///
/// Read from `rollup_conversion_bins` (orders per day and narrow bin of seconds, each bin
/// within one bucket): the counts are sums of bins, and each percentile's rank falls in one
/// bin, whose orders of the range alone are read from `rollup_conversions` for the exact
/// value.
pub async fn time_to_conversion(
    conn: &mut PgConnection,
    range: DateRange,
) -> Result<(ConversionSummary, Vec<ConversionBucket>), ReportError> {
    // (lower bound, orders), ascending.
    let bins: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT min_seconds, sum(orders)::bigint
         FROM rollup_conversion_bins
         WHERE day BETWEEN $1 AND $2
         GROUP BY min_seconds
         ORDER BY min_seconds",
    )
    .bind(range.from())
    .bind(range.to())
    .fetch_all(&mut *conn)
    .await?;
    let orders: i64 = bins.iter().map(|(_, n)| n).sum();
    let percentiles = percentiles(conn, range, &bins, orders).await?;
    let rows = BUCKETS
        .iter()
        .enumerate()
        .map(|(i, (lower, name))| {
            let upper = BUCKETS.get(i + 1).map(|(upper, _)| *upper);
            let orders_in = bins
                .iter()
                .filter(|(min, _)| min >= lower && upper.is_none_or(|u| *min < u))
                .map(|(_, n)| n)
                .sum();
            ConversionBucket {
                bucket: name,
                min_seconds: *lower,
                max_seconds: upper,
                orders: orders_in,
                share: ratio(orders_in, orders),
            }
        })
        .collect();
    let [median_seconds, p75_seconds, p90_seconds] = percentiles;
    let summary = ConversionSummary {
        orders,
        median_seconds,
        p75_seconds,
        p90_seconds,
    };
    Ok((summary, rows))
}

/// [`PERCENTILES`] of the range's conversion times, as `percentile_disc` gives them: the
/// ⌈p × n⌉-th smallest (the rank computed in double precision, as PostgreSQL does). `bins`
/// tell in which bin each rank falls and how many smaller values the bins below hold; one
/// statement then reads, for each, that bin's values of the range in order, skipping to the
/// rank.
async fn percentiles(
    conn: &mut PgConnection,
    range: DateRange,
    bins: &[(i64, i64)],
    orders: i64,
) -> Result<[Option<i64>; 3], ReportError> {
    if orders == 0 {
        return Ok([None; 3]);
    }
    let bounds = crate::rollups::conversion_bin_bounds();
    let (mut lows, mut highs, mut skips) = (Vec::new(), Vec::new(), Vec::new());
    for p in PERCENTILES {
        let rank = ((p * orders as f64).ceil() as i64).clamp(1, orders);
        let mut below = 0;
        let (low, in_bin) = bins
            .iter()
            .find(|(_, n)| {
                below += n;
                below >= rank
            })
            .copied()
            .ok_or_else(|| ReportError::Data("conversion bins add up to less".into()))?;
        let high = bounds
            .iter()
            .copied()
            .find(|b| *b > low)
            .unwrap_or(i64::MAX);
        lows.push(low);
        highs.push(high);
        skips.push(rank - (below - in_bin) - 1);
    }
    let values: Vec<(i64, Option<i64>)> = sqlx::query_as(
        "SELECT p.i, v.seconds
         FROM unnest($3::bigint[], $4::bigint[], $5::bigint[]) WITH ORDINALITY
                  AS p(low, high, skip, i)
         LEFT JOIN LATERAL (
             SELECT seconds FROM rollup_conversions
             WHERE seconds >= p.low AND seconds < p.high AND day BETWEEN $1 AND $2
             ORDER BY seconds
             OFFSET p.skip LIMIT 1) v ON true
         ORDER BY p.i",
    )
    .bind(range.from())
    .bind(range.to())
    .bind(&lows)
    .bind(&highs)
    .bind(&skips)
    .fetch_all(&mut *conn)
    .await?;
    let mut found = [None; 3];
    for (slot, (_, value)) in found.iter_mut().zip(values) {
        *slot = Some(value.ok_or_else(|| {
            ReportError::Data("a conversion bin holds fewer orders than counted".into())
        })?);
    }
    Ok(found)
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
