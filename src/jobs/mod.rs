//! Jobs: derived data (attribution, then the daily rollups, then the creatives' daily fatigue
//! verdicts) computed per company, one run at a time
//! across every process (a PostgreSQL advisory lock per job and company), each run recorded in
//! `job_runs` with what it covered, how much it did and how long it took.
//!
//! `lux serve` runs every job for every company on a timer; `lux jobs run` runs one now.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

use crate::clock::Clock;
use crate::creatives::history as fatigue_history;
use crate::ids::CompanyId;
use crate::{attribution, messages, rollups};

/// A job that can be run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Job {
    Attribution,
    Rollups,
    CreativeFatigue,
}

impl Job {
    /// In the order they run: rollups read what attribution wrote, the fatigue job reads the
    /// creative rollups.
    pub const ALL: [Job; 3] = [Job::Attribution, Job::Rollups, Job::CreativeFatigue];

    pub fn as_str(self) -> &'static str {
        match self {
            Job::Attribution => "attribution",
            Job::Rollups => "rollups",
            Job::CreativeFatigue => "creative_fatigue",
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
            Job::Rollups => 0x10B5_A771_0000_0002,
            Job::CreativeFatigue => 0x10B5_A771_0000_0003,
        };
        let (hi, lo) = company_id.as_u64_pair();
        (hi ^ lo.rotate_left(17) ^ tag) as i64
    }
}

/// Why a run failed (recorded on the run, with this text).
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error(transparent)]
    Attribution(#[from] attribution::LoadError),
    #[error(transparent)]
    Rollups(#[from] rollups::RollupError),
    #[error("the company's time zone {0:?} is not an IANA zone")]
    TimeZone(String),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
}

/// What a run covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Only what changed since the last incremental or full run.
    Incremental,
    /// Everything.
    Full,
    /// Everything about these local days of the company, both included (attribution: the
    /// orders placed on them). Does not move the incremental runs' watermark.
    Days {
        from: chrono::NaiveDate,
        to: chrono::NaiveDate,
    },
}

impl Mode {
    fn days(self) -> (Option<chrono::NaiveDate>, Option<chrono::NaiveDate>) {
        match self {
            Mode::Days { from, to } => (Some(from), Some(to)),
            _ => (None, None),
        }
    }
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
    #[serde(skip_serializing_if = "Option::is_none")]
    pub range_from: Option<chrono::NaiveDate>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub range_to: Option<chrono::NaiveDate>,
    pub rows_examined: u64,
    pub rows_changed: u64,
    /// Rollups: the local days recomputed (first, last, how many).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub days_from: Option<chrono::NaiveDate>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub days_to: Option<chrono::NaiveDate>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub days_count: Option<u64>,
    pub seconds: f64,
}

