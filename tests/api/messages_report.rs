//! Email and SMS: which message each order is credited to, and the `messages` report (SPEC
//! §8.1, issue 15). Visits, identifies and purchases go through the real `/e` with the write
//! key and a browser's user agent, as the snippet sends them (landings with `lux_mid` in the
//! URL); sends and provider events are written as rows, as the webhooks and `/r/` links write
//! them; then the jobs run as the service runs them and the report is read over HTTP.

use std::time::Duration;

use chrono::{DateTime, Utc};
use lux::jobs::{Job, Mode, WhenBusy};
use lux::messages::recipient::Recipient;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

use crate::helpers::{TestApp, answer};

const THANKS: &str = "https://shop.test/thanks";

struct Shop {
    app: TestApp,
    pool: PgPool,
    hash_key: Vec<u8>,
}

/// A provider event as the webhooks store it.
struct Event<'a> {
    message_id: &'a str,
    kind: &'a str,
    at: DateTime<Utc>,
    machine: bool,
    recipient: Option<&'a [u8]>,
    provider: &'a str,
}

impl<'a> Event<'a> {
    fn human(message_id: &'a str, kind: &'a str, at: DateTime<Utc>) -> Self {
        Event {
            message_id,
            kind,
            at,
            machine: false,
            recipient: None,
            provider: "sendgrid",
        }
    }

    fn machine(mut self) -> Self {
        self.machine = true;
        self
    }

    fn by(mut self, recipient: &'a [u8]) -> Self {
        self.recipient = Some(recipient);
        self
    }

    /// A `/r/` short-link click.
    fn link(mut self) -> Self {
        self.provider = "link";
        self
    }
}

fn snippet(visitor: Uuid, name: &str, page: &str, properties: Value) -> Value {
    json!({"event_id": Uuid::now_v7(), "event_name": name, "visitor_id": visitor,
           "page_url": page, "referrer": null, "properties": properties})
}

fn hours(h: i64) -> chrono::Duration {
    chrono::Duration::hours(h)
}

impl Shop {
    async fn new() -> Shop {
        let app = TestApp::spawn().await;
        let pool = lux::db::connect_app(&app.db.url, 4).unwrap();
        let hash_key: Vec<u8> =
            sqlx::query_scalar("SELECT hash_key FROM companies WHERE company_id = $1")
                .bind(app.company.id)
                .fetch_one(&app.owner)
                .await
                .unwrap();
        Shop {
            app,
            pool,
            hash_key,
        }
    }

    /// The company's keyed hash of an email or phone number, as the webhooks store it.
    fn hash(&self, recipient: &str) -> Vec<u8> {
        Recipient::parse(recipient)
            .unwrap()
            .hash(&self.hash_key)
            .as_bytes()
            .to_vec()
    }

    async fn send(&self, events: Vec<Value>) {
        let (status, body) = self.app.post_events(&Value::Array(events)).await;
        assert_eq!(status, 202, "{body}");
        assert!(body["rejected"].as_array().unwrap().is_empty(), "{body}");
    }

    /// A visit landing from a message link (`?lux_mid=`), as the snippet reports it.
    async fn land(&self, visitor: Uuid, message_id: &str) {
        let page = format!("https://shop.test/sale?utm_medium=email&lux_mid={message_id}");
        self.send(vec![snippet(visitor, "page_view", &page, json!({}))])
            .await;
    }

    /// `lux.identify(user, {email})`.
    async fn identify(&self, visitor: Uuid, user: &str, email: Option<&str>) {
        let mut event = snippet(visitor, "identify", "https://shop.test/account", json!({}));
        event["user_id"] = json!(user);
        if let Some(email) = email {
            event["email"] = json!(email);
        }
        self.send(vec![event]).await;
    }

