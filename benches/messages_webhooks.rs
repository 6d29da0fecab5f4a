//! Provider webhook benchmark: `cargo bench --bench messages_webhooks [-- --events 1000000
//! --batch 1000 --connections 4]` (`LUX_BENCH_EVENTS` sets the count too).
//!
//! Starts the service in this process on a fresh database (a new database on `DATABASE_URL`
//! when set, else a private cluster), gives a company a SendGrid verification key, then posts
//! SendGrid-style signed batches (a JSON array of `--batch` events, as SendGrid groups them)
//! from `--connections` concurrent clients: for each message a `processed`, a `delivered`, an
//! open (one in eight flagged `sg_machine_open`) and a click, with our `lux_mid` custom
//! argument, so the first event of each message creates its send. Every request is verified
//! (ECDSA P-256 over timestamp + body), normalised, machine-judged and stored.
//!
//! Prints the events stored per second (counted in `message_events` afterwards), requests per
//! second, latency percentiles and non-2xx answers. Figures, not assertions.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use p256::pkcs8::EncodePublicKey;
use serde_json::{Value, json};

mod common;
use common::{flag, fresh_database};

const UA: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148";

struct Args {
    events: usize,
    batch: usize,
    connections: usize,
}

fn args() -> Args {
    let default_events = std::env::var("LUX_BENCH_EVENTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000);
    Args {
        events: flag("--events", default_events),
        batch: flag("--batch", 1_000),
        connections: flag("--connections", 4),
    }
}

fn main() {
    let args = args();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run(args));
}

/// Event `k` of the run: message `k / 4`, and its processed, delivered, open or click.
fn event(k: usize, start: i64) -> Value {
    let message = k / 4;
    let sent = start + (message / 50) as i64;
    let (word, at, extra) = match k % 4 {
        0 => ("processed", sent, json!({})),
        1 => ("delivered", sent + 4, json!({})),
        2 => (
            "open",
            sent + 600,
            json!({"useragent": UA, "sg_machine_open": message.is_multiple_of(8)}),
        ),
        _ => (
            "click",
            sent + 700,
            json!({"useragent": UA, "url": format!("https://shop.example/p/{}", message % 100)}),
        ),
    };
    let mut item = json!({
        "event": word,
        "email": format!("person{}@example.com", message % 100_000),
        "timestamp": at,
        "sg_event_id": format!("ev-{k}"),
        "sg_message_id": format!("sgm{message}.filterdrecv-bench"),
        "lux_mid": format!("bench-{message}"),
        "category": ["bench"],
    });
    if let (Some(object), Value::Object(more)) = (item.as_object_mut(), extra) {
        object.extend(more);
    }
    item
}

/// The body of batch `b` (SendGrid ends it with CRLF) and its signature headers.
fn batch(key: &SigningKey, b: usize, args: &Args, start: i64) -> (String, String, String) {
    let from = b * args.batch;
    let to = (from + args.batch).min(args.events);
    let items: Vec<Value> = (from..to).map(|k| event(k, start)).collect();
    let body = format!("{}\r\n", Value::Array(items));
    let timestamp = chrono::Utc::now().timestamp().to_string();
    let mut signed = timestamp.clone().into_bytes();
    signed.extend_from_slice(body.as_bytes());
    let signature: Signature = key.sign(&signed);
    (
        body,
        timestamp,
        STANDARD.encode(signature.to_der().as_bytes()),
    )
}

async fn run(args: Args) {
    let (url, _cluster) = fresh_database().await;
    let owner = lux::db::connect_owner(&url, 2).await.expect("connect");
    lux::db::migrate(&owner).await.expect("migrate");
    let secrets_key = lux::commerce::secrets::SecretsKey::generate();
    let server = lux::server::start(
        &url,
        lux::server::ServeOptions {
            bind: ([127, 0, 0, 1], 0).into(),
            secrets_key: Some(secrets_key.clone()),
            jobs_interval: None,
            ..lux::server::ServeOptions::default()
        },
    )
    .await
    .expect("start the service");
    let company = lux::tenancy::create_company(
        &owner,
        lux::tenancy::NewCompany::parse("Bench", "UTC", "USD", vec![]).expect("company"),
    )
    .await
    .expect("company");
    let key = SigningKey::from_slice(&[42; 32]).expect("key");
    let public = STANDARD.encode(
        key.verifying_key()
            .to_public_key_der()
            .expect("der")
            .as_bytes(),
    );
    lux::commerce::secrets::set_secret(
        &owner,
        &secrets_key,
        company.company_id.uuid(),
        lux::commerce::secrets::Provider::SendGrid,
        &public,
    )
    .await
    .expect("secret");
    let endpoint = format!(
        "http://{}/webhooks/sendgrid/{}",
        server.addr, company.company_id
    );
    let batches = args.events.div_ceil(args.batch);
    println!(
        "messages webhook benchmark: {} SendGrid events in {batches} signed batches of {}, \
         {} connections, {} cores",
        args.events,
        args.batch,
        args.connections,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );

    let args = Arc::new(args);
    let key = Arc::new(key);
    let next = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(AtomicUsize::new(0));
    let start = chrono::Utc::now().timestamp() - 86_400;
    let clock = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..args.connections {
        let (args, key, next, failures) =
            (args.clone(), key.clone(), next.clone(), failures.clone());
        let endpoint = endpoint.clone();
        workers.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut latencies = Vec::new();
            loop {
                let b = next.fetch_add(1, Ordering::Relaxed);
                if b >= batches {
                    return latencies;
                }
                let (body, timestamp, signature) = batch(&key, b, &args, start);
                let sent = Instant::now();
                let answer = client
                    .post(&endpoint)
                    .header("content-type", "application/json")
                    .header("X-Twilio-Email-Event-Webhook-Timestamp", timestamp)
                    .header("X-Twilio-Email-Event-Webhook-Signature", signature)
                    .body(body)
                    .send()
                    .await;
                match answer {
                    Ok(response) if response.status().is_success() => {}
                    Ok(response) => {
                        if failures.fetch_add(1, Ordering::Relaxed) < 3 {
                            let status = response.status();
                            let text = response.text().await.unwrap_or_default();
                            eprintln!("  answer {status}: {text}");
                        }
                    }
                    Err(error) => {
                        failures.fetch_add(1, Ordering::Relaxed);
                        eprintln!("  request failed: {error}");
                    }
                }
                latencies.push(sent.elapsed());
            }
        }));
    }
    let mut latencies: Vec<Duration> = Vec::new();
    for worker in workers {
        latencies.extend(worker.await.expect("worker"));
    }
    let elapsed = clock.elapsed().as_secs_f64();
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM message_events")
        .fetch_one(&owner)
        .await
        .expect("count");
    let sends: i64 = sqlx::query_scalar("SELECT count(*) FROM message_sends")
        .fetch_one(&owner)
        .await
        .expect("count");
    let machine: i64 = sqlx::query_scalar("SELECT count(*) FROM message_events WHERE is_machine")
        .fetch_one(&owner)
        .await
        .expect("count");
    latencies.sort();
    let percentile = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    println!(
        "  stored {stored} events ({sends} sends, {machine} machine) in {elapsed:.1} s: \
         {:.0} events/s stored, {:.1} requests/s",
        stored as f64 / elapsed,
        batches as f64 / elapsed
    );
    println!(
        "  latency per batch: p50 {:.0} ms, p95 {:.0} ms, max {:.0} ms; non-2xx or failed: {}",
        percentile(0.50),
        percentile(0.95),
        percentile(1.0),
        failures.load(Ordering::Relaxed)
    );
    server.stop().await.expect("stop");
}
