//! The cluster metadata state machine: log entries applied in order,
//! deterministically, to in-memory tables.
//!
//! Applying never fails. Proposers validate before they propose, but in a
//! replicated log the state may have moved between validation and apply
//! (another proposal won the race), so every command has an apply rule for
//! the case where it no longer fits, and [`ApplyOutcome`] tells the proposer
//! what happened (`TopicAlreadyExists`, `StaleBrokerEpoch`, ...). The same
//! entries applied to the same state give the same state and outcomes on
//! every node.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::command::{BrokerListener, MetadataCommand, PartitionMeta, TopicMeta};
use crate::types::{Entry, EntryPayload, LogId, Membership, StoredMembership};

/// Size of a producer id block handed out per allocation.
pub const PRODUCER_ID_BLOCK_SIZE: i64 = 1000;

/// A registered broker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerRegistration {
    /// Broker id.
    pub broker_id: i32,
    /// The registering process's incarnation.
    pub incarnation_id: [u8; 16],
    /// Broker epoch: the log index of the registration that started this
    /// incarnation (Kafka uses the record's offset the same way).
    pub broker_epoch: i64,
    /// Listeners.
    pub listeners: Vec<BrokerListener>,
    /// Rack.
    pub rack: Option<String>,
    /// Fenced brokers lead nothing and are in no ISR.
    pub fenced: bool,
    /// In controlled shutdown: leads nothing, joins no ISR, until it
    /// unregisters (a new incarnation starts without it).
    #[serde(default)]
    pub in_controlled_shutdown: bool,
}

/// What applying an entry did (serializable: a forwarded proposal's outcome
/// travels back to the node that forwarded it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ApplyOutcome {
    /// The entry is at or below the last applied one: nothing changed.
    AlreadyApplied,
    /// A blank entry (a new leader's first).
    Blank,
    /// A membership entry: the new membership is in effect.
    MembershipApplied,
    /// The cluster id is now set.
    ClusterInitialized,
    /// The cluster id was set already (to this one).
    ClusterAlreadyInitialized {
        /// The id in effect.
        cluster_id: String,
    },
    /// The topic exists now.
    TopicCreated,
    /// A topic of that name exists.
    TopicAlreadyExists,
    /// Another topic has that topic id.
    TopicIdInUse {
        /// Its name.
        name: String,
    },
    /// The topic is gone.
    TopicDeleted {
        /// Its name.
        name: String,
    },
    /// No topic with that id.
    TopicNotFound,
    /// Partitions were added.
    PartitionsCreated {
        /// The topic's partition count now.
        partition_count: usize,
    },
    /// Topic or broker configs replaced.
    ConfigsSet,
    /// The producer id reservation now ends here (it never moves back).
    ProducerIdsReserved {
        /// End of the reservation.
        block_end: i64,
    },
    /// A producer id block for a broker.
    ProducerIdBlockAllocated {
        /// First id of the block.
        start: i64,
        /// One past the last id.
        end: i64,
    },
    /// A registration was recorded.
    BrokerRegistered {
        /// The broker epoch in effect.
        broker_epoch: i64,
        /// A new incarnation (new epoch, fenced) rather than an amended one.
        new_incarnation: bool,
    },
    /// No broker with that id is registered.
    BrokerNotFound,
    /// The command names another registration of the broker.
    StaleBrokerEpoch {
        /// The epoch in effect.
        current: i64,
    },
    /// The broker is fenced now (or already was).
    BrokerFenced,
    /// The broker is unfenced now (or already was).
    BrokerUnfenced,
    /// The broker is in controlled shutdown now (or already was).
    BrokerShuttingDown,
    /// The broker's registration is gone.
    BrokerUnregistered,
    /// The topic has no partition with that index.
    PartitionNotFound,
    /// The partition moved on since the change was built.
    PartitionEpochMismatch {
        /// The partition epoch in effect.
        current: i32,
    },
    /// The change would break a partition invariant; nothing changed.
    InvalidPartitionChange {
        /// Which.
        reason: String,
    },
    /// The change changes nothing (no epoch moved).
    PartitionUnchanged,
    /// An AlterPartition was refused; nothing changed.
    AlterPartitionRefused {
        /// Why, as Kafka's controller says it.
        error: crate::alter_partition::AlterPartitionError,
    },
    /// An AlterPartition was applied (or found nothing to change): the
    /// partition as it is now.
    AlterPartitionApplied {
        /// Leader now.
        leader: i32,
        /// Leader epoch now.
        leader_epoch: i32,
        /// ISR now.
        isr: Vec<i32>,
        /// Partition epoch now.
        partition_epoch: i32,
    },
    /// The partition changed.
    PartitionChanged {
        /// Leader now.
        leader: i32,
        /// Leader epoch now.
        leader_epoch: i32,
        /// Partition epoch now.
        partition_epoch: i32,
    },
}

