//! The deterministic tier's pieces: a seeded random generator, an
//! in-process controller network that drops, delays (and so reorders) and
//! partitions messages, and a tiny application whose state is the list of
//! every command it applied (so "same state" means "same commands in the
//! same order").
//!
//! Run under tokio's current-thread runtime with paused time, everything
//! that happens is a function of the seed: openraft's election timeouts
//! come from [`crate::runtime::seed_thread_rng`], the network's choices
//! from [`SimRng`], and time only moves when every task waits.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::net::message::{Envelope, Response, UNKNOWN_NODE};
use crate::net::{BoxFuture, Transport, TransportError};
use crate::quorum::RpcHandler;
use crate::storage::StoreError;
use crate::storage::memory::Machine;
use crate::types::{LogId, NodeId, QuorumApp};

/// SplitMix64: small, fast, seedable.
#[derive(Debug, Clone)]
pub struct SimRng(u64);

impl SimRng {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> SimRng {
        SimRng(seed)
    }

    /// 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }

    /// A number in `lo..=hi`.
    pub fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi.saturating_sub(lo) + 1)
    }

    /// True with probability `per_mille` / 1000.
    pub fn chance(&mut self, per_mille: u64) -> bool {
        self.below(1000) < per_mille
    }
}

/// The simulator's application: commands are unique numbers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SimApp;

impl QuorumApp for SimApp {
    type Command = u64;
    /// How many commands were applied before this one.
    type Outcome = u64;
}

/// Every applied command by log index.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimMachine {
    /// Log index → command.
    pub applied: BTreeMap<u64, u64>,
}

impl Machine<SimApp> for SimMachine {
    fn apply(&mut self, log_id: LogId, command: &u64) -> u64 {
        let before = self.applied.len() as u64;
        self.applied.insert(log_id.index, *command);
        before
    }

    fn to_bytes(&self) -> Result<Vec<u8>, StoreError> {
        serde_json::to_vec(self).map_err(StoreError::new)
    }

    fn from_bytes(bytes: &[u8]) -> Result<SimMachine, StoreError> {
        serde_json::from_slice(bytes).map_err(StoreError::new)
    }
}

/// How the network misbehaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NetFaults {
    /// Each message (request or answer) is lost with this probability, per mille.
    pub drop_per_mille: u64,
    /// Each message takes between these many milliseconds.
    pub delay_ms: (u64, u64),
}

impl Default for NetFaults {
    fn default() -> NetFaults {
        NetFaults { drop_per_mille: 0, delay_ms: (0, 2) }
    }
}

/// Message counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NetStats {
    /// Requests handed to a node.
    pub delivered: u64,
    /// Requests or answers lost (dropped, cut link, node down).
    pub lost: u64,
}

struct NetState<A: QuorumApp> {
    rng: SimRng,
    faults: NetFaults,
    nodes: BTreeMap<NodeId, RpcHandler<A>>,
    /// Every address a node was ever attached at (a bootstrap server is
    /// reached by address alone).
    addresses: BTreeMap<String, NodeId>,
    /// Directed links that carry nothing.
    cut: BTreeSet<(NodeId, NodeId)>,
    stats: NetStats,
}

/// The in-process controller network (clones share it).
pub struct SimNet<A: QuorumApp> {
    state: Arc<Mutex<NetState<A>>>,
}

impl<A: QuorumApp> Clone for SimNet<A> {
    fn clone(&self) -> Self {
        SimNet { state: self.state.clone() }
    }
}

impl<A: QuorumApp> std::fmt::Debug for SimNet<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimNet").finish_non_exhaustive()
    }
}

