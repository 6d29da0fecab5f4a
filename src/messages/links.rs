//! Short tracked links, for SMS (which has no provider click events) and any channel:
//! `POST /api/v1/links` (secret key) mints a code for a message's URL, and `GET /r/{code}`
//! records the click as a `message_events` row (provider `link`, kind `clicked`) and
//! redirects (302) to the stored URL with `lux_mid` added.
//!
//! The redirect only ever goes to a URL a company stored with its secret key: an unknown code
//! is a 404 page, never a redirect, so `/r/` cannot be used as an open redirect. Codes are
//! global (the path names no company) and resolved through the `lux_resolve_link` database
//! function, the one way the service's role reads a link without knowing its company.
//!
//! Machines: a request with a bot or link-preview user agent (the rule of
//! [`super::machine`]), with no user agent at all, or a `HEAD` request (link unfurlers and
//! scanners check a link without fetching it; browsers never click with `HEAD`) is recorded
//! as a machine click, kept apart from people's; so is a click within 5 s of the send's
//! `sent_at` (or before it), as [`super::machine`] judges clicks right after delivery.

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use rand::RngExt;
use serde_json::{Value, json};
use url::Url;
use uuid::Uuid;

use super::machine::{CLICK_AFTER_DELIVERY, MachineReason, is_bot_user_agent};
use super::sends::{body_error, check_message_id, secret_key_tenant};
use super::{MessagesOptions, MessagesState};
use crate::http::ApiError;

pub const LINKS_PATH: &str = "/api/v1/links";
pub const REDIRECT_PATH: &str = "/r/{code}";
/// Characters of a code: 62^10 ≈ 8·10^17 codes, so guessing one is hopeless and collisions
/// (retried) are rare.
pub const CODE_LENGTH: usize = 10;
const CODE_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
/// Longest URL a link may hold (what browsers and SMS gateways reliably carry).
pub const MAX_URL_LENGTH: usize = 2048;
const MAX_BODY_BYTES: usize = 16 * 1024;
/// Fresh codes tried before giving up (each collides with probability ~n/8·10^17).
const CODE_ATTEMPTS: usize = 5;

pub fn router() -> Router<MessagesState> {
    Router::new()
        .route(
            LINKS_PATH,
            post(create_link).layer(DefaultBodyLimit::max(MAX_BODY_BYTES)),
        )
        // `get` answers HEAD too (without a body); the handler tells them apart.
        .route(REDIRECT_PATH, get(follow))
}

/// Why a link's URL is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("url is missing")]
    Missing,
    #[error("url is longer than {MAX_URL_LENGTH} characters")]
    TooLong,
    #[error("url is not an absolute URL ({0})")]
    Invalid(String),
    #[error("url must be http or https, not {0}")]
    Scheme(String),
    #[error("url must not contain a user name or password")]
    UserInfo,
    #[error("url already has a lux_mid parameter; the redirect adds it")]
    HasLuxMid,
}

