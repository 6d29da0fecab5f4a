//! One evaluation of a company's rules for one local day, in one transaction under a
//! per-company advisory lock (two evaluations of the same company never interleave):
//!
//! 1. the run and every finding are recorded (`alert_runs`, `alert_evaluations`);
//! 2. per (rule, subject): ok → firing when the condition holds and nothing fires for it
//!    (a new `alerts` row); firing → resolved when a *later* day's evaluation finds it gone;
//!    anything else changes nothing, so a rerun of the same day notifies nobody;
//! 3. the changes become outbox rows (`alert_deliveries`): one message per recipient and per
//!    Slack webhook, a digest when several alerts changed at once, due at once or at the end
//!    of the company's quiet hours.
//!
//! The outbox rows commit with the state change: an evaluation either enqueued its
//! notifications or did not happen.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, TimeZone, Timelike, Utc};
use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

use super::config::{AlertSettings, QuietHours};
use super::render::{self, Change, Notice};
use super::rules::{self, Finding, Scope};
use super::{AlertError, AlertOptions, Company};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    Schedule,
    Manual,
}

impl Trigger {
    fn as_str(self) -> &'static str {
        match self {
            Trigger::Schedule => "schedule",
            Trigger::Manual => "manual",
        }
    }
}

/// What an evaluation did.
#[derive(Debug, Clone, Serialize)]
pub struct Evaluation {
    pub run_id: Uuid,
    pub day: NaiveDate,
    pub evaluated: usize,
    /// Findings whose condition held (firing now, newly or still).
    pub met: Vec<String>,
    /// Alerts that started firing.
    pub fired: Vec<Notice>,
    /// Alerts that resolved.
    pub resolved: Vec<Notice>,
    /// Outbox rows enqueued.
    pub enqueued: usize,
    #[serde(skip)]
    pub findings: Vec<Finding>,
}

/// Lock key of a company's alert evaluation (apart from the jobs' keys by its tag).
fn lock_key(company_id: Uuid) -> i64 {
    let (hi, lo) = company_id.as_u64_pair();
    (hi ^ lo.rotate_left(23) ^ 0x10B5_A1E7_0000_0017) as i64
}

pub async fn scheduled_run_exists(
    pool: &PgPool,
    company_id: Uuid,
    day: NaiveDate,
) -> Result<bool, sqlx::Error> {
    let mut tx = crate::db::begin_for_company(pool, company_id).await?;
    let found: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM alert_runs WHERE company_id = $1 AND day = $2
                        AND trigger = 'schedule')",
    )
    .bind(company_id)
    .bind(day)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(found)
}

/// The dashboard base of a company: `{LUX_PUBLIC_URL}/app/{company_id}` (relative without
/// a public URL).
pub fn app_link(options: &AlertOptions, company_id: Uuid) -> String {
    let base = options.public_url.as_ref().map_or(String::new(), |u| {
        u.as_str().trim_end_matches('/').to_string()
    });
    format!("{base}/app/{company_id}")
}

