-- The email/SMS dashboard's views (SPEC §8.5), the same rollups as the `messages` report:
-- counts by the send's day, channel and campaign, and the revenue credited to those sends.
-- Company-scoped like the other `reporting` views: security_invoker, so the rollups'
-- row-level security applies to whoever queries them (a `lux_reader` login: its company).

-- Sends of the day and what followed them (opens and clicks are unique human ones: machine
-- opens are in their own column).
CREATE VIEW reporting.messages_daily WITH (security_invoker = true) AS
    SELECT day, channel, campaign, sent, delivered, bounced, opens, machine_opens, clicks,
           unsubscribes, complaints
    FROM rollup_message_days;

-- Orders and net revenue credited to the sends of the day, per currency (major units).
CREATE VIEW reporting.message_revenue_daily WITH (security_invoker = true) AS
    SELECT day, channel, campaign, currency::text AS currency, orders,
           reporting.to_major(net_minor, currency::text) AS revenue
    FROM rollup_message_revenue_days;

GRANT SELECT ON reporting.messages_daily, reporting.message_revenue_daily TO lux_reader;
