//! The consumer group protocol (KIP-848) in-process, driven with raw
//! ConsumerGroupHeartbeat requests: joining, reconciliation through
//! revocation, offsets with member epochs, describe/list, the classic
//! protocol kept apart, leave, and a restart that rebuilds the group.

use std::collections::BTreeSet;

use kafka_protocol::messages::consumer_group_heartbeat_request::TopicPartitions;
use kafka_protocol::messages::offset_commit_request::{OffsetCommitRequestPartition, OffsetCommitRequestTopic};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestGroup;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use tributary_testkit::{RawClient, TestBroker};
use uuid::Uuid;

fn s(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_string())
}

async fn create(client: &mut RawClient, name: &str, partitions: i32) -> Uuid {
    let request = CreateTopicsRequest::default().with_timeout_ms(10_000).with_topics(vec![
        kafka_protocol::messages::create_topics_request::CreatableTopic::default()
            .with_name(TopicName(s(name)))
            .with_num_partitions(partitions)
            .with_replication_factor(1),
    ]);
    let response: CreateTopicsResponse = client.call(ApiKey::CreateTopics, 7, &request).await.expect("answer");
    assert_eq!(response.topics[0].error_code, 0);
    response.topics[0].topic_id
}

/// A broker with `__consumer_offsets` on its one node, once its coordinator has loaded.
async fn start(overrides: &[(&str, &str)]) -> TestBroker {
    let mut all = vec![("offsets.topic.replication.factor", "1"), ("offsets.topic.num.partitions", "4")];
    all.extend_from_slice(overrides);
    let broker = TestBroker::start(&all).await;
    coordinator_ready(&broker).await;
    broker
}

async fn restart(broker: TestBroker) -> TestBroker {
    let dir = broker.stop().await;
    let broker =
        TestBroker::start_in(dir, &[("offsets.topic.replication.factor", "1"), ("offsets.topic.num.partitions", "4")])
            .await;
    coordinator_ready(&broker).await;
    broker
}

