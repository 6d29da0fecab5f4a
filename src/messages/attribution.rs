//! Message attribution (SPEC §8.1): the message each order is credited to.
//!
//! An order's message is that of the buyer's last human **message click** in the
//! [`CLICK_WINDOW_HOURS`] before the purchase (`placed_at − 120 h ≤ click ≤ placed_at`). A
//! message click is
//! - a `clicked` provider event (or `/r/` click, provider `link`) that is not a machine's,
//!   whose recipient (the event's, else its send's) is the buyer's email hash: the order's own,
//!   or one of the persons its visitor, user id and email hash belong to;
//! - a session (not a bot's) that landed with `lux_mid`, of any visitor linked to the buyer,
//!   at its start.
//!
//! The click's message must be a known send (its channel is the order's `message_channel`).
//! Opens never count; the latest click wins, ties broken by the click's reference. The result
//! goes on the order with the click that earned it (`message_click_at`, `message_click`), so
//! every credited order can be traced to one event or session.
//!
//! Runs as a step of the attribution job, over the same scope: incrementally, the orders not
//! attributed to messages yet or changed, and the orders a new click, a new send or a new
//! identity link may change (see [`candidate_orders`]). An order whose answer is unchanged
//! is not written, so a second run changes nothing.

use chrono::{DateTime, Utc};
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

use crate::attribution::{Outcome, Scope};

/// How long before a purchase a message click earns it (SPEC §8.1: 5 days, as Klaviyo,
/// Attentive and Postscript report owned-channel revenue).
pub const CLICK_WINDOW_HOURS: i32 = 120;

/// The rules in words, part of the attribution job's parameters: changing them (a new
/// version) makes the next run redo every order.
pub const RULES: &str = "messages=v1 click_window=120h";

/// Orders per transaction, as in touch attribution.
const CHUNK: usize = 2_000;

/// Credits the company's orders in `scope` to the messages their buyers last clicked.
pub async fn run(pool: &PgPool, company_id: Uuid, scope: Scope) -> Result<Outcome, sqlx::Error> {
    let candidates = {
        let mut tx = crate::db::begin_for_company(pool, company_id).await?;
        let ids = candidate_orders(&mut tx, company_id, scope).await?;
        tx.commit().await?;
        ids
    };
    let mut outcome = Outcome::default();
    for chunk in candidates.chunks(CHUNK) {
        outcome.examined += chunk.len() as u64;
        outcome.changed += attribute_chunk_retrying(pool, company_id, chunk).await?;
    }
    Ok(outcome)
}

