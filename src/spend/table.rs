//! From bytes to lines of cells: the encoding (UTF-8 with or without a BOM; UTF-16 with a
//! BOM, which one third-party parser reports for Google's "CSV (Excel)" download), the
//! delimiter, and the header row, found by its names wherever the preamble ends.

use super::FileError;

/// One CSV record, with the line of the file it starts on (1-based) and its cells trimmed.
#[derive(Debug, Clone)]
pub struct Line {
    pub number: u64,
    pub cells: Vec<String>,
}

impl Line {
    /// The cell at `index`, or `""` when the row is shorter than the header.
    pub fn cell(&self, index: Option<usize>) -> &str {
        index
            .and_then(|i| self.cells.get(i))
            .map_or("", String::as_str)
    }

    pub fn is_blank(&self) -> bool {
        self.cells.iter().all(|c| c.is_empty())
    }
}

/// A header row: column names, looked up without regard to case or surrounding spaces.
#[derive(Debug, Clone)]
pub struct Header {
    pub line: u64,
    pub names: Vec<String>,
    /// True when the header is the file's first line (no title or date lines above it).
    pub first_line: bool,
}

impl Header {
    pub fn find(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n.eq_ignore_ascii_case(name))
    }

    /// The first of `names` the header has.
    pub fn find_any(&self, names: &[&str]) -> Option<usize> {
        names.iter().find_map(|n| self.find(n))
    }

    pub fn has(&self, name: &str) -> bool {
        self.find(name).is_some()
    }

    /// The column names in lower case, empty ones (padding) left out.
    pub fn lowercase_names(&self) -> impl Iterator<Item = String> + '_ {
        self.names
            .iter()
            .filter(|n| !n.is_empty())
            .map(|n| n.to_ascii_lowercase())
    }
}

/// The text of the file: UTF-8 (a BOM is dropped) or UTF-16 with a BOM.
pub fn decode(bytes: &[u8]) -> Result<String, FileError> {
    if let Some(rest) = bytes.strip_prefix(b"\xEF\xBB\xBF") {
        return String::from_utf8(rest.to_vec()).map_err(|_| FileError::Encoding);
    }
    let utf16 = |rest: &[u8], from: fn([u8; 2]) -> u16| {
        if !rest.len().is_multiple_of(2) {
            return Err(FileError::Encoding);
        }
        let units = rest.chunks_exact(2).map(|p| from([p[0], p[1]]));
        char::decode_utf16(units)
            .collect::<Result<String, _>>()
            .map_err(|_| FileError::Encoding)
    };
    if let Some(rest) = bytes.strip_prefix(b"\xFF\xFE") {
        return utf16(rest, u16::from_le_bytes);
    }
    if let Some(rest) = bytes.strip_prefix(b"\xFE\xFF") {
        return utf16(rest, u16::from_be_bytes);
    }
    String::from_utf8(bytes.to_vec()).map_err(|_| FileError::Encoding)
}

/// Every non-blank record of `text`, split on `delimiter`. Rows may have any number of
/// cells: Google pads its title line with commas, and a short row reads as empty cells.
pub fn lines(text: &str, delimiter: u8) -> Result<Vec<Line>, FileError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter)
        .from_reader(text.as_bytes());
    let mut lines = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| FileError::Csv {
            line: e.position().map_or(0, |p| p.line()),
            message: e.to_string(),
        })?;
        let line = Line {
            number: record.position().map_or(0, |p| p.line()),
            cells: record.iter().map(|c| c.trim().to_string()).collect(),
        };
        if !line.is_blank() {
            lines.push(line);
        }
    }
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bom_is_dropped_and_utf16_is_read() {
        assert_eq!(decode(b"\xEF\xBB\xBFDay,Cost").unwrap(), "Day,Cost");
        let le: Vec<u8> = [0xFF, 0xFE]
            .into_iter()
            .chain("Day\tCost".encode_utf16().flat_map(u16::to_le_bytes))
            .collect();
        assert_eq!(decode(&le).unwrap(), "Day\tCost");
        assert!(matches!(decode(b"\xFFabc"), Err(FileError::Encoding)));
    }

    #[test]
    fn lines_keep_their_numbers_and_skip_blank_rows() {
        let text = "Campaign report,,,\n\"January 1, 2025 - January 2, 2025\"\n\n,,,\nDay,Cost\n2025-01-01,\"1,234.56\"\n";
        let lines = lines(text, b',').unwrap();
        let numbers: Vec<u64> = lines.iter().map(|l| l.number).collect();
        assert_eq!(numbers, [1, 2, 5, 6]);
        assert_eq!(lines[3].cells, ["2025-01-01", "1,234.56"]);
        assert_eq!(lines[3].cell(Some(7)), "", "short rows read as empty cells");
    }
}
