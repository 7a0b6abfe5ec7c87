"""The consumer group protocol (KIP-848) with a real client: confluent-kafka
(librdkafka) with ``group.protocol=consumer``. The coordinator computes the
assignment, members reconcile through ConsumerGroupHeartbeat, offsets are
committed with member epochs (OffsetCommit v9), and the group and its
offsets survive a broker restart.
"""

from __future__ import annotations

import time

import pytest
from confluent_kafka import (
    ConsumerGroupState,
    ConsumerGroupTopicPartitions,
    ConsumerGroupType,
    Consumer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient
from groupkit import create_topic, produce, unique

TIMEOUT_S = 60


def member(bootstrap: str, group: str, **extra) -> Consumer:
    conf = {"bootstrap.servers": bootstrap, "group.id": group, "group.protocol": "consumer",
            "auto.offset.reset": "earliest", "enable.auto.commit": False}
    conf.update(extra)
    return Consumer(conf)


def poll_until(consumers: list[Consumer], done, what: str, seen: list | None = None) -> None:
    """Polls every consumer until `done()` holds; messages go to `seen`."""
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        for c in consumers:
            for m in c.consume(500, 0.1):
                assert m.error() is None, m.error()
                if seen is not None:
                    seen.append((m.topic(), m.partition(), m.offset(), m.value()))
        if done():
            return
    owned = [sorted((p.topic, p.partition) for p in c.assignment()) for c in consumers]
    raise AssertionError(f"timed out waiting until {what}; assignments: {owned}")


def partitions(c: Consumer) -> set[int]:
    return {p.partition for p in c.assignment()}


def test_two_members_split_partitions_and_one_takes_over_after_a_leave(bootstrap):
    topic, group = unique("kip848-split"), unique("g")
    create_topic(bootstrap, topic, 6)
    a, b = member(bootstrap, group), member(bootstrap, group)
    a.subscribe([topic])
    b.subscribe([topic])
    poll_until([a, b], lambda: partitions(a) and partitions(b) and partitions(a) | partitions(b) == set(range(6)),
               "both members own partitions")
    assert not partitions(a) & partitions(b), "no partition is owned twice"
    assert {len(partitions(a)), len(partitions(b))} == {3}, "the uniform assignor balances"

    produce(bootstrap, topic, 600)
    seen: list = []
    poll_until([a, b], lambda: len(seen) >= 600, "every record arrived", seen)
    values = [v for (_, _, _, v) in seen]
    assert len(values) == 600 and len(set(values)) == 600, "every record exactly once across the group"
    a.commit(asynchronous=False)
    b.commit(asynchronous=False)

    a.close()  # leaves the group (member epoch -1): b gets every partition
    poll_until([b], lambda: partitions(b) == set(range(6)), "the remaining member owns everything")
    produce(bootstrap, topic, 60, start=600)
    seen = []
    poll_until([b], lambda: len(seen) >= 60, "new records arrived", seen)
    assert sorted(v for (_, _, _, v) in seen) == sorted(f"v{i}".encode() for i in range(600, 660))
    b.close()


def test_commit_and_resume_from_committed_offsets_after_close(bootstrap):
    topic, group = unique("kip848-commit"), unique("g")
    create_topic(bootstrap, topic, 3)
    produce(bootstrap, topic, 300)
    c = member(bootstrap, group)
    c.subscribe([topic])
    seen: list = []
    poll_until([c], lambda: len(seen) >= 300, "all records arrived", seen)
    c.commit(asynchronous=False)  # OffsetCommit v9 with the member epoch
    committed = c.committed([TopicPartition(topic, p) for p in range(3)], timeout=TIMEOUT_S)
    assert sum(tp.offset for tp in committed) == 300
    c.close()

    produce(bootstrap, topic, 30, start=300)
    c = member(bootstrap, group)
    c.subscribe([topic])
    seen = []
    poll_until([c], lambda: len(seen) >= 30, "records after the committed offsets arrived", seen)
    assert sorted(v for (_, _, _, v) in seen) == sorted(f"v{i}".encode() for i in range(300, 330)), \
        "resumed exactly after the committed offsets"
    c.close()


def test_regex_subscription_picks_up_a_topic_created_later(bootstrap):
    prefix, group = unique("kip848re"), unique("g")
    first, later = f"{prefix}-a", f"{prefix}-b"
    create_topic(bootstrap, first, 2)
    create_topic(bootstrap, unique("unrelated"), 1)
    c = member(bootstrap, group)
    c.subscribe([f"^{prefix}.*"])  # sent to the coordinator as SubscribedTopicRegex
    poll_until([c], lambda: {(p.topic, p.partition) for p in c.assignment()} == {(first, 0), (first, 1)},
               "the matching topic is assigned")

    create_topic(bootstrap, later, 3)
    expected = {(first, 0), (first, 1), (later, 0), (later, 1), (later, 2)}
    poll_until([c], lambda: {(p.topic, p.partition) for p in c.assignment()} == expected,
               "the topic created later is assigned too")
    produce(bootstrap, later, 30)
    seen: list = []
    poll_until([c], lambda: len(seen) >= 30, "records of the new topic arrived", seen)
    assert {t for (t, _, _, _) in seen} == {later}
    c.close()


def test_admin_lists_and_describes_consumer_groups(bootstrap):
    topic, group = unique("kip848-admin"), unique("g")
    create_topic(bootstrap, topic, 2)
    c = member(bootstrap, group, **{"client.id": "kip848-describe"})
    c.subscribe([topic])
    poll_until([c], lambda: partitions(c) == {0, 1}, "the member owns both partitions")
    admin = AdminClient({"bootstrap.servers": bootstrap})

    def described():
        return admin.describe_consumer_groups([group])[group].result(TIMEOUT_S)

    deadline = time.monotonic() + TIMEOUT_S
    while described().state != ConsumerGroupState.STABLE and time.monotonic() < deadline:
        c.consume(10, 0.2)
    desc = described()  # ConsumerGroupDescribe
    assert desc.type == ConsumerGroupType.CONSUMER
    assert desc.state == ConsumerGroupState.STABLE
    assert desc.partition_assignor == "uniform"
    assert len(desc.members) == 1 and desc.members[0].client_id == "kip848-describe"
    assert {(tp.topic, tp.partition) for tp in desc.members[0].assignment.topic_partitions} == \
        {(topic, 0), (topic, 1)}

    listed = admin.list_consumer_groups(types={ConsumerGroupType.CONSUMER}).result(TIMEOUT_S).valid
    mine = [g for g in listed if g.group_id == group]
    assert len(mine) == 1 and mine[0].type == ConsumerGroupType.CONSUMER
    assert mine[0].state == ConsumerGroupState.STABLE
    classic_only = admin.list_consumer_groups(types={ConsumerGroupType.CLASSIC}).result(TIMEOUT_S).valid
    assert group not in {g.group_id for g in classic_only}

    # A group with members cannot be deleted; once the member left it can.
    try:
        admin.delete_consumer_groups([group])[group].result(TIMEOUT_S)
        raise AssertionError("a group with a member was deleted")
    except AssertionError:
        raise
    except Exception as e:  # noqa: BLE001 - the client raises KafkaException
        assert "NON_EMPTY_GROUP" in str(e) or "not empty" in str(e).lower(), e
    c.close()
    admin.delete_consumer_groups([group])[group].result(TIMEOUT_S)
    listed = {g.group_id for g in admin.list_consumer_groups().result(TIMEOUT_S).valid}
    assert group not in listed


def test_broker_restart_keeps_the_group_and_committed_offsets(broker_factory):
    b = broker_factory.start()
    topic, group = unique("kip848-restart"), unique("g")
    create_topic(b.bootstrap, topic, 3)
    produce(b.bootstrap, topic, 90)
    c = member(b.bootstrap, group)
    c.subscribe([topic])
    seen: list = []
    poll_until([c], lambda: len(seen) >= 90, "all records arrived", seen)
    c.commit(asynchronous=False)
    admin = AdminClient({"bootstrap.servers": b.bootstrap})
    before = admin.describe_consumer_groups([group])[group].result(TIMEOUT_S)
    member_id = before.members[0].member_id

    # The member stays up while the broker restarts on the same port.
    data_dir, port = b.data_dir, b.port
    b.stop_cleanly()
    b2 = broker_factory.start(data_dir=data_dir, port=port)
    admin = AdminClient({"bootstrap.servers": b2.bootstrap})
    after = admin.describe_consumer_groups([group])[group].result(TIMEOUT_S)
    assert after.type == ConsumerGroupType.CONSUMER
    assert [m.member_id for m in after.members] == [member_id], "the member was rebuilt from __consumer_offsets"
    offsets = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)])[group].result(TIMEOUT_S)
    assert sum(tp.offset for tp in offsets.topic_partitions) == 90

    produce(b2.bootstrap, topic, 30, start=90)
    seen = []
    poll_until([c], lambda: len(seen) >= 30, "the member goes on consuming after the restart", seen)
    assert sorted(v for (_, _, _, v) in seen) == sorted(f"v{i}".encode() for i in range(90, 120))
    assert partitions(c) == {0, 1, 2}
    c.close()

    # A new member of the same group resumes from the committed offsets.
    c = member(b2.bootstrap, group)
    c.subscribe([topic])
    seen = []
    poll_until([c], lambda: partitions(c) == {0, 1, 2}, "the new member owns every partition", seen)
    time.sleep(1)
    for m in c.consume(500, 1.0):
        seen.append((m.topic(), m.partition(), m.offset(), m.value()))
    assert all(v not in {f"v{i}".encode() for i in range(90)} for (_, _, _, v) in seen), \
        "nothing before the committed offsets is read again"
    c.close()


