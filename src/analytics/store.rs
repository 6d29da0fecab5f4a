//! The one statement that writes a batch: the sessions' change notes for the rollups, the
//! counters of the sessions it extends, the sessions it opens, and its raw events.
//!
//! One statement rather than four: PostgreSQL's cost per statement (binding the arrays,
//! starting the executor, evaluating the tenant policy, ending the command) is paid once per
//! batch however many rows it writes, and with single events a batch holds a few events, so
//! that fixed cost was a large share of the database's work per event (issue 20, see
//! `docs/benchmarks.md`). Each part is a data-modifying `WITH` query, which PostgreSQL runs
//! exactly once and to completion whether or not anything reads it; a part given empty arrays
//! writes nothing.
//!
//! The SQL is assembled from column lists, so each part's parameters are numbered where they
//! are declared and bound in the same order.

use std::sync::LazyLock;

use sqlx::postgres::PgArguments;
use sqlx::query::Query;
use sqlx::{Postgres, Transaction};
use uuid::Uuid;

use super::event::AcceptedEvent;
use super::sessions::TouchedSession;

type Statement<'q> = Query<'q, Postgres, PgArguments>;

/// Columns of the counters update, with their array types (the session id first).
const UPDATED: &[(&str, &str)] = &[
    ("session_id", "uuid"),
    ("last_seen_at", "timestamptz"),
    ("page_views", "int4"),
    ("events", "int4"),
    ("engagement_ms", "int8"),
    ("creative_id", "text"),
];

/// Columns of a new session, after `company_id`.
const OPENED: &[(&str, &str)] = &[
    ("session_id", "uuid"),
    ("visitor_id", "uuid"),
    ("started_at", "timestamptz"),
    ("last_seen_at", "timestamptz"),
    ("landing_page", "text"),
    ("referrer", "text"),
    ("source", "text"),
    ("medium", "text"),
    ("campaign", "text"),
    ("channel", "text"),
    ("utm_source", "text"),
    ("utm_medium", "text"),
    ("utm_campaign", "text"),
    ("utm_term", "text"),
    ("utm_content", "text"),
    ("gclid", "text"),
    ("gbraid", "text"),
    ("wbraid", "text"),
    ("fbclid", "text"),
    ("msclkid", "text"),
    ("ttclid", "text"),
    ("li_fat_id", "text"),
    ("message_id", "text"),
    ("campaign_key", "text"),
    ("page_views", "int4"),
    ("events", "int4"),
    ("engagement_ms", "int8"),
    ("is_bot", "bool"),
    ("creative_id", "text"),
];

/// Columns of a raw event, after `company_id`.
const RAW: &[(&str, &str)] = &[
    ("event_id", "uuid"),
    ("event_name", "text"),
    ("occurred_at", "timestamptz"),
    ("received_at", "timestamptz"),
    ("client_occurred_at", "timestamptz"),
    ("occurred_at_clamped", "bool"),
    ("visitor_id", "uuid"),
    ("session_id", "uuid"),
    ("user_id", "text"),
    ("email_hash", "bytea"),
    ("page_url", "text"),
    ("referrer", "text"),
    ("user_agent", "text"),
    ("ip_hash", "bytea"),
    ("utm_source", "text"),
    ("utm_medium", "text"),
    ("utm_campaign", "text"),
    ("utm_term", "text"),
    ("utm_content", "text"),
    ("gclid", "text"),
    ("gbraid", "text"),
    ("wbraid", "text"),
    ("fbclid", "text"),
    ("msclkid", "text"),
    ("ttclid", "text"),
    ("li_fat_id", "text"),
    ("creative_id", "text"),
    ("consent_analytics", "bool"),
    ("consent_marketing", "bool"),
    ("gpc", "bool"),
    ("is_bot", "bool"),
    ("key_kind", "text"),
    ("properties", "jsonb"),
];

/// `$n::type[], …` for `columns`, numbered from `first`.
fn arrays(first: usize, columns: &[(&str, &str)]) -> String {
    columns
        .iter()
        .enumerate()
        .map(|(i, (_, kind))| format!("${}::{kind}[]", first + i))
        .collect::<Vec<_>>()
        .join(", ")
}

