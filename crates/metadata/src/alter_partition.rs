//! AlterPartition as Kafka's controller answers it
//! (`ReplicationControlManager.alterPartition` / `validateAlterPartitionData`):
//! a partition's leader asks to change its ISR.
//!
//! The request is checked when its [`MetadataCommand::AlterPartition`] entry
//! is applied, against the state at that point of the log. That is where
//! the order of commands is final: a broker fenced, unregistered or shutting
//! down, or a partition changed, between the leader's request and the
//! entry's commit is seen, on every node alike. Kafka's single-threaded
//! controller gets the same from validating against its own newest state.
//!
//! Checks, in Kafka's order (the first that fails answers):
//!
//! | check | error |
//! |---|---|
//! | the asking broker is registered with this broker epoch | STALE_BROKER_EPOCH (for the whole request) |
//! | the topic id is known | UNKNOWN_TOPIC_ID |
//! | the partition exists | UNKNOWN_TOPIC_OR_PARTITION |
//! | the leader or partition epoch is not newer than the controller's | NOT_CONTROLLER (the asker knows more: this controller is behind) |
//! | the leader epoch is not older | FENCED_LEADER_EPOCH |
//! | the asker is the partition's leader | INVALID_REQUEST |
//! | the partition epoch is not older | INVALID_UPDATE_VERSION |
//! | the new ISR names replicas of the partition, each once | INVALID_REQUEST |
//! | the new ISR holds the leader | INVALID_REQUEST |
//! | every ISR member is registered, unfenced, not shutting down, with the broker epoch given (-1: not checked) | INELIGIBLE_REPLICA |
//!
//! A request that passes is built into a partition change as Kafka's
//! controller builds it ([`PartitionChangeBuilder`], online election): an
//! ISR-only change bumps the partition epoch and keeps the leader epoch; no
//! change at all changes nothing and answers with the partition as it is.
//! The leader is in the new ISR and eligible, so it stays leader: Kafka's
//! NEW_LEADER_ELECTED comes only from a reassignment that an ISR change
//! completes, and reassignments are not modelled yet. Kafka's
//! version-dependent answers follow its newest request version (3): topics
//! by id, ISR members with broker epochs. Leader recovery state (KIP-704)
//! and unclean election on ISR changes are not modelled.

use serde::{Deserialize, Serialize};

use crate::command::{BrokerState, MetadataCommand};
use crate::partition_change::{Election, PartitionChangeBuilder};
use crate::state::{ApplyOutcome, MetadataState, change_partition};

/// Why an AlterPartition was refused (each is one of Kafka's error codes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AlterPartitionError {
    /// STALE_BROKER_EPOCH: the asking broker is not registered with that epoch.
    StaleBrokerEpoch,
    /// UNKNOWN_TOPIC_ID.
    UnknownTopicId,
    /// UNKNOWN_TOPIC_OR_PARTITION.
    UnknownTopicOrPartition,
    /// NOT_CONTROLLER: the request names a newer epoch than this state has.
    NotController,
    /// FENCED_LEADER_EPOCH: the request's leader epoch is older.
    FencedLeaderEpoch,
    /// INVALID_REQUEST: not the leader, or an ISR that is not a set of the
    /// partition's replicas holding the leader.
    InvalidRequest {
        /// Which.
        reason: String,
    },
    /// INVALID_UPDATE_VERSION: the request's partition epoch is older.
    InvalidUpdateVersion,
    /// INELIGIBLE_REPLICA: an ISR member is not registered, fenced, shutting
    /// down, or registered with another broker epoch.
    IneligibleReplica {
        /// Which members and why.
        reason: String,
    },
}

/// A broker may lead, or be added to an ISR: registered, unfenced, not
/// shutting down (Kafka's `isActive`).
pub fn is_active(state: &MetadataState, broker: i32) -> bool {
    state.brokers.get(&broker).is_some_and(|b| !b.fenced && !b.in_controlled_shutdown)
}

