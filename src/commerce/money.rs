//! Money: integer minor units in a currency's ISO 4217 exponent. Never a float.

use std::fmt;

/// A validated ISO 4217 code with its exponent (decimal places of its minor unit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Currency {
    code: [u8; 3],
}

/// ISO 4217 currencies without a minor unit.
pub(crate) const ZERO_DECIMAL: &[&str] = &[
    "BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "UYI", "VND",
    "VUV", "XAF", "XOF", "XPF",
];
/// ISO 4217 currencies with three decimals.
pub(crate) const THREE_DECIMAL: &[&str] = &["BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"];
/// Stripe's zero-decimal list differs from ISO for MGA (ISO: 2 decimals, Stripe: 0)...
const STRIPE_ZERO_DECIMAL_EXTRA: &[&str] = &["MGA"];
/// ...and for ISK (ISO: 0 decimals, Stripe's API: 2, `100` = 1 króna).
const STRIPE_TWO_DECIMAL_EXTRA: &[&str] = &["ISK"];

impl Currency {
    /// Parses a code in any case (`usd`, `EUR`).
    pub fn parse(code: &str) -> Option<Currency> {
        let upper = code.trim().to_ascii_uppercase();
        let bytes = upper.as_bytes();
        if bytes.len() != 3 || !bytes.iter().all(u8::is_ascii_uppercase) {
            return None;
        }
        Some(Currency {
            code: [bytes[0], bytes[1], bytes[2]],
        })
    }

    pub fn code(&self) -> &str {
        std::str::from_utf8(&self.code).expect("ASCII by construction")
    }

    /// Decimal places of the minor unit.
    pub fn exponent(&self) -> u32 {
        if ZERO_DECIMAL.contains(&self.code()) {
            0
        } else if THREE_DECIMAL.contains(&self.code()) {
            3
        } else {
            2
        }
    }

    /// Decimal places of Stripe's integer amounts for this currency.
    fn stripe_exponent(&self) -> u32 {
        if STRIPE_ZERO_DECIMAL_EXTRA.contains(&self.code()) {
            0
        } else if STRIPE_TWO_DECIMAL_EXTRA.contains(&self.code()) {
            2
        } else {
            self.exponent()
        }
    }

    /// Converts a Stripe integer amount ("in the smallest currency unit" by Stripe's own
    /// table) to our minor units.
    pub fn from_stripe_amount(&self, amount: i64) -> i64 {
        let (ours, theirs) = (self.exponent(), self.stripe_exponent());
        if ours >= theirs {
            amount.saturating_mul(10i64.pow(ours - theirs))
        } else {
            amount / 10i64.pow(theirs - ours)
        }
    }

    /// Parses a decimal amount in major units (`"29.35"`, `"-10.00"`, `"1,234.56"` is refused)
    /// into minor units. Extra decimals are rounded half away from zero.
    pub fn parse_decimal(&self, text: &str) -> Option<i64> {
        let text = text.trim();
        let (negative, digits) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text.strip_prefix('+').unwrap_or(text)),
        };
        let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
        if int.is_empty() && frac.is_empty()
            || !int.chars().all(|c| c.is_ascii_digit())
            || !frac.chars().all(|c| c.is_ascii_digit())
            || int.len() > 15
        {
            return None;
        }
        let exp = self.exponent() as usize;
        let mut minor: i64 = if int.is_empty() { 0 } else { int.parse().ok()? };
        minor = minor.checked_mul(10i64.pow(exp as u32))?;
        let kept: String = frac.chars().take(exp).collect();
        let kept = format!("{kept:0<exp$}");
        if exp > 0 {
            minor = minor.checked_add(kept.parse::<i64>().ok()?)?;
        }
        if frac.chars().nth(exp).is_some_and(|d| d >= '5') {
            minor = minor.checked_add(1)?;
        }
        Some(if negative { -minor } else { minor })
    }

    /// Formats minor units as a decimal string in major units.
    pub fn format(&self, minor: i64) -> String {
        let exp = self.exponent();
        if exp == 0 {
            return minor.to_string();
        }
        let scale = 10i64.pow(exp);
        let sign = if minor < 0 { "-" } else { "" };
        let abs = minor.unsigned_abs();
        format!(
            "{sign}{}.{:0width$}",
            abs / scale as u64,
            abs % scale as u64,
            width = exp as usize
        )
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// A JSON number or string as a decimal amount, without going through a float: a JSON number
/// is read back from its shortest text form (`19.9` → `"19.9"`).
pub fn json_decimal(value: &serde_json::Value, currency: Currency) -> Option<i64> {
    match value {
        serde_json::Value::String(s) => currency.parse_decimal(s),
        serde_json::Value::Number(n) => currency.parse_decimal(&n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(code: &str) -> Currency {
        Currency::parse(code).unwrap()
    }

    #[test]
    fn exponents_follow_iso_4217() {
        assert_eq!(c("usd").exponent(), 2);
        assert_eq!(c("JPY").exponent(), 0);
        assert_eq!(c("KWD").exponent(), 3);
        assert!(Currency::parse("dollars").is_none());
    }

    #[test]
    fn stripe_amounts_are_already_minor_units_except_where_tables_differ() {
        assert_eq!(c("usd").from_stripe_amount(2000), 2000);
        assert_eq!(
            c("jpy").from_stripe_amount(11200),
            11200,
            "JPY is whole yen"
        );
        assert_eq!(c("mga").from_stripe_amount(500), 50000);
        assert_eq!(
            c("isk").from_stripe_amount(50000),
            500,
            "Stripe's ISK has two decimals"
        );
    }

    #[test]
    fn decimals_parse_exactly() {
        assert_eq!(c("USD").parse_decimal("29.35"), Some(2935));
        assert_eq!(c("USD").parse_decimal("-10.00"), Some(-1000));
        assert_eq!(c("USD").parse_decimal("19.9"), Some(1990));
        assert_eq!(c("USD").parse_decimal("5"), Some(500));
        assert_eq!(
            c("USD").parse_decimal("0.005"),
            Some(1),
            "half away from zero"
        );
        assert_eq!(c("JPY").parse_decimal("1200"), Some(1200));
        assert_eq!(c("KWD").parse_decimal("1.5"), Some(1500));
        assert_eq!(c("USD").parse_decimal("1,234.56"), None);
        assert_eq!(c("USD").parse_decimal("abc"), None);
        assert_eq!(c("USD").format(-1990), "-19.90");
        assert_eq!(c("JPY").format(11200), "11200");
        assert_eq!(json_decimal(&serde_json::json!(19.9), c("EUR")), Some(1990));
    }
}