    /// A purchase from `visitor` (with the buyer's email when the checkout gives it); waits for
    /// the order and returns when it was placed.
    async fn purchase(
        &self,
        visitor: Uuid,
        order: &str,
        value: &str,
        email: Option<&str>,
    ) -> DateTime<Utc> {
        let properties = json!({"order_id": order, "value": value, "currency": "EUR"});
        let mut event = snippet(visitor, "purchase", THANKS, properties);
        if let Some(email) = email {
            event["email"] = json!(email);
        }
        self.send(vec![event]).await;
        crate::helpers::wait_for_order(&self.app.owner, self.app.company.id, order).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
        sqlx::query_scalar("SELECT placed_at FROM orders WHERE order_number = $1")
            .bind(order)
            .fetch_one(&self.app.owner)
            .await
            .unwrap()
    }

    /// A send, as `POST /api/v1/messages` writes it.
    async fn message(
        &self,
        message_id: &str,
        channel: &str,
        campaign: &str,
        recipient: Option<&[u8]>,
        sent_at: DateTime<Utc>,
    ) {
        let provider = if channel == "sms" {
            "twilio"
        } else {
            "sendgrid"
        };
        sqlx::query(
            "INSERT INTO message_sends (company_id, message_id, channel, provider, campaign,
                 recipient_hash, sent_at, origin)
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'api')",
        )
        .bind(self.app.company.id)
        .bind(message_id)
        .bind(channel)
        .bind(provider)
        .bind(campaign)
        .bind(recipient)
        .bind(sent_at)
        .execute(&self.app.owner)
        .await
        .unwrap();
    }

    /// A provider event (or `/r/` click), as the webhooks and links write it.
    async fn event(&self, e: Event<'_>) {
        sqlx::query(
            "INSERT INTO message_events (company_id, event_id, provider, provider_event_id,
                 message_id, kind, provider_status, occurred_at, received_at, recipient_hash,
                 is_machine, machine_reason)
             VALUES ($1, $2, $3, $4, $5, $6, $6, $7, $7, $8, $9,
                     CASE WHEN $9 THEN 'provider_flag:test' END)",
        )
        .bind(self.app.company.id)
        .bind(Uuid::now_v7())
        .bind(e.provider)
        .bind(Uuid::new_v4().to_string())
        .bind(e.message_id)
        .bind(e.kind)
        .bind(e.at)
        .bind(e.recipient)
        .bind(e.machine)
        .execute(&self.app.owner)
        .await
        .unwrap();
    }

    /// Attribution then rollups, incrementally, as the scheduler runs them. Returns the
    /// attribution run's count of changed orders.
    async fn run_jobs(&self) -> u64 {
        let mut changed = 0;
        for job in [Job::Attribution, Job::Rollups] {
            let report = lux::jobs::run(
                &self.pool,
                self.app.company.id.into(),
                job,
                (Mode::Incremental, WhenBusy::Wait),
                chrono::Utc::now(),
            )
            .await
            .unwrap()
            .expect("ran");
            if job == Job::Attribution {
                changed = report.rows_changed;
            }
        }
        changed
    }

    /// (message id, channel) credited to an order.
    async fn credit(&self, order: &str) -> (Option<String>, Option<String>) {
        sqlx::query_as("SELECT message_id, message_channel FROM orders WHERE order_number = $1")
            .bind(order)
            .fetch_one(&self.app.owner)
            .await
            .unwrap()
    }

    /// Waits until the identity graph links `a` and `b` (the writer links in the background).
    async fn linked(&self, a: Uuid, b: Uuid) {
        for _ in 0..200 {
            let same: bool = sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM identity_keys x JOIN identity_keys y
                                USING (company_id, person_id)
                                WHERE x.key_kind = 'visitor' AND x.key_value = $1
                                  AND y.key_kind = 'visitor' AND y.key_value = $2)",
            )
            .bind(a.to_string())
            .bind(b.to_string())
            .fetch_one(&self.app.owner)
            .await
            .unwrap();
            if same {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("{a} and {b} never linked");
    }

    /// `GET /api/v1/reports/messages?{query}` over the days around now.
    async fn report(&self, query: &str) -> Vec<Value> {
        let (status, body) = self.get_report(query).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["report"], "messages");
        body["rows"].as_array().unwrap().clone()
    }

    async fn get_report(&self, query: &str) -> (StatusCode, Value) {
        let today = Utc::now().date_naive();
        let from = today - chrono::Duration::days(10);
        let to = today + chrono::Duration::days(1);
        let response = self
            .app
            .client
            .get(format!(
                "{}/api/v1/reports/messages?from={from}&to={to}{query}",
                self.app.base
            ))
            .bearer_auth(&self.app.company.secret_key)
            .send()
            .await
            .unwrap();
        answer(response).await
    }
}

