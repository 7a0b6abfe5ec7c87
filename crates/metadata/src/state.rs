//! The cluster metadata state machine: typed commands applied in order,
//! deterministically, to in-memory tables. Commands are validated before they
//! are appended (by the broker's admin handlers), so applying never fails;
//! a command that no longer fits (say, a topic deleted twice) is a no-op.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Size of a producer id block handed out per allocation.
pub const PRODUCER_ID_BLOCK_SIZE: i64 = 1000;

/// One partition's replica placement and leadership.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionMeta {
    /// Replica node ids, preferred leader first.
    pub replicas: Vec<i32>,
    /// Current leader, -1 if none.
    pub leader: i32,
    /// Leader epoch, bumped on every leader change.
    pub leader_epoch: i32,
    /// In-sync replicas.
    pub isr: Vec<i32>,
}

/// A topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicMeta {
    /// Name.
    pub name: String,
    /// Topic id (UUID bytes).
    pub topic_id: [u8; 16],
    /// Partitions by index.
    pub partitions: Vec<PartitionMeta>,
    /// Topic-level config overrides.
    pub configs: BTreeMap<String, String>,
}

/// A metadata change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MetadataCommand {
    /// Sets the cluster id (first command of a new cluster).
    InitCluster {
        /// 22-character base64 cluster id.
        cluster_id: String,
    },
    /// Creates a topic.
    CreateTopic {
        /// The topic.
        topic: TopicMeta,
    },
    /// Deletes a topic.
    DeleteTopic {
        /// Its id.
        topic_id: [u8; 16],
    },
    /// Adds partitions to a topic.
    CreatePartitions {
        /// The topic.
        topic_id: [u8; 16],
        /// The new partitions, appended in order.
        partitions: Vec<PartitionMeta>,
    },
    /// Replaces a topic's config overrides.
    SetTopicConfigs {
        /// The topic.
        topic_id: [u8; 16],
        /// The full new set of overrides.
        configs: BTreeMap<String, String>,
    },
    /// Replaces dynamic broker configs: of one broker, or the cluster-wide default.
    SetBrokerConfigs {
        /// The broker, or `None` for the cluster-wide default.
        broker: Option<i32>,
        /// The full new set.
        configs: BTreeMap<String, String>,
    },
    /// Reserves producer ids up to (excluding) `block_end`.
    AllocateProducerIds {
        /// End of the reserved block.
        block_end: i64,
    },
}

/// The metadata tables.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetadataState {
    /// Cluster id, once initialised.
    pub cluster_id: Option<String>,
    /// Topics by name.
    pub topics: BTreeMap<String, TopicMeta>,
    /// Dynamic cluster-wide broker config defaults.
    pub default_broker_configs: BTreeMap<String, String>,
    /// Dynamic per-broker configs.
    pub broker_configs: BTreeMap<i32, BTreeMap<String, String>>,
    /// Producer ids below this are reserved.
    pub producer_id_block_end: i64,
    /// Index of the last applied command.
    pub applied_index: u64,
}

impl MetadataState {
    /// Applies one command (index `index`).
    pub fn apply(&mut self, index: u64, command: &MetadataCommand) {
        self.applied_index = index;
        match command {
            MetadataCommand::InitCluster { cluster_id } => {
                if self.cluster_id.is_none() {
                    self.cluster_id = Some(cluster_id.clone());
                }
            }
            MetadataCommand::CreateTopic { topic } => {
                if !self.topics.contains_key(&topic.name) && self.topic_by_id(&topic.topic_id).is_none() {
                    self.topics.insert(topic.name.clone(), topic.clone());
                }
            }
            MetadataCommand::DeleteTopic { topic_id } => {
                if let Some(name) = self.topic_by_id(topic_id).map(|t| t.name.clone()) {
                    self.topics.remove(&name);
                }
            }
            MetadataCommand::CreatePartitions { topic_id, partitions } => {
                if let Some(topic) = self.topic_by_id_mut(topic_id) {
                    topic.partitions.extend(partitions.iter().cloned());
                }
            }
            MetadataCommand::SetTopicConfigs { topic_id, configs } => {
                if let Some(topic) = self.topic_by_id_mut(topic_id) {
                    topic.configs = configs.clone();
                }
            }
            MetadataCommand::SetBrokerConfigs { broker, configs } => match broker {
                None => self.default_broker_configs = configs.clone(),
                Some(id) => {
                    if configs.is_empty() {
                        self.broker_configs.remove(id);
                    } else {
                        self.broker_configs.insert(*id, configs.clone());
                    }
                }
            },
            MetadataCommand::AllocateProducerIds { block_end } => {
                self.producer_id_block_end = self.producer_id_block_end.max(*block_end);
            }
        }
    }

    /// Looks a topic up by id.
    pub fn topic_by_id(&self, topic_id: &[u8; 16]) -> Option<&TopicMeta> {
        self.topics.values().find(|t| &t.topic_id == topic_id)
    }

    fn topic_by_id_mut(&mut self, topic_id: &[u8; 16]) -> Option<&mut TopicMeta> {
        self.topics.values_mut().find(|t| &t.topic_id == topic_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topic(name: &str, id: u8, partitions: usize) -> TopicMeta {
        TopicMeta {
            name: name.to_string(),
            topic_id: [id; 16],
            partitions: (0..partitions)
                .map(|_| PartitionMeta { replicas: vec![1], leader: 1, leader_epoch: 0, isr: vec![1] })
                .collect(),
            configs: BTreeMap::new(),
        }
    }

    #[test]
    fn commands_apply_deterministically() {
        let commands = [
            MetadataCommand::InitCluster { cluster_id: "abc".into() },
            MetadataCommand::CreateTopic { topic: topic("a", 1, 1) },
            MetadataCommand::CreateTopic { topic: topic("a", 2, 3) }, // duplicate name: no-op
            MetadataCommand::CreatePartitions { topic_id: [1; 16], partitions: topic("x", 9, 2).partitions },
            MetadataCommand::SetTopicConfigs {
                topic_id: [1; 16],
                configs: [("retention.ms".to_string(), "5".to_string())].into(),
            },
            MetadataCommand::AllocateProducerIds { block_end: 2000 },
            MetadataCommand::AllocateProducerIds { block_end: 1000 },
            MetadataCommand::DeleteTopic { topic_id: [7; 16] }, // unknown: no-op
        ];
        let mut a = MetadataState::default();
        let mut b = MetadataState::default();
        for (i, c) in commands.iter().enumerate() {
            a.apply(i as u64 + 1, c);
            b.apply(i as u64 + 1, c);
        }
        assert_eq!(a, b);
        assert_eq!(a.topics["a"].partitions.len(), 3);
        assert_eq!(a.topics["a"].configs["retention.ms"], "5");
        assert_eq!(a.producer_id_block_end, 2000);
        a.apply(9, &MetadataCommand::DeleteTopic { topic_id: [1; 16] });
        assert!(a.topics.is_empty());
    }
}
