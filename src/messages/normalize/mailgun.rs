//! Mailgun's webhooks: one event per request, `{"signature": {...}, "event-data": {...}}`.
//! `event-data.timestamp` is a float of epoch seconds with microseconds; our `lux_mid` is a
//! user variable (`X-Mailgun-Variables` at send time); Mailgun flags machine opens and clicks in
//! `client-info.bot` (`apple`, `gmail`, `generic`; empty when none was detected).

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::{
    EventKind, IpHint, NormalizeError, ProviderEvent, derived_id, lux_mid, reason, recipient,
    scrubbed, text, url,
};
use crate::messages::Provider;

/// Reads a verified Mailgun body (the whole webhook, signature included).
pub fn webhook(body: &[u8]) -> Result<ProviderEvent, NormalizeError> {
    let value: Value = serde_json::from_slice(body).map_err(|_| NormalizeError::NotJson)?;
    let event_data = value
        .as_object()
        .ok_or(NormalizeError::NotObject)?
        .get("event-data")
        .ok_or(NormalizeError::MissingField("event-data"))?;
    event(event_data)
}

/// Reads one `event-data` object (also what Mailgun's Events API lists).
pub fn event(item: &Value) -> Result<ProviderEvent, NormalizeError> {
    let object = item.as_object().ok_or(NormalizeError::NotObject)?;
    let word = text(object, "event").ok_or(NormalizeError::MissingField("event"))?;
    let occurred_at = timestamp(object.get("timestamp"))?;
    let severity = text(object, "severity");
    let mailgun_reason = text(object, "reason");
    let kind = match word {
        "accepted" => EventKind::Queued,
        "delivered" => EventKind::Delivered,
        "failed" if severity == Some("temporary") => EventKind::Deferred,
        // `suppress-bounce`, `suppress-unsubscribe`, `suppress-complaint`: Mailgun did not try.
        "failed" if mailgun_reason.is_some_and(|r| r.starts_with("suppress-")) => {
            EventKind::Dropped
        }
        "failed" => EventKind::Bounced,
        "rejected" => EventKind::Dropped,
        "opened" => EventKind::Opened,
        "clicked" => EventKind::Clicked,
        "unsubscribed" => EventKind::Unsubscribed,
        "complained" => EventKind::Complained,
        _ => EventKind::Other,
    };
    let client_info = object.get("client-info").and_then(Value::as_object);
    let bot = client_info.and_then(|info| text(info, "bot"));
    let user_agent = client_info
        .and_then(|info| text(info, "user-agent"))
        .or_else(|| text(object, "user-agent"));
    let headers = object
        .get("message")
        .and_then(|message| message.get("headers"))
        .and_then(Value::as_object);
    Ok(ProviderEvent {
        provider: Provider::Mailgun,
        provider_event_id: text(object, "id").map_or_else(|| derived_id(item, None), str::to_owned),
        kind,
        provider_status: word.to_owned(),
        occurred_at,
        provider_message_id: headers
            .and_then(|h| text(h, "message-id"))
            .map(|id| id.trim_start_matches('<').trim_end_matches('>').to_owned())
            .filter(|id| !id.is_empty()),
        lux_message_id: lux_mid(
            object
                .get("user-variables")
                .and_then(|variables| variables.get("lux_mid")),
        ),
        recipient: recipient(text(object, "recipient")),
        several_destinations: false,
        url: url(text(object, "url")),
        user_agent: user_agent.map(str::to_owned),
        ip_hint: IpHint::of(text(object, "ip")),
        provider_machine_flag: bot.map(|bot| format!("mailgun client-info.bot={bot}")),
        reason: why(kind, object),
        payload: scrubbed(item),
    })
}

