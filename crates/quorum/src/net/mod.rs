//! The controller network: messages ([`message`]), their framing on a
//! socket ([`frame`]), the TCP transport and listener ([`tcp`]), and
//! openraft's `RaftNetworkFactory` over any [`Transport`] (the simulator
//! plugs its in-process network in here).
//!
//! A peer that cannot be reached (connection refused or reset, a refusal
//! by its checks) is openraft's `Unreachable`: openraft's replication to it
//! then waits out [`RaftNetwork::backoff`] (the reconnect back-off of
//! `timing.rs`, doubling up to F/3) instead of retrying at once, which
//! without it meant thousands of attempts a second to a dead voter. The
//! back-off ends with the first answer. [`reachability`] logs the change,
//! not the attempts. A timeout stays openraft's `Network` error (retried at
//! once): each attempt already took the timeout.

pub mod frame;
pub mod message;
pub mod reachability;
pub mod tcp;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use openraft::error::{InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable};
use openraft::network::{Backoff, RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, VoteRequest,
    VoteResponse,
};

use crate::describe::ReplicaTracker;
use crate::election::ElectionSignals;
use crate::timing::ExponentialBackoff;
use crate::types::{Member, NodeId, QuorumApp, QuorumTypes};
use message::{Envelope, Request, Response};
use reachability::{FailureKind, Reachability};

/// A boxed future, for transports behind a trait object.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// Why a call got no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    /// Certainly not delivered (no connection, backing off after failures):
    /// safe to send again, even a proposal.
    #[error("not sent: {0}")]
    NotSent(String),
    /// Sent, but the connection failed before an answer (closed, reset):
    /// the addressee may have acted on it.
    #[error("no answer: {0}")]
    NoAnswer(String),
    /// Sent, and no answer within the timeout: the addressee may have
    /// acted on it.
    #[error("no answer in time: {0}")]
    TimedOut(String),
}

/// Sends a request to a node and waits for its answer.
pub trait Transport<A: QuorumApp>: Send + Sync + 'static {
    /// Calls `target` at `address` (its controller listener) and waits at
    /// most `timeout` for the answer.
    fn call(
        &self,
        target: NodeId,
        address: &str,
        request: Envelope<A>,
        timeout: Duration,
    ) -> BoxFuture<Result<Response<A>, TransportError>>;
}

/// What every envelope this node sends carries.
#[derive(Debug, Clone)]
pub struct Sender {
    /// The cluster id.
    pub cluster_id: String,
    /// This node.
    pub node_id: NodeId,
    /// The normalized static voters, if configured.
    pub voters: Option<String>,
}

impl Sender {
    /// An envelope for `body` to `to`.
    pub fn envelope<A: QuorumApp>(&self, to: NodeId, body: Request<A>) -> Envelope<A> {
        Envelope { cluster_id: self.cluster_id.clone(), from: self.node_id, to, voters: self.voters.clone(), body }
    }
}

/// openraft's network factory over a [`Transport`].
pub struct NetworkFactory<A: QuorumApp> {
    sender: Sender,
    transport: Arc<dyn Transport<A>>,
    tracker: Arc<ReplicaTracker>,
    election: Arc<ElectionSignals>,
    reachability: Arc<Reachability>,
    backoff: (Duration, Duration),
}

impl<A: QuorumApp> std::fmt::Debug for NetworkFactory<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetworkFactory").field("sender", &self.sender).finish_non_exhaustive()
    }
}

impl<A: QuorumApp> NetworkFactory<A> {
    /// A factory sending through `transport`; an unreachable peer is
    /// retried after `backoff.0`, doubling up to `backoff.1`.
    pub fn new(
        sender: Sender,
        transport: Arc<dyn Transport<A>>,
        tracker: Arc<ReplicaTracker>,
        election: Arc<ElectionSignals>,
        backoff: (Duration, Duration),
    ) -> NetworkFactory<A> {
        // Timeouts are logged once they last longer than the back-off's cap
        // lets a dead peer go unnoticed.
        let reachability = Arc::new(Reachability::new(backoff.1 * 3));
        NetworkFactory { sender, transport, tracker, election, reachability, backoff }
    }
}

impl<A: QuorumApp> RaftNetworkFactory<QuorumTypes<A>> for NetworkFactory<A> {
    type Network = Connection<A>;

    async fn new_client(&mut self, target: NodeId, node: &Member) -> Connection<A> {
        Connection {
            sender: self.sender.clone(),
            transport: self.transport.clone(),
            tracker: self.tracker.clone(),
            election: self.election.clone(),
            reachability: self.reachability.clone(),
            backoff: self.backoff,
            target,
            address: node.addr.clone(),
        }
    }
}

/// openraft's view of the way to one node.
pub struct Connection<A: QuorumApp> {
    sender: Sender,
    transport: Arc<dyn Transport<A>>,
    tracker: Arc<ReplicaTracker>,
    election: Arc<ElectionSignals>,
    reachability: Arc<Reachability>,
    backoff: (Duration, Duration),
    target: NodeId,
    address: String,
}

