//! Leader elections: the ElectLeaders admin operation, and the active
//! controller's own elections (unclean ones for leaderless partitions whose
//! topic allows them, and the automatic preferred-leader rebalance).
//!
//! ```text
//! ElectLeaders request (any node) ─▶ Cluster::elect_leaders ─▶ MetadataCommand::ElectLeaders
//!     ─▶ forwarded to the active controller, decided when applied (metadata::elect_leaders)
//!     ─▶ per-partition results back to the node that took the request
//! controller tick ─▶ imbalanced brokers (leader.imbalance.per.broker.percentage)
//!     ─▶ MetadataCommand::ElectLeaders (preferred) for their partitions
//! ```

use std::collections::BTreeMap;

use tributary_config::BrokerLayers;
use tributary_metadata::{
    ApplyOutcome, ElectionResult, ElectionTarget, ElectionType, MetadataCommand, MetadataState, TopicMeta,
};
use tributary_protocol::ErrorCode;

use crate::cluster::Cluster;
use crate::error::ApiError;

impl Cluster {
    /// Runs leader elections through the metadata quorum; each partition's
    /// result as the active controller decided it.
    pub fn elect_leaders(
        &self,
        election: ElectionType,
        targets: Option<Vec<ElectionTarget>>,
    ) -> Result<Vec<ElectionResult>, ApiError> {
        let mut turn = self.metadata();
        match self.propose(&mut turn, MetadataCommand::ElectLeaders { election, targets })? {
            ApplyOutcome::LeadersElected { results } => Ok(results),
            other => {
                Err(ApiError::new(ErrorCode::UnknownServerError, format!("unexpected election outcome {other:?}")))
            }
        }
    }
}

/// Whether `unclean.leader.election.enable` holds for a topic: its own
/// override, else the cluster-wide dynamic default, else this (the
/// controller's) static config.
pub(crate) fn unclean_election_enabled(layers: &BrokerLayers, topic: &TopicMeta) -> bool {
    layers.topic_config(&topic.configs).unclean_leader_election_enable
}

/// The partitions to give back to their preferred leaders, by Kafka's rule:
/// for each broker, the share of the partitions it is the preferred
/// replica of that another broker leads; above `percentage` percent, every
/// such partition whose preferred replica is alive and in the ISR gets a
/// preferred election. `None` when no broker is over the threshold.
pub(crate) fn rebalance_targets(state: &MetadataState, percentage: u32) -> Option<Vec<ElectionTarget>> {
    let alive = |b: i32| tributary_metadata::alter_partition::is_active(state, b);
    // preferred broker -> (partitions it prefers, how many of them it does
    // not lead, those of them it could take back, by topic)
    type Tally = (usize, usize, BTreeMap<String, Vec<i32>>);
    let mut per_broker: BTreeMap<i32, Tally> = BTreeMap::new();
    for topic in state.topics.values() {
        for (index, meta) in topic.partitions.iter().enumerate() {
            let Some(&preferred) = meta.replicas.first() else { continue };
            let entry = per_broker.entry(preferred).or_default();
            entry.0 += 1;
            if meta.leader != preferred {
                entry.1 += 1;
                if alive(preferred) && meta.isr.contains(&preferred) {
                    entry.2.entry(topic.name.clone()).or_default().push(index as i32);
                }
            }
        }
    }
    let mut targets: BTreeMap<String, Vec<i32>> = BTreeMap::new();
    for (total, not_leading, movable) in per_broker.into_values() {
        // ratio > percentage / 100, in integers.
        if total == 0 || not_leading * 100 <= total * percentage as usize {
            continue;
        }
        for (topic, partitions) in movable {
            targets.entry(topic).or_default().extend(partitions);
        }
    }
    (!targets.is_empty())
        .then(|| targets.into_iter().map(|(topic, partitions)| ElectionTarget { topic, partitions }).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tributary_metadata::{BrokerRegistration, PartitionMeta};

    fn state(partitions: &[(&[i32], i32, &[i32])]) -> MetadataState {
        let mut s = MetadataState::default();
        for id in 1..=3 {
            s.brokers.insert(
                id,
                BrokerRegistration {
                    broker_id: id,
                    incarnation_id: [0; 16],
                    broker_epoch: 1,
                    listeners: vec![],
                    rack: None,
                    fenced: false,
                    in_controlled_shutdown: false,
                },
            );
        }
        let partitions = partitions
            .iter()
            .map(|(replicas, leader, isr)| PartitionMeta {
                replicas: replicas.to_vec(),
                leader: *leader,
                leader_epoch: 0,
                isr: isr.to_vec(),
                partition_epoch: 0,
                adding_replicas: Vec::new(),
                removing_replicas: Vec::new(),
            })
            .collect();
        s.topics.insert(
            "t".into(),
            TopicMeta { name: "t".into(), topic_id: [1; 16], partitions, configs: BTreeMap::new() },
        );
        s
    }

    #[test]
    fn brokers_over_the_imbalance_threshold_get_their_partitions_back() {
        // Broker 1 prefers partitions 0 and 1 and leads neither: 100%.
        // Broker 2 prefers partition 2 and leads it: 0%.
        let s = state(&[(&[1, 2, 3], 2, &[1, 2, 3]), (&[1, 3, 2], 3, &[1, 2, 3]), (&[2, 3, 1], 2, &[1, 2, 3])]);
        let targets = rebalance_targets(&s, 10).expect("imbalanced");
        assert_eq!(targets, vec![ElectionTarget { topic: "t".into(), partitions: vec![0, 1] }]);
    }

    #[test]
    fn a_ratio_at_or_below_the_threshold_or_an_unavailable_preferred_replica_moves_nothing() {
        // Broker 1 prefers 2 partitions and lost one: 50%, not above 50%.
        let s = state(&[(&[1, 2, 3], 2, &[1, 2, 3]), (&[1, 3, 2], 1, &[1, 2, 3])]);
        assert_eq!(rebalance_targets(&s, 50), None);
        assert!(rebalance_targets(&s, 49).is_some());
        // The preferred replica is out of the ISR: nothing it could take back.
        let s = state(&[(&[1, 2, 3], 2, &[2, 3])]);
        assert_eq!(rebalance_targets(&s, 0), None);
    }
}
