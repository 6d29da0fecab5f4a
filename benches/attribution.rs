//! Attribution benchmark: `cargo bench --bench attribution [-- --orders 100000 --sessions 1000000]`.
//!
//! Fills a fresh database (a new one on `DATABASE_URL`'s server, else a private cluster) with
//! one company's sessions, identity links and orders, generated in SQL so loading takes
//! seconds: visitors with five sessions each spread over six weeks before their purchase
//! (some outside the 30-day window, most with a recent one), a fifth of the buyers known by
//! user id only and owning a second device, one in fifty orders with no visitor at all.
//!
//! Then, as the service runs it (`lux_app`, row-level security on), it times:
//! - the first, full attribution of every order;
//! - an incremental run with nothing new (what the scheduler does every minute);
//! - a full recomputation that finds every result unchanged (compute and compare, no write);
//! - an incremental run after late sessions for 1,000 buyers.
//!
//! Prints orders/s for each. Figures, not assertions: compare them across commits.

use std::time::Instant;

use lux::jobs::{Job, Mode, WhenBusy};
use sqlx::PgPool;
use uuid::Uuid;

mod common;
use common::{flag, fresh_database};

struct Args {
    orders: i64,
    sessions: i64,
}

fn args() -> Args {
    Args {
        orders: flag("--orders", 100_000),
        sessions: flag("--sessions", 1_000_000),
    }
}

/// Generates the data set with set-based SQL. Rows are stamped as written when they happened
/// (not now), as in a database that has been running for a while: the incremental runs then
/// see only what the benchmark adds. Visitor `n` buys (if `n` < orders) at a time
/// spread over the last 30 days; its sessions start 1 hour to 6 weeks before that.
async fn load(owner: &PgPool, company: Uuid, args: &Args) {
    let visitors = (args.sessions / 5).max(args.orders * 2);
    let steps = [
        // Five sessions per visitor; channel and campaign vary with the visitor and session.
        "INSERT INTO sessions (company_id, session_id, visitor_id, started_at, last_seen_at,
             source, medium, campaign, channel, page_views, events, created_at)
         SELECT $1, md5('s' || i)::uuid, md5('v' || (i % $3))::uuid, t, t + interval '5 minutes',
                (ARRAY['google','newsletter','(direct)','google','facebook','blog.example',
                       'instagram','display'])[1 + (i * 7 + i / $3) % 8],
                (ARRAY['cpc','email','(none)','organic','paid_social','referral','social',
                       'display'])[1 + (i * 7 + i / $3) % 8],
                'campaign-' || (i % 40),
                (ARRAY['Paid Search','Email','Direct','Organic Search','Paid Social','Referral',
                       'Organic Social','Display'])[1 + (i * 7 + i / $3) % 8],
                3, 5, t
         FROM generate_series(0, $2 - 1) AS i,
              LATERAL (SELECT now() - ((i % $3) % 30) * interval '1 day'
                              - ((i / $3) * 9 + (i % 7)) * interval '1 day'
                              - (1 + i % 5) * interval '1 hour' AS t) s",
        // A fifth of the buyers log in on two devices: their own and a non-buyer visitor.
        "INSERT INTO identity_keys (company_id, key_kind, key_value, person_id, first_seen_at,
             linked_at)
         SELECT $1, k.kind, k.value, md5('p' || n)::uuid, now() - interval '60 days',
                now() - interval '60 days'
         FROM generate_series(0, $4 - 1) AS n,
              LATERAL (VALUES ('visitor', md5('v' || n)::uuid::text),
                              ('visitor', md5('v' || (n + $4))::uuid::text),
                              ('user', 'u' || n)) AS k(kind, value)
         WHERE n % 5 = 0",
        // Orders: by visitor, by user id only (the two-device buyers), or with nothing.
        "INSERT INTO orders (company_id, order_id, order_number, status, currency, gross_minor,
             net_minor, placed_at, visitor_id, user_id, sources, updated_at)
         SELECT $1, md5('o' || n)::uuid, 'B' || n, 'paid', 'EUR', 5000, 5000,
                now() - (n % 30) * interval '1 day',
                CASE WHEN n % 5 = 0 OR n % 50 = 1 THEN NULL ELSE md5('v' || n)::uuid END,
                CASE WHEN n % 5 = 0 THEN 'u' || n END,
                '{event}', now() - (n % 30) * interval '1 day'
         FROM generate_series(0, $4 - 1) AS n",
    ];
    for sql in steps {
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(company)
            .bind(args.sessions)
            .bind(visitors)
            .bind(args.orders)
            .execute(owner)
            .await
            .unwrap_or_else(|e| panic!("{e}: {sql}"));
    }
    sqlx::query("ANALYZE")
        .execute(owner)
        .await
        .expect("analyze");
}

