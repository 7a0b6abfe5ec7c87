//! Replays the `request_decode` and `consumer_protocol` fuzz corpora and
//! their regression inputs, so every input the fuzzer (or a bug report)
//! produced stays decodable without a panic, and writes the
//! `consumer_protocol` seeds on request.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use tributary_protocol::apis::SUPPORTED_APIS;
use tributary_protocol::consumer_protocol::{
    Assignment, Subscription, TopicPartitions, encode_assignment, encode_subscription,
};

fn fuzz_dir(kind: &str, target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz").join(kind).join(target)
}

/// Every file of the target's corpus and regression directories.
fn inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for kind in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(fuzz_dir(kind, target)) else { continue };
        for entry in entries {
            let path = entry.expect("entry").path();
            let data = std::fs::read(&path).expect("read");
            out.push((path, data));
        }
    }
    out.sort();
    out
}

#[test]
fn replay_request_decode_corpus() {
    let inputs = inputs("request_decode");
    for (_, data) in &inputs {
        tributary_protocol::fuzzing::request_decode(data);
        // Every prefix too: truncated frames are the common malformed input.
        for cut in (0..data.len()).step_by(7) {
            tributary_protocol::fuzzing::request_decode(&data[..cut]);
        }
    }
    assert!(inputs.len() >= 165, "expected the seed corpus, found {} files", inputs.len());
}

/// The fuzzer starts from a valid request of every advertised API at every
/// advertised version, so none is left for mutation to stumble on: each
/// seed a broker would decode (at or above `min_decodable`) decodes.
#[test]
fn request_decode_corpus_has_a_seed_per_api_and_version() {
    let dir = fuzz_dir("corpus", "request_decode");
    let (mut missing, mut undecodable) = (Vec::new(), Vec::new());
    for api in SUPPORTED_APIS {
        for v in api.min..=api.max {
            let name = format!("{:?}-v{v}", api.key);
            match std::fs::read(dir.join(&name)) {
                Err(_) => missing.push(name),
                Ok(frame) if v >= api.min_decodable => {
                    if let Err(e) = tributary_protocol::request::decode_request(Bytes::from(frame), 100_000) {
                        undecodable.push(format!("{name}: {e}"));
                    }
                }
                Ok(_) => {}
            }
        }
    }
    assert!(
        missing.is_empty(),
        "no seed for {missing:?}; run cargo test -p tributary-protocol --lib write_fuzz_corpus -- --ignored"
    );
    assert!(undecodable.is_empty(), "seeds that do not decode: {undecodable:?}");
}

#[test]
fn replay_consumer_protocol_corpus() {
    let inputs = inputs("consumer_protocol");
    for (_, data) in &inputs {
        tributary_protocol::fuzzing::consumer_protocol(data);
        for cut in 0..data.len() {
            tributary_protocol::fuzzing::consumer_protocol(&data[..cut]);
        }
    }
    assert!(inputs.len() >= 8, "expected the seed corpus, found {} files", inputs.len());
}

fn tp(topic: &str, partitions: &[i32]) -> TopicPartitions {
    TopicPartitions { topic: topic.to_string(), partitions: partitions.to_vec() }
}

/// Seeds: subscriptions and assignments at every known version, a newer
/// version with a field appended, and the bytes Kafka's Java client writes.
#[test]
#[ignore = "regenerates fuzz/corpus/consumer_protocol"]
fn write_consumer_protocol_corpus() {
    let dir = fuzz_dir("corpus", "consumer_protocol");
    std::fs::create_dir_all(&dir).expect("corpus dir");
    let write = |name: &str, which: u8, bytes: &[u8]| {
        let mut data = vec![which];
        data.extend_from_slice(bytes);
        std::fs::write(dir.join(name), data).expect("write");
    };
    for v in 0..=3i16 {
        let s = Subscription {
            version: v,
            topics: vec!["orders".into(), "payments".into()],
            user_data: Some(Bytes::from_static(b"sticky")),
            owned_partitions: if v >= 1 { vec![tp("orders", &[0, 2]), tp("payments", &[])] } else { vec![] },
            generation_id: if v >= 2 { 7 } else { -1 },
            rack_id: if v >= 3 { Some("rack-a".into()) } else { None },
        };
        let bytes = encode_subscription(&s).expect("encode");
        write(&format!("subscription-v{v}"), 0, &bytes);
        let a = Assignment {
            version: v,
            partitions: vec![tp("orders", &[0, 1, 5]), tp("payments", &[0])],
            user_data: (v % 2 == 1).then(|| Bytes::from_static(b"ud")),
        };
        write(&format!("assignment-v{v}"), 1, &encode_assignment(&a).expect("encode"));
    }
    let mut newer =
        encode_subscription(&Subscription { version: 3, ..Subscription::default() }).expect("encode").to_vec();
    newer[1] = 9;
    newer.extend_from_slice(&[0, 0, 0, 1]);
    write("subscription-v9-appended-field", 0, &newer);
    // A v0 assignment of orders-0 and orders-1 with null user data, field by field.
    let mut java = vec![0, 0, 0, 0, 0, 1, 0, 6];
    java.extend_from_slice(b"orders");
    java.extend_from_slice(&[0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff]);
    write("assignment-v0-java", 1, &java);
    write("empty-assignment", 1, &[]);
}
