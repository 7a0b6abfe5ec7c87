"""Broker-side schema validation seen through confluent-kafka (librdkafka).

A topic with ``confluent.value.schema.validation=true`` (or the key variant)
accepts a record only if its value (key) is null or starts with magic byte 0
and a 4-byte schema id registered under the subject the topic's
``confluent.value.subject.name.strategy`` names. The broker learns the
registered ids by reading the registry's storage topic (``_schemas``).

librdkafka reports a rejected record as INVALID_RECORD with its own text
("Broker failed to validate record"); the broker's explanation
(``error_message`` and per-record ``record_errors``, Produce v8+) is read
with a raw Produce v8 request.

Most tests use ``SchemasTopic`` to stand in for a Schema Registry: it writes
registrations to ``_schemas`` in the registry's own record format with a
plain Producer, and its ``register`` returns the schema id the way a registry
client does. The last tests run against Tributary's own registry with
confluent-kafka's registry client and serializers.
"""

from __future__ import annotations

import json
import random
import threading
import time
import warnings

import pytest
from confluent_kafka import KafkaError, Producer
from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource, ResourceType

warnings.filterwarnings("ignore", category=DeprecationWarning)

from confluent_kafka.schema_registry import (Schema, SchemaRegistryClient,  # noqa: E402
                                             record_subject_name_strategy)
from confluent_kafka.schema_registry.avro import AvroSerializer  # noqa: E402
from confluent_kafka.schema_registry.json_schema import JSONSerializer  # noqa: E402
from confluent_kafka.serialization import MessageField, SerializationContext  # noqa: E402

import ck  # noqa: E402
import kwire  # noqa: E402
from ck import ADMIN_TIMEOUT_S, create_topic  # noqa: E402
from payloads import unique_topic  # noqa: E402

STORAGE_TOPIC = "_schemas"
TIMEOUT_S = 30.0
STRATEGY_DEFAULT = "io.confluent.kafka.serializers.subject.TopicNameStrategy"

ORDER_AVRO = json.dumps({
    "type": "record", "name": "Order", "namespace": "shop.v1",
    "fields": [{"name": "id", "type": "long"}],
})


class SchemasTopic:
    """Writes schema registrations to the registry's storage topic, in the
    registry's record format (JSON key, JSON value; a null value is a hard
    delete). Ids are random and high so tests sharing a broker never collide."""

    def __init__(self, bootstrap: str, topic: str = STORAGE_TOPIC):
        self.topic = topic
        self.producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 0})
        self.versions: dict[str, int] = {}

    def _write(self, key: dict, value: dict | None) -> None:
        errors = []
        self.producer.produce(self.topic, key=json.dumps(key).encode(),
                              value=None if value is None else json.dumps(value).encode(),
                              on_delivery=lambda err, _msg: errors.append(err) if err else None)
        assert self.producer.flush(TIMEOUT_S) == 0, "schema record not acknowledged"
        assert not errors, errors

    def register(self, subject: str, schema: str, schema_type: str = "AVRO") -> int:
        """Registers `schema` as the next version of `subject`; returns its id."""
        version = self.versions.get(subject, 0) + 1
        self.versions[subject] = version
        schema_id = random.randrange(1_000_000, 2**31 - 1)
        value = {"subject": subject, "version": version, "id": schema_id, "schema": schema,
                 "deleted": False}
        if schema_type != "AVRO":
            value["schemaType"] = schema_type
        self._write({"keytype": "SCHEMA", "subject": subject, "version": version, "magic": 1}, value)
        return schema_id

    def delete_subject(self, subject: str) -> None:
        """Soft-deletes every version of `subject`."""
        self._write({"keytype": "DELETE_SUBJECT", "subject": subject, "magic": 0},
                    {"subject": subject, "version": self.versions[subject]})


def framed(schema_id: int, payload: bytes) -> bytes:
    """What a Schema Registry serializer writes: magic 0, the id (big-endian), the payload."""
    return b"\x00" + schema_id.to_bytes(4, "big") + payload


def produce(bootstrap: str, topic: str, records: list[tuple[bytes | None, bytes | None]],
            one_batch: bool = False, **conf) -> list:
    """Produces records, each in its own batch unless `one_batch`; returns
    each one's delivery error (None when accepted)."""
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all",
                  "linger.ms": 100 if one_batch else 0, **conf})
    results: list = [None] * len(records)
    if one_batch:
        # With metadata and the connection in place first, linger.ms gathers every record.
        p.list_topics(topic, timeout=TIMEOUT_S)
    for i, (k, v) in enumerate(records):
        p.produce(topic, key=k, value=v,
                  on_delivery=lambda err, _msg, i=i: results.__setitem__(i, err))
        if not one_batch:
            assert p.flush(TIMEOUT_S) == 0, "the record got a delivery report"
    assert p.flush(TIMEOUT_S) == 0, "every record got a delivery report"
    return results


