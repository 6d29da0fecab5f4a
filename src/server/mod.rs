//! `lux serve`: migrations, pools, the batch writer, background maintenance and the HTTP
//! server, with graceful shutdown (stop accepting, flush the writer, exit).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub mod openapi;
pub mod routes;

use crate::analytics::IngestOptions;
use crate::analytics::writer::{Writer, WriterConfig};
use crate::db::replica::ReadPools;
use crate::privacy::IpHasher;
use crate::telemetry::IngestMetrics;
use crate::tenancy::Tenancy;
pub use routes::AppState;

#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub bind: SocketAddr,
    pub ingest: IngestOptions,
    pub messages: crate::messages::MessagesOptions,
    pub writer: WriterConfig,
    /// How long a resolved key and its company settings are cached.
    pub key_cache_ttl: Duration,
    pub pool_size: u32,
    /// Key for webhook secrets (LUX_SECRETS_KEY); webhooks answer 503 without it.
    pub secrets_key: Option<crate::commerce::secrets::SecretsKey>,
    /// How often the jobs (attribution, ...) run for every company; `None`: never.
    pub jobs_interval: Option<Duration>,
    /// "Now" for the reports (fixed in tests).
    pub clock: crate::clock::Clock,
    /// A streaming replica for the reports (LUX_READ_DATABASE_URL), and how far behind it
    /// may be before reads go back to the primary.
    pub read_replica: Option<ReadReplica>,
    /// Alert delivery (SMTP, back-off) and dashboard links; the outbox worker runs when
    /// `Some`.
    pub alerts: Option<crate::alerts::DeliveryOptions>,
    /// `LUX_PUBLIC_URL`, for the dashboard links in alerts.
    pub public_url: Option<url::Url>,
}

/// Where the read-only work may go (see `db::replica`).
#[derive(Debug, Clone)]
pub struct ReadReplica {
    pub url: String,
    pub max_lag: Duration,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            bind: ([127, 0, 0, 1], 8080).into(),
            ingest: IngestOptions::default(),
            messages: crate::messages::MessagesOptions::default(),
            writer: WriterConfig::default(),
            key_cache_ttl: Duration::from_secs(30),
            pool_size: 16,
            secrets_key: None,
            jobs_interval: Some(Duration::from_secs(60)),
            clock: crate::clock::Clock::System,
            read_replica: None,
            alerts: Some(crate::alerts::DeliveryOptions::default()),
            public_url: None,
        }
    }
}

/// Why the server did not start, or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(transparent)]
    Database(#[from] crate::db::DbError),
    #[error("creating raw_events partitions")]
    Partitions(#[source] sqlx::Error),
    #[error("binding {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        error: std::io::Error,
    },
    #[error("serving HTTP")]
    Serve(#[source] std::io::Error),
    #[error("server task")]
    Task(#[source] tokio::task::JoinError),
}

/// A server started by [`start`].
pub struct RunningServer {
    pub addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), ServerError>>,
}

impl RunningServer {
    /// Stops accepting, flushes queued events, and waits for the end.
    pub async fn stop(mut self) -> Result<(), ServerError> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.task.await.map_err(ServerError::Task)?
    }

    /// Waits until the server stops by itself (a signal).
    pub async fn wait(self) -> Result<(), ServerError> {
        let RunningServer { shutdown, task, .. } = self;
        let result = task.await.map_err(ServerError::Task)?;
        drop(shutdown);
        result
    }
}

