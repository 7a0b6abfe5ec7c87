"""Tributary's REST Proxy v2 (kafka-rest's produce with embedded formats and
stateful consumer instances), checked against confluent-kafka: what v2
produces is read back byte for byte by a Kafka consumer, and what a Kafka
producer writes is read back, decoded, through a v2 consumer instance."""

from __future__ import annotations

import base64
import json
import time
import uuid

import pytest
from confluent_kafka import ConsumerGroupTopicPartitions, Producer
from confluent_kafka.admin import AdminClient

from restproxy import call, new_topic, read_all, rest_proxy

BINARY = "application/vnd.kafka.binary.v2+json"
JSON = "application/vnd.kafka.json.v2+json"
AVRO = "application/vnd.kafka.avro.v2+json"


@pytest.fixture(scope="module")
def proxy(bootstrap, tmp_path_factory):
    with rest_proxy(bootstrap, tmp_path_factory.mktemp("rest-proxy") / "rest-proxy.log",
                    ["--consumer-instance-timeout-ms", "3000"]) as url:
        yield url





def v2(method: str, url: str, body=None, content_type: str = "application/vnd.kafka.v2+json", accept=None):
    headers = {"Content-Type": content_type}
    if accept:
        headers["Accept"] = accept
    return call(method, url, body, headers)


def poll_until(proxy: str, base: str, count: int, accept: str) -> list:
    """Records from a consumer instance until `count` arrived."""
    got = []
    deadline = time.monotonic() + 30
    while len(got) < count and time.monotonic() < deadline:
        status, records = v2("GET", f"{base}/records?timeout=500", accept=accept)
        assert status == 200, records
        got.extend(records)
    assert len(got) == count, f"got {len(got)} of {count}: {got[:3]}"
    return got


def test_v2_produce_binary_and_json_is_read_back_byte_exact(proxy, bootstrap):
    topic = new_topic(bootstrap, partitions=2)
    raw = bytes(range(200))
    status, body = v2("POST", f"{proxy}/topics/{topic}", {"records": [
        {"key": base64.b64encode(b"k1").decode(), "value": base64.b64encode(raw).decode(), "partition": 1},
        {"value": base64.b64encode(b"second").decode(), "partition": 1},
    ]}, BINARY)
    assert status == 200, body
    assert [(o["partition"], o["error_code"]) for o in body["offsets"]] == [(1, None), (1, None)]
    status, body = v2("POST", f"{proxy}/topics/{topic}/partitions/0",
                      {"records": [{"key": {"id": 1}, "value": {"name": "tributary", "tags": [1, 2]}}]}, JSON)
    assert status == 200 and body["offsets"][0]["partition"] == 0, body
    got = {(m.partition(), m.offset()): m for m in read_all(bootstrap, topic, 2, 3)}
    assert got[(1, 0)].key() == b"k1" and got[(1, 0)].value() == raw
    assert got[(1, 1)].key() is None and got[(1, 1)].value() == b"second"
    assert json.loads(got[(0, 0)].value()) == {"name": "tributary", "tags": [1, 2]}
    assert json.loads(got[(0, 0)].key()) == {"id": 1}

    status, body = v2("POST", f"{proxy}/topics/no-such-{uuid.uuid4().hex[:6]}", {"records": [{"value": "eA=="}]}, BINARY)
    assert (status, body["error_code"]) == (404, 40401), body
    status, body = v2("POST", f"{proxy}/topics/{topic}/partitions/9", {"records": [{"value": "eA=="}]}, BINARY)
    assert (status, body["error_code"]) == (404, 40402), body
    status, body = v2("POST", f"{proxy}/topics/{topic}", {"records": [{"value": "***"}]}, BINARY)
    assert (status, body["error_code"]) == (400, 400) and "base64" in body["message"], body


