//! The invariants, checked after every step of a run.
//!
//! The checker keeps the ground truth a run has established:
//! - **committed**: the records below any leader's high watermark, by
//!   offset. Whenever a leader's high watermark is `h`, its log below `h`
//!   must equal `committed` there (extending it when `h` is new ground): no
//!   two leaders ever commit different records at one offset, and nothing
//!   committed is ever replaced.
//! - **acknowledged**: every acks=all batch answered with success, by offset.
//! - per leader term `(node, epoch)` the highest high watermark it had, and
//!   per leader epoch the range of high watermarks shown to clients.
//! - which node wrote in each leader epoch.
//!
//! After every step:
//! 1. each log is well formed (offsets in order, epoch cache matching the
//!    records);
//! 2. a leader's high watermark never goes back within its term, and never
//!    passes its own durable offset;
//! 3. a leader's log below its high watermark is the committed history, and
//!    so is the *durable* log of every member of its maximal ISR;
//! 4. every member of the controller's ISR has the whole committed history
//!    on its durable log (so any clean election keeps it);
//! 5. the high watermark clients see never goes back: within an epoch, and
//!    across epochs (a client that has seen epoch `e` never reads an older
//!    leader again, KIP-320).
//!
//! On events: at most one node writes in a leader epoch; an acks=all
//! success is below the leader's high watermark with the batch's records
//! there; an acks=1 success is on the leader's disk; a replica that becomes
//! leader in the controller's current leader epoch holds every acknowledged
//! acks=all record (a broker applying an old metadata image may lead an old
//! epoch for a while, a zombie whose high watermark the checks above bound).

use std::collections::BTreeMap;

use super::log::{SimLog, SimRecord};
use crate::types::{LeaderEpoch, NodeId, Offset};

/// What has been established so far.
#[derive(Debug, Default)]
pub(crate) struct Checker {
    committed: Vec<SimRecord>,
    acknowledged: BTreeMap<Offset, u64>,
    term_high_watermark: BTreeMap<(NodeId, LeaderEpoch), Offset>,
    shown: BTreeMap<LeaderEpoch, (Offset, Offset)>,
    writers: BTreeMap<LeaderEpoch, NodeId>,
    /// Per node: (log generation, length of its records already compared
    /// with `committed`).
    verified: BTreeMap<NodeId, (u64, usize)>,
}

/// A leader as the checker sees it.
pub(crate) struct LeaderView<'a> {
    pub(crate) node: NodeId,
    pub(crate) epoch: LeaderEpoch,
    pub(crate) log: &'a SimLog,
    pub(crate) maximal_isr: Vec<NodeId>,
    pub(crate) shown_high_watermark: Option<Offset>,
}

impl Checker {
    pub(crate) fn committed_len(&self) -> usize {
        self.committed.len()
    }

    /// Invariant 1.
    pub(crate) fn check_log(&self, node: NodeId, log: &SimLog) -> Result<(), String> {
        log.check().map_err(|e| format!("log of node {node} is malformed: {e}"))
    }

