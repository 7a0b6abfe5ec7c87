//! The quorum a node runs: openraft over our storage seam and controller
//! network, behind the [`MetadataQuorum`] operations the broker calls.
//!
//! Leader-only operations (propose, membership changes, describe) work on
//! every node: a follower or observer forwards them to the leader it knows
//! ([`Forward`]) and, for a proposal, answers only once its own state
//! machine has applied the entry, so the caller's node has reconciled the
//! change when `propose` returns. A forward is sent again only when it
//! certainly was not acted on (the addressee was not the leader, or the
//! connection never opened); once it may have been appended, a lost answer
//! is [`QuorumError::OutcomeUnknown`], never a silent retry that could
//! apply a command twice. With no leader known before the deadline the
//! caller gets [`QuorumError::NotController`] (Kafka's NOT_CONTROLLER).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use openraft::error::{ClientWriteError, RaftError};
use openraft::raft::AppendEntriesResponse;
use openraft::{ServerState, SnapshotPolicy};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::describe::{QuorumDescription, ReplicaState, ReplicaTracker, now_ms};
use crate::election::ElectionSignals;
pub use crate::net::message::VoterRefusal;
use crate::net::message::{Envelope, Forward, ForwardError, ForwardReply, Request, Response, UNKNOWN_NODE};
use crate::net::{NetworkFactory, Sender, Transport, TransportError};
use crate::storage::adapter::{AppliedSink, FlushPolicy, LogAdapter, MachineAdapter};
use crate::storage::{LogStore, MachineStore};
use crate::types::{Applied, LogId, Member, NodeId, QuorumApp, Raft, RaftConfig};

/// Connection losses a slow reader of [`Quorum::connection_losses`] may
/// fall behind by before it is told it lagged.
const CONNECTION_LOSSES_QUEUED: usize = 256;

/// How the voters are known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Voters {
    /// `controller.quorum.voters`: a fixed set, id → `host:port`. A voter
    /// whose log is empty initializes the quorum with exactly this set (every
    /// voter doing so writes the same first entry); a node not in it joins
    /// as an observer.
    Static(BTreeMap<NodeId, String>),
    /// `controller.quorum.bootstrap.servers`: voters live in the log and
    /// change with [`MetadataQuorum::add_voter`] / `remove_voter` (KIP-853).
    /// A node listed in `initial_voters` whose log is empty initializes the
    /// quorum with exactly that set (Kafka's `format --standalone` or
    /// `--initial-controllers`); any other asks a bootstrap server to add it
    /// as an observer, and becomes a voter only through `add_voter`.
    Dynamic {
        /// Addresses to ask.
        bootstrap_servers: Vec<String>,
        /// The first voter set, id → `host:port` (empty: join an existing quorum).
        initial_voters: BTreeMap<NodeId, String>,
    },
}

impl Voters {
    /// The normalized static voter list carried in every envelope
    /// (`1@h:p,2@h:p`, by id), `None` for dynamic voters.
    pub fn fingerprint(&self) -> Option<String> {
        match self {
            Voters::Static(voters) => {
                Some(voters.iter().map(|(id, address)| format!("{id}@{address}")).collect::<Vec<_>>().join(","))
            }
            Voters::Dynamic { .. } => None,
        }
    }
}

pub use crate::timing::Timing;

/// A node's quorum settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumOptions {
    /// `node.id`.
    pub node_id: NodeId,
    /// The cluster id; every message carries it and a node of another
    /// cluster is refused.
    pub cluster_id: String,
    /// This node's controller listener as others reach it (`host:port`).
    pub address: String,
    /// The voters.
    pub voters: Voters,
    /// Timeouts.
    pub timing: Timing,
    /// Entries applied between snapshots.
    pub snapshot_every: u64,
    /// Entries kept in the log behind a snapshot (so a slightly late
    /// follower catches up from the log, not a snapshot).
    pub keep_logs_after_snapshot: u64,
    /// Largest snapshot chunk sent at once.
    pub snapshot_chunk_bytes: u64,
    /// When appends are flushed (immediately outside the simulator).
    pub flush: FlushPolicy,
}

impl QuorumOptions {
    /// Options with production defaults.
    pub fn new(node_id: NodeId, cluster_id: &str, address: &str, voters: Voters) -> QuorumOptions {
        QuorumOptions {
            node_id,
            cluster_id: cluster_id.to_string(),
            address: address.to_string(),
            voters,
            timing: Timing::default(),
            snapshot_every: 1000,
            keep_logs_after_snapshot: 1000,
            snapshot_chunk_bytes: 1024 * 1024,
            flush: FlushPolicy::Immediate,
        }
    }

