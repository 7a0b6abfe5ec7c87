//! Every answer of AlterPartition, each from the state where it is the first
//! check to fail.

use std::collections::BTreeMap;

use super::AlterPartitionError as E;
use crate::command::{BrokerListener, BrokerState, MetadataCommand, PartitionMeta, TopicMeta};
use crate::state::{ApplyOutcome, MetadataState};
use crate::types::LogId;

const TOPIC: [u8; 16] = [7; 16];

/// Brokers 1, 2 and 3 registered (epochs 1, 2, 3) and unfenced; broker 4 a
/// replica that never registered. Topic 7's partition 0: replicas 1-4,
/// leader 1 at leader epoch 5, ISR [1, 2], partition epoch 9.
fn cluster() -> MetadataState {
    let mut s = MetadataState::default();
    let mut index = 0;
    let mut apply = |s: &mut MetadataState, c: MetadataCommand| {
        index += 1;
        s.apply(LogId::new(1, 1, index), &c)
    };
    for id in 1..=3 {
        let listener = BrokerListener {
            name: "PLAINTEXT".into(),
            host: "h".into(),
            port: 9092,
            security_protocol: "PLAINTEXT".into(),
        };
        let registered = apply(
            &mut s,
            MetadataCommand::RegisterBroker {
                broker_id: id,
                incarnation_id: [id as u8; 16],
                listeners: vec![listener],
                rack: None,
            },
        );
        assert_eq!(registered, ApplyOutcome::BrokerRegistered { broker_epoch: i64::from(id), new_incarnation: true });
    }
    for id in 1..=3 {
        apply(&mut s, MetadataCommand::UnfenceBroker { broker_id: id, broker_epoch: i64::from(id) });
    }
    let partition =
        PartitionMeta { replicas: vec![1, 2, 3, 4], leader: 1, leader_epoch: 5, isr: vec![1, 2], partition_epoch: 9 };
    let topic = TopicMeta { name: "t".into(), topic_id: TOPIC, partitions: vec![partition], configs: BTreeMap::new() };
    apply(&mut s, MetadataCommand::CreateTopic { topic });
    s
}

fn isr(members: &[(i32, i64)]) -> Vec<BrokerState> {
    members.iter().map(|&(broker_id, broker_epoch)| BrokerState { broker_id, broker_epoch }).collect()
}

/// Leader 1's request (broker epoch 1) to make the ISR [1, 2, 3], epochs as known.
fn expand() -> MetadataCommand {
    MetadataCommand::AlterPartition {
        broker_id: 1,
        broker_epoch: 1,
        topic_id: TOPIC,
        partition: 0,
        leader_epoch: 5,
        partition_epoch: 9,
        new_isr: isr(&[(1, 1), (2, 2), (3, 3)]),
    }
}

/// `expand()` with changes.
fn request(change: impl FnOnce(&mut MetadataCommand)) -> MetadataCommand {
    let mut c = expand();
    change(&mut c);
    c
}

macro_rules! with {
    ($($field:ident = $value:expr),+) => {
        request(|c| {
            if let MetadataCommand::AlterPartition { $($field,)+ .. } = c {
                $(*$field = $value;)+
            }
        })
    };
}

fn apply(state: &mut MetadataState, command: &MetadataCommand) -> ApplyOutcome {
    let next = state.applied_index() + 1;
    state.apply(LogId::new(2, 1, next), command)
}

/// Applies `command` to a fresh [`cluster`] and expects it refused with
/// `error`, the partition untouched.
fn refused(command: MetadataCommand, error: E) {
    let mut s = cluster();
    let before = s.topics["t"].clone();
    assert_eq!(apply(&mut s, &command), ApplyOutcome::AlterPartitionRefused { error }, "{command:?}");
    assert_eq!(s.topics["t"], before, "a refused request changes nothing");
}

