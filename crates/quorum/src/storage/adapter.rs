//! openraft's storage traits over our seam.
//!
//! [`LogAdapter`] implements `RaftLogStorage` over a [`LogStore`]: the store
//! sits behind a mutex shared with the log readers openraft's replication
//! tasks use. An append is written at once and acknowledged to openraft (the
//! `LogFlushed` callback) only after a flush that covers it. The flush is
//! either immediate or, to let the simulator crash a node between a write
//! and its fsync, after a delay ([`FlushPolicy`]); every other write
//! (truncate, purge, vote, committed) first completes the pending flushes,
//! so writes reach the disk in the order openraft issued them.
//!
//! [`MachineAdapter`] implements `RaftStateMachine` over a [`MachineStore`]
//! and publishes every applied entry ([`Applied`]) to the quorum's consumer
//! and the applied log id to a watch.

use std::io::Cursor;
use std::ops::{Bound, RangeBounds};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use openraft::storage::{LogFlushed, RaftLogStorage, RaftStateMachine, Snapshot};
use openraft::{
    AnyError, ErrorSubject, ErrorVerb, OptionalSend, RaftLogReader, RaftSnapshotBuilder, StorageError, StorageIOError,
};
use tokio::sync::{mpsc, watch};

use super::{LogStore, MachineStore, StoreError};
use crate::types::{
    Applied, Entry, EntryPayload, LogId, NodeId, QuorumApp, QuorumTypes, SnapshotMeta, StoredMembership, Vote,
};

type C<A> = QuorumTypes<A>;

fn io_error(subject: ErrorSubject<NodeId>, verb: ErrorVerb, e: &StoreError) -> StorageError<NodeId> {
    StorageIOError::new(subject, verb, AnyError::new(e)).into()
}

/// When an append is flushed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FlushPolicy {
    /// Before `append` returns (production).
    #[default]
    Immediate,
    /// This long after the append (the simulator's window for losing
    /// unflushed writes in a crash).
    After(Duration),
}

struct LogShared<A: QuorumApp, L> {
    store: L,
    /// Appends written but not yet acknowledged, oldest first.
    pending: Vec<LogFlushed<C<A>>>,
}

impl<A: QuorumApp, L: LogStore<A>> LogShared<A, L> {
    /// Flushes and acknowledges every pending append.
    fn complete_pending(&mut self) -> Result<(), StoreError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let result = self.store.flush();
        for callback in self.pending.drain(..) {
            callback.log_io_completed(match &result {
                Ok(()) => Ok(()),
                Err(e) => Err(std::io::Error::other(e.0.clone())),
            });
        }
        result
    }
}

/// openraft's log storage over a [`LogStore`].
pub struct LogAdapter<A: QuorumApp, L> {
    shared: Arc<Mutex<LogShared<A, L>>>,
    policy: FlushPolicy,
}

impl<A: QuorumApp, L> Clone for LogAdapter<A, L> {
    fn clone(&self) -> Self {
        LogAdapter { shared: self.shared.clone(), policy: self.policy }
    }
}

impl<A: QuorumApp, L> std::fmt::Debug for LogAdapter<A, L> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogAdapter").field("policy", &self.policy).finish_non_exhaustive()
    }
}

impl<A: QuorumApp, L: LogStore<A>> LogAdapter<A, L> {
    /// Wraps `store`.
    pub fn new(store: L, policy: FlushPolicy) -> LogAdapter<A, L> {
        LogAdapter { shared: Arc::new(Mutex::new(LogShared { store, pending: Vec::new() })), policy }
    }

    fn lock(&self) -> MutexGuard<'_, LogShared<A, L>> {
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs a write after the pending flushes.
    #[allow(clippy::result_large_err)] // openraft's error type, not ours
    fn write<T>(
        &self,
        subject: ErrorSubject<NodeId>,
        op: impl FnOnce(&mut L) -> Result<T, StoreError>,
    ) -> Result<T, StorageError<NodeId>> {
        let mut shared = self.lock();
        shared.complete_pending().map_err(|e| io_error(ErrorSubject::Logs, ErrorVerb::Write, &e))?;
        op(&mut shared.store).map_err(|e| io_error(subject, ErrorVerb::Write, &e))
    }
}

fn range_to_bounds(range: &impl RangeBounds<u64>) -> (u64, u64) {
    let from = match range.start_bound() {
        Bound::Included(&s) => s,
        Bound::Excluded(&s) => s.saturating_add(1),
        Bound::Unbounded => 0,
    };
    let to = match range.end_bound() {
        Bound::Included(&e) => e.saturating_add(1),
        Bound::Excluded(&e) => e,
        Bound::Unbounded => u64::MAX,
    };
    (from, to)
}

impl<A: QuorumApp, L: LogStore<A>> RaftLogReader<C<A>> for LogAdapter<A, L> {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + std::fmt::Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<A>>, StorageError<NodeId>> {
        let (from, to) = range_to_bounds(&range);
        self.lock().store.entries(from, to).map_err(|e| io_error(ErrorSubject::Logs, ErrorVerb::Read, &e))
    }
}

