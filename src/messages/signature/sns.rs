//! Amazon SNS messages (how SES events reach us over HTTPS): the JSON envelope's fields, joined
//! into SNS's "string to sign", carry an RSA PKCS#1 v1.5 signature (SignatureVersion 1:
//! SHA1withRSA, 2: SHA256withRSA) made with the key of the certificate at `SigningCertURL`.
//!
//! That URL is only trusted when it is `https://sns.<region>.amazonaws.com/….pem`: a message
//! naming any other host would let its author supply their own certificate. Fetching and caching
//! the certificate (or reading one pinned with `lux sns trust-cert`) is the caller's job; here
//! it arrives as PEM bytes. The certificate chain is not checked: trust comes from the host
//! (over TLS) or from the operator's pin, as in AWS's own SDK validators.
//!
//! Unlike SendGrid's, the signature covers field values, not the raw body, so the body is
//! parsed first — into strings only, nothing acted on. The `Message` of a notification (the SES
//! record) is parsed by [`crate::messages::normalize`] after [`verify`] succeeds. SNS signs no
//! freshness window; redeliveries keep their `MessageId`, on which the caller is idempotent.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use rsa::pkcs1v15::{Signature, VerifyingKey};
use rsa::pkcs8::DecodePublicKey;
use rsa::signature::Verifier;
use serde_json::{Map, Value};
use sha1::Sha1;
use sha2::Sha256;
use url::{Host, Url};
use x509_cert::Certificate;
use x509_cert::der::{DecodePem, Encode};

/// The three kinds of SNS message an HTTPS subscriber receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnsMessageType {
    Notification,
    SubscriptionConfirmation,
    UnsubscribeConfirmation,
}

impl SnsMessageType {
    pub fn as_str(self) -> &'static str {
        match self {
            SnsMessageType::Notification => "Notification",
            SnsMessageType::SubscriptionConfirmation => "SubscriptionConfirmation",
            SnsMessageType::UnsubscribeConfirmation => "UnsubscribeConfirmation",
        }
    }
}

/// The fields of an SNS message, as strings, before or after verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnsMessage {
    pub kind: SnsMessageType,
    pub message_id: String,
    pub topic_arn: String,
    /// Notifications only, and only when the publisher set one.
    pub subject: Option<String>,
    /// For a notification from SES: the SES record, as a JSON string.
    pub message: String,
    pub timestamp: String,
    pub signature_version: String,
    pub signature: String,
    pub signing_cert_url: String,
    /// Subscription and unsubscribe confirmations only.
    pub token: Option<String>,
    /// Subscription and unsubscribe confirmations only: GET it to confirm.
    pub subscribe_url: Option<String>,
    pub unsubscribe_url: Option<String>,
}

/// What failed. The messages never repeat field values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnsError {
    #[error("body is not a JSON object")]
    NotJson,
    #[error("SNS message has no string field {0}")]
    MissingField(&'static str),
    #[error(
        "SNS message Type is not Notification, SubscriptionConfirmation or UnsubscribeConfirmation"
    )]
    UnknownType,
    #[error("SigningCertURL refused: {0}")]
    SigningCertUrl(UrlProblem),
    #[error("SubscribeURL refused: {0}")]
    SubscribeUrl(UrlProblem),
    #[error("SignatureVersion must be 1 (SHA1withRSA) or 2 (SHA256withRSA)")]
    UnsupportedSignatureVersion,
    #[error("Signature is not base64")]
    MalformedSignature,
    #[error("signing certificate is not a PEM X.509 certificate")]
    UnreadableCertificate,
    #[error("signing certificate does not hold an RSA public key")]
    NotRsaCertificate,
    #[error("signing certificate is not valid yet")]
    CertificateNotYetValid,
    #[error("signing certificate has expired")]
    CertificateExpired,
    #[error("signature does not match the message (tampered, or another certificate)")]
    Mismatch,
}