impl<A: QuorumApp> std::fmt::Debug for Connection<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection").field("target", &self.target).field("address", &self.address).finish()
    }
}

/// Why a call got no usable answer.
#[derive(Debug)]
struct Failure {
    kind: FailureKind,
    message: String,
}

impl Failure {
    /// As openraft's error: `Unreachable` (back off) or `Network` (retry).
    fn into_rpc<E: std::error::Error>(self) -> RPCError<NodeId, Member, E> {
        match self.kind {
            FailureKind::Unreachable => RPCError::Unreachable(Unreachable::new(&TransportError::NotSent(self.message))),
            FailureKind::TimedOut => RPCError::Network(NetworkError::new(&TransportError::TimedOut(self.message))),
        }
    }
}

/// An answer of the wrong kind: a peer of another version, most likely.
fn unexpected<E: std::error::Error>(what: &str, answer: &impl std::fmt::Debug) -> RPCError<NodeId, Member, E> {
    RPCError::Unreachable(Unreachable::new(&TransportError::NotSent(format!(
        "unexpected answer to {what}: {answer:?}"
    ))))
}

impl<A: QuorumApp> Connection<A> {
    async fn call(&self, body: Request<A>, option: &RPCOption) -> Result<Response<A>, Failure> {
        let kind = body.kind();
        let envelope = self.sender.envelope(self.target, body);
        let failure = match self.transport.call(self.target, &self.address, envelope, option.hard_ttl()).await {
            Ok(Response::Refused(reason)) => {
                self.tracker.record_refusal(&reason);
                Failure {
                    kind: FailureKind::Unreachable,
                    message: format!("node {} refused {kind}: {reason}", self.target),
                }
            }
            Ok(response) => {
                self.reachability.answered(self.target, &self.address);
                return Ok(response);
            }
            Err(e @ TransportError::TimedOut(_)) => {
                Failure { kind: FailureKind::TimedOut, message: format!("{kind} to node {}: {e}", self.target) }
            }
            Err(e @ (TransportError::NotSent(_) | TransportError::NoAnswer(_))) => {
                Failure { kind: FailureKind::Unreachable, message: format!("{kind} to node {}: {e}", self.target) }
            }
        };
        self.reachability.failed(self.target, &self.address, failure.kind, &failure.message);
        Err(failure)
    }
}

impl<A: QuorumApp> RaftNetwork<QuorumTypes<A>> for Connection<A> {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<QuorumTypes<A>>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, Member, RaftError<NodeId>>> {
        let acked = rpc.entries.last().map(|e| e.log_id.index).or(rpc.prev_log_id.map(|p| p.index));
        match self.call(Request::AppendEntries(rpc), &option).await.map_err(Failure::into_rpc)? {
            Response::AppendEntries(Ok(response)) => {
                if !matches!(response, AppendEntriesResponse::HigherVote(_)) {
                    self.tracker.record_heard(self.target);
                }
                if matches!(response, AppendEntriesResponse::Success) {
                    self.tracker.record_ack(self.target, acked);
                }
                Ok(response)
            }
            Response::AppendEntries(Err(e)) => Err(RPCError::RemoteError(RemoteError::new(self.target, e))),
            other => Err(unexpected("AppendEntries", &other)),
        }
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<QuorumTypes<A>>,
        option: RPCOption,
    ) -> Result<InstallSnapshotResponse<NodeId>, RPCError<NodeId, Member, RaftError<NodeId, InstallSnapshotError>>>
    {
        let vote = rpc.vote;
        match self.call(Request::InstallSnapshot(rpc), &option).await.map_err(Failure::into_rpc)? {
            Response::InstallSnapshot(Ok(response)) => {
                if response.vote == vote {
                    self.tracker.record_heard(self.target);
                }
                Ok(response)
            }
            Response::InstallSnapshot(Err(e)) => Err(RPCError::RemoteError(RemoteError::new(self.target, e))),
            other => Err(unexpected("InstallSnapshot", &other)),
        }
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, Member, RaftError<NodeId>>> {
        let ours = rpc.last_log_id;
        match self.call(Request::Vote(rpc), &option).await.map_err(Failure::into_rpc)? {
            Response::Vote(Ok(response)) => {
                if !response.vote_granted && response.last_log_id > ours {
                    self.election.saw_longer_log();
                }
                Ok(response)
            }
            Response::Vote(Err(e)) => Err(RPCError::RemoteError(RemoteError::new(self.target, e))),
            other => Err(unexpected("Vote", &other)),
        }
    }

    /// openraft waits these out after an `Unreachable` error, until an
    /// answer comes back.
    fn backoff(&self) -> Backoff {
        Backoff::new(ExponentialBackoff::new(self.backoff.0, self.backoff.1))
    }
}
