//! Sends and short links (issue 15): `POST /api/v1/messages`, `lux import sends`,
//! `POST /api/v1/links` and `GET /r/{code}`, through real HTTP, the real binary and a real
//! browser, read back as the owner.

use std::time::Duration;

use lux::messages::recipient::Recipient;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

use crate::helpers::{
    BROWSER_UA, Company, ServeProcess, TestApp, TestDb, answer, create_company, pg_dump,
};

const JANE: &str = "Jane.Doe@Example.com";
const JANE_PHONE: &str = "+1 (415) 555-0100";

/// A send as the API takes it.
fn send(message_id: &str, recipient: &str, provider: &str) -> Value {
    json!({
        "message_id": message_id,
        "provider": provider,
        "provider_message_id": format!("{provider}-{message_id}"),
        "campaign": "black-friday",
        "recipient": recipient,
        "sent_at": "2026-11-27T09:00:00Z",
    })
}

async fn post_sends(app: &TestApp, key: &str, body: &Value) -> (StatusCode, Value) {
    let response = app
        .client
        .post(format!("{}/api/v1/messages", app.base))
        .bearer_auth(key)
        .json(body)
        .send()
        .await
        .expect("request");
    answer(response).await
}

async fn post_link(app: &TestApp, key: &str, body: &Value) -> (StatusCode, Value) {
    let response = app
        .client
        .post(format!("{}/api/v1/links", app.base))
        .bearer_auth(key)
        .json(body)
        .send()
        .await
        .expect("request");
    answer(response).await
}

/// A client that shows redirects instead of following them.
fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn hash_key(owner: &PgPool, company: Uuid) -> Vec<u8> {
    sqlx::query_scalar("SELECT hash_key FROM companies WHERE company_id = $1")
        .bind(company)
        .fetch_one(owner)
        .await
        .unwrap()
}

/// The company's send `message_id`: campaign, sent_at (RFC 3339), recipient hash, origin.
async fn stored_send(
    owner: &PgPool,
    company: Uuid,
    message_id: &str,
) -> (Option<String>, Option<String>, Option<Vec<u8>>, String) {
    sqlx::query_as(
        "SELECT campaign, to_char(sent_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),
                recipient_hash, origin
           FROM message_sends WHERE company_id = $1 AND message_id = $2",
    )
    .bind(company)
    .bind(message_id)
    .fetch_one(owner)
    .await
    .unwrap()
}

