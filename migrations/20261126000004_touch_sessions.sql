-- Updates the counters of sessions touched by an ingest batch, one primary-key lookup each.
--
-- A single UPDATE ... FROM unnest(...) was tried first: on a new, fast-growing sessions table
-- (before autovacuum's first ANALYZE) the planner estimated one row per company and scanned
-- all the company's sessions for every batch. Here each statement is an equality on the whole
-- primary key, which PostgreSQL always answers with the key's index, whatever the statistics.
CREATE FUNCTION lux_touch_sessions(
    p_company uuid,
    p_session_ids uuid[],
    p_last_seen timestamptz[],
    p_page_views int4[],
    p_events int4[],
    p_engagement_ms int8[]
) RETURNS void
    LANGUAGE plpgsql
    AS $$
BEGIN
    FOR i IN 1 .. coalesce(array_length(p_session_ids, 1), 0) LOOP
        UPDATE sessions
        SET last_seen_at = p_last_seen[i], page_views = p_page_views[i],
            events = p_events[i], engagement_ms = p_engagement_ms[i]
        WHERE company_id = p_company AND session_id = p_session_ids[i];
    END LOOP;
END
$$;
GRANT EXECUTE ON FUNCTION lux_touch_sessions(uuid, uuid[], timestamptz[], int4[], int4[], int8[]) TO lux_app;
