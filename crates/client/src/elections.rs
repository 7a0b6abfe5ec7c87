//! Leader elections (ElectLeaders): move leadership back to preferred
//! replicas, or give a leaderless partition an out-of-sync replica.
//!
//! ```text
//! elect_leaders ──▶ ElectLeaders (any broker; the cluster's active controller decides)
//!                   ──▶ one result per partition: elected, not needed, or an error
//! ```

use kafka_protocol::messages::elect_leaders_request::TopicPartitions;
use kafka_protocol::messages::{ApiKey, ElectLeadersRequest};

use crate::client::{Client, topic_name};
use crate::error::{ClientError, KafkaError};

/// Kafka's ELECTION_NOT_NEEDED.
pub const ELECTION_NOT_NEEDED: i16 = 84;

/// Which election to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElectionKind {
    /// Move leadership to each partition's first replica when it is alive and in sync.
    Preferred,
    /// Give a partition without a leader any live replica, in sync or not (may lose data).
    Unclean,
}

impl ElectionKind {
    fn code(self) -> i8 {
        match self {
            ElectionKind::Preferred => 0,
            ElectionKind::Unclean => 1,
        }
    }
}

/// One partition's election result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionElection {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// `None` when a leader was elected; ELECTION_NOT_NEEDED (84) when the
    /// partition already had the leader asked for; otherwise why not.
    pub error: Option<KafkaError>,
}

impl Client {
    /// Runs elections for `partitions` (topic, partition indexes), or for
    /// every partition of the cluster when `None` (then only partitions
    /// where something was elected, or failed to be, are returned).
    pub async fn elect_leaders(
        &mut self,
        kind: ElectionKind,
        partitions: Option<&[(String, Vec<i32>)]>,
    ) -> Result<Vec<PartitionElection>, ClientError> {
        let timeout_ms = i32::try_from(self.config().timeout.as_millis()).unwrap_or(i32::MAX);
        let conn = self.any_connection().await?;
        let v = conn.version(ApiKey::ElectLeaders)?;
        if v == 0 && kind == ElectionKind::Unclean {
            return Err(ClientError::Unsupported {
                addr: conn.addr().to_string(),
                detail: "the broker serves only ElectLeaders v0, which has no unclean elections".to_string(),
            });
        }
        let topic_partitions = partitions.map(|ps| {
            ps.iter()
                .map(|(topic, indexes)| {
                    TopicPartitions::default().with_topic(topic_name(topic)).with_partitions(indexes.clone())
                })
                .collect()
        });
        let request = ElectLeadersRequest::default()
            .with_election_type(kind.code())
            .with_topic_partitions(topic_partitions)
            .with_timeout_ms(timeout_ms);
        let response = conn.call(&request, v).await?;
        if response.error_code != 0 {
            return Err(KafkaError::new(response.error_code, "elect leaders").into());
        }
        Ok(response
            .replica_election_results
            .iter()
            .flat_map(|t| {
                t.partition_result.iter().map(|p| PartitionElection {
                    topic: t.topic.0.to_string(),
                    partition: p.partition_id,
                    error: (p.error_code != 0).then(|| {
                        KafkaError::new(p.error_code, format!("elect a leader for {}-{}", t.topic.0, p.partition_id))
                            .with_message(p.error_message.as_deref())
                    }),
                })
            })
            .collect())
    }
}
