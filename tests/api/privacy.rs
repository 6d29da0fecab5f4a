//! Privacy (SPEC §9): no raw IP or email on disk or in logs, GPC and consent, suppression.

use lux::privacy::SuppressionTarget;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{BROWSER_UA, ServeProcess, TestApp, TestDb, create_company, pg_dump};

const KNOWN_IP: &str = "203.0.113.77";
const KNOWN_SERVER_IP: &str = "198.51.100.23";
const KNOWN_EMAIL: &str = "Jane.Known@Example.com";

#[tokio::test]
async fn a_known_ip_and_email_appear_nowhere_in_the_database_dump_or_the_logs() {
    let db = TestDb::new().await;
    let log = std::env::temp_dir().join(format!("{}.log", db.name));
    // Debug logging: the most a misconfigured deployment would print.
    let node = ServeProcess::spawn(&db.url, &["--trust-proxy"], Some(&log)).await;
    let owner = db.owner().await;
    let company = create_company(&owner, "Private").await;
    let client = reqwest::Client::new();
    let visitor = Uuid::now_v7();
    let browser = client
        .post(format!("{}/e?key={}", node.base, company.write_key))
        .header("x-forwarded-for", KNOWN_IP)
        .header("user-agent", BROWSER_UA)
        .body(
            json!([
                {"event_name": "page_view", "visitor_id": visitor, "page_url": "https://s.test/"},
                {"event_name": "identify", "visitor_id": visitor, "user_id": "u-1",
                 "email": KNOWN_EMAIL, "page_url": "https://s.test/account"},
                // Emails where they do not belong: a landing URL, a property, the user id.
                {"event_name": "page_view", "visitor_id": visitor,
                 "page_url": "https://s.test/welcome?email=Jane.Known%40Example.com&utm_source=mail",
                 "referrer": "https://mail.example.net/read?from=jane.known@example.com"},
                {"event_name": "lead_submit", "visitor_id": visitor,
                 "properties": {"form": {"contact": KNOWN_EMAIL}}, "page_url": "https://s.test/form"},
                {"event_name": "login", "visitor_id": visitor, "user_id": KNOWN_EMAIL,
                 "page_url": "https://s.test/login"}
            ])
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(browser.status(), 202);
    let answer: Value = browser.json().await.unwrap();
    assert_eq!(answer["stored"], 5, "{answer}");
    let server = client
        .post(format!("{}/e", node.base))
        .bearer_auth(&company.secret_key)
        .json(
            &json!({"event_name": "signup", "email": KNOWN_EMAIL.to_uppercase(),
                      "ip": KNOWN_SERVER_IP, "user_agent": BROWSER_UA}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(server.status(), 202);
    // Bad input is logged too; make sure that path is exercised.
    let _ = client
        .post(format!("{}/e?key={}", node.base, company.write_key))
        .header("x-forwarded-for", KNOWN_IP)
        .body(format!(
            "{{\"event_name\": \"x\", \"email\": \"{KNOWN_EMAIL}\""
        ))
        .send()
        .await
        .unwrap();
    node.terminate();

    // The data was processed: hashes exist for the IPs and the email.
    let hashed: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM raw_events WHERE ip_hash IS NOT NULL AND length(ip_hash) = 32",
    )
    .fetch_one(&owner)
    .await
    .unwrap();
    assert_eq!(hashed, 6);
    let email_hashes: i64 = sqlx::query_scalar(
        "SELECT count(DISTINCT email_hash) FROM raw_events WHERE email_hash IS NOT NULL",
    )
    .fetch_one(&owner)
    .await
    .unwrap();
    assert_eq!(
        email_hashes, 1,
        "the same address, normalised, hashes alike"
    );

    let dump = pg_dump(&db.url);
    assert!(dump.contains("identify"), "the dump holds the events");
    let logs = std::fs::read_to_string(&log).unwrap();
    assert!(logs.contains("listening"), "the logs were captured");
    assert!(
        dump.contains("email=[email]"),
        "the landing URL is kept, without the address"
    );
    for needle in [
        KNOWN_IP,
        KNOWN_SERVER_IP,
        "jane.known@example.com",
        "jane.known%40example.com",
        KNOWN_EMAIL,
    ] {
        assert!(
            !dump.to_lowercase().contains(&needle.to_lowercase()),
            "{needle} is in the dump"
        );
        assert!(
            !logs.to_lowercase().contains(&needle.to_lowercase()),
            "{needle} is in the logs"
        );
    }
    assert!(
        !logs.contains(&company.secret_key),
        "a secret key is in the logs"
    );
    assert!(
        !logs.contains(&company.write_key),
        "a write key is in the logs"
    );
    // A line per answer at debug level: the matched route, the status and the latency.
    let answered = logs
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .find(|line| line["span"]["route"] == "/e" && line["fields"]["status"] == 202)
        .unwrap_or_else(|| panic!("no request line for /e in the logs:\n{logs}"));
    assert!(answered["fields"]["latency"].is_string(), "{answered}");
}

async fn stored_row(app: &TestApp, event_id: Uuid) -> Value {
    sqlx::query_scalar("SELECT to_jsonb(e) FROM raw_events e WHERE event_id = $1")
        .bind(event_id)
        .fetch_one(&app.owner)
        .await
        .unwrap()
}

/// Sends two events from one browser (same visitor id, user id and email) with `extra`
/// request settings, and returns the stored rows and the answers.
async fn two_visits(
    app: &TestApp,
    gpc_header: bool,
    event_extra: Value,
) -> Vec<(Value, Value, bool)> {
    let visitor = Uuid::now_v7();
    let mut out = Vec::new();
    for page in ["https://s.test/one", "https://s.test/two"] {
        let id = Uuid::now_v7();
        let mut event = json!({"event_id": id, "event_name": "login", "visitor_id": visitor,
            "user_id": "u-77", "email": "gpc@example.com", "page_url": page});
        for (k, v) in event_extra.as_object().unwrap() {
            event[k] = v.clone();
        }
        let mut request = app
            .client
            .post(format!("{}/e?key={}", app.base, app.company.write_key))
            .header("user-agent", BROWSER_UA)
            .body(event.to_string());
        if gpc_header {
            request = request.header("sec-gpc", "1");
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 202);
        let cookie = response.headers().contains_key("set-cookie");
        let answer: Value = response.json().await.unwrap();
        out.push((stored_row(app, id).await, answer, cookie));
    }
    out
}

fn assert_unlinkable(rows: &[(Value, Value, bool)], gpc: bool) {
    let (first, second) = (&rows[0].0, &rows[1].0);
    assert_ne!(
        first["visitor_id"], second["visitor_id"],
        "visits must not be linked"
    );
    for (row, answer, cookie) in rows {
        assert_eq!(row["gpc"], gpc);
        assert!(row["user_id"].is_null(), "no user id: {row}");
        assert!(row["email_hash"].is_null(), "no email hash: {row}");
        assert!(row["ip_hash"].is_null(), "no ip hash: {row}");
        assert!(
            answer["visitor_id"].is_null(),
            "no visitor id returned: {answer}"
        );
        assert!(!cookie, "no cookie set");
    }
}

#[tokio::test]
async fn with_sec_gpc_no_persistent_identifier_links_visits() {
    let app = TestApp::spawn().await;
    let rows = two_visits(&app, true, json!({})).await;
    assert_unlinkable(&rows, true);
    assert_eq!(app.count("SELECT count(*) FROM identity_keys").await, 0);
    app.stop().await;
}

#[tokio::test]
async fn with_gpc_in_the_event_or_analytics_consent_denied_nothing_links_either() {
    let app = TestApp::spawn().await;
    let rows = two_visits(&app, false, json!({"gpc": true})).await;
    assert_unlinkable(&rows, true);
    let rows = two_visits(&app, false, json!({"consent": {"analytics": false}})).await;
    assert_unlinkable(&rows, false);
    assert_eq!(app.count("SELECT count(*) FROM identity_keys").await, 0);
    // With consent, the same visits are linked.
    let rows = two_visits(&app, false, json!({"consent": {"analytics": true}})).await;
    assert_eq!(rows[0].0["visitor_id"], rows[1].0["visitor_id"]);
    assert!(rows[0].0["email_hash"].is_string());
    app.stop().await;
}

#[tokio::test]
async fn suppressed_users_visitors_and_emails_are_not_stored() {
    let app = TestApp::spawn().await;
    let company = app.company.id;
    let (suppressed_visitor, linked_visitor, free_visitor) =
        (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    // The linked visitor logged in as the user before the user asked to be suppressed.
    let (status, _) = app
        .post_events(&json!({"event_name": "login", "visitor_id": linked_visitor,
            "user_id": "user-s", "page_url": "https://s.test/"}))
        .await;
    assert_eq!(status, 202);
    let before = app.count("SELECT count(*) FROM raw_events").await;

    for target in [
        SuppressionTarget::User("user-s".into()),
        SuppressionTarget::Visitor(suppressed_visitor),
        SuppressionTarget::Email("Opted.Out@example.com".into()),
    ] {
        lux::privacy::suppress(&app.owner, company.into(), &target)
            .await
            .unwrap();
    }
    let (status, body) = app
        .post_events(&json!([
            {"event_name": "page_view", "visitor_id": suppressed_visitor, "page_url": "https://s.test/"},
            {"event_name": "page_view", "visitor_id": linked_visitor, "page_url": "https://s.test/"},
            {"event_name": "page_view", "visitor_id": free_visitor, "user_id": "user-s", "page_url": "https://s.test/"},
            {"event_name": "signup", "visitor_id": free_visitor, "email": "opted.out@EXAMPLE.com", "page_url": "https://s.test/"},
            {"event_name": "page_view", "visitor_id": free_visitor, "page_url": "https://s.test/ok"}
        ]))
        .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["suppressed"], 4, "{body}");
    assert_eq!(body["stored"], 1, "{body}");
    assert_eq!(
        app.count("SELECT count(*) FROM raw_events").await,
        before + 1
    );
    app.stop().await;
}

#[tokio::test]
async fn a_company_with_tracking_off_stores_nothing() {
    let app = TestApp::spawn().await;
    lux::privacy::suppress(
        &app.owner,
        app.company.id.into(),
        &SuppressionTarget::Company,
    )
    .await
    .unwrap();
    let (status, body) = app
        .post_events(&json!({"event_name": "page_view", "page_url": "https://s.test/"}))
        .await;
    assert_eq!(status, 202);
    assert_eq!(body["accepted"], 0, "{body}");
    let (status, _) = app
        .post_server_events(&json!({"event_name": "signup", "user_id": "u"}))
        .await;
    assert_eq!(status, 202);
    assert_eq!(app.count("SELECT count(*) FROM raw_events").await, 0);
    assert_eq!(app.count("SELECT count(*) FROM sessions").await, 0);
    app.stop().await;
}

#[tokio::test]
async fn ip_salts_of_past_days_are_destroyed_at_rotation() {
    let app = TestApp::spawn().await;
    // A salt left from an earlier day, as after midnight.
    sqlx::query("INSERT INTO ip_salts (day, salt) VALUES (current_date - 1, decode(repeat('ab', 32), 'hex'))")
        .execute(&app.owner)
        .await
        .unwrap();
    let hasher = lux::privacy::IpHasher::new(app.owner.clone());
    hasher.salt(chrono::Utc::now()).await.unwrap();
    assert_eq!(
        app.count("SELECT count(*) FROM ip_salts WHERE day < current_date")
            .await,
        0
    );
    assert_eq!(app.count("SELECT count(*) FROM ip_salts").await, 1);
    app.stop().await;
}
