//! The v3 API: routes, resource bodies and the shared Kafka client. Every
//! route is served under `/v3` (REST Proxy) and `/kafka/v3` (Confluent Server
//! and Confluent Cloud); `self` and `related` links use the prefix and host of
//! the request they answer.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{OriginalUri, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::{Mutex, MutexGuard};
use tributary_client::{Client, ClientConfig, ClientError, ClusterMetadata, NewTopic, TopicCreated, TopicMetadata};

use crate::error::RestError;

/// The cluster behind the proxy, through one shared client.
#[derive(Debug)]
pub struct Kafka {
    config: ClientConfig,
    client: Mutex<Option<Client>>,
}

impl Kafka {
    /// Connects on first use.
    pub fn new(config: ClientConfig) -> Arc<Kafka> {
        Arc::new(Kafka { config, client: Mutex::new(None) })
    }

    async fn connected(&self) -> Result<MutexGuard<'_, Option<Client>>, RestError> {
        let mut guard = self.client.lock().await;
        if guard.is_none() {
            *guard = Some(Client::connect(self.config.clone()).await?);
        }
        Ok(guard)
    }

    /// Runs one client call; a failure other than a Kafka error code drops the
    /// client, so the next request starts from a fresh connection.
    async fn call<T>(&self, op: impl AsyncFnOnce(&mut Client) -> Result<T, ClientError>) -> Result<T, RestError> {
        let mut guard = self.connected().await?;
        let Some(client) = guard.as_mut() else {
            return Err(RestError::status(500, "no connection to the Kafka cluster"));
        };
        let result = op(client).await;
        if result.as_ref().is_err_and(|e| e.kafka().is_none()) {
            *guard = None;
        }
        result.map_err(RestError::from)
    }

    async fn metadata(&self, topics: Option<Vec<String>>) -> Result<ClusterMetadata, RestError> {
        self.call(async move |c: &mut Client| c.metadata(topics.as_deref()).await).await
    }

    /// The cluster's metadata (for `topics`), or 404 when `cluster_id` is not this cluster's.
    async fn cluster(&self, cluster_id: &str, topics: Option<Vec<String>>) -> Result<ClusterMetadata, RestError> {
        let metadata = self.metadata(topics).await?;
        if metadata.cluster_id.as_deref() != Some(cluster_id) {
            return Err(RestError::cluster_not_found(cluster_id));
        }
        Ok(metadata)
    }
}

type AppState = Arc<Kafka>;

/// Where links point: scheme, the request's Host, and the prefix it used.
struct Links {
    base: String,
}

impl Links {
    fn of(headers: &HeaderMap, uri: &OriginalUri) -> Links {
        let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost");
        let prefix = if uri.path().starts_with("/kafka/v3") { "/kafka/v3" } else { "/v3" };
        Links { base: format!("http://{host}{prefix}") }
    }

    fn cluster(&self, cluster_id: &str) -> String {
        format!("{}/clusters/{cluster_id}", self.base)
    }

    fn related(&self, cluster_id: &str, path: &str) -> Value {
        json!({"related": format!("{}/{path}", self.cluster(cluster_id))})
    }
}

fn cluster_body(links: &Links, cluster_id: &str, controller: i32) -> Value {
    let controller =
        if controller >= 0 { links.related(cluster_id, &format!("brokers/{controller}")) } else { Value::Null };
    json!({
        "kind": "KafkaCluster",
        "metadata": {"self": links.cluster(cluster_id), "resource_name": format!("crn:///kafka={cluster_id}")},
        "cluster_id": cluster_id,
        "controller": controller,
        "acls": links.related(cluster_id, "acls"),
        "brokers": links.related(cluster_id, "brokers"),
        "broker_configs": links.related(cluster_id, "broker-configs"),
        "consumer_groups": links.related(cluster_id, "consumer-groups"),
        "topics": links.related(cluster_id, "topics"),
        "partition_reassignments": links.related(cluster_id, "topics/-/partitions/-/reassignment"),
    })
}

fn topic_body(links: &Links, cluster_id: &str, name: &str, topic: &TopicMetadata) -> Value {
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

fn list(kind: &str, self_url: String, data: Vec<Value>) -> Value {
    json!({"kind": kind, "metadata": {"self": self_url, "next": null}, "data": data})
}

fn answer(result: Result<Value, RestError>) -> Response {
    match result {
        Ok(v) => axum::Json(v).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn clusters(State(kafka): State<AppState>, headers: HeaderMap, uri: OriginalUri) -> Response {
    let links = Links::of(&headers, &uri);
    answer(kafka.metadata(Some(Vec::new())).await.map(|m| {
        let id = m.cluster_id.unwrap_or_default();
        list("KafkaClusterList", format!("{}/clusters", links.base), vec![cluster_body(&links, &id, m.controller_id)])
    }))
}

async fn cluster(
    State(kafka): State<AppState>,
    Path(cluster_id): Path<String>,
    headers: HeaderMap,
    uri: OriginalUri,
) -> Response {
    let links = Links::of(&headers, &uri);
    answer(
        kafka.cluster(&cluster_id, Some(Vec::new())).await.map(|m| cluster_body(&links, &cluster_id, m.controller_id)),
    )
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

async fn describe(kafka: &Kafka, links: &Links, cluster_id: &str, name: &str) -> Result<Value, RestError> {
    let m = kafka.cluster(cluster_id, Some(vec![name.to_string()])).await?;
    match m.topics.get(name) {
        Some(t) if t.error_code == 0 => Ok(topic_body(links, cluster_id, name, t)),
        Some(t) if t.error_code != 3 => {
            Err(RestError::from(ClientError::Kafka(tributary_client::KafkaError::new(t.error_code, "describe topic"))))
        }
        _ => Err(RestError::topic_not_found(name)),
    }
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

fn json_body<T: serde::de::DeserializeOwned>(body: &Bytes) -> Result<T, RestError> {
    serde_json::from_slice(body).map_err(|e| RestError::status(400, format!("Invalid request body: {e}")))
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
        kafka.cluster(&cluster_id, Some(Vec::new())).await?;
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

async fn not_found(uri: OriginalUri) -> Response {
    RestError::status(404, format!("HTTP 404 Not Found: {}", uri.path())).into_response()
}

fn v3() -> Router<AppState> {
    Router::new()
        .route("/clusters", get(clusters))
        .route("/clusters/{cluster_id}", get(cluster))
        .route("/clusters/{cluster_id}/topics", get(topics).post(create_topic))
        .route("/clusters/{cluster_id}/topics/{topic}", get(topic).delete(delete_topic))
}

/// The HTTP API.
pub fn router(kafka: Arc<Kafka>) -> Router {
    Router::new().nest("/v3", v3()).nest("/kafka/v3", v3()).fallback(not_found).with_state(kafka)
}
