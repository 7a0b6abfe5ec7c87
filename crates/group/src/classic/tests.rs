//! The classic group state machine driven through joins, syncs, heartbeats,
//! leaves and expiries, without any IO.

use super::*;

const CONFIG: GroupConfig = GroupConfig {
    min_session_timeout_ms: 6_000,
    max_session_timeout_ms: 1_800_000,
    initial_rebalance_delay_ms: 0,
    max_size: 100,
};

struct Harness {
    group: ClassicGroup,
    now: u64,
    next_request: RequestId,
    next_member: u32,
}

impl Harness {
    fn new() -> Harness {
        Harness { group: ClassicGroup::new("g"), now: 1_000, next_request: 1, next_member: 0 }
    }

    fn join_req(member_id: &str, instance: Option<&str>, protocols: &[&str]) -> JoinRequest {
        JoinRequest {
            group_id: "g".into(),
            member_id: member_id.into(),
            group_instance_id: instance.map(str::to_string),
            client_id: "c".into(),
            client_host: "/127.0.0.1".into(),
            session_timeout_ms: 10_000,
            rebalance_timeout_ms: 30_000,
            protocol_type: "consumer".into(),
            protocols: protocols.iter().map(|p| ((*p).to_string(), p.as_bytes().to_vec())).collect(),
            require_known_member_id: true,
        }
    }

    fn join(&mut self, req: JoinRequest, config: &GroupConfig) -> (RequestId, Vec<Effect>) {
        let id = self.next_request;
        self.next_request += 1;
        let counter = &mut self.next_member;
        let mut ids = || {
            *counter += 1;
            format!("m{counter}")
        };
        let effects = self.group.join(id, req, self.now, 0, config, &mut ids);
        (id, effects)
    }

    /// Full dance for a new dynamic member: MEMBER_ID_REQUIRED, then rejoin.
    fn new_member(&mut self, protocols: &[&str]) -> (String, RequestId, Vec<Effect>) {
        let (_, effects) = self.join(Harness::join_req("", None, protocols), &CONFIG);
        let member_id = match &effects[..] {
            [Effect::Join(_, r)] if r.error == Some(GroupError::MemberIdRequired) => r.member_id.clone(),
            other => panic!("expected MEMBER_ID_REQUIRED, got {other:?}"),
        };
        let (id, effects) = self.join(Harness::join_req(&member_id, None, protocols), &CONFIG);
        (member_id, id, effects)
    }

    fn sync(&mut self, generation: i32, member: &str, assignments: Vec<(String, Vec<u8>)>) -> (RequestId, Vec<Effect>) {
        let id = self.next_request;
        self.next_request += 1;
        (id, self.group.sync(id, generation, member, None, None, None, assignments, self.now, 0))
    }
}

fn joins(effects: &[Effect]) -> Vec<(RequestId, JoinResult)> {
    effects.iter().filter_map(|e| if let Effect::Join(id, r) = e { Some((*id, r.clone())) } else { None }).collect()
}

fn syncs(effects: &[Effect]) -> Vec<(RequestId, SyncResult)> {
    effects.iter().filter_map(|e| if let Effect::Sync(id, r) = e { Some((*id, r.clone())) } else { None }).collect()
}

#[test]
fn single_member_joins_syncs_and_is_stable() {
    let mut h = Harness::new();
    let (member, join_id, effects) = h.new_member(&["range"]);
    let answered = joins(&effects);
    assert_eq!(answered.len(), 1);
    assert_eq!(answered[0].0, join_id);
    let r = &answered[0].1;
    assert_eq!(
        (r.error, r.generation, r.leader.as_str(), r.protocol_name.as_deref()),
        (None, 1, member.as_str(), Some("range"))
    );
    assert_eq!(r.members.len(), 1, "the leader sees every member");
    assert_eq!(h.group.state(), GroupState::CompletingRebalance);

    let (sync_id, effects) = h.sync(1, &member, vec![(member.clone(), b"assignment".to_vec())]);
    assert!(matches!(effects[0], Effect::Persist(..)), "metadata is persisted before answers");
    let s = syncs(&effects);
    assert_eq!(
        s,
        vec![(
            sync_id,
            SyncResult {
                error: None,
                protocol_type: Some("consumer".into()),
                protocol_name: Some("range".into()),
                assignment: b"assignment".to_vec()
            }
        )]
    );
    assert_eq!(h.group.state(), GroupState::Stable);
    assert_eq!(h.group.heartbeat(1, &member, None, h.now), Ok(()));
}

