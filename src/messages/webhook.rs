//! Provider webhooks: `POST /webhooks/{sendgrid|mailgun|ses|twilio}/{company_id}` (static
//! segments, so commerce's `/webhooks/{provider}/{company_id}` keeps Stripe and WooCommerce).
//!
//! Each request is verified on the raw bytes with the company's secret before anything is
//! parsed ([`super::signature`]). A refused request (tampered, wrong key, stale, a replayed
//! Mailgun token, a foreign SNS certificate URL, another SNS topic) answers a JSON 4xx naming
//! what failed and leaves only the delivery's hash in `webhook_deliveries`. A verified one is
//! kept there sealed (with emails redacted and IPs removed), normalised
//! ([`super::normalize`]) and stored once per provider event ([`super::store`]).

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use sqlx::{Postgres, Transaction};
use uuid::Uuid;

use super::normalize::{self, ProviderEvent};
use super::signature::{self, DEFAULT_TOLERANCE, sns};
use super::store::{self, Delivery, Incoming};
use super::{MessagesState, Provider, sns_certs};
use crate::commerce::secrets::{self, SecretsKey};
use crate::http::ApiError;

/// SendGrid posts up to a few thousand events at once, about 1 KB each.
const MAX_WEBHOOK_BYTES: usize = 8 * 1024 * 1024;

pub fn router() -> Router<MessagesState> {
    Router::new()
        .route("/webhooks/sendgrid/{company_id}", post(sendgrid))
        .route("/webhooks/mailgun/{company_id}", post(mailgun))
        .route("/webhooks/ses/{company_id}", post(ses))
        .route("/webhooks/twilio/{company_id}", post(twilio))
        .layer(DefaultBodyLimit::max(MAX_WEBHOOK_BYTES))
}

/// Checks a secret before `lux company set-secret` stores it: SendGrid's must be a P-256
/// public key, SES's an SNS topic ARN; the others any non-empty text.
pub fn check_secret(provider: Provider, secret: &str) -> Result<(), String> {
    let secret = secret.trim();
    if secret.is_empty() {
        return Err("the secret is empty".into());
    }
    match provider {
        Provider::SendGrid => signature::sendgrid::SendGridKey::from_base64_der(secret)
            .map(|_| ())
            .map_err(|e| e.to_string()),
        Provider::Ses if !is_topic_arn(secret) => {
            Err("for ses the secret is the SNS topic ARN (arn:aws:sns:REGION:ACCOUNT:TOPIC)".into())
        }
        _ => Ok(()),
    }
}

fn is_topic_arn(text: &str) -> bool {
    let parts: Vec<&str> = text.split(':').collect();
    parts.len() == 6
        && parts[0] == "arn"
        && parts[1].starts_with("aws")
        && parts[2] == "sns"
        && parts[3..].iter().all(|p| !p.is_empty())
}

fn secret_provider(provider: Provider) -> secrets::Provider {
    match provider {
        Provider::SendGrid => secrets::Provider::SendGrid,
        Provider::Mailgun => secrets::Provider::Mailgun,
        Provider::Ses => secrets::Provider::Ses,
        Provider::Twilio => secrets::Provider::Twilio,
    }
}

/// A JSON error answer.
fn answer_error(status: StatusCode, error: impl Into<String>) -> Response {
    (status, axum::Json(json!({ "error": error.into() }))).into_response()
}

/// The body, or why it could not be read (JSON 413 / 400).
fn read_body(body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge(format!(
                "webhook body is larger than {MAX_WEBHOOK_BYTES} bytes"
            ))
        } else {
            ApiError::BadRequest(format!("could not read the body: {rejection}"))
        }
    })
}

/// One request in progress: the company's transaction, the installation key, the secret.
struct Hook {
    tx: Transaction<'static, Postgres>,
    key: SecretsKey,
    company_id: Uuid,
    provider: Provider,
    secret: Vec<u8>,
    received_at: DateTime<Utc>,
}

impl Hook {
    /// Opens the company's transaction and reads its secret. A company without one (or an
    /// id that is no company) answers 404, as commerce's webhooks do.
    async fn open(
        state: &MessagesState,
        provider: Provider,
        company: &str,
    ) -> Result<Hook, ApiError> {
        let company_id = Uuid::parse_str(company).map_err(|_| ApiError::NotFound)?;
        let key = state.secrets_key.clone().ok_or_else(|| {
            tracing::error!("a webhook arrived but LUX_SECRETS_KEY is not configured");
            ApiError::Unavailable
        })?;
        let mut tx = crate::db::begin_for_company(&state.pool, company_id).await?;
        let secret = secrets::load_secret(&mut tx, &key, company_id, secret_provider(provider))
            .await?
            .ok_or(ApiError::NotFound)?;
        Ok(Hook {
            tx,
            key,
            company_id,
            provider,
            secret,
            received_at: state.clock.now(),
        })
    }

