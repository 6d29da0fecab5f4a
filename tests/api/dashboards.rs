//! The dashboards (`/app`): sign-in, sessions, CSRF, the login throttle, tenancy, and each
//! page's headline numbers against the reports API and the `reporting` views.

use std::collections::HashMap;
use std::io::Write as _;

use chrono::NaiveDate;
use lux::tenancy::NewCompany;
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};
use serde_json::Value;
use uuid::Uuid;

use crate::helpers::{TestApp, lux_command, test_options};

pub const PASSWORD: &str = "a long enough password";

/// A company with demo data (its jobs run), a user granted it, and the app serving it.
pub struct DemoSite {
    pub app: TestApp,
    pub company: Uuid,
    pub secret_key: String,
    pub email: String,
    pub today: NaiveDate,
}

/// The demo world at test size: `days` of history, about 20,000 events.
pub async fn demo_site(days: u32) -> DemoSite {
    demo_site_with(days, test_options()).await
}

pub async fn demo_site_with(days: u32, options: lux::server::ServeOptions) -> DemoSite {
    let app = TestApp::spawn_with(options).await;
    let new = NewCompany::parse("Northwind (test)", "America/New_York", "USD", vec![]).unwrap();
    let created = lux::tenancy::create_company(&app.owner, new).await.unwrap();
    let company = created.company_id.uuid();
    let spec = lux::demo::DemoSpec::new(days, 20_000, 7).unwrap();
    lux::demo::generate(&app.owner, created.company_id, &spec)
        .await
        .expect("demo data");
    // As `lux demo` runs them: four connections (a job holds its lock on one).
    let pool = lux::db::connect_app(&app.db.url, 4).unwrap();
    lux::demo::run_jobs(&pool, created.company_id)
        .await
        .expect("demo jobs");
    pool.close().await;
    let email = format!("ann-{}@example.com", Uuid::new_v4().simple());
    create_user(&app, &email, &[(company, "viewer")]).await;
    let today = chrono::Utc::now()
        .with_timezone(&chrono_tz::America::New_York)
        .date_naive();
    DemoSite {
        app,
        company,
        secret_key: created.secret_key,
        email,
        today,
    }
}

/// A user with [`PASSWORD`], granted `grants` (company, role).
pub async fn create_user(app: &TestApp, email: &str, grants: &[(Uuid, &str)]) {
    use lux::dashboards::users;
    let email = users::Email::parse(email).unwrap();
    users::create_user(
        &app.owner,
        &email,
        &users::Password::parse(PASSWORD).unwrap(),
    )
    .await
    .unwrap();
    for (company, role) in grants {
        let role = users::Role::parse(role).unwrap();
        users::grant(&app.owner, &email, (*company).into(), role)
            .await
            .unwrap();
    }
}

/// A client that does not follow redirects (the tests look at them).
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The value of cookie `name` set by `headers`.
pub fn set_cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
}

fn cookie_value(set_cookie: &str) -> String {
    let pair = set_cookie.split(';').next().unwrap();
    pair.split_once('=').unwrap().1.to_string()
}

/// The login form's CSRF token and cookie.
async fn login_csrf(base: &str) -> String {
    let page = client()
        .get(format!("{base}/app/login"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let cookie = set_cookie(page.headers(), "lux_csrf").expect("a CSRF cookie");
    cookie_value(cookie)
}

/// Posts the login form; returns the answer.
pub async fn post_login(base: &str, email: &str, password: &str) -> reqwest::Response {
    let csrf = login_csrf(base).await;
    client()
        .post(format!("{base}/app/login"))
        .header("cookie", format!("lux_csrf={csrf}"))
        .form(&[
            ("email", email),
            ("password", password),
            ("csrf", csrf.as_str()),
        ])
        .send()
        .await
        .unwrap()
}

/// Signs in; returns the session cookie's value.
pub async fn sign_in(base: &str, email: &str) -> String {
    let answer = post_login(base, email, PASSWORD).await;
    assert_eq!(
        answer.status(),
        StatusCode::SEE_OTHER,
        "{:?}",
        answer.text().await
    );
    cookie_value(set_cookie(answer.headers(), "lux_session").expect("a session cookie"))
}

pub async fn get_page(base: &str, session: &str, path: &str) -> reqwest::Response {
    client()
        .get(format!("{base}{path}"))
        .header("cookie", format!("lux_session={session}"))
        .send()
        .await
        .unwrap()
}

/// The tiles of a page: metric → raw value (`data-value`).
pub fn tiles(html: &str) -> HashMap<String, String> {
    let mut tiles = HashMap::new();
    for part in html.split("data-metric=\"").skip(1) {
        let key = &part[..part.find('"').unwrap()];
        let rest = &part[part.find("data-value=\"").unwrap() + 12..];
        tiles.insert(key.to_string(), rest[..rest.find('"').unwrap()].to_string());
    }
    tiles
}

async fn page_tiles(
    site: &DemoSite,
    session: &str,
    page: &str,
    query: &str,
) -> HashMap<String, String> {
    let path = format!("/app/{}/{page}?{query}", site.company);
    let answer = get_page(&site.app.base, session, &path).await;
    assert_eq!(answer.status(), 200, "{path}");
    let html = answer.text().await.unwrap();
    assert!(
        !html.contains("Nothing to show yet"),
        "{page} has data: {html}"
    );
    tiles(&html)
}

async fn report(site: &DemoSite, report: &str, query: &str) -> Value {
    let answer = site
        .app
        .client
        .get(format!("{}/api/v1/reports/{report}?{query}", site.app.base))
        .bearer_auth(&site.secret_key)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200, "{report}");
    answer.json().await.unwrap()
}

/// One value read from the `reporting` views as the metrics API reads: role `lux_reader`,
/// the company's transaction.
async fn view_text(site: &DemoSite, sql: &str) -> String {
    let mut tx = site.app.owner.begin().await.unwrap();
    sqlx::query("SET LOCAL ROLE lux_reader")
        .execute(&mut *tx)
        .await
        .unwrap();
    sqlx::query("SELECT set_config('lux.company_id', $1, true)")
        .bind(site.company.to_string())
        .execute(&mut *tx)
        .await
        .unwrap();
    let value: Option<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_string()))
        .fetch_one(&mut *tx)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    value.unwrap_or_default()
}

/// A decimal string in minor units (`"12.30"` → 1230), for sums of report rows.
fn minor(text: &str) -> i64 {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let negative = whole.starts_with('-');
    let value = whole.trim_start_matches('-').parse::<i64>().unwrap() * 100
        + format!("{fraction:0<2}")[..2].parse::<i64>().unwrap();
    if negative { -value } else { value }
}

fn range_query(site: &DemoSite, days: u64) -> (String, NaiveDate, NaiveDate) {
    let from = site.today - chrono::Days::new(days - 1);
    (format!("from={from}&to={}", site.today), from, site.today)
}

