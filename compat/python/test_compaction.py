"""Log compaction seen through confluent-kafka (librdkafka): a compacted topic
with 10,000 keys overwritten 20 times reads back as one record per key, each
the latest value at the offset it was written to; tombstoned keys stay visible
as tombstones for delete.retention.ms and then disappear; and kill -9 while
the cleaner runs loses no key's latest value.
"""

from __future__ import annotations

import os
import random
import time
from pathlib import Path

from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from groupkit import unique

TIMEOUT_S = 60
# The cleaner looks for work every 200 ms instead of Kafka's 15 s.
FAST_CLEANER = {"log.cleaner.backoff.ms": "200"}


def create_compacted_topic(bootstrap: str, name: str, **overrides: str) -> None:
    config = {
        "cleanup.policy": "compact",
        "segment.bytes": str(256 * 1024),
        "min.cleanable.dirty.ratio": "0.01",
        # Roll the active segment once its oldest record is 2 s old, so the
        # cleaner reaches the newest writes too.
        "max.compaction.lag.ms": "2000",
    }
    config.update(overrides)
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(name, 1, 1, config=config)])[name].result(TIMEOUT_S)


def produce(bootstrap: str, topic: str, records: list[tuple[str, str | None]]) -> dict[str, int]:
    """Produces (key, value) pairs with acks=all; returns the offset of each key's last write."""
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
                  "linger.ms": 20, "compression.type": "lz4", "batch.size": 100_000})
    offsets: dict[str, int] = {}
    errors = []

    def delivered(err, msg):
        if err is not None:
            errors.append(err)
        else:
            key = msg.key().decode()
            offsets[key] = max(offsets.get(key, -1), msg.offset())

    for i, (k, v) in enumerate(records):
        while True:
            try:
                p.produce(topic, key=k.encode(), value=None if v is None else v.encode(), on_delivery=delivered)
                break
            except BufferError:
                p.poll(0.05)
        if i % 5000 == 0:
            p.poll(0)
    assert p.flush(TIMEOUT_S) == 0, "every record was acknowledged"
    assert not errors, errors[:5]
    return offsets


