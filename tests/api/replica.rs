//! Reports on a streaming replica (issue 20, SPEC §3): a real hot standby made with
//! `pg_basebackup` from the test's cluster, `LUX_READ_DATABASE_URL` pointing at it.

use std::time::Duration;

use lux::db::embedded::EmbeddedPostgres;
use lux::server::{ReadReplica, ServeOptions};
use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

use crate::helpers::{TestApp, TestDb, server_url, test_options};

/// A standby of the test server, stopped and removed when dropped.
struct Standby {
    cluster: EmbeddedPostgres,
    dir: std::path::PathBuf,
}

impl Standby {
    async fn start() -> Standby {
        // A standby allows at least the primary's connections.
        let primary = PgPool::connect(&server_url()).await.expect("primary");
        let max_connections: String = sqlx::query_scalar("SHOW max_connections")
            .fetch_one(&primary)
            .await
            .expect("max_connections");
        primary.close().await;
        let dir = std::env::temp_dir().join(format!("lux-replica-{}", Uuid::new_v4()));
        let cluster = EmbeddedPostgres::start_replica(
            &server_url(),
            &dir,
            &[("max_connections", &max_connections)],
        )
        .expect("replica");
        Standby { cluster, dir }
    }

    /// URL of database `name` on the standby.
    fn url(&self, name: &str) -> String {
        let mut url = url::Url::parse(&self.cluster.server_url()).expect("URL");
        url.set_path(name);
        url.to_string()
    }
}

