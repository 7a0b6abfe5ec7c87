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
    /// A record timestamp is outside the topic's accepted window.
    #[error("record {index} timestamp {timestamp} is out of range: {reason}")]
    InvalidTimestamp {
        /// Index of the record within the batch.
        index: usize,
        /// The offending timestamp.
        timestamp: i64,
        /// Which bound it broke.
        reason: String,
    },
}
