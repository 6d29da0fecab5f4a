//! Customers of a snippet-only shop (issue 13): the purchase the snippet sends carries neither
//! an email nor a user id, so its customer comes through the identity graph (the visitor's
//! person), or is the guest visitor itself until it identifies. Everything goes through the
//! real `/e` with the write key and a browser's user agent, as the snippet sends it (no
//! `occurred_at`, no email on the purchase); the order worker, the jobs and the reports then
//! run as the service runs them.

use std::time::Duration;

use lux::jobs::{Job, Mode, WhenBusy};
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

use crate::helpers::{TestApp, lux_json, secrets_key};

const PAID_SEARCH: &str = "https://shop.test/?utm_source=google&utm_medium=cpc&utm_campaign=brand";
const PRODUCT: &str = "https://shop.test/product";
const THANKS: &str = "https://shop.test/thanks";

/// The test company (Europe/Paris, EUR) and the service's own pool for the jobs.
struct Shop {
    app: TestApp,
    pool: PgPool,
}

/// One event as the snippet builds it: no time (the server stamps it), a fresh UUIDv7.
fn snippet(visitor: Uuid, name: &str, page: &str, properties: Value) -> Value {
    json!({"event_id": Uuid::now_v7(), "event_name": name, "visitor_id": visitor,
           "page_url": page, "referrer": null, "properties": properties})
}

/// A customer's row: (email hash known, user id, visitor id).
type CustomerRow = (bool, Option<String>, Option<Uuid>);

impl Shop {
    async fn new() -> Shop {
        let app = TestApp::spawn().await;
        let pool = lux::db::connect_app(&app.db.url, 4).unwrap();
        Shop { app, pool }
    }

    /// Posts one request of events with the write key and a browser's user agent.
    async fn send(&self, events: Vec<Value>) {
        let (status, body) = self.app.post_events(&Value::Array(events)).await;
        assert_eq!(status, 202, "{body}");
        assert!(body["rejected"].as_array().unwrap().is_empty(), "{body}");
    }

    async fn page_view(&self, visitor: Uuid, page: &str) {
        self.send(vec![snippet(visitor, "page_view", page, json!({}))])
            .await;
    }

    /// `lux.identify(user, {email})`.
    async fn identify(&self, visitor: Uuid, user: &str, email: Option<&str>) {
        let mut event = snippet(visitor, "identify", PRODUCT, json!({}));
        event["user_id"] = json!(user);
        if let Some(email) = email {
            event["email"] = json!(email);
        }
        self.send(vec![event]).await;
    }

