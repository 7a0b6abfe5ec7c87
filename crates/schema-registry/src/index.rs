//! The in-memory index the reader builds from `_schemas`: subjects and their
//! versions, ids and their schemas, which versions reference which, configs
//! and modes. Applying a record is idempotent, so a record read twice (a
//! produce retried after a lost answer) changes nothing.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::Value;

use crate::format::{
    ClearSubjectValue, ConfigValue, DeleteSubjectValue, Key, ModeValue, NoopValue, Reference, SchemaValue,
};

/// What makes two registrations "the same schema": type, text, references.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Content {
    /// `AVRO`, `JSON` or `PROTOBUF`.
    pub schema_type: String,
    /// The stored (canonical) text.
    pub schema: String,
    /// References in order.
    pub references: Vec<Reference>,
}

impl Content {
    /// The content of a stored version.
    pub fn of(value: &SchemaValue) -> Content {
        Content {
            schema_type: value.schema_type().to_string(),
            schema: value.schema.clone(),
            references: value.references.clone(),
        }
    }
}

/// A subject and version.
pub type SubjectVersion = (String, i32);

/// Everything read from the topic so far.
#[derive(Debug, Default)]
pub struct Index {
    /// subject → version → value.
    subjects: BTreeMap<String, BTreeMap<i32, SchemaValue>>,
    /// id → the versions that carry it.
    id_versions: BTreeMap<i32, BTreeSet<SubjectVersion>>,
    /// content → id.
    by_content: HashMap<Content, i32>,
    /// referenced version → the versions whose references name it.
    referenced_by: BTreeMap<SubjectVersion, BTreeSet<SubjectVersion>>,
    /// Configs; `None` = global.
    configs: BTreeMap<Option<String>, ConfigValue>,
    /// Modes; `None` = global.
    modes: BTreeMap<Option<String>, String>,
    /// Largest id ever seen (ids are never reused, even after a hard delete).
    max_id: i32,
    /// Records skipped because they could not be read.
    pub skipped: u64,
}

impl Index {
    /// Applies one record of the topic.
    pub fn apply(&mut self, key: &Key, value: Option<&[u8]>) -> Result<(), String> {
        match key {
            Key::Schema { subject, version } => match value {
                None => self.remove_version(subject, *version),
                Some(bytes) => {
                    let v: SchemaValue =
                        serde_json::from_slice(bytes).map_err(|e| format!("schema value is not valid: {e}"))?;
                    if &v.subject != subject || v.version != *version {
                        return Err(format!(
                            "schema value for {}/{} is filed under key {subject}/{version}",
                            v.subject, v.version
                        ));
                    }
                    if v.id <= 0 {
                        return Err(format!("schema id {} is not positive", v.id));
                    }
                    self.insert_version(v);
                }
            },
            Key::Config(subject) => match value {
                None => {
                    self.configs.remove(subject);
                }
                Some(bytes) => {
                    let mut v: ConfigValue =
                        serde_json::from_slice(bytes).map_err(|e| format!("config value is not valid: {e}"))?;
                    v.remove("subject");
                    self.configs.insert(subject.clone(), v);
                }
            },
            Key::Mode(subject) => match value {
                None => {
                    self.modes.remove(subject);
                }
                Some(bytes) => {
                    let v: ModeValue =
                        serde_json::from_slice(bytes).map_err(|e| format!("mode value is not valid: {e}"))?;
                    self.modes.insert(subject.clone(), v.mode.to_ascii_uppercase());
                }
            },
            Key::DeleteSubject(subject) => {
                let Some(bytes) = value else { return Ok(()) };
                let v: DeleteSubjectValue =
                    serde_json::from_slice(bytes).map_err(|e| format!("delete-subject value is not valid: {e}"))?;
                if let Some(versions) = self.subjects.get_mut(subject) {
                    for (_, s) in versions.range_mut(..=v.version) {
                        s.deleted = true;
                    }
                }
            }
            Key::ClearSubject(subject) => {
                let Some(bytes) = value else { return Ok(()) };
                let _: ClearSubjectValue =
                    serde_json::from_slice(bytes).map_err(|e| format!("clear-subject value is not valid: {e}"))?;
                let deleted: Vec<i32> = self
                    .subjects
                    .get(subject)
                    .map(|vs| vs.values().filter(|s| s.deleted).map(|s| s.version).collect())
                    .unwrap_or_default();
                for version in deleted {
                    self.remove_version(subject, version);
                }
            }
            Key::Noop => {
                // Only the id watermark matters; a NOOP written by anyone else may carry anything.
                if let Some(v) = value.and_then(|bytes| serde_json::from_slice::<NoopValue>(bytes).ok()) {
                    self.max_id = self.max_id.max(v.max_id);
                }
            }
        }
        Ok(())
    }