/// Late sessions: a new recent session for each of `buyers` buyers.
async fn late_sessions(owner: &PgPool, company: Uuid, buyers: i64) {
    sqlx::query(
        "INSERT INTO sessions (company_id, session_id, visitor_id, started_at, last_seen_at,
             source, medium, channel)
         SELECT $1, md5('late' || n)::uuid, md5('v' || n)::uuid, o.placed_at - interval '30 minutes',
                o.placed_at - interval '20 minutes', 'newsletter', 'email', 'Email'
         FROM generate_series(0, $2 - 1) AS n
         JOIN orders o ON o.company_id = $1 AND o.order_id = md5('o' || n)::uuid
         WHERE n % 5 <> 0",
    )
    .bind(company)
    .bind(buyers)
    .execute(owner)
    .await
    .expect("late sessions");
}

async fn timed(pool: &PgPool, company: Uuid, mode: Mode, label: &str) {
    let started = Instant::now();
    let report = lux::jobs::run(
        pool,
        company.into(),
        Job::Attribution,
        (mode, WhenBusy::Wait),
        chrono::Utc::now(),
    )
    .await
    .expect("attribution runs")
    .expect("lock");
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "  {label:<44} {:>8} examined {:>8} changed {:>8.2} s {:>9.0} orders/s",
        report.rows_examined,
        report.rows_changed,
        seconds,
        report.rows_examined as f64 / seconds
    );
}

fn main() {
    let args = args();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let (url, cluster) = fresh_database().await;
        let owner = PgPool::connect(&url).await.expect("owner pool");
        lux::db::migrate(&owner).await.expect("migrate");
        let company = lux::tenancy::create_company(
            &owner,
            lux::tenancy::NewCompany::parse("Bench", "UTC", "EUR", vec![]).unwrap(),
        )
        .await
        .expect("company")
        .company_id
        .uuid();
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0);
        println!(
            "lux attribution benchmark: {cores} cores, database {}, {} orders over {} sessions",
            if cluster.is_some() {
                "embedded (default durability)"
            } else {
                "DATABASE_URL"
            },
            args.orders,
            args.sessions
        );
        let started = Instant::now();
        load(&owner, company, &args).await;
        println!(
            "  data generated in {:.1} s",
            started.elapsed().as_secs_f64()
        );

        let pool = lux::db::connect_app(&url, 4).expect("app pool");
        timed(
            &pool,
            company,
            Mode::Incremental,
            "first run (every order, written)",
        )
        .await;
        timed(
            &pool,
            company,
            Mode::Incremental,
            "incremental, nothing new",
        )
        .await;
        timed(
            &pool,
            company,
            Mode::Full,
            "full recomputation, nothing changed",
        )
        .await;
        late_sessions(&owner, company, 1_000).await;
        timed(
            &pool,
            company,
            Mode::Incremental,
            "incremental after late sessions (1,000 buyers)",
        )
        .await;

        let stats: (i64, i64, i64) = sqlx::query_as(
            "SELECT count(*) FILTER (WHERE attribution_status = 'attributed'),
                    count(*) FILTER (WHERE attribution_status <> 'attributed'),
                    (SELECT count(*) FROM attribution_credits)
             FROM orders",
        )
        .fetch_one(&owner)
        .await
        .expect("stats");
        println!(
            "  orders with a last touch {}, without {}, credit rows {}",
            stats.0, stats.1, stats.2
        );
        pool.close().await;
        owner.close().await;
        drop(cluster);
    });
}