    /// openraft's configuration (see `timing.rs` for how Kafka's timeouts
    /// map onto it). openraft's own election timer is off: `election.rs`
    /// decides when to campaign.
    fn raft_config(&self) -> Result<RaftConfig, QuorumError> {
        self.timing.validate().map_err(QuorumError::Config)?;
        let millis = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        let lease = millis(self.timing.lease());
        let config = RaftConfig {
            cluster_name: self.cluster_id.clone(),
            heartbeat_interval: millis(self.timing.heartbeat()),
            // Only a Vote request's timeout once the timer is off; openraft
            // wants it below the maximum.
            election_timeout_min: lease - 1,
            // The leader lease: a voter that heard from its leader this
            // recently refuses to vote.
            election_timeout_max: lease,
            enable_elect: false,
            install_snapshot_timeout: millis(self.timing.install_snapshot_timeout()),
            snapshot_policy: SnapshotPolicy::LogsSinceLast(self.snapshot_every),
            max_in_snapshot_log_to_keep: self.keep_logs_after_snapshot,
            snapshot_max_chunk_size: self.snapshot_chunk_bytes,
            purge_batch_size: 1,
            ..RaftConfig::default()
        };
        config.validate().map_err(|e| QuorumError::Config(e.to_string()))
    }
}

/// Why a quorum operation failed. Each `Display` is one line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuorumError {
    /// No leader could be reached before the deadline; nothing was appended.
    #[error("no controller leader answered{}; retry later", leader_hint(*.leader_id, .leader_address))]
    NotController {
        /// The last leader this node heard of.
        leader_id: Option<NodeId>,
        /// Its controller listener.
        leader_address: Option<String>,
    },
    /// The operation may or may not have been committed (the leader was
    /// reached but its answer was lost, or it lost leadership mid-way).
    #[error("the outcome of the metadata change is unknown: {0}")]
    OutcomeUnknown(String),
    /// Committed at `log_id`, but this node has not applied it yet.
    #[error("the metadata change is committed at {log_id} but this node has not applied it yet")]
    NotYetApplied {
        /// Where it is committed.
        log_id: LogId,
    },
    /// The leader refused the operation (an unexpected failure).
    #[error("the controller refused the change: {0}")]
    Rejected(String),
    /// A voter change (KIP-853) was refused for a reason Kafka names.
    #[error("{message}")]
    VoterChange {
        /// Which of Kafka's reasons.
        refusal: VoterRefusal,
        /// One line saying why.
        message: String,
    },
    /// A node refused to talk to this one (another cluster id, other static voters).
    #[error("the controller network refused this node: {0}")]
    Refused(String),
    /// The quorum is shut down, or its Raft stopped on a fatal storage error.
    #[error("the metadata quorum is stopped: {0}")]
    Stopped(String),
    /// Bad settings.
    #[error("metadata quorum configuration: {0}")]
    Config(String),
}

fn leader_hint(id: Option<NodeId>, address: &Option<String>) -> String {
    match (id, address) {
        (Some(id), Some(a)) => format!(" (last known leader: node {id} at {a})"),
        (Some(id), None) => format!(" (last known leader: node {id})"),
        _ => String::new(),
    }
}

/// What the broker calls.
pub trait MetadataQuorum<A: QuorumApp>: Send + Sync {
    /// Appends `command`; on success it is committed and applied on this
    /// node, at the returned log id, with the returned outcome.
    fn propose(
        &self,
        command: A::Command,
    ) -> impl std::future::Future<Output = Result<(LogId, A::Outcome), QuorumError>> + Send;
    /// The leader's view of the quorum (DescribeQuorum).
    fn describe(&self) -> impl std::future::Future<Output = Result<QuorumDescription, QuorumError>> + Send;
    /// Makes `node_id` (reachable at `address`) a voter: it is added as an
    /// observer, caught up, then promoted.
    fn add_voter(
        &self,
        node_id: NodeId,
        address: &str,
    ) -> impl std::future::Future<Output = Result<LogId, QuorumError>> + Send;
    /// Stops `node_id` voting; it stays an observer.
    fn remove_voter(&self, node_id: NodeId) -> impl std::future::Future<Output = Result<LogId, QuorumError>> + Send;
    /// Adds `node_id` as an observer (a broker-only node).
    fn add_observer(
        &self,
        node_id: NodeId,
        address: &str,
    ) -> impl std::future::Future<Output = Result<LogId, QuorumError>> + Send;
    /// Stops this node's part in the quorum.
    fn shutdown(&self) -> impl std::future::Future<Output = ()> + Send;
}

