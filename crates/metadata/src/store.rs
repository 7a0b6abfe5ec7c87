//! The single-node store the broker uses until the quorum exists: a quorum
//! of one voter (this node) over the same log and state machine the quorum
//! will use. [`MetadataStore::propose`] appends at the current term, fsyncs,
//! and (being the only voter) commits and applies at once.
//!
//! At open: old-format directories are migrated; the log is opened and the
//! state machine loads its snapshot; every entry in the log is applied (for
//! one voter, durable means committed); then this node makes sure it leads:
//! if the saved vote is not "this node, leader", it starts a new term (vote
//! saved first), appends the term's blank entry and, if the membership is
//! not this node alone, a membership entry making it so. A directory whose
//! membership has several voters is refused: it belongs to a quorum.
//!
//! Every [`StoreOptions::snapshot_every`] entries a snapshot is written and
//! the log up to it purged. A failed snapshot does not fail the proposal
//! that triggered it (that change is durable already): it is logged and
//! tried again later.

use std::collections::BTreeSet;
use std::path::Path;

use crate::command::MetadataCommand;
use crate::disk::{Disk, FsDisk};
use crate::error::MetadataError;
use crate::legacy;
use crate::log::{LogOptions, MetadataLog};
use crate::machine::MetadataStateMachine;
use crate::state::{ApplyOutcome, MetadataState};
use crate::types::{Entry, EntryPayload, LogId, Membership, NodeId, Vote};

/// Entries between snapshots.
pub const SNAPSHOT_EVERY_COMMANDS: u64 = 1000;

/// Store tuning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreOptions {
    /// Log options.
    pub log: LogOptions,
    /// Entries applied between snapshots.
    pub snapshot_every: u64,
}

impl Default for StoreOptions {
    fn default() -> StoreOptions {
        StoreOptions { log: LogOptions::default(), snapshot_every: SNAPSHOT_EVERY_COMMANDS }
    }
}

/// The metadata log and its applied state, on one node.
#[derive(Debug)]
pub struct MetadataStore<D: Disk + Clone = FsDisk> {
    node_id: NodeId,
    term: u64,
    log: MetadataLog<D>,
    machine: MetadataStateMachine<D>,
    options: StoreOptions,
    /// The applied index at which the next snapshot is tried.
    snapshot_due_at: u64,
}

impl MetadataStore<FsDisk> {
    /// Opens the store in directory `dir` as node `node_id`, creating it if needed.
    pub fn open(dir: &Path, node_id: NodeId) -> Result<MetadataStore<FsDisk>, MetadataError> {
        let disk = FsDisk::open(dir).map_err(MetadataError::io("create", dir.to_path_buf()))?;
        MetadataStore::open_on(disk, node_id, StoreOptions::default())
    }
}

impl<D: Disk + Clone> MetadataStore<D> {
    /// Opens the store on `disk`.
    pub fn open_on(disk: D, node_id: NodeId, options: StoreOptions) -> Result<MetadataStore<D>, MetadataError> {
        legacy::migrate_if_needed(&mut disk.clone(), node_id)?;
        let mut log = MetadataLog::open(disk.clone(), options.log)?;
        let machine = MetadataStateMachine::open(disk, &log)?;
        // A snapshot past the end of the log (never left by this store, but
        // what a quorum's snapshot install looks like before its purge): the
        // log continues after the snapshot.
        if let Some(meta) = machine.snapshot_meta()
            && log.log_state().last.is_none_or(|l| l.index < meta.last_included.index)
        {
            log.purge(meta.last_included)?;
        }
        let mut store = MetadataStore { node_id, term: 0, log, machine, options, snapshot_due_at: 0 };
        store.apply_log()?;
        store.lead()?;
        store.apply_log()?;
        // Saturating: a snapshot near the last index there is (a damaged or
        // hostile directory) leaves no snapshot due rather than overflowing.
        store.snapshot_due_at =
            store.machine.snapshot_meta().map_or(0, |m| m.last_included.index).saturating_add(options.snapshot_every);
        Ok(store)
    }

    /// Applies every entry in the log not applied yet (all are committed: this node is the only voter).
    fn apply_log(&mut self) -> Result<(), MetadataError> {
        match self.log.log_state().last {
            Some(last) => self.machine.apply_from(&self.log, last.index),
            None => Ok(()),
        }
    }

