"""Compatibility tests with confluent-kafka-python (librdkafka).

Consumers here use assign() with explicit partitions and never commit, so
every byte and offset can be checked; consumer groups are in test_groups.py.
"""

from __future__ import annotations

import base64
import time

import pytest
from confluent_kafka import (OFFSET_END, Consumer, KafkaError, Producer, TopicCollection,
                             TopicPartition)
from confluent_kafka.admin import (AlterConfigOpType, ConfigEntry, ConfigResource, ConfigSource,
                                   NewPartitions, NewTopic, OffsetSpec, ResourceType)

import ck
from ck import ADMIN_TIMEOUT_S, assert_error, create_topic
from payloads import (Rec, RecordGen, base_timestamp_ms, big_value, first_offset_at_or_after,
                      unique_topic)

CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]
ROUND_TRIP_RECORDS = 100_000

# Topic-level configs and the broker-level keys that stand behind them
# (CONTRACT A.8), used to check describe_configs synonyms.
BROKER_SYNONYMS = {
    "retention.ms": {"log.retention.ms", "log.retention.minutes", "log.retention.hours"},
    "cleanup.policy": {"log.cleanup.policy"},
    "max.message.bytes": {"message.max.bytes"},
    "segment.bytes": {"log.segment.bytes"},
}
NON_DYNAMIC_SOURCES = {ConfigSource.DEFAULT_CONFIG, ConfigSource.STATIC_BROKER_CONFIG}


@pytest.fixture
def adm(bootstrap):
    return ck.admin(bootstrap)


def default_topic_configs(adm) -> dict:
    """Configs of a fresh topic created without overrides: the broker's defaults."""
    name = unique_topic("defaults")
    create_topic(adm, name)
    try:
        return ck.describe_topic_configs(adm, name)
    finally:
        adm.delete_topics([name], operation_timeout=ADMIN_TIMEOUT_S)[name].result(ADMIN_TIMEOUT_S)


def csv_set(v: str | None) -> list[str]:
    return [x.strip() for x in (v or "").split(",") if x.strip()]


# ==========================================================================
# AdminClient: topics
# ==========================================================================


def test_create_topic_with_partitions_and_configs(adm):
    name = unique_topic("create")
    cfg = {"retention.ms": "3600000", "cleanup.policy": "delete", "max.message.bytes": "2097152"}
    fs = adm.create_topics([NewTopic(name, num_partitions=3, replication_factor=1, config=cfg)],
                           operation_timeout=ADMIN_TIMEOUT_S)
    assert fs[name].result(timeout=ADMIN_TIMEOUT_S) is None
    md = ck.wait_for_topic(adm, name, 3)
    bid = ck.broker_id(adm)
    t = md.topics[name]
    assert sorted(t.partitions) == [0, 1, 2]
    for p in t.partitions.values():
        assert p.leader == bid
        assert list(p.replicas) == [bid]
        assert list(p.isrs) == [bid]

    configs = ck.describe_topic_configs(adm, name)
    for k, v in cfg.items():
        assert configs[k].value == v, k
        assert ck.source_of(configs[k]) == ConfigSource.DYNAMIC_TOPIC_CONFIG, k


def test_describe_topics_reports_leader_and_replicas(adm):
    name = unique_topic("describe")
    create_topic(adm, name, partitions=4)
    bid = ck.broker_id(adm)
    desc = adm.describe_topics(TopicCollection([name]))[name].result(timeout=ADMIN_TIMEOUT_S)
    assert desc.name == name
    assert not desc.is_internal
    assert sorted(p.id for p in desc.partitions) == [0, 1, 2, 3]
    for p in desc.partitions:
        assert p.leader is not None and p.leader.id == bid
        assert [n.id for n in p.replicas] == [bid]
        assert [n.id for n in p.isr] == [bid]


def test_create_topic_validate_only_creates_nothing(adm):
    name = unique_topic("validate")
    fs = adm.create_topics([NewTopic(name, num_partitions=2, replication_factor=1,
                                     config={"retention.ms": "1000"})],
                           validate_only=True, operation_timeout=ADMIN_TIMEOUT_S)
    assert fs[name].result(timeout=ADMIN_TIMEOUT_S) is None
    time.sleep(0.5)
    assert name not in ck.topic_names(adm)
    # validate_only still validates
    bad = adm.create_topics([NewTopic(name, num_partitions=1, replication_factor=1,
                                      config={"no.such.config": "x"})],
                            validate_only=True, operation_timeout=ADMIN_TIMEOUT_S)
    assert_error(bad[name], KafkaError.INVALID_CONFIG, "validate_only with unknown config")
    # and the name is still free afterwards
    create_topic(adm, name, partitions=2)


def test_create_existing_topic_fails(adm):
    name = unique_topic("exists")
    create_topic(adm, name)
    fs = adm.create_topics([NewTopic(name, num_partitions=1, replication_factor=1)],
                           operation_timeout=ADMIN_TIMEOUT_S)
    assert_error(fs[name], KafkaError.TOPIC_ALREADY_EXISTS, "create twice")


