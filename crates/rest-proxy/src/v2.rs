//! The v2 API (kafka-rest v2): produce with embedded formats and stateful
//! consumer instances. Served at the root (`/topics/...`, `/consumers/...`).
//!
//! Embedded formats come from the request's `Content-Type` when producing
//! (`application/vnd.kafka.{binary,json,avro,jsonschema,protobuf}.v2+json`;
//! plain `application/json` and `application/octet-stream` mean binary, as in
//! kafka-rest) and from the instance's `format` when consuming; answers are
//! `application/vnd.kafka.v2+json` or `application/vnd.kafka.{format}.v2+json`.
//! Errors are `{"error_code", "message"}` with v2's codes: 40401 topic,
//! 40402 partition, 40403 consumer instance not found, 40601 not acceptable,
//! 40902 instance exists, 40903 subscription/assignment conflict, 42201 bad
//! schema, 42202/42203 key/value schema missing, 42205 bad embedded data.

use std::time::Duration;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use regex::Regex;
use serde::Deserialize;
use serde_json::{Value, json};
use tributary_client::RecordSpec;
use tributary_client::admin::{OffsetSpec, TopicPartition};

use crate::consumer::{Format, Instance, Settings};
use crate::error::RestError;
use crate::kafka::Kafka;
use crate::schemas::SchemaRequest;
use crate::v3::AppState;

/// Most records in one v2 produce request.
const MAX_RECORDS: usize = 100_000;
/// `max_bytes` of a records poll when none is given.
const DEFAULT_MAX_BYTES: usize = 64 * 1024 * 1024;

const V2_JSON: &str = "application/vnd.kafka.v2+json";

pub(crate) fn routes() -> Router<AppState> {
    let instance = "/consumers/{group}/instances/{instance}";
    Router::new()
        .route("/topics/{topic}", post(produce_to_topic))
        .route("/topics/{topic}/partitions/{partition}", post(produce_to_partition))
        .route("/consumers/{group}", post(create_instance))
        .route(instance, axum::routing::delete(delete_instance))
        .route(&format!("{instance}/subscription"), post(subscribe).get(subscription).delete(unsubscribe))
        .route(&format!("{instance}/assignments"), post(assign).get(assignments))
        .route(&format!("{instance}/positions"), post(seek))
        .route(&format!("{instance}/positions/beginning"), post(seek_to_beginning))
        .route(&format!("{instance}/positions/end"), post(seek_to_end))
        .route(&format!("{instance}/records"), get(records))
        .route(&format!("{instance}/offsets"), post(commit).get(committed))
}

fn v2_json(status: StatusCode, body: Value) -> Response {
    (status, [(header::CONTENT_TYPE, V2_JSON)], axum::Json(body)).into_response()
}

fn reply(result: Result<Option<Value>, RestError>) -> Response {
    match result {
        Ok(Some(v)) => v2_json(StatusCode::OK, v),
        Ok(None) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => e.into_response(),
    }
}

fn bad(error_code: u32, message: impl Into<String>) -> RestError {
    RestError { status: if error_code >= 42200 { 422 } else { 400 }, error_code, message: message.into() }
}

fn body<T: serde::de::DeserializeOwned>(bytes: &Bytes) -> Result<T, RestError> {
    serde_json::from_slice(bytes).map_err(|e| bad(42200, format!("Invalid request body: {e}")))
}

/// The embedded format a produce request's Content-Type names.
fn request_format(headers: &HeaderMap) -> Result<Format, RestError> {
    let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let media = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    if media.is_empty() || media == "application/json" || media == "application/octet-stream" {
        return Ok(Format::Binary);
    }
    media
        .strip_prefix("application/vnd.kafka.")
        .and_then(|rest| rest.strip_suffix(".v2+json"))
        .and_then(Format::parse)
        .ok_or_else(|| RestError {
            status: 415,
            error_code: 415,
            message: format!(
                "Content-Type {ct:?} is not supported; use application/vnd.kafka.{{binary,json,avro,jsonschema,protobuf}}.v2+json"
            ),
        })
}

