//! Analytics ingestion: `POST /e`, the `/lux.js` snippet and its development page.
//!
//! A request is authenticated by its key, parsed, each event validated and enriched on its
//! own (one bad event never sinks the batch), and the valid ones handed to the batch writer.
//! The answer comes after they are committed.

pub mod channel;
pub mod event;
pub mod limits;
pub mod purchase;
pub mod rejection;
pub mod schemas;
pub mod sessions;
mod store;
pub mod traffic;
pub mod writer;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, DefaultBodyLimit, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use chrono::Utc;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::clock::Clock;
use crate::http::ApiError;
use crate::privacy::IpHasher;
use crate::telemetry::IngestMetrics;
use crate::tenancy::{KeyKind, Tenancy, Tenant};
use event::{AcceptedEvent, RequestContext};
use writer::{Outcome, SubmitError};

/// Name of the first-party cookie that keeps the visitor id.
const VISITOR_COOKIE: &str = "lux_vid";

/// What ingestion's handlers use, taken from the app's state.
#[derive(Clone)]
pub struct IngestState {
    /// Connections that run as `lux_app` (the development page's read of recent events).
    pub pool: sqlx::PgPool,
    /// The time of receipt of every request.
    pub clock: Clock,
    pub tenancy: Arc<Tenancy>,
    pub writer: writer::Writer,
    pub ip_hasher: Arc<IpHasher>,
    pub metrics: Arc<IngestMetrics>,
    pub options: Arc<IngestOptions>,
}

/// Settings of ingestion's HTTP endpoints.
#[derive(Debug, Clone, Default)]
pub struct IngestOptions {
    /// Take the client address from `X-Forwarded-For` (only behind a trusted proxy).
    pub trust_proxy: bool,
    /// Serve the development page that shows the snippet working.
    pub dev_page: bool,
}

pub fn router() -> Router<IngestState> {
    Router::new()
        .route("/e", post(collect).options(preflight))
        .layer(DefaultBodyLimit::max(limits::MAX_BODY_BYTES))
        .route("/lux.js", get(snippet))
        .route("/dev", get(dev_page))
        .route("/dev/events", get(dev_events))
}

/// The key of a request: `?key=` or `X-Lux-Key` (write key), or `Authorization: Bearer`
/// (secret key).
fn request_key(query: Option<&str>, headers: &HeaderMap) -> Result<String, ApiError> {
    if let Some(key) = crate::http::key::bearer_key(headers)? {
        return Ok(key);
    }
    if let Some(key) = headers.get("x-lux-key") {
        return Ok(key.to_str().unwrap_or_default().trim().to_string());
    }
    if let Some(query) = query {
        for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
            if name == "key" {
                return Ok(value.trim().to_string());
            }
        }
    }
    Err(ApiError::Unauthorized(
        "missing key: add ?key=WRITE_KEY (snippet) or Authorization: Bearer SECRET_KEY (server)"
            .into(),
    ))
}

async fn resolve_tenant(
    state: &IngestState,
    query: Option<&str>,
    headers: &HeaderMap,
) -> Result<Tenant, ApiError> {
    let key = request_key(query, headers)?;
    let tenant = state
        .tenancy
        .resolve(&key)
        .await?
        .ok_or_else(|| ApiError::Unauthorized("unknown or revoked key".into()))?;
    let via_header = headers.contains_key(header::AUTHORIZATION);
    if tenant.kind == KeyKind::Secret && !via_header {
        // A secret key in a URL ends up in logs and browser history.
        return Err(ApiError::BadRequest(
            "secret keys go in the Authorization header, never in the URL; revoke this key".into(),
        ));
    }
    Ok(tenant)
}

/// Checks the browser's origin against the company's list; returns the origin to echo in CORS
/// headers.
fn allowed_origin(tenant: &Tenant, headers: &HeaderMap) -> Result<Option<HeaderValue>, ApiError> {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(None);
    };
    let text = origin.to_str().unwrap_or_default();
    if tenant.kind == KeyKind::Write && !tenant.settings.allows_origin(text) {
        return Err(ApiError::Forbidden(format!(
            "origin {text} is not allowed to send events for this site"
        )));
    }
    Ok(Some(origin.clone()))
}

fn with_cors(mut response: Response, origin: Option<HeaderValue>) -> Response {
    if let Some(origin) = origin {
        let headers = response.headers_mut();
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
        headers.insert(header::VARY, HeaderValue::from_static("Origin"));
    }
    response
}

