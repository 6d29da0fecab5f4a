//! Identifiers that cross module boundaries, as their own types: a company id cannot be
//! passed where a key id or an order id is expected. A leaf: it imports nothing of the crate.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A company (tenant). Binds and decodes as its UUID, serialises as one.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, sqlx::Type,
)]
#[serde(transparent)]
#[sqlx(transparent)]
pub struct CompanyId(Uuid);

impl CompanyId {
    pub const fn from_uuid(id: Uuid) -> CompanyId {
        CompanyId(id)
    }

    pub const fn uuid(self) -> Uuid {
        self.0
    }
}

impl From<Uuid> for CompanyId {
    fn from(id: Uuid) -> Self {
        CompanyId(id)
    }
}

impl From<CompanyId> for Uuid {
    fn from(id: CompanyId) -> Self {
        id.0
    }
}

impl fmt::Display for CompanyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for CompanyId {
    type Err = uuid::Error;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(text.trim()).map(CompanyId)
    }
}

/// An event's name as ingestion accepts it (SPEC §5): a letter, then letters, digits and
/// `_ . : -`, at most [`EventName::MAX_LEN`] characters. Funnel steps and key events are held
/// to the same rule, so a funnel cannot name an event no one can send.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, sqlx::Type)]
#[serde(transparent)]
#[sqlx(transparent)]
pub struct EventName(String);

impl EventName {
    pub const MAX_LEN: usize = 64;

    pub fn is_valid(text: &str) -> bool {
        !text.is_empty()
            && text.len() <= Self::MAX_LEN
            && text.starts_with(|c: char| c.is_ascii_alphabetic())
            && text
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-'))
    }

    /// The name, when it is one.
    pub fn parse(text: &str) -> Option<EventName> {
        Self::is_valid(text).then(|| EventName(text.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl PartialEq<&str> for EventName {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl fmt::Display for EventName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_names_start_with_a_letter_and_stay_short() {
        for ok in ["page_view", "purchase", "video.play", "a", "ns:event-1"] {
            assert_eq!(EventName::parse(ok).unwrap(), ok);
        }
        for bad in ["", "1st", "has space", "emoji😀", &"x".repeat(65)] {
            assert!(EventName::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn a_company_id_reads_writes_and_prints_as_its_uuid() {
        let uuid = Uuid::now_v7();
        let id: CompanyId = format!(" {uuid} ").parse().unwrap();
        assert_eq!(id.uuid(), uuid);
        assert_eq!(id.to_string(), uuid.to_string());
        assert_eq!(serde_json::to_value(id).unwrap(), serde_json::json!(uuid));
        assert!("acme".parse::<CompanyId>().is_err());
    }
}