#[tokio::test]
async fn posted_sends_are_stored_and_each_bad_item_is_named() {
    let app = TestApp::spawn().await;
    let key = app.company.secret_key.clone();
    let mut future = send("m-future", JANE, "sendgrid");
    future["sent_at"] = json!("2099-01-01T00:00:00Z");
    let mut mismatch = send("m-mismatch", JANE_PHONE, "twilio");
    mismatch["channel"] = json!("email");
    let body = json!([
        send("m-email", JANE, "sendgrid"),
        "not an object",
        send("m-bad-recipient", "jane at example", "mailgun"),
        send("m-sms", JANE_PHONE, "twilio"),
        future,
        mismatch,
        send("m-email", JANE, "sendgrid"),
        send("m-wrong-provider", JANE, "postmark"),
    ]);
    let (status, answer) = post_sends(&app, &key, &body).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["accepted"], 2, "{answer}");
    assert_eq!(answer["stored"], 2, "{answer}");
    let rejected: Vec<(u64, String)> = answer["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["index"].as_u64().unwrap(),
                r["error"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let indexes: Vec<u64> = rejected.iter().map(|r| r.0).collect();
    assert_eq!(indexes, [1, 2, 4, 5, 6, 7], "{answer}");
    let expected = [
        "must be a JSON object",
        "neither an email address",
        "in the future",
        "the recipient is a phone number but channel is email",
        "repeats item 0",
        "provider \"postmark\" is not one of",
    ];
    for ((_, error), wanted) in rejected.iter().zip(expected) {
        assert!(error.contains(wanted), "{error:?} should say {wanted:?}");
        assert!(!error.contains("jane") && !error.contains("415"), "{error}");
    }

    let key = hash_key(&app.owner, app.company.id).await;
    let (campaign, sent_at, hash, origin) =
        stored_send(&app.owner, app.company.id, "m-email").await;
    assert_eq!(campaign.as_deref(), Some("black-friday"));
    assert_eq!(sent_at.as_deref(), Some("2026-11-27T09:00:00Z"));
    assert_eq!(
        hash.as_deref(),
        Some(
            Recipient::parse("jane.doe@example.com")
                .unwrap()
                .hash(&key)
                .as_bytes()
        ),
        "the hash of the normalised email under the company's key"
    );
    assert_eq!(origin, "api");
    let sms: (String, Vec<u8>) = sqlx::query_as(
        "SELECT channel, recipient_hash FROM message_sends WHERE message_id = 'm-sms'",
    )
    .fetch_one(&app.owner)
    .await
    .unwrap();
    assert_eq!(sms.0, "sms");
    assert_eq!(
        sms.1,
        Recipient::parse("+14155550100")
            .unwrap()
            .hash(&key)
            .as_bytes()
    );
    assert_eq!(app.count("SELECT count(*) FROM message_sends").await, 2);
}

#[tokio::test]
async fn sends_need_the_secret_key_and_a_request_with_no_valid_send_is_a_400() {
    let app = TestApp::spawn().await;
    let body = json!([send("m1", JANE, "sendgrid")]);
    let (status, answer) = post_sends(&app, &app.company.write_key, &body).await;
    assert_eq!(status, 403, "{answer}");
    assert!(answer["error"].as_str().unwrap().contains("secret key"));
    let response = app
        .client
        .post(format!("{}/api/v1/messages", app.base))
        .json(&body)
        .send()
        .await
        .unwrap();
    let (status, answer) = crate::helpers::answer(response).await;
    assert_eq!(status, 401, "{answer}");
    let (status, _) = post_sends(&app, "lux_sk_not_a_key", &body).await;
    assert_eq!(status, 401);

    let key = app.company.secret_key.clone();
    let (status, answer) = post_sends(&app, &key, &json!([{"message_id": "m1"}, 3])).await;
    assert_eq!(status, 400, "{answer}");
    assert!(answer["error"].as_str().unwrap().contains("no valid send"));
    assert_eq!(answer["rejected"][0]["error"], "provider is missing");
    assert_eq!(answer["rejected"][1]["index"], 1);
    for (bad, says) in [
        (json!([]), "empty"),
        (json!("sends"), "JSON array"),
        (json!({"message_id": 5}), "message_id must be a string"),
    ] {
        let (status, answer) = post_sends(&app, &key, &bad).await;
        assert_eq!(status, 400, "{bad}: {answer}");
        assert!(answer.to_string().contains(says), "{bad}: {answer}");
    }
    let response = app
        .client
        .post(format!("{}/api/v1/messages", app.base))
        .bearer_auth(&key)
        .body("[{\"message_id\": ")
        .send()
        .await
        .unwrap();
    let (status, answer) = crate::helpers::answer(response).await;
    assert_eq!(status, 400);
    assert!(answer["error"].as_str().unwrap().contains("not JSON"));
    let huge = format!("[{}]", "0,".repeat(5 * 1024 * 1024));
    let response = app
        .client
        .post(format!("{}/api/v1/messages", app.base))
        .bearer_auth(&key)
        .body(huge)
        .send()
        .await
        .unwrap();
    let (status, _) = crate::helpers::answer(response).await;
    assert_eq!(status, 413);
    assert_eq!(app.count("SELECT count(*) FROM message_sends").await, 0);
}

#[tokio::test]
async fn reposting_a_send_fills_what_a_provider_event_left_missing_and_overwrites_nothing() {
    let app = TestApp::spawn().await;
    let key = app.company.secret_key.clone();
    // What a SendGrid event naming our lux_mid, before the send was posted, leaves behind;
    // and one without lux_mid, under the derived id.
    sqlx::query(
        "INSERT INTO message_sends (company_id, message_id, channel, provider,
                provider_message_id, origin)
         VALUES ($1, 'm1', 'email', 'sendgrid', NULL, 'provider_event'),
                ($1, 'sendgrid:sg-taken', 'email', 'sendgrid', 'sg-taken', 'provider_event')",
    )
    .bind(app.company.id)
    .execute(&app.owner)
    .await
    .unwrap();

    let mut taken = send("m2", JANE, "sendgrid");
    taken["provider_message_id"] = json!("sg-taken");
    let (status, answer) =
        post_sends(&app, &key, &json!([send("m1", JANE, "sendgrid"), taken])).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        (answer["stored"].as_u64(), answer["updated"].as_u64()),
        (Some(0), Some(1))
    );
    assert_eq!(answer["rejected"][0]["index"], 1, "{answer}");
    assert!(
        answer["rejected"][0]["error"]
            .as_str()
            .unwrap()
            .contains("already belongs to message \"sendgrid:sg-taken\""),
        "{answer}"
    );
    let (campaign, sent_at, hash, origin) = stored_send(&app.owner, app.company.id, "m1").await;
    assert_eq!(campaign.as_deref(), Some("black-friday"));
    assert_eq!(sent_at.as_deref(), Some("2026-11-27T09:00:00Z"));
    assert!(hash.is_some());
    assert_eq!(origin, "provider_event", "how we first learned of it stays");
    let pmid: Option<String> =
        sqlx::query_scalar("SELECT provider_message_id FROM message_sends WHERE message_id = 'm1'")
            .fetch_one(&app.owner)
            .await
            .unwrap();
    assert_eq!(pmid.as_deref(), Some("sendgrid-m1"));

    // The same send again, and with other values: nothing changes.
    let mut changed = send("m1", "someone.else@example.com", "sendgrid");
    changed["campaign"] = json!("another");
    changed["sent_at"] = json!("2026-11-28T09:00:00Z");
    for body in [json!([send("m1", JANE, "sendgrid")]), json!([changed])] {
        let (status, answer) = post_sends(&app, &key, &body).await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["unchanged"], 1, "{answer}");
        assert_eq!(answer["updated"], 0, "{answer}");
    }
    let again = stored_send(&app.owner, app.company.id, "m1").await;
    assert_eq!((again.0, again.1, again.2), (campaign, sent_at, hash));
    assert_eq!(app.count("SELECT count(*) FROM message_sends").await, 2);
}

