//! Provider webhooks (issue 15): SendGrid, Mailgun, SES via SNS and Twilio through the real
//! endpoints, with real signatures (SendGrid's published vector; self-made keys elsewhere),
//! against a real PostgreSQL.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use lux::clock::Clock;
use lux::commerce::secrets::Provider;
use lux::messages::recipient::Recipient;
use p256::ecdsa::SigningKey;
use p256::ecdsa::signature::Signer;
use p256::pkcs8::EncodePublicKey;
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use super::helpers::{Company, TestApp, answer, create_company, secrets_key, test_options};

/// The servers' fixed "now": inside the SNS test certificates' validity.
const NOW: &str = "2030-01-01T00:00:00Z";
const PUBLIC_URL: &str = "https://lux.example.com";
const TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:ses-events";
const CERT_URL: &str = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-0000000000000000000000000000000.pem";
const SNS_KEY: &str = include_str!("../fixtures/sns/signer_key.pem");
const SNS_CERT_FILE: &str = "tests/fixtures/sns/signer_cert.pem";
const OTHER_CERT_FILE: &str = "tests/fixtures/sns/other_cert.pem";
const SES_DELIVERY: &str = include_str!("../fixtures/messaging/ses_sns_event_delivery.json");
const SES_COMPLAINT: &str = include_str!("../fixtures/messaging/ses_sns_event_complaint.json");
const SES_OPEN: &str = include_str!("../fixtures/messaging/ses_sns_event_open.json");
const SES_SUBSCRIPTION: &str =
    include_str!("../fixtures/messaging/ses_sns_event_subscription.json");

type Headers = Vec<(&'static str, String)>;
/// subject_hash, subject_kind, marketing, source, message_id.
type ConsentRow = (Vec<u8>, String, bool, String, Option<String>);

const IPHONE_UA: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148";

fn now() -> DateTime<Utc> {
    NOW.parse().unwrap()
}

fn ts() -> i64 {
    now().timestamp()
}

async fn spawn_at(at: DateTime<Utc>) -> TestApp {
    let mut options = test_options();
    options.clock = Clock::Fixed(at);
    options.messages.public_url = Some(url::Url::parse(PUBLIC_URL).unwrap());
    TestApp::spawn_with(options).await
}

pub(crate) async fn set_secret(app: &TestApp, company: Uuid, provider: Provider, secret: &str) {
    lux::commerce::secrets::set_secret(&app.owner, &secrets_key(), company, provider, secret)
        .await
        .expect("store the secret");
}

pub(crate) async fn post(
    app: &TestApp,
    path: &str,
    headers: &[(&str, String)],
    content_type: &str,
    body: impl Into<reqwest::Body>,
) -> (StatusCode, Value) {
    let mut request = app
        .client
        .post(format!("{}{path}", app.base))
        .header("content-type", content_type)
        .body(body);
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    answer(request.send().await.expect("request")).await
}

async fn count(app: &TestApp, sql: &str) -> i64 {
    app.count(sql).await
}

/// Rows of the tables a webhook writes, except the delivery log: what must not move when a
/// webhook is refused or redelivered.
async fn stored_rows(app: &TestApp) -> (i64, i64, i64) {
    (
        count(app, "SELECT count(*) FROM message_events").await,
        count(app, "SELECT count(*) FROM message_sends").await,
        count(app, "SELECT count(*) FROM consent_records").await,
    )
}

async fn hash_key(app: &TestApp, company: Uuid) -> Vec<u8> {
    sqlx::query_scalar("SELECT hash_key FROM companies WHERE company_id = $1")
        .bind(company)
        .fetch_one(&app.owner)
        .await
        .unwrap()
}

// ---------------------------------------------------------------- SendGrid

pub(crate) fn sendgrid_key(seed: u8) -> SigningKey {
    SigningKey::from_slice(&[seed; 32]).expect("a valid P-256 scalar")
}

pub(crate) fn sendgrid_public(key: &SigningKey) -> String {
    let der = key.verifying_key().to_public_key_der().unwrap();
    STANDARD.encode(der.as_bytes())
}

pub(crate) fn sendgrid_headers(
    key: &SigningKey,
    timestamp: i64,
    body: &[u8],
) -> Vec<(&'static str, String)> {
    let mut signed = timestamp.to_string().into_bytes();
    signed.extend_from_slice(body);
    let signature: p256::ecdsa::Signature = key.sign(&signed);
    vec![
        (
            "X-Twilio-Email-Event-Webhook-Signature",
            STANDARD.encode(signature.to_der().as_bytes()),
        ),
        (
            "X-Twilio-Email-Event-Webhook-Timestamp",
            timestamp.to_string(),
        ),
    ]
}

/// A SendGrid event with our `lux_mid` custom argument.
pub(crate) fn sg_event(
    word: &str,
    id: &str,
    message: &str,
    email: &str,
    at: i64,
    extra: Value,
) -> Value {
    let mut event = json!({
        "event": word,
        "sg_event_id": id,
        "sg_message_id": format!("{message}.filterdrecv-1"),
        "email": email,
        "timestamp": at,
        "lux_mid": format!("mid-{message}"),
    });
    if let (Some(object), Value::Object(more)) = (event.as_object_mut(), extra) {
        object.extend(more);
    }
    event
}

pub(crate) async fn post_sendgrid(
    app: &TestApp,
    company: Uuid,
    key: &SigningKey,
    timestamp: i64,
    body: &str,
) -> (StatusCode, Value) {
    let body = format!("{body}\r\n");
    post(
        app,
        &format!("/webhooks/sendgrid/{company}"),
        &sendgrid_headers(key, timestamp, body.as_bytes()),
        "application/json",
        body,
    )
    .await
}

// SendGrid's published test vector (sendgrid-python `test/test_eventwebhook.py`, MIT), as in
// src/messages/signature/sendgrid.rs.
const SG_PUBLIC_KEY: &str = "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE83T4O/n84iotIvIW4mdBgQ/7dAfSmpqIM8kF9mN1flpVKS3GRqe62gw+2fNNRaINXvVpiglSI8eNEc6wEA3F+g==";
const SG_SIGNATURE: &str = "MEUCIGHQVtGj+Y3LkG9fLcxf3qfI10QysgDWmMOVmxG0u6ZUAiEAyBiXDWzM+uOe5W0JuG+luQAbPIqHh89M15TluLtEZtM=";
const SG_TIMESTAMP: &str = "1600112502";
const SG_PAYLOAD: &str = concat!(
    r#"[{"email":"hello@world.com","event":"dropped","reason":"Bounced Address","#,
    r#""sg_event_id":"ZHJvcC0xMDk5NDkxOS1MUnpYbF9OSFN0T0doUTRrb2ZTbV9BLTA","#,
    r#""sg_message_id":"LRzXl_NHStOGhQ4kofSm_A.filterdrecv-p3mdw1-756b745b58-kmzbl-18-5F5FC76C-9.0","#,
    r#""smtp-id":"<LRzXl_NHStOGhQ4kofSm_A@ismtpd0039p1iad1.sendgrid.net>","timestamp":1600112492}]"#,
    "\r\n"
);

#[tokio::test]
async fn sendgrids_published_vector_is_stored_once_through_the_endpoint() {
    let app = spawn_at(DateTime::from_timestamp(1_600_112_502 + 20, 0).unwrap()).await;
    let company = app.company.id;
    set_secret(&app, company, Provider::SendGrid, SG_PUBLIC_KEY).await;
    let path = format!("/webhooks/sendgrid/{company}");
    let headers = [
        (
            "X-Twilio-Email-Event-Webhook-Signature",
            SG_SIGNATURE.to_string(),
        ),
        (
            "X-Twilio-Email-Event-Webhook-Timestamp",
            SG_TIMESTAMP.to_string(),
        ),
    ];
    let (status, body) = post(&app, &path, &headers, "application/json", SG_PAYLOAD).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["stored"], 1, "{body}");
    assert_eq!(body["sends_created"], 1, "{body}");
    let (message_id, origin, channel, hash): (String, String, String, Vec<u8>) =
        sqlx::query_as("SELECT message_id, origin, channel, recipient_hash FROM message_sends")
            .fetch_one(&app.owner)
            .await
            .unwrap();
    assert_eq!(message_id, "sendgrid:LRzXl_NHStOGhQ4kofSm_A");
    assert_eq!(
        (origin.as_str(), channel.as_str()),
        ("provider_event", "email")
    );
    let expected = Recipient::email("hello@world.com")
        .unwrap()
        .hash(&hash_key(&app, company).await);
    assert_eq!(hash, expected.as_bytes());
    let (kind, reason): (String, Option<String>) =
        sqlx::query_as("SELECT kind, reason FROM message_events")
            .fetch_one(&app.owner)
            .await
            .unwrap();
    assert_eq!(kind, "dropped");
    assert_eq!(reason.as_deref(), Some("Bounced Address"));

    // The same delivery again: nothing changes.
    let before = stored_rows(&app).await;
    let (status, body) = post(&app, &path, &headers, "application/json", SG_PAYLOAD).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["stored"].as_i64(), body["duplicates"].as_i64()),
        (Some(0), Some(1))
    );
    assert_eq!(stored_rows(&app).await, before);

    // The address is nowhere in the database, not even in the sealed delivery's clear parts.
    let dump = super::helpers::pg_dump(&app.db.url);
    assert!(
        !dump.contains("hello@world.com"),
        "a raw address was stored"
    );

    // One changed byte: refused, nothing more stored.
    let tampered = SG_PAYLOAD.replace("dropped", "delivered");
    let (status, body) = post(&app, &path, &headers, "application/json", tampered).await;
    assert_eq!(status, 400);
    assert!(
        body["error"].as_str().unwrap().contains("signature"),
        "{body}"
    );
    assert_eq!(stored_rows(&app).await, before);
    app.stop().await;
}

