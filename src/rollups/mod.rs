//! Daily rollups (SPEC §7): the small per-company, per-local-day tables every report and
//! dashboard reads, so no report ever scans raw events.
//!
//! A day is always recomputed whole: in one transaction its rows are deleted from every rollup
//! table and computed again from sessions, raw events, orders and attribution credits. So a
//! day's rows depend only on the data of that day, and recomputing gives the same rows. What
//! the job decides is only which days: all of them, the days asked for, or the days whose data
//! changed since the last run (see [`touched_days`]).
//!
//! Days are the company's local days ([`local_day`] in SQL: `(t AT TIME ZONE tz)::date`): a
//! session belongs to the day it started, an order to the day it was placed (its refunds
//! too, whenever they come), an email or SMS message and all that follows it (opens, clicks,
//! the orders credited to it) to the day it was sent ([`messages`]), ad spend to the day the
//! platform reported it ([`creatives`]).
//!
//! Experiment results are not per day: each experiment whose dates cover a recomputed day
//! (or that was created or concluded since the last run) is recomputed whole
//! ([`experiments`]).

pub mod conversion_buckets;
pub mod creatives;
pub mod experiments;
pub mod messages;
pub mod session;
pub mod settings;

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

use self::session::{SessionFacts, funnel_depth, is_engaged};
use self::settings::RollupSettings;

/// Days recomputed in one transaction. A week keeps each transaction's memory and lock time
/// small while a full rebuild still moves along in large statements.
const DAYS_PER_CHUNK: usize = 7;

/// Chunks in flight at once. Each chunk waits on PostgreSQL most of the time (its scans and
/// inserts), so a second one keeps a two-core machine busy; chunks cover different days and
/// never touch the same rows.
const PARALLEL_CHUNKS: usize = 2;

/// Which days a run recomputes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Every day from the company's first session or order to its last.
    All,
    /// The days whose data was written since this moment (the last run's watermark).
    ChangedSince(DateTime<Utc>),
    /// These local days, both included.
    Days { from: NaiveDate, to: NaiveDate },
}

/// What a run did.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// The days recomputed, in order.
    pub days: Vec<NaiveDate>,
    /// Sessions, orders, message sends and exposed experiment visitors read.
    pub examined: u64,
    /// Rollup rows written.
    pub written: u64,
    /// Customers with orders on the days recomputed (before or after): their row in
    /// `rollup_customers` is refreshed at the end.
    customers: HashSet<Uuid>,
}

/// The orders placed on some days, for the statements that roll them up.
struct OrdersOfDays<'a> {
    company_id: Uuid,
    timezone: &'a str,
    days: &'a [NaiveDate],
    /// The instants the days span.
    span: (DateTime<Utc>, DateTime<Utc>),
}

impl OrdersOfDays<'_> {
    /// Those orders, with their local `day`, as a subquery (parameters $1 to $5).
    const ORDERS: &'static str = "
        SELECT o.*, (o.placed_at AT TIME ZONE $2)::date AS day
        FROM orders o
        WHERE o.company_id = $1 AND o.status NOT IN ('cancelled', 'failed')
          AND o.placed_at >= $4 AND o.placed_at < $5
          AND (o.placed_at AT TIME ZONE $2)::date = ANY($3)";

    /// `sql` with `{ORDERS}` standing for the orders, its parameters bound.
    fn query(&self, sql: &str) -> sqlx::query::Query<'_, Postgres, sqlx::postgres::PgArguments> {
        sqlx::query(sqlx::AssertSqlSafe(sql.replace("{ORDERS}", Self::ORDERS)))
            .bind(self.company_id)
            .bind(self.timezone)
            .bind(self.days)
            .bind(self.span.0)
            .bind(self.span.1)
    }

    /// How many orders there are.
    async fn count(&self, tx: &mut Transaction<'_, Postgres>) -> Result<u64, sqlx::Error> {
        use sqlx::Row;
        let row = self
            .query("SELECT count(*) FROM ({ORDERS}) o")
            .fetch_one(&mut **tx)
            .await?;
        Ok(row.try_get::<i64, _>(0)? as u64)
    }

    /// Runs `sql` (see [`Self::query`]); returns the rows it affected.
    async fn execute(
        &self,
        tx: &mut Transaction<'_, Postgres>,
        sql: &str,
    ) -> Result<u64, sqlx::Error> {
        Ok(self.query(sql).execute(&mut **tx).await?.rows_affected())
    }
}

/// Runs of consecutive days, `DAYS_PER_CHUNK` at most: a chunk's queries read the instants
/// from its first day to its last, so days far apart (a late event from March and today's)
/// go in separate chunks.
fn contiguous_chunks(days: &[NaiveDate]) -> Vec<Vec<NaiveDate>> {
    let mut chunks: Vec<Vec<NaiveDate>> = Vec::new();
    for &day in days {
        match chunks.last_mut() {
            Some(chunk)
                if chunk.len() < DAYS_PER_CHUNK
                    && chunk.last().and_then(|d| d.succ_opt()) == Some(day) =>
            {
                chunk.push(day)
            }
            _ => chunks.push(vec![day]),
        }
    }
    chunks
}

