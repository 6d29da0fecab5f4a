//! WooCommerce: signature verification and REST API v3 orders → order facts.
//!
//! An order is named `woo:<id>` and by its number (`order:<number>`), which is what the
//! store's purchase event sends as `order_id`. Visitors link through the order meta
//! `_lux_visitor_id` / `lux_visitor_id` (written at checkout), people through the billing
//! email and the WooCommerce customer id (the WordPress user id).

use base64::Engine;
use chrono::{DateTime, NaiveDateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;
use sha2::Sha256;
use subtle::ConstantTimeEq;
use uuid::Uuid;

use super::money::Currency;
use super::orders::{OrderFact, PaymentState, Source};
use crate::privacy::EmailHash;

/// An `X-WC-Webhook-Signature` that is not the body's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("X-WC-Webhook-Signature does not match the body and secret")]
pub struct SignatureMismatch;

/// `X-WC-Webhook-Signature`: base64 of HMAC-SHA256(secret, raw body), compared in constant
/// time.
pub fn verify(signature: &str, body: &[u8], secret: &[u8]) -> Result<(), SignatureMismatch> {
    let expected = sign(body, secret);
    if expected
        .as_bytes()
        .ct_eq(signature.trim().as_bytes())
        .into()
    {
        Ok(())
    } else {
        Err(SignatureMismatch)
    }
}

pub fn sign(body: &[u8], secret: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("any key length");
    mac.update(body);
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

fn text<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// WooCommerce's `*_gmt` times have no zone marker; they are UTC.
fn gmt(v: &Value, key: &str) -> Option<DateTime<Utc>> {
    NaiveDateTime::parse_from_str(text(v, key)?, "%Y-%m-%dT%H:%M:%S")
        .ok()
        .map(|t| t.and_utc())
}

/// Why a WooCommerce payload is not an order we can read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OrderError {
    #[error("not a WooCommerce order: no numeric `id`")]
    NoId,
    #[error("a refund, not an order")]
    Refund,
    #[error("order has no valid `currency`")]
    NoCurrency,
    #[error("order has no valid `total`")]
    NoTotal,
}

/// The order fact of a REST API v3 order, or why it could not be read.
pub fn order_fact(order: &Value, company_hash_key: &[u8]) -> Result<OrderFact, OrderError> {
    let id = order
        .get("id")
        .and_then(Value::as_i64)
        .ok_or(OrderError::NoId)?;
    if order.get("status").is_none() && order.get("amount").is_some() {
        return Err(OrderError::Refund);
    }
    let currency = text(order, "currency")
        .and_then(Currency::parse)
        .ok_or(OrderError::NoCurrency)?;
    let money = |key: &str| text(order, key).and_then(|t| currency.parse_decimal(t));
    let mut fact = OrderFact::new(Source::WooCommerce);
    fact.refs.push(format!("woo:{id}"));
    let number = text(order, "number")
        .map(str::to_string)
        .unwrap_or_else(|| id.to_string());
    fact.add_order_number(&number);
    fact.currency = Some(currency);
    fact.gross_minor = Some(money("total").ok_or(OrderError::NoTotal)?);
    fact.discount_minor = money("discount_total");
    fact.tax_minor = money("total_tax");
    fact.shipping_minor = money("shipping_total");
    // Refunds are listed with negative totals.
    let refunded: i64 = order
        .get("refunds")
        .and_then(Value::as_array)
        .map(|refunds| {
            refunds
                .iter()
                .filter_map(|r| text(r, "total").and_then(|t| currency.parse_decimal(t)))
                .map(i64::saturating_abs)
                .fold(0i64, i64::saturating_add)
        })
        .unwrap_or(0);
    fact.refunded_minor = Some(refunded);
    fact.state = Some(match text(order, "status").unwrap_or("pending") {
        "processing" | "completed" => PaymentState::Paid,
        "refunded" => PaymentState::Refunded,
        "cancelled" | "trash" => PaymentState::Cancelled,
        "failed" => PaymentState::Failed,
        _ => PaymentState::Pending,
    });
    fact.placed_at = gmt(order, "date_created_gmt");
    fact.source_updated_at = gmt(order, "date_modified_gmt");
    fact.email_hash = order
        .get("billing")
        .and_then(|b| text(b, "email"))
        .and_then(|e| EmailHash::of(company_hash_key, e));
    fact.user_id = order
        .get("customer_id")
        .and_then(Value::as_i64)
        .filter(|id| *id > 0)
        .map(|id| id.to_string());
    fact.visitor_id = order
        .get("meta_data")
        .and_then(Value::as_array)
        .and_then(|meta| {
            meta.iter()
                .find(|m| matches!(text(m, "key"), Some("_lux_visitor_id" | "lux_visitor_id")))
        })
        .and_then(|m| text(m, "value"))
        .and_then(|v| Uuid::parse_str(v.trim()).ok());
    Ok(fact)
}

/// `order.deleted` carries only the id: the order was trashed.
pub fn deleted_fact(body: &Value) -> Option<OrderFact> {
    let id = body.get("id")?.as_i64()?;
    let mut fact = OrderFact::new(Source::WooCommerce);
    fact.refs.push(format!("woo:{id}"));
    fact.state = Some(PaymentState::Cancelled);
    Some(fact)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_base64_hmac_of_the_raw_body() {
        let body = br#"{"id":727}"#;
        let signature = sign(body, b"woo-secret");
        assert!(verify(&signature, body, b"woo-secret").is_ok());
        assert!(verify(&signature, body, b"other").is_err());
        assert!(verify(&signature, br#"{"id":728}"#, b"woo-secret").is_err());
    }
}
