//! The leader side of one partition (Kafka's `Partition` while it leads):
//! followers' positions, the high watermark, ISR shrink and expansion
//! through AlterPartition, and the answers to produce requests.
//!
//! **High watermark.** The smallest durable offset over the maximal ISR
//! (see [`crate::isr`]), the leader's own durable offset included, and over
//! any follower that is caught up and eligible but not yet in the ISR
//! (Kafka waits for those too, so a follower can always catch up to join).
//! It never moves back, and it moves only while the committed ISR has at
//! least `min.insync.replicas` members: below that it stays frozen, acks=all
//! appends are refused up front (NOT_ENOUGH_REPLICAS) and waiting ones fail
//! (NOT_ENOUGH_REPLICAS_AFTER_APPEND); acks=1 appends are still taken and
//! answered from the leader's disk, and consumers see them once the ISR has
//! recovered and they are committed (Kafka's behaviour).
//!
//! **Positions last one leader epoch.** A follower's position is what it
//! reported in fetches of the current leader epoch; on any new leader epoch,
//! even when this replica leads again, every position is forgotten until the
//! follower fetches again. (Kafka keeps them when the same broker is
//! re-elected; when metadata skips an epoch led by another replica, the
//! followers may have truncated since, so we do not.)
//!
//! **ISR shrink**: a member that has not caught up (see
//! [`crate::progress`]) within `replica.lag.time.max.ms` is proposed out.
//! **ISR expansion**: a replica outside the ISR whose position has reached
//! both the high watermark and the start of this leader epoch (so it holds
//! everything any earlier leader committed), and whose broker is unfenced,
//! not shutting down and of the epoch it fetched with, is proposed in. One
//! change is in flight at a time; answers to older attempts are ignored.

use std::collections::{BTreeMap, BTreeSet};

use crate::acks::{AckId, AckOutcome, Acks, PendingAcks, ProduceError};
use crate::isr::{IsrState, PendingIsrChange};
use crate::log::{LogError, ReplicaLog};
use crate::messages::{
    AlterPartitionError, AlterPartitionRequest, AlterPartitionResponse, FetchDecision, FetchRequest, IsrMember,
    OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse, ReplicaRequestError,
};
use crate::progress::FollowerProgress;
use crate::types::{
    BrokerEpoch, BrokerStatus, LeaderEpoch, MetadataView, NodeId, Offset, PartitionEpoch, ReplicationConfig,
    UNKNOWN_BROKER_EPOCH,
};

/// An AlterPartition to send to the controller. Hand it back with its
/// answer ([`LeaderState::handle_alter_partition_response`]): answers to
/// anything but the latest attempt of the change in flight are ignored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlterPartitionSend {
    /// Which attempt this is; answers to older attempts are ignored.
    pub attempt: u64,
    /// The request.
    pub request: AlterPartitionRequest,
}

/// What the broker must do after a leader step.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeaderEffects {
    /// The high watermark moved here (already stored in the log): wake
    /// consumers' fetches.
    pub high_watermark: Option<Offset>,
    /// Produce requests decided now.
    pub acks: Vec<AckOutcome>,
    /// An AlterPartition to send.
    pub alter_partition: Option<AlterPartitionSend>,
}

impl LeaderEffects {
    /// Adds `other`'s effects (the later high watermark wins).
    pub fn merge(&mut self, other: LeaderEffects) {
        if other.high_watermark.is_some() {
            self.high_watermark = other.high_watermark;
        }
        self.acks.extend(other.acks);
        if other.alter_partition.is_some() {
            self.alter_partition = other.alter_partition;
        }
    }
}

/// One partition this replica leads, in one leader epoch.
#[derive(Debug, Clone)]
pub struct LeaderState {
    node_id: NodeId,
    broker_epoch: BrokerEpoch,
    leader_epoch: LeaderEpoch,
    partition_epoch: PartitionEpoch,
    epoch_start_offset: Offset,
    replicas: Vec<NodeId>,
    isr: IsrState,
    followers: BTreeMap<NodeId, FollowerProgress>,
    brokers: BTreeMap<NodeId, BrokerStatus>,
    acks: PendingAcks,
    attempt: u64,
    /// The controller refused the change in flight in a way only new
    /// metadata resolves: do not resend it.
    awaiting_metadata: bool,
    config: ReplicationConfig,
}