/// A link's destination: an absolute http(s) URL without credentials or `lux_mid`.
pub fn check_url(text: Option<&str>) -> Result<Url, UrlError> {
    let text = text.map(str::trim).filter(|t| !t.is_empty());
    let text = text.ok_or(UrlError::Missing)?;
    if text.len() > MAX_URL_LENGTH {
        return Err(UrlError::TooLong);
    }
    let url = Url::parse(text).map_err(|e| UrlError::Invalid(e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(UrlError::Scheme(url.scheme().chars().take(20).collect()));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(UrlError::UserInfo);
    }
    if url.query_pairs().any(|(name, _)| name == "lux_mid") {
        return Err(UrlError::HasLuxMid);
    }
    Ok(url)
}

/// Where a click goes: the stored URL with `lux_mid` appended to its query (the rest of the
/// query and the fragment kept as they were).
pub fn destination(stored: &str, message_id: &str) -> Option<Url> {
    let mut url = Url::parse(stored).ok()?;
    if !matches!(url.scheme(), "http" | "https") {
        return None;
    }
    url.query_pairs_mut().append_pair("lux_mid", message_id);
    Some(url)
}

/// A fresh random code.
fn new_code() -> String {
    let mut rng = rand::rng();
    (0..CODE_LENGTH)
        .map(|_| char::from(CODE_ALPHABET[rng.random_range(0..CODE_ALPHABET.len())]))
        .collect()
}

/// A text that could be a code: anything else is unknown without asking the database.
fn looks_like_code(code: &str) -> bool {
    (1..=64).contains(&code.len()) && code.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// `short_url`: on `LUX_PUBLIC_URL` when set; otherwise the path alone, to be put after the
/// service's address by the caller. The request's Host header is never used: anyone can
/// send any Host, and a short link must not point wherever a request said.
pub fn short_url(options: &MessagesOptions, code: &str) -> String {
    match &options.public_url {
        Some(base) => format!("{}/r/{code}", base.as_str().trim_end_matches('/')),
        None => format!("/r/{code}"),
    }
}

/// `POST /api/v1/links` `{"message_id", "url"}` → 201 `{"code", "short_url", ...}`. The
/// message must be one of the company's sends (404 otherwise): a click is credited to a
/// send, and a code for a message the company never sent would only collect orphan clicks.
#[tracing::instrument(skip_all, fields(company_id))]
async fn create_link(
    State(state): State<MessagesState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let tenant = secret_key_tenant(&state, &headers).await?;
    let company_id = tenant.settings.company_id;
    tracing::Span::current().record("company_id", tracing::field::display(company_id));
    let body = body.map_err(|r| body_error(r, MAX_BODY_BYTES))?;
    let request: Value = serde_json::from_slice(&body).map_err(|e| {
        ApiError::BadRequest(format!(
            "the body is not JSON ({e}); send {{\"message_id\": ..., \"url\": ...}}"
        ))
    })?;
    let text = |name: &str| match request.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.as_str())),
        Some(_) => Err(ApiError::BadRequest(format!("{name} must be a string"))),
    };
    let message_id = check_message_id(text("message_id")?)
        .map_err(|e| ApiError::BadRequest(e.to_string()))?
        .to_owned();
    let url = check_url(text("url")?).map_err(|e| ApiError::BadRequest(e.to_string()))?;

    let mut tx = crate::db::begin_for_company(&state.pool, company_id).await?;
    let known: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM message_sends WHERE company_id = $1 AND message_id = $2)",
    )
    .bind(company_id)
    .bind(&message_id)
    .fetch_one(&mut *tx)
    .await?;
    if !known {
        let error = format!(
            "no message {message_id:?} among this company's sends: post the send to {} first",
            super::sends::MESSAGES_PATH
        );
        return Ok((StatusCode::NOT_FOUND, axum::Json(json!({ "error": error }))).into_response());
    }
    let code = insert_link(&mut tx, company_id, &message_id, &url).await?;
    tx.commit().await?;
    let body = json!({
        "code": code,
        "short_url": short_url(&state.options, &code),
        "message_id": message_id,
        "url": url.as_str(),
    });
    Ok((StatusCode::CREATED, axum::Json(body)).into_response())
}

/// Stores the link under a fresh code, drawing again on the (rare) collision with any
/// company's code. The code is claimed first in `link_codes`, the global registry of codes
/// (no company data in it), so two companies can never hold the same code.
async fn insert_link(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    company_id: Uuid,
    message_id: &str,
    url: &Url,
) -> Result<String, ApiError> {
    for _ in 0..CODE_ATTEMPTS {
        let code = new_code();
        let claimed: Option<String> = sqlx::query_scalar(
            "INSERT INTO link_codes (code) VALUES ($1) ON CONFLICT (code) DO NOTHING RETURNING code",
        )
        .bind(&code)
        .fetch_optional(&mut **tx)
        .await?;
        if claimed.is_none() {
            continue;
        }
        sqlx::query(
            "INSERT INTO message_links (company_id, code, message_id, url) VALUES ($1, $2, $3, $4)",
        )
        .bind(company_id)
        .bind(&code)
        .bind(message_id)
        .bind(url.as_str())
        .execute(&mut **tx)
        .await?;
        return Ok(code);
    }
    Err(ApiError::internal(format!(
        "{CODE_ATTEMPTS} random link codes in a row were taken"
    )))
}

/// Why a click is a machine's, or `None` for a person.
pub fn machine_reason(method: &Method, user_agent: Option<&str>) -> Option<&'static str> {
    let user_agent = user_agent.map(str::trim).unwrap_or("");
    if method == Method::HEAD {
        Some("head_request")
    } else if user_agent.is_empty() {
        Some("no_user_agent")
    } else if is_bot_user_agent(user_agent) {
        Some(MachineReason::BotUserAgent.code())
    } else {
        None
    }
}

