//! Producing records: `POST /clusters/{c}/topics/{t}/records` and
//! `.../records:batch`.
//!
//! `/records` takes one record, or many as concatenated JSON in one
//! (typically chunked) request, and answers one delivery report per record,
//! in order, each followed by `\r\n` (one JSON object a line, as kafka-rest
//! writes them, a single record's too), streamed while the request is still
//! arriving; the HTTP status is 200 once the stream is under way and each
//! report carries its own `error_code` (200 = written). A syntax error ends
//! the stream with a report naming the record; a record that parses but is
//! wrong (unknown field, bad base64, ...) gets a 400 report and the stream goes
//! on. `/records:batch` takes `{"entries":[{"id", ...record}]}` and answers 207
//! with `successes` and `failures` by id; a batch that is not well formed
//! (no entries, ids not distinct or not `[0-9a-zA-Z_-]{1,80}`, an entry
//! kafka-rest's mapper would refuse) fails whole, as in kafka-rest.

use std::collections::HashSet;
use std::convert::Infallible;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use futures::StreamExt;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tributary_client::RecordSpec;

use super::AppState;
use crate::body::payload_error;
use crate::error::RestError;
use crate::instant::{format_instant, timestamp_ms};
use crate::kafka::Kafka;
use crate::producer::{Delivery, delivery_error, now_ms};
use crate::schemas::SchemaRequest;

/// Largest JSON text of one record in a stream; a longer one ends the stream with 413.
pub const MAX_RECORD_JSON_BYTES: usize = 8 * 1024 * 1024;
/// What follows every report of `/records`, a record's or an error's, as in
/// kafka-rest, whose chunked output ends each element with it: a client can
/// read the answer line by line.
const REPORT_SEPARATOR: &[u8] = b"\r\n";
/// Reports waiting to be written before the request is read further.
const REPORTS_AHEAD: usize = 10_000;
/// Most entries in one `records:batch` request.
const MAX_BATCH_ENTRIES: usize = 10_000;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/clusters/{cluster_id}/topics/{topic}/records", post(produce))
        .route("/clusters/{cluster_id}/topics/{topic}/records:batch", post(produce_batch))
}

/// One record of a produce request (kafka-rest's `ProduceRequest`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProduceRecord {
    #[serde(default, deserialize_with = "crate::body::opt_int")]
    partition_id: Option<i32>,
    #[serde(default)]
    headers: Option<Vec<Header>>,
    #[serde(default)]
    key: Option<Data>,
    #[serde(default)]
    value: Option<Data>,
    #[serde(default)]
    timestamp: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    name: String,
    #[serde(default)]
    value: Option<String>,
}

/// A key or value: its format and data (kafka-rest's `ProduceRequestData`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Data {
    #[serde(rename = "type", default)]
    format: Option<String>,
    #[serde(default)]
    subject: Option<String>,
    #[serde(default)]
    subject_name_strategy: Option<String>,
    #[serde(default, deserialize_with = "crate::body::opt_int")]
    schema_id: Option<i32>,
    #[serde(default, deserialize_with = "crate::body::opt_int")]
    schema_version: Option<i32>,
    #[serde(default)]
    schema: Option<String>,
    /// Required, as in kafka-rest (whose mapper refuses a key or value
    /// without `data`); `null` is a Kafka null.
    data: Value,
}

/// A key or value as bytes, and what its report says about it (nothing
/// when the request has no key or value object: kafka-rest leaves it out).
struct Encoded {
    bytes: Option<Vec<u8>>,
    report: Option<Value>,
}

fn bad(message: impl Into<String>) -> RestError {
    RestError::status(400, message)
}