async fn preflight(
    State(state): State<IngestState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let result = async {
        let tenant = resolve_tenant(&state, query.as_deref(), &headers).await?;
        allowed_origin(&tenant, &headers)
    }
    .await;
    match result {
        Ok(origin) => {
            let mut response = with_cors(StatusCode::NO_CONTENT.into_response(), origin);
            let h = response.headers_mut();
            h.insert(
                header::ACCESS_CONTROL_ALLOW_METHODS,
                HeaderValue::from_static("POST"),
            );
            h.insert(
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                HeaderValue::from_static("content-type, x-lux-key"),
            );
            h.insert(
                header::ACCESS_CONTROL_MAX_AGE,
                HeaderValue::from_static("86400"),
            );
            response
        }
        Err(e) => e.into_response(),
    }
}

/// `POST /e`: one event, an array of events, or `{"events": [...]}`.
async fn collect(
    State(state): State<IngestState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let mut origin = None;
    let result = async {
        let tenant = resolve_tenant(&state, query.as_deref(), &headers).await?;
        origin = allowed_origin(&tenant, &headers)?;
        let body = body.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge(format!(
                    "body is larger than {} bytes; send fewer events per request",
                    limits::MAX_BODY_BYTES
                ))
            } else {
                ApiError::BadRequest(format!("could not read the body: {rejection}"))
            }
        })?;
        let raw_events = parse_body(&headers, &body)?;
        ingest(&state, &tenant, peer, &headers, raw_events).await
    }
    .await;
    let response = result.unwrap_or_else(|error| {
        match error {
            ApiError::Overloaded => state.metrics.unavailable("overloaded"),
            ApiError::Unavailable => state.metrics.unavailable("database"),
            _ => {}
        }
        error.into_response()
    });
    with_cors(response, origin)
}

fn parse_body(headers: &HeaderMap, body: &[u8]) -> Result<Vec<Value>, ApiError> {
    if let Some(content_type) = headers.get(header::CONTENT_TYPE) {
        let mime = content_type
            .to_str()
            .unwrap_or_default()
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        if mime != "application/json" && mime != "text/plain" {
            return Err(ApiError::UnsupportedMediaType(format!(
                "Content-Type {mime:?} is not supported: send application/json or text/plain"
            )));
        }
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::BadRequest(
            "empty body: send an event object, an array of events, or {\"events\": [...]}".into(),
        ));
    }
    let text = std::str::from_utf8(body)
        .map_err(|_| ApiError::BadRequest("body is not valid UTF-8".into()))?;
    let value: Value = serde_json::from_str(text)
        .map_err(|e| ApiError::BadRequest(format!("malformed JSON: {e}")))?;
    let events = match value {
        Value::Array(events) => events,
        Value::Object(mut object) if object.contains_key("events") => {
            if object.len() > 1 {
                let extra = object.keys().find(|k| *k != "events").cloned();
                return Err(ApiError::BadRequest(format!(
                    "unknown field `{}` next to `events`",
                    extra.unwrap_or_default()
                )));
            }
            match object.remove("events") {
                Some(Value::Array(events)) => events,
                _ => return Err(ApiError::BadRequest("`events` must be an array".into())),
            }
        }
        Value::Object(_) => vec![value],
        other => {
            return Err(ApiError::BadRequest(format!(
                "body must be an event object, an array of events, or {{\"events\": [...]}}, not {}",
                match other {
                    Value::Null => "null",
                    Value::Bool(_) => "a boolean",
                    Value::Number(_) => "a number",
                    _ => "a string",
                }
            )));
        }
    };
    if events.is_empty() {
        return Err(ApiError::BadRequest("the batch holds no events".into()));
    }
    if events.len() > limits::MAX_BATCH {
        return Err(ApiError::PayloadTooLarge(format!(
            "a batch of {} events is over the limit of {}; split it",
            events.len(),
            limits::MAX_BATCH
        )));
    }
    Ok(events)
}

/// The client's address: the peer's, or behind a trusted proxy the one it appended.
pub fn client_ip(peer: SocketAddr, headers: &HeaderMap, trust_proxy: bool) -> IpAddr {
    if trust_proxy
        && let Some(forwarded) = headers.get("x-forwarded-for")
        // The rightmost entry is the one our proxy appended; the ones before it are
        // whatever the client claimed.
        && let Some(last) = forwarded.to_str().unwrap_or_default().rsplit(',').next()
        && let Ok(ip) = last.trim().parse()
    {
        return ip;
    }
    peer.ip()
}

