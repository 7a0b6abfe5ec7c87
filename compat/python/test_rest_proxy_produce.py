"""Producing through Tributary's REST Proxy v3 (`POST .../topics/{t}/records`
and `.../records:batch`), read back by a client nobody here wrote:
confluent-kafka's Consumer must see the exact bytes, headers, partitions and
timestamps the proxy reported."""

from __future__ import annotations

import base64
import json
import uuid

import pytest
from confluent_kafka import Producer

from restproxy import call, new_topic, post_stream, read_all, rest_proxy


@pytest.fixture(scope="module")
def proxy(bootstrap, tmp_path_factory):
    with rest_proxy(bootstrap, tmp_path_factory.mktemp("rest-proxy") / "rest-proxy.log") as url:
        yield url


@pytest.fixture(scope="module")
def cluster(proxy):
    status, body = call("GET", f"{proxy}/v3/clusters")
    assert status == 200, body
    return body["data"][0]["cluster_id"]





def test_one_record_of_each_format_is_read_back_byte_exact(proxy, cluster, bootstrap):
    topic = new_topic(bootstrap)
    url = f"{proxy}/v3/clusters/{cluster}/topics/{topic}/records"
    raw = bytes(range(256))
    cases = [
        ({"type": "BINARY", "data": base64.b64encode(raw).decode()}, raw),
        ({"type": "STRING", "data": "héllo wörld"}, "héllo wörld".encode()),
        ({"type": "JSON", "data": {"a": [1, 2.5, None, True], "b": "x"}},
         json.dumps({"a": [1, 2.5, None, True], "b": "x"}, separators=(",", ":")).encode()),
    ]
    reports = []
    for value, _ in cases:
        status, report = call("POST", url, {
            "partition_id": 0,
            "headers": [{"name": "trace", "value": base64.b64encode(b"t-1").decode()}, {"name": "empty"}],
            "key": {"type": "STRING", "data": "k"},
            "value": value,
            "timestamp": "2024-05-01T12:00:00.250Z",
        })
        assert status == 200, report
        assert report["error_code"] == 200, report
        assert (report["cluster_id"], report["topic_name"], report["partition_id"]) == (cluster, topic, 0)
        assert report["timestamp"] == "2024-05-01T12:00:00.250Z"
        assert report["key"] == {"type": "STRING", "size": 1}
        assert report["value"]["type"] == value["type"]
        reports.append(report)
    assert [r["offset"] for r in reports] == [reports[0]["offset"] + i for i in range(3)]

    got = read_all(bootstrap, topic, 1, 3)
    for m, (value, expected), report in zip(got, cases, reports):
        assert m.offset() == report["offset"]
        assert m.key() == b"k"
        assert m.value() == expected
        assert report["value"]["size"] == len(expected)
        assert m.headers() == [("trace", b"t-1"), ("empty", None)]
        assert m.timestamp()[1] == 1714564800250

    # No key and a null value: a Kafka null key and a tombstone.
    status, report = call("POST", url, {"value": {"type": "JSON", "data": None}, "partition_id": 0})
    assert status == 200 and report["error_code"] == 200 and "key" not in report, report
    m = read_all(bootstrap, topic, 1, 4)[-1]
    assert m.key() is None and m.value() is None


def stream_value(i: int) -> tuple[dict, bytes]:
    """The value of record i of a stream, in one of the three formats by turn, and its bytes in Kafka."""
    if i % 3 == 0:
        raw = f"v{i}".encode() * 3
        return {"type": "BINARY", "data": base64.b64encode(raw).decode()}, raw
    if i % 3 == 1:
        return {"type": "JSON", "data": {"i": i, "tags": ["a", None]}}, json.dumps(
            {"i": i, "tags": ["a", None]}, separators=(",", ":")).encode()
    return {"type": "STRING", "data": f"stríng {i}"}, f"stríng {i}".encode()


