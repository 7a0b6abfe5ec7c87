"""Admin conformance with Kafka 4.x, checked with kafka-python 3.x,
confluent-kafka and raw requests:

* DescribeConfigs: what a broker was started with (server.properties,
  `--override`, KAFKA_* variables, `tributary start`'s tributary.properties)
  is STATIC_BROKER_CONFIG; synonym chains, read-only flags, sensitivity,
  config types and documentation follow Kafka's rules (ConfigHelper), down
  to Kafka's quirks (topic retention.ms with only log.retention.hours set is
  DEFAULT_CONFIG with no synonyms, because log.retention.ms heads the chain);
* ListConfigResources (74, v0-1) and DescribeTopicPartitions (75, v0, with
  cursor paging), which kafka-python 3.x's admin calls;
* list configs may be emptied: subtracting `delete` from
  `cleanup.policy=delete` leaves `cleanup.policy=""`, as confluent-kafka's
  own admin integration test expects.
"""

from __future__ import annotations

import os
import uuid

import pytest
from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource, ConfigSource, ResourceType
from kafka import KafkaAdminClient
from kafka.admin import ConfigResource as KpResource
from kafka.admin import ConfigResourceType, NewTopic

import ck
import kwire
from payloads import unique_topic

STATIC = ConfigSource.STATIC_BROKER_CONFIG
DEFAULT = ConfigSource.DEFAULT_CONFIG
TOPIC_CONFIG = ConfigSource.DYNAMIC_TOPIC_CONFIG

LIST_CONFIG_RESOURCES = 74
DESCRIBE_TOPIC_PARTITIONS = 75
DESCRIBE_CONFIGS = 32
UNKNOWN_TOPIC_OR_PARTITION = 3
INVALID_REQUEST = 42
UNSUPPORTED_VERSION = 35

PROPERTIES = """\
process.roles=broker,controller
node.id=7
controller.quorum.voters=7@127.0.0.1:{controller_port}
listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}
advertised.listeners=PLAINTEXT://127.0.0.1:{port}
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs={data_dir}
num.partitions=3
offsets.topic.replication.factor=1
log.retention.hours=24
message.max.bytes=2000000
allow.everyone.if.no.acl.found=true
"""
FILE_KEYS = {"process.roles", "node.id", "controller.quorum.voters", "listeners", "advertised.listeners",
             "controller.listener.names", "listener.security.protocol.map", "log.dirs", "num.partitions",
             "offsets.topic.replication.factor", "log.retention.hours", "message.max.bytes",
             "allow.everyone.if.no.acl.found"}
OVERRIDES = {"log.segment.bytes": "536870912"}
ENV = {"KAFKA_LOG_RETENTION_BYTES": "1073741824"}


def kp_admin(bootstrap: str) -> KafkaAdminClient:
    return KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=30000)


def kp_broker_configs(adm: KafkaAdminClient, bid: int, config_filter: str = "all") -> dict:
    r = adm.describe_configs([KpResource(ConfigResourceType.BROKER, str(bid))], include_synonyms=True,
                             config_filter=config_filter)
    return r["broker"][str(bid)]


def kp_topic_configs(adm: KafkaAdminClient, name: str) -> dict:
    r = adm.describe_configs([KpResource(ConfigResourceType.TOPIC, name)], include_synonyms=True,
                             config_filter="all")
    return r["topic"][name]


def chain(entry: dict) -> list[tuple[str, str | None, str]]:
    return [(s["name"], s["value"], s["source"]) for s in entry["synonyms"]]


def env_keys() -> set[str]:
    """Property keys the broker reads from KAFKA_* variables of this environment."""
    skip = {"KAFKA_HEAP_OPTS", "KAFKA_OPTS", "KAFKA_JVM_PERFORMANCE_OPTS", "KAFKA_GC_LOG_OPTS",
            "KAFKA_LOG4J_OPTS", "KAFKA_JMX_OPTS", "KAFKA_JMX_PORT", "KAFKA_JMX_HOSTNAME", "KAFKA_DEBUG",
            "KAFKA_VERSION", "KAFKA_HOME", "KAFKA_LOG4J_ROOT_LOGLEVEL", "KAFKA_LOG4J_LOGGERS",
            "KAFKA_TOOLS_LOG4J_LOGLEVEL", "KAFKA_CLUSTER_ID"}
    out = set()
    for name in os.environ:
        if name.startswith("KAFKA_") and name not in skip:
            out.add(name[6:].lower().replace("___", "-").replace("__", "\0").replace("_", ".").replace("\0", "_"))
    return out


