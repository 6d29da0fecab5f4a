//! The dashboards: a server-rendered web app under `/app` for marketers (SPEC §8.5, §11).
//!
//! Pages read what the metrics API reads, the same way: as `lux_reader`, in one read-only
//! transaction scoped to the company ([`crate::reports::begin_reader`]), through the report
//! functions of [`crate::reports`] and the `reporting` views (which read rollups only). So a
//! number on a page is the number of the API and of Metabase for the same range.
//!
//! Layout: [`auth`] (sessions, CSRF, throttled logins), [`users`] (accounts and grants),
//! [`period`] (range, comparison, filters), [`view`] (tiles, tables, CSV), [`chart`] (SVG),
//! [`definitions`] (each metric's hover text), and one module per page in [`pages`]. Adding a
//! page is a module that fills a [`view::Content`] and a line in [`pages::Page`].

pub mod alert_settings;
pub mod auth;
pub mod chart;
pub mod definitions;
pub mod pages;
pub mod period;
pub mod users;
pub mod view;

use std::net::SocketAddr;
use std::sync::Arc;

use askama::Template;
use axum::Router;
use axum::extract::{ConnectInfo, Form, Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use sqlx::PgPool;
use uuid::Uuid;

use crate::clock::Clock;
use crate::http::ApiError;
use crate::privacy::IpHasher;
use auth::{Attempt, SignedIn};
use pages::Page;
use period::Params;
use view::Content;

/// What the dashboards use, taken from the app's state.
#[derive(Clone)]
pub struct DashboardsState {
    /// `lux_app`: users, sessions, grants, the companies' settings, job runs.
    pub pool: PgPool,
    /// `lux_reader`: every number on a page.
    /// Where reads go (the replica when there is one and it is close enough).
    pub reader: crate::db::replica::ReadPools,
    pub clock: Clock,
    pub ip_hasher: Arc<IpHasher>,
    /// Cookies get `Secure` (the public URL is https).
    pub secure_cookies: bool,
    /// Client addresses from X-Forwarded-For (behind our own proxy), for the login throttle.
    pub trust_proxy: bool,
}

pub fn router() -> Router<DashboardsState> {
    Router::new()
        .route("/app", get(home))
        .route("/app/", get(home))
        .route("/app/login", get(login_page).post(login))
        .route("/app/logout", post(logout))
        .route("/app/switch", post(switch))
        .route("/app/static/app.css", get(stylesheet))
        .route("/app/static/app.js", get(script))
        .route("/app/{company_id}", get(company_home))
        .route("/app/{company_id}/{page}", get(page))
        .route(
            "/app/{company_id}/alerts/settings",
            post(save_alert_settings),
        )
}

/// Why a page could not be shown.
#[derive(Debug, thiserror::Error)]
pub enum DashboardError {
    #[error("{0}")]
    BadRequest(String),
    /// Not signed in: to the login page, then back.
    #[error("sign in first")]
    SignIn { next: String },
    #[error("not found")]
    NotFound,
    #[error("the form is out of date (CSRF token missing or wrong): reload the page and retry")]
    Csrf,
    /// Signed in and granted the company, but the role does not allow it.
    #[error("{0}")]
    Forbidden(String),
    #[error(transparent)]
    Alerts(#[from] crate::alerts::AlertError),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Report(#[from] crate::reports::ReportError),
    #[error("rendering")]
    Render(#[from] askama::Error),
    #[error("writing CSV")]
    Csv(#[from] csv::Error),
}

impl IntoResponse for DashboardError {
    fn into_response(self) -> Response {
        match self {
            DashboardError::SignIn { next } => {
                let query = url::form_urlencoded::Serializer::new(String::new())
                    .append_pair("next", &next)
                    .finish();
                Redirect::to(&format!("/app/login?{query}")).into_response()
            }
            DashboardError::BadRequest(message) => ApiError::BadRequest(message).into_response(),
            DashboardError::NotFound => ApiError::NotFound.into_response(),
            DashboardError::Csrf => {
                ApiError::Forbidden(DashboardError::Csrf.to_string()).into_response()
            }
            DashboardError::Forbidden(message) => ApiError::Forbidden(message).into_response(),
            DashboardError::Database(e) => ApiError::from(e).into_response(),
            DashboardError::Report(e) => ApiError::from(e).into_response(),
            DashboardError::Alerts(e) => ApiError::internal(e).into_response(),
            e @ (DashboardError::Render(_) | DashboardError::Csv(_)) => {
                ApiError::internal(e).into_response()
            }
        }
    }
}

/// A company the signed-in user was granted.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Granted {
    pub company_id: Uuid,
    pub name: String,
    pub role: String,
    pub timezone: String,
    pub currency: String,
}

async fn granted(pool: &PgPool, user_id: Uuid) -> Result<Vec<Granted>, sqlx::Error> {
    sqlx::query_as("SELECT company_id, name, role, timezone, currency FROM lux_user_companies($1)")
        .bind(user_id)
        .fetch_all(pool)
        .await
}

/// The signed-in user, or a redirect to the login page that comes back to `path`.
async fn require_user(
    state: &DashboardsState,
    headers: &HeaderMap,
    path: &str,
) -> Result<SignedIn, DashboardError> {
    auth::signed_in(&state.pool, headers, state.clock.now())
        .await?
        .ok_or_else(|| DashboardError::SignIn {
            next: path.to_string(),
        })
}

/// Where a login may send the browser next: a path of the app, never another site.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with("/app/") && !n.starts_with("//") && !n.contains('\\') => {
            n.to_string()
        }
        _ => "/app".to_string(),
    }
}

