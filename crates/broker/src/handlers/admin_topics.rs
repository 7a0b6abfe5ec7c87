//! Topic administration: CreateTopics (19), DeleteTopics (20),
//! CreatePartitions (37) and DeleteRecords (21).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::create_topics_response::{CreatableTopicConfigs, CreatableTopicResult};
use kafka_protocol::messages::delete_records_response::{DeleteRecordsPartitionResult, DeleteRecordsTopicResult};
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{
    ApiKey, CreatePartitionsRequest, CreatePartitionsResponse, CreateTopicsRequest, CreateTopicsResponse,
    DeleteRecordsRequest, DeleteRecordsResponse, DeleteTopicsRequest, DeleteTopicsResponse, TopicName,
};
use tributary_protocol::{ErrorCode, RequestHeader};
use tributary_types::{TopicId, now_ms};
use uuid::Uuid;

use super::{Reply, blocking, respond, str_bytes};
use crate::cluster::{Cluster, NewTopic};
use crate::error::ApiError;

fn duplicates<'a>(names: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for n in names {
        *counts.entry(n).or_default() += 1;
    }
    let mut dups: Vec<String> = counts.into_iter().filter(|(_, c)| *c > 1).map(|(n, _)| n.to_string()).collect();
    dups.sort();
    dups
}

pub(super) async fn create_topics(
    cluster: &Arc<Cluster>,
    header: &RequestHeader,
    request: CreateTopicsRequest,
) -> Reply {
    let v = header.api_version;
    let dups = duplicates(request.topics.iter().map(|t| t.name.0.as_str()));
    let validate_only = request.validate_only;
    let topics: Vec<NewTopic> = request
        .topics
        .iter()
        .map(|t| NewTopic {
            name: t.name.0.to_string(),
            num_partitions: t.num_partitions,
            replication_factor: t.replication_factor,
            assignments: t
                .assignments
                .iter()
                .map(|a| (a.partition_index, a.broker_ids.iter().map(|b| b.0).collect()))
                .collect(),
            configs: t
                .configs
                .iter()
                .map(|c| (c.name.to_string(), c.value.as_deref().unwrap_or_default().to_string()))
                .collect(),
        })
        .collect();
    let null_config = request
        .topics
        .iter()
        .map(|t| t.configs.iter().find(|c| c.value.is_none()).map(|c| c.name.to_string()))
        .collect::<Vec<_>>();
    let c = cluster.clone();
    let outcomes = blocking(move || {
        topics
            .iter()
            .zip(null_config)
            .map(|(t, null_config)| {
                if dups.contains(&t.name) {
                    return Err(ApiError::new(
                        ErrorCode::InvalidRequest,
                        format!("Create topics request contains multiple entries for topic {}", t.name),
                    ));
                }
                if let Some(name) = null_config {
                    return Err(ApiError::new(
                        ErrorCode::InvalidConfig,
                        format!("Null value not supported for topic configs: {name}"),
                    ));
                }
                if validate_only {
                    c.validate_new_topic(t).map(|(p, rf)| (t.name.clone(), None, p, rf, t.configs.clone()))
                } else {
                    c.create_topic(t).map(|s| {
                        let rf = s.image.partitions.first().map_or(1, |p| p.replicas.len() as i16);
                        (t.name.clone(), Some(s.topic_id), s.partition_count() as i32, rf, s.overrides.clone())
                    })
                }
            })
            .collect::<Vec<_>>()
    })
    .await;
    let Some(outcomes) = outcomes else {
        return Reply::Close("create topics task failed".to_string());
    };
    let layers = cluster.layers();
    let results = request
        .topics
        .iter()
        .zip(outcomes)
        .map(|(requested, outcome)| {
            let result = CreatableTopicResult::default().with_name(requested.name.clone());
            match outcome {
                Ok((_, topic_id, partitions, rf, overrides)) => {
                    let configs = describe_new_topic_configs(&layers, &overrides);
                    let mut r = result.with_error_code(0).with_num_partitions(partitions).with_replication_factor(rf);
                    if v >= 5 {
                        r = r.with_configs(Some(configs));
                    }
                    if v >= 7 {
                        r = r.with_topic_id(topic_id.map_or(Uuid::nil(), |id| Uuid::from_bytes(id.0)));
                    }
                    r
                }
                Err(e) => result
                    .with_error_code(e.code())
                    .with_error_message(Some(str_bytes(&e.message)))
                    .with_num_partitions(-1)
                    .with_replication_factor(-1),
            }
        })
        .collect();
    respond(ApiKey::CreateTopics, header, &CreateTopicsResponse::default().with_topics(results))
}

fn describe_new_topic_configs(
    layers: &tributary_config::BrokerLayers,
    overrides: &BTreeMap<String, String>,
) -> Vec<CreatableTopicConfigs> {
    layers
        .describe_topic(overrides)
        .into_iter()
        .map(|r| {
            CreatableTopicConfigs::default()
                .with_name(str_bytes(r.def.name))
                .with_value(r.value.as_deref().map(str_bytes))
                .with_read_only(false)
                .with_config_source(r.source.code())
                .with_is_sensitive(r.def.sensitive)
        })
        .collect()
}