#[tokio::test]
async fn a_raw_recipient_is_never_stored_or_logged() {
    let db = TestDb::new().await;
    let owner = db.owner().await;
    lux::db::migrate(&owner).await.unwrap();
    let company = create_company(&owner, "Acme").await;
    let log = std::env::temp_dir().join(format!("lux-sends-{}.log", Uuid::new_v4()));
    let server = ServeProcess::spawn(&db.url, &[], Some(&log)).await;
    let client = reqwest::Client::new();
    let body = json!([
        send("m-email", JANE, "sendgrid"),
        send("m-sms", JANE_PHONE, "twilio"),
        send("m-bad", "jane.doe@", "sendgrid"),
        {"message_id": "m-odd", "provider": "other", "recipient": "+1 415 555 0199",
         "sent_at": "2026-11-27T09:00:00Z", "unknown": JANE},
    ]);
    let response = client
        .post(format!("{}/api/v1/messages", server.base))
        .bearer_auth(&company.secret_key)
        .json(&body)
        .send()
        .await
        .unwrap();
    let (status, answer) = answer(response).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["accepted"], 3, "{answer}");
    drop(server);

    let dump = pg_dump(&db.url).to_lowercase();
    assert!(dump.contains("m-email"), "the dump holds the sends");
    let logged = std::fs::read_to_string(&log).unwrap().to_lowercase();
    assert!(logged.contains("sends posted"), "the request was logged");
    for raw in [
        "jane.doe",
        "4155550100",
        "415) 555",
        "555-0100",
        "4155550199",
    ] {
        assert!(!dump.contains(raw), "{raw} is in the database");
        assert!(!logged.contains(raw), "{raw} is in the log");
        assert!(
            !answer.to_string().to_lowercase().contains(raw),
            "{raw} answered"
        );
    }
    let _ = std::fs::remove_file(log);
}