fn rows(report: &Value) -> &Vec<Value> {
    report["rows"].as_array().unwrap()
}

#[tokio::test]
async fn executive_headlines_equal_the_reports_api_and_the_reporting_views() {
    let site = demo_site(60).await;
    let session = sign_in(&site.app.base, &site.email).await;
    let (query, from, to) = range_query(&site, 30);
    let tiles = page_tiles(&site, &session, "executive", &query).await;

    let revenue = report(&site, "revenue_by_channel", &query).await;
    let api_revenue: i64 = rows(&revenue)
        .iter()
        .map(|r| minor(r["revenue"].as_str().unwrap()))
        .sum();
    let api_orders: f64 = rows(&revenue)
        .iter()
        .map(|r| r["orders"].as_str().unwrap().parse::<f64>().unwrap())
        .sum();
    assert!(
        api_revenue > 0 && api_orders > 0.0,
        "the demo has orders in the range"
    );
    assert_eq!(minor(&tiles["revenue"]), api_revenue, "revenue");
    assert_eq!(
        tiles["orders"].parse::<f64>().unwrap(),
        api_orders,
        "orders"
    );
    let cac = report(&site, "cac", &query).await;
    let blended = rows(&cac)
        .iter()
        .find(|r| r["channel"] == "All")
        .expect("a blended row");
    assert_eq!(
        tiles["new_customers"].parse::<f64>().unwrap(),
        blended["new_customers"]
            .as_str()
            .unwrap()
            .parse::<f64>()
            .unwrap()
    );
    assert_eq!(
        tiles["cac"],
        blended["cac"].as_str().unwrap(),
        "blended CAC"
    );
    let spend: i64 = minor(blended["spend"].as_str().unwrap());
    let roas = report(&site, "roas", &query).await;
    let paid: i64 = rows(&roas)
        .iter()
        .map(|r| minor(r["revenue"].as_str().unwrap()))
        .sum();
    let round4 = |x: f64| (x * 10_000.0).round() / 10_000.0;
    assert_eq!(
        tiles["blended_roas"].parse::<f64>().unwrap(),
        round4(paid as f64 / spend as f64)
    );
    assert_eq!(
        tiles["mer"].parse::<f64>().unwrap(),
        round4(api_revenue as f64 / spend as f64)
    );
    let sessions = report(&site, "qualified_sessions", &query).await;
    let all_sessions = rows(&sessions).last().unwrap()["sessions"]
        .as_i64()
        .unwrap();
    assert_eq!(
        tiles["conversion_rate"].parse::<f64>().unwrap(),
        round4(api_orders / all_sessions as f64)
    );
    let owned: i64 = rows(&revenue)
        .iter()
        .filter(|r| {
            ["Email", "SMS", "Mobile Push Notifications"].contains(&r["channel"].as_str().unwrap())
        })
        .map(|r| minor(r["revenue"].as_str().unwrap()))
        .sum();
    assert_eq!(
        minor(&tiles["owned_revenue"]),
        owned,
        "owned-channel revenue"
    );

    let view_revenue = view_text(
        &site,
        &format!(
            "SELECT round(sum(revenue), 2)::text FROM reporting.executive_daily
         WHERE model = 'last_touch' AND day BETWEEN '{from}' AND '{to}'"
        ),
    )
    .await;
    assert_eq!(
        minor(&view_revenue),
        api_revenue,
        "reporting.executive_daily"
    );
    let view_spend = view_text(
        &site,
        &format!(
            "SELECT round(sum(spend), 2)::text FROM reporting.executive_daily
         WHERE model = 'last_touch' AND day BETWEEN '{from}' AND '{to}'"
        ),
    )
    .await;
    assert_eq!(minor(&view_spend), spend, "spend in the view");
    site.app.stop().await;
}

#[tokio::test]
async fn acquisition_headlines_equal_the_reports_api_and_the_reporting_views() {
    let site = demo_site(45).await;
    let session = sign_in(&site.app.base, &site.email).await;
    let (query, from, to) = range_query(&site, 28);
    let tiles = page_tiles(&site, &session, "acquisition", &query).await;
    let qualified = report(&site, "qualified_sessions", &query).await;
    let all = rows(&qualified).last().unwrap();
    assert_eq!(all["channel"], "All");
    assert_eq!(tiles["sessions"], all["sessions"].to_string());
    assert_eq!(
        tiles["engaged_sessions"],
        all["engaged_sessions"].to_string()
    );
    assert_eq!(
        tiles["qualified_rate"].parse::<f64>().unwrap(),
        all["rate"].as_f64().unwrap()
    );
    let roas = report(&site, "roas", &query).await;
    let spend: i64 = rows(&roas)
        .iter()
        .map(|r| minor(r["spend"].as_str().unwrap()))
        .sum();
    assert_eq!(minor(&tiles["spend"]), spend, "spend");
    let view = view_text(&site, &format!(
        "SELECT sum(sessions)::text FROM reporting.acquisition_daily WHERE day BETWEEN '{from}' AND '{to}'")).await;
    assert_eq!(tiles["sessions"], view, "reporting.acquisition_daily");

    // A channel filter narrows the tiles to that channel's row of the report.
    let channel = &rows(&qualified)[0];
    let name = channel["channel"].as_str().unwrap();
    let filtered = page_tiles(
        &site,
        &session,
        "acquisition",
        &format!("{query}&channel={}", name.replace(' ', "+")),
    )
    .await;
    assert_eq!(
        filtered["sessions"],
        channel["sessions"].to_string(),
        "{name}"
    );
    site.app.stop().await;
}

#[tokio::test]
async fn funnel_headlines_equal_the_reports_api_and_the_reporting_views() {
    let site = demo_site(45).await;
    let session = sign_in(&site.app.base, &site.email).await;
    let (query, from, to) = range_query(&site, 28);
    let tiles = page_tiles(&site, &session, "funnel", &query).await;
    let funnel = report(&site, "funnel", &query).await;
    let steps = rows(&funnel);
    assert!(steps.len() >= 2);
    assert_eq!(tiles["funnel_start"], steps[0]["sessions"].to_string());
    assert_eq!(
        tiles["funnel_end"],
        steps.last().unwrap()["sessions"].to_string()
    );
    assert_eq!(
        tiles["funnel_conversion"].parse::<f64>().unwrap(),
        steps.last().unwrap()["conversion_from_start"]
            .as_f64()
            .unwrap()
    );
    let timing = report(&site, "time_to_conversion", &query).await;
    assert_eq!(
        tiles["median_time_to_convert"],
        timing["summary"]["median_seconds"].to_string()
    );
    let view = view_text(
        &site,
        &format!(
            "SELECT sum(sessions)::text FROM reporting.funnel_daily
         WHERE funnel = 'commerce' AND step = 1 AND day BETWEEN '{from}' AND '{to}'"
        ),
    )
    .await;
    assert_eq!(tiles["funnel_start"], view, "reporting.funnel_daily");
    // The steps table as CSV: the report's rows.
    let csv = get_page(
        &site.app.base,
        &session,
        &format!(
            "/app/{}/funnel?{query}&format=csv&table=steps",
            site.company
        ),
    )
    .await;
    assert_eq!(csv.status(), 200);
    assert!(
        csv.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let text = csv.text().await.unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), steps.len() + 1, "{text}");
    assert!(
        lines[1].starts_with(&format!(
            "1,{},{}",
            steps[0]["event_name"].as_str().unwrap(),
            steps[0]["sessions"]
        )),
        "{text}"
    );
    site.app.stop().await;
}