impl<A: QuorumApp, L: LogStore<A>> RaftLogStorage<C<A>> for LogAdapter<A, L> {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<openraft::LogState<C<A>>, StorageError<NodeId>> {
        let ends = self.lock().store.log_ends().map_err(|e| io_error(ErrorSubject::Logs, ErrorVerb::Read, &e))?;
        Ok(openraft::LogState { last_purged_log_id: ends.last_purged, last_log_id: ends.last })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), StorageError<NodeId>> {
        self.write(ErrorSubject::Vote, |s| s.save_vote(vote))
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, StorageError<NodeId>> {
        self.lock().store.read_vote().map_err(|e| io_error(ErrorSubject::Vote, ErrorVerb::Read, &e))
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError<NodeId>> {
        match committed {
            Some(c) => self.write(ErrorSubject::Store, |s| s.save_committed(c)),
            None => Ok(()),
        }
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError<NodeId>> {
        self.lock().store.read_committed().map_err(|e| io_error(ErrorSubject::Store, ErrorVerb::Read, &e))
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<C<A>>) -> Result<(), StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry<A>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let entries: Vec<Entry<A>> = entries.into_iter().collect();
        let mut shared = self.lock();
        shared.store.append(entries).map_err(|e| io_error(ErrorSubject::Logs, ErrorVerb::Write, &e))?;
        shared.pending.push(callback);
        match self.policy {
            FlushPolicy::Immediate => {
                shared.complete_pending().map_err(|e| io_error(ErrorSubject::Logs, ErrorVerb::Write, &e))?;
            }
            FlushPolicy::After(delay) => {
                drop(shared);
                let me = self.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    if let Err(e) = me.lock().complete_pending() {
                        tracing::debug!(error = %e, "delayed metadata log flush failed");
                    }
                });
            }
        }
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError<NodeId>> {
        self.write(ErrorSubject::Logs, |s| s.truncate(log_id.index))
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError<NodeId>> {
        self.write(ErrorSubject::Logs, |s| s.purge(log_id))
    }
}

/// Where applied entries go.
pub struct AppliedSink<A: QuorumApp> {
    events: mpsc::UnboundedSender<Applied<A>>,
    applied: watch::Sender<Option<LogId>>,
}

impl<A: QuorumApp> std::fmt::Debug for AppliedSink<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppliedSink").field("applied", &*self.applied.borrow()).finish()
    }
}

impl<A: QuorumApp> AppliedSink<A> {
    /// A sink, its event receiver and its applied-id watch.
    pub fn new(
        initial: Option<LogId>,
    ) -> (AppliedSink<A>, mpsc::UnboundedReceiver<Applied<A>>, watch::Receiver<Option<LogId>>) {
        let (events, events_rx) = mpsc::unbounded_channel();
        let (applied, applied_rx) = watch::channel(initial);
        (AppliedSink { events, applied }, events_rx, applied_rx)
    }

    fn publish(&self, event: Applied<A>) {
        let id = event.log_id();
        // A consumer that went away loses nothing the state does not hold.
        let _ = self.events.send(event);
        self.applied.send_replace(id);
    }
}

/// openraft's state machine over a [`MachineStore`].
pub struct MachineAdapter<A: QuorumApp, M> {
    store: Arc<Mutex<M>>,
    sink: Arc<AppliedSink<A>>,
}

impl<A: QuorumApp, M> Clone for MachineAdapter<A, M> {
    fn clone(&self) -> Self {
        MachineAdapter { store: self.store.clone(), sink: self.sink.clone() }
    }
}

impl<A: QuorumApp, M> std::fmt::Debug for MachineAdapter<A, M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MachineAdapter").finish_non_exhaustive()
    }
}

impl<A: QuorumApp, M: MachineStore<A>> MachineAdapter<A, M> {
    /// Wraps a store shared with readers of the state; publishes a
    /// `Restored` event for the state it starts from.
    pub fn new(store: Arc<Mutex<M>>, sink: AppliedSink<A>) -> MachineAdapter<A, M> {
        let adapter = MachineAdapter { store, sink: Arc::new(sink) };
        let (last, _) = adapter.lock().applied_state();
        adapter.sink.publish(Applied::Restored { last_included: last });
        adapter
    }

    fn lock(&self) -> MutexGuard<'_, M> {
        self.store.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl<A: QuorumApp, M: MachineStore<A>> RaftSnapshotBuilder<C<A>> for MachineAdapter<A, M> {
    async fn build_snapshot(&mut self) -> Result<Snapshot<C<A>>, StorageError<NodeId>> {
        let (meta, bytes) =
            self.lock().build_snapshot().map_err(|e| io_error(ErrorSubject::Snapshot(None), ErrorVerb::Write, &e))?;
        Ok(Snapshot { meta, snapshot: Box::new(Cursor::new(bytes)) })
    }
}

impl<A: QuorumApp, M: MachineStore<A>> RaftStateMachine<C<A>> for MachineAdapter<A, M> {
    type SnapshotBuilder = Self;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError<NodeId>> {
        Ok(self.lock().applied_state())
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Option<A::Outcome>>, StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry<A>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut store = self.lock();
        let mut outcomes = Vec::new();
        for entry in entries {
            let outcome = store.apply(&entry);
            let event = match (entry.payload, &outcome) {
                (EntryPayload::<A>::Normal(command), Some(outcome)) => {
                    Applied::Command { log_id: entry.log_id, command, outcome: outcome.clone() }
                }
                (EntryPayload::<A>::Membership(membership), _) => {
                    Applied::Membership { log_id: entry.log_id, membership }
                }
                _ => Applied::Blank { log_id: entry.log_id },
            };
            self.sink.publish(event);
            outcomes.push(outcome);
        }
        Ok(outcomes)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError<NodeId>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError<NodeId>> {
        let bytes = snapshot.into_inner();
        self.lock()
            .install_snapshot(meta, &bytes)
            .map_err(|e| io_error(ErrorSubject::Snapshot(Some(meta.signature())), ErrorVerb::Write, &e))?;
        self.sink.publish(Applied::Restored { last_included: meta.last_log_id });
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<C<A>>>, StorageError<NodeId>> {
        let current =
            self.lock().current_snapshot().map_err(|e| io_error(ErrorSubject::Snapshot(None), ErrorVerb::Read, &e))?;
        Ok(current.map(|(meta, bytes)| Snapshot { meta, snapshot: Box::new(Cursor::new(bytes)) }))
    }
}
