//! The client against an in-process broker: a member joins a consumer group
//! (raw protocol, as a consumer would), commits, and the admin side lists,
//! describes, computes lag, is refused while the member is active, seeks
//! once it has left, deletes offsets and deletes the group.

use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::offset_commit_request::{OffsetCommitRequestPartition, OffsetCommitRequestTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use tributary_client::{
    Assignment, Client, ClientConfig, ClientError, OffsetSpec, SeekTarget, Subscription, TopicPartition,
    TopicPartitions, TopicSelection,
};
use tributary_protocol::consumer_protocol::{encode_assignment, encode_subscription};
use tributary_record::Compression;
use tributary_record::builder::{BatchBuilder, RecordSpec};
use tributary_testkit::{RawClient, TestBroker};

const TOPIC: &str = "orders";
const GROUP: &str = "billing";

fn s(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_string())
}

fn tp(partition: i32) -> TopicPartition {
    TopicPartition::new(TOPIC, partition)
}

async fn create_topic(raw: &mut RawClient, partitions: i32) {
    let request = CreateTopicsRequest::default().with_timeout_ms(10_000).with_topics(vec![
        CreatableTopic::default()
            .with_name(TopicName(s(TOPIC)))
            .with_num_partitions(partitions)
            .with_replication_factor(1),
    ]);
    let response: CreateTopicsResponse = raw.call(ApiKey::CreateTopics, 7, &request).await.expect("answer");
    assert_eq!(response.topics[0].error_code, 0);
}

/// Appends `count` records stamped `timestamp` to a partition.
async fn produce(raw: &mut RawClient, partition: i32, count: usize, timestamp: i64) {
    let mut batch = BatchBuilder::new(Compression::None);
    for i in 0..count {
        batch.push(RecordSpec::new(None, Some(format!("v{i}").as_bytes()), timestamp));
    }
    let request = ProduceRequest::default().with_acks(-1).with_timeout_ms(10_000).with_topic_data(vec![
        TopicProduceData::default().with_name(TopicName(s(TOPIC))).with_partition_data(vec![
            PartitionProduceData::default().with_index(partition).with_records(Some(Bytes::from(batch.build()))),
        ]),
    ]);
    let response: ProduceResponse = raw.call(ApiKey::Produce, 9, &request).await.expect("answer");
    assert_eq!(response.responses[0].partition_responses[0].error_code, 0);
}

/// Joins as the only member of a consumer group and takes partitions 0 and 1.
/// Returns (member id, generation).
async fn join_and_sync(raw: &mut RawClient) -> (String, i32) {
    let subscription = encode_subscription(&Subscription {
        version: 1,
        topics: vec![TOPIC.to_string()],
        generation_id: -1,
        ..Subscription::default()
    })
    .expect("subscription");
    let mut member_id = String::new();
    let joined = loop {
        let request = JoinGroupRequest::default()
            .with_group_id(GroupId(s(GROUP)))
            .with_session_timeout_ms(30_000)
            .with_rebalance_timeout_ms(30_000)
            .with_member_id(s(&member_id))
            .with_protocol_type(s("consumer"))
            .with_protocols(vec![
                JoinGroupRequestProtocol::default().with_name(s("range")).with_metadata(subscription.clone()),
            ]);
        let response: JoinGroupResponse = raw.call(ApiKey::JoinGroup, 5, &request).await.expect("answer");
        match response.error_code {
            0 => break response,
            79 => member_id = response.member_id.to_string(), // MEMBER_ID_REQUIRED: join again with it
            14 | 15 => tokio::time::sleep(Duration::from_millis(50)).await, // coordinator still loading
            code => panic!("JoinGroup failed with {code}"),
        }
    };
    let assignment = encode_assignment(&Assignment {
        version: 1,
        partitions: vec![TopicPartitions { topic: TOPIC.to_string(), partitions: vec![0, 1] }],
        user_data: None,
    })
    .expect("assignment");
    let request = SyncGroupRequest::default()
        .with_group_id(GroupId(s(GROUP)))
        .with_generation_id(joined.generation_id)
        .with_member_id(joined.member_id.clone())
        .with_assignments(vec![
            SyncGroupRequestAssignment::default().with_member_id(joined.member_id.clone()).with_assignment(assignment),
        ]);
    let response: SyncGroupResponse = raw.call(ApiKey::SyncGroup, 3, &request).await.expect("answer");
    assert_eq!(response.error_code, 0);
    (joined.member_id.to_string(), joined.generation_id)
}

