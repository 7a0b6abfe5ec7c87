//! Three quorum members over real TCP in one process, on 127.0.0.1,
//! 127.0.0.2 and 127.0.0.3 with ports the kernel picked: a leader is
//! elected, 100 commands are proposed from followers and the leader, the
//! leader is killed, a new one is elected and proposals keep working, and
//! the killed node comes back and catches up from a snapshot (snapshots are
//! taken every few entries, so the log it missed is gone).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tributary_quorum::net::message::{Envelope, Forward, Request, Response};
use tributary_quorum::net::tcp::{ControllerServer, TcpTransport};
use tributary_quorum::net::{Transport, TransportError};
use tributary_quorum::quorum::{MetadataQuorum, Quorum, QuorumError, QuorumOptions, Timing, Voters};
use tributary_quorum::sim::{SimApp, SimMachine};
use tributary_quorum::storage::memory::{MemDisk, MemMachine};
use tributary_quorum::types::{Applied, NodeId};

type Member = Quorum<SimApp, MemMachine<SimApp, SimMachine>>;

struct Node {
    quorum: Arc<Member>,
    server: ControllerServer,
}

const DEADLINE: Duration = Duration::from_secs(30);

fn options(id: NodeId, address: &str, voters: &BTreeMap<NodeId, String>) -> QuorumOptions {
    let mut options = QuorumOptions::new(id, "tcp-test-cluster", address, Voters::Static(voters.clone()));
    options.timing = Timing { propose_timeout: Duration::from_secs(10), ..Timing::default() };
    options.snapshot_every = 10;
    options.keep_logs_after_snapshot = 2;
    options.snapshot_chunk_bytes = 256;
    options
}

async fn start(id: NodeId, listener: TcpListener, disk: &MemDisk<SimApp>, voters: &BTreeMap<NodeId, String>) -> Node {
    let address = voters[&id].clone();
    let transport = Arc::new(TcpTransport::for_listener(&address, Duration::from_secs(1)));
    let machine = disk.open_machine::<SimMachine>().expect("machine");
    let quorum =
        Quorum::start(options(id, &address, voters), disk.open_log(), machine, transport).await.expect("quorum starts");
    let server = ControllerServer::serve(listener, quorum.handler()).expect("serve");
    Node { quorum: Arc::new(quorum), server }
}

