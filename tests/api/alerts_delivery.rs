//! Alert delivery with real servers (SPEC §8.4): aiosmtpd for email, an HTTP receiver for
//! Slack, a real `lux serve` child for kill -9. Notifications go out on firing and on
//! resolving only, once each, after quiet hours, to the company's own recipients.

use std::time::Duration;

use chrono::{DateTime, Utc};
use lux::alerts::delivery::{DeliveryOptions, Pass, deliver_due};
use lux::alerts::{AlertSettings, SmtpSettings};
use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

use crate::alerts::{
    SlackReceiver, SmtpServer, app_pool, day, days_before, evaluate, fatigue, free_port,
    morning_after, revenue_series,
};
use crate::helpers::{
    ServeProcess, TestApp, TestDb, create_company, lux_command, lux_json, test_options,
};

fn delivery(smtp_url: &str) -> DeliveryOptions {
    DeliveryOptions {
        smtp: Some(SmtpSettings::parse(smtp_url, "LUX Alerts <alerts@lux.example.com>").unwrap()),
        retry_base: Duration::from_secs(60),
        retry_cap: Duration::from_secs(600),
        poll: Duration::from_millis(100),
        // The Slack receiver listens on 127.0.0.1.
        allow_private_webhooks: true,
        ..DeliveryOptions::default()
    }
}

async fn configure(pool: &PgPool, company: Uuid, emails: &[&str], quiet: Option<&str>) {
    let settings = AlertSettings {
        emails: emails.iter().map(|e| e.to_string()).collect(),
        quiet_hours: quiet.map(|q| lux::alerts::config::QuietHours::parse(q).unwrap()),
        ..AlertSettings::default()
    };
    settings.save(pool, company).await.unwrap();
}

async fn deliver(
    pool: &PgPool,
    company: Uuid,
    now: DateTime<Utc>,
    options: &DeliveryOptions,
) -> Pass {
    deliver_due(pool, company, now, options, &Default::default())
        .await
        .unwrap()
}

async fn delivery_rows(
    owner: &PgPool,
    company: Uuid,
) -> Vec<(String, String, i32, Option<String>)> {
    sqlx::query_as(
        "SELECT target, status, attempts, last_error FROM alert_deliveries
         WHERE company_id = $1 ORDER BY created_at, target",
    )
    .bind(company)
    .fetch_all(owner)
    .await
    .unwrap()
}

