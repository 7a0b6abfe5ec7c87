//! Schema formats for `topic produce` and `topic consume`: schemas found or
//! registered through the schema registry (`tributary-registry-client`),
//! records encoded and decoded by `tributary_schema::datum`, framed as
//! Confluent's serializers frame them.
//!
//! ```text
//! produce: --schema FILE ──▶ parse ──▶ POST /subjects/<subject>/versions ──▶ id
//!          (no file)     ──▶ GET /subjects/<subject>/versions/latest ──▶ id, schema
//!          each line (JSON) ──▶ Codec::framed(id, value)
//! consume: value ──▶ magic 0 + id ──▶ GET /schemas/ids/<id> (cached) ──▶ datum::decode ──▶ JSON
//! ```

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use clap::ValueEnum;
use serde_json::{Value, json};
use tributary_registry_client::schemas::{LookupError, SchemaCache, source_of};
use tributary_registry_client::{CallError, RegistryClient, encode as url_encode};
use tributary_schema::datum::{Codec, decode};
use tributary_schema::{ParsedSchema, SchemaSource, SchemaType};

use crate::cli::{Exit, Failure};

/// A schema format records are written in.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum SchemaFormat {
    /// Avro (Avro's JSON encoding on the command line).
    Avro,
    /// JSON Schema (plain JSON, validated).
    #[value(name = "json-schema", alias = "json", alias = "jsonschema")]
    JsonSchema,
    /// Protobuf (the Protobuf JSON mapping).
    Protobuf,
}

impl SchemaFormat {
    /// The format a schema file's extension names (.avsc, .json, .proto).
    pub fn from_path(path: &Path) -> Option<SchemaFormat> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "avsc" | "avro" => Some(SchemaFormat::Avro),
            "json" => Some(SchemaFormat::JsonSchema),
            "proto" => Some(SchemaFormat::Protobuf),
            _ => None,
        }
    }

    fn schema_type(self) -> SchemaType {
        match self {
            SchemaFormat::Avro => SchemaType::Avro,
            SchemaFormat::JsonSchema => SchemaType::Json,
            SchemaFormat::Protobuf => SchemaType::Protobuf,
        }
    }
}

/// How `topic consume` reads keys or values.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq, Default)]
pub enum DecodeFormat {
    /// The bytes as they are.
    #[default]
    Raw,
    /// Framed Avro, printed in Avro's JSON encoding.
    Avro,
    /// Framed JSON Schema documents.
    #[value(name = "json-schema", alias = "json", alias = "jsonschema")]
    JsonSchema,
    /// Framed Protobuf, printed in the Protobuf JSON mapping.
    Protobuf,
    /// Whatever the schema id of a framed value says; other values as they are.
    Auto,
}

/// Keys or values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Key,
    Value,
}

impl Side {
    pub fn name(self) -> &'static str {
        match self {
            Side::Key => "key",
            Side::Value => "value",
        }
    }
}

/// The schema registry, with the schemas it has answered cached by id.
#[derive(Debug)]
pub struct Registry {
    cache: SchemaCache,
}

impl Registry {
    /// A registry at `url`.
    pub fn new(url: &str, timeout: Duration) -> Result<Registry, String> {
        let client = RegistryClient::new(url, timeout).map_err(|e| e.to_string())?;
        Ok(Registry { cache: SchemaCache::new(client) })
    }

    fn client(&self) -> &RegistryClient {
        self.cache.client()
    }

    fn failure(&self, e: LookupError, what: &str) -> Failure {
        match e {
            LookupError::Call(e @ CallError::Unreachable { .. }) => (
                Exit::Unreachable,
                format!(
                    "{what}: {e} (`tributary start` runs one; set it with --schema-registry-url, \
                     TRIBUTARY_SCHEMA_REGISTRY_URL or a profile)"
                ),
            ),
            LookupError::Call(e @ CallError::Registry { status: 404, .. }) => (Exit::NotFound, format!("{what}: {e}")),
            other => (Exit::Failed, format!("{what}: {other}")),
        }
    }

    /// Parses a schema, fetching what it references first.
    async fn parse(&self, source: SchemaSource) -> Result<ParsedSchema, Failure> {
        self.cache.parse(source).await.map_err(|e| self.failure(e, "the schema"))
    }

