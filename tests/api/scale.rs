//! Several `lux serve` nodes behind a real proxy (haproxy) on one primary (issue 20, SPEC §3):
//! any node answers `/e`, nothing is lost or stored twice, and the sessions come out exactly as
//! one node makes them from the same events, delivered the way browsers deliver them (each
//! visitor's in time order; see "Sessions are decided in the writer" in docs/decisions.md).

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};

use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

use crate::helpers::{ServeProcess, TestDb, at_minute, create_company, wait_healthy};

/// haproxy in front of some nodes, round robin per request, killed when dropped.
pub struct Proxy {
    child: Child,
    pub base: String,
    config: std::path::PathBuf,
}

impl Proxy {
    pub async fn start(nodes: &[&str]) -> Proxy {
        let port = free_port();
        let servers: String = nodes
            .iter()
            .enumerate()
            .map(|(i, base)| {
                let address = base.trim_start_matches("http://");
                format!("    server node{i} {address} check inter 500ms\n")
            })
            .collect();
        let config = format!(
            "global\n    maxconn 2000\n\
             defaults\n    mode http\n    timeout connect 5s\n    timeout client 60s\n    timeout server 60s\n\
             frontend lux\n    bind 127.0.0.1:{port}\n    default_backend nodes\n\
             backend nodes\n    balance roundrobin\n    option httpchk GET /readyz\n{servers}"
        );
        let path = std::env::temp_dir().join(format!("lux-haproxy-{}.cfg", Uuid::new_v4()));
        std::fs::write(&path, config).expect("write haproxy.cfg");
        let child = Command::new(haproxy_binary())
            .args(["-db", "-f"])
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start haproxy (apt-get install haproxy)");
        let base = format!("http://127.0.0.1:{port}");
        wait_healthy(&base).await;
        Proxy {
            child,
            base,
            config: path,
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.config);
    }
}

fn haproxy_binary() -> &'static str {
    if std::path::Path::new("/usr/sbin/haproxy").exists() {
        "/usr/sbin/haproxy"
    } else {
        "haproxy"
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("address")
        .port()
}

const VISITORS: usize = 150;

/// Visitors' page views with explicit ids and times: visits with 30-minute gaps, and a
/// campaign link in the middle of a visit (which starts a new session), so the sessions
/// depend on every event being placed right.
fn events(visitors: usize) -> Vec<Value> {
    let mut all = Vec::new();
    for v in 0..visitors {
        let visitor = Uuid::from_u128(0x5ca1_e000 + v as u128);
        let mut minute = (v % 60) as i64;
        for e in 0..12 {
            // A long pause after the 4th page: a second visit; a campaign link at the 8th.
            minute += if e == 4 { 45 } else { 3 };
            let url = if e == 8 {
                "https://shop.example/?utm_source=newsletter&utm_medium=email&utm_campaign=dec"
                    .to_string()
            } else {
                format!("https://shop.example/p/{e}")
            };
            all.push(json!({
                "event_id": Uuid::from_u128(((v as u128) << 16) | e as u128 | 1 << 100),
                "event_name": "page_view",
                "visitor_id": visitor,
                "page_url": url,
                "occurred_at": at_minute(minute),
            }));
        }
    }
    all
}

/// How browsers deliver the events: each visitor's in time order (a page view is sent when
/// the page opens), visitors interleaved. `clients` streams, each with its share of the
/// visitors, their events taken one from each visitor in turn.
fn browser_streams(events: &[Value], visitors: usize, clients: usize) -> Vec<Vec<Value>> {
    let per_visitor = events.len() / visitors;
    (0..clients)
        .map(|client| {
            let mine: Vec<&[Value]> = events
                .chunks(per_visitor)
                .skip(client)
                .step_by(clients)
                .collect();
            (0..per_visitor)
                .flat_map(|i| mine.iter().map(move |visitor| visitor[i].clone()))
                .collect()
        })
        .collect()
}

async fn post(client: &reqwest::Client, base: &str, secret_key: &str, batch: &[Value]) {
    let response = client
        .post(format!("{base}/e"))
        .bearer_auth(secret_key)
        .json(&json!({ "events": batch }))
        .send()
        .await
        .expect("POST /e");
    assert_eq!(response.status(), 202, "{:?}", response.text().await);
}

