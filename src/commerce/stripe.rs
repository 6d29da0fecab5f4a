//! Stripe: signature verification and events → order facts.
//!
//! Orders are named by the PaymentIntent (`stripe:pi_…`), the Checkout Session
//! (`stripe:cs_…`) and the Charge (`stripe:ch_…`) ids, and by the store's own order number when
//! the payment's `metadata` carries `lux_order_id` or `order_id`. Visitors link through
//! `client_reference_id` (the snippet's visitor id) or `metadata.lux_visitor_id`.

use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;
use sha2::Sha256;
use uuid::Uuid;

use super::money::Currency;
use super::orders::{OrderFact, PaymentState, Source};
use crate::privacy::EmailHash;

/// Stripe's default tolerance for the signed timestamp.
pub const TOLERANCE_SECONDS: i64 = 300;

/// Why a `Stripe-Signature` was refused (recorded with the delivery and answered as is).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("Stripe-Signature has no timestamp (t=)")]
    NoTimestamp,
    #[error("Stripe-Signature has no v1 signature")]
    NoSignature,
    #[error("Stripe-Signature timestamp is outside the 5-minute tolerance")]
    OutsideTolerance,
    #[error("Stripe-Signature does not match the payload and secret")]
    Mismatch,
}

/// Checks `Stripe-Signature: t=…,v1=…[,v1=…]` over `t.payload`, in constant time, within the
/// tolerance. Returns why it failed.
pub fn verify(
    header: &str,
    payload: &[u8],
    secret: &[u8],
    now: DateTime<Utc>,
) -> Result<(), SignatureError> {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", t)) => timestamp = t.parse::<i64>().ok(),
            Some(("v1", sig)) => {
                if let Ok(bytes) = hex::decode(sig) {
                    signatures.push(bytes);
                }
            }
            _ => {}
        }
    }
    let t = timestamp.ok_or(SignatureError::NoTimestamp)?;
    if signatures.is_empty() {
        return Err(SignatureError::NoSignature);
    }
    if now.timestamp().abs_diff(t) > TOLERANCE_SECONDS as u64 {
        return Err(SignatureError::OutsideTolerance);
    }
    let matches = signatures.iter().any(|sig| {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("any key length");
        mac.update(t.to_string().as_bytes());
        mac.update(b".");
        mac.update(payload);
        mac.verify_slice(sig).is_ok()
    });
    if matches {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// Signs a payload the way Stripe does (for tests and tools).
pub fn sign(payload: &[u8], secret: &[u8], t: i64) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("any key length");
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(payload);
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// The parts of an event that identify it.
pub struct EventHeader {
    pub id: String,
    pub event_type: String,
}

pub fn header(event: &Value) -> Option<EventHeader> {
    Some(EventHeader {
        id: event.get("id")?.as_str()?.to_string(),
        event_type: event.get("type")?.as_str()?.to_string(),
    })
}

fn text<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str).filter(|s| !s.is_empty())
}

fn amount(v: &Value, key: &str, currency: Option<Currency>) -> Option<i64> {
    Some(currency?.from_stripe_amount(v.get(key)?.as_i64()?))
}

fn time(v: &Value, key: &str) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(v.get(key)?.as_i64()?, 0)
}

