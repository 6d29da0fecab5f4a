-- Creative rollups (SPEC §8.2, issue 16): what the `creatives` and `creative_decay` reports and
-- the daily fatigue job read, per company-local day and creative.

-- The creative of a session: the `creative_id` of its first event that carries one (the
-- snippet's option, a server's event), set by the ingestion writer when the session is
-- written. NULL when none did: the session's creative is then its landing `utm_content`.
-- Older sessions (before this column) have NULL and fall back to `utm_content` too.
ALTER TABLE sessions ADD COLUMN creative_id text;

-- Unique people reached, when the ad platform's export has it (the generic CSV's optional
-- `reach` column). NULL when unknown.
ALTER TABLE ad_spend ADD COLUMN reach bigint CHECK (reach >= 0);

-- The reports read the catalog (names, concepts, angles) as `lux_reader`, so its policy
-- follows the reader tables' (the reader login's company, else the transaction's setting).
ALTER POLICY tenant ON creatives USING (company_id = (SELECT lux_reader_company()))
    WITH CHECK (company_id = (SELECT lux_reader_company()));
GRANT SELECT ON creatives TO lux_reader;

-- Delivery and traffic per creative and day: impressions, clicks and reach from `ad_spend`
-- rows with that `ad_id` (summed over platforms and campaigns), and the sessions (bots left
-- out) that started that day with that creative. A creative with spend and no sessions, or
-- sessions and no spend, has a row all the same; one not in the catalog too.
CREATE TABLE rollup_creative_days (
    company_id   uuid NOT NULL,
    day          date NOT NULL,
    creative_id  text NOT NULL,
    impressions  bigint NOT NULL,
    clicks       bigint NOT NULL,
    -- Σ reach of the day's spend rows that have one; NULL when none has.
    reach        bigint,
    -- Impressions of the spend rows that have a reach (the numerator of frequency).
    reach_impressions bigint NOT NULL,
    sessions     integer NOT NULL,
    PRIMARY KEY (company_id, day, creative_id)
);

-- Spend per creative, day and currency, in minor units of the currency (exact, unrounded).
CREATE TABLE rollup_creative_spend_days (
    company_id   uuid NOT NULL,
    day          date NOT NULL,
    creative_id  text NOT NULL,
    currency     char(3) NOT NULL,
    spend_minor  numeric NOT NULL,
    PRIMARY KEY (company_id, day, creative_id, currency)
);

-- Orders and revenue per creative by the local day the order was placed, attribution model
-- and currency: the credits of the touches whose session carries the creative (the sums of
-- `rollup_revenue_daily` over its other keys).
CREATE TABLE rollup_creative_revenue_days (
    company_id   uuid NOT NULL,
    day          date NOT NULL,
    creative_id  text NOT NULL,
    model        text NOT NULL,
    currency     char(3) NOT NULL,
    orders       numeric NOT NULL,
    net_minor    numeric NOT NULL,
    PRIMARY KEY (company_id, day, creative_id, model, currency)
);

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['rollup_creative_days', 'rollup_creative_spend_days',
                             'rollup_creative_revenue_days']
    LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY tenant ON %I USING (company_id = (SELECT lux_reader_company()))
                        WITH CHECK (company_id = (SELECT lux_reader_company()))', t);
        EXECUTE format('GRANT SELECT ON %I TO lux_reader', t);
        EXECUTE format('GRANT SELECT, INSERT, DELETE ON %I TO lux_app', t);
    END LOOP;
END
$$;

-- The fatigue job reads one creative's days in order.
CREATE INDEX rollup_creative_days_by_creative ON rollup_creative_days (company_id, creative_id, day);
