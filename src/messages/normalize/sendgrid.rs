//! SendGrid's Event Webhook: a JSON array of events of mixed types. Custom arguments (our
//! `lux_mid`) arrive as top-level fields of each event. Each item stands alone: a bad one is
//! rejected with its index, the rest are kept.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::{
    Batch, EventKind, IpHint, NormalizeError, ProviderEvent, RejectedItem, derived_id, lux_mid,
    reason, recipient, scrubbed, text, text_or_number, url,
};
use crate::messages::Provider;

/// A timestamp above this many seconds (year 5138) is in milliseconds: SendGrid's Single Send
/// example has `"timestamp": 1591726752372`.
const MILLISECONDS_ABOVE: i64 = 100_000_000_000;

/// Reads a verified SendGrid body.
pub fn events(body: &[u8]) -> Result<Batch, NormalizeError> {
    let value: Value = serde_json::from_slice(body).map_err(|_| NormalizeError::NotJson)?;
    let Value::Array(items) = value else {
        return Err(NormalizeError::NotArray);
    };
    let mut batch = Batch::default();
    for (index, item) in items.iter().enumerate() {
        match event(item) {
            Ok(event) => batch.events.push(event),
            Err(error) => batch.rejected.push(RejectedItem { index, error }),
        }
    }
    Ok(batch)
}

/// One item of the array.
pub fn event(item: &Value) -> Result<ProviderEvent, NormalizeError> {
    let object = item.as_object().ok_or(NormalizeError::NotObject)?;
    let word = text(object, "event").ok_or(NormalizeError::MissingField("event"))?;
    let occurred_at = timestamp(object)?;
    let kind = match word {
        "processed" => EventKind::Queued,
        "deferred" => EventKind::Deferred,
        "delivered" => EventKind::Delivered,
        "bounce" | "blocked" => EventKind::Bounced,
        "dropped" => EventKind::Dropped,
        "open" => EventKind::Opened,
        "click" => EventKind::Clicked,
        "spamreport" => EventKind::Complained,
        "unsubscribe" | "group_unsubscribe" => EventKind::Unsubscribed,
        "group_resubscribe" => EventKind::Resubscribed,
        _ => EventKind::Other,
    };
    let provider_event_id =
        text(object, "sg_event_id").map_or_else(|| derived_id(item, None), str::to_owned);
    let machine_open = match object.get("sg_machine_open") {
        Some(Value::Bool(flag)) => *flag,
        Some(Value::String(flag)) => flag.eq_ignore_ascii_case("true"),
        _ => false,
    };
    Ok(ProviderEvent {
        provider: Provider::SendGrid,
        provider_event_id,
        kind,
        provider_status: word.to_owned(),
        occurred_at,
        provider_message_id: text(object, "sg_message_id")
            .and_then(|id| id.split('.').next())
            .filter(|id| !id.is_empty())
            .map(str::to_owned),
        lux_message_id: lux_mid(object.get("lux_mid")),
        recipient: recipient(text(object, "email")),
        several_destinations: false,
        url: url(text(object, "url")),
        user_agent: text(object, "useragent").map(str::to_owned),
        ip_hint: IpHint::of(text(object, "ip")),
        provider_machine_flag: machine_open.then(|| "sendgrid sg_machine_open".to_owned()),
        reason: why(kind, object),
        payload: scrubbed(item),
    })
}

fn timestamp(object: &Map<String, Value>) -> Result<DateTime<Utc>, NormalizeError> {
    let raw =
        text_or_number(object.get("timestamp")).ok_or(NormalizeError::MissingField("timestamp"))?;
    let number: i64 = raw
        .parse()
        .map_err(|_| NormalizeError::InvalidField("timestamp"))?;
    let at = if number > MILLISECONDS_ABOVE {
        DateTime::from_timestamp_millis(number)
    } else {
        DateTime::from_timestamp(number, 0)
    };
    at.filter(|_| number > 0)
        .ok_or(NormalizeError::InvalidField("timestamp"))
}

