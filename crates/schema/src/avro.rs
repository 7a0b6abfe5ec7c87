//! Avro schemas: parsing with the Java library's rules, printing as its `Schema.toString()`
//! does (the text Confluent stores), normalization, and reference inlining.
//!
//! Types live in an arena ([`AvroModel::nodes`]); a use of a named type after its definition is
//! the same node id, so recursive types are plain cycles of ids. Printing walks the graph and, like
//! the Java printer, writes a named type's definition the first time it meets it and its name
//! afterwards. Referenced schemas (other subjects) are parsed into the same arena first, and their
//! top-level names are "already known" when the canonical text is printed, so they appear by name.

use std::collections::{HashMap, HashSet};

use crate::json_value::{self, Json, NumberStyle};
use crate::references::Resolved;
use crate::{ParseOptions, SchemaError};

pub(crate) type NodeId = usize;
pub(crate) type Props = Vec<(String, Json)>;

/// A name with its namespace (`None` is the null namespace).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Name {
    pub name: String,
    pub space: Option<String>,
}

impl Name {
    /// Java's `new Name(name, space)`: a dotted name carries its own namespace.
    fn new(name: &str, space: Option<&str>) -> Name {
        match name.rfind('.') {
            Some(i) => Name { name: name[i + 1..].to_string(), space: non_empty(&name[..i]) },
            None => Name { name: name.to_string(), space: space.and_then(non_empty) },
        }
    }

    pub fn full(&self) -> String {
        match &self.space {
            Some(space) => format!("{space}.{}", self.name),
            None => self.name.clone(),
        }
    }

    /// Java's `getQualified(defaultSpace)`.
    fn qualified(&self, default_space: Option<&str>) -> String {
        match &self.space {
            None => self.name.clone(),
            Some(space) if Some(space.as_str()) == default_space => self.name.clone(),
            Some(_) => self.full(),
        }
    }
}

