//! Ingestion benchmark: `cargo bench --bench ingest [-- --seconds 20 --connections 256]`.
//!
//! Starts `lux serve` (the release binary) on a fresh database — a new database on
//! `DATABASE_URL` when set, else a private cluster at PostgreSQL's default durability — and
//! drives it with keep-alive HTTP/1.1 connections posting realistic events: page views with
//! UTMs and referrers over many visitors, some add-to-carts and purchases. Two runs: single
//! events, and batches of 20 (what the snippet sends after being offline). After each run it
//! counts the rows really in `raw_events`. Before the load and after it, it bulk-copies the
//! same kind of rows straight into a scratch table: the database-only ceiling, printed beside
//! the ratio (against the higher of the two).
//!
//! Prints stored events/s, requests/s, latency percentiles, non-2xx answers, the server's
//! peak resident memory, and PostgreSQL's CPU and statement time per stored event (with the
//! statements that took the most). Figures, not assertions: compare them across commits.
//!
//! `--nodes N` (N ≥ 2) runs instead N `lux serve` processes behind a real haproxy under a
//! replayable version of the same load, then sends the same requests to one node and checks
//! that every acknowledged event was stored exactly once and that the sessions are those of
//! the one node (`common::nodes`; `--seed`, `--retry-every`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use sqlx::PgPool;
use uuid::Uuid;

mod common;
use common::pg_cost::PgCost;
use common::{flag, fresh_database};

const UA: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";

struct Args {
    seconds: u64,
    warmup_seconds: u64,
    connections: usize,
    visitors: usize,
    ceiling_rows: usize,
    nodes: usize,
    seed: u64,
    retry_every: usize,
}

fn args() -> Args {
    Args {
        seconds: flag("--seconds", 20),
        warmup_seconds: flag("--warmup-seconds", 10),
        connections: flag("--connections", 256),
        visitors: flag("--visitors", 20_000),
        ceiling_rows: flag("--ceiling-rows", 300_000),
        nodes: flag("--nodes", 1),
        seed: flag("--seed", 20_261_203),
        retry_every: flag("--retry-every", 25),
    }
}

/// A small deterministic generator, so runs are comparable.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
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

/// One event as JSON text, written directly: the load generator shares the two cores with the
/// service and PostgreSQL, so it should spend as little of them as it can (building a
/// `serde_json::Value` per event cost it about a tenth of the machine).
fn event(rng: &mut Rng, visitor: Uuid, out: &mut String) {
    use std::fmt::Write as _;
    let path = [
        "",
        "products/shoe-1",
        "products/shoe-2",
        "cart",
        "collections/sale",
    ][rng.below(5)];
    let roll = rng.below(100);
    let event_id = Uuid::now_v7();
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
    let _ = write!(
        out,
        r#"{{"event_id":"{event_id}","event_name":"{name}","visitor_id":"{visitor}","page_url":"https://shop.example/{path}"#
    );
    if roll < 15 {
        let _ = write!(
            out,
            "{}{}",
            CAMPAIGNS[rng.below(CAMPAIGNS.len())],
            rng.next()
        );
    }
    out.push('"');
    if roll.is_multiple_of(3) {
        let _ = write!(
            out,
            r#","referrer":"{}""#,
            REFERRERS[rng.below(REFERRERS.len())]
        );
    }
    let _ = write!(out, r#","properties":{properties}}}"#);
}

#[derive(Default)]
struct LoadResult {
    ok: u64,
    non_2xx: u64,
    errors: u64,
    latencies_us: Vec<u32>,
}

/// One keep-alive connection sending back to back until `stop`.
async fn connection(
    addr: String,
    path: String,
    batch: usize,
    visitors: Arc<Vec<Uuid>>,
    seed: u64,
    stop: Arc<AtomicBool>,
) -> LoadResult {
    let mut result = LoadResult::default();
    let mut rng = Rng(seed | 1);
    let Ok(stream) = tokio::net::TcpStream::connect(&addr).await else {
        result.errors += 1;
        return result;
    };
    let _ = stream.set_nodelay(true);
    let Ok((mut sender, conn)) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await
    else {
        result.errors += 1;
        return result;
    };
    tokio::spawn(conn);
    while !stop.load(Ordering::Relaxed) {
        let visitor = visitors[rng.below(visitors.len())];
        let mut body = String::with_capacity(400 * batch);
        if batch == 1 {
            event(&mut rng, visitor, &mut body);
        } else {
            body.push('[');
            for i in 0..batch {
                if i > 0 {
                    body.push(',');
                }
                event(&mut rng, visitor, &mut body);
            }
            body.push(']');
        }
        let request = hyper::Request::post(path.as_str())
            .header("host", "bench")
            .header("content-type", "text/plain")
            .header("user-agent", UA)
            .body(Full::new(Bytes::from(body)))
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
                } else {
                    result.non_2xx += 1;
                    if status == 503 {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            }
            Err(_) => {
                result.errors += 1;
                break;
            }
        }
    }
    result
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index] as f64 / 1000.0
}