def assert_rejected(err) -> None:
    assert err is not None, "the record was accepted"
    assert err.code() == KafkaError.INVALID_RECORD, f"{err.name()}: {err.str()}"


def produce_v8(bootstrap: str, topic: str, values: list[bytes | None]) -> tuple[int, str | None, dict]:
    """One batch of `values` as a raw Produce v8 request; returns the
    partition's error code, error_message and record_errors {index: message}.
    (The v8 request is v7's; the response adds record_errors and error_message.)"""

    def partition(r: kwire.Reader):
        r.i32()  # index
        code = r.i16()
        r.i64(), r.i64(), r.i64()  # base_offset, log_append_time, log_start_offset
        record_errors = r.array(lambda e: (e.i32(), e.string())) or []
        return code, r.string(), dict(record_errors)

    host, port = kwire.parse_hostport(bootstrap)
    batch = kwire.record_batch([kwire.Record(key=None, value=v) for v in values])
    with kwire.Connection(host, port, timeout=TIMEOUT_S) as c:
        cid = c.send_request(kwire.PRODUCE, 8, kwire.produce_v7_body(topic, 0, batch))
        r = c.recv_response(cid)
        topics = r.array(lambda t: (t.string(), t.array(partition)))
    [(_name, [result])] = topics
    return result


@pytest.fixture(scope="module")
def registry(bootstrap):
    return SchemasTopic(bootstrap)


@pytest.fixture
def adm(bootstrap):
    return ck.admin(bootstrap)


def validated_topic(adm, prefix: str, **config: str) -> str:
    name = unique_topic(prefix)
    create_topic(adm, name, config={"confluent.value.schema.validation": "true", **config})
    return name


def test_registered_id_is_accepted_and_plain_json_rejected(bootstrap, adm, registry):
    topic = validated_topic(adm, "sv-basic")
    schema_id = registry.register(f"{topic}-value", ORDER_AVRO)
    # Produced right after the registration: the broker must already know the id.
    ok, plain, unknown, tombstone = produce(bootstrap, topic, [
        (b"k1", framed(schema_id, b"\x02")),
        (b"k2", b'{"id": 1}'),
        (b"k3", framed(schema_id + 1, b"\x02")),
        (b"k4", None),
    ])
    assert ok is None and tombstone is None
    assert_rejected(plain)
    assert_rejected(unknown)


def test_messages_name_the_record_and_the_remedy(bootstrap, adm, registry):
    topic = validated_topic(adm, "sv-messages")
    schema_id = registry.register(f"{topic}-value", ORDER_AVRO)
    code, message, record_errors = produce_v8(bootstrap, topic, [b'{"id": 1}'])
    assert code == KafkaError.INVALID_RECORD
    assert message.startswith("Record 0 of the batch has no schema id in its value"), message
    for part in ["produce with a Schema Registry serializer",
                 f"turn off confluent.value.schema.validation on topic {topic}"]:
        assert part in message, message
    assert list(record_errors) == [0]
    code, message, record_errors = produce_v8(bootstrap, topic, [
        framed(schema_id, b""), None, framed(schema_id + 1, b""), b"x"])
    assert code == KafkaError.INVALID_RECORD
    assert message.startswith("2 records of the batch failed schema validation"), message
    assert f"register the schema under subject {topic}-value" in message, message
    assert sorted(record_errors) == [2, 3]
    assert f"schema id {schema_id + 1}" in record_errors[2], record_errors
    assert "has no schema id" in record_errors[3], record_errors
    assert produce_v8(bootstrap, topic, [framed(schema_id, b""), None]) == (0, None, {})


def test_compressed_batches_are_checked(bootstrap, adm, registry):
    topic = validated_topic(adm, "sv-lz4")
    schema_id = registry.register(f"{topic}-value", ORDER_AVRO)
    good = [(str(i).encode(), framed(schema_id, b"x" * 100)) for i in range(200)]
    assert produce(bootstrap, topic, good, one_batch=True, **{"compression.type": "lz4"}) == [None] * 200
    # One bad record rejects its whole batch.
    bad = good[:50] + [(b"bad", b"plain text")] + good[50:100]
    results = produce(bootstrap, topic, bad, one_batch=True, **{"compression.type": "zstd"})
    assert_rejected(results[50])
    # librdkafka may still send the first record or two on their own; the
    # good records batched with the bad one share its fate.
    rejected_good = [i for i, r in enumerate(results) if r is not None and i != 50]
    assert len(rejected_good) >= 90, f"only {len(rejected_good)} good records shared the batch's rejection"
    assert all(results[i].code() == KafkaError.INVALID_RECORD for i in rejected_good)


