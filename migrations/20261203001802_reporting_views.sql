-- The `reporting` schema (SPEC §8.5): the dashboards' numbers as views, for analysts'
-- tools (Metabase: docs/metabase.md) and for the web app's pages, which read the same views.
--
-- Every view reads rollup tables only (and ad_spend, its own rollup), and runs with the
-- privileges of whoever queries it (`security_invoker`): for a `lux_reader` login the
-- rollups' row-level security (`lux_reader_company()`) keeps it to its company, and the
-- service's reader sees the company of its transaction. Money is in major units of the row's
-- currency, exact (`numeric`): the fractional attribution models give fractions of a cent,
-- so round only after summing, as the reports do. Days are the company's local days.

CREATE SCHEMA reporting;

-- Minor units to major units of `currency` (ISO 4217 exponents; the same lists as
-- commerce::money). A multiplication, so exact.
CREATE FUNCTION reporting.to_major(minor numeric, currency text) RETURNS numeric
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT minor * CASE
        WHEN currency IN ('BIF', 'CLP', 'DJF', 'GNF', 'ISK', 'JPY', 'KMF', 'KRW', 'PYG', 'RWF',
                          'UGX', 'UYI', 'VND', 'VUV', 'XAF', 'XOF', 'XPF') THEN 1::numeric
        WHEN currency IN ('BHD', 'IQD', 'JOD', 'KWD', 'LYD', 'OMR', 'TND') THEN 0.001
        ELSE 0.01 END $$;

-- The channels a company owns the audience of (no media bought per message).
CREATE FUNCTION reporting.is_owned_channel(channel text) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT channel IN ('Email', 'SMS', 'Mobile Push Notifications') $$;

-- Sessions by day and acquisition (bots excluded by the rollups job).
CREATE VIEW reporting.sessions_daily WITH (security_invoker = true) AS
    SELECT day, channel, source, medium, campaign, sessions, engaged_sessions, page_views,
           visitors
    FROM rollup_sessions_daily;

-- Attributed orders and revenue by day, model and the touch credited.
CREATE VIEW reporting.revenue_daily WITH (security_invoker = true) AS
    SELECT day, model, channel, source, medium, campaign, creative, currency::text AS currency,
           orders, new_customers,
           reporting.to_major(gross_minor, currency::text) AS gross,
           reporting.to_major(refunded_minor, currency::text) AS refunds,
           reporting.to_major(net_minor, currency::text) AS revenue
    FROM rollup_revenue_daily;

-- Ad spend by day, platform, campaign and ad.
CREATE VIEW reporting.spend_daily WITH (security_invoker = true) AS
    SELECT day, platform, channel, campaign, ad_id, currency::text AS currency, spend,
           impressions, clicks
    FROM ad_spend;

-- Executive: per day, model and currency, the orders, revenue, new customers and
-- owned-channel revenue, and the day's ad spend (the same on every model's row). Sessions
-- are in reporting.sessions_daily (they have no currency). Totals over all channels do not
-- depend on the model (each order's credits add up to 1); owned-channel revenue does.
CREATE VIEW reporting.executive_daily WITH (security_invoker = true) AS
    -- A union grouped by (day, model, currency) rather than a full join of revenue and
    -- spend: a filter on those columns then reaches both tables' primary keys (a join on
    -- coalesce(...) would read every row of the company before filtering).
    SELECT day, model, currency,
           sum(orders) AS orders,
           sum(new_customers) AS new_customers,
           reporting.to_major(sum(net_minor), currency) AS revenue,
           reporting.to_major(sum(owned_minor), currency) AS owned_revenue,
           sum(spend) AS spend
    FROM (
        SELECT day, model, currency::text AS currency, orders, new_customers, net_minor,
               CASE WHEN reporting.is_owned_channel(channel) THEN net_minor ELSE 0 END
                   AS owned_minor,
               0::numeric AS spend
        FROM rollup_revenue_daily
        UNION ALL
        SELECT s.day, m.model, s.currency::text, 0, 0, 0, 0, s.spend
        FROM ad_spend s
        CROSS JOIN unnest(ARRAY['first_touch', 'last_touch', 'linear', 'time_decay',
                                'position_based', 'last_non_direct']) AS m(model)
    ) facts
    GROUP BY day, model, currency;

-- Funnel: sessions that reached each step, by day of the session's start.
CREATE VIEW reporting.funnel_daily WITH (security_invoker = true) AS
    SELECT day, funnel, step, event_name, sessions
    FROM rollup_funnel_daily;

-- Acquisition & quality: per day and acquisition, sessions, engaged (qualified) sessions and
-- page views. The revenue credited to each channel and campaign is in reporting.revenue_daily,
-- the spend bought for it in reporting.spend_daily (docs/metabase.md joins them).
CREATE VIEW reporting.acquisition_daily WITH (security_invoker = true) AS
    SELECT day, channel, source, medium, campaign, sessions, engaged_sessions, page_views,
           visitors
    FROM rollup_sessions_daily;

-- Retention: per first-order day, the cohort's customers and those with 2+ orders.
CREATE VIEW reporting.cohort_customers WITH (security_invoker = true) AS
    SELECT first_day, date_trunc('month', first_day)::date AS cohort_month, customers,
           repeat_customers
    FROM rollup_cohort_days;

-- Retention: per first-order day, currency and calendar month, the cohort's net revenue in
-- that month, with the months since the cohort's month; and the cohort's customers in
-- that currency (cohort_size: the same on every month's row of a first day).
CREATE VIEW reporting.cohort_revenue WITH (security_invoker = true) AS
    SELECT m.first_day, date_trunc('month', m.first_day)::date AS cohort_month,
           m.currency::text AS currency, m.month,
           ((extract(year FROM m.month) - extract(year FROM m.first_day)) * 12
            + extract(month FROM m.month) - extract(month FROM m.first_day))::int
               AS months_since,
           reporting.to_major(m.net_minor, m.currency::text) AS revenue,
           w.customers AS cohort_size
    FROM rollup_cohort_months m
    JOIN rollup_cohort_windows w USING (company_id, first_day, currency);

-- Attribution paths: per day of the order, the path of channels and its orders and revenue.
CREATE VIEW reporting.paths_daily WITH (security_invoker = true) AS
    SELECT day, path, steps, currency::text AS currency, orders,
           reporting.to_major(net_minor, currency::text) AS revenue
    FROM rollup_paths_daily;

GRANT USAGE ON SCHEMA reporting TO lux_reader;
GRANT SELECT ON ALL TABLES IN SCHEMA reporting TO lux_reader;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA reporting TO lux_reader;