fn peak_rss_mb(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

async fn count_rows(owner: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM raw_events")
        .fetch_one(owner)
        .await
        .expect("count")
}

/// Keep-alive connections posting to `/e` for a set time.
struct Load<'a> {
    addr: &'a str,
    key: &'a str,
    connections: usize,
    seconds: u64,
    visitors: Arc<Vec<Uuid>>,
}

impl Load<'_> {
    /// Runs the load; `shape(i)` gives connection `i` its events per request and its seed.
    async fn drive(&self, shape: impl Fn(usize) -> (usize, u64)) -> LoadResult {
        let stop = Arc::new(AtomicBool::new(false));
        let path = format!("/e?key={}", self.key);
        let tasks: Vec<_> = (0..self.connections)
            .map(|i| {
                let (batch, seed) = shape(i);
                tokio::spawn(connection(
                    self.addr.to_string(),
                    path.clone(),
                    batch,
                    self.visitors.clone(),
                    seed,
                    stop.clone(),
                ))
            })
            .collect();
        tokio::time::sleep(Duration::from_secs(self.seconds)).await;
        stop.store(true, Ordering::Relaxed);
        let mut total = LoadResult::default();
        for task in tasks {
            let r = task.await.expect("load task");
            total.ok += r.ok;
            total.non_2xx += r.non_2xx;
            total.errors += r.errors;
            total.latencies_us.extend(r.latencies_us);
        }
        total
    }
}

#[allow(clippy::too_many_arguments)]
async fn run_load(
    label: &str,
    addr: &str,
    key: &str,
    batch: usize,
    args: &Args,
    visitors: Arc<Vec<Uuid>>,
    owner: &PgPool,
    server_pid: u32,
) -> f64 {
    let before = count_rows(owner).await;
    let pg_cost = PgCost::start(owner).await;
    let started = Instant::now();
    let load = Load {
        addr,
        key,
        connections: args.connections,
        seconds: args.seconds,
        visitors,
    };
    let mut total = load
        .drive(|i| {
            (
                batch,
                0x9E37_79B9_7F4A_7C15 ^ (i as u64 * 7919 + batch as u64),
            )
        })
        .await;
    let elapsed = started.elapsed().as_secs_f64();
    let stored = count_rows(owner).await - before;
    total.latencies_us.sort_unstable();
    let l = &total.latencies_us;
    let stored_per_s = stored as f64 / elapsed;
    println!(
        "\n== {label}: {} connections, {:.1} s",
        args.connections, elapsed
    );
    println!("  stored events/s  {stored_per_s:>10.0}   ({stored} rows in raw_events)");
    println!("  requests/s (2xx) {:>10.0}", total.ok as f64 / elapsed);
    println!(
        "  latency ms       p50 {:.2}  p95 {:.2}  p99 {:.2}  max {:.2}",
        percentile(l, 0.50),
        percentile(l, 0.95),
        percentile(l, 0.99),
        percentile(l, 1.0)
    );
    println!(
        "  non-2xx          {}   connection errors {}",
        total.non_2xx, total.errors
    );
    println!("  server peak RSS  {:.1} MB", peak_rss_mb(server_pid));
    pg_cost.report(owner, stored as u64).await;
    stored_per_s
}

/// Load before measuring, then ANALYZE: what a running service has after its first minute.
///
/// On a new database every table is empty and has no statistics, and PostgreSQL makes a
/// connection's generic plans from that: with nothing to tell them apart, an index that only
/// narrows to the company can look as good as the primary key, and that plan stays while the
/// table grows. Autovacuum analyzes the tables within a minute or so (its default nap), after
/// which every plan is made again from real statistics; the warm-up stands for that minute,
/// so the figures describe the service as it runs rather than its first seconds.
async fn warm_up(addr: &str, key: &str, args: &Args, visitors: Arc<Vec<Uuid>>, owner: &PgPool) {
    if args.warmup_seconds == 0 {
        return;
    }
    // Single events and batches of 20, half the connections each.
    let load = Load {
        addr,
        key,
        connections: args.connections.min(64),
        seconds: args.warmup_seconds,
        visitors,
    };
    load.drive(|i| (1 + (i % 2) * 19, 0x0005_DEEC_E66D ^ i as u64))
        .await;
    sqlx::query("ANALYZE")
        .execute(owner)
        .await
        .expect("analyze");
    println!(
        "warm-up: {} s of load, then ANALYZE ({} rows in raw_events)",
        args.warmup_seconds,
        count_rows(owner).await
    );
}

