//! The creative catalog (issue 16): `lux import creatives` through the real binary, read back
//! as the owner.

use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

use crate::helpers::{Company, TestDb, create_company};

fn temp_csv(text: &str) -> String {
    crate::helpers::temp_csv("creatives", text)
}

fn import(db: &TestDb, company: &Company, path: &str) -> (bool, Value, String) {
    crate::helpers::lux_import(db, company, "creatives", path)
}

/// The company's creatives: (creative_id, name, concept, angle, launched_on).
async fn rows(
    owner: &PgPool,
    company: Uuid,
) -> Vec<(
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    String,
)> {
    sqlx::query_as(
        "SELECT creative_id, name, concept, angle, to_char(launched_on, 'YYYY-MM-DD')
           FROM creatives WHERE company_id = $1 ORDER BY creative_id",
    )
    .bind(company)
    .fetch_all(owner)
    .await
    .unwrap()
}

fn skipped(summary: &Value) -> Vec<(u64, String)> {
    summary["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["line"].as_u64().unwrap(),
                s["reason"].as_str().unwrap().into(),
            )
        })
        .collect()
}

fn owned(
    id: &str,
    name: Option<&str>,
    concept: Option<&str>,
    angle: Option<&str>,
    day: &str,
) -> (
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    String,
) {
    (
        id.into(),
        name.map(Into::into),
        concept.map(Into::into),
        angle.map(Into::into),
        day.into(),
    )
}

#[tokio::test]
async fn import_creatives_stores_good_lines_names_bad_ones_and_updates_on_reimport() {
    let db = TestDb::new().await;
    let owner = db.owner().await;
    lux::db::migrate(&owner).await.unwrap();
    let a = create_company(&owner, "Acme").await;
    let long_id = "x".repeat(201);
    let csv = format!(
        "creative_id,name,platform,campaign,concept,angle,format,launched_on\n\
         c1,\"Unboxing, v1\",meta,bf,ugc,price,video,2026-11-01\n\
         ,no id,meta,bf,ugc,price,video,2026-11-01\n\
         \n\
         c2,Static,meta,bf,bundle,,image,01/11/2026\n\
         {long_id},Long,meta,bf,ugc,price,video,2026-11-01\n\
         c3,Founder,tiktok,brand,founder,trust,video,2026-11-12\n\
         c1,Again,meta,bf,ugc,price,video,2026-11-01\n\
         c4,Extra,meta,bf,ugc,price,video,2026-11-01,oops\n"
    );
    let path = temp_csv(&csv);
    let (ok, summary, stderr) = import(&db, &a, &path);
    assert!(ok, "{stderr}");
    assert_eq!(summary["lines"], 7, "{summary}");
    assert_eq!(summary["stored"], 2, "{summary}");
    assert_eq!(summary["updated"], 0, "{summary}");
    assert_eq!(summary["skipped_total"], 5, "{summary}");
    let skipped = skipped(&summary);
    let lines: Vec<u64> = skipped.iter().map(|s| s.0).collect();
    assert_eq!(lines, [3, 5, 6, 8, 9], "{summary}");
    for ((_, reason), wanted) in skipped.iter().zip([
        "creative_id is missing",
        "launched_on \"01/11/2026\" is not a date YYYY-MM-DD",
        "longer than 200 characters",
        "repeats line 2",
        "9 cells where the header has 8",
    ]) {
        assert!(reason.contains(wanted), "{reason:?} should say {wanted:?}");
    }
    assert_eq!(
        rows(&owner, a.id).await,
        [
            owned(
                "c1",
                Some("Unboxing, v1"),
                Some("ugc"),
                Some("price"),
                "2026-11-01"
            ),
            owned(
                "c3",
                Some("Founder"),
                Some("founder"),
                Some("trust"),
                "2026-11-12"
            ),
        ]
    );

    // Re-importing with a changed angle updates that row only; the other is unchanged.
    let changed = temp_csv(
        "creative_id,name,platform,campaign,concept,angle,format,launched_on\n\
         c1,\"Unboxing, v1\",meta,bf,ugc,quality,video,2026-11-01\n\
         c3,Founder,tiktok,brand,founder,trust,video,2026-11-12\n",
    );
    let (ok, again, stderr) = import(&db, &a, &changed);
    assert!(ok, "{stderr}");
    assert_eq!(
        (
            again["stored"].as_u64(),
            again["updated"].as_u64(),
            again["unchanged"].as_u64()
        ),
        (Some(0), Some(1), Some(1)),
        "{again}"
    );
    assert_eq!(rows(&owner, a.id).await[0].3.as_deref(), Some("quality"));
}

#[tokio::test]
async fn a_company_import_never_touches_another_company_and_the_sample_imports_whole() {
    let db = TestDb::new().await;
    let owner = db.owner().await;
    lux::db::migrate(&owner).await.unwrap();
    let a = create_company(&owner, "Acme").await;
    let b = create_company(&owner, "Beta").await;
    let sample = format!("{}/docs/samples/creatives.csv", env!("CARGO_MANIFEST_DIR"));
    let (ok, summary, stderr) = import(&db, &a, &sample);
    assert!(ok, "{stderr}");
    assert_eq!(
        (
            summary["stored"].as_u64(),
            summary["skipped_total"].as_u64()
        ),
        (Some(5), Some(0)),
        "the documented sample imports whole: {summary}"
    );
    let before = rows(&owner, a.id).await;
    assert_eq!(
        before[0],
        owned(
            "fb-static-01",
            Some("Bundle static"),
            Some("bundle"),
            Some("price"),
            "2026-11-03"
        )
    );

    // B imports the same ids with other values: B gets its own rows, A's stay as they were.
    let other = temp_csv(
        "creative_id,name,platform,campaign,concept,angle,format,launched_on\n\
         fb-ugc-01,Beta's own,meta,x,y,z,video,2025-01-01\n",
    );
    let (ok, summary, stderr) = import(&db, &b, &other);
    assert!(ok, "{stderr}");
    assert_eq!(
        (summary["stored"].as_u64(), summary["updated"].as_u64()),
        (Some(1), Some(0))
    );
    assert_eq!(rows(&owner, a.id).await, before);
    assert_eq!(
        rows(&owner, b.id).await,
        [owned(
            "fb-ugc-01",
            Some("Beta's own"),
            Some("y"),
            Some("z"),
            "2025-01-01"
        )]
    );

    // A header with an unknown column refuses the file, and nothing is written.
    let bad = temp_csv(
        "creative_id,name,platform,campaign,concept,angle,format,launched_on,colour\n\
         c9,Nine,meta,bf,ugc,price,video,2026-11-01,red\n",
    );
    let (ok, _, stderr) = import(&db, &b, &bad);
    assert!(!ok);
    assert!(stderr.contains("unknown column \"colour\""), "{stderr}");
    assert_eq!(rows(&owner, b.id).await.len(), 1);

    // An unknown company is named, not a crash.
    let ghost = Company {
        id: Uuid::new_v4(),
        write_key: String::new(),
        secret_key: String::new(),
    };
    let (ok, _, stderr) = import(&db, &ghost, &sample);
    assert!(!ok);
    assert!(stderr.contains("no company"), "{stderr}");
}
