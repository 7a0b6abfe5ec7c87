//! DescribeQuorum (key 55): the metadata quorum as KRaft reports it for
//! `__cluster_metadata` partition 0: leader, epoch, high watermark, the
//! voters and observers with their log end offsets and fetch times, and
//! from v2 the voters' controller endpoints.
//!
//! Every node answers, as a Kafka broker does by forwarding to the active
//! controller: a KRaft node asks the quorum leader (`MetadataQuorum::describe`
//! forwards to it). A node alone (no `process.roles`) runs its metadata as a
//! quorum of one voter, itself, and says so; Kafka 4 has no other mode, so
//! its admin tools (`kafka-metadata-quorum.sh`, `Admin.describeMetadataQuorum`)
//! always find the API and get a real answer rather than an unsupported one.
//!
//! | case | answer (as Kafka's raft client gives it) |
//! |---|---|
//! | the request names anything but exactly `__cluster_metadata`-0 | UNKNOWN_TOPIC_OR_PARTITION on each partition asked for |
//! | no leader known, or the quorum stopping | NOT_LEADER_OR_FOLLOWER on the partition (retriable) |
//! | the leader did not answer in time | REQUEST_TIMED_OUT, top level (retriable) |
//! | anything else | UNKNOWN_SERVER_ERROR, top level, with the reason |

use std::sync::Arc;

use kafka_protocol::messages::describe_quorum_response::{Listener, Node, PartitionData, ReplicaState, TopicData};
use kafka_protocol::messages::{ApiKey, BrokerId, DescribeQuorumRequest, DescribeQuorumResponse, TopicName};
use tributary_protocol::{ErrorCode, RequestHeader};
use tributary_quorum::describe::now_ms;
use tributary_quorum::{MetadataQuorum, QuorumDescription, QuorumError};

use super::{Reply, blocking, respond, str_bytes};
use crate::backend::Turn;
use crate::cluster::Cluster;

/// The metadata log's topic, as KRaft names it.
pub(crate) const METADATA_TOPIC: &str = "__cluster_metadata";
/// Its only partition.
const METADATA_PARTITION: i32 = 0;

/// Why no description could be given, and where the error goes.
enum Failure {
    /// On the partition.
    Partition(ErrorCode, String),
    /// At the top level.
    TopLevel(ErrorCode, String),
}

pub(super) async fn handle(cluster: &Arc<Cluster>, header: &RequestHeader, request: DescribeQuorumRequest) -> Reply {
    let v = header.api_version;
    if !asks_for_the_metadata_partition(&request) {
        let message = "This node's metadata quorum is __cluster_metadata partition 0.";
        let topics = request
            .topics
            .iter()
            .map(|t| {
                let partitions = t
                    .partitions
                    .iter()
                    .map(|p| {
                        partition(p.partition_index)
                            .with_error_code(ErrorCode::UnknownTopicOrPartition.code())
                            .with_error_message((v >= 2).then(|| str_bytes(message)))
                    })
                    .collect();
                TopicData::default().with_topic_name(t.topic_name.clone()).with_partitions(partitions)
            })
            .collect();
        return respond(ApiKey::DescribeQuorum, header, &DescribeQuorumResponse::default().with_topics(topics));
    }
    let body = match describe(cluster).await {
        Ok(description) => described(cluster, &description, v),
        Err(Failure::Partition(code, message)) => DescribeQuorumResponse::default().with_topics(vec![metadata_topic(
            partition(METADATA_PARTITION)
                .with_error_code(code.code())
                .with_error_message((v >= 2).then(|| str_bytes(&message))),
        )]),
        Err(Failure::TopLevel(code, message)) => DescribeQuorumResponse::default()
            .with_error_code(code.code())
            .with_error_message((v >= 2).then(|| str_bytes(&message))),
    };
    respond(ApiKey::DescribeQuorum, header, &body)
}

/// Exactly one topic, `__cluster_metadata`, with exactly partition 0 (as Kafka checks it).
fn asks_for_the_metadata_partition(request: &DescribeQuorumRequest) -> bool {
    match request.topics.as_slice() {
        [topic] => {
            topic.topic_name.0.as_str() == METADATA_TOPIC
                && matches!(topic.partitions.as_slice(), [p] if p.partition_index == METADATA_PARTITION)
        }
        _ => false,
    }
}

/// A partition entry with no leader and no replicas (what an error carries).
fn partition(index: i32) -> PartitionData {
    PartitionData::default().with_partition_index(index).with_leader_id(BrokerId(-1)).with_leader_epoch(-1)
}

fn metadata_topic(partition: PartitionData) -> TopicData {
    TopicData::default().with_topic_name(TopicName(str_bytes(METADATA_TOPIC))).with_partitions(vec![partition])
}

