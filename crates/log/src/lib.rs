//! The partition log storage engine.
//!
//! ```text
//! <data>/<topic>-<partition>/
//!   00000000000000000000.log        batches exactly as appended (offsets, epoch stamped)
//!   00000000000000000000.index      sparse offset index  (u32 relative offset, u32 position)
//!   00000000000000000000.timeindex  sparse time index    (i64 max timestamp, u32 relative offset)
//!   00000000000000012345.snapshot   idempotent producer state at offset 12345
//!   leader-epoch-checkpoint         epoch → start offset (Kafka's text format)
//!   tributary-checkpoint            recovery point, log start offset, cleaner offset
//!   00000000000000000000.log.cleaned  a compaction in progress (deleted on open)
//!   <base>.<end>.swap               a finished compaction not yet swapped in (completed on open)
//!   *.deleted                       a dropped segment's file, unlinked after the lock (removed on open)
//! ```
//!
//! Append writes to the page cache under the partition's lock and moves the
//! log end offset (a leader's append stamps offsets and its epoch; a
//! follower's, [`PartitionLog::append_as_follower`], keeps the leader's
//! batches as they are, and [`PartitionLog::truncate_to`] drops a divergent
//! tail); a group-commit flusher fsyncs via [`log::FlushPlan`] and
//! only then does the durable offset move; the high watermark is moved by
//! whoever decides what is committed ([`offsets`] has the three offsets and
//! their invariants). Recovery after an unclean stop validates every batch past the
//! recovery point (length, CRC-32C, ascending offsets), cuts a torn tail and
//! rebuilds indexes; producer state is restored from the newest snapshot plus
//! the batches after it. Compacted topics are cleaned by [`cleaner`] off
//! the request path.
//!
//! The crate knows `record`, never the wire protocol.

pub mod checkpoint;
pub mod cleaner;
pub mod epoch;
pub mod error;
mod files;
pub mod fuzzing;
pub mod index;
pub mod log;
pub mod offsets;
pub mod producer;
pub mod retired;
pub mod segment;

pub use cleaner::{CleanSnapshot, Cleaned, CleanerLimits, CompactionConfig, PublishedClean};
pub use error::{LogError, Result};
pub use log::{
    AppendInfo, AppendOutcome, BelowHighWatermark, FlushPlan, FollowerAppend, FollowerAppendError, LogConfig,
    PartitionLog, ReadPlan, TimestampSearch, Truncated,
};
pub use offsets::LogOffsets;
pub use retired::RetiredFiles;
pub use segment::FileSlice;