async fn member_commit(raw: &mut RawClient, member_id: &str, generation: i32, offsets: &[(i32, i64)]) {
    let request = OffsetCommitRequest::default()
        .with_group_id(GroupId(s(GROUP)))
        .with_generation_id_or_member_epoch(generation)
        .with_member_id(s(member_id))
        .with_topics(vec![
            OffsetCommitRequestTopic::default().with_name(TopicName(s(TOPIC))).with_partitions(
                offsets
                    .iter()
                    .map(|(p, o)| {
                        OffsetCommitRequestPartition::default().with_partition_index(*p).with_committed_offset(*o)
                    })
                    .collect(),
            ),
        ]);
    let response: OffsetCommitResponse = raw.call(ApiKey::OffsetCommit, 8, &request).await.expect("answer");
    for p in &response.topics[0].partitions {
        assert_eq!(p.error_code, 0, "member commit of partition {}", p.partition_index);
    }
}

async fn leave(raw: &mut RawClient, member_id: &str) {
    let request = LeaveGroupRequest::default()
        .with_group_id(GroupId(s(GROUP)))
        .with_members(vec![MemberIdentity::default().with_member_id(s(member_id))]);
    let response: LeaveGroupResponse = raw.call(ApiKey::LeaveGroup, 3, &request).await.expect("answer");
    assert_eq!(response.members[0].error_code, 0);
}

