//! The `messages` report (SPEC §8.1, §11): email and SMS delivery, engagement and the revenue
//! credited to messages, from the message rollups by the send's day: `rollup_message_days`
//! and `rollup_message_revenue_days` per channel and campaign, `rollup_message_sends` and
//! `rollup_message_orders` per message.

use std::collections::HashMap;

use serde::Serialize;
use serde_json::{Map, Value};
use sqlx::PgConnection;

use super::ReportError;
use super::format::{money, ratio};
use super::request::{DateRange, MessageChannel, MessageGroup};

/// One row: a channel, a channel and campaign, or a message, in one currency.
#[derive(Debug, Serialize)]
pub struct MessageRow {
    /// `channel`, then `campaign` (null for none) and `message_id` and `day` (the send's) as
    /// grouped.
    #[serde(flatten)]
    pub key: Map<String, Value>,
    pub sent: i64,
    pub delivered: i64,
    pub delivery_rate: Option<f64>,
    pub opens: i64,
    pub machine_opens: i64,
    pub open_rate: Option<f64>,
    pub clicks: i64,
    pub click_rate: Option<f64>,
    pub click_to_open_rate: Option<f64>,
    pub bounces: i64,
    pub bounce_rate: Option<f64>,
    pub unsubscribes: i64,
    pub unsubscribe_rate: Option<f64>,
    pub complaints: i64,
    pub complaint_rate: Option<f64>,
    pub orders: i64,
    pub revenue: String,
    pub revenue_per_send: Option<String>,
    pub currency: String,
}

/// The sums of a key's rollup rows.
#[derive(sqlx::FromRow)]
struct Counts {
    channel: String,
    campaign: String,
    message_id: String,
    day: Option<chrono::NaiveDate>,
    sent: i64,
    delivered: i64,
    bounced: i64,
    opens: i64,
    machine_opens: i64,
    clicks: i64,
    unsubscribes: i64,
    complaints: i64,
}

type Key = (String, String, String);

/// Messages sent on the days of the range (and what followed them, whenever it happened),
/// per channel (default), campaign or message, optionally of one channel. With *S* sent,
/// *D* delivered, *B* bounced, *O* unique human opens, *C* unique human clicks, *U*
/// unsubscribes, *X* complaints (each a count of sends), *R* the net revenue of the orders
/// credited to them:
/// - `delivery_rate` = D ÷ S; `bounce_rate` = B ÷ S;
/// - `open_rate` = O ÷ D (email only: null for SMS, which has no opens);
/// - `click_rate` = C ÷ D; `click_to_open_rate` = C ÷ O (email only);
/// - `unsubscribe_rate` = U ÷ D; `complaint_rate` = X ÷ D;
/// - `revenue_per_send` = R ÷ S, rounded to the minor unit.
///
/// Ratios are null when their denominator is 0. Amounts in two currencies are never added: a
/// key whose orders are in several currencies has a row per currency, each with the key's
/// counts; a key without orders has one row in the company's currency (`default_currency`).
/// Rows are ordered by channel, campaign, day, message and currency.
pub async fn messages(
    conn: &mut PgConnection,
    range: DateRange,
    channel: Option<MessageChannel>,
    group: MessageGroup,
    default_currency: &str,
) -> Result<Vec<MessageRow>, ReportError> {
    let (table, revenue_table, campaign, message) = match group {
        MessageGroup::Channel => (
            "rollup_message_days",
            "rollup_message_revenue_days",
            "''",
            "''",
        ),
        MessageGroup::Campaign => (
            "rollup_message_days",
            "rollup_message_revenue_days",
            "campaign",
            "''",
        ),
        MessageGroup::Message => (
            "rollup_message_sends",
            "rollup_message_orders",
            "campaign",
            "message_id",
        ),
    };
    let day = if group == MessageGroup::Message {
        "min(day)"
    } else {
        "NULL::date"
    };
    let counts: Vec<Counts> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT channel, {campaign} AS campaign, {message} AS message_id, {day} AS day,
                sum(sent)::bigint AS sent, sum(delivered)::bigint AS delivered,
                sum(bounced)::bigint AS bounced, sum(opens)::bigint AS opens,
                sum(machine_opens)::bigint AS machine_opens, sum(clicks)::bigint AS clicks,
                sum(unsubscribes)::bigint AS unsubscribes, sum(complaints)::bigint AS complaints
         FROM {table}
         WHERE day BETWEEN $1 AND $2 AND ($3::text IS NULL OR channel = $3)
         GROUP BY 1, 2, 3
         ORDER BY 1, 2, 4, 3"
    )))
    .bind(range.from())
    .bind(range.to())
    .bind(channel.map(MessageChannel::as_str))
    .fetch_all(&mut *conn)
    .await?;
    let orders: Vec<(String, String, String, String, i64, i64)> =
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT channel, {campaign}, {message}, currency::text, sum(orders)::bigint,
                    sum(net_minor)::bigint
             FROM {revenue_table}
             WHERE day BETWEEN $1 AND $2 AND ($3::text IS NULL OR channel = $3)
             GROUP BY 1, 2, 3, 4
             ORDER BY 1, 2, 3, 4"
        )))
        .bind(range.from())
        .bind(range.to())
        .bind(channel.map(MessageChannel::as_str))
        .fetch_all(&mut *conn)
        .await?;
    let mut by_key: HashMap<Key, Vec<(String, i64, i64)>> = HashMap::new();
    for (channel, campaign, message, currency, n, net) in orders {
        by_key
            .entry((channel, campaign, message))
            .or_default()
            .push((currency, n, net));
    }
    let mut rows = Vec::with_capacity(counts.len());
    for c in counts {
        let key = (c.channel.clone(), c.campaign.clone(), c.message_id.clone());
        let earned = by_key
            .remove(&key)
            .unwrap_or_else(|| vec![(default_currency.to_string(), 0, 0)]);
        for (currency, orders, net) in earned {
            rows.push(row(&c, group, currency, orders, net)?);
        }
    }
    Ok(rows)
}

