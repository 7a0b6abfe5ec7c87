//! Truncation: where the cut falls, what it leaves behind, what it refuses,
//! and a crash after every step of it.

use std::path::Path;

use tributary_record::BatchHeader;

use super::TruncateStep;
use crate::error::LogError;
use crate::log::testing::{batch, open, read_all};
use crate::log::{BelowHighWatermark, LogConfig, PartitionLog};
use crate::producer::{ProducerState, SequenceCheck};

/// Three batches (about 300 bytes) to a segment.
fn config() -> LogConfig {
    LogConfig { segment_bytes: 300, ..LogConfig::default() }
}

/// Twelve batches of two records at offsets 0, 2, ..., 22: epochs 1, 2
/// and 4 (four batches each), every one from producer 7 in sequence.
fn leader_batches() -> Vec<Vec<u8>> {
    (0..12)
        .map(|i| {
            let epoch = [1, 2, 4][i / 4];
            batch(i as i64 * 2, 2, epoch, Some((7, 0, i as i32 * 2)))
        })
        .collect()
}

/// A follower log holding [`leader_batches`], flushed, its high watermark at `hw`.
fn filled(dir: &Path, hw: i64) -> PartitionLog {
    let mut log = open(dir, config());
    log.append_as_follower(&leader_batches().concat(), 0).expect("append");
    flush(&mut log);
    log.advance_high_watermark(hw);
    log
}

fn flush(log: &mut PartitionLog) {
    if let Some(plan) = log.flush_plan() {
        let outcome = plan.execute();
        log.complete_flush(&plan, outcome).expect("flush");
    }
}

fn header(bytes: &[u8]) -> BatchHeader {
    BatchHeader::parse(bytes).expect("header")
}

/// Producer state rebuilt from nothing over these batches.
fn producers_of(batches: &[Vec<u8>]) -> ProducerState {
    let mut state = ProducerState::default();
    for b in batches {
        state.update(&header(b));
    }
    state
}

/// What a log whose records are exactly `batches` must hold: those bytes,
/// its log end after the last, an epoch for each batch as stamped and none
/// past the end, the producer state those batches give.
fn assert_holds_exactly(log: &PartitionLog, batches: &[Vec<u8>], what: &str) {
    assert_eq!(read_all(log), batches.concat(), "{what}: records");
    let end = batches.last().map_or(log.log_start_offset(), |b| header(b).next_offset());
    assert_eq!(log.log_end_offset(), end, "{what}: log end offset");
    for b in batches {
        let h = header(b);
        assert_eq!(
            log.epoch_for_offset(h.base_offset),
            Some(h.partition_leader_epoch),
            "{what}: epoch at {}",
            h.base_offset
        );
    }
    assert!(log.epochs.entries().iter().all(|&(_, start)| start < end.max(1)), "{what}: {:?}", log.epochs.entries());
    assert_eq!(log.producers, producers_of(batches), "{what}: producer state");
    let offsets = log.offsets();
    assert!(offsets.durable_offset <= end && offsets.high_watermark <= end, "{what}: {offsets:?}");
}

fn snapshot_offsets(dir: &Path) -> Vec<i64> {
    let mut out: Vec<i64> = std::fs::read_dir(dir)
        .expect("list")
        .filter_map(|e| e.ok().and_then(|e| crate::producer::snapshot_offset(&e.path())))
        .collect();
    out.sort_unstable();
    out
}