@pytest.mark.parametrize("bad_name", [
    "has space",
    "slash/in/name",
    "star*",
    ".",
    "..",
    "x" * 250,
])
def test_create_topic_invalid_name(adm, bad_name):
    fs = adm.create_topics([NewTopic(bad_name, num_partitions=1, replication_factor=1)],
                           operation_timeout=ADMIN_TIMEOUT_S)
    assert_error(fs[bad_name], KafkaError.TOPIC_EXCEPTION, f"topic name {bad_name!r}")
    assert bad_name not in ck.topic_names(adm)


def test_create_topic_longest_valid_name(adm):
    name = ("compat-long-" + "x" * 249)[:249]
    create_topic(adm, name)


@pytest.mark.parametrize("config", [
    {"no.such.config": "1"},
    {"retention.ms": "not-a-number"},
    {"cleanup.policy": "bogus"},
    {"max.message.bytes": "-5"},
])
def test_create_topic_invalid_config(adm, config):
    name = unique_topic("badcfg")
    fs = adm.create_topics([NewTopic(name, num_partitions=1, replication_factor=1, config=config)],
                           operation_timeout=ADMIN_TIMEOUT_S)
    assert_error(fs[name], KafkaError.INVALID_CONFIG, f"config {config}")
    assert name not in ck.topic_names(adm)


def test_create_topic_replication_factor_above_broker_count(adm):
    name = unique_topic("rf")
    fs = adm.create_topics([NewTopic(name, num_partitions=1, replication_factor=2)],
                           operation_timeout=ADMIN_TIMEOUT_S)
    assert_error(fs[name], KafkaError.INVALID_REPLICATION_FACTOR, "RF 2 on one broker")
    assert name not in ck.topic_names(adm)


def test_create_topic_default_partitions_and_rf(adm):
    """num_partitions=-1 / replication_factor=-1 mean the broker defaults
    (num.partitions=1, default.replication.factor=1)."""
    name = unique_topic("defaults-pr")
    fs = adm.create_topics([NewTopic(name)], operation_timeout=ADMIN_TIMEOUT_S)
    assert fs[name].result(timeout=ADMIN_TIMEOUT_S) is None
    md = ck.wait_for_topic(adm, name, 1)
    assert len(md.topics[name].partitions[0].replicas) == 1


def test_delete_topic(adm, bootstrap):
    name = unique_topic("delete")
    create_topic(adm, name, partitions=2)
    # put data in it, so we can check that a re-created topic starts empty
    ck.produce_records(ck.producer_conf(bootstrap), name, 10, RecordGen(name, base_timestamp_ms()))
    fs = adm.delete_topics([name], operation_timeout=ADMIN_TIMEOUT_S)
    assert fs[name].result(timeout=ADMIN_TIMEOUT_S) is None
    ck.wait_topic_gone(adm, name)
    desc = adm.describe_topics(TopicCollection([name]))[name]
    assert_error(desc, KafkaError.UNKNOWN_TOPIC_OR_PART, "describe deleted topic")
    again = adm.delete_topics([name], operation_timeout=ADMIN_TIMEOUT_S)
    assert_error(again[name], KafkaError.UNKNOWN_TOPIC_OR_PART, "delete deleted topic")

    # same name again: a new, empty topic
    create_topic(adm, name, partitions=1)
    res = adm.list_offsets({TopicPartition(name, 0): OffsetSpec.latest()})
    assert list(res.values())[0].result(timeout=ADMIN_TIMEOUT_S).offset == 0


def test_describe_unknown_topic_does_not_create_it(adm):
    name = unique_topic("nosuch")
    desc = adm.describe_topics(TopicCollection([name]))[name]
    assert_error(desc, KafkaError.UNKNOWN_TOPIC_OR_PART, "describe unknown topic")
    time.sleep(0.5)
    assert name not in ck.topic_names(adm)


def test_describe_cluster(adm, bootstrap):
    res = adm.describe_cluster().result(timeout=ADMIN_TIMEOUT_S)
    md = adm.list_topics(timeout=ADMIN_TIMEOUT_S)
    assert res.cluster_id, "empty cluster id"
    assert res.cluster_id == md.cluster_id
    # CONTRACT A.5.1: 22-char base64 UUID string
    assert len(res.cluster_id) == 22, res.cluster_id
    raw = base64.urlsafe_b64decode(res.cluster_id + "==")
    assert len(raw) == 16
    assert len(res.nodes) == 1, res.nodes
    node = res.nodes[0]
    assert node.id == ck.broker_id(adm)
    host, port = bootstrap.rsplit(":", 1)
    assert (node.host, node.port) == (host, int(port)), "advertised endpoint != bootstrap"
    if res.controller is not None:
        assert res.controller.id in {-1, node.id}


def test_metadata_brokers_match_bootstrap(adm, bootstrap):
    md = adm.list_topics(timeout=ADMIN_TIMEOUT_S)
    assert len(md.brokers) == 1
    b = next(iter(md.brokers.values()))
    host, port = bootstrap.rsplit(":", 1)
    assert (b.host, b.port) == (host, int(port))


