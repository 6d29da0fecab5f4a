//! Tenancy: a key writes only for its company, and row-level security keeps every tenant
//! table to the company of the transaction.

use serde_json::json;
use uuid::Uuid;

use crate::helpers::{TestApp, act_as_service, create_company};

#[tokio::test]
async fn company_a_key_never_writes_rows_for_b_whatever_the_body_says() {
    let app = TestApp::spawn().await;
    let b = create_company(&app.owner, "Beta").await;
    // A body naming B is refused outright: company_id is not a field.
    let (status, body) = app
        .post_events(&json!({"event_name": "page_view", "company_id": b.id,
                             "page_url": "https://s.test/"}))
        .await;
    assert_eq!(status, 400);
    assert!(
        body["error"].as_str().unwrap().contains("company_id"),
        "{body}"
    );
    // B's visitor id and B's session id in A's request still land in A.
    let (status, _) = app
        .post_events(
            &json!({"event_name": "page_view", "visitor_id": Uuid::now_v7(),
            "session_id": Uuid::now_v7(), "page_url": "https://s.test/"}),
        )
        .await;
    assert_eq!(status, 202);
    let for_b: i64 = sqlx::query_scalar("SELECT count(*) FROM raw_events WHERE company_id = $1")
        .bind(b.id)
        .fetch_one(&app.owner)
        .await
        .unwrap();
    assert_eq!(for_b, 0);
    let for_a: i64 = sqlx::query_scalar("SELECT count(*) FROM raw_events WHERE company_id = $1")
        .bind(app.company.id)
        .fetch_one(&app.owner)
        .await
        .unwrap();
    assert_eq!(for_a, 1);
    app.stop().await;
}

#[tokio::test]
async fn lux_app_sees_none_of_another_company_s_rows_in_any_tenant_table() {
    let app = TestApp::spawn().await;
    let b = create_company(&app.owner, "Beta").await;
    // Give both companies rows in every table: events, sessions, identity, suppressions.
    for key in [&app.company.write_key, &b.write_key] {
        let (status, body) = app
            .post_with_key(
                key,
                &json!({"event_name": "signup", "visitor_id": Uuid::now_v7(),
                "user_id": "u-1", "page_url": "https://s.test/"}),
            )
            .await;
        assert_eq!(status, 202, "{body}");
    }
    for company in [app.company.id, b.id] {
        lux::privacy::suppress(
            &app.owner,
            company.into(),
            &lux::privacy::SuppressionTarget::User("x".into()),
        )
        .await
        .unwrap();
    }

    // Every table with a company_id column, from the catalog: a future table without
    // row-level security fails this test.
    let tables: Vec<(String, bool)> = sqlx::query_as(
        "SELECT c.relname::text, c.relrowsecurity
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'company_id' AND NOT a.attisdropped
         WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
         ORDER BY 1",
    )
    .fetch_all(&app.owner)
    .await
    .unwrap();
    assert!(tables.len() >= 8, "tenant tables found: {tables:?}");
    for (table, rls) in &tables {
        assert!(rls, "{table} has no row-level security");
    }

    let mut conn = app.owner.acquire().await.unwrap();
    sqlx::query("BEGIN").execute(&mut *conn).await.unwrap();
    act_as_service(&mut conn, app.company.id).await;
    let mut checked_with_rows = 0;
    for (table, _) in &tables {
        // Partitions are reached through raw_events only; lux_app has no grant on them.
        let readable: bool =
            sqlx::query_scalar("SELECT has_table_privilege('lux_app', $1, 'SELECT')")
                .bind(table)
                .fetch_one(&mut *conn)
                .await
                .unwrap();
        if !readable {
            continue;
        }
        let (mine, theirs): (i64, i64) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT count(*) FILTER (WHERE company_id = $1), count(*) FILTER (WHERE company_id <> $1) FROM {table}"
        )))
        .bind(app.company.id)
        .fetch_one(&mut *conn)
        .await
        .unwrap();
        assert_eq!(theirs, 0, "lux_app sees another company's rows in {table}");
        if mine > 0 {
            checked_with_rows += 1;
        }
    }
    sqlx::query("ROLLBACK").execute(&mut *conn).await.unwrap();
    assert!(
        checked_with_rows >= 7,
        "most tables held rows of both companies"
    );
    // The owner sees both, so the rows were there to hide.
    let companies_with_events: i64 =
        sqlx::query_scalar("SELECT count(DISTINCT company_id) FROM raw_events")
            .fetch_one(&app.owner)
            .await
            .unwrap();
    assert_eq!(companies_with_events, 2);
    app.stop().await;
}

