//! Everything a broker checks before it appends a produced batch, and the
//! rewrites it may make afterwards (recompression).

use crate::batch::{BATCH_HEADER_LEN, BatchHeader, compute_crc};
use crate::builder::{BatchFields, assemble_batch};
use crate::compression::Compression;
use crate::error::{BatchError, RecordProblem};

/// Most rejected records listed for one batch.
const RECORD_PROBLEMS_MAX: usize = 10_000;
use crate::records::{RecordScanner, ScanError, skim_record};

/// Bounds on record timestamps (`message.timestamp.before.max.ms` /
/// `message.timestamp.after.max.ms`), checked for CreateTime topics only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimestampBounds {
    /// The broker's clock.
    pub now_ms: i64,
    /// How far in the past a timestamp may be.
    pub before_max_ms: i64,
    /// How far in the future a timestamp may be.
    pub after_max_ms: i64,
}

/// Topic and request rules a produced batch must follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValidationRules {
    /// Every record needs a key (compacted topics).
    pub require_keys: bool,
    /// zstd is allowed (Produce v7+).
    pub allow_zstd: bool,
    /// Upper bound on the decompressed size of the records.
    pub decompressed_bytes_max: usize,
    /// Timestamp window, if the topic uses CreateTime.
    pub timestamp_bounds: Option<TimestampBounds>,
}

/// What validation learnt about a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValidatedBatch {
    /// The parsed header.
    pub header: BatchHeader,
    /// Largest record timestamp, computed from the records.
    pub max_timestamp: i64,
    /// Offset delta of the first record holding `max_timestamp`.
    pub offset_delta_of_max_timestamp: i32,
}

/// The facts about one record that validation looks at.
struct RecordFacts {
    timestamp_delta: i64,
    offset_delta: i32,
    key_is_null: bool,
}

/// Validates one produced batch: exact length, magic 2, CRC-32C, codec,
/// record count and consecutive offset deltas, every record well formed,
/// keys present if required, timestamps within bounds, no trailing bytes.
pub fn validate_batch(batch: &[u8], rules: &ValidationRules) -> Result<ValidatedBatch, BatchError> {
    let header = BatchHeader::parse(batch)?;
    if header.total_len() != batch.len() {
        return Err(BatchError::InvalidLength(header.batch_length));
    }
    let computed = compute_crc(batch);
    if computed != header.crc {
        return Err(BatchError::CrcMismatch { stored: header.crc, computed });
    }
    let compression = header.compression()?;
    if compression == Compression::Zstd && !rules.allow_zstd {
        return Err(BatchError::ZstdNotAllowed);
    }
    if header.is_control() {
        return Err(BatchError::InvalidBatch("clients may not produce control batches".to_string()));
    }
    if header.records_count <= 0 {
        return Err(BatchError::InvalidBatch(format!("batch declares {} records", header.records_count)));
    }
    if i64::from(header.last_offset_delta) != i64::from(header.records_count) - 1 {
        return Err(BatchError::InvalidBatch(format!(
            "last offset delta {} does not match {} records",
            header.last_offset_delta, header.records_count
        )));
    }

    let mut state =
        Checker { header, rules, max_timestamp: i64::MIN, offset_delta_of_max: 0, seen: 0, problems: Vec::new() };
    let payload = &batch[BATCH_HEADER_LEN..];
    if compression == Compression::None {
        let mut rest = payload;
        while !rest.is_empty() {
            let index = state.seen;
            let record = skim_record(&mut rest).map_err(|reason| BatchError::InvalidRecord { index, reason })?;
            state.check(RecordFacts {
                timestamp_delta: record.timestamp_delta,
                offset_delta: record.offset_delta,
                key_is_null: record.key_is_null,
            })?;
        }
    } else {
        let reader = compression.reader(payload, rules.decompressed_bytes_max)?;
        let mut scanner = RecordScanner::new(reader, rules.decompressed_bytes_max);
        loop {
            let index = state.seen;
            match scanner.next_record(false) {
                Ok(Some(meta)) => state.check(RecordFacts {
                    timestamp_delta: meta.timestamp_delta,
                    offset_delta: meta.offset_delta,
                    key_is_null: meta.key_is_null,
                })?,
                Ok(None) => break,
                Err(ScanError::Invalid(reason)) => {
                    return Err(BatchError::InvalidRecord { index, reason });
                }
                Err(ScanError::LimitExceeded) => {
                    return Err(BatchError::DecompressedTooLarge(rules.decompressed_bytes_max));
                }
                Err(ScanError::Io(e)) => {
                    return Err(BatchError::Decompression(format!("{}: {e}", compression.name())));
                }
            }
        }
    }
    if !state.problems.is_empty() {
        return Err(BatchError::RecordsRejected(state.problems));
    }
    if state.seen != header.records_count as usize {
        return Err(BatchError::InvalidBatch(format!(
            "batch declares {} records but holds {}",
            header.records_count, state.seen
        )));
    }
    Ok(ValidatedBatch {
        header,
        max_timestamp: state.max_timestamp,
        offset_delta_of_max_timestamp: state.offset_delta_of_max,
    })
}