# ==========================================================================
# AdminClient: configs
# ==========================================================================


def test_describe_topic_configs_sources_and_synonyms(adm):
    name = unique_topic("describecfg")
    create_topic(adm, name, config={"retention.ms": "7200000"})
    configs = ck.describe_topic_configs(adm, name)

    for must in ["cleanup.policy", "retention.ms", "max.message.bytes", "segment.bytes",
                 "min.insync.replicas", "compression.type", "message.timestamp.type"]:
        assert must in configs, f"{must} missing from describe_configs"

    ov = configs["retention.ms"]
    assert ov.value == "7200000"
    assert ck.source_of(ov) == ConfigSource.DYNAMIC_TOPIC_CONFIG
    assert not ov.is_sensitive
    assert not ov.is_read_only
    syn = ov.synonyms
    assert "retention.ms" in syn, f"synonyms of an override must include itself: {syn}"
    assert ck.source_of(syn["retention.ms"]) == ConfigSource.DYNAMIC_TOPIC_CONFIG
    assert syn["retention.ms"].value == "7200000"
    # Kafka's chain below a topic override starts at the key's first broker
    # synonym, log.retention.ms; with only log.retention.hours in force (its
    # default) that leaves the override alone.
    assert list(syn) == ["retention.ms"], f"retention.ms synonyms: {list(syn)}"

    for key, entry in configs.items():
        assert not entry.is_sensitive, f"topic config {key} flagged sensitive"
        if key != "retention.ms":
            assert ck.source_of(entry) in NON_DYNAMIC_SOURCES, (
                f"{key}: source {ck.source_of(entry)} but it was never set on the topic")

    for key, names in BROKER_SYNONYMS.items():
        if key == "retention.ms":
            continue
        s = configs[key].synonyms
        assert any(n in names for n in s), f"{key}: no broker synonym among {list(s)}"

    # Defaults the contract names (A.8); the session broker runs with defaults.
    assert configs["cleanup.policy"].value == "delete"
    assert configs["max.message.bytes"].value == "1048588"
    assert configs["min.insync.replicas"].value == "1"
    assert configs["segment.bytes"].value == "1073741824"
    assert configs["compression.type"].value == "producer"


def test_describe_broker_configs(adm):
    bid = ck.broker_id(adm)
    bc = ck.describe_broker_configs(adm, bid)
    for must in ["num.partitions", "message.max.bytes", "auto.create.topics.enable",
                 "default.replication.factor", "log.cleanup.policy"]:
        assert must in bc, f"{must} missing from broker configs"
    assert bc["num.partitions"].value == "1"
    assert bc["auto.create.topics.enable"].value == "true"
    assert bc["default.replication.factor"].value == "1"
    for key, e in bc.items():
        assert ck.source_of(e) != ConfigSource.DYNAMIC_TOPIC_CONFIG, key
        if "password" in key:
            assert e.is_sensitive and e.value is None, f"{key} should be sensitive and hidden"
    # A topic's default max.message.bytes is the broker's message.max.bytes
    defaults = default_topic_configs(adm)
    assert defaults["max.message.bytes"].value == bc["message.max.bytes"].value
    assert defaults["cleanup.policy"].value == bc["log.cleanup.policy"].value


def test_describe_configs_unknown_topic(adm):
    res = ConfigResource(ResourceType.TOPIC, unique_topic("nosuch-cfg"))
    assert_error(adm.describe_configs([res])[res], KafkaError.UNKNOWN_TOPIC_OR_PART,
                 "describe_configs of unknown topic")


def test_alter_configs_replaces_whole_set(adm):
    defaults = default_topic_configs(adm)
    name = unique_topic("alter")
    create_topic(adm, name, config={"retention.ms": "3600000"})
    res = ConfigResource(ResourceType.TOPIC, name, set_config={"max.message.bytes": "2000000"})
    assert adm.alter_configs([res])[res].result(timeout=ADMIN_TIMEOUT_S) is None
    c = ck.describe_topic_configs(adm, name)
    assert c["max.message.bytes"].value == "2000000"
    assert ck.source_of(c["max.message.bytes"]) == ConfigSource.DYNAMIC_TOPIC_CONFIG
    # legacy AlterConfigs replaces the set: retention.ms is back to the default
    assert c["retention.ms"].value == defaults["retention.ms"].value
    assert ck.source_of(c["retention.ms"]) in NON_DYNAMIC_SOURCES

    # validate_only changes nothing
    res2 = ConfigResource(ResourceType.TOPIC, name, set_config={"max.message.bytes": "3000000"})
    assert adm.alter_configs([res2], validate_only=True)[res2].result(ADMIN_TIMEOUT_S) is None
    assert ck.describe_topic_configs(adm, name)["max.message.bytes"].value == "2000000"

    bad = ConfigResource(ResourceType.TOPIC, name, set_config={"no.such.config": "1"})
    assert_error(adm.alter_configs([bad])[bad], KafkaError.INVALID_CONFIG, "alter unknown config")
    assert ck.describe_topic_configs(adm, name)["max.message.bytes"].value == "2000000"

    missing = ConfigResource(ResourceType.TOPIC, unique_topic("nosuch-alter"),
                             set_config={"retention.ms": "1000"})
    assert_error(adm.alter_configs([missing])[missing], KafkaError.UNKNOWN_TOPIC_OR_PART,
                 "alter configs of unknown topic")