/// The combinations of fields kafka-rest's `ProduceRequestData` refuses:
/// `subject` with `subject_name_strategy`; more than one of `schema_id`,
/// `schema_version` and `schema`; and a schema-registry `type` without an
/// inline `schema` (by id or version, or for the latest, leave `type` out).
fn check_fields(which: &str, d: &Data) -> Result<(), RestError> {
    let refuse = |message: String| Err(bad(format!("{which}: {message}")));
    if d.subject.is_some() && d.subject_name_strategy.is_some() {
        return refuse("Only one of 'subject_name_strategy' or 'subject' can be used.".to_string());
    }
    let several = match d.schema_id {
        Some(_) => d.schema_version.is_some() || d.schema.is_some(),
        None => d.schema_version.is_some() && d.schema.is_some(),
    };
    if several {
        return refuse("Only one of 'schema_id', 'schema_version' or 'schema' can be used.".to_string());
    }
    if matches!(d.format.as_deref(), Some("AVRO" | "JSONSCHEMA" | "PROTOBUF")) {
        if let Some(id) = d.schema_id {
            return refuse(format!("'schema_id={id}' cannot be used with 'serializer'."));
        }
        if let Some(version) = d.schema_version {
            return refuse(format!("'schema_version={version}' cannot be used with 'serializer'."));
        }
        if d.schema.is_none() {
            return refuse("'schema_version=latest' cannot be used with 'serializer'.".to_string());
        }
    }
    Ok(())
}

/// Serializes a key or value: BINARY, JSON and STRING here, schema-registry
/// formats (or no `type`: the subject's latest schema) through the registry.
async fn encode(kafka: &Kafka, topic: &str, is_key: bool, data: Option<Data>) -> Result<Encoded, RestError> {
    let which = if is_key { "key" } else { "value" };
    let Some(d) = data else {
        return Ok(Encoded { bytes: None, report: None });
    };
    check_fields(which, &d)?;
    let uses_registry = d.schema.is_some()
        || d.schema_id.is_some()
        || d.schema_version.is_some()
        || d.subject.is_some()
        || d.subject_name_strategy.is_some();
    let format = match d.format.as_deref() {
        Some(f @ ("BINARY" | "JSON" | "STRING")) if !uses_registry => f,
        Some(f @ ("BINARY" | "JSON" | "STRING")) => {
            return Err(bad(format!(
                "{which}: type {f} takes no schema, schema_id, schema_version, subject or subject_name_strategy"
            )));
        }
        None | Some("AVRO" | "JSONSCHEMA" | "PROTOBUF") => {
            let Some(schemas) = kafka.schemas.as_ref() else {
                return Err(bad(format!(
                    "{which}: {} needs a schema registry, and this REST proxy has none (start it with \
                     --schema-registry-url); or give \"type\": \"BINARY\", \"JSON\" or \"STRING\"",
                    d.format.as_deref().map_or("data without a type".to_string(), |f| format!("type {f}"))
                )));
            };
            if d.data.is_null() {
                return Ok(Encoded { bytes: None, report: Some(Value::Null) });
            }
            let request = SchemaRequest {
                format: d.format,
                subject: d.subject,
                subject_name_strategy: d.subject_name_strategy,
                schema_id: d.schema_id,
                schema_version: d.schema_version,
                schema: d.schema,
            };
            let s = schemas.serialize(topic, is_key, &request, &d.data).await?;
            return Ok(Encoded { bytes: Some(s.bytes), report: Some(s.report) });
        }
        Some(other) => {
            return Err(bad(format!(
                "{which}: unknown type {other:?}; use BINARY, JSON, STRING, AVRO, JSONSCHEMA or PROTOBUF"
            )));
        }
    };
    let bytes = match (format, &d.data) {
        (_, Value::Null) => None,
        ("BINARY", Value::String(s)) => {
            Some(BASE64.decode(s).map_err(|e| bad(format!("{which}: BINARY data must be base64: {e}")))?)
        }
        ("BINARY", _) => return Err(bad(format!("{which}: BINARY data must be a base64 string"))),
        ("STRING", Value::String(s)) => Some(s.as_bytes().to_vec()),
        ("STRING", _) => return Err(bad(format!("{which}: STRING data must be a string"))),
        (_, v) => Some(serde_json::to_vec(v).map_err(|e| bad(format!("{which}: {e}")))?),
    };
    let report = json!({"type": format, "size": bytes.as_ref().map_or(0, Vec::len)});
    Ok(Encoded { bytes, report: Some(report) })
}

/// A record ready for the producer, and the parts of its report known before it is written.
struct Prepared {
    partition: Option<i32>,
    record: RecordSpec,
    key: Option<Value>,
    value: Option<Value>,
}

