//! The metrics API: every report's rows exactly, from rollup rows written here by hand (as the
//! owner: the rollups job is not what is tested), for two companies; keys, validation, the
//! reader role, and the OpenAPI document.
//!
//! The clock is fixed at 2026-03-15 23:30 UTC, which is already 2026-03-16 in Paris (the
//! companies' time zone): "today" for the LTV reports is 2026-03-16.

use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

use crate::helpers::{Company, TestApp, answer, create_company, lux_command, test_options};

const NOW: &str = "2026-03-15T23:30:00Z";

/// day, model, channel, source, medium, campaign, creative, currency,
/// orders, gross_minor, refunded_minor, net_minor, new_customers
type RevenueRow<'a> = (
    &'a str,
    &'a str,
    &'a str,
    &'a str,
    &'a str,
    &'a str,
    &'a str,
    &'a str,
    &'a str,
    &'a str,
    &'a str,
    &'a str,
    &'a str,
);

#[rustfmt::skip]
const A_REVENUE: &[RevenueRow] = &[
    // Last touch, January 2026.
    ("2026-01-05", "last_touch", "Paid Search", "google", "cpc", "Winter", "ad-1", "EUR", "1", "10000", "0", "10000", "1"),
    // Two orders, one refunded by 25.00.
    ("2026-01-20", "last_touch", "Paid Search", "google", "cpc", "winter", "ad-2", "EUR", "2", "15000", "2500", "12500", "1"),
    ("2026-01-10", "last_touch", "Organic Search", "google", "organic", "", "", "EUR", "1", "4000", "0", "4000", "1"),
    // The range's last day is in; the days around the range are out.
    ("2026-01-31", "last_touch", "Email", "newsletter", "email", "", "", "EUR", "1", "3000", "0", "3000", "0"),
    ("2026-02-01", "last_touch", "Email", "newsletter", "email", "", "", "EUR", "5", "99999", "0", "99999", "5"),
    ("2025-12-31", "last_touch", "Paid Search", "google", "cpc", "Winter", "ad-1", "EUR", "3", "77777", "0", "77777", "3"),
    ("2026-01-15", "last_touch", "Paid Social", "facebook", "paid_social", "Spring", "", "JPY", "1", "20000", "0", "20000", "1"),
    // Linear: fractional credits (billionths, as the attribution job writes them).
    ("2026-01-05", "linear", "Paid Search", "google", "cpc", "Winter", "ad-1", "EUR", "0.5", "5000", "0", "5000", "0.5"),
    ("2026-01-05", "linear", "Organic Search", "google", "organic", "", "", "EUR", "0.5", "5000", "0", "5000", "0.5"),
    ("2026-01-20", "linear", "Paid Search", "google", "cpc", "winter", "ad-2", "EUR", "0.333333333", "4999.999995", "833.3333325", "4166.6666625", "0.333333333"),
    ("2026-01-20", "linear", "Direct", "", "", "", "", "EUR", "0.666666667", "10000.000005", "1666.6666675", "8333.3333375", "0.666666667"),
];

/// day, platform, campaign, ad_id, channel, currency, spend (major units), impressions, clicks
type SpendRow<'a> = (
    &'a str,
    &'a str,
    &'a str,
    &'a str,
    &'a str,
    &'a str,
    &'a str,
    i64,
    i64,
);

#[rustfmt::skip]
const A_SPEND: &[SpendRow] = &[
    ("2026-01-05", "google_ads", "Winter", "ad-1", "Paid Search", "EUR", "100.004", 1000, 50),
    ("2026-01-06", "google_ads", "Winter", "ad-2", "Paid Search", "EUR", "50.001", 500, 20),
    ("2026-01-07", "google_ads", "Brand", "ad-3", "Paid Search", "EUR", "25.000", 300, 10),
    // The rollup spells the campaign "Spring".
    ("2026-01-15", "meta_ads", "spring", "", "Paid Social", "JPY", "5000", 2000, 40),
    ("2026-01-31", "meta_ads", "Retarget", "ad-9", "Paid Social", "EUR", "10.00", 100, 1),
    ("2026-02-01", "google_ads", "Winter", "ad-1", "Paid Search", "EUR", "999", 9999, 999),
];

#[rustfmt::skip]
const B_REVENUE: &[RevenueRow] = &[
    ("2026-01-05", "last_touch", "Paid Search", "google", "cpc", "Winter", "ad-1", "EUR", "7", "70000", "0", "70000", "7"),
];

#[rustfmt::skip]
const B_SPEND: &[SpendRow] = &[
    ("2026-01-05", "google_ads", "Winter", "ad-1", "Paid Search", "EUR", "700.00", 7000, 700),
];

/// day, funnel, step, event_name, sessions
const A_FUNNEL: &[(&str, &str, i32, &str, i32)] = &[
    ("2026-01-10", "commerce", 1, "page_view", 100),
    ("2026-01-10", "commerce", 2, "add_to_cart", 30),
    ("2026-01-10", "commerce", 3, "begin_checkout", 10),
    ("2026-01-10", "commerce", 4, "purchase", 3),
    ("2026-01-11", "commerce", 1, "page_view", 50),
    ("2026-01-11", "commerce", 2, "add_to_cart", 15),
    ("2026-01-11", "commerce", 3, "begin_checkout", 5),
    ("2026-01-11", "commerce", 4, "purchase", 0),
    ("2026-02-01", "commerce", 1, "page_view", 999),
    ("2026-02-01", "commerce", 2, "add_to_cart", 999),
    ("2026-02-01", "commerce", 3, "begin_checkout", 999),
    ("2026-02-01", "commerce", 4, "purchase", 999),
    ("2026-01-10", "lead", 1, "page_view", 40),
    ("2026-01-10", "lead", 2, "lead_submit", 4),
];

/// day, seconds from first touch to purchase
const A_CONVERSIONS: &[(&str, i64)] = &[
    ("2026-01-03", 0),
    ("2026-01-03", 3599),
    // Exactly on a bound: the upper bucket.
    ("2026-01-04", 3600),
    ("2026-01-05", 86400),
    ("2026-01-06", 100000),
    ("2026-01-07", 700000),
    ("2026-01-31", 2592000),
    ("2026-01-31", 5000000),
    ("2026-02-01", 10),
];

/// day, channel, campaign, sessions, engaged sessions
const A_SESSIONS: &[(&str, &str, &str, i32, i32)] = &[
    ("2026-01-10", "Paid Search", "Winter", 40, 30),
    ("2026-01-11", "Paid Search", "Brand", 20, 5),
    ("2026-01-10", "Direct", "", 60, 20),
    ("2026-01-10", "Email", "", 70, 45),
    ("2026-02-01", "Direct", "", 1000, 1000),
];

/// customer (index into the customers made by the test), day, currency, orders, net_minor
const A_CUSTOMER_DAYS: &[(usize, &str, &str, i32, i64)] = &[
    // c1: first order before January.
    (1, "2025-11-20", "EUR", 1, 3000),
    (1, "2026-01-10", "EUR", 1, 5000),
    // c2: three orders in January.
    (2, "2026-01-05", "EUR", 1, 10000),
    (2, "2026-01-20", "EUR", 2, 12500),
    // c3: first order on January's last day, second in February.
    (3, "2026-01-31", "EUR", 1, 3000),
    (3, "2026-02-10", "EUR", 1, 2001),
    // c4: one order, in yen.
    (4, "2026-01-15", "JPY", 1, 20000),
    // c5: first order 2026-02-14: its 30-day window ends before 2026-03-16, today in Paris
    // (not yet in UTC). A fully refunded order counts, worth 0.
    (5, "2026-02-14", "EUR", 1, 4000),
    (5, "2026-02-20", "EUR", 1, 0),
    (5, "2026-03-15", "EUR", 1, 1000),
    // c6: first order 2026-02-20, window not over.
    (6, "2026-02-20", "EUR", 1, 6000),
];

/// Customers c1 to c6 above.
const A_CUSTOMERS: usize = 6;