@pytest.fixture
def props_broker(broker_factory, monkeypatch):
    """`tributary broker --config server.properties --override ...` with a KAFKA_* variable set."""
    for k, v in ENV.items():
        monkeypatch.setenv(k, v)
    return broker_factory.start_with_config(PROPERTIES, overrides=OVERRIDES)


# ==========================================================================
# DescribeConfigs: sources, synonyms, flags
# ==========================================================================


def test_startup_settings_are_static_broker_config_kafka_python(props_broker):
    adm = kp_admin(props_broker.bootstrap)
    try:
        static = kp_broker_configs(adm, 7, "static")
        started_with = FILE_KEYS | set(OVERRIDES) | env_keys()
        assert FILE_KEYS | set(OVERRIDES) | {"log.retention.bytes"} <= set(static), sorted(static)
        assert set(static) <= started_with, sorted(set(static) - started_with)

        bc = kp_broker_configs(adm, 7)
        adv = bc["advertised.listeners"]
        assert (adv["value"], adv["config_source"], adv["read_only"], adv["is_sensitive"], adv["config_type"]) == (
            f"PLAINTEXT://127.0.0.1:{props_broker.port}", "STATIC_BROKER_CONFIG", True, False, "STRING")
        assert chain(adv) == [("advertised.listeners", adv["value"], "STATIC_BROKER_CONFIG")]
        # listeners can be reconfigured in Kafka (advertised.listeners cannot since 4.0)
        assert (bc["listeners"]["config_source"], bc["listeners"]["read_only"]) == ("STATIC_BROKER_CONFIG", False)
        hours = bc["log.retention.hours"]
        assert (hours["value"], hours["config_source"], hours["read_only"], hours["config_type"]) == (
            "24", "STATIC_BROKER_CONFIG", True, "INT")
        assert chain(hours) == [("log.retention.hours", "24", "STATIC_BROKER_CONFIG"),
                                ("log.retention.hours", "168", "DEFAULT_CONFIG")]
        ms = bc["log.retention.ms"]
        assert (ms["value"], ms["config_source"], ms["read_only"], chain(ms)) == (
            None, "DEFAULT_CONFIG", False, [])
        assert (bc["log.retention.bytes"]["value"], bc["log.retention.bytes"]["config_source"]) == (
            "1073741824", "STATIC_BROKER_CONFIG")
        seg = bc["log.segment.bytes"]
        assert (seg["value"], seg["config_source"], seg["read_only"]) == (
            "536870912", "STATIC_BROKER_CONFIG", False)
        parts = bc["num.partitions"]
        assert (parts["value"], parts["config_source"], parts["read_only"], parts["config_type"]) == (
            "3", "STATIC_BROKER_CONFIG", True, "INT")
        # a key Kafka's broker config does not define: listed, secret, type unknown
        acl = bc["allow.everyone.if.no.acl.found"]
        assert (acl["value"], acl["config_source"], acl["read_only"], acl["is_sensitive"], acl["config_type"]) == (
            None, "STATIC_BROKER_CONFIG", True, True, "UNKNOWN")
        untouched = bc["auto.create.topics.enable"]
        assert (untouched["config_source"], chain(untouched)) == (
            "DEFAULT_CONFIG", [("auto.create.topics.enable", "true", "DEFAULT_CONFIG")])

        name = unique_topic("static-topic")
        adm.create_topics([NewTopic(name, 1, 1)])
        tc = kp_topic_configs(adm, name)
        # log.retention.ms is not set, so nothing heads retention.ms's chain
        assert (tc["retention.ms"]["value"], tc["retention.ms"]["config_source"], chain(tc["retention.ms"])) == (
            "86400000", "DEFAULT_CONFIG", [])
        assert (tc["segment.bytes"]["config_source"], chain(tc["segment.bytes"])) == (
            "STATIC_BROKER_CONFIG", [("log.segment.bytes", "536870912", "STATIC_BROKER_CONFIG"),
                                     ("log.segment.bytes", "1073741824", "DEFAULT_CONFIG")])
        assert (tc["max.message.bytes"]["value"], tc["max.message.bytes"]["config_source"]) == (
            "2000000", "STATIC_BROKER_CONFIG")
        assert all(not c["read_only"] for c in tc.values())
    finally:
        adm.close()
    props_broker.stop_cleanly()


