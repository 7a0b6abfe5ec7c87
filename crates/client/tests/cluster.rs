//! The client's view of a cluster against an in-process broker: its brokers
//! (DescribeCluster v2) and its metadata quorum (DescribeQuorum), a node
//! alone being a quorum of itself.

use tributary_client::{Client, ClientConfig};
use tributary_testkit::TestBroker;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_alone_describes_its_cluster_and_its_quorum_of_one() {
    let broker = TestBroker::start(&[("node.id", "4"), ("broker.rack", "r1")]).await;
    let mut client = Client::connect(ClientConfig::new(&broker.addr.to_string())).await.expect("connect");

    let cluster = client.describe_cluster().await.expect("describe cluster");
    assert!(cluster.fenced_reported, "DescribeCluster v2 is served");
    assert_eq!(cluster.controller_id, 4);
    assert_eq!(cluster.brokers.len(), 1);
    let b = &cluster.brokers[0];
    assert_eq!((b.node_id, b.port, b.rack.as_deref(), b.fenced), (4, i32::from(broker.addr.port()), Some("r1"), false));
    assert_eq!(cluster.cluster_id.as_deref().map(str::len), Some(22));

    let quorum = client.describe_quorum().await.expect("describe quorum");
    assert_eq!(quorum.leader_id, 4);
    assert!(quorum.leader_epoch >= 1 && quorum.high_watermark >= 1, "{quorum:?}");
    assert_eq!(quorum.voters.iter().map(|v| v.replica_id).collect::<Vec<_>>(), vec![4]);
    assert_eq!(quorum.voters[0].log_end_offset, quorum.high_watermark);
    assert!(quorum.voters[0].last_caught_up_timestamp.is_some());
    assert!(quorum.observers.is_empty());
    assert_eq!(quorum.endpoints.get(&4).map(Vec::len), Some(0), "a node alone has no controller listener");
    broker.stop().await;
}
