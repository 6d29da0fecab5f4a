//! Identity: a person's devices resolve to one person; placeholder ids never link.

use serde_json::json;
use uuid::Uuid;

use crate::helpers::TestApp;

async fn person(app: &TestApp, visitor: Uuid) -> Option<Uuid> {
    sqlx::query_scalar(
        "SELECT person_id FROM identity_keys WHERE key_kind = 'visitor' AND key_value = $1",
    )
    .bind(visitor.to_string())
    .fetch_optional(&app.owner)
    .await
    .unwrap()
}

async fn send(app: &TestApp, event: serde_json::Value) {
    let (status, body) = app.post_events(&event).await;
    assert_eq!(status, 202, "{body}");
}

#[tokio::test]
async fn two_devices_joined_by_a_login_resolve_to_one_person() {
    let app = TestApp::spawn().await;
    let (laptop, phone, tablet) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    send(
        &app,
        json!({"event_name": "signup", "visitor_id": laptop, "user_id": "u-1",
        "email": "ann@example.com", "page_url": "https://s.test/signup"}),
    )
    .await;
    send(
        &app,
        json!({"event_name": "login", "visitor_id": phone, "user_id": "u-1",
        "page_url": "https://s.test/login"}),
    )
    .await;
    // The tablet is known only by email first (a lead form), then logs in.
    send(
        &app,
        json!({"event_name": "lead_submit", "visitor_id": tablet,
        "email": "ANN@example.com ", "page_url": "https://s.test/form"}),
    )
    .await;
    let p = person(&app, laptop).await.expect("laptop linked");
    assert_eq!(person(&app, phone).await, Some(p));
    assert_eq!(
        person(&app, tablet).await,
        Some(p),
        "the same email links the tablet"
    );
    assert_eq!(
        app.count("SELECT count(DISTINCT person_id) FROM identity_keys")
            .await,
        1
    );
    app.stop().await;
}

#[tokio::test]
async fn two_persons_merge_when_a_later_event_joins_their_keys() {
    let app = TestApp::spawn().await;
    let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
    send(&app, json!({"event_name": "identify", "visitor_id": a, "user_id": "u-a", "page_url": "https://s.test/"})).await;
    send(&app, json!({"event_name": "lead_submit", "visitor_id": b, "email": "bo@example.com", "page_url": "https://s.test/"})).await;
    assert_ne!(person(&app, a).await, person(&app, b).await);
    send(
        &app,
        json!({"event_name": "purchase", "visitor_id": b, "user_id": "u-a",
        "properties": {"order_id": "o-9", "value": "12.50", "currency": "EUR"}}),
    )
    .await;
    assert_eq!(person(&app, a).await, person(&app, b).await);
    app.stop().await;
}

#[tokio::test]
async fn placeholder_ids_never_link_anything() {
    let app = TestApp::spawn().await;
    for placeholder in ["null", "undefined", "anonymous", "0"] {
        for _ in 0..2 {
            send(
                &app,
                json!({"event_name": "login", "visitor_id": Uuid::now_v7(),
                "user_id": placeholder, "page_url": "https://s.test/"}),
            )
            .await;
        }
    }
    // user_id 0 as a number, and a placeholder visitor id, too.
    send(
        &app,
        json!({"event_name": "login", "visitor_id": "undefined", "user_id": 0,
        "page_url": "https://s.test/"}),
    )
    .await;
    assert_eq!(app.count("SELECT count(*) FROM identity_keys").await, 0);
    assert_eq!(
        app.count("SELECT count(*) FROM raw_events WHERE user_id IS NOT NULL")
            .await,
        0
    );
    app.stop().await;
}

#[tokio::test]
async fn events_that_are_not_identity_events_do_not_link() {
    let app = TestApp::spawn().await;
    send(
        &app,
        json!({"event_name": "page_view", "visitor_id": Uuid::now_v7(), "user_id": "u-5",
        "page_url": "https://s.test/"}),
    )
    .await;
    assert_eq!(app.count("SELECT count(*) FROM identity_keys").await, 0);
    app.stop().await;
}

/// Regression: two people logging in on one shared device used to merge into one person,
/// with all their devices.
#[tokio::test]
async fn two_users_on_a_shared_device_stay_two_people() {
    let app = TestApp::spawn().await;
    let (shared, ann_phone, bob_laptop) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    send(&app, json!({"event_name": "login", "visitor_id": ann_phone, "user_id": "ann", "page_url": "https://s.test/"})).await;
    send(&app, json!({"event_name": "login", "visitor_id": bob_laptop, "user_id": "bob", "page_url": "https://s.test/"})).await;
    send(&app, json!({"event_name": "login", "visitor_id": shared, "user_id": "ann", "page_url": "https://s.test/"})).await;
    assert_eq!(person(&app, shared).await, person(&app, ann_phone).await);
    send(&app, json!({"event_name": "login", "visitor_id": shared, "user_id": "bob", "page_url": "https://s.test/"})).await;
    let (ann, bob) = (
        person(&app, ann_phone).await,
        person(&app, bob_laptop).await,
    );
    assert_ne!(ann, bob, "Ann and Bob are still two people");
    assert_eq!(
        person(&app, shared).await,
        bob,
        "the shared device follows the last login"
    );
    app.stop().await;
}
