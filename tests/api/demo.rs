//! `lux demo`: the synthetic company is consistent the way ingested data is (events and
//! sessions, channels, orders and customers, refunds, identity, ad spend), attributed, and
//! the same seed gives the same counts.

use std::collections::HashSet;
use std::io::BufReader;

use lux::analytics::traffic::{LandingParams, traffic_source};
use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

use crate::helpers::{BROWSER_UA, TestDb, lux_command, lux_error, pg_dump, wait_healthy};

#[derive(sqlx::FromRow)]
struct SessionRow {
    session_id: Uuid,
    /// The session's first event.
    opening: Uuid,
    started_at: chrono::DateTime<chrono::Utc>,
    landing_page: String,
    referrer: Option<String>,
    source: String,
    medium: String,
    campaign: Option<String>,
    channel: String,
    campaign_key: Option<String>,
}

/// Runs `lux demo --no-serve` with `args`; returns the company and the summary it printed.
fn run_demo(url: &str, args: &[&str]) -> (Value, Value) {
    let mut all = vec!["demo", "--no-serve"];
    all.extend_from_slice(args);
    let output = lux_command(url, &all);
    assert!(
        output.status.success(),
        "lux demo: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut docs = serde_json::Deserializer::from_slice(&output.stdout).into_iter::<Value>();
    let company = docs.next().expect("the company").expect("JSON");
    let summary = docs.next().expect("the summary").expect("JSON");
    assert!(docs.next().is_none(), "two JSON documents on stdout");
    (company, summary)
}

async fn scalar(owner: &PgPool, company: Uuid, sql: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_string()))
        .bind(company)
        .fetch_one(owner)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// Asserts that `sql` (with `$1` the company) counts nothing.
async fn none(owner: &PgPool, company: Uuid, what: &str, sql: &str) {
    let n = scalar(owner, company, sql).await;
    assert_eq!(n, 0, "{what}: {n} rows break it\n{sql}");
}

