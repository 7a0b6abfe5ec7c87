//! Configs of topics, of each broker, and the cluster-wide dynamic broker
//! defaults: list, get, set (PUT), reset (DELETE) and batch alter
//! (`configs:alter`), all through DescribeConfigs (with synonyms) and
//! IncrementalAlterConfigs, so whatever the broker refuses is refused here
//! with its reason. As in kafka-rest, a topic or broker config must exist to
//! be set, reset or named in a batch (404 otherwise); a cluster-wide default
//! can be set at any time but reset only while it is set.
//!
//! ```text
//! /topics/{t}/configs[/{name}|:alter]     KafkaTopicConfig     ConfigResource::Topic
//! /topics/-/configs                       every topic's configs
//! /brokers/{id}/configs[/{name}|:alter]   KafkaBrokerConfig    ConfigResource::Broker (asked of that broker)
//! /brokers/-/configs                      every broker's configs
//! /broker-configs[/{name}|:alter]         KafkaClusterConfig   ConfigResource::BrokerDefault
//! ```

use std::collections::HashSet;

use axum::Router;
use axum::extract::{OriginalUri, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Value, json};
use tributary_client::{Client, ConfigChange, ConfigEntry, ConfigResource};

use super::{AppState, Links, answer, list};
use crate::error::RestError;
use crate::kafka::Kafka;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/clusters/{cluster_id}/topics/-/configs", get(all_topic_configs))
        .route("/clusters/{cluster_id}/topics/{topic}/configs", get(topic_configs))
        .route("/clusters/{cluster_id}/topics/{topic}/configs:alter", post(alter_topic_configs))
        .route(
            "/clusters/{cluster_id}/topics/{topic}/configs/{name}",
            get(topic_config).put(set_topic_config).delete(reset_topic_config),
        )
        .route("/clusters/{cluster_id}/brokers/-/configs", get(all_broker_configs))
        .route("/clusters/{cluster_id}/brokers/{broker_id}/configs", get(broker_configs))
        .route("/clusters/{cluster_id}/brokers/{broker_id}/configs:alter", post(alter_broker_configs))
        .route(
            "/clusters/{cluster_id}/brokers/{broker_id}/configs/{name}",
            get(broker_config).put(set_broker_config).delete(reset_broker_config),
        )
        .route("/clusters/{cluster_id}/broker-configs", get(cluster_configs))
        .route("/clusters/{cluster_id}/broker-configs:alter", post(alter_cluster_configs))
        .route(
            "/clusters/{cluster_id}/broker-configs/{name}",
            get(cluster_config).put(set_cluster_config).delete(reset_cluster_config),
        )
}

/// Whose configs a request is about.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Scope {
    Topic(String),
    Broker(i32),
    /// The cluster-wide dynamic broker defaults.
    Cluster,
}

impl Scope {
    fn resource(&self) -> ConfigResource {
        match self {
            Scope::Topic(t) => ConfigResource::Topic(t.clone()),
            Scope::Broker(id) => ConfigResource::Broker(*id),
            Scope::Cluster => ConfigResource::BrokerDefault,
        }
    }

    /// The collection's path under the cluster.
    fn path(&self) -> String {
        match self {
            Scope::Topic(t) => format!("topics/{t}/configs"),
            Scope::Broker(id) => format!("brokers/{id}/configs"),
            Scope::Cluster => "broker-configs".to_string(),
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Scope::Topic(_) => "KafkaTopicConfig",
            Scope::Broker(_) => "KafkaBrokerConfig",
            Scope::Cluster => "KafkaClusterConfig",
        }
    }

    fn resource_name(&self, cluster_id: &str, name: &str) -> String {
        match self {
            Scope::Topic(t) => format!("crn:///kafka={cluster_id}/topic={t}/config={name}"),
            Scope::Broker(id) => format!("crn:///kafka={cluster_id}/broker={id}/config={name}"),
            Scope::Cluster => format!("crn:///kafka={cluster_id}/broker-config={name}"),
        }
    }

    fn not_found(&self, name: &str) -> RestError {
        let owner = match self {
            Scope::Topic(t) => format!("topic {t}"),
            Scope::Broker(id) => format!("broker {id}"),
            Scope::Cluster => "the cluster-wide broker configs".to_string(),
        };
        RestError::status(404, format!("Config {name} cannot be found for {owner}."))
    }
}

