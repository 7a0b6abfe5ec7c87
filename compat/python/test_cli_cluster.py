"""`tributary cluster info` against the single node of `tributary start`: a
node alone is a metadata quorum of one voter, itself. Its JSON is checked
against confluent-kafka's Metadata and against DescribeQuorum decoded by kio
(a codec generated from Kafka's own message JSON; no Python Kafka client has
DescribeQuorum), at every version the broker offers.

The binary is $TRIBUTARY_BIN (default target/debug/tributary).
"""

from __future__ import annotations

import json
import subprocess
import uuid

from confluent_kafka.admin import AdminClient, NewTopic

import kio_wire
import kwire
from conftest import broker_binary

TIMEOUT_S = 60


def info(bootstrap: str) -> dict:
    r = subprocess.run([str(broker_binary()), "cluster", "info", "--brokers", bootstrap, "--timeout", "10s",
                        "-o", "json"], capture_output=True, text=True, timeout=TIMEOUT_S)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def partition_by_kio(host: str, port: int, version: int):
    r = kio_wire.describe_quorum(host, port, version)
    assert r.error_code == 0, r
    [topic] = r.topics
    [p] = topic.partitions
    assert (topic.topic_name, p.partition_index, p.error_code) == ("__cluster_metadata", 0, 0), r
    return r, p


def test_a_node_alone_is_a_quorum_of_one(bootstrap):
    host, port = kwire.parse_hostport(bootstrap)
    admin = AdminClient({"bootstrap.servers": bootstrap})
    md = admin.list_topics(timeout=10)
    [node_id] = md.brokers
    assert md.controller_id == node_id

    for version in (0, 1, 2):
        r, p = partition_by_kio(host, port, version)
        assert p.leader_id == node_id and p.leader_epoch >= 1, p
        assert [v.replica_id for v in p.current_voters] == [node_id] and p.observers == (), p
        # Alone, everything it wrote is committed: its log end is the high watermark.
        assert p.current_voters[0].log_end_offset == p.high_watermark > 0, p
        if version >= 1:
            assert p.current_voters[0].last_fetch_timestamp > 0, p
        if version >= 2:
            assert [n.node_id for n in r.nodes] == [node_id], r

    _, before = partition_by_kio(host, port, 2)
    got = info(bootstrap)
    _, after = partition_by_kio(host, port, 2)
    assert got["controller_id"] == node_id and got["cluster_id"] == md.cluster_id
    assert got["brokers"] == [{"node_id": node_id, "host": host, "port": port, "rack": None, "fenced": False,
                               "endpoints": [{"role": "broker", "listener": None, "host": host, "port": port}]}]
    q = got["quorum"]
    assert (q["leader_id"], q["leader_epoch"]) == (before.leader_id, before.leader_epoch) == \
        (after.leader_id, after.leader_epoch), (q, before, after)
    assert before.high_watermark <= q["high_watermark"] <= after.high_watermark, (q, before, after)
    [voter] = q["voters"]
    assert (voter["node_id"], voter["role"], voter["lag"], voter["endpoints"]) == (node_id, "leader", 0, []), voter
    assert voter["log_end_offset"] == q["high_watermark"]
    assert q["observers"] == []

    # A topic is a metadata entry: the high watermark moves past it.
    topic = f"cli-cluster-{uuid.uuid4().hex[:8]}"
    admin.create_topics([NewTopic(topic, 2, 1)])[topic].result(timeout=30)
    _, created = partition_by_kio(host, port, 2)
    later = info(bootstrap)["quorum"]
    assert later["high_watermark"] >= created.high_watermark > q["high_watermark"], (later, created, q)


def test_describe_quorum_for_another_partition_is_unknown(bootstrap):
    host, port = kwire.parse_hostport(bootstrap)
    for version in (0, 2):
        r = kio_wire.describe_quorum(host, port, version, topics=(("__cluster_metadata", (1,)), ("orders", (0, 1))))
        codes = [(t.topic_name, p.partition_index, int(p.error_code)) for t in r.topics for p in t.partitions]
        assert codes == [("__cluster_metadata", 1, 3), ("orders", 0, 3), ("orders", 1, 3)], r
