//! The order fact of a `purchase` event, built on the ingestion side so that commerce never
//! imports ingestion: the writer hands commerce plain order facts.

use serde_json::Value;
use uuid::Uuid;

use super::event::AcceptedEvent;
use crate::commerce::money::{Currency, json_decimal};
use crate::commerce::orders::{OrderFact, PaymentState, Source};

/// The purchases among `events` (with their sessions) as order facts keyed by event id.
pub fn purchase_facts(
    events: &[&AcceptedEvent],
    session_ids: &[Option<Uuid>],
) -> Vec<(Uuid, OrderFact)> {
    events
        .iter()
        .zip(session_ids)
        .filter(|(e, _)| e.event_name == "purchase")
        .filter_map(|(e, s)| purchase_fact(e, *s).map(|f| (e.event_id, f)))
        .collect()
}

/// The order fact of a stored `purchase` event (validated at ingest: order_id, value and
/// currency are there). Written in the ingest transaction, with the event's session.
pub fn purchase_fact(event: &AcceptedEvent, session_id: Option<Uuid>) -> Option<OrderFact> {
    let p = &event.properties;
    let currency = p
        .get("currency")
        .and_then(Value::as_str)
        .and_then(Currency::parse)?;
    let order_id = match p.get("order_id")? {
        Value::String(s) => s.trim().to_string(),
        Value::Number(n) => n.to_string(),
        _ => return None,
    };
    let mut fact = OrderFact::new(Source::Event);
    fact.add_order_number(&order_id);
    fact.currency = Some(currency);
    fact.gross_minor = json_decimal(p.get("value")?, currency);
    let optional = |key: &str| p.get(key).and_then(|v| json_decimal(v, currency));
    fact.discount_minor = optional("discount");
    fact.tax_minor = optional("tax");
    fact.shipping_minor = optional("shipping");
    fact.state = Some(PaymentState::Paid);
    fact.placed_at = Some(event.occurred_at);
    fact.email_hash = event.email_hash.clone();
    fact.user_id = event.user_id.clone();
    if event.identifiable {
        fact.visitor_id = Some(event.visitor_id);
        fact.session_id = session_id;
    }
    Some(fact)
}
