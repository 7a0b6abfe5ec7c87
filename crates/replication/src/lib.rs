//! Partition replication as deterministic state machines: Kafka's semantics
//! (leader epochs, high watermark, ISR, `min.insync.replicas`, clean
//! elections) with one strengthening — a follower reports, through its
//! fetch position, only what it has fsynced, so the high watermark, and
//! every acks=all answer, covers data on the disk of every in-sync replica.
//!
//! Nothing here does I/O or reads a clock. Time is a `u64` of milliseconds
//! passed in; the partition log is reached through [`ReplicaLog`]; messages
//! are plain values ([`messages`]) the broker puts on the wire. The same
//! code runs in the broker and under this crate's seeded simulator
//! (`src/sim`, in `cargo test`), which checks the invariants after every
//! step. The design note is `docs/design/replication.md`.
//!
//! | module | job |
//! |---|---|
//! | [`replica`] | a replica's role from metadata (leader, follower, none): the broker's entry point |
//! | [`leader`] | positions, high watermark, ISR shrink/expand via AlterPartition, produce answers |
//! | [`follower`] | what to fetch next, appending, truncating to the leader's history |
//! | [`epochs`] | the leader epoch cache and the truncation rule (KIP-101/279/320) |
//! | [`progress`] | one follower as the leader sees it (position, caught-up clock) |
//! | [`isr`] | committed ISR and the change in flight; the maximal ISR |
//! | [`acks`] | waiting produce requests and how they are answered |
//! | [`controller_model`] | the controller's AlterPartition checks and elections, as a model |
//! | [`messages`] | Fetch, OffsetForLeaderEpoch, AlterPartition as values |
//! | [`log`] | the seam to the partition log |
//! | [`types`] | ids, the partition registration, settings |
//!
//! How the broker drives a partition:
//!
//! ```text
//!  metadata image ──▶ PartitionReplica::apply_metadata ──▶ role: Leader / Follower / None
//!
//!  leader:   produce ──▶ check_produce ──▶ (broker appends) ──▶ on_appended
//!            flusher done ──▶ on_flushed           replica Fetch ──▶ handle_fetch ──▶ (broker reads)
//!            timer ──▶ tick                        OffsetForLeaderEpoch ──▶ handle_offset_for_leader_epoch
//!            AlterPartition answer ──▶ handle_alter_partition_response
//!            every call returns LeaderEffects: new high watermark, produce answers, AlterPartition to send
//!
//!  follower: fetcher ──▶ poll ──▶ request to the leader ──▶ handle_fetch_response /
//!            handle_offset_for_leader_epoch_response (appends or truncates through ReplicaLog)
//!            ──▶ flusher makes it durable ──▶ poll again
//! ```

pub mod acks;
pub mod controller_model;
pub mod epochs;
pub mod follower;
pub mod isr;
pub mod leader;
pub mod log;
pub mod messages;
pub mod progress;
pub mod replica;
pub mod types;

#[cfg(test)]
mod bugs;
#[cfg(test)]
mod sim;

pub use acks::{AckId, AckOutcome, Acks, ProduceError};
pub use controller_model::ControllerModel;
pub use epochs::{EpochCache, TruncationTarget, truncation_target};
pub use follower::{FetchPhase, FollowerEvent, FollowerRequest, FollowerState};
pub use leader::{AlterPartitionSend, LeaderEffects, LeaderState};
pub use log::{EpochEndOffset, LogError, ReplicaLog};
pub use replica::{MetadataOutcome, PartitionReplica, Role, Transition};
pub use types::{
    BrokerEpoch, BrokerStatus, LeaderEpoch, MetadataView, NO_LEADER, NodeId, Offset, PartitionEpoch,
    PartitionRegistration, ReplicationConfig, TruncationMode, UNKNOWN_BROKER_EPOCH,
};
