//! ApiVersions (key 18): the served API table. The response header is always
//! v0 (handled by the protocol crate); versions above ours get the v0 fallback
//! before decoding (see `handle_frame`).

use kafka_protocol::messages::{ApiKey, ApiVersionsRequest};
use tributary_protocol::{ErrorCode, RequestHeader, api_versions_body, with_features};

use super::{Reply, respond};

/// Kafka's rule for client software names and versions (KIP-511).
fn valid_software_field(s: &str) -> bool {
    let bytes = s.as_bytes();
    let edge = |b: u8| b.is_ascii_alphanumeric();
    match bytes {
        [] => false,
        [one] => edge(*one),
        [first, middle @ .., last] => {
            edge(*first) && edge(*last) && middle.iter().all(|&b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        }
    }
}

pub(super) fn handle(header: &RequestHeader, request: ApiVersionsRequest) -> Reply {
    let valid = header.api_version < 3
        || (valid_software_field(&request.client_software_name)
            && valid_software_field(&request.client_software_version));
    let body = if valid && header.api_version >= 3 {
        with_features(api_versions_body(0))
    } else if valid {
        api_versions_body(0)
    } else {
        api_versions_body(ErrorCode::InvalidRequest.code()).with_api_keys(Vec::new())
    };
    respond(ApiKey::ApiVersions, header, &body)
}

#[cfg(test)]
mod tests {
    use super::valid_software_field;

    #[test]
    fn software_names_follow_kip_511() {
        assert!(valid_software_field("librdkafka"));
        assert!(valid_software_field("2.16.1"));
        assert!(valid_software_field("apache-kafka-java"));
        assert!(valid_software_field("a"));
        assert!(!valid_software_field(""));
        assert!(!valid_software_field("-x"));
        assert!(!valid_software_field("x."));
        assert!(!valid_software_field("a b"));
    }
}