impl Outcome {
    fn add(
        &mut self,
        chunk: Result<Result<Recomputed, sqlx::Error>, tokio::task::JoinError>,
    ) -> Result<(), sqlx::Error> {
        let done = chunk.map_err(|e| sqlx::Error::Protocol(e.to_string()))??;
        self.examined += done.examined;
        self.written += done.written;
        self.customers.extend(done.customers);
        Ok(())
    }
}

/// What recomputing a chunk of days did.
struct Recomputed {
    examined: u64,
    written: u64,
    customers: Vec<Uuid>,
}

/// Rewrites the per-customer rollups of `customers` (all of the company's with `None`) from
/// their customer days, then the per-day and per-cohort counts that depend on them:
/// - `rollup_customers` (first order day, orders, currencies) and `rollup_customer_windows`
///   (net revenue within each LTV window of the first order day), per customer;
/// - `rollup_customer_order_days` (each order day with the customer's previous ones), per
///   customer, and `rollup_repeat_days` for every order day those customers had or have;
/// - `rollup_cohort_days`, `rollup_cohort_windows` and `rollup_cohort_months` for every first
///   order day those customers had or have.
///
/// The counts are recomputed whole for those days, from every customer's rows: the other
/// customers' rows are current, since their customer days did not change. A customer left with
/// no order day loses their rows. Returns the rows inserted.
async fn refresh_customers(
    tx: &mut Transaction<'_, Postgres>,
    company_id: Uuid,
    customers: Option<&[Uuid]>,
) -> Result<u64, sqlx::Error> {
    const ONLY: &str = "($2::uuid[] IS NULL OR customer_id = ANY($2))";
    let mut written = 0;
    // The first order days and order days of these customers before and after: the cohorts
    // and days whose counts change.
    let mut first_days: Vec<NaiveDate> = Vec::new();
    let mut order_days: Vec<NaiveDate> = Vec::new();
    for (sql, days) in [
        (
            format!(
                "DELETE FROM rollup_customers WHERE company_id = $1 AND {ONLY} RETURNING first_day"
            ),
            &mut first_days,
        ),
        (
            format!(
                "DELETE FROM rollup_customer_order_days WHERE company_id = $1 AND {ONLY}
                 RETURNING day"
            ),
            &mut order_days,
        ),
    ] {
        days.extend(
            sqlx::query_scalar::<_, NaiveDate>(sqlx::AssertSqlSafe(sql))
                .bind(company_id)
                .bind(customers)
                .fetch_all(&mut **tx)
                .await?,
        );
    }
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DELETE FROM rollup_customer_windows WHERE company_id = $1 AND {ONLY}"
    )))
    .bind(company_id)
    .bind(customers)
    .execute(&mut **tx)
    .await?;
    for (sql, days) in [
        (
            format!(
                "INSERT INTO rollup_customers (company_id, customer_id, first_day, orders,
                     currencies)
                 SELECT $1, customer_id, min(day), sum(orders),
                        array_agg(DISTINCT currency ORDER BY currency)
                 FROM rollup_customer_days
                 WHERE company_id = $1 AND {ONLY}
                 GROUP BY customer_id
                 RETURNING first_day"
            ),
            &mut first_days,
        ),
        (
            format!(
                "INSERT INTO rollup_customer_order_days (company_id, customer_id, day, orders,
                     prev_day, prev_orders, prev_prev_day)
                 SELECT $1, customer_id, day, orders, lag(day) OVER w, lag(orders) OVER w,
                        lag(day, 2) OVER w
                 FROM (SELECT customer_id, day, sum(orders)::int AS orders
                       FROM rollup_customer_days
                       WHERE company_id = $1 AND {ONLY}
                       GROUP BY customer_id, day) d
                 WINDOW w AS (PARTITION BY customer_id ORDER BY day)
                 RETURNING day"
            ),
            &mut order_days,
        ),
    ] {
        let inserted = sqlx::query_scalar::<_, NaiveDate>(sqlx::AssertSqlSafe(sql))
            .bind(company_id)
            .bind(customers)
            .fetch_all(&mut **tx)
            .await?;
        written += inserted.len() as u64;
        days.extend(inserted);
    }
    written += sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO rollup_customer_windows (company_id, customer_id, currency, first_day,
             net_30, net_90, net_180, net_365)
         SELECT $1, r.customer_id, r.currency, c.first_day,
                coalesce(sum(r.net_minor) FILTER (WHERE r.day < c.first_day + 30), 0),
                coalesce(sum(r.net_minor) FILTER (WHERE r.day < c.first_day + 90), 0),
                coalesce(sum(r.net_minor) FILTER (WHERE r.day < c.first_day + 180), 0),
                coalesce(sum(r.net_minor) FILTER (WHERE r.day < c.first_day + 365), 0)
         FROM rollup_customer_days r
         JOIN rollup_customers c USING (company_id, customer_id)
         WHERE r.company_id = $1 AND {ONLY}
         GROUP BY r.customer_id, r.currency, c.first_day"
    )))
    .bind(company_id)
    .bind(customers)
    .execute(&mut **tx)
    .await?
    .rows_affected();

    // All days with `None`.
    let dedup = |mut days: Vec<NaiveDate>| {
        days.sort_unstable();
        days.dedup();
        customers.map(|_| days)
    };
    written += refresh_repeat_days(tx, company_id, dedup(order_days).as_deref()).await?;
    written += refresh_cohorts(tx, company_id, dedup(first_days).as_deref()).await?;
    Ok(written)
}