def test_startup_settings_are_static_broker_config_confluent_kafka(props_broker):
    adm = ck.admin(props_broker.bootstrap)
    bc = ck.describe_broker_configs(adm, 7)
    adv = bc["advertised.listeners"]
    assert (ck.source_of(adv), adv.is_read_only, adv.is_sensitive) == (STATIC, True, False)
    assert {n: ck.source_of(s) for n, s in adv.synonyms.items()} == {"advertised.listeners": STATIC}
    hours = bc["log.retention.hours"]
    assert (hours.value, ck.source_of(hours), hours.is_read_only) == ("24", STATIC, True)
    assert bc["listeners"].is_read_only is False
    assert (ck.source_of(bc["log.retention.ms"]), bc["log.retention.ms"].is_read_only) == (DEFAULT, False)
    acl = bc["allow.everyone.if.no.acl.found"]
    assert (acl.value, ck.source_of(acl), acl.is_sensitive, acl.is_read_only) == (None, STATIC, True, True)

    name = unique_topic("static-topic-ck")
    ck.create_topic(adm, name)
    tc = ck.describe_topic_configs(adm, name)
    assert (tc["retention.ms"].value, ck.source_of(tc["retention.ms"]), tc["retention.ms"].synonyms) == (
        "86400000", DEFAULT, {})
    assert ck.source_of(tc["segment.bytes"]) == STATIC
    assert all(not e.is_read_only and not e.is_sensitive for e in tc.values())
    props_broker.stop_cleanly()


def test_tributary_start_settings_are_static_broker_config(broker_factory):
    """`tributary start`: the data dir's tributary.properties (development
    defaults), the listener and data dir it fills in, and `--override`."""
    b = broker_factory.start(overrides={"log.retention.hours": "12"})
    adm = kp_admin(b.bootstrap)
    try:
        bid = next(iter(ck.admin(b.bootstrap).list_topics(timeout=30).brokers))
        static = kp_broker_configs(adm, bid, "static")
        for key, value in {"offsets.topic.replication.factor": "1", "log.retention.hours": "12",
                           "listeners": f"PLAINTEXT://127.0.0.1:{b.port}"}.items():
            assert (static[key]["value"], static[key]["config_source"]) == (value, "STATIC_BROKER_CONFIG"), key
        assert static["log.dirs"]["config_source"] == "STATIC_BROKER_CONFIG"
        assert "num.partitions" not in static, "never set, so DEFAULT_CONFIG"
        # read-only as in Kafka: only log.retention.ms of the three can change at runtime
        assert static["log.retention.hours"]["read_only"] is True
        assert chain(static["log.retention.hours"]) == [("log.retention.hours", "12", "STATIC_BROKER_CONFIG"),
                                                        ("log.retention.hours", "168", "DEFAULT_CONFIG")]
    finally:
        adm.close()
    b.stop_cleanly()


def incremental(adm, kind, name, *entries):
    res = ConfigResource(kind, name, incremental_configs=[
        ConfigEntry(k, v, incremental_operation=op) for k, v, op in entries])
    return adm.incremental_alter_configs([res])[res]


def incremental_raw(bootstrap, kind, name, entries) -> tuple[int, str | None]:
    """IncrementalAlterConfigs v1 by hand: the clients refuse an empty broker
    name, which is how the cluster-wide default is addressed."""
    host, port = kwire.parse_hostport(bootstrap)
    ops = {"SET": 0, "DELETE": 1, "APPEND": 2, "SUBTRACT": 3}

    def config(e):
        k, op, v = e
        return kwire.compact_string(k) + kwire.i8(ops[op]) + kwire.compact_string(v) + kwire.EMPTY_TAGS

    resource = kwire.i8(kind) + kwire.compact_string(name) + kwire.compact_array(entries, config) + kwire.EMPTY_TAGS
    body = kwire.compact_array([resource], lambda r: r) + kwire.boolean(False) + kwire.EMPTY_TAGS
    with kwire.Connection(host, port) as c:
        cid = c.send_request(44, 1, body, flexible=True)
        r = c.recv_response(cid, flexible_header=True)
    r.i32()

    def response(rr):
        out = (rr.i16(), rr.compact_string())
        rr.i8(), rr.compact_string(), rr.tagged_fields()
        return out

    (result,) = r.compact_array(response)
    return result


