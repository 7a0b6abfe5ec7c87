//! Produce (key 0):
//!
//! 1. cheap checks of every partition in place: acks, topic and partition,
//!    min.insync.replicas, one batch per partition, `max.message.bytes`;
//! 2. then partition by partition, in request order (as Kafka's replica
//!    manager does): the batch validated end to end (CRC, codec, every record
//!    streamed through its decompressor, keys on compacted topics,
//!    timestamps), schema ids checked on topics with schema validation,
//!    recompression for the topic's `compression.type` — on the
//!    [`CpuPool`](crate::cpu::CpuPool) when the batch is compressed, large or
//!    to be recompressed, on the waiting pool when it checks schema ids, in
//!    place otherwise — and then appended under the partition's lock.
//!
//! The connection awaits both before it reads the next request, so
//! appends keep request order; the reply then waits until the group-commit
//! flusher has fsynced the batches (acks=1: the durable offset passed them)
//! and, for acks=all, committed them (the high watermark passed them: the
//! same moment while a leader is its only in-sync replica); acks=0 gets no
//! reply at all.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::produce_request::PartitionProduceData;
use kafka_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, LeaderIdAndEpoch, NodeEndpoint, PartitionProduceResponse, TopicProduceResponse,
};
use kafka_protocol::messages::{ApiKey, BrokerId, ProduceRequest, ProduceResponse, TopicName};
use tokio::sync::watch;
use tributary_log::{AppendInfo, AppendOutcome};
use tributary_protocol::{ErrorCode, RequestHeader};
use tributary_record::validate::{TimestampBounds, ValidationRules, recompress, validate_batch};
use tributary_record::{BatchError, BatchHeader, BatchIter, Compression, DECOMPRESSED_BATCH_BYTES_MAX};
use tributary_types::now_ms;

use super::{ConnectionInfo, Reply, encode_later, respond, str_bytes};
use crate::cluster::{Cluster, Registry, TopicState};
use crate::cpu::INLINE_BYTES_MAX;
use crate::error::{ApiError, RecordErrors, batch_error};
use crate::partition::{PartitionRef, Progress, Wait, wait_for};
use crate::replication::{AckWaiter, produce_error_code};
use tributary_replication::ProduceError;

/// A partition's result: final now, or waiting for its offsets to become durable.
enum Outcome {
    Done(PartitionProduceResponse),
    Pending {
        response: PartitionProduceResponse,
        progress: watch::Receiver<Progress>,
        target: i64,
    },
    /// A replicated partition: the replication core answers.
    Replicated {
        response: PartitionProduceResponse,
        waiter: AckWaiter,
    },
}

fn error_response(index: i32, error: &ApiError, records: &[(usize, String)], version: i16) -> PartitionProduceResponse {
    // Per-record errors exist from Produce v8 on.
    let record_errors = if version >= 8 {
        records
            .iter()
            .map(|(i, message)| {
                BatchIndexAndErrorMessage::default()
                    .with_batch_index(*i as i32)
                    .with_batch_index_error_message(Some(str_bytes(message)))
            })
            .collect()
    } else {
        Vec::new()
    };
    PartitionProduceResponse::default()
        .with_index(index)
        .with_error_code(error.code())
        .with_base_offset(-1)
        .with_log_append_time_ms(-1)
        .with_log_start_offset(-1)
        .with_record_errors(record_errors)
        .with_error_message(Some(str_bytes(&error.message)))
}