/// The metadata tables.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
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
    /// Registered brokers by id.
    pub brokers: BTreeMap<i32, BrokerRegistration>,
    /// The last entry applied.
    pub last_applied: Option<LogId>,
    /// The membership of the last membership entry applied.
    pub membership: StoredMembership,
}

impl MetadataState {
    /// Index of the last applied entry (0 before any).
    pub fn applied_index(&self) -> u64 {
        self.last_applied.map_or(0, |l| l.index)
    }

    /// Applies one log entry.
    pub fn apply_entry(&mut self, entry: &Entry) -> ApplyOutcome {
        match &entry.payload {
            EntryPayload::Command(command) => self.apply(entry.log_id, command),
            EntryPayload::Blank => {
                self.advance(entry.log_id).map_or(ApplyOutcome::AlreadyApplied, |()| ApplyOutcome::Blank)
            }
            EntryPayload::Membership(membership) => match self.advance(entry.log_id) {
                None => ApplyOutcome::AlreadyApplied,
                Some(()) => {
                    self.set_membership(entry.log_id, membership.clone());
                    ApplyOutcome::MembershipApplied
                }
            },
        }
    }

    /// Applies one command, the payload of the entry `log_id`.
    pub fn apply(&mut self, log_id: LogId, command: &MetadataCommand) -> ApplyOutcome {
        if self.advance(log_id).is_none() {
            return ApplyOutcome::AlreadyApplied;
        }
        match command {
            MetadataCommand::InitCluster { cluster_id } => match &self.cluster_id {
                Some(current) => ApplyOutcome::ClusterAlreadyInitialized { cluster_id: current.clone() },
                None => {
                    self.cluster_id = Some(cluster_id.clone());
                    ApplyOutcome::ClusterInitialized
                }
            },
            MetadataCommand::CreateTopic { topic } => self.create_topic(topic),
            MetadataCommand::DeleteTopic { topic_id } => match self.topic_by_id(topic_id).map(|t| t.name.clone()) {
                Some(name) => {
                    self.topics.remove(&name);
                    ApplyOutcome::TopicDeleted { name }
                }
                None => ApplyOutcome::TopicNotFound,
            },
            MetadataCommand::CreatePartitions { topic_id, partitions } => match self.topic_by_id_mut(topic_id) {
                Some(topic) => {
                    topic.partitions.extend(partitions.iter().cloned());
                    ApplyOutcome::PartitionsCreated { partition_count: topic.partitions.len() }
                }
                None => ApplyOutcome::TopicNotFound,
            },
            MetadataCommand::SetTopicConfigs { topic_id, configs } => match self.topic_by_id_mut(topic_id) {
                Some(topic) => {
                    topic.configs = configs.clone();
                    ApplyOutcome::ConfigsSet
                }
                None => ApplyOutcome::TopicNotFound,
            },
            MetadataCommand::SetBrokerConfigs { broker, configs } => {
                match broker {
                    None => self.default_broker_configs = configs.clone(),
                    Some(id) if configs.is_empty() => {
                        self.broker_configs.remove(id);
                    }
                    Some(id) => {
                        self.broker_configs.insert(*id, configs.clone());
                    }
                }
                ApplyOutcome::ConfigsSet
            }
            MetadataCommand::AllocateProducerIds { block_end } => {
                self.producer_id_block_end = self.producer_id_block_end.max(*block_end);
                ApplyOutcome::ProducerIdsReserved { block_end: self.producer_id_block_end }
            }
            MetadataCommand::AllocateProducerIdBlock { broker_id: _ } => {
                let start = self.producer_id_block_end.max(0);
                let end = start.saturating_add(PRODUCER_ID_BLOCK_SIZE);
                self.producer_id_block_end = end;
                ApplyOutcome::ProducerIdBlockAllocated { start, end }
            }
            MetadataCommand::RegisterBroker { broker_id, incarnation_id, listeners, rack } => {
                self.register_broker(log_id, *broker_id, *incarnation_id, listeners, rack)
            }
            MetadataCommand::FenceBroker { broker_id, broker_epoch } => {
                self.set_fenced(*broker_id, *broker_epoch, true)
            }
            MetadataCommand::UnfenceBroker { broker_id, broker_epoch } => {
                self.set_fenced(*broker_id, *broker_epoch, false)
            }
            MetadataCommand::BeginControlledShutdown { broker_id, broker_epoch } => {
                match self.brokers.get_mut(broker_id) {
                    None => ApplyOutcome::BrokerNotFound,
                    Some(b) if b.broker_epoch != *broker_epoch => {
                        ApplyOutcome::StaleBrokerEpoch { current: b.broker_epoch }
                    }
                    Some(b) => {
                        b.in_controlled_shutdown = true;
                        ApplyOutcome::BrokerShuttingDown
                    }
                }
            }
            MetadataCommand::AlterPartition { .. } => crate::alter_partition::apply(self, command),
            MetadataCommand::UnregisterBroker { broker_id, broker_epoch } => match self.brokers.get(broker_id) {
                None => ApplyOutcome::BrokerNotFound,
                Some(b) if b.broker_epoch != *broker_epoch => {
                    ApplyOutcome::StaleBrokerEpoch { current: b.broker_epoch }
                }
                Some(_) => {
                    self.brokers.remove(broker_id);
                    ApplyOutcome::BrokerUnregistered
                }
            },
            MetadataCommand::ChangePartition {
                topic_id,
                partition,
                expected_partition_epoch,
                leader,
                isr,
                replicas,
            } => {
                // Fenced brokers lead nothing: an election planned from an
                // image older than the fence is refused here, where the
                // order of commands is final.
                if let Some(l) = leader
                    && *l >= 0
                    && self.brokers.get(l).is_none_or(|b| b.fenced)
                {
                    return ApplyOutcome::InvalidPartitionChange {
                        reason: format!("broker {l} is fenced or not registered and may not lead"),
                    };
                }
                let Some(topic) = self.topic_by_id_mut(topic_id) else {
                    return ApplyOutcome::TopicNotFound;
                };
                let Some(meta) = usize::try_from(*partition).ok().and_then(|p| topic.partitions.get_mut(p)) else {
                    return ApplyOutcome::PartitionNotFound;
                };
                change_partition(meta, *expected_partition_epoch, *leader, isr.as_deref(), replicas.as_deref())
            }
        }
    }

