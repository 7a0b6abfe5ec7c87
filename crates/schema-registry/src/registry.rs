//! What the registry does, independent of HTTP: register (the six steps of
//! Confluent's algorithm), look up, check compatibility, delete, configs and
//! modes. Reads come from the index; writes run on the elected instance,
//! one at a time, after the reader has caught up with the topic.
//!
//! ```text
//! register: parse (42201) ─▶ normalize? ─▶ same schema already under the subject? ─▶ its id
//!           ─▶ mode (READONLY: 42205) ─▶ compatibility per level (409)
//!           ─▶ same schema under any subject? reuse its id : max id + 1 ─▶ version max + 1 ─▶ write
//! ```

use std::collections::BTreeSet;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Map, Value, json};
use tributary_schema::{
    CompatibilityLevel, ParseOptions, ParsedSchema, SchemaError, SchemaReference, SchemaSource, SchemaType,
};

use crate::error::ApiError;
use crate::format::{DeleteSubjectValue, Key, ModeValue, NoopValue, Reference, SchemaValue};
use crate::index::{Content, Index};
use crate::store::Store;

/// The modes of a registry or subject.
pub const MODES: [&str; 4] = ["READWRITE", "READONLY", "READONLY_OVERRIDE", "IMPORT"];

/// A version in a path: a number, or `latest` / `-1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionSpec {
    /// The newest version (not soft-deleted unless asked).
    Latest,
    /// A version number.
    Exact(i32),
}

impl VersionSpec {
    /// Parses a path segment; 42202 for anything else.
    pub fn parse(text: &str) -> Result<VersionSpec, ApiError> {
        if text.eq_ignore_ascii_case("latest") {
            return Ok(VersionSpec::Latest);
        }
        match text.parse::<i32>() {
            Ok(-1) => Ok(VersionSpec::Latest),
            Ok(v) if v >= 1 => Ok(VersionSpec::Exact(v)),
            _ => Err(ApiError::invalid_version(text)),
        }
    }
}

/// The body of register, lookup and compatibility requests.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SchemaRequest {
    /// The schema text.
    #[serde(default)]
    pub schema: Option<String>,
    /// `AVRO` (default), `JSON` or `PROTOBUF`.
    #[serde(default)]
    pub schema_type: Option<String>,
    /// References.
    #[serde(default)]
    pub references: Option<Vec<Reference>>,
    /// Data-contract metadata, kept verbatim.
    #[serde(default)]
    pub metadata: Option<Value>,
    /// Data-contract rules, kept verbatim.
    #[serde(default)]
    pub rule_set: Option<Value>,
    /// Explicit id (IMPORT mode).
    #[serde(default)]
    pub id: Option<i32>,
    /// Explicit version (IMPORT mode).
    #[serde(default)]
    pub version: Option<i32>,
}

/// The `NOOP` record that keeps the largest assigned id through compaction;
/// written with every permanent delete.
fn id_watermark(index: &Index) -> Result<(Key, Option<Vec<u8>>), ApiError> {
    let value = NoopValue { max_id: index.max_id() };
    Ok((Key::Noop, Some(serde_json::to_vec(&value).map_err(ApiError::store)?)))
}

/// Runs `work` (parsing a schema: CPU only, up to tens of milliseconds for the
/// largest accepted) so that it does not hold up the other tasks of a
/// multi-threaded runtime's worker; on any other runtime it runs in place.
fn off_runtime<T>(work: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => tokio::task::block_in_place(work),
        _ => work(),
    }
}

/// Registry settings.
#[derive(Debug, Clone)]
pub struct RegistrySettings {
    /// `schema.compatibility.level`: the level when no config is set.
    pub default_compatibility: CompatibilityLevel,
    /// Limits for parsing.
    pub parse_limits: ParseOptions,
}

/// The registry over its store.
#[derive(Debug)]
pub struct Registry {
    store: Arc<Store>,
    settings: RegistrySettings,
    /// One write at a time on the elected instance.
    write_lock: tokio::sync::Mutex<()>,
}

/// Resolves references against the index (soft-deleted versions included:
/// schemas registered against them must still parse).
struct IndexResolver<'a>(&'a Index);

impl tributary_schema::ReferenceResolver for IndexResolver<'_> {
    fn resolve(&self, reference: &SchemaReference) -> Option<SchemaSource> {
        let v = self.0.version(&reference.subject, reference.version)?;
        source_of(v).ok()
    }
}

fn schema_type(text: Option<&str>) -> Result<SchemaType, ApiError> {
    match text {
        None => Ok(SchemaType::Avro),
        Some(t) => t.parse().map_err(|e| ApiError::invalid_schema(format!("Invalid schema: {e}"))),
    }
}