pub(super) async fn handle(
    cluster: &Arc<Cluster>,
    conn: &ConnectionInfo,
    header: &RequestHeader,
    request: ProduceRequest,
) -> Reply {
    let v = header.api_version;
    let acks = request.acks;
    let transactional = request.transactional_id.is_some();
    let registry = cluster.registry();
    // 1. Cheap checks; what passes carries its batch on to validation.
    let mut topics: Vec<(TopicName, Vec<Step>)> = Vec::with_capacity(request.topic_data.len());
    for topic in request.topic_data {
        let name = topic.name.0.to_string();
        let steps = topic
            .partition_data
            .into_iter()
            .map(|p| {
                let index = p.index;
                match admit(&registry, &name, p, v, acks, transactional) {
                    Ok(admitted) => Step::Admitted(admitted),
                    Err((error, records)) => Step::Done(Outcome::Done(error_response(index, &error, &records, v))),
                }
            })
            .collect();
        // An owned copy: the request's name shares (and would keep alive) the frame.
        topics.push((TopicName(str_bytes(&name)), steps));
    }
    // 2. Partition by partition, in request order as Kafka's replica manager
    //    does: validate (on a pool when heavy or when it may wait), then append.
    let mut done: Vec<(TopicName, Vec<Outcome>)> = Vec::with_capacity(topics.len());
    for (name, steps) in topics {
        let mut outcomes = Vec::with_capacity(steps.len());
        for step in steps {
            let admitted = match step {
                Step::Admitted(admitted) => admitted,
                Step::Done(outcome) => {
                    outcomes.push(outcome);
                    continue;
                }
            };
            let index = admitted.index;
            let pool = if admitted.checks_schemas() {
                // May wait for the schema storage topic: never in a CPU slot.
                Some(&cluster.waiting)
            } else if admitted.is_heavy() {
                Some(&cluster.cpu)
            } else {
                None
            };
            let validated = match pool {
                Some(pool) => {
                    let (job_cluster, job_registry) = (cluster.clone(), registry.clone());
                    match pool.run(move || validate(&job_cluster, &job_registry, admitted, v)).await {
                        Some(validated) => validated,
                        None => return Reply::Close("produce validation failed unexpectedly".to_string()),
                    }
                }
                None => validate(cluster, &registry, admitted, v),
            };
            outcomes.push(match validated {
                Ok(ready) => append(cluster, ready, v, acks, request.timeout_ms),
                Err((error, records)) => Outcome::Done(error_response(index, &error, &records, v)),
            });
        }
        done.push((name, outcomes));
    }
    let mut topics = done;
    if acks == 0 {
        return Reply::Nothing;
    }
    let node_endpoints =
        if v >= 10 { point_to_leaders(cluster, &registry, &conn.listener, &mut topics) } else { Vec::new() };
    let any_pending =
        topics.iter().any(|(_, o)| o.iter().any(|o| matches!(o, Outcome::Pending { .. } | Outcome::Replicated { .. })));
    if !any_pending {
        return respond(ApiKey::Produce, header, &build_response(resolved(topics), node_endpoints));
    }
    let header = header.clone();
    let timeout = Duration::from_millis(request.timeout_ms.max(0) as u64);
    // acks=1: this node made the batch durable; acks=all: it is committed
    // (the same offset while a leader is its only in-sync replica).
    let wait = if acks == 1 { Wait::Durable } else { Wait::Committed };
    let (cluster, listener) = (cluster.clone(), conn.listener.clone());
    Reply::Later(Box::pin(async move {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut stepped_down = false;
        let mut done = Vec::with_capacity(topics.len());
        for (name, outcomes) in topics {
            let mut partitions = Vec::with_capacity(outcomes.len());
            for outcome in outcomes {
                partitions.push(match outcome {
                    Outcome::Done(r) => r,
                    Outcome::Replicated { response, waiter } => match tokio::time::timeout_at(deadline, waiter).await {
                        Ok(Ok(Ok(()))) => response,
                        Ok(Ok(Err(e))) => {
                            stepped_down |= e == ProduceError::NotLeaderOrFollower;
                            error_response(
                                response.index,
                                &ApiError::new(produce_error_code(e), format!("the batch was not acknowledged: {e:?}")),
                                &[],
                                header.api_version,
                            )
                        }
                        Ok(Err(_)) => error_response(
                            response.index,
                            &ApiError::new(
                                ErrorCode::NotLeaderOrFollower,
                                "the partition's replica state was replaced before the batch was acknowledged",
                            ),
                            &[],
                            header.api_version,
                        ),
                        Err(_) => error_response(
                            response.index,
                            &ApiError::new(
                                ErrorCode::RequestTimedOut,
                                "the batch was not acknowledged within timeout_ms",
                            ),
                            &[],
                            header.api_version,
                        ),
                    },
                    Outcome::Pending { response, progress, target } => {
                        match tokio::time::timeout_at(deadline, wait_for(progress, target, wait)).await {
                            Ok(p) if !p.offline => response,
                            Ok(_) => error_response(
                                response.index,
                                &ApiError::new(
                                    ErrorCode::KafkaStorageError,
                                    "the partition went offline before the batch was durable",
                                ),
                                &[],
                                header.api_version,
                            ),
                            Err(_) => error_response(
                                response.index,
                                &ApiError::new(
                                    ErrorCode::RequestTimedOut,
                                    "the batch was not durable within timeout_ms",
                                ),
                                &[],
                                header.api_version,
                            ),
                        }
                    }
                });
            }
            done.push((name, partitions));
        }
        // A replicated partition's waiting batch fails with NOT_LEADER_OR_FOLLOWER
        // when this node steps down: those answers name the new leader too.
        let mut node_endpoints = node_endpoints;
        if header.api_version >= 10 && stepped_down {
            let mut endpoints: std::collections::BTreeMap<i32, NodeEndpoint> =
                node_endpoints.into_iter().map(|e| (e.node_id.0, e)).collect();
            let registry = cluster.registry();
            for (name, partitions) in done.iter_mut() {
                for response in partitions.iter_mut() {
                    hint_leader(&cluster, &registry, &listener, name, response, &mut endpoints);
                }
            }
            node_endpoints = endpoints.into_values().collect();
        }
        encode_later(ApiKey::Produce, &header, &build_response(done, node_endpoints))
    }))
}

