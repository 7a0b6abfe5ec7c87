//! Consumer group coordination: the classic protocol and the consumer
//! protocol (KIP-848) as sans-IO state machines, the server-side assignors,
//! committed offsets, and the record formats of the `__consumer_offsets`
//! topic (Kafka's, so existing tools can read it) with the mapping of a group
//! to its partition of that topic.

pub mod assignor;
pub mod classic;
pub mod consumer;
pub mod fuzzing;
pub mod offsets;
pub mod records;
