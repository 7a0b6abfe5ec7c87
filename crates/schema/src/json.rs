//! JSON Schema documents: parsing, `$ref` resolution against references, canonical text.
//!
//! The canonical text is the compact re-serialization of the document with its members in
//! written order (sorted by key when normalized), numbers printed as exact decimals. `$ref`s are
//! resolved inside the document (`#/definitions/...`, `#/$defs/...`) and against the referenced
//! schemas, which are matched by reference name (or by their `$id`); nothing is fetched.

use crate::json_value::{self, Json, NumberStyle};
use crate::references::Resolved;
use crate::{ParseOptions, SchemaError};

/// One document: the schema itself or a referenced one.
#[derive(Debug)]
pub(crate) struct Document {
    /// The reference name (empty for the root document).
    pub name: String,
    /// The document's `$id`, if any.
    pub id: Option<String>,
    pub json: Json,
}

#[derive(Debug)]
pub(crate) struct JsonModel {
    /// `docs[0]` is the schema; the rest are its references.
    pub docs: Vec<Document>,
    canonical: String,
}

/// Where a schema node lives: a document index and the node.
pub(crate) type NodeRef<'a> = (usize, &'a Json);

const KNOWN_TYPES: &[&str] = &["string", "number", "integer", "boolean", "null", "object", "array"];

fn invalid(message: impl Into<String>) -> SchemaError {
    SchemaError::Invalid(message.into())
}

fn parse_json(text: &str, options: &ParseOptions) -> Result<Json, SchemaError> {
    json_value::parse(text, options.max_depth).map_err(|e| match e {
        json_value::JsonError::TooDeep(limit) => SchemaError::TooDeep(limit),
        other => invalid(other.to_string()),
    })
}

/// `$schema` values whose meta-schema is bundled and can be checked without a network.
fn known_dialect(uri: &str) -> bool {
    let uri = uri.trim_end_matches('#').trim_start_matches("https://").trim_start_matches("http://");
    matches!(
        uri,
        "json-schema.org/draft-04/schema"
            | "json-schema.org/draft-06/schema"
            | "json-schema.org/draft-07/schema"
            | "json-schema.org/draft/2019-09/schema"
            | "json-schema.org/draft/2020-12/schema"
    )
}

impl JsonModel {
    pub fn parse(text: &str, references: &[Resolved], options: &ParseOptions) -> Result<JsonModel, SchemaError> {
        let root = parse_json(text, options)?;
        let mut docs = vec![Document { name: String::new(), id: id_of(&root), json: root }];
        for r in references {
            let json = parse_json(&r.source.schema, options)
                .map_err(|e| invalid(format!("referenced schema '{}' is invalid: {e}", r.name)))?;
            docs.push(Document { name: r.name.clone(), id: id_of(&json), json });
        }
        let model = JsonModel { docs, canonical: String::new() };
        for (i, doc) in model.docs.iter().enumerate() {
            check_structure(&doc.json).map_err(|m| {
                if i == 0 { invalid(m) } else { invalid(format!("referenced schema '{}': {m}", doc.name)) }
            })?;
            if let Json::Object(_) = &doc.json {
                let dialect_known = doc.json.get("$schema").and_then(Json::as_str).is_none_or(known_dialect);
                if dialect_known && let Err(e) = jsonschema::meta::validate(&doc.json.to_serde()) {
                    return Err(invalid(format!("{e} at '{}'", e.instance_path())));
                }
            }
            model.check_refs(i, &doc.json)?;
        }
        let canonical = json_value::to_compact(&model.docs[0].json, NumberStyle::BigDecimal, options.normalize);
        Ok(JsonModel { canonical, ..model })
    }

    pub fn canonical(&self) -> String {
        self.canonical.clone()
    }

    /// The root `title`, as text (Jackson's `asText()`).
    pub fn name(&self) -> Option<String> {
        let title = self.docs[0].json.get("title")?;
        Some(match title {
            Json::String(s) => s.clone(),
            Json::Number(n) => n.clone(),
            Json::Bool(b) => b.to_string(),
            Json::Null => "null".to_string(),
            Json::Array(_) | Json::Object(_) => String::new(),
        })
    }

