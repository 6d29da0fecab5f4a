//! `/api/v1/experiments` (secret key): the registry over HTTP, the same operations as
//! `lux experiments`.
//!
//! - `POST /api/v1/experiments` `{"key","name","primary_event","hypothesis"?,"started_on"?}`:
//!   201 with the experiment; the same body again: 200 with it; the key with other values: 409.
//! - `GET /api/v1/experiments`: `{"experiments": [...]}`.
//! - `POST /api/v1/experiments/{key}/conclude` `{"winner": "b"}` or `{"no_winner": true}`,
//!   optional `"ended_on"`: 200 with the experiment; unknown key: 404; concluded otherwise
//!   before: 409.

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use chrono::NaiveDate;
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::Variant;
use super::registry::{self, Created, Experiment, NewExperiment, Outcome, RegistryError};
use crate::clock::Clock;
use crate::http::ApiError;
use crate::tenancy::Tenancy;

pub const EXPERIMENTS_PATH: &str = "/api/v1/experiments";
pub const CONCLUDE_PATH: &str = "/api/v1/experiments/{key}/conclude";

/// What the experiments endpoints use, taken from the app's state.
#[derive(Clone)]
pub struct ExperimentsState {
    /// Connections that run as `lux_app`.
    pub pool: sqlx::PgPool,
    /// "Today" for a start or end left to the default.
    pub clock: Clock,
    pub tenancy: Arc<Tenancy>,
}

pub fn router() -> Router<ExperimentsState> {
    Router::new()
        .route(EXPERIMENTS_PATH, post(create).get(list))
        .route(CONCLUDE_PATH, post(conclude))
}

impl From<RegistryError> for ApiError {
    fn from(error: RegistryError) -> Self {
        match error {
            RegistryError::Invalid(_)
            | RegistryError::EndedBeforeStart { .. }
            | RegistryError::EndsInFuture { .. } => ApiError::BadRequest(error.to_string()),
            RegistryError::Unknown(_) => ApiError::Missing(error.to_string()),
            RegistryError::Duplicate { .. } | RegistryError::AlreadyConcluded { .. } => {
                ApiError::Conflict(error.to_string())
            }
            RegistryError::Database(e) => ApiError::from(e),
            RegistryError::Stored(_) => ApiError::internal(error),
        }
    }
}

async fn company(state: &ExperimentsState, headers: &HeaderMap) -> Result<Uuid, ApiError> {
    let tenant =
        crate::tenancy::secret_key_tenant(&state.tenancy, headers, "experiments need").await?;
    Ok(tenant.settings.company_id)
}

/// A JSON body that did not read, as a 400 naming what was expected.
fn body<T>(body: Result<Json<T>, JsonRejection>, expected: &str) -> Result<T, ApiError> {
    body.map(|Json(b)| b).map_err(|rejection| {
        ApiError::BadRequest(format!("{}; expected {expected}", rejection.body_text()))
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    key: String,
    name: String,
    primary_event: String,
    hypothesis: Option<String>,
    started_on: Option<NaiveDate>,
}

const CREATE_SHAPE: &str = "a JSON object {\"key\", \"name\", \"primary_event\", \
                            \"hypothesis\" (optional), \"started_on\": \"YYYY-MM-DD\" (optional)}";

async fn create(
    State(state): State<ExperimentsState>,
    headers: HeaderMap,
    request: Result<Json<CreateBody>, JsonRejection>,
) -> Result<(StatusCode, Json<Experiment>), ApiError> {
    let company_id = company(&state, &headers).await?;
    let b = body(request, CREATE_SHAPE)?;
    let new = NewExperiment::parse(
        &b.key,
        &b.name,
        &b.primary_event,
        b.hypothesis.as_deref(),
        b.started_on,
    )?;
    let (created, experiment) =
        registry::create(&state.pool, company_id, &new, state.clock.now()).await?;
    let status = match created {
        Created::New => StatusCode::CREATED,
        Created::Existing => StatusCode::OK,
    };
    Ok((status, Json(experiment)))
}

async fn list(
    State(state): State<ExperimentsState>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let company_id = company(&state, &headers).await?;
    let experiments = registry::list(&state.pool, company_id).await?;
    Ok(Json(json!({ "experiments": experiments })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConcludeBody {
    winner: Option<String>,
    #[serde(default)]
    no_winner: bool,
    ended_on: Option<NaiveDate>,
}

const CONCLUDE_SHAPE: &str = "a JSON object {\"winner\": \"VARIANT\"} or {\"no_winner\": true}, \
                              with \"ended_on\": \"YYYY-MM-DD\" optional";

impl ConcludeBody {
    fn outcome(&self) -> Result<Outcome, ApiError> {
        match (&self.winner, self.no_winner) {
            (Some(w), false) => Variant::parse(w)
                .map(Outcome::Winner)
                .map_err(|e| ApiError::BadRequest(format!("winner: {e}"))),
            (None, true) => Ok(Outcome::NoWinner),
            _ => Err(ApiError::BadRequest(format!(
                "say how it ended: either a winner or no_winner; send {CONCLUDE_SHAPE}"
            ))),
        }
    }
}

async fn conclude(
    State(state): State<ExperimentsState>,
    Path(key): Path<String>,
    headers: HeaderMap,
    request: Result<Json<ConcludeBody>, JsonRejection>,
) -> Result<Json<Experiment>, ApiError> {
    let company_id = company(&state, &headers).await?;
    let b = body(request, CONCLUDE_SHAPE)?;
    let outcome = b.outcome()?;
    let experiment = registry::conclude(
        &state.pool,
        company_id,
        &key,
        &outcome,
        b.ended_on,
        state.clock.now(),
    )
    .await?;
    Ok(Json(experiment))
}
