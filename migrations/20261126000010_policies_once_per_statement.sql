-- The service's tenant policies compare company_id with lux_current_company(), which reads a
-- setting and parses it as a uuid. Written bare, PostgreSQL evaluates it for every row an
-- INSERT checks (WITH CHECK) and every row a scan filters: four times per ingested event.
-- Wrapped in a scalar subquery it is evaluated once per statement (an InitPlan), as the
-- reader policies already do. Same meaning: the setting cannot change within a statement.
--
-- raw_events' monthly partitions keep their own policies as they are; they apply only to a
-- partition named directly, which the service never does.
DO $$
DECLARE
    p record;
BEGIN
    FOR p IN
        SELECT pol.polname, c.relname
        FROM pg_policy pol
        JOIN pg_class c ON c.oid = pol.polrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = current_schema()
          AND NOT c.relispartition
          AND pg_get_expr(pol.polqual, pol.polrelid) = '(company_id = lux_current_company())'
    LOOP
        EXECUTE format(
            'ALTER POLICY %I ON %I USING (company_id = (SELECT lux_current_company())) '
            'WITH CHECK (company_id = (SELECT lux_current_company()))',
            p.polname, p.relname);
    END LOOP;
END
$$;
