//! Sessionization (SPEC §4): 30-minute inactivity, campaign changes, visitors apart, and the
//! same answer from two server processes as from one.

use serde_json::{Value, json};
use std::collections::BTreeSet;
use uuid::Uuid;

use crate::helpers::{
    BROWSER_UA, ServeProcess, TestApp, TestDb, at_minute, create_company, page_view,
};

async fn session_of(app: &TestApp, event: &Value) -> Option<Uuid> {
    let id: Uuid = serde_json::from_value(event["event_id"].clone()).unwrap();
    sqlx::query_scalar("SELECT session_id FROM raw_events WHERE event_id = $1")
        .bind(id)
        .fetch_one(&app.owner)
        .await
        .unwrap()
}

async fn send_all(app: &TestApp, events: &[Value]) {
    for event in events {
        let (status, body) = app.post_server_events(event).await;
        assert_eq!(status, 202, "{body}");
    }
}

#[tokio::test]
async fn events_ten_minutes_apart_share_a_session_thirty_one_do_not() {
    let app = TestApp::spawn().await;
    let v = Uuid::now_v7();
    let events = [
        page_view(v, "https://s.test/a", &at_minute(0)),
        page_view(v, "https://s.test/b", &at_minute(10)),
        page_view(v, "https://s.test/c", &at_minute(41)),
    ];
    send_all(&app, &events).await;
    let (a, b, c) = (
        session_of(&app, &events[0]).await,
        session_of(&app, &events[1]).await,
        session_of(&app, &events[2]).await,
    );
    assert_eq!(a, b, "10 minutes apart: same session");
    assert_ne!(b, c, "31 minutes after the last event: a new session");
    assert_eq!(app.count("SELECT count(*) FROM sessions").await, 2);
    let page_views: i32 =
        sqlx::query_scalar("SELECT page_views FROM sessions WHERE session_id = $1")
            .bind(a)
            .fetch_one(&app.owner)
            .await
            .unwrap();
    assert_eq!(page_views, 2);
    app.stop().await;
}

#[tokio::test]
async fn a_new_campaign_or_click_id_within_thirty_minutes_starts_a_new_session() {
    let app = TestApp::spawn().await;
    let v = Uuid::now_v7();
    let events = [
        page_view(
            v,
            "https://s.test/?utm_source=news&utm_medium=email&utm_campaign=spring",
            &at_minute(0),
        ),
        page_view(v, "https://s.test/product", &at_minute(2)),
        page_view(
            v,
            "https://s.test/?utm_source=news&utm_medium=email&utm_campaign=spring",
            &at_minute(4),
        ),
        page_view(
            v,
            "https://s.test/?utm_source=news&utm_medium=email&utm_campaign=summer",
            &at_minute(6),
        ),
        page_view(v, "https://s.test/?gclid=XYZ", &at_minute(8)),
        page_view(v, "https://s.test/?gclid=OTHER", &at_minute(10)),
    ];
    send_all(&app, &events).await;
    let mut sessions = Vec::new();
    for e in &events {
        sessions.push(session_of(&app, e).await);
    }
    assert_eq!(
        sessions[0], sessions[1],
        "a page without campaign markers continues"
    );
    assert_eq!(
        sessions[1], sessions[2],
        "the same campaign again continues"
    );
    assert_ne!(
        sessions[2], sessions[3],
        "a new utm_campaign starts a new session"
    );
    assert_ne!(sessions[3], sessions[4], "a gclid starts a new session");
    assert_ne!(sessions[4], sessions[5], "a new gclid starts a new session");
    let channels: Vec<String> =
        sqlx::query_scalar("SELECT channel FROM sessions ORDER BY started_at")
            .fetch_all(&app.owner)
            .await
            .unwrap();
    assert_eq!(channels, ["Email", "Email", "Paid Search", "Paid Search"]);
    app.stop().await;
}

