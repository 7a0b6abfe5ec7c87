//! Avro datums from Avro's JSON encoding: what a REST client sends as the
//! `data` of an AVRO key or value, turned into the binary datum a Kafka
//! Avro deserializer reads.
//!
//! The JSON encoding is Avro's own (the Java `JsonDecoder`'s input): a union
//! value is `null` or `{"<branch name>": value}` (primitive name, `array`,
//! `map`, or a named type's full name); `bytes` and `fixed` are strings whose
//! characters are the byte values (U+0000 to U+00FF); `float` and `double`
//! also take `"NaN"`, `"Infinity"` and `"-Infinity"`. A record field missing
//! from the data takes its default, which is written in the default-value
//! form (a union's default belongs to its first branch, unwrapped). Logical
//! types are written as their underlying type. Fields the schema does not
//! have are ignored, as the Java decoder skips them.

use serde_json::Value;

use crate::avro::{AvroModel, Node, NodeId, Primitive};

/// Deepest nesting of schema and data walked.
const MAX_DEPTH: usize = 256;

/// How a value is written in the JSON being read.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Form {
    /// Avro's JSON encoding (unions wrapped).
    Json,
    /// A field default (unions take their first branch, unwrapped).
    Default,
}

/// Encodes `data` (Avro JSON encoding) as a binary datum of `model`'s root schema.
pub(crate) fn encode(model: &AvroModel, data: &Value) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    write(model, model.root, data, Form::Json, "", 0, &mut out)?;
    Ok(out)
}

