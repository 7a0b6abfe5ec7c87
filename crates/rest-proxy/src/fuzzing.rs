//! Entry point shared by the `rest_proxy_json` fuzz target and its corpus
//! replay test: request bodies as the v2 and v3 handlers read and check
//! them before they talk to Kafka (serde types, base64 and JSON data, RFC
//! 3339 timestamps, Content-Type formats, topic patterns, config
//! operations), and the reader of streamed `records` requests.
//!
//! Input: `selector u8 | rest`. `selector % 2 == 0`: a v3 body,
//! `(selector / 2) % 4` picking create topic, configs, partition count or
//! records; for records `rest` is `chunk u8 | body`, the stream arriving in
//! chunks of `chunk + 1` bytes. Otherwise a v2 body, `selector / 2` picking
//! produce (`rest` = `content_type_len u8 | content type | body`) or one of
//! the consumer instance bodies.
//!
//! No schema registry is configured, so AVRO data stops at "no registry";
//! nothing connects anywhere.

use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use tributary_client::ClientConfig;

use crate::kafka::Kafka;

/// A runtime and a proxy state that never connects (no request reaches Kafka).
fn state() -> &'static (tokio::runtime::Runtime, Arc<Kafka>) {
    static STATE: OnceLock<(tokio::runtime::Runtime, Arc<Kafka>)> = OnceLock::new();
    STATE.get_or_init(|| {
        let runtime =
            tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a current-thread runtime");
        let kafka = runtime.block_on(async { Kafka::new(ClientConfig::new("127.0.0.1:9"), None) });
        (runtime, kafka)
    })
}

/// Runs the harness on `data`.
///
/// # Panics
/// When the records stream reader holds back a record that arrived whole.
pub fn request_body(data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else { return };
    let (runtime, kafka) = state();
    let kind = selector / 2;
    if selector % 2 == 0 {
        let (chunk, body) = match rest.split_first() {
            Some((&c, body)) if kind % 4 == 3 => (usize::from(c) + 1, body),
            _ => (usize::MAX, rest),
        };
        let body = Bytes::copy_from_slice(body);
        runtime.block_on(crate::v3::fuzz_body(kafka, kind, &body, chunk));
    } else {
        let (content_type, body) = match rest.split_first() {
            Some((&n, tail)) if kind % 2 == 0 => {
                let n = usize::from(n).min(tail.len());
                (String::from_utf8_lossy(&tail[..n]).into_owned(), &tail[n..])
            }
            _ => (String::new(), rest),
        };
        let body = Bytes::copy_from_slice(body);
        runtime.block_on(crate::v2::fuzz_body(kafka, kind, &content_type, &body));
    }
}