def incremental(adm, name, *entries):
    res = ConfigResource(ResourceType.TOPIC, name, incremental_configs=[
        ConfigEntry(k, v, incremental_operation=op) for k, v, op in entries])
    return adm.incremental_alter_configs([res])[res]


def test_incremental_alter_configs_set_and_delete(adm):
    defaults = default_topic_configs(adm)
    name = unique_topic("incr")
    create_topic(adm, name)
    assert incremental(adm, name, ("retention.ms", "7200000", AlterConfigOpType.SET),
                       ("max.message.bytes", "2000000", AlterConfigOpType.SET)).result(
        ADMIN_TIMEOUT_S) is None
    c = ck.describe_topic_configs(adm, name)
    assert c["retention.ms"].value == "7200000"
    assert ck.source_of(c["retention.ms"]) == ConfigSource.DYNAMIC_TOPIC_CONFIG

    # DELETE reverts to the default and leaves the other override alone
    assert incremental(adm, name, ("retention.ms", None, AlterConfigOpType.DELETE)).result(
        ADMIN_TIMEOUT_S) is None
    c = ck.describe_topic_configs(adm, name)
    assert c["retention.ms"].value == defaults["retention.ms"].value
    assert ck.source_of(c["retention.ms"]) in NON_DYNAMIC_SOURCES
    assert c["max.message.bytes"].value == "2000000"
    assert ck.source_of(c["max.message.bytes"]) == ConfigSource.DYNAMIC_TOPIC_CONFIG


def test_incremental_alter_configs_append_subtract_cleanup_policy(adm):
    name = unique_topic("incr-list")
    create_topic(adm, name)
    incremental(adm, name, ("cleanup.policy", "delete", AlterConfigOpType.SET)).result(
        ADMIN_TIMEOUT_S)
    incremental(adm, name, ("cleanup.policy", "compact", AlterConfigOpType.APPEND)).result(
        ADMIN_TIMEOUT_S)
    v = ck.describe_topic_configs(adm, name)["cleanup.policy"].value
    assert sorted(csv_set(v)) == ["compact", "delete"], v
    # appending a value already present does not duplicate it
    incremental(adm, name, ("cleanup.policy", "compact", AlterConfigOpType.APPEND)).result(
        ADMIN_TIMEOUT_S)
    v = ck.describe_topic_configs(adm, name)["cleanup.policy"].value
    assert sorted(csv_set(v)) == ["compact", "delete"], v
    incremental(adm, name, ("cleanup.policy", "delete", AlterConfigOpType.SUBTRACT)).result(
        ADMIN_TIMEOUT_S)
    c = ck.describe_topic_configs(adm, name)["cleanup.policy"]
    assert csv_set(c.value) == ["compact"], c.value
    assert ck.source_of(c) == ConfigSource.DYNAMIC_TOPIC_CONFIG


def test_incremental_alter_configs_append_subtract_throttled_replicas(adm):
    name = unique_topic("incr-throttle")
    create_topic(adm, name, partitions=2)
    bid = ck.broker_id(adm)
    key = "leader.replication.throttled.replicas"
    incremental(adm, name, (key, f"0:{bid}", AlterConfigOpType.APPEND)).result(ADMIN_TIMEOUT_S)
    assert csv_set(ck.describe_topic_configs(adm, name)[key].value) == [f"0:{bid}"]
    incremental(adm, name, (key, f"1:{bid}", AlterConfigOpType.APPEND)).result(ADMIN_TIMEOUT_S)
    assert sorted(csv_set(ck.describe_topic_configs(adm, name)[key].value)) == sorted(
        [f"0:{bid}", f"1:{bid}"])
    incremental(adm, name, (key, f"0:{bid}", AlterConfigOpType.SUBTRACT)).result(ADMIN_TIMEOUT_S)
    assert csv_set(ck.describe_topic_configs(adm, name)[key].value) == [f"1:{bid}"]


@pytest.mark.parametrize("entry,codes", [
    (("retention.ms", "not-a-number", AlterConfigOpType.SET), {KafkaError.INVALID_CONFIG}),
    (("cleanup.policy", "bogus", AlterConfigOpType.SET), {KafkaError.INVALID_CONFIG}),
    (("no.such.config", "1", AlterConfigOpType.SET), {KafkaError.INVALID_CONFIG}),
    # APPEND only applies to list configs: INVALID_CONFIG in current Kafka,
    # INVALID_REQUEST in older releases
    (("retention.ms", "5", AlterConfigOpType.APPEND),
     {KafkaError.INVALID_CONFIG, KafkaError.INVALID_REQUEST}),
], ids=["bad-long", "bad-enum", "unknown", "append-scalar"])
def test_incremental_alter_configs_invalid(adm, entry, codes):
    name = unique_topic("incr-bad")
    create_topic(adm, name, config={"retention.ms": "3600000"})
    err = ck.error_of(incremental(adm, name, entry))
    assert err.code() in codes, f"{entry}: {err}"
    assert ck.describe_topic_configs(adm, name)["retention.ms"].value == "3600000"


