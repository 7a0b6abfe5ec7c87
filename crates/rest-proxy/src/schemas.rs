//! Keys and values in schema-registry formats: which schema a record's
//! `key`/`value` names, fetched (or registered) through the schema registry,
//! and the data serialized as Confluent's serializers do (magic byte 0, the
//! schema id as 4 big-endian bytes, then the datum).
//!
//! The schema is chosen as kafka-rest does (v3 records are first held to
//! its field combinations in `v3/records.rs`; v2 names its schema by
//! `*_schema` or `*_schema_id` with the format of its Content-Type):
//! - `schema_id`: that schema (not with `schema_version` or `schema`);
//! - `schema_version` (-1 = latest): that version of the subject (not with `schema`);
//! - `schema` with `type`: registered under the subject (or found, if it is there);
//! - none of these and no `type`: the subject's latest version.
//!
//! The subject is `subject` if given, else from `subject_name_strategy`:
//! `TOPIC_NAME` (the default, `<topic>-key` / `<topic>-value`), or
//! `RECORD_NAME` / `TOPIC_RECORD_NAME`, which need the record name and so an
//! inline `schema` or a `schema_id`.
//!
//! AVRO data is Avro's JSON encoding. JSONSCHEMA and PROTOBUF are not
//! serialized yet: they are refused with 400 rather than written wrong.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::Mutex;
use tributary_registry_client::schemas::{LookupError, SchemaCache};
use tributary_registry_client::{CallError, RegistryClient, encode as url_encode};
use tributary_schema::{ParsedSchema, SchemaSource, SchemaType};

use crate::error::RestError;

/// How long "the subject's latest version" is reused before it is asked again.
const LATEST_TTL: Duration = Duration::from_secs(5);

/// What a key or value asks for, beyond its data.
#[derive(Debug, Clone, Default)]
pub struct SchemaRequest {
    /// `type`: AVRO, JSONSCHEMA or PROTOBUF, or `None` (the subject's latest schema).
    pub format: Option<String>,
    pub subject: Option<String>,
    pub subject_name_strategy: Option<String>,
    pub schema_id: Option<i32>,
    pub schema_version: Option<i32>,
    pub schema: Option<String>,
}

/// A schema chosen for a key or value.
#[derive(Debug, Clone)]
struct Chosen {
    id: i32,
    version: Option<i32>,
    subject: String,
    schema: Arc<ParsedSchema>,
}

/// The serialized key or value and its delivery-report fields.
#[derive(Debug)]
pub struct Serialized {
    pub bytes: Vec<u8>,
    pub report: Value,
}

/// A registered schema's id and, when the registry said, its version.
type IdAndVersion = (i32, Option<i32>);

/// The schema registry behind the proxy, with what it has answered cached.
#[derive(Debug)]
pub struct Schemas {
    cache: SchemaCache,
    /// (subject, version) → id, for fixed versions.
    versions: Mutex<HashMap<(String, i32), i32>>,
    /// (subject, type and text) → what registering it answered.
    registered: Mutex<HashMap<(String, String), IdAndVersion>>,
    latest: Mutex<HashMap<String, (Instant, i32, i32)>>,
}

fn bad(message: impl Into<String>) -> RestError {
    RestError::status(400, message)
}

fn registry_error(e: CallError, what: &str) -> RestError {
    match e {
        CallError::Registry { status: 404, message, .. } => {
            RestError { status: 404, error_code: 40401, message: format!("{what}: {message}") }
        }
        CallError::Registry { status, message, code } if (400..500).contains(&status) => RestError {
            status: 422,
            error_code: 42201,
            message: format!("{what}: {message}{}", code.map(|c| format!(" (registry error {c})")).unwrap_or_default()),
        },
        CallError::Unreachable { .. } => RestError { status: 408, error_code: 40801, message: format!("{what}: {e}") },
        other => RestError::status(500, format!("{what}: {other}")),
    }
}

fn schema_type(name: Option<&str>) -> SchemaType {
    match name {
        Some("JSON") => SchemaType::Json,
        Some("PROTOBUF") => SchemaType::Protobuf,
        _ => SchemaType::Avro,
    }
}

fn lookup_error(e: LookupError, what: &str) -> RestError {
    match e {
        LookupError::Call(e) => registry_error(e, what),
        LookupError::Invalid(e) => {
            RestError { status: 422, error_code: 42201, message: format!("Invalid schema: {e}") }
        }
        LookupError::TooManyReferences => bad(e.to_string()),
    }
}

