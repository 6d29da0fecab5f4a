//! Commerce (SPEC §5): orders from the real Stripe and WooCommerce fixtures through the real
//! webhook endpoints with real signatures, merging, refunds, zero-decimal currencies, linking
//! to visitors, and tenant isolation.

use std::path::PathBuf;

use lux::commerce::secrets::Provider;
use lux::commerce::{stripe, woocommerce};
use serde_json::{Value, json};
use sqlx::Row;
use uuid::Uuid;

use crate::helpers::{Company, TestApp, create_company, secrets_key};

pub(crate) const STRIPE_SECRET: &str = "whsec_test_lux";
const WOO_SECRET: &str = "woo secret with spaces & symbols";

/// A fixture from `tests/fixtures/` (permissive licenses, copied), else from
/// `../shared/fixtures/` (where the AGPL ones stay); `None` when neither has it.
fn try_fixture(path: &str) -> Option<Vec<u8>> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    [root.join("tests/fixtures"), root.join("../shared/fixtures")]
        .iter()
        .find_map(|dir| std::fs::read(dir.join(path)).ok())
}

fn fixture(path: &str) -> Vec<u8> {
    try_fixture(path).unwrap_or_else(|| panic!("fixture {path} is missing from tests/fixtures"))
}

pub(crate) async fn with_secrets(app: &TestApp, company: &Company) {
    for (provider, secret) in [
        (Provider::Stripe, STRIPE_SECRET),
        (Provider::WooCommerce, WOO_SECRET),
    ] {
        lux::commerce::secrets::set_secret(
            &app.owner,
            &secrets_key(),
            company.id,
            provider,
            secret,
        )
        .await
        .unwrap();
    }
}

pub(crate) async fn post_stripe(
    app: &TestApp,
    company: Uuid,
    body: &[u8],
    signature: String,
) -> (u16, Value) {
    let response = app
        .client
        .post(format!("{}/webhooks/stripe/{company}", app.base))
        .header("content-type", "application/json")
        .header("stripe-signature", signature)
        .body(body.to_vec())
        .send()
        .await
        .unwrap();
    (
        response.status().as_u16(),
        response.json().await.unwrap_or(Value::Null),
    )
}

pub(crate) fn stripe_signature(body: &[u8], secret: &str) -> String {
    stripe::sign(body, secret.as_bytes(), chrono::Utc::now().timestamp())
}

async fn post_woo(
    app: &TestApp,
    company: Uuid,
    topic: &str,
    body: &[u8],
    secret: &str,
) -> (u16, Value) {
    let response = app
        .client
        .post(format!("{}/webhooks/woocommerce/{company}", app.base))
        .header("content-type", "application/json")
        .header("x-wc-webhook-topic", topic)
        .header(
            "x-wc-webhook-signature",
            woocommerce::sign(body, secret.as_bytes()),
        )
        .body(body.to_vec())
        .send()
        .await
        .unwrap();
    (
        response.status().as_u16(),
        response.json().await.unwrap_or(Value::Null),
    )
}

/// A WooCommerce REST v3 order, processing, with the snippet's visitor id in its meta.
fn woo_order(
    id: i64,
    total: &str,
    visitor: Option<Uuid>,
    email: &str,
    created: chrono::DateTime<chrono::Utc>,
) -> Vec<u8> {
    let mut meta = vec![json!({"id": 1, "key": "_download_permissions_granted", "value": "yes"})];
    if let Some(v) = visitor {
        meta.push(json!({"id": 2, "key": "_lux_visitor_id", "value": v.to_string()}));
    }
    let time = created.format("%Y-%m-%dT%H:%M:%S").to_string();
    serde_json::to_vec(&json!({
        "id": id, "number": id.to_string(), "status": "processing", "currency": "EUR",
        "total": total, "discount_total": "0.00", "shipping_total": "0.00", "total_tax": "0.00",
        "customer_id": 0, "date_created_gmt": time, "date_modified_gmt": time,
        "billing": {"email": email}, "meta_data": meta, "refunds": []
    }))
    .unwrap()
}

/// (status, currency, gross, refunded, net) of a company's only order.
async fn the_order(
    app: &TestApp,
    company: Uuid,
) -> (String, String, Option<i64>, i64, Option<i64>) {
    let rows = sqlx::query(
        "SELECT status, currency::text AS currency, gross_minor, refunded_minor, net_minor
         FROM orders WHERE company_id = $1",
    )
    .bind(company)
    .fetch_all(&app.owner)
    .await
    .unwrap();
    assert_eq!(rows.len(), 1, "exactly one order");
    let r = &rows[0];
    (
        r.get("status"),
        r.get("currency"),
        r.get("gross_minor"),
        r.get("refunded_minor"),
        r.get("net_minor"),
    )
}

