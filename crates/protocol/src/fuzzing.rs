//! Entry points shared by the `cargo fuzz` targets and the corpus replay
//! tests, so `cargo test` exercises every corpus file on every run.

use bytes::Bytes;

use crate::request::decode_request;

/// Element budget used when fuzzing (smaller than the broker's, same code).
const FUZZ_ELEMENTS_MAX: usize = 100_000;

/// Decodes `data` as a request frame (without its size prefix). Must never
/// panic nor allocate beyond what the bytes justify.
pub fn request_decode(data: &[u8]) {
    let _ = decode_request(Bytes::copy_from_slice(data), FUZZ_ELEMENTS_MAX);
}
