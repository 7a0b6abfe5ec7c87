//! A KRaft node (`process.roles` set): the metadata quorum on
//! `<data>/__cluster_metadata`, and the tasks that make this node a broker
//! of the cluster.
//!
//! ```text
//! start: data dir locked ─▶ meta.properties checked (node.id, cluster.id) ─▶ log + state machine opened
//!        ─▶ controller listener bound (broker-only: an ephemeral port on the Kafka host, since the
//!           leader pushes entries to observers) ─▶ Quorum::start ─▶ ControllerServer
//! tasks: apply      take_applied() ─▶ the broker's copy of MetadataState, in log order
//!                   ─▶ image ─▶ reconcile ─▶ registry (Cluster::publish) ─▶ `published` index
//!        init       the leader proposes InitCluster once (meta.properties' id, or a new one);
//!                   every node writes it to meta.properties (another id there: the node stops)
//!        lifecycle  RegisterBroker (listeners, rack, incarnation) ─▶ heartbeat every
//!                   broker.heartbeat.interval.ms to the active controller (Forward::Heartbeat)
//!        controller on the leader only: a registered broker without a heartbeat for
//!                   broker.session.timeout.ms, or whose listener refused a connection after
//!                   its last heartbeat (checked when its connection to this node closed or
//!                   a heartbeat is overdue: `death_watch.rs`), is fenced (its leaderships
//!                   moved away first); a fenced one heartbeating again is unfenced
//!                   (leaderless partitions it can lead get it back; with
//!                   unclean.leader.election.enable, a leaderless partition without a live
//!                   ISR member gets any live replica); every
//!                   leader.imbalance.check.interval.seconds, brokers whose share of
//!                   preferred partitions led by others is over
//!                   leader.imbalance.per.broker.percentage get them back (elections.rs)
//!        watchdog   a node refused by its peers (another cluster id, other voters) and with
//!                   no leader stops with one line
//! stop:  controlled shutdown: leaderships moved to other ISR members, registration removed
//! ```
//!
//! Heartbeats never enter the log: the active controller keeps them in a
//! liveness table (`Quorum::liveness`). A new leader's table starts empty,
//! so it fences nobody for missed heartbeats until it has led for a whole
//! session timeout; a broker whose listener refuses connections is fenced
//! at once (a dead controller's partitions move as soon as a new one leads).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};
use tributary_config::BrokerConfig;
use tributary_metadata::{
    self as md, ApplyOutcome, BrokerListener, Election, FsDisk, LogOptions, MetadataCommand, MetadataLog,
    MetadataState, MetadataStateMachine, PartitionChangeBuilder,
};
use tributary_quorum::config::KraftConfig;
use tributary_quorum::net::tcp::{ControllerServer, TcpTransport};
use tributary_quorum::storage::metadata::MetadataApp;
use tributary_quorum::{Applied, MetadataQuorum, Quorum, QuorumOptions};
use tributary_types::base64_url_no_pad;

use crate::backend::QuorumBackend;
use crate::cluster::{Cluster, StartError};
use crate::death_watch::{self, Check, DeathWatch};
use crate::elections::{rebalance_targets, unclean_election_enabled};
use crate::node::{DataDir, DataDirError, MetaProperties};
use crate::replica_driver::{broker_address, own_host};

/// How long a controller connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How often the controller checks liveness and the init task checks for a cluster id.
const CONTROLLER_TICK: Duration = Duration::from_millis(500);
/// The active controller's tick while a broker whose connection closed is
/// checked again and again.
const SUSPECT_TICK: Duration = Duration::from_millis(50);
/// How long after its connection closed a broker's listener is checked on
/// every [`SUSPECT_TICK`].
const SUSPECT_WINDOW: Duration = Duration::from_secs(2);
/// How long after its listener refused a connection a broker is fenced
/// (its leaderships move at once).
const FENCE_AFTER_MOVES: Duration = Duration::from_secs(2);
/// How long a node refused by its peers waits for a leader before it stops.
const REFUSED_GRACE: Duration = Duration::from_secs(10);

/// The metadata crate's index of a quorum log id (openraft counts from 0).
pub(crate) fn metadata_index(log_id: tributary_quorum::LogId) -> u64 {
    log_id.index.saturating_add(1)
}

fn metadata_log_id(log_id: tributary_quorum::LogId) -> md::LogId {
    md::LogId::new(log_id.leader_id.term, md::LogId::UNKNOWN_LEADER, metadata_index(log_id))
}

