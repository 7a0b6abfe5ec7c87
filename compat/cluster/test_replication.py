"""Replication on a three-node cluster, through confluent-kafka: a topic with
replication factor 3 and min.insync.replicas=2 takes acks=all writes, every
replica holds them byte for byte, the leader's death (kill -9) elects a new
leader from the ISR with every acknowledged record, the producer's retries
finish there, a consumer reads each acknowledged record exactly once in
order, and the killed node rejoins the ISR once it is back. With fewer
in-sync replicas than min.insync.replicas, acks=all is refused with
NOT_ENOUGH_REPLICAS while acks=1 is still taken.

Every wait is a deadline on an observed outcome."""

from __future__ import annotations

import signal
import uuid

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import NewTopic

from conftest import wait_for

RECORDS = 300


def create(cluster, name: str, configs: dict[str, str]) -> None:
    admin = cluster.nodes[1].admin()
    futures = admin.create_topics([NewTopic(name, 1, 3, config=configs)], operation_timeout=30)
    futures[name].result(timeout=60)


def partition_meta(cluster, name: str, via: list[int]):
    """Partition 0 of `name` as the first of `via` that answers reports it."""
    for node_id in via:
        try:
            topic = cluster.nodes[node_id].metadata().topics.get(name)
        except Exception:  # noqa: BLE001 - a node that does not answer: ask the next
            continue
        if topic is not None and 0 in topic.partitions:
            return topic.partitions[0]
    return None


def leader_with_isr(cluster, name: str, isr: set[int], via: list[int]) -> int:
    def ready():
        p = partition_meta(cluster, name, via)
        return p.leader if p is not None and p.leader >= 1 and set(p.isrs) == isr else None

    return wait_for(f"{name} led with ISR {sorted(isr)}", ready, deadline=90)


def segment_bytes(node, name: str) -> bytes:
    files = sorted((node.data_dir / f"{name}-0").glob("*.log"))
    return b"".join(f.read_bytes() for f in files)


def produce(bootstrap: str, name: str, values: list[str], **extra) -> list:
    """Produces `values` in order; returns each delivery report (error or offset)."""
    reports: dict[int, object] = {}
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
                         "linger.ms": 5, **extra})

    def done(i):
        return lambda err, msg: reports.__setitem__(i, err if err is not None else msg.offset())

    for i, v in enumerate(values):
        producer.produce(name, value=v.encode(), partition=0, on_delivery=done(i))
        producer.poll(0)
    remaining = producer.flush(120)
    assert remaining == 0, f"{remaining} records undelivered"
    return [reports[i] for i in range(len(values))]


def consume_all(bootstrap: str, name: str, expected: int) -> list[str]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"g-{uuid.uuid4()}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.assign([TopicPartition(name, 0, 0)])
    out: list[str] = []

    def read():
        for m in consumer.consume(500, timeout=1.0):
            if m.error() is None:
                out.append(m.value().decode())
        return len(out) >= expected

    try:
        wait_for(f"{expected} records of {name}", read, deadline=90, every=0)
        # Nothing more than expected arrives (no duplicate).
        for m in consumer.consume(500, timeout=2.0):
            if m.error() is None:
                out.append(m.value().decode())
    finally:
        consumer.close()
    return out


def test_acks_all_is_replicated_survives_the_leaders_death_and_the_replica_rejoins(cluster):
    name = "replicated"
    create(cluster, name, {"min.insync.replicas": "2"})
    every = [1, 2, 3]
    leader = leader_with_isr(cluster, name, {1, 2, 3}, every)

    first = [f"a-{i}" for i in range(RECORDS)]
    reports = produce(cluster.bootstrap, name, first)
    assert all(isinstance(r, int) for r in reports), [r for r in reports if not isinstance(r, int)][:3]
    assert reports == list(range(RECORDS))

    # Every replica holds the leader's batches byte for byte.
    def identical():
        logs = [segment_bytes(cluster.nodes[i], name) for i in every]
        return len(logs[0]) > 0 and logs[0] == logs[1] == logs[2]

    wait_for("every replica to hold the same log", identical, deadline=60)

    cluster.nodes[leader].kill(signal.SIGKILL)
    alive = [i for i in every if i != leader]
    new_leader = wait_for(
        "a new leader from the ISR",
        lambda: (p := partition_meta(cluster, name, alive)) is not None and p.leader in alive and p.leader,
        deadline=90,
    )
    assert new_leader != leader

    second = [f"b-{i}" for i in range(RECORDS)]
    bootstrap = ",".join(cluster.nodes[i].bootstrap for i in alive)
    reports = produce(bootstrap, name, second)
    failed = [r for r in reports if not isinstance(r, int)]
    assert not failed, failed[:3]

    assert consume_all(bootstrap, name, 2 * RECORDS) == first + second

    cluster.nodes[leader].start()
    leader_with_isr(cluster, name, {1, 2, 3}, alive)


