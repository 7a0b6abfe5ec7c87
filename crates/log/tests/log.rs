//! Behaviour of the partition log through its public API: append, read,
//! roll, recovery from torn tails, idempotence across restarts, retention,
//! DeleteRecords and timestamp lookups.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;

use proptest::prelude::*;
use tributary_log::producer::SequenceCheck;
use tributary_log::{AppendInfo, AppendOutcome, LogConfig, LogError, LogOffsets, PartitionLog};
use tributary_record::builder::{BatchBuilder, RecordSpec};
use tributary_record::{BatchHeader, BatchIter, Compression};

fn small_segments() -> LogConfig {
    LogConfig { segment_bytes: 4096, index_interval_bytes: 256, ..LogConfig::default() }
}

fn batch(records: usize, value_len: usize, timestamp: i64) -> Vec<u8> {
    let mut b = BatchBuilder::new(Compression::None);
    for i in 0..records {
        b.push(RecordSpec::new(Some(format!("k{i}").as_bytes()), Some(&vec![b'x'; value_len]), timestamp + i as i64));
    }
    b.build()
}

fn idempotent_batch(pid: i64, epoch: i16, seq: i32, records: usize) -> Vec<u8> {
    let mut b = BatchBuilder::new(Compression::None).producer(pid, epoch, seq);
    for _ in 0..records {
        b.push(RecordSpec::new(None, Some(b"v"), 1000));
    }
    b.build()
}

fn info(bytes: &[u8]) -> AppendInfo {
    let h = BatchHeader::parse(bytes).expect("header");
    AppendInfo {
        leader_epoch: 0,
        max_timestamp: h.max_timestamp,
        offset_delta_of_max_timestamp: h.last_offset_delta,
        now_ms: h.max_timestamp,
        log_append_time: false,
    }
}

fn append(log: &mut PartitionLog, bytes: Vec<u8>) -> AppendOutcome {
    let i = info(&bytes);
    log.append(&bytes, &i).expect("append")
}

fn flush(log: &mut PartitionLog) {
    if let Some(plan) = log.flush_plan() {
        let r = plan.execute();
        log.complete_flush(&plan, r).expect("flush");
    }
}

/// Reads every batch from `from` to the durable end, returning headers.
fn read_all(log: &PartitionLog, from: i64) -> Vec<BatchHeader> {
    let mut out = Vec::new();
    let mut offset = from;
    let end = log.durable_offset();
    while offset < end {
        let Some(plan) = log.plan_read(offset, end).expect("plan") else {
            break;
        };
        let bytes = plan.execute(1 << 20, true).expect("read");
        assert!(!bytes.is_empty(), "read at {offset} returned nothing before the end {end}");
        for item in BatchIter::new(&bytes) {
            let (h, raw) = item.expect("whole batches only");
            assert!(tributary_record::batch::crc_matches(raw));
            offset = h.next_offset();
            out.push(h);
        }
    }
    out
}

fn open(dir: &Path, config: LogConfig, clean: bool) -> PartitionLog {
    PartitionLog::open(dir, config, clean, 0, 0).expect("open")
}

#[test]
fn append_assigns_offsets_and_reads_respect_the_watermark() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), LogConfig::default(), true);
    assert_eq!(
        append(&mut log, batch(3, 10, 100)),
        AppendOutcome::Appended { base_offset: 0, last_offset: 2, log_append_time_ms: -1 }
    );
    assert_eq!(
        append(&mut log, batch(2, 10, 200)),
        AppendOutcome::Appended { base_offset: 3, last_offset: 4, log_append_time_ms: -1 }
    );
    assert_eq!(log.log_end_offset(), 5);
    assert_eq!(log.durable_offset(), 0, "nothing is durable before a flush");
    assert!(log.plan_read(0, log.durable_offset()).expect("plan").is_none());
    flush(&mut log);
    assert_eq!(log.durable_offset(), 5);
    let headers = read_all(&log, 0);
    assert_eq!(headers.iter().map(|h| h.base_offset).collect::<Vec<_>>(), vec![0, 3]);
    // Reading from inside a batch returns that whole batch (the client skips).
    let plan = log.plan_read(4, 5).expect("plan").expect("data");
    let bytes = plan.execute(1 << 20, true).expect("read");
    assert_eq!(BatchHeader::parse(&bytes).expect("header").base_offset, 3);
    assert!(matches!(log.plan_read(6, 5), Err(LogError::OffsetOutOfRange { .. })));
}

