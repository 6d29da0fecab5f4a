//! The SQL that writes provider events and the sends they name, inside the caller's
//! transaction (already scoped to one company by `crate::db::begin_for_company`).
//!
//! A batch (a SendGrid POST of a thousand events, one Mailgun event, the recipients of one SES
//! record) costs a fixed number of statements whatever its size: the company's hash key, one
//! lookup of the sends named, one insert of the sends not known yet, one read of the earlier
//! deliveries and engagements the machine rules need, one insert of the events, one of the
//! consent records. Idempotency is the database's: `message_events_once` on
//! (company, provider, provider_event_id), so a redelivery inserts nothing and creates nothing.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::{Postgres, Transaction};
use uuid::Uuid;

use super::machine::{self, Engagement};
use super::normalize::{EventKind, ProviderEvent};
use super::recipient::RecipientHash;
use super::{Channel, Provider};

/// One normalised event and where it sat in the delivery (0-based).
#[derive(Debug)]
pub struct Incoming {
    pub index: usize,
    pub event: ProviderEvent,
}

/// What storing a batch did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Events stored now.
    pub stored: usize,
    /// Events stored before (redeliveries, or twice in one batch).
    pub duplicates: usize,
    /// Sends first learned from these events.
    pub sends_created: usize,
    /// Of the stored events, those judged a machine's.
    pub machine: usize,
    /// Consent records appended (unsubscribes and complaints).
    pub consent_records: usize,
    /// Events about a suppressed (or erased) recipient: not stored, so nothing re-creates them.
    pub suppressed: usize,
    /// Events that could not be stored, with their index and why.
    pub rejected: Vec<(usize, String)>,
}

/// A send as the events need it.
#[derive(Debug, Clone)]
struct Send {
    message_id: String,
    sent_at: Option<DateTime<Utc>>,
    recipient_hash: Option<Vec<u8>>,
}

/// An event ready to insert.
struct Row {
    index: usize,
    event: ProviderEvent,
    message_id: String,
    recipient_hash: Option<Vec<u8>>,
    subject_kind: Option<Channel>,
    machine_reason: Option<String>,
}

/// Stores `events` of one delivery (`delivery_id` in `webhook_deliveries`) for `company_id`.
pub async fn store_events(
    tx: &mut Transaction<'_, Postgres>,
    company_id: Uuid,
    provider: Provider,
    delivery_id: Uuid,
    received_at: DateTime<Utc>,
    events: Vec<Incoming>,
) -> Result<Outcome, sqlx::Error> {
    let mut outcome = Outcome::default();
    if events.is_empty() {
        return Ok(outcome);
    }
    let hash_key = company_hash_key(tx, company_id).await?;
    let (named, unnamed): (Vec<Incoming>, Vec<Incoming>) = events
        .into_iter()
        .partition(|incoming| message_key(&incoming.event).is_some());
    for incoming in unnamed {
        outcome.rejected.push((
            incoming.index,
            "event names no message (no lux_mid and no provider message id)".into(),
        ));
    }
    let named = without_suppressed(tx, company_id, &hash_key, named).await?;
    outcome.suppressed = named.1;
    let named = named.0;
    let mut sends = Sends::load(tx, company_id, provider, &named).await?;
    let mut rows = Vec::with_capacity(named.len());
    for incoming in named {
        let hash = incoming.event.recipient.as_ref().map(|r| r.hash(&hash_key));
        let send = sends.resolve(provider, &incoming.event, hash.as_ref());
        // A message to several destinations has no one recipient to credit an event that
        // names nobody (an SES open of it), whatever its send holds.
        let inherited = send
            .recipient_hash
            .clone()
            .filter(|_| !incoming.event.several_destinations);
        let subject_kind = incoming
            .event
            .recipient
            .as_ref()
            .map(|r| r.channel())
            .or_else(|| inherited.as_ref().map(|_| provider.channel()));
        rows.push(Row {
            index: incoming.index,
            recipient_hash: hash.map(|h| h.as_bytes().to_vec()).or(inherited),
            message_id: send.message_id.clone(),
            event: incoming.event,
            subject_kind,
            machine_reason: None,
        });
    }
    // Rows and new sends go in in key order, so two deliveries naming the same events or
    // messages take their index locks in the same order and cannot deadlock each other.
    rows.sort_by(|a, b| a.event.provider_event_id.cmp(&b.event.provider_event_id));
    sends
        .new
        .sort_by(|a, b| a.0.message_id.cmp(&b.0.message_id));
    outcome.sends_created = sends.insert_new(tx, company_id, provider).await?;
    sends.complete_known(tx, company_id, provider).await?;
    judge_machines(tx, company_id, &sends, &mut rows).await?;
    let inserted = insert_events(tx, company_id, delivery_id, received_at, &rows).await?;
    outcome.stored = inserted.len();
    outcome.duplicates = rows.len() - inserted.len();
    outcome.machine = rows
        .iter()
        .filter(|row| row.machine_reason.is_some() && inserted.contains_key(&row.index))
        .count();
    outcome.consent_records = record_consent(tx, company_id, &rows, &inserted).await?;
    Ok(outcome)
}

