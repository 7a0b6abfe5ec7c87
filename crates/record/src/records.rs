//! Records inside a batch.
//!
//! Two readers share one grammar:
//! - [`RecordIter`] walks uncompressed record bytes and hands out zero-copy
//!   [`Record`]s (consumers, tests, tools);
//! - [`RecordScanner`] streams over any source, compressed or not, and yields
//!   only each record's shape ([`RecordMeta`]), skipping values without
//!   buffering them. The broker validates produce batches with it, so a
//!   compressed batch is checked without ever holding its decompressed form.
//!
//! Record layout (varints are zig-zag): `length, attributes i8, timestampDelta
//! varlong, offsetDelta varint, keyLength varint (-1 = null), key,
//! valueLength varint (-1 = null), value, headerCount varint, headers[{keyLength,
//! key, valueLength (-1 = null), value}]`.

use std::io::{BufRead, BufReader, Read};

use crate::varint::{VarintError, read_varint, read_varlong};

/// One record header (key, nullable value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header<'a> {
    /// Header key (Kafka requires non-null).
    pub key: &'a [u8],
    /// Header value, `None` for null.
    pub value: Option<&'a [u8]>,
}

/// A record borrowed from uncompressed record bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record<'a> {
    /// Record attributes (unused by Kafka, 0).
    pub attributes: i8,
    /// Timestamp minus the batch base timestamp.
    pub timestamp_delta: i64,
    /// Offset minus the batch base offset.
    pub offset_delta: i32,
    /// Key, `None` for null.
    pub key: Option<&'a [u8]>,
    /// Value, `None` for null (a tombstone).
    pub value: Option<&'a [u8]>,
    /// Headers in order.
    pub headers: Vec<Header<'a>>,
}

/// Iterates over uncompressed record bytes.
#[derive(Debug)]
pub struct RecordIter<'a> {
    rest: &'a [u8],
    index: usize,
}

impl<'a> RecordIter<'a> {
    /// Iterates the records in `data` (the bytes after a batch header,
    /// decompressed if the batch was compressed).
    pub fn new(data: &'a [u8]) -> RecordIter<'a> {
        RecordIter { rest: data, index: 0 }
    }
}

#[inline]
fn take<'a>(buf: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    if buf.len() < n {
        return None;
    }
    let (head, tail) = buf.split_at(n);
    *buf = tail;
    Some(head)
}

#[inline]
fn take_nullable<'a>(buf: &mut &'a [u8]) -> Result<Option<&'a [u8]>, String> {
    let len = read_varint(buf).map_err(varint_reason)?;
    match len {
        -1 => Ok(None),
        n if n >= 0 => take(buf, n as usize).map(Some).ok_or_else(|| "field runs past the record".to_string()),
        n => Err(format!("negative length {n}")),
    }
}

fn varint_reason(e: VarintError) -> String {
    match e {
        VarintError::Truncated => "record ends inside a varint".to_string(),
        VarintError::TooLong => "varint is too long".to_string(),
    }
}

fn parse_record<'a>(buf: &mut &'a [u8]) -> Result<Record<'a>, String> {
    let length = read_varint(buf).map_err(varint_reason)?;
    if length < 0 {
        return Err(format!("negative record length {length}"));
    }
    let mut body = take(buf, length as usize).ok_or("record length runs past the batch")?;
    let (&attributes, rest) = body.split_first().ok_or("empty record")?;
    body = rest;
    let timestamp_delta = read_varlong(&mut body).map_err(varint_reason)?;
    let offset_delta = read_varint(&mut body).map_err(varint_reason)?;
    let key = take_nullable(&mut body)?;
    let value = take_nullable(&mut body)?;
    let header_count = read_varint(&mut body).map_err(varint_reason)?;
    if header_count < 0 {
        return Err(format!("negative header count {header_count}"));
    }
    let mut headers = Vec::new();
    for _ in 0..header_count {
        let key = take_nullable(&mut body)?.ok_or("header key is null")?;
        let value = take_nullable(&mut body)?;
        headers.push(Header { key, value });
    }
    if !body.is_empty() {
        return Err(format!("{} bytes left over after the record's fields", body.len()));
    }
    Ok(Record { attributes: attributes as i8, timestamp_delta, offset_delta, key, value, headers })
}

/// The fields of one record that a produce's validation looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RecordShape {
    pub(crate) timestamp_delta: i64,
    pub(crate) offset_delta: i32,
    pub(crate) key_is_null: bool,
}

