//! The partition manager: the partition logs this node holds, keyed by topic
//! id and index. Only the reconciler changes it (from committed metadata);
//! request handlers reach the logs through the registry it publishes.
//!
//! Opening a log at start recovers it after an unclean stop; a partition
//! created later starts empty. A log that cannot be opened after start is
//! hosted offline (every request on it gets KAFKA_STORAGE_ERROR) rather than
//! left out, so the metadata and what this node serves never disagree about
//! which partitions exist. A deleted topic's directories are renamed to
//! `<topic>-<p>.<id>-delete` at once and removed in the background.

use std::collections::HashMap;
use std::fs;
use std::path::PathBuf;

use tributary_config::{BrokerConfig, TopicConfig};
use tributary_log::{CompactionConfig, LogConfig, LogError, PartitionLog};
use tributary_metadata::PartitionMeta;
use tributary_types::{TopicId, now_ms};

use crate::image::TopicImage;
use crate::node::{partition_dir, spawn_dir_removal};
use crate::partition::{Partition, PartitionRef};
use crate::replication::{AlterQueue, ReplicaSettings};
use tributary_replication::ReplicationConfig;

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
        ..LogConfig::default()
    }
}

/// A partition log that could not be opened.
#[derive(Debug)]
pub struct OpenFailure {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Why.
    pub error: LogError,
}

/// The partition logs this node holds.
#[derive(Debug)]
pub struct ReplicaManager {
    data_dir: PathBuf,
    broker: BrokerConfig,
    /// Whether logs found on disk were closed cleanly (recovery skips validation).
    clean_start: bool,
    hosted: HashMap<(TopicId, i32), PartitionRef>,
    /// Where replicated partitions send AlterPartition requests.
    alter: Option<AlterQueue>,
    /// Reconciliations done: the version of the metadata views handed to
    /// the replication core (they only grow, as the metadata log does).
    generation: u64,
    /// This process's registration incarnation (KRaft only): stray copies
    /// are swept once a registration of this process is unfenced.
    incarnation: Option<[u8; 16]>,
    /// The broker's lease on its leaderships (KRaft only), given to every
    /// partition hosted.
    lease: Option<std::sync::Arc<crate::leader_lease::LeaderLease>>,
}

impl ReplicaManager {
    /// A manager of the logs under `data_dir`, none open yet.
    pub fn new(data_dir: PathBuf, broker: BrokerConfig, clean_start: bool) -> ReplicaManager {
        ReplicaManager {
            data_dir,
            broker,
            clean_start,
            hosted: HashMap::new(),
            alter: None,
            generation: 0,
            incarnation: None,
            lease: None,
        }
    }

    /// Ties every partition hosted from now on to this broker's lease.
    pub fn set_leader_lease(&mut self, lease: std::sync::Arc<crate::leader_lease::LeaderLease>) {
        self.lease = Some(lease);
    }

    /// The hosted partition, if any.
    pub fn get(&self, topic_id: TopicId, index: i32) -> Option<&PartitionRef> {
        self.hosted.get(&(topic_id, index))
    }

    /// Every hosted partition.
    pub fn all(&self) -> impl Iterator<Item = &PartitionRef> {
        self.hosted.values()
    }

    /// Opens (recovering) or creates the log of one partition of `topic`. A
    /// failure is reported and the partition hosted offline. `leads` says
    /// whether this node leads it: only a leader's epoch is assigned at the
    /// log end (a follower's epochs come from its leader's batches).
    pub fn host(
        &mut self,
        topic: &TopicImage,
        index: i32,
        meta: &PartitionMeta,
        leads: bool,
    ) -> (PartitionRef, Option<OpenFailure>) {
        let dir = partition_dir(&self.data_dir, &topic.name, index);
        let config = log_config(&topic.config, &self.broker);
        let epoch = if leads { meta.leader_epoch } else { -1 };
        let (log, failure) = match PartitionLog::open(&dir, config, self.clean_start, epoch, now_ms()) {
            Ok(log) => (log, None),
            Err(error) => {
                tracing::error!(topic = %topic.name, partition = index, %error, "cannot open the partition log; it is offline");
                let log = PartitionLog::failed(&dir, config, error.to_string());
                (log, Some(OpenFailure { topic: topic.name.clone(), partition: index, error }))
            }
        };
        let partition = Partition::new(topic.name.clone(), topic.topic_id, index, meta.leader_epoch, log);
        if let Some(lease) = &self.lease {
            partition.set_leader_lease(lease.clone());
        }
        self.hosted.insert((topic.topic_id, index), partition.clone());
        (partition, failure)
    }

