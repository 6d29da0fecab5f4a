//! Webhook signatures of the message providers, checked on what arrived before anything is
//! trusted. Each provider has its own module and error enum naming the step that failed; the
//! handler maps every error to a 4xx and stores nothing.
//!
//! | provider | what is signed | key | replay defence |
//! |---|---|---|---|
//! | [`sendgrid`] | timestamp header + raw body | ECDSA P-256 public key (base64 DER) | timestamp window |
//! | [`mailgun`] | `timestamp` + `token` in the body | HMAC-SHA256 signing key | timestamp window, token claimed once by the caller |
//! | [`twilio`] | public URL + sorted form parameters | HMAC-SHA1 auth token | none in the scheme: idempotent on (MessageSid, status) |
//! | [`sns`] | SNS string-to-sign of the JSON fields | RSA key of an `sns.<region>.amazonaws.com` certificate | none in the scheme: idempotent on `MessageId` |
//!
//! No function here reads the clock: `now` is a parameter.

use chrono::{DateTime, TimeDelta, Utc};

pub mod mailgun;
pub mod sendgrid;
pub mod sns;
pub mod twilio;

/// How far a signed timestamp may be from `now`, either way, by default: five minutes, the
/// tolerance of Stripe's and Svix's libraries. Neither SendGrid nor Mailgun documents one.
pub const DEFAULT_TOLERANCE: TimeDelta = TimeDelta::seconds(300);

/// A signed timestamp too far from now: the request is a replay, or a clock is wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("signed timestamp is {age_seconds} s from now, beyond the {tolerance_seconds} s allowed")]
pub struct OutsideWindow {
    /// Positive when the timestamp is in the past.
    pub age_seconds: i64,
    pub tolerance_seconds: i64,
}

/// Checks a signed Unix timestamp (seconds) against `now`.
pub fn check_window(
    signed_at: i64,
    now: DateTime<Utc>,
    tolerance: TimeDelta,
) -> Result<(), OutsideWindow> {
    let age_seconds = now.timestamp().saturating_sub(signed_at);
    if age_seconds.unsigned_abs() > tolerance.num_seconds().unsigned_abs() {
        return Err(OutsideWindow {
            age_seconds,
            tolerance_seconds: tolerance.num_seconds(),
        });
    }
    Ok(())
}

/// A Unix timestamp in seconds as the providers send it in a header or a field: ASCII digits
/// only (no sign, no spaces, no fraction).
fn parse_unix_seconds(text: &str) -> Option<i64> {
    if text.is_empty() || text.len() > 12 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_is_inclusive_and_symmetric() {
        let now = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let tolerance = TimeDelta::seconds(300);
        assert!(check_window(1_700_000_000, now, tolerance).is_ok());
        assert!(check_window(1_700_000_000 - 300, now, tolerance).is_ok());
        assert!(check_window(1_700_000_000 + 300, now, tolerance).is_ok());
        assert_eq!(
            check_window(1_700_000_000 - 301, now, tolerance),
            Err(OutsideWindow {
                age_seconds: 301,
                tolerance_seconds: 300
            })
        );
        assert_eq!(
            check_window(1_700_000_000 + 301, now, tolerance).map_err(|e| e.age_seconds),
            Err(-301)
        );
        assert!(check_window(i64::MIN, now, tolerance).is_err());
        assert!(check_window(i64::MAX, now, tolerance).is_err());
    }

    #[test]
    fn unix_seconds_are_digits_only() {
        assert_eq!(parse_unix_seconds("1600112502"), Some(1_600_112_502));
        for bad in [
            "",
            " 1600112502",
            "-5",
            "+5",
            "1.5",
            "timestamp",
            "9999999999999",
        ] {
            assert_eq!(parse_unix_seconds(bad), None, "{bad:?}");
        }
    }
}
