//! Creative performance and fatigue (issue 16): the catalog through `POST /api/v1/creatives`,
//! spend through `lux import spend` (with reach), sessions and orders through the real `/e`,
//! the jobs run as the scheduler runs them, and the `creatives`, `creative_decay` and
//! `creative_fatigue` reports against figures worked out by hand in the comments.

use chrono::NaiveDate;
use lux::jobs::{Job, Mode, WhenBusy};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

use crate::helpers::{BROWSER_UA, Company, TestApp, answer, create_company, temp_csv};

const THANKS: &str = "https://shop.example/thanks";

fn paid_social(content: &str) -> String {
    format!(
        "https://shop.example/?utm_source=facebook&utm_medium=paid_social&utm_campaign=bf\
         &utm_content={content}"
    )
}

async fn post_creatives(app: &TestApp, key: &str, body: &Value) -> (StatusCode, Value) {
    let response = app
        .client
        .post(format!("{}/api/v1/creatives", app.base))
        .bearer_auth(key)
        .json(body)
        .send()
        .await
        .unwrap();
    answer(response).await
}

async fn report(app: &TestApp, key: &str, path: &str) -> Value {
    let response = app
        .client
        .get(format!("{}/api/v1/reports/{path}", app.base))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    let (status, body) = answer(response).await;
    assert_eq!(status, StatusCode::OK, "{path}: {body}");
    body["rows"].clone()
}

/// Sends events with the secret key, as a shop's server would (times given).
async fn send(app: &TestApp, company: &Company, events: Value) {
    let response = app
        .client
        .post(format!("{}/e", app.base))
        .bearer_auth(&company.secret_key)
        .header("user-agent", BROWSER_UA)
        .json(&events)
        .send()
        .await
        .unwrap();
    let (status, body) = answer(response).await;
    assert_eq!(status, 202, "{body}");
    assert!(body["rejected"].as_array().unwrap().is_empty(), "{body}");
}

fn event(name: &str, visitor: Uuid, page: &str, at: &str) -> Value {
    json!({"event_id": Uuid::now_v7(), "event_name": name, "visitor_id": visitor,
           "page_url": page, "occurred_at": at})
}

/// A visit that lands on `landing` at `at` (UTC, a Paris day), sees a product page carrying
/// `creative_id` if given, and buys `order` for `value` EUR two minutes later if given.
async fn visit(
    app: &TestApp,
    company: &Company,
    landing: &str,
    creative_id: Option<&str>,
    order: Option<(&str, &str)>,
    at: &str,
) {
    let visitor = Uuid::new_v4();
    let t = |minutes: i64| {
        (at.parse::<chrono::DateTime<chrono::Utc>>().unwrap() + chrono::Duration::minutes(minutes))
            .to_rfc3339()
    };
    send(app, company, event("page_view", visitor, landing, &t(0))).await;
    let mut product = event("page_view", visitor, "https://shop.example/p/1", &t(1));
    if let Some(id) = creative_id {
        product["creative_id"] = json!(id);
    }
    send(app, company, product).await;
    if let Some((order, value)) = order {
        let mut purchase = event("purchase", visitor, THANKS, &t(2));
        purchase["properties"] = json!({"order_id": order, "value": value, "currency": "EUR"});
        send(app, company, purchase).await;
        crate::helpers::wait_for_order(&app.owner, company.id, order).await;
    }
}

async fn run_job(pool: &PgPool, company: Uuid, job: Job, mode: Mode) -> lux::jobs::RunReport {
    lux::jobs::run(
        pool,
        lux::ids::CompanyId::from_uuid(company),
        job,
        (mode, WhenBusy::Wait),
        chrono::Utc::now(),
    )
    .await
    .unwrap()
    .expect("ran")
}

fn day(text: &str) -> NaiveDate {
    text.parse().unwrap()
}

