use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;

use super::*;

const T1: TopicUuid = [1; 16];
const T2: TopicUuid = [2; 16];

fn topics(list: &[(&str, TopicUuid, i32)]) -> TopicsView {
    TopicsView::new(
        list.iter()
            .map(|(n, id, p)| (n.to_string(), TopicInfo { id: *id, partitions: *p, internal: n.starts_with("__") })),
    )
}

fn join(member: &str, names: &[&str]) -> HeartbeatRequest {
    HeartbeatRequest {
        member_id: member.to_string(),
        member_epoch: 0,
        rebalance_timeout_ms: 300_000,
        subscribed_topic_names: Some(names.iter().map(|s| s.to_string()).collect()),
        subscribed_topic_regex: Some(String::new()),
        owned: Some(Vec::new()),
        client_id: "rdkafka".into(),
        client_host: "/127.0.0.1".into(),
        ..HeartbeatRequest::default()
    }
}

fn beat(member: &str, epoch: i32, owned: &Assignment) -> HeartbeatRequest {
    HeartbeatRequest {
        member_id: member.to_string(),
        member_epoch: epoch,
        rebalance_timeout_ms: -1,
        owned: Some(owned.iter().map(|(t, ps)| (*t, ps.iter().copied().collect())).collect()),
        client_id: "rdkafka".into(),
        client_host: "/127.0.0.1".into(),
        ..HeartbeatRequest::default()
    }
}

fn count(a: &Assignment) -> usize {
    a.values().map(BTreeSet::len).sum()
}

/// A client: what it owns and the epoch it heartbeats with.
#[derive(Debug, Clone, Default)]
struct Client {
    epoch: i32,
    owned: Assignment,
}

struct World {
    group: ConsumerGroup,
    topics: TopicsView,
    config: ConsumerConfig,
    clients: BTreeMap<String, Client>,
    records: Vec<GroupRecord>,
    now: u64,
}

impl World {
    fn new(topics: TopicsView) -> World {
        World {
            group: ConsumerGroup::new("g"),
            topics,
            config: ConsumerConfig::default(),
            clients: BTreeMap::new(),
            records: Vec::new(),
            now: 1_000,
        }
    }

    fn send(&mut self, req: HeartbeatRequest) -> Result<HeartbeatResponse, Failure> {
        let (result, records) = self.group.heartbeat(&req, &self.topics, self.now, &self.config);
        self.records.extend(records);
        result
    }

    fn join(&mut self, member: &str, names: &[&str]) {
        let r = self.send(join(member, names)).expect("join");
        self.clients
            .insert(member.to_string(), Client { epoch: r.member_epoch, owned: r.assignment.unwrap_or_default() });
    }

    /// One heartbeat of a client that applies whatever it is told at once.
    fn heartbeat(&mut self, member: &str) -> Result<HeartbeatResponse, Failure> {
        let client = self.clients.get(member).cloned().unwrap_or_default();
        let r = self.send(beat(member, client.epoch, &client.owned))?;
        let c = self.clients.entry(member.to_string()).or_default();
        c.epoch = r.member_epoch;
        if let Some(a) = &r.assignment {
            c.owned = a.clone();
        }
        Ok(r)
    }

    fn leave(&mut self, member: &str) {
        let epoch = self.clients.get(member).map_or(0, |c| c.epoch);
        let r = self.send(HeartbeatRequest { member_epoch: LEAVE_EPOCH, ..beat(member, epoch, &Assignment::new()) });
        assert_eq!(r.expect("leave").member_epoch, LEAVE_EPOCH);
        self.clients.remove(member);
    }

    fn settle(&mut self) {
        for _ in 0..10 {
            let ids: Vec<String> = self.clients.keys().cloned().collect();
            for id in ids {
                self.heartbeat(&id).expect("heartbeat");
            }
        }
    }

    /// No partition is owned by two clients, nor by two members on the coordinator.
    fn check_exclusive(&self) {
        let mut seen = BTreeSet::new();
        for (id, c) in &self.clients {
            for (t, ps) in &c.owned {
                for p in ps {
                    assert!(seen.insert((*t, *p)), "client {id} owns {p} which another client owns");
                }
            }
        }
        let mut held = BTreeSet::new();
        for m in self.group.members() {
            for a in [&m.assigned, &m.pending_revocation] {
                for (t, ps) in a {
                    for p in ps {
                        assert!(held.insert((*t, *p)), "member {} holds {p} which another member holds", m.id);
                    }
                }
            }
        }
        // The coordinator's view of ownership covers what clients own.
        for (id, c) in &self.clients {
            let m = self.group.member(id).expect("member");
            for (t, ps) in &c.owned {
                for p in ps {
                    let held = m.assigned.get(t).is_some_and(|s| s.contains(p))
                        || m.pending_revocation.get(t).is_some_and(|s| s.contains(p));
                    assert!(held, "client {id} owns {p} the coordinator does not know about");
                }
            }
        }
    }

