//! SendGrid's signed Event Webhook: an ECDSA P-256 / SHA-256 signature (base64 of DER) over the
//! timestamp header followed by the raw body, checked with the public key the SendGrid account
//! shows (base64 of a DER SubjectPublicKeyInfo, stored with `lux company set-secret`).
//!
//! The body SendGrid signs ends in `\r\n`; it must be the exact bytes received, never a
//! re-serialisation of the parsed JSON.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, TimeDelta, Utc};
use p256::ecdsa::signature::MultipartVerifier;
use p256::ecdsa::{Signature, VerifyingKey};
use p256::pkcs8::DecodePublicKey;

use super::{OutsideWindow, check_window, parse_unix_seconds};

pub const SIGNATURE_HEADER: &str = "X-Twilio-Email-Event-Webhook-Signature";
pub const TIMESTAMP_HEADER: &str = "X-Twilio-Email-Event-Webhook-Timestamp";

/// What failed, in the order it is checked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendGridError {
    #[error("the configured SendGrid verification key is not a base64 DER P-256 public key")]
    InvalidKey,
    #[error("missing {SIGNATURE_HEADER} header")]
    MissingSignature,
    #[error("missing {TIMESTAMP_HEADER} header")]
    MissingTimestamp,
    #[error("{TIMESTAMP_HEADER} is not a Unix timestamp in seconds")]
    InvalidTimestamp,
    #[error(transparent)]
    Stale(#[from] OutsideWindow),
    #[error("{SIGNATURE_HEADER} is not a base64 DER ECDSA signature")]
    MalformedSignature,
    #[error("signature does not match the body (tampered, or signed with another key)")]
    Mismatch,
}

/// A company's SendGrid verification key, decoded once.
#[derive(Debug, Clone)]
pub struct SendGridKey(VerifyingKey);

impl SendGridKey {
    /// The key as SendGrid shows it: base64 of the DER SubjectPublicKeyInfo. A PEM wrapper
    /// (`-----BEGIN PUBLIC KEY-----`) and line breaks are tolerated, since people paste it so.
    pub fn from_base64_der(text: &str) -> Result<SendGridKey, SendGridError> {
        let base64: String = text
            .lines()
            .filter(|line| !line.trim_start().starts_with("-----"))
            .flat_map(|line| line.chars().filter(|c| !c.is_whitespace()))
            .collect();
        let der = STANDARD
            .decode(base64)
            .map_err(|_| SendGridError::InvalidKey)?;
        VerifyingKey::from_public_key_der(&der)
            .map(SendGridKey)
            .map_err(|_| SendGridError::InvalidKey)
    }
}

/// Verifies one request: `signature` and `timestamp` are the header values (`None` when
/// absent), `body` the raw bytes. The timestamp must be within `tolerance` of `now`
/// ([`super::DEFAULT_TOLERANCE`] unless configured).
pub fn verify(
    key: &SendGridKey,
    signature: Option<&str>,
    timestamp: Option<&str>,
    body: &[u8],
    now: DateTime<Utc>,
    tolerance: TimeDelta,
) -> Result<(), SendGridError> {
    let signature = signature
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or(SendGridError::MissingSignature)?;
    let timestamp = timestamp
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or(SendGridError::MissingTimestamp)?;
    let signed_at = parse_unix_seconds(timestamp).ok_or(SendGridError::InvalidTimestamp)?;
    check_window(signed_at, now, tolerance)?;
    let der = STANDARD
        .decode(signature)
        .map_err(|_| SendGridError::MalformedSignature)?;
    let signature = Signature::from_der(&der).map_err(|_| SendGridError::MalformedSignature)?;
    key.0
        .multipart_verify(&[timestamp.as_bytes(), body], &signature)
        .map_err(|_| SendGridError::Mismatch)
}

#[cfg(test)]
mod tests {
    use super::*;

