//! Building a partition change the way Kafka's controller does
//! (`PartitionChangeBuilder`): from the partition's current registration and
//! a target ISR / replica list, elect a leader if one is needed and produce
//! the [`MetadataCommand::ChangePartition`] to propose, or nothing when
//! nothing would change.
//!
//! Rules carried over (eligible leader replicas, directories and leader
//! recovery are not modelled yet):
//! - a reassignment in progress completes as soon as every adding replica
//!   is in the target ISR (Kafka's `completeReassignmentIfNeeded`): the
//!   removing replicas leave the replica list and the ISR, and the adding
//!   and removing lists are cleared; a completion that would leave the ISR
//!   empty waits;
//! - the current leader stays while it is in the target ISR and acceptable
//!   (alive, unfenced); otherwise the first acceptable ISR member in replica
//!   order leads, else nobody (-1);
//! - a preferred election picks the first replica when it can lead;
//! - an unclean election, when no ISR member can lead, picks the first
//!   acceptable replica and shrinks the ISR to it;
//! - a target replica list that drops a current replica bumps the leader
//!   epoch even when the leader stays;
//! - an empty target ISR is never written (without eligible leader replicas
//!   Kafka keeps the last ISR);
//! - an ISR shrink alone does not bump the leader epoch (Kafka's behaviour
//!   since metadata version 3.6).
//!
//! The built command carries the partition epoch it was built against, so
//! applying it after another change of the partition is refused.

use crate::command::{MetadataCommand, PartitionMeta};

/// How a leader is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Election {
    /// Prefer the first replica when it is in the ISR and acceptable.
    Preferred,
    /// Keep the partition online from the ISR.
    Online,
    /// Like `Online`, but fall back to any acceptable replica (may lose data).
    Unclean,
}

/// Builds one partition's change.
pub struct PartitionChangeBuilder<'a> {
    current: &'a PartitionMeta,
    topic_id: [u8; 16],
    partition: i32,
    is_acceptable_leader: &'a dyn Fn(i32) -> bool,
    target_isr: Vec<i32>,
    target_replicas: Vec<i32>,
    target_adding: Vec<i32>,
    target_removing: Vec<i32>,
    election: Election,
}

impl std::fmt::Debug for PartitionChangeBuilder<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartitionChangeBuilder")
            .field("current", self.current)
            .field("partition", &self.partition)
            .field("target_isr", &self.target_isr)
            .field("target_replicas", &self.target_replicas)
            .field("election", &self.election)
            .finish_non_exhaustive()
    }
}

