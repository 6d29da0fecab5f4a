//! The app root: the state every domain's state is derived from, and the root router that
//! merges the domains' routers with the health checks, `/metrics`, the OpenAPI document and
//! the layers every route shares (tracing without personal data, JSON errors for 404/405 and
//! panics). Domains never import this module.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{FromRef, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;
use sqlx::PgPool;
use tower_http::LatencyUnit;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::compression::CompressionLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};

use crate::alerts::api::AlertsState;
use crate::analytics::writer::Writer;
use crate::analytics::{IngestOptions, IngestState};
use crate::clock::Clock;
use crate::commerce::WebhookState;
use crate::commerce::secrets::SecretsKey;
use crate::creatives::CreativesState;
use crate::dashboards::DashboardsState;
use crate::experiments::api::ExperimentsState;
use crate::http::ApiError;
use crate::messages::{MessagesOptions, MessagesState};
use crate::privacy::IpHasher;
use crate::privacy::api::PrivacyState;
use crate::reports::ReportsState;
use crate::telemetry::IngestMetrics;
use crate::tenancy::Tenancy;

/// Everything the service shares between requests. Each domain takes only its part, through
/// `FromRef` (below).
#[derive(Clone)]
pub struct AppState {
    /// Connections that run as `lux_app` (row-level security applies).
    pub pool: PgPool,
    /// Connections that run as `lux_reader` (rollups only): the metrics API's queries, on
    /// the replica when there is one and it is close enough.
    pub reader: crate::db::replica::ReadPools,
    /// "Now", for every decision about time (fixed in tests).
    pub clock: Clock,
    pub tenancy: Arc<Tenancy>,
    pub writer: Writer,
    pub ip_hasher: Arc<IpHasher>,
    pub metrics: Arc<IngestMetrics>,
    /// Decrypts webhook secrets; `None` when the server has no LUX_SECRETS_KEY.
    pub secrets_key: Option<SecretsKey>,
    pub ingest: Arc<IngestOptions>,
    pub messages: Arc<MessagesOptions>,
}

impl FromRef<AppState> for IngestState {
    fn from_ref(app: &AppState) -> Self {
        IngestState {
            pool: app.pool.clone(),
            clock: app.clock,
            tenancy: app.tenancy.clone(),
            writer: app.writer.clone(),
            ip_hasher: app.ip_hasher.clone(),
            metrics: app.metrics.clone(),
            options: app.ingest.clone(),
        }
    }
}

impl FromRef<AppState> for WebhookState {
    fn from_ref(app: &AppState) -> Self {
        WebhookState {
            pool: app.pool.clone(),
            clock: app.clock,
            secrets_key: app.secrets_key.clone(),
        }
    }
}

impl FromRef<AppState> for MessagesState {
    fn from_ref(app: &AppState) -> Self {
        MessagesState {
            pool: app.pool.clone(),
            clock: app.clock,
            tenancy: app.tenancy.clone(),
            secrets_key: app.secrets_key.clone(),
            options: app.messages.clone(),
        }
    }
}

impl FromRef<AppState> for AlertsState {
    fn from_ref(app: &AppState) -> Self {
        AlertsState {
            pool: app.pool.clone(),
            reader: app.reader.clone(),
            tenancy: app.tenancy.clone(),
        }
    }
}

impl FromRef<AppState> for PrivacyState {
    fn from_ref(app: &AppState) -> Self {
        PrivacyState {
            pool: app.pool.clone(),
            clock: app.clock,
            tenancy: app.tenancy.clone(),
        }
    }
}

impl FromRef<AppState> for ReportsState {
    fn from_ref(app: &AppState) -> Self {
        ReportsState {
            reader: app.reader.clone(),
            pool: app.pool.clone(),
            clock: app.clock,
            tenancy: app.tenancy.clone(),
        }
    }
}

impl FromRef<AppState> for CreativesState {
    fn from_ref(app: &AppState) -> Self {
        CreativesState {
            pool: app.pool.clone(),
            tenancy: app.tenancy.clone(),
        }
    }
}

