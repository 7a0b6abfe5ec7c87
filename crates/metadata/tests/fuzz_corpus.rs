//! Replays the `metadata_replay` fuzz corpus and its regression inputs, and
//! writes the seeds (the snapshot and log of real stores) on request.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use tributary_metadata::fuzzing::{encode_input, metadata_replay};
use tributary_metadata::{MetadataCommand, MetadataStore, PartitionMeta, TopicMeta};

fn fuzz_dir(kind: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz").join(kind).join("metadata_replay")
}

/// A scratch directory in memory when the machine has one (the store syncs
/// files; tmpfs makes that free).
fn scratch() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() { tempfile::tempdir_in(shm) } else { tempfile::tempdir() }.expect("scratch dir")
}

#[test]
fn replay_metadata_replay_corpus() {
    let scratch = scratch();
    let dir = scratch.path().join("m");
    let mut count = 0;
    for kind in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(fuzz_dir(kind)) else { continue };
        for entry in entries {
            let data = std::fs::read(entry.expect("entry").path()).expect("read");
            metadata_replay(&dir, &data);
            count += 1;
        }
    }
    assert!(count >= 4, "expected the seed corpus, found {count} files");
}

fn topic(name: &str, id: u8, partitions: usize) -> TopicMeta {
    TopicMeta {
        name: name.to_string(),
        topic_id: [id; 16],
        partitions: (0..partitions)
            .map(|_| PartitionMeta { replicas: vec![1], leader: 1, leader_epoch: 0, isr: vec![1] })
            .collect(),
        configs: BTreeMap::from([("cleanup.policy".to_string(), "compact".to_string())]),
    }
}

/// Every kind of command, in a plausible order.
fn commands() -> Vec<MetadataCommand> {
    vec![
        MetadataCommand::InitCluster { cluster_id: "MkU3OEVBNTcwNTJENDM2Qk".into() },
        MetadataCommand::CreateTopic { topic: topic("orders", 1, 3) },
        MetadataCommand::CreateTopic { topic: topic("__consumer_offsets", 2, 2) },
        MetadataCommand::CreatePartitions { topic_id: [1; 16], partitions: topic("x", 0, 2).partitions },
        MetadataCommand::SetTopicConfigs {
            topic_id: [1; 16],
            configs: BTreeMap::from([("retention.ms".to_string(), "1000".to_string())]),
        },
        MetadataCommand::SetBrokerConfigs {
            broker: Some(1),
            configs: BTreeMap::from([("log.retention.ms".to_string(), "5".to_string())]),
        },
        MetadataCommand::SetBrokerConfigs { broker: None, configs: BTreeMap::new() },
        MetadataCommand::AllocateProducerIds { block_end: 2000 },
        MetadataCommand::DeleteTopic { topic_id: [2; 16] },
    ]
}

/// Seeds: a log of every command, the same after a snapshot (snapshot plus
/// a short log), and a log with a torn tail; each also with the CRC-fixing flag.
#[test]
#[ignore = "regenerates fuzz/corpus/metadata_replay"]
fn write_metadata_replay_corpus() {
    let out = fuzz_dir("corpus");
    std::fs::create_dir_all(&out).expect("corpus dir");
    let scratch = scratch();
    for (name, snapshot_after) in [("log-only", None), ("snapshot-and-log", Some(5))] {
        let dir = scratch.path().join(name);
        let mut store = MetadataStore::open(&dir).expect("open");
        for (i, c) in commands().into_iter().enumerate() {
            store.append(c).expect("append");
            if snapshot_after == Some(i) {
                store.snapshot().expect("snapshot");
            }
        }
        drop(store);
        let snapshot = std::fs::read(dir.join("metadata.snapshot")).ok();
        let log = std::fs::read(dir.join("metadata.log")).expect("log");
        std::fs::write(out.join(name), encode_input(0, snapshot.as_deref(), &log)).expect("write");
        std::fs::write(out.join(format!("{name}-resealed")), encode_input(1, snapshot.as_deref(), &log))
            .expect("write");
        let torn = &log[..log.len() - 5];
        std::fs::write(out.join(format!("{name}-torn")), encode_input(1, snapshot.as_deref(), torn)).expect("write");
    }
}