impl LeaderState {
    /// Starts leading `view`'s partition (whose leader must be `node_id`) in
    /// its leader epoch: records the epoch's start at the log end, and takes
    /// over the produce requests `previous` (this replica's state in an
    /// older epoch, if it led then) still waits for.
    pub fn start<L: ReplicaLog>(
        now_ms: u64,
        node_id: NodeId,
        broker_epoch: BrokerEpoch,
        view: &MetadataView,
        previous: Option<LeaderState>,
        config: ReplicationConfig,
        log: &mut L,
    ) -> Result<(LeaderState, LeaderEffects), LogError> {
        let partition = &view.partition;
        assert_eq!(partition.leader, node_id, "{node_id} cannot lead {partition:?}");
        let epoch_start_offset = log.log_end_offset();
        log.assign_epoch_start(partition.leader_epoch, epoch_start_offset)?;
        let isr = partition.isr_set();
        let followers = partition
            .replicas
            .iter()
            .filter(|&&r| r != node_id)
            .map(|&r| (r, FollowerProgress::new(now_ms, isr.contains(&r))))
            .collect();
        let mut leader = LeaderState {
            node_id,
            broker_epoch,
            leader_epoch: partition.leader_epoch,
            partition_epoch: partition.partition_epoch,
            epoch_start_offset,
            replicas: partition.replicas.clone(),
            isr: IsrState::committed(isr),
            followers,
            brokers: view.brokers.clone(),
            acks: previous.map(|p| p.acks).unwrap_or_default(),
            attempt: 0,
            awaiting_metadata: false,
            config,
        };
        let effects = leader.after_isr_change(now_ms, log);
        Ok((leader, effects))
    }

    /// The leader epoch this state leads in.
    pub fn leader_epoch(&self) -> LeaderEpoch {
        self.leader_epoch
    }

    /// The assigned replicas.
    pub fn replicas(&self) -> &[NodeId] {
        &self.replicas
    }

    /// The partition epoch last committed.
    pub fn partition_epoch(&self) -> PartitionEpoch {
        self.partition_epoch
    }

    /// Where this leader epoch starts.
    pub fn epoch_start_offset(&self) -> Offset {
        self.epoch_start_offset
    }

    /// The committed ISR.
    pub fn committed_isr(&self) -> &BTreeSet<NodeId> {
        self.isr.committed_set()
    }

    /// The ISR the high watermark and acks=all wait for.
    pub fn maximal_isr(&self) -> BTreeSet<NodeId> {
        self.isr.maximal()
    }

    /// The ISR change in flight.
    pub fn pending_isr_change(&self) -> Option<&PendingIsrChange> {
        self.isr.pending()
    }

    /// What the leader knows of `follower`.
    pub fn follower(&self, follower: NodeId) -> Option<&FollowerProgress> {
        self.followers.get(&follower)
    }

    /// How many produce requests wait.
    pub fn waiting_acks(&self) -> usize {
        self.acks.len()
    }

    /// The high watermark clients may see: the log's, once it has reached
    /// the start of this leader epoch. Before that a new leader's high
    /// watermark may still be below one an earlier leader showed, so the
    /// broker answers ListOffsets with OFFSET_NOT_AVAILABLE (as Kafka does)
    /// and holds consumer fetches until it is known.
    pub fn high_watermark_for_clients<L: ReplicaLog>(&self, log: &L) -> Option<Offset> {
        let hw = log.high_watermark();
        (hw >= self.epoch_start_offset).then_some(hw)
    }

    /// Whether a produce request may be appended: acks=all needs a committed
    /// ISR of at least `min.insync.replicas`.
    pub fn check_produce(&self, acks: Option<Acks>) -> Result<(), ProduceError> {
        if acks == Some(Acks::All) && self.isr.committed_set().len() < self.config.min_insync_replicas {
            return Err(ProduceError::NotEnoughReplicas);
        }
        Ok(())
    }

