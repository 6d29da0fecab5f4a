//! Experiments (issue 16, SPEC §8.3): the registry through `/api/v1/experiments` and
//! `lux experiments`, exposures through `/e` (and from the snippet in a real Chromium), the
//! rollups job, and the `experiments` and `ops_velocity` reports.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use chrono_tz::Europe::Paris;
use lux::jobs::{Job, Mode, WhenBusy};
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{TestApp, answer, create_company, lux_error, lux_json};

/// `POST` with the company's secret key (or `key`).
async fn post(app: &TestApp, key: &str, path: &str, body: &Value) -> (StatusCode, Value) {
    let response = app
        .client
        .post(format!("{}{path}", app.base))
        .bearer_auth(key)
        .json(body)
        .send()
        .await
        .unwrap();
    answer(response).await
}

async fn get(app: &TestApp, key: &str, path: &str) -> (StatusCode, Value) {
    let response = app
        .client
        .get(format!("{}{path}", app.base))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    answer(response).await
}

/// Every job, in order, for the company; the first run covers everything.
async fn run_jobs(app: &TestApp, company: Uuid) {
    for job in Job::ALL {
        lux::jobs::run(
            &app.owner,
            company.into(),
            job,
            (Mode::Incremental, WhenBusy::Wait),
            Utc::now(),
        )
        .await
        .expect("the job runs")
        .expect("nobody else holds the lock");
    }
}

/// The report's rows for `from..=to`, with `key`.
async fn report(
    app: &TestApp,
    key: &str,
    name: &str,
    from: NaiveDate,
    to: NaiveDate,
) -> Vec<Value> {
    let (status, body) = get(
        app,
        key,
        &format!("/api/v1/reports/{name}?from={from}&to={to}"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["rows"].as_array().unwrap().clone()
}

fn paris_today() -> NaiveDate {
    Utc::now().with_timezone(&Paris).date_naive()
}

/// 10:00 UTC (11:00 in Paris) `days` before today in Paris, plus `minutes`.
fn at(days: i64, minutes: i64) -> DateTime<Utc> {
    (paris_today() - Duration::days(days))
        .and_hms_opt(10, 0, 0)
        .unwrap()
        .and_utc()
        + Duration::minutes(minutes)
}

fn exposure(visitor: Uuid, variant: &str, when: DateTime<Utc>) -> Value {
    json!({
        "event_id": Uuid::now_v7(), "event_name": "experiment_exposure", "visitor_id": visitor,
        "occurred_at": when.to_rfc3339(), "page_url": "https://shop.test/",
        "properties": {"experiment": "hero", "variant": variant}
    })
}

fn signup(visitor: Uuid, when: DateTime<Utc>) -> Value {
    json!({
        "event_id": Uuid::now_v7(), "event_name": "signup", "visitor_id": visitor,
        "occurred_at": when.to_rfc3339(), "page_url": "https://shop.test/welcome"
    })
}

/// `exposed` new visitors shown `variant` on day −3 at 10:00 UTC; the first `converted`
/// sign up 20 minutes later.
fn arm(variant: &str, exposed: usize, converted: usize) -> Vec<Value> {
    let mut events = Vec::new();
    for i in 0..exposed {
        let visitor = Uuid::now_v7();
        events.push(exposure(visitor, variant, at(3, 0)));
        if i < converted {
            events.push(signup(visitor, at(3, 20)));
        }
    }
    events
}

fn find<'a>(rows: &'a [Value], variant: &str) -> &'a Value {
    rows.iter()
        .find(|r| r["variant"] == variant)
        .unwrap_or_else(|| panic!("no row for {variant}: {rows:?}"))
}

