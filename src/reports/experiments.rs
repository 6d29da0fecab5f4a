//! The `experiments` and `ops_velocity` reports (SPEC §8.3, §11): per-variant results from
//! `rollup_experiment_variants` with each experiment's registry row (`experiments`), and ops
//! velocity per month from the registry. The statistics are `experiments::stats` and
//! `experiments::velocity`; the formulas are in `docs/metrics.md` ("Experiments").

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::Serialize;
use sqlx::PgConnection;

use super::ReportError;
use super::format::ratio;
use super::request::DateRange;
use crate::experiments::stats::{Counts, results_from_counts};
use crate::experiments::velocity::{YearMonth, ops_velocity};
use crate::experiments::{ExperimentKey, Variant};

/// The name of the variant that is the control when an experiment has one by that name.
pub const CONTROL: &str = "control";

/// One variant of one experiment (or, for an experiment nobody was exposed to yet, one row
/// with `variant` null and zeros).
#[derive(Debug, Serialize)]
pub struct ExperimentRow {
    pub key: String,
    pub name: String,
    pub status: String,
    pub primary_event: String,
    pub started_on: NaiveDate,
    pub ended_on: Option<NaiveDate>,
    pub variant: Option<Variant>,
    pub is_control: bool,
    pub exposed: u64,
    pub converted: u64,
    pub rate: Option<f64>,
    pub uplift: Option<f64>,
    pub ci_low: Option<f64>,
    pub ci_high: Option<f64>,
    pub p_value: Option<f64>,
    /// The experiment's winner as concluded (null while running or with no winner).
    pub winner: Option<String>,
}

#[derive(sqlx::FromRow)]
struct Registered {
    key: String,
    name: String,
    status: String,
    primary_event: String,
    started_on: NaiveDate,
    ended_on: Option<NaiveDate>,
    winner: Option<String>,
}

#[derive(sqlx::FromRow)]
struct VariantCounts {
    experiment: String,
    variant: String,
    exposed: i32,
    converted: i32,
}

/// The experiments that ran during the range (started on or before `to`, not ended before
/// `from`), optionally only `only`, each with every variant's results over the whole
/// experiment (its dates, not the range's: a test is read whole). Per experiment the control
/// comes first, then the other variants by name; experiments by start day, then key.
///
/// The control is the variant named `control`, or else the variant exposed first (the
/// earliest first exposure of its visitors; equal times: the smaller name). Every other
/// variant is compared with it: uplift = (rate − control rate) ÷ control rate; `ci_low` and
/// `ci_high` = the 95 % unpooled Wald interval of rate − control rate; `p_value` = the
/// two-sided pooled two-proportion z-test.
pub async fn experiments(
    conn: &mut PgConnection,
    range: DateRange,
    only: Option<&ExperimentKey>,
) -> Result<Vec<ExperimentRow>, ReportError> {
    let registered: Vec<Registered> = sqlx::query_as(
        "SELECT key, name, status, primary_event, started_on, ended_on, winner
         FROM experiments
         WHERE started_on <= $2 AND (ended_on IS NULL OR ended_on >= $1)
           AND ($3::text IS NULL OR key = $3)
         ORDER BY started_on, key",
    )
    .bind(range.from())
    .bind(range.to())
    .bind(only.map(AsRef::as_ref))
    .fetch_all(&mut *conn)
    .await?;
    let keys: Vec<&str> = registered.iter().map(|r| r.key.as_str()).collect();
    // Ordered by first exposure, so the first row of an experiment is the fallback control.
    let counts: Vec<VariantCounts> = sqlx::query_as(
        "SELECT experiment, variant, exposed, converted
         FROM rollup_experiment_variants
         WHERE experiment = ANY($1)
         ORDER BY experiment, first_exposed_at, variant COLLATE \"C\"",
    )
    .bind(&keys)
    .fetch_all(&mut *conn)
    .await?;
    let mut by_experiment: BTreeMap<&str, Vec<&VariantCounts>> = BTreeMap::new();
    for c in &counts {
        by_experiment
            .entry(c.experiment.as_str())
            .or_default()
            .push(c);
    }
    let mut rows = Vec::new();
    for experiment in &registered {
        let variants = by_experiment
            .get(experiment.key.as_str())
            .map(Vec::as_slice)
            .unwrap_or_default();
        rows.extend(experiment_rows(experiment, variants)?);
    }
    Ok(rows)
}