#[test]
fn first_batch_is_returned_whole_even_when_larger_than_max_bytes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), LogConfig::default(), true);
    append(&mut log, batch(1, 5000, 1));
    append(&mut log, batch(1, 10, 2));
    flush(&mut log);
    let plan = log.plan_read(0, 2).expect("plan").expect("data");
    let one = plan.execute(100, true).expect("read");
    assert_eq!(BatchIter::new(&one).count(), 1);
    assert!(one.len() > 5000);
    assert!(plan.execute(100, false).expect("read").is_empty(), "without min_one nothing fits");
}

#[test]
fn rolls_by_size_and_finds_offsets_in_every_segment() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), small_segments(), true);
    for i in 0..100 {
        append(&mut log, batch(2, 100, i * 10));
    }
    flush(&mut log);
    assert!(log.segment_count() > 5, "{} segments", log.segment_count());
    for offset in [0, 1, 57, 133, 198, 199] {
        let plan = log.plan_read(offset, 200).expect("plan").expect("data");
        let bytes = plan.execute(300, true).expect("read");
        let h = BatchHeader::parse(&bytes).expect("header");
        assert!(h.base_offset <= offset && offset <= h.last_offset(), "offset {offset} in {h:?}");
    }
    assert_eq!(read_all(&log, 0).len(), 100);
}

#[test]
fn recovery_cuts_a_torn_tail_and_keeps_what_was_durable() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let mut log = open(dir.path(), small_segments(), true);
        for i in 0..30 {
            append(&mut log, batch(1, 200, i));
        }
        flush(&mut log);
        // Dropped without close: an unclean stop.
    }
    // A torn write: half a batch at the end of the active segment.
    let active = std::fs::read_dir(dir.path())
        .expect("dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .max()
        .expect("a segment");
    let partial = batch(1, 200, 99);
    OpenOptions::new().append(true).open(&active).expect("open").write_all(&partial[..100]).expect("write");
    let log = open(dir.path(), small_segments(), false);
    assert_eq!(log.log_end_offset(), 30);
    assert_eq!(read_all(&log, 0).len(), 30);
}

#[test]
fn recovery_cuts_at_a_corrupt_batch_and_drops_later_segments() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let mut log = open(dir.path(), small_segments(), true);
        for i in 0..40 {
            append(&mut log, batch(1, 200, i));
        }
        flush(&mut log);
    }
    let mut segments: Vec<_> = std::fs::read_dir(dir.path())
        .expect("dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    segments.sort();
    assert!(segments.len() >= 3);
    // Flip a byte inside the second segment's second batch (covered by the CRC).
    let victim = &segments[1];
    let mut bytes = std::fs::read(victim).expect("read");
    let first_len = BatchHeader::parse(&bytes).expect("header").total_len();
    bytes[first_len + 100] ^= 0xff;
    std::fs::write(victim, &bytes).expect("write");
    // No checkpoint: every segment is validated.
    std::fs::remove_file(dir.path().join("tributary-checkpoint")).expect("rm");
    let log = open(dir.path(), small_segments(), false);
    let base_of_victim: i64 = victim.file_stem().and_then(|s| s.to_str()).and_then(|s| s.parse().ok()).expect("base");
    assert_eq!(log.log_end_offset(), base_of_victim + 1, "log ends before the corrupt batch");
    assert_eq!(log.segment_count(), 2);
    assert_eq!(read_all(&log, 0).len() as i64, base_of_victim + 1);
}

#[test]
fn missing_indexes_are_rebuilt() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let mut log = open(dir.path(), small_segments(), true);
        for i in 0..50 {
            append(&mut log, batch(1, 100, i));
        }
        log.close().expect("close");
    }
    for entry in std::fs::read_dir(dir.path()).expect("dir") {
        let p = entry.expect("entry").path();
        if p.extension().is_some_and(|e| e == "index" || e == "timeindex") {
            std::fs::remove_file(p).expect("rm");
        }
    }
    let log = open(dir.path(), small_segments(), true);
    assert_eq!(log.log_end_offset(), 50);
    assert_eq!(read_all(&log, 17).first().map(|h| h.base_offset), Some(17));
}

