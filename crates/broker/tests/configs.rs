//! Topic configs as the log obeys them, and the admin listings, driven with
//! raw protocol requests against an in-process broker: an empty
//! `cleanup.policy` (reached by subtracting `delete`, as confluent-kafka's
//! admin test does) keeps every record, neither deleting segments by
//! retention nor compacting; DescribeTopicPartitions pages across topics.

use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::describe_topic_partitions_request::{Cursor, TopicRequest};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::incremental_alter_configs_request::{AlterConfigsResource, AlterableConfig};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use tributary_record::batch::BATCH_HEADER_LEN;
use tributary_record::builder::{BatchBuilder, RecordSpec};
use tributary_record::records::RecordIter;
use tributary_record::{BatchIter, Compression};
use tributary_testkit::{RawClient, TestBroker};

const DEADLINE: Duration = Duration::from_secs(60);

fn s(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_string())
}

fn topic(name: &str) -> TopicName {
    TopicName(s(name))
}

async fn create(client: &mut RawClient, name: &str, partitions: i32, configs: &[(&str, &str)]) {
    let configs =
        configs.iter().map(|(k, v)| CreatableTopicConfig::default().with_name(s(k)).with_value(Some(s(v)))).collect();
    let request = CreateTopicsRequest::default().with_timeout_ms(10_000).with_topics(vec![
        CreatableTopic::default()
            .with_name(topic(name))
            .with_num_partitions(partitions)
            .with_replication_factor(1)
            .with_configs(configs),
    ]);
    let response: CreateTopicsResponse = client.call(ApiKey::CreateTopics, 7, &request).await.expect("answer");
    let t = &response.topics[0];
    assert_eq!(t.error_code, 0, "creating {name}: {:?}", t.error_message);
}

/// Two records under one key, uncompressed and large enough that every
/// batch takes a 300-byte segment of its own.
fn batch(n: usize) -> Bytes {
    let mut b = BatchBuilder::new(Compression::None);
    for i in 0..2 {
        let value = format!("value {n}.{i} {}", "x".repeat(60));
        // A timestamp far in the past: due for time retention at once.
        b.push(RecordSpec::new(Some(b"key"), Some(value.as_bytes()), 1_000));
    }
    Bytes::from(b.build())
}

async fn produce(client: &mut RawClient, name: &str, records: Bytes) {
    let request = ProduceRequest::default().with_acks(-1).with_timeout_ms(30_000).with_topic_data(vec![
        TopicProduceData::default()
            .with_name(topic(name))
            .with_partition_data(vec![PartitionProduceData::default().with_index(0).with_records(Some(records))]),
    ]);
    let response: ProduceResponse = client.call(ApiKey::Produce, 9, &request).await.expect("answer");
    assert_eq!(response.responses[0].partition_responses[0].error_code, 0, "produce to {name}");
}

async fn earliest_offset(client: &mut RawClient, name: &str) -> i64 {
    let request = ListOffsetsRequest::default().with_replica_id(BrokerId(-1)).with_topics(vec![
        ListOffsetsTopic::default()
            .with_name(topic(name))
            .with_partitions(vec![ListOffsetsPartition::default().with_partition_index(0).with_timestamp(-2)]),
    ]);
    let response: ListOffsetsResponse = client.call(ApiKey::ListOffsets, 7, &request).await.expect("answer");
    response.topics[0].partitions[0].offset
}

/// Offsets of every record from offset 0, following the log to its end.
async fn record_offsets(client: &mut RawClient, name: &str) -> Vec<i64> {
    let mut offsets = Vec::new();
    let mut from = 0;
    loop {
        let request = FetchRequest::default()
            .with_max_wait_ms(0)
            .with_min_bytes(1)
            .with_max_bytes(1 << 20)
            .with_topics(vec![FetchTopic::default().with_topic(topic(name)).with_partitions(vec![
                FetchPartition::default().with_partition(0).with_fetch_offset(from).with_partition_max_bytes(1 << 20),
            ])]);
        let response: FetchResponse = client.call(ApiKey::Fetch, 12, &request).await.expect("answer");
        let part = &response.responses[0].partitions[0];
        assert_eq!(part.error_code, 0, "fetch {name} from {from}");
        let before = offsets.len();
        for b in BatchIter::new(part.records.as_deref().unwrap_or_default()) {
            // every batch here is uncompressed: the records follow the header
            let (header, bytes) = b.expect("batch");
            for r in RecordIter::new(&bytes[BATCH_HEADER_LEN..]) {
                offsets.push(header.base_offset + i64::from(r.expect("record").offset_delta));
            }
            from = header.base_offset + i64::from(header.last_offset_delta) + 1;
        }
        if offsets.len() == before || from >= part.high_watermark {
            return offsets;
        }
    }
}

