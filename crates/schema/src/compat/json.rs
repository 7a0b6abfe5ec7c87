//! JSON Schema compatibility: a structural diff of the old (original) and new (update) schema,
//! in which every difference has a type and a JSON path; the change is compatible when every
//! difference's type is in the STRICT set of compatible changes.
//!
//! The diff works on a typed view of each schema node, as a schema loader sees it: `true`/`{}` are
//! the empty schema, `false` the false schema, `type` (or, without `type`, the keywords present)
//! selects string/number/boolean/null/object/array; `enum`, `const`, `not` and the combinators are
//! schemas of their own, and a node with several of these is an `allOf` of them (its typed part
//! first). `$ref`s are followed; a pair of nodes already being compared higher up (a recursive
//! schema) counts as compatible.
//!
//! Content models decide what adding or removing a property means: an *open* model (no
//! `additionalProperties`, or `true`) only accepts new properties with an empty schema but lets
//! properties go; a *closed* model (`false`) accepts new optional properties but not removals; a
//! *partially open* model (a schema for `additionalProperties` or matching `patternProperties`)
//! accepts both when the property's schema is compatible with it.

use std::collections::{HashMap, HashSet};

use super::esc;
use crate::json::{JsonModel, NodeRef};
use crate::json_value::{self, Json, NumberStyle};

/// Difference types that do not break readers of old data (Confluent's STRICT policy).
const COMPATIBLE: &[&str] = &[
    "ID_CHANGED",
    "DESCRIPTION_CHANGED",
    "TITLE_CHANGED",
    "DEFAULT_CHANGED",
    "SCHEMA_REMOVED",
    "TYPE_EXTENDED",
    "MAX_LENGTH_INCREASED",
    "MAX_LENGTH_REMOVED",
    "MIN_LENGTH_DECREASED",
    "MIN_LENGTH_REMOVED",
    "PATTERN_REMOVED",
    "MAXIMUM_INCREASED",
    "MAXIMUM_REMOVED",
    "MINIMUM_DECREASED",
    "MINIMUM_REMOVED",
    "EXCLUSIVE_MAXIMUM_INCREASED",
    "EXCLUSIVE_MAXIMUM_REMOVED",
    "EXCLUSIVE_MINIMUM_DECREASED",
    "EXCLUSIVE_MINIMUM_REMOVED",
    "MULTIPLE_OF_REDUCED",
    "MULTIPLE_OF_REMOVED",
    "REQUIRED_ATTRIBUTE_WITH_DEFAULT_ADDED",
    "REQUIRED_ATTRIBUTE_REMOVED",
    "DEPENDENCY_ARRAY_NARROWED",
    "DEPENDENCY_ARRAY_REMOVED",
    "DEPENDENCY_SCHEMA_REMOVED",
    "MAX_PROPERTIES_INCREASED",
    "MAX_PROPERTIES_REMOVED",
    "MIN_PROPERTIES_DECREASED",
    "MIN_PROPERTIES_REMOVED",
    "ADDITIONAL_PROPERTIES_ADDED",
    "ADDITIONAL_PROPERTIES_EXTENDED",
    "UNEVALUATED_PROPERTIES_ADDED",
    "UNEVALUATED_PROPERTIES_EXTENDED",
    "PROPERTY_WITH_EMPTY_SCHEMA_ADDED_TO_OPEN_CONTENT_MODEL",
    "REQUIRED_PROPERTY_WITH_DEFAULT_ADDED_TO_UNOPEN_CONTENT_MODEL",
    "OPTIONAL_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL",
    "PROPERTY_WITH_FALSE_REMOVED_FROM_CLOSED_CONTENT_MODEL",
    "PROPERTY_REMOVED_FROM_OPEN_CONTENT_MODEL",
    "PROPERTY_ADDED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL",
    "PROPERTY_REMOVED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL",
    "MAX_ITEMS_INCREASED",
    "MAX_ITEMS_REMOVED",
    "MIN_ITEMS_DECREASED",
    "MIN_ITEMS_REMOVED",
    "MAX_CONTAINS_INCREASED",
    "MAX_CONTAINS_REMOVED",
    "MIN_CONTAINS_DECREASED",
    "MIN_CONTAINS_REMOVED",
    "UNIQUE_ITEMS_REMOVED",
    "ADDITIONAL_ITEMS_ADDED",
    "ADDITIONAL_ITEMS_EXTENDED",
    "UNEVALUATED_ITEMS_ADDED",
    "UNEVALUATED_ITEMS_EXTENDED",
    "ITEM_WITH_EMPTY_SCHEMA_ADDED_TO_OPEN_CONTENT_MODEL",
    "ITEM_ADDED_TO_CLOSED_CONTENT_MODEL",
    "ITEM_WITH_FALSE_REMOVED_FROM_CLOSED_CONTENT_MODEL",
    "ITEM_REMOVED_FROM_OPEN_CONTENT_MODEL",
    "ITEM_ADDED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL",
    "ITEM_REMOVED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL",
    "ENUM_ARRAY_EXTENDED",
    "COMBINED_TYPE_EXTENDED",
    "PRODUCT_TYPE_NARROWED",
    "SUM_TYPE_EXTENDED",
    "NOT_TYPE_NARROWED",
];

/// How deep the comparison may recurse (through `$ref`s and nesting) before it stops looking.
const MAX_COMPARE_DEPTH: usize = 96;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Difference {
    pub kind: &'static str,
    pub path: String,
}

