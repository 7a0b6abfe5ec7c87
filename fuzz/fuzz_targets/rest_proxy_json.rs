//! Any bytes, as REST Proxy request bodies (v2 and v3): reading and
//! checking them must never panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    tributary_rest_proxy::fuzzing::request_body(data);
});
