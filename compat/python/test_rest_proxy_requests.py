"""Requests shaped the way Confluent's kafka-rest takes them, sent with
`requests` to Tributary's REST Proxy: the optional and `null` fields, aliases,
defaults, query parameters and error answers of its request entities
(CreateTopicRequest, ProduceRequest, ProduceBatchRequest, the v2
CreateConsumerInstanceRequest, ConsumerSubscriptionRecord,
ConsumerSeekRequest, ConsumerOffsetCommitRequest, ...), and the line-per-report
answer of a streamed produce. What the proxy did is checked with
confluent-kafka where Kafka can tell."""

from __future__ import annotations

import base64
import json
import time
import uuid

import pytest
import requests
from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource

from restproxy import new_topic, read_all, rest_proxy

V2 = "application/vnd.kafka.v2+json"
BINARY = "application/vnd.kafka.binary.v2+json"
JSON_FORMAT = "application/vnd.kafka.json.v2+json"
TIMEOUT_S = 60


@pytest.fixture(scope="module")
def proxy(bootstrap, tmp_path_factory):
    with rest_proxy(bootstrap, tmp_path_factory.mktemp("rest-proxy") / "rest-proxy.log") as url:
        yield url


@pytest.fixture(scope="module")
def cluster(proxy):
    r = requests.get(f"{proxy}/v3/clusters", timeout=TIMEOUT_S)
    assert r.status_code == 200, r.text
    return r.json()["data"][0]["cluster_id"]


@pytest.fixture(scope="module")
def admin(bootstrap):
    return AdminClient({"bootstrap.servers": bootstrap})


def v2(method: str, url: str, body=None, content_type: str = V2, accept: str | None = None,
       data: bytes | None = None) -> requests.Response:
    headers = {"Content-Type": content_type}
    if accept:
        headers["Accept"] = accept
    payload = data if data is not None else (None if body is None else json.dumps(body).encode())
    return requests.request(method, url, data=payload, headers=headers, timeout=TIMEOUT_S)


def error(r: requests.Response) -> tuple[int, int]:
    return r.status_code, r.json()["error_code"]


def watermarks(bootstrap: str, topic: str, partition: int = 0) -> tuple[int, int]:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"wm-{uuid.uuid4().hex[:6]}"})
    try:
        return c.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
    finally:
        c.close()


def committed(admin: AdminClient, group: str) -> dict[int, int]:
    found = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)])[group].result(10)
    return {tp.partition: tp.offset for tp in found.topic_partitions}


def produce_values(bootstrap: str, topic: str, values: list[bytes], timestamps: list[int] | None = None) -> None:
    p = Producer({"bootstrap.servers": bootstrap})
    for i, v in enumerate(values):
        if timestamps:
            p.produce(topic, value=v, partition=0, timestamp=timestamps[i])
        else:
            p.produce(topic, value=v, partition=0)
    assert p.flush(30) == 0


def new_instance(proxy: str, group: str, config: dict) -> str:
    r = v2("POST", f"{proxy}/consumers/{group}", config)
    assert r.status_code == 200, r.text
    return r.json()["base_uri"]


def poll(base: str, count: int, accept: str = BINARY) -> list:
    got = []
    deadline = time.monotonic() + 30
    while len(got) < count and time.monotonic() < deadline:
        r = v2("GET", f"{base}/records?timeout=500", accept=accept)
        assert r.status_code == 200, r.text
        got.extend(r.json())
    assert len(got) == count, f"got {len(got)} of {count}"
    return got


# ---- v3 produce: the answer of /records


