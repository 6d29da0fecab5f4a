//! The batch writer: group commit for `/e`.
//!
//! Handlers validate and enrich, then hand their events to a bounded queue and wait. A few
//! writer tasks each take whatever has queued up (up to `max_batch_rows`), and store it in
//! one transaction: suppression, idempotency, sessions, raw events and identity links. Each
//! request is answered only after that transaction commits, so a 2xx always means durable,
//! while one commit (one fsync) serves many requests under load.
//!
//! When the queue is full the handler answers 503 with `Retry-After` instead of buffering
//! without bound.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection as _, PgConnection, Postgres, Transaction};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use super::event::AcceptedEvent;
use super::sessions;
use crate::identity::{self, IdentityKey};
use crate::telemetry::IngestMetrics;

/// What happened to one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Stored {
        session_id: Option<Uuid>,
    },
    /// Already stored by an earlier request (a retry) or earlier in the same batch.
    Duplicate,
    /// The person (or visitor) asked not to be tracked.
    Suppressed,
}

/// Why a request's events could not be written.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error("the ingest queue is full, or the database is busy")]
    Overloaded,
    #[error("the database is unavailable")]
    Unavailable,
    /// The database refused the batch for a reason that retrying will not fix (a permission,
    /// a bug in a statement): the cause is in the log.
    #[error("the database refused the events")]
    Refused,
}

impl SubmitError {
    /// The one database-error policy ([`crate::db`]) applied to a failed batch.
    fn from_database(error: &sqlx::Error) -> SubmitError {
        if crate::db::connection_may_be_lost(error) {
            SubmitError::Unavailable
        } else if crate::db::is_overload(error) {
            SubmitError::Overloaded
        } else {
            SubmitError::Refused
        }
    }
}

#[derive(Debug, Clone)]
pub struct WriterConfig {
    pub writers: usize,
    pub queue_capacity: usize,
    pub max_batch_rows: usize,
}

impl Default for WriterConfig {
    fn default() -> Self {
        WriterConfig {
            writers: 2,
            queue_capacity: 4096,
            max_batch_rows: 2000,
        }
    }
}

/// Wakes the order worker after a batch with purchases commits.
pub type PurchaseSignal = Arc<tokio::sync::Notify>;

struct Job {
    events: Vec<AcceptedEvent>,
    reply: oneshot::Sender<Result<Vec<Outcome>, SubmitError>>,
}

/// The handle handlers submit to. Cloning is cheap.
///
/// Each writer has its own queue, and a request goes to the queue its (company, visitor)
/// hashes to. Writers lock the visitors they write (advisory locks), so two writers holding
/// events of one visitor would wait for each other's commit; with one queue per writer they
/// almost never do (only a request mixing visitors can), and both stay busy.
#[derive(Clone)]
pub struct Writer {
    queues: Arc<Vec<mpsc::Sender<Job>>>,
}

impl Writer {
    /// Starts the writer tasks. They stop when every `Writer` handle is dropped and their
    /// queues are drained, which is how shutdown flushes.
    pub fn start(
        database: PgConnectOptions,
        config: WriterConfig,
        metrics: Arc<IngestMetrics>,
        purchases: PurchaseSignal,
    ) -> (Writer, Vec<tokio::task::JoinHandle<()>>) {
        let writers = config.writers.max(1);
        // The capacity is shared out; every queue holds at least one request.
        let per_queue = config.queue_capacity.div_ceil(writers).max(1);
        metrics.queue_capacity.set((per_queue * writers) as i64);
        let mut queues = Vec::with_capacity(writers);
        let mut tasks = Vec::with_capacity(writers);
        for _ in 0..writers {
            let (queue, receiver) = mpsc::channel(per_queue);
            queues.push(queue);
            tasks.push(tokio::spawn(run_writer(
                WriterConnection::new(database.clone()),
                receiver,
                config.max_batch_rows,
                metrics.clone(),
                purchases.clone(),
            )));
        }
        (
            Writer {
                queues: Arc::new(queues),
            },
            tasks,
        )
    }

    /// Requests waiting for a writer.
    pub fn queue_depth(&self) -> usize {
        self.queues
            .iter()
            .map(|q| q.max_capacity() - q.capacity())
            .sum()
    }