    fn secret_text(&self) -> &str {
        std::str::from_utf8(&self.secret).unwrap_or("").trim()
    }

    /// Refuses the request: only the body's hash and the reason are kept.
    async fn refuse(
        mut self,
        body: &[u8],
        status: StatusCode,
        reason: &str,
    ) -> Result<Response, ApiError> {
        let delivery = Delivery {
            provider: self.provider,
            body,
            sealed: None,
            failure: Some(reason),
            provider_event_id: None,
            event_type: None,
        };
        store::record_delivery(
            &mut self.tx,
            &self.key,
            self.company_id,
            self.received_at,
            &delivery,
        )
        .await?;
        self.tx.commit().await?;
        tracing::warn!(
            provider = self.provider.as_str(),
            company_id = %self.company_id,
            reason,
            "webhook refused"
        );
        Ok(answer_error(
            status,
            format!("{reason}; nothing was stored"),
        ))
    }

    /// Keeps a verified delivery (sealed) and stores its events; `rejected` are the items the
    /// normaliser could not read.
    async fn accept(
        mut self,
        body: &[u8],
        sealed: &[u8],
        events: Vec<Incoming>,
        mut rejected: Vec<(usize, String)>,
        meta: (Option<&str>, Option<&str>),
    ) -> Result<Response, ApiError> {
        let delivery = Delivery {
            provider: self.provider,
            body,
            sealed: Some(sealed),
            failure: None,
            provider_event_id: meta.0,
            event_type: meta.1,
        };
        let delivery_id = store::record_delivery(
            &mut self.tx,
            &self.key,
            self.company_id,
            self.received_at,
            &delivery,
        )
        .await?;
        let outcome = store::store_events(
            &mut self.tx,
            self.company_id,
            self.provider,
            delivery_id,
            self.received_at,
            events,
        )
        .await?;
        self.tx.commit().await?;
        rejected.extend(outcome.rejected.iter().cloned());
        rejected.sort();
        let rejected_json: Vec<Value> = rejected
            .iter()
            .map(|(index, error)| json!({ "index": index, "error": error }))
            .collect();
        if outcome.stored + outcome.duplicates == 0 && !rejected.is_empty() {
            return Ok((
                StatusCode::UNPROCESSABLE_ENTITY,
                axum::Json(json!({
                    "error": "no event of the delivery could be stored",
                    "rejected": rejected_json,
                })),
            )
                .into_response());
        }
        Ok(axum::Json(json!({
            "received": true,
            "stored": outcome.stored,
            "duplicates": outcome.duplicates,
            "machine": outcome.machine,
            "sends_created": outcome.sends_created,
            "consent_records": outcome.consent_records,
            "suppressed": outcome.suppressed,
            "rejected": rejected_json,
        }))
        .into_response())
    }

