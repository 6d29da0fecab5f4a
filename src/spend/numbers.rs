//! Numbers and days as the ad platforms print them in their English-locale exports, parsed
//! exactly: money never goes through a float.
//!
//! Accepted: `1234.56`, `"1,234.56"` (thousands separators in groups of three), `.5`, `12`.
//! Refused: a decimal comma (`0,19`, from other UI languages, where `1,234` would mean
//! 1.234), spaces (`1 234`), currency symbols, exponents (`1E+5`). A header in English is what
//! tells us the numbers are in English too: other languages' headers are not recognised.

use std::fmt;

use chrono::NaiveDate;

/// Money in millionths of a major unit, the scale of `ad_spend.spend` (`numeric(20, 6)`):
/// exact for Google's micros and for any decimal with up to six places. An `i64` holds up to
/// 9.2 trillion units, more than any one day's spend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Micros(i64);

const SCALE: i64 = 1_000_000;
const PLACES: usize = 6;

/// Why a cell is not the number or day its column holds; each carries the cell's text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NumberError {
    #[error("{0:?} is not a number")]
    NotANumber(String),
    #[error("{0:?} has more than {PLACES} decimal places (ad spend is stored to the millionth)")]
    TooManyPlaces(String),
    #[error("{0:?} is too large")]
    TooLarge(String),
    #[error("{0:?} is not a whole number of micros (this layout's Cost is cost_micros)")]
    NotMicros(String),
    #[error("{0:?} is not a whole number")]
    NotWhole(String),
    #[error("{0:?} is too large (at most {MAX_COUNT} a day)")]
    CountTooLarge(String),
    #[error("{0:?} is negative")]
    Negative(String),
    #[error("{0:?} is not a day as YYYY-MM-DD")]
    NotIsoDay(String),
    #[error("{0:?} is not a day (YYYY-MM-DD or like \"Jan 5, 2025\")")]
    NotGoogleDay(String),
}

/// A cell's problem with the name of its column, as a skipped line reports it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{column}: {error}")]
pub struct CellError {
    pub column: &'static str,
    pub error: NumberError,
}

impl NumberError {
    pub fn in_column(self, column: &'static str) -> CellError {
        CellError {
            column,
            error: self,
        }
    }
}

impl Micros {
    pub const ZERO: Micros = Micros(0);

    pub fn from_micros(micros: i64) -> Micros {
        Micros(micros)
    }

    pub fn micros(self) -> i64 {
        self.0
    }

    pub fn is_negative(self) -> bool {
        self.0 < 0
    }

    pub fn checked_add(self, other: Micros) -> Option<Micros> {
        self.0.checked_add(other.0).map(Micros)
    }

    /// A decimal amount in major units (`"1,234.56"` → 1234.56). More than six decimal
    /// places are refused unless they are zeros: storing them would round.
    pub fn parse_major(text: &str) -> Result<Micros, NumberError> {
        let not_a_number = || NumberError::NotANumber(text.to_string());
        let (negative, int, frac) = split(text.trim()).ok_or_else(not_a_number)?;
        let (kept, extra) = frac.split_at(frac.len().min(PLACES));
        if extra.bytes().any(|b| b != b'0') {
            return Err(NumberError::TooManyPlaces(text.to_string()));
        }
        let too_large = || NumberError::TooLarge(text.to_string());
        let units: i64 = if int.is_empty() {
            0
        } else {
            int.parse().map_err(|_| too_large())?
        };
        let fraction: i64 = format!("{kept:0<PLACES$}")
            .parse()
            .map_err(|_| not_a_number())?;
        let micros = units
            .checked_mul(SCALE)
            .and_then(|m| m.checked_add(fraction))
            .ok_or_else(too_large)?;
        Ok(Micros(if negative { -micros } else { micros }))
    }

    /// A whole number of micros, as Google's API reports cost (`cost_micros`): `12500000` is
    /// 12.50. A decimal point or a thousands separator means the column is not micros.
    pub fn parse_micros(text: &str) -> Result<Micros, NumberError> {
        let text = text.trim();
        let digits = text.strip_prefix('-').unwrap_or(text);
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(NumberError::NotMicros(text.to_string()));
        }
        text.parse()
            .map(Micros)
            .map_err(|_| NumberError::TooLarge(text.to_string()))
    }
}

