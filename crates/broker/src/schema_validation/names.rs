//! The record name of a registered schema, which `RecordNameStrategy` and
//! `TopicRecordNameStrategy` put in the subject:
//!
//! | schema type | record name |
//! |---|---|
//! | AVRO | full name of a top-level `record` (or `error`): `namespace.name`, or `name` if it has a dot |
//! | PROTOBUF | `package.Name` of the first top-level `message` (the first `enum` if there is none) |
//! | JSON | the top-level `title` |
//!
//! Other schemas (an Avro union or primitive, a JSON schema without a title)
//! have none. Only enough of each format is read to find the name: JSON
//! through `serde_json`, Protobuf through a small tokenizer that skips
//! comments and string literals and tracks brace depth.

use serde_json::Value;

/// The record name of `schema`, of type `schema_type` (`AVRO` when absent).
pub fn record_name(schema_type: Option<&str>, schema: &str) -> Option<String> {
    match schema_type.unwrap_or("AVRO") {
        "AVRO" => avro_full_name(schema),
        "JSON" => json_title(schema),
        "PROTOBUF" => protobuf_first_type(schema),
        _ => None,
    }
}

fn avro_full_name(schema: &str) -> Option<String> {
    let value: Value = serde_json::from_str(schema).ok()?;
    let object = value.as_object()?;
    let kind = object.get("type")?.as_str()?;
    if kind != "record" && kind != "error" {
        return None;
    }
    let name = object.get("name")?.as_str()?;
    if name.is_empty() {
        return None;
    }
    if name.contains('.') {
        return Some(name.to_string());
    }
    match object.get("namespace").and_then(Value::as_str) {
        Some(namespace) if !namespace.is_empty() => Some(format!("{namespace}.{name}")),
        _ => Some(name.to_string()),
    }
}

fn json_title(schema: &str) -> Option<String> {
    let value: Value = serde_json::from_str(schema).ok()?;
    value.as_object()?.get("title")?.as_str().map(str::to_string)
}

/// A Protobuf token: an identifier (dots allowed, so `a.b.C` is one token)
/// or one punctuation character. Strings, numbers and comments are skipped.
#[derive(Debug, PartialEq, Eq)]
enum Token<'a> {
    Ident(&'a str),
    Punct(u8),
}

struct Tokens<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Iterator for Tokens<'a> {
    type Item = Token<'a>;

    fn next(&mut self) -> Option<Token<'a>> {
        let bytes = self.text.as_bytes();
        loop {
            let &b = bytes.get(self.at)?;
            match b {
                b if b.is_ascii_whitespace() => self.at += 1,
                b'/' if bytes.get(self.at + 1) == Some(&b'/') => {
                    self.at = find_from(bytes, self.at, b"\n").map_or(bytes.len(), |i| i + 1);
                }
                b'/' if bytes.get(self.at + 1) == Some(&b'*') => {
                    self.at = find_from(bytes, self.at + 2, b"*/").map_or(bytes.len(), |i| i + 2);
                }
                b'"' | b'\'' => {
                    let mut i = self.at + 1;
                    while let Some(&c) = bytes.get(i) {
                        i += if c == b'\\' { 2 } else { 1 };
                        if c == b {
                            break;
                        }
                    }
                    self.at = i.min(bytes.len());
                }
                b if b.is_ascii_alphabetic() || b == b'_' => {
                    let start = self.at;
                    while bytes.get(self.at).is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c == b'.') {
                        self.at += 1;
                    }
                    return Some(Token::Ident(&self.text[start..self.at]));
                }
                b if b.is_ascii_digit() => {
                    while bytes.get(self.at).is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'.') {
                        self.at += 1;
                    }
                }
                b => {
                    self.at += 1;
                    return Some(Token::Punct(b));
                }
            }
        }
    }
}

fn find_from(haystack: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    haystack.get(from..)?.windows(needle.len()).position(|w| w == needle).map(|i| i + from)
}

