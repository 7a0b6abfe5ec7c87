//! Records in a schema's JSON form turned into what Confluent's serializers
//! write, and back: the payload after the 5-byte header (magic byte, schema
//! id) and the whole framed value.
//!
//! | schema | JSON form | payload |
//! |---|---|---|
//! | Avro | Avro's JSON encoding (a union as `{"string": "x"}`) | the binary datum |
//! | JSON Schema | the document itself, validated against the schema | the document as compact UTF-8 JSON |
//! | Protobuf | the Protobuf JSON mapping | message indexes (zig-zag varints), then the message |
//!
//! A JSON Schema with references is validated against its root document only.

use prost::Message as _;
use prost_reflect::{DynamicMessage, MessageDescriptor};
use serde_json::Value;

use crate::framing::{MAGIC_BYTE, encode_message_indexes, read_message_indexes};
use crate::{Model, ParsedSchema, SchemaType};

/// Encodes records of one schema (and, for Protobuf, one message type).
#[derive(Debug)]
pub struct Codec {
    kind: Kind,
    schema: ParsedSchema,
}

#[derive(Debug)]
enum Kind {
    Avro,
    Json(Box<jsonschema::Validator>),
    Protobuf { message: MessageDescriptor, indexes: Vec<i32> },
}

/// The Protobuf messages of the schema's own file, by full name, in declaration order (nested ones after their parent).
fn messages_of(model: &crate::protobuf::ProtoModel) -> Vec<MessageDescriptor> {
    fn walk(m: MessageDescriptor, out: &mut Vec<MessageDescriptor>) {
        let children: Vec<MessageDescriptor> = m.child_messages().filter(|c| !c.is_map_entry()).collect();
        out.push(m);
        for c in children {
            walk(c, out);
        }
    }
    let mut out = Vec::new();
    if let Some(file) = model.pool.get_file_by_name(crate::protobuf::MAIN_FILE) {
        for m in file.messages() {
            walk(m, &mut out);
        }
    }
    out
}

/// The message indexes of `message` in its file, as Confluent's serializers compute them.
fn indexes_of(message: &MessageDescriptor) -> Vec<i32> {
    let mut path = Vec::new();
    let mut current = message.clone();
    loop {
        let (siblings, parent): (Vec<MessageDescriptor>, Option<MessageDescriptor>) = match current.parent_message() {
            Some(p) => (p.child_messages().collect(), Some(p)),
            None => (current.parent_file().messages().collect(), None),
        };
        let at = siblings.iter().position(|m| m.full_name() == current.full_name()).unwrap_or(0);
        path.push(at as i32);
        match parent {
            Some(p) => current = p,
            None => break,
        }
    }
    path.reverse();
    path
}

impl Codec {
    /// A codec writing records of `schema`; `message` picks the Protobuf
    /// message (full name, or the name inside the file's package) and is
    /// needed when the file declares more than one top-level message.
    pub fn new(schema: &ParsedSchema, message: Option<&str>) -> Result<Codec, String> {
        let kind = match schema.model() {
            Model::Avro(_) => Kind::Avro,
            Model::Json(m) => {
                let root = m.docs[0].json.to_serde();
                let validator =
                    jsonschema::validator_for(&root).map_err(|e| format!("the JSON schema cannot validate: {e}"))?;
                Kind::Json(Box::new(validator))
            }
            Model::Protobuf(m) => {
                let all = messages_of(m);
                let chosen = match message {
                    Some(name) => all
                        .iter()
                        .find(|d| {
                            d.full_name() == name || d.full_name().ends_with(&format!(".{name}")) || d.name() == name
                        })
                        .cloned()
                        .ok_or_else(|| {
                            let names: Vec<&str> = all.iter().map(MessageDescriptor::full_name).collect();
                            format!("the schema has no message {name} (it has {})", names.join(", "))
                        })?,
                    None => {
                        let top: Vec<MessageDescriptor> =
                            all.iter().filter(|d| d.parent_message().is_none()).cloned().collect();
                        match top.as_slice() {
                            [one] => one.clone(),
                            [] => return Err("the schema declares no message".to_string()),
                            several => {
                                let names: Vec<&str> = several.iter().map(MessageDescriptor::full_name).collect();
                                return Err(format!(
                                    "the schema declares {} messages ({}); pick one with --message",
                                    several.len(),
                                    names.join(", ")
                                ));
                            }
                        }
                    }
                };
                let indexes = indexes_of(&chosen);
                Kind::Protobuf { message: chosen, indexes }
            }
        };
        Ok(Codec { kind, schema: schema.clone() })
    }