/// The company's sessions without their ids (which include the company): start, end, landing,
/// channel and counters per visitor, in order.
async fn sessions_of(
    owner: &PgPool,
    company: Uuid,
) -> Vec<(Uuid, String, String, String, i32, i32)> {
    sqlx::query_as(
        "SELECT visitor_id, started_at::text, last_seen_at::text,
                coalesce(landing_page, '') || ' ' || channel, page_views, events
         FROM sessions WHERE company_id = $1 ORDER BY visitor_id, started_at",
    )
    .bind(company)
    .fetch_all(owner)
    .await
    .expect("sessions")
}

/// Each event's session, named by the session's start (ids differ between companies).
async fn event_sessions(owner: &PgPool, company: Uuid) -> BTreeMap<Uuid, String> {
    let rows: Vec<(Uuid, String)> = sqlx::query_as(
        "SELECT e.event_id, s.started_at::text FROM raw_events e
         JOIN sessions s ON s.company_id = e.company_id AND s.session_id = e.session_id
         WHERE e.company_id = $1",
    )
    .bind(company)
    .fetch_all(owner)
    .await
    .expect("event sessions");
    rows.into_iter().collect()
}

async fn stored_on(node: &ServeProcess) -> u64 {
    let text = reqwest::get(format!("{}/metrics", node.base))
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("metrics text");
    text.lines()
        .find_map(|line| line.strip_prefix("lux_events_stored_total "))
        .map(|n| n.trim().parse::<f64>().expect("a number") as u64)
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_behind_haproxy_store_each_event_once_with_the_sessions_of_one_node() {
    let db = TestDb::new().await;
    let first = ServeProcess::spawn(&db.url, &[], None).await;
    let second = ServeProcess::spawn(&db.url, &[], None).await;
    let owner = db.owner().await;
    let behind_proxy = create_company(&owner, "Two nodes").await;
    let single = create_company(&owner, "One node").await;
    let proxy = Proxy::start(&[&first.base, &second.base]).await;
    let client = reqwest::Client::new();
    let all = events(VISITORS);

    // Through the proxy: 8 browsers' streams at once, one event per request as the snippet
    // sends them, so a visitor's consecutive pages land on either node; every seventh request
    // is sent twice (a retry after a lost answer).
    let mut clients = tokio::task::JoinSet::new();
    for stream in browser_streams(&all, VISITORS, 8) {
        let (client, base, key) = (
            client.clone(),
            proxy.base.clone(),
            behind_proxy.secret_key.clone(),
        );
        clients.spawn(async move {
            for (i, event) in stream.iter().enumerate() {
                let times = if i % 7 == 0 { 2 } else { 1 };
                for _ in 0..times {
                    post(&client, &base, &key, std::slice::from_ref(event)).await;
                }
            }
        });
    }
    clients.join_all().await;
    // One node, in order, one request at a time: the reference.
    for batch in all.chunks(10) {
        post(&client, &first.base, &single.secret_key, batch).await;
    }

    let count = |company: Uuid| {
        let owner = owner.clone();
        async move {
            sqlx::query_as::<_, (i64, i64)>(
                "SELECT count(*), count(DISTINCT event_id) FROM raw_events WHERE company_id = $1",
            )
            .bind(company)
            .fetch_one(&owner)
            .await
            .expect("count")
        }
    };
    let n = all.len() as i64;
    assert_eq!(count(behind_proxy.id).await, (n, n), "0 lost, 0 duplicated");
    assert_eq!(count(single.id).await, (n, n));
    let (on_first, on_second) = (stored_on(&first).await, stored_on(&second).await);
    assert!(
        on_first > n as u64 && on_second > 0,
        "both nodes stored events: {on_first} and {on_second}"
    );

    let reference = sessions_of(&owner, single.id).await;
    assert_eq!(reference.len(), VISITORS * 3, "three visits per visitor");
    assert_eq!(sessions_of(&owner, behind_proxy.id).await, reference);
    assert_eq!(
        event_sessions(&owner, behind_proxy.id).await,
        event_sessions(&owner, single.id).await
    );
}
