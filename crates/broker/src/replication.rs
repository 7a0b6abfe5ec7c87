//! The replication core (`tributary_replication`) driven from a hosted
//! partition: the [`ReplicaLog`] seam over the partition's log, the core's
//! state beside the log, and the calls every part of the broker makes.
//!
//! ```text
//!  reconciler ──▶ Partition::apply_replica_metadata ──▶ PartitionReplica::apply_metadata
//!  produce    ──▶ check_produce, append, on_appended ──▶ a waiter answered from the core's acks
//!  flusher    ──▶ Partition::after_flush ─────────────▶ on_flushed (leader): the high watermark
//!  Fetch from a follower ──▶ Partition::replica_fetch ──▶ handle_fetch: Read or DivergingEpoch
//!  driver (driver.rs) ──▶ tick, AlterPartition answers; follower fetchers ──▶ poll / handle_fetch_response
//! ```
//!
//! Only partitions with more than one replica are driven by the core. A
//! partition with a single replica keeps the single-node path: the flusher
//! commits its durable offset ([`Partition::commit_durable`]).
//!
//! **Who publishes the high watermark.** On a replicated partition the
//! log's high watermark moves only through the seam: on a leader, by the
//! core's effects (over the durable offsets of the ISR); on a follower, from
//! its leader's fetch responses. Every core call ends by publishing the
//! log's progress, which wakes acks=all waiters, consumers' fetches, and
//! (on a leader's append) followers' fetches waiting for new records.
//!
//! **Locks.** The core's state is behind its own mutex, always taken after
//! the log's: every path here holds the log's lock first.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{MutexGuard, OnceLock};
use std::time::Instant;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};
use tributary_log::{BelowHighWatermark, PartitionLog};
use tributary_replication::messages::AlterPartitionResponse;
#[cfg(test)]
use tributary_replication::messages::FetchedData;
use tributary_replication::messages::{
    FetchDecision, FetchRequest, FetchResponse, OffsetForLeaderEpochResponse, ReplicaRequestError,
};
use tributary_replication::{
    AckId, Acks, AlterPartitionSend, EpochEndOffset, FollowerEvent, FollowerRequest, LeaderEffects, LogError,
    MetadataView, PartitionReplica, ProduceError, ReplicaLog, ReplicationConfig, Role,
};
use tributary_types::now_ms;

use crate::partition::{Partition, PartitionRef, Progress};

/// Milliseconds on a clock that never goes back, for the core's timers.
pub fn monotonic_ms() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_millis() as u64
}

/// The [`ReplicaLog`] seam over a partition log (its lock held).
#[derive(Debug)]
pub struct LogSeam<'a> {
    log: &'a mut PartitionLog,
}

impl<'a> LogSeam<'a> {
    /// The seam over `log`.
    pub fn new(log: &'a mut PartitionLog) -> LogSeam<'a> {
        LogSeam { log }
    }
}

fn log_error(e: impl std::fmt::Display) -> LogError {
    LogError(e.to_string())
}

impl ReplicaLog for LogSeam<'_> {
    type Records = Bytes;

    fn log_end_offset(&self) -> i64 {
        self.log.log_end_offset()
    }

    fn durable_offset(&self) -> i64 {
        self.log.durable_offset()
    }

    fn high_watermark(&self) -> i64 {
        self.log.high_watermark()
    }

    fn set_high_watermark(&mut self, offset: i64) {
        // Checkpointed with the log's flushes (at most once a second); a
        // reopened replica starts from the checkpoint, never its log end
        // (`Partition::apply_replica_metadata`).
        self.log.advance_high_watermark(offset.min(self.log.log_end_offset()));
    }

    fn latest_epoch(&self) -> Option<i32> {
        self.log.latest_epoch()
    }

    fn end_offset_for_epoch(&self, epoch: i32) -> Option<EpochEndOffset> {
        let (epoch, end_offset) = self.log.end_offset_for_epoch(epoch);
        (epoch >= 0 && end_offset >= 0).then_some(EpochEndOffset { epoch, end_offset })
    }

    fn assign_epoch_start(&mut self, epoch: i32, start_offset: i64) -> Result<(), LogError> {
        if start_offset != self.log.log_end_offset() {
            return Err(LogError(format!(
                "epoch {epoch} asked to start at {start_offset}, not at the log end {}",
                self.log.log_end_offset()
            )));
        }
        self.log.assign_epoch(epoch).map_err(log_error)
    }

    fn append_as_follower(&mut self, records: Bytes) -> Result<(), LogError> {
        if records.is_empty() {
            return Ok(());
        }
        self.log.append_as_follower(&records, now_ms()).map(|_| ()).map_err(log_error)
    }

