//! Avro reader/writer compatibility with the Java library's rules and locations, reported in
//! Confluent's message format.
//!
//! The reader can read the writer's data when, recursively: the types are equal, or the writer's
//! is promotable (int to long/float/double, long to float/double, float to double, string and
//! bytes both ways); records have matching names (or a reader alias) and every reader field is
//! either in the writer (by name or field alias) with a readable type or has a default; enums have
//! matching names and the reader has every writer symbol or a default; fixed types have matching
//! names and sizes; arrays and maps have readable items/values; every branch of a writer union is
//! readable, and a reader union reads a non-union writer if any branch does.

use std::collections::{BTreeSet, HashMap, HashSet};

use super::esc;
use crate::avro::{AvroModel, Node, NodeId, Primitive};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    NameMismatch,
    FixedSizeMismatch,
    MissingEnumSymbols,
    ReaderFieldMissingDefaultValue,
    TypeMismatch,
    MissingUnionBranch,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::NameMismatch => "NAME_MISMATCH",
            Kind::FixedSizeMismatch => "FIXED_SIZE_MISMATCH",
            Kind::MissingEnumSymbols => "MISSING_ENUM_SYMBOLS",
            Kind::ReaderFieldMissingDefaultValue => "READER_FIELD_MISSING_DEFAULT_VALUE",
            Kind::TypeMismatch => "TYPE_MISMATCH",
            Kind::MissingUnionBranch => "MISSING_UNION_BRANCH",
        }
    }
}

#[derive(Debug, Clone)]
struct Incompatibility {
    kind: Kind,
    location: String,
    message: String,
}

impl Incompatibility {
    /// Confluent's rendering, with `%s` slots for "reader" and "writer" words.
    fn template(&self) -> String {
        let path = esc(&self.location);
        let info = esc(&self.message);
        let description = match self.kind {
            Kind::FixedSizeMismatch => format!(
                "The size of FIXED type field at path '{path}' in the %s schema does not match with the %s schema"
            ),
            Kind::TypeMismatch => {
                format!("The type (path '{path}') of a field in the %s schema does not match with the %s schema")
            }
            Kind::NameMismatch => format!("The name of the schema has changed (path '{path}')"),
            Kind::MissingEnumSymbols => {
                format!("The %s schema is missing enum symbols '{info}' at path '{path}' in the %s schema")
            }
            Kind::MissingUnionBranch => {
                format!("The %s schema is missing a type inside a union field at path '{path}' in the %s schema")
            }
            Kind::ReaderFieldMissingDefaultValue => format!(
                "The field '{info}' at path '{path}' in the %s schema has no default value and is missing in the %s schema"
            ),
        };
        format!("{{errorType:'{}', description:'{description}', additionalInfo:'{info}'}}", self.kind.as_str())
    }
}

/// Message templates for "reader cannot read writer" (empty = compatible).
pub(crate) fn check(reader: &AvroModel, writer: &AvroModel) -> Vec<String> {
    let mut checker =
        Checker { reader, writer, memo: HashMap::new(), in_progress: HashSet::new(), location: Vec::new() };
    let result = checker.compat(reader.root, writer.root);
    result.iter().map(Incompatibility::template).collect()
}

struct Checker<'a> {
    reader: &'a AvroModel,
    writer: &'a AvroModel,
    memo: HashMap<(NodeId, NodeId), Vec<Incompatibility>>,
    in_progress: HashSet<(NodeId, NodeId)>,
    location: Vec<String>,
}

