//! Partition reassignment (KIP-455) as Kafka's controller decides it
//! (`ReplicationControlManager.alterPartitionReassignments`,
//! `PartitionReassignmentReplicas`, `PartitionReassignmentRevert`).
//!
//! A [`MetadataCommand::ReassignPartition`] is checked when its entry is
//! applied, against the state at that point of the log (as AlterPartition
//! is, see [`crate::alter_partition`]), and becomes the partition change
//! Kafka's controller would build:
//!
//! - **start**: moving a partition with replicas `R` to the target `T`
//!   sets replicas = `T` followed by `R∖T`, adding = `T∖R`, removing =
//!   `R∖T`; the ISR and leader stay. The added replicas create the
//!   partition and fetch from the leader.
//! - **complete**: as soon as every adding replica is in the ISR, the
//!   change that put the last one there (an AlterPartition from the
//!   leader, or this command itself when nothing is added) sets replicas =
//!   `T`, ISR = ISR ∩ `T`, clears adding and removing, and elects a new
//!   leader (leader epoch bumped) when the leader was removed
//!   ([`crate::PartitionChangeBuilder`] does this for every change).
//! - **cancel** (`target: None`): the adding replicas leave the replicas
//!   and the ISR; the removing ones stay. A cancel that would leave no ISR
//!   member is refused (Kafka allows it only with unclean leader election
//!   enabled; that is not modelled).
//! - **replace**: a new target for a partition being reassigned is
//!   computed from the partition's original replicas (the replicas that
//!   are not being added), as Kafka's ZooKeeper-era controller did: a
//!   replica the old reassignment was adding and the new target keeps is
//!   still waited for; one the new target drops leaves at once.
//!
//! Refusals, as Kafka answers them:
//!
//! | check | error |
//! |---|---|
//! | the topic and partition exist | UNKNOWN_TOPIC_OR_PARTITION |
//! | cancel: a reassignment is in progress | NO_REASSIGNMENT_IN_PROGRESS |
//! | the target is not empty | INVALID_REPLICA_ASSIGNMENT |
//! | the target names no broker twice | INVALID_REPLICA_ASSIGNMENT |
//! | every target broker is registered | INVALID_REPLICA_ASSIGNMENT |
//! | the change leaves an ISR member | INVALID_REPLICA_ASSIGNMENT |

use serde::{Deserialize, Serialize};

use crate::alter_partition::is_active;
use crate::command::PartitionMeta;
use crate::partition_change::{Election, PartitionChangeBuilder};
use crate::state::{ApplyOutcome, Change, MetadataState, change_partition};

/// Why a reassignment request was refused (each is one of Kafka's error codes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReassignmentError {
    /// UNKNOWN_TOPIC_OR_PARTITION.
    UnknownTopicOrPartition,
    /// NO_REASSIGNMENT_IN_PROGRESS: a cancel of a partition not being reassigned.
    NoReassignmentInProgress,
    /// INVALID_REPLICA_ASSIGNMENT, with Kafka's message.
    InvalidReplicaAssignment {
        /// Why.
        reason: String,
    },
}

/// Applies a [`MetadataCommand::ReassignPartition`].
pub(crate) fn apply(
    state: &mut MetadataState,
    topic_id: &[u8; 16],
    partition: i32,
    target: Option<&[i32]>,
) -> ApplyOutcome {
    let refuse = |error| ApplyOutcome::ReassignmentRefused { error };
    let Some(current) =
        state.topic_by_id(topic_id).and_then(|t| usize::try_from(partition).ok().and_then(|p| t.partitions.get(p)))
    else {
        return refuse(ReassignmentError::UnknownTopicOrPartition);
    };
    let plan = match target {
        None => revert(current),
        Some(target) => validate_target(state, target).and_then(|()| reassign(current, target)),
    };
    let (replicas, isr, adding, removing) = match plan {
        Ok(plan) => plan,
        Err(error) => return refuse(error),
    };
    let acceptable = |b: i32| is_active(state, b);
    let change = PartitionChangeBuilder::new(current, *topic_id, partition, &acceptable)
        .target_replicas(replicas)
        .target_isr(isr)
        .target_adding(adding)
        .target_removing(removing)
        .election(Election::Online)
        .build();
    let Some(change) = change else {
        return ApplyOutcome::PartitionUnchanged;
    };
    let Some(meta) = state
        .topic_by_id_mut(topic_id)
        .and_then(|t| usize::try_from(partition).ok().and_then(|p| t.partitions.get_mut(p)))
    else {
        return refuse(ReassignmentError::UnknownTopicOrPartition);
    };
    match change_partition(meta, None, Change::of(&change)) {
        ApplyOutcome::InvalidPartitionChange { reason } => {
            refuse(ReassignmentError::InvalidReplicaAssignment { reason })
        }
        other => other,
    }
}

