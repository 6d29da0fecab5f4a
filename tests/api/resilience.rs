//! Durable acknowledgement under stress: a full queue answers 503 with Retry-After, a lost
//! database answers 503 and is reconnected by itself, SIGTERM flushes, and /metrics tells.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use lux::analytics::writer::WriterConfig;
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::helpers::{BROWSER_UA, ServeProcess, TestApp, TestDb, create_company, test_options};

async fn metrics(app: &TestApp) -> String {
    app.get("/metrics").await.text().await.unwrap()
}

fn page_view() -> serde_json::Value {
    json!({"event_id": Uuid::now_v7(), "event_name": "page_view", "page_url": "https://s.test/"})
}

#[tokio::test]
async fn a_full_queue_answers_503_with_retry_after_and_loses_nothing_acknowledged() {
    let options = lux::server::ServeOptions {
        writer: WriterConfig {
            writers: 1,
            queue_capacity: 1,
            max_batch_rows: 100,
        },
        ..test_options()
    };
    let app = Arc::new(TestApp::spawn_with(options).await);
    // Hold the writer: its insert into event_ids waits for this lock.
    let mut blocker = app.owner.begin().await.unwrap();
    sqlx::query("LOCK TABLE event_ids IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *blocker)
        .await
        .unwrap();
    let send = |app: Arc<TestApp>| tokio::spawn(async move { app.post_events(&page_view()).await });
    let in_writer = send(app.clone());
    // Wait until the writer is really blocked on the lock, then until a second request
    // waits in the queue: no sleeps that a slow machine could outrun.
    wait_until(&app, |app| async move {
        app.count(
            "SELECT count(*) FROM pg_stat_activity
             WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .await
            >= 1
    })
    .await;
    let queued = send(app.clone());
    wait_until(&app, |app| async move {
        metrics(&app).await.contains("lux_ingest_queue_depth 1")
    })
    .await;

    let refused = app.send_events(&page_view()).await;
    assert_eq!(refused.status(), 503);
    assert_eq!(refused.headers()["retry-after"], "1");
    let body: serde_json::Value = refused.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("busy"), "{body}");

    blocker.rollback().await.unwrap();
    assert_eq!(in_writer.await.unwrap().0, 202);
    assert_eq!(queued.await.unwrap().0, 202);
    assert_eq!(app.count("SELECT count(*) FROM raw_events").await, 2);
    let text = metrics(&app).await;
    assert!(
        text.contains("lux_ingest_unavailable_total{reason=\"overloaded\"} 1"),
        "{text}"
    );
    assert!(text.contains("lux_events_stored_total 2"), "{text}");
    assert!(text.contains("lux_ingest_queue_capacity 1"), "{text}");
    assert!(text.contains("lux_ingest_flush_seconds_bucket"), "{text}");
}

/// Polls `condition` for up to 20 seconds.
async fn wait_until<F, Fut>(app: &Arc<TestApp>, condition: F)
where
    F: Fn(Arc<TestApp>) -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..400 {
        if condition(app.clone()).await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("condition not reached in 20 s");
}

/// A TCP proxy in front of PostgreSQL that can drop every connection and refuse new ones:
/// from the service's side, a database that went away and came back.
struct FlakyProxy {
    port: u16,
    up: Arc<AtomicBool>,
    links: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl FlakyProxy {
    async fn start(upstream: String) -> FlakyProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let up = Arc::new(AtomicBool::new(true));
        let links = Arc::new(Mutex::new(Vec::new()));
        let (up2, links2) = (up.clone(), links.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    return;
                };
                if !up2.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let upstream = upstream.clone();
                links2.lock().await.push(tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(&upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                }));
            }
        });
        FlakyProxy { port, up, links }
    }

    async fn down(&self) {
        self.up.store(false, Ordering::SeqCst);
        for link in self.links.lock().await.drain(..) {
            link.abort();
        }
    }

    fn up(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

#[tokio::test]
async fn when_the_database_goes_away_readyz_and_e_answer_503_and_the_service_recovers_alone() {
    let db = TestDb::new().await;
    let real = url::Url::parse(&db.url).unwrap();
    let proxy = FlakyProxy::start(format!("127.0.0.1:{}", real.port().unwrap())).await;
    let mut through_proxy = real.clone();
    through_proxy.set_port(Some(proxy.port)).unwrap();
    let app = TestApp::spawn_on(db, through_proxy.as_str(), test_options()).await;

    assert_eq!(app.post_events(&page_view()).await.0, 202);
    proxy.down().await;
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status(), 503);
    let refused = app.send_events(&page_view()).await;
    assert_eq!(refused.status(), 503);
    assert!(refused.headers().contains_key("retry-after"));

    proxy.up();
    let mut recovered = false;
    for _ in 0..100 {
        let ready = app.get("/readyz").await;
        if ready.status() == 200 {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(recovered, "the service reconnected by itself");
    assert_eq!(app.post_events(&page_view()).await.0, 202);
    assert_eq!(app.count("SELECT count(*) FROM raw_events").await, 2);
    let text = metrics(&app).await;
    assert!(
        text.contains("lux_ingest_unavailable_total{reason=\"database\"}"),
        "{text}"
    );
}

#[tokio::test]
async fn sigterm_flushes_every_accepted_request_before_exiting() {
    let db = TestDb::new().await;
    let node = ServeProcess::spawn(&db.url, &[], None).await;
    let owner = db.owner().await;
    let company = create_company(&owner, "Shutdown").await;
    let client = reqwest::Client::new();
    // 32 clients send back to back until the server stops answering.
    let mut clients = Vec::new();
    for _ in 0..32 {
        let (client, base, key) = (client.clone(), node.base.clone(), company.write_key.clone());
        clients.push(tokio::spawn(async move {
            let mut acknowledged = Vec::new();
            loop {
                let id = Uuid::now_v7();
                let result = client
                    .post(format!("{base}/e?key={key}"))
                    .header("user-agent", BROWSER_UA)
                    .body(json!({"event_id": id, "event_name": "page_view", "page_url": "https://s.test/"}).to_string())
                    .send()
                    .await;
                match result {
                    Ok(r) if r.status() == 202 => acknowledged.push(id),
                    _ => return acknowledged,
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let terminate = tokio::task::spawn_blocking(move || node.terminate());
    let mut acknowledged = Vec::new();
    for client in clients {
        acknowledged.extend(client.await.unwrap());
    }
    terminate.await.unwrap();
    assert!(
        !acknowledged.is_empty(),
        "some requests were served before the stop"
    );
    let stored: i64 =
        sqlx::query_scalar("SELECT count(*) FROM raw_events WHERE event_id = ANY($1)")
            .bind(&acknowledged)
            .fetch_one(&owner)
            .await
            .unwrap();
    assert_eq!(
        stored,
        acknowledged.len() as i64,
        "every acknowledged event is stored once"
    );
}

/// Revokes `privilege` on `table` from `role` in the test's database (grants are per database,
/// so no other test is touched).
async fn revoke(app: &TestApp, privilege: &str, table: &str, role: &str) {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "REVOKE {privilege} ON {table} FROM {role}"
    )))
    .execute(&app.owner)
    .await
    .unwrap();
}

/// A database that answers but refuses (here: a revoked grant) is our bug, not an outage: a
/// JSON 500 with an id to quote, never a 503 that would have clients retry it forever.
#[tokio::test]
async fn a_database_that_refuses_rather_than_disconnects_gets_a_500_with_a_correlation_id() {
    let app = TestApp::spawn().await;
    revoke(&app, "SELECT", "rollup_revenue_daily", "lux_reader").await;
    let response = app
        .client
        .get(format!(
            "{}/api/v1/reports/revenue_by_channel?from=2026-01-01&to=2026-01-31",
            app.base
        ))
        .bearer_auth(&app.company.secret_key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 500);
    assert!(response.headers().get("retry-after").is_none());
    let body: serde_json::Value = response.json().await.unwrap();
    let id = body["correlation_id"].as_str().expect("a correlation id");
    assert!(Uuid::parse_str(id).is_ok(), "{body}");
    assert!(body["error"].as_str().unwrap().contains(id), "{body}");

    // The same policy on the ingest path: the writer's statement is refused.
    revoke(&app, "INSERT", "event_ids", "lux_app").await;
    let (status, body) = app
        .post_events(&json!({"event_name": "page_view", "page_url": "https://s.test/"}))
        .await;
    assert_eq!(status, 500, "{body}");
    assert!(body["correlation_id"].is_string(), "{body}");
    app.stop().await;
}
