//! Attribution (SPEC §6) on hand-computed journeys: events through the real `/e`, orders
//! through the real order paths, the job run as the service runs it, answers written here.

use chrono::{DateTime, Duration, DurationRound, Utc};
use lux::jobs::{Job, Mode, RunReport, WhenBusy};
use serde_json::{Value, json};
use sqlx::{PgPool, Row};
use uuid::Uuid;

use crate::helpers::{
    Company, TestApp, create_company, lux_error, lux_json, secrets_key, test_options,
};

const PAID_SEARCH: &str =
    "https://shop.example/?utm_source=google&utm_medium=cpc&utm_campaign=brand";
const EMAIL: &str = "https://shop.example/?utm_source=newsletter&utm_medium=email&utm_campaign=nov";
const PAID_SOCIAL: &str =
    "https://shop.example/?utm_source=facebook&utm_medium=paid_social&utm_campaign=bf";
const DIRECT: &str = "https://shop.example/";

/// One company's story: the purchase happens at `t`, everything else some hours before.
struct Journey {
    app: TestApp,
    /// The service's own pool (`lux_app`, row-level security on), as the scheduler uses.
    pool: PgPool,
    t: DateTime<Utc>,
}

/// What the job stored on an order.
#[derive(Debug, PartialEq)]
struct Attributed {
    status: String,
    first: (String, Option<String>),
    last: (String, Option<String>),
    first_session: Option<Uuid>,
    last_session: Option<Uuid>,
    path: Vec<String>,
    rules: String,
}

impl Journey {
    async fn new() -> Journey {
        let app = TestApp::spawn().await;
        let pool = lux::db::connect_app(&app.db.url, 4).unwrap();
        let t = (Utc::now() - Duration::hours(1))
            .duration_trunc(Duration::seconds(1))
            .unwrap();
        Journey { app, pool, t }
    }

    fn before(&self, hours: i64) -> String {
        (self.t - Duration::hours(hours)).to_rfc3339()
    }

    /// A minute after `before(hours)`: the same visit.
    fn just_after(&self, hours: i64) -> String {
        (self.t - Duration::hours(hours) + Duration::minutes(1)).to_rfc3339()
    }

    async fn send(&self, company: &Company, events: Value) {
        let response = self
            .app
            .client
            .post(format!("{}/e", self.app.base))
            .bearer_auth(&company.secret_key)
            .header("user-agent", crate::helpers::BROWSER_UA)
            .json(&events)
            .send()
            .await
            .unwrap();
        let (status, body) = crate::helpers::answer(response).await;
        assert_eq!(status, 202, "{body}");
        assert!(body["rejected"].as_array().unwrap().is_empty(), "{body}");
    }

    /// A landing on `url` `hours` before the purchase, from `referrer` if any.
    async fn visit(&self, visitor: Uuid, url: &str, hours: i64) {
        self.visit_for(&self.app.company, visitor, url, hours).await;
    }

    async fn visit_for(&self, company: &Company, visitor: Uuid, url: &str, hours: i64) {
        let event = json!({"event_id": Uuid::now_v7(), "event_name": "page_view",
            "visitor_id": visitor, "page_url": url, "occurred_at": self.before(hours)});
        self.send(company, event).await;
    }

    async fn organic_search_visit(&self, visitor: Uuid, hours: i64) {
        let event = json!({"event_id": Uuid::now_v7(), "event_name": "page_view",
            "visitor_id": visitor, "page_url": DIRECT, "referrer": "https://www.google.com/",
            "occurred_at": self.before(hours)});
        self.send(&self.app.company, event).await;
    }

    /// A login during the visit that started `hours` before the purchase.
    async fn login(&self, visitor: Uuid, user: &str, hours: i64) {
        let event = json!({"event_id": Uuid::now_v7(), "event_name": "login",
            "visitor_id": visitor, "user_id": user, "page_url": DIRECT,
            "occurred_at": self.just_after(hours)});
        self.send(&self.app.company, event).await;
    }

    /// A purchase at `t` on `visitor`'s device, confirmed by the store's server.
    async fn purchase(&self, visitor: Uuid, order: &str, user: Option<&str>) {
        self.purchase_for(&self.app.company, visitor, order, user)
            .await;
    }

    async fn purchase_for(
        &self,
        company: &Company,
        visitor: Uuid,
        order: &str,
        user: Option<&str>,
    ) {
        let mut event = json!({"event_id": Uuid::now_v7(), "event_name": "purchase",
            "visitor_id": visitor, "occurred_at": self.t.to_rfc3339(),
            "properties": {"order_id": order, "value": "100.00", "currency": "EUR"}});
        if let Some(user) = user {
            event["user_id"] = json!(user);
        }
        self.send(company, event).await;
        self.wait_for_order(company.id, order).await;
    }

    async fn wait_for_order(&self, company: Uuid, order: &str) {
        crate::helpers::wait_for_order(&self.app.owner, company, order).await;
    }

    /// Moves every change stamp an hour back, as if everything so far had been written long
    /// ago: the next run then finds orders only through what changes after this (not
    /// because the order itself was written within the watermark's margin).
    async fn age_change_stamps(&self) {
        for sql in [
            "UPDATE orders SET updated_at = updated_at - interval '1 hour'",
            "UPDATE sessions SET created_at = created_at - interval '1 hour'",
            "UPDATE identity_keys SET linked_at = linked_at - interval '1 hour'",
        ] {
            sqlx::query(sql).execute(&self.app.owner).await.unwrap();
        }
    }

