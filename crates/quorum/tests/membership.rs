//! Membership on the simulated network (KIP-853): a broker-only node joins
//! a static quorum as an observer and replicates without voting, and moves
//! when it comes back at another address; with dynamic voters a quorum
//! formed by one standalone node grows to four voters and shrinks again;
//! bad voter changes get Kafka's refusals, never a panic.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tributary_quorum::quorum::{MetadataQuorum, Quorum, QuorumError, QuorumOptions, Timing, VoterRefusal, Voters};
use tributary_quorum::runtime::seed_thread_rng;
use tributary_quorum::sim::{NetFaults, SimApp, SimMachine, SimNet};
use tributary_quorum::storage::memory::{MemDisk, MemMachine};
use tributary_quorum::types::NodeId;

type Member = Quorum<SimApp, MemMachine<SimApp, SimMachine>>;

fn address(id: NodeId) -> String {
    format!("sim-{id}:9093")
}

fn timing() -> Timing {
    Timing { propose_timeout: Duration::from_secs(5), ..Timing::default() }
}

async fn start_on(net: &SimNet<SimApp>, disk: &MemDisk<SimApp>, id: NodeId, at: &str, voters: Voters) -> Arc<Member> {
    let mut options = QuorumOptions::new(id, "membership", at, voters);
    options.timing = timing();
    options.snapshot_every = 8;
    options.keep_logs_after_snapshot = 2;
    let machine = disk.open_machine::<SimMachine>().expect("machine");
    let quorum = Arc::new(Quorum::start(options, disk.open_log(), machine, net.transport(id)).await.expect("start"));
    net.attach(quorum.handler());
    quorum
}

async fn start(net: &SimNet<SimApp>, id: NodeId, voters: Voters) -> Arc<Member> {
    start_on(net, &MemDisk::new(), id, &address(id), voters).await
}

fn dynamic(initial: &[NodeId]) -> Voters {
    Voters::Dynamic {
        bootstrap_servers: vec![address(1)],
        initial_voters: initial.iter().map(|id| (*id, address(*id))).collect(),
    }
}

async fn wait_until(what: &str, mut check: impl FnMut() -> bool) {
    for _ in 0..2000 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting until {what}");
}

fn refusal<T: std::fmt::Debug>(result: Result<T, QuorumError>) -> VoterRefusal {
    match result {
        Err(QuorumError::VoterChange { refusal, .. }) => refusal,
        other => panic!("expected a voter change refusal, got {other:?}"),
    }
}

async fn voters_of(node: &Member) -> (Vec<NodeId>, Vec<NodeId>) {
    let d = node.describe().await.expect("describe");
    (d.voters.iter().map(|r| r.replica_id).collect(), d.observers.iter().map(|r| r.replica_id).collect())
}

#[tokio::test(start_paused = true)]
async fn an_observer_of_static_voters_replicates_and_moves_when_restarted_elsewhere() {
    seed_thread_rng(11);
    let net = SimNet::new(11, NetFaults::default());
    let voters: BTreeMap<NodeId, String> = (1..=3).map(|id| (id, address(id))).collect();
    let mut nodes = BTreeMap::new();
    for id in 1..=3 {
        nodes.insert(id, start(&net, id, Voters::Static(voters.clone())).await);
    }
    // Node 4 is not among the voters: it asks to be an observer.
    let disk = MemDisk::new();
    let observer = start_on(&net, &disk, 4, &address(4), Voters::Static(voters.clone())).await;
    wait_until("node 4 is an observer", || {
        let m = nodes[&1].metrics();
        let m = m.borrow();
        m.membership_config.membership().learner_ids().any(|l| l == 4)
    })
    .await;
    let (log_id, _) = observer.propose(77).await.expect("an observer's proposal is forwarded");
    assert_eq!(observer.machine().lock().expect("lock").machine().applied.get(&log_id.index), Some(&77));
    assert_eq!(voters_of(&nodes[&2]).await, (vec![1, 2, 3], vec![4]));
    // Static voters cannot change.
    assert_eq!(refusal(nodes[&2].add_voter(4, &address(4)).await), VoterRefusal::StaticVoters);
    assert_eq!(refusal(nodes[&2].remove_voter(3).await), VoterRefusal::StaticVoters);

    // The observer stops; entries (and snapshots: every 8) go on without it.
    observer.shutdown().await;
    net.detach(4);
    let mut last = log_id;
    for c in 0..30 {
        last = nodes[&1].propose(100 + c).await.expect("proposal").0;
    }
    // Back at another address (a broker-only node's controller port is
    // ephemeral): it tells the leader, and catches up from a snapshot.
    let observer = start_on(&net, &disk, 4, "sim-4-again:9093", Voters::Static(voters)).await;
    let mut applied = observer.applied();
    tokio::time::timeout(Duration::from_secs(20), applied.wait_for(|a| a.is_some_and(|a| a.index >= last.index)))
        .await
        .expect("the restarted observer catches up")
        .expect("applied watch");
    // The leader may reach it by node id before the move is committed
    // (the simulated network routes by id): wait for the move.
    wait_until("node 4 is known at its new address", || {
        let m = nodes[&3].metrics();
        let m = m.borrow();
        m.membership_config.membership().get_node(&4).is_some_and(|n| n.addr == "sim-4-again:9093")
    })
    .await;
    let d = nodes[&3].describe().await.expect("describe");
    assert_eq!(
        d.observers.iter().map(|r| (r.replica_id, r.address.as_str())).collect::<Vec<_>>(),
        vec![(4, "sim-4-again:9093")]
    );
    assert_eq!(observer.machine().lock().expect("lock").machine().applied.get(&last.index), Some(&129));
    for node in nodes.values().chain([&observer]) {
        node.shutdown().await;
    }
}

