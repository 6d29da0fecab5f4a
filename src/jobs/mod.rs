//! Jobs: derived data (attribution now, rollups next) computed per company, one run at a time
//! across every process (a PostgreSQL advisory lock per job and company), each run recorded in
//! `job_runs` with what it covered, how much it did and how long it took.
//!
//! `lux serve` runs every job for every company on a timer; `lux jobs run` runs one now.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

use crate::attribution;

/// A job that can be run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Job {
    Attribution,
}

impl Job {
    pub const ALL: [Job; 1] = [Job::Attribution];

    pub fn as_str(self) -> &'static str {
        match self {
            Job::Attribution => "attribution",
        }
    }

    pub fn parse(text: &str) -> Option<Job> {
        Job::ALL.into_iter().find(|j| j.as_str() == text)
    }

    /// Advisory lock key of this job for one company. The tag keeps these keys apart from
    /// the ingest and identity locks.
    fn lock_key(self, company_id: Uuid) -> i64 {
        let tag: u64 = match self {
            Job::Attribution => 0x10B5_A771_0000_0001,
        };
        let (hi, lo) = company_id.as_u64_pair();
        (hi ^ lo.rotate_left(17) ^ tag) as i64
    }
}

/// Incremental (only what changed since the last successful run) or everything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Incremental,
    Full,
}

/// What to do when another process is running the same job for the same company.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhenBusy {
    /// Wait for it to finish, then run (the command line).
    Wait,
    /// Do nothing (the scheduler: the other process is doing the work).
    Skip,
}

/// A finished run, as recorded in `job_runs`.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    pub company_id: Uuid,
    pub run_id: Uuid,
    pub job: Job,
    pub full_run: bool,
    pub rows_examined: u64,
    pub rows_changed: u64,
    pub seconds: f64,
}

/// Runs `job` for one company. `Ok(None)` when skipped because another process runs it.
pub async fn run(
    pool: &PgPool,
    company_id: Uuid,
    job: Job,
    mode: Mode,
    when_busy: WhenBusy,
) -> anyhow::Result<Option<RunReport>> {
    // A session-level lock on a connection held for the whole run: the job commits in
    // chunks, so a transaction-level lock would not cover it.
    let mut lock = HeldLock {
        conn: pool.acquire().await?,
        released: false,
    };
    let key = job.lock_key(company_id);
    let locked: bool = match when_busy {
        WhenBusy::Wait => {
            sqlx::query_scalar("SELECT pg_advisory_lock($1) IS NOT NULL")
                .bind(key)
                .fetch_one(&mut *lock.conn)
                .await?
        }
        WhenBusy::Skip => {
            sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
                .bind(key)
                .fetch_one(&mut *lock.conn)
                .await?
        }
    };
    if !locked {
        lock.released = true;
        return Ok(None);
    }
    let result = run_locked(pool, company_id, job, mode).await;
    lock.released = sqlx::query_scalar("SELECT pg_advisory_unlock($1)")
        .bind(key)
        .fetch_one(&mut *lock.conn)
        .await
        .unwrap_or(false);
    result.map(Some)
}

/// A pooled connection holding a session-level advisory lock. If the run ends without
/// releasing it (an error, or the run's future dropped midway), the connection is closed
/// instead of going back to the pool: closing is what releases the lock then.
struct HeldLock {
    conn: sqlx::pool::PoolConnection<sqlx::Postgres>,
    released: bool,
}

impl Drop for HeldLock {
    fn drop(&mut self) {
        if !self.released {
            self.conn.close_on_drop();
        }
    }
}

struct LastRun {
    watermark: DateTime<Utc>,
    parameters: Option<String>,
}

async fn run_locked(
    pool: &PgPool,
    company_id: Uuid,
    job: Job,
    mode: Mode,
) -> anyhow::Result<RunReport> {
    let clock = Instant::now();
    let run_id = Uuid::now_v7();
    let last = last_success(pool, company_id, job).await?;
    record_start(pool, company_id, run_id, job).await?;
    let outcome = match job {
        Job::Attribution => run_attribution(pool, company_id, mode, last.as_ref()).await,
    };
    match outcome {
        Ok((full_run, parameters, examined, changed)) => {
            let mut tx = crate::db::begin_for_company(pool, company_id).await?;
            sqlx::query(
                "UPDATE job_runs SET finished_at = clock_timestamp(), status = 'succeeded',
                     full_run = $3, parameters = $4, rows_examined = $5, rows_changed = $6
                 WHERE company_id = $1 AND run_id = $2",
            )
            .bind(company_id)
            .bind(run_id)
            .bind(full_run)
            .bind(&parameters)
            .bind(examined as i64)
            .bind(changed as i64)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(RunReport {
                company_id,
                run_id,
                job,
                full_run,
                rows_examined: examined,
                rows_changed: changed,
                seconds: clock.elapsed().as_secs_f64(),
            })
        }
        Err(error) => {
            record_failure(pool, company_id, run_id, &format!("{error:#}")).await;
            Err(error)
        }
    }
}