#[tokio::test]
async fn the_demo_company_is_as_consistent_as_ingested_data() {
    let db = TestDb::new().await;
    let (company, summary) = run_demo(&db.url, &["--events", "20000", "--seed", "7"]);
    assert!(
        company["write_key"]
            .as_str()
            .unwrap()
            .starts_with("lux_wk_")
    );
    assert!(
        company["secret_key"]
            .as_str()
            .unwrap()
            .starts_with("lux_sk_")
    );
    assert_eq!(company["timezone"], "America/New_York");
    let id: Uuid = company["company_id"].as_str().unwrap().parse().unwrap();
    let demo = &summary["demo"];
    let owner = db.owner().await;

    // The size asked for, give or take the sampling of people.
    let events = scalar(
        &owner,
        id,
        "SELECT count(*) FROM raw_events WHERE company_id = $1",
    )
    .await;
    assert_eq!(demo["events"].as_i64(), Some(events));
    // The experiments' exposures are written on top of the simulated visits.
    let simulated = events - demo["experiment_exposures"].as_i64().unwrap();
    assert!((17_000..=23_000).contains(&simulated), "{simulated} events");
    println!(
        "demo: {events} events, {} exposures",
        demo["experiment_exposures"]
    );

    // Events and sessions: every event in a session of its own visitor; each session's
    // counters, start and last activity are those of its events.
    none(
        &owner,
        id,
        "events without their session",
        "SELECT count(*) FROM raw_events e LEFT JOIN sessions s
           ON s.company_id = e.company_id AND s.session_id = e.session_id
         WHERE e.company_id = $1 AND (s.session_id IS NULL OR s.visitor_id <> e.visitor_id
                                      OR s.is_bot <> e.is_bot)",
    )
    .await;
    none(
        &owner,
        id,
        "session counters",
        "SELECT count(*) FROM sessions s FULL JOIN (
             SELECT session_id, count(*) AS events,
                    count(*) FILTER (WHERE event_name = 'page_view') AS page_views,
                    coalesce(sum((properties->>'engaged_ms')::bigint), 0) AS engagement_ms,
                    min(occurred_at) AS first, max(occurred_at) AS last
             FROM raw_events WHERE company_id = $1 GROUP BY session_id) e USING (session_id)
         WHERE (s.company_id = $1 OR s.company_id IS NULL)
           AND (s.session_id IS NULL OR e.session_id IS NULL OR s.events <> e.events
                OR s.page_views <> e.page_views OR s.engagement_ms <> e.engagement_ms
                OR s.started_at <> e.first OR s.last_seen_at <> e.last)",
    )
    .await;
    // Visits of one visitor are separate visits under the 30-minute rule.
    none(
        &owner,
        id,
        "sessions that ingestion would have merged",
        "SELECT count(*) FROM (
             SELECT started_at, lag(last_seen_at) OVER (PARTITION BY visitor_id
                                                      ORDER BY started_at) AS previous
             FROM sessions WHERE company_id = $1) s
         WHERE s.started_at <= s.previous + interval '30 minutes'",
    )
    .await;
    // Inside the window asked for; received just after it happened.
    let from = demo["from"].as_str().unwrap();
    let to = demo["to"].as_str().unwrap();
    none(
        &owner,
        id,
        "events outside the window",
        &format!(
            "SELECT count(*) FROM raw_events WHERE company_id = $1
               AND (occurred_at < '{from}' OR occurred_at > '{to}'
                    OR received_at <= occurred_at OR received_at > occurred_at + interval '2 s')"
        ),
    )
    .await;

    // Sessions: ids derived from their opening event, traffic classified by ingestion's
    // own rules from the landing page and referrer.
    let sessions: Vec<SessionRow> = sqlx::query_as(
        "SELECT s.session_id,
                (SELECT e.event_id FROM raw_events e WHERE e.company_id = s.company_id
                   AND e.session_id = s.session_id ORDER BY e.occurred_at LIMIT 1) AS opening,
                s.started_at,
                s.landing_page, s.referrer, s.source, s.medium, s.campaign, s.channel,
                s.campaign_key
         FROM sessions s WHERE s.company_id = $1",
    )
    .bind(id)
    .fetch_all(&owner)
    .await
    .unwrap();
    assert_eq!(demo["sessions"].as_u64(), Some(sessions.len() as u64));
    let mut channels = HashSet::new();
    for s in &sessions {
        assert_eq!(
            s.session_id,
            lux::analytics::sessions::session_id_for(id, s.opening, s.started_at)
        );
        let url = url::Url::parse(&s.landing_page).unwrap();
        let referrer = s.referrer.as_deref().map(|r| url::Url::parse(r).unwrap());
        let params = LandingParams::from_url(&url);
        let traffic = traffic_source(&params, url.host_str(), referrer.as_ref());
        assert_eq!(
            (
                traffic.source.as_str(),
                traffic.medium.as_str(),
                traffic.campaign.as_deref(),
                traffic.channel.as_str()
            ),
            (
                s.source.as_str(),
                s.medium.as_str(),
                s.campaign.as_deref(),
                s.channel.as_str()
            ),
            "{}",
            s.landing_page
        );
        assert_eq!(params.campaign_key(), s.campaign_key, "{}", s.landing_page);
        channels.insert(s.channel.clone());
    }
    for channel in [
        "Organic Search",
        "Paid Search",
        "Paid Social",
        "Email",
        "Referral",
        "Direct",
        "Organic Social",
        "SMS",
    ] {
        assert!(channels.contains(channel), "{channel} in {channels:?}");
    }
    // Click ids and UTM values on the landing page's events, as ingestion stores them.
    none(
        &owner,
        id,
        "paid visits without their click ids or tags",
        "SELECT count(*) FROM sessions WHERE company_id = $1 AND (
             (channel = 'Paid Search' AND (gclid IS NULL OR utm_campaign IS NULL))
          OR (channel = 'Paid Social' AND (fbclid IS NULL OR utm_content IS NULL))
          OR (channel IN ('Email', 'SMS') AND message_id IS NULL))",
    )
    .await;
    none(
        &owner,
        id,
        "events whose tags are not their page's",
        "SELECT count(*) FROM raw_events e JOIN sessions s USING (company_id, session_id)
         WHERE e.company_id = $1 AND CASE WHEN e.page_url = s.landing_page
             THEN e.gclid IS DISTINCT FROM s.gclid OR e.fbclid IS DISTINCT FROM s.fbclid
               OR e.utm_source IS DISTINCT FROM s.utm_source
               OR e.utm_medium IS DISTINCT FROM s.utm_medium
               OR e.utm_campaign IS DISTINCT FROM s.utm_campaign
               OR e.utm_term IS DISTINCT FROM s.utm_term
               OR e.utm_content IS DISTINCT FROM s.utm_content
             ELSE num_nonnulls(e.gclid, e.fbclid, e.utm_source, e.utm_medium, e.utm_campaign,
                               e.utm_term, e.utm_content) > 0 END",
    )
    .await;

    // Evenings are busier than nights, weekdays than Saturdays, and no day is empty.
    let at = |hour: i32| {
        format!(
            "SELECT count(*) FROM sessions WHERE company_id = $1
               AND extract(hour FROM started_at AT TIME ZONE 'America/New_York') = {hour}"
        )
    };
    assert!(scalar(&owner, id, &at(20)).await > 3 * scalar(&owner, id, &at(4)).await);
    let days = scalar(
        &owner,
        id,
        "SELECT count(DISTINCT (started_at AT TIME ZONE 'America/New_York')::date)
         FROM sessions WHERE company_id = $1",
    )
    .await;
    assert!((90..=91).contains(&days), "{days} days with visits");

    // The funnel drops off step by step; a few percent of visits buy.
    let step = |name: &str| {
        format!(
            "SELECT count(DISTINCT session_id) FROM raw_events
             WHERE company_id = $1 AND event_name = '{name}'"
        )
    };
    let mut previous = sessions.len() as i64;
    for name in ["add_to_cart", "begin_checkout", "purchase"] {
        let n = scalar(&owner, id, &step(name)).await;
        assert!(0 < n && n < previous, "{name}: {n} after {previous}");
        previous = n;
    }
    let rate = previous as f64 / sessions.len() as f64;
    assert!((0.012..0.045).contains(&rate), "purchase rate {rate}");
    for name in ["lead_submit", "signup", "login", "engagement"] {
        assert!(scalar(&owner, id, &step(name)).await > 0, "{name}");
    }
    // Crawlers, flagged as ingestion flags them.
    let bots: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT user_agent FROM raw_events WHERE company_id = $1 AND is_bot",
    )
    .bind(id)
    .fetch_all(&owner)
    .await
    .unwrap();
    assert!(!bots.is_empty());
    for ua in &bots {
        assert!(lux::analytics::event::is_bot_user_agent(ua), "{ua}");
    }
    assert!(!lux::analytics::event::is_bot_user_agent(BROWSER_UA));

    // Privacy: hashes only. No address, no raw IP, anywhere in the database.
    none(
        &owner,
        id,
        "unhashed personal data",
        "SELECT count(*) FROM raw_events WHERE company_id = $1
           AND (page_url LIKE '%@%' OR referrer LIKE '%@%' OR properties::text LIKE '%@%'
                OR user_id LIKE '%@%' OR length(ip_hash) <> 32 OR ip_hash IS NULL
                OR length(email_hash) <> 32)",
    )
    .await;
    let dump = pg_dump(&db.url);
    assert!(
        !dump.contains("@demo.northwind.example"),
        "an address in the dump"
    );

    // Identity: signups, logins, leads and purchases link visitors to people; some people
    // use two devices, and both resolve to one person.
    none(
        &owner,
        id,
        "linking events without their identity keys",
        "SELECT count(*) FROM raw_events e WHERE e.company_id = $1
           AND e.event_name IN ('signup', 'login', 'lead_submit', 'purchase')
           AND NOT EXISTS (
               SELECT 1 FROM identity_keys v JOIN identity_keys k
                 ON k.company_id = v.company_id AND k.person_id = v.person_id
               WHERE v.company_id = e.company_id AND v.key_kind = 'visitor'
                 AND v.key_value = e.visitor_id::text
                 AND ((k.key_kind = 'user' AND k.key_value = e.user_id)
                   OR (k.key_kind = 'email' AND k.key_value = encode(e.email_hash, 'hex'))))",
    )
    .await;
    none(
        &owner,
        id,
        "identity keys seen before their first event",
        "SELECT count(*) FROM identity_keys k WHERE company_id = $1
           AND k.key_kind = 'visitor' AND k.first_seen_at < (
               SELECT min(occurred_at) FROM raw_events e
               WHERE e.company_id = k.company_id AND e.visitor_id = k.key_value::uuid)",
    )
    .await;
    let two_devices = scalar(
        &owner,
        id,
        "SELECT count(*) FROM (SELECT person_id FROM identity_keys
           WHERE company_id = $1 AND key_kind = 'visitor'
           GROUP BY person_id HAVING count(*) = 2) p",
    )
    .await;
    assert!(two_devices > 0);
    assert_eq!(demo["two_device_persons"].as_i64(), Some(two_devices));

    // Orders: one per purchase event, as commerce merges it.
    let orders = scalar(
        &owner,
        id,
        "SELECT count(*) FROM orders WHERE company_id = $1",
    )
    .await;
    assert_eq!(orders, scalar(&owner, id, &step("purchase")).await);
    assert_eq!(demo["orders"].as_i64(), Some(orders));
    none(
        &owner,
        id,
        "purchase events and their orders",
        "SELECT count(*) FROM raw_events e LEFT JOIN orders o
           ON o.company_id = e.company_id AND o.order_number = e.properties->>'order_id'
         WHERE e.company_id = $1 AND e.event_name = 'purchase'
           AND (o.order_id IS NULL OR o.visitor_id <> e.visitor_id
                OR o.session_id <> e.session_id OR o.email_hash <> e.email_hash
                OR o.user_id IS DISTINCT FROM e.user_id OR o.currency <> e.properties->>'currency'
                OR o.gross_minor <> round((e.properties->>'value')::numeric * 100)
                OR o.tax_minor <> round((e.properties->>'tax')::numeric * 100)
                OR o.placed_at > e.occurred_at
                OR o.placed_at <= e.occurred_at - interval '1 s')",
    )
    .await;
    none(
        &owner,
        id,
        "order refs and sources",
        "SELECT count(*) FROM orders o WHERE o.company_id = $1 AND (
             NOT EXISTS (SELECT 1 FROM order_refs r WHERE r.company_id = o.company_id
                         AND r.ref = 'order:' || o.order_number AND r.order_id = o.order_id)
          OR NOT EXISTS (SELECT 1 FROM order_sources s WHERE s.company_id = o.company_id
                         AND s.order_id = o.order_id AND s.source = 'event'
                         AND s.gross_minor = o.gross_minor)
          OR o.sources <> CASE WHEN o.refunded_minor > 0 THEN '{stripe,event}'::text[]
                               ELSE '{event}'::text[] END)",
    )
    .await;
    // Refunds: a Stripe source says how much; status and net follow.
    none(
        &owner,
        id,
        "refund arithmetic",
        "SELECT count(*) FROM orders o LEFT JOIN order_sources s
           ON s.company_id = o.company_id AND s.order_id = o.order_id AND s.source = 'stripe'
         WHERE o.company_id = $1 AND (
             o.net_minor <> o.gross_minor - o.refunded_minor
          OR o.status <> CASE WHEN o.refunded_minor = 0 THEN 'paid'
                              WHEN o.refunded_minor >= o.gross_minor THEN 'refunded'
                              ELSE 'partially_refunded' END
          OR (o.refunded_minor > 0) <> (s.order_id IS NOT NULL)
          OR s.refunded_minor <> o.refunded_minor
          OR s.source_updated_at <= o.placed_at
          OR o.gross_minor <> (SELECT e.gross_minor FROM order_sources e
                  WHERE e.company_id = o.company_id AND e.order_id = o.order_id
                    AND e.source = 'event'))",
    )
    .await;
    let stripe_refs = scalar(
        &owner,
        id,
        "SELECT count(*) FROM order_refs r JOIN orders o USING (company_id, order_id)
         WHERE r.company_id = $1 AND o.refunded_minor > 0
           AND (r.ref LIKE 'stripe:pi\\_%' OR r.ref LIKE 'stripe:ch\\_%')",
    )
    .await;
    let refunded = scalar(
        &owner,
        id,
        "SELECT count(*) FROM orders WHERE company_id = $1 AND refunded_minor > 0",
    )
    .await;
    assert_eq!(stripe_refs, 2 * refunded);
    for status in ["paid", "partially_refunded", "refunded"] {
        let n = scalar(
            &owner,
            id,
            &format!("SELECT count(*) FROM orders WHERE company_id = $1 AND status = '{status}'"),
        )
        .await;
        assert!(n > 0, "some orders {status}");
    }

    // Customers: one per buyer (email hash), exactly one first order each, the earliest.
    let customers = scalar(
        &owner,
        id,
        "SELECT count(*) FROM customers WHERE company_id = $1",
    )
    .await;
    assert_eq!(demo["customers"].as_i64(), Some(customers));
    none(
        &owner,
        id,
        "first orders",
        "SELECT count(*) FROM customers c WHERE c.company_id = $1 AND (
             (SELECT count(*) FROM orders o WHERE o.company_id = c.company_id
                AND o.customer_id = c.customer_id AND o.is_first_order) <> 1
          OR c.first_order_at <> (SELECT min(placed_at) FROM orders o
                WHERE o.company_id = c.company_id AND o.customer_id = c.customer_id)
          OR EXISTS (SELECT 1 FROM orders f JOIN orders o USING (company_id, customer_id)
                     WHERE f.company_id = c.company_id AND f.customer_id = c.customer_id
                       AND f.is_first_order AND o.placed_at < f.placed_at)
          OR EXISTS (SELECT 1 FROM orders o WHERE o.company_id = c.company_id
                       AND o.customer_id = c.customer_id AND o.email_hash <> c.email_hash))",
    )
    .await;
    none(
        &owner,
        id,
        "orders without a customer",
        "SELECT count(*) FROM orders WHERE company_id = $1 AND customer_id IS NULL",
    )
    .await;
    let repeat = scalar(
        &owner,
        id,
        "SELECT count(*) FROM (SELECT customer_id FROM orders WHERE company_id = $1
           GROUP BY customer_id HAVING count(*) >= 2) c",
    )
    .await;
    assert!(repeat > 0, "repeat customers");
    assert_eq!(demo["repeat_customers"].as_i64(), Some(repeat));

    // Ad spend: for the campaigns (Google) and ads (Meta) the paid visits came from, in the
    // channel those visits are in, with at least as many clicks as visits each local day.
    none(
        &owner,
        id,
        "spend without its visits",
        "SELECT count(*) FROM (SELECT DISTINCT platform, campaign, ad_id, channel, source, medium
                               FROM ad_spend WHERE company_id = $1) a
         WHERE NOT EXISTS (
             SELECT 1 FROM sessions s WHERE s.company_id = $1 AND s.campaign = a.campaign
               AND s.channel = a.channel AND s.source = a.source AND s.medium = a.medium
               AND (a.platform = 'google_ads' AND a.ad_id = '' AND s.channel = 'Paid Search'
                 OR a.platform = 'meta_ads' AND s.utm_content = a.ad_id
                    AND s.channel = 'Paid Social'))",
    )
    .await;
    none(
        &owner,
        id,
        "paid visits without spend, or more visits than clicks",
        "SELECT count(*) FROM (
             SELECT (s.started_at AT TIME ZONE 'America/New_York')::date AS day, s.campaign,
                    CASE WHEN s.channel = 'Paid Social' THEN s.utm_content ELSE '' END AS ad_id,
                    count(*) AS visits
             FROM sessions s WHERE s.company_id = $1
               AND s.channel IN ('Paid Search', 'Paid Social')
             GROUP BY 1, 2, 3) v
         LEFT JOIN ad_spend a ON a.company_id = $1 AND a.day = v.day
              AND a.campaign = v.campaign AND a.ad_id = v.ad_id
         WHERE a.clicks IS NULL OR a.clicks < v.visits OR a.impressions < a.clicks
            OR a.spend <= 0",
    )
    .await;
    assert!(
        scalar(
            &owner,
            id,
            "SELECT count(*) FROM ad_spend WHERE company_id = $1 AND platform = 'google_ads'"
        )
        .await
            > 0
    );
    assert!(
        scalar(
            &owner,
            id,
            "SELECT count(*) FROM ad_spend WHERE company_id = $1 AND platform = 'meta_ads'"
        )
        .await
            > 0
    );

    // The jobs ran: every order is attributed (or says why not), and most to a touch.
    let jobs = summary["jobs"].as_array().unwrap();
    assert_eq!(jobs.len(), 3);
    // Then yesterday's alerts were evaluated on their rollups (recorded; what fires depends
    // on the size: the default demo's Meta CPC rise fires `cpa_wow`, docs/alerts.md).
    assert!(summary["alerts"]["fired"].is_array(), "{summary}");
    assert_eq!(
        scalar(
            &owner,
            id,
            "SELECT count(*) FROM alert_runs WHERE company_id = $1"
        )
        .await,
        1
    );
    assert_eq!(jobs[0]["job"], "attribution");
    assert_eq!(jobs[1]["job"], "rollups");
    assert_eq!(jobs[2]["job"], "creative_fatigue");

    // The creative library: every Meta ad in the catalog, over several concepts and angles;
    // the fatigue job judged the story ads (at this small scale their numbers may not be
    // enough yet: `lux demo` at its default scale shows one fatigued and one fresh).
    let creatives = scalar(
        &owner,
        id,
        "SELECT count(*) FROM creatives WHERE company_id = $1",
    )
    .await;
    assert_eq!(demo["creatives"].as_i64(), Some(creatives));
    assert_eq!(
        creatives,
        scalar(
            &owner,
            id,
            "SELECT count(DISTINCT ad_id) FROM ad_spend WHERE company_id = $1 AND ad_id <> ''"
        )
        .await
    );
    assert!(
        scalar(
            &owner,
            id,
            "SELECT count(DISTINCT concept) + count(DISTINCT angle) FROM creatives
             WHERE company_id = $1"
        )
        .await
            >= 5
    );
    assert!(
        scalar(
            &owner,
            id,
            "SELECT count(DISTINCT creative_id) FROM creative_fatigue_history
             WHERE company_id = $1 AND creative_id IN ('120210000000201', '120210000000101')"
        )
        .await
            == 2
    );
    // The rollups add up to what they were computed from: every session that is not a bot's,
    // and every order's net revenue under each model.
    assert_eq!(
        scalar(
            &owner,
            id,
            "SELECT coalesce(sum(sessions), 0)::int8 FROM rollup_sessions_daily
             WHERE company_id = $1"
        )
        .await,
        scalar(
            &owner,
            id,
            "SELECT count(*) FROM sessions WHERE company_id = $1 AND NOT is_bot"
        )
        .await
    );
    for model in ["last_touch", "linear", "time_decay"] {
        assert_eq!(
            scalar(
                &owner,
                id,
                &format!(
                    "SELECT round(sum(net_minor))::int8 FROM rollup_revenue_daily
                     WHERE company_id = $1 AND model = '{model}'"
                )
            )
            .await,
            scalar(
                &owner,
                id,
                "SELECT sum(net_minor)::int8 FROM orders
                 WHERE company_id = $1 AND status NOT IN ('cancelled', 'failed')"
            )
            .await,
            "{model}"
        );
    }
    none(
        &owner,
        id,
        "orders the attribution job did not see",
        "SELECT count(*) FROM orders WHERE company_id = $1 AND attribution_status IS NULL",
    )
    .await;
    let attributed = scalar(
        &owner,
        id,
        "SELECT count(*) FROM orders WHERE company_id = $1 AND attribution_status = 'attributed'",
    )
    .await;
    assert_eq!(
        attributed, orders,
        "every buyer has a visit within 72 hours: the purchase's"
    );
    assert_eq!(
        scalar(
            &owner,
            id,
            "SELECT count(*) FROM job_runs WHERE company_id = $1 AND status = 'succeeded'"
        )
        .await,
        3
    );
    demo_messages_are_realistic_and_earn_orders(&db.url, &owner, id, demo).await;
    demo_experiments_won_lost_and_running(&db.url, id, demo);
}

