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

/// Decodes `data[1..]` as a consumer protocol subscription (`data[0]` even)
/// or assignment (odd). Must never panic nor allocate beyond what the bytes
/// justify; what decodes at a known version must encode and decode back to
/// the same value.
///
/// # Panics
/// When a decoded value does not survive that round trip.
pub fn consumer_protocol(data: &[u8]) {
    use crate::consumer_protocol::{
        VERSION_MAX, decode_assignment, decode_subscription, encode_assignment, encode_subscription,
    };
    let Some((&which, bytes)) = data.split_first() else { return };
    if which % 2 == 0 {
        if let Ok(s) = decode_subscription(bytes)
            && s.version <= VERSION_MAX
        {
            let again = encode_subscription(&s).expect("a decoded subscription encodes");
            assert_eq!(decode_subscription(&again).as_ref(), Ok(&s), "subscription round trip");
        }
    } else if let Ok(a) = decode_assignment(bytes)
        && a.version <= VERSION_MAX
    {
        let again = encode_assignment(&a).expect("a decoded assignment encodes");
        assert_eq!(decode_assignment(&again).as_ref(), Ok(&a), "assignment round trip");
    }
}
