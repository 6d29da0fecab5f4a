//! Alerts (SPEC §8.4): each rule fires on a hand-made rollup series built to cross its
//! threshold, stays silent on one just under it and on one under its minimum volume, and its
//! explanation names the driver seeded into the series. Shared support for the delivery tests
//! (`alerts_delivery.rs`): a real SMTP server (aiosmtpd) and a real Slack-style receiver.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use lux::alerts::rules::Finding;
use lux::alerts::{AlertOptions, AlertSettings, Company, Evaluation, Trigger};
use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

use crate::helpers::{TestApp, create_company};

/// The evaluated day: a Monday.
pub fn day() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 30).unwrap()
}

pub fn days_before(n: u64) -> NaiveDate {
    day() - chrono::Days::new(n)
}

/// 07:30 in Paris on the morning after `day` (06:30 UTC in winter).
pub fn morning_after(d: NaiveDate) -> DateTime<Utc> {
    Utc.from_utc_datetime(&(d + chrono::Days::new(1)).and_hms_opt(6, 30, 0).unwrap())
}

pub fn options() -> AlertOptions {
    AlertOptions {
        public_url: Some(url::Url::parse("https://lux.example.com").unwrap()),
        counters: Default::default(),
    }
}

/// Evaluates `company` for `d` through the library, as the scheduler would.
pub async fn evaluate(pool: &PgPool, company: Uuid, d: NaiveDate) -> Evaluation {
    let c = Company::load(pool, company).await.unwrap();
    let settings = AlertSettings::load(pool, company).await.unwrap();
    lux::alerts::state::evaluate(
        pool,
        (&c, &settings),
        d,
        morning_after(d),
        Trigger::Manual,
        &options(),
    )
    .await
    .expect("evaluation")
}

/// The service's pool (`lux_app`, row-level security on).
pub async fn app_pool(app: &TestApp) -> PgPool {
    lux::db::connect_app(&app.db.url, 2).unwrap()
}

fn findings<'a>(e: &'a Evaluation, rule: &str) -> Vec<&'a Finding> {
    e.findings
        .iter()
        .filter(|f| f.rule.as_str() == rule)
        .collect()
}

fn finding<'a>(e: &'a Evaluation, rule: &str, subject: &str) -> &'a Finding {
    findings(e, rule)
        .into_iter()
        .find(|f| f.subject == subject)
        .unwrap_or_else(|| panic!("no {rule} finding for {subject}: {:#?}", e.findings))
}

fn fired(e: &Evaluation, rule: &str) -> Vec<String> {
    e.fired
        .iter()
        .filter(|n| n.rule == rule)
        .map(|n| n.subject.clone())
        .collect()
}

// --------------------------------------------------------------------------------------
// Seeding rollups (as the owner: the rollup jobs' output, hand-made).

pub async fn spend(
    owner: &PgPool,
    company: Uuid,
    d: NaiveDate,
    channel: &str,
    campaign: &str,
    amount: f64,
) {
    sqlx::query(
        "INSERT INTO ad_spend (company_id, day, platform, campaign, ad_id, channel, currency, spend)
         VALUES ($1, $2, 'generic', $3, '', $4, 'EUR', $5::float8::numeric)",
    )
    .bind(company)
    .bind(d)
    .bind(campaign)
    .bind(channel)
    .bind(amount)
    .execute(owner)
    .await
    .unwrap();
}

/// Last-touch orders and net revenue (in euros) of one channel on one day.
pub async fn revenue(
    owner: &PgPool,
    company: Uuid,
    d: NaiveDate,
    channel: &str,
    campaign: &str,
    orders: f64,
    net: f64,
) {
    sqlx::query(
        "INSERT INTO rollup_revenue_daily (company_id, day, model, channel, source, medium,
             campaign, creative, currency, orders, gross_minor, refunded_minor, net_minor,
             new_customers)
         VALUES ($1, $2, 'last_touch', $3, '', '', $4, '', 'EUR', $5::float8::numeric,
                 ($6 * 100)::float8::numeric, 0, ($6 * 100)::float8::numeric, 0)",
    )
    .bind(company)
    .bind(d)
    .bind(channel)
    .bind(campaign)
    .bind(orders)
    .bind(net)
    .execute(owner)
    .await
    .unwrap();
}

