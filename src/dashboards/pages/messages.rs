//! Email & SMS: what the sends of the range did (delivery, human opens, clicks,
//! unsubscribes, complaints) and the revenue credited to them, from the `messages` report's
//! own function (so a tile is the report's number), with a channel filter (`email`, `sms`)
//! and a campaign filter (the report's rows of that campaign).
//! The daily line reads `reporting.messages_daily`, the view Metabase reads.

use std::collections::HashSet;

use sqlx::PgConnection;

use super::{Context, day_labels, minor_units, per_day};
use crate::dashboards::DashboardError;
use crate::dashboards::chart::{self, Series};
use crate::dashboards::period::Params;
use crate::dashboards::view::{Cell, Column, Content, Table, Tile, Value};
use crate::reports::format::ratio;
use crate::reports::messages::{MessageRow, messages};
use crate::reports::request::{DateRange, MessageChannel, MessageGroup};

/// The sums of the report's rows over the range (revenue in minor units of the company's
/// currency; orders in other currencies are not added to it).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Totals {
    pub sent: i64,
    pub delivered: i64,
    /// Email only: SMS has no opens, so the open rate's denominator is email's delivered.
    pub email_delivered: i64,
    pub opens: i64,
    pub clicks: i64,
    pub unsubscribes: i64,
    pub complaints: i64,
    pub orders: i64,
    pub revenue: i64,
}

impl Totals {
    /// Adds the report's rows. A key with orders in several currencies has one row per
    /// currency, each with the key's counts: counts are taken once per key.
    pub fn of(rows: &[MessageRow], currency: &str) -> Totals {
        let mut totals = Totals::default();
        let mut seen = HashSet::new();
        for row in rows {
            let key = serde_json::Value::Object(row.key.clone()).to_string();
            if seen.insert(key) {
                totals.sent += row.sent;
                totals.delivered += row.delivered;
                totals.opens += row.opens;
                totals.clicks += row.clicks;
                totals.unsubscribes += row.unsubscribes;
                totals.complaints += row.complaints;
                if row.key.get("channel").and_then(|c| c.as_str())
                    == Some(MessageChannel::Email.as_str())
                {
                    totals.email_delivered += row.delivered;
                }
            }
            if row.currency == currency {
                totals.orders += row.orders;
                totals.revenue += minor_units(&row.revenue);
            }
        }
        totals
    }

    pub fn delivery_rate(&self) -> Option<f64> {
        ratio(self.delivered, self.sent)
    }

    pub fn open_rate(&self) -> Option<f64> {
        ratio(self.opens, self.email_delivered)
    }

    pub fn click_rate(&self) -> Option<f64> {
        ratio(self.clicks, self.delivered)
    }

    pub fn unsubscribe_rate(&self) -> Option<f64> {
        ratio(self.unsubscribes, self.delivered)
    }

    pub fn complaint_rate(&self) -> Option<f64> {
        ratio(self.complaints, self.delivered)
    }

    /// Revenue ÷ sends, rounded half away from zero to the minor unit (as the report).
    pub fn revenue_per_send(&self) -> Option<i64> {
        (self.sent != 0).then(|| {
            let (n, d) = (i128::from(self.revenue), i128::from(self.sent));
            let magnitude = (2 * n.abs() + d) / (2 * d);
            (if n < 0 { -magnitude } else { magnitude }) as i64
        })
    }
}

/// The channel filter: `email`, `sms` (any case), or none for both.
fn channel(params: &Params) -> Result<Option<MessageChannel>, DashboardError> {
    match params.channel.as_deref() {
        None | Some("") => Ok(None),
        Some(text) => MessageChannel::parse(&text.to_lowercase())
            .map(Some)
            .ok_or_else(|| {
                DashboardError::BadRequest(format!(
                    "channel={text:?}: the messages page's channels are email and sms"
                ))
            }),
    }
}