    fn insert_version(&mut self, v: SchemaValue) {
        let sv = (v.subject.clone(), v.version);
        self.remove_version(&v.subject, v.version);
        self.max_id = self.max_id.max(v.id);
        self.id_versions.entry(v.id).or_default().insert(sv.clone());
        self.by_content.entry(Content::of(&v)).or_insert(v.id);
        for r in &v.references {
            self.referenced_by.entry((r.subject.clone(), r.version)).or_default().insert(sv.clone());
        }
        self.subjects.entry(v.subject.clone()).or_default().insert(v.version, v);
    }

    fn remove_version(&mut self, subject: &str, version: i32) {
        let Some(versions) = self.subjects.get_mut(subject) else { return };
        let Some(old) = versions.remove(&version) else { return };
        if versions.is_empty() {
            self.subjects.remove(subject);
        }
        let sv = (subject.to_string(), version);
        if let Some(set) = self.id_versions.get_mut(&old.id) {
            set.remove(&sv);
            if set.is_empty() {
                self.id_versions.remove(&old.id);
                let content = Content::of(&old);
                if self.by_content.get(&content) == Some(&old.id) {
                    self.by_content.remove(&content);
                }
            }
        }
        for r in &old.references {
            let target = (r.subject.clone(), r.version);
            if let Some(set) = self.referenced_by.get_mut(&target) {
                set.remove(&sv);
                if set.is_empty() {
                    self.referenced_by.remove(&target);
                }
            }
        }
    }

    /// Largest id ever seen.
    pub fn max_id(&self) -> i32 {
        self.max_id
    }

    /// Every version of `subject`, deleted or not, by version.
    pub fn versions(&self, subject: &str) -> Option<&BTreeMap<i32, SchemaValue>> {
        self.subjects.get(subject)
    }

    /// One version of a subject.
    pub fn version(&self, subject: &str, version: i32) -> Option<&SchemaValue> {
        self.subjects.get(subject)?.get(&version)
    }

    /// Subjects with at least one version (deleted ones included).
    pub fn subjects(&self) -> impl Iterator<Item = (&String, &BTreeMap<i32, SchemaValue>)> {
        self.subjects.iter()
    }

    /// Whether any subject holds any version.
    pub fn is_empty(&self) -> bool {
        self.subjects.is_empty()
    }

    /// The versions that carry `id`.
    pub fn id_versions(&self, id: i32) -> Option<&BTreeSet<SubjectVersion>> {
        self.id_versions.get(&id)
    }

    /// The stored schema with `id` (from any version that carries it,
    /// preferring one that is not soft-deleted).
    pub fn schema_by_id(&self, id: i32) -> Option<&SchemaValue> {
        let versions = self.id_versions.get(&id)?;
        let all = versions.iter().filter_map(|(s, v)| self.version(s, *v));
        let mut first = None;
        for value in all {
            if !value.deleted {
                return Some(value);
            }
            first.get_or_insert(value);
        }
        first
    }

    /// The id of a schema with this content, if one was registered.
    pub fn id_of(&self, content: &Content) -> Option<i32> {
        self.by_content.get(content).copied()
    }

