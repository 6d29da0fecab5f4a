//! Several `lux serve` nodes behind a real haproxy on one database, under a replayable load
//! (`cargo bench --bench ingest -- --nodes 2`; issue 20).
//!
//! The load is the ingest benchmark's kind of events (page views with UTMs and referrers, some
//! add-to-carts and purchases), made replayable: every event id, visitor and time comes from a
//! seeded generator, one per connection, and each connection owns its visitors and sends each
//! visitor's events in time order, waiting for each answer, as browsers do. A request answered
//! with anything but 2xx is sent again until it is acknowledged, and every `--retry-every`-th
//! request is sent twice (a retry after a lost answer), so every event has one outcome.
//!
//! The run through the proxy goes on for `--seconds`; then the very same requests (each
//! connection's first n, regenerated from the seed) are sent to one node for another company,
//! with the same concurrency. The two companies' stored events and sessions are then compared:
//! every acknowledged event stored exactly once, nothing stored that was not sent, and the
//! sessions (visitor, start, end, landing page, channel, counters) and each event's session
//! the same.

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use sqlx::PgPool;
use uuid::Uuid;

use super::pg_cost::PgCost;

const UA: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";

/// What `--nodes` runs with.
pub struct NodesArgs {
    pub nodes: usize,
    pub seconds: u64,
    pub warmup_seconds: u64,
    pub connections: usize,
    pub visitors: usize,
    pub seed: u64,
    pub retry_every: usize,
}

/// A `lux serve` process, killed when dropped.
struct Node {
    child: Child,
    addr: String,
}

