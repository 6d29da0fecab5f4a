//! Customer reports: repeat purchase rate and lifetime value (rolling and by cohort). What they
//! count is defined on `rollup_customer_days` (orders and net revenue per customer, local day
//! and currency); they read its sums per day and per cohort (`rollup_repeat_days`,
//! `rollup_cohort_days`, `rollup_cohort_windows`, `rollup_cohort_months`, kept by the rollups
//! job), a few rows per day rather than one per customer.
//!
//! A customer's **first order day** is their least day in the whole table, whatever the
//! range (kept per customer in `rollup_customers`); a report's cohort is the customers whose
//! first order day is in the range. A customer who ordered in several currencies (rare) counts
//! in each currency's group, with that currency's revenue only: amounts in two currencies are
//! never added.

use chrono::NaiveDate;
use serde::Serialize;
use sqlx::PgConnection;

use super::ReportError;
use super::format::{money, money_or_null, ratio};
use super::request::DateRange;

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
    // A customer has orders in the range when one of their order days d is in it with the
    // previous one (`since`) before it; two or more when, on their first day in it, they
    // ordered twice (`multi`), or their second day in it follows a first day in it with one
    // order: d's previous day is in the range, had one order (`prev_single`), and the one
    // before was not in it (less those whose day before the previous is in it:
    // `prev_prev_single`).
    let (customers, repeat): (i64, i64) = sqlx::query_as(
        "SELECT coalesce(sum(customers) FILTER (WHERE since < $1), 0)::bigint,
                coalesce(sum(multi) FILTER (WHERE since < $1), 0)::bigint
                + coalesce(sum(prev_single - prev_prev_single) FILTER (WHERE since >= $1), 0)
                    ::bigint
         FROM rollup_repeat_days
         WHERE day BETWEEN $1 AND $2",
    )
    .bind(range.from())
    .bind(range.to())
    .fetch_one(&mut *conn)
    .await?;
    let cohorts: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT to_char(first_day, 'YYYY-MM'), sum(customers)::bigint,
                sum(repeat_customers)::bigint
         FROM rollup_cohort_days
         WHERE first_day BETWEEN $1 AND $2
         GROUP BY 1
         ORDER BY 1",
    )
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
    // The windows are the columns of `rollup_cohort_windows` (sums of the customers'
    // `rollup_customer_windows` per first order day and currency).
    const _: () = assert!(LTV_WINDOWS.len() == 4);
    let sums: Vec<RollingSums> = sqlx::query_as(
        "WITH windows AS (
             SELECT unnest($4::int[]) AS days
         ), cohorts AS (
             SELECT currency::text AS currency, first_day, customers,
                    net_30, net_90, net_180, net_365
             FROM rollup_cohort_windows
             WHERE first_day BETWEEN $1 AND $2
         ), currencies AS (
             SELECT DISTINCT currency FROM cohorts
         ), matured AS (
             SELECT w.days, c.currency, c.customers,
                    CASE w.days WHEN 30 THEN c.net_30 WHEN 90 THEN c.net_90
                                WHEN 180 THEN c.net_180 ELSE c.net_365 END AS minor
             FROM cohorts c JOIN windows w ON c.first_day + w.days <= $3
         )
         SELECT w.days AS window_days, cur.currency,
                coalesce(sum(p.customers), 0)::bigint AS customers,
                coalesce(sum(p.minor), 0)::bigint AS revenue,
                round(sum(p.minor) / nullif(sum(p.customers), 0))::bigint AS ltv
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
    // Per first order day and currency: the customers (`rollup_cohort_windows`) and the net
    // revenue of each calendar month (`rollup_cohort_months`).
    let sums: Vec<CohortSums> = sqlx::query_as(
        "WITH groups AS (
             SELECT date_trunc('month', first_day)::date AS cohort, currency::text AS currency,
                    sum(customers)::bigint AS customers
             FROM rollup_cohort_windows
             WHERE first_day BETWEEN $1 AND $2
             GROUP BY 1, 2
         ), monthly AS (
             SELECT date_trunc('month', first_day)::date AS cohort, currency::text AS currency,
                    ((extract(year FROM month) - extract(year FROM first_day)) * 12
                     + extract(month FROM month) - extract(month FROM first_day))::int AS k,
                    sum(net_minor) AS net
             FROM rollup_cohort_months
             WHERE first_day BETWEEN $1 AND $2
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
         ORDER BY cumulative.cohort, k, currency",
    )
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
