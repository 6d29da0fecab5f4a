//! Amazon SES records, the `Message` of a verified SNS notification. Two schemas exist and both
//! are read: event publishing (`eventType`, through a configuration set: every event type) and
//! the older identity notifications (`notificationType`: Bounce, Complaint, Delivery).
//!
//! One record can name several recipients (a bounce of three addresses, a delivery to two):
//! it becomes one event per recipient, each with its own derived id. Opens, clicks and
//! subscription changes say nothing of which recipient acted; they name one when the message
//! had exactly one destination, and nobody otherwise. SES has no event id: the id is derived
//! from the record's content (and the recipient's position), so a redelivery, or the same
//! record under another SNS envelope, is recognised.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::{
    EventKind, IpHint, NormalizeError, ProviderEvent, derived_id, lux_mid, reason, recipient,
    rfc3339, scrubbed, text, url,
};
use crate::messages::Provider;

/// Reads one SES record (the JSON string an SNS notification carries as `Message`).
pub fn record(message: &str) -> Result<Vec<ProviderEvent>, NormalizeError> {
    let item: Value = serde_json::from_str(message).map_err(|_| NormalizeError::NotJson)?;
    let object = item.as_object().ok_or(NormalizeError::NotObject)?;
    let word = text(object, "eventType")
        .or_else(|| text(object, "notificationType"))
        .ok_or(NormalizeError::MissingField("eventType"))?;
    let mail = object
        .get("mail")
        .and_then(Value::as_object)
        .ok_or(NormalizeError::MissingField("mail"))?;
    let destination = strings(mail.get("destination"));
    let mail_at = || {
        text(mail, "timestamp")
            .map(|t| rfc3339(t).ok_or(NormalizeError::InvalidField("mail.timestamp")))
            .unwrap_or(Err(NormalizeError::MissingField("mail.timestamp")))
    };
    let section = |name: &'static str| {
        object
            .get(name)
            .and_then(Value::as_object)
            .ok_or(NormalizeError::MissingField(name))
    };
    let section_at =
        |section: &Map<String, Value>, name: &'static str| match text(section, "timestamp") {
            Some(t) => rfc3339(t).ok_or(NormalizeError::InvalidField(name)),
            None => mail_at(),
        };
    // Who each event is about, and why, per recipient.
    let only_destination = || match destination.as_slice() {
        [one] => vec![(Some(one.clone()), None)],
        _ => vec![(None, None)],
    };
    let every_destination = || {
        if destination.is_empty() {
            vec![(None, None)]
        } else {
            destination
                .iter()
                .map(|d| (Some(d.clone()), None))
                .collect()
        }
    };
    let mut engagement: Option<&Map<String, Value>> = None;
    let (kind, occurred_at, targets): (EventKind, DateTime<Utc>, Vec<Target>) = match word {
        "Send" => (EventKind::Queued, mail_at()?, every_destination()),
        "Reject" => {
            let why = object
                .get("reject")
                .and_then(Value::as_object)
                .and_then(|r| text(r, "reason"))
                .map(str::to_owned);
            let targets = every_destination()
                .into_iter()
                .map(|(who, _)| (who, why.clone()))
                .collect();
            (EventKind::Dropped, mail_at()?, targets)
        }
        "Rendering Failure" => {
            let why = object
                .get("failure")
                .and_then(Value::as_object)
                .and_then(|f| text(f, "errorMessage"))
                .map(str::to_owned);
            let targets = every_destination()
                .into_iter()
                .map(|(who, _)| (who, why.clone()))
                .collect();
            (EventKind::Failed, mail_at()?, targets)
        }
        "Delivery" => {
            let delivery = section("delivery")?;
            let recipients = strings(delivery.get("recipients"));
            let targets = if recipients.is_empty() {
                every_destination()
            } else {
                recipients.into_iter().map(|r| (Some(r), None)).collect()
            };
            (
                EventKind::Delivered,
                section_at(delivery, "delivery.timestamp")?,
                targets,
            )
        }
        "Bounce" => {
            let bounce = section("bounce")?;
            let kind_of_bounce = [text(bounce, "bounceType"), text(bounce, "bounceSubType")]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join("/");
            let targets = per_recipient(bounce.get("bouncedRecipients"), |r| {
                let detail = text(r, "diagnosticCode").or_else(|| text(r, "status"));
                Some(match detail {
                    Some(detail) if !kind_of_bounce.is_empty() => {
                        format!("{kind_of_bounce}: {detail}")
                    }
                    Some(detail) => detail.to_owned(),
                    None => kind_of_bounce.clone(),
                })
            })
            .ok_or(NormalizeError::MissingField("bounce.bouncedRecipients"))?;
            (
                EventKind::Bounced,
                section_at(bounce, "bounce.timestamp")?,
                targets,
            )
        }
        "Complaint" => {
            let complaint = section("complaint")?;
            let feedback = text(complaint, "complaintFeedbackType").map(str::to_owned);
            let targets =
                per_recipient(complaint.get("complainedRecipients"), |_| feedback.clone()).ok_or(
                    NormalizeError::MissingField("complaint.complainedRecipients"),
                )?;
            (
                EventKind::Complained,
                section_at(complaint, "complaint.timestamp")?,
                targets,
            )
        }
        "DeliveryDelay" => {
            let delay = section("deliveryDelay")?;
            let delay_type = text(delay, "delayType").unwrap_or("delayed").to_owned();
            let targets = per_recipient(delay.get("delayedRecipients"), |r| {
                Some(
                    match text(r, "diagnosticCode").or_else(|| text(r, "status")) {
                        Some(detail) => format!("{delay_type}: {detail}"),
                        None => delay_type.clone(),
                    },
                )
            })
            .ok_or(NormalizeError::MissingField(
                "deliveryDelay.delayedRecipients",
            ))?;
            (
                EventKind::Deferred,
                section_at(delay, "deliveryDelay.timestamp")?,
                targets,
            )
        }
        "Open" => {
            let open = section("open")?;
            engagement = Some(open);
            (
                EventKind::Opened,
                section_at(open, "open.timestamp")?,
                only_destination(),
            )
        }
        "Click" => {
            let click = section("click")?;
            engagement = Some(click);
            (
                EventKind::Clicked,
                section_at(click, "click.timestamp")?,
                only_destination(),
            )
        }
        "Subscription" => {
            let subscription = section("subscription")?;
            (
                subscription_kind(subscription),
                section_at(subscription, "subscription.timestamp")?,
                only_destination(),
            )
        }
        _ => (EventKind::Other, mail_at()?, only_destination()),
    };
    let provider_message_id = text(mail, "messageId").map(str::to_owned);
    let lux_message_id = lux_mid(
        mail.get("tags")
            .and_then(|tags| tags.get("lux_mid"))
            .and_then(|values| values.get(0)),
    );
    let payload = scrubbed(&item);
    let several = targets.len() > 1;
    Ok(targets
        .into_iter()
        .enumerate()
        .map(|(index, (who, why))| ProviderEvent {
            provider: Provider::Ses,
            provider_event_id: derived_id(&item, several.then_some(index)),
            kind,
            provider_status: word.to_owned(),
            occurred_at,
            provider_message_id: provider_message_id.clone(),
            lux_message_id: lux_message_id.clone(),
            recipient: recipient(who.as_deref()),
            several_destinations: destination.len() > 1,
            url: url(engagement.and_then(|e| text(e, "link"))),
            user_agent: engagement
                .and_then(|e| text(e, "userAgent"))
                .map(str::to_owned),
            ip_hint: IpHint::of(engagement.and_then(|e| text(e, "ipAddress"))),
            provider_machine_flag: None,
            reason: why.as_deref().and_then(reason),
            payload: payload.clone(),
        })
        .collect())
}