fn escape_token(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

impl Checker<'_> {
    fn here(&self) -> String {
        let mut s = String::new();
        for part in &self.location {
            s.push('/');
            s.push_str(&escape_token(part));
        }
        if s.is_empty() {
            s.push('/');
        }
        s
    }

    fn incompatible(&self, kind: Kind, message: String) -> Vec<Incompatibility> {
        vec![Incompatibility { kind, location: self.here(), message }]
    }

    fn with_token(&mut self, token: &str, reader: NodeId, writer: NodeId) -> Vec<Incompatibility> {
        self.location.push(token.to_string());
        let result = self.compat(reader, writer);
        self.location.pop();
        result
    }

    fn compat(&mut self, reader: NodeId, writer: NodeId) -> Vec<Incompatibility> {
        let key = (reader, writer);
        if let Some(done) = self.memo.get(&key) {
            return done.clone();
        }
        if !self.in_progress.insert(key) {
            // A recursive pair being checked higher up: assume compatible.
            return Vec::new();
        }
        let result = self.calculate(reader, writer);
        self.in_progress.remove(&key);
        self.memo.insert(key, result.clone());
        result
    }

    fn type_mismatch(&self, reader: &Node, writer: &Node) -> Vec<Incompatibility> {
        self.incompatible(
            Kind::TypeMismatch,
            format!("reader type: {} not compatible with writer type: {}", reader.type_name(), writer.type_name()),
        )
    }

    fn calculate(&mut self, reader_id: NodeId, writer_id: NodeId) -> Vec<Incompatibility> {
        let reader = self.reader.node(reader_id);
        let writer = self.writer.node(writer_id);
        if reader.type_name() == writer.type_name() {
            return match (reader, writer) {
                (Node::Primitive { .. }, Node::Primitive { .. }) => Vec::new(),
                (Node::Array { items: r, .. }, Node::Array { items: w, .. }) => self.with_token("items", *r, *w),
                (Node::Map { values: r, .. }, Node::Map { values: w, .. }) => self.with_token("values", *r, *w),
                (Node::Fixed { size: rs, .. }, Node::Fixed { size: ws, .. }) => {
                    let mut result = self.check_names(reader, writer);
                    if rs != ws {
                        self.location.push("size".into());
                        result
                            .extend(self.incompatible(Kind::FixedSizeMismatch, format!("expected: {ws}, found: {rs}")));
                        self.location.pop();
                    }
                    result
                }
                (Node::Enum { symbols: rsyms, default: rdefault, .. }, Node::Enum { symbols: wsyms, .. }) => {
                    let mut result = self.check_names(reader, writer);
                    self.location.push("symbols".into());
                    let missing: BTreeSet<&String> = wsyms.iter().filter(|s| !rsyms.contains(s)).collect();
                    let has_default = rdefault.as_ref().is_some_and(|d| rsyms.contains(d));
                    if !missing.is_empty() && !has_default {
                        let list: Vec<&str> = missing.iter().map(|s| s.as_str()).collect();
                        result.extend(self.incompatible(Kind::MissingEnumSymbols, format!("[{}]", list.join(", "))));
                    }
                    self.location.pop();
                    result
                }
                (Node::Record { .. }, Node::Record { .. }) => {
                    let mut result = self.check_names(reader, writer);
                    result.extend(self.check_fields(reader_id, writer_id));
                    result
                }
                (Node::Union(_), Node::Union(wbranches)) => {
                    let mut result = Vec::new();
                    for (i, &wb) in wbranches.iter().enumerate() {
                        self.location.push(i.to_string());
                        if !self.compat(reader_id, wb).is_empty() {
                            let message =
                                format!("reader union lacking writer type: {}", self.writer.node(wb).type_name());
                            result.extend(self.incompatible(Kind::MissingUnionBranch, message));
                        }
                        self.location.pop();
                    }
                    result
                }
                _ => self.type_mismatch(reader, writer),
            };
        }
        // Different types: a writer union is readable when each of its branches is.
        if let Node::Union(wbranches) = writer {
            let mut result = Vec::new();
            for &wb in wbranches {
                result.extend(self.compat(reader_id, wb));
            }
            return result;
        }
        let promotable = |kinds: &[Primitive]| matches!(writer, Node::Primitive { kind, .. } if kinds.contains(kind));
        match reader {
            Node::Primitive { kind: Primitive::Long, .. } if promotable(&[Primitive::Int]) => Vec::new(),
            Node::Primitive { kind: Primitive::Float, .. } if promotable(&[Primitive::Int, Primitive::Long]) => {
                Vec::new()
            }
            Node::Primitive { kind: Primitive::Double, .. }
                if promotable(&[Primitive::Int, Primitive::Long, Primitive::Float]) =>
            {
                Vec::new()
            }
            Node::Primitive { kind: Primitive::Bytes, .. } if promotable(&[Primitive::String]) => Vec::new(),
            Node::Primitive { kind: Primitive::String, .. } if promotable(&[Primitive::Bytes]) => Vec::new(),
            Node::Union(rbranches) => {
                for &rb in rbranches {
                    if self.compat(rb, writer_id).is_empty() {
                        return Vec::new();
                    }
                }
                let message = format!("reader union lacking writer type: {}", writer.type_name());
                self.incompatible(Kind::MissingUnionBranch, message)
            }
            _ => self.type_mismatch(reader, writer),
        }
    }

    fn check_names(&mut self, reader: &Node, writer: &Node) -> Vec<Incompatibility> {
        let (Some(rname), Some(wname)) = (reader.name(), writer.name()) else {
            return Vec::new();
        };
        let aliases = match reader {
            Node::Record { aliases, .. } | Node::Enum { aliases, .. } | Node::Fixed { aliases, .. } => aliases,
            _ => return Vec::new(),
        };
        let writer_full = wname.full();
        if rname.name == wname.name || aliases.iter().any(|a| a.full() == writer_full) {
            return Vec::new();
        }
        self.location.push("name".into());
        let result = self.incompatible(Kind::NameMismatch, format!("expected: {writer_full}"));
        self.location.pop();
        result
    }

    fn check_fields(&mut self, reader_id: NodeId, writer_id: NodeId) -> Vec<Incompatibility> {
        let reader = self.reader;
        let writer = self.writer;
        let (Node::Record { fields: rfields, .. }, Node::Record { fields: wfields, .. }) =
            (reader.node(reader_id), writer.node(writer_id))
        else {
            return Vec::new();
        };
        let mut result = Vec::new();
        self.location.push("fields".into());
        for (pos, rf) in rfields.iter().enumerate() {
            self.location.push(pos.to_string());
            let mut matches = Vec::new();
            if let Some(wf) = wfields.iter().find(|wf| wf.name == rf.name) {
                matches.push(wf);
            }
            for alias in &rf.aliases {
                if let Some(wf) = wfields.iter().find(|wf| &wf.name == alias) {
                    matches.push(wf);
                }
            }
            match matches.as_slice() {
                [] => {
                    if rf.default.is_none() {
                        let enum_default = matches!(reader.node(rf.ty), Node::Enum { default: Some(_), .. });
                        if enum_default {
                            result.extend(self.with_token("type", rf.ty, writer_id));
                        } else {
                            result.extend(self.incompatible(Kind::ReaderFieldMissingDefaultValue, rf.name.clone()));
                        }
                    }
                }
                [wf] => result.extend(self.with_token("type", rf.ty, wf.ty)),
                _ => result.extend(self.incompatible(
                    Kind::TypeMismatch,
                    format!("Reader record field {} matches multiple fields in writer record schema", rf.name),
                )),
            }
            self.location.pop();
        }
        self.location.pop();
        result
    }
}