/// Drops the events whose recipient's email is suppressed (`lux privacy suppress`, or an
/// erasure): storing them would re-create the person. Returns the rest and how many went.
async fn without_suppressed(
    tx: &mut Transaction<'_, Postgres>,
    company_id: Uuid,
    hash_key: &[u8],
    named: Vec<Incoming>,
) -> Result<(Vec<Incoming>, usize), sqlx::Error> {
    let hashes: Vec<String> = named
        .iter()
        .filter_map(|i| i.event.recipient.as_ref())
        .filter(|r| r.channel() == Channel::Email)
        .map(|r| r.hash(hash_key).to_hex())
        .collect();
    if hashes.is_empty() {
        return Ok((named, 0));
    }
    let suppressed: Vec<String> = sqlx::query_scalar(
        "SELECT h FROM companies c, unnest($2::text[]) h
         WHERE c.company_id = $1
           AND EXISTS (SELECT 1 FROM suppressions x
                       WHERE x.company_id = $1 AND x.kind = 'email'
                         AND x.value = lux_suppression_key(c.hash_key, 'email', h))",
    )
    .bind(company_id)
    .bind(&hashes)
    .fetch_all(&mut **tx)
    .await?;
    if suppressed.is_empty() {
        return Ok((named, 0));
    }
    let before = named.len();
    let kept: Vec<Incoming> = named
        .into_iter()
        .filter(|i| {
            i.event
                .recipient
                .as_ref()
                .is_none_or(|r| !suppressed.contains(&r.hash(hash_key).to_hex()))
        })
        .collect();
    let dropped = before - kept.len();
    Ok((kept, dropped))
}

/// The key recipients are hashed with (`companies.hash_key`): the same as buyers' emails.
async fn company_hash_key(
    tx: &mut Transaction<'_, Postgres>,
    company_id: Uuid,
) -> Result<Vec<u8>, sqlx::Error> {
    sqlx::query_scalar("SELECT hash_key FROM companies WHERE company_id = $1")
        .bind(company_id)
        .fetch_one(&mut **tx)
        .await
}

/// How an event names its message: our id, else the provider's.
fn message_key(event: &ProviderEvent) -> Option<&str> {
    event
        .lux_message_id
        .as_deref()
        .or(event.provider_message_id.as_deref())
}

/// The message id of a send first learned from a provider event (SPEC §11, migration).
fn new_message_id(provider: Provider, event: &ProviderEvent) -> String {
    match (&event.lux_message_id, &event.provider_message_id) {
        (Some(lux_mid), _) => lux_mid.clone(),
        (None, Some(provider_id)) => {
            let id = format!("{provider}:{provider_id}");
            // message_sends.message_id holds at most 200 characters.
            id.chars().take(200).collect()
        }
        (None, None) => unreachable!("events without a message key are rejected first"),
    }
}