fn temp_csv(text: &str) -> String {
    crate::helpers::temp_csv("sends", text)
}

fn import(db: &TestDb, company: &Company, path: &str) -> (bool, Value, String) {
    crate::helpers::lux_import(db, company, "sends", path)
}

#[tokio::test]
async fn import_sends_stores_the_valid_lines_and_names_each_bad_one() {
    let db = TestDb::new().await;
    let owner = db.owner().await;
    lux::db::migrate(&owner).await.unwrap();
    let a = create_company(&owner, "Acme").await;
    let b = create_company(&owner, "Beta").await;
    let csv = "\u{feff}message_id,channel,provider,provider_message_id,campaign,recipient,sent_at\n\
        m1,email,sendgrid,sg1,\"Black Friday, early\",Jane.Doe@Example.com,2026-11-27T09:00:00Z\n\
        m2,email,sendgrid,sg2,bf,not-an-address,2026-11-27T09:00:00Z\n\
        \n\
        m3,sms,twilio,SM3,bf,+14155550100,2026-11-27T09:00:00Z,extra\n\
        m4,sms,twilio,SM4,bf,+44 20 7946 0958,2026-11-27T10:00:00+01:00\n\
        m1,email,sendgrid,sg1,bf,jane.doe@example.com,2026-11-27T09:00:00Z\n\
        m5,,mailgun,,,ann@example.com,yesterday\n\
        m6,,ses,,,ann@example.com,2026-11-27T09:00:00Z\n";
    let path = temp_csv(csv);
    let (ok, summary, stderr) = import(&db, &a, &path);
    assert!(ok, "{stderr}");
    assert_eq!(summary["lines"], 7, "{summary}");
    assert_eq!(summary["stored"], 3, "{summary}");
    assert_eq!(summary["skipped_total"], 4, "{summary}");
    let skipped: Vec<(u64, String)> = summary["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["line"].as_u64().unwrap(),
                s["reason"].as_str().unwrap().into(),
            )
        })
        .collect();
    let lines: Vec<u64> = skipped.iter().map(|s| s.0).collect();
    assert_eq!(lines, [3, 5, 7, 8], "{summary}");
    for ((_, reason), wanted) in skipped.iter().zip([
        "neither an email address",
        "8 cells where the header has 7",
        "repeats line 2",
        "sent_at \"yesterday\" is not an RFC 3339 time",
    ]) {
        assert!(reason.contains(wanted), "{reason:?} should say {wanted:?}");
    }
    let rows: Vec<(String, String, Option<String>, String)> = sqlx::query_as(
        "SELECT message_id, channel, campaign, origin FROM message_sends
          WHERE company_id = $1 ORDER BY message_id",
    )
    .bind(a.id)
    .fetch_all(&owner)
    .await
    .unwrap();
    assert_eq!(
        rows,
        [
            (
                "m1".into(),
                "email".into(),
                Some("Black Friday, early".into()),
                "import".into()
            ),
            (
                "m4".into(),
                "sms".into(),
                Some("bf".into()),
                "import".into()
            ),
            ("m6".into(), "email".into(), None, "import".into()),
        ]
    );
    let b_rows: i64 =
        sqlx::query_scalar("SELECT count(*) FROM message_sends WHERE company_id = $1")
            .bind(b.id)
            .fetch_one(&owner)
            .await
            .unwrap();
    assert_eq!(b_rows, 0, "only the named company's sends");
    let sample = format!(
        "{}/docs/samples/message_sends.csv",
        env!("CARGO_MANIFEST_DIR")
    );
    let (ok, summary, stderr) = import(&db, &b, &sample);
    assert!(ok, "{stderr}");
    assert_eq!(
        (
            summary["stored"].as_u64(),
            summary["skipped_total"].as_u64()
        ),
        (Some(7), Some(0)),
        "the documented sample imports whole: {summary}"
    );

    // A second run changes nothing.
    let (ok, again, stderr) = import(&db, &a, &path);
    assert!(ok, "{stderr}");
    assert_eq!(
        (again["stored"].as_u64(), again["unchanged"].as_u64()),
        (Some(0), Some(3))
    );

    // A header with a misspelt column is refused as a whole.
    let bad = temp_csv(
        "message_id,provider,recipient,sent_at,campaing\nm9,other,a@b.example,2026-11-27T09:00:00Z,x\n",
    );
    let (ok, _, stderr) = import(&db, &a, &bad);
    assert!(!ok);
    assert!(stderr.contains("unknown column \"campaing\""), "{stderr}");
    // A file with no valid line fails, naming why.
    let none =
        temp_csv("message_id,provider,recipient,sent_at\nm9,other,nobody,2026-11-27T09:00:00Z\n");
    let (ok, summary, stderr) = import(&db, &a, &none);
    assert!(!ok);
    assert!(stderr.contains("nothing imported"), "{stderr}");
    assert_eq!(summary["skipped"][0]["line"], 2);
    for file in [path, bad, none] {
        let _ = std::fs::remove_file(file);
    }
}