    /// Invariants 2, 3 and 5 for one leader; `logs` gives each node's log.
    pub(crate) fn check_leader<'a>(
        &mut self,
        leader: &LeaderView<'_>,
        logs: &impl Fn(NodeId) -> Option<&'a SimLog>,
    ) -> Result<(), String> {
        use crate::log::ReplicaLog;
        let (node, epoch) = (leader.node, leader.epoch);
        let hw = leader.log.high_watermark();
        let previous = self.term_high_watermark.entry((node, epoch)).or_insert(hw);
        if hw < *previous {
            return Err(format!("high watermark of leader {node} in epoch {epoch} went back from {previous} to {hw}"));
        }
        *previous = hw;
        if hw > leader.log.durable_offset() {
            return Err(format!(
                "leader {node} (epoch {epoch}) has high watermark {hw} past its durable offset {}",
                leader.log.durable_offset()
            ));
        }
        let hw = usize::try_from(hw).unwrap_or(0);
        for offset in self.committed.len()..hw {
            self.committed.push(leader.log.records()[offset]);
        }
        self.verify(node, leader.log, hw, false)
            .map_err(|e| format!("leader {node} (epoch {epoch}) below its high watermark {hw}: {e}"))?;
        for &member in &leader.maximal_isr {
            let log = logs(member).ok_or_else(|| format!("ISR member {member} has no log"))?;
            self.verify(member, log, hw, true).map_err(|e| {
                format!("leader {node} (epoch {epoch}) committed up to {hw}, but ISR member {member}'s disk {e}")
            })?;
        }
        if let Some(shown) = leader.shown_high_watermark {
            self.check_shown(epoch, shown)?;
        }
        Ok(())
    }

    /// Invariant 4.
    pub(crate) fn check_isr_member(&mut self, member: NodeId, log: &SimLog) -> Result<(), String> {
        let len = self.committed.len();
        self.verify(member, log, len, true)
            .map_err(|e| format!("controller ISR member {member} lacks committed records on disk: {e}"))
    }

    fn check_shown(&mut self, epoch: LeaderEpoch, shown: Offset) -> Result<(), String> {
        if let Some((older, (_, max))) = self.shown.range(..epoch).find(|entry| entry.1.1 > shown) {
            return Err(format!(
                "clients saw high watermark {max} in epoch {older}, then {shown} in newer epoch {epoch}"
            ));
        }
        if let Some((newer, (min, _))) = self.shown.range(epoch + 1..).find(|entry| entry.1.0 < shown) {
            return Err(format!(
                "clients saw high watermark {min} in epoch {newer}, then {shown} in older epoch {epoch}"
            ));
        }
        let entry = self.shown.entry(epoch).or_insert((shown, shown));
        if shown < entry.1 {
            return Err(format!("clients saw high watermark {} in epoch {epoch}, then {shown}", entry.1));
        }
        entry.0 = entry.0.min(shown);
        entry.1 = shown;
        Ok(())
    }

    /// Compares `log`'s first `upto` records (durable ones only when
    /// `durable`) with the committed history.
    fn verify(&mut self, node: NodeId, log: &SimLog, upto: usize, durable: bool) -> Result<(), String> {
        let records = if durable { log.durable_records() } else { log.records() };
        if records.len() < upto {
            return Err(format!(
                "holds only {} records{}, not {upto}",
                records.len(),
                if durable { " durably" } else { "" }
            ));
        }
        let (generation, done) = self.verified.get(&node).copied().unwrap_or((u64::MAX, 0));
        let from = if generation == log.generation() { done.min(upto) } else { 0 };
        let mismatch = (from..upto).find(|&offset| records[offset] != self.committed[offset]);
        if let Some(offset) = mismatch {
            return Err(format!(
                "has {:?} at offset {offset} where {:?} was committed",
                records[offset], self.committed[offset]
            ));
        }
        let done = if generation == log.generation() { done.max(upto) } else { upto };
        self.verified.insert(node, (log.generation(), done));
        Ok(())
    }

    /// A leader appended in `epoch`.
    pub(crate) fn on_write(&mut self, node: NodeId, epoch: LeaderEpoch) -> Result<(), String> {
        match self.writers.insert(epoch, node) {
            Some(other) if other != node => Err(format!("nodes {other} and {node} both wrote in leader epoch {epoch}")),
            _ => Ok(()),
        }
    }

    /// An acks=all batch at `first..` with `ids` was answered with success
    /// by `leader`.
    pub(crate) fn on_acknowledged_all(
        &mut self,
        leader: NodeId,
        log: &SimLog,
        first: Offset,
        ids: &[u64],
    ) -> Result<(), String> {
        use crate::log::ReplicaLog;
        let last = first + ids.len() as Offset - 1;
        if log.high_watermark() <= last {
            return Err(format!(
                "leader {leader} acknowledged {first}..={last} below high watermark {}",
                log.high_watermark()
            ));
        }
        for (i, &id) in ids.iter().enumerate() {
            let offset = first + i as Offset;
            let at = log.records().get(offset as usize).map(|r| r.id);
            if at != Some(id) {
                return Err(format!("leader {leader} acknowledged record {id} at {offset}, but its log has {at:?}"));
            }
            self.acknowledged.insert(offset, id);
        }
        Ok(())
    }

    /// An acks=1 batch was answered with success.
    pub(crate) fn on_acknowledged_leader(
        &self,
        leader: NodeId,
        log: &SimLog,
        first: Offset,
        ids: &[u64],
    ) -> Result<(), String> {
        for (i, &id) in ids.iter().enumerate() {
            let offset = (first as usize) + i;
            if log.durable_records().get(offset).map(|r| r.id) != Some(id) {
                return Err(format!("leader {leader} answered acks=1 for record {id} at {offset}, not on its disk"));
            }
        }
        Ok(())
    }

    /// `node` starts leading: it must hold every acknowledged record.
    pub(crate) fn on_become_leader(&self, node: NodeId, epoch: LeaderEpoch, log: &SimLog) -> Result<(), String> {
        for (&offset, &id) in &self.acknowledged {
            let at = log.records().get(offset as usize).map(|r| r.id);
            if at != Some(id) {
                return Err(format!(
                    "node {node} leads epoch {epoch} without acknowledged record {id} at {offset} (has {at:?})"
                ));
            }
        }
        Ok(())
    }
}