    fn truncate_to(&mut self, offset: i64) -> Result<(), LogError> {
        // A replica's high watermark is at most what was committed (a
        // reopened one starts from its checkpoint), and a leader elected
        // from the ISR holds everything committed: a cut below it would drop
        // acknowledged records, so the log refuses it (there are no unclean
        // elections).
        self.log.truncate_to(offset, BelowHighWatermark::Refuse).map(|_| ()).map_err(log_error)
    }
}

/// A leader's view of its in-sync followers ([`Partition::read_replica_view`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadReplicaView {
    /// The leader's log end offset.
    pub leader_log_end_offset: i64,
    /// Each follower of the committed ISR.
    pub followers: Vec<FollowerView>,
    /// Now, on the core's clock ([`monotonic_ms`]).
    pub now_ms: u64,
}

/// One in-sync follower, as its leader sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FollowerView {
    /// Its broker id.
    pub id: i32,
    /// Its durable log end, from its latest fetch (-1 before one).
    pub log_end_offset: i64,
    /// When it was last caught up, on the core's clock (0: never).
    pub last_caught_up_ms: u64,
}

/// An AlterPartition the driver sends for a partition this node leads.
#[derive(Debug)]
pub struct AlterJob {
    /// The partition.
    pub partition: PartitionRef,
    /// What the core asked for.
    pub send: AlterPartitionSend,
}

/// Where a partition's AlterPartition requests go (the driver's queue: one
/// worker sends them in order, so a partition's attempts are applied in the
/// order the core made them).
pub type AlterQueue = mpsc::UnboundedSender<AlterJob>;

/// The core's state of one replicated partition.
#[derive(Debug)]
pub struct Replication {
    replica: PartitionReplica,
    waiters: HashMap<AckId, oneshot::Sender<Result<(), ProduceError>>>,
    next_ack: u64,
    broker_epoch: i64,
    alter: Option<AlterQueue>,
}

/// A produce request waiting for the core's answer.
pub type AckWaiter = oneshot::Receiver<Result<(), ProduceError>>;

/// What the reconciler hands a replicated partition.
#[derive(Debug, Clone)]
pub struct ReplicaSettings {
    /// This node.
    pub node_id: i32,
    /// This node's broker epoch (-1 before it registered).
    pub broker_epoch: i64,
    /// The topic's settings.
    pub config: ReplicationConfig,
    /// Where AlterPartition requests go (none in unit tests without a driver).
    pub alter: Option<AlterQueue>,
}

impl Partition {
    fn replication(&self) -> MutexGuard<'_, Option<Replication>> {
        self.replication.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether the replication core drives this partition (more than one replica).
    pub fn is_replicated(&self) -> bool {
        self.replicated.load(Ordering::Relaxed)
    }

    /// Applies a metadata image to the core (the reconciler, after
    /// [`Partition::set_leadership`]). A new broker epoch of this node
    /// starts the core afresh.
    pub fn apply_replica_metadata(&self, settings: &ReplicaSettings, view: &MetadataView) {
        let mut log = self.log();
        let mut state = self.replication();
        let fresh = match &*state {
            Some(r) => r.replica.node_id() != settings.node_id || r.broker_epoch != settings.broker_epoch,
            None => true,
        };
        if fresh {
            if let Some(old) = state.take() {
                for (_, waiter) in old.waiters {
                    let _ = waiter.send(Err(ProduceError::NotLeaderOrFollower));
                }
            }
            *state = Some(Replication {
                replica: PartitionReplica::new(settings.node_id, settings.broker_epoch, settings.config),
                waiters: HashMap::new(),
                next_ack: 1,
                broker_epoch: settings.broker_epoch,
                alter: settings.alter.clone(),
            });
            // A log reopened with its high watermark at its log end starts
            // from its checkpointed one: the end may hold records no other
            // replica has (once per opened log; a running one keeps its own).
            log.restore_checkpointed_high_watermark();
        }
        self.replicated.store(true, Ordering::Relaxed);
        let Some(r) = state.as_mut() else { return };
        r.alter = settings.alter.clone();
        match r.replica.apply_metadata(monotonic_ms(), view, &mut LogSeam::new(&mut log)) {
            Ok(outcome) => {
                tracing::debug!(topic = %self.topic, partition = self.index, transition = ?outcome.transition,
                    "replica metadata applied");
                self.deliver(r, outcome.effects);
            }
            Err(e) => tracing::error!(topic = %self.topic, partition = self.index, error = %e,
                "applying metadata to the replica failed"),
        }
        self.publish(Progress::of(&log));
    }

