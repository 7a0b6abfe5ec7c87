//! The leader's view of the ISR: the committed set (from the metadata or an
//! accepted AlterPartition) and at most one change in flight (KIP-497).
//!
//! The high watermark and acks=all use the **maximal** ISR: while an
//! expansion is in flight, the committed set plus the joining replica
//! (it may be committed any moment, and counting it is only stricter);
//! while a shrink is in flight, still the committed set (the shrink may be
//! refused, and leaving a member out early could commit what it lacks).

use std::collections::BTreeSet;

use crate::messages::AlterPartitionRequest;
use crate::types::NodeId;

/// A change sent to the controller and not yet answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingIsrChange {
    /// What was sent (resent as it is on a transport error).
    pub request: AlterPartitionRequest,
    /// When it was last sent.
    pub sent_ms: u64,
    /// The replica joining, for an expansion.
    pub joining: Option<NodeId>,
}

/// Committed ISR and the change in flight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IsrState {
    committed: BTreeSet<NodeId>,
    pending: Option<PendingIsrChange>,
}

impl IsrState {
    /// A committed ISR with nothing in flight.
    pub fn committed(isr: impl IntoIterator<Item = NodeId>) -> IsrState {
        IsrState { committed: isr.into_iter().collect(), pending: None }
    }

    /// The committed ISR.
    pub fn committed_set(&self) -> &BTreeSet<NodeId> {
        &self.committed
    }

    /// The ISR the high watermark waits for.
    pub fn maximal(&self) -> BTreeSet<NodeId> {
        let mut isr = self.committed.clone();
        #[cfg(test)]
        if crate::bugs::active(crate::bugs::Bug::HighWatermarkOverCommittedIsr) {
            return isr;
        }
        if let Some(joining) = self.pending.as_ref().and_then(|p| p.joining) {
            isr.insert(joining);
        }
        isr
    }

    /// The change in flight.
    pub fn pending(&self) -> Option<&PendingIsrChange> {
        self.pending.as_ref()
    }

    pub(crate) fn pending_mut(&mut self) -> Option<&mut PendingIsrChange> {
        self.pending.as_mut()
    }

    /// Puts a change in flight.
    pub(crate) fn start(&mut self, change: PendingIsrChange) {
        debug_assert!(self.pending.is_none(), "one ISR change at a time");
        self.pending = Some(change);
    }

    /// The controller refused the change and said it was not applied: back
    /// to the committed set.
    pub(crate) fn abandon(&mut self) {
        self.pending = None;
    }

    /// A new committed set (accepted, or from newer metadata); nothing is in
    /// flight any more.
    pub(crate) fn commit(&mut self, isr: impl IntoIterator<Item = NodeId>) {
        self.committed = isr.into_iter().collect();
        self.pending = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::IsrMember;

    fn request(isr: &[NodeId]) -> AlterPartitionRequest {
        AlterPartitionRequest {
            broker_id: 1,
            broker_epoch: 1,
            leader_epoch: 0,
            partition_epoch: 0,
            new_isr: isr.iter().map(|&broker_id| IsrMember { broker_id, broker_epoch: 1 }).collect(),
        }
    }

    #[test]
    fn an_expansion_counts_at_once_a_shrink_only_when_committed() {
        let mut isr = IsrState::committed([1, 2]);
        isr.start(PendingIsrChange { request: request(&[1, 2, 3]), sent_ms: 0, joining: Some(3) });
        assert_eq!(isr.maximal(), BTreeSet::from([1, 2, 3]));
        assert_eq!(isr.committed_set(), &BTreeSet::from([1, 2]));
        isr.abandon();
        isr.start(PendingIsrChange { request: request(&[1]), sent_ms: 0, joining: None });
        assert_eq!(isr.maximal(), BTreeSet::from([1, 2]));
        isr.commit([1]);
        assert_eq!(isr.maximal(), BTreeSet::from([1]));
        assert!(isr.pending().is_none());
    }
}
