//! Schemas of the standard events (SPEC §5; `docs/events.md`): the properties each one
//! documents are checked for type at ingest. Other properties, and other event names
//! (custom events), are accepted as they are.

use serde_json::{Map, Value};

use super::rejection::EventError;
use crate::experiments::{ExperimentKey, Variant};

fn invalid(message: String) -> EventError {
    EventError {
        code: "invalid_property",
        message,
    }
}

fn missing(event: &str, field: &str) -> EventError {
    EventError {
        code: "missing_purchase_field",
        message: format!("{event}: properties.{field} is required"),
    }
}

/// A non-negative amount: a JSON number or a decimal string ("59.90").
fn is_amount(v: &Value) -> bool {
    match v {
        Value::Number(n) => n.as_f64().is_some_and(|x| x >= 0.0),
        Value::String(s) => is_decimal(s),
        _ => false,
    }
}

pub fn is_decimal(s: &str) -> bool {
    let s = s.trim();
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    !int.is_empty()
        && int.chars().all(|c| c.is_ascii_digit())
        && frac.chars().all(|c| c.is_ascii_digit())
}

fn is_currency(v: &Value) -> bool {
    v.as_str()
        .is_some_and(|s| s.len() == 3 && s.chars().all(|c| c.is_ascii_alphabetic()))
}

fn is_short_id(v: &Value) -> bool {
    is_id(v)
        && v.as_str()
            .is_none_or(|s| s.chars().count() <= super::limits::MAX_ID)
}

fn is_id(v: &Value) -> bool {
    match v {
        Value::String(s) => !s.trim().is_empty(),
        Value::Number(n) => n.is_i64() || n.is_u64(),
        _ => false,
    }
}

/// Checks an optional property with `ok`, naming the expected type when it fails.
fn optional(
    event: &str,
    p: &Map<String, Value>,
    field: &str,
    ok: fn(&Value) -> bool,
    expected: &str,
) -> Result<(), EventError> {
    match p.get(field) {
        Some(v) if !v.is_null() && !ok(v) => Err(invalid(format!(
            "{event}: properties.{field} must be {expected}"
        ))),
        _ => Ok(()),
    }
}

fn check_items(event: &str, p: &Map<String, Value>) -> Result<(), EventError> {
    let Some(items) = p.get("items") else {
        return Ok(());
    };
    let items = items
        .as_array()
        .ok_or_else(|| invalid(format!("{event}: properties.items must be an array")))?;
    for (i, item) in items.iter().enumerate() {
        let item = item
            .as_object()
            .ok_or_else(|| invalid(format!("{event}: properties.items[{i}] must be an object")))?;
        let at = |field: &str, expected: &str| {
            invalid(format!(
                "{event}: properties.items[{i}].{field} must be {expected}"
            ))
        };
        for field in ["sku", "item_id"] {
            if item.get(field).is_some_and(|v| !is_id(v)) {
                return Err(at(field, "a string or an integer"));
            }
        }
        if item.get("name").is_some_and(|v| !v.is_string()) {
            return Err(at("name", "a string"));
        }
        if item
            .get("quantity")
            .is_some_and(|v| v.as_u64().is_none_or(|q| q == 0))
        {
            return Err(at("quantity", "a positive integer"));
        }
        if item.get("price").is_some_and(|v| !is_amount(v)) {
            return Err(at("price", "a non-negative number or decimal string"));
        }
    }
    Ok(())
}

/// Value and currency go together: an amount without its currency cannot be added up.
fn check_value(event: &str, p: &Map<String, Value>) -> Result<(), EventError> {
    optional(
        event,
        p,
        "value",
        is_amount,
        "a non-negative number or decimal string",
    )?;
    optional(
        event,
        p,
        "currency",
        is_currency,
        "an ISO 4217 code such as USD",
    )?;
    if p.get("value").is_some_and(|v| !v.is_null()) && p.get("currency").is_none() {
        return Err(invalid(format!(
            "{event}: properties.currency is required with properties.value"
        )));
    }
    Ok(())
}

pub fn check(event: &str, p: &Map<String, Value>) -> Result<(), EventError> {
    let string = |v: &Value| v.is_string();
    match event {
        "page_view" => optional(event, p, "title", string, "a string"),
        "add_to_cart" | "remove_from_cart" | "begin_checkout" => {
            check_value(event, p)?;
            check_items(event, p)
        }
        "purchase" => {
            if p.get("order_id").is_none_or(Value::is_null) {
                return Err(missing(event, "order_id"));
            }
            // It becomes an index key (order refs): bounded like every other id.
            optional(
                event,
                p,
                "order_id",
                is_short_id,
                "a non-empty string of at most 256 characters, or an integer",
            )?;
            for field in ["value", "currency"] {
                if p.get(field).is_none_or(Value::is_null) {
                    return Err(missing(event, field));
                }
            }
            check_value(event, p)?;
            for field in ["tax", "shipping", "discount"] {
                optional(
                    event,
                    p,
                    field,
                    is_amount,
                    "a non-negative number or decimal string",
                )?;
            }
            optional(event, p, "coupon", string, "a string")?;
            check_items(event, p)
        }
        "lead_submit" => {
            optional(event, p, "form_id", is_short_id, "a string or an integer")?;
            check_value(event, p)
        }
        "signup" | "login" => optional(event, p, "method", string, "a string"),
        EXPOSURE => check_exposure(p),
        _ => Ok(()),
    }
}

