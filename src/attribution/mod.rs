//! Attribution (SPEC §6): which sessions earned each order.
//!
//! The buyer's touches are the sessions of every visitor linked to the order (its own
//! visitor, and every visitor of the persons its visitor, user id and email hash belong to)
//! that started in the lookback window before the purchase. The rules live in [`model`];
//! this module finds the orders to (re)attribute, loads their touches in bulk and writes the
//! results: first and last touch on `orders`, every model's credits in `attribution_credits`.
//!
//! The job is incremental. It redoes the orders that are new or changed, the orders of
//! visitors whose sessions were written since the last run (late events, backfills), and the
//! orders of persons whose identity links changed (a login joining two devices). A result
//! identical to the stored one (same digest) is not written, so a second run changes nothing.

pub mod model;
pub mod settings;

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

use model::{OrderAttribution, Touch, UNATTRIBUTED};
use settings::AttributionSettings;

/// Orders attributed per transaction: big enough for set-based reads and writes, small enough
/// not to hold order rows locked against the order worker for long.
const CHUNK: usize = 2_000;

/// Chunks attributed at once, each in its own transaction on its own connection: while one
/// waits for PostgreSQL, the other computes or writes.
const PARALLEL_CHUNKS: usize = 2;

/// What a run did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    /// Orders whose attribution was computed.
    pub examined: u64,
    /// Orders whose stored attribution changed (new ones included).
    pub changed: u64,
}

/// Which orders a run looks at.
#[derive(Debug, Clone, Copy)]
pub enum Scope {
    /// Every order of the company.
    All,
    /// Orders that may have changed since this time: every row written by a transaction
    /// that started at or after it (the previous run's watermark).
    ChangedSince(DateTime<Utc>),
    /// Orders placed on these local days of the company (both included).
    PlacedOn {
        from: chrono::NaiveDate,
        to: chrono::NaiveDate,
    },
}

/// The company's attribution settings.
pub async fn load_settings(
    pool: &PgPool,
    company_id: Uuid,
) -> Result<AttributionSettings, LoadError> {
    let mut tx = crate::db::begin_for_company(pool, company_id).await?;
    let settings: serde_json::Value =
        sqlx::query_scalar("SELECT settings FROM companies WHERE company_id = $1")
            .bind(company_id)
            .fetch_one(&mut *tx)
            .await?;
    tx.commit().await?;
    Ok(AttributionSettings::from_company_settings(&settings)?)
}

/// Why a company's settings could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Settings(#[from] settings::SettingsError),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
}

/// Attributes the company's orders in `scope` with `settings`.
pub async fn run(
    pool: &PgPool,
    company_id: Uuid,
    settings: &AttributionSettings,
    scope: Scope,
) -> Result<Outcome, sqlx::Error> {
    let candidates = {
        let mut tx = crate::db::begin_for_company(pool, company_id).await?;
        let ids = candidate_orders(&mut tx, company_id, settings, scope).await?;
        tx.commit().await?;
        ids
    };
    let rules = std::sync::Arc::new(settings.rules());
    let settings = std::sync::Arc::new(settings.clone());
    let mut outcome = Outcome::default();
    let mut running = tokio::task::JoinSet::new();
    for chunk in candidates.chunks(CHUNK) {
        if running.len() >= PARALLEL_CHUNKS {
            outcome.add(running.join_next().await.expect("a chunk is running"))?;
        }
        let (pool, chunk) = (pool.clone(), chunk.to_vec());
        let (settings, rules) = (settings.clone(), rules.clone());
        running.spawn(async move {
            let changed =
                attribute_chunk_retrying(&pool, company_id, &chunk, &settings, &rules).await?;
            Ok::<_, sqlx::Error>((chunk.len() as u64, changed))
        });
    }
    while let Some(done) = running.join_next().await {
        outcome.add(done)?;
    }
    Ok(outcome)
}

impl Outcome {
    fn add(
        &mut self,
        chunk: Result<Result<(u64, u64), sqlx::Error>, tokio::task::JoinError>,
    ) -> Result<(), sqlx::Error> {
        let (examined, changed) = chunk.map_err(|e| sqlx::Error::Protocol(e.to_string()))??;
        self.examined += examined;
        self.changed += changed;
        Ok(())
    }
}

