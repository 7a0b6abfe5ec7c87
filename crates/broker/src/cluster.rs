//! The broker's shared state, put together from parts that each own one
//! thing:
//!
//! | part | owns |
//! |---|---|
//! | [`DataDir`](crate::node::DataDir) | the data directory: lock, clean-shutdown marker, `meta.properties` |
//! | the metadata store (behind [`Cluster::propose`]) | the durable metadata log; proposals are serialised here |
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

use tributary_config::{BrokerConfig, BrokerLayers, Listener};
use tributary_metadata::{MetadataCommand, MetadataStore};
use tributary_protocol::ErrorCode;
use tributary_types::base64_url_no_pad;

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
    metadata: Mutex<MetadataStore>,
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
    /// not clean).
    pub fn open(config: BrokerConfig) -> Result<Cluster, StartError> {
        let data_dir = DataDir::open(&config.data_dir)?;
        let dir_error = |reason: String| DataDirError { path: data_dir.path().to_path_buf(), reason };
        let mut metadata = MetadataStore::open(&data_dir.metadata_dir(), config.node_id)?;
        if metadata.state().cluster_id.is_none() {
            let cluster_id = base64_url_no_pad(&uuid_bytes());
            metadata.append(MetadataCommand::InitCluster { cluster_id })?;
        }
        let image = MetadataImage::empty(config.properties.clone()).next(metadata.state(), config.node_id);
        data_dir.write_meta_properties(config.node_id, &image.cluster_id).map_err(|e| dir_error(e.to_string()))?;

        let started = std::time::Instant::now();
        let mut replicas = ReplicaManager::new(data_dir.path().to_path_buf(), config.clone(), data_dir.clean_start());
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
            metadata: Mutex::new(metadata),
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
        })
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

    /// Locks the metadata store: proposals are made one at a time, each
    /// validated against the image its predecessors produced.
    ///
    /// If an earlier holder panicked, the store's in-memory state may not
    /// match its files: it is reopened from disk (what was acknowledged is
    /// durable there) before the lock is handed on, and the image and the
    /// local partitions are brought in line with what it holds.
    pub(crate) fn metadata(&self) -> std::sync::MutexGuard<'_, MetadataStore> {
        match self.metadata.lock() {
            Ok(guard) => guard,
            Err(poisoned) => {
                let mut guard = poisoned.into_inner();
                tracing::error!("a panic while the metadata store was locked; reopening it from disk");
                match crate::cpu::off_workers(|| MetadataStore::open(&self.data_dir.metadata_dir(), self.node_id)) {
                    Ok(store) => {
                        *guard = store;
                        self.metadata.clear_poison();
                        self.publish(&guard);
                    }
                    // Left poisoned: the next holder tries again, and proposals fail meanwhile.
                    Err(e) => tracing::error!(error = %e, "reopening the metadata store failed"),
                }
                guard
            }
        }
    }

    /// Proposes `command` (the store's lock held): once it is durable and
    /// applied, the image moves on and the reconciler brings this node's
    /// partitions in line before this returns. Returns the command's index.
    pub(crate) fn propose(&self, store: &mut MetadataStore, command: MetadataCommand) -> Result<u64, ApiError> {
        if self.metadata.is_poisoned() {
            return Err(ApiError::new(
                ErrorCode::KafkaStorageError,
                "the metadata store could not be reopened after a failure; see the broker log and restart it",
            ));
        }
        let index = store.append(command).map_err(|e| {
            tracing::error!(error = %e, "metadata append failed");
            ApiError::new(ErrorCode::KafkaStorageError, format!("cannot persist the metadata change: {e}"))
        })?;
        self.publish(store);
        Ok(index)
    }

    /// Rebuilds the image from the store's applied state, reconciles the
    /// local partitions and publishes both.
    fn publish(&self, store: &MetadataStore) {
        let old = self.image();
        let next = Arc::new(old.next(store.state(), self.node_id));
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
        *self.image.write().unwrap_or_else(|p| p.into_inner()) = next;
        *self.registry.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(reconciled.registry);
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
