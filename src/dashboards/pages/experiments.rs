//! Experiments & ops velocity: the experiments that ran in the range with each variant's
//! results (the `experiments` report), and how fast the team tests (the `ops_velocity`
//! report: launched, concluded, won per month, win rate).

use std::collections::HashSet;

use sqlx::PgConnection;

use super::Context;
use crate::dashboards::DashboardError;
use crate::dashboards::chart;
use crate::dashboards::period::Params;
use crate::dashboards::view::{Cell, Column, Content, Table, Tile, Value};
use crate::reports::experiments::{ExperimentRow, VelocityRow, experiments, ops_velocity_report};
use crate::reports::format::ratio;
use crate::reports::request::DateRange;

/// The tiles' numbers over one range.
#[derive(Debug, Default, PartialEq)]
pub struct Totals {
    /// Experiments that ran on a day of the range.
    pub experiments: i64,
    pub launched: i64,
    pub concluded: i64,
    pub won: i64,
}

impl Totals {
    pub fn of(rows: &[ExperimentRow], velocity: &[VelocityRow]) -> Totals {
        let keys: HashSet<&str> = rows.iter().map(|r| r.key.as_str()).collect();
        Totals {
            experiments: keys.len() as i64,
            launched: velocity.iter().map(|v| v.launched as i64).sum(),
            concluded: velocity.iter().map(|v| v.concluded as i64).sum(),
            won: velocity.iter().map(|v| v.won as i64).sum(),
        }
    }

    pub fn win_rate(&self) -> Option<f64> {
        ratio(self.won, self.concluded)
    }
}

async fn read(
    conn: &mut PgConnection,
    range: DateRange,
) -> Result<(Vec<ExperimentRow>, Vec<VelocityRow>), DashboardError> {
    let rows = experiments(&mut *conn, range, None).await?;
    let velocity = ops_velocity_report(&mut *conn, range).await?;
    Ok((rows, velocity))
}

pub async fn load(
    conn: &mut PgConnection,
    params: &Params,
    _context: &Context,
) -> Result<Content, DashboardError> {
    let (rows, velocity) = read(&mut *conn, params.range).await?;
    let now = Totals::of(&rows, &velocity);
    let before = match params.previous {
        Some(previous) => {
            let (rows, velocity) = read(&mut *conn, previous).await?;
            Some(Totals::of(&rows, &velocity))
        }
        None => None,
    };
    let tile = |key, f: &dyn Fn(&Totals) -> Value| Tile::new(key, f(&now), before.as_ref().map(f));
    let count = |n: i64| Value::Count(n as f64);
    let mut content = Content {
        tiles: vec![
            tile("experiments_run", &|t| count(t.experiments)),
            tile("experiments_launched", &|t| count(t.launched)),
            tile("experiments_concluded", &|t| count(t.concluded)),
            tile("experiments_win_rate", &|t| Value::rate(t.win_rate())),
        ],
        ..Content::default()
    };
    if rows.is_empty() && now.launched == 0 && now.concluded == 0 {
        content.empty = Some(
            "No experiment ran in this range. Register one with POST /api/v1/experiments and \
             send its exposures from the snippet (lux.expose), or widen the range."
                .into(),
        );
        return Ok(content);
    }
    let bars: Vec<(String, f64)> = velocity
        .iter()
        .map(|v| (v.month.to_string(), v.launched as f64))
        .collect();
    if bars.iter().any(|(_, n)| *n > 0.0) {
        content.charts.push(chart::bars(
            "velocity-bars",
            "Experiments launched per month",
            &bars,
            &|v| Value::Count(v).display(),
        ));
    }
    let uplift: Vec<(String, f64)> = rows
        .iter()
        .filter(|r| !r.is_control)
        .filter_map(|r| {
            let variant = r
                .variant
                .as_ref()
                .map(|v| v.to_string())
                .unwrap_or_default();
            r.rate.map(|rate| (format!("{} · {variant}", r.key), rate))
        })
        .take(10)
        .collect();
    if !uplift.is_empty() {
        content.charts.push(chart::bars(
            "variants-bars",
            "Conversion rate of the variants",
            &uplift,
            &|v| Value::Rate(v).display(),
        ));
    }
    content.tables.push(experiment_table(&rows));
    content.tables.push(velocity_table(&velocity));
    Ok(content)
}

fn experiment_table(rows: &[ExperimentRow]) -> Table {
    let text = |s: &str| Cell::Text(s.to_string());
    Table {
        key: "experiments",
        title: "Experiments".into(),
        columns: vec![
            Column::text("Experiment", "The experiment's key."),
            Column::text("Status", "running or concluded, and the winner."),
            Column::text("Started", "The first day of the experiment."),
            Column::text("Variant", "The variant (the control first)."),
            Column::metric("experiment_exposed"),
            Column::metric("experiment_converted"),
            Column::metric("experiment_rate"),
            Column::metric("experiment_uplift"),
            Column::metric("experiment_p_value"),
        ],
        rows: rows
            .iter()
            .map(|r| {
                let status = match &r.winner {
                    Some(w) => format!("{} (winner {w})", r.status),
                    None => r.status.clone(),
                };
                let variant = r
                    .variant
                    .as_ref()
                    .map(|v| v.to_string())
                    .unwrap_or_default();
                vec![
                    text(&r.key),
                    Cell::Text(status),
                    Cell::Text(r.started_on.to_string()),
                    Cell::Text(if r.is_control && variant != "control" {
                        format!("{variant} (control)")
                    } else {
                        variant
                    }),
                    Cell::Value(Value::Count(r.exposed as f64)),
                    Cell::Value(Value::Count(r.converted as f64)),
                    Cell::Value(Value::rate(r.rate)),
                    Cell::Value(Value::rate(r.uplift)),
                    Cell::Value(r.p_value.map_or(Value::None, Value::PValue)),
                ]
            })
            .collect(),
    }
}

fn velocity_table(velocity: &[VelocityRow]) -> Table {
    Table {
        key: "velocity",
        title: "Ops velocity".into(),
        columns: vec![
            Column::text("Month", "YYYY-MM."),
            Column::metric("experiments_launched"),
            Column::metric("experiments_concluded"),
            Column {
                numeric: true,
                ..Column::text("Won", "Concluded with a winner.")
            },
            Column::metric("experiments_win_rate"),
            Column {
                numeric: true,
                ..Column::text(
                    "Median duration (days)",
                    "Median of end − start over the experiments concluded in the month.",
                )
            },
        ],
        rows: velocity
            .iter()
            .map(|v| {
                vec![
                    Cell::Text(v.month.to_string()),
                    Cell::Value(Value::Count(v.launched as f64)),
                    Cell::Value(Value::Count(v.concluded as f64)),
                    Cell::Value(Value::Count(v.won as f64)),
                    Cell::Value(Value::rate(v.win_rate)),
                    Cell::Value(v.median_duration_days.map_or(Value::None, Value::Count)),
                ]
            })
            .collect(),
    }
}