#[tokio::test]
async fn lux_app_cannot_read_a_partition_directly_nor_write_for_another_company() {
    let app = TestApp::spawn().await;
    let b = create_company(&app.owner, "Beta").await;
    let mut tx = app.owner.begin().await.unwrap();
    act_as_service(&mut tx, app.company.id).await;
    let insert = sqlx::query(
        "INSERT INTO raw_events (company_id, event_id, event_name, occurred_at, received_at,
             visitor_id, consent_analytics, key_kind)
         VALUES ($1, gen_random_uuid(), 'page_view', now(), now(), gen_random_uuid(), true, 'write')",
    )
    .bind(b.id)
    .execute(&mut *tx)
    .await;
    let error = insert.expect_err("writing B's row with A's company set must fail");
    assert!(error.to_string().contains("row-level security"), "{error}");
    tx.rollback().await.unwrap();

    let partition: String = sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
         WHERE i.inhparent = 'raw_events'::regclass LIMIT 1",
    )
    .fetch_one(&app.owner)
    .await
    .unwrap();
    let mut tx = app.owner.begin().await.unwrap();
    sqlx::query("SET LOCAL ROLE lux_app")
        .execute(&mut *tx)
        .await
        .unwrap();
    let direct = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT count(*) FROM {partition}"
    )))
    .execute(&mut *tx)
    .await;
    assert!(
        direct.is_err(),
        "lux_app read partition {partition} directly"
    );
    tx.rollback().await.unwrap();
    app.stop().await;
}

#[tokio::test]
async fn cors_follows_the_company_s_allowed_origins() {
    let app = TestApp::spawn().await;
    sqlx::query(
        "UPDATE companies SET allowed_origins = '{https://shop.test}' WHERE company_id = $1",
    )
    .bind(app.company.id)
    .execute(&app.owner)
    .await
    .unwrap();
    let post = |origin: &'static str| {
        app.client
            .post(format!("{}/e?key={}", app.base, app.company.write_key))
            .header("origin", origin)
            .header("user-agent", crate::helpers::BROWSER_UA)
            .body(json!({"event_name": "page_view", "page_url": "https://shop.test/"}).to_string())
            .send()
    };
    let allowed = post("https://shop.test").await.unwrap();
    assert_eq!(allowed.status(), 202);
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://shop.test"
    );
    let refused = post("https://evil.test").await.unwrap();
    assert_eq!(refused.status(), 403);
    assert!(
        !refused
            .headers()
            .contains_key("access-control-allow-origin")
    );
    let preflight = app
        .client
        .request(
            reqwest::Method::OPTIONS,
            format!("{}/e?key={}", app.base, app.company.write_key),
        )
        .header("origin", "https://shop.test")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), 204);
    assert_eq!(app.count("SELECT count(*) FROM raw_events").await, 1);
    app.stop().await;
}