/// The demo's experiments: two won, one lost, one running, each with exposed and converted
/// visitors in both variants of the `experiments` report, and ops velocity that counts them.
fn demo_experiments_won_lost_and_running(url: &str, id: Uuid, demo: &Value) {
    assert_eq!(demo["experiments"], 4, "{demo}");
    assert!(demo["experiment_exposures"].as_u64().unwrap() > 0, "{demo}");
    let from = (chrono::Utc::now() - chrono::Duration::days(800)).date_naive();
    let to = (chrono::Utc::now() + chrono::Duration::days(1)).date_naive();
    let report = |name: &str| {
        crate::helpers::lux_json(
            url,
            &[
                "report",
                name,
                "--company",
                &id.to_string(),
                "--from",
                &from.to_string(),
                "--to",
                &to.to_string(),
                "--format",
                "json",
            ],
        )["rows"]
            .as_array()
            .unwrap()
            .clone()
    };
    let rows = report("experiments");
    let keys: HashSet<&str> = rows.iter().map(|r| r["key"].as_str().unwrap()).collect();
    assert_eq!(keys.len(), 4, "{rows:?}");
    let winners: HashSet<&str> = rows.iter().filter_map(|r| r["winner"].as_str()).collect();
    assert_eq!(winners, HashSet::from(["benefit", "badges"]), "{rows:?}");
    let running: HashSet<&str> = rows
        .iter()
        .filter(|r| r["status"] == "running")
        .map(|r| r["key"].as_str().unwrap())
        .collect();
    assert_eq!(running, HashSet::from(["pdp-video"]));
    assert_eq!(rows.len(), 8, "a control and a treatment each: {rows:?}");
    for row in &rows {
        assert!(row["exposed"].as_u64().unwrap() > 0, "{row}");
        assert_eq!(row["is_control"], row["variant"] == "control", "{row}");
    }
    let velocity = report("ops_velocity");
    let total = |field: &str| -> u64 { velocity.iter().map(|m| m[field].as_u64().unwrap()).sum() };
    assert_eq!(
        (total("launched"), total("concluded"), total("won")),
        (4, 3, 2),
        "{velocity:?}"
    );
}