/// The sends a batch names: those already stored, and those its events create.
struct Sends {
    by_message_id: HashMap<String, Send>,
    /// Provider message id → our message id.
    by_provider_id: HashMap<String, String>,
    /// Created by this batch, in order: (send, provider message id).
    new: Vec<(Send, Option<String>)>,
    /// Known sends that lack what an event now tells: (message id, provider message id,
    /// sent_at).
    completions: Vec<(String, Option<String>, Option<DateTime<Utc>>)>,
}

impl Sends {
    async fn load(
        tx: &mut Transaction<'_, Postgres>,
        company_id: Uuid,
        provider: Provider,
        events: &[Incoming],
    ) -> Result<Sends, sqlx::Error> {
        let mut lux_ids: Vec<&str> = events
            .iter()
            .filter_map(|i| i.event.lux_message_id.as_deref())
            .collect();
        let mut provider_ids: Vec<&str> = events
            .iter()
            .filter_map(|i| i.event.provider_message_id.as_deref())
            .collect();
        lux_ids.sort_unstable();
        lux_ids.dedup();
        provider_ids.sort_unstable();
        provider_ids.dedup();
        type SendRow = (
            String,
            String,
            Option<String>,
            Option<DateTime<Utc>>,
            Option<Vec<u8>>,
        );
        let found: Vec<SendRow> = sqlx::query_as(
            "SELECT message_id, provider, provider_message_id, sent_at, recipient_hash
             FROM message_sends
             WHERE company_id = $1
               AND (message_id = ANY($2)
                    OR (provider = $3 AND provider_message_id = ANY($4)))",
        )
        .bind(company_id)
        .bind(&lux_ids)
        .bind(provider.as_str())
        .bind(&provider_ids)
        .fetch_all(&mut **tx)
        .await?;
        let mut sends = Sends {
            by_message_id: HashMap::with_capacity(found.len()),
            by_provider_id: HashMap::with_capacity(found.len()),
            new: Vec::new(),
            completions: Vec::new(),
        };
        for (message_id, send_provider, provider_id, sent_at, recipient_hash) in found {
            if let Some(provider_id) = provider_id.filter(|_| send_provider == provider.as_str()) {
                sends.by_provider_id.insert(provider_id, message_id.clone());
            }
            sends.by_message_id.insert(
                message_id.clone(),
                Send {
                    message_id,
                    sent_at,
                    recipient_hash,
                },
            );
        }
        Ok(sends)
    }

    /// The send an event belongs to (SPEC §11): by `lux_mid`, else by the provider's message
    /// id, else a new one.
    fn resolve(
        &mut self,
        provider: Provider,
        event: &ProviderEvent,
        hash: Option<&RecipientHash>,
    ) -> Send {
        let leaves = matches!(event.kind, EventKind::Queued | EventKind::Sent);
        if let Some(send) = event
            .lux_message_id
            .as_ref()
            .and_then(|mid| self.by_message_id.get(mid))
        {
            let send = send.clone();
            self.note_completion(&send, event, leaves);
            return send;
        }
        if let Some(send) = event
            .provider_message_id
            .as_ref()
            .and_then(|pid| self.by_provider_id.get(pid))
            .and_then(|mid| self.by_message_id.get(mid))
        {
            return send.clone();
        }
        let send = Send {
            message_id: new_message_id(provider, event),
            sent_at: leaves.then_some(event.occurred_at),
            // The first recipient of several is not the send's recipient.
            recipient_hash: hash
                .filter(|_| !event.several_destinations)
                .map(|h| h.as_bytes().to_vec()),
        };
        if let Some(provider_id) = &event.provider_message_id {
            self.by_provider_id
                .insert(provider_id.clone(), send.message_id.clone());
        }
        self.by_message_id
            .insert(send.message_id.clone(), send.clone());
        self.new
            .push((send.clone(), event.provider_message_id.clone()));
        send
    }

