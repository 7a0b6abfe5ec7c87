//! What a cluster says about itself: its brokers, fenced or not
//! (DescribeCluster), and its metadata quorum (DescribeQuorum).
//!
//! ```text
//! describe_cluster ─▶ DescribeCluster (any broker; v2 asks for fenced brokers too)
//!                     a broker without DescribeCluster (Kafka < 2.8) ─▶ Metadata's brokers
//! describe_quorum ──▶ DescribeQuorum for __cluster_metadata-0 (any broker answers with
//!                     the quorum leader's account); no leader yet or a slow leader
//!                     (NOT_LEADER_OR_FOLLOWER, REQUEST_TIMED_OUT) ─▶ retried within the timeout
//! ```

use std::collections::BTreeMap;

use kafka_protocol::messages::describe_quorum_request::{PartitionData, TopicData};
use kafka_protocol::messages::{ApiKey, DescribeClusterRequest, DescribeQuorumRequest, describe_quorum_response};

use crate::client::{Client, Retry, topic_name};
use crate::error::{ClientError, KafkaError};

/// The metadata log's topic in a KRaft cluster.
pub const METADATA_TOPIC: &str = "__cluster_metadata";

/// One broker of the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerDescription {
    /// `node.id`.
    pub node_id: i32,
    /// Advertised host for the listener asked on.
    pub host: String,
    /// Advertised port.
    pub port: i32,
    /// Rack, if it has one.
    pub rack: Option<String>,
    /// Registered but fenced (its heartbeats stopped); only a DescribeCluster
    /// v2 answer reports fenced brokers, so `false` may mean "not told".
    pub fenced: bool,
}

/// The cluster's id, controller and brokers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterDescription {
    /// Cluster id (None from a broker that has none).
    pub cluster_id: Option<String>,
    /// The controller id clients are shown; -1 when unknown.
    pub controller_id: i32,
    /// Brokers by node id.
    pub brokers: Vec<BrokerDescription>,
    /// Whether fenced brokers were asked for and would be listed.
    pub fenced_reported: bool,
}

/// A replica of the metadata log, as the quorum leader sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumReplica {
    /// Node id.
    pub replica_id: i32,
    /// One past the last entry it holds; -1 when unknown.
    pub log_end_offset: i64,
    /// When it last fetched, ms since the epoch (None: never, or a v0 answer).
    pub last_fetch_timestamp: Option<i64>,
    /// When it last had everything the leader had (None: never, or a v0 answer).
    pub last_caught_up_timestamp: Option<i64>,
}

/// A controller endpoint of a voter (DescribeQuorum v2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumEndpoint {
    /// Listener name (`CONTROLLER`).
    pub listener: String,
    /// Host.
    pub host: String,
    /// Port.
    pub port: u16,
}

/// The metadata quorum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumDescription {
    /// The leader (the active controller).
    pub leader_id: i32,
    /// Its epoch.
    pub leader_epoch: i32,
    /// The committed offset of the metadata log.
    pub high_watermark: i64,
    /// Voters.
    pub voters: Vec<QuorumReplica>,
    /// Observers (brokers that only follow the log).
    pub observers: Vec<QuorumReplica>,
    /// Controller endpoints by voter id (empty before v2).
    pub endpoints: BTreeMap<i32, Vec<QuorumEndpoint>>,
}

fn replica(r: &describe_quorum_response::ReplicaState) -> QuorumReplica {
    let known = |t: i64| (t >= 0).then_some(t);
    QuorumReplica {
        replica_id: r.replica_id.0,
        log_end_offset: r.log_end_offset,
        last_fetch_timestamp: known(r.last_fetch_timestamp),
        last_caught_up_timestamp: known(r.last_caught_up_timestamp),
    }
}

