//! The OpenAPI 3.1 document of the HTTP API, served at `GET /api/openapi.json`.
//!
//! Written as JSON here rather than derived with utoipa (see `docs/decisions.md`, "Reports
//! API"): the lists that could drift (report names, models, `by` values, the range limit,
//! the paths) come from the constants the code itself validates with, and a test reads the
//! served document back.

use axum::Router;
use axum::routing::get;
use axum::{Json, response::IntoResponse};
use serde_json::{Value, json};

use super::AppState;
use crate::attribution::settings::Model;
use crate::reports::REPORTS_PATH;
use crate::reports::request::{
    CreativeGroup, DEFAULT_FUNNEL, DEFAULT_MODEL, MAX_RANGE_DAYS, MessageChannel, MessageGroup,
    ReportName, RoasKey,
};

pub const OPENAPI_PATH: &str = "/api/openapi.json";

pub fn router() -> Router<AppState> {
    Router::new().route(
        OPENAPI_PATH,
        get(|| async { Json(document()).into_response() }),
    )
}

fn error_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    })
}

fn money(description: &str) -> Value {
    json!({"type": "string", "pattern": "^-?[0-9]+(\\.[0-9]+)?$", "description": description})
}

fn nullable_money(description: &str) -> Value {
    json!({"type": ["string", "null"], "pattern": "^-?[0-9]+(\\.[0-9]+)?$", "description": description})
}

fn ratio(description: &str) -> Value {
    json!({"type": ["number", "null"], "description": description})
}

fn credits(description: &str) -> Value {
    json!({"type": "string", "pattern": "^[0-9]+\\.[0-9]{2}$", "description": description})
}

fn object(properties: Value) -> Value {
    let required: Vec<&String> = properties
        .as_object()
        .expect("properties is an object")
        .keys()
        .collect();
    json!({"type": "object", "properties": properties, "required": required})
}

