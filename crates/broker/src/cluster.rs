//! The broker's shared state, put together from parts that each own one
//! thing:
//!
//! | part | owns |
//! |---|---|
//! | [`DataDir`](crate::node::DataDir) | the data directory: lock, clean-shutdown marker, `meta.properties` |
//! | the metadata backend (`backend.rs`, behind [`Cluster::propose`]) | the durable metadata log: a single-node store, or a quorum member in KRaft mode; proposals are serialised here |
//! | [`MetadataImage`] | the committed metadata: topics, partitions, configs |
//! | [`ReplicaManager`] | the partition logs this node holds |
//! | [`reconcile`](crate::reconciler::reconcile) | turning each committed change into local partition changes |
//! | [`Registry`] | what request handlers see: topics with their hosted partitions |
//! | admin (`admin.rs`) | validating admin requests and proposing their commands |
//! | coordinators and services | group coordinator, flusher, CPU pool, schema validation |
//!
//! An admin request validates against the image, proposes a command and
//! returns once it is committed and applied; the reconciler, not the
//! request, opens, changes or removes partition logs.

use std::sync::{Arc, Mutex, RwLock};

use tokio::sync::watch;
use tributary_config::{BrokerConfig, BrokerLayers, Listener};
use tributary_metadata::{ApplyOutcome, MetadataCommand, MetadataState, MetadataStore};
use tributary_protocol::ErrorCode;
use tributary_quorum::MetadataQuorum;
use tributary_types::base64_url_no_pad;

use crate::backend::{Backend, PUBLISH_WAIT, QuorumBackend, Turn, outcome_error, quorum_error};
use crate::cpu::CpuPool;
use crate::error::ApiError;
use crate::flusher::Flusher;
use crate::groups::GroupService;
use crate::image::MetadataImage;
use crate::limits::{ListenerLimits, effective_connection_limits};
use crate::node::{DataDir, DataDirError};
use crate::reconciler::reconcile;
use crate::replicas::ReplicaManager;
use crate::schema_validation::SchemaValidation;

pub use crate::admin::NewTopic;
pub use crate::registry::{INTERNAL_TOPICS, Registry, TopicState};
pub use crate::replicas::log_config;

/// Request jobs that may wait on storage at once (see [`Cluster::waiting`]).
const WAITING_JOBS_MAX: usize = 64;

/// Why the broker could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The data directory cannot be used.
    #[error(transparent)]
    DataDir(#[from] DataDirError),
    /// The metadata log cannot be opened.
    #[error(transparent)]
    Metadata(#[from] tributary_metadata::MetadataError),
    /// The KRaft settings or this node's place in the quorum are wrong (one line).
    #[error("{0}")]
    Config(String),
    /// The metadata quorum could not start.
    #[error("cannot start the metadata quorum: {0}")]
    Quorum(String),
    /// A partition log cannot be opened.
    #[error("cannot open partition {topic}-{partition}: {source}")]
    Partition {
        /// Topic.
        topic: String,
        /// Partition.
        partition: i32,
        /// Cause.
        #[source]
        source: tributary_log::LogError,
    },
}

/// The broker's shared state.
pub struct Cluster {
    /// Static configuration.
    pub config: BrokerConfig,
    /// This node's id.
    pub node_id: i32,
    data_dir: DataDir,
    backend: Backend,
    /// Set when the node must stop (its data directory belongs to another
    /// cluster, the quorum refuses it): one line for the operator.
    fatal: watch::Sender<Option<String>>,
    image: RwLock<Arc<MetadataImage>>,
    registry: RwLock<Arc<Registry>>,
    replicas: Mutex<ReplicaManager>,
    /// Group commit.
    pub flusher: Flusher,
    /// CPU-heavy request work (batch validation, recompression, timestamp scans).
    pub cpu: CpuPool,
    /// Request work that may wait on storage (schema checks that catch up
    /// with the schema storage topic): many slots, none of them a CPU slot.
    pub waiting: CpuPool,
    /// The group coordinator.
    pub groups: GroupService,
    /// Topic schema validation and its index of registered schema ids.
    pub schema_validation: SchemaValidation,
    pub(crate) producer_ids: Mutex<(i64, i64)>,
    advertised: RwLock<Vec<Listener>>,
    /// Connection quotas and the request-memory budget of the listeners.
    pub(crate) listener_limits: Arc<ListenerLimits>,
    /// AlterPartition requests of replicated partitions, taken by the
    /// replication driver (`replica_driver.rs`) when it starts.
    pub(crate) alter_queue: Mutex<Option<tokio::sync::mpsc::UnboundedReceiver<crate::replication::AlterJob>>>,
    /// Reassignment traffic measured against the replication throttles.
    pub replication_quotas: crate::replication_quota::ReplicationQuotas,
    /// This broker's lease on its leaderships, renewed by answered
    /// heartbeats (KRaft only; see `leader_lease.rs`).
    pub leader_lease: Option<Arc<crate::leader_lease::LeaderLease>>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("node_id", &self.node_id)
            .field("data_dir", &self.data_dir.path())
            .finish_non_exhaustive()
    }
}

