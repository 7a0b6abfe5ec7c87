use std::collections::BTreeSet;

use super::*;
use crate::command::MetadataCommand;
use crate::disk::{FaultPlan, FsDisk, SimDisk};
use crate::types::{EntryPayload, Membership};

fn small() -> LogOptions {
    LogOptions { segment_bytes: 300 }
}

fn cmd(term: u64, index: u64) -> Entry {
    Entry::command(LogId::new(term, 1, index), MetadataCommand::AllocateProducerIds { block_end: index as i64 })
}

fn entries(term: u64, range: std::ops::RangeInclusive<u64>) -> Vec<Entry> {
    range.map(|i| cmd(term, i)).collect()
}

fn segment_files(disk: &dyn Disk) -> Vec<String> {
    disk.list().expect("list").into_iter().filter(|n| parse_segment_name(n).is_some()).collect()
}

fn open_sim(disk: &SimDisk) -> MetadataLog<SimDisk> {
    MetadataLog::open(disk.clone(), small()).expect("open")
}

#[test]
fn appended_entries_read_back_across_segments_and_reopens() {
    let disk = SimDisk::new(1);
    let mut log = open_sim(&disk);
    assert_eq!(log.log_state(), LogState::default());
    let written = entries(1, 1..=40);
    log.append(&written[..25]).expect("append");
    log.append(&written[25..]).expect("append");
    assert_eq!(log.flush().expect("flush"), Some(LogId::new(1, 1, 40)));
    assert!(segment_files(&disk).len() > 3, "small segments roll: {:?}", segment_files(&disk));
    assert_eq!(log.entries(..).expect("read"), written);
    assert_eq!(log.entries(7..12).expect("read"), written[6..11].to_vec());
    assert_eq!(log.entries(39..=100).expect("read"), written[38..].to_vec());
    assert_eq!(log.entry(41).expect("read"), None);
    drop(log);
    disk.crash();
    let log = open_sim(&disk);
    assert_eq!(log.entries(..).expect("read"), written);
    assert_eq!(log.log_state().last, Some(LogId::new(1, 1, 40)));
}

#[test]
fn a_log_that_never_had_an_entry_starts_anywhere_then_stays_contiguous() {
    let disk = SimDisk::new(2);
    let mut log = open_sim(&disk);
    log.append(&entries(3, 5..=6)).expect("the first entry may be anywhere");
    let refused = |r: Result<(), MetadataError>| matches!(r, Err(MetadataError::Refused(_)));
    assert!(refused(log.append(&[cmd(3, 8)])), "a gap");
    assert!(refused(log.append(&[cmd(3, 6)])), "an overlap");
    assert!(refused(log.append(&[cmd(2, 7)])), "a lower term");
    let other_leader = Entry::blank(LogId::new(3, 2, 7));
    assert!(refused(log.append(&[other_leader])), "two leaders in one term");
    assert!(refused(log.append(&[cmd(4, 7), cmd(4, 9)])), "a gap inside a batch");
    assert_eq!(log.log_state().last, Some(LogId::new(3, 1, 6)), "a refused batch appends nothing");
    log.append(&[Entry::blank(LogId::new(4, 2, 7)), cmd(4, 8)].map(|mut e| {
        e.log_id.leader = 2;
        e
    }))
    .expect("a new term, a new leader");
    assert_eq!(log.poisoned(), None);
}