pub(super) async fn delete_topics(
    cluster: &Arc<Cluster>,
    header: &RequestHeader,
    request: DeleteTopicsRequest,
) -> Reply {
    let v = header.api_version;
    // (name, id) pairs as requested.
    let wanted: Vec<(Option<String>, Option<Uuid>)> = if v >= 6 {
        request
            .topics
            .iter()
            .map(|t| (t.name.as_ref().map(|n| n.0.to_string()), (!t.topic_id.is_nil()).then_some(t.topic_id)))
            .collect()
    } else {
        request.topic_names.iter().map(|n| (Some(n.0.to_string()), None)).collect()
    };
    let c = cluster.clone();
    let outcomes = blocking(move || {
        let registry = c.registry();
        wanted
            .into_iter()
            .map(|(name, id)| {
                let outcome = match (&name, id) {
                    (Some(_), Some(_)) => {
                        Err(ApiError::new(ErrorCode::InvalidRequest, "give a topic name or a topic id, not both"))
                    }
                    (None, None) => {
                        Err(ApiError::new(ErrorCode::InvalidRequest, "neither a topic name nor a topic id was given"))
                    }
                    (Some(n), None) => c.delete_topic(n),
                    (None, Some(id)) => match registry.by_id.get(&TopicId(*id.as_bytes())) {
                        Some(t) => c.delete_topic(&t.name),
                        None => {
                            Err(ApiError::new(ErrorCode::UnknownTopicId, "This server does not host this topic ID."))
                        }
                    },
                };
                let name = name
                    .or_else(|| id.and_then(|id| registry.by_id.get(&TopicId(*id.as_bytes())).map(|t| t.name.clone())));
                (name, id, outcome)
            })
            .collect::<Vec<_>>()
    })
    .await;
    let Some(outcomes) = outcomes else {
        return Reply::Close("delete topics task failed".to_string());
    };
    let responses = outcomes
        .into_iter()
        .map(|(name, id, outcome)| {
            let r = DeletableTopicResult::default().with_name(name.map(|n| TopicName(str_bytes(&n))));
            let r = if v >= 6 { r.with_topic_id(id.unwrap_or_else(Uuid::nil)) } else { r };
            match outcome {
                Ok(topic_id) if v >= 6 => r.with_error_code(0).with_topic_id(Uuid::from_bytes(topic_id.0)),
                Ok(_) => r.with_error_code(0),
                Err(e) => r.with_error_code(e.code()).with_error_message(Some(str_bytes(&e.message))),
            }
        })
        .collect();
    respond(ApiKey::DeleteTopics, header, &DeleteTopicsResponse::default().with_responses(responses))
}

pub(super) async fn create_partitions(
    cluster: &Arc<Cluster>,
    header: &RequestHeader,
    request: CreatePartitionsRequest,
) -> Reply {
    let dups = duplicates(request.topics.iter().map(|t| t.name.0.as_str()));
    let validate_only = request.validate_only;
    let wanted: Vec<(String, i32, Vec<Vec<i32>>)> = request
        .topics
        .iter()
        .map(|t| {
            let assignments =
                t.assignments.as_ref().map(|a| a.iter().map(|a| a.broker_ids.iter().map(|b| b.0).collect()).collect());
            (t.name.0.to_string(), t.count, assignments.unwrap_or_default())
        })
        .collect();
    let c = cluster.clone();
    let outcomes = blocking(move || {
        wanted
            .iter()
            .map(|(name, count, assignments)| {
                if dups.contains(name) {
                    return Err(ApiError::new(
                        ErrorCode::InvalidRequest,
                        format!("Duplicate topic in request: {name}"),
                    ));
                }
                c.create_partitions(name, *count, assignments, validate_only)
            })
            .collect::<Vec<_>>()
    })
    .await;
    let Some(outcomes) = outcomes else {
        return Reply::Close("create partitions task failed".to_string());
    };
    let results = request
        .topics
        .iter()
        .zip(outcomes)
        .map(|(t, outcome)| {
            let r = CreatePartitionsTopicResult::default().with_name(t.name.clone());
            match outcome {
                Ok(()) => r.with_error_code(0),
                Err(e) => r.with_error_code(e.code()).with_error_message(Some(str_bytes(&e.message))),
            }
        })
        .collect();
    respond(ApiKey::CreatePartitions, header, &CreatePartitionsResponse::default().with_results(results))
}

pub(super) fn delete_records(cluster: &Arc<Cluster>, header: &RequestHeader, request: DeleteRecordsRequest) -> Reply {
    let registry = cluster.registry();
    let now = now_ms();
    let topics = request
        .topics
        .into_iter()
        .map(|t| {
            let topic = registry.topics.get(t.name.0.as_str());
            let partitions = t
                .partitions
                .into_iter()
                .map(|p| {
                    let result = DeleteRecordsPartitionResult::default().with_partition_index(p.partition_index);
                    let partition = match topic.map(|topic| topic.led(p.partition_index)) {
                        Some(Ok(partition)) => partition,
                        Some(Err(code)) => return result.with_error_code(code.code()).with_low_watermark(-1),
                        None => {
                            return result
                                .with_error_code(ErrorCode::UnknownTopicOrPartition.code())
                                .with_low_watermark(-1);
                        }
                    };
                    let hw = partition.high_watermark();
                    let deleted = partition.log().delete_records(p.offset, hw, now);
                    match deleted {
                        Ok((low, retired)) => {
                            // Unlinked off the network runtime: freeing a segment's blocks can wait on the disk.
                            match tokio::runtime::Handle::try_current() {
                                Ok(runtime) => drop(runtime.spawn_blocking(move || retired.remove())),
                                Err(_) => retired.remove(),
                            }
                            result.with_error_code(0).with_low_watermark(low)
                        }
                        Err(e) => result.with_error_code(ApiError::from(e).code()).with_low_watermark(-1),
                    }
                })
                .collect();
            DeleteRecordsTopicResult::default().with_name(t.name).with_partitions(partitions)
        })
        .collect();
    respond(ApiKey::DeleteRecords, header, &DeleteRecordsResponse::default().with_topics(topics))
}