/// Why a URL is not an SNS URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UrlProblem {
    #[error("not a URL")]
    NotAUrl,
    #[error("not https")]
    NotHttps,
    #[error("carries a user name or password")]
    Userinfo,
    #[error("names a port")]
    Port,
    #[error("host is not sns.<region>.amazonaws.com")]
    ForeignHost,
    #[error("path is not a .pem file")]
    NotPem,
}

/// Reads the SNS fields of a body. Nothing here is trusted until [`verify`] succeeds.
pub fn parse(body: &[u8]) -> Result<SnsMessage, SnsError> {
    let value: Value = serde_json::from_slice(body).map_err(|_| SnsError::NotJson)?;
    let object = value.as_object().ok_or(SnsError::NotJson)?;
    let kind = match required(object, "Type")?.as_str() {
        "Notification" => SnsMessageType::Notification,
        "SubscriptionConfirmation" => SnsMessageType::SubscriptionConfirmation,
        "UnsubscribeConfirmation" => SnsMessageType::UnsubscribeConfirmation,
        _ => return Err(SnsError::UnknownType),
    };
    let confirmation = kind != SnsMessageType::Notification;
    Ok(SnsMessage {
        kind,
        message_id: required(object, "MessageId")?,
        topic_arn: required(object, "TopicArn")?,
        subject: optional(object, "Subject").filter(|_| !confirmation),
        message: required(object, "Message")?,
        timestamp: required(object, "Timestamp")?,
        signature_version: required(object, "SignatureVersion")?,
        signature: required(object, "Signature")?,
        signing_cert_url: required(object, "SigningCertURL")?,
        token: if confirmation {
            Some(required(object, "Token")?)
        } else {
            None
        },
        subscribe_url: if confirmation {
            Some(required(object, "SubscribeURL")?)
        } else {
            None
        },
        unsubscribe_url: optional(object, "UnsubscribeURL"),
    })
}

fn required(object: &Map<String, Value>, name: &'static str) -> Result<String, SnsError> {
    optional(object, name).ok_or(SnsError::MissingField(name))
}

fn optional(object: &Map<String, Value>, name: &str) -> Option<String> {
    object.get(name).and_then(Value::as_str).map(str::to_owned)
}

/// SNS's string to sign: `Name\nvalue\n` for each signed field, in this order.
pub fn string_to_sign(message: &SnsMessage) -> String {
    let mut fields: Vec<(&str, &str)> = vec![
        ("Message", &message.message),
        ("MessageId", &message.message_id),
    ];
    match message.kind {
        SnsMessageType::Notification => {
            if let Some(subject) = &message.subject {
                fields.push(("Subject", subject));
            }
            fields.push(("Timestamp", &message.timestamp));
        }
        SnsMessageType::SubscriptionConfirmation | SnsMessageType::UnsubscribeConfirmation => {
            fields.push((
                "SubscribeURL",
                message.subscribe_url.as_deref().unwrap_or(""),
            ));
            fields.push(("Timestamp", &message.timestamp));
            fields.push(("Token", message.token.as_deref().unwrap_or("")));
        }
    }
    fields.push(("TopicArn", &message.topic_arn));
    fields.push(("Type", message.kind.as_str()));
    let mut out = String::with_capacity(message.message.len() + 512);
    for (name, value) in fields {
        out.push_str(name);
        out.push('\n');
        out.push_str(value);
        out.push('\n');
    }
    out
}

/// The region of an `https://sns.<region>.amazonaws.com/` URL, or why it is not one.
/// `url::Url` does the parsing, so `https://sns.us-east-1.amazonaws.com@evil.example/`
/// (userinfo), `https://evil.example\@sns…` (a backslash is a slash) and percent-encoded
/// hosts are seen for what they are.
pub fn sns_url_region(url: &str) -> Result<String, UrlProblem> {
    let parsed = Url::parse(url.trim()).map_err(|_| UrlProblem::NotAUrl)?;
    if parsed.scheme() != "https" {
        return Err(UrlProblem::NotHttps);
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(UrlProblem::Userinfo);
    }
    if parsed.port().is_some() {
        return Err(UrlProblem::Port);
    }
    let Some(Host::Domain(host)) = parsed.host() else {
        return Err(UrlProblem::ForeignHost);
    };
    let region = host
        .strip_prefix("sns.")
        .and_then(|rest| rest.strip_suffix(".amazonaws.com"))
        .filter(|region| is_region(region))
        .ok_or(UrlProblem::ForeignHost)?;
    Ok(region.to_owned())
}