/// Runs `job` for one company. `Ok(None)` when skipped because another process runs it.
/// `now` is the run's start, from the caller's clock: where its watermark stands.
pub async fn run(
    pool: &PgPool,
    company: CompanyId,
    job: Job,
    (mode, when_busy): (Mode, WhenBusy),
    now: DateTime<Utc>,
) -> Result<Option<RunReport>, JobError> {
    let company_id = company.uuid();
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
    let result = run_locked(pool, company_id, job, mode, now).await;
    lock.released = sqlx::query_scalar("SELECT pg_advisory_unlock($1)")
        .bind(key)
        .fetch_one(&mut *lock.conn)
        .await
        .unwrap_or(false);
    result
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

/// The last successful incremental or full run: where the next incremental run starts.
struct LastRun {
    started_at: DateTime<Utc>,
    watermark: DateTime<Utc>,
    parameters: Option<String>,
}

/// What a job's work gives back to the run that records it.
struct Work {
    full_run: bool,
    examined: u64,
    changed: u64,
    /// The days recomputed, for jobs that work by day.
    days: Option<Vec<chrono::NaiveDate>>,
}

async fn run_locked(
    pool: &PgPool,
    company_id: Uuid,
    job: Job,
    mode: Mode,
    now: DateTime<Utc>,
) -> Result<Option<RunReport>, JobError> {
    let took = Instant::now();
    let run_id = Uuid::now_v7();
    let last = last_success(pool, company_id, job).await?;
    record_start(pool, company_id, (run_id, job, mode), now).await?;
    let work = match job {
        Job::Attribution => run_attribution(pool, company_id, run_id, mode, last.as_ref()).await,
        Job::Rollups => run_rollups(pool, company_id, run_id, mode, last.as_ref()).await,
        Job::CreativeFatigue => {
            run_creative_fatigue(pool, company_id, (run_id, mode, now), last.as_ref()).await
        }
    };
    let work = match work {
        Ok(Some(work)) => work,
        Ok(None) => {
            forget_run(pool, company_id, run_id).await?;
            return Ok(None);
        }
        Err(error) => {
            let finished_at = now + took.elapsed();
            record_failure(pool, company_id, run_id, finished_at, &error.to_string()).await;
            return Err(error);
        }
    };
    let days = work.days.as_deref().unwrap_or_default();
    let (days_from, days_to) = (days.first().copied(), days.last().copied());
    let days_count = work.days.as_ref().map(|d| d.len() as u64);
    let mut tx = crate::db::begin_for_company(pool, company_id).await?;
    sqlx::query(
        "UPDATE job_runs SET finished_at = $9, status = 'succeeded',
             full_run = $3, rows_examined = $4, rows_changed = $5, days_from = $6,
             days_to = $7, days_count = $8
         WHERE company_id = $1 AND run_id = $2",
    )
    .bind(company_id)
    .bind(run_id)
    .bind(work.full_run)
    .bind(work.examined as i64)
    .bind(work.changed as i64)
    .bind(days_from)
    .bind(days_to)
    .bind(days_count.map(|n| n as i32))
    .bind(now + took.elapsed())
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    let (range_from, range_to) = mode.days();
    Ok(Some(RunReport {
        company_id,
        run_id,
        job,
        full_run: work.full_run,
        range_from,
        range_to,
        rows_examined: work.examined,
        rows_changed: work.changed,
        days_from,
        days_to,
        days_count,
        seconds: took.elapsed().as_secs_f64(),
    }))
}

/// What a run covers, decided by [`coverage`].
#[derive(Debug, Clone, Copy)]
enum Coverage {
    /// Everything.
    All,
    /// What changed since this watermark.
    ChangedSince(DateTime<Utc>),
    /// These local days.
    Days {
        from: chrono::NaiveDate,
        to: chrono::NaiveDate,
    },
}

/// Decides what a run of `job` under `parameters` (its rules and settings in words, starting
/// `v{version}`) covers, and records the parameters before any work: the given days when
/// asked; what changed since the last run's watermark when the last successful run and every
/// run since ran under the same parameters; otherwise everything (the first run, changed
/// settings, or a run that failed halfway under other parameters and left some rows on
/// them). `None`: a newer version of lux already runs this job for this company under newer
/// rules, and this process leaves it to it (during a rolling deploy the two would otherwise
/// redo everything in turn).
async fn coverage(
    pool: &PgPool,
    company_id: Uuid,
    (job, run_id, mode): (Job, Uuid, Mode),
    last: Option<&LastRun>,
    parameters: &str,
    version: u32,
) -> Result<Option<Coverage>, JobError> {
    let last_version = last
        .and_then(|l| l.parameters.as_deref())
        .and_then(rules_version);
    if last_version.is_some_and(|v| v > version) {
        tracing::warn!(%company_id, job = job.as_str(),
            "rules of a newer lux are in use; skipping");
        return Ok(None);
    }
    record_parameters(pool, company_id, run_id, parameters).await?;
    Ok(Some(match (mode, last) {
        (Mode::Days { from, to }, _) => Coverage::Days { from, to },
        (Mode::Incremental, Some(last))
            if last.parameters.as_deref() == Some(parameters)
                && !other_rules_since(
                    pool,
                    company_id,
                    job,
                    run_id,
                    last.started_at,
                    parameters,
                )
                .await? =>
        {
            Coverage::ChangedSince(last.watermark)
        }
        _ => Coverage::All,
    }))
}

/// Attribution: the orders of the run's coverage (for days, the orders placed on them), to
/// their touches, then to the messages their buyers clicked (one job: both are credit for an
/// order, re-examined on the same changes, under one watermark; its parameters name both
/// rules). `changed` counts the orders whose touches changed plus those whose message did.
async fn run_attribution(
    pool: &PgPool,
    company_id: Uuid,
    run_id: Uuid,
    mode: Mode,
    last: Option<&LastRun>,
) -> Result<Option<Work>, JobError> {
    let settings = attribution::load_settings(pool, company_id).await?;
    let rules = format!("{} {}", settings.rules(), messages::attribution::RULES);
    let run = (Job::Attribution, run_id, mode);
    let version = attribution::settings::RULES_VERSION;
    let Some(coverage) = coverage(pool, company_id, run, last, &rules, version).await? else {
        return Ok(None);
    };
    let scope = match coverage {
        Coverage::All => attribution::Scope::All,
        Coverage::ChangedSince(watermark) => attribution::Scope::ChangedSince(watermark),
        Coverage::Days { from, to } => attribution::Scope::PlacedOn { from, to },
    };
    let outcome = attribution::run(pool, company_id, &settings, scope).await?;
    let credited = messages::attribution::run(pool, company_id, scope).await?;
    Ok(Some(Work {
        full_run: matches!(scope, attribution::Scope::All),
        examined: outcome.examined,
        changed: outcome.changed + credited.changed,
        days: None,
    }))
}

/// Rollups: the days of the run's coverage (for changes, the days they touched).
async fn run_rollups(
    pool: &PgPool,
    company_id: Uuid,
    run_id: Uuid,
    mode: Mode,
    last: Option<&LastRun>,
) -> Result<Option<Work>, JobError> {
    let settings = rollups::load_settings(pool, company_id).await?;
    let parameters = settings.parameters();
    let run = (Job::Rollups, run_id, mode);
    let version = rollups::settings::RULES_VERSION;
    let Some(coverage) = coverage(pool, company_id, run, last, &parameters, version).await? else {
        return Ok(None);
    };
    let scope = match coverage {
        Coverage::All => rollups::Scope::All,
        Coverage::ChangedSince(watermark) => rollups::Scope::ChangedSince(watermark),
        Coverage::Days { from, to } => rollups::Scope::Days { from, to },
    };
    let outcome = rollups::run(pool, company_id, &settings, scope).await?;
    Ok(Some(Work {
        full_run: scope == rollups::Scope::All,
        examined: outcome.examined,
        changed: outcome.written,
        days: Some(outcome.days),
    }))
}

/// Creative fatigue: the verdicts of the run's coverage, up to the company's last complete
/// local day (the day before `now`'s). For changes: from the first day any rollups run
/// recomputed since the watermark (a late spend import changes every later verdict of its
/// creatives), and at the latest from the day the last run started (the days completed
/// since).
async fn run_creative_fatigue(
    pool: &PgPool,
    company_id: Uuid,
    (run_id, mode, now): (Uuid, Mode, DateTime<Utc>),
    last: Option<&LastRun>,
) -> Result<Option<Work>, JobError> {
    let rules = fatigue_history::rules();
    let run = (Job::CreativeFatigue, run_id, mode);
    let version = fatigue_history::RULES_VERSION;
    let Some(coverage) = coverage(pool, company_id, run, last, &rules, version).await? else {
        return Ok(None);
    };
    let timezone = company_timezone(pool, company_id).await?;
    let local = |t: DateTime<Utc>| t.with_timezone(&timezone).date_naive();
    let yesterday = local(now) - chrono::TimeDelta::days(1);
    let scope = match coverage {
        Coverage::All => fatigue_history::Scope::All,
        Coverage::Days { from, to } => fatigue_history::Scope::Days { from, to },
        Coverage::ChangedSince(watermark) => {
            let since_last = last.map_or(yesterday, |l| local(l.started_at));
            let rolled = first_day_rolled_up_since(pool, company_id, watermark).await?;
            fatigue_history::Scope::From(rolled.map_or(since_last, |d| d.min(since_last)))
        }
    };
    let outcome = fatigue_history::run(pool, company_id, scope, yesterday).await?;
    Ok(Some(Work {
        full_run: scope == fatigue_history::Scope::All,
        examined: outcome.examined,
        changed: outcome.changed,
        days: Some(
            outcome
                .days
                .map(|(from, to)| from.iter_days().take_while(|d| *d <= to).collect())
                .unwrap_or_default(),
        ),
    }))
}

/// The company's time zone.
async fn company_timezone(pool: &PgPool, company_id: Uuid) -> Result<chrono_tz::Tz, JobError> {
    let mut tx = crate::db::begin_for_company(pool, company_id).await?;
    let timezone: String =
        sqlx::query_scalar("SELECT timezone FROM companies WHERE company_id = $1")
            .bind(company_id)
            .fetch_one(&mut *tx)
            .await?;
    tx.commit().await?;
    timezone.parse().map_err(|_| JobError::TimeZone(timezone))
}

/// The first day recomputed by a rollups run that finished after `since`.
async fn first_day_rolled_up_since(
    pool: &PgPool,
    company_id: Uuid,
    since: DateTime<Utc>,
) -> Result<Option<chrono::NaiveDate>, sqlx::Error> {
    let mut tx = crate::db::begin_for_company(pool, company_id).await?;
    let first: Option<chrono::NaiveDate> = sqlx::query_scalar(
        "SELECT min(days_from) FROM job_runs
         WHERE company_id = $1 AND job = $2 AND status = 'succeeded' AND finished_at >= $3",
    )
    .bind(company_id)
    .bind(Job::Rollups.as_str())
    .bind(since)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(first)
}

/// The version in a rules text (`v1 lookback=…`).
fn rules_version(rules: &str) -> Option<u32> {
    rules.strip_prefix('v')?.split(' ').next()?.parse().ok()
}

/// Whether a run of `job` since `since` (other than `run_id`) ran under other parameters.
async fn other_rules_since(
    pool: &PgPool,
    company_id: Uuid,
    job: Job,
    run_id: Uuid,
    since: DateTime<Utc>,
    rules: &str,
) -> Result<bool, sqlx::Error> {
    let mut tx = crate::db::begin_for_company(pool, company_id).await?;
    let found: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM job_runs
                        WHERE company_id = $1 AND job = $5 AND run_id <> $2
                          AND started_at > $3 AND parameters IS NOT NULL
                          AND parameters <> $4)",
    )
    .bind(company_id)
    .bind(run_id)
    .bind(since)
    .bind(rules)
    .bind(job.as_str())
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(found)
}

