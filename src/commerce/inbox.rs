//! The order inbox: purchase events queued by ingestion, merged into orders by a worker.
//!
//! Ingestion appends one row per purchase in its own transaction (cheap, no lock); the worker
//! drains the inbox company by company, oldest purchase first, each batch in one transaction
//! with the per-company order lock. Several nodes can drain at once: rows are taken with
//! `FOR UPDATE SKIP LOCKED`.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::{PgPool, Postgres, Transaction};
use tokio::sync::Notify;
use uuid::Uuid;

use super::money::Currency;
use super::orders::{self, OrderFact, PaymentState, Source};
use crate::clock::Clock;
use crate::privacy::EmailHash;

/// Purchases taken per transaction by the worker.
const DRAIN_BATCH: i64 = 500;

/// Appends purchase facts (keyed by the event that carried them) to the inbox, in the
/// caller's transaction. Returns how many were queued.
pub async fn enqueue(
    tx: &mut Transaction<'_, Postgres>,
    company_id: Uuid,
    facts: &[(Uuid, OrderFact)],
) -> Result<usize, sqlx::Error> {
    if facts.is_empty() {
        return Ok(0);
    }
    let column =
        |f: fn(&OrderFact) -> Option<i64>| facts.iter().map(|(_, x)| f(x)).collect::<Vec<_>>();
    sqlx::query(
        "INSERT INTO order_inbox (company_id, event_id, order_number, currency, gross_minor,
             discount_minor, tax_minor, shipping_minor, placed_at, email_hash, user_id,
             visitor_id, session_id)
         SELECT $1, * FROM unnest($2::uuid[], $3::text[], $4::text[], $5::int8[], $6::int8[],
             $7::int8[], $8::int8[], $9::timestamptz[], $10::bytea[], $11::text[], $12::uuid[],
             $13::uuid[])
         ON CONFLICT (company_id, event_id) DO NOTHING",
    )
    .bind(company_id)
    .bind(facts.iter().map(|(id, _)| *id).collect::<Vec<_>>())
    .bind(
        facts
            .iter()
            .map(|(_, f)| f.order_number.clone().unwrap_or_default())
            .collect::<Vec<_>>(),
    )
    .bind(
        facts
            .iter()
            .map(|(_, f)| f.currency.map(|c| c.code().to_string()).unwrap_or_default())
            .collect::<Vec<_>>(),
    )
    .bind(column(|f| f.gross_minor))
    .bind(column(|f| f.discount_minor))
    .bind(column(|f| f.tax_minor))
    .bind(column(|f| f.shipping_minor))
    .bind(facts.iter().map(|(_, f)| f.placed_at).collect::<Vec<_>>())
    .bind(
        facts
            .iter()
            .map(|(_, f)| f.email_hash.as_ref().map(|h| h.as_bytes().to_vec()))
            .collect::<Vec<_>>(),
    )
    .bind(
        facts
            .iter()
            .map(|(_, f)| f.user_id.clone())
            .collect::<Vec<_>>(),
    )
    .bind(facts.iter().map(|(_, f)| f.visitor_id).collect::<Vec<_>>())
    .bind(facts.iter().map(|(_, f)| f.session_id).collect::<Vec<_>>())
    .execute(&mut **tx)
    .await?;
    Ok(facts.len())
}

#[derive(sqlx::FromRow)]
struct InboxRow {
    event_id: Uuid,
    order_number: String,
    currency: String,
    gross_minor: Option<i64>,
    discount_minor: Option<i64>,
    tax_minor: Option<i64>,
    shipping_minor: Option<i64>,
    placed_at: DateTime<Utc>,
    email_hash: Option<Vec<u8>>,
    user_id: Option<String>,
    visitor_id: Option<Uuid>,
    session_id: Option<Uuid>,
}

impl InboxRow {
    fn into_fact(self) -> OrderFact {
        let mut fact = OrderFact::new(Source::Event);
        fact.add_order_number(&self.order_number);
        fact.currency = Currency::parse(&self.currency);
        fact.gross_minor = self.gross_minor;
        fact.discount_minor = self.discount_minor;
        fact.tax_minor = self.tax_minor;
        fact.shipping_minor = self.shipping_minor;
        fact.state = Some(PaymentState::Paid);
        fact.placed_at = Some(self.placed_at);
        fact.email_hash = self.email_hash.and_then(|h| EmailHash::from_bytes(&h));
        fact.user_id = self.user_id;
        fact.visitor_id = self.visitor_id;
        fact.session_id = self.session_id;
        fact
    }
}