/// The orders of a scope that needs no change tracking, in id order: every order, or those
/// placed on company-local days `from..=to`. Shared by touch and message attribution.
/// `ChangedSince` has no fixed set: each caller tracks its own changes.
pub(crate) async fn orders_in_fixed_scope(
    tx: &mut Transaction<'_, Postgres>,
    company_id: Uuid,
    scope: Scope,
) -> Result<Vec<Uuid>, sqlx::Error> {
    match scope {
        Scope::All | Scope::ChangedSince(_) => {
            sqlx::query_scalar(
                "SELECT order_id FROM orders WHERE company_id = $1 ORDER BY order_id",
            )
            .bind(company_id)
            .fetch_all(&mut **tx)
            .await
        }
        Scope::PlacedOn { from, to } => {
            sqlx::query_scalar(
                "SELECT o.order_id FROM orders o
                 JOIN companies c ON c.company_id = o.company_id
                 WHERE o.company_id = $1
                   AND o.placed_at >= ($2::date::timestamp AT TIME ZONE c.timezone)
                   AND o.placed_at < (($3::date + 1)::timestamp AT TIME ZONE c.timezone)
                 ORDER BY o.order_id",
            )
            .bind(company_id)
            .bind(from)
            .bind(to)
            .fetch_all(&mut **tx)
            .await
        }
    }
}

/// The orders to attribute, in id order.
async fn candidate_orders(
    tx: &mut Transaction<'_, Postgres>,
    company_id: Uuid,
    settings: &AttributionSettings,
    scope: Scope,
) -> Result<Vec<Uuid>, sqlx::Error> {
    let since = match scope {
        Scope::ChangedSince(at) => at,
        fixed => return orders_in_fixed_scope(tx, company_id, fixed).await,
    };
    // Orders not attributed yet or changed (orders under other rules are handled by the job,
    // which redoes everything then); then the orders whose touches may have changed:
    // - sessions written since: the orders naming their visitor, or any key of the person
    //   the visitor belongs to, placed within the lookback after those sessions started;
    // - identity links made or moved since (a move also stamps the keys of the person who
    //   lost the device): the orders naming any key of the persons concerned.
    sqlx::query_scalar(
        "WITH new_sessions AS MATERIALIZED (
             SELECT visitor_id, min(started_at) AS first_start, max(started_at) AS last_start
             FROM sessions WHERE company_id = $1 AND created_at >= $2
             GROUP BY visitor_id),
         bounds AS (
             SELECT min(first_start) AS lo,
                    max(last_start) + make_interval(hours => 24 * $3) AS hi
             FROM new_sessions),
         session_keys AS MATERIALIZED (
             SELECT 'visitor'::text AS key_kind, visitor_id::text AS key_value FROM new_sessions
             UNION
             SELECT p.key_kind, p.key_value FROM new_sessions n
             JOIN identity_keys k ON k.company_id = $1 AND k.key_kind = 'visitor'
                                 AND k.key_value = n.visitor_id::text
             JOIN identity_keys p ON p.company_id = $1 AND p.person_id = k.person_id),
         link_keys AS MATERIALIZED (
             SELECT p.key_kind, p.key_value FROM identity_keys k
             JOIN identity_keys p ON p.company_id = $1 AND p.person_id = k.person_id
             WHERE k.company_id = $1 AND k.linked_at >= $2),
         session_visitors AS MATERIALIZED (
             SELECT key_value::uuid AS visitor_id FROM session_keys WHERE key_kind = 'visitor'),
         -- Each kind on its own, converted after the kind is filtered: a user id is no uuid.
         link_visitors AS MATERIALIZED (
             SELECT key_value::uuid AS visitor_id FROM link_keys WHERE key_kind = 'visitor'),
         link_users AS MATERIALIZED (
             SELECT key_value AS user_id FROM link_keys WHERE key_kind = 'user'),
         link_emails AS MATERIALIZED (
             SELECT decode(key_value, 'hex') AS email_hash FROM link_keys
             WHERE key_kind = 'email')
         SELECT order_id FROM orders
         WHERE company_id = $1 AND (attributed_at IS NULL OR updated_at >= $2)
         UNION
         SELECT o.order_id FROM orders o, bounds b
         WHERE o.company_id = $1 AND o.placed_at BETWEEN b.lo AND b.hi
           AND (o.visitor_id IN (SELECT visitor_id FROM session_visitors)
             OR o.user_id IN (SELECT key_value FROM session_keys WHERE key_kind = 'user')
             OR o.email_hash IN (SELECT decode(key_value, 'hex') FROM session_keys
                                 WHERE key_kind = 'email'))
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
    .bind(settings.lookback_days as i32)
    .fetch_all(&mut **tx)
    .await
}

#[derive(sqlx::FromRow)]
struct OrderRow {
    order_id: Uuid,
    placed_at: DateTime<Utc>,
    attribution_digest: Option<Vec<u8>>,
}

