//! In-memory storage with a simulated disk: what the simulator runs on.
//!
//! A [`MemDisk`] outlives the node that uses it (it is the node's "disk").
//! It keeps two views of the log: what was written and what was flushed.
//! [`MemDisk::crash`] keeps the flushed view plus a prefix (chosen by the
//! caller's random number) of what was written after it, the way a real
//! disk may or may not have persisted unsynced writes; the vote, committed
//! mark, purge mark and snapshot are written durably when saved, so they
//! survive as saved. Handles opened before a crash are refused afterwards
//! (a dead process does not write).
//!
//! The applied state is not durable: after a restart the machine is the
//! last snapshot, and openraft re-applies the committed entries after it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use super::{LogEnds, LogStore, MachineStore, StoreError};
use crate::types::{Entry, EntryPayload, LogId, QuorumApp, SnapshotMeta, StoredMembership, Vote};

/// An application state machine kept in memory.
pub trait Machine<A: QuorumApp>: Default + Send + 'static {
    /// Applies a committed command.
    fn apply(&mut self, log_id: LogId, command: &A::Command) -> A::Outcome;
    /// Serializes the state for a snapshot.
    fn to_bytes(&self) -> Result<Vec<u8>, StoreError>;
    /// Reads a snapshot's state.
    fn from_bytes(bytes: &[u8]) -> Result<Self, StoreError>;
}

struct DiskState<A: QuorumApp> {
    /// Bumped by each crash; handles of an older generation are refused.
    generation: u64,
    written: BTreeMap<u64, Entry<A>>,
    flushed: BTreeMap<u64, Entry<A>>,
    last_purged: Option<LogId>,
    vote: Option<Vote>,
    committed: Option<LogId>,
    snapshot: Option<(SnapshotMeta, Vec<u8>)>,
    flushes: u64,
    /// Flushes do nothing (a disk that lies about fsync), for tests that
    /// show the simulator catches it.
    lying_flush: bool,
}

/// A node's simulated disk (cheap to clone: clones share it).
pub struct MemDisk<A: QuorumApp> {
    state: Arc<Mutex<DiskState<A>>>,
}

impl<A: QuorumApp> Clone for MemDisk<A> {
    fn clone(&self) -> Self {
        MemDisk { state: self.state.clone() }
    }
}

impl<A: QuorumApp> std::fmt::Debug for MemDisk<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemDisk").finish_non_exhaustive()
    }
}

impl<A: QuorumApp> Default for MemDisk<A> {
    fn default() -> Self {
        MemDisk::new()
    }
}