def test_turning_validation_off_with_alter_configs_lets_plain_json_through(bootstrap, adm):
    topic = validated_topic(adm, "sv-off")
    [err] = produce(bootstrap, topic, [(None, b'{"id": 1}')])
    assert_rejected(err)
    res = ConfigResource(ResourceType.TOPIC, topic, set_config={"confluent.value.schema.validation": "false"})
    assert adm.alter_configs([res])[res].result(timeout=ADMIN_TIMEOUT_S) is None
    assert produce(bootstrap, topic, [(None, b'{"id": 1}')]) == [None]


def test_turning_validation_on_with_incremental_alter_configs(bootstrap, adm, registry):
    topic = unique_topic("sv-on")
    create_topic(adm, topic)
    assert produce(bootstrap, topic, [(None, b"anything")]) == [None]
    res = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=[
        ConfigEntry("confluent.key.schema.validation", "true", incremental_operation=AlterConfigOpType.SET)])
    assert adm.incremental_alter_configs([res])[res].result(timeout=ADMIN_TIMEOUT_S) is None
    key_id = registry.register(f"{topic}-key", json.dumps("string"))
    # Keys are checked against <topic>-key; values and null keys pass.
    ok, null_key, bad_key = produce(bootstrap, topic, [
        (framed(key_id, b"k"), b"anything"), (None, b"anything"), (b"plain-key", b"anything")])
    assert ok is None and null_key is None
    assert_rejected(bad_key)


def test_configs_show_in_describe_configs(adm):
    topic = validated_topic(adm, "sv-describe",
                            **{"confluent.value.subject.name.strategy": "RecordNameStrategy"})
    configs = ck.describe_topic_configs(adm, topic)
    assert configs["confluent.value.schema.validation"].value == "true"
    assert configs["confluent.value.subject.name.strategy"].value == "RecordNameStrategy"
    assert configs["confluent.key.schema.validation"].value == "false"
    assert configs["confluent.key.subject.name.strategy"].value == STRATEGY_DEFAULT
    # A strategy that does not exist is refused.
    res = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=[
        ConfigEntry("confluent.value.subject.name.strategy", "NoSuchStrategy",
                    incremental_operation=AlterConfigOpType.SET)])
    ck.assert_error(adm.incremental_alter_configs([res])[res], KafkaError.INVALID_CONFIG, "bad strategy")


def test_record_name_strategy_and_deleted_subjects(bootstrap, adm, registry):
    topic = validated_topic(adm, "sv-record",
                            **{"confluent.value.subject.name.strategy": "RecordNameStrategy"})
    # A unique record name, so the subject is this test's own.
    name = f"Order{random.randrange(10**9)}"
    schema = json.dumps({"type": "record", "name": name, "namespace": "shop.v1", "fields": []})
    schema_id = registry.register(f"shop.v1.{name}", schema)
    wrong_subject_id = registry.register(f"{topic}-value", schema)
    ok, wrong = produce(bootstrap, topic, [(None, framed(schema_id, b"")), (None, framed(wrong_subject_id, b""))])
    assert ok is None
    assert_rejected(wrong)
    _, message, _ = produce_v8(bootstrap, topic, [framed(wrong_subject_id, b"")])
    assert f"not registered under subject shop.v1.{name} (RecordNameStrategy)" in message, message
    # After the subject is deleted its ids no longer pass.
    registry.delete_subject(f"shop.v1.{name}")
    [deleted] = produce(bootstrap, topic, [(None, framed(schema_id, b""))])
    assert_rejected(deleted)


# --------------------------------------------------------------------------
# With Tributary's own Schema Registry and confluent-kafka's serializers
# --------------------------------------------------------------------------


def eventually_rejected(bootstrap: str, topic: str, value: bytes, timeout: float = 10.0) -> None:
    """A deletion reaches the broker's index shortly after the registry answers."""
    deadline = time.monotonic() + timeout
    while True:
        [err] = produce(bootstrap, topic, [(None, value)])
        if err is not None:
            assert_rejected(err)
            return
        assert time.monotonic() < deadline, "still accepted after the subject was deleted"
        time.sleep(0.1)


