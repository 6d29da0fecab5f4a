//! Limits on what one request and one event may carry (SPEC §11), shared by the parser,
//! the property schemas and the endpoint.

/// Request body, bytes.
pub const MAX_BODY_BYTES: usize = 512 * 1024;
/// Events in one request.
pub const MAX_BATCH: usize = 500;
pub const MAX_EVENT_NAME: usize = crate::ids::EventName::MAX_LEN;
pub const MAX_URL: usize = 4096;
pub const MAX_ID: usize = 256;
/// `properties`, serialised, bytes.
pub const MAX_PROPERTIES_BYTES: usize = 32 * 1024;
/// Nesting depth inside `properties` (the object itself is depth 1).
pub const MAX_PROPERTIES_DEPTH: usize = 5;
pub const MAX_USER_AGENT: usize = 512;
/// Browser events older than this (an offline queue can hold events for a while) or
/// more than `MAX_FUTURE_MINUTES` ahead are clamped to the time of receipt.
pub const BROWSER_MAX_AGE_HOURS: i64 = 72;
/// Server-side events may backfill this far back; older ones are rejected.
pub const BACKFILL_MAX_DAYS: i64 = 730;
pub const MAX_FUTURE_MINUTES: i64 = 10;