#[tokio::test]
async fn keys_rotate_a_new_key_works_and_a_revoked_one_stops() {
    let app = TestApp::spawn().await;
    let (key_id, key) = lux::tenancy::create_key(
        &app.owner,
        app.company.id.into(),
        lux::tenancy::KeyKind::Write,
    )
    .await
    .unwrap();
    let event = json!({"event_name": "page_view", "page_url": "https://s.test/"});
    assert_eq!(app.post_with_key(&key, &event).await.0, 202);
    lux::tenancy::revoke_key(&app.owner, app.company.id.into(), key_id)
        .await
        .unwrap();
    let (status, body) = app.post_with_key(&key, &event).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(
        app.post_events(&event).await.0,
        202,
        "the other key still works"
    );
    let listed = lux::tenancy::list_keys(&app.owner, app.company.id.into())
        .await
        .unwrap();
    assert_eq!(listed.len(), 3);
    assert_eq!(listed.iter().filter(|k| k.revoked_at.is_some()).count(), 1);
    assert!(
        listed.iter().all(|k| !key.eq(&k.key_prefix)),
        "keys are never listed whole"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_reader_login_sees_its_own_company_s_rollups_whatever_company_it_asks_for() {
    let app = TestApp::spawn().await;
    let a = app.company.id;
    let b = create_company(&app.owner, "Beta").await.id;
    for (company, sessions) in [(a, 3), (b, 5)] {
        sqlx::query(
            "INSERT INTO rollup_sessions_daily (company_id, day, channel, source, medium,
                 campaign, sessions, engaged_sessions, visitors, page_views)
             VALUES ($1, '2025-03-09', 'Direct', '(direct)', '(none)', '', $2, 1, 1, 1)",
        )
        .bind(company)
        .bind(sessions)
        .execute(&app.owner)
        .await
        .unwrap();
    }
    let login = format!("metabase_{}", Uuid::new_v4().simple());
    let printed = crate::helpers::lux_json(
        &app.db.url,
        &[
            "company",
            "reader-login",
            &a.to_string(),
            "--login",
            &login,
            "--password",
            "correct horse battery",
        ],
    );
    assert_eq!(printed["login"], json!(login));

    // Connected as that login, asking for B's rows.
    let mut url = url::Url::parse(&app.db.url).unwrap();
    url.set_username(&login).unwrap();
    url.set_password(Some("correct horse battery")).unwrap();
    let reader = sqlx::PgPool::connect(url.as_str()).await.unwrap();
    let mut tx = reader.begin().await.unwrap();
    sqlx::query("SELECT set_config('lux.company_id', $1, true)")
        .bind(b.to_string())
        .execute(&mut *tx)
        .await
        .unwrap();
    let seen: Vec<i32> = sqlx::query_scalar("SELECT sessions FROM rollup_sessions_daily")
        .fetch_all(&mut *tx)
        .await
        .unwrap();
    assert_eq!(seen, [3], "A's rows only, though it asked for B");
    for table in [
        "raw_events",
        "sessions",
        "orders",
        "reader_logins",
        "companies",
    ] {
        let denied = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT 1 FROM {table}")))
            .execute(&mut *tx)
            .await;
        assert!(
            denied.is_err_and(|e| e.to_string().contains("permission denied")),
            "{table}"
        );
        // A failed statement aborts the transaction: start another one.
        tx.rollback().await.unwrap();
        tx = reader.begin().await.unwrap();
    }
    tx.rollback().await.unwrap();
    reader.close().await;

    // A bad login name or a short password is refused before anything is created.
    let error = crate::helpers::lux_error(
        &app.db.url,
        &[
            "company",
            "reader-login",
            &a.to_string(),
            "--login",
            "Robert'); DROP",
            "--password",
            "correct horse battery",
        ],
    );
    assert!(error.contains("--login"), "{error}");
    let error = crate::helpers::lux_error(
        &app.db.url,
        &[
            "company",
            "reader-login",
            &a.to_string(),
            "--login",
            "short_pw",
            "--password",
            "x",
        ],
    );
    assert!(error.contains("12 characters"), "{error}");

    // Roles outlive the test database: drop this one.
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP ROLE {login}")))
        .execute(&app.owner)
        .await
        .unwrap();
}
