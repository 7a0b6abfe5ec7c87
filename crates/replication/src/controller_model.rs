//! A model of the controller, as far as one partition's replication needs
//! it: broker registrations (epoch, fenced, shutting down), elections from
//! the ISR, and AlterPartition with Kafka's checks
//! (`ReplicationControlManager.alterPartition`). The real controller is the
//! metadata quorum (`tributary_metadata`); there, every change below is a
//! `ChangePartition` built by its `PartitionChangeBuilder` with the same
//! rules, and this model is what the simulator runs against.
//!
//! Rules kept:
//! - every change of the partition bumps the partition epoch; a change of
//!   leader (including to or from no leader) bumps the leader epoch; an ISR
//!   change alone does not;
//! - a leader comes from the ISR: the current one while it is in the ISR
//!   and acceptable (registered, unfenced, not shutting down), else the
//!   first acceptable ISR member in replica order, else nobody; only with
//!   `unclean.leader.election.enable` any acceptable replica, with the ISR
//!   reset to it;
//! - an ISR is never emptied: when its last member is fenced it stays (and
//!   the partition has no leader until that member returns);
//! - a broker that registers again (a restart) gets a new epoch and starts
//!   fenced: it leaves every ISR it can and loses its leaderships, as
//!   Kafka's unclean-shutdown handling does. Any later election bumps the
//!   leader epoch, so a restarted replica never leads again in an epoch it
//!   led before (its unflushed tail of that epoch may live on in followers'
//!   logs, and epochs must name one history).

use std::collections::{BTreeMap, BTreeSet};

use crate::messages::{AlterPartitionAccepted, AlterPartitionError, AlterPartitionRequest, AlterPartitionResponse};
use crate::types::{
    BrokerEpoch, BrokerStatus, MetadataView, NO_LEADER, NodeId, PartitionRegistration, UNKNOWN_BROKER_EPOCH,
};

/// The controller's state for one partition and the brokers.
#[derive(Debug, Clone)]
pub struct ControllerModel {
    partition: PartitionRegistration,
    brokers: BTreeMap<NodeId, BrokerStatus>,
    unclean_leader_election: bool,
    next_broker_epoch: BrokerEpoch,
    version: u64,
}

impl ControllerModel {
    /// A partition on `replicas`, led by the first, all in sync, every
    /// replica's broker registered and unfenced.
    pub fn new(replicas: Vec<NodeId>, unclean_leader_election: bool) -> ControllerModel {
        let mut next_broker_epoch = 1;
        let mut brokers = BTreeMap::new();
        for &r in &replicas {
            brokers.insert(r, BrokerStatus { epoch: next_broker_epoch, fenced: false, shutting_down: false });
            next_broker_epoch += 1;
        }
        ControllerModel {
            partition: PartitionRegistration::new(replicas),
            brokers,
            unclean_leader_election,
            next_broker_epoch,
            version: 1,
        }
    }

    /// The partition.
    pub fn partition(&self) -> &PartitionRegistration {
        &self.partition
    }

    /// A broker's registration.
    pub fn broker(&self, id: NodeId) -> Option<&BrokerStatus> {
        self.brokers.get(&id)
    }

    /// The metadata image a broker would load now.
    pub fn view(&self) -> MetadataView {
        MetadataView { version: self.version, partition: self.partition.clone(), brokers: self.brokers.clone() }
    }

    /// A broker (re)registers: a new epoch, fenced until it catches up. Its
    /// previous incarnation's leaderships and ISR places are taken away.
    pub fn register_broker(&mut self, id: NodeId) -> BrokerEpoch {
        let epoch = self.next_broker_epoch;
        self.next_broker_epoch += 1;
        self.brokers.insert(id, BrokerStatus { epoch, fenced: true, shutting_down: false });
        #[cfg(test)]
        if crate::bugs::active(crate::bugs::Bug::LeaderKeepsEpochAcrossRestart) {
            // The bug: the broker's leaderships and ISR places stay.
            self.version += 1;
            return epoch;
        }
        self.remove_from_partition(id);
        self.version += 1;
        epoch
    }

