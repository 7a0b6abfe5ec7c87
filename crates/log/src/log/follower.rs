//! Appending as a follower: the leader's batches kept byte for byte, with
//! the offsets, leader epochs and producer fields the leader gave them
//! (Kafka's `appendAsFollower`).
//!
//! Every batch is checked before anything is written, and the append is
//! refused (the log unchanged) unless all of them pass:
//!
//! - the bytes are whole batches: each header parses (magic 2), its length
//!   fits the bytes given and the largest batch a log holds, its CRC-32C
//!   matches, its offsets are not negative and do not overflow;
//! - the first batch starts at the log end offset, and each next one where
//!   the previous one ended (gaps are accepted on a compacted log only: the
//!   leader's cleaner drops batches left without records, so its log has
//!   holes Kafka's followers accept; overlaps are never accepted);
//! - leader epochs are not negative and never go down, within the append or
//!   against the last batch already in the log (a follower whose log diverged
//!   truncates first, see [`crate::log::truncate`]);
//! - each batch fits a segment (`segment.bytes`).
//!
//! One exception, as Kafka's: a log with no records whose start offset falls
//! inside the first batch (the leader's log start was moved into the middle
//! of a batch by DeleteRecords) starts again at that batch's base offset.
//!
//! What the append changes besides the segments: the leader epoch cache
//! (entries at or past the old log end, which no record backs, are dropped,
//! then each batch's epoch is assigned at its base offset, written to the
//! checkpoint before the batches), and the idempotent producer state, updated
//! from each batch without the sequence checks a leader makes (Kafka's
//! replication origin), so a follower that becomes leader keeps each
//! producer's sequence state. The durable offset and high watermark do not
//! move: a flush moves the first, the replication core the second.

use tributary_record::batch::{BATCH_HEADER_LEN, crc_matches};
use tributary_record::{BatchHeader, STORED_BATCH_BYTES_MAX};

use super::{BelowHighWatermark, PartitionLog};
use crate::error::{LogError, Result};
use crate::retired::RetiredFiles;

/// Why a follower append was refused. The log is unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FollowerAppendError {
    /// The bytes end inside a batch (or inside a batch header).
    #[error("the bytes end inside a batch at position {position} ({remaining} bytes left)")]
    PartialBatch {
        /// Where the unfinished batch starts in the bytes given.
        position: usize,
        /// Bytes from there to the end.
        remaining: usize,
    },
    /// A batch that cannot be one the leader wrote.
    #[error("corrupt batch at position {position}: {reason}")]
    CorruptBatch {
        /// Where it starts in the bytes given.
        position: usize,
        /// What is wrong.
        reason: String,
    },
    /// The first batch does not start at the log end offset (Kafka's
    /// UnexpectedAppendOffsetException).
    #[error("the first batch starts at offset {base_offset}, not at the log end offset {log_end_offset}")]
    UnexpectedOffset {
        /// The first batch's base offset.
        base_offset: i64,
        /// The log end offset.
        log_end_offset: i64,
    },
    /// A batch does not start where the previous one ended.
    #[error("a batch at offset {base_offset} follows one that ended at offset {expected}")]
    OffsetsOutOfOrder {
        /// Its base offset.
        base_offset: i64,
        /// The offset after the previous batch.
        expected: i64,
    },
    /// A batch's leader epoch is negative or older than the one before it.
    #[error("a batch at offset {base_offset} has leader epoch {epoch}, after leader epoch {previous}")]
    EpochOutOfOrder {
        /// Its base offset.
        base_offset: i64,
        /// Its leader epoch.
        epoch: i32,
        /// The epoch of the batch before it (in the append or in the log).
        previous: i32,
    },
}

/// What a follower append did.
#[derive(Debug, Default)]
pub struct FollowerAppend {
    /// Batches written.
    pub batches: usize,
    /// First offset written (-1 when nothing was).
    pub first_offset: i64,
    /// Last offset written (-1 when nothing was).
    pub last_offset: i64,
    /// The log end offset now.
    pub log_end_offset: i64,
    /// Files of segments dropped when an empty log started again at the
    /// first batch's base offset, for [`RetiredFiles::remove`] once the
    /// caller has let go of the log's lock.
    pub retired: RetiredFiles,
}

/// One batch that passed the checks: where it lies in the bytes given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CheckedBatch {
    pub(crate) start: usize,
    pub(crate) end: usize,
    pub(crate) header: BatchHeader,
}

