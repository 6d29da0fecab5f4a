//! Rows in PostgreSQL's binary `COPY` format, for `COPY ... FROM STDIN (FORMAT binary)`.
//!
//! The format (PostgreSQL docs, "COPY", Binary Format): a fixed header, then per row a 16-bit
//! field count and per field a 32-bit length (−1 for NULL) followed by the value in the
//! type's binary send format, then a 16-bit −1. Only the types the ingest writer copies are
//! here; each is the type's `*_send` layout, big-endian.

use chrono::{DateTime, Utc};
use uuid::Uuid;

/// `PGCOPY\n\377\r\n\0`, flags (no OIDs), header extension length.
const HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";

/// Microseconds from the Unix epoch to PostgreSQL's (2000-01-01 00:00 UTC).
const POSTGRES_EPOCH_MICROS: i64 = 946_684_800_000_000;

/// A binary COPY payload being written.
pub struct BinaryCopy {
    buf: Vec<u8>,
}

impl BinaryCopy {
    /// An empty payload, with room for about `capacity` bytes.
    pub fn with_capacity(capacity: usize) -> Self {
        let mut buf = Vec::with_capacity(capacity + HEADER.len() + 2);
        buf.extend_from_slice(HEADER);
        BinaryCopy { buf }
    }

    /// Starts a row of `fields` values; exactly that many must follow.
    pub fn row(&mut self, fields: u16) -> &mut Self {
        self.buf.extend_from_slice(&fields.to_be_bytes());
        self
    }

    pub fn null(&mut self) -> &mut Self {
        self.buf.extend_from_slice(&(-1i32).to_be_bytes());
        self
    }

    fn value(&mut self, bytes: &[u8]) -> &mut Self {
        let len = i32::try_from(bytes.len()).expect("a COPY value is under 2 GB");
        self.buf.extend_from_slice(&len.to_be_bytes());
        self.buf.extend_from_slice(bytes);
        self
    }

    pub fn uuid(&mut self, value: Uuid) -> &mut Self {
        self.value(value.as_bytes())
    }

    pub fn opt_uuid(&mut self, value: Option<Uuid>) -> &mut Self {
        match value {
            Some(v) => self.uuid(v),
            None => self.null(),
        }
    }

    /// `text` (and `varchar`): the UTF-8 bytes.
    pub fn text(&mut self, value: &str) -> &mut Self {
        self.value(value.as_bytes())
    }

    pub fn opt_text(&mut self, value: Option<&str>) -> &mut Self {
        match value {
            Some(v) => self.text(v),
            None => self.null(),
        }
    }

    pub fn opt_bytea(&mut self, value: Option<&[u8]>) -> &mut Self {
        match value {
            Some(v) => self.value(v),
            None => self.null(),
        }
    }

    pub fn bool(&mut self, value: bool) -> &mut Self {
        self.value(&[u8::from(value)])
    }

    pub fn opt_bool(&mut self, value: Option<bool>) -> &mut Self {
        match value {
            Some(v) => self.bool(v),
            None => self.null(),
        }
    }

    /// `timestamptz`: microseconds since 2000-01-01 UTC.
    pub fn timestamptz(&mut self, value: DateTime<Utc>) -> &mut Self {
        let micros = value.timestamp_micros() - POSTGRES_EPOCH_MICROS;
        self.value(&micros.to_be_bytes())
    }

    pub fn opt_timestamptz(&mut self, value: Option<DateTime<Utc>>) -> &mut Self {
        match value {
            Some(v) => self.timestamptz(v),
            None => self.null(),
        }
    }

    /// `jsonb`: format version 1, then the JSON text.
    pub fn jsonb(&mut self, value: &serde_json::Value) -> &mut Self {
        let mut bytes = Vec::with_capacity(64);
        bytes.push(1);
        serde_json::to_writer(&mut bytes, value).expect("a JSON value serializes");
        self.value(&bytes)
    }

    /// The payload, with its trailer.
    pub fn finish(mut self) -> Vec<u8> {
        self.buf.extend_from_slice(&(-1i16).to_be_bytes());
        self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_is_its_field_count_then_length_prefixed_values() {
        let mut copy = BinaryCopy::with_capacity(0);
        copy.row(3).text("ab").null().bool(true);
        let bytes = copy.finish();
        assert_eq!(&bytes[..HEADER.len()], HEADER);
        assert_eq!(
            &bytes[HEADER.len()..],
            &[
                0, 3, 0, 0, 0, 2, b'a', b'b', 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 1, 1, 0xff, 0xff
            ]
        );
    }

    #[test]
    fn timestamps_count_microseconds_from_2000() {
        let mut copy = BinaryCopy::with_capacity(0);
        let t: DateTime<Utc> = "2000-01-01T00:00:01.5Z".parse().unwrap();
        copy.timestamptz(t);
        let bytes = copy.finish();
        let value = &bytes[HEADER.len() + 4..HEADER.len() + 12];
        assert_eq!(i64::from_be_bytes(value.try_into().unwrap()), 1_500_000);
    }
}
