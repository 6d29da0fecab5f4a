//! Commerce: orders from purchase events, Stripe and WooCommerce (webhooks and imports),
//! merged into one row per real order, with customers and first-order flags.
//!
//! Webhooks are verified on the raw bytes before anything is parsed, every delivery is kept
//! as received (append-only) with its verification result, and applying is idempotent.

pub mod import;
pub mod inbox;
pub mod money;
pub mod orders;
pub mod secrets;
pub mod stripe;
pub mod woocommerce;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};
use sqlx::{Postgres, Transaction};
use uuid::Uuid;

use crate::clock::Clock;
use crate::http::ApiError;
use secrets::{Provider, SecretsKey};

/// Webhook bodies: an order with many lines is still far below this.
const MAX_WEBHOOK_BYTES: usize = 2 * 1024 * 1024;

/// What the webhook endpoints use, taken from the app's state.
#[derive(Clone)]
pub struct WebhookState {
    /// Connections that run as `lux_app`.
    pub pool: sqlx::PgPool,
    /// The time of receipt: replay windows of signatures.
    pub clock: Clock,
    /// Decrypts webhook secrets; `None` when the server has no LUX_SECRETS_KEY.
    pub secrets_key: Option<SecretsKey>,
}

pub fn router() -> Router<WebhookState> {
    Router::new()
        .route("/webhooks/{provider}/{company_id}", post(webhook))
        .layer(DefaultBodyLimit::max(MAX_WEBHOOK_BYTES))
}

/// What applying one provider message did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    Order(Uuid),
    /// The provider event was applied before (a redelivery).
    Duplicate,
    /// A message that says nothing about orders (another event type, a ping).
    Ignored(String),
}

async fn webhook(
    State(state): State<WebhookState>,
    Path((provider, company)): Path<(String, String)>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge(format!(
                "webhook body is larger than {MAX_WEBHOOK_BYTES} bytes"
            ))
        } else {
            ApiError::BadRequest(format!("could not read the body: {rejection}"))
        }
    })?;
    let provider = match Provider::parse(&provider) {
        Some(p @ (Provider::Stripe | Provider::WooCommerce)) => p,
        _ => return Err(ApiError::NotFound),
    };
    let company_id = Uuid::parse_str(&company).map_err(|_| ApiError::NotFound)?;
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    // WooCommerce pings a new webhook with an unsigned form body and no X-WC headers.
    if provider == Provider::WooCommerce
        && header("x-wc-webhook-signature").is_none()
        && body.starts_with(b"webhook_id=")
    {
        return Ok(axum::Json(json!({ "received": true, "ping": true })).into_response());
    }
    let key = state.secrets_key.as_ref().ok_or_else(|| {
        tracing::error!("a webhook arrived but LUX_SECRETS_KEY is not configured");
        ApiError::Unavailable
    })?;

    let mut tx = crate::db::begin_for_company(&state.pool, company_id).await?;
    let secret = secrets::load_secret(&mut tx, key, company_id, provider)
        .await?
        .ok_or_else(|| ApiError::NotFound)?;
    let verified = match provider {
        Provider::Stripe => match header("stripe-signature") {
            Some(sig) => stripe::verify(sig, &body, &secret, state.clock.now()),
            None => Err("missing Stripe-Signature header".to_string()),
        },
        _ => match header("x-wc-webhook-signature") {
            Some(sig) => woocommerce::verify(sig, &body, &secret),
            None => Err("missing X-WC-Webhook-Signature header".to_string()),
        },
    };
    if let Err(reason) = verified {
        record_delivery(
            &mut tx,
            key,
            company_id,
            provider,
            "webhook",
            &body,
            false,
            Some(&reason),
            None,
        )
        .await?;
        tx.commit().await?;
        tracing::warn!(provider = provider.as_str(), %company_id, "webhook signature rejected");
        return Err(ApiError::BadRequest(format!(
            "signature verification failed: {reason}; nothing was applied"
        )));
    }
    let topic = header("x-wc-webhook-topic").map(str::to_string);
    let applied = apply_verified(
        &mut tx,
        key,
        company_id,
        provider,
        "webhook",
        &body,
        topic.as_deref(),
    )
    .await?;
    tx.commit().await?;
    let answer = match applied {
        Ok(Applied::Order(order_id)) => json!({ "received": true, "order_id": order_id }),
        Ok(Applied::Duplicate) => json!({ "received": true, "duplicate": true }),
        Ok(Applied::Ignored(why)) => json!({ "received": true, "ignored": why }),
        Err(problem) => {
            return Ok((
                StatusCode::UNPROCESSABLE_ENTITY,
                axum::Json(json!({ "error": problem })),
            )
                .into_response());
        }
    };
    Ok((StatusCode::OK, axum::Json(answer)).into_response())
}

