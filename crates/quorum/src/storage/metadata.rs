//! The storage seam over the metadata crate's Raft-shaped log
//! (`MetadataLog`) and state machine (`MetadataStateMachine`), behind the
//! `metadata-log` feature until that crate's new API lands on main.
//!
//! The mapping is one to one (`docs/design/metadata-quorum.md`), with one
//! exception: openraft's log ids under `single-term-leader` are
//! `(term, index)` and do not say which node led the term, while the
//! metadata log's ids carry a leader. Every id written through this adapter
//! carries [`UNKNOWN_LEADER`], so the log's "one leader per term" check
//! holds trivially and ids read back compare by `(term, index)`. And
//! openraft's first entry has index 0 where the metadata log starts at 1:
//! the adapter adds one on the way in and takes it off on the way out.

use std::collections::BTreeMap;

use tributary_metadata as md;

use super::{LogEnds, LogStore, MachineStore, StoreError};
use crate::types::{
    Entry, EntryPayload, LogId, Member, Membership, NodeId, QuorumApp, SnapshotMeta, StoredMembership, Vote, log_id,
};

/// The broker's metadata as a quorum application.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MetadataApp;

impl QuorumApp for MetadataApp {
    type Command = md::MetadataCommand;
    type Outcome = md::ApplyOutcome;
}

/// The leader written into metadata log ids (openraft's ids have none).
pub const UNKNOWN_LEADER: NodeId = -1;

/// openraft's first entry (the initial membership) has index 0; the
/// metadata log counts from 1. Index `i` here is index `i + 1` there.
fn to_md_index(index: u64) -> u64 {
    index.saturating_add(1)
}

fn to_md_id(id: LogId) -> md::LogId {
    md::LogId::new(id.leader_id.term, UNKNOWN_LEADER, to_md_index(id.index))
}

fn from_md_id(id: md::LogId) -> LogId {
    log_id(id.term, id.index.saturating_sub(1))
}

fn to_md_membership(m: &Membership) -> md::Membership {
    md::Membership {
        voter_sets: m.get_joint_config().clone(),
        nodes: m.nodes().map(|(id, n)| (*id, md::MemberNode { address: n.addr.clone() })).collect(),
    }
}

fn from_md_membership(m: &md::Membership) -> Membership {
    let nodes: BTreeMap<NodeId, Member> = m.nodes.iter().map(|(id, n)| (*id, Member::new(n.address.clone()))).collect();
    Membership::new(m.voter_sets.clone(), nodes)
}

fn from_md_stored(s: &md::StoredMembership) -> StoredMembership {
    StoredMembership::new(s.log_id.map(from_md_id), from_md_membership(&s.membership))
}

fn to_md_entry(e: &Entry<MetadataApp>) -> md::Entry {
    let payload = match &e.payload {
        EntryPayload::<MetadataApp>::Blank => md::EntryPayload::Blank,
        EntryPayload::<MetadataApp>::Normal(c) => md::EntryPayload::Command(c.clone()),
        EntryPayload::<MetadataApp>::Membership(m) => md::EntryPayload::Membership(to_md_membership(m)),
    };
    md::Entry { log_id: to_md_id(e.log_id), payload }
}

fn from_md_entry(e: md::Entry) -> Entry<MetadataApp> {
    let payload = match e.payload {
        md::EntryPayload::Blank => EntryPayload::<MetadataApp>::Blank,
        md::EntryPayload::Command(c) => EntryPayload::<MetadataApp>::Normal(c),
        md::EntryPayload::Membership(m) => EntryPayload::<MetadataApp>::Membership(from_md_membership(&m)),
    };
    Entry::<MetadataApp> { log_id: from_md_id(e.log_id), payload }
}

fn store_error(e: md::MetadataError) -> StoreError {
    StoreError::new(e)
}