fn names(columns: &[(&str, &str)]) -> String {
    columns
        .iter()
        .map(|(name, _)| *name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// $1 is the company; $2 the started times of the sessions touched; then the parts in order.
static SQL: LazyLock<String> = LazyLock::new(|| {
    let updated_from = 3;
    let opened_from = updated_from + UPDATED.len();
    let raw_from = opened_from + OPENED.len();
    let assignments = UPDATED[1..]
        .iter()
        .map(|(name, _)| format!("{name} = u.{name}"))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        // The change notes: the touched sessions' starts binned to 15 minutes (see
        // `session_changes` in the migrations), a handful of rows per batch.
        "WITH noted AS (
             INSERT INTO session_changes (company_id, started_bin)
             SELECT DISTINCT $1, date_bin('15 minutes', t, timestamptz '2000-01-01 00:00+00')
             FROM unnest($2::timestamptz[]) t),
         -- A primary-key probe per session: the writer's connection allows no hash or merge
         -- join and no sequential scan (see `db::connect_ingest_writer`).
         extended AS (
             UPDATE sessions s SET {assignments}
             FROM unnest({updated}) AS u({updated_names})
             WHERE s.company_id = $1 AND s.session_id = u.session_id),
         opened AS (
             INSERT INTO sessions (company_id, {opened_names})
             SELECT $1, * FROM unnest({opened}))
         INSERT INTO raw_events (company_id, {raw_names})
         SELECT $1, * FROM unnest({raw})",
        updated = arrays(updated_from, UPDATED),
        updated_names = names(UPDATED),
        opened_names = names(OPENED),
        opened = arrays(opened_from, OPENED),
        raw_names = names(RAW),
        raw = arrays(raw_from, RAW),
    )
});

/// Writes `sessions` (the batch's touched sessions) and `events` (its fresh events, with
/// their sessions) for one company.
pub async fn write(
    tx: &mut Transaction<'_, Postgres>,
    company_id: Uuid,
    events: &[&AcceptedEvent],
    session_ids: &[Option<Uuid>],
    sessions: &[TouchedSession],
) -> Result<(), sqlx::Error> {
    let (opened, extended): (Vec<&TouchedSession>, Vec<&TouchedSession>) =
        sessions.iter().partition(|s| s.opened_by.is_some());
    let statement = sqlx::query(SQL.as_str()).bind(company_id).bind(
        sessions
            .iter()
            .map(|s| s.row.started_at)
            .collect::<Vec<_>>(),
    );
    let statement = bind_extended(statement, &extended);
    let statement = bind_opened(statement, events, &opened);
    let statement = bind_raw(statement, events, session_ids);
    statement.execute(&mut **tx).await?;
    Ok(())
}

fn bind_extended<'q>(statement: Statement<'q>, sessions: &[&TouchedSession]) -> Statement<'q> {
    statement
        .bind::<Vec<Uuid>>(sessions.iter().map(|s| s.row.session_id).collect())
        .bind::<Vec<_>>(sessions.iter().map(|s| s.row.last_seen_at).collect())
        .bind::<Vec<i32>>(sessions.iter().map(|s| s.row.page_views).collect())
        .bind::<Vec<i32>>(sessions.iter().map(|s| s.row.events).collect())
        .bind::<Vec<i64>>(sessions.iter().map(|s| s.row.engagement_ms).collect())
        .bind::<Vec<Option<String>>>(sessions.iter().map(|s| s.row.creative_id.clone()).collect())
}

fn bind_opened<'q>(
    statement: Statement<'q>,
    events: &[&AcceptedEvent],
    sessions: &[&TouchedSession],
) -> Statement<'q> {
    let opening = |s: &TouchedSession| events[s.opened_by.expect("new sessions have an opener")];
    let page = |s: &TouchedSession| {
        opening(s)
            .page
            .as_ref()
            .expect("sessions are opened by page events")
    };
    let text = |f: &dyn Fn(&TouchedSession) -> Option<String>| -> Vec<Option<String>> {
        sessions.iter().map(|s| f(s)).collect()
    };
    statement
        .bind(
            sessions
                .iter()
                .map(|s| s.row.session_id)
                .collect::<Vec<_>>(),
        )
        .bind(
            sessions
                .iter()
                .map(|s| s.row.visitor_id)
                .collect::<Vec<_>>(),
        )
        .bind(
            sessions
                .iter()
                .map(|s| s.row.started_at)
                .collect::<Vec<_>>(),
        )
        .bind(
            sessions
                .iter()
                .map(|s| s.row.last_seen_at)
                .collect::<Vec<_>>(),
        )
        .bind(text(&|s| Some(page(s).url.clone())))
        .bind(text(&|s| opening(s).referrer.clone()))
        .bind(text(&|s| Some(page(s).traffic.source.clone())))
        .bind(text(&|s| Some(page(s).traffic.medium.clone())))
        .bind(text(&|s| page(s).traffic.campaign.clone()))
        .bind(text(&|s| {
            Some(page(s).traffic.channel.as_str().to_string())
        }))
        .bind(text(&|s| page(s).landing.utm.source.clone()))
        .bind(text(&|s| page(s).landing.utm.medium.clone()))
        .bind(text(&|s| page(s).landing.utm.campaign.clone()))
        .bind(text(&|s| page(s).landing.utm.term.clone()))
        .bind(text(&|s| page(s).landing.utm.content.clone()))
        .bind(text(&|s| page(s).landing.click_ids.gclid.clone()))
        .bind(text(&|s| page(s).landing.click_ids.gbraid.clone()))
        .bind(text(&|s| page(s).landing.click_ids.wbraid.clone()))
        .bind(text(&|s| page(s).landing.click_ids.fbclid.clone()))
        .bind(text(&|s| page(s).landing.click_ids.msclkid.clone()))
        .bind(text(&|s| page(s).landing.click_ids.ttclid.clone()))
        .bind(text(&|s| page(s).landing.click_ids.li_fat_id.clone()))
        .bind(text(&|s| page(s).landing.message_id.clone()))
        .bind(text(&|s| s.row.campaign_key.clone()))
        .bind(
            sessions
                .iter()
                .map(|s| s.row.page_views)
                .collect::<Vec<_>>(),
        )
        .bind(sessions.iter().map(|s| s.row.events).collect::<Vec<_>>())
        .bind(
            sessions
                .iter()
                .map(|s| s.row.engagement_ms)
                .collect::<Vec<_>>(),
        )
        .bind(
            sessions
                .iter()
                .map(|s| opening(s).is_bot)
                .collect::<Vec<_>>(),
        )
        .bind(text(&|s| s.row.creative_id.clone()))
}

