//! What Kafka's DescribeQuorum (API 55) reports, and the leader-side
//! bookkeeping behind it.
//!
//! Offsets follow Kafka's convention: an offset is one past the last entry,
//! so a log whose last entry has Raft index `i` has log end offset `i + 1`,
//! and the high watermark is the committed index + 1. `-1` means unknown.
//! Timestamps are milliseconds since the Unix epoch, `-1` when never.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::types::NodeId;

/// One replica's progress as the leader sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaState {
    /// Node id.
    pub replica_id: NodeId,
    /// Its controller listener (`host:port`).
    pub address: String,
    /// One past the last entry the leader knows it holds; -1 if unknown.
    pub log_end_offset: i64,
    /// When it last fetched (acknowledged an AppendEntries); -1 if never.
    pub last_fetch_timestamp: i64,
    /// When it last acknowledged everything the leader had; -1 if never.
    pub last_caught_up_timestamp: i64,
}

/// The quorum's state, as the leader reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuorumDescription {
    /// The leader.
    pub leader_id: NodeId,
    /// The leader epoch (Raft term).
    pub leader_epoch: u64,
    /// Committed index + 1.
    pub high_watermark: i64,
    /// Voters, in node id order (the leader among them).
    pub voters: Vec<ReplicaState>,
    /// Observers (learners), in node id order.
    pub observers: Vec<ReplicaState>,
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[derive(Debug, Clone, Copy, Default)]
struct Progress {
    last_fetch_ms: Option<i64>,
    last_caught_up_ms: Option<i64>,
}

/// Fetch times the leader's network records as followers acknowledge.
#[derive(Debug, Default)]
pub struct ReplicaTracker {
    progress: Mutex<BTreeMap<NodeId, Progress>>,
    /// The leader's last log index + 1 (0: none), kept current from metrics.
    leader_log_end: AtomicU64,
    /// The last refusal another node sent this one (another cluster id,
    /// other static voters), for the broker to report.
    last_refusal: Mutex<Option<String>>,
    /// When each node last answered a replication request of this node's
    /// (runtime clock: paused time in the simulator), for leader checks.
    heard: Mutex<BTreeMap<NodeId, tokio::time::Instant>>,
}

impl ReplicaTracker {
    /// Records a successful AppendEntries acknowledgement from `node`
    /// holding the log up to `acked_index`.
    pub fn record_ack(&self, node: NodeId, acked_index: Option<u64>) {
        let now = now_ms();
        let end = self.leader_log_end.load(Ordering::Relaxed);
        let caught_up = acked_index.map_or(end == 0, |i| i + 1 >= end);
        let mut progress = self.progress.lock().unwrap_or_else(|e| e.into_inner());
        let p = progress.entry(node).or_default();
        p.last_fetch_ms = Some(now);
        if caught_up {
            p.last_caught_up_ms = Some(now);
        }
    }

    /// Records that `node` answered a replication request (any answer but
    /// "your term is over").
    pub fn record_heard(&self, node: NodeId) {
        self.heard.lock().unwrap_or_else(|e| e.into_inner()).insert(node, tokio::time::Instant::now());
    }

    /// The nodes heard from at `since` or later.
    pub fn heard_from_since(&self, since: tokio::time::Instant) -> BTreeSet<NodeId> {
        let heard = self.heard.lock().unwrap_or_else(|e| e.into_inner());
        heard.iter().filter(|(_, at)| **at >= since).map(|(id, _)| *id).collect()
    }

    /// Sets the leader's log end (last index + 1).
    pub fn set_leader_log_end(&self, end: u64) {
        self.leader_log_end.store(end, Ordering::Relaxed);
    }

    /// Remembers why another node refused this one.
    pub fn record_refusal(&self, reason: &str) {
        *self.last_refusal.lock().unwrap_or_else(|e| e.into_inner()) = Some(reason.to_string());
    }

    /// The last refusal another node sent, if any.
    pub fn last_refusal(&self) -> Option<String> {
        self.last_refusal.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// `(last fetch, last caught up)` of `node`, -1 for never.
    pub fn times(&self, node: NodeId) -> (i64, i64) {
        let progress = self.progress.lock().unwrap_or_else(|e| e.into_inner());
        let p = progress.get(&node).copied().unwrap_or_default();
        (p.last_fetch_ms.unwrap_or(-1), p.last_caught_up_ms.unwrap_or(-1))
    }
}
