//! The internal async Kafka client, built on the `protocol` crate: what the
//! CLI and the HTTP services use to talk to any Kafka-compatible
//! broker, Tributary or not.
//!
//! ```text
//! ClientConfig { bootstrap, client_id, timeout, response_bytes_max }
//!      │
//!      ▼
//! Client::connect ── first bootstrap address that answers ──▶ Connection
//!      │                    (TCP, ApiVersions negotiation, correlation ids,
//!      │                     size-checked frames, response shape check, timeouts)
//!      ├── metadata ───────────▶ brokers and partition leaders
//!      ├── group_coordinator ──▶ FindCoordinator, cached per group
//!      ├── cluster (cluster.rs) ▶ brokers, fenced or not (DescribeCluster), the metadata
//!      │                         quorum (DescribeQuorum)
//!      ├── admin (admin.rs) ───▶ list / describe groups, committed offsets,
//!      │                         list offsets, lag, seek plan + admin commit,
//!      │                         delete groups, delete offsets
//!      ├── topics (topics.rs) ─▶ create a topic with configs, delete it, add partitions
//!      ├── configs (configs.rs) ▶ describe topic / broker configs, change them one by one
//!      ├── elections.rs ───────▶ preferred / unclean leader elections (ElectLeaders)
//!      ├── reassignments.rs ───▶ start / cancel / list partition reassignments, a replica's log end
//!      ├── records (records.rs) ▶ produce batches (one request per leader), fetch one or
//!      │                         many partitions, decode batches (keys, values, headers)
//!      ├── membership.rs ──────▶ join / sync / heartbeat / leave a classic group
//!      ├── producer.rs ────────▶ a batching producer task: Kafka's partitioners (murmur2 for
//!      │                         keys, sticky otherwise), acks, compression, one answer per record
//!      └── consumer.rs ────────▶ a consumer: a range-assigning group member (or partitions
//!                                assigned by hand), positions from committed offsets or a
//!                                start offset (rpk's syntax), fetch, heartbeats, commits
//! ```
//!
//! Each request uses the highest version both the broker and this client
//! support; an API the broker lacks is a clear [`ClientError::Unsupported`].
//! Every error names the Kafka error code (`NON_EMPTY_GROUP`) when there is
//! one and says what to do next. Nothing read from the network is trusted:
//! frame sizes are checked before buffers are allocated, and every response
//! body is walked against its layout before it is decoded.

pub mod admin;
pub mod client;
pub mod cluster;
pub mod configs;
pub mod connection;
pub mod consumer;
pub mod elections;
pub mod error;
pub mod membership;
pub mod producer;
pub mod reassignments;
pub mod records;
pub mod seek;
pub mod topics;

pub use admin::{
    CommittedOffset, GroupDescription, GroupListing, ListedOffset, MemberDescription, OffsetSpec, PartitionLag,
    SeekPlan, TopicPartition,
};
pub use client::{Client, ClusterMetadata, Node, PartitionMetadata, TopicMetadata};
pub use cluster::{BrokerDescription, ClusterDescription, QuorumDescription, QuorumEndpoint, QuorumReplica};
pub use configs::{ConfigChange, ConfigEntry, ConfigResource, ConfigSource, ConfigSynonym, DescribedConfigs};
pub use connection::{ClientConfig, Connection};
pub use consumer::{Consumer, ConsumerConfig, PollLimits, StartOffset, Topics};
pub use elections::{ELECTION_NOT_NEEDED, ElectionKind, PartitionElection};
pub use error::{ClientError, KafkaError};
pub use membership::{GroupMembership, Heartbeat, Joined, JoinedMember};
pub use producer::{Acks, Delivered, Delivery, ProduceError, Producer, ProducerConfig};
pub use reassignments::Reassignment;
pub use records::{FetchedRecord, FetchedRecords};
pub use seek::{SeekTarget, TopicSelection};
pub use topics::{NewTopic, TopicCreated};
pub use tributary_protocol::consumer_protocol::{Assignment, Subscription, TopicPartitions};
pub use tributary_record::Compression;
pub use tributary_record::builder::RecordSpec;
