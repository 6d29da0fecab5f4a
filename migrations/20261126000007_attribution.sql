-- Attribution (SPEC §6): first and last touch on every order, a credit table for the other
-- models, the channel path of each order, and the record of every job run.

-- When a row was written (not when its visit started: a backfilled session can start weeks
-- before it is stored). The attribution job re-examines the orders of visitors whose sessions
-- or identity links were written since its last run. Per company, so one company's run never
-- reads another's new sessions; new entries land at the right end of each company's range.
ALTER TABLE sessions ADD COLUMN created_at timestamptz NOT NULL DEFAULT now();
CREATE INDEX sessions_by_created ON sessions (company_id, created_at);

ALTER TABLE identity_keys ADD COLUMN linked_at timestamptz NOT NULL DEFAULT now();
CREATE INDEX identity_keys_by_linked ON identity_keys (company_id, linked_at);

-- The order's attribution, computed by the attribution job. NULL until the job has seen it.
ALTER TABLE orders
    -- 'attributed': a touch within the last-touch window;
    -- 'no_recent_touch': touches in the lookback window, none in the last-touch window;
    -- 'no_touch': linked visitors, but no session in the lookback window;
    -- 'no_visitor': no visitor linked to the buyer at all.
    -- Whenever a touch is missing its channel is the stated value 'Unattributed'.
    ADD COLUMN attribution_status text CHECK (attribution_status IN
        ('attributed', 'no_recent_touch', 'no_touch', 'no_visitor')),
    ADD COLUMN first_touch_channel    text,
    ADD COLUMN first_touch_source     text,
    ADD COLUMN first_touch_medium     text,
    ADD COLUMN first_touch_campaign   text,
    ADD COLUMN first_touch_session_id uuid,
    ADD COLUMN first_touch_at         timestamptz,
    ADD COLUMN last_touch_channel     text,
    ADD COLUMN last_touch_source      text,
    ADD COLUMN last_touch_medium      text,
    ADD COLUMN last_touch_campaign    text,
    ADD COLUMN last_touch_session_id  uuid,
    ADD COLUMN last_touch_at          timestamptz,
    -- The channels of the touches in the lookback window, oldest first.
    ADD COLUMN channel_path           text[],
    -- The rules and settings the attribution was computed with, in words
    -- ('v1 lookback=30d last_touch=72h ...'): an order computed under other rules is redone.
    ADD COLUMN attribution_rules      text,
    -- A digest of the whole result (order columns and credits): a recomputation that finds
    -- the same digest writes nothing, so running the job twice leaves identical rows.
    ADD COLUMN attribution_digest     bytea,
    ADD COLUMN attributed_at          timestamptz;
CREATE INDEX orders_by_update ON orders (company_id, updated_at);
CREATE INDEX orders_unattributed ON orders (company_id) WHERE attributed_at IS NULL;
CREATE INDEX orders_by_visitor ON orders (company_id, visitor_id) WHERE visitor_id IS NOT NULL;
CREATE INDEX orders_by_user ON orders (company_id, user_id) WHERE user_id IS NOT NULL;
CREATE INDEX orders_by_email ON orders (company_id, email_hash) WHERE email_hash IS NOT NULL;

-- How much of an order each touch earns under each model. Credits of one order and model sum
-- to exactly 1. An order without touches gets one row for the channel 'Unattributed'.
CREATE TABLE attribution_credits (
    company_id   uuid NOT NULL,
    order_id     uuid NOT NULL,
    model        text NOT NULL CHECK (model IN ('first_touch', 'last_touch', 'linear',
                     'time_decay', 'position_based', 'last_non_direct')),
    -- Position of the touch in the order's channel path (0 = oldest); 0 for 'Unattributed'.
    touch_index  integer NOT NULL,
    session_id   uuid,
    started_at   timestamptz,
    channel      text NOT NULL,
    source       text,
    medium       text,
    campaign     text,
    credit       numeric(10, 9) NOT NULL CHECK (credit > 0 AND credit <= 1),
    PRIMARY KEY (company_id, order_id, model, touch_index),
    -- An order merged into another (two sources that turn out to be one order) is deleted;
    -- its credits go with it, and the surviving order is attributed again.
    FOREIGN KEY (company_id, order_id) REFERENCES orders ON DELETE CASCADE
);

-- Every run of a job: what it covered, how much it did, how long it took, how it ended.
CREATE TABLE job_runs (
    company_id     uuid NOT NULL,
    run_id         uuid NOT NULL,
    job            text NOT NULL,
    started_at     timestamptz NOT NULL,
    finished_at    timestamptz,
    status         text NOT NULL CHECK (status IN ('running', 'succeeded', 'failed')),
    full_run       boolean NOT NULL,
    -- What the job ran with (for attribution: the rules in words). A run whose parameters
    -- differ from the last successful run's redoes everything.
    parameters     text,
    -- Rows stamped at or after this time (their transaction's start) may not have been seen
    -- by this run: the next incremental run looks from here. The run's start, or earlier if
    -- a transaction that started earlier was still open then.
    watermark      timestamptz,
    -- The days a rollup covered; NULL for jobs that are not by day.
    range_from     date,
    range_to       date,
    rows_examined  bigint NOT NULL DEFAULT 0,
    rows_changed   bigint NOT NULL DEFAULT 0,
    error          text,
    PRIMARY KEY (company_id, run_id)
);
CREATE INDEX job_runs_latest ON job_runs (company_id, job, started_at DESC);

ALTER TABLE attribution_credits ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON attribution_credits
    USING (company_id = lux_current_company())
    WITH CHECK (company_id = lux_current_company());
ALTER TABLE job_runs ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON job_runs
    USING (company_id = lux_current_company())
    WITH CHECK (company_id = lux_current_company());

GRANT SELECT, INSERT, DELETE ON attribution_credits TO lux_app;
-- DELETE: runs older than 30 days are pruned.
GRANT SELECT, INSERT, UPDATE, DELETE ON job_runs TO lux_app;

-- The scheduler runs each job for every company; row-level security hides the companies
-- table from the service, so this definer function lists their ids (and nothing else).
CREATE FUNCTION lux_company_ids() RETURNS SETOF uuid
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = public, pg_temp
    AS $$ SELECT company_id FROM companies ORDER BY company_id $$;
REVOKE EXECUTE ON FUNCTION lux_company_ids() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lux_company_ids() TO lux_app;

-- The start of the oldest transaction open in this database by the service's login (its
-- nodes all log in as the role of DATABASE_URL): changes stamped earlier than that are
-- committed, or never will be. Other logins (an analyst's open transaction in Metabase)
-- cannot write the service's tables and do not hold it back. A definer function, because the
-- service's role cannot see other sessions' transactions in pg_stat_activity.
CREATE FUNCTION lux_oldest_open_transaction() RETURNS timestamptz
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = public, pg_temp
    AS $$ SELECT min(xact_start) FROM pg_stat_activity
          WHERE datname = current_database() AND backend_type = 'client backend'
            AND usename = session_user AND xact_start IS NOT NULL $$;
REVOKE EXECUTE ON FUNCTION lux_oldest_open_transaction() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lux_oldest_open_transaction() TO lux_app;