    /// A send known by our id that has no provider message id yet learns it, so the
    /// provider's later events without `lux_mid` find it; one with no `sent_at` learns it
    /// from a queued or sent event.
    fn note_completion(&mut self, send: &Send, event: &ProviderEvent, leaves: bool) {
        let provider_id = event
            .provider_message_id
            .as_ref()
            .filter(|pid| !self.by_provider_id.contains_key(*pid));
        let sent_at = (leaves && send.sent_at.is_none()).then_some(event.occurred_at);
        if provider_id.is_some() || sent_at.is_some() {
            if let Some(pid) = provider_id {
                self.by_provider_id
                    .insert(pid.clone(), send.message_id.clone());
            }
            self.completions
                .push((send.message_id.clone(), provider_id.cloned(), sent_at));
        }
    }

    /// Inserts the sends this batch created; returns how many were new (another request may
    /// have created one meanwhile: then it is that one the events name).
    async fn insert_new(
        &self,
        tx: &mut Transaction<'_, Postgres>,
        company_id: Uuid,
        provider: Provider,
    ) -> Result<usize, sqlx::Error> {
        if self.new.is_empty() {
            return Ok(0);
        }
        let ids: Vec<&str> = self
            .new
            .iter()
            .map(|(s, _)| s.message_id.as_str())
            .collect();
        let provider_ids: Vec<Option<&str>> =
            self.new.iter().map(|(_, pid)| pid.as_deref()).collect();
        let hashes: Vec<Option<&[u8]>> = self
            .new
            .iter()
            .map(|(s, _)| s.recipient_hash.as_deref())
            .collect();
        let sent_at: Vec<Option<DateTime<Utc>>> = self.new.iter().map(|(s, _)| s.sent_at).collect();
        let inserted = sqlx::query(
            "INSERT INTO message_sends (company_id, message_id, channel, provider,
                 provider_message_id, recipient_hash, sent_at, origin)
             SELECT $1, u.message_id, $2, $3, u.provider_message_id, u.recipient_hash, u.sent_at,
                    'provider_event'
             FROM UNNEST($4::text[], $5::text[], $6::bytea[], $7::timestamptz[])
                  AS u(message_id, provider_message_id, recipient_hash, sent_at)
             ON CONFLICT DO NOTHING",
        )
        .bind(company_id)
        .bind(provider.channel().as_str())
        .bind(provider.as_str())
        .bind(&ids)
        .bind(&provider_ids)
        .bind(&hashes)
        .bind(&sent_at)
        .execute(&mut **tx)
        .await?;
        Ok(usize::try_from(inserted.rows_affected()).unwrap_or(usize::MAX))
    }

    /// Fills what known sends lacked. Never overwrites: a provider message id another send
    /// already holds is left alone (the unique index would refuse it).
    async fn complete_known(
        &self,
        tx: &mut Transaction<'_, Postgres>,
        company_id: Uuid,
        provider: Provider,
    ) -> Result<(), sqlx::Error> {
        if self.completions.is_empty() {
            return Ok(());
        }
        let ids: Vec<&str> = self
            .completions
            .iter()
            .map(|(mid, _, _)| mid.as_str())
            .collect();
        let provider_ids: Vec<Option<&str>> = self
            .completions
            .iter()
            .map(|(_, pid, _)| pid.as_deref())
            .collect();
        let sent_at: Vec<Option<DateTime<Utc>>> =
            self.completions.iter().map(|(_, _, at)| *at).collect();
        sqlx::query(
            "UPDATE message_sends s
             SET provider_message_id = COALESCE(s.provider_message_id,
                     CASE WHEN s.provider = $2 AND NOT EXISTS (
                         SELECT 1 FROM message_sends o
                         WHERE o.company_id = $1 AND o.provider = $2
                           AND o.provider_message_id = u.provider_message_id)
                     THEN u.provider_message_id END),
                 sent_at = COALESCE(s.sent_at, u.sent_at),
                 updated_at = now()
             FROM (SELECT DISTINCT ON (message_id) *
                   FROM UNNEST($3::text[], $4::text[], $5::timestamptz[])
                        AS t(message_id, provider_message_id, sent_at)
                   ORDER BY message_id, sent_at) u
             WHERE s.company_id = $1 AND s.message_id = u.message_id
               AND ((s.provider_message_id IS NULL AND u.provider_message_id IS NOT NULL)
                    OR (s.sent_at IS NULL AND u.sent_at IS NOT NULL))",
        )
        .bind(company_id)
        .bind(provider.as_str())
        .bind(&ids)
        .bind(&provider_ids)
        .bind(&sent_at)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }
}

