"""Offset commits honour min.insync.replicas, as Kafka's group coordinator's
acks=all append does: on three nodes with __consumer_offsets at replication
factor 3 and min.insync.replicas=3, once a broker holding the group's
partition is killed and has left the in-sync replicas, an OffsetCommit (sent
with kafka-python's own request classes to the coordinator) is answered
COORDINATOR_NOT_AVAILABLE, which Kafka's clients retry; confluent-kafka's
synchronous commit fails with it too. Once the broker is back in sync, confluent-kafka commits and
reads the offset back.

Every wait is a deadline on an observed outcome."""

from __future__ import annotations

import signal

import kafka.errors as Errors
import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import NewTopic
from kafka import KafkaAdminClient
from kafka.protocol.consumer import OffsetCommitRequest

from conftest import started_cluster, wait_for

OFFSETS = "__consumer_offsets"
GROUP = "min-insync-group"
TOPIC = "min-insync-topic"
OFFSETS_PARTITIONS = 6


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    yield from started_cluster(tmp_path_factory.mktemp("min-insync"),
                               {"offsets.topic.replication.factor": "3", "min.insync.replicas": "3",
                                "replica.lag.time.max.ms": "3000"})


def java_hash(s: str) -> int:
    """Java's String.hashCode, which Kafka's offsets partition of a group is taken from."""
    h = 0
    for ch in s:
        h = (31 * h + ord(ch)) & 0xFFFFFFFF
    return h - (1 << 32) if h >= 1 << 31 else h


def offsets_partition(cluster, node_id: int):
    p = abs(java_hash(GROUP)) % OFFSETS_PARTITIONS
    return p, cluster.nodes[node_id].metadata().topics[OFFSETS].partitions[p]


def consumer(cluster) -> Consumer:
    return Consumer({"bootstrap.servers": cluster.bootstrap, "group.id": GROUP, "enable.auto.commit": False})


def commit(c: Consumer, offset: int) -> None:
    c.commit(offsets=[TopicPartition(TOPIC, 0, offset)], asynchronous=False)


def committed(c: Consumer) -> int:
    (tp,) = c.committed([TopicPartition(TOPIC, 0)], timeout=30)
    return tp.offset


def raw_commit(cluster, coordinator: int, offset: int) -> int:
    """One OffsetCommit to the coordinator, as kafka-python encodes it; its partition's error code."""
    admin = KafkaAdminClient(bootstrap_servers=cluster.bootstrap)
    try:
        _Topic = OffsetCommitRequest.OffsetCommitRequestTopic
        request = OffsetCommitRequest(group_id=GROUP, generation_id_or_member_epoch=-1, member_id="",
                                      group_instance_id=None, retention_time_ms=-1, topics=[_Topic(
                                          name=TOPIC, partitions=[_Topic.OffsetCommitRequestPartition(
                                              partition_index=0, committed_offset=offset, committed_metadata="")])])
        (topic,) = admin._manager.run(admin._manager.send, request, coordinator).topics
        (answer,) = topic.partitions
        return answer.error_code
    finally:
        admin.close()


def test_a_commit_waits_for_min_insync_replicas(cluster):
    cluster.nodes[1].admin().create_topics([NewTopic(TOPIC, 1, 1)])[TOPIC].result(60)
    c = consumer(cluster)
    try:
        commit(c, 5)  # creates __consumer_offsets at replication factor 3
        assert committed(c) == 5
    finally:
        c.close()
    p, meta = wait_for("the group's offsets partition fully in sync",
                       lambda: (m := offsets_partition(cluster, 1))[1].isrs and len(m[1].isrs) == 3 and m)
    assert len(meta.replicas) == 3, meta
    coordinator = meta.leader
    victim = next(b for b in meta.replicas if b != coordinator)
    cluster.nodes[victim].kill(signal.SIGKILL)
    try:
        wait_for(f"broker {victim} out of {OFFSETS}-{p}'s in-sync replicas",
                 lambda: victim not in offsets_partition(cluster, coordinator)[1].isrs
                 and offsets_partition(cluster, coordinator)[1].leader == coordinator)
        code = raw_commit(cluster, coordinator, 7)
        assert code == Errors.CoordinatorNotAvailableError.errno, Errors.for_code(code)
        assert Errors.for_code(code).retriable
        c = consumer(cluster)
        try:
            with pytest.raises(KafkaException) as failed:
                commit(c, 7)
            # librdkafka hands the coordinator's answer to the application, which commits again.
            assert failed.value.args[0].code() == KafkaError.COORDINATOR_NOT_AVAILABLE, failed.value
        finally:
            c.close()
    finally:
        cluster.nodes[victim].start()
    wait_for(f"broker {victim} back in {OFFSETS}-{p}'s in-sync replicas",
             lambda: len(offsets_partition(cluster, coordinator)[1].isrs) == 3, deadline=120)
    c = consumer(cluster)
    try:
        wait_for("a commit accepted again", lambda: commit(c, 9) is None)
        assert committed(c) == 9
    finally:
        c.close()
