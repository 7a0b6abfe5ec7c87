//! Cross-checks every request layout against the `kafka-protocol` encoder: a
//! request with populated nested arrays, encoded at each supported version,
//! must be accepted and fully consumed by the walk.

use super::*;
use crate::apis::SUPPORTED_APIS;
use crate::samples::sample_body;
use bytes::BytesMut;
use kafka_protocol::protocol::StrBytes;

#[test]
fn every_supported_version_walks_exactly() {
    for api in SUPPORTED_APIS {
        for v in api.min_decodable..=api.max {
            let body = sample_body(api.key, v);
            let (fields, flexible_from) = layout(api.key).expect("layout");
            let mut w =
                Walker { buf: &body, version: v, flexible: v >= flexible_from, elements: 0, elements_max: 1000 };
            w.walk_struct(fields).unwrap_or_else(|e| panic!("{:?} v{v}: {e}", api.key));
            assert!(w.buf.is_empty(), "{:?} v{v}: {} bytes left over", api.key, w.buf.len());
        }
    }
}

#[test]
fn every_truncation_is_refused_without_panic() {
    for api in SUPPORTED_APIS {
        for v in api.min_decodable..=api.max {
            let body = sample_body(api.key, v);
            for cut in 0..body.len() {
                // A prefix may be a valid shorter body only if it ends exactly at a field
                // boundary of a null/empty collection; it must never panic.
                let _ = check_request(api.key, v, &body[..cut], 1000);
            }
        }
    }
}

#[test]
fn huge_counts_are_refused() {
    // Metadata v1: topics array claiming i32::MAX entries in a 5-byte body.
    let body = [0x7f, 0xff, 0xff, 0xff, 0x00];
    assert!(matches!(check_request(ApiKey::Metadata, 1, &body, 1000), Err(ShapeError::BadLength(..))));
    // Negative (other than -1) counts.
    let body = [0xff, 0xff, 0xff, 0xfe];
    assert!(matches!(check_request(ApiKey::Metadata, 1, &body, 1000), Err(ShapeError::BadLength(..))));
    // Flexible: compact array claiming 2^32-2 entries.
    let body = [0xff, 0xff, 0xff, 0xff, 0x0f, 0x00];
    assert!(matches!(check_request(ApiKey::Metadata, 12, &body, 1000), Err(ShapeError::BadLength(..))));
}

#[test]
fn element_budget_is_enforced() {
    // Metadata v1 with 10 empty-named topics: 4 + 10 * 2 bytes.
    let mut body = 10i32.to_be_bytes().to_vec();
    for _ in 0..10 {
        body.extend_from_slice(&0i16.to_be_bytes());
    }
    assert!(check_request(ApiKey::Metadata, 1, &body, 10).is_ok());
    assert_eq!(check_request(ApiKey::Metadata, 1, &body, 9), Err(ShapeError::TooManyElements(9)));
}

/// Writes the seed corpus of the `request_decode` fuzz target: every served
/// API at every version, plus a few malformed frames.
#[test]
#[ignore = "regenerates fuzz/corpus/request_decode"]
fn write_fuzz_corpus() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/request_decode");
    std::fs::create_dir_all(&dir).expect("corpus dir");
    for api in SUPPORTED_APIS {
        for v in api.min_decodable..=api.max {
            let mut frame = BytesMut::new();
            let header = kafka_protocol::messages::RequestHeader::default()
                .with_request_api_key(api.key as i16)
                .with_request_api_version(v)
                .with_correlation_id(1)
                .with_client_id(Some(StrBytes::from_static_str("fuzz")));
            kafka_protocol::protocol::encode_request_header_into_buffer(&mut frame, &header).expect("header");
            frame.extend_from_slice(&sample_body(api.key, v));
            std::fs::write(dir.join(format!("{:?}-v{v}", api.key)), &frame).expect("write");
        }
    }
    let huge_count = [0u8, 3, 0, 1, 0, 0, 0, 1, 0xff, 0xff, 0x7f, 0xff, 0xff, 0xff];
    std::fs::write(dir.join("metadata-v1-huge-count"), huge_count).expect("write");
    std::fs::write(dir.join("short-header"), [0u8, 18]).expect("write");
}

/// The group APIs' layouts at every version they will be served at.
#[test]
fn group_api_layouts_walk_exactly() {
    let group_apis = [
        (ApiKey::FindCoordinator, 0, 6),
        (ApiKey::JoinGroup, 0, 9),
        (ApiKey::Heartbeat, 0, 4),
        (ApiKey::LeaveGroup, 0, 5),
        (ApiKey::SyncGroup, 0, 5),
        (ApiKey::OffsetCommit, 2, 9),
        (ApiKey::OffsetFetch, 1, 9),
        (ApiKey::DescribeGroups, 0, 5),
        (ApiKey::ListGroups, 0, 5),
        (ApiKey::DeleteGroups, 0, 2),
        (ApiKey::OffsetDelete, 0, 0),
        (ApiKey::ConsumerGroupHeartbeat, 0, 1),
        (ApiKey::ConsumerGroupDescribe, 0, 1),
    ];
    for (key, min, max) in group_apis {
        for v in min..=max {
            let body = sample_body(key, v);
            let (fields, flexible_from) = layout(key).expect("layout");
            let mut w =
                Walker { buf: &body, version: v, flexible: v >= flexible_from, elements: 0, elements_max: 1000 };
            w.walk_struct(fields).unwrap_or_else(|e| panic!("{key:?} v{v}: {e}"));
            assert!(w.buf.is_empty(), "{key:?} v{v}: {} bytes left over", w.buf.len());
        }
    }
}
