//! The replication driver of a KRaft node: the tasks that move the
//! replication core besides the request handlers (see `replication.rs`).
//!
//! - **Timer**: every [`TICK`], each replicated partition this node leads
//!   gets `tick` (ISR shrink, AlterPartition resends, produce timeouts), and
//!   the set of follower fetchers is brought in line with the roles.
//! - **AlterPartition worker**: one task sends the core's AlterPartition
//!   requests through [`Cluster::alter_partition`], one at a time in the
//!   order they were made, and hands each answer back to its partition.
//!   Sending one at a time keeps every partition's attempts in order (the
//!   design note's ordering requirement).
//! - **Follower fetchers**: one task per followed partition and leader
//!   epoch. It polls the core, sends the Fetch (v15: `ReplicaState` with the
//!   broker epoch, and `LastFetchedEpoch`) over a connection bound to this node's own
//!   address, appends the answer through the core, asks the flusher to make
//!   it durable and polls again once the flush is published (the core
//!   fetches again only once what it appended is fsynced). It stops when
//!   the partition's role or epoch changes.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic, ReplicaState};
use kafka_protocol::messages::offset_for_leader_epoch_request::{OffsetForLeaderPartition, OffsetForLeaderTopic};
use kafka_protocol::messages::{ApiKey, BrokerId, FetchRequest, OffsetForLeaderEpochRequest, TopicName};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tributary_client::connection::{ClientConfig, Connection};
use tributary_client::error::ClientError;
use tributary_metadata::BrokerState;
use tributary_protocol::ErrorCode;
use tributary_replication::messages::{
    AlterPartitionAccepted, AlterPartitionError, AlterPartitionResponse, FetchRequest as CoreFetch, FetchResponse,
    FetchedData, OffsetForLeaderEpochRequest as CoreEpochRequest, OffsetForLeaderEpochResponse, ReplicaRequestError,
};
use tributary_replication::{EpochEndOffset, FollowerEvent, FollowerRequest};
use tributary_types::TopicId;

use crate::cluster::Cluster;
use crate::isr_change::IsrChange;
use crate::partition::{Partition, PartitionRef};
use crate::replication::{AlterJob, replica_error_of};

/// How often leaders tick and fetchers are reconciled with the roles.
const TICK: Duration = Duration::from_millis(200);
/// How long a follower's fetch waits at the leader for new records.
const FETCH_MAX_WAIT_MS: i32 = 500;
/// Bytes a follower asks for per fetch.
const FETCH_MAX_BYTES: i32 = 8 * 1024 * 1024;
/// Pause after a failed connection or request.
const RETRY_PAUSE: Duration = Duration::from_millis(200);

/// Starts the driver's tasks (KRaft mode only; a node alone has no followers).
pub fn spawn(cluster: &Arc<Cluster>, shutdown: watch::Receiver<bool>) {
    if cluster.quorum().is_none() {
        return;
    }
    let queue = cluster.alter_queue.lock().unwrap_or_else(|p| p.into_inner()).take();
    if let Some(queue) = queue {
        tokio::spawn(alter_worker(cluster.clone(), queue));
    }
    tokio::spawn(timer_loop(cluster.clone(), shutdown));
}

/// Sends AlterPartition requests one at a time and hands back the answers.
async fn alter_worker(cluster: Arc<Cluster>, mut queue: tokio::sync::mpsc::UnboundedReceiver<AlterJob>) {
    while let Some(AlterJob { partition, send }) = queue.recv().await {
        let request = &send.request;
        let change = IsrChange {
            topic_id: partition.topic_id,
            partition: partition.index,
            leader_epoch: request.leader_epoch,
            partition_epoch: request.partition_epoch,
            new_isr: request
                .new_isr
                .iter()
                .map(|m| BrokerState { broker_id: m.broker_id, broker_epoch: m.broker_epoch })
                .collect(),
        };
        tracing::info!(topic = %partition.topic, partition = partition.index, isr = ?request.isr_ids(),
            "asking the controller to change the ISR");
        let result = match cluster.alter_partition(change).await {
            Ok(state) => Ok(AlterPartitionAccepted {
                leader: state.leader_id,
                leader_epoch: state.leader_epoch,
                isr: state.isr,
                partition_epoch: state.partition_epoch,
            }),
            Err(code) => {
                tracing::info!(topic = %partition.topic, partition = partition.index, error = ?code,
                    "the controller refused the ISR change");
                Err(alter_error(code))
            }
        };
        let response = AlterPartitionResponse { result };
        let p = partition.clone();
        let answered = tokio::task::spawn_blocking(move || p.replica_alter_answered(&send, &response)).await;
        if answered.is_err() {
            tracing::error!(topic = %partition.topic, partition = partition.index,
                "handing the AlterPartition answer to the replica panicked");
        }
    }
}