/// `/app`: the first company's executive page (an agency's other companies are one switch
/// away), or a page saying no company was granted.
async fn home(
    State(state): State<DashboardsState>,
    headers: HeaderMap,
) -> Result<Response, DashboardError> {
    let user = require_user(&state, &headers, "/app").await?;
    let companies = granted(&state.pool, user.user_id).await?;
    match companies.first() {
        Some(company) => {
            Ok(Redirect::to(&format!("/app/{}/executive", company.company_id)).into_response())
        }
        None => {
            let body = NoCompanyTemplate {
                email: &user.email,
                csrf: &user.csrf,
            }
            .render()?;
            Ok(Html(body).into_response())
        }
    }
}

async fn company_home(Path(company_id): Path<String>) -> Response {
    Redirect::to(&format!("/app/{company_id}/executive")).into_response()
}

#[derive(Template)]
#[template(path = "dashboards/no_company.html")]
struct NoCompanyTemplate<'a> {
    email: &'a str,
    csrf: &'a str,
}

#[derive(Template)]
#[template(path = "dashboards/login.html")]
struct LoginTemplate<'a> {
    csrf: &'a str,
    next: &'a str,
    email: &'a str,
    message: Option<&'a str>,
}

#[derive(Deserialize)]
struct LoginQuery {
    next: Option<String>,
}

/// The login form, with a fresh double-submit CSRF cookie when the browser has none.
async fn login_page(
    State(state): State<DashboardsState>,
    headers: HeaderMap,
    axum::extract::Query(query): axum::extract::Query<LoginQuery>,
) -> Result<Response, DashboardError> {
    let next = safe_next(query.next.as_deref());
    login_form(&state, &headers, &next, "", None, StatusCode::OK)
}

fn login_form(
    state: &DashboardsState,
    headers: &HeaderMap,
    next: &str,
    email: &str,
    message: Option<&str>,
    status: StatusCode,
) -> Result<Response, DashboardError> {
    let (csrf, fresh) = match auth::cookie(headers, auth::LOGIN_CSRF_COOKIE) {
        Some(token) if token.len() == 43 => (token.to_string(), false),
        _ => (auth::new_token(), true),
    };
    let body = LoginTemplate {
        csrf: &csrf,
        next,
        email,
        message,
    }
    .render()?;
    let mut response = (status, Html(body)).into_response();
    if fresh {
        let cookie = auth::set_cookie(auth::LOGIN_CSRF_COOKIE, &csrf, 86_400, state.secure_cookies);
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    no_store(&mut response);
    Ok(response)
}

#[derive(Deserialize)]
struct LoginForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    csrf: String,
    next: Option<String>,
}