impl Schemas {
    /// A registry at `url` (`http://host:port`).
    pub fn new(url: &str, timeout: Duration) -> Result<Schemas, String> {
        let client = RegistryClient::new(url, timeout).map_err(|e| e.to_string())?;
        Ok(Schemas {
            cache: SchemaCache::new(client),
            versions: Mutex::new(HashMap::new()),
            registered: Mutex::new(HashMap::new()),
            latest: Mutex::new(HashMap::new()),
        })
    }

    fn client(&self) -> &RegistryClient {
        self.cache.client()
    }

    /// Parses a schema, fetching what it references first.
    async fn parse(&self, source: SchemaSource) -> Result<ParsedSchema, RestError> {
        self.cache.parse(source).await.map_err(|e| lookup_error(e, "referenced schema"))
    }

    async fn schema_by_id(&self, id: i32) -> Result<Arc<ParsedSchema>, RestError> {
        self.cache.by_id(id).await.map_err(|e| lookup_error(e, &format!("schema id {id}")))
    }

    /// (id, version) of `version` of `subject` (-1 = latest).
    async fn subject_version(&self, subject: &str, version: i32) -> Result<(i32, i32), RestError> {
        if version >= 0 {
            if let Some(id) = self.versions.lock().await.get(&(subject.to_string(), version)) {
                return Ok((*id, version));
            }
        } else if let Some((at, id, v)) = self.latest.lock().await.get(subject)
            && at.elapsed() < LATEST_TTL
        {
            return Ok((*id, *v));
        }
        let label = if version < 0 { "latest".to_string() } else { version.to_string() };
        let answer = self
            .client()
            .get(&format!("/subjects/{}/versions/{label}", url_encode(subject)))
            .await
            .map_err(|e| registry_error(e, &format!("version {label} of subject {subject}")))?;
        let id = answer.get("id").and_then(Value::as_i64).and_then(|i| i32::try_from(i).ok());
        let found = answer.get("version").and_then(Value::as_i64).and_then(|i| i32::try_from(i).ok());
        let (Some(id), Some(found)) = (id, found) else {
            return Err(RestError::status(500, format!("the registry's answer for subject {subject} has no id")));
        };
        self.versions.lock().await.insert((subject.to_string(), found), id);
        if version < 0 {
            self.latest.lock().await.insert(subject.to_string(), (Instant::now(), id, found));
        }
        Ok((id, found))
    }

    /// Registers `text` under `subject` (or finds it there): (id, version).
    async fn register(&self, subject: &str, kind: SchemaType, text: &str) -> Result<IdAndVersion, RestError> {
        let key = (subject.to_string(), format!("{}:{text}", kind.as_str()));
        if let Some(found) = self.registered.lock().await.get(&key) {
            return Ok(*found);
        }
        let body = json!({"schema": text, "schemaType": kind.as_str()});
        let path = format!("/subjects/{}/versions", url_encode(subject));
        let answer = self
            .client()
            .post(&path, &body)
            .await
            .map_err(|e| registry_error(e, &format!("register under {subject}")))?;
        let Some(id) = answer.get("id").and_then(Value::as_i64).and_then(|i| i32::try_from(i).ok()) else {
            return Err(RestError::status(500, format!("the registry's answer for subject {subject} has no id")));
        };
        // The version, as the report shows it.
        let lookup = self.client().post(&format!("/subjects/{}", url_encode(subject)), &body).await.ok();
        let version =
            lookup.as_ref().and_then(|v| v.get("version")).and_then(Value::as_i64).and_then(|i| i32::try_from(i).ok());
        self.registered.lock().await.insert(key, (id, version));
        Ok((id, version))
    }

