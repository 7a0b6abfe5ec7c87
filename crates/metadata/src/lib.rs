//! Cluster metadata: topics, partitions, topic ids, topic and broker
//! configs and producer id blocks, as typed commands in a durable log applied
//! by a deterministic state machine.
//!
//! ```text
//! admin handler ──validate──▶ MetadataCommand ──append (fsync)──▶ metadata.log
//!                                                    │
//!                                                    ▼ apply (infallible, deterministic)
//!                                              MetadataState ──▶ snapshot every N commands
//! ```

pub mod fuzzing;
pub mod state;
pub mod store;

pub use state::{MetadataCommand, MetadataState, PRODUCER_ID_BLOCK_SIZE, PartitionMeta, TopicMeta};
pub use store::{MetadataError, MetadataStore};