/// One config in kafka-rest's shape for its scope.
fn config_body(links: &Links, cluster_id: &str, scope: &Scope, entry: &ConfigEntry) -> Value {
    let synonyms: Vec<Value> =
        entry.synonyms.iter().map(|s| json!({"name": s.name, "value": s.value, "source": s.source.name()})).collect();
    let mut body = json!({
        "kind": scope.kind(),
        "metadata": {
            "self": format!("{}/{}/{}", links.cluster(cluster_id), scope.path(), entry.name),
            "resource_name": scope.resource_name(cluster_id, &entry.name),
        },
        "cluster_id": cluster_id,
        "name": entry.name,
        "value": entry.value,
        "is_default": entry.is_default(),
        "is_read_only": entry.read_only,
        "is_sensitive": entry.sensitive,
        "source": entry.source.name(),
        "synonyms": synonyms,
    });
    if let Some(fields) = body.as_object_mut() {
        match scope {
            Scope::Topic(t) => fields.insert("topic_name".to_string(), json!(t)),
            Scope::Broker(id) => fields.insert("broker_id".to_string(), json!(id)),
            Scope::Cluster => fields.insert("config_type".to_string(), json!("BROKER")),
        };
    }
    body
}

fn list_kind(scope: &Scope) -> String {
    format!("{}List", scope.kind())
}

/// Checks the cluster id and, for a broker, that the broker is in the cluster.
async fn check_scope(kafka: &Kafka, cluster_id: &str, scope: &Scope) -> Result<(), RestError> {
    let topics = match scope {
        Scope::Topic(t) => vec![t.clone()],
        _ => Vec::new(),
    };
    let metadata = kafka.cluster(cluster_id, Some(topics)).await?;
    match scope {
        Scope::Broker(id) if !metadata.brokers.contains_key(id) => Err(broker_not_found(*id)),
        // Asked first: DescribeConfigs would retry an unknown topic until its timeout.
        Scope::Topic(t) => crate::kafka::topic_in(&metadata, t).map(|_| ()),
        _ => Ok(()),
    }
}

pub(super) fn broker_not_found(id: i32) -> RestError {
    RestError::status(404, format!("Broker {id} cannot be found."))
}

/// A broker id from the path: an integer, or a 400.
pub(super) fn broker_id(raw: &str) -> Result<i32, RestError> {
    raw.parse().map_err(|_| RestError::status(400, format!("Broker id '{raw}' is not an integer.")))
}

/// The configs of `scope` (only `names`, when given).
async fn describe(kafka: &Kafka, scope: &Scope, names: Option<Vec<String>>) -> Result<Vec<ConfigEntry>, RestError> {
    let resource = scope.resource();
    let wanted = resource.clone();
    let mut found = kafka
        .call(async move |c: &mut Client| c.describe_configs(std::slice::from_ref(&wanted), names.as_deref()).await)
        .await?;
    match found.remove(&resource) {
        Some(Ok(entries)) => Ok(entries),
        Some(Err(e)) if e.code == 3 => match scope {
            Scope::Topic(t) => Err(RestError::topic_not_found(t)),
            _ => Err(RestError::from(tributary_client::ClientError::Kafka(e))),
        },
        Some(Err(e)) => Err(RestError::from(tributary_client::ClientError::Kafka(e))),
        None => Err(RestError::status(500, format!("the cluster did not describe {resource}"))),
    }
}

async fn list_configs(kafka: &Kafka, links: &Links, cluster_id: &str, scope: Scope) -> Result<Value, RestError> {
    check_scope(kafka, cluster_id, &scope).await?;
    let entries = describe(kafka, &scope, None).await?;
    let data = entries.iter().map(|e| config_body(links, cluster_id, &scope, e)).collect();
    Ok(list(&list_kind(&scope), format!("{}/{}", links.cluster(cluster_id), scope.path()), data))
}

/// One config; 404 when `scope` has no config of that name.
async fn one_config(kafka: &Kafka, cluster_id: &str, scope: &Scope, name: &str) -> Result<ConfigEntry, RestError> {
    check_scope(kafka, cluster_id, scope).await?;
    let entries = describe(kafka, scope, Some(vec![name.to_string()])).await?;
    entries.into_iter().find(|e| e.name == name).ok_or_else(|| scope.not_found(name))
}