#[test]
fn truncate_cuts_a_suffix_durably_and_never_committed_or_purged_entries() {
    let disk = SimDisk::new(3);
    let mut log = open_sim(&disk);
    log.append(&entries(1, 1..=30)).expect("append");
    log.flush().expect("flush");
    log.save_committed(LogId::new(1, 1, 10)).expect("committed");
    assert!(matches!(log.truncate(10), Err(MetadataError::Refused(_))));
    log.truncate(12).expect("truncate");
    assert_eq!(log.log_state().last, Some(LogId::new(1, 1, 11)));
    log.truncate(50).expect("past the end: nothing to do");
    // The new leader's entries replace the cut ones.
    log.append(&entries(2, 12..=14)).expect("append after truncate");
    log.flush().expect("flush");
    drop(log);
    disk.crash();
    let mut log = open_sim(&disk);
    let got = log.entries(..).expect("read");
    assert_eq!(got.iter().map(|e| e.log_id.index).collect::<Vec<_>>(), (1..=14).collect::<Vec<_>>());
    assert_eq!(got[11].log_id.term, 2);
    log.purge(LogId::new(1, 1, 5)).expect("purge");
    assert!(matches!(log.truncate(5), Err(MetadataError::Refused(_))));
}

#[test]
fn purge_keeps_its_mark_deletes_whole_segments_and_may_pass_the_end() {
    let disk = SimDisk::new(4);
    let mut log = open_sim(&disk);
    log.append(&entries(1, 1..=40)).expect("append");
    log.flush().expect("flush");
    let before = segment_files(&disk).len();
    assert!(matches!(log.purge(LogId::new(9, 1, 20)), Err(MetadataError::Refused(_))), "wrong id for index 20");
    log.purge(LogId::new(1, 1, 20)).expect("purge");
    assert!(segment_files(&disk).len() < before, "whole segments below the mark are deleted");
    assert_eq!(log.first_index(), Some(21));
    assert_eq!(log.entry(20).expect("read"), None);
    assert_eq!(log.log_state(), LogState { last_purged: Some(LogId::new(1, 1, 20)), last: Some(LogId::new(1, 1, 40)) });
    drop(log);
    disk.crash();
    let mut log = open_sim(&disk);
    assert_eq!(log.first_index(), Some(21));
    assert_eq!(log.entries(..).expect("read"), entries(1, 21..=40));
    // A snapshot from the leader covers more than this log has.
    log.purge(LogId::new(3, 2, 100)).expect("purge past the end");
    assert_eq!(
        log.log_state(),
        LogState { last_purged: Some(LogId::new(3, 2, 100)), last: Some(LogId::new(3, 2, 100)) }
    );
    assert!(segment_files(&disk).is_empty());
    assert!(matches!(log.append(&[cmd(3, 100)]), Err(MetadataError::Refused(_))));
    let next = Entry::blank(LogId::new(3, 2, 101));
    log.append(std::slice::from_ref(&next)).expect("the log continues after the purge mark");
    log.flush().expect("flush");
    drop(log);
    disk.crash();
    let log = open_sim(&disk);
    assert_eq!(log.entries(..).expect("read"), vec![next]);
    assert_eq!(log.log_state().last_purged, Some(LogId::new(3, 2, 100)));
}

#[test]
fn votes_are_durable_and_never_go_back() {
    let disk = SimDisk::new(5);
    let mut log = open_sim(&disk);
    assert_eq!(log.read_vote(), None);
    let v = Vote { term: 4, voted_for: Some(2), committed: false };
    log.save_vote(&v).expect("vote");
    drop(log);
    disk.crash();
    let mut log = open_sim(&disk);
    assert_eq!(log.read_vote(), Some(v));
    assert!(matches!(
        log.save_vote(&Vote { term: 4, voted_for: Some(3), committed: false }),
        Err(MetadataError::Refused(_))
    ));
    assert!(matches!(
        log.save_vote(&Vote { term: 3, voted_for: Some(2), committed: true }),
        Err(MetadataError::Refused(_))
    ));
    log.save_vote(&Vote { term: 4, voted_for: Some(2), committed: true }).expect("won");
    assert_eq!(log.read_vote().map(|v| v.committed), Some(true));
}

