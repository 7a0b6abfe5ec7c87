"""`tributary topic produce` and `tributary topic consume` checked against
confluent-kafka (librdkafka) and Confluent's schema registry serializers:
what the CLI writes is read exactly by confluent-kafka's consumer and
deserializers, what confluent-kafka writes is printed exactly by the CLI,
offsets agree with watermarks and offsets_for_times, a CLI group member
shares its group with confluent-kafka members, commits where the AdminClient
sees it, and leaves on SIGINT.

The binary is $TRIBUTARY_BIN (default target/debug/tributary).
"""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import subprocess
import time
import uuid
import warnings

import pytest

warnings.filterwarnings("ignore", category=DeprecationWarning)

from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, Producer, TopicPartition  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402
from confluent_kafka.schema_registry import SchemaRegistryClient  # noqa: E402
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer  # noqa: E402
from confluent_kafka.schema_registry.json_schema import JSONDeserializer, JSONSerializer  # noqa: E402
from confluent_kafka.serialization import MessageField, SerializationContext  # noqa: E402

from conftest import broker_binary  # noqa: E402

TIMEOUT_S = 60


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def cli(bootstrap: str, *args: str, input: bytes | None = None, registry: str | None = None,
        timeout: float = TIMEOUT_S) -> subprocess.CompletedProcess:
    argv = [str(broker_binary()), "topic", *args, "--brokers", bootstrap, "--timeout", "10s"]
    env = dict(os.environ)
    env.pop("TRIBUTARY_SCHEMA_REGISTRY_URL", None)
    if registry:
        env["TRIBUTARY_SCHEMA_REGISTRY_URL"] = registry
    env["TRIBUTARY_CONFIG"] = "/nonexistent/tributary-test-config.toml"
    return subprocess.run(argv, input=input, capture_output=True, timeout=timeout, env=env)


def spawn(bootstrap: str, *args: str, **kw) -> subprocess.Popen:
    argv = [str(broker_binary()), "topic", *args, "--brokers", bootstrap, "--timeout", "10s"]
    env = dict(os.environ, TRIBUTARY_CONFIG="/nonexistent/tributary-test-config.toml")
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, **kw)


def ok(r: subprocess.CompletedProcess) -> str:
    assert r.returncode == 0, f"exit {r.returncode}: {r.stderr.decode(errors='replace')}"
    return r.stdout.decode()


def json_lines(r: subprocess.CompletedProcess) -> list[dict]:
    return [json.loads(line) for line in ok(r).splitlines() if line.strip()]


def create_topic(bootstrap: str, partitions: int) -> str:
    topic = unique("cli-io")
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, partitions, 1)])[topic].result(10)
    return topic


def read_all(bootstrap: str, topic: str, count: int) -> list:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": unique("reader"), "auto.offset.reset": "earliest",
                  "enable.auto.commit": False})
    c.subscribe([topic])
    got = []
    deadline = time.monotonic() + 30
    while len(got) < count and time.monotonic() < deadline:
        m = c.poll(0.5)
        if m is None or m.error():
            continue
        got.append(m)
    c.close()
    assert len(got) == count, f"read {len(got)} of {count} records"
    return got


def produce(bootstrap: str, topic: str, records: list[dict]) -> None:
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for r in records:
        p.produce(topic, **r)
    assert p.flush(30) == 0


# --------------------------------------------------------------------------- plain records