/// The core's reading of the controller's refusal.
fn alter_error(code: ErrorCode) -> AlterPartitionError {
    match code {
        ErrorCode::StaleBrokerEpoch => AlterPartitionError::StaleBrokerEpoch,
        ErrorCode::NotController => AlterPartitionError::NotController,
        ErrorCode::FencedLeaderEpoch => AlterPartitionError::FencedLeaderEpoch,
        ErrorCode::InvalidRequest | ErrorCode::UnknownTopicId | ErrorCode::UnknownTopicOrPartition => {
            AlterPartitionError::InvalidRequest
        }
        ErrorCode::InvalidUpdateVersion => AlterPartitionError::InvalidUpdateVersion,
        ErrorCode::IneligibleReplica => AlterPartitionError::IneligibleReplica,
        ErrorCode::NewLeaderElected => AlterPartitionError::NewLeaderElected,
        _ => AlterPartitionError::Transport,
    }
}

/// A running follower fetcher: which leader and epoch it follows.
struct Fetcher {
    leader: (i32, i32),
    task: JoinHandle<()>,
}

/// Ticks leaders and keeps one fetcher per followed partition.
async fn timer_loop(cluster: Arc<Cluster>, mut shutdown: watch::Receiver<bool>) {
    let mut fetchers: HashMap<(TopicId, i32), Fetcher> = HashMap::new();
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            _ = tokio::time::sleep(TICK) => {}
        }
        let registry = cluster.registry();
        let mut followed = HashMap::new();
        let mut leaders = Vec::new();
        for topic in registry.topics.values() {
            for partition in topic.partitions.iter().filter(|p| p.is_replicated()) {
                match partition.following() {
                    Some(leader) if leader.0 >= 0 => {
                        followed.insert((partition.topic_id, partition.index), (partition.clone(), leader));
                    }
                    _ => leaders.push(partition.clone()),
                }
            }
        }
        let ticked = tokio::task::spawn_blocking(move || {
            for p in leaders {
                p.replica_tick();
            }
        })
        .await;
        if ticked.is_err() {
            tracing::error!("ticking the replicated partitions panicked");
        }
        fetchers.retain(|key, f| {
            let keep = followed.get(key).is_some_and(|(_, leader)| *leader == f.leader) && !f.task.is_finished();
            if !keep {
                f.task.abort();
            }
            keep
        });
        for (key, (partition, leader)) in followed {
            fetchers.entry(key).or_insert_with(|| {
                tracing::info!(topic = %partition.topic, partition = partition.index, leader = leader.0,
                    leader_epoch = leader.1, "following");
                Fetcher { leader, task: tokio::spawn(follow(cluster.clone(), partition, leader)) }
            });
        }
    }
    for (_, f) in fetchers {
        f.task.abort();
    }
}

/// The host of this node's first advertised listener, when it is an IP
/// address: where its connections to other brokers leave from.
fn own_host(cluster: &Cluster) -> Option<IpAddr> {
    let listeners = cluster.advertised_listeners();
    let host = listeners.first()?.host.trim_start_matches('[').trim_end_matches(']').to_string();
    host.parse().ok()
}

/// `host:port` of broker `id` on the listener of this node's first
/// advertised listener's name (else its first listener).
fn broker_address(cluster: &Cluster, id: i32) -> Option<String> {
    let image = cluster.image();
    let broker = image.brokers.get(&id)?;
    let ours = cluster.advertised_listeners().first().map(|l| l.name.clone());
    let listener = broker.listeners.iter().find(|l| Some(&l.name) == ours.as_ref()).or(broker.listeners.first())?;
    let host = if listener.host.contains(':') { format!("[{}]", listener.host) } else { listener.host.clone() };
    Some(format!("{host}:{}", listener.port))
}