/// The hand-made exposure set: experiment `hero` ran from day −5 to day −1 (Paris), primary
/// event `signup`. Control ends with 50 exposed, 5 converted; b with 40 exposed, 10
/// converted, once the traps are counted right:
/// - `twice` is shown control at 10:00, then b at 10:05, and signs up at 10:30: one of
///   control's 50 and 5, nowhere in b;
/// - `early` is shown b at 10:10 but signed up at 10:05 only: one of b's 40, not converted;
/// - `after_end` is shown control on day −3 and signs up today, after the end: exposed, not
///   converted;
/// - `unexposed` signs up without any exposure: nowhere;
/// - `before_start` is shown b on day −7, before the start: nowhere;
/// - `no_consent` is shown b without analytics consent (a throwaway visitor id): nowhere;
/// - `late` is shown b today, after the end: nowhere.
#[tokio::test]
async fn results_match_hand_computed_values_and_a_visitor_counts_once_in_their_first_variant() {
    let app = TestApp::spawn().await;
    let key = app.company.secret_key.clone();
    let (start, end) = (
        paris_today() - Duration::days(5),
        paris_today() - Duration::days(1),
    );
    let (status, created) = post(
        &app,
        &key,
        "/api/v1/experiments",
        &json!({"key": "hero", "name": "Hero copy", "primary_event": "signup",
                "hypothesis": "A concrete promise converts better", "started_on": start}),
    )
    .await;
    assert_eq!(status, 201, "{created}");

    let mut events = arm("control", 48, 4);
    events.extend(arm("b", 39, 10));
    let [
        twice,
        early,
        after_end,
        unexposed,
        before_start,
        no_consent,
        late,
    ] = [(); 7].map(|_| Uuid::now_v7());
    events.extend([
        exposure(twice, "control", at(3, 0)),
        exposure(twice, "b", at(3, 5)),
        signup(twice, at(3, 30)),
        exposure(early, "b", at(3, 10)),
        signup(early, at(3, 5)),
        exposure(after_end, "control", at(3, 0)),
        signup(after_end, Utc::now() - Duration::seconds(5)),
        signup(unexposed, at(3, 30)),
        exposure(before_start, "b", at(7, 0)),
        signup(before_start, at(3, 30)),
        exposure(late, "b", Utc::now() - Duration::seconds(5)),
        signup(late, Utc::now() - Duration::seconds(4)),
    ]);
    let mut denied = exposure(no_consent, "b", at(3, 0));
    denied["consent"] = json!({"analytics": false});
    events.push(denied);
    let (status, body) = app.post_server_events(&json!(events)).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["accepted"], events.len(), "{body}");

    let (status, concluded) = post(
        &app,
        &key,
        "/api/v1/experiments/hero/conclude",
        &json!({"winner": "b", "ended_on": end}),
    )
    .await;
    assert_eq!(status, 200, "{concluded}");
    run_jobs(&app, app.company.id).await;

    let rows = report(&app, &key, "experiments", start, end).await;
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(rows[0]["variant"], "control", "the control comes first");
    let control = find(&rows, "control");
    assert_eq!(control["is_control"], true);
    assert_eq!(
        (control["exposed"].as_u64(), control["converted"].as_u64()),
        (Some(50), Some(5))
    );
    assert_eq!(control["rate"], 0.1);
    for field in ["uplift", "ci_low", "ci_high", "p_value"] {
        assert!(
            control[field].is_null(),
            "the control is not compared with itself: {control}"
        );
    }
    // b: p_c = 5/50 = 0.10, p_t = 10/40 = 0.25, difference 0.15.
    // uplift = 0.15 / 0.10 = 1.5
    // Wald variance = 0.10·0.90/50 + 0.25·0.75/40 = 0.0018 + 0.0046875 = 0.0064875;
    //   SE = sqrt(0.0064875) = 0.0805450; half-width = 1.959964 · 0.0805450 = 0.1578653;
    //   interval = 0.15 ± 0.1578653 = [-0.0079, 0.3079]
    // pooled p = 15/90 = 0.1666667; SE = sqrt(0.1666667 · 0.8333333 · (1/50 + 1/40))
    //   = sqrt(0.1388889 · 0.045) = sqrt(0.00625) = 0.0790569; z = 0.15 / 0.0790569 = 1.897367
    //   p = 2 · (1 − Φ(1.897367)) = 2 · 0.0288898 = 0.0578
    //   (Python: math.erfc(1.897367 / math.sqrt(2)) = 0.057780)
    let b = find(&rows, "b");
    assert_eq!(b["is_control"], false);
    assert_eq!(
        (b["exposed"].as_u64(), b["converted"].as_u64()),
        (Some(40), Some(10))
    );
    assert_eq!(b["rate"], 0.25);
    assert_eq!(b["uplift"], 1.5);
    assert_eq!(
        (b["ci_low"].as_f64(), b["ci_high"].as_f64()),
        (Some(-0.0079), Some(0.3079))
    );
    assert_eq!(b["p_value"], 0.0578);
    for row in &rows {
        assert_eq!(row["key"], "hero");
        assert_eq!(row["name"], "Hero copy");
        assert_eq!(row["status"], "concluded");
        assert_eq!(row["winner"], "b");
    }

    // The same counts as the pure core's count_visitors on the same set would give: the
    // per-visitor rollup holds each exposed visitor once, in their first variant.
    let (twice_variant, twice_converted): (String, bool) = sqlx::query_as(
        "SELECT variant, converted_at IS NOT NULL FROM rollup_experiment_visitors
         WHERE company_id = $1 AND visitor_id = $2",
    )
    .bind(app.company.id)
    .bind(twice)
    .fetch_one(&app.owner)
    .await
    .unwrap();
    assert_eq!((twice_variant.as_str(), twice_converted), ("control", true));
    for nowhere in [unexposed, before_start, no_consent, late] {
        let n: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM rollup_experiment_visitors WHERE company_id = $1 AND visitor_id = $2",
        )
        .bind(app.company.id)
        .bind(nowhere)
        .fetch_one(&app.owner)
        .await
        .unwrap();
        assert_eq!(n, 0, "{nowhere}");
    }
    // `experiment=` narrows to one experiment; an unknown one has no rows.
    let (status, body) = get(
        &app,
        &key,
        &format!("/api/v1/reports/experiments?from={start}&to={end}&experiment=other"),
    )
    .await;
    assert_eq!(
        (status, body["rows"].as_array().unwrap().len()),
        (StatusCode::OK, 0)
    );
    app.stop().await;
}

