//! Sends: `POST /api/v1/messages` (secret key) and `lux import sends FILE --company ID`, both
//! writing `message_sends` (SPEC §8.1, §11).
//!
//! Both take the same fields (`message_id`, `channel`, `provider`, `provider_message_id`,
//! `campaign`, `recipient`, `sent_at`), checked by [`NewSend::parse`]: the recipient is parsed
//! and hashed with the company's key at once, and only the hash goes further; no error message
//! repeats it. Each item or line is kept or refused on its own, with a reason.
//!
//! Writing is one upsert per batch ([`store_batch`], `unnest` of column arrays) that never
//! overwrites: a send already stored keeps its values and only gains those it lacked (a send
//! first learned from a provider event has no `sent_at`, campaign or recipient until the API
//! or an import names them). Posting or importing the same sends again changes nothing.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::io::Read;
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;
use serde_json::{Value, json};
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

use super::recipient::{Recipient, RecipientHash};
use super::{Channel, MessagesState, Provider};
use crate::http::ApiError;
use crate::tenancy::{KeyKind, Tenant};

/// The path of the sends endpoint.
pub const MESSAGES_PATH: &str = "/api/v1/messages";
/// Most sends in one request; a bigger list goes through `lux import sends` or several posts.
pub const MAX_SENDS_PER_REQUEST: usize = 10_000;
/// A request of [`MAX_SENDS_PER_REQUEST`] sends of a few hundred bytes each fits.
const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;
/// Longest `message_id` (the table's CHECK).
const MAX_MESSAGE_ID: usize = 200;
/// Longest campaign or provider message id.
const MAX_TEXT: usize = 500;
/// A `sent_at` this far ahead of our clock is refused: a send is reported once it has left,
/// and a clock a little fast must not refuse it.
const FUTURE_TOLERANCE: TimeDelta = TimeDelta::hours(1);
/// Lines per upsert in `lux import sends`.
pub const IMPORT_BATCH: usize = 5_000;
/// Skipped lines listed one by one in the import summary (all are counted).
const SKIPPED_LISTED: usize = 1_000;

pub fn router() -> Router<MessagesState> {
    Router::new().route(
        MESSAGES_PATH,
        post(post_sends).layer(DefaultBodyLimit::max(MAX_BODY_BYTES)),
    )
}

/// The raw fields of one send, as text (a JSON item's strings, a CSV line's cells). Empty
/// text counts as absent.
#[derive(Default)]
pub struct SendFields<'a> {
    pub message_id: Option<&'a str>,
    pub channel: Option<&'a str>,
    pub provider: Option<&'a str>,
    pub provider_message_id: Option<&'a str>,
    pub campaign: Option<&'a str>,
    pub recipient: Option<&'a str>,
    pub sent_at: Option<&'a str>,
}

/// The field names, in the order of the CSV header of `docs/samples/message_sends.csv`.
pub const FIELDS: [&str; 7] = [
    "message_id",
    "channel",
    "provider",
    "provider_message_id",
    "campaign",
    "recipient",
    "sent_at",
];

impl<'a> SendFields<'a> {
    fn set(&mut self, name: &str, value: &'a str) -> bool {
        let value = Some(value.trim()).filter(|v| !v.is_empty());
        let slot = match name {
            "message_id" => &mut self.message_id,
            "channel" => &mut self.channel,
            "provider" => &mut self.provider,
            "provider_message_id" => &mut self.provider_message_id,
            "campaign" => &mut self.campaign,
            "recipient" => &mut self.recipient,
            "sent_at" => &mut self.sent_at,
            _ => return false,
        };
        *slot = value;
        true
    }

