//! Idempotent producer state of one partition: for each producer id, its
//! epoch and the last five batches' sequence ranges and offsets, so retries
//! are answered with the original offsets and gaps are refused. Snapshotted
//! to `<offset>.snapshot` files and rebuilt from the log after them.

use std::collections::{HashMap, VecDeque};
use std::path::Path;

use tributary_record::BatchHeader;

use crate::error::LogError;

/// Batches remembered per producer (the client keeps at most 5 in flight).
pub const BATCHES_PER_PRODUCER: usize = 5;

/// One remembered batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchMetadata {
    /// First sequence.
    pub first_sequence: i32,
    /// Last sequence.
    pub last_sequence: i32,
    /// Offset of the first record.
    pub base_offset: i64,
    /// Offset delta of the last record.
    pub last_offset_delta: i32,
    /// Batch max timestamp.
    pub timestamp: i64,
}

/// A producer's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerEntry {
    /// Current epoch.
    pub epoch: i16,
    /// Most recent batches, oldest first.
    pub batches: VecDeque<BatchMetadata>,
    /// Timestamp of the last append, for expiry.
    pub last_timestamp: i64,
}

/// What the sequence check decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SequenceCheck {
    /// Append it.
    Append,
    /// A retry of a batch already appended at this base offset.
    Duplicate(BatchMetadata),
}

/// All producers of a partition.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ProducerState {
    producers: HashMap<i64, ProducerEntry>,
}

fn in_sequence(last: i32, next: i32) -> bool {
    next == last.wrapping_add(1) && next != i32::MIN || (last == i32::MAX && next == 0)
}

impl ProducerState {
    /// Checks a batch against the producer's state (Kafka's rules: an older
    /// epoch is fenced; a new epoch must start at sequence 0 unless the
    /// producer is unknown; within an epoch a retry of one of the last five
    /// batches is a duplicate and anything else must follow the last sequence).
    pub fn check(&self, h: &BatchHeader) -> Result<SequenceCheck, LogError> {
        if !h.has_producer_id() {
            return Ok(SequenceCheck::Append);
        }
        let Some(entry) = self.producers.get(&h.producer_id) else {
            return Ok(SequenceCheck::Append);
        };
        if h.producer_epoch < entry.epoch {
            return Err(LogError::InvalidProducerEpoch {
                producer_id: h.producer_id,
                epoch: h.producer_epoch,
                current: entry.epoch,
            });
        }
        if h.producer_epoch > entry.epoch {
            if h.base_sequence != 0 {
                return Err(LogError::OutOfOrderSequence {
                    producer_id: h.producer_id,
                    sequence: h.base_sequence,
                    last_sequence: -1,
                });
            }
            return Ok(SequenceCheck::Append);
        }
        let last_sequence = h.last_sequence();
        if let Some(dup) =
            entry.batches.iter().find(|b| b.first_sequence == h.base_sequence && b.last_sequence == last_sequence)
        {
            return Ok(SequenceCheck::Duplicate(*dup));
        }
        let last = entry.batches.back().map_or(-1, |b| b.last_sequence);
        if entry.batches.is_empty() || in_sequence(last, h.base_sequence) {
            return Ok(SequenceCheck::Append);
        }
        Err(LogError::OutOfOrderSequence { producer_id: h.producer_id, sequence: h.base_sequence, last_sequence: last })
    }

    /// Records an appended batch (whose base offset is now assigned).
    pub fn update(&mut self, h: &BatchHeader) {
        if !h.has_producer_id() {
            return;
        }
        let entry = self.producers.entry(h.producer_id).or_insert_with(|| ProducerEntry {
            epoch: h.producer_epoch,
            batches: VecDeque::new(),
            last_timestamp: h.max_timestamp,
        });
        if h.producer_epoch != entry.epoch {
            entry.epoch = h.producer_epoch;
            entry.batches.clear();
        }
        if entry.batches.len() == BATCHES_PER_PRODUCER {
            entry.batches.pop_front();
        }
        entry.batches.push_back(BatchMetadata {
            first_sequence: h.base_sequence,
            last_sequence: h.last_sequence(),
            base_offset: h.base_offset,
            last_offset_delta: h.last_offset_delta,
            timestamp: h.max_timestamp,
        });
        entry.last_timestamp = entry.last_timestamp.max(h.max_timestamp);
    }