async fn seed_revenue(owner: &PgPool, company: Uuid, rows: &[RevenueRow<'_>]) {
    for (
        day,
        model,
        channel,
        source,
        medium,
        campaign,
        creative,
        currency,
        orders,
        gross,
        refunded,
        net,
        new,
    ) in rows
    {
        sqlx::query(
            "INSERT INTO rollup_revenue_daily (company_id, day, model, channel, source, medium,
                 campaign, creative, currency, orders, gross_minor, refunded_minor, net_minor,
                 new_customers)
             VALUES ($1, $2::date, $3, $4, $5, $6, $7, $8, $9, $10::numeric, $11::numeric,
                     $12::numeric, $13::numeric, $14::numeric)",
        )
        .bind(company)
        .bind(day)
        .bind(model)
        .bind(channel)
        .bind(source)
        .bind(medium)
        .bind(campaign)
        .bind(creative)
        .bind(currency)
        .bind(orders)
        .bind(gross)
        .bind(refunded)
        .bind(net)
        .bind(new)
        .execute(owner)
        .await
        .expect("insert rollup_revenue_daily");
    }
}

async fn seed_spend(owner: &PgPool, company: Uuid, rows: &[SpendRow<'_>]) {
    for (day, platform, campaign, ad_id, channel, currency, spend, impressions, clicks) in rows {
        sqlx::query(
            "INSERT INTO ad_spend (company_id, day, platform, campaign, ad_id, channel, currency,
                 spend, impressions, clicks)
             VALUES ($1, $2::date, $3, $4, $5, $6, $7, $8::numeric, $9, $10)",
        )
        .bind(company)
        .bind(day)
        .bind(platform)
        .bind(campaign)
        .bind(ad_id)
        .bind(channel)
        .bind(currency)
        .bind(spend)
        .bind(impressions)
        .bind(clicks)
        .execute(owner)
        .await
        .expect("insert ad_spend");
    }
}

async fn seed_funnel(owner: &PgPool, company: Uuid, rows: &[(&str, &str, i32, &str, i32)]) {
    for (day, funnel, step, event_name, sessions) in rows {
        sqlx::query(
            "INSERT INTO rollup_funnel_daily (company_id, day, funnel, step, event_name, sessions)
             VALUES ($1, $2::date, $3, $4, $5, $6)",
        )
        .bind(company)
        .bind(day)
        .bind(funnel)
        .bind(step)
        .bind(event_name)
        .bind(sessions)
        .execute(owner)
        .await
        .expect("insert rollup_funnel_daily");
    }
}

async fn seed_conversions(owner: &PgPool, company: Uuid, rows: &[(&str, i64)]) {
    for (day, seconds) in rows {
        sqlx::query(
            "INSERT INTO rollup_conversions (company_id, day, order_id, channel, seconds)
             VALUES ($1, $2::date, $3, 'Paid Search', $4)",
        )
        .bind(company)
        .bind(day)
        .bind(Uuid::now_v7())
        .bind(seconds)
        .execute(owner)
        .await
        .expect("insert rollup_conversions");
    }
}

async fn seed_sessions(owner: &PgPool, company: Uuid, rows: &[(&str, &str, &str, i32, i32)]) {
    for (day, channel, campaign, sessions, engaged) in rows {
        sqlx::query(
            "INSERT INTO rollup_sessions_daily (company_id, day, channel, source, medium,
                 campaign, sessions, engaged_sessions, visitors, page_views)
             VALUES ($1, $2::date, $3, '', '', $4, $5, $6, $5, $5 * 2)",
        )
        .bind(company)
        .bind(day)
        .bind(channel)
        .bind(campaign)
        .bind(sessions)
        .bind(engaged)
        .execute(owner)
        .await
        .expect("insert rollup_sessions_daily");
    }
}

async fn seed_customer_days(owner: &PgPool, company: Uuid, rows: &[(usize, &str, &str, i32, i64)]) {
    let customers: Vec<Uuid> = (0..10).map(|_| Uuid::now_v7()).collect();
    for (customer, day, currency, orders, net) in rows {
        sqlx::query(
            "INSERT INTO rollup_customer_days (company_id, day, customer_id, currency, orders,
                 net_minor)
             VALUES ($1, $2::date, $3, $4, $5, $6)",
        )
        .bind(company)
        .bind(day)
        .bind(customers[*customer])
        .bind(currency)
        .bind(orders)
        .bind(net)
        .execute(owner)
        .await
        .expect("insert rollup_customer_days");
    }
    // Every rollup derived from these rows and the conversions (per customer, per cohort,
    // conversion-time bins), by the rollups job's own code.
    lux::rollups::rederive(owner, company)
        .await
        .expect("derive the rollups of the hand-made rows");
}

/// The service with the clock at [`NOW`], company A's rollups, and company B (also in
/// Paris, EUR) with rollups of its own in every table.
async fn spawn_with_rollups() -> (TestApp, Company) {
    let now: DateTime<Utc> = NOW.parse().unwrap();
    let app = TestApp::spawn_with(lux::server::ServeOptions {
        clock: lux::clock::Clock::Fixed(now),
        ..test_options()
    })
    .await;
    let a = app.company.id;
    seed_revenue(&app.owner, a, A_REVENUE).await;
    seed_spend(&app.owner, a, A_SPEND).await;
    seed_funnel(&app.owner, a, A_FUNNEL).await;
    seed_conversions(&app.owner, a, A_CONVERSIONS).await;
    seed_sessions(&app.owner, a, A_SESSIONS).await;
    seed_customer_days(&app.owner, a, A_CUSTOMER_DAYS).await;

    let b = create_company(&app.owner, "Beta").await;
    seed_revenue(&app.owner, b.id, B_REVENUE).await;
    seed_spend(&app.owner, b.id, B_SPEND).await;
    seed_funnel(
        &app.owner,
        b.id,
        &[("2026-01-10", "b_only", 1, "page_view", 9)],
    )
    .await;
    seed_conversions(&app.owner, b.id, &[("2026-01-10", 42)]).await;
    seed_sessions(
        &app.owner,
        b.id,
        &[("2026-01-10", "Paid Search", "Winter", 9, 9)],
    )
    .await;
    seed_customer_days(&app.owner, b.id, &[(1, "2026-01-10", "EUR", 1, 7000)]).await;
    (app, b)
}

/// GET a report path (`/api/v1/reports/...`) with `key` as the bearer token.
async fn get_report(app: &TestApp, key: &str, path: &str) -> (StatusCode, Value) {
    let response = app
        .client
        .get(format!("{}{path}", app.base))
        .bearer_auth(key)
        .send()
        .await
        .expect("request");
    answer(response).await
}

/// A report of company A that must succeed; returns its body.
async fn report_ok(app: &TestApp, path: &str) -> Value {
    let (status, body) = get_report(app, &app.company.secret_key, path).await;
    assert_eq!(status, 200, "{path}: {body}");
    body
}

