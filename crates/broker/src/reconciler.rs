//! The reconciler: brings this node's partitions in line with the committed
//! metadata. It runs after every applied metadata command (and once at start
//! over everything), compares the image before and after, and
//!
//! - stops hosting the partitions of deleted topics (directories renamed and
//!   removed in the background),
//! - opens or creates the logs of partitions this node is a replica of,
//! - hands a changed topic config to the logs of that topic,
//!
//! then publishes the registry request handlers read. Local state changes
//! only here, never as a side effect of the admin request that proposed the
//! change: in a cluster every node applies the same committed commands and
//! converges on the same partitions.
//!
//! ```text
//! admin request ─▶ validate ─▶ propose command ─▶ committed ─▶ applied to MetadataState
//!                                                                   │ MetadataImage::next
//!                                                                   ▼
//!                         reconcile(old image, new image) ─▶ ReplicaManager ─▶ Registry
//! ```

use std::collections::BTreeMap;
use std::sync::Arc;

use tributary_metadata::PartitionMeta;
use tributary_replication::{BrokerStatus, MetadataView, PartitionRegistration};

use crate::image::{MetadataImage, TopicImage};
use crate::partition::PartitionRef;
use crate::registry::{Registry, TopicState};
use crate::replicas::{OpenFailure, ReplicaManager};

/// What one reconciliation did.
#[derive(Debug, Default)]
pub struct Reconciled {
    /// The registry to publish.
    pub registry: Registry,
    /// Partitions whose logs could not be opened (hosted offline).
    pub failures: Vec<OpenFailure>,
    /// Whether any partition log was created or opened (the data directory needs an fsync).
    pub opened: bool,
}

