//! Webhook signing secrets, encrypted at rest with the installation's key
//! (`LUX_SECRETS_KEY`, 32 bytes as 64 hex characters) using ChaCha20-Poly1305.
//!
//! Stripe's and WooCommerce's schemes are HMACs keyed by the secret itself, so it cannot be
//! stored hashed. The company id is the associated data: a ciphertext copied to another
//! company's row does not decrypt.

use chacha20poly1305::aead::{Aead, KeyInit as _, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use rand::RngExt;
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

/// The installation's secrets key. `Debug` never shows it.
#[derive(Clone)]
pub struct SecretsKey([u8; 32]);

impl std::fmt::Debug for SecretsKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretsKey(…)")
    }
}

/// Why a secrets key or a webhook secret was refused.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("LUX_SECRETS_KEY must be 64 hex characters (e.g. `openssl rand -hex 32`)")]
    NotHex,
    #[error("LUX_SECRETS_KEY must be 64 hex characters (32 bytes)")]
    WrongLength,
    #[error("--secret is empty")]
    EmptySecret,
    #[error(transparent)]
    Tenancy(#[from] crate::tenancy::TenancyError),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

impl SecretsKey {
    pub fn parse_hex(text: &str) -> Result<SecretsKey, SecretError> {
        let bytes = hex::decode(text.trim()).map_err(|_| SecretError::NotHex)?;
        let key: [u8; 32] = bytes.try_into().map_err(|_| SecretError::WrongLength)?;
        Ok(SecretsKey(key))
    }

    pub fn generate() -> SecretsKey {
        SecretsKey(rand::rng().random())
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    fn cipher(&self) -> ChaCha20Poly1305 {
        ChaCha20Poly1305::new(&Key::from(self.0))
    }

    /// Encrypts `data` for one company: returns (nonce, ciphertext).
    pub fn seal(&self, company_id: Uuid, data: &[u8]) -> ([u8; 12], Vec<u8>) {
        let nonce: [u8; 12] = rand::rng().random();
        let ciphertext = self
            .cipher()
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: data,
                    aad: company_id.as_bytes(),
                },
            )
            .expect("ChaCha20-Poly1305 encrypts any message of this size");
        (nonce, ciphertext)
    }

    /// Decrypts what [`SecretsKey::seal`] made for the same company.
    pub fn open(&self, company_id: Uuid, nonce: &[u8], ciphertext: &[u8]) -> Option<Vec<u8>> {
        let nonce: [u8; 12] = nonce.try_into().ok()?;
        self.cipher()
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: ciphertext,
                    aad: company_id.as_bytes(),
                },
            )
            .ok()
    }
}

/// A provider whose webhooks are signed with a per-company secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Provider {
    Stripe,
    #[value(name = "woocommerce")]
    WooCommerce,
    #[value(name = "sendgrid")]
    SendGrid,
    Mailgun,
    /// Amazon SES through SNS: the "secret" is the SNS topic ARN the company accepts.
    Ses,
    Twilio,
}

impl Provider {
    pub fn parse(s: &str) -> Option<Provider> {
        Some(match s {
            "stripe" => Provider::Stripe,
            "woocommerce" => Provider::WooCommerce,
            "sendgrid" => Provider::SendGrid,
            "mailgun" => Provider::Mailgun,
            "ses" => Provider::Ses,
            "twilio" => Provider::Twilio,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Stripe => "stripe",
            Provider::WooCommerce => "woocommerce",
            Provider::SendGrid => "sendgrid",
            Provider::Mailgun => "mailgun",
            Provider::Ses => "ses",
            Provider::Twilio => "twilio",
        }
    }
}

/// Stores (or replaces) a company's secret for a provider. Runs as the owner (CLI).
pub async fn set_secret(
    owner: &PgPool,
    key: &SecretsKey,
    company_id: Uuid,
    provider: Provider,
    secret: &str,
) -> Result<(), SecretError> {
    if secret.trim().is_empty() {
        return Err(SecretError::EmptySecret);
    }
    let (nonce, ciphertext) = key.seal(company_id, secret.as_bytes());
    crate::tenancy::require_company(owner, company_id.into()).await?;
    sqlx::query(
        "INSERT INTO webhook_secrets (company_id, provider, nonce, ciphertext)
         VALUES ($1, $2, $3, $4)
         ON CONFLICT (company_id, provider) DO UPDATE
         SET nonce = excluded.nonce, ciphertext = excluded.ciphertext, created_at = now()",
    )
    .bind(company_id)
    .bind(provider.as_str())
    .bind(nonce.as_slice())
    .bind(ciphertext)
    .execute(owner)
    .await?;
    Ok(())
}

/// The company's secret for a provider, decrypted; `None` when none is set or it does not
/// decrypt with this key.
pub async fn load_secret(
    tx: &mut Transaction<'_, Postgres>,
    key: &SecretsKey,
    company_id: Uuid,
    provider: Provider,
) -> Result<Option<Vec<u8>>, sqlx::Error> {
    let row: Option<(Vec<u8>, Vec<u8>)> = sqlx::query_as(
        "SELECT nonce, ciphertext FROM webhook_secrets WHERE company_id = $1 AND provider = $2",
    )
    .bind(company_id)
    .bind(provider.as_str())
    .fetch_optional(&mut **tx)
    .await?;
    Ok(row.and_then(|(nonce, ciphertext)| key.open(company_id, &nonce, &ciphertext)))
}