#[tokio::test]
async fn retention_headlines_equal_the_reports_api_and_the_reporting_views() {
    let site = demo_site(120).await;
    let session = sign_in(&site.app.base, &site.email).await;
    let (query, from, to) = range_query(&site, 90);
    let tiles = page_tiles(&site, &session, "retention", &query).await;
    let repeat = report(&site, "repeat_purchase", &query).await;
    let all = &rows(&repeat)[0];
    assert_eq!(all["cohort"], "all");
    assert_eq!(tiles["customers"], all["customers"].to_string());
    assert_eq!(
        tiles["repeat_customers"],
        all["repeat_customers"].to_string()
    );
    assert_eq!(
        tiles["repeat_rate"].parse::<f64>().unwrap(),
        all["rate"].as_f64().unwrap()
    );
    let rolling = report(&site, "ltv_rolling", &query).await;
    for days in [30, 90] {
        let window = rows(&rolling)
            .iter()
            .find(|r| r["window_days"] == days)
            .unwrap();
        // (No customer of the last 90 days has had 90 days yet: that tile is empty, as the
        // report's null.)
        assert_eq!(
            tiles[&format!("ltv_{days}")],
            window["ltv"].as_str().unwrap_or(""),
            "LTV {days}"
        );
    }
    assert!(
        !tiles["ltv_30"].is_empty(),
        "customers of the first 60 days have had 30"
    );
    let cohort_customers: i64 = rows(&repeat)
        .iter()
        .skip(1)
        .map(|r| r["customers"].as_i64().unwrap())
        .sum();
    let view = view_text(&site, &format!(
        "SELECT sum(customers)::text FROM reporting.cohort_customers WHERE first_day BETWEEN '{from}' AND '{to}'")).await;
    assert_eq!(
        view,
        cohort_customers.to_string(),
        "reporting.cohort_customers"
    );
    site.app.stop().await;
}

#[tokio::test]
async fn attribution_headlines_equal_the_reports_api_and_the_reporting_views() {
    let site = demo_site(45).await;
    let session = sign_in(&site.app.base, &site.email).await;
    let (query, from, to) = range_query(&site, 28);
    let tiles = page_tiles(
        &site,
        &session,
        "attribution",
        &format!("{query}&model=linear"),
    )
    .await;
    let revenue = report(
        &site,
        "revenue_by_channel",
        &format!("{query}&model=linear"),
    )
    .await;
    let api_revenue: i64 = rows(&revenue)
        .iter()
        .map(|r| minor(r["revenue"].as_str().unwrap()))
        .sum();
    let api_orders: f64 = rows(&revenue)
        .iter()
        .map(|r| r["orders"].as_str().unwrap().parse::<f64>().unwrap())
        .sum();
    assert_eq!(
        tiles["path_orders"].parse::<f64>().unwrap(),
        api_orders.round(),
        "every order has one path"
    );
    assert!(
        (minor(&tiles["path_revenue"]) - api_revenue).abs() <= rows(&revenue).len() as i64,
        "path revenue {} vs the report's {api_revenue} (rounded per channel)",
        tiles["path_revenue"]
    );
    let view = view_text(&site, &format!(
        "SELECT sum(orders)::text FROM reporting.paths_daily WHERE day BETWEEN '{from}' AND '{to}'")).await;
    assert_eq!(tiles["path_orders"], view, "reporting.paths_daily");
    // The model comparison table's linear column is the report's revenue by channel.
    let csv = get_page(
        &site.app.base,
        &session,
        &format!(
            "/app/{}/attribution?{query}&format=csv&table=models",
            site.company
        ),
    )
    .await;
    let text = csv.text().await.unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let linear = header.iter().position(|h| *h == "Linear").unwrap();
    for line in lines {
        let cells: Vec<&str> = line.split(',').collect();
        let row = rows(&revenue)
            .iter()
            .find(|r| r["channel"] == cells[0])
            .unwrap_or_else(|| panic!("{line}"));
        assert_eq!(cells[linear], row["revenue"].as_str().unwrap(), "{line}");
    }
    site.app.stop().await;
}

#[tokio::test]
async fn pages_and_csv_need_a_login_and_send_you_to_it() {
    let app = TestApp::spawn().await;
    for path in [
        format!("/app/{}/executive", app.company.id),
        format!("/app/{}/funnel?format=csv", app.company.id),
        "/app".to_string(),
    ] {
        let answer = client()
            .get(format!("{}{path}", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), StatusCode::SEE_OTHER, "{path}");
        let to = answer.headers()[LOCATION].to_str().unwrap();
        assert!(to.starts_with("/app/login?next=%2Fapp"), "{path} → {to}");
    }
    // A session cookie that names no session is no login.
    let answer = get_page(
        &app.base,
        "forged",
        &format!("/app/{}/executive", app.company.id),
    )
    .await;
    assert_eq!(answer.status(), StatusCode::SEE_OTHER);
    app.stop().await;
}