    /// acks=all refused before the append while the ISR is below
    /// `min.insync.replicas` (the log's lock held by the caller).
    pub fn replica_check_produce(&self, acks: i16) -> Result<(), ProduceError> {
        let state = self.replication();
        let Some(r) = state.as_ref() else { return Ok(()) };
        match r.replica.leader() {
            Some(leader) => leader.check_produce(acks_of(acks)),
            None => Err(ProduceError::NotLeaderOrFollower),
        }
    }

    /// A batch was appended up to `last_offset` (the log's lock held):
    /// returns the waiter the core answers, for acks 1 and -1.
    pub fn replica_on_appended(
        &self,
        log: &mut PartitionLog,
        acks: i16,
        last_offset: i64,
        timeout_ms: u64,
    ) -> Option<AckWaiter> {
        let mut state = self.replication();
        let r = state.as_mut()?;
        let acks = acks_of(acks);
        let id = AckId(r.next_ack);
        r.next_ack += 1;
        let waiter = acks.map(|_| {
            let (tx, rx) = oneshot::channel();
            r.waiters.insert(id, tx);
            rx
        });
        let effects = match (r.replica.leader_mut(), acks) {
            (Some(leader), Some(acks)) => {
                leader.on_appended(monotonic_ms(), id, acks, last_offset, timeout_ms, &mut LogSeam::new(log))
            }
            (Some(leader), None) => leader.on_flushed(monotonic_ms(), &mut LogSeam::new(log)),
            (None, _) => {
                if let Some(tx) = r.waiters.remove(&id) {
                    let _ = tx.send(Err(ProduceError::NotLeaderOrFollower));
                }
                LeaderEffects::default()
            }
        };
        self.deliver(r, effects);
        drop(state);
        // Wakes followers' fetches waiting for new records.
        self.publish(Progress::of(log));
        waiter
    }

    /// After a flush of a replicated partition (the log's lock held): the
    /// leader's durable offset moved. Returns the progress to publish.
    pub fn after_flush(&self, log: &mut PartitionLog) -> Progress {
        if !self.is_replicated() {
            return self.commit_durable(log);
        }
        let mut state = self.replication();
        if let Some(r) = state.as_mut()
            && let Some(leader) = r.replica.leader_mut()
        {
            let effects = leader.on_flushed(monotonic_ms(), &mut LogSeam::new(log));
            self.deliver(r, effects);
        }
        Progress::of(log)
    }

    /// A follower's fetch, as the core judges it (the log's lock held).
    pub fn replica_fetch(
        &self,
        log: &mut PartitionLog,
        request: &FetchRequest,
    ) -> Result<FetchDecision, ReplicaRequestError> {
        let mut state = self.replication();
        let Some(r) = state.as_mut() else { return Err(ReplicaRequestError::NotLeaderOrFollower) };
        let (decision, effects) = r.replica.handle_fetch(monotonic_ms(), request, &mut LogSeam::new(log));
        self.deliver(r, effects);
        drop(state);
        self.publish(Progress::of(log));
        decision
    }

    /// The timer: ISR shrink, AlterPartition resends, produce timeouts.
    pub fn replica_tick(&self) {
        let mut log = self.log();
        let mut state = self.replication();
        let Some(r) = state.as_mut() else { return };
        let Some(leader) = r.replica.leader_mut() else { return };
        let effects = leader.tick(monotonic_ms(), &mut LogSeam::new(&mut log));
        self.deliver(r, effects);
        drop(state);
        self.publish(Progress::of(&log));
    }

    /// The controller's answer to an AlterPartition the core asked for.
    pub fn replica_alter_answered(&self, sent: &AlterPartitionSend, response: &AlterPartitionResponse) {
        let mut log = self.log();
        let mut state = self.replication();
        let Some(r) = state.as_mut() else { return };
        let Some(leader) = r.replica.leader_mut() else { return };
        let effects =
            leader.handle_alter_partition_response(monotonic_ms(), sent, response, &mut LogSeam::new(&mut log));
        self.deliver(r, effects);
        drop(state);
        self.publish(Progress::of(&log));
    }

    /// The high watermark clients may be shown (the log's lock held): a
    /// replicated partition's leader shows its high watermark only once it
    /// has reached the start of its leader epoch (a new leader's may still
    /// be below what the previous leader showed); `None` until then, which
    /// clients get as OFFSET_NOT_AVAILABLE and retry.
    pub fn client_high_watermark(&self, log: &PartitionLog) -> Option<i64> {
        if !self.is_replicated() {
            return Some(self.progress().high_watermark);
        }
        let state = self.replication();
        match state.as_ref().and_then(|r| r.replica.leader()) {
            Some(leader) => leader.high_watermark_for_clients(&ReadSeam(log)),
            None => Some(self.progress().high_watermark),
        }
    }