#[test]
fn idempotent_retries_survive_restarts() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let mut log = open(dir.path(), small_segments(), true);
        append(&mut log, idempotent_batch(9, 0, 0, 3));
        append(&mut log, idempotent_batch(9, 0, 3, 2));
        flush(&mut log);
        // unclean stop: state must be rebuilt from the log
    }
    let mut log = open(dir.path(), small_segments(), false);
    let retry = idempotent_batch(9, 0, 3, 2);
    assert_eq!(
        log.check_sequence(&BatchHeader::parse(&retry).expect("h")).expect("check"),
        SequenceCheck::Duplicate(tributary_log::producer::BatchMetadata {
            first_sequence: 3,
            last_sequence: 4,
            base_offset: 3,
            last_offset_delta: 1,
            timestamp: 1000
        })
    );
    assert_eq!(append(&mut log, retry), AppendOutcome::Duplicate { base_offset: 3, last_offset: 4 });
    let gap = idempotent_batch(9, 0, 7, 1);
    let i = info(&gap);
    assert!(matches!(log.append(&gap, &i), Err(LogError::OutOfOrderSequence { .. })));
    assert_eq!(
        append(&mut log, idempotent_batch(9, 0, 5, 1)),
        AppendOutcome::Appended { base_offset: 5, last_offset: 5, log_append_time_ms: -1 }
    );
    log.close().expect("close");
    // After a clean close the snapshot carries the state.
    let mut log = open(dir.path(), small_segments(), true);
    assert_eq!(
        append(&mut log, idempotent_batch(9, 0, 5, 1)),
        AppendOutcome::Duplicate { base_offset: 5, last_offset: 5 }
    );
}

#[test]
fn retention_by_size_and_time_and_delete_records() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = LogConfig { retention_bytes: 8192, ..small_segments() };
    let mut log = open(dir.path(), config, true);
    for i in 0..100 {
        append(&mut log, batch(1, 300, 1_000 + i));
    }
    flush(&mut log);
    let before = log.size_bytes();
    let (deleted, retired) = log.apply_retention(2_000, log.durable_offset()).expect("retention");
    assert!(deleted > 0);
    // The dropped segments' files wait, renamed, until the caller unlinks them.
    assert!(deleted_files(dir.path()) >= deleted, "at least each dropped segment's .log");
    retired.remove();
    assert_eq!(deleted_files(dir.path()), 0);
    assert!(log.size_bytes() <= 8192 + 4096, "{} of {before} bytes left", log.size_bytes());
    let start = log.log_start_offset();
    assert!(start > 0);
    assert!(matches!(log.plan_read(start - 1, 100), Err(LogError::OffsetOutOfRange { .. })));

    // DeleteRecords moves the start inside a segment and survives a restart.
    let (low, retired) = log.delete_records(start + 3, log.durable_offset(), 2_000).expect("delete records");
    retired.remove();
    assert_eq!(low, start + 3);
    assert!(log.delete_records(500, log.durable_offset(), 2_000).is_err(), "beyond the high watermark");
    drop(log);
    let mut log = open(dir.path(), config, false);
    assert_eq!(log.log_start_offset(), start + 3);

    // Time: everything older than retention.ms goes, the log stays writable. A crash before the
    // renamed files are unlinked leaves them behind; the next open removes them.
    log.set_config(LogConfig { retention_ms: 10, retention_bytes: -1, ..config });
    let (_, retired) = log.apply_retention(1_000_000, log.durable_offset()).expect("retention");
    assert!(deleted_files(dir.path()) > 0);
    std::mem::forget(retired);
    drop(log);
    let mut log = open(dir.path(), LogConfig { retention_ms: 10, retention_bytes: -1, ..config }, false);
    assert_eq!(deleted_files(dir.path()), 0, "open removes files a crash left renamed");
    assert_eq!(log.log_start_offset(), 100);
    assert_eq!(log.log_end_offset(), 100);
    assert_eq!(
        append(&mut log, batch(1, 10, 5)),
        AppendOutcome::Appended { base_offset: 100, last_offset: 100, log_append_time_ms: -1 }
    );
}

