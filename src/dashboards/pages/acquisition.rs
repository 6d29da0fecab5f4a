//! Acquisition & quality: sessions by channel and campaign, how many were engaged, and what
//! each channel's spend bought (revenue, ROAS), with channel and campaign filters.

use sqlx::PgConnection;

use super::{Context, day_labels, per_day};
use crate::dashboards::DashboardError;
use crate::dashboards::chart::{self, Series};
use crate::dashboards::period::Params;
use crate::dashboards::view::{Cell, Column, Content, Table, Tile, Value};
use crate::reports::format::ratio;
use crate::reports::request::DateRange;

/// Sessions of the range (filters applied).
#[derive(Debug, sqlx::FromRow)]
pub struct Totals {
    pub sessions: i64,
    pub engaged_sessions: i64,
    pub page_views: i64,
    pub spend: i64,
    pub revenue: i64,
}

impl Totals {
    pub fn qualified_rate(&self) -> Option<f64> {
        ratio(self.engaged_sessions, self.sessions)
    }

    pub fn roas(&self) -> Option<f64> {
        ratio(self.revenue, self.spend)
    }
}

/// `$5` channel, `$6` campaign (case-insensitive), each NULL for all.
const FILTER: &str =
    "($5::text IS NULL OR channel = $5) AND ($6::text IS NULL OR lower(campaign) = lower($6))";

pub async fn totals(
    conn: &mut PgConnection,
    range: DateRange,
    params: &Params,
    currency: &str,
) -> Result<Totals, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT
             (SELECT coalesce(sum(sessions), 0)::bigint FROM reporting.acquisition_daily
              WHERE day BETWEEN $3 AND $4 AND {FILTER}) AS sessions,
             (SELECT coalesce(sum(engaged_sessions), 0)::bigint FROM reporting.acquisition_daily
              WHERE day BETWEEN $3 AND $4 AND {FILTER}) AS engaged_sessions,
             (SELECT coalesce(sum(page_views), 0)::bigint FROM reporting.acquisition_daily
              WHERE day BETWEEN $3 AND $4 AND {FILTER}) AS page_views,
             (SELECT coalesce(round(sum(spend) / reporting.to_major(1, $2)), 0)::bigint
              FROM reporting.spend_daily
              WHERE currency = $2 AND day BETWEEN $3 AND $4 AND {FILTER}) AS spend,
             (SELECT coalesce(round(sum(revenue) / reporting.to_major(1, $2)), 0)::bigint
              FROM reporting.revenue_daily
              WHERE model = $1 AND currency = $2 AND day BETWEEN $3 AND $4 AND {FILTER}) AS revenue"
    )))
    .bind(params.model.as_str())
    .bind(currency)
    .bind(range.from())
    .bind(range.to())
    .bind(params.channel.as_deref())
    .bind(params.campaign.as_deref())
    .fetch_one(conn)
    .await
}

#[derive(sqlx::FromRow)]
struct Row {
    name: String,
    sessions: i64,
    engaged_sessions: i64,
    orders: f64,
    revenue: i64,
    spend: i64,
}

/// Per channel (or per campaign of the filtered channel): sessions, engaged, orders,
/// revenue (model) and spend.
async fn rows(
    conn: &mut PgConnection,
    params: &Params,
    currency: &str,
    by_campaign: bool,
) -> Result<Vec<Row>, sqlx::Error> {
    let key = if by_campaign { "campaign" } else { "channel" };
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "WITH s AS (
             SELECT {key} AS name, sum(sessions)::bigint AS sessions,
                    sum(engaged_sessions)::bigint AS engaged_sessions
             FROM reporting.acquisition_daily
             WHERE day BETWEEN $3 AND $4 AND {FILTER}
             GROUP BY 1
         ), r AS (
             SELECT {key} AS name, sum(orders) AS orders, sum(revenue) AS revenue
             FROM reporting.revenue_daily
             WHERE model = $1 AND currency = $2 AND day BETWEEN $3 AND $4 AND {FILTER}
             GROUP BY 1
         ), p AS (
             SELECT {key} AS name, sum(spend) AS spend
             FROM reporting.spend_daily
             WHERE currency = $2 AND day BETWEEN $3 AND $4 AND {FILTER}
             GROUP BY 1
         )
         SELECT coalesce(nullif(name, ''), '(none)') AS name,
                coalesce(s.sessions, 0) AS sessions,
                coalesce(s.engaged_sessions, 0) AS engaged_sessions,
                round(coalesce(r.orders, 0), 2)::float8 AS orders,
                coalesce(round(r.revenue / reporting.to_major(1, $2)), 0)::bigint AS revenue,
                coalesce(round(p.spend / reporting.to_major(1, $2)), 0)::bigint AS spend
         FROM s FULL JOIN r USING (name) FULL JOIN p USING (name)
         ORDER BY 2 DESC, 5 DESC, 1
         LIMIT 200"
    )))
    .bind(params.model.as_str())
    .bind(currency)
    .bind(params.range.from())
    .bind(params.range.to())
    .bind(params.channel.as_deref())
    .bind(params.campaign.as_deref())
    .fetch_all(conn)
    .await
}