#[test]
fn committed_is_saved_after_the_entries_it_names_are_durable() {
    let disk = SimDisk::new(6);
    let mut log = open_sim(&disk);
    log.append(&entries(1, 1..=5)).expect("append");
    assert!(matches!(log.save_committed(LogId::new(1, 1, 6)), Err(MetadataError::Refused(_))), "past the end");
    assert!(matches!(log.save_committed(LogId::new(2, 1, 3)), Err(MetadataError::Refused(_))), "wrong id");
    log.save_committed(LogId::new(1, 1, 5)).expect("committed (flushes first)");
    assert!(matches!(log.save_committed(LogId::new(1, 1, 4)), Err(MetadataError::Refused(_))), "backwards");
    drop(log);
    disk.crash();
    let log = open_sim(&disk);
    assert_eq!(log.read_committed(), Some(LogId::new(1, 1, 5)));
    assert_eq!(log.entries(..).expect("read").len(), 5, "the committed entries survived the crash");
}

/// Old code: a failed write left its partial frame in the file and the next
/// append went after it, so replay stopped at the partial frame and lost
/// every acknowledged entry behind it. Here the partial frame is cut away,
/// so shorter entries written over it and a roll after them leave a clean
/// segment behind.
#[test]
fn a_failed_write_is_cut_back_and_the_log_stays_usable() {
    let big = |index: u64| {
        let topic = crate::command::TopicMeta {
            name: "x".repeat(600),
            topic_id: [1; 16],
            partitions: Vec::new(),
            configs: Default::default(),
        };
        Entry::command(LogId::new(1, 1, index), MetadataCommand::CreateTopic { topic })
    };
    for seed in 0..60 {
        let disk = SimDisk::new(seed);
        let mut log = open_sim(&disk);
        log.append(&entries(1, 1..=3)).expect("append");
        log.flush().expect("flush");
        disk.set_faults(FaultPlan { write_per_mille: 1000, ..FaultPlan::none() });
        assert!(matches!(log.append(&[big(4)]), Err(MetadataError::Io { .. })));
        disk.set_faults(FaultPlan::none());
        assert_eq!(log.poisoned(), None, "seed {seed}: a cut-back write does not poison");
        assert_eq!(log.log_state().last, Some(LogId::new(1, 1, 3)));
        // Short entries over the cut, enough to roll past it.
        let acked = entries(1, 4..=12);
        log.append(&acked).expect("append after the failure");
        log.flush().expect("flush");
        drop(log);
        disk.crash();
        let log = MetadataLog::open(disk.clone(), small()).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        assert_eq!(log.entries(..).expect("read"), entries(1, 1..=12), "seed {seed}");
    }
}

/// Old code: after a failed fsync the next command reused the index and
/// replay then skipped the acknowledged one.
#[test]
fn a_failed_fsync_refuses_every_later_write_until_reopened() {
    let disk = SimDisk::new(7);
    let mut log = open_sim(&disk);
    log.append(&entries(1, 1..=3)).expect("append");
    log.flush().expect("flush");
    log.append(&[cmd(1, 4)]).expect("append");
    disk.set_faults(FaultPlan { sync_per_mille: 1000, ..FaultPlan::none() });
    assert!(matches!(log.flush(), Err(MetadataError::Io { .. })));
    disk.set_faults(FaultPlan::none());
    assert!(log.poisoned().is_some());
    let poisoned = |r: Result<(), MetadataError>| matches!(r, Err(MetadataError::Poisoned { .. }));
    assert!(poisoned(log.append(&[cmd(1, 5)])));
    assert!(poisoned(log.append(&[cmd(1, 4)])), "the failed index is not reused either");
    assert!(matches!(log.flush(), Err(MetadataError::Poisoned { .. })));
    assert!(poisoned(log.truncate(2)));
    assert!(poisoned(log.purge(LogId::new(1, 1, 1))));
    assert!(poisoned(log.save_vote(&Vote { term: 9, voted_for: None, committed: false })));
    assert!(poisoned(log.save_committed(LogId::new(1, 1, 1))));
    assert_eq!(log.entries(1..=3).expect("reads still work"), entries(1, 1..=3));
    drop(log);
    disk.crash();
    let mut log = open_sim(&disk);
    assert_eq!(log.poisoned(), None);
    let survived = log.log_state().last.map(|l| l.index);
    assert!(survived == Some(3) || survived == Some(4), "{survived:?}");
    let next = survived.unwrap_or(3) + 1;
    log.append(&[cmd(1, next)]).expect("append after reopen");
    log.flush().expect("flush");
}