fn resolved(topics: Vec<(TopicName, Vec<Outcome>)>) -> Vec<(TopicName, Vec<PartitionProduceResponse>)> {
    topics
        .into_iter()
        .map(|(n, o)| {
            let parts = o
                .into_iter()
                .map(|o| match o {
                    Outcome::Done(r)
                    | Outcome::Pending { response: r, .. }
                    | Outcome::Replicated { response: r, .. } => r,
                })
                .collect();
            (n, parts)
        })
        .collect()
}

fn build_response(
    topics: Vec<(TopicName, Vec<PartitionProduceResponse>)>,
    node_endpoints: Vec<NodeEndpoint>,
) -> ProduceResponse {
    ProduceResponse::default()
        .with_responses(
            topics
                .into_iter()
                .map(|(name, partitions)| {
                    TopicProduceResponse::default().with_name(name).with_partition_responses(partitions)
                })
                .collect(),
        )
        .with_node_endpoints(node_endpoints)
}

/// KIP-951 (Produce v10+): every NOT_LEADER_OR_FOLLOWER answer names the
/// partition's current leader and epoch, and the response lists each named
/// leader's endpoint for this listener, so the client sends the batch there
/// without a Metadata round trip. Returns the endpoints, by broker id.
fn point_to_leaders(
    cluster: &Cluster,
    registry: &Registry,
    listener: &str,
    topics: &mut [(TopicName, Vec<Outcome>)],
) -> Vec<NodeEndpoint> {
    let mut endpoints = std::collections::BTreeMap::new();
    for (name, outcomes) in topics.iter_mut() {
        for outcome in outcomes.iter_mut() {
            let Outcome::Done(response) = outcome else { continue };
            hint_leader(cluster, registry, listener, name, response, &mut endpoints);
        }
    }
    endpoints.into_values().collect()
}