def test_a_file_of_1000_lines_reads_back_exactly_in_confluent_kafka(bootstrap, tmp_path):
    topic = create_topic(bootstrap, 3)
    lines = [f"key-{i}:value {i}:with colon" for i in range(1000)]
    path = tmp_path / "records.txt"
    path.write_text("\n".join(lines) + "\n")
    summary = json_lines(cli(bootstrap, "produce", topic, "--file", str(path), "--key-separator", ":",
                             "-H", "source=cli", "-H", "batch=7", "-o", "json"))
    assert len(summary) == 1
    s = summary[0]
    assert (s["topic"], s["records"], s["failed"]) == (topic, 1000, 0)
    assert s["bytes"] == sum(len(line) - 1 for line in lines)
    assert sum(s["partitions"].values()) == 1000 and set(s["partitions"]) <= {"0", "1", "2"}
    assert isinstance(s["elapsed_ms"], int)

    got = read_all(bootstrap, topic, 1000)
    expected = {f"key-{i}".encode(): f"value {i}:with colon".encode() for i in range(1000)}
    assert {m.key(): m.value() for m in got} == expected
    assert all(m.headers() == [("source", b"cli"), ("batch", b"7")] for m in got)
    per_partition = {}
    for m in got:
        per_partition[str(m.partition())] = per_partition.get(str(m.partition()), 0) + 1
    assert per_partition == s["partitions"]
    # One key always lands on one partition, in the order the lines came.
    for p in range(3):
        offsets = [m.offset() for m in got if m.partition() == p]
        assert offsets == sorted(offsets)


def test_plain_lines_fixed_keys_templates_acks_and_compression(bootstrap):
    topic = create_topic(bootstrap, 2)
    ok(cli(bootstrap, "produce", topic, "-k", "same", "--acks", "1", "-z", "zstd", input=b"a\nb\n"))
    ok(cli(bootstrap, "produce", topic, "-f", r"[%p] %T %k=%v\n", input=b"[1] 1700000000000 k1=v=1\n"))
    ok(cli(bootstrap, "produce", topic, "-p", "0", "--acks", "0", "-Z", input=b"plain\n\n"))
    got = read_all(bootstrap, topic, 5)
    same = [m for m in got if m.key() == b"same"]
    assert [m.value() for m in same] == [b"a", b"b"] and len({m.partition() for m in same}) == 1
    templated = next(m for m in got if m.key() == b"k1")
    assert (templated.partition(), templated.value(), templated.timestamp()[1]) == (1, b"v=1", 1700000000000)
    p0 = sorted((m.offset(), m.value()) for m in got if m.key() is None)
    assert [v for _, v in p0] == [b"plain", None], "-Z makes the empty line a tombstone"


def test_records_from_confluent_kafka_print_exactly_as_json_and_yaml(bootstrap):
    topic = create_topic(bootstrap, 1)
    records = [
        {"key": b"k1", "value": b"hello", "headers": [("h1", b"v1"), ("h2", None)], "timestamp": 1700000000001},
        {"key": None, "value": "héllo wörld".encode(), "timestamp": 1700000000002},
        {"key": b"\xff\x00bin", "value": b"\x80\x81", "headers": [("raw", b"\xfe")], "timestamp": 1700000000003},
        {"key": b"tomb", "value": None, "timestamp": 1700000000004},
    ]
    produce(bootstrap, topic, records)
    out = json_lines(cli(bootstrap, "consume", topic, "--from-beginning", "-e", "-o", "json"))
    assert out == [
        {"topic": topic, "partition": 0, "offset": 0, "timestamp": 1700000000001, "key": "k1", "value": "hello",
         "headers": [{"key": "h1", "value": "v1"}, {"key": "h2", "value": None}]},
        {"topic": topic, "partition": 0, "offset": 1, "timestamp": 1700000000002, "key": None,
         "value": "héllo wörld", "headers": []},
        {"topic": topic, "partition": 0, "offset": 2, "timestamp": 1700000000003, "key": "/wBiaW4=",
         "key_encoding": "base64", "value": "gIE=", "value_encoding": "base64",
         "headers": [{"key": "raw", "value": "/g==", "encoding": "base64"}]},
        {"topic": topic, "partition": 0, "offset": 3, "timestamp": 1700000000004, "key": "tomb", "value": None,
         "headers": []},
    ]
    # JSON lines are ordered as documented.
    first = ok(cli(bootstrap, "consume", topic, "--from-beginning", "-n", "1", "-o", "json")).splitlines()[0]
    assert list(json.loads(first)) == ["topic", "partition", "offset", "timestamp", "key", "value", "headers"]
    yaml = ok(cli(bootstrap, "consume", topic, "--from-beginning", "-n", "2", "-o", "yaml"))
    docs = yaml.split("---\n")
    assert docs[0] == "" and len(docs) == 3
    assert docs[1].startswith(f"topic: {topic}\npartition: 0\noffset: 0\ntimestamp: 1700000000001\nkey: k1\n")
    assert "headers:\n- key: h1\n  value: v1\n- key: h2\n  value: null\n" in docs[1]


