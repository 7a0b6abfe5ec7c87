//! Avro datums from Avro's JSON encoding, checked by decoding them with the
//! `apache-avro` library (an independent reader) against the same schema.

use apache_avro::types::Value as Avro;
use serde_json::json;
use tributary_schema::{NoReferences, ParseOptions, ParsedSchema, SchemaSource, SchemaType, parse};

fn avro(text: &str) -> ParsedSchema {
    let source = SchemaSource { schema_type: SchemaType::Avro, schema: text.to_string(), references: vec![] };
    match parse(&source, &NoReferences, &ParseOptions::default()) {
        Ok(p) => p,
        Err(e) => panic!("{e}"),
    }
}

fn encode(schema: &ParsedSchema, data: serde_json::Value) -> Result<Vec<u8>, String> {
    schema.avro_datum_from_json(&data).expect("an Avro schema")
}

fn decode(schema: &ParsedSchema, bytes: &[u8]) -> Avro {
    let reader = schema.avro_schema().expect("Avro").expect("valid");
    let mut input = bytes;
    let datum_reader = apache_avro::reader::datum::GenericDatumReader::builder(&reader).build().expect("reader");
    let value = datum_reader.read_value(&mut input).expect("decodes");
    assert!(input.is_empty(), "{} bytes left over", input.len());
    value
}

const USER: &str = r#"{
  "type": "record", "name": "User", "namespace": "com.example",
  "fields": [
    {"name": "id", "type": "long"},
    {"name": "name", "type": "string"},
    {"name": "age", "type": ["null", "int"], "default": null},
    {"name": "score", "type": "double", "default": 1.5},
    {"name": "tags", "type": {"type": "array", "items": "string"}, "default": []},
    {"name": "attrs", "type": {"type": "map", "values": "long"}, "default": {}},
    {"name": "kind", "type": {"type": "enum", "name": "Kind", "symbols": ["A", "B"]}, "default": "A"},
    {"name": "hash", "type": {"type": "fixed", "name": "Hash", "size": 2}, "default": "\u0000\u0000"},
    {"name": "raw", "type": "bytes", "default": ""},
    {"name": "ratio", "type": "float", "default": 0},
    {"name": "ok", "type": "boolean", "default": true},
    {"name": "next", "type": ["null", "User"], "default": null},
    {"name": "when", "type": {"type": "long", "logicalType": "timestamp-millis"}, "default": 0}
  ]
}"#;

fn field<'a>(v: &'a Avro, name: &str) -> &'a Avro {
    match v {
        Avro::Record(fields) => &fields.iter().find(|(n, _)| n == name).expect(name).1,
        other => panic!("not a record: {other:?}"),
    }
}

#[test]
fn every_type_round_trips_through_an_independent_reader() {
    let s = avro(USER);
    let bytes = encode(
        &s,
        json!({
            "id": -7, "name": "Zoë", "age": {"int": 42}, "score": 2.25, "tags": ["x", "y"],
            "attrs": {"a": 1}, "kind": "B", "hash": "\u{ff}\u{1}", "raw": "\u{0}\u{e9}",
            "ratio": "NaN", "ok": false,
            "next": {"com.example.User": {"id": 1, "name": "inner"}},
            "when": 1714564800250i64
        }),
    )
    .expect("encodes");
    let v = decode(&s, &bytes);
    assert_eq!(field(&v, "id"), &Avro::Long(-7));
    assert_eq!(field(&v, "name"), &Avro::String("Zoë".into()));
    assert_eq!(field(&v, "age"), &Avro::Union(1, Box::new(Avro::Int(42))));
    assert_eq!(field(&v, "score"), &Avro::Double(2.25));
    assert_eq!(field(&v, "tags"), &Avro::Array(vec![Avro::String("x".into()), Avro::String("y".into())]));
    assert_eq!(field(&v, "kind"), &Avro::Enum(1, "B".into()));
    assert_eq!(field(&v, "hash"), &Avro::Fixed(2, vec![0xff, 0x01]));
    assert_eq!(field(&v, "raw"), &Avro::Bytes(vec![0x00, 0xe9]));
    assert!(matches!(field(&v, "ratio"), Avro::Float(f) if f.is_nan()));
    assert_eq!(field(&v, "ok"), &Avro::Boolean(false));
    assert_eq!(field(&v, "when"), &Avro::TimestampMillis(1714564800250));
    let Avro::Union(1, inner) = field(&v, "next") else { panic!("next: {:?}", field(&v, "next")) };
    assert_eq!(field(inner, "name"), &Avro::String("inner".into()));
    // The inner record's missing fields took their defaults.
    assert_eq!(field(inner, "age"), &Avro::Union(0, Box::new(Avro::Null)));
    assert_eq!(field(inner, "score"), &Avro::Double(1.5));
    assert_eq!(field(inner, "hash"), &Avro::Fixed(2, vec![0, 0]));
}

