//! The alerts' HTTP surface, with the company's secret key:
//! `GET/PUT /api/v1/alerts/config` (the settings), and `GET /api/v1/reports/alerts`
//! (the alert history with each alert's deliveries, in the reports' envelope, as `lux_reader`).

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::routing::get;
use axum::{Json, Router};
use chrono::NaiveDate;
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

use super::AlertError;
use super::config::{AlertSettings, QuietHours, parse_email, parse_webhook, rules_from_json};
use crate::http::ApiError;
use crate::tenancy::Tenancy;

#[derive(Clone)]
pub struct AlertsState {
    pub pool: PgPool,
    /// Where reads go (the replica when there is one and it is close enough).
    pub reader: crate::db::replica::ReadPools,
    pub tenancy: Arc<Tenancy>,
}

pub fn router() -> Router<AlertsState> {
    Router::new()
        .route("/api/v1/alerts/config", get(get_config).put(put_config))
        // A fixed path: axum prefers it over the reports' `/api/v1/reports/{report}`.
        .route("/api/v1/reports/alerts", get(report))
}

impl From<AlertError> for ApiError {
    fn from(error: AlertError) -> Self {
        match error {
            AlertError::Database(e) => ApiError::from(e),
            AlertError::NoCompany(_) => ApiError::NotFound,
            other => ApiError::internal(other),
        }
    }
}

async fn company(state: &AlertsState, headers: &HeaderMap, needs: &str) -> Result<Uuid, ApiError> {
    let tenant = crate::tenancy::secret_key_tenant(&state.tenancy, headers, needs).await?;
    Ok(tenant.settings.company_id)
}

async fn get_config(
    State(state): State<AlertsState>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let company_id = company(&state, &headers, "alert settings need").await?;
    let settings = AlertSettings::load(&state.pool, company_id).await?;
    Ok(Json(settings.to_json()))
}

/// Replaces the settings: fields left out take their defaults.
async fn put_config(
    State(state): State<AlertsState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    let company_id = company(&state, &headers, "alert settings need").await?;
    let value: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(format!("the body is not JSON: {e}")))?;
    let settings = settings_from_json(&value).map_err(ApiError::BadRequest)?;
    settings.save(&state.pool, company_id).await?;
    Ok(Json(settings.to_json()))
}

/// `{"emails": [...], "slack_webhook": URL|null, "quiet_hours": "22-07"|null,
/// "morning_hour": 0-23, "rules": {...}}`, every field checked.
pub fn settings_from_json(value: &Value) -> Result<AlertSettings, String> {
    let object = value.as_object().ok_or("the body must be a JSON object")?;
    for key in object.keys() {
        if ![
            "emails",
            "slack_webhook",
            "quiet_hours",
            "morning_hour",
            "rules",
        ]
        .contains(&key.as_str())
        {
            return Err(format!(
                "unknown field {key:?}; fields: emails, slack_webhook, quiet_hours, morning_hour, rules"
            ));
        }
    }
    let mut settings = AlertSettings::default();
    if let Some(emails) = object.get("emails") {
        let list = emails
            .as_array()
            .ok_or("emails must be an array of addresses")?;
        for e in list {
            settings
                .emails
                .push(parse_email(e.as_str().ok_or("emails must be strings")?)?);
        }
    }
    if let Some(hook) = object.get("slack_webhook").filter(|v| !v.is_null()) {
        let text = hook.as_str().ok_or("slack_webhook must be a URL string")?;
        settings.slack_webhook = Some(parse_webhook(text)?);
    }
    if let Some(quiet) = object.get("quiet_hours").filter(|v| !v.is_null()) {
        let text = quiet
            .as_str()
            .ok_or("quiet_hours must look like \"22-07\"")?;
        settings.quiet_hours = Some(QuietHours::parse(text)?);
    }
    if let Some(hour) = object.get("morning_hour") {
        settings.morning_hour = hour
            .as_u64()
            .filter(|h| *h <= 23)
            .ok_or("morning_hour must be an hour 0-23")? as u8;
    }
    if let Some(rules) = object.get("rules") {
        settings.rules = rules_from_json(rules)?;
    }
    Ok(settings)
}

