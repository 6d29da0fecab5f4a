//! Sessionization: which visit each event belongs to (SPEC §4).
//!
//! - A session ends after 30 minutes without an event with a page.
//! - Arriving through a different campaign (UTM source/medium/campaign or a new ad click id)
//!   starts a new session even within 30 minutes; a page without campaign markers continues.
//! - A session lasts at most 24 hours: a visitor active all day long (a kiosk, a bot) gets a
//!   new session, and the lookup of joinable sessions stays an index range scan.
//! - Only events with a page open or extend sessions. An event without a page (a purchase
//!   confirmed by a server, say) joins the session active at its time, or none.
//!
//! The decision runs inside the writer's transaction while it holds an advisory lock per
//! visitor, on the visitor's sessions as stored, so every ingestion node decides alike.
//! A session's id is derived from its first event, so the same stream gives the same ids
//! whichever node (or how many) received it.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use sqlx::{Postgres, Transaction};
use uuid::Uuid;

use super::event::AcceptedEvent;

/// Inactivity that ends a session.
pub const SESSION_TIMEOUT_MINUTES: i64 = 30;

/// The mutable part of a session, as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SessionRow {
    pub session_id: Uuid,
    pub visitor_id: Uuid,
    pub started_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    pub campaign_key: Option<String>,
    pub page_views: i32,
    pub events: i32,
    pub engagement_ms: i64,
    /// The `creative_id` of the session's first event that carried one (in the order the
    /// events were placed); the rollups fall back to the landing `utm_content` without one.
    pub creative_id: Option<String>,
}

/// A session touched by a batch.
#[derive(Debug, Clone)]
pub struct TouchedSession {
    pub row: SessionRow,
    /// The index (in the batch's event slice) of the event that opened it, for new sessions.
    pub opened_by: Option<usize>,
    pub changed: bool,
}

/// The result of sessionizing a batch: a session id per event, and the sessions to write.
pub struct Sessionized {
    pub session_ids: Vec<Option<Uuid>>,
    pub sessions: Vec<TouchedSession>,
}

fn timeout() -> Duration {
    Duration::minutes(SESSION_TIMEOUT_MINUTES)
}

/// Longest a session may last; the SQL of [`load_joinable`] uses the same bound.
fn max_length() -> Duration {
    Duration::hours(24)
}

