//! Verified provider payloads → [`ProviderEvent`]s in one vocabulary ([`EventKind`]).
//!
//! One module per provider: [`sendgrid`] (a JSON array, one bad item never sinks the rest),
//! [`mailgun`] (one `event-data` per request), [`ses`] (an SES record from an SNS notification;
//! one record may name several recipients and so give several events) and [`twilio`] (status
//! callback form parameters). Which provider word becomes which kind is tabled in
//! `docs/messages.md`.
//!
//! Personal data: [`ProviderEvent::recipient`] is the raw address or number, normalised, held
//! in a [`Recipient`] that never prints itself; the caller hashes it at once. Reasons and URLs
//! have email addresses redacted, IP addresses are reduced to an [`IpHint`], and
//! [`ProviderEvent::payload`] is the item as received with emails redacted and IP fields removed,
//! ready to be stored.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::messages::Provider;
use crate::messages::recipient::Recipient;
use crate::privacy::{redact_emails, redact_json_emails, redact_url_emails};

pub mod mailgun;
pub mod sendgrid;
pub mod ses;
pub mod twilio;

/// One vocabulary for every provider's event words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// The provider accepted the message (SendGrid `processed`, Mailgun `accepted`, SES `Send`,
    /// Twilio `queued`/`accepted`/`scheduled`).
    Queued,
    /// Handed on towards the recipient (Twilio `sending`/`sent`).
    Sent,
    Delivered,
    /// A temporary failure; the provider retries.
    Deferred,
    /// The receiving side refused it for good (SMS: `undelivered`).
    Bounced,
    /// The provider did not try (suppressed address, rejected content).
    Dropped,
    /// The provider could not send it (SES rendering failure, Twilio `failed`).
    Failed,
    Opened,
    Clicked,
    Unsubscribed,
    Resubscribed,
    /// Marked as spam.
    Complained,
    /// A word we do not map (kept with [`ProviderEvent::provider_status`]).
    Other,
}

impl EventKind {
    pub const ALL: [EventKind; 13] = [
        EventKind::Queued,
        EventKind::Sent,
        EventKind::Delivered,
        EventKind::Deferred,
        EventKind::Bounced,
        EventKind::Dropped,
        EventKind::Failed,
        EventKind::Opened,
        EventKind::Clicked,
        EventKind::Unsubscribed,
        EventKind::Resubscribed,
        EventKind::Complained,
        EventKind::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Queued => "queued",
            EventKind::Sent => "sent",
            EventKind::Delivered => "delivered",
            EventKind::Deferred => "deferred",
            EventKind::Bounced => "bounced",
            EventKind::Dropped => "dropped",
            EventKind::Failed => "failed",
            EventKind::Opened => "opened",
            EventKind::Clicked => "clicked",
            EventKind::Unsubscribed => "unsubscribed",
            EventKind::Resubscribed => "resubscribed",
            EventKind::Complained => "complained",
            EventKind::Other => "other",
        }
    }

    /// Opens and clicks: the only kinds that can be a person's or a machine's doing.
    pub fn is_engagement(self) -> bool {
        matches!(self, EventKind::Opened | EventKind::Clicked)
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown event kind")]
pub struct UnknownEventKind;

impl FromStr for EventKind {
    type Err = UnknownEventKind;

    fn from_str(text: &str) -> Result<EventKind, UnknownEventKind> {
        EventKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == text)
            .ok_or(UnknownEventKind)
    }
}

/// What the IP address of an open or click says, without keeping the address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpHint {
    /// No address, or not one a strict parser reads (SendGrid's docs show `000.000.000.000`).
    Absent,
    /// Apple's own network, 17.0.0.0/8: where Apple's mail proxies can fetch from.
    AppleNetwork,
    OtherNetwork,
}

impl IpHint {
    pub fn of(ip: Option<&str>) -> IpHint {
        match ip.and_then(|ip| ip.trim().parse::<IpAddr>().ok()) {
            None => IpHint::Absent,
            Some(IpAddr::V4(v4)) if is_apple_v4(v4) => IpHint::AppleNetwork,
            Some(IpAddr::V6(v6)) if v6.to_ipv4_mapped().is_some_and(is_apple_v4) => {
                IpHint::AppleNetwork
            }
            Some(_) => IpHint::OtherNetwork,
        }
    }
}

