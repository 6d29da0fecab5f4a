-- Creative fatigue history (SPEC §8.2, issue 16): one verdict per creative per local day, as
-- the daily fatigue job computed it from the creative rollups. The history (not only the
-- latest status) is kept so the `creative_fatigue` alert (SPEC §8.4) can fire on the day a
-- creative enters `fatigued`, and so a rerun of a day replaces that day's verdict only.
CREATE TABLE creative_fatigue_history (
    company_id           uuid NOT NULL,
    creative_id          text NOT NULL CHECK (length(creative_id) BETWEEN 1 AND 200),
    day                  date NOT NULL,
    status               text NOT NULL
        CHECK (status IN ('fresh', 'watch', 'fatigued', 'insufficient_data')),
    -- NULL while the creative has no baseline week yet (`insufficient_data`).
    baseline_ctr         double precision,
    recent_ctr           double precision,
    -- Relative drop of the recent week's CTR from the baseline (0.25 = 25 % lower).
    drop                 double precision,
    p_value              double precision,
    baseline_impressions bigint NOT NULL DEFAULT 0,
    recent_impressions   bigint NOT NULL DEFAULT 0,
    explanation          text NOT NULL,
    computed_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (company_id, creative_id, day)
);

ALTER TABLE creative_fatigue_history ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON creative_fatigue_history
    USING (company_id = (SELECT lux_reader_company()))
    WITH CHECK (company_id = (SELECT lux_reader_company()));
GRANT SELECT ON creative_fatigue_history TO lux_reader;
GRANT SELECT, INSERT, UPDATE, DELETE ON creative_fatigue_history TO lux_app;
