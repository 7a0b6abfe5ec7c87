//! Entry point shared by the `registry_json` fuzz target and its corpus
//! replay test: request bodies as the API reads them (register, lookup and
//! compatibility bodies; config and mode bodies), path segments, and the
//! records of the `_schemas` topic as the index applies them at start and
//! while following the topic.
//!
//! Input: `selector u8 | rest`. `selector % 4`: 0 a schema request body,
//! 1 a config body, 2 a mode body, all from `rest`; 3 `_schemas` records
//! from `rest`, each `key_len u16 BE | key | value_len i32 BE | value` (a
//! negative value length is a tombstone). `rest` is also read as a subject,
//! a version and an id, as the path segments are.
//!
//! Besides "no panic", the harness checks that every key it could read
//! reads back the same after being written again.

use axum::body::Bytes;

use crate::api::{mode_of_body, object_body, schema_request};
use crate::format::Key;
use crate::index::{Content, Index};
use crate::registry::{VersionSpec, check_subject, page, version_json};

/// One `_schemas` record: key and value (`None` = tombstone).
pub type RawRecord = (Vec<u8>, Option<Vec<u8>>);

/// Splits `_schemas` records.
pub fn parse_records(mut data: &[u8]) -> Vec<RawRecord> {
    let mut out = Vec::new();
    while data.len() >= 2 {
        let key_len = usize::from(u16::from_be_bytes([data[0], data[1]]));
        data = &data[2..];
        let key = data[..key_len.min(data.len())].to_vec();
        data = &data[key.len()..];
        if data.len() < 4 {
            out.push((key, None));
            break;
        }
        let value_len = i32::from_be_bytes([data[0], data[1], data[2], data[3]]);
        data = &data[4..];
        let value = usize::try_from(value_len).ok().map(|n| {
            let v = data[..n.min(data.len())].to_vec();
            data = &data[v.len()..];
            v
        });
        out.push((key, value));
    }
    out
}

/// Builds a selector-3 input from records, for seeds.
pub fn encode_records(records: &[RawRecord]) -> Vec<u8> {
    let mut out = vec![3];
    for (key, value) in records {
        out.extend_from_slice(&(key.len() as u16).to_be_bytes());
        out.extend_from_slice(key);
        match value {
            Some(v) => {
                out.extend_from_slice(&(v.len() as i32).to_be_bytes());
                out.extend_from_slice(v);
            }
            None => out.extend_from_slice(&(-1i32).to_be_bytes()),
        }
    }
    out
}

/// Runs the harness on `data`.
///
/// # Panics
/// When a key that was read does not read back the same after being
/// written again.
pub fn registry_json(data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else { return };
    let text = String::from_utf8_lossy(rest);
    let _ = check_subject(&text);
    let _ = VersionSpec::parse(&text);
    let body = || Ok(Bytes::copy_from_slice(rest));
    match selector % 4 {
        0 => {
            if let Ok(request) = schema_request(body()) {
                let _ = request.schema.as_deref().map(str::len);
            }
        }
        1 => {
            if let Ok(map) = object_body(body()) {
                let _ = crate::fields::config_update(map);
            }
        }
        2 => {
            let _ = mode_of_body(body());
        }
        _ => replay_records(rest),
    }
}

fn replay_records(rest: &[u8]) {
    let mut index = Index::default();
    for (key, value) in parse_records(rest) {
        let Ok(Some(key)) = Key::decode(&key) else { continue };
        assert_eq!(Key::decode(&key.encode()), Ok(Some(key.clone())), "key round trip");
        let _ = index.apply(&key, value.as_deref());
    }
    let _ = index.max_id();
    let subjects: Vec<String> = index.subjects().map(|(s, _)| s.clone()).collect();
    for subject in page(subjects, Some(0), Some(100)) {
        let _ = index.config_flag(&subject, "normalize");
        let _ = index.mode(Some(&subject));
        let versions: Vec<(i32, i32)> =
            index.versions(&subject).into_iter().flat_map(|vs| vs.values().map(|v| (v.version, v.id))).collect();
        for (version, id) in versions {
            let _ = index.referenced_by(&subject, version);
            if let Some(v) = index.schema_by_id(id) {
                let _ = version_json(v);
                let _ = index.id_of(&Content::of(v));
            }
            let _ = index.id_versions(id);
        }
    }
    let _ = index.config(None);
}