fn is_apple_v4(ip: Ipv4Addr) -> bool {
    ip.octets()[0] == 17
}

/// One provider event, normalised.
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderEvent {
    pub provider: Provider,
    /// The provider's id of the event (SendGrid `sg_event_id`, Mailgun `id`), or one derived
    /// from its content where the provider has none: redelivering the same payload gives the
    /// same id, which is what idempotency needs.
    pub provider_event_id: String,
    pub kind: EventKind,
    /// The provider's own word (`group_unsubscribe`, `undelivered`, `DeliveryDelay`, …).
    pub provider_status: String,
    pub occurred_at: DateTime<Utc>,
    /// SPEC §11: SendGrid `sg_message_id` up to its first `.`, Mailgun `message-id`, SES
    /// `mail.messageId`, Twilio `MessageSid`.
    pub provider_message_id: Option<String>,
    /// Our message id, `lux_mid` (SendGrid custom argument, Mailgun user variable, SES
    /// message tag, the query of a Twilio status callback URL).
    pub lux_message_id: Option<String>,
    /// Who the event is about; `None` when the payload names nobody we can read. Hash at once.
    pub recipient: Option<Recipient>,
    /// SES: the message went to more than one destination (`mail.destination`). Its send then
    /// stands for nobody in particular: an event naming nobody is credited to nobody, and a
    /// send such an event creates has no recipient.
    pub several_destinations: bool,
    /// The clicked link (emails redacted).
    pub url: Option<String>,
    pub user_agent: Option<String>,
    pub ip_hint: IpHint,
    /// The provider's own machine verdict, when it gives one (`sg_machine_open`, Mailgun's
    /// `client-info.bot`): the first rule of [`crate::messages::machine`].
    pub provider_machine_flag: Option<String>,
    /// Why it bounced, was dropped, deferred or failed (emails redacted).
    pub reason: Option<String>,
    /// The item as received, with emails redacted and IP addresses removed: what may be stored.
    pub payload: Value,
}

/// Items of a batch: those read, and those refused with their position.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Batch {
    pub events: Vec<ProviderEvent>,
    pub rejected: Vec<RejectedItem>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedItem {
    /// The item's position in the payload (0-based).
    pub index: usize,
    pub error: NormalizeError,
}

