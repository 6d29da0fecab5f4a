//! PostgreSQL's binary `COPY` format, written by hand, and the demo's tables in it.
//!
//! Binary rather than text: most of a raw event is UUIDs and timestamps, which the server
//! would otherwise parse back from text, and which we would have to print first. The format
//! is documented in PostgreSQL's `COPY` page ("Binary Format"): a header, then per row a field
//! count and each field as a 4-byte length (-1 for NULL) and the type's binary send format,
//! then a -1 trailer. Each chunk sent is a complete stream, so each is its own `COPY`.

use uuid::Uuid;

/// Microseconds from the Unix epoch to PostgreSQL's (2000-01-01 00:00:00 UTC).
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;
/// `pg_type.oid` of `text`, for array elements.
const TEXT_OID: u32 = 25;
const HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";

/// A table the demo fills, with the columns it writes (the others keep their defaults).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    RawEvents,
    Sessions,
    IdentityKeys,
    Orders,
    OrderRefs,
    OrderSources,
    Customers,
    AdSpend,
}

impl Table {
    pub fn copy_statement(self) -> &'static str {
        match self {
            Table::RawEvents => {
                "COPY raw_events (company_id, event_id, event_name, occurred_at, received_at,
                     visitor_id, session_id, user_id, email_hash, page_url, referrer, user_agent,
                     ip_hash, utm_source, utm_medium, utm_campaign, utm_term, utm_content,
                     gclid, fbclid, consent_analytics, is_bot, key_kind, properties)
                 FROM STDIN (FORMAT binary)"
            }
            Table::Sessions => {
                "COPY sessions (company_id, session_id, visitor_id, started_at, last_seen_at,
                     landing_page, referrer, source, medium, campaign, channel, utm_source,
                     utm_medium, utm_campaign, utm_term, utm_content, gclid, fbclid, message_id,
                     campaign_key, page_views, events, engagement_ms, is_bot)
                 FROM STDIN (FORMAT binary)"
            }
            Table::IdentityKeys => {
                "COPY identity_keys (company_id, key_kind, key_value, person_id, first_seen_at)
                 FROM STDIN (FORMAT binary)"
            }
            Table::Orders => {
                "COPY orders (company_id, order_id, order_number, status, currency, gross_minor,
                     discount_minor, tax_minor, shipping_minor, refunded_minor, net_minor,
                     placed_at, email_hash, user_id, visitor_id, session_id, customer_id,
                     is_first_order, sources)
                 FROM STDIN (FORMAT binary)"
            }
            Table::OrderRefs => {
                "COPY order_refs (company_id, ref, order_id) FROM STDIN (FORMAT binary)"
            }
            Table::OrderSources => {
                "COPY order_sources (company_id, order_id, source, status, currency, gross_minor,
                     discount_minor, tax_minor, shipping_minor, refunded_minor, placed_at,
                     source_updated_at, order_number, email_hash, user_id, visitor_id)
                 FROM STDIN (FORMAT binary)"
            }
            Table::Customers => {
                "COPY customers (company_id, customer_id, email_hash, user_id, first_order_at)
                 FROM STDIN (FORMAT binary)"
            }
            Table::AdSpend => {
                "COPY ad_spend (company_id, day, platform, campaign, ad_id, channel, source,
                     medium, currency, spend, impressions, clicks)
                 FROM STDIN (FORMAT binary)"
            }
        }
    }

    /// How many columns [`Table::copy_statement`] names: every row must write that many.
    pub fn columns(self) -> i16 {
        match self {
            Table::RawEvents => 24,
            Table::Sessions => 24,
            Table::IdentityKeys => 5,
            Table::Orders => 19,
            Table::OrderRefs => 3,
            Table::OrderSources => 16,
            Table::Customers => 5,
            Table::AdSpend => 12,
        }
    }
}

/// Rows of one table in binary COPY format.
pub struct CopyBuf {
    table: Table,
    buf: Vec<u8>,
    rows: u64,
}

impl CopyBuf {
    pub fn new(table: Table, capacity: usize) -> Self {
        let mut buf = Vec::with_capacity(capacity.max(HEADER.len() + 2));
        buf.extend_from_slice(HEADER);
        CopyBuf {
            table,
            buf,
            rows: 0,
        }
    }

    /// Rows written since the last [`CopyBuf::take`].
    pub fn rows(&self) -> u64 {
        self.rows
    }

    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Starts a row of this table.
    pub fn row(&mut self) {
        self.rows += 1;
        self.buf
            .extend_from_slice(&self.table.columns().to_be_bytes());
    }

    pub fn null(&mut self) {
        self.buf.extend_from_slice(&(-1i32).to_be_bytes());
    }

    fn field(&mut self, bytes: &[u8]) {
        self.buf
            .extend_from_slice(&(bytes.len() as i32).to_be_bytes());
        self.buf.extend_from_slice(bytes);
    }

    /// A field whose bytes `write` appends; its length is patched in afterwards.
    fn field_with(&mut self, write: impl FnOnce(&mut Vec<u8>)) {
        let at = self.buf.len();
        self.buf.extend_from_slice(&[0; 4]);
        write(&mut self.buf);
        let len = (self.buf.len() - at - 4) as i32;
        self.buf[at..at + 4].copy_from_slice(&len.to_be_bytes());
    }