#[tokio::test]
async fn sendgrid_refusals_keep_only_the_delivery_hash() {
    let app = spawn_at(now()).await;
    let company = app.company.id;
    let key = sendgrid_key(7);
    set_secret(&app, company, Provider::SendGrid, &sendgrid_public(&key)).await;
    let batch = json!([sg_event(
        "delivered",
        "ev1",
        "m1",
        "ann@example.com",
        ts() - 60,
        json!({})
    )])
    .to_string();
    let path = format!("/webhooks/sendgrid/{company}");
    let signed = format!("{batch}\r\n");

    let tampered_body = signed.replace("ann@", "bob@");
    let good = sendgrid_headers(&key, ts(), signed.as_bytes());
    let cases: Vec<(&str, Headers, String, &str)> = vec![
        (
            "tampered body",
            good.clone(),
            tampered_body,
            "does not match",
        ),
        (
            "another key",
            sendgrid_headers(&sendgrid_key(8), ts(), signed.as_bytes()),
            signed.clone(),
            "does not match",
        ),
        (
            "stale timestamp",
            sendgrid_headers(&key, ts() - 301, signed.as_bytes()),
            signed.clone(),
            "301 s from now",
        ),
        (
            "no signature",
            good[1..].to_vec(),
            signed.clone(),
            "missing",
        ),
    ];
    for (what, headers, body, expected) in cases {
        let (status, answer) = post(&app, &path, &headers, "application/json", body).await;
        assert_eq!(status, 400, "{what}: {answer}");
        let error = answer["error"].as_str().unwrap();
        assert!(error.contains(expected), "{what}: {error}");
        assert!(error.contains("nothing was stored"), "{what}: {error}");
    }
    assert_eq!(stored_rows(&app).await, (0, 0, 0));
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM webhook_deliveries
             WHERE provider = 'sendgrid' AND NOT verified AND payload_ciphertext IS NULL
               AND failure IS NOT NULL"
        )
        .await,
        4
    );
    // The same body, signed: accepted.
    let (status, answer) = post_sendgrid(&app, company, &key, ts(), &batch).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["stored"], 1);
    app.stop().await;
}