@pytest.mark.parametrize("partition_count", [6, 12])
def test_a_member_that_stops_polling_loses_its_partitions_to_the_others(broker_factory, partition_count):
    """Three members consume 30,000 records; the third stops calling poll()
    without closing just as a fourth joins. The coordinator must hand the
    third member's partitions to the others: it fences the member when it
    does not revoke within its rebalance timeout (max.poll.interval.ms, sent
    by the client) or when its heartbeats stop (librdkafka stops them once
    max.poll.interval.ms passes without a poll) and its session expires.
    Every record must then be consumed by the others. With 12 partitions the
    third member has one to give up when the fourth joins (the rebalance
    timeout path); with 6 it may keep both and only its session expires.

    The third member stops only after it has served its first assignment and
    read a record: librdkafka arms max.poll.interval.ms when the application
    first serves an assignment, so a member that never does keeps
    heartbeating and keeps its partitions, on any broker."""
    b = broker_factory.start(overrides={"group.consumer.session.timeout.ms": "10000",
                                        "group.consumer.heartbeat.interval.ms": "1000"})
    topic, group = unique("kip848-stuck"), unique("g")
    total = 30_000
    create_topic(b.bootstrap, topic, partition_count)
    produce(b.bootstrap, topic, total)
    values: set[bytes] = set()

    def poll(c: Consumer) -> int:
        got = 0
        for m in c.consume(500, 0.1):
            assert m.error() is None, m.error()
            values.add(m.value())
            got += 1
        return got

    conf = {"max.poll.interval.ms": 10_000}
    first, second, third = (member(b.bootstrap, group, **conf) for _ in range(3))
    for c in (first, second, third):
        c.subscribe([topic])
    deadline = time.monotonic() + TIMEOUT_S
    third_read = 0
    while not (all(partitions(c) for c in (first, second, third)) and third_read):
        assert time.monotonic() < deadline, "the three members did not all start consuming"
        poll(first)
        poll(second)
        if not third_read:  # the third stops right after its first records
            third_read = poll(third)
    stuck = partitions(third)

    # The third member stops polling (it is not closed); a fourth joins.
    fourth = member(b.bootstrap, group, **conf)
    fourth.subscribe([topic])
    live = (first, second, fourth)
    deadline = time.monotonic() + 180

    def others_own_everything() -> bool:
        return set().union(*(partitions(c) for c in live)) == set(range(partition_count))

    while len(values) < total or not others_own_everything():
        assert time.monotonic() < deadline, (
            f"{len(values)} of {total} records consumed; the stuck member owned {sorted(stuck)}; "
            f"the others own {[sorted(partitions(c)) for c in live]}")
        for c in live:
            poll(c)
    assert values == {f"v{i}".encode() for i in range(total)}
    for c in live:
        c.close()
    third.close()
