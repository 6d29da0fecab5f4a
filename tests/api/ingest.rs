//! `/e` stores every column right, batches, idempotency, durable answers.

use serde_json::json;
use sqlx::Row;
use uuid::Uuid;

use crate::helpers::{TestApp, at_minute};

#[tokio::test]
async fn a_page_view_with_utms_and_click_ids_stores_every_column() {
    let app = TestApp::spawn().await;
    let event_id = Uuid::now_v7();
    let visitor = Uuid::now_v7();
    let url = "https://shop.test/landing?utm_source=Google&utm_medium=cpc&utm_campaign=black_friday\
               &utm_term=red+shoes&utm_content=ad-7&gclid=G1&gbraid=GB&wbraid=WB&fbclid=FB\
               &msclkid=MS&ttclid=TT&li_fat_id=LI";
    let (status, body) = app
        .post_events(&json!({
            "event_id": event_id,
            "event_name": "page_view",
            "visitor_id": visitor,
            "page_url": url,
            "referrer": "https://www.google.com/",
            "creative_id": "cr-9",
            "consent": {"analytics": true, "marketing": false},
            "properties": {"title": "Landing"}
        }))
        .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["accepted"], 1);
    assert_eq!(body["visitor_id"], visitor.to_string());

    let row = sqlx::query("SELECT * FROM raw_events WHERE event_id = $1")
        .bind(event_id)
        .fetch_one(&app.owner)
        .await
        .unwrap();
    let text = |c: &str| row.get::<Option<String>, _>(c);
    assert_eq!(row.get::<Uuid, _>("company_id"), app.company.id);
    assert_eq!(row.get::<Uuid, _>("visitor_id"), visitor);
    assert_eq!(text("event_name").as_deref(), Some("page_view"));
    assert_eq!(text("page_url").as_deref(), Some(url));
    assert_eq!(text("referrer").as_deref(), Some("https://www.google.com/"));
    assert_eq!(text("utm_source").as_deref(), Some("Google"));
    assert_eq!(text("utm_medium").as_deref(), Some("cpc"));
    assert_eq!(text("utm_campaign").as_deref(), Some("black_friday"));
    assert_eq!(text("utm_term").as_deref(), Some("red shoes"));
    assert_eq!(text("utm_content").as_deref(), Some("ad-7"));
    for (column, value) in [
        ("gclid", "G1"),
        ("gbraid", "GB"),
        ("wbraid", "WB"),
        ("fbclid", "FB"),
        ("msclkid", "MS"),
        ("ttclid", "TT"),
        ("li_fat_id", "LI"),
    ] {
        assert_eq!(text(column).as_deref(), Some(value), "{column}");
    }
    assert_eq!(text("creative_id").as_deref(), Some("cr-9"));
    assert_eq!(text("key_kind").as_deref(), Some("write"));
    assert!(row.get::<bool, _>("consent_analytics"));
    assert_eq!(row.get::<Option<bool>, _>("consent_marketing"), Some(false));
    assert!(!row.get::<bool, _>("gpc"));
    assert!(!row.get::<bool, _>("is_bot"));
    assert!(text("user_agent").unwrap().contains("Chrome"));
    assert_eq!(
        row.get::<Option<Vec<u8>>, _>("ip_hash").map(|h| h.len()),
        Some(32)
    );
    assert_eq!(
        row.get::<serde_json::Value, _>("properties")["title"],
        "Landing"
    );
    let session: Uuid = row.get::<Option<Uuid>, _>("session_id").expect("a session");
    assert_eq!(body["session_id"], session.to_string());

    let s = sqlx::query("SELECT * FROM sessions WHERE session_id = $1")
        .bind(session)
        .fetch_one(&app.owner)
        .await
        .unwrap();
    assert_eq!(s.get::<String, _>("source"), "google");
    assert_eq!(s.get::<String, _>("medium"), "cpc");
    assert_eq!(
        s.get::<Option<String>, _>("campaign").as_deref(),
        Some("black_friday")
    );
    assert_eq!(s.get::<String, _>("channel"), "Paid Search");
    assert_eq!(
        s.get::<Option<String>, _>("landing_page").as_deref(),
        Some(url)
    );
    assert_eq!(s.get::<Option<String>, _>("gclid").as_deref(), Some("G1"));
    assert_eq!(s.get::<i32, _>("page_views"), 1);
    app.stop().await;
}

#[tokio::test]
async fn a_batch_of_100_stores_100_and_sending_it_again_still_leaves_100() {
    let app = TestApp::spawn().await;
    let visitor = Uuid::now_v7();
    let events: Vec<_> = (0..100)
        .map(|i| {
            json!({
                "event_id": Uuid::now_v7(),
                "event_name": "page_view",
                "visitor_id": visitor,
                "page_url": format!("https://shop.test/p/{i}"),
            })
        })
        .collect();
    let batch = json!({ "events": events });
    let (status, body) = app.post_events(&batch).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["stored"], 100);
    assert_eq!(app.count("SELECT count(*) FROM raw_events").await, 100);

    let (status, body) = app.post_events(&batch).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["duplicates"], 100);
    assert_eq!(app.count("SELECT count(*) FROM raw_events").await, 100);
    // The retry did not inflate the session either.
    assert_eq!(app.count("SELECT sum(page_views) FROM sessions").await, 100);
    app.stop().await;
}

#[tokio::test]
async fn a_duplicate_inside_one_batch_is_stored_once() {
    let app = TestApp::spawn().await;
    let id = Uuid::now_v7();
    let event =
        json!({"event_id": id, "event_name": "signup_click", "page_url": "https://s.test/"});
    let (status, body) = app.post_events(&json!([event, event])).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(
        (body["stored"].as_i64(), body["duplicates"].as_i64()),
        (Some(1), Some(1))
    );
    assert_eq!(app.count("SELECT count(*) FROM raw_events").await, 1);
    app.stop().await;
}

