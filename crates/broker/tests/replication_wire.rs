//! The replicated data path's plumbing on a KRaft node in-process (a quorum
//! of one voter, broker 1) with two more brokers registered through the
//! quorum as a remote broker would register (2 unfenced, 3 fenced later):
//! follower fetches in raw Kafka requests (who may fetch as a replica, up to
//! the log end, DivergingEpoch, the replica-fetch seam), OffsetForLeaderEpoch
//! at the log end, and AlterPartition through the quorum.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic, ReplicaState};
use kafka_protocol::messages::offset_for_leader_epoch_request::{OffsetForLeaderPartition, OffsetForLeaderTopic};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use tributary_broker::cluster::Cluster;
use tributary_broker::isr_change::{IsrChange, PartitionState};
use tributary_broker::partition::PartitionRef;
use tributary_log::AppendInfo;
use tributary_metadata::{BrokerListener, BrokerState, MetadataCommand, PartitionMeta, TopicMeta};
use tributary_protocol::ErrorCode;
use tributary_quorum::MetadataQuorum;
use tributary_record::builder::{BatchBuilder, RecordSpec};
use tributary_record::{BatchHeader, BatchIter, Compression};
use tributary_testkit::{RawClient, TestBroker};
use tributary_types::TopicId;

const TOPIC: &str = "replicated";
const TOPIC_ID: [u8; 16] = [42; 16];

fn free_port() -> u16 {
    let socket = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    socket.local_addr().expect("address").port()
}

