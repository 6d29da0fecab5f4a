//! SNS signing certificates by URL (`sns_certificates`): pinned by the operator with
//! `lux sns trust-cert` (for installations that cannot reach AWS), or fetched once over HTTPS
//! from an `sns.<region>.amazonaws.com` URL and kept. A pin is never replaced by a fetch.
//!
//! Only a URL that [`signature::sns::check_signing_cert_url`] accepts is ever looked up,
//! fetched or pinned, and it is the normalised URL that check returns, never the text a
//! message carried. The certificates are Amazon's, not a tenant's: the table has no company.

use std::time::Duration;

use sqlx::PgPool;
use url::Url;
use x509_cert::Certificate;
use x509_cert::der::DecodePem;

use super::https;
use super::signature::sns::{UrlProblem, check_signing_cert_url, sns_url_region};

/// A certificate is about 2 KB; anything much larger is not one.
const MAX_CERTIFICATE_BYTES: usize = 64 * 1024;
/// SNS answers in well under a second; a hung fetch must not hold a webhook for long.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("SigningCertURL refused: {0}")]
    Url(UrlProblem),
    #[error("the file is not a PEM X.509 certificate")]
    NotACertificate,
    #[error("could not fetch the SNS signing certificate: {0}")]
    Fetch(String),
    #[error("could not confirm the SNS subscription: {0}")]
    Confirm(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Pins `pem` as the certificate of `url` (which must be an SNS certificate URL); returns
/// the URL as stored.
pub async fn pin(pool: &PgPool, url: &str, pem: &[u8]) -> Result<Url, CertError> {
    let url = check_signing_cert_url(url).map_err(CertError::Url)?;
    Certificate::from_pem(pem).map_err(|_| CertError::NotACertificate)?;
    let pem = std::str::from_utf8(pem).map_err(|_| CertError::NotACertificate)?;
    sqlx::query(
        "INSERT INTO sns_certificates (url, pem, pinned) VALUES ($1, $2, true)
         ON CONFLICT (url) DO UPDATE SET pem = excluded.pem, pinned = true, stored_at = now()",
    )
    .bind(url.as_str())
    .bind(pem)
    .execute(pool)
    .await?;
    Ok(url)
}

/// The PEM certificate for a checked URL: stored (pinned or fetched before), else fetched
/// now over HTTPS and kept.
pub async fn certificate(pool: &PgPool, url: &Url) -> Result<Vec<u8>, CertError> {
    let stored: Option<String> =
        sqlx::query_scalar("SELECT pem FROM sns_certificates WHERE url = $1")
            .bind(url.as_str())
            .fetch_optional(pool)
            .await?;
    if let Some(pem) = stored {
        return Ok(pem.into_bytes());
    }
    let pem = fetch(url).await?;
    Certificate::from_pem(&pem).map_err(|_| CertError::Fetch("not a PEM certificate".into()))?;
    let text = String::from_utf8(pem).map_err(|_| CertError::Fetch("not text".into()))?;
    sqlx::query(
        "INSERT INTO sns_certificates (url, pem, pinned) VALUES ($1, $2, false)
         ON CONFLICT (url) DO NOTHING",
    )
    .bind(url.as_str())
    .bind(&text)
    .execute(pool)
    .await?;
    Ok(text.into_bytes())
}

async fn fetch(url: &Url) -> Result<Vec<u8>, CertError> {
    let answer = https::get(url, MAX_CERTIFICATE_BYTES, FETCH_TIMEOUT)
        .await
        .map_err(CertError::Fetch)?;
    if !answer.status.is_success() {
        return Err(CertError::Fetch(format!("HTTP {}", answer.status)));
    }
    Ok(answer.body)
}

/// Confirms an SNS subscription by GET of its `SubscribeURL`, which must be an
/// `https://sns.<region>.amazonaws.com/` URL (checked again here, whatever the caller did).
/// Goes through the same HTTPS client as the certificates: https only, no redirects.
pub async fn confirm_subscription(subscribe_url: &str) -> Result<(), CertError> {
    sns_url_region(subscribe_url).map_err(CertError::Url)?;
    let url = Url::parse(subscribe_url.trim()).map_err(|_| CertError::Url(UrlProblem::NotAUrl))?;
    let answer = https::get(&url, MAX_CERTIFICATE_BYTES, FETCH_TIMEOUT)
        .await
        .map_err(CertError::Confirm)?;
    if answer.status.is_success() {
        Ok(())
    } else {
        Err(CertError::Confirm(format!("HTTP {}", answer.status)))
    }
}
