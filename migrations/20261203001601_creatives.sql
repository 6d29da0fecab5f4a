-- The creative catalog (SPEC §8.2, issue 16): one row per ad a company runs, with the concept
-- and angle it tests, filled by `lux import creatives`. Spend rows name a creative by
-- `creative_id`; this table says what that creative is.
CREATE TABLE creatives (
    company_id  uuid NOT NULL,
    creative_id text NOT NULL CHECK (length(creative_id) BETWEEN 1 AND 200),
    name        text,
    platform    text,
    campaign    text,
    concept     text,
    angle       text,
    format      text,
    launched_on date NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    -- Moves only when an import changes one of the row's values.
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (company_id, creative_id)
);

ALTER TABLE creatives ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON creatives USING (company_id = (SELECT lux_current_company()))
    WITH CHECK (company_id = (SELECT lux_current_company()));

GRANT SELECT, INSERT, UPDATE ON creatives TO lux_app;