/// Opens and checks a KRaft node's data directory and starts its quorum.
pub(crate) async fn start_quorum(
    config: &BrokerConfig,
    kraft: KraftConfig,
) -> Result<(DataDir, QuorumBackend), StartError> {
    let dir = config.data_dir.clone();
    let node_id = kraft.node_id;
    let opened = tokio::task::spawn_blocking(move || open_dir(&dir, node_id))
        .await
        .map_err(|e| StartError::Quorum(e.to_string()))??;
    let (data_dir, formatted, log, machine) = opened;
    let initial = data_dir
        .read_initial_controllers()
        .map_err(|reason| StartError::DataDir(DataDirError { path: config.data_dir.clone(), reason }))?;

    // The controller listener (a voter's address others know), or for a
    // broker-only observer a port of its own the leader can push entries to.
    let (bind, advertised) = quorum_address(config, &kraft)?;
    let listener = tokio::net::TcpListener::bind(&bind).await.map_err(|e| {
        StartError::Config(format!(
            "cannot listen on {bind} (controller listener): {e}; free the port or choose another one"
        ))
    })?;
    let local = listener.local_addr().map_err(|e| StartError::Quorum(e.to_string()))?;
    let address = advertised.unwrap_or_else(|| local.to_string());

    let state = machine.state().clone();
    // Dynamic voters: the first voter set the directory was formatted with;
    // formatted without one, join; never formatted, a controller that is its
    // own only bootstrap server starts alone (as `format --standalone`).
    let initial = match (initial, &formatted) {
        (Some(voters), _) => voters,
        (None, Some(_)) => BTreeMap::new(),
        (None, None) => kraft.unformatted_initial_voters(&address),
    };
    let voters = kraft.quorum_voters(initial);
    let mut options = QuorumOptions::new(node_id, formatted.as_deref().unwrap_or(""), &address, voters);
    options.timing = kraft.timing;
    options.snapshot_every = config.metadata_snapshot_interval;
    options.keep_logs_after_snapshot = config.metadata_snapshot_interval.min(1000);
    let transport = Arc::new(TcpTransport::for_listener(&address, CONNECT_TIMEOUT));
    let quorum =
        Quorum::start(options, log, machine, transport).await.map_err(|e| StartError::Quorum(e.to_string()))?;
    let server = ControllerServer::serve(listener, quorum.handler()).map_err(|e| StartError::Quorum(e.to_string()))?;
    tracing::info!(node_id, address = %address, voter = kraft.is_controller(), "metadata quorum started");
    let published = watch::Sender::new(state.applied_index());
    let backend = QuorumBackend {
        quorum,
        kraft,
        runtime: tokio::runtime::Handle::current(),
        proposals: std::sync::Mutex::new(()),
        state: std::sync::Mutex::new(state),
        published,
        incarnation: *uuid::Uuid::new_v4().as_bytes(),
        formatted_cluster_id: formatted,
        server: std::sync::Mutex::new(Some(server)),
    };
    Ok((data_dir, backend))
}

type Opened = (DataDir, Option<String>, MetadataLog<FsDisk>, MetadataStateMachine<FsDisk>);

/// Locks the directory, checks `meta.properties` against this node and
/// against the cluster its log belongs to, and opens the log.
fn open_dir(dir: &std::path::Path, node_id: i32) -> Result<Opened, StartError> {
    let data_dir = DataDir::open(dir)?;
    let refuse = |reason: String| StartError::DataDir(DataDirError { path: dir.to_path_buf(), reason });
    let meta = data_dir.read_meta_properties().map_err(|e| refuse(e.to_string()))?;
    if let Some(meta) = &meta
        && let Some(found) = meta.node_id
        && found != node_id
    {
        return Err(refuse(format!(
            "its meta.properties says node.id={found} but this node is node.id={node_id}; use that node's config or another log.dirs"
        )));
    }
    let formatted = meta.and_then(|m| m.cluster_id);
    let metadata_dir = data_dir.metadata_dir();
    let disk =
        FsDisk::open(&metadata_dir).map_err(|e| refuse(format!("cannot create {}: {e}", metadata_dir.display())))?;
    let log = MetadataLog::open(disk.clone(), LogOptions::default())?;
    let machine = MetadataStateMachine::open(disk, &log)?;
    if let (Some(formatted), Some(committed)) = (&formatted, &machine.state().cluster_id)
        && formatted != committed
    {
        return Err(refuse(format!(
            "its meta.properties names cluster {formatted} but its metadata log belongs to cluster {committed}"
        )));
    }
    Ok((data_dir, formatted, log, machine))
}

