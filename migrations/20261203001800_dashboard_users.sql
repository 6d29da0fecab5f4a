-- Dashboard users (SPEC §8.5, §11: `lux user create`, `lux user grant`, `/app/login`).
--
-- A user is a member of staff (of the company, or of an agency serving several companies):
-- a login, not a visitor, so their email is kept as typed (normalized) rather than hashed.
-- Users are global (one login for every company an agency serves); what they may see is their
-- grants, one row per company, under the companies' row-level security like every tenant
-- table. Passwords are argon2id PHC strings; session tokens are kept as SHA-256 hashes only.

CREATE TABLE users (
    user_id        uuid PRIMARY KEY,
    -- Trimmed and lower-cased by the service (`dashboards::users::Email`).
    email          text NOT NULL UNIQUE
                   CHECK (email = lower(btrim(email)) AND length(email) BETWEEN 3 AND 320),
    password_hash  text NOT NULL CHECK (password_hash LIKE '$argon2id$%'),
    created_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE user_grants (
    company_id  uuid NOT NULL REFERENCES companies,
    user_id     uuid NOT NULL REFERENCES users ON DELETE CASCADE,
    role        text NOT NULL CHECK (role IN ('viewer', 'admin')),
    granted_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (company_id, user_id)
);
CREATE INDEX user_grants_by_user ON user_grants (user_id);

-- A signed-in browser: the cookie holds a random token, this table its hash.
CREATE TABLE user_sessions (
    token_hash  bytea PRIMARY KEY CHECK (length(token_hash) = 32),
    user_id     uuid NOT NULL REFERENCES users ON DELETE CASCADE,
    created_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL
);
CREATE INDEX user_sessions_by_user ON user_sessions (user_id);
CREATE INDEX user_sessions_by_expiry ON user_sessions (expires_at);

-- Failed logins, for throttling: keyed by a hash of the email and the hashed client address
-- (today's IP salt), so neither the address nor a mistyped password ever reaches disk.
CREATE TABLE login_failures (
    throttle_key  bytea NOT NULL CHECK (length(throttle_key) = 32),
    failed_at     timestamptz NOT NULL
);
CREATE INDEX login_failures_by_key ON login_failures (throttle_key, failed_at);

ALTER TABLE user_grants ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON user_grants
    USING (company_id = lux_current_company())
    WITH CHECK (company_id = lux_current_company());

-- A signed-in user's companies, before any company is chosen (so outside row-level
-- security): a definer function that answers for one user only, like lux_resolve_key.
CREATE FUNCTION lux_user_companies(p_user_id uuid)
    RETURNS TABLE (company_id uuid, name text, role text, timezone text, currency text)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = public, pg_temp
    AS $$
        SELECT c.company_id, c.name, g.role, c.timezone, c.currency::text
        FROM user_grants g JOIN companies c USING (company_id)
        WHERE g.user_id = p_user_id
        ORDER BY c.name, c.company_id
    $$;
REVOKE EXECUTE ON FUNCTION lux_user_companies(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lux_user_companies(uuid) TO lux_app;

GRANT SELECT, INSERT, UPDATE ON users TO lux_app;
GRANT SELECT, INSERT, DELETE ON user_sessions, login_failures TO lux_app;
GRANT SELECT ON user_grants TO lux_app;
