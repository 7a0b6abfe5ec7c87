//! Any bytes, as the files of a metadata directory: opening the store
//! (migration, log scan, marks, snapshot load, replay), a proposal, a crash
//! and a reopen must never panic. See `tributary_metadata::fuzzing`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    tributary_metadata::fuzzing::metadata_replay(data);
});
