//! The person a message was sent to: an email address or an E.164 phone number, normalised the
//! way it is hashed. Only its keyed hash ([`RecipientHash`]) may be stored; the value itself
//! lives in memory between the request and the hash, and never prints itself (`Debug` says
//! which kind it is and nothing more), so a `{:?}` in a log line or an error cannot leak it.

use std::fmt;

use crate::messages::Channel;
use crate::privacy::{keyed_hash, normalise_email};

/// A normalised recipient. The only ways in are [`Recipient::parse`], [`Recipient::email`] and
/// [`Recipient::phone`].
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Recipient {
    kind: Channel,
    normalised: String,
}

/// Why a text is not a recipient. The messages never repeat the text: it is personal data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecipientError {
    #[error("recipient is empty")]
    Empty,
    #[error(
        "recipient is neither an email address (no @) nor an E.164 phone number (+ and digits)"
    )]
    Unrecognised,
    #[error("recipient is not a valid email address")]
    InvalidEmail,
    #[error("phone number must start with + and its country code (E.164)")]
    PhoneWithoutPlus,
    #[error(
        "phone number may hold only digits after the +, besides spaces, dashes and parentheses"
    )]
    PhoneCharacter,
    #[error("phone number must have 8 to 15 digits (E.164), it has {0}")]
    PhoneLength(usize),
}

/// Digits of an E.164 number: at most 15 (ITU-T E.164); at least 8, below which no country's
/// full international number falls (country code + national significant number).
const PHONE_DIGITS: std::ops::RangeInclusive<usize> = 8..=15;

impl Recipient {
    /// An email address (it contains `@`) or a phone number (anything else).
    pub fn parse(raw: &str) -> Result<Recipient, RecipientError> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            Err(RecipientError::Empty)
        } else if trimmed.contains('@') {
            Recipient::email(trimmed)
        } else if trimmed.starts_with('+') || trimmed.starts_with('(') {
            Recipient::phone(trimmed)
        } else if trimmed.bytes().any(|b| b.is_ascii_digit()) {
            // Digits without a +: a national number, which names no country.
            Err(RecipientError::PhoneWithoutPlus)
        } else {
            Err(RecipientError::Unrecognised)
        }
    }

    /// Trimmed and lowercased, as [`crate::privacy::EmailHash`] normalises, so the hash of a
    /// recipient matches the hash of the same buyer's email on an order.
    pub fn email(raw: &str) -> Result<Recipient, RecipientError> {
        match normalise_email(raw) {
            Some(normalised) => Ok(Recipient {
                kind: Channel::Email,
                normalised,
            }),
            None if raw.trim().is_empty() => Err(RecipientError::Empty),
            None => Err(RecipientError::InvalidEmail),
        }
    }

    /// E.164: spaces, dashes and parentheses are dropped (`+1 (415) 555-0100` →
    /// `+14155550100`); a leading `+` and 8 to 15 digits are required.
    pub fn phone(raw: &str) -> Result<Recipient, RecipientError> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(RecipientError::Empty);
        }
        let mut normalised = String::with_capacity(16);
        let mut digits = 0;
        for c in trimmed.chars() {
            match c {
                ' ' | '-' | '(' | ')' => {}
                // A digit before the + has already been refused below.
                '+' if normalised.is_empty() => normalised.push('+'),
                '0'..='9' if !normalised.is_empty() => {
                    digits += 1;
                    normalised.push(c);
                }
                '0'..='9' => return Err(RecipientError::PhoneWithoutPlus),
                _ => return Err(RecipientError::PhoneCharacter),
            }
        }
        if normalised.is_empty() {
            return Err(RecipientError::PhoneWithoutPlus);
        }
        if !PHONE_DIGITS.contains(&digits) {
            return Err(RecipientError::PhoneLength(digits));
        }
        Ok(Recipient {
            kind: Channel::Sms,
            normalised,
        })
    }

    /// Email or SMS.
    pub fn channel(&self) -> Channel {
        self.kind
    }

    /// The normalised text, for hashing and for nothing else: never store or log it.
    pub fn expose(&self) -> &str {
        &self.normalised
    }

    /// The keyed hash stored as `message_sends.recipient_hash`. For an email it is the same
    /// value as [`crate::privacy::EmailHash::of`].
    pub fn hash(&self, company_key: &[u8]) -> RecipientHash {
        RecipientHash(keyed_hash(company_key, &self.normalised))
    }
}