def test_a_leader_restarted_within_its_session_gives_up_its_leadership(cluster):
    """A leader killed (kill -9) and restarted at once registers again
    before its session lapses, so it is never fenced. Its partitions must
    still get a new leader (a new leader epoch): a restarted replica may
    have lost the unflushed tail of the epoch it led, which its followers
    kept, and must never lead in that epoch again. It rejoins the ISR once
    it caught up, and nothing acknowledged is lost. (It kept leading in the
    same epoch: the controller only moved leaderships off fenced brokers.)"""
    name = "restarted"
    create(cluster, name, {"min.insync.replicas": "2"})
    every = [1, 2, 3]
    leader = leader_with_isr(cluster, name, {1, 2, 3}, every)
    first = [f"a-{i}" for i in range(RECORDS)]
    assert produce(cluster.bootstrap, name, first) == list(range(RECORDS))

    cluster.nodes[leader].kill(signal.SIGKILL)
    cluster.nodes[leader].start()
    others = [i for i in every if i != leader]
    new_leader = wait_for(
        f"partition 0 led by another node than {leader}, restarted",
        lambda: (p := partition_meta(cluster, name, others)) is not None and p.leader in others and p.leader,
        deadline=60,
    )
    assert new_leader != leader
    leader_with_isr(cluster, name, {1, 2, 3}, every)

    second = [f"b-{i}" for i in range(RECORDS)]
    reports = produce(cluster.bootstrap, name, second)
    assert all(isinstance(r, int) for r in reports), [r for r in reports if not isinstance(r, int)][:3]
    assert consume_all(cluster.bootstrap, name, 2 * RECORDS) == first + second


def test_acks_all_is_refused_while_the_isr_is_below_min_insync_replicas(cluster):
    # A node stays down (two of three would take the metadata quorum with
    # them): with min.insync.replicas=3 the shrunk ISR of two is too small.
    name = "too-few-replicas"
    every = [1, 2, 3]
    cluster.wait_brokers({1, 2, 3})
    create(cluster, name, {"min.insync.replicas": "3"})
    leader = leader_with_isr(cluster, name, {1, 2, 3}, every)
    assert produce(cluster.bootstrap, name, ["while-whole"]) == [0]

    down = next(i for i in every if i != leader)
    cluster.nodes[down].kill(signal.SIGKILL)
    alive = [i for i in every if i != down]
    leader_with_isr(cluster, name, set(alive), alive)
    bootstrap = ",".join(cluster.nodes[i].bootstrap for i in alive)

    refused = produce(bootstrap, name, ["refused"], retries=0, **{"enable.idempotence": False})
    assert isinstance(refused[0], KafkaError) and refused[0].code() == KafkaError.NOT_ENOUGH_REPLICAS, refused

    taken = produce(bootstrap, name, ["acks-1"], acks="1", **{"enable.idempotence": False})
    assert isinstance(taken[0], int), taken

    cluster.nodes[down].start()
    leader_with_isr(cluster, name, {1, 2, 3}, alive)


def test_the_leader_takes_a_stalled_follower_out_of_the_isr_and_back(tmp_path):
    """A follower that stops fetching (SIGSTOP) while its broker's session
    has not expired leaves the ISR after replica.lag.time.max.ms, by the
    leader's AlterPartition: acks=all writes go on with the two replicas
    left. Resumed, it catches up and the leader brings it back."""
    from kraft import Cluster

    cluster = Cluster(tmp_path, {"replica.lag.time.max.ms": "2000", "broker.session.timeout.ms": "120000"})
    stalled = None
    try:
        cluster.start()
        name = "stalls"
        create(cluster, name, {"min.insync.replicas": "2"})
        every = [1, 2, 3]
        leader = leader_with_isr(cluster, name, {1, 2, 3}, every)
        assert produce(cluster.bootstrap, name, ["before"]) == [0]

        stalled = next(i for i in every if i != leader)
        cluster.nodes[stalled].process.send_signal(signal.SIGSTOP)
        alive = [i for i in every if i != stalled]
        bootstrap = ",".join(cluster.nodes[i].bootstrap for i in alive)
        # Waits for the shrink: the high watermark cannot pass the stalled replica before.
        reports = produce(bootstrap, name, [f"during-{i}" for i in range(20)])
        assert reports == list(range(1, 21)), reports[:3]
        leader_with_isr(cluster, name, set(alive), alive)
        # The broker itself is still registered and unfenced: the leader, not
        # the controller's session timeout, took it out.
        wait_for(f"broker {stalled} listed as registered and unfenced",
                 lambda: stalled in cluster.nodes[leader].metadata().brokers)

        cluster.nodes[stalled].process.send_signal(signal.SIGCONT)
        stalled = None
        leader_with_isr(cluster, name, {1, 2, 3}, every)
    finally:
        if stalled is not None:
            cluster.nodes[stalled].process.send_signal(signal.SIGCONT)
        cluster.stop()
