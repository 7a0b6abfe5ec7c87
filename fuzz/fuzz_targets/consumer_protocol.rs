//! Any bytes, as consumer protocol subscription or assignment bytes
//! (JoinGroup metadata, SyncGroup assignments): decoding must never panic
//! nor allocate beyond what the bytes justify.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    tributary_protocol::fuzzing::consumer_protocol(data);
});