/// Checks one record exactly as [`parse_record`] parses it, without
/// building it: the broker validates millions of small records a second,
/// and only their deltas and whether the key is null matter there.
#[inline]
pub(crate) fn skim_record(buf: &mut &[u8]) -> Result<RecordShape, String> {
    let length = read_varint(buf).map_err(varint_reason)?;
    if length < 0 {
        return Err(format!("negative record length {length}"));
    }
    let mut body = take(buf, length as usize).ok_or("record length runs past the batch")?;
    let (_attributes, rest) = body.split_first().ok_or("empty record")?;
    body = rest;
    let timestamp_delta = read_varlong(&mut body).map_err(varint_reason)?;
    let offset_delta = read_varint(&mut body).map_err(varint_reason)?;
    let key_is_null = take_nullable(&mut body)?.is_none();
    take_nullable(&mut body)?;
    let header_count = read_varint(&mut body).map_err(varint_reason)?;
    if header_count < 0 {
        return Err(format!("negative header count {header_count}"));
    }
    for _ in 0..header_count {
        take_nullable(&mut body)?.ok_or("header key is null")?;
        take_nullable(&mut body)?;
    }
    if !body.is_empty() {
        return Err(format!("{} bytes left over after the record's fields", body.len()));
    }
    Ok(RecordShape { timestamp_delta, offset_delta, key_is_null })
}

impl<'a> Iterator for RecordIter<'a> {
    type Item = Result<Record<'a>, (usize, String)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let index = self.index;
        self.index += 1;
        match parse_record(&mut self.rest) {
            Ok(r) => Some(Ok(r)),
            Err(reason) => {
                self.rest = &[];
                Some(Err((index, reason)))
            }
        }
    }
}

/// The shape of one record, as [`RecordScanner`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordMeta {
    /// Timestamp minus the batch base timestamp.
    pub timestamp_delta: i64,
    /// Offset minus the batch base offset.
    pub offset_delta: i32,
    /// Whether the key is null.
    pub key_is_null: bool,
    /// The key bytes, when asked for and not null.
    pub key: Option<Vec<u8>>,
    /// Whether the value is null (tombstone).
    pub value_is_null: bool,
    /// Number of headers.
    pub header_count: i32,
}

/// Streams over record bytes from any reader, skipping values, with a cap on
/// the total number of bytes read (the decompressed size).
pub struct RecordScanner<'a> {
    reader: BufReader<Box<dyn Read + 'a>>,
    position: u64,
    limit: u64,
}

impl std::fmt::Debug for RecordScanner<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordScanner").field("position", &self.position).field("limit", &self.limit).finish()
    }
}

/// What went wrong while scanning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScanError {
    /// The records are malformed.
    Invalid(String),
    /// More than the byte limit was read.
    LimitExceeded,
    /// The decompressor failed.
    Io(String),
}

impl<'a> RecordScanner<'a> {
    /// Scans `reader`, refusing to read more than `limit` bytes in total.
    pub fn new(reader: Box<dyn Read + 'a>, limit: usize) -> RecordScanner<'a> {
        RecordScanner { reader: BufReader::with_capacity(16 * 1024, reader), position: 0, limit: limit as u64 }
    }

    /// Bytes consumed so far.
    pub fn position(&self) -> u64 {
        self.position
    }

    fn byte(&mut self) -> Result<Option<u8>, ScanError> {
        let buf = self.reader.fill_buf().map_err(|e| ScanError::Io(e.to_string()))?;
        let Some(&b) = buf.first() else {
            return Ok(None);
        };
        self.reader.consume(1);
        self.advance(1)?;
        Ok(Some(b))
    }

    fn advance(&mut self, n: u64) -> Result<(), ScanError> {
        self.position += n;
        if self.position > self.limit { Err(ScanError::LimitExceeded) } else { Ok(()) }
    }

    fn need_byte(&mut self) -> Result<u8, ScanError> {
        self.byte()?.ok_or_else(|| ScanError::Invalid("records end inside a record".to_string()))
    }

    fn varlong(&mut self) -> Result<i64, ScanError> {
        let mut raw: u64 = 0;
        for i in 0..10 {
            let b = self.need_byte()?;
            raw |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(((raw >> 1) as i64) ^ -((raw & 1) as i64));
            }
        }
        Err(ScanError::Invalid("varint is too long".to_string()))
    }

    fn varint(&mut self) -> Result<i32, ScanError> {
        let v = self.varlong()?;
        i32::try_from(v).map_err(|_| ScanError::Invalid(format!("varint {v} overflows 32 bits")))
    }