    /// What this node, leading a replicated partition, knows of its
    /// in-sync followers, for choosing a consumer's read replica (KIP-392):
    /// `None` unless it leads.
    pub fn read_replica_view(&self) -> Option<ReadReplicaView> {
        let log = self.log();
        let state = self.replication();
        let leader = state.as_ref()?.replica.leader()?;
        let followers = leader
            .committed_isr()
            .iter()
            .filter_map(|&id| {
                let progress = leader.follower(id)?;
                Some(FollowerView {
                    id,
                    log_end_offset: progress.position,
                    last_caught_up_ms: progress.last_caught_up_ms,
                })
            })
            .collect();
        Some(ReadReplicaView { leader_log_end_offset: log.log_end_offset(), followers, now_ms: monotonic_ms() })
    }

    /// The high watermark this node shows consumers it serves as a follower
    /// (KIP-392; the log's lock held): its own, but never above what its
    /// leader last reported in this epoch, since a reopened log's own high
    /// watermark is its log end. OFFSET_NOT_AVAILABLE (which a consumer
    /// retries, at the leader) until the leader has answered a fetch;
    /// NOT_LEADER_OR_FOLLOWER when this node does not follow the partition.
    pub fn follower_high_watermark(&self, log: &PartitionLog) -> Result<i64, tributary_protocol::ErrorCode> {
        use tributary_protocol::ErrorCode;
        let state = self.replication();
        let Some(Role::Follower(follower)) = state.as_ref().map(|r| r.replica.role()) else {
            return Err(ErrorCode::NotLeaderOrFollower);
        };
        let reported = follower.leader_high_watermark().ok_or(ErrorCode::OffsetNotAvailable)?;
        Ok(log.high_watermark().min(reported))
    }

    /// The leader and leader epoch this node follows the partition under, if it follows.
    pub fn following(&self) -> Option<(i32, i32)> {
        let state = self.replication();
        match state.as_ref()?.replica.role() {
            Role::Follower(f) => Some((f.leader(), f.leader_epoch())),
            _ => None,
        }
    }

    /// The follower's next request to its leader, if one is due.
    pub fn follower_poll(&self) -> Option<FollowerRequest> {
        let log = self.log();
        let mut state = self.replication();
        let follower = state.as_mut()?.replica.follower_mut()?;
        let seam = ReadSeam(&log);
        follower.poll(monotonic_ms(), &seam)
    }

    /// The request in flight got no answer (a connection failure).
    pub fn follower_request_failed(&self, request_id: u64) {
        let _log = self.log();
        let mut state = self.replication();
        if let Some(follower) = state.as_mut().and_then(|r| r.replica.follower_mut()) {
            follower.request_failed(request_id);
        }
    }

    /// The leader's answer to the follower's fetch: records appended (not
    /// yet durable: the caller asks the flusher) or the log truncated.
    pub fn follower_fetched(&self, response: FetchResponse<Bytes>) -> Result<FollowerEvent, LogError> {
        let mut log = self.log();
        let mut state = self.replication();
        let Some(follower) = state.as_mut().and_then(|r| r.replica.follower_mut()) else {
            return Ok(FollowerEvent::Ignored);
        };
        let event = follower.handle_fetch_response(monotonic_ms(), response, &mut LogSeam::new(&mut log));
        drop(state);
        self.publish(Progress::of(&log));
        event
    }

    /// The leader's log starts at `offset`, past this follower's log end:
    /// the log starts again, empty, there (Kafka's `truncateFullyAndStartAt`).
    /// Nothing happens when the log already reaches `offset` or this node no
    /// longer follows.
    pub fn follower_start_at(&self, offset: i64) -> Result<(), tributary_log::LogError> {
        let mut log = self.log();
        if log.log_end_offset() >= offset || self.following().is_none() {
            return Ok(());
        }
        let truncated = log.truncate_fully_and_start_at(offset, BelowHighWatermark::Allow)?;
        self.publish(Progress::of(&log));
        drop(log);
        truncated.retired.remove();
        Ok(())
    }

    /// The leader's log start offset, from a fetch answer: a follower's log
    /// start follows it (up to its own log end), as Kafka's follower does
    /// (`maybeIncrementLogStartOffset`), so DeleteRecords and retention on
    /// the leader reach the followers, and a replica that started inside a
    /// batch reports the leader's log start rather than the batch's base.
    pub fn follower_log_start(&self, leader_log_start: i64) -> Result<(), tributary_log::LogError> {
        let mut log = self.log();
        let target = leader_log_start.min(log.log_end_offset());
        if target <= log.log_start_offset() || self.following().is_none() {
            return Ok(());
        }
        let end = log.log_end_offset();
        let (_, retired) = log.delete_records(target, end, now_ms())?;
        drop(log);
        retired.remove();
        Ok(())
    }

