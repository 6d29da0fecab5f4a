-- Roles, tenancy helpers and the companies and keys tables.
--
-- Three roles (SPEC §3): the owner (whoever runs the migrations) owns every object; `lux_app`
-- is what the service runs as (no BYPASSRLS, never UPDATE/DELETE on raw events); `lux_reader`
-- is for dashboards and Metabase and will only ever see rollups and views.
-- Roles are cluster-wide, so creating them must tolerate another database (or a parallel
-- test) having created them first.
DO $$
BEGIN
    BEGIN
        CREATE ROLE lux_app NOLOGIN NOBYPASSRLS;
    EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
    END;
    BEGIN
        CREATE ROLE lux_reader NOLOGIN NOBYPASSRLS;
    EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
    END;
END
$$;

-- The service connects as the owner and switches to lux_app with SET ROLE, so the owner
-- must be a member. A superuser owner can SET ROLE to anything and needs no grant.
DO $$
BEGIN
    IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        EXECUTE format('GRANT lux_app, lux_reader TO %I', current_user);
    END IF;
END
$$;

GRANT USAGE ON SCHEMA public TO lux_app, lux_reader;

-- The company of the current transaction, set by the service with
-- `SELECT set_config('lux.company_id', $1, true)`. NULL when unset, which matches no row.
CREATE FUNCTION lux_current_company() RETURNS uuid
    LANGUAGE sql STABLE
    AS $$ SELECT nullif(current_setting('lux.company_id', true), '')::uuid $$;

CREATE TABLE companies (
    company_id        uuid PRIMARY KEY,
    name              text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    timezone          text NOT NULL,
    currency          char(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    -- Origins allowed to send browser events (CORS). Empty means any origin.
    allowed_origins   text[] NOT NULL DEFAULT '{}',
    -- Whole-company suppression: when false, /e stores nothing for this company.
    tracking_enabled  boolean NOT NULL DEFAULT true,
    -- Analytics consent assumed when an event does not say (opt-out regimes such as CCPA).
    default_analytics_consent boolean NOT NULL DEFAULT true,
    settings          jsonb NOT NULL DEFAULT '{}',
    -- Per-company key for hashing emails: the same address hashes differently in two
    -- companies, so hashes cannot be joined across tenants.
    hash_key          bytea NOT NULL CHECK (length(hash_key) = 32),
    created_at        timestamptz NOT NULL DEFAULT now()
);

-- Public write keys (snippet) and secret keys (server-side). Only SHA-256 hashes are kept:
-- keys are 256-bit random strings, so a fast hash is enough and lookups stay cheap.
CREATE TABLE api_keys (
    company_id  uuid NOT NULL REFERENCES companies,
    key_id      uuid NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('write', 'secret')),
    key_hash    bytea NOT NULL CHECK (length(key_hash) = 32),
    -- The first characters of the key, to tell keys apart in listings.
    key_prefix  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz,
    PRIMARY KEY (company_id, key_id)
);
CREATE INDEX api_keys_by_hash ON api_keys (key_hash);

-- Resolving a key happens before the company is known, so it cannot go through row-level
-- security: this definer function answers only "which company, which kind" for one hash.
CREATE FUNCTION lux_resolve_key(p_key_hash bytea)
    RETURNS TABLE (company_id uuid, kind text)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = public, pg_temp
    AS $$
        SELECT k.company_id, k.kind FROM api_keys k
        WHERE k.key_hash = p_key_hash AND k.revoked_at IS NULL
    $$;
REVOKE EXECUTE ON FUNCTION lux_resolve_key(bytea) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lux_resolve_key(bytea) TO lux_app;

ALTER TABLE companies ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON companies
    USING (company_id = lux_current_company())
    WITH CHECK (company_id = lux_current_company());
ALTER TABLE api_keys ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON api_keys
    USING (company_id = lux_current_company())
    WITH CHECK (company_id = lux_current_company());

GRANT SELECT ON companies, api_keys TO lux_app;