// ----- produce -----

#[derive(Debug, Deserialize)]
struct ProduceBody {
    #[serde(default)]
    key_schema: Option<String>,
    #[serde(default)]
    key_schema_id: Option<i32>,
    #[serde(default)]
    value_schema: Option<String>,
    #[serde(default)]
    value_schema_id: Option<i32>,
    records: Vec<ProduceRecord>,
}

#[derive(Debug, Deserialize)]
struct ProduceRecord {
    #[serde(default)]
    key: Value,
    #[serde(default)]
    value: Value,
    #[serde(default)]
    partition: Option<i32>,
}

/// A key or value in the request's embedded format, as bytes; and the schema id used, if any.
async fn embedded(
    kafka: &Kafka,
    topic: &str,
    format: Format,
    is_key: bool,
    schema: (&Option<String>, Option<i32>),
    data: &Value,
) -> Result<(Option<Vec<u8>>, Option<i32>), RestError> {
    let which = if is_key { "key" } else { "value" };
    if data.is_null() {
        return Ok((None, None));
    }
    match format {
        Format::Binary => match data {
            Value::String(s) => BASE64
                .decode(s)
                .map(|b| (Some(b), None))
                .map_err(|e| bad(42205, format!("The {which} is not valid base64: {e}"))),
            _ => Err(bad(42205, format!("A binary {which} must be a base64 string"))),
        },
        Format::Json => Ok((Some(serde_json::to_vec(data).map_err(|e| bad(42205, e.to_string()))?), None)),
        Format::Avro => {
            let Some(schemas) = kafka.schemas.as_ref() else {
                return Err(bad(42201, "avro needs a schema registry, and this REST proxy has none"));
            };
            let (text, id) = schema;
            if text.is_none() && id.is_none() {
                let code = if is_key { 42202 } else { 42203 };
                return Err(bad(code, format!("Request includes {which}s but does not include {which} schema")));
            }
            let request = SchemaRequest {
                format: Some("AVRO".to_string()),
                schema: text.clone(),
                schema_id: id,
                ..SchemaRequest::default()
            };
            let s = schemas.serialize(topic, is_key, &request, data).await?;
            let used = s.report.get("schema_id").and_then(Value::as_i64).and_then(|i| i32::try_from(i).ok());
            Ok((Some(s.bytes), used))
        }
        Format::JsonSchema | Format::Protobuf => Err(bad(
            42205,
            format!("{} is not produced by this REST proxy yet; use binary, json or avro", format.name()),
        )),
    }
}