async fn prepare(kafka: &Kafka, topic: &str, record: ProduceRecord, now_ms: i64) -> Result<Prepared, RestError> {
    let timestamp = match &record.timestamp {
        None | Some(Value::Null) => now_ms,
        Some(t) => timestamp_ms(t).map_err(|e| bad(format!("timestamp: {e}")))?,
    };
    let mut headers = Vec::new();
    for h in record.headers.unwrap_or_default() {
        let value = match h.value {
            Some(v) => Some(
                BASE64.decode(&v).map_err(|e| bad(format!("header {:?}: the value must be base64: {e}", h.name)))?,
            ),
            None => None,
        };
        headers.push((h.name.into_bytes(), value));
    }
    let key = encode(kafka, topic, true, record.key).await?;
    let value = encode(kafka, topic, false, record.value).await?;
    Ok(Prepared {
        partition: record.partition_id,
        record: RecordSpec { key: key.bytes, value: value.bytes, timestamp, headers },
        key: key.report,
        value: value.report,
    })
}

/// One report, in request order: known at once (an error) or waiting for the producer.
enum Report {
    Ready(Value),
    Pending { delivery: Delivery, timestamp: i64, key: Option<Value>, value: Option<Value> },
}

fn error_report(e: &RestError) -> Value {
    json!({"error_code": e.error_code, "message": e.message})
}

impl Report {
    async fn resolve(self, cluster_id: &str, topic: &str) -> Value {
        match self {
            Report::Ready(v) => v,
            Report::Pending { delivery, timestamp, key, value } => match delivery.wait().await {
                Ok(d) => {
                    let mut report = json!({
                        "error_code": 200,
                        "cluster_id": cluster_id,
                        "topic_name": topic,
                        "partition_id": d.partition,
                        "offset": d.offset,
                        "timestamp": format_instant(timestamp),
                    });
                    if let Some(o) = report.as_object_mut() {
                        o.extend(key.map(|k| ("key".to_string(), k)));
                        o.extend(value.map(|v| ("value".to_string(), v)));
                    }
                    report
                }
                Err(e) => error_report(&delivery_error(&e)),
            },
        }
    }
}

/// Hands one parsed JSON value to the producer and returns its report-to-be.
async fn submit(kafka: &Kafka, topic: &str, value: Value) -> Report {
    match serde_json::from_value::<ProduceRecord>(value) {
        Ok(record) => submit_record(kafka, topic, record).await,
        Err(e) => Report::Ready(error_report(&bad(format!("Invalid record: {e}")))),
    }
}

/// Hands one record to the producer and returns its report-to-be.
async fn submit_record(kafka: &Kafka, topic: &str, record: ProduceRecord) -> Report {
    match prepare(kafka, topic, record, now_ms()).await {
        Ok(p) => {
            let timestamp = p.record.timestamp;
            let delivery = kafka.producer.send(topic, p.partition, p.record).await;
            Report::Pending { delivery, timestamp, key: p.key, value: p.value }
        }
        Err(e) => Report::Ready(error_report(&e)),
    }
}

/// The request body as a stream of chunks.
type BodyChunks = std::pin::Pin<Box<dyn futures::Stream<Item = Result<Bytes, axum::Error>> + Send>>;

/// Reads the body up to its first non-blank byte: `None` when it holds
/// nothing but whitespace (a request with no record), else the body with
/// what was read put back in front.
async fn first_record_start(body: Body) -> Result<Option<BodyChunks>, RestError> {
    let mut stream = body.into_data_stream();
    let mut seen: Vec<Bytes> = Vec::new();
    loop {
        match stream.next().await {
            Some(Ok(chunk)) => {
                let blank = chunk.iter().all(u8::is_ascii_whitespace);
                seen.push(chunk);
                if !blank {
                    let head = futures::stream::iter(seen.into_iter().map(Ok));
                    return Ok(Some(Box::pin(head.chain(stream))));
                }
            }
            Some(Err(e)) => return Err(bad(format!("The request body could not be read: {e}"))),
            None => return Ok(None),
        }
    }
}

/// Watches a growing buffer of concatenated JSON for the places where a
/// top-level value may have ended, looking at each byte once, so a record
/// that arrives in many small chunks is parsed once it is whole instead of
/// from its start on every chunk.
#[derive(Debug, Default)]
struct RecordEnds {
    /// How far the buffer has been scanned.
    scanned: usize,
    /// Open objects and arrays.
    depth: usize,
    in_string: bool,
    escaped: bool,
}