    /// Looks a topic up by id.
    pub fn topic_by_id(&self, topic_id: &[u8; 16]) -> Option<&TopicMeta> {
        self.topics.values().find(|t| &t.topic_id == topic_id)
    }

    pub(crate) fn topic_by_id_mut(&mut self, topic_id: &[u8; 16]) -> Option<&mut TopicMeta> {
        self.topics.values_mut().find(|t| &t.topic_id == topic_id)
    }

    /// Moves `last_applied` to `log_id`; `None` when the entry was applied already.
    fn advance(&mut self, log_id: LogId) -> Option<()> {
        if self.last_applied.is_some_and(|last| log_id.index <= last.index) {
            return None;
        }
        self.last_applied = Some(log_id);
        Some(())
    }

    pub(crate) fn set_membership(&mut self, log_id: LogId, membership: Membership) {
        self.membership = StoredMembership { log_id: Some(log_id), membership };
    }

    fn create_topic(&mut self, topic: &TopicMeta) -> ApplyOutcome {
        if self.topics.contains_key(&topic.name) {
            return ApplyOutcome::TopicAlreadyExists;
        }
        if let Some(other) = self.topic_by_id(&topic.topic_id) {
            return ApplyOutcome::TopicIdInUse { name: other.name.clone() };
        }
        self.topics.insert(topic.name.clone(), topic.clone());
        ApplyOutcome::TopicCreated
    }