def test_dynamic_layers_order_the_synonym_chain(broker_factory):
    b = broker_factory.start(overrides={"log.retention.hours": "24"})
    adm = ck.admin(b.bootstrap)
    bid = ck.broker_id(adm)
    assert incremental_raw(b.bootstrap, 4, "", [("log.retention.ms", "SET", "3600000")]) == (0, None)
    incremental(adm, ResourceType.BROKER, str(bid), ("log.retention.ms", "1800000", AlterConfigOpType.SET)).result(30)
    kp = kp_admin(b.bootstrap)
    try:
        ms = kp_broker_configs(kp, bid)["log.retention.ms"]
        expected = [("log.retention.ms", "1800000", "DYNAMIC_BROKER_CONFIG"),
                    ("log.retention.ms", "3600000", "DYNAMIC_DEFAULT_BROKER_CONFIG"),
                    ("log.retention.hours", "24", "STATIC_BROKER_CONFIG"),
                    ("log.retention.hours", "168", "DEFAULT_CONFIG")]
        assert (ms["value"], ms["config_source"], chain(ms)) == ("1800000", "DYNAMIC_BROKER_CONFIG", expected)
        # the cluster default lists its own keys, with its own layer only
        (default,) = describe_v4(b.host, b.port, [(4, "", None)], False)
        assert [(c["name"], c["value"], c["source"], c["read_only"]) for c in default["configs"]] == [
            ("log.retention.ms", "3600000", 3, False)]
        assert [(s["name"], s["value"], s["source"]) for s in default["configs"][0]["synonyms"]] == [
            ("log.retention.ms", "3600000", 3)]
        name = unique_topic("layers")
        kp.create_topics([NewTopic(name, 1, 1)])
        r = kp_topic_configs(kp, name)["retention.ms"]
        assert (r["value"], r["config_source"], chain(r)) == ("1800000", "DYNAMIC_BROKER_CONFIG", expected)
    finally:
        kp.close()
    # read-only in Kafka: refused
    ck.error_of(incremental(adm, ResourceType.BROKER, str(bid), ("log.retention.hours", "1", AlterConfigOpType.SET)))
    b.stop_cleanly()


# DescribeConfigs v4 by hand: documentation only when asked, config types.

def describe_configs_v4_body(resources: list[tuple[int, str, list[str] | None]], documentation: bool) -> bytes:
    def res(r):
        kind, name, keys = r
        return (kwire.i8(kind) + kwire.compact_string(name)
                + (kwire.uvarint(0) if keys is None else kwire.compact_array(keys, kwire.compact_string))
                + kwire.EMPTY_TAGS)
    return kwire.compact_array(resources, res) + kwire.boolean(True) + kwire.boolean(documentation) + kwire.EMPTY_TAGS


def parse_describe_configs_v4(r: kwire.Reader) -> list[dict]:
    r.i32()

    def synonym(rr):
        s = {"name": rr.compact_string(), "value": rr.compact_string(), "source": rr.i8()}
        rr.tagged_fields()
        return s

    def config(rr):
        c = {"name": rr.compact_string(), "value": rr.compact_string(), "read_only": rr.boolean(),
             "source": rr.i8(), "sensitive": rr.boolean(), "synonyms": rr.compact_array(synonym),
             "type": rr.i8(), "documentation": rr.compact_string()}
        rr.tagged_fields()
        return c

    def result(rr):
        out = {"error": rr.i16(), "message": rr.compact_string(), "type": rr.i8(), "name": rr.compact_string(),
               "configs": rr.compact_array(config)}
        rr.tagged_fields()
        return out

    results = r.compact_array(result)
    r.tagged_fields()
    assert r.remaining() == 0
    return results