    /// Queues the events and waits until they are committed.
    pub async fn submit(&self, events: Vec<AcceptedEvent>) -> Result<Vec<Outcome>, SubmitError> {
        let queue = &self.queues[self.shard(&events)];
        let (reply, answer) = oneshot::channel();
        queue.try_send(Job { events, reply }).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => SubmitError::Overloaded,
            mpsc::error::TrySendError::Closed(_) => SubmitError::Unavailable,
        })?;
        match answer.await {
            Ok(result) => result,
            // The writer stopped (shutting down) without answering.
            Err(_) => Err(SubmitError::Unavailable),
        }
    }

    /// The queue of a request: by the visitor of its first event.
    fn shard(&self, events: &[AcceptedEvent]) -> usize {
        let key = events
            .first()
            .map_or(0, |e| visitor_lock_key(e.company_id, e.visitor_id) as u64);
        (key % self.queues.len() as u64) as usize
    }
}

/// A writer's own connection, opened on first use and reopened after it breaks.
///
/// Not a pool: a shared pool hands out its idle connections in turn, so the writers' batches
/// went to a different backend each time (cold caches, another process woken), and a small
/// pool of their own made them wait for connections given back by a task on the busy runtime.
///
/// Its statements keep generic plans (see [`crate::db::connect_ingest_writer`]), made the first
/// time each runs. Plans made on young tables can be wrong for the grown ones (on an empty
/// `sessions`, a backward scan of the start-time index looks as good as the visitor index),
/// so they are made again after 1, 2, 4, … batches, then every [`REPLAN_EVERY`] batches: a
/// plan is at worst as old as the last doubling of what this writer has stored.
struct WriterConnection {
    options: PgConnectOptions,
    conn: Option<PgConnection>,
    batches: u64,
    replan_at: u64,
}

/// Batches between two re-plannings once the doubling has reached it.
const REPLAN_EVERY: u64 = 4096;

impl WriterConnection {
    fn new(options: PgConnectOptions) -> Self {
        WriterConnection {
            options,
            conn: None,
            batches: 0,
            replan_at: 1,
        }
    }

    /// The connection for the next batch: (re)opened if needed, its plans re-made when due.
    async fn for_next_batch(&mut self) -> Result<&mut PgConnection, sqlx::Error> {
        if self.conn.is_none() {
            self.conn = Some(crate::db::connect_ingest_writer(&self.options).await?);
        }
        let conn = self.conn.as_mut().expect("connected just above");
        self.batches += 1;
        if self.batches >= self.replan_at {
            conn.clear_cached_statements().await?;
            self.replan_at = self.batches + self.batches.min(REPLAN_EVERY);
        }
        Ok(conn)
    }

    /// Drops the connection when it may be lost (the next batch reconnects); keeps it after
    /// an error about the events (the transaction was rolled back).
    fn after_error(&mut self, error: &sqlx::Error) {
        if crate::db::connection_may_be_lost(error) {
            self.conn = None;
        }
    }

    /// Writes one batch. A connection that sat idle may have died unnoticed (PostgreSQL
    /// restarted, a proxy dropped it), which only using it finds out: after such a failure the
    /// batch is tried once more on a new connection. That is safe even if the first attempt
    /// committed before the answer was lost: its event ids are taken, so the second attempt
    /// stores nothing twice.
    async fn write(&mut self, events: &[&AcceptedEvent]) -> Result<Vec<Outcome>, sqlx::Error> {
        let reused = self.conn.is_some();
        match self.write_once(events).await {
            Err(error) if reused && crate::db::connection_may_be_lost(&error) => {
                tracing::warn!(error = %error, "ingest connection lost, retrying on a new one");
                self.write_once(events).await
            }
            result => result,
        }
    }

    async fn write_once(&mut self, events: &[&AcceptedEvent]) -> Result<Vec<Outcome>, sqlx::Error> {
        let result = match self.for_next_batch().await {
            Ok(conn) => write_batch(conn, events).await,
            Err(error) => Err(error),
        };
        if let Err(error) = &result {
            self.after_error(error);
        }
        result
    }
}

