//! Sends: `POST /api/v1/messages` (secret key) and `lux import sends FILE --company ID`
//! ([`import`]), both writing `message_sends` (SPEC §8.1, §11).
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

pub mod import;

use super::recipient::{Recipient, RecipientHash};
use super::{Channel, MessagesState, Provider};
use crate::http::ApiError;
use crate::tenancy::Tenant;

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
pub(crate) fn shorten(text: &str) -> String {
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
    /// Sends not stored because the company has turned tracking off or the recipient's email
    /// is suppressed (`lux privacy suppress`): accepted, and dropped.
    pub suppressed: usize,
    pub conflicts: Vec<(usize, Conflict)>,
}

impl BatchOutcome {
    /// Sends stored, completed or already there.
    pub fn accepted(&self) -> usize {
        self.stored + self.updated + self.unchanged
    }
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
    let before = sends.len();
    let sends = without_suppressed(tx, company_id, sends).await?;
    outcome.suppressed = before - sends.len();
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

/// The sends that may be collected: none when the company has turned tracking off, and none
/// to a suppressed email (its keyed hash is the recipient hash of an email send).
async fn without_suppressed(
    tx: &mut Transaction<'_, Postgres>,
    company_id: Uuid,
    sends: Vec<(usize, NewSend)>,
) -> Result<Vec<(usize, NewSend)>, sqlx::Error> {
    let hashes: Vec<String> = sends
        .iter()
        .filter(|(_, s)| s.channel == Channel::Email)
        .map(|(_, s)| s.recipient_hash.to_hex())
        .collect();
    let (tracking, suppressed): (bool, Vec<String>) = sqlx::query_as(
        "SELECT c.tracking_enabled,
                ARRAY(SELECT h FROM unnest($2::text[]) h
                       WHERE EXISTS (SELECT 1 FROM suppressions x
                                     WHERE x.company_id = c.company_id AND x.kind = 'email'
                                       AND x.value = lux_suppression_key(c.hash_key, 'email', h)))
           FROM companies c WHERE c.company_id = $1",
    )
    .bind(company_id)
    .bind(&hashes)
    .fetch_optional(&mut **tx)
    .await?
    .unwrap_or((false, Vec::new()));
    if !tracking {
        return Ok(Vec::new());
    }
    if suppressed.is_empty() {
        return Ok(sends);
    }
    Ok(sends
        .into_iter()
        .filter(|(_, s)| !suppressed.contains(&s.recipient_hash.to_hex()))
        .collect())
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
             sent_at = coalesce(s.sent_at, EXCLUDED.sent_at),
             updated_at = now()
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

/// The company of a request's secret key. Sends and links are written by servers.
pub(super) async fn secret_key_tenant(
    state: &MessagesState,
    headers: &HeaderMap,
) -> Result<Tenant, ApiError> {
    crate::tenancy::secret_key_tenant(&state.tenancy, headers, "sends and links need").await
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
    let accepted = outcome.accepted();
    tracing::info!(
        accepted,
        rejected = rejected.len(),
        stored = outcome.stored,
        "sends posted"
    );
    if accepted + outcome.suppressed == 0 {
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
        "suppressed": outcome.suppressed,
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