/// The GPC spec: the header counts only when its value is exactly `1`.
fn gpc_header(headers: &HeaderMap) -> bool {
    headers
        .get_all("sec-gpc")
        .iter()
        .any(|v| v.to_str().is_ok_and(|v| v.trim() == "1"))
}

fn cookie_visitor(headers: &HeaderMap) -> Option<Uuid> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == VISITOR_COOKIE)
        .and_then(|(_, value)| Uuid::parse_str(value.trim()).ok())
}

async fn ingest(
    state: &IngestState,
    tenant: &Tenant,
    peer: SocketAddr,
    headers: &HeaderMap,
    raw_events: Vec<Value>,
) -> Result<Response, ApiError> {
    let total = raw_events.len();
    if !tenant.settings.tracking_enabled {
        return Ok((
            StatusCode::ACCEPTED,
            axum::Json(json!({
                "accepted": 0, "ignored": total,
                "reason": "tracking is turned off for this company", "rejected": []
            })),
        )
            .into_response());
    }
    let received_at = state.clock.now();
    let ctx = RequestContext {
        settings: &tenant.settings,
        key_kind: tenant.kind,
        received_at,
        user_agent: headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
        client_ip: Some(client_ip(peer, headers, state.options.trust_proxy)),
        gpc_header: gpc_header(headers),
        default_visitor_id: cookie_visitor(headers).unwrap_or_else(Uuid::now_v7),
        anonymous_visitor_id: Uuid::new_v4(),
        salt: state.ip_hasher.salt(received_at).await?,
    };

    let mut accepted: Vec<AcceptedEvent> = Vec::with_capacity(total);
    let mut rejected = Vec::new();
    for (index, raw) in raw_events.into_iter().enumerate() {
        match event::accept(raw, &ctx, index) {
            Ok(event) => accepted.push(event),
            Err(error) => {
                state.metrics.reject(error.code);
                rejected.push(json!({ "index": index, "error": error.message }));
            }
        }
    }
    if accepted.is_empty() {
        let first = rejected[0]["error"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let message = if total == 1 {
            first
        } else {
            format!("no valid events; first error: {first}")
        };
        return Ok((
            StatusCode::BAD_REQUEST,
            axum::Json(json!({ "error": message, "rejected": rejected })),
        )
            .into_response());
    }

    // Crawlers and headless tools (curl, headless Chromium) are stored but kept out of every
    // metric; the answer says so, so a first test from a terminal does not seem to vanish.
    let bots = accepted.iter().filter(|e| e.is_bot).count();
    let first = accepted[0].clone();
    let outcomes = state.writer.submit(accepted).await.map_err(|e| match e {
        SubmitError::Overloaded => ApiError::Overloaded,
        SubmitError::Unavailable => ApiError::Unavailable,
        SubmitError::Refused => ApiError::internal(e),
    })?;
    let count = |wanted: fn(&Outcome) -> bool| outcomes.iter().filter(|o| wanted(o)).count();
    let (stored, duplicates) = (
        count(|o| matches!(o, Outcome::Stored { .. })),
        count(|o| matches!(o, Outcome::Duplicate)),
    );
    let suppressed = outcomes.len() - stored - duplicates;
    state.metrics.stored.inc_by(stored as u64);
    state.metrics.duplicates.inc_by(duplicates as u64);
    state.metrics.suppressed.inc_by(suppressed as u64);
    let session_id = outcomes.iter().find_map(|o| match o {
        Outcome::Stored { session_id } => *session_id,
        _ => None,
    });
    let visitor_id = first.identifiable.then_some(first.visitor_id);
    let mut response = (
        StatusCode::ACCEPTED,
        axum::Json(json!({
            "accepted": outcomes.len(),
            "stored": stored,
            "duplicates": duplicates,
            "suppressed": suppressed,
            "bots": bots,
            "visitor_id": visitor_id,
            "session_id": session_id,
            "rejected": rejected,
        })),
    )
        .into_response();
    if let Some(visitor_id) = visitor_id {
        // Keeps the id when `/e` is served on the site's own domain (a first-party cookie).
        let cookie =
            format!("{VISITOR_COOKIE}={visitor_id}; Path=/; Max-Age=34560000; SameSite=Lax");
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            response.headers_mut().insert(header::SET_COOKIE, value);
        }
    }
    Ok(response)
}

/// The snippet as served: `assets/lux.js` without its comments and indentation. Readable
/// source in the repository, small bytes on the wire, and no minifier in the build.
static SNIPPET: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| strip_js_comments(include_str!("../../assets/lux.js")));