    fn skip(&mut self, mut n: u64) -> Result<(), ScanError> {
        while n > 0 {
            let buf = self.reader.fill_buf().map_err(|e| ScanError::Io(e.to_string()))?;
            if buf.is_empty() {
                return Err(ScanError::Invalid("field runs past the records".to_string()));
            }
            let step = (buf.len() as u64).min(n);
            self.reader.consume(step as usize);
            self.advance(step)?;
            n -= step;
        }
        Ok(())
    }

    fn read_vec(&mut self, n: u64) -> Result<Vec<u8>, ScanError> {
        let mut out = Vec::new();
        while (out.len() as u64) < n {
            let buf = self.reader.fill_buf().map_err(|e| ScanError::Io(e.to_string()))?;
            if buf.is_empty() {
                return Err(ScanError::Invalid("field runs past the records".to_string()));
            }
            let step = (buf.len() as u64).min(n - out.len() as u64) as usize;
            out.extend_from_slice(&buf[..step]);
            self.reader.consume(step);
            self.advance(step as u64)?;
        }
        Ok(out)
    }

    /// Reads a nullable length and checks it fits in what is left of the record.
    fn nullable_len(&mut self, record_end: u64, what: &str) -> Result<Option<u64>, ScanError> {
        match self.varint()? {
            -1 => Ok(None),
            n if n >= 0 => {
                let n = n as u64;
                if self.position + n > record_end {
                    return Err(ScanError::Invalid(format!("{what} length {n} runs past the record")));
                }
                Ok(Some(n))
            }
            n => Err(ScanError::Invalid(format!("negative {what} length {n}"))),
        }
    }