#[tokio::test]
async fn implausible_browser_times_are_clamped_and_the_clamp_recorded() {
    let app = TestApp::spawn().await;
    let id = Uuid::now_v7();
    let (status, _) = app
        .post_events(&json!({"event_id": id, "event_name": "page_view",
            "page_url": "https://s.test/", "occurred_at": "2001-01-01T00:00:00Z"}))
        .await;
    assert_eq!(status, 202);
    let row = sqlx::query(
        "SELECT occurred_at_clamped, client_occurred_at, occurred_at > now() - interval '1 minute' AS recent
         FROM raw_events WHERE event_id = $1",
    )
    .bind(id)
    .fetch_one(&app.owner)
    .await
    .unwrap();
    assert!(row.get::<bool, _>("occurred_at_clamped"));
    assert!(row.get::<bool, _>("recent"));
    let original: chrono::DateTime<chrono::Utc> = row.get("client_occurred_at");
    assert_eq!(original.to_rfc3339(), "2001-01-01T00:00:00+00:00");
    app.stop().await;
}

#[tokio::test]
async fn server_side_calls_backfill_history_with_trusted_fields() {
    let app = TestApp::spawn().await;
    let id = Uuid::now_v7();
    let at = at_minute(0);
    let (status, body) = app
        .post_server_events(&json!({
            "event_id": id, "event_name": "signup", "occurred_at": at,
            "user_id": 42, "email": "backfill@example.com",
            "ip": "198.51.100.4", "user_agent": "Mozilla/5.0 (Macintosh) Safari/605.1.15",
            "page_url": "https://s.test/signup"
        }))
        .await;
    assert_eq!(status, 202, "{body}");
    let row = sqlx::query("SELECT * FROM raw_events WHERE event_id = $1")
        .bind(id)
        .fetch_one(&app.owner)
        .await
        .unwrap();
    let stored: chrono::DateTime<chrono::Utc> = row.get("occurred_at");
    assert_eq!(stored, chrono::DateTime::parse_from_rfc3339(&at).unwrap());
    assert_eq!(
        row.get::<Option<String>, _>("user_id").as_deref(),
        Some("42")
    );
    assert_eq!(row.get::<String, _>("key_kind"), "secret");
    assert!(
        row.get::<Option<String>, _>("user_agent")
            .unwrap()
            .contains("Safari")
    );
    assert_eq!(
        row.get::<Option<Vec<u8>>, _>("email_hash").map(|h| h.len()),
        Some(32)
    );
    app.stop().await;
}

#[tokio::test]
async fn health_and_readiness() {
    let app = TestApp::spawn().await;
    let health = app.get("/healthz").await;
    assert_eq!(health.status(), 200);
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status(), 200);
    app.stop().await;
}

#[tokio::test]
async fn server_side_events_are_not_bots_because_of_the_backend_s_user_agent() {
    let app = TestApp::spawn().await;
    for user_agent in [None, Some("curl/8.5.0"), Some("python-requests/2.32")] {
        let mut request = app
            .client
            .post(format!("{}/e", app.base))
            .bearer_auth(&app.company.secret_key)
            .json(&json!({"event_name": "signup", "user_id": "u-9"}));
        if let Some(ua) = user_agent {
            request = request.header("user-agent", ua);
        }
        assert_eq!(request.send().await.unwrap().status(), 202);
    }
    // The visitor's own user agent, forwarded, is judged.
    let (status, _) = app
        .post_server_events(&json!({"event_name": "signup",
            "user_agent": "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"}))
        .await;
    assert_eq!(status, 202);
    assert_eq!(
        app.count("SELECT count(*) FROM raw_events WHERE NOT is_bot")
            .await,
        3
    );
    assert_eq!(
        app.count("SELECT count(*) FROM raw_events WHERE is_bot")
            .await,
        1
    );
    app.stop().await;
}

#[tokio::test]
async fn bots_are_stored_but_flagged_and_the_answer_counts_them() {
    let app = TestApp::spawn().await;
    let response = app
        .client
        .post(format!("{}/e?key={}", app.base, app.company.write_key))
        .header(
            "user-agent",
            "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        )
        .body(json!({"event_name": "page_view", "page_url": "https://s.test/"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let answer: serde_json::Value = response.json().await.unwrap();
    assert_eq!(
        answer["bots"], 1,
        "the answer says the event was flagged: {answer}"
    );
    assert_eq!(
        app.count("SELECT count(*) FROM raw_events WHERE is_bot")
            .await,
        1
    );
    assert_eq!(
        app.count("SELECT count(*) FROM sessions WHERE is_bot")
            .await,
        1
    );
    app.stop().await;
}

/// The first test a new user makes, from a terminal: curl's user agent is a bot's, and the
/// answer says so instead of the event vanishing from every report without a sign.
#[tokio::test]
async fn an_event_sent_with_curl_is_answered_as_a_bot() {
    let app = TestApp::spawn().await;
    let batch = json!([
        {"event_name": "page_view", "page_url": "https://s.test/"},
        {"event_name": "add_to_cart", "page_url": "https://s.test/p"},
    ]);
    let response = app
        .client
        .post(format!("{}/e?key={}", app.base, app.company.write_key))
        .header("user-agent", "curl/8.5.0")
        .body(batch.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let answer: serde_json::Value = response.json().await.unwrap();
    assert_eq!(answer["stored"], 2, "{answer}");
    assert_eq!(answer["bots"], 2, "{answer}");
    let (_, browser) = app.post_events(&batch).await;
    assert_eq!(
        browser["bots"], 0,
        "a browser's events are not bots: {browser}"
    );
    app.stop().await;
}
