//! v2 consumer instances: create, subscribe or assign, seek, poll records
//! in the instance's format, commit and read offsets, delete.

use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use regex::Regex;
use serde::Deserialize;
use serde_json::{Value, json};
use tributary_client::admin::{OffsetSpec, TopicPartition};

use super::{bad, body, reply};
use crate::consumer::{Format, Instance, Settings};
use crate::error::RestError;
use crate::kafka::Kafka;
use crate::v3::AppState;

/// Longest a records poll waits for records (heartbeats wait for it).
const MAX_POLL_WAIT: Duration = Duration::from_secs(10);
/// `max_bytes` of a records poll when none is given.
const DEFAULT_MAX_BYTES: usize = 64 * 1024 * 1024;

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

pub(super) async fn create_instance(
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

pub(super) async fn delete_instance(
    State(kafka): State<AppState>,
    Path((group, name)): Path<(String, String)>,
) -> Response {
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

pub(super) async fn subscribe(
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

pub(super) async fn subscription(
    State(kafka): State<AppState>,
    Path((group, name)): Path<(String, String)>,
) -> Response {
    let result = with_instance(&kafka, &group, &name, async |i: &mut Instance| Ok(i.subscription())).await;
    reply(result.map(|topics| Some(json!({"topics": topics}))))
}

pub(super) async fn unsubscribe(
    State(kafka): State<AppState>,
    Path((group, name)): Path<(String, String)>,
) -> Response {
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

pub(super) async fn assign(
    State(kafka): State<AppState>,
    Path((group, name)): Path<(String, String)>,
    bytes: Bytes,
) -> Response {
    let result = async {
        let request: PartitionsBody = body(&bytes)?;
        let list = tps(request.partitions);
        with_instance(&kafka, &group, &name, async |i: &mut Instance| i.assign(list)).await?;
        Ok(None)
    }
    .await;
    reply(result)
}

pub(super) async fn assignments(
    State(kafka): State<AppState>,
    Path((group, name)): Path<(String, String)>,
) -> Response {
    let result =
        with_instance(&kafka, &group, &name, async |i: &mut Instance| Ok(partitions_json(i.assignment()))).await;
    reply(result.map(|p| Some(json!({"partitions": p}))))
}

pub(super) async fn seek(
    State(kafka): State<AppState>,
    Path((group, name)): Path<(String, String)>,
    bytes: Bytes,
) -> Response {
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

pub(super) async fn seek_to_beginning(
    State(kafka): State<AppState>,
    Path((group, name)): Path<(String, String)>,
    bytes: Bytes,
) -> Response {
    seek_edge(kafka, group, name, bytes, OffsetSpec::Earliest).await
}

pub(super) async fn seek_to_end(
    State(kafka): State<AppState>,
    Path((group, name)): Path<(String, String)>,
    bytes: Bytes,
) -> Response {
    seek_edge(kafka, group, name, bytes, OffsetSpec::Latest).await
}

#[derive(Debug, Deserialize)]
pub(super) struct PollQuery {
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

pub(super) async fn records(
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
        // Heartbeats wait while a poll holds the instance: a poll stays well within the session timeout.
        let timeout = query.timeout.map_or(instance.settings.request_timeout, Duration::from_millis);
        let polled = instance.poll(timeout.min(MAX_POLL_WAIT), query.max_bytes.unwrap_or(DEFAULT_MAX_BYTES)).await;
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

pub(super) async fn commit(
    State(kafka): State<AppState>,
    Path((group, name)): Path<(String, String)>,
    bytes: Bytes,
) -> Response {
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

pub(super) async fn committed(
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

/// Fuzzing entry (see `crate::fuzzing`): `bytes` as each body these
/// handlers read (`kind % 4`: create instance, subscribe, assign or seek to
/// an edge, seek), with the checks the handlers make before they act.
pub(super) fn fuzz_body(kind: u8, bytes: &Bytes) {
    match kind % 4 {
        0 => {
            if let Ok(r) = body::<CreateInstance>(bytes) {
                let _ = r.format.as_deref().map(Format::parse);
                let _ = flag(&r.auto_commit_enable, "auto.commit.enable", true);
                let _ = number(&r.request_timeout_ms, "consumer.request.timeout.ms", 1_000);
            }
        }
        1 => {
            if let Ok(SubscribeBody { topic_pattern: Some(p), .. }) = body::<SubscribeBody>(bytes) {
                let _ = Regex::new(&format!("^(?:{p})$"));
            }
        }
        2 => {
            if let Ok(r) = body::<PartitionsBody>(bytes) {
                let _ = partitions_json(&tps(r.partitions));
            }
        }
        _ => {
            if let Ok(r) = body::<OffsetsBody>(bytes) {
                let _: Vec<(TopicPartition, i64)> =
                    r.offsets.into_iter().map(|o| (TopicPartition::new(&o.topic, o.partition), o.offset)).collect();
            }
        }
    }
}
