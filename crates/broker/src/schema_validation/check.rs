//! The per-record check of a produced batch: every non-null key (value), if
//! the topic validates keys (values), must start with magic byte 0 and a
//! 4-byte big-endian schema id registered under the subject its strategy
//! names. Only the first 5 bytes of each key and value are looked at; a
//! compressed batch is streamed through its decompressor, never held whole.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};

use tributary_config::SubjectNameStrategy;
use tributary_record::batch::BATCH_HEADER_LEN;
use tributary_record::records::RecordIter;
use tributary_record::{BatchError, BatchHeader, Compression};

use super::index::{IdInfo, SchemaIndex};

/// The wire format's magic byte.
const MAGIC: u8 = 0;
/// Magic byte + 4-byte schema id.
const PREFIX_LEN: usize = 5;
/// Most rejected records listed in one response.
pub const PROBLEMS_MAX: usize = 1000;

/// Record key or value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// The key.
    Key,
    /// The value.
    Value,
}

impl Side {
    /// `key` or `value`, as in config names and subjects.
    pub fn name(self) -> &'static str {
        match self {
            Side::Key => "key",
            Side::Value => "value",
        }
    }
}

/// What a topic validates.
#[derive(Debug, Clone, Copy)]
pub struct Rules<'a> {
    /// Topic name (TopicNameStrategy and TopicRecordNameStrategy subjects).
    pub topic: &'a str,
    /// Key strategy, when keys are validated.
    pub key: Option<SubjectNameStrategy>,
    /// Value strategy, when values are validated.
    pub value: Option<SubjectNameStrategy>,
}

/// Why a record was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProblemKind {
    /// Not in the wire format: no magic byte, or too short for an id.
    NoSchemaId,
    /// An id that is not registered under the subject (`None`: the subject
    /// could not be named, the id being unknown or without a record name).
    NotRegistered {
        /// The subject it had to be registered under.
        subject: Option<String>,
    },
}

/// One rejected record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Index of the record in the batch.
    pub index: usize,
    /// Key or value.
    pub side: Side,
    /// Kind.
    pub kind: ProblemKind,
    /// The message for `record_errors`.
    pub reason: String,
}

/// A batch that failed schema validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The first [`PROBLEMS_MAX`] rejected records.
    pub problems: Vec<Problem>,
    /// How many records were rejected.
    pub rejected: usize,
}

/// The first bytes of a non-null key or value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Head {
    bytes: [u8; PREFIX_LEN],
    len: usize,
}

impl Head {
    fn of(field: &[u8]) -> Head {
        let len = field.len().min(PREFIX_LEN);
        let mut bytes = [0u8; PREFIX_LEN];
        bytes[..len].copy_from_slice(&field[..len]);
        Head { bytes, len }
    }

    /// The schema id, if the field is in the wire format.
    fn schema_id(&self) -> Option<i32> {
        (self.len == PREFIX_LEN && self.bytes[0] == MAGIC)
            .then(|| i32::from_be_bytes([self.bytes[1], self.bytes[2], self.bytes[3], self.bytes[4]]))
    }

    fn describe(&self) -> String {
        match self.len {
            0 => "it is empty".to_string(),
            n if n < PREFIX_LEN && self.bytes[0] == MAGIC => format!("it is only {n} bytes long"),
            _ => format!("it starts with byte 0x{:02x}", self.bytes[0]),
        }
    }
}

