//! One replica of one partition on one broker: which role the metadata
//! gives it (leader, follower, none), and the answers a replica gives
//! whatever its role. The broker's reconciler calls
//! [`PartitionReplica::apply_metadata`] with every new metadata image; the
//! request handlers and the fetcher reach the role's state through
//! [`PartitionReplica::leader_mut`] and [`PartitionReplica::follower_mut`].
//!
//! Metadata is applied as Kafka's `makeLeader`/`makeFollower` do: an image
//! older than the last one applied is ignored; a partition epoch older than
//! the one this replica knows (it may have learned a newer one from an
//! AlterPartition answer) changes nothing but broker states; a new leader
//! epoch restarts the role (a leader starts a new epoch at its log end; a
//! follower starts fetching, and truncating, from the new leader).

use crate::follower::FollowerState;
use crate::leader::{LeaderEffects, LeaderState};
use crate::log::{LogError, ReplicaLog};
use crate::messages::{
    FetchDecision, FetchRequest, OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse, ReplicaRequestError,
};
use crate::types::{BrokerEpoch, LeaderEpoch, MetadataView, NodeId, PartitionEpoch, ReplicationConfig};

/// The replica's role.
#[derive(Debug, Clone)]
pub enum Role {
    /// Not a replica (or no metadata yet).
    None,
    /// Leads.
    Leader(LeaderState),
    /// Follows.
    Follower(FollowerState),
}

/// What applying metadata changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// Nothing (an old image, or nothing for this replica).
    Unchanged,
    /// Leads now, in a new leader epoch.
    BecameLeader,
    /// Follows now, in a new leader epoch: start its fetcher.
    BecameFollower,
    /// Same role and epoch; ISR or broker states changed.
    Updated,
    /// No longer a replica: stop fetching, answer nothing.
    Stopped,
}

/// The outcome of [`PartitionReplica::apply_metadata`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataOutcome {
    /// The role change.
    pub transition: Transition,
    /// Produce answers and leader work it caused (stepping down fails every
    /// waiting produce request with NOT_LEADER_OR_FOLLOWER).
    pub effects: LeaderEffects,
}

/// One partition's replica on this broker.
#[derive(Debug, Clone)]
pub struct PartitionReplica {
    node_id: NodeId,
    broker_epoch: BrokerEpoch,
    config: ReplicationConfig,
    metadata_version: Option<u64>,
    leader_epoch: LeaderEpoch,
    partition_epoch: PartitionEpoch,
    next_request_id: u64,
    role: Role,
}

impl PartitionReplica {
    /// A replica on broker `node_id` in its registration `broker_epoch`,
    /// without a role until metadata arrives.
    pub fn new(node_id: NodeId, broker_epoch: BrokerEpoch, config: ReplicationConfig) -> PartitionReplica {
        PartitionReplica {
            node_id,
            broker_epoch,
            config,
            metadata_version: None,
            leader_epoch: -1,
            partition_epoch: -1,
            next_request_id: 1,
            role: Role::None,
        }
    }

    /// The broker.
    pub fn node_id(&self) -> NodeId {
        self.node_id
    }

    /// The role.
    pub fn role(&self) -> &Role {
        &self.role
    }

    /// The leader epoch this replica knows.
    pub fn leader_epoch(&self) -> LeaderEpoch {
        self.leader_epoch
    }

    /// The leader state, when leading.
    pub fn leader(&self) -> Option<&LeaderState> {
        match &self.role {
            Role::Leader(l) => Some(l),
            _ => None,
        }
    }

    /// The leader state, when leading.
    pub fn leader_mut(&mut self) -> Option<&mut LeaderState> {
        match &mut self.role {
            Role::Leader(l) => Some(l),
            _ => None,
        }
    }

    /// The follower state, when following.
    pub fn follower_mut(&mut self) -> Option<&mut FollowerState> {
        match &mut self.role {
            Role::Follower(f) => Some(f),
            _ => None,
        }
    }

