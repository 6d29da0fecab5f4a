//! Message rollups (SPEC §8.1): what the `messages` report reads, per local day of the send
//! (a cohort by send: a message's deliveries, opens, clicks and orders count on the day it
//! was sent, whenever they happen, so a campaign's rates are final numbers of that campaign
//! and never mix two sends).
//!
//! A send's day is that of `sent_at`, or of when we learned of it (`created_at`) for a send
//! known only from a provider event that did not say when it left. Per send, from its provider
//! events and the sessions that landed with its `lux_mid`:
//! - `sent` = 1; `delivered`, `bounced`, `unsubscribes`, `complaints` = 1 when it has at least
//!   one event of that kind;
//! - `opens` = 1 with a human open, `machine_opens` = 1 with a machine open (both can be 1);
//! - `clicks` = 1 with a human click: a provider or `/r/` click that is not a machine's, or a
//!   session (not a bot's) that landed with its `lux_mid`.
//!
//! `rollup_message_sends` keeps these per send, `rollup_message_days` sums them per day,
//! channel and campaign, and `rollup_message_orders` counts the orders credited to each send
//! (`orders.message_id`, set by the attribution job) with their net revenue per currency,
//! which `rollup_message_revenue_days` sums per day, channel, campaign and currency.
//! Cancelled and failed orders are left out, as in every rollup.

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::{Postgres, Transaction};
use uuid::Uuid;

/// The rollup tables of this module, for the job's per-day deletes.
pub const TABLES: [&str; 4] = [
    "rollup_message_days",
    "rollup_message_sends",
    "rollup_message_orders",
    "rollup_message_revenue_days",
];

/// When a send counts as sent (SQL over `message_sends m`).
const SEND_TIME: &str = "coalesce(m.sent_at, m.created_at)";

/// The first and last instants of the company's sends.
pub async fn bounds(
    tx: &mut Transaction<'_, Postgres>,
    company_id: Uuid,
) -> Result<(Option<DateTime<Utc>>, Option<DateTime<Utc>>), sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT min({SEND_TIME}), max({SEND_TIME}) FROM message_sends m WHERE company_id = $1"
    )))
    .bind(company_id)
    .fetch_one(&mut **tx)
    .await
}

/// The send days whose counts changed since `watermark`: the days of
/// - sends new or changed (`updated_at`) since then, and of sends with provider events or landings written since;
/// - sends whose orders were written or credited since (a refund, a new credit);
/// - sends that left a day, and messages that lost an order's credit (`message_changes`,
///   noted by triggers).
///
/// Notes older than a day before the watermark have been seen and are pruned.
pub async fn touched_days(
    tx: &mut Transaction<'_, Postgres>,
    company_id: Uuid,
    timezone: &str,
    watermark: DateTime<Utc>,
) -> Result<Vec<NaiveDate>, sqlx::Error> {
    sqlx::query(
        "DELETE FROM message_changes
         WHERE company_id = $1 AND changed_at < $2::timestamptz - interval '1 day'",
    )
    .bind(company_id)
    .bind(watermark)
    .execute(&mut **tx)
    .await?;
    let day = format!("({SEND_TIME} AT TIME ZONE $2)::date");
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT {day} AS day FROM message_sends m WHERE m.company_id = $1 AND m.updated_at >= $3
         UNION
         SELECT {day} FROM message_sends m
         WHERE m.company_id = $1 AND m.message_id IN (
             SELECT message_id FROM message_events WHERE company_id = $1 AND written_at >= $3
             UNION
             SELECT message_id FROM sessions
             WHERE company_id = $1 AND message_id IS NOT NULL AND created_at >= $3
             UNION
             SELECT message_id FROM orders
             WHERE company_id = $1 AND message_id IS NOT NULL AND updated_at >= $3
             UNION
             SELECT message_id FROM orders
             WHERE company_id = $1 AND message_id IS NOT NULL AND message_attributed_at >= $3)
         UNION
         SELECT (sent_at AT TIME ZONE $2)::date FROM message_changes
         WHERE company_id = $1 AND changed_at >= $3
         ORDER BY day"
    )))
    .bind(company_id)
    .bind(timezone)
    .bind(watermark)
    .fetch_all(&mut **tx)
    .await
}