impl<D: md::Disk + 'static> LogStore<MetadataApp> for md::MetadataLog<D> {
    fn log_ends(&self) -> Result<LogEnds, StoreError> {
        let s = self.log_state();
        Ok(LogEnds { last_purged: s.last_purged.map(from_md_id), last: s.last.map(from_md_id) })
    }

    fn entries(&self, from: u64, to: u64) -> Result<Vec<Entry<MetadataApp>>, StoreError> {
        if from >= to {
            return Ok(Vec::new());
        }
        Ok(md::MetadataLog::entries(self, to_md_index(from)..to_md_index(to))
            .map_err(store_error)?
            .into_iter()
            .map(from_md_entry)
            .collect())
    }

    fn append(&mut self, entries: Vec<Entry<MetadataApp>>) -> Result<(), StoreError> {
        let entries: Vec<md::Entry> = entries.iter().map(to_md_entry).collect();
        md::MetadataLog::append(self, &entries).map_err(store_error)
    }

    fn flush(&mut self) -> Result<(), StoreError> {
        md::MetadataLog::flush(self).map(|_| ()).map_err(store_error)
    }

    fn truncate(&mut self, from: u64) -> Result<(), StoreError> {
        md::MetadataLog::truncate(self, to_md_index(from)).map_err(store_error)
    }

    fn purge(&mut self, upto: LogId) -> Result<(), StoreError> {
        md::MetadataLog::purge(self, to_md_id(upto)).map_err(store_error)
    }

    fn read_vote(&self) -> Result<Option<Vote>, StoreError> {
        Ok(md::MetadataLog::read_vote(self).map(|v| {
            let mut vote = Vote::new(v.term, 0);
            vote.leader_id.voted_for = v.voted_for;
            vote.committed = v.committed;
            vote
        }))
    }

    fn save_vote(&mut self, vote: &Vote) -> Result<(), StoreError> {
        let vote =
            md::Vote { term: vote.leader_id.term, voted_for: vote.leader_id.voted_for, committed: vote.committed };
        md::MetadataLog::save_vote(self, &vote).map_err(store_error)
    }

    fn read_committed(&self) -> Result<Option<LogId>, StoreError> {
        Ok(md::MetadataLog::read_committed(self).map(from_md_id))
    }

    fn save_committed(&mut self, committed: LogId) -> Result<(), StoreError> {
        md::MetadataLog::save_committed(self, to_md_id(committed)).map_err(store_error)
    }
}

fn from_md_snapshot(meta: md::SnapshotMeta) -> SnapshotMeta {
    SnapshotMeta {
        last_log_id: Some(from_md_id(meta.last_included)),
        last_membership: from_md_stored(&meta.membership),
        snapshot_id: meta.snapshot_id,
    }
}

impl<D: md::Disk + 'static> MachineStore<MetadataApp> for md::MetadataStateMachine<D> {
    fn applied_state(&self) -> (Option<LogId>, StoredMembership) {
        let (last, membership) = md::MetadataStateMachine::applied_state(self);
        (last.map(from_md_id), from_md_stored(&membership))
    }

    fn apply(&mut self, entry: &Entry<MetadataApp>) -> Option<md::ApplyOutcome> {
        let outcome = md::MetadataStateMachine::apply(self, &to_md_entry(entry));
        matches!(entry.payload, EntryPayload::<MetadataApp>::Normal(_)).then_some(outcome)
    }

    fn build_snapshot(&mut self) -> Result<(SnapshotMeta, Vec<u8>), StoreError> {
        if md::MetadataStateMachine::build_snapshot(self).map_err(store_error)?.is_none() {
            return Err(StoreError::new("nothing is applied yet, so there is nothing to snapshot"));
        }
        match md::MetadataStateMachine::current_snapshot(self).map_err(store_error)? {
            Some((meta, bytes)) => Ok((from_md_snapshot(meta), bytes)),
            None => Err(StoreError::new("the snapshot just written is gone")),
        }
    }

    fn current_snapshot(&self) -> Result<Option<(SnapshotMeta, Vec<u8>)>, StoreError> {
        Ok(md::MetadataStateMachine::current_snapshot(self)
            .map_err(store_error)?
            .map(|(meta, bytes)| (from_md_snapshot(meta), bytes)))
    }

    fn install_snapshot(&mut self, meta: &SnapshotMeta, bytes: &[u8]) -> Result<(), StoreError> {
        let installed = md::MetadataStateMachine::install_snapshot(self, bytes).map_err(store_error)?;
        let expected = meta.last_log_id.map(|l| to_md_index(l.index));
        if Some(installed.last_included.index) != expected {
            return Err(StoreError(format!(
                "the snapshot holds the state at {} but was sent as {:?}",
                installed.last_included, meta.last_log_id
            )));
        }
        Ok(())
    }
}