struct Checker<'r> {
    header: BatchHeader,
    rules: &'r ValidationRules,
    max_timestamp: i64,
    offset_delta_of_max: i32,
    seen: usize,
    problems: Vec<RecordProblem>,
}

impl Checker<'_> {
    fn problem(&mut self, index: usize, timestamp: bool, reason: String) {
        if self.problems.len() < RECORD_PROBLEMS_MAX {
            self.problems.push(RecordProblem { index, timestamp, reason });
        }
    }

    #[inline]
    fn check(&mut self, record: RecordFacts) -> Result<(), BatchError> {
        let index = self.seen;
        if index >= self.header.records_count as usize {
            return Err(BatchError::InvalidBatch(format!(
                "batch declares {} records but holds more",
                self.header.records_count
            )));
        }
        if i64::from(record.offset_delta) != index as i64 {
            return Err(BatchError::InvalidRecord {
                index,
                reason: format!("offset delta {} where {index} was expected", record.offset_delta),
            });
        }
        if self.rules.require_keys && record.key_is_null {
            self.problem(index, false, "Compacted topic cannot accept message without key".to_string());
        }
        let timestamp = self.header.base_timestamp.saturating_add(record.timestamp_delta);
        if let Some(bounds) = self.rules.timestamp_bounds {
            if timestamp < bounds.now_ms.saturating_sub(bounds.before_max_ms) {
                let reason = format!(
                    "timestamp {timestamp} is more than message.timestamp.before.max.ms={} in the past",
                    bounds.before_max_ms
                );
                self.problem(index, true, reason);
            } else if timestamp > bounds.now_ms.saturating_add(bounds.after_max_ms) {
                let reason = format!(
                    "timestamp {timestamp} is more than message.timestamp.after.max.ms={} in the future",
                    bounds.after_max_ms
                );
                self.problem(index, true, reason);
            }
        }
        if timestamp > self.max_timestamp {
            self.max_timestamp = timestamp;
            self.offset_delta_of_max = record.offset_delta;
        }
        self.seen += 1;
        Ok(())
    }
}

/// Re-encodes a validated batch with another codec (topic `compression.type`
/// other than `producer`), keeping every header field but the CRC.
pub fn recompress(
    batch: &[u8],
    target: Compression,
    level: Option<i32>,
    decompressed_bytes_max: usize,
) -> Result<Vec<u8>, BatchError> {
    let header = BatchHeader::parse(batch)?;
    let records = header.compression()?.decompress(&batch[BATCH_HEADER_LEN..], decompressed_bytes_max)?;
    let fields = BatchFields {
        base_offset: header.base_offset,
        partition_leader_epoch: header.partition_leader_epoch,
        attributes_without_compression: header.attributes & !0x07,
        last_offset_delta: header.last_offset_delta,
        base_timestamp: header.base_timestamp,
        max_timestamp: header.max_timestamp,
        producer_id: header.producer_id,
        producer_epoch: header.producer_epoch,
        base_sequence: header.base_sequence,
        records_count: header.records_count,
    };
    Ok(assemble_batch(&fields, target, level, &records))
}