/// Posts a send and a link for it, and returns the link's code.
async fn send_with_link(app: &TestApp, message_id: &str, url: &str) -> String {
    let key = app.company.secret_key.clone();
    let (status, answer) =
        post_sends(app, &key, &json!([send(message_id, JANE_PHONE, "twilio")])).await;
    assert_eq!(status, 200, "{answer}");
    let (status, link) = post_link(app, &key, &json!({"message_id": message_id, "url": url})).await;
    assert_eq!(status, 201, "{link}");
    let code = link["code"].as_str().unwrap().to_owned();
    assert_eq!(code.len(), 10);
    assert!(code.bytes().all(|b| b.is_ascii_alphanumeric()), "{code}");
    assert_eq!(
        link["short_url"],
        format!("/r/{code}"),
        "no LUX_PUBLIC_URL in tests"
    );
    code
}

/// The clicks recorded: message id, provider status, machine flag and reason, recipient hash.
type ClickRow = (String, String, bool, Option<String>, Option<Vec<u8>>);

async fn clicks(app: &TestApp) -> Vec<ClickRow> {
    sqlx::query_as(
        "SELECT message_id, provider_status, is_machine, machine_reason, recipient_hash
           FROM message_events
          WHERE provider = 'link' AND kind = 'clicked'
          ORDER BY received_at, provider_status",
    )
    .fetch_all(&app.owner)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_short_link_redirects_with_lux_mid_and_records_a_human_click() {
    let app = TestApp::spawn().await;
    let code = send_with_link(
        &app,
        "sms-1",
        "https://shop.example/p?utm_source=sms&q=a%20b#reviews",
    )
    .await;
    let response = no_redirects()
        .get(format!("{}/r/{code}", app.base))
        .header("user-agent", BROWSER_UA)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 302);
    assert_eq!(
        response.headers()["location"],
        "https://shop.example/p?utm_source=sms&q=a%20b&lux_mid=sms-1#reviews"
    );
    assert_eq!(response.headers()["cache-control"], "no-store");

    let recorded = clicks(&app).await;
    assert_eq!(recorded.len(), 1, "{recorded:?}");
    let (message_id, status, machine, reason, hash) = &recorded[0];
    assert_eq!((message_id.as_str(), status.as_str()), ("sms-1", "GET"));
    assert!(
        !machine && reason.is_none(),
        "a browser's click is a person's"
    );
    let key = hash_key(&app.owner, app.company.id).await;
    assert_eq!(
        hash.as_deref(),
        Some(Recipient::parse(JANE_PHONE).unwrap().hash(&key).as_bytes()),
        "the click carries the send's recipient"
    );
    let url: String = sqlx::query_scalar("SELECT url FROM message_events")
        .fetch_one(&app.owner)
        .await
        .unwrap();
    assert_eq!(url, "https://shop.example/p?utm_source=sms&q=a%20b#reviews");
}