/// Keeps a delivery (or an imported record): encrypted when verified, as a hash otherwise.
#[allow(clippy::too_many_arguments)]
async fn record_delivery(
    tx: &mut Transaction<'_, Postgres>,
    key: &SecretsKey,
    company_id: Uuid,
    provider: Provider,
    channel: &str,
    payload: &[u8],
    verified: bool,
    failure: Option<&str>,
    header: Option<&stripe::EventHeader>,
) -> Result<(), sqlx::Error> {
    let sealed = verified.then(|| key.seal(company_id, payload));
    sqlx::query(
        "INSERT INTO webhook_deliveries (company_id, delivery_id, provider, channel, verified,
             failure, provider_event_id, event_type, payload_sha256, payload_bytes,
             payload_nonce, payload_ciphertext)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(company_id)
    .bind(Uuid::now_v7())
    .bind(provider.as_str())
    .bind(channel)
    .bind(verified)
    .bind(failure)
    .bind(header.map(|h| h.id.as_str()))
    .bind(header.map(|h| h.event_type.as_str()))
    .bind(<sha2::Sha256 as sha2::Digest>::digest(payload).to_vec())
    .bind(i32::try_from(payload.len()).unwrap_or(i32::MAX))
    .bind(sealed.as_ref().map(|(nonce, _)| nonce.to_vec()))
    .bind(sealed.map(|(_, ciphertext)| ciphertext))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Applies a verified (or imported) provider message inside the caller's transaction.
/// `Err` is a problem with the message itself, to report, never a database failure.
pub async fn apply_verified(
    tx: &mut Transaction<'_, Postgres>,
    key: &SecretsKey,
    company_id: Uuid,
    provider: Provider,
    channel: &str,
    payload: &[u8],
    woo_topic: Option<&str>,
) -> Result<Result<Applied, String>, sqlx::Error> {
    // Kept once, encrypted, whatever follows: a verified payload that does not parse is
    // still the provider's message, worth auditing.
    let parsed: Result<Value, String> =
        serde_json::from_slice(payload).map_err(|e| format!("malformed JSON: {e}"));
    let header = match (&parsed, provider) {
        (Ok(value), Provider::Stripe) => stripe::header(value),
        _ => None,
    };
    let failure = parsed.as_ref().err().map(String::as_str);
    record_delivery(
        tx,
        key,
        company_id,
        provider,
        channel,
        payload,
        true,
        failure,
        header.as_ref(),
    )
    .await?;
    let value = match parsed {
        Ok(value) => value,
        Err(problem) => return Ok(Err(problem)),
    };
    let hash_key: Vec<u8> =
        sqlx::query_scalar("SELECT hash_key FROM companies WHERE company_id = $1")
            .bind(company_id)
            .fetch_one(&mut **tx)
            .await?;

    let fact = match provider {
        Provider::Stripe => {
            let Some(header) = header else {
                return Ok(Err("not a Stripe event: no `id` and `type`".into()));
            };
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
                return Ok(Ok(Applied::Duplicate));
            }
            match stripe::order_fact(&value, &hash_key) {
                Some(fact) => fact,
                None => return Ok(Ok(Applied::Ignored(header.event_type))),
            }
        }
        _ => match woo_topic {
            Some("order.deleted") => match woocommerce::deleted_fact(&value) {
                Some(fact) => fact,
                None => return Ok(Err("order.deleted without an `id`".into())),
            },
            Some(topic) if !topic.starts_with("order.") => {
                return Ok(Ok(Applied::Ignored(topic.to_string())));
            }
            _ => match woocommerce::order_fact(&value, &hash_key) {
                Ok(fact) => fact,
                Err(problem) => return Ok(Err(problem)),
            },
        },
    };
    let order_id = orders::record(tx, company_id, &fact).await?;
    Ok(Ok(Applied::Order(order_id)))
}