impl Drop for Standby {
    fn drop(&mut self) {
        self.cluster.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

const RANGE: &str = "from=2026-01-01&to=2026-01-31&model=last_touch";

/// One day of last-touch revenue for `channel`, straight into the rollup.
async fn add_revenue(owner: &PgPool, company: Uuid, day: &str, channel: &str, net_minor: i64) {
    sqlx::query(
        "INSERT INTO rollup_revenue_daily (company_id, day, model, channel, source, medium,
             campaign, creative, currency, orders, gross_minor, refunded_minor, net_minor,
             new_customers)
         VALUES ($1, $2::date, 'last_touch', $3, 's', 'm', '', '', 'EUR', 1, $4, 0, $4, 1)",
    )
    .bind(company)
    .bind(day)
    .bind(channel)
    .bind(net_minor)
    .execute(owner)
    .await
    .expect("insert rollup_revenue_daily");
}

async fn revenue_rows(base: &str, secret_key: &str) -> Value {
    let response = reqwest::Client::new()
        .get(format!("{base}/api/v1/reports/revenue_by_channel?{RANGE}"))
        .bearer_auth(secret_key)
        .send()
        .await
        .expect("GET report");
    let status = response.status();
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(status, 200, "{base}: {body}");
    body["rows"].clone()
}

/// Polls the report until it shows `expected` (the replica replaying), for at most 60 s; a
/// failure says where the reads went and why.
async fn wait_for_rows(base: &str, secret_key: &str, expected: &Value) {
    for _ in 0..600 {
        if &revenue_rows(base, secret_key).await == expected {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "the report never showed {expected}: it shows {}; {}",
        revenue_rows(base, secret_key).await,
        replica_metrics(base).await
    );
}

/// The service's `lux_replica_*` lines, for failure messages.
async fn replica_metrics(base: &str) -> String {
    let text = reqwest::get(format!("{base}/metrics"))
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("text");
    text.lines()
        .filter(|line| line.starts_with("lux_replica"))
        .collect::<Vec<_>>()
        .join("; ")
}

async fn metric(base: &str, name: &str) -> Option<f64> {
    let text = reqwest::get(format!("{base}/metrics"))
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("text");
    text.lines()
        .find_map(|line| line.strip_prefix(&format!("{name} ")))
        .map(|v| v.trim().parse().expect("a number"))
}

/// Polls `/metrics` until `name` is `expected`, for at most 60 s.
async fn wait_for_metric(base: &str, name: &str, expected: f64) {
    for _ in 0..600 {
        if metric(base, name).await == Some(expected) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "{name} never became {expected}: {}",
        replica_metrics(base).await
    );
}

/// Waits until the standby has replayed everything the primary had written when called: from
/// then on the replica holds every row committed before (not just the service's view of it,
/// which could come from the primary).
async fn wait_replayed(primary: &PgPool, replica: &PgPool) {
    let written: String = sqlx::query_scalar("SELECT pg_current_wal_lsn()::text")
        .fetch_one(primary)
        .await
        .expect("primary's WAL position");
    for _ in 0..1200 {
        let replayed: bool =
            sqlx::query_scalar("SELECT pg_last_wal_replay_lsn() >= $1::text::pg_lsn")
                .bind(&written)
                .fetch_one(replica)
                .await
                .expect("replica's replay position");
        if replayed {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the replica never replayed up to {written}");
}

/// Pauses replay on the standby and waits until it has really stopped (the pause is a
/// request: the next record may still be replayed before it takes effect).
async fn pause_replay(replica: &PgPool) {
    sqlx::query("SELECT pg_wal_replay_pause()")
        .execute(replica)
        .await
        .expect("pause replay");
    for _ in 0..600 {
        let state: String = sqlx::query_scalar("SELECT pg_get_wal_replay_pause_state()")
            .fetch_one(replica)
            .await
            .expect("pause state");
        if state == "paused" {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("replay never paused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_read_the_replica_once_caught_up_and_the_primary_when_it_stops() {
    let db = TestDb::new().await;
    let standby = Standby::start().await;
    let primary_url = db.url.clone();
    let replica_url = standby.url(&db.name);
    let app = TestApp::spawn_on(
        db,
        &primary_url,
        ServeOptions {
            read_replica: Some(ReadReplica {
                url: replica_url.clone(),
                // Generous: the paused replica below must stay in use.
                max_lag: Duration::from_secs(3600),
            }),
            ..test_options()
        },
    )
    .await;
    // The same service without a replica: what the primary answers.
    let primary_only = lux::server::start(&primary_url, test_options())
        .await
        .expect("primary-only node");
    let primary_base = format!("http://{}", primary_only.addr);
    let key = app.company.secret_key.clone();
    let company = app.company.id;
    // The standby itself, as the test's superuser: to see what it has replayed.
    let replica_admin = PgPool::connect(&replica_url).await.expect("replica");

    add_revenue(&app.owner, company, "2026-01-10", "Email", 12_000).await;
    add_revenue(&app.owner, company, "2026-01-11", "Paid Search", 3_050).await;
    let on_primary = revenue_rows(&primary_base, &key).await;
    assert_eq!(on_primary.as_array().map(Vec::len), Some(2), "{on_primary}");
    // Caught up, the replica answers what the primary answers. Waiting on the replica itself
    // first: a report that shows these rows may have been answered by the primary, and in
    // the loaded full suite the standby (replaying every test's databases) can be seconds
    // behind; pausing it before it has them would leave it without them for good.
    wait_replayed(&app.owner, &replica_admin).await;
    wait_for_rows(&app.base, &key, &on_primary).await;
    wait_for_metric(&app.base, "lux_replica_in_use", 1.0).await;

    // Replay paused: new rows reach the primary, not the replica, and the service (still on
    // the replica) shows the old numbers; that is how we know it reads there. (Polled: a
    // read the replica fails for a reason the primary may not have is run there instead,
    // counted in lux_replica_fallbacks_total; the failure message shows those counts.)
    pause_replay(&replica_admin).await;
    add_revenue(&app.owner, company, "2026-01-12", "Email", 1_000).await;
    let updated = revenue_rows(&primary_base, &key).await;
    assert_ne!(updated, on_primary);
    wait_for_rows(&app.base, &key, &on_primary).await;
    sqlx::query("SELECT pg_wal_replay_resume()")
        .execute(&replica_admin)
        .await
        .expect("resume replay");
    replica_admin.close().await;
    wait_for_rows(&app.base, &key, &updated).await;

    // The replica stops: the very next report still answers, from the primary, and the
    // monitor's next check moves reads there; every read since is a counted fallback.
    standby.cluster.stop();
    assert_eq!(revenue_rows(&app.base, &key).await, updated);
    wait_for_metric(&app.base, "lux_replica_in_use", 0.0).await;
    assert_eq!(revenue_rows(&app.base, &key).await, updated);
    let down = metric(&app.base, r#"lux_replica_fallbacks_total{reason="down"}"#).await;
    assert!(
        down.is_some_and(|n| n >= 1.0),
        "{}",
        replica_metrics(&app.base).await
    );

    primary_only.stop().await.expect("stop");
}

/// A replica that refuses connections (nothing listens at its address): reports answer from
/// the primary from the first request, and each such read is counted as a fallback, `down`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_go_to_the_primary_counted_as_fallbacks_while_the_replica_refuses_connections() {
    let db = TestDb::new().await;
    let primary_url = db.url.clone();
    let nobody = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = nobody.local_addr().expect("address").port();
    drop(nobody);
    let mut replica_url = url::Url::parse(&primary_url).expect("URL");
    replica_url.set_port(Some(port)).expect("port");
    let app = TestApp::spawn_on(
        db,
        &primary_url,
        ServeOptions {
            read_replica: Some(ReadReplica {
                url: replica_url.to_string(),
                max_lag: Duration::from_secs(30),
            }),
            ..test_options()
        },
    )
    .await;
    add_revenue(&app.owner, app.company.id, "2026-01-10", "Email", 12_000).await;
    let rows = revenue_rows(&app.base, &app.company.secret_key).await;
    assert_eq!(rows.as_array().map(Vec::len), Some(1), "{rows}");
    revenue_rows(&app.base, &app.company.secret_key).await;
    assert_eq!(metric(&app.base, "lux_replica_in_use").await, Some(0.0));
    assert_eq!(
        metric(&app.base, r#"lux_replica_fallbacks_total{reason="down"}"#).await,
        Some(2.0),
        "{}",
        replica_metrics(&app.base).await
    );
}
