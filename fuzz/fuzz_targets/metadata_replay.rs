//! Any bytes, as a metadata snapshot and log: opening the store (snapshot
//! load, replay, torn-tail cut), an append and a reopen must never panic.
//! See `tributary_metadata::fuzzing`.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

/// This process's scratch directory, in memory when /dev/shm exists.
fn scratch() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let shm = PathBuf::from("/dev/shm");
        let base = if shm.is_dir() { shm } else { std::env::temp_dir() };
        base.join(format!("tributary-fuzz-metadata-{}", std::process::id()))
    })
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    tributary_metadata::fuzzing::metadata_replay(scratch(), data);
});