    fn register_broker(
        &mut self,
        log_id: LogId,
        broker_id: i32,
        incarnation_id: [u8; 16],
        listeners: &[BrokerListener],
        rack: &Option<String>,
    ) -> ApplyOutcome {
        let (broker_epoch, fenced, in_controlled_shutdown, new_incarnation) = match self.brokers.get(&broker_id) {
            Some(existing) if existing.incarnation_id == incarnation_id => {
                (existing.broker_epoch, existing.fenced, existing.in_controlled_shutdown, false)
            }
            _ => (i64::try_from(log_id.index).unwrap_or(i64::MAX), true, false, true),
        };
        self.brokers.insert(
            broker_id,
            BrokerRegistration {
                broker_id,
                incarnation_id,
                broker_epoch,
                listeners: listeners.to_vec(),
                rack: rack.clone(),
                fenced,
                in_controlled_shutdown,
            },
        );
        ApplyOutcome::BrokerRegistered { broker_epoch, new_incarnation }
    }

    fn set_fenced(&mut self, broker_id: i32, broker_epoch: i64, fenced: bool) -> ApplyOutcome {
        let Some(broker) = self.brokers.get_mut(&broker_id) else {
            return ApplyOutcome::BrokerNotFound;
        };
        if broker.broker_epoch != broker_epoch {
            return ApplyOutcome::StaleBrokerEpoch { current: broker.broker_epoch };
        }
        broker.fenced = fenced;
        if fenced { ApplyOutcome::BrokerFenced } else { ApplyOutcome::BrokerUnfenced }
    }
}

/// Kafka's `PartitionRegistration.merge`: a set leader (even the same one)
/// bumps the leader epoch, any change bumps the partition epoch, and a
/// change that changes nothing is not applied at all.
pub(crate) fn change_partition(
    meta: &mut PartitionMeta,
    expected_partition_epoch: Option<i32>,
    leader: Option<i32>,
    isr: Option<&[i32]>,
    replicas: Option<&[i32]>,
) -> ApplyOutcome {
    if let Some(expected) = expected_partition_epoch
        && expected != meta.partition_epoch
    {
        return ApplyOutcome::PartitionEpochMismatch { current: meta.partition_epoch };
    }
    let new_replicas = replicas.unwrap_or(&meta.replicas);
    let new_isr = isr.unwrap_or(&meta.isr);
    let new_leader = leader.unwrap_or(meta.leader);
    if let Err(reason) = check_partition(new_replicas, new_isr, new_leader) {
        return ApplyOutcome::InvalidPartitionChange { reason };
    }
    if leader.is_none() && new_isr == meta.isr.as_slice() && new_replicas == meta.replicas.as_slice() {
        return ApplyOutcome::PartitionUnchanged;
    }
    meta.replicas = new_replicas.to_vec();
    meta.isr = new_isr.to_vec();
    if leader.is_some() {
        meta.leader = new_leader;
        meta.leader_epoch = meta.leader_epoch.saturating_add(1);
    }
    meta.partition_epoch = meta.partition_epoch.saturating_add(1);
    ApplyOutcome::PartitionChanged {
        leader: meta.leader,
        leader_epoch: meta.leader_epoch,
        partition_epoch: meta.partition_epoch,
    }
}

fn check_partition(replicas: &[i32], isr: &[i32], leader: i32) -> Result<(), String> {
    if replicas.is_empty() {
        return Err("a partition needs at least one replica".into());
    }
    if has_duplicates(replicas) || has_duplicates(isr) {
        return Err("replicas and ISR may not name a broker twice".into());
    }
    if let Some(stray) = isr.iter().find(|b| !replicas.contains(b)) {
        return Err(format!("ISR member {stray} is not a replica"));
    }
    if leader != -1 && !replicas.contains(&leader) {
        return Err(format!("leader {leader} is not a replica"));
    }
    Ok(())
}

