//! The metrics API: `GET /api/v1/reports/{report}?from=YYYY-MM-DD&to=YYYY-MM-DD` with
//! `Authorization: Bearer SECRET_KEY` (SPEC §7, §11).
//!
//! Reports read only the rollup tables, `ad_spend` and the experiments registry (names, dates
//! and winners: no personal data), and they read them as `lux_reader` (which can read
//! nothing else) in a transaction scoped to the key's company, so both the grants and
//! row-level security stand between a report and anything it should not see. The
//! company's time zone (for "today" in the LTV reports) is the one thing read through the
//! service's own pool, since `lux_reader` cannot read `companies`.
//!
//! Every formula is on the function that computes it (and in `docs/metrics.md`):
//! [`revenue`] (revenue by channel, CAC, ROAS), [`funnel`], [`conversion`] (time to
//! conversion, qualified sessions), [`customers`] (repeat purchase, LTV rolling and by
//! cohort), [`messages`] (email and SMS), [`creatives`] (creatives, decay, fatigue),
//! [`experiments`] (per-variant results, ops velocity). How values are written: [`format`].

pub mod conversion;
pub mod creatives;
pub mod customers;
pub mod experiments;
pub mod format;
pub mod funnel;
pub mod messages;
pub mod request;
pub mod revenue;

use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

use crate::clock::Clock;
use crate::http::ApiError;
use crate::tenancy::Tenancy;
use conversion::ConversionSummary;
pub use request::{Report, ReportName, ReportRequest, RequestError};

/// The path of the reports endpoint, as axum routes it.
pub const REPORTS_PATH: &str = "/api/v1/reports/{report}";

/// Longest a report's queries may run before PostgreSQL cancels them.
const STATEMENT_TIMEOUT: &str = "30s";

/// A report taking longer than this is logged at WARN (by name and duration; faster ones at
/// DEBUG): five times the 50 ms that every report meets on the 10-million-event benchmark.
pub const SLOW_REPORT: std::time::Duration = std::time::Duration::from_millis(250);

/// What the reports endpoint uses, taken from the app's state.
#[derive(Clone)]
pub struct ReportsState {
    /// Connections that run as `lux_reader`: every report query (on the replica when there
    /// is one and it is close enough).
    pub reader: crate::db::replica::ReadPools,
    /// Connections that run as `lux_app`: the company's time zone and funnels.
    pub pool: PgPool,
    /// "Today" for the LTV reports.
    pub clock: Clock,
    pub tenancy: std::sync::Arc<Tenancy>,
}

pub fn router() -> Router<ReportsState> {
    Router::new().route(REPORTS_PATH, get(report))
}

