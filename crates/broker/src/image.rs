//! The metadata image: an immutable view of the committed cluster metadata
//! (cluster id, topics with their partitions' replicas, leaders, epochs and
//! ISR, topic overrides and the effective topic configs, dynamic broker
//! configs), rebuilt after every applied metadata command and replaced as a
//! whole. Readers hold an `Arc` and never see a half-applied change.
//!
//! Building the next image reuses every topic whose metadata and config
//! layers did not change, so one command costs little even with thousands
//! of topics.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use tributary_config::{BrokerLayers, TopicConfig};
use tributary_metadata::{BrokerRegistration, MetadataState, PartitionMeta, TopicMeta};
use tributary_types::TopicId;

/// One topic as committed.
#[derive(Debug, Clone, PartialEq)]
pub struct TopicImage {
    /// Name.
    pub name: String,
    /// Id.
    pub topic_id: TopicId,
    /// Partitions by index: replicas, leader, leader epoch, ISR.
    pub partitions: Vec<PartitionMeta>,
    /// Topic-level config overrides.
    pub overrides: BTreeMap<String, String>,
    /// Effective config (overrides over the broker's layers).
    pub config: TopicConfig,
}

impl TopicImage {
    fn new(meta: &TopicMeta, layers: &BrokerLayers) -> TopicImage {
        TopicImage {
            name: meta.name.clone(),
            topic_id: TopicId(meta.topic_id),
            partitions: meta.partitions.clone(),
            overrides: meta.configs.clone(),
            config: layers.topic_config(&meta.configs),
        }
    }

    fn same_metadata(&self, meta: &TopicMeta) -> bool {
        self.name == meta.name
            && self.topic_id.0 == meta.topic_id
            && self.partitions == meta.partitions
            && self.overrides == meta.configs
    }
}

/// The committed metadata, as this node sees it.
#[derive(Debug, Clone, Default)]
pub struct MetadataImage {
    /// The cluster id (empty before the cluster is initialised).
    pub cluster_id: String,
    /// Config layers: this broker's and the cluster-wide dynamic configs over the static ones.
    pub layers: Arc<BrokerLayers>,
    /// Topics by name.
    pub topics: BTreeMap<String, Arc<TopicImage>>,
    /// Topics by id.
    pub by_id: HashMap<TopicId, Arc<TopicImage>>,
    /// End of the last reserved producer id block.
    pub producer_id_block_end: i64,
    /// Registered brokers by id (a cluster's; empty on a node alone).
    pub brokers: Arc<BTreeMap<i32, BrokerRegistration>>,
}

impl MetadataImage {
    /// The image before any metadata is known: just the static configs.
    pub fn empty(static_props: BTreeMap<String, String>) -> MetadataImage {
        MetadataImage {
            layers: Arc::new(BrokerLayers { static_props, ..BrokerLayers::default() }),
            ..MetadataImage::default()
        }
    }

    /// The image of `state` for broker `node_id`, reusing what `self` already has.
    pub fn next(&self, state: &MetadataState, node_id: i32) -> MetadataImage {
        let layers = BrokerLayers {
            dynamic_broker: state.broker_configs.get(&node_id).cloned().unwrap_or_default(),
            dynamic_default: state.default_broker_configs.clone(),
            static_props: self.layers.static_props.clone(),
        };
        let layers_changed = layers != *self.layers;
        let layers = if layers_changed { Arc::new(layers) } else { self.layers.clone() };
        let mut topics = BTreeMap::new();
        let mut by_id = HashMap::new();
        for meta in state.topics.values() {
            let topic = match self.by_id.get(&TopicId(meta.topic_id)) {
                Some(old) if !layers_changed && old.same_metadata(meta) => old.clone(),
                _ => Arc::new(TopicImage::new(meta, &layers)),
            };
            by_id.insert(topic.topic_id, topic.clone());
            topics.insert(topic.name.clone(), topic);
        }
        MetadataImage {
            cluster_id: state.cluster_id.clone().unwrap_or_default(),
            layers,
            topics,
            by_id,
            producer_id_block_end: state.producer_id_block_end,
            brokers: if *self.brokers == state.brokers {
                self.brokers.clone()
            } else {
                Arc::new(state.brokers.clone())
            },
        }
    }

    /// Partitions in every topic.
    pub fn partition_count(&self) -> usize {
        self.topics.values().map(|t| t.partitions.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use tributary_metadata::{LogId, MetadataCommand};

    use super::*;

    fn topic(name: &str, id: u8, partitions: usize) -> MetadataCommand {
        MetadataCommand::CreateTopic {
            topic: TopicMeta {
                name: name.to_string(),
                topic_id: [id; 16],
                partitions: vec![
                    PartitionMeta {
                        replicas: vec![1],
                        leader: 1,
                        leader_epoch: 0,
                        isr: vec![1],
                        partition_epoch: 0,
                        adding_replicas: Vec::new(),
                        removing_replicas: Vec::new()
                    };
                    partitions
                ],
                configs: BTreeMap::new(),
            },
        }
    }

    #[test]
    fn unchanged_topics_are_shared_and_changed_ones_rebuilt() {
        let mut state = MetadataState::default();
        state.apply(LogId::new(1, 1, 1), &topic("a", 1, 1));
        state.apply(LogId::new(1, 1, 2), &topic("b", 2, 3));
        let first = MetadataImage::empty(BTreeMap::new()).next(&state, 1);
        assert_eq!(first.partition_count(), 4);

        let mut configs = BTreeMap::new();
        configs.insert("retention.ms".to_string(), "1000".to_string());
        state.apply(LogId::new(1, 1, 3), &MetadataCommand::SetTopicConfigs { topic_id: [2; 16], configs });
        let second = first.next(&state, 1);
        assert!(Arc::ptr_eq(&first.topics["a"], &second.topics["a"]), "a did not change");
        assert_eq!(second.topics["b"].config.retention_ms, 1000);

        let mut defaults = BTreeMap::new();
        defaults.insert("log.retention.ms".to_string(), "5000".to_string());
        state.apply(LogId::new(1, 1, 4), &MetadataCommand::SetBrokerConfigs { broker: None, configs: defaults });
        let third = second.next(&state, 1);
        assert_eq!(third.topics["a"].config.retention_ms, 5000, "a new default reaches every topic");
        assert_eq!(third.topics["b"].config.retention_ms, 1000, "an override still wins");
    }
}