impl Difference {
    fn template(&self) -> String {
        let path = esc(&self.path);
        let k = self.kind;
        let in_set = |set: &[&str]| set.contains(&k);
        let description = if in_set(&[
            "MAXIMUM_ADDED",
            "MINIMUM_ADDED",
            "EXCLUSIVE_MAXIMUM_ADDED",
            "EXCLUSIVE_MINIMUM_ADDED",
            "MULTIPLE_OF_ADDED",
            "MAX_LENGTH_ADDED",
            "MIN_LENGTH_ADDED",
            "PATTERN_ADDED",
            "REQUIRED_ATTRIBUTE_ADDED",
            "MAX_PROPERTIES_ADDED",
            "MIN_PROPERTIES_ADDED",
            "DEPENDENCY_ARRAY_ADDED",
            "DEPENDENCY_SCHEMA_ADDED",
            "MAX_ITEMS_ADDED",
            "MIN_ITEMS_ADDED",
            "MAX_CONTAINS_ADDED",
            "MIN_CONTAINS_ADDED",
            "UNIQUE_ITEMS_ADDED",
            "ADDITIONAL_ITEMS_REMOVED",
            "ADDITIONAL_PROPERTIES_REMOVED",
            "UNEVALUATED_PROPERTIES_REMOVED",
            "UNEVALUATED_ITEMS_REMOVED",
        ]) {
            format!("The keyword at path '{path}' in the %s schema is not present in the %s schema")
        } else if in_set(&[
            "MIN_LENGTH_INCREASED",
            "MINIMUM_INCREASED",
            "EXCLUSIVE_MINIMUM_INCREASED",
            "MIN_PROPERTIES_INCREASED",
            "MULTIPLE_OF_EXPANDED",
            "MIN_ITEMS_INCREASED",
            "MIN_CONTAINS_INCREASED",
        ]) {
            format!("The value at path '{path}' in the %s schema is more than its value in the %s schema")
        } else if in_set(&[
            "MAX_LENGTH_DECREASED",
            "MAXIMUM_DECREASED",
            "MAX_ITEMS_DECREASED",
            "MAX_CONTAINS_DECREASED",
            "EXCLUSIVE_MAXIMUM_DECREASED",
            "MAX_PROPERTIES_DECREASED",
        ]) {
            format!("The value at path '{path}' in the %s schema is less than its value in the %s schema")
        } else if in_set(&["PATTERN_CHANGED", "MULTIPLE_OF_CHANGED", "DEPENDENCY_ARRAY_CHANGED"]) {
            format!("The value at path '{path}' is different between the %s and %s schema")
        } else if in_set(&[
            "ADDITIONAL_ITEMS_NARROWED",
            "ENUM_ARRAY_NARROWED",
            "SUM_TYPE_NARROWED",
            "ADDITIONAL_PROPERTIES_NARROWED",
            "UNEVALUATED_PROPERTIES_NARROWED",
            "UNEVALUATED_ITEMS_NARROWED",
        ]) {
            format!("An array or combined type at path '{path}' has fewer elements in the %s schema than the %s schema")
        } else if in_set(&[
            "DEPENDENCY_ARRAY_EXTENDED",
            "PRODUCT_TYPE_EXTENDED",
            "SUM_TYPE_EXTENDED",
            "NOT_TYPE_EXTENDED",
        ]) {
            format!("An array or combined type at path '{path}' has more elements in the %s schema than the %s schema")
        } else if in_set(&[
            "TYPE_CHANGED",
            "TYPE_NARROWED",
            "COMBINED_TYPE_CHANGED",
            "COMBINED_TYPE_SUBSCHEMAS_CHANGED",
            "ENUM_ARRAY_CHANGED",
        ]) {
            format!("A type at path '{path}' is different between the %s schema and the %s schema")
        } else if in_set(&[
            "REQUIRED_PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL",
            "REQUIRED_PROPERTY_WITH_DEFAULT_ADDED_TO_OPEN_CONTENT_MODEL",
            "OPTIONAL_PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL",
            "ITEM_ADDED_TO_OPEN_CONTENT_MODEL",
        ]) {
            format!(
                "The %s schema has an open content model and has a property or item at path '{path}' which is missing in the %s schema"
            )
        } else if k == "REQUIRED_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL" {
            format!(
                "The %s schema has an unopen content model and has a required property at path '{path}' which is missing in the %s schema"
            )
        } else if in_set(&["PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL", "ITEM_REMOVED_FROM_CLOSED_CONTENT_MODEL"]) {
            format!(
                "The %s has a closed content model and is missing a property or item present at path '{path}' in the %s schema"
            )
        } else if in_set(&[
            "PROPERTY_REMOVED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL",
            "ITEM_REMOVED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL",
        ]) {
            format!(
                "A property or item is missing in the %s schema but present at path '{path}' in the %s schema and is not covered by its partially open content model"
            )
        } else if in_set(&[
            "PROPERTY_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL",
            "ITEM_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL",
        ]) {
            format!(
                "The %s schema has a property or item at path '{path}' which is missing in the %s schema and is not covered by its partially open content model"
            )
        } else {
            String::new()
        };
        format!("{{errorType:\"{k}\", description:\"{description}'}}")
    }
}

/// The diff of `original` (old) to `update` (new): every difference found.
pub(crate) fn diff(original: &JsonModel, update: &JsonModel) -> Vec<Difference> {
    let mut shared = Shared { original, update, memo: HashMap::new(), in_progress: HashSet::new(), depth: 0 };
    let mut ctx = Ctx::default();
    shared.compare(&mut ctx, Some(View::whole(original.root())), Some(View::whole(update.root())));
    ctx.diffs
}

/// Message templates for the incompatible differences of `original` to `update`.
pub(crate) fn check(original: &JsonModel, update: &JsonModel) -> Vec<String> {
    diff(original, update).iter().filter(|d| !COMPATIBLE.contains(&d.kind)).map(Difference::template).collect()
}

fn is_compatible(diffs: &[Difference]) -> bool {
    diffs.iter().all(|d| COMPATIBLE.contains(&d.kind))
}

/// Which aspect of a node a view looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Facet {
    Whole,
    /// Only the typed part, for one type name.
    Type(&'static str),
    /// The typed part when `type` lists several types (an `anyOf` of them).
    Types,
    Enum,
    Const,
    Not,
    AllOf,
    AnyOf,
    OneOf,
}

#[derive(Debug, Clone, Copy)]
struct View<'a> {
    doc: usize,
    node: &'a Json,
    facet: Facet,
}

impl<'a> View<'a> {
    fn whole((doc, node): NodeRef<'a>) -> Self {
        View { doc, node, facet: Facet::Whole }
    }

    fn key(&self) -> (usize, Facet) {
        (self.node as *const Json as usize, self.facet)
    }

    fn text(&self) -> String {
        format!("{:?}{}", self.facet, json_value::to_compact(self.node, NumberStyle::BigDecimal, false))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(clippy::enum_variant_names)] // named after the keywords
enum Criterion {
    AllOf,
    AnyOf,
    OneOf,
}

impl Criterion {
    fn name(self) -> &'static str {
        match self {
            Criterion::AllOf => "allOf",
            Criterion::AnyOf => "anyOf",
            Criterion::OneOf => "oneOf",
        }
    }
}

/// Content-model slot: `additionalProperties`, `additionalItems` and the like.
#[derive(Debug, Clone, Copy)]
enum Extra<'a> {
    /// Absent or `true`.
    Open,
    /// `false`.
    Closed,
    Schema(View<'a>),
}

enum Schema<'a> {
    Empty,
    False,
    String,
    Number,
    Boolean,
    Null,
    Object,
    Array,
    Enum(&'a [Json]),
    Const(&'a Json),
    Combined(Criterion, Vec<View<'a>>),
    Not(View<'a>),
}

impl Schema<'_> {
    fn class(&self) -> &'static str {
        match self {
            Schema::Empty => "empty",
            Schema::False => "false",
            Schema::String => "string",
            Schema::Number => "number",
            Schema::Boolean => "boolean",
            Schema::Null => "null",
            Schema::Object => "object",
            Schema::Array => "array",
            Schema::Enum(_) => "enum",
            Schema::Const(_) => "const",
            Schema::Combined(..) => "combined",
            Schema::Not(_) => "not",
        }
    }
}

const OBJECT_KEYWORDS: &[&str] = &[
    "properties",
    "required",
    "additionalProperties",
    "patternProperties",
    "minProperties",
    "maxProperties",
    "dependencies",
    "dependentRequired",
    "dependentSchemas",
    "propertyNames",
    "unevaluatedProperties",
];
const ARRAY_KEYWORDS: &[&str] =
    &["items", "prefixItems", "additionalItems", "minItems", "maxItems", "uniqueItems", "contains", "unevaluatedItems"];
const STRING_KEYWORDS: &[&str] = &["minLength", "maxLength", "pattern", "format"];
const NUMBER_KEYWORDS: &[&str] = &["minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"];

fn type_name(s: &str) -> Option<&'static str> {
    Some(match s {
        "string" => "string",
        "number" => "number",
        "integer" => "integer",
        "boolean" => "boolean",
        "null" => "null",
        "object" => "object",
        "array" => "array",
        _ => return None,
    })
}