/// Records what the run works with, before the work: a run that fails halfway still says
/// under which rules it wrote what it wrote.
async fn record_parameters(
    pool: &PgPool,
    company_id: Uuid,
    run_id: Uuid,
    parameters: &str,
) -> Result<(), sqlx::Error> {
    let mut tx = crate::db::begin_for_company(pool, company_id).await?;
    sqlx::query("UPDATE job_runs SET parameters = $3 WHERE company_id = $1 AND run_id = $2")
        .bind(company_id)
        .bind(run_id)
        .bind(parameters)
        .execute(&mut *tx)
        .await?;
    tx.commit().await
}

/// Removes the record of a run that decided to do nothing.
async fn forget_run(pool: &PgPool, company_id: Uuid, run_id: Uuid) -> Result<(), sqlx::Error> {
    let mut tx = crate::db::begin_for_company(pool, company_id).await?;
    sqlx::query("DELETE FROM job_runs WHERE company_id = $1 AND run_id = $2")
        .bind(company_id)
        .bind(run_id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await
}

async fn last_success(
    pool: &PgPool,
    company_id: Uuid,
    job: Job,
) -> Result<Option<LastRun>, sqlx::Error> {
    let mut tx = crate::db::begin_for_company(pool, company_id).await?;
    let row: Option<(DateTime<Utc>, DateTime<Utc>, Option<String>)> = sqlx::query_as(
        "SELECT started_at, watermark, parameters FROM job_runs
         WHERE company_id = $1 AND job = $2 AND status = 'succeeded' AND range_from IS NULL
         ORDER BY started_at DESC LIMIT 1",
    )
    .bind(company_id)
    .bind(job.as_str())
    .fetch_optional(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(row.map(|(started_at, watermark, parameters)| LastRun {
        started_at,
        watermark,
        parameters,
    }))
}

/// Records the run as started at `now`, committed before any work. Its watermark is where
/// the next incremental run looks for changes from: `now`, or the start of the oldest
/// transaction still open (its rows, stamped with that start, are not visible to this run
/// yet), less 5 seconds for a transaction so new it does not show in `pg_stat_activity` yet
/// (re-examining a few seconds twice costs next to nothing). Runs of this job for this
/// company left 'running' by a process that stopped are closed as failed (this run holds the
/// lock, so none of them is running), and runs older than 30 days are pruned.
async fn record_start(
    pool: &PgPool,
    company_id: Uuid,
    (run_id, job, mode): (Uuid, Job, Mode),
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let mut tx = crate::db::begin_for_company(pool, company_id).await?;
    sqlx::query(
        "UPDATE job_runs SET status = 'failed', finished_at = $3,
             error = 'interrupted: the process stopped before the run finished'
         WHERE company_id = $1 AND job = $2 AND status = 'running'",
    )
    .bind(company_id)
    .bind(job.as_str())
    .bind(now)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "DELETE FROM job_runs
         WHERE company_id = $1 AND job = $2 AND started_at < $3::timestamptz - interval '30 days'",
    )
    .bind(company_id)
    .bind(job.as_str())
    .bind(now)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO job_runs (company_id, run_id, job, started_at, status, full_run, watermark,
             range_from, range_to)
         VALUES ($1, $2, $3, $6, 'running', false,
                 least($6, lux_oldest_open_transaction()) - interval '5 seconds', $4, $5)",
    )
    .bind(company_id)
    .bind(run_id)
    .bind(job.as_str())
    .bind(mode.days().0)
    .bind(mode.days().1)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}