/// The report row of `key` (its `message_id`, `campaign` or `channel`).
fn row<'r>(rows: &'r [Value], field: &str, value: &str) -> &'r Value {
    rows.iter()
        .find(|r| r[field] == value)
        .unwrap_or_else(|| panic!("no row with {field} = {value}: {rows:?}"))
}

/// The report's metrics of a row, without its key.
fn metrics(row: &Value) -> Value {
    let mut row = row.clone();
    for key in ["channel", "campaign", "message_id", "day"] {
        row.as_object_mut().unwrap().remove(key);
    }
    row
}

#[tokio::test]
async fn a_hand_made_campaign_reports_every_rate_by_channel_campaign_and_message() {
    let shop = Shop::new().await;
    let now = Utc::now();
    let sent_at = now - hours(2);
    let after = |minutes: i64| sent_at + chrono::Duration::minutes(minutes);

    // Email campaign `spring_sale`: 20 sends, e01 to e20. e01 goes to Ann, e04 to Pat (who
    // has two devices); the others to people who never visit.
    let ann = shop.hash("ann@example.com");
    let pat = shop.hash("pat@example.com");
    for i in 1..=20 {
        let recipient = match i {
            1 => ann.clone(),
            4 => pat.clone(),
            _ => shop.hash(&format!("reader{i}@example.com")),
        };
        let id = format!("e{i:02}");
        shop.message(&id, "email", "spring_sale", Some(&recipient), sent_at)
            .await;
        // e01..e18 delivered; e19 and e20 bounce.
        let kind = if i <= 18 { "delivered" } else { "bounced" };
        shop.event(Event::human(&id, kind, after(1))).await;
    }
    // Human opens of e01..e08 (e01 twice: one send, one unique open).
    for i in 1..=8 {
        shop.event(Event::human(&format!("e{i:02}"), "opened", after(30)))
            .await;
    }
    shop.event(Event::human("e01", "opened", after(50))).await;
    // Machine opens (Apple's proxy) of e01..e03 (also opened by their reader) and of
    // e09..e12 (never by a person): 7 sends with a machine open.
    for i in [1, 2, 3, 9, 10, 11, 12] {
        shop.event(Event::human(&format!("e{i:02}"), "opened", after(1)).machine())
            .await;
    }
    // Human clicks of e01 (twice), e02, e03; a link scanner clicks e09 (not counted).
    for (id, minute) in [("e01", 31), ("e01", 33), ("e02", 32), ("e03", 35)] {
        let click = Event::human(id, "clicked", after(minute));
        let click = if id == "e01" { click.by(&ann) } else { click };
        shop.event(click).await;
    }
    shop.event(Event::human("e09", "clicked", after(1)).machine())
        .await;
    // Pat clicks e04 on his phone (device A) and later on his laptop (device B): two
    // landings, one send clicked.
    let (phone, laptop) = (Uuid::now_v7(), Uuid::now_v7());
    shop.land(phone, "e04").await;
    shop.land(laptop, "e04").await;
    // e05 unsubscribes, e06 complains.
    shop.event(Event::human("e05", "unsubscribed", after(40)))
        .await;
    shop.event(Event::human("e06", "complained", after(41)))
        .await;

    // SMS campaign `flash`: 10 sends, s01..s10. s01..s09 delivered, s10 undelivered.
    for i in 1..=10 {
        let id = format!("s{i:02}");
        let phone_hash = shop.hash(&format!("+3361234{i:04}"));
        shop.message(&id, "sms", "flash", Some(&phone_hash), sent_at)
            .await;
        let kind = if i <= 9 { "delivered" } else { "bounced" };
        shop.event(Event::human(&id, kind, after(1))).await;
    }
    // /r/ clicks on s01 and s02; iMessage's link preview fetches s03's link (a machine);
    // s04's reader follows a link with lux_mid straight to the shop; s05 replies STOP.
    shop.event(Event::human("s01", "clicked", after(10)).link())
        .await;
    shop.event(Event::human("s02", "clicked", after(12)).link())
        .await;
    shop.event(Event::human("s03", "clicked", after(2)).link().machine())
        .await;
    let texter = Uuid::now_v7();
    shop.land(texter, "s04").await;
    shop.event(Event::human("s05", "unsubscribed", after(20)))
        .await;

    // Orders: Ann buys after her click (her email on the checkout), Pat buys on his laptop
    // after logging in on both devices, s04's reader buys in the visit the text opened.
    let ann_visitor = Uuid::now_v7();
    shop.purchase(ann_visitor, "A-1", "40.00", Some("ann@example.com"))
        .await;
    shop.identify(phone, "pat", Some("pat@example.com")).await;
    shop.identify(laptop, "pat", None).await;
    shop.linked(phone, laptop).await;
    shop.purchase(laptop, "P-1", "80.00", None).await;
    shop.purchase(texter, "T-1", "25.00", None).await;
    shop.run_jobs().await;
    assert_eq!(
        shop.credit("A-1").await,
        (Some("e01".into()), Some("email".into()))
    );
    assert_eq!(
        shop.credit("P-1").await,
        (Some("e04".into()), Some("email".into()))
    );
    assert_eq!(
        shop.credit("T-1").await,
        (Some("s04".into()), Some("sms".into()))
    );

    let rows = shop.report("").await;
    assert_eq!(rows.len(), 2, "{rows:?}");
    // Email: sent 20, delivered 18, bounced 2, unique human opens 8 (e01..e08), machine
    // opens 7, unique human clicks 4 (e01, e02, e03, e04), 1 unsubscribe, 1 complaint,
    // orders A-1 (40.00) and P-1 (80.00).
    let email = json!({
        "sent": 20, "delivered": 18,
        "delivery_rate": 0.9,          // 18 ÷ 20
        "opens": 8, "machine_opens": 7,
        "open_rate": 0.4444,           // 8 ÷ 18 = 0.44444…
        "clicks": 4,
        "click_rate": 0.2222,          // 4 ÷ 18 = 0.22222…
        "click_to_open_rate": 0.5,     // 4 ÷ 8
        "bounces": 2,
        "bounce_rate": 0.1,            // 2 ÷ 20
        "unsubscribes": 1,
        "unsubscribe_rate": 0.0556,    // 1 ÷ 18 = 0.05555…
        "complaints": 1,
        "complaint_rate": 0.0556,      // 1 ÷ 18
        "orders": 2,
        "revenue": "120.00",           // 40.00 + 80.00
        "revenue_per_send": "6.00",    // 120.00 ÷ 20
        "currency": "EUR",
    });
    assert_eq!(metrics(row(&rows, "channel", "email")), email);
    // SMS: sent 10, delivered 9, 1 undelivered, no opens (SMS has none: rates null), unique
    // human clicks 3 (s01, s02 by /r/, s04 by landing; s03's preview is a machine), 1
    // unsubscribe, no complaint, order T-1 (25.00).
    let sms = json!({
        "sent": 10, "delivered": 9,
        "delivery_rate": 0.9,          // 9 ÷ 10
        "opens": 0, "machine_opens": 0,
        "open_rate": null,
        "clicks": 3,
        "click_rate": 0.3333,          // 3 ÷ 9 = 0.33333…
        "click_to_open_rate": null,
        "bounces": 1,
        "bounce_rate": 0.1,            // 1 ÷ 10
        "unsubscribes": 1,
        "unsubscribe_rate": 0.1111,    // 1 ÷ 9 = 0.11111…
        "complaints": 0,
        "complaint_rate": 0.0,         // 0 ÷ 9
        "orders": 1,
        "revenue": "25.00",
        "revenue_per_send": "2.50",    // 25.00 ÷ 10
        "currency": "EUR",
    });
    assert_eq!(metrics(row(&rows, "channel", "sms")), sms);

    // By campaign: one campaign per channel, the same numbers.
    let campaigns = shop.report("&group=campaign").await;
    assert_eq!(metrics(row(&campaigns, "campaign", "spring_sale")), email);
    assert_eq!(metrics(row(&campaigns, "campaign", "flash")), sms);
    // One channel only.
    let only_sms = shop.report("&channel=sms").await;
    assert_eq!(only_sms.len(), 1);
    assert_eq!(metrics(&only_sms[0]), sms);

    // By message: a row per send; Pat's e04 has one click (two devices), his order and its
    // revenue; e19 bounced and was never delivered (rates over delivered are null).
    let messages = shop.report("&group=message").await;
    assert_eq!(messages.len(), 30);
    let e04 = row(&messages, "message_id", "e04");
    assert_eq!(e04["campaign"], "spring_sale");
    assert_eq!(
        (
            &e04["clicks"],
            &e04["orders"],
            &e04["revenue"],
            &e04["revenue_per_send"]
        ),
        (&json!(1), &json!(1), &json!("80.00"), &json!("80.00"))
    );
    let e19 = row(&messages, "message_id", "e19");
    assert_eq!(
        (&e19["bounces"], &e19["open_rate"]),
        (&json!(1), &Value::Null)
    );
    assert_eq!(e19["revenue"], "0.00");

    // A second run finds nothing new and changes nothing.
    assert_eq!(shop.run_jobs().await, 0);
    assert_eq!(shop.report("").await, rows);
}