    /// The leader's answer to the follower's OffsetForLeaderEpoch: the log
    /// truncated to where it stops agreeing with the leader's.
    pub fn follower_epoch_end(&self, response: OffsetForLeaderEpochResponse) -> Result<FollowerEvent, LogError> {
        let mut log = self.log();
        let mut state = self.replication();
        let Some(follower) = state.as_mut().and_then(|r| r.replica.follower_mut()) else {
            return Ok(FollowerEvent::Ignored);
        };
        let event =
            follower.handle_offset_for_leader_epoch_response(monotonic_ms(), &response, &mut LogSeam::new(&mut log));
        drop(state);
        self.publish(Progress::of(&log));
        event
    }

    /// Delivers a core step's effects: produce answers to their waiters,
    /// an AlterPartition to the driver's queue.
    fn deliver(&self, r: &mut Replication, effects: LeaderEffects) {
        for outcome in effects.acks {
            if let Some(tx) = r.waiters.remove(&outcome.id) {
                let _ = tx.send(outcome.result);
            }
        }
        if let Some(send) = effects.alter_partition {
            let Some(me) = self.me.upgrade() else { return };
            match &r.alter {
                Some(queue) => {
                    if queue.send(AlterJob { partition: me, send }).is_err() {
                        tracing::warn!(topic = %self.topic, partition = self.index,
                            "the AlterPartition queue is closed; the ISR change waits for a resend");
                    }
                }
                None => tracing::debug!(topic = %self.topic, partition = self.index,
                    "no AlterPartition queue; the ISR change is not sent"),
            }
        }
    }
}

/// A read-only view for `poll` (which only reads offsets and epochs).
struct ReadSeam<'a>(&'a PartitionLog);

impl ReplicaLog for ReadSeam<'_> {
    type Records = Bytes;

    fn log_end_offset(&self) -> i64 {
        self.0.log_end_offset()
    }

    fn durable_offset(&self) -> i64 {
        self.0.durable_offset()
    }

    fn high_watermark(&self) -> i64 {
        self.0.high_watermark()
    }

    fn set_high_watermark(&mut self, _offset: i64) {}

    fn latest_epoch(&self) -> Option<i32> {
        self.0.latest_epoch()
    }

    fn end_offset_for_epoch(&self, epoch: i32) -> Option<EpochEndOffset> {
        let (epoch, end_offset) = self.0.end_offset_for_epoch(epoch);
        (epoch >= 0 && end_offset >= 0).then_some(EpochEndOffset { epoch, end_offset })
    }

    fn assign_epoch_start(&mut self, _epoch: i32, _start_offset: i64) -> Result<(), LogError> {
        Err(LogError("read-only".to_string()))
    }

    fn append_as_follower(&mut self, _records: Bytes) -> Result<(), LogError> {
        Err(LogError("read-only".to_string()))
    }

    fn truncate_to(&mut self, _offset: i64) -> Result<(), LogError> {
        Err(LogError("read-only".to_string()))
    }
}

/// The core's acks for a produce request's `acks` (0 is not tracked).
fn acks_of(acks: i16) -> Option<Acks> {
    match acks {
        -1 => Some(Acks::All),
        1 => Some(Acks::Leader),
        _ => None,
    }
}

/// The Kafka error a produce gets for the core's refusal.
pub fn produce_error_code(e: ProduceError) -> tributary_protocol::ErrorCode {
    use tributary_protocol::ErrorCode;
    match e {
        ProduceError::NotLeaderOrFollower => ErrorCode::NotLeaderOrFollower,
        ProduceError::NotEnoughReplicas => ErrorCode::NotEnoughReplicas,
        ProduceError::NotEnoughReplicasAfterAppend => ErrorCode::NotEnoughReplicasAfterAppend,
        ProduceError::RequestTimedOut => ErrorCode::RequestTimedOut,
    }
}

/// The Kafka error a follower's fetch gets for the core's refusal.
pub fn replica_error_code(e: ReplicaRequestError) -> tributary_protocol::ErrorCode {
    use tributary_protocol::ErrorCode;
    match e {
        ReplicaRequestError::FencedLeaderEpoch => ErrorCode::FencedLeaderEpoch,
        ReplicaRequestError::UnknownLeaderEpoch => ErrorCode::UnknownLeaderEpoch,
        ReplicaRequestError::NotLeaderOrFollower => ErrorCode::NotLeaderOrFollower,
        ReplicaRequestError::OffsetOutOfRange => ErrorCode::OffsetOutOfRange,
    }
}

