//! Money reports: revenue by channel, CAC and ROAS, from `rollup_revenue_daily` (attributed
//! orders and revenue per model and touch) and `ad_spend`.
//!
//! Revenue amounts in the rollup are minor units times credit (fractional under the
//! fractional models); spend is in major units. Both are summed exactly in SQL `numeric`,
//! spend is scaled to minor units with its currency's exponent, and every amount shown is
//! rounded once, half away from zero, to a whole minor unit (`round(x)`). Ratios are taken
//! between the unrounded sums.

use serde::Serialize;
use sqlx::PgConnection;

use super::ReportError;
use super::format::{money, money_or_null};
use super::request::{DateRange, RoasKey};
use crate::attribution::settings::Model;
use crate::commerce::money::{THREE_DECIMAL, ZERO_DECIMAL};

#[derive(Debug, Serialize)]
pub struct RevenueRow {
    pub channel: String,
    pub currency: String,
    pub orders: String,
    pub gross: String,
    pub refunds: String,
    pub revenue: String,
    pub aov: Option<String>,
}

#[derive(sqlx::FromRow)]
struct RevenueSums {
    channel: String,
    currency: String,
    orders: String,
    gross: i64,
    refunds: i64,
    revenue: i64,
    aov: Option<i64>,
}

/// Revenue by channel under `model`, per channel and currency:
/// - `orders` = Σ orders (credit-weighted, 2 decimals);
/// - `gross` = Σ gross_minor; `refunds` = Σ refunded_minor; `revenue` = Σ net_minor
///   (= gross − refunds);
/// - `aov` = Σ net_minor ÷ Σ orders (null when Σ orders = 0).
///
/// Rows are ordered by currency, then revenue descending, then channel: amounts in two
/// currencies are not comparable, so each currency's channels are ranked among themselves.
pub async fn revenue_by_channel(
    conn: &mut PgConnection,
    range: DateRange,
    model: Model,
) -> Result<Vec<RevenueRow>, ReportError> {
    let sums: Vec<RevenueSums> = sqlx::query_as(
        "SELECT channel, currency::text AS currency,
                round(sum(orders), 2)::text AS orders,
                round(sum(gross_minor))::bigint AS gross,
                round(sum(refunded_minor))::bigint AS refunds,
                round(sum(net_minor))::bigint AS revenue,
                round(sum(net_minor) / nullif(sum(orders), 0))::bigint AS aov
         FROM rollup_revenue_daily
         WHERE model = $1 AND day BETWEEN $2 AND $3
         GROUP BY channel, currency
         ORDER BY currency, round(sum(net_minor)) DESC, channel",
    )
    .bind(model.as_str())
    .bind(range.from())
    .bind(range.to())
    .fetch_all(conn)
    .await?;
    sums.into_iter()
        .map(|s| {
            Ok(RevenueRow {
                gross: money(&s.currency, s.gross)?,
                refunds: money(&s.currency, s.refunds)?,
                revenue: money(&s.currency, s.revenue)?,
                aov: money_or_null(&s.currency, s.aov)?,
                channel: s.channel,
                orders: s.orders,
                currency: s.currency,
            })
        })
        .collect()
}

#[derive(Debug, Serialize)]
pub struct CacRow {
    pub channel: String,
    pub currency: String,
    pub spend: String,
    pub new_customers: String,
    pub cac: Option<String>,
}

#[derive(sqlx::FromRow)]
struct CacSums {
    channel: String,
    currency: String,
    spend: i64,
    new_customers: String,
    cac: Option<i64>,
}

/// Customer acquisition cost under `model`.
///
/// For each channel and currency present in `ad_spend` over the range:
/// - `spend` = Σ spend (in minor units: × 10^exponent);
/// - `new_customers` = Σ new_customers of the channel in `rollup_revenue_daily` for the model,
///   in every currency (first orders, credit-weighted, 2 decimals);
/// - `cac` = spend ÷ new_customers (null when new_customers = 0).
///
/// Then one blended row per spend currency, channel `"All"`: the currency's whole spend ÷ the
/// new customers of every channel (spent on or not: the organic ones are what blending
/// credits the spend with).
pub async fn cac(
    conn: &mut PgConnection,
    range: DateRange,
    model: Model,
) -> Result<Vec<CacRow>, ReportError> {
    let sums: Vec<CacSums> = sqlx::query_as(
        "WITH spend AS (
             SELECT channel, currency::text AS currency,
                    sum(spend) * power(10::numeric, CASE WHEN currency::text = ANY($1) THEN 0
                                                         WHEN currency::text = ANY($2) THEN 3
                                                         ELSE 2 END) AS spend_minor
             FROM ad_spend
             WHERE day BETWEEN $3 AND $4
             GROUP BY channel, currency
         ), acquired AS (
             SELECT channel, sum(new_customers) AS n
             FROM rollup_revenue_daily
             WHERE model = $5 AND day BETWEEN $3 AND $4
             GROUP BY channel
         ), everyone AS (
             SELECT coalesce(sum(n), 0) AS n FROM acquired
         )
         SELECT channel, currency, spend, new_customers, cac FROM (
             SELECT 0 AS blended, s.channel, s.currency,
                    round(s.spend_minor)::bigint AS spend,
                    round(coalesce(a.n, 0), 2)::text AS new_customers,
                    round(s.spend_minor / nullif(a.n, 0))::bigint AS cac
             FROM spend s LEFT JOIN acquired a USING (channel)
             UNION ALL
             SELECT 1, 'All', s.currency,
                    round(sum(s.spend_minor))::bigint,
                    round(e.n, 2)::text,
                    round(sum(s.spend_minor) / nullif(e.n, 0))::bigint
             FROM spend s CROSS JOIN everyone e
             GROUP BY s.currency, e.n
         ) rows
         ORDER BY blended, channel, currency",
    )
    .bind(ZERO_DECIMAL)
    .bind(THREE_DECIMAL)
    .bind(range.from())
    .bind(range.to())
    .bind(model.as_str())
    .fetch_all(conn)
    .await?;
    sums.into_iter()
        .map(|s| {
            Ok(CacRow {
                spend: money(&s.currency, s.spend)?,
                cac: money_or_null(&s.currency, s.cac)?,
                channel: s.channel,
                new_customers: s.new_customers,
                currency: s.currency,
            })
        })
        .collect()
}