def test_streamed_produce_answers_one_json_object_per_line(proxy, cluster, bootstrap):
    """kafka-rest's chunked output ends every report, an error's too, with
    CRLF: a client reads the answer line by line."""
    topic = new_topic(bootstrap)
    url = f"{proxy}/v3/clusters/{cluster}/topics/{topic}/records"
    records = [
        {"partition_id": 0, "value": {"type": "STRING", "data": "one"}},
        {"partition_id": 0, "value": {"type": "STRING", "data": "two"}, "colour": "red"},
        {"partition_id": 0, "value": {"type": "BINARY", "data": "*not base64*"}},
        {"partition_id": 0, "value": {"type": "JSON", "data": {"n": 4}}},
    ]

    def chunks():
        for rec in records:
            yield json.dumps(rec).encode()
        yield b'{"partition_id": 0, "value": '  # cut short: the stream ends with an error report

    r = requests.post(url, data=chunks(), headers={"Content-Type": "application/json"}, stream=True,
                      timeout=TIMEOUT_S)
    assert r.status_code == 200
    lines = [json.loads(line) for line in r.iter_lines() if line]
    assert [line["error_code"] for line in lines] == [200, 400, 400, 200, 400], lines
    assert [line["offset"] for line in lines if line["error_code"] == 200] == [0, 1]
    assert all(set(line) == {"error_code", "message"} for line in lines if line["error_code"] != 200), lines

    # The separator is exactly CRLF, after every report, the last one too.
    r = requests.post(url, data=iter([json.dumps(records[0]).encode(), json.dumps(records[1]).encode()]),
                      headers={"Content-Type": "application/json"}, timeout=TIMEOUT_S)
    assert r.status_code == 200
    parts = r.content.split(b"\r\n")
    assert len(parts) == 3 and parts[2] == b"", r.content
    assert r.content.count(b"\n") == 2
    assert [json.loads(p)["error_code"] for p in parts[:2]] == [200, 400]

    # One record, not streamed: one report and its CRLF.
    r = requests.post(url, json=records[0], timeout=TIMEOUT_S)
    assert r.status_code == 200 and r.content.endswith(b"}\r\n") and r.content.count(b"\n") == 1, r.content
    assert r.json()["offset"] == 3
    assert [m.value() for m in read_all(bootstrap, topic, 1, 3)] == [b"one", b'{"n":4}', b"one"]


def test_produce_without_a_body_is_a_payload_error(proxy, cluster, bootstrap):
    topic = new_topic(bootstrap)
    r = requests.post(f"{proxy}/v3/clusters/{cluster}/topics/{topic}/records", data=b"",
                      headers={"Content-Type": "application/json"}, timeout=TIMEOUT_S)
    assert error(r) == (422, 42206), r.text


def test_a_key_or_value_needs_its_data_field(proxy, cluster, bootstrap):
    """`data` may be null (a Kafka null) but not left out."""
    topic = new_topic(bootstrap)
    url = f"{proxy}/v3/clusters/{cluster}/topics/{topic}/records"
    report = requests.post(url, json={"value": {"type": "STRING"}}, timeout=TIMEOUT_S).json()
    assert report["error_code"] == 400 and "data" in report["message"], report
    report = requests.post(url, json={"value": {"type": "STRING", "data": None}}, timeout=TIMEOUT_S).json()
    assert report["error_code"] == 200, report
    assert watermarks(bootstrap, topic) == (0, 1)


def test_record_timestamps_in_epoch_seconds(proxy, cluster, bootstrap):
    """An Instant may come as seconds since the epoch, a number or a string;
    reports write whole seconds without a fraction, and leave out the key of
    a record that has none."""
    topic = new_topic(bootstrap)
    url = f"{proxy}/v3/clusters/{cluster}/topics/{topic}/records"
    value = {"type": "STRING", "data": "t"}
    r = requests.post(url, json={"partition_id": 0, "value": value, "timestamp": 1714564800}, timeout=TIMEOUT_S)
    report = r.json()
    assert report["error_code"] == 200, report
    assert report["timestamp"] == "2024-05-01T12:00:00Z"
    assert "key" not in report and report["value"] == {"type": "STRING", "size": 1}
    # partition_id as a string of digits, which Jackson takes as the number.
    r = requests.post(url, json={"partition_id": "0", "value": value, "timestamp": "1714564800.25"},
                      timeout=TIMEOUT_S)
    assert r.json()["timestamp"] == "2024-05-01T12:00:00.250Z", r.text
    assert [m.timestamp()[1] for m in read_all(bootstrap, topic, 1, 2)] == [1714564800000, 1714564800250]