def describe_v4(host, port, resources, documentation):
    with kwire.Connection(host, port) as c:
        cid = c.send_request(DESCRIBE_CONFIGS, 4, describe_configs_v4_body(resources, documentation), flexible=True)
        return parse_describe_configs_v4(c.recv_response(cid, flexible_header=True))


def test_config_types_and_documentation_raw(props_broker):
    topic = unique_topic("doc")
    ck.create_topic(ck.admin(props_broker.bootstrap), topic)
    keys = ["retention.ms", "cleanup.policy", "compression.type", "min.cleanable.dirty.ratio", "preallocate"]
    plain = describe_v4(props_broker.host, props_broker.port, [(2, topic, keys), (4, "7", None)], False)
    by_name = {c["name"]: c for c in plain[0]["configs"]}
    assert set(by_name) == set(keys)
    # ConfigType codes: 1 boolean, 2 string, 5 long, 6 double, 7 list
    assert {k: c["type"] for k, c in by_name.items()} == {
        "retention.ms": 5, "cleanup.policy": 7, "compression.type": 2, "min.cleanable.dirty.ratio": 6,
        "preallocate": 1}
    assert all(c["documentation"] is None for r in plain for c in r["configs"])
    broker = {c["name"]: c for c in plain[1]["configs"]}
    assert (broker["allow.everyone.if.no.acl.found"]["type"], broker["num.partitions"]["type"]) == (0, 3)
    # an empty key list is every config, as in Kafka
    everything = describe_v4(props_broker.host, props_broker.port, [(2, topic, [])], True)
    docs = {c["name"]: c["documentation"] for c in everything[0]["configs"]}
    assert len(docs) > 30 and all(d for d in docs.values()), docs
    # unknown topic: no message; invalid name: INVALID_TOPIC_EXCEPTION
    missing = describe_v4(props_broker.host, props_broker.port, [(2, unique_topic("gone"), None), (2, "a/b", None)],
                          False)
    assert [(m["error"], m["message"], m["configs"]) for m in missing][0] == (UNKNOWN_TOPIC_OR_PARTITION, None, [])
    assert missing[1]["error"] == 17
    props_broker.stop_cleanly()


# ==========================================================================
# ListConfigResources (74) and DescribeTopicPartitions (75)
# ==========================================================================


def test_api_versions_advertise_the_4_1_admin_apis(bootstrap):
    host, port = kwire.parse_hostport(bootstrap)
    with kwire.Connection(host, port) as c:
        cid = c.send_request(kwire.API_VERSIONS, 3, kwire.api_versions_v3_body("compat", "1.0"), flexible=True)
        resp = kwire.parse_api_versions_v3(c.recv_response(cid))
    assert resp.api_keys[LIST_CONFIG_RESOURCES] == (0, 1)
    assert resp.api_keys[DESCRIBE_TOPIC_PARTITIONS] == (0, 0)


def test_list_config_resources_kafka_python(bootstrap):
    adm = kp_admin(bootstrap)
    try:
        name = unique_topic("lcr")
        adm.create_topics([NewTopic(name, 2, 1)])
        bid = str(ck.broker_id(ck.admin(bootstrap)))
        everything = adm.list_config_resources()
        assert everything["broker"] == [bid] and everything["broker_logger"] == [bid]
        assert name in everything["topic"] and "__consumer_offsets" in everything["topic"]
        assert set(everything) == {"broker", "broker_logger", "topic"}, everything
        assert set(adm.list_config_resources(["TOPIC"])) == {"topic"}
        assert adm.list_config_resources(["BROKER"]) == {"broker": [bid]}
        # no group configs and no client-metrics subscriptions are stored
        assert adm.list_config_resources(["GROUP", "CLIENT_METRICS"]) == {}
    finally:
        adm.close()


def list_config_resources_raw(bootstrap, version, types):
    host, port = kwire.parse_hostport(bootstrap)
    body = (kwire.compact_array(types, kwire.i8) if version >= 1 else b"") + kwire.EMPTY_TAGS
    with kwire.Connection(host, port) as c:
        cid = c.send_request(LIST_CONFIG_RESOURCES, version, body, flexible=True)
        r = c.recv_response(cid, flexible_header=True)
    r.i32()
    error = r.i16()

    def resource(rr):
        name = rr.compact_string()
        kind = rr.i8() if version >= 1 else 16
        rr.tagged_fields()
        return kind, name

    resources = r.compact_array(resource)
    r.tagged_fields()
    return error, resources


