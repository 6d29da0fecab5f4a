//! Email analytics end to end (issue 15), through the real endpoints only: sends posted to
//! `POST /api/v1/messages`, provider events in a SendGrid batch signed with a self-made P-256
//! key, visits, identifies and purchases through `/e` with the write key and a browser's user
//! agent, the jobs as the scheduler runs them, and the `messages` report over HTTP. No send or
//! event is written as a row.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use lux::commerce::secrets::Provider;
use lux::jobs::{Job, Mode, WhenBusy};
use lux::messages::recipient::Recipient;
use p256::ecdsa::SigningKey;
use p256::ecdsa::signature::Signer;
use p256::pkcs8::EncodePublicKey;
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

use crate::helpers::{TestApp, answer, secrets_key, wait_for_order};

const IPHONE_UA: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148";

struct Shop {
    app: TestApp,
    pool: PgPool,
    key: SigningKey,
}

/// A SendGrid event naming our `lux_mid` (`message`) and SendGrid's id `sg-{message}`.
fn sg_event(word: &str, message: &str, email: &str, at: DateTime<Utc>, extra: Value) -> Value {
    let mut event = json!({
        "event": word,
        "sg_event_id": format!("{word}-{message}-{}", at.timestamp()),
        "sg_message_id": format!("sg-{message}.filterdrecv-1"),
        "email": email,
        "timestamp": at.timestamp(),
        "lux_mid": message,
    });
    if let (Some(object), Value::Object(more)) = (event.as_object_mut(), extra) {
        object.extend(more);
    }
    event
}

/// A send as `POST /api/v1/messages` takes it.
fn api_send(message: &str, email: &str, campaign: &str, sent_at: DateTime<Utc>) -> Value {
    json!({"message_id": message, "provider": "sendgrid",
           "provider_message_id": format!("sg-{message}"), "campaign": campaign,
           "recipient": email, "sent_at": sent_at.to_rfc3339()})
}

fn snippet(visitor: Uuid, name: &str, page: &str, properties: Value) -> Value {
    json!({"event_id": Uuid::now_v7(), "event_name": name, "visitor_id": visitor,
           "page_url": page, "referrer": null, "properties": properties})
}

fn hours(h: i64) -> chrono::Duration {
    chrono::Duration::hours(h)
}

/// The report row whose `field` is `value`.
fn row<'r>(rows: &'r [Value], field: &str, value: &str) -> &'r Value {
    rows.iter()
        .find(|r| r[field] == value)
        .unwrap_or_else(|| panic!("no row with {field} = {value}: {rows:?}"))
}

impl Shop {
    /// A company whose SendGrid webhook is verified with a key of our own.
    async fn new() -> Shop {
        let app = TestApp::spawn().await;
        let pool = lux::db::connect_app(&app.db.url, 4).unwrap();
        let key = SigningKey::from_slice(&[5; 32]).expect("a valid P-256 scalar");
        let public = key.verifying_key().to_public_key_der().unwrap();
        lux::commerce::secrets::set_secret(
            &app.owner,
            &secrets_key(),
            app.company.id,
            Provider::SendGrid,
            &STANDARD.encode(public.as_bytes()),
        )
        .await
        .expect("store the secret");
        Shop { app, pool, key }
    }

    async fn post_sends(&self, sends: Vec<Value>) -> Value {
        let response = self
            .app
            .client
            .post(format!("{}/api/v1/messages", self.app.base))
            .bearer_auth(&self.app.company.secret_key)
            .json(&Value::Array(sends))
            .send()
            .await
            .unwrap();
        let (status, body) = answer(response).await;
        assert_eq!(status, 200, "{body}");
        assert!(body["rejected"].as_array().unwrap().is_empty(), "{body}");
        body
    }

    /// A batch as SendGrid posts it, signed over its timestamp and raw body.
    async fn sendgrid(&self, events: Vec<Value>) {
        let body = format!("{}\r\n", Value::Array(events));
        let timestamp = Utc::now().timestamp().to_string();
        let mut signed = timestamp.clone().into_bytes();
        signed.extend_from_slice(body.as_bytes());
        let signature: p256::ecdsa::Signature = self.key.sign(&signed);
        let response = self
            .app
            .client
            .post(format!(
                "{}/webhooks/sendgrid/{}",
                self.app.base, self.app.company.id
            ))
            .header("content-type", "application/json")
            .header(
                "X-Twilio-Email-Event-Webhook-Signature",
                STANDARD.encode(signature.to_der().as_bytes()),
            )
            .header("X-Twilio-Email-Event-Webhook-Timestamp", timestamp)
            .body(body)
            .send()
            .await
            .unwrap();
        let (status, answer) = answer(response).await;
        assert_eq!(status, 200, "{answer}");
    }

    async fn track(&self, event: Value) {
        let (status, body) = self.app.post_events(&json!([event])).await;
        assert_eq!(status, 202, "{body}");
        assert!(body["rejected"].as_array().unwrap().is_empty(), "{body}");
    }

