//! The demo's A/B tests: four experiments in the registry over the demo's window (two
//! concluded with a winner, one concluded without, one still running) and their exposures,
//! written in SQL once the visits are committed, as the snippet's `lux.expose` would have
//! sent them on a site that assigns a visitor once: one `experiment_exposure` 50 ms after the
//! first page view of each (human) visitor's first visit during the experiment, in that
//! visit's session (its event counter and last activity move with it).
//!
//! A visitor keeps one variant per experiment (a hash of visitor and key). The conversions
//! are the demo's own events (purchases, add-to-carts): to give the won experiments a real
//! difference, a visitor who does the primary event during the experiment lands in the
//! treatment with the experiment's `lift` probability (above one half), everyone else with
//! one half. The experiments without a winner have no such lean.

use chrono::{DateTime, Duration, Utc};
use sqlx::PgPool;
use uuid::Uuid;

/// One demo experiment. Its start and end are fractions of the window counted back from its
/// end instant (as the visits' times are), so any `--days` gives the same shape and the same
/// seed the same exposures; the registry's days are the local days of those instants.
struct Planned {
    key: &'static str,
    name: &'static str,
    hypothesis: &'static str,
    primary_event: &'static str,
    treatment: &'static str,
    starts_back: f64,
    /// `None`: still running.
    ends_back: Option<f64>,
    /// Probability that a converting visitor is in the treatment.
    lift: f64,
    won: bool,
}

const PLANNED: [Planned; 4] = [
    Planned {
        key: "hero-headline",
        name: "Hero headline: benefit over feature",
        hypothesis: "Naming the benefit first sells more than listing the fabric",
        primary_event: "purchase",
        treatment: "benefit",
        starts_back: 0.95,
        ends_back: Some(0.6),
        lift: 0.57,
        won: true,
    },
    Planned {
        key: "free-shipping-banner",
        name: "Free shipping banner",
        hypothesis: "A banner about free shipping over $75 lifts add-to-cart",
        primary_event: "add_to_cart",
        treatment: "banner",
        starts_back: 0.75,
        ends_back: Some(0.45),
        lift: 0.5,
        won: false,
    },
    Planned {
        key: "checkout-trust-badges",
        name: "Trust badges at checkout",
        hypothesis: "Payment and returns badges reassure buyers at the last step",
        primary_event: "purchase",
        treatment: "badges",
        starts_back: 0.5,
        ends_back: Some(0.15),
        lift: 0.56,
        won: true,
    },
    Planned {
        key: "pdp-video",
        name: "Product video on the product page",
        hypothesis: "A 20-second video answers what a photo cannot",
        primary_event: "add_to_cart",
        treatment: "video",
        starts_back: 0.25,
        ends_back: None,
        lift: 0.53,
        won: false,
    },
];

/// What was written.
#[derive(Debug, Default, Clone, Copy)]
pub struct ExperimentCounts {
    pub experiments: u64,
    pub exposures: u64,
}

fn back(end: DateTime<Utc>, days: u32, fraction: f64) -> DateTime<Utc> {
    end - Duration::seconds((f64::from(days) * fraction * 86_400.0).round() as i64)
}

/// Writes the registry rows and exposures (as the owner, in one transaction) for a demo
/// window of `days` days ending at `end`, in the company's zone `tz`.
pub async fn generate(
    owner: &PgPool,
    company_id: Uuid,
    tz: chrono_tz::Tz,
    days: u32,
    end: DateTime<Utc>,
) -> Result<ExperimentCounts, sqlx::Error> {
    let local_day = |t: DateTime<Utc>| t.with_timezone(&tz).date_naive();
    let mut tx = owner.begin().await?;
    crate::db::set_company(&mut tx, company_id).await?;
    sqlx::query(
        "CREATE OR REPLACE FUNCTION pg_temp.u(t text) RETURNS float8 LANGUAGE sql IMMUTABLE
         AS $$ SELECT (hashtext(t) & 2147483647)::float8 / 2147483648 $$",
    )
    .execute(&mut *tx)
    .await?;
    let mut counts = ExperimentCounts::default();
    for p in &PLANNED {
        let starts = back(end, days, p.starts_back);
        let ends = p.ends_back.map(|f| back(end, days, f));
        let (started, ended) = (local_day(starts), ends.map(local_day));
        let winner = (p.won && ended.is_some()).then_some(p.treatment);
        counts.experiments += sqlx::query(
            "INSERT INTO experiments (company_id, key, name, hypothesis, primary_event,
                 started_on, ended_on, status, winner)
             VALUES ($1, $2, $3, $4, $5, $6, $7,
                     CASE WHEN $7::date IS NULL THEN 'running' ELSE 'concluded' END, $8)",
        )
        .bind(company_id)
        .bind(p.key)
        .bind(p.name)
        .bind(p.hypothesis)
        .bind(p.primary_event)
        .bind(started)
        .bind(ended)
        .bind(winner)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let span = (starts, ends.unwrap_or(end));
        counts.exposures += expose(&mut tx, company_id, p, span).await?;
    }
    tx.commit().await?;
    Ok(counts)
}