async fn sessions_per_day(
    conn: &mut PgConnection,
    range: DateRange,
    params: &Params,
) -> Result<(Vec<f64>, Vec<f64>), sqlx::Error> {
    let rows: Vec<(chrono::NaiveDate, f64, f64)> = sqlx::query_as(
        "SELECT day, sum(sessions)::float8, sum(engaged_sessions)::float8
         FROM reporting.acquisition_daily
         WHERE day BETWEEN $1 AND $2 AND ($3::text IS NULL OR channel = $3)
           AND ($4::text IS NULL OR lower(campaign) = lower($4))
         GROUP BY day",
    )
    .bind(range.from())
    .bind(range.to())
    .bind(params.channel.as_deref())
    .bind(params.campaign.as_deref())
    .fetch_all(conn)
    .await?;
    let sessions: Vec<_> = rows.iter().map(|(d, s, _)| (*d, *s)).collect();
    let engaged: Vec<_> = rows.iter().map(|(d, _, e)| (*d, *e)).collect();
    Ok((per_day(range, &sessions), per_day(range, &engaged)))
}

async fn channels_seen(
    conn: &mut PgConnection,
    range: DateRange,
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT channel FROM reporting.acquisition_daily WHERE day BETWEEN $1 AND $2
         GROUP BY channel ORDER BY sum(sessions) DESC, channel",
    )
    .bind(range.from())
    .bind(range.to())
    .fetch_all(conn)
    .await
}

pub async fn load(
    conn: &mut PgConnection,
    params: &Params,
    context: &Context,
) -> Result<Content, DashboardError> {
    let currency = context.currency.as_str();
    let now = totals(&mut *conn, params.range, params, currency).await?;
    let before = match params.previous {
        Some(previous) => Some(totals(&mut *conn, previous, params, currency).await?),
        None => None,
    };
    let money = |minor: i64| Value::money(Some(minor), currency);
    let tile = |key, f: &dyn Fn(&Totals) -> Value| Tile::new(key, f(&now), before.as_ref().map(f));
    let mut content = Content {
        tiles: vec![
            tile("sessions", &|t| Value::Count(t.sessions as f64)),
            tile("engaged_sessions", &|t| {
                Value::Count(t.engaged_sessions as f64)
            }),
            tile("qualified_rate", &|t| Value::rate(t.qualified_rate())),
            tile("page_views", &|t| Value::Count(t.page_views as f64)),
            tile("spend", &|t| money(t.spend)),
            tile("roas", &|t| Value::multiple(t.roas())),
        ],
        filters: vec!["channel", "campaign", "model"],
        channels: channels_seen(&mut *conn, params.range).await?,
        ..Content::default()
    };
    if now.sessions == 0 && now.spend == 0 {
        content.empty = Some(
            "No sessions or ad spend in this range for these filters. Check the snippet is on \
             your pages (the development page `lux serve --dev-page` shows it working), import \
             spend with `lux import spend`, or clear the filters."
                .into(),
        );
        return Ok(content);
    }
    let (sessions, engaged) = sessions_per_day(&mut *conn, params.range, params).await?;
    content.charts.push(chart::time_series(
        "sessions-line",
        "Sessions and engaged sessions per day",
        &day_labels(params.range),
        &[
            Series {
                name: "Sessions".into(),
                values: sessions,
                comparison: false,
            },
            Series {
                name: "Engaged sessions".into(),
                values: engaged,
                comparison: false,
            },
        ],
        &|v| Value::Count(v.round()).display(),
    ));
    let by_campaign = params.channel.is_some();
    let rows = rows(&mut *conn, params, currency, by_campaign).await?;
    let bars: Vec<(String, f64)> = rows
        .iter()
        .filter(|r| r.sessions > 0)
        .take(10)
        .map(|r| (r.name.clone(), r.sessions as f64))
        .collect();
    content.charts.push(chart::bars(
        "sessions-bars",
        if by_campaign {
            "Sessions by campaign"
        } else {
            "Sessions by channel"
        },
        &bars,
        &|v| Value::Count(v).display(),
    ));
    let quality: Vec<(String, f64)> = rows
        .iter()
        .filter(|r| r.sessions > 0)
        .take(10)
        .map(|r| {
            (
                r.name.clone(),
                ratio(r.engaged_sessions, r.sessions).unwrap_or(0.0),
            )
        })
        .collect();
    content.charts.push(chart::bars(
        "quality-bars",
        "Qualified session rate",
        &quality,
        &|v| Value::Rate(v).display(),
    ));
    content.tables.push(Table {
        key: if by_campaign { "campaigns" } else { "channels" },
        title: if by_campaign {
            "Campaigns".into()
        } else {
            "Channels".into()
        },
        columns: vec![
            Column::text(
                if by_campaign { "Campaign" } else { "Channel" },
                "The session's acquisition (for revenue: the touch credited under the model).",
            ),
            Column::metric("sessions"),
            Column::metric("engaged_sessions"),
            Column::metric("qualified_rate"),
            Column::metric("attributed_orders"),
            Column::metric("revenue"),
            Column::metric("spend"),
            Column::metric("roas"),
        ],
        rows: rows
            .iter()
            .map(|r| {
                vec![
                    Cell::Text(r.name.clone()),
                    Cell::Value(Value::Count(r.sessions as f64)),
                    Cell::Value(Value::Count(r.engaged_sessions as f64)),
                    Cell::Value(Value::rate(ratio(r.engaged_sessions, r.sessions))),
                    Cell::Value(Value::Count(r.orders)),
                    Cell::Value(money(r.revenue)),
                    Cell::Value(money(r.spend)),
                    Cell::Value(Value::multiple(ratio(r.revenue, r.spend))),
                ]
            })
            .collect(),
    });
    Ok(content)
}