/// What the checks compare the batches with.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FollowerRules {
    /// Where the first batch must start.
    pub(crate) log_end_offset: i64,
    /// The log holds no record (its log end is its log start).
    pub(crate) empty: bool,
    /// Gaps between batches are accepted (a compacted log).
    pub(crate) allow_gaps: bool,
    /// The leader epoch of the last batch in the log, if any.
    pub(crate) last_epoch: Option<i32>,
    /// `segment.bytes`.
    pub(crate) segment_bytes: u64,
}

/// Checks every batch in `bytes` (see the module docs) without writing
/// anything. Returns the batches, and whether the log must first start
/// again at the first batch's base offset.
pub(crate) fn check_batches(bytes: &[u8], rules: &FollowerRules) -> Result<(Vec<CheckedBatch>, bool)> {
    let mut batches = Vec::new();
    let mut position = 0usize;
    let mut restart = false;
    let mut previous_epoch = rules.last_epoch;
    let mut expected = rules.log_end_offset;
    while position < bytes.len() {
        let rest = &bytes[position..];
        let corrupt = |reason: String| FollowerAppendError::CorruptBatch { position, reason };
        if rest.len() < BATCH_HEADER_LEN {
            return Err(FollowerAppendError::PartialBatch { position, remaining: rest.len() }.into());
        }
        let header = BatchHeader::parse(rest).map_err(|e| corrupt(e.to_string()))?;
        let len = header.total_len();
        if len > STORED_BATCH_BYTES_MAX {
            return Err(corrupt(format!("it claims {len} bytes, more than any log holds")).into());
        }
        if len > rest.len() {
            return Err(FollowerAppendError::PartialBatch { position, remaining: rest.len() }.into());
        }
        let batch = &rest[..len];
        if !crc_matches(batch) {
            return Err(corrupt("the CRC-32C does not match".to_string()).into());
        }
        if header.base_offset < 0
            || header.last_offset_delta < 0
            || header.base_offset.checked_add(i64::from(header.last_offset_delta) + 1).is_none()
        {
            return Err(corrupt(format!(
                "base offset {} with last offset delta {} is not a range of offsets",
                header.base_offset, header.last_offset_delta
            ))
            .into());
        }
        if len as u64 > rules.segment_bytes {
            return Err(LogError::BatchLargerThanSegment { size: len, segment_bytes: rules.segment_bytes });
        }
        if batches.is_empty() {
            let straddles = header.base_offset < expected && header.last_offset() >= expected;
            if rules.empty && straddles {
                restart = true;
            } else if header.base_offset < expected || (header.base_offset > expected && !rules.allow_gaps) {
                return Err(FollowerAppendError::UnexpectedOffset {
                    base_offset: header.base_offset,
                    log_end_offset: rules.log_end_offset,
                }
                .into());
            }
            if restart {
                previous_epoch = None;
            }
        } else if header.base_offset < expected || (header.base_offset > expected && !rules.allow_gaps) {
            return Err(FollowerAppendError::OffsetsOutOfOrder { base_offset: header.base_offset, expected }.into());
        }
        let epoch = header.partition_leader_epoch;
        if epoch < 0 || previous_epoch.is_some_and(|p| epoch < p) {
            return Err(FollowerAppendError::EpochOutOfOrder {
                base_offset: header.base_offset,
                epoch,
                previous: previous_epoch.unwrap_or(-1),
            }
            .into());
        }
        previous_epoch = Some(epoch);
        expected = header.next_offset();
        batches.push(CheckedBatch { start: position, end: position + len, header });
        position += len;
    }
    Ok((batches, restart))
}

impl PartitionLog {
    /// Appends the leader's batches as they are (see the module docs):
    /// whole batches, the first at the log end offset. Refused with
    /// [`LogError::FollowerAppend`] (or [`LogError::BatchLargerThanSegment`])
    /// before anything is written; a failed write leaves the batches before
    /// it appended and the rest not. The data is not durable until a flush
    /// covers it.
    pub fn append_as_follower(&mut self, bytes: &[u8], now_ms: i64) -> Result<FollowerAppend> {
        self.check_online()?;
        let empty = self.log_end_offset == self.log_start_offset;
        let rules = FollowerRules {
            log_end_offset: self.log_end_offset,
            empty,
            allow_gaps: self.config.compaction.enabled,
            last_epoch: if empty { None } else { self.epochs.epoch_for_offset(self.log_end_offset - 1) },
            segment_bytes: self.config.segment_bytes,
        };
        let (batches, restart) = check_batches(bytes, &rules)?;
        let mut out = FollowerAppend {
            first_offset: -1,
            last_offset: -1,
            log_end_offset: self.log_end_offset,
            ..FollowerAppend::default()
        };
        let Some(first) = batches.first() else {
            return Ok(out);
        };
        if restart {
            let truncated = self.truncate_fully_and_start_at(first.header.base_offset, BelowHighWatermark::Allow)?;
            out.retired = truncated.retired;
        }
        self.assign_batch_epochs(&batches)?;
        for batch in &batches {
            self.write_follower_batch(&bytes[batch.start..batch.end], &batch.header, now_ms)?;
            if out.batches == 0 {
                out.first_offset = batch.header.base_offset;
            }
            out.batches += 1;
            out.last_offset = batch.header.last_offset();
        }
        out.log_end_offset = self.log_end_offset;
        Ok(out)
    }