#[tokio::test]
async fn revenue_by_channel_sums_each_channel_and_currency_under_the_model() {
    let (app, _) = spawn_with_rollups().await;
    let body = report_ok(
        &app,
        "/api/v1/reports/revenue_by_channel?from=2026-01-01&to=2026-01-31",
    )
    .await;
    assert_eq!(body["report"], "revenue_by_channel");
    assert_eq!(body["from"], "2026-01-01");
    assert_eq!(body["to"], "2026-01-31");
    // Default model last_touch; EUR channels by revenue, then JPY.
    assert_eq!(
        body["rows"],
        json!([
            {"channel": "Paid Search", "currency": "EUR", "orders": "3.00", "gross": "250.00",
             "refunds": "25.00", "revenue": "225.00", "aov": "75.00"},
            {"channel": "Organic Search", "currency": "EUR", "orders": "1.00", "gross": "40.00",
             "refunds": "0.00", "revenue": "40.00", "aov": "40.00"},
            {"channel": "Email", "currency": "EUR", "orders": "1.00", "gross": "30.00",
             "refunds": "0.00", "revenue": "30.00", "aov": "30.00"},
            {"channel": "Paid Social", "currency": "JPY", "orders": "1.00", "gross": "20000",
             "refunds": "0", "revenue": "20000", "aov": "20000"},
        ])
    );

    // Linear: sums of fractional credits, rounded once at the end. Paid Search:
    // gross 5000 + 4999.999995 → 10000; refunds 833.3333325 → 833; net 9166.6666625 → 9167;
    // AOV 9166.6666625 ÷ 0.833333333 = 10999.9999994 → 11000.
    let body = report_ok(
        &app,
        "/api/v1/reports/revenue_by_channel?from=2026-01-01&to=2026-01-31&model=linear",
    )
    .await;
    assert_eq!(
        body["rows"],
        json!([
            {"channel": "Paid Search", "currency": "EUR", "orders": "0.83", "gross": "100.00",
             "refunds": "8.33", "revenue": "91.67", "aov": "110.00"},
            {"channel": "Direct", "currency": "EUR", "orders": "0.67", "gross": "100.00",
             "refunds": "16.67", "revenue": "83.33", "aov": "125.00"},
            {"channel": "Organic Search", "currency": "EUR", "orders": "0.50", "gross": "50.00",
             "refunds": "0.00", "revenue": "50.00", "aov": "100.00"},
        ])
    );

    // A range with nothing: no rows.
    let body = report_ok(
        &app,
        "/api/v1/reports/revenue_by_channel?from=2026-03-01&to=2026-03-05&model=first_touch",
    )
    .await;
    assert_eq!(body["rows"], json!([]));
    app.stop().await;
}

#[tokio::test]
async fn cac_divides_spend_by_new_customers_per_channel_then_blended() {
    let (app, _) = spawn_with_rollups().await;
    // Paid Search EUR spend: 100.004 + 50.001 + 25.000 = 175.005 → 17500.5 minor → "175.01";
    // CAC 17500.5 ÷ 2 = 8750.25 → "87.50". Blended EUR: 18500.5 ÷ 4 new customers of every
    // channel (Paid Search 2, Organic 1, Paid Social 1) = 4625.125 → "46.25".
    let body = report_ok(&app, "/api/v1/reports/cac?from=2026-01-01&to=2026-01-31").await;
    assert_eq!(
        body["rows"],
        json!([
            {"channel": "Paid Search", "currency": "EUR", "spend": "175.01",
             "new_customers": "2.00", "cac": "87.50"},
            {"channel": "Paid Social", "currency": "EUR", "spend": "10.00",
             "new_customers": "1.00", "cac": "10.00"},
            {"channel": "Paid Social", "currency": "JPY", "spend": "5000",
             "new_customers": "1.00", "cac": "5000"},
            {"channel": "All", "currency": "EUR", "spend": "185.01",
             "new_customers": "4.00", "cac": "46.25"},
            {"channel": "All", "currency": "JPY", "spend": "5000",
             "new_customers": "4.00", "cac": "1250"},
        ])
    );

    // Linear: Paid Search 0.5 + 0.333333333 new customers, 17500.5 ÷ 0.833333333 =
    // 21000.6000084 → "210.01"; no Paid Social credit: CAC null. All: 2 new customers.
    let body = report_ok(
        &app,
        "/api/v1/reports/cac?from=2026-01-01&to=2026-01-31&model=linear",
    )
    .await;
    assert_eq!(
        body["rows"],
        json!([
            {"channel": "Paid Search", "currency": "EUR", "spend": "175.01",
             "new_customers": "0.83", "cac": "210.01"},
            {"channel": "Paid Social", "currency": "EUR", "spend": "10.00",
             "new_customers": "0.00", "cac": null},
            {"channel": "Paid Social", "currency": "JPY", "spend": "5000",
             "new_customers": "0.00", "cac": null},
            {"channel": "All", "currency": "EUR", "spend": "185.01",
             "new_customers": "2.00", "cac": "92.50"},
            {"channel": "All", "currency": "JPY", "spend": "5000",
             "new_customers": "2.00", "cac": "2500"},
        ])
    );
    app.stop().await;
}

#[tokio::test]
async fn roas_matches_spend_to_revenue_by_channel_campaign_and_creative() {
    let (app, _) = spawn_with_rollups().await;
    // 22500 ÷ 17500.5 = 1.28568 → 1.2857.
    let body = report_ok(&app, "/api/v1/reports/roas?from=2026-01-01&to=2026-01-31").await;
    assert_eq!(
        body["rows"],
        json!([
            {"channel": "Paid Search", "currency": "EUR", "spend": "175.01",
             "impressions": 1800, "clicks": 80, "revenue": "225.00", "roas": 1.2857},
            {"channel": "Paid Social", "currency": "EUR", "spend": "10.00",
             "impressions": 100, "clicks": 1, "revenue": "0.00", "roas": 0.0},
            {"channel": "Paid Social", "currency": "JPY", "spend": "5000",
             "impressions": 2000, "clicks": 40, "revenue": "20000", "roas": 4.0},
        ])
    );

    // Campaigns match whatever their case ("Winter" and "winter"; "spring" and "Spring"):
    // 22500 ÷ 15000.5 = 1.49995000… → 1.5.
    let body = report_ok(
        &app,
        "/api/v1/reports/roas?from=2026-01-01&to=2026-01-31&by=campaign",
    )
    .await;
    assert_eq!(
        body["rows"],
        json!([
            {"channel": "Paid Search", "campaign": "Brand", "currency": "EUR", "spend": "25.00",
             "impressions": 300, "clicks": 10, "revenue": "0.00", "roas": 0.0},
            {"channel": "Paid Search", "campaign": "Winter", "currency": "EUR", "spend": "150.01",
             "impressions": 1500, "clicks": 70, "revenue": "225.00", "roas": 1.5},
            {"channel": "Paid Social", "campaign": "Retarget", "currency": "EUR", "spend": "10.00",
             "impressions": 100, "clicks": 1, "revenue": "0.00", "roas": 0.0},
            {"channel": "Paid Social", "campaign": "spring", "currency": "JPY", "spend": "5000",
             "impressions": 2000, "clicks": 40, "revenue": "20000", "roas": 4.0},
        ])
    );

    // Creative = the ad id. 10000 ÷ 10000.4 = 0.99996 → 1.0; 12500 ÷ 5000.1 = 2.49995… → 2.5.
    let body = report_ok(
        &app,
        "/api/v1/reports/roas?from=2026-01-01&to=2026-01-31&by=creative&model=last_touch",
    )
    .await;
    assert_eq!(
        body["rows"],
        json!([
            {"channel": "Paid Search", "campaign": "Brand", "creative": "ad-3", "currency": "EUR",
             "spend": "25.00", "impressions": 300, "clicks": 10, "revenue": "0.00", "roas": 0.0},
            {"channel": "Paid Search", "campaign": "Winter", "creative": "ad-1", "currency": "EUR",
             "spend": "100.00", "impressions": 1000, "clicks": 50, "revenue": "100.00", "roas": 1.0},
            {"channel": "Paid Search", "campaign": "Winter", "creative": "ad-2", "currency": "EUR",
             "spend": "50.00", "impressions": 500, "clicks": 20, "revenue": "125.00", "roas": 2.5},
            {"channel": "Paid Social", "campaign": "Retarget", "creative": "ad-9", "currency": "EUR",
             "spend": "10.00", "impressions": 100, "clicks": 1, "revenue": "0.00", "roas": 0.0},
            {"channel": "Paid Social", "campaign": "spring", "creative": "", "currency": "JPY",
             "spend": "5000", "impressions": 2000, "clicks": 40, "revenue": "20000", "roas": 4.0},
        ])
    );
    app.stop().await;
}