impl Node {
    async fn start(database_url: &str) -> Node {
        let addr = format!("127.0.0.1:{}", free_port());
        let child = Command::new(
            std::env::var("LUX_BENCH_BINARY")
                .unwrap_or_else(|_| env!("CARGO_BIN_EXE_lux").to_string()),
        )
        .args(["serve", "--bind", &addr])
        .env("DATABASE_URL", database_url)
        .env(
            "RUST_LOG",
            std::env::var("LUX_BENCH_SERVER_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .spawn()
        .expect("start lux serve");
        let node = Node { child, addr };
        wait_ready(&format!("http://{}", node.addr)).await;
        node
    }

    /// `lux_events_stored_total` of this node.
    async fn stored(&self) -> u64 {
        let text = reqwest::get(format!("http://{}/metrics", self.addr))
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

    fn peak_rss_mb(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find(|l| l.starts_with("VmHWM:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map(|kb| kb / 1024.0)
            .unwrap_or(0.0)
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Debian's haproxy in front of the nodes: round robin per request, `/readyz` health checks
/// (the configuration of `tests/api/scale.rs` and `docs/scale.md`). Killed when dropped.
struct Haproxy {
    child: Child,
    config: std::path::PathBuf,
    addr: String,
}

impl Haproxy {
    async fn start(nodes: &[Node]) -> Haproxy {
        let addr = format!("127.0.0.1:{}", free_port());
        let servers: String = nodes
            .iter()
            .enumerate()
            .map(|(i, node)| format!("    server node{i} {} check inter 1s\n", node.addr))
            .collect();
        let config = format!(
            "global\n    maxconn 4000\n\
             defaults\n    mode http\n    timeout connect 5s\n    timeout client 60s\n    timeout server 60s\n\
             frontend lux\n    bind {addr}\n    option forwardfor\n    default_backend nodes\n\
             backend nodes\n    balance roundrobin\n    option httpchk GET /readyz\n{servers}"
        );
        let path = std::env::temp_dir().join(format!("lux-bench-haproxy-{}.cfg", Uuid::new_v4()));
        std::fs::write(&path, config).expect("write haproxy.cfg");
        let binary = if std::path::Path::new("/usr/sbin/haproxy").exists() {
            "/usr/sbin/haproxy"
        } else {
            "haproxy"
        };
        let child = Command::new(binary)
            .args(["-db", "-f"])
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start haproxy (apt-get install haproxy)");
        let proxy = Haproxy {
            child,
            config: path,
            addr,
        };
        wait_ready(&format!("http://{}", proxy.addr)).await;
        proxy
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.config);
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("address")
        .port()
}

/// Waits until `base/readyz` answers 200 (for at most a minute).
async fn wait_ready(base: &str) {
    let client = reqwest::Client::new();
    for _ in 0..600 {
        if let Ok(response) = client.get(format!("{base}/readyz")).send().await
            && response.status().is_success()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{base} never became ready");
}

/// The seeded generator (xorshift64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const CAMPAIGNS: &[&str] = &[
    "?utm_source=google&utm_medium=cpc&utm_campaign=brand&gclid=",
    "?utm_source=facebook&utm_medium=paid_social&utm_campaign=bf_retarget&fbclid=",
    "?utm_source=newsletter&utm_medium=email&utm_campaign=nov_week4&lux_mid=",
    "?utm_source=tiktok&utm_medium=cpc&utm_campaign=ugc_3&ttclid=",
];
const REFERRERS: &[&str] = &[
    "https://www.google.com/",
    "https://l.facebook.com/",
    "https://t.co/x",
    "https://blog.example.org/review",
];
const PATHS: &[&str] = &[
    "",
    "products/shoe-1",
    "products/shoe-2",
    "cart",
    "collections/sale",
];

/// What every connection's stream is made from.
#[derive(Clone, Copy)]
struct Plan {
    connections: usize,
    visitors: usize,
    batch: usize,
    seed: u64,
    retry_every: usize,
    /// Milliseconds since the epoch of the first events: two days ago, so every time is
    /// within what a browser key may send (72 hours) and none is in the future.
    base_ms: i64,
}

/// One connection's requests, regenerated identically from the plan and its index.
struct Stream {
    rng: Rng,
    /// The connection's own visitors and the time of each one's last event.
    visitors: Vec<(Uuid, i64)>,
    batch: usize,
    retry_every: usize,
    /// Requests made so far.
    made: usize,
}

impl Stream {
    fn new(plan: &Plan, index: usize) -> Stream {
        let mut rng = Rng((plan.seed ^ (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)) | 1);
        for _ in 0..8 {
            rng.next();
        }
        let own = (index..plan.visitors)
            .step_by(plan.connections)
            .count()
            .max(1);
        let visitors = (0..own)
            .map(|_| {
                let mut bytes = [0u8; 16];
                bytes[..8].copy_from_slice(&rng.next().to_le_bytes());
                bytes[8..].copy_from_slice(&rng.next().to_le_bytes());
                let id = uuid::Builder::from_random_bytes(bytes).into_uuid();
                let start = plan.base_ms + rng.below(600_000) as i64;
                (id, start)
            })
            .collect();
        Stream {
            rng,
            visitors,
            batch: plan.batch,
            retry_every: plan.retry_every.max(1),
            made: 0,
        }
    }

    /// The next request's body, its event ids, and how many times it is sent (2: a retry).
    fn next_request(&mut self) -> (String, Vec<Uuid>, usize) {
        use std::fmt::Write as _;
        let visitor = self.rng.below(self.visitors.len() as u64) as usize;
        let mut body = String::with_capacity(420 * self.batch + 2);
        let mut ids = Vec::with_capacity(self.batch);
        if self.batch > 1 {
            body.push('[');
        }
        for i in 0..self.batch {
            let rng = &mut self.rng;
            // Mostly pages a minute or two apart, sometimes a pause past the session timeout.
            let gap_ms = match rng.below(100) {
                0..=4 => 31 * 60_000 + rng.below(60 * 60_000),
                5..=29 => 120_000 + rng.below(480_000),
                _ => 5_000 + rng.below(115_000),
            } as i64;
            let (id, at) = &mut self.visitors[visitor];
            *at += gap_ms;
            let at_ms = *at;
            let visitor_id = *id;
            let mut random = [0u8; 10];
            random[..8].copy_from_slice(&rng.next().to_le_bytes());
            random[8..].copy_from_slice(&rng.next().to_le_bytes()[..2]);
            let event_id =
                uuid::Builder::from_unix_timestamp_millis(at_ms as u64, &random).into_uuid();
            ids.push(event_id);
            let occurred_at = chrono::DateTime::from_timestamp_millis(at_ms)
                .expect("a time")
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
            let path = PATHS[rng.below(PATHS.len() as u64) as usize];
            let roll = rng.below(100);
            let (name, properties) = match roll {
                0..=1 => (
                    "purchase",
                    format!(
                        r#"{{"order_id":"{}","value":"59.90","currency":"EUR"}}"#,
                        rng.next()
                    ),
                ),
                2..=6 => (
                    "add_to_cart",
                    r#"{"sku":"SKU-1","value":29.95,"currency":"EUR"}"#.to_string(),
                ),
                _ => ("page_view", r#"{"title":"Shop"}"#.to_string()),
            };
            if i > 0 {
                body.push(',');
            }
            let _ = write!(
                body,
                r#"{{"event_id":"{event_id}","event_name":"{name}","visitor_id":"{visitor_id}","occurred_at":"{occurred_at}","page_url":"https://shop.example/{path}"#
            );
            if roll < 15 {
                let campaign = CAMPAIGNS[rng.below(CAMPAIGNS.len() as u64) as usize];
                let _ = write!(body, "{campaign}{}", rng.next());
            }
            body.push('"');
            if roll.is_multiple_of(3) {
                let referrer = REFERRERS[rng.below(REFERRERS.len() as u64) as usize];
                let _ = write!(body, r#","referrer":"{referrer}""#);
            }
            let _ = write!(body, r#","properties":{properties}}}"#);
        }
        if self.batch > 1 {
            body.push(']');
        }
        self.made += 1;
        let times = if self.made.is_multiple_of(self.retry_every) {
            2
        } else {
            1
        };
        (body, ids, times)
    }
}

/// When a connection stops making requests.
#[derive(Clone)]
enum Until {
    /// When the flag is set (the run through the proxy).
    Stop(Arc<AtomicBool>),
    /// After this many requests (the replay).
    Made(usize),
}

#[derive(Default)]
struct ConnectionResult {
    made: usize,
    ok: u64,
    non_2xx: u64,
    errors: u64,
    latencies_us: Vec<u32>,
    acknowledged: Vec<Uuid>,
    sent: Vec<Uuid>,
}

/// One keep-alive connection sending its stream's requests back to back, each until it is
/// acknowledged.
async fn connection(
    addr: String,
    path: String,
    mut stream: Stream,
    until: Until,
) -> ConnectionResult {
    let mut result = ConnectionResult::default();
    let Ok(tcp) = tokio::net::TcpStream::connect(&addr).await else {
        result.errors += 1;
        return result;
    };
    let _ = tcp.set_nodelay(true);
    let Ok((mut sender, conn)) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await
    else {
        result.errors += 1;
        return result;
    };
    tokio::spawn(conn);
    loop {
        match &until {
            Until::Stop(stop) if stop.load(Ordering::Relaxed) => break,
            Until::Made(n) if stream.made >= *n => break,
            _ => {}
        }
        let (body, ids, times) = stream.next_request();
        result.sent.extend_from_slice(&ids);
        let body = Bytes::from(body);
        let mut acknowledged = 0;
        while acknowledged < times {
            let request = hyper::Request::post(path.as_str())
                .header("host", "bench")
                .header("content-type", "text/plain")
                .header("user-agent", UA)
                .body(Full::new(body.clone()))
                .expect("valid request");
            let started = Instant::now();
            match sender.send_request(request).await {
                Ok(response) => {
                    let status = response.status();
                    let _ = response.into_body().collect().await;
                    result
                        .latencies_us
                        .push(started.elapsed().as_micros().min(u32::MAX as u128) as u32);
                    if status.is_success() {
                        result.ok += 1;
                        acknowledged += 1;
                    } else {
                        result.non_2xx += 1;
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
                Err(_) => {
                    result.errors += 1;
                    result.made = stream.made;
                    return result;
                }
            }
        }
        result.acknowledged.extend_from_slice(&ids);
    }
    result.made = stream.made;
    result
}

/// Every connection of `plan` at once against `addr`; the per-connection results.
async fn drive(
    addr: &str,
    key: &str,
    plan: &Plan,
    until: impl Fn(usize) -> Until,
) -> Vec<ConnectionResult> {
    let path = format!("/e?key={key}");
    let tasks: Vec<_> = (0..plan.connections)
        .map(|i| {
            tokio::spawn(connection(
                addr.to_string(),
                path.clone(),
                Stream::new(plan, i),
                until(i),
            ))
        })
        .collect();
    let mut results = Vec::with_capacity(tasks.len());
    for task in tasks {
        results.push(task.await.expect("load task"));
    }
    results
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index] as f64 / 1000.0
}

/// Totals of a run, printed.
fn print_run(label: &str, results: &[ConnectionResult], elapsed: f64, stored: i64) {
    let ok: u64 = results.iter().map(|r| r.ok).sum();
    let non_2xx: u64 = results.iter().map(|r| r.non_2xx).sum();
    let errors: u64 = results.iter().map(|r| r.errors).sum();
    let mut latencies: Vec<u32> = results
        .iter()
        .flat_map(|r| r.latencies_us.iter().copied())
        .collect();
    latencies.sort_unstable();
    println!("  {label}");
    println!(
        "    stored events/s {:>10.0}   ({stored} rows in {elapsed:.1} s)",
        stored as f64 / elapsed
    );
    println!("    requests/s (2xx){:>10.0}", ok as f64 / elapsed);
    println!(
        "    latency ms      p50 {:.2}  p95 {:.2}  p99 {:.2}  max {:.2}",
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.95),
        percentile(&latencies, 0.99),
        percentile(&latencies, 1.0)
    );
    println!("    non-2xx         {non_2xx} (each sent again)   connection errors {errors}");
}

/// Each stored event id of the company, with how many rows it has.
async fn stored_ids(owner: &PgPool, company: Uuid) -> HashMap<Uuid, i64> {
    let rows: Vec<(Uuid, i64)> = sqlx::query_as(
        "SELECT event_id, count(*) FROM raw_events WHERE company_id = $1 GROUP BY event_id",
    )
    .bind(company)
    .fetch_all(owner)
    .await
    .expect("stored ids");
    rows.into_iter().collect()
}

/// (lost, duplicated, stored but never sent) for one company.
fn exactly_once(stored: &HashMap<Uuid, i64>, results: &[ConnectionResult]) -> (usize, i64, usize) {
    let lost = results
        .iter()
        .flat_map(|r| r.acknowledged.iter())
        .filter(|id| !stored.contains_key(id))
        .count();
    let duplicated: i64 = stored.values().map(|n| n - 1).sum();
    let sent: std::collections::HashSet<&Uuid> =
        results.iter().flat_map(|r| r.sent.iter()).collect();
    let unknown = stored.keys().filter(|id| !sent.contains(id)).count();
    (lost, duplicated, unknown)
}

type SessionRow = (Uuid, String, String, String, String, i32, i32);

/// The company's sessions without their ids (which include the company).
async fn sessions(owner: &PgPool, company: Uuid) -> Vec<SessionRow> {
    sqlx::query_as(
        "SELECT visitor_id, started_at::text, last_seen_at::text, coalesce(landing_page, ''),
                channel, page_views, events
         FROM sessions WHERE company_id = $1 ORDER BY visitor_id, started_at",
    )
    .bind(company)
    .fetch_all(owner)
    .await
    .expect("sessions")
}

/// Each event's session, named by its visitor and start.
async fn event_sessions(owner: &PgPool, company: Uuid) -> HashMap<Uuid, (Uuid, String)> {
    let rows: Vec<(Uuid, Uuid, String)> = sqlx::query_as(
        "SELECT e.event_id, s.visitor_id, s.started_at::text FROM raw_events e
         JOIN sessions s ON s.company_id = e.company_id AND s.session_id = e.session_id
         WHERE e.company_id = $1",
    )
    .bind(company)
    .fetch_all(owner)
    .await
    .expect("event sessions");
    rows.into_iter().map(|(e, v, s)| (e, (v, s))).collect()
}

async fn company(owner: &PgPool, name: &str) -> (Uuid, String) {
    let created = lux::tenancy::create_company(
        owner,
        lux::tenancy::NewCompany::parse(name, "UTC", "EUR", vec![]).expect("company"),
    )
    .await
    .expect("company");
    (created.company_id.uuid(), created.write_key)
}

/// Runs the benchmark on the database at `url` (the owner's URL).
pub async fn benchmark(url: &str, args: NodesArgs) {
    let mut nodes = Vec::new();
    for _ in 0..args.nodes {
        nodes.push(Node::start(url).await);
    }
    let proxy = Haproxy::start(&nodes).await;
    let owner = PgPool::connect(url).await.expect("owner pool");
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    println!(
        "lux ingest benchmark, {} nodes behind haproxy: {cores} cores, {} connections, {} \
         visitors, seed {}, every {}th request sent twice",
        args.nodes, args.connections, args.visitors, args.seed, args.retry_every
    );
    let base_ms = (chrono::Utc::now() - chrono::Duration::hours(48)).timestamp() * 1000;
    let plan = |batch: usize, seed: u64| Plan {
        connections: args.connections,
        visitors: args.visitors,
        batch,
        seed,
        retry_every: args.retry_every,
        base_ms,
    };

    if args.warmup_seconds > 0 {
        // Through the proxy, so every node warms up; another company, then ANALYZE.
        let (_, key) = company(&owner, "Warm-up").await;
        let stop = Arc::new(AtomicBool::new(false));
        let warm = plan(10, args.seed ^ 0x5DEE_CE66);
        let run = {
            let stop = stop.clone();
            let addr = proxy.addr.clone();
            async move { drive(&addr, &key, &warm, |_| Until::Stop(stop.clone())).await }
        };
        let timer = async {
            tokio::time::sleep(Duration::from_secs(args.warmup_seconds)).await;
            stop.store(true, Ordering::Relaxed);
        };
        tokio::join!(run, timer);
        sqlx::query("ANALYZE")
            .execute(&owner)
            .await
            .expect("analyze");
        println!(
            "warm-up: {} s through the proxy, then ANALYZE",
            args.warmup_seconds
        );
    }

    for (label, batch) in [("single events", 1), ("batches of 20", 20)] {
        let plan = plan(batch, args.seed.wrapping_add(batch as u64));
        let (through_proxy, proxy_key) = company(&owner, &format!("{label}, proxy")).await;
        let (one_node, one_node_key) = company(&owner, &format!("{label}, one node")).await;
        println!("\n== {label}: {} connections", args.connections);

        // Through the proxy, for a set time.
        let before: Vec<u64> = futures_join(nodes.iter().map(Node::stored)).await;
        let pg_cost = PgCost::start(&owner).await;
        let stop = Arc::new(AtomicBool::new(false));
        let started = Instant::now();
        let run = {
            let stop = stop.clone();
            let addr = proxy.addr.clone();
            let key = proxy_key.clone();
            async move { drive(&addr, &key, &plan, |_| Until::Stop(stop.clone())).await }
        };
        let timer = async {
            tokio::time::sleep(Duration::from_secs(args.seconds)).await;
            stop.store(true, Ordering::Relaxed);
        };
        let (proxied, ()) = tokio::join!(run, timer);
        let elapsed = started.elapsed().as_secs_f64();
        let stored_rows: i64 =
            sqlx::query_scalar("SELECT count(*) FROM raw_events WHERE company_id = $1")
                .bind(through_proxy)
                .fetch_one(&owner)
                .await
                .expect("count");
        print_run(
            &format!("through haproxy to {} nodes", args.nodes),
            &proxied,
            elapsed,
            stored_rows,
        );
        let after: Vec<u64> = futures_join(nodes.iter().map(Node::stored)).await;
        let per_node: Vec<String> = before
            .iter()
            .zip(&after)
            .zip(&nodes)
            .map(|((b, a), node)| format!("{} ({:.0} MB peak RSS)", a - b, node.peak_rss_mb()))
            .collect();
        println!("    stored per node {}", per_node.join(", "));
        // Before the checks' own queries.
        pg_cost.report(&owner, stored_rows.max(0) as u64).await;
        let stored_proxy = stored_ids(&owner, through_proxy).await;

        // The same requests to one node.
        let made: Vec<usize> = proxied.iter().map(|r| r.made).collect();
        let started = Instant::now();
        let replayed = drive(&nodes[0].addr, &one_node_key, &plan, |i| {
            Until::Made(made[i])
        })
        .await;
        let elapsed = started.elapsed().as_secs_f64();
        let stored_one = stored_ids(&owner, one_node).await;
        print_run(
            "the same requests to one node",
            &replayed,
            elapsed,
            stored_one.values().sum(),
        );
        let sent_proxy: usize = proxied.iter().map(|r| r.sent.len()).sum();
        let sent_one: usize = replayed.iter().map(|r| r.sent.len()).sum();
        assert_eq!(sent_proxy, sent_one, "the replay sent other events");

        // The checks.
        let (lost, duplicated, unknown) = exactly_once(&stored_proxy, &proxied);
        let acknowledged: usize = proxied.iter().map(|r| r.acknowledged.len()).sum();
        println!(
            "    through the proxy: {acknowledged} events acknowledged, {} stored: lost {lost}, \
             duplicated {duplicated}, stored but never sent {unknown}",
            stored_proxy.len()
        );
        let (lost_one, duplicated_one, unknown_one) = exactly_once(&stored_one, &replayed);
        println!(
            "    one node:          lost {lost_one}, duplicated {duplicated_one}, stored but \
             never sent {unknown_one}"
        );
        let (sessions_proxy, sessions_one) = (
            sessions(&owner, through_proxy).await,
            sessions(&owner, one_node).await,
        );
        let equal = sessions_proxy == sessions_one;
        println!(
            "    sessions equal   {}   ({} through the proxy, {} on one node)",
            if equal { "yes" } else { "NO" },
            sessions_proxy.len(),
            sessions_one.len()
        );
        if let Some((a, b)) = sessions_proxy
            .iter()
            .zip(&sessions_one)
            .find(|(a, b)| a != b)
        {
            println!("      first difference: {a:?} against {b:?}");
        }
        let events_equal =
            event_sessions(&owner, through_proxy).await == event_sessions(&owner, one_node).await;
        println!(
            "    each event's session equal {}",
            if events_equal { "yes" } else { "NO" }
        );
    }
    drop(proxy);
    drop(nodes);
    owner.close().await;
}

/// Awaits each future in turn (a handful of `/metrics` scrapes).
async fn futures_join<F: std::future::Future<Output = u64>>(
    futures: impl Iterator<Item = F>,
) -> Vec<u64> {
    let mut out = Vec::new();
    for f in futures {
        out.push(f.await);
    }
    out
}
