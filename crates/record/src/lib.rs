//! Kafka's RecordBatch v2 format, shared by the protocol layer and the log.
//!
//! Batches travel from the wire to disk and back unchanged (only the base
//! offset and leader epoch are rewritten), so this crate works on byte
//! slices: [`batch::BatchHeader`] is a view of the 61-byte header,
//! [`validate::validate_batch`] checks a produced batch end to end (CRC-32C,
//! codec, every record, keys, timestamps) without materialising its
//! decompressed form, and [`builder::BatchBuilder`] makes batches for tests,
//! tools and broker-side recompression.
//!
//! ```text
//!   wire bytes ──▶ BatchHeader::parse ──▶ validate_batch ──▶ set_base_offset ──▶ segment file
//!                                         (RecordScanner over
//!                                          Compression::reader)
//! ```

pub mod batch;
pub mod builder;
pub mod compression;
pub mod error;
pub mod fuzzing;
pub mod records;
pub mod validate;
pub mod varint;

pub use batch::{BatchHeader, BatchIter};
pub use compression::Compression;
pub use error::BatchError;