/// Where the quorum listens (`bind`) and the address others reach it at, if
/// known before binding.
fn quorum_address(config: &BrokerConfig, kraft: &KraftConfig) -> Result<(String, Option<String>), StartError> {
    if kraft.is_controller() {
        let listener = config
            .controller_listeners
            .iter()
            .find(|l| kraft.controller_listener_names.contains(&l.name))
            .ok_or_else(|| {
                StartError::Config(format!(
                    "controller.listener.names names {} but listeners has no such listener (e.g. CONTROLLER://127.0.0.1:9093)",
                    kraft.controller_listener_names.join(",")
                ))
            })?;
        let host = if listener.host.is_empty() { "0.0.0.0".to_string() } else { listener.host.clone() };
        let bind = join_host_port(&host, listener.port);
        // A static voter is known by its entry in controller.quorum.voters.
        let advertised = match &kraft.voters {
            tributary_quorum::config::QuorumVoters::Static(voters) => voters.get(&kraft.node_id).map(|e| e.address()),
            tributary_quorum::config::QuorumVoters::Bootstrap(_) => None,
        };
        let advertised = advertised.or_else(|| (!listener.host.is_empty()).then(|| bind.clone()));
        return Ok((bind, advertised));
    }
    let host = config
        .listeners
        .first()
        .map(|l| l.host.clone())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "127.0.0.1".into());
    Ok((join_host_port(&host, 0), None))
}

fn join_host_port(host: &str, port: u16) -> String {
    if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") }
}

/// Starts the tasks of a KRaft node.
pub(crate) fn spawn(cluster: &Arc<Cluster>, shutdown: watch::Receiver<bool>) {
    let Some(q) = cluster.quorum() else { return };
    if let Some(events) = q.quorum.take_applied() {
        tokio::spawn(apply_loop(cluster.clone(), events));
    }
    tokio::spawn(init_cluster_loop(cluster.clone(), shutdown.clone()));
    tokio::spawn(lifecycle_loop(cluster.clone(), shutdown.clone()));
    tokio::spawn(controller_loop(cluster.clone(), shutdown.clone()));
    tokio::spawn(watchdog_loop(cluster.clone(), shutdown));
}

/// Applies every committed entry, in log order, and publishes the result.
async fn apply_loop(cluster: Arc<Cluster>, mut events: mpsc::UnboundedReceiver<Applied<MetadataApp>>) {
    while let Some(first) = events.recv().await {
        let mut batch = vec![first];
        while batch.len() < 1024 {
            match events.try_recv() {
                Ok(e) => batch.push(e),
                Err(_) => break,
            }
        }
        let c = cluster.clone();
        if let Err(e) = tokio::task::spawn_blocking(move || apply_batch(&c, batch)).await {
            cluster.fail(format!("applying committed metadata failed: {e}"));
            return;
        }
    }
}

fn apply_batch(cluster: &Cluster, batch: Vec<Applied<MetadataApp>>) {
    let Some(q) = cluster.quorum() else { return };
    let mut state = q.state.lock().unwrap_or_else(|p| p.into_inner());
    for event in batch {
        match event {
            Applied::Restored { last_included } => {
                // At start (the local snapshot), or a snapshot the leader
                // sent because this node was too far behind its log.
                let index = last_included.map_or(0, metadata_index);
                tracing::info!(snapshot_index = index, "metadata state restored from a snapshot");
                *state = q.quorum.machine().lock().unwrap_or_else(|p| p.into_inner()).state().clone();
            }
            Applied::Command { log_id, command, .. } => {
                state.apply(metadata_log_id(log_id), &command);
            }
            Applied::Membership { log_id, membership } => {
                let voters: Vec<i32> = membership.voter_ids().collect();
                let observers: Vec<i32> = membership.learner_ids().collect();
                tracing::info!(?voters, ?observers, %log_id, joint = membership.get_joint_config().len() > 1, "metadata quorum membership");
                state.apply_entry(&md::Entry { log_id: metadata_log_id(log_id), payload: md::EntryPayload::Blank });
            }
            Applied::Blank { log_id } => {
                state.apply_entry(&md::Entry { log_id: metadata_log_id(log_id), payload: md::EntryPayload::Blank });
            }
        }
    }
    if let Some(committed) = &state.cluster_id {
        match &q.formatted_cluster_id {
            Some(formatted) if formatted != committed => {
                cluster.fail(format!(
                    "data directory {} belongs to cluster {formatted} (meta.properties) but the metadata quorum's cluster is {committed}; point log.dirs at this cluster's directory or format a new one",
                    cluster.data_dir().display()
                ));
            }
            _ => {
                if let Err(e) = cluster.write_meta_properties(committed) {
                    tracing::warn!(error = %e, "cannot write meta.properties");
                }
            }
        }
    }
    cluster.publish(&state);
    let index = state.applied_index();
    drop(state);
    q.published.send_if_modified(|p| {
        let moved = index > *p;
        *p = (*p).max(index);
        moved
    });
}

