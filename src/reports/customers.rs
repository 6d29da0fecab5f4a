//! Customer reports: repeat purchase rate and lifetime value (rolling and by cohort), from
//! `rollup_customer_days` (orders and net revenue per customer, local day and currency).
//!
//! A customer's **first order day** is their least day in the whole table, whatever the
//! range (kept per customer in `rollup_customers`); a report's cohort is the customers whose first order day is in the range.
//! A customer who ordered in several currencies (rare) counts in each currency's group, with
//! that currency's revenue only: amounts in two currencies are never added.

use chrono::NaiveDate;
use serde::Serialize;
use sqlx::PgConnection;

use super::ReportError;
use super::format::{money, money_or_null, ratio};
use super::request::DateRange;

/// The customers whose first order day is in `$1 ..= $2`, with that day, in each currency
/// they ever ordered in: a range scan of `rollup_customers` (one row per customer, kept by
/// the rollups job), whatever the number of customer days.
const COHORT_MEMBERS: &str = "
    cohort AS (
        SELECT customer_id, first_day, orders, currencies
        FROM rollup_customers
        WHERE first_day BETWEEN $1 AND $2
    ), members AS (
        SELECT customer_id, first_day, unnest(currencies)::text AS currency
        FROM cohort
    )";

#[derive(Debug, Serialize)]
pub struct RepeatRow {
    pub cohort: String,
    pub customers: i64,
    pub repeat_customers: i64,
    pub rate: Option<f64>,
}

/// Repeat purchase rate.
///
/// First row, cohort `"all"`: `customers` = customers with ≥ 1 order on days in the range,
/// `repeat_customers` = those with ≥ 2 orders on days in the range.
///
/// Then one row per first-order month `"YYYY-MM"` of the customers whose first order day is
/// in the range: `customers` = their number, `repeat_customers` = those with ≥ 2 orders in
/// the whole table (any day, after the range included).
///
/// `rate` = repeat_customers ÷ customers (null when 0 customers).
pub async fn repeat_purchase(
    conn: &mut PgConnection,
    range: DateRange,
) -> Result<Vec<RepeatRow>, ReportError> {
    let (customers, repeat): (i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE n >= 1), count(*) FILTER (WHERE n >= 2)
         FROM (SELECT customer_id, sum(orders) AS n
               FROM rollup_customer_days
               WHERE day BETWEEN $1 AND $2
               GROUP BY customer_id) c",
    )
    .bind(range.from())
    .bind(range.to())
    .fetch_one(&mut *conn)
    .await?;
    let cohorts: Vec<(String, i64, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "WITH {COHORT_MEMBERS}
         SELECT to_char(first_day, 'YYYY-MM'), count(*), count(*) FILTER (WHERE orders >= 2)
         FROM cohort
         GROUP BY 1
         ORDER BY 1"
    )))
    .bind(range.from())
    .bind(range.to())
    .fetch_all(&mut *conn)
    .await?;
    let row = |cohort: String, customers: i64, repeat_customers: i64| RepeatRow {
        cohort,
        customers,
        repeat_customers,
        rate: ratio(repeat_customers, customers),
    };
    let mut rows = vec![row("all".into(), customers, repeat)];
    rows.extend(cohorts.into_iter().map(|(c, n, r)| row(c, n, r)));
    Ok(rows)
}

/// The rolling LTV windows, in days after the first order.
pub const LTV_WINDOWS: [i32; 4] = [30, 90, 180, 365];

#[derive(Debug, Serialize)]
pub struct RollingRow {
    pub window_days: i32,
    pub currency: String,
    pub customers: i64,
    pub revenue: String,
    pub ltv: Option<String>,
}

#[derive(sqlx::FromRow)]
struct RollingSums {
    window_days: i32,
    currency: String,
    customers: i64,
    revenue: i64,
    ltv: Option<i64>,
}