/// Applies an [`MetadataCommand::AlterPartition`] (any other command
/// changes nothing).
pub(crate) fn apply(state: &mut MetadataState, command: &MetadataCommand) -> ApplyOutcome {
    let MetadataCommand::AlterPartition {
        broker_id,
        broker_epoch,
        topic_id,
        partition,
        leader_epoch,
        partition_epoch,
        new_isr,
    } = command
    else {
        return ApplyOutcome::PartitionUnchanged;
    };
    let refuse = |error| ApplyOutcome::AlterPartitionRefused { error };
    if state.brokers.get(broker_id).is_none_or(|b| b.broker_epoch != *broker_epoch) {
        return refuse(AlterPartitionError::StaleBrokerEpoch);
    }
    let Some(topic) = state.topic_by_id(topic_id) else {
        return refuse(AlterPartitionError::UnknownTopicId);
    };
    let Some(current) = usize::try_from(*partition).ok().and_then(|p| topic.partitions.get(p)) else {
        return refuse(AlterPartitionError::UnknownTopicOrPartition);
    };
    if let Err(error) = validate(state, current, *broker_id, *leader_epoch, *partition_epoch, new_isr) {
        return refuse(error);
    }
    let target: Vec<i32> = new_isr.iter().map(|b| b.broker_id).collect();
    let acceptable = |b: i32| is_active(state, b);
    let change = PartitionChangeBuilder::new(current, *topic_id, *partition, &acceptable)
        .target_isr(target)
        .election(Election::Online)
        .build();
    let Some(MetadataCommand::ChangePartition { leader, isr, replicas, .. }) = change else {
        return applied(current);
    };
    let Some(meta) = state
        .topic_by_id_mut(topic_id)
        .and_then(|t| usize::try_from(*partition).ok().and_then(|p| t.partitions.get_mut(p)))
    else {
        return refuse(AlterPartitionError::UnknownTopicOrPartition);
    };
    match change_partition(meta, Some(*partition_epoch), leader, isr.as_deref(), replicas.as_deref()) {
        ApplyOutcome::InvalidPartitionChange { reason } => refuse(AlterPartitionError::InvalidRequest { reason }),
        // Changed, or (the epochs were checked above) nothing to change.
        _ => applied(meta),
    }
}

fn applied(meta: &crate::command::PartitionMeta) -> ApplyOutcome {
    ApplyOutcome::AlterPartitionApplied {
        leader: meta.leader,
        leader_epoch: meta.leader_epoch,
        isr: meta.isr.clone(),
        partition_epoch: meta.partition_epoch,
    }
}

/// Kafka's `validateAlterPartitionData`, from the epochs on.
fn validate(
    state: &MetadataState,
    current: &crate::command::PartitionMeta,
    broker_id: i32,
    leader_epoch: i32,
    partition_epoch: i32,
    new_isr: &[BrokerState],
) -> Result<(), AlterPartitionError> {
    if leader_epoch > current.leader_epoch || partition_epoch > current.partition_epoch {
        return Err(AlterPartitionError::NotController);
    }
    if leader_epoch < current.leader_epoch {
        return Err(AlterPartitionError::FencedLeaderEpoch);
    }
    if broker_id != current.leader {
        return Err(AlterPartitionError::InvalidRequest {
            reason: format!("broker {broker_id} is not the leader; broker {} is", current.leader),
        });
    }
    if partition_epoch < current.partition_epoch {
        return Err(AlterPartitionError::InvalidUpdateVersion);
    }
    let ids: Vec<i32> = new_isr.iter().map(|b| b.broker_id).collect();
    let duplicate = ids.iter().enumerate().any(|(i, id)| ids[..i].contains(id));
    if duplicate || ids.iter().any(|id| *id < 0 || !current.replicas.contains(id)) {
        return Err(AlterPartitionError::InvalidRequest {
            reason: format!("ISR {ids:?} is not a set of the replicas {:?}", current.replicas),
        });
    }
    if !ids.contains(&current.leader) {
        return Err(AlterPartitionError::InvalidRequest {
            reason: format!("ISR {ids:?} does not hold the leader {}", current.leader),
        });
    }
    let ineligible: Vec<String> = new_isr
        .iter()
        .filter_map(|member| {
            let why = match state.brokers.get(&member.broker_id) {
                None => "not registered".to_string(),
                Some(b) if b.in_controlled_shutdown => "shutting down".to_string(),
                Some(b) if b.fenced => "fenced".to_string(),
                Some(b) if member.broker_epoch != -1 && member.broker_epoch != b.broker_epoch => {
                    format!("broker epoch {} is not the registered {}", member.broker_epoch, b.broker_epoch)
                }
                Some(_) => return None,
            };
            Some(format!("{}: {why}", member.broker_id))
        })
        .collect();
    if !ineligible.is_empty() {
        return Err(AlterPartitionError::IneligibleReplica { reason: ineligible.join(", ") });
    }
    Ok(())
}

#[cfg(test)]
mod tests;
