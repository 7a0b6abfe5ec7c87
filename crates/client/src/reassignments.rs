//! Partition reassignment (KIP-455): start, replace or cancel reassignments
//! (AlterPartitionReassignments), list the ones in progress
//! (ListPartitionReassignments), and read the size of one broker's replicas
//! (DescribeLogDirs, which any replica answers, not just the leader), which
//! is how far a new replica has come.
//!
//! ```text
//! alter_reassignments ─▶ AlterPartitionReassignments to the controller Metadata names
//!                        (any broker of a KRaft cluster forwards it); one result per partition
//! list_reassignments ──▶ ListPartitionReassignments to the controller
//! replica_log_sizes ───▶ DescribeLogDirs (the partitions asked for) to that broker
//! ```

use std::collections::BTreeMap;

use kafka_protocol::messages::alter_partition_reassignments_request::{ReassignablePartition, ReassignableTopic};
use kafka_protocol::messages::describe_log_dirs_request::DescribableLogDirTopic;
use kafka_protocol::messages::list_partition_reassignments_request::ListPartitionReassignmentsTopics;
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, ApiKey, BrokerId, DescribeLogDirsRequest, ListPartitionReassignmentsRequest,
};

use crate::admin::TopicPartition;
use crate::client::{Client, topic_name};
use crate::connection::Connection;
use crate::error::{ClientError, KafkaError};

/// A reassignment in progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reassignment {
    /// Every replica: the target first, then the ones being removed.
    pub replicas: Vec<i32>,
    /// Replicas being added.
    pub adding: Vec<i32>,
    /// Replicas being removed.
    pub removing: Vec<i32>,
}

impl Reassignment {
    /// The replicas the partition will have once it is done.
    pub fn target(&self) -> Vec<i32> {
        self.replicas.iter().copied().filter(|r| !self.removing.contains(r)).collect()
    }
}

fn grouped<T: Clone>(items: &[(TopicPartition, T)]) -> BTreeMap<&str, Vec<(i32, T)>> {
    let mut out: BTreeMap<&str, Vec<(i32, T)>> = BTreeMap::new();
    for (tp, v) in items {
        out.entry(tp.topic.as_str()).or_default().push((tp.partition, v.clone()));
    }
    out
}

impl Client {
    /// The active controller's connection, as Metadata names it (any broker
    /// when it names none it knows).
    async fn controller_connection(&mut self) -> Result<&mut Connection, ClientError> {
        let metadata = self.metadata(Some(&[])).await?;
        match metadata.brokers.get(&metadata.controller_id).cloned() {
            Some(node) => self.connection_to(&node).await,
            None => self.any_connection().await,
        }
    }

    /// Starts or replaces the reassignment of each partition to its replicas,
    /// or cancels the one in progress (`None`). With `allow_rf_change`
    /// false (KIP-860, v1), the controller refuses a target that changes a
    /// partition's replication factor. Returns each partition's outcome; a
    /// request-level refusal is an error.
    pub async fn alter_reassignments(
        &mut self,
        changes: &[(TopicPartition, Option<Vec<i32>>)],
        allow_rf_change: bool,
    ) -> Result<Vec<(TopicPartition, Result<(), KafkaError>)>, ClientError> {
        let timeout_ms = i32::try_from(self.config().timeout.as_millis()).unwrap_or(i32::MAX);
        let conn = self.controller_connection().await?;
        let v = conn.version(ApiKey::AlterPartitionReassignments)?;
        if !allow_rf_change && v < 1 {
            return Err(ClientError::Unsupported {
                addr: conn.addr().to_string(),
                detail: "the controller serves AlterPartitionReassignments v0 only, which cannot refuse a \
                         replication factor change (KIP-860 needs v1)"
                    .to_string(),
            });
        }
        let topics = grouped(changes)
            .into_iter()
            .map(|(topic, partitions)| {
                ReassignableTopic::default().with_name(topic_name(topic)).with_partitions(
                    partitions
                        .into_iter()
                        .map(|(index, replicas)| {
                            ReassignablePartition::default()
                                .with_partition_index(index)
                                .with_replicas(replicas.map(|r| r.into_iter().map(BrokerId).collect()))
                        })
                        .collect(),
                )
            })
            .collect();
        let mut request = AlterPartitionReassignmentsRequest::default().with_timeout_ms(timeout_ms).with_topics(topics);
        if v >= 1 {
            request = request.with_allow_replication_factor_change(allow_rf_change);
        }
        let response = conn.call(&request, v).await?;
        if response.error_code != 0 {
            let err = KafkaError::new(response.error_code, "reassign partitions")
                .with_message(response.error_message.as_deref());
            return Err(err.into());
        }
        let mut out = Vec::new();
        for topic in response.responses {
            for p in topic.partitions {
                let tp = TopicPartition::new(topic.name.0.as_str(), p.partition_index);
                let result = if p.error_code == 0 {
                    Ok(())
                } else {
                    Err(KafkaError::new(p.error_code, format!("reassign {tp}"))
                        .with_message(p.error_message.as_deref()))
                };
                out.push((tp, result));
            }
        }
        Ok(out)
    }

