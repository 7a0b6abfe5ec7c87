//! Recovery after a clean shutdown in front of index files that are well
//! formed (ascending, inside the segment) but do not describe the segment:
//! an offset index entry pointing inside a batch, or naming the wrong
//! offset. Such indexes are rebuilt from the log, so every batch stays
//! readable (found by the `log_recovery` fuzz target: a batch appended
//! after such an open could not be read back).

use std::path::Path;

use tributary_log::{AppendInfo, LogConfig, PartitionLog};
use tributary_record::builder::{BatchBuilder, RecordSpec};
use tributary_record::{BatchHeader, BatchIter, Compression};

const NOW: i64 = 1_700_000_000_000;

fn config() -> LogConfig {
    LogConfig { index_interval_bytes: 64, ..LogConfig::default() }
}

fn append(log: &mut PartitionLog) -> i64 {
    let mut b = BatchBuilder::new(Compression::None);
    b.push(RecordSpec::new(None, Some(b"a"), NOW));
    b.push(RecordSpec::new(None, Some(b"b"), NOW));
    let info = AppendInfo {
        leader_epoch: 0,
        max_timestamp: NOW,
        offset_delta_of_max_timestamp: 0,
        now_ms: NOW,
        log_append_time: false,
    };
    match log.append(&b.build(), &info).expect("append") {
        tributary_log::AppendOutcome::Appended { base_offset, .. } => base_offset,
        other => panic!("{other:?}"),
    }
}

/// Four batches of two records, closed cleanly; returns the batch positions.
fn closed_log(dir: &Path) -> Vec<u32> {
    let mut log = PartitionLog::open(dir, config(), true, 0, NOW).expect("open");
    for _ in 0..4 {
        append(&mut log);
    }
    log.close().expect("close");
    let bytes = std::fs::read(dir.join("00000000000000000000.log")).expect("segment");
    let mut positions = Vec::new();
    let mut at = 0;
    for item in BatchIter::new(&bytes) {
        positions.push(at as u32);
        at += item.expect("batch").1.len();
    }
    positions
}

fn write_index(dir: &Path, entries: &[(u32, u32)]) {
    let bytes: Vec<u8> = entries.iter().flat_map(|(o, p)| o.to_be_bytes().into_iter().chain(p.to_be_bytes())).collect();
    std::fs::write(dir.join("00000000000000000000.index"), bytes).expect("index");
}

/// Every offset reads back the batch holding it, including one appended after the open.
fn assert_every_offset_reads(dir: &Path) {
    let mut log = PartitionLog::open(dir, config(), true, 0, NOW).expect("reopen");
    let appended = append(&mut log);
    let end = log.log_end_offset();
    assert_eq!((appended, end), (8, 10));
    for offset in 0..end {
        let plan = log.plan_read(offset, end).expect("plan").unwrap_or_else(|| panic!("offset {offset} is lost"));
        let bytes = plan.execute(1 << 20, true).expect("read");
        let header = BatchHeader::parse(&bytes).expect("a batch");
        assert!(header.base_offset <= offset && offset <= header.last_offset(), "offset {offset} read {header:?}");
    }
}

#[test]
fn an_index_entry_inside_a_batch_is_not_trusted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let positions = closed_log(dir.path());
    write_index(dir.path(), &[(2, positions[1] + 5)]);
    assert_every_offset_reads(dir.path());
}

#[test]
fn an_index_entry_naming_the_wrong_offset_is_not_trusted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let positions = closed_log(dir.path());
    // The fourth batch holds offsets 6 and 7, not 2: trusted, reads of 2 to 5 would skip to 6.
    write_index(dir.path(), &[(2, positions[3])]);
    assert_every_offset_reads(dir.path());
}