#[tokio::test]
async fn a_viewer_of_one_company_gets_404_on_another_s_pages_and_csv() {
    let app = TestApp::spawn().await;
    let other = crate::helpers::create_company(&app.owner, "Other").await;
    create_user(&app, "viewer@example.com", &[(app.company.id, "viewer")]).await;
    let session = sign_in(&app.base, "viewer@example.com").await;
    let mine = get_page(
        &app.base,
        &session,
        &format!("/app/{}/executive", app.company.id),
    )
    .await;
    assert_eq!(mine.status(), 200);
    let html = mine.text().await.unwrap();
    assert!(
        html.contains("Nothing to show yet"),
        "an empty company says what to do"
    );
    for page in [
        "executive",
        "acquisition",
        "funnel",
        "retention",
        "attribution",
        "messages",
        "creatives",
        "experiments",
        "alerts",
    ] {
        for query in ["", "?format=csv"] {
            let answer = get_page(
                &app.base,
                &session,
                &format!("/app/{}/{page}{query}", other.id),
            )
            .await;
            assert_eq!(answer.status(), StatusCode::NOT_FOUND, "{page}{query}");
            let body: Value = answer.json().await.unwrap();
            assert!(body["error"].is_string());
        }
    }
    let unknown = get_page(
        &app.base,
        &session,
        &format!("/app/{}/no-such-page", app.company.id),
    )
    .await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    let bad = get_page(
        &app.base,
        &session,
        &format!("/app/{}/executive?from=soon", app.company.id),
    )
    .await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    // Switching to a company not granted is refused like a missing one.
    let csrf = csrf_of(&html);
    let switch = client()
        .post(format!("{}/app/switch", app.base))
        .header("cookie", format!("lux_session={session}"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("company_id", &other.id.to_string()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(switch.status(), StatusCode::NOT_FOUND);
    app.stop().await;
}

fn csrf_of(html: &str) -> String {
    let at = html.find("name=\"csrf\" value=\"").expect("a CSRF field") + 19;
    html[at..at + html[at..].find('"').unwrap()].to_string()
}

#[tokio::test]
async fn every_form_needs_its_csrf_token() {
    let app = TestApp::spawn().await;
    let other = crate::helpers::create_company(&app.owner, "Other").await;
    create_user(
        &app,
        "agency@example.com",
        &[(app.company.id, "admin"), (other.id, "viewer")],
    )
    .await;

    // Login: no token, or a token without its cookie.
    let no_token = client()
        .post(format!("{}/app/login", app.base))
        .form(&[("email", "agency@example.com"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(no_token.status(), StatusCode::FORBIDDEN);
    let csrf = login_csrf(&app.base).await;
    let no_cookie = client()
        .post(format!("{}/app/login", app.base))
        .form(&[
            ("email", "agency@example.com"),
            ("password", PASSWORD),
            ("csrf", csrf.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(no_cookie.status(), StatusCode::FORBIDDEN);

    let session = sign_in(&app.base, "agency@example.com").await;
    let html = get_page(
        &app.base,
        &session,
        &format!("/app/{}/executive", app.company.id),
    )
    .await
    .text()
    .await
    .unwrap();
    let csrf = csrf_of(&html);
    let post = |path: &'static str, form: Vec<(&'static str, String)>| {
        let session = session.clone();
        let base = app.base.clone();
        async move {
            client()
                .post(format!("{base}{path}"))
                .header("cookie", format!("lux_session={session}"))
                .form(&form)
                .send()
                .await
                .unwrap()
        }
    };
    // Switch company: refused without the token or with another session's, done with it.
    let other_id = other.id.to_string();
    assert_eq!(
        post("/app/switch", vec![("company_id", other_id.clone())])
            .await
            .status(),
        403
    );
    assert_eq!(
        post(
            "/app/switch",
            vec![("company_id", other_id.clone()), ("csrf", "0".repeat(32))]
        )
        .await
        .status(),
        403
    );
    let switched = post(
        "/app/switch",
        vec![("company_id", other_id.clone()), ("csrf", csrf.clone())],
    )
    .await;
    assert_eq!(switched.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        switched.headers()[LOCATION],
        format!("/app/{other_id}/executive").as_str()
    );
    // Logout: refused without the token (the session lives on), done with it.
    assert_eq!(post("/app/logout", vec![]).await.status(), 403);
    assert_eq!(
        get_page(&app.base, &session, "/app").await.status(),
        StatusCode::SEE_OTHER
    );
    let out = post("/app/logout", vec![("csrf", csrf.clone())]).await;
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    let page = get_page(
        &app.base,
        &session,
        &format!("/app/{}/executive", app.company.id),
    )
    .await;
    assert_eq!(page.status(), StatusCode::SEE_OTHER, "signed out");
    assert!(
        page.headers()[LOCATION]
            .to_str()
            .unwrap()
            .starts_with("/app/login")
    );
    app.stop().await;
}

#[tokio::test]
async fn session_cookies_are_http_only_same_site_and_secure_behind_https() {
    let mut options = test_options();
    options.messages.public_url = Some("https://lux.example.com".parse().unwrap());
    let app = TestApp::spawn_with(options).await;
    create_user(&app, "ann@example.com", &[(app.company.id, "viewer")]).await;
    let answer = post_login(&app.base, "Ann@Example.com ", PASSWORD).await;
    assert_eq!(answer.status(), StatusCode::SEE_OTHER);
    assert_eq!(answer.headers()[LOCATION], "/app");
    let cookie = set_cookie(answer.headers(), "lux_session").unwrap();
    for flag in ["HttpOnly", "SameSite=Lax", "Secure", "Path=/app"] {
        assert!(cookie.contains(flag), "{cookie}");
    }
    let stored: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM user_sessions WHERE token_hash = sha256($1::bytea)",
    )
    .bind(cookie_value(cookie).as_bytes())
    .fetch_one(&app.owner)
    .await
    .unwrap();
    assert_eq!(stored, 1, "only the token's hash is stored");
    app.stop().await;

    // Over plain HTTP (no https public URL) the cookie cannot be Secure, or browsers drop it.
    let app = TestApp::spawn().await;
    create_user(&app, "ann@example.com", &[(app.company.id, "viewer")]).await;
    let answer = post_login(&app.base, "ann@example.com", PASSWORD).await;
    let cookie = set_cookie(answer.headers(), "lux_session").unwrap();
    assert!(
        cookie.contains("HttpOnly") && !cookie.contains("Secure"),
        "{cookie}"
    );
    app.stop().await;
}

#[tokio::test]
async fn ten_wrong_passwords_throttle_the_login_with_429() {
    let app = TestApp::spawn().await;
    create_user(&app, "ann@example.com", &[(app.company.id, "viewer")]).await;
    create_user(&app, "bob@example.com", &[(app.company.id, "viewer")]).await;
    for attempt in 1..=10 {
        let answer = post_login(&app.base, "ann@example.com", "wrong password!").await;
        assert_eq!(
            answer.status(),
            StatusCode::UNAUTHORIZED,
            "attempt {attempt}"
        );
        assert!(
            answer
                .text()
                .await
                .unwrap()
                .contains("Wrong email or password")
        );
    }
    // The eleventh is refused before the password is looked at, the right one included.
    let answer = post_login(&app.base, "ann@example.com", PASSWORD).await;
    assert_eq!(answer.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: i64 = answer.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=900).contains(&wait), "{wait}");
    assert!(answer.text().await.unwrap().contains("try again in"));
    // Another email from the same address is not held up.
    assert_eq!(
        post_login(&app.base, "bob@example.com", PASSWORD)
            .await
            .status(),
        StatusCode::SEE_OTHER
    );
    // Nothing typed reaches the database: failures are kept as keyed hashes.
    let failures: i64 = sqlx::query_scalar("SELECT count(*) FROM login_failures")
        .fetch_one(&app.owner)
        .await
        .unwrap();
    assert_eq!(failures, 10);
    app.stop().await;
}

#[tokio::test]
async fn users_are_created_and_granted_from_the_command_line() {
    let app = TestApp::spawn().await;
    let run = |args: &[&str], stdin: &str| {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_lux"))
            .args(args)
            .env("DATABASE_URL", &app.db.url)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    };
    let created = run(
        &["user", "create", "--email", "Cli@Example.com"],
        &format!("{PASSWORD}\n"),
    );
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let printed: Value = serde_json::from_slice(&created.stdout).unwrap();
    assert_eq!(printed["email"], "cli@example.com");
    let again = run(
        &["user", "create", "--email", "cli@example.com"],
        &format!("{PASSWORD}\n"),
    );
    assert!(String::from_utf8_lossy(&again.stderr).contains("exists already"));
    let short = run(&["user", "create", "--email", "b@example.com"], "short\n");
    assert!(String::from_utf8_lossy(&short.stderr).contains("at least 12 characters"));
    let company = app.company.id.to_string();
    let granted = lux_command(
        &app.db.url,
        &[
            "user",
            "grant",
            "--email",
            "cli@example.com",
            "--company",
            &company,
            "--role",
            "admin",
        ],
    );
    assert!(
        granted.status.success(),
        "{}",
        String::from_utf8_lossy(&granted.stderr)
    );
    let nobody = lux_command(
        &app.db.url,
        &[
            "user",
            "grant",
            "--email",
            "nobody@example.com",
            "--company",
            &company,
        ],
    );
    assert!(
        String::from_utf8_lossy(&nobody.stderr).contains("no user with email nobody@example.com")
    );
    let session = sign_in(&app.base, "cli@example.com").await;
    let home = get_page(&app.base, &session, "/app").await;
    assert_eq!(
        home.headers()[LOCATION],
        format!("/app/{company}/executive").as_str()
    );
    let hash: String = sqlx::query_scalar("SELECT password_hash FROM users")
        .fetch_one(&app.owner)
        .await
        .unwrap();
    assert!(hash.starts_with("$argon2id$") && !hash.contains(PASSWORD));
    app.stop().await;
}

#[tokio::test]
async fn text_answers_are_gzipped_and_lux_js_revalidates_with_its_etag() {
    let app = TestApp::spawn().await;
    let gz = |path: &str| {
        client()
            .get(format!("{}{path}", app.base))
            .header("accept-encoding", "gzip")
            .send()
    };
    let js = gz("/lux.js").await.unwrap();
    assert_eq!(js.status(), 200);
    assert_eq!(js.headers()["content-encoding"], "gzip");
    let etag = js.headers()["etag"].to_str().unwrap().to_string();
    let login = gz("/app/login").await.unwrap();
    assert_eq!(login.headers()["content-encoding"], "gzip");
    let report = client()
        .get(format!(
            "{}/api/v1/reports/funnel?from=2026-01-01&to=2026-01-31",
            app.base
        ))
        .bearer_auth(&app.company.secret_key)
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(report.headers()["content-encoding"], "gzip");
    // Without Accept-Encoding: plain, with a strong validator.
    let plain = client()
        .get(format!("{}/lux.js", app.base))
        .send()
        .await
        .unwrap();
    assert!(plain.headers().get("content-encoding").is_none());
    let strong = plain.headers()["etag"].to_str().unwrap().to_string();
    assert!(strong.starts_with('"'), "{strong}");
    for validator in [strong.as_str(), etag.as_str()] {
        let again = client()
            .get(format!("{}/lux.js", app.base))
            .header("if-none-match", validator)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED, "{validator}");
        assert!(again.bytes().await.unwrap().is_empty());
    }
    let stale = client()
        .get(format!("{}/lux.js", app.base))
        .header("if-none-match", "\"old\"")
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), 200);
    app.stop().await;
}

#[tokio::test]
async fn a_reader_login_reads_its_own_company_s_reporting_views_only() {
    let site = demo_site(30).await;
    let other = crate::helpers::create_company(&site.app.owner, "Other").await;
    let login = format!("metabase_{}", &Uuid::new_v4().simple().to_string()[..12]);
    lux::tenancy::create_reader_login(&site.app.owner, site.company.into(), &login, PASSWORD)
        .await
        .unwrap();
    let mut url = url::Url::parse(&site.app.db.url).unwrap();
    url.set_username(&login).unwrap();
    url.set_password(Some(PASSWORD)).unwrap();
    let reader = sqlx::PgPool::connect(url.as_str()).await.unwrap();
    // Asking for the other company changes nothing: the login is bound to its own.
    let mut tx = reader.begin().await.unwrap();
    sqlx::query("SELECT set_config('lux.company_id', $1, true)")
        .bind(other.id.to_string())
        .execute(&mut *tx)
        .await
        .unwrap();
    for view in [
        "executive_daily",
        "sessions_daily",
        "revenue_daily",
        "spend_daily",
        "funnel_daily",
        "acquisition_daily",
        "cohort_customers",
        "cohort_revenue",
        "paths_daily",
    ] {
        let rows: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT count(*) FROM reporting.{view}"
        )))
        .fetch_one(&mut *tx)
        .await
        .unwrap_or_else(|e| panic!("{view}: {e}"));
        assert!(rows > 0, "{view} shows the login's company");
    }
    tx.rollback().await.unwrap();
    let raw = sqlx::query("SELECT 1 FROM raw_events LIMIT 1")
        .execute(&reader)
        .await;
    assert!(raw.is_err(), "a reader login never reads raw events");
    reader.close().await;
    site.app.stop().await;
}