impl<A: QuorumApp> MemDisk<A> {
    /// An empty disk.
    pub fn new() -> MemDisk<A> {
        MemDisk {
            state: Arc::new(Mutex::new(DiskState {
                generation: 0,
                written: BTreeMap::new(),
                flushed: BTreeMap::new(),
                last_purged: None,
                vote: None,
                committed: None,
                snapshot: None,
                flushes: 0,
                lying_flush: false,
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, DiskState<A>> {
        // A panic while holding the lock leaves plain data behind; keep going.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The process died: everything not flushed is lost, except that the
    /// first `random % (unflushed + 1)` unflushed entries happen to have
    /// reached the platter. Returns how many unflushed entries were lost.
    pub fn crash(&self, random: u64) -> usize {
        let mut s = self.lock();
        s.generation += 1;
        let flushed_last = s.flushed.keys().next_back().copied();
        let unflushed: Vec<(u64, Entry<A>)> = s
            .written
            .iter()
            .filter(|(k, _)| flushed_last.is_none_or(|l| **k > l))
            .map(|(k, v)| (*k, v.clone()))
            .collect();
        let keep = usize::try_from(random % (unflushed.len() as u64 + 1)).unwrap_or(0);
        let mut survivors = s.flushed.clone();
        survivors.extend(unflushed.iter().take(keep).cloned());
        s.written = survivors.clone();
        s.flushed = survivors;
        unflushed.len() - keep
    }

    /// Makes every later flush a no-op that reports success: the disk lies
    /// about fsync. Only for tests that show the simulator catches it.
    pub fn break_fsync(&self) {
        self.lock().lying_flush = true;
    }

    /// The durable entries (for checks).
    pub fn flushed_entries(&self) -> Vec<Entry<A>> {
        self.lock().flushed.values().cloned().collect()
    }

    /// How many flushes reached the disk.
    pub fn flushes(&self) -> u64 {
        self.lock().flushes
    }

    /// Opens the log on this disk (as a new process would).
    pub fn open_log(&self) -> MemLog<A> {
        let generation = self.lock().generation;
        MemLog { disk: self.clone(), generation }
    }

    /// Opens the state machine: the last snapshot, or empty.
    pub fn open_machine<M: Machine<A>>(&self) -> Result<MemMachine<A, M>, StoreError> {
        let s = self.lock();
        let generation = s.generation;
        let (machine, last_applied, membership) = match &s.snapshot {
            Some((meta, bytes)) => (M::from_bytes(bytes)?, meta.last_log_id, meta.last_membership.clone()),
            None => (M::default(), None, StoredMembership::default()),
        };
        drop(s);
        Ok(MemMachine { disk: self.clone(), generation, machine, last_applied, membership, snapshots_built: 0 })
    }
}

/// The log on a [`MemDisk`].
pub struct MemLog<A: QuorumApp> {
    disk: MemDisk<A>,
    generation: u64,
}

impl<A: QuorumApp> std::fmt::Debug for MemLog<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemLog").field("generation", &self.generation).finish()
    }
}

impl<A: QuorumApp> MemLog<A> {
    fn live(&self) -> Result<MutexGuard<'_, DiskState<A>>, StoreError> {
        let s = self.disk.lock();
        if s.generation != self.generation {
            return Err(StoreError::new("the disk crashed under this handle"));
        }
        Ok(s)
    }
}

impl<A: QuorumApp> LogStore<A> for MemLog<A> {
    fn log_ends(&self) -> Result<LogEnds, StoreError> {
        let s = self.live()?;
        let last = s.written.values().next_back().map(|e| e.log_id).or(s.last_purged);
        Ok(LogEnds { last_purged: s.last_purged, last })
    }

    fn entries(&self, from: u64, to: u64) -> Result<Vec<Entry<A>>, StoreError> {
        if from >= to {
            return Ok(Vec::new());
        }
        let s = self.live()?;
        Ok(s.written.range(from..to).map(|(_, e)| e.clone()).collect())
    }

    fn append(&mut self, entries: Vec<Entry<A>>) -> Result<(), StoreError> {
        let mut s = self.live()?;
        for entry in entries {
            let expected = s.written.keys().next_back().map(|i| i + 1).or(s.last_purged.map(|p| p.index + 1));
            if expected.is_some_and(|e| e != entry.log_id.index) {
                return Err(StoreError(format!("append of {} leaves a gap after {expected:?}", entry.log_id)));
            }
            s.written.insert(entry.log_id.index, entry);
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), StoreError> {
        let mut s = self.live()?;
        if s.lying_flush {
            return Ok(());
        }
        let from = s.flushed.keys().next_back().map_or(0, |l| l + 1);
        let new: Vec<(u64, Entry<A>)> = s.written.range(from..).map(|(k, v)| (*k, v.clone())).collect();
        s.flushed.extend(new);
        s.flushes += 1;
        Ok(())
    }

    fn truncate(&mut self, from: u64) -> Result<(), StoreError> {
        let mut s = self.live()?;
        if s.committed.is_some_and(|c| c.index >= from) {
            return Err(StoreError(format!("truncating from {from} would remove committed entries")));
        }
        s.written.split_off(&from);
        s.flushed.split_off(&from);
        Ok(())
    }

    fn purge(&mut self, upto: LogId) -> Result<(), StoreError> {
        let mut s = self.live()?;
        if s.last_purged.is_some_and(|p| p.index >= upto.index) {
            return Ok(());
        }
        s.last_purged = Some(upto);
        s.written = s.written.split_off(&(upto.index + 1));
        s.flushed = s.flushed.split_off(&(upto.index + 1));
        Ok(())
    }

    fn read_vote(&self) -> Result<Option<Vote>, StoreError> {
        Ok(self.live()?.vote)
    }

    fn save_vote(&mut self, vote: &Vote) -> Result<(), StoreError> {
        self.live()?.vote = Some(*vote);
        Ok(())
    }

    fn read_committed(&self) -> Result<Option<LogId>, StoreError> {
        Ok(self.live()?.committed)
    }

    fn save_committed(&mut self, committed: LogId) -> Result<(), StoreError> {
        self.flush()?;
        self.live()?.committed = Some(committed);
        Ok(())
    }
}

/// The state machine on a [`MemDisk`]: the applied state in memory, the
/// snapshots on the disk.
pub struct MemMachine<A: QuorumApp, M> {
    disk: MemDisk<A>,
    generation: u64,
    machine: M,
    last_applied: Option<LogId>,
    membership: StoredMembership,
    snapshots_built: u64,
}

impl<A: QuorumApp, M> std::fmt::Debug for MemMachine<A, M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemMachine").field("last_applied", &self.last_applied).finish_non_exhaustive()
    }
}

impl<A: QuorumApp, M: Machine<A>> MemMachine<A, M> {
    /// The applied state.
    pub fn machine(&self) -> &M {
        &self.machine
    }

    fn check_live(&self) -> Result<(), StoreError> {
        if self.disk.lock().generation != self.generation {
            return Err(StoreError::new("the disk crashed under this handle"));
        }
        Ok(())
    }
}

impl<A: QuorumApp, M: Machine<A>> MachineStore<A> for MemMachine<A, M> {
    fn applied_state(&self) -> (Option<LogId>, StoredMembership) {
        (self.last_applied, self.membership.clone())
    }

    fn apply(&mut self, entry: &Entry<A>) -> Option<A::Outcome> {
        self.last_applied = Some(entry.log_id);
        match &entry.payload {
            EntryPayload::<A>::Blank => None,
            EntryPayload::<A>::Normal(command) => Some(self.machine.apply(entry.log_id, command)),
            EntryPayload::<A>::Membership(m) => {
                self.membership = StoredMembership::new(Some(entry.log_id), m.clone());
                None
            }
        }
    }

    fn build_snapshot(&mut self) -> Result<(SnapshotMeta, Vec<u8>), StoreError> {
        self.check_live()?;
        let bytes = self.machine.to_bytes()?;
        self.snapshots_built += 1;
        let snapshot_id = match self.last_applied {
            Some(l) => format!("{}-{}-{}", l.leader_id.term, l.index, self.snapshots_built),
            None => format!("none-{}", self.snapshots_built),
        };
        let meta =
            SnapshotMeta { last_log_id: self.last_applied, last_membership: self.membership.clone(), snapshot_id };
        let mut s = self.disk.lock();
        if s.generation != self.generation {
            return Err(StoreError::new("the disk crashed under this handle"));
        }
        s.snapshot = Some((meta.clone(), bytes.clone()));
        Ok((meta, bytes))
    }

    fn current_snapshot(&self) -> Result<Option<(SnapshotMeta, Vec<u8>)>, StoreError> {
        Ok(self.disk.lock().snapshot.clone())
    }

    fn install_snapshot(&mut self, meta: &SnapshotMeta, bytes: &[u8]) -> Result<(), StoreError> {
        let machine = M::from_bytes(bytes)?;
        let mut s = self.disk.lock();
        if s.generation != self.generation {
            return Err(StoreError::new("the disk crashed under this handle"));
        }
        s.snapshot = Some((meta.clone(), bytes.to_vec()));
        drop(s);
        self.machine = machine;
        self.last_applied = meta.last_log_id;
        self.membership = meta.last_membership.clone();
        Ok(())
    }
}
