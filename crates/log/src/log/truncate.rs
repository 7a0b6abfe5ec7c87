//! Truncation from the end: a follower dropping what its leader's log does
//! not have (Kafka's `truncateTo`), and dropping the whole log to start
//! again at an offset (`truncateFullyAndStartAt`).
//!
//! **Where the log is cut.** Kafka truncates only at batch boundaries: an
//! offset inside a batch drops the whole batch (its segment is cut where
//! that batch starts). Kafka then sets its log end offset to the offset
//! asked for, above the last record it kept, until a restart finds the end
//! of the data; here the log end offset becomes the end of the data kept
//! (the dropped batch's base offset, or the end of the batch before a gap),
//! so it is the same before and after a restart, and [`Truncated`] says
//! where it is. A follower fetches from there.
//!
//! **The high watermark.** By default a truncation never drops an offset
//! below the high watermark ([`BelowHighWatermark::Refuse`]): those records
//! are committed. [`BelowHighWatermark::Allow`] is for the two cases that
//! may: an unclean leader election, and a replica whose high watermark is not
//! known since it (re)opened (a log opens with its high watermark at its log
//! end, which on a follower overstates what is committed). The high
//! watermark and durable offset then come down to the new log end.
//!
//! **Crash safety.** The steps run in an order where a crash after any of
//! them leaves a log the next open accepts, holding a prefix of what it held
//! (the truncation done in part, or not at all), never records from past
//! the cut after a gap, and never a leader epoch or producer snapshot for
//! records it no longer has:
//!
//! 1. the checkpoint's recovery point and cleaner offset come down to the
//!    cut (so whatever is written after it is validated on the next
//!    unclean start; lowering either is always safe), and so does a
//!    checkpointed high watermark above it;
//! 2. the segments wholly past the cut are retired, newest first (a crash
//!    midway leaves a prefix), and producer snapshots past the cut are
//!    removed; the directory is synced;
//! 3. the segment holding the cut is shortened and synced, its index files
//!    removed (rebuilt on the next open, or written when it rolls);
//! 4. the leader epoch cache loses the epochs starting at or past the cut
//!    (synced; an open drops such entries anyway);
//! 5. the checkpoint gets a lowered log start offset (only now: earlier, a
//!    crash would show records a DeleteRecords had hidden);
//! 6. in memory: the offsets, and the producer state rebuilt from the newest
//!    snapshot at or below the cut plus the batches after it.
//!
//! A flush planned before a truncation moves nothing when it completes
//! (see `FlushPlan`); the caller marks the log dirty again if it wants the
//! part below the cut that was not yet durable flushed.

use std::fs::{self, File};

use super::{PartitionLog, io_at};
use crate::error::{LogError, Result};
use crate::producer::{ProducerState, snapshot_offset};
use crate::retired::RetiredFiles;
use crate::segment::Segment;

/// Whether a truncation may drop offsets below the high watermark.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BelowHighWatermark {
    /// Refuse ([`LogError::TruncationBelowHighWatermark`]): a follower
    /// matching its leader's log only drops what was never committed.
    Refuse,
    /// Allow: an unclean leader election, or a replica whose high watermark
    /// is not known since it opened.
    Allow,
}

/// What a truncation did.
#[derive(Debug, Default)]
#[must_use = "retired files stay on disk until removed"]
pub struct Truncated {
    /// Whether anything was dropped.
    pub truncated: bool,
    /// The log end offset now (a follower fetches from here).
    pub log_end_offset: i64,
    /// Files of the dropped segments, for [`RetiredFiles::remove`] once the
    /// caller has let go of the log's lock.
    pub retired: RetiredFiles,
}

/// A point in a truncation after which a crash may come (for the crash tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TruncateStep {
    /// The checkpoint's recovery point (and cleaner offset) came down.
    RecoveryPointLowered,
    /// A segment past the cut was retired (its base offset).
    SegmentRetired(i64),
    /// Producer snapshots past the cut were removed and the directory synced.
    DirectorySynced,
    /// The segment holding the cut was shortened and synced.
    SegmentCut,
    /// The new segment of a full truncation was created and the directory synced.
    SegmentCreated,
    /// The leader epoch checkpoint was written.
    EpochsSaved,
    /// The checkpoint was written with the new log start offset.
    CheckpointWritten,
}

/// Called after each step; `false` stops the truncation there, as a crash
/// would (the log is then taken offline).
pub(crate) type StepHook<'a> = &'a mut dyn FnMut(TruncateStep) -> bool;

impl PartitionLog {
    /// Drops every record at and above `offset` (see the module docs):
    /// segments, indexes, the leader epoch cache and producer snapshots past
    /// the cut, producer state rebuilt. An offset at or past the log end
    /// drops nothing but leader epochs assigned at the log end without a
    /// record (as Kafka does, for a leader that wrote nothing before losing
    /// its leadership). An offset below the first segment empties the log
    /// and starts it again there.
    pub fn truncate_to(&mut self, offset: i64, bound: BelowHighWatermark) -> Result<Truncated> {
        self.truncate_with(offset, bound, &mut |_| true)
    }