fn types_of(node: &Json) -> Vec<&'static str> {
    match node.get("type") {
        Some(Json::String(s)) => type_name(s).into_iter().collect(),
        Some(Json::Array(a)) => {
            let mut out: Vec<&'static str> = Vec::new();
            for t in a.iter().filter_map(Json::as_str).filter_map(type_name) {
                if !out.contains(&t) {
                    out.push(t);
                }
            }
            out
        }
        _ => {
            let has = |keys: &[&str]| keys.iter().any(|k| node.get(k).is_some());
            let mut out = Vec::new();
            if has(OBJECT_KEYWORDS) {
                out.push("object");
            }
            if has(ARRAY_KEYWORDS) {
                out.push("array");
            }
            if has(STRING_KEYWORDS) {
                out.push("string");
            }
            if has(NUMBER_KEYWORDS) {
                out.push("number");
            }
            out
        }
    }
}

#[derive(Default)]
struct Ctx {
    path: Vec<String>,
    diffs: Vec<Difference>,
}

impl Ctx {
    fn add(&mut self, kind: &'static str) {
        self.diffs.push(Difference { kind, path: format!("#/{}", self.path.join("/")) });
    }

    fn add_at(&mut self, attribute: &str, kind: &'static str) {
        self.path.push(attribute.to_string());
        self.add(kind);
        self.path.pop();
    }

    fn sub(&self) -> Ctx {
        Ctx { path: self.path.clone(), diffs: Vec::new() }
    }

    fn rebase(&mut self, relative: &[Difference]) {
        let prefix = format!("#/{}", self.path.join("/"));
        for d in relative {
            let path = if self.path.is_empty() {
                d.path.clone()
            } else if d.path.len() <= 2 {
                prefix.clone()
            } else {
                format!("{prefix}/{}", &d.path[2..])
            };
            self.diffs.push(Difference { kind: d.kind, path });
        }
    }
}

type PairKey = ((usize, Facet), (usize, Facet));

struct Shared<'a> {
    original: &'a JsonModel,
    update: &'a JsonModel,
    memo: HashMap<PairKey, Vec<Difference>>,
    in_progress: HashSet<PairKey>,
    depth: usize,
}

fn num(node: &Json, key: &str) -> Option<f64> {
    node.get(key).and_then(Json::as_f64)
}

fn int(node: &Json, key: &str) -> Option<i64> {
    node.get(key).and_then(|v| v.as_i64().or_else(|| v.as_f64().map(|f| f as i64)))
}

