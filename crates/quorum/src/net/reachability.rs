//! Which peers this node's Raft traffic cannot reach, logged once per
//! change: one warning when a peer becomes unreachable, one line when it
//! answers again, never one per attempt (a leader retries a dead voter
//! several times a second, with back-off, for as long as it is down).
//!
//! A refused or broken connection is reported at once; timeouts only once
//! they have lasted a while, so a slow moment on a busy machine is not a
//! pair of lines every time.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use crate::types::NodeId;

#[derive(Debug, Default)]
struct PeerState {
    /// When the current run of failures began.
    failing_since: Option<Instant>,
    /// Failed attempts in the current run.
    failures: u64,
    /// Whether the run was logged (so its end is too).
    reported: bool,
}

/// Reachability of each peer, shared by every openraft connection of a node.
#[derive(Debug)]
pub struct Reachability {
    peers: Mutex<BTreeMap<NodeId, PeerState>>,
    report_timeouts_after: Duration,
}

/// How a call failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// Refused, reset, closed, or refused by the peer's checks: certain.
    Unreachable,
    /// No answer in time: may be a slow moment.
    TimedOut,
}

impl Reachability {
    /// Timeouts are reported once they have lasted `report_timeouts_after`.
    pub fn new(report_timeouts_after: Duration) -> Reachability {
        Reachability { peers: Mutex::new(BTreeMap::new()), report_timeouts_after }
    }

    /// A call to `node` at `address` failed.
    pub fn failed(&self, node: NodeId, address: &str, kind: FailureKind, reason: &str) {
        let now = Instant::now();
        let mut peers = self.peers.lock().unwrap_or_else(|e| e.into_inner());
        let peer = peers.entry(node).or_default();
        let since = *peer.failing_since.get_or_insert(now);
        peer.failures = peer.failures.saturating_add(1);
        let report = match kind {
            FailureKind::Unreachable => true,
            FailureKind::TimedOut => now.duration_since(since) >= self.report_timeouts_after,
        };
        if report && !peer.reported {
            peer.reported = true;
            tracing::warn!(
                target_node = node,
                %address,
                %reason,
                "controller node {node} is unreachable; retrying with back-off, logged again when it answers"
            );
        }
    }

    /// `node` answered a call.
    pub fn answered(&self, node: NodeId, address: &str) {
        let mut peers = self.peers.lock().unwrap_or_else(|e| e.into_inner());
        let Some(peer) = peers.get_mut(&node) else { return };
        if peer.reported {
            let down = peer.failing_since.map(|s| s.elapsed()).unwrap_or_default();
            tracing::info!(
                target_node = node,
                %address,
                failed_attempts = peer.failures,
                "controller node {node} answers again after {down:?}"
            );
        }
        *peer = PeerState::default();
    }

    /// Whether `node`'s unreachability has been reported and not ended.
    pub fn is_reported_unreachable(&self, node: NodeId) -> bool {
        self.peers.lock().unwrap_or_else(|e| e.into_inner()).get(&node).is_some_and(|p| p.reported)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn refusals_are_reported_at_once_and_timeouts_once_they_last() {
        let r = Reachability::new(Duration::from_millis(600));
        r.failed(2, "a:1", FailureKind::TimedOut, "slow");
        assert!(!r.is_reported_unreachable(2));
        tokio::time::sleep(Duration::from_millis(700)).await;
        r.failed(2, "a:1", FailureKind::TimedOut, "slow");
        assert!(r.is_reported_unreachable(2));
        r.answered(2, "a:1");
        assert!(!r.is_reported_unreachable(2));
        r.failed(3, "b:1", FailureKind::Unreachable, "connection refused");
        assert!(r.is_reported_unreachable(3));
        r.answered(2, "a:1");
    }
}