#[tokio::test]
async fn bots_link_previews_and_head_requests_are_recorded_as_machine_clicks() {
    let app = TestApp::spawn().await;
    let code = send_with_link(&app, "sms-2", "https://shop.example/").await;
    let client = no_redirects();
    let url = format!("{}/r/{code}", app.base);
    for user_agent in [
        "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
        "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
    ] {
        let response = client
            .get(&url)
            .header("user-agent", user_agent)
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            302,
            "a preview still sees where the link goes"
        );
    }
    let response = client
        .head(&url)
        .header("user-agent", BROWSER_UA)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 302);
    assert_eq!(
        response.headers()["location"],
        "https://shop.example/?lux_mid=sms-2"
    );
    let response = client.get(&url).send().await.unwrap();
    assert_eq!(response.status(), 302);
    // A send whose link is followed before it was even sent: a gateway fetching on arrival.
    let mut early = send("sms-early", JANE_PHONE, "twilio");
    early["sent_at"] = json!((chrono::Utc::now() + chrono::TimeDelta::minutes(30)).to_rfc3339());
    let key = app.company.secret_key.clone();
    let (status, answer) = post_sends(&app, &key, &json!([early])).await;
    assert_eq!(status, 200, "{answer}");
    let (status, link) = post_link(
        &app,
        &key,
        &json!({"message_id": "sms-early", "url": "https://shop.example/"}),
    )
    .await;
    assert_eq!(status, 201, "{link}");
    let early_url = format!("{}/r/{}", app.base, link["code"].as_str().unwrap());
    let response = client
        .get(&early_url)
        .header("user-agent", BROWSER_UA)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 302);

    let reasons: Vec<(bool, Option<String>)> =
        clicks(&app).await.into_iter().map(|c| (c.2, c.3)).collect();
    let mut reasons: Vec<String> = reasons
        .into_iter()
        .map(|(machine, reason)| {
            assert!(machine, "{reason:?}");
            reason.unwrap()
        })
        .collect();
    reasons.sort();
    assert_eq!(
        reasons,
        [
            "bot_user_agent",
            "bot_user_agent",
            "clicked_at_delivery",
            "head_request",
            "no_user_agent"
        ]
    );
}

#[tokio::test]
async fn an_unknown_code_is_a_404_page_and_never_a_redirect() {
    let app = TestApp::spawn().await;
    send_with_link(&app, "sms-3", "https://shop.example/").await;
    let client = no_redirects();
    for path in [
        "/r/AAAAAAAAAA",
        "/r/x",
        "/r/..%2F..%2Fetc",
        "/r/https:%2F%2Fevil.example",
    ] {
        let response = client
            .get(format!("{}{path}", app.base))
            .header("user-agent", BROWSER_UA)
            .header("accept", "text/html,application/xhtml+xml,*/*;q=0.8")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 404, "{path}");
        assert!(response.headers().get("location").is_none(), "{path}");
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_owned();
        let page = response.text().await.unwrap();
        assert!(
            content_type.starts_with("text/html"),
            "{path}: {content_type}"
        );
        assert!(page.contains("This link does not exist"), "{path}");
        assert!(!page.contains("evil"), "nothing of the request is echoed");
    }
    let response = client
        .get(format!("{}/r/AAAAAAAAAA", app.base))
        .send()
        .await
        .unwrap();
    let (status, body) = answer(response).await;
    assert_eq!(status, 404);
    assert_eq!(body["error"], "unknown link: no such code");
    assert_eq!(app.count("SELECT count(*) FROM message_events").await, 0);
}

