//! The broker's state: the metadata store, the registry of hosted topics and
//! partitions, config layers, the group-commit flusher and producer id
//! allocation. Admin operations validate here, append a metadata command,
//! then bring the registry and the on-disk partitions in line with it.

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use tokio::sync::watch;
use tributary_config::defs::broker_config;
use tributary_config::value::{ConfigType, validate};
use tributary_config::{BrokerConfig, BrokerLayers, Listener, TopicConfig, validate_topic_config};
use tributary_log::{AppendInfo, AppendOutcome, CompactionConfig, LogConfig, PartitionLog};
use tributary_metadata::{MetadataCommand, MetadataStore, PRODUCER_ID_BLOCK_SIZE, PartitionMeta, TopicMeta};
use tributary_protocol::ErrorCode;
use tributary_record::Compression;
use tributary_record::builder::{BatchBuilder, RecordSpec};
use tributary_types::{TopicId, base64_url_no_pad, now_ms, validate_topic_name};

use crate::cpu::CpuPool;
use crate::error::ApiError;
use crate::flusher::Flusher;
use crate::groups::GroupService;
use crate::partition::{Partition, PartitionRef, Progress};
use crate::schema_validation::SchemaValidation;

/// File whose presence at start means the last stop was clean.
const CLEAN_SHUTDOWN_FILE: &str = ".tributary_cleanshutdown";
/// Directory of the metadata log inside the data directory.
const METADATA_DIR: &str = "__cluster_metadata";

/// Topics that belong to the platform itself.
pub const INTERNAL_TOPICS: &[&str] = &["__consumer_offsets", "__transaction_state"];

/// A hosted topic.
#[derive(Debug)]
pub struct TopicState {
    /// Name.
    pub name: String,
    /// Id.
    pub topic_id: TopicId,
    /// Partitions by index.
    pub partitions: Vec<PartitionRef>,
    /// Topic-level overrides.
    pub overrides: BTreeMap<String, String>,
    /// Effective typed config.
    pub config: TopicConfig,
}

impl TopicState {
    /// The partition with this index, if the topic has it.
    pub fn partition(&self, index: i32) -> Option<&PartitionRef> {
        usize::try_from(index).ok().and_then(|i| self.partitions.get(i))
    }

    /// Whether the topic is internal to the platform.
    pub fn is_internal(&self) -> bool {
        INTERNAL_TOPICS.contains(&self.name.as_str())
    }
}

/// Immutable snapshot of hosted topics; replaced as a whole on change.
#[derive(Debug, Default, Clone)]
pub struct Registry {
    /// Topics by name.
    pub topics: BTreeMap<String, Arc<TopicState>>,
    /// Topics by id.
    pub by_id: HashMap<TopicId, Arc<TopicState>>,
}

impl Registry {
    /// A partition by topic name and index.
    pub fn partition(&self, topic: &str, index: i32) -> Option<&PartitionRef> {
        self.topics.get(topic).and_then(|t| t.partition(index))
    }

    fn insert(&mut self, topic: Arc<TopicState>) {
        self.by_id.insert(topic.topic_id, topic.clone());
        self.topics.insert(topic.name.clone(), topic);
    }

    fn remove(&mut self, name: &str) -> Option<Arc<TopicState>> {
        let topic = self.topics.remove(name)?;
        self.by_id.remove(&topic.topic_id);
        Some(topic)
    }
}

/// Why the broker could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The data directory cannot be used.
    #[error("cannot use data directory {path}: {reason}")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// Why, with what to do.
        reason: String,
    },
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

/// A topic to create, as requested.
#[derive(Debug, Clone)]
pub struct NewTopic {
    /// Name.
    pub name: String,
    /// Partitions (-1 = `num.partitions`).
    pub num_partitions: i32,
    /// Replication factor (-1 = `default.replication.factor`).
    pub replication_factor: i16,
    /// Explicit replica assignments by partition, if any.
    pub assignments: Vec<(i32, Vec<i32>)>,
    /// Topic configs.
    pub configs: BTreeMap<String, String>,
}

