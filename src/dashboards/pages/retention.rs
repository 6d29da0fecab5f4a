//! Retention & cohorts: repeat purchase rate, rolling LTV, and the cohort heat map
//! (cumulative LTV by first-order month and months since), all from the report functions.

use std::collections::BTreeMap;

use sqlx::PgConnection;

use super::Context;
use crate::dashboards::DashboardError;
use crate::dashboards::chart;
use crate::dashboards::period::Params;
use crate::dashboards::view::{Cell, Column, Content, Table, Tile, Value};
use crate::reports::customers::{RepeatRow, RollingRow, ltv_cohorts, ltv_rolling, repeat_purchase};

fn ltv(rows: &[RollingRow], days: i32, currency: &str) -> Value {
    rows.iter()
        .find(|r| r.window_days == days && r.currency == currency)
        .map_or(Value::None, |r| Value::amount(r.ltv.as_deref(), currency))
}

fn all(rows: &[RepeatRow]) -> (i64, i64, Option<f64>) {
    rows.first()
        .map_or((0, 0, None), |r| (r.customers, r.repeat_customers, r.rate))
}

pub async fn load(
    conn: &mut PgConnection,
    params: &Params,
    context: &Context,
) -> Result<Content, DashboardError> {
    let currency = context.currency.as_str();
    let repeat = repeat_purchase(&mut *conn, params.range).await?;
    let rolling = ltv_rolling(&mut *conn, params.range, context.today).await?;
    let (repeat_before, rolling_before) = match params.previous {
        Some(range) => (
            Some(repeat_purchase(&mut *conn, range).await?),
            Some(ltv_rolling(&mut *conn, range, context.today).await?),
        ),
        None => (None, None),
    };
    let (customers, repeaters, rate) = all(&repeat);
    let before = repeat_before.as_deref().map(all);
    let mut content = Content {
        tiles: vec![
            Tile::new(
                "customers",
                Value::Count(customers as f64),
                before.map(|b| Value::Count(b.0 as f64)),
            ),
            Tile::new(
                "repeat_customers",
                Value::Count(repeaters as f64),
                before.map(|b| Value::Count(b.1 as f64)),
            ),
            Tile::new(
                "repeat_rate",
                Value::rate(rate),
                before.map(|b| Value::rate(b.2)),
            ),
            // 30 and 90 days: over the presets (up to 90 days) a 365-day window has never
            // passed for a customer who first ordered in the range.
            Tile::new(
                "ltv_30",
                ltv(&rolling, 30, currency),
                rolling_before.as_deref().map(|r| ltv(r, 30, currency)),
            ),
            Tile::new(
                "ltv_90",
                ltv(&rolling, 90, currency),
                rolling_before.as_deref().map(|r| ltv(r, 90, currency)),
            ),
        ],
        ..Content::default()
    };
    if customers == 0 && repeat.len() <= 1 {
        content.empty = Some(
            "No customer ordered in this range. Orders come from purchase events, Stripe or \
             WooCommerce webhooks, or `lux import stripe|woocommerce`; cohorts need a few \
             months of them: try the last 90 days or a custom range."
                .into(),
        );
        return Ok(content);
    }

    let cohorts = ltv_cohorts(&mut *conn, params.range, context.today).await?;
    let mut grid: BTreeMap<String, BTreeMap<i32, f64>> = BTreeMap::new();
    let mut widest = 0;
    for row in cohorts.iter().filter(|r| r.currency == currency) {
        if let Some(ltv) = row.ltv.as_deref().and_then(|v| v.parse::<f64>().ok()) {
            grid.entry(row.cohort.clone())
                .or_default()
                .insert(row.months_since, ltv);
            widest = widest.max(row.months_since);
        }
    }
    let months = (widest.min(12) + 1) as usize;
    let rows: Vec<String> = grid.keys().cloned().collect();
    let columns: Vec<String> = (0..months).map(|k| format!("+{k}")).collect();
    let cells: Vec<Vec<Option<f64>>> = grid
        .values()
        .map(|m| (0..months as i32).map(|k| m.get(&k).copied()).collect())
        .collect();
    let money = |v: f64| Value::amount(Some(&format!("{v:.2}")), currency).display();
    content.charts.push(chart::heat_map(
        "cohort-heat-map",
        "Cumulative LTV per customer by first-order month (rows) and months since (columns)",
        &rows,
        &columns,
        &cells,
        &|v| {
            let text = money(v);
            text.split('.').next().unwrap_or(&text).to_string()
        },
    ));
    let cohort_bars: Vec<(String, f64)> = repeat
        .iter()
        .skip(1)
        .map(|r| (r.cohort.clone(), r.rate.unwrap_or(0.0)))
        .collect();
    if !cohort_bars.is_empty() {
        content.charts.push(chart::bars(
            "repeat-by-cohort",
            "Repeat purchase rate by first-order month",
            &cohort_bars,
            &|v| Value::Rate(v).display(),
        ));
    }
    content.tables.push(Table {
        key: "cohorts",
        title: "Repeat purchase by cohort".into(),
        columns: vec![
            Column::text(
                "Cohort",
                "\"all\": every customer with an order in the range; then first-order months.",
            ),
            Column::metric("cohort_customers"),
            Column::metric("repeat_customers"),
            Column::metric("repeat_rate"),
        ],
        rows: repeat
            .iter()
            .map(|r| {
                vec![
                    Cell::Text(r.cohort.clone()),
                    Cell::Value(Value::Count(r.customers as f64)),
                    Cell::Value(Value::Count(r.repeat_customers as f64)),
                    Cell::Value(Value::rate(r.rate)),
                ]
            })
            .collect(),
    });
    content.tables.push(Table {
        key: "ltv",
        title: "LTV by cohort".into(),
        columns: vec![
            Column::text("Cohort", "Month of the customers' first order."),
            Column::text(
                "Months since",
                "Months from the cohort's month (0: the month itself).",
            ),
            Column::metric("cohort_customers"),
            Column::metric("cohort_revenue"),
            Column::metric("ltv"),
            Column::text("Currency", "ISO 4217 code of the amounts."),
        ],
        rows: cohorts
            .iter()
            .map(|r| {
                vec![
                    Cell::Text(r.cohort.clone()),
                    Cell::Text(r.months_since.to_string()),
                    Cell::Value(Value::Count(r.customers as f64)),
                    Cell::Value(Value::amount(Some(&r.revenue), &r.currency)),
                    Cell::Value(Value::amount(r.ltv.as_deref(), &r.currency)),
                    Cell::Text(r.currency.clone()),
                ]
            })
            .collect(),
    });
    Ok(content)
}