/// Merges every waiting purchase into orders. Returns how many were merged.
pub async fn drain(pool: &PgPool, clock: &Clock) -> Result<usize, sqlx::Error> {
    let companies: Vec<Uuid> = sqlx::query_scalar("SELECT lux_order_inbox_companies()")
        .fetch_all(pool)
        .await?;
    let mut merged = 0;
    for company_id in companies {
        loop {
            let mut tx = crate::db::begin_for_company(pool, company_id).await?;
            let rows: Vec<InboxRow> = sqlx::query_as(
                "SELECT event_id, order_number, currency::text AS currency, gross_minor,
                        discount_minor, tax_minor, shipping_minor, placed_at, email_hash,
                        user_id, visitor_id, session_id
                 FROM order_inbox WHERE company_id = $1
                 ORDER BY placed_at, event_id LIMIT $2 FOR UPDATE SKIP LOCKED",
            )
            .bind(company_id)
            .bind(DRAIN_BATCH)
            .fetch_all(&mut *tx)
            .await?;
            if rows.is_empty() {
                break;
            }
            let ids: Vec<Uuid> = rows.iter().map(|r| r.event_id).collect();
            for row in rows {
                orders::record(&mut tx, company_id, &row.into_fact(), clock.now()).await?;
            }
            sqlx::query("DELETE FROM order_inbox WHERE company_id = $1 AND event_id = ANY($2)")
                .bind(company_id)
                .bind(&ids)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            merged += ids.len();
        }
    }
    Ok(merged)
}

/// Identity notes taken per transaction by the worker.
const RELINK_BATCH: i64 = 1_000;

/// Gives the orders of the persons whose identity keys changed (noted in `customer_relinks`
/// by [`crate::identity::link`]) the customer they now resolve to: a guest order becomes the
/// customer of the user who logs in on its device. Returns how many orders changed customer.
pub async fn drain_relinks(pool: &PgPool) -> Result<u64, sqlx::Error> {
    let companies: Vec<Uuid> = sqlx::query_scalar("SELECT lux_customer_relink_companies()")
        .fetch_all(pool)
        .await?;
    let mut changed = 0;
    for company_id in companies {
        loop {
            let mut tx = crate::db::begin_for_company(pool, company_id).await?;
            // The order lock first: the orders read below cannot change under the round.
            orders::lock(&mut tx, company_id).await?;
            let notes: Vec<(i64, Option<Uuid>)> = sqlx::query_as(
                "SELECT note_id, person_id FROM customer_relinks WHERE company_id = $1
                 ORDER BY note_id LIMIT $2 FOR UPDATE SKIP LOCKED",
            )
            .bind(company_id)
            .bind(RELINK_BATCH)
            .fetch_all(&mut *tx)
            .await?;
            if notes.is_empty() {
                break;
            }
            let mut persons: Vec<Uuid> = notes.iter().filter_map(|n| n.1).collect();
            persons.sort();
            persons.dedup();
            // A note without a person (the migration's) asks for every order without one.
            if notes.iter().any(|n| n.1.is_none()) {
                changed += orders::reresolve_customers(&mut tx, company_id, None).await?;
            }
            if !persons.is_empty() {
                changed += orders::reresolve_customers(&mut tx, company_id, Some(&persons)).await?;
            }
            let ids: Vec<i64> = notes.iter().map(|n| n.0).collect();
            sqlx::query("DELETE FROM customer_relinks WHERE company_id = $1 AND note_id = ANY($2)")
                .bind(company_id)
                .bind(&ids)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        }
    }
    Ok(changed)
}

/// Drains the inbox whenever the writer says purchases arrived, and every second anyway
/// (purchases left by another node or before a restart); then the identity notes, so an
/// identify and a purchase sent together leave the order with the identified customer.
pub async fn run_worker(pool: PgPool, wake: Arc<Notify>, clock: Clock) {
    loop {
        tokio::select! {
            _ = wake.notified() => {
                // Let a few batches' purchases gather: one transaction then merges them all.
                tokio::time::sleep(Duration::from_millis(200)).await;
            },
            _ = tokio::time::sleep(Duration::from_secs(1)) => {},
        }
        if let Err(error) = drain(&pool, &clock).await {
            tracing::warn!(error = %error, "merging purchases into orders failed; will retry");
        }
        if let Err(error) = drain_relinks(&pool).await {
            tracing::warn!(error = %error, "re-resolving order customers failed; will retry");
        }
    }
}