/// An AWS region name: lowercase words and a final number, dash-separated (`us-east-1`,
/// `us-gov-west-1`, `ap-southeast-2`).
fn is_region(text: &str) -> bool {
    let parts: Vec<&str> = text.split('-').collect();
    let Some((number, words)) = parts.split_last() else {
        return false;
    };
    words.len() >= 2
        && words
            .iter()
            .all(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase()))
        && !number.is_empty()
        && number.bytes().all(|b| b.is_ascii_digit())
}

/// A `SigningCertURL` we may fetch: an SNS URL whose path is a `.pem` file. Fetch (and key
/// the cache or pin by) the URL returned, which is normalised as it was checked (host
/// lowercased and percent-decoded, default port dropped), never the text received.
pub fn check_signing_cert_url(url: &str) -> Result<Url, UrlProblem> {
    sns_url_region(url)?;
    let parsed = Url::parse(url.trim()).map_err(|_| UrlProblem::NotAUrl)?;
    if !parsed.path().ends_with(".pem") || parsed.query().is_some() {
        return Err(UrlProblem::NotPem);
    }
    Ok(parsed)
}

/// Verifies a parsed message with the PEM certificate fetched from (or pinned for) its
/// `SigningCertURL`, as of `now` (for the certificate's validity). A subscription or
/// unsubscribe confirmation must also name an SNS `SubscribeURL`, since the caller will GET it.
pub fn verify(message: &SnsMessage, cert_pem: &[u8], now: DateTime<Utc>) -> Result<(), SnsError> {
    check_signing_cert_url(&message.signing_cert_url).map_err(SnsError::SigningCertUrl)?;
    if let Some(subscribe_url) = &message.subscribe_url {
        sns_url_region(subscribe_url).map_err(SnsError::SubscribeUrl)?;
    }
    let sha256 = match message.signature_version.as_str() {
        "1" => false,
        "2" => true,
        _ => return Err(SnsError::UnsupportedSignatureVersion),
    };
    let signature_bytes = STANDARD
        .decode(message.signature.trim())
        .map_err(|_| SnsError::MalformedSignature)?;
    let signature = Signature::try_from(signature_bytes.as_slice())
        .map_err(|_| SnsError::MalformedSignature)?;
    let key = certificate_key(cert_pem, now)?;
    let signed = string_to_sign(message);
    let verified = if sha256 {
        VerifyingKey::<Sha256>::new(key).verify(signed.as_bytes(), &signature)
    } else {
        VerifyingKey::<Sha1>::new(key).verify(signed.as_bytes(), &signature)
    };
    verified.map_err(|_| SnsError::Mismatch)
}