#[test]
fn timestamp_lookups() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), small_segments(), true);
    for i in 0..50i64 {
        append(&mut log, batch(2, 100, 1_000 + i * 10)); // records at t and t+1
    }
    flush(&mut log);
    assert_eq!(log.offset_for_timestamp(0, 100).expect("lookup"), Some((0, 1_000)));
    assert_eq!(log.offset_for_timestamp(1_001, 100).expect("lookup"), Some((1, 1_001)));
    assert_eq!(log.offset_for_timestamp(1_005, 100).expect("lookup"), Some((2, 1_010)));
    assert_eq!(log.offset_for_timestamp(1_251, 100).expect("lookup"), Some((51, 1_251)));
    assert_eq!(log.offset_for_timestamp(9_999, 100).expect("lookup"), None);
    assert_eq!(log.max_timestamp(100), Some((99, 1_491)));
}

#[test]
fn log_append_time_is_stamped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), LogConfig::default(), true);
    let bytes = batch(2, 1, 5);
    let i = AppendInfo { log_append_time: true, now_ms: 777_000, ..info(&bytes) };
    assert_eq!(
        log.append(&bytes, &i).expect("append"),
        AppendOutcome::Appended { base_offset: 0, last_offset: 1, log_append_time_ms: 777_000 }
    );
    flush(&mut log);
    let read = log.plan_read(0, 2).expect("plan").expect("data").execute(1 << 20, true).expect("read");
    let h = BatchHeader::parse(&read).expect("header");
    assert!(h.is_log_append_time());
    assert_eq!(h.max_timestamp, 777_000);
    assert!(tributary_record::batch::crc_matches(&read));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Whatever prefix of the unflushed tail survives a crash, recovery
    /// yields exactly a prefix of the appended batches, every one intact.
    #[test]
    fn crash_anywhere_recovers_a_prefix(sizes in proptest::collection::vec((1usize..4, 1usize..400), 1..60), cut in 0usize..100_000) {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut appended = Vec::new();
        {
            let mut log = open(dir.path(), small_segments(), true);
            for (i, (records, len)) in sizes.iter().enumerate() {
                if let AppendOutcome::Appended { base_offset, last_offset, .. } = append(&mut log, batch(*records, *len, i as i64)) {
                    appended.push((base_offset, last_offset));
                }
            }
        }
        // Chop the newest segment at an arbitrary byte.
        let newest = std::fs::read_dir(dir.path()).expect("dir").filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "log")).max().expect("segment");
        let len = std::fs::metadata(&newest).expect("meta").len();
        let keep = if len == 0 { 0 } else { cut as u64 % (len + 1) };
        OpenOptions::new().write(true).open(&newest).expect("open").set_len(keep).expect("truncate");
        std::fs::remove_file(dir.path().join("tributary-checkpoint")).ok();

        let log = open(dir.path(), small_segments(), false);
        let recovered: Vec<(i64, i64)> = read_all(&log, 0).iter().map(|h| (h.base_offset, h.last_offset())).collect();
        prop_assert!(recovered.len() <= appended.len());
        prop_assert_eq!(&appended[..recovered.len()], &recovered[..]);
        prop_assert_eq!(log.log_end_offset(), recovered.last().map_or(0, |r| r.1 + 1));
    }
}

#[test]
fn one_read_returns_every_whole_batch_that_fits() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), LogConfig::default(), true);
    append(&mut log, batch(3, 10, 1));
    append(&mut log, batch(1, 10, 2));
    append(&mut log, batch(2, 10, 3));
    flush(&mut log);
    let bytes = log.plan_read(0, 6).expect("plan").expect("data").execute(1 << 20, true).expect("read");
    let offsets: Vec<i64> = BatchIter::new(&bytes).map(|b| b.expect("batch").0.base_offset).collect();
    assert_eq!(offsets, vec![0, 3, 4]);
    // The upper bound cuts whole batches.
    let bytes = log.plan_read(0, 4).expect("plan").expect("data").execute(1 << 20, true).expect("read");
    assert_eq!(BatchIter::new(&bytes).count(), 2);
}

