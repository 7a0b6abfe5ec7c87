"""Consumer groups with real clients: confluent-kafka (librdkafka), kafka-python
and kcat join groups, split partitions, commit, and resume from committed
offsets, including after a broker restart; admin clients list, describe and
delete groups.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
import uuid

import pytest
from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

TIMEOUT_S = 60


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def create_topic(bootstrap: str, name: str, partitions: int) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(name, partitions, 1)])[name].result(TIMEOUT_S)


def produce(bootstrap: str, topic: str, n: int, start: int = 0) -> None:
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True, "linger.ms": 5})
    for i in range(start, start + n):
        p.produce(topic, key=str(i).encode(), value=f"v{i}".encode())
        if i % 1000 == 0:
            p.poll(0)
    assert p.flush(TIMEOUT_S) == 0


def group_consumer(bootstrap: str, group: str, **extra) -> Consumer:
    conf = {"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
            "enable.auto.commit": False, "session.timeout.ms": 10_000}
    conf.update(extra)
    return Consumer(conf)


def wait_for_assignments(consumers: list[Consumer], partitions: int) -> None:
    """Polls until every consumer has partitions and together they hold all."""
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        for c in consumers:
            assert not [m for m in c.consume(10, 0.1) if m.error() is None]
        owned = [{p.partition for p in c.assignment()} for c in consumers]
        if all(owned) and set().union(*owned) == set(range(partitions)):
            return
    pytest.fail(f"the group did not settle: {owned}")


def drain(consumers: list[Consumer], expected: int, seen: dict) -> None:
    """Polls all consumers round-robin until `expected` distinct values arrived."""
    deadline = time.monotonic() + TIMEOUT_S
    while sum(len(v) for v in seen.values()) < expected and time.monotonic() < deadline:
        for i, c in enumerate(consumers):
            for m in c.consume(500, 0.2):
                assert m.error() is None, m.error()
                seen.setdefault(i, []).append((m.partition(), m.offset(), m.value()))


def test_two_members_split_partitions_and_commit(bootstrap):
    topic, group = unique("grp-split"), unique("g")
    create_topic(bootstrap, topic, 6)
    a, b = group_consumer(bootstrap, group), group_consumer(bootstrap, group)
    a.subscribe([topic])
    b.subscribe([topic])
    wait_for_assignments([a, b], 6)
    produce(bootstrap, topic, 6000)
    seen: dict = {}
    drain([a, b], 6000, seen)
    values = [v for records in seen.values() for (_, _, v) in records]
    assert len(values) == 6000 and len(set(values)) == 6000, "every record exactly once across the group"
    parts_a = {p.partition for p in a.assignment()}
    parts_b = {p.partition for p in b.assignment()}
    assert parts_a and parts_b and not (parts_a & parts_b), "the partitions are split between the members"
    assert parts_a | parts_b == set(range(6))
    a.commit(asynchronous=False)
    b.commit(asynchronous=False)
    committed = a.committed([TopicPartition(topic, p) for p in range(6)], timeout=TIMEOUT_S)
    assert sum(tp.offset for tp in committed) == 6000
    a.close()
    b.close()


def test_resume_from_committed_offsets_after_broker_restart(broker_factory):
    b = broker_factory.start()
    topic, group = unique("grp-resume"), unique("g")
    create_topic(b.bootstrap, topic, 3)
    produce(b.bootstrap, topic, 300)
    c = group_consumer(b.bootstrap, group)
    c.subscribe([topic])
    seen: dict = {}
    drain([c], 300, seen)
    c.commit(asynchronous=False)
    c.close()

    data_dir, port = b.data_dir, b.port
    b.stop_cleanly()
    b2 = broker_factory.start(data_dir=data_dir, port=port)
    produce(b2.bootstrap, topic, 50, start=300)
    c = group_consumer(b2.bootstrap, group)
    c.subscribe([topic])
    seen = {}
    drain([c], 50, seen)
    got = sorted(v for records in seen.values() for (_, _, v) in records)
    assert got == sorted(f"v{i}".encode() for i in range(300, 350)), "resumed exactly after the committed offsets"
    c.close()


def test_member_leaving_hands_its_partitions_over(bootstrap):
    topic, group = unique("grp-leave"), unique("g")
    create_topic(bootstrap, topic, 4)
    a, b = group_consumer(bootstrap, group), group_consumer(bootstrap, group)
    a.subscribe([topic])
    b.subscribe([topic])
    wait_for_assignments([a, b], 4)
    produce(bootstrap, topic, 400)
    seen: dict = {}
    drain([a, b], 400, seen)
    a.commit(asynchronous=False)
    b.commit(asynchronous=False)
    b.close()  # LeaveGroup: a takes over every partition
    deadline = time.monotonic() + TIMEOUT_S
    while len(a.assignment()) < 4 and time.monotonic() < deadline:
        assert not [m for m in a.consume(100, 0.2) if m.error() is None], "everything was consumed already"
    produce(bootstrap, topic, 100, start=400)
    seen = {}
    drain([a], 100, seen)
    assert {p.partition for p in a.assignment()} == set(range(4))
    assert sorted(v for (_, _, v) in seen[0]) == sorted(f"v{i}".encode() for i in range(400, 500))
    a.close()


def test_admin_lists_describes_and_deletes_groups(bootstrap):
    topic, group = unique("grp-admin"), unique("g")
    create_topic(bootstrap, topic, 2)
    produce(bootstrap, topic, 20)
    c = group_consumer(bootstrap, group, **{"client.id": "describe-me"})
    c.subscribe([topic])
    drain([c], 20, {})
    c.commit(asynchronous=False)
    admin = AdminClient({"bootstrap.servers": bootstrap})
    listed = {g.group_id: g for g in admin.list_consumer_groups().result(TIMEOUT_S).valid}
    assert group in listed
    desc = admin.describe_consumer_groups([group])[group].result(TIMEOUT_S)
    assert desc.state.name == "STABLE"
    assert len(desc.members) == 1 and desc.members[0].client_id == "describe-me"
    assert {tp.partition for tp in desc.members[0].assignment.topic_partitions} == {0, 1}
    offsets = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)])[group].result(TIMEOUT_S)
    assert sorted((tp.partition, tp.offset) for tp in offsets.topic_partitions) == [(0, 10), (1, 10)] or \
        sum(tp.offset for tp in offsets.topic_partitions) == 20
    # A group with members cannot be deleted; an empty one can.
    with pytest.raises(Exception):
        admin.delete_consumer_groups([group])[group].result(TIMEOUT_S)
    c.close()
    admin.delete_consumer_groups([group])[group].result(TIMEOUT_S)
    listed = {g.group_id for g in admin.list_consumer_groups().result(TIMEOUT_S).valid}
    assert group not in listed


def test_kafka_python_group_consumer_and_admin(bootstrap):
    from kafka import KafkaAdminClient, KafkaConsumer

    topic, group = unique("grp-kp"), unique("g")
    create_topic(bootstrap, topic, 3)
    produce(bootstrap, topic, 90)
    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group, auto_offset_reset="earliest",
                             enable_auto_commit=False, consumer_timeout_ms=15_000)
    got = [m.value for m in consumer]
    assert sorted(got) == sorted(f"v{i}".encode() for i in range(90))
    consumer.commit()
    consumer.close()
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    listed = admin.list_groups()
    assert group in [g["group_id"] if isinstance(g, dict) else g[0] for g in listed], listed
    described = admin.describe_groups([group])
    assert len(described) == 1
    offsets = admin.list_group_offsets({group: None})[group]
    assert sum(o.offset for o in offsets.values()) == 90
    assert admin.delete_groups([group]) == {group: "OK"}
    assert admin.delete_groups([group]) == {group: "GroupIdNotFoundError"}
    admin.close()


@pytest.mark.skipif(shutil.which("kcat") is None, reason="kcat is not installed (apt-get install kcat)")
def test_kcat_consumes_as_a_group(bootstrap):
    topic, group = unique("grp-kcat"), unique("g")
    create_topic(bootstrap, topic, 2)
    produce(bootstrap, topic, 40)
    out = subprocess.run(["kcat", "-b", bootstrap, "-G", group, "-o", "beginning", "-e", "-f", "%s\n", topic],
                         capture_output=True, text=True, timeout=TIMEOUT_S)
    values = sorted(line for line in out.stdout.splitlines() if line)
    assert values == sorted(f"v{i}" for i in range(40)), out.stderr[-2000:]