/// The event the snippet's `lux.expose(key, variant)` sends (SPEC §8.3).
pub const EXPOSURE: &str = "experiment_exposure";

/// An exposure names its experiment and variant, both by the experiments module's rules:
/// without them it cannot be counted anywhere.
fn check_exposure(p: &Map<String, Value>) -> Result<(), EventError> {
    let text = |field: &str| match p.get(field) {
        None | Some(Value::Null) => Err(EventError {
            code: "missing_experiment_field",
            message: format!("{EXPOSURE}: properties.{field} is required"),
        }),
        Some(Value::String(s)) => Ok(s.as_str()),
        Some(_) => Err(invalid(format!(
            "{EXPOSURE}: properties.{field} must be a string"
        ))),
    };
    ExperimentKey::parse(text("experiment")?)
        .map_err(|e| invalid(format!("{EXPOSURE}: properties.experiment: {e}")))?;
    Variant::parse(text("variant")?)
        .map_err(|e| invalid(format!("{EXPOSURE}: properties.variant: {e}")))?;
    Ok(())
}

/// Stores checked properties in their canonical form: an exposure's experiment and variant
/// trimmed (as the rollups compare them).
pub fn normalize(event: &str, p: &mut Map<String, Value>) {
    if event != EXPOSURE {
        return;
    }
    for field in ["experiment", "variant"] {
        if let Some(Value::String(s)) = p.get_mut(field) {
            let trimmed = s.trim();
            if trimmed.len() != s.len() {
                *s = trimmed.to_owned();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn props(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn standard_events_check_their_documented_properties() {
        let ok = [
            ("page_view", json!({"title": "Home"})),
            (
                "add_to_cart",
                json!({"value": 19.9, "currency": "EUR", "items": [{"sku": "A", "quantity": 1, "price": "19.90"}]}),
            ),
            (
                "begin_checkout",
                json!({"value": "39.80", "currency": "EUR"}),
            ),
            (
                "purchase",
                json!({"order_id": 1001, "value": "59.90", "currency": "EUR", "tax": 1, "coupon": "BF"}),
            ),
            ("lead_submit", json!({"form_id": "demo"})),
            ("signup", json!({"method": "google"})),
            (
                "experiment_exposure",
                json!({"experiment": "hero", "variant": " b "}),
            ),
            ("custom_thing", json!({"anything": [1, {"goes": true}]})),
        ];
        for (event, p) in ok {
            assert!(check(event, &props(p.clone())).is_ok(), "{event} {p}");
        }
        let bad = [
            ("page_view", json!({"title": 5}), "title"),
            ("add_to_cart", json!({"value": 5}), "currency is required"),
            (
                "add_to_cart",
                json!({"items": {"sku": "A"}}),
                "items must be an array",
            ),
            (
                "add_to_cart",
                json!({"items": [{"quantity": 0}]}),
                "quantity",
            ),
            (
                "begin_checkout",
                json!({"value": "1,000", "currency": "EUR"}),
                "value",
            ),
            (
                "purchase",
                json!({"value": 5, "currency": "EUR"}),
                "order_id",
            ),
            (
                "purchase",
                json!({"order_id": "o", "value": 5, "currency": "EUR", "tax": "x"}),
                "tax",
            ),
            ("lead_submit", json!({"form_id": ["x"]}), "form_id"),
            ("login", json!({"method": true}), "method"),
            (
                "experiment_exposure",
                json!({"variant": "b"}),
                "properties.experiment is required",
            ),
            (
                "experiment_exposure",
                json!({"experiment": "hero"}),
                "properties.variant is required",
            ),
            (
                "experiment_exposure",
                json!({"experiment": "he ro", "variant": "b"}),
                "experiment",
            ),
            (
                "experiment_exposure",
                json!({"experiment": "hero", "variant": "  "}),
                "variant is empty",
            ),
            (
                "experiment_exposure",
                json!({"experiment": "hero", "variant": 2}),
                "variant must be a string",
            ),
        ];
        for (event, p, says) in bad {
            let error = check(event, &props(p.clone())).unwrap_err();
            assert!(
                error.message.contains(says),
                "{event} {p}: {}",
                error.message
            );
        }
    }

    #[test]
    fn exposures_are_stored_trimmed() {
        let mut p = props(json!({"experiment": " hero", "variant": "b\t", "x": " y "}));
        normalize("experiment_exposure", &mut p);
        assert_eq!(
            Value::Object(p),
            json!({"experiment": "hero", "variant": "b", "x": " y "})
        );
    }
}
