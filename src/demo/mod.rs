//! `lux demo`: a realistic synthetic company, generated fast, so that a new user sees real
//! numbers at once and benchmarks get large data sets.
//!
//! The demo shop (Northwind Outfitters, outdoor gear) gets visitors over ten channels and
//! their campaigns, with weekday and hour-of-day seasonality and a mild trend; people come
//! back over days and weeks, some sign up, subscribe or log in on a second device; visits
//! browse, add to cart, check out and buy with the usual drop-off; a few crawlers; orders
//! with customers, first and repeat purchases and refunds; daily ad spend for the paid
//! campaigns; email and SMS campaigns around the visits that came from them (sends, delivery,
//! opens human and machine, clicks, unsubscribes, complaints: [`messages`]); the catalog of
//! its Meta ads by concept and angle, one of which wears out while another stays fresh
//! ([`creatives`]); A/B tests, won, lost and running, with an exposure at the start of each
//! visit ([`experiments`]). Everything is
//! written as ingestion, identity and commerce would have written it (session ids, channel
//! rules, keyed email hashes, order refs and sources), so the jobs, reports and dashboards
//! treat it like real data. See docs/decisions.md, "Demo data".
//!
//! The messages are written in SQL after the rest is committed: they are derived from the
//! committed visits, and provider events, append-only, could not be taken back should the
//! raw events fail to commit.
//!
//! The generator runs on a blocking thread and streams binary `COPY` chunks to two
//! connections (raw events on one, the rest on the other), one transaction each, committed
//! so that a failure leaves nothing behind.

mod catalog;
mod copy;
pub mod creatives;
mod emit;
mod experiments;
mod messages;
mod simulate;
mod world;

use std::time::Instant;

use anyhow::Context as _;
use chrono::{DateTime, Duration, SubsecRound, Utc};
use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

use crate::commerce::money::Currency;
use crate::jobs::{self, Job, Mode, RunReport, WhenBusy};
use emit::{Chunk, Counts, Sink};
use world::World;

use crate::ids::CompanyId;

/// Days of history by default.
pub const DEFAULT_DAYS: u32 = 90;
/// Raw events by default (`--scale 1`): a few seconds to generate.
pub const DEFAULT_EVENTS: u64 = 400_000;
/// The server-side backfill limit: ingestion would refuse older events.
pub const MAX_DAYS: u32 = 730;

/// What to generate.
#[derive(Debug, Clone)]
pub struct DemoSpec {
    /// Days of history, ending at `end`.
    pub days: u32,
    /// Raw events to aim for; the result is within a few percent.
    pub events: u64,
    /// The same seed gives the same counts (and, with the same `end`, the same data).
    pub seed: u64,
    pub end: DateTime<Utc>,
}

impl DemoSpec {
    /// History of `days` days up to now.
    pub fn new(days: u32, events: u64, seed: u64) -> anyhow::Result<DemoSpec> {
        if !(1..=MAX_DAYS).contains(&days) {
            anyhow::bail!("--days {days}: use 1 to {MAX_DAYS} (the backfill limit)");
        }
        if events == 0 {
            anyhow::bail!("--events must be at least 1");
        }
        Ok(DemoSpec {
            days,
            events,
            seed,
            end: Utc::now().trunc_subsecs(0),
        })
    }

    /// The number of events for `--scale F`: F times the default.
    pub fn events_for_scale(scale: f64) -> anyhow::Result<u64> {
        if !(scale.is_finite() && scale > 0.0 && scale <= 10_000.0) {
            anyhow::bail!("--scale {scale}: use a number above 0 (1 = {DEFAULT_EVENTS} events)");
        }
        Ok(((DEFAULT_EVENTS as f64) * scale).round().max(1.0) as u64)
    }
}