/// Sends and unique human clicks per day, from `reporting.messages_daily`, of one channel
/// and one campaign (compared case-insensitively) when filtered.
async fn per_day_counts(
    conn: &mut PgConnection,
    range: DateRange,
    channel: Option<MessageChannel>,
    campaign: Option<&str>,
) -> Result<(Vec<f64>, Vec<f64>), sqlx::Error> {
    let rows: Vec<(chrono::NaiveDate, f64, f64)> = sqlx::query_as(
        "SELECT day, sum(sent)::float8, sum(clicks)::float8
         FROM reporting.messages_daily
         WHERE day BETWEEN $1 AND $2 AND ($3::text IS NULL OR channel = $3)
           AND ($4::text IS NULL OR lower(campaign) = lower($4))
         GROUP BY day",
    )
    .bind(range.from())
    .bind(range.to())
    .bind(channel.map(MessageChannel::as_str))
    .bind(campaign)
    .fetch_all(conn)
    .await?;
    let sent: Vec<_> = rows.iter().map(|(d, s, _)| (*d, *s)).collect();
    let clicks: Vec<_> = rows.iter().map(|(d, _, c)| (*d, *c)).collect();
    Ok((per_day(range, &sent), per_day(range, &clicks)))
}

/// A row's campaign (`None` for sends recorded without one).
fn campaign_of(row: &MessageRow) -> Option<&str> {
    row.key.get("campaign").and_then(|c| c.as_str())
}

/// The report's rows (grouped by campaign) of `campaign` only, compared case-insensitively
/// as the chart's SQL does; all of them without the filter. The tiles, bars and table are
/// sums of these rows, so a filtered tile is the report's row for that campaign.
fn of_campaign(rows: Vec<MessageRow>, campaign: Option<&str>) -> Vec<MessageRow> {
    match campaign {
        None => rows,
        Some(wanted) => rows
            .into_iter()
            .filter(|r| campaign_of(r).is_some_and(|c| c.eq_ignore_ascii_case(wanted)))
            .collect(),
    }
}

pub async fn load(
    conn: &mut PgConnection,
    params: &Params,
    context: &Context,
) -> Result<Content, DashboardError> {
    let currency = context.currency.as_str();
    let channel = channel(params)?;
    let campaign = params.campaign.as_deref();
    let all = messages(
        &mut *conn,
        params.range,
        channel,
        MessageGroup::Campaign,
        currency,
    )
    .await?;
    // The campaign filter offers the campaigns with sends in the range (of the channel
    // chosen), and the one asked for even when it has none.
    let mut campaigns: Vec<String> = all
        .iter()
        .filter_map(campaign_of)
        .map(str::to_string)
        .collect();
    if let Some(wanted) = campaign
        && !campaigns.iter().any(|c| c.eq_ignore_ascii_case(wanted))
    {
        campaigns.push(wanted.to_string());
    }
    campaigns.sort();
    campaigns.dedup();
    let rows = of_campaign(all, campaign);
    let now = Totals::of(&rows, currency);
    let before = match params.previous {
        Some(previous) => {
            let rows = messages(
                &mut *conn,
                previous,
                channel,
                MessageGroup::Campaign,
                currency,
            )
            .await?;
            Some(Totals::of(&of_campaign(rows, campaign), currency))
        }
        None => None,
    };
    let money = |minor: Option<i64>| Value::money(minor, currency);
    let tile = |key, f: &dyn Fn(&Totals) -> Value| Tile::new(key, f(&now), before.as_ref().map(f));
    let mut content = Content {
        tiles: vec![
            tile("sent", &|t| Value::Count(t.sent as f64)),
            tile("delivery_rate", &|t| Value::rate(t.delivery_rate())),
            tile("open_rate", &|t| Value::rate(t.open_rate())),
            tile("message_click_rate", &|t| Value::rate(t.click_rate())),
            tile("unsubscribe_rate", &|t| Value::rate(t.unsubscribe_rate())),
            tile("complaint_rate", &|t| Value::rate(t.complaint_rate())),
            tile("message_revenue", &|t| money(Some(t.revenue))),
            tile("revenue_per_send", &|t| money(t.revenue_per_send())),
        ],
        filters: vec!["channel", "campaign"],
        channels: MessageChannel::ALL
            .iter()
            .map(|c| c.as_str().to_string())
            .collect(),
        campaigns,
        ..Content::default()
    };
    if now.sent == 0 {
        content.empty = Some(match campaign {
            Some(campaign) => format!(
                "No sends of campaign {campaign:?} in this range. Pick another campaign \
                 (or all campaigns), or widen the range."
            ),
            None => "No email or SMS sent in this range. Record sends with POST \
                     /api/v1/messages/sends (or your ESP's webhooks), let the rollups run, \
                     or widen the range."
                .into(),
        });
        return Ok(content);
    }
    let (sent, clicks) = per_day_counts(&mut *conn, params.range, channel, campaign).await?;
    content.charts.push(chart::time_series(
        "messages-line",
        "Sends and human clicks per day (by the send's day)",
        &day_labels(params.range),
        &[
            Series {
                name: "Sent".into(),
                values: sent,
                comparison: false,
            },
            Series {
                name: "Clicks".into(),
                values: clicks,
                comparison: false,
            },
        ],
        &|v| Value::Count(v.round()).display(),
    ));
    // The ten campaigns that earned most, most first.
    let bars = super::largest(
        rows.iter()
            .filter(|r| r.currency == currency)
            .map(|r| (campaign_name(r), minor_units(&r.revenue) as f64))
            .filter(|(_, v)| *v > 0.0)
            .collect(),
        10,
    );
    if !bars.is_empty() {
        content.charts.push(chart::bars(
            "messages-revenue-bars",
            "Revenue by campaign",
            &bars,
            &super::money_axis(currency),
        ));
    }
    content.tables.push(campaign_table(&rows));
    Ok(content)
}