async fn get_config(
    kafka: &Kafka,
    links: &Links,
    cluster_id: &str,
    scope: Scope,
    name: &str,
) -> Result<Value, RestError> {
    let entry = one_config(kafka, cluster_id, &scope, name).await?;
    Ok(config_body(links, cluster_id, &scope, &entry))
}

async fn alter(kafka: &Kafka, scope: &Scope, changes: Vec<ConfigChange>, validate_only: bool) -> Result<(), RestError> {
    let resource = scope.resource();
    kafka.call(async move |c: &mut Client| c.alter_configs(&resource, &changes, validate_only).await).await.map_err(
        |e| match scope {
            Scope::Topic(t) if e.error_code == 40403 => RestError::topic_not_found(t),
            _ => e,
        },
    )
}

/// kafka-rest's `Update*ConfigRequest`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateConfig {
    #[serde(default, deserialize_with = "crate::body::opt_text")]
    value: Option<String>,
}

/// The value a PUT body sets.
fn read_value(body: &Bytes) -> Result<String, RestError> {
    let request: Option<UpdateConfig> = crate::body::optional(body)?;
    request.and_then(|r| r.value).ok_or_else(|| RestError::status(400, "value is required: {\"value\": \"...\"}"))
}

/// PUT: sets one config. Topic and broker configs must exist (a 404
/// otherwise); a cluster-wide default does not exist until it is set.
async fn set_config(kafka: &Kafka, cluster_id: &str, scope: Scope, name: &str, body: &Bytes) -> Result<(), RestError> {
    let value = read_value(body)?;
    if scope == Scope::Cluster {
        check_scope(kafka, cluster_id, &scope).await?;
    } else {
        one_config(kafka, cluster_id, &scope, name).await?;
    }
    alter(kafka, &scope, vec![ConfigChange::Set { name: name.to_string(), value }], false).await
}

/// DELETE: removes the override, so the value falls back to the next level.
/// The config must exist (for the cluster-wide defaults: be set), as in kafka-rest.
async fn reset_config(kafka: &Kafka, cluster_id: &str, scope: Scope, name: &str) -> Result<(), RestError> {
    one_config(kafka, cluster_id, &scope, name).await?;
    alter(kafka, &scope, vec![ConfigChange::Delete { name: name.to_string() }], false).await
}

/// One change of kafka-rest's `AlterConfigBatchRequestData`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AlterEntry {
    #[serde(deserialize_with = "crate::body::text")]
    name: String,
    #[serde(default, deserialize_with = "crate::body::opt_text")]
    value: Option<String>,
    #[serde(default, deserialize_with = "crate::body::opt_text")]
    operation: Option<String>,
}

/// kafka-rest's `AlterConfigBatchRequestData`; `validate_only` may be `null`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AlterBatch {
    data: Vec<AlterEntry>,
    #[serde(default, deserialize_with = "crate::body::opt_bool")]
    validate_only: Option<bool>,
}

/// The changes of a `configs:alter` body: `operation` SET (the default) needs a value; DELETE ignores it.
fn batch_changes(batch: AlterBatch) -> Result<(Vec<ConfigChange>, bool), RestError> {
    let mut changes = Vec::with_capacity(batch.data.len());
    for entry in batch.data {
        let op = entry.operation.as_deref().unwrap_or("SET");
        if op.eq_ignore_ascii_case("SET") {
            let value = entry
                .value
                .ok_or_else(|| RestError::status(400, format!("Config {} needs a value to be SET.", entry.name)))?;
            changes.push(ConfigChange::Set { name: entry.name, value });
        } else if op.eq_ignore_ascii_case("DELETE") {
            changes.push(ConfigChange::Delete { name: entry.name });
        } else {
            return Err(RestError::status(
                400,
                format!("Operation {op} of config {} is not one of SET, DELETE.", entry.name),
            ));
        }
    }
    Ok((changes, batch.validate_only.unwrap_or(false)))
}

/// The changes of a `configs:alter` body and whether to only validate them.
fn read_batch(body: &Bytes) -> Result<(Vec<ConfigChange>, bool), RestError> {
    let batch = crate::body::optional(body)?
        .ok_or_else(|| crate::body::payload_error("Null input provided. Data is required."))?;
    batch_changes(batch)
}