/// Reconciles `replicas` from `old` to `new` for node `node_id`; `previous`
/// is the registry published for `old`.
pub fn reconcile(
    node_id: i32,
    old: &MetadataImage,
    new: &MetadataImage,
    previous: &Registry,
    replicas: &mut ReplicaManager,
) -> Reconciled {
    let mut out = Reconciled::default();
    let broker_epoch = new.brokers.get(&node_id).map_or(-1, |b| b.broker_epoch);
    let (settings, version) = replicas.next_replica_settings(node_id, broker_epoch);
    let brokers_changed = !Arc::ptr_eq(&old.brokers, &new.brokers);
    let brokers: BTreeMap<i32, BrokerStatus> = new
        .brokers
        .values()
        .map(|b| {
            let status =
                BrokerStatus { epoch: b.broker_epoch, fenced: b.fenced, shutting_down: b.in_controlled_shutdown };
            (b.broker_id, status)
        })
        .collect();
    let replicate = |partition: &PartitionRef, topic: &TopicImage, meta: &PartitionMeta| {
        if meta.replicas.len() < 2 {
            return;
        }
        let view = MetadataView {
            version,
            partition: PartitionRegistration {
                replicas: meta.replicas.clone(),
                isr: meta.isr.clone(),
                leader: meta.leader,
                leader_epoch: meta.leader_epoch,
                partition_epoch: meta.partition_epoch,
            },
            brokers: brokers.clone(),
        };
        let mut settings = settings.clone();
        settings.config.min_insync_replicas = usize::try_from(topic.config.min_insync_replicas).unwrap_or(1).max(1);
        partition.apply_replica_metadata(&settings, &view);
    };
    for (id, topic) in &old.by_id {
        if !new.by_id.contains_key(id) {
            replicas.remove_topic(topic);
            tracing::info!(topic = %topic.name, "deleted topic");
        }
    }
    for topic in new.topics.values() {
        if let Some(state) = previous.by_id.get(&topic.topic_id)
            && Arc::ptr_eq(&state.image, topic)
        {
            if brokers_changed {
                for partition in &state.partitions {
                    if let Some(meta) = usize::try_from(partition.index).ok().and_then(|i| topic.partitions.get(i)) {
                        replicate(partition, topic, meta);
                    }
                }
            }
            out.registry.insert(state.clone());
            continue;
        }
        let before = old.by_id.get(&topic.topic_id);
        if before.is_some_and(|b| b.config != topic.config) {
            replicas.set_config(topic);
        }
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for (index, meta) in topic.partitions.iter().enumerate() {
            let index = index as i32;
            if !meta.replicas.contains(&node_id) {
                continue;
            }
            let partition = match replicas.get(topic.topic_id, index) {
                Some(p) => p.clone(),
                None => {
                    let (p, failure) = replicas.host(topic, index, meta, meta.leader == node_id);
                    out.failures.extend(failure);
                    out.opened = true;
                    p
                }
            };
            if partition.set_leadership(meta.leader == node_id, meta.leader_epoch) {
                let role = if meta.leader == node_id { "leader" } else { "follower" };
                tracing::info!(topic = %topic.name, partition = index, role, leader = meta.leader,
                    leader_epoch = meta.leader_epoch, "partition role");
            }
            replicate(&partition, topic, meta);
            partitions.push(partition);
        }
        if before.is_none() {
            tracing::info!(topic = %topic.name, partitions = topic.partitions.len(), "hosting topic");
        } else if before.is_some_and(|b| b.partitions.len() < topic.partitions.len()) {
            tracing::info!(topic = %topic.name, partitions = topic.partitions.len(), "hosting added partitions");
        }
        out.registry.insert(Arc::new(TopicState::new(topic.clone(), partitions)));
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use tributary_config::BrokerConfig;
    use tributary_metadata::{LogId, MetadataCommand, MetadataState, PartitionMeta, TopicMeta};

    use super::*;

    fn create(name: &str, id: u8, partitions: usize, replicas: Vec<i32>) -> MetadataCommand {
        let meta = PartitionMeta {
            leader: replicas[0],
            replicas: replicas.clone(),
            leader_epoch: 0,
            isr: replicas,
            partition_epoch: 0,
        };
        MetadataCommand::CreateTopic {
            topic: TopicMeta {
                name: name.to_string(),
                topic_id: [id; 16],
                partitions: vec![meta; partitions],
                configs: BTreeMap::new(),
            },
        }
    }

    /// Applies each command and reconciles after it, as the broker does.
    struct Node {
        id: i32,
        state: MetadataState,
        image: MetadataImage,
        registry: Registry,
        replicas: ReplicaManager,
        index: u64,
    }

    impl Node {
        fn new(id: i32, dir: &std::path::Path) -> Node {
            let config = BrokerConfig::from_properties(BTreeMap::new()).expect("defaults are valid");
            Node {
                id,
                state: MetadataState::default(),
                image: MetadataImage::empty(BTreeMap::new()),
                registry: Registry::default(),
                replicas: ReplicaManager::new(dir.to_path_buf(), config, true),
                index: 0,
            }
        }

        fn apply(&mut self, command: MetadataCommand) -> Reconciled {
            self.index += 1;
            self.state.apply(LogId::new(1, 1, self.index), &command);
            let next = self.image.next(&self.state, self.id);
            let done = reconcile(self.id, &self.image, &next, &self.registry, &mut self.replicas);
            self.image = next;
            self.registry = done.registry.clone();
            done
        }
    }

    #[test]
    fn partitions_follow_the_committed_metadata() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut node = Node::new(1, dir.path());
        let done = node.apply(create("a", 1, 2, vec![1]));
        assert!(done.opened && done.failures.is_empty());
        assert_eq!(node.registry.topics["a"].partitions.len(), 2);
        assert!(dir.path().join("a-0").is_dir() && dir.path().join("a-1").is_dir());

        // Another topic: "a" keeps its very partitions.
        let a0 = node.registry.topics["a"].partitions[0].clone();
        node.apply(create("b", 2, 1, vec![1]));
        assert!(Arc::ptr_eq(&a0, &node.registry.topics["a"].partitions[0]));

        // Added partitions are opened; existing ones kept.
        node.apply(MetadataCommand::CreatePartitions {
            topic_id: [1; 16],
            partitions: vec![PartitionMeta {
                replicas: vec![1],
                leader: 1,
                leader_epoch: 0,
                isr: vec![1],
                partition_epoch: 0,
            }],
        });
        assert_eq!(node.registry.topics["a"].partitions.len(), 3);
        assert!(Arc::ptr_eq(&a0, &node.registry.topics["a"].partitions[0]));

        // A config change reaches the logs.
        let configs: BTreeMap<String, String> = [("retention.ms".to_string(), "1234".to_string())].into();
        node.apply(MetadataCommand::SetTopicConfigs { topic_id: [1; 16], configs });
        assert_eq!(a0.log().config().retention_ms, 1234);

        // Deleting moves the directories away at once.
        node.apply(MetadataCommand::DeleteTopic { topic_id: [1; 16] });
        assert!(!node.registry.topics.contains_key("a"));
        assert!(!dir.path().join("a-0").exists());
        assert!(node.replicas.get(tributary_types::TopicId([1; 16]), 0).is_none());
    }

    #[test]
    fn only_partitions_this_node_replicates_are_hosted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut node = Node::new(2, dir.path());
        node.apply(create("elsewhere", 1, 3, vec![1]));
        node.apply(create("here", 2, 2, vec![2]));
        assert!(node.registry.topics["elsewhere"].partitions.is_empty());
        assert_eq!(node.registry.topics["here"].partitions.len(), 2);
        assert!(!dir.path().join("elsewhere-0").exists());
    }

    /// A follower's leader epochs come from its leader's batches only: an
    /// epoch of its own at its log end would tell OffsetForLeaderEpoch that
    /// a divergent tail is fine. A leader's epoch starts at its log end when
    /// it becomes leader, so it answers for its epoch before any append.
    #[test]
    fn only_a_leader_assigns_its_epoch_at_the_log_end() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut follower = Node::new(2, dir.path().join("two").as_path());
        let mut leader = Node::new(1, dir.path().join("one").as_path());
        for node in [&mut follower, &mut leader] {
            node.apply(create("t", 1, 1, vec![1, 2]));
        }
        let on = |node: &Node| node.registry.topics["t"].partitions[0].clone();
        assert_eq!(on(&follower).log().epoch_entries(), &[] as &[(i32, i64)]);
        assert_eq!(on(&leader).log().epoch_entries(), &[(0, 0)]);
        assert!(!on(&follower).is_leader() && on(&leader).is_leader());
        // Leadership moves to broker 2 in epoch 1: it assigns epoch 1; broker 1 assigns nothing.
        let change = MetadataCommand::ChangePartition {
            topic_id: [1; 16],
            partition: 0,
            expected_partition_epoch: None,
            leader: Some(2),
            isr: None,
            replicas: None,
        };
        for node in [&mut follower, &mut leader] {
            let register = MetadataCommand::RegisterBroker {
                broker_id: 2,
                incarnation_id: [2; 16],
                listeners: Vec::new(),
                rack: None,
            };
            node.apply(register);
            let broker_epoch = node.state.brokers[&2].broker_epoch;
            node.apply(MetadataCommand::UnfenceBroker { broker_id: 2, broker_epoch });
            node.apply(change.clone());
        }
        assert_eq!(on(&follower).log().epoch_entries(), &[(1, 0)]);
        assert_eq!(on(&leader).log().epoch_entries(), &[(0, 0)]);
        assert!(on(&follower).is_leader() && !on(&leader).is_leader());
    }

    #[test]
    fn a_log_that_cannot_be_opened_is_hosted_offline() {
        let dir = tempfile::tempdir().expect("tempdir");
        // A file where the partition directory must go.
        std::fs::write(dir.path().join("t-0"), b"not a directory").expect("write");
        let mut node = Node::new(1, dir.path());
        let done = node.apply(create("t", 1, 1, vec![1]));
        assert_eq!(done.failures.len(), 1);
        let p = &node.registry.topics["t"].partitions[0];
        assert!(p.progress().offline, "requests on it get KAFKA_STORAGE_ERROR");
    }
}
