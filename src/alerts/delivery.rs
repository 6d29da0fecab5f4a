//! The outbox worker: sends due `alert_deliveries` rows by email (SMTP, lettre) or Slack
//! (incoming webhook), with exponential back-off and a cap.
//!
//! Exactly once, as far as a network allows: a worker claims due rows with
//! `FOR UPDATE SKIP LOCKED` (another worker skips them), sends, and marks each sent in the
//! *same* transaction. A crash before the send leaves the row pending (the lock goes with the
//! connection); a crash between the server's acceptance and the commit — the only window —
//! sends it again after restart. That resend carries the same `Message-ID`
//! (`<{delivery_id}@lux-alerts>`), so mail systems and readers recognise it as the same
//! message; Slack posts carry the delivery id in their text for the same reason. The window
//! is one SMTP `DATA` answer long.

use std::time::Duration;

use chrono::{DateTime, Utc};
use lettre::message::{Mailbox, MultiPart, header::ContentType};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use sqlx::PgPool;
use uuid::Uuid;

use crate::clock::Clock;
use crate::telemetry::AlertCounters;

/// `LUX_SMTP_URL` and `LUX_SMTP_FROM`.
#[derive(Debug, Clone)]
pub struct SmtpSettings {
    url: String,
    from: Mailbox,
}

impl SmtpSettings {
    /// `smtp://[user:pass@]host:port` (STARTTLS when the server offers it) or `smtps://` (TLS
    /// from the first byte); `from` an address or `Name <address>`.
    pub fn parse(url: &str, from: &str) -> Result<SmtpSettings, String> {
        let mut parsed =
            url::Url::parse(url).map_err(|_| "LUX_SMTP_URL is not a URL".to_string())?;
        match parsed.scheme() {
            "smtp" => {
                // lettre's smtp:// is plain text unless told; "when offered" is opportunistic.
                if !parsed.query_pairs().any(|(k, _)| k == "tls") {
                    parsed.query_pairs_mut().append_pair("tls", "opportunistic");
                }
            }
            "smtps" => {}
            other => {
                return Err(format!(
                    "LUX_SMTP_URL must start with smtp:// or smtps://, not {other}://"
                ));
            }
        }
        let from: Mailbox = from
            .parse()
            .map_err(|_| format!("LUX_SMTP_FROM {from:?} is not an email address"))?;
        AsyncSmtpTransport::<Tokio1Executor>::from_url(parsed.as_str())
            .map_err(|e| format!("LUX_SMTP_URL: {e}"))?;
        Ok(SmtpSettings {
            url: parsed.to_string(),
            from,
        })
    }
}

/// How the outbox is worked.
#[derive(Debug, Clone)]
pub struct DeliveryOptions {
    /// `None`: email rows fail (and retry) with "SMTP is not configured".
    pub smtp: Option<SmtpSettings>,
    /// First retry after this; doubling each attempt up to `retry_cap`.
    pub retry_base: Duration,
    pub retry_cap: Duration,
    /// After this many attempts a row is `failed` for good.
    pub max_attempts: i32,
    /// How often the worker looks for due rows.
    pub poll: Duration,
    /// Whether Slack webhooks may point at loopback and private addresses (a relay on the
    /// local network; the tests' receiver). Off by default: a company's secret key must not
    /// make the service POST into its own network.
    pub allow_private_webhooks: bool,
}

impl Default for DeliveryOptions {
    fn default() -> Self {
        DeliveryOptions {
            smtp: None,
            retry_base: Duration::from_secs(60),
            retry_cap: Duration::from_secs(3600),
            max_attempts: 20,
            poll: Duration::from_secs(5),
            allow_private_webhooks: false,
        }
    }
}

impl DeliveryOptions {
    /// The wait after the `attempts`-th failure: base · 2^(attempts−1), at most the cap.
    pub fn backoff(&self, attempts: i32) -> Duration {
        let exp = attempts.clamp(1, 30) as u32 - 1;
        self.retry_base
            .checked_mul(1u32 << exp)
            .unwrap_or(self.retry_cap)
            .min(self.retry_cap)
    }
}

/// What one pass sent and failed.
#[derive(Debug, Default, Clone, Copy, serde::Serialize)]
pub struct Pass {
    pub sent: usize,
    pub failed: usize,
}

