//! The snippet in a real headless Chromium (Debian's package): page views, SPA navigation,
//! `lux.track` and `lux.identify` arrive as rows; with GPC nothing persistent is kept.

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use uuid::Uuid;

use crate::helpers::{BROWSER_UA, TestApp};

fn chromium() -> &'static str {
    for candidate in [
        "/usr/bin/chromium",
        "/usr/bin/chromium-browser",
        "/usr/bin/google-chrome",
    ] {
        if Path::new(candidate).exists() {
            return candidate;
        }
    }
    panic!(
        "headless Chromium is required for the snippet tests: apt-get install chromium (.ci/run does)"
    );
}

/// Loads `url` in headless Chromium with the given profile and returns the final DOM.
pub(crate) fn load_page(url: &str, profile: &Path) -> String {
    let output = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            &format!("--user-agent={BROWSER_UA}"),
            &format!("--user-data-dir={}", profile.display()),
            "--virtual-time-budget=10000",
            "--dump-dom",
            url,
        ])
        .output()
        .expect("run chromium");
    assert!(
        output.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Loads the dev page in Chromium (off the async runtime) and returns its `#status` JSON.
pub(crate) async fn page_status_after_load(url: &str, profile: &Path) -> Value {
    let (url, profile) = (url.to_string(), profile.to_path_buf());
    let dom = tokio::task::spawn_blocking(move || load_page(&url, &profile))
        .await
        .unwrap();
    page_status(&dom)
}

/// The JSON the dev page writes into `#status`.
fn page_status(dom: &str) -> Value {
    let start =
        dom.find("<pre id=\"status\">").expect("status element") + "<pre id=\"status\">".len();
    let end = start + dom[start..].find("</pre>").expect("end of status");
    let text = dom[start..end]
        .replace("&quot;", "\"")
        .replace("&amp;", "&");
    serde_json::from_str(&text).unwrap_or_else(|_| panic!("status is not JSON: {text}"))
}

pub(crate) async fn wait_for_rows(app: &TestApp, sql: &str, want: i64) -> i64 {
    let mut n = 0;
    for _ in 0..100 {
        n = app.count(sql).await;
        if n >= want {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    n
}

/// event name, visitor id, page URL, user id, bot flag.
type StoredEvent = (String, String, Option<String>, Option<String>, bool);

pub(crate) fn profile_dir(name: &str) -> Profile {
    let dir = std::env::temp_dir().join(format!("lux-chromium-{name}-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    Profile(dir)
}

/// A browser profile directory, removed when the test is done with it (each holds megabytes
/// of Chromium's caches).
pub(crate) struct Profile(std::path::PathBuf);

impl std::ops::Deref for Profile {
    type Target = Path;

    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for Profile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[tokio::test]
async fn page_views_spa_navigation_track_and_identify_arrive_from_a_real_browser() {
    let app = TestApp::spawn().await;
    let profile = profile_dir("snippet");
    let url = format!("{}/dev?key={}&auto=1", app.base, app.company.write_key);
    let status = page_status_after_load(&url, &profile).await;
    assert_eq!(status["note"], "done", "{status}");
    let visitor = status["visitor_id"]
        .as_str()
        .expect("a persistent visitor id")
        .to_string();
    assert!(status["cookie"].as_str().unwrap().contains(&visitor));

    let rows = wait_for_rows(&app, "SELECT count(*) FROM raw_events", 4).await;
    assert!(rows >= 4, "rows: {rows}");
    let events: Vec<StoredEvent> = sqlx::query_as(
        "SELECT event_name, visitor_id::text, page_url, user_id, is_bot FROM raw_events ORDER BY occurred_at, event_name",
    )
    .fetch_all(&app.owner)
    .await
    .unwrap();
    let names: Vec<&str> = events.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(
        names.iter().filter(|n| **n == "page_view").count(),
        2,
        "{names:?}"
    );
    assert!(names.contains(&"add_to_cart"), "{names:?}");
    assert!(names.contains(&"identify"), "{names:?}");
    assert!(
        events.iter().all(|e| e.1 == visitor),
        "one visitor: {events:?}"
    );
    assert!(
        events
            .iter()
            .any(|e| e.2.as_deref().is_some_and(|u| u.contains("/dev/spa-page")))
    );
    assert!(events.iter().any(|e| e.3.as_deref() == Some("user-42")));
    assert!(events.iter().all(|e| !e.4), "a real browser is not a bot");
    assert_eq!(app.count("SELECT count(*) FROM sessions").await, 1);
    // Event and visitor ids are UUIDv7 stamped with the browser's clock, and the session id
    // leads with its start: all three indexes they key grow at their right edge.
    let ids: Vec<(Uuid, Uuid, Uuid, chrono::DateTime<chrono::Utc>)> = sqlx::query_as(
        "SELECT e.event_id, e.visitor_id, e.session_id, e.received_at FROM raw_events e",
    )
    .fetch_all(&app.owner)
    .await
    .unwrap();
    for (event_id, visitor_id, session_id, received_at) in ids {
        assert_eq!(event_id.get_version_num(), 7, "{event_id}");
        assert_eq!(visitor_id.get_version_num(), 7, "{visitor_id}");
        assert_eq!(session_id.get_version_num(), 8, "{session_id}");
        let (secs, nanos) = event_id
            .get_timestamp()
            .expect("v7 ids carry a time")
            .to_unix();
        let stamped = chrono::DateTime::from_timestamp(secs as i64, nanos).unwrap();
        assert!(
            (received_at - stamped).num_seconds().abs() < 60,
            "{event_id} was made at {stamped}, received at {received_at}"
        );
    }
    assert_eq!(
        app.count("SELECT count(*) FROM identity_keys WHERE key_kind = 'email'")
            .await,
        1
    );

    // A second visit with the same browser profile keeps the visitor id.
    let again = page_status_after_load(&url, &profile).await;
    assert_eq!(again["visitor_id"], visitor.as_str());
    app.stop().await;
}

/// Regression (issue 13): identify, add_to_cart and purchase fired in one tick share a
/// millisecond; the snippet's ids were random within it, so they were stored out of order.
#[tokio::test]
async fn identify_add_to_cart_and_purchase_fired_in_one_tick_are_stored_in_order() {
    let app = TestApp::spawn().await;
    let profile = profile_dir("tick");
    let url = format!("{}/dev?key={}&auto=tick", app.base, app.company.write_key);
    let status = page_status_after_load(&url, &profile).await;
    assert_eq!(status["note"], "done", "{status}");
    let rows = wait_for_rows(&app, "SELECT count(*) FROM raw_events", 4).await;
    assert!(rows >= 4, "a page view and the three calls: {rows}");
    // (The snippet also reports engaged time when the page is hidden.)
    let stored: Vec<(String, chrono::DateTime<chrono::Utc>)> = sqlx::query_as(
        "SELECT event_name, occurred_at FROM raw_events WHERE event_name <> 'engagement'
         ORDER BY occurred_at, event_id",
    )
    .fetch_all(&app.owner)
    .await
    .unwrap();
    let names: Vec<&str> = stored.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(
        names,
        ["page_view", "identify", "add_to_cart", "purchase"],
        "{stored:?}"
    );
    assert_eq!(
        stored[1].1, stored[3].1,
        "the three calls share a millisecond, so only the ids order them"
    );
    assert_eq!(app.count("SELECT count(*) FROM sessions").await, 1);
    app.stop().await;
}

/// `lux.creative(id)`: a site that knows which ad brought the visitor names it; the events
/// after it carry `creative_id`, and the session is that creative's (issue 16).
#[tokio::test]
async fn lux_creative_names_the_ad_on_the_events_and_the_session() {
    let app = TestApp::spawn().await;
    let profile = profile_dir("creative");
    let url = format!(
        "{}/dev?key={}&auto=creative",
        app.base, app.company.write_key
    );
    let status = page_status_after_load(&url, &profile).await;
    assert_eq!(status["note"], "done", "{status}");
    wait_for_rows(
        &app,
        "SELECT count(*) FROM raw_events WHERE event_name = 'view_item'",
        1,
    )
    .await;
    let stored: Vec<(String, Option<String>)> = sqlx::query_as(
        "SELECT event_name, creative_id FROM raw_events WHERE event_name <> 'engagement'
         ORDER BY occurred_at, event_id",
    )
    .fetch_all(&app.owner)
    .await
    .unwrap();
    assert_eq!(
        stored,
        [
            ("page_view".to_string(), None),
            ("view_item".to_string(), Some("ad-9".to_string()))
        ]
    );
    let sessions: Vec<Option<String>> = sqlx::query_scalar("SELECT creative_id FROM sessions")
        .fetch_all(&app.owner)
        .await
        .unwrap();
    assert_eq!(sessions, [Some("ad-9".to_string())]);
    app.stop().await;
}

#[tokio::test]
async fn with_global_privacy_control_events_carry_gpc_and_no_visitor_id_is_kept() {
    let app = TestApp::spawn().await;
    let profile = profile_dir("gpc");
    let url = format!(
        "{}/dev?key={}&auto=1&gpc=1",
        app.base, app.company.write_key
    );
    for _ in 0..2 {
        let status = page_status_after_load(&url, &profile).await;
        assert_eq!(status["note"], "done", "{status}");
        assert_eq!(status["gpc"], true);
        assert!(
            status["visitor_id"].is_null(),
            "nothing in localStorage: {status}"
        );
        assert!(
            !status["cookie"].as_str().unwrap().contains("lux_vid"),
            "{status}"
        );
    }
    let rows = wait_for_rows(&app, "SELECT count(*) FROM raw_events", 6).await;
    assert!(rows >= 6, "rows: {rows}");
    assert_eq!(
        app.count("SELECT count(*) FROM raw_events WHERE NOT gpc")
            .await,
        0
    );
    assert_eq!(
        app.count(
            "SELECT count(*) FROM raw_events WHERE user_id IS NOT NULL OR ip_hash IS NOT NULL"
        )
        .await,
        0
    );
    assert_eq!(
        app.count("SELECT count(*) FROM raw_events WHERE event_name = 'identify'")
            .await,
        0,
        "identify is not sent"
    );
    // No two requests share a visitor id, so the two visits cannot be linked.
    let distinct = app
        .count("SELECT count(DISTINCT visitor_id) FROM raw_events")
        .await;
    assert_eq!(distinct, rows, "every request got a throwaway visitor id");
    assert_eq!(app.count("SELECT count(*) FROM identity_keys").await, 0);
    app.stop().await;
}

/// Withdrawing consent in the browser (`lux.consent`) reaches the consent ledger under the
/// visitor id it withdraws; that id is then forgotten by the browser and never stored with an
/// event again.
#[tokio::test]
async fn a_consent_withdrawn_in_the_browser_is_in_the_ledger_under_the_id_it_withdraws() {
    let app = TestApp::spawn().await;
    let profile = profile_dir("deny");
    let url = format!("{}/dev?key={}&auto=deny", app.base, app.company.write_key);
    let status = page_status_after_load(&url, &profile).await;
    assert_eq!(status["note"], "done", "{status}");
    assert!(
        status["visitor_id"].is_null(),
        "the id is forgotten: {status}"
    );
    wait_for_rows(
        &app,
        "SELECT count(*) FROM consent_events WHERE purpose = 'analytics'",
        1,
    )
    .await;
    let visitor: String = sqlx::query_scalar(
        "SELECT visitor_id::text FROM raw_events WHERE event_name = 'page_view'",
    )
    .fetch_one(&app.owner)
    .await
    .unwrap();
    let ledger: Vec<(String, String, bool, String)> = sqlx::query_as(
        "SELECT subject, purpose, granted, source FROM consent_events ORDER BY purpose",
    )
    .fetch_all(&app.owner)
    .await
    .unwrap();
    assert_eq!(
        ledger,
        [
            (visitor.clone(), "analytics".into(), false, "snippet".into()),
            (visitor.clone(), "marketing".into(), false, "snippet".into()),
        ]
    );
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM raw_events WHERE event_name = 'consent' AND visitor_id = '{visitor}'"
        ))
        .await,
        0,
        "the withdrawal event itself is not tied to the visitor"
    );
    app.stop().await;
}

#[tokio::test]
async fn the_snippet_is_small() {
    let app = TestApp::spawn().await;
    let js = app
        .client
        .get(format!("{}/lux.js", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(js.status(), 200);
    assert!(
        js.headers()["content-type"]
            .to_str()
            .unwrap()
            .contains("javascript")
    );
    let body = js.bytes().await.unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&body).unwrap();
    let gzipped = gz.finish().unwrap().len();
    println!("lux.js: {} bytes, {gzipped} bytes gzipped", body.len());
    assert!(
        gzipped < 2048,
        "the snippet must stay under 2 KB gzipped, it is {gzipped}"
    );
    app.stop().await;
}

#[tokio::test]
async fn the_development_page_lists_the_key_s_own_events_only() {
    let app = TestApp::spawn().await;
    let other = crate::helpers::create_company(&app.owner, "Other").await;
    let (status, _) = app
        .post_events(&serde_json::json!({"event_name": "page_view",
            "page_url": "https://s.test/?utm_source=news&utm_medium=email"}))
        .await;
    assert_eq!(status, 202);
    let mine: Value = app
        .get(&format!("/dev/events?key={}", app.company.write_key))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(mine["events"][0]["event_name"], "page_view");
    assert_eq!(mine["events"][0]["channel"], "Email");
    let theirs: Value = app
        .get(&format!("/dev/events?key={}", other.write_key))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(theirs["events"].as_array().unwrap().len(), 0);
    app.stop().await;
}

/// Opened as a first look (no `?key=`), the development page says what to add instead of
/// showing an empty table.
#[tokio::test]
async fn the_dev_page_without_a_key_says_what_to_add() {
    let app = TestApp::spawn().await;
    let profile = profile_dir("nokey");
    let url = format!("{}/dev", app.base);
    let dom = tokio::task::spawn_blocking(move || load_page(&url, &profile))
        .await
        .unwrap();
    let start = dom
        .find("<p id=\"nokey\"")
        .expect("the hint is on the page");
    let tag = &dom[start..start + dom[start..].find('>').unwrap()];
    assert!(!tag.contains("hidden"), "the hint is shown: {tag}");
    assert!(dom.contains("lux demo</code> prints the"), "{dom}");
    app.stop().await;
}