    /// Rebuilds the group from its records and compares.
    fn check_replay(&self) {
        let mut rebuilt = ConsumerGroup::new("g");
        for r in &self.records {
            // Records go through their byte encoding as they would on disk.
            let key = OffsetsKey::decode(&r.key.encode()).expect("key").expect("consumer key");
            let value = r
                .value
                .as_ref()
                .map(|v| ConsumerValue::decode(&key, &v.encode()).expect("value").expect("consumer value"));
            assert!(rebuilt.replay(&key, value.as_ref()));
        }
        assert_eq!(persisted(&rebuilt), persisted(&self.group));
    }
}

type Persisted = (i32, i64, i32, BTreeMap<String, Assignment>, Vec<Member>, BTreeMap<String, String>);

fn persisted(g: &ConsumerGroup) -> Persisted {
    let members = g
        .members
        .values()
        .map(|m| Member { session_deadline_ms: 0, rebalance_deadline_ms: None, ..m.clone() })
        .collect();
    (g.epoch, g.metadata_hash, g.assignment_epoch, g.targets.clone(), members, g.static_members.clone())
}

#[test]
fn two_members_split_partitions_through_revocation() {
    let mut w = World::new(topics(&[("t", T1, 6)]));
    w.join("a", &["t"]);
    assert_eq!(count(&w.clients["a"].owned), 6, "a lone member gets everything");
    assert_eq!(w.clients["a"].epoch, 1);
    assert_eq!(w.group.state(), ConsumerGroupState::Stable);

    w.join("b", &["t"]);
    // b's half is still owned by a: b is at the new epoch with nothing yet.
    assert_eq!((w.clients["b"].epoch, count(&w.clients["b"].owned)), (2, 0));
    assert_eq!(w.group.member("b").map(|m| m.state), Some(MemberState::UnreleasedPartitions));
    assert_eq!(w.group.state(), ConsumerGroupState::Reconciling);
    w.check_exclusive();

    // a is told to revoke three partitions and stays at epoch 1 until it has.
    let r = w.heartbeat("a").expect("a");
    assert_eq!((r.member_epoch, r.assignment.as_ref().map(count)), (1, Some(3)));
    assert_eq!(w.group.member("a").map(|m| m.state), Some(MemberState::UnrevokedPartitions));
    // b gets nothing while a still holds them on the coordinator.
    w.heartbeat("b").expect("b");
    assert_eq!(count(&w.clients["b"].owned), 0);
    w.check_exclusive();
    // a acknowledges (owned partitions now three): epoch 2.
    let r = w.heartbeat("a").expect("a ack");
    assert_eq!(r.member_epoch, 2);
    let r = w.heartbeat("b").expect("b");
    assert_eq!((r.member_epoch, r.assignment.as_ref().map(count)), (2, Some(3)));
    w.check_exclusive();
    assert_eq!(w.group.state(), ConsumerGroupState::Stable);
    w.check_replay();
}

#[test]
fn a_leaving_member_releases_its_partitions_at_once() {
    let mut w = World::new(topics(&[("t", T1, 4)]));
    w.join("a", &["t"]);
    w.join("b", &["t"]);
    w.settle();
    assert_eq!((count(&w.clients["a"].owned), count(&w.clients["b"].owned)), (2, 2));
    w.leave("a");
    let r = w.heartbeat("b").expect("b");
    assert_eq!(r.assignment.as_ref().map(count), Some(4));
    assert_eq!(w.group.state(), ConsumerGroupState::Stable);
    assert_eq!(w.group.member_count(), 1);
    w.check_replay();
}

