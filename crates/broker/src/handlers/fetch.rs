//! Fetch (key 1). Reads whole batches below the high watermark, per
//! partition up to `partition_max_bytes` and in total up to `max_bytes`; the
//! first batch found is returned even if larger (KIP-74). If fewer than
//! `min_bytes` are ready, the request waits (up to `max_wait_ms`) for any of
//! its partitions' high watermarks to move, then reads again. No fetch
//! sessions: the response's session id is 0, so clients send full requests.
//!
//! Records are not copied into the response: each partition's run of batches
//! is measured by its headers and sent from the segment file when the
//! response is written (short runs are read inline).
//!
//! From v16 a partition answered NOT_LEADER_OR_FOLLOWER or
//! FENCED_LEADER_EPOCH names its current leader and epoch, and the response
//! lists that leader's endpoint (KIP-951), so the consumer goes there at once.
//!
//! **Follower fetches.** A fetch whose replica id (`ReplicaId`, or
//! `ReplicaState` from v15) is a broker's is a follower's: it is served only
//! to a registered, unfenced replica of the partition (see
//! `replica_fetch.rs` for who may and what the others get), reads up to the
//! log end offset instead of the high watermark, as Kafka's leader serves
//! its followers, and each one served is handed to the partition's
//! replica-fetch seam ([`crate::partition::Partition::replica_fetched`])
//! once per request. With no fetch sessions, a follower's fetch is never
//! counted as a consumer's in one.
//!
//! **Replication throttle (leader side).** A follower out of the ISR whose
//! replica the topic's `leader.replication.throttled.replicas` lists gets no
//! records while this broker's `leader.replication.throttled.rate` is
//! exceeded; the records it does get are charged to it (see
//! `replication_quota.rs`).
//!
//! **Fetch from the closest replica (KIP-392, v11+).** A consumer's fetch
//! may reach a follower of the partition, which serves it below the high
//! watermark its leader last reported ([`crate::partition::Partition::follower_high_watermark`];
//! OFFSET_NOT_AVAILABLE before the first), checking leader epochs against
//! the epoch it knows. A consumer's fetch reaching the leader carries its
//! `client.rack`: with `replica.selector.class` set, the partition may be
//! answered with `preferred_read_replica` and no records
//! ([`crate::read_replica`]), and the fetch is answered at once. A consumer
//! fetching from an offset between the high watermark and the log end gets
//! no records and no error, as Kafka's log read answers; past the log end,
//! OFFSET_OUT_OF_RANGE. Before v11 a consumer reads from the leader only.
//!
//! **Diverging epochs (KIP-320, v12+).** A fetch that says which epoch its
//! last batch has (`LastFetchedEpoch`) is checked against this log's epochs
//! first, as Kafka's `Partition.readRecords` does: if that epoch ends here
//! before the fetch offset, or this log has no such epoch, the answer is no
//! records and the `DivergingEpoch` (epoch, end offset) the fetcher
//! truncates to; an epoch this log cannot place, or a fetch offset below the
//! log start, is OFFSET_OUT_OF_RANGE.

use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::fetch_response::{
    EpochEndOffset, FetchableTopicResponse, LeaderIdAndEpoch, NodeEndpoint, PartitionData,
};
use kafka_protocol::messages::{BrokerId, FetchRequest, FetchResponse, TopicName};
use tributary_log::{LogError, PartitionLog};
use tributary_protocol::{ErrorCode, RecordsSource, RequestHeader, encode_fetch_response};
use tributary_types::TopicId;
use uuid::Uuid;

use super::{ConnectionInfo, Reply, str_bytes};
use crate::cluster::{Cluster, TopicState};
use crate::outgoing::{INLINE_RECORDS_MAX, Outgoing, Records};
use crate::partition::PartitionRef;
use crate::read_replica::preferred_read_replica;
use crate::replica_fetch::{Fetcher, ReplicaFetch, check_replica};
use crate::replication::{monotonic_ms, replica_error_code};
use crate::replication_quota::{LEADER_RATE, LEADER_REPLICAS, QuotaWindow, Throttle, lists_replica};
use tributary_replication::messages::{FetchDecision, FetchRequest as CoreFetch};

