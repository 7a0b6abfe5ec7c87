//! The controller network's messages: every request travels in an
//! [`Envelope`] that names the cluster, the sender, the addressee and (with
//! static voters) the voter set the sender was configured with, so a node
//! of another cluster, or one configured with other voters, is refused
//! before anything reaches Raft.

use serde::{Deserialize, Serialize};

use openraft::error::{InstallSnapshotError, RaftError};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, VoteRequest,
    VoteResponse,
};

use crate::describe::QuorumDescription;
use crate::types::{LogId, NodeId, QuorumApp, QuorumTypes};

/// A node id that is not known yet (a bootstrap server reached by address).
pub const UNKNOWN_NODE: NodeId = -1;

/// A request with who sends it, to whom, in which cluster.
#[derive(Debug, Serialize, Deserialize)]
#[serde(bound = "")]
pub struct Envelope<A: QuorumApp> {
    /// The sender's cluster id.
    pub cluster_id: String,
    /// The sender.
    pub from: NodeId,
    /// The addressee ([`UNKNOWN_NODE`] for a bootstrap server).
    pub to: NodeId,
    /// The sender's static voters (`controller.quorum.voters`, normalized),
    /// `None` when it uses dynamic voters.
    pub voters: Option<String>,
    /// The request.
    pub body: Request<A>,
}

/// What a node asks another.
#[derive(Debug, Serialize, Deserialize)]
#[serde(bound = "")]
pub enum Request<A: QuorumApp> {
    /// Raft replication (and heartbeat).
    AppendEntries(AppendEntriesRequest<QuorumTypes<A>>),
    /// Raft election.
    Vote(VoteRequest<NodeId>),
    /// A chunk of a snapshot for a node too far behind.
    InstallSnapshot(InstallSnapshotRequest<QuorumTypes<A>>),
    /// Something only the leader can do, forwarded by another node.
    Forward(Forward<A>),
    /// "Do you still lead?": a follower whose heartbeats stopped asks
    /// before it campaigns (`election.rs`).
    LeaderCheck,
}

impl<A: QuorumApp> Request<A> {
    /// A short name for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Request::AppendEntries(_) => "AppendEntries",
            Request::Vote(_) => "Vote",
            Request::InstallSnapshot(_) => "InstallSnapshot",
            Request::Forward(_) => "Forward",
            Request::LeaderCheck => "LeaderCheck",
        }
    }
}

/// Leader-only operations a follower or observer forwards.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(bound = "")]
pub enum Forward<A: QuorumApp> {
    /// Append a command.
    Propose(A::Command),
    /// Add an observer (a learner: replicates, does not vote).
    AddObserver {
        /// Its node id.
        node_id: NodeId,
        /// Its controller listener.
        address: String,
    },
    /// Make a node a voter (KIP-853 AddRaftVoter).
    AddVoter {
        /// Its node id.
        node_id: NodeId,
        /// Its controller listener.
        address: String,
    },
    /// Stop a node voting (KIP-853 RemoveRaftVoter); it stays an observer.
    RemoveVoter {
        /// Its node id.
        node_id: NodeId,
    },
    /// The quorum's state (DescribeQuorum).
    Describe,
    /// A broker's heartbeat to the active controller: recorded in the
    /// leader's liveness table (never in the log), answered at once.
    Heartbeat {
        /// The broker's node id.
        node_id: NodeId,
    },
}

/// The answer to a request.
#[derive(Debug, Serialize, Deserialize)]
#[serde(bound = "")]
pub enum Response<A: QuorumApp> {
    /// To [`Request::AppendEntries`].
    AppendEntries(Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>),
    /// To [`Request::Vote`].
    Vote(Result<VoteResponse<NodeId>, RaftError<NodeId>>),
    /// To [`Request::InstallSnapshot`].
    InstallSnapshot(Result<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>>),
    /// To [`Request::Forward`].
    Forward(Result<ForwardReply<A>, ForwardError>),
    /// To [`Request::LeaderCheck`].
    LeaderCheck(LeaderStatus),
    /// The envelope was refused (another cluster, other voters, wrong
    /// addressee, a node shutting down); one line saying why.
    Refused(String),
}

/// A node's answer to a leader check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaderStatus {
    /// Its current term.
    pub term: u64,
    /// Whether it leads that term, has not resigned, and heard from a
    /// quorum of every voter set within the fetch timeout.
    pub leading: bool,
}

/// What a forwarded operation did.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(bound = "")]
pub enum ForwardReply<A: QuorumApp> {
    /// The command is committed at `log_id`; `outcome` is what applying it did.
    Proposed {
        /// Its log id.
        log_id: LogId,
        /// What applying it did.
        outcome: A::Outcome,
    },
    /// A membership change is committed.
    MembershipChanged {
        /// The entry that carries it.
        log_id: LogId,
    },
    /// The quorum's state.
    Described(QuorumDescription),
    /// The heartbeat was recorded by the leader.
    HeartbeatRecorded,
}

/// Why a forwarded operation was not done.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ForwardError {
    /// The addressee is not the leader (nothing was appended); it names the
    /// leader it knows of.
    NotLeader {
        /// The leader, if known.
        leader_id: Option<NodeId>,
        /// Its controller listener, if known.
        leader_address: Option<String>,
    },
    /// The leader refused or failed it; one line.
    Failed(String),
    /// The leader refused a voter change for a reason Kafka names.
    VoterChange {
        /// Which reason.
        refusal: VoterRefusal,
        /// One line saying why.
        message: String,
    },
}

/// Why a voter change (KIP-853 AddRaftVoter / RemoveRaftVoter) was
/// refused; each maps onto the error code Kafka's Raft client answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum VoterRefusal {
    /// The voters are static (`controller.quorum.voters`, Kafka's
    /// kraft.version 0): UNSUPPORTED_VERSION.
    StaticVoters,
    /// The node is a voter already: DUPLICATE_VOTER.
    DuplicateVoter,
    /// The node is not a voter, or is the last one: VOTER_NOT_FOUND.
    VoterNotFound,
    /// Another voter change is under way or not committed yet, or the
    /// leader has not committed an entry of its term: REQUEST_TIMED_OUT.
    ChangeInProgress,
    /// The new voter did not catch up with the leader's log in time (it
    /// cannot be reached, or is too slow): REQUEST_TIMED_OUT.
    NotCaughtUp,
}