/// The broker's shared state.
pub struct Cluster {
    /// Static configuration.
    pub config: BrokerConfig,
    /// This node's id.
    pub node_id: i32,
    cluster_id: String,
    data_dir: PathBuf,
    metadata: Mutex<MetadataStore>,
    registry: RwLock<Arc<Registry>>,
    layers: RwLock<Arc<BrokerLayers>>,
    /// Group commit.
    pub flusher: Flusher,
    /// CPU-heavy request work (batch validation, recompression, timestamp scans).
    pub cpu: CpuPool,
    /// The group coordinator.
    pub groups: GroupService,
    /// Topic schema validation and its index of registered schema ids.
    pub schema_validation: SchemaValidation,
    producer_ids: Mutex<(i64, i64)>,
    advertised: RwLock<Vec<Listener>>,
    _lock: File,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("node_id", &self.node_id)
            .field("data_dir", &self.data_dir)
            .finish_non_exhaustive()
    }
}

fn uuid_bytes() -> [u8; 16] {
    *uuid::Uuid::new_v4().as_bytes()
}

impl Cluster {
    /// Opens the data directory: lock, metadata replay, every partition log
    /// (recovering them if the last stop was not clean).
    pub fn open(config: BrokerConfig) -> Result<Cluster, StartError> {
        let data_dir = config.data_dir.clone();
        let dir_error = |reason: String| StartError::DataDir { path: data_dir.clone(), reason };
        fs::create_dir_all(&data_dir).map_err(|e| dir_error(format!("{e}; check the path and its permissions")))?;
        let lock = File::create(data_dir.join(".lock")).map_err(|e| dir_error(e.to_string()))?;
        if lock.try_lock().is_err() {
            return Err(dir_error(
                "another Tributary process is using it; stop that process or pick another --data-dir".to_string(),
            ));
        }
        let marker = data_dir.join(CLEAN_SHUTDOWN_FILE);
        let clean = marker.exists();
        if clean {
            fs::remove_file(&marker).map_err(|e| dir_error(e.to_string()))?;
            File::open(&data_dir).and_then(|d| d.sync_all()).map_err(|e| dir_error(e.to_string()))?;
        }

        let mut metadata = MetadataStore::open(&data_dir.join(METADATA_DIR), config.node_id)?;
        if metadata.state().cluster_id.is_none() {
            let cluster_id = base64_url_no_pad(&uuid_bytes());
            metadata.append(MetadataCommand::InitCluster { cluster_id })?;
        }
        let state = metadata.state().clone();
        let cluster_id = state.cluster_id.clone().unwrap_or_default();
        write_meta_properties(&data_dir, config.node_id, &cluster_id).map_err(|e| dir_error(e.to_string()))?;

        let layers = Arc::new(BrokerLayers {
            dynamic_broker: state.broker_configs.get(&config.node_id).cloned().unwrap_or_default(),
            dynamic_default: state.default_broker_configs.clone(),
            static_props: config.properties.clone(),
        });
        let started = std::time::Instant::now();
        let mut registry = Registry::default();
        for topic in state.topics.values() {
            let overrides = topic.configs.clone();
            let topic_config = layers.topic_config(&overrides);
            let log_config = log_config(&topic_config, &config);
            let topic_id = TopicId(topic.topic_id);
            let mut partitions = Vec::with_capacity(topic.partitions.len());
            for (index, meta) in topic.partitions.iter().enumerate() {
                let index = index as i32;
                let dir = partition_dir(&data_dir, &topic.name, index);
                let log = PartitionLog::open(&dir, log_config, clean, meta.leader_epoch, now_ms())
                    .map_err(|source| StartError::Partition { topic: topic.name.clone(), partition: index, source })?;
                partitions.push(Partition::new(topic.name.clone(), topic_id, index, meta.leader_epoch, log));
            }
            registry.insert(Arc::new(TopicState {
                name: topic.name.clone(),
                topic_id,
                partitions,
                overrides,
                config: topic_config,
            }));
        }
        let partition_count: usize = registry.topics.values().map(|t| t.partitions.len()).sum();
        tracing::info!(
            topics = registry.topics.len(),
            partitions = partition_count,
            clean_shutdown = clean,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "opened logs"
        );
        remove_stray_partition_dirs(&data_dir, &registry);

        let flusher = Flusher::start().map_err(|e| dir_error(format!("cannot start the flusher thread: {e}")))?;
        let block_start = state.producer_id_block_end;
        let groups = GroupService::new(&config);
        let schema_validation = SchemaValidation::new(config.schema_registry_topic.clone());
        Ok(Cluster {
            node_id: config.node_id,
            advertised: RwLock::new(config.advertised_listeners.clone()),
            config,
            cluster_id,
            data_dir,
            metadata: Mutex::new(metadata),
            registry: RwLock::new(Arc::new(registry)),
            layers: RwLock::new(layers),
            flusher,
            cpu: CpuPool::per_core(),
            groups,
            schema_validation,
            producer_ids: Mutex::new((block_start, block_start)),
            _lock: lock,
        })
    }