fn code(result: Result<impl std::fmt::Debug, ClientError>) -> String {
    match result {
        Err(ClientError::Kafka(e)) => e.name,
        other => panic!("expected a Kafka error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_describe_lag_seek_and_delete() {
    let broker =
        TestBroker::start(&[("group.initial.rebalance.delay.ms", "0"), ("offsets.topic.replication.factor", "1")])
            .await;
    let mut raw = RawClient::connect(broker.addr).await;
    create_topic(&mut raw, 3).await;
    // Partition 0: 3 records at t=1000 then 2 at t=5000; partition 1: 4 records; partition 2: 1 record.
    produce(&mut raw, 0, 3, 1_000).await;
    produce(&mut raw, 0, 2, 5_000).await;
    produce(&mut raw, 1, 4, 1_000).await;
    produce(&mut raw, 2, 1, 1_000).await;

    let mut config = ClientConfig::new(&broker.addr.to_string());
    config.client_id = "client-test".to_string();
    config.timeout = Duration::from_secs(10);
    let mut client = Client::connect(config).await.expect("connects");

    // The offsets of the log itself.
    let ends = client.list_offsets(&[tp(0), tp(1), tp(2), tp(9)], OffsetSpec::Latest).await.expect("list offsets");
    assert_eq!(ends[&tp(0)].as_ref().map(|o| o.offset), Ok(5));
    assert_eq!(ends[&tp(1)].as_ref().map(|o| o.offset), Ok(4));
    assert_eq!(ends[&tp(9)].as_ref().map_err(|e| e.name.as_str()), Err("UNKNOWN_TOPIC_OR_PARTITION"));
    let at = client.list_offsets(&[tp(0)], OffsetSpec::Timestamp(3_000)).await.expect("by time");
    assert_eq!(at[&tp(0)].as_ref().map(|o| (o.offset, o.timestamp)), Ok((3, 5_000)));

    // The coordinator answers once it has loaded; the lookup waits for that.
    client.group_coordinator(GROUP).await.expect("coordinator");
    // A member joins, takes partitions 0 and 1, and commits 2 on partition 0 and 4 on partition 1.
    let (member_id, generation) = join_and_sync(&mut raw).await;
    member_commit(&mut raw, &member_id, generation, &[(0, 2), (1, 4)]).await;

    let listed = client.list_groups(&[]).await.expect("list");
    let ours = listed.iter().find(|g| g.group_id == GROUP).expect("group listed");
    assert_eq!((ours.state.as_deref(), ours.protocol_type.as_str()), (Some("Stable"), "consumer"));
    assert!(client.list_groups(&["EMPTY".to_string()]).await.expect("list").iter().all(|g| g.group_id != GROUP));
    assert!(matches!(client.list_groups(&["running".to_string()]).await, Err(ClientError::Refused(_))));

    let described = client.describe_group(GROUP).await.expect("describe");
    assert_eq!((described.state.as_str(), described.protocol.as_str()), ("Stable", "range"));
    assert_eq!(described.coordinator.port, i32::from(broker.addr.port()));
    let member = &described.members[0];
    assert_eq!((member.member_id.as_str(), member.client_id.as_str()), (member_id.as_str(), "tributary-testkit"));
    assert!(member.client_host.contains("127.0.0.1"), "{}", member.client_host);
    assert_eq!(member.assigned(), vec![tp(0), tp(1)]);
    assert_eq!(member.subscription.as_ref().map(|s| s.topics.clone()), Some(vec![TOPIC.to_string()]));
    assert_eq!(member.decode_error, None);

    let lag = client.group_lag(&described).await.expect("lag");
    let rows: Vec<_> = lag
        .iter()
        .map(|l| {
            (l.topic_partition.partition, l.committed.as_ref().map(|c| c.offset), l.log_end_offset, l.lag, l.member)
        })
        .collect();
    assert_eq!(rows, vec![(0, Some(2), Some(5), Some(3), Some(0)), (1, Some(4), Some(4), Some(0), Some(0))]);

    // While the member is active: no seek, no admin commit, no delete.
    let refused = client.plan_seek(GROUP, SeekTarget::Earliest, &[]).await.expect_err("active member");
    assert!(matches!(&refused, ClientError::Refused(m) if m.contains("1 active member")), "{refused}");
    let committed = [(tp(0), 0)].into_iter().collect();
    let admin_commit = code(client.commit_offsets_as_admin(GROUP, &committed).await);
    assert!(["UNKNOWN_MEMBER_ID", "ILLEGAL_GENERATION", "REBALANCE_IN_PROGRESS"].contains(&admin_commit.as_str()));
    let deleted = client.delete_groups(&[GROUP.to_string()]).await;
    assert_eq!(code(deleted.into_iter().next().expect("one result").1), "NON_EMPTY_GROUP");
    assert_eq!(code(client.delete_offsets(GROUP, &[tp(0)]).await), "GROUP_SUBSCRIBED_TO_TOPIC");

    leave(&mut raw, &member_id).await;
    assert_eq!(client.describe_group(GROUP).await.expect("describe").state, "Empty");

    // Seek: the plan first, then the commit.
    let plan = client.plan_seek(GROUP, SeekTarget::Earliest, &[]).await.expect("plan");
    let planned: Vec<_> =
        plan.partitions.iter().map(|p| (p.topic_partition.partition, p.current_offset, p.new_offset)).collect();
    assert_eq!(planned, vec![(0, Some(2), 0), (1, Some(4), 0)]);
    assert_eq!(client.committed_offsets(GROUP, None).await.expect("fetch")[&tp(0)].offset, 2, "a plan commits nothing");
    client.execute_seek(&plan).await.expect("commit");
    let now = client.committed_offsets(GROUP, None).await.expect("fetch");
    assert_eq!((now[&tp(0)].offset, now[&tp(1)].offset), (0, 0));

    let new_offsets = |plan: &tributary_client::SeekPlan| -> Vec<(i32, i64)> {
        plan.partitions.iter().map(|p| (p.topic_partition.partition, p.new_offset)).collect()
    };
    let shifted = client.plan_seek(GROUP, SeekTarget::ShiftBy(3), &[]).await.expect("plan");
    assert_eq!(new_offsets(&shifted), vec![(0, 3), (1, 3)]);
    let far = client.plan_seek(GROUP, SeekTarget::Offset(1_000), &[]).await.expect("plan");
    assert_eq!(new_offsets(&far), vec![(0, 5), (1, 4)], "clamped to the log end");
    let by_time = client.plan_seek(GROUP, SeekTarget::Timestamp(3_000), &[]).await.expect("plan");
    assert_eq!(new_offsets(&by_time), vec![(0, 3), (1, 4)], "partition 1 has nothing that new: its end");

    // A selection with a partition the group never committed.
    let one = [TopicSelection { topic: TOPIC.to_string(), partitions: Some(vec![2]) }];
    let refused = client.plan_seek(GROUP, SeekTarget::ShiftBy(-1), &one).await.expect_err("no commit on 2");
    assert!(refused.to_string().contains("orders:2"), "{refused}");
    let latest = client.plan_seek(GROUP, SeekTarget::Latest, &one).await.expect("plan");
    client.execute_seek(&latest).await.expect("commit");
    assert_eq!(client.committed_offsets(GROUP, Some(&[tp(2)])).await.expect("fetch")[&tp(2)].offset, 1);
    let whole = [TopicSelection { topic: TOPIC.to_string(), partitions: None }];
    assert_eq!(client.plan_seek(GROUP, SeekTarget::Earliest, &whole).await.expect("plan").partitions.len(), 3);
    let missing = [TopicSelection { topic: "nope".to_string(), partitions: None }];
    assert!(matches!(client.plan_seek(GROUP, SeekTarget::Earliest, &missing).await, Err(ClientError::Refused(_))));

    // Offsets and groups go away.
    client.delete_offsets(GROUP, &[tp(0)]).await.expect("delete offsets");
    let left = client.committed_offsets(GROUP, None).await.expect("fetch");
    assert_eq!(left.keys().cloned().collect::<Vec<_>>(), vec![tp(1), tp(2)]);
    let results = client.delete_groups(&[GROUP.to_string(), "never-existed".to_string()]).await;
    assert!(results[0].1.is_ok(), "{:?}", results[0].1);
    assert_eq!(code(results.into_iter().nth(1).expect("second").1), "GROUP_ID_NOT_FOUND");
    assert!(client.list_groups(&[]).await.expect("list").iter().all(|g| g.group_id != GROUP));
    assert_eq!(client.describe_group(GROUP).await.expect("describe").state, "Dead");

    broker.stop().await;
}