pub(crate) struct Inner<A: QuorumApp> {
    pub(crate) options: QuorumOptions,
    pub(crate) raft: Raft<A>,
    pub(crate) sender: Sender,
    pub(crate) transport: Arc<dyn Transport<A>>,
    pub(crate) tracker: Arc<ReplicaTracker>,
    /// Contact with a live leader, for the election driver.
    pub(crate) election: Arc<ElectionSignals>,
    applied: watch::Receiver<Option<LogId>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    stopped: AtomicBool,
    /// Held by the leader for the whole of one membership change, so
    /// voter changes happen one at a time (KIP-853).
    pub(crate) membership_lock: tokio::sync::Mutex<()>,
    /// This leader removed itself from the voters: it sends no more
    /// heartbeats and takes no more requests, so the voters elect a new
    /// leader (KIP-853: a removed leader resigns). Cleared once it no
    /// longer leads.
    pub(crate) resigning: AtomicBool,
    /// When each broker last heartbeated to this node while it led (the
    /// active controller's liveness table; emptied by nothing, read with
    /// the time this node became leader in mind).
    liveness: Mutex<BTreeMap<NodeId, std::time::Instant>>,
    /// Nodes whose connection to this node's controller listener closed
    /// (a process that dies has every socket closed by its kernel): a
    /// hint for the active controller to check whether it is still there.
    connection_losses: tokio::sync::broadcast::Sender<NodeId>,
}

/// A running quorum member. `M` is the state machine store, shared with
/// readers of the state ([`Quorum::machine`]).
pub struct Quorum<A: QuorumApp, M> {
    inner: Arc<Inner<A>>,
    machine: Arc<Mutex<M>>,
    events: Mutex<Option<mpsc::UnboundedReceiver<Applied<A>>>>,
}

impl<A: QuorumApp, M> std::fmt::Debug for Quorum<A, M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Quorum").field("node_id", &self.inner.options.node_id).finish_non_exhaustive()
    }
}

/// The server side: answers requests from other nodes. Cheap to clone.
pub struct RpcHandler<A: QuorumApp> {
    inner: Arc<Inner<A>>,
}

impl<A: QuorumApp> Clone for RpcHandler<A> {
    fn clone(&self) -> Self {
        RpcHandler { inner: self.inner.clone() }
    }
}

impl<A: QuorumApp> std::fmt::Debug for RpcHandler<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RpcHandler").field("node_id", &self.inner.options.node_id).finish()
    }
}

impl<A: QuorumApp, M: MachineStore<A>> Quorum<A, M> {
    /// Starts this node's Raft on `log` and `machine`, talking through
    /// `transport`, and joins or initializes the quorum as `options.voters`
    /// says. Serve [`Quorum::handler`] on the controller listener.
    pub async fn start<L: LogStore<A>>(
        options: QuorumOptions,
        log: L,
        machine: M,
        transport: Arc<dyn Transport<A>>,
    ) -> Result<Quorum<A, M>, QuorumError> {
        let config = Arc::new(options.raft_config()?);
        let (last_applied, _) = machine.applied_state();
        let machine = Arc::new(Mutex::new(machine));
        let (sink, events, applied) = AppliedSink::new(last_applied);
        let machine_adapter = MachineAdapter::new(machine.clone(), sink);
        let log_adapter = LogAdapter::new(log, options.flush);
        let sender = Sender {
            cluster_id: options.cluster_id.clone(),
            node_id: options.node_id,
            voters: options.voters.fingerprint(),
        };
        let tracker = Arc::new(ReplicaTracker::default());
        let election = Arc::new(ElectionSignals::default());
        let network = NetworkFactory::new(
            sender.clone(),
            transport.clone(),
            tracker.clone(),
            election.clone(),
            options.timing.reconnect_backoff(),
        );
        let raft = Raft::new(options.node_id, config, network, log_adapter, machine_adapter)
            .await
            .map_err(|e| QuorumError::Stopped(e.to_string()))?;

        let inner = Arc::new(Inner {
            options,
            raft,
            sender,
            transport,
            tracker,
            election,
            applied,
            tasks: Mutex::new(Vec::new()),
            stopped: AtomicBool::new(false),
            membership_lock: tokio::sync::Mutex::new(()),
            resigning: AtomicBool::new(false),
            liveness: Mutex::new(BTreeMap::new()),
            connection_losses: tokio::sync::broadcast::channel(CONNECTION_LOSSES_QUEUED).0,
        });
        if let Err(e) = inner.bootstrap().await {
            let _ = inner.raft.shutdown().await;
            return Err(e);
        }
        let quorum = Quorum { inner, machine, events: Mutex::new(Some(events)) };
        quorum.spawn_background();
        Ok(quorum)
    }

    /// The state machine store (lock it to read the applied state).
    pub fn machine(&self) -> &Arc<Mutex<M>> {
        &self.machine
    }
}