/// One exposure at the start of each human visitor's first session that started in
/// `[starts, ends)`; returns how many.
async fn expose(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    company_id: Uuid,
    p: &Planned,
    (starts, ends): (DateTime<Utc>, DateTime<Utc>),
) -> Result<u64, sqlx::Error> {
    let exposures = sqlx::query(
        "WITH span AS (SELECT $3::timestamptz AS starts, $4::timestamptz AS ends),
         converters AS (
             SELECT DISTINCT r.visitor_id FROM raw_events r, span
             WHERE r.company_id = $1 AND r.event_name = $5
               AND r.occurred_at >= span.starts AND r.occurred_at < span.ends),
         visits AS (
             SELECT DISTINCT ON (s.visitor_id) s.session_id, s.visitor_id, s.started_at,
                    s.landing_page, s.utm_source, s.utm_medium, s.utm_campaign, s.utm_term,
                    s.utm_content, s.gclid, s.fbclid, o.ip_hash, o.user_agent, o.referrer,
                    CASE WHEN pg_temp.u(s.visitor_id::text || ':' || $2)
                              < CASE WHEN c.visitor_id IS NULL THEN 0.5 ELSE $6 END
                         THEN $7 ELSE 'control' END AS variant
             FROM sessions s CROSS JOIN span
             LEFT JOIN converters c ON c.visitor_id = s.visitor_id
             -- The visit's opening page view: the same browser, address and referrer.
             CROSS JOIN LATERAL (
                 SELECT e.ip_hash, e.user_agent, e.referrer FROM raw_events e
                 WHERE e.company_id = $1 AND e.occurred_at = s.started_at
                   AND e.session_id = s.session_id
                 ORDER BY e.event_id LIMIT 1) o
             WHERE s.company_id = $1 AND NOT s.is_bot
               AND s.started_at >= span.starts AND s.started_at < span.ends
             ORDER BY s.visitor_id, s.started_at),
         written AS (
             INSERT INTO raw_events (company_id, event_id, event_name, occurred_at, received_at,
                 visitor_id, session_id, page_url, ip_hash, user_agent, referrer, utm_source, utm_medium, utm_campaign,
                 utm_term, utm_content, gclid, fbclid, consent_analytics, is_bot, key_kind,
                 properties)
             SELECT $1, md5(session_id::text || ':' || $2)::uuid, 'experiment_exposure',
                    started_at + interval '50 milliseconds',
                    started_at + interval '350 milliseconds', visitor_id, session_id,
                    landing_page, ip_hash, user_agent, referrer, utm_source, utm_medium, utm_campaign, utm_term, utm_content,
                    gclid, fbclid, true, false,
                    'write', jsonb_build_object('experiment', $2::text, 'variant', variant)
             FROM visits
             RETURNING session_id, occurred_at)
         UPDATE sessions s
         SET events = s.events + 1, last_seen_at = greatest(s.last_seen_at, w.occurred_at)
         FROM written w
         WHERE s.company_id = $1 AND s.session_id = w.session_id",
    )
    .bind(company_id)
    .bind(p.key)
    .bind(starts)
    .bind(ends)
    .bind(p.primary_event)
    .bind(p.lift)
    .bind(p.treatment)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok(exposures)
}
