//! Message rollups and the `messages` report over a year of sends for one company:
//! `cargo bench --bench messages [-- --sends 1000000 --samples 20]`.
//!
//! Writes a year of campaigns straight into the tables with `generate_series` (as the
//! webhooks would have: 208 campaigns, three email blasts a week and one SMS, ~2.8 events per
//! send: queued, delivered or bounced, sent for SMS, human opens (some twice), Apple's machine
//! opens, clicks, unsubscribes, complaints) and 2 % of sends with a credited order, into a
//! fresh database (a new one on `DATABASE_URL`'s server, else a private cluster). Then times,
//! as the service runs them (`lux_app` for the job, `lux_reader` through the real HTTP API):
//! - the full rollup rebuild (every day of the year);
//! - an incremental run after one late provider event on a send of six months ago (one day);
//! - the `messages` report over 365 days, by channel, by campaign and for email only, and by
//!   message over one week: `--samples` requests each, p50 and p95.
//!
//! Prints the figures; no assertions on time.

use std::time::Instant;

use lux::jobs::{Job, Mode, WhenBusy};
use uuid::Uuid;

mod common;
use common::{flag, fresh_database};

/// Campaigns in the year: 3 email blasts and 1 SMS a week.
const CAMPAIGNS: i64 = 208;

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run(flag("--sends", 1_000_000), flag("--samples", 20)));
}

/// u(x) in SQL: a uniform draw in [0, 1) from the text x.
fn u(x: &str) -> String {
    format!("((hashtext({x}) & 2147483647)::float8 / 2147483648)")
}

async fn run(sends: i64, samples: usize) {
    let (url, _cluster) = fresh_database().await;
    let owner = lux::db::connect_owner(&url, 4).await.expect("connect");
    lux::db::migrate(&owner).await.expect("migrate");
    let company = lux::tenancy::create_company(
        &owner,
        lux::tenancy::NewCompany::parse("Bench", "America/New_York", "USD", vec![])
            .expect("valid company"),
    )
    .await
    .expect("company");
    let company_id = company.company_id;
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!("messages benchmark: {sends} sends over 365 days, one company, {cores} cores");

    let clock = Instant::now();
    let (sends, events, orders) = write_year(&owner, company_id.uuid(), sends).await;
    println!(
        "  data set: {sends} sends, {events} provider events, {orders} credited orders in {:.1} s",
        clock.elapsed().as_secs_f64()
    );
    sqlx::query("VACUUM ANALYZE")
        .execute(&owner)
        .await
        .expect("vacuum");
    // The runs are dated past the watermark's margin (6 s after the data was written), so
    // the incremental run below finds only the late day.
    let later = || chrono::Utc::now() + chrono::Duration::seconds(6);

    let app = lux::db::connect_app(&url, 8).expect("app pool");
    let full = lux::jobs::run(
        &app,
        company_id,
        Job::Rollups,
        (Mode::Full, WhenBusy::Wait),
        later(),
    )
    .await
    .expect("rollups")
    .expect("lock");
    println!(
        "  rollups, full rebuild: {:.1} s ({} days, {:.0} sends/s)",
        full.seconds,
        full.days_count.unwrap_or(0),
        sends as f64 / full.seconds
    );

    // One provider event arrives late for a send of six months ago.
    sqlx::query(
        "INSERT INTO message_events (company_id, event_id, provider, provider_event_id,
             message_id, kind, provider_status, occurred_at, received_at)
         SELECT company_id, gen_random_uuid(), provider, 'late', message_id, 'unsubscribed',
                'unsubscribe', now(), now()
         FROM message_sends WHERE company_id = $1 AND message_id = 'c104-1'",
    )
    .bind(company_id)
    .execute(&owner)
    .await
    .expect("late event");
    let late = lux::jobs::run(
        &app,
        company_id,
        Job::Rollups,
        (Mode::Incremental, WhenBusy::Wait),
        later(),
    )
    .await
    .expect("incremental run")
    .expect("lock");
    println!(
        "  rollups, incremental after one late event: {:.3} s ({} day(s) recomputed)",
        late.seconds,
        late.days_count.unwrap_or(0)
    );

    reports(&url, &company.secret_key, samples).await;
}

