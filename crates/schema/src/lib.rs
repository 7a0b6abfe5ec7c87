//! The Schema Registry's format layer: everything the registry needs to know about a schema's
//! *text*, and nothing about storage or the network.
//!
//! One job: turn a submitted schema (type, text, references to other registered schemas) into a
//! [`ParsedSchema`] the way Confluent Schema Registry does, so that the registry built on top can
//! reject what Confluent rejects, store and return the same canonical text, give the same id to
//! the same schema, and reach the same compatibility verdicts with similar messages.
//!
//! ```text
//!   SchemaSource ──▶ parse() ──▶ ParsedSchema ──▶ canonical() / formatted() / name() / is_same()
//!        │   ▲                        │
//!        ▼   │ ReferenceResolver      └──▶ check_compatibility(level, new, previous)
//!   references (other subjects)
//! ```
//!
//! Modules:
//! - [`json_value`]: an order-preserving, depth-bounded JSON parser and the JVM-style printer
//!   used for Avro and JSON Schema canonical text.
//! - `references`: walks a schema's references through the caller's [`ReferenceResolver`]
//!   (never the network or file system), with cycle, depth and count limits.
//! - `avro`: Avro schema model, Java-compatible parsing rules and `toString()` printing,
//!   normalization, and reference inlining (`format=resolved`).
//! - `json`: JSON Schema parsing, `$ref` resolution against references, canonical text.
//! - `protobuf`: `.proto` parsing and compilation (imports resolved through references, the
//!   well-known `google/protobuf/*` files built in), re-printing in Confluent's layout,
//!   normalization and `format=serialized`.
//! - `compat`: the compatibility rules per format (`compat::avro` reader/writer resolution,
//!   `compat::json` and `compat::protobuf` schema diffs) and the level logic.
//! - `avro_json`: Avro datums from Avro's JSON encoding (the REST proxy's AVRO data).
//! - [`framing`]: the serializer wire format (magic byte, schema id, Protobuf message indexes).
//! - [`datum`]: records in a schema's JSON form encoded as Confluent's serializers write them
//!   (Avro datums, validated JSON Schema documents, Protobuf messages with their indexes), and back.
//!
//! Limits ([`ParseOptions`]) are checked before any recursive parser sees the text, so hostile
//! input produces a [`SchemaError`], never a stack overflow or a huge allocation.

pub mod json_value;

mod avro;
mod avro_json;
mod compat;
pub mod datum;
pub mod framing;
pub mod fuzzing;
mod json;
mod protobuf;
mod references;

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub use compat::check_compatibility;
pub use framing::{FramingError, encode_message_indexes, read_message_indexes, split_framed};

/// The three schema formats the registry accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub enum SchemaType {
    #[default]
    Avro,
    Json,
    Protobuf,
}

impl SchemaType {
    /// The upper-case name used on the wire (`AVRO`, `JSON`, `PROTOBUF`).
    pub fn as_str(self) -> &'static str {
        match self {
            SchemaType::Avro => "AVRO",
            SchemaType::Json => "JSON",
            SchemaType::Protobuf => "PROTOBUF",
        }
    }

    /// All types, in the order `GET /schemas/types` lists them.
    pub const ALL: [SchemaType; 3] = [SchemaType::Json, SchemaType::Protobuf, SchemaType::Avro];
}

impl fmt::Display for SchemaType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error of parsing an unknown schema type name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown schema type '{0}' (expected AVRO, JSON or PROTOBUF)")]
pub struct UnknownSchemaType(pub String);

impl FromStr for SchemaType {
    type Err = UnknownSchemaType;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_uppercase().as_str() {
            "AVRO" => Ok(SchemaType::Avro),
            "JSON" => Ok(SchemaType::Json),
            "PROTOBUF" => Ok(SchemaType::Protobuf),
            _ => Err(UnknownSchemaType(s.to_string())),
        }
    }
}

impl Serialize for SchemaType {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for SchemaType {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A reference from one schema to another registered schema, as in Confluent's JSON:
/// `{"name": "...", "subject": "...", "version": 1}`.
///
/// `name` is what the referencing schema uses: the full name of an Avro named type, the import
/// path of a Protobuf file (`other.proto`), or the `$ref` target of a JSON Schema.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SchemaReference {
    pub name: String,
    pub subject: String,
    pub version: i32,
}

/// A schema as submitted or as stored: its type, its text and its references.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SchemaSource {
    pub schema_type: SchemaType,
    pub schema: String,
    pub references: Vec<SchemaReference>,
}

/// Looks up a reference (subject + version) and returns its stored source, or `None` if it does
/// not exist. The registry implements this over its store; tests use a map.
pub trait ReferenceResolver {
    fn resolve(&self, reference: &SchemaReference) -> Option<SchemaSource>;
}

/// A resolver that knows no references (for schemas without any).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoReferences;

impl ReferenceResolver for NoReferences {
    fn resolve(&self, _reference: &SchemaReference) -> Option<SchemaSource> {
        None
    }
}

