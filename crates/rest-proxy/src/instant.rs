//! Times as kafka-rest reads and writes them (Jackson's `Instant`): read
//! from an ISO-8601 text or from seconds since the epoch (a JSON number or a
//! string of one, with an optional fraction); written as ISO-8601 in UTC with
//! milliseconds only when there are some (`2024-05-01T12:00:00Z`,
//! `2024-05-01T12:00:00.250Z`).

use serde_json::Value;
use tributary_client::seek::{format_rfc3339_ms, parse_rfc3339_ms};

/// A time as kafka-rest reads an `Instant`: an ISO-8601
/// time, or seconds since the epoch (a number or a string of one, with an
/// optional fraction).
pub fn timestamp_ms(value: &Value) -> Result<i64, String> {
    let text = match value {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        other => return Err(format!("expected a time, got {other}")),
    };
    match epoch_seconds_ms(&text) {
        Some(ms) => Ok(ms),
        None if value.is_string() => parse_rfc3339_ms(&text),
        None => Err(format!("{text} is not a time in seconds since the epoch")),
    }
}

/// `1714564800` or `-1.25` (seconds) as milliseconds; `None` when it is not such a number.
fn epoch_seconds_ms(text: &str) -> Option<i64> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || whole.len() > 15 || !all_digits(whole) || !all_digits(fraction) {
        return None;
    }
    let millis =
        fraction.bytes().chain(std::iter::repeat(b'0')).take(3).fold(0i64, |acc, d| acc * 10 + i64::from(d - b'0'));
    let ms = whole.parse::<i64>().ok()? * 1000 + millis;
    Some(if negative { -ms } else { ms })
}

/// A time as kafka-rest writes an `Instant` (ISO-8601, UTC): milliseconds
/// only when there are some.
pub fn format_instant(ms: i64) -> String {
    let text = format_rfc3339_ms(ms);
    if ms.rem_euclid(1000) == 0 { text.replace(".000Z", "Z") } else { text }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn times_are_iso_text_or_epoch_seconds() {
        assert_eq!(timestamp_ms(&json!("2024-05-01T12:00:00.250Z")), Ok(1_714_564_800_250));
        assert_eq!(timestamp_ms(&json!(1_714_564_800)), Ok(1_714_564_800_000));
        assert_eq!(timestamp_ms(&json!(1_714_564_800.25)), Ok(1_714_564_800_250));
        assert_eq!(timestamp_ms(&json!("1714564800.5")), Ok(1_714_564_800_500));
        assert_eq!(timestamp_ms(&json!(-1.5)), Ok(-1_500));
        assert!(timestamp_ms(&json!("yesterday")).is_err());
        assert!(timestamp_ms(&json!(true)).is_err());
        assert!(timestamp_ms(&json!("1e10")).is_err());
    }

    #[test]
    fn whole_seconds_are_written_without_a_fraction() {
        assert_eq!(format_instant(1_714_564_800_000), "2024-05-01T12:00:00Z");
        assert_eq!(format_instant(1_714_564_800_250), "2024-05-01T12:00:00.250Z");
    }
}
