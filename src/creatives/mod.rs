//! Creatives (SPEC §8.2, issue 16): the ads a company runs, grouped by concept and angle, and
//! whether each one is wearing out.
//!
//! - [`catalog`]: `lux import creatives`, the catalog of a company's creatives (table
//!   `creatives`), upserted from a CSV.
//!
//! The fatigue core has no database, HTTP or application state, so the daily job, the
//! `creative_fatigue` report and the alert can be plugged around it later:
//!
//! - [`fatigue`]: a creative's daily impressions and clicks → `fresh`, `watch`, `fatigued` or
//!   `insufficient_data`, with the numbers behind the verdict and a sentence saying why.
//!
//! The statistics and the reason for each threshold are in `docs/metrics.md` ("Creative
//! fatigue").

pub mod catalog;
pub mod fatigue;
