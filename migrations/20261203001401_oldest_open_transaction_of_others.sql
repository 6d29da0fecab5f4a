-- A job run's watermark is least(its `now`, the oldest transaction still open) less a margin.
-- The run's own transaction (the one recording its start) writes only job_runs and is not a
-- change any run looks for: counting it tied the watermark to the database's clock even when
-- the run takes `now` from the service's clock. Other sessions only, then.
CREATE OR REPLACE FUNCTION lux_oldest_open_transaction() RETURNS timestamptz
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = public, pg_temp
    AS $$ SELECT min(xact_start) FROM pg_stat_activity
          WHERE datname = current_database() AND backend_type = 'client backend'
            AND usename = session_user AND xact_start IS NOT NULL
            AND pid <> pg_backend_pid() $$;
