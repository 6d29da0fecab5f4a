//! Alert history: the alerts that were firing on a day of the range (state, rule, subject,
//! their numbers and explanation, and where they were delivered), the rows of the `alerts`
//! report ([`crate::alerts::api::history_in`]) read in the page's reader transaction.

use serde_json::Value as Json;
use sqlx::PgConnection;

use super::Context;
use crate::dashboards::DashboardError;
use crate::dashboards::chart;
use crate::dashboards::period::Params;
use crate::dashboards::view::{Cell, Column, Content, Table, Tile, Value};

/// Counts of the history's rows for the tiles.
#[derive(Debug, Default, PartialEq)]
pub struct Totals {
    pub alerts: i64,
    pub firing: i64,
    pub critical: i64,
}

impl Totals {
    pub fn of(rows: &[Json]) -> Totals {
        let count = |f: &dyn Fn(&Json) -> bool| rows.iter().filter(|r| f(r)).count() as i64;
        Totals {
            alerts: rows.len() as i64,
            firing: count(&|r| r["state"] == "firing"),
            critical: count(&|r| r["severity"] == "critical"),
        }
    }
}

pub async fn load(
    conn: &mut PgConnection,
    params: &Params,
    context: &Context,
) -> Result<Content, DashboardError> {
    let (from, to) = (params.range.from(), params.range.to());
    let rows = crate::alerts::api::history_in(&mut *conn, context.company_id, from, to).await?;
    let now = Totals::of(&rows);
    let before = match params.previous {
        Some(previous) => {
            let rows = crate::alerts::api::history_in(
                &mut *conn,
                context.company_id,
                previous.from(),
                previous.to(),
            )
            .await?;
            Some(Totals::of(&rows))
        }
        None => None,
    };
    let tile = |key, f: &dyn Fn(&Totals) -> i64| {
        Tile::new(
            key,
            Value::Count(f(&now) as f64),
            before.as_ref().map(|b| Value::Count(f(b) as f64)),
        )
    };
    let mut content = Content {
        tiles: vec![
            tile("alerts", &|t| t.alerts),
            tile("alerts_firing", &|t| t.firing),
            tile("alerts_critical", &|t| t.critical),
        ],
        ..Content::default()
    };
    if rows.is_empty() {
        content.empty = Some(
            "No alert fired in this range. Alerts are checked every morning against the \
             rollups: set who hears of them with PUT /api/v1/alerts/config, or widen the range."
                .into(),
        );
        return Ok(content);
    }
    let mut by_rule: Vec<(String, f64)> = Vec::new();
    for row in &rows {
        let rule = text(&row["rule"]);
        match by_rule.iter_mut().find(|(r, _)| *r == rule) {
            Some((_, n)) => *n += 1.0,
            None => by_rule.push((rule, 1.0)),
        }
    }
    // Every rule, the most frequent first.
    let by_rule = super::largest(by_rule, usize::MAX);
    content.charts.push(chart::bars(
        "alerts-bars",
        "Alerts by rule",
        &by_rule,
        &|v| Value::Count(v).display(),
    ));
    content.tables.push(table(&rows));
    Ok(content)
}

fn text(value: &Json) -> String {
    match value {
        Json::String(s) => s.clone(),
        Json::Null => String::new(),
        other => other.to_string(),
    }
}

/// `name: value` pairs of an alert's numbers, in the order they were stored.
fn numbers(value: &Json) -> String {
    match value.as_object() {
        Some(object) => object
            .iter()
            .map(|(k, v)| format!("{k}: {}", text(v)))
            .collect::<Vec<_>>()
            .join(", "),
        None => text(value),
    }
}

/// `email ops@… sent (1 attempt)`, one per delivery, with the last error of a failed one.
fn deliveries(value: &Json) -> String {
    let Some(list) = value.as_array() else {
        return String::new();
    };
    list.iter()
        .map(|d| {
            let mut out = format!(
                "{} {} {} ({} attempt{})",
                text(&d["channel"]),
                text(&d["target"]),
                text(&d["status"]),
                text(&d["attempts"]),
                if d["attempts"] == 1 { "" } else { "s" }
            );
            if let Some(error) = d["last_error"].as_str() {
                out.push_str(": ");
                out.push_str(error);
            }
            out
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn table(rows: &[Json]) -> Table {
    let column = Column::text;
    Table {
        key: "alerts",
        title: "Alert history".into(),
        columns: vec![
            column("Fired on", "The company's day the alert fired."),
            column("State", "firing, or resolved (and the day it resolved)."),
            column("Severity", "warning or critical."),
            column("Rule", "The rule that fired (docs/alerts.md)."),
            column(
                "Subject",
                "What the rule watched: a channel, a creative, the company.",
            ),
            column("Alert", "The alert's title as delivered."),
            column("Numbers", "The values the rule compared."),
            column("Explanation", "Why it fired and its likely driver."),
            column(
                "Deliveries",
                "Where it was sent, with each message's status.",
            ),
        ],
        rows: rows
            .iter()
            .map(|r| {
                let state = match r["resolved_on"].as_str() {
                    Some(day) => format!("{} {day}", text(&r["state"])),
                    None => text(&r["state"]),
                };
                vec![
                    Cell::Text(text(&r["fired_on"])),
                    Cell::Text(state),
                    Cell::Text(text(&r["severity"])),
                    Cell::Text(text(&r["rule"])),
                    Cell::Text(text(&r["subject"])),
                    Cell::Text(text(&r["title"])),
                    Cell::Text(numbers(&r["numbers"])),
                    Cell::Text(text(&r["explanation"])),
                    Cell::Text(deliveries(&r["deliveries"])),
                ]
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn history_rows_read_as_text() {
        let rows = vec![json!({
            "state": "firing", "severity": "critical", "rule": "revenue_anomaly",
            "numbers": {"value": "940.00", "median": "1000.00"},
            "deliveries": [{"channel": "email", "target": "ops@x.example", "status": "failed",
                            "attempts": 3, "last_error": "550"}],
        })];
        assert_eq!(
            Totals::of(&rows),
            Totals {
                alerts: 1,
                firing: 1,
                critical: 1
            }
        );
        assert_eq!(
            numbers(&rows[0]["numbers"]),
            "value: 940.00, median: 1000.00"
        );
        assert_eq!(
            deliveries(&rows[0]["deliveries"]),
            "email ops@x.example failed (3 attempts): 550"
        );
    }
}
