//! Replays the `metadata_replay` fuzz corpus and its regression inputs, and
//! writes the seeds (the files of real metadata directories, new and old
//! format) on request.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use tributary_metadata::disk::Disk;
use tributary_metadata::frame::{encode_entry, encode_small};
use tributary_metadata::fuzzing::{ImageFile, encode_image, kind_of, metadata_replay, parse_image};
use tributary_metadata::replay::Replayed;
use tributary_metadata::{
    BrokerListener, Entry, EntryPayload, LogId, LogOptions, MemberNode, Membership, MetadataCommand, MetadataStore,
    PartitionMeta, SimDisk, StoreOptions, TopicMeta, Vote,
};

fn fuzz_dir(kind: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz").join(kind).join("metadata_replay")
}

#[test]
fn replay_metadata_replay_corpus() {
    let (mut count, mut opened) = (0, 0);
    for kind in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(fuzz_dir(kind)) else { continue };
        for entry in entries {
            let path = entry.expect("entry").path();
            let data = std::fs::read(&path).expect("read");
            let outcome = std::panic::catch_unwind(|| metadata_replay(&data))
                .unwrap_or_else(|_| panic!("{} broke a promise", path.display()));
            opened += usize::from(matches!(outcome, Replayed::Opened { .. }));
            count += 1;
        }
    }
    eprintln!("metadata_replay: {count} inputs, {opened} opened a store");
    assert!(count >= 8, "expected the seed corpus, found {count} files");
    assert!(opened >= 4, "the seeds of sound directories must open: {opened} of {count} did");
}

#[test]
fn the_sound_seeds_open() {
    for (name, data) in seeds() {
        if !name.contains("torn") && !name.contains("quorum") {
            assert!(matches!(metadata_replay(&data), Replayed::Opened { .. }), "{name}");
        }
    }
}

fn topic(name: &str, id: u8, partitions: usize) -> TopicMeta {
    TopicMeta {
        name: name.to_string(),
        topic_id: [id; 16],
        partitions: (0..partitions)
            .map(|_| PartitionMeta {
                replicas: vec![1],
                leader: 1,
                leader_epoch: 0,
                isr: vec![1],
                partition_epoch: 0,
                adding_replicas: Vec::new(),
                removing_replicas: Vec::new(),
            })
            .collect(),
        configs: BTreeMap::from([("cleanup.policy".to_string(), "compact".to_string())]),
    }
}

/// Every kind of command, in a plausible order.
fn commands() -> Vec<MetadataCommand> {
    vec![
        MetadataCommand::InitCluster { cluster_id: "MkU3OEVBNTcwNTJENDM2Qk".into() },
        MetadataCommand::RegisterBroker {
            broker_id: 1,
            incarnation_id: [7; 16],
            listeners: vec![BrokerListener {
                name: "PLAINTEXT".into(),
                host: "localhost".into(),
                port: 9092,
                security_protocol: "PLAINTEXT".into(),
            }],
            rack: Some("r1".into()),
        },
        MetadataCommand::UnfenceBroker { broker_id: 1, broker_epoch: 2 },
        MetadataCommand::CreateTopic { topic: topic("orders", 1, 3) },
        MetadataCommand::CreateTopic { topic: topic("__consumer_offsets", 2, 2) },
        MetadataCommand::CreatePartitions { topic_id: [1; 16], partitions: topic("x", 0, 2).partitions },
        MetadataCommand::ChangePartition {
            topic_id: [1; 16],
            partition: 0,
            expected_partition_epoch: Some(0),
            leader: Some(1),
            isr: Some(vec![1]),
            replicas: None,
            adding: None,
            removing: None,
        },
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
        MetadataCommand::AllocateProducerIdBlock { broker_id: 1 },
        MetadataCommand::FenceBroker { broker_id: 1, broker_epoch: 2 },
        MetadataCommand::DeleteTopic { topic_id: [2; 16] },
        MetadataCommand::UnregisterBroker { broker_id: 1, broker_epoch: 2 },
    ]
}

/// The durable files of a simulated disk, as image files.
fn image_of(disk: &SimDisk) -> Vec<ImageFile> {
    let mut names = disk.list().expect("list");
    names.sort();
    names
        .into_iter()
        .filter_map(|name| {
            let (kind, index) = kind_of(&name)?;
            Some(ImageFile { kind, index, bytes: disk.file_bytes(&name).expect("file") })
        })
        .collect()
}

/// A store that ran every command with `options`.
fn store_files(options: StoreOptions) -> Vec<ImageFile> {
    let disk = SimDisk::new(1);
    let mut store = MetadataStore::open_on(disk.clone(), 1, options).expect("open");
    for command in commands() {
        store.propose(command).expect("propose");
    }
    drop(store);
    image_of(&disk)
}