#[derive(Debug, Serialize)]
pub struct RoasRow {
    pub channel: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub campaign: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub creative: Option<String>,
    pub currency: String,
    pub spend: String,
    pub impressions: i64,
    pub clicks: i64,
    pub revenue: String,
    pub roas: Option<f64>,
}

#[derive(sqlx::FromRow)]
struct RoasSums {
    channel: String,
    campaign: String,
    creative: String,
    currency: String,
    spend: i64,
    impressions: i64,
    clicks: i64,
    revenue: i64,
    roas: Option<f64>,
}

/// Return on ad spend under `model`, by channel, by (channel, campaign) or by (channel,
/// campaign, creative).
///
/// For each key and currency present in `ad_spend` over the range:
/// - `spend`, `impressions`, `clicks` = their sums in `ad_spend` (spend in minor units);
/// - `revenue` = Σ net_minor in `rollup_revenue_daily` for the model with the same key and
///   currency (0 when none);
/// - `roas` = revenue ÷ spend (4 decimals; null when spend = 0).
///
/// Keys: the channel; campaigns compared in lower case (ad platforms and UTM tags often
/// differ in case only), shown as the ad platform spells it (the least spelling if several);
/// the creative is `ad_spend.ad_id` matched exactly to the touch's creative (utm_content).
pub async fn roas(
    conn: &mut PgConnection,
    range: DateRange,
    model: Model,
    by: RoasKey,
) -> Result<Vec<RoasRow>, ReportError> {
    let sums: Vec<RoasSums> = sqlx::query_as(
        "WITH spend AS (
             SELECT channel,
                    CASE WHEN $6 >= 2 THEN lower(campaign) ELSE '' END AS campaign_key,
                    CASE WHEN $6 >= 3 THEN ad_id ELSE '' END AS creative_key,
                    currency::text AS currency,
                    min(campaign) AS campaign,
                    sum(spend) * power(10::numeric, CASE WHEN currency::text = ANY($1) THEN 0
                                                         WHEN currency::text = ANY($2) THEN 3
                                                         ELSE 2 END) AS spend_minor,
                    sum(impressions)::bigint AS impressions,
                    sum(clicks)::bigint AS clicks
             FROM ad_spend
             WHERE day BETWEEN $3 AND $4
             GROUP BY 1, 2, 3, 4
         ), revenue AS (
             SELECT channel,
                    CASE WHEN $6 >= 2 THEN lower(campaign) ELSE '' END AS campaign_key,
                    CASE WHEN $6 >= 3 THEN creative ELSE '' END AS creative_key,
                    currency::text AS currency,
                    sum(net_minor) AS net
             FROM rollup_revenue_daily
             WHERE model = $5 AND day BETWEEN $3 AND $4
             GROUP BY 1, 2, 3, 4
         )
         SELECT s.channel, s.campaign, s.creative_key AS creative, s.currency,
                round(s.spend_minor)::bigint AS spend, s.impressions, s.clicks,
                round(coalesce(r.net, 0))::bigint AS revenue,
                round(coalesce(r.net, 0) / nullif(s.spend_minor, 0), 4)::float8 AS roas
         FROM spend s
         LEFT JOIN revenue r USING (channel, campaign_key, creative_key, currency)
         ORDER BY s.channel, s.campaign_key, s.creative_key, s.currency",
    )
    .bind(ZERO_DECIMAL)
    .bind(THREE_DECIMAL)
    .bind(range.from())
    .bind(range.to())
    .bind(model.as_str())
    .bind(by.depth())
    .fetch_all(conn)
    .await?;
    sums.into_iter()
        .map(|s| {
            Ok(RoasRow {
                spend: money(&s.currency, s.spend)?,
                revenue: money(&s.currency, s.revenue)?,
                campaign: (by >= RoasKey::Campaign).then_some(s.campaign),
                creative: (by >= RoasKey::Creative).then_some(s.creative),
                channel: s.channel,
                currency: s.currency,
                impressions: s.impressions,
                clicks: s.clicks,
                roas: s.roas,
            })
        })
        .collect()
}