#[test]
fn truncating_at_a_batch_boundary_drops_every_record_from_there() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = filled(dir.path(), 6);
    let segments = log.segment_count();
    assert!(segments >= 4, "the test needs several segments, got {segments}");
    assert!(snapshot_offsets(dir.path()).iter().any(|&o| o > 10), "rolls left snapshots past the cut");

    let done = log.truncate_to(10, BelowHighWatermark::Refuse).expect("truncate");
    assert!(done.truncated);
    assert_eq!(done.log_end_offset, 10);
    done.retired.remove();
    let batches = leader_batches();
    assert_holds_exactly(&log, &batches[..5], "after truncating to 10");
    assert_eq!(log.epochs.entries(), &[(1, 0), (2, 8)]);
    assert_eq!((log.durable_offset(), log.high_watermark()), (10, 6));
    assert!(log.segment_count() < segments);
    assert!(snapshot_offsets(dir.path()).iter().all(|&o| o <= 10), "{:?}", snapshot_offsets(dir.path()));
    // Producer 7 continues at sequence 10; 8..9 is a retry of offset 8's batch.
    let next = header(&batch(0, 1, 5, Some((7, 0, 10))));
    assert_eq!(log.check_sequence(&next).expect("next"), SequenceCheck::Append);
    assert!(
        matches!(log.check_sequence(&header(&batch(0, 2, 5, Some((7, 0, 8))))), Ok(SequenceCheck::Duplicate(b)) if b.base_offset == 8)
    );
    assert!(matches!(
        log.check_sequence(&header(&batch(0, 1, 5, Some((7, 0, 12))))),
        Err(LogError::OutOfOrderSequence { .. })
    ));

    // The new leader's batches follow at 10, and all of it survives a crash.
    let new = [batch(10, 3, 5, Some((7, 0, 10))), batch(13, 1, 5, None)];
    log.append_as_follower(&new.concat(), 0).expect("the follower goes on at the cut");
    let mut expected = batches[..5].to_vec();
    expected.extend(new.iter().cloned());
    assert_holds_exactly(&log, &expected, "after appending at the cut");
    drop(log);
    let reopened = PartitionLog::open(dir.path(), config(), false, -1, 0).expect("reopen");
    assert_holds_exactly(&reopened, &expected, "after a crash");
}

/// Kafka cuts a segment only where a batch starts: an offset inside a batch
/// drops that whole batch. The log end is the dropped batch's base offset.
#[test]
fn an_offset_inside_a_batch_drops_the_whole_batch() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = filled(dir.path(), 0);
    let done = log.truncate_to(11, BelowHighWatermark::Refuse).expect("truncate");
    assert_eq!(done.log_end_offset, 10);
    done.retired.remove();
    assert_holds_exactly(&log, &leader_batches()[..5], "after truncating inside the batch at 10");
}

#[test]
fn an_offset_at_or_past_the_log_end_drops_only_an_epoch_without_records() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = filled(dir.path(), 24);
    log.assign_epoch(6).expect("it led in epoch 6 without writing");
    assert_eq!(log.latest_epoch(), Some(6));
    for offset in [24, 100] {
        let done = log.truncate_to(offset, BelowHighWatermark::Refuse).expect("no-op");
        assert!(!done.truncated);
        assert_eq!(done.log_end_offset, 24);
    }
    assert_eq!(log.latest_epoch(), Some(4));
    assert_holds_exactly(&log, &leader_batches(), "nothing dropped");
    assert_eq!(log.high_watermark(), 24);
    // One below the end: the last batch (22..23) goes.
    let done = log.truncate_to(23, BelowHighWatermark::Allow).expect("truncate");
    assert_eq!(done.log_end_offset, 22);
    done.retired.remove();
    assert_eq!(log.high_watermark(), 22, "an allowed truncation brings the high watermark down");
}

#[test]
fn committed_offsets_are_dropped_only_when_allowed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = filled(dir.path(), 20);
    let before = read_all(&log);
    match log.truncate_to(15, BelowHighWatermark::Refuse) {
        Err(LogError::TruncationBelowHighWatermark { offset: 15, cut: 14, high_watermark: 20 }) => {}
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(read_all(&log), before, "a refused truncation changes nothing");
    assert!(log.offline_reason().is_none());
    // The high watermark inside a batch: the cut at its start would drop committed records.
    log.advance_high_watermark(21);
    assert!(matches!(
        log.truncate_to(21, BelowHighWatermark::Refuse),
        Err(LogError::TruncationBelowHighWatermark { cut: 20, .. })
    ));
    assert!(matches!(
        log.truncate_fully_and_start_at(3, BelowHighWatermark::Refuse),
        Err(LogError::TruncationBelowHighWatermark { .. })
    ));
    // Just below it: refused.
    let done = log.truncate_to(20, BelowHighWatermark::Refuse);
    assert!(matches!(done, Err(LogError::TruncationBelowHighWatermark { .. })), "the high watermark is 21 now");
    let done = log.truncate_to(15, BelowHighWatermark::Allow).expect("unclean");
    done.retired.remove();
    assert_eq!((log.log_end_offset(), log.high_watermark(), log.durable_offset()), (14, 14, 14));
    let done = log.truncate_to(14, BelowHighWatermark::Refuse).expect("at the high watermark");
    assert!(!done.truncated);
    log.append_as_follower(&batch(14, 2, 4, None), 0).expect("append");
    let done = log.truncate_to(14, BelowHighWatermark::Refuse).expect("exactly at the high watermark");
    assert!(done.truncated);
    done.retired.remove();
    assert_holds_exactly(&log, &leader_batches()[..7], "after an unclean truncation");
    assert!(matches!(log.truncate_to(-1, BelowHighWatermark::Allow), Err(LogError::InvalidTruncationOffset(-1))));
    assert!(log.offline_reason().is_none());
}