/// One requested partition, resolved.
struct Slot {
    index: i32,
    fetch_offset: i64,
    partition_max_bytes: usize,
    current_leader_epoch: i32,
    /// `LastFetchedEpoch` (v12+), -1 when absent.
    last_fetched_epoch: i32,
    /// The fetcher's log start offset (v5+), -1 when absent.
    log_start_offset: i64,
    target: Result<PartitionRef, ErrorCode>,
    /// For a follower's fetch, whether it may fetch this partition as one
    /// (checked after the leader epoch, as Kafka does).
    replica: Result<(), ErrorCode>,
    /// A follower's fetch of a replica its topic's
    /// `leader.replication.throttled.replicas` lists (see `replication_quota.rs`).
    leader_throttled: bool,
}

struct TopicSlots {
    name: TopicName,
    topic_id: Uuid,
    /// The topic as this request resolved it, if it exists.
    topic: Option<Arc<TopicState>>,
    slots: Vec<Slot>,
}

pub(super) fn handle(
    cluster: &Arc<Cluster>,
    conn: &ConnectionInfo,
    header: &RequestHeader,
    request: FetchRequest,
) -> Reply {
    let cluster = cluster.clone();
    let header = header.clone();
    let listener = conn.listener.clone();
    Reply::Later(Box::pin(async move {
        let (body, records) = fetch(&cluster, header.api_version, request, &listener).await;
        match encode_fetch_response(header.api_version, header.correlation_id, &body, records) {
            Ok(parts) => Some(Outgoing::Parts(parts)),
            Err(e) => {
                tracing::error!(version = header.api_version, error = %e, "fetch response encoding failed");
                None
            }
        }
    }))
}

/// A response body (records left out) and each partition's records, in order.
type Answer = (FetchResponse, Vec<Option<Records>>);

fn answer(pass: Pass) -> Answer {
    (FetchResponse::default().with_error_code(0).with_session_id(0).with_responses(pass.topics), pass.records)
}

fn resolve(cluster: &Cluster, request: &FetchRequest, v: i16, fetcher: Fetcher) -> Vec<TopicSlots> {
    let registry = cluster.registry();
    // KIP-392: from v11 a consumer may read from a follower.
    let follower_reads = v >= 11 && fetcher == Fetcher::Consumer;
    let brokers = cluster.image().brokers.clone();
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
                .map(|p| {
                    let target = topic.clone().and_then(|topic| match topic.led(p.partition) {
                        // A follower serves consumers (KIP-392); a leader
                        // whose lease lapsed serves nobody.
                        Err(ErrorCode::NotLeaderOrFollower) if follower_reads => topic
                            .partition(p.partition)
                            .filter(|p| !p.is_leader())
                            .cloned()
                            .ok_or(ErrorCode::NotLeaderOrFollower),
                        led => led.cloned(),
                    });
                    let replica = match (fetcher, &topic) {
                        (Fetcher::Replica { id, epoch }, Ok(topic)) => usize::try_from(p.partition)
                            .ok()
                            .and_then(|i| topic.image.partitions.get(i))
                            .map_or(Err(ErrorCode::UnknownTopicOrPartition), |meta| {
                                check_replica(&brokers, meta, cluster.node_id, (id, epoch), p.current_leader_epoch)
                            }),
                        _ => Ok(()),
                    };
                    // Only a replica out of the ISR is throttled (as Kafka's
                    // leader does): a throttle never holds back acks=all.
                    let leader_throttled = match (fetcher, &topic) {
                        (Fetcher::Replica { id, .. }, Ok(topic)) => {
                            let in_sync = usize::try_from(p.partition)
                                .ok()
                                .and_then(|i| topic.image.partitions.get(i))
                                .is_some_and(|meta| meta.isr.contains(&id));
                            !in_sync
                                && topic
                                    .image
                                    .overrides
                                    .get(LEADER_REPLICAS)
                                    .is_some_and(|list| lists_replica(list, p.partition, id))
                        }
                        _ => false,
                    };
                    Slot {
                        index: p.partition,
                        fetch_offset: p.fetch_offset,
                        partition_max_bytes: p.partition_max_bytes.max(0) as usize,
                        current_leader_epoch: p.current_leader_epoch,
                        last_fetched_epoch: if v >= 12 { p.last_fetched_epoch } else { -1 },
                        log_start_offset: if v >= 5 { p.log_start_offset } else { -1 },
                        target,
                        replica,
                        leader_throttled,
                    }
                })
                .collect();
            TopicSlots { name: t.topic.clone(), topic_id: t.topic_id, topic: topic.ok(), slots }
        })
        .collect()
}