/// The RSA public key of a PEM certificate valid at `now`.
fn certificate_key(cert_pem: &[u8], now: DateTime<Utc>) -> Result<rsa::PublicKey, SnsError> {
    let certificate =
        Certificate::from_pem(cert_pem).map_err(|_| SnsError::UnreadableCertificate)?;
    let tbs = certificate.tbs_certificate();
    let validity = tbs.validity();
    let now_seconds = u64::try_from(now.timestamp()).unwrap_or(0);
    if now_seconds < validity.not_before.to_unix_duration().as_secs() {
        return Err(SnsError::CertificateNotYetValid);
    }
    if now_seconds > validity.not_after.to_unix_duration().as_secs() {
        return Err(SnsError::CertificateExpired);
    }
    let spki = tbs
        .subject_public_key_info()
        .to_der()
        .map_err(|_| SnsError::UnreadableCertificate)?;
    rsa::PublicKey::from_public_key_der(&spki).map_err(|_| SnsError::NotRsaCertificate)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsa::pkcs1v15::SigningKey;
    use rsa::pkcs8::DecodePrivateKey;
    use rsa::signature::{SignatureEncoding, Signer};

    const SIGNER_KEY: &str = include_str!("../../../tests/fixtures/sns/signer_key.pem");
    const SIGNER_CERT: &str = include_str!("../../../tests/fixtures/sns/signer_cert.pem");
    const OTHER_CERT: &str = include_str!("../../../tests/fixtures/sns/other_cert.pem");
    const EC_CERT: &str = include_str!("../../../tests/fixtures/sns/ec_cert.pem");
    const NOTIFICATION: &str =
        include_str!("../../../tests/fixtures/messaging/sns_http_notification_envelope.json");
    const CONFIRMATION: &str =
        include_str!("../../../tests/fixtures/messaging/sns_http_subscription_confirmation.json");
    const SES_DELIVERY: &str =
        include_str!("../../../tests/fixtures/messaging/ses_sns_event_delivery.json");

    const CERT_URL: &str = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-0000000000000000000000000000000.pem";

    /// The test certificates are valid from 2026-12-03 for a hundred years.
    fn now() -> DateTime<Utc> {
        "2030-01-01T00:00:00Z".parse().unwrap()
    }

    fn private_key() -> rsa::PrivateKey {
        rsa::PrivateKey::from_pkcs8_pem(SIGNER_KEY).unwrap()
    }

    /// Signs `message` as SNS would, with the test key, under `version`.
    fn sign(message: &mut SnsMessage, version: &str) {
        message.signature_version = version.to_owned();
        let signed = string_to_sign(message);
        let bytes = match version {
            "1" => SigningKey::<Sha1>::new(private_key())
                .sign(signed.as_bytes())
                .to_vec(),
            _ => SigningKey::<Sha256>::new(private_key())
                .sign(signed.as_bytes())
                .to_vec(),
        };
        message.signature = STANDARD.encode(bytes);
    }

    /// An SES delivery record in an SNS notification, as SES publishes it.
    fn ses_notification() -> SnsMessage {
        let envelope = serde_json::json!({
            "Type": "Notification",
            "MessageId": "0b5d4a2c-6c7e-5d3f-9d2b-4d8f3f1e6a01",
            "TopicArn": "arn:aws:sns:us-east-1:123456789012:ses-events",
            "Message": SES_DELIVERY,
            "Timestamp": "2016-10-19T23:21:04.133Z",
            "SignatureVersion": "1",
            "Signature": "",
            "SigningCertURL": CERT_URL,
            "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe&SubscriptionArn=arn:aws:sns:us-east-1:123456789012:ses-events:1"
        });
        parse(envelope.to_string().as_bytes()).unwrap()
    }

    #[test]
    fn the_string_to_sign_of_awss_documented_notification() {
        let message = parse(NOTIFICATION.as_bytes()).unwrap();
        assert_eq!(message.kind, SnsMessageType::Notification);
        assert_eq!(
            string_to_sign(&message),
            "Message\nHello world!\n\
             MessageId\n22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324\n\
             Subject\nMy First Message\n\
             Timestamp\n2012-05-02T00:54:06.655Z\n\
             TopicArn\narn:aws:sns:us-west-2:123456789012:MyTopic\n\
             Type\nNotification\n"
        );
        let mut without_subject = message.clone();
        without_subject.subject = None;
        assert!(!string_to_sign(&without_subject).contains("Subject"));
    }

    #[test]
    fn the_string_to_sign_of_awss_documented_subscription_confirmation() {
        let message = parse(CONFIRMATION.as_bytes()).unwrap();
        assert_eq!(message.kind, SnsMessageType::SubscriptionConfirmation);
        assert_eq!(message.token.as_deref(), Some("2336412f37..."));
        assert_eq!(
            string_to_sign(&message),
            "Message\nYou have chosen to subscribe to the topic arn:aws:sns:us-west-2:123456789012:MyTopic.\n\
             To confirm the subscription, visit the SubscribeURL included in this message.\n\
             MessageId\n165545c9-2a5c-472c-8df2-7ff2be2b3b1b\n\
             SubscribeURL\nhttps://sns.us-west-2.amazonaws.com/?Action=ConfirmSubscription&TopicArn=arn:aws:sns:us-west-2:123456789012:MyTopic&Token=2336412f37...\n\
             Timestamp\n2012-04-26T20:45:04.751Z\n\
             Token\n2336412f37...\n\
             TopicArn\narn:aws:sns:us-west-2:123456789012:MyTopic\n\
             Type\nSubscriptionConfirmation\n"
        );
    }

    #[test]
    fn awss_documented_examples_carry_placeholder_signatures_and_are_refused() {
        // Their signatures are elided ("EXAMPLE…") and their certificate is not ours.
        let notification = parse(NOTIFICATION.as_bytes()).unwrap();
        assert_eq!(
            verify(&notification, SIGNER_CERT.as_bytes(), now()),
            Err(SnsError::MalformedSignature)
        );
        let confirmation = parse(CONFIRMATION.as_bytes()).unwrap();
        assert!(matches!(
            verify(&confirmation, SIGNER_CERT.as_bytes(), now()),
            Err(SnsError::MalformedSignature | SnsError::Mismatch)
        ));
    }

    #[test]
    fn a_notification_signed_with_sha1_or_sha256_verifies() {
        for version in ["1", "2"] {
            let mut message = ses_notification();
            sign(&mut message, version);
            assert_eq!(
                verify(&message, SIGNER_CERT.as_bytes(), now()),
                Ok(()),
                "SignatureVersion {version}"
            );
        }
    }

    #[test]
    fn a_signed_subscription_confirmation_verifies_and_names_its_subscribe_url() {
        let mut message = parse(CONFIRMATION.as_bytes()).unwrap();
        message.signing_cert_url = CERT_URL.to_owned();
        sign(&mut message, "2");
        assert_eq!(verify(&message, SIGNER_CERT.as_bytes(), now()), Ok(()));
        let mut foreign = message.clone();
        foreign.subscribe_url = Some("https://evil.example/?Action=ConfirmSubscription".into());
        sign(&mut foreign, "2");
        assert_eq!(
            verify(&foreign, SIGNER_CERT.as_bytes(), now()),
            Err(SnsError::SubscribeUrl(UrlProblem::ForeignHost))
        );
    }

    #[test]
    fn a_tampered_message_is_refused() {
        let mut message = ses_notification();
        sign(&mut message, "1");
        let mut tampered = message.clone();
        tampered.message = tampered.message.replace("Delivery", "Bounce");
        let mut retyped = message.clone();
        retyped.topic_arn = "arn:aws:sns:us-east-1:123456789012:other".into();
        let mut subject_added = message.clone();
        subject_added.subject = Some("hello".into());
        let mut downgraded = message.clone();
        downgraded.signature_version = "2".into();
        for (what, changed) in [
            ("message", tampered),
            ("topic", retyped),
            ("subject", subject_added),
            ("version", downgraded),
        ] {
            assert_eq!(
                verify(&changed, SIGNER_CERT.as_bytes(), now()),
                Err(SnsError::Mismatch),
                "{what}"
            );
        }
    }

    #[test]
    fn a_signature_checked_with_another_certificate_is_refused() {
        let mut message = ses_notification();
        sign(&mut message, "2");
        assert_eq!(
            verify(&message, OTHER_CERT.as_bytes(), now()),
            Err(SnsError::Mismatch)
        );
        assert_eq!(
            verify(&message, EC_CERT.as_bytes(), now()),
            Err(SnsError::NotRsaCertificate)
        );
        assert_eq!(
            verify(
                &message,
                b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
                now()
            ),
            Err(SnsError::UnreadableCertificate)
        );
        assert_eq!(
            verify(&message, b"", now()),
            Err(SnsError::UnreadableCertificate)
        );
    }

    #[test]
    fn a_certificate_outside_its_validity_is_refused() {
        let mut message = ses_notification();
        sign(&mut message, "2");
        let before = "2026-01-01T00:00:00Z".parse().unwrap();
        let after = "2127-01-01T00:00:00Z".parse().unwrap();
        assert_eq!(
            verify(&message, SIGNER_CERT.as_bytes(), before),
            Err(SnsError::CertificateNotYetValid)
        );
        assert_eq!(
            verify(&message, SIGNER_CERT.as_bytes(), after),
            Err(SnsError::CertificateExpired)
        );
    }

    #[test]
    fn unknown_signature_versions_and_malformed_signatures_are_refused() {
        let mut message = ses_notification();
        sign(&mut message, "2");
        let mut version_3 = message.clone();
        version_3.signature_version = "3".into();
        assert_eq!(
            verify(&version_3, SIGNER_CERT.as_bytes(), now()),
            Err(SnsError::UnsupportedSignatureVersion)
        );
        let mut garbage = message.clone();
        garbage.signature = "not base64!".into();
        assert_eq!(
            verify(&garbage, SIGNER_CERT.as_bytes(), now()),
            Err(SnsError::MalformedSignature)
        );
        let mut short = message.clone();
        short.signature = STANDARD.encode([1u8; 16]);
        assert!(matches!(
            verify(&short, SIGNER_CERT.as_bytes(), now()),
            Err(SnsError::MalformedSignature | SnsError::Mismatch)
        ));
    }

    #[test]
    fn a_message_naming_a_foreign_certificate_url_is_refused_before_anything_else() {
        let mut message = ses_notification();
        message.signing_cert_url =
            "https://sns.us-east-1.amazonaws.com.evil.example/cert.pem".into();
        sign(&mut message, "2");
        assert_eq!(
            verify(&message, SIGNER_CERT.as_bytes(), now()),
            Err(SnsError::SigningCertUrl(UrlProblem::ForeignHost))
        );
    }

    #[test]
    fn only_https_sns_regional_hosts_may_serve_certificates() {
        let good = [
            "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem",
            "https://sns.us-gov-west-1.amazonaws.com/SimpleNotificationService-abc.pem",
            "https://SNS.EU-CENTRAL-1.AMAZONAWS.COM/SimpleNotificationService-abc.pem",
            "https://sns.ap-southeast-2.amazonaws.com:443/SimpleNotificationService-abc.pem",
        ];
        for url in good {
            let checked = check_signing_cert_url(url).unwrap_or_else(|e| panic!("{url}: {e}"));
            assert!(
                checked
                    .as_str()
                    .ends_with("/SimpleNotificationService-abc.pem")
            );
            assert_eq!(checked.port(), None, "{url}");
        }
        // Percent-encoding in the host is decoded by the URL parser, here as in any client
        // that fetches: what is checked is what would be fetched.
        let encoded = check_signing_cert_url("https://sns.us-east-1.amazonaws%2ecom/a.pem");
        assert_eq!(
            encoded.unwrap().as_str(),
            "https://sns.us-east-1.amazonaws.com/a.pem"
        );
        let bad = [
            (
                "http://sns.us-east-1.amazonaws.com/a.pem",
                UrlProblem::NotHttps,
            ),
            (
                "ftp://sns.us-east-1.amazonaws.com/a.pem",
                UrlProblem::NotHttps,
            ),
            (
                "https://sns.us-east-1.amazonaws.com.evil.com/a.pem",
                UrlProblem::ForeignHost,
            ),
            (
                "https://sns.us-east-1.amazonaws.com./a.pem",
                UrlProblem::ForeignHost,
            ),
            (
                "https://evil.com/sns.us-east-1.amazonaws.com/a.pem",
                UrlProblem::ForeignHost,
            ),
            (
                "https://sns.us-east-1.amazonaws.com@evil.com/a.pem",
                UrlProblem::Userinfo,
            ),
            (
                "https://user:pw@sns.us-east-1.amazonaws.com/a.pem",
                UrlProblem::Userinfo,
            ),
            (
                "https://evil.com\\@sns.us-east-1.amazonaws.com/a.pem",
                UrlProblem::ForeignHost,
            ),
            (
                "https://evil.com#@sns.us-east-1.amazonaws.com/a.pem",
                UrlProblem::ForeignHost,
            ),
            (
                "https://sns.us-east-1.amazonaws.com:8443/a.pem",
                UrlProblem::Port,
            ),
            ("https://sns.amazonaws.com/a.pem", UrlProblem::ForeignHost),
            (
                "https://sns.evil.com.amazonaws.com/a.pem",
                UrlProblem::ForeignHost,
            ),
            (
                "https://sns.evil-1.amazonaws.com/a.pem",
                UrlProblem::ForeignHost,
            ),
            (
                "https://s3.us-east-1.amazonaws.com/a.pem",
                UrlProblem::ForeignHost,
            ),
            (
                "https://xsns.us-east-1.amazonaws.com/a.pem",
                UrlProblem::ForeignHost,
            ),
            (
                "https://sns.us-east-1.amazonaws.com.cn/a.pem",
                UrlProblem::ForeignHost,
            ),
            (
                "https://sns.us-east-1.amazonaws.com%2eevil.com/a.pem",
                UrlProblem::ForeignHost,
            ),
            (
                "https://sns.us-east-1.\u{430}mazonaws.com/a.pem",
                UrlProblem::ForeignHost,
            ),
            ("https://54.239.1.1/a.pem", UrlProblem::ForeignHost),
            (
                "https://sns.us-east-1.amazonaws.com/a.txt",
                UrlProblem::NotPem,
            ),
            (
                "https://sns.us-east-1.amazonaws.com/a.pem?x=1",
                UrlProblem::NotPem,
            ),
            ("sns.us-east-1.amazonaws.com/a.pem", UrlProblem::NotAUrl),
            ("", UrlProblem::NotAUrl),
        ];
        for (url, problem) in bad {
            assert_eq!(check_signing_cert_url(url), Err(problem), "{url}");
        }
        assert_eq!(
            sns_url_region("https://sns.eu-west-3.amazonaws.com/?Action=ConfirmSubscription"),
            Ok("eu-west-3".to_owned())
        );
    }

    #[test]
    fn incomplete_or_foreign_bodies_name_what_is_missing() {
        assert_eq!(parse(b"not json"), Err(SnsError::NotJson));
        assert_eq!(parse(b"[1]"), Err(SnsError::NotJson));
        assert_eq!(
            parse(br#"{"MessageId": "x"}"#),
            Err(SnsError::MissingField("Type"))
        );
        assert_eq!(
            parse(br#"{"Type": "Telegram"}"#),
            Err(SnsError::UnknownType)
        );
        let mut without_arn: Value = serde_json::from_str(NOTIFICATION).unwrap();
        without_arn.as_object_mut().unwrap().remove("TopicArn");
        assert_eq!(
            parse(without_arn.to_string().as_bytes()),
            Err(SnsError::MissingField("TopicArn"))
        );
        let mut without_token: Value = serde_json::from_str(CONFIRMATION).unwrap();
        without_token.as_object_mut().unwrap().remove("Token");
        assert_eq!(
            parse(without_token.to_string().as_bytes()),
            Err(SnsError::MissingField("Token"))
        );
        // A bare SES record (SNS "raw message delivery") has no signature: not an SNS message.
        assert_eq!(
            parse(SES_DELIVERY.as_bytes()),
            Err(SnsError::MissingField("Type"))
        );
    }
}
