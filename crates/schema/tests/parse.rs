//! Parsing through the public API: canonical text, identity, references and limits.

use std::collections::HashMap;

use tributary_schema::{
    NoReferences, ParseOptions, ParsedSchema, ReferenceResolver, SchemaError, SchemaReference, SchemaSource,
    SchemaType, parse,
};

fn source(schema_type: SchemaType, text: &str, references: Vec<SchemaReference>) -> SchemaSource {
    SchemaSource { schema_type, schema: text.to_string(), references }
}

fn reference(name: &str, subject: &str, version: i32) -> SchemaReference {
    SchemaReference { name: name.into(), subject: subject.into(), version }
}

/// Stored schemas by (subject, version).
#[derive(Default)]
struct Store(HashMap<(String, i32), SchemaSource>);

impl Store {
    fn put(&mut self, subject: &str, version: i32, source: SchemaSource) {
        self.0.insert((subject.to_string(), version), source);
    }
}

impl ReferenceResolver for Store {
    fn resolve(&self, r: &SchemaReference) -> Option<SchemaSource> {
        self.0.get(&(r.subject.clone(), r.version)).cloned()
    }
}

fn ok(s: &SchemaSource, resolver: &dyn ReferenceResolver) -> ParsedSchema {
    match parse(s, resolver, &ParseOptions::default()) {
        Ok(p) => p,
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn avro_canonical_text_is_compact_and_identity_follows_it() {
    let pretty = "{\n  \"type\": \"record\",\n  \"name\": \"User\",\n  \"namespace\": \"acme\",\n  \"fields\": [ {\"name\": \"id\", \"type\": \"long\"} ]\n}";
    let a = ok(&source(SchemaType::Avro, pretty, vec![]), &NoReferences);
    assert_eq!(
        a.canonical(),
        r#"{"type":"record","name":"User","namespace":"acme","fields":[{"name":"id","type":"long"}]}"#
    );
    assert_eq!(a.name().as_deref(), Some("acme.User"));
    let b = ok(&source(SchemaType::Avro, a.canonical(), vec![]), &NoReferences);
    assert!(a.is_same(&b));
    // Member order is significant without normalization and irrelevant with it.
    let reordered = r#"{"name":"User","type":"record","fields":[{"type":"long","name":"id"}],"namespace":"acme"}"#;
    let c = ok(&source(SchemaType::Avro, reordered, vec![]), &NoReferences);
    assert!(a.is_same(&c), "Java's toString fixes the order of reserved attributes");
    let with_prop =
        r#"{"type":"record","name":"User","namespace":"acme","fields":[{"name":"id","type":"long"}],"z":1,"y":2}"#;
    let other_order =
        r#"{"type":"record","name":"User","namespace":"acme","fields":[{"name":"id","type":"long"}],"y":2,"z":1}"#;
    let d = ok(&source(SchemaType::Avro, with_prop, vec![]), &NoReferences);
    let e = ok(&source(SchemaType::Avro, other_order, vec![]), &NoReferences);
    assert!(!d.is_same(&e));
    let norm = ParseOptions::normalized(true);
    let dn = parse(&source(SchemaType::Avro, with_prop, vec![]), &NoReferences, &norm).expect("valid");
    let en = parse(&source(SchemaType::Avro, other_order, vec![]), &NoReferences, &norm).expect("valid");
    assert!(dn.is_same(&en));
    // A different type with the same text is a different schema.
    let j = ok(&source(SchemaType::Json, r#"{"type":"string"}"#, vec![]), &NoReferences);
    let j2 = ok(&source(SchemaType::Json, r#"{ "type" : "string" }"#, vec![]), &NoReferences);
    assert!(j.is_same(&j2));
    assert!(!j.is_same(&ok(&source(SchemaType::Avro, r#"{"type":"string"}"#, vec![]), &NoReferences)));
}

#[test]
fn references_resolve_through_the_resolver_only() {
    let mut store = Store::default();
    store.put(
        "customer",
        1,
        source(
            SchemaType::Avro,
            r#"{"type":"record","name":"Customer","namespace":"acme","fields":[{"name":"id","type":"long"}]}"#,
            vec![],
        ),
    );
    let order = source(
        SchemaType::Avro,
        r#"{"type":"record","name":"Order","namespace":"acme","fields":[{"name":"c","type":"Customer"}]}"#,
        vec![reference("acme.Customer", "customer", 1)],
    );
    let parsed = ok(&order, &store);
    assert_eq!(parsed.references(), &[reference("acme.Customer", "customer", 1)]);
    assert!(parsed.formatted("resolved").expect("resolved").contains(r#""name":"Customer""#));
    assert_eq!(parsed.formatted("").expect("default"), parsed.canonical());

    // Missing reference.
    let missing = source(SchemaType::Avro, order.schema.as_str(), vec![reference("acme.Customer", "customer", 2)]);
    assert!(matches!(parse(&missing, &store, &ParseOptions::default()), Err(SchemaError::UnknownReference(_))));
    // A name nobody defines.
    let undefined = source(SchemaType::Avro, order.schema.as_str(), vec![]);
    assert!(parse(&undefined, &NoReferences, &ParseOptions::default()).is_err());

    // Protobuf imports by reference name; well-known types need no reference.
    store.put(
        "common",
        1,
        source(
            SchemaType::Protobuf,
            "syntax = \"proto3\";\npackage common;\nmessage Money {\n  int64 units = 1;\n}\n",
            vec![],
        ),
    );
    let proto = source(
        SchemaType::Protobuf,
        "syntax = \"proto3\";\npackage shop;\nimport \"common.proto\";\nimport \"google/protobuf/timestamp.proto\";\nmessage Sale {\n  common.Money price = 1;\n  google.protobuf.Timestamp at = 2;\n}\n",
        vec![reference("common.proto", "common", 1)],
    );
    let p = ok(&proto, &store);
    assert_eq!(p.name().as_deref(), Some("shop.Sale"));
    assert!(!p.formatted("serialized").expect("serialized").is_empty());

    // JSON $ref to a reference name.
    store.put(
        "address",
        1,
        source(SchemaType::Json, r#"{"type":"object","properties":{"street":{"type":"string"}}}"#, vec![]),
    );
    let json = source(
        SchemaType::Json,
        r#"{"type":"object","title":"Person","properties":{"home":{"$ref":"address.json"}}}"#,
        vec![reference("address.json", "address", 1)],
    );
    assert_eq!(ok(&json, &store).name().as_deref(), Some("Person"));
}

#[test]
fn cyclic_references_are_rejected() {
    let mut store = Store::default();
    store.put(
        "a",
        1,
        source(
            SchemaType::Protobuf,
            "syntax = \"proto3\";\nimport \"b.proto\";\nmessage A {}\n",
            vec![reference("b.proto", "b", 1)],
        ),
    );
    store.put(
        "b",
        1,
        source(
            SchemaType::Protobuf,
            "syntax = \"proto3\";\nimport \"a.proto\";\nmessage B {}\n",
            vec![reference("a.proto", "a", 1)],
        ),
    );
    let root = source(
        SchemaType::Protobuf,
        "syntax = \"proto3\";\nimport \"a.proto\";\nmessage R {}\n",
        vec![reference("a.proto", "a", 1)],
    );
    assert!(matches!(parse(&root, &store, &ParseOptions::default()), Err(SchemaError::CyclicReference(_))));
}

#[test]
fn limits_are_enforced_before_parsing() {
    let deep_json = "[".repeat(100_000);
    for t in [SchemaType::Avro, SchemaType::Json] {
        let r = parse(&source(t, &deep_json, vec![]), &NoReferences, &ParseOptions::default());
        assert!(matches!(r, Err(SchemaError::TooDeep(_))), "{t}: {r:?}");
    }
    let deep_proto = format!("syntax = \"proto3\";\n{}", "message A {".repeat(20_000));
    let r = parse(&source(SchemaType::Protobuf, &deep_proto, vec![]), &NoReferences, &ParseOptions::default());
    assert!(matches!(r, Err(SchemaError::TooDeep(_))));

    let options = ParseOptions { max_schema_bytes: 64, ..ParseOptions::default() };
    let big = format!(r#"{{"type":"record","name":"R","doc":"{}","fields":[]}}"#, "x".repeat(100));
    assert_eq!(
        parse(&source(SchemaType::Avro, &big, vec![]), &NoReferences, &options).err(),
        Some(SchemaError::TooLarge(64))
    );

    let mut store = Store::default();
    store.put("a", 1, source(SchemaType::Avro, r#"{"type":"fixed","name":"A","size":1}"#, vec![]));
    store.put("b", 1, source(SchemaType::Avro, r#"{"type":"fixed","name":"B","size":1}"#, vec![]));
    let two = source(SchemaType::Avro, r#""string""#, vec![reference("A", "a", 1), reference("B", "b", 1)]);
    let options = ParseOptions { max_references: 1, ..ParseOptions::default() };
    assert!(matches!(parse(&two, &store, &options), Err(SchemaError::Invalid(_))));
    assert!(parse(&two, &store, &ParseOptions::default()).is_ok());
}

#[test]
fn bad_input_gives_errors_that_name_the_problem() {
    let cases = [
        (SchemaType::Avro, "{\"type\":\"record\""),
        (SchemaType::Avro, r#"{"type":"record","name":"R","fields":[{"name":"a","type":"nope"}]}"#),
        (SchemaType::Json, r#"{"type":"strng"}"#),
        (SchemaType::Protobuf, "syntax = \"proto3\"; message A { strin a = 1; }"),
        (SchemaType::Protobuf, "not a proto"),
    ];
    for (t, text) in cases {
        let err = parse(&source(t, text, vec![]), &NoReferences, &ParseOptions::default()).expect_err(text);
        assert!(err.to_string().len() > 10, "{err}");
    }
}

#[test]
fn avro_schema_is_available_for_serde() {
    let s = ok(
        &source(SchemaType::Avro, r#"{"type":"record","name":"R","fields":[{"name":"a","type":"int"}]}"#, vec![]),
        &NoReferences,
    );
    assert!(matches!(s.avro_schema(), Some(Ok(apache_avro::Schema::Record(_)))));
    let j = ok(&source(SchemaType::Json, r#"{"type":"string"}"#, vec![]), &NoReferences);
    assert!(j.avro_schema().is_none());
}
