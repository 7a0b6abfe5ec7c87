//! Helpers of the log's unit tests: batches as a leader stamps them, a log
//! opened without an epoch, every batch read back.

use std::path::Path;

use tributary_record::BatchHeader;
use tributary_record::Compression;
use tributary_record::batch::{BATCH_HEADER_LEN, reseal, set_partition_leader_epoch};
use tributary_record::builder::{BatchBuilder, RecordSpec};

use super::{LogConfig, PartitionLog};

/// A batch of `records` records at `base` in `epoch`, optionally of a producer.
pub(crate) fn batch(base: i64, records: usize, epoch: i32, producer: Option<(i64, i16, i32)>) -> Vec<u8> {
    let mut b = BatchBuilder::new(Compression::None).base_offset(base);
    if let Some((id, producer_epoch, sequence)) = producer {
        b = b.producer(id, producer_epoch, sequence);
    }
    for i in 0..records {
        b.push(RecordSpec::new(Some(b"k"), Some(format!("v{base}-{i}").as_bytes()), 1_000 + base));
    }
    let mut bytes = b.build();
    set_partition_leader_epoch(&mut bytes, epoch);
    let (head, rest) = bytes.split_at_mut(BATCH_HEADER_LEN);
    reseal(head, rest);
    bytes
}

pub(crate) fn open(dir: &Path, config: LogConfig) -> PartitionLog {
    PartitionLog::open(dir, config, true, -1, 0).expect("open")
}

pub(crate) fn read_all(log: &PartitionLog) -> Vec<u8> {
    let mut out = Vec::new();
    let mut offset = log.log_start_offset();
    while let Some(plan) = log.plan_read(offset, log.log_end_offset()).expect("plan") {
        let bytes = plan.execute(1 << 20, true).expect("read");
        let mut at = 0;
        while at < bytes.len() {
            let h = BatchHeader::parse(&bytes[at..]).expect("header");
            offset = h.next_offset();
            at += h.total_len();
        }
        out.extend_from_slice(&bytes);
    }
    out
}
