//! Admin operations on the metadata: topics (create, delete, add
//! partitions), topic and broker configs, producer id blocks. Each validates
//! against the committed image, proposes one metadata command and returns
//! once it is applied; what changes on disk is the reconciler's business.

use std::collections::BTreeMap;
use std::sync::Arc;

use tributary_config::defs::broker_config;
use tributary_config::validate_topic_config;
use tributary_config::value::{ConfigType, validate};
use tributary_metadata::{MetadataCommand, PRODUCER_ID_BLOCK_SIZE, PartitionMeta, TopicMeta};
use tributary_protocol::ErrorCode;
use tributary_types::{TopicId, validate_topic_name};

use crate::backend::Turn;
use crate::cluster::Cluster;
use crate::error::ApiError;
use crate::limits::effective_connection_limits;
use crate::placement::{Candidate, check_assignments, place};
use crate::registry::TopicState;

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

fn uuid_bytes() -> [u8; 16] {
    *uuid::Uuid::new_v4().as_bytes()
}

impl Cluster {
    /// A hosted topic, or UNKNOWN_TOPIC_OR_PARTITION.
    fn topic(&self, name: &str) -> Result<Arc<TopicState>, ApiError> {
        self.registry().topics.get(name).cloned().ok_or_else(|| {
            ApiError::new(ErrorCode::UnknownTopicOrPartition, format!("The topic '{name}' does not exist."))
        })
    }