/// Every card of docs/metabase.md runs as a reader login would run it (the Metabase
/// variables replaced: date ranges by "every day", the model by `last_touch`).
#[tokio::test]
async fn every_metabase_card_in_the_docs_runs_on_the_reporting_views() {
    let site = demo_site(30).await;
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/metabase.md")).unwrap();
    let mut cards = 0;
    for block in doc.split("```sql").skip(1) {
        let sql = &block[..block.find("```").unwrap()];
        for statement in sql.split(';').map(str::trim).filter(|s| {
            s.lines()
                .any(|l| !l.trim_start().starts_with("--") && !l.trim().is_empty())
        }) {
            let runnable = statement
                .replace("{{date_range}}", "true")
                .replace("{{date_range2}}", "true")
                .replace("{{date_range3}}", "true")
                .replace("{{model}}", "'last_touch'");
            let mut tx = site.app.owner.begin().await.unwrap();
            sqlx::query("SET LOCAL ROLE lux_reader")
                .execute(&mut *tx)
                .await
                .unwrap();
            sqlx::query("SELECT set_config('lux.company_id', $1, true)")
                .bind(site.company.to_string())
                .execute(&mut *tx)
                .await
                .unwrap();
            let rows = sqlx::query(sqlx::AssertSqlSafe(runnable.clone()))
                .fetch_all(&mut *tx)
                .await
                .unwrap_or_else(|e| panic!("{runnable}\n{e}"));
            assert!(
                !rows.is_empty(),
                "a card with no row on demo data:\n{runnable}"
            );
            cards += 1;
        }
    }
    assert_eq!(cards, 16, "the cards of docs/metabase.md");
    site.app.stop().await;
}