#[test]
fn segments_roll_by_record_time_not_by_how_old_the_timestamps_are() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = LogConfig { segment_ms: 1_000, ..LogConfig::default() };
    let mut log = open(dir.path(), config, true);
    // Timestamps from 1970: old, but only 10 ms apart, so no roll.
    for t in [1_000, 1_005, 1_010] {
        let b = batch(1, 10, t);
        let i = AppendInfo { now_ms: 1_800_000_000_000, ..info(&b) };
        log.append(&b, &i).expect("append");
    }
    assert_eq!(log.segment_count(), 1);
    // A batch more than segment.ms after the first one rolls.
    let b = batch(1, 10, 5_000);
    let i = AppendInfo { now_ms: 1_800_000_000_000, ..info(&b) };
    log.append(&b, &i).expect("append");
    assert_eq!(log.segment_count(), 2);
}

/// Files in `dir` renamed for unlinking and not yet unlinked.
fn deleted_files(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .expect("read dir")
        .filter(|e| e.as_ref().is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".deleted")))
        .count()
}

/// A batch that would not advance the log end (here: a last offset delta of
/// -1, which validation refuses before a batch gets this far) stops the
/// append with a panic before anything reaches the file.
#[test]
fn an_append_that_breaks_offset_order_panics_before_writing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), small_segments(), true);
    append(&mut log, batch(3, 10, 1_000));
    flush(&mut log);
    let mut bad = batch(1, 10, 2_000);
    bad[23..27].copy_from_slice(&(-1i32).to_be_bytes()); // last offset delta
    let (head, records) = bad.split_at_mut(tributary_record::batch::BATCH_HEADER_LEN);
    tributary_record::batch::reseal(head, records);
    let i = info(&bad);
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| log.append(&bad, &i)));
    assert!(panicked.is_err(), "the broken invariant is asserted");
    drop(log);
    let log = open(dir.path(), small_segments(), false);
    assert_eq!(log.log_end_offset(), 3, "nothing of the bad batch reached the file");
    assert_eq!(read_all(&log, 0).len(), 1);
}

/// A flush planned by one instance of a log changes nothing in another
/// (the broker reopens a partition's log after a panic; the old instance's
/// flushes may still be running).
#[test]
fn a_flush_planned_by_another_instance_is_ignored() {
    let (a_dir, b_dir) = (tempfile::tempdir().expect("tempdir"), tempfile::tempdir().expect("tempdir"));
    let mut a = open(a_dir.path(), small_segments(), true);
    let mut b = open(b_dir.path(), small_segments(), true);
    append(&mut a, batch(10, 10, 1_000));
    append(&mut b, batch(5, 10, 1_000));
    let plan = a.flush_plan().expect("something to flush");
    let r = plan.execute();
    assert_eq!(b.complete_flush(&plan, r).expect("ignored"), 0);
    assert_eq!(b.durable_offset(), 0, "b's own data is not durable yet");
    flush(&mut b);
    assert_eq!(b.durable_offset(), 5);
}

#[test]
fn reload_reopens_from_disk_and_keeps_what_was_written() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), small_segments(), true);
    for i in 0..30 {
        append(&mut log, batch(2, 100, 1_000 + i * 10));
    }
    flush(&mut log);
    append(&mut log, batch(2, 100, 5_000)); // written, not yet flushed
    let stale = log.flush_plan().expect("pending flush");
    let mut fresh = log.reload(0, 0).expect("reload");
    assert_eq!(fresh.log_end_offset(), 62);
    assert_eq!(fresh.durable_offset(), 62, "recovery fsynced what it kept");
    let r = stale.execute();
    assert_eq!(fresh.complete_flush(&stale, r).expect("ignored"), 62);
    assert_eq!(read_all(&fresh, 0).len(), 31);
    append(&mut fresh, batch(1, 10, 6_000));
    flush(&mut fresh);
    assert_eq!(fresh.durable_offset(), 63);
}

