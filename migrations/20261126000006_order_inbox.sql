-- Purchase events become orders through an inbox: the ingest transaction only appends the
-- purchase here (one batched insert), and an order worker merges it into `orders` in its own
-- transaction. Order merging takes a per-company lock and several statements per purchase;
-- doing it inside ingestion serialised the batch writers (half the throughput). The inbox
-- is durable, so a crash between the two leaves work to do, never a lost order.
CREATE TABLE order_inbox (
    company_id      uuid NOT NULL,
    event_id        uuid NOT NULL,
    order_number    text NOT NULL,
    currency        char(3) NOT NULL,
    gross_minor     bigint,
    discount_minor  bigint,
    tax_minor       bigint,
    shipping_minor  bigint,
    placed_at       timestamptz NOT NULL,
    email_hash      bytea,
    user_id         text,
    visitor_id      uuid,
    session_id      uuid,
    PRIMARY KEY (company_id, event_id)
);
ALTER TABLE order_inbox ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON order_inbox
    USING (company_id = lux_current_company())
    WITH CHECK (company_id = lux_current_company());
-- UPDATE only because SELECT ... FOR UPDATE requires it; rows are never updated.
GRANT SELECT, INSERT, UPDATE, DELETE ON order_inbox TO lux_app;

-- Which companies have purchases waiting: the worker then works per company, under
-- row-level security. Reveals nothing but company ids to the service's own role.
CREATE FUNCTION lux_order_inbox_companies() RETURNS SETOF uuid
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = public, pg_temp
    AS $$ SELECT DISTINCT company_id FROM order_inbox $$;
REVOKE EXECUTE ON FUNCTION lux_order_inbox_companies() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lux_order_inbox_companies() TO lux_app;