    /// The schema's type.
    pub fn schema_type(&self) -> SchemaType {
        self.schema.schema_type()
    }

    /// The full name of the Protobuf message written, if any.
    pub fn message_name(&self) -> Option<&str> {
        match &self.kind {
            Kind::Protobuf { message, .. } => Some(message.full_name()),
            _ => None,
        }
    }

    /// `value` as the payload after the 5-byte header; the error says which
    /// field is wrong and why.
    pub fn encode(&self, value: &Value) -> Result<Vec<u8>, String> {
        match &self.kind {
            Kind::Avro => {
                self.schema.avro_datum_from_json(value).unwrap_or_else(|| Err("not an Avro schema".to_string()))
            }
            Kind::Json(validator) => {
                if let Some(first) = validator.iter_errors(value).next() {
                    let at = first.instance_path().to_string();
                    let at = if at.is_empty() { "the document".to_string() } else { format!("'{at}'") };
                    return Err(format!("does not match the schema at {at}: {first}"));
                }
                serde_json::to_vec(value).map_err(|e| e.to_string())
            }
            Kind::Protobuf { message, indexes } => {
                let decoded = DynamicMessage::deserialize(message.clone(), value.clone())
                    .map_err(|e| format!("is not a {} in the Protobuf JSON mapping: {e}", message.full_name()))?;
                let mut out = encode_message_indexes(indexes);
                decoded.encode(&mut out).map_err(|e| e.to_string())?;
                Ok(out)
            }
        }
    }

    /// `value` framed as Confluent's serializers frame it, under schema `id`.
    pub fn framed(&self, id: i32, value: &Value) -> Result<Vec<u8>, String> {
        let payload = self.encode(value)?;
        let mut out = Vec::with_capacity(5 + payload.len());
        out.push(MAGIC_BYTE);
        out.extend_from_slice(&id.to_be_bytes());
        out.extend_from_slice(&payload);
        Ok(out)
    }
}

