//! v2 produce: `POST /topics/{t}` and `/topics/{t}/partitions/{p}` with
//! binary, json or avro embedded data, through the proxy's producer. A
//! record's own `partition` wins over the path's, as in kafka-rest.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, header};
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Value, json};
use tributary_client::RecordSpec;

use super::{bad, reply, required, unprocessable};
use crate::consumer::Format;
use crate::error::RestError;
use crate::kafka::{Kafka, topic_in};
use crate::producer::{delivery_error, now_ms};
use crate::schemas::SchemaRequest;
use crate::v3::AppState;

/// Most records in one v2 produce request.
const MAX_RECORDS: usize = 100_000;

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

/// kafka-rest's v2 `ProduceRequest`; `records` must not be empty.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProduceBody {
    #[serde(default, deserialize_with = "crate::body::opt_text")]
    key_schema: Option<String>,
    #[serde(default, deserialize_with = "crate::body::opt_int")]
    key_schema_id: Option<i32>,
    #[serde(default, deserialize_with = "crate::body::opt_text")]
    value_schema: Option<String>,
    #[serde(default, deserialize_with = "crate::body::opt_int")]
    value_schema_id: Option<i32>,
    #[serde(default, deserialize_with = "crate::body::list")]
    records: Vec<ProduceRecord>,
}

/// One record; its `partition` wins over the one in the path, as in kafka-rest.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProduceRecord {
    #[serde(default)]
    key: Value,
    #[serde(default)]
    value: Value,
    #[serde(default, deserialize_with = "crate::body::opt_int")]
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
        // kafka-rest's answers: 400 for data that is not base64, naming the data.
        Format::Binary => match data {
            Value::String(s) => BASE64
                .decode(s)
                .map(|b| (Some(b), None))
                .map_err(|_| RestError::status(400, format!("Bad Request: data={data} is not a valid base64 string."))),
            _ => Err(RestError::status(400, format!("Bad Request: data={data} is not a base64 string."))),
        },
        Format::Json => Ok((Some(serde_json::to_vec(data).map_err(|e| RestError::status(400, e.to_string()))?), None)),
        Format::Avro => {
            let Some(schemas) = kafka.schemas.as_ref() else {
                return Err(unprocessable(422, "avro needs a schema registry, and this REST proxy has none"));
            };
            let (text, id) = schema;
            if text.is_none() && id.is_none() {
                // kafka-rest's codes: 42201 for a key, 42202 for a value.
                let code = if is_key { 42201 } else { 42202 };
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

/// The embedded format and the body of a produce request, checked as far
/// as can be without the cluster.
fn read_request(headers: &HeaderMap, bytes: &Bytes) -> Result<(Format, ProduceBody), RestError> {
    let format = request_format(headers)?;
    let request: ProduceBody = required(bytes)?;
    if request.records.is_empty() {
        return Err(unprocessable(422, "records must not be empty"));
    }
    if request.records.len() > MAX_RECORDS {
        return Err(bad(42200, format!("A request holds at most {MAX_RECORDS} records")));
    }
    Ok((format, request))
}

async fn produce_v2(
    kafka: AppState,
    topic: String,
    partition: Option<i32>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<Value, RestError> {
    let (format, request) = read_request(&headers, &bytes)?;
    let metadata = kafka.metadata(Some(vec![topic.clone()])).await?;
    // v2 names an unknown topic 40401 where v3 says 40403.
    let count = match topic_in(&metadata, &topic) {
        Ok(t) => t.partitions.len() as i32,
        Err(e) if e.error_code == 40403 => {
            return Err(RestError { status: 404, error_code: 40401, message: format!("Topic {topic} not found.") });
        }
        Err(e) => return Err(e),
    };
    if let Some(p) = partition
        && !(0..count).contains(&p)
    {
        return Err(RestError { status: 404, error_code: 40402, message: format!("Partition {p} not found.") });
    }
    let now = now_ms();
    let (mut key_schema_id, mut value_schema_id) = (None, None);
    let mut pending = Vec::with_capacity(request.records.len());
    for r in &request.records {
        let key_schema = (&request.key_schema, request.key_schema_id);
        let value_schema = (&request.value_schema, request.value_schema_id);
        let (key, kid) = embedded(&kafka, &topic, format, true, key_schema, &r.key).await?;
        let (value, vid) = embedded(&kafka, &topic, format, false, value_schema, &r.value).await?;
        key_schema_id = key_schema_id.or(kid);
        value_schema_id = value_schema_id.or(vid);
        let target = r.partition.or(partition);
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
        offsets.push(match delivery.wait().await {
            Ok(d) => json!({"partition": d.partition, "offset": d.offset, "error_code": null, "error": null}),
            Err(e) => {
                let e = delivery_error(&e);
                json!({"partition": null, "offset": null, "error_code": e.error_code, "error": e.message})
            }
        });
    }
    Ok(json!({"key_schema_id": key_schema_id, "value_schema_id": value_schema_id, "offsets": offsets}))
}

pub(super) async fn produce_to_topic(
    State(kafka): State<AppState>,
    Path(topic): Path<String>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Response {
    reply(produce_v2(kafka, topic, None, headers, bytes).await.map(Some))
}

pub(super) async fn produce_to_partition(
    State(kafka): State<AppState>,
    Path((topic, partition)): Path<(String, i32)>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Response {
    reply(produce_v2(kafka, topic, Some(partition), headers, bytes).await.map(Some))
}

/// Fuzzing entry (see `crate::fuzzing`): `bytes` as a produce body sent with
/// `content_type`, read and every key and value decoded as `produce_v2`
/// does before it talks to the cluster.
pub(super) async fn fuzz_body(kafka: &Kafka, content_type: &str, bytes: &Bytes) {
    let mut headers = HeaderMap::new();
    if let Ok(v) = axum::http::HeaderValue::from_str(content_type) {
        headers.insert(header::CONTENT_TYPE, v);
    }
    let Ok((format, request)) = read_request(&headers, bytes) else { return };
    for r in &request.records {
        let key_schema = (&request.key_schema, request.key_schema_id);
        let value_schema = (&request.value_schema, request.value_schema_id);
        let _ = embedded(kafka, "t", format, true, key_schema, &r.key).await;
        let _ = embedded(kafka, "t", format, false, value_schema, &r.value).await;
    }
}