    async fn attribute(&self) -> RunReport {
        self.run(Mode::Incremental).await
    }

    /// An incremental run that starts at `now` (the service's clock set there).
    async fn attribute_at(&self, now: DateTime<Utc>) -> RunReport {
        self.run_at(Mode::Incremental, now).await
    }

    async fn run(&self, mode: Mode) -> RunReport {
        self.run_at(mode, Utc::now()).await
    }

    async fn run_at(&self, mode: Mode, now: DateTime<Utc>) -> RunReport {
        lux::jobs::run(
            &self.pool,
            self.app.company.id.into(),
            Job::Attribution,
            (mode, WhenBusy::Wait),
            now,
        )
        .await
        .expect("attribution runs")
        .expect("nobody else holds the lock")
    }

    async fn order(&self, number: &str) -> Attributed {
        let r = sqlx::query(
            "SELECT attribution_status, first_touch_channel, first_touch_campaign,
                    last_touch_channel, last_touch_campaign, first_touch_session_id,
                    last_touch_session_id, channel_path, attribution_rules
             FROM orders WHERE company_id = $1 AND order_number = $2",
        )
        .bind(self.app.company.id)
        .bind(number)
        .fetch_one(&self.app.owner)
        .await
        .unwrap();
        Attributed {
            status: r.get(0),
            first: (r.get(1), r.get(2)),
            last: (r.get(3), r.get(4)),
            first_session: r.get(5),
            last_session: r.get(6),
            path: r.get(7),
            rules: r.get(8),
        }
    }

    /// (channel, credit) of an order under a model, in path order.
    async fn credits(&self, number: &str, model: &str) -> Vec<(String, String)> {
        sqlx::query_as(
            "SELECT c.channel, c.credit::text FROM attribution_credits c
             JOIN orders o USING (company_id, order_id)
             WHERE c.company_id = $1 AND o.order_number = $2 AND c.model = $3
             ORDER BY c.touch_index",
        )
        .bind(self.app.company.id)
        .bind(number)
        .bind(model)
        .fetch_all(&self.app.owner)
        .await
        .unwrap()
    }

    /// The session of `visitor` that started `hours` before the purchase.
    async fn session(&self, visitor: Uuid, hours: i64) -> Uuid {
        sqlx::query_scalar(
            "SELECT session_id FROM sessions
             WHERE company_id = $1 AND visitor_id = $2 AND started_at = $3",
        )
        .bind(self.app.company.id)
        .bind(visitor)
        .bind(self.t - Duration::hours(hours))
        .fetch_one(&self.app.owner)
        .await
        .unwrap()
    }
}

fn touch(channel: &str, campaign: Option<&str>) -> (String, Option<String>) {
    (channel.to_string(), campaign.map(str::to_string))
}

fn unattributed() -> (String, Option<String>) {
    touch("Unattributed", None)
}

fn rows(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected
        .iter()
        .map(|(c, v)| (c.to_string(), v.to_string()))
        .collect()
}

#[tokio::test]
async fn a_single_session_earns_everything() {
    let j = Journey::new().await;
    let v = Uuid::new_v4();
    j.visit(v, PAID_SEARCH, 2).await;
    j.purchase(v, "1001", None).await;
    let report = j.attribute().await;
    assert_eq!((report.rows_examined, report.rows_changed), (1, 1));

    let session = j.session(v, 2).await;
    let order = j.order("1001").await;
    assert_eq!(order.status, "attributed");
    assert_eq!(order.first, touch("Paid Search", Some("brand")));
    assert_eq!(order.last, touch("Paid Search", Some("brand")));
    assert_eq!(
        (order.first_session, order.last_session),
        (Some(session), Some(session))
    );
    assert_eq!(order.path, ["Paid Search"]);
    assert!(
        order.rules.starts_with("v1 lookback=30d last_touch=72h"),
        "{}",
        order.rules
    );
    for model in [
        "first_touch",
        "last_touch",
        "linear",
        "time_decay",
        "position_based",
        "last_non_direct",
    ] {
        assert_eq!(
            j.credits("1001", model).await,
            rows(&[("Paid Search", "1.000000000")]),
            "{model}"
        );
    }
}

#[tokio::test]
async fn paid_search_then_email_then_direct() {
    let j = Journey::new().await;
    let v = Uuid::new_v4();
    j.visit(v, PAID_SEARCH, 20 * 24).await;
    j.visit(v, EMAIL, 48).await;
    j.visit(v, DIRECT, 1).await;
    j.purchase(v, "1002", None).await;
    j.attribute().await;

    let order = j.order("1002").await;
    assert_eq!(order.status, "attributed");
    assert_eq!(order.first, touch("Paid Search", Some("brand")));
    assert_eq!(order.last, touch("Direct", None));
    assert_eq!(order.first_session, Some(j.session(v, 20 * 24).await));
    assert_eq!(order.last_session, Some(j.session(v, 1).await));
    assert_eq!(order.path, ["Paid Search", "Email", "Direct"]);

    let all = |a, b, c| rows(&[("Paid Search", a), ("Email", b), ("Direct", c)]);
    // Linear: a third each; the billionth left over goes to the first touch.
    assert_eq!(
        j.credits("1002", "linear").await,
        all("0.333333334", "0.333333333", "0.333333333")
    );
    // Position based 40/20/40.
    assert_eq!(
        j.credits("1002", "position_based").await,
        all("0.400000000", "0.200000000", "0.400000000")
    );
    // Time decay, 7-day half-life: weights 2^(-480/168), 2^(-48/168), 2^(-1/168)
    // = 0.138011, 0.820335, 0.995883 of a sum of 1.954229.
    assert_eq!(
        j.credits("1002", "time_decay").await,
        all("0.070621804", "0.419774389", "0.509603807")
    );
    // Last non-direct passes over the direct visit.
    assert_eq!(
        j.credits("1002", "last_non_direct").await,
        rows(&[("Email", "1.000000000")])
    );
    assert_eq!(
        j.credits("1002", "first_touch").await,
        rows(&[("Paid Search", "1.000000000")])
    );
    assert_eq!(
        j.credits("1002", "last_touch").await,
        rows(&[("Direct", "1.000000000")])
    );
}

