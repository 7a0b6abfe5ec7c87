//! A small, order-preserving JSON tree with a depth-bounded parser.
//!
//! Avro and JSON Schema texts are parsed here rather than with `serde_json` for three reasons:
//! the canonical text Confluent returns keeps object members in their written order (and
//! `serde_json::Map` sorts them unless a workspace-wide feature is switched on), number literals
//! must be reprinted the way the JVM libraries print them, and the nesting depth has to be bounded
//! *before* any recursive descent so that hostile input (`[[[[...`) cannot overflow the stack.
//!
//! The parser is recursive, but every recursion first checks the depth against the caller's
//! limit, so the stack used is bounded by `max_depth` frames.

use std::fmt::Write as _;

/// A parsed JSON value. Objects keep their members in written order; a repeated key keeps the
/// position of its first occurrence and the value of its last (as Jackson does).
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    Null,
    Bool(bool),
    /// The literal text of a number, already checked against the JSON grammar.
    Number(String),
    String(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

/// Why a text is not acceptable JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JsonError {
    /// Syntax error at a byte offset.
    Syntax { offset: usize, message: &'static str },
    /// Nesting deeper than the limit.
    TooDeep(usize),
}

impl std::fmt::Display for JsonError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JsonError::Syntax { offset, message } => write!(f, "invalid JSON at byte {offset}: {message}"),
            JsonError::TooDeep(limit) => write!(f, "JSON nesting is deeper than the limit of {limit} levels"),
        }
    }
}

impl Json {
    /// Member lookup on an object (last value wins, see [`Json`]); `None` for other values.
    pub fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Object(members) => members.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Json::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&[Json]> {
        match self {
            Json::Array(items) => Some(items),
            _ => None,
        }
    }

    pub fn as_object(&self) -> Option<&[(String, Json)]> {
        match self {
            Json::Object(members) => Some(members),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Json::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// The number as `f64`, if this is a number.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Json::Number(n) => n.parse::<f64>().ok(),
            _ => None,
        }
    }

    /// The number as `i64` when it is an integer literal (no fraction, no exponent) in range.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Json::Number(n) if is_integer_literal(n) => n.parse::<i64>().ok(),
            _ => None,
        }
    }

    /// True for a number literal with neither fraction nor exponent.
    pub fn is_integer(&self) -> bool {
        matches!(self, Json::Number(n) if is_integer_literal(n))
    }

    /// A short name of the JSON kind, for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Json::Null => "null",
            Json::Bool(_) => "boolean",
            Json::Number(_) => "number",
            Json::String(_) => "string",
            Json::Array(_) => "array",
            Json::Object(_) => "object",
        }
    }

    /// Converts to a `serde_json::Value` (for libraries that need one). Depth is bounded by the
    /// parse that produced `self`.
    pub fn to_serde(&self) -> serde_json::Value {
        match self {
            Json::Null => serde_json::Value::Null,
            Json::Bool(b) => serde_json::Value::Bool(*b),
            Json::Number(n) => {
                if let Ok(i) = n.parse::<i64>() {
                    serde_json::Value::from(i)
                } else if let Ok(u) = n.parse::<u64>() {
                    serde_json::Value::from(u)
                } else {
                    n.parse::<f64>()
                        .ok()
                        .and_then(serde_json::Number::from_f64)
                        .map(serde_json::Value::Number)
                        .unwrap_or(serde_json::Value::Null)
                }
            }
            Json::String(s) => serde_json::Value::String(s.clone()),
            Json::Array(items) => serde_json::Value::Array(items.iter().map(Json::to_serde).collect()),
            Json::Object(members) => {
                let mut map = serde_json::Map::new();
                for (k, v) in members {
                    map.insert(k.clone(), v.to_serde());
                }
                serde_json::Value::Object(map)
            }
        }
    }
}

fn is_integer_literal(n: &str) -> bool {
    !n.contains(['.', 'e', 'E'])
}

/// Parses `text` as one JSON value, rejecting nesting deeper than `max_depth`.
pub fn parse(text: &str, max_depth: usize) -> Result<Json, JsonError> {
    let mut parser = Parser { bytes: text.as_bytes(), text, pos: 0, max_depth };
    parser.skip_ws();
    let value = parser.value(0)?;
    parser.skip_ws();
    if parser.pos != parser.bytes.len() {
        return Err(parser.err("unexpected text after the JSON value"));
    }
    Ok(value)
}