#[tokio::test]
async fn funnel_reports_conversion_and_drop_off_per_step_and_its_steps_at_zero_over_an_empty_range()
{
    let (app, _) = spawn_with_rollups().await;
    // Steps over two days: 150, 45, 15, 3 sessions.
    let body = report_ok(&app, "/api/v1/reports/funnel?from=2026-01-01&to=2026-01-31").await;
    assert_eq!(
        body["rows"],
        json!([
            {"step": 1, "event_name": "page_view", "sessions": 150,
             "conversion_from_previous": 1.0, "conversion_from_start": 1.0,
             "drop_off": 0, "drop_off_rate": 0.0},
            {"step": 2, "event_name": "add_to_cart", "sessions": 45,
             "conversion_from_previous": 0.3, "conversion_from_start": 0.3,
             "drop_off": 105, "drop_off_rate": 0.7},
            {"step": 3, "event_name": "begin_checkout", "sessions": 15,
             "conversion_from_previous": 0.3333, "conversion_from_start": 0.1,
             "drop_off": 30, "drop_off_rate": 0.6667},
            {"step": 4, "event_name": "purchase", "sessions": 3,
             "conversion_from_previous": 0.2, "conversion_from_start": 0.02,
             "drop_off": 12, "drop_off_rate": 0.8},
        ])
    );
    let body = report_ok(
        &app,
        "/api/v1/reports/funnel?from=2026-01-10&to=2026-01-10&funnel=lead",
    )
    .await;
    assert_eq!(
        body["rows"],
        json!([
            {"step": 1, "event_name": "page_view", "sessions": 40,
             "conversion_from_previous": 1.0, "conversion_from_start": 1.0,
             "drop_off": 0, "drop_off_rate": 0.0},
            {"step": 2, "event_name": "lead_submit", "sessions": 4,
             "conversion_from_previous": 0.1, "conversion_from_start": 0.1,
             "drop_off": 36, "drop_off_rate": 0.9},
        ])
    );

    // Company B's funnel is not among A's.
    let (status, body) = get_report(
        &app,
        &app.company.secret_key,
        "/api/v1/reports/funnel?from=2026-01-01&to=2026-01-31&funnel=b_only",
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        body["error"],
        "unknown funnel \"b_only\"; this company's funnels: commerce, lead (define one with \
         `lux company rollups COMPANY_ID --funnel NAME=event,event,...`)"
    );
    // A range without sessions answers the steps at zero, like every other report.
    let body = report_ok(&app, "/api/v1/reports/funnel?from=2026-03-01&to=2026-03-05").await;
    assert_eq!(
        body["rows"],
        json!([
            {"step": 1, "event_name": "page_view", "sessions": 0, "conversion_from_previous": null,
             "conversion_from_start": null, "drop_off": 0, "drop_off_rate": null},
            {"step": 2, "event_name": "add_to_cart", "sessions": 0, "conversion_from_previous": null,
             "conversion_from_start": null, "drop_off": 0, "drop_off_rate": null},
            {"step": 3, "event_name": "begin_checkout", "sessions": 0, "conversion_from_previous": null,
             "conversion_from_start": null, "drop_off": 0, "drop_off_rate": null},
            {"step": 4, "event_name": "purchase", "sessions": 0, "conversion_from_previous": null,
             "conversion_from_start": null, "drop_off": 0, "drop_off_rate": null},
        ])
    );
    app.stop().await;
}

#[tokio::test]
async fn time_to_conversion_has_nearest_rank_percentiles_and_bounds_go_to_the_upper_bucket() {
    let (app, _) = spawn_with_rollups().await;
    // Sorted: 0, 3599, 3600, 86400, 100000, 700000, 2592000, 5000000. Nearest rank:
    // median = 4th, p75 = 6th, p90 = 8th (⌈7.2⌉).
    let body = report_ok(
        &app,
        "/api/v1/reports/time_to_conversion?from=2026-01-01&to=2026-01-31",
    )
    .await;
    assert_eq!(
        body["summary"],
        json!({"orders": 8, "median_seconds": 86400, "p75_seconds": 700000,
               "p90_seconds": 5000000})
    );
    assert_eq!(
        body["rows"],
        json!([
            {"bucket": "0-1h", "min_seconds": 0, "max_seconds": 3600, "orders": 2, "share": 0.25},
            {"bucket": "1h-24h", "min_seconds": 3600, "max_seconds": 86400, "orders": 1, "share": 0.125},
            {"bucket": "1d-3d", "min_seconds": 86400, "max_seconds": 259200, "orders": 2, "share": 0.25},
            {"bucket": "3d-7d", "min_seconds": 259200, "max_seconds": 604800, "orders": 0, "share": 0.0},
            {"bucket": "7d-14d", "min_seconds": 604800, "max_seconds": 1209600, "orders": 1, "share": 0.125},
            {"bucket": "14d-30d", "min_seconds": 1209600, "max_seconds": 2592000, "orders": 0, "share": 0.0},
            {"bucket": "30d+", "min_seconds": 2592000, "max_seconds": null, "orders": 2, "share": 0.25},
        ])
    );
    // No orders: null percentiles and shares.
    let body = report_ok(
        &app,
        "/api/v1/reports/time_to_conversion?from=2026-03-01&to=2026-03-05",
    )
    .await;
    assert_eq!(
        body["summary"],
        json!({"orders": 0, "median_seconds": null, "p75_seconds": null, "p90_seconds": null})
    );
    assert_eq!(body["rows"].as_array().unwrap().len(), 7);
    assert!(
        body["rows"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["orders"] == 0 && r["share"].is_null())
    );
    app.stop().await;
}

#[tokio::test]
async fn qualified_sessions_rate_per_channel_by_sessions_then_the_total() {
    let (app, _) = spawn_with_rollups().await;
    let body = report_ok(
        &app,
        "/api/v1/reports/qualified_sessions?from=2026-01-01&to=2026-01-31",
    )
    .await;
    // Direct and Paid Search tie on 60 sessions: by channel.
    assert_eq!(
        body["rows"],
        json!([
            {"channel": "Email", "sessions": 70, "engaged_sessions": 45, "rate": 0.6429},
            {"channel": "Direct", "sessions": 60, "engaged_sessions": 20, "rate": 0.3333},
            {"channel": "Paid Search", "sessions": 60, "engaged_sessions": 35, "rate": 0.5833},
            {"channel": "All", "sessions": 190, "engaged_sessions": 100, "rate": 0.5263},
        ])
    );
    let body = report_ok(
        &app,
        "/api/v1/reports/qualified_sessions?from=2026-03-01&to=2026-03-05",
    )
    .await;
    assert_eq!(
        body["rows"],
        json!([{"channel": "All", "sessions": 0, "engaged_sessions": 0, "rate": null}])
    );
    app.stop().await;
}

#[tokio::test]
async fn repeat_purchase_over_the_range_and_per_first_order_month() {
    let (app, _) = spawn_with_rollups().await;
    // In range: c1 (2 orders), c2 (3), c3 (1: its second is in February), c4 (1).
    // Cohorts by first order: 2025-11 = c1 (2 orders); 2026-01 = c2, c3 (2 orders in the
    // whole table), c4.
    let body = report_ok(
        &app,
        "/api/v1/reports/repeat_purchase?from=2025-11-01&to=2026-01-31",
    )
    .await;
    assert_eq!(
        body["rows"],
        json!([
            {"cohort": "all", "customers": 4, "repeat_customers": 2, "rate": 0.5},
            {"cohort": "2025-11", "customers": 1, "repeat_customers": 1, "rate": 1.0},
            {"cohort": "2026-01", "customers": 3, "repeat_customers": 2, "rate": 0.6667},
        ])
    );
    // January alone: c1's first order is before it, so it is in "all" but in no cohort.
    let body = report_ok(
        &app,
        "/api/v1/reports/repeat_purchase?from=2026-01-01&to=2026-01-31",
    )
    .await;
    assert_eq!(
        body["rows"],
        json!([
            {"cohort": "all", "customers": 4, "repeat_customers": 1, "rate": 0.25},
            {"cohort": "2026-01", "customers": 3, "repeat_customers": 2, "rate": 0.6667},
        ])
    );
    app.stop().await;
}