/// Company A (Paris, EUR), all on 2026-11-10:
///
/// | creative | catalog (concept, angle) | spend  | impressions | clicks | reach | sessions | orders (last touch) |
/// |----------|--------------------------|--------|-------------|--------|-------|----------|---------------------|
/// | c1       | ugc, price               | 100.00 | 10,000      | 200    | 5,000 | 2 (utm_content) | O1 60.00, O2 40.00 |
/// | c2       | ugc, quality             | 50.00  | 4,000       | 40     | —     | 1 (creative_id on an event; its landing says utm_content=zz) | O3 25.00 |
/// | c3       | founder, price           | 30.00  | 3,000       | 30     | 1,000 | 1        | —                   |
/// | u9       | not in the catalog       | 10.00  | 1,000       | 10     | —     | 0        | —                   |
///
/// By creative: c1 ctr 200/10000 = 0.02, cpc 100/200 = 0.50, cpm 100×1000/10000 = 10.00,
/// frequency 10000/5000 = 2, orders 2, revenue 100.00, cpa 100/2 = 50.00, roas 100/100 = 1.
/// c2: ctr 0.01, cpc 1.25, cpm 12.50, no reach, orders 1, revenue 25.00, cpa 50.00, roas 0.5.
/// c3: ctr 0.01, cpc 1.00, cpm 10.00, frequency 3, no orders (cpa null), roas 0.
/// u9: ctr 0.01, cpc 1.00, cpm 10.00, unnamed, roas 0.
///
/// By concept: ugc = c1 + c2: 14,000 impressions, 240 clicks (ctr 0.017142… → 0.0171),
/// spend 150.00, cpc 150/240 = 0.625 → 0.63, cpm 150000/14000 = 10.714… → 10.71, reach 5,000
/// with 10,000 of its impressions (frequency 2), sessions 3, orders 3, revenue 125.00,
/// cpa 50.00, roas 125/150 = 0.8333. founder = c3. null = u9.
/// By angle: price = c1 + c3: 13,000 impressions, 230 clicks (0.017692… → 0.0177), spend
/// 130.00, cpc 130/230 = 0.5652… → 0.57, cpm 10.00, reach 6,000 over 13,000 impressions
/// (frequency 2.1667), sessions 3, orders 2, revenue 100.00, cpa 65.00, roas 100/130 = 0.7692.
#[tokio::test]
async fn creative_roas_cpa_and_concept_and_angle_totals_match_the_hand_computed_figures() {
    let app = TestApp::spawn().await;
    let a = &app.company;
    let pool = lux::db::connect_app(&app.db.url, 4).unwrap();

    let (status, body) = post_creatives(
        &app,
        &a.secret_key,
        &json!([
            {"creative_id": "c1", "name": "Unboxing", "platform": "meta", "campaign": "bf",
             "concept": "ugc", "angle": "price", "format": "video", "launched_on": "2026-11-01"},
            {"creative_id": "c2", "name": "Review", "concept": "ugc", "angle": "quality",
             "launched_on": "2026-11-01"},
            {"creative_id": "c3", "name": "Founder story", "concept": "founder",
             "angle": "price", "launched_on": "2026-11-05"},
            {"creative_id": "c4", "name": "No launch day"},
            {"creative_id": "c1", "launched_on": "2026-11-02"},
        ]),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["accepted"], 3, "{body}");
    assert_eq!(body["rejected"][0]["index"], 3, "{body}");
    assert_eq!(body["rejected"][0]["error"], "launched_on is missing");
    assert_eq!(body["rejected"][1]["index"], 4, "{body}");
    assert!(
        body["rejected"][1]["error"]
            .as_str()
            .unwrap()
            .contains("repeats item 0"),
        "{body}"
    );
    // Nothing valid: a JSON 400 naming every item.
    let (status, body) = post_creatives(&app, &a.secret_key, &json!([{"name": "x"}])).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("no valid creative")
    );
    assert_eq!(body["rejected"][0]["error"], "creative_id is missing");
    // The write key is public: it cannot write the catalog.
    let (status, _) = post_creatives(&app, &a.write_key, &json!([{"creative_id": "x"}])).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let spend = temp_csv(
        "spend",
        "date,platform,channel,source,medium,campaign,ad_id,spend,impressions,clicks,currency,reach\n\
         2026-11-10,meta,Paid Social,facebook,paid_social,bf,c1,100.00,10000,200,EUR,5000\n\
         2026-11-10,meta,Paid Social,facebook,paid_social,bf,c2,50.00,4000,40,EUR,\n\
         2026-11-10,meta,Paid Social,facebook,paid_social,bf,c3,30.00,3000,30,EUR,1000\n\
         2026-11-10,meta,Paid Social,facebook,paid_social,bf,u9,10.00,1000,10,EUR,\n",
    );
    let (ok, summary, stderr) = crate::helpers::lux_import(&app.db, a, "spend", &spend);
    assert!(ok, "{stderr}");
    assert_eq!(summary["inserted"], 4, "{summary}");

    // 2026-11-10 in Paris is UTC+1: 09:00Z is 10:00 local.
    let c1 = paid_social("c1");
    visit(
        &app,
        a,
        &c1,
        None,
        Some(("O1", "60.00")),
        "2026-11-10T09:00:00Z",
    )
    .await;
    visit(
        &app,
        a,
        &c1,
        None,
        Some(("O2", "40.00")),
        "2026-11-10T10:00:00Z",
    )
    .await;
    let zz = paid_social("zz");
    visit(
        &app,
        a,
        &zz,
        Some("c2"),
        Some(("O3", "25.00")),
        "2026-11-10T11:00:00Z",
    )
    .await;
    visit(
        &app,
        a,
        &paid_social("c3"),
        None,
        None,
        "2026-11-10T12:00:00Z",
    )
    .await;

    // Company B has its own creative under the same id, and must never see A's.
    let owner = app.owner.clone();
    let b = create_company(&owner, "Other").await;
    let (status, _) = post_creatives(
        &app,
        &b.secret_key,
        &json!([{"creative_id": "c1", "name": "B's own", "concept": "b-concept",
                 "launched_on": "2026-10-01"}]),
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    let days = Mode::Days {
        from: day("2026-11-10"),
        to: day("2026-11-10"),
    };
    for company in [a.id, b.id] {
        for job in Job::ALL {
            run_job(&pool, company, job, days).await;
        }
    }

    let range = "from=2026-11-10&to=2026-11-10";
    let rows = report(&app, &a.secret_key, &format!("creatives?{range}")).await;
    assert_eq!(
        rows,
        json!([
            {"creative_id": "c1", "name": "Unboxing", "concept": "ugc", "angle": "price",
             "impressions": 10000, "clicks": 200, "ctr": 0.02, "spend": "100.00",
             "cpc": "0.50", "cpm": "10.00", "reach": 5000, "frequency": 2.0, "sessions": 2,
             "orders": "2.00", "revenue": "100.00", "cpa": "50.00", "roas": 1.0,
             "currency": "EUR"},
            {"creative_id": "c2", "name": "Review", "concept": "ugc", "angle": "quality",
             "impressions": 4000, "clicks": 40, "ctr": 0.01, "spend": "50.00", "cpc": "1.25",
             "cpm": "12.50", "reach": null, "frequency": null, "sessions": 1,
             "orders": "1.00", "revenue": "25.00", "cpa": "50.00", "roas": 0.5,
             "currency": "EUR"},
            {"creative_id": "c3", "name": "Founder story", "concept": "founder",
             "angle": "price", "impressions": 3000, "clicks": 30, "ctr": 0.01,
             "spend": "30.00", "cpc": "1.00", "cpm": "10.00", "reach": 1000,
             "frequency": 3.0, "sessions": 1, "orders": "0.00", "revenue": "0.00",
             "cpa": null, "roas": 0.0, "currency": "EUR"},
            {"creative_id": "u9", "name": null, "concept": null, "angle": null,
             "impressions": 1000, "clicks": 10, "ctr": 0.01, "spend": "10.00", "cpc": "1.00",
             "cpm": "10.00", "reach": null, "frequency": null, "sessions": 0,
             "orders": "0.00", "revenue": "0.00", "cpa": null, "roas": 0.0,
             "currency": "EUR"},
        ])
    );
    let concepts = report(
        &app,
        &a.secret_key,
        &format!("creatives?{range}&group=concept"),
    )
    .await;
    assert_eq!(
        concepts,
        json!([
            {"concept": "founder", "creatives": 1, "impressions": 3000, "clicks": 30,
             "ctr": 0.01, "spend": "30.00", "cpc": "1.00", "cpm": "10.00", "reach": 1000,
             "frequency": 3.0, "sessions": 1, "orders": "0.00", "revenue": "0.00",
             "cpa": null, "roas": 0.0, "currency": "EUR"},
            {"concept": "ugc", "creatives": 2, "impressions": 14000, "clicks": 240,
             "ctr": 0.0171, "spend": "150.00", "cpc": "0.63", "cpm": "10.71", "reach": 5000,
             "frequency": 2.0, "sessions": 3, "orders": "3.00", "revenue": "125.00",
             "cpa": "50.00", "roas": 0.8333, "currency": "EUR"},
            {"concept": null, "creatives": 1, "impressions": 1000, "clicks": 10,
             "ctr": 0.01, "spend": "10.00", "cpc": "1.00", "cpm": "10.00", "reach": null,
             "frequency": null, "sessions": 0, "orders": "0.00", "revenue": "0.00",
             "cpa": null, "roas": 0.0, "currency": "EUR"},
        ])
    );
    let angles = report(
        &app,
        &a.secret_key,
        &format!("creatives?{range}&group=angle&model=first_touch"),
    )
    .await;
    let price = &angles[0];
    assert_eq!(price["angle"], "price", "{angles}");
    assert_eq!(
        (
            &price["impressions"],
            &price["clicks"],
            &price["ctr"],
            &price["spend"],
            &price["cpc"],
            &price["cpm"],
        ),
        (
            &json!(13000),
            &json!(230),
            &json!(0.0177),
            &json!("130.00"),
            &json!("0.57"),
            &json!("10.00")
        ),
        "{angles}"
    );
    assert_eq!(
        (
            &price["reach"],
            &price["frequency"],
            &price["sessions"],
            &price["orders"],
            &price["revenue"],
            &price["cpa"],
            &price["roas"],
        ),
        (
            &json!(6000),
            &json!(2.1667),
            &json!(3),
            &json!("2.00"),
            &json!("100.00"),
            &json!("65.00"),
            &json!(0.7692)
        ),
        "{angles}"
    );
    assert_eq!(angles[1]["angle"], "quality", "{angles}");
    assert_eq!(angles[2]["angle"], Value::Null, "{angles}");

    // c1 launched on 11-01: the 10th is day 9 of its life.
    let decay = report(
        &app,
        &a.secret_key,
        &format!("creative_decay?{range}&creative_id=c1"),
    )
    .await;
    assert_eq!(
        decay,
        json!([{"day": "2026-11-10", "days_since_launch": 9, "impressions": 10000,
                "clicks": 200, "ctr": 0.02}])
    );

    // Tenancy: B sees its own c1 (one session-less, spend-less creative: no rows at all) and
    // none of A's numbers, under any grouping; its catalog row did not touch A's.
    for path in [
        format!("creatives?{range}"),
        format!("creatives?{range}&group=concept"),
        format!("creative_decay?{range}&creative_id=c1"),
        "creative_fatigue?from=2026-11-01&to=2026-11-30".to_string(),
    ] {
        assert_eq!(
            report(&app, &b.secret_key, &path).await,
            json!([]),
            "{path}"
        );
    }
    let names: Vec<(Uuid, Option<String>)> = sqlx::query_as(
        "SELECT company_id, name FROM creatives WHERE creative_id = 'c1' ORDER BY name",
    )
    .fetch_all(&owner)
    .await
    .unwrap();
    assert_eq!(
        names,
        [
            (b.id, Some("B's own".to_string())),
            (a.id, Some("Unboxing".to_string()))
        ]
    );
    pool.close().await;
    app.stop().await;
}