/// Returns the maximum nesting depth of arrays and objects in `text` without building anything,
/// stopping as soon as `limit` is exceeded. Strings are skipped so brackets inside them do not
/// count. Used as a cheap guard before handing text to recursive parsers.
pub fn nesting_exceeds(text: &str, limit: usize) -> bool {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &b in text.as_bytes() {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > limit {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

struct Parser<'a> {
    bytes: &'a [u8],
    text: &'a str,
    pos: usize,
    max_depth: usize,
}

impl Parser<'_> {
    fn err(&self, message: &'static str) -> JsonError {
        JsonError::Syntax { offset: self.pos, message }
    }

    fn skip_ws(&mut self) {
        while let Some(&b) = self.bytes.get(self.pos) {
            if matches!(b, b' ' | b'\t' | b'\n' | b'\r') {
                self.pos += 1;
            } else {
                break;
            }
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn value(&mut self, depth: usize) -> Result<Json, JsonError> {
        match self.peek() {
            None => Err(self.err("unexpected end of input")),
            Some(b'{') => self.object(depth + 1),
            Some(b'[') => self.array(depth + 1),
            Some(b'"') => Ok(Json::String(self.string()?)),
            Some(b't') => self.keyword("true", Json::Bool(true)),
            Some(b'f') => self.keyword("false", Json::Bool(false)),
            Some(b'n') => self.keyword("null", Json::Null),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(_) => Err(self.err("expected a JSON value")),
        }
    }

    fn keyword(&mut self, word: &str, value: Json) -> Result<Json, JsonError> {
        if self.bytes[self.pos..].starts_with(word.as_bytes()) {
            self.pos += word.len();
            Ok(value)
        } else {
            Err(self.err("expected a JSON value"))
        }
    }

    fn object(&mut self, depth: usize) -> Result<Json, JsonError> {
        if depth > self.max_depth {
            return Err(JsonError::TooDeep(self.max_depth));
        }
        self.pos += 1; // '{'
        let mut members: Vec<(String, Json)> = Vec::new();
        self.skip_ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(Json::Object(members));
        }
        loop {
            self.skip_ws();
            if self.peek() != Some(b'"') {
                return Err(self.err("expected a member name"));
            }
            let key = self.string()?;
            self.skip_ws();
            if self.peek() != Some(b':') {
                return Err(self.err("expected ':'"));
            }
            self.pos += 1;
            self.skip_ws();
            let value = self.value(depth)?;
            if let Some(slot) = members.iter_mut().find(|(k, _)| *k == key) {
                slot.1 = value;
            } else {
                members.push((key, value));
            }
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(Json::Object(members));
                }
                _ => return Err(self.err("expected ',' or '}'")),
            }
        }
    }

    fn array(&mut self, depth: usize) -> Result<Json, JsonError> {
        if depth > self.max_depth {
            return Err(JsonError::TooDeep(self.max_depth));
        }
        self.pos += 1; // '['
        let mut items = Vec::new();
        self.skip_ws();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(Json::Array(items));
        }
        loop {
            self.skip_ws();
            items.push(self.value(depth)?);
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return Ok(Json::Array(items));
                }
                _ => return Err(self.err("expected ',' or ']'")),
            }
        }
    }

    fn number(&mut self) -> Result<Json, JsonError> {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => {
                while matches!(self.peek(), Some(b'0'..=b'9')) {
                    self.pos += 1;
                }
            }
            _ => return Err(self.err("invalid number")),
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return Err(self.err("invalid number"));
            }
            while matches!(self.peek(), Some(b'0'..=b'9')) {
                self.pos += 1;
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.pos += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return Err(self.err("invalid number"));
            }
            while matches!(self.peek(), Some(b'0'..=b'9')) {
                self.pos += 1;
            }
        }
        Ok(Json::Number(self.text[start..self.pos].to_string()))
    }

    fn hex4(&mut self) -> Result<u32, JsonError> {
        let digits = self.bytes.get(self.pos..self.pos + 4).ok_or_else(|| self.err("truncated \\u escape"))?;
        let mut value = 0u32;
        for &d in digits {
            let v = (d as char).to_digit(16).ok_or_else(|| self.err("invalid \\u escape"))?;
            value = value * 16 + v;
        }
        self.pos += 4;
        Ok(value)
    }

    fn string(&mut self) -> Result<String, JsonError> {
        self.pos += 1; // opening quote
        let mut out = String::new();
        loop {
            let start = self.pos;
            while let Some(&b) = self.bytes.get(self.pos) {
                if b == b'"' || b == b'\\' || b < 0x20 {
                    break;
                }
                self.pos += 1;
            }
            out.push_str(&self.text[start..self.pos]);
            match self.peek() {
                None => return Err(self.err("unterminated string")),
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.pos += 1;
                    let escape = self.peek().ok_or_else(|| self.err("unterminated string"))?;
                    self.pos += 1;
                    match escape {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => {
                            let first = self.hex4()?;
                            let code = if (0xD800..0xDC00).contains(&first) {
                                if self.bytes.get(self.pos..self.pos + 2) == Some(b"\\u") {
                                    self.pos += 2;
                                    let second = self.hex4()?;
                                    if !(0xDC00..0xE000).contains(&second) {
                                        return Err(self.err("invalid surrogate pair"));
                                    }
                                    0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00)
                                } else {
                                    return Err(self.err("unpaired surrogate"));
                                }
                            } else {
                                first
                            };
                            out.push(char::from_u32(code).ok_or_else(|| self.err("invalid \\u escape"))?);
                        }
                        _ => return Err(self.err("invalid escape")),
                    }
                }
                Some(_) => return Err(self.err("control character in string")),
            }
        }
    }
}

