//! The v2 API (kafka-rest v2): produce with embedded formats and stateful
//! consumer instances. Served at the root (`/topics/...`, `/consumers/...`).
//!
//! Embedded formats come from the request's `Content-Type` when producing
//! (`application/vnd.kafka.{binary,json,avro,jsonschema,protobuf}.v2+json`;
//! plain `application/json` and `application/octet-stream` mean binary, as in
//! kafka-rest) and from the instance's `format` when consuming; answers are
//! `application/vnd.kafka.v2+json` or `application/vnd.kafka.{format}.v2+json`.
//! Errors are `{"error_code", "message"}` with kafka-rest's v2 codes: 40401
//! topic, 40402 partition, 40403 consumer instance not found, 40601 not
//! acceptable, 40902 instance exists, 40903 subscription/assignment conflict,
//! 42201/42202 key/value schema missing, 42204 a consumer setting the
//! consumer cannot take, 400 embedded data that is not of its format (binary
//! that is not base64), 40801/42201 from the schema registry. Bodies are read as
//! kafka-rest reads them (`crate::body`): not JSON or a wrong type is 400,
//! an unknown field 422.

mod consumers;
mod produce;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use serde_json::Value;

use crate::error::RestError;
use crate::v3::AppState;

const V2_JSON: &str = "application/vnd.kafka.v2+json";

pub(crate) fn routes() -> Router<AppState> {
    let instance = "/consumers/{group}/instances/{instance}";
    Router::new()
        .route("/topics/{topic}", post(produce::produce_to_topic))
        .route("/topics/{topic}/partitions/{partition}", post(produce::produce_to_partition))
        .route("/consumers/{group}", post(consumers::create_instance))
        .route(instance, axum::routing::delete(consumers::delete_instance))
        .route(
            &format!("{instance}/subscription"),
            post(consumers::subscribe).get(consumers::subscription).delete(consumers::unsubscribe),
        )
        .route(&format!("{instance}/assignments"), post(consumers::assign).get(consumers::assignments))
        .route(&format!("{instance}/positions"), post(consumers::seek))
        .route(&format!("{instance}/positions/beginning"), post(consumers::seek_to_beginning))
        .route(&format!("{instance}/positions/end"), post(consumers::seek_to_end))
        .route(&format!("{instance}/records"), get(consumers::records))
        .route(&format!("{instance}/offsets"), post(consumers::commit).get(consumers::committed))
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

/// A 422 with kafka-rest's code for it (its constraint violations all answer 422).
fn unprocessable(error_code: u32, message: impl Into<String>) -> RestError {
    RestError { status: 422, error_code, message: message.into() }
}

/// A body the endpoint cannot do without (kafka-rest's `@NotNull`): none is a 422.
fn required<T: serde::de::DeserializeOwned>(bytes: &Bytes) -> Result<T, RestError> {
    crate::body::optional(bytes)?.ok_or_else(|| unprocessable(422, "The request body must not be empty."))
}

/// Fuzzing entry (see `crate::fuzzing`): `kind` picks a produce body (with
/// `content_type`) or a consumer instance body.
pub(crate) async fn fuzz_body(kafka: &crate::kafka::Kafka, kind: u8, content_type: &str, bytes: &Bytes) {
    match kind % 2 {
        0 => produce::fuzz_body(kafka, content_type, bytes).await,
        _ => consumers::fuzz_body(kind / 2, bytes),
    }
}
