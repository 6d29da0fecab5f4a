-- Email and SMS messages (SPEC §8.1, issue 15): sends, provider events, tracked links,
-- consent changes, and the credit an order gives a message.

-- Webhook secrets for the message providers. For `ses` the "secret" is the SNS topic ARN the
-- company accepts (SNS signs with Amazon's certificate, not with a shared secret).
ALTER TABLE webhook_secrets DROP CONSTRAINT webhook_secrets_provider_check;
ALTER TABLE webhook_secrets ADD CONSTRAINT webhook_secrets_provider_check
    CHECK (provider IN ('stripe', 'woocommerce', 'sendgrid', 'mailgun', 'ses', 'twilio'));

-- One row per message sent to one recipient (SPEC §11 names this table and its columns).
-- `message_id` is ours and travels in links as `lux_mid`; a send first learned from a provider
-- event that carries no `lux_mid` gets `{provider}:{provider_message_id}`.
CREATE TABLE message_sends (
    company_id          uuid NOT NULL,
    message_id          text NOT NULL CHECK (length(message_id) BETWEEN 1 AND 200),
    channel             text NOT NULL CHECK (channel IN ('email', 'sms')),
    provider            text NOT NULL CHECK (provider IN ('sendgrid', 'mailgun', 'ses', 'twilio', 'other')),
    provider_message_id text,
    campaign            text,
    -- Keyed hash (the company's hash_key) of the normalised email or E.164 phone; for an email
    -- the same value as orders.email_hash. Never the address itself.
    recipient_hash      bytea,
    -- NULL while the send is known only from a provider event that did not say when it left.
    sent_at             timestamptz,
    -- How we learned of it: 'api', 'import' or 'provider_event'.
    origin              text NOT NULL CHECK (origin IN ('api', 'import', 'provider_event')),
    created_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (company_id, message_id)
);
CREATE UNIQUE INDEX message_sends_by_provider_id ON message_sends (company_id, provider, provider_message_id)
    WHERE provider_message_id IS NOT NULL;
CREATE INDEX message_sends_by_recipient ON message_sends (company_id, recipient_hash)
    WHERE recipient_hash IS NOT NULL;
CREATE INDEX message_sends_by_time ON message_sends (company_id, sent_at);

-- What providers (and our own /r/ links, provider 'link') said happened to a send, in one
-- vocabulary. Append-only: the verified payload stays in webhook_deliveries (encrypted), and
-- each event names its delivery and its position in it.
CREATE TABLE message_events (
    company_id        uuid NOT NULL,
    event_id          uuid NOT NULL,
    provider          text NOT NULL,
    -- The provider's id for the event (SendGrid sg_event_id, Mailgun event id, SNS MessageId
    -- plus the recipient, Twilio MessageSid plus status): redelivery is a no-op on it.
    provider_event_id text NOT NULL,
    message_id        text NOT NULL,
    kind              text NOT NULL CHECK (kind IN ('queued', 'sent', 'delivered', 'deferred',
                          'bounced', 'dropped', 'failed', 'opened', 'clicked', 'unsubscribed',
                          'complained', 'resubscribed', 'other')),
    -- The provider's own word for it ('bounce', 'Permanent', 'undelivered', ...).
    provider_status   text NOT NULL,
    occurred_at       timestamptz NOT NULL,
    received_at       timestamptz NOT NULL,
    recipient_hash    bytea,
    url               text,
    is_machine        boolean NOT NULL DEFAULT false,
    -- Why it was judged a machine (provider_flag:…, apple_proxy, too_fast, scanner_burst,
    -- bot_user_agent); NULL for a person.
    machine_reason    text,
    -- The provider's reason for a bounce, drop or failure.
    reason            text,
    delivery_id       uuid,
    item_index        integer,
    PRIMARY KEY (company_id, event_id)
);
CREATE UNIQUE INDEX message_events_once ON message_events (company_id, provider, provider_event_id);
CREATE INDEX message_events_by_message ON message_events (company_id, message_id, occurred_at);
-- Human clicks are what attribution looks up, by recipient.
CREATE INDEX message_events_human_clicks ON message_events (company_id, recipient_hash, occurred_at)
    WHERE kind = 'clicked' AND NOT is_machine;
CREATE INDEX message_events_by_receipt ON message_events (company_id, received_at);
CREATE TRIGGER append_only_rows BEFORE UPDATE OR DELETE ON message_events
    FOR EACH ROW EXECUTE FUNCTION lux_reject_raw_event_change();
CREATE TRIGGER append_only_statements BEFORE UPDATE OR DELETE OR TRUNCATE ON message_events
    FOR EACH STATEMENT EXECUTE FUNCTION lux_reject_raw_event_change();

-- Mailgun signs timestamp + token: a token seen once is refused afterwards (replay).
CREATE TABLE webhook_replay_tokens (
    company_id  uuid NOT NULL,
    provider    text NOT NULL,
    token_sha256 bytea NOT NULL,
    signed_at   timestamptz NOT NULL,
    PRIMARY KEY (company_id, provider, token_sha256)
);

-- SNS signing certificates by URL: fetched once over HTTPS from sns.<region>.amazonaws.com,
-- or pinned by `lux sns trust-cert`. Amazon's, not a tenant's: no company column.
CREATE TABLE sns_certificates (
    url         text PRIMARY KEY,
    pem         text NOT NULL,
    pinned      boolean NOT NULL,
    stored_at   timestamptz NOT NULL DEFAULT now()
);

-- Short tracked links (`GET /r/{code}`). The code is global (the redirect has no company in
-- its path), so it is resolved through lux_resolve_link below, like API keys.
CREATE TABLE message_links (
    company_id  uuid NOT NULL,
    code        text NOT NULL UNIQUE,
    message_id  text NOT NULL,
    url         text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (company_id, code)
);

CREATE FUNCTION lux_resolve_link(p_code text)
    RETURNS TABLE (company_id uuid, message_id text, url text)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = public, pg_temp
    AS $$ SELECT l.company_id, l.message_id, l.url FROM message_links l WHERE l.code = p_code $$;
REVOKE EXECUTE ON FUNCTION lux_resolve_link(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lux_resolve_link(text) TO lux_app;

-- Consent changes learned after collection (a provider unsubscribe or complaint, later a
-- person's request). Append-only; the latest record per subject wins. The subject is a keyed
-- hash: an email hash (same as orders.email_hash) or a phone hash.
CREATE TABLE consent_records (
    company_id      uuid NOT NULL,
    record_id       uuid NOT NULL,
    subject_hash    bytea NOT NULL,
    subject_kind    text NOT NULL CHECK (subject_kind IN ('email', 'phone')),
    marketing       boolean NOT NULL,
    -- e.g. 'sendgrid:unsubscribed', 'ses:complained'.
    source          text NOT NULL,
    message_id      text,
    recorded_at     timestamptz NOT NULL,
    PRIMARY KEY (company_id, record_id)
);
CREATE INDEX consent_records_by_subject ON consent_records (company_id, subject_hash, recorded_at);
CREATE TRIGGER append_only_rows BEFORE UPDATE OR DELETE ON consent_records
    FOR EACH ROW EXECUTE FUNCTION lux_reject_raw_event_change();
CREATE TRIGGER append_only_statements BEFORE UPDATE OR DELETE OR TRUNCATE ON consent_records
    FOR EACH STATEMENT EXECUTE FUNCTION lux_reject_raw_event_change();

-- The message an order is credited to (SPEC §8.1: the buyer's last human message click in
-- the 120 h before the purchase), set by the attribution job.
ALTER TABLE orders ADD COLUMN message_id text;
ALTER TABLE orders ADD COLUMN message_channel text CHECK (message_channel IN ('email', 'sms'));

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['message_sends', 'message_events', 'webhook_replay_tokens',
                             'message_links', 'consent_records'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY tenant ON %I USING (company_id = (SELECT lux_current_company())) '
                       'WITH CHECK (company_id = (SELECT lux_current_company()))', t);
    END LOOP;
END
$$;

GRANT SELECT, INSERT, UPDATE ON message_sends TO lux_app;
GRANT SELECT, INSERT ON message_events, webhook_replay_tokens, message_links, consent_records TO lux_app;
GRANT SELECT, INSERT, UPDATE ON sns_certificates TO lux_app;
-- The reader (reports) reads the message rollups only, never these tables.