async fn coordinator_ready(broker: &TestBroker) {
    let mut c = RawClient::connect(broker.addr).await;
    for _ in 0..200 {
        let r: FindCoordinatorResponse = c
            .call(ApiKey::FindCoordinator, 2, &FindCoordinatorRequest::default().with_key(s("any")))
            .await
            .expect("answer");
        if r.error_code == 0 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the group coordinator did not load");
}

type Owned = Vec<(Uuid, Vec<i32>)>;

fn join(group: &str, member: &str, topics: &[&str]) -> ConsumerGroupHeartbeatRequest {
    ConsumerGroupHeartbeatRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_member_id(s(member))
        .with_member_epoch(0)
        .with_rebalance_timeout_ms(300_000)
        .with_subscribed_topic_names(Some(topics.iter().map(|t| TopicName(s(t))).collect()))
        .with_subscribed_topic_regex(Some(s("")))
        .with_topic_partitions(Some(Vec::new()))
}

fn beat(group: &str, member: &str, epoch: i32, owned: &Owned) -> ConsumerGroupHeartbeatRequest {
    ConsumerGroupHeartbeatRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_member_id(s(member))
        .with_member_epoch(epoch)
        .with_rebalance_timeout_ms(-1)
        .with_topic_partitions(Some(
            owned
                .iter()
                .map(|(t, ps)| TopicPartitions::default().with_topic_id(*t).with_partitions(ps.clone()))
                .collect(),
        ))
}

async fn heartbeat(client: &mut RawClient, req: &ConsumerGroupHeartbeatRequest) -> ConsumerGroupHeartbeatResponse {
    client.call(ApiKey::ConsumerGroupHeartbeat, 1, req).await.expect("answer")
}

fn assigned(r: &ConsumerGroupHeartbeatResponse) -> Option<Owned> {
    r.assignment.as_ref().map(|a| a.topic_partitions.iter().map(|tp| (tp.topic_id, tp.partitions.clone())).collect())
}

fn count(owned: &Owned) -> usize {
    owned.iter().map(|(_, ps)| ps.len()).sum()
}

async fn describe(client: &mut RawClient, group: &str) -> consumer_group_describe_response::DescribedGroup {
    let request = ConsumerGroupDescribeRequest::default().with_group_ids(vec![GroupId(s(group))]);
    let r: ConsumerGroupDescribeResponse =
        client.call(ApiKey::ConsumerGroupDescribe, 1, &request).await.expect("answer");
    r.groups.into_iter().next().expect("one group")
}

async fn commit(client: &mut RawClient, group: &str, member: &str, epoch: i32, topic: &str) -> i16 {
    let request = OffsetCommitRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_generation_id_or_member_epoch(epoch)
        .with_member_id(s(member))
        .with_topics(vec![OffsetCommitRequestTopic::default().with_name(TopicName(s(topic))).with_partitions(vec![
            OffsetCommitRequestPartition::default().with_partition_index(0).with_committed_offset(42),
        ])]);
    let r: OffsetCommitResponse = client.call(ApiKey::OffsetCommit, 9, &request).await.expect("answer");
    r.topics[0].partitions[0].error_code
}

async fn fetch_error(client: &mut RawClient, group: &str, member: Option<&str>, epoch: i32) -> (i16, i64) {
    let request = OffsetFetchRequest::default().with_groups(vec![
        OffsetFetchRequestGroup::default()
            .with_group_id(GroupId(s(group)))
            .with_member_id(member.map(s))
            .with_member_epoch(epoch)
            .with_topics(None),
    ]);
    let r: OffsetFetchResponse = client.call(ApiKey::OffsetFetch, 9, &request).await.expect("answer");
    let g = &r.groups[0];
    let committed = g.topics.first().and_then(|t| t.partitions.first()).map_or(-1, |p| p.committed_offset);
    (g.error_code, committed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_reconcile_commit_describe_and_survive_a_restart() {
    let broker = start(&[]).await;
    let mut c = RawClient::connect(broker.addr).await;
    let topic_id = create(&mut c, "events", 4).await;
    let group = "kip848";

    // a joins alone and gets all four partitions at epoch 1.
    let r = heartbeat(&mut c, &join(group, "a", &["events"])).await;
    assert_eq!((r.error_code, r.member_epoch, r.heartbeat_interval_ms), (0, 1, 5_000));
    let a_owned = assigned(&r).expect("assignment");
    assert_eq!(a_owned, vec![(topic_id, vec![0, 1, 2, 3])]);

    // b joins: its partitions are still a's, so it waits at epoch 2 with none.
    let r = heartbeat(&mut c, &join(group, "b", &["events"])).await;
    assert_eq!((r.error_code, r.member_epoch), (0, 2));
    assert_eq!(assigned(&r).map(|a| count(&a)), Some(0));
    assert_eq!(describe(&mut c, group).await.group_state.as_str(), "Reconciling");

    // a is asked to revoke two and stays at epoch 1 until it reports them gone.
    let r = heartbeat(&mut c, &beat(group, "a", 1, &a_owned)).await;
    assert_eq!(r.member_epoch, 1);
    let a_owned = assigned(&r).expect("revocation");
    assert_eq!(count(&a_owned), 2);
    // A commit with a stale epoch is refused; the current one is accepted.
    assert_eq!(commit(&mut c, group, "a", 0, "events").await, 113, "STALE_MEMBER_EPOCH");
    assert_eq!(commit(&mut c, group, "nobody", 1, "events").await, 25, "UNKNOWN_MEMBER_ID");
    assert_eq!(commit(&mut c, group, "a", 1, "events").await, 0);
    // A wrong epoch on a heartbeat is fenced.
    assert_eq!(heartbeat(&mut c, &beat(group, "a", 5, &a_owned)).await.error_code, 110, "FENCED_MEMBER_EPOCH");
    let r = heartbeat(&mut c, &beat(group, "a", 1, &a_owned)).await;
    assert_eq!((r.error_code, r.member_epoch), (0, 2), "revocation acknowledged");
    let r = heartbeat(&mut c, &beat(group, "b", 2, &Vec::new())).await;
    let b_owned = assigned(&r).expect("b's partitions");
    assert_eq!(count(&b_owned), 2);
    let a_set: BTreeSet<i32> = a_owned[0].1.iter().copied().collect();
    assert!(b_owned[0].1.iter().all(|p| !a_set.contains(p)), "no partition is owned twice");

    let d = describe(&mut c, group).await;
    assert_eq!((d.error_code, d.group_state.as_str(), d.group_epoch, d.assignment_epoch), (0, "Stable", 2, 2));
    assert_eq!(d.assignor_name.as_str(), "uniform");
    assert_eq!(d.members.len(), 2);
    assert_eq!(d.members[0].assignment.topic_partitions[0].topic_name.0.as_str(), "events");
    assert_eq!(fetch_error(&mut c, group, Some("a"), 2).await, (0, 42));
    assert_eq!(fetch_error(&mut c, group, Some("a"), 1).await.0, 113, "OffsetFetch v9 checks the epoch too");
    assert_eq!(fetch_error(&mut c, group, None, -1).await, (0, 42), "admin clients fetch without a member");

    // ListGroups v5 shows the type; the classic protocol cannot join it.
    let listed: ListGroupsResponse = c.call(ApiKey::ListGroups, 5, &ListGroupsRequest::default()).await.expect("list");
    let g = listed.groups.iter().find(|g| g.group_id.0.as_str() == group).expect("listed");
    assert_eq!(
        (g.group_type.as_str(), g.group_state.as_str(), g.protocol_type.as_str()),
        ("consumer", "Stable", "consumer")
    );
    for v in [0, 5] {
        let request = DescribeGroupsRequest::default().with_groups(vec![GroupId(s(group))]);
        let r: DescribeGroupsResponse = c.call(ApiKey::DescribeGroups, v, &request).await.expect("describe");
        let g = &r.groups[0];
        assert_eq!((g.error_code, g.group_state.as_str(), g.protocol_type.as_str()), (0, "Stable", "consumer"));
        assert_eq!((g.protocol_data.as_str(), g.members.len()), ("uniform", 2));
        // The assignment in the classic consumer protocol encoding: version, one topic, two partitions.
        let mut bytes = g.members[0].member_assignment.clone();
        let version = bytes::Buf::get_i16(&mut bytes);
        let decoded = <ConsumerProtocolAssignment as kafka_protocol::protocol::Decodable>::decode(&mut bytes, version)
            .expect("assignment");
        assert_eq!(decoded.assigned_partitions[0].partitions.len(), 2);
    }
    let join_classic = JoinGroupRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_session_timeout_ms(10_000)
        .with_rebalance_timeout_ms(10_000)
        .with_protocol_type(s("consumer"));
    let r: JoinGroupResponse = c.call(ApiKey::JoinGroup, 9, &join_classic).await.expect("join");
    assert_eq!(r.error_code, 23, "INCONSISTENT_GROUP_PROTOCOL");
    let del: DeleteGroupsResponse = c
        .call(ApiKey::DeleteGroups, 2, &DeleteGroupsRequest::default().with_groups_names(vec![GroupId(s(group))]))
        .await
        .expect("delete");
    assert_eq!(del.results[0].error_code, 68, "NON_EMPTY_GROUP");

    // Restart: the group comes back from __consumer_offsets as it was.
    let broker = restart(broker).await;
    let mut c = RawClient::connect(broker.addr).await;
    let d = describe(&mut c, group).await;
    assert_eq!((d.error_code, d.group_state.as_str(), d.group_epoch, d.assignment_epoch), (0, "Stable", 2, 2));
    let ids: Vec<&str> = d.members.iter().map(|m| m.member_id.as_str()).collect();
    assert_eq!(ids, vec!["a", "b"]);
    let r = heartbeat(&mut c, &beat(group, "b", 2, &b_owned)).await;
    assert_eq!((r.error_code, r.member_epoch), (0, 2), "members carry on with their epochs");
    assert_eq!(fetch_error(&mut c, group, Some("b"), 2).await, (0, 42));

    // a leaves; b takes everything at the next epoch.
    let leave = beat(group, "a", -1, &a_owned);
    let r = heartbeat(&mut c, &leave).await;
    assert_eq!((r.error_code, r.member_epoch), (0, -1));
    let r = heartbeat(&mut c, &beat(group, "b", 2, &b_owned)).await;
    assert_eq!((r.member_epoch, assigned(&r).map(|a| count(&a))), (3, Some(4)), "the leave started epoch 3");
    let r = heartbeat(&mut c, &beat(group, "b", 3, &Vec::new())).await;
    assert_eq!(r.error_code, 0);
    let r = heartbeat(&mut c, &beat(group, "b", -1, &Vec::new())).await;
    assert_eq!(r.error_code, 0);
    let d = describe(&mut c, group).await;
    assert_eq!((d.group_state.as_str(), d.members.len()), ("Empty", 0));
    // An empty group can be deleted, offsets included.
    let del: DeleteGroupsResponse = c
        .call(ApiKey::DeleteGroups, 2, &DeleteGroupsRequest::default().with_groups_names(vec![GroupId(s(group))]))
        .await
        .expect("delete");
    assert_eq!(del.results[0].error_code, 0);
    assert_eq!(describe(&mut c, group).await.error_code, 69, "GROUP_ID_NOT_FOUND after delete");
    let broker = restart(broker).await;
    let mut c = RawClient::connect(broker.addr).await;
    assert_eq!(describe(&mut c, group).await.error_code, 69, "deleted for good");
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_sessions_and_the_classic_protocol_kept_apart() {
    let broker = start(&[("group.consumer.session.timeout.ms", "500")]).await;
    let mut c = RawClient::connect(broker.addr).await;
    create(&mut c, "t", 2).await;

    // Unknown group, unknown member, bad requests.
    assert_eq!(heartbeat(&mut c, &beat("none", "m", 3, &Vec::new())).await.error_code, 69);
    assert_eq!(heartbeat(&mut c, &join("g", "", &["t"])).await.error_code, 42, "v1 needs a member id");
    let bad_regex = join("g", "m", &[]).with_subscribed_topic_regex(Some(s("(")));
    assert_eq!(heartbeat(&mut c, &bad_regex).await.error_code, 128, "INVALID_REGULAR_EXPRESSION");
    let bad_assignor = join("g", "m", &["t"]).with_server_assignor(Some(s("sticky")));
    assert_eq!(heartbeat(&mut c, &bad_assignor).await.error_code, 112, "UNSUPPORTED_ASSIGNOR");

    // v0: the coordinator picks the member id.
    let r: ConsumerGroupHeartbeatResponse = c
        .call(ApiKey::ConsumerGroupHeartbeat, 0, &join("g0", "", &["t"]).with_subscribed_topic_regex(None))
        .await
        .expect("answer");
    assert_eq!(r.error_code, 0);
    assert!(r.member_id.as_ref().is_some_and(|m| !m.is_empty()));

    // A session that is not renewed expires; the group is then empty.
    let r = heartbeat(&mut c, &join("g", "m", &["t"])).await;
    assert_eq!(r.error_code, 0);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        if describe(&mut c, "g").await.members.is_empty() {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the member never expired");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(heartbeat(&mut c, &beat("g", "m", 1, &Vec::new())).await.error_code, 25, "UNKNOWN_MEMBER_ID");

    // A classic group with members keeps its id from the consumer protocol;
    // ConsumerGroupDescribe says it is not a consumer group.
    let join_classic = JoinGroupRequest::default()
        .with_group_id(GroupId(s("classic")))
        .with_member_id(s(""))
        .with_session_timeout_ms(10_000)
        .with_rebalance_timeout_ms(10_000)
        .with_protocol_type(s("consumer"))
        .with_protocols(vec![
            kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol::default()
                .with_name(s("range"))
                .with_metadata(bytes::Bytes::from_static(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0])),
        ]);
    let r: JoinGroupResponse = c.call(ApiKey::JoinGroup, 3, &join_classic).await.expect("join");
    assert_eq!(r.error_code, 0);
    assert_eq!(heartbeat(&mut c, &join("classic", "m", &["t"])).await.error_code, 69);
    assert_eq!(describe(&mut c, "classic").await.error_code, 69);

    // ApiVersions v3 advertises both APIs and group.version=1.
    let v: ApiVersionsResponse = c
        .call(
            ApiKey::ApiVersions,
            3,
            &ApiVersionsRequest::default().with_client_software_name(s("t")).with_client_software_version(s("1")),
        )
        .await
        .expect("versions");
    for key in [ApiKey::ConsumerGroupHeartbeat, ApiKey::ConsumerGroupDescribe] {
        let api = v.api_keys.iter().find(|a| a.api_key == key as i16).expect("advertised");
        assert_eq!((api.min_version, api.max_version), (0, 1));
    }
    let feature = v.finalized_features.iter().find(|f| f.name.as_str() == "group.version").expect("group.version");
    assert_eq!(feature.max_version_level, 1);
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_groups_change_protocol_and_keep_their_offsets() {
    let broker = start(&[]).await;
    let mut c = RawClient::connect(broker.addr).await;
    create(&mut c, "t", 1).await;

    // A standalone commit (generation -1) leaves an empty classic group with an offset.
    assert_eq!(commit(&mut c, "shared", "", -1, "t").await, 0);
    // The consumer protocol takes the empty classic group over; the offset stays.
    let r = heartbeat(&mut c, &join("shared", "m", &["t"])).await;
    assert_eq!((r.error_code, r.member_epoch), (0, 1));
    assert_eq!(fetch_error(&mut c, "shared", Some("m"), 1).await, (0, 42));
    let r = heartbeat(&mut c, &beat("shared", "m", -1, &Vec::new())).await;
    assert_eq!(r.error_code, 0);

    // After a restart the group is a consumer group (the classic record was tombstoned).
    let broker = restart(broker).await;
    let mut c = RawClient::connect(broker.addr).await;
    let d = describe(&mut c, "shared").await;
    assert_eq!((d.error_code, d.group_state.as_str()), (0, "Empty"));

    // A classic member takes the now empty consumer group back; the offset still stays.
    let join_classic = JoinGroupRequest::default()
        .with_group_id(GroupId(s("shared")))
        .with_member_id(s(""))
        .with_session_timeout_ms(10_000)
        .with_rebalance_timeout_ms(10_000)
        .with_protocol_type(s("consumer"))
        .with_protocols(vec![
            kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol::default()
                .with_name(s("range"))
                .with_metadata(bytes::Bytes::from_static(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0])),
        ]);
    let r: JoinGroupResponse = c.call(ApiKey::JoinGroup, 3, &join_classic).await.expect("join");
    assert_eq!(r.error_code, 0);
    assert_eq!(describe(&mut c, "shared").await.error_code, 69, "no longer a consumer group");
    assert_eq!(fetch_error(&mut c, "shared", None, -1).await, (0, 42));
    let broker = restart(broker).await;
    let mut c = RawClient::connect(broker.addr).await;
    assert_eq!(describe(&mut c, "shared").await.error_code, 69, "the consumer group stays deleted");
    broker.stop().await;
}

/// A panic while the coordinator's lock is held may leave group state
/// inconsistent (the injected one forgets every group and offset first): it
/// is never served as is. The request that finds the lock poisoned waits
/// while the state is rebuilt from `__consumer_offsets`, with every committed
/// offset, group and member.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_under_the_coordinator_lock_reloads_groups_from_the_offsets_topic() {
    let broker = start(&[]).await;
    let mut c = RawClient::connect(broker.addr).await;
    create(&mut c, "reload", 1).await;
    let r = heartbeat(&mut c, &join("g", "m", &["reload"])).await;
    assert_eq!(r.error_code, 0);
    let epoch = r.member_epoch;
    assert_eq!(commit(&mut c, "g", "m", epoch, "reload").await, 0);
    // A plain (generation -1) commit of another group, too.
    assert_eq!(commit(&mut c, "simple", "", -1, "reload").await, 0);
    assert_eq!(fetch_error(&mut c, "simple", None, -1).await, (0, 42));

    broker.broker().cluster().groups.inject_panic_under_lock();

    assert_eq!(fetch_error(&mut c, "simple", None, -1).await, (0, 42), "offsets come back from the offsets topic");
    let described = describe(&mut c, "g").await;
    assert_eq!(described.error_code, 0);
    assert_eq!(described.members.len(), 1, "the member's records rebuilt it");
    assert_eq!(fetch_error(&mut c, "g", Some("m"), epoch).await, (0, 42));
    // The member carries on with its epoch.
    let r = heartbeat(&mut c, &beat("g", "m", epoch, &assigned(&r).expect("assignment"))).await;
    assert_eq!((r.error_code, r.member_epoch), (0, epoch));
    broker.stop().await;
}