#[tokio::test]
async fn a_session_31_days_before_is_not_a_touch() {
    let j = Journey::new().await;
    let (v, w) = (Uuid::new_v4(), Uuid::new_v4());
    j.visit(v, PAID_SEARCH, 31 * 24).await;
    j.visit(v, EMAIL, 24).await;
    j.purchase(v, "1003", None).await;
    // Only a session 31 days before: linked, but no touch at all.
    j.visit(w, PAID_SEARCH, 31 * 24).await;
    j.purchase(w, "1004", None).await;
    j.attribute().await;

    let order = j.order("1003").await;
    assert_eq!(order.first, touch("Email", Some("nov")));
    assert_eq!(order.path, ["Email"]);
    let order = j.order("1004").await;
    assert_eq!(order.status, "no_touch");
    assert_eq!((order.first, order.last), (unattributed(), unattributed()));
    assert_eq!((order.first_session, order.last_session), (None, None));
    assert!(order.path.is_empty());
    assert_eq!(
        j.credits("1004", "linear").await,
        rows(&[("Unattributed", "1.000000000")])
    );
}

#[tokio::test]
async fn nothing_in_the_last_72_hours_leaves_the_last_touch_unattributed() {
    let j = Journey::new().await;
    let v = Uuid::new_v4();
    j.visit(v, PAID_SOCIAL, 5 * 24).await;
    j.purchase(v, "1005", None).await;
    j.attribute().await;

    let order = j.order("1005").await;
    assert_eq!(order.status, "no_recent_touch");
    assert_eq!(order.first, touch("Paid Social", Some("bf")));
    assert_eq!(order.last, unattributed());
    assert_eq!(order.last_session, None);
    assert_eq!(
        j.credits("1005", "last_touch").await,
        rows(&[("Unattributed", "1.000000000")])
    );
    // The multi-touch models still credit the touches of the lookback window.
    assert_eq!(
        j.credits("1005", "linear").await,
        rows(&[("Paid Social", "1.000000000")])
    );
}

#[tokio::test]
async fn two_devices_joined_by_a_login_and_a_late_link_re_attributes() {
    let j = Journey::new().await;
    let (phone, laptop) = (Uuid::new_v4(), Uuid::new_v4());
    j.organic_search_visit(laptop, 24).await;
    j.purchase(laptop, "1006", Some("u-1")).await;
    j.attribute().await;
    let order = j.order("1006").await;
    assert_eq!(order.first, touch("Organic Search", None));
    j.age_change_stamps().await;

    // The phone's visit and login reach us late (an app flushing its offline queue): the
    // login joins the phone to the buyer, and the next run finds the order again.
    j.visit(phone, PAID_SOCIAL, 10 * 24).await;
    j.login(phone, "u-1", 10 * 24).await;
    let report = j.attribute().await;
    assert!(!report.full_run);
    assert_eq!((report.rows_examined, report.rows_changed), (1, 1));

    let order = j.order("1006").await;
    assert_eq!(order.status, "attributed");
    assert_eq!(order.first, touch("Paid Social", Some("bf")));
    assert_eq!(order.last, touch("Organic Search", None));
    assert_eq!(order.first_session, Some(j.session(phone, 10 * 24).await));
    assert_eq!(order.last_session, Some(j.session(laptop, 24).await));
    assert_eq!(order.path, ["Paid Social", "Organic Search"]);
    assert_eq!(
        j.credits("1006", "position_based").await,
        rows(&[
            ("Paid Social", "0.500000000"),
            ("Organic Search", "0.500000000")
        ])
    );
}

#[tokio::test]
async fn a_tie_on_start_time_breaks_by_channel_name() {
    let j = Journey::new().await;
    let (phone, laptop) = (Uuid::new_v4(), Uuid::new_v4());
    // Both devices land at the same second, five hours before the purchase.
    j.visit(laptop, PAID_SEARCH, 5).await;
    j.visit(phone, EMAIL, 5).await;
    j.login(phone, "u-2", 5).await;
    j.purchase(laptop, "1007", Some("u-2")).await;
    j.attribute().await;

    // Same start: ordered by channel name, so "Email" comes before "Paid Search".
    let order = j.order("1007").await;
    assert_eq!(order.path, ["Email", "Paid Search"]);
    assert_eq!(order.first, touch("Email", Some("nov")));
    assert_eq!(order.last, touch("Paid Search", Some("brand")));
    assert_eq!(
        j.credits("1007", "linear").await,
        rows(&[("Email", "0.500000000"), ("Paid Search", "0.500000000")])
    );
    // Attributing again from scratch gives the same answer.
    assert_eq!(j.run(Mode::Full).await.rows_changed, 0);
    assert_eq!(j.order("1007").await, order);
}

