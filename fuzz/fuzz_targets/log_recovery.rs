//! Any bytes, as a partition directory image: recovery, reads, an append,
//! close and reopen must never panic nor allocate by an unchecked on-disk
//! length (run with -malloc_limit_mb). See `tributary_log::fuzzing`.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

/// This process's scratch directory, in memory when /dev/shm exists.
fn scratch() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let shm = PathBuf::from("/dev/shm");
        let base = if shm.is_dir() { shm } else { std::env::temp_dir() };
        base.join(format!("tributary-fuzz-log-{}", std::process::id()))
    })
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    tributary_log::fuzzing::log_recovery(scratch(), data);
});