#[tokio::test(start_paused = true)]
async fn dynamic_voters_grow_from_one_and_shrink_with_kafkas_refusals() {
    seed_thread_rng(12);
    let net = SimNet::new(12, NetFaults::default());
    let mut nodes = BTreeMap::new();
    // Node 1 was formatted standalone; 2..=4 join through it.
    nodes.insert(1, start(&net, 1, dynamic(&[1])).await);
    for id in 2..=4 {
        nodes.insert(id, start(&net, id, dynamic(&[])).await);
    }
    wait_until("2, 3 and 4 are observers", || {
        let m = nodes[&1].metrics();
        let m = m.borrow();
        m.membership_config.membership().learner_ids().count() == 3
    })
    .await;
    assert_eq!(voters_of(&nodes[&3]).await, (vec![1], vec![2, 3, 4]));
    // The last voter cannot go; a node that is not a voter is not found.
    assert_eq!(refusal(nodes[&2].remove_voter(1).await), VoterRefusal::VoterNotFound);
    assert_eq!(refusal(nodes[&2].remove_voter(3).await), VoterRefusal::VoterNotFound);
    assert_eq!(refusal(nodes[&2].remove_voter(42).await), VoterRefusal::VoterNotFound);

    // Grow, asked from observers and voters alike.
    for (id, via) in [(2, 4), (3, 2), (4, 1)] {
        nodes[&via].add_voter(id, &address(id)).await.unwrap_or_else(|e| panic!("add voter {id}: {e}"));
    }
    assert_eq!(voters_of(&nodes[&4]).await, (vec![1, 2, 3, 4], vec![]));
    assert_eq!(refusal(nodes[&3].add_voter(2, &address(2)).await), VoterRefusal::DuplicateVoter);

    // A node nobody runs never catches up: refused, and not left behind.
    assert_eq!(refusal(nodes[&3].add_voter(9, "sim-9:9093").await), VoterRefusal::NotCaughtUp);
    assert_eq!(voters_of(&nodes[&1]).await, (vec![1, 2, 3, 4], vec![]));

    // Two changes at once: one of them is told to retry.
    let (a, b) = tokio::join!(nodes[&2].remove_voter(4), nodes[&3].remove_voter(3));
    let results = [a.map(|_| ()), b.map(|_| ())];
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1, "{results:?}");
    let refused = results.into_iter().find_map(Result::err).expect("one refused");
    assert!(matches!(refused, QuorumError::VoterChange { refusal: VoterRefusal::ChangeInProgress, .. }), "{refused:?}");

    // Remove the leader itself: another voter takes over, the removed one observes.
    let leader = nodes[&1].leader().expect("leader");
    nodes[&leader].remove_voter(leader).await.expect("remove the leader");
    wait_until("a new leader", || nodes[&1].leader().is_some_and(|l| l != leader)).await;
    let (voters, observers) = voters_of(&nodes[&1]).await;
    assert_eq!(voters.len(), 2, "{voters:?}");
    assert!(!voters.contains(&leader) && observers.contains(&leader), "{voters:?} {observers:?}");
    // Still a working quorum, proposals from the removed node included.
    nodes[&leader].propose(78).await.expect("proposal after the changes");
    for node in nodes.values() {
        node.shutdown().await;
    }
}
