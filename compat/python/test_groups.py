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

import pytest
from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import AdminClient
from groupkit import create_topic, produce, unique

TIMEOUT_S = 60


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


def test_static_member_is_gone_exactly_when_its_session_times_out(bootstrap):
    """A static member that closes sends no LeaveGroup: it stays in the group
    until its session times out, counted from its last heartbeat or commit.
    It must still be there a second before that deadline, and a DeleteGroups
    arriving just after it must find the group empty (librdkafka's 0081 waits
    exactly the session timeout before deleting)."""
    topic, group = unique("grp-static-expiry"), unique("g")
    create_topic(bootstrap, topic, 1)
    produce(bootstrap, topic, 10)
    session_s = 6.0
    c = group_consumer(bootstrap, group, **{"group.instance.id": "static-1",
                                            "session.timeout.ms": int(session_s * 1000)})
    c.subscribe([topic])
    drain([c], 10, {})
    before_commit = time.monotonic()
    c.commit(asynchronous=False)
    c.close()
    closed = time.monotonic()
    admin = AdminClient({"bootstrap.servers": bootstrap})

    time.sleep(max(0.0, before_commit + session_s - 1.0 - time.monotonic()))
    desc = admin.describe_consumer_groups([group])[group].result(TIMEOUT_S)
    assert [m.group_instance_id for m in desc.members] == ["static-1"], "expired before its session timeout"

    time.sleep(max(0.0, closed + session_s + 0.02 - time.monotonic()))
    admin.delete_consumer_groups([group])[group].result(TIMEOUT_S)
    listed = {g.group_id for g in admin.list_consumer_groups().result(TIMEOUT_S).valid}
    assert group not in listed


def _kp_produce_per_partition(bootstrap: str, topic: str, partitions: int, start: int, count: int) -> None:
    """kafka-python producer: values f"{p}-{j}" for j in [start, start + count) into each partition p."""
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    futures = [producer.send(topic, value=f"{p}-{j}".encode(), partition=p)
               for p in range(partitions) for j in range(start, start + count)]
    producer.flush(TIMEOUT_S)
    offsets = [f.get(TIMEOUT_S) for f in futures]
    producer.close()
    for p in range(partitions):
        got = [m.offset for m in offsets if m.partition == p]
        assert got == list(range(start, start + count)), f"partition {p}: offsets {got[:3]}..{got[-3:]}"


def _kp_consumer(bootstrap: str, topic: str, group: str, client_id: str):
    """A kafka-python group member that knows the topic's partitions before it
    first joins.

    Without that, a leader whose JoinGroup is answered before its first
    metadata response (the broker started by `tributary start` has no initial
    rebalance delay) assigns nothing, rejoins once the metadata arrives, and
    kafka-python 3.0.12 can then drop that second join half-way: if a poll()
    times out between its JoinGroup and SyncGroup responses, the next poll no
    longer sees a rejoin as needed, never completes the join and never
    re-enables its heartbeat, so the broker expires the member while the client
    believes it is in the group with no partitions.
    """
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group, client_id=client_id,
                             auto_offset_reset="earliest", enable_auto_commit=False,
                             session_timeout_ms=10_000, heartbeat_interval_ms=500)
    assert consumer.partitions_for_topic(topic), f"no metadata for {topic}"
    return consumer


def _kp_drain(consumers: dict, want: int) -> dict:
    """Polls the kafka-python consumers round-robin until `want` records arrived in total."""
    got: dict = {name: [] for name in consumers}
    deadline = time.monotonic() + TIMEOUT_S
    while sum(len(v) for v in got.values()) < want and time.monotonic() < deadline:
        for name, c in consumers.items():
            for records in c.poll(timeout_ms=100).values():
                got[name].extend(records)
    total = sum(len(v) for v in got.values())
    assert total == want, f"expected {want} records, got {total} ({ {n: len(v) for n, v in got.items()} })"
    return got


class _KpPoller(threading.Thread):
    """Polls one kafka-python consumer in its own thread, as an application
    would: a member blocked in a rebalance must not keep another member of the
    same process from rejoining."""

    def __init__(self, consumer):
        super().__init__(daemon=True)
        self.consumer = consumer
        self.records: list = []
        self.owned: set = set()
        self.error: BaseException | None = None
        self.stopping = threading.Event()

    def run(self):
        try:
            while not self.stopping.is_set():
                for records in self.consumer.poll(timeout_ms=100).values():
                    self.records.extend(records)
                self.owned = {tp.partition for tp in self.consumer.assignment()}
        except BaseException as e:  # noqa: BLE001 - reported by the test
            self.error = e

    def stop(self):
        self.stopping.set()
        self.join(TIMEOUT_S)
        assert not self.is_alive(), "the poll thread did not stop"


def test_kafka_python_group_consumer_and_admin(bootstrap):
    from kafka import KafkaAdminClient

    topic, group = unique("grp-kp"), unique("g")
    create_topic(bootstrap, topic, 3)
    produce(bootstrap, topic, 90)
    consumer = _kp_consumer(bootstrap, topic, group, "kp-basic")
    got = [m.value for m in _kp_drain({"c": consumer}, 90)["c"]]
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