/// Drops the leading `/* ... */` block, whole-line `//` comments and leading whitespace.
/// Line breaks stay, so automatic semicolon insertion sees the same code.
fn strip_js_comments(source: &str) -> String {
    let body = match (source.trim_start().starts_with("/*"), source.find("*/")) {
        (true, Some(end)) => &source[end + 2..],
        _ => source,
    };
    body.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The snippet's validator: a hash of its bytes, so it changes exactly when they do (a new
/// release), and every node of a deployment computes the same one.
static SNIPPET_ETAG: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(SNIPPET.as_bytes());
    format!("\"{}\"", hex::encode(&digest[..12]))
});

/// `/lux.js`, cached an hour, then revalidated: a browser sending the ETag back gets a 304
/// without the body. (Compression, when the client accepts it, is the root router's layer;
/// tower-http marks a compressed answer's ETag weak, which `If-None-Match` still matches.)
async fn snippet(headers: HeaderMap) -> Response {
    let etag = SNIPPET_ETAG.as_str();
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .map(|t| t.trim().trim_start_matches("W/"))
                .any(|t| t == etag || t == "*")
        });
    let common = [
        (header::CACHE_CONTROL, "public, max-age=3600"),
        (header::ETAG, etag),
    ];
    if matches {
        return (StatusCode::NOT_MODIFIED, common).into_response();
    }
    (
        common,
        [(
            header::CONTENT_TYPE,
            "application/javascript; charset=utf-8",
        )],
        SNIPPET.as_str(),
    )
        .into_response()
}

const DEV_PAGE: &str = include_str!("../../assets/dev.html");

/// A page that loads the snippet, for trying it out in development (`lux serve --dev-page`).
async fn dev_page(State(state): State<IngestState>) -> Response {
    if !state.options.dev_page {
        return ApiError::NotFound.into_response();
    }
    Html(DEV_PAGE).into_response()
}

/// event name, time, page, session channel, GPC, bot.
type DevEventRow = (
    String,
    chrono::DateTime<Utc>,
    Option<String>,
    Option<String>,
    bool,
    bool,
);

/// The write key's company's latest events, for the development page (`--dev-page` only).
async fn dev_events(
    State(state): State<IngestState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if !state.options.dev_page {
        return Err(ApiError::NotFound);
    }
    let tenant = resolve_tenant(&state, query.as_deref(), &headers).await?;
    let company_id = tenant.settings.company_id;
    let mut tx = crate::db::begin_for_company(&state.pool, company_id).await?;
    let rows: Vec<DevEventRow> = sqlx::query_as(
        "SELECT e.event_name, e.occurred_at, e.page_url, s.channel, e.gpc, e.is_bot
             FROM raw_events e
             LEFT JOIN sessions s ON s.company_id = e.company_id AND s.session_id = e.session_id
             WHERE e.company_id = $1 AND e.occurred_at > $2
             ORDER BY e.occurred_at DESC LIMIT 20",
    )
    .bind(company_id)
    .bind(state.clock.now() - chrono::Duration::days(1))
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    let events: Vec<Value> = rows
        .into_iter()
        .map(|(name, at, url, channel, gpc, bot)| {
            json!({"event_name": name, "occurred_at": at, "page_url": url,
                   "channel": channel, "gpc": gpc, "bot": bot})
        })
        .collect();
    Ok(axum::Json(json!({ "events": events })).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gpc_header_must_be_exactly_one() {
        let mut headers = HeaderMap::new();
        assert!(!gpc_header(&headers));
        headers.insert("sec-gpc", HeaderValue::from_static("true"));
        assert!(!gpc_header(&headers));
        headers.append("sec-gpc", HeaderValue::from_static("1"));
        assert!(gpc_header(&headers));
    }

    #[test]
    fn behind_a_proxy_the_client_is_the_address_the_proxy_appended() {
        let peer: SocketAddr = "10.0.0.1:5000".parse().unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            HeaderValue::from_static("1.2.3.4, 203.0.113.9"),
        );
        assert_eq!(client_ip(peer, &headers, true).to_string(), "203.0.113.9");
        assert_eq!(client_ip(peer, &headers, false).to_string(), "10.0.0.1");
    }

    #[test]
    fn visitor_cookie_is_read() {
        let mut headers = HeaderMap::new();
        let id = Uuid::now_v7();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("a=b; lux_vid={id}")).unwrap(),
        );
        assert_eq!(cookie_visitor(&headers), Some(id));
    }
}
