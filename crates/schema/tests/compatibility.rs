//! Schema evolution cases with the verdicts of Confluent Schema Registry (from its documented
//! rules and its own test data), checked at BACKWARD, FORWARD and FULL.
//!
//! BACKWARD = the new schema reads data written with the old one; FORWARD = the old schema reads
//! data written with the new one; FULL = both. `None` means the case does not state that level.

use tributary_schema::{
    CompatibilityLevel, NoReferences, ParseOptions, ParsedSchema, SchemaSource, SchemaType, check_compatibility, parse,
};

struct Case {
    name: &'static str,
    old: &'static str,
    new: &'static str,
    backward: bool,
    forward: Option<bool>,
    full: Option<bool>,
}

const fn case(name: &'static str, old: &'static str, new: &'static str, b: bool, f: bool) -> Case {
    // FULL is compatible exactly when both directions are.
    Case { name, old, new, backward: b, forward: Some(f), full: Some(b && f) }
}

const fn backward_only(name: &'static str, old: &'static str, new: &'static str, b: bool) -> Case {
    Case { name, old, new, backward: b, forward: None, full: None }
}

fn schema(schema_type: SchemaType, text: &str) -> ParsedSchema {
    let source = SchemaSource { schema_type, schema: text.to_string(), references: vec![] };
    match parse(&source, &NoReferences, &ParseOptions::default()) {
        Ok(s) => s,
        Err(e) => panic!("schema does not parse: {e}\n{text}"),
    }
}

fn run(schema_type: SchemaType, cases: &[Case]) -> usize {
    let mut failures = Vec::new();
    for c in cases {
        let old = schema(schema_type, c.old);
        let new = schema(schema_type, c.new);
        let levels = [
            (CompatibilityLevel::Backward, Some(c.backward)),
            (CompatibilityLevel::Forward, c.forward),
            (CompatibilityLevel::Full, c.full),
        ];
        for (level, expected) in levels {
            let Some(expected) = expected else { continue };
            let messages = check_compatibility(level, &new, std::slice::from_ref(&old));
            if messages.is_empty() != expected {
                failures
                    .push(format!("{schema_type} '{}' at {level}: expected {expected}, messages {messages:?}", c.name));
            }
        }
    }
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
    cases.len()
}

const R_A: &str = r#"{"type":"record","name":"R","fields":[{"name":"a","type":"int"}]}"#;

