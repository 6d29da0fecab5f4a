//! Email and SMS messages (SPEC §8.1, issue 15): the pure core of the domain, with no database,
//! HTTP or application state, so the webhook handlers, the send import and the jobs can be
//! plugged around it.
//!
//! - [`signature`]: each provider's webhook signature, checked on the raw request before
//!   anything is parsed (SendGrid, Mailgun, Twilio, Amazon SNS for SES);
//! - [`normalize`]: a verified payload → [`normalize::ProviderEvent`]s in one vocabulary;
//! - [`machine`]: whether an open or click was made by a machine (Apple Mail Privacy
//!   Protection, link scanners, bots), and why;
//! - [`recipient`]: an email address or E.164 phone number, normalised for hashing, that never
//!   prints itself.
//!
//! Around that core:
//! - [`webhook`]: `POST /webhooks/{sendgrid|mailgun|ses|twilio}/{company_id}`, verified on the
//!   raw bytes, stored once per provider event;
//! - [`sends`]: `POST /api/v1/messages` and `lux import sends`;
//! - [`links`]: `POST /api/v1/links` and `GET /r/{code}`;
//! - [`store`]: the SQL that writes sends and provider events, shared by the above;
//! - [`sns_certs`]: SNS signing certificates, fetched once from AWS or pinned with
//!   `lux sns trust-cert`, through [`https`], a minimal HTTPS GET (rustls, ring);
//! - [`attribution`]: the message each order is credited to (a step of the attribution job).
//!
//! The rules and thresholds are explained in `docs/messages.md`.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use axum::Router;

use crate::clock::Clock;
use crate::commerce::secrets::SecretsKey;
use crate::tenancy::Tenancy;

pub mod attribution;
pub mod https;
pub mod links;
pub mod machine;
pub mod normalize;
pub mod recipient;
pub mod sends;
pub mod signature;
pub mod sns_certs;
pub mod store;
pub mod webhook;

/// Settings of the message endpoints.
#[derive(Debug, Clone, Default)]
pub struct MessagesOptions {
    /// The service's public base URL (`LUX_PUBLIC_URL`, e.g. `https://lux.example.com`):
    /// Twilio signs it, and short links are built on it.
    pub public_url: Option<url::Url>,
}

/// What the message endpoints use, taken from the app's state.
#[derive(Clone)]
pub struct MessagesState {
    /// Connections that run as `lux_app`.
    pub pool: sqlx::PgPool,
    /// The time of receipt: signature windows, `received_at`.
    pub clock: Clock,
    /// Resolves secret keys (`POST /api/v1/messages`, `/api/v1/links`).
    pub tenancy: Arc<Tenancy>,
    /// Decrypts webhook secrets; `None` when the server has no LUX_SECRETS_KEY.
    pub secrets_key: Option<SecretsKey>,
    pub options: Arc<MessagesOptions>,
}

/// Every route of the domain.
pub fn router() -> Router<MessagesState> {
    Router::new()
        .merge(webhook::router())
        .merge(sends::router())
        .merge(links::router())
}

/// A provider whose webhooks we accept. The names are those of SPEC §11
/// (`/webhooks/{provider}/{company_id}`, `lux company set-secret --provider`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Provider {
    SendGrid,
    Mailgun,
    /// Amazon SES, whose events arrive through Amazon SNS.
    Ses,
    Twilio,
}

impl Provider {
    pub const ALL: [Provider; 4] = [
        Provider::SendGrid,
        Provider::Mailgun,
        Provider::Ses,
        Provider::Twilio,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Provider::SendGrid => "sendgrid",
            Provider::Mailgun => "mailgun",
            Provider::Ses => "ses",
            Provider::Twilio => "twilio",
        }
    }

    /// The channel a provider's messages travel on.
    pub fn channel(self) -> Channel {
        match self {
            Provider::SendGrid | Provider::Mailgun | Provider::Ses => Channel::Email,
            Provider::Twilio => Channel::Sms,
        }
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown provider (expected sendgrid, mailgun, ses or twilio)")]
pub struct UnknownProvider;

impl FromStr for Provider {
    type Err = UnknownProvider;

    fn from_str(text: &str) -> Result<Provider, UnknownProvider> {
        Provider::ALL
            .into_iter()
            .find(|provider| provider.as_str() == text)
            .ok_or(UnknownProvider)
    }
}

/// `message_sends.channel`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Channel {
    Email,
    Sms,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Sms => "sms",
        }
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown channel (expected email or sms)")]
pub struct UnknownChannel;

impl FromStr for Channel {
    type Err = UnknownChannel;

    fn from_str(text: &str) -> Result<Channel, UnknownChannel> {
        match text {
            "email" => Ok(Channel::Email),
            "sms" => Ok(Channel::Sms),
            _ => Err(UnknownChannel),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_and_channel_names_round_trip() {
        for provider in Provider::ALL {
            assert_eq!(provider.as_str().parse::<Provider>(), Ok(provider));
        }
        assert_eq!("SendGrid".parse::<Provider>(), Err(UnknownProvider));
        assert_eq!(Provider::Twilio.channel(), Channel::Sms);
        assert_eq!(Provider::Ses.channel(), Channel::Email);
        for channel in [Channel::Email, Channel::Sms] {
            assert_eq!(channel.as_str().parse::<Channel>(), Ok(channel));
        }
        assert_eq!("push".parse::<Channel>(), Err(UnknownChannel));
    }
}