fn experiment_rows(
    e: &Registered,
    variants: &[&VariantCounts],
) -> Result<Vec<ExperimentRow>, ReportError> {
    let row = |variant: Option<Variant>, is_control: bool| ExperimentRow {
        key: e.key.clone(),
        name: e.name.clone(),
        status: e.status.clone(),
        primary_event: e.primary_event.clone(),
        started_on: e.started_on,
        ended_on: e.ended_on,
        variant,
        is_control,
        exposed: 0,
        converted: 0,
        rate: None,
        uplift: None,
        ci_low: None,
        ci_high: None,
        p_value: None,
        winner: e.winner.clone(),
    };
    let Some(first) = variants.first() else {
        return Ok(vec![row(None, false)]);
    };
    let mut counts: BTreeMap<Variant, Counts> = BTreeMap::new();
    for v in variants {
        let name = Variant::parse(&v.variant)
            .map_err(|err| ReportError::Data(format!("experiment {:?} variant: {err}", e.key)))?;
        let c = Counts::new(v.exposed.max(0) as u64, v.converted.max(0) as u64)
            .map_err(|err| ReportError::Data(format!("experiment {:?}: {err}", e.key)))?;
        counts.insert(name, c);
    }
    let control = match Variant::parse(CONTROL) {
        Ok(c) if counts.contains_key(&c) => c,
        _ => Variant::parse(&first.variant)
            .map_err(|err| ReportError::Data(format!("experiment {:?}: {err}", e.key)))?,
    };
    Ok(results_from_counts(&control, &counts)
        .into_iter()
        .map(|r| {
            let interval = r.difference_interval();
            let c = r.counts();
            ExperimentRow {
                exposed: c.exposed(),
                converted: c.converted(),
                rate: ratio(c.converted() as i64, c.exposed() as i64),
                uplift: r.uplift().map(round4),
                ci_low: interval.map(|i| round4(i.low())),
                ci_high: interval.map(|i| round4(i.high())),
                p_value: r.p_value().map(round4),
                ..row(Some(r.variant().clone()), r.is_control())
            }
        })
        .collect())
}

/// Rounded half away from zero to 4 decimals, like every ratio of the reports.
fn round4(x: f64) -> f64 {
    (x * 1e4).round() / 1e4
}

/// One month of ops velocity.
#[derive(Debug, Serialize)]
pub struct VelocityRow {
    /// `YYYY-MM`.
    pub month: YearMonth,
    pub launched: u64,
    pub concluded: u64,
    pub won: u64,
    /// won ÷ concluded; null in a month that concluded nothing.
    pub win_rate: Option<f64>,
    /// Median of (ended_on − started_on) in days over the experiments concluded this month.
    pub median_duration_days: Option<f64>,
}

/// Ops velocity for the months the range touches (every month, empty ones with zeros): an
/// experiment is launched in the month of `started_on` and concluded in the month of
/// `ended_on`; `win_rate` = concluded with a winner ÷ concluded.
pub async fn ops_velocity_report(
    conn: &mut PgConnection,
    range: DateRange,
) -> Result<Vec<VelocityRow>, ReportError> {
    let experiments: Vec<crate::experiments::registry::Experiment> = sqlx::query_as(
        "SELECT key, name, hypothesis, primary_event, started_on, ended_on, status, winner
         FROM experiments",
    )
    .fetch_all(&mut *conn)
    .await?;
    let records = experiments
        .iter()
        .map(|e| e.record())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ReportError::Data(e.to_string()))?;
    let (first, last) = (YearMonth::of(range.from()), YearMonth::of(range.to()));
    let known = ops_velocity(&records);
    // Months of the range before the first or after the last experiment: zeros.
    let months = std::iter::successors(Some(first), |m| Some(m.next())).take_while(|m| *m <= last);
    Ok(months
        .map(|month| match known.iter().find(|v| v.month == month) {
            Some(v) => VelocityRow {
                month,
                launched: v.launched,
                concluded: v.concluded,
                won: v.won,
                win_rate: ratio(v.won as i64, v.concluded as i64),
                median_duration_days: v.median_days,
            },
            None => VelocityRow {
                month,
                launched: 0,
                concluded: 0,
                won: 0,
                win_rate: None,
                median_duration_days: None,
            },
        })
        .collect())
}
