//! `lux import spend`: the real binary, its CSV fixtures (`tests/fixtures/spend/`), and what
//! ends up in `ad_spend`, read back as the owner.

use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

use crate::helpers::{Company, TestDb, create_company, lux_error, lux_json};

/// A row of `ad_spend` as text: day, platform, campaign, ad id, channel, source, medium,
/// currency, spend, impressions, clicks.
type Row = (
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    i64,
    i64,
);

/// A migrated database with two companies (both in EUR).
struct Spend {
    db: TestDb,
    owner: PgPool,
    a: Company,
    b: Company,
}

fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/spend/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// Writes `text` to a temporary file and returns its path.
fn temp_csv(text: &str) -> String {
    let path = std::env::temp_dir().join(format!("spend-{}.csv", Uuid::new_v4()));
    std::fs::write(&path, text).unwrap();
    path.to_string_lossy().into_owned()
}

/// `money` is the currency and the amount as stored: `"EUR 1234.560000"`.
fn row(
    day: &str,
    platform: &str,
    campaign: &str,
    ad_id: &str,
    (channel, source, medium): (&str, &str, &str),
    money: &str,
    (impressions, clicks): (i64, i64),
) -> Row {
    let (currency, spend) = money.split_once(' ').expect("currency and amount");
    (
        day.into(),
        platform.into(),
        campaign.into(),
        ad_id.into(),
        channel.into(),
        source.into(),
        medium.into(),
        currency.into(),
        spend.into(),
        impressions,
        clicks,
    )
}

const GOOGLE: (&str, &str, &str) = ("Paid Search", "google", "cpc");
const META: (&str, &str, &str) = ("Paid Social", "facebook", "paid_social");

impl Spend {
    async fn new() -> Spend {
        let db = TestDb::new().await;
        let owner = db.owner().await;
        lux::db::migrate(&owner).await.unwrap();
        let a = create_company(&owner, "Acme").await;
        let b = create_company(&owner, "Beta").await;
        Spend { db, owner, a, b }
    }

    fn args(path: &str, company: Uuid, format: Option<&str>) -> Vec<String> {
        let mut args = vec![
            "import".into(),
            "spend".into(),
            path.into(),
            "--company".into(),
            company.to_string(),
        ];
        if let Some(format) = format {
            args.extend(["--format".into(), format.into()]);
        }
        args
    }

    fn import(&self, company: Uuid, path: &str, format: Option<&str>) -> Value {
        let args = Self::args(path, company, format);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        lux_json(&self.db.url, &args)
    }

    fn refused(&self, company: Uuid, path: &str, format: Option<&str>) -> String {
        let args = Self::args(path, company, format);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        lux_error(&self.db.url, &args)
    }

    async fn rows(&self, company: Uuid) -> Vec<Row> {
        sqlx::query_as(
            "SELECT day::text, platform, campaign, ad_id, channel, source, medium,
                    currency::text, spend::text, impressions, clicks
             FROM ad_spend WHERE company_id = $1
             ORDER BY day, platform, campaign, ad_id",
        )
        .bind(company)
        .fetch_all(&self.owner)
        .await
        .unwrap()
    }

    /// (day, campaign, ad id, imported_at as text) of every row of `company`.
    async fn stamps(&self, company: Uuid) -> Vec<(String, String, String, String)> {
        sqlx::query_as(
            "SELECT day::text, campaign, ad_id, imported_at::text FROM ad_spend
             WHERE company_id = $1 ORDER BY day, platform, campaign, ad_id",
        )
        .bind(company)
        .fetch_all(&self.owner)
        .await
        .unwrap()
    }

    /// Moves every row's `imported_at` far back, so a write shows as a newer stamp.
    async fn age_stamps(&self) {
        sqlx::query("UPDATE ad_spend SET imported_at = '2000-01-01T00:00:00Z'")
            .execute(&self.owner)
            .await
            .unwrap();
    }

    async fn count(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM ad_spend")
            .fetch_one(&self.owner)
            .await
            .unwrap()
    }
}

