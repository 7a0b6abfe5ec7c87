//! Identifiers, the partition's registration as the controller keeps it,
//! and the settings the core reads.

use std::collections::{BTreeMap, BTreeSet};

pub use tributary_types::NodeId;

/// An offset in the partition log.
pub type Offset = i64;
/// A leader epoch: bumped by the controller on every leader change.
pub type LeaderEpoch = i32;
/// A partition epoch: bumped by the controller on every change of the
/// partition (leader, ISR or replicas); AlterPartition requests carry it.
pub type PartitionEpoch = i32;
/// A broker epoch: the incarnation of a broker's registration, new after
/// every restart.
pub type BrokerEpoch = i64;

/// The leader of a partition that has none.
pub const NO_LEADER: NodeId = -1;
/// An ISR entry's broker epoch that skips the controller's epoch check
/// (Kafka sends -1 for members whose epoch the leader does not know).
pub const UNKNOWN_BROKER_EPOCH: BrokerEpoch = -1;

/// A partition as the controller registers it (the metadata crate's
/// `PartitionMeta`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionRegistration {
    /// Assigned replicas, preferred leader first.
    pub replicas: Vec<NodeId>,
    /// In-sync replicas, in replica order.
    pub isr: Vec<NodeId>,
    /// The leader, or [`NO_LEADER`].
    pub leader: NodeId,
    /// Bumped on every leader change.
    pub leader_epoch: LeaderEpoch,
    /// Bumped on every change.
    pub partition_epoch: PartitionEpoch,
}

impl PartitionRegistration {
    /// A new partition led by its first replica with every replica in sync,
    /// both epochs 0.
    pub fn new(replicas: Vec<NodeId>) -> PartitionRegistration {
        PartitionRegistration {
            leader: replicas.first().copied().unwrap_or(NO_LEADER),
            isr: replicas.clone(),
            replicas,
            leader_epoch: 0,
            partition_epoch: 0,
        }
    }

    /// The ISR as a set.
    pub fn isr_set(&self) -> BTreeSet<NodeId> {
        self.isr.iter().copied().collect()
    }
}

/// What the metadata says about one broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BrokerStatus {
    /// Its current registration's epoch.
    pub epoch: BrokerEpoch,
    /// Fenced: its session expired or it has not caught up since it
    /// registered. A fenced broker leads nothing and joins no ISR.
    pub fenced: bool,
    /// In controlled shutdown: joins no ISR.
    pub shutting_down: bool,
}

impl BrokerStatus {
    /// Whether a replica on this broker may join an ISR, given the broker
    /// epoch its fetches carried.
    pub fn isr_eligible(&self, fetched_with: Option<BrokerEpoch>) -> bool {
        !self.fenced
            && !self.shutting_down
            && fetched_with.is_some_and(|e| e == UNKNOWN_BROKER_EPOCH || e == self.epoch)
    }
}

/// One partition's part of a node's metadata image: what the reconciler
/// hands the core after each metadata change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataView {
    /// Position of this image in the metadata log; a node never applies an
    /// older image after a newer one.
    pub version: u64,
    /// The partition.
    pub partition: PartitionRegistration,
    /// Every registered broker.
    pub brokers: BTreeMap<NodeId, BrokerStatus>,
}

/// How a follower finds where its log diverges from the leader's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TruncationMode {
    /// Fetch requests carry the last fetched epoch and the leader answers a
    /// divergence with its end offset for that epoch (KIP-320).
    OnFetch,
    /// Before fetching from a new leader the follower asks for the end
    /// offset of its latest epoch with OffsetForLeaderEpoch (KIP-101/279).
    OffsetForLeaderEpoch,
}

/// Settings of one partition's replication.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplicationConfig {
    /// `min.insync.replicas`: acks=all is refused, and the high watermark
    /// frozen, while the ISR is smaller.
    pub min_insync_replicas: usize,
    /// `replica.lag.time.max.ms`: an ISR member that has not caught up for
    /// longer leaves the ISR.
    pub replica_lag_time_max_ms: u64,
    /// Resend an unanswered AlterPartition after this long.
    pub alter_partition_retry_ms: u64,
    /// A follower gives up waiting for a response after this long.
    pub fetch_timeout_ms: u64,
    /// Pause before a follower retries after a retriable error.
    pub fetch_backoff_ms: u64,
    /// How followers find divergence.
    pub truncation: TruncationMode,
}

impl Default for ReplicationConfig {
    /// Kafka's defaults (`min.insync.replicas=1`, `replica.lag.time.max.ms=30000`,
    /// truncation on fetch).
    fn default() -> ReplicationConfig {
        ReplicationConfig {
            min_insync_replicas: 1,
            replica_lag_time_max_ms: 30_000,
            alter_partition_retry_ms: 500,
            fetch_timeout_ms: 30_000,
            fetch_backoff_ms: 1_000,
            truncation: TruncationMode::OnFetch,
        }
    }
}