def test_raising_max_message_bytes_takes_effect(adm, bootstrap):
    """A 2 MiB record is refused by a default topic (max.message.bytes 1048588)
    with MSG_SIZE_TOO_LARGE, and accepted after raising the topic limit."""
    name = unique_topic("maxbytes")
    create_topic(adm, name)
    value = big_value(name, 0, 2 * 1024 * 1024)
    conf = ck.producer_conf(bootstrap, **{"enable.idempotence": False,
                                          "compression.type": "none",
                                          "message.max.bytes": 8 * 1024 * 1024,
                                          "message.timeout.ms": 30000, "retries": 0})
    p = Producer(conf)
    results = []
    p.produce(name, value=value, on_delivery=lambda err, msg: results.append(err))
    assert p.flush(60) == 0
    assert len(results) == 1 and results[0] is not None, "2 MiB record accepted by default topic"
    assert results[0].code() == KafkaError.MSG_SIZE_TOO_LARGE, results[0]

    incremental(adm, name, ("max.message.bytes", str(4 * 1024 * 1024),
                            AlterConfigOpType.SET)).result(ADMIN_TIMEOUT_S)
    results.clear()
    p.produce(name, value=value, on_delivery=lambda err, msg: results.append((err, msg.offset())))
    assert p.flush(60) == 0
    assert results == [(None, 0)], results


# ==========================================================================
# AdminClient: partitions and records
# ==========================================================================


def test_create_partitions(adm, bootstrap):
    name = unique_topic("addparts")
    create_topic(adm, name, partitions=1)
    fs = adm.create_partitions([NewPartitions(name, 4)], operation_timeout=ADMIN_TIMEOUT_S)
    assert fs[name].result(timeout=ADMIN_TIMEOUT_S) is None
    ck.wait_for_topic(adm, name, 4)
    bid = ck.broker_id(adm)
    desc = adm.describe_topics(TopicCollection([name]))[name].result(timeout=ADMIN_TIMEOUT_S)
    assert sorted(p.id for p in desc.partitions) == [0, 1, 2, 3]
    assert all(p.leader.id == bid for p in desc.partitions)

    # the new partitions take writes
    d = ck.produce_records(ck.producer_conf(bootstrap), name, 8,
                           RecordGen(name, base_timestamp_ms()), partition=3)
    assert d.positions == [(3, i) for i in range(8)]

    fewer = adm.create_partitions([NewPartitions(name, 2)], operation_timeout=ADMIN_TIMEOUT_S)
    assert_error(fewer[name], KafkaError.INVALID_PARTITIONS, "decrease partitions")
    same = adm.create_partitions([NewPartitions(name, 4)], operation_timeout=ADMIN_TIMEOUT_S)
    assert_error(same[name], KafkaError.INVALID_PARTITIONS, "same partition count")
    missing = unique_topic("nosuch-parts")
    fs = adm.create_partitions([NewPartitions(missing, 3)], operation_timeout=ADMIN_TIMEOUT_S)
    assert_error(fs[missing], KafkaError.UNKNOWN_TOPIC_OR_PART, "create_partitions unknown topic")
    ck.wait_for_topic(adm, name, 4)


def test_delete_records(adm, bootstrap):
    name = unique_topic("delrec")
    create_topic(adm, name, partitions=2)
    gen = RecordGen(name, base_timestamp_ms())
    d = ck.produce_records(ck.producer_conf(bootstrap), name, 100, gen, partition=0)
    assert d.positions == [(0, i) for i in range(100)]

    tp = TopicPartition(name, 0, 40)
    res = adm.delete_records([tp], operation_timeout=ADMIN_TIMEOUT_S)
    deleted = list(res.values())[0].result(timeout=ADMIN_TIMEOUT_S)
    assert deleted.low_watermark == 40

    lo = adm.list_offsets({TopicPartition(name, 0): OffsetSpec.earliest()})
    hi = adm.list_offsets({TopicPartition(name, 0): OffsetSpec.latest()})
    assert list(lo.values())[0].result(timeout=ADMIN_TIMEOUT_S).offset == 40
    assert list(hi.values())[0].result(timeout=ADMIN_TIMEOUT_S).offset == 100

    by_pos = d.by_position()
    first = []

    def check(msg):
        first.append(msg.offset())
        ck.assert_message_matches(msg, gen(by_pos[(0, msg.offset())]), f"offset {msg.offset()}")

    seen = ck.read_back(bootstrap, name, {0: 60}, check)
    assert seen[0] == list(range(40, 100))

    cons = Consumer(ck.consumer_conf(bootstrap))
    try:
        assert cons.get_watermark_offsets(TopicPartition(name, 0), timeout=10) == (40, 100)
    finally:
        cons.close()

    # Beyond the high watermark: OFFSET_OUT_OF_RANGE; the start stays at 40.
    res = adm.delete_records([TopicPartition(name, 0, 1000)], operation_timeout=ADMIN_TIMEOUT_S)
    assert_error(list(res.values())[0], KafkaError.OFFSET_OUT_OF_RANGE, "delete past HW")
    lo = adm.list_offsets({TopicPartition(name, 0): OffsetSpec.earliest()})
    assert list(lo.values())[0].result(timeout=ADMIN_TIMEOUT_S).offset == 40

    # OFFSET_END (-1) deletes everything up to the high watermark
    res = adm.delete_records([TopicPartition(name, 0, OFFSET_END)],
                             operation_timeout=ADMIN_TIMEOUT_S)
    assert list(res.values())[0].result(timeout=ADMIN_TIMEOUT_S).low_watermark == 100
    # the other partition is untouched
    lo1 = adm.list_offsets({TopicPartition(name, 1): OffsetSpec.earliest()})
    assert list(lo1.values())[0].result(timeout=ADMIN_TIMEOUT_S).offset == 0