/// Migrates the database, then serves until SIGINT/SIGTERM or [`RunningServer::stop`].
pub async fn start(
    database_url: &str,
    options: ServeOptions,
) -> Result<RunningServer, ServerError> {
    let owner = crate::db::connect_owner(database_url, 2).await?;
    crate::db::migrate(&owner).await?;
    owner.close().await;

    let pool = crate::db::connect_app(database_url, options.pool_size)?;
    // Reports are few and heavier than ingestion: a quarter of the pool, at least 2.
    let reader_connections = (options.pool_size / 4).max(2);
    let primary_reader = crate::db::connect_reader(database_url, reader_connections)?;
    let metrics = IngestMetrics::new();
    let reader = match &options.read_replica {
        None => ReadPools::primary_only(primary_reader),
        Some(replica) => ReadPools::with_replica(
            primary_reader,
            crate::db::connect_reader(&replica.url, reader_connections)?,
            replica.max_lag,
            metrics.replica_fallbacks.clone(),
        ),
    };
    // Decides before the first request whether the replica may be read.
    reader.check(&pool).await;
    let replica_monitor = reader.spawn_monitor(pool.clone());
    crate::db::ensure_partitions(&pool)
        .await
        .map_err(ServerError::Partitions)?;
    let alert_counters = metrics.alerts.clone();
    let purchases = Arc::new(tokio::sync::Notify::new());
    let (writer, writer_tasks) = Writer::start(
        crate::db::connect_options(database_url)?,
        options.writer.clone(),
        metrics.clone(),
        purchases.clone(),
    );
    let order_worker = tokio::spawn(crate::commerce::inbox::run_worker(
        pool.clone(),
        purchases,
        options.clock,
    ));
    let state = AppState {
        pool: pool.clone(),
        reader: reader.clone(),
        clock: options.clock,
        tenancy: Arc::new(Tenancy::new(pool.clone(), options.key_cache_ttl)),
        writer,
        ip_hasher: Arc::new(IpHasher::new(pool.clone())),
        metrics,
        secrets_key: options.secrets_key.clone(),
        ingest: Arc::new(options.ingest.clone()),
        messages: Arc::new(options.messages.clone()),
    };
    let maintenance = tokio::spawn(maintain_partitions(pool.clone()));
    let alert_options = crate::alerts::AlertOptions {
        public_url: options.public_url.clone(),
        counters: alert_counters.clone(),
    };
    let scheduler = options.jobs_interval.map(|every| {
        tokio::spawn(crate::jobs::run_scheduler(
            pool.clone(),
            every,
            options.clock,
            alert_options.clone(),
        ))
    });
    // The alert outbox: what evaluations (here, `lux alerts check`, another node) enqueued.
    let alert_worker = options.alerts.clone().map(|delivery| {
        tokio::spawn(crate::alerts::delivery::run_worker(
            pool.clone(),
            delivery,
            options.clock,
            alert_counters.clone(),
        ))
    });

    let listener = tokio::net::TcpListener::bind(options.bind)
        .await
        .map_err(|error| ServerError::Bind {
            addr: options.bind,
            error,
        })?;
    let addr = listener.local_addr().map_err(|error| ServerError::Bind {
        addr: options.bind,
        error,
    })?;
    let (shutdown_tx, shutdown_rx) = oneshot::channel::<()>();
    let app = routes::router(state);
    let task = tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown_signal(shutdown_rx))
        .await
        .map_err(ServerError::Serve)?;
        // The router (and with it every Writer handle) is gone: the writers drain the queue
        // and stop.
        for task in writer_tasks {
            let _ = task.await;
        }
        maintenance.abort();
        // A job cut short commits nothing half-done (each chunk is one transaction) and its
        // run stays 'running'; the next run redoes what it had not finished.
        if let Some(scheduler) = scheduler {
            scheduler.abort();
        }
        // Purchases still in the inbox are merged by the next start (or another node).
        order_worker.abort();
        if let Some(monitor) = replica_monitor {
            monitor.abort();
        }
        // A delivery cut short rolls back its claim: the row stays due for the next pass.
        if let Some(worker) = alert_worker {
            worker.abort();
        }
        pool.close().await;
        reader.close().await;
        tracing::info!("stopped");
        Ok(())
    });
    tracing::info!(%addr, "listening");
    Ok(RunningServer {
        addr,
        shutdown: Some(shutdown_tx),
        task,
    })
}

async fn shutdown_signal(stop: oneshot::Receiver<()>) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
        _ = stop => {},
    }
    tracing::info!("shutting down: no new connections, flushing queued events");
}

/// Keeps the `raw_events` partition window moving.
async fn maintain_partitions(pool: sqlx::PgPool) {
    let mut every_day = tokio::time::interval(Duration::from_secs(6 * 3600));
    loop {
        every_day.tick().await;
        if let Err(error) = crate::db::ensure_partitions(&pool).await {
            tracing::warn!(error = %error, "could not create raw_events partitions; will retry");
        }
    }
}
