-- The creative dashboard's views (SPEC §8.5), the rollups the `creatives` report reads:
-- delivery per creative and day, spend per currency, revenue per model and currency (major
-- units, exact). Company-scoped like the other `reporting` views (security_invoker: the
-- rollups' row-level security applies to whoever queries them).

CREATE VIEW reporting.creative_daily WITH (security_invoker = true) AS
    SELECT day, creative_id, impressions, clicks, reach, reach_impressions, sessions
    FROM rollup_creative_days;

CREATE VIEW reporting.creative_spend_daily WITH (security_invoker = true) AS
    SELECT day, creative_id, currency::text AS currency,
           reporting.to_major(spend_minor, currency::text) AS spend
    FROM rollup_creative_spend_days;

CREATE VIEW reporting.creative_revenue_daily WITH (security_invoker = true) AS
    SELECT day, creative_id, model, currency::text AS currency, orders,
           reporting.to_major(net_minor, currency::text) AS revenue
    FROM rollup_creative_revenue_days;

GRANT SELECT ON reporting.creative_daily, reporting.creative_spend_daily,
                reporting.creative_revenue_daily TO lux_reader;