/// `POST /app/login`: CSRF, then the throttle, then the password.
async fn login(
    State(state): State<DashboardsState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Result<Response, DashboardError> {
    let expected = auth::cookie(&headers, auth::LOGIN_CSRF_COOKIE).unwrap_or_default();
    if !auth::tokens_match(expected, &form.csrf) {
        return Err(DashboardError::Csrf);
    }
    let now = state.clock.now();
    let next = safe_next(form.next.as_deref());
    let email = users::Email::parse(&form.email).ok();
    let typed = email.as_ref().map_or_else(
        || form.email.trim().to_lowercase(),
        |e| e.as_ref().to_string(),
    );
    let ip = crate::analytics::client_ip(peer, &headers, state.trust_proxy);
    let salt = state.ip_hasher.salt(now).await?;
    let key = auth::throttle_key(&typed, &auth::hash_ip(&salt, &ip));
    match auth::attempt_login(&state.pool, email.as_ref(), form.password, key, now).await? {
        Attempt::SignedIn(user_id) => {
            let token = auth::start_session(&state.pool, user_id, now).await?;
            let mut response = Redirect::to(&next).into_response();
            let lifetime = auth::SESSION_LIFETIME.num_seconds();
            for cookie in [
                auth::set_cookie(auth::SESSION_COOKIE, &token, lifetime, state.secure_cookies),
                // The login form's token is spent.
                auth::set_cookie(auth::LOGIN_CSRF_COOKIE, "", 0, state.secure_cookies),
            ] {
                if let Ok(value) = HeaderValue::from_str(&cookie) {
                    response.headers_mut().append(header::SET_COOKIE, value);
                }
            }
            Ok(response)
        }
        Attempt::WrongPassword => login_form(
            &state,
            &headers,
            &next,
            &typed,
            Some("Wrong email or password."),
            StatusCode::UNAUTHORIZED,
        ),
        Attempt::Throttled(seconds) => {
            let minutes = (seconds + 59) / 60;
            let message = format!(
                "Too many failed attempts for this email from this network: try again in {minutes} minute{}.",
                if minutes == 1 { "" } else { "s" }
            );
            let mut response = login_form(
                &state,
                &headers,
                &next,
                &typed,
                Some(&message),
                StatusCode::TOO_MANY_REQUESTS,
            )?;
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
            Ok(response)
        }
    }
}

#[derive(Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
    company_id: Option<String>,
}

/// `POST /app/logout`: ends the session (CSRF: a page of another site cannot sign you out).
async fn logout(
    State(state): State<DashboardsState>,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Result<Response, DashboardError> {
    let user = require_user(&state, &headers, "/app").await?;
    if !auth::tokens_match(&user.csrf, &form.csrf) {
        return Err(DashboardError::Csrf);
    }
    auth::end_session(&state.pool, &user.token_hash).await?;
    let mut response = Redirect::to("/app/login").into_response();
    let cookie = auth::set_cookie(auth::SESSION_COOKIE, "", 0, state.secure_cookies);
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    Ok(response)
}

/// `POST /app/switch`: an agency user goes to another of their companies.
async fn switch(
    State(state): State<DashboardsState>,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Result<Response, DashboardError> {
    let user = require_user(&state, &headers, "/app").await?;
    if !auth::tokens_match(&user.csrf, &form.csrf) {
        return Err(DashboardError::Csrf);
    }
    let wanted = form
        .company_id
        .as_deref()
        .and_then(|id| id.parse::<Uuid>().ok())
        .ok_or(DashboardError::NotFound)?;
    let companies = granted(&state.pool, user.user_id).await?;
    if !companies.iter().any(|c| c.company_id == wanted) {
        return Err(DashboardError::NotFound);
    }
    Ok(Redirect::to(&format!("/app/{wanted}/executive")).into_response())
}

#[derive(Template)]
#[template(path = "dashboards/page.html")]
struct PageTemplate<'a> {
    page: Page,
    pages: &'a [Page],
    company: &'a Granted,
    companies: &'a [Granted],
    email: &'a str,
    csrf: &'a str,
    params: &'a Params,
    query: String,
    content: &'a Content,
    as_of: Option<String>,
    models: Vec<(&'static str, bool)>,
    presets: Vec<(&'static str, &'static str, bool)>,
    /// The alerts page's notification settings (editable by admins).
    alert_settings: Option<alert_settings::AlertSettingsView>,
}

impl PageTemplate<'_> {
    fn title(&self) -> &'static str {
        self.page.title()
    }

    /// Whether `campaign` is the one the campaign filter asks for (case-insensitively, as
    /// the pages compare campaigns).
    fn campaign_selected(&self, campaign: &str) -> bool {
        self.params
            .campaign
            .as_deref()
            .is_some_and(|c| c.eq_ignore_ascii_case(campaign))
    }
}

