//! PostgreSQL: connecting, migrating, the roles the service runs as, per-company transactions
//! and the embedded default cluster.

pub mod catalog;
pub mod embedded;
pub mod replica;

use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Executor, PgPool, Postgres, Transaction};
use uuid::Uuid;

/// The migrations, embedded in the binary. Forward-only: an applied file is never edited.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The connection (or the server) may be gone: nothing about the request or the statement is
/// known to be wrong, and the same work may succeed on a new connection. Everything else the
/// database answered (a constraint, a permission, an SQL error) is about the work itself.
pub fn connection_may_be_lost(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        // Class 08 (connection exception), and the server shutting down or not yet up.
        sqlx::Error::Database(e) => e
            .code()
            .is_some_and(|code| code.starts_with("08") || code.starts_with("57P")),
        _ => false,
    }
}

/// The server is busy rather than broken: a statement timeout (or cancel), too many
/// connections, a serialization failure or deadlock. Retrying shortly is the right answer.
pub fn is_overload(error: &sqlx::Error) -> bool {
    let sqlx::Error::Database(e) = error else {
        return false;
    };
    matches!(
        e.code().as_deref(),
        Some("57014" | "53300" | "40001" | "40P01")
    )
}

/// Why connecting or migrating failed; the cause is the error's source.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("DATABASE_URL is not a valid postgres URL")]
    Url(#[source] sqlx::Error),
    #[error("could not connect to PostgreSQL (is DATABASE_URL right and the server up?)")]
    Connect(#[source] sqlx::Error),
    #[error("applying database migrations")]
    Migrate(#[source] sqlx::migrate::MigrateError),
}

/// Connects as the owner (the role in `DATABASE_URL`): for migrations and admin commands.
pub async fn connect_owner(url: &str, max_connections: u32) -> Result<PgPool, DbError> {
    let options = connect_options(url)?;
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options)
        .await
        .map_err(DbError::Connect)
}

/// Connects for the service: every connection switches to `lux_app` before use, so row-level
/// security applies to everything the service does and it cannot update raw events.
///
/// `connect_lazy` so the service starts (and answers `/readyz` 503) while the database is down,
/// and reconnects by itself when it comes back.
pub fn connect_app(url: &str, max_connections: u32) -> Result<PgPool, DbError> {
    connect_lazy_as(url, max_connections, "SET ROLE lux_app")
}

/// Connects for the metrics API: every connection switches to `lux_reader`, which can read
/// the rollup tables and nothing else (no raw events, sessions or orders), under row-level
/// security. Lazy, like [`connect_app`].
pub fn connect_reader(url: &str, max_connections: u32) -> Result<PgPool, DbError> {
    connect_lazy_as(url, max_connections, "SET ROLE lux_reader")
}

/// Opens one connection as `lux_app` for an ingest writer, outside any pool: the writers each
/// keep their own (see `analytics::writer`).
///
/// The writers run the same dozen statements thousands of times a second, each one a lookup
/// or an insert by key, so their plans are made once (generic plans, no planning per batch)
/// and kept on the indexes: no sequential scan, hash join or merge join. A generic plan made on
/// a new, still-empty table may still pick the wrong index (nothing tells them apart yet); the
/// writer re-makes its plans as the tables grow (see `analytics::writer::WriterConnection`).
pub async fn connect_ingest_writer(
    options: &PgConnectOptions,
) -> Result<sqlx::PgConnection, sqlx::Error> {
    use sqlx::Connection as _;
    let connect = sqlx::PgConnection::connect_with(options);
    let mut conn = tokio::time::timeout(Duration::from_secs(3), connect)
        .await
        .map_err(|_| {
            sqlx::Error::Io(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "connecting to PostgreSQL took more than 3 s",
            ))
        })??;
    // No JIT: the disabled plan types carry a cost penalty, and a plan that ends up above
    // `jit_above_cost` because of it is compiled on every run (about 250 ms a batch, seen
    // with a sequential scan of a staging table).
    conn.execute(
        "SET ROLE lux_app; SET plan_cache_mode = force_generic_plan; \
         SET enable_seqscan = off; SET enable_hashjoin = off; SET enable_mergejoin = off; \
         SET jit = off",
    )
    .await?;
    Ok(conn)
}

/// Parses `DATABASE_URL`, with sqlx's own statement logging at TRACE only.
///
/// sqlx logs every statement (DEBUG by default) and, past a threshold (1 s by default), the
/// statement again at WARN with its whole SQL text: one slow report or rollup chunk then fills
/// the log with a page of SQL that says nothing about which report or job it was. Here both go
/// to TRACE, for someone tracing `sqlx::query` on purpose; the service logs what is slow
/// itself, by name and duration (a report: `reports::run`; a job run: `jobs`).
pub fn connect_options(url: &str) -> Result<PgConnectOptions, DbError> {
    use sqlx::ConnectOptions as _;
    let options: PgConnectOptions = url.parse().map_err(DbError::Url)?;
    Ok(options
        .log_statements(log::LevelFilter::Trace)
        .log_slow_statements(log::LevelFilter::Trace, SLOW_STATEMENT))
}

/// What counts as slow for sqlx's statement log (its default): a statement taking longer is
/// logged as slow, at TRACE (see [`connect_options`]).
pub const SLOW_STATEMENT: Duration = Duration::from_secs(1);

fn connect_lazy_as(
    url: &str,
    max_connections: u32,
    set_role: &'static str,
) -> Result<PgPool, DbError> {
    let options = connect_options(url)?;
    Ok(PgPoolOptions::new()
        .max_connections(max_connections)
        .min_connections(0)
        .acquire_timeout(Duration::from_secs(3))
        .after_connect(move |conn, _meta| {
            Box::pin(async move {
                conn.execute(set_role).await?;
                Ok(())
            })
        })
        .connect_lazy_with(options))
}

/// Applies pending migrations. sqlx takes an advisory lock, so two processes starting at once
/// do not race.
pub async fn migrate(owner: &PgPool) -> Result<(), DbError> {
    MIGRATOR.run(owner).await.map_err(DbError::Migrate)
}

/// Opens a transaction scoped to one company: row-level security then shows and accepts only
/// that company's rows.
pub async fn begin_for_company(
    pool: &PgPool,
    company_id: Uuid,
) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    set_company(&mut tx, company_id).await?;
    Ok(tx)
}

/// Switches the company of an open transaction (the batch writer serves several companies in
/// one transaction, one after the other).
pub async fn set_company(
    tx: &mut Transaction<'_, Postgres>,
    company_id: Uuid,
) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT set_config('lux.company_id', $1, true)")
        .bind(company_id.to_string())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Makes sure monthly `raw_events` partitions exist from two years back to three months ahead.
/// Called at start-up and daily by the service.
pub async fn ensure_partitions(pool: &PgPool) -> Result<i32, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT lux_ensure_raw_event_partitions(
             (now() - interval '25 months')::date, (now() + interval '3 months')::date)",
    )
    .fetch_one(pool)
    .await
}
