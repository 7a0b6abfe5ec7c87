//! The record format of the `_schemas` topic, byte-compatible with the
//! registry Confluent ships, so an existing `_schemas` topic can be read and
//! the tools that read ours keep working.
//!
//! Keys are JSON objects with a `keytype`; their field order is fixed,
//! because compaction compares key bytes:
//!
//! ```text
//! {"keytype":"SCHEMA","subject":"s","version":1,"magic":1}   value: SchemaValue, null = hard delete
//! {"keytype":"CONFIG","subject":null,"magic":0}              value: ConfigValue (global when subject is null)
//! {"keytype":"MODE","subject":"s","magic":0}                 value: {"subject":"s","mode":"READONLY"}
//! {"keytype":"DELETE_SUBJECT","subject":"s","magic":0}       value: {"subject":"s","version":N}: soft-delete ≤ N
//! {"keytype":"CLEAR_SUBJECT","subject":"s","magic":0}        value: {"subject":"s"}: forget soft-deleted versions
//! {"keytype":"NOOP","magic":0}                               value: none, or {"maxId":N} (see NoopValue)
//! ```
//!
//! Unknown key types (contexts, associations, keys of newer releases) are
//! skipped by the reader, never an error.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A reference from one schema to a version of another subject.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Reference {
    /// Import name, full name or `$ref` URL the referring schema uses.
    pub name: String,
    /// Subject of the referenced schema.
    pub subject: String,
    /// Version of the referenced schema.
    pub version: i32,
}

/// A key of the `_schemas` topic.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Key {
    /// One version of a subject.
    Schema {
        /// Subject.
        subject: String,
        /// Version.
        version: i32,
    },
    /// Compatibility config; `None` = global.
    Config(Option<String>),
    /// Mode; `None` = global.
    Mode(Option<String>),
    /// Soft delete of a whole subject.
    DeleteSubject(String),
    /// Forget the soft-deleted versions of a subject.
    ClearSubject(String),
    /// Written to find the end of the log.
    Noop,
}

fn subject_json(subject: Option<&str>) -> String {
    match subject {
        Some(s) => Value::String(s.to_string()).to_string(),
        None => "null".to_string(),
    }
}

impl Key {
    /// The key bytes, field for field as Confluent's registry writes them.
    pub fn encode(&self) -> Vec<u8> {
        let text = match self {
            Key::Schema { subject, version } => format!(
                r#"{{"keytype":"SCHEMA","subject":{},"version":{version},"magic":1}}"#,
                subject_json(Some(subject))
            ),
            Key::Config(subject) => {
                format!(r#"{{"keytype":"CONFIG","subject":{},"magic":0}}"#, subject_json(subject.as_deref()))
            }
            Key::Mode(subject) => {
                format!(r#"{{"keytype":"MODE","subject":{},"magic":0}}"#, subject_json(subject.as_deref()))
            }
            Key::DeleteSubject(subject) => {
                format!(r#"{{"keytype":"DELETE_SUBJECT","subject":{},"magic":0}}"#, subject_json(Some(subject)))
            }
            Key::ClearSubject(subject) => {
                format!(r#"{{"keytype":"CLEAR_SUBJECT","subject":{},"magic":0}}"#, subject_json(Some(subject)))
            }
            Key::Noop => r#"{"keytype":"NOOP","magic":0}"#.to_string(),
        };
        text.into_bytes()
    }

    /// Parses a key. `Ok(None)` for a well-formed key of a type this
    /// registry does not use; `Err` for bytes that are not a key at all.
    pub fn decode(bytes: &[u8]) -> Result<Option<Key>, String> {
        let value: Value = serde_json::from_slice(bytes).map_err(|e| format!("key is not JSON: {e}"))?;
        let object = value.as_object().ok_or("key is not a JSON object")?;
        let keytype = object.get("keytype").and_then(Value::as_str).ok_or("key has no keytype")?;
        let subject = match object.get("subject") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => return Err(format!("key subject is not a string: {other}")),
        };
        let need_subject = || subject.clone().ok_or_else(|| format!("{keytype} key has no subject"));
        Ok(Some(match keytype {
            "SCHEMA" => {
                let version = object
                    .get("version")
                    .and_then(Value::as_i64)
                    .and_then(|v| i32::try_from(v).ok())
                    .ok_or("SCHEMA key has no valid version")?;
                Key::Schema { subject: need_subject()?, version }
            }
            "CONFIG" => Key::Config(subject),
            "MODE" => Key::Mode(subject),
            "DELETE_SUBJECT" => Key::DeleteSubject(need_subject()?),
            "CLEAR_SUBJECT" => Key::ClearSubject(need_subject()?),
            "NOOP" => Key::Noop,
            _ => return Ok(None),
        }))
    }
}

/// The value of a `SCHEMA` key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SchemaValue {
    /// Subject.
    pub subject: String,
    /// Version within the subject.
    pub version: i32,
    /// Global id.
    pub id: i32,
    /// `AVRO` (when absent), `JSON` or `PROTOBUF`.
    #[serde(rename = "schemaType", default, skip_serializing_if = "Option::is_none")]
    pub schema_type: Option<String>,
    /// References to other subjects' versions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub references: Vec<Reference>,
    /// Data-contract metadata, stored verbatim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
    /// Data-contract rules, stored verbatim.
    #[serde(rename = "ruleSet", default, skip_serializing_if = "Option::is_none")]
    pub rule_set: Option<Value>,
    /// The schema text.
    pub schema: String,
    /// Soft-deleted.
    #[serde(default)]
    pub deleted: bool,
}

impl SchemaValue {
    /// The schema type, `AVRO` when the record leaves it out.
    pub fn schema_type(&self) -> &str {
        self.schema_type.as_deref().unwrap_or("AVRO")
    }
}

/// The value of a `CONFIG` key: `compatibilityLevel` and the other config
/// fields (`normalize`, `compatibilityGroup`, metadata and rule defaults),
/// kept as given.
pub type ConfigValue = Map<String, Value>;

/// The value of a `MODE` key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModeValue {
    /// Subject, absent for the global mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// `READWRITE`, `READONLY`, `READONLY_OVERRIDE` or `IMPORT`.
    pub mode: String,
}

/// The value of a `DELETE_SUBJECT` key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteSubjectValue {
    /// Subject.
    pub subject: String,
    /// Every version up to this one is soft-deleted.
    pub version: i32,
}

