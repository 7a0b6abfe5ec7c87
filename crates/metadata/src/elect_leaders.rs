//! ElectLeaders as Kafka's controller decides it
//! (`ReplicationControlManager.electLeaders` / `electLeader`).
//!
//! The request is decided when its [`MetadataCommand::ElectLeaders`] entry
//! is applied, against the state at that point of the log, so which brokers
//! are alive (registered, unfenced, not shutting down) and what each
//! partition's leader and ISR are is the same on every node, and a race
//! with a fencing or an ISR change cannot elect a broker that may no longer
//! lead.
//!
//! Per partition, in Kafka's order:
//!
//! | case | result |
//! |---|---|
//! | no such topic or partition | UNKNOWN_TOPIC_OR_PARTITION |
//! | preferred, and the first replica leads already | ELECTION_NOT_NEEDED |
//! | unclean, and the partition has a leader | ELECTION_NOT_NEEDED |
//! | preferred: the first replica is alive and in the ISR | elected (leader epoch bumped) |
//! | preferred, without a leader: another ISR member is alive | elected (an online election) |
//! | preferred, otherwise | PREFERRED_LEADER_NOT_AVAILABLE |
//! | unclean: an ISR member is alive | elected |
//! | unclean: a replica outside the ISR is alive | elected, the ISR becomes just that replica |
//! | unclean, otherwise | ELIGIBLE_LEADERS_NOT_AVAILABLE |
//!
//! Without named partitions every partition is tried, and those that need
//! no election are left out of the results (Kafka's behaviour).

use serde::{Deserialize, Serialize};

use crate::alter_partition::is_active;
use crate::command::{ElectionTarget, ElectionType, MetadataCommand, PartitionMeta};
use crate::partition_change::{Election, PartitionChangeBuilder};
use crate::state::{ApplyOutcome, MetadataState, change_partition};

/// What an election did for one partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ElectionOutcome {
    /// A leader was elected.
    Elected {
        /// The new leader.
        leader: i32,
        /// Its leader epoch.
        leader_epoch: i32,
    },
    /// ELECTION_NOT_NEEDED: the preferred replica leads already (preferred),
    /// or the partition has a leader (unclean).
    NotNeeded,
    /// PREFERRED_LEADER_NOT_AVAILABLE: the first replica is not alive or
    /// not in the ISR.
    PreferredLeaderNotAvailable,
    /// ELIGIBLE_LEADERS_NOT_AVAILABLE: no replica is alive.
    EligibleLeadersNotAvailable,
    /// UNKNOWN_TOPIC_OR_PARTITION.
    UnknownTopicOrPartition,
}

/// One partition's election result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ElectionResult {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
    /// What happened.
    pub outcome: ElectionOutcome,
}

/// Applies an [`MetadataCommand::ElectLeaders`].
pub(crate) fn apply(
    state: &mut MetadataState,
    election: ElectionType,
    targets: Option<&[ElectionTarget]>,
) -> ApplyOutcome {
    let mut results = Vec::new();
    match targets {
        Some(targets) => {
            for target in targets {
                for &partition in &target.partitions {
                    let outcome = elect_one(state, &target.topic, partition, election);
                    results.push(ElectionResult { topic: target.topic.clone(), partition, outcome });
                }
            }
        }
        None => {
            let all: Vec<(String, i32)> = state
                .topics
                .values()
                .flat_map(|t| (0..t.partitions.len()).map(move |p| (t.name.clone(), p as i32)))
                .collect();
            for (topic, partition) in all {
                let outcome = elect_one(state, &topic, partition, election);
                if outcome != ElectionOutcome::NotNeeded {
                    results.push(ElectionResult { topic, partition, outcome });
                }
            }
        }
    }
    ApplyOutcome::LeadersElected { results }
}