def test_batches_kafka_rest_refuses_are_refused_whole(proxy, cluster, bootstrap):
    topic = new_topic(bootstrap)
    url = f"{proxy}/v3/clusters/{cluster}/topics/{topic}/records:batch"
    one = {"value": {"type": "STRING", "data": "x"}}
    for body, message in [
        ({"entries": []}, "Empty batch."),
        ({"entries": None}, "Empty batch."),
        ({"entries": [{"id": "a", **one}, {"id": "a", **one}]}, "Batch entry IDs are not distinct."),
        ({"entries": [{"id": "a b", **one}]}, "Batch entry identifier is not a valid string."),
        ({"entries": [{"id": 7, **one}]}, "Batch entry identifier is not a valid string."),
    ]:
        r = requests.post(url, json=body, timeout=TIMEOUT_S)
        assert error(r) == (422, 42208) and r.json()["message"] == message, (body, r.text)
    r = requests.post(url, data=b"", headers={"Content-Type": "application/json"}, timeout=TIMEOUT_S)
    assert error(r) == (422, 42208), r.text
    # An entry the mapper refuses fails the batch before anything is written.
    r = requests.post(url, json={"entries": [{"id": "a", **one}, {"id": "b", **one, "colour": "red"}]},
                      timeout=TIMEOUT_S)
    assert error(r) == (422, 422) and r.json()["message"] == "Unrecognized field: colour", r.text
    assert watermarks(bootstrap, topic) == (0, 0)
    r = requests.post(url, json={"entries": [{"id": "a-1_B", **one}]}, timeout=TIMEOUT_S)
    assert r.status_code == 207 and [s["id"] for s in r.json()["successes"]] == ["a-1_B"], r.text


# ---- v2 consumers


def test_commit_with_an_empty_object_commits_everything_fetched(proxy, bootstrap, admin):
    topic = new_topic(bootstrap)
    produce_values(bootstrap, topic, [f"v{i}".encode() for i in range(5)])
    group = f"rest-commit-{uuid.uuid4().hex[:6]}"
    base = new_instance(proxy, group, {"format": "binary", "auto.commit.enable": "false"})
    assert v2("POST", f"{base}/assignments", {"partitions": [{"topic": topic, "partition": 0}]}).status_code == 204
    assert v2("POST", f"{base}/positions/beginning", {"partitions": [{"topic": topic, "partition": 0}]}).status_code \
        == 204
    poll(base, 5)

    r = v2("POST", f"{base}/offsets", data=b"{}")
    assert r.status_code == 200 and r.json() == [], r.text
    assert r.headers["Content-Type"].startswith(V2)
    assert committed(admin, group) == {0: 5}

    produce_values(bootstrap, topic, [b"v5", b"v6"])
    poll(base, 2)
    r = v2("POST", f"{base}/offsets", {"offsets": None})
    assert r.status_code == 200 and r.json() == [], r.text
    assert committed(admin, group) == {0: 7}
    # No body at all: the same.
    r = v2("POST", f"{base}/offsets", data=b"")
    assert r.status_code == 200 and r.json() == [], r.text
    assert v2("DELETE", base).status_code == 204


def test_consumer_instance_settings_as_kafka_rest_reads_them(proxy, bootstrap):
    group = f"rest-settings-{uuid.uuid4().hex[:6]}"
    # `id` is the old name of `name` and wins over it; `format` is read in any case.
    r = v2("POST", f"{proxy}/consumers/{group}", {"id": "by-id", "name": "by-name", "format": "JSON"})
    assert r.status_code == 200 and r.json()["instance_id"] == "by-id", r.text
    base = r.json()["base_uri"]
    assert base.endswith(f"/consumers/{group}/instances/by-id")
    assert v2("GET", f"{base}/records?timeout=100", accept=JSON_FORMAT).status_code == 200
    assert v2("DELETE", base).status_code == 204
    # The camel-case aliases of fetch.min.bytes and consumer.request.timeout.ms are taken.
    r = v2("POST", f"{proxy}/consumers/{group}", {"name": "aliases", "responseMinBytes": 10, "requestWaitMs": 100})
    assert r.status_code == 200, r.text
    assert v2("DELETE", r.json()["base_uri"]).status_code == 204

    # What kafka-rest refuses, with its codes.
    for config, code in [
        ({"format": "binary", "enable.auto.commit": "false"}, 422),  # not a field of the request
        ({"format": "xml"}, 422),
        ({"fetch.min.bytes": 20_000_000}, 40001),
        ({"auto.commit.enable": "maybe"}, 42204),
        ({"auto.offset.reset": "somewhere"}, 42204),
    ]:
        r = v2("POST", f"{proxy}/consumers/{group}", config)
        assert error(r) == (422, code), (config, r.text)
    r = v2("POST", f"{proxy}/consumers/{group}", {"format": "binary", "enable.auto.commit": "false"})
    assert r.json()["message"] == "Unrecognized field: enable.auto.commit"


