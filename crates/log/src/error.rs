//! Errors of the log. The broker maps each to a Kafka error code.

use thiserror::Error;

/// Something the log could not do.
#[derive(Debug, Error)]
pub enum LogError {
    /// Reading or writing the disk failed (KAFKA_STORAGE_ERROR).
    #[error("storage error on {path}: {source}")]
    Io {
        /// The file or directory.
        path: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The partition went offline after an earlier unrecoverable I/O error.
    #[error("partition is offline after an earlier storage error: {0}")]
    Offline(String),
    /// Offset outside `[log_start_offset, high_watermark]` (OFFSET_OUT_OF_RANGE).
    #[error("offset {offset} is outside [{log_start_offset}, {end_offset}]")]
    OffsetOutOfRange {
        /// The requested offset.
        offset: i64,
        /// First readable offset.
        log_start_offset: i64,
        /// Last readable offset + 1.
        end_offset: i64,
    },
    /// A batch larger than a segment may hold (RECORD_LIST_TOO_LARGE).
    #[error("batch of {size} bytes exceeds segment.bytes={segment_bytes}")]
    BatchLargerThanSegment {
        /// Batch size.
        size: usize,
        /// The topic's segment.bytes.
        segment_bytes: u64,
    },
    /// A batch larger than any log holds (MESSAGE_TOO_LARGE).
    #[error("batch of {size} bytes exceeds the largest batch a log holds ({max} bytes)")]
    BatchTooLarge {
        /// Batch size.
        size: usize,
        /// The bound.
        max: usize,
    },
    /// The producer epoch is older than the last one seen (INVALID_PRODUCER_EPOCH).
    #[error("producer {producer_id} epoch {epoch} is older than the current epoch {current}")]
    InvalidProducerEpoch {
        /// Producer id.
        producer_id: i64,
        /// Epoch of the batch.
        epoch: i16,
        /// Epoch on record.
        current: i16,
    },
    /// A follower append refused; the log is unchanged.
    #[error("follower append refused: {0}")]
    FollowerAppend(#[from] crate::log::FollowerAppendError),
    /// A truncation that would drop committed offsets without being allowed to.
    #[error("truncating to offset {offset} would cut the log at {cut}, below the high watermark {high_watermark}")]
    TruncationBelowHighWatermark {
        /// The offset asked for.
        offset: i64,
        /// Where the log would end (a batch boundary at or below `offset`).
        cut: i64,
        /// The high watermark.
        high_watermark: i64,
    },
    /// A negative truncation offset.
    #[error("cannot truncate to the negative offset {0}")]
    InvalidTruncationOffset(i64),
    /// A sequence gap (OUT_OF_ORDER_SEQUENCE_NUMBER).
    #[error("producer {producer_id}: sequence {sequence} does not follow {last_sequence}")]
    OutOfOrderSequence {
        /// Producer id.
        producer_id: i64,
        /// First sequence of the batch.
        sequence: i32,
        /// Last sequence on record.
        last_sequence: i32,
    },
}

impl LogError {
    pub(crate) fn io(path: impl AsRef<std::path::Path>, source: std::io::Error) -> LogError {
        LogError::Io { path: path.as_ref().display().to_string(), source }
    }
}

/// Result alias of this crate.
pub type Result<T, E = LogError> = std::result::Result<T, E>;