#[tokio::test]
async fn a_purchase_119_hours_after_a_click_is_credited_and_121_hours_after_is_not() {
    let shop = Shop::new().await;
    let placed_x = shop
        .purchase(Uuid::now_v7(), "X-1", "30.00", Some("x@example.com"))
        .await;
    let placed_y = shop
        .purchase(Uuid::now_v7(), "Y-1", "30.00", Some("y@example.com"))
        .await;
    let (x, y) = (shop.hash("x@example.com"), shop.hash("y@example.com"));
    shop.message("mx", "email", "weekly", Some(&x), placed_x - hours(130))
        .await;
    shop.message("my", "email", "weekly", Some(&y), placed_y - hours(130))
        .await;
    shop.event(Event::human("mx", "clicked", placed_x - hours(119)).by(&x))
        .await;
    shop.event(Event::human("my", "clicked", placed_y - hours(121)).by(&y))
        .await;
    shop.run_jobs().await;
    assert_eq!(
        shop.credit("X-1").await,
        (Some("mx".into()), Some("email".into()))
    );
    assert_eq!(shop.credit("Y-1").await, (None, None));
    // The credited click is on the order, for audit.
    let (at, click): (DateTime<Utc>, String) = sqlx::query_as(
        "SELECT message_click_at, message_click FROM orders WHERE order_number = 'X-1'",
    )
    .fetch_one(&shop.app.owner)
    .await
    .unwrap();
    assert_eq!(at, placed_x - hours(119));
    assert!(click.starts_with("event:"), "{click}");
}