async fn fetch(cluster: &Cluster, v: i16, request: FetchRequest, listener: &str) -> Answer {
    let fetcher = Fetcher::of(v, &request);
    let topics = resolve(cluster, &request, v, fetcher);
    // KIP-392: a consumer's rack (v11+) lets the leader name a closer replica.
    let client_rack = (v >= 11 && fetcher == Fetcher::Consumer).then(|| request.rack_id.as_str());
    let reader = Reader { fetcher, observe: true, throttled: false, client_rack, cluster, listener };
    let (mut body, records) = read_until_ready(cluster, &topics, &request, reader).await;
    charge_leader_throttle(cluster, &topics, &records);
    if v >= 16 {
        point_to_leaders(cluster, &topics, listener, &mut body);
    }
    (body, records)
}

/// Reads every partition, and again each time a high watermark moves, until
/// `min_bytes` are ready, an error or a diverging epoch needs answering, or
/// `max_wait_ms` passes. A follower's fetch reaches the replica-fetch seam
/// from the first read only (as Kafka records it once per request).
async fn read_until_ready(
    cluster: &Cluster,
    topics: &[TopicSlots],
    request: &FetchRequest,
    mut reader: Reader<'_>,
) -> Answer {
    let requested = if request.max_bytes > 0 { request.max_bytes as usize } else { usize::MAX };
    let max_bytes = requested.min(cluster.config.fetch_max_bytes);
    let min_bytes = request.min_bytes.max(0) as usize;
    let deadline = tokio::time::Instant::now() + Duration::from_millis(request.max_wait_ms.max(0) as u64);
    let throttle = topics
        .iter()
        .any(|t| t.slots.iter().any(|s| s.leader_throttled))
        .then(|| Throttle::of(&cluster.image().layers, LEADER_RATE))
        .flatten();
    loop {
        reader.throttled = cluster.replication_quotas.leader.is_exceeded(monotonic_ms(), throttle);
        // Subscribe before reading so an append during the read wakes us.
        let mut watchers: Vec<_> = topics
            .iter()
            .flat_map(|t| t.slots.iter())
            .filter_map(|s| s.target.as_ref().ok())
            .map(|p| p.subscribe())
            .collect();
        let pass = read_pass(topics, max_bytes, &reader);
        reader.observe = false;
        if pass.bytes >= min_bytes || pass.errors || watchers.is_empty() || tokio::time::Instant::now() >= deadline {
            return answer(pass);
        }
        let any_change = futures::future::select_all(watchers.iter_mut().map(|w| Box::pin(w.changed())));
        if tokio::time::timeout_at(deadline, any_change).await.is_err() {
            return answer(read_pass(topics, max_bytes, &reader));
        }
    }
}

/// KIP-951 (Fetch v16+): every partition answered NOT_LEADER_OR_FOLLOWER or
/// FENCED_LEADER_EPOCH names its current leader and epoch, and the response
/// lists each named leader's endpoint for this listener.
fn point_to_leaders(cluster: &Cluster, topics: &[TopicSlots], listener: &str, body: &mut FetchResponse) {
    let redirect = [ErrorCode::NotLeaderOrFollower.code(), ErrorCode::FencedLeaderEpoch.code()];
    let mut endpoints = std::collections::BTreeMap::new();
    for (response, slots) in body.responses.iter_mut().zip(topics) {
        let Some(topic) = &slots.topic else { continue };
        for partition in response.partitions.iter_mut().filter(|p| redirect.contains(&p.error_code)) {
            let hint = cluster.leader_hint(topic, partition.partition_index, listener);
            partition.current_leader = LeaderIdAndEpoch::default()
                .with_leader_id(BrokerId(hint.leader_id))
                .with_leader_epoch(hint.leader_epoch);
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
    }
    body.node_endpoints = endpoints.into_values().collect();
}

/// One read of every partition.
struct Pass {
    topics: Vec<FetchableTopicResponse>,
    /// Each partition's records, in response order.
    records: Vec<Option<Records>>,
    /// Record bytes gathered.
    bytes: usize,
    /// Whether any partition has an error, a diverging epoch or a
    /// preferred read replica (which answers the fetch at once, as Kafka's).
    errors: bool,
}

/// How this request reads: as whom, and whether a follower's read is
/// handed to the replica-fetch seam.
struct Reader<'a> {
    fetcher: Fetcher,
    observe: bool,
    /// The leader-side replication throttle is above its limit: throttled
    /// replicas get no records.
    throttled: bool,
    /// A consumer's `rack_id` (v11+, perhaps empty); `None` before v11 and
    /// for followers, who get no preferred read replica.
    client_rack: Option<&'a str>,
    cluster: &'a Cluster,
    /// The listener the request came in on (the preferred replica must have one).
    listener: &'a str,
}