/// The leader proposes the cluster id once.
async fn init_cluster_loop(cluster: Arc<Cluster>, mut shutdown: watch::Receiver<bool>) {
    let Some(q) = cluster.quorum() else { return };
    loop {
        if !cluster.image().cluster_id.is_empty() {
            return;
        }
        if q.quorum.is_leader() {
            let cluster_id =
                q.formatted_cluster_id.clone().unwrap_or_else(|| base64_url_no_pad(uuid::Uuid::new_v4().as_bytes()));
            match q.quorum.propose(MetadataCommand::InitCluster { cluster_id }).await {
                Ok((_, outcome)) => tracing::info!(?outcome, "cluster id proposed"),
                Err(e) => tracing::debug!(error = %e, "proposing the cluster id failed; trying again"),
            }
        }
        tokio::select! {
            _ = shutdown.changed() => return,
            _ = tokio::time::sleep(CONTROLLER_TICK) => {}
        }
    }
}

/// This broker's registration as the log holds it, if any.
fn own_registration(cluster: &Cluster) -> Option<md::BrokerRegistration> {
    cluster.image().brokers.get(&cluster.node_id).cloned()
}

/// Registers this broker, then heartbeats; registers again if the
/// registration disappears (unregistered) or names another incarnation.
async fn lifecycle_loop(cluster: Arc<Cluster>, mut shutdown: watch::Receiver<bool>) {
    let Some(q) = cluster.quorum() else { return };
    let interval = Duration::from_millis(cluster.config.broker_heartbeat_interval_ms);
    let mut was_unfenced = false;
    loop {
        let registered = own_registration(&cluster).is_some_and(|r| r.incarnation_id == q.incarnation);
        if cluster.image().cluster_id.is_empty() {
            // Not formed yet.
        } else if !registered {
            let listeners = cluster
                .advertised_listeners()
                .into_iter()
                .map(|l| BrokerListener {
                    name: l.name.clone(),
                    host: l.host.clone(),
                    port: l.port,
                    security_protocol: l.security_protocol.clone(),
                })
                .collect();
            let command = MetadataCommand::RegisterBroker {
                broker_id: cluster.node_id,
                incarnation_id: q.incarnation,
                listeners,
                rack: cluster.config.rack.clone(),
            };
            match q.quorum.propose(command).await {
                Ok((_, outcome)) => tracing::info!(?outcome, "registered with the controller"),
                Err(e) => tracing::info!(error = %e, "cannot register with the controller yet; retrying"),
            }
        } else {
            let sent = Instant::now();
            match q.quorum.heartbeat(interval.max(Duration::from_secs(1))).await {
                Ok(()) => {
                    if let Some(lease) = &cluster.leader_lease {
                        lease.renew(sent);
                    }
                }
                Err(e) => tracing::debug!(error = %e, "heartbeat to the active controller failed"),
            }
        }
        let unfenced = own_registration(&cluster).is_some_and(|r| !r.fenced && r.incarnation_id == q.incarnation);
        if unfenced && !was_unfenced {
            tracing::info!("this broker is unfenced: it may lead partitions");
            cluster.groups.request_reload();
        }
        was_unfenced = unfenced;
        tokio::select! {
            _ = shutdown.changed() => return,
            _ = tokio::time::sleep(if registered { interval } else { CONTROLLER_TICK }) => {}
        }
    }
}