/// Names the partition's current leader in a NOT_LEADER_OR_FOLLOWER
/// answer and adds its endpoint to `endpoints` (KIP-951).
fn hint_leader(
    cluster: &Cluster,
    registry: &Registry,
    listener: &str,
    name: &TopicName,
    response: &mut PartitionProduceResponse,
    endpoints: &mut std::collections::BTreeMap<i32, NodeEndpoint>,
) {
    if response.error_code != ErrorCode::NotLeaderOrFollower.code() {
        return;
    }
    let Some(topic) = registry.topics.get(name.0.as_str()) else { return };
    let hint = cluster.leader_hint(topic, response.index, listener);
    response.current_leader =
        LeaderIdAndEpoch::default().with_leader_id(BrokerId(hint.leader_id)).with_leader_epoch(hint.leader_epoch);
    if let Some(b) = hint.endpoint {
        endpoints.entry(b.id).or_insert_with(|| {
            NodeEndpoint::default()
                .with_node_id(BrokerId(b.id))
                .with_host(str_bytes(&b.host))
                .with_port(i32::from(b.port))
                .with_rack(b.rack.as_deref().map(str_bytes))
        });
    }
}

/// Where one partition's batch stands after the cheap checks.
enum Step {
    /// Passed them: validation and the append follow.
    Admitted(Admitted),
    /// Answered already.
    Done(Outcome),
}

/// A batch that passed the cheap checks.
struct Admitted {
    index: i32,
    topic: Arc<TopicState>,
    partition: PartitionRef,
    batch: Bytes,
}

impl Admitted {
    /// Whether validating this batch is worth another thread: it is large,
    /// compressed (decompression may expand it up to the cap), or will be
    /// recompressed for the topic.
    fn is_heavy(&self) -> bool {
        let codec = BatchHeader::parse(&self.batch).ok().and_then(|h| h.compression().ok());
        self.batch.len() > INLINE_BYTES_MAX
            || codec != Some(Compression::None)
            || target_codec(&self.topic).is_some_and(|target| Some(target) != codec)
    }

    /// Whether its schema ids are checked: that may read the schema storage
    /// topic from disk and wait (bounded) for a registration being written.
    fn checks_schemas(&self) -> bool {
        let config = &self.topic.config;
        config.key_schema_validation.is_some() || config.value_schema_validation.is_some()
    }
}

/// A validated batch, ready to append.
struct Ready {
    index: i32,
    topic: Arc<TopicState>,
    partition: PartitionRef,
    batch: Bytes,
    max_timestamp: i64,
    offset_delta_of_max_timestamp: i32,
    now: i64,
}

/// The cheap checks of one partition's data.
fn admit(
    registry: &Registry,
    topic_name: &str,
    data: PartitionProduceData,
    v: i16,
    acks: i16,
    transactional: bool,
) -> Result<Admitted, (ApiError, RecordErrors)> {
    let index = data.index;
    let fail = |e: ApiError, records: RecordErrors| (e, records);
    if !matches!(acks, -1..=1) {
        return Err(fail(
            ApiError::new(ErrorCode::InvalidRequiredAcks, format!("acks={acks} is not 0, 1 or -1")),
            Vec::new(),
        ));
    }
    if transactional {
        return Err(fail(
            ApiError::new(ErrorCode::InvalidRequest, "transactional produce is not supported by this broker yet"),
            Vec::new(),
        ));
    }
    let Some(topic) = registry.topics.get(topic_name) else {
        return Err(fail(
            ApiError::new(ErrorCode::UnknownTopicOrPartition, format!("topic {topic_name} does not exist")),
            Vec::new(),
        ));
    };
    if topic.is_internal() {
        return Err(fail(
            ApiError::new(ErrorCode::InvalidTopicException, format!("cannot produce to internal topic {topic_name}")),
            Vec::new(),
        ));
    }
    let partition = match topic.led(index) {
        Ok(p) => p,
        Err(ErrorCode::NotLeaderOrFollower) => {
            return Err(fail(
                ApiError::new(
                    ErrorCode::NotLeaderOrFollower,
                    format!("this broker does not lead {topic_name}-{index}"),
                ),
                Vec::new(),
            ));
        }
        Err(_) => {
            return Err(fail(
                ApiError::new(ErrorCode::UnknownTopicOrPartition, format!("{topic_name} has no partition {index}")),
                Vec::new(),
            ));
        }
    };
    // One replica: the in-sync replica set is this broker alone. A
    // replicated partition asks the replication core at the append.
    let isr = 1;
    if acks == -1 && !partition.is_replicated() && topic.config.min_insync_replicas > isr {
        return Err(fail(
            ApiError::new(
                ErrorCode::NotEnoughReplicas,
                format!(
                    "min.insync.replicas={} but the in-sync replica set has {isr}",
                    topic.config.min_insync_replicas
                ),
            ),
            Vec::new(),
        ));
    }
    let records = data.records.unwrap_or_default();
    let batch = single_batch(&records, v)?;
    if batch.len() > topic.config.max_message_bytes {
        return Err(fail(
            ApiError::new(
                ErrorCode::MessageTooLarge,
                format!("batch of {} bytes exceeds max.message.bytes={}", batch.len(), topic.config.max_message_bytes),
            ),
            Vec::new(),
        ));
    }
    Ok(Admitted { index, topic: topic.clone(), partition: partition.clone(), batch })
}

