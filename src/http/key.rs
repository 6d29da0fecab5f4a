//! Reading a key from a request, written once for every endpoint that takes one.

use axum::http::{HeaderMap, header};

use super::ApiError;

/// The key in `Authorization: Bearer KEY`: `Ok(None)` without the header, an error naming the
/// expected form when the header is there but is not a bearer key.
pub fn bearer_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .map(|k| Some(k.to_string()))
        .ok_or_else(|| ApiError::Unauthorized("Authorization must be `Bearer SECRET_KEY`".into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn a_bearer_key_is_read_and_anything_else_in_authorization_is_refused() {
        let mut headers = HeaderMap::new();
        assert!(bearer_key(&headers).unwrap().is_none());
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer  lux_sk_1 "),
        );
        assert_eq!(bearer_key(&headers).unwrap().as_deref(), Some("lux_sk_1"));
        for bad in ["Basic abc", "Bearer ", "lux_sk_1"] {
            headers.insert(header::AUTHORIZATION, HeaderValue::from_static(bad));
            assert!(bearer_key(&headers).is_err(), "{bad}");
        }
    }
}