    /// The schema registered under `id`.
    pub async fn schema_by_id(&mut self, id: i32) -> Result<Arc<ParsedSchema>, Failure> {
        self.cache.by_id(id).await.map_err(|e| self.failure(e, &format!("schema id {id}")))
    }
}

/// Writes keys or values in one schema.
#[derive(Debug)]
pub struct Encoder {
    id: i32,
    codec: Codec,
}

impl Encoder {
    /// Registers the schema in `file` under `subject` (or, without a file,
    /// takes the subject's latest version) and prepares to write `format`.
    pub async fn new(
        registry: &Registry,
        format: SchemaFormat,
        file: Option<&Path>,
        subject: &str,
        message: Option<&str>,
    ) -> Result<Encoder, Failure> {
        let (id, parsed) = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| (Exit::NotFound, format!("cannot read {}: {e}", path.display())))?;
                let source =
                    SchemaSource { schema_type: format.schema_type(), schema: text.clone(), references: Vec::new() };
                let parsed =
                    registry.parse(source).await.map_err(|(exit, m)| (exit, format!("{}: {m}", path.display())))?;
                let body = json!({"schema": text, "schemaType": format.schema_type().as_str()});
                let path_text = format!("/subjects/{}/versions", url_encode(subject));
                let answer = registry.client().post(&path_text, &body).await.map_err(|e| {
                    let what = format!("register {} under subject {subject}", path.display());
                    registry.failure(LookupError::Call(e), &what)
                })?;
                let id = answer.get("id").and_then(Value::as_i64).and_then(|i| i32::try_from(i).ok());
                (id, parsed)
            }
            None => {
                let answer = registry
                    .client()
                    .get(&format!("/subjects/{}/versions/latest", url_encode(subject)))
                    .await
                    .map_err(|e| {
                        let what = format!("the latest schema of subject {subject}");
                        let (exit, m) = registry.failure(LookupError::Call(e), &what);
                        (exit, format!("{m}; pass --schema FILE to register one"))
                    })?;
                let source = source_of(&answer);
                let id = answer.get("id").and_then(Value::as_i64).and_then(|i| i32::try_from(i).ok());
                (id, registry.parse(source).await?)
            }
        };
        let id = id.ok_or_else(|| (Exit::Failed, format!("the registry's answer for subject {subject} has no id")))?;
        if parsed.schema_type() != format.schema_type() {
            return Err((
                Exit::Usage,
                format!("subject {subject} holds a {} schema, not {}", parsed.schema_type(), format.schema_type()),
            ));
        }
        let codec = Codec::new(&parsed, message).map_err(|e| (Exit::Usage, e))?;
        Ok(Encoder { id, codec })
    }

    /// One input (the record's JSON form) as framed bytes.
    pub fn encode(&self, input: &[u8]) -> Result<Vec<u8>, String> {
        let value: Value = serde_json::from_slice(input).map_err(|e| format!("not JSON: {e}"))?;
        self.codec.framed(self.id, &value)
    }
}

/// A decoded key or value: its JSON form and the schema id it was written with.
pub type Decoded = Option<(Value, i32)>;

/// Decodes one framed key or value as `format` says; `Ok(None)` when the
/// format is raw, or auto and the bytes are not framed by a known schema.
pub async fn decode_framed(registry: &mut Registry, format: DecodeFormat, bytes: &[u8]) -> Result<Decoded, String> {
    let wanted = match format {
        DecodeFormat::Raw => return Ok(None),
        DecodeFormat::Avro => Some(SchemaType::Avro),
        DecodeFormat::JsonSchema => Some(SchemaType::Json),
        DecodeFormat::Protobuf => Some(SchemaType::Protobuf),
        DecodeFormat::Auto => None,
    };
    let (id, payload) = match tributary_schema::split_framed(bytes) {
        Ok(split) => split,
        Err(_) if wanted.is_none() => return Ok(None),
        Err(e) => return Err(format!("not written by a schema registry serializer: {e}")),
    };
    let schema = match registry.schema_by_id(id).await {
        Ok(s) => s,
        Err((Exit::NotFound, _)) if wanted.is_none() => return Ok(None),
        Err((_, m)) => return Err(m),
    };
    if let Some(t) = wanted
        && t != schema.schema_type()
    {
        return Err(format!("schema {id} is {}, not {t}", schema.schema_type()));
    }
    decode(&schema, payload).map(|v| Some((v, id))).map_err(|e| format!("schema {id}: {e}"))
}
