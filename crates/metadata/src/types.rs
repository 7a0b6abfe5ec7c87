//! The Raft-shaped vocabulary of the metadata log: log ids, votes,
//! membership and entries. These are our own types; a quorum integration
//! maps them one to one onto its consensus library's types (see
//! `docs/design/metadata-log.md`, "Mapping onto openraft").

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::command::MetadataCommand;

/// A node id: Kafka's `node.id`, the same number for the broker and the voter.
pub type NodeId = i32;

/// The identity of a log entry: the term (KRaft's leader epoch) in which it
/// was proposed, the node that led that term, and its position.
///
/// There is one leader per term, so within one log two ids with the same
/// term always name the same leader; the leader is carried so that every
/// entry says who wrote it (Kafka keeps the epoch's leader the same way).
/// A writer that cannot know it uses [`LogId::UNKNOWN_LEADER`]. Term and
/// index identify an entry; order is by term, then index (the leader only
/// breaks ties that a valid log never has).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LogId {
    /// Term / leader epoch.
    pub term: u64,
    /// The leader of that term.
    pub leader: NodeId,
    /// Position in the log.
    pub index: u64,
}

impl LogId {
    /// The leader of an entry whose writer does not know it (a Raft library
    /// whose log ids are `(term, index)` only). It agrees with any leader.
    pub const UNKNOWN_LEADER: NodeId = -1;

    /// A log id.
    pub fn new(term: u64, leader: NodeId, index: u64) -> LogId {
        LogId { term, leader, index }
    }
}

impl PartialOrd for LogId {
    fn partial_cmp(&self, other: &LogId) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for LogId {
    fn cmp(&self, other: &LogId) -> std::cmp::Ordering {
        (self.term, self.index, self.leader).cmp(&(other.term, other.index, other.leader))
    }
}

impl fmt::Display for LogId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "T{}-N{}-{}", self.term, self.leader, self.index)
    }
}

/// A node's vote: the term it is in, whom it voted for in that term, and
/// whether that candidate is known to have won (a quorum granted it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vote {
    /// Term.
    pub term: u64,
    /// The candidate this node voted for in `term`, if any.
    pub voted_for: Option<NodeId>,
    /// The candidate won: it is the term's leader.
    pub committed: bool,
}

impl Vote {
    /// Whether `new` may replace `self` as the saved vote: the order Raft
    /// (and openraft's `Vote`) uses. A higher term always may; in the same
    /// term a vote may be cast where none was, may become committed, and a
    /// committed leader may replace a different, uncommitted candidate (that
    /// candidate lost). Anything else would let a node vote twice in a term.
    pub fn may_be_replaced_by(&self, new: &Vote) -> bool {
        if new.term != self.term {
            return new.term > self.term;
        }
        match (self.voted_for, new.voted_for) {
            (None, None) => new.committed || !self.committed,
            (None, Some(_)) => true,
            (Some(_), None) => false,
            (Some(a), Some(b)) if a == b => new.committed || !self.committed,
            (Some(_), Some(_)) => new.committed && !self.committed,
        }
    }
}

impl fmt::Display for Vote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.voted_for {
            Some(n) => write!(f, "T{}-N{}", self.term, n)?,
            None => write!(f, "T{}-none", self.term)?,
        }
        f.write_str(if self.committed { " (leader)" } else { " (candidate)" })
    }
}

/// A member's address (the controller listener others reach it on).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct MemberNode {
    /// `host:port`.
    pub address: String,
}

/// Who takes part in the quorum: one set of voters normally, two while a
/// joint reconfiguration is in progress (both must agree); every member
/// with its address. A member in no voter set is a learner (an observer in
/// KRaft's words): it replicates the log but does not vote.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Membership {
    /// Voter sets: one, or two during a joint change.
    pub voter_sets: Vec<BTreeSet<NodeId>>,
    /// Every member, voters and learners.
    pub nodes: BTreeMap<NodeId, MemberNode>,
}