/// `GET /r/{code}`: records the click, then 302 to the link's URL with `lux_mid`. The click
/// is written before answering, but a failure to write it still sends the person on: losing
/// one click is better than a dead link in a message already sent.
async fn follow(
    State(state): State<MessagesState>,
    Path(code): Path<String>,
    method: Method,
    headers: HeaderMap,
) -> Response {
    if !looks_like_code(&code) {
        return unknown_link(&headers);
    }
    let link: Result<Option<(Uuid, String, String)>, sqlx::Error> =
        sqlx::query_as("SELECT company_id, message_id, url FROM lux_resolve_link($1)")
            .bind(&code)
            .fetch_optional(&state.pool)
            .await;
    let (company_id, message_id, url) = match link {
        Ok(Some(link)) => link,
        Ok(None) => return unknown_link(&headers),
        Err(error) => return ApiError::from(error).into_response(),
    };
    let Some(location) = destination(&url, &message_id) else {
        tracing::error!(%company_id, "a stored link URL no longer parses as http(s)");
        return unknown_link(&headers);
    };
    let user_agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok());
    let click = Click {
        company_id,
        message_id: &message_id,
        url: &url,
        method: &method,
        machine_reason: machine_reason(&method, user_agent),
    };
    if let Err(error) = record_click(&state, &click).await {
        tracing::warn!(%company_id, error = %error, "a link click could not be recorded");
    }
    redirect(&location)
}

struct Click<'a> {
    company_id: Uuid,
    message_id: &'a str,
    url: &'a str,
    method: &'a Method,
    machine_reason: Option<&'static str>,
}

/// Whether collection is allowed, and the recipient hash and `sent_at` of a link's send.
type SendOfClick = (bool, Option<Vec<u8>>, Option<DateTime<Utc>>);

/// Appends the click to `message_events`, with the recipient hash of its send (when the send
/// has one), so attribution can find the person. Nothing is recorded when the company has
/// turned tracking off or the recipient's email is suppressed (`lux privacy suppress`); the
/// person is redirected all the same.
async fn record_click(state: &MessagesState, click: &Click<'_>) -> Result<(), sqlx::Error> {
    let now = state.clock.now();
    let mut tx = crate::db::begin_for_company(&state.pool, click.company_id).await?;
    let send: Option<SendOfClick> = sqlx::query_as(
        "SELECT c.tracking_enabled AND NOT EXISTS (
                    SELECT 1 FROM suppressions x
                     WHERE x.company_id = c.company_id AND x.kind = 'email'
                       AND x.value = lux_suppression_key(c.hash_key, 'email',
                                                         encode(s.recipient_hash, 'hex'))),
                s.recipient_hash, s.sent_at
           FROM companies c
           LEFT JOIN message_sends s ON s.company_id = c.company_id AND s.message_id = $2
          WHERE c.company_id = $1",
    )
    .bind(click.company_id)
    .bind(click.message_id)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((true, recipient_hash, sent_at)) = send else {
        return Ok(());
    };
    let reason = click
        .machine_reason
        .or_else(|| sent_at.and_then(|sent_at| clicked_on_arrival(sent_at, now)));
    sqlx::query(
        "INSERT INTO message_events (company_id, event_id, provider, provider_event_id,
                message_id, kind, provider_status, occurred_at, received_at, recipient_hash,
                url, is_machine, machine_reason)
         VALUES ($1, $2, 'link', $3, $4, 'clicked', $5, $6, $6, $7, $8, $9 IS NOT NULL, $9)",
    )
    .bind(click.company_id)
    .bind(Uuid::now_v7())
    .bind(Uuid::new_v4().to_string())
    .bind(click.message_id)
    .bind(click.method.as_str())
    .bind(now)
    .bind(recipient_hash)
    .bind(click.url)
    .bind(reason)
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}

/// Rule 5 of [`super::machine`] with the send time standing in for delivery (no provider
/// reports an SMS link's delivery to us here): a click within
/// [`CLICK_AFTER_DELIVERY`] of sending, or before it, is a gateway or a preview fetching the
/// link as the message arrives.
pub fn clicked_on_arrival(sent_at: DateTime<Utc>, now: DateTime<Utc>) -> Option<&'static str> {
    (now - sent_at <= CLICK_AFTER_DELIVERY)
        .then(|| MachineReason::ClickedAtDelivery { seconds: 0 }.code())
}