# ==========================================================================
# Produce / consume round trips
# ==========================================================================


def round_trip(adm, bootstrap, name, n, codec, partitions=3, gen=None, producer_extra=None,
               consumer_extra=None):
    create_topic(adm, name, partitions=partitions)
    gen = gen or RecordGen(f"{name}-{codec}", base_timestamp_ms())
    conf = ck.producer_conf(bootstrap, **{"compression.type": codec, **(producer_extra or {})})
    d = ck.produce_records(conf, name, n, gen)
    ck.check_delivery_positions(d)
    by_pos = d.by_position()
    counts = d.counts()
    checked = [0]

    def check(msg):
        i = by_pos.get((msg.partition(), msg.offset()))
        assert i is not None, f"record at {msg.partition()}/{msg.offset()} was never acknowledged"
        ck.assert_message_matches(msg, gen(i), f"record {i} at {msg.partition()}/{msg.offset()}")
        checked[0] += 1

    seen = ck.read_back(bootstrap, name, counts, check, **(consumer_extra or {}))
    for p, offs in seen.items():
        assert offs == list(range(counts[p])), f"partition {p}: gaps/duplicates/reordering"
    assert checked[0] == n
    return d, gen


@pytest.mark.slow
@pytest.mark.parametrize("codec", CODECS)
def test_round_trip_100k(adm, bootstrap, codec):
    name = unique_topic(f"rt-{codec}")
    d, _ = round_trip(adm, bootstrap, name, ROUND_TRIP_RECORDS, codec)
    assert len(d.counts()) == 3, f"partitioner used only partitions {sorted(d.counts())}"
    # the high watermark is exactly the number of acknowledged records
    res = adm.list_offsets({TopicPartition(name, p): OffsetSpec.latest() for p in range(3)})
    for tp, f in res.items():
        assert f.result(timeout=ADMIN_TIMEOUT_S).offset == d.counts()[tp.partition]


@pytest.mark.slow
@pytest.mark.parametrize("codec", ["none", "zstd"])
def test_round_trip_large_values(adm, bootstrap, codec):
    """1 MiB values (and one 3 MiB) on a topic with max.message.bytes=8 MiB; the
    consumer keeps librdkafka's 1 MiB max.partition.fetch.bytes, so the broker
    must hand out a batch larger than that (KIP-74)."""
    name = unique_topic(f"big-{codec}")
    create_topic(adm, name, partitions=1, config={"max.message.bytes": str(8 * 1024 * 1024)})
    sizes = [1024 * 1024] * 12 + [1024 * 1024 - 1, 3 * 1024 * 1024, 1, 0]
    base = base_timestamp_ms()
    conf = ck.producer_conf(bootstrap, **{"compression.type": codec,
                                          "message.max.bytes": 16 * 1024 * 1024})

    class Gen:
        def __call__(self, i):
            return Rec(f"big-{i}".encode(), big_value(name, i, sizes[i]),
                       (("size", str(sizes[i]).encode()),), base + i)

    gen = Gen()
    d = ck.produce_records(conf, name, len(sizes), gen)
    ck.check_delivery_positions(d)
    by_pos = d.by_position()
    seen = ck.read_back(bootstrap, name, {0: len(sizes)},
                        lambda m: ck.assert_message_matches(m, gen(by_pos[(0, m.offset())])),
                        **{"max.partition.fetch.bytes": 1024 * 1024})
    assert seen[0] == list(range(len(sizes)))