async fn run_writer(
    mut connection: WriterConnection,
    mut receiver: mpsc::Receiver<Job>,
    max_rows: usize,
    metrics: Arc<IngestMetrics>,
    purchases: PurchaseSignal,
) {
    while let Some(first) = receiver.recv().await {
        let mut rows = first.events.len();
        let mut jobs = vec![first];
        // Take what queued while the previous batch was committing; never wait for more.
        while rows < max_rows {
            match receiver.try_recv() {
                Ok(job) => {
                    rows += job.events.len();
                    jobs.push(job);
                }
                Err(_) => break,
            }
        }
        let started = std::time::Instant::now();
        let events: usize = jobs.iter().map(|j| j.events.len()).sum();
        let has_purchases = jobs
            .iter()
            .any(|j| j.events.iter().any(|e| e.event_name == "purchase"));
        write_jobs(&mut connection, jobs).await;
        if has_purchases {
            purchases.notify_one();
        }
        metrics.batch_events.observe(events as f64);
        metrics
            .flush_seconds
            .observe(started.elapsed().as_secs_f64());
    }
}

/// Writes the jobs in one transaction. If the database refuses it, each job is retried alone,
/// so one request that trips the database cannot fail the others of its batch. If the
/// database cannot be reached, every job is answered at once (503): retrying them one by one
/// would only try to reconnect once per request.
async fn write_jobs(connection: &mut WriterConnection, jobs: Vec<Job>) {
    let all: Vec<&AcceptedEvent> = jobs.iter().flat_map(|j| j.events.iter()).collect();
    match connection.write(&all).await {
        Ok(outcomes) => {
            let mut outcomes = outcomes.into_iter();
            for job in jobs {
                let mine = outcomes.by_ref().take(job.events.len()).collect();
                let _ = job.reply.send(Ok(mine));
            }
        }
        Err(error) if jobs.len() == 1 || crate::db::connection_may_be_lost(&error) => {
            tracing::error!(error = %error, events = all.len(), "writing events failed");
            for job in jobs {
                let _ = job.reply.send(Err(SubmitError::from_database(&error)));
            }
        }
        Err(error) => {
            tracing::warn!(error = %error, jobs = jobs.len(), "batch failed, retrying requests one by one");
            for job in jobs {
                let events: Vec<&AcceptedEvent> = job.events.iter().collect();
                let result = connection.write(&events).await.map_err(|error| {
                    tracing::error!(error = %error, events = events.len(), "writing events failed");
                    SubmitError::from_database(&error)
                });
                let _ = job.reply.send(result);
            }
        }
    }
}

/// Stores a batch (any companies) in one transaction and returns an outcome per event.
pub async fn write_batch(
    conn: &mut PgConnection,
    events: &[&AcceptedEvent],
) -> Result<Vec<Outcome>, sqlx::Error> {
    let mut outcomes = vec![Outcome::Duplicate; events.len()];
    let mut by_company: BTreeMap<Uuid, Vec<usize>> = BTreeMap::new();
    let mut seen = HashSet::new();
    for (i, event) in events.iter().enumerate() {
        // A duplicate inside the batch stays `Duplicate`.
        if seen.insert((event.company_id, event.event_id)) {
            by_company.entry(event.company_id).or_default().push(i);
        }
    }

    let mut tx = conn.begin().await?;
    lock_visitors(&mut tx, events).await?;
    for (company_id, indexes) in by_company {
        crate::db::set_company(&mut tx, company_id).await?;
        let company_events: Vec<&AcceptedEvent> = indexes.iter().map(|&i| events[i]).collect();
        let company_outcomes = write_company(&mut tx, company_id, &company_events).await?;
        for (i, outcome) in indexes.into_iter().zip(company_outcomes) {
            outcomes[i] = outcome;
        }
    }
    tx.commit().await?;
    Ok(outcomes)
}

