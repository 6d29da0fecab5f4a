//! Experiments: A/B tests a company runs on its site, and how fast it runs them.
//!
//! A visitor is exposed to a variant (`experiment_exposure` events, the snippet's
//! `lux.expose(key, variant)`); an experiment's primary event is its conversion.
//! - [`registry`]: the experiments a company runs (table `experiments`): create, conclude,
//!   list, for the command line and the API;
//! - [`api`]: `POST /api/v1/experiments`, `GET /api/v1/experiments`,
//!   `POST /api/v1/experiments/{key}/conclude` (secret key);
//! - [`stats`]: per-variant results (exposed and converted visitors, rate, uplift against the
//!   control, 95 % interval of the difference, two-sided p-value), pure;
//! - [`velocity`]: ops velocity per month (launched, concluded, win rate, median days), pure.
//!
//! The exposure rollups are `rollups::experiments`; the `experiments` and `ops_velocity`
//! reports (`reports::experiments`) feed the rollups and the registry to [`stats`] and
//! [`velocity`]. Formulas are written out in `docs/metrics.md` ("Experiments").

pub mod api;
pub mod registry;
pub mod stats;
pub mod velocity;

use std::fmt;

/// A variant's name as the snippet sends it (`properties.variant`), e.g. `control` or `b`.
///
/// Only [`Variant::parse`] makes one, so a variant is never empty, never padded with
/// whitespace and never longer than [`Variant::MAX_LEN`] bytes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct Variant(String);

/// Why a string is not a variant name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VariantError {
    #[error("variant is empty")]
    Empty,
    #[error("variant is longer than {max} bytes")]
    TooLong { max: usize },
    #[error("variant contains a control character")]
    ControlCharacter,
}

impl Variant {
    /// Long enough for any name a person types; short enough to keep rollup keys small.
    pub const MAX_LEN: usize = 64;

    /// Trims surrounding whitespace, then checks the name.
    pub fn parse(raw: &str) -> Result<Self, VariantError> {
        let name = raw.trim();
        if name.is_empty() {
            return Err(VariantError::Empty);
        }
        if name.len() > Self::MAX_LEN {
            return Err(VariantError::TooLong { max: Self::MAX_LEN });
        }
        if name.chars().any(char::is_control) {
            return Err(VariantError::ControlCharacter);
        }
        Ok(Self(name.to_owned()))
    }
}

/// An experiment's key as the snippet sends it (`properties.experiment`) and the registry
/// stores it, e.g. `hero` or `checkout-2026.q4`: a letter or digit, then letters, digits or
/// `_ . : -`, at most [`ExperimentKey::MAX_LEN`] bytes (the table's check). Case matters.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct ExperimentKey(String);

/// Why a string is not an experiment key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "experiment key {0:?} is not a key: 1 to 64 of letters, digits and _ . : - starting with a \
     letter or digit (e.g. hero)"
)]
pub struct KeyError(pub String);

impl ExperimentKey {
    pub const MAX_LEN: usize = 64;

    /// Trims surrounding whitespace, then checks the key.
    pub fn parse(raw: &str) -> Result<Self, KeyError> {
        let key = raw.trim();
        let valid = key.len() <= Self::MAX_LEN
            && key.starts_with(|c: char| c.is_ascii_alphanumeric())
            && key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-'));
        if !valid {
            return Err(KeyError(raw.chars().take(80).collect()));
        }
        Ok(Self(key.to_owned()))
    }
}

impl AsRef<str> for ExperimentKey {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ExperimentKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for Variant {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Variant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variant_names_are_trimmed_and_checked() {
        assert_eq!(Variant::parse("  b ").unwrap().as_ref(), "b");
        assert_eq!(Variant::parse("  "), Err(VariantError::Empty));
        assert_eq!(Variant::parse("a\nb"), Err(VariantError::ControlCharacter));
        assert_eq!(
            Variant::parse(&"x".repeat(65)),
            Err(VariantError::TooLong { max: 64 })
        );
    }

    #[test]
    fn experiment_keys_are_short_and_plain() {
        assert_eq!(ExperimentKey::parse(" hero ").unwrap().as_ref(), "hero");
        assert!(ExperimentKey::parse("checkout-2026.q4:b_2").is_ok());
        for bad in ["", "-hero", "he ro", "héro", &"k".repeat(65)] {
            assert!(ExperimentKey::parse(bad).is_err(), "{bad}");
        }
    }
}