impl<F> ReferenceResolver for F
where
    F: Fn(&SchemaReference) -> Option<SchemaSource>,
{
    fn resolve(&self, reference: &SchemaReference) -> Option<SchemaSource> {
        self(reference)
    }
}

/// Options and limits for [`parse`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseOptions {
    /// Normalize before computing the canonical text (the registry's `normalize=true`).
    pub normalize: bool,
    /// Largest accepted schema text, in bytes, for the schema and for each referenced schema.
    pub max_schema_bytes: usize,
    /// Deepest accepted nesting: JSON arrays/objects in Avro and JSON Schema texts, nested
    /// messages and braces in Protobuf, and the length of a chain of references.
    pub max_depth: usize,
    /// Most references accepted, counting transitive ones once each.
    pub max_references: usize,
}

impl ParseOptions {
    /// Default limits: 1 MiB per schema text, 64 levels of nesting, 1000 references.
    pub const DEFAULT_MAX_SCHEMA_BYTES: usize = 1024 * 1024;
    pub const DEFAULT_MAX_DEPTH: usize = 64;
    pub const DEFAULT_MAX_REFERENCES: usize = 1000;

    /// Default limits with normalization switched on or off.
    pub fn normalized(normalize: bool) -> Self {
        ParseOptions { normalize, ..ParseOptions::default() }
    }
}

impl Default for ParseOptions {
    fn default() -> Self {
        ParseOptions {
            normalize: false,
            max_schema_bytes: Self::DEFAULT_MAX_SCHEMA_BYTES,
            max_depth: Self::DEFAULT_MAX_DEPTH,
            max_references: Self::DEFAULT_MAX_REFERENCES,
        }
    }
}

/// Why a schema was rejected. The registry maps all of these to 42201 (invalid schema), except
/// that it may map [`SchemaError::TooLarge`] to 42209.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchemaError {
    /// The text is not a valid schema of its type.
    #[error("Invalid schema: {0}")]
    Invalid(String),
    /// A reference (or something the schema names) cannot be found.
    #[error("Invalid schema: unknown reference {0}")]
    UnknownReference(String),
    /// References form a cycle.
    #[error("Invalid schema: cyclic reference {0}")]
    CyclicReference(String),
    /// The text (of the schema or of a referenced schema) is larger than the limit, in bytes.
    #[error("Schema too large: more than {0} bytes")]
    TooLarge(usize),
    /// Nesting or reference chains deeper than the limit.
    #[error("Invalid schema: nested deeper than the limit of {0} levels")]
    TooDeep(usize),
}

#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // one per schema, behind an Arc
pub(crate) enum Model {
    Avro(avro::AvroModel),
    Json(json::JsonModel),
    Protobuf(protobuf::ProtoModel),
}

/// A parsed, validated schema with its canonical text. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ParsedSchema {
    schema_type: SchemaType,
    canonical: String,
    references: Vec<SchemaReference>,
    name: Option<String>,
    version: Option<i32>,
    model: Arc<Model>,
}

impl ParsedSchema {
    pub fn schema_type(&self) -> SchemaType {
        self.schema_type
    }

    /// The text Confluent stores and returns for this schema and compares for identity.
    pub fn canonical(&self) -> &str {
        &self.canonical
    }

    /// The references, as submitted (sorted and de-duplicated when normalized).
    pub fn references(&self) -> &[SchemaReference] {
        &self.references
    }

    /// Avro record full name, first Protobuf message (or enum) full name, or JSON Schema
    /// `title`, as used by `RecordNameStrategy`.
    pub fn name(&self) -> Option<String> {
        self.name.clone()
    }

    /// The version this schema has under the subject it was read from, if the caller set one;
    /// compatibility messages mention it. Not part of identity.
    pub fn version(&self) -> Option<i32> {
        self.version
    }

    /// Records the subject version this schema was read from (see [`ParsedSchema::version`]).
    pub fn with_version(mut self, version: Option<i32>) -> Self {
        self.version = version;
        self
    }

    /// The schema text in a named format: `""` or `"default"` is the canonical text; Protobuf
    /// `"serialized"` is the base64 `FileDescriptorProto`; Avro `"resolved"` inlines referenced
    /// types. Unknown formats return the canonical text, as Confluent does.
    pub fn formatted(&self, format: &str) -> Result<String, SchemaError> {
        let format = format.trim().to_ascii_lowercase();
        if format.is_empty() || format == "default" {
            return Ok(self.canonical.clone());
        }
        match self.model.as_ref() {
            Model::Avro(m) if format == "resolved" => Ok(m.resolved()),
            Model::Protobuf(m) if format == "serialized" => m.serialized(),
            Model::Protobuf(m) if format == "ignore_extensions" => Ok(m.ignore_extensions()),
            _ => Ok(self.canonical.clone()),
        }
    }

    /// Identity as Confluent decides it: same type, same canonical text, same references.
    pub fn is_same(&self, other: &ParsedSchema) -> bool {
        self.schema_type == other.schema_type
            && self.canonical == other.canonical
            && self.references == other.references
    }