/// Recomputes `rollup_repeat_days` for `days` (every day with `None`) from
/// `rollup_customer_order_days`.
async fn refresh_repeat_days(
    tx: &mut Transaction<'_, Postgres>,
    company_id: Uuid,
    days: Option<&[NaiveDate]>,
) -> Result<u64, sqlx::Error> {
    const DAYS: &str = "($2::date[] IS NULL OR day = ANY($2))";
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DELETE FROM rollup_repeat_days WHERE company_id = $1 AND {DAYS}"
    )))
    .bind(company_id)
    .bind(days)
    .execute(&mut **tx)
    .await?;
    let inserted = sqlx::query(sqlx::AssertSqlSafe(format!(
        "WITH o AS (
             SELECT day, orders, prev_day, prev_orders, prev_prev_day
             FROM rollup_customer_order_days
             WHERE company_id = $1 AND {DAYS})
         INSERT INTO rollup_repeat_days (company_id, day, since, customers, multi, prev_single,
             prev_prev_single)
         SELECT $1, day, since, sum(customers), sum(multi), sum(prev_single),
                sum(prev_prev_single)
         FROM (SELECT day, coalesce(prev_day, '-infinity') AS since, 1 AS customers,
                      (orders >= 2)::int AS multi,
                      coalesce(prev_orders = 1, false)::int AS prev_single,
                      0 AS prev_prev_single
               FROM o
               UNION ALL
               SELECT day, prev_prev_day, 0, 0, 0, 1
               FROM o
               WHERE prev_prev_day IS NOT NULL AND prev_orders = 1) c
         GROUP BY day, since"
    )))
    .bind(company_id)
    .bind(days)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok(inserted)
}

/// Recomputes the cohort rollups of the first order days `first_days` (every one with
/// `None`) from `rollup_customers`, `rollup_customer_windows` and `rollup_customer_days`.
async fn refresh_cohorts(
    tx: &mut Transaction<'_, Postgres>,
    company_id: Uuid,
    first_days: Option<&[NaiveDate]>,
) -> Result<u64, sqlx::Error> {
    const FIRST_DAYS: &str = "($2::date[] IS NULL OR first_day = ANY($2))";
    let mut written = 0;
    for table in [
        "rollup_cohort_days",
        "rollup_cohort_windows",
        "rollup_cohort_months",
    ] {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DELETE FROM {table} WHERE company_id = $1 AND {FIRST_DAYS}"
        )))
        .bind(company_id)
        .bind(first_days)
        .execute(&mut **tx)
        .await?;
    }
    for sql in [
        format!(
            "INSERT INTO rollup_cohort_days (company_id, first_day, customers, repeat_customers)
             SELECT $1, first_day, count(*), count(*) FILTER (WHERE orders >= 2)
             FROM rollup_customers
             WHERE company_id = $1 AND {FIRST_DAYS}
             GROUP BY first_day"
        ),
        format!(
            "INSERT INTO rollup_cohort_windows (company_id, first_day, currency, customers,
                 net_30, net_90, net_180, net_365)
             SELECT $1, first_day, currency, count(*), sum(net_30), sum(net_90), sum(net_180),
                    sum(net_365)
             FROM rollup_customer_windows
             WHERE company_id = $1 AND {FIRST_DAYS}
             GROUP BY first_day, currency"
        ),
        format!(
            "INSERT INTO rollup_cohort_months (company_id, first_day, currency, month,
                 net_minor)
             SELECT $1, c.first_day, r.currency, date_trunc('month', r.day)::date,
                    sum(r.net_minor)
             FROM rollup_customers c
             JOIN rollup_customer_days r USING (company_id, customer_id)
             WHERE c.company_id = $1 AND {FIRST_DAYS}
             GROUP BY 2, 3, 4"
        ),
    ] {
        written += sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(company_id)
            .bind(first_days)
            .execute(&mut **tx)
            .await?
            .rows_affected();
    }
    Ok(written)
}

/// Recomputes, from the rollup rows as they stand, every rollup that the job derives from
/// other rollups: the conversion-time bins of every day, and the per-customer and per-cohort
/// rollups of every customer. The job does this as it goes; this is for rollup rows written
/// some other way (by hand, in tests). Returns the rows inserted.
pub async fn rederive(pool: &PgPool, company_id: Uuid) -> Result<u64, sqlx::Error> {
    let mut tx = crate::db::begin_for_company(pool, company_id).await?;
    sqlx::query("DELETE FROM rollup_conversion_bins WHERE company_id = $1")
        .bind(company_id)
        .execute(&mut *tx)
        .await?;
    let mut written = conversion_bins(&mut tx, company_id, None).await?;
    written += refresh_customers(&mut tx, company_id, None).await?;
    tx.commit().await?;
    Ok(written)
}