#[test]
fn sessions_expire_and_slow_revocations_are_fenced() {
    let mut w = World::new(topics(&[("t", T1, 4)]));
    w.join("a", &["t"]);
    w.join("b", &["t"]);
    // a must revoke but never acknowledges; b keeps heartbeating.
    w.heartbeat("a").expect("a");
    assert_eq!(w.group.member("a").map(|m| m.state), Some(MemberState::UnrevokedPartitions));
    w.now += 44_000;
    w.heartbeat("b").expect("b");
    w.now += 2_000;
    let (records, fenced) = w.group.tick(w.now);
    w.records.extend(records);
    assert_eq!(fenced, vec!["a".to_string()], "a's session expired");
    w.clients.remove("a");
    let r = w.heartbeat("b").expect("b");
    assert_eq!(r.assignment.as_ref().map(count), Some(4));

    // Rebalance timeout: c joins, b must revoke within 1 s.
    w.config.session_timeout_ms = 1_000_000;
    let mut c = join("c", &["t"]);
    c.rebalance_timeout_ms = 1_000;
    w.send(c).expect("c joins");
    w.group.members.get_mut("b").expect("b").rebalance_timeout_ms = 1_000;
    w.heartbeat("b").expect("b told to revoke");
    assert_eq!(w.group.member("b").map(|m| m.state), Some(MemberState::UnrevokedPartitions));
    assert_eq!(w.group.next_deadline(), Some(w.now + 1_000));
    w.now += 1_001;
    let (_, fenced) = w.group.tick(w.now);
    assert_eq!(fenced, vec!["b".to_string()]);
}

#[test]
fn epochs_are_fenced_and_unknown_members_refused() {
    let mut w = World::new(topics(&[("t", T1, 2)]));
    w.join("a", &["t"]);
    let owned = w.clients["a"].owned.clone();
    let err = |r: Result<HeartbeatResponse, Failure>| r.err().map(|f| f.error);
    assert_eq!(err(w.send(beat("a", 7, &owned))), Some(ConsumerError::FencedMemberEpoch));
    assert_eq!(err(w.send(beat("a", -5, &owned))), Some(ConsumerError::FencedMemberEpoch));
    assert_eq!(err(w.send(beat("zz", 1, &owned))), Some(ConsumerError::UnknownMemberId));
    // The previous epoch with a subset of the assignment is accepted (a lost response).
    w.join("b", &["t"]);
    w.settle();
    let epoch = w.clients["a"].epoch;
    let previous = w.group.member("a").map(|m| m.previous_epoch).unwrap_or_default();
    assert!(previous < epoch);
    let r = w.send(beat("a", previous, &w.clients["a"].owned.clone())).expect("previous epoch");
    assert_eq!(r.member_epoch, epoch);
    // A rejoin with epoch 0 and the same id starts over and gets the partitions back.
    let r = w.send(join("a", &["t"])).expect("rejoin");
    assert_eq!(r.assignment.as_ref().map(count), Some(1));
    // Nothing changed on errors.
    let before = persisted(&w.group);
    let n = w.records.len();
    assert!(w.send(beat("a", 99, &Assignment::new())).is_err());
    assert_eq!((persisted(&w.group), w.records.len()), (before, n));
}

#[test]
fn group_max_size() {
    let mut w = World::new(topics(&[("t", T1, 2)]));
    w.config.max_size = 1;
    w.join("a", &["t"]);
    let r = w.send(join("b", &["t"]));
    assert_eq!(r.err().map(|f| f.error), Some(ConsumerError::GroupMaxSizeReached));
    // An existing member still heartbeats.
    assert!(w.heartbeat("a").is_ok());
}

#[test]
fn static_members_leave_temporarily_and_come_back() {
    let mut w = World::new(topics(&[("t", T1, 4)]));
    let mut a = join("a1", &["t"]);
    a.instance_id = Some("inst".into());
    let r = w.send(a.clone()).expect("a1");
    assert_eq!(r.assignment.as_ref().map(count), Some(4));
    // Another member id with the same instance while a1 is active.
    let mut other = a.clone();
    other.member_id = "a2".into();
    assert_eq!(w.send(other.clone()).err().map(|f| f.error), Some(ConsumerError::UnreleasedInstanceId));
    // Static leave: the member stays and keeps its partitions.
    let leave = HeartbeatRequest {
        member_epoch: STATIC_LEAVE_EPOCH,
        instance_id: Some("inst".into()),
        ..beat("a1", 1, &Assignment::new())
    };
    assert_eq!(w.send(leave).expect("static leave").member_epoch, STATIC_LEAVE_EPOCH);
    assert_eq!(w.group.member_count(), 1);
    let epoch = w.group.epoch();
    // It comes back as a2 and gets the same partitions without a new group epoch.
    let r = w.send(other).expect("a2 replaces a1");
    assert_eq!(r.assignment.as_ref().map(count), Some(4));
    assert_eq!(w.group.epoch(), epoch);
    assert!(w.group.member("a1").is_none());
    // A wrong member id for the instance is fenced.
    let wrong = HeartbeatRequest { instance_id: Some("inst".into()), ..beat("a1", 1, &Assignment::new()) };
    assert_eq!(w.send(wrong).err().map(|f| f.error), Some(ConsumerError::FencedInstanceId));
    w.check_replay();
}