impl Membership {
    /// A quorum of one voter.
    pub fn single(node: NodeId, address: &str) -> Membership {
        Membership {
            voter_sets: vec![BTreeSet::from([node])],
            nodes: BTreeMap::from([(node, MemberNode { address: address.to_string() })]),
        }
    }

    /// Every voter of every set.
    pub fn voters(&self) -> BTreeSet<NodeId> {
        self.voter_sets.iter().flatten().copied().collect()
    }

    /// Members that vote in no set.
    pub fn learners(&self) -> BTreeSet<NodeId> {
        let voters = self.voters();
        self.nodes.keys().filter(|n| !voters.contains(n)).copied().collect()
    }

    /// Whether a joint change is in progress.
    pub fn is_joint(&self) -> bool {
        self.voter_sets.len() > 1
    }
}

/// The membership in effect and the entry that set it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct StoredMembership {
    /// The entry that carried it (`None`: never set).
    pub log_id: Option<LogId>,
    /// The membership.
    pub membership: Membership,
}

/// What an entry carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum EntryPayload {
    /// A new leader's first entry of its term (commits what earlier terms left).
    Blank,
    /// A metadata change.
    Command(MetadataCommand),
    /// A new membership.
    Membership(Membership),
}

/// One log entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Its id.
    pub log_id: LogId,
    /// Its payload.
    pub payload: EntryPayload,
}

impl Entry {
    /// A command entry.
    pub fn command(log_id: LogId, command: MetadataCommand) -> Entry {
        Entry { log_id, payload: EntryPayload::Command(command) }
    }

    /// A blank entry.
    pub fn blank(log_id: LogId) -> Entry {
        Entry { log_id, payload: EntryPayload::Blank }
    }
}

/// The ends of the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LogState {
    /// The last entry removed by a purge (its id is kept after it is gone).
    pub last_purged: Option<LogId>,
    /// The last entry present, or `last_purged` when none is.
    pub last: Option<LogId>,
}

/// What a snapshot covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotMeta {
    /// The last entry whose effect the snapshot includes.
    pub last_included: LogId,
    /// The membership in effect at that entry.
    pub membership: StoredMembership,
    /// Names this snapshot (two snapshots at one log id may differ in bytes).
    pub snapshot_id: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vote(term: u64, voted_for: Option<NodeId>, committed: bool) -> Vote {
        Vote { term, voted_for, committed }
    }

    #[test]
    fn votes_only_move_forward() {
        let v = vote(3, Some(1), false);
        assert!(v.may_be_replaced_by(&v), "saving the same vote again is fine");
        assert!(v.may_be_replaced_by(&vote(3, Some(1), true)));
        assert!(v.may_be_replaced_by(&vote(4, None, false)));
        assert!(v.may_be_replaced_by(&vote(3, Some(2), true)), "the committed leader of the term wins");
        assert!(!v.may_be_replaced_by(&vote(3, Some(2), false)), "a second vote in one term");
        assert!(!v.may_be_replaced_by(&vote(2, Some(1), true)), "an older term");
        assert!(!v.may_be_replaced_by(&vote(3, None, false)));
        assert!(!vote(3, Some(1), true).may_be_replaced_by(&vote(3, Some(1), false)));
        assert!(vote(3, None, false).may_be_replaced_by(&vote(3, Some(5), false)));
    }

    #[test]
    fn log_ids_order_by_term_then_index() {
        assert!(LogId::new(1, 5, 10) < LogId::new(2, 1, 3));
        assert!(LogId::new(2, 1, 3) < LogId::new(2, 1, 4));
    }

    #[test]
    fn membership_sets() {
        let mut m = Membership::single(1, "a:1");
        m.nodes.insert(7, MemberNode { address: "b:2".into() });
        assert_eq!(m.voters(), BTreeSet::from([1]));
        assert_eq!(m.learners(), BTreeSet::from([7]));
        assert!(!m.is_joint());
    }
}