async fn wait_for_leader(nodes: &BTreeMap<NodeId, Node>, not: Option<NodeId>) -> NodeId {
    let until = tokio::time::Instant::now() + DEADLINE;
    loop {
        let leaders: Vec<NodeId> = nodes.values().filter_map(|n| n.quorum.leader()).collect();
        if let Some(first) = leaders.first()
            && Some(*first) != not
            && nodes.contains_key(first)
            && leaders.iter().all(|l| l == first)
            && leaders.len() == nodes.len()
        {
            return *first;
        }
        assert!(tokio::time::Instant::now() < until, "no leader agreed on within {DEADLINE:?}: {leaders:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_voters_over_tcp_elect_replicate_fail_over_and_catch_up_from_a_snapshot() {
    // Ports the kernel picks, held from the start so nothing else takes them.
    let mut listeners = BTreeMap::new();
    let mut voters = BTreeMap::new();
    for id in 1..=3 {
        let listener = TcpListener::bind(format!("127.0.0.{id}:0")).await.expect("bind 127.0.0.x");
        voters.insert(id, listener.local_addr().expect("addr").to_string());
        listeners.insert(id, listener);
    }
    let disks: BTreeMap<NodeId, MemDisk<SimApp>> = (1..=3).map(|id| (id, MemDisk::new())).collect();
    let mut nodes = BTreeMap::new();
    for id in 1..=3 {
        let listener = listeners.remove(&id).expect("listener");
        nodes.insert(id, start(id, listener, &disks[&id], &voters).await);
    }

    let leader = wait_for_leader(&nodes, None).await;
    // 100 commands, from every node in turn (two of three are followers).
    for command in 0..100u64 {
        let from = 1 + (command % 3) as NodeId;
        let (log_id, _) = nodes[&from].quorum.propose(command).await.expect("proposal commits");
        // Applied on the proposing node when propose returns.
        let applied = nodes[&from].quorum.machine().lock().expect("lock").machine().applied.get(&log_id.index).copied();
        assert_eq!(applied, Some(command), "node {from} had not applied its own proposal");
    }

    // DescribeQuorum from a follower reaches the leader.
    let follower = (1..=3).find(|id| *id != leader).expect("a follower");
    let description = nodes[&follower].quorum.describe().await.expect("describe");
    assert_eq!(description.leader_id, leader);
    assert_eq!(description.voters.iter().map(|v| v.replica_id).collect::<Vec<_>>(), vec![1, 2, 3]);
    assert!(description.observers.is_empty());
    assert!(description.high_watermark > 100, "{description:?}");
    assert!(description.voters.iter().all(|v| v.log_end_offset > 0), "{description:?}");

    // Every node's sockets left from its own address.
    for (id, node) in &nodes {
        let seen = node.server.peers_seen();
        for other in (1..=3).filter(|o| o != id) {
            let ip: IpAddr = format!("127.0.0.{other}").parse().expect("ip");
            assert!(seen.contains(&ip), "node {id} never saw a connection from 127.0.0.{other}: {seen:?}");
        }
    }

    // Kill the leader.
    let dead = nodes.remove(&leader).expect("leader");
    dead.server.shutdown();
    dead.quorum.shutdown().await;
    let applied_before = dead.quorum.applied().borrow().map_or(0, |l| l.index);
    drop(dead);

    let new_leader = wait_for_leader(&nodes, Some(leader)).await;
    assert_ne!(new_leader, leader);
    for command in 100..160u64 {
        let from = *nodes.keys().nth((command % 2) as usize).expect("node");
        nodes[&from].quorum.propose(command).await.expect("proposal commits after fail-over");
    }

    // The old leader comes back on its address and catches up; the entries
    // it missed were purged behind snapshots, so it installs one.
    let listener = TcpListener::bind(&voters[&leader]).await.expect("rebind");
    let back = start(leader, listener, &disks[&leader], &voters).await;
    let mut events = back.quorum.take_applied().expect("events");
    let target = nodes[&new_leader].quorum.applied().borrow().expect("leader applied");
    let mut applied = back.quorum.applied();
    tokio::time::timeout(DEADLINE, applied.wait_for(|a| a.is_some_and(|a| a.index >= target.index)))
        .await
        .expect("caught up in time")
        .expect("applied watch");
    let mut installed = None;
    while let Ok(event) = events.try_recv() {
        if let Applied::Restored { last_included: Some(l) } = event
            && l.index > applied_before
        {
            installed = Some(l);
        }
    }
    assert!(installed.is_some(), "node {leader} caught up without a snapshot (applied {applied_before} before)");
    nodes.insert(leader, back);
    let reference = nodes[&new_leader].quorum.machine().lock().expect("lock").machine().applied.clone();
    let caught_up = nodes[&leader].quorum.machine().lock().expect("lock").machine().applied.clone();
    let upto = |m: &BTreeMap<u64, u64>| m.range(..=target.index).map(|(k, v)| (*k, *v)).collect::<Vec<_>>();
    assert_eq!(upto(&caught_up), upto(&reference));
    assert_eq!(reference.len(), 160);

    // Proposals work from the node that came back too.
    nodes[&leader].quorum.propose(1000).await.expect("proposal from the restarted node");

    for node in nodes.values() {
        node.server.shutdown();
        node.quorum.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_of_another_cluster_or_with_other_voters_is_refused() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("addr").to_string();
    let voters = BTreeMap::from([(1, address.clone())]);
    let disk = MemDisk::new();
    let node = start(1, listener, &disk, &voters).await;
    let transport = TcpTransport::new(None, Duration::from_secs(1));

    let call = |cluster_id: &str, voters: Option<String>| Envelope::<SimApp> {
        cluster_id: cluster_id.to_string(),
        from: 9,
        to: 1,
        voters,
        body: Request::Forward(Forward::Describe),
    };
    let refused = |r: Result<Response<SimApp>, TransportError>| match r {
        Ok(Response::Refused(reason)) => reason,
        other => panic!("expected a refusal, got {other:?}"),
    };
    let reason = refused(transport.call(1, &address, call("another-cluster", None), Duration::from_secs(5)).await);
    assert!(reason.contains("another-cluster") && reason.contains("tcp-test-cluster"), "{reason}");
    let theirs = Some(format!("1@{address},2@127.0.0.9:9093"));
    let reason = refused(transport.call(1, &address, call("tcp-test-cluster", theirs), Duration::from_secs(5)).await);
    assert!(reason.contains("controller.quorum.voters differs"), "{reason}");
    // A frame claiming more than the limit is refused from its header alone.
    let mut raw = tokio::net::TcpStream::connect(&address).await.expect("connect");
    tokio::io::AsyncWriteExt::write_all(&mut raw, &[0xff, 0xff, 0xff, 0xff, 1]).await.expect("write");
    let answer: Option<Response<SimApp>> =
        tributary_quorum::net::frame::read_frame(&mut raw, 1 << 20).await.expect("an answer frame");
    match answer {
        Some(Response::Refused(reason)) => assert!(reason.contains("outside"), "{reason}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    // The same cluster and voters get an answer.
    let ours = Some(format!("1@{address}"));
    let until = tokio::time::Instant::now() + DEADLINE;
    loop {
        match transport.call(1, &address, call("tcp-test-cluster", ours.clone()), Duration::from_secs(5)).await {
            Ok(Response::Forward(Ok(_))) => break,
            Ok(Response::Forward(Err(_))) if tokio::time::Instant::now() < until => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            other => panic!("expected a description, got {other:?}"),
        }
    }
    node.server.shutdown();
    node.quorum.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_without_a_leader_reports_not_controller() {
    // Two voters configured, one running: no leader can be elected.
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("addr").to_string();
    let voters = BTreeMap::from([(1, address.clone()), (2, "127.0.0.1:9".to_string())]);
    let disk = MemDisk::new();
    let mut opts = options(1, &address, &voters);
    opts.timing.propose_timeout = Duration::from_secs(2);
    let transport = Arc::new(TcpTransport::for_listener(&address, Duration::from_millis(200)));
    let machine = disk.open_machine::<SimMachine>().expect("machine");
    let quorum: Member = Quorum::start(opts, disk.open_log(), machine, transport).await.expect("start");
    let server = ControllerServer::serve(listener, quorum.handler()).expect("serve");
    let err = quorum.propose(7).await.expect_err("no leader");
    assert!(
        matches!(err, QuorumError::NotController { .. } | QuorumError::OutcomeUnknown(_)),
        "unexpected error: {err}"
    );
    server.shutdown();
    quorum.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_connection_is_reported_with_the_node_that_sent_on_it() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("addr").to_string();
    let voters = BTreeMap::from([(1, address.clone())]);
    let disk = MemDisk::new();
    let transport = Arc::new(TcpTransport::for_listener(&address, Duration::from_secs(1)));
    let machine = disk.open_machine::<SimMachine>().expect("machine");
    let quorum: Member =
        Quorum::start(options(1, &address, &voters), disk.open_log(), machine, transport).await.expect("start");
    let server = ControllerServer::serve(listener, quorum.handler()).expect("serve");
    let mut losses = quorum.connection_losses();

    // Node 5 (a broker) heartbeats on a connection of its own, then goes away.
    let client = TcpTransport::for_listener("127.0.0.1:0", Duration::from_secs(1));
    let envelope: Envelope<SimApp> = Envelope {
        cluster_id: "tcp-test-cluster".into(),
        from: 5,
        to: 1,
        voters: None,
        body: Request::Forward(Forward::Heartbeat { node_id: 5 }),
    };
    Transport::<SimApp>::call(&client, 1, &address, envelope, DEADLINE).await.expect("an answer");
    assert!(losses.try_recv().is_err(), "nothing closed yet");
    drop(client);
    let lost = tokio::time::timeout(DEADLINE, losses.recv()).await.expect("reported in time").expect("a node id");
    assert_eq!(lost, 5);
    server.shutdown();
    quorum.shutdown().await;
}

/// A leader's own decision (`propose_as_leader`) commits only on the node
/// that leads in the term it names: a follower, or the leader naming another
/// term, gets NotController and nothing is appended, where a plain
/// `propose` from the same follower is forwarded and commits. (A controller
/// paused past the session timeout decided, still believing it led, to fence
/// every broker; forwarded, the new leader committed the fencings.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leaders_own_decision_is_never_forwarded() {
    let mut listeners = BTreeMap::new();
    let mut voters = BTreeMap::new();
    for id in 1..=3 {
        let listener = TcpListener::bind(format!("127.0.0.{id}:0")).await.expect("bind 127.0.0.x");
        voters.insert(id, listener.local_addr().expect("addr").to_string());
        listeners.insert(id, listener);
    }
    let disks: BTreeMap<NodeId, MemDisk<SimApp>> = (1..=3).map(|id| (id, MemDisk::new())).collect();
    let mut nodes = BTreeMap::new();
    for id in 1..=3 {
        let listener = listeners.remove(&id).expect("listener");
        nodes.insert(id, start(id, listener, &disks[&id], &voters).await);
    }
    let leader = wait_for_leader(&nodes, None).await;
    let follower = (1..=3).find(|id| *id != leader).expect("a follower");
    let term = nodes[&leader].quorum.leading_term().expect("the leader leads in a term");
    assert_eq!(nodes[&follower].quorum.leading_term(), None);

    let refused = nodes[&follower].quorum.propose_as_leader(501, term).await.expect_err("a follower decides nothing");
    assert!(matches!(refused, QuorumError::NotController { .. }), "{refused}");
    let stale = nodes[&leader].quorum.propose_as_leader(502, term + 1).await.expect_err("not this leader's term");
    assert!(matches!(stale, QuorumError::NotController { .. }), "{stale}");
    let (decided, _) = nodes[&leader].quorum.propose_as_leader(503, term).await.expect("the leader's decision commits");
    let (forwarded, _) = nodes[&follower].quorum.propose(504).await.expect("a follower's proposal is forwarded");
    assert!(forwarded.index > decided.index);

    let applied: Vec<u64> =
        nodes[&follower].quorum.machine().lock().expect("lock").machine().applied.values().copied().collect();
    assert!(applied.contains(&503) && applied.contains(&504), "{applied:?}");
    assert!(!applied.contains(&501) && !applied.contains(&502), "a refused decision was applied: {applied:?}");
    for node in nodes.values() {
        node.server.shutdown();
        node.quorum.shutdown().await;
    }
}
