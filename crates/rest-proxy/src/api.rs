//! The HTTP API: v3 under `/v3` and `/kafka/v3`, v2 at the root; anything
//! else is a 404 in kafka-rest's error shape.

use std::sync::Arc;

use axum::Router;
use axum::extract::OriginalUri;
use axum::response::{IntoResponse, Response};

use crate::error::RestError;
use crate::kafka::Kafka;
use crate::{v2, v3};

async fn not_found(uri: OriginalUri) -> Response {
    RestError::status(404, format!("HTTP 404 Not Found: {}", uri.path())).into_response()
}

/// The HTTP API.
pub fn router(kafka: Arc<Kafka>) -> Router {
    Router::new()
        .nest("/v3", v3::routes())
        .nest("/kafka/v3", v3::routes())
        .merge(v2::routes())
        .fallback(not_found)
        .with_state(kafka)
}