/// The lower bounds, in seconds, of the conversion-time bins of `rollup_conversion_bins`,
/// ascending: 0, every bucket bound of the time-to-conversion report, and 60 s × 2^k ×
/// {1, 1.25, 1.5, 1.75} up to 637 days, so that a bin holds a few percent of the orders at
/// most and a percentile's exact value is read from that bin's orders alone. Changing them
/// needs every day recomputed (raise `settings::RULES_VERSION`).
pub fn conversion_bin_bounds() -> Vec<i64> {
    let mut bounds: Vec<i64> = std::iter::once(0)
        .chain(conversion_buckets::bucket_bounds())
        .chain((0..20).flat_map(|k| [60, 75, 90, 105].map(|s| s << k)))
        .collect();
    bounds.sort_unstable();
    bounds.dedup();
    bounds
}

/// Writes `rollup_conversion_bins` for `days` (every day with `None`) from
/// `rollup_conversions`. Returns the rows inserted.
async fn conversion_bins(
    tx: &mut Transaction<'_, Postgres>,
    company_id: Uuid,
    days: Option<&[NaiveDate]>,
) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query(
        "INSERT INTO rollup_conversion_bins (company_id, day, min_seconds, orders)
         SELECT $1, day, ($3::bigint[])[width_bucket(seconds, $3::bigint[])], count(*)
         FROM rollup_conversions
         WHERE company_id = $1 AND ($2::date[] IS NULL OR day = ANY($2))
         GROUP BY 2, 3",
    )
    .bind(company_id)
    .bind(days)
    .bind(conversion_bin_bounds())
    .execute(&mut **tx)
    .await?
    .rows_affected())
}

/// Why rollups could not be computed: the company's settings do not read, or the database
/// failed.
#[derive(Debug, thiserror::Error)]
pub enum RollupError {
    #[error(transparent)]
    Settings(#[from] settings::SettingsError),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
}

pub async fn load_settings(pool: &PgPool, company_id: Uuid) -> Result<RollupSettings, RollupError> {
    let (settings, _) = company_settings(pool, company_id).await?;
    Ok(settings)
}

/// The company's rollup settings and time zone.
async fn company_settings(
    pool: &PgPool,
    company_id: Uuid,
) -> Result<(RollupSettings, String), RollupError> {
    let mut tx = crate::db::begin_for_company(pool, company_id).await?;
    let (settings, timezone): (serde_json::Value, String) =
        sqlx::query_as("SELECT settings, timezone FROM companies WHERE company_id = $1")
            .bind(company_id)
            .fetch_one(&mut *tx)
            .await?;
    tx.commit().await?;
    let settings = RollupSettings::from_company_settings(&settings)?;
    Ok((settings, timezone))
}

/// Recomputes the company's rollups for the days of `scope`.
pub async fn run(
    pool: &PgPool,
    company_id: Uuid,
    settings: &RollupSettings,
    scope: Scope,
) -> Result<Outcome, RollupError> {
    let (_, timezone) = company_settings(pool, company_id).await?;
    let days = match scope {
        Scope::All => all_days(pool, company_id, &timezone).await?,
        Scope::ChangedSince(watermark) => {
            touched_days(pool, company_id, &timezone, watermark).await?
        }
        Scope::Days { from, to } => from.iter_days().take_while(|d| *d <= to).collect(),
    };
    let mut outcome = Outcome::default();
    let settings = std::sync::Arc::new(settings.clone());
    let timezone = std::sync::Arc::new(timezone);
    let mut running = tokio::task::JoinSet::new();
    for chunk in contiguous_chunks(&days) {
        if running.len() >= PARALLEL_CHUNKS {
            outcome.add(running.join_next().await.expect("a chunk is running"))?;
        }
        let pool = pool.clone();
        let (settings, timezone) = (settings.clone(), timezone.clone());
        running.spawn(async move {
            let mut tx = crate::db::begin_for_company(&pool, company_id).await?;
            let done = recompute(&mut tx, company_id, &timezone, &settings, &chunk).await?;
            tx.commit().await?;
            Ok::<_, sqlx::Error>(done)
        });
    }
    while let Some(done) = running.join_next().await {
        outcome.add(done)?;
    }
    // After every chunk, in one transaction: chunks in parallel could otherwise refresh the
    // same customer from snapshots that miss each other's days.
    let mut tx = crate::db::begin_for_company(pool, company_id).await?;
    if scope == Scope::All {
        // Days with no data left (everything of theirs erased) keep no rows either.
        delete_days(&mut tx, company_id, Which::AllBut, &days).await?;
        outcome.written += refresh_customers(&mut tx, company_id, None).await?;
    } else {
        let customers: Vec<Uuid> = outcome.customers.iter().copied().collect();
        outcome.written += refresh_customers(&mut tx, company_id, Some(&customers)).await?;
    }
    tx.commit().await?;
    let which = match scope {
        Scope::All => experiments::Which::All,
        Scope::ChangedSince(watermark) => experiments::Which::Touched {
            days: &days,
            watermark: Some(watermark),
        },
        Scope::Days { .. } => experiments::Which::Touched {
            days: &days,
            watermark: None,
        },
    };
    let refreshed = experiments::refresh(pool, company_id, &timezone, which).await?;
    outcome.examined += refreshed.visitors;
    outcome.written += refreshed.written;
    outcome.days = days;
    Ok(outcome)
}

/// Every local day from the company's first session, order, send or spend row to its last
/// (empty days too:
/// recomputing them clears rows left from data since erased).
async fn all_days(
    pool: &PgPool,
    company_id: Uuid,
    timezone: &str,
) -> Result<Vec<NaiveDate>, sqlx::Error> {
    let mut tx = crate::db::begin_for_company(pool, company_id).await?;
    let (first, last): (Option<NaiveDate>, Option<NaiveDate>) = sqlx::query_as(
        "WITH bounds AS (
             SELECT min(started_at) AS first, max(started_at) AS last
             FROM sessions WHERE company_id = $1
             UNION ALL
             SELECT min(placed_at), max(placed_at) FROM orders WHERE company_id = $1
             UNION ALL
             SELECT min(coalesce(sent_at, created_at)), max(coalesce(sent_at, created_at))
             FROM message_sends WHERE company_id = $1
             UNION ALL
             SELECT min(day)::timestamp AT TIME ZONE $2, max(day)::timestamp AT TIME ZONE $2
             FROM ad_spend WHERE company_id = $1)
         SELECT (min(first) AT TIME ZONE $2)::date, (max(last) AT TIME ZONE $2)::date
         FROM bounds",
    )
    .bind(company_id)
    .bind(timezone)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(match (first, last) {
        (Some(first), Some(last)) => first.iter_days().take_while(|d| *d <= last).collect(),
        _ => Vec::new(),
    })
}