#[tokio::test]
async fn the_registry_api_is_idempotent_and_answers_clear_errors() {
    let app = TestApp::spawn().await;
    let key = app.company.secret_key.clone();
    let body = json!({"key": "cta", "name": "CTA colour", "primary_event": "purchase"});
    let (status, first) = post(&app, &key, "/api/v1/experiments", &body).await;
    assert_eq!(status, 201, "{first}");
    assert_eq!(first["status"], "running");
    assert_eq!(
        first["started_on"],
        paris_today().to_string(),
        "today in the company's zone"
    );
    let (status, again) = post(&app, &key, "/api/v1/experiments", &body).await;
    assert_eq!(
        (status, &again),
        (StatusCode::OK, &first),
        "the same body: the same experiment"
    );

    let refused = [
        (
            json!({"key": "cta", "name": "Other", "primary_event": "purchase"}),
            409,
            "other values",
        ),
        (
            json!({"key": "c ta", "name": "n", "primary_event": "purchase"}),
            400,
            "not a key",
        ),
        (
            json!({"key": "x", "name": "", "primary_event": "purchase"}),
            400,
            "name",
        ),
        (
            json!({"key": "x", "name": "n", "primary_event": "9"}),
            400,
            "primary_event",
        ),
        (json!({"key": "x", "name": "n"}), 400, "primary_event"),
        (
            json!({"key": "x", "name": "n", "primary_event": "purchase", "started_on": "12/01/2026"}),
            400,
            "started_on",
        ),
        (
            json!({"key": "x", "name": "n", "primary_event": "purchase", "colour": 1}),
            400,
            "colour",
        ),
    ];
    for (body, want, says) in refused {
        let (status, answer) = post(&app, &key, "/api/v1/experiments", &body).await;
        assert_eq!(status.as_u16(), want, "{body} → {answer}");
        let error = answer["error"].as_str().unwrap();
        assert!(
            error.contains(says),
            "{body}: {error:?} should say {says:?}"
        );
    }

    let conclude = "/api/v1/experiments/cta/conclude";
    let today = paris_today();
    for (body, want, says) in [
        (json!({}), 400, "either a winner or no_winner"),
        (
            json!({"winner": "b", "no_winner": true}),
            400,
            "either a winner or no_winner",
        ),
        (json!({"winner": " "}), 400, "variant is empty"),
        (
            json!({"no_winner": true, "ended_on": today - Duration::days(1)}),
            400,
            "before the experiment started",
        ),
        (
            json!({"no_winner": true, "ended_on": today + Duration::days(1)}),
            400,
            "after today",
        ),
    ] {
        let (status, answer) = post(&app, &key, conclude, &body).await;
        assert_eq!(status.as_u16(), want, "{body} → {answer}");
        assert!(answer["error"].as_str().unwrap().contains(says), "{answer}");
    }
    let (status, answer) = post(
        &app,
        &key,
        "/api/v1/experiments/nope/conclude",
        &json!({"no_winner": true}),
    )
    .await;
    assert_eq!(status, 404, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("no experiment \"nope\"")
    );

    // A winner need not have been seen in exposures yet (docs/decisions.md).
    let (status, done) = post(&app, &key, conclude, &json!({"winner": "green"})).await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(
        (done["status"].as_str(), done["winner"].as_str()),
        (Some("concluded"), Some("green"))
    );
    let (status, same) = post(&app, &key, conclude, &json!({"winner": "green"})).await;
    assert_eq!(
        (status, &same),
        (StatusCode::OK, &done),
        "concluding the same way again"
    );
    let (status, answer) = post(&app, &key, conclude, &json!({"no_winner": true})).await;
    assert_eq!(status, 409, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("already concluded")
    );

    // Keys: a write key is refused, no key is refused.
    let (status, _) = post(&app, &app.company.write_key, "/api/v1/experiments", &body).await;
    assert_eq!(status, 403);
    let response = app
        .client
        .get(format!("{}/api/v1/experiments", app.base))
        .send()
        .await;
    assert_eq!(response.unwrap().status(), 401);

    // An exposure must name its experiment and variant by the same rules.
    let (status, body) = app
        .post_events(&json!([
            {"event_name": "experiment_exposure", "properties": {"experiment": "cta"}},
            {"event_name": "experiment_exposure", "properties": {"experiment": "cta", "variant": ""}},
            {"event_name": "experiment_exposure", "properties": {"experiment": "c ta", "variant": "b"}},
        ]))
        .await;
    assert_eq!(status, 400, "{body}");
    let reasons: Vec<&str> = body["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["error"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(reasons.len(), 3, "{body}");
    assert!(
        reasons[0].contains("properties.variant is required"),
        "{reasons:?}"
    );
    assert!(reasons[1].contains("variant is empty"), "{reasons:?}");
    assert!(reasons[2].contains("not a key"), "{reasons:?}");
    app.stop().await;
}

/// Registry rows with hand-picked dates:
/// - ux-1: 2026-09-01 → 2026-09-15, won (14 days)
/// - ux-2: 2026-09-10 → 2026-10-01, no winner (21 days)
/// - ux-3: 2026-09-20 → 2026-10-20, won (30 days)
/// - ux-4: 2026-10-05 → 2026-10-10, no winner (5 days)
/// - ux-5: 2026-11-03, running
///
/// September: launched 3 (ux-1, ux-2, ux-3), concluded 1 (ux-1, won): win rate 1/1 = 1,
/// median of [14] = 14. October: launched 1 (ux-4), concluded 3 (ux-2, ux-3, ux-4), won 1:
/// win rate 1/3 = 0.3333, days sorted [5, 21, 30]: median 21. November: launched 1,
/// concluded 0: win rate and median null. August (in the range, before any): zeros.
#[tokio::test]
async fn ops_velocity_matches_hand_computed_months() {
    let app = TestApp::spawn().await;
    let key = app.company.secret_key.clone();
    for (exp, started, ended, winner) in [
        ("ux-1", "2026-09-01", Some("2026-09-15"), Some("b")),
        ("ux-2", "2026-09-10", Some("2026-10-01"), None),
        ("ux-3", "2026-09-20", Some("2026-10-20"), Some("b")),
        ("ux-4", "2026-10-05", Some("2026-10-10"), None),
        ("ux-5", "2026-11-03", None, None),
    ] {
        let (status, body) = post(
            &app,
            &key,
            "/api/v1/experiments",
            &json!({"key": exp, "name": exp, "primary_event": "purchase", "started_on": started}),
        )
        .await;
        assert_eq!(status, 201, "{body}");
        if let Some(ended) = ended {
            let outcome = match winner {
                Some(w) => json!({"winner": w, "ended_on": ended}),
                None => json!({"no_winner": true, "ended_on": ended}),
            };
            let path = format!("/api/v1/experiments/{exp}/conclude");
            let (status, body) = post(&app, &key, &path, &outcome).await;
            assert_eq!(status, 200, "{body}");
        }
    }
    let day = |s: &str| s.parse::<NaiveDate>().unwrap();
    let rows = report(
        &app,
        &key,
        "ops_velocity",
        day("2026-08-15"),
        day("2026-11-30"),
    )
    .await;
    let months: Vec<&str> = rows.iter().map(|r| r["month"].as_str().unwrap()).collect();
    assert_eq!(months, ["2026-08", "2026-09", "2026-10", "2026-11"]);
    let figures = |r: &Value| {
        (
            r["launched"].as_u64().unwrap(),
            r["concluded"].as_u64().unwrap(),
            r["won"].as_u64().unwrap(),
            r["win_rate"].as_f64(),
            r["median_duration_days"].as_f64(),
        )
    };
    assert_eq!(figures(&rows[0]), (0, 0, 0, None, None));
    assert_eq!(figures(&rows[1]), (3, 1, 1, Some(1.0), Some(14.0)));
    assert_eq!(figures(&rows[2]), (1, 3, 1, Some(0.3333), Some(21.0)));
    assert_eq!(figures(&rows[3]), (1, 0, 0, None, None));
    app.stop().await;
}

#[tokio::test]
async fn company_b_never_sees_company_a_experiments() {
    let app = TestApp::spawn().await;
    let a = app.company.secret_key.clone();
    let b = create_company(&app.owner, "Other").await;
    let start = paris_today() - Duration::days(2);
    let (status, _) = post(
        &app,
        &a,
        "/api/v1/experiments",
        &json!({"key": "hero", "name": "A's hero", "primary_event": "signup", "started_on": start}),
    )
    .await;
    assert_eq!(status, 201);
    let visitor = Uuid::now_v7();
    let (status, _) = app
        .post_server_events(&json!([
            exposure(visitor, "b", at(1, 0)),
            signup(visitor, at(1, 5))
        ]))
        .await;
    assert_eq!(status, 202);
    run_jobs(&app, app.company.id).await;
    run_jobs(&app, b.id).await;
    let today = paris_today();
    assert_eq!(report(&app, &a, "experiments", start, today).await.len(), 1);

    // B: no experiment listed, none in either report, and A's key cannot be concluded.
    let (status, list) = get(&app, &b.secret_key, "/api/v1/experiments").await;
    assert_eq!((status, list), (StatusCode::OK, json!({"experiments": []})));
    assert!(
        report(&app, &b.secret_key, "experiments", start, today)
            .await
            .is_empty()
    );
    let velocity = report(&app, &b.secret_key, "ops_velocity", start, today).await;
    assert!(velocity.iter().all(|m| m["launched"] == 0), "{velocity:?}");
    let (status, _) = post(
        &app,
        &b.secret_key,
        "/api/v1/experiments/hero/conclude",
        &json!({"no_winner": true}),
    )
    .await;
    assert_eq!(status, 404);
    // B may use the same key for its own experiment: keys are per company.
    let (status, _) = post(
        &app,
        &b.secret_key,
        "/api/v1/experiments",
        &json!({"key": "hero", "name": "B's hero", "primary_event": "purchase"}),
    )
    .await;
    assert_eq!(status, 201);
    let (_, list) = get(&app, &a, "/api/v1/experiments").await;
    assert_eq!(list["experiments"][0]["name"], "A's hero");
    app.stop().await;
}

#[tokio::test]
async fn the_command_line_creates_concludes_and_lists_experiments() {
    let app = TestApp::spawn().await;
    let url = app.db.url.clone();
    let company = app.company.id.to_string();
    let created = lux_json(
        &url,
        &[
            "experiments",
            "create",
            &company,
            "--key",
            "hero",
            "--name",
            "Hero copy",
            "--primary-event",
            "signup",
            "--hypothesis",
            "Shorter wins",
            "--started",
            "2026-11-02",
        ],
    );
    assert_eq!(created["started_on"], "2026-11-02");
    assert_eq!(created["hypothesis"], "Shorter wins");
    let concluded = lux_json(
        &url,
        &[
            "experiments",
            "conclude",
            &company,
            "--key",
            "hero",
            "--no-winner",
            "--ended",
            "2026-11-20",
        ],
    );
    assert_eq!(
        (concluded["status"].as_str(), concluded["winner"].as_str()),
        (Some("concluded"), None)
    );
    let list = lux_json(&url, &["experiments", "list", &company]);
    assert_eq!(list["experiments"][0]["ended_on"], "2026-11-20");
    let error = lux_error(
        &url,
        &["experiments", "conclude", &company, "--key", "hero"],
    );
    assert!(error.contains("--winner"), "{error}");
    let error = lux_error(
        &url,
        &[
            "experiments",
            "conclude",
            &company,
            "--key",
            "hero",
            "--winner",
            "b",
        ],
    );
    assert!(error.contains("already concluded"), "{error}");
    app.stop().await;
}

/// A real page with the snippet: `lux.expose('hero', 'b')`, then a sign-up, as a site does
/// (the snippet stamps the times). After the jobs, the report counts that visitor.
#[tokio::test]
async fn a_visitor_exposed_in_a_real_browser_is_counted_with_their_conversion() {
    let app = TestApp::spawn().await;
    let key = app.company.secret_key.clone();
    let (status, _) = post(
        &app,
        &key,
        "/api/v1/experiments",
        &json!({"key": "hero", "name": "Hero", "primary_event": "signup"}),
    )
    .await;
    assert_eq!(status, 201);
    let profile = crate::snippet::profile_dir("expose");
    let url = format!("{}/dev?key={}&auto=expose", app.base, app.company.write_key);
    let status = crate::snippet::page_status_after_load(&url, &profile).await;
    assert_eq!(status["note"], "done", "{status}");
    let visitor: Uuid = status["visitor_id"].as_str().unwrap().parse().unwrap();
    let stored = crate::snippet::wait_for_rows(
        &app,
        "SELECT count(*) FROM raw_events WHERE event_name IN ('experiment_exposure', 'signup')",
        2,
    )
    .await;
    assert_eq!(stored, 2);
    let (experiment, variant): (String, String) = sqlx::query_as(
        "SELECT properties->>'experiment', properties->>'variant' FROM raw_events
         WHERE event_name = 'experiment_exposure' AND visitor_id = $1",
    )
    .bind(visitor)
    .fetch_one(&app.owner)
    .await
    .unwrap();
    assert_eq!((experiment.as_str(), variant.as_str()), ("hero", "b"));

    run_jobs(&app, app.company.id).await;
    let today = paris_today();
    let rows = report(&app, &key, "experiments", today, today).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    let b = &rows[0];
    assert_eq!(b["variant"], "b");
    assert_eq!(
        b["is_control"], true,
        "the only variant is the one exposed first"
    );
    assert_eq!(
        (b["exposed"].as_u64(), b["converted"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(b["rate"], 1.0);
    app.stop().await;
}

/// The rollups job refreshes an experiment on its incremental runs: new exposures and
/// conversions on a day it covers, and a conclusion that moves its end.
#[tokio::test]
async fn incremental_runs_refresh_an_experiment_on_new_events_and_on_its_conclusion() {
    let app = TestApp::spawn().await;
    let key = app.company.secret_key.clone();
    let today = paris_today();
    let (status, _) = post(
        &app,
        &key,
        "/api/v1/experiments",
        &json!({"key": "hero", "name": "Hero", "primary_event": "signup",
                "started_on": today - Duration::days(2)}),
    )
    .await;
    assert_eq!(status, 201);
    let counts = |rows: &[Value]| -> Vec<(String, u64, u64)> {
        rows.iter()
            .map(|r| {
                (
                    r["variant"].as_str().unwrap().to_owned(),
                    r["exposed"].as_u64().unwrap(),
                    r["converted"].as_u64().unwrap(),
                )
            })
            .collect()
    };
    let first = Uuid::now_v7();
    let (status, _) = app
        .post_server_events(&json!([
            exposure(first, "control", at(1, 0)),
            signup(first, at(1, 9))
        ]))
        .await;
    assert_eq!(status, 202);
    run_jobs(&app, app.company.id).await;
    let rows = report(&app, &key, "experiments", today, today).await;
    assert_eq!(counts(&rows), [("control".to_owned(), 1, 1)]);

    // Today: a second visitor, shown b, signs up.
    let second = Uuid::now_v7();
    let now = Utc::now();
    let (status, _) = app
        .post_server_events(&json!([
            exposure(second, "b", now - Duration::seconds(10)),
            signup(second, now - Duration::seconds(5))
        ]))
        .await;
    assert_eq!(status, 202);
    run_jobs(&app, app.company.id).await;
    let rows = report(&app, &key, "experiments", today, today).await;
    assert_eq!(
        counts(&rows),
        [("control".to_owned(), 1, 1), ("b".to_owned(), 1, 1)]
    );

    // Concluded as of yesterday: today's exposure is after its end and leaves the results.
    let (status, _) = post(
        &app,
        &key,
        "/api/v1/experiments/hero/conclude",
        &json!({"no_winner": true, "ended_on": today - Duration::days(1)}),
    )
    .await;
    assert_eq!(status, 200);
    run_jobs(&app, app.company.id).await;
    let rows = report(&app, &key, "experiments", today - Duration::days(1), today).await;
    assert_eq!(counts(&rows), [("control".to_owned(), 1, 1)]);
    assert_eq!(rows[0]["status"], "concluded");
    app.stop().await;
}