/// The orders to (re)attribute, in id order. Incrementally (changed since `W`):
/// - orders never attributed to messages, or written since `W` (new buyer keys, new time);
/// - orders whose buyer has a click written since `W`, or a click on a send first known or completed
///   since `W` (a landing or provider click that came before its send, or before its recipient), placed within the
///   window after that click: for a landing, the orders naming its visitor or any key of the
///   visitor's person; for a provider click, those naming its recipient's email hash or any
///   key of that email's person;
/// - orders naming any key of a person whose identity links changed since `W`.
async fn candidate_orders(
    tx: &mut Transaction<'_, Postgres>,
    company_id: Uuid,
    scope: Scope,
) -> Result<Vec<Uuid>, sqlx::Error> {
    let since: DateTime<Utc> = match scope {
        Scope::ChangedSince(at) => at,
        fixed => return crate::attribution::orders_in_fixed_scope(tx, company_id, fixed).await,
    };
    sqlx::query_scalar(
        "WITH landings AS MATERIALIZED (
             SELECT visitor_id, started_at AS at FROM sessions
             WHERE company_id = $1 AND message_id IS NOT NULL AND created_at >= $2
             UNION
             SELECT s.visitor_id, s.started_at FROM message_sends m
             JOIN sessions s ON s.company_id = $1 AND s.message_id = m.message_id
             WHERE m.company_id = $1 AND m.updated_at >= $2),
         provider_clicks AS MATERIALIZED (
             SELECT coalesce(e.recipient_hash, m.recipient_hash) AS email_hash, e.occurred_at AS at
             FROM message_events e
             LEFT JOIN message_sends m ON m.company_id = $1 AND m.message_id = e.message_id
             WHERE e.company_id = $1 AND e.written_at >= $2 AND e.kind = 'clicked'
               AND NOT e.is_machine
             UNION
             SELECT coalesce(e.recipient_hash, m.recipient_hash), e.occurred_at
             FROM message_sends m
             JOIN message_events e ON e.company_id = $1 AND e.message_id = m.message_id
             WHERE m.company_id = $1 AND m.updated_at >= $2 AND e.kind = 'clicked'
               AND NOT e.is_machine),
         click_keys AS MATERIALIZED (
             SELECT 'visitor'::text AS key_kind, visitor_id::text AS key_value, at FROM landings
             UNION
             SELECT p.key_kind, p.key_value, l.at FROM landings l
             JOIN identity_keys k ON k.company_id = $1 AND k.key_kind = 'visitor'
                                 AND k.key_value = l.visitor_id::text
             JOIN identity_keys p ON p.company_id = $1 AND p.person_id = k.person_id
             UNION
             SELECT 'email', encode(email_hash, 'hex'), at FROM provider_clicks
             WHERE email_hash IS NOT NULL
             UNION
             SELECT p.key_kind, p.key_value, c.at FROM provider_clicks c
             JOIN identity_keys k ON k.company_id = $1 AND k.key_kind = 'email'
                                 AND k.key_value = encode(c.email_hash, 'hex')
             JOIN identity_keys p ON p.company_id = $1 AND p.person_id = k.person_id),
         link_keys AS MATERIALIZED (
             SELECT p.key_kind, p.key_value FROM identity_keys k
             JOIN identity_keys p ON p.company_id = $1 AND p.person_id = k.person_id
             WHERE k.company_id = $1 AND k.linked_at >= $2),
         -- Each kind on its own, converted after the kind is filtered: a user id is no uuid.
         click_visitors AS MATERIALIZED (
             SELECT key_value::uuid AS visitor_id, at FROM click_keys WHERE key_kind = 'visitor'),
         click_users AS MATERIALIZED (
             SELECT key_value AS user_id, at FROM click_keys WHERE key_kind = 'user'),
         click_emails AS MATERIALIZED (
             SELECT decode(key_value, 'hex') AS email_hash, at FROM click_keys
             WHERE key_kind = 'email'),
         link_visitors AS MATERIALIZED (
             SELECT key_value::uuid AS visitor_id FROM link_keys WHERE key_kind = 'visitor'),
         link_users AS MATERIALIZED (
             SELECT key_value AS user_id FROM link_keys WHERE key_kind = 'user'),
         link_emails AS MATERIALIZED (
             SELECT decode(key_value, 'hex') AS email_hash FROM link_keys
             WHERE key_kind = 'email')
         SELECT order_id FROM orders
         WHERE company_id = $1 AND (message_attributed_at IS NULL OR updated_at >= $2)
         UNION
         SELECT o.order_id FROM click_visitors c
         JOIN orders o ON o.company_id = $1 AND o.visitor_id = c.visitor_id
         WHERE o.placed_at BETWEEN c.at AND c.at + make_interval(hours => $3)
         UNION
         SELECT o.order_id FROM click_users c
         JOIN orders o ON o.company_id = $1 AND o.user_id = c.user_id
         WHERE o.placed_at BETWEEN c.at AND c.at + make_interval(hours => $3)
         UNION
         SELECT o.order_id FROM click_emails c
         JOIN orders o ON o.company_id = $1 AND o.email_hash = c.email_hash
         WHERE o.placed_at BETWEEN c.at AND c.at + make_interval(hours => $3)
         UNION
         SELECT o.order_id FROM orders o JOIN link_visitors v ON o.visitor_id = v.visitor_id
         WHERE o.company_id = $1
         UNION
         SELECT o.order_id FROM orders o JOIN link_users u ON o.user_id = u.user_id
         WHERE o.company_id = $1
         UNION
         SELECT o.order_id FROM orders o JOIN link_emails e ON o.email_hash = e.email_hash
         WHERE o.company_id = $1
         ORDER BY 1",
    )
    .bind(company_id)
    .bind(since)
    .bind(CLICK_WINDOW_HOURS)
    .fetch_all(&mut **tx)
    .await
}

