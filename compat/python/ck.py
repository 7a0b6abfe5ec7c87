"""confluent-kafka (librdkafka) helpers shared by the test modules."""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass, field

import pytest
from confluent_kafka import (OFFSET_BEGINNING, TIMESTAMP_CREATE_TIME, Consumer, KafkaError,
                             KafkaException, Producer, TopicPartition)
from confluent_kafka.admin import AdminClient, ConfigResource, ConfigSource, NewTopic, ResourceType

from payloads import Rec, normalize_headers

ADMIN_TIMEOUT_S = 30.0

# librdkafka's own log lines go through Python logging (shown by pytest for a
# failing test) instead of straight to stderr.
RDKAFKA_LOGGER = logging.getLogger("librdkafka")


def admin(bootstrap: str, **extra) -> AdminClient:
    conf = {"bootstrap.servers": bootstrap, "socket.timeout.ms": 30000}
    conf.update(extra)
    return AdminClient(conf, logger=RDKAFKA_LOGGER)


def error_of(future, timeout: float = ADMIN_TIMEOUT_S) -> KafkaError:
    """The KafkaError a failed admin future raises; fails the test if it succeeds."""
    with pytest.raises(KafkaException) as ei:
        future.result(timeout=timeout)
    err = ei.value.args[0]
    assert isinstance(err, KafkaError), f"unexpected exception payload {err!r}"
    return err


def assert_error(future, expected_code: int, what: str):
    err = error_of(future)
    assert err.code() == expected_code, (
        f"{what}: expected {KafkaError(expected_code).name()} ({expected_code}), "
        f"got {err.name()} ({err.code()}): {err.str()}")


def topic_names(adm: AdminClient) -> set[str]:
    return set(adm.list_topics(timeout=ADMIN_TIMEOUT_S).topics)


