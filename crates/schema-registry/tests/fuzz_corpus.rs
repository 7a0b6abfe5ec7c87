//! Replays the `registry_json` fuzz corpus and its regression inputs, and
//! writes the seeds on request.

use std::path::{Path, PathBuf};

use serde_json::json;
use tributary_schema_registry::format::{Key, Reference, SchemaValue};
use tributary_schema_registry::fuzzing::{RawRecord, encode_records, registry_json};

fn fuzz_dir(kind: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz").join(kind).join("registry_json")
}

#[test]
fn replay_registry_json_corpus() {
    let mut count = 0;
    for kind in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(fuzz_dir(kind)) else { continue };
        for entry in entries {
            let data = std::fs::read(entry.expect("entry").path()).expect("read");
            registry_json(&data);
            for cut in (0..data.len()).step_by(11) {
                registry_json(&data[..cut]);
            }
            count += 1;
        }
    }
    assert!(count >= 5, "expected the seed corpus, found {count} files");
}

fn body(selector: u8, value: &serde_json::Value) -> Vec<u8> {
    let mut out = vec![selector];
    out.extend_from_slice(value.to_string().as_bytes());
    out
}

fn schema(subject: &str, version: i32, id: i32, text: &str, references: Vec<Reference>) -> RawRecord {
    let value = SchemaValue {
        subject: subject.into(),
        version,
        id,
        schema_type: (text.starts_with("syntax")).then(|| "PROTOBUF".to_string()),
        references,
        metadata: Some(json!({"properties": {"owner": "team"}})),
        rule_set: None,
        schema: text.into(),
        deleted: false,
    };
    (Key::Schema { subject: subject.into(), version }.encode(), Some(serde_json::to_vec(&value).expect("json")))
}

/// Seeds: register/compatibility bodies with references, metadata and
/// rules; config and mode bodies; and a `_schemas` topic with every key type.
#[test]
#[ignore = "regenerates fuzz/corpus/registry_json"]
fn write_registry_json_corpus() {
    let dir = fuzz_dir("corpus");
    std::fs::create_dir_all(&dir).expect("corpus dir");
    let write = |name: &str, data: Vec<u8>| std::fs::write(dir.join(name), data).expect("write");
    write(
        "register-avro",
        body(0, &json!({"schema": "{\"type\":\"string\"}", "schemaType": "AVRO", "id": 5, "version": 2})),
    );
    write(
        "register-with-contract",
        body(
            0,
            &json!({
                "schema": "syntax = \"proto3\";\nmessage A {}\n",
                "schemaType": "PROTOBUF",
                "references": [{"name": "b.proto", "subject": "b", "version": 1}],
                "metadata": {"tags": {"A.x": ["PII"]}, "properties": {"owner": "team"}, "sensitive": ["s"]},
                "ruleSet": {"domainRules": [{"name": "r", "kind": "CONDITION", "mode": "WRITE", "type": "CEL",
                                             "expr": "true", "params": {"a": "b"}, "disabled": false}],
                            "migrationRules": [], "enableAt": "ALL"}
            }),
        ),
    );
    write(
        "config",
        body(
            1,
            &json!({"compatibility": "FULL_TRANSITIVE", "normalize": true, "compatibilityGroup": "app",
                    "defaultMetadata": {"properties": {"a": "b"}}, "overrideRuleSet": {"enableAt": "ALL"}}),
        ),
    );
    write("mode", body(2, &json!({"mode": "READONLY"})));
    let records = vec![
        schema("b", 1, 1, "syntax = \"proto3\";\nmessage B {}\n", vec![]),
        schema(
            "a",
            1,
            2,
            "syntax = \"proto3\";\nimport \"b.proto\";\nmessage A { B b = 1; }\n",
            vec![Reference { name: "b.proto".into(), subject: "b".into(), version: 1 }],
        ),
        schema("s", 1, 3, "{\"type\":\"string\"}", vec![]),
        schema("s", 2, 3, "{\"type\":\"string\"}", vec![]),
        (Key::Config(None).encode(), Some(br#"{"compatibilityLevel":"FULL"}"#.to_vec())),
        (Key::Config(Some("s".into())).encode(), Some(br#"{"compatibilityLevel":"NONE","subject":"s"}"#.to_vec())),
        (Key::Mode(Some("s".into())).encode(), Some(br#"{"subject":"s","mode":"readonly"}"#.to_vec())),
        (Key::DeleteSubject("s".into()).encode(), Some(br#"{"subject":"s","version":1}"#.to_vec())),
        (Key::ClearSubject("s".into()).encode(), Some(br#"{"subject":"s"}"#.to_vec())),
        (Key::Schema { subject: "s".into(), version: 2 }.encode(), None),
        (Key::Noop.encode(), Some(br#"{"maxId":10}"#.to_vec())),
        (br#"{"keytype":"DELETE_KEK","magic":0}"#.to_vec(), Some(b"{}".to_vec())),
    ];
    write("schemas-topic", encode_records(&records));
}
