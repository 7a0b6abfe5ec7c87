//! Internal topics from the inside: appending the group coordinator's records
//! to `__consumer_offsets`, and reading the records of a partition from the
//! local log for group state replay and the schema index (the registry's
//! storage topic).

use tributary_record::BatchIter;
use tributary_record::batch::BATCH_HEADER_LEN;
use tributary_record::records::RecordIter;

use std::time::Duration;

use tokio::sync::watch;
use tributary_log::{AppendInfo, AppendOutcome};
use tributary_protocol::ErrorCode;
use tributary_record::Compression;
use tributary_record::builder::{BatchBuilder, RecordSpec};
use tributary_types::now_ms;

use crate::cluster::Cluster;
use crate::error::ApiError;
use crate::partition::{Partition, PartitionRef, Progress, wait_committed};
use crate::replication::produce_error_code;

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

/// Records appended to a partition this node leads, not yet known to be committed.
#[derive(Debug)]
pub(crate) struct Appended {
    /// The partition's progress.
    pub(crate) progress: watch::Receiver<Progress>,
    /// The offset after the last record: the high watermark must reach it.
    pub(crate) end: i64,
    /// The offset of the first record.
    pub(crate) base: i64,
    partition: PartitionRef,
    leader_epoch: i32,
}

/// How often a wait for the high watermark checks that this node still leads.
const LEADERSHIP_CHECK: Duration = Duration::from_millis(250);

impl Appended {
    /// Whether the in-sync replica set of a replicated partition is smaller
    /// than its `min.insync.replicas` (checked under the log's lock, as
    /// produce checks it).
    fn isr_below_min_insync(&self) -> bool {
        let _log = self.partition.log();
        self.partition.is_replicated() && self.partition.replica_check_produce(-1).is_err()
    }

    /// Waits until the high watermark passes the records (acks=all: every
    /// in-sync replica has them), as long as this node leads the partition
    /// in the epoch they were appended in. NOT_COORDINATOR once it does not
    /// (the new leader may not have them; the client retries there),
    /// KAFKA_STORAGE_ERROR if the partition went offline,
    /// NOT_ENOUGH_REPLICAS_AFTER_APPEND when the in-sync replica set shrank
    /// below `min.insync.replicas` while waiting (as Kafka's acks=all
    /// answers; the high watermark would not pass them until it grows back).
    pub(crate) async fn committed(self) -> Result<(), ApiError> {
        let lost = || {
            ApiError::new(
                ErrorCode::NotCoordinator,
                format!(
                    "this broker no longer leads {}-{}; the write may not survive, retry on the new coordinator",
                    self.partition.topic, self.partition.index
                ),
            )
        };
        let leads = || self.partition.is_leader() && self.partition.leader_epoch() == self.leader_epoch;
        loop {
            match tokio::time::timeout(LEADERSHIP_CHECK, wait_committed(self.progress.clone(), self.end)).await {
                Ok(p) if p.offline => {
                    return Err(ApiError::new(
                        ErrorCode::KafkaStorageError,
                        format!("{}-{} is offline", self.partition.topic, self.partition.index),
                    ));
                }
                Ok(_) => return if leads() { Ok(()) } else { Err(lost()) },
                Err(_) if !leads() => return Err(lost()),
                Err(_) if self.isr_below_min_insync() => {
                    return Err(ApiError::new(
                        ErrorCode::NotEnoughReplicasAfterAppend,
                        format!(
                            "{}-{}: the in-sync replica set became smaller than min.insync.replicas after the append",
                            self.partition.topic, self.partition.index
                        ),
                    ));
                }
                Err(_) => {}
            }
        }
    }
}

impl Cluster {
    /// The check acks=all makes before an append, as produce makes it:
    /// NOT_ENOUGH_REPLICAS while the in-sync replica set is smaller than the
    /// topic's `min.insync.replicas` (its override, else the broker's
    /// default). A partition that is not replicated has itself alone in sync.
    fn check_min_insync(topic: &str, partition: &Partition, min_insync: i32) -> Result<(), ApiError> {
        let refused = if partition.is_replicated() {
            partition.replica_check_produce(-1).err().map(produce_error_code)
        } else {
            (min_insync > 1).then_some(ErrorCode::NotEnoughReplicas)
        };
        match refused {
            None => Ok(()),
            Some(code) => Err(ApiError::new(
                code,
                format!(
                    "{topic}-{}: the in-sync replica set is smaller than min.insync.replicas={min_insync}",
                    partition.index
                ),
            )),
        }
    }

    /// Appends records to a partition of an internal topic this node leads
    /// (uncompressed, timestamped by the caller), as a produce with acks=all
    /// would: NOT_COORDINATOR when it does not lead it (checked under the
    /// log's lock, as produce does), NOT_ENOUGH_REPLICAS while its in-sync
    /// replica set is smaller than `min.insync.replicas`.
    pub(crate) fn append_internal(
        &self,
        topic: &str,
        partition: i32,
        records: Vec<RecordSpec>,
    ) -> Result<Appended, ApiError> {
        let registry = self.registry();
        let target = registry.partition(topic, partition).cloned().ok_or_else(|| {
            ApiError::new(ErrorCode::UnknownTopicOrPartition, format!("{topic}-{partition} does not exist"))
        })?;
        let min_insync = registry.topics.get(topic).map_or(1, |t| t.config.min_insync_replicas);
        let max_timestamp = records.iter().map(|r| r.timestamp).max().unwrap_or(-1);
        let offset_delta_of_max = records.iter().position(|r| r.timestamp == max_timestamp).unwrap_or(0) as i32;
        let mut builder = BatchBuilder::new(Compression::None);
        for r in records {
            builder.push(r);
        }
        let batch = builder.build();
        let progress = target.subscribe();
        let mut log = target.log();
        if !target.is_leader() {
            return Err(ApiError::new(
                ErrorCode::NotCoordinator,
                format!("this broker does not lead {topic}-{partition}"),
            ));
        }
        if let Err(e) = Cluster::check_min_insync(topic, &target, min_insync) {
            drop(log);
            return Err(e);
        }
        let leader_epoch = target.leader_epoch();
        let info = AppendInfo {
            leader_epoch,
            max_timestamp,
            offset_delta_of_max_timestamp: offset_delta_of_max,
            now_ms: now_ms(),
            log_append_time: false,
        };
        let outcome = log.append(&batch, &info).map_err(ApiError::from)?;
        drop(log);
        let (base, last) = match outcome {
            AppendOutcome::Appended { base_offset, last_offset, .. } => (base_offset, last_offset),
            AppendOutcome::Duplicate { base_offset, last_offset } => (base_offset, last_offset),
        };
        self.flusher.mark_dirty(&target);
        Ok(Appended { progress, end: last + 1, base, partition: target, leader_epoch })
    }
}