/// The quorum's state: the leader's account on a KRaft node, this node's own when alone.
async fn describe(cluster: &Arc<Cluster>) -> Result<QuorumDescription, Failure> {
    if let Some(q) = cluster.quorum() {
        return q.quorum.describe().await.map_err(|e| match e {
            QuorumError::NotController { .. } | QuorumError::Stopped(_) => Failure::Partition(
                ErrorCode::NotLeaderOrFollower,
                format!("The metadata quorum has no reachable leader now: {e}"),
            ),
            QuorumError::OutcomeUnknown(_) | QuorumError::NotYetApplied { .. } => {
                Failure::TopLevel(ErrorCode::RequestTimedOut, format!("The quorum leader did not answer in time: {e}"))
            }
            other => Failure::TopLevel(ErrorCode::UnknownServerError, other.to_string()),
        });
    }
    let c = cluster.clone();
    blocking(move || alone(&c))
        .await
        .ok_or_else(|| Failure::TopLevel(ErrorCode::UnknownServerError, "reading the metadata log failed".into()))
}

/// A node alone: one voter, itself, leading its own log; everything it
/// wrote is durable, so committed (log end offset = high watermark).
fn alone(cluster: &Cluster) -> QuorumDescription {
    let (epoch, end) = match cluster.metadata() {
        Turn::Local(store) => (store.term(), store.state().applied_index()),
        Turn::Quorum(_) => (0, 0),
    };
    let end = i64::try_from(end).unwrap_or(i64::MAX);
    let now = now_ms();
    QuorumDescription {
        leader_id: cluster.node_id,
        leader_epoch: epoch,
        high_watermark: end,
        voters: vec![tributary_quorum::ReplicaState {
            replica_id: cluster.node_id,
            // No controller listener: the node takes every request on its Kafka listeners.
            address: String::new(),
            log_end_offset: end,
            last_fetch_timestamp: now,
            last_caught_up_timestamp: now,
        }],
        observers: Vec::new(),
    }
}

fn described(cluster: &Cluster, d: &QuorumDescription, v: i16) -> DescribeQuorumResponse {
    let replica = |r: &tributary_quorum::ReplicaState| {
        let mut state =
            ReplicaState::default().with_replica_id(BrokerId(r.replica_id)).with_log_end_offset(r.log_end_offset);
        if v >= 1 {
            state = state
                .with_last_fetch_timestamp(r.last_fetch_timestamp)
                .with_last_caught_up_timestamp(r.last_caught_up_timestamp);
        }
        state
    };
    let partition = partition(METADATA_PARTITION)
        .with_error_code(0)
        .with_leader_id(BrokerId(d.leader_id))
        .with_leader_epoch(i32::try_from(d.leader_epoch).unwrap_or(i32::MAX))
        .with_high_watermark(d.high_watermark)
        .with_current_voters(d.voters.iter().map(replica).collect())
        .with_observers(d.observers.iter().map(replica).collect());
    let mut body = DescribeQuorumResponse::default().with_topics(vec![metadata_topic(partition)]);
    if v >= 2 {
        let listener_name = cluster
            .quorum()
            .and_then(|q| q.kraft.controller_listener_names.first().cloned())
            .unwrap_or_else(|| "CONTROLLER".to_string());
        let nodes = d
            .voters
            .iter()
            .map(|r| {
                let listeners = split_host_port(&r.address)
                    .map(|(host, port)| {
                        Listener::default()
                            .with_name(str_bytes(&listener_name))
                            .with_host(str_bytes(host))
                            .with_port(port)
                    })
                    .into_iter()
                    .collect();
                Node::default().with_node_id(BrokerId(r.replica_id)).with_listeners(listeners)
            })
            .collect();
        body = body.with_nodes(nodes);
    }
    body
}

/// `host:port` or `[v6]:port`; `None` for anything else (an empty address).
fn split_host_port(address: &str) -> Option<(&str, u16)> {
    let (host, port) = address.rsplit_once(':')?;
    let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    let port = port.parse().ok()?;
    (!host.is_empty()).then_some((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::describe_quorum_request;

    fn request(topics: &[(&str, &[i32])]) -> DescribeQuorumRequest {
        DescribeQuorumRequest::default().with_topics(
            topics
                .iter()
                .map(|(name, partitions)| {
                    describe_quorum_request::TopicData::default()
                        .with_topic_name(TopicName(str_bytes(name)))
                        .with_partitions(
                            partitions
                                .iter()
                                .map(|&p| describe_quorum_request::PartitionData::default().with_partition_index(p))
                                .collect(),
                        )
                })
                .collect(),
        )
    }

    #[test]
    fn only_the_metadata_partition_is_described() {
        assert!(asks_for_the_metadata_partition(&request(&[("__cluster_metadata", &[0])])));
        assert!(!asks_for_the_metadata_partition(&request(&[("__cluster_metadata", &[1])])));
        assert!(!asks_for_the_metadata_partition(&request(&[("__cluster_metadata", &[0, 0])])));
        assert!(!asks_for_the_metadata_partition(&request(&[("orders", &[0])])));
        assert!(!asks_for_the_metadata_partition(&request(&[])));
        assert!(!asks_for_the_metadata_partition(&request(&[("__cluster_metadata", &[0]), ("x", &[0])])));
    }

    #[test]
    fn controller_addresses_split() {
        assert_eq!(split_host_port("127.0.0.1:9093"), Some(("127.0.0.1", 9093)));
        assert_eq!(split_host_port("[::1]:9093"), Some(("::1", 9093)));
        assert_eq!(split_host_port(""), None);
        assert_eq!(split_host_port("host:99999"), None);
        assert_eq!(split_host_port(":9093"), None);
    }
}