const AVRO: &[Case] = &[
    case(
        "add field with default",
        R_A,
        r#"{"type":"record","name":"R","fields":[{"name":"a","type":"int"},{"name":"b","type":"string","default":"x"}]}"#,
        true,
        true,
    ),
    case(
        "add field without default",
        R_A,
        r#"{"type":"record","name":"R","fields":[{"name":"a","type":"int"},{"name":"b","type":"string"}]}"#,
        false,
        true,
    ),
    case(
        "remove field without default",
        r#"{"type":"record","name":"R","fields":[{"name":"a","type":"int"},{"name":"b","type":"string"}]}"#,
        R_A,
        true,
        false,
    ),
    case(
        "remove field with default",
        r#"{"type":"record","name":"R","fields":[{"name":"a","type":"int"},{"name":"b","type":"string","default":""}]}"#,
        R_A,
        true,
        true,
    ),
    case(
        "promote int to long",
        R_A,
        r#"{"type":"record","name":"R","fields":[{"name":"a","type":"long"}]}"#,
        true,
        false,
    ),
    case(
        "narrow long to int",
        r#"{"type":"record","name":"R","fields":[{"name":"a","type":"long"}]}"#,
        R_A,
        false,
        true,
    ),
    case(
        "promote int to double",
        R_A,
        r#"{"type":"record","name":"R","fields":[{"name":"a","type":"double"}]}"#,
        true,
        false,
    ),
    case(
        "promote float to double",
        r#"{"type":"record","name":"R","fields":[{"name":"a","type":"float"}]}"#,
        r#"{"type":"record","name":"R","fields":[{"name":"a","type":"double"}]}"#,
        true,
        false,
    ),
    case(
        "string to bytes both ways",
        r#"{"type":"record","name":"R","fields":[{"name":"a","type":"string"}]}"#,
        r#"{"type":"record","name":"R","fields":[{"name":"a","type":"bytes"}]}"#,
        true,
        true,
    ),
    case("int to string", R_A, r#"{"type":"record","name":"R","fields":[{"name":"a","type":"string"}]}"#, false, false),
    case(
        "enum symbol added",
        r#"{"type":"enum","name":"E","symbols":["A","B"]}"#,
        r#"{"type":"enum","name":"E","symbols":["A","B","C"]}"#,
        true,
        false,
    ),
    case(
        "enum symbol removed",
        r#"{"type":"enum","name":"E","symbols":["A","B","C"]}"#,
        r#"{"type":"enum","name":"E","symbols":["A","B"]}"#,
        false,
        true,
    ),
    case(
        "enum symbol added when the old enum has a default",
        r#"{"type":"enum","name":"E","symbols":["A","B"],"default":"A"}"#,
        r#"{"type":"enum","name":"E","symbols":["A","B","C"],"default":"A"}"#,
        true,
        true,
    ),
    case(
        "enum symbol removed when the new enum has a default",
        r#"{"type":"enum","name":"E","symbols":["A","B","C"]}"#,
        r#"{"type":"enum","name":"E","symbols":["A","B"],"default":"A"}"#,
        true,
        true,
    ),
    case(
        "union branch added",
        r#"{"type":"record","name":"R","fields":[{"name":"a","type":["null","string"],"default":null}]}"#,
        r#"{"type":"record","name":"R","fields":[{"name":"a","type":["null","string","int"],"default":null}]}"#,
        true,
        false,
    ),
    case(
        "union branch removed",
        r#"{"type":"record","name":"R","fields":[{"name":"a","type":["null","string","int"],"default":null}]}"#,
        r#"{"type":"record","name":"R","fields":[{"name":"a","type":["null","string"],"default":null}]}"#,
        false,
        true,
    ),
    case(
        "plain type made nullable",
        r#"{"type":"record","name":"R","fields":[{"name":"a","type":"string"}]}"#,
        r#"{"type":"record","name":"R","fields":[{"name":"a","type":["null","string"],"default":null}]}"#,
        true,
        false,
    ),
    case(
        "renamed field with an alias",
        R_A,
        r#"{"type":"record","name":"R","fields":[{"name":"b","type":"int","aliases":["a"]}]}"#,
        true,
        false,
    ),
    case(
        "renamed field without alias",
        R_A,
        r#"{"type":"record","name":"R","fields":[{"name":"b","type":"int"}]}"#,
        false,
        false,
    ),
    case(
        "fixed size changed",
        r#"{"type":"fixed","name":"F","size":4}"#,
        r#"{"type":"fixed","name":"F","size":8}"#,
        false,
        false,
    ),
    case("record renamed", R_A, r#"{"type":"record","name":"S","fields":[{"name":"a","type":"int"}]}"#, false, false),
    case(
        "record renamed with an alias",
        R_A,
        r#"{"type":"record","name":"S","aliases":["R"],"fields":[{"name":"a","type":"int"}]}"#,
        true,
        false,
    ),
    case(
        "array items promoted",
        r#"{"type":"array","items":"int"}"#,
        r#"{"type":"array","items":"long"}"#,
        true,
        false,
    ),
    case("map values changed", r#"{"type":"map","values":"string"}"#, r#"{"type":"map","values":"int"}"#, false, false),
    case(
        "doc and custom properties changed",
        R_A,
        r#"{"type":"record","name":"R","doc":"new doc","fields":[{"name":"a","type":"int","doc":"x","custom":1}]}"#,
        true,
        true,
    ),
    case(
        "nullable field with null default added",
        R_A,
        r#"{"type":"record","name":"R","fields":[{"name":"a","type":"int"},{"name":"n","type":["null","long"],"default":null}]}"#,
        true,
        true,
    ),
    case(
        "logical type added to the same underlying type",
        r#"{"type":"record","name":"R","fields":[{"name":"t","type":"long"}]}"#,
        r#"{"type":"record","name":"R","fields":[{"name":"t","type":{"type":"long","logicalType":"timestamp-millis"}}]}"#,
        true,
        true,
    ),
];

const PROTO_BASE: &str = "syntax = \"proto3\";\npackage test;\nmessage M {\n  string a = 1;\n  int32 n = 2;\n}\n";

const PROTOBUF: &[Case] = &[
    case(
        "field added",
        PROTO_BASE,
        "syntax = \"proto3\";\npackage test;\nmessage M {\n  string a = 1;\n  int32 n = 2;\n  bool b = 3;\n}\n",
        true,
        true,
    ),
    case(
        "field removed",
        PROTO_BASE,
        "syntax = \"proto3\";\npackage test;\nmessage M {\n  string a = 1;\n}\n",
        true,
        true,
    ),
    case(
        "field number changed",
        PROTO_BASE,
        "syntax = \"proto3\";\npackage test;\nmessage M {\n  string a = 5;\n  int32 n = 2;\n}\n",
        true,
        true,
    ),
    case(
        "field renamed",
        PROTO_BASE,
        "syntax = \"proto3\";\npackage test;\nmessage M {\n  string title = 1;\n  int32 n = 2;\n}\n",
        true,
        true,
    ),
    case(
        "int32 to int64 (same scalar kind)",
        PROTO_BASE,
        "syntax = \"proto3\";\npackage test;\nmessage M {\n  string a = 1;\n  int64 n = 2;\n}\n",
        true,
        true,
    ),
    case(
        "int32 to string (scalar kind changed)",
        PROTO_BASE,
        "syntax = \"proto3\";\npackage test;\nmessage M {\n  string a = 1;\n  string n = 2;\n}\n",
        false,
        false,
    ),
    case(
        "string to bytes",
        PROTO_BASE,
        "syntax = \"proto3\";\npackage test;\nmessage M {\n  bytes a = 1;\n  int32 n = 2;\n}\n",
        true,
        true,
    ),
    case(
        "int32 to sint32",
        PROTO_BASE,
        "syntax = \"proto3\";\npackage test;\nmessage M {\n  string a = 1;\n  sint32 n = 2;\n}\n",
        false,
        false,
    ),
    case(
        "fixed32 to sfixed32",
        "syntax = \"proto3\";\nmessage M {\n  fixed32 f = 1;\n}\n",
        "syntax = \"proto3\";\nmessage M {\n  sfixed32 f = 1;\n}\n",
        true,
        true,
    ),
    case(
        "float to double",
        "syntax = \"proto3\";\nmessage M {\n  float f = 1;\n}\n",
        "syntax = \"proto3\";\nmessage M {\n  double f = 1;\n}\n",
        false,
        false,
    ),
    case(
        "int32 to enum",
        PROTO_BASE,
        "syntax = \"proto3\";\npackage test;\nmessage M {\n  string a = 1;\n  Status n = 2;\n}\nenum Status {\n  A = 0;\n}\n",
        true,
        true,
    ),
    case(
        "scalar to message",
        PROTO_BASE,
        "syntax = \"proto3\";\npackage test;\nmessage M {\n  string a = 1;\n  N n = 2;\n}\nmessage N {\n  int32 x = 1;\n}\n",
        false,
        false,
    ),
    case(
        "message removed",
        "syntax = \"proto3\";\nmessage M {\n  string a = 1;\n}\nmessage N {\n  string b = 1;\n}\n",
        "syntax = \"proto3\";\nmessage M {\n  string a = 1;\n}\n",
        false,
        true,
    ),
    case(
        "message added",
        "syntax = \"proto3\";\nmessage M {\n  string a = 1;\n}\n",
        "syntax = \"proto3\";\nmessage M {\n  string a = 1;\n}\nmessage N {\n  string b = 1;\n}\n",
        true,
        false,
    ),
    case(
        "messages reordered",
        "syntax = \"proto3\";\nmessage M {\n  string a = 1;\n}\nmessage N {\n  string b = 1;\n}\n",
        "syntax = \"proto3\";\nmessage N {\n  string b = 1;\n}\nmessage M {\n  string a = 1;\n}\n",
        true,
        true,
    ),
    case(
        "package changed",
        PROTO_BASE,
        "syntax = \"proto3\";\npackage other;\nmessage M {\n  string a = 1;\n  int32 n = 2;\n}\n",
        false,
        false,
    ),
    case(
        "one field moved into a new oneof",
        PROTO_BASE,
        "syntax = \"proto3\";\npackage test;\nmessage M {\n  int32 n = 2;\n  oneof choice {\n    string a = 1;\n  }\n}\n",
        true,
        true,
    ),
    case(
        "two fields moved into a new oneof",
        PROTO_BASE,
        "syntax = \"proto3\";\npackage test;\nmessage M {\n  oneof choice {\n    string a = 1;\n    int32 n = 2;\n  }\n}\n",
        false,
        true,
    ),
    case(
        "field removed from a oneof",
        "syntax = \"proto3\";\nmessage M {\n  oneof c {\n    string a = 1;\n    int32 b = 2;\n  }\n}\n",
        "syntax = \"proto3\";\nmessage M {\n  oneof c {\n    string a = 1;\n  }\n}\n",
        false,
        true,
    ),
    case(
        "field added to a oneof",
        "syntax = \"proto3\";\nmessage M {\n  oneof c {\n    string a = 1;\n  }\n}\n",
        "syntax = \"proto3\";\nmessage M {\n  oneof c {\n    string a = 1;\n    int32 b = 2;\n  }\n}\n",
        true,
        false,
    ),
    case(
        "numeric label optional to repeated (proto2)",
        "syntax = \"proto2\";\nmessage M {\n  optional int32 n = 1;\n}\n",
        "syntax = \"proto2\";\nmessage M {\n  repeated int32 n = 1;\n}\n",
        false,
        false,
    ),
    case(
        "string label optional to repeated (proto2)",
        "syntax = \"proto2\";\nmessage M {\n  optional string s = 1;\n}\n",
        "syntax = \"proto2\";\nmessage M {\n  repeated string s = 1;\n}\n",
        true,
        true,
    ),
    case(
        "required field added (proto2)",
        "syntax = \"proto2\";\nmessage M {\n  optional string s = 1;\n}\n",
        "syntax = \"proto2\";\nmessage M {\n  optional string s = 1;\n  required int32 r = 2;\n}\n",
        false,
        false,
    ),
    case(
        "field type changed to another message",
        "syntax = \"proto3\";\nmessage M {\n  A x = 1;\n}\nmessage A {\n  string s = 1;\n}\nmessage B {\n  string s = 1;\n}\n",
        "syntax = \"proto3\";\nmessage M {\n  B x = 1;\n}\nmessage A {\n  string s = 1;\n}\nmessage B {\n  string s = 1;\n}\n",
        false,
        false,
    ),
    case(
        "enum constant added",
        "syntax = \"proto3\";\nenum E {\n  A = 0;\n}\nmessage M {\n  E e = 1;\n}\n",
        "syntax = \"proto3\";\nenum E {\n  A = 0;\n  B = 1;\n}\nmessage M {\n  E e = 1;\n}\n",
        true,
        true,
    ),
    case(
        "nested message field kind changed",
        "syntax = \"proto3\";\nmessage M {\n  message N {\n    int32 x = 1;\n  }\n  N n = 1;\n}\n",
        "syntax = \"proto3\";\nmessage M {\n  message N {\n    string x = 1;\n  }\n  N n = 1;\n}\n",
        false,
        false,
    ),
    case(
        "map value type changed within its kind",
        "syntax = \"proto3\";\nmessage M {\n  map<string, int32> m = 1;\n}\n",
        "syntax = \"proto3\";\nmessage M {\n  map<string, int64> m = 1;\n}\n",
        true,
        true,
    ),
];

const OPEN: &str = r#"{"type":"object","properties":{"a":{"type":"string"}}}"#;
const CLOSED: &str = r#"{"type":"object","properties":{"a":{"type":"string"}},"additionalProperties":false}"#;

const JSON: &[Case] = &[
    case(
        "property added to an open content model",
        OPEN,
        r#"{"type":"object","properties":{"a":{"type":"string"},"b":{"type":"number"}}}"#,
        false,
        true,
    ),
    case(
        "property removed from an open content model",
        r#"{"type":"object","properties":{"a":{"type":"string"},"b":{"type":"number"}}}"#,
        OPEN,
        true,
        false,
    ),
    case(
        "property with an empty schema added to an open content model",
        OPEN,
        r#"{"type":"object","properties":{"a":{"type":"string"},"b":{}}}"#,
        true,
        true,
    ),
    case(
        "optional property added to a closed content model",
        CLOSED,
        r#"{"type":"object","properties":{"a":{"type":"string"},"b":{"type":"number"}},"additionalProperties":false}"#,
        true,
        false,
    ),
    backward_only(
        "required property without default added to a closed content model",
        CLOSED,
        r#"{"type":"object","properties":{"a":{"type":"string"},"b":{"type":"number"}},"required":["b"],"additionalProperties":false}"#,
        false,
    ),
    backward_only(
        "required property with default added to a closed content model",
        CLOSED,
        r#"{"type":"object","properties":{"a":{"type":"string"},"b":{"type":"number","default":0}},"required":["b"],"additionalProperties":false}"#,
        true,
    ),
    case(
        "existing property made required without default",
        OPEN,
        r#"{"type":"object","properties":{"a":{"type":"string"}},"required":["a"]}"#,
        false,
        true,
    ),
    backward_only(
        "existing property made required with a default",
        OPEN,
        r#"{"type":"object","properties":{"a":{"type":"string","default":"x"}},"required":["a"]}"#,
        true,
    ),
    case("number narrowed to integer", r#"{"type":"number"}"#, r#"{"type":"integer"}"#, false, true),
    case("string extended to string or null", r#"{"type":"string"}"#, r#"{"type":["string","null"]}"#, true, false),
    case("string changed to number", r#"{"type":"string"}"#, r#"{"type":"number"}"#, false, false),
    case(
        "enum extended",
        r#"{"type":"string","enum":["a","b"]}"#,
        r#"{"type":"string","enum":["a","b","c"]}"#,
        true,
        false,
    ),
    case(
        "enum narrowed",
        r#"{"type":"string","enum":["a","b","c"]}"#,
        r#"{"type":"string","enum":["a","b"]}"#,
        false,
        true,
    ),
    case(
        "maxLength increased",
        r#"{"type":"string","maxLength":5}"#,
        r#"{"type":"string","maxLength":10}"#,
        true,
        false,
    ),
    case(
        "maxLength decreased",
        r#"{"type":"string","maxLength":10}"#,
        r#"{"type":"string","maxLength":5}"#,
        false,
        true,
    ),
    case("minimum increased", r#"{"type":"number","minimum":1}"#, r#"{"type":"number","minimum":5}"#, false, true),
    case("maximum removed", r#"{"type":"number","maximum":10}"#, r#"{"type":"number"}"#, true, false),
    case("additionalProperties false removed", CLOSED, OPEN, true, false),
    case(
        "additionalProperties narrowed to a schema",
        OPEN,
        r#"{"type":"object","properties":{"a":{"type":"string"}},"additionalProperties":{"type":"string"}}"#,
        false,
        true,
    ),
    backward_only(
        "property added and covered by a partially open content model",
        r#"{"type":"object","properties":{"a":{"type":"string"}},"additionalProperties":{"type":"string"}}"#,
        r#"{"type":"object","properties":{"a":{"type":"string"},"b":{"type":"string"}},"additionalProperties":{"type":"string"}}"#,
        true,
    ),
    backward_only(
        "property added and not covered by a partially open content model",
        r#"{"type":"object","properties":{"a":{"type":"string"}},"additionalProperties":{"type":"string"}}"#,
        r#"{"type":"object","properties":{"a":{"type":"string"},"b":{"type":"number"}},"additionalProperties":{"type":"string"}}"#,
        false,
    ),
    case("pattern added", r#"{"type":"string"}"#, r#"{"type":"string","pattern":"^[a-z]+$"}"#, false, true),
    case(
        "uniqueItems removed",
        r#"{"type":"array","items":{"type":"string"},"uniqueItems":true}"#,
        r#"{"type":"array","items":{"type":"string"}}"#,
        true,
        false,
    ),
    case(
        "array item type changed",
        r#"{"type":"array","items":{"type":"string"}}"#,
        r#"{"type":"array","items":{"type":"number"}}"#,
        false,
        false,
    ),
    case(
        "description and title changed",
        r#"{"type":"string","description":"old","title":"T"}"#,
        r#"{"type":"string","description":"new","title":"U"}"#,
        true,
        true,
    ),
    case(
        "oneOf extended with another subschema",
        r#"{"oneOf":[{"type":"string"},{"type":"number"}]}"#,
        r#"{"oneOf":[{"type":"string"},{"type":"number"},{"type":"boolean"}]}"#,
        true,
        false,
    ),
    case(
        "nested property type changed",
        r#"{"type":"object","properties":{"o":{"type":"object","properties":{"x":{"type":"integer"}}}}}"#,
        r#"{"type":"object","properties":{"o":{"type":"object","properties":{"x":{"type":"string"}}}}}"#,
        false,
        false,
    ),
    case(
        "moving a property schema into definitions behind a $ref",
        r#"{"type":"object","properties":{"a":{"type":"string"}}}"#,
        r##"{"type":"object","properties":{"a":{"$ref":"#/definitions/s"}},"definitions":{"s":{"type":"string"}}}"##,
        true,
        true,
    ),
];

#[test]
fn avro_evolution() {
    assert!(run(SchemaType::Avro, AVRO) >= 20);
}

#[test]
fn protobuf_evolution() {
    assert!(run(SchemaType::Protobuf, PROTOBUF) >= 20);
}

#[test]
fn json_schema_evolution() {
    assert!(run(SchemaType::Json, JSON) >= 20);
}

#[test]
fn schema_type_change_is_always_incompatible() {
    let avro = schema(SchemaType::Avro, r#""string""#);
    let json = schema(SchemaType::Json, r#"{"type":"string"}"#);
    for level in [CompatibilityLevel::Backward, CompatibilityLevel::Forward, CompatibilityLevel::FullTransitive] {
        assert_eq!(
            check_compatibility(level, &json, std::slice::from_ref(&avro)),
            vec!["Incompatible because of different schema type".to_string()]
        );
    }
    assert!(check_compatibility(CompatibilityLevel::None, &json, &[avro]).is_empty());
}

#[test]
fn transitive_levels_check_every_previous_version() {
    // v1 has no field b; v2 adds b with a default; v3 drops the default. v3 reads v2 data but
    // not v1 data.
    let v1 = schema(SchemaType::Avro, R_A);
    let v2 = schema(
        SchemaType::Avro,
        r#"{"type":"record","name":"R","fields":[{"name":"a","type":"int"},{"name":"b","type":"int","default":0}]}"#,
    );
    let v3 = schema(
        SchemaType::Avro,
        r#"{"type":"record","name":"R","fields":[{"name":"a","type":"int"},{"name":"b","type":"int"}]}"#,
    );
    let previous = [v1, v2];
    assert!(check_compatibility(CompatibilityLevel::Backward, &v3, &previous).is_empty());
    let messages = check_compatibility(CompatibilityLevel::BackwardTransitive, &v3, &previous);
    assert!(!messages.is_empty());
    assert!(check_compatibility(CompatibilityLevel::Backward, &v3, &[]).is_empty());
}

#[test]
fn messages_look_like_confluents() {
    let old = schema(SchemaType::Avro, R_A);
    let new = schema(
        SchemaType::Avro,
        r#"{"type":"record","name":"R","fields":[{"name":"a","type":"int"},{"name":"f3","type":"string"}]}"#,
    )
    .with_version(None);
    let old = old.with_version(Some(1));
    let messages = check_compatibility(CompatibilityLevel::Backward, &new, std::slice::from_ref(&old));
    assert_eq!(
        messages[0],
        "{errorType:'READER_FIELD_MISSING_DEFAULT_VALUE', description:'The field 'f3' at path '/fields/1' in the new schema has no default value and is missing in the old schema', additionalInfo:'f3'}"
    );
    assert_eq!(messages[1], "{oldSchemaVersion: 1}");
    assert_eq!(messages[2], format!("{{oldSchema: '{}'}}", old.canonical()));

    let old = schema(SchemaType::Avro, R_A);
    let new = schema(SchemaType::Avro, r#"{"type":"record","name":"R","fields":[{"name":"a","type":"string"}]}"#);
    let messages = check_compatibility(CompatibilityLevel::Backward, &new, std::slice::from_ref(&old));
    assert_eq!(
        messages[0],
        "{errorType:'TYPE_MISMATCH', description:'The type (path '/fields/0/type') of a field in the new schema does not match with the old schema', additionalInfo:'reader type: STRING not compatible with writer type: INT'}"
    );

    let old = schema(SchemaType::Json, r#"{"type":"object","properties":{"x":{"type":"integer"}}}"#);
    let new = schema(SchemaType::Json, r#"{"type":"object","properties":{"x":{"type":"string"}}}"#);
    let messages = check_compatibility(CompatibilityLevel::Backward, &new, std::slice::from_ref(&old));
    assert_eq!(
        messages[0],
        "{errorType:\"TYPE_CHANGED\", description:\"A type at path '#/properties/x' is different between the new schema and the old schema'}"
    );

    let old = schema(SchemaType::Protobuf, PROTO_BASE);
    let new = schema(
        SchemaType::Protobuf,
        "syntax = \"proto3\";\npackage test;\nmessage M {\n  string a = 1;\n  string n = 2;\n}\n",
    );
    let messages = check_compatibility(CompatibilityLevel::Forward, &new, std::slice::from_ref(&old));
    assert_eq!(
        messages[0],
        "{errorType:\"FIELD_SCALAR_KIND_CHANGED\", description:\"The kind of a SCALAR field at path '#/M/2' in the old schema does not match its kind in the new schema\"}"
    );
}