    /// Drops epoch entries no record backs (at or past the log end), then
    /// assigns each batch's epoch at its base offset, and writes the
    /// checkpoint before any batch is (a crash then leaves entries past the
    /// log end, which the next open drops, never records without theirs).
    fn assign_batch_epochs(&mut self, batches: &[CheckedBatch]) -> Result<()> {
        let mut changed = self.epochs.truncate_from_end(self.log_end_offset);
        for b in batches {
            changed |= self.epochs.assign(b.header.partition_leader_epoch, b.header.base_offset);
        }
        if changed && let Err(e) = self.epochs.save(&self.dir) {
            self.go_offline(format!("cannot write the leader epoch checkpoint: {e}"));
            return Err(LogError::io(&self.dir, e));
        }
        Ok(())
    }

    /// Writes one checked batch at the end of the active segment, rolling
    /// first when it is full, old, or cannot index the batch's offsets.
    fn write_follower_batch(&mut self, batch: &[u8], header: &BatchHeader, now_ms: i64) -> Result<()> {
        self.maybe_roll(batch.len(), header, header.base_offset, header.max_timestamp, now_ms)?;
        let interval = self.config.index_interval_bytes;
        let Some(active) = self.segments.values_mut().next_back() else {
            return Err(LogError::Offline("no active segment".to_string()));
        };
        if header.last_offset() - active.base_offset >= i64::from(u32::MAX) {
            // Only a gap of billions of offsets gets here: a new segment
            // starts at the log end, and no segment can index that far.
            return Err(FollowerAppendError::OffsetsOutOfOrder {
                base_offset: header.base_offset,
                expected: self.log_end_offset,
            }
            .into());
        }
        let (head, records) = batch.split_at(BATCH_HEADER_LEN);
        if let Err(e) = active.append(head, records, header, interval, header.max_timestamp, header.last_offset()) {
            let path = active.path.clone();
            if active.file.metadata().map(|m| m.len()).ok() != Some(active.size) {
                self.go_offline(format!("write to {} failed and could not be undone: {e}", path.display()));
            }
            // The epoch checkpoint may name batches that were not written.
            if self.epochs.truncate_from_end(self.log_end_offset) {
                let _ = self.epochs.save(&self.dir);
            }
            return Err(LogError::io(path, e));
        }
        self.producers.update(header);
        self.log_end_offset = header.next_offset();
        self.offsets();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use tributary_record::batch::set_base_offset;

    use super::*;
    use crate::log::LogConfig;
    use crate::log::testing::{batch, open, read_all};

    fn rules(log_end_offset: i64) -> FollowerRules {
        FollowerRules { log_end_offset, empty: false, allow_gaps: false, last_epoch: None, segment_bytes: 1 << 30 }
    }

    fn refusal(bytes: &[u8], rules: &FollowerRules) -> FollowerAppendError {
        match check_batches(bytes, rules) {
            Err(LogError::FollowerAppend(e)) => e,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn contiguous_batches_pass() {
        let bytes = [batch(10, 3, 1, None), batch(13, 1, 1, None), batch(14, 2, 2, None)].concat();
        let (checked, restart) = check_batches(&bytes, &rules(10)).expect("valid");
        assert!(!restart);
        let bases: Vec<i64> = checked.iter().map(|b| b.header.base_offset).collect();
        assert_eq!(bases, vec![10, 13, 14]);
        assert_eq!(checked.last().map(|b| b.end), Some(bytes.len()));
        assert!(check_batches(&[], &rules(10)).expect("nothing").0.is_empty());
    }

    #[test]
    fn a_gap_or_an_overlap_is_refused() {
        assert!(matches!(
            refusal(&batch(11, 1, 0, None), &rules(10)),
            FollowerAppendError::UnexpectedOffset { base_offset: 11, log_end_offset: 10 }
        ));
        assert!(matches!(refusal(&batch(9, 2, 0, None), &rules(10)), FollowerAppendError::UnexpectedOffset { .. }));
        let gap = [batch(10, 2, 0, None), batch(13, 1, 0, None)].concat();
        assert!(matches!(
            refusal(&gap, &rules(10)),
            FollowerAppendError::OffsetsOutOfOrder { base_offset: 13, expected: 12 }
        ));
        let overlap = [batch(10, 2, 0, None), batch(11, 1, 0, None)].concat();
        assert!(matches!(refusal(&overlap, &rules(10)), FollowerAppendError::OffsetsOutOfOrder { .. }));
        // A compacted log accepts gaps, never overlaps.
        let compacted = FollowerRules { allow_gaps: true, ..rules(10) };
        assert!(check_batches(&gap, &compacted).is_ok());
        assert!(check_batches(&batch(12, 1, 0, None), &compacted).is_ok());
        assert!(matches!(refusal(&overlap, &compacted), FollowerAppendError::OffsetsOutOfOrder { .. }));
    }

    #[test]
    fn epochs_may_not_go_down() {
        let down = [batch(0, 1, 3, None), batch(1, 1, 2, None)].concat();
        assert!(matches!(
            refusal(&down, &rules(0)),
            FollowerAppendError::EpochOutOfOrder { base_offset: 1, epoch: 2, previous: 3 }
        ));
        let after_log = FollowerRules { last_epoch: Some(5), ..rules(0) };
        assert!(matches!(refusal(&batch(0, 1, 4, None), &after_log), FollowerAppendError::EpochOutOfOrder { .. }));
        assert!(matches!(refusal(&batch(0, 1, -1, None), &rules(0)), FollowerAppendError::EpochOutOfOrder { .. }));
        assert!(check_batches(&batch(0, 1, 5, None), &after_log).is_ok());
    }

    #[test]
    fn corrupt_or_partial_bytes_are_refused() {
        let good = batch(0, 2, 0, None);
        let mut flipped = good.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert!(matches!(refusal(&flipped, &rules(0)), FollowerAppendError::CorruptBatch { position: 0, .. }));
        assert!(matches!(
            refusal(&good[..good.len() - 1], &rules(0)),
            FollowerAppendError::PartialBatch { position: 0, .. }
        ));
        let trailing = [good.clone(), good[..20].to_vec()].concat();
        assert!(matches!(refusal(&trailing, &rules(0)), FollowerAppendError::PartialBatch { .. }));
        // A base offset that is not covered by the CRC, set negative.
        let mut negative = good.clone();
        set_base_offset(&mut negative, -5);
        assert!(matches!(refusal(&negative, &rules(0)), FollowerAppendError::CorruptBatch { .. }));
        // A length field claiming gigabytes is refused before anything is sized by it.
        let mut huge = good.clone();
        huge[8..12].copy_from_slice(&(i32::MAX - 12).to_be_bytes());
        assert!(matches!(refusal(&huge, &rules(0)), FollowerAppendError::CorruptBatch { .. }));
        let small_segments = FollowerRules { segment_bytes: 50, ..rules(0) };
        assert!(matches!(check_batches(&good, &small_segments), Err(LogError::BatchLargerThanSegment { .. })));
    }

    #[test]
    fn an_empty_log_starts_again_inside_the_first_batch() {
        let empty = FollowerRules { empty: true, ..rules(12) };
        let (_, restart) = check_batches(&batch(10, 5, 0, None), &empty).expect("straddles");
        assert!(restart);
        assert!(matches!(refusal(&batch(10, 5, 0, None), &rules(12)), FollowerAppendError::UnexpectedOffset { .. }));
        assert!(matches!(refusal(&batch(5, 5, 0, None), &empty), FollowerAppendError::UnexpectedOffset { .. }));
    }

    #[test]
    fn the_leaders_batches_are_kept_byte_for_byte() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = LogConfig { segment_bytes: 300, ..LogConfig::default() };
        let mut log = open(dir.path(), config);
        let leader: Vec<Vec<u8>> =
            (0..10).map(|i| batch(i * 2, 2, (i / 4) as i32, Some((7, 0, (i * 2) as i32)))).collect();
        let first = log.append_as_follower(&leader[..4].concat(), 0).expect("append");
        assert_eq!((first.batches, first.first_offset, first.last_offset, first.log_end_offset), (4, 0, 7, 8));
        log.append_as_follower(&leader[4..].concat(), 0).expect("append");
        assert!(log.segment_count() > 1, "the follower rolls as a leader does");
        assert_eq!(read_all(&log), leader.concat(), "bytes as the leader wrote them");
        assert_eq!(log.epochs.entries(), &[(0, 0), (1, 8), (2, 16)]);
        assert_eq!((log.log_end_offset(), log.durable_offset(), log.high_watermark()), (20, 0, 0));
        // Producer 7's sequence state came with the batches: its next batch
        // follows on, a retry of the last one is a duplicate.
        let next = BatchHeader::parse(&batch(0, 1, 2, Some((7, 0, 20)))).expect("header");
        assert_eq!(log.check_sequence(&next).expect("in sequence"), crate::producer::SequenceCheck::Append);
        let retry = BatchHeader::parse(&batch(0, 2, 2, Some((7, 0, 18)))).expect("header");
        assert!(
            matches!(log.check_sequence(&retry), Ok(crate::producer::SequenceCheck::Duplicate(b)) if b.base_offset == 18)
        );
        let gap = BatchHeader::parse(&batch(0, 1, 2, Some((7, 0, 25)))).expect("header");
        assert!(matches!(log.check_sequence(&gap), Err(LogError::OutOfOrderSequence { .. })));
        // All of it survives a reopen after a crash.
        drop(log);
        let reopened = PartitionLog::open(dir.path(), config, false, -1, 0).expect("reopen");
        assert_eq!(read_all(&reopened), leader.concat());
        assert_eq!(reopened.epochs.entries(), &[(0, 0), (1, 8), (2, 16)]);
        assert!(matches!(reopened.check_sequence(&retry), Ok(crate::producer::SequenceCheck::Duplicate(_))));
    }

    #[test]
    fn a_refused_append_changes_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut log = open(dir.path(), LogConfig::default());
        log.append_as_follower(&batch(0, 2, 3, None), 0).expect("append");
        let before = read_all(&log);
        let refused = [
            [batch(2, 1, 3, None), batch(4, 1, 3, None)].concat(), // a gap after a good batch
            batch(1, 1, 3, None),                                  // overlaps the log
            batch(2, 1, 2, None),                                  // an older epoch
            [batch(2, 1, 3, None), vec![0; 10]].concat(),          // trailing garbage
        ];
        for bytes in &refused {
            assert!(matches!(log.append_as_follower(bytes, 0), Err(LogError::FollowerAppend(_))), "{bytes:?}");
            assert_eq!(read_all(&log), before);
            assert_eq!(log.log_end_offset(), 2);
            assert_eq!(log.epochs.entries(), &[(3, 0)]);
        }
    }

    #[test]
    fn an_epoch_assigned_at_the_log_end_without_records_gives_way() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut log = open(dir.path(), LogConfig::default());
        log.append_as_follower(&batch(0, 2, 4, None), 0).expect("append");
        // It led in epoch 6 for a moment and wrote nothing.
        log.assign_epoch(6).expect("assign");
        assert_eq!(log.epochs.entries(), &[(4, 0), (6, 2)]);
        // The new leader's log continues epoch 4, then epoch 7.
        log.append_as_follower(&[batch(2, 1, 4, None), batch(3, 1, 7, None)].concat(), 0).expect("append");
        assert_eq!(log.epochs.entries(), &[(4, 0), (7, 3)]);
    }

