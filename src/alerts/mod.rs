//! Alerts and insights (SPEC §8.4): six rules evaluated on the rollups for one company-local
//! day, explained in plain words, kept as a state machine (ok → firing → resolved per rule and
//! subject) and delivered by email and Slack from a durable outbox.
//!
//! - [`config`]: the rules, their defaults, and each company's settings (recipients, quiet
//!   hours, overrides), with `GET/PUT /api/v1/alerts/config`.
//! - [`rules`]: what each rule reads and computes, and the explanation it gives.
//! - [`state`]: one evaluation: findings → firings and resolutions → outbox rows.
//! - [`render`]: the messages (email text and HTML, Slack).
//! - [`delivery`]: the outbox worker (SMTP with lettre, Slack webhooks), back-off, quiet hours.
//! - [`api`]: the HTTP surface (config, and the `alerts` report).
//!
//! Formulas, defaults and reasons: `docs/alerts.md`.

pub mod api;
pub mod config;
pub mod delivery;
pub mod render;
pub mod rules;
pub mod state;

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::PgPool;
use uuid::Uuid;

pub use config::{AlertSettings, Rule, RuleConfig};
pub use delivery::{DeliveryOptions, SmtpSettings};
pub use state::{Evaluation, Trigger};

/// Why alert work failed.
#[derive(Debug, thiserror::Error)]
pub enum AlertError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("company {0} does not exist")]
    NoCompany(Uuid),
    #[error("company time zone {0:?} is not an IANA time zone")]
    TimeZone(String),
    #[error("stored alert settings are invalid: {0}")]
    Settings(String),
}

/// What every evaluation needs besides the database: where the dashboard links point, and
/// the counters `/metrics` shows.
#[derive(Clone, Default)]
pub struct AlertOptions {
    /// `LUX_PUBLIC_URL`: dashboard links are `{public_url}/app/{company_id}/{page}`.
    pub public_url: Option<url::Url>,
    pub counters: crate::telemetry::AlertCounters,
}

/// The company facts an evaluation and its messages use.
#[derive(Debug, Clone)]
pub struct Company {
    pub id: Uuid,
    pub name: String,
    pub timezone: chrono_tz::Tz,
    pub currency: String,
}

impl Company {
    pub async fn load(pool: &PgPool, company_id: Uuid) -> Result<Company, AlertError> {
        let mut tx = crate::db::begin_for_company(pool, company_id).await?;
        let row: Option<(String, String, String)> = sqlx::query_as(
            "SELECT name, timezone, currency::text FROM companies WHERE company_id = $1",
        )
        .bind(company_id)
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        let (name, timezone, currency) = row.ok_or(AlertError::NoCompany(company_id))?;
        let timezone = timezone
            .parse()
            .map_err(|_| AlertError::TimeZone(timezone.clone()))?;
        Ok(Company {
            id: company_id,
            name,
            timezone,
            currency,
        })
    }

    /// The company's local day before the one `now` falls on: the last complete day.
    pub fn yesterday(&self, now: DateTime<Utc>) -> NaiveDate {
        now.with_timezone(&self.timezone).date_naive() - chrono::Days::new(1)
    }
}

/// The scheduler's step after the daily rollups: once the company's local clock has passed
/// its morning hour, evaluate yesterday, once (a later tick finds the run recorded). Returns
/// the evaluation when one ran.
pub async fn run_scheduled(
    pool: &PgPool,
    company_id: Uuid,
    now: DateTime<Utc>,
    options: &AlertOptions,
) -> Result<Option<Evaluation>, AlertError> {
    let company = Company::load(pool, company_id).await?;
    let settings = AlertSettings::load(pool, company_id).await?;
    let local = now.with_timezone(&company.timezone);
    if chrono::Timelike::hour(&local) < u32::from(settings.morning_hour) {
        return Ok(None);
    }
    let day = company.yesterday(now);
    if state::scheduled_run_exists(pool, company_id, day).await? {
        return Ok(None);
    }
    let evaluation = state::evaluate(
        pool,
        (&company, &settings),
        day,
        now,
        Trigger::Schedule,
        options,
    )
    .await?;
    Ok(Some(evaluation))
}

/// `lux alerts check`: evaluates `day` (default: yesterday in the company's zone) now, then
/// delivers whatever of this company's outbox is due.
pub async fn check(
    pool: &PgPool,
    company_id: Uuid,
    day: Option<NaiveDate>,
    now: DateTime<Utc>,
    (options, delivery): (&AlertOptions, &DeliveryOptions),
) -> Result<(Evaluation, delivery::Pass), AlertError> {
    let company = Company::load(pool, company_id).await?;
    let settings = AlertSettings::load(pool, company_id).await?;
    let day = day.unwrap_or_else(|| company.yesterday(now));
    let evaluation = state::evaluate(
        pool,
        (&company, &settings),
        day,
        now,
        Trigger::Manual,
        options,
    )
    .await?;
    let pass = delivery::deliver_due(pool, company_id, now, delivery, &options.counters).await?;
    Ok((evaluation, pass))
}

/// `lux alerts test`: a test message to every configured target through the outbox, sent now
/// (an operator is waiting for it: quiet hours do not apply).
pub async fn send_test(
    pool: &PgPool,
    company_id: Uuid,
    now: DateTime<Utc>,
    (options, delivery): (&AlertOptions, &DeliveryOptions),
) -> Result<(usize, delivery::Pass), AlertError> {
    let company = Company::load(pool, company_id).await?;
    let settings = AlertSettings::load(pool, company_id).await?;
    let message = render::test_message(&company, &state::app_link(options, company_id));
    let mut tx = crate::db::begin_for_company(pool, company_id).await?;
    let enqueued = state::enqueue(&mut tx, company_id, None, &settings, &message, now, now).await?;
    tx.commit().await?;
    let pass = delivery::deliver_due(pool, company_id, now, delivery, &options.counters).await?;
    Ok((enqueued, pass))
}