/// Follows one partition from `leader` (id, leader epoch) until its role changes.
async fn follow(cluster: Arc<Cluster>, partition: PartitionRef, leader: (i32, i32)) {
    let mut progress = partition.subscribe();
    let mut connection: Option<Connection> = None;
    let mut config = ClientConfig::new("");
    config.client_id = format!("tributary-replica-{}", cluster.node_id);
    config.timeout = Duration::from_secs(10);
    loop {
        if partition.following() != Some(leader) {
            return;
        }
        let p = partition.clone();
        let Ok(request) = tokio::task::spawn_blocking(move || p.follower_poll()).await else { return };
        let Some(request) = request else {
            // Waiting for a flush, a backoff or a response timeout.
            let _ = tokio::time::timeout(Duration::from_millis(100), progress.changed()).await;
            continue;
        };
        let request_id = request.request_id();
        if connection.as_ref().is_none_or(Connection::is_broken) {
            connection = connect(&cluster, &partition, leader.0, &config).await;
        }
        let Some(conn) = connection.as_mut() else {
            partition.follower_request_failed(request_id);
            tokio::time::sleep(RETRY_PAUSE).await;
            continue;
        };
        let answer = match request {
            FollowerRequest::Fetch(fetch) => {
                send_fetch(conn, &partition, &cluster, &fetch).await.map(|a| a.map(Answer::Fetch))
            }
            FollowerRequest::OffsetForLeaderEpoch(ask) => {
                send_offset_for_leader_epoch(conn, &partition, &cluster, &ask).await.map(|a| a.map(Answer::Epoch))
            }
        };
        let answer = match answer {
            Ok(answer) => answer,
            Err(e) => {
                tracing::debug!(topic = %partition.topic, partition = partition.index, error = %e,
                    "request to the leader failed");
                connection = None;
                None
            }
        };
        let Some(answer) = answer else {
            partition.follower_request_failed(request_id);
            tokio::time::sleep(RETRY_PAUSE).await;
            continue;
        };
        let p = partition.clone();
        let handled = tokio::task::spawn_blocking(move || match answer {
            Answer::Fetch(result) => p.follower_fetched(FetchResponse { request_id, result }),
            Answer::Epoch(result) => p.follower_epoch_end(OffsetForLeaderEpochResponse { request_id, result }),
        });
        let Ok(event) = handled.await else { return };
        match event {
            Ok(FollowerEvent::Appended { .. }) => cluster.flusher.mark_dirty(&partition),
            Ok(FollowerEvent::Truncated { offset, below_high_watermark }) => {
                tracing::warn!(topic = %partition.topic, partition = partition.index, offset, below_high_watermark,
                    "truncated to the leader's log");
            }
            Ok(_) => {}
            Err(e) => {
                tracing::error!(topic = %partition.topic, partition = partition.index, error = %e,
                    "the follower's log refused the leader's records");
                tokio::time::sleep(RETRY_PAUSE).await;
            }
        }
    }
}

/// A leader's answer, as the core reads it.
enum Answer {
    Fetch(Result<FetchedData<Bytes>, ReplicaRequestError>),
    Epoch(Result<Option<EpochEndOffset>, ReplicaRequestError>),
}

/// A connection to broker `leader` from this node's own address.
async fn connect(cluster: &Cluster, partition: &Partition, leader: i32, config: &ClientConfig) -> Option<Connection> {
    let address = broker_address(cluster, leader)?;
    match Connection::connect_from(&address, own_host(cluster), config).await {
        Ok(c) => Some(c),
        Err(e) => {
            tracing::debug!(topic = %partition.topic, partition = partition.index, error = %e,
                "cannot connect to the leader");
            None
        }
    }
}