def test_records_from_a_kafka_producer_through_a_v2_consumer_group(proxy, bootstrap):
    topic = new_topic(bootstrap, partitions=3)
    p = Producer({"bootstrap.servers": bootstrap})
    sent = {}
    for i in range(30):
        value = json.dumps({"n": i, "text": f"record {i}"}).encode()
        p.produce(topic, key=json.dumps(f"k{i}").encode(), value=value, partition=i % 3)
        sent[f"k{i}"] = {"n": i, "text": f"record {i}"}
    p.flush(30)

    group = f"rest-group-{uuid.uuid4().hex[:6]}"
    status, created = v2("POST", f"{proxy}/consumers/{group}",
                         {"name": "c1", "format": "json", "auto.offset.reset": "earliest",
                          "auto.commit.enable": "false"})
    assert status == 200, created
    base = created["base_uri"]
    assert base.endswith(f"/consumers/{group}/instances/c1")
    assert v2("POST", f"{proxy}/consumers/{group}", {"name": "c1", "format": "json"})[1]["error_code"] == 40902

    assert v2("POST", f"{base}/subscription", {"topics": [topic]})[0] == 204
    assert v2("GET", f"{base}/subscription")[1] == {"topics": [topic]}
    status, body = v2("GET", f"{base}/records", accept=BINARY)
    assert (status, body["error_code"]) == (406, 40601), body
    got = poll_until(proxy, base, 30, JSON)
    assert {r["key"]: r["value"] for r in got} == sent
    assert all(r["topic"] == topic for r in got)

    # The group is a real Kafka group: the admin client sees this member and its partitions.
    admin = AdminClient({"bootstrap.servers": bootstrap})
    desc = admin.describe_consumer_groups([group])[group].result(10)
    assert len(desc.members) == 1
    assert sorted(tp.partition for tp in desc.members[0].assignment.topic_partitions) == [0, 1, 2]

    # Commit the last record of partition 0 explicitly: the group resumes after it.
    last0 = max(r["offset"] for r in got if r["partition"] == 0)
    assert v2("POST", f"{base}/offsets", {"offsets": [{"topic": topic, "partition": 0, "offset": last0}]}) == (200, [])
    status, body = call("GET", f"{base}/offsets", {"partitions": [{"topic": topic, "partition": 0}]},
                        {"Content-Type": "application/vnd.kafka.v2+json"})
    assert status == 200 and body["offsets"] == [
        {"topic": topic, "partition": 0, "offset": last0 + 1, "metadata": ""}], body
    # An empty commit commits every position.
    assert v2("POST", f"{base}/offsets") == (200, [])
    committed = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)])[group].result(10)
    assert sorted((tp.partition, tp.offset) for tp in committed.topic_partitions) == [(0, 10), (1, 10), (2, 10)]

    assert v2("DELETE", base)[0] == 204
    assert v2("GET", f"{base}/records", accept=JSON)[1]["error_code"] == 40403


def test_manual_assignment_and_seeks(proxy, bootstrap):
    topic = new_topic(bootstrap)
    p = Producer({"bootstrap.servers": bootstrap})
    for i in range(10):
        p.produce(topic, value=f"v{i}".encode(), partition=0)
    p.flush(30)
    group = f"rest-assign-{uuid.uuid4().hex[:6]}"
    base = v2("POST", f"{proxy}/consumers/{group}", {"format": "binary"})[1]["base_uri"]
    part = [{"topic": topic, "partition": 0}]
    assert v2("POST", f"{base}/assignments", {"partitions": part})[0] == 204
    assert v2("GET", f"{base}/assignments")[1] == {"partitions": part}
    status, body = v2("POST", f"{base}/subscription", {"topics": [topic]})
    assert (status, body["error_code"]) == (409, 40903), body

    assert v2("POST", f"{base}/positions", {"offsets": [{"topic": topic, "partition": 0, "offset": 7}]})[0] == 204
    got = poll_until(proxy, base, 3, BINARY)
    assert [base64.b64decode(r["value"]) for r in got] == [b"v7", b"v8", b"v9"]
    assert v2("POST", f"{base}/positions/beginning", {"partitions": part})[0] == 204
    assert base64.b64decode(poll_until(proxy, base, 10, BINARY)[0]["value"]) == b"v0"
    assert v2("POST", f"{base}/positions/end", {"partitions": part})[0] == 204
    status, records = v2("GET", f"{base}/records?timeout=300", accept=BINARY)
    assert status == 200 and records == []
    status, body = v2("POST", f"{base}/positions", {"offsets": [{"topic": topic, "partition": 5, "offset": 0}]})
    assert (status, body["error_code"]) == (409, 40903), body
    assert v2("DELETE", base)[0] == 204


