//! Building record batches: used by tests, the fuzz corpus, benchmarks and
//! broker-side recompression and the log cleaner.

use crate::batch::{BATCH_HEADER_LEN, CRC_START, NO_PRODUCER_EPOCH, NO_PRODUCER_ID, NO_SEQUENCE};
use crate::compression::Compression;
use crate::records::Record;
use crate::varint::{varint_size, write_varint, write_varlong};

/// One record to put in a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordSpec {
    /// Key, `None` for null.
    pub key: Option<Vec<u8>>,
    /// Value, `None` for null.
    pub value: Option<Vec<u8>>,
    /// Timestamp in ms.
    pub timestamp: i64,
    /// Headers in order.
    pub headers: Vec<(Vec<u8>, Option<Vec<u8>>)>,
}

impl RecordSpec {
    /// A record with no headers.
    pub fn new(key: Option<&[u8]>, value: Option<&[u8]>, timestamp: i64) -> RecordSpec {
        RecordSpec { key: key.map(<[u8]>::to_vec), value: value.map(<[u8]>::to_vec), timestamp, headers: Vec::new() }
    }

    /// Adds a header.
    pub fn with_header(mut self, key: &str, value: Option<&[u8]>) -> RecordSpec {
        self.headers.push((key.as_bytes().to_vec(), value.map(<[u8]>::to_vec)));
        self
    }
}

/// Batch-level fields other than the records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchFields {
    /// Base offset (the broker overwrites it on append).
    pub base_offset: i64,
    /// Partition leader epoch.
    pub partition_leader_epoch: i32,
    /// Attribute bits other than compression.
    pub attributes_without_compression: i16,
    /// Offset delta of the last record.
    pub last_offset_delta: i32,
    /// First record timestamp.
    pub base_timestamp: i64,
    /// Largest timestamp.
    pub max_timestamp: i64,
    /// Producer id, -1 if none.
    pub producer_id: i64,
    /// Producer epoch, -1 if none.
    pub producer_epoch: i16,
    /// First sequence, -1 if none.
    pub base_sequence: i32,
    /// Number of records.
    pub records_count: i32,
}

/// Appends the v2 encoding of `records` (uncompressed), with timestamp deltas
/// relative to `base_timestamp` and offset deltas 0, 1, 2, ...
pub fn encode_records(records: &[RecordSpec], base_timestamp: i64, out: &mut Vec<u8>) {
    let mut body = Vec::new();
    for (i, r) in records.iter().enumerate() {
        body.clear();
        body.push(0); // attributes
        write_varlong(&mut body, r.timestamp - base_timestamp);
        write_varint(&mut body, i as i32);
        write_nullable(&mut body, r.key.as_deref());
        write_nullable(&mut body, r.value.as_deref());
        write_varint(&mut body, r.headers.len() as i32);
        for (k, v) in &r.headers {
            write_nullable(&mut body, Some(k));
            write_nullable(&mut body, v.as_deref());
        }
        out.reserve(varint_size(body.len() as i32) + body.len());
        write_varint(out, body.len() as i32);
        out.extend_from_slice(&body);
    }
}

/// Appends the v2 encoding of a record read from a batch, keeping its offset
/// delta, key, value and headers and giving it `timestamp_delta` (the log
/// cleaner re-bases timestamps when it stamps a delete horizon).
pub fn encode_record(record: &Record<'_>, timestamp_delta: i64, out: &mut Vec<u8>) {
    let mut body = Vec::with_capacity(
        16 + record.key.map_or(0, <[u8]>::len)
            + record.value.map_or(0, <[u8]>::len)
            + record.headers.iter().map(|h| h.key.len() + h.value.map_or(0, <[u8]>::len) + 4).sum::<usize>(),
    );
    body.push(record.attributes as u8);
    write_varlong(&mut body, timestamp_delta);
    write_varint(&mut body, record.offset_delta);
    write_nullable(&mut body, record.key);
    write_nullable(&mut body, record.value);
    write_varint(&mut body, record.headers.len() as i32);
    for h in &record.headers {
        write_nullable(&mut body, Some(h.key));
        write_nullable(&mut body, h.value);
    }
    write_varint(out, body.len() as i32);
    out.extend_from_slice(&body);
}