    /// Validates a new topic; returns the resolved partition count and replication factor.
    pub fn validate_new_topic(&self, topic: &NewTopic) -> Result<(i32, i16), ApiError> {
        validate_topic_name(&topic.name).map_err(|e| ApiError::new(ErrorCode::InvalidTopicException, e.to_string()))?;
        let image = self.image();
        if image.topics.contains_key(&topic.name) {
            return Err(ApiError::new(
                ErrorCode::TopicAlreadyExists,
                format!("Topic '{}' already exists.", topic.name),
            ));
        }
        let collision_key = |n: &str| n.replace('.', "_");
        if let Some(other) = image.topics.keys().find(|n| collision_key(n) == collision_key(&topic.name)) {
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
            let live = self.placement_candidates().len();
            if usize::try_from(rf).unwrap_or(0) > live {
                return Err(crate::placement::replication_error(rf, live));
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
        let held = self.image().partition_count();
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
        check_assignments(assignments, first_index, &self.registered_brokers())
    }

    /// The brokers new replicas may go to: this node alone, or a cluster's
    /// registered, unfenced brokers.
    pub(crate) fn placement_candidates(&self) -> Vec<Candidate> {
        if self.quorum().is_none() {
            return vec![Candidate { id: self.node_id, rack: self.config.rack.clone() }];
        }
        let image = self.image();
        image
            .brokers
            .values()
            .filter(|b| !b.fenced)
            .map(|b| Candidate { id: b.broker_id, rack: b.rack.clone() })
            .collect()
    }

    /// Every registered broker id (fenced ones too).
    fn registered_brokers(&self) -> Vec<i32> {
        if self.quorum().is_none() {
            return vec![self.node_id];
        }
        self.image().brokers.keys().copied().collect()
    }

    /// New partitions' metadata: explicit replica lists, or placed over the live brokers.
    fn new_partitions(&self, count: i32, rf: i16, explicit: &[Vec<i32>]) -> Result<Vec<PartitionMeta>, ApiError> {
        let lists = if explicit.is_empty() {
            place(&self.placement_candidates(), count, rf, self.image().partition_count())?
        } else {
            explicit.to_vec()
        };
        Ok(lists
            .into_iter()
            .map(|replicas| {
                // A replica that cannot lead now (fenced) is not elected.
                let leader = self.first_live(&replicas);
                PartitionMeta {
                    leader,
                    leader_epoch: 0,
                    isr: replicas.clone(),
                    replicas,
                    partition_epoch: 0,
                    adding_replicas: Vec::new(),
                    removing_replicas: Vec::new(),
                }
            })
            .collect())
    }

    fn first_live(&self, replicas: &[i32]) -> i32 {
        let live: Vec<i32> = self.placement_candidates().iter().map(|c| c.id).collect();
        replicas.iter().copied().find(|r| live.contains(r)).unwrap_or(-1)
    }

    /// Creates a topic: validates it, proposes its creation and returns the
    /// hosted topic once the command is applied (its logs opened by the reconciler).
    pub fn create_topic(&self, topic: &NewTopic) -> Result<Arc<TopicState>, ApiError> {
        let mut store = self.metadata();
        let (partitions, rf) = self.validate_new_topic(topic)?;
        let topic_id = uuid_bytes();
        let explicit: Vec<Vec<i32>> = topic.assignments.iter().map(|(_, b)| b.clone()).collect();
        let meta = TopicMeta {
            name: topic.name.clone(),
            topic_id,
            partitions: self.new_partitions(partitions, rf, &explicit)?,
            configs: topic.configs.clone(),
        };
        self.propose(&mut store, MetadataCommand::CreateTopic { topic: meta })?;
        drop(store);
        self.registry().by_id.get(&TopicId(topic_id)).cloned().ok_or_else(|| {
            ApiError::new(ErrorCode::UnknownServerError, format!("topic {} was created but is not hosted", topic.name))
        })
    }

    /// Deletes a topic. Once the deletion is applied the reconciler renames
    /// its partition directories away and removes them in the background.
    pub fn delete_topic(&self, name: &str) -> Result<TopicId, ApiError> {
        if !self.config.delete_topic_enable {
            return Err(ApiError::new(
                ErrorCode::TopicDeletionDisabled,
                "Topic deletion is disabled (delete.topic.enable=false).",
            ));
        }
        let mut store = self.metadata();
        let topic = self.topic(name)?;
        self.propose(&mut store, MetadataCommand::DeleteTopic { topic_id: topic.topic_id.0 })?;
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
        let current = topic.partition_count() as i32;
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
        } else {
            let rf = topic.image.partitions.first().map_or(1, |p| p.replicas.len() as i16);
            let live = self.placement_candidates().len();
            if usize::try_from(rf).unwrap_or(0) > live {
                return Err(crate::placement::replication_error(rf, live));
            }
        }
        self.check_partition_limit(count - current)?;
        if validate_only {
            return Ok(());
        }
        let rf = topic.image.partitions.first().map_or(1, |p| p.replicas.len() as i16);
        let new = self.new_partitions(count - current, rf, assignments)?;
        self.propose(&mut store, MetadataCommand::CreatePartitions { topic_id: topic.topic_id.0, partitions: new })?;
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
        self.propose(&mut store, MetadataCommand::SetTopicConfigs { topic_id: topic.topic_id.0, configs })?;
        Ok(())
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
            && !self.registered_brokers().contains(&id)
        {
            return Err(ApiError::new(
                ErrorCode::InvalidRequest,
                format!("Broker {id} is not a registered broker of this cluster."),
            ));
        }
        let mut store = self.metadata();
        let mut layers = (*self.layers()).clone();
        match broker {
            None => layers.dynamic_default = configs.clone(),
            Some(id) if id == self.node_id => layers.dynamic_broker = configs.clone(),
            // Another broker's layers: its static configs are its own business.
            Some(_) => {
                layers = tributary_config::BrokerLayers { dynamic_broker: configs.clone(), ..Default::default() }
            }
        }
        // Cross-key rules of the connection limits (per.ip=0 needs overrides, override syntax).
        effective_connection_limits(&layers).map_err(|m| ApiError::new(ErrorCode::InvalidConfig, m))?;
        if validate_only {
            return Ok(());
        }
        self.propose(&mut store, MetadataCommand::SetBrokerConfigs { broker, configs })?;
        Ok(())
    }

    /// Allocates a producer id, reserving a new block in the metadata log when needed.
    pub fn allocate_producer_id(&self) -> Result<i64, ApiError> {
        let mut ids = self.producer_ids.lock().unwrap_or_else(|p| p.into_inner());
        if ids.0 >= ids.1 {
            let mut turn = self.metadata();
            if let Turn::Local(store) = &turn {
                let start = store.state().producer_id_block_end.max(ids.1);
                let end = start + PRODUCER_ID_BLOCK_SIZE;
                self.propose(&mut turn, MetadataCommand::AllocateProducerIds { block_end: end })?;
                *ids = (start, end);
            } else {
                // In a cluster the block is chosen when the entry applies, so two brokers never share one.
                let command = MetadataCommand::AllocateProducerIdBlock { broker_id: self.node_id };
                match self.propose(&mut turn, command)? {
                    tributary_metadata::ApplyOutcome::ProducerIdBlockAllocated { start, end } => *ids = (start, end),
                    other => {
                        return Err(ApiError::new(
                            ErrorCode::UnknownServerError,
                            format!("unexpected outcome of a producer id block allocation: {other:?}"),
                        ));
                    }
                }
            }
        }
        let id = ids.0;
        ids.0 += 1;
        Ok(id)
    }
}