/// Charges the records sent to throttled followers to the leader's quota.
fn charge_leader_throttle(cluster: &Cluster, topics: &[TopicSlots], records: &[Option<Records>]) {
    let slots = topics.iter().flat_map(|t| t.slots.iter());
    let bytes: usize =
        slots.zip(records).filter(|(s, _)| s.leader_throttled).map(|(_, r)| r.as_ref().map_or(0, Records::len)).sum();
    if bytes > 0 {
        let window = QuotaWindow::of(&cluster.image().layers);
        cluster.replication_quotas.leader.record(monotonic_ms(), bytes as u64, window);
    }
}

/// Reads every partition once, within `max_bytes` in total.
fn read_pass(topics: &[TopicSlots], max_bytes: usize, reader: &Reader<'_>) -> Pass {
    let mut pass = Pass { topics: Vec::with_capacity(topics.len()), records: Vec::new(), bytes: 0, errors: false };
    for topic in topics {
        let mut partitions = Vec::with_capacity(topic.slots.len());
        for slot in &topic.slots {
            let budget = max_bytes.saturating_sub(pass.bytes);
            let (data, records) = match read_partition(slot, budget, pass.bytes == 0, reader) {
                Ok((data, records)) => {
                    pass.errors |= data.error_code != 0
                        || data.diverging_epoch != EpochEndOffset::default()
                        || data.preferred_read_replica.0 >= 0;
                    (data, records)
                }
                Err(code) => {
                    pass.errors = true;
                    let data = PartitionData::default()
                        .with_partition_index(slot.index)
                        .with_error_code(code.code())
                        .with_high_watermark(-1);
                    (data, Records::empty())
                }
            };
            pass.bytes += records.len();
            pass.records.push(Some(records));
            partitions.push(data);
        }
        pass.topics.push(
            FetchableTopicResponse::default()
                .with_topic(topic.name.clone())
                .with_topic_id(topic.topic_id)
                .with_partitions(partitions),
        );
    }
    pass
}

/// What the partition's log says before a read: where the fetcher's log
/// diverges, or that its epoch or offset cannot be placed.
enum Divergence {
    /// No `LastFetchedEpoch`, or it matches: read.
    None,
    /// Kafka's DivergingEpoch: the fetcher truncates to this epoch's end.
    At { epoch: i32, end_offset: i64 },
    /// OFFSET_OUT_OF_RANGE.
    OutOfRange,
}

/// Kafka's check of `LastFetchedEpoch` (`Partition.readRecords`).
fn divergence(log: &PartitionLog, slot: &Slot) -> Divergence {
    if slot.last_fetched_epoch < 0 {
        return Divergence::None;
    }
    let (epoch, end_offset) = log.end_offset_for_epoch(slot.last_fetched_epoch);
    if epoch < 0 || end_offset < 0 || slot.fetch_offset < log.log_start_offset() {
        return Divergence::OutOfRange;
    }
    if epoch < slot.last_fetched_epoch || end_offset < slot.fetch_offset {
        return Divergence::At { epoch, end_offset };
    }
    Divergence::None
}

