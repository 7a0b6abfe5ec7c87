"""confluent-kafka's Schema Registry client and serdes against Tributary's
registry: register, look up, fetch by id, Avro / JSON Schema / Protobuf
records through the broker, references, compatibility (accepted and 409),
durability across a restart, and a second registry instance that serves the
same data and forwards writes to the elected one.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.request
import uuid
import warnings

import pytest

warnings.filterwarnings("ignore", category=DeprecationWarning)

from confluent_kafka import Consumer, Producer, TopicPartition  # noqa: E402
from confluent_kafka.schema_registry import Schema, SchemaReference, SchemaRegistryClient  # noqa: E402
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer  # noqa: E402
from confluent_kafka.schema_registry.error import SchemaRegistryError  # noqa: E402
from confluent_kafka.schema_registry.json_schema import JSONDeserializer, JSONSerializer  # noqa: E402
from confluent_kafka.serialization import MessageField, SerializationContext  # noqa: E402

import conftest  # noqa: E402

AVRO_V1 = json.dumps({"type": "record", "name": "Order", "namespace": "shop",
                      "fields": [{"name": "id", "type": "long"}, {"name": "item", "type": "string"}]})
AVRO_V2_OK = json.dumps({"type": "record", "name": "Order", "namespace": "shop",
                         "fields": [{"name": "id", "type": "long"}, {"name": "item", "type": "string"},
                                    {"name": "qty", "type": "int", "default": 1}]})
AVRO_V2_BAD = json.dumps({"type": "record", "name": "Order", "namespace": "shop",
                          "fields": [{"name": "id", "type": "long"}, {"name": "item", "type": "string"},
                                     {"name": "price", "type": "double"}]})


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def http(method: str, url: str, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/vnd.schemaregistry.v1+json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def round_trip(bootstrap: str, topic: str, serializer, deserializer, values):
    p = Producer({"bootstrap.servers": bootstrap})
    for v in values:
        p.produce(topic, value=serializer(v, SerializationContext(topic, MessageField.VALUE)))
    assert p.flush(30) == 0
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": unique("g"), "auto.offset.reset": "earliest"})
    c.subscribe([topic])
    got = []
    deadline = time.monotonic() + 30
    while len(got) < len(values) and time.monotonic() < deadline:
        m = c.poll(0.5)
        if m is None or m.error():
            continue
        assert m.value()[0] == 0, "Confluent framing: magic byte 0"
        got.append(deserializer(m.value(), SerializationContext(topic, MessageField.VALUE)))
    c.close()
    return got


def test_register_lookup_and_fetch(schema_registry_url):
    sr = SchemaRegistryClient({"url": schema_registry_url})
    subject = unique("orders") + "-value"
    sid = sr.register_schema(subject, Schema(AVRO_V1, "AVRO"))
    assert sid > 0
    assert sr.register_schema(subject, Schema(AVRO_V1, "AVRO")) == sid, "re-registering is idempotent"
    other = unique("copy") + "-value"
    assert sr.register_schema(other, Schema(AVRO_V1, "AVRO")) == sid, "same schema, same id, any subject"
    found = sr.lookup_schema(subject, Schema(AVRO_V1, "AVRO"))
    assert (found.schema_id, found.version) == (sid, 1)
    assert json.loads(sr.get_schema(sid).schema_str) == json.loads(AVRO_V1)
    latest = sr.get_latest_version(subject)
    assert (latest.schema_id, latest.version, latest.subject) == (sid, 1, subject)
    assert subject in sr.get_subjects()
    assert sr.get_versions(subject) == [1]
    assert http("GET", f"{schema_registry_url}/schemas/types") == (200, ["JSON", "PROTOBUF", "AVRO"])
    status, body = http("GET", f"{schema_registry_url}/subjects/{unique('none')}/versions")
    assert (status, body["error_code"]) == (404, 40401)
    status, body = http("POST", f"{schema_registry_url}/subjects/{subject}/versions", {"schema": "{not avro"})
    assert (status, body["error_code"]) == (422, 42201)


def test_evolution_backward(schema_registry_url):
    sr = SchemaRegistryClient({"url": schema_registry_url})
    subject = unique("evolve") + "-value"
    sr.register_schema(subject, Schema(AVRO_V1, "AVRO"))
    assert sr.get_compatibility(subject_name=None) == "BACKWARD"
    assert sr.test_compatibility(subject, Schema(AVRO_V2_OK, "AVRO"))
    assert not sr.test_compatibility(subject, Schema(AVRO_V2_BAD, "AVRO"))
    v2 = sr.register_schema(subject, Schema(AVRO_V2_OK, "AVRO"))
    with pytest.raises(SchemaRegistryError) as e:
        sr.register_schema(subject, Schema(AVRO_V2_BAD, "AVRO"))
    assert e.value.http_status_code == 409
    assert sr.get_versions(subject) == [1, 2]
    sr.set_compatibility(subject, "NONE")
    assert sr.get_compatibility(subject) == "NONE"
    assert sr.register_schema(subject, Schema(AVRO_V2_BAD, "AVRO")) > v2
    # Soft delete, then permanent delete of one version.
    assert sr.delete_version(subject, 3) == 3
    assert sr.get_versions(subject) == [1, 2]
    status, body = http("DELETE", f"{schema_registry_url}/subjects/{subject}/versions/2?permanent=true")
    assert (status, body["error_code"]) == (404, 40407)
    assert sr.delete_version(subject, 3, permanent=True) == 3


def test_avro_records_round_trip(schema_registry_url, registry_platform):
    sr = SchemaRegistryClient({"url": schema_registry_url})
    topic = unique("avro")
    ser = AvroSerializer(sr, AVRO_V1)
    de = AvroDeserializer(sr)
    values = [{"id": i, "item": f"thing-{i}"} for i in range(5)]
    assert round_trip(registry_platform.bootstrap, topic, ser, de, values) == values
    assert sr.get_versions(f"{topic}-value") == [1]


def test_json_records_round_trip(schema_registry_url, registry_platform):
    sr = SchemaRegistryClient({"url": schema_registry_url})
    topic = unique("json")
    schema = json.dumps({"$schema": "http://json-schema.org/draft-07/schema#", "title": "Point", "type": "object",
                         "properties": {"x": {"type": "integer"}, "y": {"type": "integer"}},
                         "required": ["x", "y"]})
    ser = JSONSerializer(schema, sr)
    de = JSONDeserializer(schema)
    values = [{"x": i, "y": -i} for i in range(5)]
    assert round_trip(registry_platform.bootstrap, topic, ser, de, values) == values
    assert sr.get_latest_version(f"{topic}-value").schema.schema_type == "JSON"


def _protobuf_message_class():
    """A message class built at run time (no protoc here): package shop, message Item {string name = 1; int32 n = 2;}."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
    fdp = descriptor_pb2.FileDescriptorProto(name=f"item_{uuid.uuid4().hex[:6]}.proto", package="shop",
                                             syntax="proto3")
    m = fdp.message_type.add(name="Item")
    m.field.add(name="name", number=1, type=descriptor_pb2.FieldDescriptorProto.TYPE_STRING,
                label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL)
    m.field.add(name="n", number=2, type=descriptor_pb2.FieldDescriptorProto.TYPE_INT32,
                label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL)
    pool = descriptor_pool.DescriptorPool()
    fd = pool.Add(fdp)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("shop.Item")) if fd else None