#[tokio::test]
async fn a_sendgrid_batch_keeps_its_good_items_and_flags_machine_opens() {
    let app = spawn_at(now()).await;
    let company = app.company.id;
    let key = sendgrid_key(9);
    set_secret(&app, company, Provider::SendGrid, &sendgrid_public(&key)).await;
    let t = ts() - 3600;
    let batch = json!([
        sg_event("processed", "p1", "m1", "ann@example.com", t, json!({})),
        sg_event("delivered", "d1", "m1", "ann@example.com", t + 10, json!({})),
        {"event": "open"},
        "not an event",
        // SendGrid's own verdict.
        sg_event("open", "o1", "m1", "ann@example.com", t + 60, json!({"sg_machine_open": true, "useragent": IPHONE_UA})),
        // Apple Mail Privacy Protection's proxy: a bare user agent.
        sg_event("open", "o2", "m1", "ann@example.com", t + 70, json!({"useragent": "Mozilla/5.0"})),
        // Within a second of delivery: fetched on arrival.
        sg_event("open", "o3", "m1", "ann@example.com", t + 11, json!({"useragent": IPHONE_UA})),
        // A person, minutes later.
        sg_event("open", "o4", "m1", "ann@example.com", t + 600, json!({"useragent": IPHONE_UA})),
        sg_event("click", "c1", "m1", "ann@example.com", t + 620, json!({"useragent": IPHONE_UA, "url": "https://shop.example/a"})),
    ])
    .to_string();
    let (status, answer) = post_sendgrid(&app, company, &key, ts(), &batch).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["stored"], 7, "{answer}");
    assert_eq!(answer["machine"], 3, "{answer}");
    let rejected: Vec<i64> = answer["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["index"].as_i64().unwrap())
        .collect();
    assert_eq!(rejected, vec![2, 3], "{answer}");
    let verdicts: Vec<(String, i32, bool, Option<String>)> = sqlx::query_as(
        "SELECT provider_event_id, item_index, is_machine, machine_reason FROM message_events
         ORDER BY item_index",
    )
    .fetch_all(&app.owner)
    .await
    .unwrap();
    let verdict = |id: &str| {
        verdicts
            .iter()
            .find(|v| v.0 == id)
            .unwrap_or_else(|| panic!("{id} stored"))
            .clone()
    };
    assert_eq!(verdict("o1").1, 4, "items keep their position in the array");
    assert!(verdict("o1").3.unwrap().starts_with("provider_flag"));
    assert!(
        verdict("o2")
            .3
            .unwrap()
            .starts_with("apple_proxy_user_agent")
    );
    assert!(verdict("o3").3.unwrap().starts_with("opened_at_delivery"));
    assert!(!verdict("o4").2, "a person's open");
    assert!(!verdict("c1").2, "a person's click");
    let (message_id, sent_at): (String, Option<DateTime<Utc>>) =
        sqlx::query_as("SELECT message_id, sent_at FROM message_sends")
            .fetch_one(&app.owner)
            .await
            .unwrap();
    assert_eq!(message_id, "mid-m1", "the send is named by lux_mid");
    assert_eq!(
        sent_at,
        DateTime::from_timestamp(t, 0),
        "processed = when it left"
    );

    // A batch of nothing readable.
    let (status, answer) = post_sendgrid(&app, company, &key, ts(), r#"[{"event": "open"}]"#).await;
    assert_eq!(status, 422, "{answer}");
    assert!(answer["error"].is_string());
    app.stop().await;
}

#[tokio::test]
async fn unsubscribes_and_complaints_append_consent_once() {
    let app = spawn_at(now()).await;
    let company = app.company.id;
    let key = sendgrid_key(11);
    set_secret(&app, company, Provider::SendGrid, &sendgrid_public(&key)).await;
    let t = ts() - 600;
    let batch = json!([
        sg_event("delivered", "d1", "m1", "Ann@Example.com", t, json!({})),
        sg_event(
            "unsubscribe",
            "u1",
            "m1",
            "Ann@Example.com",
            t + 100,
            json!({})
        ),
        sg_event(
            "spamreport",
            "s1",
            "m2",
            "bob@example.com",
            t + 200,
            json!({})
        ),
    ])
    .to_string();
    let (status, answer) = post_sendgrid(&app, company, &key, ts(), &batch).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["consent_records"], 2, "{answer}");
    let records: Vec<ConsentRow> = sqlx::query_as(
        "SELECT subject_hash, subject_kind, marketing, source, message_id FROM consent_records
         ORDER BY recorded_at",
    )
    .fetch_all(&app.owner)
    .await
    .unwrap();
    let key_bytes = hash_key(&app, company).await;
    let ann = lux::privacy::EmailHash::of(&key_bytes, "ann@example.com").unwrap();
    assert_eq!(
        records[0].0,
        ann.as_bytes(),
        "the same hash as the buyer's email"
    );
    assert_eq!(
        (records[0].1.as_str(), records[0].2, records[0].3.as_str()),
        ("email", false, "sendgrid:unsubscribed")
    );
    assert_eq!(records[0].4.as_deref(), Some("mid-m1"));
    assert_eq!(records[1].3, "sendgrid:complained");

    let before = stored_rows(&app).await;
    let (status, _) = post_sendgrid(&app, company, &key, ts(), &batch).await;
    assert_eq!(status, 200);
    assert_eq!(
        stored_rows(&app).await,
        before,
        "a redelivery appends no consent"
    );
    app.stop().await;
}

