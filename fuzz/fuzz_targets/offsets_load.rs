//! Any bytes, as `__consumer_offsets` records replayed at coordinator load:
//! decoding and rebuilding the groups must never panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    tributary_group::fuzzing::offsets_load(data);
});
