//! Errors in kafka-rest's JSON shape, `{"error_code": N, "message": "..."}`,
//! with its codes: the HTTP status, or a more precise five-digit code
//! (40002 a request Kafka refused, 40403 an unknown topic or partition,
//! 50002 a retriable Kafka error).

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tributary_client::ClientError;

/// An error answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestError {
    /// HTTP status.
    pub status: u16,
    /// kafka-rest's error code.
    pub error_code: u32,
    /// What went wrong and, where it helps, what to do.
    pub message: String,
}

impl RestError {
    /// An error whose code is its HTTP status.
    pub fn status(status: u16, message: impl Into<String>) -> RestError {
        RestError { status, error_code: u32::from(status), message: message.into() }
    }

    /// 404 for a cluster this proxy does not serve.
    pub fn cluster_not_found(cluster_id: &str) -> RestError {
        RestError::status(404, format!("Cluster {cluster_id} cannot be found."))
    }

    /// 404 (40403) for a topic that does not exist.
    pub fn topic_not_found(topic: &str) -> RestError {
        RestError { status: 404, error_code: 40403, message: format!("This server does not host topic '{topic}'.") }
    }
}

/// Kafka error codes a request can cause by what it asks (kafka-rest answers 400 / 40002).
const BAD_REQUEST_CODES: &[i16] = &[
    17, // INVALID_TOPIC_EXCEPTION
    36, // TOPIC_ALREADY_EXISTS
    37, // INVALID_PARTITIONS
    38, // INVALID_REPLICATION_FACTOR
    39, // INVALID_REPLICA_ASSIGNMENT
    40, // INVALID_CONFIG
    42, // INVALID_REQUEST
    44, // POLICY_VIOLATION
];

impl From<ClientError> for RestError {
    fn from(e: ClientError) -> RestError {
        RestError::from_client(&e)
    }
}

impl RestError {
    /// What a client error means in kafka-rest's codes.
    pub fn from_client(e: &ClientError) -> RestError {
        let message = e.to_string();
        match e.kafka() {
            Some(k) if k.code == 3 => RestError { status: 404, error_code: 40403, message },
            Some(k) if BAD_REQUEST_CODES.contains(&k.code) => RestError { status: 400, error_code: 40002, message },
            Some(k) if k.is_retriable() => RestError { status: 500, error_code: 50002, message },
            Some(_) => RestError { status: 500, error_code: 50001, message },
            // The cluster could not be reached or answered nonsense: retrying may help.
            None => RestError { status: 500, error_code: 50002, message },
        }
    }
}

impl IntoResponse for RestError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, Json(json!({"error_code": self.error_code, "message": self.message}))).into_response()
    }
}
