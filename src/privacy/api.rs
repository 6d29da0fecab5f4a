//! `POST /api/v1/privacy/requests` (secret key): files an access, deletion or opt-out request
//! and answers with its deadlines. Answering it is an operator's work (`lux privacy export`,
//! `lux privacy erase`; docs/privacy.md).

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use sqlx::PgPool;
use uuid::Uuid;

use super::requests::{self, RequestKind, Subject};
use crate::clock::Clock;
use crate::http::ApiError;
use crate::tenancy::Tenancy;

/// What the privacy endpoints need.
#[derive(Clone)]
pub struct PrivacyState {
    /// Connections that run as `lux_app`.
    pub pool: PgPool,
    pub clock: Clock,
    pub tenancy: Arc<Tenancy>,
}

pub fn router() -> Router<PrivacyState> {
    Router::new().route("/api/v1/privacy/requests", post(post_request))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RequestBody {
    kind: String,
    email: Option<String>,
    user_id: Option<String>,
    visitor_id: Option<Uuid>,
    /// When the person asked, if earlier than now (a request received by mail, say).
    received_at: Option<DateTime<Utc>>,
}

/// Requests are small: a few hundred bytes.
const MAX_BODY_BYTES: usize = 4096;

#[tracing::instrument(skip_all, fields(company_id))]
async fn post_request(
    State(state): State<PrivacyState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let tenant =
        crate::tenancy::secret_key_tenant(&state.tenancy, &headers, "privacy requests need")
            .await?;
    let company_id = tenant.settings.company_id;
    tracing::Span::current().record("company_id", tracing::field::display(company_id));
    let body = body.map_err(|r| ApiError::BadRequest(format!("could not read the body: {r}")))?;
    if body.len() > MAX_BODY_BYTES {
        return Err(ApiError::PayloadTooLarge(format!(
            "the body is larger than {MAX_BODY_BYTES} bytes"
        )));
    }
    let input: RequestBody = serde_json::from_slice(&body).map_err(|e| {
        ApiError::BadRequest(format!(
            "body: {e}; send {{\"kind\": \"access|deletion|opt_out\", \"email\" | \"user_id\" | \"visitor_id\": ...}}"
        ))
    })?;
    let kind = RequestKind::parse(&input.kind).ok_or_else(|| {
        ApiError::BadRequest(format!(
            "kind {:?} is unknown: use access, deletion or opt_out",
            input.kind
        ))
    })?;
    let subject = Subject::from_one(
        &tenant.settings.hash_key,
        input.email.as_deref(),
        input.user_id.as_deref(),
        input.visitor_id,
    )
    .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let now = state.clock.now();
    let received_at = match input.received_at {
        Some(at) if at > now => {
            return Err(ApiError::BadRequest("received_at is in the future".into()));
        }
        Some(at) => at,
        None => now,
    };
    let mut tx = crate::db::begin_for_company(&state.pool, company_id).await?;
    let request = requests::file(
        &mut tx,
        company_id,
        kind,
        Some(&subject),
        ("api", received_at),
    )
    .await?;
    tx.commit().await?;
    tracing::info!(kind = kind.as_str(), "privacy request filed");
    Ok((StatusCode::CREATED, axum::Json(request)).into_response())
}
