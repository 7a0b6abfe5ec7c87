//! Topics: list, describe, create and delete. Creating takes kafka-rest's
//! whole `CreateTopicRequest`: configs, explicit `replicas_assignments`
//! (which then say the partition count and replication factor), and
//! `validate_only`, which only checks the request (200 instead of 201).

use std::collections::BTreeMap;
use std::time::Duration;

use axum::Router;
use axum::extract::{OriginalUri, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use kafka_protocol::messages::create_topics_request::{
    CreatableReplicaAssignment, CreatableTopic, CreatableTopicConfig,
};
use kafka_protocol::messages::{ApiKey, BrokerId, CreateTopicsRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use serde::Deserialize;
use serde_json::{Value, json};
use tributary_client::{Client, ClientError, KafkaError, TopicMetadata};

use super::{AppState, Links, answer, list};
use crate::body::{self, payload_error};
use crate::error::RestError;
use crate::kafka::Kafka;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/clusters/{cluster_id}/topics", get(topics).post(create_topic))
        .route("/clusters/{cluster_id}/topics/{topic}", get(topic).delete(delete_topic))
}

pub(super) fn topic_body(links: &Links, cluster_id: &str, name: &str, topic: &TopicMetadata) -> Value {
    let replication_factor = topic.partitions.values().next().map_or(0, |p| p.replicas.len());
    topic_counts_body(links, cluster_id, name, topic.is_internal, topic.partitions.len(), replication_factor)
}

fn topic_counts_body(
    links: &Links,
    cluster_id: &str,
    name: &str,
    is_internal: bool,
    partitions_count: usize,
    replication_factor: usize,
) -> Value {
    let path = format!("topics/{name}");
    json!({
        "kind": "KafkaTopic",
        "metadata": {
            "self": format!("{}/{path}", links.cluster(cluster_id)),
            "resource_name": format!("crn:///kafka={cluster_id}/topic={name}"),
        },
        "cluster_id": cluster_id,
        "topic_name": name,
        "is_internal": is_internal,
        "replication_factor": replication_factor,
        "partitions_count": partitions_count,
        "partitions": links.related(cluster_id, &format!("{path}/partitions")),
        "configs": links.related(cluster_id, &format!("{path}/configs")),
        "partition_reassignments": links.related(cluster_id, &format!("{path}/partitions/-/reassignment")),
        "authorized_operations": [],
    })
}

async fn topics(
    State(kafka): State<AppState>,
    Path(cluster_id): Path<String>,
    headers: HeaderMap,
    uri: OriginalUri,
) -> Response {
    let links = Links::of(&headers, &uri);
    answer(kafka.cluster(&cluster_id, None).await.map(|m| {
        let data = m
            .topics
            .iter()
            .filter(|(_, t)| t.error_code == 0)
            .map(|(name, t)| topic_body(&links, &cluster_id, name, t))
            .collect();
        list("KafkaTopicList", format!("{}/topics", links.cluster(&cluster_id)), data)
    }))
}

pub(super) async fn describe(kafka: &Kafka, links: &Links, cluster_id: &str, name: &str) -> Result<Value, RestError> {
    let t = kafka.topic(cluster_id, name).await?;
    Ok(topic_body(links, cluster_id, name, &t))
}

async fn topic(
    State(kafka): State<AppState>,
    Path((cluster_id, name)): Path<(String, String)>,
    headers: HeaderMap,
    uri: OriginalUri,
) -> Response {
    let links = Links::of(&headers, &uri);
    answer(describe(&kafka, &links, &cluster_id, &name).await)
}

/// One config of a new topic; a `null` value leaves it at its default.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigEntry {
    #[serde(deserialize_with = "body::text")]
    name: String,
    #[serde(default, deserialize_with = "body::opt_text")]
    value: Option<String>,
}

