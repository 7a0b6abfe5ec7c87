//! Which schema ids are registered under which subject, rebuilt from the
//! registry's storage topic by applying its records in offset order.
//!
//! The storage topic's records (JSON key → JSON value) that matter here:
//!
//! ```text
//! {"keytype":"SCHEMA","subject":"s","version":1,"magic":1}
//!     → {"subject":"s","version":1,"id":7,"schemaType":"AVRO","schema":"...","deleted":false}
//!       the version is registered (soft-deleted when "deleted" is true;
//!       schemaType is absent for Avro); a null value hard-deletes it
//! {"keytype":"DELETE_SUBJECT","subject":"s","magic":0} → {"subject":"s","version":3}
//!       versions 1..=3 of s are soft-deleted
//! {"keytype":"CLEAR_SUBJECT","subject":"s","magic":0}  → {"subject":"s"}
//!       the soft-deleted versions of s are forgotten
//! ```
//!
//! Every other key type (CONFIG, MODE, NOOP, CONTEXT, ...) and any unknown
//! field is ignored. A version is *live* unless soft-deleted; an id passes
//! validation for a subject only if a live version of that subject has it.
//! For the record strategies the index also keeps each id's record name
//! ([`super::names`]), taken from the stored schema when the id first appears.

use std::collections::{BTreeMap, HashMap};

use serde_json::{Map, Value};

use super::names::record_name;

/// Longest storage-topic key read; a longer one is skipped.
pub const KEY_BYTES_MAX: usize = 64 * 1024;
/// Longest storage-topic value read (the schema text is in it); a longer one is skipped.
pub const VALUE_BYTES_MAX: usize = 8 << 20;
/// Most subject versions the index holds; later registrations are skipped
/// (and logged), so records using them are rejected rather than the broker
/// running out of memory.
pub const VERSIONS_MAX: usize = 1_000_000;

/// One change to the index, parsed from a storage-topic record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A version registered or rewritten (soft-deleted when `deleted`).
    Put {
        /// Subject.
        subject: String,
        /// Version within the subject.
        version: i32,
        /// Global schema id.
        id: i32,
        /// Soft-deleted.
        deleted: bool,
        /// The schema's record name, if it has one.
        record_name: Option<String>,
    },
    /// A version hard-deleted (a tombstone).
    Remove {
        /// Subject.
        subject: String,
        /// Version.
        version: i32,
    },
    /// Versions `1..=version` of a subject soft-deleted.
    DeleteSubject {
        /// Subject.
        subject: String,
        /// Highest version deleted.
        version: i32,
    },
    /// The soft-deleted versions of a subject forgotten.
    ClearSubject {
        /// Subject.
        subject: String,
    },
}

fn field_str<'a>(object: &'a Map<String, Value>, name: &str) -> Result<&'a str, String> {
    object.get(name).and_then(Value::as_str).ok_or_else(|| format!("no string field {name:?}"))
}

fn field_i32(object: &Map<String, Value>, name: &str) -> Result<i32, String> {
    object
        .get(name)
        .and_then(Value::as_i64)
        .and_then(|n| i32::try_from(n).ok())
        .ok_or_else(|| format!("no 32-bit integer field {name:?}"))
}

fn json_object(bytes: &[u8], what: &str) -> Result<Map<String, Value>, String> {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(object)) => Ok(object),
        Ok(_) => Err(format!("the {what} is not a JSON object")),
        Err(e) => Err(format!("the {what} is not JSON: {e}")),
    }
}

