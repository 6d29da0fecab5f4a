//! The one error type of the HTTP surface. Every error answer is JSON with an `error` field
//! that says what was wrong; internal causes are logged, never sent to the client.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("no such endpoint")]
    NotFound,
    /// The endpoint exists; the thing the request names (an experiment key, say) does not.
    #[error("{0}")]
    Missing(String),
    /// The request contradicts what is stored (a key taken by other values, say).
    #[error("{0}")]
    Conflict(String),
    #[error("method not allowed on this endpoint")]
    MethodNotAllowed,
    /// Too much load: the client should retry after a short pause.
    #[error("the service is busy, retry shortly")]
    Overloaded,
    /// The database cannot be reached: nothing was stored, retry.
    #[error("storage is unavailable, nothing was stored; retry shortly")]
    Unavailable,
    /// Our bug: the cause goes to the log under a correlation id, the client gets the id.
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// A database error that is not about availability, labelled as such in the log.
#[derive(Debug, thiserror::Error)]
#[error("database: {0}")]
struct DatabaseFailure(#[source] sqlx::Error);

impl ApiError {
    /// An internal error with its cause (anything that is an error, or a message).
    pub fn internal(cause: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        ApiError::Internal(cause.into())
    }

    fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::NotFound | ApiError::Missing(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Overloaded | ApiError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// The one policy for database errors, wherever they surface: a lost connection (or a server
/// shutting down) is "unavailable, retry"; a statement timeout, too many connections or a
/// serialization failure is "busy, retry"; anything else the database answered (a constraint,
/// a permission, an SQL error) is our bug: a 500 whose cause goes to the log, not a 503 that
/// would have clients retry it forever.
impl From<sqlx::Error> for ApiError {
    fn from(error: sqlx::Error) -> Self {
        if crate::db::connection_may_be_lost(&error) {
            tracing::warn!(error = %error, "database unavailable");
            ApiError::Unavailable
        } else if crate::db::is_overload(&error) {
            tracing::warn!(error = %error, "database busy");
            ApiError::Overloaded
        } else {
            ApiError::internal(DatabaseFailure(error))
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if let ApiError::Internal(cause) = &self {
            // The client gets an id to quote; the log has the cause under the same id.
            let correlation_id = uuid::Uuid::new_v4();
            tracing::error!(%correlation_id, error = ?cause, "internal error");
            return (
                status,
                Json(json!({
                    "error": format!(
                        "internal error; nothing about your request is known to be wrong. \
                         Quote {correlation_id} when you report it"
                    ),
                    "correlation_id": correlation_id,
                })),
            )
                .into_response();
        }
        let mut response = (status, Json(json!({ "error": self.to_string() }))).into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}