#[tokio::test]
async fn ltv_rolling_counts_only_customers_whose_window_has_passed_in_the_company_time_zone() {
    let (app, _) = spawn_with_rollups().await;
    // Today is 2026-03-16 in Paris. 30 days: c1 (3000), c2 (22500), c3 (3000 + 2001),
    // c5 (4000 + 0 + 1000, first order 2026-02-14: matured today, not yet in UTC) — 35501
    // over 4 = 8875.25 → "88.75"; c6 is too recent. JPY: c4. 90 days: only c1 (3000 + 5000).
    // 180 and 365 days: nobody yet.
    let body = report_ok(
        &app,
        "/api/v1/reports/ltv_rolling?from=2025-11-01&to=2026-02-28",
    )
    .await;
    assert_eq!(
        body["rows"],
        json!([
            {"window_days": 30, "currency": "EUR", "customers": 4, "revenue": "355.01", "ltv": "88.75"},
            {"window_days": 30, "currency": "JPY", "customers": 1, "revenue": "20000", "ltv": "20000"},
            {"window_days": 90, "currency": "EUR", "customers": 1, "revenue": "80.00", "ltv": "80.00"},
            {"window_days": 90, "currency": "JPY", "customers": 0, "revenue": "0", "ltv": null},
            {"window_days": 180, "currency": "EUR", "customers": 0, "revenue": "0.00", "ltv": null},
            {"window_days": 180, "currency": "JPY", "customers": 0, "revenue": "0", "ltv": null},
            {"window_days": 365, "currency": "EUR", "customers": 0, "revenue": "0.00", "ltv": null},
            {"window_days": 365, "currency": "JPY", "customers": 0, "revenue": "0", "ltv": null},
        ])
    );
    app.stop().await;
}

#[tokio::test]
async fn ltv_cohorts_accumulate_revenue_month_by_month_until_the_current_month() {
    let (app, _) = spawn_with_rollups().await;
    // The current month (Paris) is 2026-03.
    let body = report_ok(
        &app,
        "/api/v1/reports/ltv_cohorts?from=2025-11-01&to=2026-02-28",
    )
    .await;
    let row = |cohort: &str, k: i32, currency: &str, customers: i64, revenue: &str, ltv: &str| {
        json!({"cohort": cohort, "months_since": k, "currency": currency,
               "customers": customers, "revenue": revenue, "ltv": ltv})
    };
    assert_eq!(
        body["rows"],
        json!([
            // c1: 3000 in November, 5000 in January.
            row("2025-11", 0, "EUR", 1, "30.00", "30.00"),
            row("2025-11", 1, "EUR", 1, "30.00", "30.00"),
            row("2025-11", 2, "EUR", 1, "80.00", "80.00"),
            row("2025-11", 3, "EUR", 1, "80.00", "80.00"),
            row("2025-11", 4, "EUR", 1, "80.00", "80.00"),
            // c2 and c3: 25500 in January, 2001 more in February; 27501 ÷ 2 = 13750.5 → 13751.
            row("2026-01", 0, "EUR", 2, "255.00", "127.50"),
            row("2026-01", 0, "JPY", 1, "20000", "20000"),
            row("2026-01", 1, "EUR", 2, "275.01", "137.51"),
            row("2026-01", 1, "JPY", 1, "20000", "20000"),
            row("2026-01", 2, "EUR", 2, "275.01", "137.51"),
            row("2026-01", 2, "JPY", 1, "20000", "20000"),
            // c5 and c6: 10000 in February, 1000 more in March (to date).
            row("2026-02", 0, "EUR", 2, "100.00", "50.00"),
            row("2026-02", 1, "EUR", 2, "110.00", "55.00"),
        ])
    );
    app.stop().await;
}

#[tokio::test]
async fn a_company_key_never_reads_another_company_s_rows() {
    let (app, b) = spawn_with_rollups().await;
    let jan = "from=2026-01-01&to=2026-01-31";
    let b_rows = |report: String| {
        let app = &app;
        let key = b.secret_key.clone();
        async move {
            let (status, body) = get_report(app, &key, &report).await;
            assert_eq!(status, 200, "{report}: {body}");
            body["rows"].clone()
        }
    };
    assert_eq!(
        b_rows(format!("/api/v1/reports/revenue_by_channel?{jan}")).await,
        json!([{"channel": "Paid Search", "currency": "EUR", "orders": "7.00",
                "gross": "700.00", "refunds": "0.00", "revenue": "700.00", "aov": "100.00"}])
    );
    assert_eq!(
        b_rows(format!("/api/v1/reports/cac?{jan}")).await,
        json!([
            {"channel": "Paid Search", "currency": "EUR", "spend": "700.00",
             "new_customers": "7.00", "cac": "100.00"},
            {"channel": "All", "currency": "EUR", "spend": "700.00",
             "new_customers": "7.00", "cac": "100.00"},
        ])
    );
    assert_eq!(
        b_rows(format!("/api/v1/reports/roas?{jan}")).await,
        json!([{"channel": "Paid Search", "currency": "EUR", "spend": "700.00",
                "impressions": 7000, "clicks": 700, "revenue": "700.00", "roas": 1.0}])
    );
    assert_eq!(
        b_rows(format!("/api/v1/reports/funnel?{jan}&funnel=b_only")).await,
        json!([{"step": 1, "event_name": "page_view", "sessions": 9,
                "conversion_from_previous": 1.0, "conversion_from_start": 1.0,
                "drop_off": 0, "drop_off_rate": 0.0}])
    );
    // B's commerce funnel had no sessions: its steps at zero, none of A's sessions.
    let rows = b_rows(format!("/api/v1/reports/funnel?{jan}")).await;
    assert_eq!(rows.as_array().unwrap().len(), 4, "{rows}");
    assert!(
        rows.as_array().unwrap().iter().all(|r| r["sessions"] == 0),
        "{rows}"
    );
    let (_, body) = get_report(
        &app,
        &b.secret_key,
        &format!("/api/v1/reports/time_to_conversion?{jan}"),
    )
    .await;
    assert_eq!(
        body["summary"],
        json!({"orders": 1, "median_seconds": 42, "p75_seconds": 42, "p90_seconds": 42})
    );
    assert_eq!(
        b_rows(format!("/api/v1/reports/qualified_sessions?{jan}")).await,
        json!([
            {"channel": "Paid Search", "sessions": 9, "engaged_sessions": 9, "rate": 1.0},
            {"channel": "All", "sessions": 9, "engaged_sessions": 9, "rate": 1.0},
        ])
    );
    assert_eq!(
        b_rows(format!("/api/v1/reports/repeat_purchase?{jan}")).await,
        json!([
            {"cohort": "all", "customers": 1, "repeat_customers": 0, "rate": 0.0},
            {"cohort": "2026-01", "customers": 1, "repeat_customers": 0, "rate": 0.0},
        ])
    );
    let rolling = b_rows(format!("/api/v1/reports/ltv_rolling?{jan}")).await;
    assert_eq!(
        rolling[0],
        json!({"window_days": 30, "currency": "EUR", "customers": 1, "revenue": "70.00", "ltv": "70.00"})
    );
    assert_eq!(rolling.as_array().unwrap().len(), 4, "{rolling}");
    let cohorts = b_rows(format!("/api/v1/reports/ltv_cohorts?{jan}")).await;
    assert_eq!(cohorts.as_array().unwrap().len(), 3, "{cohorts}");
    assert!(
        cohorts
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["customers"] == 1 && r["revenue"] == "70.00"),
        "{cohorts}"
    );
    app.stop().await;
}

#[tokio::test]
async fn reports_need_the_secret_key_in_the_authorization_header() {
    let app = TestApp::spawn().await;
    let path = "/api/v1/reports/cac?from=2026-01-01&to=2026-01-31";
    let url = format!("{}{path}", app.base);

    let (status, body) = answer(app.client.get(&url).send().await.unwrap()).await;
    assert_eq!(status, 401);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("Authorization: Bearer SECRET_KEY"),
        "{body}"
    );
    // The write key, in the header or in the URL.
    let (status, body) = get_report(&app, &app.company.write_key, path).await;
    assert_eq!(status, 403);
    assert!(
        body["error"].as_str().unwrap().contains("secret key"),
        "{body}"
    );
    let (status, body) = answer(
        app.client
            .get(format!("{url}&key={}", app.company.write_key))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 401, "{body}");
    let (status, body) = get_report(&app, "lux_sk_not_a_key", path).await;
    assert_eq!(status, 401);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("unknown or revoked"),
        "{body}"
    );
    let (status, body) = answer(
        app.client
            .get(&url)
            .header("authorization", format!("Basic {}", app.company.secret_key))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 401);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("Bearer SECRET_KEY"),
        "{body}"
    );
    // And the secret key works.
    let (status, body) = get_report(&app, &app.company.secret_key, path).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["rows"], json!([]));
    app.stop().await;
}

