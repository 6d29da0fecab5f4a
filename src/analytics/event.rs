//! One event, from untrusted JSON to a validated, enriched [`AcceptedEvent`] ready to store.
//!
//! Parse, don't validate: the only way to get an `AcceptedEvent` is [`accept`], which checks
//! every documented limit and names the problem when one is broken.

use std::net::IpAddr;

use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;
use serde_json::{Map, Value};
use url::Url;
use uuid::Uuid;

pub use super::rejection::EventError;
use super::traffic::{LandingParams, TrafficSource, traffic_source};
use crate::ids::EventName;
use crate::privacy::{
    DailySalt, EmailHash, is_placeholder_id, redact_json_emails, redact_url_emails,
};
use crate::tenancy::{CompanySettings, KeyKind};

/// Documented limits (README "Limits"), kept in their own module below this one.
pub use super::limits;

/// Event names that link a visitor to a user or an email.
const IDENTITY_EVENTS: &[&str] = &["signup", "login", "identify", "lead_submit", "purchase"];

/// The wire format of one event (SPEC §11). Unknown fields are an error: a typo such as
/// `evnt_name` must not silently lose data.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EventInput {
    event_id: Option<Uuid>,
    event_name: String,
    occurred_at: Option<String>,
    visitor_id: Option<String>,
    /// Accepted for compatibility; sessions are always assigned by the server, so that every
    /// ingestion node agrees on them.
    #[allow(dead_code)]
    session_id: Option<String>,
    user_id: Option<IdInput>,
    email: Option<String>,
    page_url: Option<String>,
    referrer: Option<String>,
    properties: Option<Map<String, Value>>,
    consent: Option<ConsentInput>,
    gpc: Option<bool>,
    creative_id: Option<IdInput>,
    /// Server-side only: the original client's address and user agent.
    ip: Option<String>,
    user_agent: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConsentInput {
    analytics: Option<bool>,
    marketing: Option<bool>,
    /// The version of the privacy notice the choice was made under (kept in the ledger).
    notice_version: Option<String>,
}

/// Ids may arrive as strings or integers (`"user_id": 42`).
#[derive(Debug, Deserialize)]
#[serde(untagged, expecting = "a string or an integer")]
enum IdInput {
    Text(String),
    Number(i64),
}

impl IdInput {
    fn into_string(self) -> String {
        match self {
            IdInput::Text(s) => s,
            IdInput::Number(n) => n.to_string(),
        }
    }
}

/// What the request itself says about the client, shared by its events.
pub struct RequestContext<'a> {
    pub settings: &'a CompanySettings,
    pub key_kind: KeyKind,
    pub received_at: DateTime<Utc>,
    pub user_agent: Option<String>,
    pub client_ip: Option<IpAddr>,
    /// `Sec-GPC: 1` on the request.
    pub gpc_header: bool,
    /// The visitor id from the `lux_vid` cookie, or one generated for this request, used for
    /// events that carry none.
    pub default_visitor_id: Uuid,
    /// A random id for events that may not be linked to anyone (GPC, no consent): fresh per
    /// request, never returned, never stored in a cookie.
    pub anonymous_visitor_id: Uuid,
    pub salt: DailySalt,
}

/// The page an event happened on.
#[derive(Debug, Clone)]
pub struct Page {
    pub url: String,
    pub landing: LandingParams,
    /// The traffic source this page would give a session that starts on it.
    pub traffic: TrafficSource,
}

/// A validated, enriched event, ready for the writer.
#[derive(Debug, Clone)]
pub struct AcceptedEvent {
    pub company_id: Uuid,
    pub event_id: Uuid,
    pub event_name: EventName,
    pub occurred_at: DateTime<Utc>,
    pub received_at: DateTime<Utc>,
    pub client_occurred_at: Option<DateTime<Utc>>,
    pub visitor_id: Uuid,
    /// False for GPC / no-consent events: their visitor id is throwaway.
    pub identifiable: bool,
    pub user_id: Option<String>,
    pub email_hash: Option<EmailHash>,
    pub page: Option<Page>,
    pub referrer: Option<String>,
    pub user_agent: Option<String>,
    pub ip_hash: Option<Vec<u8>>,
    pub creative_id: Option<String>,
    pub consent_analytics: bool,
    pub consent_marketing: Option<bool>,
    pub gpc: bool,
    /// A choice the event states (a `consent` object or GPC) for the visitor id the client
    /// sent: what the consent ledger records when it differs from the visitor's current state.
    pub consent_choice: Option<ConsentChoice>,
    pub is_bot: bool,
    pub key_kind: KeyKind,
    pub properties: Value,
    /// Engaged time reported by the snippet (`properties.engaged_ms`).
    pub engaged_ms: i64,
}

