//! Reading a key from a request, written once for every endpoint that takes one.

use axum::http::{HeaderMap, header};

use super::ApiError;
use crate::tenancy::{KeyKind, Tenancy, Tenant};

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

/// The tenant of a request's secret key, for the endpoints that servers and scripts call
/// (reports, sends, links): only the secret key, only in the `Authorization` header; a public
/// write key is refused (403). `needs` names the endpoint in the 403's message ("reports
/// need").
pub async fn secret_key_tenant(
    tenancy: &Tenancy,
    headers: &HeaderMap,
    needs: &str,
) -> Result<Tenant, ApiError> {
    let Some(key) = bearer_key(headers)? else {
        return Err(ApiError::Unauthorized(
            "missing key: send the header `Authorization: Bearer SECRET_KEY` with the company's \
             secret key"
                .into(),
        ));
    };
    let tenant = tenancy.resolve(&key).await?.ok_or_else(|| {
        ApiError::Unauthorized(
            "unknown or revoked key: send `Authorization: Bearer SECRET_KEY` with a current \
             secret key (`lux company keys`)"
                .into(),
        )
    })?;
    if tenant.kind != KeyKind::Secret {
        return Err(ApiError::Forbidden(format!(
            "this is a write key (public, for the snippet); {needs} the company's secret key: \
             `Authorization: Bearer SECRET_KEY`"
        )));
    }
    Ok(tenant)
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
