//! Protobuf compatibility: a diff of the old (original) and new (update) file in which messages
//! are matched by name, fields by number and enum constants by number. A change is compatible
//! when every difference's type is a compatible one: adding or removing messages, enums, enum
//! constants, fields and oneofs, renaming fields, moving a oneof member to the top level, and
//! changing a type within its scalar kind (`int32`/`int64`/`uint32`/`uint64`/`bool`/enums;
//! `sint32`/`sint64`; `string`/`bytes`; `fixed32`/`sfixed32`; `fixed64`/`sfixed64`; `float`;
//! `double`). Message-typed fields are compared through the referenced message, by local name.

use std::collections::HashSet;

use super::esc;
use crate::protobuf::{EnumAst, FieldAst, FieldType, MessageAst, ProtoModel, TypeInfo};

const COMPATIBLE: &[&str] = &[
    "MESSAGE_ADDED",
    "MESSAGE_MOVED",
    "ENUM_ADDED",
    "ENUM_REMOVED",
    "ENUM_CONST_ADDED",
    "ENUM_CONST_CHANGED",
    "ENUM_CONST_REMOVED",
    "FIELD_ADDED",
    "FIELD_REMOVED",
    "FIELD_NAME_CHANGED",
    "FIELD_STRING_OR_BYTES_LABEL_CHANGED",
    "ONEOF_ADDED",
    "ONEOF_REMOVED",
    "ONEOF_FIELD_ADDED",
    "ONEOF_FIELD_MOVED_TO_TOP_LEVEL",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Difference {
    pub kind: &'static str,
    pub path: String,
}

impl Difference {
    fn template(&self) -> String {
        let p = esc(&self.path);
        let description = match self.kind {
            "PACKAGE_CHANGED" => {
                format!("The package at '{p}' in the %s schema does not match the package in the %s schema")
            }
            "MESSAGE_REMOVED" => format!("The %s schema is missing a MESSAGE type at path '{p}' in the %s schema"),
            "FIELD_KIND_CHANGED" => {
                format!("The type of a field at path '{p}' in the %s schema does not match the %s schema")
            }
            "FIELD_SCALAR_KIND_CHANGED" => format!(
                "The kind of a SCALAR field at path '{p}' in the %s schema does not match its kind in the %s schema"
            ),
            "FIELD_NAMED_TYPE_CHANGED" => format!(
                "The type of a MESSAGE field at path '{p}' in the %s schema does not match its type in the %s schema"
            ),
            "FIELD_NUMERIC_LABEL_CHANGED" => format!(
                "The label for a NUMERIC field at path '{p}' in the %s schema does not match its label in the %s schema"
            ),
            "REQUIRED_FIELD_ADDED" => {
                format!("A required field  at path '{p}' in the %s schema is missing in the %s schema")
            }
            "REQUIRED_FIELD_REMOVED" => {
                format!("The %s schema is missing a required field at path: '{p}' in the %s schema")
            }
            "ONEOF_FIELD_REMOVED" => format!("The %s schema is missing a oneof field at path '{p}' in the %s schema"),
            "ONEOF_FIELD_MOVED_TO_TOP_LEVEL" => format!(
                "The oneof field at path '{p}' in the %s schema was moved out of its oneof to a top-level field in the %s schema"
            ),
            "MULTIPLE_FIELDS_MOVED_TO_ONEOF" => format!(
                "Multiple fields in the oneof at path '{p}' in the %s schema are outside a oneof in the %s schema"
            ),
            "FIELD_MOVED_TO_EXISTING_ONEOF" => format!(
                "A field in the oneof at path '{p}' in the %s schema is outside an existing oneof in the %s schema"
            ),
            _ => String::new(),
        };
        format!("{{errorType:\"{}\", description:\"{description}\"}}", self.kind)
    }
}

/// Every difference from `original` (old) to `update` (new).
pub(crate) fn diff(original: &ProtoModel, update: &ProtoModel) -> Vec<Difference> {
    let mut shared = Shared { original, update, visited: HashSet::new() };
    let mut ctx = Ctx::default();
    if original.file.package != update.file.package {
        ctx.add("PACKAGE_CHANGED");
    }
    shared.compare_types(
        &mut ctx,
        (&original.file.messages, &original.file.enums),
        (&update.file.messages, &update.file.enums),
    );
    ctx.diffs
}

/// Message templates for the incompatible differences.
pub(crate) fn check(original: &ProtoModel, update: &ProtoModel) -> Vec<String> {
    diff(original, update).iter().filter(|d| !COMPATIBLE.contains(&d.kind)).map(Difference::template).collect()
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

    fn add_at(&mut self, segments: &[String], kind: &'static str) {
        let n = self.path.len();
        self.path.extend(segments.iter().cloned());
        self.add(kind);
        self.path.truncate(n);
    }

    fn compatible(&self) -> bool {
        self.diffs.iter().all(|d| COMPATIBLE.contains(&d.kind))
    }
}

#[derive(PartialEq, Eq, Debug, Clone, Copy)]
enum Kind {
    Scalar,
    Map,
    Message,
}

fn kind(ty: &FieldType) -> Kind {
    match ty {
        FieldType::Scalar(_) | FieldType::Enum(_) => Kind::Scalar,
        FieldType::Map(..) => Kind::Map,
        FieldType::Message(_) => Kind::Message,
    }
}

fn scalar_kind(ty: &FieldType) -> &'static str {
    match ty {
        FieldType::Enum(_) => "GENERAL_NUMBER",
        FieldType::Scalar(s) => match *s {
            "int32" | "int64" | "uint32" | "uint64" | "bool" => "GENERAL_NUMBER",
            "sint32" | "sint64" => "SIGNED_NUMBER",
            "string" | "bytes" => "STRING_OR_BYTES",
            "fixed32" | "sfixed32" => "FIXED32",
            "fixed64" | "sfixed64" => "FIXED64",
            "float" => "FLOAT",
            "double" => "DOUBLE",
            _ => "ANY",
        },
        _ => "ANY",
    }
}

