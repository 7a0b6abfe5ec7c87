//! Recovery in front of batch headers that parse but cannot be batches this
//! log wrote: offsets that run backwards, past `i64::MAX`, or further from
//! the segment's base than a segment holds. Such a batch is
//! the end of the valid log (found by the `log_recovery` fuzz target), both
//! after a clean shutdown (headers walked, not checksummed) and after an
//! unclean one (checksums fixed up, as a corruption that also hits the CRC).

use std::path::Path;

use tributary_log::{AppendInfo, LogConfig, PartitionLog};
use tributary_record::batch::{BATCH_HEADER_LEN, reseal};
use tributary_record::builder::{BatchBuilder, RecordSpec};
use tributary_record::{BatchHeader, Compression};

const NOW: i64 = 1_700_000_000_000;
/// Offsets within a batch header.
const BASE_OFFSET_AT: usize = 0;
const LAST_OFFSET_DELTA_AT: usize = 23;

fn append_three_batches(dir: &Path) {
    let mut log = PartitionLog::open(dir, LogConfig::default(), true, 0, NOW).expect("open");
    for _ in 0..3 {
        let mut b = BatchBuilder::new(Compression::None);
        b.push(RecordSpec::new(None, Some(b"a"), NOW));
        b.push(RecordSpec::new(None, Some(b"b"), NOW));
        let bytes = b.build();
        let info = AppendInfo {
            leader_epoch: 0,
            max_timestamp: NOW,
            offset_delta_of_max_timestamp: 0,
            now_ms: NOW,
            log_append_time: false,
        };
        log.append(&bytes, &info).expect("append");
    }
    log.close().expect("close");
}

/// Rewrites a field of the third batch (at offset 4) and its CRC.
fn corrupt_third_batch(dir: &Path, at: usize, value: &[u8]) {
    let path = dir.join("00000000000000000000.log");
    let mut bytes = std::fs::read(&path).expect("segment");
    let mut position = 0;
    for _ in 0..2 {
        position += BatchHeader::parse(&bytes[position..]).expect("header").total_len();
    }
    let end = position + BatchHeader::parse(&bytes[position..]).expect("header").total_len();
    bytes[position + at..position + at + value.len()].copy_from_slice(value);
    let (head, records) = bytes[position..end].split_at_mut(BATCH_HEADER_LEN);
    reseal(head, records);
    std::fs::write(&path, &bytes).expect("write");
}

fn reopen(dir: &Path, clean: bool) -> (i64, i64) {
    let log = PartitionLog::open(dir, LogConfig::default(), clean, 0, NOW).expect("reopen");
    (log.log_start_offset(), log.log_end_offset())
}

#[test]
fn a_batch_whose_offsets_run_backwards_ends_the_log() {
    for clean in [true, false] {
        let dir = tempfile::tempdir().expect("tempdir");
        append_three_batches(dir.path());
        corrupt_third_batch(dir.path(), LAST_OFFSET_DELTA_AT, &(-500i32).to_be_bytes());
        assert_eq!(reopen(dir.path(), clean), (0, 4), "clean shutdown: {clean}");
    }
}

#[test]
fn a_batch_whose_offsets_overflow_ends_the_log() {
    for clean in [true, false] {
        let dir = tempfile::tempdir().expect("tempdir");
        append_three_batches(dir.path());
        corrupt_third_batch(dir.path(), BASE_OFFSET_AT, &(i64::MAX - 1).to_be_bytes());
        assert_eq!(reopen(dir.path(), clean), (0, 4), "clean shutdown: {clean}");
    }
}

#[test]
fn a_batch_further_from_the_segment_base_than_u32_ends_the_log() {
    for clean in [true, false] {
        let dir = tempfile::tempdir().expect("tempdir");
        append_three_batches(dir.path());
        corrupt_third_batch(dir.path(), BASE_OFFSET_AT, &(4 + (1i64 << 34)).to_be_bytes());
        assert_eq!(reopen(dir.path(), clean), (0, 4), "clean shutdown: {clean}");
    }
}
