//! What a dashboard page shows, independent of which page: KPI tiles with their change,
//! charts (SVG, from [`super::chart`]), tables (HTML and CSV), and the empty state. Each page
//! module builds a [`Content`]; one template renders them all.

use crate::reports::format::money;

/// A number as a page shows it, with what it is for comparisons and for machines.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Minor units of a currency.
    Money { minor: i64, currency: String },
    /// An amount as a report writes it (`"123.45"`), in a currency.
    Amount { text: String, currency: String },
    /// A count (credit-weighted counts may have decimals).
    Count(f64),
    /// A ratio 0..1, shown as a percentage.
    Rate(f64),
    /// A multiple (ROAS, MER): `2.35×`.
    Multiple(f64),
    /// A duration in seconds.
    Seconds(i64),
    /// A p-value: 4 decimals, `< 0.0001` when smaller (never a bare 0).
    PValue(f64),
    /// Not defined (a zero denominator).
    None,
}

impl Value {
    pub fn money(minor: Option<i64>, currency: &str) -> Value {
        match minor {
            Some(minor) => Value::Money {
                minor,
                currency: currency.to_string(),
            },
            None => Value::None,
        }
    }

    pub fn amount(text: Option<&str>, currency: &str) -> Value {
        match text {
            Some(text) => Value::Amount {
                text: text.to_string(),
                currency: currency.to_string(),
            },
            None => Value::None,
        }
    }

    /// A credit-weighted count as a report writes it (`"12.00"`).
    pub fn count_text(text: &str) -> Value {
        text.parse().map_or(Value::None, Value::Count)
    }

    pub fn rate(r: Option<f64>) -> Value {
        r.map_or(Value::None, Value::Rate)
    }

    pub fn multiple(r: Option<f64>) -> Value {
        r.map_or(Value::None, Value::Multiple)
    }

    /// The value as a number, for changes and charts.
    pub fn number(&self) -> Option<f64> {
        match self {
            Value::Money { minor, .. } => Some(*minor as f64),
            Value::Amount { text, .. } => text.parse().ok(),
            Value::Count(n) | Value::Rate(n) | Value::Multiple(n) | Value::PValue(n) => Some(*n),
            Value::Seconds(s) => Some(*s as f64),
            Value::None => None,
        }
    }

    /// For people: `$1,234.56`, `1,234`, `12.3%`, `2.35×`, `3.2 d`, `—`.
    pub fn display(&self) -> String {
        match self {
            Value::Money { minor, currency } => {
                let text = money(currency, *minor).unwrap_or_else(|_| minor.to_string());
                Value::Amount {
                    text,
                    currency: currency.clone(),
                }
                .display()
            }
            Value::Amount { text, currency } => {
                let (sign, digits) = match text.strip_prefix('-') {
                    Some(rest) => ("-", rest),
                    None => ("", text.as_str()),
                };
                let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
                let symbol = match currency.as_str() {
                    "USD" => "$",
                    "EUR" => "€",
                    "GBP" => "£",
                    _ => "",
                };
                let mut out = format!("{sign}{symbol}{}", group_thousands(whole));
                if !fraction.is_empty() {
                    out.push('.');
                    out.push_str(fraction);
                }
                if symbol.is_empty() {
                    out.push(' ');
                    out.push_str(currency);
                }
                out
            }
            Value::Count(n) if n.fract() == 0.0 => group_thousands(&format!("{n:.0}")),
            Value::Count(n) => format!("{n:.2}"),
            Value::Rate(r) => format!("{:.1}%", r * 100.0),
            Value::Multiple(r) => format!("{r:.2}×"),
            Value::Seconds(s) => duration(*s),
            Value::PValue(p) => crate::stats::p_value_text(*p),
            Value::None => "—".into(),
        }
    }

    /// For machines (CSV cells, `data-value`): money as the reports write it (`1234.56`),
    /// ratios as the reports round them (4 decimals), counts as they are; empty when none.
    pub fn raw(&self) -> String {
        match self {
            Value::Money { minor, currency } => {
                money(currency, *minor).unwrap_or_else(|_| minor.to_string())
            }
            Value::Amount { text, .. } => text.clone(),
            Value::Count(n) if n.fract() == 0.0 => format!("{n:.0}"),
            Value::Count(n) => format!("{n:.2}"),
            Value::Rate(r) | Value::Multiple(r) | Value::PValue(r) => {
                format!("{}", (r * 10_000.0).round() / 10_000.0)
            }
            Value::Seconds(s) => s.to_string(),
            Value::None => String::new(),
        }
    }
}

fn group_thousands(digits: &str) -> String {
    let bytes = digits.as_bytes();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 && (bytes.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(*b as char);
    }
    out
}