#[test]
fn an_unreadable_entry_behind_a_valid_checksum_stops_the_open_with_file_and_offset() {
    let dir = tempfile::tempdir().expect("tempdir");
    let disk = FsDisk::open(dir.path()).expect("disk");
    let mut log = MetadataLog::open(disk.clone(), LogOptions::default()).expect("open");
    log.append(&entries(1, 1..=3)).expect("append");
    log.flush().expect("flush");
    drop(log);
    let name = segment::segment_name(1);
    let path = dir.path().join(&name);
    let mut bytes = std::fs::read(&path).expect("read");
    // Rewrite the second entry's JSON into something that does not parse and re-seal its checksum.
    let first_len = 8 + u32::from_be_bytes(bytes[0..4].try_into().expect("len")) as usize;
    let body_len = u32::from_be_bytes(bytes[first_len..first_len + 4].try_into().expect("len")) as usize;
    let json_at = first_len + 8 + frame::ENTRY_FIXED_BYTES;
    bytes[json_at] = b'[';
    let crc = crc32c::crc32c(&bytes[first_len + 8..first_len + 8 + body_len]);
    bytes[first_len + 4..first_len + 8].copy_from_slice(&crc.to_be_bytes());
    std::fs::write(&path, &bytes).expect("write");
    let err = MetadataLog::open(disk, LogOptions::default()).expect_err("must refuse to start");
    let line = err.to_string();
    assert!(matches!(err, MetadataError::Corrupt { offset, .. } if offset == first_len as u64), "{line}");
    assert!(line.contains(&name) && line.contains(&format!("byte {first_len}")), "{line}");
    assert!(line.contains("start the version that wrote it"), "{line}");
    assert!(!line.contains('\n'));
    assert_eq!(std::fs::read(&path).expect("read"), bytes, "nothing was cut");
}

#[test]
fn a_torn_tail_is_cut_and_later_appends_follow_the_last_good_entry() {
    let dir = tempfile::tempdir().expect("tempdir");
    let disk = FsDisk::open(dir.path()).expect("disk");
    let mut log = MetadataLog::open(disk.clone(), LogOptions::default()).expect("open");
    log.append(&entries(1, 1..=3)).expect("append");
    log.flush().expect("flush");
    drop(log);
    let path = dir.path().join(segment::segment_name(1));
    let good_len = std::fs::metadata(&path).expect("meta").len();
    let mut f = std::fs::OpenOptions::new().append(true).open(&path).expect("open");
    std::io::Write::write_all(&mut f, &[0, 0, 0, 60, 1, 2, 3]).expect("write");
    drop(f);
    let mut log = MetadataLog::open(disk.clone(), LogOptions::default()).expect("reopen");
    assert_eq!(std::fs::metadata(&path).expect("meta").len(), good_len);
    log.append(&[cmd(1, 4)]).expect("append");
    log.flush().expect("flush");
    drop(log);
    let log = MetadataLog::open(disk, LogOptions::default()).expect("reopen");
    assert_eq!(log.entries(..).expect("read"), entries(1, 1..=4));
}