def test_subscription_bodies_as_kafka_rest_reads_them(proxy, bootstrap):
    topic = new_topic(bootstrap)
    group = f"rest-sub-{uuid.uuid4().hex[:6]}"
    base = new_instance(proxy, group, {"format": "binary"})
    # `topics` wins over `topic_pattern`.
    assert v2("POST", f"{base}/subscription", {"topics": [topic], "topic_pattern": "nothing-.*"}).status_code == 204
    assert v2("GET", f"{base}/subscription").json() == {"topics": [topic]}
    # Neither: nothing changes.
    assert v2("POST", f"{base}/subscription", {}).status_code == 204
    assert v2("GET", f"{base}/subscription").json() == {"topics": [topic]}
    # An empty list unsubscribes.
    assert v2("POST", f"{base}/subscription", {"topics": []}).status_code == 204
    assert v2("GET", f"{base}/subscription").json() == {"topics": []}
    assert v2("DELETE", base).status_code == 204


def test_seek_to_times_and_offsets_with_fields_left_out(proxy, bootstrap):
    topic = new_topic(bootstrap)
    start = 1_714_564_800_000
    produce_values(bootstrap, topic, [f"v{i}".encode() for i in range(6)], [start + 1000 * i for i in range(6)])
    group = f"rest-seek-{uuid.uuid4().hex[:6]}"
    base = new_instance(proxy, group, {"format": "binary"})
    assert v2("POST", f"{base}/assignments", {"partitions": [{"topic": topic, "partition": 0}]}).status_code == 204

    # `timestamps` alone (no `offsets`): the first record at or after the time.
    r = v2("POST", f"{base}/positions", {"timestamps": [
        {"topic": topic, "partition": 0, "timestamp": "2024-05-01T12:00:03Z", "metadata": "m"}]})
    assert r.status_code == 204, r.text
    assert [x["offset"] for x in poll(base, 3)] == [3, 4, 5]
    # `partition` left out is 0, as kafka-rest's primitive field.
    r = v2("POST", f"{base}/positions", {"offsets": [{"topic": topic, "offset": 1}]})
    assert r.status_code == 204, r.text
    assert base64.b64decode(poll(base, 5)[0]["value"]) == b"v1"
    assert v2("DELETE", base).status_code == 204


def test_records_query_takes_kafka_rest_defaults(proxy, bootstrap):
    group = f"rest-query-{uuid.uuid4().hex[:6]}"
    base = new_instance(proxy, group, {"format": "binary", "consumer.request.timeout.ms": 200})
    r = v2("GET", f"{base}/records?timeout=-1&max_bytes=-1", accept=BINARY)
    assert r.status_code == 200 and r.json() == [], r.text
    # The plain v2 type is binary's, as kafka-rest negotiates it.
    r = v2("GET", f"{base}/records?timeout=100", accept=V2)
    assert r.status_code == 200 and r.json() == [], r.text
    # Committed offsets of no partition at all: kafka-rest's 404.
    assert error(v2("GET", f"{base}/offsets")) == (404, 40402)
    assert v2("DELETE", base).status_code == 204


# ---- v2 produce


def test_v2_produce_bodies_as_kafka_rest_reads_them(proxy, bootstrap):
    topic = new_topic(bootstrap, partitions=2)
    value = base64.b64encode(b"x").decode()
    r = v2("POST", f"{proxy}/topics/{topic}", {"records": []}, BINARY)
    assert error(r) == (422, 422), r.text
    r = v2("POST", f"{proxy}/topics/{topic}", {"records": [{"value": value}], "value_format": "x"}, BINARY)
    assert error(r) == (422, 422) and r.json()["message"] == "Unrecognized field: value_format", r.text
    r = v2("POST", f"{proxy}/topics/{topic}", data=b'{"records": [', content_type=BINARY)
    assert error(r) == (400, 400), r.text
    assert watermarks(bootstrap, topic, 0) == (0, 0) and watermarks(bootstrap, topic, 1) == (0, 0)
    # A record's own partition wins over the path's; a partition may be a string of digits.
    r = v2("POST", f"{proxy}/topics/{topic}/partitions/0", {"records": [{"value": value, "partition": "1"}]}, BINARY)
    assert r.status_code == 200 and r.json()["offsets"][0]["partition"] == 1, r.text
    assert watermarks(bootstrap, topic, 1) == (0, 1)


