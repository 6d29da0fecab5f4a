//! Privacy operations (issue 19, SPEC §9): erasure through the one audited path, what it
//! leaves and what it cannot touch, export of a person, the consent ledger, requests and
//! their deadlines, and raw-event retention. People are tracked as a real site tracks them:
//! `POST /e` with the write key and no `occurred_at`.
//!
//! Multi-threaded runtimes: these tests run `lux` commands (blocking) while the service runs
//! in-process; on one thread the service's order worker could hold a lock the command waits
//! for, and never commit (seen once in the full suite).

use std::collections::BTreeSet;

use lux::jobs::{Job, Mode, WhenBusy};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

use crate::helpers::{
    BROWSER_UA, Company, TestApp, act_as_service, answer, create_company, lux_error, lux_json,
    pg_dump, wait_for_order,
};
use crate::messages_webhooks::{
    post_sendgrid, sendgrid_key, sendgrid_public, set_secret, sg_event,
};

/// An order's number and its links to a person.
type OrderLinks = (
    String,
    Option<Vec<u8>>,
    Option<String>,
    Option<Uuid>,
    Option<Uuid>,
);

/// One person of a company: two devices, a user id, an email, an order, a message.
struct Seeded {
    devices: [Uuid; 2],
    user_id: String,
    email: String,
    order: String,
    message_id: String,
}

impl Seeded {
    fn new(tag: &str) -> Seeded {
        Seeded {
            devices: [Uuid::now_v7(), Uuid::now_v7()],
            user_id: format!("user-{tag}-{}", Uuid::new_v4().simple()),
            email: format!("{tag}.{}@example.com", Uuid::new_v4().simple()),
            order: format!("order-{tag}-{}", Uuid::new_v4().simple()),
            message_id: format!("mail-{tag}-{}", Uuid::new_v4().simple()),
        }
    }
}

/// Posts events with `company`'s write key, as the snippet does (no occurred_at).
async fn track(app: &TestApp, company: &Company, events: Value) {
    let (status, body) = app.post_with_key(&company.write_key, &events).await;
    assert_eq!(status, 202, "{body}");
}

/// Visits on both devices (a login links the second), a consent change, a purchase, a
/// message sent to the email and a click on its short link.
async fn seed(app: &TestApp, company: &Company, person: &Seeded) {
    let [phone, laptop] = person.devices;
    track(
        app,
        company,
        json!([
            {"event_name": "page_view", "visitor_id": phone,
             "page_url": "https://shop.test/?utm_source=news&utm_medium=email",
             "consent": {"analytics": true, "marketing": true, "notice_version": "2026-11"}},
            {"event_name": "identify", "visitor_id": phone, "user_id": person.user_id,
             "email": person.email, "page_url": "https://shop.test/account"},
        ]),
    )
    .await;
    track(
        app,
        company,
        json!([
            {"event_name": "page_view", "visitor_id": laptop, "page_url": "https://shop.test/"},
            {"event_name": "login", "visitor_id": laptop, "user_id": person.user_id,
             "page_url": "https://shop.test/login"},
            // The person changes their mind about marketing on the laptop.
            {"event_name": "page_view", "visitor_id": laptop, "page_url": "https://shop.test/p",
             "consent": {"analytics": true, "marketing": false, "notice_version": "2026-11"}},
            {"event_name": "purchase", "visitor_id": laptop, "user_id": person.user_id,
             "page_url": "https://shop.test/thanks",
             "properties": {"order_id": person.order, "value": "42.50", "currency": "EUR"}},
        ]),
    )
    .await;
    wait_for_order(&app.owner, company.id, &person.order).await;
    let response = app
        .client
        .post(format!("{}/api/v1/messages", app.base))
        .bearer_auth(&company.secret_key)
        .json(
            &json!([{"message_id": person.message_id, "provider": "sendgrid",
            "provider_message_id": format!("sg-{}", person.message_id), "campaign": "winter",
            "recipient": person.email, "sent_at": chrono::Utc::now().to_rfc3339()}]),
        )
        .send()
        .await
        .unwrap();
    let (status, body) = answer(response).await;
    assert_eq!(status, 200, "{body}");
    let response = app
        .client
        .post(format!("{}/api/v1/links", app.base))
        .bearer_auth(&company.secret_key)
        .json(&json!({"message_id": person.message_id, "url": "https://shop.test/sale"}))
        .send()
        .await
        .unwrap();
    let (status, link) = answer(response).await;
    assert_eq!(status, 201, "{link}");
    let click = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(format!("{}/r/{}", app.base, link["code"].as_str().unwrap()))
        .header("user-agent", BROWSER_UA)
        .send()
        .await
        .unwrap();
    assert_eq!(click.status(), 302);
}

async fn email_hash_hex(owner: &PgPool, company: Uuid, email: &str) -> String {
    let key: Vec<u8> = sqlx::query_scalar("SELECT hash_key FROM companies WHERE company_id = $1")
        .bind(company)
        .fetch_one(owner)
        .await
        .unwrap();
    lux::privacy::EmailHash::of(&key, email).unwrap().to_hex()
}