def test_kafka_python_members_split_commit_and_fresh_consumer_resumes(bootstrap):
    from kafka import KafkaAdminClient, TopicPartition as KTP
    from kafka.structs import OffsetAndMetadata

    topic, group, partitions, per = unique("grp-kp-split"), unique("g"), 4, 100
    create_topic(bootstrap, topic, partitions)
    members = {"a": _kp_consumer(bootstrap, topic, group, "kp-a"), "b": _kp_consumer(bootstrap, topic, group, "kp-b")}
    pollers = {n: _KpPoller(c) for n, c in members.items()}
    try:
        for t in pollers.values():
            t.start()

        def wait(what, cond):
            deadline = time.monotonic() + TIMEOUT_S
            while not cond():
                errors = {n: t.error for n, t in pollers.items() if t.error}
                assert not errors, f"a consumer failed: {errors}"
                assert time.monotonic() < deadline, (
                    f"timed out waiting until {what}: owned {[t.owned for t in pollers.values()]}, "
                    f"records {[len(t.records) for t in pollers.values()]}")
                time.sleep(0.05)

        # Join before there is anything to read, so that both members consume.
        def settled():
            a, b = pollers["a"].owned, pollers["b"].owned
            return a and b and not (a & b) and a | b == set(range(partitions))

        wait("the members share the partitions", settled)
        _kp_produce_per_partition(bootstrap, topic, partitions, 0, per)
        wait("every record was consumed", lambda: sum(len(t.records) for t in pollers.values()) >= partitions * per)
        for t in pollers.values():
            t.stop()
        owned = {n: t.owned for n, t in pollers.items()}
        assert settled(), f"the assignment changed while consuming: {owned}"
        for n, t in pollers.items():
            outside = {r.partition for r in t.records} - owned[n]
            assert not outside, f"member {n} owns {owned[n]} but read partitions {outside}"
        values = sorted(r.value for t in pollers.values() for r in t.records)
        assert values == sorted(f"{p}-{j}".encode() for p in range(partitions) for j in range(per)), \
            "every record exactly once across the group"
        # Each member commits a different offset in the middle of each of its partitions.
        commit_at = {p: 60 + p for p in range(partitions)}
        for n, c in members.items():
            c.commit({KTP(topic, p): OffsetAndMetadata(commit_at[p], "", -1) for p in owned[n]})
    finally:
        for t in pollers.values():
            t.stopping.set()
            t.join(TIMEOUT_S)
        for c in members.values():
            c.close(autocommit=False)  # LeaveGroup

    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        offsets = admin.list_group_offsets({group: None})[group]
        assert {tp.partition: om.offset for tp, om in offsets.items()} == commit_at

        fresh = _kp_consumer(bootstrap, topic, group, "kp-fresh")
        try:
            want = sum(per - commit_at[p] for p in range(partitions))
            records = _kp_drain({"fresh": fresh}, want)["fresh"]
            first: dict = {}
            for r in records:
                first.setdefault(r.partition, r.offset)
            assert first == commit_at, f"the fresh consumer started at {first}, committed were {commit_at}"
            assert sorted(r.value for r in records) == sorted(
                f"{p}-{j}".encode() for p in range(partitions) for j in range(commit_at[p], per))
            fresh.commit()
        finally:
            fresh.close(autocommit=False)
        offsets = admin.list_group_offsets({group: None})[group]
        assert {tp.partition: om.offset for tp, om in offsets.items()} == {p: per for p in range(partitions)}
    finally:
        admin.close()


def test_kafka_python_admin_on_live_and_empty_group(bootstrap):
    from kafka import KafkaAdminClient, TopicPartition as KTP
    from kafka import errors as kerrors

    topic, group, partitions = unique("grp-kp-admin"), unique("g"), 3
    create_topic(bootstrap, topic, partitions)
    _kp_produce_per_partition(bootstrap, topic, partitions, 0, 10)
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    consumer = _kp_consumer(bootstrap, topic, group, "kp-live")
    try:
        _kp_drain({"live": consumer}, partitions * 10)
        consumer.commit()

        desc = admin.describe_groups([group])[group]
        assert desc["error"] is None, desc
        assert (desc["group_state"], desc["protocol_type"]) == ("Stable", "consumer"), desc
        assert [m["client_id"] for m in desc["members"]] == ["kp-live"], desc
        member = desc["members"][0]
        assert member["member_metadata"]["topics"] == [topic], member
        assigned = {(a["topic"], p) for a in member["member_assignment"]["assigned_partitions"] for p in a["partitions"]}
        assert assigned == {(topic, p) for p in range(partitions)}, member

        # A group with a member cannot be deleted, nor can offsets of a topic it subscribes to.
        assert admin.delete_groups([group]) == {group: "NonEmptyGroupError"}
        res = admin.delete_group_offsets(group, [KTP(topic, 0)])
        assert res == {KTP(topic, 0): kerrors.GroupSubscribedToTopicError}, res
    finally:
        consumer.close(autocommit=False)
    try:
        listed = {g["group_id"]: g for g in admin.list_groups()}
        assert listed[group]["group_state"] == "Empty", listed[group]
        desc = admin.describe_groups([group])[group]
        assert (desc["group_state"], desc["members"]) == ("Empty", []), desc

        # Once empty: offsets of one partition can be deleted, then the group.
        res = admin.delete_group_offsets(group, [KTP(topic, 0)])
        assert res == {KTP(topic, 0): kerrors.NoError}, res
        left = admin.list_group_offsets({group: None})[group]
        assert {tp.partition: om.offset for tp, om in left.items()} == {1: 10, 2: 10}
        assert admin.delete_groups([group]) == {group: "OK"}
        assert group not in {g["group_id"] for g in admin.list_groups()}
        assert admin.describe_groups([group])[group]["group_state"] == "Dead"
    finally:
        admin.close()
