//! Metadata directories that name the last index (or term) there is,
//! `u64::MAX`, with their checksums intact: nothing can follow such an
//! entry, so the open refuses the directory with an error instead of
//! overflowing the next index (a panic with overflow checks, index 0 reused
//! without them). The old format's replay ends its valid log at such a
//! record, and refuses such a snapshot, as it did before the migration
//! existed. (The class was found by the `metadata_replay` fuzz target in
//! the old store; these are its cases in the Raft-shaped log.)

use tributary_metadata::frame::{encode_entry, encode_small, encode_snapshot};
use tributary_metadata::legacy::{LEGACY_LOG_FILE, LEGACY_SNAPSHOT_FILE, encode_legacy_record};
use tributary_metadata::replay::{Replayed, replay_files};
use tributary_metadata::{
    Entry, LogId, MetadataCommand, MetadataError, MetadataState, MetadataStore, SimDisk, SnapshotMeta, StoreOptions,
    Vote,
};

const LAST: u64 = u64::MAX;

fn segment(base: u64) -> String {
    format!("segment-{base:020}.log")
}

fn blank(term: u64, index: u64) -> Vec<u8> {
    encode_entry(&Entry::blank(LogId::new(term, 1, index))).expect("encode")
}

fn refusal(files: &[(String, Vec<u8>)]) -> String {
    let list: Vec<(&str, &[u8])> = files.iter().map(|(n, b)| (n.as_str(), b.as_slice())).collect();
    match replay_files(&list, 1) {
        Replayed::Refused(line) => line,
        Replayed::Opened { entries } => panic!("opened with {entries} entries"),
    }
}

#[test]
fn an_entry_at_the_last_index_refuses_the_open() {
    let line = refusal(&[(segment(LAST), blank(1, LAST))]);
    assert!(line.contains("the last there is"), "{line}");
}

#[test]
fn a_committed_entry_at_the_last_index_is_applied_then_the_open_refused() {
    let committed = encode_small(&LogId::new(1, 1, LAST)).expect("encode");
    let line = refusal(&[(segment(LAST), blank(1, LAST)), ("committed".into(), committed)]);
    assert!(line.contains("the last there is"), "{line}");
}

#[test]
fn an_entry_after_the_last_index_is_damage() {
    let line = refusal(&[(segment(LAST), [blank(1, LAST), blank(1, 0)].concat())]);
    assert!(line.contains("follows the last index there is"), "{line}");
}

#[test]
fn a_segment_after_one_ending_at_the_last_index_is_damage() {
    let line =
        refusal(&[(segment(LAST - 1), [blank(1, LAST - 1), blank(1, LAST)].concat()), (segment(LAST), blank(1, LAST))]);
    assert!(line.contains("is damaged"), "{line}");
}

#[test]
fn a_snapshot_at_the_last_index_refuses_the_open() {
    let state = MetadataState { last_applied: Some(LogId::new(1, 1, LAST)), ..MetadataState::default() };
    let meta = SnapshotMeta {
        last_included: LogId::new(1, 1, LAST),
        membership: state.membership.clone(),
        snapshot_id: "last".into(),
    };
    let snapshot = encode_snapshot(&meta, &state).expect("encode");
    let line = refusal(&[(format!("snapshot-{LAST:020}.snap"), snapshot)]);
    assert!(line.contains("the last there is"), "{line}");
}

#[test]
fn a_vote_in_the_last_term_refuses_the_open() {
    let vote = encode_small(&Vote { term: LAST, voted_for: Some(2), committed: false }).expect("encode");
    let line = refusal(&[("vote".into(), vote)]);
    assert!(line.contains("the last there is"), "{line}");
}

#[test]
fn an_old_format_record_at_the_last_index_ends_the_old_log() {
    let disk = SimDisk::new(1);
    let init = MetadataCommand::InitCluster { cluster_id: "c".into() };
    let late = MetadataCommand::InitCluster { cluster_id: "late".into() };
    let after = MetadataCommand::AllocateProducerIds { block_end: 5000 };
    let log = [encode_legacy_record(1, &init), encode_legacy_record(LAST, &late), encode_legacy_record(2, &after)];
    disk.put_durable(LEGACY_LOG_FILE, &log.concat());
    let store = MetadataStore::open_on(disk, 1, StoreOptions::default()).expect("open");
    assert_eq!(store.state().cluster_id.as_deref(), Some("c"));
    assert_eq!(store.state().producer_id_block_end, 0, "nothing after the record at the last index is replayed");
    assert!(store.state().applied_index() < LAST);
}

#[test]
fn an_old_format_snapshot_at_the_last_index_is_refused() {
    let disk = SimDisk::new(1);
    let snapshot = format!(
        r#"{{"index":{LAST},"state":{{"cluster_id":"c","topics":{{}},"default_broker_configs":{{}},"broker_configs":{{}},"producer_id_block_end":0}}}}"#
    );
    disk.put_durable(LEGACY_SNAPSHOT_FILE, snapshot.as_bytes());
    let err = MetadataStore::open_on(disk, 1, StoreOptions::default()).expect_err("refused");
    assert!(matches!(err, MetadataError::BadSnapshot { .. }), "{err}");
}