#[tokio::test]
async fn a_link_needs_a_secret_key_an_http_url_and_one_of_the_company_s_own_messages() {
    let app = TestApp::spawn().await;
    let b = create_company(&app.owner, "Beta").await;
    let a_key = app.company.secret_key.clone();
    let (status, _) = post_sends(&app, &a_key, &json!([send("a-1", JANE, "sendgrid")])).await;
    assert_eq!(status, 200);

    let link = json!({"message_id": "a-1", "url": "https://shop.example/"});
    let (status, answer) = post_link(&app, &b.secret_key, &link).await;
    assert_eq!(status, 404, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("no message \"a-1\""),
        "{answer}"
    );
    let (status, _) = post_link(&app, &app.company.write_key, &link).await;
    assert_eq!(status, 403);
    for (url, says) in [
        (json!("javascript:alert(1)"), "must be http or https"),
        (json!("//evil.example/"), "not an absolute URL"),
        (json!("https://a:b@shop.example/"), "user name or password"),
        (
            json!("https://shop.example/?lux_mid=x"),
            "already has a lux_mid",
        ),
        (json!(null), "url is missing"),
        (json!(7), "url must be a string"),
    ] {
        let (status, answer) =
            post_link(&app, &a_key, &json!({"message_id": "a-1", "url": url})).await;
        assert_eq!(status, 400, "{url}: {answer}");
        assert!(
            answer["error"].as_str().unwrap().contains(says),
            "{url}: {answer}"
        );
    }
    assert_eq!(app.count("SELECT count(*) FROM message_links").await, 0);

    let (status, answer) = post_link(&app, &a_key, &link).await;
    assert_eq!(status, 201, "{answer}");
    let owners: Vec<Uuid> = sqlx::query_scalar("SELECT company_id FROM message_links")
        .fetch_all(&app.owner)
        .await
        .unwrap();
    assert_eq!(owners, [app.company.id]);
}

/// Waits until the company has a session, and returns its `message_id`.
async fn session_message(app: &TestApp) -> Option<String> {
    for _ in 0..100 {
        let row: Option<Option<String>> =
            sqlx::query_scalar("SELECT message_id FROM sessions WHERE company_id = $1")
                .bind(app.company.id)
                .fetch_optional(&app.owner)
                .await
                .unwrap();
        if let Some(message_id) = row {
            return message_id;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no session appeared");
}

#[tokio::test]
async fn a_short_link_click_lands_on_the_site_and_its_session_carries_the_message() {
    let app = TestApp::spawn().await;
    // The site: the service's own development page, which serves the snippet.
    let landing = format!("{}/dev?key={}", app.base, app.company.write_key);
    let code = send_with_link(&app, "sms-landing", &landing).await;
    let response = no_redirects()
        .get(format!("{}/r/{code}", app.base))
        .header("user-agent", BROWSER_UA)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 302);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(location, format!("{landing}&lux_mid=sms-landing"));

    // The browser's next two requests: the page, then the snippet's page view.
    let page = app
        .client
        .get(&location)
        .header("user-agent", BROWSER_UA)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("lux.js"));
    let (status, answer) = app
        .post_events(&json!({
            "event_name": "page_view",
            "visitor_id": Uuid::new_v4(),
            "page_url": location,
        }))
        .await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(session_message(&app).await.as_deref(), Some("sms-landing"));
}

