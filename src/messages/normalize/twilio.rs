//! Twilio status callbacks: form parameters, one status per request. Twilio sends no event id
//! and no usable time (`RawDlrDoneDate` is minute-precision with the carrier's unnamed time
//! zone), so the event id is (MessageSid, MessageStatus) — a message passes through each status
//! once — and the time is when the callback arrived. Our message id can ride on the
//! `StatusCallback` URL as `?lux_mid=`, which Twilio's signature covers.
//!
//! Callbacks may arrive out of order (`delivered` before `sent`); ordering statuses is the
//! caller's business, not the normaliser's.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::{EventKind, IpHint, NormalizeError, ProviderEvent, lux_mid, reason, recipient};
use crate::messages::Provider;
use crate::messages::recipient::Recipient;

/// Reads one verified status callback: its form parameters, the URL Twilio called (as
/// verified), and when it arrived.
pub fn status_callback(
    params: &[(String, String)],
    callback_url: &str,
    received_at: DateTime<Utc>,
) -> Result<ProviderEvent, NormalizeError> {
    let param = |name: &str| {
        params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
    };
    let sid = param("MessageSid")
        .or_else(|| param("SmsSid"))
        .ok_or(NormalizeError::MissingField("MessageSid"))?;
    let status = param("MessageStatus")
        .or_else(|| param("SmsStatus"))
        .ok_or(NormalizeError::MissingField("MessageStatus"))?;
    let kind = match status {
        "accepted" | "scheduled" | "queued" => EventKind::Queued,
        "sending" | "sent" => EventKind::Sent,
        "delivered" => EventKind::Delivered,
        // The carrier could not deliver it: the SMS bounce.
        "undelivered" => EventKind::Bounced,
        "failed" => EventKind::Failed,
        "canceled" => EventKind::Dropped,
        // `read` (WhatsApp receipts), `receiving`/`received` (inbound), and anything new.
        _ => EventKind::Other,
    };
    let to = param("To").map(|to| to.strip_prefix("whatsapp:").unwrap_or(to));
    let lux_message_id = url::Url::parse(callback_url).ok().and_then(|url| {
        url.query_pairs()
            .find(|(name, _)| name == "lux_mid")
            .and_then(|(_, value)| lux_mid(Some(&Value::String(value.into_owned()))))
    });
    Ok(ProviderEvent {
        provider: Provider::Twilio,
        provider_event_id: format!("{sid}:{status}"),
        kind,
        provider_status: status.to_owned(),
        occurred_at: received_at,
        provider_message_id: Some(sid.to_owned()),
        lux_message_id,
        recipient: recipient(to),
        several_destinations: false,
        url: None,
        user_agent: None,
        ip_hint: IpHint::Absent,
        provider_machine_flag: None,
        reason: param("ErrorCode").and_then(|code| {
            let message = param("ErrorMessage")
                .map(|m| format!(": {m}"))
                .unwrap_or_default();
            reason(&format!("Twilio error {code}{message}"))
        }),
        payload: stored(params),
    })
}

