-- An order's customer through the identity graph (issue 13). The snippet's purchase carries
-- neither an email nor a user id: its customer is found through its visitor's person (their
-- email hashes and user id), and a guest order (a visitor never identified) gets a guest
-- customer keyed by that visitor, which becomes the identified customer once one is learned.

-- The visitor a guest customer was created for (kept once the customer learns an email or a
-- user id: later guest orders from that device find it).
ALTER TABLE customers ADD COLUMN visitor_id uuid;
CREATE UNIQUE INDEX customers_by_visitor ON customers (company_id, visitor_id)
    WHERE visitor_id IS NOT NULL;

-- Orders known only by their visitor: the ones an identity link can give a customer.
CREATE INDEX orders_by_visitor_only ON orders (company_id, visitor_id)
    WHERE email_hash IS NULL AND user_id IS NULL AND visitor_id IS NOT NULL;

-- Persons whose keys changed (a new key, a merge, a device moving), noted by the identity
-- link in the ingest transaction; the order worker then re-resolves the customers of the
-- orders of their visitors, and deletes the note. A note without a person asks for every
-- order of the company without a customer (the backfill below).
CREATE TABLE customer_relinks (
    company_id  uuid NOT NULL,
    note_id     bigint GENERATED ALWAYS AS IDENTITY,
    person_id   uuid,
    noted_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (company_id, note_id)
);
ALTER TABLE customer_relinks ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON customer_relinks
    USING (company_id = (SELECT lux_current_company()))
    WITH CHECK (company_id = (SELECT lux_current_company()));
-- UPDATE only because SELECT ... FOR UPDATE requires it; rows are never updated.
GRANT SELECT, INSERT, UPDATE, DELETE ON customer_relinks TO lux_app;

-- Which companies have notes waiting: the worker then works per company, under row-level
-- security. Reveals nothing but company ids to the service's own role.
CREATE FUNCTION lux_customer_relink_companies() RETURNS SETOF uuid
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = public, pg_temp
    AS $$ SELECT DISTINCT company_id FROM customer_relinks $$;
REVOKE EXECUTE ON FUNCTION lux_customer_relink_companies() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lux_customer_relink_companies() TO lux_app;

-- Existing orders: the purchase events of snippet-only shops never had a customer. The
-- order worker resolves them on its first round after this migration; each order it gives a
-- customer is stamped `updated_at`, so the next rollups run recomputes its day.
INSERT INTO customer_relinks (company_id)
SELECT DISTINCT company_id FROM orders WHERE customer_id IS NULL AND visitor_id IS NOT NULL;
