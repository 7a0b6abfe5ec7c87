//! Replays the `schema_parse` and `schema_datum` fuzz corpora and their
//! regression inputs, and writes the seeds on request.

use std::path::{Path, PathBuf};

use serde_json::json;
use tributary_schema::datum::Codec;
use tributary_schema::fuzzing::{datum_input, schema_datum, schema_parse};
use tributary_schema::{NoReferences, ParseOptions, SchemaSource, SchemaType, parse};

fn fuzz_dir(kind: &str, target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz").join(kind).join(target)
}

fn replay(target: &str, run: fn(&[u8])) -> usize {
    let mut count = 0;
    for kind in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(fuzz_dir(kind, target)) else { continue };
        for entry in entries {
            let data = std::fs::read(entry.expect("entry").path()).expect("read");
            run(&data);
            count += 1;
        }
    }
    count
}

#[test]
fn replay_schema_parse_corpus() {
    let count = replay("schema_parse", schema_parse);
    assert!(count >= 12, "expected the seed corpus, found {count} files");
}

#[test]
fn replay_schema_datum_corpus() {
    let count = replay("schema_datum", schema_datum);
    assert!(count >= 6, "expected the seed corpus, found {count} files");
}

const AVRO_RECORD: &str = r#"{"type":"record","name":"Order","namespace":"shop","doc":"An order.","aliases":["Purchase"],
 "fields":[
  {"name":"id","type":"long"},
  {"name":"flag","type":"boolean","default":false},
  {"name":"qty","type":"int","default":1},
  {"name":"price","type":"double"},
  {"name":"ratio","type":"float"},
  {"name":"note","type":["null","string"],"default":null},
  {"name":"raw","type":"bytes"},
  {"name":"hash","type":{"type":"fixed","name":"MD5","size":4}},
  {"name":"state","type":{"type":"enum","name":"State","symbols":["NEW","PAID","SHIPPED"],"default":"NEW"}},
  {"name":"tags","type":{"type":"array","items":"string"}},
  {"name":"attrs","type":{"type":"map","values":["null","long"]}},
  {"name":"when","type":{"type":"long","logicalType":"timestamp-millis"}},
  {"name":"amount","type":{"type":"bytes","logicalType":"decimal","precision":9,"scale":2}},
  {"name":"next","type":["null","Order"],"default":null}
 ]}"#;

const AVRO_REF: &str =
    r#"{"type":"record","name":"Customer","namespace":"shop","fields":[{"name":"name","type":"string"}]}"#;
const AVRO_USES_REF: &str =
    r#"{"type":"record","name":"Sale","namespace":"shop","fields":[{"name":"who","type":"shop.Customer"}]}"#;

const JSON_SCHEMA: &str = r##"{"$schema":"http://json-schema.org/draft-07/schema#","title":"Order","type":"object",
 "properties":{
  "id":{"type":"integer","minimum":1},
  "note":{"type":["string","null"],"maxLength":20},
  "tags":{"type":"array","items":{"type":"string"},"uniqueItems":true},
  "kind":{"enum":["a","b"]},
  "line":{"$ref":"#/definitions/Line"},
  "alt":{"oneOf":[{"type":"string"},{"type":"number"}]}
 },
 "required":["id"],"additionalProperties":false,
 "definitions":{"Line":{"type":"object","properties":{"qty":{"type":"number"}}}}}"##;

const JSON_REF: &str = r#"{"type":"object","properties":{"street":{"type":"string"}}}"#;
const JSON_USES_REF: &str = r#"{"type":"object","title":"Person","properties":{"home":{"$ref":"r1.json"}}}"#;

const PROTO3: &str = r#"syntax = "proto3";
package shop;
import "google/protobuf/timestamp.proto";
option java_package = "com.shop";
message Order {
  int64 id = 1;
  string item = 2;
  repeated Line lines = 3;
  map<string, int32> counts = 4;
  oneof payment { string card = 5; bytes token = 6; }
  State state = 7;
  google.protobuf.Timestamp at = 8;
  message Line { int32 qty = 1; double price = 2 [deprecated = true]; }
  enum State { NEW = 0; PAID = 1; }
  reserved 9, 10 to 12;
}
message Refund { string reason = 1; }
"#;

const PROTO2: &str = r#"syntax = "proto2";
package legacy;
message Thing {
  required int32 id = 1;
  optional string name = 2 [default = "x"];
  extensions 100 to 200;
}
extend Thing { optional int32 extra = 100; }
"#;

const PROTO_REF: &str =
    "syntax = \"proto3\";\npackage common;\nmessage Money { int64 units = 1; string currency = 2; }\n";
const PROTO_USES_REF: &str =
    "syntax = \"proto3\";\npackage shop;\nimport \"r1.proto\";\nmessage Sale { common.Money price = 1; }\n";