    pub fn root(&self) -> NodeRef<'_> {
        (0, &self.docs[0].json)
    }

    /// Every `$ref` below `node` must resolve.
    fn check_refs(&self, doc: usize, node: &Json) -> Result<(), SchemaError> {
        let mut stack = vec![node];
        while let Some(n) = stack.pop() {
            match n {
                Json::Object(members) => {
                    for (k, v) in members {
                        if k == "$ref"
                            && let Json::String(target) = v
                            && self.resolve_ref(doc, target).is_none()
                        {
                            return Err(SchemaError::UnknownReference(format!("$ref '{target}' cannot be resolved")));
                        }
                        // Values of "properties"/"enum"/"const"/"default"/"examples" may contain
                        // keys named $ref that are data, not references.
                        if !matches!(k.as_str(), "enum" | "const" | "default" | "examples") {
                            stack.push(v);
                        }
                    }
                }
                Json::Array(items) => stack.extend(items.iter()),
                _ => {}
            }
        }
        Ok(())
    }

    /// Resolves a `$ref` string seen in document `doc`.
    pub fn resolve_ref<'a>(&'a self, doc: usize, target: &str) -> Option<NodeRef<'a>> {
        let (location, fragment) = match target.find('#') {
            Some(i) => (&target[..i], &target[i + 1..]),
            None => (target, ""),
        };
        let doc_index = if location.is_empty() { Some(doc) } else { self.find_document(doc, location) }?;
        let root = &self.docs[doc_index].json;
        if fragment.is_empty() {
            return Some((doc_index, root));
        }
        if let Some(pointer) = fragment.strip_prefix('/') {
            return json_pointer(root, pointer).map(|n| (doc_index, n));
        }
        // A plain-name fragment: an anchor ($anchor or an "$id": "#name").
        find_anchor(root, fragment).map(|n| (doc_index, n))
    }

    fn find_document(&self, from: usize, location: &str) -> Option<usize> {
        let stripped = location.trim_start_matches("./");
        // Exact reference name or $id first.
        if let Some(i) = self.docs.iter().position(|d| {
            (!d.name.is_empty() && (d.name == location || d.name == stripped)) || d.id.as_deref() == Some(location)
        }) {
            return Some(i);
        }
        // A relative location against the referring document's $id.
        if let Some(base) = self.docs[from].id.as_deref() {
            let resolved = match base.rfind('/') {
                Some(i) => format!("{}{}", &base[..=i], stripped),
                None => stripped.to_string(),
            };
            if let Some(i) =
                self.docs.iter().position(|d| d.id.as_deref() == Some(resolved.as_str()) || d.name == resolved)
            {
                return Some(i);
            }
        }
        // The last path segment as a last resort ("https://host/x/other.json" named "other.json").
        let last = location.rsplit('/').next().unwrap_or(location);
        self.docs.iter().position(|d| !d.name.is_empty() && (d.name == last || d.name.rsplit('/').next() == Some(last)))
    }
}

fn id_of(json: &Json) -> Option<String> {
    json.get("$id").or_else(|| json.get("id")).and_then(Json::as_str).map(str::to_string)
}