fn to_schema_refs(refs: &[Reference]) -> Vec<SchemaReference> {
    refs.iter()
        .map(|r| SchemaReference { name: r.name.clone(), subject: r.subject.clone(), version: r.version })
        .collect()
}

fn from_schema_refs(refs: &[SchemaReference]) -> Vec<Reference> {
    refs.iter().map(|r| Reference { name: r.name.clone(), subject: r.subject.clone(), version: r.version }).collect()
}

fn source_of(v: &SchemaValue) -> Result<SchemaSource, ApiError> {
    Ok(SchemaSource {
        schema_type: schema_type(Some(v.schema_type()))?,
        schema: v.schema.clone(),
        references: to_schema_refs(&v.references),
    })
}

fn schema_error(e: SchemaError) -> ApiError {
    match e {
        SchemaError::TooLarge(_) => ApiError::new(42209, e.to_string()),
        other => ApiError::invalid_schema(other),
    }
}

/// Subject names: not empty, no control characters.
pub fn check_subject(subject: &str) -> Result<(), ApiError> {
    if subject.trim().is_empty() || subject.chars().any(char::is_control) {
        return Err(ApiError::new(42208, format!("The specified subject '{subject}' is not a valid subject")));
    }
    Ok(())
}

/// The JSON of one stored version, as GET /subjects/{s}/versions/{v} answers it.
pub fn version_json(v: &SchemaValue) -> Value {
    let mut out = Map::new();
    out.insert("subject".to_string(), json!(v.subject));
    out.insert("version".to_string(), json!(v.version));
    out.insert("id".to_string(), json!(v.id));
    schema_fields(v, &mut out);
    Value::Object(out)
}

/// `schemaType` (unless AVRO), `references` (unless none), `metadata`, `ruleSet`, `schema`.
pub fn schema_fields(v: &SchemaValue, out: &mut Map<String, Value>) {
    if v.schema_type() != "AVRO" {
        out.insert("schemaType".to_string(), json!(v.schema_type()));
    }
    if !v.references.is_empty() {
        out.insert("references".to_string(), json!(v.references));
    }
    if let Some(m) = &v.metadata {
        out.insert("metadata".to_string(), m.clone());
    }
    if let Some(r) = &v.rule_set {
        out.insert("ruleSet".to_string(), r.clone());
    }
    out.insert("schema".to_string(), json!(v.schema));
}

/// A page of a list: `offset` items skipped, at most `limit` (-1 or absent = all).
pub fn page<T>(items: Vec<T>, offset: Option<i64>, limit: Option<i64>) -> Vec<T> {
    let skip = usize::try_from(offset.unwrap_or(0).max(0)).unwrap_or(usize::MAX);
    let take = match limit {
        Some(l) if l >= 0 => usize::try_from(l).unwrap_or(usize::MAX),
        _ => usize::MAX,
    };
    items.into_iter().skip(skip).take(take).collect()
}

impl Registry {
    /// A registry over `store`.
    pub fn new(store: Arc<Store>, settings: RegistrySettings) -> Registry {
        Registry { store, settings, write_lock: tokio::sync::Mutex::new(()) }
    }

    /// The store.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// The effective mode of `subject` (`None` = global).
    pub fn mode_of(index: &Index, subject: Option<&str>) -> String {
        subject.and_then(|s| index.mode(Some(s))).or_else(|| index.mode(None)).unwrap_or("READWRITE").to_string()
    }

    /// The effective compatibility level of `subject`.
    pub fn level_of(&self, index: &Index, subject: &str) -> CompatibilityLevel {
        [index.config(Some(subject)), index.config(None)]
            .into_iter()
            .flatten()
            .find_map(|c| c.get("compatibilityLevel").and_then(Value::as_str).and_then(|l| l.parse().ok()))
            .unwrap_or(self.settings.default_compatibility)
    }

    fn parse_options(&self, normalize: bool) -> ParseOptions {
        ParseOptions { normalize, ..self.settings.parse_limits.clone() }
    }

    fn parse_request(&self, index: &Index, request: &SchemaRequest, normalize: bool) -> Result<ParsedSchema, ApiError> {
        let text = request.schema.as_deref().filter(|s| !s.trim().is_empty()).ok_or_else(|| {
            ApiError::invalid_schema("Invalid schema: the request has no \"schema\" field or it is empty")
        })?;
        let references = request.references.clone().unwrap_or_default();
        for r in &references {
            if index.version(&r.subject, r.version).is_none() {
                return Err(ApiError::invalid_schema(format!(
                    "Invalid schema: reference {} to subject '{}' version {} does not exist",
                    r.name, r.subject, r.version
                )));
            }
        }
        let source = SchemaSource {
            schema_type: schema_type(request.schema_type.as_deref())?,
            schema: text.to_string(),
            references: to_schema_refs(&references),
        };
        off_runtime(|| tributary_schema::parse(&source, &IndexResolver(index), &self.parse_options(normalize)))
            .map_err(schema_error)
    }

