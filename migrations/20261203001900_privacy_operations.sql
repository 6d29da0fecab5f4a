-- Privacy operations (SPEC §2, §9, issue 19): the consent ledger, privacy requests with their
-- deadlines, the erasure role and its one audited path, raw-event retention, and the
-- append-only ledger of every erasure and partition drop.

-- The erasure role: the only role that may delete raw events, and only while a recorded
-- deletion (or retention) request of the row's company is named in the transaction. NOLOGIN:
-- the operator's connection (the owner) switches to it with SET ROLE for `lux privacy erase`
-- and the retention job. NOBYPASSRLS: row-level security scopes it to one company like the
-- service.
DO $$
BEGIN
    BEGIN
        CREATE ROLE lux_eraser NOLOGIN NOBYPASSRLS;
    EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
    END;
END
$$;
DO $$
BEGIN
    IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        EXECUTE format('GRANT lux_eraser TO %I', current_user);
    END IF;
END
$$;
GRANT USAGE ON SCHEMA public TO lux_eraser;

-- How long raw events are kept, per company (SPEC §9: 25 months unless the company says).
ALTER TABLE companies ADD COLUMN raw_event_retention_months integer NOT NULL DEFAULT 25
    CHECK (raw_event_retention_months BETWEEN 1 AND 240);

