"""Replication factors as Kafka sets them, seen through kafka-python's admin
client and confluent-kafka: on three nodes, `__consumer_offsets`
(offsets.topic.replication.factor, 3 by default) and the registry's
`_schemas` (kafkastore.topic.replication.factor, 3 by default) have three
replicas; a topic created with replication factor -1, and one created
automatically, take default.replication.factor; asking for more replicas
than there are brokers is INVALID_REPLICATION_FACTOR. On a cluster of one
live broker, both internal topics are created with one replica and the
logs say so.

Every wait is a deadline on an observed outcome."""

from __future__ import annotations

import uuid

import pytest
import requests
from confluent_kafka import Consumer, Producer
from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import InvalidReplicationFactorError

from conftest import HOST, Cluster, binary, wait_for
from kraft import Service


def describe(admin: KafkaAdminClient, name: str) -> list[int]:
    """The replica count of each partition of `name`, by DescribeTopics (Metadata), once
    the broker asked knows the topic."""
    def described():
        [topic] = admin.describe_topics([name])
        return topic if topic["error_code"] == 0 and topic["partitions"] else None

    topic = wait_for(f"{name} described", described)
    return [len(p["replica_nodes"]) for p in sorted(topic["partitions"], key=lambda p: p["partition_index"])]


def use_a_group(bootstrap: str) -> None:
    """Commits an offset, so that `__consumer_offsets` exists."""
    topic = f"touch-{uuid.uuid4().hex[:6]}"
    p = Producer({"bootstrap.servers": bootstrap})
    p.produce(topic, b"x")
    assert p.flush(60) == 0
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"g-{topic}", "auto.offset.reset": "earliest",
                  "enable.auto.commit": False})
    c.subscribe([topic])
    try:
        msg = wait_for("a record", lambda: (m := c.poll(1.0)) is not None and m.error() is None and m, deadline=120)
        wait_for("a commit", lambda: c.commit(message=msg, asynchronous=False) is not None, deadline=120)
    finally:
        c.close()


@pytest.fixture
def defaults_cluster(tmp_path):
    """Three nodes with the internal topics' replication factors left at Kafka's defaults."""
    binary()
    c = Cluster(tmp_path, {"offsets.topic.replication.factor": None, "default.replication.factor": "3"})
    registry = None
    try:
        c.start()
        registry = Service(c, "schema-registry", 1)
        registry.start()
        registry.wait_up("/subjects")
        yield c
    except BaseException:
        print(c.logs())
        raise
    finally:
        if registry is not None:
            registry.stop()
        c.stop()


def test_replication_factors_on_three_nodes(defaults_cluster):
    cluster = defaults_cluster
    use_a_group(cluster.bootstrap)
    admin = KafkaAdminClient(bootstrap_servers=cluster.bootstrap, request_timeout_ms=30000)
    try:
        assert set(describe(admin, "__consumer_offsets")) == {3}
        assert describe(admin, "_schemas") == [3]

        defaulted = f"defaulted-{uuid.uuid4().hex[:6]}"
        admin.create_topics([NewTopic(defaulted, 2, -1)], timeout_ms=30000)
        assert describe(admin, defaulted) == [3, 3]

        with pytest.raises(InvalidReplicationFactorError):
            admin.create_topics([NewTopic(f"four-{uuid.uuid4().hex[:6]}", 1, 4)], timeout_ms=30000)
    finally:
        admin.close()

    # A topic created by a producer's first Metadata takes default.replication.factor too.
    auto = f"auto-{uuid.uuid4().hex[:6]}"
    p = Producer({"bootstrap.servers": cluster.bootstrap})
    p.produce(auto, b"x")
    assert p.flush(60) == 0
    admin = KafkaAdminClient(bootstrap_servers=cluster.bootstrap, request_timeout_ms=30000)
    try:
        assert set(describe(admin, auto)) == {3}
    finally:
        admin.close()


@pytest.fixture
def lone_broker(tmp_path):
    """A cluster whose only voter and broker is node 1."""
    binary()
    c = Cluster(tmp_path, {"offsets.topic.replication.factor": None})
    node = c.nodes[1]
    c.voters = f"1@{HOST}:{node.controller_port}"
    registry = None
    try:
        node.write_config()
        node.start()
        c.wait_brokers({1}, via=[1])
        registry = Service(c, "schema-registry", 1)
        registry.start()
        registry.wait_up("/subjects")
        yield c, registry
    except BaseException:
        print(c.logs())
        raise
    finally:
        if registry is not None:
            registry.stop()
        c.stop()


def test_internal_topics_are_capped_by_the_live_brokers(lone_broker):
    cluster, registry = lone_broker
    bootstrap = cluster.nodes[1].bootstrap
    use_a_group(bootstrap)
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=30000)
    try:
        assert set(describe(admin, "__consumer_offsets")) == {1}
        assert describe(admin, "_schemas") == [1]
        with pytest.raises(InvalidReplicationFactorError):
            admin.create_topics([NewTopic(f"three-{uuid.uuid4().hex[:6]}", 1, 3)], timeout_ms=30000)
    finally:
        admin.close()
    # The registry still works, and both logs say why the topics have one replica.
    r = requests.post(f"{registry.url}/subjects/s-value/versions", json={"schema": '"string"'}, timeout=30)
    assert r.status_code == 200, r.text
    assert "fewer replicas than offsets.topic.replication.factor" in cluster.nodes[1].log.read_text()
    assert "less than kafkastore.topic.replication.factor=3" in registry.log.read_text()