/// Polls `check` until it holds (a generous deadline, never a fixed sleep).
async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !check() {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn propose(cluster: &Cluster, command: MetadataCommand) {
    let q = cluster.quorum().expect("a KRaft node");
    let (log_id, outcome) = q.quorum.propose(command).await.expect("committed");
    tracing::info!(?log_id, ?outcome, "proposed");
}

/// Broker 1 as a KRaft node alone, registered and unfenced; brokers 2 and 3
/// registered (epochs as the log gives them) and unfenced; topic
/// `replicated` with one partition on replicas [1, 2, 3], led by 1, ISR all.
async fn cluster() -> TestBroker {
    let controller = free_port();
    let voters = format!("1@127.0.0.1:{controller}");
    let listeners = format!("PLAINTEXT://127.0.0.1:0,CONTROLLER://127.0.0.1:{controller}");
    let broker = TestBroker::start(&[
        ("process.roles", "broker,controller"),
        ("node.id", "1"),
        ("controller.quorum.voters", &voters),
        ("controller.listener.names", "CONTROLLER"),
        ("listeners", &listeners),
        ("broker.heartbeat.interval.ms", "200"),
        // Brokers 2 and 3 never heartbeat: the controller must not fence them.
        ("broker.session.timeout.ms", "3600000"),
    ])
    .await;
    let cluster = broker.broker().cluster().clone();
    eventually("broker 1 to be registered and unfenced", || cluster.image().brokers.get(&1).is_some_and(|b| !b.fenced))
        .await;
    for id in [2, 3] {
        let listener = BrokerListener {
            name: "PLAINTEXT".into(),
            host: "127.0.0.1".into(),
            port: 1,
            security_protocol: "PLAINTEXT".into(),
        };
        let register = MetadataCommand::RegisterBroker {
            broker_id: id,
            incarnation_id: [id as u8; 16],
            listeners: vec![listener],
            rack: None,
        };
        propose(&cluster, register).await;
        let epoch = broker_epoch(&cluster, id).await;
        propose(&cluster, MetadataCommand::UnfenceBroker { broker_id: id, broker_epoch: epoch }).await;
    }
    let partition =
        PartitionMeta { replicas: vec![1, 2, 3], leader: 1, leader_epoch: 0, isr: vec![1, 2, 3], partition_epoch: 0 };
    let topic =
        TopicMeta { name: TOPIC.into(), topic_id: TOPIC_ID, partitions: vec![partition], configs: BTreeMap::new() };
    propose(&cluster, MetadataCommand::CreateTopic { topic }).await;
    eventually("the topic to be hosted", || {
        cluster.registry().partition(TOPIC, 0).is_some()
            && [2, 3].iter().all(|id| cluster.image().brokers.get(id).is_some_and(|b| !b.fenced))
    })
    .await;
    broker
}

async fn broker_epoch(cluster: &Cluster, id: i32) -> i64 {
    eventually("the registration to be published", || cluster.image().brokers.contains_key(&id)).await;
    cluster.image().brokers[&id].broker_epoch
}

fn partition(cluster: &Cluster) -> PartitionRef {
    cluster.registry().partition(TOPIC, 0).expect("hosted").clone()
}

/// Appends `records` records as the leader does, without flushing: the log
/// end moves, the durable offset and high watermark do not.
fn append(partition: &PartitionRef, records: usize) {
    let mut b = BatchBuilder::new(Compression::None);
    for i in 0..records {
        b.push(RecordSpec::new(None, Some(format!("r{i}").as_bytes()), 1_000));
    }
    let bytes = b.build();
    let h = BatchHeader::parse(&bytes).expect("header");
    let info = AppendInfo {
        leader_epoch: partition.leader_epoch(),
        max_timestamp: h.max_timestamp,
        offset_delta_of_max_timestamp: h.last_offset_delta,
        now_ms: 1_000,
        log_append_time: false,
    };
    partition.log().append(&bytes, &info).expect("append");
}

struct FetchAs {
    replica: i32,
    replica_epoch: i64,
    current_leader_epoch: i32,
    last_fetched_epoch: i32,
    fetch_offset: i64,
}

impl FetchAs {
    fn replica(replica: i32) -> FetchAs {
        FetchAs { replica, replica_epoch: -1, current_leader_epoch: -1, last_fetched_epoch: -1, fetch_offset: 0 }
    }
}

fn fetch_request(version: i16, who: &FetchAs) -> FetchRequest {
    let partition = FetchPartition::default()
        .with_partition(0)
        .with_current_leader_epoch(who.current_leader_epoch)
        .with_fetch_offset(who.fetch_offset)
        .with_last_fetched_epoch(who.last_fetched_epoch)
        .with_log_start_offset(0)
        .with_partition_max_bytes(1 << 20);
    let topic = FetchTopic::default()
        .with_topic(TopicName(StrBytes::from_static_str(TOPIC)))
        .with_topic_id(uuid::Uuid::from_bytes(TOPIC_ID))
        .with_partitions(vec![partition]);
    let request =
        FetchRequest::default().with_max_wait_ms(0).with_min_bytes(0).with_max_bytes(1 << 20).with_topics(vec![topic]);
    if version >= 15 {
        request.with_replica_state(
            ReplicaState::default().with_replica_id(BrokerId(who.replica)).with_replica_epoch(who.replica_epoch),
        )
    } else {
        request.with_replica_id(BrokerId(who.replica))
    }
}

/// Sends a Fetch at `version` as `who`; the partition's answer.
async fn fetch(client: &mut RawClient, version: i16, who: &FetchAs) -> fetch_response::PartitionData {
    let response: FetchResponse =
        client.call(ApiKey::Fetch, version, &fetch_request(version, who)).await.expect("an answer");
    assert_eq!(response.error_code, 0);
    response.responses[0].partitions[0].clone()
}

fn offsets_of(records: &Option<bytes::Bytes>) -> Vec<i64> {
    let bytes = records.clone().unwrap_or_default();
    BatchIter::new(&bytes).map(|b| b.expect("whole batches").0).flat_map(|h| h.base_offset..=h.last_offset()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn followers_fetch_to_the_log_end_and_others_are_refused() {
    let broker = cluster().await;
    let cluster = broker.broker().cluster().clone();
    let p = partition(&cluster);
    append(&p, 3);
    assert_eq!((p.log().log_end_offset(), p.progress().high_watermark), (3, 0), "nothing committed yet");
    let mut client = RawClient::connect(broker.addr).await;
    let epoch2 = broker_epoch(&cluster, 2).await;

    // A consumer reads below the high watermark: nothing yet.
    let consumer = fetch(&mut client, 12, &FetchAs::replica(-1)).await;
    assert_eq!((consumer.error_code, consumer.high_watermark), (0, 0));
    assert!(offsets_of(&consumer.records).is_empty());
    assert!(p.follower_positions().all().is_empty(), "a consumer's fetch is not a follower's");

    // Follower 2 reads to the log end, at every version, by either field.
    for version in [4, 11, 12, 14, 15, 17] {
        let who = FetchAs { replica_epoch: epoch2, ..FetchAs::replica(2) };
        let served = fetch(&mut client, version, &who).await;
        assert_eq!(served.error_code, 0, "v{version}");
        assert_eq!(offsets_of(&served.records), vec![0, 1, 2], "v{version}");
        assert_eq!(served.high_watermark, 0, "v{version}: the leader's high watermark");
    }
    let seen = p.follower_positions().get(2).expect("follower 2's fetch reached the seam");
    assert_eq!((seen.fetch_offset, seen.leader_log_end_offset, seen.replica_epoch), (0, 3, epoch2));
    let caught_up = FetchAs { fetch_offset: 3, last_fetched_epoch: 0, current_leader_epoch: 0, ..FetchAs::replica(2) };
    let at_end = fetch(&mut client, 12, &caught_up).await;
    assert_eq!(at_end.error_code, 0);
    assert_eq!(p.follower_positions().get(2).map(|f| (f.fetch_offset, f.last_fetched_epoch)), Some((3, Some(0))));

    // Refused: a non-broker, the leader itself, a fenced replica, a stale broker epoch.
    for (who, why) in [(9, "not a broker"), (1, "the leader itself")] {
        let with_epoch = fetch(&mut client, 12, &FetchAs { current_leader_epoch: 0, ..FetchAs::replica(who) }).await;
        assert_eq!(with_epoch.error_code, ErrorCode::UnknownLeaderEpoch.code(), "{why}");
        assert!(offsets_of(&with_epoch.records).is_empty(), "{why}");
        let without = fetch(&mut client, 11, &FetchAs::replica(who)).await;
        assert_eq!(without.error_code, ErrorCode::NotLeaderOrFollower.code(), "{why}");
        assert!(p.follower_positions().get(who).is_none(), "{why}");
    }
    let stale = fetch(&mut client, 15, &FetchAs { replica_epoch: epoch2 - 1, ..FetchAs::replica(2) }).await;
    assert_eq!(stale.error_code, ErrorCode::NotLeaderOrFollower.code());
    let epoch3 = broker_epoch(&cluster, 3).await;
    propose(&cluster, MetadataCommand::FenceBroker { broker_id: 3, broker_epoch: epoch3 }).await;
    eventually("broker 3 fenced", || cluster.image().brokers[&3].fenced).await;
    let fenced = fetch(&mut client, 12, &FetchAs { current_leader_epoch: 0, ..FetchAs::replica(3) }).await;
    assert_eq!(fenced.error_code, ErrorCode::UnknownLeaderEpoch.code());
    assert!(p.follower_positions().get(3).is_none());
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_told_where_its_log_diverges() {
    let broker = cluster().await;
    let cluster = broker.broker().cluster().clone();
    let p = partition(&cluster);
    append(&p, 4); // epoch 0: offsets 0..3
    // A new leader epoch for the same leader (the preferred replica re-elected).
    propose(
        &cluster,
        MetadataCommand::ChangePartition {
            topic_id: TOPIC_ID,
            partition: 0,
            expected_partition_epoch: Some(0),
            leader: Some(1),
            isr: None,
            replicas: None,
        },
    )
    .await;
    eventually("leader epoch 1", || p.leader_epoch() == 1).await;
    append(&p, 2); // epoch 1: offsets 4..5
    assert_eq!(p.log().epoch_entries(), &[(0, 0), (1, 4)]);
    let mut client = RawClient::connect(broker.addr).await;

    // OffsetForLeaderEpoch answers at the log end for the latest epoch, not at the high watermark.
    let request = OffsetForLeaderEpochRequest::default().with_replica_id(BrokerId(2)).with_topics(vec![
        OffsetForLeaderTopic::default().with_topic(TopicName(StrBytes::from_static_str(TOPIC))).with_partitions(vec![
            OffsetForLeaderPartition::default().with_partition(0).with_current_leader_epoch(1).with_leader_epoch(1),
            OffsetForLeaderPartition::default().with_partition(0).with_current_leader_epoch(1).with_leader_epoch(0),
        ]),
    ]);
    let answer: OffsetForLeaderEpochResponse =
        client.call(ApiKey::OffsetForLeaderEpoch, 4, &request).await.expect("an answer");
    let ends: Vec<(i16, i32, i64)> =
        answer.topics[0].partitions.iter().map(|e| (e.error_code, e.leader_epoch, e.end_offset)).collect();
    assert_eq!(ends, vec![(0, 1, 6), (0, 0, 4)]);
    assert_eq!(p.progress().high_watermark, 0);

    // Follower 2 holds epoch 0 up to offset 5 (two records the leader does not have).
    let diverged = FetchAs { current_leader_epoch: 1, last_fetched_epoch: 0, fetch_offset: 6, ..FetchAs::replica(2) };
    let told = fetch(&mut client, 12, &diverged).await;
    assert_eq!(told.error_code, 0);
    assert_eq!((told.diverging_epoch.epoch, told.diverging_epoch.end_offset), (0, 4));
    assert!(offsets_of(&told.records).is_empty());
    assert!(p.follower_positions().get(2).is_none(), "a diverging fetch moves no follower position");
    // Its log matches up to epoch 0's end: it reads on from there.
    let matching = FetchAs { fetch_offset: 4, ..diverged };
    let served = fetch(&mut client, 12, &matching).await;
    assert_eq!((served.error_code, served.diverging_epoch.epoch), (0, -1));
    assert_eq!(offsets_of(&served.records), vec![4, 5]);
    // An epoch newer than any here cannot be placed.
    let unknown = fetch(&mut client, 12, &FetchAs { last_fetched_epoch: 7, ..diverged }).await;
    assert_eq!(unknown.error_code, ErrorCode::OffsetOutOfRange.code());
    // Before v12 there is no LastFetchedEpoch: the follower finds the divergence
    // with OffsetForLeaderEpoch, and its fetch just reads.
    let old_version = fetch(&mut client, 11, &FetchAs { last_fetched_epoch: -1, ..diverged }).await;
    assert_eq!((old_version.error_code, offsets_of(&old_version.records)), (0, vec![]));
    assert_eq!(p.follower_positions().get(2).map(|f| f.fetch_offset), Some(6));
    broker.stop().await;
}

fn isr(members: &[(i32, i64)]) -> Vec<BrokerState> {
    members.iter().map(|&(broker_id, broker_epoch)| BrokerState { broker_id, broker_epoch }).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leader_changes_the_isr_through_the_controller() {
    let broker = cluster().await;
    let cluster: Arc<Cluster> = broker.broker().cluster().clone();
    let (epoch2, epoch3) = (broker_epoch(&cluster, 2).await, broker_epoch(&cluster, 3).await);
    let change = |partition_epoch, new_isr| IsrChange {
        topic_id: TopicId(TOPIC_ID),
        partition: 0,
        leader_epoch: 0,
        partition_epoch,
        new_isr,
    };
    // Shrink: the partition epoch moves, the leader epoch does not, and this
    // node's image shows it when the answer comes.
    let shrunk = cluster.alter_partition(change(0, isr(&[(1, -1), (2, epoch2)]))).await;
    assert_eq!(shrunk, Ok(PartitionState { leader_id: 1, leader_epoch: 0, isr: vec![1, 2], partition_epoch: 1 }));
    let meta = cluster.image().topics[TOPIC].partitions[0].clone();
    assert_eq!((meta.isr, meta.leader_epoch, meta.partition_epoch), (vec![1, 2], 0, 1));
    // The same request again is stale.
    let again = cluster.alter_partition(change(0, isr(&[(1, -1), (2, epoch2)]))).await;
    assert_eq!(again, Err(ErrorCode::InvalidUpdateVersion));
    // Expanding with a broker epoch that is not 3's registration is refused; with it, done.
    let wrong = cluster.alter_partition(change(1, isr(&[(1, -1), (2, epoch2), (3, epoch3 + 1)]))).await;
    assert_eq!(wrong, Err(ErrorCode::IneligibleReplica));
    let expanded = cluster.alter_partition(change(1, isr(&[(1, -1), (2, epoch2), (3, epoch3)]))).await;
    assert_eq!(expanded.map(|s| (s.isr, s.partition_epoch)), Ok((vec![1, 2, 3], 2)));
    // A fenced broker may not join; a fenced leader epoch, an unknown topic, an ISR without the leader are refused.
    propose(&cluster, MetadataCommand::FenceBroker { broker_id: 3, broker_epoch: epoch3 }).await;
    eventually("broker 3 fenced", || cluster.image().brokers[&3].fenced).await;
    let fenced = cluster.alter_partition(change(2, isr(&[(1, -1), (3, -1)]))).await;
    assert_eq!(fenced, Err(ErrorCode::IneligibleReplica));
    let old_epoch = IsrChange { leader_epoch: -1, ..change(2, isr(&[(1, -1)])) };
    assert_eq!(cluster.alter_partition(old_epoch).await, Err(ErrorCode::FencedLeaderEpoch));
    let unknown = IsrChange { topic_id: TopicId([9; 16]), ..change(2, isr(&[(1, -1)])) };
    assert_eq!(cluster.alter_partition(unknown).await, Err(ErrorCode::UnknownTopicId));
    assert_eq!(cluster.alter_partition(change(2, isr(&[(2, -1)]))).await, Err(ErrorCode::InvalidRequest));
    assert_eq!(cluster.image().topics[TOPIC].partitions[0].partition_epoch, 2, "refusals change nothing");
    broker.stop().await;
}