/// What [`generate`] wrote, and how fast.
#[derive(Debug, Clone, Serialize)]
pub struct DemoSummary {
    pub company_id: Uuid,
    pub seed: u64,
    pub days: u32,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// People (crawlers not included).
    pub persons: u64,
    /// Visitor ids (devices), crawlers included.
    pub visitors: u64,
    pub bot_visitors: u64,
    pub two_device_persons: u64,
    pub identified_persons: u64,
    pub identity_keys: u64,
    pub sessions: u64,
    pub bot_sessions: u64,
    pub events: u64,
    pub page_views: u64,
    pub orders: u64,
    pub refunded_orders: u64,
    pub partially_refunded_orders: u64,
    pub customers: u64,
    pub repeat_customers: u64,
    pub currency: String,
    pub gross_revenue: String,
    pub net_revenue: String,
    pub spend_rows: u64,
    pub ad_spend: String,
    /// Creatives in the catalog (the Meta ads).
    pub creatives: u64,
    /// Email and SMS sends, and their provider events.
    pub message_sends: u64,
    pub message_events: u64,
    /// Experiments in the registry (won, lost and running), and the exposures written for
    /// them (counted in `events` too).
    pub experiments: u64,
    pub experiment_exposures: u64,
    /// Rows written by COPY, every table.
    pub rows: u64,
    pub seconds: f64,
    pub events_per_second: f64,
}

