//! `POST /webhooks/{provider}/{company_id}`: Stripe and WooCommerce deliveries, verified on
//! the raw bytes before anything is parsed. A refused signature is kept (as a hash) and
//! answered 400; a verified message is applied, and a problem with it answered 422.

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use chrono::{DateTime, Utc};
use serde_json::json;
use uuid::Uuid;

use super::apply::{Applied, ApplyError, apply_verified};
use super::deliveries::{self, Channel, Delivery, Verdict};
use super::secrets::{self, Provider, SecretsKey};
use super::{stripe, woocommerce};
use crate::clock::Clock;
use crate::http::ApiError;

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

/// Why a delivery's signature was refused: recorded with it and answered.
#[derive(Debug, thiserror::Error)]
enum VerifyError {
    #[error("missing {0} header")]
    MissingHeader(&'static str),
    #[error(transparent)]
    Stripe(#[from] stripe::SignatureError),
    #[error(transparent)]
    WooCommerce(#[from] woocommerce::SignatureMismatch),
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
    let delivery = Delivery {
        company_id,
        provider,
        channel: Channel::Webhook,
        payload: &body,
        received_at: state.clock.now(),
    };
    if let Err(reason) = verify(provider, &headers, &body, &secret, delivery.received_at) {
        let reason = reason.to_string();
        let verdict = Verdict {
            verified: false,
            failure: Some(&reason),
            header: None,
        };
        deliveries::record(&mut tx, key, &delivery, verdict).await?;
        tx.commit().await?;
        tracing::warn!(provider = provider.as_str(), %company_id, "webhook signature rejected");
        return Err(ApiError::BadRequest(format!(
            "signature verification failed: {reason}; nothing was applied"
        )));
    }
    let topic = header("x-wc-webhook-topic");
    let applied = match apply_verified(&mut tx, key, &delivery, topic).await {
        Err(ApplyError::Database(error)) => return Err(error.into()),
        applied => applied,
    };
    // A problem with the message is answered, and the delivery that told us is kept.
    tx.commit().await?;
    Ok(answer(applied))
}

/// Checks the delivery's signature header against the company's secret.
fn verify(
    provider: Provider,
    headers: &HeaderMap,
    body: &[u8],
    secret: &[u8],
    now: DateTime<Utc>,
) -> Result<(), VerifyError> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    match provider {
        Provider::Stripe => {
            let signature =
                header("stripe-signature").ok_or(VerifyError::MissingHeader("Stripe-Signature"))?;
            Ok(stripe::verify(signature, body, secret, now)?)
        }
        _ => {
            let signature = header("x-wc-webhook-signature")
                .ok_or(VerifyError::MissingHeader("X-WC-Webhook-Signature"))?;
            Ok(woocommerce::verify(signature, body, secret)?)
        }
    }
}

/// 200 with what was applied, or 422 naming what is wrong with the message.
fn answer(applied: Result<Applied, ApplyError>) -> Response {
    let body = match applied {
        Ok(Applied::Order(order_id)) => json!({ "received": true, "order_id": order_id }),
        Ok(Applied::Duplicate) => json!({ "received": true, "duplicate": true }),
        Ok(Applied::Ignored(why)) => json!({ "received": true, "ignored": why }),
        Err(problem) => {
            let body = axum::Json(json!({ "error": problem.to_string() }));
            return (StatusCode::UNPROCESSABLE_ENTITY, body).into_response();
        }
    };
    (StatusCode::OK, axum::Json(body)).into_response()
}
