//! Experiments: A/B tests a company runs on its site, and how fast it runs them.
//!
//! A visitor is exposed to a variant (`experiment_exposure` events, the snippet's
//! `lux.expose(key, variant)`); an experiment's primary event is its conversion. So far this
//! module holds only the pure core, with no database and no HTTP:
//! - [`stats`]: per-variant results (exposed and converted visitors, rate, uplift against the
//!   control, 95 % interval of the difference, two-sided p-value);
//! - [`velocity`]: ops velocity per month (launched, concluded, win rate, median days).
//!
//! The registry (CLI and API), the exposure rollups and the reports come next and will feed
//! these functions. Formulas are written out in `docs/metrics.md` ("Experiments").

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
}
