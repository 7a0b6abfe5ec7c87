//! Kafka error codes for what went wrong, mapped in one place.

use tributary_log::LogError;
use tributary_protocol::ErrorCode;
use tributary_record::BatchError;

/// An error answered to the client: a Kafka error code and a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The code.
    pub code: ErrorCode,
    /// Human-readable detail (sent in versions that carry error messages).
    pub message: String,
}

impl ApiError {
    /// An error with a message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            message: message.into(),
        }
    }

    /// The wire code.
    pub fn code(&self) -> i16 {
        self.code.code()
    }
}

impl From<LogError> for ApiError {
    fn from(e: LogError) -> ApiError {
        let code = match &e {
            LogError::Io { .. } | LogError::Offline(_) => ErrorCode::KafkaStorageError,
            LogError::OffsetOutOfRange { .. } => ErrorCode::OffsetOutOfRange,
            LogError::BatchLargerThanSegment { .. } => ErrorCode::RecordListTooLarge,
            LogError::InvalidProducerEpoch { .. } => ErrorCode::InvalidProducerEpoch,
            LogError::OutOfOrderSequence { .. } => ErrorCode::OutOfOrderSequenceNumber,
        };
        ApiError::new(code, e.to_string())
    }
}

/// A produce batch rejected by validation: the code, and the index of the
/// offending record when there is one (for `record_errors`).
pub fn batch_error(e: &BatchError, produce_version: i16) -> (ApiError, Option<usize>) {
    // INVALID_RECORD and per-record errors arrived with Produce v8 (KIP-467).
    let invalid_record = if produce_version >= 8 {
        ErrorCode::InvalidRecord
    } else {
        ErrorCode::CorruptMessage
    };
    let (code, index) = match e {
        BatchError::Truncated
        | BatchError::InvalidLength(_)
        | BatchError::CrcMismatch { .. }
        | BatchError::UnsupportedCompression(_)
        | BatchError::Decompression(_)
        | BatchError::DecompressedTooLarge(_) => (ErrorCode::CorruptMessage, None),
        BatchError::UnsupportedMagic(_) => (ErrorCode::UnsupportedForMessageFormat, None),
        BatchError::ZstdNotAllowed => (ErrorCode::UnsupportedCompressionType, None),
        BatchError::InvalidRecord { index, .. } => (invalid_record, Some(*index)),
        BatchError::InvalidBatch(_) => (invalid_record, None),
        BatchError::InvalidTimestamp { index, .. } => (ErrorCode::InvalidTimestamp, Some(*index)),
    };
    (ApiError::new(code, e.to_string()), index)
}
