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

use super::{bad, reply, required, unprocessable, v2_json};
use crate::body;
use crate::consumer::{Format, Instance, Settings};
use crate::error::RestError;
use crate::kafka::Kafka;
use crate::v3::AppState;

/// Longest a records poll waits for records (heartbeats wait for it).
const MAX_POLL_WAIT: Duration = Duration::from_secs(10);
/// `max_bytes` of a records poll when none is given.
const DEFAULT_MAX_BYTES: usize = 64 * 1024 * 1024;

/// The body of `POST /consumers/{group}` (kafka-rest's `CreateConsumerInstanceRequest`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateInstance {
    /// The old name of `name`; when given it wins.
    #[serde(default, deserialize_with = "body::opt_text")]
    id: Option<String>,
    #[serde(default, deserialize_with = "body::opt_text")]
    name: Option<String>,
    #[serde(default, deserialize_with = "body::opt_text")]
    format: Option<String>,
    #[serde(rename = "auto.offset.reset", default, deserialize_with = "body::opt_text")]
    auto_offset_reset: Option<String>,
    #[serde(rename = "auto.commit.enable", default, deserialize_with = "body::opt_text")]
    auto_commit_enable: Option<String>,
    #[serde(rename = "fetch.min.bytes", alias = "responseMinBytes", default, deserialize_with = "body::opt_int")]
    fetch_min_bytes: Option<i32>,
    #[serde(
        rename = "consumer.request.timeout.ms",
        alias = "requestWaitMs",
        default,
        deserialize_with = "body::opt_int"
    )]
    request_timeout_ms: Option<i32>,
}

/// `fetch.min.bytes` kafka-rest takes: -1 (off) up to 10 MB.
const FETCH_MIN_BYTES: std::ops::RangeInclusive<i32> = -1..=10_000_000;

/// A setting the consumer cannot take: 422 (42204), as kafka-rest answers the consumer's ConfigException.
fn invalid_config(message: String) -> RestError {
    unprocessable(42204, format!("Invalid consumer configuration: {message}"))
}

fn host(headers: &HeaderMap) -> String {
    headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost").to_string()
}

/// The settings of a new instance, with kafka-rest's defaults and answers.
fn settings(request: &CreateInstance, has_registry: bool) -> Result<Settings, RestError> {
    let format_name = request.format.as_deref().unwrap_or("binary").to_ascii_lowercase();
    let format = Format::parse(&format_name).ok_or_else(|| unprocessable(422, "Invalid format type."))?;
    if format == Format::Protobuf {
        return Err(bad(42200, "protobuf consumers are not served by this REST proxy yet"));
    }
    if format == Format::Avro && !has_registry {
        return Err(bad(42200, "avro consumers need a schema registry, and this REST proxy has none"));
    }
    if let Some(n) = request.fetch_min_bytes
        && !FETCH_MIN_BYTES.contains(&n)
    {
        return Err(unprocessable(
            40001,
            format!(
                "Invalid consumer configuration. It does not abide by the constraints: Invalid value {n} for \
                 configuration fetch.min.bytes: Value must be between -1 and {}",
                FETCH_MIN_BYTES.end()
            ),
        ));
    }
    let from_earliest = match request.auto_offset_reset.as_deref().map(str::to_ascii_lowercase).as_deref() {
        None | Some("latest" | "largest") => false,
        Some("earliest" | "smallest") => true,
        Some(other) => {
            return Err(invalid_config(format!(
                "Invalid value {other} for configuration auto.offset.reset: String must be one of: latest, earliest"
            )));
        }
    };
    let auto_commit = match request.auto_commit_enable.as_deref().map(str::to_ascii_lowercase).as_deref() {
        None | Some("true") => true,
        Some("false") => false,
        Some(other) => {
            return Err(invalid_config(format!(
                "Invalid value {other} for configuration enable.auto.commit: Expected value to be either true or false"
            )));
        }
    };
    let request_timeout_ms = request.request_timeout_ms.map_or(1_000, |ms| u64::try_from(ms).unwrap_or(0));
    Ok(Settings {
        format,
        from_earliest,
        auto_commit,
        request_timeout: Duration::from_millis(request_timeout_ms.min(60_000)),
    })
}