/// The row schemas, one per report.
fn row_schemas() -> Value {
    let currency =
        json!({"type": "string", "description": "ISO 4217 code of the amounts in this row"});
    json!({
        "RevenueByChannelRow": object(json!({
            "channel": {"type": "string"},
            "currency": currency,
            "orders": credits("orders credited to the channel (credit-weighted)"),
            "gross": money("Σ gross"),
            "refunds": money("Σ refunded"),
            "revenue": money("Σ net = gross − refunds"),
            "aov": nullable_money("revenue ÷ orders; null with 0 orders"),
        })),
        "CacRow": object(json!({
            "channel": {"type": "string", "description": "a channel with spend, or \"All\" (blended)"},
            "currency": currency,
            "spend": money("Σ ad spend"),
            "new_customers": credits("first orders credited to the channel (All: every channel)"),
            "cac": nullable_money("spend ÷ new_customers; null with 0 new customers"),
        })),
        "RoasRow": {
            "type": "object",
            "required": ["channel", "currency", "spend", "impressions", "clicks", "revenue", "roas"],
            "properties": {
                "channel": {"type": "string"},
                "campaign": {"type": "string", "description": "by=campaign and by=creative"},
                "creative": {"type": "string", "description": "by=creative: the ad id"},
                "currency": currency,
                "spend": money("Σ ad spend"),
                "impressions": {"type": "integer"},
                "clicks": {"type": "integer"},
                "revenue": money("Σ attributed net revenue of the same key and currency"),
                "roas": ratio("revenue ÷ spend; null with 0 spend"),
            }
        },
        "FunnelRow": object(json!({
            "step": {"type": "integer", "minimum": 1},
            "event_name": {"type": "string"},
            "sessions": {"type": "integer"},
            "conversion_from_previous": ratio("sessions ÷ previous step's sessions"),
            "conversion_from_start": ratio("sessions ÷ step 1's sessions"),
            "drop_off": {"type": "integer", "description": "previous step's sessions − sessions"},
            "drop_off_rate": ratio("drop_off ÷ previous step's sessions"),
        })),
        "TimeToConversionRow": object(json!({
            "bucket": {"type": "string", "examples": ["0-1h", "1h-24h", "30d+"]},
            "min_seconds": {"type": "integer"},
            "max_seconds": {"type": ["integer", "null"], "description": "excluded; null for the last bucket"},
            "orders": {"type": "integer"},
            "share": ratio("orders ÷ all orders"),
        })),
        "TimeToConversionSummary": object(json!({
            "orders": {"type": "integer"},
            "median_seconds": {"type": ["integer", "null"]},
            "p75_seconds": {"type": ["integer", "null"]},
            "p90_seconds": {"type": ["integer", "null"]},
        })),
        "QualifiedSessionsRow": object(json!({
            "channel": {"type": "string", "description": "a channel, or \"All\" (last row)"},
            "sessions": {"type": "integer"},
            "engaged_sessions": {"type": "integer"},
            "rate": ratio("engaged_sessions ÷ sessions"),
        })),
        "RepeatPurchaseRow": object(json!({
            "cohort": {"type": "string", "description": "\"all\", then first-order months YYYY-MM"},
            "customers": {"type": "integer"},
            "repeat_customers": {"type": "integer"},
            "rate": ratio("repeat_customers ÷ customers"),
        })),
        "LtvRollingRow": object(json!({
            "window_days": {"type": "integer", "enum": [30, 90, 180, 365]},
            "currency": currency,
            "customers": {"type": "integer", "description": "customers whose window has passed"},
            "revenue": money("their net revenue within the window"),
            "ltv": nullable_money("revenue ÷ customers"),
        })),
        "LtvCohortsRow": object(json!({
            "cohort": {"type": "string", "description": "first-order month YYYY-MM"},
            "months_since": {"type": "integer"},
            "currency": currency,
            "customers": {"type": "integer"},
            "revenue": money("cumulative net revenue up to the end of month cohort + months_since"),
            "ltv": nullable_money("revenue ÷ customers"),
        })),
        "MessagesRow": {
            "type": "object",
            "required": ["channel", "sent", "delivered", "delivery_rate", "opens", "machine_opens",
                         "open_rate", "clicks", "click_rate", "click_to_open_rate", "bounces",
                         "bounce_rate", "unsubscribes", "unsubscribe_rate", "complaints",
                         "complaint_rate", "orders", "revenue", "revenue_per_send", "currency"],
            "properties": {
                "channel": {"type": "string", "enum": ["email", "sms"]},
                "campaign": {"type": ["string", "null"], "description": "group=campaign and group=message"},
                "message_id": {"type": "string", "description": "group=message"},
                "day": {"type": "string", "format": "date", "description": "group=message: the send's local day"},
                "sent": {"type": "integer", "description": "sends on the days of the range"},
                "delivered": {"type": "integer"},
                "delivery_rate": ratio("delivered ÷ sent"),
                "opens": {"type": "integer", "description": "sends opened by a person"},
                "machine_opens": {"type": "integer", "description": "sends opened by a machine (reported apart)"},
                "open_rate": ratio("opens ÷ delivered; null for sms"),
                "clicks": {"type": "integer", "description": "sends clicked by a person"},
                "click_rate": ratio("clicks ÷ delivered"),
                "click_to_open_rate": ratio("clicks ÷ opens; null for sms"),
                "bounces": {"type": "integer"},
                "bounce_rate": ratio("bounces ÷ sent"),
                "unsubscribes": {"type": "integer"},
                "unsubscribe_rate": ratio("unsubscribes ÷ delivered"),
                "complaints": {"type": "integer"},
                "complaint_rate": ratio("complaints ÷ delivered"),
                "orders": {"type": "integer", "description": "orders credited to these sends (last human message click within 120 h)"},
                "revenue": money("their net revenue"),
                "revenue_per_send": nullable_money("revenue ÷ sent"),
                "currency": currency,
            }
        },
        "CreativesRow": {
            "type": "object",
            "required": ["impressions", "clicks", "ctr", "spend", "cpc", "cpm", "reach",
                         "frequency", "sessions", "orders", "revenue", "cpa", "roas", "currency"],
            "properties": {
                "creative_id": {"type": "string", "description": "group=creative: the ad id (spend ad_id, event creative_id, landing utm_content)"},
                "name": {"type": ["string", "null"], "description": "group=creative: the catalog's name; null when not in the catalog"},
                "concept": {"type": ["string", "null"], "description": "group=creative and group=concept; null when not in the catalog or without one"},
                "angle": {"type": ["string", "null"], "description": "group=creative and group=angle"},
                "creatives": {"type": "integer", "description": "group=concept and group=angle: creatives with impressions or sessions in the range"},
                "impressions": {"type": "integer"},
                "clicks": {"type": "integer", "description": "ad platform clicks"},
                "ctr": ratio("clicks ÷ impressions"),
                "spend": money("Σ ad spend of the creative's ad_id"),
                "cpc": nullable_money("spend ÷ clicks"),
                "cpm": nullable_money("1000 × spend ÷ impressions"),
                "reach": {"type": ["integer", "null"], "description": "Σ of the days' reach where the spend import has one (people reached on two days count twice); null without"},
                "frequency": ratio("impressions of the rows with reach ÷ reach"),
                "sessions": {"type": "integer", "description": "sessions (not bots') whose creative it is"},
                "orders": credits("orders credited to touches with the creative under the model (credit-weighted)"),
                "revenue": money("their net revenue"),
                "cpa": nullable_money("spend ÷ orders"),
                "roas": ratio("revenue ÷ spend"),
                "currency": currency,
            }
        },
        "CreativeDecayRow": object(json!({
            "day": {"type": "string", "format": "date"},
            "days_since_launch": {"type": ["integer", "null"], "description": "day − the catalog's launch day (else the first day with impressions)"},
            "impressions": {"type": "integer"},
            "clicks": {"type": "integer"},
            "ctr": ratio("clicks ÷ impressions"),
        })),
        "CreativeFatigueRow": object(json!({
            "creative_id": {"type": "string"},
            "name": {"type": ["string", "null"]},
            "concept": {"type": ["string", "null"]},
            "angle": {"type": ["string", "null"]},
            "day": {"type": "string", "format": "date", "description": "the day the verdict is as of: the latest in the range"},
            "status": {"type": "string", "enum": ["fresh", "watch", "fatigued", "insufficient_data"]},
            "baseline_ctr": ratio("CTR of the first 7 live days"),
            "recent_ctr": ratio("CTR of the last 7 days (after the baseline week)"),
            "drop": ratio("1 − recent_ctr ÷ baseline_ctr"),
            "p_value": ratio("one-sided two-proportion test that the recent CTR is lower"),
            "baseline_impressions": {"type": "integer"},
            "recent_impressions": {"type": "integer"},
            "explanation": {"type": "string", "description": "which rule decided, in a sentence"},
        })),
        "ExperimentsRow": object(json!({
            "key": {"type": "string"},
            "name": {"type": "string"},
            "status": {"type": "string", "enum": ["running", "concluded"]},
            "primary_event": {"type": "string", "description": "the event that counts as a conversion"},
            "started_on": {"type": "string", "format": "date"},
            "ended_on": {"type": ["string", "null"], "format": "date"},
            "variant": {"type": ["string", "null"], "description": "null: nobody exposed yet (one row with zeros)"},
            "is_control": {"type": "boolean", "description": "the variant named `control`, else the variant exposed first"},
            "exposed": {"type": "integer", "description": "visitors whose first exposure was to this variant"},
            "converted": {"type": "integer", "description": "of them, visitors with the primary event at or after that exposure, within the experiment's dates"},
            "rate": ratio("converted ÷ exposed"),
            "uplift": ratio("(rate − control rate) ÷ control rate; null for the control"),
            "ci_low": ratio("95 % unpooled Wald interval of rate − control rate, low end"),
            "ci_high": ratio("the interval's high end"),
            "p_value": ratio("two-sided pooled two-proportion z-test against the control"),
            "winner": {"type": ["string", "null"], "description": "the winner the experiment was concluded with"},
        })),
        "OpsVelocityRow": object(json!({
            "month": {"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}$"},
            "launched": {"type": "integer", "description": "experiments started this month"},
            "concluded": {"type": "integer", "description": "experiments ended this month"},
            "won": {"type": "integer", "description": "of those, concluded with a winner"},
            "win_rate": ratio("won ÷ concluded"),
            "median_duration_days": {"type": ["number", "null"], "description": "median of ended_on − started_on (days) of the experiments concluded this month"},
        })),
    })
}