    /// Forgets producers idle since before `cutoff_ms`.
    pub fn expire(&mut self, cutoff_ms: i64) {
        self.producers.retain(|_, e| e.last_timestamp >= cutoff_ms);
    }

    /// Number of producers tracked.
    pub fn len(&self) -> usize {
        self.producers.len()
    }

    /// Whether no producer is tracked.
    pub fn is_empty(&self) -> bool {
        self.producers.is_empty()
    }

    /// Serialises the state: magic, count, entries, CRC-32C.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(b"TRPS");
        out.extend_from_slice(&1u16.to_be_bytes());
        let mut ids: Vec<_> = self.producers.keys().copied().collect();
        ids.sort_unstable();
        out.extend_from_slice(&(ids.len() as u32).to_be_bytes());
        for id in ids {
            let e = &self.producers[&id];
            out.extend_from_slice(&id.to_be_bytes());
            out.extend_from_slice(&e.epoch.to_be_bytes());
            out.extend_from_slice(&e.last_timestamp.to_be_bytes());
            out.push(e.batches.len() as u8);
            for b in &e.batches {
                out.extend_from_slice(&b.first_sequence.to_be_bytes());
                out.extend_from_slice(&b.last_sequence.to_be_bytes());
                out.extend_from_slice(&b.base_offset.to_be_bytes());
                out.extend_from_slice(&b.last_offset_delta.to_be_bytes());
                out.extend_from_slice(&b.timestamp.to_be_bytes());
            }
        }
        let crc = crc32c::crc32c(&out);
        out.extend_from_slice(&crc.to_be_bytes());
        out
    }

    /// Parses [`ProducerState::encode`] output; `None` if torn or corrupt.
    pub fn decode(bytes: &[u8]) -> Option<ProducerState> {
        if bytes.len() < 14 || &bytes[..4] != b"TRPS" {
            return None;
        }
        let (body, crc) = bytes.split_at(bytes.len() - 4);
        if crc32c::crc32c(body) != u32::from_be_bytes([crc[0], crc[1], crc[2], crc[3]]) {
            return None;
        }
        let mut r = Reader { buf: &body[6..] };
        let count = r.u32()? as usize;
        let mut producers = HashMap::new();
        for _ in 0..count {
            let id = r.i64()?;
            let epoch = r.i16()?;
            let last_timestamp = r.i64()?;
            let n = r.u8()? as usize;
            if n > BATCHES_PER_PRODUCER {
                return None;
            }
            let mut batches = VecDeque::with_capacity(n);
            for _ in 0..n {
                batches.push_back(BatchMetadata {
                    first_sequence: r.i32()?,
                    last_sequence: r.i32()?,
                    base_offset: r.i64()?,
                    last_offset_delta: r.i32()?,
                    timestamp: r.i64()?,
                });
            }
            producers.insert(id, ProducerEntry { epoch, batches, last_timestamp });
        }
        Some(ProducerState { producers })
    }

    /// Drops batches at or after `offset` (after a log truncation); producers
    /// left without batches are forgotten, which accepts their next sequence.
    pub fn truncate_to(&mut self, offset: i64) {
        for e in self.producers.values_mut() {
            e.batches.retain(|b| b.base_offset < offset);
        }
        self.producers.retain(|_, e| !e.batches.is_empty());
    }
}

