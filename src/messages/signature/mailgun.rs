//! Mailgun's signed webhooks (JSON): the body carries `signature: {timestamp, token,
//! signature}`, where `signature` is the hex HMAC-SHA256 of `timestamp` followed by `token`
//! under the domain's webhook signing key.
//!
//! Only that object is read before the check; `event-data` is parsed afterwards by
//! [`crate::messages::normalize`]. A replayed request carries a token already seen: refusing it
//! needs storage, so [`verify`] hands the token back for the caller to claim once (a unique
//! row); the timestamp window bounds how long tokens must be kept.

use chrono::{DateTime, TimeDelta, Utc};
use hmac::{Hmac, KeyInit, Mac};
use serde::Deserialize;
use sha2::Sha256;

use super::{OutsideWindow, check_window, parse_unix_seconds};

/// What failed, in the order it is checked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MailgunError {
    #[error("the configured Mailgun webhook signing key is empty")]
    EmptyKey,
    #[error("body is not a JSON object with a signature object")]
    MissingSignature,
    #[error("signature.timestamp is not a Unix timestamp in seconds")]
    InvalidTimestamp,
    #[error("signature.token is empty")]
    EmptyToken,
    #[error(transparent)]
    Stale(#[from] OutsideWindow),
    #[error("signature.signature is not 64 hex digits")]
    MalformedSignature,
    #[error("signature does not match (tampered, or signed with another key)")]
    Mismatch,
}

/// A verified request: the token to claim against replays, and when it was signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub token: String,
    pub signed_at: DateTime<Utc>,
}

#[derive(Deserialize)]
struct Envelope {
    signature: SignatureFields,
}

#[derive(Deserialize)]
struct SignatureFields {
    timestamp: StringOrInteger,
    token: String,
    signature: String,
}

/// Mailgun sends the timestamp as a string of digits; a number is accepted too.
#[derive(Deserialize)]
#[serde(untagged)]
enum StringOrInteger {
    String(String),
    Integer(u64),
}