/// The whole document.
pub fn document() -> Value {
    let mut doc = base_document();
    add_message_webhooks(&mut doc);
    add_sends_and_links(&mut doc);
    add_experiments(&mut doc);
    add_alerts(&mut doc);
    add_privacy_requests(&mut doc);
    doc
}

/// `/api/v1/experiments` and `/api/v1/experiments/{key}/conclude` (SPEC §8.3).
fn add_experiments(doc: &mut Value) {
    let Some(paths) = doc["paths"].as_object_mut() else {
        return;
    };
    paths.insert(
        "/api/v1/experiments".into(),
        json!({
            "post": {
                "operationId": "createExperiment",
                "summary": "Register an experiment: {key, name, primary_event, hypothesis?, started_on?} (started_on defaults to the company's today)",
                "security": [{"secretKey": []}],
                "responses": {
                    "201": {"description": "created: the experiment"},
                    "200": {"description": "the same experiment was already registered (a retried request): the experiment"},
                    "400": error_response("a field is missing or invalid (key, name, primary_event, started_on)"),
                    "401": error_response("no or unknown secret key"),
                    "403": error_response("a write key: experiments need the secret key"),
                    "409": error_response("the key is taken by an experiment with other values")
                }
            },
            "get": {
                "operationId": "listExperiments",
                "summary": "The company's experiments: {experiments: [{key, name, hypothesis, primary_event, started_on, ended_on, status, winner}]}",
                "security": [{"secretKey": []}],
                "responses": {
                    "200": {"description": "the experiments, by start day then key"},
                    "401": error_response("no or unknown secret key"),
                    "403": error_response("a write key")
                }
            }
        }),
    );
    paths.insert(
        "/api/v1/experiments/{key}/conclude".into(),
        json!({"post": {
            "operationId": "concludeExperiment",
            "summary": "Conclude an experiment: {winner: VARIANT} or {no_winner: true}, with ended_on (YYYY-MM-DD) optional (default: the company's today)",
            "security": [{"secretKey": []}],
            "parameters": [{"name": "key", "in": "path", "required": true, "schema": {"type": "string"}}],
            "responses": {
                "200": {"description": "the concluded experiment (concluding again the same way changes nothing)"},
                "400": error_response("neither or both of winner and no_winner, a winner that is not a variant name, ended_on before the start or after today"),
                "401": error_response("no or unknown secret key"),
                "403": error_response("a write key"),
                "404": error_response("no experiment with this key in the company"),
                "409": error_response("already concluded with another outcome or day")
            }
        }}),
    );
}

