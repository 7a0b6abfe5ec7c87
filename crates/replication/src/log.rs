//! The seam between the core and a partition log: what the core reads
//! (offsets, the leader epoch cache) and the few changes it makes (epoch
//! starts, follower appends, truncation, the high watermark).
//!
//! The broker implements [`ReplicaLog`] over `tributary_log::PartitionLog`
//! (under its lock); the simulator over an in-memory log. What every
//! implementation must guarantee is written on each method: the core's
//! promises rest on them.

use crate::types::{LeaderEpoch, Offset};

/// The answer to "where does epoch `e` end?" (Kafka's `endOffsetFor`): the
/// largest epoch at or below the one asked for, and the offset where the
/// next epoch starts (the log end offset for the latest epoch).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochEndOffset {
    /// The largest known epoch ≤ the requested one (or the requested one
    /// itself when it is older than every known epoch).
    pub epoch: LeaderEpoch,
    /// Where that epoch ends.
    pub end_offset: Offset,
}

/// A log operation failed (a disk error): the broker takes the partition
/// offline; the core does not retry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogError(pub String);

impl std::fmt::Display for LogError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "log error: {}", self.0)
    }
}

impl std::error::Error for LogError {}

/// One replica's partition log, as the core sees it.
pub trait ReplicaLog {
    /// The records a follower receives in a fetch response and appends as
    /// they are (bytes for the broker).
    type Records;

    /// The offset the next append gets.
    fn log_end_offset(&self) -> Offset;

    /// Every offset below this is fsynced here. Only a flush moves it
    /// forward; a truncation may move it back to the truncation point.
    fn durable_offset(&self) -> Offset;

    /// The high watermark this log keeps.
    fn high_watermark(&self) -> Offset;

    /// Stores a new high watermark (the core moves it; the log keeps it and
    /// checkpoints it). Never above the log end offset.
    fn set_high_watermark(&mut self, offset: Offset);

    /// The epoch of the last entry in the leader epoch cache.
    fn latest_epoch(&self) -> Option<LeaderEpoch>;

    /// Kafka's `endOffsetFor` over this log's leader epoch cache (see
    /// [`crate::epochs::EpochCache::end_offset_for`]); `None` when undefined.
    fn end_offset_for_epoch(&self, epoch: LeaderEpoch) -> Option<EpochEndOffset>;

    /// Records that `epoch` starts at `start_offset` (the log end) when this
    /// replica becomes its leader. Must be durable before it returns (Kafka
    /// writes the leader-epoch checkpoint synchronously), so a restart never
    /// forgets an epoch this replica led.
    fn assign_epoch_start(&mut self, epoch: LeaderEpoch, start_offset: Offset) -> Result<(), LogError>;

    /// Appends a follower's fetched records at the log end, keeping their
    /// offsets and leader epochs, and records in the epoch cache every epoch
    /// that starts in them. Not made durable here: the flusher does that.
    fn append_as_follower(&mut self, records: Self::Records) -> Result<(), LogError>;

    /// Removes every record at or above `offset` and the epochs that start
    /// there, also when `offset` is the log end (an epoch this replica began
    /// as leader without writing starts there). Must be durable before it returns (the shortened files and the
    /// epoch checkpoint fsynced): a crash must not bring back records the
    /// follower has already replaced in its reports to the leader.
    fn truncate_to(&mut self, offset: Offset) -> Result<(), LogError>;
}