#[test]
fn wrong_data_is_refused_with_the_field_named() {
    let s = avro(USER);
    let cases = [
        (json!({"name": "n"}), "field id: missing"),
        (json!({"id": "1", "name": "n"}), "field id: expected a long"),
        (json!({"id": 1, "name": "n", "age": 3}), "field age: a union value"),
        (json!({"id": 1, "name": "n", "age": {"long": 3}}), "\"long\" is not a branch"),
        (json!({"id": 1, "name": "n", "kind": "C"}), "\"C\" is not a symbol"),
        (json!({"id": 1, "name": "n", "hash": "abc"}), "holds 2 bytes"),
        (json!({"id": 1, "name": "n", "raw": "€"}), "is not a byte"),
        (json!({"id": 1, "name": "n", "age": {"int": 3_000_000_000i64}}), "expected an int"),
        (json!([1]), "expected an object"),
    ];
    for (data, expected) in cases {
        let err = encode(&s, data.clone()).expect_err(&data.to_string());
        assert!(err.contains(expected), "{data}: {err}");
    }
}

#[test]
fn primitive_and_union_roots() {
    let s = avro(r#""string""#);
    assert_eq!(decode(&s, &encode(&s, json!("hi")).expect("ok")), Avro::String("hi".into()));
    let u = avro(r#"["null", "string", {"type": "array", "items": "int"}]"#);
    assert_eq!(decode(&u, &encode(&u, json!(null)).expect("ok")), Avro::Union(0, Box::new(Avro::Null)));
    assert_eq!(
        decode(&u, &encode(&u, json!({"array": [1, 2]})).expect("ok")),
        Avro::Union(2, Box::new(Avro::Array(vec![Avro::Int(1), Avro::Int(2)])))
    );
    let j = ParsedSchema::clone(&avro(r#""int""#));
    assert!(j.avro_datum_from_json(&json!(1)).is_some());
}

#[test]
fn decoding_gives_back_the_json_encoding() {
    let s = avro(USER);
    let data = json!({
        "id": 9, "name": "n", "age": {"int": 3}, "score": 1.5, "tags": ["a"], "attrs": {"k": 2},
        "kind": "B", "hash": "\u{0}\u{ff}", "raw": "\u{e9}", "ratio": "Infinity", "ok": true,
        "next": null, "when": 5
    });
    let bytes = encode(&s, data.clone()).expect("encodes");
    assert_eq!(s.avro_datum_to_json(&bytes).expect("Avro").expect("decodes"), data);
    // Truncated or padded datums are refused, never read past the end.
    assert!(s.avro_datum_to_json(&bytes[..bytes.len() - 1]).expect("Avro").is_err());
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(s.avro_datum_to_json(&longer).expect("Avro").is_err());
    // A huge length prefix is refused without allocating it.
    let string = avro(r#""string""#);
    assert!(string.avro_datum_to_json(&[0xfe, 0xff, 0xff, 0xff, 0x0f]).expect("Avro").is_err());
}