/// The value Tributary gives a `NOOP` key: the largest schema id ever
/// assigned. A permanent delete writes one after its tombstones, so that
/// when compaction has removed a deleted schema with the largest id a
/// restarted registry still never hands that id out again. (Confluent's
/// reader skips `NOOP` records without reading their values.)
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoopValue {
    /// The largest id assigned so far.
    #[serde(rename = "maxId")]
    pub max_id: i32,
}

/// The value of a `CLEAR_SUBJECT` key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClearSubjectValue {
    /// Subject.
    pub subject: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_have_confluents_bytes() {
        let k = Key::Schema { subject: "orders-value".to_string(), version: 3 };
        assert_eq!(k.encode(), br#"{"keytype":"SCHEMA","subject":"orders-value","version":3,"magic":1}"#);
        assert_eq!(Key::Config(None).encode(), br#"{"keytype":"CONFIG","subject":null,"magic":0}"#);
        assert_eq!(Key::Noop.encode(), br#"{"keytype":"NOOP","magic":0}"#);
        for key in [
            k,
            Key::Config(Some("a\"b".to_string())),
            Key::Mode(None),
            Key::DeleteSubject("s".to_string()),
            Key::ClearSubject("s".to_string()),
            Key::Noop,
        ] {
            assert_eq!(Key::decode(&key.encode()), Ok(Some(key)));
        }
    }

    #[test]
    fn foreign_keys_are_tolerated() {
        assert_eq!(Key::decode(br#"{"keytype":"CONTEXT","tenant":"t","context":"c","magic":0}"#), Ok(None));
        let reordered = Key::decode(br#"{"magic":0,"subject":"s","version":1,"keytype":"SCHEMA"}"#);
        assert_eq!(reordered, Ok(Some(Key::Schema { subject: "s".to_string(), version: 1 })));
        assert!(Key::decode(b"\xff").is_err());
        assert!(Key::decode(br#"{"keytype":"SCHEMA","subject":"s"}"#).is_err());
    }

    #[test]
    fn schema_values_round_trip_and_default_to_avro() {
        let v: SchemaValue =
            serde_json::from_str(r#"{"subject":"s","version":1,"id":7,"schema":"\"string\"","deleted":false}"#)
                .expect("parses");
        assert_eq!(v.schema_type(), "AVRO");
        assert!(v.references.is_empty());
        let text = serde_json::to_string(&v).expect("serializes");
        assert!(!text.contains("schemaType") && !text.contains("references"), "{text}");
    }
}