/// Why a report could not be answered.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The request asks for something that does not exist (a 400).
    #[error(transparent)]
    Request(#[from] RequestError),
    #[error("reading the rollups")]
    Database(#[from] sqlx::Error),
    /// A rollup row the report cannot show (a bug in whatever wrote it).
    #[error("unexpected rollup data: {0}")]
    Data(String),
}

impl From<ReportError> for ApiError {
    fn from(error: ReportError) -> Self {
        match error {
            ReportError::Request(e) => ApiError::BadRequest(e.to_string()),
            // The one database policy: unavailable or busy → 503, anything else → 500.
            ReportError::Database(e) => ApiError::from(e),
            ReportError::Data(_) => ApiError::internal(error),
        }
    }
}

/// What a report answers.
#[derive(Debug, Serialize)]
pub struct ReportBody {
    pub report: &'static str,
    pub from: NaiveDate,
    pub to: NaiveDate,
    /// `time_to_conversion` only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<ConversionSummary>,
    pub rows: Value,
}

/// `GET /api/v1/reports/{report}`: the key first (401/403), then the request (400).
async fn report(
    State(state): State<ReportsState>,
    Path(report): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Json<ReportBody>, ApiError> {
    let company_id = authenticate(&state, &headers).await?;
    let request = ReportRequest::parse(&report, query.as_deref()).map_err(ReportError::from)?;
    let now = state.clock.now();
    let read = state.reader.pool();
    let body = match run(read, &state.pool, now, company_id, &request).await {
        // The replica failed where the primary may do better: it went away between two
        // checks, replay cancelled the read, or it has not replayed yet what the primary has
        // (a table a migration just added). It is only a copy for load: the primary answers.
        // Counted in `lux_replica_fallbacks_total`.
        Err(ReportError::Database(e)) => match state.reader.retry_on_primary(read, &e) {
            Some(primary) => run(primary, &state.pool, now, company_id, &request).await?,
            None => return Err(ReportError::Database(e).into()),
        },
        other => other?,
    };
    Ok(Json(body))
}

/// The company of a request's secret key. Reports are for servers and scripts.
async fn authenticate(state: &ReportsState, headers: &HeaderMap) -> Result<Uuid, ApiError> {
    let tenant = crate::tenancy::secret_key_tenant(&state.tenancy, headers, "reports need").await?;
    Ok(tenant.settings.company_id)
}

/// Runs one report for one company: every query as `lux_reader` in one transaction scoped
/// to the company (`lux.company_id`), with a statement timeout. `app` (the service's pool)
/// is only used to read the company's time zone, and `now` gives "today" in it.
#[tracing::instrument(skip_all, fields(company_id = %company_id, report = request.report.name().as_str()))]
pub async fn run(
    reader: &PgPool,
    app: &PgPool,
    now: DateTime<Utc>,
    company_id: Uuid,
    request: &ReportRequest,
) -> Result<ReportBody, ReportError> {
    let started = std::time::Instant::now();
    let body = run_statements(reader, app, now, company_id, request).await;
    let elapsed = started.elapsed();
    let name = request.report.name();
    let ms = elapsed.as_secs_f64() * 1000.0;
    if elapsed >= SLOW_REPORT {
        tracing::warn!(report = name.as_str(), %company_id, elapsed_ms = ms, ok = body.is_ok(),
                       "slow report");
    } else {
        tracing::debug!(report = name.as_str(), %company_id, elapsed_ms = ms, ok = body.is_ok(),
                        "report");
    }
    body
}

/// [`run`]'s statements.
async fn run_statements(
    reader: &PgPool,
    app: &PgPool,
    now: DateTime<Utc>,
    company_id: Uuid,
    request: &ReportRequest,
) -> Result<ReportBody, ReportError> {
    let today = match request.report {
        Report::LtvRolling | Report::LtvCohorts => Some(company_today(app, company_id, now).await?),
        _ => None,
    };
    let funnels = match request.report {
        Report::Funnel { .. } => Some(company_funnels(app, company_id).await?),
        _ => None,
    };
    let currency = match request.report {
        Report::Messages { .. } | Report::Creatives { .. } => {
            Some(company_currency(app, company_id).await?)
        }
        _ => None,
    };
    let mut tx = begin_reader(reader, company_id).await?;
    let range = request.range;
    let conn = &mut *tx;
    let mut summary = None;
    let rows = match &request.report {
        Report::RevenueByChannel { model } => {
            json!(revenue::revenue_by_channel(conn, range, *model).await?)
        }
        Report::Cac { model } => json!(revenue::cac(conn, range, *model).await?),
        Report::Roas { model, by } => json!(revenue::roas(conn, range, *model, *by).await?),
        Report::Funnel { funnel } => {
            let defined = funnels.as_ref().expect("loaded above");
            json!(funnel::funnel(conn, range, funnel, defined).await?)
        }
        Report::TimeToConversion => {
            let (totals, buckets) = conversion::time_to_conversion(conn, range).await?;
            summary = Some(totals);
            json!(buckets)
        }
        Report::QualifiedSessions => json!(conversion::qualified_sessions(conn, range).await?),
        Report::RepeatPurchase => json!(customers::repeat_purchase(conn, range).await?),
        Report::LtvRolling => {
            let today = today.expect("computed above");
            json!(customers::ltv_rolling(conn, range, today).await?)
        }
        Report::LtvCohorts => {
            let today = today.expect("computed above");
            json!(customers::ltv_cohorts(conn, range, today).await?)
        }
        Report::Messages { channel, group } => {
            let currency = currency.as_deref().expect("read above");
            json!(messages::messages(conn, range, *channel, *group, currency).await?)
        }
        Report::Creatives { model, group } => {
            let currency = currency.as_deref().expect("read above");
            json!(creatives::creatives(conn, range, *model, *group, currency).await?)
        }
        Report::CreativeDecay { creative_id } => {
            json!(creatives::creative_decay(conn, range, creative_id).await?)
        }
        Report::CreativeFatigue => json!(creatives::creative_fatigue(conn, range).await?),
        Report::Experiments { only } => {
            json!(experiments::experiments(conn, range, only.as_ref()).await?)
        }
        Report::OpsVelocity => json!(experiments::ops_velocity_report(conn, range).await?),
    };
    tx.commit().await?;
    Ok(ReportBody {
        report: request.report.name().as_str(),
        from: range.from(),
        to: range.to(),
        summary,
        rows,
    })
}

/// Opens the transaction every report (and every dashboard page) reads in: as `lux_reader`,
/// scoped to the company, read only, with the statement timeout. One snapshot for all of its
/// statements (a summary and its rows, say): a rollup run committing between them cannot
/// make them disagree.
pub async fn begin_reader(
    reader: &PgPool,
    company_id: Uuid,
) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error> {
    let mut tx = reader
        .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .await?;
    crate::db::set_company(&mut tx, company_id).await?;
    sqlx::query("SELECT set_config('statement_timeout', $1, true)")
        .bind(STATEMENT_TIMEOUT)
        .execute(&mut *tx)
        .await?;
    Ok(tx)
}

/// The company's funnels as its rollup settings define them now (read with the service's
/// pool: `lux_reader` cannot read `companies`).
pub async fn company_funnels(
    app: &PgPool,
    company_id: Uuid,
) -> Result<funnel::FunnelDefinitions, ReportError> {
    let mut tx = crate::db::begin_for_company(app, company_id).await?;
    let settings: Value =
        sqlx::query_scalar("SELECT settings FROM companies WHERE company_id = $1")
            .bind(company_id)
            .fetch_one(&mut *tx)
            .await?;
    tx.commit().await?;
    let settings = crate::rollups::settings::RollupSettings::from_company_settings(&settings)
        .map_err(|e| ReportError::Data(e.to_string()))?;
    Ok(funnel::FunnelDefinitions::new(
        settings
            .funnels()
            .into_iter()
            .map(|f| (f.name, f.steps))
            .collect(),
    ))
}

/// The company's currency: the `messages` report's rows without orders, and the `creatives`
/// report's rows without spend or revenue, show their amounts, zero, in it.
async fn company_currency(app: &PgPool, company_id: Uuid) -> Result<String, ReportError> {
    let mut tx = crate::db::begin_for_company(app, company_id).await?;
    let currency: String =
        sqlx::query_scalar("SELECT currency::text FROM companies WHERE company_id = $1")
            .bind(company_id)
            .fetch_one(&mut *tx)
            .await?;
    tx.commit().await?;
    Ok(currency)
}

/// The company's current local date, from its IANA time zone.
async fn company_today(
    app: &PgPool,
    company_id: Uuid,
    now: DateTime<Utc>,
) -> Result<NaiveDate, ReportError> {
    let mut tx = crate::db::begin_for_company(app, company_id).await?;
    let timezone: String =
        sqlx::query_scalar("SELECT timezone FROM companies WHERE company_id = $1")
            .bind(company_id)
            .fetch_one(&mut *tx)
            .await?;
    tx.commit().await?;
    let tz: chrono_tz::Tz = timezone
        .parse()
        .map_err(|_| ReportError::Data(format!("company time zone {timezone:?}")))?;
    Ok(now.with_timezone(&tz).date_naive())
}
