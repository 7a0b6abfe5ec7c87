"""The Schema Registry and the REST Proxy on every node of a three-node
cluster, through confluent-kafka's registry client and serializers and
`requests`: each node has a `tributary schema-registry` and a
`tributary rest-proxy` next to it (bootstrapped with its own broker first),
`_schemas` has three replicas, and killing (kill -9) the broker that leads
`_schemas` together with its services leaves the other two registering,
reading, producing and consuming. Broker-side schema validation on a broker
that holds no replica of `_schemas` follows it from its leader.

Every wait is a deadline on an observed outcome."""

from __future__ import annotations

import json
import signal
import uuid
import warnings

import pytest
import requests
from confluent_kafka import Producer
from confluent_kafka.admin import NewTopic

from conftest import Cluster, binary, wait_for
from kraft import Service

warnings.filterwarnings("ignore", category=DeprecationWarning)
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient  # noqa: E402
from confluent_kafka.schema_registry.avro import AvroSerializer  # noqa: E402
from confluent_kafka.serialization import MessageField, SerializationContext  # noqa: E402


def avro(name: str, fields: list[str]) -> str:
    """A record schema; fields after the first have defaults (so later versions stay compatible)."""
    return json.dumps({"type": "record", "name": name, "namespace": "tests",
                       "fields": [{"name": f, "type": "string", **({"default": ""} if i else {})}
                                  for i, f in enumerate(fields)]})


@pytest.fixture
def platform(tmp_path):
    """Three nodes, a registry and a REST proxy next to each."""
    binary()
    c = Cluster(tmp_path, {"offsets.topic.replication.factor": "3"})
    services: list[Service] = []
    try:
        c.start()
        registries = {i: Service(c, "schema-registry", i) for i in (1, 2, 3)}
        proxies = {i: Service(c, "rest-proxy", i) for i in (1, 2, 3)}
        services = [*registries.values(), *proxies.values()]
        for s in services:
            s.start()
        for s in registries.values():
            s.wait_up("/subjects")
        for s in proxies.values():
            s.wait_up("/v3/clusters")
        yield c, registries, proxies
    except BaseException:
        print(c.logs())
        for s in services:
            if s.log.exists():
                print(f"--- {s.kind} {s.node_id} ---\n{s.log.read_text(errors='replace')[-3000:]}")
        raise
    finally:
        for s in services:
            s.stop()
        c.stop()


def schemas_partition(cluster: Cluster, via: list[int]):
    for node_id in via:
        try:
            topic = cluster.nodes[node_id].metadata().topics.get("_schemas")
        except Exception:  # noqa: BLE001 - ask the next node
            continue
        if topic is not None and 0 in topic.partitions:
            return topic.partitions[0]
    return None


def register(url: str, subject: str, schema: str) -> int:
    """Registers through the registry at `url`, retrying while its writer is being elected."""
    client = SchemaRegistryClient({"url": url})

    def once():
        return client.register_schema(subject, Schema(schema, "AVRO"))

    return wait_for(f"registering {subject} at {url}", once, deadline=120, every=0.5)


def read_back(url: str, schema_id: int, subject: str) -> None:
    """The registry at `url` knows `schema_id` and lists it under `subject`."""
    client = SchemaRegistryClient({"url": url})

    def known():
        client.get_schema(schema_id)
        latest = client.get_latest_version(subject)
        return latest.schema_id == schema_id

    wait_for(f"schema {schema_id} at {url}", known, deadline=60, every=0.3)


def test_registry_on_every_node_survives_the_loss_of_the_schemas_leader(platform):
    cluster, registries, _ = platform
    subject = f"orders-{uuid.uuid4().hex[:6]}-value"
    first = register(registries[1].url, subject, avro("Order", ["id"]))
    for i in (2, 3):
        read_back(registries[i].url, first, subject)

    meta = wait_for("_schemas with a leader", lambda: schemas_partition(cluster, [1, 2, 3]))
    assert len(meta.replicas) == 3, meta.replicas
    dead = meta.leader
    cluster.nodes[dead].kill(signal.SIGKILL)
    registries[dead].kill(signal.SIGKILL)
    alive = [i for i in (1, 2, 3) if i != dead]
    wait_for("a new _schemas leader", lambda: (p := schemas_partition(cluster, alive)) is not None
             and p.leader in alive, deadline=90)

    # Registering a new version works on either survivor; both read everything.
    second = register(registries[alive[0]].url, subject, avro("Order", ["id", "note"]))
    assert second != first
    for i in alive:
        read_back(registries[i].url, second, subject)
        client = SchemaRegistryClient({"url": registries[i].url})
        assert json.loads(client.get_schema(first).schema_str) == json.loads(avro("Order", ["id"]))
        assert client.get_versions(subject) == [1, 2]
    other = f"other-{uuid.uuid4().hex[:6]}-value"
    third = register(registries[alive[1]].url, other, avro("Other", ["x"]))
    read_back(registries[alive[0]].url, third, other)


def cluster_id(proxy: str) -> str:
    return requests.get(f"{proxy}/v3/clusters", timeout=30).json()["data"][0]["cluster_id"]