/// [`attribute_chunk`] in its own transaction, redone on a deadlock or serialization failure
/// with the order worker (which locks an order, then its customer's other orders).
async fn attribute_chunk_retrying(
    pool: &PgPool,
    company_id: Uuid,
    order_ids: &[Uuid],
) -> Result<u64, sqlx::Error> {
    let mut attempt = 1;
    loop {
        let result = async {
            let mut tx = crate::db::begin_for_company(pool, company_id).await?;
            let changed = attribute_chunk(&mut tx, company_id, order_ids).await?;
            tx.commit().await?;
            Ok(changed)
        }
        .await;
        match result {
            Err(sqlx::Error::Database(e))
                if attempt < 3 && matches!(e.code().as_deref(), Some("40P01" | "40001")) =>
            {
                tracing::info!(attempt, error = %e, "message attribution conflicted; redoing it");
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// Finds each order's last human message click and writes the answers that changed (and
/// stamps orders seen for the first time). Returns how many orders' credit changed. One
/// statement: the clicks are a few rows per order, read through the identity graph the way
/// touch attribution reads sessions.
async fn attribute_chunk(
    tx: &mut Transaction<'_, Postgres>,
    company_id: Uuid,
    order_ids: &[Uuid],
) -> Result<u64, sqlx::Error> {
    // Lock the rows in id order first, as touch attribution does, so that a deadlock with
    // the order worker is rarer.
    sqlx::query(
        "SELECT order_id FROM orders WHERE company_id = $1 AND order_id = ANY($2)
         ORDER BY order_id FOR UPDATE",
    )
    .bind(company_id)
    .bind(order_ids)
    .execute(&mut **tx)
    .await?;
    let changed: Vec<bool> = sqlx::query_scalar(
        "WITH o AS MATERIALIZED (
             SELECT order_id, placed_at, visitor_id, user_id, email_hash, message_id,
                    message_channel, message_click_at, message_click, message_attributed_at
             FROM orders WHERE company_id = $1 AND order_id = ANY($2)),
         order_keys AS (
             SELECT order_id, 'visitor'::text AS kind, visitor_id::text AS value
             FROM o WHERE visitor_id IS NOT NULL
             UNION ALL
             SELECT order_id, 'user', user_id FROM o WHERE user_id IS NOT NULL
             UNION ALL
             SELECT order_id, 'email', encode(email_hash, 'hex') FROM o
             WHERE email_hash IS NOT NULL),
         order_persons AS MATERIALIZED (
             SELECT DISTINCT k.order_id, i.person_id FROM order_keys k
             JOIN identity_keys i ON i.company_id = $1 AND i.key_kind = k.kind
                                 AND i.key_value = k.value),
         order_visitors AS (
             SELECT order_id, visitor_id FROM o WHERE visitor_id IS NOT NULL
             UNION
             SELECT p.order_id, i.key_value::uuid FROM order_persons p
             JOIN identity_keys i ON i.company_id = $1 AND i.person_id = p.person_id
                                 AND i.key_kind = 'visitor'),
         order_emails AS MATERIALIZED (
             SELECT order_id, email_hash FROM o WHERE email_hash IS NOT NULL
             UNION
             SELECT p.order_id, decode(i.key_value, 'hex') FROM order_persons p
             JOIN identity_keys i ON i.company_id = $1 AND i.person_id = p.person_id
                                 AND i.key_kind = 'email'),
         clicks AS (
             SELECT v.order_id, s.started_at AS at, s.message_id,
                    'session:' || s.session_id AS ref
             FROM order_visitors v
             JOIN o ON o.order_id = v.order_id
             JOIN sessions s
               ON s.company_id = $1 AND s.visitor_id = v.visitor_id
              AND s.message_id IS NOT NULL AND NOT s.is_bot
              AND s.started_at >= o.placed_at - make_interval(hours => $3)
              AND s.started_at <= o.placed_at
             UNION ALL
             SELECT b.order_id, e.occurred_at, e.message_id, 'event:' || e.event_id
             FROM order_emails b
             JOIN o ON o.order_id = b.order_id
             JOIN message_events e
               ON e.company_id = $1 AND e.recipient_hash = b.email_hash
              AND e.kind = 'clicked' AND NOT e.is_machine
              AND e.occurred_at >= o.placed_at - make_interval(hours => $3)
              AND e.occurred_at <= o.placed_at
             UNION ALL
             -- Clicks that name no recipient (an SES click of a message to several, a /r/
             -- click): their send's.
             SELECT b.order_id, e.occurred_at, e.message_id, 'event:' || e.event_id
             FROM order_emails b
             JOIN o ON o.order_id = b.order_id
             JOIN message_sends m ON m.company_id = $1 AND m.recipient_hash = b.email_hash
             JOIN message_events e
               ON e.company_id = $1 AND e.message_id = m.message_id
              AND e.recipient_hash IS NULL AND e.kind = 'clicked' AND NOT e.is_machine
              AND e.occurred_at >= o.placed_at - make_interval(hours => $3)
              AND e.occurred_at <= o.placed_at),
         best AS (
             SELECT DISTINCT ON (c.order_id) c.order_id, c.message_id, m.channel, c.at, c.ref
             FROM clicks c
             JOIN message_sends m ON m.company_id = $1 AND m.message_id = c.message_id
             ORDER BY c.order_id, c.at DESC, c.ref DESC),
         answer AS (
             SELECT o.order_id, b.message_id, b.channel, b.at, b.ref,
                    (o.message_id, o.message_channel, o.message_click_at, o.message_click)
                    IS DISTINCT FROM (b.message_id, b.channel, b.at, b.ref) AS changed
             FROM o LEFT JOIN best b ON b.order_id = o.order_id)
         UPDATE orders t SET message_id = a.message_id, message_channel = a.channel,
                message_click_at = a.at, message_click = a.ref, message_attributed_at = now()
         FROM answer a
         WHERE t.company_id = $1 AND t.order_id = a.order_id
           AND (a.changed OR t.message_attributed_at IS NULL)
         RETURNING a.changed",
    )
    .bind(company_id)
    .bind(order_ids)
    .bind(CLICK_WINDOW_HOURS)
    .fetch_all(&mut **tx)
    .await?;
    // Orders seen for the first time are stamped; only a credit that moved counts as a change.
    Ok(changed.into_iter().filter(|c: &bool| *c).count() as u64)
}