// Multi-threaded: the Slack receiver runs in this runtime while `lux alerts check` (a child
// process the test waits for) posts to it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_reaches_its_recipients_by_smtp_and_slack_and_the_history_report_shows_it() {
    let app = TestApp::spawn().await;
    let smtp = SmtpServer::start(free_port()).await;
    let slack = SlackReceiver::start().await;
    let config = format!("{}/api/v1/alerts/config", app.base);
    let put = app
        .client
        .put(&config)
        .bearer_auth(&app.company.secret_key)
        .json(
            &serde_json::json!({"emails": ["ops@acme.example", "cmo@acme.example"],
                                  "slack_webhook": slack.url}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 200);
    revenue_series(&app.owner, app.company.id, 540.0, 12.0).await;

    let id = app.company.id.to_string();
    let out = lux_json(
        &app.db.url,
        &[
            "alerts",
            "check",
            "--company",
            &id,
            "--date",
            "2026-11-30",
            "--smtp-url",
            &smtp.url(),
            "--smtp-from",
            "LUX Alerts <alerts@lux.example.com>",
            "--alerts-public-url",
            "https://lux.example.com",
            "--alerts-allow-private-webhooks",
        ],
    );
    assert_eq!(out["fired"][0]["rule"], "revenue_anomaly", "{out}");
    let rows = delivery_rows(&app.owner, app.company.id).await;
    assert_eq!(out["delivered"]["sent"], 3, "{out} {rows:?}");

    let mail = smtp.wait_for(2).await;
    assert_eq!(mail.len(), 2);
    let mut recipients: Vec<&str> = mail
        .iter()
        .map(|m| m["rcpt_tos"][0].as_str().unwrap())
        .collect();
    recipients.sort();
    assert_eq!(recipients, ["cmo@acme.example", "ops@acme.example"]);
    for m in &mail {
        assert_eq!(
            m["rcpt_tos"].as_array().unwrap().len(),
            1,
            "one recipient per message: {m}"
        );
        let subject = m["subject"].as_str().unwrap();
        assert_eq!(
            subject,
            "[Acme] [WARNING] Net revenue drop on 2026-11-30: 940.00 EUR"
        );
        let text = m["text"].as_str().unwrap();
        assert!(
            text.contains(
                "Net revenue on 2026-11-30 was 940.00 EUR, below the median of 1000.00 EUR"
            ),
            "{text}"
        );
        assert!(
            text.contains("Likely driver: channel Paid Search, 100.0 %"),
            "{text}"
        );
        let link = format!("https://lux.example.com/app/{id}/executive");
        assert!(text.contains(&link), "{text}");
        let html = m["html"].as_str().unwrap();
        assert!(html.contains(&format!("<a href=\"{link}\">")), "{html}");
        assert!(
            m["message_id"].as_str().unwrap().ends_with("@lux-alerts>"),
            "{m}"
        );
        assert_eq!(m["mail_from"], "alerts@lux.example.com");
    }
    let posts = slack.posts();
    assert_eq!(posts.len(), 1);
    let text = posts[0]["text"].as_str().unwrap();
    assert!(
        text.contains("*[WARNING] Net revenue drop on 2026-11-30: 940.00 EUR*"),
        "{text}"
    );
    assert!(text.contains("|Open the dashboard>"), "{text}");

    let report: Value = app
        .client
        .get(format!(
            "{}/api/v1/reports/alerts?from=2026-11-01&to=2026-11-30",
            app.base
        ))
        .bearer_auth(&app.company.secret_key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(report["report"], "alerts");
    let row = &report["rows"][0];
    assert_eq!(
        (row["rule"].as_str(), row["state"].as_str()),
        (Some("revenue_anomaly"), Some("firing"))
    );
    let deliveries = row["deliveries"].as_array().unwrap();
    assert_eq!(deliveries.len(), 3);
    assert!(
        deliveries
            .iter()
            .all(|d| d["status"] == "sent" && d["attempts"] == 1),
        "{deliveries:?}"
    );

    // `lux alerts test` goes the same way.
    let out = lux_json(
        &app.db.url,
        &[
            "alerts",
            "test",
            &id,
            "--smtp-url",
            &smtp.url(),
            "--alerts-allow-private-webhooks",
        ],
    );
    assert_eq!(out["delivered"]["sent"], 3, "{out}");
    let mail = smtp.wait_for(4).await;
    assert_eq!(
        mail.iter()
            .filter(|m| m["subject"] == "[Acme] LUX Analytics test alert")
            .count(),
        2
    );
    assert_eq!(slack.posts().len(), 2);
    app.stop().await;
}

#[tokio::test]
async fn smtp_down_is_retried_with_back_off_and_delivered_exactly_once_when_it_returns() {
    let app = TestApp::spawn().await;
    let pool = app_pool(&app).await;
    let company = app.company.id;
    configure(&pool, company, &["ops@acme.example"], None).await;
    revenue_series(&app.owner, company, 540.0, 12.0).await;
    let port = free_port();
    let options = delivery(&format!("smtp://127.0.0.1:{port}"));
    let counters = lux::telemetry::AlertCounters::default();
    let now = morning_after(day());

    evaluate(&pool, company, day()).await;
    let first = deliver_due(&pool, company, now, &options, &counters)
        .await
        .unwrap();
    assert_eq!((first.sent, first.failed), (0, 1));
    let rows = delivery_rows(&app.owner, company).await;
    assert_eq!((rows[0].1.as_str(), rows[0].2), ("pending", 1));
    assert!(rows[0].3.as_deref().unwrap().contains("SMTP"), "{rows:?}");
    // Not due again before the back-off (60 s); after it, a second failure waits 120 s.
    let early = deliver(
        &pool,
        company,
        now + chrono::Duration::seconds(59),
        &options,
    )
    .await;
    assert_eq!((early.sent, early.failed), (0, 0));
    let second = deliver_due(
        &pool,
        company,
        now + chrono::Duration::seconds(60),
        &options,
        &counters,
    )
    .await
    .unwrap();
    assert_eq!(second.failed, 1);
    let next: DateTime<Utc> =
        sqlx::query_scalar("SELECT next_attempt_at FROM alert_deliveries WHERE company_id = $1")
            .bind(company)
            .fetch_one(&app.owner)
            .await
            .unwrap();
    assert_eq!(next, now + chrono::Duration::seconds(60 + 120));
    assert_eq!(counters.delivery_failures.get(), 2);

    // The server comes back: delivered once, and never again.
    let smtp = SmtpServer::start(port).await;
    let later = now + chrono::Duration::seconds(180);
    let third = deliver(&pool, company, later, &options).await;
    assert_eq!((third.sent, third.failed), (1, 0));
    let again = deliver(&pool, company, later + chrono::Duration::hours(2), &options).await;
    assert_eq!((again.sent, again.failed), (0, 0));
    assert_eq!(smtp.wait_for(1).await.len(), 1);
    let rows = delivery_rows(&app.owner, company).await;
    assert_eq!((rows[0].1.as_str(), rows[0].2), ("sent", 3));
    app.stop().await;
}

#[tokio::test]
async fn a_rerun_of_the_same_day_notifies_nobody_a_cleared_condition_resolves_once_and_a_return_fires_again()
 {
    let app = TestApp::spawn().await;
    let pool = app_pool(&app).await;
    let company = app.company.id;
    configure(&pool, company, &["ops@acme.example"], None).await;
    let smtp = SmtpServer::start(free_port()).await;
    let options = delivery(&smtp.url());
    let d1 = day() + chrono::Days::new(1);
    let d2 = day() + chrono::Days::new(2);
    fatigue(
        &app.owner,
        company,
        "ad-42",
        days_before(1),
        "watch",
        0.15,
        20_000,
    )
    .await;
    fatigue(
        &app.owner,
        company,
        "ad-42",
        day(),
        "fatigued",
        0.30,
        20_000,
    )
    .await;

    // Day D fires; the same day evaluated again changes nothing and sends nothing.
    let e = evaluate(&pool, company, day()).await;
    assert_eq!(e.fired.len(), 1);
    let e = evaluate(&pool, company, day()).await;
    assert_eq!((e.fired.len(), e.resolved.len(), e.enqueued), (0, 0, 0));
    assert_eq!(
        deliver(&pool, company, morning_after(day()), &options)
            .await
            .sent,
        1
    );

    // D+1: back to watch — one "resolved" message; evaluating D+1 again sends nothing.
    fatigue(&app.owner, company, "ad-42", d1, "watch", 0.15, 20_000).await;
    let e = evaluate(&pool, company, d1).await;
    assert_eq!(e.resolved.len(), 1);
    let e = evaluate(&pool, company, d1).await;
    assert_eq!(e.enqueued, 0);
    assert_eq!(
        deliver(&pool, company, morning_after(d1), &options)
            .await
            .sent,
        1
    );

    // D+2: fatigued again — it fires again, as a new alert.
    fatigue(&app.owner, company, "ad-42", d2, "fatigued", 0.35, 20_000).await;
    let e = evaluate(&pool, company, d2).await;
    assert_eq!(e.fired.len(), 1);
    assert_eq!(
        deliver(&pool, company, morning_after(d2), &options)
            .await
            .sent,
        1
    );

    let mail = smtp.wait_for(3).await;
    let subjects: Vec<&str> = mail
        .iter()
        .map(|m| m["subject"].as_str().unwrap())
        .collect();
    assert_eq!(
        subjects,
        [
            "[Acme] [RESOLVED] Creative ad-42 is fatigued (CTR −30.0 %)",
            "[Acme] [WARNING] Creative ad-42 is fatigued (CTR −30.0 %)",
            "[Acme] [WARNING] Creative ad-42 is fatigued (CTR −35.0 %)",
        ]
    );
    let resolved = mail
        .iter()
        .find(|m| m["subject"].as_str().unwrap().contains("RESOLVED"))
        .unwrap();
    assert!(
        resolved["text"]
            .as_str()
            .unwrap()
            .contains("Resolved on 2026-12-01"),
        "{resolved}"
    );
    let states: Vec<(String, Option<chrono::NaiveDate>)> = sqlx::query_as(
        "SELECT state, resolved_on FROM alerts WHERE company_id = $1 ORDER BY created_at",
    )
    .bind(company)
    .fetch_all(&app.owner)
    .await
    .unwrap();
    assert_eq!(
        states,
        [
            ("resolved".to_string(), Some(d1)),
            ("firing".to_string(), None)
        ]
    );
    let runs: i64 = sqlx::query_scalar("SELECT count(*) FROM alert_runs WHERE company_id = $1")
        .bind(company)
        .fetch_one(&app.owner)
        .await
        .unwrap();
    assert_eq!(runs, 5, "every evaluation is recorded");
    app.stop().await;
}

#[tokio::test]
async fn several_alerts_of_one_evaluation_go_out_as_one_digest_per_recipient() {
    let app = TestApp::spawn().await;
    let pool = app_pool(&app).await;
    let company = app.company.id;
    configure(&pool, company, &["ops@acme.example"], None).await;
    let smtp = SmtpServer::start(free_port()).await;
    revenue_series(&app.owner, company, 540.0, 12.0).await;
    crate::alerts::email_day(&app.owner, company, days_before(2), "black-friday", 1000, 2).await;

    let e = evaluate(&pool, company, day()).await;
    assert_eq!(e.fired.len(), 3, "{:?}", e.fired);
    assert_eq!(e.enqueued, 1);
    let sent = deliver(&pool, company, morning_after(day()), &delivery(&smtp.url())).await;
    assert_eq!(sent.sent, 1);
    let mail = smtp.wait_for(1).await;
    assert_eq!(
        mail[0]["subject"],
        "[Acme] 3 alerts for 2026-11-30: 3 firing, 0 resolved"
    );
    let text = mail[0]["text"].as_str().unwrap();
    for title in [
        "[WARNING] Net revenue drop on 2026-11-30: 940.00 EUR",
        "[WARNING] Email complaints at 0.20 % (all email)",
        "[WARNING] Email complaints at 0.20 % (email campaign black-friday)",
    ] {
        assert!(text.contains(title), "{title} in {text}");
    }
    // The history report has all three, each with the one delivery that told about it.
    let report: Value = app
        .client
        .get(format!(
            "{}/api/v1/reports/alerts?from=2026-11-30&to=2026-11-30",
            app.base
        ))
        .bearer_auth(&app.company.secret_key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let rows = report["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 3);
    assert!(
        rows.iter()
            .all(|r| r["deliveries"].as_array().unwrap().len() == 1)
    );
    let bad = app
        .client
        .get(format!(
            "{}/api/v1/reports/alerts?from=2026-11-30",
            app.base
        ))
        .bearer_auth(&app.company.secret_key)
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    app.stop().await;
}

#[tokio::test]
async fn quiet_hours_hold_delivery_until_they_end_and_a_company_alerts_never_reach_another_company()
{
    let app = TestApp::spawn().await;
    let pool = app_pool(&app).await;
    let smtp = SmtpServer::start(free_port()).await;
    let options = delivery(&smtp.url());
    let a = app.company.id;
    let b = create_company(&app.owner, "Bistro").await.id;
    // A is quiet until 08:00 Paris; B has no quiet hours. Both have a revenue drop.
    configure(&pool, a, &["ops@acme.example"], Some("22-08")).await;
    configure(&pool, b, &["owner@bistro.example"], None).await;
    revenue_series(&app.owner, a, 540.0, 12.0).await;
    revenue_series(&app.owner, b, 540.0, 12.0).await;

    // 07:30 Paris: both evaluated (quiet hours hold delivery, not evaluation).
    let now = morning_after(day());
    assert_eq!(evaluate(&pool, a, day()).await.fired.len(), 1);
    assert_eq!(evaluate(&pool, b, day()).await.fired.len(), 1);
    assert_eq!(
        deliver(&pool, a, now, &options).await.sent,
        0,
        "A is in its quiet hours"
    );
    assert_eq!(deliver(&pool, b, now, &options).await.sent, 1);
    let mail = smtp.wait_for(1).await;
    assert_eq!(
        mail[0]["rcpt_tos"],
        serde_json::json!(["owner@bistro.example"])
    );
    assert!(mail[0]["subject"].as_str().unwrap().starts_with("[Bistro]"));

    // 08:00 Paris: A's message goes, to A's recipient only.
    let eight = now + chrono::Duration::minutes(30);
    assert_eq!(
        deliver(&pool, a, eight - chrono::Duration::seconds(1), &options)
            .await
            .sent,
        0
    );
    assert_eq!(deliver(&pool, a, eight, &options).await.sent, 1);
    let mail = smtp.wait_for(2).await;
    let acme: Vec<&Value> = mail
        .iter()
        .filter(|m| m["subject"].as_str().unwrap().starts_with("[Acme]"))
        .collect();
    assert_eq!(acme.len(), 1);
    assert_eq!(acme[0]["rcpt_tos"], serde_json::json!(["ops@acme.example"]));
    for m in &mail {
        let to = m["rcpt_tos"][0].as_str().unwrap();
        let subject = m["subject"].as_str().unwrap();
        assert!(
            (to == "ops@acme.example") == subject.starts_with("[Acme]"),
            "{to} got {subject}"
        );
    }
    // A's delivery pass never touches B's rows (row-level security, company by company).
    assert_eq!(
        deliver(&pool, a, eight + chrono::Duration::days(1), &options)
            .await
            .sent,
        0
    );
    app.stop().await;
}

/// One day of an ad's delivery in the spend import (Meta, Paid Social, 10 EUR).
async fn ad_delivery(
    owner: &sqlx::PgPool,
    company: uuid::Uuid,
    d: chrono::NaiveDate,
    impressions: i64,
    clicks: i64,
) {
    sqlx::query(
        "INSERT INTO ad_spend (company_id, day, platform, campaign, ad_id, channel, currency,
             spend, impressions, clicks)
         VALUES ($1, $2, 'meta_ads', 'prospecting', 'ad-42', 'Paid Social', 'EUR', 10, $3, $4)",
    )
    .bind(company)
    .bind(d)
    .bind(impressions)
    .bind(clicks)
    .execute(owner)
    .await
    .unwrap();
}

#[tokio::test]
async fn the_scheduler_evaluates_yesterday_once_after_the_morning_hour_and_the_worker_delivers_it()
{
    let db = TestDb::new().await;
    let owner = db.owner().await;
    lux::db::migrate(&owner).await.unwrap();
    let bistro = create_company(&owner, "Bistro").await.id;
    let pool = lux::db::connect_app(&db.url, 2).unwrap();
    configure(&pool, bistro, &["owner@bistro.example"], None).await;
    // Ad ad-42's delivery, from which the scheduler's own jobs (rollups, then the fatigue
    // job) find it fatigued on `day` and not before: 13 days at 2,000 impressions and a 2 %
    // CTR, then 6,000 impressions without a click. On `day` the last 7 days hold 18,000
    // impressions (≥ the first week's 14,000) at 240 ÷ 18,000 = 1.33 %, a third below the
    // baseline; the day before, the last 7 days are still at 2 %.
    for n in (1..=13).rev() {
        ad_delivery(&owner, bistro, days_before(n), 2_000, 40).await;
    }
    ad_delivery(&owner, bistro, day(), 6_000, 0).await;
    let smtp = SmtpServer::start(free_port()).await;
    let url = db.url.clone();
    let options = lux::server::ServeOptions {
        jobs_interval: Some(Duration::from_millis(100)),
        clock: lux::clock::Clock::Fixed(morning_after(day())),
        alerts: Some(delivery(&smtp.url())),
        public_url: Some(url::Url::parse("https://lux.example.com").unwrap()),
        ..test_options()
    };
    let app = TestApp::spawn_on(db, &url, options).await;

    let mail = smtp.wait_for(1).await;
    assert_eq!(
        mail[0]["subject"],
        "[Bistro] [WARNING] Creative ad-42 is fatigued (CTR −33.3 %)"
    );
    // Let the scheduler tick several more times: still one evaluation, one message.
    for _ in 0..600 {
        let runs: i64 = sqlx::query_scalar("SELECT count(*) FROM job_runs WHERE company_id = $1")
            .bind(bistro)
            .fetch_one(&app.owner)
            .await
            .unwrap();
        if runs >= 8 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let runs: Vec<(chrono::NaiveDate, String)> =
        sqlx::query_as("SELECT day, trigger FROM alert_runs WHERE company_id = $1")
            .bind(bistro)
            .fetch_all(&app.owner)
            .await
            .unwrap();
    assert_eq!(runs, [(day(), "schedule".to_string())]);
    assert_eq!(smtp.messages().len(), 1);
    // Acme (the harness's company, created once the service ran) is evaluated too, silently.
    for _ in 0..600 {
        let all: i64 = sqlx::query_scalar("SELECT count(*) FROM alert_runs")
            .fetch_one(&app.owner)
            .await
            .unwrap();
        if all == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("lux_alert_evaluations_total 2"),
        "{metrics}"
    );
    assert!(metrics.contains("lux_alert_firings_total 1"), "{metrics}");
    assert!(
        metrics.contains("lux_alert_delivery_failures_total 0"),
        "{metrics}"
    );
    app.stop().await;
}

#[tokio::test]
async fn kill_9_of_the_service_between_evaluation_and_delivery_delivers_exactly_once_after_restart()
{
    let db = TestDb::new().await;
    let owner = db.owner().await;
    lux::db::migrate(&owner).await.unwrap();
    let company = create_company(&owner, "Acme").await.id;
    let id = company.to_string();
    lux_json(
        &db.url,
        &["alerts", "configure", &id, "--email", "ops@acme.example"],
    );
    revenue_series(&owner, company, 540.0, 12.0).await;
    // The service's SMTP port: first a server that accepts connections and never answers, so
    // the service is caught in the middle of a send, its row claimed.
    let port = free_port();
    let smtp_url = format!("smtp://127.0.0.1:{port}");
    let (hanging, accepted) = hanging_server(port).await;
    let serve_args = [
        "--jobs-interval",
        "0",
        "--smtp-url",
        smtp_url.as_str(),
        "--alerts-poll-ms",
        "100",
        "--alerts-retry-seconds",
        "1",
        "--alerts-retry-cap-seconds",
        "1",
    ];
    let service = ServeProcess::spawn(&db.url, &serve_args, None).await;

    // Evaluated (and enqueued) by the command line, whose own SMTP server is down: one failed
    // attempt, retried 1 s later by whoever claims the row first.
    let closed = format!("smtp://127.0.0.1:{}", free_port());
    let out = lux_command(
        &db.url,
        &[
            "alerts",
            "check",
            "--company",
            &id,
            "--date",
            "2026-11-30",
            "--smtp-url",
            &closed,
            "--alerts-retry-seconds",
            "1",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The service claims the row and connects: it is mid-send, nothing committed yet.
    for _ in 0..600 {
        if accepted.load(std::sync::atomic::Ordering::SeqCst) > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        accepted.load(std::sync::atomic::Ordering::SeqCst) > 0,
        "the service never sent"
    );
    let rows = delivery_rows(&owner, company).await;
    assert_eq!((rows[0].1.as_str(), rows[0].2), ("pending", 1), "{rows:?}");
    // kill -9 in the middle of the send (dropping the child kills it with SIGKILL); the real
    // SMTP server takes over the port; the service starts again.
    drop(service);
    hanging.abort();
    let _ = hanging.await;
    let smtp = SmtpServer::start(port).await;
    let service = ServeProcess::spawn(&db.url, &serve_args, None).await;
    wait_until(
        &owner,
        company,
        "SELECT status = 'sent' FROM alert_deliveries WHERE company_id = $1",
    )
    .await;
    let mail = smtp.wait_for(1).await;
    assert_eq!(mail.len(), 1);
    assert!(
        mail[0]["subject"]
            .as_str()
            .unwrap()
            .starts_with("[Acme] [WARNING] Net revenue drop")
    );
    // Sent is final: the restarted worker keeps polling and sends nothing more.
    service.terminate();
    assert_eq!(smtp.messages().len(), 1);
    let rows = delivery_rows(&owner, company).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].1, "sent");
    // The command line's failure and the send that worked; the one cut short by kill -9 rolled
    // back with its claim.
    assert_eq!(rows[0].2, 2, "{rows:?}");
}

/// A TCP server on `port` that accepts connections, counts them and never says a word.
async fn hanging_server(
    port: u16,
) -> (
    tokio::task::JoinHandle<()>,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
) {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = accepted.clone();
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            held.push(stream);
        }
    });
    (task, accepted)
}

async fn wait_until(owner: &PgPool, company: Uuid, sql: &str) {
    for _ in 0..600 {
        let ok: Option<bool> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_string()))
            .bind(company)
            .fetch_optional(owner)
            .await
            .unwrap();
        if ok == Some(true) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("never true: {sql}");
}