#[tokio::test]
async fn company_b_events_never_land_in_company_a_sends() {
    let app = spawn_at(now()).await;
    let a = app.company.id;
    let b: Company = create_company(&app.owner, "Beta").await;
    let key_a = sendgrid_key(21);
    let key_b = sendgrid_key(22);
    set_secret(&app, a, Provider::SendGrid, &sendgrid_public(&key_a)).await;
    set_secret(&app, b.id, Provider::SendGrid, &sendgrid_public(&key_b)).await;
    let t = ts() - 600;
    let a_batch = json!([sg_event(
        "delivered",
        "ev-a",
        "m1",
        "ann@example.com",
        t,
        json!({})
    )])
    .to_string();
    // B's provider names the same message ids and event id.
    let b_batch = json!([
        sg_event("delivered", "ev-a", "m1", "zed@example.com", t, json!({})),
        sg_event(
            "click",
            "ev-b",
            "m1",
            "zed@example.com",
            t + 60,
            json!({"url": "https://b.example/"})
        ),
    ])
    .to_string();
    assert_eq!(post_sendgrid(&app, a, &key_a, ts(), &a_batch).await.0, 200);
    let (status, answer) = post_sendgrid(&app, b.id, &key_b, ts(), &b_batch).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        answer["stored"], 2,
        "B's events are B's, not duplicates of A's"
    );
    assert_eq!(answer["sends_created"], 1, "B gets its own send");
    // B's key on A's endpoint: refused.
    let (status, _) = post_sendgrid(&app, a, &key_b, ts(), &b_batch).await;
    assert_eq!(status, 400);
    let per_company: Vec<(Uuid, i64)> = sqlx::query_as(
        "SELECT s.company_id, count(e.event_id) FROM message_sends s
         LEFT JOIN message_events e ON e.company_id = s.company_id AND e.message_id = s.message_id
         GROUP BY s.company_id ORDER BY count(e.event_id)",
    )
    .fetch_all(&app.owner)
    .await
    .unwrap();
    assert_eq!(per_company, vec![(a, 1), (b.id, 2)]);
    let cross: i64 = count(
        &app,
        "SELECT count(*) FROM message_events e
         WHERE NOT EXISTS (SELECT 1 FROM message_sends s
                           WHERE s.company_id = e.company_id AND s.message_id = e.message_id)",
    )
    .await;
    assert_eq!(cross, 0, "every event belongs to a send of its own company");
    app.stop().await;
}

// ---------------------------------------------------------------- Mailgun

const MAILGUN_KEY: &str = "mailgun-webhook-signing-key-0001";

fn mailgun_body(key: &str, timestamp: i64, token: &str, event_data: &Value) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(timestamp.to_string().as_bytes());
    mac.update(token.as_bytes());
    let signature = hex::encode(mac.finalize().into_bytes());
    json!({
        "signature": {"timestamp": timestamp.to_string(), "token": token, "signature": signature},
        "event-data": event_data,
    })
    .to_string()
}

fn mailgun_event(word: &str, id: &str, at: f64, extra: Value) -> Value {
    let mut event = json!({
        "event": word,
        "id": id,
        "timestamp": at,
        "recipient": "carla@example.com",
        "message": {"headers": {"message-id": "<20300101.mg-1@mg.shop.example>"}},
        "user-variables": {"lux_mid": "mid-mg-1"},
    });
    if let (Some(object), Value::Object(more)) = (event.as_object_mut(), extra) {
        object.extend(more);
    }
    event
}

#[tokio::test]
async fn mailgun_tokens_are_accepted_once_and_bots_flagged() {
    let app = spawn_at(now()).await;
    let company = app.company.id;
    set_secret(&app, company, Provider::Mailgun, MAILGUN_KEY).await;
    let path = format!("/webhooks/mailgun/{company}");
    let t = (ts() - 3600) as f64;
    let open = mailgun_event(
        "opened",
        "mg-open-1",
        t + 0.5,
        json!({"client-info": {"bot": "apple", "user-agent": "Mozilla/5.0"}}),
    );
    let body = mailgun_body(
        MAILGUN_KEY,
        ts() - 10,
        "token-0001-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        &open,
    );
    let (status, answer) = post(&app, &path, &[], "application/json", body.clone()).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        (answer["stored"].as_i64(), answer["machine"].as_i64()),
        (Some(1), Some(1))
    );
    let reason: String = sqlx::query_scalar("SELECT machine_reason FROM message_events")
        .fetch_one(&app.owner)
        .await
        .unwrap();
    assert!(reason.contains("client-info.bot=apple"), "{reason}");
    let before = stored_rows(&app).await;

    // The same request again: its token is spent.
    let (status, answer) = post(&app, &path, &[], "application/json", body).await;
    assert_eq!(status, 400);
    assert!(
        answer["error"].as_str().unwrap().contains("replay"),
        "{answer}"
    );
    // Mailgun's retry (a new token, the same event): a duplicate, nothing changes.
    let retry = mailgun_body(
        MAILGUN_KEY,
        ts(),
        "token-0002-bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
        &open,
    );
    let (status, answer) = post(&app, &path, &[], "application/json", retry).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["duplicates"], 1);

    let delivered = mailgun_event("delivered", "mg-del-1", t, json!({}));
    let mut tampered = mailgun_body(
        MAILGUN_KEY,
        ts(),
        "token-0003-cccccccccccccccccccccccccccccccccccc",
        &delivered,
    );
    tampered = tampered.replace("token-0003", "token-0004");
    let refusals = [
        (
            "another key",
            mailgun_body(
                "another-key",
                ts(),
                "token-0005-dddddddddddddddddddddddddddddddddddd",
                &delivered,
            ),
            "does not match",
        ),
        ("tampered token", tampered, "does not match"),
        (
            "stale timestamp",
            mailgun_body(
                MAILGUN_KEY,
                ts() - 3600,
                "token-0006-eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee",
                &delivered,
            ),
            "3600 s from now",
        ),
    ];
    for (what, body, expected) in refusals {
        let (status, answer) = post(&app, &path, &[], "application/json", body).await;
        assert_eq!(status, 400, "{what}");
        assert!(
            answer["error"].as_str().unwrap().contains(expected),
            "{what}: {answer}"
        );
    }
    assert_eq!(
        stored_rows(&app).await,
        before,
        "no refusal stored anything"
    );
    let (message_id, provider_id): (String, Option<String>) =
        sqlx::query_as("SELECT message_id, provider_message_id FROM message_sends")
            .fetch_one(&app.owner)
            .await
            .unwrap();
    assert_eq!(message_id, "mid-mg-1");
    assert_eq!(
        provider_id.as_deref(),
        Some("20300101.mg-1@mg.shop.example")
    );
    // The recipient is nowhere in the database, in any form.
    let dump = super::helpers::pg_dump(&app.db.url);
    for raw in ["carla@example.com", "carla%40example.com"] {
        assert!(!dump.contains(raw), "a raw address was stored: {raw}");
    }
    app.stop().await;
}