/// The parameters as a JSON object, with every value that reads as a phone number or an
/// email address replaced: the recipient's number must not be stored.
fn stored(params: &[(String, String)]) -> Value {
    let mut object = Map::new();
    for (name, value) in params {
        let bare = value.strip_prefix("whatsapp:").unwrap_or(value);
        let kept = match Recipient::parse(bare) {
            Ok(recipient) if recipient.channel() == crate::messages::Channel::Sms => {
                "[phone]".to_owned()
            }
            Ok(_) => "[email]".to_owned(),
            Err(_) => value.clone(),
        };
        object.insert(name.clone(), Value::String(kept));
    }
    Value::Object(object)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::Channel;
    use crate::messages::signature::twilio::parse_form;

    const URL: &str = "https://lux.example.com/webhooks/twilio/0195f1f0-0000-7000-8000-000000000001?lux_mid=msg_9";

    fn received() -> DateTime<Utc> {
        "2026-12-01T10:00:00Z".parse().unwrap()
    }

    fn callback(status: &str, extra: &str) -> Vec<(String, String)> {
        parse_form(
            format!(
                "SmsSid=SM1234567890abcdef1234567890abcdef&SmsStatus={status}&MessageStatus={status}\
                 &To=%2B1+415+555+0100&MessagingServiceSid=MG00000000000000000000000000000000\
                 &MessageSid=SM1234567890abcdef1234567890abcdef&AccountSid=AC00000000000000000000000000000000\
                 &From=%2B15005550006&ApiVersion=2010-04-01{extra}"
            )
            .as_bytes(),
        )
    }

    #[test]
    fn each_message_status_maps_to_one_kind() {
        for (status, kind) in [
            ("accepted", EventKind::Queued),
            ("scheduled", EventKind::Queued),
            ("queued", EventKind::Queued),
            ("sending", EventKind::Sent),
            ("sent", EventKind::Sent),
            ("delivered", EventKind::Delivered),
            ("undelivered", EventKind::Bounced),
            ("failed", EventKind::Failed),
            ("canceled", EventKind::Dropped),
            ("read", EventKind::Other),
            ("partially_delivered", EventKind::Other),
        ] {
            let event = status_callback(&callback(status, ""), URL, received()).unwrap();
            assert_eq!(event.kind, kind, "{status}");
            assert_eq!(event.provider_status, status);
        }
    }

    #[test]
    fn a_delivered_callback_is_read_with_our_message_id_from_its_url() {
        let event = status_callback(
            &callback("delivered", "&RawDlrDoneDate=2612011000"),
            URL,
            received(),
        )
        .unwrap();
        assert_eq!(event.provider, Provider::Twilio);
        assert_eq!(
            event.provider_event_id,
            "SM1234567890abcdef1234567890abcdef:delivered"
        );
        assert_eq!(
            event.provider_message_id.as_deref(),
            Some("SM1234567890abcdef1234567890abcdef")
        );
        assert_eq!(event.lux_message_id.as_deref(), Some("msg_9"));
        assert_eq!(event.occurred_at, received());
        let recipient = event.recipient.unwrap();
        assert_eq!(recipient.channel(), Channel::Sms);
        assert_eq!(recipient.expose(), "+14155550100");
        assert_eq!(event.reason, None);
        let stored = event.payload.to_string();
        assert!(!stored.contains("415"), "{stored}");
        assert!(!stored.contains("5005550006"), "{stored}");
        assert!(
            stored.contains("\"RawDlrDoneDate\":\"2612011000\""),
            "{stored}"
        );
        assert!(stored.contains("\"ApiVersion\":\"2010-04-01\""), "{stored}");
    }

    #[test]
    fn an_undelivered_callback_carries_its_error_code() {
        let event = status_callback(
            &callback("undelivered", "&ErrorCode=30003"),
            "https://lux.example.com/webhooks/twilio/x",
            received(),
        )
        .unwrap();
        assert_eq!(event.kind, EventKind::Bounced);
        assert_eq!(event.reason.as_deref(), Some("Twilio error 30003"));
        assert_eq!(event.lux_message_id, None);
    }

    #[test]
    fn whatsapp_recipients_are_phone_numbers_and_legacy_names_suffice() {
        let params = parse_form(
            b"SmsSid=SM1&SmsStatus=read&To=whatsapp%3A%2B14155550100&From=whatsapp%3A%2B15005550006",
        );
        let event = status_callback(&params, URL, received()).unwrap();
        assert_eq!(event.provider_message_id.as_deref(), Some("SM1"));
        assert_eq!(event.recipient.unwrap().expose(), "+14155550100");
        assert!(!event.payload.to_string().contains("4155550100"));
    }

    #[test]
    fn a_callback_without_sid_or_status_is_refused() {
        assert_eq!(
            status_callback(&parse_form(b"MessageStatus=sent"), URL, received()),
            Err(NormalizeError::MissingField("MessageSid"))
        );
        assert_eq!(
            status_callback(
                &parse_form(b"MessageSid=SM1&MessageStatus="),
                URL,
                received()
            ),
            Err(NormalizeError::MissingField("MessageStatus"))
        );
    }
}
