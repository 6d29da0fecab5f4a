//! Raw-event retention (SPEC §9): each company keeps its raw events for
//! `companies.raw_event_retention_months` (25 by default). A monthly partition that ends
//! before every company's cutoff is dropped whole (`lux_drop_raw_event_partition`); a company
//! whose cutoff is earlier than others' has its older events erased through the audited path
//! under a retention request (`lux_erase_events_before`). Rollups, sessions and orders stay.
//! Every drop and erasure appends to `privacy_ledger`. Runs as `lux_eraser`.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{Connection, PgConnection, PgPool};
use uuid::Uuid;

use super::requests::{self, RequestKind};

/// What a retention run did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RetentionReport {
    pub job: &'static str,
    /// Partitions dropped whole.
    pub dropped_partitions: Vec<String>,
    /// Companies whose older events were erased row by row.
    pub erased: Vec<CompanyErasure>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CompanyErasure {
    pub company_id: Uuid,
    pub request_id: Uuid,
    pub before: DateTime<Utc>,
    pub raw_events: i64,
}

/// Runs retention on a connection taken out of `pool` (the owner's or the service's login,
/// either may switch to `lux_eraser`); the connection is closed afterwards, so the role never
/// goes back to the pool.
pub async fn run(
    pool: &PgPool,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<RetentionReport, sqlx::Error> {
    let mut conn = pool.acquire().await?.detach();
    sqlx::query("SET ROLE lux_eraser")
        .execute(&mut conn)
        .await?;
    let report = run_as_eraser(&mut conn, actor, now).await;
    let _ = conn.close().await;
    report
}

async fn run_as_eraser(
    conn: &mut PgConnection,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<RetentionReport, sqlx::Error> {
    let mut report = RetentionReport {
        job: "retention",
        ..RetentionReport::default()
    };
    let cutoffs: Vec<(Uuid, DateTime<Utc>)> =
        sqlx::query_as("SELECT company_id, cutoff FROM lux_retention_cutoffs($1)")
            .bind(now)
            .fetch_all(&mut *conn)
            .await?;
    let Some(earliest) = cutoffs.iter().map(|(_, c)| *c).min() else {
        return Ok(report);
    };
    let partitions: Vec<(String, DateTime<Utc>)> = sqlx::query_as(
        "SELECT partition_name, upper_bound FROM lux_raw_event_partitions() ORDER BY lower_bound",
    )
    .fetch_all(&mut *conn)
    .await?;
    for (name, upper) in partitions {
        if upper > earliest {
            break;
        }
        let dropped: bool = sqlx::query_scalar("SELECT lux_drop_raw_event_partition($1, $2, $3)")
            .bind(&name)
            .bind(actor)
            .bind(now)
            .fetch_one(&mut *conn)
            .await?;
        if dropped {
            tracing::info!(partition = %name, "retention: dropped a raw_events partition");
            report.dropped_partitions.push(name);
        }
    }
    for (company_id, cutoff) in cutoffs {
        if let Some(erased) = erase_before(conn, company_id, cutoff, (actor, now)).await? {
            report.erased.push(erased);
        }
    }
    Ok(report)
}

/// Erases the company's raw events older than `cutoff`, when it has any, under a retention
/// request filed for it, in one transaction.
async fn erase_before(
    conn: &mut PgConnection,
    company_id: Uuid,
    cutoff: DateTime<Utc>,
    (actor, now): (&str, DateTime<Utc>),
) -> Result<Option<CompanyErasure>, sqlx::Error> {
    let mut tx = conn.begin().await?;
    crate::db::set_company(&mut tx, company_id).await?;
    let any: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM raw_events WHERE company_id = $1 AND occurred_at < $2)",
    )
    .bind(company_id)
    .bind(cutoff)
    .fetch_one(&mut *tx)
    .await?;
    if !any {
        return Ok(None);
    }
    let request = requests::file(
        &mut tx,
        company_id,
        RequestKind::Retention,
        None,
        ("system", now),
    )
    .await?;
    let raw_events: i64 = sqlx::query_scalar("SELECT lux_erase_events_before($1, $2, $3, $4)")
        .bind(request.request_id)
        .bind(actor)
        .bind(now)
        .bind(cutoff)
        .fetch_one(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(Some(CompanyErasure {
        company_id,
        request_id: request.request_id,
        before: cutoff,
        raw_events,
    }))
}
