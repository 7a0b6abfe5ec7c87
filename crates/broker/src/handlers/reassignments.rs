//! AlterPartitionReassignments (45, v0-v1) and ListPartitionReassignments
//! (46, v0) (KIP-455). v1 (KIP-860) carries AllowReplicationFactorChange:
//! when false, a target that changes a partition's replication factor is
//! refused with INVALID_REPLICATION_FACTOR, and the response echoes the
//! flag. See `reassign.rs` for what a reassignment does.

use std::sync::Arc;

use kafka_protocol::messages::alter_partition_reassignments_response::{
    ReassignablePartitionResponse, ReassignableTopicResponse,
};
use kafka_protocol::messages::list_partition_reassignments_response::{
    OngoingPartitionReassignment, OngoingTopicReassignment,
};
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse, ApiKey, BrokerId,
    ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse, TopicName,
};
use tributary_protocol::RequestHeader;

use super::{Reply, blocking, respond, str_bytes};
use crate::cluster::Cluster;

/// A topic's partitions and the replicas each moves to (`None`: cancel).
type Wanted = (String, Vec<(i32, Option<Vec<i32>>)>);

/// Starts, replaces or cancels each partition's reassignment, one metadata
/// change each; every partition gets its own error code.
pub(super) async fn alter(
    cluster: &Arc<Cluster>,
    header: &RequestHeader,
    request: AlterPartitionReassignmentsRequest,
) -> Reply {
    let wanted: Vec<Wanted> = request
        .topics
        .iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| (p.partition_index, p.replicas.as_ref().map(|r| r.iter().map(|b| b.0).collect())))
                .collect();
            (t.name.0.to_string(), partitions)
        })
        .collect();
    // v0 has no such field and always allows it (the decoder answers true).
    let allow_rf_change = request.allow_replication_factor_change;
    let c = cluster.clone();
    let outcomes = blocking(move || {
        wanted
            .into_iter()
            .map(|(topic, partitions)| {
                let results: Vec<_> = partitions
                    .into_iter()
                    .map(|(index, target)| (index, c.reassign_partition(&topic, index, target, allow_rf_change)))
                    .collect();
                (topic, results)
            })
            .collect::<Vec<_>>()
    })
    .await;
    let Some(outcomes) = outcomes else {
        return Reply::Close("alter partition reassignments task failed".to_string());
    };
    let responses = outcomes
        .into_iter()
        .map(|(topic, results)| {
            let partitions = results
                .into_iter()
                .map(|(index, result)| {
                    let r = ReassignablePartitionResponse::default().with_partition_index(index);
                    match result {
                        Ok(()) => r.with_error_code(0).with_error_message(None),
                        Err(e) => r.with_error_code(e.code()).with_error_message(Some(str_bytes(&e.message))),
                    }
                })
                .collect();
            ReassignableTopicResponse::default().with_name(TopicName(str_bytes(&topic))).with_partitions(partitions)
        })
        .collect();
    let body = AlterPartitionReassignmentsResponse::default()
        .with_allow_replication_factor_change(allow_rf_change)
        .with_error_code(0)
        .with_responses(responses);
    respond(ApiKey::AlterPartitionReassignments, header, &body)
}

/// The reassignments in progress, of every partition or of those named.
pub(super) fn list(
    cluster: &Arc<Cluster>,
    header: &RequestHeader,
    request: ListPartitionReassignmentsRequest,
) -> Reply {
    let wanted: Option<Vec<(String, Vec<i32>)>> =
        request.topics.map(|topics| topics.into_iter().map(|t| (t.name.0.to_string(), t.partition_indexes)).collect());
    let ongoing = cluster.reassignments(wanted.as_deref());
    let mut topics: Vec<OngoingTopicReassignment> = Vec::new();
    let ids = |v: &[i32]| v.iter().copied().map(BrokerId).collect::<Vec<_>>();
    for r in ongoing {
        let partition = OngoingPartitionReassignment::default()
            .with_partition_index(r.partition)
            .with_replicas(ids(&r.replicas))
            .with_adding_replicas(ids(&r.adding))
            .with_removing_replicas(ids(&r.removing));
        match topics.last_mut() {
            Some(t) if t.name.0.as_str() == r.topic => t.partitions.push(partition),
            _ => topics.push(
                OngoingTopicReassignment::default()
                    .with_name(TopicName(str_bytes(&r.topic)))
                    .with_partitions(vec![partition]),
            ),
        }
    }
    let body = ListPartitionReassignmentsResponse::default().with_error_code(0).with_topics(topics);
    respond(ApiKey::ListPartitionReassignments, header, &body)
}