    /// A produce request was appended up to `last_offset` (inclusive) in
    /// this leader epoch; its answer comes in later effects.
    pub fn on_appended<L: ReplicaLog>(
        &mut self,
        now_ms: u64,
        id: AckId,
        acks: Acks,
        last_offset: Offset,
        timeout_ms: u64,
        log: &mut L,
    ) -> LeaderEffects {
        assert!(last_offset < log.log_end_offset(), "ack for {last_offset} past the log end {}", log.log_end_offset());
        self.acks.push(id, acks, last_offset, now_ms.saturating_add(timeout_ms));
        self.advance(now_ms, log)
    }

    /// The leader's own durable offset moved (a flush completed).
    pub fn on_flushed<L: ReplicaLog>(&mut self, now_ms: u64, log: &mut L) -> LeaderEffects {
        self.advance(now_ms, log)
    }

    /// Periodic work: ISR shrink, AlterPartition resends, produce timeouts.
    /// Call at least every `replica.lag.time.max.ms / 2`.
    pub fn tick<L: ReplicaLog>(&mut self, now_ms: u64, log: &mut L) -> LeaderEffects {
        let mut effects = LeaderEffects::default();
        self.acks.expire(now_ms, &mut effects.acks);
        if let Some(pending) = self.isr.pending_mut() {
            if !self.awaiting_metadata && now_ms.saturating_sub(pending.sent_ms) >= self.config.alter_partition_retry_ms
            {
                pending.sent_ms = now_ms;
                self.attempt += 1;
                effects.alter_partition =
                    Some(AlterPartitionSend { attempt: self.attempt, request: pending.request.clone() });
            }
        } else {
            effects.alter_partition = self.maybe_shrink(now_ms, log);
        }
        effects.merge(self.advance(now_ms, log));
        effects
    }

    /// A follower's fetch: checks it, records the follower's position, and
    /// perhaps expands the ISR or moves the high watermark. The broker then
    /// reads the records a `Read` decision asks for.
    pub fn handle_fetch<L: ReplicaLog>(
        &mut self,
        now_ms: u64,
        request: &FetchRequest,
        log: &mut L,
    ) -> (Result<FetchDecision, ReplicaRequestError>, LeaderEffects) {
        let decision = self.check_fetch(request, log);
        let mut effects = LeaderEffects::default();
        if let Ok(FetchDecision::Read { log_end_offset, .. }) = decision {
            let progress = self.followers.get_mut(&request.replica_id).expect("checked by check_fetch");
            progress.record_fetch(request.fetch_offset, now_ms, log_end_offset, request.replica_epoch);
            effects.alter_partition = self.maybe_expand(now_ms, request.replica_id, log);
            effects.merge(self.advance(now_ms, log));
        }
        (decision, effects)
    }

    /// A follower's OffsetForLeaderEpoch.
    pub fn handle_offset_for_leader_epoch<L: ReplicaLog>(
        &self,
        request: &OffsetForLeaderEpochRequest,
        log: &L,
    ) -> OffsetForLeaderEpochResponse {
        let result = self
            .check_epoch(request.current_leader_epoch, request.replica_id)
            .map(|()| log.end_offset_for_epoch(request.leader_epoch));
        OffsetForLeaderEpochResponse { request_id: request.request_id, result }
    }

