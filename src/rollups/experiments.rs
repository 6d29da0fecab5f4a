//! Experiment rollups (SPEC §8.3): per experiment, each exposed visitor with the variant of
//! their first exposure and their first conversion after it (`rollup_experiment_visitors`),
//! and the same summed per variant (`rollup_experiment_variants`), which the `experiments`
//! report reads.
//!
//! Why per visitor and not per day: a visitor's variant is that of their first exposure
//! whenever it happened, and a conversion counts whenever it happens after that exposure
//! within the experiment's dates, so a day's rows could not be recomputed from that day's
//! events alone. An experiment is therefore recomputed whole, from its raw events between
//! its start and end (local days of the company, both included; a running experiment has
//! no end), when the job finds something that may change it:
//! - a full run: every experiment;
//! - the days of a run (asked for, or touched since the last run: sessions, orders): the
//!   experiments whose dates, widened by a day on each side (a session that crossed
//!   midnight is noted on its start day), cover one of them;
//! - the experiments created or concluded since the last run (their dates changed).
//!
//! What counts (the same rules as `experiments::stats::count_visitors`, in SQL):
//! - exposures: `experiment_exposure` events whose `properties.experiment` is the key, from
//!   visitors who gave analytics consent (without it the visitor id is a fresh random one per
//!   request, which cannot be followed to a conversion) and who are not bots;
//! - a visitor's first exposure decides their variant; equal times go to the smaller variant
//!   name (byte order);
//! - a conversion is the experiment's primary event by the same visitor at or after their
//!   first exposure, before the experiment's end.

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

/// Which experiments a run refreshes.
pub enum Which<'a> {
    All,
    /// Those whose dates (± a day) cover one of `days`, or changed since `watermark`.
    Touched {
        days: &'a [NaiveDate],
        watermark: Option<DateTime<Utc>>,
    },
}

/// What a refresh did.
#[derive(Debug, Default)]
pub struct Refreshed {
    /// Exposed visitors rolled up.
    pub visitors: u64,
    /// Rows written (visitors and variants).
    pub written: u64,
}

#[derive(sqlx::FromRow)]
struct ToRefresh {
    key: String,
    primary_event: String,
    /// The first instant of the start day, and the first instant after the end day (NULL
    /// while running).
    starts: DateTime<Utc>,
    ends: Option<DateTime<Utc>>,
}

/// Refreshes the experiments `which` names, one transaction each.
pub async fn refresh(
    pool: &PgPool,
    company_id: Uuid,
    timezone: &str,
    which: Which<'_>,
) -> Result<Refreshed, sqlx::Error> {
    let (all, days, watermark) = match which {
        Which::All => (true, &[][..], None),
        Which::Touched { days, watermark } => (false, days, watermark),
    };
    let mut tx = crate::db::begin_for_company(pool, company_id).await?;
    let experiments: Vec<ToRefresh> = sqlx::query_as(
        "SELECT key, primary_event,
                (started_on::timestamp AT TIME ZONE $2) AS starts,
                ((ended_on + 1)::timestamp AT TIME ZONE $2) AS ends
         FROM experiments e
         WHERE company_id = $1
           AND ($3 OR updated_at >= $4
                OR EXISTS (SELECT 1 FROM unnest($5::date[]) d
                           WHERE d >= e.started_on - 1
                             AND (e.ended_on IS NULL OR d <= e.ended_on + 1)))
         ORDER BY key",
    )
    .bind(company_id)
    .bind(timezone)
    .bind(all)
    .bind(watermark)
    .bind(days)
    .fetch_all(&mut *tx)
    .await?;
    if all {
        // Rows of experiments no longer in the registry go too.
        for table in ["rollup_experiment_visitors", "rollup_experiment_variants"] {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DELETE FROM {table} r WHERE company_id = $1
                 AND NOT EXISTS (SELECT 1 FROM experiments e
                                 WHERE e.company_id = r.company_id AND e.key = r.experiment)"
            )))
            .bind(company_id)
            .execute(&mut *tx)
            .await?;
        }
    }
    tx.commit().await?;
    let mut done = Refreshed::default();
    for experiment in &experiments {
        let mut tx = crate::db::begin_for_company(pool, company_id).await?;
        let (visitors, written) = recompute(&mut tx, company_id, experiment).await?;
        tx.commit().await?;
        done.visitors += visitors;
        done.written += written;
    }
    Ok(done)
}

/// Rewrites one experiment's rows. Returns (visitors, rows written).
async fn recompute(
    tx: &mut Transaction<'_, Postgres>,
    company_id: Uuid,
    e: &ToRefresh,
) -> Result<(u64, u64), sqlx::Error> {
    for table in ["rollup_experiment_visitors", "rollup_experiment_variants"] {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DELETE FROM {table} WHERE company_id = $1 AND experiment = $2"
        )))
        .bind(company_id)
        .bind(&e.key)
        .execute(&mut **tx)
        .await?;
    }
    // `ends` NULL (running): up to the latest event. Both scans use the time index.
    let visitors = sqlx::query(
        "WITH firsts AS (
             SELECT DISTINCT ON (visitor_id) visitor_id,
                    btrim(properties->>'variant') AS variant, occurred_at
             FROM raw_events
             WHERE company_id = $1 AND event_name = 'experiment_exposure'
               AND occurred_at >= $4 AND occurred_at < coalesce($5, 'infinity')
               AND btrim(properties->>'experiment') = $2
               -- Variant::parse's rules, for exposures stored before they were checked.
               AND octet_length(btrim(properties->>'variant')) BETWEEN 1 AND 64
               AND btrim(properties->>'variant') !~ '[[:cntrl:]]'
               AND consent_analytics AND NOT gpc AND NOT is_bot
             ORDER BY visitor_id, occurred_at, btrim(properties->>'variant') COLLATE \"C\"),
         conversions AS (
             SELECT visitor_id, occurred_at
             FROM raw_events
             WHERE company_id = $1 AND event_name = $3
               AND occurred_at >= $4 AND occurred_at < coalesce($5, 'infinity'))
         INSERT INTO rollup_experiment_visitors (company_id, experiment, visitor_id, variant,
             first_exposed_at, converted_at)
         SELECT $1, $2, f.visitor_id, f.variant, f.occurred_at, min(c.occurred_at)
         FROM firsts f
         LEFT JOIN conversions c ON c.visitor_id = f.visitor_id AND c.occurred_at >= f.occurred_at
         GROUP BY f.visitor_id, f.variant, f.occurred_at",
    )
    .bind(company_id)
    .bind(&e.key)
    .bind(&e.primary_event)
    .bind(e.starts)
    .bind(e.ends)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    let variants = sqlx::query(
        "INSERT INTO rollup_experiment_variants (company_id, experiment, variant, exposed,
             converted, first_exposed_at)
         SELECT $1, $2, variant, count(*), count(converted_at), min(first_exposed_at)
         FROM rollup_experiment_visitors
         WHERE company_id = $1 AND experiment = $2
         GROUP BY variant",
    )
    .bind(company_id)
    .bind(&e.key)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok((visitors, visitors + variants))
}