    /// The cluster id.
    pub fn cluster_id(&self) -> &str {
        &self.cluster_id
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The current registry snapshot.
    pub fn registry(&self) -> Arc<Registry> {
        self.registry.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The current config layers.
    pub fn layers(&self) -> Arc<BrokerLayers> {
        self.layers.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Advertised listeners (ports resolved after binding).
    pub fn advertised_listeners(&self) -> Vec<Listener> {
        self.advertised.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Replaces the advertised listeners once the real ports are known.
    pub fn set_advertised_listeners(&self, listeners: Vec<Listener>) {
        *self.advertised.write().unwrap_or_else(|p| p.into_inner()) = listeners;
    }

    fn metadata(&self) -> std::sync::MutexGuard<'_, MetadataStore> {
        self.metadata.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn swap_registry(&self, f: impl FnOnce(&mut Registry)) {
        let mut guard = self.registry.write().unwrap_or_else(|p| p.into_inner());
        let mut next = (**guard).clone();
        f(&mut next);
        *guard = Arc::new(next);
    }

    fn append(&self, store: &mut MetadataStore, command: MetadataCommand) -> Result<(), ApiError> {
        store.append(command).map(|_| ()).map_err(|e| {
            tracing::error!(error = %e, "metadata append failed");
            ApiError::new(ErrorCode::KafkaStorageError, format!("cannot persist the metadata change: {e}"))
        })
    }

    /// A hosted topic, or UNKNOWN_TOPIC_OR_PARTITION.
    fn topic(&self, name: &str) -> Result<Arc<TopicState>, ApiError> {
        self.registry().topics.get(name).cloned().ok_or_else(|| {
            ApiError::new(ErrorCode::UnknownTopicOrPartition, format!("The topic '{name}' does not exist."))
        })
    }

    /// Validates a new topic; returns the resolved partition count and replication factor.
    pub fn validate_new_topic(&self, topic: &NewTopic) -> Result<(i32, i16), ApiError> {
        validate_topic_name(&topic.name).map_err(|e| ApiError::new(ErrorCode::InvalidTopicException, e.to_string()))?;
        let registry = self.registry();
        if registry.topics.contains_key(&topic.name) {
            return Err(ApiError::new(
                ErrorCode::TopicAlreadyExists,
                format!("Topic '{}' already exists.", topic.name),
            ));
        }
        let collision_key = |n: &str| n.replace('.', "_");
        if let Some(other) = registry.topics.keys().find(|n| collision_key(n) == collision_key(&topic.name)) {
            return Err(ApiError::new(
                ErrorCode::InvalidTopicException,
                format!("Topic '{}' collides with existing topic: {other}", topic.name),
            ));
        }
        let (partitions, rf) = if topic.assignments.is_empty() {
            let partitions = if topic.num_partitions == -1 { self.config.num_partitions } else { topic.num_partitions };
            let rf = if topic.replication_factor == -1 {
                self.config.default_replication_factor
            } else {
                topic.replication_factor
            };
            if partitions <= 0 {
                return Err(ApiError::new(ErrorCode::InvalidPartitions, "Number of partitions must be larger than 0."));
            }
            if rf <= 0 {
                return Err(ApiError::new(
                    ErrorCode::InvalidReplicationFactor,
                    "Replication factor must be larger than 0.",
                ));
            }
            if rf > 1 {
                return Err(ApiError::new(
                    ErrorCode::InvalidReplicationFactor,
                    format!(
                        "Unable to replicate the partition {rf} time(s): The target replication factor of {rf} cannot be reached because only 1 broker(s) are registered."
                    ),
                ));
            }
            (partitions, rf)
        } else {
            if topic.num_partitions != -1 || topic.replication_factor != -1 {
                return Err(ApiError::new(
                    ErrorCode::InvalidRequest,
                    "Both numPartitions or replicationFactor and replicasAssignments were set. Both cannot be used at the same time.",
                ));
            }
            self.validate_assignments(&topic.assignments, 0)?;
            (topic.assignments.len() as i32, topic.assignments[0].1.len() as i16)
        };
        for (name, value) in &topic.configs {
            validate_topic_config(name, Some(value)).map_err(|m| ApiError::new(ErrorCode::InvalidConfig, m))?;
        }
        self.check_partition_limit(partitions)?;
        Ok((partitions, rf))
    }

    /// Refuses `adding` partitions when the cluster would hold more than
    /// `max.partitions`; checked before anything is allocated for them.
    fn check_partition_limit(&self, adding: i32) -> Result<(), ApiError> {
        let held: usize = self.registry().topics.values().map(|t| t.partitions.len()).sum();
        let limit = self.config.max_partitions;
        if i64::try_from(held).unwrap_or(i64::MAX).saturating_add(i64::from(adding)) > i64::from(limit) {
            return Err(ApiError::new(
                ErrorCode::InvalidPartitions,
                format!(
                    "Adding {adding} partitions would exceed the cluster's limit of {limit} (max.partitions); \
                     it holds {held}. Ask for fewer, or raise max.partitions."
                ),
            ));
        }
        Ok(())
    }

    fn validate_assignments(&self, assignments: &[(i32, Vec<i32>)], first_index: i32) -> Result<(), ApiError> {
        for (i, (index, brokers)) in assignments.iter().enumerate() {
            if *index != first_index + i as i32 {
                return Err(ApiError::new(
                    ErrorCode::InvalidReplicaAssignment,
                    "Partitions should be a consecutive 0-based integer sequence.",
                ));
            }
            if brokers.is_empty() || brokers.iter().any(|&b| b != self.node_id) {
                return Err(ApiError::new(
                    ErrorCode::InvalidReplicaAssignment,
                    format!(
                        "Replica assignment {brokers:?} names brokers that are not registered (this cluster has broker {}).",
                        self.node_id
                    ),
                ));
            }
            if brokers.len() > 1 {
                return Err(ApiError::new(
                    ErrorCode::InvalidReplicaAssignment,
                    "Duplicate brokers in the replica assignment.",
                ));
            }
        }
        Ok(())
    }

    /// Creates a topic (after [`Cluster::validate_new_topic`]).
    pub fn create_topic(&self, topic: &NewTopic) -> Result<Arc<TopicState>, ApiError> {
        let mut store = self.metadata();
        let (partitions, _rf) = self.validate_new_topic(topic)?;
        let topic_id = uuid_bytes();
        let meta = TopicMeta {
            name: topic.name.clone(),
            topic_id,
            partitions: (0..partitions).map(|_| self.fresh_partition()).collect(),
            configs: topic.configs.clone(),
        };
        self.append(&mut store, MetadataCommand::CreateTopic { topic: meta })?;
        let overrides = topic.configs.clone();
        let config = self.layers().topic_config(&overrides);
        let opened = self.open_partitions(&topic.name, TopicId(topic_id), 0..partitions, &config)?;
        let state = Arc::new(TopicState {
            name: topic.name.clone(),
            topic_id: TopicId(topic_id),
            partitions: opened,
            overrides,
            config,
        });
        self.swap_registry(|r| r.insert(state.clone()));
        tracing::info!(topic = %topic.name, partitions, "created topic");
        Ok(state)
    }

    fn fresh_partition(&self) -> PartitionMeta {
        PartitionMeta {
            replicas: vec![self.node_id],
            leader: self.node_id,
            leader_epoch: 0,
            isr: vec![self.node_id],
            partition_epoch: 0,
        }
    }

    fn open_partitions(
        &self,
        topic: &str,
        topic_id: TopicId,
        indexes: std::ops::Range<i32>,
        config: &TopicConfig,
    ) -> Result<Vec<PartitionRef>, ApiError> {
        let log_config = log_config(config, &self.config);
        let mut out = Vec::new();
        for index in indexes {
            let dir = partition_dir(&self.data_dir, topic, index);
            let log = PartitionLog::open(&dir, log_config, true, 0, now_ms()).map_err(|e| {
                tracing::error!(topic, partition = index, error = %e, "cannot create partition log");
                ApiError::new(ErrorCode::KafkaStorageError, format!("cannot create the partition log: {e}"))
            })?;
            out.push(Partition::new(topic.to_string(), topic_id, index, 0, log));
        }
        if let Err(e) = File::open(&self.data_dir).and_then(|d| d.sync_all()) {
            return Err(ApiError::new(ErrorCode::KafkaStorageError, format!("cannot sync the data directory: {e}")));
        }
        Ok(out)
    }

    /// Deletes a topic: metadata first, then its partitions leave the
    /// registry and their directories are removed in the background.
    pub fn delete_topic(&self, name: &str) -> Result<TopicId, ApiError> {
        if !self.config.delete_topic_enable {
            return Err(ApiError::new(
                ErrorCode::TopicDeletionDisabled,
                "Topic deletion is disabled (delete.topic.enable=false).",
            ));
        }
        let mut store = self.metadata();
        let topic = self.topic(name)?;
        self.append(&mut store, MetadataCommand::DeleteTopic { topic_id: topic.topic_id.0 })?;
        self.swap_registry(|r| {
            r.remove(name);
        });
        drop(store);
        let mut doomed = Vec::new();
        for p in &topic.partitions {
            let log = p.log();
            let from = log.dir().to_path_buf();
            let to = from.with_file_name(format!("{}-{}.{}-delete", topic.name, p.index, hex(&topic.topic_id.0)));
            match fs::rename(&from, &to) {
                Ok(()) => doomed.push(to),
                Err(e) => {
                    tracing::warn!(dir = %from.display(), error = %e, "cannot rename deleted partition directory")
                }
            }
        }
        spawn_dir_removal(doomed);
        tracing::info!(topic = name, "deleted topic");
        Ok(topic.topic_id)
    }

    /// Adds partitions so the topic has `count`.
    pub fn create_partitions(
        &self,
        name: &str,
        count: i32,
        assignments: &[Vec<i32>],
        validate_only: bool,
    ) -> Result<(), ApiError> {
        let mut store = self.metadata();
        let topic = self.topic(name)?;
        let current = topic.partitions.len() as i32;
        if count <= current {
            let verb = if count == current { "already has" } else { "currently has" };
            return Err(ApiError::new(
                ErrorCode::InvalidPartitions,
                format!("Topic {verb} {current} partitions, which is higher than or equal to the requested {count}."),
            ));
        }
        if !assignments.is_empty() {
            if assignments.len() as i32 != count - current {
                return Err(ApiError::new(
                    ErrorCode::InvalidReplicaAssignment,
                    format!(
                        "Increasing the number of partitions by {} but {} assignments provided.",
                        count - current,
                        assignments.len()
                    ),
                ));
            }
            let indexed: Vec<(i32, Vec<i32>)> =
                assignments.iter().enumerate().map(|(i, b)| (current + i as i32, b.clone())).collect();
            self.validate_assignments(&indexed, current)?;
        }
        self.check_partition_limit(count - current)?;
        if validate_only {
            return Ok(());
        }
        let new: Vec<PartitionMeta> = (current..count).map(|_| self.fresh_partition()).collect();
        self.append(&mut store, MetadataCommand::CreatePartitions { topic_id: topic.topic_id.0, partitions: new })?;
        let opened = self.open_partitions(name, topic.topic_id, current..count, &topic.config)?;
        let mut partitions = topic.partitions.clone();
        partitions.extend(opened);
        let next = Arc::new(TopicState {
            name: topic.name.clone(),
            topic_id: topic.topic_id,
            partitions,
            overrides: topic.overrides.clone(),
            config: topic.config.clone(),
        });
        self.swap_registry(|r| r.insert(next));
        tracing::info!(topic = name, from = current, to = count, "added partitions");
        Ok(())
    }

    /// Replaces a topic's config overrides.
    pub fn set_topic_configs(
        &self,
        name: &str,
        configs: BTreeMap<String, String>,
        validate_only: bool,
    ) -> Result<(), ApiError> {
        for (k, v) in &configs {
            validate_topic_config(k, Some(v)).map_err(|m| ApiError::new(ErrorCode::InvalidConfig, m))?;
        }
        let mut store = self.metadata();
        let topic = self.topic(name)?;
        if validate_only {
            return Ok(());
        }
        self.append(
            &mut store,
            MetadataCommand::SetTopicConfigs { topic_id: topic.topic_id.0, configs: configs.clone() },
        )?;
        let config = self.layers().topic_config(&configs);
        self.replace_topic_config(&topic, configs, config);
        Ok(())
    }

    fn replace_topic_config(&self, topic: &Arc<TopicState>, overrides: BTreeMap<String, String>, config: TopicConfig) {
        let log_config = log_config(&config, &self.config);
        for p in &topic.partitions {
            p.log().set_config(log_config);
        }
        let next = Arc::new(TopicState {
            name: topic.name.clone(),
            topic_id: topic.topic_id,
            partitions: topic.partitions.clone(),
            overrides,
            config,
        });
        self.swap_registry(|r| r.insert(next));
    }

    /// Replaces dynamic broker configs (`broker` = None for the cluster-wide default).
    pub fn set_broker_configs(
        &self,
        broker: Option<i32>,
        configs: BTreeMap<String, String>,
        validate_only: bool,
    ) -> Result<(), ApiError> {
        for (k, v) in &configs {
            let def = broker_config(k)
                .ok_or_else(|| ApiError::new(ErrorCode::InvalidConfig, format!("Unknown broker config name: {k}")))?;
            if !def.dynamic {
                return Err(ApiError::new(
                    ErrorCode::InvalidConfig,
                    format!("Cannot update these configs dynamically: {k}; set it in server.properties and restart"),
                ));
            }
            if !(v.is_empty() && def.ty == ConfigType::List) {
                validate(k, def.ty, def.validator, v).map_err(|m| ApiError::new(ErrorCode::InvalidConfig, m))?;
            }
        }
        if let Some(id) = broker
            && id != self.node_id
        {
            return Err(ApiError::new(
                ErrorCode::InvalidRequest,
                format!("Broker {id} is not this broker ({}).", self.node_id),
            ));
        }
        if validate_only {
            return Ok(());
        }
        let mut store = self.metadata();
        self.append(&mut store, MetadataCommand::SetBrokerConfigs { broker, configs: configs.clone() })?;
        let mut layers = (*self.layers()).clone();
        match broker {
            None => layers.dynamic_default = configs,
            Some(_) => layers.dynamic_broker = configs,
        }
        let layers = Arc::new(layers);
        *self.layers.write().unwrap_or_else(|p| p.into_inner()) = layers.clone();
        for topic in self.registry().topics.values() {
            let config = layers.topic_config(&topic.overrides);
            if config != topic.config {
                self.replace_topic_config(topic, topic.overrides.clone(), config);
            }
        }
        Ok(())
    }

    /// Allocates a producer id, reserving a new block in the metadata log when needed.
    pub fn allocate_producer_id(&self) -> Result<i64, ApiError> {
        let mut ids = self.producer_ids.lock().unwrap_or_else(|p| p.into_inner());
        if ids.0 >= ids.1 {
            let mut store = self.metadata();
            let start = store.state().producer_id_block_end.max(ids.1);
            let end = start + PRODUCER_ID_BLOCK_SIZE;
            self.append(&mut store, MetadataCommand::AllocateProducerIds { block_end: end })?;
            *ids = (start, end);
        }
        let id = ids.0;
        ids.0 += 1;
        Ok(id)
    }

    /// Appends records to a partition of an internal topic (uncompressed,
    /// timestamped by the caller). Returns the partition's progress channel,
    /// the offset that must become durable, and the first offset assigned.
    pub fn append_internal(
        &self,
        topic: &str,
        partition: i32,
        records: Vec<RecordSpec>,
    ) -> Result<(watch::Receiver<Progress>, i64, i64), ApiError> {
        let registry = self.registry();
        let target = registry.partition(topic, partition).cloned().ok_or_else(|| {
            ApiError::new(ErrorCode::UnknownTopicOrPartition, format!("{topic}-{partition} does not exist"))
        })?;
        let max_timestamp = records.iter().map(|r| r.timestamp).max().unwrap_or(-1);
        let offset_delta_of_max = records.iter().position(|r| r.timestamp == max_timestamp).unwrap_or(0) as i32;
        let mut builder = BatchBuilder::new(Compression::None);
        for r in records {
            builder.push(r);
        }
        let batch = builder.build();
        let info = AppendInfo {
            leader_epoch: target.leader_epoch(),
            max_timestamp,
            offset_delta_of_max_timestamp: offset_delta_of_max,
            now_ms: now_ms(),
            log_append_time: false,
        };
        let progress = target.subscribe();
        let outcome = target.log().append(&batch, &info).map_err(ApiError::from)?;
        let (base, last) = match outcome {
            AppendOutcome::Appended { base_offset, last_offset, .. } => (base_offset, last_offset),
            AppendOutcome::Duplicate { base_offset, last_offset } => (base_offset, last_offset),
        };
        self.flusher.mark_dirty(&target);
        Ok((progress, last + 1, base))
    }

    /// Closes every log cleanly and leaves the clean-shutdown marker.
    pub fn close(&self) {
        self.flusher.stop();
        let mut all_clean = true;
        for topic in self.registry().topics.values() {
            for p in &topic.partitions {
                if let Err(e) = p.log().close() {
                    all_clean = false;
                    tracing::error!(topic = %topic.name, partition = p.index, error = %e, "closing partition failed");
                }
            }
        }
        if all_clean {
            let marker = self.data_dir.join(CLEAN_SHUTDOWN_FILE);
            let written = File::create(&marker)
                .and_then(|f| f.sync_all())
                .and_then(|_| File::open(&self.data_dir))
                .and_then(|d| d.sync_all());
            if let Err(e) = written {
                tracing::warn!(error = %e, "cannot write the clean shutdown marker; the next start will validate the logs");
            }
        }
    }
}

/// The log's view of a topic's config.
pub fn log_config(topic: &TopicConfig, broker: &BrokerConfig) -> LogConfig {
    LogConfig {
        segment_bytes: topic.segment_bytes,
        segment_ms: topic.segment_ms.saturating_sub(topic.segment_jitter_ms).max(1),
        index_interval_bytes: topic.index_interval_bytes,
        retention_ms: topic.retention_ms,
        retention_bytes: topic.retention_bytes,
        delete_policy: topic.delete,
        producer_id_expiration_ms: broker.producer_id_expiration_ms,
        compaction: CompactionConfig {
            enabled: topic.compact,
            min_cleanable_dirty_ratio: topic.min_cleanable_dirty_ratio,
            min_compaction_lag_ms: topic.min_compaction_lag_ms,
            max_compaction_lag_ms: topic.max_compaction_lag_ms,
            delete_retention_ms: topic.delete_retention_ms,
        },
    }
}

/// `<data>/<topic>-<partition>`, as Kafka names partition directories.
pub fn partition_dir(data_dir: &Path, topic: &str, partition: i32) -> PathBuf {
    data_dir.join(format!("{topic}-{partition}"))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn write_meta_properties(dir: &Path, node_id: i32, cluster_id: &str) -> std::io::Result<()> {
    let path = dir.join("meta.properties");
    if path.exists() {
        return Ok(());
    }
    let text = format!("#\n#Tributary node metadata\nversion=1\nnode.id={node_id}\ncluster.id={cluster_id}\n");
    let tmp = dir.join("meta.properties.tmp");
    fs::write(&tmp, text)?;
    File::open(&tmp)?.sync_all()?;
    fs::rename(tmp, path)
}

/// Removes partition directories of topics no longer in the metadata (a
/// delete interrupted by a crash) and leftovers marked `-delete`.
fn remove_stray_partition_dirs(data_dir: &Path, registry: &Registry) {
    let Ok(entries) = fs::read_dir(data_dir) else {
        return;
    };
    let mut doomed = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if !path.is_dir() {
            continue;
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        if name == METADATA_DIR || name.starts_with('.') {
            continue;
        }
        // Only what looks like a partition directory (`<topic>-<n>`, or a
        // `...-delete` leftover) is ours to remove: anything else (`logs/`
        // of `tributary start`, a user's own folder) is left alone.
        let partition =
            name.rsplit_once('-').and_then(|(topic, p)| p.parse::<i32>().ok().map(|p| (topic.to_string(), p)));
        if partition.is_none() && !name.ends_with("-delete") {
            continue;
        }
        let known = partition
            .is_some_and(|(topic, p)| registry.topics.get(&topic).is_some_and(|t| (p as usize) < t.partitions.len()));
        if !known {
            tracing::info!(dir = %path.display(), "removing a partition directory no topic owns");
            doomed.push(path);
        }
    }
    spawn_dir_removal(doomed);
}

fn spawn_dir_removal(dirs: Vec<PathBuf>) {
    if dirs.is_empty() {
        return;
    }
    let spawned = std::thread::Builder::new().name("delete-dirs".to_string()).spawn(move || {
        for dir in dirs {
            if let Err(e) = fs::remove_dir_all(&dir) {
                tracing::warn!(dir = %dir.display(), error = %e, "cannot remove directory");
            }
        }
    });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot start the directory removal thread");
    }
}