    /// The broker's session expired (or it asked to be fenced): it leaves
    /// the ISR and its leadership. Returns whether anything changed.
    pub fn fence_broker(&mut self, id: NodeId) -> bool {
        let Some(broker) = self.brokers.get_mut(&id) else {
            return false;
        };
        if broker.fenced {
            return false;
        }
        broker.fenced = true;
        self.remove_from_partition(id);
        self.version += 1;
        true
    }

    /// The broker heartbeats with its current epoch and has caught up: it
    /// is unfenced, and leads the partition if that has no leader and it
    /// can. Returns whether anything changed.
    pub fn unfence_broker(&mut self, id: NodeId, epoch: BrokerEpoch) -> bool {
        let Some(broker) = self.brokers.get_mut(&id) else {
            return false;
        };
        if broker.epoch != epoch || !broker.fenced {
            return false;
        }
        broker.fenced = false;
        if self.partition.leader == NO_LEADER {
            let isr = self.partition.isr.clone();
            self.change(isr, None);
        }
        self.version += 1;
        true
    }

    /// Controlled shutdown: the broker joins no ISR and leads nothing.
    pub fn begin_controlled_shutdown(&mut self, id: NodeId) {
        if let Some(broker) = self.brokers.get_mut(&id) {
            broker.shutting_down = true;
            self.remove_from_partition(id);
            self.version += 1;
        }
    }

    /// Applies (or refuses) an AlterPartition, checking as Kafka does, in
    /// Kafka's order.
    pub fn alter_partition(&mut self, request: &AlterPartitionRequest) -> AlterPartitionResponse {
        let result = self.validate(request).map(|()| {
            let isr = request.isr_ids();
            self.change(isr, None);
            self.version += 1;
            AlterPartitionAccepted {
                leader: self.partition.leader,
                leader_epoch: self.partition.leader_epoch,
                isr: self.partition.isr.clone(),
                partition_epoch: self.partition.partition_epoch,
            }
        });
        let result = match result {
            Ok(accepted) if accepted.leader != request.broker_id => Err(AlterPartitionError::NewLeaderElected),
            other => other,
        };
        AlterPartitionResponse { result }
    }

    fn validate(&self, request: &AlterPartitionRequest) -> Result<(), AlterPartitionError> {
        let p = &self.partition;
        if self.brokers.get(&request.broker_id).is_none_or(|b| b.epoch != request.broker_epoch) {
            return Err(AlterPartitionError::StaleBrokerEpoch);
        }
        if request.leader_epoch > p.leader_epoch || request.partition_epoch > p.partition_epoch {
            return Err(AlterPartitionError::NotController);
        }
        if request.leader_epoch < p.leader_epoch {
            return Err(AlterPartitionError::FencedLeaderEpoch);
        }
        if request.broker_id != p.leader {
            return Err(AlterPartitionError::InvalidRequest);
        }
        if request.partition_epoch < p.partition_epoch {
            return Err(AlterPartitionError::InvalidUpdateVersion);
        }
        let isr = request.isr_ids();
        let distinct: BTreeSet<NodeId> = isr.iter().copied().collect();
        if distinct.len() != isr.len() || !isr.iter().all(|r| p.replicas.contains(r)) || !distinct.contains(&p.leader) {
            return Err(AlterPartitionError::InvalidRequest);
        }
        let ineligible = request.new_isr.iter().any(|m| {
            self.brokers.get(&m.broker_id).is_none_or(|b| {
                b.fenced || b.shutting_down || (m.broker_epoch != UNKNOWN_BROKER_EPOCH && m.broker_epoch != b.epoch)
            })
        });
        if ineligible {
            return Err(AlterPartitionError::IneligibleReplica);
        }
        Ok(())
    }

    fn acceptable_leader(&self, id: NodeId, excluded: Option<NodeId>) -> bool {
        Some(id) != excluded && self.brokers.get(&id).is_some_and(|b| !b.fenced && !b.shutting_down)
    }