/// The days whose data changed since `watermark`:
/// - the start days of sessions that an event opened or extended since then (the ingestion
///   writer notes them in `session_changes`: late and back-filled events too);
/// - the placement days of orders written since then (new orders, payments, refunds, a
///   first-order flag moving) or whose attribution changed since then;
/// - the days orders left since then: their placement moved, or they were merged into another
///   (`order_changes`, noted by a trigger);
/// - the send days of messages with something new ([`messages::touched_days`]);
/// - the days of spend rows imported with new values since then (an import that replaces a
///   campaign's rows at the other granularity writes rows of the same days).
///
/// Change notes older than a day before the watermark have been seen by an earlier run and
/// are pruned here.
async fn touched_days(
    pool: &PgPool,
    company_id: Uuid,
    timezone: &str,
    watermark: DateTime<Utc>,
) -> Result<Vec<NaiveDate>, sqlx::Error> {
    let mut tx = crate::db::begin_for_company(pool, company_id).await?;
    for table in ["session_changes", "order_changes"] {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DELETE FROM {table}
             WHERE company_id = $1 AND changed_at < $2::timestamptz - interval '1 day'"
        )))
        .bind(company_id)
        .bind(watermark)
        .execute(&mut *tx)
        .await?;
    }
    let days: Vec<NaiveDate> = sqlx::query_scalar(
        "SELECT (started_bin AT TIME ZONE $2)::date AS day FROM session_changes
         WHERE company_id = $1 AND changed_at >= $3
         UNION
         SELECT (placed_at AT TIME ZONE $2)::date FROM orders
         WHERE company_id = $1 AND updated_at >= $3
         UNION
         SELECT (placed_at AT TIME ZONE $2)::date FROM orders
         WHERE company_id = $1 AND attributed_at >= $3
         UNION
         SELECT (placed_at AT TIME ZONE $2)::date FROM order_changes
         WHERE company_id = $1 AND changed_at >= $3
         UNION
         SELECT day FROM ad_spend WHERE company_id = $1 AND imported_at >= $3
         ORDER BY day",
    )
    .bind(company_id)
    .bind(timezone)
    .bind(watermark)
    .fetch_all(&mut *tx)
    .await?;
    let mut days: Vec<NaiveDate> = days
        .into_iter()
        .chain(messages::touched_days(&mut tx, company_id, timezone, watermark).await?)
        .collect();
    tx.commit().await?;
    days.sort_unstable();
    days.dedup();
    Ok(days)
}

const ROLLUP_TABLES: [&str; 7] = [
    "rollup_sessions_daily",
    "rollup_funnel_daily",
    "rollup_revenue_daily",
    "rollup_conversions",
    "rollup_conversion_bins",
    "rollup_customer_days",
    "rollup_paths_daily",
];

/// Which days' rows [`delete_days`] deletes.
#[derive(Clone, Copy)]
enum Which {
    These,
    AllBut,
}

/// Deletes the company's rows of `days` (or of every other day) from every daily rollup.
async fn delete_days(
    tx: &mut Transaction<'_, Postgres>,
    company_id: Uuid,
    which: Which,
    days: &[NaiveDate],
) -> Result<(), sqlx::Error> {
    let condition = match which {
        Which::These => "day = ANY($2)",
        Which::AllBut => "NOT (day = ANY($2))",
    };
    let tables = ROLLUP_TABLES
        .iter()
        .chain(&messages::TABLES)
        .chain(&creatives::TABLES);
    for table in tables {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DELETE FROM {table} WHERE company_id = $1 AND {condition}"
        )))
        .bind(company_id)
        .bind(days)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// Recomputes every daily rollup of `days` in one transaction.