fn row(
    c: &Counts,
    group: MessageGroup,
    currency: String,
    orders: i64,
    net: i64,
) -> Result<MessageRow, ReportError> {
    let email = c.channel == MessageChannel::Email.as_str();
    let mut key = Map::new();
    key.insert("channel".into(), Value::from(c.channel.clone()));
    if group != MessageGroup::Channel {
        let campaign = (!c.campaign.is_empty()).then(|| c.campaign.clone());
        key.insert("campaign".into(), Value::from(campaign));
    }
    if group == MessageGroup::Message {
        key.insert("message_id".into(), Value::from(c.message_id.clone()));
        key.insert("day".into(), Value::from(c.day.map(|d| d.to_string())));
    }
    Ok(MessageRow {
        key,
        sent: c.sent,
        delivered: c.delivered,
        delivery_rate: ratio(c.delivered, c.sent),
        opens: c.opens,
        machine_opens: c.machine_opens,
        open_rate: email.then(|| ratio(c.opens, c.delivered)).flatten(),
        clicks: c.clicks,
        click_rate: ratio(c.clicks, c.delivered),
        click_to_open_rate: email.then(|| ratio(c.clicks, c.opens)).flatten(),
        bounces: c.bounced,
        bounce_rate: ratio(c.bounced, c.sent),
        unsubscribes: c.unsubscribes,
        unsubscribe_rate: ratio(c.unsubscribes, c.delivered),
        complaints: c.complaints,
        complaint_rate: ratio(c.complaints, c.delivered),
        orders,
        revenue: money(&currency, net)?,
        revenue_per_send: divide_rounded(net, c.sent)
            .map(|m| money(&currency, m))
            .transpose()?,
        currency,
    })
}

/// `n ÷ d` rounded half away from zero to an integer; `None` when `d` is 0.
fn divide_rounded(n: i64, d: i64) -> Option<i64> {
    if d == 0 {
        return None;
    }
    let (n, d) = (i128::from(n), i128::from(d));
    let magnitude = (2 * n.abs() + d.abs()) / (2 * d.abs());
    let signed = if (n < 0) != (d < 0) {
        -magnitude
    } else {
        magnitude
    };
    Some(signed as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revenue_per_send_rounds_half_away_from_zero() {
        assert_eq!(divide_rounded(10, 4), Some(3), "2.5 → 3");
        assert_eq!(divide_rounded(9, 4), Some(2));
        assert_eq!(divide_rounded(-10, 4), Some(-3));
        assert_eq!(divide_rounded(7, 0), None);
    }
}