/// `GET/PUT /api/v1/alerts/config`, `GET /api/v1/reports/alerts` (docs/alerts.md).
fn add_alerts(doc: &mut Value) {
    let Some(paths) = doc["paths"].as_object_mut() else {
        return;
    };
    let settings = "{emails: [address], slack_webhook: URL|null, quiet_hours: \"22-07\"|null, \
                    morning_hour: 0-23, rules: {RULE: {threshold, min_volume}}}; rules: cpa_wow, \
                    funnel_step_drop, checkout_abandonment_spike, revenue_anomaly, \
                    email_complaints, creative_fatigue";
    paths.insert(
        "/api/v1/alerts/config".into(),
        json!({
            "get": {
                "operationId": "getAlertConfig",
                "summary": format!("The company's alert settings, every rule with its effective threshold and minimum volume: {settings}"),
                "security": [{"secretKey": []}],
                "responses": {
                    "200": {"description": "the settings"},
                    "401": error_response("no or unknown secret key"),
                    "403": error_response("a write key")
                }
            },
            "put": {
                "operationId": "putAlertConfig",
                "summary": format!("Replaces the alert settings (fields left out take their defaults): {settings}"),
                "security": [{"secretKey": []}],
                "responses": {
                    "200": {"description": "the settings now in force"},
                    "400": error_response("a field that is not valid, named"),
                    "401": error_response("no or unknown secret key"),
                    "403": error_response("a write key")
                }
            }
        }),
    );
    paths.insert(
        "/api/v1/reports/alerts".into(),
        json!({"get": {
            "operationId": "alertsReport",
            "summary": "The alert history: alerts firing during from..to with state, numbers, explanation, link and deliveries (channel, target, status, attempts, sent_at, last_error)",
            "security": [{"secretKey": []}],
            "parameters": [
                {"name": "from", "in": "query", "required": true, "schema": {"type": "string", "format": "date"}},
                {"name": "to", "in": "query", "required": true, "schema": {"type": "string", "format": "date"}}
            ],
            "responses": {
                "200": {"description": "{report: \"alerts\", from, to, rows}"},
                "400": error_response("missing or invalid from/to"),
                "401": error_response("no or unknown secret key"),
                "403": error_response("a write key")
            }
        }}),
    );
}