/// Evaluates every rule for `day` and records and enqueues what changed (see the module).
pub async fn evaluate(
    pool: &PgPool,
    (company, settings): (&Company, &AlertSettings),
    day: NaiveDate,
    now: DateTime<Utc>,
    trigger: Trigger,
    options: &AlertOptions,
) -> Result<Evaluation, AlertError> {
    let run_id = Uuid::now_v7();
    let mut tx = crate::db::begin_for_company(pool, company.id).await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(lock_key(company.id))
        .execute(&mut *tx)
        .await?;
    let scope = Scope {
        day,
        currency: &company.currency,
        app_link: app_link(options, company.id),
    };
    let findings = rules::evaluate_all(&mut tx, company.id, settings, &scope).await?;
    options.counters.evaluations.inc();
    let firing: Vec<(Uuid, String, String, NaiveDate, String, String)> = sqlx::query_as(
        "SELECT alert_id, rule, subject, fired_on, title, severity FROM alerts
         WHERE company_id = $1 AND state = 'firing'",
    )
    .bind(company.id)
    .fetch_all(&mut *tx)
    .await?;
    let firing: HashMap<(String, String), (Uuid, NaiveDate, String, String)> = firing
        .into_iter()
        .map(|(id, rule, subject, on, title, sev)| ((rule, subject), (id, on, title, sev)))
        .collect();
    let mut changes: Vec<(Change, Notice)> = Vec::new();
    let mut met = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for f in &findings {
        let key = (f.rule.as_str().to_string(), f.subject.clone());
        seen.insert(key.clone());
        if f.met {
            met.push(format!("{}/{}", f.rule, f.subject));
        }
        match (f.met, firing.get(&key)) {
            (true, None) if f.may_start => {
                let notice = fire(&mut tx, company.id, f, day, now, &scope).await?;
                options.counters.firings.inc();
                changes.push((Change::Fired, notice));
            }
            (false, Some((id, fired_on, ..))) if day > *fired_on => {
                let notice = resolve(&mut tx, company.id, *id, day, f).await?;
                changes.push((Change::Resolved, notice));
            }
            _ => {}
        }
    }
    // A firing subject no rule looked at any more (its data is gone): resolved as well.
    for ((rule, subject), (id, fired_on, title, _)) in &firing {
        if !seen.contains(&(rule.clone(), subject.clone())) && day > *fired_on {
            let gone = format!(
                "{title}: resolved on {day}; the rule found no data for {subject} any more."
            );
            let notice = resolve_gone(&mut tx, company.id, *id, day, &gone).await?;
            changes.push((Change::Resolved, notice));
        }
    }
    let (fired_n, resolved_n) = (
        changes.iter().filter(|c| c.0 == Change::Fired).count(),
        changes.iter().filter(|c| c.0 == Change::Resolved).count(),
    );
    sqlx::query(
        "INSERT INTO alert_runs (company_id, run_id, day, trigger, evaluated_at, fired, resolved)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(company.id)
    .bind(run_id)
    .bind(day)
    .bind(trigger.as_str())
    .bind(now)
    .bind(fired_n as i32)
    .bind(resolved_n as i32)
    .execute(&mut *tx)
    .await?;
    record_findings(&mut tx, company.id, run_id, &findings).await?;
    // Evaluations are an audit trail, not the history (that is `alerts`): a bit over a year.
    sqlx::query(
        "DELETE FROM alert_runs WHERE company_id = $1
           AND evaluated_at < $2::timestamptz - interval '400 days'",
    )
    .bind(company.id)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    let enqueued = if changes.is_empty() {
        0
    } else {
        let message = render::alert_message(company, &scope.app_link, day, &changes);
        let due = due_at(settings.quiet_hours, company.timezone, now);
        enqueue(
            &mut tx,
            company.id,
            Some(run_id),
            settings,
            &message,
            due,
            now,
        )
        .await?
    };
    tx.commit().await?;
    let split = |which: Change| {
        changes
            .iter()
            .filter(|c| c.0 == which)
            .map(|c| c.1.clone())
            .collect()
    };
    Ok(Evaluation {
        run_id,
        day,
        evaluated: findings.len(),
        met,
        fired: split(Change::Fired),
        resolved: split(Change::Resolved),
        enqueued,
        findings,
    })
}

async fn record_findings(
    tx: &mut sqlx::PgConnection,
    company_id: Uuid,
    run_id: Uuid,
    findings: &[Finding],
) -> Result<(), sqlx::Error> {
    let rules: Vec<&str> = findings.iter().map(|f| f.rule.as_str()).collect();
    let subjects: Vec<&str> = findings.iter().map(|f| f.subject.as_str()).collect();
    let met: Vec<bool> = findings.iter().map(|f| f.met).collect();
    let skipped: Vec<Option<&str>> = findings.iter().map(|f| f.skipped.as_deref()).collect();
    let numbers: Vec<serde_json::Value> = findings.iter().map(|f| f.numbers.clone()).collect();
    sqlx::query(
        "INSERT INTO alert_evaluations (company_id, run_id, rule, subject, met, skipped, numbers)
         SELECT $1, $2, * FROM unnest($3::text[], $4::text[], $5::bool[], $6::text[], $7::jsonb[])
         ON CONFLICT DO NOTHING",
    )
    .bind(company_id)
    .bind(run_id)
    .bind(&rules)
    .bind(&subjects)
    .bind(&met)
    .bind(&skipped)
    .bind(&numbers)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

async fn fire(
    tx: &mut sqlx::PgConnection,
    company_id: Uuid,
    f: &Finding,
    day: NaiveDate,
    now: DateTime<Utc>,
    scope: &Scope<'_>,
) -> Result<Notice, sqlx::Error> {
    let alert_id = Uuid::now_v7();
    let link = format!("{}/{}", scope.app_link, f.rule.page());
    sqlx::query(
        "INSERT INTO alerts (company_id, alert_id, rule, subject, severity, state, fired_on,
             title, explanation, numbers, link, created_at)
         VALUES ($1, $2, $3, $4, $5, 'firing', $6, $7, $8, $9, $10, $11)",
    )
    .bind(company_id)
    .bind(alert_id)
    .bind(f.rule.as_str())
    .bind(&f.subject)
    .bind(f.severity.as_str())
    .bind(day)
    .bind(&f.title)
    .bind(&f.explanation)
    .bind(&f.numbers)
    .bind(&link)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    Ok(Notice {
        alert_id,
        rule: f.rule.as_str().to_string(),
        subject: f.subject.clone(),
        severity: f.severity.as_str().to_string(),
        title: f.title.clone(),
        explanation: f.explanation.clone(),
        link,
    })
}

async fn resolve(
    tx: &mut sqlx::PgConnection,
    company_id: Uuid,
    alert_id: Uuid,
    day: NaiveDate,
    f: &Finding,
) -> Result<Notice, sqlx::Error> {
    let now_text = match &f.skipped {
        Some(why) => format!("Resolved on {day}: no longer checked ({why})."),
        None => format!("Resolved on {day}: {}", f.explanation),
    };
    resolve_gone(tx, company_id, alert_id, day, &now_text).await
}

/// Marks a firing resolved; the notice carries the original title and why it resolved.
async fn resolve_gone(
    tx: &mut sqlx::PgConnection,
    company_id: Uuid,
    alert_id: Uuid,
    day: NaiveDate,
    why: &str,
) -> Result<Notice, sqlx::Error> {
    let (rule, subject, severity, title, link): (String, String, String, String, String) =
        sqlx::query_as(
            "UPDATE alerts SET state = 'resolved', resolved_on = $3
             WHERE company_id = $1 AND alert_id = $2
             RETURNING rule, subject, severity, title, link",
        )
        .bind(company_id)
        .bind(alert_id)
        .bind(day)
        .fetch_one(&mut *tx)
        .await?;
    Ok(Notice {
        alert_id,
        rule,
        subject,
        severity,
        title,
        explanation: why.to_string(),
        link,
    })
}

/// When a message enqueued at `now` may go: now, or at the end of the quiet hours it falls in
/// (the company's local hour `end`:00, today or tomorrow).
pub fn due_at(quiet: Option<QuietHours>, tz: chrono_tz::Tz, now: DateTime<Utc>) -> DateTime<Utc> {
    let Some(quiet) = quiet else {
        return now;
    };
    let local = now.with_timezone(&tz);
    if !quiet.contains(local.hour() as u8) {
        return now;
    }
    let mut day = local.date_naive();
    if local.hour() as u8 >= quiet.end() {
        day = day.succ_opt().unwrap_or(day);
    }
    let end = day
        .and_hms_opt(u32::from(quiet.end()), 0, 0)
        .expect("an hour 0-23 is a time");
    // A DST gap at that hour: the first instant after it.
    tz.from_local_datetime(&end)
        .earliest()
        .or_else(|| {
            tz.from_local_datetime(&(end + chrono::Duration::hours(1)))
                .earliest()
        })
        .map_or(now, |t| t.with_timezone(&Utc))
}

/// Enqueues `message` to every configured target; returns how many rows.
pub async fn enqueue(
    tx: &mut sqlx::PgConnection,
    company_id: Uuid,
    run_id: Option<Uuid>,
    settings: &AlertSettings,
    message: &render::Message,
    due: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<usize, sqlx::Error> {
    let mut targets: Vec<(&str, String)> = settings
        .emails
        .iter()
        .map(|e| ("email", e.clone()))
        .collect();
    if let Some(hook) = &settings.slack_webhook {
        targets.push(("slack", hook.to_string()));
    }
    for (channel, target) in &targets {
        let html = (*channel == "email").then_some(message.html.as_str());
        let text = if *channel == "slack" {
            &message.slack
        } else {
            &message.text
        };
        sqlx::query(
            "INSERT INTO alert_deliveries (company_id, delivery_id, run_id, alert_ids, kind,
                 channel, target, subject, text_body, html_body, next_attempt_at, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(company_id)
        .bind(Uuid::now_v7())
        .bind(run_id)
        .bind(&message.alert_ids)
        .bind(message.kind)
        .bind(channel)
        .bind(target)
        .bind(&message.subject)
        .bind(text)
        .bind(html)
        .bind(due)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    }
    Ok(targets.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quiet_hours_hold_a_message_until_their_local_end() {
        let tz: chrono_tz::Tz = "Europe/Paris".parse().unwrap();
        let quiet = QuietHours::parse("22-08").ok();
        // 06:00 UTC = 07:00 in Paris (winter): held until 08:00 Paris = 07:00 UTC.
        let at = Utc.with_ymd_and_hms(2026, 12, 1, 6, 0, 0).unwrap();
        assert_eq!(
            due_at(quiet, tz, at),
            Utc.with_ymd_and_hms(2026, 12, 1, 7, 0, 0).unwrap()
        );
        // 22:30 Paris: until 08:00 the next day.
        let late = Utc.with_ymd_and_hms(2026, 12, 1, 21, 30, 0).unwrap();
        assert_eq!(
            due_at(quiet, tz, late),
            Utc.with_ymd_and_hms(2026, 12, 2, 7, 0, 0).unwrap()
        );
        // Outside: now.
        let noon = Utc.with_ymd_and_hms(2026, 12, 1, 11, 0, 0).unwrap();
        assert_eq!(due_at(quiet, tz, noon), noon);
        assert_eq!(due_at(None, tz, at), at);
    }
}