def test_v3_schema_fields_kafka_rest_refuses_together(broker_factory):
    """kafka-rest's ProduceRequestData takes one way to name a schema: by
    id, by version or latest (no `type`), or inline with a `type`."""
    b = broker_factory.start(schema_registry=True, rest_proxy=True)
    proxy = b.rest_proxy_url
    cluster = requests.get(f"{proxy}/v3/clusters", timeout=TIMEOUT_S).json()["data"][0]["cluster_id"]
    topic = new_topic(b.bootstrap)
    url = f"{proxy}/v3/clusters/{cluster}/topics/{topic}/records"
    schema = json.dumps({"type": "record", "name": "R", "fields": [{"name": "n", "type": "int"}]})
    r = requests.post(url, json={"value": {"type": "AVRO", "schema": schema, "data": {"n": 1}}}, timeout=TIMEOUT_S)
    assert r.json()["error_code"] == 200, r.text
    schema_id = r.json()["value"]["schema_id"]
    for value, says in [
        ({"type": "AVRO", "schema_id": schema_id, "data": {"n": 2}}, "'schema_id="),
        ({"type": "AVRO", "schema_version": 1, "data": {"n": 2}}, "'schema_version=1'"),
        ({"type": "AVRO", "data": {"n": 2}}, "'schema_version=latest'"),
        ({"schema_id": schema_id, "schema_version": 1, "data": {"n": 2}}, "Only one of 'schema_id'"),
        ({"subject": f"{topic}-value", "subject_name_strategy": "TOPIC_NAME", "data": {"n": 2}}, "Only one of"),
    ]:
        report = requests.post(url, json={"value": value}, timeout=TIMEOUT_S).json()
        assert report["error_code"] == 400 and says in report["message"], (value, report)
    # Each on its own is fine.
    for value in [{"schema_id": schema_id, "data": {"n": 3}}, {"schema_version": 1, "data": {"n": 4}},
                  {"data": {"n": 5}}, {"subject_name_strategy": "TOPIC_NAME", "data": {"n": 6}}]:
        report = requests.post(url, json={"value": value}, timeout=TIMEOUT_S).json()
        assert report["error_code"] == 200, (value, report)
    assert watermarks(b.bootstrap, topic) == (0, 5)
    b.stop_cleanly()


def test_v2_schema_missing_codes_are_kafka_rests(broker_factory):
    """42201 for keys without a key schema, 42202 for values without a value schema."""
    b = broker_factory.start(schema_registry=True, rest_proxy=True)
    topic = new_topic(b.bootstrap)
    avro = "application/vnd.kafka.avro.v2+json"
    schema = json.dumps({"type": "record", "name": "R", "fields": [{"name": "n", "type": "int"}]})
    r = v2("POST", f"{b.rest_proxy_url}/topics/{topic}", {"records": [{"value": {"n": 1}}]}, avro)
    assert error(r) == (422, 42202), r.text
    r = v2("POST", f"{b.rest_proxy_url}/topics/{topic}",
           {"value_schema": schema, "records": [{"key": {"n": 1}, "value": {"n": 1}}]}, avro)
    assert error(r) == (422, 42201), r.text
    r = v2("POST", f"{b.rest_proxy_url}/topics/{topic}", {"value_schema": schema, "records": [{"value": {"n": 1}}]},
           avro)
    assert r.status_code == 200 and r.json()["value_schema_id"] is not None, r.text
    b.stop_cleanly()


# ---- v3 admin