// ---------------------------------------------------------------- Twilio

const TWILIO_TOKEN: &str = "twilio-auth-token-of-this-test";

fn twilio_signature(token: &str, url: &str, params: &[(&str, &str)]) -> String {
    let mut sorted = params.to_vec();
    sorted.sort();
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(token.as_bytes()).unwrap();
    mac.update(url.as_bytes());
    for (name, value) in sorted {
        mac.update(name.as_bytes());
        mac.update(value.as_bytes());
    }
    STANDARD.encode(mac.finalize().into_bytes())
}

fn form(params: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish()
}

#[tokio::test]
async fn twilio_callbacks_are_verified_over_the_public_url() {
    let app = spawn_at(now()).await;
    let company = app.company.id;
    set_secret(&app, company, Provider::Twilio, TWILIO_TOKEN).await;
    let path = format!("/webhooks/twilio/{company}?lux_mid=sms-1");
    let public = format!("{PUBLIC_URL}{path}");
    let callback = |status: &'static str| {
        vec![
            ("MessageSid", "SM0123456789abcdef0123456789abcdef"),
            ("MessageStatus", status),
            ("To", "+1 415 555 0100"),
            ("From", "+15005550006"),
            ("AccountSid", "AC0123456789abcdef0123456789abcdef"),
        ]
    };
    for status in ["sent", "delivered"] {
        let params = callback(status);
        let signature = twilio_signature(TWILIO_TOKEN, &public, &params);
        let headers = [("X-Twilio-Signature", signature)];
        let (code, answer) = post(
            &app,
            &path,
            &headers,
            "application/x-www-form-urlencoded",
            form(&params),
        )
        .await;
        assert_eq!(code, 200, "{status}: {answer}");
        assert_eq!(answer["stored"], 1);
        // Twilio retries a callback it thinks failed: nothing changes.
        let before = stored_rows(&app).await;
        let (code, answer) = post(
            &app,
            &path,
            &headers,
            "application/x-www-form-urlencoded",
            form(&params),
        )
        .await;
        assert_eq!(
            (code, answer["duplicates"].as_i64()),
            (StatusCode::OK, Some(1))
        );
        assert_eq!(stored_rows(&app).await, before);
    }
    let (message_id, channel, hash): (String, String, Vec<u8>) =
        sqlx::query_as("SELECT message_id, channel, recipient_hash FROM message_sends")
            .fetch_one(&app.owner)
            .await
            .unwrap();
    assert_eq!((message_id.as_str(), channel.as_str()), ("sms-1", "sms"));
    let phone = Recipient::phone("+14155550100").unwrap();
    assert_eq!(hash, phone.hash(&hash_key(&app, company).await).as_bytes());

    let before = stored_rows(&app).await;
    let params = callback("undelivered");
    let local = format!("{}{path}", app.base);
    let mut tampered = params.clone();
    tampered[1] = ("MessageStatus", "delivered");
    let cases = [
        (
            "another token",
            twilio_signature("another-token", &public, &params),
            params.clone(),
        ),
        // Signed over the address the request reached, not LUX_PUBLIC_URL.
        (
            "another URL",
            twilio_signature(TWILIO_TOKEN, &local, &params),
            params.clone(),
        ),
        (
            "tampered parameter",
            twilio_signature(TWILIO_TOKEN, &public, &params),
            tampered,
        ),
    ];
    for (what, signature, sent) in cases {
        let headers = [("X-Twilio-Signature", signature)];
        let (code, answer) = post(
            &app,
            &path,
            &headers,
            "application/x-www-form-urlencoded",
            form(&sent),
        )
        .await;
        assert_eq!(code, 400, "{what}");
        assert!(
            answer["error"]
                .as_str()
                .unwrap()
                .contains("Twilio signature"),
            "{what}: {answer}"
        );
    }
    assert_eq!(stored_rows(&app).await, before);
    // Neither number is anywhere in the database, as sent or normalised.
    let dump = super::helpers::pg_dump(&app.db.url);
    for raw in ["4155550100", "415 555 0100", "5005550006"] {
        assert!(!dump.contains(raw), "a raw phone number was stored: {raw}");
    }
    app.stop().await;
}

// ---------------------------------------------------------------- SES through SNS

/// An SNS message of `kind` carrying `message`, signed with the test key (SignatureVersion 2).
fn sns_body(kind: &str, message: &str, topic: &str, cert_url: &str, message_id: &str) -> String {
    use rsa::pkcs8::DecodePrivateKey;
    use rsa::signature::{SignatureEncoding, Signer as _};
    let mut envelope = json!({
        "Type": kind,
        "MessageId": message_id,
        "TopicArn": topic,
        "Message": message,
        "Timestamp": "2029-12-31T23:59:00.000Z",
        "SignatureVersion": "2",
        "Signature": "",
        "SigningCertURL": cert_url,
    });
    if kind == "SubscriptionConfirmation" {
        envelope["Token"] = json!("2336412f37fb687f5d51e6e2425c464de12884");
        envelope["SubscribeURL"] = json!(format!(
            "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn={topic}&Token=2336412f37fb687f5d51e6e2425c464de12884"
        ));
    }
    let parsed = lux::messages::signature::sns::parse(envelope.to_string().as_bytes()).unwrap();
    let signed = lux::messages::signature::sns::string_to_sign(&parsed);
    let key = rsa::PrivateKey::from_pkcs8_pem(SNS_KEY).unwrap();
    let signature = rsa::pkcs1v15::SigningKey::<sha2::Sha256>::new(key)
        .sign(signed.as_bytes())
        .to_vec();
    envelope["Signature"] = json!(STANDARD.encode(signature));
    envelope.to_string()
}