impl<'a> Shared<'a> {
    fn model(&self, original: bool) -> &'a JsonModel {
        if original { self.original } else { self.update }
    }

    /// Follows `$ref`s (a bounded number of hops) to the node that holds the schema.
    fn deref(&self, view: View<'a>, original: bool) -> View<'a> {
        let mut v = view;
        for _ in 0..32 {
            let Some(target) = v.node.get("$ref").and_then(Json::as_str) else {
                return v;
            };
            match self.model(original).resolve_ref(v.doc, target) {
                Some((doc, node)) => v = View { doc, node, facet: v.facet },
                None => return v,
            }
        }
        v
    }

    /// A whole node with a single part is that part (so a `{"type":"integer"}` node is viewed
    /// as its integer facet).
    fn single(&self, view: View<'a>) -> View<'a> {
        if view.facet != Facet::Whole || !matches!(view.node, Json::Object(_)) {
            return view;
        }
        let types = types_of(view.node);
        let mut parts: Vec<Facet> = match types.len() {
            0 => Vec::new(),
            1 => vec![Facet::Type(types[0])],
            _ => vec![Facet::Types],
        };
        for (key, facet) in [
            ("enum", Facet::Enum),
            ("const", Facet::Const),
            ("not", Facet::Not),
            ("allOf", Facet::AllOf),
            ("anyOf", Facet::AnyOf),
            ("oneOf", Facet::OneOf),
        ] {
            if view.node.get(key).is_some() {
                parts.push(facet);
            }
        }
        match parts.as_slice() {
            [facet] => View { facet: *facet, ..view },
            _ => view,
        }
    }

    fn classify(&self, view: View<'a>) -> Schema<'a> {
        let node = view.node;
        match node {
            Json::Bool(true) => return Schema::Empty,
            Json::Bool(false) => return Schema::False,
            Json::Object(_) => {}
            _ => return Schema::Empty,
        }
        let sub = |facet| View { doc: view.doc, node, facet };
        let list = |key: &str| -> Vec<View<'a>> {
            node.get(key)
                .and_then(Json::as_array)
                .map(|a| a.iter().map(|n| View { doc: view.doc, node: n, facet: Facet::Whole }).collect())
                .unwrap_or_default()
        };
        match view.facet {
            Facet::Type(t) => match t {
                "string" => Schema::String,
                "number" | "integer" => Schema::Number,
                "boolean" => Schema::Boolean,
                "null" => Schema::Null,
                "object" => Schema::Object,
                _ => Schema::Array,
            },
            Facet::Types => {
                Schema::Combined(Criterion::AnyOf, types_of(node).into_iter().map(|t| sub(Facet::Type(t))).collect())
            }
            Facet::Enum => Schema::Enum(node.get("enum").and_then(Json::as_array).unwrap_or_default()),
            Facet::Const => match node.get("const") {
                Some(c) => Schema::Const(c),
                None => Schema::Empty,
            },
            Facet::Not => match node.get("not") {
                Some(n) => Schema::Not(View { doc: view.doc, node: n, facet: Facet::Whole }),
                None => Schema::Empty,
            },
            Facet::AllOf => Schema::Combined(Criterion::AllOf, list("allOf")),
            Facet::AnyOf => Schema::Combined(Criterion::AnyOf, list("anyOf")),
            Facet::OneOf => Schema::Combined(Criterion::OneOf, list("oneOf")),
            Facet::Whole => {
                let mut parts: Vec<View<'a>> = Vec::new();
                let types = types_of(node);
                match types.len() {
                    0 => {}
                    1 => parts.push(sub(Facet::Type(types[0]))),
                    _ => parts.push(sub(Facet::Types)),
                }
                for (key, facet) in [
                    ("enum", Facet::Enum),
                    ("const", Facet::Const),
                    ("not", Facet::Not),
                    ("allOf", Facet::AllOf),
                    ("anyOf", Facet::AnyOf),
                    ("oneOf", Facet::OneOf),
                ] {
                    if node.get(key).is_some() {
                        parts.push(sub(facet));
                    }
                }
                match parts.len() {
                    0 => Schema::Empty,
                    1 => self.classify(parts[0]),
                    _ => Schema::Combined(Criterion::AllOf, parts),
                }
            }
        }
    }

    fn compare(&mut self, ctx: &mut Ctx, original: Option<View<'a>>, update: Option<View<'a>>) {
        let (o, u) = match (original, update) {
            (None, None) => return,
            (None, Some(_)) => return ctx.add("SCHEMA_ADDED"),
            (Some(_), None) => return ctx.add("SCHEMA_REMOVED"),
            (Some(o), Some(u)) => (self.single(self.deref(o, true)), self.single(self.deref(u, false))),
        };
        let key = (o.key(), u.key());
        if let Some(done) = self.memo.get(&key) {
            let done = done.clone();
            ctx.rebase(&done);
            return;
        }
        if self.depth >= MAX_COMPARE_DEPTH || !self.in_progress.insert(key) {
            return;
        }
        self.depth += 1;
        let mut sub = Ctx::default();
        self.compare_types(&mut sub, o, u);
        self.depth -= 1;
        self.in_progress.remove(&key);
        ctx.rebase(&sub.diffs);
        self.memo.insert(key, sub.diffs);
    }

    fn compare_types(&mut self, ctx: &mut Ctx, o: View<'a>, u: View<'a>) {
        let os = self.classify(o);
        let us = self.classify(u);
        match (&os, &us) {
            (Schema::Combined(..), Schema::Combined(..)) => {}
            (_, Schema::Combined(criterion, subs)) => {
                if subs.len() == 1 {
                    let mut sub = ctx.sub();
                    self.compare(&mut sub, Some(o), Some(subs[0]));
                    if is_compatible(&sub.diffs) {
                        ctx.diffs.extend(sub.diffs);
                        return;
                    }
                } else if matches!(criterion, Criterion::AnyOf | Criterion::OneOf) {
                    for s in subs {
                        let mut sub = ctx.sub();
                        self.compare(&mut sub, Some(o), Some(*s));
                        if is_compatible(&sub.diffs) {
                            ctx.diffs.extend(sub.diffs);
                            ctx.add("SUM_TYPE_EXTENDED");
                            return;
                        }
                    }
                }
            }
            (Schema::Combined(criterion, subs), _) => {
                if subs.len() == 1 {
                    let mut sub = ctx.sub();
                    self.compare(&mut sub, Some(subs[0]), Some(u));
                    if is_compatible(&sub.diffs) {
                        ctx.diffs.extend(sub.diffs);
                        return;
                    }
                } else if *criterion == Criterion::AllOf {
                    for s in subs {
                        let mut sub = ctx.sub();
                        self.compare(&mut sub, Some(*s), Some(u));
                        if is_compatible(&sub.diffs) {
                            ctx.diffs.extend(sub.diffs);
                            ctx.add("PRODUCT_TYPE_NARROWED");
                            return;
                        }
                    }
                }
            }
            _ => {}
        }
        if os.class() != us.class() {
            if matches!(os, Schema::False) || matches!(us, Schema::Empty) {
                return;
            }
            let connect_bytes = |v: &View<'_>| v.node.get("connect.type").and_then(Json::as_str) == Some("bytes");
            if connect_bytes(&o) && connect_bytes(&u) {
                return;
            }
            ctx.add("TYPE_CHANGED");
            return;
        }
        if matches!(o.facet, Facet::Whole | Facet::Type(_) | Facet::Types) {
            let attr = |v: &View<'a>, k: &str| v.node.get(k).cloned();
            let id = |v: &View<'a>| attr(v, "$id").or_else(|| attr(v, "id"));
            if id(&o) != id(&u) {
                ctx.add("ID_CHANGED");
            }
            for (key, kind) in
                [("title", "TITLE_CHANGED"), ("description", "DESCRIPTION_CHANGED"), ("default", "DEFAULT_CHANGED")]
            {
                if attr(&o, key) != attr(&u, key) {
                    ctx.add(kind);
                }
            }
        }
        match (os, us) {
            (Schema::String, Schema::String) => compare_string(ctx, o.node, u.node),
            (Schema::Number, Schema::Number) => compare_number(ctx, o, u),
            (Schema::Const(a), Schema::Const(b)) if a != b => ctx.add_at("const", "ENUM_ARRAY_CHANGED"),
            (Schema::Enum(a), Schema::Enum(b)) => {
                let contains_all = |big: &[Json], small: &[Json]| small.iter().all(|x| big.contains(x));
                let equal = contains_all(a, b) && contains_all(b, a);
                if !equal {
                    if contains_all(b, a) {
                        ctx.add_at("enum", "ENUM_ARRAY_EXTENDED");
                    } else if contains_all(a, b) {
                        ctx.add_at("enum", "ENUM_ARRAY_NARROWED");
                    } else {
                        ctx.add_at("enum", "ENUM_ARRAY_CHANGED");
                    }
                }
            }
            (Schema::Combined(oc, osubs), Schema::Combined(uc, usubs)) => {
                self.compare_combined(ctx, oc, osubs, uc, usubs)
            }
            (Schema::Not(on), Schema::Not(un)) => {
                ctx.path.push("not".into());
                let mut sub = ctx.sub();
                self.compare(&mut sub, Some(un), Some(on));
                if is_compatible(&sub.diffs) {
                    ctx.add("NOT_TYPE_NARROWED");
                } else {
                    ctx.add("NOT_TYPE_EXTENDED");
                }
                ctx.path.pop();
            }
            (Schema::Object, Schema::Object) => self.compare_object(ctx, o, u),
            (Schema::Array, Schema::Array) => self.compare_array(ctx, o, u),
            _ => {}
        }
    }

    fn compare_combined(
        &mut self,
        ctx: &mut Ctx,
        oc: Criterion,
        osubs: Vec<View<'a>>,
        uc: Criterion,
        usubs: Vec<View<'a>>,
    ) {
        let singleton_o = osubs.len() == 1;
        let singleton_u = usubs.len() == 1;
        if oc != uc {
            let extended = uc == Criterion::AnyOf
                || (singleton_o && singleton_u)
                || (singleton_o && uc == Criterion::OneOf)
                || (singleton_u && oc == Criterion::AllOf);
            if extended {
                ctx.add("COMBINED_TYPE_EXTENDED");
            } else {
                ctx.add("COMBINED_TYPE_CHANGED");
                return;
            }
        }
        let dedup = |subs: Vec<View<'a>>| {
            let mut seen: Vec<String> = Vec::new();
            let mut out = Vec::new();
            for s in subs {
                let t = s.text();
                if !seen.contains(&t) {
                    seen.push(t);
                    out.push(s);
                }
            }
            out
        };
        let osubs = dedup(osubs);
        let usubs = dedup(usubs);
        if osubs.len() < usubs.len() {
            ctx.add(if uc == Criterion::AllOf { "PRODUCT_TYPE_EXTENDED" } else { "SUM_TYPE_EXTENDED" });
        } else if osubs.len() > usubs.len() {
            ctx.add(if matches!(oc, Criterion::AnyOf | Criterion::OneOf) {
                "SUM_TYPE_NARROWED"
            } else {
                "PRODUCT_TYPE_NARROWED"
            });
        }
        // Compatible pairs (original index, update index) with their differences.
        let mut edges: HashMap<(usize, usize), Vec<Difference>> = HashMap::new();
        for (i, os) in osubs.iter().enumerate() {
            ctx.path.push(format!("{}/{i}", oc.name()));
            for (j, us) in usubs.iter().enumerate() {
                let mut sub = ctx.sub();
                self.compare(&mut sub, Some(*os), Some(*us));
                if is_compatible(&sub.diffs) {
                    edges.insert((i, j), sub.diffs);
                }
            }
            ctx.path.pop();
        }
        let matching = max_matching(osubs.len(), usubs.len(), &edges);
        for pair in &matching {
            if let Some(d) = edges.get(pair) {
                ctx.diffs.extend(d.iter().cloned());
            }
        }
        if matching.len() < osubs.len().min(usubs.len()) {
            ctx.add("COMBINED_TYPE_SUBSCHEMAS_CHANGED");
        }
    }

    fn compare_object(&mut self, ctx: &mut Ctx, o: View<'a>, u: View<'a>) {
        let (on, un) = (o.node, u.node);
        let props =
            |n: &'a Json| -> &'a [(String, Json)] { n.get("properties").and_then(Json::as_object).unwrap_or_default() };
        let required = |n: &'a Json| -> Vec<&'a str> {
            n.get("required")
                .and_then(Json::as_array)
                .map(|a| a.iter().filter_map(Json::as_str).collect())
                .unwrap_or_default()
        };
        let (oprops, uprops) = (props(on), props(un));
        let (oreq, ureq) = (required(on), required(un));
        let has_default = |s: &Json| s.get("default").is_some();
        let find = |list: &'a [(String, Json)], k: &str| list.iter().find(|(n, _)| n == k).map(|(_, v)| v);
        // required
        ctx.path.push("required".into());
        for (k, _) in oprops {
            if let Some(us) = find(uprops, k) {
                let (was, is) = (oreq.contains(&k.as_str()), ureq.contains(&k.as_str()));
                if was && !is {
                    ctx.add_at(k, "REQUIRED_ATTRIBUTE_REMOVED");
                } else if !was && is {
                    ctx.add_at(
                        k,
                        if has_default(us) {
                            "REQUIRED_ATTRIBUTE_WITH_DEFAULT_ADDED"
                        } else {
                            "REQUIRED_ATTRIBUTE_ADDED"
                        },
                    );
                }
            }
        }
        ctx.path.pop();
        // properties
        ctx.path.push("properties".into());
        let mut keys: Vec<&str> = oprops.iter().map(|(k, _)| k.as_str()).collect();
        for (k, _) in uprops {
            if !keys.contains(&k.as_str()) {
                keys.push(k);
            }
        }
        for k in keys {
            ctx.path.push(k.to_string());
            let os = find(oprops, k).map(|n| View { doc: o.doc, node: n, facet: Facet::Whole });
            let us = find(uprops, k).map(|n| View { doc: u.doc, node: n, facet: Facet::Whole });
            match (os, us) {
                (Some(os), None) => {
                    if self.is_open(u, false) {
                        ctx.add("PROPERTY_REMOVED_FROM_OPEN_CONTENT_MODEL");
                    } else if let Some(partial) = self.partial_schema(u, k, false) {
                        let mut sub = ctx.sub();
                        self.compare(&mut sub, Some(os), Some(partial));
                        let ok = is_compatible(&sub.diffs);
                        ctx.diffs.extend(sub.diffs);
                        ctx.add(if ok {
                            "PROPERTY_REMOVED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL"
                        } else {
                            "PROPERTY_REMOVED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL"
                        });
                    } else if matches!(self.classify(self.deref(os, true)), Schema::False) {
                        ctx.add("PROPERTY_WITH_FALSE_REMOVED_FROM_CLOSED_CONTENT_MODEL");
                    } else {
                        ctx.add("PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL");
                    }
                }
                (None, Some(us)) => {
                    let required = ureq.contains(&k);
                    if self.is_open(o, true) {
                        if matches!(self.classify(self.deref(us, false)), Schema::Empty) {
                            ctx.add("PROPERTY_WITH_EMPTY_SCHEMA_ADDED_TO_OPEN_CONTENT_MODEL");
                        } else if required {
                            ctx.add(if has_default(us.node) {
                                "REQUIRED_PROPERTY_WITH_DEFAULT_ADDED_TO_OPEN_CONTENT_MODEL"
                            } else {
                                "REQUIRED_PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL"
                            });
                        } else {
                            ctx.add("OPTIONAL_PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL");
                        }
                    } else {
                        if let Some(partial) = self.partial_schema(o, k, true) {
                            let mut sub = ctx.sub();
                            self.compare(&mut sub, Some(partial), Some(us));
                            let ok = is_compatible(&sub.diffs);
                            ctx.diffs.extend(sub.diffs);
                            ctx.add(if ok {
                                "PROPERTY_ADDED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL"
                            } else {
                                "PROPERTY_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL"
                            });
                        }
                        if required {
                            ctx.add(if has_default(us.node) {
                                "REQUIRED_PROPERTY_WITH_DEFAULT_ADDED_TO_UNOPEN_CONTENT_MODEL"
                            } else {
                                "REQUIRED_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL"
                            });
                        } else {
                            ctx.add("OPTIONAL_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL");
                        }
                    }
                }
                (Some(os), Some(us)) => self.compare(ctx, Some(os), Some(us)),
                (None, None) => {}
            }
            ctx.path.pop();
        }
        ctx.path.pop();
        // dependencies
        ctx.path.push("dependencies".into());
        let deps = |n: &'a Json| -> Vec<(&'a str, &'a Json)> {
            let mut out: Vec<(&'a str, &'a Json)> = Vec::new();
            for key in ["dependencies", "dependentRequired", "dependentSchemas"] {
                if let Some(m) = n.get(key).and_then(Json::as_object) {
                    out.extend(m.iter().map(|(k, v)| (k.as_str(), v)));
                }
            }
            out
        };
        let (odeps, udeps) = (deps(on), deps(un));
        let arrays = |d: &[(&'a str, &'a Json)]| -> Vec<(&'a str, Vec<&'a Json>)> {
            d.iter().filter_map(|(k, v)| v.as_array().map(|a| (*k, a.iter().collect()))).collect()
        };
        let schemas = |d: &[(&'a str, &'a Json)]| -> Vec<(&'a str, &'a Json)> {
            d.iter().filter(|(_, v)| !matches!(v, Json::Array(_))).copied().collect()
        };
        let (oa, ua) = (arrays(&odeps), arrays(&udeps));
        let mut keys: Vec<&str> = oa.iter().map(|(k, _)| *k).collect();
        keys.extend(ua.iter().map(|(k, _)| *k).filter(|k| !oa.iter().any(|(o, _)| o == k)));
        for k in keys {
            let od = oa.iter().find(|(x, _)| *x == k).map(|(_, v)| v);
            let ud = ua.iter().find(|(x, _)| *x == k).map(|(_, v)| v);
            match (od, ud) {
                (_, None) => ctx.add_at(k, "DEPENDENCY_ARRAY_REMOVED"),
                (None, Some(_)) => ctx.add_at(k, "DEPENDENCY_ARRAY_ADDED"),
                (Some(a), Some(b)) => {
                    let all = |big: &[&Json], small: &[&Json]| small.iter().all(|x| big.contains(x));
                    if !(all(a, b) && all(b, a)) {
                        if all(b, a) {
                            ctx.add_at(k, "DEPENDENCY_ARRAY_EXTENDED");
                        } else if all(a, b) {
                            ctx.add_at(k, "DEPENDENCY_ARRAY_NARROWED");
                        } else {
                            ctx.add_at(k, "DEPENDENCY_ARRAY_CHANGED");
                        }
                    }
                }
            }
        }
        let (os, us) = (schemas(&odeps), schemas(&udeps));
        let mut keys: Vec<&str> = os.iter().map(|(k, _)| *k).collect();
        keys.extend(us.iter().map(|(k, _)| *k).filter(|k| !os.iter().any(|(o, _)| o == k)));
        for k in keys {
            let od = os.iter().find(|(x, _)| *x == k).map(|(_, v)| View { doc: o.doc, node: v, facet: Facet::Whole });
            let ud = us.iter().find(|(x, _)| *x == k).map(|(_, v)| View { doc: u.doc, node: v, facet: Facet::Whole });
            ctx.path.push(k.to_string());
            match (od, ud) {
                (_, None) => ctx.add("DEPENDENCY_SCHEMA_REMOVED"),
                (None, Some(_)) => ctx.add("DEPENDENCY_SCHEMA_ADDED"),
                (Some(a), Some(b)) => self.compare(ctx, Some(a), Some(b)),
            }
            ctx.path.pop();
        }
        ctx.path.pop();
        // additionalProperties
        ctx.path.push("additionalProperties".into());
        let (oa, ua) = (extra(o, "additionalProperties"), extra(u, "additionalProperties"));
        self.compare_extra(ctx, oa, ua, "ADDITIONAL_PROPERTIES");
        ctx.path.pop();
        // unevaluatedProperties
        self.compare_unevaluated(ctx, o, u, "unevaluatedProperties", "UNEVALUATED_PROPERTIES");
        for (key, added, removed, increased, decreased) in [
            (
                "maxProperties",
                "MAX_PROPERTIES_ADDED",
                "MAX_PROPERTIES_REMOVED",
                "MAX_PROPERTIES_INCREASED",
                "MAX_PROPERTIES_DECREASED",
            ),
            (
                "minProperties",
                "MIN_PROPERTIES_ADDED",
                "MIN_PROPERTIES_REMOVED",
                "MIN_PROPERTIES_INCREASED",
                "MIN_PROPERTIES_DECREASED",
            ),
        ] {
            compare_limit(
                ctx,
                key,
                int(on, key).map(|v| v as f64),
                int(un, key).map(|v| v as f64),
                [added, removed, increased, decreased],
            );
        }
    }

    /// Open: `additionalProperties` absent or `true`, no `patternProperties`, and
    /// `unevaluatedProperties` absent or `true`.
    fn is_open(&self, v: View<'a>, _original: bool) -> bool {
        if !matches!(extra(v, "additionalProperties"), Extra::Open) {
            return false;
        }
        if v.node.get("patternProperties").and_then(Json::as_object).is_some_and(|m| !m.is_empty()) {
            return false;
        }
        match v.node.get("unevaluatedProperties") {
            None | Some(Json::Bool(true)) => true,
            Some(Json::Object(m)) => m.is_empty(),
            _ => false,
        }
    }

    fn partial_schema(&self, v: View<'a>, key: &str, _original: bool) -> Option<View<'a>> {
        if let Some(patterns) = v.node.get("patternProperties").and_then(Json::as_object) {
            for (pattern, schema) in patterns {
                if regex::Regex::new(pattern).is_ok_and(|re| re.is_match(key)) {
                    return Some(View { doc: v.doc, node: schema, facet: Facet::Whole });
                }
            }
        }
        if let Extra::Schema(s) = extra(v, "additionalProperties") {
            return Some(s);
        }
        if matches!(extra(v, "additionalProperties"), Extra::Open)
            && let Some(u @ Json::Object(m)) = v.node.get("unevaluatedProperties")
            && !m.is_empty()
        {
            return Some(View { doc: v.doc, node: u, facet: Facet::Whole });
        }
        None
    }

    fn compare_extra(&mut self, ctx: &mut Ctx, o: Extra<'a>, u: Extra<'a>, prefix: &str) {
        let permits = |e: &Extra<'_>| !matches!(e, Extra::Closed);
        let kind = |suffix: &str| -> &'static str { leak_kind(prefix, suffix) };
        if permits(&o) != permits(&u) {
            if permits(&u) {
                ctx.add(kind("ADDED"));
            } else {
                ctx.add(kind("REMOVED"));
            }
        } else {
            match (o, u) {
                (Extra::Open, Extra::Schema(_)) => ctx.add(kind("NARROWED")),
                (Extra::Schema(_), Extra::Open) => ctx.add(kind("EXTENDED")),
                (Extra::Schema(a), Extra::Schema(b)) => self.compare(ctx, Some(a), Some(b)),
                _ => {}
            }
        }
    }

    fn compare_unevaluated(&mut self, ctx: &mut Ctx, o: View<'a>, u: View<'a>, key: &str, prefix: &str) {
        let (on, un) = (o.node.get(key), u.node.get(key));
        if on.is_none() && un.is_none() {
            return;
        }
        let kind = |suffix: &str| -> &'static str { leak_kind(prefix, suffix) };
        let is_false = |n: Option<&Json>| matches!(n, Some(Json::Bool(false)));
        let is_empty = |n: Option<&Json>| {
            matches!(n, Some(Json::Bool(true))) || n.and_then(Json::as_object).is_some_and(|m| m.is_empty())
        };
        ctx.path.push(key.to_string());
        match (on, un) {
            (None, _) => ctx.add(if is_false(un) { kind("REMOVED") } else { kind("NARROWED") }),
            (_, None) => ctx.add(if is_false(on) { kind("ADDED") } else { kind("EXTENDED") }),
            (Some(a), Some(b)) => {
                if is_false(on) && !is_false(un) {
                    ctx.add(kind("ADDED"));
                } else if !is_false(on) && is_false(un) {
                    ctx.add(kind("REMOVED"));
                } else if is_empty(on) && !is_empty(un) {
                    ctx.add(kind("NARROWED"));
                } else if !is_empty(on) && is_empty(un) {
                    ctx.add(kind("EXTENDED"));
                } else {
                    let a = View { doc: o.doc, node: a, facet: Facet::Whole };
                    let b = View { doc: u.doc, node: b, facet: Facet::Whole };
                    self.compare(ctx, Some(a), Some(b));
                }
            }
        }
        ctx.path.pop();
    }

    fn compare_array(&mut self, ctx: &mut Ctx, o: View<'a>, u: View<'a>) {
        let (on, un) = (o.node, u.node);
        let shape = |v: View<'a>| -> (Option<View<'a>>, Vec<View<'a>>, Extra<'a>) {
            let w = |n: &'a Json| View { doc: v.doc, node: n, facet: Facet::Whole };
            if let Some(prefix) = v.node.get("prefixItems").and_then(Json::as_array) {
                let additional = match v.node.get("items") {
                    None | Some(Json::Bool(true)) => Extra::Open,
                    Some(Json::Bool(false)) => Extra::Closed,
                    Some(n) => Extra::Schema(w(n)),
                };
                return (None, prefix.iter().map(w).collect(), additional);
            }
            match v.node.get("items") {
                Some(Json::Array(a)) => (None, a.iter().map(w).collect(), extra(v, "additionalItems")),
                Some(n) => (Some(w(n)), Vec::new(), extra(v, "additionalItems")),
                None => (None, Vec::new(), extra(v, "additionalItems")),
            }
        };
        let (oall, oitems, oextra) = shape(o);
        let (uall, uitems, uextra) = shape(u);
        ctx.path.push("items".into());
        self.compare(ctx, oall, uall);
        ctx.path.pop();
        let open = |e: &Extra<'_>, v: View<'a>| {
            matches!(e, Extra::Open)
                && match v.node.get("unevaluatedItems") {
                    None | Some(Json::Bool(true)) => true,
                    Some(Json::Object(m)) => m.is_empty(),
                    _ => false,
                }
        };
        let partial = |e: &Extra<'a>, v: View<'a>| -> Option<View<'a>> {
            match e {
                Extra::Schema(s) => Some(*s),
                Extra::Open => match v.node.get("unevaluatedItems") {
                    Some(n @ Json::Object(m)) if !m.is_empty() => {
                        Some(View { doc: v.doc, node: n, facet: Facet::Whole })
                    }
                    _ => None,
                },
                Extra::Closed => None,
            }
        };
        let common = oitems.len().min(uitems.len());
        for i in 0..oitems.len().max(uitems.len()) {
            ctx.path.push(format!("items/{i}"));
            if i < common {
                self.compare(ctx, Some(oitems[i]), Some(uitems[i]));
            } else if i < oitems.len() {
                if open(&uextra, u) {
                    ctx.add("ITEM_REMOVED_FROM_OPEN_CONTENT_MODEL");
                } else if let Some(p) = partial(&uextra, u) {
                    let mut sub = ctx.sub();
                    self.compare(&mut sub, Some(oitems[i]), Some(p));
                    let ok = is_compatible(&sub.diffs);
                    ctx.diffs.extend(sub.diffs);
                    ctx.add(if ok {
                        "ITEM_REMOVED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL"
                    } else {
                        "ITEM_REMOVED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL"
                    });
                } else if matches!(self.classify(self.deref(oitems[i], true)), Schema::False) {
                    ctx.add("ITEM_WITH_FALSE_REMOVED_FROM_CLOSED_CONTENT_MODEL");
                } else {
                    ctx.add("ITEM_REMOVED_FROM_CLOSED_CONTENT_MODEL");
                }
            } else if open(&oextra, o) {
                if matches!(self.classify(self.deref(uitems[i], false)), Schema::Empty) {
                    ctx.add("ITEM_WITH_EMPTY_SCHEMA_ADDED_TO_OPEN_CONTENT_MODEL");
                } else {
                    ctx.add("ITEM_ADDED_TO_OPEN_CONTENT_MODEL");
                }
            } else if let Some(p) = partial(&oextra, o) {
                let mut sub = ctx.sub();
                self.compare(&mut sub, Some(p), Some(uitems[i]));
                let ok = is_compatible(&sub.diffs);
                ctx.diffs.extend(sub.diffs);
                ctx.add(if ok {
                    "ITEM_ADDED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL"
                } else {
                    "ITEM_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL"
                });
            } else {
                ctx.add("ITEM_ADDED_TO_CLOSED_CONTENT_MODEL");
            }
            ctx.path.pop();
        }
        ctx.path.push("additionalItems".into());
        let permits = |e: &Extra<'_>| !matches!(e, Extra::Closed);
        if permits(&oextra) != permits(&uextra) {
            ctx.add(if permits(&oextra) { "ADDITIONAL_ITEMS_REMOVED" } else { "ADDITIONAL_ITEMS_ADDED" });
        } else {
            match (oextra, uextra) {
                (Extra::Open, Extra::Schema(_)) => ctx.add("ADDITIONAL_ITEMS_NARROWED"),
                (Extra::Schema(_), Extra::Open) => ctx.add("ADDITIONAL_ITEMS_EXTENDED"),
                (Extra::Schema(a), Extra::Schema(b)) => self.compare(ctx, Some(a), Some(b)),
                _ => {}
            }
        }
        ctx.path.pop();
        self.compare_unevaluated(ctx, o, u, "unevaluatedItems", "UNEVALUATED_ITEMS");
        for (key, kinds) in [
            ("maxItems", ["MAX_ITEMS_ADDED", "MAX_ITEMS_REMOVED", "MAX_ITEMS_INCREASED", "MAX_ITEMS_DECREASED"]),
            ("minItems", ["MIN_ITEMS_ADDED", "MIN_ITEMS_REMOVED", "MIN_ITEMS_INCREASED", "MIN_ITEMS_DECREASED"]),
        ] {
            compare_limit(ctx, key, int(on, key).map(|v| v as f64), int(un, key).map(|v| v as f64), kinds);
        }
        let unique = |n: &Json| n.get("uniqueItems").and_then(Json::as_bool).unwrap_or(false);
        if unique(on) != unique(un) {
            ctx.add_at("uniqueItems", if unique(on) { "UNIQUE_ITEMS_REMOVED" } else { "UNIQUE_ITEMS_ADDED" });
        }
        for (key, kinds) in [
            (
                "maxContains",
                ["MAX_CONTAINS_ADDED", "MAX_CONTAINS_REMOVED", "MAX_CONTAINS_INCREASED", "MAX_CONTAINS_DECREASED"],
            ),
            (
                "minContains",
                ["MIN_CONTAINS_ADDED", "MIN_CONTAINS_REMOVED", "MIN_CONTAINS_INCREASED", "MIN_CONTAINS_DECREASED"],
            ),
        ] {
            compare_limit(ctx, key, int(on, key).map(|v| v as f64), int(un, key).map(|v| v as f64), kinds);
        }
    }
}