fn google_ui_rows() -> Vec<Row> {
    vec![
        row(
            "2025-01-01",
            "google_ads",
            "Brand - Search",
            "",
            GOOGLE,
            "EUR 1234.560000",
            (12345, 678),
        ),
        row(
            "2025-01-01",
            "google_ads",
            "Generic - Shoes",
            "",
            GOOGLE,
            "EUR 0.000000",
            (0, 0),
        ),
        row(
            "2025-01-02",
            "google_ads",
            "Brand - Search",
            "",
            GOOGLE,
            "EUR 987.100000",
            (10001, 543),
        ),
        row(
            "2025-01-02",
            "google_ads",
            "Generic - Shoes",
            "",
            GOOGLE,
            "EUR 45.670000",
            (1500, 32),
        ),
    ]
}

#[tokio::test]
async fn a_google_ads_ui_download_imports_its_days_and_leaves_out_its_total_rows() {
    let s = Spend::new().await;

    let summary = s.import(s.a.id, &fixture("google_ads_ui_campaigns_by_day.csv"), None);

    assert_eq!(summary["format"], "google");
    assert_eq!(summary["layout"], "google_ui");
    assert_eq!(summary["format_guessed"], true);
    assert_eq!(
        summary["header_line"], 3,
        "title and date-range lines above"
    );
    assert_eq!(summary["data_lines"], 7);
    assert_eq!(
        summary["summary_rows_ignored"], 3,
        "Total: Account, Search, Campaigns"
    );
    assert_eq!(summary["rows"], 4);
    assert_eq!(summary["inserted"], 4);
    assert_eq!(summary["skipped_total"], 0);
    assert_eq!(summary["first_day"], "2025-01-01");
    assert_eq!(summary["last_day"], "2025-01-02");
    assert_eq!(s.rows(s.a.id).await, google_ui_rows());
}

#[tokio::test]
async fn the_google_api_script_csv_has_cost_in_micros_and_the_company_currency() {
    let s = Spend::new().await;

    let summary = s.import(
        s.a.id,
        &fixture("google_ads_api_script.csv"),
        Some("google"),
    );

    assert_eq!(summary["layout"], "google_api_script");
    assert_eq!(summary["format_guessed"], false);
    assert_eq!(summary["inserted"], 4);
    assert_eq!(
        s.rows(s.a.id).await,
        vec![
            row(
                "2025-01-01",
                "google_ads",
                "Brand - Search",
                "",
                GOOGLE,
                "EUR 1234.560000",
                (12345, 678)
            ),
            row(
                "2025-01-01",
                "google_ads",
                "Generic - Shoes",
                "",
                GOOGLE,
                "EUR 45.670000",
                (1500, 32)
            ),
            row(
                "2025-01-02",
                "google_ads",
                "Brand - Search",
                "",
                GOOGLE,
                "EUR 987.100000",
                (10001, 543)
            ),
            row(
                "2025-01-02",
                "google_ads",
                "Generic - Shoes",
                "",
                GOOGLE,
                "EUR 0.000001",
                (3, 0)
            ),
        ],
        "1 micro is kept exactly"
    );

    // The same six columns below a title line: micros or units? Refused, not guessed.
    let text = std::fs::read_to_string(fixture("google_ads_api_script.csv")).unwrap();
    let error = s.refused(s.b.id, &temp_csv(&format!("Campaign report\n{text}")), None);
    assert!(
        error.contains("cannot tell whether Cost is micros"),
        "{error}"
    );
    // A micros Cost that is not a whole number is a skipped line, not 1000000 times too much.
    let summary = s.import(
        s.b.id,
        &temp_csv(
            "Account,Date,Campaign,Impressions,Clicks,Cost\n\
             Acme,2025-01-01,Brand,10,1,12.5\nAcme,2025-01-01,Other,10,1,2500000\n",
        ),
        None,
    );
    assert_eq!(summary["skipped"][0]["line"], 2);
    let reason = summary["skipped"][0]["reason"].as_str().unwrap();
    assert!(reason.contains("not a whole number of micros"), "{reason}");
    assert_eq!(s.rows(s.b.id).await[0].8, "2.500000");
}