    // SendGrid's published test vector: sendgrid/sendgrid-python `test/test_eventwebhook.py`
    // (MIT); the same constants are in sendgrid-go and sendgrid-nodejs. The payload is the
    // compact JSON with sorted keys followed by "\r\n", as the SDK tests build it.
    const PUBLIC_KEY: &str = "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE83T4O/n84iotIvIW4mdBgQ/7dAfSmpqIM8kF9mN1flpVKS3GRqe62gw+2fNNRaINXvVpiglSI8eNEc6wEA3F+g==";
    const SIGNATURE: &str = "MEUCIGHQVtGj+Y3LkG9fLcxf3qfI10QysgDWmMOVmxG0u6ZUAiEAyBiXDWzM+uOe5W0JuG+luQAbPIqHh89M15TluLtEZtM=";
    const TIMESTAMP: &str = "1600112502";
    const PAYLOAD: &str = concat!(
        r#"[{"email":"hello@world.com","event":"dropped","reason":"Bounced Address","#,
        r#""sg_event_id":"ZHJvcC0xMDk5NDkxOS1MUnpYbF9OSFN0T0doUTRrb2ZTbV9BLTA","#,
        r#""sg_message_id":"LRzXl_NHStOGhQ4kofSm_A.filterdrecv-p3mdw1-756b745b58-kmzbl-18-5F5FC76C-9.0","#,
        r#""smtp-id":"<LRzXl_NHStOGhQ4kofSm_A@ismtpd0039p1iad1.sendgrid.net>","timestamp":1600112492}]"#,
        "\r\n"
    );
    // The "bad key" of the same SDK test: a valid P-256 key that did not sign the payload.
    const OTHER_KEY: &str = "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEqTxd43gyp8IOEto2LdIfjRQrIbsd4SXZkLW6jDutdhXSJCWHw8REntlo7aNDthvj+y7GjUuFDb/R1NGe1OPzpA==";
    // The "bad signature" of the same test: well formed, made over something else.
    const OTHER_SIGNATURE: &str = "MEUCIQCtIHJeH93Y+qpYeWrySphQgpNGNr/U+UyUlBkU6n7RAwIgJTz2C+8a8xonZGi6BpSzoQsbVRamr2nlxFDWYNH3j/0=";

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(seconds, 0).unwrap()
    }

    fn check(
        key: &str,
        signature: Option<&str>,
        timestamp: Option<&str>,
        body: &[u8],
        now: i64,
    ) -> Result<(), SendGridError> {
        let key = SendGridKey::from_base64_der(key)?;
        verify(
            &key,
            signature,
            timestamp,
            body,
            at(now),
            super::super::DEFAULT_TOLERANCE,
        )
    }

    #[test]
    fn sendgrids_published_vector_verifies() {
        let now = 1_600_112_502 + 20;
        assert_eq!(
            check(
                PUBLIC_KEY,
                Some(SIGNATURE),
                Some(TIMESTAMP),
                PAYLOAD.as_bytes(),
                now
            ),
            Ok(())
        );
    }

    #[test]
    fn a_tampered_body_is_refused() {
        let now = 1_600_112_502;
        let tampered = PAYLOAD.replace("dropped", "delivered");
        let without_crlf = PAYLOAD.trim_end();
        for body in [tampered.as_str(), without_crlf, "payload", ""] {
            assert_eq!(
                check(
                    PUBLIC_KEY,
                    Some(SIGNATURE),
                    Some(TIMESTAMP),
                    body.as_bytes(),
                    now
                ),
                Err(SendGridError::Mismatch),
                "{body:?}"
            );
        }
    }

    #[test]
    fn a_signature_under_another_key_or_over_another_message_is_refused() {
        let now = 1_600_112_502;
        assert_eq!(
            check(
                OTHER_KEY,
                Some(SIGNATURE),
                Some(TIMESTAMP),
                PAYLOAD.as_bytes(),
                now
            ),
            Err(SendGridError::Mismatch)
        );
        assert_eq!(
            check(
                PUBLIC_KEY,
                Some(OTHER_SIGNATURE),
                Some(TIMESTAMP),
                PAYLOAD.as_bytes(),
                now
            ),
            Err(SendGridError::Mismatch)
        );
        // The timestamp is part of what is signed: a fresh timestamp on an old body fails.
        assert_eq!(
            check(
                PUBLIC_KEY,
                Some(SIGNATURE),
                Some("1600112503"),
                PAYLOAD.as_bytes(),
                1_600_112_503
            ),
            Err(SendGridError::Mismatch)
        );
    }

    #[test]
    fn a_stale_or_future_timestamp_is_refused_before_the_signature_is_checked() {
        let body = PAYLOAD.as_bytes();
        assert_eq!(
            check(
                PUBLIC_KEY,
                Some(SIGNATURE),
                Some(TIMESTAMP),
                body,
                1_600_112_502 + 301
            ),
            Err(SendGridError::Stale(OutsideWindow {
                age_seconds: 301,
                tolerance_seconds: 300
            }))
        );
        assert!(matches!(
            check(
                PUBLIC_KEY,
                Some(SIGNATURE),
                Some(TIMESTAMP),
                body,
                1_600_112_502 - 301
            ),
            Err(SendGridError::Stale(OutsideWindow {
                age_seconds: -301,
                ..
            }))
        ));
        assert_eq!(
            check(
                PUBLIC_KEY,
                Some(SIGNATURE),
                Some(TIMESTAMP),
                body,
                1_600_112_502 + 300
            ),
            Ok(())
        );
    }

    #[test]
    fn missing_or_malformed_headers_and_keys_are_named() {
        let body = PAYLOAD.as_bytes();
        let now = 1_600_112_502;
        let cases = [
            (
                PUBLIC_KEY,
                None,
                Some(TIMESTAMP),
                SendGridError::MissingSignature,
            ),
            (
                PUBLIC_KEY,
                Some(" "),
                Some(TIMESTAMP),
                SendGridError::MissingSignature,
            ),
            (
                PUBLIC_KEY,
                Some(SIGNATURE),
                None,
                SendGridError::MissingTimestamp,
            ),
            (
                PUBLIC_KEY,
                Some(SIGNATURE),
                Some("timestamp"),
                SendGridError::InvalidTimestamp,
            ),
            (
                PUBLIC_KEY,
                Some("not base64!"),
                Some(TIMESTAMP),
                SendGridError::MalformedSignature,
            ),
            (
                PUBLIC_KEY,
                Some("AAAA"),
                Some(TIMESTAMP),
                SendGridError::MalformedSignature,
            ),
            (
                "MFkwEwYHKoZIzj0CAQ",
                Some(SIGNATURE),
                Some(TIMESTAMP),
                SendGridError::InvalidKey,
            ),
            (
                "not a key",
                Some(SIGNATURE),
                Some(TIMESTAMP),
                SendGridError::InvalidKey,
            ),
        ];
        for (key, signature, timestamp, expected) in cases {
            assert_eq!(
                check(key, signature, timestamp, body, now),
                Err(expected.clone()),
                "{expected}"
            );
        }
    }

    #[test]
    fn a_key_pasted_as_pem_with_line_breaks_is_accepted() {
        let pem = format!(
            "-----BEGIN PUBLIC KEY-----\n{}\n{}\n-----END PUBLIC KEY-----\n",
            &PUBLIC_KEY[..64],
            &PUBLIC_KEY[64..]
        );
        let key = SendGridKey::from_base64_der(&pem).unwrap();
        let now = at(1_600_112_502);
        let result = verify(
            &key,
            Some(SIGNATURE),
            Some(TIMESTAMP),
            PAYLOAD.as_bytes(),
            now,
            super::super::DEFAULT_TOLERANCE,
        );
        assert_eq!(result, Ok(()));
    }
}