fn redirect(location: &Url) -> Response {
    let Ok(value) = HeaderValue::from_str(location.as_str()) else {
        return ApiError::internal("a link URL is not a header value").into_response();
    };
    let mut response = StatusCode::FOUND.into_response();
    let headers = response.headers_mut();
    headers.insert(header::LOCATION, value);
    // Every click must reach us, and the landing page should see `lux_mid`, not our host,
    // as where the visit came from.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

/// The page for a link that does not exist: HTML for a person's browser, the service's JSON
/// error for anything that does not ask for HTML. Never a redirect.
fn unknown_link(headers: &HeaderMap) -> Response {
    let wants_html = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"));
    let mut response = if wants_html {
        (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            UNKNOWN_LINK_PAGE,
        )
            .into_response()
    } else {
        (
            StatusCode::NOT_FOUND,
            axum::Json(json!({ "error": "unknown link: no such code" })),
        )
            .into_response()
    };
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Static: nothing from the request is echoed into it.
const UNKNOWN_LINK_PAGE: &str = "<!doctype html>
<html lang=\"en\"><head><meta charset=\"utf-8\">
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">
<meta name=\"robots\" content=\"noindex\">
<title>Link not found</title></head>
<body style=\"font-family: system-ui, sans-serif; max-width: 32rem; margin: 4rem auto; padding: 0 1rem\">
<h1>This link does not exist</h1>
<p>The link may have been mistyped or cut short. Check the message it came in, or go to the
sender's website directly.</p>
</body></html>
";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_http_urls_without_lux_mid_are_accepted() {
        assert!(check_url(Some("https://shop.example/p?a=1#top")).is_ok());
        let cases = [
            (None, UrlError::Missing),
            (Some("  "), UrlError::Missing),
            (
                Some("javascript:alert(1)"),
                UrlError::Scheme("javascript".into()),
            ),
            (Some("ftp://x.example/"), UrlError::Scheme("ftp".into())),
            (Some("https://user:pw@x.example/"), UrlError::UserInfo),
            (Some("https://x.example/?lux_mid=m"), UrlError::HasLuxMid),
        ];
        for (text, expected) in cases {
            assert_eq!(check_url(text).unwrap_err(), expected, "{text:?}");
        }
        assert!(matches!(
            check_url(Some("/relative")),
            Err(UrlError::Invalid(_))
        ));
        let long = format!("https://x.example/{}", "a".repeat(MAX_URL_LENGTH));
        assert_eq!(check_url(Some(&long)).unwrap_err(), UrlError::TooLong);
    }

    #[test]
    fn the_destination_keeps_query_and_fragment_and_adds_lux_mid() {
        let to = |stored: &str| destination(stored, "m 1&x").unwrap().to_string();
        assert_eq!(
            to("https://shop.example/p?utm_source=sms&a=%20b#top"),
            "https://shop.example/p?utm_source=sms&a=%20b&lux_mid=m+1%26x#top"
        );
        assert_eq!(
            to("https://shop.example"),
            "https://shop.example/?lux_mid=m+1%26x"
        );
        assert!(destination("mailto:a@b.example", "m").is_none());
    }

    #[test]
    fn codes_are_ten_url_safe_characters_and_differ() {
        let a = new_code();
        assert_eq!(a.len(), CODE_LENGTH);
        assert!(looks_like_code(&a));
        assert_ne!(a, new_code());
        assert!(!looks_like_code("../etc"));
        assert!(!looks_like_code(""));
    }

    #[test]
    fn head_requests_bots_and_requests_without_a_user_agent_are_machines() {
        let browser = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1";
        assert_eq!(machine_reason(&Method::GET, Some(browser)), None);
        assert_eq!(
            machine_reason(&Method::HEAD, Some(browser)),
            Some("head_request")
        );
        assert_eq!(machine_reason(&Method::GET, None), Some("no_user_agent"));
        assert_eq!(
            machine_reason(&Method::GET, Some("facebookexternalhit/1.1")),
            Some("bot_user_agent")
        );
        assert_eq!(
            machine_reason(&Method::GET, Some("WhatsApp/2.23.20.0")),
            Some("bot_user_agent")
        );
    }

    #[test]
    fn a_click_within_five_seconds_of_sending_or_before_it_is_a_machine() {
        let sent: DateTime<Utc> = "2026-12-01T09:00:00Z".parse().unwrap();
        let after = |s| sent + chrono::TimeDelta::seconds(s);
        assert_eq!(
            clicked_on_arrival(sent, after(5)),
            Some("clicked_at_delivery")
        );
        assert_eq!(
            clicked_on_arrival(sent, after(-60)),
            Some("clicked_at_delivery")
        );
        assert_eq!(clicked_on_arrival(sent, after(6)), None);
    }

    #[test]
    fn short_urls_use_the_public_url_or_stay_relative() {
        let options = MessagesOptions {
            public_url: Some(Url::parse("https://lux.example.com/").unwrap()),
        };
        assert_eq!(short_url(&options, "abc"), "https://lux.example.com/r/abc");
        assert_eq!(short_url(&MessagesOptions::default(), "abc"), "/r/abc");
    }
}