/// The demo's email and SMS campaigns: both channels, every kind of outcome, sends whose
/// landings bought credited with those orders, and a `messages` report that adds up.
async fn demo_messages_are_realistic_and_earn_orders(
    url: &str,
    owner: &PgPool,
    id: Uuid,
    demo: &Value,
) {
    let sends = scalar(
        owner,
        id,
        "SELECT count(*) FROM message_sends WHERE company_id = $1",
    )
    .await;
    assert_eq!(demo["message_sends"].as_i64(), Some(sends));
    assert_eq!(
        demo["message_events"].as_i64(),
        Some(
            scalar(
                owner,
                id,
                "SELECT count(*) FROM message_events WHERE company_id = $1"
            )
            .await
        )
    );
    for (what, sql) in [
        (
            "email sends",
            "SELECT count(*) FROM message_sends WHERE company_id = $1 AND channel = 'email'",
        ),
        (
            "sms sends",
            "SELECT count(*) FROM message_sends WHERE company_id = $1 AND channel = 'sms'",
        ),
        (
            "bounces",
            "SELECT count(*) FROM message_events WHERE company_id = $1 AND kind = 'bounced'",
        ),
        (
            "human opens",
            "SELECT count(*) FROM message_events WHERE company_id = $1 AND kind = 'opened' AND NOT is_machine",
        ),
        (
            "machine opens",
            "SELECT count(*) FROM message_events WHERE company_id = $1 AND kind = 'opened' AND is_machine",
        ),
        (
            "human clicks",
            "SELECT count(*) FROM message_events WHERE company_id = $1 AND kind = 'clicked' AND NOT is_machine",
        ),
        (
            "/r/ clicks",
            "SELECT count(*) FROM message_events WHERE company_id = $1 AND provider = 'link'",
        ),
        (
            "unsubscribes",
            "SELECT count(*) FROM message_events WHERE company_id = $1 AND kind = 'unsubscribed'",
        ),
        (
            "complaints",
            "SELECT count(*) FROM message_events WHERE company_id = $1 AND kind = 'complained'",
        ),
        (
            "credited orders",
            "SELECT count(*) FROM orders WHERE company_id = $1 AND message_id IS NOT NULL",
        ),
    ] {
        assert!(scalar(owner, id, sql).await > 0, "no {what}");
    }
    none(
        owner,
        id,
        "orders credited outside the 120 h before the purchase",
        "SELECT count(*) FROM orders WHERE company_id = $1 AND message_id IS NOT NULL
           AND NOT (message_click_at BETWEEN placed_at - interval '120 hours' AND placed_at)",
    )
    .await;
    // The report over the whole demo: every send, and the credited orders with revenue.
    let from = (chrono::Utc::now() - chrono::Duration::days(800)).date_naive();
    let to = (chrono::Utc::now() + chrono::Duration::days(1)).date_naive();
    let report = crate::helpers::lux_json(
        url,
        &[
            "report",
            "messages",
            "--company",
            &id.to_string(),
            "--from",
            &from.to_string(),
            "--to",
            &to.to_string(),
            "--format",
            "json",
        ],
    );
    let rows = report["rows"].as_array().unwrap();
    let channels: HashSet<&str> = rows
        .iter()
        .map(|r| r["channel"].as_str().unwrap())
        .collect();
    assert_eq!(channels, HashSet::from(["email", "sms"]), "{report}");
    let total = |field: &str| -> i64 { rows.iter().map(|r| r[field].as_i64().unwrap()).sum() };
    assert_eq!(total("sent"), sends);
    assert_eq!(
        total("orders"),
        scalar(
            owner,
            id,
            "SELECT count(*) FROM orders WHERE company_id = $1 AND message_id IS NOT NULL
               AND status NOT IN ('cancelled', 'failed')"
        )
        .await
    );
    let email = rows.iter().find(|r| r["channel"] == "email").unwrap();
    let open_rate = email["open_rate"].as_f64().unwrap();
    assert!((0.1..0.6).contains(&open_rate), "{email}");
    assert!(email["machine_opens"].as_i64().unwrap() > 0, "{email}");
    assert!(email["revenue"].as_str().unwrap() != "0.00", "{email}");
}