def test_two_instances_share_a_group(proxy, bootstrap):
    topic = new_topic(bootstrap, partitions=4)
    group = f"rest-share-{uuid.uuid4().hex[:6]}"
    bases = []
    for name in ("a", "b"):
        base = v2("POST", f"{proxy}/consumers/{group}", {"name": name, "format": "binary",
                                                          "auto.offset.reset": "earliest"})[1]["base_uri"]
        assert v2("POST", f"{base}/subscription", {"topics": [topic]})[0] == 204
        bases.append(base)
    p = Producer({"bootstrap.servers": bootstrap})
    for i in range(40):
        p.produce(topic, value=f"{i}".encode(), partition=i % 4)
    p.flush(30)
    seen: dict[str, set] = {"a": set(), "b": set()}
    deadline = time.monotonic() + 40
    while sum(len(s) for s in seen.values()) < 40 and time.monotonic() < deadline:
        for name, base in zip(("a", "b"), bases):
            status, records = v2("GET", f"{base}/records?timeout=200", accept=BINARY)
            assert status == 200, records
            seen[name] |= {(r["partition"], r["offset"]) for r in records}
    admin = AdminClient({"bootstrap.servers": bootstrap})
    desc = admin.describe_consumer_groups([group])[group].result(10)
    assert len(desc.members) == 2
    owned = [sorted(tp.partition for tp in m.assignment.topic_partitions) for m in desc.members]
    assert sorted(owned) == [[0, 1], [2, 3]], owned
    assert len(seen["a"] | seen["b"]) == 40
    for base in bases:
        assert v2("DELETE", base)[0] == 204


def test_idle_instances_expire(proxy, bootstrap):
    group = f"rest-idle-{uuid.uuid4().hex[:6]}"
    base = v2("POST", f"{proxy}/consumers/{group}", {"format": "binary"})[1]["base_uri"]
    assert v2("GET", f"{base}/subscription")[0] == 200
    time.sleep(5)
    status, body = v2("GET", f"{base}/subscription")
    assert (status, body["error_code"]) == (404, 40403), body


def test_avro_through_v2_both_ways(broker_factory):
    from confluent_kafka.schema_registry import SchemaRegistryClient
    from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
    from confluent_kafka.serialization import MessageField, SerializationContext

    b = broker_factory.start(schema_registry=True, rest_proxy=True)
    proxy = b.rest_proxy_url
    topic = new_topic(b.bootstrap)
    schema = json.dumps({"type": "record", "name": "Reading", "fields": [
        {"name": "sensor", "type": "string"}, {"name": "value", "type": ["null", "double"], "default": None}]})
    status, body = v2("POST", f"{proxy}/topics/{topic}", {
        "value_schema": schema,
        "records": [{"value": {"sensor": "s1", "value": {"double": 1.5}}}, {"value": {"sensor": "s2", "value": None}}],
    }, AVRO)
    assert status == 200 and body["value_schema_id"] is not None, body
    assert all(o["error_code"] is None for o in body["offsets"]), body
    sr = SchemaRegistryClient({"url": b.registry_url})
    de = AvroDeserializer(sr)
    ctx = SerializationContext(topic, MessageField.VALUE)
    got = read_all(b.bootstrap, topic, 1, 2)
    assert [de(m.value(), ctx) for m in got] == [{"sensor": "s1", "value": 1.5}, {"sensor": "s2", "value": None}]

    # A Kafka producer's Avro records, read through a v2 avro instance.
    ser = AvroSerializer(sr, schema)
    p = Producer({"bootstrap.servers": b.bootstrap})
    p.produce(topic, value=ser({"sensor": "s3", "value": 2.0}, ctx))
    p.flush(10)
    group = f"rest-avro-{uuid.uuid4().hex[:6]}"
    base = v2("POST", f"{proxy}/consumers/{group}", {"format": "avro", "auto.offset.reset": "earliest"})[1]["base_uri"]
    assert v2("POST", f"{base}/subscription", {"topics": [topic]})[0] == 204
    values = [r["value"] for r in poll_until(proxy, base, 3, AVRO)]
    assert values == [{"sensor": "s1", "value": {"double": 1.5}}, {"sensor": "s2", "value": None},
                      {"sensor": "s3", "value": {"double": 2.0}}]
    assert v2("DELETE", base)[0] == 204