/// Checks every record of a batch that passed `validate_batch`. `Err(Ok(_))`
/// lists the rejected records; `Err(Err(_))` means the records could not be
/// read (which batch validation should have caught).
pub fn check_batch(
    batch: &[u8],
    rules: &Rules<'_>,
    index: &SchemaIndex,
    decompressed_bytes_max: usize,
) -> Result<(), Result<Rejection, BatchError>> {
    let mut checker = Checker { rules, index, verdicts: HashMap::new(), problems: Vec::new(), rejected: 0 };
    let header = BatchHeader::parse(batch).map_err(Err)?;
    let compression = header.compression().map_err(Err)?;
    let payload = batch.get(BATCH_HEADER_LEN..).ok_or(Err(BatchError::Truncated))?;
    if compression == Compression::None {
        for (i, record) in RecordIter::new(payload).enumerate() {
            let record = record.map_err(|(index, reason)| Err(BatchError::InvalidRecord { index, reason }))?;
            checker.record(i, record.key.map(Head::of), record.value.map(Head::of));
        }
    } else {
        let reader = compression.reader(payload, decompressed_bytes_max).map_err(Err)?;
        let mut scanner = HeadScanner::new(reader, decompressed_bytes_max);
        let mut i = 0;
        while let Some((key, value)) = scanner.next_record(i).map_err(Err)? {
            checker.record(i, key, value);
            i += 1;
        }
    }
    if checker.rejected == 0 {
        Ok(())
    } else {
        Err(Ok(Rejection { problems: checker.problems, rejected: checker.rejected }))
    }
}

struct Checker<'a> {
    rules: &'a Rules<'a>,
    index: &'a SchemaIndex,
    /// Verdicts per (side, id) already reached in this batch.
    verdicts: HashMap<(Side, i32), Option<(ProblemKind, String)>>,
    problems: Vec<Problem>,
    rejected: usize,
}

impl Checker<'_> {
    fn record(&mut self, index: usize, key: Option<Head>, value: Option<Head>) {
        for (side, strategy, field) in [(Side::Key, self.rules.key, key), (Side::Value, self.rules.value, value)] {
            let (Some(strategy), Some(head)) = (strategy, field) else { continue };
            let problem = match head.schema_id() {
                None => Some((
                    ProblemKind::NoSchemaId,
                    format!(
                        "Record {index} of the batch has no schema id in its {} (magic byte 0 + 4-byte id; {})",
                        side.name(),
                        head.describe()
                    ),
                )),
                Some(id) => self.verdict(side, strategy, id).map(|(kind, why)| {
                    (kind, format!("Record {index} of the batch has schema id {id} in its {}, {why}", side.name()))
                }),
            };
            if let Some((kind, reason)) = problem {
                self.rejected += 1;
                if self.problems.len() < PROBLEMS_MAX {
                    self.problems.push(Problem { index, side, kind, reason });
                }
                // One problem per record is enough to reject it.
                return;
            }
        }
    }

    fn verdict(&mut self, side: Side, strategy: SubjectNameStrategy, id: i32) -> Option<(ProblemKind, String)> {
        if let Some(v) = self.verdicts.get(&(side, id)) {
            return v.clone();
        }
        let v = judge(self.index, self.rules.topic, side, strategy, id);
        self.verdicts.insert((side, id), v.clone());
        v
    }
}

/// Whether `id` may be used for `side` on `topic`; the problem otherwise.
fn judge(
    index: &SchemaIndex,
    topic: &str,
    side: Side,
    strategy: SubjectNameStrategy,
    id: i32,
) -> Option<(ProblemKind, String)> {
    let subject = match strategy {
        SubjectNameStrategy::TopicName => format!("{topic}-{}", side.name()),
        SubjectNameStrategy::RecordName | SubjectNameStrategy::TopicRecordName => match index.id_info(id) {
            IdInfo::Unknown => {
                let why = "which is not a registered schema id".to_string();
                return Some((ProblemKind::NotRegistered { subject: None }, why));
            }
            IdInfo::Known(None) => {
                let why = format!(
                    "whose schema has no record name for {} (it needs an Avro record, a Protobuf message or a JSON schema with a title)",
                    strategy.name()
                );
                return Some((ProblemKind::NotRegistered { subject: None }, why));
            }
            IdInfo::Known(Some(name)) if strategy == SubjectNameStrategy::RecordName => name.to_string(),
            IdInfo::Known(Some(name)) => format!("{topic}-{name}"),
        },
    };
    if index.is_registered(&subject, id) {
        return None;
    }
    let why = format!("which is not registered under subject {subject} ({})", strategy.name());
    Some((ProblemKind::NotRegistered { subject: Some(subject) }, why))
}

/// A record's key and value heads (`None` for null).
type KeyAndValue = (Option<Head>, Option<Head>);