/// The decimal text PostgreSQL reads as `numeric` exactly: `1234.560000`.
impl fmt::Display for Micros {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        let scale = SCALE as u64;
        write!(f, "{sign}{}.{:06}", abs / scale, abs % scale)
    }
}

/// A count (impressions, clicks): a whole, non-negative number, thousands separators allowed.
pub fn parse_count(text: &str) -> Result<i64, NumberError> {
    let not_whole = || NumberError::NotWhole(text.to_string());
    let (negative, int, frac) = split(text.trim()).ok_or_else(not_whole)?;
    if frac.bytes().any(|b| b != b'0') || int.is_empty() {
        return Err(not_whole());
    }
    let value: i64 = int
        .parse()
        .ok()
        .filter(|v| *v <= MAX_COUNT)
        .ok_or_else(|| NumberError::CountTooLarge(text.to_string()))?;
    if negative && value != 0 {
        return Err(NumberError::Negative(text.to_string()));
    }
    Ok(value)
}

/// The most impressions or clicks one row may count: far above any ad account's day, and low
/// enough that years of rows sum without overflowing a report's 64-bit totals.
pub const MAX_COUNT: i64 = 1_000_000_000_000;

/// The impressions and clicks cells of a platform export, in that order: blank or `--` is 0.
pub fn parse_metric_counts(impressions: &str, clicks: &str) -> Result<(i64, i64), CellError> {
    let count = |text: &str, name: &'static str| {
        if is_blank_metric(text) {
            Ok(0)
        } else {
            parse_count(text).map_err(|e| e.in_column(name))
        }
    };
    Ok((count(impressions, "Impressions")?, count(clicks, "Clicks")?))
}

/// Google's UI prints `--` where a metric has no value; both platforms may leave a cell
/// empty. Either means zero for spend, impressions and clicks.
pub fn is_blank_metric(text: &str) -> bool {
    matches!(text.trim(), "" | "--")
}

/// Splits an English-locale number into its sign, its integer digits (separators removed)
/// and its fraction digits; `None` for anything else.
fn split(text: &str) -> Option<(bool, String, &str)> {
    let (negative, rest) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (int, frac) = match rest.split_once('.') {
        Some((int, frac)) if !frac.is_empty() && all_digits(frac) => (int, frac),
        Some(_) => return None,
        None => (rest, ""),
    };
    if int.is_empty() {
        return (!frac.is_empty()).then(|| (negative, String::new(), frac));
    }
    let digits = if int.contains(',') {
        let mut groups = int.split(',');
        let first = groups.next()?;
        if first.is_empty() || first.len() > 3 || !all_digits(first) {
            return None;
        }
        let mut digits = first.to_string();
        for group in groups {
            if group.len() != 3 || !all_digits(group) {
                return None;
            }
            digits.push_str(group);
        }
        digits
    } else if all_digits(int) {
        int.to_string()
    } else {
        return None;
    };
    Some((negative, digits, frac))
}

fn all_digits(text: &str) -> bool {
    text.bytes().all(|b| b.is_ascii_digit())
}

/// A day as `YYYY-MM-DD`, the only form the generic CSV and Meta use.
pub fn parse_iso_day(text: &str) -> Result<NaiveDate, NumberError> {
    let text = text.trim();
    if text.len() == 10
        && let Ok(day) = NaiveDate::parse_from_str(text, "%Y-%m-%d")
    {
        return Ok(day);
    }
    Err(NumberError::NotIsoDay(text.to_string()))
}