/// Takes a transaction-scoped advisory lock per (company, visitor), all at once and in one
/// global order, so concurrent writers (in this process or another node) serialise per
/// visitor and can never deadlock each other.
async fn lock_visitors(
    tx: &mut Transaction<'_, Postgres>,
    events: &[&AcceptedEvent],
) -> Result<(), sqlx::Error> {
    let mut keys: Vec<i64> = events
        .iter()
        .map(|e| visitor_lock_key(e.company_id, e.visitor_id))
        .collect();
    keys.sort_unstable();
    keys.dedup();
    sqlx::query("SELECT count(pg_advisory_xact_lock(k)) FROM unnest($1::int8[]) AS k")
        .bind(&keys)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

fn visitor_lock_key(company_id: Uuid, visitor_id: Uuid) -> i64 {
    let (c_hi, c_lo) = company_id.as_u64_pair();
    let (v_hi, v_lo) = visitor_id.as_u64_pair();
    (c_hi ^ c_lo ^ v_hi.rotate_left(17) ^ v_lo) as i64
}

async fn write_company(
    tx: &mut Transaction<'_, Postgres>,
    company_id: Uuid,
    events: &[&AcceptedEvent],
) -> Result<Vec<Outcome>, sqlx::Error> {
    let mut outcomes = vec![Outcome::Suppressed; events.len()];
    let suppressed = suppressed_events(tx, company_id, events).await?;
    let candidates: Vec<usize> = (0..events.len()).filter(|i| !suppressed[*i]).collect();

    let new_ids = claim_event_ids(tx, company_id, events, &candidates).await?;
    let fresh: Vec<usize> = candidates
        .iter()
        .copied()
        .filter(|&i| {
            let new = new_ids.contains(&events[i].event_id);
            if !new {
                outcomes[i] = Outcome::Duplicate;
            }
            new
        })
        .collect();
    if fresh.is_empty() {
        return Ok(outcomes);
    }
    let fresh_events: Vec<&AcceptedEvent> = fresh.iter().map(|&i| events[i]).collect();

    let (visitors, since) = earliest_per_visitor(&fresh_events);
    let existing = sessions::load_joinable(tx, company_id, &visitors, &since).await?;
    let sessionized = sessions::sessionize(company_id, &fresh_events, existing);
    super::store::write(
        tx,
        company_id,
        &fresh_events,
        &sessionized.session_ids,
        &sessionized.sessions,
    )
    .await?;
    link_identities(tx, company_id, &fresh_events).await?;
    record_consent(tx, company_id, &fresh_events).await?;
    let purchases = super::purchase::purchase_facts(&fresh_events, &sessionized.session_ids);
    crate::commerce::inbox::enqueue(tx, company_id, &purchases).await?;

    for (slot, session_id) in fresh.into_iter().zip(sessionized.session_ids) {
        outcomes[slot] = Outcome::Stored { session_id };
    }
    Ok(outcomes)
}

/// Marks the events of suppressed people: a suppressed visitor, user or email directly, or a
/// visitor whose person has any suppressed key.
async fn suppressed_events(
    tx: &mut Transaction<'_, Postgres>,
    company_id: Uuid,
    events: &[&AcceptedEvent],
) -> Result<Vec<bool>, sqlx::Error> {
    let visitors: Vec<String> = events.iter().map(|e| e.visitor_id.to_string()).collect();
    let users: Vec<String> = events.iter().filter_map(|e| e.user_id.clone()).collect();
    let emails: Vec<String> = events
        .iter()
        .filter_map(|e| e.email_hash.as_ref().map(|h| h.to_hex()))
        .collect();
    let rows: Vec<(String, String)> = sqlx::query_as(
        "WITH c AS (SELECT hash_key FROM companies WHERE company_id = $1),
              asked(kind, value) AS (
                  SELECT 'visitor', v FROM unnest($2::text[]) v
                  UNION ALL SELECT 'user', u FROM unnest($3::text[]) u
                  UNION ALL SELECT 'email', e FROM unnest($4::text[]) e)
         SELECT a.kind, a.value FROM asked a, c
         WHERE EXISTS (SELECT 1 FROM suppressions s
                       WHERE s.company_id = $1 AND s.kind = a.kind
                         AND s.value = lux_suppression_key(c.hash_key, a.kind, a.value))
         UNION
         SELECT 'visitor', v.key_value FROM c, identity_keys v
         JOIN identity_keys k ON k.company_id = v.company_id AND k.person_id = v.person_id
         WHERE v.company_id = $1 AND v.key_kind = 'visitor' AND v.key_value = ANY($2)
           AND EXISTS (SELECT 1 FROM suppressions s
                       WHERE s.company_id = $1 AND s.kind = k.key_kind
                         AND s.value = lux_suppression_key(c.hash_key, k.key_kind, k.key_value))",
    )
    .bind(company_id)
    .bind(&visitors)
    .bind(&users)
    .bind(&emails)
    .fetch_all(&mut **tx)
    .await?;
    if rows.is_empty() {
        return Ok(vec![false; events.len()]);
    }
    let hit: HashSet<(String, String)> = rows.into_iter().collect();
    let is = |kind: &str, value: String| hit.contains(&(kind.to_string(), value));
    Ok(events
        .iter()
        .map(|e| {
            is("visitor", e.visitor_id.to_string())
                || e.user_id.clone().is_some_and(|u| is("user", u))
                || e.email_hash
                    .as_ref()
                    .is_some_and(|h| is("email", h.to_hex()))
        })
        .collect())
}

/// Records the event ids; returns those not seen before. A retry of a stored event finds
/// its id taken and is skipped, inside a batch and across batches and nodes.
async fn claim_event_ids(
    tx: &mut Transaction<'_, Postgres>,
    company_id: Uuid,
    events: &[&AcceptedEvent],
    candidates: &[usize],
) -> Result<HashSet<Uuid>, sqlx::Error> {
    if candidates.is_empty() {
        return Ok(HashSet::new());
    }
    // Sorted: two writers inserting overlapping ids take the index locks in one order.
    let mut sorted: Vec<usize> = candidates.to_vec();
    sorted.sort_by_key(|&i| events[i].event_id);
    let ids: Vec<Uuid> = sorted.iter().map(|&i| events[i].event_id).collect();
    let received: Vec<_> = sorted.iter().map(|&i| events[i].received_at).collect();
    let claimed: Vec<Uuid> = sqlx::query_scalar(
        "INSERT INTO event_ids (company_id, event_id, received_at)
         SELECT $1, * FROM unnest($2::uuid[], $3::timestamptz[])
         ON CONFLICT (company_id, event_id) DO NOTHING
         RETURNING event_id",
    )
    .bind(company_id)
    .bind(&ids)
    .bind(&received)
    .fetch_all(&mut **tx)
    .await?;
    Ok(claimed.into_iter().collect())
}

fn earliest_per_visitor(
    events: &[&AcceptedEvent],
) -> (Vec<Uuid>, Vec<chrono::DateTime<chrono::Utc>>) {
    let mut earliest: HashMap<Uuid, chrono::DateTime<chrono::Utc>> = HashMap::new();
    for e in events {
        earliest
            .entry(e.visitor_id)
            .and_modify(|t| *t = (*t).min(e.occurred_at))
            .or_insert(e.occurred_at);
    }
    earliest.into_iter().unzip()
}

/// Appends to the consent ledger the choices these events state that differ from their
/// visitor's current state (SPEC §9). Most batches state none and cost nothing here.
async fn record_consent(
    tx: &mut Transaction<'_, Postgres>,
    company_id: Uuid,
    events: &[&AcceptedEvent],
) -> Result<(), sqlx::Error> {
    use crate::privacy::consent::{Change, Purpose};
    let mut stating: Vec<&&AcceptedEvent> = events
        .iter()
        .filter(|e| e.consent_choice.is_some())
        .collect();
    if stating.is_empty() {
        return Ok(());
    }
    stating.sort_by_key(|e| e.occurred_at);
    let mut changes = Vec::new();
    for event in stating {
        let Some(choice) = &event.consent_choice else {
            continue;
        };
        let source = match event.key_kind {
            crate::tenancy::KeyKind::Write => "snippet",
            crate::tenancy::KeyKind::Secret => "api",
        };
        let stated = [
            (Purpose::Analytics, choice.analytics, source),
            (Purpose::Marketing, choice.marketing, source),
            (Purpose::SaleSharing, choice.gpc.then_some(false), "gpc"),
        ];
        for (purpose, value, source) in stated {
            if let Some(granted) = value {
                changes.push(Change {
                    subject_kind: "visitor",
                    subject: choice.visitor.to_string(),
                    purpose,
                    granted,
                    source: source.to_string(),
                    notice_version: choice.notice_version.clone(),
                    message_id: None,
                    at: event.occurred_at,
                });
            }
        }
    }
    crate::privacy::consent::append_visitor_changes(tx, company_id, changes).await?;
    Ok(())
}

async fn link_identities(
    tx: &mut Transaction<'_, Postgres>,
    company_id: Uuid,
    events: &[&AcceptedEvent],
) -> Result<(), sqlx::Error> {
    let linking: Vec<&&AcceptedEvent> = events.iter().filter(|e| e.links_identity()).collect();
    if linking.is_empty() {
        return Ok(());
    }
    identity::lock_company(tx, company_id).await?;
    for event in linking {
        let mut keys = vec![IdentityKey::Visitor(event.visitor_id)];
        if let Some(user) = &event.user_id {
            keys.push(IdentityKey::User(user.clone()));
        }
        if let Some(email) = &event.email_hash {
            keys.push(IdentityKey::Email(email.to_hex()));
        }
        identity::link(tx, company_id, &keys, event.occurred_at).await?;
    }
    Ok(())
}