/// Whom one event is about (the address as SES wrote it) and, for failures, why.
type Target = (Option<String>, Option<String>);

fn strings(value: Option<&Value>) -> Vec<String> {
    value
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// `[{ "emailAddress": …, … }]` → (address, reason) per entry; `None` when the list is
/// missing or empty.
fn per_recipient(
    value: Option<&Value>,
    why: impl Fn(&Map<String, Value>) -> Option<String>,
) -> Option<Vec<Target>> {
    let entries: Vec<_> = value?
        .as_array()?
        .iter()
        .filter_map(Value::as_object)
        .map(|entry| (text(entry, "emailAddress").map(str::to_owned), why(entry)))
        .collect();
    (!entries.is_empty()).then_some(entries)
}

/// A preference change is an unsubscribe when it leaves everything or any topic opted out.
fn subscription_kind(subscription: &Map<String, Value>) -> EventKind {
    let Some(preferences) = subscription
        .get("newTopicPreferences")
        .and_then(Value::as_object)
    else {
        return EventKind::Other;
    };
    let all = preferences.get("unsubscribeAll").and_then(Value::as_bool) == Some(true);
    let any_topic = preferences
        .get("topicSubscriptionStatus")
        .and_then(Value::as_array)
        .is_some_and(|topics| {
            topics
                .iter()
                .any(|t| t.get("subscriptionStatus").and_then(Value::as_str) == Some("OptOut"))
        });
    if all || any_topic {
        EventKind::Unsubscribed
    } else {
        EventKind::Resubscribed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    macro_rules! fixture {
        ($name:literal) => {
            include_str!(concat!("../../../tests/fixtures/messaging/", $name))
        };
    }

    const EXAMPLE_MESSAGE_ID: &str = "EXAMPLE7c191be45-e9aedb9a-02f9-4d12-a87d-dd0099a07f8a-000000";

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    fn one(message: &str) -> ProviderEvent {
        let mut events = record(message).unwrap();
        assert_eq!(events.len(), 1, "{events:?}");
        events.remove(0)
    }

    #[test]
    fn every_event_publishing_example_maps_to_one_kind() {
        let cases = [
            (
                fixture!("ses_sns_event_send.json"),
                "Send",
                EventKind::Queued,
                "2016-10-14T05:02:16.645Z",
            ),
            (
                fixture!("ses_sns_event_reject.json"),
                "Reject",
                EventKind::Dropped,
                "2016-10-14T17:38:15.211Z",
            ),
            (
                fixture!("ses_sns_event_rendering_failure.json"),
                "Rendering Failure",
                EventKind::Failed,
                "2018-01-22T18:43:06.197Z",
            ),
            (
                fixture!("ses_sns_event_delivery.json"),
                "Delivery",
                EventKind::Delivered,
                "2016-10-19T23:21:04.133Z",
            ),
            (
                fixture!("ses_sns_event_bounce.json"),
                "Bounce",
                EventKind::Bounced,
                "2017-08-05T00:41:02.669Z",
            ),
            (
                fixture!("ses_sns_event_complaint.json"),
                "Complaint",
                EventKind::Complained,
                "2017-08-05T00:41:02.669Z",
            ),
            (
                fixture!("ses_sns_event_delivery_delay.json"),
                "DeliveryDelay",
                EventKind::Deferred,
                "2020-06-16T00:25:40.095Z",
            ),
            (
                fixture!("ses_sns_event_open.json"),
                "Open",
                EventKind::Opened,
                "2017-08-09T22:00:19.652Z",
            ),
            (
                fixture!("ses_sns_event_click.json"),
                "Click",
                EventKind::Clicked,
                "2017-08-09T23:51:25.570Z",
            ),
            (
                fixture!("ses_sns_event_subscription.json"),
                "Subscription",
                EventKind::Unsubscribed,
                "2022-01-12T01:00:17.910Z",
            ),
        ];
        for (message, word, kind, occurred_at) in cases {
            let event = one(message);
            assert_eq!(event.provider, Provider::Ses, "{word}");
            assert_eq!(event.provider_status, word);
            assert_eq!(event.kind, kind, "{word}");
            assert_eq!(event.occurred_at, at(occurred_at), "{word}");
            assert!(
                event
                    .provider_message_id
                    .as_deref()
                    .unwrap()
                    .starts_with("EXAMPLE"),
                "{word}"
            );
            assert_eq!(event.provider_event_id.len(), 64);
            assert_eq!(event.lux_message_id, None);
            assert_eq!(event.provider_machine_flag, None);
            let stored = event.payload.to_string();
            assert!(
                !stored.contains("recipient@example.com"),
                "{word}: {stored}"
            );
            assert!(!stored.contains("192.0.2.1\""), "{word}: {stored}");
        }
    }

    #[test]
    fn recipients_reasons_links_and_agents_are_read_from_each_section() {
        let bounce = one(fixture!("ses_sns_event_bounce.json"));
        assert_eq!(
            bounce.provider_message_id.as_deref(),
            Some(EXAMPLE_MESSAGE_ID)
        );
        assert_eq!(bounce.recipient.unwrap().expose(), "recipient@example.com");
        assert_eq!(
            bounce.reason.as_deref(),
            Some("Permanent/General: smtp; 550 5.1.1 user unknown")
        );
        let delay = one(fixture!("ses_sns_event_delivery_delay.json"));
        assert_eq!(
            delay.reason.as_deref(),
            Some("TransientCommunicationFailure: smtp; 421 4.4.1 Unable to connect to remote host")
        );
        let reject = one(fixture!("ses_sns_event_reject.json"));
        assert_eq!(reject.reason.as_deref(), Some("Bad content"));
        assert_eq!(reject.recipient.unwrap().expose(), "sender@example.com");
        let failure = one(fixture!("ses_sns_event_rendering_failure.json"));
        assert_eq!(
            failure.reason.as_deref(),
            Some("Attribute 'attributeName' is not present in the rendering data.")
        );
        let complaint = one(fixture!("ses_sns_event_complaint.json"));
        assert_eq!(complaint.reason.as_deref(), Some("abuse"));
        let click = one(fixture!("ses_sns_event_click.json"));
        assert_eq!(
            click.url.as_deref(),
            Some("http://docs.aws.amazon.com/ses/latest/DeveloperGuide/send-email-smtp.html")
        );
        assert!(click.user_agent.as_deref().unwrap().contains("Chrome/60"));
        assert_eq!(click.ip_hint, IpHint::OtherNetwork);
        assert_eq!(click.recipient.unwrap().expose(), "recipient@example.com");
        let open = one(fixture!("ses_sns_event_open.json"));
        assert!(
            open.user_agent
                .as_deref()
                .unwrap()
                .contains("iPhone OS 10_3_3")
        );
        assert_eq!(open.url, None);
        let delivery = one(fixture!("ses_sns_event_delivery.json"));
        assert_eq!(delivery.reason, None);
        assert_eq!(delivery.ip_hint, IpHint::Absent);
    }

    #[test]
    fn an_identity_notification_naming_one_recipient_of_three_gives_one_event() {
        let bounce = one(fixture!("ses_sns_notification_bounce_with_dsn.json"));
        assert_eq!(bounce.provider_status, "Bounce");
        assert_eq!(bounce.kind, EventKind::Bounced);
        assert_eq!(bounce.recipient.unwrap().expose(), "jane@example.com");
        assert_eq!(
            bounce.provider_message_id.as_deref(),
            Some("00000138111222aa-33322211-cccc-cccc-cccc-ddddaaaa0680-000000")
        );
        assert_eq!(
            bounce.reason.as_deref(),
            Some("Permanent/General: smtp; 550 5.1.1 <[email]>... User"),
            "the address in the diagnostic is redacted"
        );
        let complaint = one(fixture!(
            "ses_sns_notification_complaint_with_feedback.json"
        ));
        assert_eq!(complaint.kind, EventKind::Complained);
        assert_eq!(complaint.recipient.unwrap().expose(), "richard@example.com");
        assert_eq!(complaint.occurred_at, at("2016-01-27T14:59:38.237Z"));
        let delivery = one(fixture!("ses_sns_notification_delivery.json"));
        assert_eq!(delivery.kind, EventKind::Delivered);
        assert_eq!(delivery.recipient.unwrap().expose(), "jane@example.com");
        assert_eq!(
            delivery.provider_message_id.as_deref(),
            Some("0000014644fe5ef6-9a483358-9170-4cb4-a269-f5dcdf415321-000000")
        );
    }

    #[test]
    fn a_record_naming_several_recipients_gives_one_event_each_with_its_own_id() {
        let mut record_value: Value =
            serde_json::from_str(fixture!("ses_sns_notification_bounce_with_dsn.json")).unwrap();
        record_value["bounce"]["bouncedRecipients"]
            .as_array_mut()
            .unwrap()
            .push(json!({"emailAddress": "Mary@Example.com", "status": "5.1.1"}));
        let events = record(&record_value.to_string()).unwrap();
        assert_eq!(events.len(), 2);
        assert_eq!(
            events[0].recipient.as_ref().unwrap().expose(),
            "jane@example.com"
        );
        assert_eq!(
            events[1].recipient.as_ref().unwrap().expose(),
            "mary@example.com"
        );
        assert_eq!(
            events[1].reason.as_deref(),
            Some("Permanent/General: 5.1.1")
        );
        assert_ne!(events[0].provider_event_id, events[1].provider_event_id);
        let again = record(&record_value.to_string()).unwrap();
        assert_eq!(again[1].provider_event_id, events[1].provider_event_id);
        // A send to three destinations is three sends.
        let mut send: Value = serde_json::from_str(fixture!("ses_sns_event_send.json")).unwrap();
        send["mail"]["destination"] = json!(["a@example.com", "b@example.com", "c@example.com"]);
        assert_eq!(record(&send.to_string()).unwrap().len(), 3);
        // An open of a message to three destinations names nobody: SES cannot tell who.
        let mut open: Value = serde_json::from_str(fixture!("ses_sns_event_open.json")).unwrap();
        open["mail"]["destination"] = json!(["a@example.com", "b@example.com"]);
        let opens = record(&open.to_string()).unwrap();
        assert_eq!(opens.len(), 1);
        assert_eq!(opens[0].recipient, None);
    }

    #[test]
    fn our_message_id_comes_from_the_lux_mid_message_tag() {
        let mut click: Value = serde_json::from_str(fixture!("ses_sns_event_click.json")).unwrap();
        click["mail"]["tags"]["lux_mid"] = json!(["msg_01J0"]);
        click["click"]["ipAddress"] = json!("17.253.0.1");
        let event = one(&click.to_string());
        assert_eq!(event.lux_message_id.as_deref(), Some("msg_01J0"));
        assert_eq!(event.ip_hint, IpHint::AppleNetwork);
    }

    #[test]
    fn a_subscription_change_that_opts_nothing_out_is_a_resubscription() {
        let mut change: Value =
            serde_json::from_str(fixture!("ses_sns_event_subscription.json")).unwrap();
        change["subscription"]["newTopicPreferences"] = json!({
            "unsubscribeAll": false,
            "topicSubscriptionStatus": [{"topicName": "News", "subscriptionStatus": "OptIn"}]
        });
        assert_eq!(one(&change.to_string()).kind, EventKind::Resubscribed);
    }

    #[test]
    fn incomplete_records_name_the_missing_part() {
        let bounce: Value = serde_json::from_str(fixture!("ses_sns_event_bounce.json")).unwrap();
        let without = |path: &[&str]| {
            let mut copy = bounce.clone();
            let (last, parents) = path.split_last().unwrap();
            let mut node = &mut copy;
            for parent in parents {
                node = &mut node[*parent];
            }
            node.as_object_mut().unwrap().remove(*last);
            record(&copy.to_string())
        };
        assert_eq!(
            without(&["eventType"]),
            Err(NormalizeError::MissingField("eventType"))
        );
        assert_eq!(
            without(&["mail"]),
            Err(NormalizeError::MissingField("mail"))
        );
        assert_eq!(
            without(&["bounce"]),
            Err(NormalizeError::MissingField("bounce"))
        );
        assert_eq!(
            without(&["bounce", "bouncedRecipients"]),
            Err(NormalizeError::MissingField("bounce.bouncedRecipients"))
        );
        let mut bad_time = bounce.clone();
        bad_time["bounce"]["timestamp"] = json!("last tuesday");
        assert_eq!(
            record(&bad_time.to_string()),
            Err(NormalizeError::InvalidField("bounce.timestamp"))
        );
        assert_eq!(record("Hello world!"), Err(NormalizeError::NotJson));
        assert_eq!(record("[]"), Err(NormalizeError::NotObject));
    }
}