/// Verifies one request body against the company's signing key.
pub fn verify(
    signing_key: &[u8],
    body: &[u8],
    now: DateTime<Utc>,
    tolerance: TimeDelta,
) -> Result<Verified, MailgunError> {
    if signing_key.is_empty() {
        return Err(MailgunError::EmptyKey);
    }
    let envelope: Envelope =
        serde_json::from_slice(body).map_err(|_| MailgunError::MissingSignature)?;
    let fields = envelope.signature;
    let timestamp = match fields.timestamp {
        StringOrInteger::String(text) => text,
        StringOrInteger::Integer(number) => number.to_string(),
    };
    let signed_at = parse_unix_seconds(&timestamp).ok_or(MailgunError::InvalidTimestamp)?;
    if fields.token.is_empty() {
        return Err(MailgunError::EmptyToken);
    }
    check_window(signed_at, now, tolerance)?;
    let claimed = hex::decode(fields.signature.trim())
        .ok()
        .filter(|bytes| bytes.len() == 32)
        .ok_or(MailgunError::MalformedSignature)?;
    let mut mac =
        Hmac::<Sha256>::new_from_slice(signing_key).map_err(|_| MailgunError::EmptyKey)?;
    mac.update(timestamp.as_bytes());
    mac.update(fields.token.as_bytes());
    mac.verify_slice(&claimed)
        .map_err(|_| MailgunError::Mismatch)?;
    Ok(Verified {
        token: fields.token,
        signed_at: DateTime::from_timestamp(signed_at, 0).ok_or(MailgunError::InvalidTimestamp)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::signature::DEFAULT_TOLERANCE;

    // No published vector exists; this one was computed with Python's hmac module:
    // hmac.new(KEY, TIMESTAMP + TOKEN, hashlib.sha256).hexdigest().
    const KEY: &[u8] = b"mailgun-signing-key-of-this-test";
    const TIMESTAMP: &str = "1529006854";
    const TOKEN: &str = "a8ce0edb2dd8301dee6c2405235584e45aa91d1e9f979f3de0";
    const SIGNATURE: &str = "c7006ab6c8883e83ce7fec6e2db8d51387b62db3539057f5d555dc144cfd56e9";

    fn body(timestamp: &str, token: &str, signature: &str) -> Vec<u8> {
        serde_json::json!({
            "signature": {"timestamp": timestamp, "token": token, "signature": signature},
            "event-data": {"event": "delivered", "id": "CPgfbmQMTCKtHW6uIWtuVe"}
        })
        .to_string()
        .into_bytes()
    }

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(seconds, 0).unwrap()
    }

    #[test]
    fn a_valid_signature_returns_the_token_to_claim() {
        let verified = verify(
            KEY,
            &body(TIMESTAMP, TOKEN, SIGNATURE),
            at(1_529_006_854 + 60),
            DEFAULT_TOLERANCE,
        )
        .unwrap();
        assert_eq!(verified.token, TOKEN);
        assert_eq!(verified.signed_at, at(1_529_006_854));
        let upper = SIGNATURE.to_uppercase();
        assert!(
            verify(
                KEY,
                &body(TIMESTAMP, TOKEN, &upper),
                at(1_529_006_854),
                DEFAULT_TOLERANCE
            )
            .is_ok(),
            "hex case does not matter"
        );
        let numeric = serde_json::json!({
            "signature": {"timestamp": 1_529_006_854u64, "token": TOKEN, "signature": SIGNATURE}
        });
        assert!(
            verify(
                KEY,
                numeric.to_string().as_bytes(),
                at(1_529_006_854),
                DEFAULT_TOLERANCE
            )
            .is_ok()
        );
    }

    #[test]
    fn a_tampered_token_or_timestamp_or_another_key_is_refused() {
        let now = at(1_529_006_854);
        let cases = [
            (KEY, body(TIMESTAMP, &TOKEN.replace('a', "b"), SIGNATURE)),
            (KEY, body("1529006855", TOKEN, SIGNATURE)),
            (
                b"another-signing-key".as_slice(),
                body(TIMESTAMP, TOKEN, SIGNATURE),
            ),
            (KEY, body(TIMESTAMP, TOKEN, &SIGNATURE.replace('c', "d"))),
        ];
        for (key, request) in cases {
            assert_eq!(
                verify(key, &request, now, DEFAULT_TOLERANCE),
                Err(MailgunError::Mismatch),
                "{}",
                String::from_utf8_lossy(&request)
            );
        }
    }

    #[test]
    fn a_stale_timestamp_is_refused() {
        let request = body(TIMESTAMP, TOKEN, SIGNATURE);
        assert!(matches!(
            verify(KEY, &request, at(1_529_006_854 + 301), DEFAULT_TOLERANCE),
            Err(MailgunError::Stale(OutsideWindow {
                age_seconds: 301,
                ..
            }))
        ));
        assert!(matches!(
            verify(KEY, &request, at(1_529_006_854 - 301), DEFAULT_TOLERANCE),
            Err(MailgunError::Stale(_))
        ));
    }

    #[test]
    fn malformed_bodies_are_named() {
        let now = at(1_529_006_854);
        let cases: [(&[u8], &[u8], MailgunError); 8] = [
            (
                b"",
                &body(TIMESTAMP, TOKEN, SIGNATURE),
                MailgunError::EmptyKey,
            ),
            (KEY, b"not json", MailgunError::MissingSignature),
            (KEY, b"[]", MailgunError::MissingSignature),
            (
                KEY,
                br#"{"event-data": {"event": "delivered"}}"#,
                MailgunError::MissingSignature,
            ),
            (
                KEY,
                &body("yesterday", TOKEN, SIGNATURE),
                MailgunError::InvalidTimestamp,
            ),
            (
                KEY,
                &body(TIMESTAMP, "", SIGNATURE),
                MailgunError::EmptyToken,
            ),
            (
                KEY,
                &body(TIMESTAMP, TOKEN, "zz"),
                MailgunError::MalformedSignature,
            ),
            (
                KEY,
                &body(TIMESTAMP, TOKEN, &SIGNATURE[..62]),
                MailgunError::MalformedSignature,
            ),
        ];
        for (key, request, expected) in cases {
            assert_eq!(
                verify(key, request, now, DEFAULT_TOLERANCE),
                Err(expected.clone()),
                "{expected}"
            );
        }
    }
}