def test_list_config_resources_raw(bootstrap):
    name = unique_topic("lcr-raw")
    ck.create_topic(ck.admin(bootstrap), name)
    # v0 lists client-metrics subscriptions only: none here
    assert list_config_resources_raw(bootstrap, 0, []) == (0, [])
    error, resources = list_config_resources_raw(bootstrap, 1, [])
    assert error == 0
    kinds = [k for k, _ in resources]
    # Kafka's order: broker loggers, brokers, then topics
    assert kinds[:2] == [8, 4] and set(kinds[2:]) == {2}
    assert (2, name) in resources
    # a type the version does not list fails the whole request
    assert list_config_resources_raw(bootstrap, 1, [2, 1]) == (UNSUPPORTED_VERSION, [])
    assert list_config_resources_raw(bootstrap, 1, [64]) == (UNSUPPORTED_VERSION, [])


def pages_kafka_python(adm, topics, limit):
    """Every (topic, partition) DescribeTopicPartitions returns, following cursors."""
    seen, cursor, pages = [], None, 0
    while True:
        r = adm.describe_topic_partitions(topics, response_partition_limit=limit, cursor=cursor)
        pages += 1
        for t in r["topics"]:
            assert t["error_code"] == 0, t
            assert t["topic_id"] is not None and t["topic_id"].int != 0, t
            assert t["topic_authorized_operations"] > 0
            for p in t["partitions"]:
                assert p["replica_nodes"] == [p["leader_id"]] == p["isr_nodes"], p
                assert p["offline_replicas"] == [] and not p["eligible_leader_replicas"] and not p["last_known_elr"]
                seen.append((t["name"], p["partition_index"]))
        cursor = r["next_cursor"]
        if cursor is None:
            return seen, pages
        assert pages < 100, "paging does not end"


def test_describe_topic_partitions_pages_kafka_python(bootstrap):
    adm = kp_admin(bootstrap)
    try:
        prefix = f"dtp-{uuid.uuid4().hex[:8]}"
        sizes = {f"{prefix}-a": 3, f"{prefix}-b": 1, f"{prefix}-c": 4, f"{prefix}-d": 2}
        adm.create_topics([NewTopic(n, p, 1) for n, p in sizes.items()])
        expected = [(n, p) for n in sorted(sizes) for p in range(sizes[n])]
        # named topics, in any order and repeated, come back sorted and paged
        named = [f"{prefix}-d", f"{prefix}-a", f"{prefix}-c", f"{prefix}-b", f"{prefix}-a"]
        for limit, pages in [(2, 5), (3, 4), (4, 3), (10, 1)]:
            seen, n = pages_kafka_python(adm, named, limit)
            assert seen == expected, limit
            assert n == pages, f"limit {limit}: {n} pages"
        # every topic: ours appear in order, each partition once
        seen, _ = pages_kafka_python(adm, [], 3)
        assert [s for s in seen if s[0].startswith(prefix)] == expected
        assert len(seen) == len(set(seen))
        # unknown and internal topics
        r = adm.describe_topic_partitions([f"{prefix}-zzz", "__consumer_offsets"], response_partition_limit=2000)
        by_name = {t["name"]: t for t in r["topics"]}
        assert by_name[f"{prefix}-zzz"]["error_code"] == UNKNOWN_TOPIC_OR_PARTITION
        assert by_name[f"{prefix}-zzz"]["partitions"] == []
        assert by_name["__consumer_offsets"]["is_internal"] is True
    finally:
        adm.close()


