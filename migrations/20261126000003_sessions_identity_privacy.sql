-- Sessions, identity links, suppressions and the daily IP-hash salts.

-- One row per visit. Landing page, referrer, campaign and channel are fixed when the session
-- starts; counters and last_seen_at move as events arrive.
CREATE TABLE sessions (
    company_id     uuid NOT NULL,
    session_id     uuid NOT NULL,
    visitor_id     uuid NOT NULL,
    started_at     timestamptz NOT NULL,
    last_seen_at   timestamptz NOT NULL,
    landing_page   text,
    referrer       text,
    source         text NOT NULL,
    medium         text NOT NULL,
    campaign       text,
    channel        text NOT NULL,
    utm_source     text,
    utm_medium     text,
    utm_campaign   text,
    utm_term       text,
    utm_content    text,
    gclid          text,
    gbraid         text,
    wbraid         text,
    fbclid         text,
    msclkid        text,
    ttclid         text,
    li_fat_id      text,
    message_id     text,
    -- What a later event's URL is compared with to decide whether a new campaign started.
    campaign_key   text,
    page_views     integer NOT NULL DEFAULT 0,
    events         integer NOT NULL DEFAULT 0,
    engagement_ms  bigint NOT NULL DEFAULT 0,
    is_bot         boolean NOT NULL DEFAULT false,
    PRIMARY KEY (company_id, session_id)
-- Every event updates its session's counters and last_seen_at: room on each page and no
-- index on those columns keep the updates HOT (no new index entries per event).
) WITH (fillfactor = 80);
CREATE INDEX sessions_by_visitor ON sessions (company_id, visitor_id, started_at DESC);
CREATE INDEX sessions_by_start ON sessions (company_id, started_at);

-- Identity graph: every key (a visitor id, a user id, an email hash in hex) that belongs to a
-- person points at one person_id. Linking two keys of different persons merges the persons.
CREATE TABLE identity_keys (
    company_id  uuid NOT NULL,
    key_kind    text NOT NULL CHECK (key_kind IN ('visitor', 'user', 'email')),
    key_value   text NOT NULL,
    person_id   uuid NOT NULL,
    first_seen_at timestamptz NOT NULL,
    PRIMARY KEY (company_id, key_kind, key_value)
);
CREATE INDEX identity_keys_by_person ON identity_keys (company_id, person_id);

-- People who must not be tracked: collection stops at ingest for these.
CREATE TABLE suppressions (
    company_id  uuid NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('visitor', 'user', 'email')),
    -- visitor id, user id, or the email's keyed hash in hex.
    value       text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (company_id, kind, value)
);

-- The salt for hashing IPs on one UTC day. Rows of past days are deleted at rotation, so a
-- stored ip_hash can no longer be linked to an address by trying every IPv4 address.
-- Not a tenant table: one salt serves all companies (the company id is part of the message).
CREATE TABLE ip_salts (
    day   date PRIMARY KEY,
    salt  bytea NOT NULL CHECK (length(salt) = 32)
);

ALTER TABLE sessions ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON sessions
    USING (company_id = lux_current_company())
    WITH CHECK (company_id = lux_current_company());
ALTER TABLE identity_keys ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON identity_keys
    USING (company_id = lux_current_company())
    WITH CHECK (company_id = lux_current_company());
ALTER TABLE suppressions ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON suppressions
    USING (company_id = lux_current_company())
    WITH CHECK (company_id = lux_current_company());

GRANT SELECT, INSERT, UPDATE ON sessions, identity_keys TO lux_app;
GRANT SELECT ON suppressions TO lux_app;
GRANT SELECT, INSERT, DELETE ON ip_salts TO lux_app;
