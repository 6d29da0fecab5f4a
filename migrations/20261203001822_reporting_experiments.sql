-- The ops velocity dashboard's views (SPEC §8.5): the experiments registry (what ran, when,
-- who won) and each variant's exposures and conversions (rollup_experiment_variants), as the
-- `experiments` and `ops_velocity` reports read them. Company-scoped like the other
-- `reporting` views (security_invoker: the tables' row-level security applies).

CREATE VIEW reporting.experiments WITH (security_invoker = true) AS
    SELECT key, name, primary_event, status, started_on, ended_on, winner,
           date_trunc('month', started_on)::date AS launched_month,
           date_trunc('month', ended_on)::date AS concluded_month,
           (ended_on - started_on) AS duration_days
    FROM experiments;

CREATE VIEW reporting.experiment_variants WITH (security_invoker = true) AS
    SELECT experiment, variant, exposed, converted,
           round(converted::numeric / exposed, 4) AS rate
    FROM rollup_experiment_variants;

GRANT SELECT ON reporting.experiments, reporting.experiment_variants TO lux_reader;
