-- Small rollups for the reports that read per-order or per-customer rows (issue 13, slow
-- reports): time to conversion, repeat purchase and LTV sum a few thousand rows of these
-- instead of scanning one row per order or per customer. Each is derived from the rollups
-- that exist already (rollup_conversions, rollup_customer_days, rollup_customers,
-- rollup_customer_windows) by the rollups job; the formulas are in docs/metrics.md. Like the
-- other rollups: one company per row, row-level security, readable by lux_reader.

-- Orders per local day and conversion-time bin (a bin is [min_seconds, the next bound); the
-- bounds are `rollups::conversion_bin_bounds()`, and every bucket bound of the
-- time-to-conversion report is one of them). Daily: recomputed with the day's
-- rollup_conversions. The report counts its buckets from these rows and finds each
-- percentile's bin here, then reads only that bin's rows of rollup_conversions (by the index
-- below) for the exact value.
CREATE TABLE rollup_conversion_bins (
    company_id   uuid NOT NULL,
    day          date NOT NULL,
    min_seconds  bigint NOT NULL CHECK (min_seconds >= 0),
    orders       integer NOT NULL CHECK (orders > 0),
    PRIMARY KEY (company_id, day, min_seconds)
);
CREATE INDEX rollup_conversions_by_seconds ON rollup_conversions (company_id, seconds, day);

-- One row per customer and local day with orders (currencies together), with the customer's
-- previous order days: what rollup_repeat_days is counted from. Refreshed per customer with
-- rollup_customers.
CREATE TABLE rollup_customer_order_days (
    company_id     uuid NOT NULL,
    customer_id    uuid NOT NULL,
    day            date NOT NULL,
    orders         integer NOT NULL CHECK (orders > 0),
    -- The customer's order day before this one, its orders, and the one before that (NULL
    -- when there is none).
    prev_day       date,
    prev_orders    integer,
    prev_prev_day  date,
    PRIMARY KEY (company_id, customer_id, day)
);
CREATE INDEX rollup_customer_order_days_by_day ON rollup_customer_order_days (company_id, day);

-- Customer order days counted by day and by an earlier order day `since`, so that the
-- customers with orders in any range [F, T], and those with two or more, are sums over the
-- range's days (docs/metrics.md, repeat purchase):
-- - customers: customer days on `day` whose previous order day is `since` ('-infinity' for a
--   first order);
-- - multi: of those, the ones with 2 or more orders on `day`;
-- - prev_single: of those, the ones whose previous order day had exactly 1 order;
-- - prev_prev_single: customer days on `day` whose order day before the previous one is
--   `since` and whose previous order day had exactly 1 order.
-- Recomputed for every order day of the customers the job refreshes.
CREATE TABLE rollup_repeat_days (
    company_id        uuid NOT NULL,
    day               date NOT NULL,
    since             date NOT NULL,
    customers         integer NOT NULL,
    multi             integer NOT NULL,
    prev_single       integer NOT NULL,
    prev_prev_single  integer NOT NULL,
    PRIMARY KEY (company_id, day, since)
);

-- Per first order day (rollup_customers.first_day): the customers whose first order was that
-- day and those of them with 2 or more orders in all.
CREATE TABLE rollup_cohort_days (
    company_id        uuid NOT NULL,
    first_day         date NOT NULL,
    customers         integer NOT NULL,
    repeat_customers  integer NOT NULL,
    PRIMARY KEY (company_id, first_day)
);

-- Per first order day and currency: the customers (of rollup_customer_windows: one per
-- customer and currency they ordered in) and the sums of their LTV windows' net revenue.
CREATE TABLE rollup_cohort_windows (
    company_id  uuid NOT NULL,
    first_day   date NOT NULL,
    currency    char(3) NOT NULL,
    customers   integer NOT NULL,
    net_30      bigint NOT NULL,
    net_90      bigint NOT NULL,
    net_180     bigint NOT NULL,
    net_365     bigint NOT NULL,
    PRIMARY KEY (company_id, first_day, currency)
);

-- Per first order day, currency and calendar month of the order day: the net revenue
-- (rollup_customer_days) of the customers whose first order was that day.
CREATE TABLE rollup_cohort_months (
    company_id  uuid NOT NULL,
    first_day   date NOT NULL,
    currency    char(3) NOT NULL,
    -- The first day of the month.
    month       date NOT NULL CHECK (month = date_trunc('month', month)::date),
    net_minor   bigint NOT NULL,
    PRIMARY KEY (company_id, first_day, currency, month)
);

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['rollup_conversion_bins', 'rollup_customer_order_days',
                             'rollup_repeat_days', 'rollup_cohort_days',
                             'rollup_cohort_windows', 'rollup_cohort_months']
    LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY tenant ON %I USING (company_id = (SELECT lux_reader_company()))
                        WITH CHECK (company_id = (SELECT lux_reader_company()))', t);
        EXECUTE format('GRANT SELECT ON %I TO lux_reader', t);
        EXECUTE format('GRANT SELECT, INSERT, DELETE ON %I TO lux_app', t);
    END LOOP;
END
$$;

-- Filled by the next rollups run: the rollup rules' version went up with these tables
-- (rollups::settings::RULES_VERSION 2), so that run is a full rebuild for every company.