impl Client {
    /// The cluster's id, controller and brokers, fenced ones included when
    /// the broker serves DescribeCluster v2.
    pub async fn describe_cluster(&mut self) -> Result<ClusterDescription, ClientError> {
        let conn = self.any_connection().await?;
        let v = match conn.version(ApiKey::DescribeCluster) {
            Ok(v) => v,
            Err(ClientError::Unsupported { .. }) => return self.described_by_metadata().await,
            Err(e) => return Err(e),
        };
        let mut request = DescribeClusterRequest::default();
        if v >= 2 {
            request = request.with_include_fenced_brokers(true);
        }
        let response = conn.call(&request, v).await?;
        if response.error_code != 0 {
            return Err(KafkaError::new(response.error_code, "describe the cluster")
                .with_message(response.error_message.as_deref())
                .into());
        }
        let mut brokers: Vec<BrokerDescription> = response
            .brokers
            .iter()
            .map(|b| BrokerDescription {
                node_id: b.broker_id.0,
                host: b.host.to_string(),
                port: b.port,
                rack: b.rack.as_deref().map(str::to_string),
                fenced: b.is_fenced,
            })
            .collect();
        brokers.sort_by_key(|b| b.node_id);
        Ok(ClusterDescription {
            cluster_id: Some(response.cluster_id.to_string()),
            controller_id: response.controller_id.0,
            brokers,
            fenced_reported: v >= 2,
        })
    }

    async fn described_by_metadata(&mut self) -> Result<ClusterDescription, ClientError> {
        let metadata = self.metadata(Some(&[])).await?;
        let brokers = metadata
            .brokers
            .values()
            .map(|b| BrokerDescription {
                node_id: b.node_id,
                host: b.host.clone(),
                port: b.port,
                rack: metadata.racks.get(&b.node_id).cloned(),
                fenced: false,
            })
            .collect();
        Ok(ClusterDescription {
            cluster_id: metadata.cluster_id,
            controller_id: metadata.controller_id,
            brokers,
            fenced_reported: false,
        })
    }

    /// The metadata quorum, as its leader reports it. A broker without
    /// DescribeQuorum (not a KRaft cluster) is [`ClientError::Unsupported`].
    pub async fn describe_quorum(&mut self) -> Result<QuorumDescription, ClientError> {
        let context = "describe the metadata quorum";
        let request = DescribeQuorumRequest::default().with_topics(vec![
            TopicData::default()
                .with_topic_name(topic_name(METADATA_TOPIC))
                .with_partitions(vec![PartitionData::default().with_partition_index(0)]),
        ]);
        let mut retry = Retry::new(self.config().timeout);
        loop {
            let conn = self.any_connection().await?;
            let v = conn.version(ApiKey::DescribeQuorum)?;
            let addr = conn.addr().to_string();
            let response = conn.call(&request, v).await?;
            let malformed = |detail: String| ClientError::Malformed {
                addr: addr.clone(),
                api: "DescribeQuorum".to_string(),
                detail,
            };
            let error = if response.error_code != 0 {
                KafkaError::new(response.error_code, context).with_message(response.error_message.as_deref())
            } else {
                let [topic] = response.topics.as_slice() else {
                    return Err(malformed(format!("{} topics in the answer, 1 expected", response.topics.len())));
                };
                if topic.topic_name.0.as_str() != METADATA_TOPIC {
                    return Err(malformed(format!(
                        "topic \"{}\" answered, {METADATA_TOPIC} expected",
                        topic.topic_name.0
                    )));
                }
                let [partition] = topic.partitions.as_slice() else {
                    return Err(malformed(format!("{} partitions in the answer, 1 expected", topic.partitions.len())));
                };
                if partition.partition_index != 0 {
                    return Err(malformed(format!("partition {} answered, 0 expected", partition.partition_index)));
                }
                if partition.error_code == 0 {
                    let endpoints = response
                        .nodes
                        .iter()
                        .map(|n| {
                            let listeners = n
                                .listeners
                                .iter()
                                .map(|l| QuorumEndpoint {
                                    listener: l.name.to_string(),
                                    host: l.host.to_string(),
                                    port: l.port,
                                })
                                .collect();
                            (n.node_id.0, listeners)
                        })
                        .collect();
                    return Ok(QuorumDescription {
                        leader_id: partition.leader_id.0,
                        leader_epoch: partition.leader_epoch,
                        high_watermark: partition.high_watermark,
                        voters: partition.current_voters.iter().map(replica).collect(),
                        observers: partition.observers.iter().map(replica).collect(),
                        endpoints,
                    });
                }
                KafkaError::new(partition.error_code, context).with_message(partition.error_message.as_deref())
            };
            if error.is_retriable() && retry.again().await {
                continue;
            }
            return Err(error.into());
        }
    }
}