/// Sets the header's max timestamp (CreateTime) and recomputes the CRC.
pub fn set_max_timestamp(batch: &mut [u8], max_timestamp: i64) {
    let (head, records) = batch.split_at_mut(BATCH_HEADER_LEN);
    crate::batch::set_max_timestamp_field(head, max_timestamp);
    crate::batch::reseal(head, records);
}

/// Finds the first record in `batch` whose timestamp is at least `target`,
/// returning its offset and timestamp (the ListOffsets-by-time rule).
pub fn first_record_at_or_after(
    batch: &[u8],
    target: i64,
    decompressed_bytes_max: usize,
) -> Result<Option<(i64, i64)>, BatchError> {
    let header = BatchHeader::parse(batch)?;
    if header.is_log_append_time() {
        return Ok((header.max_timestamp >= target).then_some((header.base_offset, header.max_timestamp)));
    }
    let reader = header.compression()?.reader(&batch[BATCH_HEADER_LEN..], decompressed_bytes_max)?;
    let mut scanner = RecordScanner::new(reader, decompressed_bytes_max);
    let mut index = 0;
    loop {
        match scanner.next_record(false) {
            Ok(Some(meta)) => {
                let timestamp = header.base_timestamp.saturating_add(meta.timestamp_delta);
                if timestamp >= target {
                    return Ok(Some((header.base_offset + i64::from(meta.offset_delta), timestamp)));
                }
                index += 1;
            }
            Ok(None) => return Ok(None),
            Err(e) => {
                return Err(BatchError::InvalidRecord { index, reason: format!("{e:?}") });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::crc_matches;
    use crate::builder::{BatchBuilder, RecordSpec};
    use crate::records::RecordIter;
    use proptest::prelude::*;

    const CODECS: [Compression; 5] =
        [Compression::None, Compression::Gzip, Compression::Snappy, Compression::Lz4, Compression::Zstd];

    fn rules() -> ValidationRules {
        ValidationRules {
            require_keys: false,
            allow_zstd: true,
            decompressed_bytes_max: 1 << 24,
            timestamp_bounds: None,
        }
    }

    fn batch(codec: Compression, keys: bool) -> Vec<u8> {
        let mut b = BatchBuilder::new(codec);
        for i in 0..50u8 {
            let key = [i];
            b.push(RecordSpec::new(keys.then_some(&key[..]), Some(&[i; 100]), 1000 + i64::from(i % 7)));
        }
        b.build()
    }

    #[test]
    fn valid_batches_pass_in_every_codec() {
        for codec in CODECS {
            let v = validate_batch(&batch(codec, true), &rules()).expect("valid");
            assert_eq!(v.header.records_count, 50);
            assert_eq!(v.max_timestamp, 1006);
            assert_eq!(v.offset_delta_of_max_timestamp, 6);
        }
    }

    #[test]
    fn compacted_topics_need_keys() {
        let strict = ValidationRules { require_keys: true, ..rules() };
        for codec in CODECS {
            match validate_batch(&batch(codec, false), &strict) {
                Err(BatchError::RecordsRejected(problems)) => {
                    assert_eq!(problems.len(), 50, "every keyless record is listed ({codec:?})");
                    assert!(problems.iter().enumerate().all(|(i, p)| p.index == i && !p.timestamp));
                }
                other => panic!("{codec:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn zstd_needs_a_recent_request_version() {
        let old = ValidationRules { allow_zstd: false, ..rules() };
        assert_eq!(validate_batch(&batch(Compression::Zstd, true), &old), Err(BatchError::ZstdNotAllowed));
    }

    #[test]
    fn crc_and_length_are_checked() {
        let mut b = batch(Compression::None, true);
        let at = b.len() - 10;
        b[at] ^= 0x40;
        assert!(matches!(validate_batch(&b, &rules()), Err(BatchError::CrcMismatch { .. })));
        let mut b = batch(Compression::None, true);
        b.push(0);
        assert!(matches!(validate_batch(&b, &rules()), Err(BatchError::InvalidLength(_))));
    }

    #[test]
    fn record_count_must_match() {
        let mut b = batch(Compression::Gzip, true);
        b[57..61].copy_from_slice(&49i32.to_be_bytes());
        b[23..27].copy_from_slice(&48i32.to_be_bytes());
        let crc = compute_crc(&b);
        b[17..21].copy_from_slice(&crc.to_be_bytes());
        assert!(matches!(validate_batch(&b, &rules()), Err(BatchError::InvalidBatch(_))));
    }

    #[test]
    fn timestamps_outside_the_window_are_rejected() {
        let bounds = ValidationRules {
            timestamp_bounds: Some(TimestampBounds { now_ms: 1_000_000, before_max_ms: 1000, after_max_ms: 1000 }),
            ..rules()
        };
        match validate_batch(&batch(Compression::None, true), &bounds) {
            Err(BatchError::RecordsRejected(problems)) => {
                assert_eq!(problems.len(), 50);
                assert!(problems.iter().all(|p| p.timestamp));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn decompression_bombs_are_refused() {
        let mut b = BatchBuilder::new(Compression::Zstd);
        b.push(RecordSpec::new(None, Some(&vec![0u8; 4 << 20]), 0));
        let small = ValidationRules { decompressed_bytes_max: 1 << 20, ..rules() };
        assert_eq!(validate_batch(&b.build(), &small), Err(BatchError::DecompressedTooLarge(1 << 20)));
    }

    #[test]
    fn recompression_keeps_records() {
        for from in CODECS {
            for to in CODECS {
                let original = batch(from, true);
                let out = recompress(&original, to, None, 1 << 24).expect("recompress");
                assert!(crc_matches(&out));
                let v = validate_batch(&out, &rules()).expect("valid after recompression");
                assert_eq!(v.header.compression(), Ok(to));
                assert_eq!(v.max_timestamp, 1006);
            }
        }
    }

    #[test]
    fn timestamp_lookup_inside_a_batch() {
        for codec in CODECS {
            let b = batch(codec, true);
            assert_eq!(first_record_at_or_after(&b, 1004, 1 << 24), Ok(Some((4, 1004))));
            assert_eq!(first_record_at_or_after(&b, 0, 1 << 24), Ok(Some((0, 1000))));
            assert_eq!(first_record_at_or_after(&b, 2000, 1 << 24), Ok(None));
        }
    }

    proptest! {
        #[test]
        fn built_batches_validate(
            codec in 0usize..5,
            records in proptest::collection::vec(
                (proptest::option::of(proptest::collection::vec(any::<u8>(), 0..20)),
                 proptest::option::of(proptest::collection::vec(any::<u8>(), 0..200)),
                 -5i64..5_000,
                 proptest::collection::vec(("[a-z]{0,5}", proptest::option::of(proptest::collection::vec(any::<u8>(), 0..10))), 0..3)),
                1..30),
        ) {
            let mut b = BatchBuilder::new(CODECS[codec]);
            for (k, v, ts, headers) in &records {
                let mut spec = RecordSpec::new(k.as_deref(), v.as_deref(), *ts);
                for (hk, hv) in headers {
                    spec = spec.with_header(hk, hv.as_deref());
                }
                b.push(spec);
            }
            let bytes = b.build();
            let v = validate_batch(&bytes, &rules()).expect("built batch validates");
            prop_assert_eq!(v.header.records_count as usize, records.len());
            prop_assert_eq!(v.max_timestamp, records.iter().map(|r| r.2).max().unwrap_or(-1));
            // The zero-copy reader sees exactly what was written.
            let raw = CODECS[codec].decompress(&bytes[BATCH_HEADER_LEN..], 1 << 24).expect("decompress");
            let parsed: Vec<_> = RecordIter::new(&raw).map(|r| r.expect("record")).collect();
            for (p, (k, v, _, headers)) in parsed.iter().zip(&records) {
                prop_assert_eq!(p.key, k.as_deref());
                prop_assert_eq!(p.value, v.as_deref());
                prop_assert_eq!(p.headers.len(), headers.len());
            }
        }

        #[test]
        fn corrupted_batches_never_panic(flip in 0usize..2000, value in any::<u8>(), codec in 0usize..5) {
            let mut b = batch(CODECS[codec], true);
            let at = flip % b.len();
            b[at] = value;
            // Recompute the CRC so the corruption reaches the record parser too.
            if b.len() > 21 { let crc = compute_crc(&b); b[17..21].copy_from_slice(&crc.to_be_bytes()); }
            let _ = validate_batch(&b, &rules());
        }
    }
}