/// How numbers are reprinted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumberStyle {
    /// As Jackson prints a tree read with exact big decimals: integers as digits, decimals as
    /// `BigDecimal.toString()` (JSON Schema documents).
    BigDecimal,
    /// As Jackson prints a tree read with default settings: integers as digits, decimals through
    /// `double` and `Double.toString()` (Avro schemas).
    Double,
}

/// Writes `value` compactly (no whitespace), keeping member order unless `sort_keys`.
pub fn write_compact(value: &Json, style: NumberStyle, sort_keys: bool, out: &mut String) {
    match value {
        Json::Null => out.push_str("null"),
        Json::Bool(true) => out.push_str("true"),
        Json::Bool(false) => out.push_str("false"),
        Json::Number(n) => out.push_str(&format_number(n, style)),
        Json::String(s) => write_string(s, out),
        Json::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_compact(item, style, sort_keys, out);
            }
            out.push(']');
        }
        Json::Object(members) => {
            out.push('{');
            let mut order: Vec<&(String, Json)> = members.iter().collect();
            if sort_keys {
                // Java's TreeMap orders by UTF-16 code units.
                order.sort_by(|a, b| a.0.encode_utf16().cmp(b.0.encode_utf16()));
            }
            for (i, (k, v)) in order.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(k, out);
                out.push(':');
                write_compact(v, style, sort_keys, out);
            }
            out.push('}');
        }
    }
}

/// Compact text of `value`.
pub fn to_compact(value: &Json, style: NumberStyle, sort_keys: bool) -> String {
    let mut out = String::new();
    write_compact(value, style, sort_keys, &mut out);
    out
}

/// Writes a JSON string literal with Jackson's default escaping: `"`, `\` and control characters
/// are escaped (short forms where JSON has them, `\u00XX` otherwise); everything else is raw.
pub fn write_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Reprints a number literal in the given style.
pub fn format_number(literal: &str, style: NumberStyle) -> String {
    if is_integer_literal(literal) {
        // Jackson reads "-0" as the int 0.
        let digits = literal.trim_start_matches('-');
        if digits.bytes().all(|b| b == b'0') {
            return "0".to_string();
        }
        return literal.to_string();
    }
    match style {
        NumberStyle::BigDecimal => big_decimal_string(literal),
        NumberStyle::Double => match literal.parse::<f64>() {
            Ok(v) => java_double_string(v),
            Err(_) => literal.to_string(),
        },
    }
}

/// `java.math.BigDecimal.toString()` of a JSON decimal literal.
fn big_decimal_string(literal: &str) -> String {
    let (negative, rest) = match literal.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, literal),
    };
    let (mantissa, exponent) = match rest.find(['e', 'E']) {
        Some(i) => (&rest[..i], rest[i + 1..].parse::<i64>().unwrap_or(0)),
        None => (rest, 0),
    };
    let (int_part, frac_part) = match mantissa.find('.') {
        Some(i) => (&mantissa[..i], &mantissa[i + 1..]),
        None => (mantissa, ""),
    };
    let mut digits: String = format!("{int_part}{frac_part}");
    let trimmed = digits.trim_start_matches('0');
    digits = if trimmed.is_empty() { "0".to_string() } else { trimmed.to_string() };
    let scale = frac_part.len() as i64 - exponent;
    let ndigits = digits.len() as i64;
    let adjusted = -scale + (ndigits - 1);
    let mut out = String::new();
    if negative && digits != "0" {
        out.push('-');
    }
    if scale >= 0 && adjusted >= -6 {
        if scale == 0 {
            out.push_str(&digits);
        } else if ndigits > scale {
            let split = (ndigits - scale) as usize;
            out.push_str(&digits[..split]);
            out.push('.');
            out.push_str(&digits[split..]);
        } else {
            out.push_str("0.");
            for _ in 0..(scale - ndigits) {
                out.push('0');
            }
            out.push_str(&digits);
        }
    } else {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        out.push('E');
        if adjusted >= 0 {
            out.push('+');
        }
        let _ = write!(out, "{adjusted}");
    }
    out
}

