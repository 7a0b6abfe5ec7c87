//! Tributary's configuration, spoken in Kafka's keys.
//!
//! - [`defs`]: every topic config (default, type, validation, docs, broker
//!   synonyms) and every broker key, as Kafka defines them;
//! - [`properties`]: the `server.properties` file format;
//! - [`connections::ConnectionLimits`]: the listeners' connection limits,
//!   checked the same way at startup and on a dynamic update;
//! - [`broker::BrokerConfig`]: the broker's static config from a file,
//!   `KAFKA_*` environment variables (Confluent image mapping) and overrides;
//! - [`topic::BrokerLayers`]: resolves a topic config through its layers
//!   (topic override → dynamic broker → dynamic default → static → default)
//!   and yields the typed [`topic::TopicConfig`] the log uses;
//! - [`describe`]: DescribeConfigs entries (source, synonym chain, read-only,
//!   sensitivity, type) built by Kafka's rules;
//! - [`kafka`]: which broker keys Kafka can update at runtime, and Kafka keys
//!   accepted for compatibility.

pub mod broker;
pub mod connections;
pub mod defs;
pub mod describe;
pub mod kafka;
pub mod properties;
pub mod replica_selector;
pub mod topic;
pub mod value;

pub use broker::{BrokerConfig, ConfigError, Listener};
pub use replica_selector::ReplicaSelector;
pub use topic::{BrokerLayers, ConfigSource, SubjectNameStrategy, TopicConfig, validate_topic_config};