    /// Drops the whole log and starts it again, empty, at `offset` (which
    /// becomes the log start, log end, durable offset and high watermark):
    /// a follower whose log the leader no longer holds any of (the leader's
    /// log start is past the follower's log end), or an empty log following
    /// a leader whose log starts inside a batch. Starting below the high
    /// watermark needs [`BelowHighWatermark::Allow`].
    pub fn truncate_fully_and_start_at(&mut self, offset: i64, bound: BelowHighWatermark) -> Result<Truncated> {
        self.truncate_fully_with(offset, bound, &mut |_| true)
    }

    pub(crate) fn truncate_with(
        &mut self,
        offset: i64,
        bound: BelowHighWatermark,
        at: StepHook<'_>,
    ) -> Result<Truncated> {
        self.check_online()?;
        if offset < 0 {
            return Err(LogError::InvalidTruncationOffset(offset));
        }
        if offset >= self.log_end_offset {
            if self.epochs.truncate_from_end(self.log_end_offset) {
                self.save_epochs()?;
            }
            return Ok(Truncated { truncated: false, log_end_offset: self.log_end_offset, ..Truncated::default() });
        }
        let Some((&base, segment)) = self.segments.range(..=offset).next_back() else {
            return self.truncate_fully_with(offset, bound, at);
        };
        let path = segment.path.clone();
        let position = match segment.find(offset).map_err(|e| LogError::io(&path, e))? {
            Some((position, _)) => position,
            None => segment.size,
        };
        let cut = segment.end_offset_at(position).map_err(|e| LogError::io(&path, e))?;
        if cut < self.high_watermark && bound == BelowHighWatermark::Refuse {
            return Err(LogError::TruncationBelowHighWatermark { offset, cut, high_watermark: self.high_watermark });
        }
        let result = self.cut_at(base, position, cut, at);
        if let Err(e) = &result {
            self.go_offline(format!("truncating to offset {offset} failed: {e}"));
        }
        result
    }

    /// Steps 1 to 6 of the module docs: the segment at `base` is cut at
    /// `position`, where the log will end at offset `cut`.
    fn cut_at(&mut self, base: i64, position: u64, cut: i64, at: StepHook<'_>) -> Result<Truncated> {
        let dir = self.dir.clone();
        let io = io_at(&dir);
        let stop = |step| LogError::Offline(format!("truncation stopped after {step:?}"));
        self.checkpointed.recovery_point = self.checkpointed.recovery_point.min(cut);
        self.checkpointed.cleaner_offset = self.checkpointed.cleaner_offset.min(cut);
        self.checkpointed.high_watermark = self.checkpointed.high_watermark.map(|hw| hw.min(cut));
        self.write_checkpoint()?;
        step(at, TruncateStep::RecoveryPointLowered).ok_or_else(|| stop(TruncateStep::RecoveryPointLowered))?;

        let mut retired = RetiredFiles::default();
        let doomed: Vec<i64> = self.segments.range(base + 1..).map(|(&b, _)| b).rev().collect();
        for b in doomed {
            if let Some(segment) = self.segments.remove(&b) {
                segment.retire_files(&dir, &mut retired).map_err(&io)?;
            }
            step(at, TruncateStep::SegmentRetired(b)).ok_or_else(|| stop(TruncateStep::SegmentRetired(b)))?;
        }
        self.remove_snapshots_above(cut)?;
        File::open(&dir).and_then(|d| d.sync_all()).map_err(&io)?;
        step(at, TruncateStep::DirectorySynced).ok_or_else(|| stop(TruncateStep::DirectorySynced))?;

        if let Some(segment) = self.segments.get_mut(&base) {
            let path = segment.path.clone();
            segment.truncate(position).map_err(|e| LogError::io(&path, e))?;
            segment.file.sync_data().map_err(|e| LogError::io(&path, e))?;
            let (_, index, time_index) = Segment::paths(&dir, base);
            remove_if_present(&index).map_err(&io)?;
            remove_if_present(&time_index).map_err(&io)?;
        }
        step(at, TruncateStep::SegmentCut).ok_or_else(|| stop(TruncateStep::SegmentCut))?;

        self.epochs.truncate_from_end(cut);
        self.save_epochs()?;
        step(at, TruncateStep::EpochsSaved).ok_or_else(|| stop(TruncateStep::EpochsSaved))?;

        self.log_start_offset = self.log_start_offset.min(cut);
        self.write_checkpoint()?;
        step(at, TruncateStep::CheckpointWritten).ok_or_else(|| stop(TruncateStep::CheckpointWritten))?;

        self.after_truncation(cut)?;
        Ok(Truncated { truncated: true, log_end_offset: cut, retired })
    }