fn parse_seed(flags: u8, parts: &[&str]) -> Vec<u8> {
    let mut out = vec![flags];
    out.extend_from_slice(parts.join("\0").as_bytes());
    out
}

fn write(target: &str, name: &str, data: &[u8]) {
    let dir = fuzz_dir("corpus", target);
    std::fs::create_dir_all(&dir).expect("corpus dir");
    std::fs::write(dir.join(name), data).expect("write");
}

/// Seeds: every format with the features the registry handles (Avro
/// logical types, unions and named types; JSON Schema `$ref`s and
/// combinators; proto2 and proto3 with imports), with and without
/// references and normalization; and datums encoded by the serializer code.
#[test]
#[ignore = "regenerates fuzz/corpus/schema_parse and fuzz/corpus/schema_datum"]
fn write_schema_corpora() {
    // Part i is referenced as r{i}; part 0 is the schema itself.
    let parse_seeds: [(&str, u8, Vec<&str>); 12] = [
        ("avro-record", 0, vec![AVRO_RECORD]),
        ("avro-record-normalized", 4, vec![AVRO_RECORD]),
        ("avro-primitive", 0, vec![r#""string""#]),
        ("avro-union", 0, vec![r#"["null","int",{"type":"array","items":"long"}]"#]),
        ("avro-with-reference", 0, vec![AVRO_USES_REF, AVRO_REF]),
        ("json-object", 1, vec![JSON_SCHEMA]),
        ("json-object-normalized", 5, vec![JSON_SCHEMA]),
        ("json-with-reference", 1, vec![JSON_USES_REF, JSON_REF]),
        ("proto3", 2, vec![PROTO3]),
        ("proto3-normalized", 6, vec![PROTO3]),
        ("proto2-extensions", 2, vec![PROTO2]),
        ("proto-with-reference", 2, vec![PROTO_USES_REF, PROTO_REF]),
    ];
    for (name, flags, parts) in parse_seeds {
        let data = parse_seed(flags, &parts);
        schema_parse(&data);
        write("schema_parse", name, &data);
    }
    write("schema_parse", "proto-reference-cycle", &parse_seed(10, &[PROTO_USES_REF, PROTO_REF, PROTO_USES_REF]));

    let datums = [
        (
            "avro-record",
            SchemaType::Avro,
            AVRO_RECORD,
            None,
            json!({"id": 7, "flag": true, "qty": 2, "price": 1.5, "ratio": 0.25, "note": {"string": "hi"},
                   "raw": "\u{0001}\u{00ff}", "hash": "abcd", "state": "PAID", "tags": ["a", "b"],
                   "attrs": {"x": {"long": 3}, "y": null}, "when": 1_700_000_000_000i64, "amount": "\u{0000}\u{0064}",
                   "next": null}),
        ),
        (
            "avro-union",
            SchemaType::Avro,
            r#"["null","int",{"type":"array","items":"long"}]"#,
            None,
            json!({"array": [1, 2, 3]}),
        ),
        (
            "avro-map-of-null",
            SchemaType::Avro,
            r#"{"type":"map","values":"null"}"#,
            None,
            json!({"a": null, "b": null}),
        ),
        // Items that take no bytes at all.
        ("avro-array-of-null", SchemaType::Avro, r#"{"type":"array","items":"null"}"#, None, json!([null, null, null])),
        (
            "avro-array-of-empty-records",
            SchemaType::Avro,
            r#"{"type":"array","items":{"type":"record","name":"E","fields":[]}}"#,
            None,
            json!([{}, {}]),
        ),
        ("json-object", SchemaType::Json, JSON_SCHEMA, None, json!({"id": 3, "tags": ["x"], "line": {"qty": 2}})),
        (
            "proto3-order",
            SchemaType::Protobuf,
            PROTO3,
            Some("Order"),
            json!({"id": "5", "item": "tea", "lines": [{"qty": 2}], "counts": {"a": 1}, "card": "c", "state": "PAID"}),
        ),
        ("proto3-nested", SchemaType::Protobuf, PROTO3, Some("shop.Order.Line"), json!({"qty": 4})),
        ("proto3-second", SchemaType::Protobuf, PROTO3, Some("Refund"), json!({"reason": "late"})),
    ];
    for (name, kind, text, message, value) in datums {
        let source = SchemaSource { schema_type: kind, schema: text.to_string(), references: Vec::new() };
        let schema = parse(&source, &NoReferences, &ParseOptions::default()).expect("seed schema parses");
        let codec = Codec::new(&schema, message).expect("codec");
        let payload = codec.encode(&value).unwrap_or_else(|e| panic!("{name}: {e}"));
        let data = datum_input(kind, text, &payload);
        schema_datum(&data);
        write("schema_datum", name, &data);
        // The same schema with the JSON form as the payload (encoding from JSON).
        write("schema_datum", &format!("{name}-json"), &datum_input(kind, text, value.to_string().as_bytes()));
    }
}