#[tokio::test]
async fn bad_report_requests_get_a_400_naming_the_problem() {
    let app = TestApp::spawn().await;
    let cases: &[(&str, &str)] = &[
        (
            "/api/v1/reports/cac?to=2026-01-31",
            "missing `from`: add ?from=YYYY-MM-DD&to=YYYY-MM-DD (company-local days, both included)",
        ),
        (
            "/api/v1/reports/cac?from=2026-01-01",
            "missing `to`: add ?from=YYYY-MM-DD&to=YYYY-MM-DD (company-local days, both included)",
        ),
        (
            "/api/v1/reports/cac?from=2026-01-01&to=31-01-2026",
            "`to` must be a date as YYYY-MM-DD, got \"31-01-2026\"",
        ),
        (
            "/api/v1/reports/cac?from=2026-02-01&to=2026-01-31",
            "`from` (2026-02-01) is after `to` (2026-01-31)",
        ),
        (
            "/api/v1/reports/cac?from=2023-01-01&to=2026-01-05",
            "the range 2023-01-01 to 2026-01-05 is 1101 days; at most 1100 days per request",
        ),
        (
            "/api/v1/reports/revenue?from=2026-01-01&to=2026-01-31",
            "unknown report \"revenue\"; known reports: revenue_by_channel, cac, roas, funnel, \
             time_to_conversion, qualified_sessions, repeat_purchase, ltv_rolling, ltv_cohorts, \
             messages, creatives, creative_decay, creative_fatigue, experiments, ops_velocity",
        ),
        (
            "/api/v1/reports/revenue_by_channel?from=2026-01-01&to=2026-01-31&model=data_driven",
            "unknown model \"data_driven\"; models: first_touch, last_touch, linear, time_decay, \
             position_based, last_non_direct",
        ),
        (
            "/api/v1/reports/roas?from=2026-01-01&to=2026-01-31&by=ad_group",
            "unknown `by` \"ad_group\"; roas is grouped by one of: channel, campaign, creative",
        ),
        (
            "/api/v1/reports/funnel?from=2026-01-01&to=2026-01-31&funnel=nope",
            "unknown funnel \"nope\"; this company's funnels: commerce, lead (define one with \
             `lux company rollups COMPANY_ID --funnel NAME=event,event,...`)",
        ),
        (
            "/api/v1/reports/qualified_sessions?from=2026-01-01&to=2026-01-31&model=linear",
            "report qualified_sessions does not take `model`; it takes: from, to",
        ),
        (
            "/api/v1/reports/experiments?from=2026-01-01&to=2026-01-31&experiment=he%20ro",
            "`experiment`: experiment key \"he ro\" is not a key: 1 to 64 of letters, digits and \
             _ . : - starting with a letter or digit (e.g. hero)",
        ),
        (
            "/api/v1/reports/ops_velocity?from=2026-01-01&to=2026-01-31&experiment=hero",
            "report ops_velocity does not take `experiment`; it takes: from, to",
        ),
    ];
    for (path, expected) in cases {
        let (status, body) = get_report(&app, &app.company.secret_key, path).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert_eq!(body["error"], *expected, "{path}");
    }
    app.stop().await;
}

#[tokio::test]
async fn lux_reader_cannot_read_raw_events_sessions_or_orders_but_reads_the_rollups() {
    let (app, b) = spawn_with_rollups().await;
    // The pool the reports use.
    let reader = lux::db::connect_reader(&app.db.url, 2).unwrap();
    for table in ["raw_events", "sessions", "orders", "companies", "api_keys"] {
        let mut tx = lux::db::begin_for_company(&reader, app.company.id)
            .await
            .unwrap();
        let error = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT 1 FROM {table} LIMIT 1"
        )))
        .fetch_optional(&mut *tx)
        .await
        .expect_err(table);
        let code = error
            .as_database_error()
            .and_then(|e| e.code())
            .map(|c| c.into_owned());
        assert_eq!(code.as_deref(), Some("42501"), "{table}: {error}");
        assert!(error.to_string().contains("permission denied"), "{error}");
    }
    // Each rollup table: readable, and only the transaction's company's rows.
    for (table, a_rows, b_rows) in [
        ("ad_spend", A_SPEND.len(), 1),
        ("rollup_sessions_daily", A_SESSIONS.len(), 1),
        ("rollup_funnel_daily", A_FUNNEL.len(), 1),
        ("rollup_revenue_daily", A_REVENUE.len(), 1),
        ("rollup_conversions", A_CONVERSIONS.len(), 1),
        ("rollup_customer_days", A_CUSTOMER_DAYS.len(), 1),
        ("rollup_customers", A_CUSTOMERS, 1),
        ("rollup_customer_windows", A_CUSTOMERS, 1),
        // Derived from the rows above (see `seed_customer_days`): 9 conversions in 9 bins;
        // one order day per customer day (one currency each); 11 order days by previous day,
        // and c5's 15 March by its day before the previous too; six cohorts (first order
        // days), one in yen; nine cohort months.
        ("rollup_conversion_bins", 9, 1),
        ("rollup_customer_order_days", A_CUSTOMER_DAYS.len(), 1),
        ("rollup_repeat_days", 12, 1),
        ("rollup_cohort_days", 6, 1),
        ("rollup_cohort_windows", 6, 1),
        ("rollup_cohort_months", 9, 1),
    ] {
        for (company, expected) in [(app.company.id, a_rows), (b.id, b_rows)] {
            let mut tx = lux::db::begin_for_company(&reader, company).await.unwrap();
            let seen: i64 =
                sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
                    .fetch_one(&mut *tx)
                    .await
                    .unwrap_or_else(|e| panic!("{table}: {e}"));
            assert_eq!(seen, expected as i64, "{table} for {company}");
        }
        // Without a company: nothing.
        let mut tx = reader.begin().await.unwrap();
        let seen: i64 =
            sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
                .fetch_one(&mut *tx)
                .await
                .unwrap();
        assert_eq!(seen, 0, "{table} without a company");
    }
    let role: String = sqlx::query_scalar("SELECT current_user::text")
        .fetch_one(&reader)
        .await
        .unwrap();
    assert_eq!(role, "lux_reader");
    reader.close().await;
    app.stop().await;
}

#[tokio::test]
async fn the_openapi_document_describes_the_reports_endpoint() {
    let app = TestApp::spawn().await;
    let (status, doc) = answer(app.get("/api/openapi.json").await).await;
    assert_eq!(status, 200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."), "{doc}");
    assert_eq!(doc["info"]["title"], "LUX Analytics API");
    let get = &doc["paths"]["/api/v1/reports/{report}"]["get"];
    let names: Vec<&str> = get["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "report",
            "from",
            "to",
            "model",
            "by",
            "funnel",
            "channel",
            "group",
            "creative_id",
            "experiment"
        ]
    );
    assert_eq!(
        get["parameters"][0]["schema"]["enum"],
        json!([
            "revenue_by_channel",
            "cac",
            "roas",
            "funnel",
            "time_to_conversion",
            "qualified_sessions",
            "repeat_purchase",
            "ltv_rolling",
            "ltv_cohorts",
            "messages",
            "creatives",
            "creative_decay",
            "creative_fatigue",
            "experiments",
            "ops_velocity"
        ])
    );
    assert_eq!(get["parameters"][3]["schema"]["default"], "last_touch");
    assert_eq!(get["security"], json!([{"secretKey": []}]));
    assert_eq!(
        doc["components"]["securitySchemes"]["secretKey"]["scheme"],
        "bearer"
    );
    for code in ["200", "400", "401", "403"] {
        assert!(get["responses"][code].is_object(), "{code}");
    }
    for path in [
        "/e",
        "/healthz",
        "/readyz",
        "/api/v1/messages",
        "/api/v1/links",
        "/api/v1/creatives",
        "/api/v1/experiments",
        "/api/v1/experiments/{key}/conclude",
        "/r/{code}",
        "/webhooks/sendgrid/{company_id}",
        "/webhooks/ses/{company_id}",
    ] {
        assert!(doc["paths"][path].is_object(), "{path}");
    }
    app.stop().await;
}