/// One batch end to end: records, transactional bit, schema ids, recompression.
fn validate(
    cluster: &Cluster,
    registry: &Registry,
    admitted: Admitted,
    v: i16,
) -> Result<Ready, (ApiError, RecordErrors)> {
    let Admitted { index, topic, partition, mut batch } = admitted;
    let now = now_ms();
    let validated = validate_batch(&batch, &rules(&topic, v, now)).map_err(|e| batch_error(&e, v))?;
    if validated.header.is_transactional() {
        return Err((
            ApiError::new(
                ErrorCode::InvalidRequest,
                "transactional batches need a transactional producer, which this broker does not support yet",
            ),
            Vec::new(),
        ));
    }
    // Off unless the topic turned it on: then every key/value needs a registered schema id.
    if topic.config.key_schema_validation.is_some() || topic.config.value_schema_validation.is_some() {
        cluster.schema_validation.check(
            registry,
            &topic.name,
            &topic.config,
            &batch,
            v,
            DECOMPRESSED_BATCH_BYTES_MAX,
        )?;
    }
    if let Some(target) = target_codec(&topic)
        && validated.header.compression().ok() != Some(target)
    {
        let recompressed = recompress(&batch, target, codec_level(&topic, target), DECOMPRESSED_BATCH_BYTES_MAX)
            .map_err(|e| batch_error(&e, v))?;
        batch = Bytes::from(recompressed);
    }
    Ok(Ready {
        index,
        topic,
        partition,
        batch,
        max_timestamp: validated.max_timestamp,
        offset_delta_of_max_timestamp: validated.offset_delta_of_max_timestamp,
        now,
    })
}

