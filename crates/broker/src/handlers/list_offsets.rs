//! ListOffsets (key 2): latest (-1, the high watermark), earliest (-2, the
//! log start), max timestamp (-3), earliest local (-4, the log start without
//! tiered storage), and the first offset at or after a timestamp via the
//! time index.

use std::sync::Arc;

use kafka_protocol::messages::list_offsets_response::{ListOffsetsPartitionResponse, ListOffsetsTopicResponse};
use kafka_protocol::messages::{ApiKey, ListOffsetsRequest, ListOffsetsResponse};
use tributary_protocol::{ErrorCode, RequestHeader};

use super::{Reply, respond};
use crate::cluster::Cluster;
use crate::error::ApiError;

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
const EARLIEST_LOCAL: i64 = -4;

pub(super) fn handle(cluster: &Arc<Cluster>, header: &RequestHeader, request: ListOffsetsRequest) -> Reply {
    let v = header.api_version;
    let registry = cluster.registry();
    let topics = request
        .topics
        .into_iter()
        .map(|t| {
            let topic = registry.topics.get(t.name.0.as_str());
            let partitions = t
                .partitions
                .into_iter()
                .map(|p| {
                    let found = topic
                        .and_then(|topic| topic.partition(p.partition_index))
                        .ok_or(ApiError::new(ErrorCode::UnknownTopicOrPartition, "unknown topic or partition"));
                    let result = found.and_then(|partition| {
                        let epoch = partition.leader_epoch();
                        if v >= 4 && p.current_leader_epoch >= 0 && p.current_leader_epoch != epoch {
                            let code = if p.current_leader_epoch > epoch {
                                ErrorCode::UnknownLeaderEpoch
                            } else {
                                ErrorCode::FencedLeaderEpoch
                            };
                            return Err(ApiError::new(code, "leader epoch mismatch"));
                        }
                        let progress = partition.progress();
                        if progress.offline {
                            return Err(ApiError::new(ErrorCode::KafkaStorageError, "partition is offline"));
                        }
                        let hw = progress.high_watermark;
                        let log = partition.log();
                        let (offset, timestamp) = match p.timestamp {
                            LATEST => (hw, -1),
                            EARLIEST | EARLIEST_LOCAL => (log.log_start_offset(), -1),
                            MAX_TIMESTAMP => log.max_timestamp(hw).unwrap_or((-1, -1)),
                            t if t >= 0 => log.offset_for_timestamp(t, hw).map_err(ApiError::from)?.unwrap_or((-1, -1)),
                            _ => (-1, -1),
                        };
                        let offset_epoch = if p.timestamp == LATEST || offset < 0 {
                            if offset < 0 { -1 } else { epoch }
                        } else {
                            log.epoch_for_offset(offset).unwrap_or(epoch)
                        };
                        Ok((offset, timestamp, offset_epoch))
                    });
                    let (code, offset, timestamp, epoch) = match result {
                        Ok((o, t, e)) => (0, o, t, e),
                        Err(e) => (e.code(), -1, -1, -1),
                    };
                    ListOffsetsPartitionResponse::default()
                        .with_partition_index(p.partition_index)
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
