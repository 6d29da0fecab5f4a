//! The delivery log: every webhook delivery and imported record kept as received
//! (append-only), with its verification result. A verified payload is kept encrypted under
//! the server's secrets key; an unverified one only as its hash and size (anyone can post
//! bytes to a webhook address, and they are not worth keeping).

use chrono::{DateTime, Utc};
use sqlx::{Postgres, Transaction};
use uuid::Uuid;

use super::secrets::{Provider, SecretsKey};
use super::stripe::EventHeader;

/// How a payload reached us: the `channel` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    Webhook,
    Import,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Webhook => "webhook",
            Channel::Import => "import",
        }
    }
}

/// One delivery as received.
pub struct Delivery<'a> {
    pub company_id: Uuid,
    pub provider: Provider,
    pub channel: Channel,
    pub payload: &'a [u8],
    /// When it arrived, from the injected clock: the time of an order it names without one.
    pub received_at: DateTime<Utc>,
}

/// What became of a delivery: `failure` says why it was refused or could not be read.
pub struct Verdict<'a> {
    pub verified: bool,
    pub failure: Option<&'a str>,
    pub header: Option<&'a EventHeader>,
}

/// Keeps a delivery (or an imported record): encrypted when verified, as a hash otherwise.
pub async fn record(
    tx: &mut Transaction<'_, Postgres>,
    key: &SecretsKey,
    delivery: &Delivery<'_>,
    verdict: Verdict<'_>,
) -> Result<(), sqlx::Error> {
    let Delivery {
        company_id,
        provider,
        channel,
        payload,
        received_at: _,
    } = *delivery;
    let sealed = verdict.verified.then(|| key.seal(company_id, payload));
    sqlx::query(
        "INSERT INTO webhook_deliveries (company_id, delivery_id, provider, channel, verified,
             failure, provider_event_id, event_type, payload_sha256, payload_bytes,
             payload_nonce, payload_ciphertext)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(company_id)
    .bind(Uuid::now_v7())
    .bind(provider.as_str())
    .bind(channel.as_str())
    .bind(verdict.verified)
    .bind(verdict.failure)
    .bind(verdict.header.map(|h| h.id.as_str()))
    .bind(verdict.header.map(|h| h.event_type.as_str()))
    .bind(<sha2::Sha256 as sha2::Digest>::digest(payload).to_vec())
    .bind(i32::try_from(payload.len()).unwrap_or(i32::MAX))
    .bind(sealed.as_ref().map(|(nonce, _)| nonce.to_vec()))
    .bind(sealed.map(|(_, ciphertext)| ciphertext))
    .execute(&mut **tx)
    .await?;
    Ok(())
}