    /// The controller's answer to `sent`.
    pub fn handle_alter_partition_response<L: ReplicaLog>(
        &mut self,
        now_ms: u64,
        sent: &AlterPartitionSend,
        response: &AlterPartitionResponse,
        log: &mut L,
    ) -> LeaderEffects {
        if sent.attempt != self.attempt || self.isr.pending().is_none_or(|p| p.request != sent.request) {
            return LeaderEffects::default();
        }
        match &response.result {
            Ok(accepted) => {
                if accepted.leader_epoch != self.leader_epoch || accepted.partition_epoch < self.partition_epoch {
                    // Out of date; the metadata will tell.
                    self.awaiting_metadata = true;
                    return LeaderEffects::default();
                }
                self.partition_epoch = accepted.partition_epoch;
                self.isr.commit(accepted.isr.iter().copied());
                self.awaiting_metadata = false;
                self.after_isr_change(now_ms, log)
            }
            Err(AlterPartitionError::IneligibleReplica) => {
                // Not applied, and the partition epoch is current: back to
                // the committed ISR; a later fetch may propose again. Safe
                // because attempts reach the controller in order, so no
                // earlier one can still be applied (the design note's
                // ordering requirement on the AlterPartition manager).
                self.isr.abandon();
                self.advance(now_ms, log)
            }
            Err(AlterPartitionError::Transport | AlterPartitionError::NotController) => {
                let pending = self.isr.pending_mut().expect("checked above");
                pending.sent_ms = now_ms;
                self.attempt += 1;
                LeaderEffects {
                    alter_partition: Some(AlterPartitionSend {
                        attempt: self.attempt,
                        request: pending.request.clone(),
                    }),
                    ..LeaderEffects::default()
                }
            }
            Err(_) => {
                // FENCED_LEADER_EPOCH, INVALID_UPDATE_VERSION, ...: this
                // leader's view is old; it keeps the change pending (the
                // maximal ISR stays the stricter one) until metadata comes.
                self.awaiting_metadata = true;
                LeaderEffects::default()
            }
        }
    }

    /// Newer metadata in the same leader epoch: broker states, and the ISR
    /// when the partition epoch is newer than the one this leader knows.
    pub fn apply_metadata<L: ReplicaLog>(&mut self, now_ms: u64, view: &MetadataView, log: &mut L) -> LeaderEffects {
        let partition = &view.partition;
        assert_eq!(partition.leader_epoch, self.leader_epoch, "a new leader epoch needs a new LeaderState");
        self.brokers = view.brokers.clone();
        if partition.partition_epoch > self.partition_epoch {
            self.partition_epoch = partition.partition_epoch;
            self.replicas = partition.replicas.clone();
            let isr = partition.isr_set();
            self.followers.retain(|r, _| partition.replicas.contains(r));
            for &r in partition.replicas.iter().filter(|&&r| r != self.node_id) {
                self.followers.entry(r).or_insert_with(|| FollowerProgress::new(now_ms, isr.contains(&r)));
            }
            self.isr.commit(isr);
            self.awaiting_metadata = false;
            return self.after_isr_change(now_ms, log);
        }
        self.advance(now_ms, log)
    }

    /// Stops leading: every waiting produce request fails with
    /// NOT_LEADER_OR_FOLLOWER.
    pub fn resign(mut self) -> Vec<AckOutcome> {
        let mut out = Vec::new();
        self.acks.fail_all(ProduceError::NotLeaderOrFollower, &mut out);
        out
    }

    fn check_epoch(&self, current_leader_epoch: LeaderEpoch, replica: NodeId) -> Result<(), ReplicaRequestError> {
        if current_leader_epoch < self.leader_epoch {
            return Err(ReplicaRequestError::FencedLeaderEpoch);
        }
        if current_leader_epoch > self.leader_epoch || !self.followers.contains_key(&replica) {
            return Err(ReplicaRequestError::UnknownLeaderEpoch);
        }
        Ok(())
    }