async fn recompute(
    tx: &mut Transaction<'_, Postgres>,
    company_id: Uuid,
    timezone: &str,
    settings: &RollupSettings,
    days: &[NaiveDate],
) -> Result<Recomputed, sqlx::Error> {
    let mut customers = customers_of_days(tx, company_id, days).await?;
    delete_days(tx, company_id, Which::These, days).await?;
    // The instants the days span, computed once: plain parameters let the planner use the
    // time indexes and skip the months of raw events outside them.
    let span: (DateTime<Utc>, DateTime<Utc>) = sqlx::query_as(
        "SELECT (min(d)::timestamp AT TIME ZONE $2), ((max(d) + 1)::timestamp AT TIME ZONE $2)
         FROM unnest($1::date[]) d",
    )
    .bind(days)
    .bind(timezone)
    .fetch_one(&mut **tx)
    .await?;
    let (sessions, session_rows) =
        sessions_and_funnels(tx, company_id, timezone, settings, days, span).await?;
    let (orders, order_rows) = orders_rollups(tx, company_id, timezone, days, span).await?;
    let (sends, send_rows) = messages::recompute(tx, company_id, timezone, days, span).await?;
    // After the orders: the creatives' revenue is summed from the revenue rows.
    let (parts, creative_rows) = creatives::recompute(tx, company_id, timezone, days, span).await?;
    customers.extend(customers_of_days(tx, company_id, days).await?);
    Ok(Recomputed {
        examined: sessions + orders + sends + parts,
        written: session_rows + order_rows + send_rows + creative_rows,
        customers,
    })
}

async fn customers_of_days(
    tx: &mut Transaction<'_, Postgres>,
    company_id: Uuid,
    days: &[NaiveDate],
) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT DISTINCT customer_id FROM rollup_customer_days
         WHERE company_id = $1 AND day = ANY($2)",
    )
    .bind(company_id)
    .bind(days)
    .fetch_all(&mut **tx)
    .await
}

/// One row of `rollup_sessions_daily` being summed up.
#[derive(Default)]
struct AcquisitionTotals {
    sessions: i32,
    engaged: i32,
    visitors: HashSet<Uuid>,
    page_views: i64,
}

type AcquisitionKey = (NaiveDate, String, String, String, String);

/// Sessions by acquisition and funnels, for the sessions that started on `days` (bots left
/// out). PostgreSQL hands over each session with the names of its events that matter (funnel
/// steps and key events) in order; the rules of [`session`] decide what it counts for.
async fn sessions_and_funnels(
    tx: &mut Transaction<'_, Postgres>,
    company_id: Uuid,
    timezone: &str,
    settings: &RollupSettings,
    days: &[NaiveDate],
    (from, until): (DateTime<Utc>, DateTime<Utc>),
) -> Result<(u64, u64), sqlx::Error> {
    type Row = (
        NaiveDate,
        Uuid,
        String,
        String,
        String,
        String,
        i32,
        i64,
        i64,
        Option<Vec<String>>,
    );
    // A session's events occurred from its start to 30 minutes after its last page event (a
    // page-less event, such as a server-side purchase, joins the session active within 30
    // minutes of it): the events are looked for up to then, found first.
    let events_until: Option<DateTime<Utc>> = sqlx::query_scalar(
        "SELECT max(last_seen_at) + interval '30 minutes' FROM sessions
         WHERE company_id = $1 AND started_at >= $2 AND started_at < $3",
    )
    .bind(company_id)
    .bind(from)
    .bind(until)
    .fetch_one(&mut **tx)
    .await?;
    let rows: Vec<Row> = sqlx::query_as(
        "WITH s AS (
             SELECT session_id, (started_at AT TIME ZONE $2)::date AS day, visitor_id,
                    channel, source, medium, coalesce(campaign, '') AS campaign, page_views,
                    engagement_ms, started_at, last_seen_at
             FROM sessions
             WHERE company_id = $1 AND NOT is_bot
               AND started_at >= $5 AND started_at < $6
               AND (started_at AT TIME ZONE $2)::date = ANY($3)),
         e AS (
             SELECT session_id,
                    array_agg(event_name ORDER BY occurred_at, event_id)
                        FILTER (WHERE event_name = ANY($4)) AS names,
                    max(occurred_at) AS last_event_at
             FROM raw_events
             WHERE company_id = $1 AND session_id IS NOT NULL
               AND occurred_at >= $5 AND occurred_at <= $7
             GROUP BY session_id)
         SELECT s.day, s.visitor_id, s.channel, s.source, s.medium, s.campaign, s.page_views,
                s.engagement_ms,
                (extract(epoch FROM greatest(s.last_seen_at, e.last_event_at)
                                    - s.started_at) * 1000)::bigint,
                e.names
         FROM s LEFT JOIN e USING (session_id)",
    )
    .bind(company_id)
    .bind(timezone)
    .bind(days)
    .bind(settings.event_names())
    .bind(from)
    .bind(until)
    .bind(events_until.unwrap_or(until))
    .fetch_all(&mut **tx)
    .await?;

    let funnels = settings.funnels();
    let mut acquisition: HashMap<AcquisitionKey, AcquisitionTotals> = HashMap::new();
    // (day, funnel index) → sessions that reached each step.
    let mut funnel_counts: HashMap<(NaiveDate, usize), Vec<i32>> = HashMap::new();
    let examined = rows.len() as u64;
    for (
        day,
        visitor,
        channel,
        source,
        medium,
        campaign,
        page_views,
        engagement_ms,
        duration_ms,
        names,
    ) in rows
    {
        let facts = SessionFacts {
            page_views,
            engagement_ms,
            duration_ms,
            events: names.unwrap_or_default(),
        };
        let totals = acquisition
            .entry((day, channel, source, medium, campaign))
            .or_default();
        totals.sessions += 1;
        totals.engaged += i32::from(is_engaged(settings, &facts));
        totals.visitors.insert(visitor);
        totals.page_views += i64::from(page_views);
        for (index, funnel) in funnels.iter().enumerate() {
            let reached = funnel_counts
                .entry((day, index))
                .or_insert_with(|| vec![0; funnel.steps.len()]);
            for step in reached
                .iter_mut()
                .take(funnel_depth(&funnel.steps, &facts.events))
            {
                *step += 1;
            }
        }
    }

    let written = write_acquisition(tx, company_id, acquisition).await?
        + write_funnels(tx, company_id, &funnels, funnel_counts).await?;
    Ok((examined, written))
}