#[test]
fn an_isr_change_bumps_the_partition_epoch_and_keeps_the_leader_epoch() {
    let mut s = cluster();
    let expanded = apply(&mut s, &expand());
    assert_eq!(
        expanded,
        ApplyOutcome::AlterPartitionApplied { leader: 1, leader_epoch: 5, isr: vec![1, 2, 3], partition_epoch: 10 }
    );
    assert_eq!(s.topics["t"].partitions[0].isr, vec![1, 2, 3]);
    // Shrinking back, from the new partition epoch; broker epochs -1 are not checked.
    let shrink = with!(partition_epoch = 10, new_isr = isr(&[(1, -1)]));
    assert_eq!(
        apply(&mut s, &shrink),
        ApplyOutcome::AlterPartitionApplied { leader: 1, leader_epoch: 5, isr: vec![1], partition_epoch: 11 }
    );
    // The same ISR again changes nothing and answers with the partition as it is.
    let same = with!(partition_epoch = 11, new_isr = isr(&[(1, 1)]));
    assert_eq!(
        apply(&mut s, &same),
        ApplyOutcome::AlterPartitionApplied { leader: 1, leader_epoch: 5, isr: vec![1], partition_epoch: 11 }
    );
    // The request the leader built before the shrink is stale now.
    assert_eq!(apply(&mut s, &expand()), ApplyOutcome::AlterPartitionRefused { error: E::InvalidUpdateVersion });
}

#[test]
fn the_asking_broker_must_be_registered_with_its_epoch() {
    refused(with!(broker_epoch = 7), E::StaleBrokerEpoch);
    refused(with!(broker_id = 9, broker_epoch = -1), E::StaleBrokerEpoch);
    refused(with!(broker_epoch = -1), E::StaleBrokerEpoch);
}

#[test]
fn unknown_topics_and_partitions() {
    refused(with!(topic_id = [8; 16]), E::UnknownTopicId);
    refused(with!(partition = 1), E::UnknownTopicOrPartition);
    refused(with!(partition = -1), E::UnknownTopicOrPartition);
}

#[test]
fn epochs_newer_than_the_controllers_mean_it_is_not_the_controller() {
    refused(with!(leader_epoch = 6), E::NotController);
    refused(with!(partition_epoch = 10), E::NotController);
}

#[test]
fn an_older_leader_epoch_is_fenced() {
    refused(with!(leader_epoch = 4), E::FencedLeaderEpoch);
    // The epoch check comes before the leader check.
    refused(with!(leader_epoch = 4, broker_id = 2, broker_epoch = 2), E::FencedLeaderEpoch);
}

#[test]
fn only_the_leader_may_ask() {
    let e = refusal(with!(broker_id = 2, broker_epoch = 2));
    assert!(matches!(e, E::InvalidRequest { ref reason } if reason.contains("not the leader")), "{e:?}");
}

#[test]
fn an_older_partition_epoch_is_an_invalid_update_version() {
    refused(with!(partition_epoch = 8), E::InvalidUpdateVersion);
}

