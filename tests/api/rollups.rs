//! Daily rollups (SPEC §7) on a small hand-made data set: events through the real `/e`, a
//! refunded order through a Stripe import, the jobs run as the service runs them, and every
//! expected figure worked out by hand in the comments.
//!
//! Company A is in New York (USD). Its days straddle the spring-forward of 9 March 2025 (a
//! 23-hour day: midnight is 05:00 UTC on the 9th but 04:00 UTC on the 10th) and sessions and
//! orders just after local midnight, when UTC is already on the next day. Company B (Paris,
//! EUR) has its own little story, which A must never see.

use lux::jobs::{Job, Mode, RunReport, WhenBusy};
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

use crate::helpers::{BROWSER_UA, Company, TestApp, lux_json, secrets_key};

const PAID_SEARCH: &str =
    "https://shop.example/?utm_source=google&utm_medium=cpc&utm_campaign=spring";
const EMAIL: &str =
    "https://shop.example/?utm_source=newsletter&utm_medium=email&utm_campaign=march";
const PAID_SOCIAL: &str = "https://shop.example/?utm_source=facebook&utm_medium=paid_social&utm_campaign=bf&utm_content=ad42";
const PAGE: &str = "https://shop.example/product";
const THANKS: &str = "https://shop.example/thanks";
const BOT_UA: &str = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";

pub struct Story {
    pub app: TestApp,
    /// The service's own pool (`lux_app`): jobs run as the scheduler runs them.
    pub pool: PgPool,
    /// New York, USD.
    pub a: Company,
}

impl Story {
    /// Company A's and company B's data, jobs not run yet.
    pub async fn new() -> Story {
        let app = TestApp::spawn().await;
        let pool = lux::db::connect_app(&app.db.url, 4).unwrap();
        let new = lux::tenancy::NewCompany::parse("Acme NY", "America/New_York", "USD", vec![])
            .expect("valid company");
        let a: Company = lux::tenancy::create_company(&app.owner, new)
            .await
            .unwrap()
            .into();
        let story = Story { app, pool, a };
        story.company_a().await;
        story.company_b().await;
        story
    }

    async fn send_as(&self, company: &Company, user_agent: &str, events: Value) {
        let response = self
            .app
            .client
            .post(format!("{}/e", self.app.base))
            .bearer_auth(&company.secret_key)
            .header("user-agent", user_agent)
            .json(&events)
            .send()
            .await
            .unwrap();
        let (status, body) = crate::helpers::answer(response).await;
        assert_eq!(status, 202, "{body}");
        assert!(body["rejected"].as_array().unwrap().is_empty(), "{body}");
    }

    /// Sends one visitor's events, in order, each `(name, page, time)`.
    pub async fn visit(&self, company: &Company, visitor: Uuid, events: &[(&str, &str, &str)]) {
        self.visit_extra(company, visitor, json!({}), events).await;
    }

    async fn visit_extra(
        &self,
        company: &Company,
        visitor: Uuid,
        extra: Value,
        events: &[(&str, &str, &str)],
    ) {
        for (name, page, at) in events {
            let mut event = json!({"event_id": Uuid::now_v7(), "event_name": name,
                "visitor_id": visitor, "page_url": page, "occurred_at": at});
            for (key, value) in extra.as_object().unwrap() {
                event[key] = value.clone();
            }
            self.send_as(company, BROWSER_UA, event).await;
        }
    }

    async fn purchase(
        &self,
        company: &Company,
        visitor: Uuid,
        user: &str,
        (order, value, currency): (&str, &str, &str),
        at: &str,
    ) {
        let event = json!({"event_id": Uuid::now_v7(), "event_name": "purchase",
            "visitor_id": visitor, "user_id": user, "page_url": THANKS, "occurred_at": at,
            "properties": {"order_id": order, "value": value, "currency": currency}});
        self.send_as(company, BROWSER_UA, event).await;
        self.wait_for_order(company.id, order).await;
    }

    async fn wait_for_order(&self, company: Uuid, order: &str) {
        crate::helpers::wait_for_order(&self.app.owner, company, order).await;
    }