impl<A: QuorumApp, M> Quorum<A, M> {
    fn spawn_background(&self) {
        let mut tasks = self.inner.tasks.lock().unwrap_or_else(|e| e.into_inner());
        // Keep the tracker's idea of the leader's log end current.
        let mut metrics = self.inner.raft.metrics();
        let tracker = self.inner.tracker.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                let end = metrics.borrow_and_update().last_log_index.map_or(0, |i| i + 1);
                tracker.set_leader_log_end(end);
                if metrics.changed().await.is_err() {
                    return;
                }
            }
        }));
        let inner = self.inner.clone();
        tasks.push(tokio::spawn(async move { inner.run_elections().await }));
        if self.inner.announces_itself() {
            let inner = self.inner.clone();
            tasks.push(tokio::spawn(async move { inner.join_as_observer().await }));
        }
        if matches!(self.inner.options.voters, Voters::Dynamic { .. }) {
            let inner = self.inner.clone();
            tasks.push(tokio::spawn(async move { inner.finish_joint_membership().await }));
        }
    }

    /// The server side, to serve on the controller listener.
    pub fn handler(&self) -> RpcHandler<A> {
        RpcHandler { inner: self.inner.clone() }
    }

    /// Every applied entry, in log order, from the state this node started
    /// from (a `Restored` event first). The first call takes the receiver;
    /// later calls get `None`.
    pub fn take_applied(&self) -> Option<mpsc::UnboundedReceiver<Applied<A>>> {
        self.events.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    /// The last applied log id, as a watch.
    pub fn applied(&self) -> watch::Receiver<Option<LogId>> {
        self.inner.applied.clone()
    }

    /// This node's id.
    pub fn node_id(&self) -> NodeId {
        self.inner.options.node_id
    }

    /// The leader this node knows of.
    pub fn leader(&self) -> Option<NodeId> {
        self.inner.raft.metrics().borrow().current_leader
    }

    /// openraft's metrics (term, state, leader, log indexes).
    pub fn metrics(&self) -> watch::Receiver<openraft::RaftMetrics<NodeId, Member>> {
        self.inner.raft.metrics()
    }

    /// The openraft handle (tests, triggers).
    pub fn raft(&self) -> &Raft<A> {
        &self.inner.raft
    }

    /// Whether this node is the leader (the active controller) now.
    pub fn is_leader(&self) -> bool {
        self.leading_term().is_some()
    }

    /// The term this node leads in, if it is the leader now.
    pub fn leading_term(&self) -> Option<u64> {
        let m = self.inner.raft.metrics();
        let m = m.borrow();
        (m.state == ServerState::Leader && !self.inner.resigning.load(Ordering::SeqCst)).then_some(m.current_term)
    }

    /// Proposes a decision this node took as the leader of `term`, and only
    /// while it still leads in that term: never forwarded, unlike
    /// [`MetadataQuorum::propose`]. A leader's own duties (fencing a broker
    /// whose heartbeats it stopped seeing) rest on what it saw as leader;
    /// once another node leads, that view is stale (a leader paused past
    /// the session timeout sees every broker silent), and forwarding the
    /// decision would have the new leader commit it. Another leader, or a
    /// later term of this one: [`QuorumError::NotController`], nothing
    /// appended. Losing the leadership while the entry waits: the entry is
    /// not committed ([`QuorumError::NotController`] or
    /// [`QuorumError::OutcomeUnknown`] as for a proposal).
    pub async fn propose_as_leader(&self, command: A::Command, term: u64) -> Result<(LogId, A::Outcome), QuorumError>
    where
        M: Send + 'static,
    {
        let deadline = Instant::now() + self.inner.options.timing.propose_timeout;
        if self.leading_term() != Some(term) {
            return Err(QuorumError::NotController { leader_id: None, leader_address: None });
        }
        match tokio::time::timeout_at(deadline, self.inner.leader_op(Forward::Propose(command))).await {
            Err(_) => Err(QuorumError::OutcomeUnknown(
                "this node took the change as leader but it was not committed before the deadline".into(),
            )),
            Ok(Ok(ForwardReply::Proposed { log_id, outcome })) => {
                self.inner.wait_applied(log_id, deadline).await?;
                Ok((log_id, outcome))
            }
            Ok(Ok(other)) => Err(QuorumError::Rejected(format!("unexpected answer to a proposal: {other:?}"))),
            Ok(Err(ForwardError::NotLeader { leader_id, leader_address })) => {
                Err(QuorumError::NotController { leader_id, leader_address })
            }
            Ok(Err(ForwardError::Failed(reason))) => Err(QuorumError::Rejected(reason)),
            Ok(Err(ForwardError::VoterChange { refusal, message })) => {
                Err(QuorumError::VoterChange { refusal, message })
            }
        }
    }

    /// Sends this node's broker heartbeat to the active controller (itself
    /// if it leads), within `timeout`. Idempotent, so retried freely.
    pub async fn heartbeat(&self, timeout: Duration) -> Result<(), QuorumError> {
        let op = Forward::Heartbeat { node_id: self.inner.options.node_id };
        match self.inner.execute(op, Instant::now() + timeout).await? {
            ForwardReply::HeartbeatRecorded => Ok(()),
            other => Err(QuorumError::Rejected(format!("unexpected answer to a heartbeat: {other:?}"))),
        }
    }

    /// When each broker last heartbeated to this node as leader.
    pub fn liveness(&self) -> BTreeMap<NodeId, std::time::Instant> {
        self.inner.liveness.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Node ids whose connection to this node's controller listener
    /// closed, from now on (see [`RpcHandler::connection_closed`]). A
    /// receiver that falls behind gets `Lagged` and should check every node.
    pub fn connection_losses(&self) -> tokio::sync::broadcast::Receiver<NodeId> {
        self.inner.connection_losses.subscribe()
    }

    /// The last refusal another node sent this one (another cluster id,
    /// other `controller.quorum.voters`), one line.
    pub fn last_refusal(&self) -> Option<String> {
        self.inner.tracker.last_refusal()
    }
}

impl<A: QuorumApp, M: Send + 'static> MetadataQuorum<A> for Quorum<A, M> {
    async fn propose(&self, command: A::Command) -> Result<(LogId, A::Outcome), QuorumError> {
        let deadline = Instant::now() + self.inner.options.timing.propose_timeout;
        match self.inner.execute(Forward::Propose(command), deadline).await? {
            ForwardReply::Proposed { log_id, outcome } => {
                self.inner.wait_applied(log_id, deadline).await?;
                Ok((log_id, outcome))
            }
            other => Err(QuorumError::Rejected(format!("unexpected answer to a proposal: {other:?}"))),
        }
    }

    async fn describe(&self) -> Result<QuorumDescription, QuorumError> {
        let deadline = Instant::now() + self.inner.options.timing.propose_timeout;
        match self.inner.execute(Forward::Describe, deadline).await? {
            ForwardReply::Described(d) => Ok(d),
            other => Err(QuorumError::Rejected(format!("unexpected answer to describe: {other:?}"))),
        }
    }

    async fn add_voter(&self, node_id: NodeId, address: &str) -> Result<LogId, QuorumError> {
        self.inner.membership_change(Forward::AddVoter { node_id, address: address.to_string() }).await
    }

    async fn remove_voter(&self, node_id: NodeId) -> Result<LogId, QuorumError> {
        self.inner.membership_change(Forward::RemoveVoter { node_id }).await
    }

    async fn add_observer(&self, node_id: NodeId, address: &str) -> Result<LogId, QuorumError> {
        self.inner.membership_change(Forward::AddObserver { node_id, address: address.to_string() }).await
    }

    async fn shutdown(&self) {
        if self.inner.stopped.swap(true, Ordering::SeqCst) {
            return;
        }
        let tasks: Vec<JoinHandle<()>> = self.inner.tasks.lock().unwrap_or_else(|e| e.into_inner()).drain(..).collect();
        for task in tasks {
            task.abort();
        }
        if let Err(e) = self.inner.raft.shutdown().await {
            tracing::warn!(error = %e, "metadata quorum did not stop cleanly");
        }
    }
}