#[test]
fn second_member_triggers_a_rebalance_and_waits_for_the_first() {
    let mut h = Harness::new();
    let (a, _, _) = h.new_member(&["range"]);
    h.sync(1, &a, vec![(a.clone(), vec![1])]);
    let (b, b_join, effects) = h.new_member(&["range"]);
    assert!(joins(&effects).is_empty(), "b waits until a rejoins");
    assert_eq!(h.group.state(), GroupState::PreparingRebalance);
    assert_eq!(h.group.heartbeat(1, &a, None, h.now), Err(GroupError::RebalanceInProgress));
    let (a_join, effects) = h.join(Harness::join_req(&a, None, &["range"]), &CONFIG);
    let answered = joins(&effects);
    assert_eq!(answered.len(), 2);
    let for_a = answered.iter().find(|(id, _)| *id == a_join).expect("a answered");
    let for_b = answered.iter().find(|(id, _)| *id == b_join).expect("b answered");
    assert_eq!(for_a.1.generation, 2);
    assert_eq!(for_a.1.leader, a, "the existing leader stays leader");
    assert_eq!(for_a.1.members.len(), 2);
    assert!(for_b.1.members.is_empty(), "followers get no member list");

    // The follower's sync waits for the leader's.
    let (b_sync, effects) = h.sync(2, &b, vec![]);
    assert!(effects.is_empty());
    let (a_sync, effects) = h.sync(2, &a, vec![(a.clone(), vec![1]), (b.clone(), vec![2])]);
    let s = syncs(&effects);
    assert_eq!(s.len(), 2);
    assert_eq!(s.iter().find(|(id, _)| *id == b_sync).map(|(_, r)| r.assignment.clone()), Some(vec![2]));
    assert_eq!(s.iter().find(|(id, _)| *id == a_sync).map(|(_, r)| r.assignment.clone()), Some(vec![1]));
}

#[test]
fn protocol_selection_and_inconsistent_protocols() {
    let mut h = Harness::new();
    let (a, _, _) = h.new_member(&["cooperative-sticky", "range"]);
    h.sync(1, &a, vec![]);
    let (_, _, _) = h.new_member(&["range", "roundrobin"]);
    let (_, effects) = h.join(Harness::join_req(&a, None, &["cooperative-sticky", "range"]), &CONFIG);
    let answered = joins(&effects);
    assert!(answered.iter().all(|(_, r)| r.protocol_name.as_deref() == Some("range")), "only range is common");
    let (_, effects) = h.join(Harness::join_req("", None, &["roundrobin"]), &CONFIG);
    assert_eq!(joins(&effects)[0].1.error, Some(GroupError::InconsistentGroupProtocol));
}

#[test]
fn session_expiry_removes_a_member_and_rebalances() {
    let mut h = Harness::new();
    let (a, _, _) = h.new_member(&["range"]);
    h.sync(1, &a, vec![]);
    let (b, _, _) = h.new_member(&["range"]);
    h.join(Harness::join_req(&a, None, &["range"]), &CONFIG);
    h.sync(2, &a, vec![]);
    h.sync(2, &b, vec![]);
    assert_eq!(h.group.state(), GroupState::Stable);
    // a keeps heartbeating, b goes silent.
    let mut removed = Vec::new();
    for _ in 0..3 {
        h.now += 4_000;
        assert_eq!(h.group.heartbeat(2, &a, None, h.now), Ok(()));
        removed.extend(h.group.tick(h.now, 0, &CONFIG).into_iter().filter_map(|e| match e {
            Effect::Removed { member_id, reason, .. } => Some((member_id, reason)),
            _ => None,
        }));
    }
    assert!(!h.group.has_member(&b));
    assert_eq!(removed, vec![(b.clone(), Departure::SessionTimeout)]);
    assert_eq!(h.group.state(), GroupState::PreparingRebalance);
    let (_, effects) = h.join(Harness::join_req(&a, None, &["range"]), &CONFIG);
    assert_eq!(joins(&effects)[0].1.generation, 3);
}

