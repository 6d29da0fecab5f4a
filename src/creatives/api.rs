//! `POST /api/v1/creatives` (secret key): the catalog from a server or script, the same rows
//! as the CSV of `lux import creatives` as a JSON array of objects, checked by the same code
//! ([`Creative::from_fields`]) and upserted the same way. Each item is kept or refused on its
//! own; the answer names each refused item by its index.

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde::Serialize;
use serde_json::{Value, json};

use super::CreativesState;
use super::catalog::{Creative, FIELDS, FirstWins};
use crate::http::ApiError;

/// The path of the catalog endpoint.
pub const CREATIVES_PATH: &str = "/api/v1/creatives";
/// Most creatives in one request; a bigger catalog goes through `lux import creatives`.
pub const MAX_ITEMS: usize = 10_000;
/// [`MAX_ITEMS`] items of a few hundred bytes each fit.
const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

pub fn router() -> Router<CreativesState> {
    Router::new().route(
        CREATIVES_PATH,
        post(post_creatives).layer(DefaultBodyLimit::max(MAX_BODY_BYTES)),
    )
}

/// One refused item of a request.
#[derive(Debug, Serialize)]
struct Rejected {
    index: usize,
    error: String,
}

/// `POST /api/v1/creatives`: the key first (401/403), then the body. Valid items are stored
/// whatever the others hold; nothing valid → 400 with every item's reason.
#[tracing::instrument(skip_all, fields(company_id))]
async fn post_creatives(
    State(state): State<CreativesState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let tenant =
        crate::tenancy::secret_key_tenant(&state.tenancy, &headers, "the catalog needs").await?;
    let company_id = tenant.settings.company_id;
    tracing::Span::current().record("company_id", tracing::field::display(company_id));
    let body = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge(format!("the body is larger than {MAX_BODY_BYTES} bytes"))
        } else {
            ApiError::BadRequest(format!("could not read the body: {rejection}"))
        }
    })?;
    let items = parse_items(&body)?;
    let mut valid = Vec::with_capacity(items.len());
    let mut rejected = Vec::new();
    let mut seen = FirstWins::default();
    for (index, item) in items.iter().enumerate() {
        match item_to_creative(item).and_then(|c| seen.check(c, index as u64, "item")) {
            Ok(creative) => valid.push((index as u64, creative)),
            Err(error) => rejected.push(Rejected { index, error }),
        }
    }
    if valid.is_empty() {
        let body = json!({
            "error": format!(
                "no valid creative among the {} items; each one's reason is in `rejected`",
                items.len()
            ),
            "rejected": rejected,
        });
        return Ok((StatusCode::BAD_REQUEST, axum::Json(body)).into_response());
    }
    let (stored, updated) = super::catalog::store(&state.pool, company_id, &valid)
        .await
        .map_err(ApiError::from)?;
    tracing::info!(
        accepted = valid.len(),
        rejected = rejected.len(),
        stored,
        "creatives posted"
    );
    let body = json!({
        "accepted": valid.len(),
        "stored": stored,
        "updated": updated,
        "unchanged": valid.len() - stored - updated,
        "rejected": rejected,
    });
    Ok((StatusCode::OK, axum::Json(body)).into_response())
}

/// An item's fields: an object of [`FIELDS`] whose values are strings, numbers (an ad id is
/// often numeric) or null. An unknown field is refused, as an unknown CSV column is: a
/// misspelt `consept` must not silently drop the concept.
fn item_to_creative(item: &Value) -> Result<Creative, String> {
    let object = item.as_object().ok_or("a creative must be a JSON object")?;
    if let Some(unknown) = object.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return Err(format!(
            "unknown field {:?}; the fields are {}",
            unknown.chars().take(60).collect::<String>(),
            FIELDS.join(", ")
        ));
    }
    let mut texts: [Option<String>; 8] = Default::default();
    for (slot, name) in texts.iter_mut().zip(FIELDS) {
        *slot = match object.get(name) {
            None | Some(Value::Null) => None,
            Some(Value::String(text)) => Some(text.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            Some(_) => return Err(format!("{name} must be a string")),
        };
    }
    Creative::from_fields(std::array::from_fn(|i| texts[i].as_deref()))
}

/// The body's items: a JSON array of creatives (or one creative object).
fn parse_items(body: &[u8]) -> Result<Vec<Value>, ApiError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        ApiError::BadRequest(format!(
            "the body is not JSON ({e}); send a JSON array of creatives"
        ))
    })?;
    let items = match value {
        Value::Array(items) => items,
        object @ Value::Object(_) => vec![object],
        _ => {
            return Err(ApiError::BadRequest(
                "the body must be a JSON array of creatives".into(),
            ));
        }
    };
    if items.is_empty() {
        return Err(ApiError::BadRequest(
            "the array is empty: send at least one creative".into(),
        ));
    }
    if items.len() > MAX_ITEMS {
        return Err(ApiError::PayloadTooLarge(format!(
            "{} creatives in one request; at most {MAX_ITEMS} (split the list, or use `lux \
             import creatives`)",
            items.len()
        )));
    }
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_are_checked_like_csv_lines() {
        let good = json!({"creative_id": 120_210, "name": "Unboxing", "concept": "ugc",
                          "launched_on": "2026-11-01"});
        let creative = item_to_creative(&good).unwrap();
        assert_eq!(creative.creative_id, "120210");
        assert_eq!(creative.concept.as_deref(), Some("ugc"));
        let bad_day = json!({"creative_id": "c1", "launched_on": "01/11/2026"});
        assert!(
            item_to_creative(&bad_day)
                .unwrap_err()
                .contains("not a date")
        );
        let unknown = json!({"creative_id": "c1", "launched_on": "2026-11-01", "consept": "x"});
        assert!(item_to_creative(&unknown).unwrap_err().contains("consept"));
        assert!(item_to_creative(&json!([1])).is_err());
        let nested = json!({"creative_id": {"a": 1}, "launched_on": "2026-11-01"});
        assert_eq!(
            item_to_creative(&nested).unwrap_err(),
            "creative_id must be a string"
        );
    }
}
