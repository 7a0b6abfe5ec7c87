//! A zero-copy view of the 61-byte RecordBatch v2 header, and the few in-place
//! rewrites a broker makes (base offset, leader epoch, LogAppendTime).
//!
//! ```text
//!  0 baseOffset i64 | 8 batchLength i32 | 12 partitionLeaderEpoch i32 | 16 magic i8
//! 17 crc u32 (CRC-32C of bytes 21..end) | 21 attributes i16 | 23 lastOffsetDelta i32
//! 27 baseTimestamp i64 | 35 maxTimestamp i64 | 43 producerId i64 | 51 producerEpoch i16
//! 53 baseSequence i32 | 57 recordsCount i32 | 61 records...
//! ```

use crate::compression::Compression;
use crate::error::BatchError;

/// Size of the v2 batch header.
pub const BATCH_HEADER_LEN: usize = 61;
/// Bytes before `batchLength` ends: baseOffset + batchLength.
pub const LOG_OVERHEAD: usize = 12;
/// Offset of the first byte covered by the CRC.
pub const CRC_START: usize = 21;

const BASE_OFFSET: usize = 0;
const BATCH_LENGTH: usize = 8;
const PARTITION_LEADER_EPOCH: usize = 12;
const MAGIC: usize = 16;
const CRC: usize = 17;
const ATTRIBUTES: usize = 21;
const LAST_OFFSET_DELTA: usize = 23;
const BASE_TIMESTAMP: usize = 27;
const MAX_TIMESTAMP: usize = 35;
const PRODUCER_ID: usize = 43;
const PRODUCER_EPOCH: usize = 51;
const BASE_SEQUENCE: usize = 53;
const RECORDS_COUNT: usize = 57;

const ATTR_TIMESTAMP_TYPE: i16 = 1 << 3;
const ATTR_TRANSACTIONAL: i16 = 1 << 4;
const ATTR_CONTROL: i16 = 1 << 5;
/// Attribute bit: `base_timestamp` holds the delete horizon of the batch's tombstones (set by the log cleaner).
pub const ATTR_DELETE_HORIZON: i16 = 1 << 6;

/// "No producer id" / "no sequence" sentinels.
pub const NO_PRODUCER_ID: i64 = -1;
/// "No producer epoch".
pub const NO_PRODUCER_EPOCH: i16 = -1;
/// "No sequence".
pub const NO_SEQUENCE: i32 = -1;

fn be_i16(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([b[at], b[at + 1]])
}
fn be_i32(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
fn be_i64(b: &[u8], at: usize) -> i64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[at..at + 8]);
    i64::from_be_bytes(x)
}

/// A parsed batch header. Cheap to copy; the batch bytes stay where they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    /// Offset of the first record.
    pub base_offset: i64,
    /// Bytes after the `batchLength` field.
    pub batch_length: i32,
    /// Leader epoch the batch was appended under.
    pub partition_leader_epoch: i32,
    /// Message format version (2).
    pub magic: i8,
    /// Stored CRC-32C.
    pub crc: u32,
    /// Attribute bits.
    pub attributes: i16,
    /// Offset delta of the last record.
    pub last_offset_delta: i32,
    /// Timestamp of the first record.
    pub base_timestamp: i64,
    /// Largest record timestamp (or the broker's time for LogAppendTime).
    pub max_timestamp: i64,
    /// Idempotent/transactional producer id, or -1.
    pub producer_id: i64,
    /// Producer epoch, or -1.
    pub producer_epoch: i16,
    /// Sequence of the first record, or -1.
    pub base_sequence: i32,
    /// Number of records.
    pub records_count: i32,
}

impl BatchHeader {
    /// Parses the header at the start of `bytes`. Only the header's own
    /// consistency is checked (magic, length); the CRC is checked by
    /// [`BatchHeader::crc_matches`].
    pub fn parse(bytes: &[u8]) -> Result<BatchHeader, BatchError> {
        if bytes.len() < LOG_OVERHEAD + 5 {
            return Err(BatchError::Truncated);
        }
        let batch_length = be_i32(bytes, BATCH_LENGTH);
        let magic = bytes[MAGIC] as i8;
        if magic != 2 {
            return Err(BatchError::UnsupportedMagic(magic));
        }
        if (batch_length as i64) < (BATCH_HEADER_LEN - LOG_OVERHEAD) as i64 {
            return Err(BatchError::InvalidLength(batch_length));
        }
        if bytes.len() < BATCH_HEADER_LEN {
            return Err(BatchError::Truncated);
        }
        Ok(BatchHeader {
            base_offset: be_i64(bytes, BASE_OFFSET),
            batch_length,
            partition_leader_epoch: be_i32(bytes, PARTITION_LEADER_EPOCH),
            magic,
            crc: be_i32(bytes, CRC) as u32,
            attributes: be_i16(bytes, ATTRIBUTES),
            last_offset_delta: be_i32(bytes, LAST_OFFSET_DELTA),
            base_timestamp: be_i64(bytes, BASE_TIMESTAMP),
            max_timestamp: be_i64(bytes, MAX_TIMESTAMP),
            producer_id: be_i64(bytes, PRODUCER_ID),
            producer_epoch: be_i16(bytes, PRODUCER_EPOCH),
            base_sequence: be_i32(bytes, BASE_SEQUENCE),
            records_count: be_i32(bytes, RECORDS_COUNT),
        })
    }