/// Streams records from a decompressor, keeping the first bytes of each key
/// and value and skipping the rest.
struct HeadScanner<'a> {
    reader: BufReader<Box<dyn Read + 'a>>,
    position: u64,
    limit: u64,
}

impl<'a> HeadScanner<'a> {
    fn new(reader: Box<dyn Read + 'a>, limit: usize) -> HeadScanner<'a> {
        HeadScanner { reader: BufReader::with_capacity(16 * 1024, reader), position: 0, limit: limit as u64 }
    }

    fn advance(&mut self, n: u64) -> Result<(), BatchError> {
        self.position += n;
        if self.position > self.limit { Err(BatchError::DecompressedTooLarge(self.limit as usize)) } else { Ok(()) }
    }

    fn byte(&mut self) -> Result<Option<u8>, BatchError> {
        let buf = self.reader.fill_buf().map_err(|e| BatchError::Decompression(e.to_string()))?;
        let Some(&b) = buf.first() else { return Ok(None) };
        self.reader.consume(1);
        self.advance(1)?;
        Ok(Some(b))
    }

    fn varlong(&mut self, index: usize) -> Result<i64, BatchError> {
        let mut raw: u64 = 0;
        for i in 0..10 {
            let b = self.byte()?.ok_or_else(|| invalid(index, "records end inside a varint"))?;
            raw |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(((raw >> 1) as i64) ^ -((raw & 1) as i64));
            }
        }
        Err(invalid(index, "varint is too long"))
    }

    /// Reads up to `PREFIX_LEN` of the next `len` bytes into a head and skips the rest.
    fn head(&mut self, mut len: u64, index: usize) -> Result<Head, BatchError> {
        let mut head = Head { bytes: [0; PREFIX_LEN], len: 0 };
        while len > 0 {
            let buf = self.reader.fill_buf().map_err(|e| BatchError::Decompression(e.to_string()))?;
            if buf.is_empty() {
                return Err(invalid(index, "a field runs past the records"));
            }
            let step = (buf.len() as u64).min(len) as usize;
            let keep = (PREFIX_LEN - head.len).min(step);
            head.bytes[head.len..head.len + keep].copy_from_slice(&buf[..keep]);
            head.len += keep;
            self.reader.consume(step);
            self.advance(step as u64)?;
            len -= step as u64;
        }
        Ok(head)
    }

    fn nullable(&mut self, record_end: u64, index: usize) -> Result<Option<Head>, BatchError> {
        match self.varlong(index)? {
            -1 => Ok(None),
            n if n >= 0 && self.position.saturating_add(n as u64) <= record_end => {
                Ok(Some(self.head(n as u64, index)?))
            }
            n => Err(invalid(index, &format!("field length {n} does not fit the record"))),
        }
    }

    /// The next record's key and value heads; `None` at the end.
    fn next_record(&mut self, index: usize) -> Result<Option<KeyAndValue>, BatchError> {
        let Some(first) = self.byte()? else { return Ok(None) };
        // The length varint, whose first byte is already read.
        let mut raw = u64::from(first & 0x7f);
        let mut shift = 7;
        let mut more = first & 0x80 != 0;
        while more {
            if shift > 63 {
                return Err(invalid(index, "varint is too long"));
            }
            let b = self.byte()?.ok_or_else(|| invalid(index, "records end inside a varint"))?;
            raw |= u64::from(b & 0x7f) << shift;
            more = b & 0x80 != 0;
            shift += 7;
        }
        let length = ((raw >> 1) as i64) ^ -((raw & 1) as i64);
        if !(1..=i64::from(i32::MAX)).contains(&length) {
            return Err(invalid(index, &format!("record length {length} is invalid")));
        }
        let record_end = self.position + length as u64;
        let _attributes = self.byte()?;
        let _timestamp_delta = self.varlong(index)?;
        let _offset_delta = self.varlong(index)?;
        let key = self.nullable(record_end, index)?;
        let value = self.nullable(record_end, index)?;
        // Headers: skip to the end of the record.
        let rest = record_end
            .checked_sub(self.position)
            .ok_or_else(|| invalid(index, "the record's fields run past its length"))?;
        self.head(rest, index)?;
        Ok(Some((key, value)))
    }
}