/// The stored-session lookup returns, per visitor, only the latest session started by the
/// batch's earliest event plus any started after it. Late events must still find theirs.
#[tokio::test]
async fn late_events_join_the_session_that_was_open_at_their_time() {
    let app = TestApp::spawn().await;
    let v = Uuid::now_v7();
    let a = page_view(
        v,
        "https://s.test/?utm_source=news&utm_medium=email&utm_campaign=spring",
        &at_minute(0),
    );
    let b = page_view(v, "https://s.test/?gclid=X", &at_minute(5));
    let c = page_view(v, "https://s.test/?gclid=Y", &at_minute(10));
    let late_in_a = page_view(v, "https://s.test/late-a", &at_minute(3));
    let in_c = page_view(v, "https://s.test/next", &at_minute(12));
    let late_in_b = page_view(v, "https://s.test/late-b", &at_minute(7));
    let after_c_closed = page_view(v, "https://s.test/back", &at_minute(43));
    // One request each: every one is sessionized against the stored sessions.
    send_all(&app, &[a.clone(), b.clone(), c.clone(), late_in_a.clone()]).await;
    // One batch whose earliest event (minute 7) is older than a stored session (minute 10):
    // the minute-12 event must still find that newer session.
    let (status, body) = app
        .post_server_events(&json!([late_in_b.clone(), in_c.clone()]))
        .await;
    assert_eq!(status, 202, "{body}");
    send_all(&app, std::slice::from_ref(&after_c_closed)).await;
    let (sa, sb, sc) = (
        session_of(&app, &a).await,
        session_of(&app, &b).await,
        session_of(&app, &c).await,
    );
    assert!(
        sa != sb && sb != sc && sa != sc,
        "three campaigns, three sessions"
    );
    assert_eq!(
        session_of(&app, &late_in_a).await,
        sa,
        "minute 3: the spring session"
    );
    assert_eq!(
        session_of(&app, &in_c).await,
        sc,
        "minute 12: the latest session"
    );
    assert_eq!(
        session_of(&app, &late_in_b).await,
        sb,
        "minute 7: the first gclid's session"
    );
    let last = session_of(&app, &after_c_closed).await;
    assert!(
        last.is_some() && ![sa, sb, sc].contains(&last),
        "31 minutes after the last event of the latest session: a new one"
    );
    let counts: Vec<(i32, i32)> = sqlx::query_as(
        "SELECT page_views, events FROM sessions WHERE visitor_id = $1 ORDER BY started_at",
    )
    .bind(v)
    .fetch_all(&app.owner)
    .await
    .unwrap();
    assert_eq!(counts, [(2, 2), (2, 2), (2, 2), (1, 1)]);
    app.stop().await;
}

#[tokio::test]
async fn two_visitors_never_share_a_session() {
    let app = TestApp::spawn().await;
    let (v1, v2) = (Uuid::now_v7(), Uuid::now_v7());
    let events = [
        page_view(v1, "https://s.test/", &at_minute(0)),
        page_view(v2, "https://s.test/", &at_minute(0)),
        page_view(v1, "https://s.test/x", &at_minute(1)),
        page_view(v2, "https://s.test/x", &at_minute(1)),
    ];
    app.post_server_events(&json!(events)).await;
    let s: Vec<_> = futures_join(&app, &events).await;
    assert_eq!(s[0], s[2]);
    assert_eq!(s[1], s[3]);
    assert_ne!(s[0], s[1]);
    app.stop().await;
}

async fn futures_join(app: &TestApp, events: &[Value]) -> Vec<Option<Uuid>> {
    let mut out = Vec::new();
    for e in events {
        out.push(session_of(app, e).await);
    }
    out
}

#[tokio::test]
async fn an_event_without_a_page_joins_the_active_session_or_none() {
    let app = TestApp::spawn().await;
    let v = Uuid::now_v7();
    let visit = page_view(v, "https://s.test/checkout", &at_minute(0));
    let purchase_now = json!({"event_id": Uuid::now_v7(), "event_name": "purchase", "visitor_id": v,
        "occurred_at": at_minute(5),
        "properties": {"order_id": "o-1", "value": 10, "currency": "EUR"}});
    let purchase_later = json!({"event_id": Uuid::now_v7(), "event_name": "purchase", "visitor_id": v,
        "occurred_at": at_minute(60 * 20),
        "properties": {"order_id": "o-2", "value": 10, "currency": "EUR"}});
    send_all(
        &app,
        &[visit.clone(), purchase_now.clone(), purchase_later.clone()],
    )
    .await;
    let session = session_of(&app, &visit).await;
    assert!(session.is_some());
    assert_eq!(
        session_of(&app, &purchase_now).await,
        session,
        "joins the active visit"
    );
    assert_eq!(
        session_of(&app, &purchase_later).await,
        None,
        "a payment hours later is not a visit"
    );
    assert_eq!(app.count("SELECT count(*) FROM sessions").await, 1);
    let last_seen_moved: bool =
        sqlx::query_scalar("SELECT last_seen_at > started_at FROM sessions")
            .fetch_one(&app.owner)
            .await
            .unwrap();
    assert!(
        !last_seen_moved,
        "events without a page do not extend the session"
    );
    app.stop().await;
}