/// The same kind of rows, COPYed straight into an unindexed scratch table: what PostgreSQL
/// alone can take on this machine. `when` names the moment in the run (see `main`).
async fn database_ceiling(owner: &PgPool, company: Uuid, rows: usize, when: &str) -> f64 {
    sqlx::query("CREATE TABLE bench_scratch (LIKE raw_events INCLUDING DEFAULTS)")
        .execute(owner)
        .await
        .expect("scratch table");
    let mut rng = Rng(42);
    let visitors: Vec<Uuid> = (0..20_000).map(|_| Uuid::new_v4()).collect();
    let mut data = String::with_capacity(rows * 400);
    for _ in 0..rows {
        let visitor = visitors[rng.below(visitors.len())];
        let mut text = String::new();
        event(&mut rng, visitor, &mut text);
        let e: serde_json::Value = serde_json::from_str(&text).expect("generated JSON");
        data.push_str(&format!(
            "{company}\t{}\t{}\t2026-11-26 10:00:00+00\t2026-11-26 10:00:00+00\t{}\t{}\t{}\t{}\ttrue\twrite\t{}\n",
            e["event_id"].as_str().unwrap(),
            e["event_name"].as_str().unwrap(),
            e["visitor_id"].as_str().unwrap(),
            Uuid::new_v4(),
            e["page_url"].as_str().unwrap(),
            UA,
            e["properties"].to_string().replace('\\', "\\\\"),
        ));
    }
    let started = Instant::now();
    let mut conn = owner.acquire().await.expect("connection");
    // Batches of 10,000 rows, one COPY each, as a bulk loader would.
    let lines: Vec<&str> = data.lines().collect();
    for batch in lines.chunks(10_000) {
        let mut copy = conn
            .copy_in_raw(
                "COPY bench_scratch (company_id, event_id, event_name, occurred_at, received_at,
                     visitor_id, session_id, page_url, user_agent, consent_analytics, key_kind,
                     properties) FROM STDIN",
            )
            .await
            .expect("copy");
        let mut text = batch.join("\n");
        text.push('\n');
        copy.send(text.as_bytes()).await.expect("send");
        copy.finish().await.expect("finish");
    }
    let per_s = rows as f64 / started.elapsed().as_secs_f64();
    drop(conn);
    sqlx::query("DROP TABLE bench_scratch")
        .execute(owner)
        .await
        .expect("drop scratch table");
    println!("\n== database-only ceiling {when}: COPY of {rows} rows into an unindexed table");
    println!("  rows/s           {per_s:>10.0}");
    per_s
}

struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn main() {
    let args = args();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let (url, cluster) = fresh_database().await;
        if args.nodes > 1 {
            common::nodes::benchmark(
                &url,
                common::nodes::NodesArgs {
                    nodes: args.nodes,
                    seconds: args.seconds,
                    warmup_seconds: args.warmup_seconds,
                    connections: args.connections,
                    visitors: args.visitors,
                    seed: args.seed,
                    retry_every: args.retry_every,
                },
            )
            .await;
            drop(cluster);
            return;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = format!("127.0.0.1:{port}");
        let server = Server(
            // LUX_BENCH_BINARY: another build of `lux` to measure with the same load (to
            // compare two commits in alternating runs on a busy machine).
            std::process::Command::new(
                std::env::var("LUX_BENCH_BINARY")
                    .unwrap_or_else(|_| env!("CARGO_BIN_EXE_lux").to_string()),
            )
            .args(["serve", "--bind", &addr])
            .env("DATABASE_URL", &url)
            .env(
                "RUST_LOG",
                std::env::var("LUX_BENCH_SERVER_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .spawn()
            .expect("start lux serve"),
        );
        let owner = PgPool::connect(&url).await.expect("owner pool");
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(&addr).await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let company = lux::tenancy::create_company(
            &owner,
            lux::tenancy::NewCompany::parse("Bench", "UTC", "EUR", vec![]).unwrap(),
        )
        .await
        .expect("company");
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0);
        println!(
            "lux ingest benchmark: {cores} cores, database {}, {} visitors",
            if cluster.is_some() {
                "embedded (default durability)"
            } else {
                "DATABASE_URL"
            },
            args.visitors
        );
        let visitors: Arc<Vec<Uuid>> =
            Arc::new((0..args.visitors).map(|_| Uuid::now_v7()).collect());
        let pid = server.0.id();
        // The ceiling is measured twice: on the quiet, empty cluster, and after the load,
        // when autovacuum is busy with the loaded tables and a checkpoint may be due. The
        // ratio uses the higher of the two, so a slow moment of the database cannot flatter it.
        let quiet_ceiling = database_ceiling(
            &owner,
            company.company_id.uuid(),
            args.ceiling_rows,
            "before the load",
        )
        .await;
        warm_up(&addr, &company.write_key, &args, visitors.clone(), &owner).await;
        run_load(
            "single events",
            &addr,
            &company.write_key,
            1,
            &args,
            visitors.clone(),
            &owner,
            pid,
        )
        .await;
        let batched = run_load(
            "batches of 20",
            &addr,
            &company.write_key,
            20,
            &args,
            visitors,
            &owner,
            pid,
        )
        .await;
        let loaded_ceiling = database_ceiling(
            &owner,
            company.company_id.uuid(),
            args.ceiling_rows,
            "after the load",
        )
        .await;
        let ceiling = quiet_ceiling.max(loaded_ceiling);
        println!(
            "\nbatches of 20 reach {:.0}% of the database-only ceiling ({ceiling:.0} rows/s, \
             the higher of the two)",
            100.0 * batched / ceiling
        );
        drop(server);
        owner.close().await;
        drop(cluster);
    });
}