@pytest.mark.parametrize("acks", ["0", "1"])
def test_produce_acks_0_and_1(adm, bootstrap, acks):
    name = unique_topic(f"acks{acks}")
    create_topic(adm, name, partitions=1)
    n = 2000
    gen = RecordGen(name, base_timestamp_ms())
    conf = ck.producer_conf(bootstrap, **{"acks": acks, "enable.idempotence": False,
                                          "max.in.flight.requests.per.connection": 1})
    p = Producer(conf)
    errors = []
    reports = []
    for i in range(n):
        r = gen(i)
        p.produce(name, key=r.key, value=r.value, headers=list(r.headers) or None,
                  timestamp=r.timestamp_ms, partition=0,
                  on_delivery=lambda err, msg: (errors.append(err) if err else
                                                reports.append(msg.offset())))
        if i % 500 == 0:
            p.poll(0)
    assert p.flush(60) == 0
    assert not errors, errors[:5]
    assert len(reports) == n
    if acks == "1":
        assert reports == list(range(n))
    # acks=0 gives no offsets back; read everything and check it is all there, in order.
    deadline = time.monotonic() + 30
    while True:
        res = adm.list_offsets({TopicPartition(name, 0): OffsetSpec.latest()})
        hw = list(res.values())[0].result(timeout=ADMIN_TIMEOUT_S).offset
        if hw == n or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert hw == n, f"high watermark {hw}, expected {n}"

    def check(msg):
        ck.assert_message_matches(msg, gen(msg.offset()), f"offset {msg.offset()}")

    seen = ck.read_back(bootstrap, name, {0: n}, check)
    assert seen[0] == list(range(n))


def test_auto_create_topic_on_produce(adm, bootstrap):
    name = unique_topic("auto")
    assert name not in ck.topic_names(adm)
    gen = RecordGen(name, base_timestamp_ms())
    d = ck.produce_records(ck.producer_conf(bootstrap), name, 50, gen)
    md = ck.wait_for_topic(adm, name, 1)  # num.partitions default = 1
    assert len(md.topics[name].partitions) == 1
    assert d.positions == [(0, i) for i in range(50)]
    configs = ck.describe_topic_configs(adm, name)
    assert all(ck.source_of(e) in NON_DYNAMIC_SOURCES for e in configs.values())
    ck.read_back(bootstrap, name, {0: 50},
                 lambda m: ck.assert_message_matches(m, gen(m.offset())))


def test_assign_explicit_offset(adm, bootstrap):
    """A consumer assigned at an explicit offset starts exactly there."""
    name = unique_topic("seek")
    create_topic(adm, name, partitions=1)
    gen = RecordGen(name, base_timestamp_ms())
    ck.produce_records(ck.producer_conf(bootstrap), name, 300, gen, partition=0)
    seen = ck.read_back(bootstrap, name, {0: 43},
                        lambda m: ck.assert_message_matches(m, gen(m.offset())),
                        start_offsets={0: 257})
    assert seen[0] == list(range(257, 300))


# ==========================================================================
# Offsets for times
# ==========================================================================


def test_offsets_for_times_and_offset_specs(adm, bootstrap):
    name = unique_topic("times")
    create_topic(adm, name, partitions=1)
    base = base_timestamp_ms()
    n = 20
    stamps = [base + 1000 * i for i in range(n)]
    stamps[7] = base + 100_000       # the maximum, in the middle
    stamps[12] = base + 500          # out of order

    def gen(i):
        return Rec(f"k{i}".encode(), f"v{i}".encode(), (), stamps[i])

    d = ck.produce_records(ck.producer_conf(bootstrap), name, n, gen, partition=0)
    assert d.positions == [(0, i) for i in range(n)]

    queries = sorted({base - 1, base, base + 1, base + 500, base + 501, base + 6999,
                      base + 7000, base + 8000, base + 19_000, base + 19_001,
                      base + 100_000, base + 100_001})
    expected = {ts: first_offset_at_or_after(stamps, ts) for ts in queries}
    assert -1 in expected.values() and 7 in expected.values()  # the cases are meaningful

    cons = Consumer(ck.consumer_conf(bootstrap))
    try:
        for ts, want in expected.items():
            got = cons.offsets_for_times([TopicPartition(name, 0, ts)], timeout=15)
            assert got[0].error is None, got[0].error
            want_off = OFFSET_END if want == -1 else want
            assert got[0].offset == want_off, f"offsets_for_times({ts - base:+d}): " \
                                              f"{got[0].offset}, expected {want_off}"
    finally:
        cons.close()

    tp = TopicPartition(name, 0)
    for ts, want in expected.items():
        info = adm.list_offsets({tp: OffsetSpec.for_timestamp(ts)})[tp].result(ADMIN_TIMEOUT_S)
        assert info.offset == want, f"list_offsets(for_timestamp {ts - base:+d})"
        if want >= 0:
            assert info.timestamp == stamps[want]

    earliest = adm.list_offsets({tp: OffsetSpec.earliest()})[tp].result(ADMIN_TIMEOUT_S)
    latest = adm.list_offsets({tp: OffsetSpec.latest()})[tp].result(ADMIN_TIMEOUT_S)
    maxts = adm.list_offsets({tp: OffsetSpec.max_timestamp()})[tp].result(ADMIN_TIMEOUT_S)
    assert earliest.offset == 0
    assert latest.offset == n
    assert maxts.offset == stamps.index(max(stamps))
    assert maxts.timestamp == max(stamps)


# ==========================================================================
# Restarts (own broker processes)
# ==========================================================================


