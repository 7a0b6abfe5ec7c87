//! The quorum's vocabulary: what an application puts in the log
//! ([`QuorumApp`]), the openraft type configuration built from it
//! ([`QuorumTypes`]), and short names for the openraft types we use.
//!
//! The crate is generic over the application so the same consensus code runs
//! the broker's metadata (`MetadataCommand` → `ApplyOutcome`) and the
//! simulator's test machine. With openraft's `single-term-leader` feature a
//! term has at most one leader, so a term is exactly a KRaft leader epoch,
//! and a log id is `(term, index)`.

use std::cmp::Ordering;
use std::fmt::{self, Debug};
use std::hash::{Hash, Hasher};
use std::io::Cursor;
use std::marker::PhantomData;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::runtime::QuorumRuntime;

/// A node id: Kafka's `node.id`, the same number for a broker and a controller.
pub type NodeId = i32;

/// What an application stores in the replicated log. Implemented by a
/// marker type (`#[derive(Debug, Clone)] struct MetadataApp;`).
pub trait QuorumApp: Debug + Clone + Send + Sync + 'static {
    /// A change proposed to the log (the broker's `MetadataCommand`).
    type Command: Clone + Debug + PartialEq + Serialize + DeserializeOwned + Send + Sync + 'static;
    /// What applying a command did (the broker's `ApplyOutcome`). It travels
    /// back to a follower that forwarded the proposal.
    type Outcome: Clone + Debug + PartialEq + Serialize + DeserializeOwned + Send + Sync + 'static;
}

/// The openraft type configuration for application `A`.
///
/// A zero-sized marker; the traits openraft asks of it are written out by
/// hand because derives would demand them of `A` too.
pub struct QuorumTypes<A>(PhantomData<fn() -> A>);

impl<A> Debug for QuorumTypes<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("QuorumTypes")
    }
}
impl<A> Clone for QuorumTypes<A> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<A> Copy for QuorumTypes<A> {}
impl<A> Default for QuorumTypes<A> {
    fn default() -> Self {
        QuorumTypes(PhantomData)
    }
}
impl<A> PartialEq for QuorumTypes<A> {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}
impl<A> Eq for QuorumTypes<A> {}
impl<A> PartialOrd for QuorumTypes<A> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<A> Ord for QuorumTypes<A> {
    fn cmp(&self, _: &Self) -> Ordering {
        Ordering::Equal
    }
}
impl<A> Hash for QuorumTypes<A> {
    fn hash<H: Hasher>(&self, _: &mut H) {}
}

impl<A: QuorumApp> openraft::RaftTypeConfig for QuorumTypes<A> {
    type D = A::Command;
    /// `None` for blank and membership entries.
    type R = Option<A::Outcome>;
    type NodeId = NodeId;
    type Node = openraft::BasicNode;
    type Entry = openraft::Entry<QuorumTypes<A>>;
    type SnapshotData = Cursor<Vec<u8>>;
    type AsyncRuntime = QuorumRuntime;
    type Responder = openraft::impls::OneshotResponder<QuorumTypes<A>>;
}

/// A log id: `(term, index)`; the term is the KRaft leader epoch.
pub type LogId = openraft::LogId<NodeId>;
/// A node's vote: term, candidate, and whether it won.
pub type Vote = openraft::Vote<NodeId>;
/// A member's address (`host:port` of its controller listener).
pub type Member = openraft::BasicNode;
/// Voters and learners (KRaft observers) with their addresses.
pub type Membership = openraft::Membership<NodeId, Member>;
/// The membership in effect and the entry that set it.
pub type StoredMembership = openraft::StoredMembership<NodeId, Member>;
/// What a snapshot covers.
pub type SnapshotMeta = openraft::SnapshotMeta<NodeId, Member>;
/// A log entry of application `A`.
pub type Entry<A> = openraft::Entry<QuorumTypes<A>>;
/// A log entry's payload.
pub type EntryPayload<A> = openraft::EntryPayload<QuorumTypes<A>>;
/// The openraft handle.
pub type Raft<A> = openraft::Raft<QuorumTypes<A>>;
/// Runtime configuration of openraft.
pub type RaftConfig = openraft::Config;

/// A log id for tests and adapters.
pub fn log_id(term: u64, index: u64) -> LogId {
    openraft::LogId::new(openraft::CommittedLeaderId::new(term, 0), index)
}

/// One entry as the local state machine applied it: what the broker's
/// reconciler consumes, in log order, on every node.
#[derive(Debug, Clone, PartialEq)]
pub enum Applied<A: QuorumApp> {
    /// A command and what applying it did.
    Command {
        /// Its log id.
        log_id: LogId,
        /// The command.
        command: A::Command,
        /// Its outcome (the same on every node).
        outcome: A::Outcome,
    },
    /// A new leader's first entry (nothing to reconcile).
    Blank {
        /// Its log id.
        log_id: LogId,
    },
    /// A membership change took effect.
    Membership {
        /// Its log id.
        log_id: LogId,
        /// The new membership.
        membership: Membership,
    },
    /// The state was replaced by a snapshot (at start-up, or received from
    /// the leader because this node was too far behind): the consumer
    /// rebuilds from the whole state instead of a delta.
    Restored {
        /// The last entry the snapshot includes.
        last_included: Option<LogId>,
    },
}

impl<A: QuorumApp> Applied<A> {
    /// The log id this event brings the state to.
    pub fn log_id(&self) -> Option<LogId> {
        match self {
            Applied::Command { log_id, .. } | Applied::Blank { log_id } | Applied::Membership { log_id, .. } => {
                Some(*log_id)
            }
            Applied::Restored { last_included } => *last_included,
        }
    }
}
