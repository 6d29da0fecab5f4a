//! What the benchmarks share: a fresh database to run on, and what PostgreSQL spent.

// Used by the benchmarks that measure PostgreSQL's share; the others compile it too.
#[allow(dead_code)]
pub mod pg_cost;
// Only the ingest benchmark runs several nodes; the others compile it too.
#[allow(dead_code)]
pub mod nodes;

use sqlx::PgPool;
use uuid::Uuid;

/// A private cluster for the benchmark, removed when dropped.
pub struct BenchCluster {
    cluster: lux::db::embedded::EmbeddedPostgres,
    dir: std::path::PathBuf,
}

impl Drop for BenchCluster {
    fn drop(&mut self) {
        self.cluster.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A new database on `DATABASE_URL`'s server, else on a private cluster at PostgreSQL's
/// default durability (removed with the returned guard).
pub async fn fresh_database() -> (String, Option<BenchCluster>) {
    let (server_url, cluster) = match std::env::var("DATABASE_URL") {
        Ok(url) => (url, None),
        Err(_) => {
            let dir = std::env::temp_dir().join(format!("lux-bench-{}", Uuid::new_v4()));
            // pg_stat_statements, so the benchmarks can say where PostgreSQL's time goes.
            let cluster = lux::db::embedded::EmbeddedPostgres::start_with_settings(
                &dir,
                &[("shared_preload_libraries", "pg_stat_statements")],
            )
            .expect("embedded cluster");
            (cluster.server_url(), Some(BenchCluster { cluster, dir }))
        }
    };
    let name = format!("lux_bench_{}", Uuid::new_v4().simple());
    let admin = PgPool::connect(&server_url).await.expect("connect");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&admin)
        .await
        .expect("create database");
    admin.close().await;
    let mut url = url::Url::parse(&server_url).expect("url");
    url.set_path(&name);
    (url.to_string(), cluster)
}

/// The value of `--name VALUE` on the command line, else `default`. A value that does not
/// parse stops the benchmark with a message naming the flag, rather than running with the
/// default unnoticed.
pub fn flag<T: std::str::FromStr>(name: &str, default: T) -> T {
    let args: Vec<String> = std::env::args().collect();
    match args.iter().position(|a| a == name) {
        None => default,
        Some(i) => {
            let value = args.get(i + 1).map(String::as_str).unwrap_or_default();
            value.parse().unwrap_or_else(|_| {
                eprintln!("{name}: {value:?} is not a valid value");
                std::process::exit(2)
            })
        }
    }
}