/// `lux report` runs what the API runs: the same rows as JSON, and a table or CSV a person can
/// read; a `--company` that is not a company id says where to find one.
#[tokio::test]
async fn lux_report_prints_the_api_numbers_as_a_table_csv_or_json() {
    let (app, _) = spawn_with_rollups().await;
    let company = app.company.id.to_string();
    let url = app.db.url.clone();
    let args = |format: &'static str| {
        vec![
            "report".to_string(),
            "revenue_by_channel".into(),
            "--company".into(),
            company.clone(),
            "--from".into(),
            "2026-01-01".into(),
            "--to".into(),
            "2026-01-31".into(),
            "--format".into(),
            format.into(),
        ]
    };
    let run = |args: Vec<String>| {
        let url = url.clone();
        async move {
            tokio::task::spawn_blocking(move || {
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                lux_command(&url, &args)
            })
            .await
            .unwrap()
        }
    };
    let api = report_ok(
        &app,
        "/api/v1/reports/revenue_by_channel?from=2026-01-01&to=2026-01-31",
    )
    .await;

    let json_out = run(args("json")).await;
    assert!(json_out.status.success(), "{json_out:?}");
    let printed: Value = serde_json::from_slice(&json_out.stdout).unwrap();
    assert_eq!(printed["rows"], api["rows"]);

    let table = String::from_utf8(run(args("table")).await.stdout).unwrap();
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines[0], "revenue_by_channel from 2026-01-01 to 2026-01-31");
    assert!(
        lines[1].starts_with("channel") && lines[1].contains("revenue"),
        "{table}"
    );
    assert_eq!(
        lines.len(),
        2 + api["rows"].as_array().unwrap().len(),
        "{table}"
    );
    let first = &api["rows"][0];
    assert!(
        lines[2].starts_with(first["channel"].as_str().unwrap())
            && lines[2].contains(first["revenue"].as_str().unwrap()),
        "{table}"
    );

    let csv = String::from_utf8(run(args("csv")).await.stdout).unwrap();
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(records.len(), api["rows"].as_array().unwrap().len());
    let revenue = header.iter().position(|h| h == "revenue").unwrap();
    assert_eq!(&records[0][revenue], first["revenue"].as_str().unwrap());

    let mut bad = args("table");
    bad[3] = "acme".into();
    let output = run(bad).await;
    assert!(!output.status.success());
    let error = String::from_utf8_lossy(&output.stderr);
    assert!(
        error.contains("is not a company id") && error.contains("lux company list"),
        "{error}"
    );
    app.stop().await;
}

/// A small deterministic generator (xorshift64*) for the random data set below.
struct Dice(u64);

