//! Schemas read from the registry, parsed with `tributary-schema` and cached
//! by id: what every reader of framed records needs (the REST proxy's
//! consumers, `tributary topic consume`) and every writer that names a
//! schema by id, version or subject.
//!
//! ```text
//! by_id(id) ──▶ cache ──▶ GET /schemas/ids/<id> ──▶ references: GET /subjects/<s>/versions/<v>
//!           (transitively, ≤ 100) ──▶ tributary_schema::parse ──▶ cached Arc<ParsedSchema>
//! ```

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use serde_json::Value;
use tributary_schema::{
    ParseOptions, ParsedSchema, ReferenceResolver, SchemaError, SchemaReference, SchemaSource, SchemaType,
};

use crate::{CallError, RegistryClient, encode};

/// Most schemas one schema may reference, transitively.
pub const MAX_REFERENCES: usize = 100;

/// Why a schema could not be had.
#[derive(Debug)]
pub enum LookupError {
    /// The registry could not be reached or answered an error.
    Call(CallError),
    /// The schema (or one it references) does not parse.
    Invalid(SchemaError),
    /// More references than [`MAX_REFERENCES`].
    TooManyReferences,
}

impl std::fmt::Display for LookupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LookupError::Call(e) => write!(f, "{e}"),
            LookupError::Invalid(e) => write!(f, "{e}"),
            LookupError::TooManyReferences => write!(f, "the schema references more than {MAX_REFERENCES} schemas"),
        }
    }
}

impl std::error::Error for LookupError {}

/// The `schemaType` of a registry answer (AVRO when absent, as the registry means it).
pub fn schema_type_of(answer: &Value) -> SchemaType {
    answer.get("schemaType").and_then(Value::as_str).and_then(|t| t.parse().ok()).unwrap_or(SchemaType::Avro)
}

/// The `references` of a registry answer.
pub fn references_of(answer: &Value) -> Vec<SchemaReference> {
    answer.get("references").and_then(|r| serde_json::from_value(r.clone()).ok()).unwrap_or_default()
}

/// The schema a registry answer (`/schemas/ids/..`, `/subjects/../versions/..`) holds.
pub fn source_of(answer: &Value) -> SchemaSource {
    SchemaSource {
        schema_type: schema_type_of(answer),
        schema: answer.get("schema").and_then(Value::as_str).unwrap_or_default().to_string(),
        references: references_of(answer),
    }
}

/// Referenced schemas fetched beforehand, for the parser's synchronous resolver.
struct Fetched(HashMap<(String, i32), SchemaSource>);

impl ReferenceResolver for Fetched {
    fn resolve(&self, r: &SchemaReference) -> Option<SchemaSource> {
        self.0.get(&(r.subject.clone(), r.version)).cloned()
    }
}

/// A registry client with the schemas it has read cached by id; shareable.
#[derive(Debug)]
pub struct SchemaCache {
    client: RegistryClient,
    by_id: Mutex<HashMap<i32, Arc<ParsedSchema>>>,
}

impl SchemaCache {
    /// A cache over `client`.
    pub fn new(client: RegistryClient) -> SchemaCache {
        SchemaCache { client, by_id: Mutex::new(HashMap::new()) }
    }

    /// The client, for other calls.
    pub fn client(&self) -> &RegistryClient {
        &self.client
    }

    /// Parses `source`, fetching the schemas it references first.
    pub async fn parse(&self, source: SchemaSource) -> Result<ParsedSchema, LookupError> {
        let mut fetched = HashMap::new();
        let mut queue: Vec<SchemaReference> = source.references.clone();
        while let Some(r) = queue.pop() {
            let key = (r.subject.clone(), r.version);
            if fetched.contains_key(&key) {
                continue;
            }
            if fetched.len() >= MAX_REFERENCES {
                return Err(LookupError::TooManyReferences);
            }
            let path = format!("/subjects/{}/versions/{}", encode(&r.subject), r.version);
            let answer = self.client.get(&path).await.map_err(LookupError::Call)?;
            let referenced = source_of(&answer);
            queue.extend(referenced.references.iter().cloned());
            fetched.insert(key, referenced);
        }
        tributary_schema::parse(&source, &Fetched(fetched), &ParseOptions::default()).map_err(LookupError::Invalid)
    }

    /// The schema registered under `id`.
    pub async fn by_id(&self, id: i32) -> Result<Arc<ParsedSchema>, LookupError> {
        if let Some(s) = self.by_id.lock().unwrap_or_else(PoisonError::into_inner).get(&id) {
            return Ok(s.clone());
        }
        let answer = self.client.get(&format!("/schemas/ids/{id}")).await.map_err(LookupError::Call)?;
        let parsed = Arc::new(self.parse(source_of(&answer)).await?);
        self.by_id.lock().unwrap_or_else(PoisonError::into_inner).insert(id, parsed.clone());
        Ok(parsed)
    }
}