/// Runs attribution then rollups for every day of the company, as the service.
async fn rebuild(app: &TestApp, company: Uuid) {
    let pool = lux::db::connect_app(&app.db.url, 2).unwrap();
    for job in [Job::Attribution, Job::Rollups] {
        lux::jobs::run(
            &pool,
            company.into(),
            job,
            (Mode::Full, WhenBusy::Wait),
            chrono::Utc::now(),
        )
        .await
        .unwrap();
    }
    pool.close().await;
}

/// Every rollup table's rows as text, sorted: equal snapshots are equal rollups.
async fn rollups(owner: &PgPool) -> Vec<(String, String)> {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT relname::text FROM pg_class
         WHERE relkind = 'r' AND relname LIKE 'rollup\\_%' AND relnamespace = 'public'::regnamespace
         ORDER BY 1",
    )
    .fetch_all(owner)
    .await
    .unwrap();
    let mut out = Vec::new();
    for table in tables {
        let rows: Option<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT string_agg(t::text, E'\\n' ORDER BY t::text) FROM {table} t"
        )))
        .fetch_one(owner)
        .await
        .unwrap();
        out.push((table, rows.unwrap_or_default()));
    }
    out
}

/// The INSERT lines of a data dump, by table, without those naming any marker and without
/// the tables that record work rather than people (job runs, change notes, requests, the
/// ledger, suppressions, rollups: compared on their own).
fn person_free_lines(dump: &str, markers: &[String]) -> BTreeSet<String> {
    const WORK_TABLES: [&str; 9] = [
        "job_runs",
        "session_changes",
        "order_changes",
        "message_changes",
        "suppressions",
        "privacy_requests",
        "privacy_ledger",
        "customer_relinks",
        "order_inbox",
    ];
    dump.lines()
        .filter(|line| line.starts_with("INSERT INTO public."))
        .filter(|line| {
            let table = line["INSERT INTO public.".len()..]
                .split([' ', '('])
                .next()
                .unwrap_or("");
            !WORK_TABLES.contains(&table) && !table.starts_with("rollup_")
        })
        .filter(|line| !markers.iter().any(|m| line.contains(m.as_str())))
        .map(str::to_owned)
        .collect()
}

