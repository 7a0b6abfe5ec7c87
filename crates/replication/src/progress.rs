//! What a leader knows of one follower, from its fetches (Kafka's
//! `ReplicaState`): its position, when it last caught up, and the broker
//! epoch it fetched with.
//!
//! **Position.** The fetch offset of the follower's latest fetch, which by
//! Tributary's rule is its durable log end: every offset below it is
//! fsynced on the follower. The high watermark is the minimum position over
//! the ISR, so it only ever covers data on the disk of every ISR member.
//!
//! **Caught up** (Kafka's `lastCaughtUpTimeMs` rule): a fetch at or past the
//! leader's log end offset catches the follower up *now*; a fetch at or
//! past the log end offset the leader had at the follower's *previous* fetch
//! caught it up as of that previous fetch. So a follower of a partition
//! that receives a steady trickle of appends, always one fetch behind, still
//! counts as caught up.

use crate::types::{BrokerEpoch, Offset};

/// A position the leader has not heard yet.
pub const UNKNOWN_OFFSET: Offset = -1;

/// One follower, as its leader sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FollowerProgress {
    /// Its durable log end, from its latest fetch ([`UNKNOWN_OFFSET`] before one).
    pub position: Offset,
    /// The leader's log end offset at the follower's previous fetch.
    pub last_fetch_leader_log_end: Offset,
    /// When that previous fetch arrived.
    pub last_fetch_ms: u64,
    /// The latest time the follower was caught up (0: never).
    pub last_caught_up_ms: u64,
    /// The broker epoch its latest fetch carried.
    pub broker_epoch: Option<BrokerEpoch>,
}

impl FollowerProgress {
    /// A follower the leader has heard nothing from; an ISR member counts as
    /// caught up now, so it has a full lag period to fetch (Kafka's reset on
    /// becoming leader).
    pub fn new(now_ms: u64, in_isr: bool) -> FollowerProgress {
        FollowerProgress {
            position: UNKNOWN_OFFSET,
            last_fetch_leader_log_end: UNKNOWN_OFFSET,
            last_fetch_ms: 0,
            last_caught_up_ms: if in_isr { now_ms } else { 0 },
            broker_epoch: None,
        }
    }

    /// Kept when the same replica leads again in a new epoch: the position
    /// stays, the catch-up clock restarts from the new epoch's start.
    pub fn reset_for_new_epoch(&mut self, now_ms: u64, epoch_start_offset: Offset, in_isr: bool) {
        self.last_fetch_leader_log_end = epoch_start_offset;
        self.last_fetch_ms = if in_isr { now_ms } else { 0 };
        self.last_caught_up_ms = if in_isr { now_ms } else { 0 };
    }

    /// Records a fetch at `fetch_offset` received at `now_ms`, when the
    /// leader's log ended at `leader_log_end`.
    pub fn record_fetch(
        &mut self,
        fetch_offset: Offset,
        now_ms: u64,
        leader_log_end: Offset,
        broker_epoch: BrokerEpoch,
    ) {
        if fetch_offset >= leader_log_end {
            self.last_caught_up_ms = self.last_caught_up_ms.max(now_ms);
        } else if fetch_offset >= self.last_fetch_leader_log_end {
            self.last_caught_up_ms = self.last_caught_up_ms.max(self.last_fetch_ms);
        }
        self.position = fetch_offset;
        self.last_fetch_leader_log_end = self.last_fetch_leader_log_end.max(leader_log_end);
        self.last_fetch_ms = now_ms;
        self.broker_epoch = Some(broker_epoch);
    }

    /// Whether the follower is in sync: at the leader's log end, or caught
    /// up within the last `lag_max_ms`.
    pub fn is_caught_up(&self, leader_log_end: Offset, now_ms: u64, lag_max_ms: u64) -> bool {
        self.position == leader_log_end || now_ms.saturating_sub(self.last_caught_up_ms) <= lag_max_ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_follower_one_fetch_behind_a_trickle_stays_caught_up() {
        let mut p = FollowerProgress::new(0, true);
        p.record_fetch(0, 100, 10, 1); // leader at 10
        assert_eq!(p.last_caught_up_ms, 0, "0 < 10 and no previous fetch to have reached");
        p.record_fetch(10, 200, 12, 1); // reached what the leader had at 100
        assert_eq!(p.last_caught_up_ms, 100);
        p.record_fetch(12, 300, 12, 1); // reached the log end now
        assert_eq!(p.last_caught_up_ms, 300);
        assert!(p.is_caught_up(20, 350, 100));
        assert!(!p.is_caught_up(20, 401, 100));
        assert!(p.is_caught_up(12, 10_000, 100), "at the log end, however long ago");
    }

    #[test]
    fn a_new_leader_gives_isr_members_a_full_lag_period() {
        let p = FollowerProgress::new(1_000, true);
        assert!(p.is_caught_up(50, 1_100, 100));
        assert!(!p.is_caught_up(50, 1_101, 100));
        assert!(!FollowerProgress::new(1_000, false).is_caught_up(50, 1_000, 100));
    }
}