fn write_long(v: i64, out: &mut Vec<u8>) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        out.push((z as u8) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

fn write_bytes(b: &[u8], out: &mut Vec<u8>) {
    write_long(b.len() as i64, out);
    out.extend_from_slice(b);
}

fn at(path: &str) -> String {
    if path.is_empty() { "the datum".to_string() } else { format!("field {path}") }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A string whose characters are byte values, as Avro's JSON encoding writes bytes and fixed.
fn latin1(s: &str, path: &str) -> Result<Vec<u8>, String> {
    s.chars()
        .map(|c| u8::try_from(u32::from(c)).map_err(|_| format!("{}: {c:?} is not a byte (U+0000..U+00FF)", at(path))))
        .collect()
}

fn float(v: &Value, path: &str) -> Result<f64, String> {
    match v {
        Value::Number(n) => n.as_f64().ok_or_else(|| format!("{}: {n} is not a number Avro can hold", at(path))),
        Value::String(s) if s == "NaN" => Ok(f64::NAN),
        Value::String(s) if s == "Infinity" => Ok(f64::INFINITY),
        Value::String(s) if s == "-Infinity" => Ok(f64::NEG_INFINITY),
        other => Err(format!("{}: expected a number, got {}", at(path), kind(other))),
    }
}

/// The name a union branch is selected by in Avro's JSON encoding.
fn branch_name(model: &AvroModel, id: NodeId) -> String {
    match model.node(id) {
        Node::Primitive { kind, .. } => kind.name().to_string(),
        Node::Array { .. } => "array".to_string(),
        Node::Map { .. } => "map".to_string(),
        Node::Union(_) => "union".to_string(),
        named => named.name().map(|n| n.full()).unwrap_or_default(),
    }
}

fn write(
    model: &AvroModel,
    id: NodeId,
    v: &Value,
    form: Form,
    path: &str,
    depth: usize,
    out: &mut Vec<u8>,
) -> Result<(), String> {
    if depth > MAX_DEPTH {
        return Err(format!("{}: nested deeper than {MAX_DEPTH} levels", at(path)));
    }
    let expected = |what: &str| format!("{}: expected {what}, got {}", at(path), kind(v));
    match model.node(id) {
        Node::Primitive { kind: p, .. } => match (p, v) {
            (Primitive::Null, Value::Null) => {}
            (Primitive::Null, _) => return Err(expected("null")),
            (Primitive::Boolean, Value::Bool(b)) => out.push(u8::from(*b)),
            (Primitive::Boolean, _) => return Err(expected("a boolean")),
            (Primitive::Int, _) => {
                let n = v
                    .as_i64()
                    .and_then(|n| i32::try_from(n).ok())
                    .ok_or_else(|| expected("an int (32-bit integer)"))?;
                write_long(i64::from(n), out);
            }
            (Primitive::Long, _) => write_long(v.as_i64().ok_or_else(|| expected("a long (64-bit integer)"))?, out),
            (Primitive::Float, _) => out.extend_from_slice(&(float(v, path)? as f32).to_le_bytes()),
            (Primitive::Double, _) => out.extend_from_slice(&float(v, path)?.to_le_bytes()),
            (Primitive::Bytes, Value::String(s)) => write_bytes(&latin1(s, path)?, out),
            (Primitive::Bytes, _) => return Err(expected("a string of byte values")),
            (Primitive::String, Value::String(s)) => write_bytes(s.as_bytes(), out),
            (Primitive::String, _) => return Err(expected("a string")),
        },
        Node::Record { fields, name, .. } => {
            let Value::Object(members) = v else {
                return Err(expected(&format!("an object (record {})", name.full())));
            };
            for f in fields {
                let child = if path.is_empty() { f.name.clone() } else { format!("{path}.{}", f.name) };
                match (members.get(&f.name), &f.default) {
                    (Some(value), _) => write(model, f.ty, value, form, &child, depth + 1, out)?,
                    (None, Some(default)) => {
                        write(model, f.ty, &default.to_serde(), Form::Default, &child, depth + 1, out)?
                    }
                    (None, None) => return Err(format!("{}: missing, and it has no default", at(&child))),
                }
            }
        }
        Node::Enum { symbols, name, .. } => {
            let Value::String(s) = v else {
                return Err(expected(&format!("a symbol of enum {}", name.full())));
            };
            let index = symbols
                .iter()
                .position(|sym| sym == s)
                .ok_or_else(|| format!("{}: {s:?} is not a symbol of enum {}", at(path), name.full()))?;
            write_long(index as i64, out);
        }
        Node::Fixed { size, name, .. } => {
            let Value::String(s) = v else {
                return Err(expected(&format!("a string of {size} byte values (fixed {})", name.full())));
            };
            let bytes = latin1(s, path)?;
            if bytes.len() as u64 != *size {
                return Err(format!("{}: fixed {} holds {size} bytes, got {}", at(path), name.full(), bytes.len()));
            }
            out.extend_from_slice(&bytes);
        }
        Node::Array { items, .. } => {
            let Value::Array(values) = v else {
                return Err(expected("an array"));
            };
            if !values.is_empty() {
                write_long(values.len() as i64, out);
                for (i, item) in values.iter().enumerate() {
                    write(model, *items, item, form, &format!("{path}[{i}]"), depth + 1, out)?;
                }
            }
            write_long(0, out);
        }
        Node::Map { values: value_type, .. } => {
            let Value::Object(members) = v else {
                return Err(expected("an object (map)"));
            };
            if !members.is_empty() {
                write_long(members.len() as i64, out);
                for (k, item) in members {
                    write_bytes(k.as_bytes(), out);
                    write(model, *value_type, item, form, &format!("{path}[{k:?}]"), depth + 1, out)?;
                }
            }
            write_long(0, out);
        }
        Node::Union(branches) => {
            let (index, inner, inner_form) = match (form, v) {
                (Form::Default, _) => (0, v, Form::Default),
                (Form::Json, Value::Null) => {
                    let i = branches
                        .iter()
                        .position(|b| matches!(model.node(*b), Node::Primitive { kind: Primitive::Null, .. }))
                        .ok_or_else(|| format!("{}: null is not a branch of this union", at(path)))?;
                    (i, v, Form::Json)
                }
                (Form::Json, Value::Object(members)) if members.len() == 1 => {
                    let (label, inner) = members.iter().next().ok_or_else(|| expected("a union value"))?;
                    let i = branches.iter().position(|b| branch_name(model, *b) == *label).ok_or_else(|| {
                        let names: Vec<String> = branches.iter().map(|b| branch_name(model, *b)).collect();
                        format!("{}: {label:?} is not a branch of this union ({})", at(path), names.join(", "))
                    })?;
                    (i, inner, Form::Json)
                }
                _ => {
                    let names: Vec<String> = branches.iter().map(|b| branch_name(model, *b)).collect();
                    return Err(format!(
                        "{}: a union value is null or {{\"<branch>\": value}} with one of {}; got {}",
                        at(path),
                        names.join(", "),
                        kind(v)
                    ));
                }
            };
            let Some(branch) = branches.get(index) else {
                return Err(format!("{}: the union has no branches", at(path)));
            };
            write_long(index as i64, out);
            write(model, *branch, inner, inner_form, path, depth + 1, out)?;
        }
    }
    Ok(())
}

/// Decodes a binary datum of `model`'s root schema into Avro's JSON encoding
/// (the inverse of [`encode`]): unions wrapped in their branch name, bytes
/// and fixed as strings of byte values, NaN and infinities as strings.
pub(crate) fn decode(model: &AvroModel, bytes: &[u8]) -> Result<Value, String> {
    // Items that take bytes are bounded by the bytes; nulls and empty
    // records take none, so the datum as a whole gets a million of those.
    let mut reader = Reader { bytes, pos: 0, items_left: bytes.len().saturating_add(MAX_EMPTY_ITEMS) };
    let value = read(model, model.root, &mut reader, 0)?;
    if reader.pos != bytes.len() {
        return Err(format!("{} bytes left after the datum", bytes.len() - reader.pos));
    }
    Ok(value)
}

/// How many array and map items that take no bytes (nulls, empty records) one datum may hold.
const MAX_EMPTY_ITEMS: usize = 1_000_000;

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    /// Array and map items the rest of the datum may still hold.
    items_left: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], String> {
        let end = self.pos.checked_add(n).filter(|e| *e <= self.bytes.len()).ok_or("the datum ends early")?;
        let out = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn long(&mut self) -> Result<i64, String> {
        let mut z: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = self.take(1)?[0];
            z |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok((z >> 1) as i64 ^ -((z & 1) as i64));
            }
        }
        Err("a varint is longer than 10 bytes".to_string())
    }

    /// A length-prefixed byte string; the length is checked against what is left.
    fn sized(&mut self) -> Result<&[u8], String> {
        let n = self.long()?;
        let n = usize::try_from(n).map_err(|_| format!("negative length {n}"))?;
        self.take(n)
    }
}