struct Shared<'a> {
    original: &'a ProtoModel,
    update: &'a ProtoModel,
    visited: HashSet<(String, String)>,
}

type Types<'a> = (&'a [MessageAst], &'a [EnumAst]);

impl<'a> Shared<'a> {
    fn compare_types(&mut self, ctx: &mut Ctx, original: Types<'a>, update: Types<'a>) {
        let mut names: Vec<&str> = original.0.iter().map(|m| m.name.as_str()).collect();
        names.extend(update.0.iter().map(|m| m.name.as_str()).filter(|n| !original.0.iter().any(|m| m.name == *n)));
        for name in names {
            ctx.path.push(name.to_string());
            let o = original.0.iter().position(|m| m.name == name);
            let u = update.0.iter().position(|m| m.name == name);
            match (o, u) {
                (Some(_), None) => ctx.add("MESSAGE_REMOVED"),
                (None, Some(_)) => ctx.add("MESSAGE_ADDED"),
                (Some(i), Some(j)) => {
                    self.compare_message(ctx, &original.0[i], &update.0[j]);
                    if i != j {
                        ctx.add("MESSAGE_MOVED");
                    }
                }
                (None, None) => {}
            }
            ctx.path.pop();
        }
        let mut names: Vec<&str> = original.1.iter().map(|e| e.name.as_str()).collect();
        names.extend(update.1.iter().map(|e| e.name.as_str()).filter(|n| !original.1.iter().any(|e| e.name == *n)));
        for name in names {
            ctx.path.push(name.to_string());
            let o = original.1.iter().find(|e| e.name == name);
            let u = update.1.iter().find(|e| e.name == name);
            match (o, u) {
                (Some(_), None) => ctx.add("ENUM_REMOVED"),
                (None, Some(_)) => ctx.add("ENUM_ADDED"),
                (Some(o), Some(u)) => {
                    let mut numbers: Vec<i32> = o.values.iter().map(|v| v.1).collect();
                    numbers.extend(u.values.iter().map(|v| v.1).filter(|n| !o.values.iter().any(|v| v.1 == *n)));
                    for n in numbers {
                        let ov = o.values.iter().find(|v| v.1 == n);
                        let uv = u.values.iter().find(|v| v.1 == n);
                        let segment = [n.to_string()];
                        match (ov, uv) {
                            (Some(_), None) => ctx.add_at(&segment, "ENUM_CONST_REMOVED"),
                            (None, Some(_)) => ctx.add_at(&segment, "ENUM_CONST_ADDED"),
                            (Some(a), Some(b)) if a.0 != b.0 => ctx.add_at(&segment, "ENUM_CONST_CHANGED"),
                            _ => {}
                        }
                    }
                }
                (None, None) => {}
            }
            ctx.path.pop();
        }
    }

