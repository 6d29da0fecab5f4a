//! The schema distributes by `company_id` (issue 20, SPEC §3): the catalog check passes on
//! the migrated schema, and catches each kind of table that would break distribution or
//! tenancy.

use lux::db::catalog::{Violation, distribution_violations};

use crate::helpers::TestDb;

fn problems_of<'a>(violations: &'a [Violation], table: &str) -> Vec<&'a str> {
    violations
        .iter()
        .filter(|v| v.table == table)
        .map(|v| v.problem.as_str())
        .collect()
}

#[tokio::test]
async fn every_tenant_table_of_the_migrated_schema_distributes_by_company_id() {
    let db = TestDb::new().await;
    let owner = db.owner().await;
    lux::db::migrate(&owner).await.expect("migrate");

    let violations = distribution_violations(&owner)
        .await
        .expect("catalog query");

    let listed: Vec<String> = violations.iter().map(ToString::to_string).collect();
    assert!(
        listed.is_empty(),
        "schema breaks the rules:\n{}",
        listed.join("\n")
    );
}

#[tokio::test]
async fn the_catalog_check_reports_each_kind_of_bad_table() {
    let db = TestDb::new().await;
    let owner = db.owner().await;
    lux::db::migrate(&owner).await.expect("migrate");
    // One table per broken rule, each otherwise correct.
    for statement in [
        // A unique key without company_id first: Citus could not enforce it.
        "CREATE TABLE bad_unique (company_id uuid NOT NULL, code text NOT NULL UNIQUE,
             PRIMARY KEY (company_id, code))",
        // A primary key led by something else.
        "CREATE TABLE bad_key (id bigint, company_id uuid NOT NULL, PRIMARY KEY (id, company_id))",
        // A foreign key to a tenant table that leaves company_id out: rows on two shards.
        "CREATE TABLE bad_parent (company_id uuid NOT NULL, id text NOT NULL,
             PRIMARY KEY (company_id, id), UNIQUE (id))",
        "CREATE TABLE bad_child (company_id uuid NOT NULL, parent text NOT NULL REFERENCES bad_parent (id),
             PRIMARY KEY (company_id, parent))",
        // No primary key and not an allowed append-only log.
        "CREATE TABLE bad_keyless (company_id uuid NOT NULL, note text)",
        // Forgot company_id altogether.
        "CREATE TABLE bad_global (id bigint PRIMARY KEY)",
    ] {
        sqlx::query(sqlx::AssertSqlSafe(statement))
            .execute(&owner)
            .await
            .expect(statement);
    }
    for table in [
        "bad_unique",
        "bad_key",
        "bad_parent",
        "bad_child",
        "bad_keyless",
    ] {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "ALTER TABLE {table} ENABLE ROW LEVEL SECURITY"
        )))
        .execute(&owner)
        .await
        .expect("enable RLS");
    }
    sqlx::query(
        "CREATE TABLE bad_open (company_id uuid NOT NULL, id text, PRIMARY KEY (company_id, id))",
    )
    .execute(&owner)
    .await
    .expect("create bad_open");

    let violations = distribution_violations(&owner)
        .await
        .expect("catalog query");

    assert_eq!(
        problems_of(&violations, "bad_unique"),
        ["unique index bad_unique_code_key does not lead with company_id"]
    );
    assert_eq!(
        problems_of(&violations, "bad_key"),
        ["primary key bad_key_pkey does not lead with company_id"]
    );
    assert_eq!(
        problems_of(&violations, "bad_parent"),
        ["unique index bad_parent_id_key does not lead with company_id"]
    );
    assert_eq!(
        problems_of(&violations, "bad_child"),
        [
            "foreign key bad_child_parent_fkey to bad_parent does not pair company_id with company_id"
        ]
    );
    assert_eq!(
        problems_of(&violations, "bad_keyless"),
        ["has no primary key"]
    );
    assert_eq!(
        problems_of(&violations, "bad_global"),
        ["has no company_id column and is not a known global table"]
    );
    assert_eq!(
        problems_of(&violations, "bad_open"),
        ["row-level security is not enabled"]
    );
    // Nothing else: the real tables still pass.
    assert_eq!(violations.len(), 7, "{violations:?}");
}