impl RecordEnds {
    /// Scans what was added to `buf`; true when a top-level value may have
    /// ended in it (an object or array closed, or a top-level scalar began),
    /// so parsing can make progress.
    fn advance(&mut self, buf: &[u8]) -> bool {
        let mut ended = false;
        for &b in &buf[self.scanned.min(buf.len())..] {
            if self.in_string {
                match b {
                    _ if self.escaped => self.escaped = false,
                    b'\\' => self.escaped = true,
                    b'"' => self.in_string = false,
                    _ => {}
                }
                continue;
            }
            match b {
                b'"' => {
                    ended |= self.depth == 0;
                    self.in_string = true;
                }
                b'{' | b'[' => self.depth += 1,
                b'}' | b']' => {
                    self.depth = self.depth.saturating_sub(1);
                    ended |= self.depth == 0;
                }
                _ if b.is_ascii_whitespace() => {}
                _ => ended |= self.depth == 0,
            }
        }
        self.scanned = buf.len();
        ended
    }

    /// The first `n` bytes of the buffer were parsed and removed.
    fn consumed(&mut self, n: usize) {
        self.scanned = self.scanned.saturating_sub(n);
    }
}

/// Reads concatenated JSON records from `body` and queues a report for each.
async fn read_records(kafka: AppState, topic: String, mut stream: BodyChunks, reports: mpsc::Sender<Report>) {
    let mut buf: Vec<u8> = Vec::new();
    let mut ends = RecordEnds::default();
    let mut number = 0usize;
    let stop = |message: String, status: u16| Report::Ready(error_report(&RestError::status(status, message)));
    loop {
        let chunk = stream.next().await;
        let ended = match chunk {
            Some(Ok(bytes)) => {
                buf.extend_from_slice(&bytes);
                false
            }
            Some(Err(e)) => {
                let _ = reports.send(stop(format!("The request body could not be read: {e}"), 400)).await;
                return;
            }
            None => true,
        };
        // Parsed only when a record may have ended in this chunk: a record arriving in many
        // small chunks is parsed once, not from its start on every chunk.
        if ends.advance(&buf) || ended {
            let mut parsed = serde_json::Deserializer::from_slice(&buf).into_iter::<Value>();
            let mut consumed = 0;
            loop {
                match parsed.next() {
                    Some(Ok(value)) => {
                        consumed = parsed.byte_offset();
                        number += 1;
                        let report = submit(&kafka, &topic, value).await;
                        if reports.send(report).await.is_err() {
                            return; // The client went away.
                        }
                    }
                    Some(Err(e)) if e.is_eof() && !ended => break,
                    Some(Err(e)) => {
                        let message =
                            format!("Record {} is not valid JSON ({e}); no further records were read.", number + 1);
                        let _ = reports.send(stop(message, 400)).await;
                        return;
                    }
                    None => break,
                }
            }
            buf.drain(..consumed);
            ends.consumed(consumed);
        }
        if ended {
            return;
        }
        if buf.len() > MAX_RECORD_JSON_BYTES {
            let message = format!(
                "Record {} is larger than {MAX_RECORD_JSON_BYTES} bytes of JSON; no further records were read.",
                number + 1
            );
            let _ = reports.send(stop(message, 413)).await;
            return;
        }
    }
}