#[tokio::test]
async fn an_email_click_then_an_sms_click_credits_the_sms() {
    let shop = Shop::new().await;
    let visitor = Uuid::now_v7();
    let now = Utc::now();
    shop.identify(visitor, "vera", Some("vera@example.com"))
        .await;
    let vera = shop.hash("vera@example.com");
    let phone = shop.hash("+15550001111");
    shop.message("ve", "email", "newsletter", Some(&vera), now - hours(5))
        .await;
    shop.event(Event::human("ve", "clicked", now - hours(3)).by(&vera))
        .await;
    shop.message("vs", "sms", "flash", Some(&phone), now - hours(1))
        .await;
    // The text's link opens the shop on the same device: a landing with lux_mid.
    shop.land(visitor, "vs").await;
    shop.purchase(visitor, "V-1", "55.00", None).await;
    shop.run_jobs().await;
    assert_eq!(
        shop.credit("V-1").await,
        (Some("vs".into()), Some("sms".into()))
    );
}

#[tokio::test]
async fn opens_and_machine_clicks_earn_nothing() {
    let shop = Shop::new().await;
    let now = Utc::now();
    let (z, w) = (shop.hash("z@example.com"), shop.hash("w@example.com"));
    shop.message("mz", "email", "weekly", Some(&z), now - hours(3))
        .await;
    shop.message("mw", "email", "weekly", Some(&w), now - hours(3))
        .await;
    // Z opened (a person), W's link was clicked by a scanner.
    shop.event(Event::human("mz", "opened", now - hours(2)).by(&z))
        .await;
    shop.event(
        Event::human("mw", "clicked", now - hours(2))
            .by(&w)
            .machine(),
    )
    .await;
    shop.purchase(Uuid::now_v7(), "Z-1", "10.00", Some("z@example.com"))
        .await;
    shop.purchase(Uuid::now_v7(), "W-1", "10.00", Some("w@example.com"))
        .await;
    shop.run_jobs().await;
    assert_eq!(shop.credit("Z-1").await, (None, None));
    assert_eq!(shop.credit("W-1").await, (None, None));
    // The report counts the open and the machine click apart, and no order.
    let rows = shop.report("").await;
    let email = row(&rows, "channel", "email");
    assert_eq!(
        (&email["opens"], &email["clicks"], &email["orders"]),
        (&json!(1), &json!(0), &json!(0))
    );
}