    /// `lux.identify(user, {email})`; waits until the identity graph links the visitor to
    /// the email (the writer links in the background).
    async fn identify(&self, visitor: Uuid, user: &str, email: &str) {
        let mut event = snippet(visitor, "identify", "https://shop.test/account", json!({}));
        event["user_id"] = json!(user);
        event["email"] = json!(email);
        self.track(event).await;
        let hash_key: Vec<u8> =
            sqlx::query_scalar("SELECT hash_key FROM companies WHERE company_id = $1")
                .bind(self.app.company.id)
                .fetch_one(&self.app.owner)
                .await
                .unwrap();
        let email_key = hex::encode(Recipient::parse(email).unwrap().hash(&hash_key).as_bytes());
        for _ in 0..200 {
            let linked: bool = sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM identity_keys x JOIN identity_keys y
                                USING (company_id, person_id)
                                WHERE x.key_kind = 'visitor' AND x.key_value = $1
                                  AND y.key_kind = 'email' AND y.key_value = $2)",
            )
            .bind(visitor.to_string())
            .bind(&email_key)
            .fetch_one(&self.app.owner)
            .await
            .unwrap();
            if linked {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("{visitor} never linked to its email");
    }

    /// A purchase as the snippet sends it, without the buyer's email; waits for the order.
    async fn purchase(&self, visitor: Uuid, order: &str, value: &str) {
        let properties = json!({"order_id": order, "value": value, "currency": "EUR"});
        self.track(snippet(
            visitor,
            "purchase",
            "https://shop.test/thanks",
            properties,
        ))
        .await;
        wait_for_order(&self.app.owner, self.app.company.id, order).await;
    }

    /// Attribution then rollups, incrementally, as the scheduler runs them.
    async fn run_jobs(&self) {
        for job in [Job::Attribution, Job::Rollups] {
            lux::jobs::run(
                &self.pool,
                self.app.company.id.into(),
                job,
                (Mode::Incremental, WhenBusy::Wait),
                Utc::now(),
            )
            .await
            .unwrap()
            .expect("ran");
        }
    }

    /// (message id, channel) credited to an order.
    async fn credit(&self, order: &str) -> (Option<String>, Option<String>) {
        sqlx::query_as("SELECT message_id, message_channel FROM orders WHERE order_number = $1")
            .bind(order)
            .fetch_one(&self.app.owner)
            .await
            .unwrap()
    }

    /// The company's day of an instant.
    async fn day_of(&self, at: DateTime<Utc>) -> String {
        sqlx::query_scalar(
            "SELECT ($2::timestamptz AT TIME ZONE timezone)::date::text FROM companies
             WHERE company_id = $1",
        )
        .bind(self.app.company.id)
        .bind(at)
        .fetch_one(&self.app.owner)
        .await
        .unwrap()
    }

    /// `GET /api/v1/reports/messages` from `from` to `to` (days), grouped by `group`.
    async fn report(&self, from: &str, to: &str, group: &str) -> Vec<Value> {
        let response = self
            .app
            .client
            .get(format!(
                "{}/api/v1/reports/messages?from={from}&to={to}&group={group}",
                self.app.base
            ))
            .bearer_auth(&self.app.company.secret_key)
            .send()
            .await
            .unwrap();
        let (status, body) = answer(response).await;
        assert_eq!(status, 200, "{body}");
        body["rows"].as_array().unwrap().clone()
    }

    /// The report over the last ten days.
    async fn recent(&self, group: &str) -> Vec<Value> {
        let today = Utc::now().date_naive();
        let from = (today - chrono::Duration::days(10)).to_string();
        let to = (today + chrono::Duration::days(1)).to_string();
        self.report(&from, &to, group).await
    }
}

#[tokio::test]
async fn a_send_completed_after_its_provider_event_moves_to_its_campaign_and_day() {
    let shop = Shop::new().await;
    let now = Utc::now();
    // SendGrid reports the delivery before the send is posted: the event makes the send,
    // with no campaign and no send time (it counts on the day it was made).
    shop.sendgrid(vec![sg_event(
        "delivered",
        "m-late",
        "ann@example.com",
        now - hours(1),
        json!({}),
    )])
    .await;
    // A run's watermark is its start less 5 s: past that margin, only the completion itself
    // can bring the send into the next run.
    tokio::time::sleep(Duration::from_secs(6)).await;
    shop.run_jobs().await;
    // Campaign '' is reported as null.
    let before = shop.recent("campaign").await;
    let unnamed = before.iter().find(|r| r["campaign"].is_null());
    assert_eq!(unnamed.map(|r| &r["sent"]), Some(&json!(1)), "{before:?}");

    let sent_at = now - hours(72);
    let answer = shop
        .post_sends(vec![api_send(
            "m-late",
            "ann@example.com",
            "spring",
            sent_at,
        )])
        .await;
    assert_eq!(answer["updated"], 1, "{answer}");
    shop.run_jobs().await;

    let day = shop.day_of(sent_at).await;
    let on_day = shop.report(&day, &day, "campaign").await;
    let spring = row(&on_day, "campaign", "spring");
    assert_eq!(
        (&spring["sent"], &spring["delivered"]),
        (&json!(1), &json!(1))
    );
    let by_message = shop.recent("message").await;
    let late = row(&by_message, "message_id", "m-late");
    assert_eq!(
        (&late["campaign"], &late["day"]),
        (&json!("spring"), &json!(day))
    );
    let after = shop.recent("campaign").await;
    assert!(
        after
            .iter()
            .all(|r| !r["campaign"].is_null() || r["sent"] == 0),
        "nothing left under campaign '': {after:?}"
    );
    assert_eq!(row(&after, "campaign", "spring")["sent"], 1);
}

