-- Conversion paths (issue 18, attribution paths dashboard): per local day of the order and
-- per path, the orders and their net revenue. A path is the channels of the order's touches
-- in order (attribution_credits' touch_index, whatever model credited them), consecutive
-- repeats shown once ("Paid Search > Email > Direct"); an order without touches has the path
-- 'Unattributed'. Recomputed with the day's other order rollups by the rollups job.
CREATE TABLE rollup_paths_daily (
    company_id  uuid NOT NULL,
    day         date NOT NULL,
    path        text NOT NULL,
    -- Channels in the path after collapsing repeats (1 for a single-channel path).
    steps       integer NOT NULL CHECK (steps >= 1),
    currency    char(3) NOT NULL,
    orders      integer NOT NULL CHECK (orders > 0),
    net_minor   bigint NOT NULL,
    PRIMARY KEY (company_id, day, path, currency)
);

ALTER TABLE rollup_paths_daily ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON rollup_paths_daily
    USING (company_id = (SELECT lux_reader_company()))
    WITH CHECK (company_id = (SELECT lux_reader_company()));
GRANT SELECT ON rollup_paths_daily TO lux_reader;
GRANT SELECT, INSERT, DELETE ON rollup_paths_daily TO lux_app;