/// Attribution: everything when asked, on the first run, or when the rules changed since the
/// last successful run; otherwise what changed since that run started.
async fn run_attribution(
    pool: &PgPool,
    company_id: Uuid,
    mode: Mode,
    last: Option<&LastRun>,
) -> anyhow::Result<(bool, String, u64, u64)> {
    let settings = attribution::load_settings(pool, company_id).await?;
    let rules = settings.rules();
    let scope = match last {
        Some(last) if mode == Mode::Incremental && last.parameters.as_ref() == Some(&rules) => {
            attribution::Scope::ChangedSince(last.watermark)
        }
        _ => attribution::Scope::All,
    };
    let outcome = attribution::run(pool, company_id, &settings, scope).await?;
    Ok((
        matches!(scope, attribution::Scope::All),
        rules,
        outcome.examined,
        outcome.changed,
    ))
}

async fn last_success(
    pool: &PgPool,
    company_id: Uuid,
    job: Job,
) -> Result<Option<LastRun>, sqlx::Error> {
    let mut tx = crate::db::begin_for_company(pool, company_id).await?;
    let row: Option<(DateTime<Utc>, Option<String>)> = sqlx::query_as(
        "SELECT watermark, parameters FROM job_runs
         WHERE company_id = $1 AND job = $2 AND status = 'succeeded'
         ORDER BY started_at DESC LIMIT 1",
    )
    .bind(company_id)
    .bind(job.as_str())
    .fetch_optional(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(row.map(|(watermark, parameters)| LastRun {
        watermark,
        parameters,
    }))
}

/// Records the run as started, committed before any work. Its watermark is where the next
/// incremental run looks for changes from: this moment, or the start of the oldest
/// transaction still open (its rows, stamped with that start, are not visible to this run
/// yet), less 5 seconds for a transaction so new it does not show in `pg_stat_activity` yet
/// (re-examining a few seconds twice costs next to nothing). Runs of this job for this company left 'running' by a process that stopped are
/// closed as failed (this run holds the lock, so none of them is running), and runs older
/// than 30 days are pruned.
async fn record_start(
    pool: &PgPool,
    company_id: Uuid,
    run_id: Uuid,
    job: Job,
) -> Result<(), sqlx::Error> {
    let mut tx = crate::db::begin_for_company(pool, company_id).await?;
    sqlx::query(
        "UPDATE job_runs SET status = 'failed', finished_at = now(),
             error = 'interrupted: the process stopped before the run finished'
         WHERE company_id = $1 AND job = $2 AND status = 'running'",
    )
    .bind(company_id)
    .bind(job.as_str())
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "DELETE FROM job_runs
         WHERE company_id = $1 AND job = $2 AND started_at < now() - interval '30 days'",
    )
    .bind(company_id)
    .bind(job.as_str())
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO job_runs (company_id, run_id, job, started_at, status, full_run, watermark)
         VALUES ($1, $2, $3, now(), 'running', false,
                 least(now(), lux_oldest_open_transaction()) - interval '5 seconds')",
    )
    .bind(company_id)
    .bind(run_id)
    .bind(job.as_str())
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}

async fn record_failure(pool: &PgPool, company_id: Uuid, run_id: Uuid, error: &str) {
    let result = async {
        let mut tx = crate::db::begin_for_company(pool, company_id).await?;
        sqlx::query(
            "UPDATE job_runs SET finished_at = clock_timestamp(), status = 'failed', error = $3
             WHERE company_id = $1 AND run_id = $2",
        )
        .bind(company_id)
        .bind(run_id)
        .bind(error)
        .execute(&mut *tx)
        .await?;
        tx.commit().await
    }
    .await;
    if let Err(e) = result {
        tracing::warn!(error = %e, %run_id, "could not record a failed job run");
    }
}

/// Every company's id (for the scheduler and `lux jobs run` without `--company`).
pub async fn company_ids(pool: &PgPool) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar("SELECT lux_company_ids()")
        .fetch_all(pool)
        .await
}

/// Runs every job for every company every `interval`, skipping what another node is running.
pub async fn run_scheduler(pool: PgPool, interval: Duration) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let companies = match company_ids(&pool).await {
            Ok(ids) => ids,
            Err(error) => {
                tracing::warn!(error = %error, "jobs: could not list companies; will retry");
                continue;
            }
        };
        for company_id in companies {
            for job in Job::ALL {
                match run(&pool, company_id, job, Mode::Incremental, WhenBusy::Skip).await {
                    Ok(Some(report)) if report.rows_changed > 0 => tracing::info!(
                        job = job.as_str(), %company_id, examined = report.rows_examined,
                        changed = report.rows_changed, seconds = report.seconds, "job ran"),
                    Ok(_) => {}
                    Err(error) => tracing::warn!(
                        job = job.as_str(), %company_id, error = %format!("{error:#}"),
                        "job failed; the next run retries"),
                }
            }
        }
    }
}