impl<A: QuorumApp> Inner<A> {
    /// Whether this node asks the leader to know it: every node but a
    /// static voter (whose address is in every node's configuration). A
    /// member at another address (an observer restarted on a new port) is
    /// moved, which is what Kafka's UpdateRaftVoter does for a voter.
    fn announces_itself(&self) -> bool {
        match &self.options.voters {
            Voters::Static(voters) => !voters.contains_key(&self.options.node_id),
            Voters::Dynamic { .. } => true,
        }
    }

    /// A voter with an empty log writes the first membership entry.
    async fn bootstrap(&self) -> Result<(), QuorumError> {
        let members: BTreeMap<NodeId, Member> = match &self.options.voters {
            Voters::Static(voters) if voters.contains_key(&self.options.node_id) => {
                voters.iter().map(|(id, address)| (*id, Member::new(address.clone()))).collect()
            }
            Voters::Dynamic { initial_voters, .. } if initial_voters.contains_key(&self.options.node_id) => {
                initial_voters.iter().map(|(id, address)| (*id, Member::new(address.clone()))).collect()
            }
            _ => return Ok(()),
        };
        let initialized = self.raft.is_initialized().await.map_err(|e| QuorumError::Stopped(e.to_string()))?;
        if initialized {
            return Ok(());
        }
        match self.raft.initialize(members).await {
            Ok(()) => Ok(()),
            // Another voter's identical first entry reached this node first.
            Err(RaftError::APIError(openraft::error::InitializeError::NotAllowed(_))) => Ok(()),
            Err(e) => Err(QuorumError::Config(format!("cannot initialize the metadata quorum: {e}"))),
        }
    }