#[tokio::test]
async fn lux_demo_prints_a_dashboard_login_that_opens_the_demo_s_executive_page() {
    let db = crate::helpers::TestDb::new().await;
    let url = db.url.clone();
    let output = lux_command(
        &url,
        &["demo", "--no-serve", "--events", "5000", "--days", "30"],
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut docs = serde_json::Deserializer::from_slice(&output.stdout).into_iter::<Value>();
    let company = docs.next().unwrap().unwrap();
    let summary = docs.next().unwrap().unwrap();
    let login = &summary["dashboards"];
    let path = login["path"].as_str().unwrap();
    assert_eq!(
        path,
        format!("/app/{}/executive", company["company_id"].as_str().unwrap())
    );
    let app = TestApp::spawn_on(db, &url, test_options()).await;
    let answer = post_login(
        &app.base,
        login["email"].as_str().unwrap(),
        login["password"].as_str().unwrap(),
    )
    .await;
    assert_eq!(answer.status(), StatusCode::SEE_OTHER);
    let session = cookie_value(set_cookie(answer.headers(), "lux_session").unwrap());
    let page = get_page(&app.base, &session, path).await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(!html.contains("Nothing to show yet"), "the demo has data");
    app.stop().await;
}

#[tokio::test]
async fn messages_headlines_equal_the_reports_api_and_the_reporting_views() {
    let site = demo_site(45).await;
    let session = sign_in(&site.app.base, &site.email).await;
    let (query, from, to) = range_query(&site, 28);
    let tiles = page_tiles(&site, &session, "messages", &query).await;
    let api = report(&site, "messages", &query).await;
    let currency = rows(&api)[0]["currency"].as_str().unwrap().to_string();
    let sum = |field: &str| -> i64 { rows(&api).iter().map(|r| r[field].as_i64().unwrap()).sum() };
    let (sent, delivered, clicks) = (sum("sent"), sum("delivered"), sum("clicks"));
    assert!(sent > 0, "the demo sends messages");
    assert_eq!(tiles["sent"], sent.to_string());
    let round4 = |n: i64, d: i64| ((n as f64 / d as f64) * 10_000.0).round() / 10_000.0;
    assert_eq!(
        tiles["delivery_rate"].parse::<f64>().unwrap(),
        round4(delivered, sent)
    );
    assert_eq!(
        tiles["message_click_rate"].parse::<f64>().unwrap(),
        round4(clicks, delivered)
    );
    let revenue: i64 = rows(&api)
        .iter()
        .filter(|r| r["currency"] == currency.as_str())
        .map(|r| minor(r["revenue"].as_str().unwrap()))
        .sum();
    assert!(revenue > 0, "the demo's messages earn");
    assert_eq!(minor(&tiles["message_revenue"]), revenue, "revenue");
    let per_send = (revenue as f64 / sent as f64).round() as i64;
    assert_eq!(
        minor(&tiles["revenue_per_send"]),
        per_send,
        "revenue per send"
    );

    let view = view_text(&site, &format!(
        "SELECT sum(sent)::text FROM reporting.messages_daily WHERE day BETWEEN '{from}' AND '{to}'")).await;
    assert_eq!(tiles["sent"], view, "reporting.messages_daily");
    let view = view_text(
        &site,
        &format!(
            "SELECT sum(revenue)::text FROM reporting.message_revenue_daily
         WHERE currency = '{currency}' AND day BETWEEN '{from}' AND '{to}'"
        ),
    )
    .await;
    assert_eq!(minor(&view), revenue, "reporting.message_revenue_daily");

    // The channel filter: email's tiles are the report's email row.
    let email = rows(&api)
        .iter()
        .find(|r| r["channel"] == "email")
        .expect("an email row");
    let filtered = page_tiles(
        &site,
        &session,
        "messages",
        &format!("{query}&channel=email"),
    )
    .await;
    assert_eq!(filtered["sent"], email["sent"].to_string());
    assert_eq!(
        filtered["open_rate"].parse::<f64>().unwrap(),
        email["open_rate"].as_f64().unwrap()
    );
    // The campaign table exports as CSV; an unknown channel is a clear 400.
    let csv = get_page(
        &site.app.base,
        &session,
        &format!(
            "/app/{}/messages?{query}&format=csv&table=campaigns",
            site.company
        ),
    )
    .await;
    assert_eq!(csv.status(), 200);
    let csv = csv.text().await.unwrap();
    assert!(csv.starts_with("Channel,Campaign,Sent,"), "{csv}");
    assert!(csv.lines().count() > 1, "{csv}");
    let bad = get_page(
        &site.app.base,
        &session,
        &format!("/app/{}/messages?{query}&channel=fax", site.company),
    )
    .await;
    assert_eq!(bad.status(), 400);
    site.app.stop().await;
}

#[tokio::test]
async fn messages_campaign_filter_headlines_equal_the_reports_api_s_campaign_rows() {
    let site = demo_site(45).await;
    let session = sign_in(&site.app.base, &site.email).await;
    let (query, from, to) = range_query(&site, 28);
    let currency = site_currency(&site).await;
    let api = report(&site, "messages", &format!("{query}&group=campaign")).await;
    // The campaign that sent most in the range (the demo's campaigns differ in size, so a
    // filter that did nothing would show more).
    let campaign = rows(&api)
        .iter()
        .filter(|r| r["campaign"].is_string())
        .max_by_key(|r| r["sent"].as_i64().unwrap())
        .map(|r| r["campaign"].as_str().unwrap().to_string())
        .expect("the demo's sends have campaigns");
    let of_campaign: Vec<&Value> = rows(&api)
        .iter()
        .filter(|r| r["campaign"] == campaign.as_str())
        .collect();
    let mut seen = std::collections::HashSet::new();
    let (mut sent, mut delivered, mut clicks, mut revenue) = (0i64, 0i64, 0i64, 0i64);
    for r in &of_campaign {
        if seen.insert(r["channel"].to_string()) {
            sent += r["sent"].as_i64().unwrap();
            delivered += r["delivered"].as_i64().unwrap();
            clicks += r["clicks"].as_i64().unwrap();
        }
        if r["currency"] == currency.as_str() {
            revenue += minor(r["revenue"].as_str().unwrap());
        }
    }
    let all_sent: i64 = rows(&api).iter().map(|r| r["sent"].as_i64().unwrap()).sum();
    assert!(
        sent > 0 && sent < all_sent,
        "{campaign}: {sent} of {all_sent}"
    );

    let filter = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("campaign", &campaign)
        .finish();
    let path = format!("/app/{}/messages?{query}&{filter}", site.company);
    let html = get_page(&site.app.base, &session, &path)
        .await
        .text()
        .await
        .unwrap();
    // The select offers the campaigns of the range, this one selected.
    assert!(
        html.contains(&format!("<option selected>{campaign}</option>")),
        "the campaign is selected in the filter"
    );
    let tiles = tiles(&html);
    assert_eq!(tiles["sent"], sent.to_string(), "sent");
    let round4 = |n: i64, d: i64| ((n as f64 / d as f64) * 10_000.0).round() / 10_000.0;
    assert_eq!(
        tiles["delivery_rate"].parse::<f64>().unwrap(),
        round4(delivered, sent),
        "delivery rate"
    );
    assert_eq!(
        tiles["message_click_rate"].parse::<f64>().unwrap(),
        round4(clicks, delivered),
        "click rate"
    );
    assert_eq!(minor(&tiles["message_revenue"]), revenue, "revenue");
    // The daily view gives the same sends for that campaign.
    let view = view_text(
        &site,
        &format!(
            "SELECT sum(sent)::text FROM reporting.messages_daily
             WHERE campaign = '{}' AND day BETWEEN '{from}' AND '{to}'",
            campaign.replace('\'', "''")
        ),
    )
    .await;
    assert_eq!(tiles["sent"], view, "reporting.messages_daily");
    // The table and its CSV hold that campaign's rows only.
    let csv = get_page(
        &site.app.base,
        &session,
        &format!("{path}&format=csv&table=campaigns"),
    )
    .await
    .text()
    .await
    .unwrap();
    let lines: Vec<&str> = csv.lines().skip(1).collect();
    assert_eq!(lines.len(), of_campaign.len(), "{csv}");
    assert!(
        lines
            .iter()
            .all(|l| l.split(',').nth(1) == Some(campaign.as_str())),
        "{csv}"
    );
    // A campaign without sends in the range says so instead of showing zeros.
    let none = get_page(
        &site.app.base,
        &session,
        &format!(
            "/app/{}/messages?{query}&campaign=no_such_campaign",
            site.company
        ),
    )
    .await;
    assert_eq!(none.status(), 200);
    assert!(none.text().await.unwrap().contains("No sends of campaign"));
    site.app.stop().await;
}

/// The company's saved alert emails, quiet hours start and morning hour (None: never saved).
async fn saved_alert_settings(app: &TestApp) -> Option<(Vec<String>, Option<i16>, i16)> {
    sqlx::query_as(
        "SELECT emails, quiet_start, morning_hour FROM alert_settings WHERE company_id = $1",
    )
    .bind(app.company.id)
    .fetch_optional(&app.owner)
    .await
    .unwrap()
}

async fn post_alert_settings(
    app: &TestApp,
    session: &str,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    client()
        .post(format!(
            "{}/app/{}/alerts/settings",
            app.base, app.company.id
        ))
        .header("cookie", format!("lux_session={session}"))
        .form(fields)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn only_an_admin_changes_the_alert_settings_a_viewer_sees_them_and_gets_403() {
    let app = TestApp::spawn().await;
    create_user(&app, "admin@example.com", &[(app.company.id, "admin")]).await;
    create_user(&app, "viewer@example.com", &[(app.company.id, "viewer")]).await;
    let alerts = format!("/app/{}/alerts", app.company.id);
    let action = format!("action=\"/app/{}/alerts/settings\"", app.company.id);

    // The admin sees the form and saves it.
    let admin = sign_in(&app.base, "admin@example.com").await;
    let html = get_page(&app.base, &admin, &alerts)
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains(&action), "the admin gets the form");
    let csrf = csrf_of(&html);
    let fields = [
        ("csrf", csrf.as_str()),
        ("emails", "ops@example.com, cmo@example.com"),
        ("quiet_hours", "22-07"),
        ("morning_hour", "6"),
    ];
    // Without its CSRF token the form is refused.
    let forged = post_alert_settings(&app, &admin, &fields[1..]).await;
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    assert_eq!(saved_alert_settings(&app).await, None);
    let saved = post_alert_settings(&app, &admin, &fields).await;
    assert_eq!(saved.status(), StatusCode::SEE_OTHER);
    let expected = Some((
        vec!["ops@example.com".to_string(), "cmo@example.com".to_string()],
        Some(22),
        6,
    ));
    assert_eq!(saved_alert_settings(&app).await, expected);
    // A bad field is a 400 that names it, and changes nothing.
    let bad = post_alert_settings(
        &app,
        &admin,
        &[
            ("csrf", csrf.as_str()),
            ("emails", "nope"),
            ("morning_hour", "6"),
        ],
    )
    .await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    assert!(bad.text().await.unwrap().contains("emails"));
    assert_eq!(saved_alert_settings(&app).await, expected);

    // The viewer sees them read-only, and a POST with the viewer's own valid token is a 403.
    let viewer = sign_in(&app.base, "viewer@example.com").await;
    let html = get_page(&app.base, &viewer, &alerts)
        .await
        .text()
        .await
        .unwrap();
    assert!(!html.contains(&action), "no form for a viewer");
    assert!(
        html.contains("ops@example.com, cmo@example.com"),
        "read-only"
    );
    assert!(html.contains("Only an admin of"));
    let csrf = csrf_of(&html);
    let refused = post_alert_settings(
        &app,
        &viewer,
        &[
            ("csrf", csrf.as_str()),
            ("emails", "attacker@example.com"),
            ("quiet_hours", ""),
            ("morning_hour", "3"),
        ],
    )
    .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert!(refused.text().await.unwrap().contains("only an admin"));
    assert_eq!(saved_alert_settings(&app).await, expected);
    app.stop().await;
}

/// An alert of `company` that fired on `day` and was emailed once.
pub async fn seed_alert(app: &TestApp, company: Uuid, day: NaiveDate, title: &str) -> Uuid {
    let alert_id = Uuid::new_v4();
    sqlx::query(
        "INSERT INTO alerts (company_id, alert_id, rule, subject, severity, state, fired_on,
                             title, explanation, numbers, link, created_at)
         VALUES ($1, $2, 'revenue_anomaly', 'company', 'warning', 'firing', $4,
                 $3, 'Net revenue on 2026-11-30 was 940.00 EUR, below the median of 1000.00 EUR.',
                 '{\"value\": \"940.00\", \"median\": \"1000.00\"}', '/app', now())",
    )
    .bind(company)
    .bind(alert_id)
    .bind(title)
    .bind(day)
    .execute(&app.owner)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO alert_deliveries (company_id, delivery_id, alert_ids, kind, channel, target,
                                       subject, text_body, attempts, status, next_attempt_at,
                                       sent_at, created_at)
         VALUES ($1, $2, ARRAY[$3], 'alert', 'email', 'ops@acme.example', $4, 'body', 1, 'sent',
                 now(), now(), now())",
    )
    .bind(company)
    .bind(Uuid::new_v4())
    .bind(alert_id)
    .bind(title)
    .execute(&app.owner)
    .await
    .unwrap();
    alert_id
}