    fn check_fetch<L: ReplicaLog>(
        &self,
        request: &FetchRequest,
        log: &L,
    ) -> Result<FetchDecision, ReplicaRequestError> {
        self.check_epoch(request.current_leader_epoch, request.replica_id)?;
        if let Some(broker) = self.brokers.get(&request.replica_id)
            && request.replica_epoch != UNKNOWN_BROKER_EPOCH
            && request.replica_epoch < broker.epoch
        {
            // A fetch of an earlier incarnation of the follower.
            return Err(ReplicaRequestError::NotLeaderOrFollower);
        }
        let log_end_offset = log.log_end_offset();
        if let Some(last_fetched_epoch) = request.last_fetched_epoch {
            let end = log.end_offset_for_epoch(last_fetched_epoch).ok_or(ReplicaRequestError::OffsetOutOfRange)?;
            if end.epoch < last_fetched_epoch || end.end_offset < request.fetch_offset {
                return Ok(FetchDecision::Diverging(end));
            }
        }
        if request.fetch_offset < 0 || request.fetch_offset > log_end_offset {
            return Err(ReplicaRequestError::OffsetOutOfRange);
        }
        Ok(FetchDecision::Read { high_watermark: log.high_watermark(), log_end_offset })
    }

    fn eligible(&self, replica: NodeId) -> bool {
        let fetched_with = self.followers.get(&replica).and_then(|p| p.broker_epoch);
        self.brokers.get(&replica).is_some_and(|b| b.isr_eligible(fetched_with))
    }

    fn isr_request(&self, isr: &BTreeSet<NodeId>) -> AlterPartitionRequest {
        let new_isr = isr
            .iter()
            .map(|&broker_id| IsrMember {
                broker_id,
                broker_epoch: if broker_id == self.node_id {
                    self.broker_epoch
                } else {
                    self.followers.get(&broker_id).and_then(|p| p.broker_epoch).unwrap_or(UNKNOWN_BROKER_EPOCH)
                },
            })
            .collect();
        AlterPartitionRequest {
            broker_id: self.node_id,
            broker_epoch: self.broker_epoch,
            leader_epoch: self.leader_epoch,
            partition_epoch: self.partition_epoch,
            new_isr,
        }
    }

    fn propose(&mut self, now_ms: u64, isr: &BTreeSet<NodeId>, joining: Option<NodeId>) -> AlterPartitionSend {
        let request = self.isr_request(isr);
        self.isr.start(PendingIsrChange { request: request.clone(), sent_ms: now_ms, joining });
        self.awaiting_metadata = false;
        self.attempt += 1;
        AlterPartitionSend { attempt: self.attempt, request }
    }

    fn maybe_expand<L: ReplicaLog>(&mut self, now_ms: u64, replica: NodeId, log: &L) -> Option<AlterPartitionSend> {
        if self.isr.pending().is_some() || self.isr.committed_set().contains(&replica) || !self.eligible(replica) {
            return None;
        }
        let position = self.followers.get(&replica)?.position;
        if position < log.high_watermark() || position < self.epoch_start_offset {
            return None;
        }
        let mut isr = self.isr.committed_set().clone();
        isr.insert(replica);
        Some(self.propose(now_ms, &isr, Some(replica)))
    }

    fn maybe_shrink<L: ReplicaLog>(&mut self, now_ms: u64, log: &L) -> Option<AlterPartitionSend> {
        let log_end = log.log_end_offset();
        let lag_max = self.config.replica_lag_time_max_ms;
        let out_of_sync: Vec<NodeId> = self
            .isr
            .committed_set()
            .iter()
            .filter(|&&r| r != self.node_id)
            .filter(|r| self.followers.get(r).is_none_or(|p| !p.is_caught_up(log_end, now_ms, lag_max)))
            .copied()
            .collect();
        if out_of_sync.is_empty() {
            return None;
        }
        let mut isr = self.isr.committed_set().clone();
        isr.retain(|r| !out_of_sync.contains(r));
        Some(self.propose(now_ms, &isr, None))
    }

    /// The committed ISR changed: waiting acks=all fail if it is now too
    /// small; then the high watermark may move.
    fn after_isr_change<L: ReplicaLog>(&mut self, now_ms: u64, log: &mut L) -> LeaderEffects {
        let mut effects = LeaderEffects::default();
        if self.isr.committed_set().len() < self.config.min_insync_replicas {
            self.acks.fail_acks_all(ProduceError::NotEnoughReplicasAfterAppend, &mut effects.acks);
        }
        effects.merge(self.advance(now_ms, log));
        effects
    }