/// `lux` with the test installation key, which must succeed; its JSON output.
fn lux_ok(app: &TestApp, args: &[&str]) -> String {
    let output = lux_run(app, args);
    assert!(
        output.status.success(),
        "lux {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn lux_run(app: &TestApp, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_lux"))
        .args(args)
        .env("DATABASE_URL", &app.db.url)
        .env("LUX_SECRETS_KEY", secrets_key().to_hex())
        .output()
        .expect("run lux")
}

/// SES set up as an operator would: the topic ARN with `lux company set-secret`, the SNS
/// certificate pinned with `lux sns trust-cert`.
fn configure_ses(app: &TestApp, company: Uuid) {
    let company = company.to_string();
    lux_ok(
        app,
        &[
            "company",
            "set-secret",
            &company,
            "--provider",
            "ses",
            "--secret",
            TOPIC,
        ],
    );
    let pinned = lux_ok(
        app,
        &[
            "sns",
            "trust-cert",
            "--url",
            CERT_URL,
            "--cert-file",
            SNS_CERT_FILE,
        ],
    );
    let pinned: Value = serde_json::from_str(&pinned).unwrap();
    assert_eq!(pinned["url"], CERT_URL);
}

/// An SES record with our message tag and the given recipients.
fn ses_record(template: &str, recipients: &[&str]) -> String {
    let mut record: Value = serde_json::from_str(template).unwrap();
    record["mail"]["tags"]["lux_mid"] = json!(["ses-mid-1"]);
    record["mail"]["destination"] = json!(recipients);
    if record.get("delivery").is_some() {
        record["delivery"]["recipients"] = json!(recipients);
    }
    record.to_string()
}

#[tokio::test]
async fn ses_notifications_give_one_event_per_recipient_once() {
    let app = spawn_at(now()).await;
    let company = app.company.id;
    configure_ses(&app, company);
    let path = format!("/webhooks/ses/{company}");
    let delivery = ses_record(SES_DELIVERY, &["dana@example.com", "eli@example.com"]);
    let body = sns_body("Notification", &delivery, TOPIC, CERT_URL, "sns-1");
    let (status, answer) = post(&app, &path, &[], "text/plain", body.clone()).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["stored"], 2, "{answer}");
    let hashes: Vec<Vec<u8>> =
        sqlx::query_scalar("SELECT recipient_hash FROM message_events ORDER BY item_index")
            .fetch_all(&app.owner)
            .await
            .unwrap();
    let key = hash_key(&app, company).await;
    let expected: Vec<Vec<u8>> = ["dana@example.com", "eli@example.com"]
        .iter()
        .map(|e| Recipient::email(e).unwrap().hash(&key).as_bytes().to_vec())
        .collect();
    assert_eq!(hashes, expected);
    let message_id: String = sqlx::query_scalar("SELECT message_id FROM message_sends")
        .fetch_one(&app.owner)
        .await
        .unwrap();
    assert_eq!(message_id, "ses-mid-1");

    // SNS delivers again (same MessageId), and again under a new envelope id: no change.
    let before = stored_rows(&app).await;
    for envelope in [
        body,
        sns_body("Notification", &delivery, TOPIC, CERT_URL, "sns-2"),
    ] {
        let (status, answer) = post(&app, &path, &[], "text/plain", envelope).await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["duplicates"], 2);
    }
    assert_eq!(stored_rows(&app).await, before);

    // An Apple proxy open (SES gives no verdict) and a complaint (consent withdrawn).
    let mut open: Value =
        serde_json::from_str(&ses_record(SES_OPEN, &["dana@example.com"])).unwrap();
    open["open"]["userAgent"] = json!("Mozilla/5.0");
    let body = sns_body("Notification", &open.to_string(), TOPIC, CERT_URL, "sns-3");
    let (status, answer) = post(&app, &path, &[], "text/plain", body).await;
    assert_eq!(
        (status, answer["machine"].as_i64()),
        (StatusCode::OK, Some(1)),
        "{answer}"
    );
    let complaint = ses_record(SES_COMPLAINT, &["dana@example.com"]);
    let body = sns_body("Notification", &complaint, TOPIC, CERT_URL, "sns-4");
    let (status, answer) = post(&app, &path, &[], "text/plain", body).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["consent_records"], 1, "{answer}");
    let dump = super::helpers::pg_dump(&app.db.url);
    assert!(
        !dump.contains("dana@example.com"),
        "a raw address was stored"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_message_to_several_destinations_credits_nobody_with_what_names_nobody() {
    let app = spawn_at(now()).await;
    let company = app.company.id;
    configure_ses(&app, company);
    let path = format!("/webhooks/ses/{company}");
    let both = ["dana@example.com", "eli@example.com"];
    let mut sns_id = 0;
    let mut deliver = |record: String| {
        sns_id += 1;
        sns_body(
            "Notification",
            &record,
            TOPIC,
            CERT_URL,
            &format!("sns-{sns_id}"),
        )
    };
    // The send is created by a delivery to both: it stands for neither.
    let body = deliver(ses_record(SES_DELIVERY, &both));
    let (status, answer) = post(&app, &path, &[], "text/plain", body).await;
    assert_eq!(
        (status, answer["sends_created"].as_i64()),
        (StatusCode::OK, Some(1))
    );
    let send_hash: Option<Vec<u8>> = sqlx::query_scalar("SELECT recipient_hash FROM message_sends")
        .fetch_one(&app.owner)
        .await
        .unwrap();
    assert_eq!(
        send_hash, None,
        "the first destination is not the send's recipient"
    );

    // An open and an unsubscribe SES cannot attribute: stored, credited to nobody, and
    // nobody's consent withdrawn.
    let body = deliver(ses_record(SES_OPEN, &both));
    let (status, answer) = post(&app, &path, &[], "text/plain", body).await;
    assert_eq!(
        (status, answer["stored"].as_i64()),
        (StatusCode::OK, Some(1)),
        "{answer}"
    );
    let body = deliver(ses_record(SES_SUBSCRIPTION, &both));
    let (status, answer) = post(&app, &path, &[], "text/plain", body).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        (
            answer["stored"].as_i64(),
            answer["consent_records"].as_i64()
        ),
        (Some(1), Some(0)),
        "{answer}"
    );
    let unnamed: Vec<(String, Option<Vec<u8>>)> = sqlx::query_as(
        "SELECT kind, recipient_hash FROM message_events
         WHERE kind IN ('opened', 'unsubscribed') ORDER BY kind",
    )
    .fetch_all(&app.owner)
    .await
    .unwrap();
    assert_eq!(
        unnamed,
        vec![
            ("opened".to_owned(), None),
            ("unsubscribed".to_owned(), None)
        ]
    );

    // A complaint names its recipient: consent is withdrawn for that one only.
    let mut complaint: Value = serde_json::from_str(&ses_record(SES_COMPLAINT, &both)).unwrap();
    complaint["complaint"]["complainedRecipients"] = json!([{"emailAddress": "eli@example.com"}]);
    let body = deliver(complaint.to_string());
    let (status, answer) = post(&app, &path, &[], "text/plain", body).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["consent_records"], 1, "{answer}");
    let key = hash_key(&app, company).await;
    let eli = Recipient::email("eli@example.com").unwrap().hash(&key);
    let consented: Vec<Vec<u8>> = sqlx::query_scalar("SELECT subject_hash FROM consent_records")
        .fetch_all(&app.owner)
        .await
        .unwrap();
    assert_eq!(consented, vec![eli.as_bytes().to_vec()]);
    let complained: Option<Vec<u8>> =
        sqlx::query_scalar("SELECT recipient_hash FROM message_events WHERE kind = 'complained'")
            .fetch_one(&app.owner)
            .await
            .unwrap();
    assert_eq!(complained.as_deref(), Some(eli.as_bytes()));
    app.stop().await;
}