-- The form a suppressed identifier is kept in: a keyed hash of kind and value, so the list
-- of people who asked not to be tracked (erased people included) holds none of their
-- identifiers, yet an incoming event's identifiers are matched by hashing them the same way.
CREATE FUNCTION lux_suppression_key(p_hash_key bytea, p_kind text, p_value text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS $$ SELECT encode(sha256(p_hash_key || convert_to(p_kind || ':' || p_value, 'UTF8')), 'hex') $$;

UPDATE suppressions s SET value = lux_suppression_key(c.hash_key, s.kind, s.value)
FROM companies c WHERE c.company_id = s.company_id;
COMMENT ON COLUMN suppressions.value IS 'lux_suppression_key(company hash_key, kind, identifier)';

-- The consent ledger: every consent change, append-only. The subject is a visitor id, a user
-- id, or the keyed hash (hex) of an email or phone number: the keys of the identity graph.
CREATE TABLE consent_events (
    company_id      uuid NOT NULL REFERENCES companies,
    consent_id      uuid NOT NULL,
    subject_kind    text NOT NULL CHECK (subject_kind IN ('visitor', 'user', 'email', 'phone')),
    subject         text NOT NULL CHECK (length(subject) BETWEEN 1 AND 200),
    -- 'sale_sharing' is what GPC opts out of (CCPA "do not sell or share").
    purpose         text NOT NULL CHECK (purpose IN ('analytics', 'marketing', 'sale_sharing')),
    granted         boolean NOT NULL,
    -- 'snippet', 'api', 'gpc', or a provider's '{provider}:{kind}' ('sendgrid:unsubscribed').
    source          text NOT NULL CHECK (length(source) BETWEEN 1 AND 100),
    -- The version of the privacy notice the person saw, when the site says.
    notice_version  text CHECK (length(notice_version) <= 100),
    message_id      text,
    recorded_at     timestamptz NOT NULL,
    PRIMARY KEY (company_id, consent_id)
);
CREATE INDEX consent_events_by_subject
    ON consent_events (company_id, subject_kind, subject, purpose, recorded_at DESC);
CREATE TRIGGER append_only_rows BEFORE UPDATE OR DELETE ON consent_events
    FOR EACH ROW EXECUTE FUNCTION lux_reject_raw_event_change();
CREATE TRIGGER append_only_statements BEFORE UPDATE OR DELETE OR TRUNCATE ON consent_events
    FOR EACH STATEMENT EXECUTE FUNCTION lux_reject_raw_event_change();

-- One ledger, not two: the messages domain's consent_records move here, and the name stays
-- as a view for what reads it.
INSERT INTO consent_events (company_id, consent_id, subject_kind, subject, purpose, granted,
                            source, message_id, recorded_at)
SELECT company_id, record_id, subject_kind, encode(subject_hash, 'hex'), 'marketing', marketing,
       source, message_id, recorded_at
FROM consent_records;
DROP TABLE consent_records;
CREATE VIEW consent_records WITH (security_invoker = true) AS
    SELECT company_id, consent_id AS record_id, decode(subject, 'hex') AS subject_hash,
           subject_kind, granted AS marketing, source, message_id, recorded_at
    FROM consent_events
    WHERE purpose = 'marketing' AND subject_kind IN ('email', 'phone');

-- Each subject's current consent per purpose (the latest change wins), with the person the
-- subject belongs to in the identity graph; `consent_current_by_person` folds a person's
-- subjects into one answer per purpose (the latest change of any of their keys).
CREATE VIEW consent_current WITH (security_invoker = true) AS
    SELECT DISTINCT ON (e.company_id, e.subject_kind, e.subject, e.purpose)
           e.company_id, k.person_id, e.subject_kind, e.subject, e.purpose, e.granted, e.source,
           e.notice_version, e.recorded_at
    FROM consent_events e
    LEFT JOIN identity_keys k ON k.company_id = e.company_id AND k.key_kind = e.subject_kind
                             AND k.key_value = e.subject
    ORDER BY e.company_id, e.subject_kind, e.subject, e.purpose, e.recorded_at DESC,
             e.consent_id DESC;
CREATE VIEW consent_current_by_person WITH (security_invoker = true) AS
    SELECT DISTINCT ON (company_id, person_id, purpose)
           company_id, person_id, purpose, granted, source, notice_version, recorded_at
    FROM consent_current
    WHERE person_id IS NOT NULL
    ORDER BY company_id, person_id, purpose, recorded_at DESC;

-- Requests from people (CCPA): access, deletion, opt-out; and 'retention', the requests the
-- retention job files for itself so its erasures go through the same audited path. The
-- subject is kept as lux_suppression_key(...) of its identifier: the request outlives an
-- erasure and must not hold the person's identifiers.
CREATE TABLE privacy_requests (
    company_id      uuid NOT NULL REFERENCES companies,
    request_id      uuid NOT NULL,
    kind            text NOT NULL CHECK (kind IN ('access', 'deletion', 'opt_out', 'retention')),
    subject_kind    text CHECK (subject_kind IN ('visitor', 'user', 'email')),
    subject_key     text,
    received_at     timestamptz NOT NULL,
    -- CCPA: acknowledge within 10 business days, answer within 45 calendar days.
    acknowledge_by  date NOT NULL,
    due_by          date NOT NULL,
    state           text NOT NULL DEFAULT 'received'
        CHECK (state IN ('received', 'acknowledged', 'completed', 'denied')),
    outcome         text,
    completed_at    timestamptz,
    -- 'api', 'cli' or 'system' (retention).
    filed_via       text NOT NULL CHECK (filed_via IN ('api', 'cli', 'system')),
    PRIMARY KEY (company_id, request_id),
    CHECK ((subject_kind IS NULL) = (subject_key IS NULL))
);
CREATE INDEX privacy_requests_open ON privacy_requests (company_id, due_by)
    WHERE state IN ('received', 'acknowledged');

-- Every erasure and retention drop: which request, who, when, how many rows of each table.
-- No personal data. Append-only for everyone.
CREATE TABLE privacy_ledger (
    company_id   uuid NOT NULL REFERENCES companies,
    entry_id     uuid NOT NULL,
    request_id   uuid,
    action       text NOT NULL CHECK (action IN ('erasure', 'retention_drop', 'retention_erasure')),
    actor        text NOT NULL,
    recorded_at  timestamptz NOT NULL,
    -- {"raw_events": 12, "sessions": 3, ...}
    rows         jsonb NOT NULL,
    -- The partition dropped, or the time before which events were erased.
    detail       text,
    PRIMARY KEY (company_id, entry_id)
);
CREATE FUNCTION lux_reject_ledger_change() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'privacy_ledger is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER append_only_rows BEFORE UPDATE OR DELETE ON privacy_ledger
    FOR EACH ROW EXECUTE FUNCTION lux_reject_ledger_change();
CREATE TRIGGER append_only_statements BEFORE UPDATE OR DELETE OR TRUNCATE ON privacy_ledger
    FOR EACH STATEMENT EXECUTE FUNCTION lux_reject_ledger_change();

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['consent_events', 'privacy_requests', 'privacy_ledger'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY tenant ON %I USING (company_id = (SELECT lux_current_company())) '
                       'WITH CHECK (company_id = (SELECT lux_current_company()))', t);
    END LOOP;
END
$$;

GRANT SELECT, INSERT ON consent_events, privacy_requests TO lux_app;
GRANT SELECT ON privacy_ledger, consent_records, consent_current, consent_current_by_person TO lux_app;

-- The one exception to append-only. A change of raw_events (and of the other append-only
-- tables that use this trigger: message_events, consent_events) is refused unless it is a
-- DELETE by lux_eraser in a transaction that names, in `lux.erasure_request`, a deletion or
-- retention request of the row's own company. TRUNCATE and UPDATE stay refused for everyone.
CREATE FUNCTION lux_erasure_allowed(p_company uuid) RETURNS boolean
    LANGUAGE plpgsql STABLE
    SET search_path = public, pg_temp
    AS $$
DECLARE
    request text := nullif(current_setting('lux.erasure_request', true), '');
BEGIN
    IF current_user <> 'lux_eraser' OR request IS NULL THEN
        RETURN false;
    END IF;
    RETURN EXISTS (
        SELECT 1 FROM privacy_requests r
        WHERE r.request_id = request::uuid AND r.kind IN ('deletion', 'retention')
          AND r.company_id = coalesce(p_company, lux_current_company()));
END
$$;

CREATE OR REPLACE FUNCTION lux_reject_raw_event_change() RETURNS trigger
    LANGUAGE plpgsql AS $$
DECLARE
    row_company uuid;
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF TG_LEVEL = 'ROW' THEN
            row_company := OLD.company_id;
        END IF;
        IF lux_erasure_allowed(row_company) THEN
            IF TG_LEVEL = 'ROW' THEN
                RETURN OLD;
            END IF;
            RETURN NULL;
        END IF;
    END IF;
    RAISE EXCEPTION '% is append-only: % is not allowed', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'personal data is erased through the audited privacy path only';
END
$$;

-- What the erasure role may touch (row-level security still scopes it to one company).
GRANT SELECT ON companies, privacy_ledger TO lux_eraser;
GRANT SELECT, UPDATE ON privacy_requests TO lux_eraser;
GRANT INSERT ON privacy_requests, privacy_ledger, suppressions TO lux_eraser;
GRANT SELECT ON suppressions TO lux_eraser;
GRANT SELECT, DELETE ON raw_events, event_ids, sessions, identity_keys, message_sends,
    message_events, consent_events, attribution_credits, customer_relinks TO lux_eraser;
GRANT SELECT, UPDATE ON orders, order_sources, customers, order_inbox TO lux_eraser;
GRANT INSERT ON session_changes, order_changes, message_changes TO lux_eraser;

-- Erases one person of the current company (`lux.company_id`): their raw events, event ids,
-- sessions, identity keys, consent records, message sends and events; their orders stay with
-- every link to them removed (and are attributed again); a suppression of each identifier
-- keeps ingestion and webhooks from re-creating them; change notes make the rollups job
-- recompute the days concerned; one privacy_ledger row records the counts. Runs as
-- lux_eraser, in the caller's transaction, so all of it commits or none of it does. Returns
-- {"removed": {table: rows}, "days": [first, last] local days touched, "order_days": [...]}.
CREATE FUNCTION lux_erase_person(p_request uuid, p_actor text, p_at timestamptz,
                                 p_visitors uuid[], p_users text[], p_emails bytea[])
    RETURNS jsonb
    LANGUAGE plpgsql
    SET search_path = public, pg_temp
    AS $$
DECLARE
    company   uuid := lux_current_company();
    req       privacy_requests%ROWTYPE;
    hash_key  bytea;
    tz        text;
    visitors  uuid[] := coalesce(p_visitors, '{}');
    users     text[] := coalesce(p_users, '{}');
    emails    bytea[] := coalesce(p_emails, '{}');
    email_hex text[];
    sess      uuid[];
    ords      uuid[];
    sends     text[];
    evs       uuid[];
    removed   jsonb := '{}';
    n         bigint;
    first_day date;
    last_day  date;
    ofirst    date;
    olast     date;
BEGIN
    IF p_request IS NULL THEN
        RAISE EXCEPTION 'an erasure needs a privacy request: file one first (lux privacy request)'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF company IS NULL THEN
        RAISE EXCEPTION 'lux.company_id is not set' USING ERRCODE = 'insufficient_privilege';
    END IF;
    SELECT * INTO req FROM privacy_requests WHERE company_id = company AND request_id = p_request;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'privacy request % does not exist for company %', p_request, company
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF req.kind <> 'deletion' THEN
        RAISE EXCEPTION 'privacy request % is a % request, not a deletion request', p_request, req.kind
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    PERFORM set_config('lux.erasure_request', p_request::text, true);
    SELECT c.hash_key, c.timezone INTO hash_key, tz FROM companies c WHERE c.company_id = company;
    email_hex := ARRAY(SELECT encode(e, 'hex') FROM unnest(emails) e);

    sess := ARRAY(SELECT s.session_id FROM sessions s
                  WHERE s.company_id = company AND s.visitor_id = ANY(visitors));
    ords := ARRAY(SELECT o.order_id FROM orders o
                  WHERE o.company_id = company
                    AND (o.email_hash = ANY(emails) OR o.user_id = ANY(users)
                         OR o.visitor_id = ANY(visitors) OR o.session_id = ANY(sess)
                         OR o.customer_id IN (SELECT c.customer_id FROM customers c
                                              WHERE c.company_id = company
                                                AND (c.email_hash = ANY(emails)
                                                     OR c.user_id = ANY(users)
                                                     OR c.visitor_id = ANY(visitors)))));
    sends := ARRAY(SELECT m.message_id FROM message_sends m
                   WHERE m.company_id = company AND m.recipient_hash = ANY(emails));

    -- The local days whose rollups change, and the placement days of the orders to attribute
    -- again (the days are no personal data; they are what the caller recomputes).
    SELECT min(d), max(d) INTO first_day, last_day FROM (
        SELECT (s.started_at AT TIME ZONE tz)::date AS d FROM sessions s
        WHERE s.company_id = company AND s.session_id = ANY(sess)
        UNION ALL
        SELECT (o.placed_at AT TIME ZONE tz)::date FROM orders o
        WHERE o.company_id = company AND o.order_id = ANY(ords)
        UNION ALL
        SELECT (coalesce(m.sent_at, m.created_at) AT TIME ZONE tz)::date FROM message_sends m
        WHERE m.company_id = company AND m.message_id = ANY(sends)) days;
    SELECT min((o.placed_at AT TIME ZONE tz)::date), max((o.placed_at AT TIME ZONE tz)::date)
      INTO ofirst, olast
      FROM orders o WHERE o.company_id = company AND o.order_id = ANY(ords);

    -- Change notes: the rollups job recomputes these days even if the caller stops here.
    INSERT INTO session_changes (company_id, started_bin, changed_at)
    SELECT DISTINCT company, date_bin('15 minutes', s.started_at, timestamptz '2000-01-01 00:00+00'), p_at
    FROM sessions s WHERE s.company_id = company AND s.session_id = ANY(sess);
    INSERT INTO order_changes (company_id, placed_at, changed_at)
    SELECT company, o.placed_at, p_at FROM orders o
    WHERE o.company_id = company AND o.order_id = ANY(ords);

    -- Orders stay (accounting) with every link to the person removed; attribution redoes them.
    UPDATE orders o SET email_hash = NULL, user_id = NULL, visitor_id = NULL, session_id = NULL,
           message_id = NULL, message_channel = NULL, message_click = NULL,
           message_click_at = NULL, message_attributed_at = NULL,
           first_touch_session_id = NULL, last_touch_session_id = NULL,
           attributed_at = NULL, attribution_digest = NULL, updated_at = p_at
    WHERE o.company_id = company AND o.order_id = ANY(ords);
    GET DIAGNOSTICS n = ROW_COUNT;
    removed := removed || jsonb_build_object('orders_unlinked', n);
    UPDATE order_sources SET email_hash = NULL, user_id = NULL, visitor_id = NULL
    WHERE company_id = company AND order_id = ANY(ords);
    DELETE FROM attribution_credits WHERE company_id = company AND order_id = ANY(ords);
    UPDATE customers c SET email_hash = NULL, user_id = NULL, visitor_id = NULL
    WHERE c.company_id = company
      AND (c.email_hash = ANY(emails) OR c.user_id = ANY(users) OR c.visitor_id = ANY(visitors));
    GET DIAGNOSTICS n = ROW_COUNT;
    removed := removed || jsonb_build_object('customers_unlinked', n);
    UPDATE order_inbox SET email_hash = NULL, user_id = NULL, visitor_id = NULL, session_id = NULL
    WHERE company_id = company
      AND (email_hash = ANY(emails) OR user_id = ANY(users) OR visitor_id = ANY(visitors));

    DELETE FROM message_events e WHERE e.company_id = company
       AND (e.message_id = ANY(sends) OR e.recipient_hash = ANY(emails));
    GET DIAGNOSTICS n = ROW_COUNT;
    removed := removed || jsonb_build_object('message_events', n);
    DELETE FROM message_sends m WHERE m.company_id = company AND m.message_id = ANY(sends);
    GET DIAGNOSTICS n = ROW_COUNT;
    removed := removed || jsonb_build_object('message_sends', n);
    DELETE FROM consent_events e WHERE e.company_id = company
       AND ((e.subject_kind = 'visitor' AND e.subject = ANY(visitors::text[]))
         OR (e.subject_kind = 'user' AND e.subject = ANY(users))
         OR (e.subject_kind = 'email' AND e.subject = ANY(email_hex)));
    GET DIAGNOSTICS n = ROW_COUNT;
    removed := removed || jsonb_build_object('consent_events', n);

    WITH gone AS (
        DELETE FROM raw_events r WHERE r.company_id = company
           AND (r.visitor_id = ANY(visitors) OR r.user_id = ANY(users)
                OR r.email_hash = ANY(emails) OR r.session_id = ANY(sess))
        RETURNING r.event_id)
    SELECT array_agg(event_id) INTO evs FROM gone;
    removed := removed || jsonb_build_object('raw_events', coalesce(cardinality(evs), 0));
    DELETE FROM event_ids WHERE company_id = company AND event_id = ANY(coalesce(evs, '{}'));
    GET DIAGNOSTICS n = ROW_COUNT;
    removed := removed || jsonb_build_object('event_ids', n);
    DELETE FROM sessions WHERE company_id = company AND session_id = ANY(sess);
    GET DIAGNOSTICS n = ROW_COUNT;
    removed := removed || jsonb_build_object('sessions', n);
    DELETE FROM customer_relinks WHERE company_id = company
       AND person_id IN (SELECT k.person_id FROM identity_keys k WHERE k.company_id = company
                          AND ((k.key_kind = 'visitor' AND k.key_value = ANY(visitors::text[]))
                            OR (k.key_kind = 'user' AND k.key_value = ANY(users))
                            OR (k.key_kind = 'email' AND k.key_value = ANY(email_hex))));
    DELETE FROM identity_keys k WHERE k.company_id = company
       AND ((k.key_kind = 'visitor' AND k.key_value = ANY(visitors::text[]))
         OR (k.key_kind = 'user' AND k.key_value = ANY(users))
         OR (k.key_kind = 'email' AND k.key_value = ANY(email_hex)));
    GET DIAGNOSTICS n = ROW_COUNT;
    removed := removed || jsonb_build_object('identity_keys', n);

    INSERT INTO suppressions (company_id, kind, value, created_at)
    SELECT company, k.kind, lux_suppression_key(hash_key, k.kind, k.value), p_at
    FROM (SELECT 'visitor' AS kind, v::text AS value FROM unnest(visitors) v
          UNION ALL SELECT 'user', u FROM unnest(users) u
          UNION ALL SELECT 'email', e FROM unnest(email_hex) e) k
    ON CONFLICT DO NOTHING;
    GET DIAGNOSTICS n = ROW_COUNT;
    removed := removed || jsonb_build_object('suppressions_added', n);

    UPDATE privacy_requests SET state = 'completed', completed_at = p_at,
           outcome = 'erased: ' || removed::text
    WHERE company_id = company AND request_id = p_request;
    INSERT INTO privacy_ledger (company_id, entry_id, request_id, action, actor, recorded_at, rows)
    VALUES (company, gen_random_uuid(), p_request, 'erasure', p_actor, p_at, removed);
    PERFORM set_config('lux.erasure_request', '', true);
    RETURN jsonb_build_object('removed', removed,
        'days', CASE WHEN first_day IS NULL THEN NULL ELSE jsonb_build_array(first_day, last_day) END,
        'order_days', CASE WHEN ofirst IS NULL THEN NULL ELSE jsonb_build_array(ofirst, olast) END);
END
$$;
REVOKE EXECUTE ON FUNCTION lux_erase_person(uuid, text, timestamptz, uuid[], text[], bytea[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lux_erase_person(uuid, text, timestamptz, uuid[], text[], bytea[]) TO lux_eraser;

-- Retention, by erasure: the current company's raw events older than p_before, under a
-- retention request, with a ledger row. For a company whose cutoff falls inside a partition
-- that other companies still need.
CREATE FUNCTION lux_erase_events_before(p_request uuid, p_actor text, p_at timestamptz,
                                        p_before timestamptz)
    RETURNS bigint
    LANGUAGE plpgsql
    SET search_path = public, pg_temp
    AS $$
DECLARE
    company uuid := lux_current_company();
    evs     uuid[];
    n       bigint;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM privacy_requests WHERE company_id = company
                   AND request_id = p_request AND kind = 'retention') THEN
        RAISE EXCEPTION 'retention erasure needs a retention request of this company'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    PERFORM set_config('lux.erasure_request', p_request::text, true);
    WITH gone AS (
        DELETE FROM raw_events WHERE company_id = company AND occurred_at < p_before
        RETURNING event_id)
    SELECT array_agg(event_id) INTO evs FROM gone;
    DELETE FROM event_ids WHERE company_id = company AND event_id = ANY(coalesce(evs, '{}'));
    GET DIAGNOSTICS n = ROW_COUNT;
    UPDATE privacy_requests SET state = 'completed', completed_at = p_at,
           outcome = format('%s raw events before %s erased', coalesce(cardinality(evs), 0), p_before)
    WHERE company_id = company AND request_id = p_request;
    INSERT INTO privacy_ledger (company_id, entry_id, request_id, action, actor, recorded_at, rows, detail)
    VALUES (company, gen_random_uuid(), p_request, 'retention_erasure', p_actor, p_at,
            jsonb_build_object('raw_events', coalesce(cardinality(evs), 0), 'event_ids', n),
            'before ' || p_before::text);
    PERFORM set_config('lux.erasure_request', '', true);
    RETURN coalesce(cardinality(evs), 0);
END
$$;
REVOKE EXECUTE ON FUNCTION lux_erase_events_before(uuid, text, timestamptz, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lux_erase_events_before(uuid, text, timestamptz, timestamptz) TO lux_eraser;

-- A company's retention cutoff at p_at: the start (UTC) of the month p_months before p_at's.
-- Retention works in whole months, like the partitions: an event goes once its month ended
-- more than N months ago, so a cutoff never falls inside a partition and a company is erased
-- row by row only when it keeps fewer months than another, once a month.
CREATE FUNCTION lux_retention_cutoff(p_at timestamptz, p_months integer) RETURNS timestamptz
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS $$ SELECT date_trunc('month', (p_at AT TIME ZONE 'UTC') - make_interval(months => p_months))
                 AT TIME ZONE 'UTC' $$;

-- Retention, by partition: drops one monthly partition of raw_events when every company's
-- retention allows it (the partition ends before each company's cutoff at p_at), after
-- counting its rows per company into privacy_ledger. A definer function (the owner's): only
-- the owner may drop a table; EXECUTE is the erasure role's alone. Returns false when the
-- partition is not one of raw_events' or some company still keeps it.
CREATE FUNCTION lux_drop_raw_event_partition(p_partition text, p_actor text, p_at timestamptz)
    RETURNS boolean
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = public, pg_temp
    AS $$
DECLARE
    part_upper timestamptz;
BEGIN
    SELECT (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'TO \(''([^'']+)''\)'))[1]::timestamptz
      INTO part_upper
      FROM pg_class c JOIN pg_inherits i ON i.inhrelid = c.oid
     WHERE i.inhparent = 'raw_events'::regclass AND c.relname = p_partition;
    IF part_upper IS NULL THEN
        RETURN false;
    END IF;
    IF EXISTS (SELECT 1 FROM companies
               WHERE part_upper > lux_retention_cutoff(p_at, raw_event_retention_months)) THEN
        RETURN false;
    END IF;
    EXECUTE format(
        'INSERT INTO privacy_ledger (company_id, entry_id, action, actor, recorded_at, rows, detail)
         SELECT company_id, gen_random_uuid(), ''retention_drop'', %L, %L,
                jsonb_build_object(''raw_events'', count(*)), %L
         FROM %I GROUP BY company_id', p_actor, p_at, 'dropped partition ' || p_partition, p_partition);
    EXECUTE format('DELETE FROM event_ids e USING %I r
                    WHERE e.company_id = r.company_id AND e.event_id = r.event_id', p_partition);
    EXECUTE format('ALTER TABLE raw_events DETACH PARTITION %I', p_partition);
    EXECUTE format('DROP TABLE %I', p_partition);
    RETURN true;
END
$$;
REVOKE EXECUTE ON FUNCTION lux_drop_raw_event_partition(text, text, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lux_drop_raw_event_partition(text, text, timestamptz) TO lux_eraser;

-- The raw_events partitions with their bounds, oldest first, and each company's cutoff: what
-- the retention job plans from (the erasure role cannot read the catalog's bounds by itself
-- in a portable way, and must not see other companies' settings row by row).
CREATE FUNCTION lux_raw_event_partitions()
    RETURNS TABLE (partition_name text, lower_bound timestamptz, upper_bound timestamptz)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = public, pg_temp
    AS $$
        SELECT c.relname::text,
               (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'FROM \(''([^'']+)''\)'))[1]::timestamptz,
               (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'TO \(''([^'']+)''\)'))[1]::timestamptz
        FROM pg_class c JOIN pg_inherits i ON i.inhrelid = c.oid
        WHERE i.inhparent = 'raw_events'::regclass
        ORDER BY 2
    $$;
CREATE FUNCTION lux_retention_cutoffs(p_at timestamptz)
    RETURNS TABLE (company_id uuid, cutoff timestamptz)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = public, pg_temp
    AS $$
        SELECT company_id, lux_retention_cutoff(p_at, raw_event_retention_months)
        FROM companies ORDER BY company_id
    $$;
REVOKE EXECUTE ON FUNCTION lux_raw_event_partitions() FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION lux_retention_cutoffs(timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lux_raw_event_partitions() TO lux_eraser;
GRANT EXECUTE ON FUNCTION lux_retention_cutoffs(timestamptz) TO lux_eraser;

-- Requests past their due date that are still open, across companies, for /metrics (a
-- count only: nothing about any company's requests).
CREATE FUNCTION lux_overdue_privacy_requests(p_today date) RETURNS bigint
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = public, pg_temp
    AS $$
        SELECT count(*) FROM privacy_requests
        WHERE state IN ('received', 'acknowledged') AND due_by < p_today
    $$;
REVOKE EXECUTE ON FUNCTION lux_overdue_privacy_requests(date) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lux_overdue_privacy_requests(date) TO lux_app;