pub async fn funnel(owner: &PgPool, company: Uuid, d: NaiveDate, steps: &[(&str, i32)]) {
    for (i, (event, sessions)) in steps.iter().enumerate() {
        sqlx::query(
            "INSERT INTO rollup_funnel_daily (company_id, day, funnel, step, event_name, sessions)
             VALUES ($1, $2, 'commerce', $3, $4, $5)",
        )
        .bind(company)
        .bind(d)
        .bind(i as i32 + 1)
        .bind(event)
        .bind(sessions)
        .execute(owner)
        .await
        .unwrap();
    }
}

pub async fn email_day(
    owner: &PgPool,
    company: Uuid,
    d: NaiveDate,
    campaign: &str,
    delivered: i32,
    complaints: i32,
) {
    sqlx::query(
        "INSERT INTO rollup_message_days (company_id, day, channel, campaign, sent, delivered,
             bounced, opens, machine_opens, clicks, unsubscribes, complaints)
         VALUES ($1, $2, 'email', $3, $4, $4, 0, 0, 0, 0, 0, $5)",
    )
    .bind(company)
    .bind(d)
    .bind(campaign)
    .bind(delivered)
    .bind(complaints)
    .execute(owner)
    .await
    .unwrap();
}

pub async fn fatigue(
    owner: &PgPool,
    company: Uuid,
    creative: &str,
    d: NaiveDate,
    status: &str,
    drop: f64,
    impressions: i64,
) {
    sqlx::query(
        "INSERT INTO creative_fatigue_history (company_id, creative_id, day, status, baseline_ctr,
             recent_ctr, drop, p_value, baseline_impressions, recent_impressions, explanation)
         VALUES ($1, $2, $3, $4, 0.02, 0.02 * (1 - $5), $5, 0.001, $6, $6,
                 'CTR fell while impressions held.')
         ON CONFLICT (company_id, creative_id, day) DO UPDATE SET status = $4, drop = $5,
             recent_ctr = 0.02 * (1 - $5), recent_impressions = $6",
    )
    .bind(company)
    .bind(creative)
    .bind(d)
    .bind(status)
    .bind(drop)
    .bind(impressions)
    .execute(owner)
    .await
    .unwrap();
}

/// Net revenue on `day`'s weekday over the 8 weeks before: Paid Search varies, Email is flat;
/// totals 1000 1010 990 1005 995 1020 980 1000 (median 1000, MAD 7.5). Then `day` itself:
/// Paid Search `search_today`, Email 400.
pub async fn revenue_series(owner: &PgPool, company: Uuid, search_today: f64, orders: f64) {
    let search = [600.0, 610.0, 590.0, 605.0, 595.0, 620.0, 580.0, 600.0];
    for (k, s) in search.iter().enumerate() {
        let d = days_before(7 * (k as u64 + 1));
        revenue(owner, company, d, "Paid Search", "brand", orders / 2.0, *s).await;
        revenue(
            owner,
            company,
            d,
            "Email",
            "newsletter",
            orders / 2.0,
            400.0,
        )
        .await;
    }
    revenue(
        owner,
        company,
        day(),
        "Paid Search",
        "brand",
        orders / 2.0,
        search_today,
    )
    .await;
    revenue(
        owner,
        company,
        day(),
        "Email",
        "newsletter",
        orders / 2.0,
        400.0,
    )
    .await;
}

// --------------------------------------------------------------------------------------
// The rules