#[test]
fn regex_subscriptions_pick_up_new_topics_and_partitions() {
    let mut w = World::new(topics(&[("orders-a", T1, 2), ("other", T2, 2), ("__consumer_offsets", [9; 16], 50)]));
    let mut req = join("a", &[]);
    req.subscribed_topic_regex = Some("orders-.*".into());
    let r = w.send(req).expect("join");
    assert_eq!(r.assignment, Some(BTreeMap::from([(T1, BTreeSet::from([0, 1]))])));
    w.clients.insert("a".into(), Client { epoch: r.member_epoch, owned: r.assignment.unwrap_or_default() });
    // A topic created later that matches: the next heartbeat sees it.
    w.topics = topics(&[("orders-a", T1, 2), ("other", T2, 2), ("orders-b", [3; 16], 3)]);
    let r = w.heartbeat("a").expect("heartbeat");
    assert_eq!(r.assignment.as_ref().map(count), Some(5));
    // More partitions on a subscribed topic.
    w.topics = topics(&[("orders-a", T1, 4), ("other", T2, 2), ("orders-b", [3; 16], 3)]);
    let r = w.heartbeat("a").expect("heartbeat");
    assert_eq!(r.assignment.as_ref().map(count), Some(7));
    w.check_replay();
    // Invalid expressions are refused before the group is touched.
    let mut bad = join("b", &[]);
    bad.subscribed_topic_regex = Some("(".into());
    let e = validate_request("g", &bad, 1, &w.config).err().map(|f| f.error);
    assert_eq!(e, Some(ConsumerError::InvalidRegularExpression));
}

#[test]
fn requests_are_validated_like_kafka() {
    let c = ConsumerConfig::default();
    let code = |r: HeartbeatRequest, v| validate_request("g", &r, v, &c).err().map(|f| f.error);
    assert_eq!(code(join("a", &["t"]), 1), None);
    assert_eq!(code(join("", &["t"]), 1), Some(ConsumerError::InvalidRequest));
    assert_eq!(code(join("", &["t"]), 0), None, "v0 members get their id from the coordinator");
    assert_eq!(
        code(HeartbeatRequest { rebalance_timeout_ms: -1, ..join("a", &["t"]) }, 1),
        Some(ConsumerError::InvalidRequest)
    );
    assert_eq!(code(HeartbeatRequest { owned: None, ..join("a", &["t"]) }, 1), Some(ConsumerError::InvalidRequest));
    assert_eq!(
        code(HeartbeatRequest { subscribed_topic_names: None, subscribed_topic_regex: None, ..join("a", &[]) }, 1),
        Some(ConsumerError::InvalidRequest)
    );
    assert_eq!(
        code(HeartbeatRequest { member_epoch: -2, ..join("a", &["t"]) }, 1),
        Some(ConsumerError::InvalidRequest)
    );
    assert_eq!(
        code(HeartbeatRequest { member_epoch: -3, ..join("a", &["t"]) }, 1),
        Some(ConsumerError::InvalidRequest)
    );
    assert_eq!(
        code(HeartbeatRequest { server_assignor: Some("sticky".into()), ..join("a", &["t"]) }, 1),
        Some(ConsumerError::UnsupportedAssignor)
    );
    assert_eq!(code(HeartbeatRequest { server_assignor: Some("range".into()), ..join("a", &["t"]) }, 1), None);
}

#[test]
fn offset_commit_and_fetch_epochs() {
    let mut w = World::new(topics(&[("t", T1, 2)]));
    assert!(w.group.validate_offset_commit("", -1).is_ok(), "an empty group takes simple commits");
    w.join("a", &["t"]);
    let e = |r: Result<(), Failure>| r.err().map(|f| f.error);
    assert_eq!(e(w.group.validate_offset_commit("a", 1)), None);
    assert_eq!(e(w.group.validate_offset_commit("a", 0)), Some(ConsumerError::StaleMemberEpoch));
    assert_eq!(e(w.group.validate_offset_commit("", -1)), Some(ConsumerError::UnknownMemberId));
    assert_eq!(e(w.group.validate_offset_fetch(None, -1)), None);
    assert_eq!(e(w.group.validate_offset_fetch(Some("a"), 1)), None);
    assert_eq!(e(w.group.validate_offset_fetch(Some("a"), 3)), Some(ConsumerError::StaleMemberEpoch));
    assert_eq!(e(w.group.validate_offset_fetch(Some("x"), 1)), Some(ConsumerError::UnknownMemberId));
}

