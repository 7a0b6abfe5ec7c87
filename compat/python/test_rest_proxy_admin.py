"""Tributary's REST Proxy v3 admin endpoints (configs, partitions, brokers,
consumer groups) against real brokers, checked with confluent-kafka's
AdminClient and a real consumer group: what is changed through v3 is seen by
the AdminClient, and what the AdminClient (or a consumer) does is seen
through v3.

The proxy runs as `tributary rest-proxy --bootstrap-servers ... --port <free>`
and is stopped afterwards."""

from __future__ import annotations

import contextlib
import json
import subprocess
import time
import urllib.error
import urllib.request
import uuid

import pytest
from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, Producer, TopicPartition
from confluent_kafka.admin import (AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource,
                                   ConfigSource, NewPartitions, NewTopic, ResourceType)

import conftest

TIMEOUT_S = 15


def call(method: str, url: str, body=None, raw: bytes | None = None):
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            text = r.read()
            return r.status, (json.loads(text) if text else None)
    except urllib.error.HTTPError as e:
        text = e.read()
        return e.code, (json.loads(text) if text else None)


@contextlib.contextmanager
def running_proxy(bootstrap: str, log_dir):
    port = conftest.free_port()
    log = log_dir / f"rest-proxy-{port}.log"
    with open(log, "wb") as out:
        p = subprocess.Popen([str(conftest.broker_binary()), "rest-proxy", "--bootstrap-servers", bootstrap,
                              "--host", "127.0.0.1", "--port", str(port)], stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if call("GET", f"{url}/v3/clusters")[0] == 200:
                    break
            except OSError:
                pass
            if p.poll() is not None:
                pytest.fail(f"the REST proxy exited: {log.read_text()}")
            time.sleep(0.1)
        yield url
    finally:
        p.terminate()
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()


@pytest.fixture(scope="module")
def proxy(bootstrap, tmp_path_factory):
    with running_proxy(bootstrap, tmp_path_factory.mktemp("rest-proxy-admin")) as url:
        yield url


@pytest.fixture(scope="module")
def admin(bootstrap):
    return AdminClient({"bootstrap.servers": bootstrap})


def cluster_url(proxy: str) -> str:
    status, body = call("GET", f"{proxy}/v3/clusters")
    assert status == 200, body
    return f"{proxy}/v3/clusters/{body['data'][0]['cluster_id']}"


def new_topic(admin, prefix: str, partitions: int = 1) -> str:
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    admin.create_topics([NewTopic(name, partitions, 1)])[name].result(TIMEOUT_S)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        t = admin.list_topics(name, timeout=TIMEOUT_S).topics.get(name)
        if t is not None and t.error is None and len(t.partitions) == partitions:
            break
        time.sleep(0.1)
    return name


def admin_configs(admin, rtype, name: str) -> dict:
    res = ConfigResource(rtype, name)
    return admin.describe_configs([res])[res].result(TIMEOUT_S)


def source_name(entry) -> str:
    s = entry.source
    return (s if isinstance(s, ConfigSource) else ConfigSource(s)).name


def by_name(body) -> dict:
    return {c["name"]: c for c in body["data"]}


# ---------------------------------------------------------------- topic configs


def test_topic_configs_match_the_admin_client(proxy, admin):
    c = cluster_url(proxy)
    name = new_topic(admin, "cfg")
    status, body = call("GET", f"{c}/topics/{name}/configs")
    assert status == 200 and body["kind"] == "KafkaTopicConfigList", body
    assert body["metadata"]["self"] == f"{c}/topics/{name}/configs"
    v3 = by_name(body)
    described = admin_configs(admin, ResourceType.TOPIC, name)
    assert set(v3) == set(described)
    for key, entry in described.items():
        got = v3[key]
        assert got["kind"] == "KafkaTopicConfig" and got["topic_name"] == name
        assert got["value"] == entry.value, key
        assert got["is_read_only"] == entry.is_read_only, key
        assert got["is_sensitive"] == entry.is_sensitive, key
        assert got["is_default"] == entry.is_default, key
        assert got["source"] == source_name(entry), key
        # The admin client keys synonyms by name, so it may show fewer.
        assert {source_name(s) for s in entry.synonyms.values()} <= {s["source"] for s in got["synonyms"]}, key
        assert not got["synonyms"] or got["synonyms"][0]["source"] == got["source"], key
    one = v3["cleanup.policy"]
    assert one["metadata"]["self"] == f"{c}/topics/{name}/configs/cleanup.policy"
    assert one["metadata"]["resource_name"].endswith(f"/topic={name}/config=cleanup.policy")
    status, single = call("GET", f"{c}/topics/{name}/configs/cleanup.policy")
    assert status == 200 and single == one, single


def test_topic_config_changes_through_v3_are_seen_by_the_admin_client(proxy, admin):
    c = cluster_url(proxy)
    name = new_topic(admin, "cfg-set")
    default_retention = admin_configs(admin, ResourceType.TOPIC, name)["retention.ms"].value

    status, body = call("PUT", f"{c}/topics/{name}/configs/retention.ms", {"value": "7200000"})
    assert status == 204 and body is None, body
    entry = admin_configs(admin, ResourceType.TOPIC, name)["retention.ms"]
    assert (entry.value, source_name(entry)) == ("7200000", "DYNAMIC_TOPIC_CONFIG")
    status, body = call("GET", f"{c}/topics/{name}/configs/retention.ms")
    assert (body["value"], body["source"], body["is_default"]) == ("7200000", "DYNAMIC_TOPIC_CONFIG", False)
    assert body["synonyms"][0] == {"name": "retention.ms", "value": "7200000", "source": "DYNAMIC_TOPIC_CONFIG"}

    # DELETE resets to the default.
    status, body = call("DELETE", f"{c}/topics/{name}/configs/retention.ms")
    assert status == 204, body
    entry = admin_configs(admin, ResourceType.TOPIC, name)["retention.ms"]
    assert entry.value == default_retention and source_name(entry) in ("DEFAULT_CONFIG", "STATIC_BROKER_CONFIG")
    status, body = call("GET", f"{c}/topics/{name}/configs/retention.ms")
    assert body["value"] == default_retention and body["source"] != "DYNAMIC_TOPIC_CONFIG", body

    # A batch: SET (explicit and implied) and DELETE together.
    call("PUT", f"{c}/topics/{name}/configs/cleanup.policy", {"value": "compact"})
    status, body = call("POST", f"{c}/topics/{name}/configs:alter", {"data": [
        {"name": "cleanup.policy", "operation": "DELETE"},
        {"name": "compression.type", "value": "gzip"},
        {"name": "max.message.bytes", "value": "2000000", "operation": "SET"},
    ]})
    assert status == 204, body
    described = admin_configs(admin, ResourceType.TOPIC, name)
    assert described["compression.type"].value == "gzip"
    assert described["max.message.bytes"].value == "2000000"
    assert source_name(described["cleanup.policy"]) != "DYNAMIC_TOPIC_CONFIG"

    # validate_only changes nothing.
    status, body = call("POST", f"{c}/topics/{name}/configs:alter",
                        {"data": [{"name": "compression.type", "value": "lz4"}], "validate_only": True})
    assert status == 204, body
    assert admin_configs(admin, ResourceType.TOPIC, name)["compression.type"].value == "gzip"

    # Every topic's configs, this one's among them.
    status, body = call("GET", f"{c}/topics/-/configs")
    assert status == 200 and body["kind"] == "KafkaTopicConfigList", body
    mine = {e["name"]: e["value"] for e in body["data"] if e["topic_name"] == name}
    assert mine["compression.type"] == "gzip" and mine["max.message.bytes"] == "2000000"


def test_topic_config_changes_by_the_admin_client_are_seen_through_v3(proxy, admin):
    c = cluster_url(proxy)
    name = new_topic(admin, "cfg-admin")
    res = ConfigResource(ResourceType.TOPIC, name, incremental_configs=[
        ConfigEntry("retention.bytes", "123456789", incremental_operation=AlterConfigOpType.SET)])
    assert admin.incremental_alter_configs([res])[res].result(TIMEOUT_S) is None
    status, body = call("GET", f"{c}/topics/{name}/configs/retention.bytes")
    assert status == 200 and (body["value"], body["source"]) == ("123456789", "DYNAMIC_TOPIC_CONFIG"), body

    # AlterConfigs replaces the whole set: retention.bytes goes back to its default.
    res = ConfigResource(ResourceType.TOPIC, name, set_config={"segment.ms": "3600000"})
    assert admin.alter_configs([res])[res].result(TIMEOUT_S) is None
    v3 = by_name(call("GET", f"{c}/topics/{name}/configs")[1])
    assert (v3["segment.ms"]["value"], v3["segment.ms"]["source"]) == ("3600000", "DYNAMIC_TOPIC_CONFIG")
    assert v3["retention.bytes"]["source"] != "DYNAMIC_TOPIC_CONFIG"


def test_config_errors_are_kafka_rest_errors(proxy, admin):
    c = cluster_url(proxy)
    name = new_topic(admin, "cfg-err")
    missing = f"missing-{uuid.uuid4().hex[:8]}"
    for method, path, body in [("GET", f"topics/{missing}/configs", None),
                               ("GET", f"topics/{missing}/configs/retention.ms", None),
                               ("PUT", f"topics/{missing}/configs/retention.ms", {"value": "1"}),
                               ("DELETE", f"topics/{missing}/configs/retention.ms", None),
                               ("POST", f"topics/{missing}/configs:alter", {"data": [{"name": "a", "value": "1"}]})]:
        status, got = call(method, f"{c}/{path}", body)
        assert (status, got["error_code"]) == (404, 40403), (method, path, got)
    for method, body in [("GET", None), ("PUT", {"value": "1"}), ("DELETE", None)]:
        status, got = call(method, f"{c}/topics/{name}/configs/no.such.config", body)
        assert (status, got["error_code"]) == (404, 404), (method, got)
    status, got = call("PUT", f"{c}/topics/{name}/configs/retention.ms", raw=b"{not json")
    assert (status, got["error_code"]) == (400, 400), got
    # A field kafka-rest's request does not have: its mapper's 422.
    status, got = call("POST", f"{c}/topics/{name}/configs:alter", {"nothing": []})
    assert (status, got["error_code"]) == (422, 422), got
    status, got = call("POST", f"{c}/topics/{name}/configs:alter",
                       {"data": [{"name": "retention.ms", "value": "1", "operation": "APPEND"}]})
    assert (status, got["error_code"]) == (400, 400), got
    # A value Kafka refuses: its reason, as 40002.
    status, got = call("PUT", f"{c}/topics/{name}/configs/cleanup.policy", {"value": "sideways"})
    assert (status, got["error_code"]) == (400, 40002), got
    assert admin_configs(admin, ResourceType.TOPIC, name)["cleanup.policy"].value == "delete"
    wrong = c.rsplit("/", 1)[0] + "/not-this-cluster"
    status, got = call("GET", f"{wrong}/topics/{name}/configs")
    assert (status, got["error_code"]) == (404, 404), got


# ---------------------------------------------------------------- partitions


def test_partitions_and_replicas_match_the_admin_client(proxy, admin):
    c = cluster_url(proxy)
    name = new_topic(admin, "parts", partitions=3)
    md = admin.list_topics(name, timeout=TIMEOUT_S).topics[name].partitions
    status, body = call("GET", f"{c}/topics/{name}/partitions")
    assert status == 200 and body["kind"] == "KafkaPartitionList", body
    assert [p["partition_id"] for p in body["data"]] == sorted(md)
    for p in body["data"]:
        want = md[p["partition_id"]]
        base = f"{c}/topics/{name}/partitions/{p['partition_id']}"
        assert p["metadata"]["self"] == base and p["topic_name"] == name
        assert p["leader"]["related"] == f"{base}/replicas/{want.leader}"
        assert p["replicas"]["related"] == f"{base}/replicas"
        assert p["reassignment"]["related"] == f"{base}/reassignment"
        status, one = call("GET", base)
        assert status == 200 and one == p
        status, replicas = call("GET", f"{base}/replicas")
        assert status == 200 and replicas["kind"] == "KafkaReplicaList", replicas
        assert [r["broker_id"] for r in replicas["data"]] == list(want.replicas)
        for r in replicas["data"]:
            assert r["is_leader"] == (r["broker_id"] == want.leader)
            assert r["is_in_sync"] == (r["broker_id"] in want.isrs)
            assert r["broker"]["related"] == f"{c}/brokers/{r['broker_id']}"
        status, leader = call("GET", f"{base}/replicas/{want.leader}")
        assert status == 200 and leader["is_leader"] is True, leader
    status, got = call("GET", f"{c}/topics/{name}/partitions/7")
    assert (status, got["error_code"]) == (404, 404), got
    status, got = call("GET", f"{c}/topics/{name}/partitions/x")
    assert (status, got["error_code"]) == (400, 400), got
    status, got = call("GET", f"{c}/topics/{name}/partitions/0/replicas/4242")
    assert status == 404, got
    status, got = call("GET", f"{c}/topics/missing-{uuid.uuid4().hex[:8]}/partitions")
    assert (status, got["error_code"]) == (404, 40403), got


def test_patch_partitions_count_grows_the_topic(proxy, admin):
    c = cluster_url(proxy)
    name = new_topic(admin, "grow", partitions=2)
    status, body = call("PATCH", f"{c}/topics/{name}", {"partitions_count": 5})
    assert status == 200 and body["kind"] == "KafkaTopic", body
    assert body["partitions_count"] == 5
    assert len(admin.list_topics(name, timeout=TIMEOUT_S).topics[name].partitions) == 5
    # Shrinking is Kafka's INVALID_PARTITIONS.
    status, body = call("PATCH", f"{c}/topics/{name}", {"partitions_count": 3})
    assert (status, body["error_code"]) == (400, 40002), body
    status, body = call("PATCH", f"{c}/topics/{name}", {"partitions": 9})
    assert (status, body["error_code"]) == (422, 422), body
    status, body = call("PATCH", f"{c}/topics/{name}", {"partitions_count": None})
    assert (status, body["error_code"]) == (400, 400), body
    status, body = call("PATCH", f"{c}/topics/missing-{uuid.uuid4().hex[:8]}", {"partitions_count": 9})
    assert (status, body["error_code"]) == (404, 40403), body
    # Grown by the admin client, seen through v3.
    admin.create_partitions([NewPartitions(name, 6)])[name].result(TIMEOUT_S)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and len(call("GET", f"{c}/topics/{name}/partitions")[1]["data"]) != 6:
        time.sleep(0.1)
    assert len(call("GET", f"{c}/topics/{name}/partitions")[1]["data"]) == 6


# ---------------------------------------------------------------- brokers


def test_brokers_match_describe_cluster(proxy, admin):
    c = cluster_url(proxy)
    cluster = admin.describe_cluster(request_timeout=TIMEOUT_S).result()
    status, body = call("GET", f"{c}/brokers")
    assert status == 200 and body["kind"] == "KafkaBrokerList", body
    got = {b["broker_id"]: (b["host"], b["port"], b["rack"]) for b in body["data"]}
    assert got == {n.id: (n.host, n.port, n.rack) for n in cluster.nodes}
    bid = cluster.nodes[0].id
    status, one = call("GET", f"{c}/brokers/{bid}")
    assert status == 200 and one["kind"] == "KafkaBroker" and one["broker_id"] == bid, one
    assert one["configs"]["related"] == f"{c}/brokers/{bid}/configs"
    assert one["partition_replicas"]["related"] == f"{c}/brokers/{bid}/partition-replicas"
    # Confluent Server's and Cloud's prefix: the same, with links under it.
    status, prefixed = call("GET", f"{c.replace('/v3/', '/kafka/v3/')}/brokers/{bid}")
    assert status == 200 and prefixed["configs"]["related"] == one["configs"]["related"].replace("/v3/", "/kafka/v3/")
    status, got = call("GET", f"{c}/brokers/4242")
    assert (status, got["error_code"]) == (404, 404), got
    status, got = call("GET", f"{c}/brokers/nope")
    assert (status, got["error_code"]) == (400, 400), got

    name = new_topic(admin, "on-broker", partitions=2)
    status, body = call("GET", f"{c}/brokers/{bid}/partition-replicas")
    assert status == 200 and body["kind"] == "KafkaReplicaList", body
    assert sorted(r["partition_id"] for r in body["data"] if r["topic_name"] == name) == [0, 1]


def test_broker_configs_match_the_admin_client(proxy, admin):
    c = cluster_url(proxy)
    bid = admin.describe_cluster(request_timeout=TIMEOUT_S).result().nodes[0].id
    described = admin_configs(admin, ResourceType.BROKER, str(bid))
    status, body = call("GET", f"{c}/brokers/{bid}/configs")
    assert status == 200 and body["kind"] == "KafkaBrokerConfigList", body
    v3 = by_name(body)
    assert set(v3) == set(described)
    for key in ("num.partitions", "log.retention.hours", "compression.type"):
        assert v3[key]["value"] == described[key].value, key
        assert v3[key]["is_read_only"] == described[key].is_read_only, key
        assert v3[key]["source"] == source_name(described[key]), key
        assert v3[key]["broker_id"] == bid
    status, one = call("GET", f"{c}/brokers/{bid}/configs/num.partitions")
    assert status == 200 and one["kind"] == "KafkaBrokerConfig" and one == v3["num.partitions"], one
    status, got = call("GET", f"{c}/brokers/{bid}/configs/no.such.config")
    assert (status, got["error_code"]) == (404, 404), got
    status, got = call("GET", f"{c}/brokers/4242/configs")
    assert (status, got["error_code"]) == (404, 404), got
    status, body = call("GET", f"{c}/brokers/-/configs")
    assert status == 200 and body["kind"] == "KafkaBrokerConfigList", body
    assert {e["broker_id"] for e in body["data"]} == {bid}
    status, body = call("GET", f"{c}/broker-configs")
    assert status == 200 and body["kind"] == "KafkaClusterConfigList", body


def test_broker_config_changes_both_ways(broker_factory, tmp_path):
    """On a broker of its own: dynamic broker configs change the whole broker."""
    b = broker_factory.start()
    adm = AdminClient({"bootstrap.servers": b.bootstrap})
    bid = adm.describe_cluster(request_timeout=TIMEOUT_S).result().nodes[0].id
    with running_proxy(b.bootstrap, tmp_path) as url:
        c = cluster_url(url)
        key = "compression.gzip.level"
        default = admin_configs(adm, ResourceType.BROKER, str(bid))[key].value

        status, body = call("PUT", f"{c}/brokers/{bid}/configs/{key}", {"value": "5"})
        assert status == 204, body
        entry = admin_configs(adm, ResourceType.BROKER, str(bid))[key]
        assert (entry.value, source_name(entry)) == ("5", "DYNAMIC_BROKER_CONFIG")
        status, body = call("DELETE", f"{c}/brokers/{bid}/configs/{key}")
        assert status == 204, body
        assert admin_configs(adm, ResourceType.BROKER, str(bid))[key].value == default

        # A static config cannot change at run time: the broker's refusal, not a fake success.
        status, body = call("PUT", f"{c}/brokers/{bid}/configs/num.partitions", {"value": "4"})
        assert (status, body["error_code"]) == (400, 40002), body
        assert "num.partitions" in body["message"]

        status, body = call("POST", f"{c}/brokers/{bid}/configs:alter",
                            {"data": [{"name": key, "value": "7"}]})
        assert status == 204, body
        assert admin_configs(adm, ResourceType.BROKER, str(bid))[key].value == "7"
        call("DELETE", f"{c}/brokers/{bid}/configs/{key}")

        # Cluster-wide defaults: listed only while set.
        status, body = call("GET", f"{c}/broker-configs")
        assert status == 200 and body["data"] == [], body
        status, body = call("PUT", f"{c}/broker-configs/{key}", {"value": "6"})
        assert status == 204, body
        status, body = call("GET", f"{c}/broker-configs")
        assert [(e["name"], e["value"], e["source"], e["config_type"]) for e in body["data"]] == \
            [(key, "6", "DYNAMIC_DEFAULT_BROKER_CONFIG", "BROKER")], body
        status, one = call("GET", f"{c}/broker-configs/{key}")
        assert status == 200 and one["kind"] == "KafkaClusterConfig" and one["value"] == "6", one
        entry = admin_configs(adm, ResourceType.BROKER, str(bid))[key]
        assert (entry.value, source_name(entry)) == ("6", "DYNAMIC_DEFAULT_BROKER_CONFIG")
        status, body = call("DELETE", f"{c}/broker-configs/{key}")
        assert status == 204, body
        assert call("GET", f"{c}/broker-configs")[1]["data"] == []
        status, body = call("GET", f"{c}/broker-configs/{key}")
        assert (status, body["error_code"]) == (404, 404), body

        # Changed by the admin client, seen through v3.
        res = ConfigResource(ResourceType.BROKER, str(bid), incremental_configs=[
            ConfigEntry(key, "3", incremental_operation=AlterConfigOpType.SET)])
        assert adm.incremental_alter_configs([res])[res].result(TIMEOUT_S) is None
        status, body = call("GET", f"{c}/brokers/{bid}/configs/{key}")
        assert (body["value"], body["source"]) == ("3", "DYNAMIC_BROKER_CONFIG"), body
    b.stop_cleanly()


# ---------------------------------------------------------------- consumer groups


def test_consumer_group_members_assignments_and_lag(proxy, admin, bootstrap):
    c = cluster_url(proxy)
    name = new_topic(admin, "lag", partitions=2)
    p = Producer({"bootstrap.servers": bootstrap})
    for i in range(10):
        for part in (0, 1):
            p.produce(name, value=f"v{i}".encode(), partition=part)
    assert p.flush(TIMEOUT_S) == 0

    group = f"rest-group-{uuid.uuid4().hex[:8]}"
    cons = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "client.id": "rest-admin-test",
                     "auto.offset.reset": "earliest", "enable.auto.commit": False})
    try:
        cons.subscribe([name])
        deadline = time.monotonic() + 30
        consumed = 0
        while time.monotonic() < deadline and (consumed < 20 or not cons.assignment()):
            m = cons.poll(0.5)
            if m is not None and m.error() is None:
                consumed += 1
        assert consumed == 20 and len(cons.assignment()) == 2
        cons.commit(offsets=[TopicPartition(name, 0, 4), TopicPartition(name, 1, 7)], asynchronous=False)

        described = admin.describe_consumer_groups([group])[group].result(TIMEOUT_S)
        [member] = described.members

        status, body = call("GET", f"{c}/consumer-groups")
        assert status == 200 and body["kind"] == "KafkaConsumerGroupList", body
        mine = [g for g in body["data"] if g["consumer_group_id"] == group]
        assert len(mine) == 1, body
        status, g = call("GET", f"{c}/consumer-groups/{group}")
        assert status == 200 and g["kind"] == "KafkaConsumerGroup", g
        assert (g["state"], g["type"], g["is_simple"]) == ("STABLE", "CLASSIC", False)
        assert g["partition_assignor"] == described.partition_assignor
        assert g["coordinator"]["related"] == f"{c}/brokers/{described.coordinator.id}"
        assert g["consumers"]["related"] == f"{c}/consumer-groups/{group}/consumers"
        assert mine[0] == g

        status, body = call("GET", f"{c}/consumer-groups/{group}/consumers")
        assert status == 200 and body["kind"] == "KafkaConsumerList", body
        assert [(m["consumer_id"], m["client_id"]) for m in body["data"]] == \
            [(member.member_id, member.client_id)]
        consumer_url = f"{c}/consumer-groups/{group}/consumers/{member.member_id}"
        status, one = call("GET", consumer_url)
        assert status == 200 and one == body["data"][0], one
        status, body = call("GET", f"{consumer_url}/assignments")
        assert status == 200 and body["kind"] == "KafkaConsumerAssignmentList", body
        assert sorted((a["topic_name"], a["partition_id"]) for a in body["data"]) == [(name, 0), (name, 1)]
        assert sorted((tp.topic, tp.partition) for tp in member.assignment.topic_partitions) == \
            [(name, 0), (name, 1)]
        status, one = call("GET", f"{consumer_url}/assignments/{name}/partitions/1")
        assert status == 200 and one["lag"]["related"] == f"{c}/consumer-groups/{group}/lags/{name}/partitions/1"

        status, body = call("GET", f"{c}/consumer-groups/{group}/lags")
        assert status == 200 and body["kind"] == "KafkaConsumerLagList", body
        lags = {(e["topic_name"], e["partition_id"]): (e["current_offset"], e["log_end_offset"], e["lag"],
                                                      e["consumer_id"], e["client_id"]) for e in body["data"]}
        assert lags == {(name, 0): (4, 10, 6, member.member_id, "rest-admin-test"),
                        (name, 1): (7, 10, 3, member.member_id, "rest-admin-test")}
        status, one = call("GET", f"{c}/consumer-groups/{group}/lags/{name}/partitions/1")
        assert status == 200 and (one["kind"], one["lag"]) == ("KafkaConsumerLag", 3), one

        status, s = call("GET", f"{c}/consumer-groups/{group}/lag-summary")
        assert status == 200 and s["kind"] == "KafkaConsumerGroupLagSummary", s
        assert (s["max_lag"], s["total_lag"], s["max_lag_topic_name"], s["max_lag_partition_id"]) == (6, 9, name, 0)
        assert (s["max_lag_consumer_id"], s["max_lag_client_id"]) == (member.member_id, "rest-admin-test")
        assert s["max_lag_partition"]["related"] == f"{c}/topics/{name}/partitions/0"

        # The admin client agrees on the committed offsets.
        committed = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)])[group].result(TIMEOUT_S)
        assert sorted((tp.partition, tp.offset) for tp in committed.topic_partitions) == [(0, 4), (1, 7)]

        for path in (f"consumer-groups/no-such-{group}", f"consumer-groups/{group}/consumers/nobody",
                     f"consumer-groups/{group}/lags/{name}/partitions/9",
                     f"consumer-groups/no-such-{group}/lag-summary"):
            status, got = call("GET", f"{c}/{path}")
            assert (status, got["error_code"]) == (404, 404), (path, got)
    finally:
        cons.close()