    /// `lux.track('purchase', {order_id, value, currency})`, then waits for the order.
    async fn purchase(&self, visitor: Uuid, order: &str, value: &str) {
        let properties = json!({"order_id": order, "value": value, "currency": "EUR"});
        self.send(vec![snippet(visitor, "purchase", THANKS, properties)])
            .await;
        crate::helpers::wait_for_order(&self.app.owner, self.app.company.id, order).await;
        // Let the events' times differ: orders of one customer are told apart by time.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    /// Waits until `sql` (one boolean, as the owner) holds: the order worker works in the
    /// background (purchases, then identity notes).
    async fn eventually(&self, sql: &str) {
        for _ in 0..200 {
            let holds: bool = sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_string()))
                .fetch_one(&self.app.owner)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
            if holds {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("never true: {sql}");
    }

    /// Waits until no identity note is left for the order worker.
    async fn notes_done(&self) {
        self.eventually("SELECT NOT EXISTS (SELECT 1 FROM customer_relinks)")
            .await;
    }

    /// (order number, is first order) of every order, by number.
    async fn first_flags(&self) -> Vec<(String, bool)> {
        sqlx::query_as("SELECT order_number, is_first_order FROM orders ORDER BY order_number")
            .fetch_all(&self.app.owner)
            .await
            .unwrap()
    }

    /// The customer of an order.
    async fn customer_of(&self, order: &str) -> Option<Uuid> {
        sqlx::query_scalar("SELECT customer_id FROM orders WHERE order_number = $1")
            .bind(order)
            .fetch_one(&self.app.owner)
            .await
            .unwrap()
    }

    async fn customers(&self) -> Vec<CustomerRow> {
        sqlx::query_as(
            "SELECT email_hash IS NOT NULL, user_id, visitor_id FROM customers ORDER BY created_at",
        )
        .fetch_all(&self.app.owner)
        .await
        .unwrap()
    }

    /// The company's local day of an order.
    async fn day_of(&self, order: &str) -> String {
        sqlx::query_scalar(
            "SELECT (placed_at AT TIME ZONE 'Europe/Paris')::date::text FROM orders
             WHERE order_number = $1",
        )
        .bind(order)
        .fetch_one(&self.app.owner)
        .await
        .unwrap()
    }

    /// `lux import spend` of a generic CSV: `spend` euros of Paid Search (google / cpc) on `day`.
    fn import_spend(&self, day: &str, spend: &str) {
        let path = std::env::temp_dir().join(format!("spend-{}.csv", Uuid::new_v4()));
        std::fs::write(
            &path,
            format!(
                "date,platform,channel,source,medium,campaign,ad_id,spend,impressions,clicks,currency\n\
                 {day},google_ads,Paid Search,google,cpc,brand,,{spend},1000,20,EUR\n"
            ),
        )
        .unwrap();
        let summary = lux_json(
            &self.app.db.url,
            &[
                "import",
                "spend",
                path.to_str().unwrap(),
                "--company",
                &self.app.company.id.to_string(),
                "--format",
                "generic",
            ],
        );
        assert_eq!(summary["rows"], 1, "{summary}");
    }

    /// Attribution, then rollups, incrementally, as the scheduler runs them.
    async fn run_jobs(&self) {
        for job in Job::ALL {
            lux::jobs::run(
                &self.pool,
                self.app.company.id.into(),
                job,
                (Mode::Incremental, WhenBusy::Wait),
                chrono::Utc::now(),
            )
            .await
            .expect("the job runs")
            .expect("nobody else holds the lock");
        }
    }

    async fn report(&self, name: &str, day: &str) -> Value {
        let response = self
            .app
            .client
            .get(format!(
                "{}/api/v1/reports/{name}?from={day}&to={day}",
                self.app.base
            ))
            .bearer_auth(&self.app.company.secret_key)
            .send()
            .await
            .unwrap();
        let (status, body) = crate::helpers::answer(response).await;
        assert_eq!(status, 200, "{name}: {body}");
        body["rows"].clone()
    }

    /// The blended ("All") row of the `cac` report for `day`.
    async fn cac_all(&self, day: &str) -> Value {
        let rows = self.report("cac", day).await;
        rows.as_array()
            .unwrap()
            .iter()
            .find(|r| r["channel"] == "All")
            .unwrap_or_else(|| panic!("no All row: {rows}"))
            .clone()
    }

    /// The `all` row of the `repeat_purchase` report for `day`.
    async fn repeat_all(&self, day: &str) -> Value {
        let rows = self.report("repeat_purchase", day).await;
        rows[0].clone()
    }
}

#[tokio::test]
async fn identify_then_purchase_from_the_snippet_makes_one_new_customer_and_cac_is_spend_over_one()
{
    let shop = Shop::new().await;
    let visitor = Uuid::now_v7();
    shop.page_view(visitor, PAID_SEARCH).await;
    shop.identify(visitor, "user-7", Some("ann@example.com"))
        .await;
    shop.purchase(visitor, "1001", "42.00").await;
    shop.eventually("SELECT customer_id IS NOT NULL FROM orders WHERE order_number = '1001'")
        .await;

    // The order's customer is the identified person's: their user id and email hash.
    assert_eq!(
        shop.customers().await,
        vec![(true, Some("user-7".to_string()), None)]
    );
    assert_eq!(shop.first_flags().await, vec![("1001".to_string(), true)]);
    let (email, user): (Option<Vec<u8>>, Option<String>) =
        sqlx::query_as("SELECT email_hash, user_id FROM orders WHERE order_number = '1001'")
            .fetch_one(&shop.app.owner)
            .await
            .unwrap();
    assert_eq!(
        (email, user),
        (None, None),
        "the purchase itself named no one"
    );

    let day = shop.day_of("1001").await;
    shop.import_spend(&day, "30.00");
    shop.run_jobs().await;
    assert_eq!(
        shop.report("cac", &day).await,
        json!([
            {"channel": "Paid Search", "currency": "EUR", "spend": "30.00",
             "new_customers": "1.00", "cac": "30.00"},
            {"channel": "All", "currency": "EUR", "spend": "30.00",
             "new_customers": "1.00", "cac": "30.00"},
        ])
    );
    shop.app.stop().await;
}

#[tokio::test]
async fn a_guest_purchase_without_identify_makes_one_new_customer_keyed_by_its_visitor() {
    let shop = Shop::new().await;
    let visitor = Uuid::now_v7();
    shop.page_view(visitor, PAID_SEARCH).await;
    shop.purchase(visitor, "2001", "25.00").await;
    shop.eventually("SELECT customer_id IS NOT NULL FROM orders WHERE order_number = '2001'")
        .await;

    assert_eq!(shop.customers().await, vec![(false, None, Some(visitor))]);
    assert_eq!(shop.first_flags().await, vec![("2001".to_string(), true)]);

    // A second guest order from the same device is the same customer's second order.
    shop.purchase(visitor, "2002", "10.00").await;
    shop.eventually("SELECT customer_id IS NOT NULL FROM orders WHERE order_number = '2002'")
        .await;
    assert_eq!(
        shop.customer_of("2001").await,
        shop.customer_of("2002").await
    );
    assert_eq!(
        shop.first_flags().await,
        vec![("2001".to_string(), true), ("2002".to_string(), false)]
    );

    let day = shop.day_of("2001").await;
    shop.import_spend(&day, "50.00");
    shop.run_jobs().await;
    let all = shop.cac_all(&day).await;
    assert_eq!(
        (&all["new_customers"], &all["cac"]),
        (&json!("1.00"), &json!("50.00")),
        "{all}"
    );
    assert_eq!(
        shop.repeat_all(&day).await,
        json!({"cohort": "all", "customers": 1, "repeat_customers": 1, "rate": 1.0})
    );
    shop.app.stop().await;
}

#[tokio::test]
async fn the_same_person_ordering_again_from_another_device_after_login_is_a_repeat_customer() {
    let shop = Shop::new().await;
    let (laptop, phone) = (Uuid::now_v7(), Uuid::now_v7());
    shop.page_view(laptop, PAID_SEARCH).await;
    shop.identify(laptop, "user-7", Some("ann@example.com"))
        .await;
    shop.purchase(laptop, "3001", "42.00").await;
    // Another device: a login with the same user id (no email this time), then an order.
    shop.page_view(phone, PRODUCT).await;
    shop.identify(phone, "user-7", None).await;
    shop.purchase(phone, "3002", "18.00").await;
    shop.eventually(
        "SELECT count(*) = 2 FROM orders WHERE customer_id IS NOT NULL
           AND order_number IN ('3001', '3002')",
    )
    .await;

    assert_eq!(
        shop.customer_of("3001").await,
        shop.customer_of("3002").await
    );
    assert_eq!(
        shop.customers().await,
        vec![(true, Some("user-7".to_string()), None)]
    );
    assert_eq!(
        shop.first_flags().await,
        vec![("3001".to_string(), true), ("3002".to_string(), false)]
    );

    let day = shop.day_of("3001").await;
    shop.import_spend(&day, "30.00");
    shop.run_jobs().await;
    let all = shop.cac_all(&day).await;
    assert_eq!(
        (&all["new_customers"], &all["cac"]),
        (&json!("1.00"), &json!("30.00")),
        "{all}"
    );
    assert_eq!(
        shop.repeat_all(&day).await,
        json!({"cohort": "all", "customers": 1, "repeat_customers": 1, "rate": 1.0})
    );
    shop.app.stop().await;
}

#[tokio::test]
async fn a_guest_order_joins_the_identified_customer_when_its_device_logs_in_later_and_first_orders_follow()
 {
    let shop = Shop::new().await;
    let (laptop, phone) = (Uuid::now_v7(), Uuid::now_v7());
    // The phone buys as a guest first; then the laptop logs in as user-7 and buys.
    shop.page_view(phone, PAID_SEARCH).await;
    shop.purchase(phone, "4001", "20.00").await;
    shop.page_view(laptop, PRODUCT).await;
    shop.identify(laptop, "user-7", Some("ann@example.com"))
        .await;
    shop.purchase(laptop, "4002", "30.00").await;
    shop.eventually(
        "SELECT count(*) = 2 FROM orders WHERE customer_id IS NOT NULL
           AND order_number IN ('4001', '4002')",
    )
    .await;
    shop.notes_done().await;
    // Two customers so far, each with its first order: the guest and user-7.
    assert_ne!(
        shop.customer_of("4001").await,
        shop.customer_of("4002").await
    );
    assert_eq!(
        shop.first_flags().await,
        vec![("4001".to_string(), true), ("4002".to_string(), true)]
    );
    let day = shop.day_of("4001").await;
    shop.import_spend(&day, "30.00");
    shop.run_jobs().await;
    let all = shop.cac_all(&day).await;
    assert_eq!(
        (&all["new_customers"], &all["cac"]),
        (&json!("2.00"), &json!("15.00")),
        "{all}"
    );

    // The phone logs in as user-7: its guest order is user-7's, and, placed earlier, their
    // first; the laptop's order is now a repeat. The guest customer is gone.
    shop.identify(phone, "user-7", None).await;
    shop.eventually(
        "SELECT count(DISTINCT customer_id) = 1 FROM orders
         WHERE order_number IN ('4001', '4002')",
    )
    .await;
    shop.notes_done().await;
    assert_eq!(
        shop.customers().await,
        vec![(true, Some("user-7".to_string()), Some(phone))]
    );
    assert_eq!(
        shop.first_flags().await,
        vec![("4001".to_string(), true), ("4002".to_string(), false)]
    );
    let first_order_at: bool = sqlx::query_scalar(
        "SELECT c.first_order_at = o.placed_at FROM customers c
         JOIN orders o ON o.customer_id = c.customer_id WHERE o.order_number = '4001'",
    )
    .fetch_one(&shop.app.owner)
    .await
    .unwrap();
    assert!(first_order_at, "the customer's first order is the guest's");

    // The next incremental run redoes the day: one new customer, who came back.
    shop.run_jobs().await;
    let all = shop.cac_all(&day).await;
    assert_eq!(
        (&all["new_customers"], &all["cac"]),
        (&json!("1.00"), &json!("30.00")),
        "{all}"
    );
    assert_eq!(
        shop.repeat_all(&day).await,
        json!({"cohort": "all", "customers": 1, "repeat_customers": 1, "rate": 1.0})
    );
    shop.app.stop().await;
}

#[tokio::test]
async fn a_guest_who_identifies_later_stays_one_customer_now_known_by_user_id_and_email() {
    let shop = Shop::new().await;
    let visitor = Uuid::now_v7();
    shop.page_view(visitor, PRODUCT).await;
    shop.purchase(visitor, "5001", "20.00").await;
    shop.eventually("SELECT customer_id IS NOT NULL FROM orders WHERE order_number = '5001'")
        .await;
    let guest = shop.customer_of("5001").await;
    assert_eq!(shop.customers().await, vec![(false, None, Some(visitor))]);

    shop.identify(visitor, "user-9", Some("bo@example.com"))
        .await;
    shop.eventually("SELECT user_id IS NOT NULL FROM customers")
        .await;
    assert_eq!(shop.customer_of("5001").await, guest);
    assert_eq!(
        shop.customers().await,
        vec![(true, Some("user-9".to_string()), Some(visitor))]
    );
    // Its next order, from another device after login, is a repeat.
    let phone = Uuid::now_v7();
    shop.identify(phone, "user-9", None).await;
    shop.purchase(phone, "5002", "5.00").await;
    shop.eventually("SELECT customer_id IS NOT NULL FROM orders WHERE order_number = '5002'")
        .await;
    assert_eq!(shop.customer_of("5002").await, guest);
    assert_eq!(
        shop.first_flags().await,
        vec![("5001".to_string(), true), ("5002".to_string(), false)]
    );
    shop.app.stop().await;
}

/// A Stripe `charge.succeeded` for order `number`, paid by `email`.
fn stripe_charge(number: &str, cents: i64, email: &str) -> String {
    let created = chrono::Utc::now().timestamp();
    json!({"id": format!("evt_{number}"), "object": "event", "type": "charge.succeeded",
        "created": created, "data": {"object": {
            "id": format!("ch_{number}"), "object": "charge", "amount": cents,
            "amount_captured": cents, "amount_refunded": 0, "currency": "eur",
            "status": "succeeded", "payment_intent": format!("pi_{number}"), "created": created,
            "billing_details": {"email": email},
            "metadata": {"order_id": number}}}})
    .to_string()
}

#[tokio::test]
async fn a_stripe_charge_naming_a_guest_order_s_email_merges_the_guest_into_that_customer() {
    let shop = Shop::new().await;
    let company = shop.app.company.id;
    let import = |charge: String| {
        let owner = shop.app.owner.clone();
        async move {
            lux::commerce::import::run(
                &owner,
                &secrets_key(),
                company.into(),
                lux::commerce::secrets::Provider::Stripe,
                &charge,
                &lux::clock::Clock::System,
            )
            .await
            .unwrap();
        }
    };
    // The email's customer bought earlier, through Stripe only.
    import(stripe_charge("6001", 1500, "cy@example.com")).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    // A guest buys twice with the snippet: a guest customer with two orders.
    let visitor = Uuid::now_v7();
    shop.page_view(visitor, PRODUCT).await;
    shop.purchase(visitor, "6002", "20.00").await;
    shop.purchase(visitor, "6003", "7.00").await;
    shop.eventually(
        "SELECT count(*) = 2 FROM orders WHERE customer_id IS NOT NULL
           AND order_number IN ('6002', '6003')",
    )
    .await;
    assert_eq!(shop.customers().await.len(), 2);
    assert_eq!(
        shop.first_flags().await,
        vec![
            ("6001".to_string(), true),
            ("6002".to_string(), true),
            ("6003".to_string(), false)
        ]
    );

    // Stripe's charge for 6002 names the email: the guest is that customer, both its orders
    // go there, and the customer's first order stays the Stripe one.
    import(stripe_charge("6002", 2000, "cy@example.com")).await;
    let email_customer = shop.customer_of("6001").await;
    assert_eq!(shop.customer_of("6002").await, email_customer);
    assert_eq!(shop.customer_of("6003").await, email_customer);
    assert_eq!(
        shop.customers().await,
        vec![(true, None, Some(visitor))],
        "the guest is gone; its device is the email customer's"
    );
    assert_eq!(
        shop.first_flags().await,
        vec![
            ("6001".to_string(), true),
            ("6002".to_string(), false),
            ("6003".to_string(), false)
        ]
    );
    // A later guest order from that device is the same customer's.
    shop.purchase(visitor, "6004", "3.00").await;
    shop.eventually("SELECT customer_id IS NOT NULL FROM orders WHERE order_number = '6004'")
        .await;
    assert_eq!(shop.customer_of("6004").await, email_customer);
    shop.app.stop().await;
}

#[tokio::test]
async fn orders_left_without_a_customer_before_the_migration_get_one_and_their_day_is_redone() {
    let shop = Shop::new().await;
    let (guest, laptop) = (Uuid::now_v7(), Uuid::now_v7());
    shop.page_view(guest, PRODUCT).await;
    shop.purchase(guest, "7001", "20.00").await;
    shop.identify(laptop, "user-7", Some("ann@example.com"))
        .await;
    shop.purchase(laptop, "7002", "30.00").await;
    shop.eventually("SELECT count(*) = 2 FROM orders WHERE customer_id IS NOT NULL")
        .await;
    shop.notes_done().await;
    // As the code before this fix left them: no customer, no first order.
    for sql in [
        "UPDATE orders SET customer_id = NULL, is_first_order = false",
        "DELETE FROM customers",
    ] {
        sqlx::query(sql).execute(&shop.app.owner).await.unwrap();
    }
    let day = shop.day_of("7001").await;
    shop.import_spend(&day, "30.00");
    shop.run_jobs().await;
    let all = shop.cac_all(&day).await;
    assert_eq!(
        (&all["new_customers"], &all["cac"]),
        (&json!("0.00"), &json!(null)),
        "{all}"
    );

    // The migration's backfill statement, as written in the migration.
    let migration =
        include_str!("../../migrations/20261203000011_order_customers_via_identity.sql");
    let backfill = &migration[migration
        .find("INSERT INTO customer_relinks (company_id)")
        .expect("the backfill statement")..];
    sqlx::query(sqlx::AssertSqlSafe(backfill.to_string()))
        .execute(&shop.app.owner)
        .await
        .unwrap();
    shop.notes_done().await;
    assert_eq!(
        shop.customers().await.len(),
        2,
        "a guest and user-7 are customers"
    );
    assert_eq!(
        shop.first_flags().await,
        vec![("7001".to_string(), true), ("7002".to_string(), true)]
    );
    shop.run_jobs().await;
    let all = shop.cac_all(&day).await;
    assert_eq!(
        (&all["new_customers"], &all["cac"]),
        (&json!("2.00"), &json!("15.00")),
        "{all}"
    );
    shop.app.stop().await;
}