def wait_for_topic(adm: AdminClient, name: str, partitions: int, timeout: float = 15.0):
    """Wait until metadata shows `name` with `partitions` partitions, each with a leader.
    Uses an all-topics Metadata request, which never auto-creates."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        md = adm.list_topics(timeout=ADMIN_TIMEOUT_S)
        t = md.topics.get(name)
        if t is not None and t.error is None and len(t.partitions) == partitions and all(
                p.leader >= 0 and p.error is None for p in t.partitions.values()):
            return md
        last = t
        time.sleep(0.1)
    pytest.fail(f"topic {name} not ready with {partitions} partitions after {timeout} s: {last}")


def wait_topic_gone(adm: AdminClient, name: str, timeout: float = 15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if name not in topic_names(adm):
            return
        time.sleep(0.1)
    pytest.fail(f"topic {name} still listed {timeout} s after deletion")


def create_topic(adm: AdminClient, name: str, partitions: int = 1, config: dict | None = None):
    fs = adm.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1,
                                     config=config or {})], operation_timeout=ADMIN_TIMEOUT_S)
    assert fs[name].result(timeout=ADMIN_TIMEOUT_S) is None
    return wait_for_topic(adm, name, partitions)


def broker_id(adm: AdminClient) -> int:
    md = adm.list_topics(timeout=ADMIN_TIMEOUT_S)
    assert len(md.brokers) == 1, f"expected a single broker, got {md.brokers}"
    return next(iter(md.brokers))


def describe_topic_configs(adm: AdminClient, name: str) -> dict:
    res = ConfigResource(ResourceType.TOPIC, name)
    return adm.describe_configs([res])[res].result(timeout=ADMIN_TIMEOUT_S)


def describe_broker_configs(adm: AdminClient, bid: int) -> dict:
    res = ConfigResource(ResourceType.BROKER, str(bid))
    return adm.describe_configs([res])[res].result(timeout=ADMIN_TIMEOUT_S)


def source_of(entry):
    """The entry's ConfigSource; a wire value librdkafka does not know is
    returned as the raw int so that assertions show it."""
    s = entry.source
    if isinstance(s, ConfigSource):
        return s
    try:
        return ConfigSource(s)
    except ValueError:
        return s


# --------------------------------------------------------------------------
# Producing with delivery reports, reading back with assign()
# --------------------------------------------------------------------------


@dataclass
class Delivered:
    """Delivery reports: positions[i] = (partition, offset) for record i."""
    positions: list
    errors: list = field(default_factory=list)

    def by_position(self) -> dict[tuple[int, int], int]:
        return {pos: i for i, pos in enumerate(self.positions)}

    def counts(self) -> dict[int, int]:
        out: dict[int, int] = {}
        for p, _ in self.positions:
            out[p] = out.get(p, 0) + 1
        return out


def producer_conf(bootstrap: str, **extra) -> dict:
    conf = {
        "bootstrap.servers": bootstrap,
        "acks": "all",
        "enable.idempotence": True,
        "linger.ms": 5,
        "message.timeout.ms": 120000,
        "socket.timeout.ms": 30000,
        "logger": RDKAFKA_LOGGER,
    }
    conf.update(extra)
    return conf


def produce_records(conf: dict, topic: str, n: int, gen, partition: int | None = None,
                    flush_timeout: float = 180.0) -> Delivered:
    """Produce gen(0..n-1), wait for every delivery report, return the positions."""
    p = Producer(conf)
    d = Delivered(positions=[None] * n)

    def on_delivery(i):
        def cb(err, msg):
            if err is not None:
                d.errors.append((i, err))
            else:
                d.positions[i] = (msg.partition(), msg.offset())
        return cb

    for i in range(n):
        r: Rec = gen(i)
        kwargs = dict(key=r.key, value=r.value, timestamp=r.timestamp_ms,
                      on_delivery=on_delivery(i))
        if r.headers:
            kwargs["headers"] = list(r.headers)
        if partition is not None:
            kwargs["partition"] = partition
        while True:
            try:
                p.produce(topic, **kwargs)
                break
            except BufferError:
                p.poll(0.05)
        if i % 500 == 0:
            p.poll(0)
    left = p.flush(flush_timeout)
    assert left == 0, f"{left} records still undelivered after {flush_timeout} s"
    assert not d.errors, f"{len(d.errors)} delivery errors, first: {d.errors[:5]}"
    missing = [i for i, pos in enumerate(d.positions) if pos is None]
    assert not missing, f"no delivery report for {len(missing)} records, e.g. {missing[:5]}"
    return d


def check_delivery_positions(d: Delivered):
    """Offsets per partition are 0..n-1 with no gap or duplicate, and (the
    producer being idempotent) follow production order within a partition."""
    per_part: dict[int, list[tuple[int, int]]] = {}
    for i, (p, off) in enumerate(d.positions):
        per_part.setdefault(p, []).append((i, off))
    for p, items in per_part.items():
        offsets = [off for _, off in items]
        assert sorted(offsets) == list(range(len(offsets))), (
            f"partition {p}: acknowledged offsets are not exactly 0..{len(offsets) - 1}")
        assert offsets == sorted(offsets), f"partition {p}: offsets not in production order"


def consumer_conf(bootstrap: str, **extra) -> dict:
    conf = {
        "bootstrap.servers": bootstrap,
        # librdkafka wants a group.id; it is never used (no subscribe, no commit).
        "group.id": f"compat-unused-{uuid.uuid4().hex[:8]}",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "error",
        "socket.timeout.ms": 30000,
        "logger": RDKAFKA_LOGGER,
    }
    conf.update(extra)
    return conf


def read_back(bootstrap: str, topic: str, expected_counts: dict[int, int], on_message,
              start_offsets: dict[int, int] | None = None, timeout: float = 180.0,
              **conf_extra) -> dict[int, list[int]]:
    """assign() every partition in expected_counts (from OFFSET_BEGINNING, or
    start_offsets), read until each partition has delivered its expected
    count, call on_message(msg) for each, and return the offsets seen per
    partition. Afterwards checks that nothing more arrives."""
    c = Consumer(consumer_conf(bootstrap, **conf_extra))
    try:
        start_offsets = start_offsets or {}
        c.assign([TopicPartition(topic, p, start_offsets.get(p, OFFSET_BEGINNING))
                  for p in expected_counts])
        seen: dict[int, list[int]] = {p: [] for p in expected_counts}
        total = sum(expected_counts.values())
        got = 0
        deadline = time.monotonic() + timeout
        while got < total:
            assert time.monotonic() < deadline, (
                f"timed out after {timeout} s with {got}/{total} records: "
                f"{ {p: len(v) for p, v in seen.items()} } of {expected_counts}")
            for msg in c.consume(num_messages=5000, timeout=1.0):
                err = msg.error()
                assert err is None, f"consumer error: {err}"
                p = msg.partition()
                assert p in seen, f"record from unassigned partition {p}"
                seen[p].append(msg.offset())
                on_message(msg)
                got += 1
        # Nothing beyond the expected records may show up.
        extra = c.consume(num_messages=100, timeout=1.5)
        extra = [m for m in extra if m.error() is None]
        assert not extra, (f"{len(extra)} unexpected extra records, first at "
                           f"partition {extra[0].partition()} offset {extra[0].offset()}")
        return seen
    finally:
        c.close()


def assert_message_matches(msg, rec: Rec, where: str = ""):
    assert msg.key() == rec.key, f"{where} key {msg.key()!r} != {rec.key!r}"
    assert msg.value() == rec.value, (
        f"{where} value differs (len {len(msg.value()) if msg.value() is not None else None} vs "
        f"{len(rec.value) if rec.value is not None else None})")
    assert normalize_headers(msg.headers()) == rec.headers, (
        f"{where} headers {msg.headers()!r} != {rec.headers!r}")
    ts_type, ts = msg.timestamp()
    assert ts_type == TIMESTAMP_CREATE_TIME, f"{where} timestamp type {ts_type}"
    assert ts == rec.timestamp_ms, f"{where} timestamp {ts} != {rec.timestamp_ms} (type {ts_type})"