/// Generates the demo data set for `company_id` (an existing company, best a new one) into
/// the database of `owner` (the owner role: it writes past row-level security, as COPY
/// needs; the pool must allow two connections). Creates the `raw_events` partitions it needs
/// first. Commits at the end: nothing is visible before, everything after (sessions and
/// orders an instant before their raw events).
pub async fn generate(
    owner: &PgPool,
    company: CompanyId,
    spec: &DemoSpec,
) -> anyhow::Result<DemoSummary> {
    let company_id = company.uuid();
    let started = Instant::now();
    if owner.options().get_max_connections() < 2 {
        anyhow::bail!("the demo writes on two connections: give its pool at least 2");
    }
    let company: Option<(String, String, Vec<u8>)> = sqlx::query_as(
        "SELECT timezone, currency::text, hash_key FROM companies WHERE company_id = $1",
    )
    .bind(company_id)
    .fetch_optional(owner)
    .await?;
    let Some((timezone, currency, hash_key)) = company else {
        anyhow::bail!("no company {company_id} (see `lux company list`)");
    };
    let tz: chrono_tz::Tz = timezone.parse().map_err(|_| {
        anyhow::anyhow!("company {company_id} has an unknown time zone {timezone:?}")
    })?;
    let money = Currency::parse(&currency)
        .filter(|c| c.exponent() == 2)
        .ok_or_else(|| {
            anyhow::anyhow!(
                "the demo prices in cents: company {company_id}'s currency {currency} has no \
                 two-decimal minor unit (create the demo company with e.g. --currency USD)"
            )
        })?;

    let to = spec.end;
    let from = to - Duration::days(i64::from(spec.days));
    sqlx::query("SELECT lux_ensure_raw_event_partitions($1, $2)")
        .bind((from - Duration::days(1)).date_naive())
        .bind((to + Duration::days(1)).date_naive())
        .execute(owner)
        .await
        .context("creating raw_events partitions for the demo's days")?;

    let world = World::new(
        company_id,
        currency.clone(),
        hash_key,
        tz,
        spec.seed,
        spec.days,
        to.timestamp_micros(),
    );
    let target = spec.events;
    // A few chunks in flight per writer: the generator fills the next while the server
    // loads one.
    let (events_sender, events) = tokio::sync::mpsc::channel::<Chunk>(4);
    let (rest_sender, rest) = tokio::sync::mpsc::channel::<Chunk>(4);
    let generator = tokio::task::spawn_blocking(move || -> anyhow::Result<Counts> {
        let pilot = Instant::now();
        let persons = persons_for(&world, target)?;
        tracing::debug!(
            persons,
            seconds = pilot.elapsed().as_secs_f64(),
            "demo: sized"
        );
        world.simulate(
            persons,
            0,
            Sink::Channels {
                events: events_sender,
                rest: rest_sender,
            },
        )
    });

    // Two connections, so that the server loads raw events on one core and everything else
    // (sessions: random keys in three indexes) on the other.
    let mut events_tx = owner.begin().await?;
    let mut rest_tx = owner.begin().await?;
    let (event_rows, rest_rows) = tokio::try_join!(
        copy_chunks(&mut events_tx, events),
        copy_chunks(&mut rest_tx, rest)
    )?;
    let counts = generator.await.context("the demo generator panicked")??;
    let rows = event_rows + rest_rows;
    tracing::debug!(
        rows,
        seconds = started.elapsed().as_secs_f64(),
        "demo: copied"
    );
    // Raw events can never be deleted, the other tables can: those commit first, and are
    // deleted again should the raw events fail to commit. Their rows are stamped with the
    // transaction's start (`now()`), which tells them from any other rows of the company.
    let stamp: DateTime<Utc> = sqlx::query_scalar("SELECT now()")
        .fetch_one(&mut *rest_tx)
        .await?;
    rest_tx.commit().await.context("committing the demo data")?;
    if let Err(error) = events_tx.commit().await {
        if let Err(undo) = undo_rest(owner, company_id, stamp).await {
            tracing::error!(error = %undo, %company_id, "could not remove the demo's sessions and orders");
        }
        return Err(error).context("committing the demo's raw events");
    }
    tracing::debug!(seconds = started.elapsed().as_secs_f64(), "demo: committed");
    // Fresh statistics for what the jobs that follow read, on tables that grew from nothing
    // in one transaction. Not raw events: sampling its wide rows took longer than the rest of
    // the demo's writing, and autovacuum analyzes it soon anyway.
    sqlx::query(
        "ANALYZE sessions, identity_keys, orders, order_refs, order_sources, customers, ad_spend",
    )
    .execute(owner)
    .await
    .context("analyzing the demo tables")?;
    tracing::debug!(seconds = started.elapsed().as_secs_f64(), "demo: analyzed");
    let messages = messages::generate(owner, company_id)
        .await
        .context("writing the demo's email and SMS campaigns")?;
    tracing::debug!(seconds = started.elapsed().as_secs_f64(), "demo: messages");
    let creatives = creatives::generate(owner, company_id)
        .await
        .context("writing the demo's creative library")?;
    let experiments = experiments::generate(owner, company_id, tz, spec.days, to)
        .await
        .context("writing the demo's experiments")?;

    let seconds = started.elapsed().as_secs_f64();
    Ok(DemoSummary {
        company_id,
        seed: spec.seed,
        days: spec.days,
        from,
        to,
        persons: counts.persons,
        visitors: counts.visitors,
        bot_visitors: counts.bot_visitors,
        two_device_persons: counts.two_device_persons,
        identified_persons: counts.identified_persons,
        identity_keys: counts.identity_keys,
        sessions: counts.sessions,
        bot_sessions: counts.bot_sessions,
        events: counts.events + experiments.exposures,
        page_views: counts.page_views,
        orders: counts.orders,
        refunded_orders: counts.refunded_orders,
        partially_refunded_orders: counts.partially_refunded_orders,
        customers: counts.customers,
        repeat_customers: counts.repeat_customers,
        currency,
        gross_revenue: money.format(counts.gross_minor),
        net_revenue: money.format(counts.net_minor),
        spend_rows: counts.spend_rows,
        ad_spend: money.format(counts.spend_cents as i64),
        creatives,
        message_sends: messages.sends,
        message_events: messages.events,
        experiments: experiments.experiments,
        experiment_exposures: experiments.exposures,
        rows,
        seconds,
        events_per_second: counts.events as f64 / seconds.max(1e-9),
    })
}

/// Loads chunks with `COPY` until the generator is done; returns the rows loaded.
async fn copy_chunks(
    tx: &mut sqlx::Transaction<'static, sqlx::Postgres>,
    mut chunks: tokio::sync::mpsc::Receiver<Chunk>,
) -> anyhow::Result<u64> {
    let mut rows = 0;
    while let Some(chunk) = chunks.recv().await {
        let table = chunk.table;
        let mut copy = tx
            .copy_in_raw(table.copy_statement())
            .await
            .with_context(|| format!("starting COPY into {table:?}"))?;
        copy.send(chunk.bytes).await?;
        rows += copy
            .finish()
            .await
            .with_context(|| format!("COPY into {table:?}"))?;
    }
    Ok(rows)
}