/// A log written as a quorum's member would: a membership of three voters
/// (the single-node store refuses it).
fn quorum_files() -> Vec<ImageFile> {
    let disk = SimDisk::new(1);
    let mut log = tributary_metadata::MetadataLog::open(disk.clone(), LogOptions::default()).expect("log");
    let voters: BTreeMap<i32, MemberNode> =
        (1..=3).map(|id| (id, MemberNode { address: format!("host{id}:9093") })).collect();
    let membership = Membership { voter_sets: vec![voters.keys().copied().collect()], nodes: voters };
    let entries = [
        Entry { log_id: LogId::new(0, LogId::UNKNOWN_LEADER, 0), payload: EntryPayload::Membership(membership) },
        Entry::blank(LogId::new(1, 2, 1)),
        Entry::command(LogId::new(1, 2, 2), MetadataCommand::InitCluster { cluster_id: "q".into() }),
    ];
    log.append(&entries).expect("append");
    log.save_vote(&Vote { term: 1, voted_for: Some(2), committed: true }).expect("vote");
    log.save_committed(LogId::new(1, 2, 2)).expect("committed");
    drop(log);
    image_of(&disk)
}

/// The old format, as the old store wrote it.
fn legacy_files(fixture: &str) -> Vec<ImageFile> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/legacy").join(fixture);
    ["metadata.log", "metadata.snapshot"]
        .iter()
        .filter_map(|name| {
            let bytes = std::fs::read(dir.join(name)).ok()?;
            let (kind, index) = kind_of(name).expect("a legacy name");
            Some(ImageFile { kind, index, bytes })
        })
        .collect()
}

/// Seeds: directories as the store writes them (log only; segments rolled,
/// a snapshot and a purged log; a torn last segment; an interrupted vote
/// write), a quorum member's log, and the two old-format fixtures; each also
/// with the checksum-fixing flag.
fn seeds() -> Vec<(String, Vec<u8>)> {
    let log_only = store_files(StoreOptions { snapshot_every: 1000, ..StoreOptions::default() });
    let rolled = store_files(StoreOptions { log: LogOptions { segment_bytes: 600 }, snapshot_every: 6 });
    let mut torn = log_only.clone();
    if let Some(segment) = torn.iter_mut().rev().find(|f| f.kind == 0) {
        segment.bytes.truncate(segment.bytes.len() - 5);
    }
    let mut leftover = log_only.clone();
    let vote = encode_small(&Vote { term: 9, voted_for: Some(1), committed: true }).expect("vote");
    leftover.push(ImageFile { kind: 0x80 | 2, index: 0, bytes: vote });
    let stray = encode_entry(&Entry::blank(LogId::new(1, 1, 50))).expect("entry");
    leftover.push(ImageFile { kind: 0x80 | 1, index: 50, bytes: stray });
    let dirs = [
        ("log-only", log_only),
        ("segments-snapshot-purged", rolled),
        ("torn-last-segment", torn),
        ("tmp-leftovers", leftover),
        ("quorum-member", quorum_files()),
        ("legacy-with-snapshot", legacy_files("with-snapshot")),
        ("legacy-log-only", legacy_files("log-only")),
    ];
    let mut out = Vec::new();
    for (name, files) in dirs {
        assert!(files.iter().all(|f| f.bytes.len() <= usize::from(u16::MAX)), "{name}: a file too large for an image");
        assert_eq!(parse_image(&encode_image(0, &files)), (0, files.clone()), "{name}: image round trip");
        out.push((name.to_string(), encode_image(0, &files)));
        out.push((format!("{name}-resealed"), encode_image(1, &files)));
    }
    out
}

/// Inputs for the overflow at the last index (`u64::MAX`) of the
/// Raft-shaped log: the class the fuzzer found in the old store, ported
/// (see `tests/last_index.rs`). Checksums are fixed by the flag.
fn regressions() -> Vec<(&'static str, Vec<u8>)> {
    let last = u64::MAX;
    let blank = |index| encode_entry(&Entry::blank(LogId::new(1, 1, index))).expect("entry");
    let committed = encode_small(&LogId::new(1, 1, last)).expect("committed");
    let vote = encode_small(&Vote { term: last, voted_for: Some(2), committed: false }).expect("vote");
    let legacy = tributary_metadata::legacy::encode_legacy_record(last, &commands()[0]);
    let file = |kind, index, bytes: &Vec<u8>| ImageFile { kind, index, bytes: bytes.clone() };
    let images = [
        ("entry-at-index-u64-max-overflows-next-index", vec![file(0, last, &blank(last))]),
        ("committed-entry-at-index-u64-max-overflows-apply", vec![file(0, last, &blank(last)), file(3, 0, &committed)]),
        ("entry-after-index-u64-max-overflows-scan", vec![file(0, last, &[blank(last), blank(0)].concat())]),
        ("vote-in-term-u64-max-overflows-next-term", vec![file(2, 0, &vote)]),
        ("legacy-record-at-index-u64-max-overflows-next-index", vec![file(5, 0, &legacy)]),
    ];
    images.into_iter().map(|(name, files)| (name, encode_image(1, &files))).collect()
}

#[test]
#[ignore = "regenerates fuzz/corpus/metadata_replay and fuzz/regressions/metadata_replay"]
fn write_metadata_replay_corpus() {
    for (kind, inputs) in
        [("corpus", seeds()), ("regressions", regressions().into_iter().map(|(n, d)| (n.to_string(), d)).collect())]
    {
        let out = fuzz_dir(kind);
        std::fs::create_dir_all(&out).expect("dir");
        for (name, data) in inputs {
            std::fs::write(out.join(name), data).expect("write");
        }
    }
}