fn has_duplicates(ids: &[i32]) -> bool {
    ids.iter().enumerate().any(|(i, id)| ids[..i].contains(id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Membership;

    fn topic(name: &str, id: u8, partitions: usize) -> TopicMeta {
        TopicMeta {
            name: name.to_string(),
            topic_id: [id; 16],
            partitions: (0..partitions)
                .map(|_| PartitionMeta {
                    replicas: vec![1],
                    leader: 1,
                    leader_epoch: 0,
                    isr: vec![1],
                    partition_epoch: 0,
                })
                .collect(),
            configs: BTreeMap::new(),
        }
    }

    fn id(index: u64) -> LogId {
        LogId::new(1, 1, index)
    }

    /// Applies `commands` at indexes 1, 2, ... and returns the outcomes.
    fn run(state: &mut MetadataState, commands: &[MetadataCommand]) -> Vec<ApplyOutcome> {
        let base = state.applied_index();
        commands.iter().enumerate().map(|(i, c)| state.apply(id(base + i as u64 + 1), c)).collect()
    }

    #[test]
    fn commands_apply_deterministically_and_say_what_they_did() {
        let commands = [
            MetadataCommand::InitCluster { cluster_id: "abc".into() },
            MetadataCommand::InitCluster { cluster_id: "other".into() },
            MetadataCommand::CreateTopic { topic: topic("a", 1, 1) },
            MetadataCommand::CreateTopic { topic: topic("a", 2, 3) },
            MetadataCommand::CreateTopic { topic: topic("b", 1, 3) },
            MetadataCommand::CreatePartitions { topic_id: [1; 16], partitions: topic("x", 9, 2).partitions },
            MetadataCommand::SetTopicConfigs {
                topic_id: [1; 16],
                configs: [("retention.ms".to_string(), "5".to_string())].into(),
            },
            MetadataCommand::AllocateProducerIds { block_end: 2000 },
            MetadataCommand::AllocateProducerIds { block_end: 1000 },
            MetadataCommand::DeleteTopic { topic_id: [7; 16] },
            MetadataCommand::AllocateProducerIdBlock { broker_id: 1 },
        ];
        let mut a = MetadataState::default();
        let mut b = MetadataState::default();
        let outcomes = run(&mut a, &commands);
        assert_eq!(outcomes, run(&mut b, &commands));
        assert_eq!(a, b);
        assert_eq!(
            outcomes,
            vec![
                ApplyOutcome::ClusterInitialized,
                ApplyOutcome::ClusterAlreadyInitialized { cluster_id: "abc".into() },
                ApplyOutcome::TopicCreated,
                ApplyOutcome::TopicAlreadyExists,
                ApplyOutcome::TopicIdInUse { name: "a".into() },
                ApplyOutcome::PartitionsCreated { partition_count: 3 },
                ApplyOutcome::ConfigsSet,
                ApplyOutcome::ProducerIdsReserved { block_end: 2000 },
                ApplyOutcome::ProducerIdsReserved { block_end: 2000 },
                ApplyOutcome::TopicNotFound,
                ApplyOutcome::ProducerIdBlockAllocated { start: 2000, end: 3000 },
            ]
        );
        assert_eq!(a.cluster_id.as_deref(), Some("abc"));
        assert_eq!(a.topics["a"].configs["retention.ms"], "5");
        assert_eq!(a.producer_id_block_end, 3000);
        assert_eq!(
            a.apply(id(20), &MetadataCommand::DeleteTopic { topic_id: [1; 16] }),
            ApplyOutcome::TopicDeleted { name: "a".into() }
        );
        assert!(a.topics.is_empty());
        assert_eq!(a.last_applied, Some(id(20)));
    }

    #[test]
    fn an_entry_at_or_below_last_applied_changes_nothing() {
        let mut s = MetadataState::default();
        run(&mut s, &[MetadataCommand::InitCluster { cluster_id: "c".into() }]);
        let before = s.clone();
        assert_eq!(
            s.apply(id(1), &MetadataCommand::CreateTopic { topic: topic("t", 1, 1) }),
            ApplyOutcome::AlreadyApplied
        );
        assert_eq!(s.apply_entry(&Entry::blank(id(1))), ApplyOutcome::AlreadyApplied);
        assert_eq!(s, before);
    }

    #[test]
    fn blank_and_membership_entries_move_last_applied() {
        let mut s = MetadataState::default();
        assert_eq!(s.apply_entry(&Entry::blank(id(1))), ApplyOutcome::Blank);
        let m = Membership::single(3, "h:9093");
        let entry = Entry { log_id: id(2), payload: EntryPayload::Membership(m.clone()) };
        assert_eq!(s.apply_entry(&entry), ApplyOutcome::MembershipApplied);
        assert_eq!(s.membership, StoredMembership { log_id: Some(id(2)), membership: m });
        assert_eq!(s.last_applied, Some(id(2)));
    }

    fn register(broker_id: i32, incarnation: u8) -> MetadataCommand {
        MetadataCommand::RegisterBroker {
            broker_id,
            incarnation_id: [incarnation; 16],
            listeners: vec![BrokerListener {
                name: "PLAINTEXT".into(),
                host: "h".into(),
                port: 9092,
                security_protocol: "PLAINTEXT".into(),
            }],
            rack: None,
        }
    }

    #[test]
    fn broker_registration_epochs_and_fencing_follow_kafka() {
        let mut s = MetadataState::default();
        // A new incarnation: epoch = its entry's index, fenced.
        assert_eq!(
            s.apply(id(5), &register(1, 1)),
            ApplyOutcome::BrokerRegistered { broker_epoch: 5, new_incarnation: true }
        );
        assert!(s.brokers[&1].fenced);
        assert_eq!(
            s.apply(id(6), &MetadataCommand::UnfenceBroker { broker_id: 1, broker_epoch: 4 }),
            ApplyOutcome::StaleBrokerEpoch { current: 5 }
        );
        assert!(s.brokers[&1].fenced);
        assert_eq!(
            s.apply(id(7), &MetadataCommand::UnfenceBroker { broker_id: 1, broker_epoch: 5 }),
            ApplyOutcome::BrokerUnfenced
        );
        assert!(!s.brokers[&1].fenced);
        // The same incarnation again amends: epoch and fencing stay.
        assert_eq!(
            s.apply(id(8), &register(1, 1)),
            ApplyOutcome::BrokerRegistered { broker_epoch: 5, new_incarnation: false }
        );
        assert!(!s.brokers[&1].fenced);
        // A restart (new incarnation) starts fenced with a new epoch.
        assert_eq!(
            s.apply(id(9), &register(1, 2)),
            ApplyOutcome::BrokerRegistered { broker_epoch: 9, new_incarnation: true }
        );
        assert!(s.brokers[&1].fenced);
        assert_eq!(
            s.apply(id(10), &MetadataCommand::FenceBroker { broker_id: 2, broker_epoch: 9 }),
            ApplyOutcome::BrokerNotFound
        );
        assert_eq!(
            s.apply(id(11), &MetadataCommand::UnregisterBroker { broker_id: 1, broker_epoch: 5 }),
            ApplyOutcome::StaleBrokerEpoch { current: 9 }
        );
        assert_eq!(
            s.apply(id(12), &MetadataCommand::UnregisterBroker { broker_id: 1, broker_epoch: 9 }),
            ApplyOutcome::BrokerUnregistered
        );
        assert!(s.brokers.is_empty());
    }

    fn change(
        expected: Option<i32>,
        leader: Option<i32>,
        isr: Option<Vec<i32>>,
        replicas: Option<Vec<i32>>,
    ) -> MetadataCommand {
        MetadataCommand::ChangePartition {
            topic_id: [1; 16],
            partition: 0,
            expected_partition_epoch: expected,
            leader,
            isr,
            replicas,
        }
    }

    #[test]
    fn partition_changes_bump_epochs_as_kafka_merges_them() {
        let mut s = MetadataState::default();
        let mut t = topic("t", 1, 1);
        t.partitions[0] = PartitionMeta {
            replicas: vec![1, 2, 3],
            leader: 1,
            leader_epoch: 4,
            isr: vec![1, 2, 3],
            partition_epoch: 7,
        };
        s.apply(id(1), &MetadataCommand::CreateTopic { topic: t });
        for broker_id in [1, 2, 3] {
            let registration = BrokerRegistration {
                broker_id,
                incarnation_id: [0; 16],
                broker_epoch: 1,
                listeners: Vec::new(),
                rack: None,
                fenced: broker_id == 3,
                in_controlled_shutdown: false,
            };
            s.brokers.insert(broker_id, registration);
        }
        let p = |s: &MetadataState| s.topics["t"].partitions[0].clone();

        // ISR shrink without a leader change: only the partition epoch moves.
        assert_eq!(
            s.apply(id(2), &change(Some(7), None, Some(vec![1, 2]), None)),
            ApplyOutcome::PartitionChanged { leader: 1, leader_epoch: 4, partition_epoch: 8 }
        );
        // A stale AlterPartition (built against epoch 7) is refused.
        assert_eq!(
            s.apply(id(3), &change(Some(7), None, Some(vec![1]), None)),
            ApplyOutcome::PartitionEpochMismatch { current: 8 }
        );
        assert_eq!(p(&s).isr, vec![1, 2]);
        // A new leader bumps both epochs.
        assert_eq!(
            s.apply(id(4), &change(None, Some(2), Some(vec![2]), None)),
            ApplyOutcome::PartitionChanged { leader: 2, leader_epoch: 5, partition_epoch: 9 }
        );
        // Setting the same leader still bumps the leader epoch (Kafka uses this for reassignments).
        assert_eq!(
            s.apply(id(5), &change(None, Some(2), None, None)),
            ApplyOutcome::PartitionChanged { leader: 2, leader_epoch: 6, partition_epoch: 10 }
        );
        // Nothing to change: nothing moves.
        assert_eq!(s.apply(id(6), &change(None, None, Some(vec![2]), None)), ApplyOutcome::PartitionUnchanged);
        // Invariants hold whatever the proposer sent.
        assert!(matches!(
            s.apply(id(7), &change(None, None, Some(vec![2, 9]), None)),
            ApplyOutcome::InvalidPartitionChange { .. }
        ));
        assert!(matches!(
            s.apply(id(8), &change(None, Some(9), None, None)),
            ApplyOutcome::InvalidPartitionChange { .. }
        ));
        assert!(matches!(
            s.apply(id(9), &change(None, None, None, Some(vec![]))),
            ApplyOutcome::InvalidPartitionChange { .. }
        ));
        assert!(matches!(
            s.apply(id(10), &change(None, None, Some(vec![2, 2]), None)),
            ApplyOutcome::InvalidPartitionChange { .. }
        ));
        // No leader is allowed.
        assert_eq!(
            s.apply(id(11), &change(None, Some(-1), Some(vec![]), None)),
            ApplyOutcome::PartitionChanged { leader: -1, leader_epoch: 7, partition_epoch: 11 }
        );
        let unknown = MetadataCommand::ChangePartition {
            topic_id: [1; 16],
            partition: 3,
            expected_partition_epoch: None,
            leader: Some(1),
            isr: None,
            replicas: None,
        };
        assert_eq!(s.apply(id(12), &unknown), ApplyOutcome::PartitionNotFound);
        assert_eq!(p(&s).partition_epoch, 11);
        // A fenced broker (3) may not be elected, nor an unknown one (9, above).
        let fenced = s.apply(id(13), &change(None, Some(3), Some(vec![3]), None));
        assert!(
            matches!(&fenced, ApplyOutcome::InvalidPartitionChange { reason } if reason.contains("broker 3 is fenced")),
            "{fenced:?}"
        );
        assert_eq!(p(&s).partition_epoch, 11);
    }

    #[test]
    fn partitions_written_before_partition_epochs_read_as_epoch_zero() {
        let old = r#"{"replicas":[1],"leader":1,"leader_epoch":3,"isr":[1]}"#;
        let p: PartitionMeta = serde_json::from_str(old).expect("old partition JSON");
        assert_eq!(p.partition_epoch, 0);
        assert_eq!(p.leader_epoch, 3);
    }
}