/// kafka-rest's `CreateTopicRequest`: everything but `topic_name` may be left out or `null`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateTopic {
    #[serde(deserialize_with = "body::text")]
    topic_name: String,
    #[serde(default, deserialize_with = "body::opt_int")]
    partitions_count: Option<i32>,
    #[serde(default, deserialize_with = "body::opt_int")]
    replication_factor: Option<i16>,
    /// Replicas by partition (`{"0": [1, 2]}`); when given, they say the
    /// partition count and replication factor.
    #[serde(default)]
    replicas_assignments: Option<BTreeMap<String, Vec<i32>>>,
    #[serde(default, deserialize_with = "body::list")]
    configs: Vec<ConfigEntry>,
    #[serde(default, deserialize_with = "body::opt_bool")]
    validate_only: Option<bool>,
}

/// Kafka's rule for topic names (`Topic.validate`): 1 to 249 of `[a-zA-Z0-9._-]`, not `.` or `..`.
fn valid_topic_name(name: &str) -> bool {
    (1..=249).contains(&name.len())
        && name != "."
        && name != ".."
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Replicas by partition index.
type Assignments = Vec<(i32, Vec<i32>)>;

/// The replicas of each partition, by partition index.
fn assignments(request: &CreateTopic) -> Result<Assignments, RestError> {
    let Some(map) = &request.replicas_assignments else { return Ok(Vec::new()) };
    map.iter()
        .map(|(partition, replicas)| match partition.trim().parse::<i32>() {
            Ok(p) => Ok((p, replicas.clone())),
            Err(_) => {
                Err(RestError::status(400, format!("replicas_assignments: partition {partition:?} is not a number")))
            }
        })
        .collect()
}

/// Reads a create-topic body and checks what can be checked without the
/// cluster: the name, and the partitions of explicit assignments.
fn read_create(bytes: &Bytes) -> Result<(CreateTopic, Assignments), RestError> {
    let request: CreateTopic =
        body::optional(bytes)?.ok_or_else(|| payload_error("Request body is empty. Data is required."))?;
    if !valid_topic_name(&request.topic_name) {
        return Err(payload_error("Invalid topic name."));
    }
    let assignments = assignments(&request)?;
    Ok((request, assignments))
}

/// The CreateTopics entry for a request, with explicit replica assignments when given.
fn creatable_topic(request: &CreateTopic, assignments: Assignments) -> CreatableTopic {
    let (partitions, replication_factor) = if assignments.is_empty() {
        (request.partitions_count.unwrap_or(-1), request.replication_factor.unwrap_or(-1))
    } else {
        (-1, -1)
    };
    CreatableTopic::default()
        .with_name(TopicName(StrBytes::from_string(request.topic_name.clone())))
        .with_num_partitions(partitions)
        .with_replication_factor(replication_factor)
        .with_assignments(
            assignments
                .into_iter()
                .map(|(p, replicas)| {
                    CreatableReplicaAssignment::default()
                        .with_partition_index(p)
                        .with_broker_ids(replicas.into_iter().map(BrokerId).collect())
                })
                .collect(),
        )
        .with_configs(
            request
                .configs
                .iter()
                .filter_map(|c| {
                    let value = c.value.as_ref()?;
                    Some(
                        CreatableTopicConfig::default()
                            .with_name(StrBytes::from_string(c.name.clone()))
                            .with_value(Some(StrBytes::from_string(value.clone()))),
                    )
                })
                .collect(),
        )
}

/// Sends CreateTopics (or only validates it), with explicit replica
/// assignments when given, and returns the partition count and replication
/// factor the cluster answered.
async fn create(
    kafka: &Kafka,
    request: &CreateTopic,
    assignments: Vec<(i32, Vec<i32>)>,
    validate_only: bool,
) -> Result<(i32, i16), RestError> {
    let topic = creatable_topic(request, assignments);
    let name = request.topic_name.clone();
    let timeout = kafka.timeout();
    let timeout_ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let topic = topic.clone();
        let answer = kafka
            .call(async move |c: &mut Client| {
                let conn = c.any_connection().await?;
                let v = conn.version(ApiKey::CreateTopics)?;
                let request = CreateTopicsRequest::default()
                    .with_timeout_ms(timeout_ms)
                    .with_validate_only(validate_only)
                    .with_topics(vec![topic]);
                conn.call(&request, v).await
            })
            .await?;
        let Some(result) = answer.topics.into_iter().find(|t| t.name.0.as_str() == name) else {
            return Err(RestError::status(500, format!("CreateTopics answered nothing about topic '{name}'")));
        };
        match result.error_code {
            0 => return Ok((result.num_partitions, result.replication_factor)),
            TOPIC_ALREADY_EXISTS => {
                return Err(RestError {
                    status: 400,
                    error_code: 40002,
                    message: format!("Topic '{name}' already exists."),
                });
            }
            code => {
                let e = KafkaError::new(code, format!("create topic \"{name}\""))
                    .with_message(result.error_message.as_deref());
                if e.is_retriable() && tokio::time::Instant::now() < deadline {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
                return Err(RestError::from(ClientError::Kafka(e)));
            }
        }
    }
}

/// Kafka's TOPIC_ALREADY_EXISTS.
const TOPIC_ALREADY_EXISTS: i16 = 36;

async fn create_topic(
    State(kafka): State<AppState>,
    Path(cluster_id): Path<String>,
    headers: HeaderMap,
    uri: OriginalUri,
    body: Bytes,
) -> Response {
    let links = Links::of(&headers, &uri);
    let result = async {
        let (request, assignments) = read_create(&body)?;
        let validate_only = request.validate_only.unwrap_or(false);
        kafka.cluster(&cluster_id, Some(Vec::new())).await?;
        let (partitions, replication_factor) = create(&kafka, &request, assignments, validate_only).await?;
        let name = &request.topic_name;
        if validate_only {
            let count = usize::try_from(partitions).unwrap_or(0);
            let rf = usize::try_from(replication_factor).unwrap_or(0);
            return Ok((StatusCode::OK, topic_counts_body(&links, &cluster_id, name, false, count, rf)));
        }
        // The new topic shows in Metadata once its partitions exist; wait a little for that.
        for _ in 0..50 {
            match describe(&kafka, &links, &cluster_id, name).await {
                Err(e) if e.error_code == 40403 => tokio::time::sleep(Duration::from_millis(100)).await,
                other => return other.map(|v| (StatusCode::CREATED, v)),
            }
        }
        describe(&kafka, &links, &cluster_id, name).await.map(|v| (StatusCode::CREATED, v))
    }
    .await;
    match result {
        Ok((status, v)) => {
            // Where the topic is, as kafka-rest says in `Location`.
            let location = v["metadata"]["self"].as_str().unwrap_or_default().to_string();
            (status, [(header::LOCATION, location)], axum::Json(v)).into_response()
        }
        Err(e) => e.into_response(),
    }
}

async fn delete_topic(State(kafka): State<AppState>, Path((cluster_id, name)): Path<(String, String)>) -> Response {
    let result = async {
        // Asked first: DeleteTopics would retry an unknown topic until its timeout.
        kafka.topic(&cluster_id, &name).await?;
        let topic = name.clone();
        kafka
            .call(async move |c: &mut Client| c.delete_topic(&topic).await)
            .await
            .map_err(|e| if e.error_code == 40403 { RestError::topic_not_found(&name) } else { e })
    }
    .await;
    match result {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => e.into_response(),
    }
}

/// Fuzzing entry (see `crate::fuzzing`): `bytes` as a create-topic body,
/// read, checked and made into the CreateTopics entry the handler sends.
pub(super) fn fuzz_body(bytes: &Bytes) {
    if let Ok((request, assignments)) = read_create(bytes) {
        let _ = creatable_topic(&request, assignments);
    }
}

#[cfg(test)]
mod tests {
    use super::valid_topic_name;

    #[test]
    fn topic_names_follow_kafkas_rule() {
        assert!(valid_topic_name("orders.v1_EU-2"));
        assert!(valid_topic_name(&"t".repeat(249)));
        for bad in ["", ".", "..", "a b", "a/b", "é"] {
            assert!(!valid_topic_name(bad), "{bad:?}");
        }
        assert!(!valid_topic_name(&"t".repeat(250)));
    }
}
