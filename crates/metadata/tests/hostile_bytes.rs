//! Metadata directories with damaged or hostile files: opening them never
//! panics, never sizes a buffer by a damaged length, and either refuses with
//! an error or opens a store that keeps its promises (`replay::replay_files`).
//! Seeded; a failing seed prints itself.

use std::collections::BTreeMap;
use std::path::Path;

use tributary_metadata::disk::{Disk, SimRng};
use tributary_metadata::replay::{Replayed, replay_files};
use tributary_metadata::{LogOptions, MetadataCommand, MetadataStore, PartitionMeta, SimDisk, StoreOptions, TopicMeta};

const SEEDS: u64 = 2000;

/// A valid directory in the new format: segments, a snapshot, the marks.
fn new_format_files() -> BTreeMap<String, Vec<u8>> {
    let disk = SimDisk::new(7);
    let options = StoreOptions { log: LogOptions { segment_bytes: 600 }, snapshot_every: 12 };
    let mut store = MetadataStore::open_on(disk.clone(), 1, options).expect("open");
    store.propose(MetadataCommand::InitCluster { cluster_id: "c".into() }).expect("propose");
    for i in 0..30u8 {
        let topic = TopicMeta {
            name: format!("t{i}"),
            topic_id: [i; 16],
            partitions: vec![PartitionMeta {
                replicas: vec![1],
                leader: 1,
                leader_epoch: 0,
                isr: vec![1],
                partition_epoch: 0,
                adding_replicas: Vec::new(),
                removing_replicas: Vec::new(),
            }],
            configs: BTreeMap::from([("retention.ms".to_string(), i.to_string())]),
        };
        store.propose(MetadataCommand::CreateTopic { topic }).expect("propose");
    }
    store
        .log()
        .disk()
        .list()
        .expect("list")
        .into_iter()
        .map(|n| {
            let bytes = disk.file_bytes(&n).expect("file");
            (n, bytes)
        })
        .collect()
}

/// The old format, as the old store wrote it.
fn legacy_files() -> BTreeMap<String, Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/legacy/with-snapshot");
    ["metadata.log", "metadata.snapshot"]
        .iter()
        .map(|n| (n.to_string(), std::fs::read(dir.join(n)).expect("fixture")))
        .collect()
}

/// Re-seals the CRC of every whole entry frame, so damage reaches what the checksum guards.
fn reseal_entry_frames(bytes: &mut [u8]) {
    let mut pos = 0usize;
    while bytes.len() - pos >= 8 {
        let len = u32::from_be_bytes([bytes[pos], bytes[pos + 1], bytes[pos + 2], bytes[pos + 3]]) as usize;
        if bytes.len() - pos - 8 < len {
            return;
        }
        let crc = crc32c::crc32c(&bytes[pos + 8..pos + 8 + len]);
        bytes[pos + 4..pos + 8].copy_from_slice(&crc.to_be_bytes());
        pos += 8 + len;
    }
}

fn mutate(rng: &mut SimRng, files: &mut BTreeMap<String, Vec<u8>>) -> String {
    let names: Vec<String> = files.keys().cloned().collect();
    let Some(name) = names.get(rng.below_usize(names.len())).cloned() else {
        return "no file left".to_string();
    };
    let bytes = files.get_mut(&name).expect("file");
    match rng.below(8) {
        0 if !bytes.is_empty() => {
            for _ in 0..1 + rng.below(4) {
                let at = rng.below_usize(bytes.len());
                bytes[at] ^= 1 << rng.below(8);
            }
            format!("flip bits in {name}")
        }
        1 => {
            let keep = rng.below_usize(bytes.len() + 1);
            bytes.truncate(keep);
            format!("cut {name} to {keep}")
        }
        2 => {
            let n = rng.below_usize(64);
            bytes.extend((0..n).map(|_| rng.next_u64() as u8));
            format!("append {n} random bytes to {name}")
        }
        3 if bytes.len() >= 4 => {
            // A length field that claims a lot.
            let at = rng.below_usize(bytes.len() - 3);
            bytes[at..at + 4].copy_from_slice(&u32::MAX.to_be_bytes());
            format!("huge length at {at} in {name}")
        }
        4 if name.starts_with("segment-") && !bytes.is_empty() => {
            let at = rng.below_usize(bytes.len());
            bytes[at] = b"{}[]\"0,:x"[rng.below_usize(9)];
            reseal_entry_frames(bytes);
            format!("damage behind a valid checksum in {name}")
        }
        5 => {
            files.remove(&name);
            format!("remove {name}")
        }
        6 => {
            let index = rng.below(60);
            let bytes = files.remove(&name).expect("file");
            let to = if name.starts_with("snapshot-") {
                format!("snapshot-{index:020}.snap")
            } else {
                format!("segment-{index:020}.log")
            };
            files.insert(to.clone(), bytes);
            format!("rename {name} to {to}")
        }
        _ => {
            let n = rng.below_usize(200);
            *bytes = (0..n).map(|_| rng.next_u64() as u8).collect();
            format!("replace {name} with {n} random bytes")
        }
    }
}

#[test]
fn damaged_directories_are_refused_or_open_sound() {
    let bases = [new_format_files(), legacy_files()];
    let (mut opened, mut refused) = (0, 0);
    for seed in 0..SEEDS {
        let mut rng = SimRng::new(seed);
        let mut files = bases[(seed % 2) as usize].clone();
        let mut done = Vec::new();
        for _ in 0..1 + rng.below(3) {
            done.push(mutate(&mut rng, &mut files));
        }
        let list: Vec<(&str, &[u8])> = files.iter().map(|(n, b)| (n.as_str(), b.as_slice())).collect();
        let outcome = std::panic::catch_unwind(|| replay_files(&list, seed))
            .unwrap_or_else(|_| panic!("seed {seed} broke a promise after: {done:?}"));
        match outcome {
            Replayed::Opened { .. } => opened += 1,
            Replayed::Refused(line) => {
                assert!(!line.contains('\n'), "seed {seed}: a refusal is one line: {line}");
                refused += 1;
            }
        }
    }
    eprintln!("hostile bytes: {SEEDS} seeds, opened {opened}, refused {refused}");
    assert!(opened > 100 && refused > 100, "opened {opened}, refused {refused}");
}

#[test]
fn the_undamaged_bases_open() {
    for base in [new_format_files(), legacy_files()] {
        let list: Vec<(&str, &[u8])> = base.iter().map(|(n, b)| (n.as_str(), b.as_slice())).collect();
        assert!(matches!(replay_files(&list, 1), Replayed::Opened { .. }));
    }
}
