//! Reads on a streaming replica (issue 20, SPEC §3): with `LUX_READ_DATABASE_URL` set, the
//! reports (and whatever else reads through [`ReadPools`]) run on a hot standby, while
//! ingestion, webhooks and jobs stay on the primary.
//!
//! A monitor asks the replica every second how far behind it is: the WAL bytes between the
//! primary's current position and the replica's replay position, and, when that is not zero,
//! the age of the last transaction it replayed. A replica that refuses or fails the check, or
//! is further behind than the allowed lag, is skipped: reads go to the primary until it
//! catches up, so a replica outage costs the primary some load, never an error page.
//!
//! A check that is merely slow (no answer within [`CHECK_TIMEOUT`], as on a loaded machine)
//! changes nothing by itself: only [`SLOW_CHECKS_BEFORE_DOWN`] slow checks in a row count as
//! down. Meanwhile a report the replica cannot answer (its connection lost, a pool timeout)
//! is run again on the primary, so a replica that hangs costs that report a few seconds,
//! never an error.
//!
//! Every read that goes to the primary although a replica is configured is counted, by
//! reason, in `lux_replica_fallbacks_total` ([`FallbackReason`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use sqlx::PgPool;

/// How often the replica's lag is measured.
const CHECK_EVERY: Duration = Duration::from_secs(1);
/// A check of the replica that takes longer than this is a slow check.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(2);
/// This many slow checks in a row (about 15 s without an answer) and the replica counts as
/// down. One slow check says the machine is busy, not that the replica is gone: a replica
/// that is really gone refuses connections, which is an error and counts at once.
pub const SLOW_CHECKS_BEFORE_DOWN: u32 = 5;

/// Why a read went to the primary although a replica is configured: the `reason` label of
/// `lux_replica_fallbacks_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FallbackReason {
    /// The last check found the replica further behind than `LUX_READ_MAX_LAG_SECONDS`.
    Behind,
    /// The replica failed its last check (or has not passed one yet).
    Down,
    /// A read on the replica lost its connection or could not get one; rerun on the primary.
    Connection,
    /// Replay cancelled the read on the replica (a conflict with recovery); rerun.
    RecoveryConflict,
    /// The replica has not replayed yet an object the read uses (a table a migration just
    /// added); rerun.
    NotReplayed,
}

impl FallbackReason {
    pub fn as_str(self) -> &'static str {
        match self {
            FallbackReason::Behind => "behind",
            FallbackReason::Down => "down",
            FallbackReason::Connection => "connection",
            FallbackReason::RecoveryConflict => "recovery_conflict",
            FallbackReason::NotReplayed => "not_replayed",
        }
    }

    /// Whether a read that failed on the replica with `error` may do better on the primary,
    /// and why. Anything else (a statement timeout, a bug in a query) would fail there too:
    /// it is answered as the error it is, not hidden behind a second run.
    pub fn of_error(error: &sqlx::Error) -> Option<FallbackReason> {
        if let sqlx::Error::Database(e) = error {
            match e.code().as_deref() {
                // "canceling statement due to conflict with recovery" (and its deadlock form).
                Some("40001" | "40P01") => return Some(FallbackReason::RecoveryConflict),
                // Undefined table, column, function, object: not replayed yet.
                Some("42P01" | "42703" | "42883" | "42704") => {
                    return Some(FallbackReason::NotReplayed);
                }
                _ => {}
            }
        }
        super::connection_may_be_lost(error).then_some(FallbackReason::Connection)
    }
}

/// The label set of `lux_replica_fallbacks_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FallbackLabel {
    pub reason: &'static str,
}

/// `lux_replica_fallbacks_total`, by reason (registered by `telemetry`).
pub type FallbackCounters = Family<FallbackLabel, Counter>;

/// Where reads go: the replica when it is up and close enough, else the primary.
#[derive(Clone)]
pub struct ReadPools {
    primary: PgPool,
    replica: Option<Arc<Replica>>,
}

/// What the monitor last decided about the replica.
const STATE_UNCHECKED: u8 = 0;
const STATE_USABLE: u8 = 1;
const STATE_BEHIND: u8 = 2;
const STATE_DOWN: u8 = 3;

struct Replica {
    pool: PgPool,
    max_lag: Duration,
    /// One of the `STATE_*` values.
    state: AtomicU8,
    /// Slow checks in a row (see [`SLOW_CHECKS_BEFORE_DOWN`]).
    slow_checks: AtomicU32,
    /// Seconds behind, as f64 bits (NaN before the first measurement or while it is down).
    lag_seconds: AtomicU64,
    lag_bytes: AtomicU64,
    fallbacks: FallbackCounters,
    /// The monitor's own connection to the replica, outside the pool: a check never waits
    /// behind the reports for one of the pool's few connections, and a replica that refuses
    /// connections says so at once (the pool would retry until its acquire timeout).
    monitor: tokio::sync::Mutex<Option<sqlx::PgConnection>>,
    /// Whether a slow check was already logged in the current run of slow checks.
    slow_logged: AtomicBool,
}

