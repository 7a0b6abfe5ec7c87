"""Follower fetches on a three-node cluster, in raw Fetch requests
(compat/python/kwire.py). A Fetch whose replica id (ReplicaId in v13-14,
ReplicaState in v15+) is not negative claims to come from a follower: the
leader serves it only when the id names a registered, unfenced broker of the
cluster that is a replica of the partition, and not the leader itself.
Anything else gets the answer Kafka's leader gives a replica it does not
recognise: UNKNOWN_LEADER_EPOCH when the fetch names the leader epoch,
NOT_LEADER_OR_FOLLOWER when it does not, and no records; a broker epoch older
than the broker's registration is NOT_LEADER_OR_FOLLOWER."""

from __future__ import annotations

import struct

from confluent_kafka import Producer, TopicCollection
from confluent_kafka.admin import NewTopic

import kwire  # compat/python, on the path through conftest
from conftest import HOST, wait_for

NOT_LEADER_OR_FOLLOWER = 6
UNKNOWN_LEADER_EPOCH = 75
NOT_A_BROKER = 99


def create(cluster, name: str, replicas: int) -> None:
    """Creates the topic through node 1 and waits until every node has
    applied it (a raw Metadata request to each node alone names its leader)."""
    futures = cluster.nodes[1].admin().create_topics([NewTopic(name, 1, replicas)], operation_timeout=30)
    futures[name].result(timeout=60)
    for node in cluster.nodes.values():
        wait_for(f"node {node.node_id} to know {name}", lambda node=node: knows(node, name))


def knows(node, name: str) -> bool:
    md = kwire.metadata_v1(HOST, node.client_port, None)
    topic = next((t for t in md.topics if t["name"] == name and t["error_code"] == 0), None)
    return topic is not None and all(p["leader"] >= 1 for p in topic["partitions"])


def leader_and_replicas(cluster, name: str) -> tuple[int, list[int]]:
    def known():
        p = cluster.nodes[1].metadata().topics.get(name)
        if p is None or 0 not in p.partitions or p.partitions[0].leader < 1:
            return None
        return p.partitions[0].leader, list(p.partitions[0].replicas)
    return wait_for(f"a leader for {name}", known)


def topic_id(node, name: str) -> bytes:
    described = node.admin().describe_topics(TopicCollection([name]))[name].result(timeout=30)
    uuid = described.topic_id
    return struct.pack(">qq", uuid.get_most_significant_bits(), uuid.get_least_significant_bits())


def fetch(node, version: int, tid: bytes, epoch: int = -1, replica: tuple[int, int] | None = None):
    """Partition 0 of the topic `tid` from offset 0, at `version` (13-17), as
    `replica` = (broker id, broker epoch) or as a consumer."""
    if version >= 15:
        body = kwire.fetch_v16_body(tid, 0, 0, epoch, replica=replica)
    else:
        body = kwire.fetch_v13_body(tid, 0, 0, replica[0] if replica else -1, current_leader_epoch=epoch)
    with kwire.Connection(HOST, node.client_port) as c:
        cid = c.send_request(kwire.FETCH, version, body, flexible=True)
        r = c.recv_response(cid, flexible_header=True)
        top_error, answers, _ = kwire.parse_fetch_v16(r)
        assert r.remaining() == 0
    assert top_error == 0
    return answers[(tid, 0)]


def current_epoch(cluster, leader: int, tid: bytes) -> int:
    """The partition's leader epoch, as a broker that does not lead it names it (KIP-951)."""
    other = next(i for i in (1, 2, 3) if i != leader)
    hint = fetch(cluster.nodes[other], 16, tid)
    assert hint.error_code == NOT_LEADER_OR_FOLLOWER and hint.current_leader.leader_id == leader
    return hint.current_leader.leader_epoch


def test_a_fetch_with_the_replica_id_of_a_non_broker_is_refused(cluster):
    create(cluster, "followed", 3)
    leader, replicas = leader_and_replicas(cluster, "followed")
    assert sorted(replicas) == [1, 2, 3]
    follower = next(r for r in replicas if r != leader)
    # acks=all: answered once every in-sync replica holds the records, so the
    # leader's high watermark covers them (acks=1 answers before the followers fetched).
    producer = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all"})
    for i in range(3):
        producer.produce("followed", value=f"v{i}".encode(), partition=0)
    assert producer.flush(30) == 0
    node = cluster.nodes[leader]
    tid = topic_id(node, "followed")
    epoch = current_epoch(cluster, leader, tid)

    consumer = fetch(node, 16, tid, epoch)
    assert consumer.error_code == 0 and consumer.high_watermark == 3 and consumer.records
    for version in (13, 14, 15, 16, 17):
        # A replica id that is no broker of the cluster.
        named = fetch(node, version, tid, epoch, replica=(NOT_A_BROKER, -1))
        assert named.error_code == UNKNOWN_LEADER_EPOCH and not named.records, version
        unnamed = fetch(node, version, tid, -1, replica=(NOT_A_BROKER, -1))
        assert unnamed.error_code == NOT_LEADER_OR_FOLLOWER and not unnamed.records, version
        # The leader's own id is no follower either.
        itself = fetch(node, version, tid, epoch, replica=(leader, -1))
        assert itself.error_code == UNKNOWN_LEADER_EPOCH and not itself.records, version
        # A follower replica is served, up to the log end, with the leader's high watermark.
        served = fetch(node, version, tid, epoch, replica=(follower, -1))
        assert served.error_code == 0 and served.records == consumer.records, version
        assert served.high_watermark == 3
    # A broker epoch older than the follower's registration (every registration's is at least 1).
    stale = fetch(node, 15, tid, epoch, replica=(follower, 0))
    assert stale.error_code == NOT_LEADER_OR_FOLLOWER and not stale.records

    # A registered broker that is not a replica of the partition.
    create(cluster, "alone", 1)
    alone_leader, alone_replicas = leader_and_replicas(cluster, "alone")
    assert alone_replicas == [alone_leader]
    bystander = next(i for i in (1, 2, 3) if i != alone_leader)
    alone_tid = topic_id(cluster.nodes[alone_leader], "alone")
    alone_epoch = current_epoch(cluster, alone_leader, alone_tid)
    refused = fetch(cluster.nodes[alone_leader], 16, alone_tid, alone_epoch, replica=(bystander, -1))
    assert refused.error_code == UNKNOWN_LEADER_EPOCH and not refused.records
    # Consumers are served as before.
    assert fetch(cluster.nodes[alone_leader], 16, alone_tid, alone_epoch).error_code == 0