pub(super) async fn create_instance(
    State(kafka): State<AppState>,
    Path(group): Path<String>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Response {
    let result = (|| {
        // No body at all takes every default, as in kafka-rest.
        let request: CreateInstance = body::optional(&bytes)?.unwrap_or_default();
        let settings = settings(&request, kafka.schemas.is_some())?;
        let name = request.id.or(request.name).unwrap_or_else(|| format!("rest-consumer-{}", next_instance_number()));
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

/// kafka-rest's `ConsumerSubscriptionRecord`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SubscribeBody {
    #[serde(default)]
    topics: Option<Vec<String>>,
    #[serde(default, deserialize_with = "body::opt_text")]
    topic_pattern: Option<String>,
}

/// What a subscribe body asks for.
enum SubscriptionChange {
    /// An empty `topics` list.
    Unsubscribe,
    /// Topics, or a pattern (anchored at both ends, as Java's `matches`).
    Subscribe(Vec<String>, Option<Regex>),
    /// Neither topics nor a pattern.
    None,
}

fn subscription_change(request: SubscribeBody) -> Result<SubscriptionChange, RestError> {
    Ok(match (request.topics, request.topic_pattern) {
        (Some(t), _) if t.is_empty() => SubscriptionChange::Unsubscribe,
        (Some(t), _) => SubscriptionChange::Subscribe(t, None),
        (None, Some(p)) => {
            let anchored = format!("^(?:{p})$");
            let re = Regex::new(&anchored).map_err(|e| bad(42200, format!("topic_pattern is not a regex: {e}")))?;
            SubscriptionChange::Subscribe(Vec::new(), Some(re))
        }
        (None, None) => SubscriptionChange::None,
    })
}

/// Subscribes as kafka-rest's consumer does: `topics` when given (an empty
/// list unsubscribes), else `topic_pattern`, else nothing changes.
pub(super) async fn subscribe(
    State(kafka): State<AppState>,
    Path((group, name)): Path<(String, String)>,
    bytes: Bytes,
) -> Response {
    let result = async {
        let request: SubscribeBody = required(&bytes)?;
        let (topics, pattern) = match subscription_change(request)? {
            SubscriptionChange::Unsubscribe => {
                with_instance(&kafka, &group, &name, async |i: &mut Instance| i.unsubscribe().await).await?;
                return Ok(None);
            }
            SubscriptionChange::Subscribe(topics, pattern) => (topics, pattern),
            SubscriptionChange::None => {
                kafka.consumers.get(&group, &name)?;
                return Ok(None);
            }
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

/// kafka-rest's v2 `TopicPartition`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PartitionRef {
    #[serde(deserialize_with = "body::text")]
    topic: String,
    #[serde(deserialize_with = "body::int")]
    partition: i32,
}

/// `{"partitions": [...]}`: assignments, seeks to an end, committed offsets.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PartitionsBody {
    #[serde(default, deserialize_with = "body::list")]
    partitions: Vec<PartitionRef>,
}

/// One entry of a seek's `offsets` (kafka-rest's `PartitionOffset`, whose
/// partition and offset are plain numbers: 0 when left out).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SeekOffset {
    #[serde(deserialize_with = "body::text")]
    topic: String,
    #[serde(default, deserialize_with = "body::int")]
    partition: i32,
    #[serde(default, deserialize_with = "body::int")]
    offset: i64,
    /// Taken and not used: a seek commits nothing.
    #[serde(default, rename = "metadata", deserialize_with = "body::opt_text")]
    _metadata: Option<String>,
}

/// One entry of a seek's `timestamps`: the first offset at or after the time.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SeekTimestamp {
    #[serde(deserialize_with = "body::text")]
    topic: String,
    #[serde(default, deserialize_with = "body::int")]
    partition: i32,
    timestamp: Value,
    #[serde(default, rename = "metadata", deserialize_with = "body::opt_text")]
    _metadata: Option<String>,
}

/// kafka-rest's `ConsumerSeekRequest`: either list may be left out.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SeekBody {
    #[serde(default, deserialize_with = "body::list")]
    offsets: Vec<SeekOffset>,
    #[serde(default, deserialize_with = "body::list")]
    timestamps: Vec<SeekTimestamp>,
}

/// One entry of a commit (kafka-rest's `TopicPartitionOffsetMetadata`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CommitOffset {
    #[serde(deserialize_with = "body::text")]
    topic: String,
    #[serde(deserialize_with = "body::int")]
    partition: i32,
    #[serde(deserialize_with = "body::int")]
    offset: i64,
    /// Taken, but committed as "" (the group client commits no metadata yet).
    #[serde(default, rename = "metadata", deserialize_with = "body::opt_text")]
    _metadata: Option<String>,
}