    /// Company A, New York. Times are local (EST −05:00 until 2025-03-09 02:00, then EDT
    /// −04:00).
    ///
    /// | session | visitor | local start        | day   | channel        | events (in order)                              |
    /// |---------|---------|--------------------|-------|----------------|------------------------------------------------|
    /// | S1      | V1 (u1) | 03-08 23:50 EST    | 03-08 | Paid Search    | page_view, add_to_cart, page_view (00:05 next day), begin_checkout, purchase A1 |
    /// | S3      | V2 (u2) | 03-09 03:30 EDT    | 03-09 | Email          | page_view, lead_submit                          |
    /// | S5      | V3      | 03-09 12:00 EDT    | 03-09 | Organic Search | page_view, video_play 15 s later                |
    /// | S6      | bot     | 03-09 13:00 EDT    | 03-09 | Direct         | page_view, page_view (a crawler: left out)      |
    /// | S7      | V5      | 03-09 14:00 EDT    | 03-09 | Direct         | page_view                                      |
    /// | S2      | V1 (u1) | 03-10 10:00 EDT    | 03-10 | Direct         | page_view, purchase A2                          |
    /// | S4      | V2 (u2) | 03-10 00:30 EDT    | 03-10 | Paid Social    | page_view, page_view, add_to_cart, begin_checkout, purchase A3 |
    /// | S8      | V1 (u1) | 05-15 12:00 EDT    | 05-15 | Direct         | page_view, purchase A5                          |
    ///
    /// Orders: A1 $100 (03-09 00:12 EST, u1's first), A2 $50 (03-10 10:05), A3 $80 (03-10
    /// 00:35 EDT, u2's first), A4 $60 refunded $20 (Stripe, 03-09 12:10 EDT, V3, first of
    /// the customer with that email), A5 $30 (05-15 12:05, u1's third).
    async fn company_a(&self) {
        let a = &self.a;
        let (v1, v2, v3, v5, bot) = (
            Uuid::new_v4(),
            Uuid::new_v4(),
            Uuid::new_v4(),
            Uuid::new_v4(),
            Uuid::new_v4(),
        );
        // S1: crosses local midnight; the session stays on the 8th, the order is the 9th's
        // (05:12 UTC, 00:12 EST).
        self.visit(
            a,
            v1,
            &[
                ("page_view", PAID_SEARCH, "2025-03-09T04:50:00Z"),
                ("add_to_cart", PAGE, "2025-03-09T04:55:00Z"),
                ("page_view", PAGE, "2025-03-09T05:05:00Z"),
                ("begin_checkout", PAGE, "2025-03-09T05:10:00Z"),
            ],
        )
        .await;
        self.purchase(a, v1, "u1", ("A1", "100.00", "USD"), "2025-03-09T05:12:00Z")
            .await;
        // S3: after the clocks went forward (03:30 EDT = 07:30 UTC).
        self.visit_extra(
            a,
            v2,
            json!({"user_id": "u2"}),
            &[
                ("page_view", EMAIL, "2025-03-09T07:30:00Z"),
                ("lead_submit", PAGE, "2025-03-09T07:31:00Z"),
            ],
        )
        .await;
        // S5: from Google (organic search), one page, engaged by time (15 s from first to
        // last event).
        let landing = json!({"event_id": Uuid::now_v7(), "event_name": "page_view",
            "visitor_id": v3, "page_url": PAGE, "referrer": "https://www.google.com/",
            "occurred_at": "2025-03-09T16:00:00Z"});
        self.send_as(a, BROWSER_UA, landing).await;
        self.visit(a, v3, &[("video_play", PAGE, "2025-03-09T16:00:15Z")])
            .await;
        // S6: a crawler.
        for at in ["2025-03-09T17:00:00Z", "2025-03-09T17:01:00Z"] {
            let event = json!({"event_id": Uuid::now_v7(), "event_name": "page_view",
                "visitor_id": bot, "page_url": PAGE, "occurred_at": at,
                "user_agent": BOT_UA});
            self.send_as(a, BROWSER_UA, event).await;
        }
        // S7: one page, not engaged.
        self.visit(a, v5, &[("page_view", PAGE, "2025-03-09T18:00:00Z")])
            .await;
        // S4: 00:30 EDT on the 10th is 04:30 UTC; with the 9th's EST offset it would still be
        // the 9th.
        self.visit_extra(
            a,
            v2,
            json!({"user_id": "u2"}),
            &[
                ("page_view", PAID_SOCIAL, "2025-03-10T04:30:00Z"),
                ("page_view", PAGE, "2025-03-10T04:31:00Z"),
                ("add_to_cart", PAGE, "2025-03-10T04:32:00Z"),
                ("begin_checkout", PAGE, "2025-03-10T04:33:00Z"),
            ],
        )
        .await;
        self.purchase(a, v2, "u2", ("A3", "80.00", "USD"), "2025-03-10T04:35:00Z")
            .await;
        // S2
        self.visit(a, v1, &[("page_view", PAGE, "2025-03-10T14:00:00Z")])
            .await;
        self.purchase(a, v1, "u1", ("A2", "50.00", "USD"), "2025-03-10T14:05:00Z")
            .await;
        // S8, two months later.
        self.visit(a, v1, &[("page_view", PAGE, "2025-05-15T16:00:00Z")])
            .await;
        self.purchase(a, v1, "u1", ("A5", "30.00", "USD"), "2025-05-15T16:05:00Z")
            .await;
        // A4: paid through Stripe, $20 of $60 refunded, linked to V3 by the checkout's
        // metadata.
        let created = chrono::DateTime::parse_from_rfc3339("2025-03-09T16:10:00Z")
            .unwrap()
            .timestamp();
        let charge = json!({"id": "evt_a4", "object": "event", "type": "charge.refunded",
            "created": created, "data": {"object": {
                "id": "ch_A4", "object": "charge", "amount": 6000, "amount_captured": 6000,
                "amount_refunded": 2000, "refunded": false, "currency": "usd",
                "status": "succeeded", "payment_intent": "pi_A4", "created": created,
                "billing_details": {"email": "buyer.four@example.com"},
                "metadata": {"lux_visitor_id": v3.to_string(), "order_id": "A4"}}}});
        lux::commerce::import::run(
            &self.app.owner,
            &secrets_key(),
            a.id.into(),
            lux::commerce::secrets::Provider::Stripe,
            &charge.to_string(),
            &lux::clock::Clock::System,
        )
        .await
        .unwrap();
    }

    /// Company B, Paris: one session and one order on 9 March, and a visit on the 10th.
    async fn company_b(&self) {
        let b = &self.app.company;
        let v = Uuid::new_v4();
        self.visit(
            b,
            v,
            &[
                ("page_view", PAID_SEARCH, "2025-03-09T09:00:00Z"),
                ("add_to_cart", PAGE, "2025-03-09T09:01:00Z"),
            ],
        )
        .await;
        self.purchase(b, v, "b1", ("B1", "70.00", "EUR"), "2025-03-09T09:05:00Z")
            .await;
        self.visit(
            b,
            Uuid::new_v4(),
            &[("page_view", PAGE, "2025-03-10T09:00:00Z")],
        )
        .await;
    }

    pub async fn run(&self, company: Uuid, job: Job, mode: Mode) -> RunReport {
        lux::jobs::run(
            &self.pool,
            company.into(),
            job,
            (mode, WhenBusy::Wait),
            chrono::Utc::now(),
        )
        .await
        .expect("the job runs")
        .expect("nobody else holds the lock")
    }

    /// Attribution, then rollups, for both companies.
    pub async fn run_all(&self, mode: Mode) -> Vec<RunReport> {
        let mut reports = Vec::new();
        for company in [self.a.id, self.app.company.id] {
            for job in Job::ALL {
                reports.push(self.run(company, job, mode).await);
            }
        }
        reports
    }

    /// Moves every change stamp an hour back, as if everything so far had been written long
    /// ago: the next incremental run then finds days only through what changes after this
    /// (not because they were written within the watermark's few seconds of margin).
    pub async fn age_change_stamps(&self) {
        for sql in [
            "UPDATE session_changes SET changed_at = changed_at - interval '1 hour'",
            "UPDATE order_changes SET changed_at = changed_at - interval '1 hour'",
            "UPDATE orders SET updated_at = updated_at - interval '1 hour',
                               attributed_at = attributed_at - interval '1 hour'",
            "UPDATE sessions SET created_at = created_at - interval '1 hour'",
            "UPDATE identity_keys SET linked_at = linked_at - interval '1 hour'",
        ] {
            sqlx::query(sql).execute(&self.app.owner).await.unwrap();
        }
    }

    /// Every rollup row of a company, as text, in a stable order.
    pub async fn rollups(&self, company: Uuid) -> Vec<String> {
        let mut all = Vec::new();
        for (table, order) in [
            (
                "rollup_sessions_daily",
                "day, channel, source, medium, campaign",
            ),
            ("rollup_funnel_daily", "day, funnel, step"),
            (
                "rollup_revenue_daily",
                "day, model, channel, source, medium, campaign, creative, currency",
            ),
            ("rollup_conversions", "day, order_id"),
            ("rollup_customer_days", "day, customer_id, currency"),
            ("rollup_customers", "first_day, customer_id"),
            (
                "rollup_customer_windows",
                "first_day, customer_id, currency",
            ),
            ("rollup_conversion_bins", "day, min_seconds"),
            ("rollup_customer_order_days", "day, customer_id"),
            ("rollup_repeat_days", "day, since"),
            ("rollup_cohort_days", "first_day"),
            ("rollup_cohort_windows", "first_day, currency"),
            ("rollup_cohort_months", "first_day, currency, month"),
        ] {
            let rows: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "SELECT '{table} ' || t::text FROM {table} t WHERE company_id = $1 ORDER BY {order}"
            )))
            .bind(company)
            .fetch_all(&self.app.owner)
            .await
            .unwrap();
            all.extend(rows);
        }
        all
    }

    async fn texts(&self, sql: &str, company: Uuid) -> Vec<String> {
        sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_string()))
            .bind(company)
            .fetch_all(&self.app.owner)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }
}

