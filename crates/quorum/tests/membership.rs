//! Membership on the simulated network (KIP-853): a broker-only node joins
//! as an observer and replicates without voting, is promoted to voter from
//! a follower, and a voter is removed and stays an observer; DescribeQuorum
//! shows each step.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tributary_quorum::quorum::{MetadataQuorum, Quorum, QuorumOptions, Timing, Voters};
use tributary_quorum::runtime::seed_thread_rng;
use tributary_quorum::sim::{NetFaults, SimApp, SimMachine, SimNet};
use tributary_quorum::storage::memory::{MemDisk, MemMachine};
use tributary_quorum::types::NodeId;

type Member = Quorum<SimApp, MemMachine<SimApp, SimMachine>>;

fn address(id: NodeId) -> String {
    format!("sim-{id}:9093")
}

async fn start(net: &SimNet<SimApp>, id: NodeId, voters: &BTreeMap<NodeId, String>) -> Arc<Member> {
    let mut options = QuorumOptions::new(id, "membership", &address(id), Voters::Static(voters.clone()));
    options.timing = Timing {
        heartbeat: Duration::from_millis(50),
        election_min: Duration::from_millis(150),
        election_max: Duration::from_millis(300),
        propose_timeout: Duration::from_secs(5),
        retry_backoff: Duration::from_millis(20),
    };
    let disk = MemDisk::new();
    let machine = disk.open_machine::<SimMachine>().expect("machine");
    let quorum = Arc::new(Quorum::start(options, disk.open_log(), machine, net.transport(id)).await.expect("start"));
    net.attach(quorum.handler());
    quorum
}

async fn wait_until(what: &str, mut check: impl FnMut() -> bool) {
    for _ in 0..1000 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting until {what}");
}

#[tokio::test(start_paused = true)]
async fn an_observer_joins_is_promoted_and_a_voter_is_removed() {
    seed_thread_rng(11);
    let net = SimNet::new(11, NetFaults::default());
    let voters: BTreeMap<NodeId, String> = (1..=3).map(|id| (id, address(id))).collect();
    let mut nodes = BTreeMap::new();
    for id in 1..=3 {
        nodes.insert(id, start(&net, id, &voters).await);
    }
    // Node 4 is not among the voters: it asks to be an observer.
    nodes.insert(4, start(&net, 4, &voters).await);
    let observer_id = 4;
    wait_until("node 4 is an observer", || {
        let m = nodes[&1].metrics();
        let m = m.borrow();
        m.membership_config.membership().learner_ids().any(|l| l == observer_id)
    })
    .await;
    let (log_id, _) = nodes[&4].propose(77).await.expect("an observer's proposal is forwarded");
    assert_eq!(nodes[&4].machine().lock().expect("lock").machine().applied.get(&log_id.index), Some(&77));

    let d = nodes[&2].describe().await.expect("describe");
    assert_eq!(d.voters.iter().map(|r| r.replica_id).collect::<Vec<_>>(), vec![1, 2, 3]);
    assert_eq!(d.observers.iter().map(|r| r.replica_id).collect::<Vec<_>>(), vec![4]);
    assert_eq!(d.observers[0].address, address(4));

    // Promote node 4, asked from a node that may not lead.
    let follower = (1..=3).find(|id| nodes[id].leader() != Some(*id)).expect("a follower");
    nodes[&follower].add_voter(4, &address(4)).await.expect("add voter");
    let d = nodes[&4].describe().await.expect("describe");
    assert_eq!(d.voters.iter().map(|r| r.replica_id).collect::<Vec<_>>(), vec![1, 2, 3, 4]);
    assert!(d.observers.is_empty());

    // Remove a voter that is not the leader: it stays as an observer.
    let leader = nodes[&1].leader().expect("leader");
    let removed = (1..=4).find(|id| *id != leader).expect("non-leader");
    nodes[&leader].remove_voter(removed).await.expect("remove voter");
    let d = nodes[&leader].describe().await.expect("describe");
    assert!(!d.voters.iter().any(|r| r.replica_id == removed), "{d:?}");
    assert_eq!(d.observers.iter().map(|r| r.replica_id).collect::<Vec<_>>(), vec![removed]);
    assert_eq!(d.leader_id, leader);
    assert!(d.high_watermark > 0);

    // Still a working quorum of three voters.
    nodes[&removed].propose(78).await.expect("proposal after the change");
    for node in nodes.values() {
        node.shutdown().await;
    }
}
