//! The quorum on the metadata crate's own log and state machine, on its
//! simulated disk: three voters apply metadata commands, snapshots are
//! written through the metadata crate, a node's disk crashes (losing what
//! was not fsynced) and the node comes back and catches up; a node that
//! restarts before any snapshot still knows the voters.
//!
//! Needs the `metadata-log` feature (the metadata crate's Raft-shaped API).
#![cfg(feature = "metadata-log")]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tributary_metadata::{ApplyOutcome, LogOptions, MetadataCommand, MetadataLog, MetadataStateMachine, SimDisk};
use tributary_quorum::quorum::{MetadataQuorum, Quorum, QuorumOptions, Timing, Voters};
use tributary_quorum::runtime::seed_thread_rng;
use tributary_quorum::sim::{NetFaults, SimNet};
use tributary_quorum::storage::metadata::MetadataApp;
use tributary_quorum::types::NodeId;

type Member = Quorum<MetadataApp, MetadataStateMachine<SimDisk>>;

fn address(id: NodeId) -> String {
    format!("md-{id}:9093")
}

async fn start(net: &SimNet<MetadataApp>, id: NodeId, disk: &SimDisk) -> Arc<Member> {
    let voters: BTreeMap<NodeId, String> = (1..=3).map(|i| (i, address(i))).collect();
    let mut options = QuorumOptions::new(id, "md-cluster", &address(id), Voters::Static(voters));
    options.timing = Timing { propose_timeout: Duration::from_secs(5), ..Timing::default() };
    options.snapshot_every = 10;
    options.keep_logs_after_snapshot = 2;
    let log = MetadataLog::open(disk.clone(), LogOptions::default()).expect("log opens");
    let machine = MetadataStateMachine::open(disk.clone(), &log).expect("machine opens");
    let quorum = Arc::new(Quorum::start(options, log, machine, net.transport(id)).await.expect("start"));
    net.attach(quorum.handler());
    quorum
}

#[tokio::test(start_paused = true)]
async fn three_voters_on_the_metadata_log_survive_a_crash() {
    seed_thread_rng(5);
    let net = SimNet::new(5, NetFaults::default());
    let disks: BTreeMap<NodeId, SimDisk> = (1..=3).map(|id| (id, SimDisk::new(id as u64))).collect();
    let mut nodes = BTreeMap::new();
    for id in 1..=3 {
        nodes.insert(id, start(&net, id, &disks[&id]).await);
    }
    let (_, outcome) =
        nodes[&2].propose(MetadataCommand::InitCluster { cluster_id: "abc".into() }).await.expect("init");
    assert_eq!(outcome, ApplyOutcome::ClusterInitialized);
    // Before any snapshot, node 2 restarts from its log alone (the first
    // membership entry included) and must still know the voters.
    net.detach(2);
    nodes.remove(&2).expect("node 2").shutdown().await;
    nodes.insert(2, start(&net, 2, &disks[&2]).await);
    let voters = nodes[&2].metrics().borrow().membership_config.membership().voter_ids().count();
    assert_eq!(voters, 3, "node 2 forgot the voters on restart");
    let mut last_end = 0;
    for i in 0..30 {
        let from = 1 + (i % 3);
        let (_, outcome) =
            nodes[&from].propose(MetadataCommand::AllocateProducerIdBlock { broker_id: from }).await.expect("propose");
        let ApplyOutcome::ProducerIdBlockAllocated { start, end } = outcome else { panic!("{outcome:?}") };
        assert_eq!(start, last_end);
        last_end = end;
    }
    // Node 3 crashes (unsynced bytes lost), misses some commands, comes back.
    net.detach(3);
    disks[&3].crash();
    nodes.remove(&3).expect("node 3").shutdown().await;
    for _ in 0..25 {
        nodes[&1].propose(MetadataCommand::AllocateProducerIdBlock { broker_id: 1 }).await.expect("propose");
    }
    nodes.insert(3, start(&net, 3, &disks[&3]).await);
    let (barrier, _) =
        nodes[&3].propose(MetadataCommand::AllocateProducerIdBlock { broker_id: 3 }).await.expect("barrier");
    for node in nodes.values() {
        let mut applied = node.applied();
        tokio::time::timeout(
            Duration::from_secs(10),
            applied.wait_for(|a| a.is_some_and(|a| a.index >= barrier.index)),
        )
        .await
        .expect("applied in time")
        .expect("watch");
    }
    let states: Vec<_> = nodes.values().map(|n| n.machine().lock().expect("lock").state().clone()).collect();
    assert_eq!(states[0].cluster_id.as_deref(), Some("abc"));
    assert!(states.iter().all(|s| s.producer_id_block_end == states[0].producer_id_block_end));
    assert_eq!(states[0].producer_id_block_end, 56 * tributary_metadata::PRODUCER_ID_BLOCK_SIZE);
    assert!(nodes[&1].machine().lock().expect("lock").snapshot_meta().is_some(), "no snapshot was written");
    for node in nodes.values() {
        node.shutdown().await;
    }
}