#[tokio::test]
async fn an_order_imported_before_its_events_is_re_attributed_when_they_come() {
    let j = Journey::new().await;
    let time = j.t.format("%Y-%m-%dT%H:%M:%S").to_string();
    let woo = json!({
        "id": 77, "number": "1008", "status": "processing", "currency": "EUR",
        "total": "59.00", "discount_total": "0.00", "shipping_total": "0.00", "total_tax": "0.00",
        "customer_id": 0, "date_created_gmt": time, "date_modified_gmt": time,
        "billing": {"email": "Jane@Example.com"}, "meta_data": [], "refunds": []
    });
    lux::commerce::import::run(
        &j.app.owner,
        &secrets_key(),
        j.app.company.id.into(),
        lux::commerce::secrets::Provider::WooCommerce,
        &woo.to_string(),
        &lux::clock::Clock::System,
    )
    .await
    .unwrap();
    j.attribute().await;
    let order = j.order("1008").await;
    assert_eq!(order.status, "no_visitor");
    assert_eq!((order.first, order.last), (unattributed(), unattributed()));
    assert_eq!(
        j.credits("1008", "time_decay").await,
        rows(&[("Unattributed", "1.000000000")])
    );
    j.age_change_stamps().await;

    // The events arrive: an email-campaign visit two days before, and the lead form that
    // names the same address.
    let v = Uuid::new_v4();
    j.visit(v, EMAIL, 50).await;
    let lead = json!({"event_id": Uuid::now_v7(), "event_name": "lead_submit", "visitor_id": v,
        "email": "jane@example.com", "page_url": DIRECT, "occurred_at": j.just_after(50)});
    j.send(&j.app.company, lead).await;
    let report = j.attribute().await;
    assert_eq!((report.rows_examined, report.rows_changed), (1, 1));
    let order = j.order("1008").await;
    assert_eq!(order.status, "attributed");
    assert_eq!(order.first, touch("Email", Some("nov")));
    assert_eq!(order.last, touch("Email", Some("nov")));
    assert_eq!(order.last_session, Some(j.session(v, 50).await));
}

/// Every attribution column of every order and every credit row, as text; with the time of
/// computation or without it.
async fn snapshot(j: &Journey, with_time: bool) -> Vec<String> {
    let orders: Vec<String> = sqlx::query_scalar(
        "SELECT concat_ws('|', order_id, attribution_status, first_touch_channel,
                first_touch_source, first_touch_medium, first_touch_campaign,
                first_touch_session_id, first_touch_at, last_touch_channel, last_touch_source,
                last_touch_medium, last_touch_campaign, last_touch_session_id, last_touch_at,
                channel_path, attribution_rules, attribution_digest,
                CASE WHEN $1 THEN attributed_at END)
         FROM orders ORDER BY order_id",
    )
    .bind(with_time)
    .fetch_all(&j.app.owner)
    .await
    .unwrap();
    let credits: Vec<String> = sqlx::query_scalar(
        "SELECT concat_ws('|', order_id, model, touch_index, session_id, started_at, channel,
                source, medium, campaign, credit)
         FROM attribution_credits ORDER BY order_id, model, touch_index",
    )
    .fetch_all(&j.app.owner)
    .await
    .unwrap();
    orders.into_iter().chain(credits).collect()
}

/// A few journeys at once: several touches, a lone one, none.
async fn mixed_journeys(j: &Journey) {
    for (i, touches) in [
        vec![(PAID_SEARCH, 20 * 24), (EMAIL, 48), (DIRECT, 1)],
        vec![
            (PAID_SOCIAL, 100),
            (EMAIL, 30),
            (PAID_SEARCH, 29),
            (DIRECT, 2),
        ],
        vec![(EMAIL, 3)],
        vec![(DIRECT, 40 * 24)],
    ]
    .into_iter()
    .enumerate()
    {
        let v = Uuid::new_v4();
        for (url, hours) in touches {
            j.visit(v, url, hours).await;
        }
        j.purchase(v, &format!("20{i}"), None).await;
    }
}

#[tokio::test]
async fn credits_sum_to_one_and_attributing_twice_changes_nothing() {
    let j = Journey::new().await;
    mixed_journeys(&j).await;
    let first = j.attribute().await;
    assert!(first.full_run);
    assert_eq!((first.rows_examined, first.rows_changed), (4, 4));

    let not_one = j
        .app
        .count(
            "SELECT count(*) FROM (SELECT order_id, model, sum(credit) AS total
             FROM attribution_credits GROUP BY order_id, model) t WHERE total <> 1",
        )
        .await;
    assert_eq!(
        not_one, 0,
        "every model's credits sum to exactly 1 per order"
    );
    let groups = j
        .app
        .count("SELECT count(DISTINCT (order_id, model)) FROM attribution_credits")
        .await;
    assert_eq!(groups, 4 * 6, "every order has credits in all six models");

    let before = snapshot(&j, true).await;
    let again = j.attribute().await;
    assert!(!again.full_run);
    assert_eq!(again.rows_changed, 0);
    let rebuilt = j.run(Mode::Full).await;
    assert_eq!((rebuilt.rows_examined, rebuilt.rows_changed), (4, 0));
    assert_eq!(
        snapshot(&j, true).await,
        before,
        "the same data gives identical rows"
    );

    // Computed again from nothing, the rows are the same too (but for when they were made).
    let without_time = snapshot(&j, false).await;
    sqlx::query("DELETE FROM attribution_credits")
        .execute(&j.app.owner)
        .await
        .unwrap();
    sqlx::query("UPDATE orders SET attribution_digest = NULL, first_touch_channel = NULL")
        .execute(&j.app.owner)
        .await
        .unwrap();
    assert_eq!(j.run(Mode::Full).await.rows_changed, 4);
    assert_eq!(
        snapshot(&j, false).await,
        without_time,
        "recomputed from scratch: identical rows"
    );

    let runs: Vec<(String, bool, i64, i64)> = sqlx::query_as(
        "SELECT status, full_run, rows_examined, rows_changed FROM job_runs
         WHERE job = 'attribution' ORDER BY started_at",
    )
    .fetch_all(&j.app.owner)
    .await
    .unwrap();
    assert_eq!(runs.len(), 4);
    assert!(runs.iter().all(|r| r.0 == "succeeded"), "{runs:?}");
    assert_eq!(
        runs.iter().map(|r| r.1).collect::<Vec<_>>(),
        [true, false, true, true]
    );
}