fn read_partition(
    slot: &Slot,
    budget: usize,
    first: bool,
    reader: &Reader<'_>,
) -> Result<(PartitionData, Records), ErrorCode> {
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
    slot.replica?;
    let progress = partition.progress();
    if progress.offline {
        return Err(ErrorCode::KafkaStorageError);
    }
    // A consumer's fetch reaching the leader: the selector may name a closer replica.
    let preferred = match (reader.fetcher, reader.client_rack) {
        (Fetcher::Consumer, Some(rack)) if partition.is_leader() => {
            preferred_read_replica(reader.cluster, partition, reader.listener, rack, slot.fetch_offset)
        }
        _ => None,
    };
    let (plan, log_start_offset, log_end_offset, divergence, high_watermark) = {
        let mut log = partition.log();
        let mut divergence = divergence(&log, slot);
        // A replicated partition's follower fetch is the core's to judge:
        // it records the follower's position and may move the high watermark.
        if let (Fetcher::Replica { id, epoch }, true, true) =
            (reader.fetcher, reader.observe, partition.is_replicated())
        {
            let request = CoreFetch {
                request_id: 0,
                replica_id: id,
                replica_epoch: epoch,
                current_leader_epoch: if slot.current_leader_epoch >= 0 {
                    slot.current_leader_epoch
                } else {
                    partition.leader_epoch()
                },
                fetch_offset: slot.fetch_offset,
                last_fetched_epoch: (slot.last_fetched_epoch >= 0).then_some(slot.last_fetched_epoch),
            };
            match partition.replica_fetch(&mut log, &request) {
                Ok(FetchDecision::Read { .. }) => {}
                Ok(FetchDecision::Diverging(end)) => {
                    divergence = Divergence::At { epoch: end.epoch, end_offset: end.end_offset };
                }
                Err(e) => return Err(replica_error_code(e)),
            }
        }
        // Read after the core's step: the high watermark it may have moved.
        // Consumers see it only once a new leader's has reached its epoch's start.
        let high_watermark = match reader.fetcher {
            Fetcher::Replica { .. } => partition.progress().high_watermark,
            Fetcher::Consumer if preferred.is_some() => partition.progress().high_watermark,
            Fetcher::Consumer if partition.is_leader() => {
                partition.client_high_watermark(&log).ok_or(ErrorCode::OffsetNotAvailable)?
            }
            // A consumer reading from a follower (KIP-392).
            Fetcher::Consumer => partition.follower_high_watermark(&log)?,
        };
        // A follower reads everything the leader holds; a consumer what is
        // committed, and nothing (no error) from an offset between the high
        // watermark and the log end, as Kafka's log read answers it.
        let upper_bound = match reader.fetcher {
            Fetcher::Replica { .. } => log.log_end_offset(),
            Fetcher::Consumer => high_watermark,
        };
        let plan = match divergence {
            Divergence::None if preferred.is_some() => Some(Ok(None)),
            Divergence::None
                if reader.fetcher == Fetcher::Consumer
                    && slot.fetch_offset > upper_bound
                    && slot.fetch_offset <= log.log_end_offset() =>
            {
                Some(Ok(None))
            }
            Divergence::None => Some(log.plan_read(slot.fetch_offset, upper_bound)),
            _ => None,
        };
        (plan, log.log_start_offset(), log.log_end_offset(), divergence, high_watermark)
    };
    let base = PartitionData::default()
        .with_partition_index(slot.index)
        .with_high_watermark(high_watermark)
        .with_last_stable_offset(high_watermark)
        .with_log_start_offset(log_start_offset)
        .with_aborted_transactions(Some(Vec::new()));
    let plan = match (divergence, plan) {
        (Divergence::At { epoch, end_offset }, _) => {
            let diverging = EpochEndOffset::default().with_epoch(epoch).with_end_offset(end_offset);
            return Ok((base.with_error_code(0).with_diverging_epoch(diverging), Records::empty()));
        }
        (Divergence::OutOfRange, _) | (_, None) => {
            return Ok((base.with_error_code(ErrorCode::OffsetOutOfRange.code()), Records::empty()));
        }
        (Divergence::None, Some(plan)) => plan,
    };
    if let Some(replica) = preferred {
        let data = base.with_error_code(0).with_preferred_read_replica(BrokerId(replica));
        return Ok((data, Records::empty()));
    }
    let records = match plan {
        _ if slot.leader_throttled && reader.throttled => Records::empty(),
        Ok(None) => Records::empty(),
        Ok(Some(plan)) => {
            let limit = slot.partition_max_bytes.min(budget);
            let located = plan.locate(limit, first).and_then(|slice| {
                if slice.len < INLINE_RECORDS_MAX {
                    slice.read().map(|b| Records::Inline(b.into()))
                } else {
                    Ok(Records::File(slice))
                }
            });
            located.map_err(|e| {
                tracing::error!(topic = %partition.topic, partition = partition.index, error = %e, "read failed");
                ErrorCode::KafkaStorageError
            })?
        }
        Err(LogError::OffsetOutOfRange { .. }) => {
            return Ok((base.with_error_code(ErrorCode::OffsetOutOfRange.code()), Records::empty()));
        }
        Err(_) => return Err(ErrorCode::KafkaStorageError),
    };
    if let (Fetcher::Replica { id, epoch }, true) = (reader.fetcher, reader.observe) {
        partition.replica_fetched(ReplicaFetch {
            replica_id: id,
            replica_epoch: epoch,
            fetch_offset: slot.fetch_offset,
            last_fetched_epoch: (slot.last_fetched_epoch >= 0).then_some(slot.last_fetched_epoch),
            log_start_offset: slot.log_start_offset,
            leader_log_end_offset: log_end_offset,
            at: std::time::Instant::now(),
        });
    }
    Ok((base.with_error_code(0), records))
}