    /// Parses a stored version (for compatibility checks and identity fallbacks).
    fn parse_stored(&self, index: &Index, v: &SchemaValue, normalize: bool) -> Result<ParsedSchema, ApiError> {
        let source = source_of(v)?;
        off_runtime(|| tributary_schema::parse(&source, &IndexResolver(index), &self.parse_options(normalize)))
            .map(|p| p.with_version(Some(v.version)))
            .map_err(schema_error)
    }

    /// The version of `subject` holding the same schema as `parsed`, among
    /// soft-deleted ones too when `deleted`.
    fn find_in_subject<'a>(
        &self,
        index: &'a Index,
        subject: &str,
        parsed: &ParsedSchema,
        deleted: bool,
        normalize: bool,
    ) -> Option<&'a SchemaValue> {
        let versions = index.versions(subject)?;
        let content = content_of(parsed);
        let candidates = || versions.values().rev().filter(|v| deleted || !v.deleted);
        if let Some(v) = candidates().find(|v| Content::of(v) == content) {
            return Some(v);
        }
        // Stored text written by another registry may be canonical in another way: compare parsed.
        candidates()
            .filter(|v| v.schema_type() == parsed.schema_type().as_str())
            .find(|v| self.parse_stored(index, v, normalize).is_ok_and(|p| p.is_same(parsed)))
    }

    fn normalize_for(index: &Index, subject: &str, param: Option<bool>) -> bool {
        param.or_else(|| index.config_flag(subject, "normalize")).unwrap_or(false)
    }

    /// Compatibility messages of `parsed` against the versions of `subject`
    /// the level asks for (all of them for `*_TRANSITIVE`, the newest otherwise;
    /// soft-deleted versions never). With `only`, against that version alone.
    fn compatibility(
        &self,
        index: &Index,
        subject: &str,
        parsed: &ParsedSchema,
        only: Option<&SchemaValue>,
        normalize: bool,
    ) -> Vec<String> {
        let level = self.level_of(index, subject);
        if level == CompatibilityLevel::None {
            return Vec::new();
        }
        let transitive = matches!(
            level,
            CompatibilityLevel::BackwardTransitive
                | CompatibilityLevel::ForwardTransitive
                | CompatibilityLevel::FullTransitive
        );
        let chosen: Vec<&SchemaValue> = match only {
            Some(v) => vec![v],
            None => {
                let live: Vec<&SchemaValue> =
                    index.versions(subject).map(|vs| vs.values().filter(|v| !v.deleted).collect()).unwrap_or_default();
                if transitive { live } else { live.last().copied().into_iter().collect() }
            }
        };
        let mut previous = Vec::with_capacity(chosen.len());
        for v in chosen {
            if v.schema_type() != parsed.schema_type().as_str() {
                return vec![format!(
                    "Incompatible schema type: version {} is {}, the new schema is {}",
                    v.version,
                    v.schema_type(),
                    parsed.schema_type()
                )];
            }
            match self.parse_stored(index, v, normalize) {
                Ok(p) => previous.push(p),
                Err(e) => {
                    tracing::warn!(subject, version = v.version, error = %e, "stored schema does not parse; not compared")
                }
            }
        }
        tributary_schema::check_compatibility(level, parsed, &previous)
    }

    /// POST /subjects/{subject}/versions. Runs on the writer.
    pub async fn register(
        &self,
        subject: &str,
        request: SchemaRequest,
        normalize: Option<bool>,
    ) -> Result<Value, ApiError> {
        check_subject(subject)?;
        let _guard = self.write_lock.lock().await;
        self.store.catch_up().await?;
        let value = {
            let index = self.store.index();
            let normalize = Self::normalize_for(&index, subject, normalize);
            let parsed = self.parse_request(&index, &request, normalize)?;
            let mode = Self::mode_of(&index, Some(subject));
            if request.id.is_none()
                && let Some(existing) = self.find_in_subject(&index, subject, &parsed, false, normalize)
            {
                return Ok(register_answer(existing));
            }
            if mode == "READONLY" || mode == "READONLY_OVERRIDE" {
                return Err(ApiError::not_permitted(format!("Subject {subject} is in read-only mode")));
            }
            let import = mode == "IMPORT";
            if !import && (request.id.is_some() || request.version.is_some()) {
                return Err(ApiError::not_permitted(format!(
                    "Subject {subject} is not in import mode: an id or version can only be given in IMPORT mode"
                )));
            }
            if !import {
                let messages = self.compatibility(&index, subject, &parsed, None, normalize);
                if !messages.is_empty() {
                    return Err(ApiError::new(
                        409,
                        format!(
                            "Schema being registered is incompatible with an earlier schema for subject \"{subject}\", \
                             details: [{}]",
                            messages.join(", ")
                        ),
                    ));
                }
            }
            let content = content_of(&parsed);
            let id = match request.id {
                Some(id) if id <= 0 => return Err(ApiError::new(42207, format!("Schema id {id} is not positive"))),
                Some(id) => {
                    if let Some(existing) = index.schema_by_id(id)
                        && Content::of(existing) != content
                    {
                        return Err(ApiError::new(
                            42207,
                            format!("Overwrite new schema with id {id} is not permitted: the id holds another schema"),
                        ));
                    }
                    id
                }
                None => match index.id_of(&content) {
                    Some(id) => id,
                    None => index.max_id().checked_add(1).ok_or_else(|| ApiError::store("schema ids exhausted"))?,
                },
            };
            let newest = index.versions(subject).and_then(|vs| vs.keys().next_back().copied()).unwrap_or(0);
            let version = match request.version {
                Some(v) if v <= 0 => return Err(ApiError::invalid_version(&v.to_string())),
                Some(v) => {
                    if let Some(existing) = index.version(subject, v)
                        && Content::of(existing) != content
                    {
                        return Err(ApiError::not_permitted(format!(
                            "Version {v} of subject {subject} already holds another schema"
                        )));
                    }
                    v
                }
                None => newest.checked_add(1).ok_or_else(|| ApiError::store("versions exhausted"))?,
            };
            SchemaValue {
                subject: subject.to_string(),
                version,
                id,
                schema_type: (content.schema_type != "AVRO").then(|| content.schema_type.clone()),
                references: content.references.clone(),
                metadata: request.metadata.clone(),
                rule_set: request.rule_set.clone(),
                schema: content.schema.clone(),
                deleted: false,
            }
        };
        let key = Key::Schema { subject: subject.to_string(), version: value.version };
        let bytes = serde_json::to_vec(&value).map_err(ApiError::store)?;
        self.store.write(&[(key, Some(bytes))]).await?;
        tracing::info!(subject, version = value.version, id = value.id, "schema registered");
        Ok(register_answer(&value))
    }

    /// POST /subjects/{subject}: the version holding this schema.
    pub fn lookup(
        &self,
        subject: &str,
        request: &SchemaRequest,
        normalize: Option<bool>,
        deleted: bool,
    ) -> Result<Value, ApiError> {
        let index = self.store.index();
        let versions = index.versions(subject).filter(|vs| deleted || vs.values().any(|v| !v.deleted));
        if versions.is_none() {
            return Err(ApiError::subject_not_found(subject));
        }
        let normalize = Self::normalize_for(&index, subject, normalize);
        let parsed = self.parse_request(&index, request, normalize)?;
        self.find_in_subject(&index, subject, &parsed, deleted, normalize)
            .map(version_json)
            .ok_or_else(ApiError::schema_not_found)
    }

    /// POST /compatibility/subjects/{subject}/versions[/{version}].
    pub fn test_compatibility(
        &self,
        subject: &str,
        version: Option<VersionSpec>,
        request: &SchemaRequest,
        normalize: Option<bool>,
        verbose: bool,
    ) -> Result<Value, ApiError> {
        let index = self.store.index();
        let normalize = Self::normalize_for(&index, subject, normalize);
        let only = match version {
            None => None,
            Some(spec) => {
                let live = index.versions(subject).filter(|vs| vs.values().any(|v| !v.deleted));
                match (live, spec) {
                    // Nothing to be incompatible with.
                    (None, VersionSpec::Latest) => None,
                    (None, VersionSpec::Exact(_)) => return Err(ApiError::subject_not_found(subject)),
                    (Some(vs), VersionSpec::Latest) => vs.values().rev().find(|v| !v.deleted),
                    (Some(vs), VersionSpec::Exact(n)) => Some(
                        vs.get(&n)
                            .filter(|v| !v.deleted)
                            .ok_or_else(|| ApiError::version_not_found(subject, &n.to_string()))?,
                    ),
                }
            }
        };
        let parsed = self.parse_request(&index, request, normalize)?;
        let messages = match (version, only) {
            (Some(_), None) => Vec::new(),
            _ => self.compatibility(&index, subject, &parsed, only, normalize),
        };
        let mut out = json!({"is_compatible": messages.is_empty()});
        if verbose {
            out["messages"] = json!(messages);
        }
        Ok(out)
    }

    /// DELETE /subjects/{subject}: soft, or permanent after a soft delete.
    pub async fn delete_subject(&self, subject: &str, permanent: bool) -> Result<Value, ApiError> {
        let _guard = self.write_lock.lock().await;
        self.store.catch_up().await?;
        let records = {
            let index = self.store.index();
            let versions = index.versions(subject).ok_or_else(|| ApiError::subject_not_found(subject))?;
            let mode = Self::mode_of(&index, Some(subject));
            if mode == "READONLY" || mode == "READONLY_OVERRIDE" {
                return Err(ApiError::not_permitted(format!("Subject {subject} is in read-only mode")));
            }
            let mut records = Vec::new();
            let mut deleted = Vec::new();
            if permanent {
                if versions.values().any(|v| !v.deleted) {
                    return Err(ApiError::new(
                        40405,
                        format!("Subject '{subject}' was not deleted first before being permanently deleted"),
                    ));
                }
                for v in versions.values() {
                    let others: Vec<_> =
                        index.referenced_by(subject, v.version).into_iter().filter(|r| r.subject != subject).collect();
                    if let Some(r) = others.first() {
                        return Err(reference_exists(subject, v.version, r));
                    }
                    deleted.push(v.version);
                }
                for version in deleted.iter().rev() {
                    records.push((Key::Schema { subject: subject.to_string(), version: *version }, None));
                }
                if index.mode(Some(subject)).is_some() {
                    records.push((Key::Mode(Some(subject.to_string())), None));
                }
                if index.config(Some(subject)).is_some() {
                    records.push((Key::Config(Some(subject.to_string())), None));
                }
                records.push(id_watermark(&index)?);
            } else {
                let live: Vec<&SchemaValue> = versions.values().filter(|v| !v.deleted).collect();
                if live.is_empty() {
                    return Err(ApiError::new(
                        40404,
                        format!("Subject '{subject}' was soft deleted. Set permanent=true to delete permanently"),
                    ));
                }
                for v in &live {
                    let others: Vec<_> = index
                        .referenced_by(subject, v.version)
                        .into_iter()
                        .filter(|r| r.subject != subject && !r.deleted)
                        .collect();
                    if let Some(r) = others.first() {
                        return Err(reference_exists(subject, v.version, r));
                    }
                    deleted.push(v.version);
                }
                let top = deleted.last().copied().unwrap_or(0);
                let value = DeleteSubjectValue { subject: subject.to_string(), version: top };
                records.push((
                    Key::DeleteSubject(subject.to_string()),
                    Some(serde_json::to_vec(&value).map_err(ApiError::store)?),
                ));
            }
            (records, deleted)
        };
        self.store.write(&records.0).await?;
        tracing::info!(subject, permanent, versions = ?records.1, "subject deleted");
        Ok(json!(records.1))
    }

    /// DELETE /subjects/{subject}/versions/{version}.
    pub async fn delete_version(&self, subject: &str, spec: VersionSpec, permanent: bool) -> Result<Value, ApiError> {
        let _guard = self.write_lock.lock().await;
        self.store.catch_up().await?;
        let (records, version) = {
            let index = self.store.index();
            let versions = index.versions(subject).ok_or_else(|| ApiError::subject_not_found(subject))?;
            let mode = Self::mode_of(&index, Some(subject));
            if mode == "READONLY" || mode == "READONLY_OVERRIDE" {
                return Err(ApiError::not_permitted(format!("Subject {subject} is in read-only mode")));
            }
            let v = match spec {
                VersionSpec::Latest if permanent => versions.values().next_back(),
                VersionSpec::Latest => versions.values().rev().find(|v| !v.deleted),
                VersionSpec::Exact(n) => versions.get(&n),
            };
            let label = match spec {
                VersionSpec::Latest => "latest".to_string(),
                VersionSpec::Exact(n) => n.to_string(),
            };
            let v = v.ok_or_else(|| ApiError::version_not_found(subject, &label))?;
            let referrers: Vec<&SchemaValue> =
                index.referenced_by(subject, v.version).into_iter().filter(|r| permanent || !r.deleted).collect();
            if let Some(r) = referrers.first() {
                return Err(reference_exists(subject, v.version, r));
            }
            let key = Key::Schema { subject: subject.to_string(), version: v.version };
            if permanent {
                if !v.deleted {
                    return Err(ApiError::new(
                        40407,
                        format!(
                            "Subject '{subject}' Version {} was not deleted first before being permanently deleted",
                            v.version
                        ),
                    ));
                }
                (vec![(key, None), id_watermark(&index)?], v.version)
            } else {
                if v.deleted {
                    return Err(ApiError::new(
                        40406,
                        format!(
                            "Subject '{subject}' Version {} was soft deleted. Set permanent=true to delete permanently",
                            v.version
                        ),
                    ));
                }
                let value = SchemaValue { deleted: true, ..v.clone() };
                (vec![(key, Some(serde_json::to_vec(&value).map_err(ApiError::store)?))], v.version)
            }
        };
        self.store.write(&records).await?;
        tracing::info!(subject, version, permanent, "schema version deleted");
        Ok(json!(version))
    }

    /// PUT /config[/{subject}]: merges the given fields into the config.
    pub async fn set_config(&self, subject: Option<&str>, body: Map<String, Value>) -> Result<Value, ApiError> {
        if let Some(s) = subject {
            check_subject(s)?;
        }
        let (update, echo) = crate::fields::config_update(body)?;
        let _guard = self.write_lock.lock().await;
        self.store.catch_up().await?;
        let merged = {
            let index = self.store.index();
            let mut merged = index.config(subject).cloned().unwrap_or_default();
            merged.extend(update);
            merged
        };
        let mut stored = merged.clone();
        if let Some(s) = subject {
            stored.insert("subject".to_string(), json!(s));
        }
        let bytes = serde_json::to_vec(&stored).map_err(ApiError::store)?;
        self.store.write(&[(Key::Config(subject.map(str::to_string)), Some(bytes))]).await?;
        Ok(Value::Object(echo))
    }

    /// GET /config[/{subject}].
    pub fn get_config(&self, subject: Option<&str>, default_to_global: bool) -> Result<Value, ApiError> {
        let index = self.store.index();
        let found = match subject {
            None => Some(index.config(None).cloned().unwrap_or_default()),
            Some(s) => index
                .config(Some(s))
                .cloned()
                .or_else(|| default_to_global.then(|| index.config(None).cloned().unwrap_or_default())),
        };
        let mut config = found.ok_or_else(|| {
            ApiError::new(
                40408,
                format!(
                    "Subject '{}' does not have subject-level compatibility configured",
                    subject.unwrap_or_default()
                ),
            )
        })?;
        if !config.contains_key("compatibilityLevel") {
            config.insert("compatibilityLevel".to_string(), json!(self.settings.default_compatibility.as_str()));
        }
        Ok(Value::Object(config))
    }

    /// DELETE /config[/{subject}]: answers the config that was removed.
    pub async fn delete_config(&self, subject: Option<&str>) -> Result<Value, ApiError> {
        let _guard = self.write_lock.lock().await;
        self.store.catch_up().await?;
        let previous = {
            let index = self.store.index();
            match subject {
                Some(s) if index.config(Some(s)).is_none() => {
                    if index.versions(s).is_none() {
                        return Err(ApiError::subject_not_found(s));
                    }
                    return Err(ApiError::new(
                        40408,
                        format!("Subject '{s}' does not have subject-level compatibility configured"),
                    ));
                }
                _ => index.config(subject).cloned().unwrap_or_default(),
            }
        };
        self.store.write(&[(Key::Config(subject.map(str::to_string)), None)]).await?;
        let mut out = previous;
        if !out.contains_key("compatibilityLevel") {
            out.insert("compatibilityLevel".to_string(), json!(self.settings.default_compatibility.as_str()));
        }
        Ok(Value::Object(out))
    }

    /// PUT /mode[/{subject}].
    pub async fn set_mode(&self, subject: Option<&str>, mode: &str, force: bool) -> Result<Value, ApiError> {
        let mode = mode.trim().to_ascii_uppercase();
        if !MODES.contains(&mode.as_str()) {
            return Err(ApiError::new(
                42204,
                format!(
                    "Invalid mode. Valid values are READWRITE, READONLY, READONLY_OVERRIDE and IMPORT; got '{mode}'"
                ),
            ));
        }
        if let Some(s) = subject {
            check_subject(s)?;
        }
        let _guard = self.write_lock.lock().await;
        self.store.catch_up().await?;
        {
            let index = self.store.index();
            if mode == "IMPORT" && Self::mode_of(&index, subject) != "IMPORT" && !force {
                let has_schemas = match subject {
                    None => index.subjects().any(|(_, vs)| vs.values().any(|v| !v.deleted)),
                    Some(s) => index.versions(s).is_some_and(|vs| vs.values().any(|v| !v.deleted)),
                };
                if has_schemas {
                    return Err(ApiError::not_permitted(
                        "Cannot import since found existing subjects; set force=true to import into a registry that \
                         has schemas",
                    ));
                }
            }
        }
        let value = ModeValue { subject: subject.map(str::to_string), mode: mode.clone() };
        let bytes = serde_json::to_vec(&value).map_err(ApiError::store)?;
        self.store.write(&[(Key::Mode(subject.map(str::to_string)), Some(bytes))]).await?;
        Ok(json!({"mode": mode}))
    }

    /// GET /mode[/{subject}].
    pub fn get_mode(&self, subject: Option<&str>, default_to_global: bool) -> Result<Value, ApiError> {
        let index = self.store.index();
        let mode = match subject {
            None => Some(Self::mode_of(&index, None)),
            Some(s) => index
                .mode(Some(s))
                .map(str::to_string)
                .or_else(|| default_to_global.then(|| Self::mode_of(&index, None))),
        };
        mode.map(|m| json!({"mode": m})).ok_or_else(|| {
            ApiError::new(
                40409,
                format!("Subject '{}' does not have subject-level mode configured", subject.unwrap_or_default()),
            )
        })
    }

    /// DELETE /mode/{subject} (or the global mode): answers the removed mode.
    pub async fn delete_mode(&self, subject: Option<&str>) -> Result<Value, ApiError> {
        let _guard = self.write_lock.lock().await;
        self.store.catch_up().await?;
        let previous = {
            let index = self.store.index();
            match subject {
                Some(s) => index.mode(Some(s)).map(str::to_string).ok_or_else(|| {
                    ApiError::new(40409, format!("Subject '{s}' does not have subject-level mode configured"))
                })?,
                None => Self::mode_of(&index, None),
            }
        };
        self.store.write(&[(Key::Mode(subject.map(str::to_string)), None)]).await?;
        Ok(json!({"mode": previous}))
    }

    /// GET /schemas/ids/{id}, with `format` applied.
    pub fn schema_by_id(&self, id: i32, format: Option<&str>, fetch_max_id: bool) -> Result<Value, ApiError> {
        let index = self.store.index();
        let v = index.schema_by_id(id).ok_or_else(ApiError::schema_not_found)?;
        let mut out = Map::new();
        let mut fields = Map::new();
        schema_fields(v, &mut fields);
        if let Some(format) = format.filter(|f| !f.is_empty()) {
            let parsed = self.parse_stored(&index, v, false)?;
            let text = parsed.formatted(format).map_err(schema_error)?;
            fields.insert("schema".to_string(), json!(text));
        }
        for key in ["schemaType", "schema", "references", "metadata", "ruleSet"] {
            if let Some(value) = fields.remove(key) {
                out.insert(key.to_string(), value);
            }
        }
        if fetch_max_id {
            out.insert("maxId".to_string(), json!(index.max_id()));
        }
        Ok(Value::Object(out))
    }

    /// A stored version with `format` applied to its text.
    pub fn formatted_text(&self, v: &SchemaValue, format: Option<&str>) -> Result<String, ApiError> {
        match format.filter(|f| !f.is_empty()) {
            None => Ok(v.schema.clone()),
            Some(format) => {
                let index = self.store.index();
                self.parse_stored(&index, v, false)?.formatted(format).map_err(schema_error)
            }
        }
    }

    /// The subjects and versions carrying `id`.
    pub fn id_versions(&self, id: i32, deleted: bool) -> Result<Vec<(String, i32)>, ApiError> {
        let index = self.store.index();
        let set = index.id_versions(id).ok_or_else(ApiError::schema_not_found)?;
        let out: Vec<(String, i32)> =
            set.iter().filter(|(s, v)| deleted || index.version(s, *v).is_some_and(|x| !x.deleted)).cloned().collect();
        Ok(out)
    }

    /// Subjects, filtered by prefix and deletion state.
    pub fn subjects(&self, prefix: &str, deleted: bool, deleted_only: bool) -> Vec<String> {
        let index = self.store.index();
        index
            .subjects()
            .filter(|(s, _)| s.starts_with(prefix))
            .filter(|(_, vs)| {
                let live = vs.values().any(|v| !v.deleted);
                let dead = vs.values().any(|v| v.deleted);
                if deleted_only { dead && !live } else { live || (deleted && dead) }
            })
            .map(|(s, _)| s.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect()
    }

    /// A version of a subject (`deleted`: soft-deleted ones count too).
    pub fn get_version(&self, subject: &str, spec: VersionSpec, deleted: bool) -> Result<SchemaValue, ApiError> {
        let index = self.store.index();
        let versions = index
            .versions(subject)
            .filter(|vs| deleted || vs.values().any(|v| !v.deleted))
            .ok_or_else(|| ApiError::subject_not_found(subject))?;
        let found = match spec {
            VersionSpec::Latest => versions.values().rev().find(|v| deleted || !v.deleted),
            VersionSpec::Exact(n) => versions.get(&n).filter(|v| deleted || !v.deleted),
        };
        let label = match spec {
            VersionSpec::Latest => "latest".to_string(),
            VersionSpec::Exact(n) => n.to_string(),
        };
        found.cloned().ok_or_else(|| ApiError::version_not_found(subject, &label))
    }

    /// Version numbers of a subject.
    pub fn versions(
        &self,
        subject: &str,
        deleted: bool,
        deleted_only: bool,
        deleted_as_negative: bool,
    ) -> Result<Vec<i32>, ApiError> {
        let index = self.store.index();
        let versions = index.versions(subject).ok_or_else(|| ApiError::subject_not_found(subject))?;
        let out: Vec<i32> = versions
            .values()
            .filter_map(|v| match (v.deleted, deleted_only, deleted || deleted_as_negative) {
                (true, true, _) => Some(if deleted_as_negative { -v.version } else { v.version }),
                (false, true, _) => None,
                (true, false, true) => Some(if deleted_as_negative { -v.version } else { v.version }),
                (true, false, false) => None,
                (false, false, _) => Some(v.version),
            })
            .collect();
        if out.is_empty() && !deleted_only {
            return Err(ApiError::subject_not_found(subject));
        }
        Ok(out)
    }

    /// Ids of the schemas that reference a version.
    pub fn referenced_by(&self, subject: &str, spec: VersionSpec, deleted: bool) -> Result<Vec<i32>, ApiError> {
        let v = self.get_version(subject, spec, deleted)?;
        let index = self.store.index();
        let ids: BTreeSet<i32> = index
            .referenced_by(subject, v.version)
            .into_iter()
            .filter(|r| deleted || !r.deleted)
            .map(|r| r.id)
            .collect();
        Ok(ids.into_iter().collect())
    }

    /// GET /schemas: every version (or the newest of each subject).
    pub fn all_schemas(&self, prefix: &str, deleted: bool, latest_only: bool) -> Vec<Value> {
        let index = self.store.index();
        let mut out = Vec::new();
        for (subject, versions) in index.subjects().filter(|(s, _)| s.starts_with(prefix)) {
            let live: Vec<&SchemaValue> = versions.values().filter(|v| deleted || !v.deleted).collect();
            if latest_only {
                out.extend(live.last().map(|v| version_json(v)));
            } else {
                out.extend(live.iter().map(|v| version_json(v)));
            }
            let _ = subject;
        }
        out
    }
}

