//! The schema's distribution rules, checked against the live catalog (SPEC §2, §3).
//!
//! Every tenant table (a table with a `company_id` column) must be distributable by
//! `company_id` on Citus without a change, and scoped by row-level security:
//!
//! - its primary key, and every unique index, leads with `company_id` (Citus can only enforce
//!   uniqueness that includes the distribution column, and our per-company lookups want it
//!   first anyway);
//! - every foreign key to another tenant table includes `company_id` on both sides (so both
//!   rows live on the same shard: colocation);
//! - row-level security is enabled.
//!
//! A tenant table may lack a primary key only when it is listed in
//! [`TABLES_WITHOUT_PRIMARY_KEY`] with the reason. A table without `company_id` is global
//! (a Citus reference table or coordinator-only), listed in [`GLOBAL_TABLES`]: a new table that
//! forgets `company_id` is reported too, so no table joins the schema unexamined.

use sqlx::PgPool;

/// Tenant tables allowed without a primary key, and why.
pub const TABLES_WITHOUT_PRIMARY_KEY: &[(&str, &str)] = &[
    (
        "raw_events",
        "append-only and partitioned by month; exactly-once storage is enforced by event_ids",
    ),
    (
        "session_changes",
        "a queue of changed days, read and deleted by the rollup job",
    ),
    (
        "order_changes",
        "a queue of changed days, read and deleted by the rollup job",
    ),
    (
        "message_changes",
        "a queue of changed days, read and deleted by the rollup job",
    ),
];

/// Tables without `company_id`, and why they are global.
pub const GLOBAL_TABLES: &[(&str, &str)] = &[
    ("_sqlx_migrations", "the migration history"),
    (
        "ip_salts",
        "the daily salts behind visitor ids; one per day for the whole service, destroyed after it",
    ),
    (
        "link_codes",
        "the claimed short-link codes, unique across companies; random codes, no company data",
    ),
    (
        "login_failures",
        "the dashboard login throttle: failed attempts per hashed email and client, before any company is known",
    ),
    (
        "sns_certificates",
        "Amazon SNS signing certificates, public and the same for every company",
    ),
    (
        "user_sessions",
        "signed-in dashboard sessions of users, who may be granted several companies",
    ),
    (
        "users",
        "dashboard users (an agency's user spans companies; grants are per company in user_grants)",
    ),
];

/// One table breaking a rule, in words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub table: String,
    pub problem: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.table, self.problem)
    }
}

/// The catalog query: one row per broken rule, for the tables of schema `public` (partitions
/// are checked through their parent).
const VIOLATIONS: &str = r#"
WITH tables AS (
    SELECT c.oid, c.relname, c.relrowsecurity,
           EXISTS (SELECT 1 FROM pg_attribute a
                   WHERE a.attrelid = c.oid AND a.attname = 'company_id' AND NOT a.attisdropped)
               AS is_tenant
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition
), tenant AS (SELECT * FROM tables WHERE is_tenant),
column_name AS (SELECT attrelid, attnum, attname FROM pg_attribute WHERE attnum > 0)
SELECT t.relname::text, 'has no company_id column and is not a known global table'
FROM tables t WHERE NOT t.is_tenant AND NOT t.relname = ANY($1)
UNION ALL
SELECT t.relname::text, 'has no primary key'
FROM tenant t
WHERE NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conrelid = t.oid AND k.contype = 'p')
  AND NOT t.relname = ANY($2)
UNION ALL
SELECT t.relname::text, 'row-level security is not enabled'
FROM tenant t WHERE NOT t.relrowsecurity
UNION ALL
SELECT t.relname::text,
       format('%s %s does not lead with company_id',
              CASE WHEN i.indisprimary THEN 'primary key' ELSE 'unique index' END, ic.relname)
FROM tenant t
JOIN pg_index i ON i.indrelid = t.oid AND i.indisunique
JOIN pg_class ic ON ic.oid = i.indexrelid
LEFT JOIN column_name lead ON lead.attrelid = t.oid AND lead.attnum = i.indkey[0]
WHERE lead.attname IS DISTINCT FROM 'company_id'
UNION ALL
SELECT t.relname::text,
       format('foreign key %s to %s does not pair company_id with company_id', k.conname, r.relname)
FROM tenant t
JOIN pg_constraint k ON k.conrelid = t.oid AND k.contype = 'f'
JOIN tenant r ON r.oid = k.confrelid
WHERE NOT EXISTS (
    SELECT 1
    FROM unnest(k.conkey, k.confkey) AS pair(local, foreign_)
    JOIN column_name l ON l.attrelid = t.oid AND l.attnum = pair.local
    JOIN column_name f ON f.attrelid = r.oid AND f.attnum = pair.foreign_
    WHERE l.attname = 'company_id' AND f.attname = 'company_id')
ORDER BY 1, 2
"#;

/// Every way the live schema breaks the distribution rules; empty when it holds.
pub async fn distribution_violations(pool: &PgPool) -> Result<Vec<Violation>, sqlx::Error> {
    let global: Vec<&str> = GLOBAL_TABLES.iter().map(|(name, _)| *name).collect();
    let keyless: Vec<&str> = TABLES_WITHOUT_PRIMARY_KEY
        .iter()
        .map(|(name, _)| *name)
        .collect();
    let rows: Vec<(String, String)> = sqlx::query_as(VIOLATIONS)
        .bind(&global)
        .bind(&keyless)
        .fetch_all(pool)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(table, problem)| Violation { table, problem })
        .collect())
}