async fn alter_batch(kafka: &Kafka, cluster_id: &str, scope: Scope, body: &Bytes) -> Result<(), RestError> {
    let (changes, validate_only) = read_batch(body)?;
    check_scope(kafka, cluster_id, &scope).await?;
    // Topic and broker configs must exist, as in kafka-rest; a cluster-wide
    // default does not exist until it is set, so those are not checked.
    if scope != Scope::Cluster {
        let known: HashSet<String> = describe(kafka, &scope, None).await?.into_iter().map(|e| e.name).collect();
        let names = changes.iter().map(|c| match c {
            ConfigChange::Set { name, .. } | ConfigChange::Delete { name } => name,
        });
        if let Some(missing) = names.into_iter().find(|n| !known.contains(n.as_str())) {
            return Err(scope.not_found(missing));
        }
    }
    alter(kafka, &scope, changes, validate_only).await
}

fn no_content(result: Result<(), RestError>) -> Response {
    match result {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => e.into_response(),
    }
}

// ---- topics

async fn topic_configs(
    State(kafka): State<AppState>,
    Path((cluster_id, topic)): Path<(String, String)>,
    headers: HeaderMap,
    uri: OriginalUri,
) -> Response {
    let links = Links::of(&headers, &uri);
    answer(list_configs(&kafka, &links, &cluster_id, Scope::Topic(topic)).await)
}

async fn all_topic_configs(
    State(kafka): State<AppState>,
    Path(cluster_id): Path<String>,
    headers: HeaderMap,
    uri: OriginalUri,
) -> Response {
    let links = Links::of(&headers, &uri);
    let result = async {
        let metadata = kafka.cluster(&cluster_id, None).await?;
        let resources: Vec<ConfigResource> = metadata
            .topics
            .iter()
            .filter(|(_, t)| t.error_code == 0)
            .map(|(name, _)| ConfigResource::Topic(name.clone()))
            .collect();
        let asked = resources.clone();
        let found = kafka.call(async move |c: &mut Client| c.describe_configs(&asked, None).await).await?;
        let mut data = Vec::new();
        for (resource, result) in found {
            let ConfigResource::Topic(topic) = resource else { continue };
            match result {
                Ok(entries) => {
                    let scope = Scope::Topic(topic);
                    data.extend(entries.iter().map(|e| config_body(&links, &cluster_id, &scope, e)));
                }
                // Deleted since it was listed.
                Err(e) if e.code == 3 => {}
                Err(e) => return Err(RestError::from(tributary_client::ClientError::Kafka(e))),
            }
        }
        Ok(list("KafkaTopicConfigList", format!("{}/topics/-/configs", links.cluster(&cluster_id)), data))
    }
    .await;
    answer(result)
}

async fn topic_config(
    State(kafka): State<AppState>,
    Path((cluster_id, topic, name)): Path<(String, String, String)>,
    headers: HeaderMap,
    uri: OriginalUri,
) -> Response {
    let links = Links::of(&headers, &uri);
    answer(get_config(&kafka, &links, &cluster_id, Scope::Topic(topic), &name).await)
}

async fn set_topic_config(
    State(kafka): State<AppState>,
    Path((cluster_id, topic, name)): Path<(String, String, String)>,
    body: Bytes,
) -> Response {
    no_content(set_config(&kafka, &cluster_id, Scope::Topic(topic), &name, &body).await)
}

async fn reset_topic_config(
    State(kafka): State<AppState>,
    Path((cluster_id, topic, name)): Path<(String, String, String)>,
) -> Response {
    no_content(reset_config(&kafka, &cluster_id, Scope::Topic(topic), &name).await)
}

