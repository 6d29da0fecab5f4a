-- The ingest writers update session counters with one UPDATE ... FROM unnest() per batch on
-- their own connections (generic plans kept on the primary key; see analytics::writer), so
-- the per-session loop of lux_touch_sessions is no longer called. Its cached plans lived in
-- each backend, made once on what could be a still-empty table, out of the writers' reach.
DROP FUNCTION lux_touch_sessions(uuid, uuid[], timestamptz[], int4[], int4[], int8[]);