/// What the machine rules know of one send and recipient: when it was delivered, and its
/// opens and clicks (stored before, and in this batch).
#[derive(Default)]
struct SendHistory {
    delivered_at: Option<DateTime<Utc>>,
    engagements: Vec<Engagement>,
}

impl SendHistory {
    fn add(&mut self, kind: EventKind, at: DateTime<Utc>, url: Option<String>) {
        match kind {
            EventKind::Delivered => {
                self.delivered_at = Some(self.delivered_at.map_or(at, |d| d.min(at)));
            }
            EventKind::Opened | EventKind::Clicked => {
                self.engagements.push(Engagement { kind, at, url });
            }
            _ => {}
        }
    }
}

/// Runs [`machine::detect`] on each open and click with the history of its send and
/// recipient. Events are append-only: an earlier click that a later burst reveals keeps the
/// verdict it had when it arrived (see docs/decisions.md).
async fn judge_machines(
    tx: &mut Transaction<'_, Postgres>,
    company_id: Uuid,
    sends: &Sends,
    rows: &mut [Row],
) -> Result<(), sqlx::Error> {
    let mut engaged: Vec<&str> = rows
        .iter()
        .filter(|row| row.event.kind.is_engagement())
        .map(|row| row.message_id.as_str())
        .collect();
    if engaged.is_empty() {
        return Ok(());
    }
    engaged.sort_unstable();
    engaged.dedup();
    type EventRow = (
        String,
        String,
        DateTime<Utc>,
        Option<String>,
        Option<Vec<u8>>,
    );
    let earlier: Vec<EventRow> = sqlx::query_as(
        "SELECT message_id, kind, occurred_at, url, recipient_hash FROM message_events
         WHERE company_id = $1 AND message_id = ANY($2)
           AND kind IN ('delivered', 'opened', 'clicked')",
    )
    .bind(company_id)
    .bind(&engaged)
    .fetch_all(&mut **tx)
    .await?;
    let mut histories: HashMap<(String, Option<Vec<u8>>), SendHistory> = HashMap::new();
    for (message_id, kind, at, url, hash) in earlier {
        if let Ok(kind) = kind.parse::<EventKind>() {
            histories
                .entry((message_id, hash))
                .or_default()
                .add(kind, at, url);
        }
    }
    for row in rows.iter() {
        histories
            .entry((row.message_id.clone(), row.recipient_hash.clone()))
            .or_default()
            .add(row.event.kind, row.event.occurred_at, row.event.url.clone());
    }
    for row in rows.iter_mut().filter(|row| row.event.kind.is_engagement()) {
        let key = (row.message_id.clone(), row.recipient_hash.clone());
        let history = histories.get(&key);
        let sent_at = sends
            .by_message_id
            .get(&row.message_id)
            .and_then(|s| s.sent_at);
        let context = machine::Context {
            delivered_at: history.and_then(|h| h.delivered_at).or(sent_at),
            others: history.map_or(&[], |h| h.engagements.as_slice()),
            links_in_message: None,
        };
        row.machine_reason = machine::detect(&row.event, &context)
            .map(|reason| format!("{}: {reason}", reason.code()));
    }
    Ok(())
}

