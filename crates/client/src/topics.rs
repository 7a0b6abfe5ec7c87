//! Topic administration: create a topic with configs, delete a topic, add partitions.
//!
//! ```text
//! create_topic ──────▶ CreateTopics (any broker; the cluster routes it to its controller)
//!                      TOPIC_ALREADY_EXISTS ──▶ Ok(TopicCreated::AlreadyExisted)
//! delete_topic ──────▶ DeleteTopics (any broker), by name
//! create_partitions ─▶ CreatePartitions (any broker): grow a topic to a total count
//! ```

use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::{ApiKey, CreatePartitionsRequest, CreateTopicsRequest, DeleteTopicsRequest};

use crate::client::{Client, Retry, str_bytes, topic_name};
use crate::error::{ClientError, KafkaError};

/// Kafka's TOPIC_ALREADY_EXISTS.
const TOPIC_ALREADY_EXISTS: i16 = 36;

/// What a topic to create looks like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTopic {
    /// Topic name.
    pub name: String,
    /// Partition count; -1 for the broker's `num.partitions`.
    pub partitions: i32,
    /// Replication factor; -1 for the broker's `default.replication.factor`.
    pub replication_factor: i16,
    /// Topic configs (`cleanup.policy=compact`, ...).
    pub configs: Vec<(String, String)>,
}

impl NewTopic {
    /// A topic with `partitions` partitions, the broker's replication factor and no configs.
    pub fn new(name: &str, partitions: i32) -> NewTopic {
        NewTopic { name: name.to_string(), partitions, replication_factor: -1, configs: Vec::new() }
    }

    /// Adds a topic config.
    pub fn with_config(mut self, key: &str, value: &str) -> NewTopic {
        self.configs.push((key.to_string(), value.to_string()));
        self
    }
}

/// Whether [`Client::create_topic`] created the topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopicCreated {
    /// It was created now.
    Created,
    /// It existed already (its settings were not changed).
    AlreadyExisted,
}

impl Client {
    /// Creates `topic`. A topic that already exists is not an error: the
    /// answer says so and leaves the topic as it is.
    pub async fn create_topic(&mut self, topic: &NewTopic) -> Result<TopicCreated, ClientError> {
        let context = || format!("create topic \"{}\"", topic.name);
        let timeout_ms = i32::try_from(self.config().timeout.as_millis()).unwrap_or(i32::MAX);
        let mut retry = Retry::new(self.config().timeout);
        loop {
            let conn = self.any_connection().await?;
            let v = conn.version(ApiKey::CreateTopics)?;
            let configs = topic
                .configs
                .iter()
                .map(|(k, v)| CreatableTopicConfig::default().with_name(str_bytes(k)).with_value(Some(str_bytes(v))))
                .collect();
            let request = CreateTopicsRequest::default().with_timeout_ms(timeout_ms).with_topics(vec![
                CreatableTopic::default()
                    .with_name(topic_name(&topic.name))
                    .with_num_partitions(topic.partitions)
                    .with_replication_factor(topic.replication_factor)
                    .with_configs(configs),
            ]);
            let response = conn.call(&request, v).await?;
            let Some(result) = response.topics.iter().find(|t| t.name.0.as_str() == topic.name) else {
                return Err(ClientError::Malformed {
                    addr: conn.addr().to_string(),
                    api: "CreateTopics".to_string(),
                    detail: format!("no result for topic \"{}\"", topic.name),
                });
            };
            match result.error_code {
                0 => return Ok(TopicCreated::Created),
                TOPIC_ALREADY_EXISTS => return Ok(TopicCreated::AlreadyExisted),
                code => {
                    let err = KafkaError::new(code, context()).with_message(result.error_message.as_deref());
                    if err.is_retriable() && retry.again().await {
                        continue;
                    }
                    return Err(err.into());
                }
            }
        }
    }

    /// Deletes `topic` by name. UNKNOWN_TOPIC_OR_PARTITION (3) comes back as
    /// an error, so a caller can tell a missing topic from a deleted one.
    pub async fn delete_topic(&mut self, topic: &str) -> Result<(), ClientError> {
        let context = || format!("delete topic \"{topic}\"");
        let timeout_ms = i32::try_from(self.config().timeout.as_millis()).unwrap_or(i32::MAX);
        let mut retry = Retry::new(self.config().timeout);
        loop {
            let conn = self.any_connection().await?;
            let v = conn.version(ApiKey::DeleteTopics)?;
            let mut request = DeleteTopicsRequest::default().with_timeout_ms(timeout_ms);
            if v >= 6 {
                request = request.with_topics(vec![DeleteTopicState::default().with_name(Some(topic_name(topic)))]);
            } else {
                request = request.with_topic_names(vec![topic_name(topic)]);
            }
            let response = conn.call(&request, v).await?;
            let Some(result) =
                response.responses.iter().find(|t| t.name.as_ref().is_some_and(|n| n.0.as_str() == topic))
            else {
                return Err(ClientError::Malformed {
                    addr: conn.addr().to_string(),
                    api: "DeleteTopics".to_string(),
                    detail: format!("no result for topic \"{topic}\""),
                });
            };
            match result.error_code {
                0 => return Ok(()),
                code => {
                    let err = KafkaError::new(code, context()).with_message(result.error_message.as_deref());
                    if err.is_retriable() && retry.again().await {
                        continue;
                    }
                    return Err(err.into());
                }
            }
        }
    }

    /// Grows `topic` to `count` partitions in total, the new ones placed by
    /// the cluster; with `validate_only` the broker only checks the request.
    /// A count not above the current one is refused by the broker
    /// (INVALID_PARTITIONS), an unknown topic is UNKNOWN_TOPIC_OR_PARTITION.
    pub async fn create_partitions(&mut self, topic: &str, count: i32, validate_only: bool) -> Result<(), ClientError> {
        let context = || format!("grow topic \"{topic}\" to {count} partitions");
        let timeout_ms = i32::try_from(self.config().timeout.as_millis()).unwrap_or(i32::MAX);
        let mut retry = Retry::new(self.config().timeout);
        loop {
            let conn = self.any_connection().await?;
            let v = conn.version(ApiKey::CreatePartitions)?;
            let request = CreatePartitionsRequest::default()
                .with_timeout_ms(timeout_ms)
                .with_validate_only(validate_only)
                .with_topics(vec![
                    CreatePartitionsTopic::default()
                        .with_name(topic_name(topic))
                        .with_count(count)
                        .with_assignments(None),
                ]);
            let response = conn.call(&request, v).await?;
            let Some(result) = response.results.iter().find(|t| t.name.0.as_str() == topic) else {
                return Err(ClientError::Malformed {
                    addr: conn.addr().to_string(),
                    api: "CreatePartitions".to_string(),
                    detail: format!("no result for topic \"{topic}\""),
                });
            };
            match result.error_code {
                0 => return Ok(()),
                code => {
                    let err = KafkaError::new(code, context()).with_message(result.error_message.as_deref());
                    if err.is_retriable() && retry.again().await {
                        continue;
                    }
                    return Err(err.into());
                }
            }
        }
    }
}
