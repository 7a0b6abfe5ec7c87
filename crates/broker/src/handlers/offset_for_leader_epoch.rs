//! OffsetForLeaderEpoch (key 23): the end offset of a leader epoch (Kafka's
//! `LeaderEpochFileCache.endOffsetFor` over the log end offset), so a
//! consumer that fetched under that epoch can detect truncation (KIP-320)
//! and a follower can find where its log diverges from the leader's
//! (KIP-101, KIP-279).

use std::sync::Arc;

use kafka_protocol::messages::offset_for_leader_epoch_response::{EpochEndOffset, OffsetForLeaderTopicResult};
use kafka_protocol::messages::{ApiKey, OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};
use tributary_protocol::{ErrorCode, RequestHeader};

use super::{Reply, respond};
use crate::cluster::Cluster;

pub(super) fn handle(cluster: &Arc<Cluster>, header: &RequestHeader, request: OffsetForLeaderEpochRequest) -> Reply {
    let registry = cluster.registry();
    let topics = request
        .topics
        .into_iter()
        .map(|t| {
            let topic = registry.topics.get(t.topic.0.as_str());
            let partitions = t
                .partitions
                .into_iter()
                .map(|p| {
                    let answer = EpochEndOffset::default().with_partition(p.partition);
                    let partition = match topic.map(|topic| topic.led(p.partition)) {
                        Some(Ok(partition)) => partition,
                        Some(Err(code)) => {
                            return answer.with_error_code(code.code()).with_leader_epoch(-1).with_end_offset(-1);
                        }
                        None => {
                            return answer
                                .with_error_code(ErrorCode::UnknownTopicOrPartition.code())
                                .with_leader_epoch(-1)
                                .with_end_offset(-1);
                        }
                    };
                    let epoch = partition.leader_epoch();
                    if p.current_leader_epoch >= 0 && p.current_leader_epoch != epoch {
                        let code = if p.current_leader_epoch > epoch {
                            ErrorCode::UnknownLeaderEpoch
                        } else {
                            ErrorCode::FencedLeaderEpoch
                        };
                        return answer.with_error_code(code.code()).with_leader_epoch(-1).with_end_offset(-1);
                    }
                    let progress = partition.progress();
                    if progress.offline {
                        return answer
                            .with_error_code(ErrorCode::KafkaStorageError.code())
                            .with_leader_epoch(-1)
                            .with_end_offset(-1);
                    }
                    // Kafka's answer: the end of the requested epoch, the log
                    // end offset for the latest one (a follower finds where its
                    // log diverges with it, so the log end, not the high watermark).
                    let (leader_epoch, end_offset) = partition.log().end_offset_for_epoch(p.leader_epoch);
                    answer.with_error_code(0).with_leader_epoch(leader_epoch).with_end_offset(end_offset)
                })
                .collect();
            OffsetForLeaderTopicResult::default().with_topic(t.topic).with_partitions(partitions)
        })
        .collect();
    respond(ApiKey::OffsetForLeaderEpoch, header, &OffsetForLeaderEpochResponse::default().with_topics(topics))
}