    /// Takes `id` out of the ISR (unless it is the last member) and elects a
    /// new leader if it led.
    fn remove_from_partition(&mut self, id: NodeId) {
        let isr: Vec<NodeId> = self.partition.isr.iter().copied().filter(|&r| r != id).collect();
        self.change(isr, Some(id));
    }

    /// Kafka's `PartitionChangeBuilder` for a target ISR: elects if the
    /// leader cannot stay, writes the change if anything changed.
    fn change(&mut self, target_isr: Vec<NodeId>, excluded: Option<NodeId>) {
        let p = &self.partition;
        let target_isr = if target_isr.is_empty() { p.isr.clone() } else { in_replica_order(&p.replicas, &target_isr) };
        let (leader, isr) = self.elect(&target_isr, excluded);
        if leader == p.leader && isr == p.isr {
            return;
        }
        let leader_changed = leader != p.leader;
        let p = &mut self.partition;
        p.leader = leader;
        p.isr = isr;
        if leader_changed {
            p.leader_epoch += 1;
        }
        p.partition_epoch += 1;
    }

    fn elect(&self, isr: &[NodeId], excluded: Option<NodeId>) -> (NodeId, Vec<NodeId>) {
        let p = &self.partition;
        #[cfg(test)]
        if crate::bugs::active(crate::bugs::Bug::ElectOutsideIsr)
            && !self.acceptable_leader(p.leader, excluded)
            && let Some(&r) = p.replicas.iter().find(|&&r| self.acceptable_leader(r, excluded))
        {
            // The bug: any live replica leads, and joins the ISR.
            let mut isr = isr.to_vec();
            if !isr.contains(&r) {
                isr.push(r);
            }
            return (r, in_replica_order(&p.replicas, &isr));
        }
        if p.leader != NO_LEADER && isr.contains(&p.leader) && self.acceptable_leader(p.leader, excluded) {
            return (p.leader, isr.to_vec());
        }
        if let Some(&r) = p.replicas.iter().find(|&&r| isr.contains(&r) && self.acceptable_leader(r, excluded)) {
            return (r, isr.to_vec());
        }
        if self.unclean_leader_election
            && let Some(&r) = p.replicas.iter().find(|&&r| self.acceptable_leader(r, excluded))
        {
            return (r, vec![r]);
        }
        (NO_LEADER, isr.to_vec())
    }
}