/// The active controller's duties: fence brokers whose heartbeats stopped
/// or whose process is gone (`death_watch.rs`), unfence those that came
/// back, elect leaders for leaderless partitions, rebalance leaders.
///
/// Every change is proposed for the term it was decided in and never
/// forwarded (`propose_as_leader`): a leader paused past the session
/// timeout wakes up seeing every broker silent, and before it learns that
/// another node leads now it would fence them all; forwarded, the new
/// leader committed those fencings (the fault tier's `pause-controller`
/// showed it). A broker's session counts from when this node began to lead
/// in the current term, and starts again after a tick's sleep that overran
/// by half a session (this node stalled; heartbeats may be waiting unread).
async fn controller_loop(cluster: Arc<Cluster>, mut shutdown: watch::Receiver<bool>) {
    let Some(q) = cluster.quorum() else { return };
    let session = Duration::from_millis(cluster.config.broker_session_timeout_ms);
    // A heartbeat this late is overdue: the broker's listener is checked.
    let overdue = Duration::from_millis(cluster.config.broker_heartbeat_interval_ms) + CONTROLLER_TICK;
    let mut losses = q.quorum.connection_losses();
    let mut deaths = DeathWatch::default();
    // Brokers whose connection to this node closed, until when their
    // listener is checked on every (short) tick: a process being killed
    // closes its connections before its listener, so the first check may
    // still be accepted.
    let mut suspects: BTreeMap<i32, Instant> = BTreeMap::new();
    // Brokers whose fencing was logged (once per fencing).
    let mut announced: BTreeSet<i32> = BTreeSet::new();
    // When each broker's listener was last checked.
    let mut checked: BTreeMap<i32, Instant> = BTreeMap::new();
    let rebalance_every = Duration::from_secs(cluster.config.leader_imbalance_check_interval_seconds);
    let mut leading_since: Option<(u64, Instant)> = None;
    let mut last_rebalance = Instant::now();
    loop {
        // Short ticks while not leading (to start at once on becoming the
        // leader: a dead leader's own partitions wait for that) and while
        // a broker is suspect.
        let tick = if suspects.is_empty() && leading_since.is_some() { CONTROLLER_TICK } else { SUSPECT_TICK };
        let slept_from = Instant::now();
        let mut woken = false;
        tokio::select! {
            _ = shutdown.changed() => return,
            _ = tokio::time::sleep(tick) => {}
            loss = losses.recv() => {
                woken = true;
                match loss {
                    Ok(node) => { suspects.insert(node, Instant::now() + SUSPECT_WINDOW); }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                }
            }
        }
        while let Ok(node) = losses.try_recv() {
            suspects.insert(node, Instant::now() + SUSPECT_WINDOW);
        }
        let now = Instant::now();
        suspects.retain(|_, until| *until > now);
        // A sleep (not a wake-up by a lost connection) that overran by half a
        // session: this node stalled.
        let stalled = !woken && now.duration_since(slept_from) > tick + session / 2;
        let Some(term) = q.quorum.leading_term() else {
            leading_since = None;
            suspects.clear();
            checked.clear();
            continue;
        };
        if stalled || leading_since.is_none_or(|(t, _)| t != term) {
            leading_since = Some((term, now));
        }
        let since = leading_since.map_or(now, |(_, since)| since);
        let state = q.state.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let lost: BTreeSet<i32> = suspects.keys().copied().collect();
        check_listeners(&cluster, &state, &q.quorum.liveness(), &lost, overdue, &mut checked, &mut deaths).await;
        suspects.retain(|b, _| !deaths.is_gone(*b, None) && state.brokers.get(b).is_some_and(|r| !r.fenced));
        let liveness = q.quorum.liveness();
        deaths.prune(&liveness, |b| state.brokers.contains_key(&b));
        let now = Instant::now();
        let layers = cluster.image().layers.clone();
        let unclean = |topic: &md::TopicMeta| unclean_election_enabled(&layers, topic);
        // Brokers found gone lead nothing new while their fencing waits.
        let gone: BTreeSet<i32> =
            state.brokers.keys().copied().filter(|b| deaths.is_gone(*b, liveness.get(b).copied())).collect();
        let electable = as_fenced(&state, &gone);
        for broker in state.brokers.values() {
            let last_heartbeat = liveness.get(&broker.broker_id).copied();
            let gone = deaths.is_gone(broker.broker_id, last_heartbeat);
            let alive = !gone && last_heartbeat.is_some_and(|t| now.duration_since(t) < session);
            if !alive && (gone || now.duration_since(since) >= session) {
                // Leaderships go first, and on every tick until none is
                // left: a move that failed (a lost race, a leader change) is
                // retried, and the broker is fenced only once all went, so a
                // fenced broker never stays the leader clients are sent to.
                let moves = leadership_moves(&electable, broker.broker_id, &unclean);
                if !broker.fenced && announced.insert(broker.broker_id) {
                    if gone {
                        tracing::warn!(broker = broker.broker_id, "the broker's listener refuses connections: fencing");
                    } else {
                        tracing::warn!(
                            broker = broker.broker_id,
                            "no heartbeat within broker.session.timeout.ms: fencing"
                        );
                    }
                }
                let mut all_moved = true;
                for command in moves {
                    let outcome = decide(q, command, term).await;
                    all_moved &= outcome.as_ref().is_some_and(partition_moved);
                }
                // A broker found gone is fenced a little after its
                // leaderships moved, not with them: a fenced broker leaves
                // the Metadata answers' broker list, and librdkafka, seeing
                // a partition's new leader and its old leader's removal in
                // one answer, parks the partition until its next 1 s
                // metadata scan.
                let settled = !gone
                    || deaths.refused_at(broker.broker_id).is_some_and(|t| now.duration_since(t) >= FENCE_AFTER_MOVES);
                if !broker.fenced && all_moved && settled {
                    decide(
                        q,
                        MetadataCommand::FenceBroker { broker_id: broker.broker_id, broker_epoch: broker.broker_epoch },
                        term,
                    )
                    .await;
                }
            } else if broker.fenced && alive {
                // A broker that registered again (it restarted) comes back
                // fenced but still holding its previous incarnation's
                // leaderships and ISR places when its session never lapsed
                // (a restart within broker.session.timeout.ms): they go
                // first, as a fencing takes them, so it never leads again in
                // a leader epoch it led before the restart (its log may have
                // lost that epoch's unflushed tail, which followers kept:
                // one epoch, two histories). Kafka refuses the new
                // registration until the old session expires instead.
                let mut all_moved = true;
                for command in leadership_moves(&electable, broker.broker_id, &unclean) {
                    let outcome = decide(q, command, term).await;
                    all_moved &= outcome.as_ref().is_some_and(partition_moved);
                }
                if all_moved {
                    announced.remove(&broker.broker_id);
                    tracing::info!(broker = broker.broker_id, "heartbeating again: unfencing");
                    decide(
                        q,
                        MetadataCommand::UnfenceBroker {
                            broker_id: broker.broker_id,
                            broker_epoch: broker.broker_epoch,
                        },
                        term,
                    )
                    .await;
                }
            }
        }
        // Leaderless partitions with an ISR member that can lead again (a
        // broker just unfenced) are elected on every tick, from the state
        // as published, so a lost race is made good on the next one.
        let state = as_fenced(&q.state.lock().unwrap_or_else(|p| p.into_inner()), &gone);
        for command in leaderless_elections(&state, &unclean) {
            decide(q, command, term).await;
        }
        if cluster.config.auto_leader_rebalance_enable && now.duration_since(last_rebalance) >= rebalance_every {
            last_rebalance = now;
            let state = as_fenced(&q.state.lock().unwrap_or_else(|p| p.into_inner()), &gone);
            if let Some(targets) = rebalance_targets(&state, cluster.config.leader_imbalance_per_broker_percentage) {
                tracing::info!(?targets, "leader imbalance: preferred leader elections");
                decide(
                    q,
                    MetadataCommand::ElectLeaders { election: md::ElectionType::Preferred, targets: Some(targets) },
                    term,
                )
                .await;
            }
        }
    }
}

