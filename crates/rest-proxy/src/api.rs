//! The HTTP API: v3 under `/v3` and `/kafka/v3`, v2 at the root; anything
//! else is a 404 in kafka-rest's error shape. Errors the HTTP layer makes by
//! itself (405 for a method a path does not serve, 413 for a body over the
//! limit) are rewritten into that shape too.

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, OriginalUri};
use axum::http::header;
use axum::response::{IntoResponse, Response};

use crate::error::RestError;
use crate::kafka::Kafka;
use crate::{v2, v3};

/// Largest request body read whole (v2 produce, `records:batch`, admin
/// bodies); a streamed v3 produce is read record by record instead.
pub const MAX_REQUEST_BYTES: usize = 64 * 1024 * 1024;

async fn not_found(uri: OriginalUri) -> Response {
    RestError::status(404, format!("HTTP 404 Not Found: {}", uri.path())).into_response()
}

/// An error answer that is not JSON yet gets kafka-rest's `{"error_code", "message"}`.
async fn json_errors(response: Response) -> Response {
    let status = response.status();
    let is_json =
        response.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.contains("json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let text = axum::body::to_bytes(response.into_body(), 64 * 1024).await.unwrap_or_default();
    let text = String::from_utf8_lossy(&text).trim().to_string();
    let message = if text.is_empty() { status.canonical_reason().unwrap_or("error").to_string() } else { text };
    RestError::status(status.as_u16(), format!("HTTP {}: {message}", status.as_u16())).into_response()
}

/// The HTTP API.
pub fn router(kafka: Arc<Kafka>) -> Router {
    Router::new()
        .nest("/v3", v3::routes())
        .nest("/kafka/v3", v3::routes())
        .merge(v2::routes())
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_REQUEST_BYTES))
        .layer(axum::middleware::map_response(json_errors))
        .with_state(kafka)
}
