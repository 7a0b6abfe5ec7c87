"""aiokafka (asyncio client, its own protocol implementation) against Tributary:
a produce/fetch round trip with keys, headers and compression codecs, and a
consumer group whose members split the partitions, commit, leave, and whose
committed offsets a new member resumes from.

The tests are plain functions that drive their coroutines with asyncio.run.
"""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.codec import has_lz4, has_zstd

TIMEOUT_S = 60


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, timeout=2 * TIMEOUT_S))


async def create_topic(bootstrap: str, topic: str, partitions: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, partitions, 1)])
    finally:
        await admin.close()


async def committed_by_admin(bootstrap: str, group: str) -> dict[int, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    return {tp.partition: om.offset for tp, om in offsets.items()}


async def produce_per_partition(bootstrap: str, topic: str, partitions: int, start: int, count: int) -> None:
    """Values f"{p}-{j}" for j in [start, start + count) into each partition p."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=5)
    await producer.start()
    try:
        futures = [await producer.send(topic, value=f"{p}-{j}".encode(), key=f"k{j}".encode(), partition=p)
                   for p in range(partitions) for j in range(start, start + count)]
        metas = await asyncio.gather(*futures)
    finally:
        await producer.stop()
    for p in range(partitions):
        offs = [m.offset for m in metas if m.partition == p]
        assert offs == list(range(start, start + count)), f"partition {p}: offsets {offs[:3]}..{offs[-3:]}"


async def consume_until(consumers: dict[str, AIOKafkaConsumer], want: int) -> dict[str, list]:
    """Polls every consumer concurrently until `want` records arrived in total."""
    got: dict[str, list] = {name: [] for name in consumers}
    deadline = time.monotonic() + TIMEOUT_S

    async def loop(name: str, c: AIOKafkaConsumer) -> None:
        while sum(len(v) for v in got.values()) < want and time.monotonic() < deadline:
            batch = await c.getmany(timeout_ms=200)
            for records in batch.values():
                got[name].extend(records)

    await asyncio.gather(*(loop(n, c) for n, c in consumers.items()))
    total = sum(len(v) for v in got.values())
    assert total == want, f"expected {want} records, got {total} ({ {n: len(v) for n, v in got.items()} })"
    return got


CODECS = [
    None,
    "gzip",
    pytest.param("lz4", marks=pytest.mark.skipif(not has_lz4(), reason="no lz4 support (cramjam) installed")),
    pytest.param("zstd", marks=pytest.mark.skipif(not has_zstd(), reason="no zstd support (cramjam) installed")),
]


@pytest.mark.parametrize("codec", CODECS, ids=lambda c: str(c or "none"))
def test_aiokafka_round_trip_keys_headers_codec(bootstrap, codec):
    run(_round_trip(bootstrap, codec))


async def _round_trip(bootstrap: str, codec: str | None) -> None:
    topic, partitions, n = unique("aio-rt"), 3, 900
    await create_topic(bootstrap, topic, partitions)
    expected = []
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True,
                                compression_type=codec, linger_ms=10)
    await producer.start()
    try:
        futures = []
        for i in range(n):
            key = None if i % 10 == 0 else f"key-{i}".encode()
            value = b"" if i % 17 == 0 else (f"value-{i}-" + "abc" * (i % 40)).encode()
            headers = [("idx", str(i).encode()), ("codec", str(codec).encode())]
            if i % 3 == 0:
                headers.append(("empty", b""))
            expected.append((i % partitions, key, value, headers))
            futures.append(await producer.send(topic, value=value, key=key, headers=headers, partition=i % partitions))
        metas = await asyncio.gather(*futures)
    finally:
        await producer.stop()
    for p in range(partitions):
        offs = [m.offset for m in metas if m.partition == p]
        assert offs == list(range(len(offs))), f"partition {p}: acknowledged offsets are not 0..{len(offs) - 1}"
    want = {(m.partition, m.offset): e for m, e in zip(metas, expected)}

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                                auto_offset_reset="earliest")
    await consumer.start()
    try:
        consumer.assign([TopicPartition(topic, p) for p in range(partitions)])
        await consumer.seek_to_beginning()
        got = (await consume_until({"reader": consumer}, n))["reader"]
    finally:
        await consumer.stop()
    mismatches = []
    for m in got:
        p, key, value, headers = want.pop((m.partition, m.offset), (None,) * 4)
        if (m.key, m.value, list(m.headers)) != (key, value, headers):
            mismatches.append(f"{m.partition}/{m.offset}: got {(m.key, m.value[:20], list(m.headers))}, "
                              f"sent {(key, (value or b'')[:20], headers)}")
    assert not mismatches, f"{len(mismatches)} records differ, e.g.:\n" + "\n".join(mismatches[:5])
    assert not want, f"records never read back: {sorted(want)[:10]}"


def test_aiokafka_group_split_commit_and_resume(bootstrap):
    run(_group_split_commit_resume(bootstrap))


def group_consumer(bootstrap: str, topic: str, group: str, client_id: str) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group, client_id=client_id,
                            enable_auto_commit=False, auto_offset_reset="earliest",
                            session_timeout_ms=10_000, heartbeat_interval_ms=500)


async def _group_split_commit_resume(bootstrap: str) -> None:
    topic, group, partitions, per = unique("aio-grp"), unique("aio-g"), 4, 100
    await create_topic(bootstrap, topic, partitions)
    await produce_per_partition(bootstrap, topic, partitions, 0, per)

    a = group_consumer(bootstrap, topic, group, "aio-a")
    b = group_consumer(bootstrap, topic, group, "aio-b")
    members = {"a": a, "b": b}
    try:
        for c in members.values():
            await c.start()
        # The members join in the background; wait until they share the
        # partitions before reading, so that both really consume.
        deadline = time.monotonic() + TIMEOUT_S
        while True:
            owned = {n: {tp.partition for tp in c.assignment()} for n, c in members.items()}
            if all(owned.values()) and not (owned["a"] & owned["b"]) and owned["a"] | owned["b"] == set(range(partitions)):
                break
            assert time.monotonic() < deadline, f"the group did not settle: {owned}"
            await asyncio.sleep(0.1)

        got = await consume_until(members, partitions * per)
        for n, records in got.items():
            outside = {r.partition for r in records} - owned[n]
            assert not outside, f"member {n} owns {owned[n]} but read partitions {outside}"
        values = sorted(r.value for records in got.values() for r in records)
        assert values == sorted(f"{p}-{j}".encode() for p in range(partitions) for j in range(per)), \
            "every record exactly once across the group"

        # Each member commits an offset in the middle of each of its partitions
        # (a different one per partition, so a mix-up shows).
        commit_at = {p: 60 + p for p in range(partitions)}
        for n, c in members.items():
            await c.commit({TopicPartition(topic, p): commit_at[p] for p in owned[n]})
        for n, c in members.items():
            for p in owned[n]:
                assert await c.committed(TopicPartition(topic, p)) == commit_at[p]
    finally:
        for c in members.values():
            await c.stop()  # LeaveGroup
    assert await committed_by_admin(bootstrap, group) == commit_at

    # A new member resumes exactly at the committed offsets.
    c = group_consumer(bootstrap, topic, group, "aio-c")
    try:
        await c.start()
        want = sum(per - commit_at[p] for p in range(partitions))
        records = (await consume_until({"c": c}, want))["c"]
        first: dict[int, int] = {}
        for r in records:
            first.setdefault(r.partition, r.offset)
        assert first == commit_at, f"first offsets read {first}, committed {commit_at}"
        assert sorted(r.value for r in records) == sorted(
            f"{p}-{j}".encode() for p in range(partitions) for j in range(commit_at[p], per))
        await c.commit()
    finally:
        await c.stop()
    assert await committed_by_admin(bootstrap, group) == {p: per for p in range(partitions)}
