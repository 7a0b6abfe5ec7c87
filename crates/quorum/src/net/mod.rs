//! The controller network: messages ([`message`]), their framing on a
//! socket ([`frame`]), the TCP transport and listener ([`tcp`]), and
//! openraft's `RaftNetworkFactory` over any [`Transport`] (the simulator
//! plugs its in-process network in here).

pub mod frame;
pub mod message;
pub mod tcp;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use openraft::error::{InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, VoteRequest,
    VoteResponse,
};

use crate::describe::ReplicaTracker;
use crate::types::{Member, NodeId, QuorumApp, QuorumTypes};
use message::{Envelope, Request, Response};

/// A boxed future, for transports behind a trait object.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// Why a call got no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    /// Certainly not delivered (no connection, backing off after failures):
    /// safe to send again, even a proposal.
    #[error("not sent: {0}")]
    NotSent(String),
    /// Sent, but no answer (timeout, connection lost): the addressee may
    /// have acted on it.
    #[error("no answer: {0}")]
    NoAnswer(String),
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
}

impl<A: QuorumApp> std::fmt::Debug for NetworkFactory<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetworkFactory").field("sender", &self.sender).finish_non_exhaustive()
    }
}

impl<A: QuorumApp> NetworkFactory<A> {
    /// A factory sending through `transport`.
    pub fn new(sender: Sender, transport: Arc<dyn Transport<A>>, tracker: Arc<ReplicaTracker>) -> NetworkFactory<A> {
        NetworkFactory { sender, transport, tracker }
    }
}

impl<A: QuorumApp> RaftNetworkFactory<QuorumTypes<A>> for NetworkFactory<A> {
    type Network = Connection<A>;

    async fn new_client(&mut self, target: NodeId, node: &Member) -> Connection<A> {
        Connection {
            sender: self.sender.clone(),
            transport: self.transport.clone(),
            tracker: self.tracker.clone(),
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
    target: NodeId,
    address: String,
}

impl<A: QuorumApp> std::fmt::Debug for Connection<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection").field("target", &self.target).field("address", &self.address).finish()
    }
}

/// A transport failure or refusal as openraft's "retry later" error.
fn network_error<E: std::error::Error>(message: String) -> RPCError<NodeId, Member, E> {
    RPCError::Network(NetworkError::new(&TransportError::NoAnswer(message)))
}

impl<A: QuorumApp> Connection<A> {
    async fn call(&self, body: Request<A>, option: &RPCOption) -> Result<Response<A>, String> {
        let kind = body.kind();
        let envelope = self.sender.envelope(self.target, body);
        match self.transport.call(self.target, &self.address, envelope, option.hard_ttl()).await {
            Ok(Response::Refused(reason)) => {
                tracing::warn!(target_node = self.target, address = %self.address, %reason, "controller refused {kind}");
                self.tracker.record_refusal(&reason);
                Err(format!("node {} refused {kind}: {reason}", self.target))
            }
            Ok(response) => Ok(response),
            Err(e) => Err(format!("{kind} to node {} at {}: {e}", self.target, self.address)),
        }
    }
}

impl<A: QuorumApp> RaftNetwork<QuorumTypes<A>> for Connection<A> {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<QuorumTypes<A>>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, Member, RaftError<NodeId>>> {
        let acked = rpc.entries.last().map(|e| e.log_id.index).or(rpc.prev_log_id.map(|p| p.index));
        match self.call(Request::AppendEntries(rpc), &option).await.map_err(network_error)? {
            Response::AppendEntries(Ok(response)) => {
                if matches!(response, AppendEntriesResponse::Success) {
                    self.tracker.record_ack(self.target, acked);
                }
                Ok(response)
            }
            Response::AppendEntries(Err(e)) => Err(RPCError::RemoteError(RemoteError::new(self.target, e))),
            other => Err(network_error(format!("unexpected answer to AppendEntries: {other:?}"))),
        }
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<QuorumTypes<A>>,
        option: RPCOption,
    ) -> Result<InstallSnapshotResponse<NodeId>, RPCError<NodeId, Member, RaftError<NodeId, InstallSnapshotError>>>
    {
        match self.call(Request::InstallSnapshot(rpc), &option).await.map_err(network_error)? {
            Response::InstallSnapshot(Ok(response)) => Ok(response),
            Response::InstallSnapshot(Err(e)) => Err(RPCError::RemoteError(RemoteError::new(self.target, e))),
            other => Err(network_error(format!("unexpected answer to InstallSnapshot: {other:?}"))),
        }
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, Member, RaftError<NodeId>>> {
        match self.call(Request::Vote(rpc), &option).await.map_err(network_error)? {
            Response::Vote(Ok(response)) => Ok(response),
            Response::Vote(Err(e)) => Err(RPCError::RemoteError(RemoteError::new(self.target, e))),
            other => Err(network_error(format!("unexpected answer to Vote: {other:?}"))),
        }
    }
}
