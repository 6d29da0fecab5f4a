//! Creatives (SPEC §8.2, issue 16): the ads a company runs, grouped by concept and angle, and
//! whether each one is wearing out.
//!
//! - [`catalog`]: `lux import creatives`, the catalog of a company's creatives (table
//!   `creatives`), upserted from a CSV; [`api`]: the same rows through
//!   `POST /api/v1/creatives` (secret key), checked by the same code.
//! - [`fatigue`]: the pure core, a creative's daily impressions and clicks → `fresh`,
//!   `watch`, `fatigued` or `insufficient_data`, with the numbers behind the verdict and a
//!   sentence saying why. No database, HTTP or state.
//! - [`history`]: the daily fatigue job (`lux jobs run creative_fatigue`), [`fatigue::assess`]
//!   as of each local day over the creative rollups (`rollup_creative_days`, written by
//!   `rollups::creatives`), kept per day in `creative_fatigue_history`.
//!
//! The `creatives`, `creative_decay` and `creative_fatigue` reports are in `reports`.
//!
//! The statistics and the reason for each threshold are in `docs/metrics.md` ("Creative
//! fatigue").

pub mod api;
pub mod catalog;
pub mod fatigue;
pub mod history;

use std::sync::Arc;

use sqlx::PgPool;

use crate::tenancy::Tenancy;

pub use api::router;

/// What `POST /api/v1/creatives` uses, taken from the app's state.
#[derive(Clone)]
pub struct CreativesState {
    /// Connections that run as `lux_app` (row-level security applies).
    pub pool: PgPool,
    pub tenancy: Arc<Tenancy>,
}