    pub fn uuid(&mut self, v: &Uuid) {
        self.field(v.as_bytes());
    }

    /// `text`, `varchar` and `char(n)` all take their UTF-8 bytes.
    pub fn text(&mut self, v: &str) {
        self.field(v.as_bytes());
    }

    pub fn opt_text(&mut self, v: Option<&str>) {
        match v {
            Some(v) => self.text(v),
            None => self.null(),
        }
    }

    pub fn bytea(&mut self, v: &[u8]) {
        self.field(v);
    }

    pub fn opt_bytea(&mut self, v: Option<&[u8]>) {
        match v {
            Some(v) => self.bytea(v),
            None => self.null(),
        }
    }

    /// `timestamptz` from microseconds since the Unix epoch.
    pub fn timestamptz(&mut self, unix_micros: i64) {
        self.field(&(unix_micros - PG_EPOCH_MICROS).to_be_bytes());
    }

    pub fn bool(&mut self, v: bool) {
        self.field(&[u8::from(v)]);
    }

    pub fn int4(&mut self, v: i32) {
        self.field(&v.to_be_bytes());
    }

    pub fn int8(&mut self, v: i64) {
        self.field(&v.to_be_bytes());
    }

    pub fn opt_int8(&mut self, v: Option<i64>) {
        match v {
            Some(v) => self.int8(v),
            None => self.null(),
        }
    }

    /// `date`.
    pub fn date(&mut self, day: chrono::NaiveDate) {
        let epoch = chrono::NaiveDate::from_ymd_opt(2000, 1, 1).expect("valid date");
        self.field(&((day - epoch).num_days() as i32).to_be_bytes());
    }

    /// A `numeric` of `cents` hundredths (two decimals, non-negative): base-10000 digits,
    /// most significant first, the last one holding the two decimals.
    pub fn numeric_cents(&mut self, cents: u64) {
        let mut groups = Vec::new();
        let mut whole = cents / 100;
        while whole > 0 {
            groups.push((whole % 10_000) as i16);
            whole /= 10_000;
        }
        groups.reverse();
        let weight = groups.len() as i16 - 1;
        groups.push((cents % 100) as i16 * 100);
        self.field_with(|buf| {
            buf.extend_from_slice(&(groups.len() as i16).to_be_bytes());
            buf.extend_from_slice(&weight.to_be_bytes());
            buf.extend_from_slice(&0u16.to_be_bytes()); // positive
            buf.extend_from_slice(&2i16.to_be_bytes()); // display scale
            for group in &groups {
                buf.extend_from_slice(&group.to_be_bytes());
            }
        });
    }

    /// `jsonb`: a version byte (1), then the JSON text that `write` appends.
    pub fn jsonb_with(&mut self, write: impl FnOnce(&mut Vec<u8>)) {
        self.field_with(|buf| {
            buf.push(1);
            write(buf);
        });
    }

    /// A one-dimensional `text[]` without NULLs.
    pub fn text_array(&mut self, items: &[&str]) {
        self.field_with(|buf| {
            buf.extend_from_slice(&1i32.to_be_bytes()); // dimensions
            buf.extend_from_slice(&0i32.to_be_bytes()); // no NULL elements
            buf.extend_from_slice(&TEXT_OID.to_be_bytes());
            buf.extend_from_slice(&(items.len() as i32).to_be_bytes());
            buf.extend_from_slice(&1i32.to_be_bytes()); // lower bound
            for item in items {
                buf.extend_from_slice(&(item.len() as i32).to_be_bytes());
                buf.extend_from_slice(item.as_bytes());
            }
        });
    }

    /// The rows so far as a complete COPY stream; the buffer starts over.
    pub fn take(&mut self) -> Vec<u8> {
        let mut next = Vec::with_capacity(self.buf.capacity());
        next.extend_from_slice(HEADER);
        let mut done = std::mem::replace(&mut self.buf, next);
        done.extend_from_slice(&(-1i16).to_be_bytes());
        self.rows = 0;
        done
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_is_header_rows_and_trailer() {
        let mut copy = CopyBuf::new(Table::OrderRefs, 64);
        copy.row();
        copy.uuid(&Uuid::nil());
        copy.text("order:1");
        copy.null();
        assert_eq!(copy.rows(), 1);
        let bytes = copy.take();
        assert!(bytes.starts_with(b"PGCOPY\n\xff\r\n\0"));
        assert_eq!(bytes.len(), HEADER.len() + 2 + (4 + 16) + (4 + 7) + 4 + 2);
        assert!(bytes.ends_with(&[0xff, 0xff]));
        assert_eq!(copy.rows(), 0);
        assert_eq!(copy.len(), HEADER.len());
    }

    #[test]
    fn timestamps_count_from_2000() {
        let mut copy = CopyBuf::new(Table::Customers, 64);
        copy.timestamptz(PG_EPOCH_MICROS + 1);
        assert_eq!(
            &copy.buf[HEADER.len()..],
            &[0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 1]
        );
    }
}