    /// Applies a changed topic config to every hosted partition of the topic.
    pub fn set_config(&self, topic: &TopicImage) {
        let config = log_config(&topic.config, &self.broker);
        for index in 0..topic.partitions.len() as i32 {
            if let Some(p) = self.get(topic.topic_id, index) {
                p.log().set_config(config);
            }
        }
    }

    /// Stops hosting a deleted topic: its directories are renamed out of the
    /// way at once and removed in the background. Readers holding a
    /// partition keep reading its open files meanwhile.
    pub fn remove_topic(&mut self, topic: &TopicImage) {
        let mut doomed = Vec::new();
        for index in 0..topic.partitions.len() as i32 {
            let Some(p) = self.hosted.remove(&(topic.topic_id, index)) else {
                continue;
            };
            let from = p.log().dir().to_path_buf();
            let to = from.with_file_name(format!("{}-{}.{}-delete", topic.name, index, hex(&topic.topic_id.0)));
            match fs::rename(&from, &to) {
                Ok(()) => doomed.push(to),
                Err(e) => {
                    tracing::warn!(dir = %from.display(), error = %e, "cannot rename deleted partition directory")
                }
            }
        }
        spawn_dir_removal(doomed);
    }

    /// Stops hosting one partition this node is no longer a replica of (a
    /// reassignment moved it away): its directory is renamed out of the way
    /// at once and removed in the background, as a deleted topic's are.
    pub fn remove_partition(&mut self, topic: &str, topic_id: TopicId, index: i32) {
        let Some(p) = self.hosted.remove(&(topic_id, index)) else {
            return;
        };
        let from = p.log().dir().to_path_buf();
        retire_dir(&from, topic, topic_id, index);
    }

    /// Deletes the copy a partition's directory holds when this node is not
    /// one of its replicas and does not host it: a replica moved away while
    /// this node was down (Kafka calls these stray logs). Returns whether
    /// there was one.
    pub fn remove_stray(&mut self, topic: &str, topic_id: TopicId, index: i32) -> bool {
        let dir = partition_dir(&self.data_dir, topic, index);
        if self.hosted.contains_key(&(topic_id, index)) || !dir.is_dir() {
            return false;
        }
        retire_dir(&dir, topic, topic_id, index);
        true
    }

    /// Sets this process's registration incarnation.
    pub fn set_incarnation(&mut self, incarnation: [u8; 16]) {
        self.incarnation = Some(incarnation);
    }

    /// This process's registration incarnation, when it registers.
    pub fn incarnation(&self) -> Option<[u8; 16]> {
        self.incarnation
    }

    /// Sets where replicated partitions send AlterPartition requests.
    pub fn set_alter_queue(&mut self, queue: AlterQueue) {
        self.alter = Some(queue);
    }

    /// What the reconciler hands each replicated partition for the next
    /// image, with the image's version.
    pub fn next_replica_settings(&mut self, node_id: i32, broker_epoch: i64) -> (ReplicaSettings, u64) {
        self.generation += 1;
        let config = ReplicationConfig {
            replica_lag_time_max_ms: self.broker.replica_lag_time_max_ms,
            ..ReplicationConfig::default()
        };
        let settings = ReplicaSettings { node_id, broker_epoch, config, alter: self.alter.clone() };
        (settings, self.generation)
    }

    /// Logs opened from now on are new or were open before: no recovery.
    pub fn started(&mut self) {
        self.clean_start = true;
    }
}

/// Renames a partition directory out of the way and removes it in the background.
fn retire_dir(from: &std::path::Path, topic: &str, topic_id: TopicId, index: i32) {
    let to = from.with_file_name(format!("{topic}-{index}.{}-delete", hex(&topic_id.0)));
    match fs::rename(from, &to) {
        Ok(()) => spawn_dir_removal(vec![to]),
        Err(e) => tracing::warn!(dir = %from.display(), error = %e, "cannot rename a removed replica's directory"),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