/// (replicas, ISR, adding, removing) to reach.
type Plan = (Vec<i32>, Vec<i32>, Vec<i32>, Vec<i32>);

fn invalid(reason: String) -> ReassignmentError {
    ReassignmentError::InvalidReplicaAssignment { reason }
}

fn validate_target(state: &MetadataState, target: &[i32]) -> Result<(), ReassignmentError> {
    check_target(target, |b| state.brokers.contains_key(&b))
}

/// Kafka's `validateManualPartitionAssignment`: a target that is not empty,
/// names no broker twice, and only brokers `registered` knows.
pub fn check_target(target: &[i32], registered: impl Fn(i32) -> bool) -> Result<(), ReassignmentError> {
    if target.is_empty() {
        return Err(invalid("The manual partition assignment includes an empty replica list.".into()));
    }
    for (i, broker) in target.iter().enumerate() {
        if target[..i].contains(broker) {
            return Err(invalid(format!(
                "The manual partition assignment includes the broker {broker} more than once."
            )));
        }
    }
    if let Some(unknown) = target.iter().find(|&&b| !registered(b)) {
        return Err(invalid(format!(
            "The manual partition assignment includes broker {unknown}, but no such broker is registered."
        )));
    }
    Ok(())
}

/// The partition's replicas before any reassignment in progress.
fn original(current: &PartitionMeta) -> Vec<i32> {
    current.replicas.iter().copied().filter(|r| !current.adding_replicas.contains(r)).collect()
}

/// Replicas = target then the original replicas it drops; adding = the
/// target's new ones; removing = the dropped ones; the ISR without the
/// replicas an earlier reassignment was adding that this one drops.
fn reassign(current: &PartitionMeta, target: &[i32]) -> Result<Plan, ReassignmentError> {
    let original = original(current);
    let removing: Vec<i32> = original.iter().copied().filter(|r| !target.contains(r)).collect();
    let adding: Vec<i32> = target.iter().copied().filter(|r| !original.contains(r)).collect();
    let mut replicas = target.to_vec();
    replicas.extend(&removing);
    let isr: Vec<i32> = current.isr.iter().copied().filter(|r| replicas.contains(r)).collect();
    if isr.is_empty() {
        return Err(invalid(format!(
            "Reassigning to {target:?} would leave no in-sync replica (the ISR is {:?}).",
            current.isr
        )));
    }
    Ok((replicas, isr, adding, removing))
}

/// Kafka's `PartitionReassignmentRevert`: the adding replicas leave.
fn revert(current: &PartitionMeta) -> Result<Plan, ReassignmentError> {
    if !current.is_reassigning() {
        return Err(ReassignmentError::NoReassignmentInProgress);
    }
    let replicas = original(current);
    let isr: Vec<i32> = current.isr.iter().copied().filter(|r| !current.adding_replicas.contains(r)).collect();
    if isr.is_empty() {
        return Err(invalid(
            "Unable to revert the partition's assignment because it would require an unclean leader election.".into(),
        ));
    }
    Ok((replicas, isr, Vec::new(), Vec::new()))
}

#[cfg(test)]
mod tests;
