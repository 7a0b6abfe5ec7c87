//! Response framing: size prefix, response header (v0, or v1 with tagged
//! fields for flexible versions; ApiVersions always v0), body encoded at the
//! version the client asked for.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::api_versions_response::{ApiVersion, FinalizedFeatureKey, SupportedFeatureKey};
use kafka_protocol::messages::{ApiKey, ApiVersionsResponse};
use kafka_protocol::protocol::Encodable;

use crate::apis::{FEATURES, SUPPORTED_APIS};

/// A response body could not be encoded (a handler bug: a field set that the
/// requested version lacks).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodeError(pub String);

impl std::fmt::Display for EncodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cannot encode response: {}", self.0)
    }
}

impl std::error::Error for EncodeError {}

/// Encodes a complete response frame, size prefix included.
pub fn encode_response<T: Encodable>(
    api_key: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &T,
) -> Result<Bytes, EncodeError> {
    let header_version = api_key.response_header_version(version);
    let version = crate::apis::codec_version(api_key, version);
    let size_hint = body.compute_size(version).map_err(|e| EncodeError(e.to_string()))?;
    let mut buf = BytesMut::with_capacity(4 + 5 + size_hint);
    buf.put_i32(0);
    buf.put_i32(correlation_id);
    if header_version >= 1 {
        buf.put_u8(0); // no tagged fields
    }
    body.encode(&mut buf, version).map_err(|e| EncodeError(e.to_string()))?;
    let len = (buf.len() - 4) as i32;
    buf[0..4].copy_from_slice(&len.to_be_bytes());
    Ok(buf.freeze())
}

/// The ApiVersions body: every supported API and `error_code`.
pub fn api_versions_body(error_code: i16) -> ApiVersionsResponse {
    ApiVersionsResponse::default().with_error_code(error_code).with_api_keys(
        SUPPORTED_APIS
            .iter()
            .map(|a| ApiVersion::default().with_api_key(a.key as i16).with_min_version(a.min).with_max_version(a.max))
            .collect(),
    )
}

/// Adds the supported and finalized features (ApiVersions v3+ tagged fields).
pub fn with_features(body: ApiVersionsResponse) -> ApiVersionsResponse {
    let supported = FEATURES
        .iter()
        .map(|f| {
            SupportedFeatureKey::default()
                .with_name(kafka_protocol::protocol::StrBytes::from_static_str(f.name))
                .with_min_version(f.min)
                .with_max_version(f.max)
        })
        .collect();
    let finalized = FEATURES
        .iter()
        .map(|f| {
            FinalizedFeatureKey::default()
                .with_name(kafka_protocol::protocol::StrBytes::from_static_str(f.name))
                .with_min_version_level(f.finalized)
                .with_max_version_level(f.finalized)
        })
        .collect();
    body.with_supported_features(supported).with_finalized_features_epoch(0).with_finalized_features(finalized)
}

/// The answer to an ApiVersions request whose version is above what we serve:
/// header v0 and a v0-shaped body with UNSUPPORTED_VERSION and the ranges, so
/// the client can retry with a version it shares with us.
pub fn api_versions_fallback(correlation_id: i32) -> Bytes {
    let body = api_versions_body(kafka_protocol::error::ResponseError::UnsupportedVersion.code());
    // v0 never fails to encode this body.
    encode_response(ApiKey::ApiVersions, 0, correlation_id, &body).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::protocol::Decodable;

    #[test]
    fn api_versions_always_uses_header_v0() {
        let body = api_versions_body(0);
        let frame = encode_response(ApiKey::ApiVersions, 3, 9, &body).expect("encode");
        let mut rest = frame.slice(8..);
        let decoded = ApiVersionsResponse::decode(&mut rest, 3).expect("decode v3 body right after correlation id");
        assert_eq!(decoded.api_keys.len(), SUPPORTED_APIS.len());
        assert_eq!(i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]), 9);
    }

    #[test]
    fn v3_answers_carry_group_version() {
        let body = with_features(api_versions_body(0));
        let frame = encode_response(ApiKey::ApiVersions, 3, 1, &body).expect("encode");
        let mut rest = frame.slice(8..);
        let decoded = ApiVersionsResponse::decode(&mut rest, 3).expect("decode");
        assert_eq!(decoded.supported_features[0].name.as_str(), "group.version");
        assert_eq!(decoded.supported_features[0].max_version, 1);
        assert_eq!(decoded.finalized_features[0].max_version_level, 1);
    }

    #[test]
    fn fallback_is_a_v0_body_with_error_35() {
        let frame = api_versions_fallback(5);
        let mut rest = frame.slice(8..);
        let decoded = ApiVersionsResponse::decode(&mut rest, 0).expect("v0 body");
        assert_eq!(decoded.error_code, 35);
        assert!(!decoded.api_keys.is_empty());
    }

    #[test]
    fn flexible_responses_carry_header_tags() {
        let body = kafka_protocol::messages::MetadataResponse::default();
        let frame = encode_response(ApiKey::Metadata, 12, 1, &body).expect("encode");
        assert_eq!(frame[8], 0, "empty tagged fields after correlation id");
    }
}