/// Sends every row of `company_id` due at `now`, in claimed batches of 10.
pub async fn deliver_due(
    pool: &PgPool,
    company_id: Uuid,
    now: DateTime<Utc>,
    options: &DeliveryOptions,
    counters: &AlertCounters,
) -> Result<Pass, sqlx::Error> {
    let mut pass = Pass::default();
    loop {
        let batch = deliver_batch(pool, company_id, now, options, counters).await?;
        pass.sent += batch.sent;
        pass.failed += batch.failed;
        if batch.sent + batch.failed < 10 {
            return Ok(pass);
        }
    }
}

type Claimed = (Uuid, String, String, String, String, Option<String>, i32);

async fn deliver_batch(
    pool: &PgPool,
    company_id: Uuid,
    now: DateTime<Utc>,
    options: &DeliveryOptions,
    counters: &AlertCounters,
) -> Result<Pass, sqlx::Error> {
    let mut tx = crate::db::begin_for_company(pool, company_id).await?;
    let rows: Vec<Claimed> = sqlx::query_as(
        "SELECT delivery_id, channel, target, subject, text_body, html_body, attempts
         FROM alert_deliveries
         WHERE company_id = $1 AND status = 'pending' AND next_attempt_at <= $2
         ORDER BY next_attempt_at, delivery_id
         LIMIT 10
         FOR UPDATE SKIP LOCKED",
    )
    .bind(company_id)
    .bind(now)
    .fetch_all(&mut *tx)
    .await?;
    let mut pass = Pass::default();
    for (id, channel, target, subject, text, html, attempts) in rows {
        let outcome = match channel.as_str() {
            "email" => send_email(options, id, &target, &subject, &text, html.as_deref()).await,
            _ => send_slack(id, &target, &text, options.allow_private_webhooks).await,
        };
        let attempts = attempts + 1;
        match outcome {
            Ok(()) => {
                sqlx::query(
                    "UPDATE alert_deliveries SET status = 'sent', attempts = $3, sent_at = $4,
                         last_error = NULL
                     WHERE company_id = $1 AND delivery_id = $2",
                )
                .bind(company_id)
                .bind(id)
                .bind(attempts)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                pass.sent += 1;
            }
            Err(error) => {
                counters.delivery_failures.inc();
                let gives_up = attempts >= options.max_attempts;
                let next = now
                    + chrono::Duration::from_std(options.backoff(attempts))
                        .unwrap_or(chrono::Duration::hours(1));
                tracing::warn!(%company_id, delivery_id = %id, channel, attempts, error,
                               "alert delivery failed; will retry");
                sqlx::query(
                    "UPDATE alert_deliveries SET attempts = $3, last_error = $4,
                         next_attempt_at = $5, status = CASE WHEN $6 THEN 'failed' ELSE status END
                     WHERE company_id = $1 AND delivery_id = $2",
                )
                .bind(company_id)
                .bind(id)
                .bind(attempts)
                .bind(&error)
                .bind(next)
                .bind(gives_up)
                .execute(&mut *tx)
                .await?;
                pass.failed += 1;
            }
        }
    }
    tx.commit().await?;
    Ok(pass)
}

async fn send_email(
    options: &DeliveryOptions,
    id: Uuid,
    to: &str,
    subject: &str,
    text: &str,
    html: Option<&str>,
) -> Result<(), String> {
    let smtp = options
        .smtp
        .as_ref()
        .ok_or("SMTP is not configured (LUX_SMTP_URL, LUX_SMTP_FROM)")?;
    let to: Mailbox = to.parse().map_err(|_| format!("bad recipient {to:?}"))?;
    let builder = Message::builder()
        .from(smtp.from.clone())
        .to(to)
        .subject(subject)
        .message_id(Some(format!("<{id}@lux-alerts>")));
    let message = match html {
        Some(html) => builder.multipart(MultiPart::alternative_plain_html(
            text.to_string(),
            html.to_string(),
        )),
        None => builder
            .header(ContentType::TEXT_PLAIN)
            .body(text.to_string()),
    }
    .map_err(|e| format!("building the message: {e}"))?;
    let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(&smtp.url)
        .map_err(|e| format!("SMTP URL: {e}"))?
        .timeout(Some(Duration::from_secs(20)))
        .build();
    transport
        .send(message)
        .await
        .map(|_| ())
        .map_err(|e| format!("SMTP: {e}"))
}

