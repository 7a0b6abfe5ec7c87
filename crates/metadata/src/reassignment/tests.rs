//! Reassignment state transitions: start, complete (through AlterPartition
//! and at once), cancel, replace, a removed leader, and every refusal.

use std::collections::BTreeMap;

use super::ReassignmentError as E;
use crate::command::{BrokerListener, BrokerState, MetadataCommand, PartitionMeta, TopicMeta};
use crate::state::{ApplyOutcome, MetadataState};
use crate::types::LogId;

const TOPIC: [u8; 16] = [9; 16];

/// Brokers 1-4 registered (epoch = id) and unfenced; topic "t" partition 0
/// on `replicas`, the first leading at leader epoch 0, ISR all of them.
fn cluster(replicas: &[i32]) -> MetadataState {
    let mut s = MetadataState::default();
    for id in 1..=4 {
        let listener = BrokerListener {
            name: "PLAINTEXT".into(),
            host: "h".into(),
            port: 9092,
            security_protocol: "PLAINTEXT".into(),
        };
        let register = MetadataCommand::RegisterBroker {
            broker_id: id,
            incarnation_id: [id as u8; 16],
            listeners: vec![listener],
            rack: None,
        };
        apply(&mut s, &register);
        let epoch = s.brokers[&id].broker_epoch;
        apply(&mut s, &MetadataCommand::UnfenceBroker { broker_id: id, broker_epoch: epoch });
    }
    let partition = PartitionMeta::new(replicas.to_vec(), replicas[0], 0, replicas.to_vec(), 0);
    let topic = TopicMeta { name: "t".into(), topic_id: TOPIC, partitions: vec![partition], configs: BTreeMap::new() };
    apply(&mut s, &MetadataCommand::CreateTopic { topic });
    s
}

fn apply(state: &mut MetadataState, command: &MetadataCommand) -> ApplyOutcome {
    let next = state.applied_index() + 1;
    state.apply(LogId::new(1, 1, next), command)
}

fn reassign(target: Option<&[i32]>) -> MetadataCommand {
    MetadataCommand::ReassignPartition { topic_id: TOPIC, partition: 0, target: target.map(<[i32]>::to_vec) }
}

fn p(s: &MetadataState) -> PartitionMeta {
    s.topics["t"].partitions[0].clone()
}

/// (replicas, ISR, adding, removing, leader).
fn shape(s: &MetadataState) -> (Vec<i32>, Vec<i32>, Vec<i32>, Vec<i32>, i32) {
    let p = p(s);
    (p.replicas, p.isr, p.adding_replicas, p.removing_replicas, p.leader)
}

/// The leader's AlterPartition to make the ISR `isr`, from the partition as it is.
fn expand_isr(s: &MetadataState, isr: &[i32]) -> MetadataCommand {
    let p = p(s);
    MetadataCommand::AlterPartition {
        broker_id: p.leader,
        broker_epoch: s.brokers[&p.leader].broker_epoch,
        topic_id: TOPIC,
        partition: 0,
        leader_epoch: p.leader_epoch,
        partition_epoch: p.partition_epoch,
        new_isr: isr.iter().map(|&broker_id| BrokerState { broker_id, broker_epoch: -1 }).collect(),
    }
}

#[test]
fn a_move_adds_first_and_completes_once_the_new_replicas_are_in_sync() {
    let mut s = cluster(&[1, 2]);
    let started = apply(&mut s, &reassign(Some(&[3, 2])));
    assert!(matches!(started, ApplyOutcome::PartitionChanged { leader: 1, leader_epoch: 0, .. }), "{started:?}");
    assert_eq!(shape(&s), (vec![3, 2, 1], vec![1, 2], vec![3], vec![1], 1));
    assert!(p(&s).is_reassigning());
    assert_eq!(p(&s).target_replicas(), vec![3, 2]);

    // Broker 3 joins the ISR: the change that puts it there completes the
    // reassignment; leader 1 is removed, so 2 (first of the target in the
    // ISR... 3 comes first in the target) leads in a new epoch.
    let epoch = p(&s).leader_epoch;
    let c = expand_isr(&s, &[1, 2, 3]);
    let done = apply(&mut s, &c);
    assert!(matches!(done, ApplyOutcome::AlterPartitionApplied { leader: 3, .. }), "{done:?}");
    assert_eq!(shape(&s), (vec![3, 2], vec![2, 3], vec![], vec![], 3));
    assert_eq!(p(&s).leader_epoch, epoch + 1);
    assert!(!p(&s).is_reassigning());
}

#[test]
fn a_move_keeps_the_leader_when_it_stays() {
    let mut s = cluster(&[1]);
    apply(&mut s, &reassign(Some(&[1, 2, 3])));
    assert_eq!(shape(&s), (vec![1, 2, 3], vec![1], vec![2, 3], vec![], 1));
    // One of two adding replicas in sync: still in progress.
    let c = expand_isr(&s, &[1, 2]);
    apply(&mut s, &c);
    assert_eq!(shape(&s), (vec![1, 2, 3], vec![1, 2], vec![2, 3], vec![], 1));
    let epoch = p(&s).leader_epoch;
    let c = expand_isr(&s, &[1, 2, 3]);
    apply(&mut s, &c);
    assert_eq!(shape(&s), (vec![1, 2, 3], vec![1, 2, 3], vec![], vec![], 1));
    assert_eq!(p(&s).leader_epoch, epoch, "nothing removed, the leader stays: no new leader epoch");
}