struct Reader<'a> {
    buf: &'a [u8],
}

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        if self.buf.len() < N {
            return None;
        }
        let mut a = [0u8; N];
        a.copy_from_slice(&self.buf[..N]);
        self.buf = &self.buf[N..];
        Some(a)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take::<1>().map(|a| a[0])
    }
    fn i16(&mut self) -> Option<i16> {
        self.take().map(i16::from_be_bytes)
    }
    fn i32(&mut self) -> Option<i32> {
        self.take().map(i32::from_be_bytes)
    }
    fn u32(&mut self) -> Option<u32> {
        self.take().map(u32::from_be_bytes)
    }
    fn i64(&mut self) -> Option<i64> {
        self.take().map(i64::from_be_bytes)
    }
}

/// File name of the snapshot taken at `offset`.
pub fn snapshot_file_name(offset: i64) -> String {
    format!("{offset:020}.snapshot")
}

/// Parses a snapshot file name back into its offset.
pub fn snapshot_offset(path: &Path) -> Option<i64> {
    let name = path.file_name()?.to_str()?;
    name.strip_suffix(".snapshot")?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tributary_record::Compression;
    use tributary_record::builder::{BatchBuilder, RecordSpec};

    fn header(pid: i64, epoch: i16, seq: i32, records: usize, base_offset: i64) -> BatchHeader {
        let mut b = BatchBuilder::new(Compression::None).producer(pid, epoch, seq).base_offset(base_offset);
        for _ in 0..records {
            b.push(RecordSpec::new(None, Some(b"v"), 1));
        }
        BatchHeader::parse(&b.build()).expect("header")
    }

    #[test]
    fn duplicates_gaps_and_fencing() {
        let mut s = ProducerState::default();
        let first = header(7, 0, 0, 3, 100);
        assert_eq!(s.check(&first).expect("ok"), SequenceCheck::Append);
        s.update(&first);
        // A retry of the same batch is a duplicate with the original offset.
        match s.check(&header(7, 0, 0, 3, 0)).expect("ok") {
            SequenceCheck::Duplicate(b) => assert_eq!(b.base_offset, 100),
            other => panic!("{other:?}"),
        }
        // The next batch follows.
        assert_eq!(s.check(&header(7, 0, 3, 1, 0)).expect("ok"), SequenceCheck::Append);
        // A gap is refused.
        assert!(matches!(s.check(&header(7, 0, 5, 1, 0)), Err(LogError::OutOfOrderSequence { .. })));
        // An older epoch is fenced.
        let bumped = header(7, 1, 0, 1, 103);
        s.update(&bumped);
        assert!(matches!(s.check(&header(7, 0, 4, 1, 0)), Err(LogError::InvalidProducerEpoch { .. })));
        // A new epoch must start at 0.
        assert!(matches!(s.check(&header(7, 2, 9, 1, 0)), Err(LogError::OutOfOrderSequence { .. })));
        // Unknown producers may start anywhere.
        assert_eq!(s.check(&header(8, 0, 42, 1, 0)).expect("ok"), SequenceCheck::Append);
    }

    #[test]
    fn only_five_batches_are_remembered() {
        let mut s = ProducerState::default();
        for i in 0..7 {
            s.update(&header(1, 0, i, 1, i64::from(i)));
        }
        assert!(matches!(s.check(&header(1, 0, 1, 1, 0)), Err(LogError::OutOfOrderSequence { .. })));
        assert!(matches!(s.check(&header(1, 0, 2, 1, 0)).expect("ok"), SequenceCheck::Duplicate(_)));
    }

    #[test]
    fn snapshot_round_trip_and_corruption() {
        let mut s = ProducerState::default();
        s.update(&header(1, 0, 0, 2, 10));
        s.update(&header(2, 3, 0, 1, 12));
        let bytes = s.encode();
        assert_eq!(ProducerState::decode(&bytes), Some(s));
        let mut bad = bytes.clone();
        bad[10] ^= 1;
        assert_eq!(ProducerState::decode(&bad), None);
        assert_eq!(ProducerState::decode(&bytes[..bytes.len() - 1]), None);
    }

    #[test]
    fn sequence_wraps_at_int_max() {
        assert!(in_sequence(i32::MAX, 0));
        assert!(in_sequence(4, 5));
        assert!(!in_sequence(4, 6));
    }
}