impl Dice {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n`.
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The reports that read the rollups summed per day and per cohort (time to conversion,
/// repeat purchase, LTV rolling and by cohort) answer, for any range, what their formulas
/// give over the per-order and per-customer rows those are derived from (the queries the
/// reports ran before the sums existed, here as the reference): a random data set of 300
/// customers over a year, two currencies, conversion times on and around every bucket bound,
/// ties, and past the last bin.
#[tokio::test]
async fn the_summed_rollups_answer_what_the_formulas_give_over_the_per_customer_rows() {
    let now: DateTime<Utc> = NOW.parse().unwrap();
    let app = TestApp::spawn_with(lux::server::ServeOptions {
        clock: lux::clock::Clock::Fixed(now),
        ..test_options()
    })
    .await;
    let company = create_company(&app.owner, "Random").await;
    let c = company.id;
    let mut dice = Dice(0x9e37_79b9_7f4a_7c15);
    let first: chrono::NaiveDate = "2025-03-01".parse().unwrap();
    let day = |n: u64| first + chrono::Duration::days(n as i64);

    // Customer days: 1 to 5 order days each (most 1 or 2), up to 3 orders a day, one in
    // eight in yen, one in twenty in both currencies; a net of 0 now and then (refunded).
    let mut customer_days: std::collections::BTreeMap<(Uuid, chrono::NaiveDate, &str), (i32, i64)> =
        Default::default();
    for _ in 0..300 {
        let customer = Uuid::new_v4();
        let days = [1, 1, 1, 2, 2, 3, 5][dice.below(7) as usize];
        let both = dice.below(20) == 0;
        let main = if dice.below(8) == 0 { "JPY" } else { "EUR" };
        for _ in 0..days {
            let d = day(dice.below(380));
            let currencies: &[&str] = if both { &["EUR", "JPY"] } else { &[main] };
            for currency in currencies {
                let orders = [1, 1, 1, 1, 2, 3][dice.below(6) as usize];
                let net = if dice.below(10) == 0 {
                    0
                } else {
                    dice.below(50_000) as i64
                };
                let entry = customer_days
                    .entry((customer, d, currency))
                    .or_insert((0, 0));
                entry.0 += orders;
                entry.1 += net;
            }
        }
    }
    for ((customer, d, currency), (orders, net)) in &customer_days {
        sqlx::query(
            "INSERT INTO rollup_customer_days (company_id, day, customer_id, currency, orders,
                 net_minor)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(c)
        .bind(d)
        .bind(customer)
        .bind(currency)
        .bind(orders)
        .bind(net)
        .execute(&app.owner)
        .await
        .unwrap();
    }
    // Conversion times: on a bucket or bin bound, one second either side, log-uniform up to
    // 60 days, a few from a handful of repeated values (ties), a few past every bin (3 years).
    let bounds = [
        0, 3600, 86_400, 259_200, 604_800, 1_209_600, 2_592_000, 60, 1920,
    ];
    for _ in 0..700 {
        let seconds: i64 = match dice.below(10) {
            0 => bounds[dice.below(bounds.len() as u64) as usize],
            1 => (bounds[dice.below(bounds.len() as u64) as usize] - 1).max(0),
            2 => bounds[dice.below(bounds.len() as u64) as usize] + 1,
            3 => [42, 5000, 90_000][dice.below(3) as usize],
            4 if dice.below(4) == 0 => 94_608_000 + dice.below(1000) as i64,
            _ => (2f64.powf(dice.below(2_300) as f64 / 100.0)) as i64,
        };
        sqlx::query(
            "INSERT INTO rollup_conversions (company_id, day, order_id, channel, seconds)
             VALUES ($1, $2, $3, 'Direct', $4)",
        )
        .bind(c)
        .bind(day(dice.below(380)))
        .bind(Uuid::new_v4())
        .bind(seconds)
        .execute(&app.owner)
        .await
        .unwrap();
    }
    lux::rollups::rederive(&app.owner, c).await.unwrap();

    let owner = &app.owner;
    let ranges = [
        ("2025-03-01", "2026-03-16"),
        ("2024-01-01", "2024-12-31"),
        ("2025-06-10", "2025-06-10"),
        ("2025-06-01", "2025-08-31"),
        ("2025-07-15", "2025-09-14"),
        ("2025-11-20", "2026-02-05"),
        ("2025-12-01", "2026-03-16"),
        ("2025-04-03", "2025-04-09"),
        ("2025-09-30", "2026-01-02"),
    ];
    for (from, to) in ranges {
        let range = format!("from={from}&to={to}");
        let (from, to): (chrono::NaiveDate, chrono::NaiveDate) =
            (from.parse().unwrap(), to.parse().unwrap());
        let body = |report: &str| {
            let path = format!("/api/v1/reports/{report}?{range}");
            let key = company.secret_key.clone();
            let app = &app;
            async move {
                let (status, body) = get_report(app, &key, &path).await;
                assert_eq!(status, 200, "{path}: {body}");
                body
            }
        };

        // Time to conversion, as `percentile_disc` and `width_bucket` give it.
        let (orders, median, p75, p90): (i64, Option<i64>, Option<i64>, Option<i64>) =
            sqlx::query_as(
                "SELECT count(*), percentile_disc(0.5) WITHIN GROUP (ORDER BY seconds),
                        percentile_disc(0.75) WITHIN GROUP (ORDER BY seconds),
                        percentile_disc(0.9) WITHIN GROUP (ORDER BY seconds)
                 FROM rollup_conversions WHERE company_id = $1 AND day BETWEEN $2 AND $3",
            )
            .bind(c)
            .bind(from)
            .bind(to)
            .fetch_one(owner)
            .await
            .unwrap();
        let buckets: Vec<i64> = sqlx::query_scalar(
            "SELECT count(c.seconds)
             FROM generate_series(1, 7) b
             LEFT JOIN rollup_conversions c
               ON c.company_id = $1 AND c.day BETWEEN $2 AND $3
              AND width_bucket(c.seconds, '{0,3600,86400,259200,604800,1209600,2592000}'::bigint[]) = b
             GROUP BY b ORDER BY b",
        )
        .bind(c)
        .bind(from)
        .bind(to)
        .fetch_all(owner)
        .await
        .unwrap();
        let ttc = body("time_to_conversion").await;
        assert_eq!(
            ttc["summary"],
            json!({"orders": orders, "median_seconds": median, "p75_seconds": p75,
                   "p90_seconds": p90}),
            "{range}"
        );
        let rows: Vec<(i64, Value)> = ttc["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| (r["orders"].as_i64().unwrap(), r["share"].clone()))
            .collect();
        let expected: Vec<(i64, Value)> = buckets
            .iter()
            .map(|n| (*n, json!(lux::reports::format::ratio(*n, orders))))
            .collect();
        assert_eq!(rows, expected, "{range}");

        // Repeat purchase.
        let (customers, repeat): (i64, i64) = sqlx::query_as(
            "SELECT count(*) FILTER (WHERE n >= 1), count(*) FILTER (WHERE n >= 2)
             FROM (SELECT customer_id, sum(orders) AS n FROM rollup_customer_days
                   WHERE company_id = $1 AND day BETWEEN $2 AND $3 GROUP BY customer_id) x",
        )
        .bind(c)
        .bind(from)
        .bind(to)
        .fetch_one(owner)
        .await
        .unwrap();
        let cohorts: Vec<(String, i64, i64)> = sqlx::query_as(
            "WITH c AS (SELECT customer_id, min(day) AS first_day, sum(orders) AS orders
                        FROM rollup_customer_days WHERE company_id = $1 GROUP BY customer_id)
             SELECT to_char(first_day, 'YYYY-MM'), count(*), count(*) FILTER (WHERE orders >= 2)
             FROM c WHERE first_day BETWEEN $2 AND $3 GROUP BY 1 ORDER BY 1",
        )
        .bind(c)
        .bind(from)
        .bind(to)
        .fetch_all(owner)
        .await
        .unwrap();
        let repeat_row = |cohort: &str, n: i64, r: i64| {
            json!({"cohort": cohort, "customers": n, "repeat_customers": r,
                   "rate": lux::reports::format::ratio(r, n)})
        };
        let mut expected = vec![repeat_row("all", customers, repeat)];
        expected.extend(cohorts.iter().map(|(m, n, r)| repeat_row(m, *n, *r)));
        assert_eq!(
            body("repeat_purchase").await["rows"],
            json!(expected),
            "{range}"
        );

        // LTV, rolling: from the customer days themselves (first order day per customer,
        // each window's days).
        let rolling: Vec<(i32, String, i64, i64, Option<i64>)> = sqlx::query_as(
            "WITH first AS (SELECT customer_id, min(day) AS first_day FROM rollup_customer_days
                            WHERE company_id = $1 GROUP BY customer_id),
             members AS (SELECT DISTINCT r.customer_id, r.currency::text AS currency, f.first_day
                         FROM rollup_customer_days r JOIN first f USING (customer_id)
                         WHERE r.company_id = $1 AND f.first_day BETWEEN $2 AND $3),
             windows AS (SELECT unnest('{30,90,180,365}'::int[]) AS days),
             matured AS (
                 SELECT w.days, m.customer_id, m.currency,
                        (SELECT coalesce(sum(r.net_minor), 0) FROM rollup_customer_days r
                         WHERE r.company_id = $1 AND r.customer_id = m.customer_id
                           AND r.currency::text = m.currency
                           AND r.day < m.first_day + w.days) AS minor
                 FROM members m JOIN windows w ON m.first_day + w.days <= $4)
             SELECT w.days, cur.currency, count(p.customer_id),
                    coalesce(sum(p.minor), 0)::bigint,
                    round(sum(p.minor) / nullif(count(p.customer_id), 0))::bigint
             FROM windows w CROSS JOIN (SELECT DISTINCT currency FROM members) cur
             LEFT JOIN matured p ON p.days = w.days AND p.currency = cur.currency
             GROUP BY 1, 2 ORDER BY 1, 2",
        )
        .bind(c)
        .bind(from)
        .bind(to)
        .bind(chrono::NaiveDate::from_ymd_opt(2026, 3, 16).unwrap())
        .fetch_all(owner)
        .await
        .unwrap();
        let expected: Vec<Value> = rolling
            .iter()
            .map(|(days, currency, n, revenue, ltv)| {
                json!({"window_days": days, "currency": currency, "customers": n,
                       "revenue": lux::reports::format::money(currency, *revenue).unwrap(),
                       "ltv": lux::reports::format::money_or_null(currency, *ltv).unwrap()})
            })
            .collect();
        assert_eq!(
            body("ltv_rolling").await["rows"],
            json!(expected),
            "{range}"
        );

        // LTV by cohort: month by month from the customer days.
        let by_cohort: Vec<(String, i32, String, i64, i64, Option<i64>)> = sqlx::query_as(
            "WITH first AS (SELECT customer_id, min(day) AS first_day FROM rollup_customer_days
                            WHERE company_id = $1 GROUP BY customer_id),
             members AS (SELECT DISTINCT r.customer_id, r.currency::text AS currency, f.first_day
                         FROM rollup_customer_days r JOIN first f USING (customer_id)
                         WHERE r.company_id = $1 AND f.first_day BETWEEN $2 AND $3),
             groups AS (SELECT date_trunc('month', first_day)::date AS cohort, currency,
                               count(*) AS customers
                        FROM members GROUP BY 1, 2),
             grid AS (SELECT g.*, k FROM groups g,
                      generate_series(0, ((extract(year FROM $4::date) - extract(year FROM g.cohort)) * 12
                                          + extract(month FROM $4::date)
                                          - extract(month FROM g.cohort))::int) k)
             SELECT to_char(g.cohort, 'YYYY-MM'), g.k, g.currency, g.customers,
                    revenue::bigint, round(revenue / g.customers)::bigint
             FROM grid g,
                  LATERAL (SELECT coalesce(sum(r.net_minor), 0) AS revenue
                           FROM members m JOIN rollup_customer_days r
                             ON r.company_id = $1 AND r.customer_id = m.customer_id
                            AND r.currency::text = m.currency
                           WHERE date_trunc('month', m.first_day)::date = g.cohort
                             AND m.currency = g.currency
                             AND r.day < (g.cohort + (g.k + 1) * interval '1 month')::date) s
             ORDER BY g.cohort, g.k, g.currency",
        )
        .bind(c)
        .bind(from)
        .bind(to)
        .bind(chrono::NaiveDate::from_ymd_opt(2026, 3, 16).unwrap())
        .fetch_all(owner)
        .await
        .unwrap();
        let expected: Vec<Value> = by_cohort
            .iter()
            .map(|(cohort, k, currency, n, revenue, ltv)| {
                json!({"cohort": cohort, "months_since": k, "currency": currency,
                       "customers": n,
                       "revenue": lux::reports::format::money(currency, *revenue).unwrap(),
                       "ltv": lux::reports::format::money_or_null(currency, *ltv).unwrap()})
            })
            .collect();
        assert_eq!(
            body("ltv_cohorts").await["rows"],
            json!(expected),
            "{range}"
        );
    }
    app.stop().await;
}
