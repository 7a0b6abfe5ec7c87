//! CPU-heavy request work runs on the broker's CPU pool, never on the
//! network runtime: with every pool slot held by the test, a compressed
//! produce and a ListOffsets by time wait for a slot, while other
//! connections (metadata, an uncompressed produce) are still answered.

use std::sync::mpsc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, StrBytes};
use tributary_record::Compression;
use tributary_record::builder::{BatchBuilder, RecordSpec};
use tributary_testkit::{RawClient, TestBroker};

/// Generous: the machine may be slow and loaded; only "never" would fail.
const ANSWER_DEADLINE: Duration = Duration::from_secs(60);

fn topic(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_string()))
}

fn produce(name: &str, codec: Compression, timestamp: i64) -> ProduceRequest {
    let mut b = BatchBuilder::new(codec);
    for i in 0..100 {
        b.push(RecordSpec::new(Some(b"k"), Some(format!("value-{i}").as_bytes()), timestamp + i));
    }
    ProduceRequest::default().with_acks(-1).with_timeout_ms(30_000).with_topic_data(vec![
        TopicProduceData::default().with_name(topic(name)).with_partition_data(vec![
            PartitionProduceData::default().with_index(0).with_records(Some(Bytes::from(b.build()))),
        ]),
    ])
}

fn list_offsets_by_time(name: &str, timestamp: i64) -> ListOffsetsRequest {
    ListOffsetsRequest::default().with_replica_id(BrokerId(-1)).with_topics(vec![
        ListOffsetsTopic::default()
            .with_name(topic(name))
            .with_partitions(vec![ListOffsetsPartition::default().with_partition_index(0).with_timestamp(timestamp)]),
    ])
}

async fn create(client: &mut RawClient, name: &str) {
    let request = CreateTopicsRequest::default().with_timeout_ms(10_000).with_topics(vec![
        CreatableTopic::default().with_name(topic(name)).with_num_partitions(1).with_replication_factor(1),
    ]);
    let response: CreateTopicsResponse = client.call(ApiKey::CreateTopics, 7, &request).await.expect("answer");
    assert_eq!(response.topics[0].error_code, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heavy_work_waits_for_the_cpu_pool_and_the_network_stays_responsive() {
    let broker = TestBroker::start(&[]).await;
    let cluster = broker.broker().cluster().clone();
    let mut admin = RawClient::connect(broker.addr).await;
    create(&mut admin, "heavy").await;

    // An uncompressed small batch is validated in place.
    let before = cluster.cpu.jobs_started();
    let plain: ProduceResponse =
        admin.call(ApiKey::Produce, 9, &produce("heavy", Compression::None, 1_000)).await.expect("answer");
    assert_eq!(plain.responses[0].partition_responses[0].error_code, 0);
    assert_eq!(cluster.cpu.jobs_started(), before, "a small uncompressed batch needs no pool job");

    // Hold every slot of the pool.
    let (release, held) = mpsc::channel::<()>();
    let held = std::sync::Arc::new(std::sync::Mutex::new(held));
    let mut holders = Vec::new();
    for _ in 0..cluster.cpu.parallelism() {
        let (pool, held) = (cluster.cpu.clone(), held.clone());
        holders.push(tokio::spawn(async move {
            pool.run(move || {
                let _ = held.lock().map(|rx| rx.recv());
            })
            .await
        }));
    }
    // The holders take their slots before anything else can.
    let deadline = tokio::time::Instant::now() + ANSWER_DEADLINE;
    while cluster.cpu.jobs_started() < before + cluster.cpu.parallelism() as u64 {
        assert!(tokio::time::Instant::now() < deadline, "holders never started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let mut heavy = RawClient::connect(broker.addr).await;
    let produce_id = heavy.send(ApiKey::Produce, 9, &produce("heavy", Compression::Gzip, 2_000)).await;
    let mut by_time = RawClient::connect(broker.addr).await;
    let lookup_id = by_time.send(ApiKey::ListOffsets, 7, &list_offsets_by_time("heavy", 1_050)).await;

    // Other connections are answered while those two wait for the pool.
    let mut other = RawClient::connect(broker.addr).await;
    let metadata: MetadataResponse = tokio::time::timeout(
        ANSWER_DEADLINE,
        other.call(ApiKey::Metadata, 12, &MetadataRequest::default().with_topics(None)),
    )
    .await
    .expect("metadata answered while the pool is busy")
    .expect("answer");
    assert!(metadata.topics.iter().any(|t| t.name.as_ref().is_some_and(|n| n.0.as_str() == "heavy")));
    let plain: ProduceResponse = tokio::time::timeout(
        ANSWER_DEADLINE,
        other.call(ApiKey::Produce, 9, &produce("heavy", Compression::None, 3_000)),
    )
    .await
    .expect("an uncompressed produce is answered while the pool is busy")
    .expect("answer");
    assert_eq!(plain.responses[0].partition_responses[0].base_offset, 100);

    // The heavy requests have not been answered: they wait for a slot.
    assert!(
        tokio::time::timeout(Duration::from_millis(300), heavy.receive(ApiKey::Produce, 9)).await.is_err(),
        "the compressed produce was answered while every pool slot was held"
    );

    for _ in 0..cluster.cpu.parallelism() {
        release.send(()).expect("holder waiting");
    }
    for holder in holders {
        assert_eq!(holder.await.expect("join"), Some(()));
    }
    // A receive cancelled by the timeout above read nothing (the answer was not there yet).
    let (got, mut body) = tokio::time::timeout(ANSWER_DEADLINE, heavy.receive(ApiKey::Produce, 9))
        .await
        .expect("answered")
        .expect("answer");
    assert_eq!(got, produce_id);
    let produced = ProduceResponse::decode(&mut body, 9).expect("decode");
    assert_eq!(produced.responses[0].partition_responses[0].error_code, 0);
    assert_eq!(produced.responses[0].partition_responses[0].base_offset, 200);

    let (got, mut body) = tokio::time::timeout(ANSWER_DEADLINE, by_time.receive(ApiKey::ListOffsets, 7))
        .await
        .expect("answered")
        .expect("answer");
    assert_eq!(got, lookup_id);
    let offsets = ListOffsetsResponse::decode(&mut body, 7).expect("decode");
    let p = &offsets.topics[0].partitions[0];
    assert_eq!((p.error_code, p.offset, p.timestamp), (0, 50, 1_050));
    assert!(cluster.cpu.jobs_started() >= before + cluster.cpu.parallelism() as u64 + 2);
    broker.stop().await;
}
