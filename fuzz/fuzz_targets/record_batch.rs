//! Any bytes, as a records blob: batch iteration, validation (every codec)
//! and record parsing must never panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    tributary_record::fuzzing::record_batch(data);
});