impl AcceptedEvent {
    /// Whether this event links its visitor to a user or an email.
    pub fn links_identity(&self) -> bool {
        self.identifiable
            && (self.user_id.is_some() || self.email_hash.is_some())
            && IDENTITY_EVENTS.contains(&self.event_name.as_str())
    }

    pub fn is_page_view(&self) -> bool {
        self.event_name == "page_view"
    }
}

/// Validates and enriches one event of a request; `position` is its index in the request.
pub fn accept(
    raw: Value,
    ctx: &RequestContext<'_>,
    position: usize,
) -> Result<AcceptedEvent, EventError> {
    if !raw.is_object() {
        return Err(EventError::new(
            "not_an_object",
            format!("an event must be a JSON object, not {}", json_kind(&raw)),
        ));
    }
    check_strings_and_depth(&raw)?;
    let input: EventInput = serde_path_to_error::deserialize(raw).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        let message = if path == "." || path.is_empty() {
            inner
        } else {
            format!("{path}: {inner}")
        };
        EventError::new("invalid_field", message)
    })?;
    enrich(input, ctx, position)
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// PostgreSQL's text and jsonb cannot hold NUL characters, and deep nesting is a parser
/// hazard downstream: both are rejected here, naming where they were found.
fn check_strings_and_depth(event: &Value) -> Result<(), EventError> {
    fn walk(v: &Value, path: &str, depth: usize) -> Result<(), EventError> {
        match v {
            Value::String(s) if s.contains('\0') => Err(EventError::new(
                "nul_character",
                format!("{path}: NUL characters (\\u0000) are not allowed"),
            )),
            Value::Array(items) => {
                too_deep(path, depth)?;
                for (i, item) in items.iter().enumerate() {
                    walk(item, &format!("{path}[{i}]"), depth + 1)?;
                }
                Ok(())
            }
            Value::Object(map) => {
                too_deep(path, depth)?;
                for (key, item) in map {
                    if key.contains('\0') {
                        return Err(EventError::new(
                            "nul_character",
                            format!("{path}: a key contains a NUL character"),
                        ));
                    }
                    walk(item, &join(path, key), depth + 1)?;
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }
    fn too_deep(path: &str, depth: usize) -> Result<(), EventError> {
        // The event object is depth 0, `properties` depth 1.
        if depth > limits::MAX_PROPERTIES_DEPTH {
            return Err(EventError::new(
                "too_deep",
                format!(
                    "{path}: nested more than {} levels deep",
                    limits::MAX_PROPERTIES_DEPTH
                ),
            ));
        }
        Ok(())
    }
    fn join(path: &str, key: &str) -> String {
        if path.is_empty() {
            key.to_string()
        } else {
            format!("{path}.{key}")
        }
    }
    walk(event, "", 0)
}

fn enrich(
    input: EventInput,
    ctx: &RequestContext<'_>,
    position: usize,
) -> Result<AcceptedEvent, EventError> {
    let event_name = parse_event_name(&input.event_name)?;
    let (occurred_at, client_occurred_at) = occurred_at(
        input.occurred_at.as_deref(),
        ctx.key_kind,
        receipt_time(ctx.received_at, position),
    )?;
    let mut properties = input.properties.unwrap_or_default();
    properties.values_mut().for_each(redact_json_emails);
    check_properties(event_name.as_str(), &properties)?;
    super::schemas::normalize(event_name.as_str(), &mut properties);
    let engaged_ms = properties
        .get("engaged_ms")
        .and_then(Value::as_i64)
        .unwrap_or(0)
        .clamp(0, 30 * 60 * 1000);

    if ctx.key_kind == KeyKind::Write && (input.ip.is_some() || input.user_agent.is_some()) {
        let field = if input.ip.is_some() {
            "ip"
        } else {
            "user_agent"
        };
        return Err(EventError::new(
            "secret_key_required",
            format!("{field} can only be set by server-side calls with a secret key"),
        ));
    }

    let page_url = optional_text(input.page_url, "page_url", limits::MAX_URL)?
        .map(|u| redact_url_emails(&u).into_owned());
    let page = match page_url {
        Some(url) => Some(parse_page(
            url,
            input.referrer.as_deref().map(redact_url_emails).as_deref(),
        )?),
        None => None,
    };
    let referrer = optional_text(input.referrer, "referrer", limits::MAX_URL)?
        .map(|u| redact_url_emails(&u).into_owned());

    let consent = input.consent.as_ref();
    let consent_analytics = consent
        .and_then(|c| c.analytics)
        .unwrap_or(ctx.settings.default_analytics_consent);
    let consent_marketing = consent.and_then(|c| c.marketing);
    let gpc = ctx.gpc_header || input.gpc == Some(true);
    // GPC or no analytics consent: nothing that could tie this event to a person or to other
    // visits is kept (SPEC §9).
    let identifiable = consent_analytics && !gpc;
    let stated_analytics = consent.and_then(|c| c.analytics);

    let user_id = optional_text(
        input.user_id.map(IdInput::into_string),
        "user_id",
        limits::MAX_ID,
    )?
    .filter(|id| !is_placeholder_id(id));
    let mut email = optional_text(input.email, "email", 320)?;
    // `lux.identify("jane@x.com")`: an email used as the user id is an email, hashed like
    // one, and never stored as a user id.
    let user_id = match user_id {
        Some(id) if EmailHash::of(&ctx.settings.hash_key, &id).is_some() => {
            email.get_or_insert(id);
            None
        }
        other => other,
    };
    let email_hash = match email {
        Some(email) => Some(
            EmailHash::of(&ctx.settings.hash_key, &email)
                .ok_or_else(|| EventError::new("invalid_field", "email: not an email address"))?,
        ),
        None => None,
    };
    let creative_id = optional_text(
        input.creative_id.map(IdInput::into_string),
        "creative_id",
        limits::MAX_ID,
    )?;

    let sent_visitor = match optional_text(input.visitor_id, "visitor_id", limits::MAX_ID)? {
        Some(v) if !is_placeholder_id(&v) => Some(Uuid::parse_str(&v).map_err(|_| {
            EventError::new("invalid_field", "visitor_id: must be a UUID (or omitted)")
        })?),
        _ => None,
    };
    let visitor_id = sent_visitor.unwrap_or(ctx.default_visitor_id);
    // Only a visitor id the client keeps can carry a choice over time; a choice is a stated
    // analytics or marketing flag, or GPC.
    let consent_choice = sent_visitor
        .filter(|_| stated_analytics.is_some() || consent_marketing.is_some() || gpc)
        .map(|visitor| ConsentChoice {
            visitor,
            analytics: stated_analytics,
            marketing: consent_marketing,
            gpc,
            notice_version: consent
                .and_then(|c| c.notice_version.as_deref())
                .map(|v| v.chars().take(100).collect()),
        });

    // Server-side calls come from the store's backend (curl, an HTTP library): their own
    // user agent says nothing about the visitor. Only the visitor's, when forwarded in the
    // `user_agent` field, is judged; without it a server-side event is not a bot.
    let (user_agent, judge_ua) = match (ctx.key_kind, input.user_agent) {
        (_, Some(ua)) => (Some(ua), true),
        (KeyKind::Write, None) => (ctx.user_agent.clone(), true),
        (KeyKind::Secret, None) => (None, false),
    };
    let user_agent =
        user_agent.map(|ua| ua.chars().take(limits::MAX_USER_AGENT).collect::<String>());
    let is_bot = judge_ua && user_agent.as_deref().is_none_or(is_bot_user_agent);

    let ip =
        match input.ip {
            Some(ip) => Some(ip.trim().parse::<IpAddr>().map_err(|_| {
                EventError::new("invalid_field", "ip: not an IPv4 or IPv6 address")
            })?),
            None => ctx.client_ip,
        };

    Ok(AcceptedEvent {
        company_id: ctx.settings.company_id,
        event_id: input.event_id.unwrap_or_else(Uuid::now_v7),
        event_name,
        occurred_at,
        received_at: ctx.received_at,
        client_occurred_at,
        visitor_id: if identifiable {
            visitor_id
        } else {
            ctx.anonymous_visitor_id
        },
        identifiable,
        user_id: user_id.filter(|_| identifiable),
        email_hash: email_hash.filter(|_| identifiable),
        page,
        referrer,
        user_agent,
        ip_hash: ip
            .filter(|_| identifiable)
            .map(|ip| ctx.salt.hash_ip(ctx.settings.company_id, &ip)),
        creative_id,
        consent_analytics,
        consent_marketing,
        gpc,
        consent_choice,
        is_bot,
        key_kind: ctx.key_kind,
        properties: Value::Object(properties),
        engaged_ms,
    })
}

/// The consent an event states for the visitor id its client keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentChoice {
    pub visitor: Uuid,
    pub analytics: Option<bool>,
    pub marketing: Option<bool>,
    pub gpc: bool,
    pub notice_version: Option<String>,
}

/// Whether `name` is an event name ingestion accepts (the rule is [`EventName`]'s).
pub fn is_valid_event_name(name: &str) -> bool {
    EventName::is_valid(name)
}

/// Event names: a letter, then letters, digits, `_`, `.`, `:` or `-`; at most 64 characters.
fn parse_event_name(name: &str) -> Result<EventName, EventError> {
    EventName::parse(name).ok_or_else(|| {
        EventError::new(
            "invalid_event_name",
            format!(
                "event_name {:?} is invalid: use a letter then letters, digits, _ . : or -, at most {} characters",
                truncate_for_message(name),
                limits::MAX_EVENT_NAME
            ),
        )
    })
}

fn truncate_for_message(s: &str) -> String {
    if s.chars().count() > 80 {
        format!("{}…", s.chars().take(80).collect::<String>())
    } else {
        s.to_string()
    }
}

/// The time an event of the request takes when it has none (or a clamped one): the time of
/// receipt, plus its position in the request in microseconds. The events of one request then
/// keep the order they were sent in wherever time orders them (sessions, funnels, exports),
/// without anything ever reading the event id as a clock: ids need not be monotonic.
fn receipt_time(received_at: DateTime<Utc>, position: usize) -> DateTime<Utc> {
    received_at + Duration::microseconds(position as i64)
}

/// Returns the time to store and, when it was clamped, the client's original time.
fn occurred_at(
    raw: Option<&str>,
    key_kind: KeyKind,
    received_at: DateTime<Utc>,
) -> Result<(DateTime<Utc>, Option<DateTime<Utc>>), EventError> {
    let Some(raw) = raw else {
        return Ok((received_at, None));
    };
    let client = DateTime::parse_from_rfc3339(raw)
        .map_err(|_| {
            EventError::new(
                "invalid_field",
                format!(
                    "occurred_at: {:?} is not an RFC 3339 time such as 2026-11-26T09:30:00Z",
                    truncate_for_message(raw)
                ),
            )
        })?
        .with_timezone(&Utc);
    let too_new = client > received_at + Duration::minutes(limits::MAX_FUTURE_MINUTES);
    match key_kind {
        KeyKind::Write => {
            let too_old = client < received_at - Duration::hours(limits::BROWSER_MAX_AGE_HOURS);
            if too_new || too_old {
                Ok((received_at, Some(client)))
            } else {
                Ok((client, None))
            }
        }
        KeyKind::Secret => {
            if too_new {
                Err(EventError::new(
                    "invalid_field",
                    "occurred_at: is in the future",
                ))
            } else if client < received_at - Duration::days(limits::BACKFILL_MAX_DAYS) {
                Err(EventError::new(
                    "invalid_field",
                    "occurred_at: server-side events may backfill at most 2 years",
                ))
            } else {
                Ok((client, None))
            }
        }
    }
}

fn optional_text(
    value: Option<String>,
    field: &str,
    max_chars: usize,
) -> Result<Option<String>, EventError> {
    let Some(value) = value else { return Ok(None) };
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    if value.chars().count() > max_chars {
        return Err(EventError::new(
            "too_long",
            format!("{field}: longer than {max_chars} characters"),
        ));
    }
    Ok(Some(value.to_string()))
}

fn parse_page(url: String, referrer: Option<&str>) -> Result<Page, EventError> {
    let parsed = Url::parse(&url).map_err(|e| {
        EventError::new(
            "invalid_field",
            format!("page_url: not an absolute URL ({e})"),
        )
    })?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(EventError::new(
            "invalid_field",
            "page_url: must be an http or https URL",
        ));
    }
    let referrer = referrer
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .and_then(|r| Url::parse(r).ok());
    let landing = LandingParams::from_url(&parsed);
    let traffic = traffic_source(&landing, parsed.host_str(), referrer.as_ref());
    Ok(Page {
        url,
        landing,
        traffic,
    })
}

fn check_properties(event_name: &str, properties: &Map<String, Value>) -> Result<(), EventError> {
    let size = serde_json::to_vec(properties).map(|v| v.len()).unwrap_or(0);
    if size > limits::MAX_PROPERTIES_BYTES {
        return Err(EventError::new(
            "too_long",
            format!(
                "properties: {size} bytes, the limit is {}",
                limits::MAX_PROPERTIES_BYTES
            ),
        ));
    }
    super::schemas::check(event_name, properties)
}

/// Crawlers, monitors and headless tools, by user agent. A missing user agent counts as a
/// bot: every browser sends one.
pub fn is_bot_user_agent(ua: &str) -> bool {
    static BOTS: std::sync::LazyLock<isbot::Bots> = std::sync::LazyLock::new(isbot::Bots::default);
    ua.trim().is_empty() || BOTS.is_bot(ua)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_names() {
        for ok in ["page_view", "purchase", "video.play", "a"] {
            assert!(parse_event_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "1st", "has space", "emoji😀", &"x".repeat(65)] {
            assert!(parse_event_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn browser_times_are_clamped_server_times_rejected() {
        let now = Utc::now();
        let old = (now - Duration::days(10)).to_rfc3339();
        let (at, original) = occurred_at(Some(&old), KeyKind::Write, now).unwrap();
        assert_eq!(at, now);
        assert!(original.is_some());
        let (at, original) = occurred_at(Some(&old), KeyKind::Secret, now).unwrap();
        assert!(at < now && original.is_none());
        let ancient = (now - Duration::days(800)).to_rfc3339();
        assert!(occurred_at(Some(&ancient), KeyKind::Secret, now).is_err());
        let future = (now + Duration::hours(2)).to_rfc3339();
        assert!(occurred_at(Some(&future), KeyKind::Secret, now).is_err());
        assert!(occurred_at(Some("yesterday"), KeyKind::Write, now).is_err());
    }

    #[test]
    fn events_without_a_time_keep_the_order_of_the_request() {
        let now = Utc::now();
        let times: Vec<_> = (0..3).map(|position| receipt_time(now, position)).collect();
        assert_eq!(times[0], now);
        assert!(times[0] < times[1] && times[1] < times[2], "{times:?}");
        assert!(times[2] - now < Duration::milliseconds(1));
    }

    #[test]
    fn bots_are_recognised() {
        assert!(is_bot_user_agent(
            "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
        ));
        assert!(is_bot_user_agent(""));
        // The tools a first test is made with (README, "Bots").
        for tool in [
            "curl/8.5.0",
            "Wget/1.21.4",
            "python-requests/2.31.0",
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/131.0.0.0 Safari/537.36",
        ] {
            assert!(is_bot_user_agent(tool), "{tool}");
        }
        assert!(!is_bot_user_agent(
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
        ));
    }
}