/// The log end offset, the durable offset and the high watermark are three
/// numbers: an append moves only the first, a flush only the second, and
/// the high watermark moves only when the caller commits (never back, never
/// past the log end).
#[test]
fn log_end_durable_offset_and_high_watermark_move_separately() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), LogConfig::default(), true);
    assert_eq!(log.offsets(), LogOffsets::all_at(0));
    append(&mut log, batch(3, 10, 100));
    assert_eq!(log.offsets(), LogOffsets { log_end_offset: 3, durable_offset: 0, high_watermark: 0 });
    flush(&mut log);
    assert_eq!(log.offsets(), LogOffsets { log_end_offset: 3, durable_offset: 3, high_watermark: 0 });
    assert_eq!(log.advance_high_watermark(2), 2);
    assert_eq!(log.advance_high_watermark(1), 2, "the high watermark never moves back");
    append(&mut log, batch(2, 10, 200));
    assert_eq!(log.advance_high_watermark(log.durable_offset()), 3);
    assert_eq!(log.offsets(), LogOffsets { log_end_offset: 5, durable_offset: 3, high_watermark: 3 });
    log.offsets().check_sole_replica(&"this log");
    drop(log);
    let reopened = open(dir.path(), LogConfig::default(), false);
    assert_eq!(reopened.offsets(), LogOffsets::all_at(5), "recovery makes all it keeps durable and committed");
}

/// A replicated log's flush checkpoints a high watermark that moved (at
/// most once per `high_watermark_checkpoint_interval_ms`; a log alone never
/// does); a reopened log keeps its log end as its high watermark until a
/// replicated partition restores the checkpointed one, which a truncation
/// below it has lowered.
#[test]
fn the_high_watermark_is_checkpointed_with_flushes_and_restored_on_demand() {
    let dir = tempfile::tempdir().expect("tempdir");
    let every_flush = LogConfig { high_watermark_checkpoint_interval_ms: 0, ..LogConfig::default() };
    let mut alone = open(dir.path(), every_flush, true);
    append(&mut alone, batch(1, 10, 100));
    flush(&mut alone);
    alone.advance_high_watermark(1);
    append(&mut alone, batch(1, 10, 100));
    flush(&mut alone);
    assert_eq!(alone.checkpointed_high_watermark(), None, "a log alone commits its end");
    drop(alone);
    std::fs::remove_dir_all(dir.path()).expect("rm");

    let mut log = open(dir.path(), every_flush, true);
    assert_eq!(log.restore_checkpointed_high_watermark(), 0, "replicated from here on");
    append(&mut log, batch(3, 10, 100));
    flush(&mut log);
    log.advance_high_watermark(2);
    append(&mut log, batch(2, 10, 200));
    flush(&mut log);
    assert_eq!(log.checkpointed_high_watermark(), Some(2));
    drop(log);
    let mut reopened = open(dir.path(), every_flush, false);
    assert_eq!((reopened.high_watermark(), reopened.checkpointed_high_watermark()), (5, Some(2)));
    assert_eq!(reopened.restore_checkpointed_high_watermark(), 2);
    reopened.advance_high_watermark(4);
    assert_eq!(reopened.restore_checkpointed_high_watermark(), 4, "only once, before anything moved it");
    drop(reopened);

    // Rate-limited: the second flush within the interval does not write it.
    let slow = LogConfig { high_watermark_checkpoint_interval_ms: 3_600_000, ..LogConfig::default() };
    let mut log = open(dir.path(), slow, false);
    log.advance_high_watermark(5);
    log.restore_checkpointed_high_watermark();
    append(&mut log, batch(1, 10, 300));
    flush(&mut log);
    assert_eq!(log.checkpointed_high_watermark(), Some(5), "the first flush of an instance writes it");
    log.advance_high_watermark(6);
    append(&mut log, batch(1, 10, 400));
    flush(&mut log);
    assert_eq!(log.checkpointed_high_watermark(), Some(5));
    drop(log);

    // A truncation below the checkpointed high watermark lowers it.
    let mut log = open(dir.path(), every_flush, false);
    assert_eq!(log.checkpointed_high_watermark(), Some(5));
    log.restore_checkpointed_high_watermark();
    let _ = log.truncate_to(3, tributary_log::BelowHighWatermark::Allow).expect("truncate");
    assert_eq!(log.checkpointed_high_watermark(), Some(3));
    drop(log);
    let mut reopened = open(dir.path(), LogConfig::default(), false);
    assert_eq!(reopened.restore_checkpointed_high_watermark(), 3);
}

#[test]
#[should_panic(expected = "past the log end 3")]
fn committing_past_the_log_end_panics() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), LogConfig::default(), true);
    append(&mut log, batch(3, 10, 100));
    log.advance_high_watermark(4);
}