#[tokio::test]
async fn the_alerts_page_shows_the_alert_history_of_the_report_and_only_its_company_s() {
    let app = TestApp::spawn().await;
    let other = crate::helpers::create_company(&app.owner, "Other").await;
    let day = NaiveDate::from_ymd_opt(2026, 11, 30).unwrap();
    seed_alert(&app, app.company.id, day, "Net revenue drop on 2026-11-30").await;
    seed_alert(&app, other.id, day, "Another company's alert").await;
    create_user(&app, "viewer@example.com", &[(app.company.id, "viewer")]).await;
    let session = sign_in(&app.base, "viewer@example.com").await;
    let query = "from=2026-11-01&to=2026-11-30";
    let page = get_page(
        &app.base,
        &session,
        &format!("/app/{}/alerts?{query}", app.company.id),
    )
    .await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    for shown in [
        "Net revenue drop on 2026-11-30",
        "revenue_anomaly",
        "firing",
        "below the median of 1000.00 EUR",
        "value: 940.00, median: 1000.00",
        "email ops@acme.example sent (1 attempt)",
    ] {
        assert!(html.contains(shown), "{shown} in {html}");
    }
    assert!(!html.contains("Another company"), "only its own alerts");
    let report: Value = app
        .client
        .get(format!("{}/api/v1/reports/alerts?{query}", app.base))
        .bearer_auth(&app.company.secret_key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let tiles = tiles(&html);
    assert_eq!(tiles["alerts"], rows(&report).len().to_string());
    assert_eq!(tiles["alerts_firing"], "1");
    let csv = get_page(
        &app.base,
        &session,
        &format!("/app/{}/alerts?{query}&format=csv", app.company.id),
    )
    .await;
    assert_eq!(csv.status(), 200);
    let csv = csv.text().await.unwrap();
    assert!(csv.starts_with("Fired on,State,"), "{csv}");
    assert!(csv.contains("Net revenue drop on 2026-11-30"), "{csv}");
    // Another company's alert page is a 404, like a page that does not exist.
    let theirs = get_page(
        &app.base,
        &session,
        &format!("/app/{}/alerts?{query}", other.id),
    )
    .await;
    assert_eq!(theirs.status(), StatusCode::NOT_FOUND);
    app.stop().await;
}

#[tokio::test]
async fn creatives_headlines_equal_the_reports_api_and_the_reporting_views() {
    let site = demo_site(45).await;
    let session = sign_in(&site.app.base, &site.email).await;
    let (query, from, to) = range_query(&site, 28);
    let tiles = page_tiles(&site, &session, "creatives", &query).await;
    let api = report(&site, "creatives", &query).await;
    let currency = site_currency(&site).await;
    let mut seen = std::collections::HashSet::new();
    let (mut impressions, mut clicks, mut spend, mut revenue) = (0i64, 0i64, 0i64, 0i64);
    for r in rows(&api) {
        if seen.insert(r["creative_id"].to_string()) {
            impressions += r["impressions"].as_i64().unwrap();
            clicks += r["clicks"].as_i64().unwrap();
        }
        if r["currency"] == currency.as_str() {
            spend += minor(r["spend"].as_str().unwrap());
            revenue += minor(r["revenue"].as_str().unwrap());
        }
    }
    assert!(impressions > 0 && spend > 0, "the demo's ads deliver");
    assert_eq!(tiles["impressions"], impressions.to_string());
    assert_eq!(tiles["clicks"], clicks.to_string());
    assert_eq!(minor(&tiles["spend"]), spend, "spend");
    assert_eq!(minor(&tiles["creative_revenue"]), revenue, "revenue");
    let round4 = |n: i64, d: i64| ((n as f64 / d as f64) * 10_000.0).round() / 10_000.0;
    assert_eq!(
        tiles["ctr"].parse::<f64>().unwrap(),
        round4(clicks, impressions)
    );
    assert_eq!(
        tiles["roas"].parse::<f64>().unwrap(),
        round4(revenue, spend)
    );
    let view = view_text(&site, &format!(
        "SELECT sum(impressions)::text FROM reporting.creative_daily WHERE day BETWEEN '{from}' AND '{to}'")).await;
    assert_eq!(tiles["impressions"], view, "reporting.creative_daily");
    let view = view_text(
        &site,
        &format!(
            "SELECT sum(spend)::text FROM reporting.creative_spend_daily
         WHERE currency = '{currency}' AND day BETWEEN '{from}' AND '{to}'"
        ),
    )
    .await;
    assert_eq!(
        minor(&format!("{:.2}", view.parse::<f64>().unwrap())),
        spend,
        "reporting.creative_spend_daily"
    );
    let csv = get_page(
        &site.app.base,
        &session,
        &format!(
            "/app/{}/creatives?{query}&format=csv&table=creatives",
            site.company
        ),
    )
    .await;
    assert_eq!(csv.status(), 200);
    assert!(csv.text().await.unwrap().starts_with("Creative,Name,"));
    site.app.stop().await;
}

/// The demo company's currency.
async fn site_currency(site: &DemoSite) -> String {
    sqlx::query_scalar("SELECT currency::text FROM companies WHERE company_id = $1")
        .bind(site.company)
        .fetch_one(&site.app.owner)
        .await
        .unwrap()
}

#[tokio::test]
async fn experiments_headlines_equal_the_reports_api_and_the_reporting_views() {
    let site = demo_site(45).await;
    let session = sign_in(&site.app.base, &site.email).await;
    let (query, from, to) = range_query(&site, 28);
    let tiles = page_tiles(&site, &session, "experiments", &query).await;
    let api = report(&site, "experiments", &query).await;
    let keys: std::collections::HashSet<String> = rows(&api)
        .iter()
        .map(|r| r["key"].as_str().unwrap().to_string())
        .collect();
    assert!(!keys.is_empty(), "the demo runs experiments");
    assert_eq!(tiles["experiments_run"], keys.len().to_string());
    let velocity = report(&site, "ops_velocity", &query).await;
    let sum = |field: &str| -> u64 {
        rows(&velocity)
            .iter()
            .map(|r| r[field].as_u64().unwrap())
            .sum()
    };
    assert_eq!(tiles["experiments_launched"], sum("launched").to_string());
    assert_eq!(tiles["experiments_concluded"], sum("concluded").to_string());
    let view = view_text(
        &site,
        &format!(
            "SELECT count(*)::text FROM reporting.experiments
             WHERE started_on <= '{to}' AND (ended_on IS NULL OR ended_on >= '{from}')"
        ),
    )
    .await;
    assert_eq!(tiles["experiments_run"], view, "reporting.experiments");
    let csv = get_page(
        &site.app.base,
        &session,
        &format!(
            "/app/{}/experiments?{query}&format=csv&table=velocity",
            site.company
        ),
    )
    .await;
    assert_eq!(csv.status(), 200);
    assert!(csv.text().await.unwrap().starts_with("Month,"));
    site.app.stop().await;
}
