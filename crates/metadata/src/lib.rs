//! Cluster metadata: topics, partitions, brokers, configs, producer id
//! blocks and the cluster id, as typed commands in a Raft-shaped log applied
//! by a deterministic state machine.
//!
//! ```text
//!                       ┌──────────── MetadataStore (single node: propose = append+fsync+apply) ────────────┐
//! MetadataCommand ──▶   │ MetadataLog (log/)                       MetadataStateMachine (machine.rs)        │
//!                       │  segment-*.log  entries (term, leader,   MetadataState (state.rs) ◀── apply        │
//!                       │                 index, payload), CRC32C  snapshot-*.snap (atomic)                 │
//!                       │  vote / committed / purged (atomic)                                               │
//!                       └──────────────────────────────── Disk (disk/): FsDisk | SimDisk ───────────────────┘
//! ```
//!
//! The log and the state machine have the operations a Raft library's
//! storage traits need (append + flush, truncate, purge, vote, committed,
//! reads; apply, snapshot build / install), with our own types and no
//! consensus dependency; `docs/design/metadata-log.md` gives the format,
//! the fsync and purge rules, and the mapping onto openraft. Until the
//! quorum exists, [`MetadataStore`] runs them as a quorum of one.
//!
//! The [`disk`] seam lets the same code run on a simulated disk that loses
//! what was not fsynced; `tests/simulation.rs` runs thousands of seeded
//! crash scenarios against it.

pub mod alter_partition;
pub mod command;
pub mod disk;
pub mod error;
pub mod frame;
pub mod fuzzing;
pub mod legacy;
pub mod log;
pub mod machine;
pub mod partition_change;
pub mod replay;
pub mod state;
pub mod store;
pub mod types;

pub use alter_partition::AlterPartitionError;
pub use command::{BrokerListener, BrokerState, MetadataCommand, PartitionMeta, TopicMeta};
pub use disk::{Disk, FsDisk, SimDisk};
pub use error::MetadataError;
pub use log::{LogOptions, MetadataLog};
pub use machine::MetadataStateMachine;
pub use partition_change::{Election, PartitionChangeBuilder};
pub use state::{ApplyOutcome, BrokerRegistration, MetadataState, PRODUCER_ID_BLOCK_SIZE};
pub use store::{MetadataStore, SNAPSHOT_EVERY_COMMANDS, StoreOptions};
pub use types::{
    Entry, EntryPayload, LogId, LogState, MemberNode, Membership, NodeId, SnapshotMeta, StoredMembership, Vote,
};
