//! Operational metrics, served at `/metrics` in the Prometheus/OpenMetrics text format:
//! what ingestion accepted and refused and why, the writer's queue, batch sizes and flush
//! latency, and the database pool. No label ever holds a company, a visitor or a key.

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Reason {
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PoolState {
    pub state: &'static str,
}

/// What the alerts did (SPEC §8.4): evaluations run, alerts that started firing, delivery
/// attempts that failed. Cheap to clone (the counters are shared).
#[derive(Clone, Debug, Default)]
pub struct AlertCounters {
    pub evaluations: Counter,
    pub firings: Counter,
    pub delivery_failures: Counter,
}

pub struct IngestMetrics {
    registry: Registry,
    pub alerts: AlertCounters,
    pub stored: Counter,
    pub duplicates: Counter,
    pub suppressed: Counter,
    /// Events refused at validation, by reason code.
    pub rejected: Family<Reason, Counter>,
    /// 503 answers: `overloaded` (queue full) or `database` (unavailable).
    pub unavailable: Family<Reason, Counter>,
    pub queue_depth: Gauge,
    pub queue_capacity: Gauge,
    pub batch_events: Histogram,
    pub flush_seconds: Histogram,
    pub pool_connections: Family<PoolState, Gauge>,
    /// The read replica (LUX_READ_DATABASE_URL): 1 while reads go there.
    pub replica_in_use: Gauge,
    /// How far behind the replica was at its last check (NaN: it did not answer).
    pub replica_lag_seconds: Gauge<f64, std::sync::atomic::AtomicU64>,
    pub replica_lag_bytes: Gauge,
    /// Reads sent to the primary although a replica is configured, by reason
    /// (`db::replica::FallbackReason`).
    pub replica_fallbacks: crate::db::replica::FallbackCounters,
    /// Open privacy requests past their due date (45 days), all companies.
    pub privacy_requests_overdue: Gauge,
}

impl IngestMetrics {
    pub fn new() -> Arc<Self> {
        let mut registry = Registry::with_prefix("lux");
        let stored = Counter::default();
        let duplicates = Counter::default();
        let suppressed = Counter::default();
        let rejected = Family::<Reason, Counter>::default();
        let unavailable = Family::<Reason, Counter>::default();
        let queue_depth = Gauge::default();
        let queue_capacity = Gauge::default();
        let batch_events = Histogram::new(exponential_buckets(1.0, 2.0, 13));
        let flush_seconds = Histogram::new(exponential_buckets(0.0005, 2.0, 14));
        let pool_connections = Family::<PoolState, Gauge>::default();
        let replica_in_use = Gauge::default();
        let replica_lag_seconds = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
        let replica_lag_bytes = Gauge::default();
        let replica_fallbacks = crate::db::replica::FallbackCounters::default();
        registry.register(
            "replica_in_use",
            "1 while reports read from the streaming replica (LUX_READ_DATABASE_URL)",
            replica_in_use.clone(),
        );
        registry.register(
            "replica_lag_seconds",
            "How far the read replica was behind the primary at its last check (NaN: down)",
            replica_lag_seconds.clone(),
        );
        registry.register(
            "replica_lag_bytes",
            "WAL bytes the read replica had not replayed at its last check",
            replica_lag_bytes.clone(),
        );
        registry.register(
            "replica_fallbacks",
            "Reads sent to the primary although a read replica is configured, by reason",
            replica_fallbacks.clone(),
        );
        let alerts = AlertCounters::default();
        registry.register(
            "alert_evaluations",
            "Alert evaluations (one company, one day)",
            alerts.evaluations.clone(),
        );
        registry.register(
            "alert_firings",
            "Alerts that started firing",
            alerts.firings.clone(),
        );
        registry.register(
            "alert_delivery_failures",
            "Alert delivery attempts that failed (retried with back-off)",
            alerts.delivery_failures.clone(),
        );
        let privacy_requests_overdue = Gauge::default();
        registry.register(
            "events_stored",
            "Events committed to raw_events",
            stored.clone(),
        );
        registry.register(
            "events_duplicate",
            "Events already stored (retries), not stored again",
            duplicates.clone(),
        );
        registry.register(
            "events_suppressed",
            "Events of suppressed people, not stored",
            suppressed.clone(),
        );
        registry.register(
            "events_rejected",
            "Events refused as invalid, by reason",
            rejected.clone(),
        );
        registry.register(
            "ingest_unavailable",
            "Requests answered 503, by reason",
            unavailable.clone(),
        );
        registry.register(
            "ingest_queue_depth",
            "Requests waiting for the batch writer",
            queue_depth.clone(),
        );
        registry.register(
            "ingest_queue_capacity",
            "Requests that may wait before /e answers 503",
            queue_capacity.clone(),
        );
        registry.register(
            "ingest_batch_events",
            "Events per writer transaction",
            batch_events.clone(),
        );
        registry.register(
            "ingest_flush_seconds",
            "Time to write and commit one batch",
            flush_seconds.clone(),
        );
        registry.register(
            "db_pool_connections",
            "Database pool connections by state",
            pool_connections.clone(),
        );
        registry.register(
            "privacy_requests_overdue",
            "Open privacy requests past their due date",
            privacy_requests_overdue.clone(),
        );
        Arc::new(IngestMetrics {
            registry,
            alerts,
            stored,
            duplicates,
            suppressed,
            rejected,
            unavailable,
            queue_depth,
            queue_capacity,
            batch_events,
            flush_seconds,
            pool_connections,
            replica_in_use,
            replica_lag_seconds,
            replica_lag_bytes,
            replica_fallbacks,
            privacy_requests_overdue,
        })
    }

    pub fn reject(&self, reason: &str) {
        self.rejected
            .get_or_create(&Reason {
                reason: reason.to_string(),
            })
            .inc();
    }

    pub fn unavailable(&self, reason: &str) {
        self.unavailable
            .get_or_create(&Reason {
                reason: reason.to_string(),
            })
            .inc();
    }

    /// The text exposition, with the pool gauges read now.
    pub fn render(&self, pool: &sqlx::PgPool) -> String {
        let size = i64::from(pool.size());
        let idle = pool.num_idle() as i64;
        for (state, value) in [
            ("idle", idle),
            ("in_use", size - idle),
            ("max", i64::from(pool.options().get_max_connections())),
        ] {
            self.pool_connections
                .get_or_create(&PoolState { state })
                .set(value);
        }
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}