/// The change one election makes, or why it makes none.
fn plan(
    state: &MetadataState,
    topic_id: [u8; 16],
    partition: i32,
    meta: &PartitionMeta,
    election: ElectionType,
) -> Result<MetadataCommand, ElectionOutcome> {
    let not_needed = match election {
        ElectionType::Preferred => meta.replicas.first() == Some(&meta.leader),
        ElectionType::Unclean => meta.leader != -1,
    };
    if not_needed {
        return Err(ElectionOutcome::NotNeeded);
    }
    let acceptable = |b: i32| is_active(state, b);
    let kind = match election {
        ElectionType::Preferred => Election::Preferred,
        ElectionType::Unclean => Election::Unclean,
    };
    let change = PartitionChangeBuilder::new(meta, topic_id, partition, &acceptable).election(kind).build();
    match change {
        // A change that leaves the partition without a leader elects nobody.
        Some(command @ MetadataCommand::ChangePartition { leader: Some(l), .. }) if l >= 0 => Ok(command),
        _ => Err(match election {
            ElectionType::Preferred => ElectionOutcome::PreferredLeaderNotAvailable,
            ElectionType::Unclean => ElectionOutcome::EligibleLeadersNotAvailable,
        }),
    }
}

fn elect_one(state: &mut MetadataState, topic: &str, partition: i32, election: ElectionType) -> ElectionOutcome {
    let Some(t) = state.topics.get(topic) else { return ElectionOutcome::UnknownTopicOrPartition };
    let Some(meta) = usize::try_from(partition).ok().and_then(|p| t.partitions.get(p)) else {
        return ElectionOutcome::UnknownTopicOrPartition;
    };
    let command = match plan(state, t.topic_id, partition, meta, election) {
        Ok(command) => command,
        Err(outcome) => return outcome,
    };
    let MetadataCommand::ChangePartition { expected_partition_epoch, .. } = &command else {
        return ElectionOutcome::EligibleLeadersNotAvailable;
    };
    let expected_partition_epoch = *expected_partition_epoch;
    let Some(meta) =
        state.topics.get_mut(topic).and_then(|t| usize::try_from(partition).ok().and_then(|p| t.partitions.get_mut(p)))
    else {
        return ElectionOutcome::UnknownTopicOrPartition;
    };
    match change_partition(meta, expected_partition_epoch, crate::state::Change::of(&command)) {
        ApplyOutcome::PartitionChanged { leader, leader_epoch, .. } => {
            ElectionOutcome::Elected { leader, leader_epoch }
        }
        // Built from this very state, the change always applies; anything
        // else means no leader came of it.
        _ => match election {
            ElectionType::Preferred => ElectionOutcome::PreferredLeaderNotAvailable,
            ElectionType::Unclean => ElectionOutcome::EligibleLeadersNotAvailable,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::TopicMeta;
    use crate::state::BrokerRegistration;
    use crate::types::LogId;

    fn broker(id: i32, fenced: bool) -> BrokerRegistration {
        BrokerRegistration {
            broker_id: id,
            incarnation_id: [id as u8; 16],
            broker_epoch: 5,
            listeners: vec![],
            rack: None,
            fenced,
            in_controlled_shutdown: false,
        }
    }

    /// Brokers 1-3 (`fenced` fenced) and topic "t" with these partitions.
    fn state(fenced: &[i32], partitions: &[(&[i32], i32, &[i32])]) -> MetadataState {
        let mut s = MetadataState::default();
        for id in 1..=3 {
            s.brokers.insert(id, broker(id, fenced.contains(&id)));
        }
        let partitions = partitions
            .iter()
            .map(|(replicas, leader, isr)| PartitionMeta {
                replicas: replicas.to_vec(),
                leader: *leader,
                leader_epoch: 4,
                isr: isr.to_vec(),
                partition_epoch: 7,
                adding_replicas: Vec::new(),
                removing_replicas: Vec::new(),
            })
            .collect();
        s.topics.insert(
            "t".into(),
            TopicMeta { name: "t".into(), topic_id: [9; 16], partitions, configs: Default::default() },
        );
        s
    }

    fn elect(
        s: &mut MetadataState,
        election: ElectionType,
        targets: Option<Vec<(&str, Vec<i32>)>>,
    ) -> Vec<ElectionResult> {
        let targets = targets.map(|t| {
            t.into_iter().map(|(topic, partitions)| ElectionTarget { topic: topic.into(), partitions }).collect()
        });
        let index = s.applied_index() + 1;
        match s.apply(LogId::new(1, 1, index), &MetadataCommand::ElectLeaders { election, targets }) {
            ApplyOutcome::LeadersElected { results } => results,
            other => panic!("unexpected {other:?}"),
        }
    }

    fn outcomes(results: &[ElectionResult]) -> Vec<(i32, ElectionOutcome)> {
        results.iter().map(|r| (r.partition, r.outcome.clone())).collect()
    }

    #[test]
    fn preferred_election_moves_leadership_to_the_first_replica_and_bumps_the_epoch() {
        let mut s = state(&[], &[(&[1, 2, 3], 2, &[1, 2, 3]), (&[1, 2, 3], 1, &[1, 2, 3])]);
        let results = elect(&mut s, ElectionType::Preferred, Some(vec![("t", vec![0, 1])]));
        assert_eq!(
            outcomes(&results),
            vec![(0, ElectionOutcome::Elected { leader: 1, leader_epoch: 5 }), (1, ElectionOutcome::NotNeeded)]
        );
        let p = &s.topics["t"].partitions[0];
        assert_eq!((p.leader, p.leader_epoch, p.partition_epoch, p.isr.clone()), (1, 5, 8, vec![1, 2, 3]));
        assert_eq!(s.topics["t"].partitions[1].leader_epoch, 4, "a partition needing no election is untouched");
    }

    #[test]
    fn preferred_replica_fenced_or_out_of_the_isr_is_not_available() {
        let mut s = state(&[1], &[(&[1, 2, 3], 2, &[1, 2, 3]), (&[3, 2, 1], 2, &[1, 2])]);
        let results = elect(&mut s, ElectionType::Preferred, Some(vec![("t", vec![0, 1])]));
        assert_eq!(
            outcomes(&results),
            vec![(0, ElectionOutcome::PreferredLeaderNotAvailable), (1, ElectionOutcome::PreferredLeaderNotAvailable)]
        );
        assert_eq!(s.topics["t"].partitions[0].leader_epoch, 4);
    }

    #[test]
    fn unclean_election_only_without_a_leader_and_may_leave_the_isr() {
        // Partition 0 has a leader; partition 1's only ISR member (1) is fenced.
        let mut s = state(&[1], &[(&[1, 2, 3], 2, &[2, 3]), (&[1, 2, 3], -1, &[1]), (&[1], -1, &[1])]);
        let results = elect(&mut s, ElectionType::Unclean, Some(vec![("t", vec![0, 1, 2])]));
        assert_eq!(
            outcomes(&results),
            vec![
                (0, ElectionOutcome::NotNeeded),
                (1, ElectionOutcome::Elected { leader: 2, leader_epoch: 5 }),
                (2, ElectionOutcome::EligibleLeadersNotAvailable),
            ]
        );
        assert_eq!(s.topics["t"].partitions[1].isr, vec![2], "the ISR becomes just the new leader");
    }

    #[test]
    fn unknown_topics_and_partitions_are_reported() {
        let mut s = state(&[], &[(&[1, 2, 3], 1, &[1, 2, 3])]);
        let results = elect(&mut s, ElectionType::Preferred, Some(vec![("t", vec![1, -1]), ("nope", vec![0])]));
        assert_eq!(results.len(), 3);
        assert!(results.iter().all(|r| r.outcome == ElectionOutcome::UnknownTopicOrPartition));
    }

    #[test]
    fn all_partitions_leaves_out_those_needing_no_election() {
        let mut s = state(&[], &[(&[1, 2, 3], 1, &[1, 2, 3]), (&[2, 3, 1], 3, &[1, 2, 3]), (&[3, 1, 2], 3, &[3])]);
        let results = elect(&mut s, ElectionType::Preferred, None);
        assert_eq!(outcomes(&results), vec![(1, ElectionOutcome::Elected { leader: 2, leader_epoch: 5 })]);
    }
}