async fn write_acquisition(
    tx: &mut Transaction<'_, Postgres>,
    company_id: Uuid,
    acquisition: HashMap<AcquisitionKey, AcquisitionTotals>,
) -> Result<u64, sqlx::Error> {
    let mut columns = (
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
    );
    for ((day, channel, source, medium, campaign), totals) in acquisition {
        columns.0.push(day);
        columns.1.push(channel);
        columns.2.push(source);
        columns.3.push(medium);
        columns.4.push(campaign);
        columns.5.push(totals.sessions);
        columns.6.push(totals.engaged);
        columns.7.push(totals.visitors.len() as i32);
        columns.8.push(totals.page_views);
    }
    let result = sqlx::query(
        "INSERT INTO rollup_sessions_daily (company_id, day, channel, source, medium, campaign,
             sessions, engaged_sessions, visitors, page_views)
         SELECT $1, * FROM unnest($2::date[], $3::text[], $4::text[], $5::text[], $6::text[],
             $7::int4[], $8::int4[], $9::int4[], $10::int8[])",
    )
    .bind(company_id)
    .bind(columns.0)
    .bind(columns.1)
    .bind(columns.2)
    .bind(columns.3)
    .bind(columns.4)
    .bind(columns.5)
    .bind(columns.6)
    .bind(columns.7)
    .bind(columns.8)
    .execute(&mut **tx)
    .await?;
    Ok(result.rows_affected())
}

/// Every step of every funnel, zeros included, for each day that has sessions: a funnel with
/// rows is a funnel that was measured.
async fn write_funnels(
    tx: &mut Transaction<'_, Postgres>,
    company_id: Uuid,
    funnels: &[settings::Funnel],
    counts: HashMap<(NaiveDate, usize), Vec<i32>>,
) -> Result<u64, sqlx::Error> {
    let (mut days, mut names, mut steps, mut events, mut sessions) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for ((day, index), reached) in counts {
        let funnel = &funnels[index];
        for (step, count) in reached.into_iter().enumerate() {
            days.push(day);
            names.push(funnel.name.clone());
            steps.push(step as i32 + 1);
            events.push(funnel.steps[step].clone());
            sessions.push(count);
        }
    }
    let result = sqlx::query(
        "INSERT INTO rollup_funnel_daily (company_id, day, funnel, step, event_name, sessions)
         SELECT $1, * FROM unnest($2::date[], $3::text[], $4::int4[], $5::text[], $6::int4[])",
    )
    .bind(company_id)
    .bind(days)
    .bind(names)
    .bind(steps)
    .bind(events)
    .bind(sessions)
    .execute(&mut **tx)
    .await?;
    Ok(result.rows_affected())
}