#[test]
fn a_shrink_that_removes_the_leader_completes_at_once_with_a_new_leader() {
    let mut s = cluster(&[1, 2, 3]);
    let done = apply(&mut s, &reassign(Some(&[2, 3])));
    assert!(matches!(done, ApplyOutcome::PartitionChanged { leader: 2, leader_epoch: 1, .. }), "{done:?}");
    assert_eq!(shape(&s), (vec![2, 3], vec![2, 3], vec![], vec![], 2));
}

#[test]
fn cancel_drops_the_added_replicas_and_keeps_the_removing_ones() {
    let mut s = cluster(&[1, 2]);
    apply(&mut s, &reassign(Some(&[3, 4])));
    assert_eq!(shape(&s), (vec![3, 4, 1, 2], vec![1, 2], vec![3, 4], vec![1, 2], 1));
    // 3 caught up (in the ISR), 4 not: still in progress.
    let c = expand_isr(&s, &[1, 2, 3]);
    apply(&mut s, &c);
    assert_eq!(shape(&s).2, vec![3, 4]);
    let cancelled = apply(&mut s, &reassign(None));
    assert!(matches!(cancelled, ApplyOutcome::PartitionChanged { leader: 1, .. }), "{cancelled:?}");
    assert_eq!(shape(&s), (vec![1, 2], vec![1, 2], vec![], vec![], 1));
    // Nothing left to cancel.
    let before = p(&s);
    assert_eq!(
        apply(&mut s, &reassign(None)),
        ApplyOutcome::ReassignmentRefused { error: E::NoReassignmentInProgress }
    );
    assert_eq!(p(&s), before);
}

#[test]
fn a_new_reassignment_replaces_the_one_in_progress() {
    let mut s = cluster(&[1, 2]);
    apply(&mut s, &reassign(Some(&[1, 3])));
    assert_eq!(shape(&s), (vec![1, 3, 2], vec![1, 2], vec![3], vec![2], 1));
    // The new target keeps 3 (still being added, not in sync) and adds 4
    // instead of removing 2: the original replicas are [1, 2].
    apply(&mut s, &reassign(Some(&[1, 2, 3, 4])));
    assert_eq!(shape(&s), (vec![1, 2, 3, 4], vec![1, 2], vec![3, 4], vec![], 1));
    // A target that drops 3 and 4 again: they leave at once, nothing is in progress.
    apply(&mut s, &reassign(Some(&[1, 2])));
    assert_eq!(shape(&s), (vec![1, 2], vec![1, 2], vec![], vec![], 1));
}

#[test]
fn reassigning_to_the_current_replicas_changes_nothing() {
    let mut s = cluster(&[1, 2]);
    let before = p(&s);
    assert_eq!(apply(&mut s, &reassign(Some(&[1, 2]))), ApplyOutcome::PartitionUnchanged);
    assert_eq!(p(&s), before);
}

/// A request and what its refusal must look like.
type Case = (MetadataCommand, fn(&E) -> bool);

#[test]
fn refusals_are_kafkas_and_change_nothing() {
    let cases: Vec<Case> = vec![
        (reassign(Some(&[])), |e| matches!(e, E::InvalidReplicaAssignment { reason } if reason.contains("empty"))),
        (
            reassign(Some(&[2, 2])),
            |e| matches!(e, E::InvalidReplicaAssignment { reason } if reason.contains("broker 2 more than once")),
        ),
        (
            reassign(Some(&[1, 9])),
            |e| matches!(e, E::InvalidReplicaAssignment { reason } if reason.contains("broker 9, but no such broker")),
        ),
        (reassign(None), |e| *e == E::NoReassignmentInProgress),
        (MetadataCommand::ReassignPartition { topic_id: TOPIC, partition: 5, target: Some(vec![1]) }, |e| {
            *e == E::UnknownTopicOrPartition
        }),
        (MetadataCommand::ReassignPartition { topic_id: [1; 16], partition: 0, target: Some(vec![1]) }, |e| {
            *e == E::UnknownTopicOrPartition
        }),
    ];
    for (command, expected) in cases {
        let mut s = cluster(&[1, 2]);
        let before = s.topics.clone();
        match apply(&mut s, &command) {
            ApplyOutcome::ReassignmentRefused { error } => assert!(expected(&error), "{command:?}: {error:?}"),
            other => panic!("{command:?}: {other:?}"),
        }
        assert_eq!(s.topics, before, "{command:?}");
    }
}

#[test]
fn an_ineligible_new_replica_never_completes_a_move_with_an_empty_isr() {
    // Leader 1 alone in the ISR; moving to [2] keeps 1 until 2 is in sync.
    let mut s = cluster(&[1]);
    apply(&mut s, &reassign(Some(&[2])));
    assert_eq!(shape(&s), (vec![2, 1], vec![1], vec![2], vec![1], 1));
    let c = expand_isr(&s, &[1, 2]);
    apply(&mut s, &c);
    assert_eq!(shape(&s), (vec![2], vec![2], vec![], vec![], 2));
}

#[test]
fn partitions_and_changes_written_before_reassignments_still_read() {
    let old = r#"{"replicas":[1,2],"leader":1,"leader_epoch":3,"isr":[1],"partition_epoch":4}"#;
    let p: PartitionMeta = serde_json::from_str(old).expect("old partition JSON");
    assert_eq!(p, PartitionMeta::new(vec![1, 2], 1, 3, vec![1], 4));
    assert_eq!(serde_json::to_string(&p).expect("encode"), old, "no reassignment: the old shape is written");
    let change = r#"{"ChangePartition":{"topic_id":[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0],"partition":0,"expected_partition_epoch":null,"leader":2,"isr":null,"replicas":null}}"#;
    let c: MetadataCommand = serde_json::from_str(change).expect("old change JSON");
    assert!(matches!(c, MetadataCommand::ChangePartition { adding: None, removing: None, leader: Some(2), .. }));
}