/// The order fact an event carries, or `None` for event types that say nothing about orders.
pub fn order_fact(event: &Value, company_hash_key: &[u8]) -> Option<OrderFact> {
    let event_type = text(event, "type")?;
    let object = event.get("data")?.get("object")?;
    let mut fact = OrderFact::new(Source::Stripe);
    let currency = text(object, "currency").and_then(Currency::parse);
    fact.currency = currency;
    fact.source_updated_at = time(event, "created");
    let metadata = object.get("metadata").cloned().unwrap_or(Value::Null);

    match event_type {
        "checkout.session.completed"
        | "checkout.session.async_payment_succeeded"
        | "checkout.session.async_payment_failed" => {
            if text(object, "mode") != Some("payment") && object.get("mode").is_some() {
                return None; // subscriptions and setups are not orders (yet)
            }
            fact.refs.push(format!("stripe:{}", text(object, "id")?));
            if let Some(pi) = text(object, "payment_intent") {
                fact.refs.push(format!("stripe:{pi}"));
            }
            fact.gross_minor = amount(object, "amount_total", currency);
            if let Some(details) = object.get("total_details") {
                fact.discount_minor = amount(details, "amount_discount", currency);
                fact.tax_minor = amount(details, "amount_tax", currency);
                fact.shipping_minor = amount(details, "amount_shipping", currency);
            }
            fact.state = Some(match (event_type, text(object, "payment_status")) {
                ("checkout.session.async_payment_failed", _) => PaymentState::Failed,
                (_, Some("paid" | "no_payment_required")) => PaymentState::Paid,
                _ => PaymentState::Pending,
            });
            let email = object
                .get("customer_details")
                .and_then(|d| text(d, "email"))
                .or_else(|| text(object, "customer_email"));
            fact.email_hash = email.and_then(|e| EmailHash::of(company_hash_key, e));
            if let Some(reference) = text(object, "client_reference_id") {
                link_reference(&mut fact, reference);
            }
            fact.placed_at = time(object, "created").or(fact.source_updated_at);
        }
        "payment_intent.succeeded"
        | "payment_intent.payment_failed"
        | "payment_intent.canceled" => {
            fact.refs.push(format!("stripe:{}", text(object, "id")?));
            fact.gross_minor = match event_type {
                "payment_intent.succeeded" => amount(object, "amount_received", currency)
                    .or_else(|| amount(object, "amount", currency)),
                _ => amount(object, "amount", currency),
            };
            fact.state = Some(match event_type {
                "payment_intent.succeeded" => PaymentState::Paid,
                "payment_intent.payment_failed" => PaymentState::Failed,
                _ => PaymentState::Cancelled,
            });
            let email = text(object, "receipt_email").or_else(|| {
                object
                    .get("charges")
                    .and_then(|c| c.get("data"))
                    .and_then(|d| d.get(0))
                    .and_then(|c| c.get("billing_details"))
                    .and_then(|b| text(b, "email"))
            });
            fact.email_hash = email.and_then(|e| EmailHash::of(company_hash_key, e));
            fact.placed_at = time(object, "created").or(fact.source_updated_at);
        }
        "charge.succeeded" | "charge.failed" | "charge.refunded" | "charge.captured" => {
            fact.refs.push(format!("stripe:{}", text(object, "id")?));
            if let Some(pi) = text(object, "payment_intent") {
                fact.refs.push(format!("stripe:{pi}"));
            }
            fact.gross_minor = amount(object, "amount_captured", currency)
                .filter(|a| *a > 0)
                .or_else(|| amount(object, "amount", currency));
            fact.refunded_minor = amount(object, "amount_refunded", currency);
            fact.state = Some(match (event_type, text(object, "status")) {
                ("charge.failed", _) | (_, Some("failed")) => PaymentState::Failed,
                (_, Some("succeeded")) => PaymentState::Paid,
                _ => PaymentState::Pending,
            });
            let email = text(object, "receipt_email")
                .or_else(|| object.get("billing_details").and_then(|b| text(b, "email")));
            fact.email_hash = email.and_then(|e| EmailHash::of(company_hash_key, e));
            fact.placed_at = time(object, "created").or(fact.source_updated_at);
        }
        // A refund object: one refund's amount. The charge's amount_refunded (charge.refunded)
        // is the running total and wins when it arrives.
        "charge.refund.updated" | "refund.created" | "refund.updated" => {
            if text(object, "status") != Some("succeeded") {
                return None;
            }
            let target = text(object, "payment_intent").or_else(|| text(object, "charge"))?;
            fact.refs.push(format!("stripe:{target}"));
            if let Some(charge) = text(object, "charge") {
                fact.refs.push(format!("stripe:{charge}"));
            }
            fact.refunded_minor = amount(object, "amount", currency);
        }
        _ => return None,
    }
    for key in ["lux_order_id", "order_id"] {
        if let Some(number) = text(&metadata, key) {
            fact.add_order_number(number);
            break;
        }
    }
    if fact.order_number.is_none() {
        // The payment (PaymentIntent) names the order best; else the session or charge.
        let best = fact
            .refs
            .iter()
            .find(|r| r.starts_with("stripe:pi_"))
            .or(fact.refs.first());
        fact.order_number = best.map(|r| r.trim_start_matches("stripe:").to_string());
    }
    if let Some(visitor) = text(&metadata, "lux_visitor_id") {
        link_reference(&mut fact, visitor);
    }
    if let Some(user) = text(&metadata, "lux_user_id") {
        fact.user_id = Some(user.to_string());
    }
    Some(fact)
}

/// `client_reference_id` / `metadata.lux_visitor_id`: the snippet's visitor id (a UUID).
fn link_reference(fact: &mut OrderFact, reference: &str) {
    if let Ok(visitor) = Uuid::parse_str(reference.trim()) {
        fact.visitor_id = Some(visitor);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_with_any_v1_and_within_tolerance() {
        let now = Utc::now();
        let payload = br#"{"id":"evt_1"}"#;
        let header = sign(payload, b"whsec_test", now.timestamp());
        assert!(verify(&header, payload, b"whsec_test", now).is_ok());
        let two = format!("{header},v1={}", "00".repeat(32));
        assert!(verify(&two, payload, b"whsec_test", now).is_ok());
        assert!(verify(&header, payload, b"whsec_other", now).is_err());
        assert!(verify(&header, br#"{"id":"evt_2"}"#, b"whsec_test", now).is_err());
        let stale = sign(payload, b"whsec_test", now.timestamp() - 301);
        assert!(verify(&stale, payload, b"whsec_test", now).is_err());
        assert!(verify("v1=abc", payload, b"whsec_test", now).is_err());
    }
}
