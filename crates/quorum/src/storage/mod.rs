//! The storage seam: two small synchronous traits ([`LogStore`],
//! [`MachineStore`]) that say what the quorum needs from a durable log and a
//! state machine, and the adapter ([`adapter`]) that turns them into
//! openraft's `RaftLogStorage` and `RaftStateMachine`.
//!
//! Implementations: [`memory`] (the simulator's, with a disk that loses
//! what was not flushed when it crashes) and, once the metadata crate's
//! Raft-shaped log lands, a thin mapping onto `MetadataLog` /
//! `MetadataStateMachine` (`docs/design/metadata-quorum.md` lists the
//! mapping).
//!
//! Durability contract (what openraft's safety rests on):
//! - [`LogStore::append`] may leave entries unflushed; they are durable once
//!   a later [`LogStore::flush`] returns `Ok`. The adapter acknowledges an
//!   append to openraft (which then acknowledges it to the leader, or counts
//!   it towards a commit) only after that flush.
//! - [`LogStore::save_vote`] is durable when it returns: a node never grants
//!   or campaigns on a vote a crash could forget.
//! - [`LogStore::truncate`], [`LogStore::purge`] and
//!   [`LogStore::save_committed`] are durable when they return;
//!   `save_committed` flushes the log first, so a durable committed mark
//!   never names entries that are not.
//! - [`MachineStore::build_snapshot`] and [`MachineStore::install_snapshot`]
//!   are durable when they return (the log is purged only after).

pub mod adapter;
pub mod memory;
#[cfg(feature = "metadata-log")]
pub mod metadata;

use crate::types::{Entry, LogId, QuorumApp, SnapshotMeta, StoredMembership, Vote};

/// A storage failure, as one line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct StoreError(pub String);

impl StoreError {
    /// An error from anything printable.
    pub fn new(message: impl std::fmt::Display) -> StoreError {
        StoreError(message.to_string())
    }
}

/// The two ends of the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LogEnds {
    /// The last purged entry (its id is kept after it is gone).
    pub last_purged: Option<LogId>,
    /// The last entry present, or `last_purged` when none is.
    pub last: Option<LogId>,
}

/// A durable Raft log with the vote and the committed mark.
pub trait LogStore<A: QuorumApp>: Send + 'static {
    /// The ends of the log.
    fn log_ends(&self) -> Result<LogEnds, StoreError>;
    /// Entries with index in `from..to` that are present, in order.
    fn entries(&self, from: u64, to: u64) -> Result<Vec<Entry<A>>, StoreError>;
    /// Writes entries after the last one (indexes consecutive); not durable yet.
    fn append(&mut self, entries: Vec<Entry<A>>) -> Result<(), StoreError>;
    /// Makes every appended entry durable.
    fn flush(&mut self) -> Result<(), StoreError>;
    /// Removes the entries from index `from` on; durable on return.
    fn truncate(&mut self, from: u64) -> Result<(), StoreError>;
    /// Forgets the entries up to `upto` (a snapshot covers them); durable on return.
    fn purge(&mut self, upto: LogId) -> Result<(), StoreError>;
    /// The saved vote.
    fn read_vote(&self) -> Result<Option<Vote>, StoreError>;
    /// Saves the vote; durable on return.
    fn save_vote(&mut self, vote: &Vote) -> Result<(), StoreError>;
    /// The saved committed mark.
    fn read_committed(&self) -> Result<Option<LogId>, StoreError>;
    /// Saves the committed mark (after flushing the log); durable on return.
    fn save_committed(&mut self, committed: LogId) -> Result<(), StoreError>;
}

/// The applied state and its snapshots.
pub trait MachineStore<A: QuorumApp>: Send + 'static {
    /// The last applied entry and the membership in effect.
    fn applied_state(&self) -> (Option<LogId>, StoredMembership);
    /// Applies one committed entry; the command's outcome (`None` for blank
    /// and membership entries).
    fn apply(&mut self, entry: &Entry<A>) -> Option<A::Outcome>;
    /// Writes a snapshot of the applied state, durably; its description and bytes.
    fn build_snapshot(&mut self) -> Result<(SnapshotMeta, Vec<u8>), StoreError>;
    /// The newest durable snapshot.
    fn current_snapshot(&self) -> Result<Option<(SnapshotMeta, Vec<u8>)>, StoreError>;
    /// Replaces the state with a snapshot received from the leader, durably.
    fn install_snapshot(&mut self, meta: &SnapshotMeta, bytes: &[u8]) -> Result<(), StoreError>;
}