    /// Whether the membership this node knows has it at its own address.
    fn is_member(&self) -> bool {
        let metrics = self.raft.metrics();
        let m = metrics.borrow();
        m.membership_config.membership().get_node(&self.options.node_id).is_some_and(|n| n.addr == self.options.address)
    }

    /// Asks the leader (found through the voters or bootstrap servers) to
    /// add this node as an observer, until the membership has it at its
    /// own address.
    async fn join_as_observer(self: Arc<Self>) {
        let servers: Vec<(NodeId, String)> = match &self.options.voters {
            Voters::Static(voters) => voters.iter().map(|(id, a)| (*id, a.clone())).collect(),
            Voters::Dynamic { bootstrap_servers, .. } => {
                bootstrap_servers.iter().map(|a| (UNKNOWN_NODE, a.clone())).collect()
            }
        };
        let request = Forward::AddObserver { node_id: self.options.node_id, address: self.options.address.clone() };
        let mut attempt = 0usize;
        while !self.is_member() && !self.stopped.load(Ordering::SeqCst) {
            let Some((target, address)) = servers.get(attempt % servers.len().max(1)).cloned() else {
                return;
            };
            attempt += 1;
            let envelope = self.sender.envelope(target, Request::Forward(request.clone()));
            let timeout = self.options.timing.propose_timeout;
            match self.transport.call(target, &address, envelope, timeout).await {
                Ok(Response::Forward(Ok(_))) => {}
                Ok(Response::Forward(Err(ForwardError::NotLeader { .. } | ForwardError::VoterChange { .. }))) => {}
                Ok(other) => tracing::warn!(%address, answer = ?other, "cannot join the metadata quorum yet"),
                Err(e) => tracing::debug!(%address, error = %e, "cannot reach a bootstrap controller"),
            }
            tokio::time::sleep(self.options.timing.retry_backoff * 5).await;
        }
    }

    async fn membership_change(&self, op: Forward<A>) -> Result<LogId, QuorumError> {
        let deadline = Instant::now() + self.options.timing.propose_timeout;
        match self.execute(op, deadline).await? {
            ForwardReply::MembershipChanged { log_id } => Ok(log_id),
            other => Err(QuorumError::Rejected(format!("unexpected answer to a membership change: {other:?}"))),
        }
    }

    /// Runs a leader-only operation here if this node leads, else at the
    /// leader, until it is done or the deadline passes.
    async fn execute(&self, op: Forward<A>, deadline: Instant) -> Result<ForwardReply<A>, QuorumError> {
        let retry_on_no_answer = matches!(op, Forward::Describe | Forward::Heartbeat { .. });
        let mut last_leader: (Option<NodeId>, Option<String>) = (None, None);
        loop {
            if self.stopped.load(Ordering::SeqCst) {
                return Err(QuorumError::Stopped("shut down".into()));
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(QuorumError::NotController { leader_id: last_leader.0, leader_address: last_leader.1 });
            }
            let local = tokio::time::timeout(deadline - now, self.leader_op(op.clone())).await;
            let not_leader = match local {
                Err(_) => {
                    return Err(QuorumError::OutcomeUnknown(
                        "this node took the change as leader but it was not committed before the deadline".into(),
                    ));
                }
                Ok(Ok(reply)) => return Ok(reply),
                Ok(Err(ForwardError::Failed(reason))) => return Err(QuorumError::Rejected(reason)),
                Ok(Err(ForwardError::VoterChange { refusal, message })) => {
                    return Err(QuorumError::VoterChange { refusal, message });
                }
                Ok(Err(ForwardError::NotLeader { leader_id, leader_address })) => (leader_id, leader_address),
            };
            let (Some(leader), Some(address)) = not_leader.clone() else {
                tokio::time::sleep(self.options.timing.retry_backoff).await;
                continue;
            };
            last_leader = (Some(leader), Some(address.clone()));
            if leader == self.options.node_id {
                // Our own metrics lag our own state: ask again shortly.
                tokio::time::sleep(self.options.timing.retry_backoff).await;
                continue;
            }
            let remaining = deadline.saturating_duration_since(Instant::now());
            let envelope = self.sender.envelope(leader, Request::Forward(op.clone()));
            match self.transport.call(leader, &address, envelope, remaining).await {
                Ok(Response::Forward(Ok(reply))) => return Ok(reply),
                Ok(Response::Forward(Err(ForwardError::Failed(reason)))) => return Err(QuorumError::Rejected(reason)),
                Ok(Response::Forward(Err(ForwardError::VoterChange { refusal, message }))) => {
                    return Err(QuorumError::VoterChange { refusal, message });
                }
                Ok(Response::Forward(Err(ForwardError::NotLeader { .. }))) => {
                    tokio::time::sleep(self.options.timing.retry_backoff).await;
                }
                Ok(Response::Refused(reason)) => return Err(QuorumError::Refused(reason)),
                Ok(other) => return Err(QuorumError::Rejected(format!("unexpected answer to a forward: {other:?}"))),
                Err(TransportError::NotSent(_)) => tokio::time::sleep(self.options.timing.retry_backoff).await,
                Err(TransportError::NoAnswer(reason) | TransportError::TimedOut(reason)) if !retry_on_no_answer => {
                    return Err(QuorumError::OutcomeUnknown(format!("node {leader} did not answer: {reason}")));
                }
                Err(TransportError::NoAnswer(_) | TransportError::TimedOut(_)) => {
                    tokio::time::sleep(self.options.timing.retry_backoff).await
                }
            }
        }
    }