fn extra<'a>(v: View<'a>, key: &str) -> Extra<'a> {
    match v.node.get(key) {
        None | Some(Json::Bool(true)) => Extra::Open,
        Some(Json::Bool(false)) => Extra::Closed,
        Some(n) => Extra::Schema(View { doc: v.doc, node: n, facet: Facet::Whole }),
    }
}

/// `PREFIX_SUFFIX` as a static name, for the fixed set of prefixes used here.
fn leak_kind(prefix: &str, suffix: &str) -> &'static str {
    match (prefix, suffix) {
        ("ADDITIONAL_PROPERTIES", "ADDED") => "ADDITIONAL_PROPERTIES_ADDED",
        ("ADDITIONAL_PROPERTIES", "REMOVED") => "ADDITIONAL_PROPERTIES_REMOVED",
        ("ADDITIONAL_PROPERTIES", "NARROWED") => "ADDITIONAL_PROPERTIES_NARROWED",
        ("ADDITIONAL_PROPERTIES", "EXTENDED") => "ADDITIONAL_PROPERTIES_EXTENDED",
        ("UNEVALUATED_PROPERTIES", "ADDED") => "UNEVALUATED_PROPERTIES_ADDED",
        ("UNEVALUATED_PROPERTIES", "REMOVED") => "UNEVALUATED_PROPERTIES_REMOVED",
        ("UNEVALUATED_PROPERTIES", "NARROWED") => "UNEVALUATED_PROPERTIES_NARROWED",
        ("UNEVALUATED_PROPERTIES", "EXTENDED") => "UNEVALUATED_PROPERTIES_EXTENDED",
        ("UNEVALUATED_ITEMS", "ADDED") => "UNEVALUATED_ITEMS_ADDED",
        ("UNEVALUATED_ITEMS", "REMOVED") => "UNEVALUATED_ITEMS_REMOVED",
        ("UNEVALUATED_ITEMS", "NARROWED") => "UNEVALUATED_ITEMS_NARROWED",
        _ => "UNEVALUATED_ITEMS_EXTENDED",
    }
}