#[tokio::test]
async fn a_meta_daily_export_with_a_bom_sums_the_ad_sets_of_a_campaign_into_one_row() {
    let s = Spend::new().await;

    let summary = s.import(s.a.id, &fixture("meta_ads_daily_by_ad_set.csv"), None);

    assert_eq!(summary["format"], "meta");
    assert_eq!(summary["data_lines"], 5);
    assert_eq!(summary["lines_summed"], 2, "two ad sets, two days");
    assert_eq!(summary["rows"], 3);
    assert_eq!(summary["skipped_total"], 0, "{summary}");
    assert_eq!(
        s.rows(s.a.id).await,
        vec![
            // The account's currency comes from "Amount spent (USD)", not the company's EUR.
            row(
                "2025-01-01",
                "meta_ads",
                "Brand Awareness",
                "",
                META,
                "USD 5339.500000",
                (10400, 12)
            ),
            // 23.45 + 11.5; link clicks, not Clicks (all).
            row(
                "2025-01-01",
                "meta_ads",
                "Winter Sale",
                "",
                META,
                "USD 34.950000",
                (2400, 60)
            ),
            // 24.05 + 12; an empty Link clicks cell is 0.
            row(
                "2025-01-02",
                "meta_ads",
                "Winter Sale",
                "",
                META,
                "USD 36.050000",
                (2515, 38)
            ),
        ]
    );
}

#[tokio::test]
async fn a_meta_export_without_the_day_breakdown_is_refused_and_writes_nothing() {
    let s = Spend::new().await;

    let error = s.refused(s.a.id, &fixture("meta_ads_period_totals.csv"), None);

    assert!(
        error.contains("line 2: the row covers 2025-01-01 to 2025-01-31, not one day"),
        "{error}"
    );
    assert!(error.contains("with the Day breakdown"), "{error}");
    assert_eq!(s.count().await, 0);
}

#[tokio::test]
async fn a_generic_csv_imports_its_valid_rows_and_reports_the_bad_one_by_line() {
    let s = Spend::new().await;

    let summary = s.import(
        s.a.id,
        &fixture("generic_with_one_bad_row.csv"),
        Some("generic"),
    );

    assert_eq!(summary["layout"], "generic");
    assert_eq!(summary["rows"], 4);
    assert_eq!(summary["skipped_total"], 1);
    assert_eq!(summary["skipped"][0]["line"], 5);
    let reason = summary["skipped"][0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("date") && reason.contains("2025-01-32"),
        "{reason}"
    );
    let social = ("Paid Social", "tiktok", "paid_social");
    assert_eq!(
        s.rows(s.a.id).await,
        vec![
            row(
                "2025-01-01",
                "tiktok_ads",
                "launch",
                "ad-1",
                social,
                "USD 12.340000",
                (1000, 10)
            ),
            // Channel in any case, its GA4 spelling stored; no currency: the company's; empty
            // counts are 0; half a cent is kept.
            row(
                "2025-01-01",
                "tiktok_ads",
                "launch",
                "ad-2",
                social,
                "EUR 0.005000",
                (0, 0)
            ),
            row(
                "2025-01-02",
                "bing_ads",
                "brand",
                "",
                ("Paid Search", "bing", "cpc"),
                "USD 7.500000",
                (300, 9)
            ),
            // Platform lower-cased; quoted thousands.
            row(
                "2025-01-02",
                "linkedin_ads",
                "",
                "",
                ("Paid Social", "linkedin", "paid_social"),
                "EUR 1000.000000",
                (5000, 25)
            ),
        ]
    );
}

#[tokio::test]
async fn importing_the_same_file_again_changes_nothing_not_even_imported_at() {
    let s = Spend::new().await;
    let file = fixture("google_ads_ui_campaigns_by_day.csv");
    s.import(s.a.id, &file, None);
    let before = s.stamps(s.a.id).await;

    let again = s.import(s.a.id, &file, None);

    assert_eq!(
        (&again["inserted"], &again["updated"], &again["unchanged"]),
        (&json!(0), &json!(0), &json!(4))
    );
    assert_eq!(s.rows(s.a.id).await, google_ui_rows());
    assert_eq!(s.stamps(s.a.id).await, before, "imported_at kept");
}