/// kafka-rest's `ConsumerOffsetCommitRequest`: no `offsets` commits every record fetched.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CommitBody {
    #[serde(default)]
    offsets: Option<Vec<CommitOffset>>,
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
        let request: PartitionsBody = required(&bytes)?;
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

/// Offsets (or times, in milliseconds) by partition.
type PartitionPositions = Vec<(TopicPartition, i64)>;

/// The offsets and the times (milliseconds) a seek body names.
fn seek_targets(request: SeekBody) -> Result<(PartitionPositions, PartitionPositions), RestError> {
    let offsets = request.offsets.into_iter().map(|o| (TopicPartition::new(&o.topic, o.partition), o.offset)).collect();
    let mut times = Vec::with_capacity(request.timestamps.len());
    for t in request.timestamps {
        let ms = crate::instant::timestamp_ms(&t.timestamp).map_err(|e| bad(400, format!("timestamp: {e}")))?;
        times.push((TopicPartition::new(&t.topic, t.partition), ms));
    }
    Ok((offsets, times))
}

/// Seeks to offsets, then to the first offsets at or after times, as kafka-rest does.
pub(super) async fn seek(
    State(kafka): State<AppState>,
    Path((group, name)): Path<(String, String)>,
    bytes: Bytes,
) -> Response {
    let result = async {
        let (offsets, times) = seek_targets(required(&bytes)?)?;
        with_instance(&kafka, &group, &name, async |i: &mut Instance| {
            i.seek(offsets)?;
            for (tp, ms) in times {
                i.seek_to(vec![tp], OffsetSpec::Timestamp(ms)).await?;
            }
            Ok(())
        })
        .await?;
        Ok(None)
    }
    .await;
    reply(result)
}