def test_rest_proxy_produces_and_consumes_on_a_survivor(platform):
    cluster, _, proxies = platform
    topic = f"rest-{uuid.uuid4().hex[:6]}"
    cluster.nodes[1].admin().create_topics([NewTopic(topic, 1, 3)])[topic].result(timeout=60)
    victim = wait_for(f"{topic} led", lambda: (t := cluster.nodes[1].metadata().topics.get(topic)) is not None
                      and t.partitions[0].leader > 0 and t.partitions[0].leader)
    survivor = proxies[next(i for i in (1, 2, 3) if i != victim)].url
    cid = cluster_id(survivor)

    def produce(i: int):
        r = requests.post(f"{survivor}/v3/clusters/{cid}/topics/{topic}/records",
                          json={"value": {"type": "JSON", "data": {"n": i}}}, timeout=60)
        return r.status_code == 200 and r.json().get("error_code") == 200 and r.json()

    # A v2 consumer on the survivor, reading before and after the topic's leader is killed.
    group = f"g-{uuid.uuid4().hex[:6]}"
    headers = {"Content-Type": "application/vnd.kafka.v2+json"}
    r = requests.post(f"{survivor}/consumers/{group}", headers=headers, timeout=60,
                      json={"name": "c1", "format": "json", "auto.offset.reset": "earliest"})
    assert r.status_code == 200, r.text
    base = r.json()["base_uri"]
    r = requests.post(f"{base}/subscription", headers=headers, json={"topics": [topic]}, timeout=60)
    assert r.status_code == 204, r.text
    got: list[dict] = []

    def fetch(count: int):
        def more():
            r = requests.get(f"{base}/records", headers={"Accept": "application/vnd.kafka.json.v2+json"},
                             timeout=60)
            if r.status_code == 200:
                got.extend(rec["value"] for rec in r.json())
            return len(got) >= count
        return more

    try:
        offsets = [wait_for(f"record {i} produced", lambda i=i: produce(i), deadline=120)["offset"] for i in range(5)]
        assert offsets == list(range(5))
        wait_for("the first records through the v2 consumer", fetch(5), deadline=120, every=0.3)
        # Committed (everything fetched), so a rebalance after the kill resumes after them.
        r = requests.post(f"{base}/offsets", headers=headers, timeout=60)
        assert r.status_code == 200, r.text

        cluster.nodes[victim].kill(signal.SIGKILL)
        proxies[victim].kill(signal.SIGKILL)
        offsets = [wait_for(f"record {i} produced", lambda i=i: produce(i), deadline=120)["offset"]
                   for i in range(5, 10)]
        assert offsets == list(range(5, 10))
        wait_for("the records after the kill through the same consumer", fetch(10), deadline=120, every=0.3)
        assert got == [{"n": i} for i in range(10)]
    finally:
        requests.delete(base, headers=headers, timeout=60)


@pytest.fixture
def single_replica_schemas(tmp_path):
    """Three nodes and one registry whose `_schemas` has a single replica."""
    binary()
    c = Cluster(tmp_path, {"offsets.topic.replication.factor": "3"})
    registry = None
    try:
        c.start()
        registry = Service(c, "schema-registry", 1, ["--override", "kafkastore.topic.replication.factor=1"])
        registry.start()
        registry.wait_up("/subjects")
        yield c, registry
    except BaseException:
        print(c.logs())
        if registry is not None and registry.log.exists():
            print(registry.log.read_text(errors="replace")[-3000:])
        raise
    finally:
        if registry is not None:
            registry.stop()
        c.stop()


def test_validation_on_a_broker_without_a_replica_of_schemas(single_replica_schemas):
    cluster, registry = single_replica_schemas
    meta = wait_for("_schemas", lambda: schemas_partition(cluster, [1, 2, 3]))
    assert len(meta.replicas) == 1
    holder = meta.replicas[0]
    other = next(i for i in (1, 2, 3) if i != holder)
    topic = f"validated-{uuid.uuid4().hex[:6]}"
    config = {"confluent.value.schema.validation": "true"}
    admin = cluster.nodes[1].admin()
    admin.create_topics([NewTopic(topic, 1, replica_assignment=[[other]], config=config)])[topic].result(timeout=60)

    client = SchemaRegistryClient({"url": registry.url})
    schema = avro("Payment", ["id"])
    serializer = AvroSerializer(client, schema)
    value = serializer({"id": "p-1"}, SerializationContext(topic, MessageField.VALUE))
    errors: list = []
    producer = Producer({"bootstrap.servers": cluster.nodes[other].bootstrap, "acks": "all"})
    producer.produce(topic, value=value, on_delivery=lambda err, msg: errors.append(err))
    assert producer.flush(60) == 0
    assert errors == [None], [e.str() if e else None for e in errors]

    # An id never registered is refused there.
    bogus = b"\x00" + (2**31 - 7).to_bytes(4, "big") + value[5:]
    errors.clear()
    producer.produce(topic, value=bogus, on_delivery=lambda err, msg: errors.append(err))
    assert producer.flush(60) == 0
    assert errors and errors[0] is not None and errors[0].name() == "INVALID_RECORD", errors