/// A realistic interleaved stream: many visitors, gaps under and over 30 minutes, campaign
/// changes, events without a page.
fn stream() -> Vec<Value> {
    let mut per_visitor: Vec<Vec<Value>> = Vec::new();
    for i in 0..24i64 {
        let v = Uuid::now_v7();
        let mut t = i * 3;
        let mut events = Vec::new();
        for step in 0..8i64 {
            t += match (i + step) % 5 {
                0 => 45, // over the timeout
                1 => 3,
                2 => 29,
                3 => 12,
                _ => 31,
            };
            let url = match (i * 7 + step) % 6 {
                0 => "https://s.test/?utm_source=fb&utm_medium=paid_social&utm_campaign=a"
                    .to_string(),
                1 => format!("https://s.test/?gclid=g{}", step % 2),
                2 => "https://s.test/?utm_source=news&utm_medium=email&utm_campaign=b".to_string(),
                _ => format!("https://s.test/p/{step}"),
            };
            events.push(page_view(v, &url, &at_minute(t)));
            if step % 3 == 2 {
                events.push(
                    json!({"event_id": Uuid::now_v7(), "event_name": "add_to_cart",
                    "visitor_id": v, "occurred_at": at_minute(t + 1)}),
                );
            }
        }
        per_visitor.push(events);
    }
    // Round-robin across visitors: each visitor's events stay in order, visitors interleave.
    let mut out = Vec::new();
    let longest = per_visitor.iter().map(Vec::len).max().unwrap_or(0);
    for k in 0..longest {
        for events in &per_visitor {
            if let Some(e) = events.get(k) {
                out.push(e.clone());
            }
        }
    }
    out
}

/// Sessions as sets of event ids, independent of the company id the session ids derive from.
async fn sessions_as_event_sets(owner: &sqlx::PgPool) -> BTreeSet<(String, i32, Vec<Uuid>)> {
    let rows: Vec<(String, i32, Vec<Uuid>)> = sqlx::query_as(
        "SELECT s.channel, s.page_views, array_agg(e.event_id ORDER BY e.event_id)
         FROM sessions s JOIN raw_events e USING (company_id, session_id)
         GROUP BY s.session_id, s.channel, s.page_views",
    )
    .fetch_all(owner)
    .await
    .unwrap();
    rows.into_iter().collect()
}

#[tokio::test]
async fn two_server_processes_sessionize_an_interleaved_stream_exactly_as_one_does() {
    let events = stream();

    // One in-process server.
    let single = TestApp::spawn().await;
    send_all(&single, &events).await;
    let expected = sessions_as_event_sets(&single.owner).await;
    single.stop().await;

    // Two `lux serve` processes on one database, receiving alternate events.
    let db = TestDb::new().await;
    let node1 = ServeProcess::spawn(&db.url, &[], None).await;
    let node2 = ServeProcess::spawn(&db.url, &[], None).await;
    let (base1, base2) = (node1.base.clone(), node2.base.clone());
    let owner = db.owner().await;
    let company = create_company(&owner, "Two nodes").await;
    let client = reqwest::Client::new();
    for (i, event) in events.iter().enumerate() {
        let base = if i % 2 == 0 { &base1 } else { &base2 };
        let response = client
            .post(format!("{base}/e"))
            .bearer_auth(&company.secret_key)
            .header("user-agent", BROWSER_UA)
            .json(event)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 202);
    }
    let actual = sessions_as_event_sets(&owner).await;
    assert!(
        expected.len() > 24,
        "the stream has several sessions per visitor"
    );
    assert_eq!(actual, expected);
}

/// Regression (issue 13): events of one request without times shared a timestamp and were
/// then ordered by event id, so `[page_view with UTMs, add_to_cart]` whose ids happened to
/// sort in reverse became a Direct session plus a Paid Search one.
#[tokio::test]
async fn events_of_one_request_without_times_keep_the_order_sent_whatever_their_ids() {
    let app = TestApp::spawn().await;
    let visitor = Uuid::now_v7();
    // Ids that sort in reverse of the order sent.
    let ids = [
        "0193a0b4-7c1e-7d2a-9f00-000000000003",
        "0193a0b4-7c1e-7d2a-9f00-000000000002",
        "0193a0b4-7c1e-7d2a-9f00-000000000001",
    ];
    let landing = "https://shop.test/?utm_source=google&utm_medium=cpc&utm_campaign=winter";
    let batch = json!([
        {"event_id": ids[0], "event_name": "page_view", "visitor_id": visitor, "page_url": landing},
        {"event_id": ids[1], "event_name": "add_to_cart", "visitor_id": visitor,
         "page_url": "https://shop.test/boots", "properties": {"sku": "B-1", "value": 80, "currency": "USD"}},
        {"event_id": ids[2], "event_name": "begin_checkout", "visitor_id": visitor,
         "page_url": "https://shop.test/checkout"},
    ]);
    let (status, body) = app.post_events(&batch).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["stored"], 3, "{body}");

    let sessions: Vec<(String, i32)> = sqlx::query_as("SELECT channel, events FROM sessions")
        .fetch_all(&app.owner)
        .await
        .unwrap();
    assert_eq!(
        sessions,
        vec![("Paid Search".to_string(), 3)],
        "one visit from the ad"
    );
    let stored: Vec<String> =
        sqlx::query_scalar("SELECT event_name FROM raw_events ORDER BY occurred_at, event_id")
            .fetch_all(&app.owner)
            .await
            .unwrap();
    assert_eq!(stored, ["page_view", "add_to_cart", "begin_checkout"]);
    app.stop().await;
}
