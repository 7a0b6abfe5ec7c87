//! The broker in-process, driven with raw protocol requests: every served
//! API answers at every version, produce/fetch round trips, ordering of
//! pipelined responses, acks=0, long polling and restart.

use bytes::Bytes;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, StrBytes};
use tributary_protocol::apis::SUPPORTED_APIS;
use tributary_protocol::samples::sample_body;
use tributary_record::builder::{BatchBuilder, RecordSpec};
use tributary_record::{BatchIter, Compression};
use tributary_testkit::{RawClient, TestBroker};

fn topic(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_string()))
}

fn decodes(key: ApiKey, version: i16, mut body: Bytes) -> Result<(), String> {
    macro_rules! dec {
        ($t:ty) => {
            <$t>::decode(&mut body, version).map(|_| ()).map_err(|e| e.to_string())
        };
    }
    match key {
        ApiKey::Produce => dec!(ProduceResponse),
        ApiKey::Fetch => dec!(FetchResponse),
        ApiKey::ListOffsets => dec!(ListOffsetsResponse),
        ApiKey::Metadata => dec!(MetadataResponse),
        ApiKey::ApiVersions => dec!(ApiVersionsResponse),
        ApiKey::CreateTopics => dec!(CreateTopicsResponse),
        ApiKey::DeleteTopics => dec!(DeleteTopicsResponse),
        ApiKey::DeleteRecords => dec!(DeleteRecordsResponse),
        ApiKey::InitProducerId => dec!(InitProducerIdResponse),
        ApiKey::OffsetForLeaderEpoch => dec!(OffsetForLeaderEpochResponse),
        ApiKey::DescribeConfigs => dec!(DescribeConfigsResponse),
        ApiKey::AlterConfigs => dec!(AlterConfigsResponse),
        ApiKey::CreatePartitions => dec!(CreatePartitionsResponse),
        ApiKey::IncrementalAlterConfigs => dec!(IncrementalAlterConfigsResponse),
        ApiKey::DescribeCluster => dec!(DescribeClusterResponse),
        ApiKey::DescribeQuorum => dec!(DescribeQuorumResponse),
        ApiKey::ElectLeaders => dec!(ElectLeadersResponse),
        ApiKey::DescribeLogDirs => dec!(DescribeLogDirsResponse),
        ApiKey::FindCoordinator => dec!(FindCoordinatorResponse),
        ApiKey::JoinGroup => dec!(JoinGroupResponse),
        ApiKey::Heartbeat => dec!(HeartbeatResponse),
        ApiKey::LeaveGroup => dec!(LeaveGroupResponse),
        ApiKey::SyncGroup => dec!(SyncGroupResponse),
        ApiKey::OffsetCommit => dec!(OffsetCommitResponse),
        ApiKey::OffsetFetch => dec!(OffsetFetchResponse),
        ApiKey::DescribeGroups => dec!(DescribeGroupsResponse),
        ApiKey::ListGroups => dec!(ListGroupsResponse),
        ApiKey::DeleteGroups => dec!(DeleteGroupsResponse),
        ApiKey::OffsetDelete => dec!(OffsetDeleteResponse),
        ApiKey::ConsumerGroupHeartbeat => dec!(ConsumerGroupHeartbeatResponse),
        ApiKey::ConsumerGroupDescribe => dec!(ConsumerGroupDescribeResponse),
        ApiKey::ListConfigResources => dec!(ListConfigResourcesResponse),
        ApiKey::DescribeTopicPartitions => dec!(DescribeTopicPartitionsResponse),
        ApiKey::AddRaftVoter => dec!(AddRaftVoterResponse),
        ApiKey::RemoveRaftVoter => dec!(RemoveRaftVoterResponse),
        ApiKey::AlterPartitionReassignments => dec!(AlterPartitionReassignmentsResponse),
        ApiKey::ListPartitionReassignments => dec!(ListPartitionReassignmentsResponse),
        other => Err(format!("no decoder for {other:?}")),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_served_version_gets_an_answer() {
    let broker = TestBroker::start(&[]).await;
    for api in SUPPORTED_APIS {
        for v in api.min_decodable..=api.max {
            let mut client = RawClient::connect(broker.addr).await;
            let id = client.send_raw(api.key, v, &sample_body(api.key, v)).await;
            let (got, body) = client
                .receive(api.key, v)
                .await
                .unwrap_or_else(|| panic!("{:?} v{v}: connection closed instead of an answer", api.key));
            assert_eq!(got, id);
            let codec = tributary_protocol::apis::codec_version(api.key, v);
            decodes(api.key, codec, body)
                .unwrap_or_else(|e| panic!("{:?} v{v}: response does not decode: {e}", api.key));
        }
    }
    broker.stop().await;
}

fn produce_request(name: &str, acks: i16, batch: Vec<u8>) -> ProduceRequest {
    ProduceRequest::default().with_acks(acks).with_timeout_ms(30_000).with_topic_data(vec![
        TopicProduceData::default().with_name(topic(name)).with_partition_data(vec![
            PartitionProduceData::default().with_index(0).with_records(Some(Bytes::from(batch))),
        ]),
    ])
}

fn fetch_request(name: &str, offset: i64, max_wait_ms: i32) -> FetchRequest {
    FetchRequest::default().with_max_wait_ms(max_wait_ms).with_min_bytes(1).with_max_bytes(1 << 20).with_topics(vec![
        FetchTopic::default().with_topic(topic(name)).with_partitions(vec![
            FetchPartition::default().with_partition(0).with_fetch_offset(offset).with_partition_max_bytes(1 << 20),
        ]),
    ])
}

fn batch(values: &[&str]) -> Vec<u8> {
    let mut b = BatchBuilder::new(Compression::Lz4);
    for v in values {
        b.push(RecordSpec::new(Some(b"k"), Some(v.as_bytes()), 1_000));
    }
    b.build()
}

async fn create(client: &mut RawClient, name: &str) {
    let request = CreateTopicsRequest::default().with_timeout_ms(10_000).with_topics(vec![
        kafka_protocol::messages::create_topics_request::CreatableTopic::default()
            .with_name(topic(name))
            .with_num_partitions(1)
            .with_replication_factor(1),
    ]);
    let response: CreateTopicsResponse = client.call(ApiKey::CreateTopics, 7, &request).await.expect("answer");
    assert_eq!(response.topics[0].error_code, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produce_fetch_round_trip_and_restart() {
    let broker = TestBroker::start(&[]).await;
    let mut client = RawClient::connect(broker.addr).await;
    create(&mut client, "orders").await;
    let produced: ProduceResponse =
        client.call(ApiKey::Produce, 9, &produce_request("orders", -1, batch(&["a", "b", "c"]))).await.expect("answer");
    let p = &produced.responses[0].partition_responses[0];
    assert_eq!((p.error_code, p.base_offset), (0, 0));
    let second: ProduceResponse =
        client.call(ApiKey::Produce, 9, &produce_request("orders", 1, batch(&["d"]))).await.expect("answer");
    assert_eq!(second.responses[0].partition_responses[0].base_offset, 3);

    let fetched: FetchResponse = client.call(ApiKey::Fetch, 12, &fetch_request("orders", 0, 0)).await.expect("answer");
    let part = &fetched.responses[0].partitions[0];
    assert_eq!(part.high_watermark, 4, "acknowledged batches are durable, so visible");
    let offsets: Vec<i64> =
        BatchIter::new(part.records.as_deref().unwrap_or_default()).map(|b| b.expect("batch").0.base_offset).collect();
    assert_eq!(offsets, vec![0, 3]);

    let dir = broker.stop().await;
    let broker = TestBroker::start_in(dir, &[]).await;
    let mut client = RawClient::connect(broker.addr).await;
    let fetched: FetchResponse = client.call(ApiKey::Fetch, 12, &fetch_request("orders", 3, 0)).await.expect("answer");
    let part = &fetched.responses[0].partitions[0];
    assert_eq!(part.high_watermark, 4);
    assert_eq!(BatchIter::new(part.records.as_deref().unwrap_or_default()).count(), 1);
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_requests_are_answered_in_order_and_acks_zero_is_silent() {
    let broker = TestBroker::start(&[]).await;
    let mut client = RawClient::connect(broker.addr).await;
    create(&mut client, "pipe").await;
    let mut expected = Vec::new();
    for i in 0..40 {
        let id = match i % 3 {
            0 => client.send(ApiKey::Produce, 9, &produce_request("pipe", -1, batch(&["x"]))).await,
            1 => client.send(ApiKey::Metadata, 12, &MetadataRequest::default().with_topics(None)).await,
            _ => {
                // acks=0 gets no answer at all
                client.send(ApiKey::Produce, 9, &produce_request("pipe", 0, batch(&["y"]))).await;
                client.send(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default()).await
            }
        };
        let key = match i % 3 {
            0 => ApiKey::Produce,
            1 => ApiKey::Metadata,
            _ => ApiKey::ApiVersions,
        };
        expected.push((id, key));
    }
    for (id, key) in expected {
        let version = match key {
            ApiKey::Produce => 9,
            ApiKey::Metadata => 12,
            _ => 3,
        };
        let (got, _) = client.receive(key, version).await.expect("answer");
        assert_eq!(got, id, "response order follows request order");
    }
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_fetch_wakes_when_data_arrives() {
    let broker = TestBroker::start(&[]).await;
    let mut admin = RawClient::connect(broker.addr).await;
    create(&mut admin, "poll").await;
    let mut consumer = RawClient::connect(broker.addr).await;
    // Waits up to 60 s unless woken; the produce below must wake it.
    let id = consumer.send(ApiKey::Fetch, 12, &fetch_request("poll", 0, 60_000)).await;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let mut producer = RawClient::connect(broker.addr).await;
    let _: ProduceResponse =
        producer.call(ApiKey::Produce, 9, &produce_request("poll", -1, batch(&["wake"]))).await.expect("answer");
    let (got, mut body) = tokio::time::timeout(std::time::Duration::from_secs(30), consumer.receive(ApiKey::Fetch, 12))
        .await
        .expect("woken long before max_wait_ms")
        .expect("answer");
    assert_eq!(got, id);
    let fetched = FetchResponse::decode(&mut body, 12).expect("decode");
    assert_eq!(BatchIter::new(fetched.responses[0].partitions[0].records.as_deref().unwrap_or_default()).count(), 1);
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_versions_above_the_served_range_get_the_v0_fallback() {
    let broker = TestBroker::start(&[]).await;
    let mut client = RawClient::connect(broker.addr).await;
    let id = client.send_raw(ApiKey::ApiVersions, 9, &[]).await;
    let (got, mut body) = client.receive(ApiKey::ApiVersions, 0).await.expect("answer");
    assert_eq!(got, id);
    let response = ApiVersionsResponse::decode(&mut body, 0).expect("v0 body");
    assert_eq!(response.error_code, 35);
    assert!(
        response
            .api_keys
            .iter()
            .any(|k| k.api_key == ApiKey::Produce as i16 && k.min_version == 0 && k.max_version == 12)
    );
    // The connection stays usable.
    let request = ApiVersionsRequest::default()
        .with_client_software_name(StrBytes::from_static_str("tributary-testkit"))
        .with_client_software_version(StrBytes::from_static_str("1.0"));
    let again: ApiVersionsResponse = client.call(ApiKey::ApiVersions, 3, &request).await.expect("answer");
    assert_eq!(again.error_code, 0);
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_producers_share_fsyncs() {
    let broker = TestBroker::start(&[]).await;
    let mut admin = RawClient::connect(broker.addr).await;
    create(&mut admin, "group-commit").await;
    let producers = 8;
    let requests_each = 40;
    let mut tasks = Vec::new();
    for p in 0..producers {
        let addr = broker.addr;
        tasks.push(tokio::spawn(async move {
            let mut client = RawClient::connect(addr).await;
            // Pipeline every request, then collect every acknowledgement.
            let mut ids = Vec::new();
            for i in 0..requests_each {
                let value = format!("p{p}-{i}");
                ids.push(client.send(ApiKey::Produce, 9, &produce_request("group-commit", -1, batch(&[&value]))).await);
            }
            for id in ids {
                let (got, mut body) = client.receive(ApiKey::Produce, 9).await.expect("answer");
                assert_eq!(got, id);
                let response = ProduceResponse::decode(&mut body, 9).expect("decode");
                assert_eq!(response.responses[0].partition_responses[0].error_code, 0);
            }
        }));
    }
    for t in tasks {
        t.await.expect("producer task");
    }
    let acknowledged = (producers * requests_each) as u64;
    let syncs = broker.broker().cluster().flusher.syncs();
    eprintln!("{acknowledged} batches acknowledged with {syncs} fsyncs");
    assert!(syncs > 0);
    assert!(
        syncs < acknowledged,
        "{syncs} fsyncs for {acknowledged} acknowledged batches: producers did not share fsyncs"
    );
    broker.stop().await;
}

/// Batches of `records` values of `size` bytes each, values tagged with their batch and index.
fn big_batch(batch_no: usize, records: usize, size: usize) -> Vec<u8> {
    let mut b = BatchBuilder::new(Compression::None);
    for i in 0..records {
        let mut value = format!("batch {batch_no} record {i} ").into_bytes();
        value.resize(size, b'a' + (i % 26) as u8);
        b.push(RecordSpec::new(None, Some(&value), 1_000));
    }
    b.build()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_fetches_send_whole_batches_from_the_segment_file() {
    let broker = TestBroker::start(&[]).await;
    let mut client = RawClient::connect(broker.addr).await;
    let mut produced = Vec::new();
    for name in ["big-a", "big-b"] {
        create(&mut client, name).await;
        for n in 0..30 {
            let batch = big_batch(n, 10, 2_000);
            let response: ProduceResponse =
                client.call(ApiKey::Produce, 9, &produce_request(name, -1, batch.clone())).await.expect("answer");
            assert_eq!(response.responses[0].partition_responses[0].error_code, 0);
            produced.push((name, batch));
        }
    }
    let metadata: MetadataResponse =
        client.call(ApiKey::Metadata, 12, &MetadataRequest::default().with_topics(None)).await.expect("md");
    let id_of = |name: &str| {
        metadata.topics.iter().find(|t| t.name.as_ref().map(|n| n.0.as_str()) == Some(name)).expect("topic").topic_id
    };
    for version in [4i16, 7, 11, 12, 13, 17] {
        for (partition_max, expect_batches) in [(1 << 20, 30usize), (100_000, 4), (1_000, 1)] {
            let fetch_topic = |name: &str| {
                let t = FetchTopic::default().with_partitions(vec![
                    FetchPartition::default()
                        .with_partition(0)
                        .with_fetch_offset(0)
                        .with_partition_max_bytes(partition_max),
                ]);
                if version >= 13 { t.with_topic_id(id_of(name)) } else { t.with_topic(topic(name)) }
            };
            let request = FetchRequest::default()
                .with_max_wait_ms(0)
                .with_min_bytes(1)
                .with_max_bytes(8 << 20)
                .with_topics(vec![fetch_topic("big-a"), fetch_topic("big-b")]);
            let response: FetchResponse = client.call(ApiKey::Fetch, version, &request).await.expect("answer");
            assert_eq!(response.responses.len(), 2, "v{version}");
            for (t, name) in response.responses.iter().zip(["big-a", "big-b"]) {
                let part = &t.partitions[0];
                assert_eq!((part.error_code, part.high_watermark), (0, 300), "v{version}");
                let records = part.records.as_deref().unwrap_or_default();
                let batches: Vec<_> = BatchIter::new(records).map(|b| b.expect("whole batch")).collect();
                // KIP-74: only the response's first batch may exceed the limit.
                let expect_batches = if name == "big-b" && partition_max == 1_000 { 0 } else { expect_batches };
                assert_eq!(batches.len(), expect_batches, "v{version} {name} partition_max_bytes {partition_max}");
                let sent: Vec<_> = produced.iter().filter(|(n, _)| *n == name).collect();
                for (n, (header, bytes)) in batches.iter().enumerate() {
                    assert_eq!(header.base_offset, n as i64 * 10);
                    assert!(tributary_record::batch::crc_matches(bytes));
                    if version <= 12 {
                        // From the magic byte on, a batch is stored exactly as it was produced.
                        assert_eq!(&bytes[16..], &sent[n].1[16..], "v{version} batch {n}");
                    }
                }
            }
        }
    }
    broker.stop().await;
}

/// A member's JoinGroup metadata is opaque to the coordinator but read by
/// OffsetDelete (to find subscribed topics): a subscription claiming 2^31-1
/// topics in six bytes must not make the broker reserve memory for them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_subscription_bytes_do_not_crash_offset_delete() {
    let broker =
        TestBroker::start(&[("group.initial.rebalance.delay.ms", "0"), ("offsets.topic.replication.factor", "1")])
            .await;
    let mut client = RawClient::connect(broker.addr).await;
    let group = GroupId(StrBytes::from_static_str("hostile"));
    let metadata = Bytes::from_static(&[0, 0, 0x7f, 0xff, 0xff, 0xff]);
    let join = JoinGroupRequest::default()
        .with_group_id(group.clone())
        .with_session_timeout_ms(30_000)
        .with_protocol_type(StrBytes::from_static_str("consumer"))
        .with_protocols(vec![
            join_group_request::JoinGroupRequestProtocol::default()
                .with_name(StrBytes::from_static_str("range"))
                .with_metadata(metadata),
        ]);
    let mut joined = None;
    for _ in 0..100 {
        let response: JoinGroupResponse = client.call(ApiKey::JoinGroup, 0, &join).await.expect("answer");
        if response.error_code == 0 {
            joined = Some(response);
            break;
        }
        assert!(matches!(response.error_code, 14 | 15), "only a loading coordinator is expected");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(joined.is_some(), "the member joined");
    let delete = OffsetDeleteRequest::default().with_group_id(group).with_topics(vec![
        offset_delete_request::OffsetDeleteRequestTopic::default()
            .with_name(topic("orders"))
            .with_partitions(vec![offset_delete_request::OffsetDeleteRequestPartition::default()]),
    ]);
    let mut other = RawClient::connect(broker.addr).await;
    let answer: Option<OffsetDeleteResponse> = other.call(ApiKey::OffsetDelete, 0, &delete).await;
    assert!(answer.is_some(), "the broker answers instead of aborting");
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partition_counts_beyond_max_partitions_are_refused_before_anything_is_made() {
    let broker = TestBroker::start(&[("max.partitions", "10")]).await;
    let mut client = RawClient::connect(broker.addr).await;
    let new = |name: &str, partitions: i32| {
        CreateTopicsRequest::default().with_timeout_ms(10_000).with_topics(vec![
            kafka_protocol::messages::create_topics_request::CreatableTopic::default()
                .with_name(topic(name))
                .with_num_partitions(partitions)
                .with_replication_factor(1),
        ])
    };
    // An absurd count is refused at once, without a directory per partition.
    let huge: CreateTopicsResponse =
        client.call(ApiKey::CreateTopics, 7, &new("huge", i32::MAX)).await.expect("answer");
    assert_eq!(huge.topics[0].error_code, 37, "INVALID_PARTITIONS");
    assert!(huge.topics[0].error_message.as_deref().unwrap_or_default().contains("max.partitions"));
    let fits: CreateTopicsResponse = client.call(ApiKey::CreateTopics, 7, &new("fits", 8)).await.expect("answer");
    assert_eq!(fits.topics[0].error_code, 0);
    let over: CreateTopicsResponse = client.call(ApiKey::CreateTopics, 7, &new("over", 3)).await.expect("answer");
    assert_eq!(over.topics[0].error_code, 37);
    let grow = CreatePartitionsRequest::default().with_timeout_ms(10_000).with_topics(vec![
        kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic::default()
            .with_name(topic("fits"))
            .with_count(11),
    ]);
    let grown: CreatePartitionsResponse = client.call(ApiKey::CreatePartitions, 3, &grow).await.expect("answer");
    assert_eq!(grown.results[0].error_code, 37);
    broker.stop().await;
}

#[tokio::test]
async fn only_partition_like_directories_are_removed_as_strays() {
    let dir = tempfile::tempdir().expect("temporary data directory");
    // What `tributary start` and a person keep in a data directory, beside two strays.
    std::fs::create_dir_all(dir.path().join("logs")).expect("logs dir");
    std::fs::write(dir.path().join("logs/tributary.log"), "kept").expect("log");
    std::fs::create_dir_all(dir.path().join("notes")).expect("notes dir");
    std::fs::create_dir_all(dir.path().join("gone-7")).expect("stray partition dir");
    std::fs::create_dir_all(dir.path().join("gone-0.0123abcd-delete")).expect("stray delete leftover");
    let broker = TestBroker::start_in(dir, &[]).await;
    let dir = broker.stop().await;
    // Strays are removed by a background thread: give it a moment.
    for _ in 0..100 {
        if !dir.path().join("gone-7").exists() && !dir.path().join("gone-0.0123abcd-delete").exists() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(!dir.path().join("gone-7").exists(), "a partition directory no topic owns is removed");
    assert!(!dir.path().join("gone-0.0123abcd-delete").exists(), "a delete leftover is removed");
    assert_eq!(std::fs::read_to_string(dir.path().join("logs/tributary.log")).expect("log kept"), "kept");
    assert!(dir.path().join("notes").is_dir());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_alone_refuses_voter_changes_with_unsupported_version() {
    use kafka_protocol::messages::add_raft_voter_request::Listener;
    let broker = TestBroker::start(&[]).await;
    let mut client = RawClient::connect(broker.addr).await;
    let listener = Listener::default()
        .with_name(StrBytes::from_static_str("CONTROLLER"))
        .with_host(StrBytes::from_static_str("127.0.0.1"))
        .with_port(19093);
    let add = AddRaftVoterRequest::default().with_voter_id(2).with_listeners(vec![listener]);
    let added: AddRaftVoterResponse = client.call(ApiKey::AddRaftVoter, 0, &add).await.expect("answer");
    assert_eq!(added.error_code, 35, "{added:?}");
    assert!(added.error_message.as_deref().is_some_and(|m| m.contains("process.roles")), "{added:?}");
    let remove = RemoveRaftVoterRequest::default().with_voter_id(2);
    let removed: RemoveRaftVoterResponse = client.call(ApiKey::RemoveRaftVoter, 0, &remove).await.expect("answer");
    assert_eq!(removed.error_code, 35, "{removed:?}");
    broker.stop().await;
}

fn describe_quorum_request(name: &str, partitions: &[i32]) -> DescribeQuorumRequest {
    use kafka_protocol::messages::describe_quorum_request::{PartitionData, TopicData};
    DescribeQuorumRequest::default().with_topics(vec![
        TopicData::default()
            .with_topic_name(topic(name))
            .with_partitions(partitions.iter().map(|&p| PartitionData::default().with_partition_index(p)).collect()),
    ])
}

/// A node alone is a quorum of one voter, itself, at every version; its
/// high watermark moves with every metadata change; any other partition
/// than `__cluster_metadata`-0 is UNKNOWN_TOPIC_OR_PARTITION.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_alone_describes_itself_as_the_only_voter() {
    let broker = TestBroker::start(&[("node.id", "7")]).await;
    let mut client = RawClient::connect(broker.addr).await;
    let describe = describe_quorum_request("__cluster_metadata", &[0]);
    let mut high_watermarks = Vec::new();
    for v in 0..=2 {
        let r: DescribeQuorumResponse = client.call(ApiKey::DescribeQuorum, v, &describe).await.expect("an answer");
        assert_eq!(r.error_code, 0, "v{v}");
        let p = &r.topics[0].partitions[0];
        assert_eq!((r.topics[0].topic_name.0.as_str(), p.partition_index, p.error_code), ("__cluster_metadata", 0, 0));
        assert_eq!(p.leader_id.0, 7, "v{v}");
        assert!(p.leader_epoch >= 1, "v{v}: epoch {}", p.leader_epoch);
        assert!(p.high_watermark >= 1, "v{v}: the cluster's init entry at least");
        let voters: Vec<i32> = p.current_voters.iter().map(|r| r.replica_id.0).collect();
        assert_eq!(voters, vec![7], "v{v}");
        assert!(p.observers.is_empty());
        assert_eq!(p.current_voters[0].log_end_offset, p.high_watermark);
        if v >= 1 {
            assert!(p.current_voters[0].last_fetch_timestamp > 0 && p.current_voters[0].last_caught_up_timestamp > 0);
        }
        if v >= 2 {
            assert_eq!(r.nodes.len(), 1);
            assert_eq!(r.nodes[0].node_id.0, 7);
        }
        high_watermarks.push(p.high_watermark);
        create(&mut client, &format!("quorum-{v}")).await;
    }
    assert!(
        high_watermarks.windows(2).all(|w| w[1] > w[0]),
        "a topic creation is a metadata entry: {high_watermarks:?}"
    );
    for (name, partitions) in
        [("__cluster_metadata", &[1][..]), ("orders", &[0][..]), ("__cluster_metadata", &[0, 0][..])]
    {
        let r: DescribeQuorumResponse = client
            .call(ApiKey::DescribeQuorum, 2, &describe_quorum_request(name, partitions))
            .await
            .expect("an answer");
        let codes: Vec<i16> = r.topics[0].partitions.iter().map(|p| p.error_code).collect();
        assert_eq!(codes, vec![3; partitions.len()], "{name} {partitions:?}");
        assert!(r.topics[0].partitions[0].error_message.is_some());
    }
    broker.stop().await;
}

fn elect_request(election_type: i8, topics: Option<&[(&str, &[i32])]>) -> ElectLeadersRequest {
    use kafka_protocol::messages::elect_leaders_request::TopicPartitions;
    ElectLeadersRequest::default().with_election_type(election_type).with_timeout_ms(10_000).with_topic_partitions(
        topics.map(|ts| {
            ts.iter()
                .map(|(name, ps)| TopicPartitions::default().with_topic(topic(name)).with_partitions(ps.to_vec()))
                .collect()
        }),
    )
}

fn election_codes(r: &ElectLeadersResponse) -> Vec<(String, i32, i16)> {
    r.replica_election_results
        .iter()
        .flat_map(|t| t.partition_result.iter().map(|p| (t.topic.0.to_string(), p.partition_id, p.error_code)))
        .collect()
}

/// On a node alone every partition is led by its only (preferred) replica:
/// preferred and unclean elections are not needed, unknown partitions are
/// named, an unknown election type fails the request, and "all partitions"
/// answers nothing (nothing to elect).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn elect_leaders_on_a_node_alone() {
    let broker = TestBroker::start(&[]).await;
    let mut client = RawClient::connect(broker.addr).await;
    create(&mut client, "elect").await;
    for v in 0..=2 {
        let r: ElectLeadersResponse = client
            .call(ApiKey::ElectLeaders, v, &elect_request(0, Some(&[("elect", &[0, 5]), ("nope", &[0])])))
            .await
            .expect("an answer");
        assert_eq!(
            election_codes(&r),
            vec![("elect".into(), 0, 84), ("elect".into(), 5, 3), ("nope".into(), 0, 3)],
            "v{v}: {r:?}"
        );
        assert_eq!(r.error_code, 0);
    }
    let unclean: ElectLeadersResponse =
        client.call(ApiKey::ElectLeaders, 1, &elect_request(1, Some(&[("elect", &[0])]))).await.expect("an answer");
    assert_eq!(election_codes(&unclean), vec![("elect".into(), 0, 84)]);
    let all: ElectLeadersResponse =
        client.call(ApiKey::ElectLeaders, 2, &elect_request(0, None)).await.expect("answer");
    assert_eq!((all.error_code, all.replica_election_results.len()), (0, 0), "{all:?}");
    let bad: ElectLeadersResponse =
        client.call(ApiKey::ElectLeaders, 2, &elect_request(7, Some(&[("elect", &[0])]))).await.expect("an answer");
    assert_eq!(bad.error_code, 42, "{bad:?}");
    assert_eq!(election_codes(&bad), vec![("elect".into(), 0, 42)]);
    broker.stop().await;
}

/// The node's data directory with its partitions' sizes; filtered by the
/// topics asked for; total and usable bytes from v4.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_log_dirs_lists_the_data_directory_and_its_partitions() {
    use kafka_protocol::messages::describe_log_dirs_request::DescribableLogDirTopic;
    let broker = TestBroker::start(&[]).await;
    let mut client = RawClient::connect(broker.addr).await;
    create(&mut client, "dirs-a").await;
    create(&mut client, "dirs-b").await;
    let produced: ProduceResponse =
        client.call(ApiKey::Produce, 9, &produce_request("dirs-a", -1, batch(&["x", "y"]))).await.expect("produce");
    assert_eq!(produced.responses[0].partition_responses[0].error_code, 0);
    let all = DescribeLogDirsRequest::default().with_topics(None);
    for v in 1..=4 {
        let r: DescribeLogDirsResponse = client.call(ApiKey::DescribeLogDirs, v, &all).await.expect("an answer");
        assert_eq!(r.results.len(), 1, "v{v}");
        let dir = &r.results[0];
        assert_eq!(dir.error_code, 0);
        assert!(std::path::Path::new(dir.log_dir.as_str()).is_absolute(), "{:?}", dir.log_dir);
        let names: Vec<&str> = dir.topics.iter().map(|t| t.name.0.as_str()).collect();
        assert!(names.contains(&"dirs-a") && names.contains(&"dirs-b"), "v{v}: {names:?}");
        let a = dir.topics.iter().find(|t| t.name.0.as_str() == "dirs-a").expect("dirs-a");
        assert!(a.partitions[0].partition_size > 0, "v{v}: {a:?}");
        assert_eq!((a.partitions[0].offset_lag, a.partitions[0].is_future_key), (0, false));
        if v >= 4 {
            assert!(dir.total_bytes > 0 && dir.usable_bytes >= 0 && dir.usable_bytes <= dir.total_bytes, "{dir:?}");
        }
    }
    let only_b = DescribeLogDirsRequest::default().with_topics(Some(vec![
        DescribableLogDirTopic::default().with_topic(topic("dirs-b")).with_partitions(vec![0, 9]),
        DescribableLogDirTopic::default().with_topic(topic("missing")).with_partitions(vec![0]),
    ]));
    let r: DescribeLogDirsResponse = client.call(ApiKey::DescribeLogDirs, 4, &only_b).await.expect("an answer");
    let listed: Vec<(String, Vec<i32>)> = r.results[0]
        .topics
        .iter()
        .map(|t| (t.name.0.to_string(), t.partitions.iter().map(|p| p.partition_index).collect()))
        .collect();
    assert_eq!(listed, vec![("dirs-b".to_string(), vec![0])]);
    broker.stop().await;
}