#[test]
fn members_that_do_not_rejoin_are_dropped_at_the_deadline() {
    let mut h = Harness::new();
    let (a, _, _) = h.new_member(&["range"]);
    h.sync(1, &a, vec![]);
    let (b, b_join, _) = h.new_member(&["range"]);
    // a never rejoins: after the rebalance timeout, b forms generation 2 alone.
    h.now += 30_001;
    let effects = h.group.tick(h.now, 0, &CONFIG);
    let answered = joins(&effects);
    assert_eq!(answered.len(), 1);
    assert_eq!(answered[0].0, b_join);
    assert_eq!((answered[0].1.generation, answered[0].1.leader.as_str()), (2, b.as_str()));
    assert!(!h.group.has_member(&a));
}

#[test]
fn a_member_that_heartbeats_but_does_not_rejoin_leaves_at_the_rebalance_deadline() {
    let mut h = Harness::new();
    let (a, _, _) = h.new_member(&["range"]);
    h.sync(1, &a, vec![]);
    // b's arrival starts a rebalance with a 30 s deadline; a keeps its session alive.
    h.new_member(&["range"]);
    for _ in 0..3 {
        h.now += 9_000;
        assert_eq!(h.group.heartbeat(1, &a, None, h.now), Err(GroupError::RebalanceInProgress));
        h.group.tick(h.now, 0, &CONFIG);
    }
    assert!(h.group.has_member(&a), "dropped before the rebalance deadline");
    h.now += 3_001;
    let effects = h.group.tick(h.now, 0, &CONFIG);
    assert!(!h.group.has_member(&a));
    assert!(effects.iter().any(
        |e| matches!(e, Effect::Removed { member_id, reason: Departure::RebalanceTimeout, .. } if *member_id == a)
    ));
}

#[test]
fn leave_empties_the_group() {
    let mut h = Harness::new();
    let (a, _, _) = h.new_member(&["range"]);
    h.sync(1, &a, vec![]);
    let (result, effects) = h.group.leave(&a, None, h.now, 0, &CONFIG);
    assert_eq!(result, Ok(()));
    assert!(matches!(&effects[..], [Effect::Removed { reason: Departure::Left, .. }, Effect::Persist(..)]));
    assert_eq!(h.group.state(), GroupState::Empty);
    assert_eq!(h.group.leave(&a, None, h.now, 0, &CONFIG).0, Err(GroupError::UnknownMemberId));
}

#[test]
fn stale_generations_and_unknown_members_are_refused() {
    let mut h = Harness::new();
    let (a, _, _) = h.new_member(&["range"]);
    h.sync(1, &a, vec![]);
    assert_eq!(h.group.heartbeat(0, &a, None, h.now), Err(GroupError::IllegalGeneration));
    assert_eq!(h.group.heartbeat(1, "nobody", None, h.now), Err(GroupError::UnknownMemberId));
    let (_, effects) = h.sync(7, &a, vec![]);
    assert_eq!(syncs(&effects)[0].1.error, Some(GroupError::IllegalGeneration));
    let (_, effects) = h.join(Harness::join_req("nobody", None, &["range"]), &CONFIG);
    assert_eq!(joins(&effects)[0].1.error, Some(GroupError::UnknownMemberId));
    let mut short = Harness::join_req("", None, &["range"]);
    short.session_timeout_ms = 100;
    let (_, effects) = h.join(short, &CONFIG);
    assert_eq!(joins(&effects)[0].1.error, Some(GroupError::InvalidSessionTimeout));
}