fn uuid_bytes() -> [u8; 16] {
    *uuid::Uuid::new_v4().as_bytes()
}

impl Cluster {
    /// Opens the data directory: lock, metadata replay, then every partition
    /// log of the committed metadata (recovering them if the last stop was
    /// not clean). A node alone: the single-node metadata store.
    pub fn open(config: BrokerConfig) -> Result<Cluster, StartError> {
        let data_dir = DataDir::open(&config.data_dir)?;
        let dir_error = |reason: String| DataDirError { path: data_dir.path().to_path_buf(), reason };
        let mut metadata = MetadataStore::open(&data_dir.metadata_dir(), config.node_id)?;
        if metadata.state().cluster_id.is_none() {
            let cluster_id = base64_url_no_pad(&uuid_bytes());
            metadata.append(MetadataCommand::InitCluster { cluster_id })?;
        }
        let state = metadata.state().clone();
        let cluster_id = state.cluster_id.clone().unwrap_or_default();
        data_dir.write_meta_properties(config.node_id, &cluster_id).map_err(|e| dir_error(e.to_string()))?;
        Cluster::assemble(config, data_dir, Backend::Local(Box::new(Mutex::new(metadata))), &state)
    }

    /// Opens a KRaft node's data directory (locked and checked beforehand by
    /// the caller, which started `backend`'s quorum on its metadata log)
    /// and its partition logs as the state the quorum restored says.
    pub fn open_quorum(config: BrokerConfig, data_dir: DataDir, backend: QuorumBackend) -> Result<Cluster, StartError> {
        let state = backend.state.lock().unwrap_or_else(|p| p.into_inner()).clone();
        Cluster::assemble(config, data_dir, Backend::Quorum(Box::new(backend)), &state)
    }