#[tokio::test]
async fn changing_the_settings_re_attributes_every_order() {
    let j = Journey::new().await;
    let v = Uuid::new_v4();
    j.visit(v, PAID_SEARCH, 20 * 24).await;
    j.visit(v, EMAIL, 48).await;
    j.purchase(v, "1009", None).await;
    j.attribute().await;
    assert_eq!(
        j.order("1009").await.first,
        touch("Paid Search", Some("brand"))
    );

    // A one-week lookback and email excluded as a touch, set as an operator would.
    let company = j.app.company.id.to_string();
    let refused = lux_error(
        &j.app.db.url,
        &[
            "company",
            "attribution",
            &company,
            "--models",
            "linear,u_shaped",
        ],
    );
    assert!(refused.contains("no model \"u_shaped\""), "{refused}");
    let shown = lux_json(
        &j.app.db.url,
        &[
            "company",
            "attribution",
            &company,
            "--lookback-days",
            "7",
            "--exclude-channel",
            "Email",
        ],
    );
    assert_eq!(shown["lookback_days"], 7);
    assert_eq!(shown["last_touch_hours"], 72);
    assert_eq!(shown["excluded_channels"], json!(["Email"]));
    let report = j.attribute().await;
    assert!(report.full_run, "new rules redo everything");
    assert_eq!(report.rows_changed, 1);
    let order = j.order("1009").await;
    assert_eq!(order.status, "no_touch");
    assert!(order.rules.contains("lookback=7d"), "{}", order.rules);
    assert!(order.rules.contains("excluded=[Email]"), "{}", order.rules);

    // Settings that make no sense fail the run with the reason, recorded.
    sqlx::query(
        "UPDATE companies SET settings = '{\"attribution\": {\"lookback_days\": 0}}'
         WHERE company_id = $1",
    )
    .bind(j.app.company.id)
    .execute(&j.app.owner)
    .await
    .unwrap();
    let error = lux::jobs::run(
        &j.pool,
        j.app.company.id.into(),
        Job::Attribution,
        (Mode::Incremental, WhenBusy::Wait),
        chrono::Utc::now(),
    )
    .await
    .unwrap_err();
    assert!(format!("{error:#}").contains("lookback_days"), "{error:#}");
    let recorded: String = sqlx::query_scalar(
        "SELECT error FROM job_runs WHERE status = 'failed' ORDER BY started_at DESC LIMIT 1",
    )
    .fetch_one(&j.app.owner)
    .await
    .unwrap();
    assert!(recorded.contains("lookback_days"), "{recorded}");
}