fn in_replica_order(replicas: &[NodeId], isr: &[NodeId]) -> Vec<NodeId> {
    replicas.iter().copied().filter(|r| isr.contains(r)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::IsrMember;

    fn request(c: &ControllerModel, from: NodeId, isr: &[NodeId]) -> AlterPartitionRequest {
        let p = c.partition();
        AlterPartitionRequest {
            broker_id: from,
            broker_epoch: c.broker(from).map_or(0, |b| b.epoch),
            leader_epoch: p.leader_epoch,
            partition_epoch: p.partition_epoch,
            new_isr: isr
                .iter()
                .map(|&broker_id| IsrMember { broker_id, broker_epoch: c.broker(broker_id).map_or(0, |b| b.epoch) })
                .collect(),
        }
    }

    #[test]
    fn a_shrink_bumps_only_the_partition_epoch_and_stale_requests_are_refused() {
        let mut c = ControllerModel::new(vec![1, 2, 3], false);
        let shrink = request(&c, 1, &[1, 2]);
        let accepted = c.alter_partition(&shrink).result.expect("accepted");
        assert_eq!((accepted.leader_epoch, accepted.partition_epoch, accepted.isr), (0, 1, vec![1, 2]));
        assert_eq!(c.alter_partition(&shrink).result, Err(AlterPartitionError::InvalidUpdateVersion));
        let mut future = request(&c, 1, &[1]);
        future.partition_epoch += 1;
        assert_eq!(c.alter_partition(&future).result, Err(AlterPartitionError::NotController));
    }

    #[test]
    fn requests_are_checked_in_kafkas_order() {
        let mut c = ControllerModel::new(vec![1, 2, 3], false);
        assert_eq!(c.alter_partition(&request(&c, 2, &[1, 2])).result, Err(AlterPartitionError::InvalidRequest));
        assert_eq!(c.alter_partition(&request(&c, 1, &[2, 3])).result, Err(AlterPartitionError::InvalidRequest));
        assert_eq!(c.alter_partition(&request(&c, 1, &[1, 1])).result, Err(AlterPartitionError::InvalidRequest));
        assert_eq!(c.alter_partition(&request(&c, 1, &[1, 4])).result, Err(AlterPartitionError::InvalidRequest));
        let mut stale_member = request(&c, 1, &[1, 2]);
        stale_member.new_isr[1].broker_epoch = 99;
        assert_eq!(c.alter_partition(&stale_member).result, Err(AlterPartitionError::IneligibleReplica));
        let mut stale_leader = request(&c, 1, &[1, 2]);
        stale_leader.broker_epoch = 99;
        assert_eq!(c.alter_partition(&stale_leader).result, Err(AlterPartitionError::StaleBrokerEpoch));
        c.fence_broker(3);
        let with_fenced = AlterPartitionRequest {
            new_isr: vec![
                IsrMember { broker_id: 1, broker_epoch: 1 },
                IsrMember { broker_id: 3, broker_epoch: UNKNOWN_BROKER_EPOCH },
            ],
            ..request(&c, 1, &[1])
        };
        assert_eq!(c.alter_partition(&with_fenced).result, Err(AlterPartitionError::IneligibleReplica));
        let old_epoch = request(&c, 1, &[1]);
        c.fence_broker(1);
        assert_eq!(c.partition().leader, 2);
        assert_eq!(c.alter_partition(&old_epoch).result, Err(AlterPartitionError::FencedLeaderEpoch));
    }

    #[test]
    fn fencing_the_leader_elects_from_the_isr_and_keeps_the_last_member() {
        let mut c = ControllerModel::new(vec![1, 2, 3], false);
        assert!(c.fence_broker(1));
        assert_eq!((c.partition().leader, c.partition().leader_epoch, c.partition().isr.clone()), (2, 1, vec![2, 3]));
        assert!(c.fence_broker(3));
        assert_eq!((c.partition().leader, c.partition().leader_epoch), (2, 1), "a follower leaving keeps the epoch");
        assert!(c.fence_broker(2));
        assert_eq!((c.partition().leader, c.partition().isr.clone()), (NO_LEADER, vec![2]), "the last member stays");
        let epoch_without_leader = c.partition().leader_epoch;
        // 1 comes back: not in the ISR, so no clean election.
        let e1 = c.broker(1).map(|b| b.epoch).unwrap_or_default();
        assert!(c.unfence_broker(1, e1));
        assert_eq!(c.partition().leader, NO_LEADER);
        // 2 restarts: a new epoch, fenced, then unfenced: it leads again in a new epoch.
        let e2 = c.register_broker(2);
        assert!(c.unfence_broker(2, e2));
        assert_eq!(c.partition().leader, 2);
        assert!(c.partition().leader_epoch > epoch_without_leader);
    }

    #[test]
    fn a_restart_takes_the_leadership_away_even_from_the_only_isr_member() {
        let mut c = ControllerModel::new(vec![1, 2], false);
        c.alter_partition(&request(&c, 1, &[1])).result.expect("shrink");
        let before = c.partition().leader_epoch;
        let e1 = c.register_broker(1);
        assert_eq!((c.partition().leader, c.partition().isr.clone()), (NO_LEADER, vec![1]));
        assert!(c.unfence_broker(1, e1));
        assert_eq!(c.partition().leader, 1);
        assert_eq!(c.partition().leader_epoch, before + 2, "one bump to no leader, one back");
    }

    #[test]
    fn unclean_election_only_when_enabled() {
        for unclean in [false, true] {
            let mut c = ControllerModel::new(vec![1, 2], unclean);
            c.alter_partition(&request(&c, 1, &[1])).result.expect("shrink");
            c.fence_broker(1);
            let expected = if unclean { (2, vec![2]) } else { (NO_LEADER, vec![1]) };
            assert_eq!((c.partition().leader, c.partition().isr.clone()), expected);
        }
    }
}