fn content_of(parsed: &ParsedSchema) -> Content {
    Content {
        schema_type: parsed.schema_type().as_str().to_string(),
        schema: parsed.canonical().to_string(),
        references: from_schema_refs(parsed.references()),
    }
}

fn register_answer(v: &SchemaValue) -> Value {
    let mut out = Map::new();
    out.insert("id".to_string(), json!(v.id));
    out.insert("version".to_string(), json!(v.version));
    out.insert("subject".to_string(), json!(v.subject));
    schema_fields(v, &mut out);
    Value::Object(out)
}

fn reference_exists(subject: &str, version: i32, by: &SchemaValue) -> ApiError {
    ApiError::new(
        42206,
        format!(
            "One or more references exist to the schema {{subject={subject}, version={version}}}: it is referenced by \
             subject '{}' version {}",
            by.subject, by.version
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_like_confluent() {
        assert_eq!(VersionSpec::parse("latest"), Ok(VersionSpec::Latest));
        assert_eq!(VersionSpec::parse("-1"), Ok(VersionSpec::Latest));
        assert_eq!(VersionSpec::parse("3"), Ok(VersionSpec::Exact(3)));
        for bad in ["0", "-2", "x", "99999999999"] {
            assert_eq!(VersionSpec::parse(bad).map_err(|e| e.code), Err(42202), "{bad}");
        }
    }

    #[test]
    fn pages_and_subject_names() {
        assert_eq!(page(vec![1, 2, 3, 4], Some(1), Some(2)), vec![2, 3]);
        assert_eq!(page(vec![1, 2], None, Some(-1)), vec![1, 2]);
        assert_eq!(page(vec![1, 2], Some(5), None), Vec::<i32>::new());
        assert!(check_subject("orders-value").is_ok());
        assert_eq!(check_subject("").map_err(|e| e.code), Err(42208));
        assert_eq!(check_subject("a\nb").map_err(|e| e.code), Err(42208));
    }
}
