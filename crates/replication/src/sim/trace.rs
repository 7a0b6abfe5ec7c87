//! The last events of a run, printed when a seed fails.

use std::collections::VecDeque;

use crate::types::{LeaderEpoch, NodeId, Offset};

/// Events kept.
const TRACE_LEN: usize = 80;

/// Something that happened. The fields are read through `Debug` when a
/// seed fails, which dead-code analysis does not count.
#[allow(dead_code)]
#[derive(Debug, Clone)]
pub(crate) enum Event {
    Crash(NodeId),
    Restart(NodeId),
    Registered { node: NodeId, broker_epoch: i64 },
    Fenced(NodeId),
    Unfenced(NodeId),
    Partition(String),
    Heal,
    TimeJump(u64),
    Pause { node: NodeId, ms: u64 },
    Lost { from: String, to: String, what: &'static str },
    Dropped,
    Flush { node: NodeId, durable: Offset },
    Produce { node: NodeId, epoch: LeaderEpoch, all: bool, first: Offset, last: Offset },
    Refused { node: NodeId, why: String },
    Ack { batch: u64, result: String },
    Role { node: NodeId, leader: NodeId, leader_epoch: LeaderEpoch, isr: Vec<NodeId>, change: String },
    AlterPartition { leader: NodeId, isr: Vec<NodeId>, result: String },
    Follower { node: NodeId, event: String },
    HighWatermark { node: NodeId, hw: Offset },
}

/// A ring of the latest events.
#[derive(Debug, Default)]
pub(crate) struct Trace {
    events: VecDeque<(u64, Event)>,
}

impl Trace {
    pub(crate) fn push(&mut self, now_ms: u64, event: Event) {
        if self.events.len() == TRACE_LEN {
            self.events.pop_front();
        }
        self.events.push_back((now_ms, event));
    }

    pub(crate) fn render(&self) -> String {
        self.events.iter().map(|(t, e)| format!("    t={t:>6} {e:?}\n")).collect()
    }
}
