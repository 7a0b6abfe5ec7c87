//! Metadata changes as typed commands, and the records they carry.
//!
//! Commands are serialized as JSON inside log entries and snapshots. The
//! commands that existed before the Raft-shaped log keep their exact JSON
//! shape (directories written then are migrated by replaying them); new
//! fields carry `#[serde(default)]` so older entries still read.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One partition's replica placement and leadership (Kafka's
/// `PartitionRegistration` without directories, ELR and reassignment state).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionMeta {
    /// Replica node ids, preferred leader first.
    pub replicas: Vec<i32>,
    /// Current leader, -1 if none.
    pub leader: i32,
    /// Leader epoch, bumped on every leader change (and when a reassignment
    /// removes a replica).
    pub leader_epoch: i32,
    /// In-sync replicas.
    pub isr: Vec<i32>,
    /// Bumped on every change of this partition (AlterPartition requests
    /// carry it, so a stale one is refused).
    #[serde(default)]
    pub partition_epoch: i32,
}

/// A topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicMeta {
    /// Name.
    pub name: String,
    /// Topic id (UUID bytes).
    pub topic_id: [u8; 16],
    /// Partitions by index.
    pub partitions: Vec<PartitionMeta>,
    /// Topic-level config overrides.
    pub configs: BTreeMap<String, String>,
}

/// One listener a broker registers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerListener {
    /// Listener name (`PLAINTEXT`, `INTERNAL`, ...).
    pub name: String,
    /// Advertised host.
    pub host: String,
    /// Advertised port.
    pub port: u16,
    /// Security protocol name (`PLAINTEXT`, `SSL`, `SASL_PLAINTEXT`, `SASL_SSL`).
    pub security_protocol: String,
}

/// A broker named with the epoch of its registration (an ISR member in an
/// AlterPartition request; -1 skips the epoch check, as in Kafka).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerState {
    /// Broker id.
    pub broker_id: i32,
    /// Its broker epoch, or -1.
    pub broker_epoch: i64,
}

/// A metadata change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MetadataCommand {
    /// Sets the cluster id (first command of a new cluster); a no-op once set.
    InitCluster {
        /// 22-character base64 cluster id.
        cluster_id: String,
    },
    /// Creates a topic.
    CreateTopic {
        /// The topic.
        topic: TopicMeta,
    },
    /// Deletes a topic.
    DeleteTopic {
        /// Its id.
        topic_id: [u8; 16],
    },
    /// Adds partitions to a topic.
    CreatePartitions {
        /// The topic.
        topic_id: [u8; 16],
        /// The new partitions, appended in order.
        partitions: Vec<PartitionMeta>,
    },
    /// Replaces a topic's config overrides.
    SetTopicConfigs {
        /// The topic.
        topic_id: [u8; 16],
        /// The full new set of overrides.
        configs: BTreeMap<String, String>,
    },
    /// Replaces dynamic broker configs: of one broker, or the cluster-wide default.
    SetBrokerConfigs {
        /// The broker, or `None` for the cluster-wide default.
        broker: Option<i32>,
        /// The full new set.
        configs: BTreeMap<String, String>,
    },
    /// Reserves producer ids up to (excluding) `block_end` (the single-node
    /// broker picks the end itself; it never moves backwards).
    AllocateProducerIds {
        /// End of the reserved block.
        block_end: i64,
    },
    /// Hands the next block of [`crate::PRODUCER_ID_BLOCK_SIZE`] producer ids
    /// to a broker. The block is chosen when the entry is applied, so two
    /// brokers asking at once get different blocks.
    AllocateProducerIdBlock {
        /// The broker asking.
        broker_id: i32,
    },
    /// Registers a broker (Kafka's RegisterBrokerRecord). A new incarnation
    /// starts fenced with a new broker epoch (the log index of this entry);
    /// the same incarnation registering again amends its listeners and rack
    /// and keeps its epoch and fencing.
    RegisterBroker {
        /// Broker id.
        broker_id: i32,
        /// Random id of this process's run of the broker.
        incarnation_id: [u8; 16],
        /// Its listeners.
        listeners: Vec<BrokerListener>,
        /// Rack, if configured.
        rack: Option<String>,
    },
    /// Fences a broker: it may no longer lead or be in an ISR. The
    /// controller proposes the partition changes that follow separately.
    FenceBroker {
        /// Broker id.
        broker_id: i32,
        /// The epoch of the registration this applies to.
        broker_epoch: i64,
    },
    /// Unfences a broker (it caught up with the metadata log).
    UnfenceBroker {
        /// Broker id.
        broker_id: i32,
        /// The epoch of the registration this applies to.
        broker_epoch: i64,
    },
    /// Marks a broker as in controlled shutdown (Kafka's
    /// `InControlledShutdown`): it may no longer lead or join an ISR; its
    /// leaderships are moved away next, then it unregisters.
    BeginControlledShutdown {
        /// Broker id.
        broker_id: i32,
        /// The epoch of the registration this applies to.
        broker_epoch: i64,
    },
    /// Removes a broker's registration.
    UnregisterBroker {
        /// Broker id.
        broker_id: i32,
        /// The epoch of the registration this applies to.
        broker_epoch: i64,
    },
    /// Changes one partition's leader, ISR or replicas (Kafka's
    /// PartitionChangeRecord; build it with [`crate::PartitionChangeBuilder`]).
    /// Setting `leader`, even to the current leader, bumps the leader epoch;
    /// any change bumps the partition epoch.
    ChangePartition {
        /// The topic.
        topic_id: [u8; 16],
        /// Partition index.
        partition: i32,
        /// Refuse the change unless the partition epoch is still this (the
        /// proposer's view may be stale by the time the entry is applied).
        expected_partition_epoch: Option<i32>,
        /// New leader (-1: none); `None` keeps the leader and its epoch.
        leader: Option<i32>,
        /// New ISR; `None` keeps it.
        isr: Option<Vec<i32>>,
        /// New replica list; `None` keeps it.
        replicas: Option<Vec<i32>>,
    },
    /// An ISR change asked for by a partition's leader (Kafka's
    /// AlterPartition, one partition). Checked when applied, in Kafka's
    /// order and against the state at that point of the log (see
    /// [`crate::alter_partition`]); if it passes, applied as the
    /// [`MetadataCommand::ChangePartition`] Kafka's controller would build:
    /// the partition epoch bumped, the leader epoch only if the leader changes.
    AlterPartition {
        /// The asking broker (the partition's leader).
        broker_id: i32,
        /// Its broker epoch.
        broker_epoch: i64,
        /// The topic.
        topic_id: [u8; 16],
        /// Partition index.
        partition: i32,
        /// The leader epoch the leader is in.
        leader_epoch: i32,
        /// The partition epoch the leader knows.
        partition_epoch: i32,
        /// The ISR to have, each member with its broker epoch.
        new_isr: Vec<BrokerState>,
    },
}