def test_a_stream_of_records_gets_one_report_each_in_order(proxy, cluster, bootstrap):
    topic = new_topic(bootstrap, partitions=3)
    url = f"{proxy}/v3/clusters/{cluster}/topics/{topic}/records"
    n = 500
    records = [json.dumps({"partition_id": i % 3, "key": {"type": "STRING", "data": f"k{i}"},
                           "value": stream_value(i)[0]})
               for i in range(n)]
    # Concatenated JSON, split at arbitrary places (inside records too), one chunk each.
    text = "\n".join(records).encode()
    chunks = [text[i:i + 777] for i in range(0, len(text), 777)]
    status, reports = post_stream(url, chunks)
    assert status == 200
    assert len(reports) == n
    assert all(r["error_code"] == 200 for r in reports), [r for r in reports if r["error_code"] != 200][:3]
    assert [r["partition_id"] for r in reports] == [i % 3 for i in range(n)]
    assert [r["value"]["type"] for r in reports[:3]] == ["BINARY", "JSON", "STRING"]
    for p in range(3):
        offsets = [r["offset"] for r in reports if r["partition_id"] == p]
        assert offsets == sorted(offsets) and len(set(offsets)) == len(offsets)

    by_position = {(r["partition_id"], r["offset"]): i for i, r in enumerate(reports)}
    for m in read_all(bootstrap, topic, 3, n):
        i = by_position[(m.partition(), m.offset())]
        assert m.key() == f"k{i}".encode() and m.value() == stream_value(i)[1]
        assert reports[i]["value"]["size"] == len(m.value())


def test_keyed_records_land_where_a_kafka_producer_puts_them(proxy, cluster, bootstrap):
    topic = new_topic(bootstrap, partitions=6)
    url = f"{proxy}/v3/clusters/{cluster}/topics/{topic}/records"
    keys = [f"user-{i}" for i in range(60)]
    status, reports = post_stream(url, [json.dumps({"key": {"type": "STRING", "data": k},
                                                    "value": {"type": "STRING", "data": "x"}}).encode()
                                        for k in keys])
    assert status == 200 and all(r["error_code"] == 200 for r in reports), reports[:3]

    # librdkafka's murmur2_random is the Java producer's default partitioner.
    p = Producer({"bootstrap.servers": bootstrap, "partitioner": "murmur2_random"})
    placed = {}
    for k in keys:
        p.produce(topic, key=k.encode(), value=b"y",
                  on_delivery=lambda err, msg: placed.__setitem__(msg.key().decode(), msg.partition()))
    p.flush(30)
    assert {k: r["partition_id"] for k, r in zip(keys, reports)} == placed
    assert len(set(placed.values())) > 1


def test_a_malformed_record_ends_the_stream_and_a_bad_one_does_not(proxy, cluster, bootstrap):
    topic = new_topic(bootstrap)
    url = f"{proxy}/v3/clusters/{cluster}/topics/{topic}/records"
    good = json.dumps({"value": {"type": "STRING", "data": "ok"}})
    bad_base64 = json.dumps({"value": {"type": "BINARY", "data": "***"}})
    unknown_field = json.dumps({"records": []})
    no_partition = json.dumps({"partition_id": 7, "value": {"type": "STRING", "data": "x"}})
    status, reports = post_stream(url, [f"{good}{bad_base64}\n{unknown_field}{no_partition}".encode(),
                                        f"{good} {{\"value\": nope}} {good}".encode()])
    assert status == 200
    assert [r["error_code"] for r in reports] == [200, 400, 400, 40402, 200, 400], reports
    assert "base64" in reports[1]["message"]
    assert "records" in reports[2]["message"]
    assert "Record 6 is not valid JSON" in reports[5]["message"], reports[5]
    assert len(read_all(bootstrap, topic, 1, 2)) == 2

    # Whole-request errors come before the stream: the HTTP status says them.
    status, body = post_stream(url, [b"  \n", b""])
    assert status == 422 and body[0]["error_code"] == 42206 and "empty" in body[0]["message"], body
    status, body = call("POST", f"{proxy}/v3/clusters/{cluster}/topics/no-such-{uuid.uuid4().hex[:6]}/records",
                        {"value": {"type": "STRING", "data": "x"}})
    assert (status, body["error_code"]) == (404, 40403), body
    status, body = call("POST", f"{proxy}/v3/clusters/not-{cluster}/topics/{topic}/records",
                        {"value": {"type": "STRING", "data": "x"}})
    assert status == 404, body


def test_schema_formats_without_a_registry_are_refused_per_record(proxy, cluster, bootstrap):
    topic = new_topic(bootstrap)
    url = f"{proxy}/v3/clusters/{cluster}/topics/{topic}/records"
    status, report = call("POST", url, {"value": {"type": "AVRO", "schema": "\"string\"", "data": "x"}})
    assert status == 200 and report["error_code"] == 400 and "schema registry" in report["message"], report
    status, report = call("POST", url, {"value": {"data": "x"}})
    assert status == 200 and report["error_code"] == 400, report


