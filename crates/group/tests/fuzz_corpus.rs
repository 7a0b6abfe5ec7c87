//! Replays the `offsets_load` fuzz corpus and its regression inputs, and
//! writes the seeds (records as the coordinator writes them) on request.

use std::path::{Path, PathBuf};

use tributary_group::consumer::{ConsumerConfig, ConsumerGroup, HeartbeatRequest};
use tributary_group::fuzzing::{RawRecord, encode_input, offsets_load, topics};
use tributary_group::records::{GroupValue, MemberValue, OffsetValue, OffsetsKey};

fn fuzz_dir(kind: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz").join(kind).join("offsets_load")
}

#[test]
fn replay_offsets_load_corpus() {
    let mut count = 0;
    for kind in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(fuzz_dir(kind)) else { continue };
        for entry in entries {
            let data = std::fs::read(entry.expect("entry").path()).expect("read");
            offsets_load(&data);
            for cut in (0..data.len()).step_by(3) {
                offsets_load(&data[..cut]);
            }
            count += 1;
        }
    }
    assert!(count >= 4, "expected the seed corpus, found {count} files");
}

/// Consumer protocol bytes as the Java client writes them: a v1 subscription to `orders`.
fn subscription() -> Vec<u8> {
    let mut b = vec![0, 1, 0, 0, 0, 1, 0, 6];
    b.extend_from_slice(b"orders");
    b.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]);
    b
}

fn classic_records() -> Vec<RawRecord> {
    let member = |id: &str, instance: Option<&str>| MemberValue {
        member_id: id.into(),
        group_instance_id: instance.map(str::to_string),
        client_id: "rdkafka".into(),
        client_host: "/127.0.0.1".into(),
        rebalance_timeout_ms: 300_000,
        session_timeout_ms: 45_000,
        subscription: subscription(),
        assignment: vec![
            0, 0, 0, 0, 0, 1, 0, 6, b'o', b'r', b'd', b'e', b'r', b's', 0, 0, 0, 1, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff,
        ],
    };
    let group = GroupValue {
        protocol_type: "consumer".into(),
        generation: 3,
        protocol: Some("range".into()),
        leader: Some("m-1".into()),
        current_state_timestamp: 1_700_000_000_000,
        members: vec![member("m-1", None), member("m-2", Some("static-2"))],
    };
    let offset = |partition, offset| {
        (
            OffsetsKey::Offset { group: "g".into(), topic: "orders".into(), partition }.encode(),
            Some(
                OffsetValue {
                    offset,
                    leader_epoch: 2,
                    metadata: "m".into(),
                    commit_timestamp: 5,
                    expire_timestamp: -1,
                }
                .encode(),
            ),
        )
    };
    // An offset value v1 (with an expire timestamp), as older brokers wrote it.
    let mut v1 = 1i16.to_be_bytes().to_vec();
    v1.extend_from_slice(&9i64.to_be_bytes());
    v1.extend_from_slice(&0i16.to_be_bytes());
    v1.extend_from_slice(&5i64.to_be_bytes());
    v1.extend_from_slice(&99i64.to_be_bytes());
    vec![
        offset(0, 42),
        offset(1, 7),
        (OffsetsKey::Offset { group: "old".into(), topic: "t".into(), partition: 0 }.encode(), Some(v1)),
        (OffsetsKey::Group { group: "g".into() }.encode(), Some(group.encode())),
        (OffsetsKey::Offset { group: "g".into(), topic: "orders".into(), partition: 1 }.encode(), None),
        (vec![0, 9, 0, 1, b's'], Some(vec![0, 0])),
    ]
}

/// Records of a consumer group that two members joined and reconciled.
fn consumer_records() -> Vec<RawRecord> {
    let config = ConsumerConfig::default();
    let topics = topics();
    let mut group = ConsumerGroup::new("cg");
    let mut records = Vec::new();
    let join = |member: &str, regex: &str| HeartbeatRequest {
        member_id: member.into(),
        member_epoch: 0,
        instance_id: (member == "b").then(|| "static-b".to_string()),
        rack_id: Some("rack-1".into()),
        rebalance_timeout_ms: 300_000,
        subscribed_topic_names: Some(vec!["orders".into()]),
        subscribed_topic_regex: Some(regex.into()),
        owned: Some(Vec::new()),
        client_id: "rdkafka".into(),
        client_host: "/127.0.0.1".into(),
        ..HeartbeatRequest::default()
    };
    let mut now = 1_000;
    for (member, regex) in [("a", ""), ("b", "pay.*")] {
        let (result, r) = group.heartbeat(&join(member, regex), &topics, now, &config);
        result.expect("join");
        records.extend(r);
        now += 10;
    }
    for _ in 0..3 {
        let members: Vec<(String, i32)> = group.members().map(|m| (m.id.clone(), m.epoch)).collect();
        for (id, epoch) in members {
            let owned = group.member(&id).map(|m| m.assigned.clone()).unwrap_or_default();
            let req = HeartbeatRequest {
                member_id: id,
                member_epoch: epoch,
                rebalance_timeout_ms: -1,
                owned: Some(owned.iter().map(|(t, ps)| (*t, ps.iter().copied().collect())).collect()),
                ..HeartbeatRequest::default()
            };
            let (_, r) = group.heartbeat(&req, &topics, now, &config);
            records.extend(r);
            now += 10;
        }
    }
    records.into_iter().map(|r| (r.key.encode(), r.value.map(|v| v.encode()))).collect()
}

#[test]
#[ignore = "regenerates fuzz/corpus/offsets_load"]
fn write_offsets_load_corpus() {
    let dir = fuzz_dir("corpus");
    std::fs::create_dir_all(&dir).expect("corpus dir");
    let classic = classic_records();
    let consumer = consumer_records();
    assert!(consumer.len() >= 6, "the consumer group wrote {} records", consumer.len());
    std::fs::write(dir.join("classic-group-and-offsets"), encode_input(&classic)).expect("write");
    std::fs::write(dir.join("consumer-group"), encode_input(&consumer)).expect("write");
    let mut deleted = consumer.clone();
    deleted.extend(ConsumerGroup::new("cg").tombstones().into_iter().map(|r| (r.key.encode(), None)));
    std::fs::write(dir.join("consumer-group-deleted"), encode_input(&deleted)).expect("write");
    let mut both = classic;
    both.extend(consumer);
    std::fs::write(dir.join("both-kinds"), encode_input(&both)).expect("write");
}
