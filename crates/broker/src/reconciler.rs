//! The reconciler: brings this node's partitions in line with the committed
//! metadata. It runs after every applied metadata command (and once at start
//! over everything), compares the image before and after, and
//!
//! - stops hosting the partitions of deleted topics (directories renamed and
//!   removed in the background),
//! - opens or creates the logs of partitions this node is a replica of
//!   (a replica a reassignment adds starts empty and fetches from the
//!   leader),
//! - stops hosting a partition this node is no longer a replica of (a
//!   reassignment removed it): the replication core resigns, the follower
//!   fetcher stops (the partition leaves the registry), and its directory
//!   is renamed and removed in the background; when this node is unfenced
//!   (it has caught up with the metadata log, so its image is at least as
//!   new as what its directories were made from), the directory of any
//!   partition it is not a replica of (moved away while it was down) is
//!   deleted the same way,
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
        // A partition the core drives stays driven when a reassignment
        // shrinks it to one replica (its waiters and high watermark are the
        // core's); one that never had a second replica keeps the
        // single-node path.
        if meta.replicas.len() < 2 && !partition.is_replicated() {
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
    // This process's own registration, unfenced: its image now holds every
    // entry before that unfence, so everything its directories were made from.
    let incarnation = replicas.incarnation();
    let unfenced = |image: &MetadataImage| {
        image.brokers.get(&node_id).is_some_and(|b| !b.fenced && Some(b.incarnation_id) == incarnation)
    };
    if !unfenced(old) && unfenced(new) {
        for topic in new.topics.values() {
            for (index, meta) in topic.partitions.iter().enumerate() {
                let index = index as i32;
                if !meta.replicas.contains(&node_id) && replicas.remove_stray(&topic.name, topic.topic_id, index) {
                    tracing::info!(topic = %topic.name, partition = index, replicas = ?meta.replicas,
                        "deleting a stray copy of a partition this node is not a replica of");
                }
            }
        }
    }
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
                if let Some(removed) = replicas.get(topic.topic_id, index).cloned() {
                    // The core resigns first (waiting produce requests are answered).
                    replicate(&removed, topic, meta);
                    replicas.remove_partition(&topic.name, topic.topic_id, index);
                    tracing::info!(topic = %topic.name, partition = index, replicas = ?meta.replicas,
                        "no longer a replica; deleting the local copy");
                }
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
            adding_replicas: Vec::new(),
            removing_replicas: Vec::new(),
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
                adding_replicas: Vec::new(),
                removing_replicas: Vec::new(),
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
            adding: None,
            removing: None,
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

    /// A reassignment that adds this node creates the partition (empty,
    /// following); one that removes it stops hosting it and deletes its copy.
    #[test]
    fn a_replica_a_reassignment_adds_is_created_and_one_it_removes_is_deleted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut node = Node::new(2, dir.path());
        for broker_id in [1, 2] {
            let register = MetadataCommand::RegisterBroker {
                broker_id,
                incarnation_id: [broker_id as u8; 16],
                listeners: Vec::new(),
                rack: None,
            };
            node.apply(register);
        }
        node.apply(create("t", 1, 1, vec![1]));
        assert!(node.registry.topics["t"].partitions.is_empty());
        let reassign = |target: Vec<i32>| MetadataCommand::ReassignPartition {
            topic_id: [1; 16],
            partition: 0,
            target: Some(target),
        };
        node.apply(reassign(vec![1, 2]));
        let hosted = node.registry.topics["t"].partitions[0].clone();
        assert!(!hosted.is_leader() && hosted.is_replicated(), "an added replica follows");
        assert!(dir.path().join("t-0").is_dir());
        node.apply(reassign(vec![1]));
        assert!(node.registry.topics["t"].partitions.is_empty());
        assert!(node.replicas.get(tributary_types::TopicId([1; 16]), 0).is_none());
        assert!(!dir.path().join("t-0").exists(), "the removed replica's directory is renamed away at once");
        assert_eq!(hosted.following(), None, "the core resigned");
    }

    /// A copy of a partition moved away while the node was down is deleted
    /// once the node is unfenced (caught up with the metadata), not before:
    /// an image behind the log may not yet show a replica the node holds.
    #[test]
    fn a_stray_copy_is_deleted_once_the_node_is_unfenced() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("t-0")).expect("stray dir");
        std::fs::write(dir.path().join("t-0").join("00000000000000000000.log"), b"").expect("file");
        let mut node = Node::new(2, dir.path());
        node.replicas.set_incarnation([2; 16]);
        let mut topic = create("t", 1, 2, vec![1]);
        if let MetadataCommand::CreateTopic { topic } = &mut topic {
            topic.partitions[1] = PartitionMeta::new(vec![2], 2, 0, vec![2], 0);
        }
        node.apply(topic);
        // A registration of an earlier run, unfenced: not this process's.
        let earlier = MetadataCommand::RegisterBroker {
            broker_id: 2,
            incarnation_id: [9; 16],
            listeners: Vec::new(),
            rack: None,
        };
        node.apply(earlier);
        let broker_epoch = node.state.brokers[&2].broker_epoch;
        node.apply(MetadataCommand::UnfenceBroker { broker_id: 2, broker_epoch });
        assert!(dir.path().join("t-0").is_dir(), "an earlier run's registration says nothing about this image");
        let register = MetadataCommand::RegisterBroker {
            broker_id: 2,
            incarnation_id: [2; 16],
            listeners: Vec::new(),
            rack: None,
        };
        node.apply(register);
        assert!(dir.path().join("t-0").is_dir(), "fenced: the image may be behind");
        let broker_epoch = node.state.brokers[&2].broker_epoch;
        node.apply(MetadataCommand::UnfenceBroker { broker_id: 2, broker_epoch });
        assert!(!dir.path().join("t-0").exists(), "not a replica of t-0: its copy goes");
        assert!(dir.path().join("t-1").is_dir(), "t-1 is this node's");
        assert_eq!(node.registry.topics["t"].partitions.len(), 1);
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