#[tokio::test]
async fn sends_provider_events_an_identify_and_a_purchase_credit_the_clicked_email() {
    let shop = Shop::new().await;
    let now = Utc::now();
    let sent = now - hours(2);
    let people = [
        ("m-ann", "ann@example.com"),
        ("m-bob", "bob@example.com"),
        ("m-cy", "cy@example.com"),
    ];
    shop.post_sends(
        people
            .iter()
            .map(|(message, email)| api_send(message, email, "spring", sent))
            .collect(),
    )
    .await;
    let human = |url: Option<&str>| match url {
        Some(url) => json!({"useragent": IPHONE_UA, "url": url}),
        None => json!({"useragent": IPHONE_UA}),
    };
    let mut batch = Vec::new();
    for (message, email) in people {
        batch.push(sg_event(
            "delivered",
            message,
            email,
            sent + chrono::Duration::seconds(10),
            json!({}),
        ));
    }
    for (message, email) in &people[..2] {
        batch.push(sg_event(
            "open",
            message,
            email,
            sent + chrono::Duration::seconds(600),
            human(None),
        ));
    }
    // Ann clicks, as a person, minutes after opening.
    let click_at = sent + chrono::Duration::seconds(620);
    batch.push(sg_event(
        "click",
        "m-ann",
        "ann@example.com",
        click_at,
        human(Some("https://shop.test/sale")),
    ));
    shop.sendgrid(batch).await;

    // Later, on the site, Ann signs in (her email links her visitor) and buys.
    let ann = Uuid::now_v7();
    shop.track(snippet(ann, "page_view", "https://shop.test/", json!({})))
        .await;
    shop.identify(ann, "user-ann", "ann@example.com").await;
    shop.purchase(ann, "A-1", "80.00").await;
    shop.run_jobs().await;

    assert_eq!(
        shop.credit("A-1").await,
        (Some("m-ann".into()), Some("email".into()))
    );
    let campaigns = shop.recent("campaign").await;
    let spring = row(&campaigns, "campaign", "spring");
    for (metric, expected) in [
        ("sent", json!(3)),
        ("delivered", json!(3)),
        ("opens", json!(2)),
        ("clicks", json!(1)),
        ("orders", json!(1)),
        ("revenue", json!("80.00")),
    ] {
        assert_eq!(spring[metric], expected, "{metric}: {spring}");
    }
    let messages = shop.recent("message").await;
    let ann_row = row(&messages, "message_id", "m-ann");
    assert_eq!(
        (&ann_row["orders"], &ann_row["revenue"]),
        (&json!(1), &json!("80.00"))
    );
    assert_eq!(row(&messages, "message_id", "m-bob")["orders"], 0);
}

#[tokio::test]
async fn an_identify_after_the_order_re_attributes_it_to_the_clicked_email() {
    let shop = Shop::new().await;
    let sent = Utc::now() - hours(3);
    shop.post_sends(vec![api_send("m-dee", "dee@example.com", "spring", sent)])
        .await;
    shop.sendgrid(vec![sg_event(
        "click",
        "m-dee",
        "dee@example.com",
        sent + chrono::Duration::seconds(900),
        json!({"useragent": IPHONE_UA, "url": "https://shop.test/sale"}),
    )])
    .await;
    // A visitor nobody knows yet buys: the order names no email, no message can be credited.
    let visitor = Uuid::now_v7();
    shop.purchase(visitor, "D-1", "45.00").await;
    // Past the first run's watermark margin (5 s): only the new identity link can bring the
    // order back into the next run.
    tokio::time::sleep(Duration::from_secs(6)).await;
    shop.run_jobs().await;
    assert_eq!(shop.credit("D-1").await, (None, None));
    assert_eq!(
        row(&shop.recent("message").await, "message_id", "m-dee")["orders"],
        0
    );

    // The visitor signs in later: the link makes Dee's provider click hers.
    shop.identify(visitor, "user-dee", "dee@example.com").await;
    shop.run_jobs().await;
    assert_eq!(
        shop.credit("D-1").await,
        (Some("m-dee".into()), Some("email".into()))
    );
    let dee = row(&shop.recent("message").await, "message_id", "m-dee").clone();
    assert_eq!(
        (&dee["orders"], &dee["revenue"]),
        (&json!(1), &json!("45.00"))
    );
}