/// Bounces and drops carry `reason` (and bounces a `type` and an SMTP `status`); deferrals
/// carry the receiving server's `response` and an `attempt` count.
fn why(kind: EventKind, object: &Map<String, Value>) -> Option<String> {
    let status = text(object, "status").map(|s| format!(" ({s})"));
    match kind {
        EventKind::Bounced => {
            let what = text(object, "reason")?;
            let prefix = text(object, "type")
                .map(|t| format!("{t}: "))
                .unwrap_or_default();
            reason(&format!("{prefix}{what}{}", status.unwrap_or_default()))
        }
        EventKind::Dropped => reason(&format!(
            "{}{}",
            text(object, "reason")?,
            status.unwrap_or_default()
        )),
        EventKind::Deferred => {
            let response = text(object, "response")?;
            let attempt = text_or_number(object.get("attempt"))
                .map(|n| format!(" (attempt {n})"))
                .unwrap_or_default();
            reason(&format!("{response}{attempt}"))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::Channel;

    const ALL_EVENTS: &str =
        include_str!("../../../tests/fixtures/messaging/sendgrid_event_webhook_all_events.json");
    const CATEGORIES: &str = include_str!(
        "../../../tests/fixtures/messaging/sendgrid_event_webhook_category_array_vs_string.json"
    );
    const SINGLE_SEND: &str = include_str!(
        "../../../tests/fixtures/messaging/sendgrid_event_webhook_single_send_example.json"
    );

    #[test]
    fn every_event_type_of_sendgrids_example_maps_to_one_kind() {
        let batch = events(ALL_EVENTS.as_bytes()).unwrap();
        assert!(batch.rejected.is_empty(), "{:?}", batch.rejected);
        let kinds: Vec<(&str, EventKind)> = batch
            .events
            .iter()
            .map(|e| (e.provider_status.as_str(), e.kind))
            .collect();
        assert_eq!(
            kinds,
            [
                ("processed", EventKind::Queued),
                ("deferred", EventKind::Deferred),
                ("delivered", EventKind::Delivered),
                ("open", EventKind::Opened),
                ("click", EventKind::Clicked),
                ("bounce", EventKind::Bounced),
                ("dropped", EventKind::Dropped),
                ("spamreport", EventKind::Complained),
                ("unsubscribe", EventKind::Unsubscribed),
                ("group_unsubscribe", EventKind::Unsubscribed),
                ("group_resubscribe", EventKind::Resubscribed),
            ]
        );
        let at = DateTime::from_timestamp(1_513_299_569, 0).unwrap();
        for event in &batch.events {
            assert_eq!(event.provider, Provider::SendGrid);
            assert_eq!(event.occurred_at, at);
            // The docs anonymised every id to its field name.
            assert_eq!(event.provider_event_id, "sg_event_id");
            assert_eq!(event.provider_message_id.as_deref(), Some("sg_message_id"));
            assert_eq!(event.lux_message_id, None);
            let recipient = event.recipient.as_ref().unwrap();
            assert_eq!(recipient.expose(), "example@test.com");
            assert_eq!(recipient.channel(), Channel::Email);
            assert_eq!(event.provider_machine_flag, None);
            let stored = event.payload.to_string();
            assert!(!stored.contains("example@test.com"), "{stored}");
            assert!(!stored.contains("255.255.255.255"), "{stored}");
        }
        let by_status = |status: &str| {
            batch
                .events
                .iter()
                .find(|e| e.provider_status == status)
                .unwrap()
        };
        let click = by_status("click");
        assert_eq!(click.url.as_deref(), Some("http://www.sendgrid.com/"));
        assert_eq!(
            click.user_agent.as_deref(),
            Some(
                "Mozilla/4.0 (compatible; MSIE 6.1; Windows XP; .NET CLR 1.1.4322; .NET CLR 2.0.50727)"
            )
        );
        assert_eq!(click.ip_hint, IpHint::OtherNetwork);
        assert_eq!(
            by_status("group_resubscribe").ip_hint,
            IpHint::Absent,
            "000.000.000.000 is no address"
        );
        assert_eq!(
            by_status("bounce").reason.as_deref(),
            Some("500 unknown recipient (5.0.0)")
        );
        assert_eq!(
            by_status("dropped").reason.as_deref(),
            Some("Bounced Address (5.0.0)")
        );
        assert_eq!(
            by_status("deferred").reason.as_deref(),
            Some("400 try again later (attempt 5)")
        );
        assert_eq!(by_status("delivered").reason, None);
    }

    #[test]
    fn events_without_ids_get_a_stable_derived_id_and_categories_of_either_shape_pass() {
        let batch = events(CATEGORIES.as_bytes()).unwrap();
        assert!(batch.rejected.is_empty());
        assert_eq!(batch.events.len(), 2);
        let [first, second] = [&batch.events[0], &batch.events[1]];
        assert_eq!(first.kind, EventKind::Opened);
        assert_eq!(first.provider_message_id, None);
        assert_eq!(first.provider_event_id.len(), 64);
        assert_ne!(first.provider_event_id, second.provider_event_id);
        // Redelivered with other whitespace: the same id.
        let compact =
            serde_json::to_vec(&serde_json::from_str::<Value>(CATEGORIES).unwrap()).unwrap();
        let again = events(&compact).unwrap();
        assert_eq!(again.events[0].provider_event_id, first.provider_event_id);
        assert_eq!(
            first.recipient.as_ref().unwrap().expose(),
            "john.doe@sendgrid.com"
        );
        assert_eq!(
            first.occurred_at,
            DateTime::from_timestamp(1_337_966_815, 0).unwrap()
        );
    }

    #[test]
    fn a_single_send_timestamp_in_milliseconds_is_read_as_milliseconds() {
        let batch = events(SINGLE_SEND.as_bytes()).unwrap();
        let open = &batch.events[0];
        assert_eq!(open.kind, EventKind::Opened);
        assert_eq!(
            open.occurred_at,
            DateTime::from_timestamp_millis(1_591_726_752_372).unwrap()
        );
        assert_eq!(
            open.provider_message_id.as_deref(),
            Some("sendgrid_internal_message_id")
        );
        assert_eq!(open.provider_event_id, "sendgrid_internal_event_id");
        assert_eq!(open.ip_hint, IpHint::OtherNetwork);
    }

    #[test]
    fn our_message_id_the_machine_flag_and_the_message_id_prefix_are_read() {
        let body = serde_json::json!([{
            "email": "Jane@Example.com",
            "event": "open",
            "timestamp": 1_700_000_000,
            "sg_event_id": "ZW9wZW4tMQ",
            "sg_message_id": "LRzXl_NHStOGhQ4kofSm_A.filterdrecv-p3mdw1-756b745b58-kmzbl-18-5F5FC76C-9.0",
            "sg_machine_open": true,
            "useragent": "Mozilla/5.0",
            "ip": "17.58.63.1",
            "lux_mid": "msg_01HV3"
        }, {
            "event": "click",
            "timestamp": 1_700_000_060,
            "url": "https://shop.example/p?email=jane%40example.com",
            "lux_mid": 42,
            "sg_machine_open": "false"
        }]);
        let batch = events(body.to_string().as_bytes()).unwrap();
        let open = &batch.events[0];
        assert_eq!(
            open.provider_message_id.as_deref(),
            Some("LRzXl_NHStOGhQ4kofSm_A")
        );
        assert_eq!(open.lux_message_id.as_deref(), Some("msg_01HV3"));
        assert_eq!(
            open.provider_machine_flag.as_deref(),
            Some("sendgrid sg_machine_open")
        );
        assert_eq!(open.ip_hint, IpHint::AppleNetwork);
        assert_eq!(
            open.recipient.as_ref().unwrap().expose(),
            "jane@example.com"
        );
        let click = &batch.events[1];
        assert_eq!(click.lux_message_id.as_deref(), Some("42"));
        assert_eq!(click.provider_machine_flag, None);
        assert_eq!(click.recipient, None);
        assert_eq!(
            click.url.as_deref(),
            Some("https://shop.example/p?email=[email]")
        );
    }

    #[test]
    fn one_bad_item_is_rejected_with_its_index_and_the_rest_kept() {
        let body = br#"[
            {"event": "delivered", "timestamp": 1700000000},
            "not an object",
            {"timestamp": 1700000000},
            {"event": "open"},
            {"event": "open", "timestamp": "yesterday"},
            {"event": "open", "timestamp": -5},
            {"event": "future_thing", "timestamp": 1700000000}
        ]"#;
        let batch = events(body).unwrap();
        let rejected: Vec<(usize, NormalizeError)> = batch
            .rejected
            .iter()
            .map(|r| (r.index, r.error.clone()))
            .collect();
        assert_eq!(
            rejected,
            [
                (1, NormalizeError::NotObject),
                (2, NormalizeError::MissingField("event")),
                (3, NormalizeError::MissingField("timestamp")),
                (4, NormalizeError::InvalidField("timestamp")),
                (5, NormalizeError::InvalidField("timestamp")),
            ]
        );
        assert_eq!(batch.events.len(), 2);
        assert_eq!(batch.events[1].kind, EventKind::Other);
        assert_eq!(batch.events[1].provider_status, "future_thing");
    }

    #[test]
    fn a_body_that_is_not_an_array_is_refused_whole() {
        assert_eq!(events(b"{}"), Err(NormalizeError::NotArray));
        assert_eq!(events(b"nope"), Err(NormalizeError::NotJson));
        assert_eq!(events(b"[]").unwrap(), Batch::default());
    }
}