async fn strings(owner: &PgPool, sql: &str, company: Uuid, values: &[String]) -> Vec<String> {
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_string()))
        .bind(company)
        .bind(values)
        .fetch_all(owner)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erasing_one_person_among_many_leaves_nothing_of_theirs_and_everyone_else_identical() {
    let app = TestApp::spawn().await;
    let a = &app.company;
    let b = create_company(&app.owner, "Other").await;
    let people: Vec<Seeded> = ["zoe", "yan", "xia"]
        .iter()
        .map(|t| Seeded::new(t))
        .collect();
    for person in &people {
        seed(&app, a, person).await;
    }
    let other = Seeded::new("bob");
    seed(&app, &b, &other).await;
    rebuild(&app, a.id).await;
    rebuild(&app, b.id).await;

    let zoe = &people[0];
    let visitors: Vec<String> = zoe.devices.iter().map(Uuid::to_string).collect();
    let email_hash = email_hash_hex(&app.owner, a.id, &zoe.email).await;
    let sessions = strings(
        &app.owner,
        "SELECT session_id::text FROM sessions WHERE company_id = $1 AND visitor_id::text = ANY($2)",
        a.id,
        &visitors,
    )
    .await;
    assert!(
        sessions.len() >= 2,
        "both devices have sessions: {sessions:?}"
    );
    let event_ids = strings(
        &app.owner,
        "SELECT event_id::text FROM raw_events WHERE company_id = $1 AND visitor_id::text = ANY($2)",
        a.id,
        &visitors,
    )
    .await;
    let orders = strings(
        &app.owner,
        "SELECT order_id::text FROM orders WHERE company_id = $1 AND order_number = ANY($2)",
        a.id,
        std::slice::from_ref(&zoe.order),
    )
    .await;
    let customers = strings(
        &app.owner,
        "SELECT customer_id::text FROM orders WHERE company_id = $1 AND order_number = ANY($2)",
        a.id,
        std::slice::from_ref(&zoe.order),
    )
    .await;
    let consent_rows = app
        .count(&format!(
            "SELECT count(*) FROM consent_events WHERE subject IN ('{}', '{}')",
            visitors[0], visitors[1]
        ))
        .await;
    assert!(consent_rows >= 2, "the consent changes are in the ledger");
    // What identifies Zoe (must be gone from the whole dump) ...
    let mut identifiers = visitors.clone();
    identifiers.extend([zoe.user_id.clone(), email_hash.clone()]);
    identifiers.extend(sessions.iter().cloned());
    let before = pg_dump(&app.db.url);
    for id in &identifiers {
        assert!(before.contains(id.as_str()), "{id} is in the dump before");
    }
    // ... and what names her rows (her orders stay, unlinked; her message id stays in links).
    let mut markers = identifiers.clone();
    markers.extend(event_ids.iter().cloned());
    markers.extend(orders.iter().cloned());
    markers.extend(customers.iter().cloned());
    markers.push(zoe.message_id.clone());

    let company = a.id.to_string();
    let erased = lux_json(
        &app.db.url,
        &[
            "privacy",
            "erase",
            &company,
            "--email",
            &zoe.email.to_uppercase(),
        ],
    );
    let removed = &erased["removed"];
    assert_eq!(removed["raw_events"], event_ids.len(), "{erased}");
    assert_eq!(removed["event_ids"], event_ids.len(), "{erased}");
    assert_eq!(removed["sessions"], sessions.len(), "{erased}");
    assert_eq!(
        removed["identity_keys"], 4,
        "two devices, a user id, an email: {erased}"
    );
    assert_eq!(removed["message_sends"], 1, "{erased}");
    assert!(removed["message_events"].as_i64().unwrap() >= 1, "{erased}");
    assert_eq!(removed["consent_events"], consent_rows, "{erased}");
    assert_eq!(removed["orders_unlinked"], 1, "{erased}");
    assert!(
        erased["rollup_days_recomputed"].as_u64().unwrap() >= 1,
        "{erased}"
    );

    let after = pg_dump(&app.db.url);
    for id in &identifiers {
        assert!(!after.contains(id.as_str()), "{id} is still in the dump");
    }
    let (kept_before, kept_after) = (
        person_free_lines(&before, &markers),
        person_free_lines(&after, &markers),
    );
    // The comparison covers the others' rows: their events, sessions, keys, orders, sends.
    for other_id in [
        &people[1].user_id,
        &people[2].order,
        &people[2].message_id,
        &other.user_id,
    ] {
        assert!(
            kept_before
                .iter()
                .filter(|l| l.contains(other_id.as_str()))
                .count()
                >= 1,
            "{other_id} is compared"
        );
    }
    let gone: Vec<_> = kept_before.difference(&kept_after).collect();
    let new: Vec<_> = kept_after.difference(&kept_before).collect();
    assert!(
        gone.is_empty() && new.is_empty(),
        "other rows changed: gone {gone:#?} new {new:#?}"
    );
    // Her order stays for accounting, with no link to her.
    let (number, email, user, visitor, session): OrderLinks = sqlx::query_as(
        "SELECT order_number, email_hash, user_id, visitor_id, session_id FROM orders
         WHERE company_id = $1 AND order_id::text = $2",
    )
    .bind(a.id)
    .bind(&orders[0])
    .fetch_one(&app.owner)
    .await
    .unwrap();
    assert_eq!(number, zoe.order);
    assert!(email.is_none() && user.is_none() && visitor.is_none() && session.is_none());

    // The rollups the erasure recomputed are what a full rebuild gives.
    let recomputed = rollups(&app.owner).await;
    rebuild(&app, a.id).await;
    assert_eq!(recomputed, rollups(&app.owner).await);

    // One ledger row, with the counts and no personal data.
    let ledger: Vec<(Uuid, String, Value, String)> = sqlx::query_as(
        "SELECT request_id, action, rows, actor FROM privacy_ledger WHERE company_id = $1",
    )
    .bind(a.id)
    .fetch_all(&app.owner)
    .await
    .unwrap();
    assert_eq!(ledger.len(), 1, "{ledger:?}");
    assert_eq!(ledger[0].1, "erasure");
    assert_eq!(&ledger[0].2, removed);
    assert_eq!(
        ledger[0].0.to_string(),
        erased["request_id"].as_str().unwrap()
    );
    let state: String = sqlx::query_scalar(
        "SELECT state FROM privacy_requests WHERE company_id = $1 AND request_id = $2",
    )
    .bind(a.id)
    .bind(ledger[0].0)
    .fetch_one(&app.owner)
    .await
    .unwrap();
    assert_eq!(state, "completed");

    // Safe to rerun: nothing is left to remove.
    let again = lux_json(
        &app.db.url,
        &["privacy", "erase", &company, "--user-id", &zoe.user_id],
    );
    assert_eq!(again["removed"]["raw_events"], 0, "{again}");
    assert_eq!(again["removed"]["sessions"], 0, "{again}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_erasure_role_deletes_raw_events_within_its_company_and_only_under_a_request() {
    let app = TestApp::spawn().await;
    let a = app.company.id;
    let b = create_company(&app.owner, "Other").await;
    let (va, vb) = (Uuid::now_v7(), Uuid::now_v7());
    track(
        &app,
        &app.company,
        json!({"event_name": "page_view", "visitor_id": va, "page_url": "https://a.test/"}),
    )
    .await;
    track(
        &app,
        &b,
        json!({"event_name": "page_view", "visitor_id": vb, "page_url": "https://b.test/"}),
    )
    .await;
    let raw =
        |company: Uuid| format!("SELECT count(*) FROM raw_events WHERE company_id = '{company}'");
    let (a_rows, b_rows) = (app.count(&raw(a)).await, app.count(&raw(b.id)).await);
    assert_eq!((a_rows, b_rows), (1, 1));

    // The service's role: no UPDATE, DELETE or TRUNCATE, ever.
    for statement in [
        "UPDATE raw_events SET event_name = 'x'",
        "DELETE FROM raw_events",
        "TRUNCATE raw_events",
        "SELECT lux_erase_person(gen_random_uuid(), 'x', now(), '{}', '{}', '{}')",
    ] {
        let mut tx = app.owner.begin().await.unwrap();
        act_as_service(&mut tx, a).await;
        let error = sqlx::query(sqlx::AssertSqlSafe(statement))
            .execute(&mut *tx)
            .await
            .expect_err(statement);
        assert!(
            error.to_string().contains("permission denied"),
            "{statement}: {error}"
        );
    }

    // A deletion request of company A, as the API files it.
    let response = app
        .client
        .post(format!("{}/api/v1/privacy/requests", app.base))
        .bearer_auth(&app.company.secret_key)
        .json(&json!({"kind": "deletion", "visitor_id": va}))
        .send()
        .await
        .unwrap();
    let (status, request) = answer(response).await;
    assert_eq!(status, 201, "{request}");
    let request_id: Uuid = request["request_id"].as_str().unwrap().parse().unwrap();

    let as_eraser = |company: Uuid| {
        let owner = app.owner.clone();
        async move {
            let mut tx = owner.begin().await.unwrap();
            sqlx::query("SET LOCAL ROLE lux_eraser")
                .execute(&mut *tx)
                .await
                .unwrap();
            sqlx::query("SELECT set_config('lux.company_id', $1, true)")
                .bind(company.to_string())
                .execute(&mut *tx)
                .await
                .unwrap();
            tx
        }
    };
    // Without a request the function refuses, and so does the table.
    for (call, expected) in [
        (
            "SELECT lux_erase_person(NULL, 'test', now(), '{}', '{}', '{}')".to_string(),
            "needs a privacy request",
        ),
        (
            format!(
                "SELECT lux_erase_person('{}', 'test', now(), '{{}}', '{{}}', '{{}}')",
                Uuid::now_v7()
            ),
            "does not exist",
        ),
        ("DELETE FROM raw_events".to_string(), "append-only"),
        ("TRUNCATE raw_events".to_string(), "permission denied"),
        (
            "UPDATE raw_events SET event_name = 'x'".to_string(),
            "permission denied",
        ),
    ] {
        let mut tx = as_eraser(a).await;
        let error = sqlx::query(sqlx::AssertSqlSafe(call.clone()))
            .execute(&mut *tx)
            .await
            .expect_err(&call);
        assert!(error.to_string().contains(expected), "{call}: {error}");
    }
    // Company B's deletion request named while acting for A: refused too.
    let response = app
        .client
        .post(format!("{}/api/v1/privacy/requests", app.base))
        .bearer_auth(&b.secret_key)
        .json(&json!({"kind": "deletion", "visitor_id": vb}))
        .send()
        .await
        .unwrap();
    let (status, b_request) = answer(response).await;
    assert_eq!(status, 201, "{b_request}");
    let mut tx = as_eraser(a).await;
    sqlx::query("SELECT set_config('lux.erasure_request', $1, true)")
        .bind(b_request["request_id"].as_str().unwrap())
        .execute(&mut *tx)
        .await
        .unwrap();
    let error = sqlx::query("DELETE FROM raw_events")
        .execute(&mut *tx)
        .await
        .unwrap_err();
    assert!(error.to_string().contains("append-only"), "{error}");
    drop(tx);

    // With A's request: B's rows are out of reach (row-level security), even named directly
    // or passed to the function.
    let mut tx = as_eraser(a).await;
    sqlx::query("SELECT set_config('lux.erasure_request', $1, true)")
        .bind(request_id.to_string())
        .execute(&mut *tx)
        .await
        .unwrap();
    let deleted = sqlx::query("DELETE FROM raw_events WHERE company_id = $1")
        .bind(b.id)
        .execute(&mut *tx)
        .await
        .unwrap()
        .rows_affected();
    assert_eq!(deleted, 0);
    let done: Value =
        sqlx::query_scalar("SELECT lux_erase_person($1, 'test', now(), $2, '{}', '{}')")
            .bind(request_id)
            .bind(vec![vb])
            .fetch_one(&mut *tx)
            .await
            .unwrap();
    assert_eq!(done["removed"]["raw_events"], 0, "{done}");
    tx.commit().await.unwrap();
    assert_eq!(
        app.count(&raw(b.id)).await,
        1,
        "company B's row is untouched"
    );
    assert_eq!(app.count(&raw(a)).await, 1, "and A's was not named");

    // The command line refuses a request that is not a deletion, or is about someone else.
    let company = a.to_string();
    let visitor = va.to_string();
    let other = Uuid::now_v7().to_string();
    let access = lux_json(
        &app.db.url,
        &[
            "privacy",
            "request",
            &company,
            "--kind",
            "access",
            "--visitor-id",
            &visitor,
        ],
    );
    let access_id = access["request_id"].as_str().unwrap();
    let error = lux_error(
        &app.db.url,
        &[
            "privacy",
            "erase",
            &company,
            "--visitor-id",
            &visitor,
            "--request",
            access_id,
        ],
    );
    assert!(error.contains("needs a deletion request"), "{error}");
    let error = lux_error(
        &app.db.url,
        &[
            "privacy",
            "erase",
            &company,
            "--visitor-id",
            &other,
            "--request",
            &request_id.to_string(),
        ],
    );
    assert!(error.contains("someone else"), "{error}");
    let erased = lux_json(
        &app.db.url,
        &[
            "privacy",
            "erase",
            &company,
            "--visitor-id",
            &visitor,
            "--request",
            &request_id.to_string(),
        ],
    );
    assert_eq!(erased["removed"]["raw_events"], 1, "{erased}");
    assert_eq!(app.count(&raw(a)).await, 0);
    assert_eq!(app.count(&raw(b.id)).await, 1);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_holds_both_devices_the_order_the_click_and_the_consent_and_nobody_else() {
    let app = TestApp::spawn().await;
    let a = &app.company;
    let ann = Seeded::new("ann");
    let ben = Seeded::new("ben");
    seed(&app, a, &ann).await;
    seed(&app, a, &ben).await;
    let path = std::env::temp_dir().join(format!("export-{}.json", Uuid::new_v4()));
    let company = a.id.to_string();
    let output = crate::helpers::lux_command(
        &app.db.url,
        &[
            "privacy",
            "export",
            &company,
            "--email",
            &ann.email,
            "--out",
            path.to_str().unwrap(),
        ],
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = std::fs::read_to_string(&path).unwrap();
    let _ = std::fs::remove_file(&path);
    let doc: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(doc["format"], "lux-privacy-export/1");

    let visitors_in = |section: &str| -> BTreeSet<String> {
        doc[section]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|row| row["visitor_id"].as_str().map(str::to_owned))
            .collect()
    };
    let devices: BTreeSet<String> = ann.devices.iter().map(Uuid::to_string).collect();
    assert_eq!(visitors_in("events"), devices, "events of both devices");
    assert_eq!(visitors_in("sessions"), devices, "sessions of both devices");
    let links: BTreeSet<String> = doc["identity_links"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            format!(
                "{}:{}",
                k["kind"].as_str().unwrap(),
                k["value"].as_str().unwrap()
            )
        })
        .collect();
    assert!(
        links.contains(&format!("user:{}", ann.user_id)),
        "{links:?}"
    );
    for device in &devices {
        assert!(links.contains(&format!("visitor:{device}")), "{links:?}");
    }
    let orders = doc["orders"].as_array().unwrap();
    assert_eq!(orders.len(), 1, "{orders:?}");
    assert_eq!(orders[0]["order_number"], ann.order.as_str());
    assert_eq!(
        doc["message_sends"][0]["message_id"],
        ann.message_id.as_str()
    );
    assert!(
        doc["message_events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "clicked" && e["message_id"] == ann.message_id.as_str()),
        "{}",
        doc["message_events"]
    );
    let marketing: Vec<bool> = doc["consent_events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["purpose"] == "marketing")
        .map(|c| c["granted"].as_bool().unwrap())
        .collect();
    assert_eq!(
        marketing,
        [true, false],
        "the marketing consent and its withdrawal"
    );
    assert!(
        doc["consent_current"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["purpose"] == "marketing"
                && c["granted"] == false
                && c["notice_version"] == "2026-11"),
        "{}",
        doc["consent_current"]
    );

    // Nothing of Ben.
    let ben_hash = email_hash_hex(&app.owner, a.id, &ben.email).await;
    let mut bens = vec![
        ben.user_id.clone(),
        ben.order.clone(),
        ben.message_id.clone(),
        ben_hash,
    ];
    bens.extend(ben.devices.iter().map(Uuid::to_string));
    for id in bens {
        assert!(
            !text.contains(&id),
            "{id} of another person is in the export"
        );
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_erasure_new_events_and_webhooks_about_the_person_store_nothing_linking_to_them() {
    let app = TestApp::spawn().await;
    let a = &app.company;
    let cat = Seeded::new("cat");
    seed(&app, a, &cat).await;
    let company = a.id.to_string();
    lux_json(
        &app.db.url,
        &["privacy", "erase", &company, "--user-id", &cat.user_id],
    );
    let email_hash = email_hash_hex(&app.owner, a.id, &cat.email).await;
    let mut identifiers: Vec<String> = cat.devices.iter().map(Uuid::to_string).collect();
    identifiers.extend([cat.user_id.clone(), email_hash.clone()]);
    let rows_before = app.count("SELECT count(*) FROM raw_events").await;

    // The snippet on either device, a login, a purchase naming the email.
    let (status, body) = app
        .post_events(&json!([
            {"event_name": "page_view", "visitor_id": cat.devices[0], "page_url": "https://shop.test/"},
            {"event_name": "login", "visitor_id": Uuid::now_v7(), "user_id": cat.user_id,
             "page_url": "https://shop.test/login"},
            {"event_name": "purchase", "visitor_id": Uuid::now_v7(), "email": cat.email,
             "page_url": "https://shop.test/thanks",
             "properties": {"order_id": "after-1", "value": "10.00", "currency": "EUR"}},
            {"event_name": "page_view", "visitor_id": cat.devices[1], "page_url": "https://shop.test/",
             "consent": {"analytics": true, "marketing": true}},
        ]))
        .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["suppressed"], 4, "{body}");
    assert_eq!(
        app.count("SELECT count(*) FROM raw_events").await,
        rows_before
    );

    // A provider's webhook about her mail (opened, clicked, unsubscribed).
    let key = sendgrid_key(7);
    set_secret(
        &app,
        a.id,
        lux::commerce::secrets::Provider::SendGrid,
        &sendgrid_public(&key),
    )
    .await;
    let at = chrono::Utc::now().timestamp();
    let batch = json!([
        sg_event("open", "ev-1", &cat.message_id, &cat.email, at, json!({})),
        sg_event(
            "click",
            "ev-2",
            &cat.message_id,
            &cat.email,
            at,
            json!({"url": "https://shop.test/"})
        ),
        sg_event(
            "unsubscribe",
            "ev-3",
            &cat.message_id,
            &cat.email,
            at,
            json!({})
        ),
    ]);
    let (status, body) = post_sendgrid(&app, a.id, &key, at, &batch.to_string()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["suppressed"], 3, "{body}");
    assert_eq!(body["stored"], 0, "{body}");

    // The store's Stripe webhook for a new order of hers, naming her email and device: the
    // order is kept (accounting) with nothing that links it to her.
    crate::commerce::with_secrets(&app, a).await;
    let checkout = crate::commerce::stripe_event(
        "evt_after_erasure",
        "checkout.session.completed",
        json!({"id": "cs_after_erasure", "object": "checkout.session", "mode": "payment",
               "amount_total": 1999, "currency": "eur", "payment_status": "paid",
               "created": at, "customer_details": {"email": cat.email},
               "client_reference_id": cat.devices[0].to_string()}),
    );
    let signature = crate::commerce::stripe_signature(&checkout, crate::commerce::STRIPE_SECRET);
    let (code, body) = crate::commerce::post_stripe(&app, a.id, &checkout, signature).await;
    assert_eq!(code, 200, "{body}");
    let (email, visitor): (Option<Vec<u8>>, Option<Uuid>) = sqlx::query_as(
        "SELECT o.email_hash, o.visitor_id FROM orders o JOIN order_refs r USING (company_id, order_id)
         WHERE r.ref = 'stripe:cs_after_erasure'",
    )
    .fetch_one(&app.owner)
    .await
    .unwrap();
    assert!(
        email.is_none() && visitor.is_none(),
        "the order names nobody"
    );

    let dump = pg_dump(&app.db.url);
    for id in &identifiers {
        assert!(!dump.contains(id.as_str()), "{id} is back in the database");
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_consent_ledger_keeps_changes_only_from_the_snippet_gpc_and_requests() {
    let app = TestApp::spawn().await;
    let visitor = Uuid::now_v7();
    let page = |consent: Value| {
        json!({"event_name": "page_view", "visitor_id": visitor, "page_url": "https://shop.test/",
               "consent": consent})
    };
    let a = &app.company;
    track(&app, a, page(json!({"analytics": true, "marketing": true}))).await;
    track(&app, a, page(json!({"analytics": true, "marketing": true}))).await;
    track(
        &app,
        a,
        json!([
            page(json!({"analytics": true, "marketing": true})),
            page(json!({"analytics": true, "marketing": false}))
        ]),
    )
    .await;
    let response = app
        .client
        .post(format!("{}/e?key={}", app.base, a.write_key))
        .header("user-agent", BROWSER_UA)
        .header("sec-gpc", "1")
        .body(page(json!({"analytics": true})).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let rows: Vec<(String, bool, String)> = sqlx::query_as(
        "SELECT purpose, granted, source FROM consent_events WHERE subject = $1
         ORDER BY recorded_at, purpose",
    )
    .bind(visitor.to_string())
    .fetch_all(&app.owner)
    .await
    .unwrap();
    let as_text: Vec<String> = rows
        .iter()
        .map(|(p, g, s)| format!("{p}={g} ({s})"))
        .collect();
    assert_eq!(
        as_text,
        [
            "analytics=true (snippet)",
            "marketing=true (snippet)",
            "marketing=false (snippet)",
            "sale_sharing=false (gpc)",
        ]
    );
    let current: Vec<(String, bool)> = sqlx::query_as(
        "SELECT purpose, granted FROM consent_current WHERE subject = $1 ORDER BY purpose",
    )
    .bind(visitor.to_string())
    .fetch_all(&app.owner)
    .await
    .unwrap();
    assert_eq!(
        current,
        [
            ("analytics".to_string(), true),
            ("marketing".to_string(), false),
            ("sale_sharing".to_string(), false)
        ]
    );
    // The ledger is append-only for the service and the owner alike.
    let error = sqlx::query("DELETE FROM consent_events")
        .execute(&app.owner)
        .await
        .unwrap_err();
    assert!(error.to_string().contains("append-only"), "{error}");

    // An opt-out request withdraws sale/sharing for the person named.
    let response = app
        .client
        .post(format!("{}/api/v1/privacy/requests", app.base))
        .bearer_auth(&a.secret_key)
        .json(&json!({"kind": "opt_out", "user_id": "u-77"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let (granted, source): (bool, String) = sqlx::query_as(
        "SELECT granted, source FROM consent_current WHERE subject_kind = 'user' AND subject = 'u-77'
           AND purpose = 'sale_sharing'",
    )
    .fetch_one(&app.owner)
    .await
    .unwrap();
    assert_eq!((granted, source.as_str()), (false, "request"));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_get_their_deadlines_are_listed_and_overdue_ones_show_in_metrics() {
    let app = TestApp::spawn().await;
    let a = &app.company;
    let post = |key: String, body: Value| {
        let client = app.client.clone();
        let url = format!("{}/api/v1/privacy/requests", app.base);
        async move {
            answer(
                client
                    .post(url)
                    .bearer_auth(key)
                    .json(&body)
                    .send()
                    .await
                    .unwrap(),
            )
            .await
        }
    };
    let (status, filed) = post(
        a.secret_key.clone(),
        json!({"kind": "access", "email": "Someone@Example.com"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{filed}");
    let received: chrono::NaiveDate = filed["received_at"].as_str().unwrap()[..10]
        .parse()
        .unwrap();
    assert_eq!(
        filed["due_by"].as_str().unwrap(),
        (received + chrono::TimeDelta::days(45)).to_string()
    );
    assert_eq!(
        filed["acknowledge_by"].as_str().unwrap(),
        lux::privacy::requests::acknowledge_by(received).to_string()
    );
    assert_eq!(filed["state"], "received");
    assert!(
        !filed
            .to_string()
            .to_lowercase()
            .contains("someone@example.com")
    );

    // Received by mail 50 days ago and never answered: overdue.
    let long_ago = (chrono::Utc::now() - chrono::TimeDelta::days(50)).to_rfc3339();
    let (status, old) = post(
        a.secret_key.clone(),
        json!({"kind": "deletion", "user_id": "u-9", "received_at": long_ago}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{old}");

    for (key, body, expected) in [
        (
            a.write_key.clone(),
            json!({"kind": "access", "user_id": "u"}),
            StatusCode::FORBIDDEN,
        ),
        (
            a.secret_key.clone(),
            json!({"kind": "erase", "user_id": "u"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            a.secret_key.clone(),
            json!({"kind": "access"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            a.secret_key.clone(),
            json!({"kind": "access", "user_id": "u", "email": "x@y.z"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            a.secret_key.clone(),
            json!({"kind": "access", "email": "nope"}),
            StatusCode::BAD_REQUEST,
        ),
    ] {
        let (status, answer) = post(key, body.clone()).await;
        assert_eq!(status, expected, "{body}: {answer}");
        assert!(answer["error"].is_string(), "{answer}");
    }

    let output =
        crate::helpers::lux_command(&app.db.url, &["privacy", "requests", &a.id.to_string()]);
    assert!(output.status.success());
    let listed: Vec<Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(listed.len(), 2);
    let overdue: Vec<&Value> = listed.iter().filter(|r| r["overdue"] == true).collect();
    assert_eq!(overdue.len(), 1);
    assert_eq!(overdue[0]["request_id"], old["request_id"]);

    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l == "lux_privacy_requests_overdue 1"),
        "{metrics}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_drops_an_old_partition_erases_a_shorter_keeper_and_leaves_rollups() {
    let app = TestApp::spawn().await;
    let a = app.company.id;
    let b = create_company(&app.owner, "Short memory").await;
    sqlx::query("UPDATE companies SET raw_event_retention_months = 12 WHERE company_id = $1")
        .bind(b.id)
        .execute(&app.owner)
        .await
        .unwrap();
    let now = chrono::Utc::now();
    let month_start = |months_back: u32| {
        let d = now.date_naive() - chrono::Months::new(months_back);
        d.with_day0(0)
            .unwrap()
            .and_hms_opt(12, 0, 0)
            .unwrap()
            .and_utc()
            + chrono::TimeDelta::days(9)
    };
    use chrono::Datelike;
    let (ancient, old) = (month_start(30), month_start(18));
    sqlx::query("SELECT lux_ensure_raw_event_partitions($1, $1)")
        .bind(ancient.date_naive())
        .execute(&app.owner)
        .await
        .unwrap();
    let partition = format!("raw_events_y{}m{:02}", ancient.year(), ancient.month());
    // Stored long ago (before the backfill window, so written here directly), each with a
    // session so the rollups have those days.
    for (company, at) in [(a, ancient), (b.id, ancient), (a, old), (b.id, old)] {
        let visitor = Uuid::now_v7();
        let event = Uuid::now_v7();
        sqlx::query(
            "INSERT INTO raw_events (company_id, event_id, event_name, occurred_at, received_at,
                 visitor_id, session_id, consent_analytics, key_kind, page_url)
             VALUES ($1, $2, 'page_view', $3, $3, $4, $2, true, 'write', 'https://old.test/')",
        )
        .bind(company)
        .bind(event)
        .bind(at)
        .bind(visitor)
        .execute(&app.owner)
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO event_ids (company_id, event_id, received_at) VALUES ($1, $2, $3)",
        )
        .bind(company)
        .bind(event)
        .bind(at)
        .execute(&app.owner)
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO sessions (company_id, session_id, visitor_id, started_at, last_seen_at,
                 landing_page, source, medium, channel, page_views, events)
             VALUES ($1, $2, $3, $4, $4, 'https://old.test/', '(direct)', '(none)', 'Direct', 1, 1)",
        )
        .bind(company)
        .bind(event)
        .bind(visitor)
        .bind(at)
        .execute(&app.owner)
        .await
        .unwrap();
    }
    // And today's, through /e.
    for company in [&app.company, &b] {
        track(
            &app,
            company,
            json!({"event_name": "page_view", "visitor_id": Uuid::now_v7(),
            "page_url": "https://new.test/"}),
        )
        .await;
    }
    rebuild(&app, a).await;
    rebuild(&app, b.id).await;
    let rollups_before = rollups(&app.owner).await;
    let count = |sql: String| {
        let app = &app;
        async move { app.count(&sql).await }
    };
    let in_range =
        |company: Uuid, from: chrono::DateTime<chrono::Utc>, to: chrono::DateTime<chrono::Utc>| {
            format!(
                "SELECT count(*) FROM raw_events WHERE company_id = '{company}'
               AND occurred_at >= '{}' AND occurred_at < '{}'",
                from.to_rfc3339(),
                to.to_rfc3339()
            )
        };
    let day = chrono::TimeDelta::days(1);
    assert_eq!(count(in_range(a, ancient - day, ancient + day)).await, 1);

    let report = lux_json(&app.db.url, &["jobs", "run", "retention"]);
    assert_eq!(report["dropped_partitions"], json!([partition]), "{report}");
    let erased = report["erased"].as_array().unwrap();
    assert_eq!(
        erased.len(),
        1,
        "only B keeps less than 25 months: {report}"
    );
    assert_eq!(erased[0]["company_id"], b.id.to_string());
    assert_eq!(erased[0]["raw_events"], 1, "{report}");

    let exists: Option<String> = sqlx::query_scalar("SELECT to_regclass($1)::text")
        .bind(&partition)
        .fetch_one(&app.owner)
        .await
        .unwrap();
    assert!(exists.is_none(), "the old partition is gone");
    assert_eq!(
        count(in_range(a, old - day, old + day)).await,
        1,
        "A keeps 25 months"
    );
    assert_eq!(
        count(in_range(b.id, old - day, old + day)).await,
        0,
        "B keeps 12"
    );
    assert_eq!(
        count(in_range(a, now - day, now + day)).await,
        1,
        "today's stays"
    );
    assert_eq!(
        count(in_range(b.id, now - day, now + day)).await,
        1,
        "today's stays"
    );
    assert_eq!(
        rollups(&app.owner).await,
        rollups_before,
        "rollups stay as they were"
    );
    let ledger: Vec<(Uuid, String, Value)> = sqlx::query_as(
        "SELECT company_id, action, rows FROM privacy_ledger ORDER BY action, company_id",
    )
    .fetch_all(&app.owner)
    .await
    .unwrap();
    let mut expected = vec![
        (a, "retention_drop".to_string(), json!({"raw_events": 1})),
        (b.id, "retention_drop".to_string(), json!({"raw_events": 1})),
        (
            b.id,
            "retention_erasure".to_string(),
            json!({"raw_events": 1, "event_ids": 1}),
        ),
    ];
    expected.sort_by(|x, y| (&x.1, x.0).cmp(&(&y.1, y.0)));
    assert_eq!(ledger, expected);

    // Nothing more to do on a second run.
    let again = lux_json(&app.db.url, &["jobs", "run", "retention"]);
    assert_eq!(again["dropped_partitions"], json!([]), "{again}");
    assert_eq!(again["erased"], json!([]), "{again}");
    app.stop().await;
}