/// The year's sends, events and orders. Returns how many of each.
async fn write_year(owner: &sqlx::PgPool, company_id: Uuid, sends: i64) -> (u64, u64, u64) {
    let per_campaign = (sends / CAMPAIGNS).max(1);
    let written_sends = sqlx::query(
        "INSERT INTO message_sends (company_id, message_id, channel, provider,
             provider_message_id, campaign, recipient_hash, sent_at, origin, created_at)
         SELECT $1, 'c' || c || '-' || n, ch, CASE ch WHEN 'email' THEN 'sendgrid' ELSE 'twilio' END,
                'p' || c || '-' || n, 'campaign_' || c,
                sha256(convert_to('r' || (n % 200000), 'UTF8')), t, 'import', t
         FROM generate_series(0, $2 - 1) c
         CROSS JOIN LATERAL (SELECT CASE WHEN c % 4 = 3 THEN 'sms' ELSE 'email' END AS ch,
                                    now() - interval '365 days'
                                        + interval '365 days' * c / $2 AS base) b
         CROSS JOIN generate_series(1, $3) n
         CROSS JOIN LATERAL (SELECT b.base + interval '500 milliseconds' * n AS t) s",
    )
    .bind(company_id)
    .bind(CAMPAIGNS)
    .bind(per_campaign)
    .execute(owner)
    .await
    .expect("sends")
    .rows_affected();
    let (r1, r2, r3) = (
        u("m.message_id || 'a'"),
        u("m.message_id || 'b'"),
        u("m.message_id || 'c'"),
    );
    let events = sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO message_events (company_id, event_id, provider, provider_event_id,
             message_id, kind, provider_status, occurred_at, received_at, recipient_hash,
             is_machine, machine_reason)
         SELECT $1, gen_random_uuid(), m.provider, m.message_id || ':' || k.kind || ':' || k.i,
                m.message_id, k.kind, k.kind, m.sent_at + k.after, m.sent_at + k.after,
                m.recipient_hash, k.machine, CASE WHEN k.machine THEN 'apple_proxy_user_agent' END
         FROM message_sends m
         CROSS JOIN LATERAL (SELECT {r1} AS r1, {r2} AS r2, {r3} AS r3,
                                    m.channel = 'email' AS email) r
         CROSS JOIN LATERAL (VALUES
             ('queued', 0, interval '0', false, true),
             ('sent', 0, interval '1 second', false, NOT r.email),
             ('delivered', 0, interval '5 seconds', false, r.r1 >= 0.03),
             ('bounced', 0, interval '5 seconds', false, r.r1 < 0.03),
             ('opened', 0, interval '2 hours', false, r.email AND r.r1 >= 0.03 AND r.r2 < 0.25),
             ('opened', 1, interval '26 hours', false, r.email AND r.r1 >= 0.03 AND r.r2 < 0.10),
             ('opened', 2, interval '6 seconds', true, r.email AND r.r1 >= 0.03 AND r.r3 < 0.35),
             ('clicked', 0, interval '2 hours 1 minute', false, r.r1 >= 0.03 AND r.r2 < 0.04),
             ('unsubscribed', 0, interval '4 hours', false, r.r1 >= 0.03 AND r.r3 > 0.998),
             ('complained', 0, interval '5 hours', false, r.email AND r.r1 >= 0.03
                                                          AND r.r3 > 0.9998)
         ) k(kind, i, after, machine, keep)
         WHERE m.company_id = $1 AND k.keep"
    )))
    .bind(company_id)
    .execute(owner)
    .await
    .expect("events")
    .rows_affected();
    // 2 % of sends earned an order, placed 3 hours after the send (credited as the
    // attribution job would have).
    let orders = sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO orders (company_id, order_id, order_number, status, currency, gross_minor,
             net_minor, placed_at, message_id, message_channel, message_attributed_at)
         SELECT $1, gen_random_uuid(), 'o-' || m.message_id, 'paid', 'USD', 5000, 5000,
                m.sent_at + interval '3 hours', m.message_id, m.channel, now()
         FROM message_sends m
         WHERE m.company_id = $1 AND {} < 0.02",
        u("m.message_id || 'o'")
    )))
    .bind(company_id)
    .execute(owner)
    .await
    .expect("orders")
    .rows_affected();
    (written_sends, events, orders)
}

/// Times the `messages` report through the real API.
async fn reports(url: &str, secret_key: &str, samples: usize) {
    let options = lux::server::ServeOptions {
        bind: ([127, 0, 0, 1], 0).into(),
        jobs_interval: None,
        pool_size: 8,
        ..lux::server::ServeOptions::default()
    };
    let server = lux::server::start(url, options).await.expect("serve");
    let base = format!("http://{}", server.addr);
    let client = reqwest::Client::new();
    let to = chrono::Utc::now().date_naive() + chrono::Duration::days(1);
    let from = to - chrono::Duration::days(364);
    let week = to - chrono::Duration::days(6);
    println!("  messages report ({samples} requests each):");
    for (label, query) in [
        ("365 days, by channel", format!("from={from}&to={to}")),
        (
            "365 days, by campaign",
            format!("from={from}&to={to}&group=campaign"),
        ),
        (
            "365 days, email only",
            format!("from={from}&to={to}&channel=email"),
        ),
        (
            "7 days, by message",
            format!("from={week}&to={to}&group=message"),
        ),
    ] {
        let mut times = Vec::with_capacity(samples);
        let mut rows = 0;
        for _ in 0..samples {
            let clock = Instant::now();
            let response = client
                .get(format!("{base}/api/v1/reports/messages?{query}"))
                .bearer_auth(secret_key)
                .send()
                .await
                .expect("report");
            assert_eq!(response.status(), 200, "{query}");
            let body: serde_json::Value = response.json().await.expect("body");
            rows = body["rows"].as_array().map_or(0, Vec::len);
            times.push(clock.elapsed().as_secs_f64() * 1000.0);
        }
        times.sort_by(f64::total_cmp);
        let at =
            |q: f64| times[((q * times.len() as f64).ceil() as usize).clamp(1, times.len()) - 1];
        println!(
            "    {label:<24} {rows:>6} rows   p50 {:>7.1} ms   p95 {:>7.1} ms",
            at(0.50),
            at(0.95)
        );
    }
    server.stop().await.expect("stop");
}
