-- raw_events: every event as received, append-only, partitioned by month of occurred_at.

CREATE TABLE raw_events (
    company_id          uuid NOT NULL,
    event_id            uuid NOT NULL,
    event_name          text NOT NULL,
    occurred_at         timestamptz NOT NULL,
    received_at         timestamptz NOT NULL,
    -- The client's own time when it was implausible and occurred_at was clamped to receipt.
    client_occurred_at  timestamptz,
    occurred_at_clamped boolean NOT NULL DEFAULT false,
    visitor_id          uuid NOT NULL,
    session_id          uuid,
    user_id             text,
    -- Keyed hash of the normalised email (never the email itself).
    email_hash          bytea,
    page_url            text,
    referrer            text,
    user_agent          text,
    -- HMAC-SHA256 of the IP under a daily salt that is destroyed after the day.
    ip_hash             bytea,
    utm_source          text,
    utm_medium          text,
    utm_campaign        text,
    utm_term            text,
    utm_content         text,
    gclid               text,
    gbraid              text,
    wbraid              text,
    fbclid              text,
    msclkid             text,
    ttclid              text,
    li_fat_id           text,
    creative_id         text,
    consent_analytics   boolean NOT NULL,
    consent_marketing   boolean,
    gpc                 boolean NOT NULL DEFAULT false,
    is_bot              boolean NOT NULL DEFAULT false,
    -- 'write' (browser, public key) or 'secret' (server-side).
    key_kind            text NOT NULL CHECK (key_kind IN ('write', 'secret')),
    properties          jsonb NOT NULL DEFAULT '{}'
) PARTITION BY RANGE (occurred_at);

-- A unique key on a partitioned table must include the partition key, and a retried event's
-- occurred_at can differ (clamping, a missing client time), so idempotency lives in its own
-- table, checked in the same transaction as the insert.
CREATE TABLE event_ids (
    company_id  uuid NOT NULL,
    event_id    uuid NOT NULL,
    received_at timestamptz NOT NULL,
    PRIMARY KEY (company_id, event_id)
);

-- One index only: every extra index is paid on each of the thousands of inserts a second.
-- Per-visitor reads go through `sessions` (indexed by visitor) and then raw events by time.
CREATE INDEX raw_events_company_time ON raw_events (company_id, occurred_at);

-- Append-only for everyone, the owner included. Statement-level triggers also catch
-- UPDATE/DELETE that match no row and TRUNCATE, which row triggers never see.
CREATE FUNCTION lux_reject_raw_event_change() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'raw_events is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'personal data is erased through the audited privacy path only';
END
$$;

CREATE TRIGGER append_only_rows BEFORE UPDATE OR DELETE ON raw_events
    FOR EACH ROW EXECUTE FUNCTION lux_reject_raw_event_change();
CREATE TRIGGER append_only_statements BEFORE UPDATE OR DELETE OR TRUNCATE ON raw_events
    FOR EACH STATEMENT EXECUTE FUNCTION lux_reject_raw_event_change();

-- Creates the monthly partitions covering [p_from, p_to]. Statement triggers are not
-- inherited by partitions, so each partition gets its own (a partition can be named
-- directly); row-level security is enabled on each so that a partition is never a way around
-- the parent's policy. Runs as the owner so the service can call it.
CREATE FUNCTION lux_ensure_raw_event_partitions(p_from date, p_to date) RETURNS integer
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = public, pg_temp
    AS $$
DECLARE
    month   date := date_trunc('month', p_from)::date;
    part    text;
    created integer := 0;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('lux_ensure_raw_event_partitions'));
    WHILE month <= p_to LOOP
        part := format('raw_events_y%sm%s', to_char(month, 'YYYY'), to_char(month, 'MM'));
        IF to_regclass(part) IS NULL THEN
            EXECUTE format(
                'CREATE TABLE %I PARTITION OF raw_events FOR VALUES FROM (%L) TO (%L)',
                part, month::text || ' 00:00:00+00',
                (month + interval '1 month')::date::text || ' 00:00:00+00');
            EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', part);
            EXECUTE format('CREATE POLICY tenant ON %I USING (company_id = lux_current_company())', part);
            EXECUTE format(
                'CREATE TRIGGER append_only_statements BEFORE UPDATE OR DELETE OR TRUNCATE ON %I '
                'FOR EACH STATEMENT EXECUTE FUNCTION lux_reject_raw_event_change()', part);
            created := created + 1;
        END IF;
        month := (month + interval '1 month')::date;
    END LOOP;
    RETURN created;
END
$$;
REVOKE EXECUTE ON FUNCTION lux_ensure_raw_event_partitions(date, date) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lux_ensure_raw_event_partitions(date, date) TO lux_app;

-- Two years back (server-side backfill limit) and a quarter ahead; the service keeps the
-- window moving daily.
SELECT lux_ensure_raw_event_partitions(
    (now() - interval '25 months')::date, (now() + interval '3 months')::date);

ALTER TABLE raw_events ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON raw_events
    USING (company_id = lux_current_company())
    WITH CHECK (company_id = lux_current_company());
ALTER TABLE event_ids ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON event_ids
    USING (company_id = lux_current_company())
    WITH CHECK (company_id = lux_current_company());

-- No UPDATE, DELETE or TRUNCATE for the service, ever.
GRANT SELECT, INSERT ON raw_events, event_ids TO lux_app;