    /// The fields of a JSON item: an object whose known fields are strings or null. Other
    /// fields are ignored (a client may send more than we read).
    pub fn from_json(item: &'a Value) -> Result<SendFields<'a>, SendError> {
        let Some(object) = item.as_object() else {
            return Err(SendError::NotAnObject);
        };
        let mut fields = SendFields::default();
        for name in FIELDS {
            match object.get(name) {
                None | Some(Value::Null) => {}
                Some(Value::String(text)) => {
                    fields.set(name, text);
                }
                Some(_) => return Err(SendError::NotText(name)),
            }
        }
        Ok(fields)
    }
}

/// Why an item or a line is not a send. The recipient is never repeated: it is personal data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    #[error("a send must be a JSON object")]
    NotAnObject,
    #[error("{0} must be a string")]
    NotText(&'static str),
    #[error("{0} is missing")]
    Missing(&'static str),
    #[error("{0} is longer than {1} characters")]
    TooLong(&'static str, usize),
    #[error("{0} contains a control character")]
    Control(&'static str),
    #[error("channel {0:?} is neither email nor sms")]
    Channel(String),
    #[error("provider {0:?} is not one of sendgrid, mailgun, ses, twilio, other")]
    Provider(String),
    #[error("{0}")]
    Recipient(#[from] super::recipient::RecipientError),
    #[error("the recipient is {recipient} but channel is {channel}")]
    ChannelMismatch {
        recipient: &'static str,
        channel: Channel,
    },
    #[error("provider {provider} sends {expected}, not {channel}")]
    ProviderChannel {
        provider: Provider,
        expected: Channel,
        channel: Channel,
    },
    #[error("sent_at {0:?} is not an RFC 3339 time (e.g. 2026-12-01T09:30:00Z)")]
    SentAt(String),
    #[error("sent_at {0} is in the future")]
    Future(DateTime<Utc>),
}

/// A send, checked, its recipient hashed.
#[derive(Debug, Clone)]
pub struct NewSend {
    pub message_id: String,
    pub channel: Channel,
    /// `sendgrid`, `mailgun`, `ses`, `twilio` or `other`.
    pub provider: &'static str,
    pub provider_message_id: Option<String>,
    pub campaign: Option<String>,
    pub recipient_hash: RecipientHash,
    pub sent_at: DateTime<Utc>,
}

/// A message id: 1 to 200 characters without control characters (it travels in URLs as
/// `lux_mid` and is shown in reports).
pub fn check_message_id(text: Option<&str>) -> Result<&str, SendError> {
    let text = text.map(str::trim).filter(|t| !t.is_empty());
    let text = text.ok_or(SendError::Missing("message_id"))?;
    check_text("message_id", text, MAX_MESSAGE_ID)
}

fn check_text<'t>(name: &'static str, text: &'t str, max: usize) -> Result<&'t str, SendError> {
    if text.chars().count() > max {
        return Err(SendError::TooLong(name, max));
    }
    if text.chars().any(char::is_control) {
        return Err(SendError::Control(name));
    }
    Ok(text)
}

fn optional_text(
    name: &'static str,
    text: Option<&str>,
    max: usize,
) -> Result<Option<String>, SendError> {
    text.map(|t| check_text(name, t, max).map(str::to_owned))
        .transpose()
}

/// `provider` → its stored name and the channel it implies (`other`: none).
fn parse_provider(text: &str) -> Result<(&'static str, Option<Provider>), SendError> {
    if text == "other" {
        return Ok(("other", None));
    }
    let provider: Provider = text
        .parse()
        .map_err(|_| SendError::Provider(shorten(text)))?;
    Ok((provider.as_str(), Some(provider)))
}

/// A bad value quoted in an error, cut so an error stays one readable line.
fn shorten(text: &str) -> String {
    text.chars().take(40).collect()
}

impl NewSend {
    /// Checks the fields and hashes the recipient under the company's `hash_key`. `channel`
    /// may be left out: the recipient's kind gives it. `now` bounds `sent_at`.
    pub fn parse(
        fields: &SendFields<'_>,
        hash_key: &[u8],
        now: DateTime<Utc>,
    ) -> Result<NewSend, SendError> {
        let message_id = check_message_id(fields.message_id)?.to_owned();
        let provider_text = fields.provider.ok_or(SendError::Missing("provider"))?;
        let (provider, known) = parse_provider(provider_text)?;
        let recipient = Recipient::parse(fields.recipient.unwrap_or(""))?;
        let channel = match fields.channel {
            None => recipient.channel(),
            Some(text) => text
                .parse::<Channel>()
                .map_err(|_| SendError::Channel(shorten(text)))?,
        };
        if recipient.channel() != channel {
            let recipient = match recipient.channel() {
                Channel::Email => "an email address",
                Channel::Sms => "a phone number",
            };
            return Err(SendError::ChannelMismatch { recipient, channel });
        }
        if let Some(known) = known
            && known.channel() != channel
        {
            return Err(SendError::ProviderChannel {
                provider: known,
                expected: known.channel(),
                channel,
            });
        }
        let sent_at = parse_sent_at(fields.sent_at, now)?;
        Ok(NewSend {
            message_id,
            channel,
            provider,
            provider_message_id: optional_text(
                "provider_message_id",
                fields.provider_message_id,
                MAX_TEXT,
            )?,
            campaign: optional_text("campaign", fields.campaign, MAX_TEXT)?,
            recipient_hash: recipient.hash(hash_key),
            sent_at,
        })
    }
}

fn parse_sent_at(text: Option<&str>, now: DateTime<Utc>) -> Result<DateTime<Utc>, SendError> {
    let text = text.ok_or(SendError::Missing("sent_at"))?;
    let sent_at = DateTime::parse_from_rfc3339(text)
        .map_err(|_| SendError::SentAt(shorten(text)))?
        .with_timezone(&Utc);
    if sent_at > now + FUTURE_TOLERANCE {
        return Err(SendError::Future(sent_at));
    }
    Ok(sent_at)
}

/// How a send reached us (`message_sends.origin`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Api,
    Import,
}

impl Origin {
    fn as_str(self) -> &'static str {
        match self {
            Origin::Api => "api",
            Origin::Import => "import",
        }
    }
}

/// Why a valid send was not written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Conflict {
    /// The same `message_id` earlier in the same batch (at that position).
    RepeatedMessage(usize),
    /// The same provider message id, under another `message_id`, earlier in the batch.
    RepeatedProviderId(usize),
    /// The provider's message id already belongs to another send of ours (typically one a
    /// provider event created before the send was posted, under `{provider}:{id}`).
    ProviderIdTaken { message_id: String },
}

impl Conflict {
    /// The reason, naming positions as `item 3` or `line 3`.
    pub fn reason(&self, position_word: &str) -> String {
        match self {
            Conflict::RepeatedMessage(at) => {
                format!("message_id repeats {position_word} {at}: kept that one")
            }
            Conflict::RepeatedProviderId(at) => format!(
                "provider_message_id is also on {position_word} {at}, under another message_id"
            ),
            Conflict::ProviderIdTaken { message_id } => format!(
                "provider_message_id already belongs to message {message_id:?} (a provider event \
                 named it before this send was posted); one provider message is one send"
            ),
        }
    }
}

/// What one batch did. Positions are the caller's (item index, line number).
#[derive(Debug, Default)]
pub struct BatchOutcome {
    /// New sends.
    pub stored: usize,
    /// Sends already stored that gained a value they lacked.
    pub updated: usize,
    /// Sends already stored with every value given (a repost, a re-import).
    pub unchanged: usize,
    pub conflicts: Vec<(usize, Conflict)>,
}

/// Writes a batch of sends for one company in `tx` (scoped to it): new sends are inserted,
/// stored ones only gain the values they lack. `sends` are (position, send).
pub async fn store_batch(
    tx: &mut Transaction<'_, Postgres>,
    company_id: Uuid,
    origin: Origin,
    sends: Vec<(usize, NewSend)>,
) -> Result<BatchOutcome, sqlx::Error> {
    let mut outcome = BatchOutcome::default();
    let sends = without_repeats(sends, &mut outcome.conflicts);
    let taken = provider_ids_taken(tx, company_id, &sends).await?;
    let mut rows = Vec::with_capacity(sends.len());
    for (at, send) in sends {
        let key = (send.provider, send.provider_message_id.clone());
        match taken.get(&key) {
            Some(owner) if *owner != send.message_id => outcome.conflicts.push((
                at,
                Conflict::ProviderIdTaken {
                    message_id: owner.clone(),
                },
            )),
            _ => rows.push(send),
        }
    }
    let inserted = upsert(tx, company_id, origin, &rows).await?;
    outcome.stored = inserted.iter().filter(|new| **new).count();
    outcome.updated = inserted.len() - outcome.stored;
    outcome.unchanged = rows.len() - inserted.len();
    Ok(outcome)
}

/// [`store_batch`] in a transaction of its own. A provider event may create a send between
/// our check of provider message ids and the upsert (a unique violation on
/// `message_sends_by_provider_id`): the batch is then checked and written once more, and the
/// new owner of the id is reported as a conflict.
pub async fn store_in_transaction(
    pool: &PgPool,
    company_id: Uuid,
    origin: Origin,
    sends: Vec<(usize, NewSend)>,
) -> Result<BatchOutcome, sqlx::Error> {
    let attempt = || async {
        let mut tx = crate::db::begin_for_company(pool, company_id).await?;
        let outcome = store_batch(&mut tx, company_id, origin, sends.clone()).await?;
        tx.commit().await?;
        Ok::<_, sqlx::Error>(outcome)
    };
    match attempt().await {
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("23505") => attempt().await,
        result => result,
    }
}

/// Keeps the first of each `message_id` and of each provider message id: one statement
/// cannot upsert a row twice, and two of our sends cannot be one provider message.
fn without_repeats(
    sends: Vec<(usize, NewSend)>,
    conflicts: &mut Vec<(usize, Conflict)>,
) -> Vec<(usize, NewSend)> {
    let mut by_message: HashMap<String, usize> = HashMap::with_capacity(sends.len());
    let mut by_provider_id: HashMap<(&'static str, String), (usize, String)> = HashMap::new();
    let mut kept = Vec::with_capacity(sends.len());
    for (at, send) in sends {
        if let Some(first) = by_message.get(&send.message_id) {
            conflicts.push((at, Conflict::RepeatedMessage(*first)));
            continue;
        }
        if let Some(id) = &send.provider_message_id {
            match by_provider_id.entry((send.provider, id.clone())) {
                Entry::Occupied(first) if first.get().1 != send.message_id => {
                    conflicts.push((at, Conflict::RepeatedProviderId(first.get().0)));
                    continue;
                }
                Entry::Occupied(_) => {}
                Entry::Vacant(slot) => {
                    slot.insert((at, send.message_id.clone()));
                }
            }
        }
        by_message.insert(send.message_id.clone(), at);
        kept.push((at, send));
    }
    kept
}

/// (provider, provider message id) → the `message_id` that already has it, for the batch's
/// provider ids.
async fn provider_ids_taken(
    tx: &mut Transaction<'_, Postgres>,
    company_id: Uuid,
    sends: &[(usize, NewSend)],
) -> Result<HashMap<(&'static str, Option<String>), String>, sqlx::Error> {
    let (providers, ids): (Vec<&str>, Vec<&str>) = sends
        .iter()
        .filter_map(|(_, s)| Some((s.provider, s.provider_message_id.as_deref()?)))
        .unzip();
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT s.provider, s.provider_message_id, s.message_id
           FROM message_sends s
           JOIN unnest($2::text[], $3::text[]) AS u(provider, id)
             ON s.provider = u.provider AND s.provider_message_id = u.id
          WHERE s.company_id = $1",
    )
    .bind(company_id)
    .bind(&providers)
    .bind(&ids)
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(provider, id, message_id)| {
            let provider = ["sendgrid", "mailgun", "ses", "twilio", "other"]
                .into_iter()
                .find(|p| *p == provider)?;
            Some(((provider, Some(id)), message_id))
        })
        .collect())
}