/// Appends a validated batch under its partition's lock, if this node still
/// leads the partition (a leadership that moved while the batch was being
/// validated answers NOT_LEADER_OR_FOLLOWER; roles change under the same
/// lock, so the batch is stamped with the epoch of a leadership it holds).
fn append(cluster: &Cluster, ready: Ready, v: i16, acks: i16, timeout_ms: i32) -> Outcome {
    let Ready { index, topic, partition, batch, max_timestamp, offset_delta_of_max_timestamp, now } = ready;
    let progress = partition.subscribe();
    let replicated = partition.is_replicated();
    let (outcome, log_start_offset, waiter) = {
        let mut log = partition.log();
        if !partition.is_leader() {
            drop(log);
            let error = ApiError::new(
                ErrorCode::NotLeaderOrFollower,
                format!("this broker no longer leads {}-{index}", topic.name),
            );
            return Outcome::Done(error_response(index, &error, &[], v));
        }
        if replicated && let Err(e) = partition.replica_check_produce(acks) {
            drop(log);
            let error = ApiError::new(
                produce_error_code(e),
                format!(
                    "{}-{index}: the in-sync replica set is smaller than min.insync.replicas={}",
                    topic.name, topic.config.min_insync_replicas
                ),
            );
            return Outcome::Done(error_response(index, &error, &[], v));
        }
        let info = AppendInfo {
            leader_epoch: partition.leader_epoch(),
            max_timestamp,
            offset_delta_of_max_timestamp,
            now_ms: now,
            log_append_time: topic.config.log_append_time,
        };
        let outcome = log.append(&batch, &info);
        // The core learns of the batch under the same lock, before any flush can cover it.
        let waiter = match (&outcome, replicated) {
            (Ok(AppendOutcome::Appended { last_offset, .. } | AppendOutcome::Duplicate { last_offset, .. }), true) => {
                partition.replica_on_appended(&mut log, acks, *last_offset, timeout_ms.max(0) as u64)
            }
            _ => None,
        };
        (outcome, log.log_start_offset(), waiter)
    };
    let (base_offset, last_offset, log_append_time_ms) = match outcome {
        Ok(AppendOutcome::Appended { base_offset, last_offset, log_append_time_ms }) => {
            cluster.flusher.mark_dirty(&partition);
            (base_offset, last_offset, log_append_time_ms)
        }
        Ok(AppendOutcome::Duplicate { base_offset, last_offset }) => (base_offset, last_offset, -1),
        Err(e) => return Outcome::Done(error_response(index, &ApiError::from(e), &[], v)),
    };
    let response = PartitionProduceResponse::default()
        .with_index(index)
        .with_error_code(0)
        .with_base_offset(base_offset)
        .with_log_append_time_ms(log_append_time_ms)
        .with_log_start_offset(log_start_offset);
    match waiter {
        Some(waiter) => Outcome::Replicated { response, waiter },
        None => Outcome::Pending { response, progress, target: last_offset + 1 },
    }
}

/// Produce v3+ carries exactly one batch per partition. Returns it without copying.
fn single_batch(records: &Bytes, v: i16) -> Result<Bytes, (ApiError, RecordErrors)> {
    let mut batches = BatchIter::new(records);
    let first = match batches.next() {
        None => {
            return Err(batch_error(&BatchError::InvalidBatch("the partition carries no record batch".to_string()), v));
        }
        Some(Err(e)) => return Err(batch_error(&e, v)),
        Some(Ok((header, _))) => header.total_len(),
    };
    if batches.next().is_some() {
        return Err(batch_error(
            &BatchError::InvalidBatch("Produce v3+ carries exactly one record batch per partition".to_string()),
            v,
        ));
    }
    Ok(records.slice(..first))
}

fn rules(topic: &TopicState, v: i16, now: i64) -> ValidationRules {
    let c = &topic.config;
    ValidationRules {
        require_keys: c.compact,
        allow_zstd: v >= 7,
        decompressed_bytes_max: DECOMPRESSED_BATCH_BYTES_MAX,
        timestamp_bounds: (!c.log_append_time).then_some(TimestampBounds {
            now_ms: now,
            before_max_ms: c.timestamp_before_max_ms,
            after_max_ms: c.timestamp_after_max_ms,
        }),
    }
}

/// The codec the topic stores, if it is not "producer".
fn target_codec(topic: &TopicState) -> Option<Compression> {
    match topic.config.compression_type.as_str() {
        "producer" => None,
        other => Compression::from_name(other),
    }
}

fn codec_level(topic: &TopicState, codec: Compression) -> Option<i32> {
    let c = &topic.config;
    match codec {
        Compression::Gzip if c.compression_gzip_level >= 1 => Some(c.compression_gzip_level),
        Compression::Zstd => Some(c.compression_zstd_level),
        _ => None,
    }
}