    fn compare_message(&mut self, ctx: &mut Ctx, original: &'a MessageAst, update: &'a MessageAst) {
        let key = (original.full_name.clone(), update.full_name.clone());
        if self.visited.insert(key) {
            self.compare_fields(ctx, original, update);
        }
        self.compare_types(ctx, (&original.messages, &original.enums), (&update.messages, &update.enums));
    }

    fn compare_fields(&mut self, ctx: &mut Ctx, original: &'a MessageAst, update: &'a MessageAst) {
        struct Indexed<'m> {
            field: &'m FieldAst,
            oneof: Option<&'m str>,
        }
        let index = |m: &'a MessageAst| -> Vec<Indexed<'a>> {
            let mut out: Vec<Indexed<'a>> = m.fields.iter().map(|f| Indexed { field: f, oneof: None }).collect();
            for o in &m.oneofs {
                out.extend(o.fields.iter().map(|f| Indexed { field: f, oneof: Some(o.name.as_str()) }));
            }
            out
        };
        let (ofields, ufields) = (index(original), index(update));
        let find = |list: &[Indexed<'a>], tag: i32| list.iter().position(|x| x.field.number == tag);
        let oneof_names = |m: &'a MessageAst| -> Vec<&'a str> { m.oneofs.iter().map(|o| o.name.as_str()).collect() };
        let (ooneofs, uoneofs) = (oneof_names(original), oneof_names(update));
        // Oneofs removed with none of their members surviving anywhere.
        let deleted: Vec<&str> = original
            .oneofs
            .iter()
            .filter(|o| !uoneofs.contains(&o.name.as_str()))
            .filter(|o| o.fields.iter().all(|f| find(&ufields, f.number).is_none()))
            .map(|o| o.name.as_str())
            .collect();
        // Fields that were independent before and are now in one oneof.
        for o in &update.oneofs {
            let mut groups: Vec<String> = Vec::new();
            let mut moved_in = 0;
            for f in &o.fields {
                if let Some(i) = find(&ofields, f.number) {
                    let group = match ofields[i].oneof {
                        Some(name) => format!("oneof:{name}"),
                        None => {
                            moved_in += 1;
                            format!("field:{}", f.number)
                        }
                    };
                    if !groups.contains(&group) {
                        groups.push(group);
                    }
                }
            }
            if groups.len() > 1 {
                let kind =
                    if moved_in > 1 { "MULTIPLE_FIELDS_MOVED_TO_ONEOF" } else { "FIELD_MOVED_TO_EXISTING_ONEOF" };
                ctx.add_at(std::slice::from_ref(&o.name), kind);
            }
        }
        let mut all: Vec<&str> = ooneofs.iter().chain(uoneofs.iter()).copied().collect();
        all.sort();
        all.dedup();
        for name in all {
            if !uoneofs.contains(&name) {
                ctx.add_at(&[name.to_string()], "ONEOF_REMOVED");
            } else if !ooneofs.contains(&name) {
                ctx.add_at(&[name.to_string()], "ONEOF_ADDED");
            }
        }
        let mut tags: Vec<i32> = ofields.iter().chain(ufields.iter()).map(|x| x.field.number).collect();
        tags.sort_unstable();
        tags.dedup();
        for tag in tags {
            let o = find(&ofields, tag).map(|i| &ofields[i]);
            let u = find(&ufields, tag).map(|i| &ufields[i]);
            match (o, u) {
                (Some(o), None) => match o.oneof {
                    Some(name) if !deleted.contains(&name) => {
                        ctx.add_at(&[name.to_string(), tag.to_string()], "ONEOF_FIELD_REMOVED")
                    }
                    Some(_) => {}
                    None => ctx.add_at(
                        &[tag.to_string()],
                        if o.field.label == Some("required") { "REQUIRED_FIELD_REMOVED" } else { "FIELD_REMOVED" },
                    ),
                },
                (None, Some(u)) => match u.oneof {
                    Some(name) => ctx.add_at(&[name.to_string(), tag.to_string()], "ONEOF_FIELD_ADDED"),
                    None => ctx.add_at(
                        &[tag.to_string()],
                        if u.field.label == Some("required") { "REQUIRED_FIELD_ADDED" } else { "FIELD_ADDED" },
                    ),
                },
                (Some(o), Some(u)) => {
                    if o.oneof.is_some() && u.oneof.is_none() {
                        ctx.add_at(&[tag.to_string()], "ONEOF_FIELD_MOVED_TO_TOP_LEVEL");
                    }
                    let n = ctx.path.len();
                    if let Some(name) = u.oneof {
                        ctx.path.push(name.to_string());
                    }
                    ctx.path.push(tag.to_string());
                    if o.field.name != u.field.name {
                        ctx.add("FIELD_NAME_CHANGED");
                    }
                    self.compare_labels_and_types(ctx, o.field.label, u.field.label, &o.field.ty, &u.field.ty);
                    ctx.path.truncate(n);
                }
                (None, None) => {}
            }
        }
    }

