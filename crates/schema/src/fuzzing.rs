//! Entry points shared by the `schema_parse` and `schema_datum` fuzz targets
//! and their corpus replay tests.
//!
//! `schema_parse` input: `flags u8 | text ("\0" | referenced text)*`. Flags
//! bits 0-1 pick the type (0 and 3 Avro, 1 JSON Schema, 2 Protobuf), bit 2
//! normalizes, bit 3 makes the last referenced schema refer back to the
//! first (a cycle). Part *i* of the texts is the schema with subject `r{i}`,
//! version 1, referenced by the name `r{i}` (Avro), `r{i}.json` or
//! `r{i}.proto`; every part references all the parts after it.
//!
//! `schema_datum` input: `flags u8 | schema_len u16 BE | schema | payload`:
//! the payload (bytes after the serializer's 5-byte header) is decoded with
//! the schema, and encoded from JSON when it is JSON.
//!
//! Besides "no panic", the harnesses check promises the registry relies on:
//! a schema's canonical text parses to the same canonical text, a schema
//! is compatible with itself at every level, and an Avro datum that decodes
//! to JSON encodes back to a datum that decodes to the same JSON.

use crate::datum::{Codec, decode};
use crate::{
    CompatibilityLevel, ParseOptions, ParsedSchema, ReferenceResolver, SchemaReference, SchemaSource, SchemaType,
    check_compatibility, parse,
};

fn schema_type(flags: u8) -> SchemaType {
    match flags & 3 {
        1 => SchemaType::Json,
        2 => SchemaType::Protobuf,
        _ => SchemaType::Avro,
    }
}

fn reference_name(kind: SchemaType, i: usize) -> String {
    match kind {
        SchemaType::Avro => format!("r{i}"),
        SchemaType::Json => format!("r{i}.json"),
        SchemaType::Protobuf => format!("r{i}.proto"),
    }
}

/// The schemas of one `schema_parse` input, part 0 first.
struct Parts {
    kind: SchemaType,
    texts: Vec<String>,
    cycle: bool,
}

impl Parts {
    /// The source of part `i`, with its references.
    fn source(&self, i: usize) -> SchemaSource {
        let mut targets: Vec<usize> = (i + 1..self.texts.len()).collect();
        if self.cycle && i + 1 == self.texts.len() && i > 0 {
            targets.push(0);
        }
        SchemaSource {
            schema_type: self.kind,
            schema: self.texts[i].clone(),
            references: targets
                .into_iter()
                .map(|j| SchemaReference { name: reference_name(self.kind, j), subject: format!("r{j}"), version: 1 })
                .collect(),
        }
    }
}

impl ReferenceResolver for Parts {
    fn resolve(&self, reference: &SchemaReference) -> Option<SchemaSource> {
        let i: usize = reference.subject.strip_prefix('r')?.parse().ok()?;
        (reference.version == 1 && i < self.texts.len()).then(|| self.source(i))
    }
}

/// Parses `data` as in the module docs; see there for what is checked.
///
/// # Panics
/// When a parsed schema breaks one of the promises in the module docs.
pub fn schema_parse(data: &[u8]) {
    let Some((&flags, rest)) = data.split_first() else { return };
    let parts = Parts {
        kind: schema_type(flags),
        texts: rest.split(|&b| b == 0).map(|t| String::from_utf8_lossy(t).into_owned()).collect(),
        cycle: flags & 8 != 0,
    };
    let options = ParseOptions { normalize: flags & 4 != 0, ..ParseOptions::default() };
    let source = parts.source(0);
    let Ok(parsed) = parse(&source, &parts, &options) else { return };
    exercise(&parsed);
    // What the registry stores and hands back must read back as itself.
    let stored = SchemaSource { schema: parsed.canonical().to_string(), ..source };
    let again = match parse(&stored, &parts, &options) {
        Ok(p) => p,
        Err(e) => panic!("the canonical text of a valid schema is refused: {e}\n{}", parsed.canonical()),
    };
    assert_eq!(again.canonical(), parsed.canonical(), "canonical text is not stable");
    for level in CompatibilityLevel::ALL {
        let messages = check_compatibility(level, &parsed, std::slice::from_ref(&parsed));
        assert!(messages.is_empty(), "a schema is not {level} compatible with itself: {messages:?}");
    }
}

fn exercise(parsed: &ParsedSchema) {
    let _ = parsed.name();
    for format in ["resolved", "serialized", "ignore_extensions"] {
        let _ = parsed.formatted(format);
    }
    let _ = parsed.avro_schema();
}

/// Splits a `schema_datum` input into flags, schema text and payload.
pub fn split_datum_input(data: &[u8]) -> Option<(u8, String, &[u8])> {
    let (&flags, rest) = data.split_first()?;
    let len = usize::from(u16::from_be_bytes([*rest.first()?, *rest.get(1)?]));
    let rest = &rest[2..];
    let schema = rest.get(..len)?;
    Some((flags, String::from_utf8_lossy(schema).into_owned(), &rest[len..]))
}

/// Builds a `schema_datum` input, for seeds.
pub fn datum_input(kind: SchemaType, schema: &str, payload: &[u8]) -> Vec<u8> {
    let flags = match kind {
        SchemaType::Avro => 0,
        SchemaType::Json => 1,
        SchemaType::Protobuf => 2,
    };
    let mut out = vec![flags];
    out.extend_from_slice(&(schema.len() as u16).to_be_bytes());
    out.extend_from_slice(schema.as_bytes());
    out.extend_from_slice(payload);
    out
}

/// Decodes a payload with a schema (and encodes it from JSON when it is
/// JSON); see the module docs for what is checked.
///
/// # Panics
/// When an Avro datum's JSON does not encode back to the same JSON.
pub fn schema_datum(data: &[u8]) {
    let Some((flags, text, payload)) = split_datum_input(data) else { return };
    let source = SchemaSource { schema_type: schema_type(flags), schema: text, references: Vec::new() };
    let Ok(schema) = parse(&source, &crate::NoReferences, &ParseOptions::default()) else { return };
    let codec = Codec::new(&schema, None).ok();
    if let Ok(value) = decode(&schema, payload)
        && schema.schema_type() == SchemaType::Avro
        && let Some(codec) = &codec
    {
        let bytes = match codec.encode(&value) {
            Ok(b) => b,
            Err(e) => panic!("a decoded Avro datum does not encode: {e}\n{value}"),
        };
        assert_eq!(decode(&schema, &bytes).as_ref(), Ok(&value), "Avro datum round trip");
    }
    if let (Ok(json), Some(codec)) = (serde_json::from_slice::<serde_json::Value>(payload), &codec)
        && let Ok(bytes) = codec.encode(&json)
    {
        let _ = decode(&schema, &bytes);
    }
}