    fn assemble(
        config: BrokerConfig,
        data_dir: DataDir,
        backend: Backend,
        state: &MetadataState,
    ) -> Result<Cluster, StartError> {
        let dir_error = |reason: String| DataDirError { path: data_dir.path().to_path_buf(), reason };
        let image = MetadataImage::empty(config.properties.clone()).next(state, config.node_id);

        let started = std::time::Instant::now();
        let mut replicas = ReplicaManager::new(data_dir.path().to_path_buf(), config.clone(), data_dir.clean_start());
        let (alter_tx, alter_rx) = tokio::sync::mpsc::unbounded_channel();
        replicas.set_alter_queue(alter_tx);
        let mut leader_lease = None;
        if let Backend::Quorum(q) = &backend {
            replicas.set_incarnation(q.incarnation);
            let lease = Arc::new(crate::leader_lease::LeaderLease::new(std::time::Duration::from_millis(
                config.broker_session_timeout_ms,
            )));
            replicas.set_leader_lease(lease.clone());
            leader_lease = Some(lease);
        }
        let empty = MetadataImage::empty(config.properties.clone());
        let reconciled = reconcile(config.node_id, &empty, &image, &Registry::default(), &mut replicas);
        if let Some(failure) = reconciled.failures.into_iter().next() {
            return Err(StartError::Partition {
                topic: failure.topic,
                partition: failure.partition,
                source: failure.error,
            });
        }
        replicas.started();
        let registry = reconciled.registry;
        tracing::info!(
            topics = registry.topics.len(),
            partitions = registry.topics.values().map(|t| t.partitions.len()).sum::<usize>(),
            clean_shutdown = data_dir.clean_start(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "opened logs"
        );
        data_dir.remove_stray_partition_dirs(|topic, p| {
            registry.topics.get(topic).is_some_and(|t| t.partition(p).is_some())
        });

        let flusher = Flusher::start().map_err(|e| dir_error(format!("cannot start the flusher thread: {e}")))?;
        let block_start = image.producer_id_block_end;
        let groups = GroupService::new(&config);
        let schema_validation = SchemaValidation::new(config.schema_registry_topic.clone());
        let connection_limits = effective_connection_limits(&image.layers).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "stored dynamic connection limits are invalid; using the static ones");
            config.connection_limits.clone()
        });
        let listener_limits = Arc::new(ListenerLimits::new(&connection_limits, config.queued_max_request_bytes));
        Ok(Cluster {
            node_id: config.node_id,
            advertised: RwLock::new(config.advertised_listeners.clone()),
            config,
            data_dir,
            backend,
            fatal: watch::Sender::new(None),
            image: RwLock::new(Arc::new(image)),
            registry: RwLock::new(Arc::new(registry)),
            replicas: Mutex::new(replicas),
            flusher,
            cpu: CpuPool::per_core(),
            waiting: CpuPool::new(WAITING_JOBS_MAX),
            groups,
            schema_validation,
            producer_ids: Mutex::new((block_start, block_start)),
            listener_limits,
            alter_queue: Mutex::new(Some(alter_rx)),
            replication_quotas: Default::default(),
            leader_lease,
        })
    }

    /// The quorum side of a KRaft node (`None` on a node alone).
    pub fn quorum(&self) -> Option<&QuorumBackend> {
        match &self.backend {
            Backend::Quorum(q) => Some(q),
            Backend::Local(_) => None,
        }
    }

    /// Stops the node with one line for the operator (see [`Cluster::fatal`]).
    pub(crate) fn fail(&self, reason: String) {
        tracing::error!(%reason, "stopping the broker");
        self.fatal.send_if_modified(|f| {
            let first = f.is_none();
            if first {
                *f = Some(reason);
            }
            first
        });
    }

    /// Resolves with a reason once the node must stop.
    pub fn fatal(&self) -> watch::Receiver<Option<String>> {
        self.fatal.subscribe()
    }

    /// The cluster id.
    pub fn cluster_id(&self) -> String {
        self.image().cluster_id.clone()
    }

    /// The data directory.
    pub fn data_dir(&self) -> &std::path::Path {
        self.data_dir.path()
    }

    /// The committed metadata.
    pub fn image(&self) -> Arc<MetadataImage> {
        self.image.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The current registry snapshot.
    pub fn registry(&self) -> Arc<Registry> {
        self.registry.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The current config layers.
    pub fn layers(&self) -> Arc<BrokerLayers> {
        self.image().layers.clone()
    }

    /// Advertised listeners (ports resolved after binding).
    pub fn advertised_listeners(&self) -> Vec<Listener> {
        self.advertised.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Replaces the advertised listeners once the real ports are known.
    pub fn set_advertised_listeners(&self, listeners: Vec<Listener>) {
        *self.advertised.write().unwrap_or_else(|p| p.into_inner()) = listeners;
    }

    /// This node's turn to propose: proposals are made one at a time, each
    /// validated against the image its predecessors produced.
    ///
    /// Alone, the turn is the store itself. If an earlier holder panicked,
    /// the store's in-memory state may not match its files: it is reopened
    /// from disk (what was acknowledged is durable there) before the lock is
    /// handed on, and the image and the local partitions are brought in
    /// line with what it holds.
    pub(crate) fn metadata(&self) -> Turn<'_> {
        let store = match &self.backend {
            Backend::Quorum(q) => return Turn::Quorum(q.proposals.lock().unwrap_or_else(|p| p.into_inner())),
            Backend::Local(store) => store,
        };
        match store.lock() {
            Ok(guard) => Turn::Local(guard),
            Err(poisoned) => {
                let mut guard = poisoned.into_inner();
                tracing::error!("a panic while the metadata store was locked; reopening it from disk");
                match crate::cpu::off_workers(|| MetadataStore::open(&self.data_dir.metadata_dir(), self.node_id)) {
                    Ok(reopened) => {
                        *guard = reopened;
                        store.clear_poison();
                        self.publish(guard.state());
                    }
                    // Left poisoned: the next holder tries again, and proposals fail meanwhile.
                    Err(e) => tracing::error!(error = %e, "reopening the metadata store failed"),
                }
                Turn::Local(guard)
            }
        }
    }

    /// Proposes `command` (this node's turn held): once it is committed and
    /// applied, the image moves on and the reconciler brings this node's
    /// partitions in line before this returns. An outcome that means the
    /// change was not made (another proposal won a race) is the Kafka error
    /// a client expects.
    pub(crate) fn propose(&self, turn: &mut Turn<'_>, command: MetadataCommand) -> Result<ApplyOutcome, ApiError> {
        let outcome = match turn {
            Turn::Local(store) => {
                if matches!(&self.backend, Backend::Local(m) if m.is_poisoned()) {
                    return Err(ApiError::new(
                        ErrorCode::KafkaStorageError,
                        "the metadata store could not be reopened after a failure; see the broker log and restart it",
                    ));
                }
                let (_, outcome) = store.propose(command).map_err(|e| {
                    tracing::error!(error = %e, "metadata append failed");
                    ApiError::new(ErrorCode::KafkaStorageError, format!("cannot persist the metadata change: {e}"))
                })?;
                self.publish(store.state());
                outcome
            }
            Turn::Quorum(_) => {
                let Some(q) = self.quorum() else {
                    return Err(ApiError::new(ErrorCode::UnknownServerError, "no metadata quorum"));
                };
                // Admin work runs on blocking threads (see backend.rs), so blocking on the runtime is fine here.
                let (log_id, outcome) = q.runtime.block_on(q.quorum.propose(command)).map_err(|e| {
                    tracing::warn!(error = %e, "metadata proposal failed");
                    quorum_error(&e)
                })?;
                self.wait_published(q, crate::cluster_mode::metadata_index(log_id))?;
                outcome
            }
        };
        match outcome_error(&outcome) {
            Some(e) => Err(e),
            None => Ok(outcome),
        }
    }

    /// Waits until the image and registry show metadata index `index`.
    fn wait_published(&self, q: &QuorumBackend, index: u64) -> Result<(), ApiError> {
        let mut published = q.published.subscribe();
        let reached =
            q.runtime.block_on(async { tokio::time::timeout(PUBLISH_WAIT, published.wait_for(|p| *p >= index)).await });
        match reached {
            Ok(Ok(_)) => Ok(()),
            _ => Err(ApiError::new(
                ErrorCode::RequestTimedOut,
                "The metadata change is committed but this broker has not applied it yet.",
            )),
        }
    }

    /// Rebuilds the image from `state`, reconciles the local partitions and
    /// publishes both.
    pub(crate) fn publish(&self, state: &MetadataState) {
        let old = self.image();
        let next = Arc::new(old.next(state, self.node_id));
        // Read before reconciling: it changes the roles of the partitions both registries share.
        let offsets_led_before = offsets_partitions(&self.registry());
        let mut replicas = self.replicas.lock().unwrap_or_else(|p| p.into_inner());
        let reconciled = reconcile(self.node_id, &old, &next, &self.registry(), &mut replicas);
        drop(replicas);
        if reconciled.opened
            && let Err(e) = self.data_dir.sync()
        {
            tracing::warn!(error = %e, "cannot sync the data directory after creating partitions");
        }
        if !Arc::ptr_eq(&old.layers, &next.layers) {
            match effective_connection_limits(&next.layers) {
                Ok(limits) => self.listener_limits.reconfigure(&limits),
                Err(e) => {
                    tracing::warn!(error = %e, "committed connection limits are invalid; keeping the current ones")
                }
            }
        }
        let offsets_moved = offsets_led_before != offsets_partitions(&reconciled.registry);
        *self.image.write().unwrap_or_else(|p| p.into_inner()) = next;
        *self.registry.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(reconciled.registry);
        if offsets_moved {
            self.groups.request_reload();
        }
    }

    /// Writes `meta.properties` (a KRaft node learns its cluster id from the log).
    pub(crate) fn write_meta_properties(&self, cluster_id: &str) -> std::io::Result<()> {
        self.data_dir.write_meta_properties(self.node_id, cluster_id)
    }

    /// Closes every log cleanly and leaves the clean-shutdown marker.
    pub fn close(&self) {
        self.flusher.stop();
        let mut all_clean = true;
        for topic in self.registry().topics.values() {
            for p in &topic.partitions {
                let mut log = p.log();
                if log.offline_reason().is_some() {
                    // Whatever it holds was not flushed by this close: the next start validates it.
                    all_clean = false;
                    continue;
                }
                if let Err(e) = log.close() {
                    all_clean = false;
                    tracing::error!(topic = %topic.name, partition = p.index, error = %e, "closing partition failed");
                }
            }
        }
        if all_clean && let Err(e) = self.data_dir.mark_clean_shutdown() {
            tracing::warn!(error = %e, "cannot write the clean shutdown marker; the next start will validate the logs");
        }
    }
}

/// The `__consumer_offsets` partitions a registry hosts and leads, with
/// their leader epochs (the coordinator reloads a partition led anew).
fn offsets_partitions(registry: &Registry) -> Vec<(i32, i32)> {
    registry
        .topics
        .get(crate::groups::OFFSETS_TOPIC)
        .map(|t| t.partitions.iter().filter(|p| p.is_leader()).map(|p| (p.index, p.leader_epoch())).collect())
        .unwrap_or_default()
}
