//! Entry point shared by the `offsets_load` fuzz target and its corpus
//! replay test: records of `__consumer_offsets` replayed the way the
//! coordinator loads them at start (key, then value by key type; classic
//! groups restored, consumer groups rebuilt record by record), then the
//! loaded groups described, heartbeated and expired.
//!
//! Input: records until the input ends, each
//! `key_len u16 BE | key | value_len i32 BE | value` (a negative value
//! length is a tombstone; a length past the end takes what is there).
//!
//! Besides "no panic", the harness checks that every record it could read
//! reads back the same after being written again.

use std::collections::HashMap;

use crate::classic::{ClassicGroup, GroupConfig};
use crate::consumer::{ConsumerConfig, ConsumerGroup, HeartbeatRequest, TopicInfo, TopicsView};
use crate::offsets::{CommittedOffset, OffsetStore};
use crate::records::{ConsumerValue, GroupValue, OffsetValue, OffsetsKey};

/// One `__consumer_offsets` record: key and value (`None` = tombstone).
pub type RawRecord = (Vec<u8>, Option<Vec<u8>>);

/// Splits an input into records.
pub fn parse_input(mut data: &[u8]) -> Vec<RawRecord> {
    let mut out = Vec::new();
    while data.len() >= 2 {
        let key_len = usize::from(u16::from_be_bytes([data[0], data[1]]));
        data = &data[2..];
        let key = data[..key_len.min(data.len())].to_vec();
        data = &data[key.len()..];
        if data.len() < 4 {
            out.push((key, None));
            break;
        }
        let value_len = i32::from_be_bytes([data[0], data[1], data[2], data[3]]);
        data = &data[4..];
        let value = usize::try_from(value_len).ok().map(|n| {
            let v = data[..n.min(data.len())].to_vec();
            data = &data[v.len()..];
            v
        });
        out.push((key, value));
    }
    out
}

/// Builds an input (the inverse of [`parse_input`]), for seeds.
pub fn encode_input(records: &[RawRecord]) -> Vec<u8> {
    let mut out = Vec::new();
    for (key, value) in records {
        out.extend_from_slice(&(key.len() as u16).to_be_bytes());
        out.extend_from_slice(key);
        match value {
            Some(v) => {
                out.extend_from_slice(&(v.len() as i32).to_be_bytes());
                out.extend_from_slice(v);
            }
            None => out.extend_from_slice(&(-1i32).to_be_bytes()),
        }
    }
    out
}

/// The topics the loaded groups are heartbeated against.
pub fn topics() -> TopicsView {
    TopicsView::new([
        ("orders".to_string(), TopicInfo { id: [1; 16], partitions: 3, internal: false }),
        ("payments".to_string(), TopicInfo { id: [2; 16], partitions: 1, internal: false }),
        ("__consumer_offsets".to_string(), TopicInfo { id: [3; 16], partitions: 50, internal: true }),
    ])
}

/// Runs the harness on `data`.
///
/// # Panics
/// When a record that was read does not read back the same after being
/// written again.
pub fn offsets_load(data: &[u8]) {
    let mut offsets = OffsetStore::default();
    let mut classic: HashMap<String, GroupValue> = HashMap::new();
    let mut consumer: HashMap<String, ConsumerGroup> = HashMap::new();
    for (log_offset, (key, value)) in parse_input(data).into_iter().enumerate() {
        let Ok(Some(key)) = OffsetsKey::decode(&key) else { continue };
        assert_eq!(OffsetsKey::decode(&key.encode()), Ok(Some(key.clone())), "key round trip");
        match &key {
            OffsetsKey::Offset { group, topic, partition } => match value {
                None => {
                    offsets.remove(group, topic, *partition);
                }
                Some(v) => {
                    if let Ok(v) = OffsetValue::decode(&v) {
                        let again = OffsetValue::decode(&v.encode()).expect("an encoded offset decodes");
                        assert_eq!(again, OffsetValue { expire_timestamp: -1, ..v.clone() }, "offset round trip");
                        offsets.put(group, topic, *partition, CommittedOffset::from_value(&v, log_offset as i64));
                    }
                }
            },
            OffsetsKey::Group { group } => match value {
                None => {
                    classic.remove(group);
                }
                Some(v) => {
                    if let Ok(v) = GroupValue::decode(&v) {
                        assert_eq!(GroupValue::decode(&v.encode()).as_ref(), Ok(&v), "group round trip");
                        classic.insert(group.clone(), v);
                    }
                }
            },
            _ if key.is_consumer_group() => replay_consumer(&mut consumer, &key, value.as_deref()),
            _ => {}
        }
    }
    let _ = offsets.groups().count();
    exercise_classic(classic);
    exercise_consumer(consumer);
}

/// As the coordinator's load: a tombstone or a readable value is applied,
/// an unreadable one skipped.
fn replay_consumer(groups: &mut HashMap<String, ConsumerGroup>, key: &OffsetsKey, value: Option<&[u8]>) {
    let value = match value.map(|v| ConsumerValue::decode(key, v)) {
        None => None,
        Some(Ok(None)) | Some(Err(_)) => return,
        Some(Ok(Some(v))) => {
            assert_eq!(ConsumerValue::decode(key, &v.encode()), Ok(Some(v.clone())), "consumer value round trip");
            Some(v)
        }
    };
    let id = key.group().to_string();
    let group = groups.entry(id.clone()).or_insert_with(|| ConsumerGroup::new(&id));
    if !group.replay(key, value.as_ref()) {
        groups.remove(&id);
    }
}

const NOW_MS: u64 = 1_000_000;
const WALL_MS: i64 = 1_700_000_000_000;

fn exercise_classic(groups: HashMap<String, GroupValue>) {
    let config = GroupConfig::default();
    for (id, value) in groups {
        let mut group = ClassicGroup::restore(&id, &value, NOW_MS, WALL_MS);
        let _ = group.describe();
        let _ = group.to_value().encode();
        let _ = group.next_deadline();
        let _ = group.tick(u64::MAX / 2, WALL_MS, &config);
        let _ = group.describe();
    }
}

fn exercise_consumer(groups: HashMap<String, ConsumerGroup>) {
    let config = ConsumerConfig::default();
    let topics = topics();
    for (_, mut group) in groups {
        group.restart_timers(NOW_MS, &config);
        let _ = group.describe(&config);
        let _ = group.subscribed_topics(&topics);
        let members: Vec<(String, i32)> = group.members().map(|m| (m.id.clone(), m.epoch)).collect();
        for (member_id, member_epoch) in members {
            let req = HeartbeatRequest { member_id, member_epoch, rebalance_timeout_ms: -1, ..Default::default() };
            let _ = group.heartbeat(&req, &topics, NOW_MS + 1, &config);
        }
        let _ = group.next_deadline();
        let _ = group.tick(u64::MAX / 2);
        let _ = group.tombstones();
    }
}