def _populate(bootstrap, name, codec, n=20_000):
    a = ck.admin(bootstrap)
    create_topic(a, name, partitions=3, config={"retention.ms": "86400000"})
    gen = RecordGen(f"{name}-{codec}", base_timestamp_ms())
    d = ck.produce_records(ck.producer_conf(bootstrap, **{"compression.type": codec}),
                           name, n, gen)
    ck.check_delivery_positions(d)
    return a, gen, d


def _verify_all(bootstrap, name, gen, d, start_offsets=None):
    by_pos = d.by_position()
    counts = d.counts()
    start_offsets = start_offsets or {}
    expected = {p: c - start_offsets.get(p, 0) for p, c in counts.items()}

    def check(msg):
        i = by_pos[(msg.partition(), msg.offset())]
        ck.assert_message_matches(msg, gen(i), f"record {i}")

    seen = ck.read_back(bootstrap, name, expected, check,
                        start_offsets={p: o for p, o in start_offsets.items()})
    for p, offs in seen.items():
        assert offs == list(range(start_offsets.get(p, 0), counts[p]))


@pytest.mark.slow
@pytest.mark.restart
def test_records_survive_restart(broker_factory):
    b1 = broker_factory.start()
    name = unique_topic("restart")
    a, gen, d = _populate(b1.bootstrap, name, "lz4")
    cluster_id = a.describe_cluster().result(ADMIN_TIMEOUT_S).cluster_id
    bid = ck.broker_id(a)
    tp0 = TopicPartition(name, 0, 25)
    a.delete_records([tp0], operation_timeout=ADMIN_TIMEOUT_S)[tp0].result(ADMIN_TIMEOUT_S)
    incremental(a, name, ("max.message.bytes", "3000000", AlterConfigOpType.SET)).result(
        ADMIN_TIMEOUT_S)
    counts = d.counts()

    b1.stop_cleanly()
    b2 = broker_factory.start(data_dir=b1.data_dir, port=b1.port)
    a2 = ck.admin(b2.bootstrap)
    md = ck.wait_for_topic(a2, name, 3)
    assert md.cluster_id == cluster_id, "cluster id changed across restart"
    assert ck.broker_id(a2) == bid
    c = ck.describe_topic_configs(a2, name)
    for k, v in {"retention.ms": "86400000", "max.message.bytes": "3000000"}.items():
        assert c[k].value == v
        assert ck.source_of(c[k]) == ConfigSource.DYNAMIC_TOPIC_CONFIG
    for p in range(3):
        tp = TopicPartition(name, p)
        lo = a2.list_offsets({tp: OffsetSpec.earliest()})[tp].result(ADMIN_TIMEOUT_S).offset
        hi = a2.list_offsets({tp: OffsetSpec.latest()})[tp].result(ADMIN_TIMEOUT_S).offset
        assert (lo, hi) == ((25 if p == 0 else 0), counts[p]), f"partition {p} after restart"
    _verify_all(b2.bootstrap, name, gen, d, start_offsets={0: 25})

    # new records continue after the old ones
    more = ck.produce_records(ck.producer_conf(b2.bootstrap), name, 10,
                              RecordGen(f"{name}-more", base_timestamp_ms()), partition=1)
    assert more.positions == [(1, counts[1] + i) for i in range(10)]
    b2.stop_cleanly()


@pytest.mark.slow
@pytest.mark.restart
def test_acknowledged_records_survive_sigkill(broker_factory):
    """acks=all is acknowledged only after the data is durable (DESIGN §4):
    a SIGKILL right after the last acknowledgement loses nothing."""
    b1 = broker_factory.start()
    name = unique_topic("crash")
    _, gen, d = _populate(b1.bootstrap, name, "zstd", n=10_000)
    b1.kill()
    b2 = broker_factory.start(data_dir=b1.data_dir, port=b1.port)
    ck.wait_for_topic(ck.admin(b2.bootstrap), name, 3)
    _verify_all(b2.bootstrap, name, gen, d)
    b2.stop_cleanly()


@pytest.mark.restart
def test_deleted_topic_stays_deleted_after_restart(broker_factory):
    b1 = broker_factory.start()
    a = ck.admin(b1.bootstrap)
    keep, gone = unique_topic("keep"), unique_topic("gone")
    create_topic(a, keep, partitions=2)
    create_topic(a, gone, partitions=1)
    a.delete_topics([gone], operation_timeout=ADMIN_TIMEOUT_S)[gone].result(ADMIN_TIMEOUT_S)
    ck.wait_topic_gone(a, gone)
    b1.stop_cleanly()
    b2 = broker_factory.start(data_dir=b1.data_dir)
    a2 = ck.admin(b2.bootstrap)
    ck.wait_for_topic(a2, keep, 2)
    assert gone not in ck.topic_names(a2)
    b2.stop_cleanly()


def test_broker_prints_its_endpoint(broker):
    """`tributary start` prints the endpoints it listens on."""
    if not getattr(broker, "owned", False) or broker.log_path is None:
        pytest.skip("external broker: its output is not captured")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        text = broker.log_path.read_text(errors="replace")
        if str(broker.port) in text:
            return
        time.sleep(0.2)
    pytest.fail(f"port {broker.port} not mentioned in the broker output ({broker.log_path})")

