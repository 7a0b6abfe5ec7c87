//! Why a batch or record was rejected.

use thiserror::Error;

/// A batch failed validation. The broker maps each variant to a Kafka error
/// code (CORRUPT_MESSAGE, INVALID_RECORD, UNSUPPORTED_FOR_MESSAGE_FORMAT, ...).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BatchError {
    /// The bytes end before the batch does.
    #[error("record batch is truncated")]
    Truncated,
    /// Magic byte other than 2.
    #[error("record batch magic {0} is not supported; only magic 2 (Kafka 0.11+) is")]
    UnsupportedMagic(i8),
    /// `batchLength` is too small for a header, or disagrees with the bytes given.
    #[error("record batch length {0} is invalid")]
    InvalidLength(i32),
    /// The stored CRC-32C does not match the bytes.
    #[error("record batch CRC mismatch (stored {stored:#010x}, computed {computed:#010x})")]
    CrcMismatch {
        /// CRC in the header.
        stored: u32,
        /// CRC computed over the bytes.
        computed: u32,
    },
    /// Compression bits 5-7.
    #[error("compression codec {0} is not defined")]
    UnsupportedCompression(i16),
    /// zstd in a request version that predates it.
    #[error("zstd compression needs Produce v7 or later")]
    ZstdNotAllowed,
    /// The codec could not decode the payload.
    #[error("cannot decompress records: {0}")]
    Decompression(String),
    /// Decompressed records would exceed the broker's limit.
    #[error("decompressed records exceed {0} bytes")]
    DecompressedTooLarge(usize),
    /// A record inside the batch is malformed or breaks a topic rule.
    #[error("record {index} is invalid: {reason}")]
    InvalidRecord {
        /// Index of the record within the batch.
        index: usize,
        /// What is wrong.
        reason: String,
    },
    /// The batch-level fields contradict the records (count, offsets, control bits).
    #[error("record batch is invalid: {0}")]
    InvalidBatch(String),
    /// Well-formed records that break a topic rule (a null key on a compacted
    /// topic, a timestamp outside the window). Every such record is listed,
    /// as Kafka's `record_errors` does.
    #[error("{} record(s) rejected; first: record {}: {}", .0.len(), .0.first().map_or(0, |p| p.index), .0.first().map_or("", |p| p.reason.as_str()))]
    RecordsRejected(Vec<RecordProblem>),
}

/// One record that breaks a topic rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordProblem {
    /// Index of the record within the batch.
    pub index: usize,
    /// Whether it is the timestamp (INVALID_TIMESTAMP) rather than the key.
    pub timestamp: bool,
    /// What is wrong.
    pub reason: String,
}