fn timestamp(value: Option<&Value>) -> Result<DateTime<Utc>, NormalizeError> {
    let seconds = match value.ok_or(NormalizeError::MissingField("timestamp"))? {
        Value::Number(number) => number.as_f64(),
        Value::String(text) => text.trim().parse::<f64>().ok(),
        _ => None,
    }
    .filter(|s| s.is_finite() && *s > 0.0 && *s < 1e11)
    .ok_or(NormalizeError::InvalidField("timestamp"))?;
    // Microseconds, as Mailgun writes them; an f64 holds them exactly enough at this size.
    DateTime::from_timestamp_micros((seconds * 1e6).round() as i64)
        .ok_or(NormalizeError::InvalidField("timestamp"))
}

/// Failures carry Mailgun's `reason` and the receiving server's `delivery-status`;
/// rejections a `reject` object.
fn why(kind: EventKind, object: &Map<String, Value>) -> Option<String> {
    if !matches!(
        kind,
        EventKind::Bounced | EventKind::Dropped | EventKind::Deferred | EventKind::Failed
    ) {
        return None;
    }
    let status = object.get("delivery-status").and_then(Value::as_object);
    let detail = status
        .and_then(|s| text(s, "description").or_else(|| text(s, "message")))
        .or_else(|| {
            object
                .get("reject")
                .and_then(Value::as_object)
                .and_then(|r| text(r, "reason").or_else(|| text(r, "description")))
        });
    let code = status
        .and_then(|s| s.get("code"))
        .and_then(|c| c.as_i64())
        .map(|c| format!(" ({c})"))
        .unwrap_or_default();
    match (text(object, "reason"), detail) {
        (Some(what), Some(detail)) => reason(&format!("{what}: {detail}{code}")),
        (Some(only), None) | (None, Some(only)) => reason(&format!("{only}{code}")),
        (None, None) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const FAILED_PERMANENT: &str =
        include_str!("../../../tests/fixtures/messaging/mailgun_event_failed_permanent.json");

    #[test]
    fn mailguns_permanent_failure_on_a_suppressed_address_is_a_drop() {
        let item: Value = serde_json::from_str(FAILED_PERMANENT).unwrap();
        let event = event(&item).unwrap();
        assert_eq!(event.provider, Provider::Mailgun);
        assert_eq!(event.kind, EventKind::Dropped);
        assert_eq!(event.provider_status, "failed");
        assert_eq!(event.provider_event_id, "pl271FzxTTmGRW8Uj3dUWw");
        assert_eq!(
            event.occurred_at,
            DateTime::from_timestamp_micros(1_529_701_969_818_328).unwrap()
        );
        assert_eq!(
            event.provider_message_id.as_deref(),
            Some("20180622211249.1.2A6098970A380E12@example.org")
        );
        assert_eq!(
            event.recipient.as_ref().unwrap().expose(),
            "slava@mailgun.com"
        );
        assert_eq!(
            event.reason.as_deref(),
            Some("suppress-bounce: Not delivering to previously bounced address (605)")
        );
        assert_eq!(event.lux_message_id, None);
        assert_eq!(event.provider_machine_flag, None);
        let stored = event.payload.to_string();
        assert!(!stored.contains("slava@mailgun.com"), "{stored}");
        assert!(!stored.contains("joan@example.com"), "{stored}");
    }

    #[test]
    fn the_webhook_envelope_is_unwrapped() {
        let item: Value = serde_json::from_str(FAILED_PERMANENT).unwrap();
        let body = json!({
            "signature": {"timestamp": "1529701969", "token": "t", "signature": "s"},
            "event-data": item
        });
        let event = webhook(body.to_string().as_bytes()).unwrap();
        assert_eq!(event.provider_event_id, "pl271FzxTTmGRW8Uj3dUWw");
        assert_eq!(
            webhook(br#"{"signature": {}}"#),
            Err(NormalizeError::MissingField("event-data"))
        );
        assert_eq!(webhook(b"[]"), Err(NormalizeError::NotObject));
        assert_eq!(webhook(b"nope"), Err(NormalizeError::NotJson));
    }

    #[test]
    fn failures_split_into_deferrals_bounces_and_drops() {
        let failed = |severity: &str, reason: &str| {
            event(&json!({
                "event": "failed", "timestamp": 1_700_000_000.5, "severity": severity,
                "reason": reason, "delivery-status": {"message": "mailbox full", "code": 452}
            }))
            .unwrap()
        };
        let temporary = failed("temporary", "generic");
        assert_eq!(temporary.kind, EventKind::Deferred);
        assert_eq!(
            temporary.reason.as_deref(),
            Some("generic: mailbox full (452)")
        );
        assert_eq!(
            temporary.occurred_at,
            DateTime::from_timestamp_millis(1_700_000_000_500).unwrap()
        );
        assert_eq!(failed("permanent", "bounce").kind, EventKind::Bounced);
        assert_eq!(failed("permanent", "old").kind, EventKind::Bounced);
        assert_eq!(
            failed("permanent", "suppress-unsubscribe").kind,
            EventKind::Dropped
        );
        let rejected = event(&json!({
            "event": "rejected", "timestamp": 1_700_000_000,
            "reject": {"reason": "Sandbox subdomains are for test purposes only"}
        }))
        .unwrap();
        assert_eq!(rejected.kind, EventKind::Dropped);
        assert_eq!(
            rejected.reason.as_deref(),
            Some("Sandbox subdomains are for test purposes only")
        );
    }

    #[test]
    fn an_apple_bot_open_with_our_message_id_is_read_with_mailguns_verdict() {
        // The shape of Mailgun's documented bot-detection example, with our user variable.
        let open = event(&json!({
            "id": "Ase7i2zsRYeDXztHGENqRA",
            "event": "opened",
            "timestamp": 1_652_883_435.279_025,
            "recipient": "bot@apple.com",
            "client-info": {
                "client-name": "unknown", "client-type": "unknown", "user-agent": "Mozilla/5.0",
                "device-type": "unknown", "client-os": "unknown", "bot": "apple"
            },
            "ip": "17.1.2.3",
            "message": {"headers": {"message-id": "<20220518.1.ABC@mg.example.com>"}},
            "user-variables": {"lux_mid": "msg_7"}
        }))
        .unwrap();
        assert_eq!(open.kind, EventKind::Opened);
        assert_eq!(
            open.provider_machine_flag.as_deref(),
            Some("mailgun client-info.bot=apple")
        );
        assert_eq!(open.user_agent.as_deref(), Some("Mozilla/5.0"));
        assert_eq!(open.ip_hint, IpHint::AppleNetwork);
        assert_eq!(open.lux_message_id.as_deref(), Some("msg_7"));
        assert_eq!(
            open.provider_message_id.as_deref(),
            Some("20220518.1.ABC@mg.example.com")
        );
        assert_eq!(open.reason, None);
        let human = event(&json!({
            "event": "clicked", "timestamp": 1_652_883_500, "url": "https://shop.example/a",
            "client-info": {"user-agent": "Mozilla/5.0 (iPhone) Safari", "bot": ""}
        }))
        .unwrap();
        assert_eq!(human.kind, EventKind::Clicked);
        assert_eq!(human.provider_machine_flag, None, "an empty bot is no bot");
        assert_eq!(human.url.as_deref(), Some("https://shop.example/a"));
        assert_eq!(
            human.provider_event_id.len(),
            64,
            "derived when Mailgun gives no id"
        );
    }

    #[test]
    fn bad_timestamps_and_missing_words_are_named() {
        for (item, expected) in [
            (
                json!({"timestamp": 1}),
                NormalizeError::MissingField("event"),
            ),
            (
                json!({"event": "opened"}),
                NormalizeError::MissingField("timestamp"),
            ),
            (
                json!({"event": "opened", "timestamp": "soon"}),
                NormalizeError::InvalidField("timestamp"),
            ),
            (
                json!({"event": "opened", "timestamp": -1.0}),
                NormalizeError::InvalidField("timestamp"),
            ),
            (
                json!({"event": "opened", "timestamp": 1e300}),
                NormalizeError::InvalidField("timestamp"),
            ),
            (json!("opened"), NormalizeError::NotObject),
        ] {
            assert_eq!(event(&item), Err(expected.clone()), "{item}");
        }
    }
}
