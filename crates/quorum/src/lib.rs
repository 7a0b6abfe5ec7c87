//! The KRaft-style metadata quorum: Raft (openraft `=0.9.25`, one leader
//! per term, so a term is a KRaft leader epoch) replicating the cluster
//! metadata log between controllers, with brokers as observers.
//!
//! ```text
//!  broker ──propose / describe / add_voter──▶ Quorum (quorum.rs) ──forward──▶ leader's Quorum
//!                                              │  openraft::Raft
//!                 ┌────────────────────────────┼──────────────────────────────┐
//!                 ▼                            ▼                              ▼
//!   storage::adapter::LogAdapter   storage::adapter::MachineAdapter    net::NetworkFactory
//!     over storage::LogStore         over storage::MachineStore          over net::Transport
//!     (memory::MemLog | metadata     (memory::MemMachine | metadata      (net::tcp | sim::SimNet)
//!      crate's MetadataLog)           crate's MetadataStateMachine)
//!                                              │
//!                                              └──▶ Applied events, in log order ──▶ broker's reconciler
//! ```
//!
//! - [`quorum`]: [`quorum::Quorum`] and the [`quorum::MetadataQuorum`]
//!   operations the broker calls; forwarding of leader-only operations.
//! - [`storage`]: the seam a durable log and state machine implement, the
//!   openraft adapters (an append is acknowledged only after its fsync),
//!   and the simulator's in-memory disk that loses unflushed writes.
//! - [`net`]: controller messages (cluster id and static voters in every
//!   envelope), length-prefixed versioned frames, the TCP transport (bound
//!   to the node's own host) and listener.
//! - `voters` (private): membership changes on the leader: observers
//!   joining or moving, KIP-853 voter changes one at a time with Kafka's
//!   refusals ([`VoterRefusal`]).
//! - [`election`]: when a voter campaigns (openraft's own timer is off):
//!   Kafka's fetch and election timeouts, a leader check before an
//!   election, randomized back-off.
//! - [`timing`]: Kafka's `controller.quorum.*` timeouts and what each
//!   becomes in openraft's configuration.
//! - [`config`]: Kafka's KRaft settings, checked.
//! - [`describe`]: what DescribeQuorum (API 55) reports.
//! - [`sim`]: the seeded in-process network and test application behind
//!   `tests/sim.rs`.
//! - [`runtime`]: tokio for openraft, with a seedable random generator.
//!
//! `docs/design/metadata-quorum.md` gives the design and its reasons.

pub mod config;
pub mod describe;
pub mod election;
pub mod net;
pub mod quorum;
pub mod runtime;
pub mod sim;
pub mod storage;
pub mod timing;
pub mod types;
mod voters;

pub use describe::{QuorumDescription, ReplicaState};
pub use quorum::{MetadataQuorum, Quorum, QuorumError, QuorumOptions, RpcHandler, Timing, VoterRefusal, Voters};
pub use types::{Applied, LogId, NodeId, QuorumApp};
