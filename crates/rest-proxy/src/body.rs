//! Request bodies read the way kafka-rest's JSON mapper reads them, so a
//! client sees the same answer from both:
//!
//! ```text
//! no body, or `null` ──▶ None (each endpoint says what that means)
//! not JSON ───────────▶ 400, error_code 400
//! unknown field ──────▶ 422, error_code 422, "Unrecognized field: NAME"
//! wrong type ─────────▶ 400, error_code 400
//! ```
//!
//! kafka-rest's mapper fails on fields its request entities do not name, so
//! every request struct here denies unknown fields. It also coerces scalars:
//! a number or boolean where text is expected is taken as its text, and a
//! string of digits where a number is expected as that number; the
//! `deserialize_with` helpers below do the same.

use serde::Deserialize;
use serde::de::{DeserializeOwned, Deserializer, Error as _};
use serde_json::Value;
use serde_json::error::Category;

use crate::error::RestError;

/// The prefix serde gives a field that `deny_unknown_fields` refused.
const UNKNOWN_FIELD: &str = "unknown field `";

/// Reads a JSON body; `None` when it is empty (only whitespace) or `null`.
pub fn optional<T: DeserializeOwned>(bytes: &[u8]) -> Result<Option<T>, RestError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|e| RestError::status(400, format!("The request body is not JSON: {e}")))?;
    if value.is_null() {
        return Ok(None);
    }
    from_value(value).map(Some)
}

/// Reads one JSON value into `T` with kafka-rest's answers for unknown fields and wrong types.
pub fn from_value<T: DeserializeOwned>(value: Value) -> Result<T, RestError> {
    serde_json::from_value(value).map_err(|e| mapping_error(&e))
}

/// What a value that is JSON but not the entity is answered with.
pub fn mapping_error(e: &serde_json::Error) -> RestError {
    let text = e.to_string();
    if e.classify() == Category::Data
        && let Some(rest) = text.strip_prefix(UNKNOWN_FIELD)
    {
        let name = rest.split('`').next().unwrap_or(rest);
        return RestError::status(422, format!("Unrecognized field: {name}"));
    }
    RestError::status(400, format!("Invalid request body: {text}"))
}

/// kafka-rest's answer to a missing body where one is required: 422 (42206).
pub fn payload_error(cause: &str) -> RestError {
    RestError { status: 422, error_code: 42206, message: format!("Payload error. {cause}") }
}

/// A scalar as text: strings as they are, numbers and booleans as written.
fn scalar_text<E: serde::de::Error>(value: Value, what: &str) -> Result<String, E> {
    match value {
        Value::String(s) => Ok(s),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        other => Err(E::custom(format!("expected {what}, got {other}"))),
    }
}

/// An optional text field that also takes a number or boolean (as its text).
pub fn opt_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(None),
        v => scalar_text(v, "a string").map(Some),
    }
}

/// A required text field that also takes a number or boolean (as its text).
pub fn text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    scalar_text(Value::deserialize(d)?, "a string")
}

/// An integer that may come as a JSON number or a string of digits.
fn integer<E: serde::de::Error, I: TryFrom<i64>>(value: &Value) -> Result<I, E> {
    let n = match value {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse::<i64>().ok(),
        _ => None,
    };
    n.and_then(|n| I::try_from(n).ok()).ok_or_else(|| E::custom(format!("expected an integer, got {value}")))
}

/// An optional integer field (number or string of digits).
pub fn opt_int<'de, D: Deserializer<'de>, I: TryFrom<i64>>(d: D) -> Result<Option<I>, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(None),
        v => integer(&v).map(Some),
    }
}

/// A required integer field (number or string of digits).
pub fn int<'de, D: Deserializer<'de>, I: TryFrom<i64>>(d: D) -> Result<I, D::Error> {
    let v = Value::deserialize(d)?;
    if v.is_null() {
        return Err(D::Error::custom("expected an integer, got null"));
    }
    integer(&v)
}

/// An optional flag: `true`/`false`, their text in any case, or 1/0.
pub fn opt_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(None),
        Value::Bool(b) => Ok(Some(b)),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Ok(Some(true)),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Ok(Some(false)),
        Value::Number(n) if n.as_i64() == Some(0) => Ok(Some(false)),
        Value::Number(n) if n.as_i64().is_some() => Ok(Some(true)),
        other => Err(D::Error::custom(format!("expected true or false, got {other}"))),
    }
}

/// A list that may be given as `null` (the same as absent: empty).
pub fn list<'de, D: Deserializer<'de>, T: serde::Deserialize<'de>>(d: D) -> Result<Vec<T>, D::Error> {
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Entity {
        #[serde(default, deserialize_with = "opt_text")]
        value: Option<String>,
        #[serde(default, deserialize_with = "opt_int")]
        count: Option<i32>,
        #[serde(default, deserialize_with = "list")]
        names: Vec<String>,
        #[serde(default, deserialize_with = "opt_bool")]
        flag: Option<bool>,
    }

    #[test]
    fn empty_and_null_bodies_are_none() {
        assert!(optional::<Entity>(b"").expect("empty").is_none());
        assert!(optional::<Entity>(b" \r\n").expect("blank").is_none());
        assert!(optional::<Entity>(b"null").expect("null").is_none());
    }

    #[test]
    fn unknown_fields_are_named_like_kafka_rest() {
        let e = optional::<Entity>(br#"{"value": "x", "colour": 1}"#).expect_err("unknown");
        assert_eq!((e.status, e.error_code, e.message.as_str()), (422, 422, "Unrecognized field: colour"));
    }

    #[test]
    fn bad_json_and_wrong_types_are_400() {
        let e = optional::<Entity>(b"{").expect_err("syntax");
        assert_eq!((e.status, e.error_code), (400, 400));
        let e = optional::<Entity>(br#"{"names": "a"}"#).expect_err("type");
        assert_eq!((e.status, e.error_code), (400, 400));
        let e = optional::<Entity>(br#"{"count": "many"}"#).expect_err("not a number");
        assert_eq!((e.status, e.error_code), (400, 400));
    }

    #[test]
    fn scalars_are_coerced_as_jackson_does() {
        let e: Entity = optional(br#"{"value": 86400000, "count": "3", "names": null}"#).expect("ok").expect("some");
        assert_eq!((e.value.as_deref(), e.count, e.names.len()), (Some("86400000"), Some(3), 0));
        let e: Entity = optional(br#"{"value": true, "count": 4, "flag": "TRUE"}"#).expect("ok").expect("some");
        assert_eq!((e.value.as_deref(), e.count, e.flag), (Some("true"), Some(4), Some(true)));
        let e: Entity = optional(br#"{"flag": null}"#).expect("ok").expect("some");
        assert_eq!(e.flag, None);
    }
}