    /// Applies a metadata image.
    pub fn apply_metadata<L: ReplicaLog>(
        &mut self,
        now_ms: u64,
        view: &MetadataView,
        log: &mut L,
    ) -> Result<MetadataOutcome, LogError> {
        let unchanged = MetadataOutcome { transition: Transition::Unchanged, effects: LeaderEffects::default() };
        if self.metadata_version.is_some_and(|v| view.version <= v) {
            return Ok(unchanged);
        }
        self.metadata_version = Some(view.version);
        let partition = &view.partition;
        if partition.partition_epoch < self.partition_epoch || partition.leader_epoch < self.leader_epoch {
            if let Role::Leader(leader) = &mut self.role
                && leader.leader_epoch() == partition.leader_epoch
            {
                let effects = leader.apply_metadata(now_ms, view, log);
                return Ok(MetadataOutcome { transition: Transition::Updated, effects });
            }
            return Ok(unchanged);
        }
        self.partition_epoch = partition.partition_epoch;
        let new_epoch = partition.leader_epoch != self.leader_epoch;
        self.leader_epoch = partition.leader_epoch;
        let previous = std::mem::replace(&mut self.role, Role::None);
        if let Role::Follower(f) = &previous {
            // Ids stay unique across follower states, so a late answer to an
            // old state's request never matches a new one's.
            self.next_request_id = self.next_request_id.max(f.next_request_id());
        }
        if !partition.replicas.contains(&self.node_id) {
            return Ok(MetadataOutcome { transition: Transition::Stopped, effects: resign(previous) });
        }
        if partition.leader == self.node_id {
            match previous {
                Role::Leader(mut leader) if !new_epoch => {
                    let effects = leader.apply_metadata(now_ms, view, log);
                    self.role = Role::Leader(leader);
                    Ok(MetadataOutcome { transition: Transition::Updated, effects })
                }
                previous => {
                    let previous = match previous {
                        Role::Leader(l) => Some(l),
                        _ => None,
                    };
                    let (leader, effects) =
                        LeaderState::start(now_ms, self.node_id, self.broker_epoch, view, previous, self.config, log)?;
                    self.role = Role::Leader(leader);
                    Ok(MetadataOutcome { transition: Transition::BecameLeader, effects })
                }
            }
        } else {
            match previous {
                Role::Follower(follower) if !new_epoch => {
                    self.role = Role::Follower(follower);
                    Ok(MetadataOutcome { transition: Transition::Updated, effects: LeaderEffects::default() })
                }
                previous => {
                    let effects = resign(previous);
                    let follower = FollowerState::new(
                        self.node_id,
                        self.broker_epoch,
                        partition.leader,
                        partition.leader_epoch,
                        self.next_request_id,
                        self.config,
                    );
                    self.role = Role::Follower(follower);
                    Ok(MetadataOutcome { transition: Transition::BecameFollower, effects })
                }
            }
        }
    }

    /// A replica fetch, whatever this replica's role: the leader decides;
    /// anyone else answers with the error Kafka gives for the request's
    /// leader epoch.
    pub fn handle_fetch<L: ReplicaLog>(
        &mut self,
        now_ms: u64,
        request: &FetchRequest,
        log: &mut L,
    ) -> (Result<FetchDecision, ReplicaRequestError>, LeaderEffects) {
        let not_leading = self.epoch_error(request.current_leader_epoch);
        match &mut self.role {
            Role::Leader(leader) => leader.handle_fetch(now_ms, request, log),
            _ => (Err(not_leading), LeaderEffects::default()),
        }
    }

    /// An OffsetForLeaderEpoch, whatever this replica's role.
    pub fn handle_offset_for_leader_epoch<L: ReplicaLog>(
        &self,
        request: &OffsetForLeaderEpochRequest,
        log: &L,
    ) -> OffsetForLeaderEpochResponse {
        match &self.role {
            Role::Leader(leader) => leader.handle_offset_for_leader_epoch(request, log),
            _ => OffsetForLeaderEpochResponse {
                request_id: request.request_id,
                result: Err(self.epoch_error(request.current_leader_epoch)),
            },
        }
    }

    fn epoch_error(&self, requested: LeaderEpoch) -> ReplicaRequestError {
        if requested > self.leader_epoch {
            ReplicaRequestError::UnknownLeaderEpoch
        } else if requested < self.leader_epoch {
            ReplicaRequestError::FencedLeaderEpoch
        } else {
            ReplicaRequestError::NotLeaderOrFollower
        }
    }
}