    fn compare_labels_and_types(
        &mut self,
        ctx: &mut Ctx,
        olabel: Option<&str>,
        ulabel: Option<&str>,
        oty: &FieldType,
        uty: &FieldType,
    ) {
        if kind(oty) != kind(uty) {
            ctx.add("FIELD_KIND_CHANGED");
            return;
        }
        match (oty, uty) {
            (FieldType::Map(ok, ov), FieldType::Map(uk, uv)) => {
                self.compare_labels_and_types(ctx, None, None, ok, uk);
                self.compare_labels_and_types(ctx, None, None, ov, uv);
            }
            (FieldType::Message(o), FieldType::Message(u)) => self.compare_message_types(ctx, o, u),
            _ => {
                let (ok, uk) = (scalar_kind(oty), scalar_kind(uty));
                if ok != uk {
                    ctx.add("FIELD_SCALAR_KIND_CHANGED");
                } else if let (Some(a), Some(b)) = (olabel, ulabel)
                    && a != b
                {
                    if ok == "STRING_OR_BYTES" {
                        ctx.add("FIELD_STRING_OR_BYTES_LABEL_CHANGED");
                    } else if ok != "ANY" {
                        ctx.add("FIELD_NUMERIC_LABEL_CHANGED");
                    }
                }
            }
        }
    }

    fn compare_message_types(&mut self, ctx: &mut Ctx, original: &str, update: &str) {
        let (
            Some(TypeInfo::Message { ast: oast, package: opkg, reference: oref }),
            Some(TypeInfo::Message { ast: uast, package: upkg, reference: uref }),
        ) = (self.original.types.get(original), self.update.types.get(update))
        else {
            if original != update {
                ctx.add("FIELD_NAMED_TYPE_CHANGED");
            }
            return;
        };
        let local = |full: &str, package: &str| -> String {
            match full.strip_prefix(&format!("{package}.")) {
                Some(rest) if !package.is_empty() => rest.to_string(),
                _ => full.to_string(),
            }
        };
        let (olocal, ulocal) = (local(original, opkg), local(update, upkg));
        if olocal != ulocal {
            ctx.add("FIELD_NAMED_TYPE_CHANGED");
            return;
        }
        let same_reference = matches!((oref, uref), (Some(a), Some(b)) if a == b);
        if same_reference {
            return;
        }
        let mut sub = Ctx { path: olocal.split('.').map(str::to_string).collect(), diffs: Vec::new() };
        let key = (oast.full_name.clone(), uast.full_name.clone());
        if self.visited.insert(key) {
            self.compare_fields(&mut sub, oast, uast);
        }
        let compatible = sub.compatible();
        ctx.diffs.extend(sub.diffs);
        if !compatible {
            ctx.add("FIELD_NAMED_TYPE_CHANGED");
        }
    }
}