async fn alter_topic_configs(
    State(kafka): State<AppState>,
    Path((cluster_id, topic)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    no_content(alter_batch(&kafka, &cluster_id, Scope::Topic(topic), &body).await)
}

// ---- brokers

async fn broker_configs(
    State(kafka): State<AppState>,
    Path((cluster_id, broker)): Path<(String, String)>,
    headers: HeaderMap,
    uri: OriginalUri,
) -> Response {
    let links = Links::of(&headers, &uri);
    let result = async { list_configs(&kafka, &links, &cluster_id, Scope::Broker(broker_id(&broker)?)).await };
    answer(result.await)
}

async fn all_broker_configs(
    State(kafka): State<AppState>,
    Path(cluster_id): Path<String>,
    headers: HeaderMap,
    uri: OriginalUri,
) -> Response {
    let links = Links::of(&headers, &uri);
    let result = async {
        let metadata = kafka.cluster(&cluster_id, Some(Vec::new())).await?;
        let mut data = Vec::new();
        for id in metadata.brokers.keys() {
            let scope = Scope::Broker(*id);
            let entries = describe(&kafka, &scope, None).await?;
            data.extend(entries.iter().map(|e| config_body(&links, &cluster_id, &scope, e)));
        }
        Ok(list("KafkaBrokerConfigList", format!("{}/brokers/-/configs", links.cluster(&cluster_id)), data))
    }
    .await;
    answer(result)
}

async fn broker_config(
    State(kafka): State<AppState>,
    Path((cluster_id, broker, name)): Path<(String, String, String)>,
    headers: HeaderMap,
    uri: OriginalUri,
) -> Response {
    let links = Links::of(&headers, &uri);
    let result = async { get_config(&kafka, &links, &cluster_id, Scope::Broker(broker_id(&broker)?), &name).await };
    answer(result.await)
}

async fn set_broker_config(
    State(kafka): State<AppState>,
    Path((cluster_id, broker, name)): Path<(String, String, String)>,
    body: Bytes,
) -> Response {
    let result = async { set_config(&kafka, &cluster_id, Scope::Broker(broker_id(&broker)?), &name, &body).await };
    no_content(result.await)
}

async fn reset_broker_config(
    State(kafka): State<AppState>,
    Path((cluster_id, broker, name)): Path<(String, String, String)>,
) -> Response {
    let result = async { reset_config(&kafka, &cluster_id, Scope::Broker(broker_id(&broker)?), &name).await };
    no_content(result.await)
}

async fn alter_broker_configs(
    State(kafka): State<AppState>,
    Path((cluster_id, broker)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let result = async { alter_batch(&kafka, &cluster_id, Scope::Broker(broker_id(&broker)?), &body).await };
    no_content(result.await)
}

// ---- cluster-wide broker defaults

async fn cluster_configs(
    State(kafka): State<AppState>,
    Path(cluster_id): Path<String>,
    headers: HeaderMap,
    uri: OriginalUri,
) -> Response {
    let links = Links::of(&headers, &uri);
    answer(list_configs(&kafka, &links, &cluster_id, Scope::Cluster).await)
}

async fn cluster_config(
    State(kafka): State<AppState>,
    Path((cluster_id, name)): Path<(String, String)>,
    headers: HeaderMap,
    uri: OriginalUri,
) -> Response {
    let links = Links::of(&headers, &uri);
    answer(get_config(&kafka, &links, &cluster_id, Scope::Cluster, &name).await)
}

async fn set_cluster_config(
    State(kafka): State<AppState>,
    Path((cluster_id, name)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    no_content(set_config(&kafka, &cluster_id, Scope::Cluster, &name, &body).await)
}

async fn reset_cluster_config(
    State(kafka): State<AppState>,
    Path((cluster_id, name)): Path<(String, String)>,
) -> Response {
    no_content(reset_config(&kafka, &cluster_id, Scope::Cluster, &name).await)
}

async fn alter_cluster_configs(State(kafka): State<AppState>, Path(cluster_id): Path<String>, body: Bytes) -> Response {
    no_content(alter_batch(&kafka, &cluster_id, Scope::Cluster, &body).await)
}

/// Fuzzing entry (see `crate::fuzzing`): `bytes` as a config update body and
/// as a `configs:alter` body.
pub(super) fn fuzz_body(bytes: &Bytes) {
    let _ = read_value(bytes);
    let _ = read_batch(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;
    use tributary_client::{ConfigSource, ConfigSynonym};

    fn links() -> Links {
        Links { base: "http://h:8082/v3".to_string() }
    }

    fn entry(source: ConfigSource) -> ConfigEntry {
        ConfigEntry {
            name: "cleanup.policy".to_string(),
            value: Some("compact".to_string()),
            read_only: false,
            sensitive: false,
            source,
            synonyms: vec![
                ConfigSynonym { name: "cleanup.policy".into(), value: Some("compact".into()), source },
                ConfigSynonym {
                    name: "log.cleanup.policy".into(),
                    value: Some("delete".into()),
                    source: ConfigSource::Default,
                },
            ],
        }
    }

    #[test]
    fn topic_config_has_kafka_rest_fields_and_links() {
        let body = config_body(&links(), "c1", &Scope::Topic("t".into()), &entry(ConfigSource::DynamicTopic));
        assert_eq!(body["kind"], "KafkaTopicConfig");
        assert_eq!(body["metadata"]["self"], "http://h:8082/v3/clusters/c1/topics/t/configs/cleanup.policy");
        assert_eq!(body["metadata"]["resource_name"], "crn:///kafka=c1/topic=t/config=cleanup.policy");
        assert_eq!(
            (&body["topic_name"], &body["name"], &body["value"]),
            (&json!("t"), &json!("cleanup.policy"), &json!("compact"))
        );
        assert_eq!(
            (&body["is_default"], &body["is_read_only"], &body["is_sensitive"]),
            (&json!(false), &json!(false), &json!(false))
        );
        assert_eq!(body["source"], "DYNAMIC_TOPIC_CONFIG");
        assert_eq!(
            body["synonyms"][1],
            json!({"name": "log.cleanup.policy", "value": "delete", "source": "DEFAULT_CONFIG"})
        );
    }

    #[test]
    fn default_values_say_so_and_sensitive_values_stay_null() {
        let mut e = entry(ConfigSource::Default);
        e.value = None;
        e.sensitive = true;
        let body = config_body(&links(), "c1", &Scope::Broker(1), &e);
        assert_eq!((&body["kind"], &body["broker_id"]), (&json!("KafkaBrokerConfig"), &json!(1)));
        assert_eq!(body["metadata"]["self"], "http://h:8082/v3/clusters/c1/brokers/1/configs/cleanup.policy");
        assert_eq!(
            (&body["is_default"], &body["is_sensitive"], &body["value"]),
            (&json!(true), &json!(true), &Value::Null)
        );
    }

    #[test]
    fn cluster_configs_are_broker_type() {
        let body = config_body(&links(), "c1", &Scope::Cluster, &entry(ConfigSource::DynamicDefaultBroker));
        assert_eq!((&body["kind"], &body["config_type"]), (&json!("KafkaClusterConfig"), &json!("BROKER")));
        assert_eq!(body["metadata"]["self"], "http://h:8082/v3/clusters/c1/broker-configs/cleanup.policy");
        assert_eq!(body["metadata"]["resource_name"], "crn:///kafka=c1/broker-config=cleanup.policy");
        assert_eq!(list_kind(&Scope::Cluster), "KafkaClusterConfigList");
    }

    #[test]
    fn batch_bodies_become_changes() {
        let batch: AlterBatch = serde_json::from_value(json!({"data": [
            {"name": "cleanup.policy", "operation": "DELETE"},
            {"name": "compression.type", "value": "gzip"},
            {"name": "retention.ms", "value": "1000", "operation": "set"},
        ], "validate_only": true}))
        .expect("body");
        let (changes, validate_only) = batch_changes(batch).expect("valid");
        assert!(validate_only);
        assert_eq!(
            changes,
            vec![
                ConfigChange::Delete { name: "cleanup.policy".into() },
                ConfigChange::Set { name: "compression.type".into(), value: "gzip".into() },
                ConfigChange::Set { name: "retention.ms".into(), value: "1000".into() },
            ]
        );
        let no_value: AlterBatch = serde_json::from_value(json!({"data": [{"name": "a"}]})).expect("body");
        assert_eq!(batch_changes(no_value).map_err(|e| e.status), Err(400));
        let bad_op: AlterBatch =
            serde_json::from_value(json!({"data": [{"name": "a", "value": "1", "operation": "APPEND"}]}))
                .expect("body");
        assert_eq!(batch_changes(bad_op).map_err(|e| e.status), Err(400));
    }

    #[test]
    fn broker_ids_must_be_integers() {
        assert_eq!(broker_id("3"), Ok(3));
        assert_eq!(broker_id("x").map_err(|e| e.status), Err(400));
    }
}