def test_a_group_that_only_commits_is_simple_and_empty(proxy, admin, bootstrap):
    c = cluster_url(proxy)
    name = new_topic(admin, "simple")
    group = f"rest-simple-{uuid.uuid4().hex[:8]}"
    cons = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        cons.commit(offsets=[TopicPartition(name, 0, 0)], asynchronous=False)
    finally:
        cons.close()
    status, g = call("GET", f"{c}/consumer-groups/{group}")
    assert status == 200, g
    assert (g["state"], g["is_simple"], g["partition_assignor"]) == ("EMPTY", True, ""), g
    status, body = call("GET", f"{c}/consumer-groups/{group}/consumers")
    assert status == 200 and body["data"] == [], body
    status, body = call("GET", f"{c}/consumer-groups/{group}/lags")
    assert [(e["partition_id"], e["current_offset"], e["lag"], e["consumer_id"]) for e in body["data"]] == \
        [(0, 0, 0, "")], body
    status, s = call("GET", f"{c}/consumer-groups/{group}/lag-summary")
    assert status == 200 and (s["max_lag"], s["total_lag"], s["max_lag_consumer"]) == (0, 0, None), s


def test_partition_offsets_are_what_a_consumer_sees(proxy, admin, bootstrap):
    topic = new_topic(admin, "offsets", partitions=2)
    p = Producer({"bootstrap.servers": bootstrap})
    for i in range(5):
        p.produce(topic, value=f"v{i}".encode(), partition=1)
    p.flush(10)
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"w-{uuid.uuid4().hex[:6]}"})
    try:
        low, high = c.get_watermark_offsets(TopicPartition(topic, 1), timeout=10)
    finally:
        c.close()
    base = cluster_url(proxy)
    status, body = call("GET", f"{base}/topics/{topic}/partitions/1/offset")
    assert status == 200, body
    assert (body["kind"], body["earliest_offset"], body["latest_offset"]) == ("KafkaPartitionWithOffsets", low, high)
    assert (low, high) == (0, 5)
    status, body = call("GET", f"{base}/topics/{topic}/partitions/0/offset?offset_type=earliest_and_latest")
    assert (status, body["earliest_offset"], body["latest_offset"]) == (200, 0, 0), body
    assert call("GET", f"{base}/topics/{topic}/partitions/2/offset")[0] == 404