def test_avro_serializer_with_the_registry(registry_platform, schema_registry_url):
    bootstrap = registry_platform.bootstrap
    adm = ck.admin(bootstrap)
    topic = validated_topic(adm, "sv-e2e-avro")
    sr = SchemaRegistryClient({"url": schema_registry_url})
    serialize = AvroSerializer(sr, ORDER_AVRO)
    # The serializer registers the schema, then the record goes straight to the broker.
    value = serialize({"id": 1}, SerializationContext(topic, MessageField.VALUE))
    assert produce(bootstrap, topic, [(None, value)]) == [None]
    [plain] = produce(bootstrap, topic, [(None, b'{"id": 1}')])
    assert_rejected(plain)
    code, message, _ = produce_v8(bootstrap, topic, [b'{"id": 1}'])
    assert code == KafkaError.INVALID_RECORD and "has no schema id" in message, message
    sr.delete_subject(f"{topic}-value")
    eventually_rejected(bootstrap, topic, value)


def test_every_id_the_registry_returns_is_accepted_at_once(registry_platform, schema_registry_url):
    """Many rounds of: an AvroSerializer with a client of its own registers a
    new version of the subject, and the record goes straight to the broker.
    Each id the registry returned must be accepted the first time; an id it
    never returned is still refused. Several writers run at once, each with
    its own topic, so registrations land in the storage topic while others
    are being checked."""
    bootstrap = registry_platform.bootstrap
    adm = ck.admin(bootstrap)
    writers, rounds = 3, 25
    topics = [validated_topic(adm, f"sv-rounds-{w}") for w in range(writers)]
    refused: list = []
    failures: list = []

    def writer(topic: str) -> None:
        try:
            producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 0})
            ctx = SerializationContext(topic, MessageField.VALUE)
            for n in range(rounds):
                # Each round adds an optional field: a new, backward compatible version.
                fields = [{"name": "id", "type": "long"}] + [
                    {"name": f"f{i}", "type": ["null", "long"], "default": None} for i in range(n)]
                schema = json.dumps({"type": "record", "name": "Order", "namespace": "shop.rounds",
                                     "fields": fields})
                serialize = AvroSerializer(SchemaRegistryClient({"url": schema_registry_url}), schema)
                value = serialize({"id": n}, ctx)
                errors: list = []
                producer.produce(topic, value=value, on_delivery=lambda err, _msg: errors.append(err))
                assert producer.flush(TIMEOUT_S) == 0, "the record got a delivery report"
                if errors != [None]:
                    schema_id = int.from_bytes(value[1:5], "big")
                    refused.append((topic, n, schema_id, [e and e.str() for e in errors]))
        except Exception as e:  # noqa: BLE001 - reported by the main thread
            failures.append(repr(e))

    threads = [threading.Thread(target=writer, args=(t,)) for t in topics]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures, failures
    assert not refused, f"ids the registry had just returned were refused: {refused}"

    latest = SchemaRegistryClient({"url": schema_registry_url}).get_latest_version(f"{topics[0]}-value")
    never_returned = latest.schema_id + 1_000_000
    [err] = produce(bootstrap, topics[0], [(None, framed(never_returned, b""))])
    assert_rejected(err)


def test_record_name_strategy_with_the_registry(registry_platform, schema_registry_url):
    bootstrap = registry_platform.bootstrap
    adm = ck.admin(bootstrap)
    topic = validated_topic(adm, "sv-e2e-record",
                            **{"confluent.value.subject.name.strategy": "RecordNameStrategy"})
    sr = SchemaRegistryClient({"url": schema_registry_url})
    suffix = random.randrange(10**9)
    ctx = SerializationContext(topic, MessageField.VALUE)

    # JSON Schema: the record name is the title.
    schema = json.dumps({"title": f"Thing{suffix}", "type": "object",
                         "properties": {"n": {"type": "integer"}}})
    by_record = JSONSerializer(schema, sr, conf={"subject.name.strategy": record_subject_name_strategy})
    by_topic = JSONSerializer(schema, sr)
    assert produce(bootstrap, topic, [(None, by_record({"n": 1}, ctx))]) == [None]
    # The same schema under <topic>-value has the same id, so it passes too;
    # a schema registered only under a subject other than its title does not.
    assert produce(bootstrap, topic, [(None, by_topic({"n": 2}, ctx))]) == [None]
    other = json.dumps({"title": f"Other{suffix}", "type": "object"})
    other_id = sr.register_schema(f"elsewhere-{suffix}", Schema(other, "JSON"))
    [wrong] = produce(bootstrap, topic, [(None, framed(other_id, b"{}"))])
    assert_rejected(wrong)

    # Protobuf text: package + first message, as the registry stores it.
    proto = (f'syntax = "proto3";\npackage shop.v{suffix};\n\n'
             "// a comment with message Fake {\nmessage Item {\n  string name = 1;\n}\n")
    proto_id = sr.register_schema(f"shop.v{suffix}.Item", Schema(proto, "PROTOBUF"))
    assert produce(bootstrap, topic, [(None, framed(proto_id, b"\x00\x0a\x01x"))]) == [None]