/// One statement for the batch. Returns, for each row inserted or changed, whether it was
/// inserted; rows already complete are not touched (and not returned). The provider's
/// message id is filled only under the same provider, so it can never collide with another
/// send's (checked just before).
async fn upsert(
    tx: &mut Transaction<'_, Postgres>,
    company_id: Uuid,
    origin: Origin,
    rows: &[NewSend],
) -> Result<Vec<bool>, sqlx::Error> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let column = |f: &dyn Fn(&NewSend) -> Option<String>| rows.iter().map(f).collect::<Vec<_>>();
    sqlx::query_scalar(
        "INSERT INTO message_sends AS s (company_id, message_id, channel, provider,
                provider_message_id, campaign, recipient_hash, sent_at, origin)
         SELECT $1, u.message_id, u.channel, u.provider, u.provider_message_id, u.campaign,
                u.recipient_hash, u.sent_at, $9
           FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                       $7::bytea[], $8::timestamptz[])
                AS u(message_id, channel, provider, provider_message_id, campaign,
                     recipient_hash, sent_at)
         ON CONFLICT (company_id, message_id) DO UPDATE SET
             provider_message_id = CASE WHEN s.provider = EXCLUDED.provider
                 THEN coalesce(s.provider_message_id, EXCLUDED.provider_message_id)
                 ELSE s.provider_message_id END,
             campaign = coalesce(s.campaign, EXCLUDED.campaign),
             recipient_hash = coalesce(s.recipient_hash, EXCLUDED.recipient_hash),
             sent_at = coalesce(s.sent_at, EXCLUDED.sent_at)
         WHERE (s.provider_message_id IS NULL AND EXCLUDED.provider_message_id IS NOT NULL
                AND s.provider = EXCLUDED.provider)
            OR (s.campaign IS NULL AND EXCLUDED.campaign IS NOT NULL)
            OR (s.recipient_hash IS NULL AND EXCLUDED.recipient_hash IS NOT NULL)
            OR (s.sent_at IS NULL AND EXCLUDED.sent_at IS NOT NULL)
         RETURNING (xmax = 0)",
    )
    .bind(company_id)
    .bind(column(&|s| Some(s.message_id.clone())))
    .bind(column(&|s| Some(s.channel.as_str().to_owned())))
    .bind(column(&|s| Some(s.provider.to_owned())))
    .bind(column(&|s| s.provider_message_id.clone()))
    .bind(column(&|s| s.campaign.clone()))
    .bind(
        rows.iter()
            .map(|s| s.recipient_hash.as_bytes().to_vec())
            .collect::<Vec<_>>(),
    )
    .bind(rows.iter().map(|s| s.sent_at).collect::<Vec<_>>())
    .bind(origin.as_str())
    .fetch_all(&mut **tx)
    .await
}