/// `java.lang.Double.toString(v)` (shortest digits that round-trip, as JDK 19+ prints them).
pub fn java_double_string(v: f64) -> String {
    if v.is_nan() {
        return "NaN".to_string();
    }
    if v.is_infinite() {
        return if v > 0.0 { "Infinity".to_string() } else { "-Infinity".to_string() };
    }
    if v == 0.0 {
        return if v.is_sign_negative() { "-0.0".to_string() } else { "0.0".to_string() };
    }
    // Rust's `{:e}` gives the shortest round-trip digits as d.ddd e N.
    let sci = format!("{:e}", v.abs());
    let (mantissa, exp) = match sci.split_once('e') {
        Some((m, e)) => (m, e.parse::<i32>().unwrap_or(0)),
        None => (sci.as_str(), 0),
    };
    let digits: String = mantissa.chars().filter(|c| c.is_ascii_digit()).collect();
    let mut out = String::new();
    if v < 0.0 {
        out.push('-');
    }
    let abs = v.abs();
    if (1e-3..1e7).contains(&abs) {
        // Plain notation with at least one fractional digit.
        let point = exp + 1; // digits before the decimal point
        if point <= 0 {
            out.push_str("0.");
            for _ in 0..(-point) {
                out.push('0');
            }
            out.push_str(&digits);
        } else {
            let point = point as usize;
            if digits.len() <= point {
                out.push_str(&digits);
                for _ in digits.len()..point {
                    out.push('0');
                }
                out.push_str(".0");
            } else {
                out.push_str(&digits[..point]);
                out.push('.');
                out.push_str(&digits[point..]);
            }
        }
    } else {
        out.push_str(&digits[..1]);
        out.push('.');
        if digits.len() > 1 {
            out.push_str(&digits[1..]);
        } else {
            out.push('0');
        }
        let _ = write!(out, "E{exp}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_member_order_and_last_duplicate() {
        let v = parse(r#"{"b":1,"a":2,"b":3}"#, 10).expect("parse");
        assert_eq!(to_compact(&v, NumberStyle::BigDecimal, false), r#"{"b":3,"a":2}"#);
        assert_eq!(to_compact(&v, NumberStyle::BigDecimal, true), r#"{"a":2,"b":3}"#);
    }

    #[test]
    fn rejects_deep_nesting_without_recursing() {
        let deep = "[".repeat(100_000);
        assert_eq!(parse(&deep, 64), Err(JsonError::TooDeep(64)));
        assert!(nesting_exceeds(&deep, 64));
        assert!(!nesting_exceeds(r#"{"a":"[[[[[["}"#, 2));
    }

    #[test]
    fn numbers_print_like_the_jvm() {
        assert_eq!(format_number("1.0", NumberStyle::BigDecimal), "1.0");
        assert_eq!(format_number("1e2", NumberStyle::BigDecimal), "1E+2");
        assert_eq!(format_number("0.00001", NumberStyle::BigDecimal), "0.00001");
        assert_eq!(format_number("0.0000001", NumberStyle::BigDecimal), "1E-7");
        assert_eq!(format_number("-0", NumberStyle::BigDecimal), "0");
        assert_eq!(format_number("1.50", NumberStyle::Double), "1.5");
        assert_eq!(format_number("1e7", NumberStyle::Double), "1.0E7");
        assert_eq!(format_number("0.001", NumberStyle::Double), "0.001");
        assert_eq!(format_number("0.0001", NumberStyle::Double), "1.0E-4");
        assert_eq!(format_number("123.25", NumberStyle::Double), "123.25");
    }

    #[test]
    fn escapes_like_jackson() {
        let mut s = String::new();
        write_string("a\"b\\c\n\u{1}é/", &mut s);
        assert_eq!(s, "\"a\\\"b\\\\c\\n\\u0001é/\"");
    }

    #[test]
    fn syntax_errors_are_reported() {
        assert!(parse("{\"a\":}", 10).is_err());
        assert!(parse("[1,]", 10).is_err());
        assert!(parse("01", 10).is_err());
        assert!(parse("\"\\ud800\"", 10).is_err());
        assert!(parse("", 10).is_err());
    }
}