#[tokio::test]
async fn a_changed_row_updates_that_row_only() {
    let s = Spend::new().await;
    let original = std::fs::read_to_string(fixture("google_ads_ui_campaigns_by_day.csv")).unwrap();
    s.import(s.a.id, &temp_csv(&original), None);
    s.age_stamps().await;

    // Google revised one day's cost of one campaign.
    let revised = original.replace("987.10,\"10,001\"", "990.00,\"10,001\"");
    assert_ne!(revised, original);
    let summary = s.import(s.a.id, &temp_csv(&revised), None);

    assert_eq!(
        (
            &summary["inserted"],
            &summary["updated"],
            &summary["unchanged"]
        ),
        (&json!(0), &json!(1), &json!(3))
    );
    let rows = s.rows(s.a.id).await;
    assert_eq!(rows[2].2, "Brand - Search");
    assert_eq!(rows[2].8, "990.000000");
    let stamps = s.stamps(s.a.id).await;
    let restamped: Vec<_> = stamps
        .iter()
        .filter(|s| !s.3.starts_with("2000-01-01"))
        .map(|s| (s.0.as_str(), s.1.as_str()))
        .collect();
    assert_eq!(restamped, [("2025-01-02", "Brand - Search")]);
}

#[tokio::test]
async fn an_import_for_one_company_never_writes_another_companys_rows() {
    let s = Spend::new().await;
    let google = fixture("google_ads_ui_campaigns_by_day.csv");
    s.import(s.b.id, &google, None);
    s.age_stamps().await;
    let b_before = s.stamps(s.b.id).await;

    // The same keys for A are A's own rows, then A's values change.
    let first = s.import(s.a.id, &google, None);
    assert_eq!(first["inserted"], 4, "B's rows are no conflict for A");
    let revised = std::fs::read_to_string(&google)
        .unwrap()
        .replace("45.67,\"1,500\"", "50.00,\"1,500\"");
    s.import(s.a.id, &temp_csv(&revised), None);
    s.import(s.a.id, &fixture("meta_ads_daily_by_ad_set.csv"), None);

    assert_eq!(s.rows(s.b.id).await, google_ui_rows(), "B's values");
    assert_eq!(s.stamps(s.b.id).await, b_before, "B's stamps");
    assert_eq!(s.rows(s.a.id).await.len(), 7);
    assert_eq!(s.count().await, 11);

    // The import writes as the service's role, so row-level security applies to it: without
    // that role's INSERT right it cannot write at all.
    sqlx::query("REVOKE INSERT ON ad_spend FROM lux_app")
        .execute(&s.owner)
        .await
        .unwrap();
    let error = s.refused(s.b.id, &fixture("meta_ads_daily_by_ad_set.csv"), None);
    assert!(error.contains("permission denied"), "{error}");
}

