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

#[cfg(test)]
mod tests {
    use super::*;

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