fn protobuf_first_type(schema: &str) -> Option<String> {
    let mut tokens = Tokens { text: schema, at: 0 };
    let mut depth = 0usize;
    let mut package: Option<&str> = None;
    let mut message: Option<&str> = None;
    let mut first_enum: Option<&str> = None;
    while let Some(token) = tokens.next() {
        match token {
            Token::Punct(b'{') => depth += 1,
            Token::Punct(b'}') => depth = depth.saturating_sub(1),
            Token::Ident(keyword) if depth == 0 => {
                let slot = match keyword {
                    "package" => &mut package,
                    "message" => &mut message,
                    "enum" => &mut first_enum,
                    _ => continue,
                };
                match tokens.next() {
                    Some(Token::Ident(name)) if slot.is_none() => *slot = Some(name),
                    Some(Token::Punct(b'{')) => depth += 1,
                    _ => {}
                }
                if package.is_some() && message.is_some() {
                    break;
                }
            }
            _ => {}
        }
    }
    let name = message.or(first_enum)?;
    Some(match package {
        Some(p) if !p.is_empty() => format!("{p}.{name}"),
        _ => name.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn avro_records_have_full_names() {
        let record = r#"{"type":"record","name":"Order","namespace":"shop.v1","fields":[]}"#;
        assert_eq!(record_name(None, record).as_deref(), Some("shop.v1.Order"));
        assert_eq!(record_name(Some("AVRO"), record).as_deref(), Some("shop.v1.Order"));
        let dotted = r#"{"type":"record","name":"a.b.Order","namespace":"ignored","fields":[]}"#;
        assert_eq!(record_name(None, dotted).as_deref(), Some("a.b.Order"));
        let bare = r#"{"type":"record","name":"Order","namespace":"","fields":[]}"#;
        assert_eq!(record_name(None, bare).as_deref(), Some("Order"));
        assert_eq!(record_name(None, r#"{"type":"error","name":"Oops","fields":[]}"#).as_deref(), Some("Oops"));
        assert_eq!(record_name(None, r#""string""#), None);
        assert_eq!(record_name(None, r#"["null","string"]"#), None);
        assert_eq!(record_name(None, r#"{"type":"enum","name":"E","symbols":["A"]}"#), None);
        assert_eq!(record_name(None, "not json"), None);
    }

    #[test]
    fn json_schemas_are_named_by_title() {
        let schema = r#"{"title":"Order","type":"object","properties":{"title":{"type":"string"}}}"#;
        assert_eq!(record_name(Some("JSON"), schema).as_deref(), Some("Order"));
        assert_eq!(record_name(Some("JSON"), r#"{"type":"object"}"#), None);
        assert_eq!(record_name(Some("JSON"), "true"), None);
    }

    #[test]
    fn protobuf_takes_the_package_and_first_top_level_message() {
        let proto = r#"
            // message Commented {}
            syntax = "proto3";
            /* package wrong; message AlsoCommented {} */
            import "google/protobuf/timestamp.proto";
            option java_package = "message Fake {";
            enum Status { OK = 0; }
            message Order {
              message Line { string sku = 1; }
              Line line = 1;
              string note = 2 [json_name = "n}"];
            }
            message Second {}
            package shop.v1;
        "#;
        assert_eq!(record_name(Some("PROTOBUF"), proto).as_deref(), Some("shop.v1.Order"));
        let enum_only = "syntax = \"proto3\";\nenum Color { RED = 0; }\n";
        assert_eq!(record_name(Some("PROTOBUF"), enum_only).as_deref(), Some("Color"));
        assert_eq!(record_name(Some("PROTOBUF"), "syntax = \"proto3\";"), None);
        assert_eq!(record_name(Some("PROTOBUF"), "message"), None);
        assert_eq!(record_name(Some("PROTOBUF"), "\"unterminated"), None);
        assert_eq!(record_name(Some("PROTOBUF"), "/* unterminated"), None);
    }

    #[test]
    fn unknown_types_have_no_name() {
        assert_eq!(record_name(Some("XML"), "<a/>"), None);
    }
}