#[test]
fn static_member_rejoins_without_a_rebalance_and_fences_the_old_id() {
    let mut h = Harness::new();
    let (_, effects) = h.join(Harness::join_req("", Some("instance-1"), &["range"]), &CONFIG);
    let first = joins(&effects)[0].1.clone();
    assert_eq!(first.error, None, "static members join without MEMBER_ID_REQUIRED");
    h.sync(1, &first.member_id, vec![(first.member_id.clone(), vec![9])]);
    assert_eq!(h.group.state(), GroupState::Stable);

    // Restarted client: same instance id, empty member id.
    let (_, effects) = h.join(Harness::join_req("", Some("instance-1"), &["range"]), &CONFIG);
    let second = joins(&effects)[0].1.clone();
    assert_eq!(second.error, None);
    assert_ne!(second.member_id, first.member_id);
    assert_eq!(second.generation, 1, "no rebalance");
    assert_eq!(h.group.state(), GroupState::Stable);
    assert_eq!(h.group.heartbeat(1, &first.member_id, Some("instance-1"), h.now), Err(GroupError::FencedInstanceId));
    assert_eq!(h.group.heartbeat(1, &second.member_id, Some("instance-1"), h.now), Ok(()));
}

#[test]
fn initial_delay_waits_for_more_members() {
    let config = GroupConfig { initial_rebalance_delay_ms: 3_000, ..CONFIG };
    let mut h = Harness::new();
    let (_, e) = h.join(Harness::join_req("", None, &["range"]), &config);
    let a = joins(&e)[0].1.member_id.clone();
    let (_, e) = h.join(Harness::join_req(&a, None, &["range"]), &config);
    assert!(joins(&e).is_empty(), "the first join waits out the initial delay");
    h.now += 1_000;
    let (_, e) = h.join(Harness::join_req("", None, &["range"]), &config);
    let b = joins(&e)[0].1.member_id.clone();
    let (_, e) = h.join(Harness::join_req(&b, None, &["range"]), &config);
    assert!(joins(&e).is_empty());
    h.now += 2_500;
    assert!(joins(&h.group.tick(h.now, 0, &config)).is_empty(), "b's arrival extended the delay");
    h.now += 1_000;
    let answered = joins(&h.group.tick(h.now, 0, &config));
    assert_eq!(answered.len(), 2);
    assert!(answered.iter().all(|(_, r)| r.generation == 1));
}

#[test]
fn restore_brings_back_a_stable_group() {
    let mut h = Harness::new();
    let (a, _, _) = h.new_member(&["range"]);
    h.sync(1, &a, vec![(a.clone(), vec![4, 2])]);
    let value = h.group.to_value();
    let mut restored = ClassicGroup::restore("g", &value, 50_000, 0);
    assert_eq!(restored.state(), GroupState::Stable);
    assert_eq!(restored.generation(), 1);
    assert_eq!(restored.heartbeat(1, &a, None, 50_001), Ok(()));
    let d = restored.describe();
    assert_eq!(d.members[0].assignment, vec![4, 2]);
}

#[test]
fn a_follower_waiting_in_sync_is_told_to_rejoin_when_a_new_member_arrives() {
    // a and b form generation 2; b's SyncGroup waits for the leader's
    // assignment when c joins. Without an answer b would sit in SyncGroup and
    // never rejoin, holding the group in PreparingRebalance until the
    // rebalance timeout.
    let mut h = Harness::new();
    let (a, _, _) = h.new_member(&["range"]);
    h.sync(1, &a, vec![(a.clone(), vec![1])]);
    let (b, _, _) = h.new_member(&["range"]);
    h.join(Harness::join_req(&a, None, &["range"]), &CONFIG);
    assert_eq!(h.group.state(), GroupState::CompletingRebalance);
    let (b_sync, effects) = h.sync(2, &b, vec![]);
    assert!(effects.is_empty(), "b waits for the leader");

    let (c, c_join, effects) = h.new_member(&["range"]);
    assert_eq!(h.group.state(), GroupState::PreparingRebalance);
    let s = syncs(&effects);
    assert_eq!(s.len(), 1, "b's parked sync is answered: {effects:?}");
    assert_eq!(s[0].0, b_sync);
    assert_eq!(s[0].1.error, Some(GroupError::RebalanceInProgress));

    // Everyone rejoins and generation 3 forms with all three.
    h.join(Harness::join_req(&a, None, &["range"]), &CONFIG);
    let (_, effects) = h.join(Harness::join_req(&b, None, &["range"]), &CONFIG);
    let answered = joins(&effects);
    assert!(answered.iter().any(|(id, r)| *id == c_join && r.generation == 3), "{answered:?}");
    assert_eq!(h.group.member_count(), 3);
    assert_eq!(h.group.state(), GroupState::CompletingRebalance);
    let _ = c;
}
