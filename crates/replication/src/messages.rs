//! What replicas and the controller say to each other, as plain values: the
//! fields of Kafka's replica Fetch, OffsetForLeaderEpoch and AlterPartition
//! that the core reads or writes. The broker maps them to and from the wire
//! (error variants name the Kafka error code they become).

use crate::log::EpochEndOffset;
use crate::types::{BrokerEpoch, LeaderEpoch, NodeId, Offset, PartitionEpoch};

/// A follower's fetch (Fetch with a replica id and `ReplicaState`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchRequest {
    /// Matches the response to the request (the fetcher's correlation).
    pub request_id: u64,
    /// The fetching replica.
    pub replica_id: NodeId,
    /// Its broker epoch (`ReplicaState.ReplicaEpoch`).
    pub replica_epoch: BrokerEpoch,
    /// The leader epoch the follower believes current.
    pub current_leader_epoch: LeaderEpoch,
    /// Where to read from. By Tributary's rule this is the follower's
    /// durable log end: every offset below it is fsynced on the follower,
    /// and it is the position the leader counts for the high watermark.
    pub fetch_offset: Offset,
    /// Epoch of the follower's last record (KIP-320), when it checks for
    /// divergence on fetch.
    pub last_fetched_epoch: Option<LeaderEpoch>,
}

/// Errors of a replica fetch or OffsetForLeaderEpoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplicaRequestError {
    /// FENCED_LEADER_EPOCH: the request's leader epoch is older than the
    /// replica's; the follower waits for new metadata.
    FencedLeaderEpoch,
    /// UNKNOWN_LEADER_EPOCH: the request's leader epoch is newer, or the
    /// requester is not a replica in this epoch; retry after a pause.
    UnknownLeaderEpoch,
    /// NOT_LEADER_OR_FOLLOWER: this replica does not lead in that epoch, or
    /// the fetch came from an older incarnation of the follower.
    NotLeaderOrFollower,
    /// OFFSET_OUT_OF_RANGE: the fetch offset is past the leader's log end,
    /// or the last fetched epoch has no end offset here.
    OffsetOutOfRange,
}

/// What the leader decided for a fetch; the broker reads the records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchDecision {
    /// Read records from `fetch_offset` up to the log end offset (not only
    /// the durable part: a follower may hold what the leader has not
    /// fsynced yet; what counts is what each has fsynced).
    Read {
        /// The leader's high watermark, for the follower.
        high_watermark: Offset,
        /// The leader's log end offset when the fetch was read.
        log_end_offset: Offset,
    },
    /// The follower's log diverges: it must truncate to this epoch's end
    /// (the response's DivergingEpoch); no records.
    Diverging(EpochEndOffset),
}

/// The leader's answer to a fetch, with the records it read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchResponse<R> {
    /// The request's id.
    pub request_id: u64,
    /// The outcome.
    pub result: Result<FetchedData<R>, ReplicaRequestError>,
}

/// A successful fetch's content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchedData<R> {
    /// Records starting at the fetch offset (perhaps none).
    Records {
        /// The records.
        records: R,
        /// The leader's high watermark.
        high_watermark: Offset,
    },
    /// The follower must truncate (KIP-320's DivergingEpoch).
    Diverging(EpochEndOffset),
}

/// OffsetForLeaderEpoch from a follower.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetForLeaderEpochRequest {
    /// Matches the response.
    pub request_id: u64,
    /// The asking replica.
    pub replica_id: NodeId,
    /// The leader epoch the follower believes current.
    pub current_leader_epoch: LeaderEpoch,
    /// The epoch whose end offset it wants (its latest).
    pub leader_epoch: LeaderEpoch,
}

/// The leader's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetForLeaderEpochResponse {
    /// The request's id.
    pub request_id: u64,
    /// The epoch's end here (`None`: undefined, -1/-1 on the wire).
    pub result: Result<Option<EpochEndOffset>, ReplicaRequestError>,
}

/// A member of a proposed ISR with the broker epoch the leader saw in its
/// fetches (AlterPartition v3's `BrokerState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IsrMember {
    /// The replica.
    pub broker_id: NodeId,
    /// Its broker epoch, or [`crate::types::UNKNOWN_BROKER_EPOCH`].
    pub broker_epoch: BrokerEpoch,
}

/// The leader asks the controller to change the ISR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlterPartitionRequest {
    /// The leader.
    pub broker_id: NodeId,
    /// The leader's broker epoch.
    pub broker_epoch: BrokerEpoch,
    /// The leader epoch it leads in.
    pub leader_epoch: LeaderEpoch,
    /// The partition epoch the change is built on.
    pub partition_epoch: PartitionEpoch,
    /// The ISR it wants, leader included.
    pub new_isr: Vec<IsrMember>,
}

impl AlterPartitionRequest {
    /// The proposed ISR's ids.
    pub fn isr_ids(&self) -> Vec<NodeId> {
        self.new_isr.iter().map(|m| m.broker_id).collect()
    }
}

/// Why the controller refused an AlterPartition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlterPartitionError {
    /// STALE_BROKER_EPOCH: the leader's own registration is not the one the
    /// request names.
    StaleBrokerEpoch,
    /// NOT_CONTROLLER: the request is newer than this controller's state.
    NotController,
    /// FENCED_LEADER_EPOCH: a newer leader epoch exists.
    FencedLeaderEpoch,
    /// INVALID_REQUEST: not sent by the leader, an ISR with unknown or
    /// repeated replicas, or without the leader.
    InvalidRequest,
    /// INVALID_UPDATE_VERSION: built on an older partition epoch.
    InvalidUpdateVersion,
    /// INELIGIBLE_REPLICA: a proposed member is fenced, shutting down,
    /// unregistered, or of another broker epoch.
    IneligibleReplica,
    /// NEW_LEADER_ELECTED: applied, but it changed the leader.
    NewLeaderElected,
    /// The request or its answer was lost (a transport error): retry.
    Transport,
}

/// The controller's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlterPartitionResponse {
    /// The partition as it now stands, or the refusal.
    pub result: Result<AlterPartitionAccepted, AlterPartitionError>,
}

/// The partition after an accepted AlterPartition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlterPartitionAccepted {
    /// The leader.
    pub leader: NodeId,
    /// The leader epoch.
    pub leader_epoch: LeaderEpoch,
    /// The ISR now committed.
    pub isr: Vec<NodeId>,
    /// The partition epoch now current.
    pub partition_epoch: PartitionEpoch,
}