fn duration(seconds: i64) -> String {
    match seconds {
        s if s < 60 => format!("{s} s"),
        s if s < 3600 => format!("{:.0} min", s as f64 / 60.0),
        s if s < 86_400 => format!("{:.1} h", s as f64 / 3600.0),
        s => format!("{:.1} d", s as f64 / 86_400.0),
    }
}

/// A KPI tile: the value over the range, and its change against the comparison period.
#[derive(Debug, Clone)]
pub struct Tile {
    /// Stable name (`revenue`), for tests and styling.
    pub key: &'static str,
    pub label: &'static str,
    pub definition: &'static str,
    pub value: Value,
    pub previous: Option<Value>,
    /// Whether a rise is good news (CAC: no).
    pub higher_is_better: bool,
}

impl Tile {
    pub fn new(key: &'static str, value: Value, previous: Option<Value>) -> Tile {
        let metric = super::definitions::metric(key);
        Tile {
            key,
            label: metric.label,
            definition: metric.definition,
            value,
            previous,
            higher_is_better: metric.higher_is_better,
        }
    }

    pub fn display(&self) -> String {
        self.value.display()
    }

    pub fn raw(&self) -> String {
        self.value.raw()
    }

    /// `+12.3%` with `up`/`down` and whether that is good; `None` without a comparison or
    /// when the previous value is 0 or undefined.
    pub fn change(&self) -> Option<Change> {
        let now = self.value.number()?;
        let before = self.previous.as_ref()?.number()?;
        if before == 0.0 {
            return None;
        }
        let relative = (now - before) / before.abs();
        let direction = if relative > 0.0005 {
            "up"
        } else if relative < -0.0005 {
            "down"
        } else {
            "flat"
        };
        let good = match direction {
            "up" => self.higher_is_better,
            "down" => !self.higher_is_better,
            _ => true,
        };
        Some(Change {
            text: format!("{:+.1}%", relative * 100.0),
            direction,
            tone: if direction == "flat" {
                "neutral"
            } else if good {
                "good"
            } else {
                "bad"
            },
            previous: self
                .previous
                .as_ref()
                .map(Value::display)
                .unwrap_or_default(),
        })
    }
}

#[derive(Debug, Clone)]
pub struct Change {
    pub text: String,
    pub direction: &'static str,
    pub tone: &'static str,
    pub previous: String,
}

/// A chart already rendered to SVG, with the number of data marks it draws.
#[derive(Debug, Clone)]
pub struct Chart {
    pub title: String,
    pub svg: String,
    /// A second drawing for phones, when the chart has one (the stylesheet shows one of
    /// the two).
    pub compact: Option<String>,
    pub marks: usize,
    /// Wide charts take the whole row.
    pub wide: bool,
}

/// A column of a table.
#[derive(Debug, Clone)]
pub struct Column {
    pub label: &'static str,
    pub definition: &'static str,
    pub numeric: bool,
}

impl Column {
    /// A column named after a metric of [`super::definitions`].
    pub fn metric(key: &'static str) -> Column {
        let metric = super::definitions::metric(key);
        Column {
            label: metric.label,
            definition: metric.definition,
            numeric: true,
        }
    }

    /// A column of names (channel, path, ...).
    pub fn text(label: &'static str, definition: &'static str) -> Column {
        Column {
            label,
            definition,
            numeric: false,
        }
    }
}

/// A cell: text, or a value shown one way and exported another.
#[derive(Debug, Clone)]
pub enum Cell {
    Text(String),
    Value(Value),
}

impl Cell {
    pub fn display(&self) -> String {
        match self {
            Cell::Text(t) => t.clone(),
            Cell::Value(v) => v.display(),
        }
    }

    pub fn raw(&self) -> String {
        match self {
            Cell::Text(t) => t.clone(),
            Cell::Value(v) => v.raw(),
        }
    }

    /// Text of several words, which may wrap in a narrow column (an explanation, a name);
    /// one word (a date, an id, a campaign key) stays on one line rather than break at a
    /// hyphen.
    pub fn wraps(&self) -> bool {
        matches!(self, Cell::Text(t) if t.trim().contains(' '))
    }
}

#[derive(Debug, Clone)]
pub struct Table {
    /// Its name in `?table=` (CSV export).
    pub key: &'static str,
    pub title: String,
    pub columns: Vec<Column>,
    pub rows: Vec<Vec<Cell>>,
}

/// Rows a table shows on the page; its CSV has them all. A year of paths is over 10,000
/// rows on the 10M-event data set: a page of that is slow to send and useless to read.
pub const ROWS_ON_PAGE: usize = 100;

impl Table {
    /// The rows shown on the page (the first [`ROWS_ON_PAGE`]).
    pub fn shown_rows(&self) -> &[Vec<Cell>] {
        &self.rows[..self.rows.len().min(ROWS_ON_PAGE)]
    }

    /// How many rows only the CSV has.
    pub fn rows_left_out(&self) -> usize {
        self.rows.len().saturating_sub(ROWS_ON_PAGE)
    }

