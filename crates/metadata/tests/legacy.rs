//! Directories written by the old store (fixtures/legacy, written by the old
//! code itself) open, migrated to the new format, with the old state.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use tributary_metadata::disk::{Disk, SimDisk};
use tributary_metadata::legacy::{LEGACY_LOG_FILE, LEGACY_SNAPSHOT_FILE, MIGRATED_MARKER, encode_legacy_record};
use tributary_metadata::{LogId, MetadataCommand, MetadataError, MetadataState, MetadataStore, StoreOptions};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/legacy").join(name)
}

/// A copy of a fixture directory.
fn copy_of(name: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for entry in std::fs::read_dir(fixture(name)).expect("fixture") {
        let entry = entry.expect("entry");
        std::fs::copy(entry.path(), dir.path().join(entry.file_name())).expect("copy");
    }
    dir
}

/// What the old store held after writing the fixtures (their README).
fn check_old_state(state: &MetadataState, applied: u64, producer_id_block_end: i64) {
    assert_eq!(state.cluster_id.as_deref(), Some("lEgAcYcLuStErIdAbCdEfG"));
    assert_eq!(state.topics.keys().collect::<Vec<_>>(), vec!["orders", "payments"]);
    assert_eq!(state.topics["orders"].partitions.len(), 3);
    assert_eq!(state.topics["orders"].configs, BTreeMap::from([("retention.ms".to_string(), "5".to_string())]));
    assert_eq!(state.topics["payments"].partitions.len(), 3);
    assert_eq!(state.topics["payments"].configs["cleanup.policy"], "compact");
    assert_eq!(state.default_broker_configs["log.retention.ms"], "60000");
    assert_eq!(state.broker_configs[&1]["log.cleaner.threads"], "2");
    assert_eq!(state.producer_id_block_end, producer_id_block_end);
    assert_eq!(state.last_applied, Some(LogId::new(1, 1, applied)));
}

#[test]
fn an_old_directory_with_snapshot_and_log_migrates_keeping_indexes() {
    let dir = copy_of("with-snapshot");
    let mut store = MetadataStore::open(dir.path(), 1).expect("open an old directory");
    check_old_state(store.state(), 1009, 1_000_000);
    assert!(!dir.path().join(LEGACY_LOG_FILE).exists() && !dir.path().join(LEGACY_SNAPSHOT_FILE).exists());
    assert!(!dir.path().join(MIGRATED_MARKER).exists());
    assert!(dir.path().join("snapshot-00000000000000001009.snap").exists());
    assert_eq!(store.term(), 1);
    let (id, _) = store.propose(MetadataCommand::AllocateProducerIds { block_end: 2_000_000 }).expect("propose");
    assert_eq!(id, LogId::new(1, 1, 1010), "the log continues after the old indexes");
    let state = store.state().clone();
    drop(store);
    let store = MetadataStore::open(dir.path(), 1).expect("reopen");
    assert_eq!(store.state(), &state);
}

#[test]
fn an_old_directory_with_only_a_log_migrates() {
    let dir = copy_of("log-only");
    let store = MetadataStore::open(dir.path(), 1).expect("open an old directory");
    check_old_state(store.state(), 9, 0);
}

#[test]
fn a_torn_tail_of_the_old_log_is_ignored_as_the_old_code_did() {
    let dir = copy_of("log-only");
    let mut bytes = std::fs::read(dir.path().join(LEGACY_LOG_FILE)).expect("read");
    let whole = bytes.len();
    bytes.extend_from_slice(&encode_legacy_record(10, &MetadataCommand::InitCluster { cluster_id: "x".into() })[..20]);
    std::fs::write(dir.path().join(LEGACY_LOG_FILE), &bytes).expect("write");
    let store = MetadataStore::open(dir.path(), 1).expect("open");
    check_old_state(store.state(), 9, 0);
    assert!(whole < bytes.len());
}

/// Old code: a command whose checksum held but which did not parse ended
/// replay there and the open cut it and everything after it away.
#[test]
fn an_old_command_with_a_valid_checksum_that_does_not_parse_stops_the_open() {
    let dir = copy_of("log-only");
    let path = dir.path().join(LEGACY_LOG_FILE);
    let mut bytes = std::fs::read(&path).expect("read");
    let bad_at = bytes.len();
    let mut bad = encode_legacy_record(10, &MetadataCommand::InitCluster { cluster_id: "x".into() });
    let payload_at = 16;
    bad[payload_at] = b'[';
    let crc = crc32c::crc32c(&bad[8..]);
    bad[4..8].copy_from_slice(&crc.to_be_bytes());
    bytes.extend_from_slice(&bad);
    bytes.extend_from_slice(&encode_legacy_record(11, &MetadataCommand::AllocateProducerIds { block_end: 5 }));
    std::fs::write(&path, &bytes).expect("write");
    let err = MetadataStore::open(dir.path(), 1).expect_err("must not open");
    let line = err.to_string();
    assert!(matches!(err, MetadataError::Corrupt { offset, .. } if offset == bad_at as u64), "{line}");
    assert!(line.contains(&path.display().to_string()) && line.contains(&format!("byte {bad_at}")), "{line}");
    assert_eq!(std::fs::read(&path).expect("read"), bytes, "the old files are kept as they were");
    assert!(!dir.path().join("vote").exists(), "nothing was migrated");
}

#[test]
fn a_crash_at_any_point_of_the_migration_leaves_an_old_or_a_migrated_directory() {
    let old_log = std::fs::read(fixture("with-snapshot").join(LEGACY_LOG_FILE)).expect("fixture");
    let old_snapshot = std::fs::read(fixture("with-snapshot").join(LEGACY_SNAPSHOT_FILE)).expect("fixture");
    let mut completed = false;
    for budget in 0..60u64 {
        for seed in 0..8 {
            let disk = SimDisk::new(budget * 100 + seed);
            disk.put_durable(LEGACY_LOG_FILE, &old_log);
            disk.put_durable(LEGACY_SNAPSHOT_FILE, &old_snapshot);
            disk.lose_power_after(budget);
            let first = MetadataStore::open_on(disk.clone(), 1, StoreOptions::default());
            if first.is_ok() && seed == 0 {
                completed = true;
            }
            drop(first);
            disk.crash();
            let store = MetadataStore::open_on(disk.clone(), 1, StoreOptions::default())
                .unwrap_or_else(|e| panic!("budget {budget} seed {seed}: {e}"));
            check_old_state(store.state(), 1009, 1_000_000);
            let names = disk.list().expect("list");
            assert!(!names.iter().any(|n| n == LEGACY_LOG_FILE || n == MIGRATED_MARKER), "{names:?}");
        }
    }
    assert!(completed, "the budgets reach a complete open");
}
