//! Dashboard pages benchmark:
//! `cargo bench --bench dashboards [-- --events 10000000 --days 365 --samples 20]`.
//!
//! Builds one company's data set with `lux demo`'s generator into a fresh database (like
//! `benches/rollups.rs`), runs attribution and the rollups, signs a user in through the login
//! form, then requests each dashboard page over the real HTTP service, one request after the
//! other, for the last 90 days and for the whole year (with the comparison period, as a
//! browser asks for them), and prints p50 and p95 per page. No assertions on time.
//!
//! `--reuse-url URL`: measure a database a run before generated (its one company, its demo
//! data) instead of generating again; the jobs still run, as on a running service.

use std::time::Instant;

use lux::jobs::{Job, Mode, WhenBusy};

mod common;
use common::{flag, fresh_database};

const PAGES: [&str; 12] = [
    "executive",
    "acquisition",
    "acquisition?channel=Paid+Search",
    "funnel",
    "retention",
    "attribution",
    "attribution?model=linear",
    "messages",
    "messages?channel=email",
    "creatives",
    "experiments",
    "alerts",
];

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run(
        flag("--events", 10_000_000),
        flag("--days", 365),
        flag("--samples", 20),
    ));
}

async fn run(events: u64, days: u32, samples: usize) {
    let reuse = flag("--reuse-url", String::new());
    let (url, _cluster) = if reuse.is_empty() {
        fresh_database().await
    } else {
        (reuse.clone(), None)
    };
    let owner = lux::db::connect_owner(&url, 4).await.expect("connect");
    lux::db::migrate(&owner).await.expect("migrate");
    let company_id = if reuse.is_empty() {
        generate(&owner, events, days).await
    } else {
        let id: uuid::Uuid = sqlx::query_scalar("SELECT company_id FROM companies LIMIT 1")
            .fetch_one(&owner)
            .await
            .expect("a company in the reused database");
        println!("dashboards benchmark: the data set already in {reuse}");
        lux::ids::CompanyId::from_uuid(id)
    };
    measure(&url, &owner, company_id, samples).await;
}

/// One company and its demo data set; returns the company.
async fn generate(owner: &sqlx::PgPool, events: u64, days: u32) -> lux::ids::CompanyId {
    let company = lux::tenancy::create_company(
        owner,
        lux::tenancy::NewCompany::parse("Bench", "America/New_York", "USD", vec![])
            .expect("valid company"),
    )
    .await
    .expect("company");
    let company_id = company.company_id;
    println!("dashboards benchmark: {events} events over {days} days, one company");
    let spec = lux::demo::DemoSpec::new(days, events, 42).expect("spec");
    let clock = Instant::now();
    let summary = lux::demo::generate(owner, company_id, &spec)
        .await
        .expect("generate");
    println!(
        "  data set: {} events, {} sessions, {} orders in {:.1} s",
        summary.events,
        summary.sessions,
        summary.orders,
        clock.elapsed().as_secs_f64()
    );
    sqlx::query("VACUUM ANALYZE")
        .execute(owner)
        .await
        .expect("vacuum");
    company_id
}

/// Runs the jobs, signs a user in, and times the pages.
async fn measure(url: &str, owner: &sqlx::PgPool, company_id: lux::ids::CompanyId, samples: usize) {
    let app = lux::db::connect_app(url, 8).expect("app pool");
    for job in [Job::Attribution, Job::Rollups] {
        let report = lux::jobs::run(
            &app,
            company_id,
            job,
            (Mode::Full, WhenBusy::Wait),
            chrono::Utc::now(),
        )
        .await
        .expect("job runs")
        .expect("lock");
        println!("  {}: {:.1} s", job.as_str(), report.seconds);
    }
    // The rollups were just written: give the planner their statistics, as autovacuum would
    // a little later (without them the first pages measured get plans for empty tables).
    sqlx::query("ANALYZE")
        .execute(owner)
        .await
        .expect("analyze");
    // A new user per run: a reused database keeps the last run's.
    let email = lux::dashboards::users::Email::parse(&format!(
        "bench-{}@example.com",
        uuid::Uuid::new_v4().simple()
    ))
    .expect("email");
    let password = lux::dashboards::users::Password::generate();
    lux::dashboards::users::create_user(owner, &email, &password)
        .await
        .expect("user");
    lux::dashboards::users::grant(
        owner,
        &email,
        company_id,
        lux::dashboards::users::Role::Viewer,
    )
    .await
    .expect("grant");

    let options = lux::server::ServeOptions {
        bind: ([127, 0, 0, 1], 0).into(),
        jobs_interval: None,
        pool_size: 8,
        ..lux::server::ServeOptions::default()
    };
    let server = lux::server::start(url, options).await.expect("serve");
    let base = format!("http://{}", server.addr);
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let session = sign_in(&client, &base, email.as_ref(), password.expose()).await;

    let today = chrono::Utc::now()
        .with_timezone(&chrono_tz::America::New_York)
        .date_naive();
    let year = format!("from={}&to={today}", today - chrono::Days::new(364));
    for (label, range) in [
        ("last 90 days", "range=90d".to_string()),
        ("365 days", year),
    ] {
        println!("  pages over {label} (with the previous period), {samples} requests each:");
        for page in PAGES {
            let (name, extra) = page.split_once('?').unwrap_or((page, ""));
            let path = format!("/app/{}/{name}?{range}&{extra}", company_id.uuid());
            let mut times = Vec::with_capacity(samples);
            for _ in 0..samples {
                let clock = Instant::now();
                let answer = client
                    .get(format!("{base}{path}"))
                    .header("cookie", format!("lux_session={session}"))
                    .send()
                    .await
                    .expect("page");
                assert_eq!(answer.status(), 200, "{path}");
                answer.bytes().await.expect("body");
                times.push(clock.elapsed().as_secs_f64() * 1000.0);
            }
            times.sort_by(f64::total_cmp);
            let at = |q: f64| {
                times[((q * times.len() as f64).ceil() as usize).clamp(1, times.len()) - 1]
            };
            println!(
                "    {page:<34} p50 {:>7.1} ms   p95 {:>7.1} ms",
                at(0.50),
                at(0.95)
            );
        }
    }
    server.stop().await.expect("stop");
}

/// Signs in through the login form; returns the session cookie's value.
async fn sign_in(client: &reqwest::Client, base: &str, email: &str, password: &str) -> String {
    let form = client
        .get(format!("{base}/app/login"))
        .send()
        .await
        .expect("login page");
    let csrf = cookie(form.headers(), "lux_csrf");
    let answer = client
        .post(format!("{base}/app/login"))
        .header("cookie", format!("lux_csrf={csrf}"))
        .form(&[
            ("email", email),
            ("password", password),
            ("csrf", csrf.as_str()),
        ])
        .send()
        .await
        .expect("login");
    assert_eq!(answer.status(), 303, "signed in");
    cookie(answer.headers(), "lux_session")
}

fn cookie(headers: &reqwest::header::HeaderMap, name: &str) -> String {
    headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix(&format!("{name}=")))
        .and_then(|v| v.split(';').next())
        .expect("cookie")
        .to_string()
}