fn refusal(command: MetadataCommand) -> E {
    match apply(&mut cluster(), &command) {
        ApplyOutcome::AlterPartitionRefused { error } => error,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn the_new_isr_must_be_a_set_of_replicas_holding_the_leader() {
    for bad in [
        isr(&[(1, 1), (5, -1)]),        // not a replica
        isr(&[(1, 1), (2, 2), (2, 2)]), // twice
        isr(&[(1, 1), (-1, -1)]),       // negative
        isr(&[(2, 2), (3, 3)]),         // without the leader
        isr(&[]),                       // empty
    ] {
        let e = refusal(with!(new_isr = bad.clone()));
        assert!(matches!(e, E::InvalidRequest { .. }), "{bad:?}: {e:?}");
    }
}

#[test]
fn fenced_shutting_down_unregistered_or_reregistered_members_are_ineligible() {
    let ineligible = |s: &mut MetadataState, members: Vec<BrokerState>, why: &str| {
        let before = s.topics["t"].clone();
        match apply(s, &with!(new_isr = members)) {
            ApplyOutcome::AlterPartitionRefused { error: E::IneligibleReplica { reason } } => {
                assert!(reason.contains(why), "{reason}")
            }
            other => panic!("expected INELIGIBLE_REPLICA ({why}), got {other:?}"),
        }
        assert_eq!(s.topics["t"], before);
    };
    let mut s = cluster();
    ineligible(&mut s, isr(&[(1, 1), (4, -1)]), "4: not registered");
    ineligible(&mut s, isr(&[(1, 1), (3, 2)]), "3: broker epoch 2 is not the registered 3");
    apply(&mut s, &MetadataCommand::FenceBroker { broker_id: 3, broker_epoch: 3 });
    ineligible(&mut s, isr(&[(1, 1), (3, 3)]), "3: fenced");
    let mut s = cluster();
    assert_eq!(
        apply(&mut s, &MetadataCommand::BeginControlledShutdown { broker_id: 3, broker_epoch: 3 }),
        ApplyOutcome::BrokerShuttingDown
    );
    ineligible(&mut s, isr(&[(1, 1), (3, 3)]), "3: shutting down");
    // The leader itself shutting down may not keep it either.
    apply(&mut s, &MetadataCommand::BeginControlledShutdown { broker_id: 1, broker_epoch: 1 });
    ineligible(&mut s, isr(&[(1, 1), (2, 2)]), "1: shutting down");
}

#[test]
fn a_shutdown_mark_needs_the_registration_and_ends_with_the_incarnation() {
    let mut s = cluster();
    assert_eq!(
        apply(&mut s, &MetadataCommand::BeginControlledShutdown { broker_id: 3, broker_epoch: 2 }),
        ApplyOutcome::StaleBrokerEpoch { current: 3 }
    );
    assert_eq!(
        apply(&mut s, &MetadataCommand::BeginControlledShutdown { broker_id: 8, broker_epoch: 2 }),
        ApplyOutcome::BrokerNotFound
    );
    apply(&mut s, &MetadataCommand::BeginControlledShutdown { broker_id: 3, broker_epoch: 3 });
    assert!(s.brokers[&3].in_controlled_shutdown && !super::is_active(&s, 3));
    let again =
        MetadataCommand::RegisterBroker { broker_id: 3, incarnation_id: [3; 16], listeners: vec![], rack: None };
    apply(&mut s, &again);
    assert!(s.brokers[&3].in_controlled_shutdown, "the same incarnation stays shutting down");
    let restarted =
        MetadataCommand::RegisterBroker { broker_id: 3, incarnation_id: [33; 16], listeners: vec![], rack: None };
    apply(&mut s, &restarted);
    assert!(!s.brokers[&3].in_controlled_shutdown, "a new incarnation starts afresh");
}

/// What a change committed between the leader's request and its entry does:
/// the request is judged against the state where its entry lands.
#[test]
fn a_request_is_judged_where_its_entry_lands_in_the_log() {
    let mut s = cluster();
    // Another change of the partition got in first.
    apply(
        &mut s,
        &MetadataCommand::ChangePartition {
            topic_id: TOPIC,
            partition: 0,
            expected_partition_epoch: Some(9),
            leader: None,
            isr: Some(vec![1]),
            replicas: None,
        },
    );
    assert_eq!(apply(&mut s, &expand()), ApplyOutcome::AlterPartitionRefused { error: E::InvalidUpdateVersion });
    // A leader change got in first: the old leader's request is fenced.
    let mut s = cluster();
    apply(
        &mut s,
        &MetadataCommand::ChangePartition {
            topic_id: TOPIC,
            partition: 0,
            expected_partition_epoch: Some(9),
            leader: Some(2),
            isr: None,
            replicas: None,
        },
    );
    assert_eq!(apply(&mut s, &expand()), ApplyOutcome::AlterPartitionRefused { error: E::FencedLeaderEpoch });
}

#[test]
fn the_command_and_its_outcomes_survive_the_logs_encoding() {
    let command = expand();
    let json = serde_json::to_string(&command).expect("encode");
    assert_eq!(serde_json::from_str::<MetadataCommand>(&json).expect("decode"), command);
    let outcome = ApplyOutcome::AlterPartitionRefused { error: E::IneligibleReplica { reason: "3: fenced".into() } };
    let json = serde_json::to_string(&outcome).expect("encode");
    assert_eq!(serde_json::from_str::<ApplyOutcome>(&json).expect("decode"), outcome);
    // A registration written before the controlled-shutdown mark existed reads as not shutting down.
    let old = r#"{"broker_id":1,"incarnation_id":[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0],"broker_epoch":4,"listeners":[],"rack":null,"fenced":false}"#;
    let read: crate::state::BrokerRegistration = serde_json::from_str(old).expect("decode");
    assert!(!read.in_controlled_shutdown);
}