    /// Reads the next record's shape; `Ok(None)` at a clean end of input.
    /// With `want_key`, the key bytes are returned too.
    pub fn next_record(&mut self, want_key: bool) -> Result<Option<RecordMeta>, ScanError> {
        let first = match self.byte()? {
            None => return Ok(None),
            Some(b) => b,
        };
        // Decode the length varint whose first byte we already have.
        let mut raw = u64::from(first & 0x7f);
        let mut more = first & 0x80 != 0;
        let mut shift = 7;
        while more {
            if shift > 63 {
                return Err(ScanError::Invalid("varint is too long".to_string()));
            }
            let b = self.need_byte()?;
            raw |= u64::from(b & 0x7f) << shift;
            more = b & 0x80 != 0;
            shift += 7;
        }
        let length = ((raw >> 1) as i64) ^ -((raw & 1) as i64);
        if !(0..=i64::from(i32::MAX)).contains(&length) {
            return Err(ScanError::Invalid(format!("record length {length} is invalid")));
        }
        let record_end = self.position + length as u64;
        let _attributes = self.need_byte()?;
        let timestamp_delta = self.varlong()?;
        let offset_delta = self.varint()?;
        let key_len = self.nullable_len(record_end, "key")?;
        let key = match key_len {
            Some(n) if want_key => Some(self.read_vec(n)?),
            Some(n) => {
                self.skip(n)?;
                None
            }
            None => None,
        };
        let value_len = self.nullable_len(record_end, "value")?;
        if let Some(n) = value_len {
            self.skip(n)?;
        }
        let header_count = self.varint()?;
        if header_count < 0 {
            return Err(ScanError::Invalid(format!("negative header count {header_count}")));
        }
        for _ in 0..header_count {
            match self.nullable_len(record_end, "header key")? {
                Some(n) => self.skip(n)?,
                None => return Err(ScanError::Invalid("header key is null".to_string())),
            }
            if let Some(n) = self.nullable_len(record_end, "header value")? {
                self.skip(n)?;
            }
            if self.position > record_end {
                return Err(ScanError::Invalid("headers run past the record".to_string()));
            }
        }
        if self.position != record_end {
            return Err(ScanError::Invalid(format!(
                "record length {length} does not match its fields ({} bytes)",
                length - (record_end as i64 - self.position as i64)
            )));
        }
        Ok(Some(RecordMeta {
            timestamp_delta,
            offset_delta,
            key_is_null: key_len.is_none(),
            key,
            value_is_null: value_len.is_none(),
            header_count,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builder::{BatchBuilder, RecordSpec};
    use crate::compression::Compression;

    fn records_of(batch: &[u8]) -> &[u8] {
        &batch[crate::batch::BATCH_HEADER_LEN..]
    }

    /// `skim_record` must accept and refuse exactly what `parse_record` does,
    /// with the same reason, on any bytes (the broker validates with the
    /// first, consumers and tools read with the second).
    fn skim_agrees_with_parse(bytes: &[u8]) {
        let (mut a, mut b) = (bytes, bytes);
        loop {
            let parsed = parse_record(&mut a);
            let skimmed = skim_record(&mut b);
            match (&parsed, &skimmed) {
                (Ok(r), Ok(s)) => {
                    assert_eq!(
                        (r.timestamp_delta, r.offset_delta, r.key.is_none()),
                        (s.timestamp_delta, s.offset_delta, s.key_is_null)
                    );
                    assert_eq!(a.len(), b.len(), "both consumed the same record");
                }
                (Err(x), Err(y)) => {
                    assert_eq!(x, y);
                    return;
                }
                _ => panic!("parse {parsed:?} but skim {skimmed:?} on {bytes:?}"),
            }
            if a.is_empty() {
                return;
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn skim_and_parse_agree_on_any_bytes(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64)) {
            skim_agrees_with_parse(&bytes);
        }

        #[test]
        fn skim_and_parse_agree_on_damaged_batches(cut in 0usize..200, flip in 0usize..200, bit in 0u8..8) {
            let mut b = BatchBuilder::new(Compression::None);
            b.push(RecordSpec::new(Some(b"key"), Some(b"value"), 10).with_header("h", Some(b"x")));
            b.push(RecordSpec::new(None, None, 11));
            b.push(RecordSpec::new(Some(b""), Some(&[7; 40]), -3).with_header("a", None).with_header("b", Some(b"")));
            let batch = b.build();
            let mut records = records_of(&batch).to_vec();
            skim_agrees_with_parse(&records);
            let at = flip % records.len().max(1);
            if let Some(byte) = records.get_mut(at) {
                *byte ^= 1 << bit;
            }
            records.truncate(records.len().saturating_sub(cut % 8));
            skim_agrees_with_parse(&records);
        }
    }

    #[test]
    fn iter_and_scanner_agree() {
        let mut b = BatchBuilder::new(Compression::None);
        b.push(RecordSpec::new(Some(b"key"), Some(b"value"), 10).with_header("h", Some(b"x")));
        b.push(RecordSpec::new(None, None, 12));
        let batch = b.build();
        let records: Vec<_> = RecordIter::new(records_of(&batch)).map(|r| r.expect("valid")).collect();
        assert_eq!(records.len(), 2);
        assert_eq!(records[0].key, Some(&b"key"[..]));
        assert_eq!(records[0].headers, vec![Header { key: b"h", value: Some(b"x") }]);
        assert_eq!(records[1].key, None);
        assert_eq!(records[1].value, None);
        assert_eq!(records[1].timestamp_delta, 2);

        let mut scanner = RecordScanner::new(Box::new(records_of(&batch)), 1 << 20);
        let first = scanner.next_record(true).expect("ok").expect("record");
        assert_eq!(first.key.as_deref(), Some(&b"key"[..]));
        assert_eq!(first.header_count, 1);
        let second = scanner.next_record(false).expect("ok").expect("record");
        assert!(second.key_is_null && second.value_is_null);
        assert_eq!(second.offset_delta, 1);
        assert_eq!(scanner.next_record(false), Ok(None));
    }

    #[test]
    fn scanner_rejects_lengths_that_lie() {
        // length 100 but only a few bytes follow
        let bytes = [200u8, 1, 0, 0, 0, 1, 1, 0];
        let mut scanner = RecordScanner::new(Box::new(&bytes[..]), 1 << 20);
        assert!(scanner.next_record(true).is_err());
        // a key claiming 2^30 bytes inside a tiny record is refused before any read
        let mut rec = vec![0u8, 0, 0];
        crate::varint::write_varint(&mut rec, 1 << 30);
        let mut framed = Vec::new();
        crate::varint::write_varint(&mut framed, rec.len() as i32);
        framed.extend_from_slice(&rec);
        let mut scanner = RecordScanner::new(Box::new(&framed[..]), 1 << 20);
        assert!(matches!(scanner.next_record(true), Err(ScanError::Invalid(_))));
    }

    #[test]
    fn scanner_enforces_the_byte_limit() {
        let mut b = BatchBuilder::new(Compression::None);
        b.push(RecordSpec::new(None, Some(&[7u8; 5000]), 0));
        let batch = b.build();
        let mut scanner = RecordScanner::new(Box::new(records_of(&batch)), 1000);
        assert_eq!(scanner.next_record(false), Err(ScanError::LimitExceeded));
    }
}