impl Story {
    async fn report(&self, key: &str, path: &str) -> Value {
        let response = self
            .app
            .client
            .get(format!("{}/api/v1/reports/{path}", self.app.base))
            .bearer_auth(key)
            .send()
            .await
            .unwrap();
        let (status, body) = crate::helpers::answer(response).await;
        assert_eq!(status, 200, "{path}: {body}");
        body
    }

    /// Company A's reports for 8–10 March 2025, through the API, as worked out by hand.
    async fn reports_answer_the_hand_made_figures(&self) {
        let key = self.a.secret_key.clone();
        let range = "from=2025-03-08&to=2025-03-10";
        let rows = |body: Value| body["rows"].clone();

        // Last touch: A1 Paid Search $100, A3 Paid Social $80, A2 Direct $50, A4 Organic
        // Search $60 less $20.
        assert_eq!(
            rows(
                self.report(&key, &format!("revenue_by_channel?{range}"))
                    .await
            ),
            json!([
                {"channel": "Paid Search", "currency": "USD", "orders": "1.00", "gross": "100.00",
                 "refunds": "0.00", "revenue": "100.00", "aov": "100.00"},
                {"channel": "Paid Social", "currency": "USD", "orders": "1.00", "gross": "80.00",
                 "refunds": "0.00", "revenue": "80.00", "aov": "80.00"},
                {"channel": "Direct", "currency": "USD", "orders": "1.00", "gross": "50.00",
                 "refunds": "0.00", "revenue": "50.00", "aov": "50.00"},
                {"channel": "Organic Search", "currency": "USD", "orders": "1.00",
                 "gross": "60.00", "refunds": "20.00", "revenue": "40.00", "aov": "40.00"},
            ])
        );
        // Linear: Paid Search A1 + half of A2 = $125 over 1.5 orders (AOV 83.33); Email and
        // Paid Social half of A3 each; Direct half of A2.
        assert_eq!(
            rows(
                self.report(&key, &format!("revenue_by_channel?{range}&model=linear"))
                    .await
            ),
            json!([
                {"channel": "Paid Search", "currency": "USD", "orders": "1.50", "gross": "125.00",
                 "refunds": "0.00", "revenue": "125.00", "aov": "83.33"},
                {"channel": "Email", "currency": "USD", "orders": "0.50", "gross": "40.00",
                 "refunds": "0.00", "revenue": "40.00", "aov": "80.00"},
                {"channel": "Organic Search", "currency": "USD", "orders": "1.00",
                 "gross": "60.00", "refunds": "20.00", "revenue": "40.00", "aov": "40.00"},
                {"channel": "Paid Social", "currency": "USD", "orders": "0.50", "gross": "40.00",
                 "refunds": "0.00", "revenue": "40.00", "aov": "80.00"},
                {"channel": "Direct", "currency": "USD", "orders": "0.50", "gross": "25.00",
                 "refunds": "0.00", "revenue": "25.00", "aov": "50.00"},
            ])
        );
        // CAC: $50 of Google spend for A1's new customer, $50 of Meta spend for A3's;
        // blended $100 over all three new customers (A4's came organically).
        assert_eq!(
            rows(self.report(&key, &format!("cac?{range}")).await),
            json!([
                {"channel": "Paid Search", "currency": "USD", "spend": "50.00",
                 "new_customers": "1.00", "cac": "50.00"},
                {"channel": "Paid Social", "currency": "USD", "spend": "50.00",
                 "new_customers": "1.00", "cac": "50.00"},
                {"channel": "All", "currency": "USD", "spend": "100.00",
                 "new_customers": "3.00", "cac": "33.33"},
            ])
        );
        // ROAS: $100 on $50 for Google's "spring", $80 on $50 for Meta's "bf" / ad42.
        assert_eq!(
            rows(
                self.report(&key, &format!("roas?{range}&by=creative"))
                    .await
            ),
            json!([
                {"channel": "Paid Search", "campaign": "spring", "creative": "",
                 "currency": "USD", "spend": "50.00", "impressions": 1800, "clicks": 70,
                 "revenue": "100.00", "roas": 2.0},
                {"channel": "Paid Social", "campaign": "bf", "creative": "ad42",
                 "currency": "USD", "spend": "50.00", "impressions": 2500, "clicks": 35,
                 "revenue": "80.00", "roas": 1.6},
            ])
        );
        // Commerce funnel over the six sessions: S1 and S4 go all the way.
        assert_eq!(
            rows(self.report(&key, &format!("funnel?{range}")).await),
            json!([
                {"step": 1, "event_name": "page_view", "sessions": 6,
                 "conversion_from_previous": 1.0, "conversion_from_start": 1.0,
                 "drop_off": 0, "drop_off_rate": 0.0},
                {"step": 2, "event_name": "add_to_cart", "sessions": 2,
                 "conversion_from_previous": 0.3333, "conversion_from_start": 0.3333,
                 "drop_off": 4, "drop_off_rate": 0.6667},
                {"step": 3, "event_name": "begin_checkout", "sessions": 2,
                 "conversion_from_previous": 1.0, "conversion_from_start": 0.3333,
                 "drop_off": 0, "drop_off_rate": 0.0},
                {"step": 4, "event_name": "purchase", "sessions": 2,
                 "conversion_from_previous": 1.0, "conversion_from_start": 0.3333,
                 "drop_off": 0, "drop_off_rate": 0.0},
            ])
        );
        // Time to conversion: 600, 1,320, 75,900 and 119,700 s; nearest rank.
        let ttc = self
            .report(&key, &format!("time_to_conversion?{range}"))
            .await;
        assert_eq!(
            ttc["summary"],
            json!({"orders": 4, "median_seconds": 1320, "p75_seconds": 75900,
                   "p90_seconds": 119700})
        );
        let buckets: Vec<i64> = ttc["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["orders"].as_i64().unwrap())
            .collect();
        assert_eq!(buckets, [2, 1, 1, 0, 0, 0, 0]);
        // Qualified sessions: all but S7 engaged.
        assert_eq!(
            rows(
                self.report(&key, &format!("qualified_sessions?{range}"))
                    .await
            ),
            json!([
                {"channel": "Direct", "sessions": 2, "engaged_sessions": 1, "rate": 0.5},
                {"channel": "Email", "sessions": 1, "engaged_sessions": 1, "rate": 1.0},
                {"channel": "Organic Search", "sessions": 1, "engaged_sessions": 1, "rate": 1.0},
                {"channel": "Paid Search", "sessions": 1, "engaged_sessions": 1, "rate": 1.0},
                {"channel": "Paid Social", "sessions": 1, "engaged_sessions": 1, "rate": 1.0},
                {"channel": "All", "sessions": 6, "engaged_sessions": 5, "rate": 0.8333},
            ])
        );
        // Repeat purchase: u1 bought twice in the range, u2 and the Stripe buyer once.
        assert_eq!(
            rows(self.report(&key, &format!("repeat_purchase?{range}")).await),
            json!([
                {"cohort": "all", "customers": 3, "repeat_customers": 1, "rate": 0.3333},
                {"cohort": "2025-03", "customers": 3, "repeat_customers": 1, "rate": 0.3333},
            ])
        );
        // LTV: $270 within 30 days of the three first orders; u1's $30 of 15 May (day 67)
        // joins from the 90-day window on.
        let ltv = rows(self.report(&key, &format!("ltv_rolling?{range}")).await);
        let windows: Vec<(i64, i64, String, String)> = ltv
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["window_days"].as_i64().unwrap(),
                    r["customers"].as_i64().unwrap(),
                    r["revenue"].as_str().unwrap().to_string(),
                    r["ltv"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        assert_eq!(
            windows,
            [
                (30, 3, "270.00".into(), "90.00".into()),
                (90, 3, "300.00".into(), "100.00".into()),
                (180, 3, "300.00".into(), "100.00".into()),
                (365, 3, "300.00".into(), "100.00".into()),
            ]
        );
        let cohorts = rows(self.report(&key, &format!("ltv_cohorts?{range}")).await);
        let first_three: Vec<(i64, String)> = cohorts.as_array().unwrap()[..3]
            .iter()
            .map(|r| {
                assert_eq!(r["cohort"], "2025-03");
                (
                    r["months_since"].as_i64().unwrap(),
                    r["ltv"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        assert_eq!(
            first_three,
            [
                (0, "90.00".into()),
                (1, "90.00".into()),
                (2, "100.00".into())
            ]
        );

        // Company B's key reads B's revenue only.
        assert_eq!(
            rows(
                self.report(
                    &self.app.company.secret_key,
                    &format!("revenue_by_channel?{range}")
                )
                .await
            ),
            json!([{"channel": "Paid Search", "currency": "EUR", "orders": "1.00",
                    "gross": "70.00", "refunds": "0.00", "revenue": "70.00", "aov": "70.00"}])
        );
    }
}

fn strings(expected: &[&str]) -> Vec<String> {
    expected.iter().map(|s| s.to_string()).collect()
}

#[tokio::test]
async fn the_hand_made_data_set_rolls_up_to_the_numbers_worked_out_by_hand() {
    let story = Story::new().await;
    lux_json(
        &story.app.db.url,
        &[
            "company",
            "rollups",
            &story.a.id.to_string(),
            "--funnel",
            "video=page_view,video_play,signup",
        ],
    );
    story.run_all(Mode::Incremental).await;
    let a = story.a.id;

    // Sessions by day and channel. S1 is the 8th's although it ends on the 9th; S4 is the
    // 10th's (00:30 EDT); the crawler's S6 counts nowhere. Engaged: S1 (2 page views and key
    // events), S3 (lead_submit), S5 (15 s), S4 (2 page views), S2 (purchase); not S7.
    assert_eq!(
        story
            .texts(
                "SELECT concat_ws(' ', day, channel, sessions, engaged_sessions, visitors,
                                  page_views)
                 FROM rollup_sessions_daily WHERE company_id = $1 ORDER BY day, channel",
                a,
            )
            .await,
        strings(&[
            "2025-03-08 Paid Search 1 1 1 2",
            "2025-03-09 Direct 1 0 1 1",
            "2025-03-09 Email 1 1 1 1",
            "2025-03-09 Organic Search 1 1 1 1",
            "2025-03-10 Direct 1 1 1 1",
            "2025-03-10 Paid Social 1 1 1 2",
            "2025-05-15 Direct 1 1 1 1",
        ])
    );

    // Funnels per session day, steps in order. Commerce: S1 and S4 go all the way; the
    // others only view pages. Lead: S3. The company's own "video": S5 plays the video, nobody
    // signs up. Every step is written, zeros too.
    assert_eq!(
        story
            .texts(
                "SELECT concat_ws(' ', funnel, step, event_name, sum(sessions))
                 FROM rollup_funnel_daily WHERE company_id = $1
                 GROUP BY funnel, step, event_name ORDER BY funnel, step",
                a,
            )
            .await,
        strings(&[
            "commerce 1 page_view 7",
            "commerce 2 add_to_cart 2",
            "commerce 3 begin_checkout 2",
            "commerce 4 purchase 2",
            "lead 1 page_view 7",
            "lead 2 lead_submit 1",
            "video 1 page_view 7",
            "video 2 video_play 1",
            "video 3 signup 0",
        ])
    );
    assert_eq!(
        story
            .texts(
                "SELECT concat_ws(' ', day, step, sessions) FROM rollup_funnel_daily
                 WHERE company_id = $1 AND funnel = 'commerce' ORDER BY day, step",
                a,
            )
            .await,
        strings(&[
            "2025-03-08 1 1",
            "2025-03-08 2 1",
            "2025-03-08 3 1",
            "2025-03-08 4 1",
            "2025-03-09 1 3",
            "2025-03-09 2 0",
            "2025-03-09 3 0",
            "2025-03-09 4 0",
            "2025-03-10 1 2",
            "2025-03-10 2 1",
            "2025-03-10 3 1",
            "2025-03-10 4 1",
            "2025-05-15 1 1",
            "2025-05-15 2 0",
            "2025-05-15 3 0",
            "2025-05-15 4 0",
        ])
    );

    // Revenue by the order's local day. A1 (00:12 EST) and A4 are the 9th's; A2 and A3
    // (00:35 EDT) the 10th's. Last touch: A1 S1 Paid Search, A4 S5 Organic Search ($60
    // less $20 refunded), A3 S4 Paid Social (creative ad42), A2 S2 Direct. New customers:
    // A1 (u1), A3 (u2), A4 (the Stripe buyer); A2 and A5 are u1's second and third.
    assert_eq!(
        story
            .texts(
                "SELECT concat_ws(' ', day, channel, campaign, creative, currency,
                                  orders::float8, gross_minor::float8,
                                  refunded_minor::float8, net_minor::float8,
                                  new_customers::float8)
                 FROM rollup_revenue_daily WHERE company_id = $1 AND model = 'last_touch'
                 ORDER BY day, channel",
                a,
            )
            .await,
        strings(&[
            "2025-03-09 Organic Search   USD 1 6000 2000 4000 1",
            "2025-03-09 Paid Search spring  USD 1 10000 0 10000 1",
            "2025-03-10 Direct   USD 1 5000 0 5000 0",
            "2025-03-10 Paid Social bf ad42 USD 1 8000 0 8000 1",
            "2025-05-15 Direct   USD 1 3000 0 3000 0",
        ])
    );
    // Linear: A2's credit is split between S1 (Paid Search) and S2 (Direct), A3's between
    // S3 (Email) and S4 (Paid Social); A5's touches are S8 only (S2 is 66 days before).
    assert_eq!(
        story
            .texts(
                "SELECT concat_ws(' ', channel, sum(orders)::float8, sum(net_minor)::float8,
                                  sum(new_customers)::float8)
                 FROM rollup_revenue_daily
                 WHERE company_id = $1 AND model = 'linear' AND day <= '2025-03-10'
                 GROUP BY channel ORDER BY channel",
                a,
            )
            .await,
        strings(&[
            "Direct 0.5 2500 0",
            "Email 0.5 4000 0.5",
            "Organic Search 1 4000 1",
            "Paid Search 1.5 12500 1",
            "Paid Social 0.5 4000 0.5",
        ])
    );

    // Time to conversion, first touch to purchase: A4 600 s (S5 16:00 → 16:10 UTC), A1
    // 1,320 s (04:50 → 05:12), A3 75,900 s (S3 03-09 07:30 → 03-10 04:35), A2 119,700 s
    // (S1 03-09 04:50 → 03-10 14:05), A5 300 s (S8).
    assert_eq!(
        story
            .texts(
                "SELECT concat_ws(' ', c.day, o.order_number, c.channel, c.seconds)
                 FROM rollup_conversions c JOIN orders o USING (company_id, order_id)
                 WHERE c.company_id = $1 ORDER BY c.day, c.seconds",
                a,
            )
            .await,
        strings(&[
            "2025-03-09 A4 Organic Search 600",
            "2025-03-09 A1 Paid Search 1320",
            "2025-03-10 A3 Email 75900",
            "2025-03-10 A2 Paid Search 119700",
            "2025-05-15 A5 Direct 300",
        ])
    );

    // Orders per customer and day: u1 on the 9th, 10th and 15 May; u2 on the 10th; the
    // Stripe buyer on the 9th, $40 net.
    assert_eq!(
        story
            .texts(
                "SELECT concat_ws(' ', day, orders, net_minor) FROM rollup_customer_days
                 WHERE company_id = $1 ORDER BY day, net_minor",
                a,
            )
            .await,
        strings(&[
            "2025-03-09 1 4000",
            "2025-03-09 1 10000",
            "2025-03-10 1 5000",
            "2025-03-10 1 8000",
            "2025-05-15 1 3000",
        ])
    );

    // Spend in two platforms, through the generic CSV import.
    let csv = std::env::temp_dir().join(format!("lux-spend-{a}.csv"));
    std::fs::write(
        &csv,
        "date,platform,channel,source,medium,campaign,ad_id,spend,impressions,clicks,currency\n\
         2025-03-08,google_ads,Paid Search,google,cpc,spring,,30.00,1000,40,USD\n\
         2025-03-09,google_ads,Paid Search,google,cpc,spring,,20.00,800,30,USD\n\
         2025-03-09,meta_ads,Paid Social,facebook,paid_social,bf,ad42,40.00,2000,25,USD\n\
         2025-03-10,meta_ads,Paid Social,facebook,paid_social,bf,ad42,10.00,500,10,USD\n",
    )
    .unwrap();
    lux_json(
        &story.app.db.url,
        &[
            "import",
            "spend",
            csv.to_str().unwrap(),
            "--company",
            &a.to_string(),
        ],
    );
    story.reports_answer_the_hand_made_figures().await;

    // Per customer: u1 first ordered on the 9th (three orders in all), the Stripe buyer on the
    // 9th, u2 on the 10th.
    assert_eq!(
        story
            .texts(
                "SELECT concat_ws(' ', first_day, orders, currencies)
                 FROM rollup_customers WHERE company_id = $1 ORDER BY first_day, orders",
                a,
            )
            .await,
        strings(&[
            "2025-03-09 1 {USD}",
            "2025-03-09 3 {USD}",
            "2025-03-10 1 {USD}"
        ])
    );

    // Customer days by the customer's previous order day (since; -infinity for a first order):
    // u1 on the 9th, 10th and 15 May (one order each), u2 and the Stripe buyer once. On the
    // 15th, u1's day before the previous (the 9th) is counted with its previous day's single
    // order (the 10th).
    assert_eq!(
        story
            .texts(
                "SELECT concat_ws(' ', day, since, customers, multi, prev_single,
                                  prev_prev_single)
                 FROM rollup_repeat_days WHERE company_id = $1 ORDER BY day, since",
                a,
            )
            .await,
        strings(&[
            "2025-03-09 -infinity 2 0 0 0",
            "2025-03-10 -infinity 1 0 0 0",
            "2025-03-10 2025-03-09 1 0 1 0",
            "2025-05-15 2025-03-09 0 0 0 1",
            "2025-05-15 2025-03-10 1 0 1 0",
        ])
    );
    // Cohorts: the 9th's (u1: $100 + $50 within 30 days, $30 on day 67; the buyer $40 net)
    // and the 10th's (u2, $80).
    assert_eq!(
        story
            .texts(
                "SELECT concat_ws(' ', d.first_day, d.customers, d.repeat_customers, w.currency,
                                  w.customers, w.net_30, w.net_90, w.net_180, w.net_365)
                 FROM rollup_cohort_days d JOIN rollup_cohort_windows w USING (company_id, first_day)
                 WHERE company_id = $1 ORDER BY first_day",
                a,
            )
            .await,
        strings(&[
            "2025-03-09 2 1 USD 2 19000 22000 22000 22000",
            "2025-03-10 1 0 USD 1 8000 8000 8000 8000",
        ])
    );
    assert_eq!(
        story
            .texts(
                "SELECT concat_ws(' ', first_day, currency, month, net_minor)
                 FROM rollup_cohort_months WHERE company_id = $1 ORDER BY first_day, month",
                a,
            )
            .await,
        strings(&[
            "2025-03-09 USD 2025-03-01 19000",
            "2025-03-09 USD 2025-05-01 3000",
            "2025-03-10 USD 2025-03-01 8000",
        ])
    );
    // Conversion times by bin: 600 s and 1,320 s (bin from 1,200 s) on the 9th; 75,900 s
    // (bin from 61,440 s) and 119,700 s (from 107,520 s) on the 10th; 300 s on 15 May.
    assert_eq!(
        story
            .texts(
                "SELECT concat_ws(' ', day, min_seconds, orders) FROM rollup_conversion_bins
                 WHERE company_id = $1 ORDER BY day, min_seconds",
                a,
            )
            .await,
        strings(&[
            "2025-03-09 600 1",
            "2025-03-09 1200 1",
            "2025-03-10 61440 1",
            "2025-03-10 107520 1",
            "2025-05-15 300 1",
        ])
    );

    // Company B's day in Paris: its own rows, none of A's.
    let b = story.app.company.id;
    assert_eq!(
        story
            .texts(
                "SELECT concat_ws(' ', day, channel, currency, net_minor::float8)
                 FROM rollup_revenue_daily WHERE company_id = $1 AND model = 'first_touch'",
                b,
            )
            .await,
        strings(&["2025-03-09 Paid Search EUR 7000"])
    );
    assert_eq!(
        story
            .texts(
                "SELECT concat_ws(' ', day, sum(sessions)) FROM rollup_sessions_daily
                 WHERE company_id = $1 GROUP BY day ORDER BY day",
                b,
            )
            .await,
        strings(&["2025-03-09 1", "2025-03-10 1"])
    );
}

#[tokio::test]
async fn running_every_job_twice_changes_nothing_and_a_late_event_changes_only_its_day() {
    let story = Story::new().await;
    let a = story.a.id;
    let first = story.run_all(Mode::Incremental).await;
    assert!(
        first.iter().all(|r| r.full_run),
        "the first runs do everything"
    );
    let rollups = story.rollups(a).await;
    assert!(rollups.len() > 30, "{rollups:?}");
    story.age_change_stamps().await;

    // Again, through the command line: nothing new, so the same rows.
    let url = story.app.db.url.clone();
    let second = lux_json_lines(&url, &["jobs", "run", "all"]);
    // Attribution, rollups and creative fatigue, for each company.
    assert_eq!(second.len(), 6, "{second:?}");
    assert_eq!(story.rollups(a).await, rollups);
    // A full rebuild gives the same rows too.
    lux_json_lines(
        &url,
        &[
            "jobs",
            "run",
            "rollups",
            "--company",
            &a.to_string(),
            "--full",
        ],
    );
    assert_eq!(story.rollups(a).await, rollups);

    // A visitor's page view on 8 March arrives late (a backfill): only the 8th moves.
    story
        .visit(
            &story.a,
            Uuid::new_v4(),
            &[("page_view", PAID_SEARCH, "2025-03-08T15:00:00Z")],
        )
        .await;
    let report = story.run(a, Job::Rollups, Mode::Incremental).await;
    assert!(!report.full_run);
    assert_eq!(report.days_count, Some(1));
    let after = story.rollups(a).await;
    let of_day = |rows: &[String], day: &str| -> Vec<String> {
        rows.iter().filter(|r| r.contains(day)).cloned().collect()
    };
    let others = |rows: &[String]| -> Vec<String> {
        rows.iter()
            .filter(|r| !r.contains("2025-03-08"))
            .cloned()
            .collect()
    };
    assert_eq!(others(&after), others(&rollups));
    assert_ne!(of_day(&after, "2025-03-08"), of_day(&rollups, "2025-03-08"));
    assert_eq!(
        story
            .texts(
                "SELECT concat_ws(' ', day, channel, sessions, visitors, engaged_sessions)
                 FROM rollup_sessions_daily WHERE company_id = $1 AND day = '2025-03-08'",
                a,
            )
            .await,
        strings(&["2025-03-08 Paid Search 2 2 1"])
    );

    // Every run is recorded with what it covered.
    let runs: Vec<(String, String, bool, Option<i32>)> = sqlx::query_as(
        "SELECT job, status, full_run, days_count FROM job_runs
         WHERE company_id = $1 ORDER BY started_at",
    )
    .bind(a)
    .fetch_all(&story.app.owner)
    .await
    .unwrap();
    assert_eq!(runs.len(), 8, "{runs:?}");
    assert!(runs.iter().all(|r| r.1 == "succeeded"), "{runs:?}");
    let rollup_runs: Vec<_> = runs.iter().filter(|r| r.0 == "rollups").collect();
    // First run: 8 March to 15 May, every day; then none; then the full rebuild; then the
    // late event's day.
    assert_eq!(rollup_runs[0].3, Some(69));
    assert_eq!(rollup_runs[1].3, Some(0));
    assert!(rollup_runs[2].2);
    assert_eq!(report.days_from, Some("2025-03-08".parse().unwrap()));
}

#[tokio::test]
async fn a_refund_or_a_settings_change_redoes_what_it_touches() {
    let story = Story::new().await;
    let a = story.a.id;
    story.run_all(Mode::Incremental).await;
    let before = story.rollups(a).await;
    story.age_change_stamps().await;

    // Another $10 of A4 refunded: its day (the 9th) changes, net $30.
    let created = chrono::DateTime::parse_from_rfc3339("2025-03-09T16:10:00Z")
        .unwrap()
        .timestamp();
    let refund = json!({"id": "evt_a4_2", "object": "event", "type": "charge.refunded",
        "created": created + 86_400, "data": {"object": {
            "id": "ch_A4", "object": "charge", "amount": 6000, "amount_captured": 6000,
            "amount_refunded": 3000, "refunded": false, "currency": "usd",
            "status": "succeeded", "payment_intent": "pi_A4", "created": created,
            "billing_details": {"email": "buyer.four@example.com"},
            "metadata": {"order_id": "A4"}}}});
    lux::commerce::import::run(
        &story.app.owner,
        &secrets_key(),
        a.into(),
        lux::commerce::secrets::Provider::Stripe,
        &refund.to_string(),
        &lux::clock::Clock::System,
    )
    .await
    .unwrap();
    let report = story.run(a, Job::Rollups, Mode::Incremental).await;
    assert!(!report.full_run);
    assert_eq!(report.days_count, Some(1));
    assert_eq!(
        story
            .texts(
                "SELECT concat_ws(' ', day, refunded_minor::float8, net_minor::float8)
                 FROM rollup_revenue_daily
                 WHERE company_id = $1 AND model = 'last_touch' AND channel = 'Organic Search'",
                a,
            )
            .await,
        strings(&["2025-03-09 3000 3000"])
    );
    let after = story.rollups(a).await;
    let not_ninth = |rows: &[String]| -> Vec<String> {
        rows.iter()
            .filter(|r| !r.contains("2025-03-09"))
            .cloned()
            .collect()
    };
    assert_eq!(not_ninth(&after), not_ninth(&before));

    // An older order of u2 turns up (imported late, 8 March): u2's first order day moves back
    // although only the 8th is recomputed.
    story.age_change_stamps().await;
    story
        .purchase(
            &story.a,
            Uuid::new_v4(),
            "u2",
            ("A0", "10.00", "USD"),
            "2025-03-08T15:00:00Z",
        )
        .await;
    story.run(a, Job::Attribution, Mode::Incremental).await;
    let report = story.run(a, Job::Rollups, Mode::Incremental).await;
    assert_eq!(report.days_count, Some(2), "{report:?}");
    assert_eq!(
        story
            .texts(
                "SELECT concat_ws(' ', first_day, orders) FROM rollup_customers
                 WHERE company_id = $1 ORDER BY first_day, orders",
                a,
            )
            .await,
        strings(&["2025-03-08 2", "2025-03-09 1", "2025-03-09 3"])
    );
    // u2's cohort moved from the 10th to the 8th, and u2's order on the 10th is now a second
    // one: the per-day and per-cohort counts of both days changed although only the 8th was
    // recomputed, and they are what a full rebuild writes.
    assert_eq!(
        story
            .texts(
                "SELECT concat_ws(' ', first_day, customers, repeat_customers)
                 FROM rollup_cohort_days WHERE company_id = $1 ORDER BY first_day",
                a,
            )
            .await,
        strings(&["2025-03-08 1 1", "2025-03-09 2 1"])
    );
    let incremental = story.rollups(a).await;
    story.run(a, Job::Rollups, Mode::Full).await;
    assert_eq!(
        story.rollups(a).await,
        incremental,
        "incremental equals a full rebuild"
    );

    // Engaged from 60 s on: S5 (15 s) is no longer engaged; every day is recomputed.
    lux_json(
        &story.app.db.url,
        &[
            "company",
            "rollups",
            &a.to_string(),
            "--engaged-seconds",
            "60",
        ],
    );
    let report = story.run(a, Job::Rollups, Mode::Incremental).await;
    assert!(report.full_run);
    assert_eq!(
        story
            .texts(
                "SELECT concat_ws(' ', channel, engaged_sessions) FROM rollup_sessions_daily
                 WHERE company_id = $1 AND day = '2025-03-09' ORDER BY channel",
                a,
            )
            .await,
        strings(&["Direct 0", "Email 1", "Organic Search 0"])
    );

    // Given days only: nothing else is read or written.
    let report = story
        .run(
            a,
            Job::Rollups,
            Mode::Days {
                from: "2025-03-10".parse().unwrap(),
                to: "2025-03-10".parse().unwrap(),
            },
        )
        .await;
    assert_eq!(report.days_count, Some(1));
    assert_eq!(report.range_from, report.range_to);
}

#[tokio::test]
async fn an_order_that_moves_to_another_day_leaves_nothing_on_the_old_one() {
    let story = Story::new().await;
    let a = story.a.id;
    // The thank-you page reports M1 at 01:01 EDT on 10 March (the browser's clock)...
    let visitor = Uuid::new_v4();
    story
        .visit(
            &story.a,
            visitor,
            &[("page_view", PAID_SEARCH, "2025-03-10T04:50:00Z")],
        )
        .await;
    story
        .purchase(
            &story.a,
            visitor,
            "u9",
            ("M1", "25.00", "USD"),
            "2025-03-10T05:01:00Z",
        )
        .await;
    story.run_all(Mode::Incremental).await;
    let m1_days = |story: &Story| {
        let sql = "SELECT DISTINCT concat_ws(' ', r.day, r.net_minor) FROM rollup_customer_days r
                   JOIN orders o ON o.company_id = r.company_id AND o.customer_id = r.customer_id
                   WHERE r.company_id = $1 AND o.user_id = 'u9'";
        let owner = story.app.owner.clone();
        async move {
            sqlx::query_scalar::<_, String>(sql)
                .bind(a)
                .fetch_all(&owner)
                .await
                .unwrap()
        }
    };
    assert_eq!(m1_days(&story).await, strings(&["2025-03-10 2500"]));
    story.age_change_stamps().await;

    // ... Stripe's charge for it says 23:58 EDT on the 9th: the verified time wins, and the
    // order moves to the 9th. Only the 9th is the order's now; the 10th keeps nothing of it.
    let created = chrono::DateTime::parse_from_rfc3339("2025-03-10T03:58:00Z")
        .unwrap()
        .timestamp();
    let charge = json!({"id": "evt_m1", "object": "event", "type": "charge.succeeded",
        "created": created, "data": {"object": {
            "id": "ch_M1", "object": "charge", "amount": 2500, "amount_captured": 2500,
            "amount_refunded": 0, "currency": "usd", "status": "succeeded",
            "payment_intent": "pi_M1", "created": created,
            "metadata": {"order_id": "M1"}}}});
    lux::commerce::import::run(
        &story.app.owner,
        &secrets_key(),
        a.into(),
        lux::commerce::secrets::Provider::Stripe,
        &charge.to_string(),
        &lux::clock::Clock::System,
    )
    .await
    .unwrap();
    let placed: chrono::DateTime<chrono::Utc> =
        sqlx::query_scalar("SELECT placed_at FROM orders WHERE order_number = 'M1'")
            .fetch_one(&story.app.owner)
            .await
            .unwrap();
    assert_eq!(placed.to_rfc3339(), "2025-03-10T03:58:00+00:00");
    story.run(a, Job::Attribution, Mode::Incremental).await;
    let report = story.run(a, Job::Rollups, Mode::Incremental).await;
    assert_eq!(report.days_count, Some(2), "{report:?}");
    assert_eq!(m1_days(&story).await, strings(&["2025-03-09 2500"]));
    let full = story.rollups(a).await;
    story.run(a, Job::Rollups, Mode::Full).await;
    assert_eq!(
        story.rollups(a).await,
        full,
        "incremental equals a full rebuild"
    );
}

#[tokio::test]
async fn a_page_less_event_counts_in_the_time_from_first_to_last_event() {
    let story = Story::new().await;
    let a = story.a.id;
    // One page view, then 40 s later an event without a page (sent by the store's server):
    // it joins the session and makes it 40 s long, so engaged.
    let visitor = Uuid::new_v4();
    story
        .visit(
            &story.a,
            visitor,
            &[("page_view", PAGE, "2025-04-01T15:00:00Z")],
        )
        .await;
    let event = json!({"event_id": Uuid::now_v7(), "event_name": "video_progress",
        "visitor_id": visitor, "occurred_at": "2025-04-01T15:00:40Z"});
    story.send_as(&story.a, BROWSER_UA, event).await;
    story.run(a, Job::Rollups, Mode::Incremental).await;
    assert_eq!(
        story
            .texts(
                "SELECT concat_ws(' ', sessions, engaged_sessions, page_views)
                 FROM rollup_sessions_daily WHERE company_id = $1 AND day = '2025-04-01'",
                a,
            )
            .await,
        strings(&["1 1 1"])
    );
}

/// A Stripe charge for order `number` of `cents`, placed at `at`, paid by `email`.
fn stripe_charge(number: &str, cents: i64, at: &str, email: &str) -> String {
    let created = chrono::DateTime::parse_from_rfc3339(at)
        .unwrap()
        .timestamp();
    json!({"id": format!("evt_{number}"), "object": "event", "type": "charge.succeeded",
        "created": created, "data": {"object": {
            "id": format!("ch_{number}"), "object": "charge", "amount": cents,
            "amount_captured": cents, "amount_refunded": 0, "currency": "usd",
            "status": "succeeded", "payment_intent": format!("pi_{number}"), "created": created,
            "billing_details": {"email": email},
            "metadata": {"order_id": number}}}})
    .to_string()
}

#[tokio::test]
async fn an_order_moving_to_another_customer_gives_the_first_its_next_order_as_first() {
    let story = Story::new().await;
    let a = story.a.id;
    let import = |charge: String| {
        let owner = story.app.owner.clone();
        async move {
            lux::commerce::import::run(
                &owner,
                &secrets_key(),
                a.into(),
                lux::commerce::secrets::Provider::Stripe,
                &charge,
                &lux::clock::Clock::System,
            )
            .await
            .unwrap();
        }
    };
    // The email's customer bought first, on 1 April.
    import(stripe_charge(
        "E1",
        1000,
        "2025-04-01T15:00:00Z",
        "seven@example.com",
    ))
    .await;
    // u7 buys O1 (5 April) and O2 (6 April), known by user id only: O1 is u7's first.
    let visitor = Uuid::new_v4();
    for (number, at) in [
        ("O1", "2025-04-05T15:00:00Z"),
        ("O2", "2025-04-06T15:00:00Z"),
    ] {
        story
            .purchase(&story.a, visitor, "u7", (number, "20.00", "USD"), at)
            .await;
    }
    let first = |story: &Story| {
        let owner = story.app.owner.clone();
        async move {
            sqlx::query_scalar::<_, String>(
                "SELECT order_number FROM orders
                 WHERE company_id = $1 AND order_number IN ('E1', 'O1', 'O2') AND is_first_order
                 ORDER BY order_number",
            )
            .bind(a)
            .fetch_all(&owner)
            .await
            .unwrap()
        }
    };
    assert_eq!(first(&story).await, ["E1", "O1"]);
    // O1's charge names the email: O1 moves to the email's customer, where E1 is first; u7's
    // customer is left with O2, now its first order.
    import(stripe_charge(
        "O1",
        2000,
        "2025-04-05T15:00:00Z",
        "seven@example.com",
    ))
    .await;
    assert_eq!(first(&story).await, ["E1", "O2"]);
}

#[tokio::test]
async fn two_orders_merged_into_one_count_once_on_the_survivor_s_day() {
    let story = Story::new().await;
    let a = story.a.id;
    let import = |event: Value| {
        let owner = story.app.owner.clone();
        async move {
            lux::commerce::import::run(
                &owner,
                &secrets_key(),
                a.into(),
                lux::commerce::secrets::Provider::Stripe,
                &event.to_string(),
                &lux::clock::Clock::System,
            )
            .await
            .unwrap();
        }
    };
    // The thank-you page reports P5 at 00:50 EDT on 10 March; Stripe's charge, without the
    // order number, was created at 23:55 EDT on the 9th. Two orders for now, one on each day.
    let visitor = Uuid::new_v4();
    story
        .visit(
            &story.a,
            visitor,
            &[("page_view", PAID_SEARCH, "2025-03-10T04:40:00Z")],
        )
        .await;
    story
        .purchase(
            &story.a,
            visitor,
            "u5",
            ("P5", "20.00", "USD"),
            "2025-03-10T04:50:00Z",
        )
        .await;
    let created = chrono::DateTime::parse_from_rfc3339("2025-03-10T03:55:00Z")
        .unwrap()
        .timestamp();
    import(
        json!({"id": "evt_p5_ch", "object": "event", "type": "charge.succeeded",
        "created": created, "data": {"object": {
            "id": "ch_P5", "object": "charge", "amount": 2000, "amount_captured": 2000,
            "amount_refunded": 0, "currency": "usd", "status": "succeeded",
            "payment_intent": "pi_P5", "created": created, "metadata": {}}}}),
    )
    .await;
    story.run_all(Mode::Incremental).await;
    let revenue_by_day = |story: &Story| {
        let owner = story.app.owner.clone();
        async move {
            sqlx::query_scalar::<_, String>(
                "SELECT concat_ws(' ', day, sum(net_minor)::float8) FROM rollup_revenue_daily
                 WHERE company_id = $1 AND model = 'last_touch'
                   AND day IN ('2025-03-09', '2025-03-10')
                 GROUP BY day ORDER BY day",
            )
            .bind(a)
            .fetch_all(&owner)
            .await
            .unwrap()
        }
    };
    let before = revenue_by_day(&story).await;
    let p5_orders_before = story
        .app
        .count(
            "SELECT count(*) FROM orders WHERE net_minor = 2000
             AND placed_at BETWEEN '2025-03-10T03:00:00Z' AND '2025-03-10T05:00:00Z'",
        )
        .await;
    assert_eq!(p5_orders_before, 2, "the event's order and the charge's");
    story.age_change_stamps().await;

    // The payment intent names the order: the two are one, placed at Stripe's time (the
    // 9th). Each day loses or keeps exactly the $20.
    import(
        json!({"id": "evt_p5_pi", "object": "event", "type": "payment_intent.succeeded",
        "created": created, "data": {"object": {
            "id": "pi_P5", "object": "payment_intent", "amount": 2000,
            "amount_received": 2000, "currency": "usd", "status": "succeeded",
            "created": created, "metadata": {"lux_order_id": "P5"}}}}),
    )
    .await;
    let p5_orders = "SELECT count(*) FROM orders WHERE net_minor = 2000
                     AND placed_at BETWEEN '2025-03-10T03:00:00Z' AND '2025-03-10T05:00:00Z'";
    assert_eq!(story.app.count(p5_orders).await, 1, "one order left");
    story.run(a, Job::Attribution, Mode::Incremental).await;
    story.run(a, Job::Rollups, Mode::Incremental).await;
    let after = revenue_by_day(&story).await;
    // Before: the story's own orders plus $20 on each day; after: $20 on the 9th only.
    let day_total = |rows: &[String], day: &str| -> f64 {
        rows.iter()
            .find(|r| r.starts_with(day))
            .and_then(|r| r.split(' ').nth(1))
            .map_or(0.0, |v| v.parse().unwrap())
    };
    assert_eq!(
        day_total(&after, "2025-03-09"),
        day_total(&before, "2025-03-09"),
        "{before:?} {after:?}"
    );
    assert_eq!(
        day_total(&after, "2025-03-10"),
        day_total(&before, "2025-03-10") - 2000.0,
        "{before:?} {after:?}"
    );
    let full = story.rollups(a).await;
    story.run(a, Job::Rollups, Mode::Full).await;
    assert_eq!(
        story.rollups(a).await,
        full,
        "incremental equals a full rebuild"
    );
}

/// Runs `lux`, which must succeed, and parses each line it printed as JSON.
fn lux_json_lines(database_url: &str, args: &[&str]) -> Vec<Value> {
    let output = crate::helpers::lux_command(database_url, args);
    assert!(
        output.status.success(),
        "lux {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect()
}

#[tokio::test]
async fn the_service_keeps_the_rollups_current_on_its_own() {
    let mut options = crate::helpers::test_options();
    options.jobs_interval = Some(std::time::Duration::from_millis(300));
    options.pool_size = 8;
    let app = TestApp::spawn_with(options).await;
    let company = &app.company;
    let visitor = Uuid::new_v4();
    let event = json!({"event_id": Uuid::now_v7(), "event_name": "purchase",
        "visitor_id": visitor, "user_id": "s1", "page_url": PAID_SEARCH,
        "occurred_at": "2025-03-09T10:00:00Z",
        "properties": {"order_id": "S1", "value": "12.50", "currency": "EUR"}});
    let response = app
        .client
        .post(format!("{}/e", app.base))
        .bearer_auth(&company.secret_key)
        .header("user-agent", BROWSER_UA)
        .json(&event)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    // The scheduler attributes the order, then rolls up its day: sessions and revenue. The
    // day's rows commit before the run records its success, so both are waited for.
    let mut rolled_up = false;
    for _ in 0..100 {
        let revenue = app
            .count(
                "SELECT coalesce(sum(net_minor), 0)::int8 FROM rollup_revenue_daily
                 WHERE model = 'last_touch' AND channel = 'Paid Search' AND day = '2025-03-09'",
            )
            .await;
        let succeeded = app
            .count("SELECT count(*) FROM job_runs WHERE job = 'rollups' AND status = 'succeeded'")
            .await;
        if revenue == 1250 && succeeded >= 1 {
            rolled_up = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        rolled_up,
        "the scheduler rolled up the order's day and recorded its run"
    );
    assert_eq!(
        app.count("SELECT sum(sessions)::int8 FROM rollup_sessions_daily")
            .await,
        1
    );
}
