//! ListOffsets (key 2): latest (-1, the high watermark), earliest (-2, the
//! log start), max timestamp (-3), earliest local (-4, the log start without
//! tiered storage), and the first offset at or after a timestamp via the
//! time index.
//!
//! A lookup by time may decompress whole batches, so it is planned under the
//! partition's lock (which segments, from which position) and run without it
//! on the [`CpuPool`](crate::cpu::CpuPool); the other lookups answer in place.

use std::sync::Arc;

use kafka_protocol::messages::list_offsets_request::ListOffsetsPartition;
use kafka_protocol::messages::list_offsets_response::{ListOffsetsPartitionResponse, ListOffsetsTopicResponse};
use kafka_protocol::messages::{ApiKey, ListOffsetsRequest, ListOffsetsResponse};
use tributary_log::TimestampSearch;
use tributary_protocol::{ErrorCode, RequestHeader};

use super::{Reply, respond};
use crate::cluster::{Cluster, Registry};
use crate::error::ApiError;
use crate::partition::PartitionRef;

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
const EARLIEST_LOCAL: i64 = -4;

/// One partition's answer: offset, timestamp, leader epoch of the offset.
type Found = Result<(i64, i64, i32), ApiError>;

/// Where a partition's lookup stands after the in-place step.
enum Lookup {
    Answered(Found),
    /// A search by time, to run without the lock; then the offset's epoch is looked up.
    ByTime {
        partition: PartitionRef,
        search: TimestampSearch,
    },
}

pub(super) async fn handle(cluster: &Arc<Cluster>, header: &RequestHeader, request: ListOffsetsRequest) -> Reply {
    let v = header.api_version;
    let registry = cluster.registry();
    let mut lookups: Vec<Vec<(i32, Lookup)>> = request
        .topics
        .iter()
        .map(|t| t.partitions.iter().map(|p| (p.partition_index, plan(&registry, t.name.0.as_str(), p, v))).collect())
        .collect();
    let any_search = lookups.iter().flatten().any(|(_, l)| matches!(l, Lookup::ByTime { .. }));
    if any_search {
        lookups = match cluster.cpu.run(move || run_searches(lookups)).await {
            Some(done) => done,
            None => return Reply::Close("a timestamp lookup failed unexpectedly".to_string()),
        };
    }
    let topics = request
        .topics
        .into_iter()
        .zip(lookups)
        .map(|(t, partitions)| {
            let partitions = partitions
                .into_iter()
                .map(|(index, lookup)| {
                    let found = match lookup {
                        Lookup::Answered(found) => found,
                        Lookup::ByTime { .. } => Err(ApiError::new(ErrorCode::UnknownServerError, "lookup not run")),
                    };
                    let (code, offset, timestamp, epoch) = match found {
                        Ok((o, t, e)) => (0, o, t, e),
                        Err(e) => (e.code(), -1, -1, -1),
                    };
                    ListOffsetsPartitionResponse::default()
                        .with_partition_index(index)
                        .with_error_code(code)
                        .with_timestamp(timestamp)
                        .with_offset(offset)
                        .with_leader_epoch(if v >= 4 { epoch } else { -1 })
                })
                .collect();
            ListOffsetsTopicResponse::default().with_name(t.name).with_partitions(partitions)
        })
        .collect();
    respond(ApiKey::ListOffsets, header, &ListOffsetsResponse::default().with_topics(topics))
}

/// Answers a partition's lookup in place, or plans its search by time.
fn plan(registry: &Registry, topic: &str, p: &ListOffsetsPartition, v: i16) -> Lookup {
    let partition = match registry.topics.get(topic).map(|t| t.led(p.partition_index)) {
        Some(Ok(partition)) => partition,
        Some(Err(ErrorCode::NotLeaderOrFollower)) => {
            return Lookup::Answered(Err(ApiError::new(
                ErrorCode::NotLeaderOrFollower,
                "this broker does not lead the partition",
            )));
        }
        _ => {
            return Lookup::Answered(Err(ApiError::new(
                ErrorCode::UnknownTopicOrPartition,
                "unknown topic or partition",
            )));
        }
    };
    let epoch = partition.leader_epoch();
    if v >= 4 && p.current_leader_epoch >= 0 && p.current_leader_epoch != epoch {
        let code =
            if p.current_leader_epoch > epoch { ErrorCode::UnknownLeaderEpoch } else { ErrorCode::FencedLeaderEpoch };
        return Lookup::Answered(Err(ApiError::new(code, "leader epoch mismatch")));
    }
    let progress = partition.progress();
    if progress.offline {
        return Lookup::Answered(Err(ApiError::new(ErrorCode::KafkaStorageError, "partition is offline")));
    }
    let log = partition.log();
    // A new leader of a replicated partition shows no high watermark until it
    // has reached its epoch's start (it may be below what the previous leader showed).
    let Some(hw) = partition.client_high_watermark(&log) else {
        return Lookup::Answered(Err(ApiError::new(
            ErrorCode::OffsetNotAvailable,
            "the new leader's high watermark has not reached the start of its leader epoch yet",
        )));
    };
    let (offset, timestamp) = match p.timestamp {
        LATEST => (hw, -1),
        EARLIEST | EARLIEST_LOCAL => (log.log_start_offset(), -1),
        MAX_TIMESTAMP => log.max_timestamp(hw).unwrap_or((-1, -1)),
        t if t >= 0 => {
            return match log.plan_timestamp_search(t, hw) {
                Ok(search) => Lookup::ByTime { partition: partition.clone(), search },
                Err(e) => Lookup::Answered(Err(ApiError::from(e))),
            };
        }
        _ => (-1, -1),
    };
    let offset_epoch = if offset < 0 {
        -1
    } else if p.timestamp == LATEST {
        epoch
    } else {
        log.epoch_for_offset(offset).unwrap_or(epoch)
    };
    Lookup::Answered(Ok((offset, timestamp, offset_epoch)))
}

/// Runs every planned search by time (no partition lock held while scanning).
fn run_searches(lookups: Vec<Vec<(i32, Lookup)>>) -> Vec<Vec<(i32, Lookup)>> {
    lookups
        .into_iter()
        .map(|partitions| {
            partitions
                .into_iter()
                .map(|(index, lookup)| match lookup {
                    Lookup::ByTime { partition, search } => {
                        let found = search.run().map_err(ApiError::from).map(|hit| match hit {
                            Some((offset, timestamp)) => {
                                let epoch =
                                    partition.log().epoch_for_offset(offset).unwrap_or(partition.leader_epoch());
                                (offset, timestamp, epoch)
                            }
                            None => (-1, -1, -1),
                        });
                        (index, Lookup::Answered(found))
                    }
                    answered => (index, answered),
                })
                .collect()
        })
        .collect()
}
