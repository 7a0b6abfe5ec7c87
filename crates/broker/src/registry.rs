//! The registry: what this node hosts, as request handlers see it. Each
//! topic of the metadata image with the partitions whose logs this node
//! holds; rebuilt by the reconciler after every applied metadata change and
//! replaced as a whole, so a handler works on one consistent snapshot.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use tributary_config::TopicConfig;
use tributary_types::TopicId;

use crate::image::TopicImage;
use crate::partition::PartitionRef;

/// Topics that belong to the platform itself.
pub const INTERNAL_TOPICS: &[&str] = &["__consumer_offsets", "__transaction_state"];

/// A hosted topic.
#[derive(Debug)]
pub struct TopicState {
    /// Name.
    pub name: String,
    /// Id.
    pub topic_id: TopicId,
    /// The partitions this node hosts, in index order (on one node: all of them).
    pub partitions: Vec<PartitionRef>,
    /// Topic-level overrides.
    pub overrides: BTreeMap<String, String>,
    /// Effective typed config.
    pub config: TopicConfig,
    /// The committed metadata this view was built from.
    pub image: Arc<TopicImage>,
}

impl TopicState {
    /// The view of `image` with these hosted partitions.
    pub fn new(image: Arc<TopicImage>, partitions: Vec<PartitionRef>) -> TopicState {
        assert!(partitions.windows(2).all(|w| w[0].index < w[1].index), "hosted partitions in index order");
        TopicState {
            name: image.name.clone(),
            topic_id: image.topic_id,
            partitions,
            overrides: image.overrides.clone(),
            config: image.config.clone(),
            image,
        }
    }

    /// The hosted partition with this index, if this node hosts it.
    pub fn partition(&self, index: i32) -> Option<&PartitionRef> {
        self.partitions.binary_search_by_key(&index, |p| p.index).ok().map(|i| &self.partitions[i])
    }

    /// The partition, if this node leads it; otherwise the error a client
    /// sees: UNKNOWN_TOPIC_OR_PARTITION when the topic has no such
    /// partition, NOT_LEADER_OR_FOLLOWER when another broker leads it (or
    /// none does, or this broker's lease on its leaderships lapsed: see
    /// `leader_lease.rs`), so the client refreshes its metadata and goes
    /// there.
    pub fn led(&self, index: i32) -> Result<&PartitionRef, tributary_protocol::ErrorCode> {
        use tributary_protocol::ErrorCode;
        if usize::try_from(index).map_or(true, |i| i >= self.image.partitions.len()) {
            return Err(ErrorCode::UnknownTopicOrPartition);
        }
        match self.partition(index) {
            Some(p) if p.leads_now() => Ok(p),
            _ => Err(ErrorCode::NotLeaderOrFollower),
        }
    }

    /// Partitions the topic has in the cluster (hosted here or not).
    pub fn partition_count(&self) -> usize {
        self.image.partitions.len()
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

    pub(crate) fn insert(&mut self, topic: Arc<TopicState>) {
        self.by_id.insert(topic.topic_id, topic.clone());
        self.topics.insert(topic.name.clone(), topic);
    }
}