def test_templates_render_as_documented(bootstrap):
    topic = create_topic(bootstrap, 1)
    produce(bootstrap, topic, [
        {"key": b"k1", "value": b"v1", "headers": [("a", b"1"), ("b", b"2")], "timestamp": 1700000000000},
        {"key": None, "value": b"v2", "timestamp": 1700000000005},
    ])

    def text(*args):
        return ok(cli(bootstrap, "consume", topic, "--from-beginning", "-e", *args))

    assert text() == "v1\nv2\n"
    assert text("--print-key") == "k1\tv1\n\tv2\n"
    assert text("--print-key", "--print-headers") == "a=1,b=2\tk1\tv1\n\t\tv2\n"
    assert text("-f", r"%t|%p|%o|%k|%v|%T|%h\n") == \
        f"{topic}|0|0|k1|v1|1700000000000|a=1,b=2\n{topic}|0|1||v2|1700000000005|\n"
    assert text("-f", r"%K %V %S %s\t100%%\n") == "2 2 2 v1\t100%\n-1 2 2 v2\t100%\n"
    bad = cli(bootstrap, "consume", topic, "-e", "-f", "%q")
    assert bad.returncode == 2 and b"unknown directive %q" in bad.stderr


def test_offsets_num_and_exit_follow_watermarks_and_offsets_for_times(bootstrap):
    topic = create_topic(bootstrap, 2)
    base = 1_700_000_000_000
    produce(bootstrap, topic, [{"value": f"p{p}-{i}".encode(), "partition": p, "timestamp": base + i * 1000}
                               for p in range(2) for i in range(10)])
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": unique("wm")})
    low, high = c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
    assert (low, high) == (0, 10)

    def offsets(*args, partition=None):
        extra = ["-p", str(partition)] if partition is not None else []
        out = json_lines(cli(bootstrap, "consume", topic, "-e", "-o", "json", *extra, *args))
        return [(r["partition"], r["offset"]) for r in out]

    assert sorted(offsets("--offset", "start")) == [(p, o) for p in range(2) for o in range(10)]
    assert sorted(offsets("--from-beginning")) == sorted(offsets("--offset", "start"))
    assert offsets("--offset", "end") == []
    assert offsets("--offset", "+4", partition=0) == [(0, o) for o in range(low + 4, high)]
    assert offsets("--offset", "-3", partition=1) == [(1, o) for o in range(high - 3, high)]
    assert offsets("--offset", "7", partition=0) == [(0, 7), (0, 8), (0, 9)]
    assert offsets("--offset", "-30", partition=0) == [(0, o) for o in range(10)], "clamped to the start"
    at = base + 6500
    want = c.offsets_for_times([TopicPartition(topic, 1, at)], timeout=10)[0].offset
    assert offsets("--offset", f"@{at}", partition=1) == [(1, o) for o in range(want, high)]
    rfc = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime((base + 3000) // 1000)) + "Z"
    want = c.offsets_for_times([TopicPartition(topic, 0, base + 3000)], timeout=10)[0].offset
    assert offsets("--offset", f"@{rfc}", partition=0) == [(0, o) for o in range(want, high)]
    c.close()
    # -n stops after N records, even without -e.
    out = json_lines(cli(bootstrap, "consume", topic, "--from-beginning", "-p", "0", "-n", "3", "-o", "json"))
    assert [r["offset"] for r in out] == [0, 1, 2]
    bad = cli(bootstrap, "consume", topic, "--offset", "soon")
    assert bad.returncode == 2 and b"is not an offset" in bad.stderr


# --------------------------------------------------------------------------- groups


def committed(bootstrap: str, group: str, topic: str, partitions: int) -> dict[int, int]:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    request = ConsumerGroupTopicPartitions(group, [TopicPartition(topic, p) for p in range(partitions)])
    result = admin.list_consumer_group_offsets([request])[group].result(10)
    return {tp.partition: tp.offset for tp in result.topic_partitions}


def test_a_group_resumes_from_committed_offsets_the_admin_client_sees(bootstrap):
    topic = create_topic(bootstrap, 4)
    produce(bootstrap, topic, [{"value": f"r{i}".encode(), "partition": i % 4} for i in range(40)])
    group = unique("cli-group")
    first = json_lines(cli(bootstrap, "consume", topic, "-g", group, "--from-beginning", "-n", "15", "-o", "json"))
    assert len(first) == 15
    seen = committed(bootstrap, group, topic, 4)
    assert sum(max(o, 0) for o in seen.values()) == 15, seen
    second = json_lines(cli(bootstrap, "consume", topic, "-g", group, "-e", "-o", "json"))
    values = [r["value"] for r in first + second]
    assert sorted(values) == sorted(f"r{i}" for i in range(40)), "each record once across the restart"
    assert committed(bootstrap, group, topic, 4) == {p: 10 for p in range(4)}
    # Nothing left: a third run prints nothing.
    assert json_lines(cli(bootstrap, "consume", topic, "-g", group, "-e", "-o", "json")) == []


def wait_for_members(bootstrap: str, group: str, count: int, timeout: float = 30) -> list:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        d = admin.describe_consumer_groups([group])[group].result(10)
        assigned = [m for m in d.members if m.assignment.topic_partitions]
        if len(d.members) == count and str(d.state).endswith("STABLE") and len(assigned) == count:
            return d.members
        time.sleep(0.3)
    pytest.fail(f"group {group} did not settle on {count} members")


def stop(proc: subprocess.Popen) -> tuple[int, bytes, bytes]:
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=20)
    return proc.returncode, out, err