#[test]
fn damage_that_a_crash_cannot_explain_stops_the_open() {
    // A torn frame in a segment that later segments follow.
    let disk = SimDisk::new(8);
    let mut log = open_sim(&disk);
    log.append(&entries(1, 1..=30)).expect("append");
    log.flush().expect("flush");
    drop(log);
    let first = segment::segment_name(1);
    let mut bytes = disk.file_bytes(&first).expect("segment");
    let last = bytes.len() - 2;
    bytes[last] ^= 0x55;
    disk.put_durable(&first, &bytes);
    let err = MetadataLog::open(disk.clone(), small()).expect_err("refused");
    assert!(err.to_string().contains("later segments follow"), "{err}");

    // A torn tail that would cut a committed entry.
    let disk = SimDisk::new(9);
    let mut log = open_sim(&disk);
    log.append(&entries(1, 1..=3)).expect("append");
    log.save_committed(LogId::new(1, 1, 3)).expect("committed");
    drop(log);
    let name = segment::segment_name(1);
    let mut bytes = disk.file_bytes(&name).expect("segment");
    let last = bytes.len() - 2;
    bytes[last] ^= 0x55;
    disk.put_durable(&name, &bytes);
    let err = MetadataLog::open(disk, small()).expect_err("refused");
    assert!(err.to_string().contains("was committed"), "{err}");
}

#[test]
fn a_segment_larger_than_any_segment_can_be_is_refused_unread() {
    let dir = tempfile::tempdir().expect("tempdir");
    let disk = FsDisk::open(dir.path()).expect("disk");
    let f = std::fs::File::create(dir.path().join(segment::segment_name(1))).expect("create");
    f.set_len(8 << 30).expect("sparse 8 GiB");
    drop(f);
    let err = MetadataLog::open(disk, LogOptions::default()).expect_err("refused");
    assert!(matches!(err, MetadataError::Corrupt { .. }), "{err}");
}

#[test]
fn a_damaged_vote_file_stops_the_open() {
    let disk = SimDisk::new(10);
    let mut log = open_sim(&disk);
    log.save_vote(&Vote { term: 2, voted_for: Some(1), committed: true }).expect("vote");
    drop(log);
    let mut bytes = disk.file_bytes(VOTE_FILE).expect("vote file");
    bytes[9] ^= 1;
    disk.put_durable(VOTE_FILE, &bytes);
    let err = MetadataLog::open(disk, small()).expect_err("refused");
    assert!(err.to_string().contains(VOTE_FILE), "{err}");
}

#[test]
fn membership_entries_round_trip() {
    let disk = SimDisk::new(11);
    let mut log = open_sim(&disk);
    let mut m = Membership::single(1, "a:9093");
    m.voter_sets.push(BTreeSet::from([1, 2, 3]));
    let e = Entry { log_id: LogId::new(1, 1, 1), payload: EntryPayload::Membership(m) };
    log.append(std::slice::from_ref(&e)).expect("append");
    log.flush().expect("flush");
    drop(log);
    assert_eq!(open_sim(&disk).entries(..).expect("read"), vec![e]);
}

#[test]
fn an_unknown_leader_agrees_with_any_but_two_known_leaders_of_a_term_do_not() {
    let disk = SimDisk::new(12);
    let mut log = open_sim(&disk);
    let id = |leader, index| LogId::new(5, leader, index);
    log.append(&[
        Entry::blank(id(LogId::UNKNOWN_LEADER, 0)),
        Entry::blank(id(2, 1)),
        Entry::blank(id(LogId::UNKNOWN_LEADER, 2)),
    ])
    .expect("unknown leaders fit a known one");
    assert!(
        matches!(log.append(&[Entry::blank(id(3, 3))]), Err(MetadataError::Refused(_))),
        "term 5 has leader 2, even with an unknown one last"
    );
    log.append(&[Entry::blank(id(2, 3))]).expect("the same leader");
    log.flush().expect("flush");
    drop(log);
    let mut log = open_sim(&disk);
    assert!(
        matches!(log.append(&[Entry::blank(id(3, 4))]), Err(MetadataError::Refused(_))),
        "remembered across a reopen"
    );
    log.truncate(2).expect("truncate");
    log.append(&[Entry::blank(id(LogId::UNKNOWN_LEADER, 2))]).expect("an unknown leader after a truncation");
}
