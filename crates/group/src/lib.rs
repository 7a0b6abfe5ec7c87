//! Consumer group coordination. So far: the record formats of the
//! `__consumer_offsets` topic (Kafka's, so existing tools can read it) and the
//! mapping of a group to its partition of that topic.

pub mod classic;
pub mod offsets;
pub mod records;
