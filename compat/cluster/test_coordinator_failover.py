"""Group coordinators move with their `__consumer_offsets` partition, through
confluent-kafka on three nodes: `__consumer_offsets` has three replicas,
offsets a consumer commits are acknowledged once every in-sync replica has
them, and when the broker coordinating the group is killed (kill -9) the
leader of the group's partition elected in its place loads the group from
its replica and coordinates it: the consumer that stays commits again
there, and a consumer that joins afterwards starts exactly where the last
commit left off (nothing read twice, nothing skipped).

Every wait is a deadline on an observed outcome."""

from __future__ import annotations

import signal
import time
import uuid

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import NewTopic

import kwire
from conftest import HOST, Cluster, binary, wait_for

RECORDS = 300
PARTITIONS = 3
DESCRIBE_GROUPS = 15
OFFSET_FETCH = 9
NOT_COORDINATOR = 16


@pytest.fixture
def replicated_cluster(tmp_path):
    binary()
    c = Cluster(tmp_path, {"offsets.topic.replication.factor": "3", "min.insync.replicas": "2"})
    try:
        c.start()
        yield c
    except BaseException:
        print(c.logs())
        raise
    finally:
        c.stop()


def produce(bootstrap: str, topic: str, count: int) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True})
    for i in range(count):
        producer.produce(topic, key=str(i).encode(), value=f"v-{i}".encode(), partition=i % PARTITIONS)
        producer.poll(0)
    assert producer.flush(120) == 0


def consumer(bootstrap: str, group: str) -> Consumer:
    return Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False,
                     "auto.offset.reset": "earliest", "session.timeout.ms": 10000,
                     "heartbeat.interval.ms": 1000})


def read(c: Consumer, count: int, out: list[tuple[int, int]]) -> None:
    """Reads `count` more records, appending (partition, offset) of each to `out`."""
    goal = len(out) + count

    def more():
        for m in c.consume(goal - len(out), timeout=0.5):
            if m.error() is None:
                out.append((m.partition(), m.offset()))
        return len(out) >= goal

    wait_for(f"{count} records", more, deadline=120, every=0)


def commit(c: Consumer) -> None:
    """Commits the consumer's positions synchronously, retrying while the coordinator moves."""
    def done():
        try:
            c.commit(asynchronous=False)
            return True
        except KafkaException as e:
            print("commit:", e)
            return False

    wait_for("the commit to be acknowledged", done, deadline=120, every=0.5)


def offsets_partition(group: str, partitions: int) -> int:
    """The `__consumer_offsets` partition of `group`, as Kafka picks it (Java's String.hashCode)."""
    h = 0
    units = group.encode("utf-16-be")
    for i in range(0, len(units), 2):
        h = (31 * h + int.from_bytes(units[i:i + 2], "big")) & 0xFFFFFFFF
    return (h & 0x7FFFFFFF) % partitions


def coordinator_of(cluster: Cluster, group: str, via: list[int]) -> int:
    """The leader of the group's `__consumer_offsets` partition, as the first of `via` that
    answers reports it. (Metadata only: librdkafka's group admin calls can abort the
    process when a request to a killed broker times out.)"""
    def ask():
        for node_id in via:
            try:
                topic = cluster.nodes[node_id].metadata().topics["__consumer_offsets"]
            except Exception:  # noqa: BLE001 - the next node may answer
                continue
            leader = topic.partitions[offsets_partition(group, len(topic.partitions))].leader
            if leader in via:
                return leader
        return None

    return wait_for(f"the coordinator of {group}", ask, deadline=90)


def group_errors(node, group: str, topic: str) -> tuple[int, int]:
    """The error codes of DescribeGroups v0 and OffsetFetch v1 for `group` (on `topic`'s
    partition 0) as `node` alone answers them."""
    with kwire.Connection(HOST, node.client_port, timeout=30) as c:
        cid = c.send_request(DESCRIBE_GROUPS, 0, kwire.array([group], kwire.string))
        r = c.recv_response(cid)
        r.i32()  # one group
        described = r.i16()
        body = kwire.string(group) + kwire.array([topic], lambda t: kwire.string(t) + kwire.array([0], kwire.i32))
        cid = c.send_request(OFFSET_FETCH, 1, body)
        r = c.recv_response(cid)
        r.i32(), r.string(), r.i32()  # one topic, its name, one partition
        r.i32(), r.i64(), r.string()  # index, offset, metadata
        return described, r.i16()


def offsets_topic_replicas(cluster: Cluster, node_id: int) -> set[int]:
    topic = cluster.nodes[node_id].metadata().topics["__consumer_offsets"]
    return {len(p.replicas) for p in topic.partitions.values()}


def test_a_group_survives_the_death_of_its_coordinator(replicated_cluster):
    cluster = replicated_cluster
    topic = f"orders-{uuid.uuid4().hex[:6]}"
    admin = cluster.nodes[1].admin()
    admin.create_topics([NewTopic(topic, PARTITIONS, 3)])[topic].result(timeout=60)
    produce(cluster.bootstrap, topic, RECORDS)
    group = f"g-{uuid.uuid4().hex[:6]}"

    first = consumer(cluster.bootstrap, group)
    first.subscribe([topic])
    by_first: list[tuple[int, int]] = []
    read(first, 100, by_first)
    commit(first)
    assert wait_for("__consumer_offsets with 3 replicas", lambda: offsets_topic_replicas(cluster, 1) == {3})

    dead = coordinator_of(cluster, group, [1, 2, 3])
    cluster.nodes[dead].kill(signal.SIGKILL)
    alive = [i for i in (1, 2, 3) if i != dead]
    new = coordinator_of(cluster, group, alive)
    assert new in alive

    # Only the new coordinator answers for the group; the other survivor says NOT_COORDINATOR.
    other = next(i for i in alive if i != new)
    assert wait_for("the new coordinator to serve the group",
                    lambda: group_errors(cluster.nodes[new], group, topic) == (0, 0), deadline=90)
    assert group_errors(cluster.nodes[other], group, topic) == (NOT_COORDINATOR, NOT_COORDINATOR)

    # The consumer that stays goes on, and commits on the new coordinator.
    read(first, 100, by_first)
    commit(first)
    partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
    committed = {tp.partition: tp.offset for tp in first.committed(partitions, timeout=60)}
    first.close()
    assert sum(max(o, 0) for o in committed.values()) > 100, committed

    # A new member starts exactly where the last commit left off.
    bootstrap = ",".join(cluster.nodes[i].bootstrap for i in alive)
    second = consumer(bootstrap, group)
    second.subscribe([topic])
    by_second: list[tuple[int, int]] = []
    remaining = RECORDS - sum(max(o, 0) for o in committed.values())
    try:
        read(second, remaining, by_second)
        # Nothing more arrives.
        end = time.monotonic() + 3
        while time.monotonic() < end:
            for m in second.consume(10, timeout=0.5):
                if m.error() is None:
                    by_second.append((m.partition(), m.offset()))
    finally:
        second.close()
    assert len(by_second) == len(set(by_second)), "the new member read records twice"
    expected = {(p, o) for p in range(PARTITIONS) for o in range(max(committed[p], 0), RECORDS // PARTITIONS)}
    assert set(by_second) == expected, "the new member did not start at the committed offsets"
    assert set(by_first) | set(by_second) == {(p, o) for p in range(PARTITIONS) for o in range(RECORDS // PARTITIONS)}

    # The killed broker comes back and joins again.
    cluster.nodes[dead].start()
    cluster.wait_brokers({1, 2, 3}, via=alive)