#[tokio::test]
async fn refused_files_say_why_and_write_nothing() {
    let s = Spend::new().await;
    let a = s.a.id;
    let google = fixture("google_ads_ui_campaigns_by_day.csv");
    let cases: Vec<(&str, String, Uuid, Option<&str>, &str)> = vec![
        (
            "an unknown header lists what was expected",
            temp_csv("Datum,Kampagne,Kosten\n2025-01-01,x,1\n"),
            a,
            None,
            "cannot tell the format",
        ),
        (
            "the wrong --format names the one that fits",
            google.clone(),
            a,
            Some("meta"),
            "try --format google",
        ),
        (
            "a file with no valid row",
            temp_csv(
                "date,platform,channel,source,medium,campaign,ad_id,spend,impressions,clicks\n\
                 2025-01-01,x,Paid Serch,s,m,c,,1,0,0\n2025-01-01,x,Paid Search,s,m,c,,-1,0,0\n",
            ),
            a,
            None,
            "line 3: spend -1.000000 is negative",
        ),
        (
            "a header and no data",
            temp_csv(
                "date,platform,channel,source,medium,campaign,ad_id,spend,impressions,clicks,currency\n",
            ),
            a,
            None,
            "no data lines after the header on line 1",
        ),
        (
            "a misspelt generic column",
            temp_csv(
                "date,platform,channel,source,medium,campaign,ad_id,spend,impressions,clicks,currecny\n\
                 2025-01-01,x,Paid Search,s,m,c,,1,0,0,USD\n",
            ),
            a,
            None,
            "unknown column(s) currecny",
        ),
        (
            "a Google report without the Day segment",
            temp_csv("Campaign,Cost,Impr.,Clicks\nBrand,\"1,234.56\",10,1\n"),
            a,
            None,
            "add the Day segment",
        ),
        (
            "a currency code that is not one",
            temp_csv("Reporting starts,Reporting ends,Campaign name,Amount spent (US$)\n"),
            a,
            None,
            "is not an ISO 4217 currency code",
        ),
        (
            "an unknown company",
            google.clone(),
            Uuid::new_v4(),
            None,
            "no company",
        ),
        (
            "a missing file",
            "/nonexistent/spend.csv".into(),
            a,
            None,
            "reading /nonexistent/spend.csv",
        ),
    ];
    for (case, path, company, format, expected) in cases {
        let error = s.refused(company, &path, format);
        assert!(error.contains(expected), "{case}: {error}");
    }
    let error = s.refused(a, &temp_csv("Day,Campaign\n"), None);
    for expected in ["google:", "meta:", "generic:", "date,platform,channel"] {
        assert!(error.contains(expected), "lists {expected}: {error}");
    }
    let error = lux_error(
        &s.db.url,
        &[
            "import",
            "stripe",
            &google,
            "--company",
            &a.to_string(),
            "--format",
            "google",
        ],
    );
    assert!(
        error.contains("--format is for `lux import spend` only"),
        "{error}"
    );
    assert_eq!(s.count().await, 0);
}

#[tokio::test]
async fn a_campaigns_day_by_ad_replaces_its_total_and_the_reverse() {
    let s = Spend::new().await;
    let header =
        "date,platform,channel,source,medium,campaign,ad_id,spend,impressions,clicks,currency\n";
    // By campaign first: one row for "bf" on the 1st, one for "brand" (untouched below).
    s.import(
        s.a.id,
        &temp_csv(&format!(
            "{header}2025-01-01,meta_ads,Paid Social,facebook,paid_social,bf,,50.00,1000,10,EUR\n\
             2025-01-01,meta_ads,Paid Social,facebook,paid_social,brand,,5.00,100,1,EUR\n"
        )),
        None,
    );
    // Then the same day by ad: the campaign's total gives way to its ads.
    let by_ad = s.import(
        s.a.id,
        &temp_csv(&format!(
            "{header}2025-01-01,meta_ads,Paid Social,facebook,paid_social,bf,ad1,30.00,600,6,EUR\n\
             2025-01-01,meta_ads,Paid Social,facebook,paid_social,bf,ad2,20.00,400,4,EUR\n"
        )),
        None,
    );
    assert_eq!(by_ad["replaced"], json!(1));
    let kept: Vec<(String, String, String)> = s
        .rows(s.a.id)
        .await
        .into_iter()
        .map(|r| (r.2, r.3, r.8))
        .collect();
    assert_eq!(
        kept,
        [
            ("bf".into(), "ad1".into(), "30.000000".into()),
            ("bf".into(), "ad2".into(), "20.000000".into()),
            ("brand".into(), "".into(), "5.000000".into()),
        ]
    );
    // And back: a total replaces the ads.
    let total = s.import(
        s.a.id,
        &temp_csv(&format!(
            "{header}2025-01-01,meta_ads,Paid Social,facebook,paid_social,bf,,50.00,1000,10,EUR\n"
        )),
        None,
    );
    assert_eq!(total["replaced"], json!(2));
    assert_eq!(s.count().await, 2);
}
