//! Produce requests a leader has appended and not yet answered, and the
//! rules that answer them (Kafka's delayed produce, decided here so the
//! broker only delivers the outcomes).
//!
//! - acks=all succeeds once the high watermark is past the batch's last
//!   offset while the ISR still has `min.insync.replicas` members; it fails
//!   with NOT_ENOUGH_REPLICAS_AFTER_APPEND as soon as the committed ISR
//!   drops below `min.insync.replicas` while it waits (the batch stays in
//!   the log and may still be committed later; the producer retries and
//!   idempotence removes the duplicate).
//! - acks=1 succeeds once the leader's durable offset is past the batch
//!   (Tributary answers acks=1 from the leader's disk, not its page cache).
//! - Either fails with NOT_LEADER_OR_FOLLOWER when the replica stops
//!   leading, and with REQUEST_TIMED_OUT at its deadline.

use crate::types::Offset;

/// Identifies a waiting produce request (chosen by the broker).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AckId(pub u64);

/// The acknowledgement a producer asked for (acks=0 waits for nothing and
/// is not tracked).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acks {
    /// acks=1: the leader's own log, fsynced.
    Leader,
    /// acks=all (-1): committed, so fsynced on every in-sync replica.
    All,
}

/// Why a produce request failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProduceError {
    /// NOT_LEADER_OR_FOLLOWER.
    NotLeaderOrFollower,
    /// NOT_ENOUGH_REPLICAS: refused before the append (acks=all only).
    NotEnoughReplicas,
    /// NOT_ENOUGH_REPLICAS_AFTER_APPEND: appended, but the ISR shrank below
    /// `min.insync.replicas` before it was committed.
    NotEnoughReplicasAfterAppend,
    /// REQUEST_TIMED_OUT.
    RequestTimedOut,
}

/// A produce request's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AckOutcome {
    /// Which request.
    pub id: AckId,
    /// Success, or why not.
    pub result: Result<(), ProduceError>,
}

#[derive(Debug, Clone)]
struct Waiting {
    id: AckId,
    acks: Acks,
    last_offset: Offset,
    deadline_ms: u64,
}

/// The waiting requests of one leader.
#[derive(Debug, Clone, Default)]
pub(crate) struct PendingAcks {
    waiting: Vec<Waiting>,
}

impl PendingAcks {
    pub(crate) fn push(&mut self, id: AckId, acks: Acks, last_offset: Offset, deadline_ms: u64) {
        self.waiting.push(Waiting { id, acks, last_offset, deadline_ms });
    }

    pub(crate) fn len(&self) -> usize {
        self.waiting.len()
    }

    /// Answers what the offsets now allow: acks=1 below `durable_offset`;
    /// acks=all below `high_watermark`, successfully when `enough_isr`.
    pub(crate) fn complete(
        &mut self,
        high_watermark: Offset,
        durable_offset: Offset,
        enough_isr: bool,
        out: &mut Vec<AckOutcome>,
    ) {
        self.waiting.retain(|w| {
            let result = match w.acks {
                Acks::Leader if w.last_offset < durable_offset => Ok(()),
                Acks::All if w.last_offset < high_watermark && enough_isr => Ok(()),
                Acks::All if w.last_offset < high_watermark => Err(ProduceError::NotEnoughReplicasAfterAppend),
                _ => return true,
            };
            out.push(AckOutcome { id: w.id, result });
            false
        });
    }

    /// Fails every acks=all request (the ISR dropped below the minimum).
    pub(crate) fn fail_acks_all(&mut self, error: ProduceError, out: &mut Vec<AckOutcome>) {
        self.waiting.retain(|w| {
            if w.acks != Acks::All {
                return true;
            }
            out.push(AckOutcome { id: w.id, result: Err(error) });
            false
        });
    }

    /// Fails requests whose deadline has passed.
    pub(crate) fn expire(&mut self, now_ms: u64, out: &mut Vec<AckOutcome>) {
        self.waiting.retain(|w| {
            if w.deadline_ms > now_ms {
                return true;
            }
            out.push(AckOutcome { id: w.id, result: Err(ProduceError::RequestTimedOut) });
            false
        });
    }

    /// Fails everything.
    pub(crate) fn fail_all(&mut self, error: ProduceError, out: &mut Vec<AckOutcome>) {
        out.extend(self.waiting.drain(..).map(|w| AckOutcome { id: w.id, result: Err(error) }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_waits_for_its_own_offset() {
        let mut p = PendingAcks::default();
        p.push(AckId(1), Acks::Leader, 4, 100);
        p.push(AckId(2), Acks::All, 4, 100);
        let mut out = Vec::new();
        p.complete(3, 5, true, &mut out);
        assert_eq!(out, vec![AckOutcome { id: AckId(1), result: Ok(()) }]);
        out.clear();
        p.complete(5, 5, false, &mut out);
        assert_eq!(out, vec![AckOutcome { id: AckId(2), result: Err(ProduceError::NotEnoughReplicasAfterAppend) }]);
        assert_eq!(p.len(), 0);
    }

    #[test]
    fn failures_pick_their_requests() {
        let mut p = PendingAcks::default();
        p.push(AckId(1), Acks::Leader, 4, 100);
        p.push(AckId(2), Acks::All, 5, 50);
        let mut out = Vec::new();
        p.fail_acks_all(ProduceError::NotEnoughReplicasAfterAppend, &mut out);
        assert_eq!(out.len(), 1);
        p.push(AckId(3), Acks::All, 6, 50);
        out.clear();
        p.expire(50, &mut out);
        assert_eq!(out, vec![AckOutcome { id: AckId(3), result: Err(ProduceError::RequestTimedOut) }]);
        out.clear();
        p.fail_all(ProduceError::NotLeaderOrFollower, &mut out);
        assert_eq!(out, vec![AckOutcome { id: AckId(1), result: Err(ProduceError::NotLeaderOrFollower) }]);
    }
}