#[test]
fn truncating_below_the_log_start() {
    // Inside the first segment but below the log start: the log start
    // comes down to the cut (nothing is left to read).
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = filled(dir.path(), 24);
    let second = *log.segments.keys().nth(1).expect("a second segment");
    let (start, retired) = log.delete_records(second + 2, 24, 0).expect("delete records");
    retired.remove();
    assert_eq!(start, second + 2);
    let first = *log.segments.keys().next().expect("a segment");
    assert_eq!(first, second);
    let done = log.truncate_to(second + 1, BelowHighWatermark::Allow).expect("truncate");
    done.retired.remove();
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (second, second));
    assert!(read_all(&log).is_empty());

    // Below the first segment: the log empties and starts again there.
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = filled(dir.path(), 24);
    let (_, retired) = log.delete_records(second + 2, 24, 0).expect("delete records");
    retired.remove();
    let done = log.truncate_to(second - 1, BelowHighWatermark::Allow).expect("truncate");
    done.retired.remove();
    assert_eq!(
        (log.log_start_offset(), log.log_end_offset(), log.high_watermark()),
        (second - 1, second - 1, second - 1)
    );
    assert_eq!(log.segment_count(), 1);
    assert!(log.epochs.entries().is_empty() && log.producers.is_empty());
    assert!(snapshot_offsets(dir.path()).is_empty());
    log.append_as_follower(&batch(second - 1, 1, 9, None), 0).expect("appends go on");
    drop(log);
    let reopened = PartitionLog::open(dir.path(), config(), false, -1, 0).expect("reopen");
    assert_eq!((reopened.log_start_offset(), reopened.log_end_offset()), (second - 1, second));
}

#[test]
fn starting_again_past_the_log_end() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = filled(dir.path(), 24);
    let done = log.truncate_fully_and_start_at(100, BelowHighWatermark::Refuse).expect("forward");
    done.retired.remove();
    let offsets = log.offsets();
    assert_eq!(
        (log.log_start_offset(), offsets.log_end_offset, offsets.durable_offset, offsets.high_watermark),
        (100, 100, 100, 100)
    );
    drop(log);
    let reopened = PartitionLog::open(dir.path(), config(), false, -1, 0).expect("reopen");
    assert_eq!((reopened.log_start_offset(), reopened.log_end_offset()), (100, 100));
}

#[test]
fn a_flush_planned_before_a_truncation_moves_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), config());
    log.append_as_follower(&leader_batches()[..6].concat(), 0).expect("append");
    let stale = log.flush_plan().expect("a plan");
    assert_eq!(stale.target, 12);
    log.truncate_to(4, BelowHighWatermark::Allow).expect("truncate").retired.remove();
    log.append_as_follower(&batch(4, 4, 3, None), 0).expect("new records at 4");
    let outcome = stale.execute();
    assert_eq!(log.complete_flush(&stale, outcome).expect("stale"), 0, "nothing counts as durable from it");
    flush(&mut log);
    assert_eq!(log.durable_offset(), 8);
}

/// Copies a log directory's files (a fresh copy per crash point).
fn copy_dir(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).expect("list") {
        let path = entry.expect("entry").path();
        if path.is_file() {
            std::fs::copy(&path, to.join(path.file_name().expect("name"))).expect("copy");
        }
    }
}