#[tokio::test]
async fn another_companys_sessions_never_count() {
    let j = Journey::new().await;
    let b = create_company(&j.app.owner, "Other shop").await;
    // The same user id and visitor id in company B, with a paid search visit.
    let v = Uuid::new_v4();
    j.visit_for(&b, v, PAID_SEARCH, 5).await;
    j.purchase_for(&b, v, "1", Some("u-3")).await;
    j.purchase(v, "1010", Some("u-3")).await;

    // B's job attributes B's order and leaves A's alone.
    let report = lux::jobs::run(
        &j.pool,
        b.id.into(),
        Job::Attribution,
        (Mode::Incremental, WhenBusy::Wait),
        chrono::Utc::now(),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(report.rows_changed, 1);
    assert_eq!(
        j.app
            .count("SELECT count(*) FROM orders WHERE attributed_at IS NOT NULL")
            .await,
        1
    );
    j.attribute().await;
    let order = j.order("1010").await;
    assert_eq!(order.status, "no_touch");
    assert_eq!(order.first, unattributed());
}

#[tokio::test]
async fn the_service_attributes_on_its_own_and_the_command_line_runs_the_job() {
    let mut options = test_options();
    options.jobs_interval = Some(std::time::Duration::from_millis(300));
    options.pool_size = 8;
    let app = TestApp::spawn_with(options).await;
    let pool = lux::db::connect_app(&app.db.url, 2).unwrap();
    let j = Journey {
        app,
        pool,
        t: (Utc::now() - Duration::hours(1))
            .duration_trunc(Duration::seconds(1))
            .unwrap(),
    };
    let v = Uuid::new_v4();
    j.visit(v, EMAIL, 3).await;
    j.purchase(v, "1011", None).await;
    let mut attributed = false;
    for _ in 0..100 {
        if j.app
            .count("SELECT count(*) FROM orders WHERE attribution_status = 'attributed'")
            .await
            == 1
        {
            attributed = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(attributed, "the scheduler attributed the order");
    assert_eq!(j.order("1011").await.first, touch("Email", Some("nov")));

    // `lux jobs run attribution --full` against the same database, as an operator would. The
    // command waits for the job's lock, which the scheduler may hold: it runs off this
    // runtime's thread, or waiting for it would stop the scheduler from ever releasing it.
    let company = j.app.company.id.to_string();
    let url = j.app.db.url.clone();
    let report = tokio::task::spawn_blocking(move || {
        lux_json(
            &url,
            &[
                "jobs",
                "run",
                "attribution",
                "--full",
                "--company",
                &company,
            ],
        )
    })
    .await
    .expect("the command ran");
    assert_eq!(report["job"], "attribution");
    assert_eq!(report["full_run"], true);
    assert_eq!(report["rows_examined"], 1);
    assert_eq!(report["rows_changed"], 0);

    let error = lux_error(&j.app.db.url, &["jobs", "run", "attributoin"]);
    assert!(
        error.contains("invalid value 'attributoin'")
            && error.contains(
                "[possible values: all, attribution, rollups, creative_fatigue, retention]"
            ),
        "{error}"
    );
}

#[tokio::test]
async fn window_edges_hold_in_the_database_and_bot_sessions_never_count() {
    let j = Journey::new().await;
    let v = Uuid::new_v4();
    // Exactly 30 days and exactly 72 hours before: both inside.
    j.visit(v, PAID_SEARCH, 30 * 24).await;
    j.visit(v, EMAIL, 72).await;
    // A crawler's visit on the same visitor id an hour before: flagged, never a touch.
    let bot = json!({"event_id": Uuid::now_v7(), "event_name": "page_view", "visitor_id": v,
        "page_url": PAID_SOCIAL, "occurred_at": j.before(1),
        "user_agent": "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"});
    j.send(&j.app.company, bot).await;
    assert_eq!(
        j.app
            .count("SELECT count(*) FROM sessions WHERE is_bot")
            .await,
        1
    );
    j.purchase(v, "1012", None).await;
    j.attribute().await;
    let order = j.order("1012").await;
    assert_eq!(order.status, "attributed");
    assert_eq!(order.path, ["Paid Search", "Email"]);
    assert_eq!(order.first, touch("Paid Search", Some("brand")));
    assert_eq!(order.last, touch("Email", Some("nov")));
}

#[tokio::test]
async fn a_shared_device_taken_over_by_another_user_stops_counting_for_the_first() {
    let j = Journey::new().await;
    let (laptop, tablet) = (Uuid::new_v4(), Uuid::new_v4());
    // User a browses from a family tablet (paid social), then buys on a laptop.
    j.visit(tablet, PAID_SOCIAL, 48).await;
    j.login(tablet, "a", 48).await;
    j.visit(laptop, EMAIL, 2).await;
    j.purchase(laptop, "1013", Some("a")).await;
    j.attribute().await;
    assert_eq!(j.order("1013").await.path, ["Paid Social", "Email"]);
    j.age_change_stamps().await;

    // User b logs in on the tablet: it is b's device now, and a's order loses its visit.
    j.login(tablet, "b", 10).await;
    let report = j.attribute().await;
    assert_eq!((report.rows_examined, report.rows_changed), (1, 1));
    let order = j.order("1013").await;
    assert_eq!(order.path, ["Email"]);
    assert_eq!(order.first, touch("Email", Some("nov")));
}

async fn import_stripe(j: &Journey, event: Value) {
    lux::commerce::import::run(
        &j.app.owner,
        &secrets_key(),
        j.app.company.id.into(),
        lux::commerce::secrets::Provider::Stripe,
        &event.to_string(),
        &lux::clock::Clock::System,
    )
    .await
    .unwrap();
}

fn stripe_event(id: &str, kind: &str, object: Value) -> Value {
    json!({"id": id, "object": "event", "type": kind, "created": Utc::now().timestamp(),
           "data": {"object": object}})
}

#[tokio::test]
async fn merged_orders_leave_no_credits_behind_and_a_late_visitor_link_re_attributes() {
    let j = Journey::new().await;
    let v = Uuid::new_v4();
    j.visit(v, EMAIL, 3).await;
    // The thank-you page reports order 5001; Stripe's charge arrives without the number.
    j.purchase(v, "5001", None).await;
    let created = j.t.timestamp();
    import_stripe(
        &j,
        stripe_event(
            "evt_ch",
            "charge.succeeded",
            json!({"id": "ch_M1", "object": "charge", "amount": 10000, "amount_captured": 10000,
               "amount_refunded": 0, "currency": "eur", "status": "succeeded",
               "payment_intent": "pi_M1", "created": created, "metadata": {}}),
        ),
    )
    .await;
    assert_eq!(j.app.count("SELECT count(*) FROM orders").await, 2);
    j.attribute().await;
    assert_eq!(
        j.app
            .count("SELECT count(*) FROM attribution_credits")
            .await,
        12
    );

    // The payment intent names both: the two orders are one. It arrives by the real webhook,
    // so the service itself (`lux_app`, row-level security on) deletes the merged order.
    lux::commerce::secrets::set_secret(
        &j.app.owner,
        &secrets_key(),
        j.app.company.id,
        lux::commerce::secrets::Provider::Stripe,
        "whsec_attr",
    )
    .await
    .unwrap();
    let body = stripe_event(
        "evt_pi",
        "payment_intent.succeeded",
        json!({"id": "pi_M1", "object": "payment_intent", "amount": 10000,
           "amount_received": 10000, "currency": "eur", "status": "succeeded",
           "created": created, "metadata": {"lux_order_id": "5001"}}),
    )
    .to_string();
    let response = j
        .app
        .client
        .post(format!(
            "{}/webhooks/stripe/{}",
            j.app.base, j.app.company.id
        ))
        .header("content-type", "application/json")
        .header(
            "stripe-signature",
            lux::commerce::stripe::sign(body.as_bytes(), b"whsec_attr", Utc::now().timestamp()),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(j.app.count("SELECT count(*) FROM orders").await, 1);
    j.attribute().await;
    assert_eq!(
        j.app
            .count(
                "SELECT count(*) FROM attribution_credits c
                 WHERE NOT EXISTS (SELECT 1 FROM orders o WHERE o.order_id = c.order_id)"
            )
            .await,
        0,
        "no credits for an order that no longer exists"
    );
    assert_eq!(
        j.app
            .count("SELECT count(*) FROM attribution_credits")
            .await,
        6
    );
    assert_eq!(
        attribution_by_ref(&j, "order:5001").await,
        ("attributed".to_string(), "Email".to_string())
    );

    // A Stripe payment known only by its charge, then the checkout session that names the
    // visitor (client_reference_id): the order gains a visitor and is attributed again.
    let w = Uuid::new_v4();
    j.visit(w, PAID_SEARCH, 6).await;
    import_stripe(
        &j,
        stripe_event(
            "evt_ch2",
            "charge.succeeded",
            json!({"id": "ch_M2", "object": "charge", "amount": 2500, "amount_captured": 2500,
               "amount_refunded": 0, "currency": "eur", "status": "succeeded",
               "payment_intent": "pi_M2", "created": created, "metadata": {}}),
        ),
    )
    .await;
    j.attribute().await;
    assert_eq!(
        attribution_by_ref(&j, "stripe:pi_M2").await,
        ("no_visitor".to_string(), "Unattributed".to_string())
    );
    j.age_change_stamps().await;
    import_stripe(
        &j,
        stripe_event(
            "evt_cs2",
            "checkout.session.completed",
            json!({"id": "cs_M2", "object": "checkout.session", "amount_total": 2500,
               "currency": "eur", "payment_status": "paid", "status": "complete",
               "payment_intent": "pi_M2", "client_reference_id": w.to_string(),
               "created": created, "metadata": {}}),
        ),
    )
    .await;
    let report = j.attribute().await;
    assert_eq!((report.rows_examined, report.rows_changed), (1, 1));
    assert_eq!(
        attribution_by_ref(&j, "stripe:pi_M2").await,
        ("attributed".to_string(), "Paid Search".to_string())
    );
}

/// (status, last touch channel) of the order a source reference names.
async fn attribution_by_ref(j: &Journey, reference: &str) -> (String, String) {
    sqlx::query_as(
        "SELECT o.attribution_status, o.last_touch_channel FROM orders o
         JOIN order_refs r USING (company_id, order_id) WHERE r.ref = $1",
    )
    .bind(reference)
    .fetch_one(&j.app.owner)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_run_cut_short_never_leaves_its_lock_behind() {
    let j = Journey::new().await;
    mixed_journeys(&j).await;
    // Cut runs short at several points (before, while and after taking the lock).
    for micros in [200, 1_000, 3_000, 10_000] {
        let cut = tokio::time::timeout(
            std::time::Duration::from_micros(micros),
            lux::jobs::run(
                &j.pool,
                j.app.company.id.into(),
                Job::Attribution,
                (Mode::Full, WhenBusy::Skip),
                chrono::Utc::now(),
            ),
        )
        .await;
        drop(cut);
        // The scheduler's next try must get the lock (closing the connection that held it
        // takes a moment).
        let mut ran = None;
        for _ in 0..100 {
            ran = lux::jobs::run(
                &j.pool,
                j.app.company.id.into(),
                Job::Attribution,
                (Mode::Incremental, WhenBusy::Skip),
                chrono::Utc::now(),
            )
            .await
            .unwrap();
            if ran.is_some() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert!(
            ran.is_some(),
            "the lock was released after a cut at {micros} µs"
        );
        // And no connection is left holding it (a pooled connection that did would give the
        // lock to whichever run happens to get that connection, and starve the others).
        let mut held = 1;
        for _ in 0..100 {
            held = j
                .app
                .count(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted
                       AND database = (SELECT oid FROM pg_database
                                       WHERE datname = current_database())",
                )
                .await;
            if held == 0 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert_eq!(held, 0, "an advisory lock outlived a cut at {micros} µs");
    }
    assert_eq!(
        j.app
            .count("SELECT count(*) FROM job_runs WHERE status = 'running'")
            .await,
        0,
        "runs left running by a cut are closed by the next run"
    );
}

#[tokio::test]
async fn a_session_committed_while_a_run_works_is_picked_up_by_the_next_run() {
    let j = Journey::new().await;
    let v = Uuid::new_v4();
    j.visit(v, EMAIL, 30).await;
    j.purchase(v, "1014", None).await;
    j.attribute().await;
    assert_eq!(j.order("1014").await.path, ["Email"]);
    j.age_change_stamps().await;

    // A writer's transaction starts, stamps a late session with its start time, and is still
    // open when the next run starts; it commits only after that run has finished.
    let mut late = j.app.owner.begin().await.unwrap();
    sqlx::query(
        "INSERT INTO sessions (company_id, session_id, visitor_id, started_at, last_seen_at,
             source, medium, campaign, channel)
         VALUES ($1, $2, $3, $4, $4, 'google', 'cpc', 'brand', 'Paid Search')",
    )
    .bind(j.app.company.id)
    .bind(Uuid::new_v4())
    .bind(v)
    .bind(j.t - Duration::hours(40))
    .execute(&mut *late)
    .await
    .unwrap();
    // The next run starts 6 seconds later by the clock, longer than the watermark's 5-second
    // margin: only the open-transaction rule covers the session.
    let later = Utc::now() + Duration::seconds(6);
    let during = j.attribute_at(later).await;
    assert_eq!(during.rows_changed, 0, "the session is not committed yet");
    let watermark: DateTime<Utc> =
        sqlx::query_scalar("SELECT watermark FROM job_runs WHERE run_id = $1")
            .bind(during.run_id)
            .fetch_one(&j.app.owner)
            .await
            .unwrap();
    assert!(
        watermark < later - Duration::seconds(5),
        "the open transaction holds the watermark back: {watermark} vs {later}"
    );
    late.commit().await.unwrap();

    // Its stamp is older than that run's start, but not older than the run's watermark.
    let after = j.attribute_at(later + Duration::seconds(1)).await;
    assert_eq!((after.rows_examined, after.rows_changed), (1, 1));
    assert_eq!(j.order("1014").await.path, ["Paid Search", "Email"]);
}

#[tokio::test]
async fn a_run_that_failed_under_other_rules_makes_the_next_one_redo_everything() {
    let j = Journey::new().await;
    mixed_journeys(&j).await;
    j.attribute().await;
    j.age_change_stamps().await;
    assert_eq!(j.attribute().await.rows_examined, 0, "nothing changed");

    // A run under other rules wrote one order, then failed; the settings went back.
    sqlx::query(
        "UPDATE orders SET attribution_rules = 'v1 lookback=7d', attribution_digest = NULL
         WHERE order_id = (SELECT order_id FROM orders ORDER BY order_id LIMIT 1)",
    )
    .execute(&j.app.owner)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO job_runs (company_id, run_id, job, started_at, finished_at, status,
             full_run, parameters, watermark, error)
         VALUES ($1, $2, 'attribution', now(), now(), 'failed', true, 'v1 lookback=7d', now(),
                 'deadlock')",
    )
    .bind(j.app.company.id)
    .bind(Uuid::now_v7())
    .execute(&j.app.owner)
    .await
    .unwrap();
    let report = j.attribute().await;
    assert!(
        report.full_run,
        "a failed run under other rules forces a full one"
    );
    assert_eq!((report.rows_examined, report.rows_changed), (4, 1));
    assert_eq!(
        j.app
            .count("SELECT count(DISTINCT attribution_rules) FROM orders")
            .await,
        1
    );

    // A newer lux (rules v99) already attributes this company: this one leaves it alone and
    // records nothing.
    sqlx::query(
        "INSERT INTO job_runs (company_id, run_id, job, started_at, finished_at, status,
             full_run, parameters, watermark)
         VALUES ($1, $2, 'attribution', now(), now(), 'succeeded', true, 'v99 lookback=30d',
                 now())",
    )
    .bind(j.app.company.id)
    .bind(Uuid::now_v7())
    .execute(&j.app.owner)
    .await
    .unwrap();
    let runs_before = j.app.count("SELECT count(*) FROM job_runs").await;
    let skipped = lux::jobs::run(
        &j.pool,
        j.app.company.id.into(),
        Job::Attribution,
        (Mode::Incremental, WhenBusy::Wait),
        chrono::Utc::now(),
    )
    .await
    .unwrap();
    assert!(skipped.is_none());
    assert_eq!(
        j.app.count("SELECT count(*) FROM job_runs").await,
        runs_before
    );
}

#[tokio::test]
async fn a_run_for_given_days_redoes_the_orders_placed_on_them_only() {
    let j = Journey::new().await;
    mixed_journeys(&j).await;
    j.attribute().await;
    // The company's days are Paris days (the test company's time zone).
    let day: chrono::NaiveDate = sqlx::query_scalar(
        "SELECT (placed_at AT TIME ZONE 'Europe/Paris')::date FROM orders LIMIT 1",
    )
    .fetch_one(&j.app.owner)
    .await
    .unwrap();
    let j = &j;
    let run = |from, to| async move {
        lux::jobs::run(
            &j.pool,
            j.app.company.id.into(),
            Job::Attribution,
            (Mode::Days { from, to }, WhenBusy::Wait),
            chrono::Utc::now(),
        )
        .await
        .unwrap()
        .unwrap()
    };
    let report = run(day, day).await;
    assert_eq!((report.rows_examined, report.rows_changed), (4, 0));
    assert_eq!((report.range_from, report.range_to), (Some(day), Some(day)));
    let before = day - chrono::Duration::days(1);
    assert_eq!(run(before, before).await.rows_examined, 0);
    // Day runs do not move the incremental runs' starting point.
    let last_incremental: i64 = j
        .app
        .count("SELECT count(*) FROM job_runs WHERE status = 'succeeded' AND range_from IS NULL")
        .await;
    assert_eq!(last_incremental, 1);

    let day_text = day.to_string();
    let report = lux_json(
        &j.app.db.url,
        &[
            "jobs",
            "run",
            "attribution",
            "--from",
            &day_text,
            "--to",
            &day_text,
        ],
    );
    assert_eq!(report["range_from"], day.to_string());
    assert_eq!(report["rows_examined"], 4);
    let error = lux_error(
        &j.app.db.url,
        &[
            "jobs",
            "run",
            "attribution",
            "--from",
            "2026-11-02",
            "--to",
            "2026-11-01",
        ],
    );
    assert!(error.contains("is after --to"), "{error}");
}