#[tokio::test]
async fn chromium_following_a_short_link_starts_a_session_credited_to_the_message() {
    let app = TestApp::spawn().await;
    let landing = format!("{}/dev?key={}", app.base, app.company.write_key);
    let code = send_with_link(&app, "sms-chromium", &landing).await;
    let profile = crate::snippet::profile_dir("short-link");
    let start = format!("{}/r/{code}", app.base);
    let dom = tokio::task::spawn_blocking(move || crate::snippet::load_page(&start, &profile))
        .await
        .unwrap();
    assert!(dom.contains("id=\"status\""), "Chromium landed on the page");
    assert_eq!(session_message(&app).await.as_deref(), Some("sms-chromium"));
    let recorded = clicks(&app).await;
    assert_eq!(recorded.len(), 1, "{recorded:?}");
    assert!(
        !recorded[0].2,
        "a browser's click is a person's: {recorded:?}"
    );
}

#[tokio::test]
async fn a_suppressed_recipient_s_or_company_s_clicks_are_redirected_but_not_recorded() {
    let app = TestApp::spawn().await;
    let code = send_with_link(&app, "sms-4", "https://shop.example/").await;
    let key = app.company.secret_key.clone();
    let (status, answer) =
        post_sends(&app, &key, &json!([send("email-4", JANE, "sendgrid")])).await;
    assert_eq!(status, 200, "{answer}");
    let (status, link) = post_link(
        &app,
        &key,
        &json!({"message_id": "email-4", "url": "https://shop.example/"}),
    )
    .await;
    assert_eq!(status, 201, "{link}");
    let email_code = link["code"].as_str().unwrap().to_owned();
    let client = no_redirects();
    let click = |code: String| {
        let request = client
            .get(format!("{}/r/{code}", app.base))
            .header("user-agent", BROWSER_UA);
        async move { request.send().await.unwrap().status() }
    };

    use lux::privacy::SuppressionTarget;
    lux::privacy::suppress(
        &app.owner,
        app.company.id.into(),
        &SuppressionTarget::Email(JANE.into()),
    )
    .await
    .unwrap();
    assert_eq!(click(email_code.clone()).await, 302);
    assert_eq!(click(code.clone()).await, 302);
    let recorded: Vec<String> = clicks(&app).await.into_iter().map(|c| c.0).collect();
    assert_eq!(
        recorded,
        ["sms-4"],
        "the suppressed email's click is not kept"
    );

    lux::privacy::suppress(
        &app.owner,
        app.company.id.into(),
        &SuppressionTarget::Company,
    )
    .await
    .unwrap();
    assert_eq!(click(code).await, 302);
    assert_eq!(
        clicks(&app).await.len(),
        1,
        "tracking off: nothing more is kept"
    );
}

#[tokio::test]
async fn sends_to_a_suppressed_email_or_of_a_company_with_tracking_off_are_accepted_and_dropped() {
    let app = TestApp::spawn().await;
    let key = app.company.secret_key.clone();
    use lux::privacy::SuppressionTarget;
    lux::privacy::suppress(
        &app.owner,
        app.company.id.into(),
        &SuppressionTarget::Email("jane.doe@example.com".into()),
    )
    .await
    .unwrap();
    let body = json!([
        send("to-jane", JANE, "sendgrid"),
        send("to-sam", "sam@example.com", "sendgrid"),
        send("to-phone", JANE_PHONE, "twilio"),
    ]);
    let (status, answer) = post_sends(&app, &key, &body).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        (answer["accepted"].as_u64(), answer["suppressed"].as_u64()),
        (Some(2), Some(1)),
        "{answer}"
    );
    let stored: Vec<String> =
        sqlx::query_scalar("SELECT message_id FROM message_sends ORDER BY message_id")
            .fetch_all(&app.owner)
            .await
            .unwrap();
    assert_eq!(stored, ["to-phone", "to-sam"]);

    lux::privacy::suppress(
        &app.owner,
        app.company.id.into(),
        &SuppressionTarget::Company,
    )
    .await
    .unwrap();
    let (status, answer) = post_sends(
        &app,
        &key,
        &json!([send("later", "ann@example.com", "mailgun")]),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["suppressed"], 1, "{answer}");
    assert_eq!(app.count("SELECT count(*) FROM message_sends").await, 2);
}
