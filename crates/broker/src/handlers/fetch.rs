//! Fetch (key 1). Reads whole batches below the high watermark, per
//! partition up to `partition_max_bytes` and in total up to `max_bytes`; the
//! first batch found is returned even if larger (KIP-74). If fewer than
//! `min_bytes` are ready, the request waits (up to `max_wait_ms`) for any of
//! its partitions' high watermarks to move, then reads again. No fetch
//! sessions: the response's session id is 0, so clients send full requests.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{ApiKey, FetchRequest, FetchResponse, TopicName};
use tributary_log::LogError;
use tributary_protocol::{ErrorCode, RequestHeader};
use tributary_types::TopicId;
use uuid::Uuid;

use super::{Reply, encode_later};
use crate::cluster::Cluster;
use crate::partition::PartitionRef;

/// One requested partition, resolved.
struct Slot {
    index: i32,
    fetch_offset: i64,
    partition_max_bytes: usize,
    current_leader_epoch: i32,
    target: Result<PartitionRef, ErrorCode>,
}

struct TopicSlots {
    name: TopicName,
    topic_id: Uuid,
    slots: Vec<Slot>,
}

pub(super) fn handle(cluster: &Arc<Cluster>, header: &RequestHeader, request: FetchRequest) -> Reply {
    let cluster = cluster.clone();
    let header = header.clone();
    Reply::Later(Box::pin(async move {
        let body = fetch(&cluster, header.api_version, request).await;
        encode_later(ApiKey::Fetch, &header, &body)
    }))
}

fn resolve(cluster: &Cluster, request: &FetchRequest, v: i16) -> Vec<TopicSlots> {
    let registry = cluster.registry();
    request
        .topics
        .iter()
        .map(|t| {
            let topic = if v >= 13 {
                registry.by_id.get(&TopicId(*t.topic_id.as_bytes())).cloned().ok_or(ErrorCode::UnknownTopicId)
            } else {
                registry.topics.get(t.topic.0.as_str()).cloned().ok_or(ErrorCode::UnknownTopicOrPartition)
            };
            let slots = t
                .partitions
                .iter()
                .map(|p| Slot {
                    index: p.partition,
                    fetch_offset: p.fetch_offset,
                    partition_max_bytes: p.partition_max_bytes.max(0) as usize,
                    current_leader_epoch: p.current_leader_epoch,
                    target: topic.clone().and_then(|topic| {
                        topic.partition(p.partition).cloned().ok_or(ErrorCode::UnknownTopicOrPartition)
                    }),
                })
                .collect();
            TopicSlots { name: t.topic.clone(), topic_id: t.topic_id, slots }
        })
        .collect()
}

async fn fetch(cluster: &Cluster, v: i16, request: FetchRequest) -> FetchResponse {
    let topics = resolve(cluster, &request, v);
    let requested = if request.max_bytes > 0 { request.max_bytes as usize } else { usize::MAX };
    let max_bytes = requested.min(cluster.config.fetch_max_bytes);
    let min_bytes = request.min_bytes.max(0) as usize;
    let deadline = tokio::time::Instant::now() + Duration::from_millis(request.max_wait_ms.max(0) as u64);
    loop {
        // Subscribe before reading so an append during the read wakes us.
        let mut watchers: Vec<_> = topics
            .iter()
            .flat_map(|t| t.slots.iter())
            .filter_map(|s| s.target.as_ref().ok())
            .map(|p| p.subscribe())
            .collect();
        let (responses, bytes, errors) = read_pass(&topics, max_bytes);
        if bytes >= min_bytes || errors || watchers.is_empty() || tokio::time::Instant::now() >= deadline {
            return FetchResponse::default().with_error_code(0).with_session_id(0).with_responses(responses);
        }
        let any_change = futures::future::select_all(watchers.iter_mut().map(|w| Box::pin(w.changed())));
        if tokio::time::timeout_at(deadline, any_change).await.is_err() {
            let (responses, _, _) = read_pass(&topics, max_bytes);
            return FetchResponse::default().with_error_code(0).with_session_id(0).with_responses(responses);
        }
    }
}

/// Reads every partition once. Returns the responses, the bytes gathered and
/// whether any partition has an error (which answers the fetch at once).
fn read_pass(topics: &[TopicSlots], max_bytes: usize) -> (Vec<FetchableTopicResponse>, usize, bool) {
    let mut total = 0usize;
    let mut errors = false;
    let mut out = Vec::with_capacity(topics.len());
    for topic in topics {
        let mut partitions = Vec::with_capacity(topic.slots.len());
        for slot in &topic.slots {
            let data = match read_partition(slot, max_bytes.saturating_sub(total), total == 0) {
                Ok(d) => {
                    errors |= d.error_code != 0;
                    d
                }
                Err(code) => {
                    errors = true;
                    PartitionData::default()
                        .with_partition_index(slot.index)
                        .with_error_code(code.code())
                        .with_high_watermark(-1)
                        .with_records(Some(Bytes::new()))
                }
            };
            total += data.records.as_ref().map_or(0, Bytes::len);
            partitions.push(data);
        }
        out.push(
            FetchableTopicResponse::default()
                .with_topic(topic.name.clone())
                .with_topic_id(topic.topic_id)
                .with_partitions(partitions),
        );
    }
    (out, total, errors)
}

fn read_partition(slot: &Slot, budget: usize, first: bool) -> Result<PartitionData, ErrorCode> {
    let partition = slot.target.as_ref().map_err(|c| *c)?;
    let epoch = partition.leader_epoch();
    if slot.current_leader_epoch >= 0 {
        if slot.current_leader_epoch > epoch {
            return Err(ErrorCode::UnknownLeaderEpoch);
        }
        if slot.current_leader_epoch < epoch {
            return Err(ErrorCode::FencedLeaderEpoch);
        }
    }
    let progress = partition.progress();
    if progress.offline {
        return Err(ErrorCode::KafkaStorageError);
    }
    let high_watermark = progress.high_watermark;
    let (plan, log_start_offset) = {
        let log = partition.log();
        (log.plan_read(slot.fetch_offset, high_watermark), log.log_start_offset())
    };
    let base = PartitionData::default()
        .with_partition_index(slot.index)
        .with_high_watermark(high_watermark)
        .with_last_stable_offset(high_watermark)
        .with_log_start_offset(log_start_offset)
        .with_aborted_transactions(Some(Vec::new()));
    let records = match plan {
        Ok(None) => Bytes::new(),
        Ok(Some(plan)) => {
            let limit = slot.partition_max_bytes.min(budget);
            plan.execute(limit, first).map(Bytes::from).map_err(|e| {
                tracing::error!(topic = %partition.topic, partition = partition.index, error = %e, "read failed");
                ErrorCode::KafkaStorageError
            })?
        }
        Err(LogError::OffsetOutOfRange { .. }) => {
            return Ok(base.with_error_code(ErrorCode::OffsetOutOfRange.code()).with_records(Some(Bytes::new())));
        }
        Err(_) => return Err(ErrorCode::KafkaStorageError),
    };
    Ok(base.with_error_code(0).with_records(Some(records)))
}