/// The order rollups of `days`, computed in PostgreSQL: revenue by model and touch, time to
/// conversion, and orders per customer. Cancelled and failed orders are not revenue and
/// count nowhere; every other status counts, with its refunds taken off.
async fn orders_rollups(
    tx: &mut Transaction<'_, Postgres>,
    company_id: Uuid,
    timezone: &str,
    days: &[NaiveDate],
    span: (DateTime<Utc>, DateTime<Utc>),
) -> Result<(u64, u64), sqlx::Error> {
    let orders = OrdersOfDays {
        company_id,
        timezone,
        days,
        span,
    };
    let examined = orders.count(tx).await?;
    if examined == 0 {
        return Ok((0, 0));
    }

    // Revenue: each order's amounts times each touch's credit, by model. The creative is the
    // touch session's (`creatives::SESSION_CREATIVE`): its events' `creative_id`, else its
    // utm_content (the ad id, by the usual `utm_content={{ad.id}}` convention).
    let revenue = orders
        .execute(
            tx,
            &"INSERT INTO rollup_revenue_daily (company_id, day, model, channel, source, medium,
                 campaign, creative, currency, orders, gross_minor, refunded_minor, net_minor,
                 new_customers)
             SELECT $1, o.day, c.model, c.channel, coalesce(c.source, ''),
                    coalesce(c.medium, ''), coalesce(c.campaign, ''),
                    coalesce({CREATIVE}, ''), o.currency,
                    sum(c.credit), sum(c.credit * coalesce(o.gross_minor, 0)),
                    sum(c.credit * o.refunded_minor), sum(c.credit * coalesce(o.net_minor, 0)),
                    coalesce(sum(c.credit) FILTER (WHERE o.is_first_order), 0)
             FROM ({ORDERS}) o
             JOIN attribution_credits c
               ON c.company_id = o.company_id AND c.order_id = o.order_id
             LEFT JOIN sessions s ON s.company_id = c.company_id AND s.session_id = c.session_id
             GROUP BY 2, 3, 4, 5, 6, 7, 8, 9"
                .replace("{CREATIVE}", creatives::SESSION_CREATIVE),
        )
        .await?;

    // Time to conversion: from the first touch's start to the purchase.
    let conversions = orders
        .execute(
            tx,
            "INSERT INTO rollup_conversions (company_id, day, order_id, channel, seconds)
             SELECT $1, o.day, o.order_id, o.first_touch_channel,
                    greatest(0, floor(extract(epoch FROM o.placed_at - o.first_touch_at)))::bigint
             FROM ({ORDERS}) o
             WHERE o.first_touch_at IS NOT NULL AND o.first_touch_channel IS NOT NULL",
        )
        .await?;
    let bins = conversion_bins(tx, company_id, Some(days)).await?;

    let customers = orders
        .execute(
            tx,
            "INSERT INTO rollup_customer_days (company_id, day, customer_id, currency, orders,
                 net_minor)
             SELECT $1, o.day, o.customer_id, o.currency, count(*),
                    sum(coalesce(o.net_minor, 0))
             FROM ({ORDERS}) o
             WHERE o.customer_id IS NOT NULL
             GROUP BY 2, 3, 4",
        )
        .await?;

    // Conversion paths: the channels of each order's touches in order (any model's credits
    // name every touch it credits; together they name the path), repeats collapsed. An order
    // not attributed yet (no credits: the aggregate gives NULL and 0) is 'Unattributed'.
    let paths = orders
        .execute(
            tx,
            "INSERT INTO rollup_paths_daily (company_id, day, path, steps, currency, orders,
                 net_minor)
             SELECT $1, o.day, coalesce(p.path, 'Unattributed'), greatest(p.steps, 1),
                    o.currency, count(*), sum(coalesce(o.net_minor, 0))
             FROM ({ORDERS}) o
             LEFT JOIN LATERAL (
                 SELECT string_agg(channel, ' > ' ORDER BY touch_index) AS path,
                        count(*)::int AS steps
                 FROM (SELECT touch_index, channel,
                              lag(channel) OVER (ORDER BY touch_index) AS previous
                       FROM (SELECT DISTINCT ON (touch_index) touch_index, channel
                             FROM attribution_credits c
                             WHERE c.company_id = o.company_id AND c.order_id = o.order_id
                             ORDER BY touch_index) touches) t
                 WHERE previous IS DISTINCT FROM channel
             ) p ON true
             GROUP BY 2, 3, 4, 5",
        )
        .await?;

    Ok((examined, revenue + conversions + bins + customers + paths))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversion_bins_are_narrow_ascending_and_bound_every_report_bucket() {
        let bounds = conversion_bin_bounds();
        assert_eq!(bounds[0], 0);
        assert!(bounds.windows(2).all(|w| w[0] < w[1]), "{bounds:?}");
        for bucket in conversion_buckets::bucket_bounds() {
            assert!(bounds.contains(&bucket), "{bucket}");
        }
        // From a minute on, each bin is at most a quarter wider than its start.
        for w in bounds.windows(2).filter(|w| w[0] >= 60) {
            assert!(w[1] * 4 <= w[0] * 5, "{w:?}");
        }
        assert_eq!(bounds.last(), Some(&(105 << 19)));
    }

    #[test]
    fn chunks_are_runs_of_consecutive_days_a_week_at_most() {
        let day = |s: &str| s.parse::<NaiveDate>().unwrap();
        let days: Vec<NaiveDate> = day("2025-03-01")
            .iter_days()
            .take(9)
            .chain([day("2025-05-15"), day("2025-05-17")])
            .collect();
        let chunks = contiguous_chunks(&days);
        let sizes: Vec<usize> = chunks.iter().map(Vec::len).collect();
        assert_eq!(sizes, [7, 2, 1, 1]);
        assert_eq!(chunks[1], [day("2025-03-08"), day("2025-03-09")]);
        assert!(contiguous_chunks(&[]).is_empty());
    }
}