// ---------------------------------------------------------------------------------------
// POST /api/v1/messages

/// The company of a request's secret key. Sends and links are written by servers: only the
/// secret key, only in the `Authorization` header; the public write key is refused (403).
pub(super) async fn secret_key_tenant(
    state: &MessagesState,
    headers: &HeaderMap,
) -> Result<Tenant, ApiError> {
    let Some(key) = crate::http::key::bearer_key(headers)? else {
        return Err(ApiError::Unauthorized(
            "missing key: send the header `Authorization: Bearer SECRET_KEY` with the company's \
             secret key"
                .into(),
        ));
    };
    let tenant = state.tenancy.resolve(&key).await?.ok_or_else(|| {
        ApiError::Unauthorized(
            "unknown or revoked key: send `Authorization: Bearer SECRET_KEY` with a current \
             secret key (`lux company keys`)"
                .into(),
        )
    })?;
    if tenant.kind != KeyKind::Secret {
        return Err(ApiError::Forbidden(
            "this is a write key (public, for the snippet); sends and links need the company's \
             secret key: `Authorization: Bearer SECRET_KEY`"
                .into(),
        ));
    }
    Ok(tenant)
}

/// A body that could not be read: too large, or cut short.
pub(super) fn body_error(rejection: BytesRejection, limit: usize) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::PayloadTooLarge(format!("the body is larger than {limit} bytes"))
    } else {
        ApiError::BadRequest(format!("could not read the body: {rejection}"))
    }
}