/// Stepping down from `role`: a leader's waiting produce requests fail.
fn resign(role: Role) -> LeaderEffects {
    match role {
        Role::Leader(leader) => LeaderEffects { acks: leader.resign(), ..LeaderEffects::default() },
        _ => LeaderEffects::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acks::{AckId, AckOutcome, Acks, ProduceError};
    use crate::log::ReplicaLog;
    use crate::sim::log::SimLog;
    use crate::types::{BrokerStatus, PartitionRegistration};

    fn view(version: u64, leader: NodeId, leader_epoch: LeaderEpoch, partition_epoch: PartitionEpoch) -> MetadataView {
        let partition = PartitionRegistration {
            replicas: vec![1, 2, 3],
            isr: vec![1, 2, 3],
            leader,
            leader_epoch,
            partition_epoch,
        };
        let brokers = (1..=3).map(|id| (id, BrokerStatus { epoch: 1, fenced: false, shutting_down: false }));
        MetadataView { version, partition, brokers: brokers.collect() }
    }

    #[test]
    fn roles_follow_the_metadata() {
        let mut replica = PartitionReplica::new(2, 1, ReplicationConfig::default());
        let mut log = SimLog::default();
        let apply = |replica: &mut PartitionReplica, v: &MetadataView, log: &mut SimLog| {
            replica.apply_metadata(0, v, log).expect("apply")
        };
        assert_eq!(apply(&mut replica, &view(5, 1, 0, 0), &mut log).transition, Transition::BecameFollower);
        assert_eq!(apply(&mut replica, &view(5, 1, 0, 0), &mut log).transition, Transition::Unchanged, "same image");
        assert_eq!(apply(&mut replica, &view(4, 2, 9, 9), &mut log).transition, Transition::Unchanged, "older image");
        assert_eq!(apply(&mut replica, &view(6, 1, 0, 1), &mut log).transition, Transition::Updated);
        assert_eq!(apply(&mut replica, &view(7, 2, 1, 2), &mut log).transition, Transition::BecameLeader);
        assert_eq!(log.latest_epoch(), Some(1), "the new epoch starts at the log end");

        let leader = replica.leader_mut().expect("leads");
        assert_eq!(leader.check_produce(Some(Acks::All)), Ok(()));
        log.append_as_leader(1, &[7]);
        let leader = replica.leader_mut().expect("leads");
        leader.on_appended(0, AckId(9), Acks::All, 0, 1_000, &mut log);
        let outcome = apply(&mut replica, &view(8, 3, 2, 3), &mut log);
        assert_eq!(outcome.transition, Transition::BecameFollower);
        assert_eq!(
            outcome.effects.acks,
            vec![AckOutcome { id: AckId(9), result: Err(ProduceError::NotLeaderOrFollower) }]
        );

        let mut gone = view(9, 3, 3, 4);
        gone.partition.replicas = vec![1, 3];
        gone.partition.isr = vec![1, 3];
        assert_eq!(apply(&mut replica, &gone, &mut log).transition, Transition::Stopped);
        assert!(matches!(replica.role(), Role::None));
    }

    #[test]
    fn a_replica_that_does_not_lead_answers_by_the_requests_epoch() {
        let mut replica = PartitionReplica::new(2, 1, ReplicationConfig::default());
        let mut log = SimLog::default();
        replica.apply_metadata(0, &view(1, 1, 4, 4), &mut log).expect("apply");
        let fetch = |epoch| FetchRequest {
            request_id: 1,
            replica_id: 3,
            replica_epoch: 1,
            current_leader_epoch: epoch,
            fetch_offset: 0,
            last_fetched_epoch: None,
        };
        let mut answer = |epoch| replica.handle_fetch(0, &fetch(epoch), &mut log).0;
        assert_eq!(answer(3), Err(ReplicaRequestError::FencedLeaderEpoch));
        assert_eq!(answer(4), Err(ReplicaRequestError::NotLeaderOrFollower));
        assert_eq!(answer(5), Err(ReplicaRequestError::UnknownLeaderEpoch));
    }
}
