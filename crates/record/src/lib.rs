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

/// Largest decompressed size of one batch the broker accepts from a producer
/// (and so the most any batch in a log expands to). Validation streams and
/// holds none of it; recompression holds it once.
pub const DECOMPRESSED_BATCH_BYTES_MAX: usize = 128 << 20;

/// Largest batch, as stored, that a log will append or read back: a batch
/// whose records expand to at most [`DECOMPRESSED_BATCH_BYTES_MAX`], plus room
/// for a codec's framing of incompressible data. A length read from disk
/// beyond it is corruption, refused before anything is allocated for it.
pub const STORED_BATCH_BYTES_MAX: usize = DECOMPRESSED_BATCH_BYTES_MAX + (8 << 20);
pub use compression::Compression;
pub use error::BatchError;