impl FromRef<AppState> for ExperimentsState {
    fn from_ref(app: &AppState) -> Self {
        ExperimentsState {
            pool: app.pool.clone(),
            clock: app.clock,
            tenancy: app.tenancy.clone(),
        }
    }
}

impl FromRef<AppState> for DashboardsState {
    fn from_ref(app: &AppState) -> Self {
        DashboardsState {
            pool: app.pool.clone(),
            reader: app.reader.clone(),
            clock: app.clock,
            ip_hasher: app.ip_hasher.clone(),
            secure_cookies: app
                .messages
                .public_url
                .as_ref()
                .is_some_and(|url| url.scheme() == "https"),
            trust_proxy: app.ingest.trust_proxy,
        }
    }
}

/// The whole HTTP surface.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .merge(crate::analytics::router().with_state(IngestState::from_ref(&state)))
        .merge(crate::commerce::router().with_state(WebhookState::from_ref(&state)))
        .merge(crate::messages::router().with_state(MessagesState::from_ref(&state)))
        .merge(crate::reports::router().with_state(ReportsState::from_ref(&state)))
        .merge(crate::creatives::router().with_state(CreativesState::from_ref(&state)))
        .merge(crate::experiments::api::router().with_state(ExperimentsState::from_ref(&state)))
        .merge(crate::alerts::api::router().with_state(AlertsState::from_ref(&state)))
        .merge(crate::privacy::api::router().with_state(PrivacyState::from_ref(&state)))
        .merge(crate::dashboards::router().with_state(DashboardsState::from_ref(&state)))
        .merge(super::openapi::router())
        .fallback(|| async { ApiError::NotFound })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .with_state(state)
        // One span per request with the method and the matched route (`/webhooks/stripe/{company_id}`,
        // not the path): no query string (it may hold a key), no headers, no client address.
        // At debug level a line per answer gives its status and latency.
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|request: &axum::http::Request<_>| {
                    let route = request
                        .extensions()
                        .get::<axum::extract::MatchedPath>()
                        .map_or("(no route)", |path| path.as_str());
                    tracing::info_span!("http", method = %request.method(), route)
                })
                .on_response(
                    DefaultOnResponse::new()
                        .level(tracing::Level::DEBUG)
                        .latency_unit(LatencyUnit::Micros),
                ),
        )
        // Text answers (pages, CSV, JSON, /lux.js) gzipped when the client accepts it;
        // tower-http leaves small bodies and images alone.
        .layer(CompressionLayer::new())
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::internal("handler panicked").into_response()
        }))
}

/// The process is up.
async fn healthz() -> Response {
    axum::Json(json!({ "status": "ok" })).into_response()
}

/// Prometheus scrape endpoint (OpenMetrics text). Holds no tenant data: the overdue privacy
/// requests are one count across companies.
async fn metrics(State(state): State<AppState>) -> Response {
    state
        .metrics
        .queue_depth
        .set(state.writer.queue_depth() as i64);
    if let Some(replica) = state.reader.status() {
        state.metrics.replica_in_use.set(i64::from(replica.in_use));
        state
            .metrics
            .replica_lag_seconds
            .set(replica.lag_seconds.unwrap_or(f64::NAN));
        state
            .metrics
            .replica_lag_bytes
            .set(i64::try_from(replica.lag_bytes).unwrap_or(i64::MAX));
    }
    let today = state.clock.now().date_naive();
    let overdue = crate::privacy::requests::overdue_count(&state.pool, today);
    // A scrape must answer even when the database does not: the gauge keeps its last value.
    if let Ok(Ok(count)) = tokio::time::timeout(Duration::from_secs(2), overdue).await {
        state.metrics.privacy_requests_overdue.set(count);
    }
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(&state.pool),
    )
        .into_response()
}

/// The database answers.
async fn readyz(State(state): State<AppState>) -> Response {
    let ping = sqlx::query("SELECT 1").execute(&state.pool);
    match tokio::time::timeout(Duration::from_secs(2), ping).await {
        Ok(Ok(_)) => axum::Json(json!({ "status": "ready" })).into_response(),
        _ => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({ "error": "database unavailable" })),
        )
            .into_response(),
    }
}