/// Parses one storage-topic record. `Ok(None)` for records that do not
/// change the index; `Err` for records that cannot be read (too large,
/// not JSON, missing fields).
pub fn parse_record(key: &[u8], value: Option<&[u8]>) -> Result<Option<Change>, String> {
    if key.len() > KEY_BYTES_MAX {
        return Err(format!("key of {} bytes exceeds {KEY_BYTES_MAX}", key.len()));
    }
    if let Some(v) = value
        && v.len() > VALUE_BYTES_MAX
    {
        return Err(format!("value of {} bytes exceeds {VALUE_BYTES_MAX}", v.len()));
    }
    let key = json_object(key, "key")?;
    let subject = || field_str(&key, "subject").map(str::to_string);
    match field_str(&key, "keytype")? {
        "SCHEMA" => {
            let subject = subject()?;
            let version = field_i32(&key, "version")?;
            let Some(value) = value else {
                return Ok(Some(Change::Remove { subject, version }));
            };
            let value = json_object(value, "value")?;
            let id = field_i32(&value, "id")?;
            let deleted = value.get("deleted").and_then(Value::as_bool).unwrap_or(false);
            let schema_type = value.get("schemaType").and_then(Value::as_str);
            let record_name = value.get("schema").and_then(Value::as_str).and_then(|s| record_name(schema_type, s));
            Ok(Some(Change::Put { subject, version, id, deleted, record_name }))
        }
        "DELETE_SUBJECT" => {
            let Some(value) = value else { return Ok(None) };
            let value = json_object(value, "value")?;
            Ok(Some(Change::DeleteSubject { subject: subject()?, version: field_i32(&value, "version")? }))
        }
        "CLEAR_SUBJECT" => match value {
            Some(_) => Ok(Some(Change::ClearSubject { subject: subject()? })),
            None => Ok(None),
        },
        _ => Ok(None),
    }
}

#[derive(Debug, Clone, Copy)]
struct Version {
    id: i32,
    deleted: bool,
}

#[derive(Debug, Default)]
struct Subject {
    versions: BTreeMap<i32, Version>,
    /// Live versions per id.
    live: HashMap<i32, u32>,
}

#[derive(Debug)]
struct Schema {
    record_name: Option<String>,
    /// Versions (live or soft-deleted) using this id.
    versions: u32,
}

/// What the index knows about a schema id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdInfo<'a> {
    /// No subject version has this id.
    Unknown,
    /// Known, with this record name (`None`: the schema has no record name).
    Known(Option<&'a str>),
}

/// Subjects, their versions and ids; see the module docs.
#[derive(Debug, Default)]
pub struct SchemaIndex {
    subjects: HashMap<String, Subject>,
    schemas: HashMap<i32, Schema>,
    versions: usize,
}

fn decrement(map: &mut HashMap<i32, u32>, id: i32) {
    if let Some(n) = map.get_mut(&id) {
        *n -= 1;
        if *n == 0 {
            map.remove(&id);
        }
    }
}

impl SchemaIndex {
    /// Whether `id` is the id of a live version of `subject`.
    pub fn is_registered(&self, subject: &str, id: i32) -> bool {
        self.subjects.get(subject).is_some_and(|s| s.live.contains_key(&id))
    }

