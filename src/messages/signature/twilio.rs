//! Twilio's `X-Twilio-Signature`: base64 of HMAC-SHA1, under the account's auth token, of the
//! full URL Twilio requested followed by every form parameter sorted by name (then value), each
//! as name + value. Every received parameter is signed, including ones we do not know: Twilio
//! adds fields without notice.
//!
//! The URL is ours to rebuild: `LUX_PUBLIC_URL` + path + query (SPEC §11), since behind a proxy
//! the request line does not show what Twilio called. Twilio's SDKs accept the signature with
//! and without the scheme's default port in the URL, because Twilio's own side is inconsistent
//! about it; so do we. Twilio signs no timestamp: a replay is absorbed by the idempotency on
//! (MessageSid, MessageStatus).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;

pub const SIGNATURE_HEADER: &str = "X-Twilio-Signature";

/// What failed, in the order it is checked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TwilioError {
    #[error("the configured Twilio auth token is empty")]
    EmptyToken,
    #[error("missing {SIGNATURE_HEADER} header")]
    MissingSignature,
    #[error("{SIGNATURE_HEADER} is not the base64 of a 20-byte HMAC-SHA1")]
    MalformedSignature,
    #[error("signature does not match the URL and parameters (tampered, wrong URL or token)")]
    Mismatch,
}

/// The form parameters of a raw `application/x-www-form-urlencoded` body, in arrival order.
pub fn parse_form(body: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(body)
        .map(|(name, value)| (name.into_owned(), value.into_owned()))
        .collect()
}

/// Verifies one request: `url` as Twilio called it, `params` every form parameter received,
/// `signature` the header value (`None` when absent).
pub fn verify(
    auth_token: &str,
    url: &str,
    params: &[(String, String)],
    signature: Option<&str>,
) -> Result<(), TwilioError> {
    if auth_token.is_empty() {
        return Err(TwilioError::EmptyToken);
    }
    let signature = signature
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or(TwilioError::MissingSignature)?;
    let claimed = STANDARD
        .decode(signature)
        .ok()
        .filter(|bytes| bytes.len() == 20)
        .ok_or(TwilioError::MalformedSignature)?;
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    let matches = |url: &str| {
        let mut mac = Hmac::<Sha1>::new_from_slice(auth_token.as_bytes())
            .expect("HMAC accepts keys of any length");
        mac.update(url.as_bytes());
        for (name, value) in &sorted {
            mac.update(name.as_bytes());
            mac.update(value.as_bytes());
        }
        mac.verify_slice(&claimed).is_ok()
    };
    let other = with_or_without_default_port(url);
    if matches(url) || other.as_deref().is_some_and(matches) {
        Ok(())
    } else {
        Err(TwilioError::Mismatch)
    }
}