fn bind_raw<'q>(
    statement: Statement<'q>,
    events: &[&AcceptedEvent],
    session_ids: &[Option<Uuid>],
) -> Statement<'q> {
    let text = |f: &dyn Fn(&AcceptedEvent) -> Option<String>| -> Vec<Option<String>> {
        events.iter().map(|e| f(e)).collect()
    };
    let utm = |f: &dyn Fn(&super::traffic::Utm) -> Option<String>| {
        text(&|e| e.page.as_ref().and_then(|p| f(&p.landing.utm)))
    };
    let click = |f: &dyn Fn(&super::traffic::ClickIds) -> Option<String>| {
        text(&|e| e.page.as_ref().and_then(|p| f(&p.landing.click_ids)))
    };
    let flag = |f: &dyn Fn(&AcceptedEvent) -> bool| events.iter().map(|e| f(e)).collect::<Vec<_>>();
    statement
        .bind(events.iter().map(|e| e.event_id).collect::<Vec<_>>())
        .bind(text(&|e| Some(e.event_name.as_str().to_string())))
        .bind(events.iter().map(|e| e.occurred_at).collect::<Vec<_>>())
        .bind(events.iter().map(|e| e.received_at).collect::<Vec<_>>())
        .bind(
            events
                .iter()
                .map(|e| e.client_occurred_at)
                .collect::<Vec<_>>(),
        )
        .bind(flag(&|e| e.client_occurred_at.is_some()))
        .bind(events.iter().map(|e| e.visitor_id).collect::<Vec<_>>())
        .bind(session_ids.to_vec())
        .bind(text(&|e| e.user_id.clone()))
        .bind(
            events
                .iter()
                .map(|e| e.email_hash.as_ref().map(|h| h.as_bytes().to_vec()))
                .collect::<Vec<_>>(),
        )
        .bind(text(&|e| e.page.as_ref().map(|p| p.url.clone())))
        .bind(text(&|e| e.referrer.clone()))
        .bind(text(&|e| e.user_agent.clone()))
        .bind(events.iter().map(|e| e.ip_hash.clone()).collect::<Vec<_>>())
        .bind(utm(&|u| u.source.clone()))
        .bind(utm(&|u| u.medium.clone()))
        .bind(utm(&|u| u.campaign.clone()))
        .bind(utm(&|u| u.term.clone()))
        .bind(utm(&|u| u.content.clone()))
        .bind(click(&|c| c.gclid.clone()))
        .bind(click(&|c| c.gbraid.clone()))
        .bind(click(&|c| c.wbraid.clone()))
        .bind(click(&|c| c.fbclid.clone()))
        .bind(click(&|c| c.msclkid.clone()))
        .bind(click(&|c| c.ttclid.clone()))
        .bind(click(&|c| c.li_fat_id.clone()))
        .bind(text(&|e| e.creative_id.clone()))
        .bind(flag(&|e| e.consent_analytics))
        .bind(
            events
                .iter()
                .map(|e| e.consent_marketing)
                .collect::<Vec<_>>(),
        )
        .bind(flag(&|e| e.gpc))
        .bind(flag(&|e| e.is_bot))
        .bind(text(&|e| Some(e.key_kind.as_str().to_string())))
        .bind(
            events
                .iter()
                .map(|e| e.properties.clone())
                .collect::<Vec<_>>(),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_part_is_numbered_after_the_one_before() {
        let sql = SQL.as_str();
        let last = 2 + UPDATED.len() + OPENED.len() + RAW.len();
        assert!(sql.contains(&format!("${last}::jsonb[]")), "{sql}");
        assert!(!sql.contains(&format!("${}", last + 1)), "{sql}");
        // The update sets every counter column but the key.
        assert!(sql.contains("last_seen_at = u.last_seen_at"));
        assert!(!sql.contains("session_id = u.session_id,"));
    }
}
