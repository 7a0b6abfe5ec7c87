//! Topics: list, describe, create (with configs) and delete.

use std::time::Duration;

use axum::Router;
use axum::extract::{OriginalUri, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Value, json};
use tributary_client::{Client, NewTopic, TopicCreated, TopicMetadata};

use super::{AppState, Links, answer, json_body, list};
use crate::error::RestError;
use crate::kafka::Kafka;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/clusters/{cluster_id}/topics", get(topics).post(create_topic))
        .route("/clusters/{cluster_id}/topics/{topic}", get(topic).delete(delete_topic))
}

pub(super) fn topic_body(links: &Links, cluster_id: &str, name: &str, topic: &TopicMetadata) -> Value {
    let replication_factor = topic.partitions.values().next().map_or(0, |p| p.replicas.len());
    let path = format!("topics/{name}");
    json!({
        "kind": "KafkaTopic",
        "metadata": {
            "self": format!("{}/{path}", links.cluster(cluster_id)),
            "resource_name": format!("crn:///kafka={cluster_id}/topic={name}"),
        },
        "cluster_id": cluster_id,
        "topic_name": name,
        "is_internal": topic.is_internal,
        "replication_factor": replication_factor,
        "partitions_count": topic.partitions.len(),
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

#[derive(Debug, Deserialize)]
struct ConfigEntry {
    name: String,
    value: Option<String>,
}

#[derive(Debug, Deserialize)]
struct CreateTopic {
    topic_name: String,
    #[serde(default)]
    partitions_count: Option<i32>,
    #[serde(default)]
    replication_factor: Option<i16>,
    #[serde(default)]
    configs: Vec<ConfigEntry>,
    #[serde(default)]
    validate_only: bool,
}

async fn create_topic(
    State(kafka): State<AppState>,
    Path(cluster_id): Path<String>,
    headers: HeaderMap,
    uri: OriginalUri,
    body: Bytes,
) -> Response {
    let links = Links::of(&headers, &uri);
    let result = async {
        let request: CreateTopic = json_body(&body)?;
        if request.validate_only {
            return Err(RestError::status(400, "validate_only is not supported yet: leave it out or set it to false"));
        }
        kafka.cluster(&cluster_id, Some(Vec::new())).await?;
        let mut topic = NewTopic::new(&request.topic_name, request.partitions_count.unwrap_or(-1));
        topic.replication_factor = request.replication_factor.unwrap_or(-1);
        topic.configs = request.configs.into_iter().filter_map(|c| Some((c.name, c.value?))).collect();
        let created = kafka.call(async move |c: &mut Client| c.create_topic(&topic).await).await?;
        if created == TopicCreated::AlreadyExisted {
            return Err(RestError {
                status: 400,
                error_code: 40002,
                message: format!("Topic '{}' already exists.", request.topic_name),
            });
        }
        // The new topic shows in Metadata once its partitions exist; wait a little for that.
        for _ in 0..50 {
            match describe(&kafka, &links, &cluster_id, &request.topic_name).await {
                Err(e) if e.error_code == 40403 => tokio::time::sleep(Duration::from_millis(100)).await,
                other => return other,
            }
        }
        describe(&kafka, &links, &cluster_id, &request.topic_name).await
    }
    .await;
    match result {
        Ok(v) => (StatusCode::CREATED, axum::Json(v)).into_response(),
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

/// Fuzzing entry (see `crate::fuzzing`): `bytes` as a create-topic body.
pub(super) fn fuzz_body(bytes: &Bytes) {
    if let Ok(request) = json_body::<CreateTopic>(bytes) {
        let mut topic = NewTopic::new(&request.topic_name, request.partitions_count.unwrap_or(-1));
        topic.configs = request.configs.into_iter().filter_map(|c| Some((c.name, c.value?))).collect();
    }
}