/// The same URL with its port removed when it has one, or with the scheme's default port
/// (443, 80) added when it has none; `None` when that cannot be done (no `scheme://`, or
/// neither https nor http without a port).
fn with_or_without_default_port(url: &str) -> Option<String> {
    let scheme_end = url.find("://")?;
    let authority_start = scheme_end + 3;
    let authority_end = url[authority_start..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| authority_start + i);
    let authority = &url[authority_start..authority_end];
    let host_start = authority_start + authority.rfind('@').map_or(0, |i| i + 1);
    let host_and_port = &url[host_start..authority_end];
    let port_colon = if host_and_port.starts_with('[') {
        host_and_port.find("]:").map(|i| i + 1)
    } else {
        host_and_port.rfind(':')
    };
    match port_colon {
        Some(colon) => {
            let colon = host_start + colon;
            Some(format!("{}{}", &url[..colon], &url[authority_end..]))
        }
        None => {
            let port = match &url[..scheme_end] {
                "https" => 443,
                "http" => 80,
                _ => return None,
            };
            Some(format!(
                "{}:{port}{}",
                &url[..authority_end],
                &url[authority_end..]
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Twilio's SDK test vector: twilio/twilio-python `tests/unit/test_request_validator.py`
    // (MIT), auth token "12345".
    const TOKEN: &str = "12345";
    const URL: &str = "https://mycompany.com/myapp.php?foo=1&bar=2";
    const EXPECTED: &str = "RSOYDt4T1cUTdK1PDd93/VVr8B8=";

    fn params() -> Vec<(String, String)> {
        [
            ("CallSid", "CA1234567890ABCDE"),
            ("Digits", "1234"),
            ("From", "+14158675309"),
            ("To", "+18005551212"),
            ("Caller", "+14158675309"),
        ]
        .into_iter()
        .map(|(n, v)| (n.to_owned(), v.to_owned()))
        .collect()
    }

    #[test]
    fn twilios_sdk_vector_verifies_whatever_the_parameter_order() {
        assert_eq!(verify(TOKEN, URL, &params(), Some(EXPECTED)), Ok(()));
        let mut reversed = params();
        reversed.reverse();
        assert_eq!(verify(TOKEN, URL, &reversed, Some(EXPECTED)), Ok(()));
    }

    #[test]
    fn the_vector_survives_a_round_trip_through_a_form_body() {
        let body = b"Digits=1234&To=%2B18005551212&From=%2B14158675309&Caller=%2B14158675309&CallSid=CA1234567890ABCDE";
        assert_eq!(
            verify(TOKEN, URL, &parse_form(body), Some(EXPECTED)),
            Ok(())
        );
    }

    #[test]
    fn repeated_parameters_are_signed_sorted_by_value() {
        // The SDK's duplicate-parameter vector.
        let params: Vec<(String, String)> = [
            ("Sid", "CA123"),
            ("SidAccount", "AC123"),
            ("Digits", "5678"),
            ("Digits", "1234"),
        ]
        .into_iter()
        .map(|(n, v)| (n.to_owned(), v.to_owned()))
        .collect();
        assert_eq!(
            verify(TOKEN, URL, &params, Some("IK+Dwps556ElfBT0I3Rgjkr1wJU=")),
            Ok(())
        );
    }

    #[test]
    fn the_default_port_may_be_present_or_absent_as_in_twilios_sdks() {
        // The SDK's vectors: signed over the URL with :443, with :1234 on http, with :80.
        assert_eq!(
            verify(TOKEN, URL, &params(), Some("kvajT1Ptam85bY51eRf/AJRuM3w=")),
            Ok(())
        );
        let https_with_port = URL.replace(".com", ".com:1234");
        assert_eq!(
            verify(TOKEN, &https_with_port, &params(), Some(EXPECTED)),
            Ok(())
        );
        let http_with_port = https_with_port.replace("https", "http");
        assert_eq!(
            verify(
                TOKEN,
                &http_with_port,
                &params(),
                Some("Zmvh+3yNM1Phv2jhDCwEM3q5ebU=")
            ),
            Ok(())
        );
        let http = URL.replace("https", "http");
        assert_eq!(
            verify(
                TOKEN,
                &http,
                &params(),
                Some("0ZXoZLH/DfblKGATFgpif+LLRf4=")
            ),
            Ok(())
        );
    }

    #[test]
    fn tampered_parameters_urls_or_tokens_are_refused() {
        let mut changed = params();
        changed[1].1 = "9999".to_owned();
        let mut extra = params();
        extra.push(("MessageStatus".to_owned(), "delivered".to_owned()));
        let mut missing = params();
        missing.pop();
        for tampered in [changed, extra, missing] {
            assert_eq!(
                verify(TOKEN, URL, &tampered, Some(EXPECTED)),
                Err(TwilioError::Mismatch),
                "{tampered:?}"
            );
        }
        for url in [
            "https://mycompany.com/myapp.php?foo=1&bar=3",
            "https://mycompany.com/other.php?foo=1&bar=2",
            "https://evil.example/myapp.php?foo=1&bar=2",
        ] {
            assert_eq!(
                verify(TOKEN, url, &params(), Some(EXPECTED)),
                Err(TwilioError::Mismatch),
                "{url}"
            );
        }
        assert_eq!(
            verify("54321", URL, &params(), Some(EXPECTED)),
            Err(TwilioError::Mismatch)
        );
    }

    #[test]
    fn missing_or_malformed_signatures_are_named() {
        assert_eq!(
            verify("", URL, &params(), Some(EXPECTED)),
            Err(TwilioError::EmptyToken)
        );
        assert_eq!(
            verify(TOKEN, URL, &params(), None),
            Err(TwilioError::MissingSignature)
        );
        assert_eq!(
            verify(TOKEN, URL, &params(), Some("")),
            Err(TwilioError::MissingSignature)
        );
        for bad in ["not base64!", "AAAA", "RSOYDt4T1cUTdK1PDd93/VVr8B8=AAAA"] {
            assert_eq!(
                verify(TOKEN, URL, &params(), Some(bad)),
                Err(TwilioError::MalformedSignature),
                "{bad}"
            );
        }
    }

    #[test]
    fn default_ports_are_added_or_removed_in_the_authority_only() {
        let cases = [
            (
                "https://a.example/p?x=1",
                Some("https://a.example:443/p?x=1"),
            ),
            ("https://a.example:443/p", Some("https://a.example/p")),
            ("http://a.example", Some("http://a.example:80")),
            (
                "https://u:pw@a.example/p",
                Some("https://u:pw@a.example:443/p"),
            ),
            ("https://[::1]:8443/p", Some("https://[::1]/p")),
            ("https://[::1]/p", Some("https://[::1]:443/p")),
            (
                "https://a.example/p?next=http://b:1",
                Some("https://a.example:443/p?next=http://b:1"),
            ),
            ("ftp://a.example/p", None),
            ("a.example/p", None),
        ];
        for (url, expected) in cases {
            assert_eq!(
                with_or_without_default_port(url).as_deref(),
                expected,
                "{url}"
            );
        }
    }
}