impl Replica {
    fn usable(&self) -> bool {
        self.state.load(Ordering::Relaxed) == STATE_USABLE
    }

    fn count(&self, reason: FallbackReason) {
        self.fallbacks
            .get_or_create(&FallbackLabel {
                reason: reason.as_str(),
            })
            .inc();
    }

    /// Sets the state, logging a change.
    fn decide(&self, state: u8, why: &str) {
        let was = self.state.swap(state, Ordering::Relaxed);
        if was != state && (was == STATE_USABLE || state == STATE_USABLE) {
            tracing::warn!(
                lag_seconds = f64::from_bits(self.lag_seconds.load(Ordering::Relaxed)),
                lag_bytes = self.lag_bytes.load(Ordering::Relaxed),
                "reads {} the replica ({why})",
                if state == STATE_USABLE {
                    "back on"
                } else {
                    "moved off"
                }
            );
        }
    }
}

/// What `/metrics` shows of the replica.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReplicaStatus {
    /// Reads go to the replica now.
    pub in_use: bool,
    /// How far behind it was at the last check (`None`: it did not answer).
    pub lag_seconds: Option<f64>,
    pub lag_bytes: u64,
}

/// Why one lag check did not measure the lag.
#[derive(Debug)]
enum CheckFailure {
    /// The replica did not answer within [`CHECK_TIMEOUT`].
    Slow,
    /// The replica refused or failed the check.
    Replica(sqlx::Error),
    /// The primary did not say where it is (not the replica's fault: nothing changes).
    Primary(sqlx::Error),
}

impl ReadPools {
    /// Reads on the primary only (no replica configured).
    pub fn primary_only(primary: PgPool) -> Self {
        ReadPools {
            primary,
            replica: None,
        }
    }

    /// Reads on `replica` while it is at most `max_lag` behind; until the first check says
    /// so, on the primary. Reads sent to the primary instead are counted in `fallbacks`.
    pub fn with_replica(
        primary: PgPool,
        replica: PgPool,
        max_lag: Duration,
        fallbacks: FallbackCounters,
    ) -> Self {
        ReadPools {
            primary,
            replica: Some(Arc::new(Replica {
                pool: replica,
                max_lag,
                state: AtomicU8::new(STATE_UNCHECKED),
                slow_checks: AtomicU32::new(0),
                lag_seconds: AtomicU64::new(f64::NAN.to_bits()),
                lag_bytes: AtomicU64::new(0),
                fallbacks,
                monitor: tokio::sync::Mutex::new(None),
                slow_logged: AtomicBool::new(false),
            })),
        }
    }

    /// The pool to read from now. With a replica configured but not usable, the read is
    /// counted as a fallback (`behind` or `down`).
    pub fn pool(&self) -> &PgPool {
        let Some(replica) = &self.replica else {
            return &self.primary;
        };
        match replica.state.load(Ordering::Relaxed) {
            STATE_USABLE => &replica.pool,
            STATE_BEHIND => {
                replica.count(FallbackReason::Behind);
                &self.primary
            }
            _ => {
                replica.count(FallbackReason::Down);
                &self.primary
            }
        }
    }

    /// The primary's read pool.
    pub fn primary(&self) -> &PgPool {
        &self.primary
    }

    /// Where to run again a read that failed on `read` with `error`: the primary, when `read`
    /// was the replica and the primary may do better ([`FallbackReason::of_error`]); the
    /// fallback is counted and logged. `None`: the error is the answer.
    pub fn retry_on_primary(&self, read: &PgPool, error: &sqlx::Error) -> Option<&PgPool> {
        let replica = self.replica.as_ref()?;
        if !std::ptr::eq(read, &replica.pool) {
            return None;
        }
        let reason = FallbackReason::of_error(error)?;
        replica.count(reason);
        tracing::warn!(%error, reason = reason.as_str(),
                       "a read failed on the replica; run again on the primary");
        Some(&self.primary)
    }

    /// Closes the pools (at shutdown).
    pub async fn close(&self) {
        self.primary.close().await;
        if let Some(replica) = &self.replica {
            replica.pool.close().await;
        }
    }

    /// The replica's state, or `None` when there is no replica.
    pub fn status(&self) -> Option<ReplicaStatus> {
        let replica = self.replica.as_ref()?;
        let lag = f64::from_bits(replica.lag_seconds.load(Ordering::Relaxed));
        Some(ReplicaStatus {
            in_use: replica.usable(),
            lag_seconds: (!lag.is_nan()).then_some(lag),
            lag_bytes: replica.lag_bytes.load(Ordering::Relaxed),
        })
    }