/// Runs `truncate` on a fresh copy of `template`, stopping after step
/// `stop_at` as a crash would; returns the steps it got through.
fn crash_after(
    template: &Path,
    stop_at: Option<usize>,
    truncate: &dyn Fn(&mut PartitionLog, super::StepHook<'_>) -> crate::Result<super::Truncated>,
) -> (tempfile::TempDir, Vec<TruncateStep>) {
    let dir = tempfile::tempdir().expect("tempdir");
    copy_dir(template, dir.path());
    let mut log = PartitionLog::open(dir.path(), config(), true, -1, 0).expect("open copy");
    let mut steps = Vec::new();
    let mut hook = |s: TruncateStep| {
        steps.push(s);
        Some(steps.len() - 1) != stop_at
    };
    let result = truncate(&mut log, &mut hook);
    match stop_at {
        Some(_) => {
            assert!(result.is_err(), "stopped after {steps:?}");
            assert!(log.offline_reason().is_some(), "a stopped truncation takes the log offline");
        }
        None => result.expect("truncation").retired.remove(),
    }
    // The process dies: what is on disk is all there is.
    drop(log);
    (dir, steps)
}

/// A crash after each step of a truncation leaves a log that opens, holds
/// a prefix of the batches with epochs and producer state to match, and
/// truncated again ends as an uninterrupted truncation does.
fn crash_at_every_step(
    name: &str,
    truncate: &dyn Fn(&mut PartitionLog, super::StepHook<'_>) -> crate::Result<super::Truncated>,
    redo: &dyn Fn(&mut PartitionLog),
    keeps_at_least: usize,
) {
    let template = tempfile::tempdir().expect("tempdir");
    let mut log = filled(template.path(), 0);
    log.close().expect("close");
    drop(log);
    let batches = leader_batches();
    let (reference, steps) = crash_after(template.path(), None, truncate);
    let reference = PartitionLog::open(reference.path(), config(), false, -1, 0).expect("reference");
    assert!(steps.len() >= 6, "{name}: {steps:?}");
    for (k, step) in steps.iter().enumerate() {
        let (dir, _) = crash_after(template.path(), Some(k), truncate);
        let what = format!("{name}, crash after {step:?}");
        let mut log = PartitionLog::open(dir.path(), config(), false, -1, 0).unwrap_or_else(|e| panic!("{what}: {e}"));
        let kept =
            batches.iter().take_while(|b| header(b).base_offset < log.log_end_offset()).cloned().collect::<Vec<_>>();
        assert!(kept.len() >= keeps_at_least || log.log_end_offset() == reference.log_end_offset(), "{what}");
        if log.log_start_offset() == log.log_end_offset() {
            assert!(read_all(&log).is_empty(), "{what}");
        } else {
            assert_holds_exactly(&log, &kept, &what);
        }
        redo(&mut log);
        assert_eq!(read_all(&log), read_all(&reference), "{what}: redone");
        assert_eq!(log.log_end_offset(), reference.log_end_offset(), "{what}: redone");
        assert_eq!(log.log_start_offset(), reference.log_start_offset(), "{what}: redone");
        assert_eq!(log.epochs, reference.epochs, "{what}: redone");
        assert_eq!(log.producers, reference.producers, "{what}: redone");
    }
}

#[test]
fn a_crash_after_any_step_of_a_truncation_leaves_a_consistent_log() {
    crash_at_every_step(
        "truncate to 9",
        &|log, hook| log.truncate_with(9, BelowHighWatermark::Allow, hook),
        &|log| log.truncate_to(9, BelowHighWatermark::Allow).expect("redo").retired.remove(),
        4,
    );
}

#[test]
fn a_crash_after_any_step_of_a_full_truncation_leaves_a_consistent_log() {
    crash_at_every_step(
        "start again at 30",
        &|log, hook| log.truncate_fully_with(30, BelowHighWatermark::Allow, hook),
        &|log| log.truncate_fully_and_start_at(30, BelowHighWatermark::Allow).expect("redo").retired.remove(),
        0,
    );
}
