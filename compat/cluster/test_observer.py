"""A broker-only node (process.roles=broker) joins a three-voter cluster as an
observer of the metadata quorum: it is listed by Metadata, leads
partitions and serves produce and consume through confluent-kafka, never
becomes a voter, and after kill -9 and a restart (on a new replication
port) catches up from a snapshot with the topics created while it was
down. The static quorum refuses AddRaftVoter/RemoveRaftVoter with
UNSUPPORTED_VERSION, as Kafka does for kraft.version 0."""

from __future__ import annotations

import re
import signal
import sys
import uuid

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import NewTopic

from conftest import HOST, ROOT, Node, free_ports, wait_for

sys.path.insert(0, str(ROOT / "compat" / "python"))
import kwire  # noqa: E402

UNSUPPORTED_VERSION = 35


def membership(node: Node) -> tuple[list[int], list[int]] | None:
    """The last uniform membership a node logged: (voters, observers)."""
    found = None
    for line in node.log.read_text(errors="replace").splitlines():
        if "metadata quorum membership" in line and "joint=false" in line:
            voters = re.search(r"voters=\[([\d, ]*)\]", line)
            observers = re.search(r"observers=\[([\d, ]*)\]", line)
            if voters and observers:
                ids = lambda m: sorted(int(x) for x in m.group(1).split(",") if x.strip())
                found = (ids(voters), ids(observers))
    return found


def add_observer_node(cluster) -> Node:
    client_port, = free_ports(1)
    node = Node(cluster, 4, client_port, 0)
    node.write_config({
        "process.roles": "broker",
        "listeners": f"PLAINTEXT://{HOST}:{client_port}",
    })
    cluster.nodes[4] = node
    node.start()
    return node


def led_by(node: Node, topic: str, broker: int) -> list[int]:
    md = node.metadata()
    return sorted(p for p, m in md.topics[topic].partitions.items() if m.leader == broker)


def produce_and_consume(bootstrap: str, topic: str, partitions: list[int], tag: str) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    errors = []
    for p in partitions:
        for i in range(5):
            producer.produce(topic, value=f"{tag}-{p}-{i}".encode(), partition=p,
                             on_delivery=lambda e, m: e and errors.append(e))
    assert producer.flush(30) == 0 and not errors, errors
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"g-{uuid.uuid4()}", "enable.auto.commit": False})
    try:
        consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
        want = {f"{tag}-{p}-{i}" for p in partitions for i in range(5)}
        got = set()

        def read():
            msg = consumer.poll(1.0)
            if msg is not None and not msg.error():
                got.add(msg.value().decode())
            return want <= got

        wait_for(f"{len(want)} records of {tag} read back", read)
    finally:
        consumer.close()


def test_a_broker_only_observer_leads_serves_and_catches_up_from_a_snapshot(cluster):
    observer = add_observer_node(cluster)
    try:
        cluster.wait_brokers({1, 2, 3, 4}, via=[1, 2, 3, 4])
        wait_for("node 4 to be an observer, not a voter", lambda: membership(cluster.nodes[1]) == ([1, 2, 3], [4]))

        # Placement gives the new broker leaderships; it serves them.
        futures = cluster.nodes[2].admin().create_topics([NewTopic("observed", 8, 1)], operation_timeout=30)
        futures["observed"].result(timeout=60)
        mine = wait_for("a partition led by node 4", lambda: led_by(cluster.nodes[1], "observed", 4))
        produce_and_consume(observer.bootstrap, "observed", mine, "first")
        # Its own Metadata answer agrees on who leads.
        assert led_by(observer, "observed", 4) == mine

        # Killed; the voters go on past a snapshot (every 25 entries).
        observer.kill(signal.SIGKILL)
        wait_for("node 4 to be fenced out of Metadata", lambda: 4 not in cluster.brokers_seen_by(1))
        # Enough entries that the leader's log no longer reaches back to
        # where node 4 stopped (snapshot every 25, 25 kept behind it).
        names = [f"while-observer-down-{i}" for i in range(60)]
        for i, name in enumerate(names):
            cluster.nodes[1 + i % 3].admin().create_topics([NewTopic(name, 1, 1)], operation_timeout=30)[name].result(timeout=60)
        snapshots = list((cluster.nodes[1].data_dir / "__cluster_metadata").glob("snapshot-*.snap"))
        assert snapshots, "the voters wrote a metadata snapshot"

        log_before = len(observer.log.read_bytes())
        observer.start()
        cluster.wait_brokers({1, 2, 3, 4}, via=[4, 1])
        wait_for("node 4 to know every topic created while it was down",
                 lambda: set(names) <= set(observer.metadata().topics))
        wait_for("node 4 still an observer", lambda: membership(cluster.nodes[1]) == ([1, 2, 3], [4]))
        # At start it restores its own snapshot; then it installs the leader's.
        after = observer.log.read_bytes()[log_before:].decode(errors="replace")
        restored = [int(m) for m in re.findall(r"restored from a snapshot.*?snapshot_index=(\d+)", after)]
        if not restored:
            restored = [int(m) for m in re.findall(r"snapshot_index=(\d+).*?restored from a snapshot", after)]
        assert len(restored) >= 2 and max(restored) > restored[0], restored
        # It leads again and serves.
        futures = cluster.nodes[3].admin().create_topics([NewTopic("observed-again", 8, 1)], operation_timeout=30)
        futures["observed-again"].result(timeout=60)
        mine = wait_for("a new partition led by node 4", lambda: led_by(cluster.nodes[1], "observed-again", 4))
        produce_and_consume(observer.bootstrap, "observed-again", mine, "again")
    except BaseException:
        print(cluster.logs())
        raise


def test_a_static_quorum_refuses_voter_changes_as_kafka_does(cluster):
    node = cluster.nodes[1]
    directory = uuid.uuid4().bytes
    body = kwire.add_raft_voter_v0_body(None, 4, directory, [("CONTROLLER", HOST, 19093)])
    code, message = kwire.raft_voter_request(HOST, node.client_port, kwire.ADD_RAFT_VOTER, body)
    assert code == UNSUPPORTED_VERSION and "controller.quorum.voters" in message, (code, message)
    body = kwire.remove_raft_voter_v0_body(None, 2, directory)
    code, message = kwire.raft_voter_request(HOST, node.client_port, kwire.REMOVE_RAFT_VOTER, body)
    assert code == UNSUPPORTED_VERSION, (code, message)