/// Why a payload, or one item of it, could not be read. The messages name fields, never
/// values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NormalizeError {
    #[error("payload is not JSON")]
    NotJson,
    #[error("payload is not a JSON array of events")]
    NotArray,
    #[error("event is not a JSON object")]
    NotObject,
    #[error("event has no {0}")]
    MissingField(&'static str),
    #[error("event field {0} is not valid")]
    InvalidField(&'static str),
}

/// The longest reason kept; provider diagnostics can be whole SMTP transcripts.
const MAX_REASON_CHARS: usize = 500;
/// The longest `lux_mid` accepted: ours are short, anything longer is not one of ours.
const MAX_LUX_MID_CHARS: usize = 200;

/// A non-empty, trimmed string field.
fn text<'a>(object: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    object
        .get(name)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// A string or number field as text (ids and custom arguments arrive as either).
fn text_or_number(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) => Some(s.trim().to_owned()).filter(|s| !s.is_empty()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn lux_mid(value: Option<&Value>) -> Option<String> {
    text_or_number(value).filter(|mid| mid.chars().count() <= MAX_LUX_MID_CHARS)
}

fn reason(text: &str) -> Option<String> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    let redacted = redact_emails(text);
    Some(redacted.chars().take(MAX_REASON_CHARS).collect())
}

fn url(text: Option<&str>) -> Option<String> {
    text.map(|url| redact_url_emails(url).into_owned())
}

fn recipient(text: Option<&str>) -> Option<Recipient> {
    Recipient::parse(text?).ok()
}

/// The item as it may be stored: emails redacted, IP address fields removed.
fn scrubbed(item: &Value) -> Value {
    fn drop_ips(value: &mut Value) {
        match value {
            Value::Object(map) => {
                map.retain(|key, _| {
                    !key.eq_ignore_ascii_case("ip") && !key.eq_ignore_ascii_case("ipaddress")
                });
                map.values_mut().for_each(drop_ips);
            }
            Value::Array(items) => items.iter_mut().for_each(drop_ips),
            _ => {}
        }
    }
    let mut copy = item.clone();
    drop_ips(&mut copy);
    redact_json_emails(&mut copy);
    copy
}

/// An id for an item the provider gave none: the SHA-256 of its canonical JSON (keys sorted,
/// no spaces), so the same item redelivered, however it was formatted, gets the same id.
/// `part` tells apart the events one item yields (SES: one per recipient).
fn derived_id(item: &Value, part: Option<usize>) -> String {
    let mut canonical = String::new();
    write_canonical(item, &mut canonical);
    if let Some(part) = part {
        canonical.push('#');
        canonical.push_str(&part.to_string());
    }
    hex::encode(Sha256::digest(canonical.as_bytes()))
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical(&map[key], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// An RFC 3339 timestamp (SES: `2017-08-09T22:00:19.652Z`).
fn rfc3339(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text.trim())
        .ok()
        .map(|at| at.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn kinds_round_trip_through_their_names() {
        for kind in EventKind::ALL {
            assert_eq!(kind.as_str().parse::<EventKind>(), Ok(kind));
        }
        assert_eq!("open".parse::<EventKind>(), Err(UnknownEventKind));
        assert!(EventKind::Opened.is_engagement() && EventKind::Clicked.is_engagement());
        assert!(!EventKind::Delivered.is_engagement());
    }

    #[test]
    fn the_derived_id_ignores_formatting_and_key_order_but_not_content() {
        let a: Value =
            serde_json::from_str(r#"{"b": [1, {"y": 2, "x": "é"}], "a": null}"#).unwrap();
        let b: Value = serde_json::from_str(r#"{"a":null,"b":[1,{"x":"é","y":2}]}"#).unwrap();
        let c: Value = serde_json::from_str(r#"{"a":null,"b":[1,{"x":"é","y":3}]}"#).unwrap();
        assert_eq!(derived_id(&a, None), derived_id(&b, None));
        assert_ne!(derived_id(&a, None), derived_id(&c, None));
        assert_ne!(derived_id(&a, Some(0)), derived_id(&a, Some(1)));
        let mut canonical = String::new();
        write_canonical(&a, &mut canonical);
        assert_eq!(canonical, r#"{"a":null,"b":[1,{"x":"é","y":2}]}"#);
        assert_eq!(derived_id(&a, None).len(), 64);
    }

    #[test]
    fn ip_hints_keep_no_address() {
        assert_eq!(IpHint::of(Some("17.58.101.1")), IpHint::AppleNetwork);
        assert_eq!(IpHint::of(Some("::ffff:17.1.2.3")), IpHint::AppleNetwork);
        assert_eq!(IpHint::of(Some("192.0.2.1")), IpHint::OtherNetwork);
        assert_eq!(IpHint::of(Some("2001:db8::1")), IpHint::OtherNetwork);
        assert_eq!(IpHint::of(Some("000.000.000.000")), IpHint::Absent);
        assert_eq!(IpHint::of(Some("")), IpHint::Absent);
        assert_eq!(IpHint::of(None), IpHint::Absent);
    }

    #[test]
    fn stored_payloads_lose_emails_and_ips() {
        let item = json!({
            "email": "jane@example.com",
            "ip": "192.0.2.1",
            "open": {"ipAddress": "192.0.2.1", "userAgent": "Mozilla/5.0"},
            "url": "https://shop.example/?e=jane%40example.com",
            "reason": "550 <jane@example.com> unknown"
        });
        let stored = scrubbed(&item).to_string();
        assert!(!stored.contains("jane"), "{stored}");
        assert!(!stored.contains("192.0.2.1"), "{stored}");
        assert!(stored.contains("Mozilla/5.0"), "{stored}");
    }

    #[test]
    fn reasons_are_redacted_and_bounded() {
        assert_eq!(
            reason(" smtp; 550 5.1.1 <jane@example.com>... User "),
            Some("smtp; 550 5.1.1 <[email]>... User".to_owned())
        );
        assert_eq!(reason("  "), None);
        assert_eq!(
            reason(&"x".repeat(2000)).unwrap().chars().count(),
            MAX_REASON_CHARS
        );
    }
}