/// Inserts the events; returns the item index → event id of those stored now.
async fn insert_events(
    tx: &mut Transaction<'_, Postgres>,
    company_id: Uuid,
    delivery_id: Uuid,
    received_at: DateTime<Utc>,
    rows: &[Row],
) -> Result<HashMap<usize, Uuid>, sqlx::Error> {
    let event_ids: Vec<Uuid> = rows.iter().map(|_| Uuid::now_v7()).collect();
    let column = |f: fn(&Row) -> Option<&str>| rows.iter().map(f).collect::<Vec<_>>();
    let provider = column(|r| Some(r.event.provider.as_str()));
    let provider_event_id = column(|r| Some(r.event.provider_event_id.as_str()));
    let message_id = column(|r| Some(r.message_id.as_str()));
    let kind = column(|r| Some(r.event.kind.as_str()));
    let status = column(|r| Some(r.event.provider_status.as_str()));
    let url = column(|r| r.event.url.as_deref());
    let machine_reason = column(|r| r.machine_reason.as_deref());
    let reason = column(|r| r.event.reason.as_deref());
    let occurred_at: Vec<DateTime<Utc>> = rows.iter().map(|r| r.event.occurred_at).collect();
    let hashes: Vec<Option<&[u8]>> = rows.iter().map(|r| r.recipient_hash.as_deref()).collect();
    let index: Vec<i32> = rows
        .iter()
        .map(|r| i32::try_from(r.index).unwrap_or(i32::MAX))
        .collect();
    let stored: Vec<(Uuid,)> = sqlx::query_as(
        "INSERT INTO message_events (company_id, event_id, provider, provider_event_id,
             message_id, kind, provider_status, occurred_at, received_at, recipient_hash, url,
             is_machine, machine_reason, reason, delivery_id, item_index)
         SELECT $1, u.event_id, u.provider, u.provider_event_id, u.message_id, u.kind, u.status,
                u.occurred_at, $2, u.recipient_hash, u.url, u.machine_reason IS NOT NULL,
                u.machine_reason, u.reason, $3, u.item_index
         FROM UNNEST($4::uuid[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[],
                     $10::timestamptz[], $11::bytea[], $12::text[], $13::text[], $14::text[],
                     $15::int4[])
              AS u(event_id, provider, provider_event_id, message_id, kind, status,
                   occurred_at, recipient_hash, url, machine_reason, reason, item_index)
         ON CONFLICT DO NOTHING
         RETURNING event_id",
    )
    .bind(company_id)
    .bind(received_at)
    .bind(delivery_id)
    .bind(&event_ids)
    .bind(&provider)
    .bind(&provider_event_id)
    .bind(&message_id)
    .bind(&kind)
    .bind(&status)
    .bind(&occurred_at)
    .bind(&hashes)
    .bind(&url)
    .bind(&machine_reason)
    .bind(&reason)
    .bind(&index)
    .fetch_all(&mut **tx)
    .await?;
    let stored: std::collections::HashSet<Uuid> = stored.into_iter().map(|(id,)| id).collect();
    Ok(rows
        .iter()
        .zip(event_ids)
        .filter(|(_, id)| stored.contains(id))
        .map(|(row, id)| (row.index, id))
        .collect())
}