impl<A: QuorumApp> SimNet<A> {
    /// A network whose choices come from `seed`.
    pub fn new(seed: u64, faults: NetFaults) -> SimNet<A> {
        SimNet {
            state: Arc::new(Mutex::new(NetState {
                rng: SimRng::new(seed),
                faults,
                nodes: BTreeMap::new(),
                addresses: BTreeMap::new(),
                cut: BTreeSet::new(),
                stats: NetStats::default(),
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, NetState<A>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Connects a running node.
    pub fn attach(&self, handler: RpcHandler<A>) {
        let mut s = self.lock();
        s.addresses.insert(handler.address().to_string(), handler.node_id());
        s.nodes.insert(handler.node_id(), handler);
    }

    /// Disconnects a node (it crashed).
    pub fn detach(&self, node: NodeId) {
        self.lock().nodes.remove(&node);
    }

    /// Changes the faults.
    pub fn set_faults(&self, faults: NetFaults) {
        self.lock().faults = faults;
    }

    /// Cuts every link between `group` and the other nodes of `all`, both ways.
    pub fn isolate(&self, group: &BTreeSet<NodeId>, all: &BTreeSet<NodeId>) {
        let mut s = self.lock();
        for a in group {
            for b in all.difference(group) {
                s.cut.insert((*a, *b));
                s.cut.insert((*b, *a));
            }
        }
    }

    /// Restores every link.
    pub fn heal(&self) {
        self.lock().cut.clear();
    }

    /// Message counts so far.
    pub fn stats(&self) -> NetStats {
        self.lock().stats
    }

    /// The transport node `from` sends through.
    pub fn transport(&self, from: NodeId) -> Arc<dyn Transport<A>> {
        Arc::new(SimTransport { net: self.clone(), from })
    }

    /// Whether a message from `from` to `to` gets through, and its delay.
    fn roll(&self, from: NodeId, to: NodeId) -> (bool, Duration) {
        let mut s = self.lock();
        let (lo, hi) = s.faults.delay_ms;
        let delay = Duration::from_millis(s.rng.between(lo, hi));
        let drop = s.faults.drop_per_mille;
        let through = !s.rng.chance(drop) && !s.cut.contains(&(from, to));
        if !through {
            s.stats.lost += 1;
        }
        (through, delay)
    }

    fn both_up(&self, a: NodeId, b: NodeId) -> bool {
        let s = self.lock();
        s.nodes.contains_key(&a) && s.nodes.contains_key(&b)
    }

    fn handler(&self, from: NodeId, to: NodeId) -> Option<RpcHandler<A>> {
        let mut s = self.lock();
        if s.cut.contains(&(from, to)) {
            s.stats.lost += 1;
            return None;
        }
        let handler = s.nodes.get(&to).cloned();
        match handler {
            Some(_) => s.stats.delivered += 1,
            None => s.stats.lost += 1,
        }
        handler
    }
}

struct SimTransport<A: QuorumApp> {
    net: SimNet<A>,
    from: NodeId,
}

impl<A: QuorumApp> Transport<A> for SimTransport<A> {
    fn call(
        &self,
        target: NodeId,
        address: &str,
        request: Envelope<A>,
        timeout: Duration,
    ) -> BoxFuture<Result<Response<A>, TransportError>> {
        let net = self.net.clone();
        let from = self.from;
        let target = match target {
            UNKNOWN_NODE => net.lock().addresses.get(address).copied().unwrap_or(UNKNOWN_NODE),
            known => known,
        };
        Box::pin(async move {
            if !net.lock().nodes.contains_key(&from) {
                // A crashed node's leftover tasks send nothing.
                return Err(TransportError::NotSent(format!("node {from} is down")));
            }
            if !net.lock().nodes.contains_key(&target) {
                // Connection refused: the node is down.
                tokio::time::sleep(Duration::from_millis(1)).await;
                return Err(TransportError::NotSent(format!("node {target} is down")));
            }
            let exchange = async {
                let (through, delay) = net.roll(from, target);
                tokio::time::sleep(delay).await;
                if !through {
                    return Err(TransportError::NoAnswer("request lost".into()));
                }
                let Some(handler) = net.handler(from, target) else {
                    return Err(TransportError::NoAnswer("request lost".into()));
                };
                let response = handler.handle(request).await;
                if !net.both_up(from, target) {
                    return Err(TransportError::NoAnswer("node went down".into()));
                }
                let (through, delay) = net.roll(target, from);
                tokio::time::sleep(delay).await;
                if !through {
                    return Err(TransportError::NoAnswer("answer lost".into()));
                }
                Ok(response)
            };
            match tokio::time::timeout(timeout, exchange).await {
                Ok(result) => result,
                Err(_) => Err(TransportError::TimedOut("timed out".into())),
            }
        })
    }
}