/// A day in Google's UI: `YYYY-MM-DD`, or with an English month name (`Jan 5, 2025`,
/// `January 5, 2025`). Numeric forms such as `01/05/2025` are refused: month first or day
/// first depends on the locale.
pub fn parse_google_day(text: &str) -> Result<NaiveDate, NumberError> {
    if let Ok(day) = parse_iso_day(text) {
        return Ok(day);
    }
    let text = text.trim();
    for format in ["%b %d, %Y", "%B %d, %Y"] {
        if let Ok(day) = NaiveDate::parse_from_str(text, format) {
            return Ok(day);
        }
    }
    Err(NumberError::NotGoogleDay(text.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn major(text: &str) -> Result<String, NumberError> {
        Micros::parse_major(text).map(|m| m.to_string())
    }

    #[test]
    fn major_units_parse_exactly_with_or_without_thousands_separators() {
        assert_eq!(major("1,234.56").unwrap(), "1234.560000");
        assert_eq!(major("1234.56").unwrap(), "1234.560000");
        assert_eq!(major(" 12 ").unwrap(), "12.000000");
        assert_eq!(major(".5").unwrap(), "0.500000");
        assert_eq!(major("0.000001").unwrap(), "0.000001");
        assert_eq!(major("1.2300000").unwrap(), "1.230000", "trailing zeros");
        assert_eq!(major("1,000,000.1").unwrap(), "1000000.100000");
        assert_eq!(major("5339.5").unwrap(), "5339.500000");
        assert_eq!(major("-3.10").unwrap(), "-3.100000");
        assert_eq!(
            Micros::parse_major("0.1").unwrap().micros()
                + Micros::parse_major("0.2").unwrap().micros(),
            Micros::parse_major("0.3").unwrap().micros(),
            "no float"
        );
    }

    #[test]
    fn numbers_in_other_locales_or_shapes_are_refused() {
        for bad in [
            "0,19", "1 234,56", "1,23", "12,3456", ",123", "1.2.3", "1.", "$12", "12%", "1E+5", "",
            "-", "abc", "1,234,56",
        ] {
            assert!(major(bad).is_err(), "{bad:?} should be refused");
        }
        assert!(
            major("1.0000001")
                .unwrap_err()
                .to_string()
                .contains("more than 6 decimal places")
        );
        assert!(
            major("99999999999999999999")
                .unwrap_err()
                .to_string()
                .contains("too large")
        );
    }

    #[test]
    fn micros_are_whole_numbers() {
        assert_eq!(
            Micros::parse_micros("12500000").unwrap().to_string(),
            "12.500000"
        );
        assert_eq!(Micros::parse_micros("0").unwrap(), Micros::ZERO);
        assert!(Micros::parse_micros("12.5").is_err());
        assert!(Micros::parse_micros("1,250,000").is_err());
        assert!(Micros::parse_micros("").is_err());
    }

    #[test]
    fn counts_are_whole_and_not_negative() {
        assert_eq!(parse_count("1,234"), Ok(1234));
        assert_eq!(parse_count("17"), Ok(17));
        assert_eq!(parse_count("17.0"), Ok(17));
        assert!(parse_count("1.5").is_err());
        assert!(
            parse_count("-3")
                .unwrap_err()
                .to_string()
                .contains("negative")
        );
        assert!(parse_count("9.38%").is_err());
        assert_eq!(parse_count("1000000000000"), Ok(MAX_COUNT));
        assert!(
            parse_count("1000000000001")
                .unwrap_err()
                .to_string()
                .contains("too large")
        );
        assert!(parse_count("5000000000000000000").is_err());
        assert!(is_blank_metric(" -- ") && is_blank_metric(""));
    }

    #[test]
    fn days_are_iso_or_english_month_names_for_google() {
        let jan5 = NaiveDate::from_ymd_opt(2025, 1, 5).unwrap();
        assert_eq!(parse_iso_day("2025-01-05"), Ok(jan5));
        assert!(parse_iso_day("2025-1-5").is_err());
        assert!(parse_iso_day("05/01/2025").is_err());
        assert!(parse_iso_day("2025-02-30").is_err());
        assert_eq!(parse_google_day("Jan 5, 2025"), Ok(jan5));
        assert_eq!(parse_google_day("January 5, 2025"), Ok(jan5));
        assert!(parse_google_day("01/05/2025").is_err());
    }
}