    /// Measures the replica's lag now and decides whether reads may go there. `primary` is
    /// any pool on the primary (the WAL position is not secret: any role may read it).
    pub async fn check(&self, primary: &PgPool) {
        let Some(replica) = &self.replica else {
            return;
        };
        let measured = {
            let mut monitor = replica.monitor.lock().await;
            let measured = measure_lag(primary, &replica.pool, &mut monitor).await;
            if matches!(measured, Err(CheckFailure::Slow | CheckFailure::Replica(_))) {
                // In an unknown state (a query may still be running): a new one next time.
                *monitor = None;
            }
            measured
        };
        match measured {
            Ok((seconds, bytes)) => {
                replica.slow_checks.store(0, Ordering::Relaxed);
                replica.slow_logged.store(false, Ordering::Relaxed);
                replica
                    .lag_seconds
                    .store(seconds.to_bits(), Ordering::Relaxed);
                replica.lag_bytes.store(bytes, Ordering::Relaxed);
                if seconds <= replica.max_lag.as_secs_f64() {
                    replica.decide(STATE_USABLE, "caught up");
                } else {
                    replica.decide(STATE_BEHIND, "too far behind");
                }
            }
            Err(CheckFailure::Slow) => {
                let slow = replica.slow_checks.fetch_add(1, Ordering::Relaxed) + 1;
                if slow >= SLOW_CHECKS_BEFORE_DOWN {
                    replica
                        .lag_seconds
                        .store(f64::NAN.to_bits(), Ordering::Relaxed);
                    replica.decide(STATE_DOWN, "no answer to several checks in a row");
                } else if !replica.slow_logged.swap(true, Ordering::Relaxed) {
                    tracing::info!(
                        slow_checks = slow,
                        "the replica was slow to answer its lag check; reads stay where they are"
                    );
                }
            }
            Err(CheckFailure::Replica(error)) => {
                replica.slow_checks.store(0, Ordering::Relaxed);
                replica
                    .lag_seconds
                    .store(f64::NAN.to_bits(), Ordering::Relaxed);
                if replica.usable() {
                    tracing::warn!(%error, "the replica fails its lag check");
                }
                replica.decide(STATE_DOWN, "it does not answer");
            }
            Err(CheckFailure::Primary(error)) => {
                tracing::debug!(%error, "the primary did not give its WAL position; the replica's state stays");
            }
        }
    }

    /// Checks the replica every second until the process ends (nothing to do without one).
    pub fn spawn_monitor(&self, primary: PgPool) -> Option<tokio::task::JoinHandle<()>> {
        self.replica.as_ref()?;
        let pools = self.clone();
        Some(tokio::spawn(async move {
            loop {
                pools.check(&primary).await;
                tokio::time::sleep(CHECK_EVERY).await;
            }
        }))
    }
}

/// (seconds, bytes) the replica is behind the primary. Zero bytes is zero seconds: an idle
/// primary writes nothing, and the age of the last replayed transaction would then grow
/// although the replica has everything.
async fn measure_lag(
    primary: &PgPool,
    replica: &PgPool,
    monitor: &mut Option<sqlx::PgConnection>,
) -> Result<(f64, u64), CheckFailure> {
    use sqlx::Connection as _;
    let connection = match monitor {
        Some(connection) => connection,
        None => {
            let options = replica.connect_options();
            let connect = sqlx::PgConnection::connect_with(&options);
            let connection = tokio::time::timeout(CHECK_TIMEOUT, connect)
                .await
                .map_err(|_| CheckFailure::Slow)?
                .map_err(CheckFailure::Replica)?;
            monitor.insert(connection)
        }
    };
    let asked = sqlx::query_as(
        "SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn()::text,
                extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8",
    )
    .fetch_one(&mut *connection);
    let (in_recovery, replayed, last_replay_age): (bool, Option<String>, Option<f64>) =
        tokio::time::timeout(CHECK_TIMEOUT, asked)
            .await
            .map_err(|_| CheckFailure::Slow)?
            .map_err(CheckFailure::Replica)?;
    if !in_recovery {
        // A promoted replica (or a URL that points at a primary) holds what it holds.
        return Ok((0.0, 0));
    }
    let Some(replayed) = replayed else {
        return Ok((f64::INFINITY, u64::MAX));
    };
    let position =
        sqlx::query_scalar("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), $1::pg_lsn)::float8")
            .bind(&replayed)
            .fetch_one(primary);
    let behind: f64 = tokio::time::timeout(CHECK_TIMEOUT, position)
        .await
        .map_err(|_| CheckFailure::Primary(sqlx::Error::PoolTimedOut))?
        .map_err(CheckFailure::Primary)?;
    if behind <= 0.0 {
        return Ok((0.0, 0));
    }
    Ok((
        last_replay_age.unwrap_or(f64::INFINITY).max(0.0),
        behind as u64,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_errors_the_primary_may_not_have_are_rerun_there() {
        assert_eq!(
            FallbackReason::of_error(&sqlx::Error::PoolTimedOut),
            Some(FallbackReason::Connection)
        );
        let refused = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        assert_eq!(
            FallbackReason::of_error(&sqlx::Error::Io(refused)),
            Some(FallbackReason::Connection)
        );
        assert_eq!(FallbackReason::of_error(&sqlx::Error::RowNotFound), None);
        assert_eq!(
            FallbackReason::of_error(&sqlx::Error::ColumnNotFound("x".into())),
            None
        );
    }
}