fn json_pointer<'a>(root: &'a Json, pointer: &str) -> Option<&'a Json> {
    let mut node = root;
    if pointer.is_empty() {
        return Some(node);
    }
    for raw in pointer.split('/') {
        let token = percent_decode(raw).replace("~1", "/").replace("~0", "~");
        node = match node {
            Json::Object(_) => node.get(&token)?,
            Json::Array(items) => items.get(token.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(node)
}

fn percent_decode(s: &str) -> String {
    if !s.contains('%') {
        return s.to_string();
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Some(v) = s.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn find_anchor<'a>(root: &'a Json, name: &str) -> Option<&'a Json> {
    let hash_id = format!("#{name}");
    let mut stack = vec![root];
    while let Some(n) = stack.pop() {
        match n {
            Json::Object(members) => {
                if n.get("$anchor").and_then(Json::as_str) == Some(name)
                    || n.get("$id").and_then(Json::as_str) == Some(hash_id.as_str())
                {
                    return Some(n);
                }
                stack.extend(members.iter().map(|(_, v)| v));
            }
            Json::Array(items) => stack.extend(items.iter()),
            _ => {}
        }
    }
    None
}

/// Structural checks that a schema loader would fail on (beyond the meta-schema).
fn check_structure(json: &Json) -> Result<(), String> {
    match json {
        Json::Bool(_) => Ok(()),
        Json::Object(_) => {
            let mut stack = vec![json];
            while let Some(n) = stack.pop() {
                if let Some(t) = n.get("type") {
                    let names: Vec<&Json> = match t {
                        Json::Array(a) => a.iter().collect(),
                        other => vec![other],
                    };
                    for name in names {
                        match name.as_str() {
                            Some(s) if KNOWN_TYPES.contains(&s) => {}
                            _ => {
                                return Err(format!(
                                    "unknown type: {}",
                                    json_value::to_compact(name, NumberStyle::BigDecimal, false)
                                ));
                            }
                        }
                    }
                }
                for key in ["properties", "patternProperties", "definitions", "$defs", "dependentSchemas"] {
                    if let Some(Json::Object(members)) = n.get(key) {
                        stack.extend(members.iter().map(|(_, v)| v).filter(|v| matches!(v, Json::Object(_))));
                    }
                }
                for key in [
                    "items",
                    "additionalItems",
                    "additionalProperties",
                    "unevaluatedProperties",
                    "unevaluatedItems",
                    "not",
                    "contains",
                    "propertyNames",
                    "if",
                    "then",
                    "else",
                ] {
                    match n.get(key) {
                        Some(v @ Json::Object(_)) => stack.push(v),
                        Some(Json::Array(a)) => stack.extend(a.iter().filter(|v| matches!(v, Json::Object(_)))),
                        _ => {}
                    }
                }
                for key in ["allOf", "anyOf", "oneOf", "prefixItems"] {
                    if let Some(Json::Array(a)) = n.get(key) {
                        stack.extend(a.iter().filter(|v| matches!(v, Json::Object(_))));
                    }
                }
                if let Some(Json::Object(_)) = n.get("pattern") {
                    return Err("pattern must be a string".into());
                }
                if let Some(Json::String(p)) = n.get("pattern")
                    && regex::Regex::new(p).is_err()
                    && fancy_pattern_rejected(p)
                {
                    return Err(format!("invalid pattern '{p}'"));
                }
            }
            Ok(())
        }
        other => Err(format!("a JSON Schema must be an object or a boolean, not {}", other.kind())),
    }
}

/// ECMA-262 patterns with look-around are valid JSON Schema but not `regex` syntax; only reject
/// patterns that fail for another reason (unbalanced groups and the like).
fn fancy_pattern_rejected(p: &str) -> bool {
    !(p.contains("(?=") || p.contains("(?!") || p.contains("(?<=") || p.contains("(?<!") || p.contains("\\1"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{SchemaReference, SchemaSource, SchemaType};

    fn parse(text: &str, normalize: bool) -> Result<JsonModel, SchemaError> {
        JsonModel::parse(text, &[], &ParseOptions::normalized(normalize))
    }

    #[test]
    fn canonical_is_compact_and_keeps_order() {
        let m = parse(r##"{ "type": "object", "title": "T", "properties": { "b": {"type":"number","maximum": 1.50}, "a": {"type":"string"} } }"##, false)
            .expect("valid");
        assert_eq!(
            m.canonical(),
            r##"{"type":"object","title":"T","properties":{"b":{"type":"number","maximum":1.50},"a":{"type":"string"}}}"##
        );
        assert_eq!(m.name().as_deref(), Some("T"));
        let n = parse(
            r##"{ "type": "object", "title": "T", "properties": { "b": {"type":"number"}, "a": {"type":"string"} } }"##,
            true,
        )
        .expect("valid");
        assert_eq!(
            n.canonical(),
            r##"{"properties":{"a":{"type":"string"},"b":{"type":"number"}},"title":"T","type":"object"}"##
        );
    }

    #[test]
    fn rejects_invalid_documents() {
        for text in [
            r##"{"type":"strin"}"##,
            r##"[1]"##,
            r##"{"type":"object","required":"a"}"##,
            r##"{"$ref":"#/definitions/missing"}"##,
            "{",
        ] {
            assert!(parse(text, false).is_err(), "{text} should be rejected");
        }
        assert!(parse("true", false).is_ok());
    }

    #[test]
    fn refs_resolve_against_references_only() {
        let other = Resolved {
            name: "address.json".into(),
            reference: SchemaReference { name: "address.json".into(), subject: "address".into(), version: 1 },
            source: SchemaSource {
                schema_type: SchemaType::Json,
                schema: r##"{"type":"object","properties":{"street":{"type":"string"}}}"##.into(),
                references: vec![],
            },
        };
        let text = r##"{"type":"object","properties":{"home":{"$ref":"address.json"},"work":{"$ref":"#/definitions/a"}},"definitions":{"a":{"$ref":"address.json#/properties/street"}}}"##;
        let m = JsonModel::parse(text, &[other], &ParseOptions::default()).expect("valid");
        assert!(m.resolve_ref(0, "address.json").is_some());
        assert!(m.resolve_ref(0, "https://example.com/schemas/address.json").is_some());
        let missing =
            JsonModel::parse(r##"{"$ref":"http://example.com/nowhere.json"}"##, &[], &ParseOptions::default());
        assert!(matches!(missing, Err(SchemaError::UnknownReference(_))));
    }
}