    /// Total size of the batch on the wire, header included.
    pub fn total_len(&self) -> usize {
        LOG_OVERHEAD + self.batch_length as usize
    }

    /// Offset of the last record.
    pub fn last_offset(&self) -> i64 {
        self.base_offset + i64::from(self.last_offset_delta)
    }

    /// The next offset after this batch.
    pub fn next_offset(&self) -> i64 {
        self.last_offset() + 1
    }

    /// Compression codec from attribute bits 0-2.
    pub fn compression(&self) -> Result<Compression, BatchError> {
        Compression::from_attributes(self.attributes)
    }

    /// Whether timestamps are LogAppendTime (attribute bit 3).
    pub fn is_log_append_time(&self) -> bool {
        self.attributes & ATTR_TIMESTAMP_TYPE != 0
    }

    /// Whether the batch belongs to a transaction.
    pub fn is_transactional(&self) -> bool {
        self.attributes & ATTR_TRANSACTIONAL != 0
    }

    /// Whether the batch is a control batch (transaction marker).
    pub fn is_control(&self) -> bool {
        self.attributes & ATTR_CONTROL != 0
    }

    /// Whether `baseTimestamp` holds a delete horizon (set by compaction).
    pub fn has_delete_horizon(&self) -> bool {
        self.attributes & ATTR_DELETE_HORIZON != 0
    }

    /// Whether the batch carries an idempotent producer id.
    pub fn has_producer_id(&self) -> bool {
        self.producer_id >= 0
    }

    /// Sequence of the last record, wrapping at `i32::MAX` as Kafka does.
    pub fn last_sequence(&self) -> i32 {
        if self.base_sequence == NO_SEQUENCE {
            return NO_SEQUENCE;
        }
        let last = i64::from(self.base_sequence) + i64::from(self.last_offset_delta);
        if last > i64::from(i32::MAX) { (last - i64::from(i32::MAX) - 1) as i32 } else { last as i32 }
    }
}

/// CRC-32C over the bytes the batch CRC covers.
pub fn compute_crc(batch: &[u8]) -> u32 {
    crc32c::crc32c(&batch[CRC_START..])
}

/// Whether the stored CRC matches the batch bytes. `batch` must be exactly one batch.
pub fn crc_matches(batch: &[u8]) -> bool {
    batch.len() >= BATCH_HEADER_LEN && compute_crc(batch) == be_i32(batch, CRC) as u32
}

/// Rewrites the base offset (not covered by the CRC).
pub fn set_base_offset(batch: &mut [u8], offset: i64) {
    batch[BASE_OFFSET..BASE_OFFSET + 8].copy_from_slice(&offset.to_be_bytes());
}

/// Rewrites the partition leader epoch (not covered by the CRC).
pub fn set_partition_leader_epoch(batch: &mut [u8], epoch: i32) {
    batch[PARTITION_LEADER_EPOCH..PARTITION_LEADER_EPOCH + 4].copy_from_slice(&epoch.to_be_bytes());
}

/// Marks the batch LogAppendTime with `now_ms` as its max timestamp and
/// recomputes the CRC, as a broker does for `message.timestamp.type=LogAppendTime`.
pub fn set_log_append_time(batch: &mut [u8], now_ms: i64) {
    let (head, records) = batch.split_at_mut(BATCH_HEADER_LEN);
    mark_log_append_time(head, now_ms);
    reseal(head, records);
}

/// Sets the LogAppendTime attribute and `now_ms` as the max timestamp in a
/// batch header (the first [`BATCH_HEADER_LEN`] bytes). The CRC is stale
/// until [`reseal`].
pub fn mark_log_append_time(head: &mut [u8], now_ms: i64) {
    let attributes = be_i16(head, ATTRIBUTES) | ATTR_TIMESTAMP_TYPE;
    head[ATTRIBUTES..ATTRIBUTES + 2].copy_from_slice(&attributes.to_be_bytes());
    set_max_timestamp_field(head, now_ms);
}

/// Sets the max timestamp in a batch header. The CRC is stale until [`reseal`].
pub fn set_max_timestamp_field(head: &mut [u8], max_timestamp: i64) {
    head[MAX_TIMESTAMP..MAX_TIMESTAMP + 8].copy_from_slice(&max_timestamp.to_be_bytes());
}

