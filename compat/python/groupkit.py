"""Small helpers shared by the group, consumer-protocol, compaction and CLI
tests: unique names, topic creation and a numbered acks=all producer."""

from __future__ import annotations

import uuid

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

TIMEOUT_S = 60


def unique(prefix: str) -> str:
    """A topic or group name no other test uses."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def create_topic(bootstrap: str, name: str, partitions: int) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(name, partitions, 1)])[name].result(TIMEOUT_S)


def produce(bootstrap: str, topic: str, n: int, start: int = 0) -> None:
    """Records with key `i` and value `v<i>` for i in [start, start + n), acks=all, idempotent."""
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True, "linger.ms": 5})
    for i in range(start, start + n):
        p.produce(topic, key=str(i).encode(), value=f"v{i}".encode())
        if i % 1000 == 0:
            p.poll(0)
    assert p.flush(TIMEOUT_S) == 0
