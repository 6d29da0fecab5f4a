//! Reads on a streaming replica (issue 20, SPEC §3): with `LUX_READ_DATABASE_URL` set, the
//! reports (and whatever else reads through [`ReadPools`]) run on a hot standby, while
//! ingestion, webhooks and jobs stay on the primary.
//!
//! A monitor asks the replica every second how far behind it is: the WAL bytes between the
//! primary's current position and the replica's replay position, and, when that is not zero,
//! the age of the last transaction it replayed. A replica that does not answer, or is further
//! behind than the allowed lag, is skipped: reads go to the primary until it catches up, so a
//! replica outage costs the primary some load, never an error page.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use sqlx::PgPool;

/// How often the replica's lag is measured.
const CHECK_EVERY: Duration = Duration::from_secs(1);
/// A replica that takes longer than this to say how far behind it is counts as down.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// Where reads go: the replica when it is up and close enough, else the primary.
#[derive(Clone)]
pub struct ReadPools {
    primary: PgPool,
    replica: Option<Arc<Replica>>,
}

struct Replica {
    pool: PgPool,
    max_lag: Duration,
    usable: AtomicBool,
    /// Seconds behind, as f64 bits (NaN before the first measurement or while it is down).
    lag_seconds: AtomicU64,
    lag_bytes: AtomicU64,
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

impl ReadPools {
    /// Reads on the primary only (no replica configured).
    pub fn primary_only(primary: PgPool) -> Self {
        ReadPools {
            primary,
            replica: None,
        }
    }

    /// Reads on `replica` while it is at most `max_lag` behind; until the first check says
    /// so, on the primary.
    pub fn with_replica(primary: PgPool, replica: PgPool, max_lag: Duration) -> Self {
        ReadPools {
            primary,
            replica: Some(Arc::new(Replica {
                pool: replica,
                max_lag,
                usable: AtomicBool::new(false),
                lag_seconds: AtomicU64::new(f64::NAN.to_bits()),
                lag_bytes: AtomicU64::new(0),
            })),
        }
    }

    /// The pool to read from now.
    pub fn pool(&self) -> &PgPool {
        match &self.replica {
            Some(replica) if replica.usable.load(Ordering::Relaxed) => &replica.pool,
            _ => &self.primary,
        }
    }

    /// The primary's read pool: the fallback when a read on the replica lost its connection.
    pub fn primary(&self) -> &PgPool {
        &self.primary
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
            in_use: replica.usable.load(Ordering::Relaxed),
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
        let measured = tokio::time::timeout(CHECK_TIMEOUT, measure_lag(primary, &replica.pool))
            .await
            .unwrap_or_else(|_| Err(sqlx::Error::PoolTimedOut));
        match measured {
            Ok((seconds, bytes)) => {
                replica
                    .lag_seconds
                    .store(seconds.to_bits(), Ordering::Relaxed);
                replica.lag_bytes.store(bytes, Ordering::Relaxed);
                let close_enough = seconds <= replica.max_lag.as_secs_f64();
                let was = replica.usable.swap(close_enough, Ordering::Relaxed);
                if was != close_enough {
                    tracing::warn!(
                        lag_seconds = seconds,
                        lag_bytes = bytes,
                        "reads {} the replica",
                        if close_enough {
                            "back on"
                        } else {
                            "moved off (too far behind)"
                        }
                    );
                }
            }
            Err(error) => {
                replica
                    .lag_seconds
                    .store(f64::NAN.to_bits(), Ordering::Relaxed);
                if replica.usable.swap(false, Ordering::Relaxed) {
                    tracing::warn!(%error, "the replica does not answer: reads moved to the primary");
                }
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
async fn measure_lag(primary: &PgPool, replica: &PgPool) -> Result<(f64, u64), sqlx::Error> {
    let (in_recovery, replayed, last_replay_age): (bool, Option<String>, Option<f64>) =
        sqlx::query_as(
            "SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn()::text,
                    extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8",
        )
        .fetch_one(replica)
        .await?;
    if !in_recovery {
        // A promoted replica (or a URL that points at a primary) holds what it holds.
        return Ok((0.0, 0));
    }
    let Some(replayed) = replayed else {
        return Ok((f64::INFINITY, u64::MAX));
    };
    let behind: f64 =
        sqlx::query_scalar("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), $1::pg_lsn)::float8")
            .bind(&replayed)
            .fetch_one(primary)
            .await?;
    if behind <= 0.0 {
        return Ok((0.0, 0));
    }
    Ok((
        last_replay_age.unwrap_or(f64::INFINITY).max(0.0),
        behind as u64,
    ))
}
