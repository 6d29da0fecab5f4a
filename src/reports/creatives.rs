//! The creative reports (SPEC §8.2, §11), from the creative rollups
//! (`rollup_creative_days`, `rollup_creative_spend_days`, `rollup_creative_revenue_days`),
//! the fatigue history (`creative_fatigue_history`) and the catalog (`creatives`, for names,
//! concepts, angles and launch days):
//! - [`creatives`]: delivery, traffic, spend and attributed revenue per creative, concept or
//!   angle;
//! - [`creative_decay`]: one creative's daily CTR by days since launch;
//! - [`creative_fatigue`]: each creative's latest fatigue verdict in the range.

use chrono::NaiveDate;
use serde::Serialize;
use sqlx::PgConnection;

use super::ReportError;
use super::format::{money, money_or_null, ratio};
use super::request::{CreativeGroup, CreativeId, DateRange};
use crate::attribution::settings::Model;

/// One row of `creatives`: a creative, a concept or an angle, in one currency.
#[derive(Debug, Serialize)]
pub struct CreativeRow {
    /// group=creative.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub creative_id: Option<String>,
    /// group=creative: the catalog's name (null when not in the catalog or unnamed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<Option<String>>,
    /// group=creative and group=concept (null: not in the catalog, or no concept).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub concept: Option<Option<String>>,
    /// group=creative and group=angle.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub angle: Option<Option<String>>,
    /// group=concept and group=angle: how many of the group's creatives had impressions,
    /// clicks or sessions in the range.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub creatives: Option<i64>,
    pub impressions: i64,
    pub clicks: i64,
    pub ctr: Option<f64>,
    pub spend: String,
    pub cpc: Option<String>,
    pub cpm: Option<String>,
    pub reach: Option<i64>,
    pub frequency: Option<f64>,
    pub sessions: i64,
    pub orders: String,
    pub revenue: String,
    pub cpa: Option<String>,
    pub roas: Option<f64>,
    pub currency: String,
}

#[derive(sqlx::FromRow)]
struct CreativeSums {
    key: String,
    creatives: i64,
    currency: Option<String>,
    impressions: i64,
    clicks: i64,
    reach: Option<i64>,
    reach_impressions: i64,
    sessions: i64,
    spend: i64,
    cpc: Option<i64>,
    cpm: Option<i64>,
    orders: String,
    revenue: i64,
    cpa: Option<i64>,
    roas: Option<f64>,
    name: Option<String>,
    concept: Option<String>,
    angle: Option<String>,
}

