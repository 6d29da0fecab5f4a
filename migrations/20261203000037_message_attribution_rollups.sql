-- Message attribution and rollups (SPEC §8.1, issue 15): which click earned an order, what
-- the jobs need to redo only what changed, and the daily rollups of the `messages` report.

-- When each provider event was written: the transaction's start, like sessions.created_at,
-- which the jobs' watermarks are compared with. (`received_at` is when the service's clock
-- says the provider delivered it; a test or a replay may set that clock.)
ALTER TABLE message_events ADD COLUMN written_at timestamptz NOT NULL DEFAULT now();
CREATE INDEX message_events_by_written ON message_events (company_id, written_at);

-- New sends (a landing session's lux_mid only earns credit once its send is known).
CREATE INDEX message_sends_by_created ON message_sends (company_id, created_at);

-- Sessions that landed with `lux_mid`: clicks for attribution and the rollups. Partial: a
-- few percent of sessions carry one.
CREATE INDEX sessions_by_message ON sessions (company_id, message_id)
    WHERE message_id IS NOT NULL;
CREATE INDEX sessions_with_message_by_created ON sessions (company_id, created_at)
    WHERE message_id IS NOT NULL;

-- The click that earned the order its message (orders.message_id, message_channel): when it
-- happened and what it was ('event:<event_id>' of message_events, 'session:<session_id>' of a
-- landing with lux_mid), so every credited order can be traced to one row. And when the job
-- last changed any of the four, which the rollups job compares with its watermark.
ALTER TABLE orders ADD COLUMN message_click_at timestamptz;
ALTER TABLE orders ADD COLUMN message_click text;
ALTER TABLE orders ADD COLUMN message_attributed_at timestamptz;
CREATE INDEX orders_by_message_attributed ON orders (company_id, message_attributed_at);
CREATE INDEX orders_unattributed_to_messages ON orders (company_id)
    WHERE message_attributed_at IS NULL;
CREATE INDEX orders_by_message ON orders (company_id, message_id) WHERE message_id IS NOT NULL;

-- The send days message rollups leave: a send whose time moves (a provider event made it,
-- the API later says when it left) or that is deleted, and an order whose credit moves to
-- another message (or that is deleted) leave counts on the old send's day, which the rows as
-- they are now cannot point to. Triggers note the old send time, stamped like
-- order_changes, for the rollups job.
CREATE TABLE message_changes (
    company_id  uuid NOT NULL,
    sent_at     timestamptz NOT NULL,
    changed_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX message_changes_by_time ON message_changes (company_id, changed_at);

CREATE FUNCTION lux_note_send_left_day() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    IF TG_OP = 'DELETE'
       OR coalesce(NEW.sent_at, NEW.created_at) IS DISTINCT FROM coalesce(OLD.sent_at, OLD.created_at)
    THEN
        INSERT INTO message_changes (company_id, sent_at)
        VALUES (OLD.company_id, coalesce(OLD.sent_at, OLD.created_at));
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER note_send_left_day AFTER UPDATE OF sent_at OR DELETE ON message_sends
    FOR EACH ROW EXECUTE FUNCTION lux_note_send_left_day();

CREATE FUNCTION lux_note_order_left_message() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    IF TG_OP = 'DELETE' OR NEW.message_id IS DISTINCT FROM OLD.message_id THEN
        INSERT INTO message_changes (company_id, sent_at)
        SELECT company_id, coalesce(sent_at, created_at) FROM message_sends
        WHERE company_id = OLD.company_id AND message_id = OLD.message_id;
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER note_order_left_message AFTER UPDATE OF message_id OR DELETE ON orders
    FOR EACH ROW WHEN (OLD.message_id IS NOT NULL)
    EXECUTE FUNCTION lux_note_order_left_message();

-- Daily message rollups, by the send's local day (a message's deliveries, opens, clicks and
-- orders count on the day it was sent, whenever they happen: see docs/decisions.md). Counts
-- are of sends: `opens` = sends with at least one human open, and so on (docs/metrics.md).
-- Per channel and campaign ('' for none): what the report reads for channels and campaigns.
CREATE TABLE rollup_message_days (
    company_id     uuid NOT NULL,
    day            date NOT NULL,
    channel        text NOT NULL,
    campaign       text NOT NULL,
    sent           integer NOT NULL,
    delivered      integer NOT NULL,
    bounced        integer NOT NULL,
    opens          integer NOT NULL,
    machine_opens  integer NOT NULL,
    clicks         integer NOT NULL,
    unsubscribes   integer NOT NULL,
    complaints     integer NOT NULL,
    PRIMARY KEY (company_id, day, channel, campaign)
);

-- The same counts per message (one send to one recipient: each is 0 or 1), for
-- `group=message`.
CREATE TABLE rollup_message_sends (
    company_id     uuid NOT NULL,
    day            date NOT NULL,
    message_id     text NOT NULL,
    channel        text NOT NULL,
    campaign       text NOT NULL,
    sent           integer NOT NULL,
    delivered      integer NOT NULL,
    bounced        integer NOT NULL,
    opens          integer NOT NULL,
    machine_opens  integer NOT NULL,
    clicks         integer NOT NULL,
    unsubscribes   integer NOT NULL,
    complaints     integer NOT NULL,
    PRIMARY KEY (company_id, day, message_id)
);

-- Orders credited to a message (orders.message_id) and their net revenue, per message and
-- currency, on the send's day. Cancelled and failed orders are left out, as in every rollup.
CREATE TABLE rollup_message_orders (
    company_id  uuid NOT NULL,
    day         date NOT NULL,
    message_id  text NOT NULL,
    channel     text NOT NULL,
    campaign    text NOT NULL,
    currency    char(3) NOT NULL,
    orders      integer NOT NULL,
    net_minor   bigint NOT NULL,
    PRIMARY KEY (company_id, day, message_id, currency)
);

-- The same per day, channel, campaign and currency: what the channel and campaign rows read
-- (a year of them is a few thousand rows, where the per-send rows are one per credited order).
CREATE TABLE rollup_message_revenue_days (
    company_id  uuid NOT NULL,
    day         date NOT NULL,
    channel     text NOT NULL,
    campaign    text NOT NULL,
    currency    char(3) NOT NULL,
    orders      integer NOT NULL,
    net_minor   bigint NOT NULL,
    PRIMARY KEY (company_id, day, channel, campaign, currency)
);

DO $$
DECLARE
    t text;
BEGIN
    ALTER TABLE message_changes ENABLE ROW LEVEL SECURITY;
    CREATE POLICY tenant ON message_changes USING (company_id = (SELECT lux_current_company()))
        WITH CHECK (company_id = (SELECT lux_current_company()));
    FOREACH t IN ARRAY ARRAY['rollup_message_days', 'rollup_message_sends', 'rollup_message_orders',
                             'rollup_message_revenue_days']
    LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY tenant ON %I USING (company_id = (SELECT lux_reader_company()))
                        WITH CHECK (company_id = (SELECT lux_reader_company()))', t);
        EXECUTE format('GRANT SELECT ON %I TO lux_reader', t);
        EXECUTE format('GRANT SELECT, INSERT, DELETE ON %I TO lux_app', t);
    END LOOP;
END
$$;

GRANT SELECT, INSERT, DELETE ON message_changes TO lux_app;
