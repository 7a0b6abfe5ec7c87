//! Kafka error codes for what went wrong, mapped in one place.

use tributary_log::{FollowerAppendError, LogError};
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
        ApiError { code, message: message.into() }
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
            LogError::BatchTooLarge { .. } => ErrorCode::MessageTooLarge,
            LogError::InvalidProducerEpoch { .. } => ErrorCode::InvalidProducerEpoch,
            LogError::OutOfOrderSequence { .. } => ErrorCode::OutOfOrderSequenceNumber,
            // A follower's own operations: they reach no client, but keep a code.
            LogError::FollowerAppend(
                FollowerAppendError::CorruptBatch { .. } | FollowerAppendError::PartialBatch { .. },
            ) => ErrorCode::CorruptMessage,
            LogError::FollowerAppend(_)
            | LogError::TruncationBelowHighWatermark { .. }
            | LogError::InvalidTruncationOffset(_) => ErrorCode::UnknownServerError,
        };
        ApiError::new(code, e.to_string())
    }
}

/// Rejected records of a batch: (index within the batch, why).
pub type RecordErrors = Vec<(usize, String)>;

/// A produce batch rejected by validation: the code, and the offending
/// records (index, message) for `record_errors` when the batch was
/// well formed but some records broke a topic rule.
pub fn batch_error(e: &BatchError, produce_version: i16) -> (ApiError, RecordErrors) {
    // INVALID_RECORD and per-record errors arrived with Produce v8 (KIP-467).
    let invalid_record = if produce_version >= 8 { ErrorCode::InvalidRecord } else { ErrorCode::CorruptMessage };
    let code = match e {
        BatchError::Truncated
        | BatchError::InvalidLength(_)
        | BatchError::CrcMismatch { .. }
        | BatchError::UnsupportedCompression(_)
        | BatchError::Decompression(_)
        | BatchError::DecompressedTooLarge(_) => ErrorCode::CorruptMessage,
        BatchError::UnsupportedMagic(_) => ErrorCode::UnsupportedForMessageFormat,
        BatchError::ZstdNotAllowed => ErrorCode::UnsupportedCompressionType,
        BatchError::InvalidRecord { .. } | BatchError::InvalidBatch(_) => invalid_record,
        BatchError::RecordsRejected(problems) if problems.iter().any(|p| p.timestamp) => ErrorCode::InvalidTimestamp,
        BatchError::RecordsRejected(_) => invalid_record,
    };
    let records = match e {
        BatchError::RecordsRejected(problems) => problems.iter().map(|p| (p.index, p.reason.clone())).collect(),
        BatchError::InvalidRecord { index, reason } => vec![(*index, reason.clone())],
        _ => Vec::new(),
    };
    (ApiError::new(code, e.to_string()), records)
}