#[test]
fn the_range_assignor_is_used_when_asked_for() {
    let mut w = World::new(topics(&[("t", T1, 4)]));
    for m in ["a", "b"] {
        let mut r = join(m, &["t"]);
        r.server_assignor = Some("range".into());
        w.send(r).expect("join");
        w.clients.insert(m.to_string(), Client::default());
    }
    w.clients.get_mut("a").expect("a").epoch = 1;
    w.clients.get_mut("b").expect("b").epoch = 2;
    w.clients.get_mut("a").expect("a").owned = BTreeMap::from([(T1, BTreeSet::from([0, 1, 2, 3]))]);
    w.settle();
    assert_eq!(w.group.preferred_assignor(&w.config), AssignorKind::Range);
    assert_eq!(w.clients["a"].owned, BTreeMap::from([(T1, BTreeSet::from([0, 1]))]));
    assert_eq!(w.clients["b"].owned, BTreeMap::from([(T1, BTreeSet::from([2, 3]))]));
    let d = w.group.describe(&w.config);
    assert_eq!((d.state, d.assignor), (ConsumerGroupState::Stable, "range"));
}

#[derive(Debug, Clone)]
enum Op {
    Join(u8, bool),
    Heartbeat(u8),
    Leave(u8),
    Expire(u8),
    Grow(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        1 => (0u8..5, any::<bool>()).prop_map(|(m, both)| Op::Join(m, both)),
        4 => (0u8..5).prop_map(Op::Heartbeat),
        1 => (0u8..5).prop_map(Op::Leave),
        1 => (0u8..5).prop_map(Op::Expire),
        1 => (0u8..2).prop_map(Op::Grow),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// Whatever members do, no partition ever has two owners, the records
    /// rebuild the same group, and once everyone heartbeats the group is
    /// stable with a balanced assignment.
    #[test]
    fn reconciliation_never_shares_a_partition(ops in proptest::collection::vec(op(), 1..60)) {
        let mut counts = [3, 4];
        let view = |c: &[i32; 2]| topics(&[("x", T1, c[0]), ("y", T2, c[1])]);
        let mut w = World::new(view(&counts));
        for op in ops {
            match op {
                Op::Join(m, both) => {
                    let id = format!("m{m}");
                    if !w.clients.contains_key(&id) {
                        let names: &[&str] = if both { &["x", "y"] } else { &["x"] };
                        w.join(&id, names);
                    }
                }
                Op::Heartbeat(m) => {
                    let id = format!("m{m}");
                    if w.clients.contains_key(&id) {
                        w.heartbeat(&id).expect("heartbeat of a live member");
                    }
                }
                Op::Leave(m) => {
                    let id = format!("m{m}");
                    if w.clients.contains_key(&id) {
                        w.leave(&id);
                    }
                }
                Op::Expire(m) => {
                    let id = format!("m{m}");
                    if w.clients.contains_key(&id) {
                        w.group.members.get_mut(&id).expect("member").session_deadline_ms = 0;
                        let (records, fenced) = w.group.tick(w.now);
                        w.records.extend(records);
                        prop_assert_eq!(fenced, vec![id.clone()]);
                        w.clients.remove(&id);
                    }
                }
                Op::Grow(t) => {
                    counts[t as usize] += 1;
                    w.topics = view(&counts);
                }
            }
            w.check_exclusive();
        }
        w.check_replay();
        w.settle();
        w.check_exclusive();
        if w.clients.is_empty() {
            prop_assert_eq!(w.group.state(), ConsumerGroupState::Empty);
        } else {
            prop_assert_eq!(w.group.state(), ConsumerGroupState::Stable);
            for (id, c) in &w.clients {
                let target: Option<Assignment> = w.group.target(id).map(|t| t.iter().filter(|(_, p)| !p.is_empty()).map(|(t, p)| (*t, p.clone())).collect());
                prop_assert_eq!(Some(c.owned.clone()), target);
            }
            // Members subscribed to the same topics differ by at most one partition.
            let total: usize = counts[0] as usize;
            let owned: usize = w.clients.values().map(|c| c.owned.get(&T1).map_or(0, BTreeSet::len)).sum();
            prop_assert_eq!(owned, total, "every partition of x is owned");
        }
        w.check_replay();
    }
}