/// `POST /api/v1/privacy/requests` (docs/privacy.md).
fn add_privacy_requests(doc: &mut Value) {
    let Some(paths) = doc["paths"].as_object_mut() else {
        return;
    };
    paths.insert(
        "/api/v1/privacy/requests".into(),
        json!({"post": {
            "operationId": "postPrivacyRequest",
            "summary": "File a privacy request: {kind: access|deletion|opt_out, one of email|user_id|visitor_id, received_at?} → the request with acknowledge_by (10 business days) and due_by (45 days)",
            "security": [{"secretKey": []}],
            "responses": {
                "201": {"description": "{request_id, kind, subject_kind, received_at, acknowledge_by, due_by, state, outcome, completed_at, filed_via}"},
                "400": error_response("unknown kind, not exactly one of email/user_id/visitor_id, not an email, received_at in the future, or not JSON"),
                "401": error_response("no or unknown secret key"),
                "403": error_response("a write key: privacy requests need the secret key"),
                "413": error_response("body over 4096 bytes")
            }
        }}),
    );
}

/// `POST /api/v1/messages`, `POST /api/v1/links`, `GET /r/{code}` (docs/messages.md).
fn add_sends_and_links(doc: &mut Value) {
    let Some(paths) = doc["paths"].as_object_mut() else {
        return;
    };
    paths.insert(
        "/api/v1/messages".into(),
        json!({"post": {
            "operationId": "postSends",
            "summary": "Record sends: a JSON array of {message_id, channel, provider, provider_message_id, campaign, recipient, sent_at}; recipient (an email or E.164 phone) is hashed on arrival",
            "security": [{"secretKey": []}],
            "responses": {
                "200": {"description": "per-item outcomes; items that could not be read are listed in `rejected: [{index, error}]`, the others are stored (a send already known gains only the fields it lacked)"},
                "400": error_response("no item could be stored (each is named in `rejected`), or the body is not a JSON array"),
                "401": error_response("no or unknown secret key"),
                "403": error_response("a write key: sends need the secret key"),
                "413": error_response("more than the allowed items or bytes")
            }
        }}),
    );
    paths.insert(
        crate::creatives::api::CREATIVES_PATH.into(),
        json!({"post": {
            "operationId": "postCreatives",
            "summary": "Upsert the creative catalog: a JSON array of {creative_id, name, platform, campaign, concept, angle, format, launched_on} (the CSV's fields; creative_id and launched_on YYYY-MM-DD required)",
            "security": [{"secretKey": []}],
            "responses": {
                "200": {"description": "{accepted, stored, updated, unchanged, rejected: [{index, error}]}: the valid items are stored whatever the others hold"},
                "400": error_response("no item is a valid creative (each is named in `rejected`), or the body is not a JSON array"),
                "401": error_response("no or unknown secret key"),
                "403": error_response("a write key: the catalog needs the secret key"),
                "413": error_response("more than 10,000 items or 8 MiB")
            }
        }}),
    );
    paths.insert(
        "/api/v1/links".into(),
        json!({"post": {
            "operationId": "postLink",
            "summary": "A short tracked link for one of the company's sends: {message_id, url} → {code, short_url}",
            "security": [{"secretKey": []}],
            "responses": {
                "201": {"description": "{code, short_url}: short_url is LUX_PUBLIC_URL + /r/{code}, or /r/{code} when no public URL is set"},
                "400": error_response("the URL is not http(s), too long, carries credentials or its own lux_mid"),
                "401": error_response("no or unknown secret key"),
                "403": error_response("a write key"),
                "404": error_response("no such send for this company")
            }
        }}),
    );
    paths.insert(
        "/r/{code}".into(),
        json!({"get": {
            "operationId": "followLink",
            "summary": "Records the click (machine clicks flagged) and redirects to the stored URL with lux_mid added",
            "parameters": [{"name": "code", "in": "path", "required": true, "schema": {"type": "string"}}],
            "responses": {
                "302": {"description": "to the stored URL with `lux_mid` added"},
                "404": {"description": "unknown code: an HTML page for browsers, JSON otherwise; never a redirect"}
            }
        }}),
    );
}

