//! Applying a verified (or imported) provider message: kept in the delivery log, then turned
//! into an order fact and merged into orders, idempotently (a Stripe event is applied once).

use serde_json::Value;
use sqlx::{Postgres, Transaction};
use uuid::Uuid;

use super::deliveries::{self, Delivery, Verdict};
use super::orders::{self, OrderFact};
use super::secrets::{Provider, SecretsKey};
use super::{stripe, woocommerce};

/// What applying one provider message did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    Order(Uuid),
    /// The provider event was applied before (a redelivery).
    Duplicate,
    /// A message that says nothing about orders (another event type, a ping).
    Ignored(String),
}

/// The step at which applying a message failed. Every variant but `Database` is a problem
/// with the message itself: the delivery is still kept, and the sender is told why.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("malformed JSON: {0}")]
    MalformedJson(#[source] serde_json::Error),
    #[error("not a Stripe event: no `id` and `type`")]
    NotAStripeEvent,
    #[error("order.deleted without an `id`")]
    DeletedWithoutId,
    #[error(transparent)]
    WooOrder(#[from] woocommerce::OrderError),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

/// Applies a verified (or imported) provider message inside the caller's transaction.
/// `woo_topic` is WooCommerce's `X-WC-Webhook-Topic` when the message came by webhook.
pub async fn apply_verified(
    tx: &mut Transaction<'_, Postgres>,
    key: &SecretsKey,
    delivery: &Delivery<'_>,
    woo_topic: Option<&str>,
) -> Result<Applied, ApplyError> {
    // Kept once, encrypted, whatever follows: a verified payload that does not parse is
    // still the provider's message, worth auditing.
    let parsed =
        serde_json::from_slice::<Value>(delivery.payload).map_err(ApplyError::MalformedJson);
    let header = match (&parsed, delivery.provider) {
        (Ok(value), Provider::Stripe) => stripe::header(value),
        _ => None,
    };
    let failure = parsed.as_ref().err().map(ToString::to_string);
    let verdict = Verdict {
        verified: true,
        failure: failure.as_deref(),
        header: header.as_ref(),
    };
    deliveries::record(tx, key, delivery, verdict).await?;
    let value = parsed?;
    let company_id = delivery.company_id;
    let hash_key: Vec<u8> =
        sqlx::query_scalar("SELECT hash_key FROM companies WHERE company_id = $1")
            .bind(company_id)
            .fetch_one(&mut **tx)
            .await?;
    let found = match delivery.provider {
        Provider::Stripe => {
            let header = header.ok_or(ApplyError::NotAStripeEvent)?;
            stripe_fact(tx, company_id, header, &value, &hash_key).await?
        }
        _ => woo_fact(woo_topic, &value, &hash_key)?,
    };
    match found {
        Found::Fact(fact) => {
            let order_id = orders::record(tx, company_id, &fact, delivery.received_at).await?;
            Ok(Applied::Order(order_id))
        }
        Found::Settled(applied) => Ok(applied),
    }
}

/// What a message holds: an order fact to record (boxed: it is large, and short-lived), or
/// nothing more to do.
enum Found {
    Fact(Box<OrderFact>),
    Settled(Applied),
}

/// A Stripe event's order fact, or what applying it came to without one (a redelivery, an
/// event type that says nothing about orders). Marks the event applied.
async fn stripe_fact(
    tx: &mut Transaction<'_, Postgres>,
    company_id: Uuid,
    header: stripe::EventHeader,
    value: &Value,
    hash_key: &[u8],
) -> Result<Found, sqlx::Error> {
    let first_time: Option<String> = sqlx::query_scalar(
        "INSERT INTO applied_provider_events (company_id, provider, event_id, event_type)
         VALUES ($1, 'stripe', $2, $3) ON CONFLICT DO NOTHING RETURNING event_id",
    )
    .bind(company_id)
    .bind(&header.id)
    .bind(&header.event_type)
    .fetch_optional(&mut **tx)
    .await?;
    if first_time.is_none() {
        return Ok(Found::Settled(Applied::Duplicate));
    }
    Ok(match stripe::order_fact(value, hash_key) {
        Some(fact) => Found::Fact(Box::new(fact)),
        None => Found::Settled(Applied::Ignored(header.event_type)),
    })
}

/// A WooCommerce message's order fact by its topic, or the topic it was ignored as.
fn woo_fact(topic: Option<&str>, value: &Value, hash_key: &[u8]) -> Result<Found, ApplyError> {
    match topic {
        Some("order.deleted") => woocommerce::deleted_fact(value)
            .map(|fact| Found::Fact(Box::new(fact)))
            .ok_or(ApplyError::DeletedWithoutId),
        Some(topic) if !topic.starts_with("order.") => {
            Ok(Found::Settled(Applied::Ignored(topic.into())))
        }
        _ => Ok(Found::Fact(Box::new(woocommerce::order_fact(
            value, hash_key,
        )?))),
    }
}