/// Creatives over the range, by creative (default), concept or angle, with revenue under
/// `model`. With *I* impressions, *C* clicks, *S* spend (minor units), *R* reach (Σ of the
/// days' reach where the spend rows have one) and *Iᵣ* the impressions of those rows, *O*
/// orders and *V* net revenue credited to the creative's touches:
/// - `ctr` = C ÷ I; `cpc` = S ÷ C; `cpm` = 1000 × S ÷ I;
/// - `frequency` = Iᵣ ÷ R (null without reach);
/// - `cpa` = S ÷ O; `roas` = V ÷ S.
///
/// Money is rounded once to the minor unit; ratios to 4 decimals; null when the denominator
/// is 0. Concept and angle come from the catalog (creatives not in it, or without one, are
/// grouped under null). Amounts in two currencies are never added: a key with spend or
/// revenue in several currencies has a row per currency, each with the key's counts; a key
/// with neither has one row in the company's currency (`default_currency`). Rows are ordered
/// by key (nulls last), then currency.
pub async fn creatives(
    conn: &mut PgConnection,
    range: DateRange,
    model: Model,
    group: CreativeGroup,
    default_currency: &str,
) -> Result<Vec<CreativeRow>, ReportError> {
    let key = match group {
        CreativeGroup::Creative => "r.creative_id",
        CreativeGroup::Concept => "coalesce(c.concept, '')",
        CreativeGroup::Angle => "coalesce(c.angle, '')",
    };
    let of = |table: &str| {
        format!(
            "{table} r LEFT JOIN creatives c
               ON c.company_id = r.company_id AND c.creative_id = r.creative_id"
        )
    };
    let sums: Vec<CreativeSums> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "WITH d AS (
             SELECT {key} AS key, count(DISTINCT r.creative_id) AS creatives,
                    sum(impressions)::bigint AS impressions, sum(clicks)::bigint AS clicks,
                    sum(reach)::bigint AS reach,
                    sum(reach_impressions)::bigint AS reach_impressions,
                    sum(sessions)::bigint AS sessions
             FROM {days}
             WHERE r.day BETWEEN $1 AND $2
             GROUP BY 1),
         s AS (
             SELECT {key} AS key, r.currency::text AS currency, sum(spend_minor) AS spend
             FROM {spend}
             WHERE r.day BETWEEN $1 AND $2
             GROUP BY 1, 2),
         v AS (
             SELECT {key} AS key, r.currency::text AS currency, sum(orders) AS orders,
                    sum(net_minor) AS net
             FROM {revenue}
             WHERE r.day BETWEEN $1 AND $2 AND r.model = $3
             GROUP BY 1, 2),
         m AS (SELECT * FROM s FULL JOIN v USING (key, currency)),
         k AS (SELECT key FROM d UNION SELECT key FROM m)
         SELECT k.key, coalesce(d.creatives, 0) AS creatives, m.currency,
                coalesce(d.impressions, 0) AS impressions, coalesce(d.clicks, 0) AS clicks,
                d.reach, coalesce(d.reach_impressions, 0) AS reach_impressions,
                coalesce(d.sessions, 0) AS sessions,
                round(coalesce(m.spend, 0))::bigint AS spend,
                round(coalesce(m.spend, 0) / nullif(d.clicks, 0))::bigint AS cpc,
                round(coalesce(m.spend, 0) * 1000 / nullif(d.impressions, 0))::bigint AS cpm,
                round(coalesce(m.orders, 0), 2)::text AS orders,
                round(coalesce(m.net, 0))::bigint AS revenue,
                round(coalesce(m.spend, 0) / nullif(m.orders, 0))::bigint AS cpa,
                round(coalesce(m.net, 0) / nullif(m.spend, 0), 4)::float8 AS roas,
                c.name, c.concept, c.angle
         FROM k
         LEFT JOIN d USING (key)
         LEFT JOIN m USING (key)
         LEFT JOIN creatives c ON $4 AND c.creative_id = k.key
         ORDER BY k.key = '', k.key, m.currency",
        days = of("rollup_creative_days"),
        spend = of("rollup_creative_spend_days"),
        revenue = of("rollup_creative_revenue_days"),
    )))
    .bind(range.from())
    .bind(range.to())
    .bind(model.as_str())
    .bind(group == CreativeGroup::Creative)
    .fetch_all(conn)
    .await?;
    sums.into_iter()
        .map(|s| creative_row(s, group, default_currency))
        .collect()
}

fn creative_row(
    s: CreativeSums,
    group: CreativeGroup,
    default_currency: &str,
) -> Result<CreativeRow, ReportError> {
    let currency = s.currency.unwrap_or_else(|| default_currency.to_string());
    let named = |text: String| (!text.is_empty()).then_some(text);
    let by_creative = group == CreativeGroup::Creative;
    Ok(CreativeRow {
        creative_id: by_creative.then(|| s.key.clone()),
        name: by_creative.then(|| s.name.clone()),
        concept: match group {
            CreativeGroup::Creative => Some(s.concept.clone()),
            CreativeGroup::Concept => Some(named(s.key.clone())),
            CreativeGroup::Angle => None,
        },
        angle: match group {
            CreativeGroup::Creative => Some(s.angle.clone()),
            CreativeGroup::Angle => Some(named(s.key.clone())),
            CreativeGroup::Concept => None,
        },
        creatives: (!by_creative).then_some(s.creatives),
        impressions: s.impressions,
        clicks: s.clicks,
        ctr: ratio(s.clicks, s.impressions),
        spend: money(&currency, s.spend)?,
        cpc: money_or_null(&currency, s.cpc)?,
        cpm: money_or_null(&currency, s.cpm)?,
        reach: s.reach,
        frequency: s.reach.and_then(|r| ratio(s.reach_impressions, r)),
        sessions: s.sessions,
        orders: s.orders,
        revenue: money(&currency, s.revenue)?,
        cpa: money_or_null(&currency, s.cpa)?,
        roas: s.roas,
        currency,
    })
}