fn write_nullable(out: &mut Vec<u8>, bytes: Option<&[u8]>) {
    match bytes {
        None => write_varint(out, -1),
        Some(b) => {
            write_varint(out, b.len() as i32);
            out.extend_from_slice(b);
        }
    }
}

/// Assembles a batch from its fields and uncompressed record bytes, compressing
/// them with `compression`, and computes the CRC.
pub fn assemble_batch(fields: &BatchFields, compression: Compression, level: Option<i32>, records: &[u8]) -> Vec<u8> {
    let payload = compression.compress(records, level);
    let mut out = Vec::with_capacity(BATCH_HEADER_LEN + payload.len());
    out.extend_from_slice(&fields.base_offset.to_be_bytes());
    let batch_length = (BATCH_HEADER_LEN - 12 + payload.len()) as i32;
    out.extend_from_slice(&batch_length.to_be_bytes());
    out.extend_from_slice(&fields.partition_leader_epoch.to_be_bytes());
    out.push(2);
    out.extend_from_slice(&[0; 4]); // CRC, filled below
    let attributes = fields.attributes_without_compression & !0x07 | compression.attribute_bits();
    out.extend_from_slice(&attributes.to_be_bytes());
    out.extend_from_slice(&fields.last_offset_delta.to_be_bytes());
    out.extend_from_slice(&fields.base_timestamp.to_be_bytes());
    out.extend_from_slice(&fields.max_timestamp.to_be_bytes());
    out.extend_from_slice(&fields.producer_id.to_be_bytes());
    out.extend_from_slice(&fields.producer_epoch.to_be_bytes());
    out.extend_from_slice(&fields.base_sequence.to_be_bytes());
    out.extend_from_slice(&fields.records_count.to_be_bytes());
    out.extend_from_slice(&payload);
    let crc = crc32c::crc32c(&out[CRC_START..]);
    out[17..21].copy_from_slice(&crc.to_be_bytes());
    out
}

/// Builds one record batch.
#[derive(Debug, Clone)]
pub struct BatchBuilder {
    compression: Compression,
    base_offset: i64,
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
    records: Vec<RecordSpec>,
}

impl BatchBuilder {
    /// An empty builder for a non-idempotent batch.
    pub fn new(compression: Compression) -> BatchBuilder {
        BatchBuilder {
            compression,
            base_offset: 0,
            producer_id: NO_PRODUCER_ID,
            producer_epoch: NO_PRODUCER_EPOCH,
            base_sequence: NO_SEQUENCE,
            records: Vec::new(),
        }
    }

    /// Marks the batch idempotent.
    pub fn producer(mut self, producer_id: i64, producer_epoch: i16, base_sequence: i32) -> BatchBuilder {
        self.producer_id = producer_id;
        self.producer_epoch = producer_epoch;
        self.base_sequence = base_sequence;
        self
    }

    /// Sets the base offset.
    pub fn base_offset(mut self, offset: i64) -> BatchBuilder {
        self.base_offset = offset;
        self
    }

    /// Adds a record.
    pub fn push(&mut self, record: RecordSpec) -> &mut BatchBuilder {
        self.records.push(record);
        self
    }

    /// Encodes the batch.
    pub fn build(&self) -> Vec<u8> {
        let base_timestamp = self.records.first().map_or(-1, |r| r.timestamp);
        let max_timestamp = self.records.iter().map(|r| r.timestamp).max().unwrap_or(-1);
        let mut raw = Vec::new();
        encode_records(&self.records, base_timestamp, &mut raw);
        let fields = BatchFields {
            base_offset: self.base_offset,
            partition_leader_epoch: -1,
            attributes_without_compression: 0,
            last_offset_delta: self.records.len() as i32 - 1,
            base_timestamp,
            max_timestamp,
            producer_id: self.producer_id,
            producer_epoch: self.producer_epoch,
            base_sequence: self.base_sequence,
            records_count: self.records.len() as i32,
        };
        assemble_batch(&fields, self.compression, None, &raw)
    }
}
