//! Bad input: every malformed request gets a 4xx whose JSON `error` names the problem, never
//! a 5xx; a mixed batch stores exactly its valid events and reports each invalid one.

use serde_json::json;

use crate::helpers::{BROWSER_UA, TestApp};

enum Key {
    Write,
    Secret,
    SecretInUrl,
    None,
    Unknown,
}

struct Case {
    name: &'static str,
    body: Vec<u8>,
    content_type: &'static str,
    key: Key,
    status: u16,
    /// A piece of the `error` text that names the problem.
    says: &'static str,
}

fn case(name: &'static str, body: impl Into<Vec<u8>>, status: u16, says: &'static str) -> Case {
    Case {
        name,
        body: body.into(),
        content_type: "application/json",
        key: Key::Write,
        status,
        says,
    }
}

fn event(fields: serde_json::Value) -> String {
    let mut e = json!({"event_name": "page_view", "page_url": "https://s.test/"});
    for (k, v) in fields.as_object().unwrap() {
        e[k] = v.clone();
    }
    e.to_string()
}

fn corpus() -> Vec<Case> {
    let nested = format!("{}1{}", "[".repeat(200), "]".repeat(200));
    let deep_props =
        json!({"event_name": "x", "properties": {"a": {"b": {"c": {"d": {"e": {"f": 1}}}}}}});
    let many: Vec<_> = (0..10_000).map(|_| json!({"event_name": "a"})).collect();
    vec![
        case(
            "truncated JSON",
            r#"{"event_name": "page_view", "page_url": "#,
            400,
            "malformed JSON",
        ),
        case("not JSON at all", "hello", 400, "malformed JSON"),
        case("empty body", "", 400, "empty body"),
        case("whitespace body", "   \n", 400, "empty body"),
        case("JSON null", "null", 400, "not null"),
        case("JSON number", "42", 400, "not a number"),
        case("JSON string", r#""page_view""#, 400, "not a string"),
        case("empty array", "[]", 400, "no events"),
        case(
            "events not an array",
            r#"{"events": {"event_name": "x"}}"#,
            400,
            "`events` must be an array",
        ),
        case(
            "field next to events",
            r#"{"events": [], "extra": 1}"#,
            400,
            "unknown field `extra`",
        ),
        case("non-object event", "[1]", 400, "must be a JSON object"),
        case("array event", "[[]]", 400, "must be a JSON object"),
        case(
            "missing event_name",
            r#"{"page_url": "https://s.test/"}"#,
            400,
            "event_name",
        ),
        case(
            "event_name not a string",
            r#"{"event_name": 5}"#,
            400,
            "event_name",
        ),
        case(
            "invalid event name",
            r#"{"event_name": "page view!"}"#,
            400,
            "is invalid",
        ),
        case(
            "event name too long",
            event(json!({"event_name": "a".repeat(65)})),
            400,
            "is invalid",
        ),
        case(
            "unknown key",
            event(json!({"colour": "red"})),
            400,
            "unknown field `colour`",
        ),
        case(
            "unknown consent key",
            event(json!({"consent": {"ads": true}})),
            400,
            "unknown field `ads`",
        ),
        case(
            "event_id not a UUID",
            event(json!({"event_id": "abc"})),
            400,
            "event_id",
        ),
        case(
            "visitor_id not a UUID",
            event(json!({"visitor_id": "v-1"})),
            400,
            "visitor_id",
        ),
        case(
            "occurred_at not a time",
            event(json!({"occurred_at": "yesterday"})),
            400,
            "occurred_at",
        ),
        case(
            "occurred_at a number",
            event(json!({"occurred_at": 1700000000})),
            400,
            "occurred_at",
        ),
        case(
            "properties not an object",
            event(json!({"properties": [1, 2]})),
            400,
            "properties",
        ),
        case(
            "properties nested too deep",
            deep_props.to_string(),
            400,
            "nested more than",
        ),
        case(
            "properties too big",
            event(json!({"properties": {"blob": "x".repeat(40_000)}})),
            400,
            "properties",
        ),
        case(
            "user_id a boolean",
            event(json!({"user_id": true})),
            400,
            "user_id",
        ),
        case(
            "user_id too long",
            event(json!({"user_id": "u".repeat(300)})),
            400,
            "user_id",
        ),
        case(
            "huge page_url",
            event(json!({"page_url": format!("https://s.test/{}", "a".repeat(5000))})),
            400,
            "page_url",
        ),
        case(
            "relative page_url",
            event(json!({"page_url": "/cart"})),
            400,
            "page_url",
        ),
        case(
            "page_url not http",
            event(json!({"page_url": "javascript:alert(1)"})),
            400,
            "page_url",
        ),
        case(
            "bad email",
            event(json!({"email": "not-an-email"})),
            400,
            "email",
        ),
        case(
            "NUL in a property",
            r#"{"event_name": "x", "properties": {"a": "b\u0000c"}}"#,
            400,
            "NUL",
        ),
        case(
            "NUL in event name",
            r#"{"event_name": "a\u0000"}"#,
            400,
            "NUL",
        ),
        case(
            "invalid UTF-8",
            b"{\"event_name\": \"\xff\xfe\"}".to_vec(),
            400,
            "UTF-8",
        ),
        case("deeply nested JSON", nested, 400, "malformed JSON"),
        case(
            "purchase without order_id",
            r#"{"event_name": "purchase", "properties": {"value": 5, "currency": "USD"}}"#,
            400,
            "order_id",
        ),
        case(
            "purchase without value",
            r#"{"event_name": "purchase", "properties": {"order_id": "o", "currency": "USD"}}"#,
            400,
            "value",
        ),
        case(
            "purchase with a bad currency",
            r#"{"event_name": "purchase", "properties": {"order_id": "o", "value": 5, "currency": "dollars"}}"#,
            400,
            "currency",
        ),
        case(
            "purchase with a negative value",
            r#"{"event_name": "purchase", "properties": {"order_id": "o", "value": -5, "currency": "USD"}}"#,
            400,
            "value",
        ),
        case(
            "purchase with a 3,000-character order_id",
            format!(
                r#"{{"event_name": "purchase", "properties": {{"order_id": "{}", "value": 1, "currency": "USD"}}}}"#,
                "o".repeat(3000)
            ),
            400,
            "order_id",
        ),
        case(
            "cart value without currency",
            r#"{"event_name": "add_to_cart", "properties": {"value": 5}}"#,
            400,
            "currency is required",
        ),
        case(
            "cart items not an array",
            r#"{"event_name": "add_to_cart", "properties": {"items": {"sku": "A"}}}"#,
            400,
            "items must be an array",
        ),
        case(
            "login method not a string",
            r#"{"event_name": "login", "properties": {"method": 1}}"#,
            400,
            "method",
        ),
        case(
            "ip from a browser",
            event(json!({"ip": "1.2.3.4"})),
            400,
            "secret key",
        ),
        case(
            "user_agent from a browser",
            event(json!({"user_agent": "x"})),
            400,
            "secret key",
        ),
        case(
            "a 10,000-event batch",
            json!(many).to_string(),
            413,
            "limit of 500",
        ),
        case(
            "a 1 MB body",
            format!(
                "{{\"event_name\": \"x\", \"properties\": {{\"a\": \"{}\"}}}}",
                "x".repeat(1_100_000)
            ),
            413,
            "larger than",
        ),
        Case {
            content_type: "application/x-www-form-urlencoded",
            ..case("form content type", "event_name=x", 415, "Content-Type")
        },
        Case {
            content_type: "application/xml",
            ..case("xml content type", "<e/>", 415, "Content-Type")
        },
        Case {
            key: Key::None,
            ..case("missing key", event(json!({})), 401, "missing key")
        },
        Case {
            key: Key::Unknown,
            ..case(
                "unknown key",
                event(json!({})),
                401,
                "unknown or revoked key",
            )
        },
        Case {
            key: Key::SecretInUrl,
            ..case(
                "secret key in the URL",
                event(json!({})),
                400,
                "Authorization header",
            )
        },
        Case {
            key: Key::Secret,
            ..case(
                "server event too old",
                event(json!({"occurred_at": "2001-01-01T00:00:00Z"})),
                400,
                "2 years",
            )
        },
        Case {
            key: Key::Secret,
            ..case(
                "server event in the future",
                event(json!({"occurred_at": "2999-01-01T00:00:00Z"})),
                400,
                "future",
            )
        },
        Case {
            key: Key::Secret,
            ..case(
                "server ip not an address",
                event(json!({"ip": "999.1.1.1"})),
                400,
                "ip",
            )
        },
    ]
}

#[tokio::test]
async fn every_malformed_request_gets_a_4xx_that_names_the_problem() {
    let app = TestApp::spawn().await;
    let cases = corpus();
    assert!(cases.len() >= 30);
    for case in cases {
        let url = match case.key {
            Key::Write => format!("{}/e?key={}", app.base, app.company.write_key),
            Key::SecretInUrl => format!("{}/e?key={}", app.base, app.company.secret_key),
            Key::Unknown => format!("{}/e?key=lux_wk_nope", app.base),
            Key::Secret | Key::None => format!("{}/e", app.base),
        };
        let mut request = app
            .client
            .post(url)
            .header("content-type", case.content_type)
            .header("user-agent", BROWSER_UA)
            .body(case.body.clone());
        if let Key::Secret = case.key {
            request = request.bearer_auth(&app.company.secret_key);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        assert_eq!(status, case.status, "{}: {text}", case.name);
        let body: serde_json::Value = serde_json::from_str(&text)
            .unwrap_or_else(|_| panic!("{}: the answer is not JSON: {text}", case.name));
        let error = body["error"]
            .as_str()
            .unwrap_or_else(|| panic!("{}: no error field: {text}", case.name));
        assert!(
            error.contains(case.says),
            "{}: error {error:?} does not say {:?}",
            case.name,
            case.says
        );
    }
    assert_eq!(app.count("SELECT count(*) FROM raw_events").await, 0);
    // Every error answer is JSON, routing errors included.
    let not_found = app
        .client
        .get(format!("{}/nope", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(not_found.status(), 404);
    assert!(not_found.json::<serde_json::Value>().await.unwrap()["error"].is_string());
    let wrong_method = app
        .client
        .get(format!("{}/e", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_method.status(), 405);
    assert!(wrong_method.json::<serde_json::Value>().await.unwrap()["error"].is_string());
    app.stop().await;
}

#[tokio::test]
async fn a_mixed_batch_stores_exactly_the_valid_events_and_reports_each_invalid_one() {
    let app = TestApp::spawn().await;
    let (status, body) = app
        .post_events(&json!([
            {"event_name": "page_view", "page_url": "https://s.test/1"},
            {"event_name": "bad name"},
            {"event_name": "add_to_cart", "page_url": "https://s.test/2", "properties": {"sku": "A"}},
            {"event_name": "purchase", "properties": {"value": 5}},
            7,
            {"event_name": "page_view", "page_url": "https://s.test/3", "typo": 1}
        ]))
        .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["stored"], 2);
    let rejected = body["rejected"].as_array().unwrap();
    let indexes: Vec<i64> = rejected
        .iter()
        .map(|r| r["index"].as_i64().unwrap())
        .collect();
    assert_eq!(indexes, [1, 3, 4, 5]);
    assert!(rejected[1]["error"].as_str().unwrap().contains("order_id"));
    assert!(rejected[3]["error"].as_str().unwrap().contains("typo"));
    let stored: Vec<String> =
        sqlx::query_scalar("SELECT page_url FROM raw_events ORDER BY page_url")
            .fetch_all(&app.owner)
            .await
            .unwrap();
    assert_eq!(stored, ["https://s.test/1", "https://s.test/2"]);
    app.stop().await;
}
