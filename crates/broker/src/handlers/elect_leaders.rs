//! ElectLeaders (key 43, v0-v2): preferred or unclean leader elections,
//! decided by the active controller (see `crate::elections` and the
//! metadata crate's `elect_leaders`), answered per partition.
//!
//! - v0 has no election type: it is a preferred election;
//! - an election type other than 0 (preferred) or 1 (unclean) fails the
//!   request with INVALID_REQUEST: every named partition gets it, and v1+
//!   the top-level error code too;
//! - null topic partitions mean every partition of every topic, and only
//!   partitions where an election happened or failed are answered.

use std::sync::Arc;

use kafka_protocol::messages::elect_leaders_response::{PartitionResult, ReplicaElectionResult};
use kafka_protocol::messages::{ApiKey, ElectLeadersRequest, ElectLeadersResponse, TopicName};
use tributary_metadata::{ElectionOutcome, ElectionResult, ElectionTarget, ElectionType};
use tributary_protocol::{ErrorCode, RequestHeader};

use super::{Reply, blocking, respond, str_bytes};
use crate::cluster::Cluster;
use crate::error::ApiError;

/// The error code and message a partition's outcome is answered with.
fn outcome_error(outcome: &ElectionOutcome) -> Option<ApiError> {
    let (code, message) = match outcome {
        ElectionOutcome::Elected { .. } => return None,
        ElectionOutcome::NotNeeded => (ErrorCode::ElectionNotNeeded, "Leader election not needed for topic partition."),
        ElectionOutcome::PreferredLeaderNotAvailable => {
            (ErrorCode::PreferredLeaderNotAvailable, "The preferred replica is not alive or not in the ISR.")
        }
        ElectionOutcome::EligibleLeadersNotAvailable => {
            (ErrorCode::EligibleLeadersNotAvailable, "No replica of the partition is alive.")
        }
        ElectionOutcome::UnknownTopicOrPartition => {
            (ErrorCode::UnknownTopicOrPartition, "This server does not host this topic-partition.")
        }
    };
    Some(ApiError::new(code, message))
}

fn partition_result(partition: i32, error: Option<&ApiError>) -> PartitionResult {
    PartitionResult::default()
        .with_partition_id(partition)
        .with_error_code(error.map_or(0, ApiError::code))
        .with_error_message(error.map(|e| str_bytes(&e.message)))
}

/// Results grouped by topic, in the order topics first appear.
fn group(results: Vec<(String, PartitionResult)>) -> Vec<ReplicaElectionResult> {
    let mut out: Vec<ReplicaElectionResult> = Vec::new();
    for (topic, result) in results {
        match out.iter_mut().find(|r| r.topic.0.as_str() == topic) {
            Some(r) => r.partition_result.push(result),
            None => out.push(
                ReplicaElectionResult::default()
                    .with_topic(TopicName(str_bytes(&topic)))
                    .with_partition_result(vec![result]),
            ),
        }
    }
    out
}

pub(super) async fn handle(cluster: &Arc<Cluster>, header: &RequestHeader, request: ElectLeadersRequest) -> Reply {
    let targets: Option<Vec<ElectionTarget>> = request.topic_partitions.as_ref().map(|topics| {
        topics
            .iter()
            .map(|t| ElectionTarget { topic: t.topic.0.to_string(), partitions: t.partitions.clone() })
            .collect()
    });
    let election = match (header.api_version, request.election_type) {
        (0, _) | (_, 0) => Ok(ElectionType::Preferred),
        (_, 1) => Ok(ElectionType::Unclean),
        (_, other) => Err(ApiError::new(ErrorCode::InvalidRequest, format!("Unknown election type {other}"))),
    };
    let outcome = match election {
        Ok(election) => {
            let c = cluster.clone();
            let asked = targets.clone();
            blocking(move || c.elect_leaders(election, asked))
                .await
                .unwrap_or_else(|| Err(ApiError::new(ErrorCode::UnknownServerError, "the election task failed")))
        }
        Err(e) => Err(e),
    };
    let mut response = ElectLeadersResponse::default();
    match outcome {
        Ok(results) => {
            let rows = results
                .into_iter()
                .map(|ElectionResult { topic, partition, outcome }| {
                    (topic, partition_result(partition, outcome_error(&outcome).as_ref()))
                })
                .collect();
            response = response.with_replica_election_results(group(rows));
        }
        Err(e) => {
            // The whole request failed: every named partition carries the error.
            let rows = targets
                .iter()
                .flatten()
                .flat_map(|t| t.partitions.iter().map(|p| (t.topic.clone(), partition_result(*p, Some(&e)))))
                .collect();
            response = response.with_replica_election_results(group(rows));
            if header.api_version >= 1 {
                response = response.with_error_code(e.code());
            }
        }
    }
    respond(ApiKey::ElectLeaders, header, &response)
}
