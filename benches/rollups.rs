//! Rollups and reports benchmark:
//! `cargo bench --bench rollups [-- --events 10000000 --days 90 --samples 20]`.
//!
//! Builds one company's data set with `lux demo`'s generator (visitors over many channels,
//! sessions, funnels, orders with refunds and repeat customers, ad spend) into a fresh
//! database (a new one on `DATABASE_URL`'s server, else a private cluster at PostgreSQL's
//! default durability), attributes it, then times, as the service runs them (`lux_app` for
//! the jobs, `lux_reader` through the real HTTP API for the reports):
//! - the full rollup rebuild of every day;
//! - an incremental run after one late event (a page view back-filled 30 days ago), which
//!   must recompute that one day;
//! - each report over 365 days: `--samples` requests one after the other, p50 and p95.
//!
//! Prints the figures; no assertions on time. Compare them across commits.

use std::time::{Duration, Instant};

use lux::ids::CompanyId;
use lux::jobs::{Job, Mode, WhenBusy};
use serde_json::json;
use uuid::Uuid;

mod common;
use common::{flag, fresh_database};

struct Args {
    events: u64,
    days: u32,
    samples: usize,
}

fn args() -> Args {
    Args {
        events: flag("--events", 10_000_000),
        days: flag("--days", 90),
        samples: flag("--samples", 20),
    }
}

const REPORTS: [&str; 12] = [
    "revenue_by_channel",
    "revenue_by_channel&model=linear",
    "cac",
    "roas",
    "roas&by=creative",
    "funnel",
    "time_to_conversion",
    "qualified_sessions",
    "repeat_purchase",
    "ltv_rolling",
    "ltv_cohorts",
    "funnel&funnel=lead",
];

fn main() {
    let args = args();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run(args));
}

async fn run(args: Args) {
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
    println!(
        "rollups benchmark: {} events over {} days, one company, {cores} cores",
        args.events, args.days
    );

    let spec = lux::demo::DemoSpec::new(args.days, args.events, 42).expect("spec");
    let clock = Instant::now();
    let summary = lux::demo::generate(&owner, company_id, &spec)
        .await
        .expect("generate");
    println!(
        "  data set: {} events, {} sessions, {} orders, {} customers, {} spend rows in {:.1} s",
        summary.events,
        summary.sessions,
        summary.orders,
        summary.customers,
        summary.spend_rows,
        clock.elapsed().as_secs_f64()
    );
    sqlx::query("VACUUM ANALYZE")
        .execute(&owner)
        .await
        .expect("vacuum");

    let app = lux::db::connect_app(&url, 8).expect("app pool");
    let attribution = run_job(&app, company_id, Job::Attribution, Mode::Full).await;
    println!("  attribution, full: {attribution:.1} s");
    // Past the watermark's margin: the incremental run below must find only the late day.
    tokio::time::sleep(Duration::from_secs(6)).await;

    let full = run_job(&app, company_id, Job::Rollups, Mode::Full).await;
    let days: i64 = sqlx::query_scalar(
        "SELECT days_count FROM job_runs WHERE company_id = $1 AND job = 'rollups'
         ORDER BY started_at DESC LIMIT 1",
    )
    .bind(company_id)
    .fetch_one(&owner)
    .await
    .map(|n: i32| i64::from(n))
    .expect("run recorded");
    println!(
        "  rollups, full rebuild: {full:.1} s ({days} days, {:.0} events/s)",
        summary.events as f64 / full
    );

    // One late event through the real service, then the incremental run.
    let mut options = lux::server::ServeOptions {
        bind: ([127, 0, 0, 1], 0).into(),
        jobs_interval: None,
        ..lux::server::ServeOptions::default()
    };
    options.pool_size = 8;
    let server = lux::server::start(&url, options).await.expect("serve");
    let base = format!("http://{}", server.addr);
    let client = reqwest::Client::new();
    let late = chrono::Utc::now() - chrono::Duration::days(30);
    let response = client
        .post(format!("{base}/e"))
        .bearer_auth(&company.secret_key)
        .json(&json!({"event_id": Uuid::now_v7(), "event_name": "page_view",
            "visitor_id": Uuid::new_v4(), "page_url": "https://shop.example/?utm_source=google&utm_medium=cpc&utm_campaign=late",
            "occurred_at": late.to_rfc3339()}))
        .send()
        .await
        .expect("post");
    assert_eq!(response.status(), 202, "the late event is accepted");
    let report = lux::jobs::run(
        &app,
        company_id,
        Job::Rollups,
        (Mode::Incremental, WhenBusy::Wait),
        chrono::Utc::now(),
    )
    .await
    .expect("incremental run")
    .expect("lock");
    println!(
        "  rollups, incremental after one late event: {:.3} s ({} day(s) recomputed)",
        report.seconds,
        report.days_count.unwrap_or(0)
    );

    let to = chrono::Utc::now().date_naive();
    let from = to - chrono::Duration::days(364);
    println!(
        "  reports over 365 days ({from} to {to}), {} requests each:",
        args.samples
    );
    for report in REPORTS {
        let (name, extra) = report.split_once('&').unwrap_or((report, ""));
        let query = if extra.is_empty() {
            format!("from={from}&to={to}")
        } else {
            format!("from={from}&to={to}&{extra}")
        };
        let mut times = Vec::with_capacity(args.samples);
        for _ in 0..args.samples {
            let clock = Instant::now();
            let response = client
                .get(format!("{base}/api/v1/reports/{name}?{query}"))
                .bearer_auth(&company.secret_key)
                .send()
                .await
                .expect("report");
            assert_eq!(response.status(), 200, "{report}");
            response.bytes().await.expect("body");
            times.push(clock.elapsed().as_secs_f64() * 1000.0);
        }
        times.sort_by(f64::total_cmp);
        let at =
            |q: f64| times[((q * times.len() as f64).ceil() as usize).clamp(1, times.len()) - 1];
        println!(
            "    {report:<34} p50 {:>7.1} ms   p95 {:>7.1} ms",
            at(0.50),
            at(0.95)
        );
    }
    server.stop().await.expect("stop");
}

async fn run_job(pool: &sqlx::PgPool, company_id: CompanyId, job: Job, mode: Mode) -> f64 {
    lux::jobs::run(
        pool,
        company_id,
        job,
        (mode, WhenBusy::Wait),
        chrono::Utc::now(),
    )
    .await
    .expect("job runs")
    .expect("lock")
    .seconds
}