#[tokio::test]
async fn a_click_on_another_device_of_the_same_person_counts() {
    let shop = Shop::new().await;
    let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
    let pia = shop.hash("pia@example.com");
    shop.message("mp", "email", "winback", Some(&pia), Utc::now() - hours(1))
        .await;
    // The email's link opens on device A; Pia logs in on both; she buys on device B.
    shop.land(a, "mp").await;
    shop.identify(a, "pia", None).await;
    shop.identify(b, "pia", None).await;
    shop.linked(a, b).await;
    shop.purchase(b, "B-1", "70.00", None).await;
    shop.run_jobs().await;
    assert_eq!(
        shop.credit("B-1").await,
        (Some("mp".into()), Some("email".into()))
    );
    let click: String =
        sqlx::query_scalar("SELECT message_click FROM orders WHERE order_number = 'B-1'")
            .fetch_one(&shop.app.owner)
            .await
            .unwrap();
    let landing: Uuid = sqlx::query_scalar("SELECT session_id FROM sessions WHERE visitor_id = $1")
        .bind(a)
        .fetch_one(&shop.app.owner)
        .await
        .unwrap();
    assert_eq!(click, format!("session:{landing}"), "device A's landing");
}

#[tokio::test]
async fn a_late_click_re_attributes_the_order_and_moves_its_revenue_between_send_days() {
    let shop = Shop::new().await;
    let lou = shop.hash("lou@example.com");
    let now = Utc::now();
    // An old newsletter (sent four days ago) that Lou clicked; a recent one.
    shop.message("old", "email", "newsletter", Some(&lou), now - hours(100))
        .await;
    shop.message("new", "email", "newsletter", Some(&lou), now - hours(3))
        .await;
    shop.event(Event::human("old", "clicked", now - hours(90)).by(&lou))
        .await;
    let placed = shop
        .purchase(Uuid::now_v7(), "L-1", "60.00", Some("lou@example.com"))
        .await;
    shop.run_jobs().await;
    assert_eq!(shop.credit("L-1").await.0.as_deref(), Some("old"));
    let before = shop.report("&group=message").await;
    assert_eq!(row(&before, "message_id", "old")["orders"], 1);
    assert_eq!(row(&before, "message_id", "new")["orders"], 0);

    // The provider delivers the click on the recent one late, after the order was credited.
    shop.event(Event::human("new", "clicked", placed - hours(2)).by(&lou))
        .await;
    assert_eq!(shop.run_jobs().await, 1, "the late click moves the credit");
    assert_eq!(
        shop.credit("L-1").await,
        (Some("new".into()), Some("email".into()))
    );
    let after = shop.report("&group=message").await;
    let old = row(&after, "message_id", "old");
    let new = row(&after, "message_id", "new");
    assert_eq!(
        (&old["orders"], &old["revenue"]),
        (&json!(0), &json!("0.00"))
    );
    assert_eq!(
        (&new["orders"], &new["revenue"]),
        (&json!(1), &json!("60.00"))
    );
    assert_ne!(old["day"], new["day"], "sent on different days");
    assert_eq!(new["clicks"], 1);
}

