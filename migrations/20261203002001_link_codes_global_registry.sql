-- Link codes are unique across companies (`GET /r/{code}` has no company in its path), but a
-- unique constraint on a tenant table that does not include company_id cannot be enforced
-- once tables are distributed by company_id (Citus), and breaks the schema's rule that
-- company_id leads every unique key (issue 20). The global uniqueness moves to a registry of
-- claimed codes, which holds no company data: only the random codes, already public in the
-- messages that carry them. A link is stored only after its code is claimed here.
CREATE TABLE link_codes (
    code       text PRIMARY KEY CHECK (length(code) BETWEEN 1 AND 64),
    claimed_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO link_codes (code) SELECT code FROM message_links;
GRANT SELECT, INSERT ON link_codes TO lux_app;

ALTER TABLE message_links DROP CONSTRAINT message_links_code_key;
-- The redirect still finds a link by its code alone (lux_resolve_link).
CREATE INDEX message_links_by_code ON message_links (code);