fn invalid(index: usize, reason: &str) -> BatchError {
    BatchError::InvalidRecord { index, reason: reason.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tributary_record::builder::{BatchBuilder, RecordSpec};

    const CODECS: [Compression; 5] =
        [Compression::None, Compression::Gzip, Compression::Snappy, Compression::Lz4, Compression::Zstd];

    fn framed(id: i32, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![MAGIC];
        out.extend_from_slice(&id.to_be_bytes());
        out.extend_from_slice(payload);
        out
    }

    fn index() -> SchemaIndex {
        let mut index = SchemaIndex::default();
        let schema = r#"{\"type\":\"record\",\"name\":\"Order\",\"namespace\":\"shop\",\"fields\":[]}"#;
        for (subject, id) in [("t-value", 7), ("t-key", 3), ("shop.Order", 9), ("t-shop.Order", 10)] {
            let key = format!(r#"{{"keytype":"SCHEMA","subject":"{subject}","version":1,"magic":1}}"#);
            let value = format!(r#"{{"subject":"{subject}","version":1,"id":{id},"schema":"{schema}"}}"#);
            index.apply_record(key.as_bytes(), Some(value.as_bytes())).expect("applies");
        }
        let key = br#"{"keytype":"SCHEMA","subject":"plain","version":1,"magic":1}"#;
        index.apply_record(key, Some(br#"{"id":11,"schema":"\"string\""}"#)).expect("applies");
        index
    }

    type Fields<'a> = (Option<&'a [u8]>, Option<&'a [u8]>);

    fn batch(codec: Compression, records: &[Fields<'_>]) -> Vec<u8> {
        let mut b = BatchBuilder::new(codec);
        for (k, v) in records {
            b.push(RecordSpec::new(*k, *v, 1000).with_header("h", Some(b"header value")));
        }
        b.build()
    }

    fn values(topic: &str, strategy: SubjectNameStrategy) -> Rules<'_> {
        Rules { topic, key: None, value: Some(strategy) }
    }

    fn check(b: &[u8], rules: &Rules<'_>) -> Result<(), Rejection> {
        check_batch(b, rules, &index(), 1 << 24).map_err(|e| e.expect("records readable"))
    }

    #[test]
    fn plain_json_is_rejected_in_every_codec() {
        for codec in CODECS {
            let b = batch(codec, &[(None, Some(br#"{"id":1}"#))]);
            let r = check(&b, &values("t", SubjectNameStrategy::TopicName)).expect_err("rejected");
            assert_eq!(r.rejected, 1);
            assert_eq!(r.problems[0].kind, ProblemKind::NoSchemaId);
            assert_eq!(r.problems[0].side, Side::Value);
            assert!(r.problems[0].reason.contains("0x7b"), "{}", r.problems[0].reason);
        }
    }

    #[test]
    fn registered_ids_pass_and_unknown_ids_fail_in_every_codec() {
        let good = framed(7, b"avro bytes");
        let unknown = framed(8, b"avro bytes");
        let other_subject = framed(3, b"");
        for codec in CODECS {
            let rules = values("t", SubjectNameStrategy::TopicName);
            assert_eq!(check(&batch(codec, &[(None, Some(&good)), (Some(b"k"), Some(&good))]), &rules), Ok(()));
            let r = check(
                &batch(codec, &[(None, Some(&good)), (None, Some(&unknown)), (None, Some(&other_subject))]),
                &rules,
            )
            .expect_err("rejected");
            assert_eq!(r.rejected, 2);
            assert_eq!(r.problems.iter().map(|p| p.index).collect::<Vec<_>>(), vec![1, 2]);
            assert_eq!(r.problems[0].kind, ProblemKind::NotRegistered { subject: Some("t-value".to_string()) });
            assert!(r.problems[1].reason.contains("schema id 3"), "{}", r.problems[1].reason);
        }
    }

    #[test]
    fn nulls_pass_and_short_values_fail() {
        let rules = Rules {
            topic: "t",
            key: Some(SubjectNameStrategy::TopicName),
            value: Some(SubjectNameStrategy::TopicName),
        };
        assert_eq!(check(&batch(Compression::None, &[(None, None)]), &rules), Ok(()), "null key, tombstone");
        for short in [&b""[..], &[0u8, 0, 0][..]] {
            for codec in CODECS {
                let r = check(&batch(codec, &[(None, Some(short))]), &rules).expect_err("rejected");
                assert_eq!(r.problems[0].kind, ProblemKind::NoSchemaId);
            }
        }
        // Keys are checked against <topic>-key.
        let key = framed(3, b"k");
        let value = framed(7, b"v");
        assert_eq!(check(&batch(Compression::Lz4, &[(Some(&key), Some(&value))]), &rules), Ok(()));
        let r = check(&batch(Compression::Lz4, &[(Some(&value), Some(&value))]), &rules).expect_err("key id wrong");
        assert_eq!(r.problems[0].side, Side::Key);
        // Without key validation, any key goes.
        let rules = values("t", SubjectNameStrategy::TopicName);
        assert_eq!(check(&batch(Compression::None, &[(Some(b"plain"), Some(&value))]), &rules), Ok(()));
    }

    #[test]
    fn record_strategies_name_the_subject_from_the_schema() {
        let record = values("t", SubjectNameStrategy::RecordName);
        assert_eq!(check(&batch(Compression::None, &[(None, Some(&framed(9, b"")))]), &record), Ok(()));
        let r = check(&batch(Compression::None, &[(None, Some(&framed(10, b"")))]), &record).expect_err("wrong");
        assert!(r.problems[0].reason.contains("subject shop.Order"), "{}", r.problems[0].reason);
        let r = check(&batch(Compression::None, &[(None, Some(&framed(99, b"")))]), &record).expect_err("unknown");
        assert_eq!(r.problems[0].kind, ProblemKind::NotRegistered { subject: None });
        let r = check(&batch(Compression::None, &[(None, Some(&framed(11, b"")))]), &record).expect_err("no name");
        assert!(r.problems[0].reason.contains("no record name"), "{}", r.problems[0].reason);

        let topic_record = values("t", SubjectNameStrategy::TopicRecordName);
        assert_eq!(check(&batch(Compression::Gzip, &[(None, Some(&framed(10, b"")))]), &topic_record), Ok(()));
        assert!(check(&batch(Compression::Gzip, &[(None, Some(&framed(9, b"")))]), &topic_record).is_err());
        assert!(
            check(
                &batch(Compression::Gzip, &[(None, Some(&framed(10, b"")))]),
                &values("u", SubjectNameStrategy::TopicRecordName)
            )
            .is_err()
        );
    }

    #[test]
    fn many_bad_records_are_counted_but_listed_up_to_the_cap() {
        let records: Vec<Fields<'_>> = (0..PROBLEMS_MAX + 5).map(|_| (None, Some(&b"x"[..]))).collect();
        let r = check(&batch(Compression::Zstd, &records), &values("t", SubjectNameStrategy::TopicName))
            .expect_err("rejected");
        assert_eq!(r.rejected, PROBLEMS_MAX + 5);
        assert_eq!(r.problems.len(), PROBLEMS_MAX);
    }

    #[test]
    fn decompression_is_bounded() {
        let big = vec![0u8; 1 << 20];
        let b = batch(Compression::Zstd, &[(None, Some(&big))]);
        let rules = values("t", SubjectNameStrategy::TopicName);
        assert_eq!(check_batch(&b, &rules, &index(), 1000), Err(Err(BatchError::DecompressedTooLarge(1000))));
    }

    #[test]
    fn garbage_never_panics() {
        let rules = values("t", SubjectNameStrategy::TopicName);
        let good = batch(Compression::Gzip, &[(None, Some(&framed(7, b"payload")))]);
        for at in 0..good.len() {
            let mut b = good.clone();
            b[at] ^= 0x5a;
            let _ = check_batch(&b, &rules, &index(), 1 << 20);
        }
        let _ = check_batch(&good[..30], &rules, &index(), 1 << 20);
    }
}