async fn send_slack(
    id: Uuid,
    webhook: &str,
    text: &str,
    allow_private: bool,
) -> Result<(), String> {
    let url = url::Url::parse(webhook).map_err(|_| "bad webhook URL".to_string())?;
    if !allow_private {
        refuse_private_hosts(&url).await?;
    }
    let body = serde_json::json!({
        "text": text,
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": text}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": format!("delivery {id}")}]}
        ]
    });
    let status = crate::messages::https::post_json(
        &url,
        body.to_string().into_bytes(),
        Duration::from_secs(15),
    )
    .await?;
    if status.is_success() {
        Ok(())
    } else {
        Err(format!("Slack answered {status}"))
    }
}

/// Refuses a webhook whose host resolves to a loopback, private, link-local, shared or
/// unspecified address. (The connection resolves the name again: a DNS answer that changes in
/// between is not caught; the webhook is configured by the company's admin, not a stranger.)
async fn refuse_private_hosts(url: &url::Url) -> Result<(), String> {
    let host = url.host_str().ok_or("webhook URL has no host")?;
    let port = url.port_or_known_default().unwrap_or(443);
    let addrs = tokio::net::lookup_host((host.trim_matches(['[', ']']), port))
        .await
        .map_err(|e| format!("resolving {host}: {e}"))?;
    for addr in addrs {
        if !is_public(addr.ip()) {
            return Err(format!(
                "webhook host {host} resolves to a non-public address {} (allowed only with \
                 LUX_ALERTS_ALLOW_PRIVATE_WEBHOOKS)",
                addr.ip()
            ));
        }
    }
    Ok(())
}

fn is_public(ip: std::net::IpAddr) -> bool {
    match ip {
        std::net::IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || a == 0
                || (a == 100 && (64..128).contains(&b)))
        }
        std::net::IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(std::net::IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80)
        }
    }
}

/// The worker of `lux serve`: every `poll`, delivers what is due for every company that has
/// something due. Errors are logged and retried on the next pass.
pub async fn run_worker(
    pool: PgPool,
    options: DeliveryOptions,
    clock: Clock,
    counters: AlertCounters,
) {
    let mut tick = tokio::time::interval(options.poll);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let now = clock.now();
        let due: Result<Vec<Uuid>, sqlx::Error> =
            sqlx::query_scalar("SELECT lux_alert_companies_due($1)")
                .bind(now)
                .fetch_all(&pool)
                .await;
        let companies = match due {
            Ok(ids) => ids,
            Err(error) => {
                tracing::warn!(error = %error, "alerts: could not list due deliveries; will retry");
                continue;
            }
        };
        for company_id in companies {
            if let Err(error) = deliver_due(&pool, company_id, now, &options, &counters).await {
                tracing::warn!(%company_id, error = %error, "alerts: delivery pass failed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let options = DeliveryOptions {
            retry_base: Duration::from_secs(60),
            retry_cap: Duration::from_secs(600),
            ..DeliveryOptions::default()
        };
        let waits: Vec<u64> = (1..=6).map(|a| options.backoff(a).as_secs()).collect();
        assert_eq!(waits, [60, 120, 240, 480, 600, 600]);
        assert_eq!(options.backoff(1000).as_secs(), 600);
    }

    #[test]
    fn only_public_addresses_take_webhooks_by_default() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "192.168.0.1",
            "169.254.169.254",
            "100.64.0.1",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in ["8.8.8.8", "52.1.2.3", "2600:1f18::1"] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }

    #[tokio::test]
    async fn a_webhook_on_loopback_is_refused_unless_allowed() {
        let url = url::Url::parse("http://127.0.0.1:9/hook").unwrap();
        let error = refuse_private_hosts(&url).await.unwrap_err();
        assert!(error.contains("non-public address 127.0.0.1"), "{error}");
    }

    #[test]
    fn smtp_urls_get_starttls_when_offered() {
        let s = SmtpSettings::parse("smtp://mail.example:2525", "alerts@shop.example").unwrap();
        assert!(s.url.contains("tls=opportunistic"), "{}", s.url);
        assert!(SmtpSettings::parse("smtps://u:p@mail.example", "alerts@shop.example").is_ok());
        assert!(SmtpSettings::parse("http://x", "a@b.c").is_err());
        assert!(SmtpSettings::parse("smtp://x:25", "not an address").is_err());
    }
}