/// Added / removed / increased / decreased for a numeric keyword.
fn compare_limit(ctx: &mut Ctx, key: &str, o: Option<f64>, u: Option<f64>, kinds: [&'static str; 4]) {
    match (o, u) {
        (None, Some(_)) => ctx.add_at(key, kinds[0]),
        (Some(_), None) => ctx.add_at(key, kinds[1]),
        (Some(a), Some(b)) if a < b => ctx.add_at(key, kinds[2]),
        (Some(a), Some(b)) if a > b => ctx.add_at(key, kinds[3]),
        _ => {}
    }
}

fn compare_string(ctx: &mut Ctx, o: &Json, u: &Json) {
    let len = |n: &Json, k: &str| int(n, k).map(|v| v as f64);
    compare_limit(
        ctx,
        "maxLength",
        len(o, "maxLength"),
        len(u, "maxLength"),
        ["MAX_LENGTH_ADDED", "MAX_LENGTH_REMOVED", "MAX_LENGTH_INCREASED", "MAX_LENGTH_DECREASED"],
    );
    compare_limit(
        ctx,
        "minLength",
        len(o, "minLength"),
        len(u, "minLength"),
        ["MIN_LENGTH_ADDED", "MIN_LENGTH_REMOVED", "MIN_LENGTH_INCREASED", "MIN_LENGTH_DECREASED"],
    );
    let pattern = |n: &Json| n.get("pattern").and_then(Json::as_str).map(str::to_string);
    match (pattern(o), pattern(u)) {
        (None, Some(_)) => ctx.add_at("pattern", "PATTERN_ADDED"),
        (Some(_), None) => ctx.add_at("pattern", "PATTERN_REMOVED"),
        (Some(a), Some(b)) if a != b => ctx.add_at("pattern", "PATTERN_CHANGED"),
        _ => {}
    }
}

/// A decimal literal as (unscaled value, scale), when it fits.
fn decimal(n: &Json) -> Option<(i128, u32)> {
    let Json::Number(text) = n else { return None };
    let (mantissa, exp) = match text.find(['e', 'E']) {
        Some(i) => (&text[..i], text[i + 1..].parse::<i32>().ok()?),
        None => (text.as_str(), 0),
    };
    let (int_part, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = format!("{int_part}{frac}");
    let mut value: i128 = digits.parse().ok()?;
    let mut scale = frac.len() as i32 - exp;
    while scale < 0 {
        value = value.checked_mul(10)?;
        scale += 1;
    }
    if scale > 30 {
        return None;
    }
    Some((value, scale as u32))
}

fn rescale(a: (i128, u32), b: (i128, u32)) -> Option<(i128, i128)> {
    let scale = a.1.max(b.1);
    let x = a.0.checked_mul(10i128.checked_pow(scale - a.1)?)?;
    let y = b.0.checked_mul(10i128.checked_pow(scale - b.1)?)?;
    Some((x, y))
}

fn compare_number(ctx: &mut Ctx, o: View<'_>, u: View<'_>) {
    let (on, un) = (o.node, u.node);
    compare_limit(
        ctx,
        "maximum",
        num(on, "maximum"),
        num(un, "maximum"),
        ["MAXIMUM_ADDED", "MAXIMUM_REMOVED", "MAXIMUM_INCREASED", "MAXIMUM_DECREASED"],
    );
    compare_limit(
        ctx,
        "minimum",
        num(on, "minimum"),
        num(un, "minimum"),
        ["MINIMUM_ADDED", "MINIMUM_REMOVED", "MINIMUM_INCREASED", "MINIMUM_DECREASED"],
    );
    // Draft 4's boolean exclusive flags are not limits of their own.
    compare_limit(
        ctx,
        "exclusiveMaximum",
        num(on, "exclusiveMaximum"),
        num(un, "exclusiveMaximum"),
        [
            "EXCLUSIVE_MAXIMUM_ADDED",
            "EXCLUSIVE_MAXIMUM_REMOVED",
            "EXCLUSIVE_MAXIMUM_INCREASED",
            "EXCLUSIVE_MAXIMUM_DECREASED",
        ],
    );
    compare_limit(
        ctx,
        "exclusiveMinimum",
        num(on, "exclusiveMinimum"),
        num(un, "exclusiveMinimum"),
        [
            "EXCLUSIVE_MINIMUM_ADDED",
            "EXCLUSIVE_MINIMUM_REMOVED",
            "EXCLUSIVE_MINIMUM_INCREASED",
            "EXCLUSIVE_MINIMUM_DECREASED",
        ],
    );
    let (om, um) = (on.get("multipleOf"), un.get("multipleOf"));
    match (om, um) {
        (None, None) => {}
        (None, Some(_)) => ctx.add_at("multipleOf", "MULTIPLE_OF_ADDED"),
        (Some(_), None) => ctx.add_at("multipleOf", "MULTIPLE_OF_REMOVED"),
        (Some(a), Some(b)) => {
            let kind = match (decimal(a), decimal(b)) {
                (Some(x), Some(y)) => match rescale(x, y) {
                    Some((x, y)) if x == y => None,
                    Some((x, y)) if x != 0 && y % x == 0 => Some("MULTIPLE_OF_EXPANDED"),
                    Some((x, y)) if y != 0 && x % y == 0 => Some("MULTIPLE_OF_REDUCED"),
                    _ => Some("MULTIPLE_OF_CHANGED"),
                },
                _ => {
                    let (x, y) = (a.as_f64().unwrap_or(0.0), b.as_f64().unwrap_or(0.0));
                    if x == y {
                        None
                    } else if x != 0.0 && (y / x).fract() == 0.0 {
                        Some("MULTIPLE_OF_EXPANDED")
                    } else if y != 0.0 && (x / y).fract() == 0.0 {
                        Some("MULTIPLE_OF_REDUCED")
                    } else {
                        Some("MULTIPLE_OF_CHANGED")
                    }
                }
            };
            if let Some(kind) = kind {
                ctx.add_at("multipleOf", kind);
            }
        }
    }
    let integer = |v: &View<'_>| matches!(v.facet, Facet::Type("integer"));
    if integer(&o) != integer(&u) {
        ctx.add(if integer(&o) { "TYPE_EXTENDED" } else { "TYPE_NARROWED" });
    }
}

/// Maximum bipartite matching over the compatible pairs (augmenting paths).
fn max_matching(left: usize, right: usize, edges: &HashMap<(usize, usize), Vec<Difference>>) -> Vec<(usize, usize)> {
    let mut match_right: Vec<Option<usize>> = vec![None; right];
    fn augment(
        l: usize,
        right: usize,
        edges: &HashMap<(usize, usize), Vec<Difference>>,
        seen: &mut [bool],
        match_right: &mut [Option<usize>],
    ) -> bool {
        for r in 0..right {
            if edges.contains_key(&(l, r)) && !seen[r] {
                seen[r] = true;
                let free = match match_right[r] {
                    None => true,
                    Some(other) => augment(other, right, edges, seen, match_right),
                };
                if free {
                    match_right[r] = Some(l);
                    return true;
                }
            }
        }
        false
    }
    for l in 0..left {
        let mut seen = vec![false; right];
        augment(l, right, edges, &mut seen, &mut match_right);
    }
    match_right.iter().enumerate().filter_map(|(r, l)| l.map(|l| (l, r))).collect()
}