#[tokio::test]
async fn cpa_wow_fires_over_20_percent_names_the_channel_and_stays_silent_under_it_or_under_volume()
{
    let app = TestApp::spawn().await;
    let pool = app_pool(&app).await;
    let (over, under, small) = (
        create_company(&app.owner, "Over").await.id,
        create_company(&app.owner, "Under").await.id,
        create_company(&app.owner, "Small").await.id,
    );
    let last = days_before(7);
    for (company, orders_last, this_social, this_search, orders_this) in [
        // Last week CPA 20 (1000 / 50). This week 1200 / 40 = 30: +50 %, Paid Social's doing.
        (over, 25.0, 900.0, 300.0, 20.0),
        // 1190 / 50 = 23.8: +19 %, in both channels alike.
        (under, 25.0, 595.0, 595.0, 25.0),
        // CPA doubles, but on 2 conversions per channel (4 < 5 a week).
        (small, 2.0, 1000.0, 1000.0, 2.0),
    ] {
        spend(
            &app.owner,
            company,
            last,
            "Paid Social",
            "prospecting",
            500.0,
        )
        .await;
        spend(&app.owner, company, last, "Paid Search", "brand", 500.0).await;
        revenue(
            &app.owner,
            company,
            last,
            "Paid Social",
            "prospecting",
            orders_last,
            1000.0,
        )
        .await;
        revenue(
            &app.owner,
            company,
            last,
            "Paid Search",
            "brand",
            orders_last,
            1000.0,
        )
        .await;
        spend(
            &app.owner,
            company,
            day(),
            "Paid Social",
            "prospecting",
            this_social,
        )
        .await;
        spend(
            &app.owner,
            company,
            day(),
            "Paid Search",
            "brand",
            this_search,
        )
        .await;
        revenue(
            &app.owner,
            company,
            day(),
            "Paid Social",
            "prospecting",
            orders_this,
            1000.0,
        )
        .await;
        revenue(
            &app.owner,
            company,
            day(),
            "Paid Search",
            "brand",
            orders_this,
            1000.0,
        )
        .await;
    }

    let e = evaluate(&pool, over, day()).await;
    assert_eq!(fired(&e, "cpa_wow"), ["blended", "channel:Paid Social"]);
    let blended = finding(&e, "cpa_wow", "blended");
    assert_eq!(blended.numbers["current"], 30.0);
    assert_eq!(blended.numbers["baseline"], 20.0);
    assert!(
        blended
            .explanation
            .contains("from 20.00 EUR to 30.00 EUR (+50.0 %)"),
        "{}",
        blended.explanation
    );
    assert!(
        blended
            .explanation
            .contains("Likely driver: channel Paid Social"),
        "{}",
        blended.explanation
    );
    assert!(
        blended.explanation.contains("https://lux.example.com/app/"),
        "{}",
        blended.explanation
    );
    let social = finding(&e, "cpa_wow", "channel:Paid Social");
    assert!(
        social
            .explanation
            .contains("campaign prospecting, 100.0 % of the change"),
        "{}",
        social.explanation
    );

    let e = evaluate(&pool, under, day()).await;
    assert!(
        fired(&e, "cpa_wow").is_empty(),
        "{:#?}",
        findings(&e, "cpa_wow")
    );
    let change = finding(&e, "cpa_wow", "blended").numbers["change"]
        .as_f64()
        .unwrap();
    assert!((change - 0.19).abs() < 1e-9, "{change}");

    let e = evaluate(&pool, small, day()).await;
    assert!(fired(&e, "cpa_wow").is_empty());
    let skipped = finding(&e, "cpa_wow", "blended").skipped.clone().unwrap();
    assert!(skipped.contains("fewer than 5 conversions"), "{skipped}");
    app.stop().await;
}