impl fmt::Debug for Recipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            Channel::Email => f.write_str("Recipient(email, redacted)"),
            Channel::Sms => f.write_str("Recipient(phone, redacted)"),
        }
    }
}

/// HMAC-SHA256 of a normalised recipient under the company's key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RecipientHash([u8; 32]);

impl RecipientHash {
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// A hash read back from storage.
    pub fn from_bytes(bytes: &[u8]) -> Option<RecipientHash> {
        Some(RecipientHash(bytes.try_into().ok()?))
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::privacy::EmailHash;

    const KEY: &[u8] = b"company key of 32 bytes, exactly";

    #[test]
    fn an_email_is_trimmed_and_lowercased_and_hashes_like_the_order_emails() {
        let recipient = Recipient::parse("  Jane.Doe@Example.COM \n").unwrap();
        assert_eq!(recipient.channel(), Channel::Email);
        assert_eq!(recipient.expose(), "jane.doe@example.com");
        let order_side = EmailHash::of(KEY, "jane.doe@example.com").unwrap();
        assert_eq!(recipient.hash(KEY).as_bytes(), order_side.as_bytes());
        assert_ne!(
            recipient.hash(KEY),
            recipient.hash(b"another company's key, 32 bytes!")
        );
    }

    #[test]
    fn a_phone_number_loses_its_punctuation_and_keeps_its_plus() {
        for (raw, expected) in [
            ("+1 (415) 555-0100", "+14155550100"),
            ("+44 20 7946 0958", "+442079460958"),
            (" +4915123456789 ", "+4915123456789"),
            ("(+33) 6 12 34 56 78", "+33612345678"),
        ] {
            let recipient = Recipient::parse(raw).unwrap();
            assert_eq!(recipient.channel(), Channel::Sms, "{raw}");
            assert_eq!(recipient.expose(), expected, "{raw}");
        }
        assert_eq!(
            Recipient::parse("+1 415 555 0100").unwrap().hash(KEY),
            Recipient::parse("+1-415-555-0100").unwrap().hash(KEY),
            "one number, one hash, however it is written"
        );
    }

    #[test]
    fn bad_recipients_are_refused_with_a_reason_that_does_not_repeat_them() {
        let cases = [
            ("", RecipientError::Empty),
            ("   ", RecipientError::Empty),
            ("jane", RecipientError::Unrecognised),
            ("@example.com", RecipientError::InvalidEmail),
            ("jane@", RecipientError::InvalidEmail),
            ("a@b@c", RecipientError::InvalidEmail),
            ("4155550100", RecipientError::PhoneWithoutPlus),
            ("1+4155550100", RecipientError::PhoneWithoutPlus),
            ("+1 415.555.0100", RecipientError::PhoneCharacter),
            ("+1415555010x", RecipientError::PhoneCharacter),
            ("++14155550100", RecipientError::PhoneCharacter),
            ("+1415555", RecipientError::PhoneLength(7)),
            ("+1234567890123456", RecipientError::PhoneLength(16)),
            ("+", RecipientError::PhoneLength(0)),
        ];
        for (raw, expected) in cases {
            let error = Recipient::parse(raw).unwrap_err();
            assert_eq!(error, expected, "{raw:?}");
            if raw.trim().len() > 1 {
                assert!(!error.to_string().contains(raw.trim()), "{raw:?}: {error}");
            }
        }
        assert_eq!(Recipient::parse("+12345678").unwrap().expose(), "+12345678");
        assert_eq!(
            Recipient::parse("+123456789012345").unwrap().expose(),
            "+123456789012345"
        );
    }

    #[test]
    fn debug_never_prints_the_address_or_number() {
        let email = Recipient::parse("jane@example.com").unwrap();
        let phone = Recipient::parse("+14155550100").unwrap();
        let printed = format!("{email:?} {phone:?} {:?}", Some(&email));
        assert!(!printed.contains("jane"), "{printed}");
        assert!(!printed.contains("example"), "{printed}");
        assert!(!printed.contains("4155550100"), "{printed}");
        assert!(printed.contains("email") && printed.contains("phone"));
    }

    #[test]
    fn a_hash_survives_storage() {
        let hash = Recipient::parse("+14155550100").unwrap().hash(KEY);
        assert_eq!(RecipientHash::from_bytes(hash.as_bytes()), Some(hash));
        assert_eq!(hash.to_hex().len(), 64);
        assert_eq!(RecipientHash::from_bytes(&[1, 2, 3]), None);
    }
}