def test_create_topic_takes_every_field_of_kafka_rest(proxy, cluster, bootstrap, admin):
    url = f"{proxy}/v3/clusters/{cluster}/topics"
    broker = requests.get(f"{url[:-len('/topics')]}/brokers", timeout=TIMEOUT_S).json()["data"][0]["broker_id"]

    # validate_only: checked, answered 200 with the topic as it would be, not created.
    name = f"rest-{uuid.uuid4().hex[:8]}"
    r = requests.post(url, json={"topic_name": name, "partitions_count": 3, "validate_only": True},
                      timeout=TIMEOUT_S)
    assert r.status_code == 200, r.text
    assert (r.json()["topic_name"], r.json()["partitions_count"]) == (name, 3)
    assert name not in admin.list_topics(timeout=10).topics

    # Explicit replica assignments say the partition count.
    r = requests.post(url, json={"topic_name": name, "replicas_assignments": {"0": [broker], "1": [broker]}},
                      timeout=TIMEOUT_S)
    assert r.status_code == 201, r.text
    assert r.json()["partitions_count"] == 2
    assert r.headers["Location"] == r.json()["metadata"]["self"]
    assert len(admin.list_topics(name, timeout=10).topics[name].partitions) == 2

    # null is as good as absent.
    other = f"rest-{uuid.uuid4().hex[:8]}"
    r = requests.post(url, json={"topic_name": other, "partitions_count": 1, "replication_factor": None,
                                 "configs": None, "validate_only": None}, timeout=TIMEOUT_S)
    assert r.status_code == 201, r.text

    for body, expected in [
        ({"topic_name": f"rest-{uuid.uuid4().hex[:8]}", "partition_count": 1}, (422, 422)),
        ({"topic_name": "no spaces allowed"}, (422, 42206)),
    ]:
        r = requests.post(url, json=body, timeout=TIMEOUT_S)
        assert error(r) == expected, (body, r.text)
    r = requests.post(url, data=b"", headers={"Content-Type": "application/json"}, timeout=TIMEOUT_S)
    assert error(r) == (422, 42206), r.text
    r = requests.patch(f"{url}/{name}", data=b"", headers={"Content-Type": "application/json"}, timeout=TIMEOUT_S)
    assert error(r) == (422, 42206), r.text


def test_config_values_may_be_numbers_and_flags_null(proxy, cluster, bootstrap, admin):
    topic = new_topic(bootstrap)
    url = f"{proxy}/v3/clusters/{cluster}/topics/{topic}/configs"
    r = requests.put(f"{url}/retention.ms", json={"value": 86400000}, timeout=TIMEOUT_S)
    assert r.status_code == 204, r.text
    r = requests.post(f"{url}:alter", json={"data": [{"name": "segment.ms", "value": 3600000}],
                                            "validate_only": None}, timeout=TIMEOUT_S)
    assert r.status_code == 204, r.text
    res = ConfigResource(ConfigResource.Type.TOPIC, topic)
    described = admin.describe_configs([res])[res].result(10)
    assert (described["retention.ms"].value, described["segment.ms"].value) == ("86400000", "3600000")

    r = requests.post(f"{url}:alter", data=b"", headers={"Content-Type": "application/json"}, timeout=TIMEOUT_S)
    assert error(r) == (422, 42206), r.text


def test_configs_must_exist_to_be_altered_or_reset(proxy, cluster, bootstrap, admin):
    """kafka-rest looks a batch's configs up before altering any, and resets
    only a cluster-wide default that is set."""
    topic = new_topic(bootstrap)
    url = f"{proxy}/v3/clusters/{cluster}/topics/{topic}/configs"
    r = requests.post(f"{url}:alter", json={"data": [{"name": "retention.ms", "value": "1000"},
                                                     {"name": "no.such.config", "value": "1"}]}, timeout=TIMEOUT_S)
    assert error(r) == (404, 404), r.text
    res = ConfigResource(ConfigResource.Type.TOPIC, topic)
    assert admin.describe_configs([res])[res].result(10)["retention.ms"].value != "1000"
    r = requests.delete(f"{proxy}/v3/clusters/{cluster}/broker-configs/compression.gzip.level", timeout=TIMEOUT_S)
    assert error(r) == (404, 404), r.text
    r = requests.put(f"{url}/retention.ms", json={"value": "1", "validate_only": True}, timeout=TIMEOUT_S)
    assert error(r) == (422, 422), r.text


def test_partition_offsets_know_only_earliest_and_latest(proxy, cluster, bootstrap):
    topic = new_topic(bootstrap)
    url = f"{proxy}/v3/clusters/{cluster}/topics/{topic}/partitions/0/offset"
    r = requests.get(url, timeout=TIMEOUT_S)
    assert r.status_code == 200, r.text
    assert r.json()["metadata"]["resource_name"].endswith("/partition=0/offset_type=earliest_and_latest")
    assert requests.get(f"{url}?offset_type=earliest_and_latest", timeout=TIMEOUT_S).status_code == 200
    assert error(requests.get(f"{url}?offset_type=latest", timeout=TIMEOUT_S)) == (400, 400)