/// One refused item of a request.
#[derive(Debug, Serialize, PartialEq, Eq)]
struct Rejected {
    index: usize,
    error: String,
}

/// `POST /api/v1/messages`: the key first (401/403), then the body. Valid items are stored
/// whatever the others hold; the answer names each refused one. Nothing valid → 400.
#[tracing::instrument(skip_all, fields(company_id))]
async fn post_sends(
    State(state): State<MessagesState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let tenant = secret_key_tenant(&state, &headers).await?;
    let company_id = tenant.settings.company_id;
    tracing::Span::current().record("company_id", tracing::field::display(company_id));
    let body = body.map_err(|r| body_error(r, MAX_BODY_BYTES))?;
    let items = parse_items(&body)?;
    let now = state.clock.now();
    let mut rejected = Vec::new();
    let mut valid = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        match SendFields::from_json(item)
            .and_then(|fields| NewSend::parse(&fields, &tenant.settings.hash_key, now))
        {
            Ok(send) => valid.push((index, send)),
            Err(error) => rejected.push(Rejected {
                index,
                error: error.to_string(),
            }),
        }
    }
    let outcome = if valid.is_empty() {
        BatchOutcome::default()
    } else {
        store_in_transaction(&state.pool, company_id, Origin::Api, valid).await?
    };
    rejected.extend(outcome.conflicts.iter().map(|(index, conflict)| Rejected {
        index: *index,
        error: conflict.reason("item"),
    }));
    rejected.sort_by_key(|r| r.index);
    let accepted = outcome.stored + outcome.updated + outcome.unchanged;
    tracing::info!(
        accepted,
        rejected = rejected.len(),
        stored = outcome.stored,
        "sends posted"
    );
    if accepted == 0 {
        let body = json!({
            "error": format!(
                "no valid send among the {} items; each one's reason is in `rejected`",
                items.len()
            ),
            "rejected": rejected,
        });
        return Ok((StatusCode::BAD_REQUEST, axum::Json(body)).into_response());
    }
    let body = json!({
        "accepted": accepted,
        "stored": outcome.stored,
        "updated": outcome.updated,
        "unchanged": outcome.unchanged,
        "rejected": rejected,
    });
    Ok((StatusCode::OK, axum::Json(body)).into_response())
}

/// The body's items: a JSON array of sends (or one send object).
fn parse_items(body: &[u8]) -> Result<Vec<Value>, ApiError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        ApiError::BadRequest(format!(
            "the body is not JSON ({e}); send a JSON array of sends"
        ))
    })?;
    let items = match value {
        Value::Array(items) => items,
        object @ Value::Object(_) => vec![object],
        _ => {
            return Err(ApiError::BadRequest(
                "the body must be a JSON array of sends".into(),
            ));
        }
    };
    if items.is_empty() {
        return Err(ApiError::BadRequest(
            "the array is empty: send at least one send".into(),
        ));
    }
    if items.len() > MAX_SENDS_PER_REQUEST {
        return Err(ApiError::PayloadTooLarge(format!(
            "{} sends in one request; at most {MAX_SENDS_PER_REQUEST} (split the list, or use \
             `lux import sends`)",
            items.len()
        )));
    }
    Ok(items)
}

// ---------------------------------------------------------------------------------------
// lux import sends

/// A line left out, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Skipped {
    pub line: u64,
    pub reason: String,
}

/// Counts so far, handed to the caller's progress display after each batch.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Progress {
    /// Data lines read (blank lines not counted).
    pub lines: u64,
    pub stored: usize,
    pub updated: usize,
    pub unchanged: usize,
    pub skipped: usize,
}