/// `GET /api/v1/reports/alerts?from=D&to=D`: the alerts that fired on those days (or were
/// still firing during them), newest first, each with its deliveries.
async fn report(
    State(state): State<AlertsState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let company_id = company(&state, &headers, "reports need").await?;
    let (from, to) = range(query.as_deref()).map_err(ApiError::BadRequest)?;
    let read = state.reader.pool();
    let rows = match history(read, company_id, from, to).await {
        // As the reports: counted in `lux_replica_fallbacks_total`.
        Err(e) => match state.reader.retry_on_primary(read, &e) {
            Some(primary) => history(primary, company_id, from, to).await?,
            None => return Err(e.into()),
        },
        Ok(rows) => rows,
    };
    Ok(Json(
        json!({"report": "alerts", "from": from, "to": to, "rows": rows}),
    ))
}

fn range(query: Option<&str>) -> Result<(NaiveDate, NaiveDate), String> {
    let mut from = None;
    let mut to = None;
    for (k, v) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        let day = || {
            NaiveDate::parse_from_str(&v, "%Y-%m-%d")
                .map_err(|_| format!("{k} must be a date YYYY-MM-DD, not {v:?}"))
        };
        match k.as_ref() {
            "from" => from = Some(day()?),
            "to" => to = Some(day()?),
            other => return Err(format!("unknown parameter {other:?} (from, to)")),
        }
    }
    let (Some(from), Some(to)) = (from, to) else {
        return Err("from and to are required (YYYY-MM-DD)".into());
    };
    if from > to {
        return Err(format!("from ({from}) is after to ({to})"));
    }
    Ok((from, to))
}

type HistoryRow = (
    Uuid,
    String,
    String,
    String,
    String,
    NaiveDate,
    Option<NaiveDate>,
    String,
    String,
    Value,
    String,
    Value,
);

/// The alert history as `lux_reader` (alerts and deliveries only).
pub async fn history(
    reader: &PgPool,
    company_id: Uuid,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<Value>, sqlx::Error> {
    let mut tx = reader.begin().await?;
    crate::db::set_company(&mut tx, company_id).await?;
    let rows = history_in(&mut tx, company_id, from, to).await?;
    tx.commit().await?;
    Ok(rows)
}

/// [`history`] in a transaction already scoped to the company (the dashboards' reader
/// transaction), so the alerts page shows the report's rows.
pub async fn history_in(
    conn: &mut sqlx::PgConnection,
    company_id: Uuid,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<Value>, sqlx::Error> {
    let rows: Vec<HistoryRow> = sqlx::query_as(
        "SELECT a.alert_id, a.rule, a.subject, a.severity, a.state, a.fired_on, a.resolved_on,
                a.title, a.explanation, a.numbers, a.link,
                coalesce((SELECT jsonb_agg(jsonb_build_object(
                              'channel', d.channel, 'target', d.target, 'status', d.status,
                              'attempts', d.attempts, 'sent_at', d.sent_at,
                              'last_error', d.last_error) ORDER BY d.created_at, d.target)
                          FROM alert_deliveries d
                          WHERE d.company_id = a.company_id AND a.alert_id = ANY(d.alert_ids)),
                         '[]'::jsonb)
         FROM alerts a
         WHERE a.company_id = $1 AND a.fired_on <= $3
           AND (a.resolved_on IS NULL OR a.resolved_on >= $2)
         ORDER BY a.fired_on DESC, a.created_at DESC",
    )
    .bind(company_id)
    .bind(from)
    .bind(to)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            json!({
                "alert_id": r.0, "rule": r.1, "subject": r.2, "severity": r.3, "state": r.4,
                "fired_on": r.5, "resolved_on": r.6, "title": r.7, "explanation": r.8,
                "numbers": r.9, "link": r.10, "deliveries": r.11,
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_bodies_are_checked_field_by_field() {
        let ok = json!({"emails": ["ops@shop.example"], "quiet_hours": "22-07",
                        "rules": {"revenue_anomaly": {"threshold": 4, "min_volume": 5}}});
        let s = settings_from_json(&ok).unwrap();
        assert_eq!(s.emails, ["ops@shop.example"]);
        for bad in [
            json!([]),
            json!({"emails": "ops@shop.example"}),
            json!({"emails": ["nope"]}),
            json!({"quiet_hours": "late"}),
            json!({"morning_hour": 24}),
            json!({"colour": "red"}),
        ] {
            assert!(settings_from_json(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn report_ranges_are_checked() {
        assert!(range(Some("from=2026-11-01&to=2026-11-30")).is_ok());
        for bad in [
            None,
            Some("from=2026-11-01"),
            Some("from=x&to=y"),
            Some("from=2026-12-01&to=2026-11-01"),
        ] {
            assert!(range(bad).is_err(), "{bad:?}");
        }
    }
}