/// Writes the message rollups of `days` (their rows already deleted), whose instants run
/// from `span.0` to `span.1`. Returns (sends read, rows written).
pub async fn recompute(
    tx: &mut Transaction<'_, Postgres>,
    company_id: Uuid,
    timezone: &str,
    days: &[NaiveDate],
    span: (DateTime<Utc>, DateTime<Utc>),
) -> Result<(u64, u64), sqlx::Error> {
    // The time bounds twice (with and without sent_at) so each uses its own index. The
    // landings are read through the partial index of sessions with a `lux_mid` (named by
    // `message_id IS NOT NULL`), never the company's every session.
    let sends = sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO rollup_message_sends (company_id, day, message_id, channel, campaign, sent,
             delivered, bounced, opens, machine_opens, clicks, unsubscribes, complaints)
         SELECT $1, s.day, s.message_id, s.channel, s.campaign, 1,
                coalesce(e.delivered, 0), coalesce(e.bounced, 0), coalesce(e.opens, 0),
                coalesce(e.machine_opens, 0),
                greatest(coalesce(e.clicks, 0),
                         (EXISTS (SELECT 1 FROM sessions l
                                  WHERE l.company_id = $1 AND l.message_id IS NOT NULL
                                    AND l.message_id = s.message_id AND NOT l.is_bot))::int),
                coalesce(e.unsubscribes, 0), coalesce(e.complaints, 0)
         FROM (SELECT m.message_id, m.channel, coalesce(m.campaign, '') AS campaign,
                      ({SEND_TIME} AT TIME ZONE $2)::date AS day
               FROM message_sends m
               WHERE m.company_id = $1
                 AND ((m.sent_at >= $4 AND m.sent_at < $5)
                      OR (m.sent_at IS NULL AND m.created_at >= $4 AND m.created_at < $5))) s
         LEFT JOIN LATERAL (
             SELECT max((kind = 'delivered')::int) AS delivered,
                    max((kind = 'bounced')::int) AS bounced,
                    max((kind = 'opened' AND NOT is_machine)::int) AS opens,
                    max((kind = 'opened' AND is_machine)::int) AS machine_opens,
                    max((kind = 'clicked' AND NOT is_machine)::int) AS clicks,
                    max((kind = 'unsubscribed')::int) AS unsubscribes,
                    max((kind = 'complained')::int) AS complaints
             FROM message_events ev
             WHERE ev.company_id = $1 AND ev.message_id = s.message_id) e ON true
         WHERE s.day = ANY($3)"
    )))
    .bind(company_id)
    .bind(timezone)
    .bind(days)
    .bind(span.0)
    .bind(span.1)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    if sends == 0 {
        return Ok((0, 0));
    }
    let per_day = sqlx::query(
        "INSERT INTO rollup_message_days (company_id, day, channel, campaign, sent, delivered,
             bounced, opens, machine_opens, clicks, unsubscribes, complaints)
         SELECT $1, day, channel, campaign, sum(sent), sum(delivered), sum(bounced), sum(opens),
                sum(machine_opens), sum(clicks), sum(unsubscribes), sum(complaints)
         FROM rollup_message_sends
         WHERE company_id = $1 AND day = ANY($2)
         GROUP BY day, channel, campaign",
    )
    .bind(company_id)
    .bind(days)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    // Each credited order finds its send by the send's primary key, and the send's day is
    // worked out as `rollup_message_sends` works it out. Not a join with that table: it was
    // filled a moment ago in this transaction and has no statistics yet, and on a year of
    // 10M-event data the planner, taking it for empty, scanned its 3 million rows once per
    // credited order (a rollups run that had not finished after 40 minutes).
    let orders = sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO rollup_message_orders (company_id, day, message_id, channel, campaign,
             currency, orders, net_minor)
         SELECT $1, s.day, s.message_id, s.channel, s.campaign, o.currency, count(*),
                sum(coalesce(o.net_minor, 0))
         FROM orders o
         CROSS JOIN LATERAL (
             SELECT m.message_id, m.channel, coalesce(m.campaign, '') AS campaign,
                    ({SEND_TIME} AT TIME ZONE $3)::date AS day
             FROM message_sends m
             WHERE m.company_id = $1 AND m.message_id = o.message_id) s
         WHERE o.company_id = $1 AND o.message_id IS NOT NULL
           AND o.status NOT IN ('cancelled', 'failed') AND s.day = ANY($2)
         GROUP BY s.day, s.message_id, s.channel, s.campaign, o.currency"
    )))
    .bind(company_id)
    .bind(days)
    .bind(timezone)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    let revenue = sqlx::query(
        "INSERT INTO rollup_message_revenue_days (company_id, day, channel, campaign, currency,
             orders, net_minor)
         SELECT $1, day, channel, campaign, currency, sum(orders), sum(net_minor)
         FROM rollup_message_orders
         WHERE company_id = $1 AND day = ANY($2)
         GROUP BY day, channel, campaign, currency",
    )
    .bind(company_id)
    .bind(days)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok((sends, sends + per_day + orders + revenue))
}