    pub(crate) fn truncate_fully_with(
        &mut self,
        offset: i64,
        bound: BelowHighWatermark,
        at: StepHook<'_>,
    ) -> Result<Truncated> {
        self.check_online()?;
        if offset < 0 {
            return Err(LogError::InvalidTruncationOffset(offset));
        }
        if offset < self.high_watermark && bound == BelowHighWatermark::Refuse {
            return Err(LogError::TruncationBelowHighWatermark {
                offset,
                cut: offset,
                high_watermark: self.high_watermark,
            });
        }
        let result = self.start_again_at(offset, at);
        if let Err(e) = &result {
            self.go_offline(format!("emptying the log to start at offset {offset} failed: {e}"));
        }
        result
    }

    /// A full truncation: the checkpoint first names the new start (an open
    /// that finds no segment creates one there), then every segment is
    /// retired, newest first, the new one created, the epochs cleared.
    fn start_again_at(&mut self, offset: i64, at: StepHook<'_>) -> Result<Truncated> {
        let dir = self.dir.clone();
        let io = io_at(&dir);
        let stop = |step| LogError::Offline(format!("truncation stopped after {step:?}"));
        self.checkpointed.recovery_point = self.checkpointed.recovery_point.min(offset);
        self.checkpointed.cleaner_offset = self.checkpointed.cleaner_offset.min(offset);
        self.checkpointed.high_watermark = self.checkpointed.high_watermark.map(|hw| hw.min(offset));
        self.log_start_offset = offset;
        self.write_checkpoint()?;
        step(at, TruncateStep::RecoveryPointLowered).ok_or_else(|| stop(TruncateStep::RecoveryPointLowered))?;

        let mut retired = RetiredFiles::default();
        let doomed: Vec<i64> = self.segments.keys().copied().rev().collect();
        for b in doomed {
            if let Some(segment) = self.segments.remove(&b) {
                segment.retire_files(&dir, &mut retired).map_err(&io)?;
            }
            step(at, TruncateStep::SegmentRetired(b)).ok_or_else(|| stop(TruncateStep::SegmentRetired(b)))?;
        }
        self.remove_snapshots_above(-1)?;
        File::open(&dir).and_then(|d| d.sync_all()).map_err(&io)?;
        step(at, TruncateStep::DirectorySynced).ok_or_else(|| stop(TruncateStep::DirectorySynced))?;

        let segment = Segment::create(&dir, offset, tributary_types::now_ms()).map_err(&io)?;
        self.segments.insert(offset, segment);
        File::open(&dir).and_then(|d| d.sync_all()).map_err(&io)?;
        step(at, TruncateStep::SegmentCreated).ok_or_else(|| stop(TruncateStep::SegmentCreated))?;

        self.epochs.clear();
        self.save_epochs()?;
        step(at, TruncateStep::EpochsSaved).ok_or_else(|| stop(TruncateStep::EpochsSaved))?;

        self.checkpointed.recovery_point = offset;
        self.write_checkpoint()?;
        step(at, TruncateStep::CheckpointWritten).ok_or_else(|| stop(TruncateStep::CheckpointWritten))?;

        self.unflushed.clear();
        self.after_truncation(offset)?;
        // Nothing below the new start exists, here or (a forward jump) on the
        // leader: every offset to it counts as durable and committed.
        self.durable_offset = offset;
        self.high_watermark = offset;
        self.offsets();
        Ok(Truncated { truncated: true, log_end_offset: offset, retired })
    }

    /// Step 6: offsets and producer state once the log ends at `end`.
    fn after_truncation(&mut self, end: i64) -> Result<()> {
        self.high_watermark_restorable = false;
        self.log_end_offset = end;
        self.durable_offset = self.durable_offset.min(end);
        self.high_watermark = self.high_watermark.min(end);
        self.log_start_offset = self.log_start_offset.min(end);
        self.truncations += 1;
        self.tombstone_horizon = Err(());
        self.producers = ProducerState::default();
        self.recover_producer_state()?;
        self.offsets();
        Ok(())
    }

    /// Removes producer snapshots taken past `offset` (they describe records
    /// the log no longer has); the caller syncs the directory.
    fn remove_snapshots_above(&self, offset: i64) -> Result<()> {
        let io = io_at(&self.dir);
        for entry in fs::read_dir(&self.dir).map_err(&io)? {
            let path = entry.map_err(&io)?.path();
            if snapshot_offset(&path).is_some_and(|o| o > offset) {
                remove_if_present(&path).map_err(&io)?;
            }
        }
        Ok(())
    }

    /// Writes the leader epoch checkpoint; a failure takes the log offline.
    fn save_epochs(&mut self) -> Result<()> {
        if let Err(e) = self.epochs.save(&self.dir) {
            self.go_offline(format!("cannot write the leader epoch checkpoint: {e}"));
            return Err(LogError::io(&self.dir, e));
        }
        Ok(())
    }
}

/// Runs the step hook: `Some(())` to go on, `None` to stop there.
fn step(at: StepHook<'_>, step: TruncateStep) -> Option<()> {
    at(step).then_some(())
}

fn remove_if_present(path: &std::path::Path) -> std::io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests;