/// AlterPartition through a three-voter quorum: each node proposes from
/// wherever it is (followers forward to the leader), the request is judged
/// where its entry lands in the log, and every node ends with the same
/// partition state. A request built before another change of the partition
/// got in is refused with the partition epoch check (INVALID_UPDATE_VERSION),
/// and a broker fenced after the leader decided to add it is refused
/// (INELIGIBLE_REPLICA), on every node alike.
#[tokio::test(start_paused = true)]
async fn isr_changes_are_judged_where_they_land_in_the_log() {
    use tributary_metadata::{AlterPartitionError, BrokerListener, BrokerState, PartitionMeta, TopicMeta};

    seed_thread_rng(11);
    let net = SimNet::new(11, NetFaults::default());
    let disks: BTreeMap<NodeId, SimDisk> = (1..=3).map(|id| (id, SimDisk::new(id as u64 + 20))).collect();
    let mut nodes = BTreeMap::new();
    for id in 1..=3 {
        nodes.insert(id, start(&net, id, &disks[&id]).await);
    }
    let mut epochs = BTreeMap::new();
    for id in 1..=3 {
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
        let (_, outcome) = nodes[&id].propose(register).await.expect("register");
        let ApplyOutcome::BrokerRegistered { broker_epoch, .. } = outcome else { panic!("{outcome:?}") };
        nodes[&id].propose(MetadataCommand::UnfenceBroker { broker_id: id, broker_epoch }).await.expect("unfence");
        epochs.insert(id, broker_epoch);
    }
    let partition =
        PartitionMeta { replicas: vec![1, 2, 3], leader: 2, leader_epoch: 0, isr: vec![2], partition_epoch: 0 };
    let topic =
        TopicMeta { name: "t".into(), topic_id: [5; 16], partitions: vec![partition], configs: BTreeMap::new() };
    nodes[&1].propose(MetadataCommand::CreateTopic { topic }).await.expect("create");
    let alter = |partition_epoch: i32, isr: &[i32]| MetadataCommand::AlterPartition {
        broker_id: 2,
        broker_epoch: epochs[&2],
        topic_id: [5; 16],
        partition: 0,
        leader_epoch: 0,
        partition_epoch,
        new_isr: isr.iter().map(|&b| BrokerState { broker_id: b, broker_epoch: epochs[&b] }).collect(),
    };
    // Broker 2 leads the partition; its request travels from node 2 whichever node leads the quorum.
    let (_, outcome) = nodes[&2].propose(alter(0, &[2, 1])).await.expect("expand");
    assert_eq!(
        outcome,
        ApplyOutcome::AlterPartitionApplied { leader: 2, leader_epoch: 0, isr: vec![2, 1], partition_epoch: 1 }
    );
    // Two requests built from partition epoch 1: the first to land wins.
    let (_, first) = nodes[&3].propose(alter(1, &[2, 1, 3])).await.expect("first");
    let (_, second) = nodes[&1].propose(alter(1, &[2])).await.expect("second");
    assert!(matches!(first, ApplyOutcome::AlterPartitionApplied { partition_epoch: 2, .. }), "{first:?}");
    assert_eq!(second, ApplyOutcome::AlterPartitionRefused { error: AlterPartitionError::InvalidUpdateVersion });
    // Broker 3 is fenced before a request that keeps it in lands.
    nodes[&1].propose(MetadataCommand::FenceBroker { broker_id: 3, broker_epoch: epochs[&3] }).await.expect("fence");
    let (barrier, late) = nodes[&2].propose(alter(2, &[2, 3])).await.expect("late");
    assert!(
        matches!(&late, ApplyOutcome::AlterPartitionRefused { error: AlterPartitionError::IneligibleReplica { reason } } if reason.contains("3: fenced")),
        "{late:?}"
    );
    for node in nodes.values() {
        let mut applied = node.applied();
        tokio::time::timeout(
            Duration::from_secs(10),
            applied.wait_for(|a| a.is_some_and(|a| a.index >= barrier.index)),
        )
        .await
        .expect("applied in time")
        .expect("watch");
    }
    for node in nodes.values() {
        let state = node.machine().lock().expect("lock").state().clone();
        let p = &state.topics["t"].partitions[0];
        assert_eq!((p.isr.clone(), p.leader_epoch, p.partition_epoch), (vec![2, 1, 3], 0, 2));
    }
    for node in nodes.values() {
        node.shutdown().await;
    }
}