/// The core's reading of a follower fetch's error code, if it has one.
pub fn replica_error_of(code: i16) -> Option<ReplicaRequestError> {
    use tributary_protocol::ErrorCode;
    [
        (ErrorCode::FencedLeaderEpoch, ReplicaRequestError::FencedLeaderEpoch),
        (ErrorCode::UnknownLeaderEpoch, ReplicaRequestError::UnknownLeaderEpoch),
        (ErrorCode::NotLeaderOrFollower, ReplicaRequestError::NotLeaderOrFollower),
        (ErrorCode::OffsetOutOfRange, ReplicaRequestError::OffsetOutOfRange),
    ]
    .into_iter()
    .find(|(c, _)| c.code() == code)
    .map(|(_, e)| e)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::Path;

    use tributary_log::{AppendInfo, AppendOutcome, LogConfig};
    use tributary_record::Compression;
    use tributary_record::builder::{BatchBuilder, RecordSpec};
    use tributary_replication::{BrokerStatus, PartitionRegistration};
    use tributary_types::TopicId;

    use super::*;
    use crate::partition::Partition;

    /// Every flush also checkpoints a high watermark that moved.
    fn config() -> LogConfig {
        LogConfig { high_watermark_checkpoint_interval_ms: 0, ..LogConfig::default() }
    }

    fn partition(dir: &Path, leads: bool) -> PartitionRef {
        let log = PartitionLog::open(dir, config(), true, if leads { 0 } else { -1 }, 0).expect("open");
        Partition::new("t".to_string(), TopicId([1; 16]), 0, 0, log)
    }

    fn settings(node_id: i32, min_insync_replicas: usize) -> ReplicaSettings {
        let config = ReplicationConfig { min_insync_replicas, ..ReplicationConfig::default() };
        ReplicaSettings { node_id, broker_epoch: 1, config, alter: None }
    }

    fn view(version: u64, isr: Vec<i32>) -> MetadataView {
        let brokers: BTreeMap<i32, BrokerStatus> =
            (1..=3).map(|id| (id, BrokerStatus { epoch: 1, fenced: false, shutting_down: false })).collect();
        let partition = PartitionRegistration {
            replicas: vec![1, 2, 3],
            isr,
            leader: 1,
            leader_epoch: 0,
            partition_epoch: version as i32,
        };
        MetadataView { version, partition, brokers }
    }

    /// Appends one record as the leader; the core's waiter for `acks`.
    fn produce(p: &Partition, acks: i16) -> Option<AckWaiter> {
        let mut builder = BatchBuilder::new(Compression::None);
        builder.push(RecordSpec::new(None, Some(b"v"), 1_000));
        let info = AppendInfo {
            leader_epoch: 0,
            max_timestamp: 1_000,
            offset_delta_of_max_timestamp: 0,
            now_ms: 1_000,
            log_append_time: false,
        };
        let mut log = p.log();
        let Ok(AppendOutcome::Appended { last_offset, .. }) = log.append(&builder.build(), &info) else {
            panic!("append refused")
        };
        p.replica_on_appended(&mut log, acks, last_offset, 30_000)
    }

    /// What the flusher does for one partition.
    fn flush(p: &Partition) {
        let Some(plan) = p.log().flush_plan() else { return };
        let outcome = plan.execute();
        let mut log = p.log();
        log.complete_flush(&plan, outcome).expect("flush");
        let progress = p.after_flush(&mut log);
        drop(log);
        p.publish(progress);
    }

    fn follower_fetch(p: &Partition, replica_id: i32, fetch_offset: i64) -> Result<FetchDecision, ReplicaRequestError> {
        let request = FetchRequest {
            request_id: 0,
            replica_id,
            replica_epoch: 1,
            current_leader_epoch: 0,
            fetch_offset,
            last_fetched_epoch: (fetch_offset > 0).then_some(0),
        };
        let mut log = p.log();
        p.replica_fetch(&mut log, &request)
    }

    /// The high watermark of a replicated partition is the core's: the
    /// flush alone (the single-node rule) does not move it; it moves once
    /// every in-sync replica has fetched past the batch, and then the
    /// acks=all produce is answered and consumers see it.
    #[test]
    fn acks_all_waits_for_every_in_sync_replica() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = partition(dir.path(), true);
        p.apply_replica_metadata(&settings(1, 2), &view(1, vec![1, 2, 3]));
        assert!(p.is_replicated() && p.following().is_none());
        let mut acks_all = produce(&p, -1).expect("acks=all waits");
        let mut acks_one = produce(&p, 1).expect("acks=1 waits");
        flush(&p);
        assert_eq!((p.progress().durable_offset, p.progress().high_watermark), (2, 0), "flushed, not committed");
        assert_eq!(acks_one.try_recv(), Ok(Ok(())), "acks=1 needs the leader's disk only");
        assert!(acks_all.try_recv().is_err(), "acks=all waits for the followers");
        assert!(matches!(follower_fetch(&p, 2, 2), Ok(FetchDecision::Read { .. })));
        assert_eq!(p.progress().high_watermark, 0, "replica 3 has not fetched");
        assert!(acks_all.try_recv().is_err());
        assert!(matches!(follower_fetch(&p, 3, 1), Ok(FetchDecision::Read { .. })));
        assert_eq!(p.progress().high_watermark, 1, "the smallest position in the ISR");
        assert!(follower_fetch(&p, 4, 0).is_err(), "not a replica");
        assert!(matches!(follower_fetch(&p, 3, 2), Ok(FetchDecision::Read { .. })));
        assert_eq!(p.progress().high_watermark, 2);
        assert_eq!(acks_all.try_recv(), Ok(Ok(())));
    }

    /// A leader killed with a record its followers never fetched and
    /// restarted (same epoch: it came back within the session timeout)
    /// starts from its checkpointed high watermark, not its log end: the
    /// record is neither shown to consumers nor counted as committed (a
    /// retried acks=all batch would be answered at once) until the
    /// followers have it. Before the high watermark was checkpointed the
    /// reopened log committed its whole end.
    #[test]
    fn a_restarted_leader_commits_nothing_its_followers_do_not_have() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = partition(dir.path(), true);
        p.apply_replica_metadata(&settings(1, 2), &view(1, vec![1, 2, 3]));
        produce(&p, -1);
        produce(&p, -1);
        flush(&p);
        for replica in [2, 3] {
            assert!(matches!(follower_fetch(&p, replica, 2), Ok(FetchDecision::Read { .. })));
        }
        assert_eq!(p.progress().high_watermark, 2);
        produce(&p, -1); // offset 2: on the leader only
        flush(&p); // the flush also checkpoints the high watermark, 2
        drop(p); // kill -9

        let log = PartitionLog::open(dir.path(), config(), false, 0, 0).expect("reopen");
        assert_eq!(log.checkpointed_high_watermark(), Some(2));
        let p = Partition::new("t".to_string(), TopicId([1; 16]), 0, 0, log);
        p.apply_replica_metadata(&settings(1, 2), &view(1, vec![1, 2, 3]));
        assert_eq!(p.log().log_end_offset(), 3);
        assert_eq!(p.progress().high_watermark, 2, "offset 2 is on this replica alone");
        assert_eq!(p.client_high_watermark(&p.log()), None, "below the restarted leadership's start, 3");
        assert!(matches!(follower_fetch(&p, 2, 3), Ok(FetchDecision::Read { .. })));
        assert_eq!(p.progress().high_watermark, 2, "replica 3 has not fetched offset 2");
        assert!(matches!(follower_fetch(&p, 3, 3), Ok(FetchDecision::Read { .. })));
        assert_eq!(p.progress().high_watermark, 3);
        assert_eq!(p.client_high_watermark(&p.log()), Some(3));
    }

    /// A replica whose log never checkpointed a high watermark (a data
    /// directory from before it was written) starts from its log start.
    #[test]
    fn a_reopened_replica_without_a_checkpointed_high_watermark_starts_from_its_log_start() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = partition(dir.path(), true);
        p.apply_replica_metadata(&settings(1, 1), &view(1, vec![1]));
        produce(&p, 1);
        drop(p);
        let log = PartitionLog::open(dir.path(), config(), false, 0, 0).expect("reopen");
        assert_eq!((log.checkpointed_high_watermark(), log.high_watermark()), (None, 1), "a log alone commits its end");
        let p = Partition::new("t".to_string(), TopicId([1; 16]), 0, 0, log);
        p.apply_replica_metadata(&settings(1, 2), &view(1, vec![1, 2, 3]));
        assert_eq!(p.progress().high_watermark, 0);
    }

    #[test]
    fn acks_all_is_refused_while_the_isr_is_below_min_insync_replicas() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = partition(dir.path(), true);
        p.apply_replica_metadata(&settings(1, 2), &view(1, vec![1]));
        assert_eq!(p.replica_check_produce(-1), Err(ProduceError::NotEnoughReplicas));
        assert_eq!(p.replica_check_produce(1), Ok(()));
        p.apply_replica_metadata(&settings(1, 2), &view(2, vec![1, 3]));
        assert_eq!(p.replica_check_produce(-1), Ok(()));
    }

    /// A waiting acks=all batch fails with NOT_ENOUGH_REPLICAS_AFTER_APPEND
    /// as soon as the committed ISR drops below min.insync.replicas; a step
    /// down fails the others with NOT_LEADER_OR_FOLLOWER.
    #[test]
    fn waiting_batches_fail_when_the_isr_shrinks_or_the_leader_steps_down() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = partition(dir.path(), true);
        p.apply_replica_metadata(&settings(1, 2), &view(1, vec![1, 2, 3]));
        let mut first = produce(&p, -1).expect("waits");
        flush(&p);
        p.apply_replica_metadata(&settings(1, 2), &view(2, vec![1]));
        assert_eq!(first.try_recv(), Ok(Err(ProduceError::NotEnoughReplicasAfterAppend)));
        assert_eq!(produce_error_code(ProduceError::NotEnoughReplicasAfterAppend).code(), 20);

        p.apply_replica_metadata(&settings(1, 2), &view(3, vec![1, 2]));
        let mut second = produce(&p, -1).expect("waits");
        let mut moved = view(4, vec![2, 3]);
        moved.partition.leader = 2;
        moved.partition.leader_epoch = 1;
        p.apply_replica_metadata(&settings(1, 2), &moved);
        assert_eq!(second.try_recv(), Ok(Err(ProduceError::NotLeaderOrFollower)));
        assert_eq!(p.following(), Some((2, 1)));
    }

    /// A leader in a new epoch shows clients no high watermark until it has
    /// reached the epoch's start: below it, it may be less than what the
    /// previous epoch's leader showed.
    #[test]
    fn a_new_epochs_high_watermark_is_shown_once_it_reaches_the_epoch_start() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = partition(dir.path(), true);
        p.apply_replica_metadata(&settings(1, 2), &view(1, vec![1, 2, 3]));
        produce(&p, 1);
        produce(&p, 1);
        flush(&p);
        assert_eq!(p.client_high_watermark(&p.log()), Some(0), "epoch 0 starts at 0");
        let mut next_epoch = view(2, vec![1, 2, 3]);
        next_epoch.partition.leader_epoch = 1;
        p.apply_replica_metadata(&settings(1, 2), &next_epoch);
        assert_eq!(p.client_high_watermark(&p.log()), None, "0 is below epoch 1's start, 2");
        let fetch = |replica_id| FetchRequest {
            request_id: 0,
            replica_id,
            replica_epoch: 1,
            current_leader_epoch: 1,
            fetch_offset: 2,
            last_fetched_epoch: Some(0),
        };
        for replica in [2, 3] {
            let mut log = p.log();
            assert!(matches!(p.replica_fetch(&mut log, &fetch(replica)), Ok(FetchDecision::Read { .. })));
        }
        assert_eq!(p.client_high_watermark(&p.log()), Some(2));
    }

    /// A follower appends its leader's records through the seam and asks
    /// for more only once they are durable, from its log end with the epoch
    /// of its last batch; its high watermark is the leader's, capped at its
    /// own log end.
    #[test]
    fn a_follower_fetches_again_only_once_its_records_are_durable() {
        let dir = tempfile::tempdir().expect("tempdir");
        let leader = partition(&dir.path().join("leader"), true);
        leader.apply_replica_metadata(&settings(1, 1), &view(1, vec![1, 2, 3]));
        produce(&leader, 1);
        flush(&leader);
        let bytes: Vec<u8> = std::fs::read_dir(dir.path().join("leader"))
            .expect("dir")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|path| path.extension().is_some_and(|x| x == "log"))
            .map(|path| std::fs::read(path).expect("segment"))
            .next()
            .expect("a segment");

        let follower = partition(&dir.path().join("follower"), false);
        follower.apply_replica_metadata(&settings(2, 1), &view(1, vec![1, 2, 3]));
        assert_eq!(follower.following(), Some((1, 0)));
        let Some(FollowerRequest::Fetch(first)) = follower.follower_poll() else { panic!("a fetch") };
        assert_eq!((first.fetch_offset, first.last_fetched_epoch), (0, None));
        let records = FetchedData::Records { records: Bytes::from(bytes), high_watermark: 5 };
        let response = FetchResponse { request_id: first.request_id, result: Ok(records) };
        assert_eq!(follower.follower_fetched(response), Ok(FollowerEvent::Appended { log_end_offset: 1 }));
        assert_eq!(follower.progress().high_watermark, 1, "the leader's, capped at the log end");
        assert!(follower.follower_poll().is_none(), "the appended record is not durable yet");
        flush(&follower);
        let Some(FollowerRequest::Fetch(next)) = follower.follower_poll() else { panic!("a fetch") };
        assert_eq!((next.fetch_offset, next.last_fetched_epoch), (1, Some(0)));
        assert_eq!(follower.progress().high_watermark, 1, "a follower's flush does not commit");
    }
}