/// One page's content, read as `lux_reader` from `reader` in one transaction.
async fn load_page(
    reader: &PgPool,
    company_id: Uuid,
    page: Page,
    params: &Params,
    context: &pages::Context,
) -> Result<Content, DashboardError> {
    let mut tx = crate::reports::begin_reader(reader, company_id).await?;
    let content = page.load(&mut tx, params, context).await?;
    tx.commit().await?;
    Ok(content)
}

/// `GET /app/{company_id}/{page}`: the page, or with `?format=csv` one of its tables.
async fn page(
    State(state): State<DashboardsState>,
    Path((company_id, page)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, DashboardError> {
    let path = match &query {
        Some(q) => format!("/app/{company_id}/{page}?{q}"),
        None => format!("/app/{company_id}/{page}"),
    };
    let user = require_user(&state, &headers, &path).await?;
    // A company the user was not granted is answered like one that does not exist.
    let company_id: Uuid = company_id.parse().map_err(|_| DashboardError::NotFound)?;
    let companies = granted(&state.pool, user.user_id).await?;
    let company = companies
        .iter()
        .find(|c| c.company_id == company_id)
        .ok_or(DashboardError::NotFound)?;
    let page = Page::parse(&page).ok_or(DashboardError::NotFound)?;
    let now = state.clock.now();
    let today = company_today(&company.timezone, now);
    let params = Params::parse(query.as_deref(), today)
        .map_err(|e| DashboardError::BadRequest(e.to_string()))?;
    let context = pages::Context {
        company_id,
        currency: company.currency.clone(),
        today,
        funnels: if page == Page::Funnel {
            Some(crate::reports::company_funnels(&state.pool, company_id).await?)
        } else {
            None
        },
    };
    let read = state.reader.pool();
    let content = match load_page(read, company_id, page, &params, &context).await {
        // As the reports: a read the replica failed for a reason the primary may not have is
        // run again there (counted in `lux_replica_fallbacks_total`).
        Err(
            DashboardError::Database(e)
            | DashboardError::Report(crate::reports::ReportError::Database(e)),
        ) => match state.reader.retry_on_primary(read, &e) {
            Some(primary) => load_page(primary, company_id, page, &params, &context).await?,
            None => return Err(DashboardError::Database(e)),
        },
        other => other?,
    };

    if params.csv {
        let table = content.table(params.table.as_deref()).ok_or_else(|| {
            DashboardError::BadRequest(format!(
                "table={:?}: this page's tables are {}",
                params.table.as_deref().unwrap_or(""),
                content
                    .tables
                    .iter()
                    .map(|t| t.key)
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })?;
        let file = format!(
            "{}-{}-{}_{}.csv",
            page.as_str(),
            table.key,
            params.range.from(),
            params.range.to()
        );
        let mut response = table.to_csv()?.into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/csv; charset=utf-8"),
        );
        if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{file}\"")) {
            headers.insert(header::CONTENT_DISPOSITION, value);
        }
        no_store(&mut response);
        return Ok(response);
    }

    let as_of = data_as_of(&state.pool, company_id, &company.timezone).await?;
    let alert_settings = if page == Page::Alerts {
        Some(alert_settings::load(&state.pool, company_id, role_of(company)).await?)
    } else {
        None
    };
    let body = PageTemplate {
        alert_settings,
        page,
        pages: &Page::ALL,
        company,
        companies: &companies,
        email: &user.email,
        csrf: &user.csrf,
        query: params.query_string(),
        params: &params,
        content: &content,
        as_of,
        models: crate::attribution::settings::Model::ALL
            .iter()
            .map(|m| (m.as_str(), *m == params.model))
            .collect(),
        presets: period::Preset::ALL
            .iter()
            .map(|p| (p.as_str(), p.label(), *p == params.preset))
            .collect(),
    }
    .render()?;
    let mut response = Html(body).into_response();
    no_store(&mut response);
    Ok(response)
}

/// The user's role in `company` (a grant with a role this build does not know is a viewer's:
/// the one that may change nothing).
fn role_of(company: &Granted) -> users::Role {
    users::Role::parse(&company.role).unwrap_or(users::Role::Viewer)
}

/// `POST /app/{company_id}/alerts/settings`: an admin saves the alerts page's form (CSRF,
/// then the grant, then the role); a viewer gets 403 and nothing changes.
async fn save_alert_settings(
    State(state): State<DashboardsState>,
    Path(company_id): Path<String>,
    headers: HeaderMap,
    Form(form): Form<alert_settings::SettingsForm>,
) -> Result<Response, DashboardError> {
    let user = require_user(&state, &headers, &format!("/app/{company_id}/alerts")).await?;
    if !auth::tokens_match(&user.csrf, &form.csrf) {
        return Err(DashboardError::Csrf);
    }
    let company_id: Uuid = company_id.parse().map_err(|_| DashboardError::NotFound)?;
    let companies = granted(&state.pool, user.user_id).await?;
    let company = companies
        .iter()
        .find(|c| c.company_id == company_id)
        .ok_or(DashboardError::NotFound)?;
    if !alert_settings::may_change(role_of(company)) {
        return Err(DashboardError::Forbidden(format!(
            "only an admin of {} may change its alert settings",
            company.name
        )));
    }
    let current = crate::alerts::config::AlertSettings::load(&state.pool, company_id).await?;
    form.apply(current)?.save(&state.pool, company_id).await?;
    Ok(Redirect::to(&format!("/app/{company_id}/alerts#alert-settings")).into_response())
}

/// Pages hold a company's numbers: no shared cache keeps them.
fn no_store(response: &mut Response) {
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
}

fn company_today(timezone: &str, now: DateTime<Utc>) -> chrono::NaiveDate {
    match timezone.parse::<chrono_tz::Tz>() {
        Ok(tz) => now.with_timezone(&tz).date_naive(),
        Err(_) => now.date_naive(),
    }
}

/// When the last successful rollups run finished, in the company's time zone.
async fn data_as_of(
    pool: &PgPool,
    company_id: Uuid,
    timezone: &str,
) -> Result<Option<String>, sqlx::Error> {
    let mut tx = crate::db::begin_for_company(pool, company_id).await?;
    let finished: Option<DateTime<Utc>> = sqlx::query_scalar(
        "SELECT max(finished_at) FROM job_runs
         WHERE company_id = $1 AND job = 'rollups' AND status = 'succeeded'",
    )
    .bind(company_id)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(finished.map(|at| match timezone.parse::<chrono_tz::Tz>() {
        Ok(tz) => at
            .with_timezone(&tz)
            .format("%Y-%m-%d %H:%M %Z")
            .to_string(),
        Err(_) => at.format("%Y-%m-%d %H:%M UTC").to_string(),
    }))
}

const STYLESHEET: &str = include_str!("../../assets/app.css");
const SCRIPT: &str = include_str!("../../assets/app.js");

async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        STYLESHEET,
    )
        .into_response()
}

async fn script() -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                "application/javascript; charset=utf-8",
            ),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        SCRIPT,
    )
        .into_response()
}
