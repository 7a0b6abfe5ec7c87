"""Compatibility tests with kafka-python (pure Python client).

Every test runs twice:

* ``auto``: api_version auto-detection (ApiVersions v4, then the highest
  versions both sides support; kafka-python 3.x uses flexible versions when
  the broker advertises them);
* ``legacy-2.1``: the client is capped at its Kafka 2.1 version table
  (ApiVersions v2, Metadata v7, Produce v7, Fetch v10, ListOffsets v4,
  CreateTopics v3, DescribeConfigs v2, AlterConfigs v1, ...), i.e. only old,
  non-flexible encodings, as older kafka-python releases and many other
  clients still send. The client still sends ApiVersions and clamps to the
  lower of the two tables.

Consumers use assign() with group_id=None: no group coordinator is needed.
"""

from __future__ import annotations

import time

import pytest
import kafka.errors as Errors
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource

from payloads import (Rec, RecordGen, base_timestamp_ms, first_offset_at_or_after,
                      normalize_headers, unique_topic)

CODECS = [None, "gzip", "snappy", "lz4", "zstd"]
ROUND_TRIP_RECORDS = 20_000
PROTOCOLS = {"auto": None, "legacy-2.1": (2, 1)}


@pytest.fixture(params=list(PROTOCOLS), scope="module")
def protocol(request):
    return request.param


@pytest.fixture
def client_conf(bootstrap, protocol):
    conf = {"bootstrap_servers": bootstrap, "request_timeout_ms": 30000}
    if PROTOCOLS[protocol] is not None:
        conf["api_version"] = PROTOCOLS[protocol]
    return conf


@pytest.fixture
def adm(client_conf):
    a = KafkaAdminClient(**client_conf)
    yield a
    a.close()


def wait_for_topic(adm: KafkaAdminClient, name: str, partitions: int, timeout: float = 15.0):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if name in adm.list_topics():
            topics = adm.describe_topics([name])
            last = topics
            t = topics[0] if topics else None
            if t and t["error_code"] == 0 and len(t["partitions"]) == partitions and all(
                    p["error_code"] == 0 and p["leader_id"] >= 0 for p in t["partitions"]):
                return t
        time.sleep(0.1)
    pytest.fail(f"topic {name} not ready with {partitions} partitions after {timeout} s: {last}")


def create_topic(adm, name, partitions=1, configs=None):
    adm.create_topics({name: {"num_partitions": partitions, "replication_factor": 1,
                              "configs": configs or {}}})
    return wait_for_topic(adm, name, partitions)


def topic_configs(adm, name) -> dict:
    res = adm.describe_configs([ConfigResource("TOPIC", name)], include_synonyms=True,
                               config_filter="all")
    return res["topic"][name]


def broker_node_id(adm) -> int:
    cluster = adm.describe_cluster()
    brokers = cluster["brokers"]
    assert len(brokers) == 1, brokers
    return brokers[0]["broker_id"]


# ==========================================================================
# Produce / consume
# ==========================================================================


def produce(client_conf, topic, n, gen, codec=None, partition=None, **extra):
    conf = dict(client_conf, acks="all", enable_idempotence=True, compression_type=codec,
                linger_ms=5, **extra)
    p = KafkaProducer(**conf)
    try:
        futures = []
        for i in range(n):
            r: Rec = gen(i)
            futures.append(p.send(topic, key=r.key, value=r.value, headers=list(r.headers),
                                  timestamp_ms=r.timestamp_ms, partition=partition))
        p.flush(timeout=180)
        positions = []
        for i, f in enumerate(futures):
            md = f.get(timeout=60)
            positions.append((md.partition, md.offset))
        return positions
    finally:
        p.close(timeout=30)


def check_positions(positions):
    per_part: dict[int, list[int]] = {}
    for p, off in positions:
        per_part.setdefault(p, []).append(off)
    for p, offs in per_part.items():
        assert offs == list(range(len(offs))), (
            f"partition {p}: acknowledged offsets are not 0..{len(offs) - 1} in production order")
    return {p: len(o) for p, o in per_part.items()}


def consume(client_conf, topic, expected_counts, on_record, start=None, timeout=180.0):
    c = KafkaConsumer(**client_conf, group_id=None, enable_auto_commit=False,
                      auto_offset_reset="earliest", max_poll_records=5000)
    try:
        tps = [TopicPartition(topic, p) for p in expected_counts]
        c.assign(tps)
        if start:
            for tp in tps:
                c.seek(tp, start.get(tp.partition, 0))
        else:
            c.seek_to_beginning(*tps)
        seen = {p: [] for p in expected_counts}
        total = sum(expected_counts.values())
        got = 0
        deadline = time.monotonic() + timeout
        while got < total:
            assert time.monotonic() < deadline, (
                f"timed out with {got}/{total} records: {({p: len(v) for p, v in seen.items()})}")
            for tp, records in c.poll(timeout_ms=1000).items():
                for rec in records:
                    seen[tp.partition].append(rec.offset)
                    on_record(rec)
                    got += 1
        extra = c.poll(timeout_ms=1500)
        assert not any(extra.values()), f"unexpected extra records: {extra}"
        return seen
    finally:
        c.close()