/// `POST /webhooks/{sendgrid|mailgun|ses|twilio}/{company_id}` (docs/messages.md).
fn add_message_webhooks(doc: &mut Value) {
    let Some(paths) = doc["paths"].as_object_mut() else {
        return;
    };
    for (provider, what) in [
        (
            "sendgrid",
            "SendGrid Event Webhook: a signed JSON array of events (ECDSA P-256)",
        ),
        (
            "mailgun",
            "Mailgun webhook: one signed event (HMAC-SHA256 of timestamp + token, each token once)",
        ),
        (
            "ses",
            "Amazon SES events through SNS (RSA signature, sns.<region>.amazonaws.com certificate, the company's TopicArn); subscription confirmations",
        ),
        (
            "twilio",
            "Twilio status callback: form parameters signed over LUX_PUBLIC_URL + path + query (HMAC-SHA1)",
        ),
    ] {
        paths.insert(
            format!("/webhooks/{provider}/{{company_id}}"),
            json!({"post": {
                "operationId": format!("{provider}_webhook"),
                "summary": what,
                "parameters": [
                    {"name": "company_id", "in": "path", "required": true, "schema": {"type": "string", "format": "uuid"}}
                ],
                "responses": {
                    "200": {"description": "verified: {received, stored, duplicates, machine, sends_created, consent_records, suppressed, rejected: [{index, error}]}"},
                    "400": error_response("refused (signature, stale timestamp, replayed token, SNS topic or certificate URL); only the delivery's hash was kept"),
                    "404": error_response("no secret for this provider, or not a company"),
                    "422": error_response("verified, but no event in it could be read"),
                    "502": error_response("the SNS signing certificate could not be fetched (SNS retries)"),
                    "503": error_response("no webhook secrets key (or, for Twilio, no LUX_PUBLIC_URL) configured, or the database is unavailable")
                }
            }}),
        );
    }
}