    /// For an Avro schema, `data` in Avro's JSON encoding as a binary datum
    /// (without the serializer's framing); `None` for other types. The
    /// error says which field is wrong and why.
    pub fn avro_datum_from_json(&self, data: &serde_json::Value) -> Option<Result<Vec<u8>, String>> {
        match self.model.as_ref() {
            Model::Avro(m) => Some(avro_json::encode(m, data)),
            _ => None,
        }
    }

    /// For an Avro schema, a binary datum (without framing) in Avro's JSON
    /// encoding; `None` for other types.
    pub fn avro_datum_to_json(&self, datum: &[u8]) -> Option<Result<serde_json::Value, String>> {
        match self.model.as_ref() {
            Model::Avro(m) => Some(avro_json::decode(m, datum)),
            _ => None,
        }
    }

    /// For an Avro schema, the schema as an `apache_avro::Schema` (references inlined), for
    /// encoding and decoding datums; `None` for other types.
    pub fn avro_schema(&self) -> Option<Result<apache_avro::Schema, SchemaError>> {
        match self.model.as_ref() {
            Model::Avro(m) => {
                Some(apache_avro::Schema::parse_str(&m.resolved()).map_err(|e| SchemaError::Invalid(e.to_string())))
            }
            _ => None,
        }
    }

    pub(crate) fn model(&self) -> &Model {
        &self.model
    }
}

/// Parses and validates `source`, resolving its references through `resolver` only.
pub fn parse(
    source: &SchemaSource,
    resolver: &dyn ReferenceResolver,
    options: &ParseOptions,
) -> Result<ParsedSchema, SchemaError> {
    if source.schema.len() > options.max_schema_bytes {
        return Err(SchemaError::TooLarge(options.max_schema_bytes));
    }
    let resolved = references::resolve_all(source, resolver, options)?;
    let mut references = source.references.clone();
    if options.normalize {
        references.sort();
        references.dedup();
    }
    let (canonical, name, model) = match source.schema_type {
        SchemaType::Avro => {
            let m = avro::AvroModel::parse(&source.schema, &resolved, options)?;
            (m.canonical(), m.name(), Model::Avro(m))
        }
        SchemaType::Json => {
            let m = json::JsonModel::parse(&source.schema, &resolved, options)?;
            (m.canonical(), m.name(), Model::Json(m))
        }
        SchemaType::Protobuf => {
            let m = protobuf::ProtoModel::parse(&source.schema, &source.references, &resolved, options)?;
            (m.canonical(), m.name(), Model::Protobuf(m))
        }
    };
    Ok(ParsedSchema {
        schema_type: source.schema_type,
        canonical,
        references,
        name,
        version: None,
        model: Arc::new(model),
    })
}

/// The compatibility levels of Confluent Schema Registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum CompatibilityLevel {
    None,
    #[default]
    Backward,
    BackwardTransitive,
    Forward,
    ForwardTransitive,
    Full,
    FullTransitive,
}

impl CompatibilityLevel {
    pub const ALL: [CompatibilityLevel; 7] = [
        CompatibilityLevel::None,
        CompatibilityLevel::Backward,
        CompatibilityLevel::BackwardTransitive,
        CompatibilityLevel::Forward,
        CompatibilityLevel::ForwardTransitive,
        CompatibilityLevel::Full,
        CompatibilityLevel::FullTransitive,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CompatibilityLevel::None => "NONE",
            CompatibilityLevel::Backward => "BACKWARD",
            CompatibilityLevel::BackwardTransitive => "BACKWARD_TRANSITIVE",
            CompatibilityLevel::Forward => "FORWARD",
            CompatibilityLevel::ForwardTransitive => "FORWARD_TRANSITIVE",
            CompatibilityLevel::Full => "FULL",
            CompatibilityLevel::FullTransitive => "FULL_TRANSITIVE",
        }
    }
}

impl fmt::Display for CompatibilityLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error of parsing an unknown compatibility level name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Invalid compatibility level: {0}")]
pub struct UnknownCompatibilityLevel(pub String);

impl FromStr for CompatibilityLevel {
    type Err = UnknownCompatibilityLevel;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let upper = s.trim().to_ascii_uppercase();
        CompatibilityLevel::ALL
            .into_iter()
            .find(|l| l.as_str() == upper)
            .ok_or_else(|| UnknownCompatibilityLevel(s.to_string()))
    }
}

impl Serialize for CompatibilityLevel {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for CompatibilityLevel {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_and_level_names() {
        assert_eq!("protobuf".parse::<SchemaType>(), Ok(SchemaType::Protobuf));
        assert_eq!(SchemaType::default().to_string(), "AVRO");
        assert!("xml".parse::<SchemaType>().is_err());
        assert_eq!("full_transitive".parse::<CompatibilityLevel>(), Ok(CompatibilityLevel::FullTransitive));
        assert_eq!(CompatibilityLevel::BackwardTransitive.to_string(), "BACKWARD_TRANSITIVE");
        assert!("sideways".parse::<CompatibilityLevel>().is_err());
        let r: SchemaReference =
            serde_json::from_str(r#"{"name":"a.proto","subject":"a","version":2}"#).expect("reference json");
        assert_eq!(r.version, 2);
    }
}
