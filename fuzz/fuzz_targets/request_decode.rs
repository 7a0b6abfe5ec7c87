//! Any bytes, as a request frame: decoding must neither panic nor allocate
//! beyond what the bytes justify (run with -malloc_limit_mb).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    tributary_protocol::fuzzing::request_decode(data);
});
