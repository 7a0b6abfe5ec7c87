//! Metadata (key 3): brokers as advertised on the listener the request came
//! in on, the cluster id, and topics with their partitions; unknown topics
//! are auto-created when allowed (answered LEADER_NOT_AVAILABLE, as Kafka
//! does, so the client asks again).

use std::sync::Arc;

use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{ApiKey, BrokerId, MetadataRequest, MetadataResponse, TopicName};
use tributary_protocol::{ErrorCode, RequestHeader};
use tributary_types::{TopicId, validate_topic_name};
use uuid::Uuid;

use super::{ConnectionInfo, Reply, blocking, cluster_operations, respond, str_bytes, topic_operations};
use crate::cluster::{Cluster, NewTopic, TopicState};

const NOT_REQUESTED: i32 = i32::MIN;

fn topic_entry(topic: &TopicState, version: i16, with_ops: bool) -> MetadataResponseTopic {
    let partitions = topic
        .image
        .partitions
        .iter()
        .enumerate()
        .map(|(index, meta)| {
            let index = index as i32;
            // A replica hosted here whose log is offline (a storage error).
            let offline = topic.partition(index).is_some_and(|p| p.progress().offline);
            let leader = if offline { -1 } else { meta.leader };
            let code = if offline {
                ErrorCode::KafkaStorageError.code()
            } else if leader < 0 {
                ErrorCode::LeaderNotAvailable.code()
            } else {
                0
            };
            let ids = |v: &[i32]| v.iter().map(|b| BrokerId(*b)).collect::<Vec<_>>();
            MetadataResponsePartition::default()
                .with_error_code(code)
                .with_partition_index(index)
                .with_leader_id(BrokerId(leader))
                .with_leader_epoch(if version >= 7 { meta.leader_epoch } else { -1 })
                .with_replica_nodes(ids(&meta.replicas))
                .with_isr_nodes(if offline { Vec::new() } else { ids(&meta.isr) })
                .with_offline_replicas(if offline && version >= 5 { ids(&meta.replicas) } else { Vec::new() })
        })
        .collect();
    MetadataResponseTopic::default()
        .with_error_code(0)
        .with_name(Some(TopicName(str_bytes(&topic.name))))
        .with_topic_id(if version >= 10 { Uuid::from_bytes(topic.topic_id.0) } else { Uuid::nil() })
        .with_is_internal(topic.is_internal())
        .with_partitions(partitions)
        .with_topic_authorized_operations(if version >= 8 && with_ops { topic_operations() } else { NOT_REQUESTED })
}

fn error_entry(name: Option<&str>, topic_id: Option<Uuid>, code: ErrorCode, version: i16) -> MetadataResponseTopic {
    MetadataResponseTopic::default()
        .with_error_code(code.code())
        .with_name(name.map(|n| TopicName(str_bytes(n))))
        .with_topic_id(if version >= 10 { topic_id.unwrap_or_else(Uuid::nil) } else { Uuid::nil() })
        .with_partitions(Vec::new())
        .with_topic_authorized_operations(NOT_REQUESTED)
}

pub(super) async fn handle(
    cluster: &Arc<Cluster>,
    conn: &ConnectionInfo,
    header: &RequestHeader,
    request: MetadataRequest,
) -> Reply {
    let v = header.api_version;
    let with_topic_ops = request.include_topic_authorized_operations;
    // Before v4 every request may auto-create; v0 sends [] to mean "all topics".
    let allow_auto_create = (v < 4 || request.allow_auto_topic_creation) && cluster.config.auto_create_topics;
    let requested = match request.topics {
        None => None,
        Some(t) if t.is_empty() && v == 0 => None,
        Some(t) => Some(t),
    };
    let mut topics = Vec::new();
    match requested {
        None => {
            let registry = cluster.registry();
            topics.extend(registry.topics.values().map(|t| topic_entry(t, v, with_topic_ops)));
        }
        Some(list) => {
            for wanted in list {
                let by_id = (!wanted.topic_id.is_nil()).then_some(wanted.topic_id);
                let name = wanted.name.as_ref().map(|n| n.0.to_string());
                let registry = cluster.registry();
                let found = match (&name, by_id) {
                    (Some(n), _) => registry.topics.get(n).cloned(),
                    (None, Some(id)) => registry.by_id.get(&TopicId(*id.as_bytes())).cloned(),
                    (None, None) => None,
                };
                if let Some(topic) = found {
                    topics.push(topic_entry(&topic, v, with_topic_ops));
                    continue;
                }
                let Some(name) = name else {
                    topics.push(error_entry(None, by_id, ErrorCode::UnknownTopicId, v));
                    continue;
                };
                if validate_topic_name(&name).is_err() {
                    topics.push(error_entry(Some(&name), None, ErrorCode::InvalidTopicException, v));
                    continue;
                }
                if !allow_auto_create {
                    topics.push(error_entry(Some(&name), None, ErrorCode::UnknownTopicOrPartition, v));
                    continue;
                }
                topics.push(auto_create(cluster, &name, v, with_topic_ops).await);
            }
        }
    }
    let live = cluster.live_brokers(&conn.listener);
    let controller = cluster.controller_id(&live);
    let brokers = live
        .iter()
        .map(|b| {
            MetadataResponseBroker::default()
                .with_node_id(BrokerId(b.id))
                .with_host(str_bytes(&b.host))
                .with_port(i32::from(b.port))
                .with_rack(b.rack.as_deref().map(str_bytes))
        })
        .collect();
    let body = MetadataResponse::default()
        .with_brokers(brokers)
        .with_cluster_id(Some(str_bytes(&cluster.cluster_id())))
        .with_controller_id(BrokerId(controller))
        .with_topics(topics)
        .with_cluster_authorized_operations(
            if (8..=10).contains(&v) && request.include_cluster_authorized_operations {
                cluster_operations()
            } else {
                NOT_REQUESTED
            },
        );
    respond(ApiKey::Metadata, header, &body)
}

async fn auto_create(cluster: &Arc<Cluster>, name: &str, v: i16, with_ops: bool) -> MetadataResponseTopic {
    let new = NewTopic {
        name: name.to_string(),
        num_partitions: -1,
        replication_factor: -1,
        assignments: Vec::new(),
        configs: Default::default(),
    };
    let c = cluster.clone();
    match blocking(move || c.create_topic(&new)).await {
        Some(Ok(_)) => error_entry(Some(name), None, ErrorCode::LeaderNotAvailable, v),
        Some(Err(e)) if e.code == ErrorCode::TopicAlreadyExists => match cluster.registry().topics.get(name) {
            Some(t) => topic_entry(t, v, with_ops),
            None => error_entry(Some(name), None, ErrorCode::LeaderNotAvailable, v),
        },
        Some(Err(e)) => {
            tracing::warn!(topic = name, error = %e.message, "auto-creating a topic failed");
            error_entry(Some(name), None, e.code, v)
        }
        None => error_entry(Some(name), None, ErrorCode::UnknownServerError, v),
    }
}