/// Recomputes the CRC of a batch from its header (`head`, the first
/// [`BATCH_HEADER_LEN`] bytes) and the record bytes that follow it, which
/// may live elsewhere.
pub fn reseal(head: &mut [u8], records: &[u8]) {
    let crc = crc32c::crc32c_append(crc32c::crc32c(&head[CRC_START..BATCH_HEADER_LEN]), records);
    head[CRC..CRC + 4].copy_from_slice(&crc.to_be_bytes());
}

/// Iterates over the batches in a `records` blob (as found in a Produce or
/// Fetch, or a segment file). Yields each batch's header and bytes. Stops with
/// an error at the first batch that is truncated or malformed; the caller
/// decides whether a truncated tail is an error (produce) or normal (fetch,
/// recovery).
#[derive(Debug)]
pub struct BatchIter<'a> {
    rest: &'a [u8],
    position: usize,
}

impl<'a> BatchIter<'a> {
    /// Starts iterating at the beginning of `bytes`.
    pub fn new(bytes: &'a [u8]) -> BatchIter<'a> {
        BatchIter { rest: bytes, position: 0 }
    }

    /// Byte position of the next batch within the original blob.
    pub fn position(&self) -> usize {
        self.position
    }
}

impl<'a> Iterator for BatchIter<'a> {
    type Item = Result<(BatchHeader, &'a [u8]), BatchError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let header = match BatchHeader::parse(self.rest) {
            Ok(h) => h,
            Err(e) => {
                self.rest = &[];
                return Some(Err(e));
            }
        };
        let len = header.total_len();
        if len > self.rest.len() {
            self.rest = &[];
            return Some(Err(BatchError::Truncated));
        }
        let (batch, rest) = self.rest.split_at(len);
        self.rest = rest;
        self.position += len;
        Some(Ok((header, batch)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builder::{BatchBuilder, RecordSpec};

    fn sample() -> Vec<u8> {
        let mut b = BatchBuilder::new(Compression::None);
        b.push(RecordSpec::new(Some(b"k"), Some(b"v"), 1000));
        b.push(RecordSpec::new(None, Some(b"v2"), 1005));
        b.build()
    }

    #[test]
    fn header_fields_and_crc() {
        let bytes = sample();
        let h = BatchHeader::parse(&bytes).expect("valid header");
        assert_eq!(h.magic, 2);
        assert_eq!(h.records_count, 2);
        assert_eq!(h.last_offset_delta, 1);
        assert_eq!(h.base_timestamp, 1000);
        assert_eq!(h.max_timestamp, 1005);
        assert_eq!(h.total_len(), bytes.len());
        assert!(crc_matches(&bytes));
    }

    #[test]
    fn offset_and_epoch_rewrites_keep_crc() {
        let mut bytes = sample();
        set_base_offset(&mut bytes, 42);
        set_partition_leader_epoch(&mut bytes, 7);
        assert!(crc_matches(&bytes));
        let h = BatchHeader::parse(&bytes).expect("valid header");
        assert_eq!((h.base_offset, h.partition_leader_epoch, h.last_offset()), (42, 7, 43));
    }

    #[test]
    fn log_append_time_recomputes_crc() {
        let mut bytes = sample();
        set_log_append_time(&mut bytes, 99_999);
        assert!(crc_matches(&bytes));
        let h = BatchHeader::parse(&bytes).expect("valid header");
        assert!(h.is_log_append_time());
        assert_eq!(h.max_timestamp, 99_999);
    }

    #[test]
    fn flipped_bit_breaks_crc() {
        let mut bytes = sample();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        assert!(!crc_matches(&bytes));
    }

    #[test]
    fn iter_reports_truncated_tail() {
        let mut blob = sample();
        blob.extend_from_slice(&sample());
        let full = blob.len();
        blob.truncate(full - 3);
        let items: Vec<_> = BatchIter::new(&blob).collect();
        assert_eq!(items.len(), 2);
        assert!(items[0].is_ok());
        assert_eq!(items[1].as_ref().err(), Some(&BatchError::Truncated));
    }

    #[test]
    fn rejects_old_magic_and_short_length() {
        let mut bytes = sample();
        bytes[16] = 1;
        assert_eq!(BatchHeader::parse(&bytes), Err(BatchError::UnsupportedMagic(1)));
        let mut bytes = sample();
        bytes[8..12].copy_from_slice(&10i32.to_be_bytes());
        assert_eq!(BatchHeader::parse(&bytes), Err(BatchError::InvalidLength(10)));
    }

    #[test]
    fn sequence_wraps() {
        let mut bytes = sample();
        bytes[53..57].copy_from_slice(&i32::MAX.to_be_bytes());
        let h = BatchHeader::parse(&bytes).expect("valid header");
        assert_eq!(h.last_sequence(), 0);
    }
}