    /// The reassignments in progress, of every partition (`None`) or of those named.
    pub async fn list_reassignments(
        &mut self,
        partitions: Option<&[TopicPartition]>,
    ) -> Result<BTreeMap<TopicPartition, Reassignment>, ClientError> {
        let timeout_ms = i32::try_from(self.config().timeout.as_millis()).unwrap_or(i32::MAX);
        let conn = self.controller_connection().await?;
        let v = conn.version(ApiKey::ListPartitionReassignments)?;
        let topics = partitions.map(|ps| {
            let named: Vec<(TopicPartition, ())> = ps.iter().map(|tp| (tp.clone(), ())).collect();
            grouped(&named)
                .into_iter()
                .map(|(topic, indexes)| {
                    ListPartitionReassignmentsTopics::default()
                        .with_name(topic_name(topic))
                        .with_partition_indexes(indexes.into_iter().map(|(i, ())| i).collect())
                })
                .collect()
        });
        let request = ListPartitionReassignmentsRequest::default().with_timeout_ms(timeout_ms).with_topics(topics);
        let response = conn.call(&request, v).await?;
        if response.error_code != 0 {
            let err = KafkaError::new(response.error_code, "list partition reassignments")
                .with_message(response.error_message.as_deref());
            return Err(err.into());
        }
        let ids = |v: &[BrokerId]| v.iter().map(|b| b.0).collect::<Vec<_>>();
        let mut out = BTreeMap::new();
        for topic in response.topics {
            for p in topic.partitions {
                out.insert(
                    TopicPartition::new(topic.name.0.as_str(), p.partition_index),
                    Reassignment {
                        replicas: ids(&p.replicas),
                        adding: ids(&p.adding_replicas),
                        removing: ids(&p.removing_replicas),
                    },
                );
            }
        }
        Ok(out)
    }

    /// The size in bytes of each partition's log on broker `broker`'s own
    /// replica (leader or follower), as its DescribeLogDirs answers. A
    /// partition the broker does not hold is left out.
    pub async fn replica_log_sizes(
        &mut self,
        broker: i32,
        partitions: &[TopicPartition],
    ) -> Result<BTreeMap<TopicPartition, u64>, ClientError> {
        let node = match self.brokers().get(&broker).cloned() {
            Some(node) => node,
            None => {
                let metadata = self.metadata(Some(&[])).await?;
                metadata.brokers.get(&broker).cloned().ok_or_else(|| {
                    ClientError::from(
                        KafkaError::new(8, format!("reach broker {broker}"))
                            .with_message(Some("the cluster lists no such live broker")),
                    )
                })?
            }
        };
        let conn = self.connection_to(&node).await?;
        let v = conn.version(ApiKey::DescribeLogDirs)?;
        let named: Vec<(TopicPartition, ())> = partitions.iter().map(|tp| (tp.clone(), ())).collect();
        let topics = grouped(&named)
            .into_iter()
            .map(|(topic, indexes)| {
                DescribableLogDirTopic::default()
                    .with_topic(topic_name(topic))
                    .with_partitions(indexes.into_iter().map(|(i, ())| i).collect())
            })
            .collect();
        let response = conn.call(&DescribeLogDirsRequest::default().with_topics(Some(topics)), v).await?;
        if response.error_code != 0 {
            return Err(
                KafkaError::new(response.error_code, format!("describe the log dirs of broker {broker}")).into()
            );
        }
        let mut out = BTreeMap::new();
        for dir in response.results.into_iter().filter(|d| d.error_code == 0) {
            for t in dir.topics {
                for p in t.partitions.into_iter().filter(|p| !p.is_future_key) {
                    let size = u64::try_from(p.partition_size).unwrap_or(0);
                    *out.entry(TopicPartition::new(t.name.0.as_str(), p.partition_index)).or_insert(0) += size;
                }
            }
        }
        Ok(out)
    }
}
