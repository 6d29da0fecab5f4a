//! Crash tests (SPEC §4 "durable acknowledgement"): under load, `kill -9` the server and
//! restart it, then restart PostgreSQL; every event that got a 2xx must be stored exactly
//! once, and the service must recover unattended. Clients retry failed sends with the same
//! event id, as the snippet does, so idempotency across the crash is exercised too.
//!
//! Short by default so CI runs them; `scripts/crash-test` runs them longer
//! (`LUX_CRASH_SECONDS`).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use serde_json::json;
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::helpers::{BROWSER_UA, ServeProcess, TestDb, create_company};

fn phase() -> Duration {
    let seconds: f64 = std::env::var("LUX_CRASH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.5);
    Duration::from_secs_f64(seconds)
}

#[derive(Default)]
struct ClientLog {
    acknowledged: Vec<Uuid>,
    unavailable: u64,
    failed: u64,
}

/// Clients posting events back to back to whatever `base` says, until stopped.
struct Load {
    stop: Arc<AtomicBool>,
    base: Arc<RwLock<String>>,
    acks: Arc<AtomicU64>,
    refusals: Arc<AtomicU64>,
    clients: Vec<JoinHandle<ClientLog>>,
}

impl Load {
    fn start(base: String, write_key: String, clients: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let base = Arc::new(RwLock::new(base));
        let acks = Arc::new(AtomicU64::new(0));
        let refusals = Arc::new(AtomicU64::new(0));
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap();
        let clients = (0..clients)
            .map(|_| {
                let (stop, base, acks, http, key) = (
                    stop.clone(),
                    base.clone(),
                    acks.clone(),
                    http.clone(),
                    write_key.clone(),
                );
                let refusals = refusals.clone();
                tokio::spawn(async move {
                    let mut log = ClientLog::default();
                    let visitor = Uuid::now_v7();
                    let mut pending: Option<Uuid> = None;
                    while !stop.load(Ordering::Relaxed) {
                        let id = pending.take().unwrap_or_else(Uuid::now_v7);
                        let url = format!("{}/e?key={key}", base.read().unwrap());
                        let body = json!({"event_id": id, "event_name": "page_view",
                            "visitor_id": visitor, "page_url": "https://s.test/crash"});
                        let result = http
                            .post(url)
                            .header("user-agent", BROWSER_UA)
                            .body(body.to_string())
                            .send()
                            .await;
                        match result.map(|r| r.status().as_u16()) {
                            Ok(202) => {
                                log.acknowledged.push(id);
                                acks.fetch_add(1, Ordering::Relaxed);
                            }
                            Ok(status) => {
                                assert_eq!(status, 503, "only 503 is an acceptable refusal");
                                log.unavailable += 1;
                                refusals.fetch_add(1, Ordering::Relaxed);
                                pending = Some(id);
                                tokio::time::sleep(Duration::from_millis(50)).await;
                            }
                            Err(_) => {
                                log.failed += 1;
                                pending = Some(id);
                                tokio::time::sleep(Duration::from_millis(50)).await;
                            }
                        }
                    }
                    log
                })
            })
            .collect();
        Load {
            stop,
            base,
            acks,
            refusals,
            clients,
        }
    }

    fn point_at(&self, base: &str) {
        *self.base.write().unwrap() = base.to_string();
    }

    /// Waits until some client has been answered 503.
    async fn wait_for_refusal(&self) {
        for _ in 0..600 {
            if self.refusals.load(Ordering::Relaxed) > 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no client was told to retry within 30 s of the database going away");
    }

    /// Waits until `more` further events are acknowledged.
    async fn wait_for_acks(&self, more: u64) {
        let target = self.acks.load(Ordering::Relaxed) + more;
        for _ in 0..600 {
            if self.acks.load(Ordering::Relaxed) >= target {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the service did not recover: no acknowledgements for 30 s");
    }

    async fn finish(self) -> ClientLog {
        self.stop.store(true, Ordering::Relaxed);
        let mut total = ClientLog::default();
        for client in self.clients {
            let log = client.await.unwrap();
            total.acknowledged.extend(log.acknowledged);
            total.unavailable += log.unavailable;
            total.failed += log.failed;
        }
        total
    }
}

async fn assert_stored_exactly_once(owner: &sqlx::PgPool, acknowledged: &[Uuid]) {
    let stored: i64 =
        sqlx::query_scalar("SELECT count(*) FROM raw_events WHERE event_id = ANY($1)")
            .bind(acknowledged)
            .fetch_one(owner)
            .await
            .unwrap();
    assert_eq!(
        stored,
        acknowledged.len() as i64,
        "an acknowledged event is missing"
    );
    let (rows, distinct): (i64, i64) =
        sqlx::query_as("SELECT count(*), count(DISTINCT event_id) FROM raw_events")
            .fetch_one(owner)
            .await
            .unwrap();
    assert_eq!(rows, distinct, "an event was stored twice");
}

#[tokio::test]
async fn kill_9_under_load_loses_no_acknowledged_event_and_stores_none_twice() {
    let db = TestDb::new().await;
    let first = ServeProcess::spawn(&db.url, &[], None).await;
    let owner = db.owner().await;
    let company = create_company(&owner, "Crash").await;
    let load = Load::start(first.base.clone(), company.write_key.clone(), 24);
    tokio::time::sleep(phase()).await;

    drop(first); // SIGKILL, mid-load
    let second = ServeProcess::spawn(&db.url, &[], None).await;
    load.point_at(&second.base);
    load.wait_for_acks(200).await;
    tokio::time::sleep(phase()).await;
    let log = load.finish().await;

    println!(
        "kill -9: {} acknowledged, {} failed sends retried",
        log.acknowledged.len(),
        log.failed
    );
    assert!(log.failed > 0, "the kill interrupted requests in flight");
    assert_stored_exactly_once(&owner, &log.acknowledged).await;
}

fn on_database(server_url: &str, name: &str) -> String {
    let mut url = url::Url::parse(server_url).unwrap();
    url.set_path(name);
    url.to_string()
}

#[tokio::test]
async fn a_postgres_restart_under_load_gives_503s_then_recovery_with_nothing_lost() {
    let dir = std::env::temp_dir().join(format!("lux-crash-pg-{}", Uuid::new_v4()));
    let cluster = lux::db::embedded::EmbeddedPostgres::start(&dir).expect("private cluster");
    let admin = sqlx::PgPool::connect(&cluster.server_url()).await.unwrap();
    sqlx::query("CREATE DATABASE crash")
        .execute(&admin)
        .await
        .unwrap();
    admin.close().await;
    let url = on_database(&cluster.server_url(), "crash");
    let node = ServeProcess::spawn(&url, &[], None).await;
    let owner = sqlx::PgPool::connect(&url).await.unwrap();
    let company = create_company(&owner, "Restart").await;
    owner.close().await;

    let load = Load::start(node.base.clone(), company.write_key.clone(), 24);
    tokio::time::sleep(phase()).await;
    cluster.stop();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let ready = reqwest::get(format!("{}/readyz", node.base)).await.unwrap();
    assert_eq!(ready.status(), 503, "readyz tells the database is gone");
    load.wait_for_refusal().await;
    tokio::time::sleep(phase()).await;

    let cluster = lux::db::embedded::EmbeddedPostgres::start(&dir).expect("cluster again");
    assert_eq!(
        on_database(&cluster.server_url(), "crash"),
        url,
        "same port"
    );
    load.wait_for_acks(200).await;
    tokio::time::sleep(phase()).await;
    let log = load.finish().await;
    drop(node);

    println!(
        "postgres restart: {} acknowledged, {} answered 503, {} failed sends",
        log.acknowledged.len(),
        log.unavailable,
        log.failed
    );
    assert!(
        log.unavailable > 0,
        "clients were told to retry while the database was down"
    );
    let owner = sqlx::PgPool::connect(&url).await.unwrap();
    assert_stored_exactly_once(&owner, &log.acknowledged).await;
    owner.close().await;
    cluster.stop();
    let _ = std::fs::remove_dir_all(&dir);
}