fn non_empty(s: &str) -> Option<String> {
    if s.is_empty() { None } else { Some(s.to_string()) }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Primitive {
    Null,
    Boolean,
    Int,
    Long,
    Float,
    Double,
    Bytes,
    String,
}

impl Primitive {
    fn from_name(name: &str) -> Option<Primitive> {
        Some(match name {
            "null" => Primitive::Null,
            "boolean" => Primitive::Boolean,
            "int" => Primitive::Int,
            "long" => Primitive::Long,
            "float" => Primitive::Float,
            "double" => Primitive::Double,
            "bytes" => Primitive::Bytes,
            "string" => Primitive::String,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Primitive::Null => "null",
            Primitive::Boolean => "boolean",
            Primitive::Int => "int",
            Primitive::Long => "long",
            Primitive::Float => "float",
            Primitive::Double => "double",
            Primitive::Bytes => "bytes",
            Primitive::String => "string",
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Field {
    pub name: String,
    pub ty: NodeId,
    pub doc: Option<String>,
    pub default: Option<Json>,
    /// `None` = ascending (the default, not printed).
    pub order: Option<&'static str>,
    pub aliases: Vec<String>,
    pub props: Props,
}

#[derive(Debug, Clone)]
pub(crate) enum Node {
    Primitive {
        kind: Primitive,
        props: Props,
    },
    Record {
        name: Name,
        doc: Option<String>,
        fields: Vec<Field>,
        aliases: Vec<Name>,
        props: Props,
        error: bool,
    },
    Enum {
        name: Name,
        doc: Option<String>,
        symbols: Vec<String>,
        default: Option<String>,
        aliases: Vec<Name>,
        props: Props,
    },
    Fixed {
        name: Name,
        doc: Option<String>,
        size: u64,
        aliases: Vec<Name>,
        props: Props,
    },
    Array {
        items: NodeId,
        props: Props,
    },
    Map {
        values: NodeId,
        props: Props,
    },
    Union(Vec<NodeId>),
}

impl Node {
    pub fn name(&self) -> Option<&Name> {
        match self {
            Node::Record { name, .. } | Node::Enum { name, .. } | Node::Fixed { name, .. } => Some(name),
            _ => None,
        }
    }

    /// The Java `Schema.Type` name, upper case, as compatibility messages print it.
    pub fn type_name(&self) -> &'static str {
        match self {
            Node::Primitive { kind, .. } => match kind {
                Primitive::Null => "NULL",
                Primitive::Boolean => "BOOLEAN",
                Primitive::Int => "INT",
                Primitive::Long => "LONG",
                Primitive::Float => "FLOAT",
                Primitive::Double => "DOUBLE",
                Primitive::Bytes => "BYTES",
                Primitive::String => "STRING",
            },
            Node::Record { .. } => "RECORD",
            Node::Enum { .. } => "ENUM",
            Node::Fixed { .. } => "FIXED",
            Node::Array { .. } => "ARRAY",
            Node::Map { .. } => "MAP",
            Node::Union(_) => "UNION",
        }
    }
}

/// A parsed Avro schema together with the schemas it references.
#[derive(Debug)]
pub(crate) struct AvroModel {
    pub nodes: Vec<Node>,
    pub root: NodeId,
    /// Top-level nodes of the referenced schemas (dependencies first).
    ref_roots: Vec<NodeId>,
    canonical: String,
}

const SCHEMA_RESERVED: &[&str] =
    &["doc", "fields", "items", "name", "namespace", "size", "symbols", "values", "type", "aliases"];
const FIELD_RESERVED: &[&str] = &["default", "doc", "name", "order", "type", "aliases"];

fn invalid(message: impl Into<String>) -> SchemaError {
    SchemaError::Invalid(message.into())
}

struct Builder {
    nodes: Vec<Node>,
    names: HashMap<String, NodeId>,
    max_depth: usize,
}

impl AvroModel {
    pub fn parse(text: &str, references: &[Resolved], options: &ParseOptions) -> Result<AvroModel, SchemaError> {
        let mut builder = Builder { nodes: Vec::new(), names: HashMap::new(), max_depth: options.max_depth };
        let mut ref_roots = Vec::new();
        for r in references {
            let json = parse_json(&r.source.schema, options)?;
            let root = builder
                .parse(&json, None, 0)
                .map_err(|e| invalid(format!("referenced schema '{}' is invalid: {}", r.name, strip_prefix(&e))))?;
            ref_roots.push(root);
        }
        let json = parse_json(text, options)?;
        let root = builder.parse(&json, None, 0)?;
        let mut model = AvroModel { nodes: builder.nodes, root, ref_roots, canonical: String::new() };
        model.validate_defaults()?;
        if options.normalize {
            model.normalize();
        }
        let known: Vec<NodeId> =
            model.ref_roots.iter().copied().filter(|&id| model.nodes[id].name().is_some()).collect();
        model.canonical = model.print(model.root, &known);
        Ok(model)
    }

    pub fn canonical(&self) -> String {
        self.canonical.clone()
    }

    /// The record's full name, as Confluent's `name()` (only for a top-level record).
    pub fn name(&self) -> Option<String> {
        match &self.nodes[self.root] {
            Node::Record { name, .. } => Some(name.full()),
            _ => None,
        }
    }

    /// The schema with referenced types inlined at their first use.
    pub fn resolved(&self) -> String {
        self.print(self.root, &[])
    }

    /// Follows nothing: nodes are already resolved; exposed for the compatibility checker.
    pub fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id]
    }

    // ----- printing (Java `Schema.toString()`) -----

    fn print(&self, root: NodeId, known: &[NodeId]) -> String {
        let mut printer = Printer { model: self, seen: HashSet::new(), space: None, out: String::new() };
        for &id in known {
            printer.seen.insert(id);
        }
        printer.node(root);
        printer.out
    }

    // ----- default validation -----

    fn validate_defaults(&self) -> Result<(), SchemaError> {
        for node in &self.nodes {
            match node {
                Node::Record { fields, name, .. } => {
                    for f in fields {
                        if let Some(default) = &f.default
                            && !self.valid_default(f.ty, default, 0)
                        {
                            let shown = compact(default);
                            return Err(invalid(format!(
                                "Invalid default for field {} in record {}: {} not a {}",
                                f.name,
                                name.full(),
                                shown,
                                self.print(f.ty, &[])
                            )));
                        }
                    }
                }
                Node::Enum { symbols, default: Some(default), name, .. } if !symbols.contains(default) => {
                    return Err(invalid(format!(
                        "The Enum Default: {default} is not in the enum symbol set: {:?} (enum {})",
                        symbols,
                        name.full()
                    )));
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn valid_default(&self, ty: NodeId, value: &Json, depth: usize) -> bool {
        if depth > 64 {
            return true;
        }
        match &self.nodes[ty] {
            Node::Primitive { kind, .. } => match kind {
                Primitive::Null => matches!(value, Json::Null),
                Primitive::Boolean => matches!(value, Json::Bool(_)),
                Primitive::Int => value.as_i64().is_some_and(|v| i32::try_from(v).is_ok()),
                Primitive::Long => value.as_i64().is_some(),
                Primitive::Float | Primitive::Double => {
                    matches!(value, Json::Number(_)) || matches!(value.as_str(), Some("NaN" | "Infinity" | "-Infinity"))
                }
                Primitive::Bytes | Primitive::String => matches!(value, Json::String(_)),
            },
            Node::Enum { .. } | Node::Fixed { .. } => matches!(value, Json::String(_)),
            Node::Array { items, .. } => {
                value.as_array().is_some_and(|a| a.iter().all(|v| self.valid_default(*items, v, depth + 1)))
            }
            Node::Map { values, .. } => {
                value.as_object().is_some_and(|m| m.iter().all(|(_, v)| self.valid_default(*values, v, depth + 1)))
            }
            Node::Union(branches) => branches.first().is_some_and(|&b| self.valid_default(b, value, depth + 1)),
            Node::Record { fields, .. } => match value.as_object() {
                Some(_) => fields.iter().all(|f| match value.get(&f.name) {
                    Some(v) => self.valid_default(f.ty, v, depth + 1),
                    None => f.default.is_some(),
                }),
                None => false,
            },
        }
    }

    // ----- normalization (Confluent's normalize=true) -----

    fn normalize(&mut self) {
        let types: Vec<Node> = self.nodes.clone();
        for node in &mut self.nodes {
            match node {
                Node::Primitive { props, .. } | Node::Array { props, .. } | Node::Map { props, .. } => {
                    sort_props(props)
                }
                Node::Record { doc, fields, aliases, props, .. } => {
                    drop_empty(doc);
                    sort_aliases(aliases);
                    sort_props(props);
                    for f in fields {
                        f.aliases.sort_by(|a, b| a.encode_utf16().cmp(b.encode_utf16()));
                        f.aliases.dedup();
                        sort_props(&mut f.props);
                        if let Some(default) = f.default.take() {
                            f.default = Some(coerce_default(&types, f.ty, default, 0));
                        }
                    }
                }
                Node::Enum { doc, aliases, props, .. } | Node::Fixed { doc, aliases, props, .. } => {
                    drop_empty(doc);
                    sort_aliases(aliases);
                    sort_props(props);
                }
                Node::Union(_) => {}
            }
        }
    }
}

fn strip_prefix(e: &SchemaError) -> String {
    match e {
        SchemaError::Invalid(m) => m.clone(),
        other => other.to_string(),
    }
}

fn drop_empty(doc: &mut Option<String>) {
    if doc.as_deref() == Some("") {
        *doc = None;
    }
}

fn sort_aliases(aliases: &mut Vec<Name>) {
    aliases.sort_by(|a, b| a.full().encode_utf16().cmp(b.full().encode_utf16()));
    aliases.dedup();
}

/// Normalized property order: a logical type (and a decimal's precision and scale) first, then
/// the rest by key.
fn sort_props(props: &mut Props) {
    let logical = props.iter().find(|(k, _)| k == "logicalType").and_then(|(_, v)| v.as_str().map(str::to_string));
    let mut front: Props = Vec::new();
    if let Some(logical) = &logical {
        let mut take = |key: &str, props: &mut Props| {
            if let Some(i) = props.iter().position(|(k, _)| k == key) {
                front.push(props.remove(i));
            }
        };
        take("logicalType", props);
        if logical == "decimal" {
            take("precision", props);
            let scale_is_zero = props.iter().any(|(k, v)| k == "scale" && v.as_i64() == Some(0));
            if !scale_is_zero {
                take("scale", props);
            }
        }
    }
    props.sort_by(|a, b| a.0.encode_utf16().cmp(b.0.encode_utf16()));
    front.append(props);
    *props = front;
}

/// Java converts a default to a datum and back when normalizing: numbers follow the field's type.
fn coerce_default(nodes: &[Node], ty: NodeId, value: Json, depth: usize) -> Json {
    if depth > 64 {
        return value;
    }
    match (&nodes[ty], value) {
        (Node::Primitive { kind: Primitive::Float | Primitive::Double, .. }, Json::Number(n)) => {
            match n.parse::<f64>() {
                Ok(v) => Json::Number(json_value::java_double_string(v)),
                Err(_) => Json::Number(n),
            }
        }
        (Node::Union(branches), v) => match branches.first() {
            Some(&b) => coerce_default(nodes, b, v, depth + 1),
            None => v,
        },
        (Node::Array { items, .. }, Json::Array(a)) => {
            Json::Array(a.into_iter().map(|v| coerce_default(nodes, *items, v, depth + 1)).collect())
        }
        (Node::Map { values, .. }, Json::Object(m)) => {
            Json::Object(m.into_iter().map(|(k, v)| (k, coerce_default(nodes, *values, v, depth + 1))).collect())
        }
        (Node::Record { fields, .. }, Json::Object(m)) => Json::Object(
            fields
                .iter()
                .filter_map(|f| {
                    let v =
                        m.iter().find(|(k, _)| *k == f.name).map(|(_, v)| v.clone()).or_else(|| f.default.clone())?;
                    Some((f.name.clone(), coerce_default(nodes, f.ty, v, depth + 1)))
                })
                .collect(),
        ),
        (_, v) => v,
    }
}

fn parse_json(text: &str, options: &ParseOptions) -> Result<Json, SchemaError> {
    json_value::parse(text, options.max_depth).map_err(|e| match e {
        json_value::JsonError::TooDeep(limit) => SchemaError::TooDeep(limit),
        other => invalid(other.to_string()),
    })
}

fn is_valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    match chars.next() {
        Some(c) if c.is_alphabetic() || c == '_' => {}
        _ => return false,
    }
    chars.all(|c| c.is_alphanumeric() || c == '_')
}

fn validate_name(name: &Name) -> Result<(), SchemaError> {
    if !is_valid_name(&name.name) {
        return Err(invalid(format!("Illegal initial character or character in name: {}", name.name)));
    }
    if let Some(space) = &name.space {
        for part in space.split('.') {
            if !is_valid_name(part) {
                return Err(invalid(format!("Illegal character in namespace: {space}")));
            }
        }
    }
    Ok(())
}

fn text_of<'a>(json: &'a Json, key: &str) -> Option<&'a str> {
    json.get(key).and_then(Json::as_str)
}

impl Builder {
    fn push(&mut self, node: Node) -> NodeId {
        self.nodes.push(node);
        self.nodes.len() - 1
    }

    fn lookup(&self, name: &str, space: Option<&str>) -> Option<NodeId> {
        let qualified = Name::new(name, space).full();
        self.names.get(&qualified).or_else(|| self.names.get(name)).copied()
    }

    fn define(&mut self, name: &Name, id: NodeId) -> Result<(), SchemaError> {
        validate_name(name)?;
        let full = name.full();
        if self.names.contains_key(&full) {
            return Err(invalid(format!("Can't redefine: {full}")));
        }
        self.names.insert(full, id);
        Ok(())
    }

    fn parse(&mut self, json: &Json, space: Option<&str>, depth: usize) -> Result<NodeId, SchemaError> {
        if depth > self.max_depth {
            return Err(SchemaError::TooDeep(self.max_depth));
        }
        match json {
            Json::String(name) => self.named_or_primitive(name, space, Props::new()),
            Json::Array(branches) => {
                let mut ids = Vec::with_capacity(branches.len());
                let mut seen: Vec<String> = Vec::new();
                for branch in branches {
                    let id = self.parse(branch, space, depth + 1)?;
                    let key = match &self.nodes[id] {
                        Node::Union(_) => return Err(invalid(format!("Nested union: {}", compact(json)))),
                        node => node.name().map(Name::full).unwrap_or_else(|| node.type_name().to_string()),
                    };
                    if seen.contains(&key) {
                        return Err(invalid(format!("Duplicate in union:{}", key.to_lowercase())));
                    }
                    seen.push(key);
                    ids.push(id);
                }
                Ok(self.push(Node::Union(ids)))
            }
            Json::Object(_) => self.parse_object(json, space, depth),
            other => Err(invalid(format!("Schema not yet supported: {}", compact(other)))),
        }
    }

    fn named_or_primitive(&mut self, name: &str, space: Option<&str>, props: Props) -> Result<NodeId, SchemaError> {
        if let Some(kind) = Primitive::from_name(name) {
            return Ok(self.push(Node::Primitive { kind, props }));
        }
        self.lookup(name, space)
            .ok_or_else(|| SchemaError::UnknownReference(format!("\"{name}\" is not a defined name")))
    }

    fn parse_object(&mut self, json: &Json, space: Option<&str>, depth: usize) -> Result<NodeId, SchemaError> {
        let type_value = json.get("type").ok_or_else(|| invalid(format!("No type: {}", compact(json))))?;
        let type_name = match type_value {
            Json::String(s) => s.as_str(),
            // {"type": {...}} or {"type": [...]}: the inner schema is the schema.
            nested @ (Json::Object(_) | Json::Array(_)) => return self.parse(nested, space, depth + 1),
            _ => return Err(invalid(format!("No type: {}", compact(json)))),
        };
        let props = |reserved: &[&str]| -> Props {
            json.as_object()
                .unwrap_or_default()
                .iter()
                .filter(|(k, _)| !reserved.contains(&k.as_str()))
                .cloned()
                .collect()
        };
        if let Some(kind) = Primitive::from_name(type_name) {
            return Ok(self.push(Node::Primitive { kind, props: props(SCHEMA_RESERVED) }));
        }
        match type_name {
            "record" | "error" | "enum" | "fixed" => {
                let raw_name =
                    text_of(json, "name").ok_or_else(|| invalid(format!("No name in schema: {}", compact(json))))?;
                let explicit_space = text_of(json, "namespace");
                let name = Name::new(raw_name, explicit_space.or(space));
                let doc = text_of(json, "doc").map(str::to_string);
                let aliases = parse_aliases(json, name.space.as_deref())?;
                match type_name {
                    "enum" => {
                        let symbols_json = json
                            .get("symbols")
                            .and_then(Json::as_array)
                            .ok_or_else(|| invalid(format!("Enum has no symbols: {}", compact(json))))?;
                        let mut symbols: Vec<String> = Vec::with_capacity(symbols_json.len());
                        for s in symbols_json {
                            let s = s.as_str().ok_or_else(|| invalid("Enum symbols must be strings"))?;
                            if !is_valid_name(s) {
                                return Err(invalid(format!("Illegal initial character or character in name: {s}")));
                            }
                            if symbols.iter().any(|x| x == s) {
                                return Err(invalid(format!("Duplicate enum symbol: {s}")));
                            }
                            symbols.push(s.to_string());
                        }
                        let default = match json.get("default") {
                            None | Some(Json::Null) => None,
                            Some(Json::String(s)) => Some(s.clone()),
                            Some(_) => return Err(invalid("Enum default must be a string")),
                        };
                        let mut reserved = SCHEMA_RESERVED.to_vec();
                        reserved.push("default");
                        let node =
                            Node::Enum { name: name.clone(), doc, symbols, default, aliases, props: props(&reserved) };
                        let id = self.push(node);
                        self.define(&name, id)?;
                        Ok(id)
                    }
                    "fixed" => {
                        let size = json
                            .get("size")
                            .and_then(Json::as_i64)
                            .filter(|s| (0..=i64::from(i32::MAX)).contains(s))
                            .ok_or_else(|| invalid(format!("Invalid or no size: {}", compact(json))))?;
                        let node = Node::Fixed {
                            name: name.clone(),
                            doc,
                            size: size as u64,
                            aliases,
                            props: props(SCHEMA_RESERVED),
                        };
                        let id = self.push(node);
                        self.define(&name, id)?;
                        Ok(id)
                    }
                    _ => {
                        let error = type_name == "error";
                        let id = self.push(Node::Record {
                            name: name.clone(),
                            doc,
                            fields: Vec::new(),
                            aliases,
                            props: props(SCHEMA_RESERVED),
                            error,
                        });
                        self.define(&name, id)?;
                        let fields_json = json
                            .get("fields")
                            .and_then(Json::as_array)
                            .ok_or_else(|| invalid(format!("Record has no fields: {}", compact(json))))?;
                        let mut fields: Vec<Field> = Vec::with_capacity(fields_json.len());
                        for f in fields_json {
                            let field = self.parse_field(f, name.space.as_deref(), depth + 1)?;
                            if fields.iter().any(|x| x.name == field.name) {
                                return Err(invalid(format!(
                                    "Duplicate field {} in record {}",
                                    field.name,
                                    name.full()
                                )));
                            }
                            fields.push(field);
                        }
                        if let Node::Record { fields: slot, .. } = &mut self.nodes[id] {
                            *slot = fields;
                        }
                        Ok(id)
                    }
                }
            }
            "array" => {
                let items =
                    json.get("items").ok_or_else(|| invalid(format!("Array has no items type: {}", compact(json))))?;
                let items = self.parse(items, space, depth + 1)?;
                Ok(self.push(Node::Array { items, props: props(SCHEMA_RESERVED) }))
            }
            "map" => {
                let values =
                    json.get("values").ok_or_else(|| invalid(format!("Map has no values type: {}", compact(json))))?;
                let values = self.parse(values, space, depth + 1)?;
                Ok(self.push(Node::Map { values, props: props(SCHEMA_RESERVED) }))
            }
            other => self.named_or_primitive(other, space, Props::new()),
        }
    }

    fn parse_field(&mut self, json: &Json, space: Option<&str>, depth: usize) -> Result<Field, SchemaError> {
        if json.as_object().is_none() {
            return Err(invalid(format!("Field is not an object: {}", compact(json))));
        }
        let name = text_of(json, "name").ok_or_else(|| invalid(format!("No field name: {}", compact(json))))?;
        if !is_valid_name(name) {
            return Err(invalid(format!("Illegal initial character or character in name: {name}")));
        }
        let type_json = json.get("type").ok_or_else(|| invalid(format!("No field type: {}", compact(json))))?;
        let ty = self.parse(type_json, space, depth + 1)?;
        let order = match text_of(json, "order").map(str::to_ascii_lowercase).as_deref() {
            None | Some("ascending") => None,
            Some("descending") => Some("descending"),
            Some("ignore") => Some("ignore"),
            Some(other) => return Err(invalid(format!("Invalid field order: {other}"))),
        };
        let aliases = match json.get("aliases") {
            None => Vec::new(),
            Some(Json::Array(a)) => a
                .iter()
                .map(|v| v.as_str().map(str::to_string).ok_or_else(|| invalid("aliases must be strings")))
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(invalid("aliases not an array")),
        };
        let props = json
            .as_object()
            .unwrap_or_default()
            .iter()
            .filter(|(k, _)| !FIELD_RESERVED.contains(&k.as_str()))
            .cloned()
            .collect();
        let mut default = json.get("default").cloned();
        // A textual default for a float/double field ("NaN", "Infinity") is kept as a number.
        if let (Some(Json::String(s)), Node::Primitive { kind: Primitive::Float | Primitive::Double, .. }) =
            (&default, &self.nodes[ty])
            && let Ok(v) = s.parse::<f64>()
        {
            default = Some(Json::Number(json_value::java_double_string(v)));
        }
        Ok(Field {
            name: name.to_string(),
            ty,
            doc: text_of(json, "doc").map(str::to_string),
            default,
            order,
            aliases,
            props,
        })
    }
}

fn parse_aliases(json: &Json, space: Option<&str>) -> Result<Vec<Name>, SchemaError> {
    match json.get("aliases") {
        None => Ok(Vec::new()),
        Some(Json::Array(a)) => {
            let mut out: Vec<Name> = Vec::new();
            for v in a {
                let s = v.as_str().ok_or_else(|| invalid("aliases must be strings"))?;
                let n = Name::new(s, space);
                if !out.contains(&n) {
                    out.push(n);
                }
            }
            Ok(out)
        }
        Some(_) => Err(invalid("aliases not an array")),
    }
}

fn compact(json: &Json) -> String {
    let mut s = String::new();
    json_value::write_compact(json, NumberStyle::Double, false, &mut s);
    if s.len() > 200 {
        let mut cut = 200;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push_str("...");
    }
    s
}

struct Printer<'a> {
    model: &'a AvroModel,
    seen: HashSet<NodeId>,
    space: Option<String>,
    out: String,
}

impl Printer<'_> {
    fn key(&mut self, key: &str) {
        json_value::write_string(key, &mut self.out);
        self.out.push(':');
    }

    fn string_field(&mut self, key: &str, value: &str) {
        self.out.push(',');
        self.key(key);
        json_value::write_string(value, &mut self.out);
    }

    fn props(&mut self, props: &Props) {
        for (k, v) in props {
            self.out.push(',');
            self.key(k);
            json_value::write_compact(v, NumberStyle::Double, false, &mut self.out);
        }
    }

    fn name(&mut self, name: &Name) {
        self.string_field("name", &name.name);
        match (&name.space, &self.space) {
            (Some(space), current) if current.as_deref() != Some(space.as_str()) => {
                let space = space.clone();
                self.string_field("namespace", &space);
            }
            (None, Some(_)) => self.string_field("namespace", ""),
            _ => {}
        }
    }

    fn aliases(&mut self, aliases: &[Name], own: &Name) {
        if aliases.is_empty() {
            return;
        }
        self.out.push(',');
        self.key("aliases");
        self.out.push('[');
        for (i, alias) in aliases.iter().enumerate() {
            if i > 0 {
                self.out.push(',');
            }
            json_value::write_string(&alias.qualified(own.space.as_deref()), &mut self.out);
        }
        self.out.push(']');
    }

    /// Writes the name of an already printed named type, or records it as printed now.
    fn name_ref(&mut self, id: NodeId, name: &Name) -> bool {
        if self.seen.contains(&id) {
            let q = name.qualified(self.space.as_deref());
            json_value::write_string(&q, &mut self.out);
            return true;
        }
        self.seen.insert(id);
        false
    }

    fn node(&mut self, id: NodeId) {
        let model = self.model;
        match &model.nodes[id] {
            Node::Primitive { kind, props } => {
                if props.is_empty() {
                    json_value::write_string(kind.name(), &mut self.out);
                } else {
                    self.out.push('{');
                    self.key("type");
                    json_value::write_string(kind.name(), &mut self.out);
                    self.props(props);
                    self.out.push('}');
                }
            }
            Node::Array { items, props } => {
                self.out.push_str("{\"type\":\"array\",\"items\":");
                self.node(*items);
                self.props(props);
                self.out.push('}');
            }
            Node::Map { values, props } => {
                self.out.push_str("{\"type\":\"map\",\"values\":");
                self.node(*values);
                self.props(props);
                self.out.push('}');
            }
            Node::Union(branches) => {
                self.out.push('[');
                for (i, b) in branches.iter().enumerate() {
                    if i > 0 {
                        self.out.push(',');
                    }
                    self.node(*b);
                }
                self.out.push(']');
            }
            Node::Enum { name, doc, symbols, default, aliases, props } => {
                if self.name_ref(id, name) {
                    return;
                }
                self.out.push_str("{\"type\":\"enum\"");
                self.name(name);
                if let Some(doc) = doc {
                    self.string_field("doc", doc);
                }
                self.out.push_str(",\"symbols\":[");
                for (i, s) in symbols.iter().enumerate() {
                    if i > 0 {
                        self.out.push(',');
                    }
                    json_value::write_string(s, &mut self.out);
                }
                self.out.push(']');
                if let Some(default) = default {
                    self.string_field("default", default);
                }
                self.props(props);
                self.aliases(aliases, name);
                self.out.push('}');
            }
            Node::Fixed { name, doc, size, aliases, props } => {
                if self.name_ref(id, name) {
                    return;
                }
                self.out.push_str("{\"type\":\"fixed\"");
                self.name(name);
                if let Some(doc) = doc {
                    self.string_field("doc", doc);
                }
                self.out.push_str(&format!(",\"size\":{size}"));
                self.props(props);
                self.aliases(aliases, name);
                self.out.push('}');
            }
            Node::Record { name, doc, fields, aliases, props, error } => {
                if self.name_ref(id, name) {
                    return;
                }
                let saved = self.space.clone();
                self.out.push_str(if *error { "{\"type\":\"error\"" } else { "{\"type\":\"record\"" });
                self.name(name);
                self.space = name.space.clone();
                if let Some(doc) = doc {
                    self.string_field("doc", doc);
                }
                self.out.push_str(",\"fields\":[");
                for (i, f) in fields.iter().enumerate() {
                    if i > 0 {
                        self.out.push(',');
                    }
                    self.out.push('{');
                    self.key("name");
                    json_value::write_string(&f.name, &mut self.out);
                    self.out.push_str(",\"type\":");
                    self.node(f.ty);
                    if let Some(doc) = &f.doc {
                        self.string_field("doc", doc);
                    }
                    if let Some(default) = &f.default {
                        self.out.push_str(",\"default\":");
                        json_value::write_compact(default, NumberStyle::Double, false, &mut self.out);
                    }
                    if let Some(order) = f.order {
                        self.string_field("order", order);
                    }
                    if !f.aliases.is_empty() {
                        self.out.push_str(",\"aliases\":[");
                        for (j, a) in f.aliases.iter().enumerate() {
                            if j > 0 {
                                self.out.push(',');
                            }
                            json_value::write_string(a, &mut self.out);
                        }
                        self.out.push(']');
                    }
                    self.props(&f.props);
                    self.out.push('}');
                }
                self.out.push(']');
                self.props(props);
                self.aliases(aliases, name);
                self.out.push('}');
                self.space = saved;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{SchemaReference, SchemaSource, SchemaType};

    fn canonical(text: &str) -> String {
        AvroModel::parse(text, &[], &ParseOptions::default()).map(|m| m.canonical()).expect("valid schema")
    }

    #[test]
    fn prints_like_java_to_string() {
        let text = r#"{"namespace":"com.acme","type":"record","doc":"d","name":"Order",
            "fields":[{"type":"string","name":"id","doc":"x","default":"a"},
                      {"name":"items","type":{"type":"array","items":{"type":"record","name":"Item","fields":[{"name":"n","type":"int"}]}}},
                      {"name":"other","type":["null","Item"],"default":null,"aliases":["o"]},
                      {"name":"amount","type":{"type":"bytes","logicalType":"decimal","precision":4,"scale":2}}],
            "connect.name":"x"}"#;
        assert_eq!(
            canonical(text),
            concat!(
                r#"{"type":"record","name":"Order","namespace":"com.acme","doc":"d","fields":["#,
                r#"{"name":"id","type":"string","doc":"x","default":"a"},"#,
                r#"{"name":"items","type":{"type":"array","items":{"type":"record","name":"Item","fields":[{"name":"n","type":"int"}]}}},"#,
                r#"{"name":"other","type":["null","Item"],"default":null,"aliases":["o"]},"#,
                r#"{"name":"amount","type":{"type":"bytes","logicalType":"decimal","precision":4,"scale":2}}],"#,
                r#""connect.name":"x"}"#
            )
        );
    }

    #[test]
    fn primitive_schemas() {
        assert_eq!(canonical(r#""string""#), r#""string""#);
        assert_eq!(canonical(r#"{"type":"long"}"#), r#""long""#);
        assert_eq!(canonical(r#"{"type":"int","logicalType":"date"}"#), r#"{"type":"int","logicalType":"date"}"#);
    }

    #[test]
    fn nested_namespace_is_written_when_it_differs() {
        let text = r#"{"type":"record","name":"a.A","fields":[{"name":"b","type":{"type":"enum","name":"B","namespace":"b","symbols":["X"]}},
                      {"name":"c","type":{"type":"fixed","name":"C","size":2}}]}"#;
        assert_eq!(
            canonical(text),
            r#"{"type":"record","name":"A","namespace":"a","fields":[{"name":"b","type":{"type":"enum","name":"B","namespace":"b","symbols":["X"]}},{"name":"c","type":{"type":"fixed","name":"C","size":2}}]}"#
        );
    }

    #[test]
    fn normalization_sorts_props_and_aliases() {
        let text = r#"{"connect.name":"s.E","fields":[{"default":null,"name":"before","type":["null",{"connect.name":"s.V","fields":[{"name":"t","type":{"connect.version":1,"connect.name":"ts","type":"long"}}],"name":"V","type":"record"}]}],"name":"E","namespace":"s","type":"record","aliases":["Z","Y"]}"#;
        let m = AvroModel::parse(text, &[], &ParseOptions::normalized(true)).expect("valid");
        assert_eq!(
            m.canonical(),
            r#"{"type":"record","name":"E","namespace":"s","fields":[{"name":"before","type":["null",{"type":"record","name":"V","fields":[{"name":"t","type":{"type":"long","connect.name":"ts","connect.version":1}}],"connect.name":"s.V"}],"default":null}],"connect.name":"s.E","aliases":["Y","Z"]}"#
        );
    }

    #[test]
    fn rejects_bad_schemas() {
        let bad = [
            r#"{"type":"record","name":"A"}"#,
            r#"{"type":"record","name":"A","fields":[{"name":"f","type":"Missing"}]}"#,
            r#"{"type":"record","name":"A","fields":[{"name":"f","type":"int","default":"x"}]}"#,
            r#"{"type":"record","name":"A","fields":[{"name":"f","type":["null","int"],"default":1}]}"#,
            r#"{"type":"enum","name":"E","symbols":["A","A"]}"#,
            r#"{"type":"enum","name":"E","symbols":["A"],"default":"B"}"#,
            r#"["int","int"]"#,
            r#"{"type":"record","name":"1A","fields":[]}"#,
            r#"{"type":"fixed","name":"F"}"#,
            r#"{"type":"record","name":"A","fields":[{"name":"a","type":"int"},{"name":"a","type":"int"}]}"#,
            r#"not json"#,
        ];
        for text in bad {
            assert!(AvroModel::parse(text, &[], &ParseOptions::default()).is_err(), "{text} should be rejected");
        }
    }

    #[test]
    fn recursive_record() {
        let text =
            r#"{"type":"record","name":"Node","fields":[{"name":"next","type":["null","Node"],"default":null}]}"#;
        assert_eq!(canonical(text), text);
    }

    #[test]
    fn references_print_by_name_and_inline_when_resolved() {
        let reference = Resolved {
            name: "com.acme.Customer".into(),
            reference: SchemaReference { name: "com.acme.Customer".into(), subject: "customer".into(), version: 1 },
            source: SchemaSource {
                schema_type: SchemaType::Avro,
                schema: r#"{"type":"record","name":"Customer","namespace":"com.acme","fields":[{"name":"id","type":"long"}]}"#.into(),
                references: vec![],
            },
        };
        let text =
            r#"{"type":"record","name":"Order","namespace":"com.acme","fields":[{"name":"c","type":"Customer"}]}"#;
        let m = AvroModel::parse(text, &[reference], &ParseOptions::default()).expect("valid");
        assert_eq!(m.canonical(), text);
        assert_eq!(
            m.resolved(),
            r#"{"type":"record","name":"Order","namespace":"com.acme","fields":[{"name":"c","type":{"type":"record","name":"Customer","fields":[{"name":"id","type":"long"}]}}]}"#
        );
        assert_eq!(m.name().as_deref(), Some("com.acme.Order"));
    }
}