/// The snippet's way: `POST /e?key=WRITE_KEY` with no `occurred_at` (the time of receipt). One
/// visitor's event names the creative with `creative_id`; another lands with
/// `utm_content=ad-77`. Both sessions are the creative's.
#[tokio::test]
async fn creative_id_from_a_snippet_event_and_utm_content_from_a_landing_are_the_same_creative() {
    let app = TestApp::spawn().await;
    let a = &app.company;
    let pool = lux::db::connect_app(&app.db.url, 4).unwrap();
    let (one, two) = (Uuid::now_v7(), Uuid::now_v7());
    let (status, body) = app
        .post_events(&json!([
            {"event_id": Uuid::now_v7(), "event_name": "page_view", "visitor_id": one,
             "page_url": "https://shop.example/", "referrer": null, "properties": {}},
            {"event_id": Uuid::now_v7(), "event_name": "video_play", "visitor_id": one,
             "page_url": "https://shop.example/", "properties": {}, "creative_id": "ad-77"},
        ]))
        .await;
    assert_eq!(status, 202, "{body}");
    let (status, body) = app
        .post_events(
            &json!({"event_id": Uuid::now_v7(), "event_name": "page_view",
            "visitor_id": two, "page_url": paid_social("ad-77"), "properties": {}}),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let stored: Vec<(Option<String>, Option<String>)> = sqlx::query_as(
        "SELECT creative_id, utm_content FROM sessions WHERE company_id = $1
         ORDER BY visitor_id",
    )
    .bind(a.id)
    .fetch_all(&app.owner)
    .await
    .unwrap();
    assert_eq!(
        stored,
        [
            (Some("ad-77".to_string()), None),
            (None, Some("ad-77".to_string()))
        ]
    );

    // Yesterday to tomorrow in Paris: today, whenever the test runs.
    let today = chrono::Utc::now().date_naive();
    let (from, to) = (today.pred_opt().unwrap(), today.succ_opt().unwrap());
    for job in [Job::Attribution, Job::Rollups] {
        run_job(&pool, a.id, job, Mode::Days { from, to }).await;
    }
    let rows = report(
        &app,
        &a.secret_key,
        &format!("creatives?from={from}&to={to}"),
    )
    .await;
    assert_eq!(rows.as_array().map(Vec::len), Some(1), "{rows}");
    assert_eq!(rows[0]["creative_id"], "ad-77", "{rows}");
    assert_eq!(rows[0]["sessions"], 2, "{rows}");
    pool.close().await;
    app.stop().await;
}

/// The fatigue job over hand-made spend rows, 2026-10-01 to 10-21:
/// - `steady`: 2,000 impressions and 40 clicks (2 %) every day: `fresh` from day 8 on;
/// - `tired`: the same for a week, then 3,000 impressions a day at 30 clicks (1 %): as of
///   10-08, baseline 280/14,000 against 30/3,000, a 50 % drop, p ≈ 0.0001, impressions per day
///   up from 2,000 to 3,000: `fatigued` from that day on.
///
/// Before 10-08 both are `insufficient_data` (on 10-07 the baseline week has just ended).
#[tokio::test]
async fn the_fatigue_job_keeps_each_day_s_verdict_and_the_report_shows_the_latest() {
    let app = TestApp::spawn().await;
    let a = &app.company;
    let pool = lux::db::connect_app(&app.db.url, 4).unwrap();
    let first = day("2026-10-01");
    for (offset, d) in first.iter_days().take(21).enumerate() {
        let tired = if offset < 7 { (2000, 40) } else { (3000, 30) };
        for (ad, (impressions, clicks)) in [("steady", (2000, 40)), ("tired", tired)] {
            sqlx::query(
                "INSERT INTO ad_spend (company_id, day, platform, campaign, ad_id, channel,
                     currency, spend, impressions, clicks)
                 VALUES ($1, $2, 'meta', 'bf', $3, 'Paid Social', 'EUR', 20, $4, $5)",
            )
            .bind(a.id)
            .bind(d)
            .bind(ad)
            .bind(impressions as i64)
            .bind(clicks as i64)
            .execute(&app.owner)
            .await
            .unwrap();
        }
    }
    let october = Mode::Days {
        from: first,
        to: day("2026-10-21"),
    };
    run_job(&pool, a.id, Job::Rollups, october).await;
    run_job(&pool, a.id, Job::CreativeFatigue, october).await;

    let history = |creative: &'static str| {
        let owner = app.owner.clone();
        async move {
            sqlx::query_as::<_, (NaiveDate, String, chrono::DateTime<chrono::Utc>)>(
                "SELECT day, status, computed_at FROM creative_fatigue_history
                 WHERE company_id = $1 AND creative_id = $2 ORDER BY day",
            )
            .bind(a.id)
            .bind(creative)
            .fetch_all(&owner)
            .await
            .unwrap()
        }
    };
    let statuses = |rows: &[(NaiveDate, String, chrono::DateTime<chrono::Utc>)]| {
        rows.iter()
            .map(|(d, s, _)| (d.to_string(), s.clone()))
            .collect::<Vec<_>>()
    };
    let expected = |from_day_8: &str| {
        first
            .iter_days()
            .take(21)
            .enumerate()
            .map(|(i, d)| {
                let status = if i < 7 {
                    "insufficient_data"
                } else {
                    from_day_8
                };
                (d.to_string(), status.to_string())
            })
            .collect::<Vec<_>>()
    };
    let tired = history("tired").await;
    assert_eq!(statuses(&tired), expected("fatigued"));
    assert_eq!(statuses(&history("steady").await), expected("fresh"));

    // Rerunning the days changes nothing, not even when the rows were computed.
    run_job(&pool, a.id, Job::CreativeFatigue, october).await;
    assert_eq!(history("tired").await, tired);

    let rows = report(
        &app,
        &a.secret_key,
        "creative_fatigue?from=2026-10-01&to=2026-10-21",
    )
    .await;
    assert_eq!(rows.as_array().map(Vec::len), Some(2), "{rows}");
    let (fatigued, fresh) = (&rows[0], &rows[1]);
    assert_eq!(
        (
            &fatigued["creative_id"],
            &fatigued["status"],
            &fatigued["day"]
        ),
        (&json!("tired"), &json!("fatigued"), &json!("2026-10-21")),
        "{rows}"
    );
    // As of 10-21: baseline 280/14,000 = 0.02; recent (10-15..21) 210/21,000 = 0.01.
    assert_eq!(fatigued["baseline_ctr"], 0.02, "{rows}");
    assert_eq!(fatigued["recent_ctr"], 0.01, "{rows}");
    assert_eq!(fatigued["drop"], 0.5, "{rows}");
    assert_eq!(fatigued["p_value"], 0.0, "{rows}");
    assert_eq!(fatigued["baseline_impressions"], 14000, "{rows}");
    assert_eq!(fatigued["recent_impressions"], 21000, "{rows}");
    assert!(
        fatigued["explanation"]
            .as_str()
            .unwrap()
            .starts_with("Fatigued:"),
        "{rows}"
    );
    assert_eq!(
        (&fresh["creative_id"], &fresh["status"]),
        (&json!("steady"), &json!("fresh")),
        "{rows}"
    );
    // As of a day in the first week, both were not judged yet.
    let early = report(
        &app,
        &a.secret_key,
        "creative_fatigue?from=2026-10-01&to=2026-10-05",
    )
    .await;
    assert!(
        early
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["status"] == "insufficient_data"),
        "{early}"
    );

    // A full run goes on to a week after the last live day (the days since are complete):
    // 10-22 to 10-28 say "not served", and nothing is written twice.
    run_job(&pool, a.id, Job::CreativeFatigue, Mode::Full).await;
    let full = history("tired").await;
    assert_eq!(full.len(), 28);
    assert_eq!(full[..21], tired[..]);
    assert_eq!(full[27].1, "insufficient_data");

    // As the scheduler runs them: incrementally. A re-import lowers steady's clicks on 10-10
    // to 0: the rollups redo that day, and the fatigue job every day from it. As of 10-10 the
    // recent window (10-08..10) has 80 clicks in 6,000 impressions, 1.33 % against 2 %: a
    // third lower, p ≈ 0.0006, impressions per day as before: fatigued.
    // (Everything so far written an hour ago: the next runs find only what changes below.)
    sqlx::query("UPDATE ad_spend SET imported_at = imported_at - interval '1 hour'")
        .execute(&app.owner)
        .await
        .unwrap();
    for job in [Job::Rollups, Job::CreativeFatigue] {
        run_job(&pool, a.id, job, Mode::Incremental).await;
    }
    sqlx::query(
        "UPDATE ad_spend SET clicks = 0, imported_at = now()
         WHERE company_id = $1 AND ad_id = 'steady' AND day = '2026-10-10'",
    )
    .bind(a.id)
    .execute(&app.owner)
    .await
    .unwrap();
    let rollups = run_job(&pool, a.id, Job::Rollups, Mode::Incremental).await;
    assert_eq!(rollups.days_from, Some(day("2026-10-10")));
    let fatigue = run_job(&pool, a.id, Job::CreativeFatigue, Mode::Incremental).await;
    // From 10-10 at the latest (the previous rollups run, a full one, may have finished
    // within the watermark's few seconds of margin).
    assert!(!fatigue.full_run);
    assert!(fatigue.days_from <= Some(day("2026-10-10")), "{fatigue:?}");
    let steady = history("steady").await;
    assert_eq!(
        (steady[8].0, steady[8].1.as_str(), steady[9].1.as_str()),
        (day("2026-10-09"), "fresh", "fatigued")
    );
    pool.close().await;
    app.stop().await;
}
