-- Commerce: orders merged from purchase events, Stripe and WooCommerce; customers; webhook
-- secrets and every webhook delivery as received.

-- One row per (company, order): a projection of what the sources said, recomputed whenever
-- one of them says something new. Money in integer minor units of `currency` (its ISO 4217
-- exponent: cents for USD, whole yen for JPY).
CREATE TABLE orders (
    company_id      uuid NOT NULL,
    order_id        uuid NOT NULL,
    -- The store's order number when a source gives one (WooCommerce number, purchase event
    -- order_id, Stripe metadata), else the payment's id.
    order_number    text NOT NULL,
    status          text NOT NULL CHECK (status IN
                        ('pending', 'paid', 'partially_refunded', 'refunded', 'cancelled', 'failed')),
    currency        char(3) NOT NULL,
    -- What the customer paid (tax and shipping included); NULL while no source has said.
    gross_minor     bigint,
    discount_minor  bigint NOT NULL DEFAULT 0,
    tax_minor       bigint NOT NULL DEFAULT 0,
    shipping_minor  bigint NOT NULL DEFAULT 0,
    refunded_minor  bigint NOT NULL DEFAULT 0,
    -- gross - refunded; 0 for cancelled and failed orders, which are not revenue.
    net_minor       bigint,
    placed_at       timestamptz NOT NULL,
    email_hash      bytea,
    user_id         text,
    visitor_id      uuid,
    session_id      uuid,
    customer_id     uuid,
    is_first_order  boolean NOT NULL DEFAULT false,
    -- Sources that reported this order: 'event', 'stripe', 'woocommerce'.
    sources         text[] NOT NULL DEFAULT '{}',
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (company_id, order_id)
);
CREATE INDEX orders_by_time ON orders (company_id, placed_at);
CREATE INDEX orders_by_customer ON orders (company_id, customer_id, placed_at);

-- Every identifier a source uses for an order ("order:1001", "stripe:pi_…", "stripe:cs_…",
-- "stripe:ch_…"). Sources that share one identifier share the order.
CREATE TABLE order_refs (
    company_id  uuid NOT NULL,
    ref         text NOT NULL,
    order_id    uuid NOT NULL,
    PRIMARY KEY (company_id, ref)
);
CREATE INDEX order_refs_by_order ON order_refs (company_id, order_id);

-- What each source last said about an order. The orders row is computed from these.
CREATE TABLE order_sources (
    company_id      uuid NOT NULL,
    order_id        uuid NOT NULL,
    source          text NOT NULL CHECK (source IN ('event', 'stripe', 'woocommerce')),
    status          text,
    currency        char(3),
    gross_minor     bigint,
    discount_minor  bigint,
    tax_minor       bigint,
    shipping_minor  bigint,
    refunded_minor  bigint,
    placed_at       timestamptz,
    -- The source's own last-modified time: an older snapshot never overwrites a newer one.
    source_updated_at timestamptz,
    order_number    text,
    email_hash      bytea,
    user_id         text,
    visitor_id      uuid,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (company_id, order_id, source)
);

-- Customers: one per email hash (or user id when no email is known).
CREATE TABLE customers (
    company_id      uuid NOT NULL,
    customer_id     uuid NOT NULL,
    email_hash      bytea,
    user_id         text,
    first_order_at  timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (company_id, customer_id)
);
CREATE UNIQUE INDEX customers_by_email ON customers (company_id, email_hash) WHERE email_hash IS NOT NULL;
CREATE UNIQUE INDEX customers_by_user ON customers (company_id, user_id) WHERE user_id IS NOT NULL;

-- Webhook signing secrets, encrypted with the installation's LUX_SECRETS_KEY
-- (ChaCha20-Poly1305; the providers' schemes need the secret itself, so it cannot be hashed).
CREATE TABLE webhook_secrets (
    company_id  uuid NOT NULL,
    provider    text NOT NULL CHECK (provider IN ('stripe', 'woocommerce', 'sendgrid', 'twilio')),
    nonce       bytea NOT NULL,
    ciphertext  bytea NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (company_id, provider)
);

-- Every webhook delivery and imported record, with its verification result. Append-only,
-- like raw_events: the audit trail from which orders can be replayed. Payloads carry emails
-- and IPs, so a verified payload is kept encrypted with LUX_SECRETS_KEY (as received, byte for
-- byte, once decrypted); of a payload that failed verification only its hash and size are
-- kept (it is nobody's data, and storing it would let anyone fill the disk).
CREATE TABLE webhook_deliveries (
    company_id      uuid NOT NULL,
    delivery_id     uuid NOT NULL,
    provider        text NOT NULL,
    -- 'webhook' or 'import'.
    channel         text NOT NULL,
    received_at     timestamptz NOT NULL DEFAULT now(),
    verified        boolean NOT NULL,
    failure         text,
    provider_event_id text,
    event_type      text,
    payload_sha256  bytea NOT NULL,
    payload_bytes   integer NOT NULL,
    payload_nonce   bytea,
    payload_ciphertext bytea,
    PRIMARY KEY (company_id, delivery_id)
);
CREATE TRIGGER append_only_rows BEFORE UPDATE OR DELETE ON webhook_deliveries
    FOR EACH ROW EXECUTE FUNCTION lux_reject_raw_event_change();
CREATE TRIGGER append_only_statements BEFORE UPDATE OR DELETE OR TRUNCATE ON webhook_deliveries
    FOR EACH STATEMENT EXECUTE FUNCTION lux_reject_raw_event_change();

-- Provider events already applied: a redelivery changes nothing. Keyed by type as well as
-- id, because anonymised fixtures (and only they) reuse one id for several events.
CREATE TABLE applied_provider_events (
    company_id  uuid NOT NULL,
    provider    text NOT NULL,
    event_id    text NOT NULL,
    event_type  text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (company_id, provider, event_id, event_type)
);

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['orders', 'order_refs', 'order_sources', 'customers',
                             'webhook_secrets', 'webhook_deliveries', 'applied_provider_events']
    LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY tenant ON %I USING (company_id = lux_current_company())
                        WITH CHECK (company_id = lux_current_company())', t);
    END LOOP;
END
$$;

GRANT SELECT, INSERT, UPDATE, DELETE ON orders, order_refs, order_sources, customers TO lux_app;
GRANT SELECT ON webhook_secrets TO lux_app;
GRANT SELECT, INSERT ON webhook_deliveries, applied_provider_events TO lux_app;