/// What `lux import sends` prints.
#[derive(Debug, Serialize)]
pub struct ImportSummary {
    pub company_id: Uuid,
    pub lines: u64,
    pub stored: usize,
    pub updated: usize,
    pub unchanged: usize,
    pub skipped_total: usize,
    /// The first skipped lines (up to 1000), with their reasons.
    pub skipped: Vec<Skipped>,
    pub seconds: f64,
    pub lines_per_second: u64,
}

/// Why a whole file was refused. Lines already written stay (they are complete sends, and a
/// second run of the same file changes nothing).
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("no company {0} (see `lux company list`)")]
    NoCompany(Uuid),
    #[error("reading the file")]
    Read(#[source] std::io::Error),
    #[error("the file has no header line; expected {}", FIELDS.join(","))]
    NoHeader,
    #[error("line 1: {0}")]
    Header(String),
    #[error("writing message_sends")]
    Database(#[from] sqlx::Error),
}

/// Imports a CSV of sends for one company through `pool` (the service's role: row-level
/// security applies), [`IMPORT_BATCH`] lines per transaction. A thread reads, checks and
/// hashes the next batch while the database writes the last one. `progress` is called after
/// each batch.
pub async fn import(
    pool: &PgPool,
    company_id: Uuid,
    file: impl Read + Send + 'static,
    now: DateTime<Utc>,
    progress: &mut dyn FnMut(&Progress),
) -> Result<ImportSummary, ImportError> {
    let started = Instant::now();
    let hash_key = company_hash_key(pool, company_id).await?;
    // Two batches ahead at most: memory stays bounded whatever the file's size.
    let (sender, mut batches) = tokio::sync::mpsc::channel(2);
    std::thread::spawn(move || read_file(file, &hash_key, now, &sender));
    let mut counts = Progress::default();
    let mut skipped = Vec::new();
    while let Some(batch) = batches.recv().await {
        let batch: Batch = batch?;
        counts.lines += batch.lines;
        skipped.extend(batch.skipped);
        if !batch.sends.is_empty() {
            let outcome =
                store_in_transaction(pool, company_id, Origin::Import, batch.sends).await?;
            counts.stored += outcome.stored;
            counts.updated += outcome.updated;
            counts.unchanged += outcome.unchanged;
            skipped.extend(outcome.conflicts.into_iter().map(|(line, c)| Skipped {
                line: line as u64,
                reason: c.reason("line"),
            }));
        }
        counts.skipped = skipped.len();
        progress(&counts);
    }
    skipped.sort_by_key(|s| s.line);
    let seconds = started.elapsed().as_secs_f64();
    Ok(ImportSummary {
        company_id,
        lines: counts.lines,
        stored: counts.stored,
        updated: counts.updated,
        unchanged: counts.unchanged,
        skipped_total: skipped.len(),
        skipped: skipped.into_iter().take(SKIPPED_LISTED).collect(),
        seconds,
        lines_per_second: (counts.lines as f64 / seconds.max(1e-6)) as u64,
    })
}

/// Up to [`IMPORT_BATCH`] lines of the file, read and checked.
struct Batch {
    /// Data lines read (blank ones not counted).
    lines: u64,
    sends: Vec<(usize, NewSend)>,
    skipped: Vec<Skipped>,
}

/// Reads the file batch by batch into `sender`, until the end, an error (sent as the last
/// message), or the receiver is gone (the import failed).
fn read_file(
    file: impl Read,
    hash_key: &[u8],
    now: DateTime<Utc>,
    sender: &tokio::sync::mpsc::Sender<Result<Batch, ImportError>>,
) {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(KeepBlankLines::new(file));
    let mut records = reader.records();
    let columns = match read_header(&mut records) {
        Ok(columns) => columns,
        Err(error) => {
            let _ = sender.blocking_send(Err(error));
            return;
        }
    };
    loop {
        let mut skipped = Vec::new();
        let (sends, done) = match read_batch(&mut records, &columns, hash_key, now, &mut skipped) {
            Ok(read) => read,
            Err(error) => {
                let _ = sender.blocking_send(Err(error));
                return;
            }
        };
        let lines = (sends.len() + skipped.len()) as u64;
        let batch = Batch {
            lines,
            sends,
            skipped,
        };
        if sender.blocking_send(Ok(batch)).is_err() || done {
            return;
        }
    }
}

/// The company's hash key, read in a transaction scoped to it (so a wrong id reads nothing).
async fn company_hash_key(pool: &PgPool, company_id: Uuid) -> Result<Vec<u8>, ImportError> {
    let mut tx = crate::db::begin_for_company(pool, company_id).await?;
    let key: Option<Vec<u8>> =
        sqlx::query_scalar("SELECT hash_key FROM companies WHERE company_id = $1")
            .bind(company_id)
            .fetch_optional(&mut *tx)
            .await?;
    tx.commit().await?;
    key.ok_or(ImportError::NoCompany(company_id))
}

/// Puts a space on every empty line. The CSV reader skips empty lines, and a record after
/// one is then said to start on the empty line: with a space there, the empty line is a
/// record of its own (skipped by us as blank) and every line number is right. Inside a quoted
/// cell the space changes nothing that matters: a cell spanning lines holds a control
/// character and is refused anyway.
struct KeepBlankLines<R> {
    inner: R,
    out: Vec<u8>,
    at: usize,
    at_line_start: bool,
}

impl<R: Read> KeepBlankLines<R> {
    fn new(inner: R) -> Self {
        KeepBlankLines {
            inner,
            out: Vec::with_capacity(70_000),
            at: 0,
            at_line_start: true,
        }
    }
}

impl<R: Read> Read for KeepBlankLines<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.at == self.out.len() {
            let mut chunk = [0u8; 64 * 1024];
            let n = self.inner.read(&mut chunk)?;
            self.out.clear();
            self.at = 0;
            for &byte in &chunk[..n] {
                if self.at_line_start && (byte == b'\n' || byte == b'\r') {
                    self.out.push(b' ');
                }
                self.out.push(byte);
                self.at_line_start = byte == b'\n';
            }
        }
        let n = buf.len().min(self.out.len() - self.at);
        buf[..n].copy_from_slice(&self.out[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

type Records<'r, R> = csv::StringRecordsIter<'r, KeepBlankLines<R>>;

/// The header: which field each column holds. Every column must be a known field (a typo
/// would silently drop a column), and the required ones must be there.
fn read_header<R: Read>(records: &mut Records<'_, R>) -> Result<Vec<&'static str>, ImportError> {
    let header = loop {
        match records.next() {
            None => return Err(ImportError::NoHeader),
            Some(Err(e)) => return Err(csv_fatal(e).unwrap_or(ImportError::NoHeader)),
            Some(Ok(record)) if record.iter().all(|c| c.trim().is_empty()) => continue,
            Some(Ok(record)) => break record,
        }
    };
    let mut columns = Vec::with_capacity(header.len());
    for name in header.iter().map(|n| n.trim().to_ascii_lowercase()) {
        let Some(field) = FIELDS.iter().find(|f| **f == name) else {
            return Err(ImportError::Header(format!(
                "unknown column {:?}; the header must name only {}",
                shorten(&name),
                FIELDS.join(",")
            )));
        };
        if columns.contains(field) {
            return Err(ImportError::Header(format!("column {field} appears twice")));
        }
        columns.push(*field);
    }
    let missing: Vec<&str> = ["message_id", "provider", "recipient", "sent_at"]
        .into_iter()
        .filter(|f| !columns.contains(f))
        .collect();
    if !missing.is_empty() {
        return Err(ImportError::Header(format!(
            "missing column(s) {}; expected {}",
            missing.join(", "),
            FIELDS.join(",")
        )));
    }
    Ok(columns)
}

/// An I/O failure stops the import; anything else about a record is that line's problem.
fn csv_fatal(error: csv::Error) -> Option<ImportError> {
    match error.into_kind() {
        csv::ErrorKind::Io(e) => Some(ImportError::Read(e)),
        _ => None,
    }
}

/// Up to [`IMPORT_BATCH`] valid sends (with their line numbers); bad lines go to `skipped`.
/// `true` when the file is done.
#[allow(clippy::type_complexity)]
fn read_batch<R: Read>(
    records: &mut Records<'_, R>,
    columns: &[&'static str],
    hash_key: &[u8],
    now: DateTime<Utc>,
    skipped: &mut Vec<Skipped>,
) -> Result<(Vec<(usize, NewSend)>, bool), ImportError> {
    let mut batch = Vec::with_capacity(IMPORT_BATCH);
    while batch.len() < IMPORT_BATCH {
        let record = match records.next() {
            None => return Ok((batch, true)),
            Some(Ok(record)) => record,
            Some(Err(error)) => {
                let line = error.position().map_or(0, |p| p.line());
                let reason = error.to_string();
                if let Some(fatal) = csv_fatal(error) {
                    return Err(fatal);
                }
                skipped.push(Skipped { line, reason });
                continue;
            }
        };
        if record.iter().all(|c| c.trim().is_empty()) {
            continue;
        }
        let line = record.position().map_or(0, |p| p.line());
        match line_to_send(&record, columns, hash_key, now) {
            Ok(send) => batch.push((line as usize, send)),
            Err(reason) => skipped.push(Skipped { line, reason }),
        }
    }
    Ok((batch, false))
}

fn line_to_send(
    record: &csv::StringRecord,
    columns: &[&'static str],
    hash_key: &[u8],
    now: DateTime<Utc>,
) -> Result<NewSend, String> {
    if record.len() != columns.len() {
        return Err(format!(
            "{} cells where the header has {} (a comma in a value without quotes?)",
            record.len(),
            columns.len()
        ));
    }
    let mut fields = SendFields::default();
    for (name, cell) in columns.iter().zip(record.iter()) {
        fields.set(name, cell);
    }
    NewSend::parse(&fields, hash_key, now).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"company key of 32 bytes, exactly";

    fn now() -> DateTime<Utc> {
        "2026-12-01T12:00:00Z".parse().unwrap()
    }

    fn parse(item: Value) -> Result<NewSend, SendError> {
        NewSend::parse(&SendFields::from_json(&item)?, KEY, now())
    }

    fn valid() -> Value {
        json!({"message_id": "m1", "channel": "email", "provider": "sendgrid",
               "provider_message_id": "sg1", "campaign": "black-friday",
               "recipient": "Jane@Example.com", "sent_at": "2026-12-01T09:00:00Z"})
    }

    #[test]
    fn a_valid_send_is_hashed_and_its_channel_may_be_left_out() {
        let send = parse(valid()).unwrap();
        assert_eq!(send.channel, Channel::Email);
        assert_eq!(
            send.recipient_hash,
            Recipient::parse("jane@example.com").unwrap().hash(KEY)
        );
        let mut sms = json!({"message_id": "m2", "provider": "twilio",
                             "recipient": "+1 415 555 0100", "sent_at": "2026-12-01T09:00:00+01:00"});
        assert_eq!(parse(sms.clone()).unwrap().channel, Channel::Sms);
        sms["provider"] = json!("other");
        assert_eq!(parse(sms).unwrap().provider, "other");
    }

    #[test]
    fn each_bad_field_is_named_and_the_recipient_is_never_repeated() {
        let cases: Vec<(&str, Value, &str)> = vec![
            ("message_id", json!(null), "message_id is missing"),
            ("message_id", json!(" "), "message_id is missing"),
            ("message_id", json!(7), "message_id must be a string"),
            ("message_id", json!("a".repeat(201)), "longer than 200"),
            ("message_id", json!("a\nb"), "control character"),
            ("channel", json!("push"), "neither email nor sms"),
            (
                "channel",
                json!("sms"),
                "the recipient is an email address but channel is sms",
            ),
            ("provider", json!(null), "provider is missing"),
            ("provider", json!("SendGrid"), "not one of sendgrid"),
            (
                "provider",
                json!("twilio"),
                "provider twilio sends sms, not email",
            ),
            ("recipient", json!("jane.example.com"), "neither an email"),
            ("recipient", json!(null), "recipient is empty"),
            ("sent_at", json!("yesterday"), "not an RFC 3339 time"),
            ("sent_at", json!("2026-12-01T14:00:00Z"), "in the future"),
            (
                "campaign",
                json!("c".repeat(501)),
                "campaign is longer than 500",
            ),
        ];
        for (field, value, expected) in cases {
            let mut item = valid();
            item[field] = value;
            let error = parse(item).unwrap_err().to_string();
            assert!(error.contains(expected), "{field}: {error}");
            assert!(!error.to_lowercase().contains("jane"), "{field}: {error}");
        }
        assert_eq!(parse(json!([1])).unwrap_err(), SendError::NotAnObject);
    }

    #[test]
    fn empty_lines_get_a_space_so_line_numbers_stay_right() {
        let mut text = String::new();
        KeepBlankLines::new("\na,b\n\n\r\nc\r\n".as_bytes())
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, " \na,b\n \n \r\nc\r\n");
    }

    #[test]
    fn repeats_in_a_batch_keep_the_first() {
        let send = |id: &str, pmid: &str| {
            let mut item = valid();
            item["message_id"] = json!(id);
            item["provider_message_id"] = json!(pmid);
            parse(item).unwrap()
        };
        let mut conflicts = Vec::new();
        let kept = without_repeats(
            vec![
                (0, send("m1", "p1")),
                (1, send("m1", "p9")),
                (2, send("m2", "p1")),
                (3, send("m3", "p3")),
            ],
            &mut conflicts,
        );
        let kept: Vec<usize> = kept.iter().map(|(at, _)| *at).collect();
        assert_eq!(kept, [0, 3]);
        assert_eq!(
            conflicts,
            [
                (1, Conflict::RepeatedMessage(0)),
                (2, Conflict::RepeatedProviderId(0))
            ]
        );
    }
}