#[tokio::test]
async fn ses_refusals_store_nothing() {
    let app = spawn_at(now()).await;
    let company = app.company.id;
    configure_ses(&app, company);
    let path = format!("/webhooks/ses/{company}");
    let delivery = ses_record(SES_DELIVERY, &["dana@example.com"]);
    let good = sns_body("Notification", &delivery, TOPIC, CERT_URL, "sns-1");
    let tampered = good.replace("250 2.6.0 Message received", "250 2.6.0 Message receivedX");
    let other_topic = sns_body(
        "Notification",
        &delivery,
        "arn:aws:sns:us-east-1:999999999999:someone-elses",
        CERT_URL,
        "sns-2",
    );
    let foreign = sns_body(
        "Notification",
        &delivery,
        TOPIC,
        "https://sns.us-east-1.amazonaws.com.evil.example/cert.pem",
        "sns-3",
    );
    let cases = [
        ("tampered message", tampered, "does not match"),
        ("another topic", other_topic, "TopicArn"),
        (
            "foreign certificate host",
            foreign,
            "sns.<region>.amazonaws.com",
        ),
        ("not SNS", delivery.clone(), "SNS message refused"),
    ];
    for (what, body, expected) in cases {
        let (status, answer) = post(&app, &path, &[], "text/plain", body).await;
        assert_eq!(status, 400, "{what}: {answer}");
        assert!(
            answer["error"].as_str().unwrap().contains(expected),
            "{what}: {answer}"
        );
    }
    // Another certificate pinned for the URL (a wrong key): refused too.
    lux_ok(
        &app,
        &[
            "sns",
            "trust-cert",
            "--url",
            CERT_URL,
            "--cert-file",
            OTHER_CERT_FILE,
        ],
    );
    let (status, answer) = post(&app, &path, &[], "text/plain", good.clone()).await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(stored_rows(&app).await, (0, 0, 0));
    // A foreign URL cannot be pinned either.
    let output = lux_run(
        &app,
        &[
            "sns",
            "trust-cert",
            "--url",
            "https://evil.example/cert.pem",
            "--cert-file",
            SNS_CERT_FILE,
        ],
    );
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("sns.<region>.amazonaws.com"));
    app.stop().await;
}

#[tokio::test]
async fn an_sns_subscription_confirmation_is_verified_before_anything_is_fetched() {
    let app = spawn_at(now()).await;
    let company = app.company.id;
    configure_ses(&app, company);
    let path = format!("/webhooks/ses/{company}");
    let message = format!("You have chosen to subscribe to the topic {TOPIC}.");
    // Another topic's confirmation: refused before any request to AWS.
    let other = sns_body(
        "SubscriptionConfirmation",
        &message,
        "arn:aws:sns:us-east-1:999999999999:someone-elses",
        CERT_URL,
        "conf-0",
    );
    let (status, answer) = post(&app, &path, &[], "text/plain", other).await;
    assert_eq!(status, 400, "{answer}");
    // Ours: verified, then confirmed by GET of the SubscribeURL. This machine has no route to
    // AWS (and AWS would refuse the test token), so it says the confirmation did not happen.
    let body = sns_body(
        "SubscriptionConfirmation",
        &message,
        TOPIC,
        CERT_URL,
        "conf-1",
    );
    let (status, answer) = post(&app, &path, &[], "text/plain", body).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["subscription"], "not_confirmed", "{answer}");
    assert!(
        answer["error"].as_str().unwrap().contains("confirm"),
        "{answer}"
    );
    let kept: i64 = count(
        &app,
        "SELECT count(*) FROM webhook_deliveries WHERE provider = 'ses'
           AND event_type = 'SubscriptionConfirmation' AND verified",
    )
    .await;
    assert_eq!(
        kept, 1,
        "the confirmation is kept, sealed, for the operator"
    );
    app.stop().await;
}