/// Deletes what the demo committed besides raw events (the rows stamped `stamp`).
async fn undo_rest(owner: &PgPool, company_id: Uuid, stamp: DateTime<Utc>) -> anyhow::Result<()> {
    let mut tx = owner.begin().await?;
    for sql in [
        "DELETE FROM order_refs r USING orders o
         WHERE r.company_id = $1 AND o.company_id = $1 AND r.order_id = o.order_id
           AND o.updated_at = $2",
        "DELETE FROM order_sources WHERE company_id = $1 AND updated_at = $2",
        "DELETE FROM orders WHERE company_id = $1 AND updated_at = $2",
        "DELETE FROM customers WHERE company_id = $1 AND created_at = $2",
        "DELETE FROM identity_keys WHERE company_id = $1 AND linked_at = $2",
        "DELETE FROM sessions WHERE company_id = $1 AND created_at = $2",
        "DELETE FROM ad_spend WHERE company_id = $1 AND imported_at = $2",
    ] {
        sqlx::query(sql)
            .bind(company_id)
            .bind(stamp)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// How many people give about `events` raw events: a dry run of a sample (in its own
/// random stream, nothing written) measures events per person.
fn persons_for(world: &World, events: u64) -> anyhow::Result<u64> {
    const PILOT_STREAM: u64 = 0x0050_494c_4f54;
    let sample = (events / 40).clamp(5_000, 40_000);
    let pilot = world.simulate(sample, PILOT_STREAM, Sink::Discard)?;
    let per_person = pilot.events as f64 / sample as f64;
    Ok(((events as f64 / per_person).round() as u64).max(1))
}

/// Runs the company's jobs over everything, as the service would after ingesting the data.
/// `pool` is the service's pool (`lux_app`).
pub async fn run_jobs(pool: &PgPool, company_id: CompanyId) -> anyhow::Result<Vec<RunReport>> {
    let mut reports = Vec::new();
    // Attribution first: the rollups read its credits.
    for job in Job::ALL {
        if let Some(report) = jobs::run(
            pool,
            company_id,
            job,
            (Mode::Full, WhenBusy::Wait),
            chrono::Utc::now(),
        )
        .await?
        {
            reports.push(report);
        }
    }
    Ok(reports)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn counts(end: DateTime<Utc>, seed: u64) -> Counts {
        let world = World::new(
            Uuid::nil(),
            "USD".into(),
            vec![7; 32],
            chrono_tz::America::New_York,
            seed,
            30,
            end.timestamp_micros(),
        );
        world.simulate(3_000, 0, Sink::Discard).expect("a dry run")
    }

    fn key(c: &Counts) -> [u64; 14] {
        [
            c.persons,
            c.visitors,
            c.bot_visitors,
            c.two_device_persons,
            c.identified_persons,
            c.sessions,
            c.events,
            c.page_views,
            c.identity_keys,
            c.orders,
            c.refunded_orders + c.partially_refunded_orders,
            c.customers,
            c.repeat_customers,
            c.spend_rows,
        ]
    }

    #[test]
    fn the_date_moves_times_never_counts() {
        let monday_morning = Utc.with_ymd_and_hms(2026, 1, 12, 9, 13, 0).unwrap();
        let saturday_night = Utc.with_ymd_and_hms(2026, 2, 7, 23, 47, 31).unwrap();
        let a = counts(monday_morning, 42);
        assert_eq!(key(&a), key(&counts(saturday_night, 42)), "{a:?}");
        assert_ne!(key(&a), key(&counts(monday_morning, 43)));
        assert!(a.orders > 0 && a.repeat_customers > 0 && a.two_device_persons > 0);
    }
}