/// A provider unsubscribe or complaint appends `marketing = false` for the recipient it names
/// itself, once: only for events stored now. One that names nobody withdraws nobody's consent
/// (its send's recipient is a guess, and a wrong guess silences someone who did not ask).
async fn record_consent(
    tx: &mut Transaction<'_, Postgres>,
    company_id: Uuid,
    rows: &[Row],
    inserted: &HashMap<usize, Uuid>,
) -> Result<usize, sqlx::Error> {
    let withdrawals: Vec<&Row> = rows
        .iter()
        .filter(|row| {
            matches!(
                row.event.kind,
                EventKind::Unsubscribed | EventKind::Complained
            ) && inserted.contains_key(&row.index)
                && row.event.recipient.is_some()
                && row.recipient_hash.is_some()
        })
        .collect();
    if withdrawals.is_empty() {
        return Ok(0);
    }
    // The one consent ledger (SPEC §9): an unsubscribe or complaint withdraws marketing
    // consent for the recipient's keyed hash (hex, like the identity graph's email keys).
    let changes: Vec<crate::privacy::consent::Change> = withdrawals
        .iter()
        .filter_map(|r| {
            let hash = r.recipient_hash.as_deref()?;
            let subject_kind = match r.subject_kind.unwrap_or(r.event.provider.channel()) {
                Channel::Email => "email",
                Channel::Sms => "phone",
            };
            Some(crate::privacy::consent::Change {
                subject_kind,
                subject: hex::encode(hash),
                purpose: crate::privacy::consent::Purpose::Marketing,
                granted: false,
                source: format!("{}:{}", r.event.provider, r.event.kind),
                notice_version: None,
                message_id: Some(r.message_id.clone()),
                at: r.event.occurred_at,
            })
        })
        .collect();
    let done = crate::privacy::consent::append(tx, company_id, &changes).await?;
    Ok(usize::try_from(done).unwrap_or(usize::MAX))
}

/// Keeps a delivery as commerce does (`webhook_deliveries`): when verified, what may be kept
/// of it sealed with the installation key; when refused, only its hash and size.
pub struct Delivery<'a> {
    pub provider: Provider,
    /// The bytes as received: hashed.
    pub body: &'a [u8],
    /// What is sealed when verified: the payload with emails redacted and IPs removed.
    pub sealed: Option<&'a [u8]>,
    pub failure: Option<&'a str>,
    /// The provider's id of the delivery, when it has one (SNS MessageId).
    pub provider_event_id: Option<&'a str>,
    pub event_type: Option<&'a str>,
}

/// Inserts the delivery and returns its id.
pub async fn record_delivery(
    tx: &mut Transaction<'_, Postgres>,
    key: &crate::commerce::secrets::SecretsKey,
    company_id: Uuid,
    received_at: DateTime<Utc>,
    delivery: &Delivery<'_>,
) -> Result<Uuid, sqlx::Error> {
    let delivery_id = Uuid::now_v7();
    let sealed = delivery.sealed.map(|data| key.seal(company_id, data));
    sqlx::query(
        "INSERT INTO webhook_deliveries (company_id, delivery_id, provider, channel, received_at,
             verified, failure, provider_event_id, event_type, payload_sha256, payload_bytes,
             payload_nonce, payload_ciphertext)
         VALUES ($1, $2, $3, 'webhook', $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(company_id)
    .bind(delivery_id)
    .bind(delivery.provider.as_str())
    .bind(received_at)
    .bind(delivery.sealed.is_some())
    .bind(delivery.failure)
    .bind(delivery.provider_event_id)
    .bind(delivery.event_type)
    .bind(<sha2::Sha256 as sha2::Digest>::digest(delivery.body).to_vec())
    .bind(i32::try_from(delivery.body.len()).unwrap_or(i32::MAX))
    .bind(sealed.as_ref().map(|(nonce, _)| nonce.to_vec()))
    .bind(sealed.map(|(_, ciphertext)| ciphertext))
    .execute(&mut **tx)
    .await?;
    Ok(delivery_id)
}

/// Claims a Mailgun token once: `false` when it was seen before (a replay).
pub async fn claim_token(
    tx: &mut Transaction<'_, Postgres>,
    company_id: Uuid,
    provider: Provider,
    token: &str,
    signed_at: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let claimed: Option<i32> = sqlx::query_scalar(
        "INSERT INTO webhook_replay_tokens (company_id, provider, token_sha256, signed_at)
         VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING 1",
    )
    .bind(company_id)
    .bind(provider.as_str())
    .bind(<sha2::Sha256 as sha2::Digest>::digest(token.as_bytes()).to_vec())
    .bind(signed_at)
    .fetch_optional(&mut **tx)
    .await?;
    Ok(claimed.is_some())
}
