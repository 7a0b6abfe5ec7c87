//! Replays the `rest_proxy_json` fuzz corpus and its regression inputs, and
//! writes the seeds on request.

use std::path::{Path, PathBuf};

use serde_json::json;
use tributary_rest_proxy::fuzzing::request_body;

fn fuzz_dir(kind: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz").join(kind).join("rest_proxy_json")
}

#[test]
fn replay_rest_proxy_json_corpus() {
    let mut count = 0;
    for kind in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(fuzz_dir(kind)) else { continue };
        for entry in entries {
            let data = std::fs::read(entry.expect("entry").path()).expect("read");
            request_body(&data);
            for cut in (0..data.len()).step_by(13) {
                request_body(&data[..cut]);
            }
            count += 1;
        }
    }
    assert!(count >= 10, "expected the seed corpus, found {count} files");
}

/// v3 selectors: 0 create topic, 2 configs, 4 partition count, 6 records.
fn v3(selector: u8, body: &str) -> Vec<u8> {
    let mut out = vec![selector];
    if selector == 6 {
        out.push(6); // streamed in chunks of 7 bytes
    }
    out.extend_from_slice(body.as_bytes());
    out
}

/// v2 produce (selector 1) with a content type.
fn v2_produce(content_type: &str, body: &str) -> Vec<u8> {
    let mut out = vec![1, content_type.len() as u8];
    out.extend_from_slice(content_type.as_bytes());
    out.extend_from_slice(body.as_bytes());
    out
}

/// v2 consumer instance bodies: selector 3 + 4 * kind (0 create instance,
/// 1 subscribe, 2 a partition list, 3 seek, 4 commit).
fn v2_consumer(kind: u8, body: &str) -> Vec<u8> {
    let mut out = vec![3 + 4 * kind];
    out.extend_from_slice(body.as_bytes());
    out
}

#[test]
#[ignore = "regenerates fuzz/corpus/rest_proxy_json"]
fn write_rest_proxy_json_corpus() {
    let dir = fuzz_dir("corpus");
    std::fs::create_dir_all(&dir).expect("corpus dir");
    let record = json!({
        "partition_id": 0,
        "headers": [{"name": "h", "value": "aGVsbG8="}, {"name": "n", "value": null}],
        "key": {"type": "BINARY", "data": "a2V5"},
        "value": {"type": "JSON", "data": {"n": [1, 2.5, "x", null, true]}},
        "timestamp": "2024-05-01T12:00:00.123+02:00"
    });
    let avro = json!({"value": {"type": "AVRO", "schema": "\"string\"", "data": "x"}});
    let string = json!({"key": {"type": "STRING", "data": "k"}, "value": {"data": "v", "subject": "s"}});
    let seeds: Vec<(&str, Vec<u8>)> = vec![
        (
            "v3-create-topic",
            v3(
                0,
                &json!({"topic_name": "t", "partitions_count": 3, "replication_factor": 1,
                          "configs": [{"name": "cleanup.policy", "value": "compact"}, {"name": "x", "value": null}]})
                .to_string(),
            ),
        ),
        (
            "v3-create-topic-assignments",
            v3(
                0,
                &json!({"topic_name": "t.2", "replicas_assignments": {"0": [1, 2], " 1": [2]},
                          "configs": null, "validate_only": "true", "partitions_count": "4"})
                .to_string(),
            ),
        ),
        (
            "v3-configs-alter",
            v3(
                2,
                &json!({"data": [{"name": "retention.ms", "value": "1"}, {"name": "x", "operation": "DELETE"}],
                          "validate_only": false})
                .to_string(),
            ),
        ),
        ("v3-config-update", v3(2, &json!({"value": "10"}).to_string())),
        ("v3-partitions", v3(4, &json!({"partitions_count": 6}).to_string())),
        ("v3-partitions-text", v3(4, &json!({"partitions_count": "6"}).to_string())),
        (
            "v3-records-stream",
            v3(6, &format!("{record}\n{avro} {string}{{\"value\":{{\"type\":\"STRING\",\"data\":\"s\\\"}}\"}}}}")),
        ),
        (
            "v3-records-batch",
            v3(
                6,
                &json!({"entries": [{"id": "1", "value": {"type": "STRING", "data": "a"}}, {"id": "2"}]}).to_string(),
            ),
        ),
        (
            "v2-produce-binary",
            v2_produce(
                "application/vnd.kafka.binary.v2+json",
                &json!({"records": [{"key": "a2V5", "value": "dmFsdWU=", "partition": 0}, {"value": null}]})
                    .to_string(),
            ),
        ),
        (
            "v2-produce-json",
            v2_produce(
                "application/vnd.kafka.json.v2+json; charset=utf-8",
                &json!({"records": [{"value": {"a": [1]}}]}).to_string(),
            ),
        ),
        (
            "v2-produce-avro",
            v2_produce(
                "application/vnd.kafka.avro.v2+json",
                &json!({"value_schema": "\"string\"", "records": [{"value": "x"}]}).to_string(),
            ),
        ),
        (
            "v2-create-instance",
            v2_consumer(
                0,
                &json!({"name": "c1", "format": "json", "auto.offset.reset": "earliest",
                                   "auto.commit.enable": "false", "consumer.request.timeout.ms": 500,
                                   "fetch.min.bytes": "1024"})
                .to_string(),
            ),
        ),
        ("v2-subscribe-pattern", v2_consumer(1, &json!({"topic_pattern": "ord.*|pay[0-9]+"}).to_string())),
        ("v2-assign", v2_consumer(2, &json!({"partitions": [{"topic": "t", "partition": 0}]}).to_string())),
        ("v2-seek", v2_consumer(3, &json!({"offsets": [{"topic": "t", "partition": 0, "offset": 5}]}).to_string())),
        (
            "v2-seek-timestamps",
            v2_consumer(
                3,
                &json!({"timestamps": [{"topic": "t", "partition": "1", "timestamp": "2024-05-01T12:00:00.5Z",
                                         "metadata": "m"}, {"topic": "t", "timestamp": 1714564800000i64}]})
                .to_string(),
            ),
        ),
        (
            "v2-commit",
            v2_consumer(
                4,
                &json!({"offsets": [{"topic": "t", "partition": 0, "offset": 9, "metadata": "x"}]}).to_string(),
            ),
        ),
        ("v2-subscribe-topics", v2_consumer(1, &json!({"topics": ["a", "b"]}).to_string())),
    ];
    for (name, data) in seeds {
        request_body(&data);
        std::fs::write(dir.join(name), data).expect("write");
    }
}