#[tokio::test]
async fn funnel_step_drop_fires_on_a_significant_20_percent_drop_and_names_the_step() {
    let app = TestApp::spawn().await;
    let pool = app_pool(&app).await;
    let (over, under, small) = (
        create_company(&app.owner, "Over").await.id,
        create_company(&app.owner, "Under").await.id,
        create_company(&app.owner, "Small").await.id,
    );
    let steps = |pv, atc, bc, p| {
        [
            ("page_view", pv),
            ("add_to_cart", atc),
            ("begin_checkout", bc),
            ("purchase", p),
        ]
    };
    // Last week 30 % of sessions added to cart. This week: 20 % (−33 %), 24.1 % (−19.7 %),
    // and the same fall on 90 sessions a week (under the 100 minimum).
    for (company, last, this) in [
        (over, steps(1000, 300, 150, 100), steps(1000, 200, 100, 66)),
        (under, steps(1000, 300, 150, 100), steps(1000, 241, 120, 80)),
        (small, steps(90, 27, 13, 9), steps(90, 18, 9, 6)),
    ] {
        funnel(&app.owner, company, days_before(8), &last).await;
        funnel(&app.owner, company, days_before(1), &this).await;
    }

    let e = evaluate(&pool, over, day()).await;
    assert_eq!(fired(&e, "funnel_step_drop"), ["commerce:add_to_cart"]);
    let f = finding(&e, "funnel_step_drop", "commerce:add_to_cart");
    assert!(f.numbers["p_value"].as_f64().unwrap() < 0.001);
    assert!(
        f.explanation
            .contains("from page_view to add_to_cart fell from 30.0 % to 20.0 % (−33.3 %)"),
        "{}",
        f.explanation
    );
    assert!(
        f.explanation
            .contains("Likely driver: the step page_view → add_to_cart"),
        "{}",
        f.explanation
    );
    // The later steps kept their rates: no alert there.
    assert!(!finding(&e, "funnel_step_drop", "commerce:purchase").met);

    let e = evaluate(&pool, under, day()).await;
    assert!(
        fired(&e, "funnel_step_drop").is_empty(),
        "{:#?}",
        findings(&e, "funnel_step_drop")
    );
    let f = finding(&e, "funnel_step_drop", "commerce:add_to_cart");
    assert!(
        f.numbers["p_value"].as_f64().unwrap() < 0.05,
        "significant, but under 20 %"
    );

    let e = evaluate(&pool, small, day()).await;
    assert!(fired(&e, "funnel_step_drop").is_empty());
    assert!(
        findings(&e, "funnel_step_drop")
            .iter()
            .all(|f| f.skipped.is_some())
    );
    app.stop().await;
}

#[tokio::test]
async fn checkout_abandonment_fires_at_a_robust_z_of_3_and_stays_silent_under_it_or_under_volume() {
    let app = TestApp::spawn().await;
    let pool = app_pool(&app).await;
    let (over, under, small) = (
        create_company(&app.owner, "Over").await.id,
        create_company(&app.owner, "Under").await.id,
        create_company(&app.owner, "Small").await.id,
    );
    // Same weekday, 8 weeks: 100 checkouts, abandonment 40 38 42 39 41 37 43 40 % (median 40 %,
    // MAD 1.5 points). Yesterday: 55 % (z = 6.7), 46 % (z = 2.7), and 67 % on 15 checkouts.
    let purchases = [60, 62, 58, 61, 59, 63, 57, 60];
    for (company, checkouts, bought) in [(over, 100, 45), (under, 100, 54), (small, 15, 5)] {
        for (k, p) in purchases.iter().enumerate() {
            let d = days_before(7 * (k as u64 + 1));
            funnel(
                &app.owner,
                company,
                d,
                &[
                    ("page_view", 1000),
                    ("add_to_cart", 300),
                    ("begin_checkout", 100),
                    ("purchase", *p),
                ],
            )
            .await;
        }
        funnel(
            &app.owner,
            company,
            day(),
            &[
                ("page_view", 1000),
                ("add_to_cart", 300),
                ("begin_checkout", checkouts),
                ("purchase", bought),
            ],
        )
        .await;
    }

    let e = evaluate(&pool, over, day()).await;
    assert_eq!(
        fired(&e, "checkout_abandonment_spike"),
        ["commerce:checkout"]
    );
    let f = finding(&e, "checkout_abandonment_spike", "commerce:checkout");
    assert!((f.numbers["z"].as_f64().unwrap() - 0.6745 * 0.15 / 0.015).abs() < 1e-6);
    assert!(
        f.explanation
            .contains("55.0 % of checkouts ended without a purchase, against a median of 40.0 %"),
        "{}",
        f.explanation
    );
    assert!(f.explanation.contains("Likely driver: the step begin_checkout → purchase: 45 purchases where the usual abandonment would give 60"), "{}", f.explanation);

    let e = evaluate(&pool, under, day()).await;
    assert!(fired(&e, "checkout_abandonment_spike").is_empty());
    let z = finding(&e, "checkout_abandonment_spike", "commerce:checkout").numbers["z"]
        .as_f64()
        .unwrap();
    assert!(z > 2.6 && z < 3.0, "{z}");

    let e = evaluate(&pool, small, day()).await;
    assert!(fired(&e, "checkout_abandonment_spike").is_empty());
    assert!(
        finding(&e, "checkout_abandonment_spike", "commerce:checkout")
            .skipped
            .is_some()
    );
    app.stop().await;
}