def read_all(bootstrap: str, topic: str, idle_s: float = 3.0) -> list[tuple[int, str, str | None]]:
    """Every record of partition 0 from the start: until the high watermark, or
    until nothing arrives for `idle_s` (compaction may leave the offsets just
    below the high watermark empty, as in Kafka)."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": unique("reader"), "enable.auto.commit": False})
    try:
        _, high = c.get_watermark_offsets(TopicPartition(topic, 0), timeout=TIMEOUT_S)
        c.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        out: list[tuple[int, str, str | None]] = []
        deadline = time.monotonic() + TIMEOUT_S
        last_arrival = time.monotonic()
        position = -1
        while position + 1 < high and time.monotonic() - last_arrival < idle_s:
            assert time.monotonic() < deadline, f"reading {topic} took over {TIMEOUT_S} s"
            for m in c.consume(10_000, 0.5):
                assert m.error() is None, m.error()
                out.append((m.offset(), m.key().decode(), None if m.value() is None else m.value().decode()))
                position = m.offset()
                last_arrival = time.monotonic()
        return out
    finally:
        c.close()


def wait_for(what: str, probe, timeout: float = TIMEOUT_S):
    """Calls `probe` until it returns (True, value, _); returns the value."""
    deadline = time.monotonic() + timeout
    summary = None
    while time.monotonic() < deadline:
        ok, value, summary = probe()
        if ok:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}; last observation: {summary}")


def test_overwritten_keys_compact_to_their_latest_value_and_tombstones_expire(broker_factory):
    b = broker_factory.start(overrides=FAST_CLEANER)
    topic = unique("compact")
    create_compacted_topic(b.bootstrap, topic, **{"delete.retention.ms": "10000"})
    keys, rounds, deleted = 10_000, 20, 1_000
    writes = [(f"k{k}", f"k{k}:r{r}") for r in range(rounds) for k in range(keys)]
    last_offset = produce(b.bootstrap, topic, writes)
    last_offset.update(produce(b.bootstrap, topic, [(f"k{k}", None) for k in range(deleted)]))
    assert len(writes) == 200_000

    def one_record_per_key():
        records = read_all(b.bootstrap, topic)
        return len(records) == keys, records, (len(records), records[-3:])

    # The first clean keeps the tombstones (for delete.retention.ms).
    records = wait_for("one record per key", one_record_per_key)
    assert [o for o, _, _ in records] == sorted(o for o, _, _ in records)
    for offset, key, value in records:
        assert offset == last_offset[key], f"{key} survives at the offset of its last write"
        n = int(key[1:])
        assert value == (None if n < deleted else f"{key}:r{rounds - 1}"), (offset, key, value)

    # After delete.retention.ms the tombstones go too.
    def tombstones_gone():
        records = read_all(b.bootstrap, topic)
        return len(records) == keys - deleted, records, (len(records), sum(1 for r in records if r[2] is None))

    records = wait_for("the tombstones to expire", tombstones_gone, timeout=TIMEOUT_S)
    assert {key for _, key, _ in records} == {f"k{k}" for k in range(deleted, keys)}
    assert all(value == f"{key}:r{rounds - 1}" for _, key, value in records)


def cleaner_files(data_dir: Path) -> list[str]:
    return [p.name for p in data_dir.rglob("*") if p.name.endswith((".cleaned", ".swap"))]


def test_kill_9_while_cleaning_loses_no_latest_value(broker_factory):
    keys, cycles = 20_000, 6
    b = broker_factory.start(overrides={"log.cleaner.enable": "false"})
    data_dir, port = b.data_dir, b.port
    topic = unique("compact-crash")
    create_compacted_topic(b.bootstrap, topic, **{"segment.bytes": str(512 * 1024)})
    latest: dict[str, str] = {}
    # Incompressible values, so the log is as big on disk as it looks (~15 MB).
    pad = lambda: os.urandom(50).hex()  # noqa: E731
    for r in range(5):
        writes = [(f"k{k}", f"k{k}:r{r}:{pad()}") for k in range(keys)]
        produce(b.bootstrap, topic, writes)
        latest.update(writes)
    b.stop_cleanly()

    rng = random.Random(7)
    caught_mid_clean = 0
    for cycle in range(cycles):
        # Throttled to 2 MiB/s (reads and writes together) so writing the cleaned copy of even the
        # compacted ~2.5 MB log takes over a second, and the kill below lands inside it however
        # fast or loaded the machine is.
        b = broker_factory.start(data_dir=data_dir, port=port, overrides={
            "log.cleaner.backoff.ms": "50", "log.cleaner.io.max.bytes.per.second": str(2 << 20)})
        # Fresh overwrites give the cleaner work in every cycle: a random fifth of the keys, which
        # shadows every segment, or (cycles 2 and 3) a run of 1,000 neighbouring keys, which shadows
        # one or two, so the cleaner rewrites those and leaves the rest as they are.
        if cycle % 4 in (2, 3):
            first = rng.randrange(keys - 1000)
            chosen = range(first, first + 1000)
        else:
            chosen = rng.sample(range(keys), keys // 5)
        writes = [(f"k{k}", f"k{k}:c{cycle}:{pad()}") for k in chosen]
        produce(b.bootstrap, topic, writes)
        latest.update(writes)
        if cycle % 2 == 0:
            # Kill while the cleaned segments are being written (or just after).
            deadline = time.monotonic() + 30
            while not cleaner_files(data_dir) and time.monotonic() < deadline:
                time.sleep(0.02)
            time.sleep(rng.uniform(0.0, 0.5))
        else:
            # Kill at any moment: building the offset map, writing, swapping, or idle.
            time.sleep(rng.uniform(0.0, 3.0))
        b.kill()
        if cleaner_files(data_dir):
            caught_mid_clean += 1

        b = broker_factory.start(data_dir=data_dir, port=port, overrides={"log.cleaner.enable": "false"})
        got: dict[str, str] = {}
        for _, key, value in read_all(b.bootstrap, topic):
            got[key] = value
        missing = [k for k in latest if got.get(k) != latest[k]]
        assert not missing, f"cycle {cycle}: {len(missing)} keys lost their latest value, e.g. " \
                            f"{[(k, got.get(k), latest[k]) for k in missing[:3]]}"
        assert not cleaner_files(data_dir), "recovery removed or completed every interrupted clean"
        b.stop_cleanly()
    assert caught_mid_clean >= cycles // 3, \
        f"only {caught_mid_clean} of {cycles} kills landed while cleaned segments were being written"
