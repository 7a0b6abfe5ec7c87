"""A dead broker's partitions move without waiting for its session to expire.

Every cluster here runs with broker.session.timeout.ms at ten minutes, so
missed heartbeats fence nobody while a test runs: a partition whose leader
was killed gets a new leader only because the active controller found the
dead process's listener refusing connections (crates/broker/src/death_watch.rs).
A paused process still accepts connections (its kernel does): it keeps its
leaderships until its session would expire.

Through confluent-kafka: acks=all idempotent producers finish on the new
leader, every acknowledged record is read back once. Every wait is a
deadline on an observed outcome, far below the session timeout."""

from __future__ import annotations

import signal
import time
import uuid

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import NewTopic

from conftest import started_cluster, wait_for

SESSION = {"broker.session.timeout.ms": "600000", "broker.heartbeat.interval.ms": "500"}
# Far below the session timeout: only evidence of death can move a partition in time.
MOVE_DEADLINE = 60.0


@pytest.fixture
def cluster(tmp_path):
    yield from started_cluster(tmp_path, SESSION)


def create(cluster, name: str) -> None:
    admin = cluster.nodes[1].admin()
    futures = admin.create_topics([NewTopic(name, 3, 3, config={"min.insync.replicas": "2"})], operation_timeout=30)
    futures[name].result(timeout=60)


def partitions(cluster, name: str, via: list[int]) -> dict:
    """The topic's partitions as the first node of `via` that answers reports them."""
    for node_id in via:
        try:
            topic = cluster.nodes[node_id].metadata().topics.get(name)
        except Exception:  # noqa: BLE001 - a node that does not answer: ask the next
            continue
        if topic is not None and len(topic.partitions) == 3:
            return topic.partitions
    return {}


def fully_replicated(cluster, name: str) -> dict:
    def ready():
        parts = partitions(cluster, name, [1, 2, 3])
        ok = parts and all(p.leader >= 1 and sorted(p.isrs) == [1, 2, 3] for p in parts.values())
        return parts if ok else None

    return wait_for(f"{name} led everywhere with a full ISR", ready, deadline=90)


def produce(bootstrap: str, name: str, partition: int, values: list[str]) -> list:
    reports = []
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True, "linger.ms": 0})
    for v in values:
        p.produce(name, value=v.encode(), partition=partition,
                  on_delivery=lambda err, msg: reports.append((err, None if err else msg.value().decode())))
        p.poll(0)
    assert p.flush(MOVE_DEADLINE) == 0, "records still unacknowledged"
    return reports


def read_back(bootstrap: str, name: str, partition: int, expected: int) -> list[str]:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"g-{uuid.uuid4().hex[:6]}",
                  "enable.auto.commit": False})
    c.assign([TopicPartition(name, partition, 0)])
    out: list[str] = []
    end = time.monotonic() + MOVE_DEADLINE
    try:
        while len(out) < expected and time.monotonic() < end:
            for m in c.consume(500, 0.5):
                if m.error() is None:
                    out.append(m.value().decode())
    finally:
        c.close()
    return out


def kill_leader_and_check(cluster, name: str, partition: int, victim: int) -> None:
    survivors = [i for i in (1, 2, 3) if i != victim]
    bootstrap = ",".join(cluster.nodes[i].bootstrap for i in survivors)
    before = [f"before-{i}" for i in range(50)]
    assert all(err is None for err, _ in produce(cluster.bootstrap, name, partition, before))
    cluster.nodes[victim].kill(signal.SIGKILL)

    def moved():
        p = partitions(cluster, name, survivors).get(partition)
        return p if p is not None and p.leader in survivors and victim not in p.isrs else None

    p = wait_for(f"partition {partition} to leave killed broker {victim}", moved, deadline=MOVE_DEADLINE)
    assert set(p.isrs) == set(survivors)
    after = [f"after-{i}" for i in range(50)]
    reports = produce(bootstrap, name, partition, after)
    assert [e for e, _ in reports if e is not None] == []
    assert read_back(bootstrap, name, partition, 100) == before + after
    wait_for(f"the survivors to drop fenced broker {victim}",
             lambda: all(victim not in cluster.brokers_seen_by(i) for i in survivors), deadline=MOVE_DEADLINE)
    logs = "".join(cluster.nodes[i].log.read_text(errors="replace") for i in survivors)
    assert "the broker's listener refuses connections: fencing" in logs


def test_a_killed_leaders_partition_moves_long_before_its_session_expires(cluster):
    name = f"ff-{uuid.uuid4().hex[:8]}"
    create(cluster, name)
    parts = fully_replicated(cluster, name)
    controller = cluster.controller(via=1)
    partition, victim = next((i, p.leader) for i, p in sorted(parts.items()) if p.leader != controller)
    kill_leader_and_check(cluster, name, partition, victim)


def test_a_killed_controllers_partition_moves_once_a_new_controller_leads(cluster):
    name = f"ffc-{uuid.uuid4().hex[:8]}"
    create(cluster, name)
    parts = fully_replicated(cluster, name)
    controller = cluster.controller(via=1)
    led = [i for i, p in sorted(parts.items()) if p.leader == controller]
    assert led, f"the controller {controller} leads none of {parts}"
    kill_leader_and_check(cluster, name, led[0], controller)


def test_a_paused_leader_keeps_its_partitions_until_its_session_expires(cluster):
    name = f"ffp-{uuid.uuid4().hex[:8]}"
    create(cluster, name)
    parts = fully_replicated(cluster, name)
    controller = cluster.controller(via=1)
    partition, victim = next((i, p.leader) for i, p in sorted(parts.items()) if p.leader != controller)
    survivors = [i for i in (1, 2, 3) if i != victim]
    proc = cluster.nodes[victim].process
    proc.send_signal(signal.SIGSTOP)
    try:
        # A refusal would move it within a second; a paused process's kernel still accepts.
        time.sleep(6)
        p = partitions(cluster, name, survivors).get(partition)
        assert p is not None and p.leader == victim, f"partition {partition} left paused broker {victim}: {p}"
        assert victim in cluster.brokers_seen_by(survivors[0])
    finally:
        proc.send_signal(signal.SIGCONT)
    fully_replicated(cluster, name)