/// Sends the core's fetch; `None` when the answer says nothing the core reads
/// (another error, or the partition missing from it).
async fn send_fetch(
    conn: &mut Connection,
    partition: &Partition,
    cluster: &Cluster,
    fetch: &CoreFetch,
) -> Result<Option<Result<FetchedData<Bytes>, ReplicaRequestError>>, ClientError> {
    // v15+ names the follower with its broker epoch (ReplicaState) and the
    // topic by id; a leader that serves no v15 gets v12 (ReplicaId, name).
    let version = if conn.broker_versions(ApiKey::Fetch).is_some_and(|r| r.max >= 15) { 15 } else { 12 };
    let topic_id = uuid::Uuid::from_bytes(partition.topic_id.0);
    let mut topic = FetchTopic::default().with_partitions(vec![
        FetchPartition::default()
            .with_partition(partition.index)
            .with_current_leader_epoch(fetch.current_leader_epoch)
            .with_fetch_offset(fetch.fetch_offset)
            .with_last_fetched_epoch(fetch.last_fetched_epoch.unwrap_or(-1))
            .with_log_start_offset(-1)
            .with_partition_max_bytes(FETCH_MAX_BYTES),
    ]);
    let mut body = FetchRequest::default()
        .with_max_wait_ms(FETCH_MAX_WAIT_MS)
        .with_min_bytes(1)
        .with_max_bytes(FETCH_MAX_BYTES)
        .with_session_id(0)
        .with_session_epoch(-1);
    if version >= 15 {
        topic = topic.with_topic_id(topic_id);
        body = body.with_replica_state(
            ReplicaState::default().with_replica_id(BrokerId(cluster.node_id)).with_replica_epoch(fetch.replica_epoch),
        );
    } else {
        topic = topic.with_topic(TopicName(partition.topic.clone().into()));
        body = body.with_replica_id(BrokerId(cluster.node_id));
    }
    let body = body.with_topics(vec![topic]);
    let response = conn.call_within(&body, version, Duration::from_secs(10)).await?;
    let data = response
        .responses
        .into_iter()
        .filter(|t| if version >= 13 { t.topic_id == topic_id } else { t.topic.0.as_str() == partition.topic })
        .flat_map(|t| t.partitions)
        .find(|p| p.partition_index == partition.index);
    Ok(match data {
        None => None,
        Some(d) if d.error_code != 0 => replica_error_of(d.error_code).map(Err),
        Some(d) if d.diverging_epoch.epoch >= 0 => Some(Ok(FetchedData::Diverging(EpochEndOffset {
            epoch: d.diverging_epoch.epoch,
            end_offset: d.diverging_epoch.end_offset,
        }))),
        Some(d) => Some(Ok(FetchedData::Records {
            records: d.records.unwrap_or_else(Bytes::new),
            high_watermark: d.high_watermark,
        })),
    })
}

/// Asks the leader where the follower's latest epoch ends.
async fn send_offset_for_leader_epoch(
    conn: &mut Connection,
    partition: &Partition,
    cluster: &Cluster,
    ask: &CoreEpochRequest,
) -> Result<Option<Result<Option<EpochEndOffset>, ReplicaRequestError>>, ClientError> {
    let version = conn.version(ApiKey::OffsetForLeaderEpoch)?;
    let body = OffsetForLeaderEpochRequest::default().with_replica_id(BrokerId(cluster.node_id)).with_topics(vec![
        OffsetForLeaderTopic::default().with_topic(TopicName(partition.topic.clone().into())).with_partitions(vec![
            OffsetForLeaderPartition::default()
                .with_partition(partition.index)
                .with_current_leader_epoch(ask.current_leader_epoch)
                .with_leader_epoch(ask.leader_epoch),
        ]),
    ]);
    let response = conn.call(&body, version).await?;
    let data = response
        .topics
        .into_iter()
        .filter(|t| t.topic.0.as_str() == partition.topic)
        .flat_map(|t| t.partitions)
        .find(|p| p.partition == partition.index);
    Ok(match data {
        None => None,
        Some(d) if d.error_code != 0 => replica_error_of(d.error_code).map(Err),
        Some(d) if d.leader_epoch < 0 || d.end_offset < 0 => Some(Ok(None)),
        Some(d) => Some(Ok(Some(EpochEndOffset { epoch: d.leader_epoch, end_offset: d.end_offset }))),
    })
}