def describe_topic_partitions_raw(bootstrap, topics, limit, cursor):
    host, port = kwire.parse_hostport(bootstrap)
    body = kwire.compact_array(topics, lambda t: kwire.compact_string(t) + kwire.EMPTY_TAGS) + kwire.i32(limit)
    if cursor is None:
        body += kwire.i8(-1)
    else:
        body += kwire.i8(1) + kwire.compact_string(cursor[0]) + kwire.i32(cursor[1]) + kwire.EMPTY_TAGS
    body += kwire.EMPTY_TAGS
    with kwire.Connection(host, port) as c:
        cid = c.send_request(DESCRIBE_TOPIC_PARTITIONS, 0, body, flexible=True)
        r = c.recv_response(cid, flexible_header=True)
    r.i32()

    def ints(rr):
        return rr.compact_array(lambda x: x.i32())

    def partition(rr):
        p = {"error": rr.i16(), "index": rr.i32(), "leader": rr.i32(), "epoch": rr.i32(), "replicas": ints(rr),
             "isr": ints(rr), "elr": ints(rr), "last_known_elr": ints(rr), "offline": ints(rr)}
        rr.tagged_fields()
        return p

    def topic(rr):
        t = {"error": rr.i16(), "name": rr.compact_string(), "id": rr._take(16), "internal": rr.boolean(),
             "partitions": rr.compact_array(partition), "ops": rr.i32()}
        rr.tagged_fields()
        return t

    topics_out = r.compact_array(topic)
    marker = r.i8()
    next_cursor = None
    if marker == 1:
        next_cursor = (r.compact_string(), r.i32())
        r.tagged_fields()
    r.tagged_fields()
    assert r.remaining() == 0
    return topics_out, next_cursor


def test_describe_topic_partitions_cursor_paging_raw(bootstrap):
    prefix = f"dtpr-{uuid.uuid4().hex[:8]}"
    adm = ck.admin(bootstrap)
    for name, n in [(f"{prefix}-a", 2), (f"{prefix}-b", 3), (f"{prefix}-c", 1)]:
        ck.create_topic(adm, name, partitions=n)
    names = [f"{prefix}-c", f"{prefix}-b", f"{prefix}-a"]
    a, b, c = sorted(names)

    topics, cursor = describe_topic_partitions_raw(bootstrap, names, 3, None)
    assert [(t["name"], [p["index"] for p in t["partitions"]]) for t in topics] == [(a, [0, 1]), (b, [0])]
    assert cursor == (b, 1)
    for p in topics[0]["partitions"]:
        # ELR fields are empty lists, not null
        assert (p["error"], p["elr"], p["last_known_elr"], p["offline"]) == (0, [], [], [])
        assert p["replicas"] == p["isr"] == [p["leader"]]
    topics, cursor = describe_topic_partitions_raw(bootstrap, names, 3, cursor)
    assert [(t["name"], [p["index"] for p in t["partitions"]]) for t in topics] == [(b, [1, 2]), (c, [0])]
    assert cursor is None
    # the budget spent exactly at a topic's end: the cursor names the next topic at partition 0
    topics, cursor = describe_topic_partitions_raw(bootstrap, names, 2, None)
    assert [t["name"] for t in topics] == [a] and cursor == (b, 0)
    # no budget: nothing but a cursor at the first topic
    assert describe_topic_partitions_raw(bootstrap, names, 0, None) == ([], (a, 0))
    # a cursor on a topic the request does not name fails every requested topic
    topics, cursor = describe_topic_partitions_raw(bootstrap, [a, c], 10, (b, 0))
    assert [(t["name"], t["error"], t["partitions"]) for t in topics] == [
        (a, INVALID_REQUEST, []), (c, INVALID_REQUEST, [])]
    assert cursor is None
    # a cursor past a topic's last partition: that topic with no partitions
    topics, _ = describe_topic_partitions_raw(bootstrap, names, 10, (a, 5))
    assert [(t["name"], len(t["partitions"])) for t in topics] == [(a, 0), (b, 3), (c, 1)]


# ==========================================================================
# Empty list configs
# ==========================================================================


