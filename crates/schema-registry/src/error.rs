//! Registry errors as Confluent's clients expect them: a body
//! `{"error_code": N, "message": "..."}` whose HTTP status is the first three
//! digits of the code (404 for 40401, 409 for 409, 422 for 42201, 500 for 50001).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::api::CONTENT_TYPE;

/// An error answered to a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// Confluent's error code.
    pub code: u32,
    /// What went wrong, for people.
    pub message: String,
}

impl ApiError {
    /// An error with `code` and `message`.
    pub fn new(code: u32, message: impl Into<String>) -> ApiError {
        ApiError { code, message: message.into() }
    }

    /// The HTTP status: the code itself when it is one, else its first three digits.
    pub fn status(&self) -> StatusCode {
        let status = if self.code < 1000 { self.code } else { self.code / 100 };
        u16::try_from(status)
            .ok()
            .and_then(|s| StatusCode::from_u16(s).ok())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// 40401.
    pub fn subject_not_found(subject: &str) -> ApiError {
        ApiError::new(40401, format!("Subject '{subject}' not found."))
    }

    /// 40402.
    pub fn version_not_found(subject: &str, version: &str) -> ApiError {
        ApiError::new(40402, format!("Version {version} not found for subject '{subject}'."))
    }

    /// 40403.
    pub fn schema_not_found() -> ApiError {
        ApiError::new(40403, "Schema not found")
    }

    /// 42201.
    pub fn invalid_schema(detail: impl std::fmt::Display) -> ApiError {
        ApiError::new(42201, format!("{detail}"))
    }

    /// 42202.
    pub fn invalid_version(version: &str) -> ApiError {
        ApiError::new(
            42202,
            format!(
                "The specified version '{version}' is not a valid version id. Allowed values are between [1, 2^31-1] and the string \"latest\""
            ),
        )
    }

    /// 42205.
    pub fn not_permitted(detail: impl Into<String>) -> ApiError {
        ApiError::new(42205, detail)
    }

    /// 50001.
    pub fn store(detail: impl std::fmt::Display) -> ApiError {
        ApiError::new(50001, format!("Error in the backend data store: {detail}"))
    }

    /// 50002.
    pub fn timeout(detail: impl std::fmt::Display) -> ApiError {
        ApiError::new(50002, format!("Operation timed out: {detail}"))
    }

    /// 50003.
    pub fn forwarding(detail: impl std::fmt::Display) -> ApiError {
        ApiError::new(50003, format!("Error while forwarding the request to the leader: {detail}"))
    }

    /// 50004.
    pub fn unknown_leader() -> ApiError {
        ApiError::new(
            50004,
            "Unknown leader: no schema registry instance is elected to write yet; retry in a few seconds, and check \
             that at least one instance has leader.eligibility=true",
        )
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.code)
    }
}

impl std::error::Error for ApiError {}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> ApiError {
        match e {
            crate::store::StoreError::Timeout { .. } => ApiError::timeout(e),
            other => ApiError::store(other),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({"error_code": self.code, "message": self.message});
        (self.status(), [(axum::http::header::CONTENT_TYPE, CONTENT_TYPE)], body.to_string()).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_the_first_three_digits() {
        assert_eq!(ApiError::new(40401, "x").status(), StatusCode::NOT_FOUND);
        assert_eq!(ApiError::new(409, "x").status(), StatusCode::CONFLICT);
        assert_eq!(ApiError::new(42201, "x").status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(ApiError::new(50004, "x").status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(ApiError::new(400, "x").status(), StatusCode::BAD_REQUEST);
    }
}