def test_two_cli_members_split_the_partitions_and_stop_cleanly(bootstrap):
    topic = create_topic(bootstrap, 4)
    group = unique("cli-split")
    a = spawn(bootstrap, "consume", topic, "-g", group, "-o", "json")
    b = spawn(bootstrap, "consume", topic, "-g", group, "-o", "json")
    try:
        members = wait_for_members(bootstrap, group, 2)
        owned = [sorted(tp.partition for tp in m.assignment.topic_partitions) for m in members]
        assert sorted(owned) == [[0, 1], [2, 3]]
        produce(bootstrap, topic, [{"value": f"v{i}".encode(), "partition": i % 4} for i in range(20)])
        time.sleep(3)
    finally:
        ra, out_a, err_a = stop(a)
        rb, out_b, err_b = stop(b)
    assert (ra, rb) == (0, 0), (err_a, err_b)
    got_a = [json.loads(line) for line in out_a.decode().splitlines()]
    got_b = [json.loads(line) for line in out_b.decode().splitlines()]
    parts_a = {r["partition"] for r in got_a}
    parts_b = {r["partition"] for r in got_b}
    assert not parts_a & parts_b and parts_a | parts_b == {0, 1, 2, 3}
    assert len(got_a) + len(got_b) == 20
    assert committed(bootstrap, group, topic, 4) == {p: 5 for p in range(4)}


def test_sigint_leaves_the_group_and_a_confluent_member_takes_over_at_once(bootstrap):
    topic = create_topic(bootstrap, 2)
    group = unique("cli-mixed")
    proc = spawn(bootstrap, "consume", topic, "-g", group, "-o", "json")
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
                  "session.timeout.ms": 45000, "partition.assignment.strategy": "range"})
    try:
        wait_for_members(bootstrap, group, 1)
        c.subscribe([topic])
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(c.assignment()) != 1:
            c.poll(0.2)
        assert len(c.assignment()) == 1, "the CLI and confluent-kafka share the group, one partition each"
        mine = c.assignment()[0].partition
        produce(bootstrap, topic, [{"value": f"x{p}".encode(), "partition": p} for p in range(2)])
        time.sleep(2)
        started = time.monotonic()
        rc, out, err = stop(proc)
        assert rc == 0, err
        cli_got = [json.loads(line) for line in out.decode().splitlines()]
        assert [(r["partition"], r["value"]) for r in cli_got] == [(1 - mine, f"x{1 - mine}")]
        while time.monotonic() - started < 15 and len(c.assignment()) != 2:
            c.poll(0.2)
        assert len(c.assignment()) == 2, "the confluent member took over without waiting for a session timeout"
        assert time.monotonic() - started < 15
    finally:
        if proc.poll() is None:
            proc.kill()
        c.close()


