//! raw_events is append-only for the service and for the owner.

use serde_json::json;

use crate::helpers::{TestApp, act_as_service};

async fn attempt(app: &TestApp, as_service: bool, sql: &str) -> Result<(), String> {
    let mut tx = app.owner.begin().await.unwrap();
    if as_service {
        act_as_service(&mut tx, app.company.id).await;
    }
    let result = sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
        .execute(&mut *tx)
        .await;
    tx.rollback().await.unwrap();
    result.map(|_| ()).map_err(|e| e.to_string())
}

#[tokio::test]
async fn update_delete_and_truncate_fail_for_lux_app_and_for_the_owner() {
    let app = TestApp::spawn().await;
    let (status, _) = app
        .post_events(&json!({"event_name": "page_view", "page_url": "https://s.test/"}))
        .await;
    assert_eq!(status, 202);
    let partition: String =
        sqlx::query_scalar("SELECT tableoid::regclass::text FROM raw_events LIMIT 1")
            .fetch_one(&app.owner)
            .await
            .unwrap();
    let statements = [
        "UPDATE raw_events SET event_name = 'tampered'".to_string(),
        "DELETE FROM raw_events".to_string(),
        "DELETE FROM raw_events WHERE false".to_string(),
        "TRUNCATE raw_events".to_string(),
        format!("UPDATE {partition} SET event_name = 'tampered'"),
        format!("DELETE FROM {partition}"),
        format!("TRUNCATE {partition}"),
    ];
    for as_service in [true, false] {
        for sql in &statements {
            let result = attempt(&app, as_service, sql).await;
            let who = if as_service { "lux_app" } else { "the owner" };
            assert!(result.is_err(), "{sql} succeeded as {who}");
        }
    }
    let owner_error = attempt(&app, false, "DELETE FROM raw_events")
        .await
        .unwrap_err();
    assert!(owner_error.contains("append-only"), "{owner_error}");
    let app_error = attempt(&app, true, "UPDATE raw_events SET event_name = 'x'")
        .await
        .unwrap_err();
    assert!(app_error.contains("permission denied"), "{app_error}");
    assert_eq!(
        app.count("SELECT count(*) FROM raw_events WHERE event_name = 'page_view'")
            .await,
        1
    );
    app.stop().await;
}