    fn not_leader<E>(&self, e: &RaftError<NodeId, ClientWriteError<NodeId, Member>>) -> Result<E, ForwardError> {
        match e {
            RaftError::APIError(ClientWriteError::ForwardToLeader(f)) => Err(ForwardError::NotLeader {
                leader_id: f.leader_id,
                leader_address: f.leader_node.as_ref().map(|n| n.addr.clone()),
            }),
            other => Err(ForwardError::Failed(other.to_string())),
        }
    }

    /// A leader-only operation on this node.
    async fn leader_op(&self, op: Forward<A>) -> Result<ForwardReply<A>, ForwardError> {
        if self.resigning.load(Ordering::SeqCst) {
            return Err(ForwardError::NotLeader { leader_id: None, leader_address: None });
        }
        match op {
            Forward::Propose(command) => match self.raft.client_write(command).await {
                Ok(response) => match response.data {
                    Some(outcome) => Ok(ForwardReply::Proposed { log_id: response.log_id, outcome }),
                    None => Err(ForwardError::Failed("the entry applied without an outcome".into())),
                },
                Err(e) => self.not_leader(&e),
            },
            Forward::AddObserver { node_id, address } => self.add_observer(node_id, address).await,
            Forward::AddVoter { node_id, address } => self.add_voter(node_id, address).await,
            Forward::RemoveVoter { node_id } => self.remove_voter(node_id).await,
            Forward::Describe => self.describe_local().await.map(ForwardReply::Described),
            Forward::Heartbeat { node_id } => {
                let m = self.raft.metrics().borrow().clone();
                if m.state != ServerState::Leader {
                    let leader_address = m
                        .current_leader
                        .and_then(|l| m.membership_config.membership().get_node(&l).map(|n| n.addr.clone()));
                    return Err(ForwardError::NotLeader { leader_id: m.current_leader, leader_address });
                }
                // The answer renews the sender's leader lease
                // (tributary-broker's leader_lease.rs), but a leader cut off
                // from the other voters calls itself leader until it hears
                // of a newer term, and the node's own broker heartbeat
                // reaches it without the network. So a heartbeat is answered
                // only once a quorum has acknowledged this node as leader
                // after it arrived; until then the sender is told no leader
                // is known and retries.
                let confirmed =
                    tokio::time::timeout(self.options.timing.election_timeout, self.raft.get_read_log_id()).await;
                if !matches!(confirmed, Ok(Ok(_))) {
                    return Err(ForwardError::NotLeader { leader_id: None, leader_address: None });
                }
                self.liveness.lock().unwrap_or_else(|e| e.into_inner()).insert(node_id, std::time::Instant::now());
                Ok(ForwardReply::HeartbeatRecorded)
            }
        }
    }

    async fn describe_local(&self) -> Result<QuorumDescription, ForwardError> {
        let m = self.raft.metrics().borrow().clone();
        if m.state != ServerState::Leader {
            let leader_address =
                m.current_leader.and_then(|l| m.membership_config.membership().get_node(&l).map(|n| n.addr.clone()));
            return Err(ForwardError::NotLeader { leader_id: m.current_leader, leader_address });
        }
        let committed =
            self.raft.with_raft_state(|st| st.committed).await.map_err(|e| ForwardError::Failed(e.to_string()))?;
        let membership = m.membership_config.membership();
        let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
        let now = now_ms();
        let end = |index: Option<u64>| index.map_or(0, |i| i64::try_from(i + 1).unwrap_or(i64::MAX));
        let replica = |id: NodeId| {
            let address = membership.get_node(&id).map(|n| n.addr.clone()).unwrap_or_default();
            if id == m.id {
                return ReplicaState {
                    replica_id: id,
                    address,
                    log_end_offset: end(m.last_log_index),
                    last_fetch_timestamp: now,
                    last_caught_up_timestamp: now,
                };
            }
            let matched = m.replication.as_ref().and_then(|r| r.get(&id).copied().flatten());
            let (last_fetch, last_caught_up) = self.tracker.times(id);
            ReplicaState {
                replica_id: id,
                address,
                log_end_offset: matched.map_or(-1, |l| end(Some(l.index))),
                last_fetch_timestamp: last_fetch,
                last_caught_up_timestamp: last_caught_up,
            }
        };
        let mut ids: Vec<NodeId> = membership.nodes().map(|(id, _)| *id).collect();
        ids.sort_unstable();
        Ok(QuorumDescription {
            leader_id: m.id,
            leader_epoch: m.current_term,
            high_watermark: committed.map_or(0, |c| end(Some(c.index))),
            voters: ids.iter().filter(|id| voters.contains(id)).map(|id| replica(*id)).collect(),
            observers: ids.iter().filter(|id| !voters.contains(id)).map(|id| replica(*id)).collect(),
        })
    }