#[derive(sqlx::FromRow)]
struct TouchRow {
    order_id: Uuid,
    session_id: Option<Uuid>,
    started_at: Option<DateTime<Utc>>,
    channel: Option<String>,
    source: Option<String>,
    medium: Option<String>,
    campaign: Option<String>,
}

/// Attributes a chunk in its own transaction. A deadlock with a concurrent order merge (which
/// locks an order, then its customer's other orders) or a serialization failure is retried:
/// the chunk is simply redone.
async fn attribute_chunk_retrying(
    pool: &PgPool,
    company_id: Uuid,
    order_ids: &[Uuid],
    settings: &AttributionSettings,
    rules: &str,
) -> Result<u64, sqlx::Error> {
    let mut attempt = 1;
    loop {
        let result = async {
            let mut tx = crate::db::begin_for_company(pool, company_id).await?;
            let changed = attribute_chunk(&mut tx, company_id, order_ids, settings, rules).await?;
            tx.commit().await?;
            Ok(changed)
        }
        .await;
        match result {
            Err(sqlx::Error::Database(e))
                if attempt < 3 && matches!(e.code().as_deref(), Some("40P01" | "40001")) =>
            {
                tracing::info!(attempt, error = %e, "attribution chunk conflicted; redoing it");
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// Attributes one chunk of orders and writes the results that changed. Returns how many.
async fn attribute_chunk(
    tx: &mut Transaction<'_, Postgres>,
    company_id: Uuid,
    order_ids: &[Uuid],
    settings: &AttributionSettings,
    rules: &str,
) -> Result<u64, sqlx::Error> {
    let orders: Vec<OrderRow> = sqlx::query_as(
        "SELECT order_id, placed_at, attribution_digest FROM orders
         WHERE company_id = $1 AND order_id = ANY($2)",
    )
    .bind(company_id)
    .bind(order_ids)
    .fetch_all(&mut **tx)
    .await?;
    let mut touches = load_touches(tx, company_id, order_ids, settings.lookback_days).await?;

    let mut changed = Vec::new();
    for order in orders {
        let (has_visitor, order_touches) = touches.remove(&order.order_id).unwrap_or_default();
        let attribution = model::attribute(order.placed_at, has_visitor, order_touches, settings);
        let digest = digest(&attribution, rules);
        if order.attribution_digest.as_deref() != Some(digest.as_slice()) {
            changed.push((order.order_id, attribution, digest));
        }
    }
    if !changed.is_empty() {
        write_results(tx, company_id, &changed, rules).await?;
    }
    Ok(changed.len() as u64)
}

/// For each order, whether any visitor is linked to its buyer, and those visitors' sessions
/// in the lookback window (bots excluded). The window's exact edges are applied again by the
/// model; here it only keeps the read small. (In hours: a day of an interval follows the
/// session's time zone, and would be 23 or 25 hours across a DST change.)
async fn load_touches(
    tx: &mut Transaction<'_, Postgres>,
    company_id: Uuid,
    order_ids: &[Uuid],
    lookback_days: u32,
) -> Result<HashMap<Uuid, (bool, Vec<Touch>)>, sqlx::Error> {
    let rows: Vec<TouchRow> = sqlx::query_as(
        "WITH o AS MATERIALIZED (
             SELECT order_id, placed_at, visitor_id, user_id, email_hash FROM orders
             WHERE company_id = $1 AND order_id = ANY($2)),
         order_keys AS (
             SELECT order_id, 'visitor'::text AS kind, visitor_id::text AS value
             FROM o WHERE visitor_id IS NOT NULL
             UNION ALL
             SELECT order_id, 'user', user_id FROM o WHERE user_id IS NOT NULL
             UNION ALL
             SELECT order_id, 'email', encode(email_hash, 'hex') FROM o
             WHERE email_hash IS NOT NULL),
         order_persons AS (
             SELECT DISTINCT k.order_id, i.person_id FROM order_keys k
             JOIN identity_keys i ON i.company_id = $1 AND i.key_kind = k.kind
                                 AND i.key_value = k.value),
         order_visitors AS (
             SELECT order_id, visitor_id FROM o WHERE visitor_id IS NOT NULL
             UNION
             SELECT p.order_id, i.key_value::uuid FROM order_persons p
             JOIN identity_keys i ON i.company_id = $1 AND i.person_id = p.person_id
                                 AND i.key_kind = 'visitor')
         SELECT v.order_id, s.session_id, s.started_at, s.channel, s.source, s.medium,
                s.campaign
         FROM order_visitors v
         JOIN o ON o.order_id = v.order_id
         LEFT JOIN sessions s
           ON s.company_id = $1 AND s.visitor_id = v.visitor_id AND NOT s.is_bot
          AND s.started_at >= o.placed_at - make_interval(hours => 24 * $3)
          AND s.started_at <= o.placed_at",
    )
    .bind(company_id)
    .bind(order_ids)
    .bind(lookback_days as i32)
    .fetch_all(&mut **tx)
    .await?;
    let mut by_order: HashMap<Uuid, (bool, Vec<Touch>)> = HashMap::new();
    for row in rows {
        let entry = by_order.entry(row.order_id).or_default();
        entry.0 = true;
        if let (Some(session_id), Some(started_at), Some(channel)) =
            (row.session_id, row.started_at, row.channel)
        {
            entry.1.push(Touch {
                session_id,
                started_at,
                channel,
                source: row.source.unwrap_or_default(),
                medium: row.medium.unwrap_or_default(),
                campaign: row.campaign,
            });
        }
    }
    Ok(by_order)
}

/// A digest of everything stored for an order's attribution: equal digests mean identical
/// rows, so nothing is rewritten.
fn digest(a: &OrderAttribution, rules: &str) -> Vec<u8> {
    use std::fmt::Write;
    let mut text = format!(
        "{rules}\n{}\n{:?}\n{:?}\n",
        a.status.as_str(),
        a.first,
        a.last
    );
    for t in &a.path {
        let _ = writeln!(
            text,
            "{} {} {}\t{}\t{}\t{}",
            t.session_id,
            t.started_at.timestamp_micros(),
            t.channel,
            t.source,
            t.medium,
            t.campaign.as_deref().unwrap_or("")
        );
    }
    for c in &a.credits {
        let _ = writeln!(text, "{} {:?} {}", c.model.as_str(), c.touch, c.units);
    }
    Sha256::digest(text.as_bytes())[..16].to_vec()
}

/// One order's columns, as the JSON record the bulk update reads.
#[derive(Serialize)]
struct OrderColumns<'a> {
    order_id: Uuid,
    status: &'static str,
    first_channel: &'a str,
    first_source: Option<&'a str>,
    first_medium: Option<&'a str>,
    first_campaign: Option<&'a str>,
    first_session_id: Option<Uuid>,
    first_at: Option<DateTime<Utc>>,
    last_channel: &'a str,
    last_source: Option<&'a str>,
    last_medium: Option<&'a str>,
    last_campaign: Option<&'a str>,
    last_session_id: Option<Uuid>,
    last_at: Option<DateTime<Utc>>,
    channel_path: Vec<&'a str>,
    digest: String,
}

impl<'a> OrderColumns<'a> {
    fn new(order_id: Uuid, a: &'a OrderAttribution, digest: &[u8]) -> Self {
        let (first, last) = (a.first_touch(), a.last_touch());
        OrderColumns {
            order_id,
            status: a.status.as_str(),
            first_channel: first.map_or(UNATTRIBUTED, |t| t.channel.as_str()),
            first_source: first.map(|t| t.source.as_str()),
            first_medium: first.map(|t| t.medium.as_str()),
            first_campaign: first.and_then(|t| t.campaign.as_deref()),
            first_session_id: first.map(|t| t.session_id),
            first_at: first.map(|t| t.started_at),
            last_channel: last.map_or(UNATTRIBUTED, |t| t.channel.as_str()),
            last_source: last.map(|t| t.source.as_str()),
            last_medium: last.map(|t| t.medium.as_str()),
            last_campaign: last.and_then(|t| t.campaign.as_deref()),
            last_session_id: last.map(|t| t.session_id),
            last_at: last.map(|t| t.started_at),
            channel_path: a.path.iter().map(|t| t.channel.as_str()).collect(),
            digest: hex::encode(digest),
        }
    }
}

/// Writes changed attributions: the order columns in one bulk update, the credits replaced.
async fn write_results(
    tx: &mut Transaction<'_, Postgres>,
    company_id: Uuid,
    changed: &[(Uuid, OrderAttribution, Vec<u8>)],
    rules: &str,
) -> Result<(), sqlx::Error> {
    let records: Vec<OrderColumns> = changed
        .iter()
        .map(|(id, a, d)| OrderColumns::new(*id, a, d))
        .collect();
    // Lock the rows in id order first: the order worker locks an order and then its
    // customer's other orders, and a fixed order here makes a deadlock between the two rarer.
    let ids: Vec<Uuid> = changed.iter().map(|(id, _, _)| *id).collect();
    sqlx::query(
        "SELECT order_id FROM orders WHERE company_id = $1 AND order_id = ANY($2)
         ORDER BY order_id FOR UPDATE",
    )
    .bind(company_id)
    .bind(&ids)
    .execute(&mut **tx)
    .await?;
    // Only orders still there get credits: one merged into another since it was read is gone.
    let updated: Vec<Uuid> = sqlx::query_scalar(
        "UPDATE orders o SET
             attribution_status = u.status,
             first_touch_channel = u.first_channel, first_touch_source = u.first_source,
             first_touch_medium = u.first_medium, first_touch_campaign = u.first_campaign,
             first_touch_session_id = u.first_session_id, first_touch_at = u.first_at,
             last_touch_channel = u.last_channel, last_touch_source = u.last_source,
             last_touch_medium = u.last_medium, last_touch_campaign = u.last_campaign,
             last_touch_session_id = u.last_session_id, last_touch_at = u.last_at,
             channel_path = u.channel_path, attribution_rules = $3,
             attribution_digest = decode(u.digest, 'hex'), attributed_at = now()
         FROM jsonb_to_recordset($2) AS u(
             order_id uuid, status text,
             first_channel text, first_source text, first_medium text, first_campaign text,
             first_session_id uuid, first_at timestamptz,
             last_channel text, last_source text, last_medium text, last_campaign text,
             last_session_id uuid, last_at timestamptz,
             channel_path text[], digest text)
         WHERE o.company_id = $1 AND o.order_id = u.order_id
         RETURNING o.order_id",
    )
    .bind(company_id)
    .bind(sqlx::types::Json(&records))
    .bind(rules)
    .fetch_all(&mut **tx)
    .await?;

    sqlx::query("DELETE FROM attribution_credits WHERE company_id = $1 AND order_id = ANY($2)")
        .bind(company_id)
        .bind(&updated)
        .execute(&mut **tx)
        .await?;
    let updated: HashSet<Uuid> = updated.into_iter().collect();
    let still_there: Vec<&(Uuid, OrderAttribution, Vec<u8>)> = changed
        .iter()
        .filter(|(id, _, _)| updated.contains(id))
        .collect();
    insert_credits(tx, company_id, &still_there).await
}

async fn insert_credits(
    tx: &mut Transaction<'_, Postgres>,
    company_id: Uuid,
    changed: &[&(Uuid, OrderAttribution, Vec<u8>)],
) -> Result<(), sqlx::Error> {
    let mut c = CreditColumns::default();
    for (order_id, a, _) in changed {
        for credit in &a.credits {
            let touch = credit.touch.map(|i| &a.path[i]);
            c.order_id.push(*order_id);
            c.model.push(credit.model.as_str());
            c.touch_index.push(credit.touch.unwrap_or(0) as i32);
            c.session_id.push(touch.map(|t| t.session_id));
            c.started_at.push(touch.map(|t| t.started_at));
            c.channel
                .push(touch.map_or(UNATTRIBUTED, |t| t.channel.as_str()));
            c.source.push(touch.map(|t| t.source.as_str()));
            c.medium.push(touch.map(|t| t.medium.as_str()));
            c.campaign.push(touch.and_then(|t| t.campaign.as_deref()));
            c.units.push(credit.units);
        }
    }
    sqlx::query(
        "INSERT INTO attribution_credits (company_id, order_id, model, touch_index, session_id,
             started_at, channel, source, medium, campaign, credit)
         SELECT $1, u.order_id, u.model, u.touch_index, u.session_id, u.started_at, u.channel,
                u.source, u.medium, u.campaign, u.units::numeric / $12
         FROM unnest($2::uuid[], $3::text[], $4::int4[], $5::uuid[], $6::timestamptz[],
                     $7::text[], $8::text[], $9::text[], $10::text[], $11::int8[])
              AS u(order_id, model, touch_index, session_id, started_at, channel, source,
                   medium, campaign, units)",
    )
    .bind(company_id)
    .bind(&c.order_id)
    .bind(&c.model)
    .bind(&c.touch_index)
    .bind(&c.session_id)
    .bind(&c.started_at)
    .bind(&c.channel)
    .bind(&c.source)
    .bind(&c.medium)
    .bind(&c.campaign)
    .bind(&c.units)
    .bind(model::CREDIT_UNITS)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The credit rows of a chunk, column by column, for one `unnest` insert.
#[derive(Default)]
struct CreditColumns<'a> {
    order_id: Vec<Uuid>,
    model: Vec<&'static str>,
    touch_index: Vec<i32>,
    session_id: Vec<Option<Uuid>>,
    started_at: Vec<Option<DateTime<Utc>>>,
    channel: Vec<&'a str>,
    source: Vec<Option<&'a str>>,
    medium: Vec<Option<&'a str>>,
    campaign: Vec<Option<&'a str>>,
    units: Vec<i64>,
}