    async fn choose(&self, topic: &str, is_key: bool, r: &SchemaRequest) -> Result<Chosen, RestError> {
        let which = if is_key { "key" } else { "value" };
        if r.schema_id.is_some() && (r.schema_version.is_some() || r.schema.is_some()) {
            return Err(bad(format!("{which}: schema_id cannot be combined with schema_version or schema")));
        }
        if r.schema_version.is_some() && r.schema.is_some() {
            return Err(bad(format!("{which}: schema_version cannot be combined with schema")));
        }
        if r.schema.is_some() && r.format.is_none() {
            return Err(bad(format!("{which}: an inline schema needs a type (AVRO, JSONSCHEMA or PROTOBUF)")));
        }
        let wanted =
            r.format.as_deref().map(|f| if f == "JSONSCHEMA" { SchemaType::Json } else { schema_type(Some(f)) });
        // An inline schema is parsed first: the record-name strategies need its name.
        let inline = match (&r.schema, wanted) {
            (Some(text), Some(kind)) => Some(
                self.parse(SchemaSource { schema_type: kind, schema: text.clone(), references: Vec::new() }).await?,
            ),
            _ => None,
        };
        let by_id = match r.schema_id {
            Some(id) => Some((id, self.schema_by_id(id).await?)),
            None => None,
        };
        let named = inline.as_ref().or(by_id.as_ref().map(|(_, s)| s.as_ref()));
        let subject = match (&r.subject, r.subject_name_strategy.as_deref()) {
            (Some(s), _) => s.clone(),
            (None, None | Some("TOPIC_NAME")) => format!("{topic}-{which}"),
            (None, Some(strategy @ ("RECORD_NAME" | "TOPIC_RECORD_NAME"))) => {
                let Some(name) = named.and_then(ParsedSchema::name) else {
                    return Err(bad(format!(
                        "{which}: {strategy} needs the record's name, so give the schema inline or by schema_id"
                    )));
                };
                if strategy == "RECORD_NAME" { name } else { format!("{topic}-{name}") }
            }
            (None, Some(other)) => {
                return Err(bad(format!(
                    "{which}: unknown subject_name_strategy {other:?}; use TOPIC_NAME, RECORD_NAME or TOPIC_RECORD_NAME"
                )));
            }
        };
        let (id, version, schema) = if let Some((id, schema)) = by_id {
            (id, None, schema)
        } else if let (Some(parsed), Some(text)) = (inline, &r.schema) {
            let (id, version) = self.register(&subject, parsed.schema_type(), text).await?;
            (id, version, self.schema_by_id(id).await?)
        } else {
            let (id, version) = self.subject_version(&subject, r.schema_version.unwrap_or(-1)).await?;
            (id, Some(version), self.schema_by_id(id).await?)
        };
        if let Some(kind) = wanted
            && kind != schema.schema_type()
        {
            return Err(bad(format!(
                "{which}: type {} does not match schema {id}, which is {}",
                r.format.as_deref().unwrap_or_default(),
                schema.schema_type().as_str()
            )));
        }
        Ok(Chosen { id, version, subject, schema })
    }

    /// Serializes `data` for `topic`'s key or value with the schema `request` names.
    pub async fn serialize(
        &self,
        topic: &str,
        is_key: bool,
        request: &SchemaRequest,
        data: &Value,
    ) -> Result<Serialized, RestError> {
        let which = if is_key { "key" } else { "value" };
        let chosen = self.choose(topic, is_key, request).await?;
        let (format, datum) = match chosen.schema.schema_type() {
            SchemaType::Avro => {
                let datum = chosen
                    .schema
                    .avro_datum_from_json(data)
                    .unwrap_or_else(|| Err("not an Avro schema".to_string()))
                    .map_err(|e| RestError {
                        status: 400,
                        error_code: 400,
                        message: format!("{which}: the data does not match schema {}: {e}", chosen.id),
                    })?;
                ("AVRO", datum)
            }
            other => {
                return Err(bad(format!(
                    "{which}: {} data is not serialized by this REST proxy yet; use AVRO, BINARY, JSON or STRING",
                    if other == SchemaType::Json { "JSONSCHEMA" } else { other.as_str() }
                )));
            }
        };
        let mut bytes = Vec::with_capacity(5 + datum.len());
        bytes.push(0);
        bytes.extend_from_slice(&chosen.id.to_be_bytes());
        bytes.extend_from_slice(&datum);
        let report = json!({
            "type": format,
            "size": bytes.len(),
            "subject": chosen.subject,
            "schema_id": chosen.id,
            "schema_version": chosen.version,
        });
        Ok(Serialized { bytes, report })
    }

    /// An Avro key or value as written by a Confluent serializer, in Avro's JSON encoding.
    pub async fn deserialize_avro(&self, framed: &[u8]) -> Result<Value, RestError> {
        let (id, datum) = tributary_schema::split_framed(framed).map_err(|e| RestError {
            status: 500,
            error_code: 50002,
            message: format!("not in the schema registry's framing: {e}"),
        })?;
        let schema = self.schema_by_id(id).await?;
        match schema.avro_datum_to_json(datum) {
            Some(Ok(v)) => Ok(v),
            Some(Err(e)) => Err(RestError::status(500, format!("cannot read the datum with schema {id}: {e}"))),
            None => Err(RestError::status(500, format!("schema {id} is not an Avro schema"))),
        }
    }
}