/// A copy of `state` in which the brokers of `gone` count as fenced: the
/// controller's elections pass them over while their own fencing waits
/// ([`FENCE_AFTER_MOVES`]).
fn as_fenced(state: &MetadataState, gone: &BTreeSet<i32>) -> MetadataState {
    let mut view = state.clone();
    for broker in gone {
        if let Some(b) = view.brokers.get_mut(broker) {
            b.fenced = true;
        }
    }
    view
}

/// Checks, at once, the listeners of the unfenced brokers (other than this
/// node) whose connection to this node closed (every call) or whose
/// heartbeat is overdue (once per [`CONTROLLER_TICK`]), and records the
/// refusals.
async fn check_listeners(
    cluster: &Cluster,
    state: &MetadataState,
    liveness: &BTreeMap<i32, Instant>,
    lost: &BTreeSet<i32>,
    overdue: Duration,
    checked: &mut BTreeMap<i32, Instant>,
    deaths: &mut DeathWatch,
) {
    let now = Instant::now();
    let suspects: Vec<(i32, String)> = state
        .brokers
        .values()
        .filter(|b| b.broker_id != cluster.node_id && !b.fenced)
        .filter(|b| {
            let heartbeat_overdue = liveness.get(&b.broker_id).is_none_or(|t| now.duration_since(*t) >= overdue);
            let due = checked.get(&b.broker_id).is_none_or(|t| now.duration_since(*t) >= CONTROLLER_TICK);
            lost.contains(&b.broker_id) || (heartbeat_overdue && due)
        })
        .filter_map(|b| Some((b.broker_id, broker_address(cluster, b.broker_id)?)))
        .collect();
    if suspects.is_empty() {
        return;
    }
    for (broker, _) in &suspects {
        checked.insert(*broker, now);
    }
    let local = own_host(cluster);
    let checks = suspects.iter().map(|(_, address)| death_watch::check(address, local));
    let results = futures::future::join_all(checks).await;
    for ((broker, address), result) in suspects.iter().zip(results) {
        if result == Check::Refused {
            tracing::info!(broker, %address, "the broker's listener refused a connection");
            deaths.record_refusal(*broker, Instant::now());
        }
    }
}

/// Proposes a controller change decided as the leader of `term` (never
/// forwarded); what applying it did, if it was committed.
async fn decide(q: &QuorumBackend, command: MetadataCommand, term: u64) -> Option<ApplyOutcome> {
    logged(q.quorum.propose_as_leader(command, term).await)
}

/// Proposes a change this broker asks for (forwarded to the leader); what
/// applying it did, if it was committed.
async fn propose_logged(q: &QuorumBackend, command: MetadataCommand) -> Option<ApplyOutcome> {
    logged(q.quorum.propose(command).await)
}

fn logged(
    result: Result<(tributary_quorum::LogId, ApplyOutcome), tributary_quorum::QuorumError>,
) -> Option<ApplyOutcome> {
    match result {
        Ok((_, outcome)) => {
            tracing::debug!(?outcome, "controller change applied");
            Some(outcome)
        }
        Err(e) => {
            tracing::warn!(error = %e, "controller change failed");
            None
        }
    }
}

/// Whether a leadership move left the partition without the leaving
/// broker: changed, or nothing to change, or the partition is gone. A
/// partition epoch that moved on (the move was planned from an older image)
/// is not: the next tick plans again.
fn partition_moved(outcome: &ApplyOutcome) -> bool {
    matches!(
        outcome,
        ApplyOutcome::PartitionChanged { .. }
            | ApplyOutcome::PartitionUnchanged
            | ApplyOutcome::PartitionNotFound
            | ApplyOutcome::TopicNotFound
    )
}