// ---------------------------------------------------------------- secrets and routes

#[tokio::test]
async fn message_provider_secrets_are_checked_and_routes_do_not_collide() {
    let app = spawn_at(now()).await;
    let company = app.company.id.to_string();
    for (provider, secret) in [
        ("mailgun", MAILGUN_KEY),
        ("twilio", TWILIO_TOKEN),
        ("sendgrid", SG_PUBLIC_KEY),
        ("ses", TOPIC),
    ] {
        lux_ok(
            &app,
            &[
                "company",
                "set-secret",
                &company,
                "--provider",
                provider,
                "--secret",
                secret,
            ],
        );
    }
    assert_eq!(count(&app, "SELECT count(*) FROM webhook_secrets").await, 4);
    for (provider, secret, expected) in [
        ("sendgrid", "not a key", "P-256"),
        ("ses", "my-topic", "topic ARN"),
    ] {
        let output = lux_run(
            &app,
            &[
                "company",
                "set-secret",
                &company,
                "--provider",
                provider,
                "--secret",
                secret,
            ],
        );
        assert!(!output.status.success(), "{provider}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(expected), "{provider}: {stderr}");
    }
    // Stripe still reaches commerce's handler (no secret: 404), the message providers theirs.
    let (status, answer) = post(
        &app,
        &format!("/webhooks/stripe/{company}"),
        &[],
        "application/json",
        "{}",
    )
    .await;
    assert_eq!(status, 404, "{answer}");
    let (status, answer) = post(
        &app,
        &format!("/webhooks/mailgun/{company}"),
        &[],
        "application/json",
        "{}",
    )
    .await;
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer["error"].as_str().unwrap().contains("Mailgun"),
        "{answer}"
    );
    let (_, doc) = super::helpers::answer(app.get("/api/openapi.json").await).await;
    for provider in ["sendgrid", "mailgun", "ses", "twilio"] {
        let path = format!("/webhooks/{provider}/{{company_id}}");
        assert!(
            doc["paths"][&path]["post"].is_object(),
            "{path} is documented"
        );
    }
    let (status, _) = post(
        &app,
        "/webhooks/sendgrid/not-a-company",
        &[],
        "application/json",
        "[]",
    )
    .await;
    assert_eq!(status, 404);
    app.stop().await;
}

#[tokio::test]
async fn an_unpinned_certificate_that_cannot_be_fetched_stores_nothing() {
    let app = spawn_at(now()).await;
    let company = app.company.id;
    configure_ses(&app, company);
    let unpinned = "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-unpinned.pem";
    let delivery = ses_record(SES_DELIVERY, &["dana@example.com"]);
    let body = sns_body("Notification", &delivery, TOPIC, unpinned, "sns-1");
    let (status, answer) = post(
        &app,
        &format!("/webhooks/ses/{company}"),
        &[],
        "text/plain",
        body,
    )
    .await;
    // No route to AWS here (and AWS would not know this path): SNS is asked to retry later.
    assert_eq!(status, 502, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("could not fetch"),
        "{answer}"
    );
    assert_eq!(stored_rows(&app).await, (0, 0, 0));
    let cached = count(
        &app,
        "SELECT count(*) FROM sns_certificates WHERE NOT pinned",
    )
    .await;
    assert_eq!(cached, 0, "nothing cached from a failed fetch");
    app.stop().await;
}

#[tokio::test]
async fn machine_rules_see_the_sends_earlier_deliveries_and_clicks() {
    let app = spawn_at(now()).await;
    let company = app.company.id;
    let key = sendgrid_key(31);
    set_secret(&app, company, Provider::SendGrid, &sendgrid_public(&key)).await;
    let t = ts() - 3600;
    let click = |id: &str, at: i64, link: &str| {
        sg_event(
            "click",
            id,
            "m1",
            "ann@example.com",
            at,
            json!({"useragent": IPHONE_UA, "url": format!("https://shop.example/{link}")}),
        )
    };
    // First delivery: the delivery and a person's click a minute later.
    let first = json!([
        sg_event("delivered", "d1", "m1", "ann@example.com", t, json!({})),
        click("c1", t + 60, "a"),
    ])
    .to_string();
    let (status, answer) = post_sendgrid(&app, company, &key, ts(), &first).await;
    assert_eq!(
        (status, answer["machine"].as_i64()),
        (StatusCode::OK, Some(0)),
        "{answer}"
    );
    // Later deliveries: an open one second after the stored delivery, and two more links
    // within five seconds of the stored click: a scanner's burst.
    let second = json!([
        sg_event(
            "open",
            "o1",
            "m1",
            "ann@example.com",
            t + 1,
            json!({"useragent": IPHONE_UA})
        ),
        click("c2", t + 62, "b"),
        click("c3", t + 63, "c"),
    ])
    .to_string();
    let (status, answer) = post_sendgrid(&app, company, &key, ts(), &second).await;
    assert_eq!(
        (status, answer["machine"].as_i64()),
        (StatusCode::OK, Some(3)),
        "{answer}"
    );
    let reasons: Vec<(String, bool, Option<String>)> = sqlx::query_as(
        "SELECT provider_event_id, is_machine, machine_reason FROM message_events
         WHERE kind IN ('opened', 'clicked') ORDER BY provider_event_id",
    )
    .fetch_all(&app.owner)
    .await
    .unwrap();
    let reason = |id: &str| {
        let row = reasons.iter().find(|r| r.0 == id).unwrap();
        (row.1, row.2.clone().unwrap_or_default())
    };
    assert!(
        reason("o1").1.starts_with("opened_at_delivery"),
        "{reasons:?}"
    );
    assert!(reason("c2").1.starts_with("click_burst"), "{reasons:?}");
    assert!(reason("c3").1.starts_with("click_burst"), "{reasons:?}");
    // Append-only: the first click keeps the verdict it had when it arrived.
    assert_eq!(reason("c1"), (false, String::new()));
    app.stop().await;
}