# --------------------------------------------------------------------------- schema formats

AVRO_SCHEMA = {"type": "record", "name": "Order", "namespace": "shop",
               "fields": [{"name": "id", "type": "long"}, {"name": "item", "type": "string"},
                          {"name": "note", "type": ["null", "string"], "default": None}]}
JSON_SCHEMA = {"$schema": "http://json-schema.org/draft-07/schema#", "title": "Point", "type": "object",
               "properties": {"x": {"type": "integer"}, "y": {"type": "integer", "minimum": 0}},
               "required": ["x", "y"]}
PROTO_SCHEMA = """syntax = "proto3";
package shop;

message Item {
  string name = 1;
  int32 n = 2;
}
message Other {
  string reason = 1;
}
"""


def proto_class(name: str):
    """The shop.Item / shop.Other message classes built at run time (no protoc here)."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
    fdp = descriptor_pb2.FileDescriptorProto(name=f"cli_{uuid.uuid4().hex[:6]}.proto", package="shop", syntax="proto3")
    item = fdp.message_type.add(name="Item")
    item.field.add(name="name", number=1, type=descriptor_pb2.FieldDescriptorProto.TYPE_STRING,
                   label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL)
    item.field.add(name="n", number=2, type=descriptor_pb2.FieldDescriptorProto.TYPE_INT32,
                   label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL)
    other = fdp.message_type.add(name="Other")
    other.field.add(name="reason", number=1, type=descriptor_pb2.FieldDescriptorProto.TYPE_STRING,
                    label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(f"shop.{name}"))


def deserialized(bootstrap: str, topic: str, count: int, deserializer) -> list:
    return [deserializer(m.value(), SerializationContext(topic, MessageField.VALUE))
            for m in sorted(read_all(bootstrap, topic, count), key=lambda m: m.offset())]


def test_avro_values_from_the_cli_read_by_confluents_deserializer(registry_platform, schema_registry_url, tmp_path):
    bootstrap = registry_platform.bootstrap
    topic = create_topic(bootstrap, 1)
    schema = tmp_path / "order.avsc"
    schema.write_text(json.dumps(AVRO_SCHEMA))
    lines = [json.dumps({"id": i, "item": f"thing-{i}", "note": None if i % 2 else {"string": f"n{i}"}})
             for i in range(20)]
    out = json_lines(cli(bootstrap, "produce", topic, "--value-format", "avro", "--schema", str(schema), "-o", "json",
                         input=("\n".join(lines) + "\n").encode(), registry=schema_registry_url))
    assert out[0]["records"] == 20
    de = AvroDeserializer(SchemaRegistryClient({"url": schema_registry_url}))
    got = deserialized(bootstrap, topic, 20, de)
    assert got == [{"id": i, "item": f"thing-{i}", "note": None if i % 2 else f"n{i}"} for i in range(20)]
    # Without --schema the subject's latest version is used; the format follows from the extension too.
    ok(cli(bootstrap, "produce", topic, "--value-format", "avro", input=b'{"id": 99, "item": "x", "note": null}\n',
           registry=schema_registry_url))
    assert deserialized(bootstrap, topic, 21, de)[-1] == {"id": 99, "item": "x", "note": None}
    bad = cli(bootstrap, "produce", topic, "--schema", str(schema), input=b'{"id": "nope"}\n{"id": 1, "item": "y"}\n',
              registry=schema_registry_url)
    assert bad.returncode == 1 and b"line 1" in bad.stderr and bad.stderr.count(b"error:") == 1


def test_json_schema_values_are_validated_and_read_by_confluents_deserializer(registry_platform, schema_registry_url,
                                                                              tmp_path):
    bootstrap = registry_platform.bootstrap
    topic = create_topic(bootstrap, 1)
    schema = tmp_path / "point.json"
    schema.write_text(json.dumps(JSON_SCHEMA))
    r = cli(bootstrap, "produce", topic, "--schema", str(schema), "-o", "json",
            input=b'{"x": 1, "y": 2}\n{"x": 3, "y": -1}\n{"x": 5, "y": 6}\n', registry=schema_registry_url)
    assert r.returncode == 1, "a value the schema refuses is a failed record"
    assert b"line 2" in r.stderr and b"/y" in r.stderr
    assert json.loads(r.stdout)["records"] == 2 and json.loads(r.stdout)["failed"] == 1
    de = JSONDeserializer(json.dumps(JSON_SCHEMA))
    assert deserialized(bootstrap, topic, 2, de) == [{"x": 1, "y": 2}, {"x": 5, "y": 6}]
    assert SchemaRegistryClient({"url": schema_registry_url}).get_latest_version(
        f"{topic}-value").schema.schema_type == "JSON"


def test_protobuf_values_from_the_cli_read_by_confluents_deserializer(registry_platform, schema_registry_url,
                                                                      tmp_path):
    from confluent_kafka.schema_registry.protobuf import ProtobufDeserializer
    bootstrap = registry_platform.bootstrap
    topic = create_topic(bootstrap, 1)
    schema = tmp_path / "shop.proto"
    schema.write_text(PROTO_SCHEMA)
    no_message = cli(bootstrap, "produce", topic, "--schema", str(schema), input=b'{"name": "a"}\n',
                     registry=schema_registry_url)
    assert no_message.returncode == 2 and b"--message" in no_message.stderr
    ok(cli(bootstrap, "produce", topic, "--schema", str(schema), "--message", "Other",
           input=b'{"reason": "late"}\n{"reason": "lost"}\n', registry=schema_registry_url))
    de = ProtobufDeserializer(proto_class("Other"), {"use.deprecated.format": False})
    assert [m.reason for m in deserialized(bootstrap, topic, 2, de)] == ["late", "lost"]
    topic2 = create_topic(bootstrap, 1)
    ok(cli(bootstrap, "produce", topic2, "--value-format", "protobuf", "--schema", str(schema), "--message",
           "shop.Item", input=b'{"name": "tea", "n": 3}\n', registry=schema_registry_url))
    item = deserialized(bootstrap, topic2, 1, ProtobufDeserializer(proto_class("Item"),
                                                                   {"use.deprecated.format": False}))[0]
    assert (item.name, item.n) == ("tea", 3)


def test_values_from_confluents_serializers_are_decoded_by_consume(registry_platform, schema_registry_url):
    from confluent_kafka.schema_registry.protobuf import ProtobufSerializer
    bootstrap = registry_platform.bootstrap
    sr = SchemaRegistryClient({"url": schema_registry_url})
    other = proto_class("Other")
    cases = [
        ("avro", AvroSerializer(sr, json.dumps(AVRO_SCHEMA)),
         [{"id": 1, "item": "a", "note": "n"}, {"id": 2, "item": "b", "note": None}],
         [{"id": 1, "item": "a", "note": {"string": "n"}}, {"id": 2, "item": "b", "note": None}]),
        ("json-schema", JSONSerializer(json.dumps(JSON_SCHEMA), sr), [{"x": 1, "y": 2}], [{"x": 1, "y": 2}]),
        ("protobuf", ProtobufSerializer(other, sr, {"use.deprecated.format": False}),
         [other(reason="late")], [{"reason": "late"}]),
    ]
    for fmt, serializer, values, shown in cases:
        topic = create_topic(bootstrap, 1)
        p = Producer({"bootstrap.servers": bootstrap})
        for v in values:
            p.produce(topic, value=serializer(v, SerializationContext(topic, MessageField.VALUE)))
        assert p.flush(30) == 0
        for decode in (fmt, "auto"):
            out = json_lines(cli(bootstrap, "consume", topic, "--from-beginning", "-e", "-o", "json",
                                 "--value-format", decode, registry=schema_registry_url))
            assert [r["value"] for r in out] == shown, (fmt, decode)
            assert all(isinstance(r["value_schema_id"], int) for r in out)
        text = ok(cli(bootstrap, "consume", topic, "--from-beginning", "-e", "-n", "1", "--value-format", fmt,
                      registry=schema_registry_url))
        assert json.loads(text) == shown[0]
    # A plain value under --value-format auto is shown as it is.
    topic = create_topic(bootstrap, 1)
    produce(bootstrap, topic, [{"value": b"plain"}])
    out = json_lines(cli(bootstrap, "consume", topic, "--from-beginning", "-e", "-o", "json", "--value-format", "auto",
                         registry=schema_registry_url))
    assert out[0]["value"] == "plain" and "value_schema_id" not in out[0]


# --------------------------------------------------------------------------- progress, exit statuses


def run_with_pty_stderr(argv: list[str], stdin_path=None) -> tuple[int, bytes]:
    master, slave = pty.openpty()
    env = dict(os.environ, TRIBUTARY_CONFIG="/nonexistent/tributary-test-config.toml", TERM="xterm")
    stdin = open(stdin_path, "rb") if stdin_path else subprocess.DEVNULL
    proc = subprocess.Popen(argv, stdin=stdin, stdout=subprocess.DEVNULL, stderr=slave, env=env)
    os.close(slave)
    seen = b""
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
        elif proc.poll() is not None:
            break
    proc.wait(timeout=10)
    os.close(master)
    if stdin_path:
        stdin.close()
    return proc.returncode, seen


def test_progress_bars_show_on_a_terminal_and_not_in_a_pipe(bootstrap, tmp_path):
    topic = create_topic(bootstrap, 1)
    path = tmp_path / "big.txt"
    path.write_bytes(b"".join(f"record number {i:08d} with some padding\n".encode() for i in range(50_000)))
    produce_argv = [str(broker_binary()), "topic", "produce", topic, "--brokers", bootstrap]
    rc, seen = run_with_pty_stderr(produce_argv + ["--file", str(path)])
    assert rc == 0 and b"MiB" in seen and b"[" in seen, seen[-500:]
    rc, seen = run_with_pty_stderr(produce_argv, stdin_path=path)  # stdin redirected from a file counts
    assert rc == 0 and b"MiB" in seen, seen[-500:]
    piped = cli(bootstrap, "produce", topic, "--file", str(path))
    assert piped.returncode == 0 and piped.stderr == b""
    consume_argv = [str(broker_binary()), "topic", "consume", topic, "--brokers", bootstrap, "--from-beginning",
                    "-n", "1000"]
    rc, seen = run_with_pty_stderr(consume_argv)
    assert rc == 0 and b"1,000/1,000 records" in seen, seen[-500:]
    piped = cli(bootstrap, "consume", topic, "--from-beginning", "-n", "1000")
    assert piped.returncode == 0 and piped.stderr == b"" and len(piped.stdout.splitlines()) == 1000


def test_exit_statuses_and_one_line_errors(bootstrap):
    missing = unique("missing")
    for verb in ("produce", "consume"):
        r = cli(bootstrap, verb, missing, "-e" if verb == "consume" else "-Z", input=b"x\n")
        assert r.returncode == 4, (verb, r.stderr)
        lines = r.stderr.decode().strip().splitlines()
        assert len(lines) == 1 and "UNKNOWN_TOPIC_OR_PARTITION" in lines[0] and missing in lines[0]
    topic = create_topic(bootstrap, 1)
    r = cli(bootstrap, "consume", topic, "-p", "5", "-e")
    assert r.returncode == 4 and b"no partition 5" in r.stderr
    r = cli(bootstrap, "produce", topic, "-p", "5", input=b"x\n")
    assert r.returncode == 4 and b"no partition 5" in r.stderr
    for verb in ("produce", "consume"):
        r = cli("127.0.0.1:1", verb, topic, input=b"x\n")
        assert r.returncode == 5, (verb, r.stderr)
        lines = r.stderr.decode().strip().splitlines()
        assert len(lines) == 1 and "no broker reachable" in lines[0] and "--brokers" in lines[0]
    r = cli(bootstrap, "produce", topic, "--value-format", "avro", input=b"{}\n", registry="http://127.0.0.1:1")
    assert r.returncode == 5 and b"--schema-registry-url" in r.stderr