    /// What is known of `id`.
    pub fn id_info(&self, id: i32) -> IdInfo<'_> {
        match self.schemas.get(&id) {
            Some(s) => IdInfo::Known(s.record_name.as_deref()),
            None => IdInfo::Unknown,
        }
    }

    /// Subject versions held (live and soft-deleted).
    pub fn version_count(&self) -> usize {
        self.versions
    }

    /// Parses and applies one storage-topic record.
    pub fn apply_record(&mut self, key: &[u8], value: Option<&[u8]>) -> Result<(), String> {
        match parse_record(key, value)? {
            Some(change) => self.apply(change),
            None => Ok(()),
        }
    }

    /// Applies one change. Fails only when the index is full.
    pub fn apply(&mut self, change: Change) -> Result<(), String> {
        match change {
            Change::Put { subject, version, id, deleted, record_name } => {
                self.put(subject, version, Version { id, deleted }, record_name)
            }
            Change::Remove { subject, version } => {
                if let Some(s) = self.subjects.get_mut(&subject)
                    && let Some(old) = s.versions.remove(&version)
                {
                    if !old.deleted {
                        decrement(&mut s.live, old.id);
                    }
                    self.versions -= 1;
                    self.release(old.id);
                    self.drop_if_empty(&subject);
                }
                Ok(())
            }
            Change::DeleteSubject { subject, version } => {
                if let Some(s) = self.subjects.get_mut(&subject) {
                    for v in s.versions.range_mut(..=version).map(|(_, v)| v) {
                        if !v.deleted {
                            v.deleted = true;
                            decrement(&mut s.live, v.id);
                        }
                    }
                }
                Ok(())
            }
            Change::ClearSubject { subject } => {
                let mut released = Vec::new();
                if let Some(s) = self.subjects.get_mut(&subject) {
                    s.versions.retain(|_, v| {
                        if v.deleted {
                            released.push(v.id);
                        }
                        !v.deleted
                    });
                }
                self.versions -= released.len();
                for id in released {
                    self.release(id);
                }
                self.drop_if_empty(&subject);
                Ok(())
            }
        }
    }

    fn put(
        &mut self,
        subject: String,
        number: i32,
        version: Version,
        record_name: Option<String>,
    ) -> Result<(), String> {
        let replaced = self.subjects.get_mut(&subject).and_then(|s| {
            let old = s.versions.remove(&number)?;
            if !old.deleted {
                decrement(&mut s.live, old.id);
            }
            Some(old)
        });
        match replaced {
            Some(old) => {
                self.versions -= 1;
                self.release(old.id);
            }
            None if self.versions >= VERSIONS_MAX => {
                return Err(format!(
                    "the index holds {VERSIONS_MAX} subject versions; {subject} version {number} is not indexed"
                ));
            }
            None => {}
        }
        let s = self.subjects.entry(subject).or_default();
        s.versions.insert(number, version);
        if !version.deleted {
            *s.live.entry(version.id).or_insert(0) += 1;
        }
        self.versions += 1;
        let schema = self.schemas.entry(version.id).or_insert(Schema { record_name: None, versions: 0 });
        schema.versions += 1;
        if schema.record_name.is_none() {
            schema.record_name = record_name;
        }
        Ok(())
    }

    fn release(&mut self, id: i32) {
        if let Some(schema) = self.schemas.get_mut(&id) {
            schema.versions -= 1;
            if schema.versions == 0 {
                self.schemas.remove(&id);
            }
        }
    }

    fn drop_if_empty(&mut self, subject: &str) {
        if self.subjects.get(subject).is_some_and(|s| s.versions.is_empty()) {
            self.subjects.remove(subject);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema_key(subject: &str, version: i32) -> Vec<u8> {
        format!(r#"{{"keytype":"SCHEMA","subject":"{subject}","version":{version},"magic":1}}"#).into_bytes()
    }

    fn schema_value(subject: &str, version: i32, id: i32, deleted: bool) -> Vec<u8> {
        let schema = r#"{\"type\":\"record\",\"name\":\"Order\",\"namespace\":\"shop\",\"fields\":[]}"#;
        format!(r#"{{"subject":"{subject}","version":{version},"id":{id},"schema":"{schema}","deleted":{deleted}}}"#)
            .into_bytes()
    }

    fn put(index: &mut SchemaIndex, subject: &str, version: i32, id: i32, deleted: bool) {
        let value = schema_value(subject, version, id, deleted);
        index.apply_record(&schema_key(subject, version), Some(&value)).expect("applies");
    }

    #[test]
    fn registered_versions_are_live_in_their_subject_only() {
        let mut index = SchemaIndex::default();
        put(&mut index, "orders-value", 1, 7, false);
        put(&mut index, "orders-value", 2, 8, false);
        put(&mut index, "other-value", 1, 7, false);
        assert!(index.is_registered("orders-value", 7));
        assert!(index.is_registered("orders-value", 8));
        assert!(index.is_registered("other-value", 7));
        assert!(!index.is_registered("other-value", 8));
        assert!(!index.is_registered("orders-key", 7));
        assert_eq!(index.id_info(7), IdInfo::Known(Some("shop.Order")));
        assert_eq!(index.id_info(9), IdInfo::Unknown);
        assert_eq!(index.version_count(), 3);
    }

    #[test]
    fn soft_deletes_then_hard_deletes() {
        let mut index = SchemaIndex::default();
        put(&mut index, "s", 1, 1, false);
        put(&mut index, "s", 2, 2, false);
        put(&mut index, "s", 3, 3, false);
        // One version soft-deleted by rewriting it.
        put(&mut index, "s", 3, 3, true);
        assert!(!index.is_registered("s", 3));
        assert_eq!(index.id_info(3), IdInfo::Known(Some("shop.Order")), "a soft-deleted id is still known");
        // The subject soft-deleted up to version 1.
        let key = br#"{"keytype":"DELETE_SUBJECT","subject":"s","magic":0}"#;
        index.apply_record(key, Some(br#"{"subject":"s","version":1}"#)).expect("applies");
        assert!(!index.is_registered("s", 1));
        assert!(index.is_registered("s", 2));
        // Hard delete (tombstone) of version 3.
        index.apply_record(&schema_key("s", 3), None).expect("applies");
        assert_eq!(index.id_info(3), IdInfo::Unknown);
        assert_eq!(index.version_count(), 2);
        // CLEAR_SUBJECT forgets the soft-deleted version 1, keeps the live 2.
        let key = br#"{"keytype":"CLEAR_SUBJECT","subject":"s","magic":0}"#;
        index.apply_record(key, Some(br#"{"subject":"s"}"#)).expect("applies");
        assert_eq!(index.version_count(), 1);
        assert_eq!(index.id_info(1), IdInfo::Unknown);
        assert!(index.is_registered("s", 2));
        // A tombstone for a version never seen changes nothing.
        index.apply_record(&schema_key("s", 42), None).expect("applies");
        index.apply_record(&schema_key("s", 2), None).expect("applies");
        assert_eq!(index.version_count(), 0);
        assert!(!index.is_registered("s", 2));
    }

    #[test]
    fn order_matters_a_later_record_wins() {
        let mut index = SchemaIndex::default();
        put(&mut index, "s", 1, 5, true);
        put(&mut index, "s", 1, 5, false);
        assert!(index.is_registered("s", 5), "re-registration after a soft delete is live again");
        // Two versions with the same id (re-registered after a soft delete): live while one is.
        put(&mut index, "s", 2, 5, false);
        put(&mut index, "s", 1, 5, true);
        assert!(index.is_registered("s", 5));
        put(&mut index, "s", 2, 5, true);
        assert!(!index.is_registered("s", 5));
    }

    #[test]
    fn other_key_types_and_bad_records() {
        let mut index = SchemaIndex::default();
        for key in [
            &br#"{"keytype":"CONFIG","subject":null,"magic":0}"#[..],
            br#"{"keytype":"MODE","subject":"s","magic":0}"#,
            br#"{"keytype":"NOOP","magic":0}"#,
            br#"{"keytype":"CONTEXT","tenant":"t","context":"c","magic":0}"#,
        ] {
            assert_eq!(index.apply_record(key, Some(br#"{"compatibilityLevel":"FULL"}"#)), Ok(()));
        }
        assert!(index.apply_record(b"not json", None).is_err());
        assert!(index.apply_record(b"[1,2]", None).is_err());
        assert!(index.apply_record(br#"{"subject":"s"}"#, None).is_err(), "no keytype");
        assert!(index.apply_record(&schema_key("s", 1), Some(b"{}")).is_err(), "no id");
        assert!(index.apply_record(&schema_key("s", 1), Some(br#"{"id":4294967296}"#)).is_err());
        let huge = vec![b' '; VALUE_BYTES_MAX + 1];
        assert!(index.apply_record(&schema_key("s", 1), Some(&huge)).is_err());
        assert_eq!(index.version_count(), 0);
        // Unknown fields, a missing schema and a DELETE_SUBJECT tombstone are fine.
        let value = br#"{"id":3,"future":{"x":1},"deleted":false}"#;
        assert_eq!(index.apply_record(&schema_key("s", 1), Some(value)), Ok(()));
        assert_eq!(index.id_info(3), IdInfo::Known(None));
        assert_eq!(index.apply_record(br#"{"keytype":"DELETE_SUBJECT","subject":"s","magic":0}"#, None), Ok(()));
        assert!(index.is_registered("s", 3));
    }

    #[test]
    fn record_names_come_from_each_schema_type() {
        let mut index = SchemaIndex::default();
        let proto = r#"{"id":10,"schemaType":"PROTOBUF","schema":"syntax = \"proto3\";\npackage a.b;\nmessage M { string x = 1; }\n"}"#;
        index.apply_record(&schema_key("p", 1), Some(proto.as_bytes())).expect("applies");
        let json = r#"{"id":11,"schemaType":"JSON","schema":"{\"title\":\"Thing\",\"type\":\"object\"}"}"#;
        index.apply_record(&schema_key("j", 1), Some(json.as_bytes())).expect("applies");
        assert_eq!(index.id_info(10), IdInfo::Known(Some("a.b.M")));
        assert_eq!(index.id_info(11), IdInfo::Known(Some("Thing")));
    }
}
