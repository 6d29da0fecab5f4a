-- Alerts and insights (SPEC §8.4, issue 17): per-company configuration, a record of every
-- evaluation, one row per firing, and the durable delivery outbox.

-- One row per company that configured alerts. Recipient addresses are the company's staff,
-- stored as configured (they are not visitors' personal data). `rules` holds overrides only:
-- {"cpa_wow": {"threshold": 0.3, "min_volume": 10}}; a rule absent from it runs on its default.
CREATE TABLE alert_settings (
    company_id     uuid PRIMARY KEY REFERENCES companies,
    emails         text[] NOT NULL DEFAULT '{}',
    slack_webhook  text CHECK (slack_webhook ~ '^https?://'),
    -- Local hours [start, end) during which nothing is delivered (it waits, evaluation does not).
    quiet_start    smallint CHECK (quiet_start BETWEEN 0 AND 23),
    quiet_end      smallint CHECK (quiet_end BETWEEN 0 AND 23),
    -- The company-local hour after which the scheduler evaluates yesterday.
    morning_hour   smallint NOT NULL DEFAULT 7 CHECK (morning_hour BETWEEN 0 AND 23),
    rules          jsonb NOT NULL DEFAULT '{}',
    updated_at     timestamptz NOT NULL DEFAULT now(),
    CHECK ((quiet_start IS NULL) = (quiet_end IS NULL))
);

-- One row per evaluation of a company's rules for one local day (scheduled or `lux alerts check`).
CREATE TABLE alert_runs (
    company_id    uuid NOT NULL REFERENCES companies,
    run_id        uuid NOT NULL,
    day           date NOT NULL,
    trigger       text NOT NULL CHECK (trigger IN ('schedule', 'manual')),
    evaluated_at  timestamptz NOT NULL,
    fired         integer NOT NULL DEFAULT 0,
    resolved      integer NOT NULL DEFAULT 0,
    PRIMARY KEY (company_id, run_id)
);
CREATE INDEX alert_runs_by_day ON alert_runs (company_id, day);

-- Every rule × subject looked at by a run: its numbers, whether the condition held, and why
-- not when it was not checked (below the minimum volume, not enough history).
CREATE TABLE alert_evaluations (
    company_id    uuid NOT NULL,
    run_id        uuid NOT NULL,
    rule          text NOT NULL,
    subject       text NOT NULL,
    met           boolean NOT NULL,
    skipped       text,
    numbers       jsonb NOT NULL,
    PRIMARY KEY (company_id, run_id, rule, subject),
    FOREIGN KEY (company_id, run_id) REFERENCES alert_runs (company_id, run_id) ON DELETE CASCADE
);

-- One row per firing of a rule on a subject: firing until a later day's evaluation finds the
-- condition gone (then resolved, and a new firing is a new row).
CREATE TABLE alerts (
    company_id   uuid NOT NULL REFERENCES companies,
    alert_id     uuid NOT NULL,
    rule         text NOT NULL,
    subject      text NOT NULL,
    severity     text NOT NULL CHECK (severity IN ('warning', 'critical')),
    state        text NOT NULL CHECK (state IN ('firing', 'resolved')),
    fired_on     date NOT NULL,
    resolved_on  date,
    title        text NOT NULL,
    explanation  text NOT NULL,
    numbers      jsonb NOT NULL,
    link         text NOT NULL,
    created_at   timestamptz NOT NULL,
    PRIMARY KEY (company_id, alert_id),
    CHECK ((state = 'resolved') = (resolved_on IS NOT NULL))
);
-- At most one firing per (company, rule, subject): the state machine's invariant, enforced.
CREATE UNIQUE INDEX alerts_one_firing ON alerts (company_id, rule, subject) WHERE state = 'firing';
CREATE INDEX alerts_by_day ON alerts (company_id, fired_on);

-- The outbox: one message to one target, rendered when enqueued, sent by whichever worker
-- claims it (FOR UPDATE SKIP LOCKED) and marked sent in the claiming transaction.
CREATE TABLE alert_deliveries (
    company_id       uuid NOT NULL REFERENCES companies,
    delivery_id      uuid NOT NULL,
    run_id           uuid,
    -- The firings (or resolutions) this message tells about; empty for a test message.
    alert_ids        uuid[] NOT NULL DEFAULT '{}',
    kind             text NOT NULL CHECK (kind IN ('alert', 'test')),
    channel          text NOT NULL CHECK (channel IN ('email', 'slack')),
    target           text NOT NULL,
    subject          text NOT NULL,
    text_body        text NOT NULL,
    html_body        text,
    attempts         integer NOT NULL DEFAULT 0,
    status           text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed')),
    next_attempt_at  timestamptz NOT NULL,
    last_error       text,
    sent_at          timestamptz,
    created_at       timestamptz NOT NULL,
    PRIMARY KEY (company_id, delivery_id)
);
CREATE INDEX alert_deliveries_due ON alert_deliveries (company_id, next_attempt_at)
    WHERE status = 'pending';

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['alert_settings', 'alert_runs', 'alert_evaluations']
    LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY tenant ON %I USING (company_id = (SELECT lux_current_company()))
                        WITH CHECK (company_id = (SELECT lux_current_company()))', t);
    END LOOP;
    -- The alert history is a report (`/api/v1/reports/alerts`), read as lux_reader.
    FOREACH t IN ARRAY ARRAY['alerts', 'alert_deliveries']
    LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY tenant ON %I USING (company_id = (SELECT lux_reader_company()))
                        WITH CHECK (company_id = (SELECT lux_reader_company()))', t);
        EXECUTE format('GRANT SELECT ON %I TO lux_reader', t);
    END LOOP;
END
$$;

GRANT SELECT, INSERT, UPDATE ON alert_settings TO lux_app;
GRANT SELECT, INSERT, DELETE ON alert_runs, alert_evaluations TO lux_app;
GRANT SELECT, INSERT, UPDATE ON alerts, alert_deliveries TO lux_app;

-- The companies with outbox rows due at `at`: the delivery worker visits only those (it works
-- per company, under row-level security). A definer function: lux_app sees one company at a time.
CREATE FUNCTION lux_alert_companies_due(at timestamptz) RETURNS SETOF uuid
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = public, pg_temp
    AS $$ SELECT DISTINCT company_id FROM alert_deliveries
          WHERE status = 'pending' AND next_attempt_at <= at $$;
REVOKE EXECUTE ON FUNCTION lux_alert_companies_due(timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lux_alert_companies_due(timestamptz) TO lux_app;
