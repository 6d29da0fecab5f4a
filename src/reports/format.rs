//! How report values are written: money as decimal strings in major units with the
//! currency's ISO 4217 exponent (`"123.45"`, JPY `"20000"`), ratios as JSON numbers rounded to
//! 4 decimals (`null` when the denominator is 0).
//!
//! Sums and money ratios are computed in SQL `numeric` (exact) and rounded once to a whole
//! minor unit there; this module only writes the integers out.

use super::ReportError;
use crate::commerce::money::Currency;

/// Minor units written in major units of `currency` (a code as stored in the rollups).
pub fn money(currency: &str, minor: i64) -> Result<String, ReportError> {
    let parsed = Currency::parse(currency)
        .ok_or_else(|| ReportError::Data(format!("currency {currency:?} in a rollup row")))?;
    Ok(parsed.format(minor))
}

/// [`money`] for an amount that may be absent (a ratio with a zero denominator).
pub fn money_or_null(currency: &str, minor: Option<i64>) -> Result<Option<String>, ReportError> {
    minor.map(|m| money(currency, m)).transpose()
}

/// `numerator ÷ denominator` rounded half away from zero to 4 decimals, exactly (integer
/// arithmetic, no float until the rounded result); `None` when the denominator is 0.
pub fn ratio(numerator: i64, denominator: i64) -> Option<f64> {
    if denominator == 0 {
        return None;
    }
    let (n, d) = (i128::from(numerator), i128::from(denominator));
    let negative = (n < 0) != (d < 0);
    let (n, d) = (n.abs(), d.abs());
    let ten_thousandths = (n * 20_000 + d) / (2 * d);
    let signed = if negative {
        -ten_thousandths
    } else {
        ten_thousandths
    };
    // The nearest double to a decimal with at most 4 places prints back as that decimal.
    Some(signed as f64 / 10_000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_round_half_away_from_zero_to_four_places() {
        assert_eq!(ratio(1, 3), Some(0.3333));
        assert_eq!(ratio(2, 3), Some(0.6667));
        assert_eq!(ratio(1, 8), Some(0.125));
        assert_eq!(ratio(1, 20_000), Some(0.0001), "0.00005 rounds up");
        assert_eq!(ratio(-1, 3), Some(-0.3333));
        assert_eq!(ratio(5, 0), None);
        assert_eq!(serde_json::json!(ratio(1, 3)).to_string(), "0.3333");
    }

    #[test]
    fn money_follows_the_currency_exponent() {
        assert_eq!(money("EUR", 12345).unwrap(), "123.45");
        assert_eq!(money("JPY", 20000).unwrap(), "20000");
        assert_eq!(money("KWD", 1500).unwrap(), "1.500");
        assert_eq!(money_or_null("USD", None).unwrap(), None);
        assert!(money("??", 1).is_err());
    }
}