fn number_or_name(v: f64) -> Value {
    if v.is_nan() {
        Value::String("NaN".into())
    } else if v.is_infinite() {
        Value::String(if v > 0.0 { "Infinity" } else { "-Infinity" }.into())
    } else {
        serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number)
    }
}

/// Items of an array or map block sequence: counts until 0; a negative count is followed by a byte size.
fn block_count(r: &mut Reader<'_>) -> Result<usize, String> {
    let count = r.long()?;
    if count < 0 {
        r.long()?;
    }
    let n = usize::try_from(count.unsigned_abs()).map_err(|_| "a block count is too large".to_string())?;
    r.items_left =
        r.items_left.checked_sub(n).ok_or_else(|| format!("a block claims {n} items, more than the datum can hold"))?;
    Ok(n)
}

fn read(model: &AvroModel, id: NodeId, r: &mut Reader<'_>, depth: usize) -> Result<Value, String> {
    if depth > MAX_DEPTH {
        return Err(format!("nested deeper than {MAX_DEPTH} levels"));
    }
    Ok(match model.node(id) {
        Node::Primitive { kind, .. } => match kind {
            Primitive::Null => Value::Null,
            Primitive::Boolean => Value::Bool(r.take(1)?[0] != 0),
            Primitive::Int | Primitive::Long => Value::from(r.long()?),
            Primitive::Float => {
                let b = r.take(4)?;
                number_or_name(f64::from(f32::from_le_bytes([b[0], b[1], b[2], b[3]])))
            }
            Primitive::Double => {
                let b = r.take(8)?;
                let mut a = [0u8; 8];
                a.copy_from_slice(b);
                number_or_name(f64::from_le_bytes(a))
            }
            Primitive::Bytes => Value::String(r.sized()?.iter().map(|b| char::from(*b)).collect()),
            Primitive::String => {
                Value::String(String::from_utf8(r.sized()?.to_vec()).map_err(|_| "a string is not UTF-8".to_string())?)
            }
        },
        Node::Record { fields, .. } => {
            let mut out = serde_json::Map::new();
            for f in fields {
                out.insert(f.name.clone(), read(model, f.ty, r, depth + 1)?);
            }
            Value::Object(out)
        }
        Node::Enum { symbols, .. } => {
            let i = r.long()?;
            let symbol = usize::try_from(i).ok().and_then(|i| symbols.get(i));
            Value::String(symbol.ok_or_else(|| format!("enum index {i} is out of range"))?.clone())
        }
        Node::Fixed { size, .. } => {
            let n = usize::try_from(*size).map_err(|_| "fixed size too large".to_string())?;
            Value::String(r.take(n)?.iter().map(|b| char::from(*b)).collect())
        }
        Node::Array { items, .. } => {
            let mut out = Vec::new();
            loop {
                let n = block_count(r)?;
                if n == 0 {
                    break;
                }
                for _ in 0..n {
                    out.push(read(model, *items, r, depth + 1)?);
                }
            }
            Value::Array(out)
        }
        Node::Map { values, .. } => {
            let mut out = serde_json::Map::new();
            loop {
                let n = block_count(r)?;
                if n == 0 {
                    break;
                }
                for _ in 0..n {
                    let key = String::from_utf8(r.sized()?.to_vec()).map_err(|_| "a map key is not UTF-8")?;
                    out.insert(key, read(model, *values, r, depth + 1)?);
                }
            }
            Value::Object(out)
        }
        Node::Union(branches) => {
            let i = r.long()?;
            let branch = usize::try_from(i)
                .ok()
                .and_then(|i| branches.get(i))
                .copied()
                .ok_or_else(|| format!("union index {i} is out of range"))?;
            let inner = read(model, branch, r, depth + 1)?;
            if matches!(model.node(branch), Node::Primitive { kind: Primitive::Null, .. }) {
                Value::Null
            } else {
                let mut wrapped = serde_json::Map::new();
                wrapped.insert(branch_name(model, branch), inner);
                Value::Object(wrapped)
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use crate::{NoReferences, ParseOptions, SchemaSource, SchemaType, parse};

    fn write_long(v: i64, out: &mut Vec<u8>) {
        super::write_long(v, out);
    }

    #[test]
    fn items_that_take_no_bytes_are_bounded_across_blocks() {
        let source = SchemaSource {
            schema_type: SchemaType::Avro,
            schema: r#"{"type":"array","items":"null"}"#.to_string(),
            references: Vec::new(),
        };
        let schema = parse(&source, &NoReferences, &ParseOptions::default()).expect("valid schema");
        // Three nulls in one block decode.
        let mut small = Vec::new();
        write_long(3, &mut small);
        write_long(0, &mut small);
        assert_eq!(schema.avro_datum_to_json(&small).expect("avro"), Ok(serde_json::json!([null, null, null])));
        // A thousand blocks of 900,000 nulls each would be 900 million values
        // from 4 KB: refused once the datum's budget runs out.
        let mut huge = Vec::new();
        for _ in 0..1000 {
            write_long(900_000, &mut huge);
        }
        write_long(0, &mut huge);
        let err = schema.avro_datum_to_json(&huge).expect("avro").expect_err("too many items");
        assert!(err.contains("more than the datum can hold"), "{err}");
        // A negative count (with a byte size) is counted the same way.
        let mut negative = Vec::new();
        write_long(-(i64::MAX), &mut negative);
        write_long(0, &mut negative);
        assert!(schema.avro_datum_to_json(&negative).expect("avro").is_err());
    }
}
