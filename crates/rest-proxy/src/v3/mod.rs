//! The v3 API (Confluent's kafka-rest v3). Every route is served under `/v3`
//! (REST Proxy) and `/kafka/v3` (Confluent Server and Confluent Cloud);
//! `self` and `related` links use the prefix and host of the request they
//! answer. One module per resource family, each with its `routes()`.

mod brokers;
mod clusters;
mod configs;
mod groups;
mod partitions;
mod records;
mod topics;

use std::sync::Arc;

use axum::Router;
use axum::extract::OriginalUri;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::{Value, json};

use crate::error::RestError;
use crate::kafka::Kafka;

pub(crate) type AppState = Arc<Kafka>;

/// Where links point: scheme, the request's Host, and the prefix it used.
pub(crate) struct Links {
    pub(crate) base: String,
}

impl Links {
    pub(crate) fn of(headers: &HeaderMap, uri: &OriginalUri) -> Links {
        let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost");
        let prefix = if uri.path().starts_with("/kafka/v3") { "/kafka/v3" } else { "/v3" };
        Links { base: format!("http://{host}{prefix}") }
    }

    pub(crate) fn cluster(&self, cluster_id: &str) -> String {
        format!("{}/clusters/{cluster_id}", self.base)
    }

    pub(crate) fn related(&self, cluster_id: &str, path: &str) -> Value {
        json!({"related": format!("{}/{path}", self.cluster(cluster_id))})
    }
}

pub(crate) fn list(kind: &str, self_url: String, data: Vec<Value>) -> Value {
    json!({"kind": kind, "metadata": {"self": self_url, "next": null}, "data": data})
}

pub(crate) fn answer(result: Result<Value, RestError>) -> Response {
    match result {
        Ok(v) => axum::Json(v).into_response(),
        Err(e) => e.into_response(),
    }
}

/// Every v3 route, relative to the prefix.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .merge(clusters::routes())
        .merge(topics::routes())
        .merge(configs::routes())
        .merge(partitions::routes())
        .merge(brokers::routes())
        .merge(groups::routes())
        .merge(records::routes())
}

/// Fuzzing entry (see `crate::fuzzing`): `kind % 4` picks the body: create
/// topic, configs, partition count, produce records (streamed in chunks of
/// `chunk` bytes).
pub(crate) async fn fuzz_body(kafka: &Kafka, kind: u8, bytes: &Bytes, chunk: usize) {
    match kind % 4 {
        0 => topics::fuzz_body(bytes),
        1 => configs::fuzz_body(bytes),
        2 => partitions::fuzz_body(bytes),
        _ => records::fuzz_body(kafka, bytes, chunk).await,
    }
}