impl<'a> PartitionChangeBuilder<'a> {
    /// Starts from the current registration: targets equal the current ISR
    /// and replicas, election `Online`.
    pub fn new(
        current: &'a PartitionMeta,
        topic_id: [u8; 16],
        partition: i32,
        is_acceptable_leader: &'a dyn Fn(i32) -> bool,
    ) -> PartitionChangeBuilder<'a> {
        PartitionChangeBuilder {
            current,
            topic_id,
            partition,
            is_acceptable_leader,
            target_isr: current.isr.clone(),
            target_replicas: current.replicas.clone(),
            target_adding: current.adding_replicas.clone(),
            target_removing: current.removing_replicas.clone(),
            election: Election::Online,
        }
    }

    /// The ISR to reach.
    pub fn target_isr(mut self, isr: Vec<i32>) -> Self {
        self.target_isr = isr;
        self
    }

    /// The replica list to reach.
    pub fn target_replicas(mut self, replicas: Vec<i32>) -> Self {
        self.target_replicas = replicas;
        self
    }

    /// The replicas a reassignment is adding (empty: none).
    pub fn target_adding(mut self, adding: Vec<i32>) -> Self {
        self.target_adding = adding;
        self
    }

    /// The replicas a reassignment is removing (empty: none).
    pub fn target_removing(mut self, removing: Vec<i32>) -> Self {
        self.target_removing = removing;
        self
    }

    /// The election kind.
    pub fn election(mut self, election: Election) -> Self {
        self.election = election;
        self
    }

    /// The command to propose, or `None` when nothing would change.
    pub fn build(mut self) -> Option<MetadataCommand> {
        self.complete_reassignment_if_needed();
        let mut leader = None;
        let mut isr = None;
        let (elected, unclean) = self.elect();
        if elected != self.current.leader {
            leader = Some(elected);
            if unclean {
                isr = Some(vec![elected]);
            }
        }
        if leader.is_none() && !self.current.replicas.iter().all(|r| self.target_replicas.contains(r)) {
            leader = Some(self.current.leader);
        }
        if isr.is_none() && !self.target_isr.is_empty() && self.target_isr != self.current.isr {
            isr = Some(self.target_isr.clone());
        }
        let replicas = (!self.target_replicas.is_empty() && self.target_replicas != self.current.replicas)
            .then(|| self.target_replicas.clone());
        let adding = (self.target_adding != self.current.adding_replicas).then(|| self.target_adding.clone());
        let removing = (self.target_removing != self.current.removing_replicas).then(|| self.target_removing.clone());
        if leader.is_none() && isr.is_none() && replicas.is_none() && adding.is_none() && removing.is_none() {
            return None;
        }
        Some(MetadataCommand::ChangePartition {
            topic_id: self.topic_id,
            partition: self.partition,
            expected_partition_epoch: Some(self.current.partition_epoch),
            leader,
            isr,
            replicas,
            adding,
            removing,
        })
    }

    /// Kafka's `maybeCompleteReassignment`: once every adding replica is in
    /// the target ISR (the removing ones left out), the targets become the
    /// reassignment's end state.
    fn complete_reassignment_if_needed(&mut self) {
        if self.target_adding.is_empty() && self.target_removing.is_empty() {
            return;
        }
        let removing = &self.target_removing;
        let isr: Vec<i32> = self.target_isr.iter().copied().filter(|r| !removing.contains(r)).collect();
        if isr.is_empty() || !self.target_adding.iter().all(|r| isr.contains(r)) {
            return;
        }
        self.target_replicas.retain(|r| !removing.contains(r));
        self.target_isr = isr;
        self.target_adding.clear();
        self.target_removing.clear();
    }

    fn can_lead(&self, replica: i32) -> bool {
        self.target_isr.contains(&replica) && (self.is_acceptable_leader)(replica)
    }

    /// The leader to have, and whether the choice is unclean.
    fn elect(&self) -> (i32, bool) {
        if self.election == Election::Preferred
            && let Some(&preferred) = self.target_replicas.first()
            && self.can_lead(preferred)
        {
            return (preferred, false);
        }
        if self.can_lead(self.current.leader) {
            return (self.current.leader, false);
        }
        if let Some(&r) = self.target_replicas.iter().find(|&&r| self.can_lead(r)) {
            return (r, false);
        }
        if self.election == Election::Unclean
            && let Some(&r) = self.target_replicas.iter().find(|&&r| (self.is_acceptable_leader)(r))
        {
            return (r, true);
        }
        (-1, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn partition(replicas: &[i32], leader: i32, isr: &[i32]) -> PartitionMeta {
        PartitionMeta::new(replicas.to_vec(), leader, 10, isr.to_vec(), 20)
    }

    /// (leader, isr, replicas) of a built change.
    type Change = (Option<i32>, Option<Vec<i32>>, Option<Vec<i32>>);

    fn parts(cmd: Option<MetadataCommand>) -> Option<Change> {
        cmd.map(|c| match c {
            MetadataCommand::ChangePartition { leader, isr, replicas, expected_partition_epoch, .. } => {
                assert_eq!(expected_partition_epoch, Some(20));
                (leader, isr, replicas)
            }
            other => panic!("unexpected {other:?}"),
        })
    }

    #[test]
    fn nothing_to_change_builds_nothing() {
        let p = partition(&[1, 2, 3], 1, &[1, 2, 3]);
        let all = |_| true;
        assert_eq!(PartitionChangeBuilder::new(&p, [0; 16], 0, &all).build(), None);
    }

    #[test]
    fn leader_dropping_out_of_the_isr_elects_the_next_in_replica_order() {
        let p = partition(&[1, 2, 3], 1, &[1, 2, 3]);
        let all = |_| true;
        let built = PartitionChangeBuilder::new(&p, [0; 16], 0, &all).target_isr(vec![3, 2]).build();
        assert_eq!(parts(built), Some((Some(2), Some(vec![3, 2]), None)));
    }

    #[test]
    fn fenced_leader_is_replaced_by_an_acceptable_isr_member() {
        let p = partition(&[1, 2, 3], 1, &[1, 2, 3]);
        let not_one_or_two = |b| b == 3;
        let built = PartitionChangeBuilder::new(&p, [0; 16], 0, &not_one_or_two).build();
        assert_eq!(parts(built), Some((Some(3), None, None)));
    }

    #[test]
    fn no_acceptable_isr_member_means_no_leader_unless_unclean() {
        let p = partition(&[1, 2, 3], 1, &[1]);
        let only_three = |b| b == 3;
        let online = PartitionChangeBuilder::new(&p, [0; 16], 0, &only_three).build();
        assert_eq!(parts(online), Some((Some(-1), None, None)));
        let unclean = PartitionChangeBuilder::new(&p, [0; 16], 0, &only_three).election(Election::Unclean).build();
        assert_eq!(parts(unclean), Some((Some(3), Some(vec![3]), None)));
    }

    #[test]
    fn preferred_election_moves_leadership_back_to_the_first_replica() {
        let p = partition(&[1, 2, 3], 2, &[1, 2, 3]);
        let all = |_| true;
        let online = PartitionChangeBuilder::new(&p, [0; 16], 0, &all).build();
        assert_eq!(online, None, "an online election keeps a valid leader");
        let preferred = PartitionChangeBuilder::new(&p, [0; 16], 0, &all).election(Election::Preferred).build();
        assert_eq!(parts(preferred), Some((Some(1), None, None)));
    }

    #[test]
    fn dropping_a_replica_bumps_the_leader_epoch_with_the_same_leader() {
        let p = partition(&[1, 2, 3], 1, &[1, 2, 3]);
        let all = |_| true;
        let built = PartitionChangeBuilder::new(&p, [0; 16], 0, &all)
            .target_replicas(vec![1, 2])
            .target_isr(vec![1, 2])
            .build();
        assert_eq!(parts(built), Some((Some(1), Some(vec![1, 2]), Some(vec![1, 2]))));
        let added = PartitionChangeBuilder::new(&p, [0; 16], 0, &all).target_replicas(vec![1, 2, 3, 4]).build();
        assert_eq!(parts(added), Some((None, None, Some(vec![1, 2, 3, 4]))), "adding a replica keeps the leader epoch");
    }

    #[test]
    fn an_empty_target_isr_is_not_written() {
        let p = partition(&[1, 2], 1, &[1, 2]);
        let none = |_| false;
        let built = PartitionChangeBuilder::new(&p, [0; 16], 0, &none).target_isr(vec![]).build();
        assert_eq!(parts(built), Some((Some(-1), None, None)));
    }
}
