//! Creative rollups (SPEC §8.2): what the `creatives` and `creative_decay` reports and the
//! daily fatigue job read, per local day and creative.
//!
//! A creative is named by the spend rows' `ad_id` and by a session's creative: the
//! `creative_id` of its first event that had one (`sessions.creative_id`, set at ingestion),
//! else its landing `utm_content`. Creatives not in the catalog get their rows all the same,
//! under their id. Ids longer than the catalog allows (200 characters) are left out.
//!
//! - `rollup_creative_days`: impressions, clicks and reach of the day's `ad_spend` rows with
//!   that `ad_id` (summed over platforms and campaigns; reach only over rows that have one)
//!   and the sessions (bots left out) that started that day with that creative;
//! - `rollup_creative_spend_days`: their spend, per currency, in minor units;
//! - `rollup_creative_revenue_days`: the orders and net revenue credited to touches with that
//!   creative, by model and currency: `rollup_revenue_daily` (computed just before, in the
//!   same transaction) summed over its other keys.

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::{Postgres, Transaction};
use uuid::Uuid;

use crate::commerce::money::{THREE_DECIMAL, ZERO_DECIMAL};

/// The rollup tables of this module, for the job's per-day deletes.
pub const TABLES: [&str; 3] = [
    "rollup_creative_days",
    "rollup_creative_spend_days",
    "rollup_creative_revenue_days",
];

/// A session's creative (SQL over `sessions s`): the event's `creative_id`, else the landing
/// `utm_content`. Shared with the revenue rollup, so a touch's creative is the same one.
pub const SESSION_CREATIVE: &str = "coalesce(s.creative_id, s.utm_content)";

/// The longest creative id kept (the catalog's and the fatigue history's limit).
const MAX_ID: &str = "200";

/// Writes the creative rollups of `days` (their rows already deleted, and the day's
/// `rollup_revenue_daily` rows already written), whose instants run from `span.0` to
/// `span.1`. Returns (spend rows and sessions read, rows written).
pub async fn recompute(
    tx: &mut Transaction<'_, Postgres>,
    company_id: Uuid,
    timezone: &str,
    days: &[NaiveDate],
    span: (DateTime<Utc>, DateTime<Utc>),
) -> Result<(u64, u64), sqlx::Error> {
    // Sessions through their start index (the span), spend through its primary key (days).
    let (examined, delivery): (i64, i64) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "WITH parts AS (
             SELECT day, ad_id AS creative_id, impressions, clicks, reach,
                    CASE WHEN reach IS NULL THEN 0 ELSE impressions END AS reach_impressions,
                    0 AS sessions
             FROM ad_spend
             WHERE company_id = $1 AND day = ANY($3) AND ad_id <> ''
               AND length(ad_id) <= {MAX_ID}
             UNION ALL
             SELECT (s.started_at AT TIME ZONE $2)::date, {SESSION_CREATIVE}, 0, 0, NULL, 0, 1
             FROM sessions s
             WHERE s.company_id = $1 AND NOT s.is_bot
               AND s.started_at >= $4 AND s.started_at < $5
               AND (s.started_at AT TIME ZONE $2)::date = ANY($3)
               AND length({SESSION_CREATIVE}) BETWEEN 1 AND {MAX_ID}),
         written AS (
             INSERT INTO rollup_creative_days (company_id, day, creative_id, impressions, clicks,
                 reach, reach_impressions, sessions)
             SELECT $1, day, creative_id, sum(impressions), sum(clicks), sum(reach),
                    sum(reach_impressions), sum(sessions)
             FROM parts
             GROUP BY day, creative_id
             RETURNING 1)
         SELECT (SELECT count(*) FROM parts), (SELECT count(*) FROM written)"
    )))
    .bind(company_id)
    .bind(timezone)
    .bind(days)
    .bind(span.0)
    .bind(span.1)
    .fetch_one(&mut **tx)
    .await?;
    let spend = sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO rollup_creative_spend_days (company_id, day, creative_id, currency,
             spend_minor)
         SELECT $1, day, ad_id, currency,
                sum(spend) * power(10::numeric, CASE WHEN currency::text = ANY($3) THEN 0
                                                     WHEN currency::text = ANY($4) THEN 3
                                                     ELSE 2 END)
         FROM ad_spend
         WHERE company_id = $1 AND day = ANY($2) AND ad_id <> '' AND length(ad_id) <= {MAX_ID}
         GROUP BY day, ad_id, currency"
    )))
    .bind(company_id)
    .bind(days)
    .bind(ZERO_DECIMAL)
    .bind(THREE_DECIMAL)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    let revenue = sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO rollup_creative_revenue_days (company_id, day, creative_id, model, currency,
             orders, net_minor)
         SELECT $1, day, creative, model, currency, sum(orders), sum(net_minor)
         FROM rollup_revenue_daily
         WHERE company_id = $1 AND day = ANY($2) AND creative <> ''
           AND length(creative) <= {MAX_ID}
         GROUP BY day, creative, model, currency"
    )))
    .bind(company_id)
    .bind(days)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok((examined as u64, delivery as u64 + spend + revenue))
}