/// A payload written with `schema` (the bytes after the 5-byte header) in
/// the schema's JSON form.
pub fn decode(schema: &ParsedSchema, payload: &[u8]) -> Result<Value, String> {
    match schema.model() {
        Model::Avro(_) => schema.avro_datum_to_json(payload).unwrap_or_else(|| Err("not an Avro schema".to_string())),
        Model::Json(_) => serde_json::from_slice(payload).map_err(|e| format!("not JSON: {e}")),
        Model::Protobuf(m) => {
            let (indexes, used) = read_message_indexes(payload).map_err(|e| e.to_string())?;
            let file = m
                .pool
                .get_file_by_name(crate::protobuf::MAIN_FILE)
                .ok_or_else(|| "the schema did not compile".to_string())?;
            let mut current: Option<MessageDescriptor> = None;
            for &i in &indexes {
                let next = match &current {
                    None => file.messages().nth(i as usize),
                    Some(m) => m.child_messages().nth(i as usize),
                };
                current =
                    Some(next.ok_or_else(|| format!("message indexes {indexes:?} name no message of the schema"))?);
            }
            let descriptor = current.ok_or_else(|| "no message indexes".to_string())?;
            let message = DynamicMessage::decode(descriptor.clone(), &payload[used..])
                .map_err(|e| format!("not a {}: {e}", descriptor.full_name()))?;
            serde_json::to_value(&message).map_err(|e| e.to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{NoReferences, ParseOptions, SchemaSource, parse};
    use serde_json::json;

    fn schema(kind: SchemaType, text: &str) -> ParsedSchema {
        let source = SchemaSource { schema_type: kind, schema: text.to_string(), references: Vec::new() };
        parse(&source, &NoReferences, &ParseOptions::default()).expect("valid schema")
    }

    #[test]
    fn avro_records_are_framed_like_confluents_serializer() {
        let s = schema(
            SchemaType::Avro,
            r#"{"type":"record","name":"Order","fields":[{"name":"id","type":"int"},{"name":"note","type":["null","string"]}]}"#,
        );
        let codec = Codec::new(&s, None).expect("codec");
        let framed = codec.framed(7, &json!({"id": 3, "note": {"string": "hi"}})).expect("encodes");
        // magic, id 7, zig-zag 3, union branch 1, string of 2 bytes.
        assert_eq!(framed, vec![0, 0, 0, 0, 7, 6, 2, 4, b'h', b'i']);
        assert_eq!(decode(&s, &framed[5..]).expect("decodes"), json!({"id": 3, "note": {"string": "hi"}}));
        assert!(codec.encode(&json!({"id": "x"})).is_err());
    }

    #[test]
    fn json_schema_values_are_validated_before_they_are_written() {
        let s = schema(
            SchemaType::Json,
            r#"{"type":"object","properties":{"qty":{"type":"integer","minimum":1}},"required":["qty"]}"#,
        );
        let codec = Codec::new(&s, None).expect("codec");
        assert_eq!(codec.framed(1, &json!({"qty": 2})).expect("valid"), b"\0\0\0\0\x01{\"qty\":2}".to_vec());
        let err = codec.encode(&json!({"qty": 0})).expect_err("below the minimum");
        assert!(err.contains("/qty"), "{err}");
        assert!(codec.encode(&json!({})).expect_err("missing").contains("qty"));
        assert_eq!(decode(&s, b"{\"qty\":2}").expect("decodes"), json!({"qty": 2}));
    }

    #[test]
    fn protobuf_messages_carry_their_indexes() {
        let text = r#"syntax = "proto3";
package shop;
message Order { int32 id = 1; string item = 2; message Line { int64 qty = 1; } }
message Refund { string reason = 1; }
"#;
        let s = schema(SchemaType::Protobuf, text);
        let err = Codec::new(&s, None).expect_err("two messages");
        assert!(err.contains("shop.Order, shop.Refund") && err.contains("--message"), "{err}");
        let order = Codec::new(&s, Some("Order")).expect("codec");
        let framed = order.framed(5, &json!({"id": 1, "item": "tea"})).expect("encodes");
        // magic, id, indexes [0] as one zero byte, field 1 varint 1, field 2 "tea".
        assert_eq!(framed, vec![0, 0, 0, 0, 5, 0, 8, 1, 18, 3, b't', b'e', b'a']);
        assert_eq!(decode(&s, &framed[5..]).expect("decodes"), json!({"id": 1, "item": "tea"}));
        let refund = Codec::new(&s, Some("shop.Refund")).expect("codec");
        let payload = refund.encode(&json!({"reason": "late"})).expect("encodes");
        assert_eq!(&payload[..2], &[2, 2], "indexes [1]");
        assert_eq!(decode(&s, &payload).expect("decodes"), json!({"reason": "late"}));
        let line = Codec::new(&s, Some("shop.Order.Line")).expect("nested");
        let payload = line.encode(&json!({"qty": "3"})).expect("encodes");
        assert_eq!(&payload[..3], &[4, 0, 0], "indexes [0, 0]");
        assert_eq!(decode(&s, &payload).expect("decodes"), json!({"qty": "3"}));
        assert!(order.encode(&json!({"nope": 1})).is_err());
        assert!(Codec::new(&s, Some("Missing")).is_err());
    }
}