    /// Waits until this node has applied `log_id`.
    async fn wait_applied(&self, log_id: LogId, deadline: Instant) -> Result<(), QuorumError> {
        let mut applied = self.applied.clone();
        let reached =
            tokio::time::timeout_at(deadline, applied.wait_for(|a| a.is_some_and(|a| a.index >= log_id.index))).await;
        match reached {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(_)) => Err(QuorumError::Stopped("the state machine stopped".into())),
            Err(_) => Err(QuorumError::NotYetApplied { log_id }),
        }
    }

    /// Checks an envelope and answers it.
    async fn handle(&self, envelope: Envelope<A>) -> Response<A> {
        // An empty cluster id is a node whose data directory is not
        // formatted yet: it learns the id from the log (InitCluster).
        let known = !envelope.cluster_id.is_empty() && !self.options.cluster_id.is_empty();
        if known && envelope.cluster_id != self.options.cluster_id {
            return Response::Refused(format!(
                "node {} belongs to cluster {:?}, node {} to cluster {:?}",
                self.options.node_id, self.options.cluster_id, envelope.from, envelope.cluster_id
            ));
        }
        if envelope.to != self.options.node_id && envelope.to != UNKNOWN_NODE {
            return Response::Refused(format!(
                "this is node {}, not node {} (check controller.quorum.voters)",
                self.options.node_id, envelope.to
            ));
        }
        if let (Some(ours), Some(theirs)) = (&self.sender.voters, &envelope.voters)
            && ours != theirs
        {
            return Response::Refused(format!(
                "controller.quorum.voters differs: node {} has {ours}, node {} has {theirs}",
                self.options.node_id, envelope.from
            ));
        }
        if self.stopped.load(Ordering::SeqCst) {
            return Response::Refused(format!("node {} is shutting down", self.options.node_id));
        }
        match envelope.body {
            Request::AppendEntries(rpc) => {
                let _gate = self.election.gate().await;
                let answer = self.raft.append_entries(rpc).await;
                // Anything but "your term is over" is the current leader's.
                if matches!(&answer, Ok(r) if !matches!(r, AppendEntriesResponse::HigherVote(_))) {
                    self.election.touch();
                }
                Response::AppendEntries(answer)
            }
            Request::Vote(rpc) => {
                let (their_vote, their_last) = (rpc.vote, rpc.last_log_id);
                let _gate = self.election.gate().await;
                let answer = self.raft.vote(rpc).await;
                match &answer {
                    Ok(r) if r.vote_granted => self.election.touch(),
                    Ok(r) => self.election.refused_vote(self.options.node_id, &their_vote, their_last, r),
                    Err(_) => {}
                }
                Response::Vote(answer)
            }
            Request::InstallSnapshot(rpc) => {
                let vote = rpc.vote;
                let answer = self.raft.install_snapshot(rpc).await;
                if matches!(&answer, Ok(r) if r.vote == vote) {
                    self.election.touch();
                }
                Response::InstallSnapshot(answer)
            }
            Request::LeaderCheck => Response::LeaderCheck(self.leader_status()),
            Request::Forward(op) => Response::Forward(self.leader_op(op).await),
        }
    }
}

impl<A: QuorumApp> RpcHandler<A> {
    /// A connection on which `from` sent requests closed. Only a hint:
    /// a node may close a pooled connection and open another; but when a
    /// process dies its kernel closes all of them at once.
    pub fn connection_closed(&self, from: NodeId) {
        if from != UNKNOWN_NODE && from != self.inner.options.node_id {
            // No receiver (not the active controller's loop): nobody to tell.
            let _ = self.inner.connection_losses.send(from);
        }
    }

    /// Answers one request from another node.
    pub async fn handle(&self, envelope: Envelope<A>) -> Response<A> {
        self.inner.handle(envelope).await
    }

    /// This node's id.
    pub fn node_id(&self) -> NodeId {
        self.inner.options.node_id
    }

    /// This node's controller address.
    pub fn address(&self) -> &str {
        &self.inner.options.address
    }
}