    /// A verified delivery whose content cannot be read: kept as a hash with the reason,
    /// answered 422 (retrying will not help).
    async fn unreadable(mut self, body: &[u8], reason: &str) -> Result<Response, ApiError> {
        let delivery = Delivery {
            provider: self.provider,
            body,
            sealed: None,
            failure: Some(reason),
            provider_event_id: None,
            event_type: None,
        };
        store::record_delivery(
            &mut self.tx,
            &self.key,
            self.company_id,
            self.received_at,
            &delivery,
        )
        .await?;
        self.tx.commit().await?;
        Ok(answer_error(StatusCode::UNPROCESSABLE_ENTITY, reason))
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The scrubbed payloads of the events, as one JSON array: what is sealed.
fn sealed_payloads(events: &[ProviderEvent]) -> Vec<u8> {
    let payloads: Vec<&Value> = events.iter().map(|e| &e.payload).collect();
    serde_json::to_vec(&payloads).unwrap_or_default()
}

/// The events of an array with their positions, given those of the rejected items.
fn positioned(events: Vec<ProviderEvent>, rejected: &[normalize::RejectedItem]) -> Vec<Incoming> {
    let mut skipped: Vec<usize> = rejected.iter().map(|r| r.index).collect();
    skipped.sort_unstable();
    let mut skipped = skipped.into_iter().peekable();
    let mut index = 0;
    let mut out = Vec::with_capacity(events.len());
    for event in events {
        while skipped.peek() == Some(&index) {
            skipped.next();
            index += 1;
        }
        out.push(Incoming { index, event });
        index += 1;
    }
    out
}

fn numbered(events: Vec<ProviderEvent>) -> Vec<Incoming> {
    events
        .into_iter()
        .enumerate()
        .map(|(index, event)| Incoming { index, event })
        .collect()
}

/// SendGrid: ECDSA over the timestamp header + raw body; a JSON array of events. Bad items
/// are reported by index, the others stored.
async fn sendgrid(
    State(state): State<MessagesState>,
    Path(company): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = read_body(body)?;
    let hook = Hook::open(&state, Provider::SendGrid, &company).await?;
    let verified =
        signature::sendgrid::SendGridKey::from_base64_der(hook.secret_text()).and_then(|key| {
            signature::sendgrid::verify(
                &key,
                header(&headers, signature::sendgrid::SIGNATURE_HEADER),
                header(&headers, signature::sendgrid::TIMESTAMP_HEADER),
                &body,
                hook.received_at,
                DEFAULT_TOLERANCE,
            )
        });
    if let Err(error) = verified {
        let reason = format!("SendGrid signature verification failed: {error}");
        return hook.refuse(&body, StatusCode::BAD_REQUEST, &reason).await;
    }
    let batch = match normalize::sendgrid::events(&body) {
        Ok(batch) => batch,
        Err(error) => return hook.unreadable(&body, &error.to_string()).await,
    };
    let sealed = sealed_payloads(&batch.events);
    let rejected = batch
        .rejected
        .iter()
        .map(|item| (item.index, item.error.to_string()))
        .collect();
    // Each event keeps its position in the array, whatever was rejected around it.
    let events = positioned(batch.events, &batch.rejected);
    hook.accept(&body, &sealed, events, rejected, (None, None))
        .await
}

/// Mailgun: HMAC of timestamp + token inside the body; each token is accepted once.
async fn mailgun(
    State(state): State<MessagesState>,
    Path(company): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = read_body(body)?;
    let mut hook = Hook::open(&state, Provider::Mailgun, &company).await?;
    let verified = signature::mailgun::verify(
        hook.secret_text().as_bytes(),
        &body,
        hook.received_at,
        DEFAULT_TOLERANCE,
    );
    let verified = match verified {
        Ok(verified) => verified,
        Err(error) => {
            let reason = format!("Mailgun signature verification failed: {error}");
            return hook.refuse(&body, StatusCode::BAD_REQUEST, &reason).await;
        }
    };
    let first_use = store::claim_token(
        &mut hook.tx,
        hook.company_id,
        Provider::Mailgun,
        &verified.token,
        verified.signed_at,
    )
    .await?;
    if !first_use {
        let reason = "Mailgun signature refused: its token was used before (a replay)";
        return hook.refuse(&body, StatusCode::BAD_REQUEST, reason).await;
    }
    let event = match normalize::mailgun::webhook(&body) {
        Ok(event) => event,
        Err(error) => return hook.unreadable(&body, &error.to_string()).await,
    };
    let sealed = sealed_payloads(std::slice::from_ref(&event));
    hook.accept(
        &body,
        &sealed,
        numbered(vec![event]),
        Vec::new(),
        (None, None),
    )
    .await
}

/// Twilio: HMAC-SHA1 of `LUX_PUBLIC_URL` + path + query and the sorted form parameters.
async fn twilio(
    State(state): State<MessagesState>,
    Path(company): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = read_body(body)?;
    let Some(public_url) = state.options.public_url.clone() else {
        tracing::error!("a Twilio webhook arrived but LUX_PUBLIC_URL is not configured");
        return Ok(answer_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "LUX_PUBLIC_URL is not configured: Twilio signatures cannot be checked; \
             nothing was stored",
        ));
    };
    let hook = Hook::open(&state, Provider::Twilio, &company).await?;
    let path_and_query = uri.path_and_query().map_or(uri.path(), |pq| pq.as_str());
    let url = format!(
        "{}{path_and_query}",
        public_url.as_str().trim_end_matches('/')
    );
    let params = signature::twilio::parse_form(&body);
    let verified = signature::twilio::verify(
        hook.secret_text(),
        &url,
        &params,
        header(&headers, signature::twilio::SIGNATURE_HEADER),
    );
    if let Err(error) = verified {
        let reason = format!("Twilio signature verification failed: {error}");
        return hook.refuse(&body, StatusCode::BAD_REQUEST, &reason).await;
    }
    let event = match normalize::twilio::status_callback(&params, &url, hook.received_at) {
        Ok(event) => event,
        Err(error) => return hook.unreadable(&body, &error.to_string()).await,
    };
    let sealed = sealed_payloads(std::slice::from_ref(&event));
    hook.accept(
        &body,
        &sealed,
        numbered(vec![event]),
        Vec::new(),
        (None, None),
    )
    .await
}

/// SES through SNS: the topic must be the company's, the certificate from an SNS host (pinned
/// or fetched once), the signature good. Notifications carry an SES record; a subscription
/// confirmation is confirmed by GET of its SubscribeURL.
async fn ses(
    State(state): State<MessagesState>,
    Path(company): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = read_body(body)?;
    let hook = Hook::open(&state, Provider::Ses, &company).await?;
    let message = match sns::parse(&body) {
        Ok(message) => message,
        Err(error) => {
            let reason = format!("SNS message refused: {error}");
            return hook.refuse(&body, StatusCode::BAD_REQUEST, &reason).await;
        }
    };
    if message.topic_arn.trim() != hook.secret_text() {
        let reason = "SNS message refused: its TopicArn is not the topic set for this company";
        return hook.refuse(&body, StatusCode::BAD_REQUEST, reason).await;
    }
    let cert_url = match sns::check_signing_cert_url(&message.signing_cert_url) {
        Ok(url) => url,
        Err(problem) => {
            let reason = format!("SNS message refused: SigningCertURL {problem}");
            return hook.refuse(&body, StatusCode::BAD_REQUEST, &reason).await;
        }
    };
    let pem = match sns_certs::certificate(&state.pool, &cert_url).await {
        Ok(pem) => pem,
        Err(sns_certs::CertError::Database(error)) => return Err(error.into()),
        Err(error) => {
            // Not the sender's fault: answer 502 so that SNS retries later.
            let reason = error.to_string();
            return hook.refuse(&body, StatusCode::BAD_GATEWAY, &reason).await;
        }
    };
    if let Err(error) = sns::verify(&message, &pem, hook.received_at) {
        let reason = format!("SNS signature verification failed: {error}");
        return hook.refuse(&body, StatusCode::BAD_REQUEST, &reason).await;
    }
    match message.kind {
        sns::SnsMessageType::Notification => ses_notification(hook, &body, &message).await,
        sns::SnsMessageType::SubscriptionConfirmation => {
            ses_confirmation(hook, &body, &message).await
        }
        sns::SnsMessageType::UnsubscribeConfirmation => {
            tracing::warn!(company_id = %hook.company_id, "SNS says the SES topic was unsubscribed");
            let meta = (
                Some(message.message_id.as_str()),
                Some(message.kind.as_str()),
            );
            hook.accept(&body, &body, Vec::new(), Vec::new(), meta)
                .await
        }
    }
}

async fn ses_notification(
    hook: Hook,
    body: &[u8],
    message: &sns::SnsMessage,
) -> Result<Response, ApiError> {
    let events = match normalize::ses::record(&message.message) {
        Ok(events) => events,
        Err(error) => return hook.unreadable(body, &error.to_string()).await,
    };
    // The envelope with the SES record scrubbed (one record: the first event's payload).
    let sealed = serde_json::to_vec(&json!({
        "Type": message.kind.as_str(),
        "MessageId": message.message_id,
        "TopicArn": message.topic_arn,
        "Timestamp": message.timestamp,
        "Message": events.first().map(|e| &e.payload),
    }))
    .unwrap_or_default();
    let meta = (
        Some(message.message_id.as_str()),
        Some(message.kind.as_str()),
    );
    hook.accept(body, &sealed, numbered(events), Vec::new(), meta)
        .await
}

/// Confirms the subscription at once (the SubscribeURL was checked to be an SNS host by
/// [`sns::verify`]). When the GET fails (no route to AWS), the answer says so and the
/// delivery is kept sealed, so the operator can confirm by hand; SNS is not asked to retry.
async fn ses_confirmation(
    hook: Hook,
    body: &[u8],
    message: &sns::SnsMessage,
) -> Result<Response, ApiError> {
    let subscribe_url = message.subscribe_url.as_deref().unwrap_or_default();
    let confirmed = sns_certs::confirm_subscription(subscribe_url).await;
    if let Err(error) = &confirmed {
        tracing::warn!(company_id = %hook.company_id, %error, "SNS subscription not confirmed");
    }
    let meta = (
        Some(message.message_id.as_str()),
        Some(message.kind.as_str()),
    );
    let mut hook = hook;
    let failure = confirmed.as_ref().err().map(|e| e.to_string());
    let delivery = Delivery {
        provider: hook.provider,
        body,
        sealed: Some(body),
        failure: failure.as_deref(),
        provider_event_id: meta.0,
        event_type: meta.1,
    };
    store::record_delivery(
        &mut hook.tx,
        &hook.key,
        hook.company_id,
        hook.received_at,
        &delivery,
    )
    .await?;
    hook.tx.commit().await?;
    Ok(axum::Json(json!({
        "received": true,
        "subscription": if confirmed.is_ok() { "confirmed" } else { "not_confirmed" },
        "error": failure,
    }))
    .into_response())
}