async fn record_failure(
    pool: &PgPool,
    company_id: Uuid,
    run_id: Uuid,
    finished_at: DateTime<Utc>,
    error: &str,
) {
    let result = async {
        let mut tx = crate::db::begin_for_company(pool, company_id).await?;
        sqlx::query(
            "UPDATE job_runs SET finished_at = $4, status = 'failed', error = $3
             WHERE company_id = $1 AND run_id = $2",
        )
        .bind(company_id)
        .bind(run_id)
        .bind(error)
        .bind(finished_at)
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
pub async fn company_ids(pool: &PgPool) -> Result<Vec<CompanyId>, sqlx::Error> {
    sqlx::query_scalar("SELECT lux_company_ids()")
        .fetch_all(pool)
        .await
}

/// Runs every job for every company every `interval`, skipping what another node is running,
/// then the company's alerts once a day after its morning hour (`alerts::run_scheduled`: on
/// the rollups just brought up to date). Each run starts at the clock's `now`.
pub async fn run_scheduler(
    pool: PgPool,
    interval: Duration,
    clock: Clock,
    alerts: crate::alerts::AlertOptions,
) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut retention_due = Instant::now();
    loop {
        tick.tick().await;
        if Instant::now() >= retention_due {
            retention_due = Instant::now() + RETENTION_EVERY;
            run_retention(&pool, clock.now()).await;
        }
        let companies = match company_ids(&pool).await {
            Ok(ids) => ids,
            Err(error) => {
                tracing::warn!(error = %error, "jobs: could not list companies; will retry");
                continue;
            }
        };
        for company_id in companies {
            // Alerts read the rollups: only after every job ran here, to the end, this tick
            // (skipped: another node is mid-run, and its rollups may be half written).
            let mut all_ran = true;
            for job in Job::ALL {
                let how = (Mode::Incremental, WhenBusy::Skip);
                match run(&pool, company_id, job, how, clock.now()).await {
                    Ok(Some(report)) if report.rows_changed > 0 => tracing::info!(
                        job = job.as_str(), %company_id, examined = report.rows_examined,
                        changed = report.rows_changed, seconds = report.seconds, "job ran"),
                    Ok(Some(_)) => {}
                    Ok(None) => all_ran = false,
                    Err(error) => {
                        all_ran = false;
                        tracing::warn!(
                        job = job.as_str(), %company_id, error = %format!("{error:#}"),
                        "job failed; the next run retries");
                    }
                }
            }
            if !all_ran {
                continue;
            }
            match crate::alerts::run_scheduled(&pool, company_id.uuid(), clock.now(), &alerts).await
            {
                Ok(Some(evaluation)) => tracing::info!(%company_id, day = %evaluation.day,
                    fired = evaluation.fired.len(), resolved = evaluation.resolved.len(),
                    "alerts evaluated"),
                Ok(None) => {}
                Err(error) => tracing::warn!(%company_id, error = %error,
                    "alert evaluation failed; the next tick retries"),
            }
        }
    }
}

/// How often the scheduler enforces raw-event retention: partitions are monthly and the
/// cutoffs move by the day, so hourly is plenty.
const RETENTION_EVERY: Duration = Duration::from_secs(3600);

/// Raw-event retention for every company (`privacy::retention`), logged, never fatal.
async fn run_retention(pool: &PgPool, now: DateTime<Utc>) {
    match crate::privacy::retention::run(pool, "scheduler", now).await {
        Ok(report) if !report.dropped_partitions.is_empty() || !report.erased.is_empty() => {
            tracing::info!(dropped = ?report.dropped_partitions, erased = report.erased.len(),
                "retention ran")
        }
        Ok(_) => {}
        Err(error) => tracing::warn!(error = %error, "retention failed; the next run retries"),
    }
}
