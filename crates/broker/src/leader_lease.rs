//! A KRaft broker's lease on its leaderships.
//!
//! The active controller fences a broker whose heartbeats stopped for
//! `broker.session.timeout.ms` and gives its partitions new leaders. A
//! leader cut off from the controller (a network partition, a long pause)
//! does not learn that until it hears from the quorum again, and meanwhile
//! it would still answer ListOffsets and Fetch from its frozen high
//! watermark: a client that was just told a record is committed by the new
//! leader could be told by the old one that the partition ends before it.
//! So a broker leads only while its lease holds: until nine tenths of a
//! session after it *sent* its last heartbeat that the controller answered.
//! The controller received that heartbeat later than it was sent and counts
//! the session from then, so the lease ends before the controller may
//! fence the broker. Past it, the broker's partitions answer
//! NOT_LEADER_OR_FOLLOWER (clients ask for metadata again) until a
//! heartbeat goes through. A single node (no quorum) has no lease.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The lease of one broker process.
#[derive(Debug)]
pub struct LeaderLease {
    origin: Instant,
    /// Milliseconds after `origin` until which this broker may lead.
    until_ms: AtomicU64,
    session: Duration,
}

impl LeaderLease {
    /// A lease not granted yet, for sessions of `session`.
    pub fn new(session: Duration) -> LeaderLease {
        LeaderLease { origin: Instant::now(), until_ms: AtomicU64::new(0), session }
    }

    /// A heartbeat sent at `sent` was answered by the active controller.
    pub fn renew(&self, sent: Instant) {
        let until = sent.saturating_duration_since(self.origin) + self.session.mul_f64(0.9);
        self.until_ms.fetch_max(until.as_millis() as u64, Ordering::Relaxed);
    }

    /// Whether this broker may lead now.
    pub fn holds(&self) -> bool {
        self.holds_at(Instant::now())
    }

    fn holds_at(&self, now: Instant) -> bool {
        (now.saturating_duration_since(self.origin).as_millis() as u64) < self.until_ms.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lease_ends_nine_tenths_of_a_session_after_the_last_answered_heartbeat_was_sent() {
        let lease = LeaderLease::new(Duration::from_millis(1000));
        let t0 = lease.origin + Duration::from_millis(50);
        assert!(!lease.holds_at(t0), "no heartbeat answered yet");
        lease.renew(t0);
        assert!(lease.holds_at(t0 + Duration::from_millis(899)));
        assert!(!lease.holds_at(t0 + Duration::from_millis(900)));
        // An answer to an older heartbeat arriving late never shortens it.
        lease.renew(t0 + Duration::from_millis(500));
        lease.renew(t0);
        assert!(lease.holds_at(t0 + Duration::from_millis(1399)));
        assert!(!lease.holds_at(t0 + Duration::from_millis(1400)));
    }
}
