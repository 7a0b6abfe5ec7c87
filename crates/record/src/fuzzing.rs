//! Entry point shared by the `cargo fuzz` target and the corpus replay test.

use crate::batch::BatchIter;
use crate::records::RecordIter;
use crate::validate::{ValidationRules, validate_batch};

/// Parses `data` as a records blob: walks batches, validates each with both
/// key rules, and walks the records of uncompressed ones. Must never panic.
pub fn record_batch(data: &[u8]) {
    for item in BatchIter::new(data) {
        let Ok((header, bytes)) = item else { break };
        for require_keys in [false, true] {
            let rules = ValidationRules {
                require_keys,
                allow_zstd: true,
                decompressed_bytes_max: 1 << 20,
                timestamp_bounds: None,
            };
            let _ = validate_batch(bytes, &rules);
        }
        if header.compression().is_ok_and(|c| c == crate::Compression::None)
            && bytes.len() >= crate::batch::BATCH_HEADER_LEN
        {
            for record in RecordIter::new(&bytes[crate::batch::BATCH_HEADER_LEN..]) {
                if record.is_err() {
                    break;
                }
            }
        }
    }
}
