//! Compatibility checking: the level logic shared by all formats, and one module per format.
//!
//! Each format answers one question, "can `reader` read what `writer` wrote" (Confluent's
//! `isBackwardCompatible(previous)`, with the new schema as reader), as a list of message
//! templates with two `%s` slots. The level decides which pairs are asked and which words fill
//! the slots: BACKWARD asks new-reads-old and fills "new", "old"; FORWARD asks old-reads-new and
//! fills "old", "new"; FULL asks both.

pub(crate) mod avro;
pub(crate) mod json;
pub(crate) mod protobuf;

use crate::{CompatibilityLevel, Model, ParsedSchema};

/// The message for a schema type change.
pub(crate) const DIFFERENT_SCHEMA_TYPE: &str = "Incompatible because of different schema type";

/// Longest old schema text quoted in a message.
const MAX_SCHEMA_SIZE_FOR_MESSAGE: usize = 10 * 1024;

/// Escapes text that goes into a template so that its `%` are not taken for slots.
pub(crate) fn esc(text: &str) -> String {
    text.replace('%', "%%")
}

/// Fills the two `%s` slots of a template, in order, and unescapes `%%`.
pub(crate) fn render(template: &str, first: &str, second: &str) -> String {
    let mut out = String::with_capacity(template.len() + 8);
    let mut slots = [first, second].into_iter();
    let mut rest = template;
    while let Some(i) = rest.find('%') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(tail) = after.strip_prefix('s') {
            out.push_str(slots.next().unwrap_or(""));
            rest = tail;
        } else if let Some(tail) = after.strip_prefix('%') {
            out.push('%');
            rest = tail;
        } else {
            out.push('%');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// Message templates saying why `reader` cannot read data written with `writer` (empty when it
/// can).
fn reader_writer(reader: &ParsedSchema, writer: &ParsedSchema) -> Vec<String> {
    match (reader.model(), writer.model()) {
        (Model::Avro(r), Model::Avro(w)) => avro::check(r, w),
        (Model::Json(r), Model::Json(w)) => json::check(w, r),
        (Model::Protobuf(r), Model::Protobuf(w)) => protobuf::check(w, r),
        _ => vec![DIFFERENT_SCHEMA_TYPE.to_string()],
    }
}

fn format_messages(
    templates: Vec<String>,
    existing: &ParsedSchema,
    first: &str,
    second: &str,
    append_schema: bool,
) -> Vec<String> {
    if templates.is_empty() {
        return templates;
    }
    let mut messages: Vec<String> = templates.iter().map(|t| render(t, first, second)).collect();
    if append_schema {
        if let Some(version) = existing.version() {
            messages.push(format!("{{oldSchemaVersion: {version}}}"));
        }
        let text = existing.canonical();
        if text.len() <= MAX_SCHEMA_SIZE_FOR_MESSAGE {
            messages.push(format!("{{oldSchema: '{text}'}}"));
        } else {
            let mut cut = MAX_SCHEMA_SIZE_FOR_MESSAGE;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            messages.push(format!("{{oldSchema: <truncated> '{}...'}}", &text[..cut]));
        }
    }
    messages
}

fn check_pair(level: CompatibilityLevel, new: &ParsedSchema, existing: &ParsedSchema) -> Vec<String> {
    if new.schema_type() != existing.schema_type() {
        return vec![DIFFERENT_SCHEMA_TYPE.to_string()];
    }
    match level {
        CompatibilityLevel::None => Vec::new(),
        CompatibilityLevel::Backward | CompatibilityLevel::BackwardTransitive => {
            format_messages(reader_writer(new, existing), existing, "new", "old", true)
        }
        CompatibilityLevel::Forward | CompatibilityLevel::ForwardTransitive => {
            format_messages(reader_writer(existing, new), existing, "old", "new", true)
        }
        CompatibilityLevel::Full | CompatibilityLevel::FullTransitive => {
            let mut messages = format_messages(reader_writer(existing, new), existing, "old", "new", false);
            messages.extend(format_messages(reader_writer(new, existing), existing, "new", "old", true));
            messages
        }
    }
}

/// Checks `new` against the previous versions of a subject (`previous` oldest first, deleted
/// versions left out) at `level`, and returns the incompatibility messages: empty means
/// compatible. Transitive levels check every previous version, newest first, and stop at the first
/// that fails; the others check only the latest.
pub fn check_compatibility(level: CompatibilityLevel, new: &ParsedSchema, previous: &[ParsedSchema]) -> Vec<String> {
    let transitive = matches!(
        level,
        CompatibilityLevel::BackwardTransitive
            | CompatibilityLevel::ForwardTransitive
            | CompatibilityLevel::FullTransitive
    );
    match level {
        CompatibilityLevel::None => Vec::new(),
        _ if transitive => {
            for existing in previous.iter().rev() {
                let messages = check_pair(level, new, existing);
                if !messages.is_empty() {
                    return messages;
                }
            }
            Vec::new()
        }
        _ => match previous.last() {
            Some(existing) => check_pair(level, new, existing),
            None => Vec::new(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_fills_slots_in_order() {
        assert_eq!(render("the %s schema vs the %s schema", "new", "old"), "the new schema vs the old schema");
        assert_eq!(render(&format!("path '{}' in %s", esc("/a%sb")), "new", "old"), "path '/a%sb' in new");
    }
}