def test_protobuf_records_round_trip(schema_registry_url, registry_platform):
    from confluent_kafka.schema_registry.protobuf import ProtobufDeserializer, ProtobufSerializer
    sr = SchemaRegistryClient({"url": schema_registry_url})
    item = _protobuf_message_class()
    topic = unique("proto")
    ser = ProtobufSerializer(item, sr, {"use.deprecated.format": False})
    de = ProtobufDeserializer(item, {"use.deprecated.format": False})
    values = [item(name=f"n{i}", n=i) for i in range(3)]
    got = round_trip(registry_platform.bootstrap, topic, ser, de, values)
    assert [(g.name, g.n) for g in got] == [(v.name, v.n) for v in values]
    assert sr.get_latest_version(f"{topic}-value").schema.schema_type == "PROTOBUF"


def _protobuf_pair(tag: str, with_note: bool):
    """Two files built at run time: `money_<tag>.proto` (package shop, Money) and `order_<tag>.proto`
    importing it (Order {string id = 1; shop.Money total = 2; [string note = 3;]}). Returns the Order
    class; the serializer registers the imported file as a schema of its own and refers to it."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
    fdt = descriptor_pb2.FieldDescriptorProto
    money = descriptor_pb2.FileDescriptorProto(name=f"money_{tag}.proto", package="shop", syntax="proto3")
    money.message_type.add(name="Money").field.add(name="cents", number=1, type=fdt.TYPE_INT64,
                                                   label=fdt.LABEL_OPTIONAL)
    order = descriptor_pb2.FileDescriptorProto(name=f"order_{tag}.proto", package="shop", syntax="proto3",
                                               dependency=[money.name])
    m = order.message_type.add(name="Order")
    m.field.add(name="id", number=1, type=fdt.TYPE_STRING, label=fdt.LABEL_OPTIONAL)
    m.field.add(name="total", number=2, type=fdt.TYPE_MESSAGE, type_name=".shop.Money", label=fdt.LABEL_OPTIONAL)
    if with_note:
        m.field.add(name="note", number=3, type=fdt.TYPE_STRING, label=fdt.LABEL_OPTIONAL)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(money)
    pool.Add(order)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("shop.Order"))


def test_protobuf_serializer_with_an_import_and_a_backward_evolution(schema_registry_url, registry_platform):
    from confluent_kafka.schema_registry.protobuf import ProtobufDeserializer, ProtobufSerializer
    sr = SchemaRegistryClient({"url": schema_registry_url})
    tag = uuid.uuid4().hex[:6]
    topic = unique("proto-ref")
    subject = f"{topic}-value"
    sr.set_compatibility(subject_name=subject, level="BACKWARD")
    conf = {"use.deprecated.format": False}
    v1, v2 = _protobuf_pair(tag, with_note=False), _protobuf_pair(tag, with_note=True)
    first = [v1(id=f"o{i}", total={"cents": 100 * i}) for i in range(3)]
    assert [(g.id, g.total.cents) for g in round_trip(registry_platform.bootstrap, topic, ProtobufSerializer(v1, sr, conf),
                                                      ProtobufDeserializer(v1, conf), first)] == \
        [(v.id, v.total.cents) for v in first]
    # The imported file became a subject of its own (named after the file), referenced by the order's schema.
    latest = sr.get_latest_version(subject)
    assert [(r.name, r.subject, r.version) for r in latest.schema.references] == \
        [(f"money_{tag}.proto", f"money_{tag}.proto", 1)]
    # v2 adds a field: BACKWARD-compatible, so the serializer registers version 2; a v2 reader reads both.
    second = [v2(id="o9", total={"cents": 900}, note="gift")]
    ser2 = ProtobufSerializer(v2, sr, conf)
    p = Producer({"bootstrap.servers": registry_platform.bootstrap})
    for v in second:
        p.produce(topic, value=ser2(v, SerializationContext(topic, MessageField.VALUE)))
    assert p.flush(30) == 0
    assert sr.get_versions(subject) == [1, 2]
    de2 = ProtobufDeserializer(v2, conf)
    c = Consumer({"bootstrap.servers": registry_platform.bootstrap, "group.id": unique("g"),
                  "auto.offset.reset": "earliest"})
    c.subscribe([topic])
    got = []
    deadline = time.monotonic() + 30
    while len(got) < 4 and time.monotonic() < deadline:
        msg = c.poll(0.5)
        if msg is not None and not msg.error():
            got.append(de2(msg.value(), SerializationContext(topic, MessageField.VALUE)))
    c.close()
    assert [(g.id, g.total.cents, g.note) for g in got] == [("o0", 0, ""), ("o1", 100, ""), ("o2", 200, ""),
                                                            ("o9", 900, "gift")]
    # Changing a field's scalar kind (string to int64) is not BACKWARD-compatible.
    status, body = http("POST", f"{schema_registry_url}/compatibility/subjects/{subject}/versions/latest",
                        {"schemaType": "PROTOBUF",
                         "schema": 'syntax = "proto3";\npackage shop;\nmessage Order { int64 id = 1; }\n'})
    assert status == 200 and body["is_compatible"] is False, body


def test_protobuf_text_schema_with_a_reference(schema_registry_url):
    sr = SchemaRegistryClient({"url": schema_registry_url})
    base = unique("money")
    sr.register_schema(base, Schema('syntax = "proto3";\npackage shop;\nmessage Money { int64 cents = 1; }\n',
                                    "PROTOBUF"))
    refs = [SchemaReference("money.proto", base, 1)]
    text = ('syntax = "proto3";\npackage shop;\nimport "money.proto";\n'
            'message Invoice { string id = 1; shop.Money total = 2; }\n')
    subject = unique("invoice") + "-value"
    sid = sr.register_schema(subject, Schema(text, "PROTOBUF", refs))
    got = sr.get_schema(sid)
    assert got.schema_type == "PROTOBUF"
    assert [(r.name, r.subject, r.version) for r in got.references] == [("money.proto", base, 1)]
    status, ids = http("GET", f"{schema_registry_url}/subjects/{base}/versions/1/referencedby")
    assert (status, ids) == (200, [sid])
    status, body = http("DELETE", f"{schema_registry_url}/subjects/{base}/versions/1")
    assert (status, body["error_code"]) == (422, 42206), "a referenced version cannot be deleted"


def test_avro_reference(schema_registry_url):
    sr = SchemaRegistryClient({"url": schema_registry_url})
    addr_subject = unique("shop.Address")
    sr.register_schema(addr_subject, Schema(json.dumps(
        {"type": "record", "name": "Address", "namespace": "shop", "fields": [{"name": "city", "type": "string"}]}),
        "AVRO"))
    customer = json.dumps({"type": "record", "name": "Customer", "namespace": "shop",
                           "fields": [{"name": "name", "type": "string"}, {"name": "home", "type": "shop.Address"}]})
    sid = sr.register_schema(unique("customer"), Schema(customer, "AVRO",
                                                         [SchemaReference("shop.Address", addr_subject, 1)]))
    assert sr.get_schema(sid).references[0].subject == addr_subject


def test_restart_keeps_schemas_and_a_second_instance_forwards(broker_factory, tmp_path):
    b = broker_factory.start(schema_registry=True)
    url = b.registry_url
    sr = SchemaRegistryClient({"url": url})
    ids = {f"s{i}": sr.register_schema(f"s{i}", Schema(json.dumps({"type": "enum", "name": f"E{i}",
                                                                     "symbols": ["A", "B"]}), "AVRO"))
           for i in range(3)}
    sr.set_compatibility("s1", "FULL")
    data_dir = b.data_dir
    b.stop_cleanly()

    b2 = broker_factory.start(data_dir=data_dir, schema_registry=True)
    sr2 = SchemaRegistryClient({"url": b2.registry_url})
    for subject, sid in ids.items():
        assert sr2.get_latest_version(subject).schema_id == sid
    assert sr2.get_compatibility("s1") == "FULL"
    new_id = sr2.register_schema("s3", Schema('"string"', "AVRO"))
    assert new_id > max(ids.values()), "ids keep growing after a restart"

    # A second registry on the same cluster: same data; its writes go to the elected instance.
    port = conftest.free_port()
    log = open(tmp_path / "second-registry.log", "ab")
    proc = subprocess.Popen(conftest._DEATH_SIG + [str(broker_factory.bin_path), "schema-registry",
                                                   "--bootstrap-servers", b2.bootstrap,
                                                   "--listeners", f"http://127.0.0.1:{port}"],
                            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        second = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while not conftest.registry_ready(second) and time.monotonic() < deadline:
            assert proc.poll() is None, f"second registry exited: {(tmp_path / 'second-registry.log').read_text()}"
            time.sleep(0.2)
        sr3 = SchemaRegistryClient({"url": second})
        assert sr3.get_latest_version("s0").schema_id == ids["s0"]
        forwarded = sr3.register_schema(unique("via-second"), Schema('"bytes"', "AVRO"))
        assert forwarded > new_id
        assert sr2.get_schema(forwarded).schema_str == '"bytes"', "the write is visible on the writer"
        status, body = http("PUT", f"{second}/config", {"compatibility": "FORWARD"})
        assert (status, body) == (200, {"compatibility": "FORWARD"})
        assert http("GET", f"{b2.registry_url}/config")[1]["compatibilityLevel"] == "FORWARD"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
    b2.stop_cleanly()


def test_permanent_delete_keeps_the_largest_id_through_compaction(schema_registry_url, registry_platform):
    """A permanent delete tombstones the schema's record, which compaction then removes; the NOOP record
    written with it keeps the largest assigned id, so a restarted registry never hands that id out again."""
    sr = SchemaRegistryClient({"url": schema_registry_url})
    subject = unique("gone") + "-value"
    sid = sr.register_schema(subject, Schema(json.dumps({"type": "fixed", "name": "F", "size": 7}), "AVRO"))
    sr.delete_subject(subject)
    sr.delete_subject(subject, permanent=True)
    c = Consumer({"bootstrap.servers": registry_platform.bootstrap, "group.id": unique("g"),
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    _, end = c.get_watermark_offsets(TopicPartition("_schemas", 0), timeout=10)
    c.assign([TopicPartition("_schemas", 0, 0)])
    watermarks, offset = [], -1
    deadline = time.monotonic() + 20
    while offset < end - 1 and time.monotonic() < deadline:
        m = c.poll(0.5)
        if m is None or m.error():
            continue
        offset = m.offset()
        if json.loads(m.key()).get("keytype") == "NOOP" and m.value():
            watermarks.append(json.loads(m.value())["maxId"])
    c.close()
    assert watermarks and watermarks[-1] >= sid, watermarks