    /// Moves the high watermark as far as the ISR allows and answers what
    /// that decides.
    fn advance<L: ReplicaLog>(&mut self, now_ms: u64, log: &mut L) -> LeaderEffects {
        let mut effects = LeaderEffects::default();
        if let Some(hw) = self.next_high_watermark(now_ms, log)
            && hw > log.high_watermark()
        {
            log.set_high_watermark(hw);
            effects.high_watermark = Some(hw);
        }
        let enough_isr = self.isr.maximal().len() >= self.config.min_insync_replicas;
        self.acks.complete(log.high_watermark(), log.durable_offset(), enough_isr, &mut effects.acks);
        effects
    }

    /// The high watermark the positions allow, `None` while the committed
    /// ISR is below `min.insync.replicas`.
    fn next_high_watermark<L: ReplicaLog>(&self, now_ms: u64, log: &L) -> Option<Offset> {
        if self.isr.committed_set().len() < self.config.min_insync_replicas {
            return None;
        }
        let log_end = log.log_end_offset();
        let lag_max = self.config.replica_lag_time_max_ms;
        let maximal = self.isr.maximal();
        let mut hw = log.durable_offset();
        for &member in maximal.iter().filter(|&&r| r != self.node_id) {
            hw = hw.min(self.followers.get(&member).map_or(-1, |p| p.position));
        }
        for (&replica, progress) in &self.followers {
            if !maximal.contains(&replica) && progress.is_caught_up(log_end, now_ms, lag_max) && self.eligible(replica)
            {
                hw = hw.min(progress.position);
            }
        }
        Some(hw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acks::ProduceError;
    use crate::messages::AlterPartitionAccepted;
    use crate::sim::log::SimLog;
    use crate::types::PartitionRegistration;

    const LAG_MS: u64 = 100;

    fn view(isr: &[NodeId]) -> MetadataView {
        let mut partition = PartitionRegistration::new(vec![1, 2, 3]);
        partition.isr = isr.to_vec();
        let brokers =
            (1..=3).map(|id| (id, BrokerStatus { epoch: 10 + i64::from(id), fenced: false, shutting_down: false }));
        MetadataView { version: 1, partition, brokers: brokers.collect() }
    }

    fn fetch(replica: NodeId, fetch_offset: Offset) -> FetchRequest {
        FetchRequest {
            request_id: 1,
            replica_id: replica,
            replica_epoch: 10 + i64::from(replica),
            current_leader_epoch: 0,
            fetch_offset,
            last_fetched_epoch: None,
        }
    }

    /// A fetch that must be read; its effects.
    fn fetched(leader: &mut LeaderState, now_ms: u64, request: &FetchRequest, log: &mut SimLog) -> LeaderEffects {
        let (decision, effects) = leader.handle_fetch(now_ms, request, log);
        assert!(matches!(decision, Ok(FetchDecision::Read { .. })), "{decision:?}");
        effects
    }

    /// Replica 1 leads `isr` with `min.insync.replicas = min`; four records
    /// appended (not flushed), an acks=all and an acks=1 produce waiting.
    fn leading(isr: &[NodeId], min: usize) -> (LeaderState, SimLog) {
        let config =
            ReplicationConfig { min_insync_replicas: min, replica_lag_time_max_ms: LAG_MS, ..Default::default() };
        let mut log = SimLog::default();
        let (mut leader, effects) = LeaderState::start(0, 1, 11, &view(isr), None, config, &mut log).expect("start");
        assert_eq!(effects, LeaderEffects::default());
        let last = log.append_as_leader(0, &[1, 2, 3, 4]);
        assert!(leader.on_appended(0, AckId(1), Acks::All, last, 10_000, &mut log).acks.is_empty());
        assert!(leader.on_appended(0, AckId(2), Acks::Leader, 1, 10_000, &mut log).acks.is_empty());
        (leader, log)
    }

    fn accept(leader: &LeaderState, isr: &[NodeId], partition_epoch: i32) -> AlterPartitionResponse {
        AlterPartitionResponse {
            result: Ok(AlterPartitionAccepted {
                leader: 1,
                leader_epoch: leader.leader_epoch(),
                isr: isr.to_vec(),
                partition_epoch,
            }),
        }
    }

    #[test]
    fn the_high_watermark_is_the_lowest_durable_offset_in_the_isr_the_leaders_included() {
        let (mut leader, mut log) = leading(&[1, 2, 3], 2);
        fetched(&mut leader, 1, &fetch(2, 4), &mut log);
        let effects = fetched(&mut leader, 1, &fetch(3, 3), &mut log);
        assert_eq!((log.high_watermark(), effects.high_watermark), (0, None), "the leader has fsynced nothing");
        log.flush();
        let effects = leader.on_flushed(2, &mut log);
        assert_eq!(effects.high_watermark, Some(3));
        assert_eq!(effects.acks, vec![AckOutcome { id: AckId(2), result: Ok(()) }], "acks=1: on the leader's disk");
        let effects = fetched(&mut leader, 3, &fetch(3, 4), &mut log);
        assert_eq!(effects.high_watermark, Some(4));
        assert_eq!(effects.acks, vec![AckOutcome { id: AckId(1), result: Ok(()) }]);
        assert_eq!(leader.high_watermark_for_clients(&log), Some(4));
    }

    #[test]
    fn a_lagging_member_holds_the_high_watermark_until_its_removal_is_committed() {
        let (mut leader, mut log) = leading(&[1, 2, 3], 2);
        log.flush();
        fetched(&mut leader, 10, &fetch(2, 4), &mut log);
        fetched(&mut leader, 10, &fetch(3, 1), &mut log);
        assert_eq!(log.high_watermark(), 1);
        let effects = leader.tick(10 + LAG_MS + 1, &mut log);
        let sent = effects.alter_partition.expect("a shrink");
        assert_eq!(sent.request.isr_ids(), vec![1, 2]);
        assert_eq!(leader.maximal_isr(), BTreeSet::from([1, 2, 3]), "not counted out before the controller agrees");
        assert_eq!(log.high_watermark(), 1);
        let effects = leader.handle_alter_partition_response(200, &sent, &accept(&leader, &[1, 2], 1), &mut log);
        assert_eq!(effects.high_watermark, Some(4));
        assert_eq!(leader.partition_epoch(), 1);
    }

    #[test]
    fn below_min_insync_the_high_watermark_freezes_and_acks_all_fail() {
        let (mut leader, mut log) = leading(&[1, 2], 2);
        let effects = leader.tick(LAG_MS + 1, &mut log);
        let sent = effects.alter_partition.expect("2 never fetched: shrink");
        let effects = leader.handle_alter_partition_response(200, &sent, &accept(&leader, &[1], 1), &mut log);
        assert_eq!(
            effects.acks,
            vec![AckOutcome { id: AckId(1), result: Err(ProduceError::NotEnoughReplicasAfterAppend) }]
        );
        assert_eq!(log.high_watermark(), 0, "frozen though the leader alone has everything");
        assert_eq!(leader.check_produce(Some(Acks::All)), Err(ProduceError::NotEnoughReplicas));
        assert_eq!(leader.check_produce(Some(Acks::Leader)), Ok(()));
        log.flush();
        let effects = leader.on_flushed(201, &mut log);
        assert_eq!(effects.acks, vec![AckOutcome { id: AckId(2), result: Ok(()) }], "acks=1 is still answered");
        assert_eq!(log.high_watermark(), 0);
    }

    #[test]
    fn a_joining_replica_counts_for_the_high_watermark_before_the_controller_answers() {
        let (mut leader, mut log) = leading(&[1, 2], 2);
        log.flush();
        fetched(&mut leader, 1, &fetch(2, 2), &mut log);
        assert_eq!(log.high_watermark(), 2);
        // 3 reaches the high watermark and the epoch start: proposed in.
        let effects = fetched(&mut leader, 2, &fetch(3, 2), &mut log);
        let sent = effects.alter_partition.expect("an expansion");
        assert_eq!(sent.request.isr_ids(), vec![1, 2, 3]);
        assert_eq!(sent.request.new_isr[2].broker_epoch, 13, "the epoch 3 fetched with");
        // 2 catches up; the high watermark still waits for 3.
        fetched(&mut leader, 3, &fetch(2, 4), &mut log);
        assert_eq!(log.high_watermark(), 2);
        fetched(&mut leader, 4, &fetch(3, 4), &mut log);
        assert_eq!(log.high_watermark(), 4);
    }

    #[test]
    fn only_the_latest_attempt_of_a_change_counts() {
        let (mut leader, mut log) = leading(&[1, 2, 3], 2);
        let first = leader.tick(LAG_MS + 1, &mut log).alter_partition.expect("shrink");
        let second = leader.tick(LAG_MS + 1 + 500, &mut log).alter_partition.expect("resent");
        assert_eq!((first.request.clone(), first.attempt + 1), (second.request.clone(), second.attempt));
        let refused = AlterPartitionResponse { result: Err(AlterPartitionError::IneligibleReplica) };
        leader.handle_alter_partition_response(700, &first, &refused, &mut log);
        assert!(leader.pending_isr_change().is_some(), "an answer to an old attempt changes nothing");
        leader.handle_alter_partition_response(700, &second, &refused, &mut log);
        assert!(leader.pending_isr_change().is_none(), "INELIGIBLE_REPLICA: back to the committed ISR");
    }

    #[test]
    fn a_stale_answer_keeps_the_change_pending_until_metadata_says_more() {
        let (mut leader, mut log) = leading(&[1, 2, 3], 2);
        let sent = leader.tick(LAG_MS + 1, &mut log).alter_partition.expect("shrink");
        let stale = AlterPartitionResponse { result: Err(AlterPartitionError::InvalidUpdateVersion) };
        leader.handle_alter_partition_response(200, &sent, &stale, &mut log);
        assert!(leader.tick(10_000, &mut log).alter_partition.is_none(), "not resent");
        let mut newer = view(&[1, 2]);
        newer.partition.partition_epoch = 3;
        leader.apply_metadata(10_001, &newer, &mut log);
        assert!(leader.pending_isr_change().is_none());
        assert_eq!(leader.committed_isr(), &BTreeSet::from([1, 2]));
    }

    #[test]
    fn fetches_are_checked_before_they_count() {
        let (mut leader, mut log) = leading(&[1, 2, 3], 2);
        let old_incarnation = FetchRequest { replica_epoch: 5, ..fetch(2, 4) };
        assert_eq!(leader.handle_fetch(1, &old_incarnation, &mut log).0, Err(ReplicaRequestError::NotLeaderOrFollower));
        let old_epoch = FetchRequest { current_leader_epoch: -1, ..fetch(2, 4) };
        assert_eq!(leader.handle_fetch(1, &old_epoch, &mut log).0, Err(ReplicaRequestError::FencedLeaderEpoch));
        let newer_epoch = FetchRequest { current_leader_epoch: 1, ..fetch(2, 4) };
        assert_eq!(leader.handle_fetch(1, &newer_epoch, &mut log).0, Err(ReplicaRequestError::UnknownLeaderEpoch));
        assert_eq!(leader.handle_fetch(1, &fetch(4, 0), &mut log).0, Err(ReplicaRequestError::UnknownLeaderEpoch));
        assert_eq!(leader.handle_fetch(1, &fetch(2, 9), &mut log).0, Err(ReplicaRequestError::OffsetOutOfRange));
        // A follower with more of epoch 0 than this log has.
        let diverging = FetchRequest { last_fetched_epoch: Some(0), fetch_offset: 6, ..fetch(2, 0) };
        let (decision, _) = leader.handle_fetch(1, &diverging, &mut log);
        assert_eq!(decision, Ok(FetchDecision::Diverging(crate::log::EpochEndOffset { epoch: 0, end_offset: 4 })));
        assert_eq!(leader.follower(2).map(|p| p.position), Some(crate::progress::UNKNOWN_OFFSET), "not counted");
    }
}
