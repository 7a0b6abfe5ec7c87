//! An in-memory partition log with a disk model: records are written, then
//! made durable by a flush; a crash keeps only the durable ones (and the
//! high watermark last checkpointed, as Kafka's replication-offset
//! checkpoint would).

use crate::epochs::EpochCache;
use crate::log::{EpochEndOffset, LogError, ReplicaLog};
use crate::types::{LeaderEpoch, Offset};

/// A record: a unique id (its identity across replicas) and the leader
/// epoch it was written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SimRecord {
    pub(crate) id: u64,
    pub(crate) epoch: LeaderEpoch,
}

/// What a fetch response carries: records and the offset of the first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SimBatch {
    pub(crate) base_offset: Offset,
    pub(crate) records: Vec<SimRecord>,
}

/// One replica's log.
#[derive(Debug, Clone, Default)]
pub(crate) struct SimLog {
    records: Vec<SimRecord>,
    durable: usize,
    high_watermark: Offset,
    checkpointed_high_watermark: Offset,
    cache: EpochCache,
    /// Bumped whenever records are removed (truncation, crash).
    generation: u64,
}

impl SimLog {
    pub(crate) fn generation(&self) -> u64 {
        self.generation
    }

    pub(crate) fn records(&self) -> &[SimRecord] {
        &self.records
    }

    /// The records that survive a crash.
    pub(crate) fn durable_records(&self) -> &[SimRecord] {
        &self.records[..self.durable]
    }

    pub(crate) fn cache(&self) -> &EpochCache {
        &self.cache
    }

    /// A leader appends `ids` in `epoch`; returns the last offset.
    pub(crate) fn append_as_leader(&mut self, epoch: LeaderEpoch, ids: &[u64]) -> Offset {
        assert_eq!(self.cache.latest_epoch(), Some(epoch), "a leader appends in the epoch it started");
        self.records.extend(ids.iter().map(|&id| SimRecord { id, epoch }));
        self.records.len() as Offset - 1
    }

    /// Reads from `from` up to `max` records.
    pub(crate) fn read(&self, from: Offset, max: usize) -> SimBatch {
        let start = usize::try_from(from).unwrap_or(0).min(self.records.len());
        let end = (start + max).min(self.records.len());
        SimBatch { base_offset: start as Offset, records: self.records[start..end].to_vec() }
    }

    /// fsync: everything written is durable.
    pub(crate) fn flush(&mut self) {
        self.durable = self.records.len();
        self.checkpointed_high_watermark = self.high_watermark;
    }

    /// A power loss: what was not fsynced is gone; the epoch cache is cut
    /// to the log's end as recovery does, and the high watermark is the last
    /// checkpoint's.
    pub(crate) fn crash(&mut self) {
        self.generation += 1;
        self.records.truncate(self.durable);
        self.cache.truncate_from_end(self.durable as Offset);
        self.high_watermark = self.checkpointed_high_watermark.min(self.durable as Offset);
        self.checkpointed_high_watermark = self.high_watermark;
    }

    /// Checks the log's own invariants (cheaply: appends keep the epochs
    /// in order, so checking each epoch's boundary is enough).
    pub(crate) fn check(&self) -> Result<(), String> {
        let end = self.records.len();
        if self.durable > end || self.high_watermark > end as Offset || self.high_watermark < 0 {
            return Err(format!("offsets out of order: durable {} hw {} end {end}", self.durable, self.high_watermark));
        }
        let entries = self.cache.entries();
        if end > 0 && entries.first().is_none_or(|&(_, start)| start != 0) {
            return Err(format!("records from 0 but the epoch cache is {entries:?}"));
        }
        for &(epoch, start) in entries {
            let Ok(start) = usize::try_from(start) else {
                return Err(format!("epoch cache {entries:?} has a negative start"));
            };
            if start > end {
                return Err(format!("epoch cache {entries:?} past the log end {end}"));
            }
            let starts_here = start == end || self.records[start].epoch == epoch;
            let ends_before = start == 0 || self.records[start - 1].epoch < epoch;
            if !starts_here || !ends_before {
                return Err(format!("epoch {epoch} does not start at {start}: cache {entries:?}"));
            }
        }
        if let Some(last) = self.records.last()
            && self.cache.epoch_for_offset(end as Offset - 1) != Some(last.epoch)
        {
            return Err(format!("last record of epoch {} but the cache is {entries:?}", last.epoch));
        }
        Ok(())
    }
}

impl ReplicaLog for SimLog {
    type Records = SimBatch;

    fn log_end_offset(&self) -> Offset {
        self.records.len() as Offset
    }

    fn durable_offset(&self) -> Offset {
        self.durable as Offset
    }

    fn high_watermark(&self) -> Offset {
        self.high_watermark
    }

    fn set_high_watermark(&mut self, offset: Offset) {
        assert!(offset <= self.log_end_offset(), "high watermark {offset} past the log end {}", self.log_end_offset());
        self.high_watermark = offset;
    }

    fn latest_epoch(&self) -> Option<LeaderEpoch> {
        self.cache.latest_epoch()
    }

    fn end_offset_for_epoch(&self, epoch: LeaderEpoch) -> Option<EpochEndOffset> {
        self.cache.end_offset_for(epoch, self.log_end_offset())
    }

    fn assign_epoch_start(&mut self, epoch: LeaderEpoch, start_offset: Offset) -> Result<(), LogError> {
        self.cache.assign(epoch, start_offset);
        Ok(())
    }

    fn append_as_follower(&mut self, batch: SimBatch) -> Result<(), LogError> {
        if batch.base_offset != self.log_end_offset() {
            return Err(LogError(format!(
                "batch at {} but the log ends at {}",
                batch.base_offset,
                self.log_end_offset()
            )));
        }
        for record in batch.records {
            let offset = self.log_end_offset();
            if self.cache.latest_epoch().is_none_or(|latest| latest < record.epoch) {
                self.cache.assign(record.epoch, offset);
            } else if self.cache.latest_epoch() != Some(record.epoch) {
                return Err(LogError(format!(
                    "record of epoch {} after epoch {:?}",
                    record.epoch,
                    self.cache.latest_epoch()
                )));
            }
            self.records.push(record);
        }
        Ok(())
    }

    fn truncate_to(&mut self, offset: Offset) -> Result<(), LogError> {
        let keep = usize::try_from(offset).map_err(|_| LogError(format!("truncate to {offset}")))?;
        self.generation += 1;
        self.records.truncate(keep);
        self.durable = self.durable.min(keep);
        self.high_watermark = self.high_watermark.min(offset);
        self.checkpointed_high_watermark = self.checkpointed_high_watermark.min(offset);
        self.cache.truncate_from_end(offset);
        Ok(())
    }
}
