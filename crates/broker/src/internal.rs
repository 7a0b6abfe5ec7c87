//! Internal topics from the inside: appending the group coordinator's records
//! to `__consumer_offsets`, and reading the records of a partition from the
//! local log for group state replay and the schema index (the registry's
//! storage topic).

use tributary_record::BatchIter;
use tributary_record::batch::BATCH_HEADER_LEN;
use tributary_record::records::RecordIter;

use tokio::sync::watch;
use tributary_log::{AppendInfo, AppendOutcome};
use tributary_protocol::ErrorCode;
use tributary_record::Compression;
use tributary_record::builder::{BatchBuilder, RecordSpec};
use tributary_types::now_ms;

use crate::cluster::Cluster;
use crate::error::ApiError;
use crate::partition::{Partition, Progress};

/// Largest decompressed batch of an internal topic.
const DECOMPRESSED_BYTES_MAX: usize = 64 << 20;
/// Bytes read per step.
const READ_STEP_BYTES: usize = 1 << 20;

/// Calls `f(offset, key, value)` for every record of `partition` from its log
/// start up to (excluding) `upper`, in offset order. Control batches are skipped.
pub(crate) fn for_each_record(
    partition: &Partition,
    upper: i64,
    f: impl FnMut(i64, &[u8], Option<&[u8]>),
) -> Result<(), String> {
    read_records(partition, i64::MIN, upper, usize::MAX, f).map(|_| ())
}

/// Calls `f(offset, key, value)` for the records of `partition` from `from`
/// (or the log start, if later) towards `upper` (excluded), in offset order,
/// stopping once about `budget_bytes` of batches were read (whole batches,
/// at least one). Returns the offset to continue from: `upper` when every
/// record below it was seen. Control batches are skipped; a null key is
/// passed as empty.
pub(crate) fn read_records(
    partition: &Partition,
    from: i64,
    upper: i64,
    budget_bytes: usize,
    mut f: impl FnMut(i64, &[u8], Option<&[u8]>),
) -> Result<i64, String> {
    let mut offset = from.max(partition.log().log_start_offset());
    let mut read = 0usize;
    while offset < upper && read < budget_bytes {
        let plan = partition.log().plan_read(offset, upper).map_err(|e| e.to_string())?;
        let Some(plan) = plan else { return Ok(upper) };
        let bytes = plan.execute(READ_STEP_BYTES, true).map_err(|e| e.to_string())?;
        if bytes.is_empty() {
            break;
        }
        read = read.saturating_add(bytes.len());
        for item in BatchIter::new(&bytes) {
            let (header, raw) = item.map_err(|e| e.to_string())?;
            if !header.is_control() {
                let codec = header.compression().map_err(|e| e.to_string())?;
                let records =
                    codec.decompress(&raw[BATCH_HEADER_LEN..], DECOMPRESSED_BYTES_MAX).map_err(|e| e.to_string())?;
                for record in RecordIter::new(&records) {
                    let record =
                        record.map_err(|(i, why)| format!("record {i} at batch {}: {why}", header.base_offset))?;
                    let at = header.base_offset + i64::from(record.offset_delta);
                    if at >= offset {
                        f(at, record.key.unwrap_or_default(), record.value);
                    }
                }
            }
            offset = header.next_offset();
        }
    }
    Ok(offset)
}

impl Cluster {
    /// Appends records to a partition of an internal topic (uncompressed,
    /// timestamped by the caller). Returns the partition's progress channel,
    /// the offset that must become durable, and the first offset assigned.
    pub fn append_internal(
        &self,
        topic: &str,
        partition: i32,
        records: Vec<RecordSpec>,
    ) -> Result<(watch::Receiver<Progress>, i64, i64), ApiError> {
        let registry = self.registry();
        let target = registry.partition(topic, partition).cloned().ok_or_else(|| {
            ApiError::new(ErrorCode::UnknownTopicOrPartition, format!("{topic}-{partition} does not exist"))
        })?;
        let max_timestamp = records.iter().map(|r| r.timestamp).max().unwrap_or(-1);
        let offset_delta_of_max = records.iter().position(|r| r.timestamp == max_timestamp).unwrap_or(0) as i32;
        let mut builder = BatchBuilder::new(Compression::None);
        for r in records {
            builder.push(r);
        }
        let batch = builder.build();
        let info = AppendInfo {
            leader_epoch: target.leader_epoch(),
            max_timestamp,
            offset_delta_of_max_timestamp: offset_delta_of_max,
            now_ms: now_ms(),
            log_append_time: false,
        };
        let progress = target.subscribe();
        let outcome = target.log().append(&batch, &info).map_err(ApiError::from)?;
        let (base, last) = match outcome {
            AppendOutcome::Appended { base_offset, last_offset, .. } => (base_offset, last_offset),
            AppendOutcome::Duplicate { base_offset, last_offset } => (base_offset, last_offset),
        };
        self.flusher.mark_dirty(&target);
        Ok((progress, last + 1, base))
    }
}