fn base_document() -> Value {
    let reports: Vec<&str> = ReportName::ALL.iter().map(|r| r.as_str()).collect();
    let models: Vec<&str> = Model::ALL.iter().map(|m| m.as_str()).collect();
    let by: Vec<&str> = RoasKey::ALL.iter().map(|k| k.as_str()).collect();
    let channels: Vec<&str> = MessageChannel::ALL.iter().map(|c| c.as_str()).collect();
    let groups: Vec<&str> = MessageGroup::ALL
        .iter()
        .map(|g| g.as_str())
        .chain(CreativeGroup::ALL.iter().map(|g| g.as_str()))
        .filter(|g| *g != "channel")
        .collect();
    let groups: Vec<&str> = std::iter::once("channel").chain(groups).collect();
    let row_refs: Vec<Value> = [
        "RevenueByChannelRow",
        "CacRow",
        "RoasRow",
        "FunnelRow",
        "TimeToConversionRow",
        "QualifiedSessionsRow",
        "RepeatPurchaseRow",
        "LtvRollingRow",
        "LtvCohortsRow",
        "MessagesRow",
        "CreativesRow",
        "CreativeDecayRow",
        "CreativeFatigueRow",
        "ExperimentsRow",
        "OpsVelocityRow",
    ]
    .iter()
    .map(|name| json!({"$ref": format!("#/components/schemas/{name}")}))
    .collect();
    let mut schemas = row_schemas();
    let extra = json!({
        "Error": object(json!({"error": {"type": "string", "description": "what was wrong and what to do"}})),
        "ReportResponse": {
            "type": "object",
            "required": ["report", "from", "to", "rows"],
            "properties": {
                "report": {"type": "string", "enum": reports},
                "from": {"type": "string", "format": "date"},
                "to": {"type": "string", "format": "date"},
                "summary": {
                    "$ref": "#/components/schemas/TimeToConversionSummary",
                    "description": "time_to_conversion only"
                },
                "rows": {"type": "array", "items": {"oneOf": row_refs}},
            }
        },
        "IngestResponse": object(json!({
            "accepted": {"type": "integer"},
            "visitor_id": {"type": ["string", "null"], "format": "uuid"},
            "session_id": {"type": ["string", "null"], "format": "uuid"},
            "rejected": {"type": "array", "items": object(json!({
                "index": {"type": "integer"}, "error": {"type": "string"}
            }))},
        })),
    });
    let map = schemas.as_object_mut().expect("schemas is an object");
    map.extend(extra.as_object().expect("an object").clone());
    let date_param = |name: &str, description: &str| {
        json!({
            "name": name, "in": "query", "required": true,
            "description": description,
            "schema": {"type": "string", "format": "date", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"}
        })
    };
    let reports_path = REPORTS_PATH;
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "LUX Analytics API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "First-party marketing analytics. Every error answer is JSON with an `error` field."
        },
        "components": {
            "securitySchemes": {
                "secretKey": {
                    "type": "http", "scheme": "bearer",
                    "description": "The company's secret key (`lux company create` prints it): `Authorization: Bearer SECRET_KEY`. Server-side only."
                },
                "writeKey": {
                    "type": "apiKey", "in": "query", "name": "key",
                    "description": "The site's public write key, for the snippet (`/e` only)."
                },
                "writeKeyHeader": {"type": "apiKey", "in": "header", "name": "X-Lux-Key"}
            },
            "schemas": schemas
        },
        "paths": {
            reports_path: {
                "get": {
                    "operationId": "getReport",
                    "summary": "A metric over company-local days, read from the daily rollups",
                    "description": format!(
                        "Reads only rollup tables (and the experiments registry). Money: decimal strings in major units with `currency` beside them; ratios: numbers rounded to 4 decimals, null when the denominator is 0; credit-weighted counts: decimal strings with 2 decimals. Formulas: docs/metrics.md. At most {MAX_RANGE_DAYS} days per request. A parameter the report does not take is refused (400)."
                    ),
                    "security": [{"secretKey": []}],
                    "parameters": [
                        {"name": "report", "in": "path", "required": true,
                         "schema": {"type": "string", "enum": reports}},
                        date_param("from", "first local day, included (YYYY-MM-DD)"),
                        date_param("to", "last local day, included (YYYY-MM-DD)"),
                        {"name": "model", "in": "query", "required": false,
                         "description": "attribution model (revenue_by_channel, cac, roas, creatives)",
                         "schema": {"type": "string", "enum": models, "default": DEFAULT_MODEL.as_str()}},
                        {"name": "by", "in": "query", "required": false,
                         "description": "roas grouping",
                         "schema": {"type": "string", "enum": by, "default": "channel"}},
                        {"name": "funnel", "in": "query", "required": false,
                         "description": "funnel name (funnel); a funnel without sessions in the range answers its steps at zero; an unknown name is a 400 listing the company's funnels",
                         "schema": {"type": "string", "default": DEFAULT_FUNNEL}},
                        {"name": "channel", "in": "query", "required": false,
                         "description": "messages: only this channel",
                         "schema": {"type": "string", "enum": channels}},
                        {"name": "group", "in": "query", "required": false,
                         "description": "messages: a row per channel (default), campaign or message; creatives: per creative (default), concept or angle",
                         "schema": {"type": "string", "enum": groups}},
                        {"name": "creative_id", "in": "query", "required": false,
                         "description": "creative_decay (required): the creative",
                         "schema": {"type": "string", "minLength": 1, "maxLength": 200}},
                        {"name": "experiment", "in": "query", "required": false,
                         "description": "experiments: only this experiment's key",
                         "schema": {"type": "string"}}
                    ],
                    "responses": {
                        "200": {"description": "the report",
                                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ReportResponse"}}}},
                        "400": error_response("bad dates or range, unknown report, model, by, funnel, channel or group, a missing creative_id, a parameter the report does not take"),
                        "401": error_response("no key, or an unknown or revoked one"),
                        "403": error_response("a write key: reports need the secret key"),
                        "503": error_response("the database is unavailable or busy; retry")
                    }
                }
            },
            "/e": {
                "post": {
                    "operationId": "collectEvents",
                    "summary": "Ingest events: one object, an array, or {\"events\": [...]}",
                    "description": "Event fields: event_id, event_name, occurred_at, visitor_id, session_id, user_id, page_url, referrer, properties, consent, creative_id (docs/events.md).",
                    "security": [{"writeKey": []}, {"writeKeyHeader": []}, {"secretKey": []}],
                    "requestBody": {"required": true, "content": {"application/json": {"schema": {}}, "text/plain": {"schema": {"type": "string"}}}},
                    "responses": {
                        "202": {"description": "accepted (some events may be rejected, each with its reason)",
                                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/IngestResponse"}}}},
                        "400": error_response("nothing could be accepted"),
                        "401": error_response("no key, or an unknown one"),
                        "403": error_response("origin not allowed for this site"),
                        "413": error_response("body too large"),
                        "503": error_response("busy or database unavailable; retry after Retry-After")
                    }
                }
            },
            "/webhooks/{provider}/{company_id}": {
                "post": {
                    "operationId": "webhook",
                    "summary": "Stripe and WooCommerce webhooks, verified by their signatures",
                    "parameters": [
                        {"name": "provider", "in": "path", "required": true, "schema": {"type": "string", "enum": ["stripe", "woocommerce"]}},
                        {"name": "company_id", "in": "path", "required": true, "schema": {"type": "string", "format": "uuid"}}
                    ],
                    "responses": {
                        "200": {"description": "received: applied (with its order_id), a duplicate, or ignored (another event type)"},
                        "400": error_response("signature verification failed; nothing was applied"),
                        "404": error_response("unknown provider or company"),
                        "422": error_response("verified, but not an order that can be applied"),
                        "503": error_response("no webhook secrets key configured, or the database is unavailable")
                    }
                }
            },
            "/healthz": {"get": {"operationId": "healthz", "summary": "200 while the process is up",
                                 "responses": {"200": {"description": "up"}}}},
            "/readyz": {"get": {"operationId": "readyz", "summary": "200 only while the database answers",
                                "responses": {"200": {"description": "ready"},
                                              "503": error_response("database unavailable")}}},
            OPENAPI_PATH: {"get": {"operationId": "openapi", "summary": "this document",
                                   "responses": {"200": {"description": "OpenAPI 3.1 JSON"}}}}
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_report_row_schema_is_defined() {
        let doc = document();
        for reference in
            doc["components"]["schemas"]["ReportResponse"]["properties"]["rows"]["items"]["oneOf"]
                .as_array()
                .unwrap()
        {
            let name = reference["$ref"]
                .as_str()
                .unwrap()
                .trim_start_matches("#/components/schemas/");
            assert!(doc["components"]["schemas"][name].is_object(), "{name}");
        }
    }
}