/// Fails the test once `started` is more than [`DEADLINE`] ago.
async fn pause_or_give_up(started: Instant, what: &str) {
    assert!(started.elapsed() < DEADLINE, "gave up waiting: {what}");
    tokio::time::sleep(Duration::from_millis(50)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_cleanup_policy_neither_deletes_nor_compacts() {
    let broker =
        TestBroker::start(&[("log.retention.check.interval.ms", "100"), ("log.cleaner.backoff.ms", "100")]).await;
    let mut client = RawClient::connect(broker.addr).await;
    let small = [("segment.bytes", "300"), ("min.cleanable.dirty.ratio", "0.01")];
    // Topics are visited in name order: the one under test before its controls.
    create(&mut client, "a-kept", 1, &[&small[..], &[("cleanup.policy", "delete")]].concat()).await;
    create(&mut client, "z-compact", 1, &[&small[..], &[("cleanup.policy", "compact")]].concat()).await;
    create(&mut client, "z-delete", 1, &[&small[..], &[("cleanup.policy", "delete")]].concat()).await;

    // delete minus delete: the empty list, which Kafka accepts
    let subtract = IncrementalAlterConfigsRequest::default().with_resources(vec![
        AlterConfigsResource::default().with_resource_type(2).with_resource_name(s("a-kept")).with_configs(vec![
            AlterableConfig::default()
                .with_name(s("cleanup.policy"))
                .with_config_operation(3)
                .with_value(Some(s("delete"))),
        ]),
    ]);
    let altered: IncrementalAlterConfigsResponse =
        client.call(ApiKey::IncrementalAlterConfigs, 1, &subtract).await.expect("answer");
    assert_eq!(altered.responses[0].error_code, 0, "{:?}", altered.responses[0].error_message);
    let describe = DescribeConfigsRequest::default().with_include_synonyms(true).with_resources(vec![
        DescribeConfigsResource::default()
            .with_resource_type(2)
            .with_resource_name(s("a-kept"))
            .with_configuration_keys(Some(vec![s("cleanup.policy")])),
    ]);
    let described: DescribeConfigsResponse = client.call(ApiKey::DescribeConfigs, 4, &describe).await.expect("answer");
    let policy = &described.results[0].configs[0];
    assert_eq!((policy.value.as_deref(), policy.config_source), (Some(""), 1));

    for name in ["a-kept", "z-compact", "z-delete"] {
        for n in 0..5 {
            produce(&mut client, name, batch(n)).await;
        }
    }
    let all: Vec<i64> = (0..10).collect();

    // Retention has passed over the topics once the delete control lost its old segments...
    let started = Instant::now();
    while earliest_offset(&mut client, "z-delete").await == 0 {
        pause_or_give_up(started, "retention deletes z-delete's closed segments").await;
    }
    // ...and the cleaner has run once the compact control lost its older duplicates.
    while record_offsets(&mut client, "z-compact").await.len() == 10 {
        pause_or_give_up(started, "the cleaner compacts z-compact").await;
    }
    assert_eq!(earliest_offset(&mut client, "a-kept").await, 0, "retention deleted segments of an empty policy");
    assert_eq!(record_offsets(&mut client, "a-kept").await, all, "records of an empty policy went missing");
    broker.stop().await;
}

fn page_request(topics: &[&str], limit: i32, cursor: Option<(TopicName, i32)>) -> DescribeTopicPartitionsRequest {
    DescribeTopicPartitionsRequest::default()
        .with_topics(topics.iter().map(|t| TopicRequest::default().with_name(topic(t))).collect())
        .with_response_partition_limit(limit)
        .with_cursor(cursor.map(|(name, index)| Cursor::default().with_topic_name(name).with_partition_index(index)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_topic_partitions_pages_through_every_partition_once() {
    let broker = TestBroker::start(&[]).await;
    let mut client = RawClient::connect(broker.addr).await;
    for (name, partitions) in [("pages-b", 2), ("pages-a", 3), ("pages-c", 4)] {
        create(&mut client, name, partitions, &[]).await;
    }
    let node = BrokerId(broker.broker().cluster().node_id);
    let named = ["pages-c", "pages-a", "pages-b", "pages-a"];
    let mut seen = Vec::new();
    let mut cursor: Option<(TopicName, i32)> = None;
    let mut pages = 0;
    loop {
        let request = page_request(&named, 2, cursor.take());
        let response: DescribeTopicPartitionsResponse =
            client.call(ApiKey::DescribeTopicPartitions, 0, &request).await.expect("answer");
        pages += 1;
        for t in &response.topics {
            assert_eq!(t.error_code, 0);
            assert!(!t.topic_id.is_nil());
            for p in &t.partitions {
                assert_eq!((p.leader_id, p.replica_nodes.clone()), (node, vec![node]));
                assert_eq!(p.eligible_leader_replicas.as_deref(), Some(&[][..]));
                seen.push((t.name.as_ref().map(|n| n.0.to_string()).unwrap_or_default(), p.partition_index));
            }
        }
        cursor = response.next_cursor.map(|c| (c.topic_name, c.partition_index));
        if cursor.is_none() {
            break;
        }
        assert!(pages < 20, "paging does not end");
    }
    let expected: Vec<(String, i32)> = [("pages-a", 3), ("pages-b", 2), ("pages-c", 4)]
        .iter()
        .flat_map(|(t, n)| (0..*n).map(move |p| (t.to_string(), p)))
        .collect();
    assert_eq!(seen, expected);
    assert_eq!(pages, 5, "9 partitions, 2 a page");

    // the cursor's topic must be among the named ones
    let stray = page_request(&["pages-a"], 10, Some((topic("pages-b"), 0)));
    let response: DescribeTopicPartitionsResponse =
        client.call(ApiKey::DescribeTopicPartitions, 0, &stray).await.expect("answer");
    assert_eq!(response.topics.len(), 1);
    assert_eq!(response.topics[0].error_code, 42, "INVALID_REQUEST");
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stored_key_no_longer_alterable_does_not_block_later_changes() {
    let broker = TestBroker::start(&[]).await;
    let dir = broker.stop().await;
    // What an older release could have stored: log.retention.hours set dynamically.
    {
        let mut store =
            tributary_metadata::MetadataStore::open(&dir.path().join("__cluster_metadata"), 1).expect("metadata");
        let configs = [("log.retention.hours", "1"), ("log.retention.ms", "5000")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        store.append(tributary_metadata::MetadataCommand::SetBrokerConfigs { broker: None, configs }).expect("append");
    }
    let broker = TestBroker::start_in(dir, &[]).await;
    let mut client = RawClient::connect(broker.addr).await;
    let set = IncrementalAlterConfigsRequest::default().with_resources(vec![
        AlterConfigsResource::default().with_resource_type(4).with_resource_name(s("")).with_configs(vec![
            AlterableConfig::default()
                .with_name(s("log.retention.ms"))
                .with_config_operation(0)
                .with_value(Some(s("6000"))),
        ]),
    ]);
    let altered: IncrementalAlterConfigsResponse =
        client.call(ApiKey::IncrementalAlterConfigs, 1, &set).await.expect("answer");
    assert_eq!(altered.responses[0].error_code, 0, "{:?}", altered.responses[0].error_message);
    let describe = DescribeConfigsRequest::default()
        .with_resources(vec![DescribeConfigsResource::default().with_resource_type(4).with_resource_name(s(""))]);
    let described: DescribeConfigsResponse = client.call(ApiKey::DescribeConfigs, 4, &describe).await.expect("answer");
    let entries: Vec<(String, Option<String>)> = described.results[0]
        .configs
        .iter()
        .map(|c| (c.name.to_string(), c.value.as_ref().map(|v| v.to_string())))
        .collect();
    assert_eq!(entries, vec![("log.retention.ms".to_string(), Some("6000".to_string()))]);
    broker.stop().await;
}