#[tokio::test]
async fn the_same_seed_gives_the_same_counts_and_another_seed_does_not() {
    let db = TestDb::new().await;
    let counts = |summary: &Value| -> Vec<Value> {
        [
            "persons",
            "visitors",
            "sessions",
            "events",
            "page_views",
            "identity_keys",
            "orders",
            "refunded_orders",
            "customers",
            "repeat_customers",
            "spend_rows",
            "gross_revenue",
            "message_sends",
            "message_events",
        ]
        .iter()
        .map(|k| summary["demo"][k].clone())
        .collect()
    };
    let (a, first) = run_demo(
        &db.url,
        &["--events", "5000", "--seed", "42", "--days", "30"],
    );
    let (b, second) = run_demo(
        &db.url,
        &["--events", "5000", "--seed", "42", "--days", "30"],
    );
    let (_, other) = run_demo(
        &db.url,
        &["--events", "5000", "--seed", "43", "--days", "30"],
    );
    assert_ne!(a["company_id"], b["company_id"]);
    assert_eq!(counts(&first), counts(&second));
    assert_ne!(counts(&first), counts(&other));
    // Two demo companies side by side: each has its own rows.
    let owner = db.owner().await;
    for (company, summary) in [(&a, &first), (&b, &second)] {
        let id: Uuid = company["company_id"].as_str().unwrap().parse().unwrap();
        let events = scalar(
            &owner,
            id,
            "SELECT count(*) FROM raw_events WHERE company_id = $1",
        )
        .await;
        let sessions = scalar(
            &owner,
            id,
            "SELECT count(*) FROM sessions WHERE company_id = $1",
        )
        .await;
        assert_eq!(summary["demo"]["events"].as_i64(), Some(events));
        assert_eq!(summary["demo"]["sessions"].as_i64(), Some(sessions));
    }
}