/// A broker may lead when it is registered, unfenced and not shutting down.
fn can_lead(state: &MetadataState, broker: i32) -> bool {
    md::alter_partition::is_active(state, broker)
}

/// The partition changes that take every leadership and ISR membership
/// away from `leaving` (fenced, or shutting down): each partition it leads
/// gets another ISR member that can lead; failing that, when its topic
/// allows unclean elections, any other replica that can lead (the ISR
/// becomes that replica); else no leader.
pub(crate) fn leadership_moves(
    state: &MetadataState,
    leaving: i32,
    unclean: &dyn Fn(&md::TopicMeta) -> bool,
) -> Vec<MetadataCommand> {
    let acceptable = |b: i32| b != leaving && can_lead(state, b);
    let mut out = Vec::new();
    for topic in state.topics.values() {
        for (index, meta) in topic.partitions.iter().enumerate() {
            if meta.leader != leaving && !meta.isr.contains(&leaving) {
                continue;
            }
            let isr: Vec<i32> = meta.isr.iter().copied().filter(|b| *b != leaving).collect();
            let election = if unclean(topic) { Election::Unclean } else { Election::Online };
            let change = PartitionChangeBuilder::new(meta, topic.topic_id, index as i32, &acceptable)
                .target_isr(isr)
                .election(election)
                .build();
            // A sole replica keeps its ISR (never empty): only its leadership goes.
            let change = change.or_else(|| {
                (meta.leader == leaving).then_some(MetadataCommand::ChangePartition {
                    topic_id: topic.topic_id,
                    partition: index as i32,
                    expected_partition_epoch: Some(meta.partition_epoch),
                    leader: Some(-1),
                    isr: None,
                    replicas: None,
                    adding: None,
                    removing: None,
                })
            });
            out.extend(change);
        }
    }
    out
}

/// Leader elections for partitions without a leader whose ISR has a broker
/// that can lead now, or, when the topic allows unclean elections
/// (`unclean.leader.election.enable`), any replica that can.
pub(crate) fn leaderless_elections(
    state: &MetadataState,
    unclean: &dyn Fn(&md::TopicMeta) -> bool,
) -> Vec<MetadataCommand> {
    let acceptable = |b: i32| can_lead(state, b);
    let mut out = Vec::new();
    for topic in state.topics.values() {
        for (index, meta) in topic.partitions.iter().enumerate() {
            if meta.leader != -1 {
                continue;
            }
            let election = if meta.isr.iter().any(|b| acceptable(*b)) {
                Election::Online
            } else if unclean(topic) && meta.replicas.iter().any(|b| acceptable(*b)) {
                tracing::warn!(topic = %topic.name, partition = index, isr = ?meta.isr,
                    "no in-sync replica is alive: unclean leader election (unclean.leader.election.enable)");
                Election::Unclean
            } else {
                continue;
            };
            out.extend(
                PartitionChangeBuilder::new(meta, topic.topic_id, index as i32, &acceptable).election(election).build(),
            );
        }
    }
    out
}

/// Stops a node whose peers refuse it (another cluster id, other
/// `controller.quorum.voters`) and that has found no leader.
async fn watchdog_loop(cluster: Arc<Cluster>, mut shutdown: watch::Receiver<bool>) {
    let Some(q) = cluster.quorum() else { return };
    let started = Instant::now();
    loop {
        tokio::select! {
            _ = shutdown.changed() => return,
            _ = tokio::time::sleep(CONTROLLER_TICK) => {}
        }
        if q.quorum.leader().is_some() {
            return;
        }
        if started.elapsed() >= REFUSED_GRACE
            && let Some(reason) = q.quorum.last_refusal()
        {
            cluster.fail(format!("the metadata quorum refuses this node: {reason}"));
            return;
        }
    }
}

/// Controlled shutdown: this broker is marked as shutting down (it may no
/// longer lead or join an ISR: an AlterPartition adding it is refused with
/// INELIGIBLE_REPLICA), its leaderships move to other ISR members (or to
/// none), then its registration is removed, so clients stop being sent here
/// before the process exits. Best effort within `limit`.
pub(crate) async fn controlled_shutdown(cluster: &Cluster, limit: Duration) {
    let Some(q) = cluster.quorum() else { return };
    let work = async {
        let state = q.state.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let Some(me) = state.brokers.get(&cluster.node_id).cloned() else { return };
        let shutting_down =
            MetadataCommand::BeginControlledShutdown { broker_id: me.broker_id, broker_epoch: me.broker_epoch };
        propose_logged(q, shutting_down).await;
        let state = q.state.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let layers = cluster.image().layers.clone();
        let unclean = |topic: &md::TopicMeta| unclean_election_enabled(&layers, topic);
        let moves = leadership_moves(&state, cluster.node_id, &unclean);
        tracing::info!(partitions = moves.len(), "controlled shutdown: moving leaderships away");
        for command in moves {
            propose_logged(q, command).await;
        }
        propose_logged(q, MetadataCommand::UnregisterBroker { broker_id: me.broker_id, broker_epoch: me.broker_epoch })
            .await;
    };
    if tokio::time::timeout(limit, work).await.is_err() {
        tracing::warn!("controlled shutdown did not finish in time; stopping anyway");
    }
}