fn campaign_name(row: &MessageRow) -> String {
    let channel = row
        .key
        .get("channel")
        .and_then(|c| c.as_str())
        .unwrap_or("");
    let campaign = row
        .key
        .get("campaign")
        .and_then(|c| c.as_str())
        .unwrap_or("(none)");
    format!("{campaign} ({channel})")
}

fn campaign_table(rows: &[MessageRow]) -> Table {
    let text = |key: &str, row: &MessageRow| {
        row.key
            .get(key)
            .and_then(|v| v.as_str())
            .unwrap_or("(none)")
            .to_string()
    };
    Table {
        key: "campaigns",
        title: "Campaigns".into(),
        columns: vec![
            Column::text("Channel", "email or sms."),
            Column::text(
                "Campaign",
                "The campaign the sends were recorded with ((none) for none).",
            ),
            Column::metric("sent"),
            Column::metric("delivery_rate"),
            Column::metric("open_rate"),
            Column::metric("message_click_rate"),
            Column::metric("unsubscribe_rate"),
            Column::metric("complaint_rate"),
            Column::metric("message_orders"),
            Column::metric("message_revenue"),
            Column::metric("revenue_per_send"),
            Column::text("Currency", "The currency of the row's revenue."),
        ],
        rows: rows
            .iter()
            .map(|r| {
                vec![
                    Cell::Text(text("channel", r)),
                    Cell::Text(text("campaign", r)),
                    Cell::Value(Value::Count(r.sent as f64)),
                    Cell::Value(Value::rate(r.delivery_rate)),
                    Cell::Value(Value::rate(r.open_rate)),
                    Cell::Value(Value::rate(r.click_rate)),
                    Cell::Value(Value::rate(r.unsubscribe_rate)),
                    Cell::Value(Value::rate(r.complaint_rate)),
                    Cell::Value(Value::Count(r.orders as f64)),
                    Cell::Value(Value::amount(Some(&r.revenue), &r.currency)),
                    Cell::Value(Value::amount(r.revenue_per_send.as_deref(), &r.currency)),
                    Cell::Text(r.currency.clone()),
                ]
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_as_the_report_writes_them_are_exact_minor_units() {
        assert_eq!(minor_units("123.45"), 12_345);
        assert_eq!(minor_units("20000"), 20_000);
        assert_eq!(minor_units("-0.05"), -5);
        assert_eq!(minor_units("1.500"), 1_500);
    }

    #[test]
    fn revenue_per_send_rounds_like_the_report() {
        let t = Totals {
            sent: 4,
            revenue: 10,
            ..Totals::default()
        };
        assert_eq!(t.revenue_per_send(), Some(3));
        assert_eq!(Totals::default().revenue_per_send(), None);
    }
}