def test_records_batch_answers_by_id(proxy, cluster, bootstrap):
    topic = new_topic(bootstrap)
    url = f"{proxy}/v3/clusters/{cluster}/topics/{topic}/records:batch"
    status, body = call("POST", url, {"entries": [
        {"id": "a", "value": {"type": "STRING", "data": "first"}},
        {"id": "b", "value": {"type": "BINARY", "data": "!!"}},
        {"id": "c", "key": {"type": "JSON", "data": 7}, "value": {"type": "STRING", "data": "third"}},
    ]})
    assert status == 207, body
    assert [s["id"] for s in body["successes"]] == ["a", "c"]
    assert [(f["id"], f["error_code"]) for f in body["failures"]] == [("b", 400)]
    got = read_all(bootstrap, topic, 1, 2)
    assert [(m.key(), m.value()) for m in got] == [(None, b"first"), (b"7", b"third")]
    assert [s["offset"] for s in body["successes"]] == [m.offset() for m in got]

    status, body = call("POST", url, {"entries": [{"value": {"type": "STRING", "data": "x"}}]})
    assert (status, body["error_code"]) == (422, 42208), body


AVRO_ORDER = json.dumps({
    "type": "record", "name": "Order", "namespace": "shop",
    "fields": [
        {"name": "id", "type": "long"},
        {"name": "item", "type": "string"},
        {"name": "note", "type": ["null", "string"], "default": None},
        {"name": "qty", "type": "int", "default": 1},
    ],
})


@pytest.fixture
def platform(broker_factory):
    """`tributary start` with its schema registry and REST proxy, each on a free port."""
    return broker_factory.start(schema_registry=True, rest_proxy=True)


def test_avro_records_match_confluents_serializer_byte_for_byte(platform):
    from confluent_kafka.schema_registry import SchemaRegistryClient
    from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
    from confluent_kafka.serialization import MessageField, SerializationContext

    proxy, bootstrap = platform.rest_proxy_url, platform.bootstrap
    cluster = call("GET", f"{proxy}/v3/clusters")[1]["data"][0]["cluster_id"]
    topic = new_topic(bootstrap)
    url = f"{proxy}/v3/clusters/{cluster}/topics/{topic}/records"
    orders = [{"id": 1, "item": "tea", "note": None, "qty": 2}, {"id": 2, "item": "café", "note": "hot", "qty": 1}]

    # The first record carries the schema inline: the proxy registers it under <topic>-value.
    status, first = call("POST", url, {"partition_id": 0, "value": {
        "type": "AVRO", "schema": AVRO_ORDER,
        "data": {"id": 1, "item": "tea", "note": None, "qty": 2}}})
    assert status == 200 and first["error_code"] == 200, first
    value_report = first["value"]
    assert (value_report["type"], value_report["subject"], value_report["schema_version"]) == \
        ("AVRO", f"{topic}-value", 1)
    schema_id = value_report["schema_id"]
    # The rest stream in: one by schema id, one by "latest" (no type at all), with the
    # union in Avro's JSON encoding and a field left to its default.
    status, reports = post_stream(url, [
        json.dumps({"partition_id": 0, "value": {"schema_id": schema_id,
                                                  "data": {"id": 2, "item": "café", "note": {"string": "hot"}}}}).encode(),
        json.dumps({"partition_id": 0, "value": {"data": {"id": 3, "item": "x", "note": None, "qty": 5}}}).encode(),
        json.dumps({"partition_id": 0, "value": {"type": "AVRO", "schema": AVRO_ORDER,
                                                  "data": {"id": "four", "item": "y"}}}).encode(),
    ])
    assert status == 200
    assert [r["error_code"] for r in reports] == [200, 200, 400], reports
    assert "field id" in reports[2]["message"], reports[2]
    assert reports[1]["value"]["schema_id"] == schema_id and reports[1]["value"]["schema_version"] == 1
    orders.append({"id": 3, "item": "x", "note": None, "qty": 5})

    sr = SchemaRegistryClient({"url": platform.registry_url})
    ser = AvroSerializer(sr, AVRO_ORDER, conf={"auto.register.schemas": False, "use.latest.version": True})
    de = AvroDeserializer(sr)
    ctx = SerializationContext(topic, MessageField.VALUE)
    got = read_all(bootstrap, topic, 1, 3)
    for m, order in zip(got, orders):
        assert m.value() == ser(order, ctx), order
        assert de(m.value(), ctx) == order