async fn produce_v2(
    kafka: AppState,
    topic: String,
    partition: Option<i32>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<Value, RestError> {
    let format = request_format(&headers)?;
    let request: ProduceBody = body(&bytes)?;
    if request.records.len() > MAX_RECORDS {
        return Err(bad(42200, format!("A request holds at most {MAX_RECORDS} records")));
    }
    let metadata = kafka.metadata(Some(vec![topic.clone()])).await?;
    let count = match metadata.topics.get(&topic) {
        Some(t) if t.error_code == 0 => t.partitions.len() as i32,
        _ => {
            return Err(RestError { status: 404, error_code: 40401, message: format!("Topic {topic} not found.") });
        }
    };
    if let Some(p) = partition
        && !(0..count).contains(&p)
    {
        return Err(RestError { status: 404, error_code: 40402, message: format!("Partition {p} not found.") });
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    let (mut key_schema_id, mut value_schema_id) = (None, None);
    let mut pending = Vec::with_capacity(request.records.len());
    for r in &request.records {
        let key_schema = (&request.key_schema, request.key_schema_id);
        let value_schema = (&request.value_schema, request.value_schema_id);
        let (key, kid) = embedded(&kafka, &topic, format, true, key_schema, &r.key).await?;
        let (value, vid) = embedded(&kafka, &topic, format, false, value_schema, &r.value).await?;
        key_schema_id = key_schema_id.or(kid);
        value_schema_id = value_schema_id.or(vid);
        let target = partition.or(r.partition);
        if let Some(p) = target
            && !(0..count).contains(&p)
        {
            return Err(RestError { status: 404, error_code: 40402, message: format!("Partition {p} not found.") });
        }
        let record = RecordSpec { key, value, timestamp: now, headers: Vec::new() };
        pending.push(kafka.producer.send(&topic, target, record).await);
    }
    let mut offsets = Vec::with_capacity(pending.len());
    for delivery in pending {
        offsets.push(match delivery.await {
            Ok(Ok(d)) => json!({"partition": d.partition, "offset": d.offset, "error_code": null, "error": null}),
            Ok(Err(e)) => json!({"partition": null, "offset": null, "error_code": e.error_code, "error": e.message}),
            Err(_) => json!({"partition": null, "offset": null, "error_code": 50001, "error": "the producer stopped"}),
        });
    }
    Ok(json!({"key_schema_id": key_schema_id, "value_schema_id": value_schema_id, "offsets": offsets}))
}

async fn produce_to_topic(
    State(kafka): State<AppState>,
    Path(topic): Path<String>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Response {
    reply(produce_v2(kafka, topic, None, headers, bytes).await.map(Some))
}

async fn produce_to_partition(
    State(kafka): State<AppState>,
    Path((topic, partition)): Path<(String, i32)>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Response {
    reply(produce_v2(kafka, topic, Some(partition), headers, bytes).await.map(Some))
}

// ----- consumer instances -----

#[derive(Debug, Deserialize)]
struct CreateInstance {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    format: Option<String>,
    #[serde(rename = "auto.offset.reset", default)]
    auto_offset_reset: Option<String>,
    #[serde(rename = "auto.commit.enable", default)]
    auto_commit_enable: Option<Value>,
    #[serde(rename = "fetch.min.bytes", default)]
    _fetch_min_bytes: Option<Value>,
    #[serde(rename = "consumer.request.timeout.ms", default)]
    request_timeout_ms: Option<Value>,
}

fn flag(v: &Option<Value>, name: &str, default: bool) -> Result<bool, RestError> {
    match v {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => Ok(true),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => Ok(false),
        Some(other) => Err(bad(42200, format!("{name} must be true or false, got {other}"))),
    }
}

fn number(v: &Option<Value>, name: &str, default: u64) -> Result<u64, RestError> {
    match v {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Number(n)) => n.as_u64().ok_or_else(|| bad(42200, format!("{name} must be a positive integer"))),
        Some(Value::String(s)) => s.parse().map_err(|_| bad(42200, format!("{name} must be a positive integer"))),
        Some(other) => Err(bad(42200, format!("{name} must be a positive integer, got {other}"))),
    }
}

fn host(headers: &HeaderMap) -> String {
    headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost").to_string()
}

async fn create_instance(
    State(kafka): State<AppState>,
    Path(group): Path<String>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Response {
    let result = (|| {
        let request: CreateInstance = if bytes.is_empty() { body(&Bytes::from_static(b"{}"))? } else { body(&bytes)? };
        let format_name = request.format.as_deref().unwrap_or("binary");
        let format = Format::parse(format_name).ok_or_else(|| {
            bad(42200, format!("Unknown format {format_name:?}; use binary, json, avro, jsonschema or protobuf"))
        })?;
        if format == Format::Protobuf {
            return Err(bad(42200, "protobuf consumers are not served by this REST proxy yet"));
        }
        if format == Format::Avro && kafka.schemas.is_none() {
            return Err(bad(42200, "avro consumers need a schema registry, and this REST proxy has none"));
        }
        let from_earliest = match request.auto_offset_reset.as_deref() {
            None | Some("latest") => false,
            Some("earliest" | "smallest") => true,
            Some(other) => {
                return Err(bad(42200, format!("auto.offset.reset must be earliest or latest, got {other:?}")));
            }
        };
        let settings = Settings {
            format,
            from_earliest,
            auto_commit: flag(&request.auto_commit_enable, "auto.commit.enable", true)?,
            request_timeout: Duration::from_millis(
                number(&request.request_timeout_ms, "consumer.request.timeout.ms", 1_000)?.min(60_000),
            ),
        };
        let name = request.name.unwrap_or_else(|| format!("rest-consumer-{}", next_instance_number()));
        if name.is_empty() || name.contains('/') {
            return Err(bad(42200, "The instance name must be non-empty and contain no '/'"));
        }
        let instance = Instance::new(&group, &name, settings, kafka.client_config(&format!("{group}-{name}")));
        if !kafka.consumers.add(instance) {
            return Err(RestError {
                status: 409,
                error_code: 40902,
                message: format!("Consumer with specified consumer ID {name} already exists in group {group}."),
            });
        }
        let base_uri = format!("http://{}/consumers/{group}/instances/{name}", host(&headers));
        Ok(json!({"instance_id": name, "base_uri": base_uri}))
    })();
    reply(result.map(Some))
}

fn next_instance_number() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let pid = u64::from(std::process::id());
    (pid << 32) | NEXT.fetch_add(1, Ordering::Relaxed)
}

/// Runs `op` on the instance, marking it used.
async fn with_instance<T>(
    kafka: &Kafka,
    group: &str,
    name: &str,
    op: impl AsyncFnOnce(&mut Instance) -> Result<T, RestError>,
) -> Result<T, RestError> {
    let shared = kafka.consumers.get(group, name)?;
    let mut instance = shared.lock().await;
    instance.last_used = tokio::time::Instant::now();
    let result = op(&mut instance).await;
    instance.last_used = tokio::time::Instant::now();
    result
}

async fn delete_instance(State(kafka): State<AppState>, Path((group, name)): Path<(String, String)>) -> Response {
    let result = async {
        let shared = kafka.consumers.get(&group, &name)?;
        kafka.consumers.remove(&group, &name);
        shared.lock().await.close().await;
        Ok(None)
    }
    .await;
    reply(result)
}

#[derive(Debug, Deserialize)]
struct SubscribeBody {
    #[serde(default)]
    topics: Option<Vec<String>>,
    #[serde(default)]
    topic_pattern: Option<String>,
}

async fn subscribe(
    State(kafka): State<AppState>,
    Path((group, name)): Path<(String, String)>,
    bytes: Bytes,
) -> Response {
    let result = async {
        let request: SubscribeBody = body(&bytes)?;
        let (topics, pattern) = match (request.topics, request.topic_pattern) {
            (Some(t), None) if !t.is_empty() => (t, None),
            (None, Some(p)) => {
                let anchored = format!("^(?:{p})$");
                let re = Regex::new(&anchored).map_err(|e| bad(42200, format!("topic_pattern is not a regex: {e}")))?;
                (Vec::new(), Some(re))
            }
            _ => return Err(bad(42200, "Give either \"topics\" (a non-empty list) or \"topic_pattern\"")),
        };
        with_instance(&kafka, &group, &name, async |i: &mut Instance| i.subscribe(topics, pattern).await).await?;
        Ok(None)
    }
    .await;
    reply(result)
}

async fn subscription(State(kafka): State<AppState>, Path((group, name)): Path<(String, String)>) -> Response {
    let result = with_instance(&kafka, &group, &name, async |i: &mut Instance| Ok(i.subscription())).await;
    reply(result.map(|topics| Some(json!({"topics": topics}))))
}

async fn unsubscribe(State(kafka): State<AppState>, Path((group, name)): Path<(String, String)>) -> Response {
    let result = with_instance(&kafka, &group, &name, async |i: &mut Instance| i.unsubscribe().await).await;
    reply(result.map(|()| None))
}

#[derive(Debug, Deserialize)]
struct PartitionRef {
    topic: String,
    partition: i32,
}

#[derive(Debug, Deserialize)]
struct PartitionsBody {
    partitions: Vec<PartitionRef>,
}

#[derive(Debug, Deserialize)]
struct OffsetRef {
    topic: String,
    partition: i32,
    offset: i64,
}

#[derive(Debug, Deserialize)]
struct OffsetsBody {
    offsets: Vec<OffsetRef>,
}

fn tps(list: Vec<PartitionRef>) -> Vec<TopicPartition> {
    list.into_iter().map(|p| TopicPartition::new(&p.topic, p.partition)).collect()
}

fn partitions_json(list: &[TopicPartition]) -> Value {
    Value::Array(list.iter().map(|tp| json!({"topic": tp.topic, "partition": tp.partition})).collect())
}

async fn assign(State(kafka): State<AppState>, Path((group, name)): Path<(String, String)>, bytes: Bytes) -> Response {
    let result = async {
        let request: PartitionsBody = body(&bytes)?;
        let list = tps(request.partitions);
        with_instance(&kafka, &group, &name, async |i: &mut Instance| i.assign(list)).await?;
        Ok(None)
    }
    .await;
    reply(result)
}

async fn assignments(State(kafka): State<AppState>, Path((group, name)): Path<(String, String)>) -> Response {
    let result =
        with_instance(&kafka, &group, &name, async |i: &mut Instance| Ok(partitions_json(i.assignment()))).await;
    reply(result.map(|p| Some(json!({"partitions": p}))))
}

async fn seek(State(kafka): State<AppState>, Path((group, name)): Path<(String, String)>, bytes: Bytes) -> Response {
    let result = async {
        let request: OffsetsBody = body(&bytes)?;
        let offsets: Vec<(TopicPartition, i64)> =
            request.offsets.into_iter().map(|o| (TopicPartition::new(&o.topic, o.partition), o.offset)).collect();
        with_instance(&kafka, &group, &name, async |i: &mut Instance| i.seek(offsets)).await?;
        Ok(None)
    }
    .await;
    reply(result)
}

async fn seek_edge(kafka: AppState, group: String, name: String, bytes: Bytes, spec: OffsetSpec) -> Response {
    let result = async {
        let request: PartitionsBody = body(&bytes)?;
        let list = tps(request.partitions);
        with_instance(&kafka, &group, &name, async |i: &mut Instance| i.seek_to(list, spec).await).await?;
        Ok(None)
    }
    .await;
    reply(result)
}

async fn seek_to_beginning(
    State(kafka): State<AppState>,
    Path((group, name)): Path<(String, String)>,
    bytes: Bytes,
) -> Response {
    seek_edge(kafka, group, name, bytes, OffsetSpec::Earliest).await
}

async fn seek_to_end(
    State(kafka): State<AppState>,
    Path((group, name)): Path<(String, String)>,
    bytes: Bytes,
) -> Response {
    seek_edge(kafka, group, name, bytes, OffsetSpec::Latest).await
}

#[derive(Debug, Deserialize)]
struct PollQuery {
    #[serde(default)]
    timeout: Option<u64>,
    #[serde(default)]
    max_bytes: Option<usize>,
}

/// Whether `Accept` allows the instance's format.
fn acceptable(headers: &HeaderMap, format: Format) -> bool {
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else { return true };
    let wanted = format!("application/vnd.kafka.{}.v2+json", format.name());
    accept
        .split(',')
        .map(|part| part.split(';').next().unwrap_or("").trim().to_ascii_lowercase())
        .any(|media| media == wanted || media == "application/json" || media == "*/*" || media == "application/*")
}

/// A key or value as the instance's format shows it.
async fn shown(kafka: &Kafka, format: Format, bytes: Option<&Bytes>, which: &str) -> Result<Value, RestError> {
    let Some(b) = bytes else { return Ok(Value::Null) };
    let undecodable = |detail: String| RestError {
        status: 500,
        error_code: 50002,
        message: format!("The {which} of a record cannot be read as {}: {detail}", format.name()),
    };
    match format {
        Format::Binary => Ok(Value::String(BASE64.encode(b))),
        Format::Json => serde_json::from_slice(b).map_err(|e| undecodable(e.to_string())),
        Format::JsonSchema => {
            let (_, payload) = tributary_schema::split_framed(b).map_err(|e| undecodable(e.to_string()))?;
            serde_json::from_slice(payload).map_err(|e| undecodable(e.to_string()))
        }
        Format::Avro => match kafka.schemas.as_ref() {
            Some(schemas) => schemas.deserialize_avro(b).await.map_err(|e| undecodable(e.message)),
            None => Err(undecodable("no schema registry".to_string())),
        },
        Format::Protobuf => Err(undecodable("not served yet".to_string())),
    }
}

async fn records(
    State(kafka): State<AppState>,
    Path((group, name)): Path<(String, String)>,
    Query(query): Query<PollQuery>,
    headers: HeaderMap,
) -> Response {
    let result = async {
        let shared = kafka.consumers.get(&group, &name)?;
        let mut instance = shared.lock().await;
        instance.last_used = tokio::time::Instant::now();
        let format = instance.settings.format;
        if !acceptable(&headers, format) {
            return Err(RestError {
                status: 406,
                error_code: 40601,
                message: format!(
                    "The consumer instance has format {}: accept application/vnd.kafka.{}.v2+json",
                    format.name(),
                    format.name()
                ),
            });
        }
        let timeout = query.timeout.map_or(instance.settings.request_timeout, Duration::from_millis);
        let polled =
            instance.poll(timeout.min(Duration::from_secs(60)), query.max_bytes.unwrap_or(DEFAULT_MAX_BYTES)).await;
        instance.last_used = tokio::time::Instant::now();
        drop(instance);
        let mut out = Vec::new();
        for (tp, r) in polled? {
            out.push(json!({
                "topic": tp.topic,
                "key": shown(&kafka, format, r.key.as_ref(), "key").await?,
                "value": shown(&kafka, format, r.value.as_ref(), "value").await?,
                "partition": tp.partition,
                "offset": r.offset,
            }));
        }
        Ok((format, Value::Array(out)))
    }
    .await;
    match result {
        Ok((format, v)) => {
            let ct = format!("application/vnd.kafka.{}.v2+json", format.name());
            (StatusCode::OK, [(header::CONTENT_TYPE, ct)], axum::Json(v)).into_response()
        }
        Err(e) => e.into_response(),
    }
}

async fn commit(State(kafka): State<AppState>, Path((group, name)): Path<(String, String)>, bytes: Bytes) -> Response {
    let result = async {
        let offsets = if bytes.iter().all(u8::is_ascii_whitespace) {
            None
        } else {
            let request: OffsetsBody = body(&bytes)?;
            Some(request.offsets.into_iter().map(|o| (TopicPartition::new(&o.topic, o.partition), o.offset)).collect())
        };
        with_instance(&kafka, &group, &name, async |i: &mut Instance| i.commit(offsets).await).await?;
        Ok(None)
    }
    .await;
    reply(result)
}

async fn committed(
    State(kafka): State<AppState>,
    Path((group, name)): Path<(String, String)>,
    bytes: Bytes,
) -> Response {
    let result = async {
        let request: PartitionsBody = body(&bytes)?;
        let list = tps(request.partitions);
        let found = with_instance(&kafka, &group, &name, async |i: &mut Instance| i.committed(list).await).await?;
        let offsets: Vec<Value> = found
            .into_iter()
            .map(|(tp, offset, metadata)| {
                json!({"topic": tp.topic, "partition": tp.partition, "offset": offset, "metadata": metadata})
            })
            .collect();
        Ok(Some(json!({"offsets": offsets})))
    }
    .await;
    reply(result)
}