/// Rolling LTV of the customers whose first order day *f* is in the range, for each window
/// N of 30, 90, 180, 365 days and each currency they ordered in:
/// - `customers` = those whose window has wholly passed: *f* + N ≤ `today` (the company's
///   current local date), so a young customer never drags the average down;
/// - `revenue` = Σ net_minor of those customers on days *f* ≤ d < *f* + N;
/// - `ltv` = revenue ÷ customers (null when 0 customers: no customer has matured yet).
pub async fn ltv_rolling(
    conn: &mut PgConnection,
    range: DateRange,
    today: NaiveDate,
) -> Result<Vec<RollingRow>, ReportError> {
    // The windows are the columns of `rollup_customer_windows`.
    const _: () = assert!(LTV_WINDOWS.len() == 4);
    let sums: Vec<RollingSums> = sqlx::query_as(
        "WITH windows AS (
             SELECT unnest($4::int[]) AS days
         ), members AS (
             SELECT customer_id, currency::text AS currency, first_day,
                    net_30, net_90, net_180, net_365
             FROM rollup_customer_windows
             WHERE first_day BETWEEN $1 AND $2
         ), currencies AS (
             SELECT DISTINCT currency FROM members
         ), matured AS (
             SELECT w.days, m.customer_id, m.currency,
                    CASE w.days WHEN 30 THEN m.net_30 WHEN 90 THEN m.net_90
                                WHEN 180 THEN m.net_180 ELSE m.net_365 END AS minor
             FROM members m JOIN windows w ON m.first_day + w.days <= $3
         )
         SELECT w.days AS window_days, cur.currency,
                count(p.customer_id) AS customers,
                coalesce(sum(p.minor), 0)::bigint AS revenue,
                round(sum(p.minor) / nullif(count(p.customer_id), 0))::bigint AS ltv
         FROM windows w
         CROSS JOIN currencies cur
         LEFT JOIN matured p ON p.days = w.days AND p.currency = cur.currency
         GROUP BY w.days, cur.currency
         ORDER BY w.days, cur.currency",
    )
    .bind(range.from())
    .bind(range.to())
    .bind(today)
    .bind(LTV_WINDOWS.as_slice())
    .fetch_all(conn)
    .await?;
    sums.into_iter()
        .map(|s| {
            Ok(RollingRow {
                revenue: money(&s.currency, s.revenue)?,
                ltv: money_or_null(&s.currency, s.ltv)?,
                window_days: s.window_days,
                customers: s.customers,
                currency: s.currency,
            })
        })
        .collect()
}

#[derive(Debug, Serialize)]
pub struct CohortRow {
    pub cohort: String,
    pub months_since: i32,
    pub currency: String,
    pub customers: i64,
    pub revenue: String,
    pub ltv: Option<String>,
}

#[derive(sqlx::FromRow)]
struct CohortSums {
    cohort: String,
    months_since: i32,
    currency: String,
    customers: i64,
    revenue: i64,
    ltv: Option<i64>,
}

/// LTV by cohort: the customers whose first order day is in the range, grouped by the month
/// of that day ("YYYY-MM") and currency. For k = 0 up to the months from the cohort's month
/// to the current month (the company's local date `today`):
/// - `customers` = the cohort's customers (the same for every k);
/// - `revenue` = Σ net_minor of their orders from their first order to the end of month
///   cohort + k (cumulative);
/// - `ltv` = revenue ÷ customers.
///
/// The current month's row is to date.
pub async fn ltv_cohorts(
    conn: &mut PgConnection,
    range: DateRange,
    today: NaiveDate,
) -> Result<Vec<CohortRow>, ReportError> {
    let sums: Vec<CohortSums> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "WITH {COHORT_MEMBERS}, groups AS (
             SELECT date_trunc('month', first_day)::date AS cohort, currency,
                    count(*) AS customers
             FROM members
             GROUP BY 1, 2
         ), monthly AS (
             SELECT date_trunc('month', m.first_day)::date AS cohort, m.currency,
                    ((extract(year FROM r.day) - extract(year FROM m.first_day)) * 12
                     + extract(month FROM r.day) - extract(month FROM m.first_day))::int AS k,
                    sum(r.net_minor) AS net
             FROM members m
             JOIN rollup_customer_days r
               ON r.customer_id = m.customer_id AND r.currency::text = m.currency
             GROUP BY 1, 2, 3
         ), grid AS (
             SELECT g.cohort, g.currency, g.customers, k
             FROM groups g,
                  generate_series(0, ((extract(year FROM $3::date) - extract(year FROM g.cohort)) * 12
                                      + extract(month FROM $3::date)
                                      - extract(month FROM g.cohort))::int) AS k
         ), cumulative AS (
             SELECT grid.cohort, grid.k, grid.currency, grid.customers,
                    sum(coalesce(monthly.net, 0))
                        OVER (PARTITION BY grid.cohort, grid.currency ORDER BY grid.k) AS revenue
             FROM grid LEFT JOIN monthly USING (cohort, currency, k)
         )
         SELECT to_char(cohort, 'YYYY-MM') AS cohort, k AS months_since, currency, customers,
                revenue::bigint AS revenue,
                round(revenue / nullif(customers, 0))::bigint AS ltv
         FROM cumulative
         ORDER BY cumulative.cohort, k, currency"
    )))
    .bind(range.from())
    .bind(range.to())
    .bind(today)
    .fetch_all(conn)
    .await?;
    sums.into_iter()
        .map(|s| {
            Ok(CohortRow {
                revenue: money(&s.currency, s.revenue)?,
                ltv: money_or_null(&s.currency, s.ltv)?,
                cohort: s.cohort,
                months_since: s.months_since,
                currency: s.currency,
                customers: s.customers,
            })
        })
        .collect()
}