/// One day of a creative's decay.
#[derive(Debug, Serialize, sqlx::FromRow)]
pub struct DecayRow {
    pub day: NaiveDate,
    /// Days since the catalog's launch day (0 on it), or, for a creative not in the catalog,
    /// since its first day with impressions.
    pub days_since_launch: Option<i32>,
    pub impressions: i64,
    pub clicks: i64,
    #[sqlx(skip)]
    pub ctr: Option<f64>,
}

/// One creative's days in the range that have rollup rows, in order: impressions, clicks,
/// `ctr` = clicks ÷ impressions (null without impressions), and days since launch.
pub async fn creative_decay(
    conn: &mut PgConnection,
    range: DateRange,
    creative: &CreativeId,
) -> Result<Vec<DecayRow>, ReportError> {
    let mut rows: Vec<DecayRow> = sqlx::query_as(
        "WITH launch AS (
             SELECT coalesce(
                 (SELECT launched_on FROM creatives WHERE creative_id = $3),
                 (SELECT min(day) FROM rollup_creative_days
                  WHERE creative_id = $3 AND impressions > 0)) AS day)
         SELECT r.day, (r.day - launch.day) AS days_since_launch, r.impressions, r.clicks
         FROM rollup_creative_days r, launch
         WHERE r.creative_id = $3 AND r.day BETWEEN $1 AND $2
         ORDER BY r.day",
    )
    .bind(range.from())
    .bind(range.to())
    .bind(creative.as_ref())
    .fetch_all(conn)
    .await?;
    for row in &mut rows {
        row.ctr = ratio(row.clicks, row.impressions);
    }
    Ok(rows)
}

/// One creative's latest fatigue verdict.
#[derive(Debug, Serialize, sqlx::FromRow)]
pub struct FatigueRow {
    pub creative_id: String,
    pub name: Option<String>,
    pub concept: Option<String>,
    pub angle: Option<String>,
    /// The day the verdict is as of.
    pub day: NaiveDate,
    pub status: String,
    pub baseline_ctr: Option<f64>,
    pub recent_ctr: Option<f64>,
    pub drop: Option<f64>,
    pub p_value: Option<f64>,
    pub baseline_impressions: i64,
    pub recent_impressions: i64,
    pub explanation: String,
}

/// Each creative's verdict of the latest day in the range that has one (as of `to`, or the
/// last day the job judged it before), from `creative_fatigue_history`. The CTRs, drop and
/// p-value are rounded to 4 decimals. Ordered by status (`fatigued`, `watch`, `fresh`,
/// `insufficient_data`), then creative.
pub async fn creative_fatigue(
    conn: &mut PgConnection,
    range: DateRange,
) -> Result<Vec<FatigueRow>, ReportError> {
    Ok(sqlx::query_as(
        "SELECT h.creative_id, c.name, c.concept, c.angle, h.day, h.status,
                round(h.baseline_ctr::numeric, 4)::float8 AS baseline_ctr,
                round(h.recent_ctr::numeric, 4)::float8 AS recent_ctr,
                round(h.drop::numeric, 4)::float8 AS drop,
                round(h.p_value::numeric, 4)::float8 AS p_value,
                h.baseline_impressions, h.recent_impressions, h.explanation
         FROM (SELECT DISTINCT ON (creative_id) *
               FROM creative_fatigue_history
               WHERE day BETWEEN $1 AND $2
               ORDER BY creative_id, day DESC) h
         LEFT JOIN creatives c ON c.company_id = h.company_id AND c.creative_id = h.creative_id
         ORDER BY array_position(ARRAY['fatigued', 'watch', 'fresh', 'insufficient_data'],
                                 h.status), h.creative_id",
    )
    .bind(range.from())
    .bind(range.to())
    .fetch_all(conn)
    .await?)
}