    #[test]
    fn an_empty_log_follows_a_leader_whose_start_is_inside_a_batch() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut log = open(dir.path(), LogConfig::default());
        log.truncate_fully_and_start_at(12, BelowHighWatermark::Allow).expect("start at 12").retired.remove();
        let leader = batch(10, 5, 1, None);
        let done = log.append_as_follower(&leader, 0).expect("append");
        done.retired.remove();
        assert_eq!((done.first_offset, log.log_start_offset(), log.log_end_offset()), (10, 10, 15));
        assert_eq!(read_all(&log), leader);
    }

    #[test]
    fn compacted_logs_take_the_leaders_gaps() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = LogConfig {
            compaction: crate::CompactionConfig { enabled: true, ..crate::CompactionConfig::default() },
            ..LogConfig::default()
        };
        let mut log = open(dir.path(), config);
        let leader = [batch(0, 2, 0, None), batch(5, 1, 0, None), batch(9, 3, 0, None)].concat();
        log.append_as_follower(&leader, 0).expect("append");
        assert_eq!(log.log_end_offset(), 12);
        assert_eq!(read_all(&log), leader);
        let plan = log.plan_read(3, 12).expect("plan").expect("a batch after the gap");
        assert_eq!(BatchHeader::parse(&plan.execute(1 << 20, true).expect("read")).expect("h").base_offset, 5);
    }
}