/// Derives a session id from the company, the event that opened it and its start, so the
/// same stream gives the same ids on every node.
///
/// The first 48 bits are the start in Unix milliseconds, as in a UUIDv7 (the rest is the v5
/// hash of the opening event): the primary key of `sessions` then grows at its right edge,
/// and the sessions a batch extends, all recent, sit on a few hot index pages. With random
/// ids every new session and every counter update touched a random page of an index that
/// outgrows memory as the table does (see `cargo bench --bench id_locality`).
pub fn session_id_for(company_id: Uuid, opening_event: Uuid, started_at: DateTime<Utc>) -> Uuid {
    let mut bytes = *Uuid::new_v5(&company_id, opening_event.as_bytes()).as_bytes();
    let millis = started_at.timestamp_millis().clamp(0, (1 << 48) - 1) as u64;
    bytes[..6].copy_from_slice(&millis.to_be_bytes()[2..]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

/// Assigns sessions to `events` (all of one company), given the visitors' stored sessions
/// that could still be joined.
pub fn sessionize(
    company_id: Uuid,
    events: &[&AcceptedEvent],
    existing: Vec<SessionRow>,
) -> Sessionized {
    let mut by_visitor: HashMap<Uuid, Vec<TouchedSession>> = HashMap::new();
    for row in existing {
        by_visitor
            .entry(row.visitor_id)
            .or_default()
            .push(TouchedSession {
                row,
                opened_by: None,
                changed: false,
            });
    }
    for sessions in by_visitor.values_mut() {
        sessions.sort_by_key(|s| (s.row.started_at, s.row.session_id));
    }

    // Time order; equal times keep the order of arrival (a stable sort over the batch, which
    // holds its requests and their events in the order they came). Never the event id: ids
    // are not a clock (a browser's UUIDv7s need not be monotonic within a millisecond, nor a
    // server sender's at all), and sorting by them split one visit in two (issue 13).
    let mut order: Vec<usize> = (0..events.len()).collect();
    order.sort_by_key(|&i| events[i].occurred_at);

    let mut session_ids = vec![None; events.len()];
    for i in order {
        let event = events[i];
        let sessions = by_visitor.entry(event.visitor_id).or_default();
        session_ids[i] = match &event.page {
            Some(page) => Some(place_page_event(company_id, i, event, page, sessions)),
            None => join_active(event, sessions),
        };
    }
    Sessionized {
        session_ids,
        sessions: by_visitor
            .into_values()
            .flatten()
            .filter(|s| s.changed)
            .collect(),
    }
}

/// The latest session started at or before `t` that is still open at `t`.
fn active_at(sessions: &mut [TouchedSession], t: DateTime<Utc>) -> Option<&mut TouchedSession> {
    sessions
        .iter_mut()
        .rev()
        .find(|s| s.row.started_at <= t)
        .filter(|s| t <= s.row.last_seen_at + timeout() && t - s.row.started_at < max_length())
}

fn place_page_event(
    company_id: Uuid,
    index: usize,
    event: &AcceptedEvent,
    page: &super::event::Page,
    sessions: &mut Vec<TouchedSession>,
) -> Uuid {
    let t = event.occurred_at;
    let campaign = page.landing.campaign_key();
    if let Some(session) = active_at(sessions, t)
        && (campaign.is_none() || campaign == session.row.campaign_key)
    {
        session.row.last_seen_at = session.row.last_seen_at.max(t);
        count(session, event);
        return session.row.session_id;
    }
    let mut session = TouchedSession {
        row: SessionRow {
            session_id: session_id_for(company_id, event.event_id, t),
            visitor_id: event.visitor_id,
            started_at: t,
            last_seen_at: t,
            campaign_key: campaign,
            page_views: 0,
            events: 0,
            engagement_ms: 0,
            creative_id: None,
        },
        opened_by: Some(index),
        changed: true,
    };
    count(&mut session, event);
    let id = session.row.session_id;
    let at = sessions.partition_point(|s| (s.row.started_at, s.row.session_id) <= (t, id));
    sessions.insert(at, session);
    id
}

fn join_active(event: &AcceptedEvent, sessions: &mut [TouchedSession]) -> Option<Uuid> {
    let session = active_at(sessions, event.occurred_at)?;
    count(session, event);
    Some(session.row.session_id)
}

fn count(session: &mut TouchedSession, event: &AcceptedEvent) {
    session.row.events += 1;
    if event.is_page_view() {
        session.row.page_views += 1;
    }
    session.row.engagement_ms += event.engaged_ms;
    if session.row.creative_id.is_none() {
        session.row.creative_id.clone_from(&event.creative_id);
    }
    session.changed = true;
}

/// Loads the stored sessions of `visitors` that an event at or after `since` (per visitor)
/// could still join.
pub async fn load_joinable(
    tx: &mut Transaction<'_, Postgres>,
    company_id: Uuid,
    visitors: &[Uuid],
    since: &[DateTime<Utc>],
) -> Result<Vec<SessionRow>, sqlx::Error> {
    sqlx::query_as(
        // LATERAL: one index probe per visitor, newest sessions first, whatever the
        // planner guesses about the array's length. The ORDER BY is the visitor index's own
        // order, so no other index can look cheaper: the writers' plans are generic and made
        // while the table may still be empty, when a backward scan of `sessions_by_start`
        // (company, started_at) filtered by visitor would otherwise win, and then read every
        // session of the last day for each visitor once the table has grown.
        "SELECT s.session_id, s.visitor_id, s.started_at, s.last_seen_at, s.campaign_key,
                s.page_views, s.events, s.engagement_ms, s.creative_id
         FROM unnest($2::uuid[], $3::timestamptz[]) AS v(visitor_id, since)
         CROSS JOIN LATERAL (
             SELECT * FROM sessions s
             WHERE s.company_id = $1 AND s.visitor_id = v.visitor_id
               AND s.last_seen_at >= v.since - interval '30 minutes'
               AND s.started_at >= v.since - interval '24 hours'
             ORDER BY s.visitor_id, s.started_at DESC
             LIMIT 20
         ) s",
    )
    .bind(company_id)
    .bind(visitors)
    .bind(since)
    .fetch_all(&mut **tx)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_ids_are_deterministic_and_sort_by_start() {
        let company = Uuid::now_v7();
        let start = DateTime::parse_from_rfc3339("2026-11-26T10:00:00.123Z")
            .unwrap()
            .to_utc();
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let id = session_id_for(company, a, start);
        assert_eq!(
            id,
            session_id_for(company, a, start),
            "same stream, same id"
        );
        assert_ne!(
            id,
            session_id_for(company, b, start),
            "another opening event"
        );
        assert_ne!(
            id,
            session_id_for(Uuid::now_v7(), a, start),
            "another company"
        );
        assert_eq!(id.get_version_num(), 8);
        assert_eq!(id.get_variant(), uuid::Variant::RFC4122);
        // The start leads, to the millisecond: later sessions sort after earlier ones
        // whatever their opening events, so the primary key grows at its right edge.
        let later = start + Duration::milliseconds(1);
        for _ in 0..100 {
            let (x, y) = (Uuid::new_v4(), Uuid::new_v4());
            assert!(session_id_for(company, x, start) < session_id_for(company, y, later));
        }
        assert_eq!(
            &id.as_bytes()[..6],
            &1_795_687_200_123_u64.to_be_bytes()[2..]
        );
    }
}