    /// Makes this node the leader of a term, if it is not already.
    fn lead(&mut self) -> Result<(), MetadataError> {
        let membership = self.machine.state().membership.membership.clone();
        let voters = membership.voters();
        let only_me = BTreeSet::from([self.node_id]);
        if voters.len() > 1 {
            return Err(MetadataError::Refused(format!(
                "this metadata directory belongs to a quorum with voters {voters:?}; the single-node store cannot open it"
            )));
        }
        let vote = self.log.read_vote();
        let last = self.log.log_state().last;
        if let Some(v) = vote
            && v.voted_for == Some(self.node_id)
            && v.committed
            && voters == only_me
            && self.log_allows_leading(v.term, last)
        {
            self.term = v.term;
            return Ok(());
        }
        // Above the vote's term and every term in the log: a vote file older
        // than the log (restored, or damaged) must not leave this node
        // leading a term the log is already past.
        let term = match vote.map(|v| v.term).max(last.map(|l| l.term)) {
            None => 1,
            Some(newest) => newest.checked_add(1).ok_or_else(|| {
                MetadataError::Refused(format!(
                    "the log or the vote is in term {newest}, the last there is; no new term can start"
                ))
            })?,
        };
        let next = self.next_index()?;
        let mut entries = vec![Entry::blank(LogId::new(term, self.node_id, next))];
        if voters != only_me {
            entries.push(Entry {
                log_id: LogId::new(term, self.node_id, following(next)?),
                payload: EntryPayload::Membership(Membership::single(self.node_id, "")),
            });
        }
        self.log.save_vote(&Vote { term, voted_for: Some(self.node_id), committed: true })?;
        self.term = term;
        self.log.append(&entries)?;
        self.log.flush()?;
        Ok(())
    }

    /// Whether this node can go on appending in `term` after `last`: the log
    /// is not past that term, nor does another node lead it there.
    fn log_allows_leading(&self, term: u64, last: Option<LogId>) -> bool {
        last.is_none_or(|l| {
            l.term < term || (l.term == term && (l.leader == self.node_id || l.leader == LogId::UNKNOWN_LEADER))
        })
    }

    /// The index the next entry gets; refused when the log already holds
    /// (or has purged) the last index there is.
    fn next_index(&self) -> Result<u64, MetadataError> {
        self.log.log_state().last.map_or(Ok(1), |l| following(l.index))
    }

    /// The applied state.
    pub fn state(&self) -> &MetadataState {
        self.machine.state()
    }

    /// This node.
    pub fn node_id(&self) -> NodeId {
        self.node_id
    }

    /// The term this node leads.
    pub fn term(&self) -> u64 {
        self.term
    }

    /// The log.
    pub fn log(&self) -> &MetadataLog<D> {
        &self.log
    }

    /// The state machine.
    pub fn machine(&self) -> &MetadataStateMachine<D> {
        &self.machine
    }

    /// Appends `command` at the current term, makes it durable, and applies
    /// it. `Ok` means the change is durable and applied; the outcome says
    /// what it did. An error means it is not applied; after a failed write
    /// the store stays usable, after a failed fsync it refuses writes until
    /// reopened (the entry may or may not be found then).
    pub fn propose(&mut self, command: MetadataCommand) -> Result<(LogId, ApplyOutcome), MetadataError> {
        let entry = Entry::command(LogId::new(self.term, self.node_id, self.next_index()?), command);
        self.log.append(std::slice::from_ref(&entry))?;
        self.log.flush()?;
        let outcome = self.machine.apply(&entry);
        self.snapshot_if_due();
        Ok((entry.log_id, outcome))
    }

    /// [`MetadataStore::propose`], returning the entry's index only.
    pub fn append(&mut self, command: MetadataCommand) -> Result<u64, MetadataError> {
        self.propose(command).map(|(id, _)| id.index)
    }

    fn snapshot_if_due(&mut self) {
        let applied = self.machine.state().applied_index();
        if applied < self.snapshot_due_at {
            return;
        }
        if let Err(e) = self.snapshot() {
            let retry_in = (self.options.snapshot_every / 10).max(1);
            self.snapshot_due_at = applied.saturating_add(retry_in);
            tracing::warn!(error = %e, retry_in_entries = retry_in, "metadata snapshot failed; the change is durable in the log, the snapshot will be tried again");
        }
    }

    /// Writes a snapshot of the applied state and purges the log it covers.
    pub fn snapshot(&mut self) -> Result<(), MetadataError> {
        let Some(meta) = self.machine.build_snapshot()? else {
            return Ok(());
        };
        self.snapshot_due_at = meta.last_included.index.saturating_add(self.options.snapshot_every);
        self.log.purge(meta.last_included)
    }
}

/// The index after `index`; refused at the last index there is (only a
/// damaged or hostile directory gets there: no entry can follow it).
fn following(index: u64) -> Result<u64, MetadataError> {
    index.checked_add(1).ok_or_else(|| {
        MetadataError::Refused(format!("the log reached index {index}, the last there is; no entry can follow"))
    })
}