#[tokio::test]
async fn revenue_anomaly_fires_at_a_robust_z_of_3_5_names_the_channel_and_needs_volume_and_history()
{
    let app = TestApp::spawn().await;
    let pool = app_pool(&app).await;
    let (over, under, small, young) = (
        create_company(&app.owner, "Over").await.id,
        create_company(&app.owner, "Under").await.id,
        create_company(&app.owner, "Small").await.id,
        create_company(&app.owner, "Young").await.id,
    );
    // Median 1000, MAD 7.5: 940 gives z = −5.4 (Paid Search fell by 60), 962 gives z = −3.42.
    revenue_series(&app.owner, over, 540.0, 12.0).await;
    revenue_series(&app.owner, under, 562.0, 12.0).await;
    revenue_series(&app.owner, small, 540.0, 6.0).await;
    // Two weeks of history only.
    for k in [7, 14] {
        revenue(
            &app.owner,
            young,
            days_before(k),
            "Paid Search",
            "brand",
            12.0,
            1000.0,
        )
        .await;
    }
    revenue(
        &app.owner,
        young,
        day(),
        "Paid Search",
        "brand",
        12.0,
        100.0,
    )
    .await;

    let e = evaluate(&pool, over, day()).await;
    assert_eq!(fired(&e, "revenue_anomaly"), ["net_revenue"]);
    let f = finding(&e, "revenue_anomaly", "net_revenue");
    assert!((f.numbers["z"].as_f64().unwrap() + 0.6745 * 60.0 / 7.5).abs() < 1e-9);
    assert!(
        f.explanation
            .contains("was 940.00 EUR, below the median of 1000.00 EUR"),
        "{}",
        f.explanation
    );
    assert!(
        f.explanation
            .contains("Likely driver: channel Paid Search, 100.0 %"),
        "{}",
        f.explanation
    );
    assert!(f.explanation.contains("/executive"), "{}", f.explanation);

    let e = evaluate(&pool, under, day()).await;
    assert!(fired(&e, "revenue_anomaly").is_empty());
    let z = finding(&e, "revenue_anomaly", "net_revenue").numbers["z"]
        .as_f64()
        .unwrap();
    assert!(z < -3.4 && z > -3.5, "{z}");

    for company in [small, young] {
        let e = evaluate(&pool, company, day()).await;
        assert!(fired(&e, "revenue_anomaly").is_empty());
        assert!(
            finding(&e, "revenue_anomaly", "net_revenue")
                .skipped
                .is_some()
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn email_complaints_fire_at_0_1_percent_on_1000_delivered_and_name_the_campaign() {
    let app = TestApp::spawn().await;
    let pool = app_pool(&app).await;
    let (over, under, small, critical) = (
        create_company(&app.owner, "Over").await.id,
        create_company(&app.owner, "Under").await.id,
        create_company(&app.owner, "Small").await.id,
        create_company(&app.owner, "Critical").await.id,
    );
    // 2 / 2000 = 0.1 %, both complaints from black-friday; 2 / 2002 = 0.0999 %; 5 / 900.
    email_day(&app.owner, over, days_before(2), "black-friday", 1000, 2).await;
    email_day(&app.owner, over, days_before(2), "newsletter", 1000, 0).await;
    email_day(&app.owner, under, days_before(2), "black-friday", 1001, 1).await;
    email_day(&app.owner, under, days_before(2), "newsletter", 1001, 1).await;
    email_day(&app.owner, small, days_before(2), "black-friday", 900, 5).await;
    email_day(
        &app.owner,
        critical,
        days_before(2),
        "black-friday",
        1000,
        4,
    )
    .await;

    let e = evaluate(&pool, over, day()).await;
    assert_eq!(
        fired(&e, "email_complaints"),
        ["email", "campaign:black-friday"]
    );
    let f = finding(&e, "email_complaints", "email");
    assert!(
        f.explanation
            .contains("0.10 % (2 complaints for 2000 delivered)"),
        "{}",
        f.explanation
    );
    assert!(
        f.explanation
            .contains("Likely driver: campaign black-friday, 100.0 % of the complaints"),
        "{}",
        f.explanation
    );
    assert_eq!(f.severity.as_str(), "warning");

    let e = evaluate(&pool, under, day()).await;
    assert!(
        fired(&e, "email_complaints").is_empty(),
        "{:#?}",
        findings(&e, "email_complaints")
    );

    let e = evaluate(&pool, small, day()).await;
    assert!(fired(&e, "email_complaints").is_empty());
    assert!(
        findings(&e, "email_complaints")
            .iter()
            .all(|f| f.skipped.is_some())
    );

    let e = evaluate(&pool, critical, day()).await;
    assert_eq!(
        finding(&e, "email_complaints", "email").severity.as_str(),
        "critical"
    );
    app.stop().await;
}

#[tokio::test]
async fn creative_fatigue_fires_when_a_creative_enters_fatigued_and_not_under_the_threshold_or_volume()
 {
    let app = TestApp::spawn().await;
    let pool = app_pool(&app).await;
    let (over, under, small) = (
        create_company(&app.owner, "Over").await.id,
        create_company(&app.owner, "Under").await.id,
        create_company(&app.owner, "Small").await.id,
    );
    // ad-42 enters fatigued today (30 % CTR drop); ad-7 was fatigued already yesterday.
    fatigue(
        &app.owner,
        over,
        "ad-42",
        days_before(1),
        "watch",
        0.15,
        20_000,
    )
    .await;
    fatigue(&app.owner, over, "ad-42", day(), "fatigued", 0.30, 20_000).await;
    fatigue(
        &app.owner,
        over,
        "ad-7",
        days_before(1),
        "fatigued",
        0.40,
        20_000,
    )
    .await;
    fatigue(&app.owner, over, "ad-7", day(), "fatigued", 0.40, 20_000).await;
    // A 19 % drop: watch, not fatigued.
    fatigue(
        &app.owner,
        under,
        "ad-42",
        days_before(1),
        "fresh",
        0.05,
        20_000,
    )
    .await;
    fatigue(&app.owner, under, "ad-42", day(), "watch", 0.19, 20_000).await;
    // Fatigued on 9,000 recent impressions.
    fatigue(
        &app.owner,
        small,
        "ad-42",
        days_before(1),
        "watch",
        0.15,
        9_000,
    )
    .await;
    fatigue(&app.owner, small, "ad-42", day(), "fatigued", 0.30, 9_000).await;

    let e = evaluate(&pool, over, day()).await;
    assert_eq!(fired(&e, "creative_fatigue"), ["creative:ad-42"]);
    let f = finding(&e, "creative_fatigue", "creative:ad-42");
    assert!(
        f.explanation
            .contains("Creative ad-42 is fatigued as of 2026-11-30"),
        "{}",
        f.explanation
    );
    assert!(
        f.explanation.contains("Likely driver: creative ad-42"),
        "{}",
        f.explanation
    );
    assert!(f.explanation.contains("/creatives"), "{}", f.explanation);

    let e = evaluate(&pool, under, day()).await;
    assert!(fired(&e, "creative_fatigue").is_empty());
    let e = evaluate(&pool, small, day()).await;
    assert!(fired(&e, "creative_fatigue").is_empty());
    assert!(
        finding(&e, "creative_fatigue", "creative:ad-42")
            .skipped
            .is_some()
    );
    app.stop().await;
}

#[tokio::test]
async fn alert_config_is_read_and_replaced_with_the_secret_key_and_bad_input_is_a_400() {
    let app = TestApp::spawn().await;
    let url = format!("{}/api/v1/alerts/config", app.base);
    let get = app
        .client
        .get(&url)
        .bearer_auth(&app.company.secret_key)
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), 200);
    let body: Value = get.json().await.unwrap();
    assert_eq!(body["rules"]["revenue_anomaly"]["threshold"], 3.5);
    assert_eq!(body["morning_hour"], 7);

    let put = app
        .client
        .put(&url)
        .bearer_auth(&app.company.secret_key)
        .json(
            &serde_json::json!({"emails": ["ops@acme.example"], "quiet_hours": "22-07",
                                  "rules": {"cpa_wow": {"threshold": 0.3, "min_volume": 8}}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 200);
    let body: Value = put.json().await.unwrap();
    assert_eq!(body["rules"]["cpa_wow"]["threshold"], 0.3);
    assert_eq!(body["quiet_hours"], "22-07");

    for (bad, says) in [
        (
            serde_json::json!({"emails": ["not-an-address"]}),
            "not an email address",
        ),
        (
            serde_json::json!({"rules": {"cpa": {"threshold": 1, "min_volume": 1}}}),
            "unknown rule",
        ),
        (serde_json::json!({"quiet_hours": "25-99"}), "quiet hours"),
    ] {
        let r = app
            .client
            .put(&url)
            .bearer_auth(&app.company.secret_key)
            .json(&bad)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{bad}");
        let body: Value = r.json().await.unwrap();
        assert!(body["error"].as_str().unwrap().contains(says), "{body}");
    }
    // The write key is not enough.
    let r = app
        .client
        .get(&url)
        .bearer_auth(&app.company.write_key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    app.stop().await;
}

// --------------------------------------------------------------------------------------
// Real receivers for the delivery tests.

/// A free local port (nothing listens on it once this returns).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A real SMTP server: Debian's aiosmtpd with `tests/support/smtp_sink.py` writing each
/// message it accepts to a directory. Killed when dropped.
pub struct SmtpServer {
    child: std::process::Child,
    pub port: u16,
    pub dir: PathBuf,
}

impl SmtpServer {
    pub async fn start(port: u16) -> SmtpServer {
        let dir = std::env::temp_dir().join(format!("lux-smtp-{}", Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let support = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support");
        let child = std::process::Command::new("/usr/bin/python3")
            .args([
                "-m",
                "aiosmtpd",
                "-n",
                "-l",
                &format!("127.0.0.1:{port}"),
                "-c",
                "smtp_sink.Sink",
            ])
            .arg(&dir)
            .env("PYTHONPATH", support)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("python3-aiosmtpd is installed (.ci/run installs it)");
        // Owned at once, so a failure below still kills and reaps the child (Drop).
        let server = SmtpServer { child, port, dir };
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return server;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        drop(server);
        panic!("aiosmtpd did not start on port {port}");
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// The messages received so far (decoded: subject, to, text, html, rcpt_tos, message_id).
    pub fn messages(&self) -> Vec<Value> {
        let mut out: Vec<Value> = std::fs::read_dir(&self.dir)
            .unwrap()
            .filter_map(Result::ok)
            .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
            .map(|e| serde_json::from_slice(&std::fs::read(e.path()).unwrap()).unwrap())
            .collect();
        out.sort_by_key(|m| m["subject"].as_str().unwrap_or("").to_string());
        out
    }

    /// Waits until at least `n` messages arrived, and returns them all.
    pub async fn wait_for(&self, n: usize) -> Vec<Value> {
        for _ in 0..600 {
            let got = self.messages();
            if got.len() >= n {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{n} messages never arrived: {:#?}", self.messages());
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A Slack-style incoming-webhook receiver: an axum server on a free port keeping every body.
pub struct SlackReceiver {
    pub url: String,
    pub posts: Arc<Mutex<Vec<Value>>>,
    task: tokio::task::JoinHandle<()>,
}

impl SlackReceiver {
    pub async fn start() -> SlackReceiver {
        let posts: Arc<Mutex<Vec<Value>>> = Arc::default();
        let kept = posts.clone();
        let app = axum::Router::new().route(
            "/services/T000/B000/XXXX",
            axum::routing::post(move |body: axum::body::Bytes| {
                let kept = kept.clone();
                async move {
                    kept.lock()
                        .unwrap()
                        .push(serde_json::from_slice(&body).unwrap_or(Value::Null));
                    "ok"
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        SlackReceiver {
            url: format!("http://{addr}/services/T000/B000/XXXX"),
            posts,
            task,
        }
    }

    pub fn posts(&self) -> Vec<Value> {
        self.posts.lock().unwrap().clone()
    }
}

impl Drop for SlackReceiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}
