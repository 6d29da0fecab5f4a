//! The time-to-conversion report's buckets. They live with the rollups because
//! `rollup_conversion_bins` must have a bin bound at each bucket bound; the report reads them
//! from here (reports import rollups, never the other way).

const HOUR: i64 = 3600;
const DAY: i64 = 24 * HOUR;

/// The buckets' lower bounds, in seconds, and their names. Each bucket runs up to the next
/// bound, excluded; the last has no upper bound.
pub const BUCKETS: [(i64, &str); 7] = [
    (0, "0-1h"),
    (HOUR, "1h-24h"),
    (DAY, "1d-3d"),
    (3 * DAY, "3d-7d"),
    (7 * DAY, "7d-14d"),
    (14 * DAY, "14d-30d"),
    (30 * DAY, "30d+"),
];

/// The buckets' lower bounds but the first (0): where `rollup_conversion_bins` must have a
/// bin bound, so that each bin falls in one bucket.
pub fn bucket_bounds() -> impl Iterator<Item = i64> {
    BUCKETS.iter().skip(1).map(|(lower, _)| *lower)
}