#[tokio::test]
async fn bad_messages_report_parameters_are_named() {
    let shop = Shop::new().await;
    for (query, expected) in [
        (
            "&channel=push",
            "unknown channel \"push\"; messages are sent by: email, sms",
        ),
        ("&group=day", "unknown `group` \"day\""),
        ("&model=linear", "report messages does not take `model`"),
    ] {
        let (status, body) = shop.get_report(query).await;
        assert_eq!(status, 400, "{query}: {body}");
        let error = body["error"].as_str().unwrap();
        assert!(error.contains(expected), "{query}: {error}");
    }
    // No sends: no rows.
    assert!(shop.report("").await.is_empty());
}

#[tokio::test]
async fn the_reader_reads_only_its_companys_message_rollups_and_never_the_sends() {
    let shop = Shop::new().await;
    let other = crate::helpers::create_company(&shop.app.owner, "Other").await;
    let now = Utc::now();
    shop.message("a1", "email", "weekly", None, now - hours(1))
        .await;
    shop.message("a2", "sms", "flash", None, now - hours(1))
        .await;
    let buyer = Uuid::now_v7();
    shop.land(buyer, "a1").await;
    shop.purchase(buyer, "A-1", "12.00", None).await;
    sqlx::query(
        "INSERT INTO message_sends (company_id, message_id, channel, provider, sent_at, origin)
         VALUES ($1, 'b1', 'email', 'mailgun', $2, 'api')",
    )
    .bind(other.id)
    .bind(now - hours(1))
    .execute(&shop.app.owner)
    .await
    .unwrap();
    for company in [shop.app.company.id, other.id] {
        for job in [Job::Attribution, Job::Rollups] {
            lux::jobs::run(
                &shop.pool,
                company.into(),
                job,
                (Mode::Full, WhenBusy::Wait),
                chrono::Utc::now(),
            )
            .await
            .unwrap();
        }
    }
    let reader = lux::db::connect_reader(&shop.app.db.url, 1).unwrap();
    for (table, a, b) in [
        ("rollup_message_days", 2, 1),
        ("rollup_message_sends", 2, 1),
        ("rollup_message_orders", 1, 0),
        ("rollup_message_revenue_days", 1, 0),
    ] {
        for (company, expected) in [(shop.app.company.id, a), (other.id, b)] {
            let mut tx = lux::db::begin_for_company(&reader, company).await.unwrap();
            let seen: i64 =
                sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
                    .fetch_one(&mut *tx)
                    .await
                    .unwrap_or_else(|e| panic!("{table}: {e}"));
            assert_eq!(seen, expected, "{table} for {company}");
        }
    }
    for table in ["message_sends", "message_events", "message_changes"] {
        let mut tx = lux::db::begin_for_company(&reader, shop.app.company.id)
            .await
            .unwrap();
        let error = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT 1 FROM {table}")))
            .fetch_optional(&mut *tx)
            .await
            .expect_err(table);
        assert!(error.to_string().contains("permission denied"), "{error}");
    }
    // The report of A counts A's sends only.
    let rows = shop.report("").await;
    let sent: i64 = rows.iter().map(|r| r["sent"].as_i64().unwrap()).sum();
    assert_eq!(sent, 2);
}