/// Stops the quorum and its listener.
pub(crate) async fn stop(cluster: &Cluster) {
    let Some(q) = cluster.quorum() else { return };
    q.quorum.shutdown().await;
    if let Some(server) = q.server.lock().unwrap_or_else(|p| p.into_inner()).take() {
        server.shutdown();
    }
}

/// `meta.properties` for `tributary storage format`.
pub fn format_meta(node_id: i32, cluster_id: &str) -> MetaProperties {
    MetaProperties { node_id: Some(node_id), cluster_id: Some(cluster_id.to_string()) }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use tributary_metadata::{BrokerRegistration, MetadataCommand, MetadataState, PartitionMeta, TopicMeta};
    use tributary_quorum::Timing;

    use super::{leaderless_elections, leadership_moves};

    /// Brokers 1-3 (those in `fenced` fenced); topic "t" with one partition.
    fn state(fenced: &[i32], replicas: &[i32], leader: i32, isr: &[i32]) -> MetadataState {
        let mut s = MetadataState::default();
        for id in 1..=3 {
            s.brokers.insert(
                id,
                BrokerRegistration {
                    broker_id: id,
                    incarnation_id: [0; 16],
                    broker_epoch: 1,
                    listeners: vec![],
                    rack: None,
                    fenced: fenced.contains(&id),
                    in_controlled_shutdown: false,
                },
            );
        }
        let partition = PartitionMeta {
            replicas: replicas.to_vec(),
            leader,
            leader_epoch: 3,
            isr: isr.to_vec(),
            partition_epoch: 3,
            adding_replicas: Vec::new(),
            removing_replicas: Vec::new(),
        };
        let topic =
            TopicMeta { name: "t".into(), topic_id: [1; 16], partitions: vec![partition], configs: BTreeMap::new() };
        s.topics.insert("t".into(), topic);
        s
    }

    fn leader_and_isr(commands: &[MetadataCommand]) -> Vec<(Option<i32>, Option<Vec<i32>>)> {
        commands
            .iter()
            .map(|c| match c {
                MetadataCommand::ChangePartition { leader, isr, .. } => (*leader, isr.clone()),
                other => panic!("unexpected {other:?}"),
            })
            .collect()
    }

    #[test]
    fn a_leaderless_partition_gets_an_out_of_sync_replica_only_when_its_topic_allows_it() {
        // The only ISR member (1) is fenced; 2 and 3 are alive but out of sync.
        let s = state(&[1], &[1, 2, 3], -1, &[1]);
        assert!(leaderless_elections(&s, &|_| false).is_empty(), "clean: the partition stays offline");
        assert_eq!(leader_and_isr(&leaderless_elections(&s, &|_| true)), vec![(Some(2), Some(vec![2]))]);
        // An ISR member that can lead again is elected either way, cleanly.
        let s = state(&[], &[1, 2, 3], -1, &[1]);
        assert_eq!(leader_and_isr(&leaderless_elections(&s, &|_| false)), vec![(Some(1), None)]);
    }

    #[test]
    fn fencing_the_last_isr_member_elects_uncleanly_only_when_allowed() {
        let s = state(&[], &[1, 2, 3], 1, &[1]);
        assert_eq!(leader_and_isr(&leadership_moves(&s, 1, &|_| false)), vec![(Some(-1), None)]);
        assert_eq!(leader_and_isr(&leadership_moves(&s, 1, &|_| true)), vec![(Some(2), Some(vec![2]))]);
    }

    #[test]
    fn the_documented_quorum_timeouts_are_the_quorums_defaults() {
        let d = Timing::default();
        for (key, value) in [
            ("controller.quorum.fetch.timeout.ms", d.fetch_timeout),
            ("controller.quorum.election.timeout.ms", d.election_timeout),
            ("controller.quorum.election.backoff.max.ms", d.election_backoff_max),
            ("controller.quorum.retry.backoff.ms", d.retry_backoff),
        ] {
            let def = tributary_config::defs::broker_config(key).expect("a known broker key");
            let documented = def.default.and_then(|v| v.parse().ok()).map(Duration::from_millis);
            assert_eq!(documented, Some(value), "{key}");
        }
    }
}