async fn produce(
    State(kafka): State<AppState>,
    Path((cluster_id, topic)): Path<(String, String)>,
    body: Body,
) -> Response {
    if let Err(e) = kafka.topic(&cluster_id, &topic).await {
        return e.into_response();
    }
    // A request without a single record is refused before the stream (and its 200) starts.
    let stream = match first_record_start(body).await {
        Ok(Some(stream)) => stream,
        Ok(None) => return payload_error("Request body is empty. Data is required.").into_response(),
        Err(e) => return e.into_response(),
    };
    let (tx, rx) = mpsc::channel::<Report>(REPORTS_AHEAD);
    tokio::spawn(read_records(kafka.clone(), topic.clone(), stream, tx));
    let answers = futures::stream::unfold((rx, cluster_id, topic), |(mut rx, cluster_id, topic)| async move {
        let report = rx.recv().await?;
        let value = report.resolve(&cluster_id, &topic).await;
        let mut bytes = serde_json::to_vec(&value).unwrap_or_default();
        bytes.extend_from_slice(REPORT_SEPARATOR);
        let bytes = Bytes::from(bytes);
        Some((Ok::<_, Infallible>(bytes), (rx, cluster_id, topic)))
    });
    ([(header::CONTENT_TYPE, "application/json")], Body::from_stream(answers)).into_response()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchRequest {
    #[serde(default, deserialize_with = "crate::body::list")]
    entries: Vec<Value>,
}

/// kafka-rest's answer to a batch that is not well formed: 422 (42208).
fn batch_error(message: &str) -> RestError {
    RestError { status: 422, error_code: 42208, message: message.to_string() }
}

/// An entry id kafka-rest takes: a JSON string of 1 to 80 of `[0-9a-zA-Z_-]`.
fn valid_entry_id(id: &str) -> bool {
    (1..=80).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The entries of a batch with their ids, each read as a record; any entry
/// that is not one fails the whole batch, before anything is produced.
fn batch_entries(body: &Bytes) -> Result<Vec<(String, ProduceRecord)>, RestError> {
    let request: BatchRequest =
        crate::body::optional(body)?.ok_or_else(|| batch_error("Request body is empty. Data is required."))?;
    let mut entries = Vec::with_capacity(request.entries.len().min(MAX_BATCH_ENTRIES));
    for mut entry in request.entries {
        let id = match entry.as_object_mut().and_then(|o| o.remove("id")) {
            Some(Value::String(id)) if valid_entry_id(&id) => id,
            _ => return Err(batch_error("Batch entry identifier is not a valid string.")),
        };
        entries.push((id, crate::body::from_value::<ProduceRecord>(entry)?));
    }
    let mut ids = HashSet::new();
    if !entries.iter().all(|(id, _)| ids.insert(id.as_str())) {
        return Err(batch_error("Batch entry IDs are not distinct."));
    }
    if entries.is_empty() {
        return Err(batch_error("Empty batch."));
    }
    if entries.len() > MAX_BATCH_ENTRIES {
        return Err(batch_error("Too many entries in batch."));
    }
    Ok(entries)
}

async fn produce_batch(
    State(kafka): State<AppState>,
    Path((cluster_id, topic)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let result = async {
        let entries = batch_entries(&body)?;
        kafka.topic(&cluster_id, &topic).await?;
        let mut pending = Vec::with_capacity(entries.len());
        for (id, record) in entries {
            pending.push((id, submit_record(&kafka, &topic, record).await));
        }
        let (mut successes, mut failures) = (Vec::new(), Vec::new());
        for (id, report) in pending {
            let mut v = report.resolve(&cluster_id, &topic).await;
            let ok = v.get("error_code") == Some(&json!(200));
            if let Some(o) = v.as_object_mut() {
                o.insert("id".to_string(), json!(id));
                if ok {
                    o.remove("error_code");
                    successes.push(v);
                } else {
                    failures.push(v);
                }
            }
        }
        Ok::<_, RestError>(json!({"successes": successes, "failures": failures}))
    }
    .await;
    match result {
        Ok(v) => (StatusCode::MULTI_STATUS, axum::Json(v)).into_response(),
        Err(e) => e.into_response(),
    }
}

/// Fuzzing entry (see `crate::fuzzing`): `bytes` as a `records:batch` body
/// and as a `records` stream arriving in chunks of `chunk` bytes, each
/// record prepared as the handlers prepare it. Checks that the stream
/// reader never holds back a record that has arrived whole.
///
/// # Panics
/// When a whole record is held back.
pub(super) async fn fuzz_body(kafka: &Kafka, bytes: &Bytes, chunk: usize) {
    if let Ok(entries) = batch_entries(bytes) {
        for (_, record) in entries {
            let _ = prepare(kafka, "t", record, 0).await;
        }
    }
    // The loop of `read_records`, with `submit` replaced by `prepare` (no producer).
    let mut buf: Vec<u8> = Vec::new();
    let mut ends = RecordEnds::default();
    let mut chunks = bytes.chunks(chunk.max(1)).peekable();
    while let Some(piece) = chunks.next() {
        buf.extend_from_slice(piece);
        let ended = chunks.peek().is_none();
        if ends.advance(&buf) || ended {
            let mut parsed = serde_json::Deserializer::from_slice(&buf).into_iter::<Value>();
            let mut consumed = 0;
            loop {
                match parsed.next() {
                    Some(Ok(value)) => {
                        consumed = parsed.byte_offset();
                        if let Ok(record) = serde_json::from_value::<ProduceRecord>(value) {
                            let _ = prepare(kafka, "t", record, 0).await;
                        }
                    }
                    Some(Err(e)) if e.is_eof() && !ended => break,
                    Some(Err(_)) => return,
                    None => break,
                }
            }
            buf.drain(..consumed);
            ends.consumed(consumed);
        } else {
            let next = serde_json::Deserializer::from_slice(&buf).into_iter::<Value>().next();
            assert!(
                !matches!(next, Some(Ok(Value::Object(_) | Value::Array(_)))),
                "a whole record waits for more bytes: {:?}",
                String::from_utf8_lossy(&buf)
            );
        }
        if buf.len() > MAX_RECORD_JSON_BYTES {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::{Data, RecordEnds, check_fields, valid_entry_id};

    fn data(value: serde_json::Value) -> Data {
        serde_json::from_value(value).expect("a key or value")
    }

    #[test]
    fn schema_fields_are_held_to_kafka_rests_combinations() {
        for ok in [
            json!({"type": "AVRO", "schema": "\"string\"", "data": "x"}),
            json!({"schema_id": 3, "data": 1}),
            json!({"schema_version": -1, "subject": "s", "data": 1}),
            json!({"subject_name_strategy": "RECORD_NAME", "schema_id": 3, "data": 1}),
            json!({"type": "BINARY", "data": "eA=="}),
        ] {
            assert!(check_fields("value", &data(ok.clone())).is_ok(), "{ok}");
        }
        for refused in [
            json!({"type": "AVRO", "schema_id": 3, "data": 1}),
            json!({"type": "PROTOBUF", "schema_version": 1, "data": 1}),
            json!({"type": "JSONSCHEMA", "data": 1}),
            json!({"schema_id": 3, "schema": "\"string\"", "data": 1}),
            json!({"schema_version": 1, "schema": "\"string\"", "data": 1}),
            json!({"subject": "s", "subject_name_strategy": "TOPIC_NAME", "data": 1}),
        ] {
            let e = check_fields("value", &data(refused.clone())).expect_err("refused");
            assert_eq!(e.status, 400, "{refused}");
        }
    }

    #[test]
    fn batch_entry_ids_are_short_words() {
        assert!(valid_entry_id("a-1_B"));
        assert!(valid_entry_id(&"x".repeat(80)));
        assert!(!valid_entry_id(""));
        assert!(!valid_entry_id(&"x".repeat(81)));
        assert!(!valid_entry_id("a b"));
        assert!(!valid_entry_id("é"));
    }

    /// Feeds `text` one byte at a time; returns the byte counts after which a record may have ended.
    fn ends_after_each_byte(text: &str) -> Vec<usize> {
        let mut ends = RecordEnds::default();
        let mut buf = Vec::new();
        let mut found = Vec::new();
        for &b in text.as_bytes() {
            buf.push(b);
            if ends.advance(&buf) {
                found.push(buf.len());
            }
        }
        found
    }

    #[test]
    fn only_the_closing_brace_of_a_top_level_record_ends_it() {
        let record = r#"{"value": {"type": "JSON", "data": {"s": "a } \" ] {", "n": [1, [2]]}}}"#;
        assert_eq!(ends_after_each_byte(record), vec![record.len()]);
        let two = format!("{record}\n  {record}");
        assert_eq!(ends_after_each_byte(&two), vec![record.len(), two.len()]);
    }

    #[test]
    fn top_level_scalars_are_handed_to_the_parser() {
        // Not records, but the parser must see them to report them.
        assert_eq!(ends_after_each_byte(r#" 12 "x""#), vec![2, 3, 5]);
    }

    #[test]
    fn consumed_bytes_move_the_scan_position() {
        let mut ends = RecordEnds::default();
        let mut buf = br#"{"a": 1}{"b": "#.to_vec();
        assert!(ends.advance(&buf));
        buf.drain(..8);
        ends.consumed(8);
        buf.extend_from_slice(b"2}");
        assert!(ends.advance(&buf));
        assert_eq!(ends.depth, 0);
    }
}