    /// The table as CSV: a header of the column labels, the cells' raw values.
    pub fn to_csv(&self) -> Result<Vec<u8>, csv::Error> {
        let mut out = csv::Writer::from_writer(Vec::new());
        out.write_record(self.columns.iter().map(|c| c.label))?;
        for row in &self.rows {
            out.write_record(row.iter().map(|cell| csv_safe(cell.raw())))?;
        }
        out.into_inner().map_err(|e| e.into_error().into())
    }
}

/// A cell a spreadsheet would run as a formula (`=`, `+`, `-`, `@` first) gets a `'` in
/// front, unless it is a number (a negative amount stays a number).
fn csv_safe(text: String) -> String {
    let risky = text.starts_with(['=', '+', '-', '@', '\t', '\r']);
    if risky && text.parse::<f64>().is_err() {
        format!("'{text}")
    } else {
        text
    }
}

/// Everything one page shows.
#[derive(Debug, Clone, Default)]
pub struct Content {
    pub tiles: Vec<Tile>,
    pub charts: Vec<Chart>,
    pub tables: Vec<Table>,
    /// Shown instead of the charts and tables when the range has no data: what to do.
    pub empty: Option<String>,
    /// Options of the filters this page takes (`channel`, `campaign`, `model`, `funnel`).
    pub filters: Vec<&'static str>,
    /// Funnels to choose from (the funnel page).
    pub funnels: Vec<String>,
    /// Channels seen in the range, for the channel filter.
    pub channels: Vec<String>,
    /// Campaigns seen in the range, for the campaign filter (a select; without them the
    /// filter is a text field).
    pub campaigns: Vec<String>,
}

impl Content {
    pub fn table(&self, key: Option<&str>) -> Option<&Table> {
        match key {
            Some(key) => self.tables.iter().find(|t| t.key == key),
            None => self.tables.first(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_table_shows_its_first_rows_and_exports_them_all() {
        let table = Table {
            key: "paths",
            title: "Paths".into(),
            columns: vec![Column::text("Path", "The path.")],
            rows: (0..ROWS_ON_PAGE + 7)
                .map(|i| vec![Cell::Text(format!("p{i}"))])
                .collect(),
        };
        assert_eq!(table.shown_rows().len(), ROWS_ON_PAGE);
        assert_eq!(table.rows_left_out(), 7);
        let csv = String::from_utf8(table.to_csv().expect("csv")).expect("utf-8");
        assert_eq!(csv.lines().count(), 1 + ROWS_ON_PAGE + 7);
        let short = Table {
            rows: table.rows[..3].to_vec(),
            ..table
        };
        assert_eq!((short.shown_rows().len(), short.rows_left_out()), (3, 0));
    }

    #[test]
    fn values_read_well_and_export_as_the_reports_write_them() {
        let m = Value::money(Some(12_345_678), "USD");
        assert_eq!(m.display(), "$123,456.78");
        assert_eq!(m.raw(), "123456.78");
        assert_eq!(Value::money(Some(-5), "USD").display(), "-$0.05");
        assert_eq!(Value::money(Some(20000), "JPY").display(), "20,000 JPY");
        assert_eq!(Value::Count(1234.0).display(), "1,234");
        assert_eq!(Value::Rate(0.12345).display(), "12.3%");
        assert_eq!(Value::Rate(0.12345).raw(), "0.1235");
        assert_eq!(Value::None.display(), "—");
        assert_eq!(Value::PValue(0.04123).display(), "0.0412");
        assert_eq!(Value::PValue(0.0).display(), "< 0.0001");
        assert_eq!(Value::PValue(0.0).raw(), "0");
    }

    #[test]
    fn a_change_says_its_direction_and_whether_it_is_good() {
        let tile = Tile::new("cac", Value::Count(110.0), Some(Value::Count(100.0)));
        let change = tile.change().unwrap();
        assert_eq!(change.text, "+10.0%");
        assert_eq!((change.direction, change.tone), ("up", "bad"));
        let none = Tile::new("revenue", Value::Count(1.0), Some(Value::Count(0.0)));
        assert!(none.change().is_none());
    }

    #[test]
    fn text_of_several_words_wraps_and_one_word_does_not() {
        assert!(Cell::Text("Fresh: CTR 1.20 % in the first week".into()).wraps());
        assert!(!Cell::Text("2026-12-01".into()).wraps());
        assert!(!Cell::Text("newsletter_2026_w47".into()).wraps());
        assert!(!Cell::Value(Value::Count(1.0)).wraps());
    }

    #[test]
    fn csv_cells_cannot_become_formulas() {
        assert_eq!(csv_safe("=HYPERLINK()".into()), "'=HYPERLINK()");
        assert_eq!(csv_safe("-12.50".into()), "-12.50");
        assert_eq!(csv_safe("Email".into()), "Email");
    }
}
