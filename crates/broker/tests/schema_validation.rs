//! Schema validation in-process: registrations written to the registry's
//! storage topic are honoured by the very next produce, rejected batches
//! carry INVALID_RECORD with per-record errors, turning validation off lets
//! anything through, the index is rebuilt after a restart, follows new
//! registrations in the background, and a produce sees every registry write
//! acknowledged before it (deletions too).

use bytes::Bytes;
use kafka_protocol::messages::alter_configs_request::{AlterConfigsResource, AlterableConfig};
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::produce_response::PartitionProduceResponse;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use tributary_record::Compression;
use tributary_record::builder::{BatchBuilder, RecordSpec};
use tributary_testkit::{RawClient, TestBroker};

const INVALID_RECORD: i16 = 87;

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

/// A record's key and value (`None` for null).
type Fields<'a> = (Option<&'a [u8]>, Option<&'a [u8]>);

fn batch(codec: Compression, records: &[Fields<'_>]) -> Vec<u8> {
    let mut b = BatchBuilder::new(codec);
    for (k, v) in records {
        b.push(RecordSpec::new(*k, *v, 1_000));
    }
    b.build()
}

fn framed(id: i32, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8];
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

async fn produce(client: &mut RawClient, topic: &str, batch: Vec<u8>) -> PartitionProduceResponse {
    let request = ProduceRequest::default().with_acks(-1).with_timeout_ms(30_000).with_topic_data(vec![
        TopicProduceData::default().with_name(TopicName(s(topic))).with_partition_data(vec![
            PartitionProduceData::default().with_index(0).with_records(Some(Bytes::from(batch))),
        ]),
    ]);
    let response: ProduceResponse = client.call(ApiKey::Produce, 9, &request).await.expect("answer");
    response.responses[0].partition_responses[0].clone()
}

async fn create(client: &mut RawClient, name: &str, configs: &[(&str, &str)]) {
    let configs = configs.iter().map(|(k, v)| CreatableTopicConfig::default().with_name(s(k)).with_value(Some(s(v))));
    let request = CreateTopicsRequest::default().with_timeout_ms(10_000).with_topics(vec![
        CreatableTopic::default()
            .with_name(TopicName(s(name)))
            .with_num_partitions(1)
            .with_replication_factor(1)
            .with_configs(configs.collect()),
    ]);
    let response: CreateTopicsResponse = client.call(ApiKey::CreateTopics, 7, &request).await.expect("answer");
    assert_eq!(response.topics[0].error_code, 0, "{:?}", response.topics[0].error_message);
}

/// Writes a registration to `_schemas` the way the registry does.
async fn register(client: &mut RawClient, subject: &str, version: i32, id: i32) {
    let key = format!(r#"{{"keytype":"SCHEMA","subject":"{subject}","version":{version},"magic":1}}"#);
    let value =
        format!(r#"{{"subject":"{subject}","version":{version},"id":{id},"schema":"\"string\"","deleted":false}}"#);
    let r =
        produce(client, "_schemas", batch(Compression::None, &[(Some(key.as_bytes()), Some(value.as_bytes()))])).await;
    assert_eq!(r.error_code, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registered_ids_pass_others_are_rejected_and_restart_rebuilds_the_index() {
    let broker = TestBroker::start(&[]).await;
    let mut client = RawClient::connect(broker.addr).await;
    create(&mut client, "_schemas", &[("cleanup.policy", "compact")]).await;
    create(&mut client, "orders", &[("confluent.value.schema.validation", "true")]).await;
    register(&mut client, "orders-value", 1, 41).await;

    // Right after the registration, in a compressed batch, with a null value too.
    let good = framed(41, b"payload");
    let r = produce(&mut client, "orders", batch(Compression::Zstd, &[(None, Some(&good)), (Some(b"k"), None)])).await;
    assert_eq!(r.error_code, 0, "{:?}", r.error_message);

    let bad =
        batch(Compression::Gzip, &[(None, Some(&good)), (None, Some(br#"{"a":1}"#)), (None, Some(&framed(42, b"")))]);
    let r = produce(&mut client, "orders", bad.clone()).await;
    assert_eq!(r.error_code, INVALID_RECORD);
    let message = r.error_message.as_deref().unwrap_or_default().to_string();
    assert!(message.starts_with("2 records of the batch failed schema validation. Record 1"), "{message}");
    assert!(message.contains("turn off confluent.value.schema.validation on topic orders"), "{message}");
    let indexes: Vec<i32> = r.record_errors.iter().map(|e| e.batch_index).collect();
    assert_eq!(indexes, vec![1, 2]);
    let second = r.record_errors[1].batch_index_error_message.as_deref().unwrap_or_default().to_string();
    assert!(second.contains("schema id 42") && second.contains("subject orders-value"), "{second}");
    let validation = &broker.broker().cluster().schema_validation;
    assert_eq!((validation.rejected_batches(), validation.rejected_records()), (1, 2));

    // Older Produce versions get CORRUPT_MESSAGE (INVALID_RECORD came with v8).
    let request = ProduceRequest::default().with_acks(1).with_timeout_ms(30_000).with_topic_data(vec![
        TopicProduceData::default().with_name(TopicName(s("orders"))).with_partition_data(vec![
            PartitionProduceData::default().with_index(0).with_records(Some(Bytes::from(bad.clone()))),
        ]),
    ]);
    let response: ProduceResponse = client.call(ApiKey::Produce, 7, &request).await.expect("answer");
    assert_eq!(response.responses[0].partition_responses[0].error_code, 2);

    // The index is rebuilt from the storage topic after a restart.
    let dir = broker.stop().await;
    let broker = TestBroker::start_in(dir, &[]).await;
    let mut client = RawClient::connect(broker.addr).await;
    let r = produce(&mut client, "orders", batch(Compression::None, &[(None, Some(&good))])).await;
    assert_eq!(r.error_code, 0, "{:?}", r.error_message);

    // The background tailer picks up new registrations without a produce asking.
    register(&mut client, "orders-value", 2, 43).await;
    let validation = &broker.broker().cluster().schema_validation;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while validation.indexed_versions() < 2 {
        assert!(tokio::time::Instant::now() < deadline, "the tailer did not index version 2");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }

    // A deletion the registry got acknowledged applies to the very next produce.
    let key = br#"{"keytype":"DELETE_SUBJECT","subject":"orders-value","magic":0}"#;
    let value = br#"{"subject":"orders-value","version":2}"#;
    let r = produce(&mut client, "_schemas", batch(Compression::None, &[(Some(key), Some(value))])).await;
    assert_eq!(r.error_code, 0);
    let r = produce(&mut client, "orders", batch(Compression::None, &[(None, Some(&good))])).await;
    assert_eq!(r.error_code, INVALID_RECORD, "id 41 belongs to a deleted subject");

    // Validation off: anything goes.
    let request = AlterConfigsRequest::default().with_resources(vec![
        AlterConfigsResource::default().with_resource_type(2).with_resource_name(s("orders")).with_configs(vec![
            AlterableConfig::default().with_name(s("confluent.value.schema.validation")).with_value(Some(s("false"))),
        ]),
    ]);
    let response: AlterConfigsResponse = client.call(ApiKey::AlterConfigs, 1, &request).await.expect("answer");
    assert_eq!(response.responses[0].error_code, 0);
    let r = produce(&mut client, "orders", bad).await;
    assert_eq!(r.error_code, 0, "{:?}", r.error_message);
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_storage_topic_every_id_is_unknown() {
    let broker = TestBroker::start(&[("tributary.schema.registry.topic", "_elsewhere")]).await;
    let mut client = RawClient::connect(broker.addr).await;
    create(&mut client, "_schemas", &[]).await;
    create(&mut client, "keys", &[("confluent.key.schema.validation", "true")]).await;
    register(&mut client, "keys-key", 1, 5).await;
    let key = framed(5, b"");
    let r = produce(&mut client, "keys", batch(Compression::Snappy, &[(Some(&key), Some(b"v"))])).await;
    assert_eq!(r.error_code, INVALID_RECORD, "_schemas is not the storage topic here");
    let message = r.error_message.as_deref().unwrap_or_default().to_string();
    assert!(message.contains("found no schemas in _elsewhere"), "{message}");
    broker.stop().await;
}

/// A registration already appended to the storage topic but not yet durable
/// when the produce that uses its id is checked (a registry writing with
/// acks=1 that answers at once, or a write still in flight) is waited for,
/// not refused. Each round sends the registration and a record framed with
/// its id in one Produce request, the storage topic first: the record is
/// checked right after the registration was appended, before it is on disk.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registration_still_being_written_is_waited_for() {
    let broker = TestBroker::start(&[]).await;
    let mut client = RawClient::connect(broker.addr).await;
    create(&mut client, "_schemas", &[("cleanup.policy", "compact")]).await;
    create(&mut client, "orders", &[("confluent.value.schema.validation", "true")]).await;
    register(&mut client, "orders-value", 1, 100).await;
    for round in 0..20 {
        let (version, id) = (round + 2, round + 101);
        let key = format!(r#"{{"keytype":"SCHEMA","subject":"orders-value","version":{version},"magic":1}}"#);
        let value = format!(
            r#"{{"subject":"orders-value","version":{version},"id":{id},"schema":"\"string\"","deleted":false}}"#
        );
        let registration = batch(Compression::None, &[(Some(key.as_bytes()), Some(value.as_bytes()))]);
        let framed_value = framed(id, b"payload");
        let record = batch(Compression::None, &[(None, Some(&framed_value))]);
        let request = ProduceRequest::default().with_acks(-1).with_timeout_ms(30_000).with_topic_data(
            [("_schemas", registration), ("orders", record)]
                .into_iter()
                .map(|(topic, b)| {
                    TopicProduceData::default().with_name(TopicName(s(topic))).with_partition_data(vec![
                        PartitionProduceData::default().with_index(0).with_records(Some(Bytes::from(b))),
                    ])
                })
                .collect(),
        );
        let response: ProduceResponse = client.call(ApiKey::Produce, 9, &request).await.expect("answer");
        for topic in &response.responses {
            let r = &topic.partition_responses[0];
            assert_eq!(r.error_code, 0, "round {round}, {}: {:?}", topic.name.0, r.error_message);
        }
    }
    // An id nobody registered is still refused once the index is complete.
    let r = produce(&mut client, "orders", batch(Compression::None, &[(None, Some(&framed(99_999, b"")))])).await;
    assert_eq!(r.error_code, INVALID_RECORD);
    broker.stop().await;
}

/// A panic while the schema index is locked may leave it half-applied (the
/// injected one forgets every registered version first): it is never
/// served as is, but rebuilt from the storage topic, so a registered id is
/// still accepted and an unknown one still refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_under_the_index_lock_rebuilds_the_index() {
    let broker = TestBroker::start(&[]).await;
    let mut client = RawClient::connect(broker.addr).await;
    create(&mut client, "_schemas", &[("cleanup.policy", "compact")]).await;
    create(&mut client, "orders", &[("confluent.value.schema.validation", "true")]).await;
    register(&mut client, "orders-value", 1, 7).await;
    let good = framed(7, b"payload");
    let r = produce(&mut client, "orders", batch(Compression::None, &[(None, Some(&good))])).await;
    assert_eq!(r.error_code, 0, "{:?}", r.error_message);

    broker.broker().cluster().schema_validation.inject_panic_under_lock();

    let r = produce(&mut client, "orders", batch(Compression::None, &[(None, Some(&good))])).await;
    assert_eq!(r.error_code, 0, "a registered id is accepted after the rebuild: {:?}", r.error_message);
    let unknown = framed(8, b"payload");
    let r = produce(&mut client, "orders", batch(Compression::None, &[(None, Some(&unknown))])).await;
    assert_eq!(r.error_code, INVALID_RECORD);
    broker.stop().await;
}