/// Purchase events reach `orders` through the inbox worker: wait until it is empty.
async fn inbox_drained(app: &TestApp) {
    for _ in 0..200 {
        if app.count("SELECT count(*) FROM order_inbox").await == 0 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("the order worker did not drain the inbox");
}

async fn orders_of(app: &TestApp, company: Uuid) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM orders WHERE company_id = $1")
        .bind(company)
        .fetch_one(&app.owner)
        .await
        .unwrap()
}

/// Fixture file, then the order's expected status, currency, gross, refunded and net.
type StripeCase = (
    &'static str,
    &'static str,
    &'static str,
    Option<i64>,
    i64,
    Option<i64>,
);
/// Fixture file, index of the order in it, expected (number, status, gross, refunded, net,
/// tax, shipping).
type WooCase = (
    &'static str,
    usize,
    (&'static str, &'static str, i64, i64, i64, i64, i64),
);

#[tokio::test]
async fn every_stripe_fixture_gives_the_right_order_and_forged_ones_give_none() {
    let app = TestApp::spawn().await;
    let cases: &[StripeCase] = &[
        (
            "event.checkout.session.completed.stripe-ruby-mock.json",
            "paid",
            "USD",
            Some(3000),
            0,
            Some(3000),
        ),
        (
            "event.checkout.session.completed.payment_mode.stripe-ruby-mock.json",
            "paid",
            "USD",
            Some(25000),
            0,
            Some(25000),
        ),
        (
            "event.payment_intent.succeeded.stripe-ruby-mock.json",
            "paid",
            "USD",
            Some(2000),
            0,
            Some(2000),
        ),
        (
            "event.charge.succeeded.stripe-ruby-mock.json",
            "paid",
            "USD",
            Some(2000),
            0,
            Some(2000),
        ),
        (
            "event.charge.refunded.stripe-ruby-mock.json",
            "refunded",
            "USD",
            Some(100),
            100,
            Some(0),
        ),
        (
            "event.payment_intent.succeeded.2025-04-30.basil.lago.json",
            "paid",
            "EUR",
            Some(4620),
            0,
            Some(4620),
        ),
        // A refund seen before its payment: the amount refunded is known, the total not yet.
        (
            "event.charge.refund.updated.2025-04-30.basil.lago.json",
            "partially_refunded",
            "USD",
            None,
            100,
            None,
        ),
    ];
    for (file, status, currency, gross, refunded, net) in cases {
        let Some(body) = try_fixture(&format!("stripe/{file}")) else {
            // AGPL fixtures are not copied into the project.
            eprintln!("skipping {file}: ../shared/fixtures is not present");
            continue;
        };
        let company = create_company(&app.owner, file).await;
        with_secrets(&app, &company).await;

        // Forged: wrong secret, stale timestamp, tampered body.
        let wrong = post_stripe(
            &app,
            company.id,
            &body,
            stripe_signature(&body, "whsec_wrong"),
        )
        .await;
        let stale_sig = stripe::sign(
            &body,
            STRIPE_SECRET.as_bytes(),
            chrono::Utc::now().timestamp() - 600,
        );
        let stale = post_stripe(&app, company.id, &body, stale_sig).await;
        let mut tampered = body.clone();
        let at = tampered.iter().position(|b| b.is_ascii_digit()).unwrap();
        tampered[at] = if tampered[at] == b'9' {
            b'8'
        } else {
            tampered[at] + 1
        };
        let tampered_result = post_stripe(
            &app,
            company.id,
            &tampered,
            stripe_signature(&body, STRIPE_SECRET),
        )
        .await;
        for (what, (code, answer)) in [
            ("wrong secret", wrong),
            ("stale", stale),
            ("tampered", tampered_result),
        ] {
            assert_eq!(code, 400, "{file} {what}: {answer}");
            assert!(
                answer["error"].as_str().unwrap().contains("signature"),
                "{answer}"
            );
        }
        assert_eq!(
            orders_of(&app, company.id).await,
            0,
            "{file}: forged deliveries store no order"
        );

        let (code, answer) = post_stripe(
            &app,
            company.id,
            &body,
            stripe_signature(&body, STRIPE_SECRET),
        )
        .await;
        assert_eq!(code, 200, "{file}: {answer}");
        let got = the_order(&app, company.id).await;
        assert_eq!(
            got,
            (
                status.to_string(),
                currency.to_string(),
                *gross,
                *refunded,
                *net
            ),
            "{file}"
        );
        // Redelivery changes nothing.
        let (code, answer) = post_stripe(
            &app,
            company.id,
            &body,
            stripe_signature(&body, STRIPE_SECRET),
        )
        .await;
        assert_eq!(
            (code, answer["duplicate"].as_bool()),
            (200, Some(true)),
            "{file}"
        );
        assert_eq!(the_order(&app, company.id).await, got);
        let (verified, rejected): (i64, i64) = sqlx::query_as(
            "SELECT count(*) FILTER (WHERE verified), count(*) FILTER (WHERE NOT verified)
             FROM webhook_deliveries WHERE company_id = $1",
        )
        .bind(company.id)
        .fetch_one(&app.owner)
        .await
        .unwrap();
        assert_eq!(
            (verified, rejected),
            (2, 3),
            "{file}: every delivery is kept with its verdict"
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn every_woocommerce_fixture_gives_the_right_order_and_the_ping_is_answered() {
    let app = TestApp::spawn().await;
    // The unsigned ping WooCommerce sends when a webhook is created.
    let ping = app
        .client
        .post(format!(
            "{}/webhooks/woocommerce/{}",
            app.base, app.company.id
        ))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("webhook_id=12")
        .send()
        .await
        .unwrap();
    assert_eq!(ping.status(), 200);

    let single = |file: &str| -> Vec<Value> {
        let v: Value = serde_json::from_slice(&fixture(&format!("woocommerce/{file}"))).unwrap();
        match v {
            Value::Array(items) => items,
            other => vec![other],
        }
    };
    // (file, index in it, expected (number, status, gross, refunded, net, tax, shipping))
    let cases: &[WooCase] = &[
        (
            "order_v3_retrieve_response.json",
            0,
            ("727", "paid", 2935, 0, 2935, 135, 1000),
        ),
        (
            "order_v3_update_response.json",
            0,
            ("727", "paid", 2935, 0, 2935, 135, 1000),
        ),
        (
            "orders_v3_list_response.json",
            1,
            ("723", "partially_refunded", 3900, 1900, 2000, 0, 1000),
        ),
    ];
    for (file, index, expected) in cases {
        let company = create_company(&app.owner, file).await;
        with_secrets(&app, &company).await;
        let body = serde_json::to_vec(&single(file)[*index]).unwrap();
        let (code, _) = post_woo(&app, company.id, "order.updated", &body, "not the secret").await;
        assert_eq!(code, 400, "{file}: wrong secret");
        let mut tampered = body.clone();
        tampered.extend_from_slice(b" ");
        let response = app
            .client
            .post(format!("{}/webhooks/woocommerce/{}", app.base, company.id))
            .header("x-wc-webhook-topic", "order.updated")
            .header(
                "x-wc-webhook-signature",
                woocommerce::sign(&body, WOO_SECRET.as_bytes()),
            )
            .body(tampered)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{file}: tampered");
        assert_eq!(orders_of(&app, company.id).await, 0);

        let (code, answer) = post_woo(&app, company.id, "order.updated", &body, WOO_SECRET).await;
        assert_eq!(code, 200, "{file}: {answer}");
        let row = sqlx::query(
            "SELECT order_number, status, gross_minor, refunded_minor, net_minor, tax_minor,
                    shipping_minor, currency::text AS currency, email_hash IS NOT NULL AS has_email
             FROM orders WHERE company_id = $1",
        )
        .bind(company.id)
        .fetch_one(&app.owner)
        .await
        .unwrap();
        let got = (
            row.get::<String, _>("order_number"),
            row.get::<String, _>("status"),
            row.get::<i64, _>("gross_minor"),
            row.get::<i64, _>("refunded_minor"),
            row.get::<i64, _>("net_minor"),
            row.get::<i64, _>("tax_minor"),
            row.get::<i64, _>("shipping_minor"),
        );
        let e = expected;
        assert_eq!(
            got,
            (e.0.to_string(), e.1.to_string(), e.2, e.3, e.4, e.5, e.6),
            "{file}"
        );
        assert_eq!(row.get::<String, _>("currency"), "USD");
        assert!(
            row.get::<bool, _>("has_email"),
            "{file}: billing email hashed"
        );
    }
    // Refund objects are not orders: refused with a 4xx, nothing stored.
    let company = create_company(&app.owner, "refund").await;
    with_secrets(&app, &company).await;
    let refunds = [
        single("order_refund_v3_retrieve_response.json"),
        single("order_refunds_v3_list_response.json"),
    ];
    for refund in refunds.iter().flatten() {
        let body = serde_json::to_vec(refund).unwrap();
        let (code, answer) = post_woo(&app, company.id, "order.updated", &body, WOO_SECRET).await;
        assert_eq!(code, 422, "{answer}");
        assert!(
            answer["error"].as_str().unwrap().contains("refund"),
            "{answer}"
        );
    }
    assert_eq!(orders_of(&app, company.id).await, 0);
    // The billing emails of the orders are nowhere on disk: payloads are kept encrypted.
    let dump = crate::helpers::pg_dump(&app.db.url).to_lowercase();
    for email in ["john.doe@example.com", "joao.silva@example.com"] {
        assert!(!dump.contains(email), "{email} is in the database");
    }
    app.stop().await;
}

pub(crate) fn stripe_event(id: &str, event_type: &str, object: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "id": id, "object": "event", "type": event_type,
        "created": chrono::Utc::now().timestamp(),
        "data": {"object": object}
    }))
    .unwrap()
}