#[tokio::test]
async fn the_demo_options_are_checked_before_anything_is_written() {
    let db = TestDb::new().await;
    let error = lux_error(&db.url, &["demo", "--scale", "2", "--events", "10"]);
    assert!(
        error.contains("--scale") && error.contains("--events"),
        "{error}"
    );
    let error = lux_error(&db.url, &["demo", "--no-serve", "--days", "0"]);
    assert!(error.contains("--days 0"), "{error}");
    let error = lux_error(&db.url, &["demo", "--no-serve", "--scale", "0"]);
    assert!(error.contains("--scale"), "{error}");
}

#[tokio::test]
async fn the_demo_serves_afterwards_with_the_keys_it_printed() {
    let db = TestDb::new().await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_lux"))
        .args([
            "demo",
            "--events",
            "2000",
            "--bind",
            &format!("127.0.0.1:{port}"),
            "--jobs-interval",
            "0",
        ])
        .env("DATABASE_URL", &db.url)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn lux demo");
    let stdout = child.stdout.take().unwrap();
    // The company comes first, then the summary; both are printed before serving starts.
    let company = tokio::task::spawn_blocking(move || {
        let mut docs =
            serde_json::Deserializer::from_reader(BufReader::new(stdout)).into_iter::<Value>();
        let company = docs.next().unwrap().unwrap();
        let _summary = docs.next().unwrap().unwrap();
        company
    })
    .await
    .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    wait_healthy(&base).await;
    let answer = reqwest::Client::new()
        .post(format!(
            "{base}/e?key={}",
            company["write_key"].as_str().unwrap()
        ))
        .header("user-agent", BROWSER_UA)
        .body(r#"{"event_name":"page_view","page_url":"https://www.northwind.example/"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 202);
    let _ = child.kill();
    let _ = child.wait();
}