def assert_record_matches(rec, want: Rec, where=""):
    assert rec.key == want.key, f"{where} key {rec.key!r} != {want.key!r}"
    assert rec.value == want.value, f"{where} value differs"
    assert normalize_headers(rec.headers) == want.headers, (
        f"{where} headers {rec.headers!r} != {want.headers!r}")
    assert rec.timestamp == want.timestamp_ms, f"{where} timestamp"
    assert rec.timestamp_type == 0, f"{where} timestamp type {rec.timestamp_type} (0 = CreateTime)"


@pytest.mark.slow
@pytest.mark.parametrize("codec", CODECS, ids=lambda c: c or "none")
def test_round_trip(adm, client_conf, codec):
    name = unique_topic(f"kp-rt-{codec or 'none'}")
    create_topic(adm, name, partitions=3)
    gen = RecordGen(name, base_timestamp_ms(), null_header_values=False,
                    allow_null_key_and_value=False)
    positions = produce(client_conf, name, ROUND_TRIP_RECORDS, gen, codec=codec)
    counts = check_positions(positions)
    by_pos = {pos: i for i, pos in enumerate(positions)}

    def check(rec):
        i = by_pos.get((rec.partition, rec.offset))
        assert i is not None, f"record at {rec.partition}/{rec.offset} was never acknowledged"
        assert_record_matches(rec, gen(i), f"record {i}")

    seen = consume(client_conf, name, counts, check)
    for p, offs in seen.items():
        assert offs == list(range(counts[p])), f"partition {p}: gaps/duplicates"


def test_small_round_trip_single_partition(adm, client_conf):
    """Quick variant of the round trip (not marked slow)."""
    name = unique_topic("kp-small")
    create_topic(adm, name, partitions=1)
    gen = RecordGen(name, base_timestamp_ms(), null_header_values=False,
                    allow_null_key_and_value=False)
    positions = produce(client_conf, name, 500, gen, codec="gzip", partition=0)
    assert positions == [(0, i) for i in range(500)]
    seen = consume(client_conf, name, {0: 500},
                   lambda r: assert_record_matches(r, gen(r.offset), f"offset {r.offset}"))
    assert seen[0] == list(range(500))


def test_offsets_for_times_and_beginning_end(adm, client_conf):
    name = unique_topic("kp-times")
    create_topic(adm, name, partitions=1)
    base = base_timestamp_ms()
    stamps = [base + 1000 * i for i in range(15)]
    stamps[4] = base + 60_000

    def gen(i):
        return Rec(f"k{i}".encode(), f"v{i}".encode(), (), stamps[i])

    positions = produce(client_conf, name, len(stamps), gen, partition=0)
    assert positions == [(0, i) for i in range(len(stamps))]
    tp = TopicPartition(name, 0)
    c = KafkaConsumer(**client_conf, group_id=None, enable_auto_commit=False)
    try:
        assert c.beginning_offsets([tp]) == {tp: 0}
        assert c.end_offsets([tp]) == {tp: len(stamps)}
        for ts in [base - 5, base, base + 1, base + 3001, base + 5000, base + 14_000,
                   base + 14_001, base + 60_000, base + 60_001]:
            want = first_offset_at_or_after(stamps, ts)
            got = c.offsets_for_times({tp: ts})[tp]
            if want == -1:
                assert got is None, f"offsets_for_times({ts - base:+d}) = {got}, expected none"
            else:
                assert got is not None and got.offset == want, f"offsets_for_times({ts - base:+d})"
                assert got.timestamp == stamps[want]
    finally:
        c.close()


# ==========================================================================
# Admin
# ==========================================================================


def test_create_list_describe_delete_topic(adm):
    name = unique_topic("kp-admin")
    res = adm.create_topics({name: {"num_partitions": 3, "replication_factor": 1,
                                    "configs": {"retention.ms": "3600000",
                                                "cleanup.policy": "delete"}}})
    assert [t["error_code"] for t in res["topics"]] == [0]
    t = wait_for_topic(adm, name, 3)
    assert name in adm.list_topics()
    bid = broker_node_id(adm)
    for p in t["partitions"]:
        assert p["leader_id"] == bid
        assert list(p["replica_nodes"]) == [bid]
        assert list(p["isr_nodes"]) == [bid]

    adm.delete_topics([name])
    deadline = time.monotonic() + 15
    while name in adm.list_topics():
        assert time.monotonic() < deadline, "deleted topic still listed"
        time.sleep(0.1)
    with pytest.raises(Errors.UnknownTopicOrPartitionError):
        adm.delete_topics([name])