#[tokio::test]
async fn a_purchase_event_a_stripe_webhook_and_a_stripe_import_of_one_order_give_one_order() {
    let app = TestApp::spawn().await;
    with_secrets(&app, &app.company).await;
    let now = chrono::Utc::now().timestamp();
    let payment = stripe_event(
        "evt_pi_1",
        "payment_intent.succeeded",
        json!({
            "id": "pi_LUX1", "object": "payment_intent", "amount": 5990, "amount_received": 5990,
            "currency": "eur", "status": "succeeded", "created": now,
            "metadata": {"lux_order_id": "1001"}
        }),
    );
    let charge = stripe_event(
        "evt_ch_1",
        "charge.succeeded",
        json!({
            "id": "ch_LUX1", "object": "charge", "amount": 5990, "amount_captured": 5990,
            "amount_refunded": 0, "currency": "eur", "status": "succeeded",
            "payment_intent": "pi_LUX1", "created": now, "metadata": {}
        }),
    );

    let (status, body) = app
        .post_events(
            &json!({"event_name": "purchase", "page_url": "https://s.test/thanks",
            "properties": {"order_id": "1001", "value": 59.9, "currency": "EUR"}}),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    inbox_drained(&app).await;
    let (code, _) = post_stripe(
        &app,
        app.company.id,
        &payment,
        stripe_signature(&payment, STRIPE_SECRET),
    )
    .await;
    assert_eq!(code, 200);

    let file = std::env::temp_dir().join(format!("stripe-export-{}.jsonl", Uuid::new_v4()));
    std::fs::write(
        &file,
        format!(
            "{}\n{}\nnot json\n",
            String::from_utf8_lossy(&payment),
            String::from_utf8_lossy(&charge)
        ),
    )
    .unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_lux"))
        .args([
            "import",
            "stripe",
            file.to_str().unwrap(),
            "--company",
            &app.company.id.to_string(),
        ])
        .env("DATABASE_URL", &app.db.url)
        .env("LUX_SECRETS_KEY", secrets_key().to_hex())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(
        report.contains("read 3, imported 1, already imported 1"),
        "{report}"
    );
    assert!(
        report.contains("skipped 1: malformed JSON line"),
        "{report}"
    );

    let row =
        sqlx::query("SELECT order_number, status, gross_minor, net_minor, sources FROM orders")
            .fetch_all(&app.owner)
            .await
            .unwrap();
    assert_eq!(row.len(), 1, "one order from three sources");
    assert_eq!(row[0].get::<String, _>("order_number"), "1001");
    assert_eq!(row[0].get::<i64, _>("gross_minor"), 5990);
    let mut sources: Vec<String> = row[0].get("sources");
    sources.sort();
    assert_eq!(sources, ["event", "stripe"]);
    app.stop().await;
}

#[tokio::test]
async fn partial_and_full_refunds_change_net_revenue_exactly_and_yen_stay_whole() {
    let app = TestApp::spawn().await;
    with_secrets(&app, &app.company).await;
    let charge = |event_id: &str, refunded: i64| {
        stripe_event(
            event_id,
            "charge.refunded",
            json!({
                "id": "ch_R1", "object": "charge", "amount": 2000, "amount_captured": 2000,
                "amount_refunded": refunded, "currency": "usd", "status": "succeeded",
                "payment_intent": "pi_R1", "created": chrono::Utc::now().timestamp(), "metadata": {}
            }),
        )
    };
    for (event_id, refunded, expected) in [
        ("evt_r0", 0, ("paid", 0, 2000)),
        ("evt_r1", 500, ("partially_refunded", 500, 1500)),
        ("evt_r2", 2000, ("refunded", 2000, 0)),
    ] {
        let body = charge(event_id, refunded);
        let (code, _) = post_stripe(
            &app,
            app.company.id,
            &body,
            stripe_signature(&body, STRIPE_SECRET),
        )
        .await;
        assert_eq!(code, 200);
        let (status, _, _, refunded, net) = the_order(&app, app.company.id).await;
        assert_eq!((status.as_str(), refunded, net.unwrap()), expected);
    }

    let yen = create_company(&app.owner, "Tokyo").await;
    with_secrets(&app, &yen).await;
    let body = stripe_event(
        "evt_jpy",
        "payment_intent.succeeded",
        json!({
            "id": "pi_JPY", "object": "payment_intent", "amount": 11200, "amount_received": 11200,
            "currency": "jpy", "status": "succeeded", "created": chrono::Utc::now().timestamp(), "metadata": {}
        }),
    );
    let (code, _) = post_stripe(&app, yen.id, &body, stripe_signature(&body, STRIPE_SECRET)).await;
    assert_eq!(code, 200);
    let (_, currency, gross, _, _) = the_order(&app, yen.id).await;
    assert_eq!(
        (currency.as_str(), gross),
        ("JPY", Some(11200)),
        "¥11,200, not ¥112"
    );
    let jpy = lux::commerce::money::Currency::parse("JPY").unwrap();
    assert_eq!(jpy.format(gross.unwrap()), "11200");
    app.stop().await;
}

#[tokio::test]
async fn an_order_after_a_visit_is_linked_to_the_visitor_by_each_documented_mechanism() {
    let app = TestApp::spawn().await;
    with_secrets(&app, &app.company).await;
    // Providers give whole seconds: an order paid "now" is stamped at the next second at most.
    let paid_now = || chrono::Utc::now() + chrono::Duration::seconds(1);
    let visit = |visitor: Uuid| {
        json!({"event_name": "page_view", "visitor_id": visitor,
        "page_url": "https://s.test/?utm_source=news&utm_medium=email&utm_campaign=x"})
    };

    // (1) a purchase event of the visitor.
    let v1 = Uuid::now_v7();
    app.post_events(&visit(v1)).await;
    app.post_events(&json!({"event_name": "purchase", "visitor_id": v1,
        "properties": {"order_id": "A-1", "value": "10.00", "currency": "EUR"}}))
        .await;
    // (2) Stripe Checkout's client_reference_id.
    let v2 = Uuid::now_v7();
    app.post_events(&visit(v2)).await;
    let checkout = stripe_event(
        "evt_cs_2",
        "checkout.session.completed",
        json!({
            "id": "cs_2", "object": "checkout.session", "mode": "payment", "amount_total": 1000,
            "currency": "eur", "payment_status": "paid", "payment_intent": "pi_2",
            "client_reference_id": v2.to_string(), "created": paid_now().timestamp(), "metadata": {},
            "customer_details": {"email": "buyer2@example.com"}
        }),
    );
    // (3) Stripe metadata.lux_visitor_id.
    let v3 = Uuid::now_v7();
    app.post_events(&visit(v3)).await;
    let payment = stripe_event(
        "evt_pi_3",
        "payment_intent.succeeded",
        json!({
            "id": "pi_3", "object": "payment_intent", "amount": 1000, "amount_received": 1000,
            "currency": "eur", "status": "succeeded", "created": paid_now().timestamp(),
            "metadata": {"lux_visitor_id": v3.to_string()}
        }),
    );
    for body in [checkout, payment] {
        let (code, answer) = post_stripe(
            &app,
            app.company.id,
            &body,
            stripe_signature(&body, STRIPE_SECRET),
        )
        .await;
        assert_eq!(code, 200, "{answer}");
    }
    // (4) WooCommerce order meta written at checkout.
    let v4 = Uuid::now_v7();
    app.post_events(&visit(v4)).await;
    let body = woo_order(4004, "10.00", Some(v4), "buyer4@example.com", paid_now());
    assert_eq!(
        post_woo(&app, app.company.id, "order.created", &body, WOO_SECRET)
            .await
            .0,
        200
    );
    // (5) the email hash: the visitor identified with the email the order carries.
    let v5 = Uuid::now_v7();
    app.post_events(&visit(v5)).await;
    app.post_events(&json!({"event_name": "identify", "visitor_id": v5,
        "email": "Buyer5@Example.com", "page_url": "https://s.test/account"}))
        .await;
    let body = woo_order(5005, "10.00", None, "buyer5@example.com", paid_now());
    assert_eq!(
        post_woo(&app, app.company.id, "order.created", &body, WOO_SECRET)
            .await
            .0,
        200
    );

    inbox_drained(&app).await;
    for (number, visitor) in [("A-1", v1), ("pi_2", v2), ("pi_3", v3), ("4004", v4)] {
        let row = sqlx::query(
            "SELECT o.visitor_id, o.session_id, s.visitor_id AS session_visitor
             FROM orders o LEFT JOIN sessions s USING (company_id, session_id)
             WHERE o.order_number = $1",
        )
        .bind(number)
        .fetch_one(&app.owner)
        .await
        .unwrap_or_else(|e| panic!("order {number}: {e}"));
        assert_eq!(
            row.get::<Option<Uuid>, _>("visitor_id"),
            Some(visitor),
            "order {number}"
        );
        assert_eq!(
            row.get::<Option<Uuid>, _>("session_visitor"),
            Some(visitor),
            "order {number}'s session"
        );
    }
    // The email-only order reaches the visitor through the identity graph.
    let linked: Option<String> = sqlx::query_scalar(
        "SELECT v.key_value FROM orders o
         JOIN identity_keys e ON e.company_id = o.company_id AND e.key_kind = 'email'
                             AND e.key_value = encode(o.email_hash, 'hex')
         JOIN identity_keys v ON v.company_id = e.company_id AND v.person_id = e.person_id
                             AND v.key_kind = 'visitor'
         WHERE o.order_number = '5005'",
    )
    .fetch_optional(&app.owner)
    .await
    .unwrap();
    assert_eq!(linked, Some(v5.to_string()));
    let customers: i64 = app.count("SELECT count(*) FROM customers").await;
    assert!(customers >= 3, "customers by email: {customers}");
    app.stop().await;
}

#[tokio::test]
async fn a_webhook_for_a_never_writes_into_b() {
    let app = TestApp::spawn().await;
    let a = &app.company;
    with_secrets(&app, a).await;
    let b = create_company(&app.owner, "Beta").await;
    lux::commerce::secrets::set_secret(
        &app.owner,
        &secrets_key(),
        b.id,
        Provider::Stripe,
        "whsec_b_secret",
    )
    .await
    .unwrap();
    let body = stripe_event(
        "evt_iso",
        "payment_intent.succeeded",
        json!({
            "id": "pi_ISO", "object": "payment_intent", "amount": 700, "amount_received": 700,
            "currency": "usd", "status": "succeeded", "created": chrono::Utc::now().timestamp(), "metadata": {}
        }),
    );
    // A's payload sent to B's path (signed with A's secret), and B's secret on A's path.
    let (code, _) = post_stripe(&app, b.id, &body, stripe_signature(&body, STRIPE_SECRET)).await;
    assert_eq!(code, 400);
    let (code, _) = post_stripe(&app, a.id, &body, stripe_signature(&body, "whsec_b_secret")).await;
    assert_eq!(code, 400);
    assert_eq!(orders_of(&app, a.id).await + orders_of(&app, b.id).await, 0);
    // A company that does not exist, or has no secret: 404, nothing kept.
    let (code, _) = post_stripe(
        &app,
        Uuid::now_v7(),
        &body,
        stripe_signature(&body, STRIPE_SECRET),
    )
    .await;
    assert_eq!(code, 404);
    // Correctly signed for A: the order lands in A only.
    let (code, _) = post_stripe(&app, a.id, &body, stripe_signature(&body, STRIPE_SECRET)).await;
    assert_eq!(code, 200);
    assert_eq!(
        (orders_of(&app, a.id).await, orders_of(&app, b.id).await),
        (1, 0)
    );
    app.stop().await;
}

/// File, the event bodies it causes, expected (status, currency, gross, refunded).
type TriggerCase = (
    &'static str,
    Vec<Vec<u8>>,
    (&'static str, &'static str, i64, i64),
);

/// The `stripe trigger` definitions are API calls, not events: each is replayed as the events
/// Stripe emits for it, with the amounts and currencies read from the file.
#[tokio::test]
async fn stripe_cli_triggers_replayed_as_the_events_they_cause() {
    let app = TestApp::spawn().await;
    let params = |file: &str, name: &str| -> Value {
        let text =
            String::from_utf8(fixture(&format!("stripe/stripe-cli-triggers/{file}"))).unwrap();
        let definition: Value = serde_json::from_str(text.trim()).unwrap();
        definition["fixtures"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["name"] == name)
            .unwrap_or_else(|| panic!("{file} has no step {name}"))["params"]
            .clone()
    };
    let amount = |v: &Value| -> i64 {
        v.as_i64()
            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
            .unwrap()
    };
    let now = chrono::Utc::now().timestamp();
    let pi = |id: &str, amount: i64, currency: &str| {
        json!({"id": id, "object": "payment_intent",
        "amount": amount, "amount_received": amount, "currency": currency, "status": "succeeded",
        "created": now, "metadata": {}})
    };
    let charge = |id: &str, amount: i64, refunded: i64, currency: &str| {
        json!({"id": id,
        "object": "charge", "amount": amount, "amount_captured": amount, "amount_refunded": refunded,
        "currency": currency, "status": "succeeded", "payment_intent": format!("pi_{id}"),
        "created": now, "metadata": {}})
    };

    // (file, the events it causes, expected status, currency, gross, refunded)
    let mut cases: Vec<TriggerCase> = Vec::new();
    let p = params("charge.succeeded.json", "payment_intent");
    let (a, c) = (
        amount(&p["amount"]),
        p["currency"].as_str().unwrap().to_string(),
    );
    cases.push((
        "charge.succeeded.json",
        vec![stripe_event(
            "evt_t1",
            "charge.succeeded",
            charge("t1", a, 0, &c),
        )],
        ("paid", "USD", a, 0),
    ));
    let p = params("charge.refunded.json", "payment_intent");
    let (a, c) = (
        amount(&p["amount"]),
        p["currency"].as_str().unwrap().to_string(),
    );
    cases.push((
        "charge.refunded.json",
        vec![
            stripe_event("evt_t2a", "charge.succeeded", charge("t2", a, 0, &c)),
            stripe_event("evt_t2b", "charge.refunded", charge("t2", a, a, &c)),
        ],
        ("refunded", "USD", a, a),
    ));
    let p = params("payment_intent.succeeded.json", "payment_intent");
    let (a, c) = (
        amount(&p["amount"]),
        p["currency"].as_str().unwrap().to_string(),
    );
    cases.push((
        "payment_intent.succeeded.json",
        vec![stripe_event(
            "evt_t3",
            "payment_intent.succeeded",
            pi("pi_t3", a, &c),
        )],
        ("paid", "USD", a, 0),
    ));
    let price = params("checkout.session.completed.json", "price");
    let session = params("checkout.session.completed.json", "checkout_session");
    let total =
        amount(&price["unit_amount"]) * session["line_items"][0]["quantity"].as_i64().unwrap();
    let c = price["currency"].as_str().unwrap().to_string();
    cases.push((
        "checkout.session.completed.json",
        vec![stripe_event(
            "evt_t4",
            "checkout.session.completed",
            json!({
        "id": "cs_t4", "object": "checkout.session", "mode": "payment", "amount_total": total,
        "currency": c, "payment_status": "paid", "payment_intent": "pi_t4", "created": now,
        "metadata": {}, "customer_details": {"email": "stripe@example.com"}}),
        )],
        ("paid", "USD", total, 0),
    ));
    // JPY, funded in two steps: only the completed payment is an order, in whole yen.
    let p = params("payment_intent.partially_funded.json", "payment_intent");
    let (a, c) = (
        amount(&p["amount"]),
        p["currency"].as_str().unwrap().to_string(),
    );
    let mut partial = pi("pi_t5", a, &c);
    partial["status"] = json!("requires_action");
    partial["amount_received"] = json!(0);
    cases.push((
        "payment_intent.partially_funded.json",
        vec![
            stripe_event("evt_t5a", "payment_intent.partially_funded", partial),
            stripe_event("evt_t5b", "payment_intent.succeeded", pi("pi_t5", a, &c)),
        ],
        ("paid", "JPY", 20000, 0),
    ));

    for (file, events, (status, currency, gross, refunded)) in cases {
        let company = create_company(&app.owner, file).await;
        with_secrets(&app, &company).await;
        for body in events {
            let (code, answer) = post_stripe(
                &app,
                company.id,
                &body,
                stripe_signature(&body, STRIPE_SECRET),
            )
            .await;
            assert_eq!(code, 200, "{file}: {answer}");
        }
        let (s, cur, g, r, _) = the_order(&app, company.id).await;
        assert_eq!(
            (s.as_str(), cur.as_str(), g, r),
            (status, currency, Some(gross), refunded),
            "{file}"
        );
    }
    app.stop().await;
}

/// Regression: a checkout event redelivered after a newer event of the same payment used to
/// be ignored whole, losing the visitor it names.
#[tokio::test]
async fn a_late_checkout_redelivery_still_links_its_visitor() {
    let app = TestApp::spawn().await;
    with_secrets(&app, &app.company).await;
    let visitor = Uuid::now_v7();
    let now = chrono::Utc::now().timestamp();
    let mut refund = serde_json::from_slice::<Value>(&stripe_event(
        "evt_late_r",
        "charge.refunded",
        json!({
        "id": "ch_L", "object": "charge", "amount": 1000, "amount_captured": 1000,
        "amount_refunded": 300, "currency": "usd", "status": "succeeded",
        "payment_intent": "pi_L", "created": now, "metadata": {}}),
    ))
    .unwrap();
    refund["created"] = json!(now);
    let mut checkout = serde_json::from_slice::<Value>(&stripe_event(
        "evt_late_cs",
        "checkout.session.completed",
        json!({
        "id": "cs_L", "object": "checkout.session", "mode": "payment", "amount_total": 1000,
        "currency": "usd", "payment_status": "paid", "payment_intent": "pi_L",
        "client_reference_id": visitor.to_string(), "created": now - 600, "metadata": {}}),
    ))
    .unwrap();
    checkout["created"] = json!(now - 600);
    for event in [refund, checkout] {
        let body = serde_json::to_vec(&event).unwrap();
        let (code, answer) = post_stripe(
            &app,
            app.company.id,
            &body,
            stripe_signature(&body, STRIPE_SECRET),
        )
        .await;
        assert_eq!(code, 200, "{answer}");
    }
    let (status, _, gross, refunded, _) = the_order(&app, app.company.id).await;
    assert_eq!(
        (status.as_str(), gross, refunded),
        ("partially_refunded", Some(1000), 300)
    );
    let linked: Option<Uuid> = sqlx::query_scalar("SELECT visitor_id FROM orders")
        .fetch_one(&app.owner)
        .await
        .unwrap();
    assert_eq!(linked, Some(visitor));
    app.stop().await;
}

/// Regression: the public write key could re-point a verified order to another visitor by
/// sending a purchase event with the same order number.
#[tokio::test]
async fn a_purchase_event_cannot_take_over_a_verified_order() {
    let app = TestApp::spawn().await;
    with_secrets(&app, &app.company).await;
    let (buyer, attacker) = (Uuid::now_v7(), Uuid::now_v7());
    let created = chrono::Utc::now();
    let order = woo_order(9001, "80.00", Some(buyer), "real@example.com", created);
    assert_eq!(
        post_woo(&app, app.company.id, "order.created", &order, WOO_SECRET)
            .await
            .0,
        200
    );
    let (status, _) = app
        .post_events(&json!({"event_name": "purchase", "visitor_id": attacker,
            "occurred_at": (created - chrono::Duration::hours(48)).to_rfc3339(),
            "properties": {"order_id": "9001", "value": "1.00", "currency": "EUR"}}))
        .await;
    assert_eq!(status, 202);
    inbox_drained(&app).await;
    let row = sqlx::query("SELECT visitor_id, gross_minor, placed_at FROM orders")
        .fetch_one(&app.owner)
        .await
        .unwrap();
    assert_eq!(row.get::<Option<Uuid>, _>("visitor_id"), Some(buyer));
    assert_eq!(row.get::<Option<i64>, _>("gross_minor"), Some(8000));
    let placed: chrono::DateTime<chrono::Utc> = row.get("placed_at");
    assert!(
        (placed - created).num_seconds().abs() <= 1,
        "the store's time stands"
    );
    app.stop().await;
}

#[tokio::test]
async fn webhook_errors_are_json_too() {
    let app = TestApp::spawn().await;
    with_secrets(&app, &app.company).await;
    let huge = vec![b'x'; 3 * 1024 * 1024];
    let (code, answer) = post_stripe(&app, app.company.id, &huge, "t=1,v1=00".into()).await;
    assert_eq!(code, 413);
    assert!(
        answer["error"].as_str().unwrap().contains("larger than"),
        "{answer}"
    );
    // Signed but not JSON: refused with a 4xx, and still kept (encrypted) for the audit.
    let broken = b"{\"id\": \"evt_x\", ";
    let (code, answer) = post_stripe(
        &app,
        app.company.id,
        broken,
        stripe_signature(broken, STRIPE_SECRET),
    )
    .await;
    assert_eq!(code, 422, "{answer}");
    let (verified, failure, sealed): (bool, Option<String>, bool) = sqlx::query_as(
        "SELECT verified, failure, payload_ciphertext IS NOT NULL FROM webhook_deliveries
         ORDER BY received_at DESC LIMIT 1",
    )
    .fetch_one(&app.owner)
    .await
    .unwrap();
    assert!(verified && sealed);
    assert!(failure.unwrap().contains("malformed JSON"));
    let (code, answer) = post_stripe(&app, app.company.id, b"{}", "garbage".into()).await;
    assert_eq!(code, 400);
    assert!(
        answer["error"].as_str().unwrap().contains("timestamp"),
        "{answer}"
    );
    let unknown = app
        .client
        .post(format!("{}/webhooks/paypal/{}", app.base, app.company.id))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    assert!(unknown.json::<Value>().await.unwrap()["error"].is_string());
    app.stop().await;
}