async fn seek_edge(kafka: AppState, group: String, name: String, bytes: Bytes, spec: OffsetSpec) -> Response {
    let result = async {
        let request: PartitionsBody = required(&bytes)?;
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

/// `?timeout=&max_bytes=`: -1 (kafka-rest's default) or 0 means the instance's setting.
#[derive(Debug, Deserialize)]
pub(super) struct PollQuery {
    #[serde(default)]
    timeout: Option<i64>,
    #[serde(default)]
    max_bytes: Option<i64>,
}

impl PollQuery {
    /// How long a poll waits: `timeout` when positive, but never longer than
    /// the instance's `consumer.request.timeout.ms`, as in kafka-rest.
    fn wait(&self, instance_default: Duration) -> Duration {
        match self.timeout.and_then(|ms| u64::try_from(ms).ok()).filter(|ms| *ms > 0) {
            Some(ms) => Duration::from_millis(ms).min(instance_default),
            None => instance_default,
        }
    }

    /// The most bytes a poll returns: `max_bytes` when positive, up to `consumer.request.max.bytes`.
    fn max_bytes(&self) -> usize {
        self.max_bytes
            .and_then(|n| usize::try_from(n).ok())
            .filter(|n| *n > 0)
            .map_or(DEFAULT_MAX_BYTES, |n| n.min(DEFAULT_MAX_BYTES))
    }
}

/// Whether `Accept` allows the instance's format. As in kafka-rest, the
/// plain `application/vnd.kafka.v2+json` is binary's; `application/json`
/// and wildcards are taken for every format.
fn acceptable(headers: &HeaderMap, format: Format) -> bool {
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else { return true };
    let wanted = format!("application/vnd.kafka.{}.v2+json", format.name());
    accept.split(',').map(|part| part.split(';').next().unwrap_or("").trim().to_ascii_lowercase()).any(|media| {
        media == wanted
            || (format == Format::Binary && media == super::V2_JSON)
            || media == "application/json"
            || media == "*/*"
            || media == "application/*"
    })
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
        let timeout = query.wait(instance.settings.request_timeout);
        let polled = instance.poll(timeout.min(MAX_POLL_WAIT), query.max_bytes()).await;
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

/// The offsets a commit body names; `None`: every record fetched.
fn commit_offsets(request: Option<CommitBody>) -> Option<PartitionPositions> {
    request
        .and_then(|r| r.offsets)
        .map(|list| list.into_iter().map(|o| (TopicPartition::new(&o.topic, o.partition), o.offset)).collect())
}

/// Commits the offsets named, or every record the instance has fetched when
/// the body is empty or has no `offsets`; answers 200 with `[]`, as kafka-rest does.
pub(super) async fn commit(
    State(kafka): State<AppState>,
    Path((group, name)): Path<(String, String)>,
    bytes: Bytes,
) -> Response {
    let result = async {
        let offsets = commit_offsets(body::optional(&bytes)?);
        with_instance(&kafka, &group, &name, async |i: &mut Instance| i.commit(offsets).await).await?;
        Ok::<_, RestError>(json!([]))
    }
    .await;
    match result {
        Ok(v) => v2_json(StatusCode::OK, v),
        Err(e) => e.into_response(),
    }
}

/// The group's committed offsets for the partitions named; a request
/// without a body names no partition, which kafka-rest answers with 404 (40402).
pub(super) async fn committed(
    State(kafka): State<AppState>,
    Path((group, name)): Path<(String, String)>,
    bytes: Bytes,
) -> Response {
    let result = async {
        let request: PartitionsBody = body::optional(&bytes)?.ok_or_else(|| RestError {
            status: 404,
            error_code: 40402,
            message: "Partition not found.".to_string(),
        })?;
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
/// handlers read (`kind % 5`: create instance, subscribe, a partition list
/// (assign, seek to an edge, committed), seek, commit), read and checked as
/// the handlers do before they reach an instance.
pub(super) fn fuzz_body(kind: u8, bytes: &Bytes) {
    match kind % 5 {
        0 => {
            if let Ok(request) = body::optional::<CreateInstance>(bytes) {
                let request = request.unwrap_or_default();
                let _ = settings(&request, false);
                let _ = settings(&request, true);
            }
        }
        1 => {
            let _ = required::<SubscribeBody>(bytes).and_then(subscription_change);
        }
        2 => {
            let _ = required::<PartitionsBody>(bytes).map(|r| partitions_json(&tps(r.partitions)));
        }
        3 => {
            let _ = required::<SeekBody>(bytes).and_then(seek_targets);
        }
        _ => {
            let _ = body::optional::<CommitBody>(bytes).map(commit_offsets);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instance(body: serde_json::Value) -> Result<Settings, RestError> {
        let request: CreateInstance = body::from_value(body)?;
        settings(&request, false)
    }

    #[test]
    fn instance_settings_take_kafka_rests_defaults_and_spellings() {
        let s = instance(json!({})).expect("defaults");
        assert_eq!((s.format, s.from_earliest, s.auto_commit), (Format::Binary, false, true));
        assert_eq!(s.request_timeout, Duration::from_millis(1_000));
        let s = instance(json!({"format": "JSON", "auto.offset.reset": "EARLIEST", "auto.commit.enable": false,
                                "requestWaitMs": "250"}))
        .expect("spellings");
        assert_eq!((s.format, s.from_earliest, s.auto_commit), (Format::Json, true, false));
        assert_eq!(s.request_timeout, Duration::from_millis(250));
        let code = |body| instance(body).map(|_| ()).map_err(|e| (e.status, e.error_code));
        assert_eq!(code(json!({"format": "xml"})), Err((422, 422)));
        assert_eq!(code(json!({"fetch.min.bytes": -2})), Err((422, 40001)));
        assert_eq!(code(json!({"responseMinBytes": 10_000_000})), Ok(()));
        assert_eq!(code(json!({"auto.commit.enable": "yes"})), Err((422, 42204)));
        assert_eq!(code(json!({"max.poll.records": 5})), Err((422, 422)));
    }

    #[test]
    fn poll_limits_follow_kafka_rest() {
        let query = |timeout, max_bytes| PollQuery { timeout, max_bytes };
        let default = Duration::from_millis(1_000);
        assert_eq!(query(None, None).wait(default), default);
        assert_eq!(query(Some(-1), None).wait(default), default);
        assert_eq!(query(Some(0), None).wait(default), default);
        assert_eq!(query(Some(200), None).wait(default), Duration::from_millis(200));
        assert_eq!(query(Some(5_000), None).wait(default), default);
        assert_eq!(query(None, Some(-1)).max_bytes(), DEFAULT_MAX_BYTES);
        assert_eq!(query(None, Some(10)).max_bytes(), 10);
        assert_eq!(query(None, Some(i64::MAX)).max_bytes(), DEFAULT_MAX_BYTES);
    }
}