    /// The versions whose references name `subject`/`version`.
    pub fn referenced_by(&self, subject: &str, version: i32) -> Vec<&SchemaValue> {
        self.referenced_by
            .get(&(subject.to_string(), version))
            .map(|set| set.iter().filter_map(|(s, v)| self.version(s, *v)).collect())
            .unwrap_or_default()
    }

    /// The config of `subject` (`None` = global), if one is set.
    pub fn config(&self, subject: Option<&str>) -> Option<&ConfigValue> {
        self.configs.get(&subject.map(str::to_string))
    }

    /// The mode of `subject` (`None` = global), if one is set.
    pub fn mode(&self, subject: Option<&str>) -> Option<&str> {
        self.modes.get(&subject.map(str::to_string)).map(String::as_str)
    }

    /// A boolean field of the subject's config, else of the global config.
    pub fn config_flag(&self, subject: &str, field: &str) -> Option<bool> {
        [self.config(Some(subject)), self.config(None)]
            .into_iter()
            .flatten()
            .find_map(|c| c.get(field).and_then(Value::as_bool))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema(subject: &str, version: i32, id: i32, text: &str) -> Vec<u8> {
        serde_json::to_vec(&SchemaValue {
            subject: subject.to_string(),
            version,
            id,
            schema_type: None,
            references: Vec::new(),
            metadata: None,
            rule_set: None,
            schema: text.to_string(),
            deleted: false,
        })
        .expect("serializes")
    }

    fn key(subject: &str, version: i32) -> Key {
        Key::Schema { subject: subject.to_string(), version }
    }

    #[test]
    fn soft_and_hard_deletes() {
        let mut index = Index::default();
        index.apply(&key("a", 1), Some(&schema("a", 1, 1, "\"int\""))).expect("applies");
        index.apply(&key("a", 2), Some(&schema("a", 2, 2, "\"long\""))).expect("applies");
        index.apply(&key("b", 1), Some(&schema("b", 1, 1, "\"int\""))).expect("applies");
        let c = Content { schema_type: "AVRO".to_string(), schema: "\"int\"".to_string(), references: vec![] };
        assert_eq!(index.id_of(&c), Some(1));
        let delete = serde_json::to_vec(&DeleteSubjectValue { subject: "a".to_string(), version: 2 }).expect("json");
        index.apply(&Key::DeleteSubject("a".to_string()), Some(&delete)).expect("applies");
        assert!(index.versions("a").expect("kept").values().all(|v| v.deleted));
        index.apply(&key("a", 1), None).expect("applies");
        index.apply(&key("b", 1), None).expect("applies");
        assert_eq!(index.id_of(&c), None, "no version carries id 1 any more");
        assert_eq!(index.max_id(), 2);
        let clear = serde_json::to_vec(&ClearSubjectValue { subject: "a".to_string() }).expect("json");
        index.apply(&Key::ClearSubject("a".to_string()), Some(&clear)).expect("applies");
        assert!(index.is_empty());
        assert_eq!(index.max_id(), 2, "ids are never reused");

        // After compaction only the watermark a permanent delete wrote remembers id 2.
        let mut compacted = Index::default();
        compacted.apply(&key("b", 2), Some(&schema("b", 2, 1, "\"int\""))).expect("applies");
        let watermark = serde_json::to_vec(&NoopValue { max_id: 2 }).expect("json");
        compacted.apply(&Key::Noop, Some(&watermark)).expect("applies");
        compacted.apply(&Key::Noop, Some(b"not json")).expect("other NOOP values are ignored");
        compacted.apply(&Key::Noop, None).expect("applies");
        assert_eq!(compacted.max_id(), 2);
    }

    #[test]
    fn bad_values_are_errors_not_panics() {
        let mut index = Index::default();
        assert!(index.apply(&key("a", 1), Some(b"{")).is_err());
        assert!(index.apply(&key("a", 1), Some(&schema("b", 1, 1, "x"))).is_err());
        assert!(index.apply(&key("a", 1), Some(&schema("a", 1, 0, "x"))).is_err());
        assert!(index.apply(&Key::Mode(None), Some(b"[]")).is_err());
    }
}