def test_subtracting_the_last_cleanup_policy_leaves_it_empty(bootstrap):
    """confluent-kafka's own admin test: SUBTRACT `delete` from
    `cleanup.policy=delete` and read back `cleanup.policy=""`."""
    adm = ck.admin(bootstrap)
    name = unique_topic("empty-policy")
    ck.create_topic(adm, name, config={"cleanup.policy": "delete"})
    assert incremental(adm, ResourceType.TOPIC, name,
                       ("cleanup.policy", "delete", AlterConfigOpType.SUBTRACT)).result(30) is None
    c = ck.describe_topic_configs(adm, name)["cleanup.policy"]
    assert (c.value, ck.source_of(c)) == ("", TOPIC_CONFIG)
    kp = kp_admin(bootstrap)
    try:
        entry = kp_topic_configs(kp, name)["cleanup.policy"]
        assert (entry["value"], entry["config_source"]) == ("", "DYNAMIC_TOPIC_CONFIG")
        assert chain(entry)[0] == ("cleanup.policy", "", "DYNAMIC_TOPIC_CONFIG")
    finally:
        kp.close()
    # APPEND to the empty list, then empty it again
    incremental(adm, ResourceType.TOPIC, name, ("cleanup.policy", "compact", AlterConfigOpType.APPEND)).result(30)
    assert ck.describe_topic_configs(adm, name)["cleanup.policy"].value == "compact"
    incremental(adm, ResourceType.TOPIC, name, ("cleanup.policy", "compact", AlterConfigOpType.SUBTRACT)).result(30)
    assert ck.describe_topic_configs(adm, name)["cleanup.policy"].value == ""
    # and the empty list at creation
    other = unique_topic("empty-policy-create")
    ck.create_topic(adm, other, config={"cleanup.policy": ""})
    assert ck.describe_topic_configs(adm, other)["cleanup.policy"].value == ""
    # values outside the list are still refused
    err = ck.error_of(incremental(adm, ResourceType.TOPIC, name,
                                  ("cleanup.policy", "shred", AlterConfigOpType.APPEND)))
    assert err.code() == 40, err  # INVALID_CONFIG


def test_throttled_replica_lists_empty_and_validated(bootstrap):
    adm = ck.admin(bootstrap)
    bid = ck.broker_id(adm)
    name = unique_topic("throttle-empty")
    ck.create_topic(adm, name, partitions=2)
    key = "follower.replication.throttled.replicas"
    incremental(adm, ResourceType.TOPIC, name, (key, f"0:{bid}", AlterConfigOpType.APPEND)).result(30)
    incremental(adm, ResourceType.TOPIC, name, (key, f"0:{bid}", AlterConfigOpType.SUBTRACT)).result(30)
    e = ck.describe_topic_configs(adm, name)[key]
    assert (e.value, ck.source_of(e)) == ("", TOPIC_CONFIG)
    incremental(adm, ResourceType.TOPIC, name, (key, "*", AlterConfigOpType.SET)).result(30)
    assert ck.describe_topic_configs(adm, name)[key].value == "*"
    for bad in ("0", "x:1", f"*,0:{bid}"):
        err = ck.error_of(incremental(adm, ResourceType.TOPIC, name, (key, bad, AlterConfigOpType.SET)))
        assert err.code() == 40, (bad, err)


def test_empty_broker_cleanup_policy(broker_factory):
    """log.cleanup.policy may be emptied too: statically, and dynamically at
    the cluster default; topics without an override inherit the empty list."""
    b = broker_factory.start(overrides={"log.cleanup.policy": ""})
    adm = ck.admin(b.bootstrap)
    name = unique_topic("empty-static")
    ck.create_topic(adm, name)
    c = ck.describe_topic_configs(adm, name)["cleanup.policy"]
    assert (c.value, ck.source_of(c)) == ("", STATIC)
    b.stop_cleanly()

    b = broker_factory.start()
    adm = ck.admin(b.bootstrap)
    name = unique_topic("empty-dynamic")
    ck.create_topic(adm, name)
    assert incremental_raw(b.bootstrap, 4, "", [("log.cleanup.policy", "SUBTRACT", "delete")]) == (0, None)
    kp = kp_admin(b.bootstrap)
    try:
        entry = kp_topic_configs(kp, name)["cleanup.policy"]
        assert (entry["value"], entry["config_source"]) == ("", "DYNAMIC_DEFAULT_BROKER_CONFIG")
        assert chain(entry) == [("log.cleanup.policy", "", "DYNAMIC_DEFAULT_BROKER_CONFIG"),
                                ("log.cleanup.policy", "delete", "DEFAULT_CONFIG")]
    finally:
        kp.close()
    b.stop_cleanly()