def test_create_topic_errors(adm):
    name = unique_topic("kp-errors")
    create_topic(adm, name)
    with pytest.raises(Errors.TopicAlreadyExistsError):
        adm.create_topics({name: {"num_partitions": 1, "replication_factor": 1}})
    with pytest.raises(Errors.InvalidTopicError):
        adm.create_topics({"bad topic name": {"num_partitions": 1, "replication_factor": 1}})
    with pytest.raises(Errors.InvalidPartitionsError):
        adm.create_topics({unique_topic("kp-p0"): {"num_partitions": 0, "replication_factor": 1}})
    with pytest.raises(Errors.InvalidReplicationFactorError):
        adm.create_topics({unique_topic("kp-rf"): {"num_partitions": 1, "replication_factor": 3}})
    with pytest.raises(Errors.InvalidConfigurationError):
        adm.create_topics({unique_topic("kp-cfg"): {"num_partitions": 1, "replication_factor": 1,
                                                     "configs": {"no.such.config": "1"}}})


def test_create_topic_validate_only(adm):
    name = unique_topic("kp-validate")
    res = adm.create_topics({name: {"num_partitions": 2, "replication_factor": 1}},
                            validate_only=True)
    assert [t["error_code"] for t in res["topics"]] == [0]
    time.sleep(0.5)
    assert name not in adm.list_topics()


def test_describe_configs(adm):
    name = unique_topic("kp-describecfg")
    create_topic(adm, name, configs={"retention.ms": "3600000"})
    cfg = topic_configs(adm, name)
    r = cfg["retention.ms"]
    assert r["value"] == "3600000"
    assert r["config_source"] == "DYNAMIC_TOPIC_CONFIG"
    assert not r["is_sensitive"]
    assert any(s["name"] == "retention.ms" and s["source"] == "DYNAMIC_TOPIC_CONFIG"
               for s in r["synonyms"]), r["synonyms"]
    c = cfg["cleanup.policy"]
    assert c["value"] == "delete"
    assert c["config_source"] in ("DEFAULT_CONFIG", "STATIC_BROKER_CONFIG")

    # the default filter ("modified") lists only the override
    modified = adm.describe_configs([ConfigResource("TOPIC", name)])["topic"][name]
    assert set(modified) == {"retention.ms"}

    bid = broker_node_id(adm)
    bc = adm.describe_configs([ConfigResource("BROKER", str(bid))], config_filter="all")
    bc = bc["broker"][str(bid)]
    assert bc["message.max.bytes"]["value"] == cfg["max.message.bytes"]["value"]
    assert bc["num.partitions"]["value"] == "1"


def test_alter_configs_legacy(adm):
    """AlterConfigs (key 33): kafka-python re-sends the other overrides itself."""
    name = unique_topic("kp-alter")
    create_topic(adm, name, configs={"retention.ms": "3600000"})
    res = adm.alter_configs([ConfigResource("TOPIC", name, configs={"max.message.bytes": "2000000"})],
                            incremental=False)
    assert res["topic"][name] == "OK", res
    cfg = topic_configs(adm, name)
    assert cfg["max.message.bytes"]["value"] == "2000000"
    assert cfg["max.message.bytes"]["config_source"] == "DYNAMIC_TOPIC_CONFIG"
    assert cfg["retention.ms"]["value"] == "3600000"
    assert cfg["retention.ms"]["config_source"] == "DYNAMIC_TOPIC_CONFIG"


def test_alter_configs_incremental(adm, protocol):
    if protocol != "auto":
        pytest.skip("IncrementalAlterConfigs is not in kafka-python's Kafka 2.1 table")
    name = unique_topic("kp-incr")
    create_topic(adm, name, configs={"retention.ms": "3600000"})
    res = adm.alter_configs([ConfigResource("TOPIC", name, configs={
        "cleanup.policy": ("APPEND", "compact"),
        "retention.ms": ("DELETE", None),
    })], incremental=True)
    assert res["topic"][name] == "OK", res
    cfg = topic_configs(adm, name)
    assert sorted(cfg["cleanup.policy"]["value"].split(",")) == ["compact", "delete"]
    assert cfg["retention.ms"]["config_source"] in ("DEFAULT_CONFIG", "STATIC_BROKER_CONFIG")


def test_create_partitions(adm, client_conf):
    name = unique_topic("kp-parts")
    create_topic(adm, name, partitions=1)
    adm.create_partitions({name: 3})
    wait_for_topic(adm, name, 3)
    gen = RecordGen(name, base_timestamp_ms(), null_header_values=False,
                    allow_null_key_and_value=False)
    assert produce(client_conf, name, 5, gen, partition=2) == [(2, i) for i in range(5)]
    with pytest.raises(Errors.InvalidPartitionsError):
        adm.create_partitions({name: 2})
    wait_for_topic(adm, name, 3)
