-- Daily rollups, ad spend and the reader's view of them (SPEC §7).
--
-- Every dashboard number and every report of the metrics API comes from the tables below,
-- never from raw events: `lux_reader` (which the API's report queries run as) can read these
-- and nothing else. Each rollup row belongs to one company and one local day in the
-- company's time zone; the rollups job recomputes whole days (delete the day's rows, insert
-- them again), so a day's rows depend only on the data of that day and re-running gives the
-- same rows. Text dimensions are '' rather than NULL when absent, so they can be keys.

-- Ad spend, impressions and clicks as imported from the ad platforms' CSV exports (Google
-- Ads, Meta Ads, or the generic layout). Already one row per day, platform, campaign and ad:
-- it is its own rollup, so the reader reads it directly. Re-importing a row replaces it.
CREATE TABLE ad_spend (
    company_id   uuid NOT NULL REFERENCES companies,
    -- The company's local day the spend belongs to.
    day          date NOT NULL,
    -- 'google_ads', 'meta_ads', or what the generic CSV says (lower case).
    platform     text NOT NULL CHECK (platform ~ '^[a-z0-9_.-]{1,64}$'),
    campaign     text NOT NULL DEFAULT '' CHECK (length(campaign) <= 500),
    -- The ad (creative) id; '' when the export is by campaign only.
    ad_id        text NOT NULL DEFAULT '' CHECK (length(ad_id) <= 200),
    -- The channel the spend buys, in the names sessions use ('Paid Search', 'Paid Social').
    channel      text NOT NULL CHECK (length(channel) BETWEEN 1 AND 100),
    source       text NOT NULL DEFAULT '',
    medium       text NOT NULL DEFAULT '',
    currency     char(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    -- Major units, exact: Google reports micros, Meta decimals.
    spend        numeric(20, 6) NOT NULL CHECK (spend >= 0),
    impressions  bigint NOT NULL DEFAULT 0 CHECK (impressions >= 0),
    clicks       bigint NOT NULL DEFAULT 0 CHECK (clicks >= 0),
    -- When this row was last written with different values: rollups redo that day.
    imported_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (company_id, day, platform, campaign, ad_id)
);
CREATE INDEX ad_spend_by_import ON ad_spend (company_id, imported_at);

-- Sessions by local day of their start and by acquisition (the session's own channel, source,
-- medium and campaign). Bot sessions are left out. `visitors` counts distinct visitors of the
-- row's day and acquisition, so it does not add up across days or rows.
CREATE TABLE rollup_sessions_daily (
    company_id        uuid NOT NULL,
    day               date NOT NULL,
    channel           text NOT NULL,
    source            text NOT NULL,
    medium            text NOT NULL,
    campaign          text NOT NULL,
    sessions          integer NOT NULL,
    -- Sessions that were engaged (SPEC §7; thresholds per company): engaged time, page
    -- views, or a key event.
    engaged_sessions  integer NOT NULL,
    visitors          integer NOT NULL,
    page_views        bigint NOT NULL,
    PRIMARY KEY (company_id, day, channel, source, medium, campaign)
);

-- Funnels per session, by local day of the session's start: how many sessions reached each
-- step, steps taken in order (see rollups::funnel).
CREATE TABLE rollup_funnel_daily (
    company_id  uuid NOT NULL,
    day         date NOT NULL,
    funnel      text NOT NULL,
    -- 1 for the first step.
    step        integer NOT NULL CHECK (step >= 1),
    event_name  text NOT NULL,
    sessions    integer NOT NULL,
    PRIMARY KEY (company_id, day, funnel, step)
);

-- Orders and revenue by local day of the order's placement, by attribution model and by the
-- touch credited (channel, source, medium, campaign, and creative: the touch session's
-- utm_content). Amounts are the order's amounts times the touch's credit, in minor units of
-- the order's currency, so they are fractional for the fractional models. Cancelled and
-- failed orders are left out; refunds reduce `net_minor` on the order's own day.
CREATE TABLE rollup_revenue_daily (
    company_id      uuid NOT NULL,
    day             date NOT NULL,
    model           text NOT NULL,
    channel         text NOT NULL,
    source          text NOT NULL,
    medium          text NOT NULL,
    campaign        text NOT NULL,
    creative        text NOT NULL,
    currency        char(3) NOT NULL,
    orders          numeric NOT NULL,
    gross_minor     numeric NOT NULL,
    refunded_minor  numeric NOT NULL,
    net_minor       numeric NOT NULL,
    -- Orders that were their customer's first (credit-weighted): new customers.
    new_customers   numeric NOT NULL,
    PRIMARY KEY (company_id, day, model, channel, source, medium, campaign, creative, currency)
);

-- One row per attributed order with a first touch: how long from that touch to the purchase.
-- Kept per order because medians and percentiles do not add up across days.
CREATE TABLE rollup_conversions (
    company_id     uuid NOT NULL,
    day            date NOT NULL,
    order_id       uuid NOT NULL,
    -- The first touch's channel.
    channel        text NOT NULL,
    seconds        bigint NOT NULL CHECK (seconds >= 0),
    PRIMARY KEY (company_id, day, order_id)
);

-- Orders and net revenue per customer and local day: what repeat purchase rate and LTV (rolling
-- and by cohort) are computed from. A customer's first order day is the least day here.
-- Cancelled and failed orders are left out; fully refunded ones count as orders worth 0.
CREATE TABLE rollup_customer_days (
    company_id   uuid NOT NULL,
    day          date NOT NULL,
    customer_id  uuid NOT NULL,
    currency     char(3) NOT NULL,
    orders       integer NOT NULL,
    net_minor    bigint NOT NULL,
    PRIMARY KEY (company_id, day, customer_id, currency)
);
CREATE INDEX rollup_customer_days_by_customer ON rollup_customer_days (company_id, customer_id, day);

-- One row per customer with an order: their first order day (the least day of theirs in
-- rollup_customer_days), their orders in all, and the currencies they ordered in. Cohort
-- reports start here instead of aggregating every customer day of the company; the rollups
-- job refreshes the customers of the days it recomputed.
CREATE TABLE rollup_customers (
    company_id   uuid NOT NULL,
    customer_id  uuid NOT NULL,
    first_day    date NOT NULL,
    orders       integer NOT NULL,
    currencies   char(3)[] NOT NULL,
    PRIMARY KEY (company_id, customer_id)
);
CREATE INDEX rollup_customers_by_first_day ON rollup_customers (company_id, first_day);

-- Each customer's net revenue (minor units, per currency) within 30, 90, 180 and 365 days
-- of their first order day (days first_day <= d < first_day + N): rolling LTV is then a sum
-- over the cohort's rows. Refreshed with rollup_customers.
CREATE TABLE rollup_customer_windows (
    company_id   uuid NOT NULL,
    customer_id  uuid NOT NULL,
    currency     char(3) NOT NULL,
    first_day    date NOT NULL,
    net_30       bigint NOT NULL,
    net_90       bigint NOT NULL,
    net_180      bigint NOT NULL,
    net_365      bigint NOT NULL,
    PRIMARY KEY (company_id, customer_id, currency)
);
CREATE INDEX rollup_customer_windows_by_first_day
    ON rollup_customer_windows (company_id, first_day);

-- The local days a run recomputed (rollups): first, last and how many. `range_from`/`range_to`
-- stay what a run was asked for (`--from`/`--to`).
ALTER TABLE job_runs
    ADD COLUMN days_from   date,
    ADD COLUMN days_to     date,
    ADD COLUMN days_count  integer;

-- Which sessions' days changed, and when: the ingestion writer appends, in the transaction
-- that writes a batch's events, the start of every session the batch opened or extended,
-- binned to 15 minutes (every time zone's offset is a multiple of 15 minutes, so a bin never
-- straddles a local midnight). `changed_at` is the transaction's start, like every other
-- change stamp the jobs' watermarks are compared with, so the rollups job finds exactly the
-- days touched since its last run, late and back-filled events included. The job prunes
-- what its runs have seen.
CREATE TABLE session_changes (
    company_id     uuid NOT NULL,
    started_bin    timestamptz NOT NULL,
    changed_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX session_changes_by_time ON session_changes (company_id, changed_at);

CREATE INDEX orders_by_attributed ON orders (company_id, attributed_at);

-- The days orders leave: an order whose placement moves (a verified source's time replaces a
-- browser's) or that is deleted (merged into another) leaves rows on its old day, which the
-- order as it is now cannot point to. A trigger notes the old placement, stamped like
-- `session_changes`, for the rollups job.
CREATE TABLE order_changes (
    company_id  uuid NOT NULL,
    placed_at   timestamptz NOT NULL,
    changed_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX order_changes_by_time ON order_changes (company_id, changed_at);

CREATE FUNCTION lux_note_order_left_day() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    IF TG_OP = 'DELETE' OR NEW.placed_at IS DISTINCT FROM OLD.placed_at THEN
        INSERT INTO order_changes (company_id, placed_at) VALUES (OLD.company_id, OLD.placed_at);
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER note_order_left_day AFTER UPDATE OF placed_at OR DELETE ON orders
    FOR EACH ROW EXECUTE FUNCTION lux_note_order_left_day();

-- Reader logins: a login made for one company's dashboards (Metabase, say) reads that
-- company's rollups whatever `lux.company_id` it sets. Logins not listed here (the service's
-- own, which switches to lux_reader for the metrics API) use the setting.
CREATE TABLE reader_logins (
    company_id  uuid NOT NULL REFERENCES companies,
    -- A role of the cluster: `lux company reader-login` creates it with its row, so a login
    -- is listed once.
    login       name NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (company_id, login)
);
CREATE INDEX reader_logins_by_login ON reader_logins (login);

-- The company whose rows the current session may see in the reader's tables: its login's,
-- for a reader login, else the transaction's setting. A definer function: readers cannot
-- read reader_logins.
CREATE FUNCTION lux_reader_company() RETURNS uuid
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = public, pg_temp
    AS $$ SELECT coalesce((SELECT company_id FROM reader_logins WHERE login = session_user
                           ORDER BY created_at LIMIT 1),
                          nullif(current_setting('lux.company_id', true), '')::uuid) $$;
REVOKE EXECUTE ON FUNCTION lux_reader_company() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lux_reader_company() TO lux_app, lux_reader;

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['session_changes', 'order_changes', 'reader_logins'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY tenant ON %I USING (company_id = lux_current_company())
                        WITH CHECK (company_id = lux_current_company())', t);
    END LOOP;
    -- `(SELECT lux_reader_company())`: evaluated once per query (an init plan) instead of
    -- once per row, which halves a report's time when it scans a company's rows.
    FOREACH t IN ARRAY ARRAY['ad_spend', 'rollup_sessions_daily', 'rollup_funnel_daily',
                             'rollup_revenue_daily', 'rollup_conversions', 'rollup_customer_days',
                             'rollup_customers', 'rollup_customer_windows']
    LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY tenant ON %I USING (company_id = (SELECT lux_reader_company()))
                        WITH CHECK (company_id = (SELECT lux_reader_company()))', t);
        EXECUTE format('GRANT SELECT ON %I TO lux_reader', t);
    END LOOP;
END
$$;

-- DELETE: a campaign's day is stored in total or by ad, and an import of one replaces the
-- other (see `spend::replace_other_granularity`).
GRANT SELECT, INSERT, UPDATE, DELETE ON ad_spend TO lux_app;
GRANT SELECT, INSERT, DELETE ON session_changes, order_changes TO lux_app;
GRANT SELECT, INSERT, DELETE ON rollup_sessions_daily, rollup_funnel_daily, rollup_revenue_daily,
    rollup_conversions, rollup_customer_days, rollup_customers, rollup_customer_windows
    TO lux_app;
