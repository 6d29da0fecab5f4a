-- Experiments (SPEC §8.3, issue 16): the registry of a company's A/B tests and the rollups
-- their results are read from.

-- One row per experiment, created by `lux experiments create` or `POST /api/v1/experiments`.
-- `status` says whether it runs; a concluded experiment has its `ended_on` and, when one
-- variant won, its `winner` (a concluded experiment with no winner is one that lost: ops
-- velocity's win rate counts it as concluded, not won).
CREATE TABLE experiments (
    company_id     uuid NOT NULL,
    key            text NOT NULL CHECK (key ~ '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$'),
    name           text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    hypothesis     text CHECK (length(hypothesis) <= 2000),
    primary_event  text NOT NULL CHECK (length(primary_event) BETWEEN 1 AND 64),
    started_on     date NOT NULL,
    ended_on       date,
    status         text NOT NULL CHECK (status IN ('running', 'concluded')),
    winner         text CHECK (length(winner) BETWEEN 1 AND 64),
    created_at     timestamptz NOT NULL DEFAULT now(),
    -- Moves when the experiment is concluded: the rollups job refreshes its results then
    -- (its dates bound which events count).
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (company_id, key),
    CHECK ((status = 'running') = (ended_on IS NULL)),
    CHECK (winner IS NULL OR status = 'concluded'),
    CHECK (ended_on IS NULL OR ended_on >= started_on)
);
CREATE INDEX experiments_by_updated ON experiments (company_id, updated_at);

-- Per experiment and visitor: the variant of the visitor's first exposure (a later exposure
-- to another variant does not move them), when that was, and their first primary event at or
-- after it within the experiment's dates (NULL: not converted). Rewritten whole per
-- experiment by the rollups job. Visitor ids stay with the service: lux_reader reads the
-- per-variant sums below.
CREATE TABLE rollup_experiment_visitors (
    company_id        uuid NOT NULL,
    experiment        text NOT NULL,
    visitor_id        uuid NOT NULL,
    variant           text NOT NULL,
    first_exposed_at  timestamptz NOT NULL,
    converted_at      timestamptz,
    PRIMARY KEY (company_id, experiment, visitor_id),
    CHECK (converted_at IS NULL OR converted_at >= first_exposed_at)
);

-- The same summed per variant: what the `experiments` report reads. `first_exposed_at` is
-- the earliest first exposure of the variant's visitors (the control, when no variant is
-- named `control`, is the variant exposed first).
CREATE TABLE rollup_experiment_variants (
    company_id        uuid NOT NULL,
    experiment        text NOT NULL,
    variant           text NOT NULL,
    exposed           integer NOT NULL CHECK (exposed > 0),
    converted         integer NOT NULL CHECK (converted BETWEEN 0 AND exposed),
    first_exposed_at  timestamptz NOT NULL,
    PRIMARY KEY (company_id, experiment, variant)
);

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['experiments', 'rollup_experiment_visitors',
                             'rollup_experiment_variants']
    LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        -- lux_reader_company(): the service's `lux.company_id`, or a reader login's company.
        EXECUTE format('CREATE POLICY tenant ON %I USING (company_id = (SELECT lux_reader_company()))
                        WITH CHECK (company_id = (SELECT lux_reader_company()))', t);
    END LOOP;
END
$$;

GRANT SELECT, INSERT, UPDATE ON experiments TO lux_app;
-- The registry holds no personal data; the reports read names, dates and winners from it.
GRANT SELECT ON experiments TO lux_reader;
GRANT SELECT, INSERT, DELETE ON rollup_experiment_visitors TO lux_app;
GRANT SELECT, INSERT, DELETE ON rollup_experiment_variants TO lux_app;
GRANT SELECT ON rollup_experiment_variants TO lux_reader;
