"""DescribeLogDirs (API 35) on a three-node cluster, through kafka-python's
KafkaAdminClient.describe_log_dirs (which asks every broker at the highest
version both sides serve, v4 here): each broker answers with its data
directory, the replicas it holds of a replicated topic with their size in
bytes (what the segment files hold on disk) and an offset lag of 0 once
caught up, not future; total and usable bytes are the file system's.
Asking for one topic leaves the others out.

Every wait is a deadline on an observed outcome."""

from __future__ import annotations

import os

from confluent_kafka.admin import NewTopic
from kafka.admin import KafkaAdminClient

from conftest import wait_for
from test_replication import produce

TOPIC = "log-dirs"
OTHER = "log-dirs-other"


def on_disk(node, topic: str) -> int:
    return sum(f.stat().st_size for f in (node.data_dir / f"{topic}-0").glob("*.log"))


def test_every_broker_describes_its_log_directory(cluster):
    admin = cluster.nodes[1].admin()
    for f in admin.create_topics([NewTopic(TOPIC, 1, 3), NewTopic(OTHER, 1, 3)]).values():
        f.result(60)
    assert produce(cluster.bootstrap, TOPIC, [f"r-{i}" for i in range(100)]) == list(range(100))

    client = KafkaAdminClient(bootstrap_servers=cluster.bootstrap)
    try:
        def described():
            out = {}
            for broker in client.describe_log_dirs():
                (log_dir,) = broker["log_dirs"]
                out[broker["broker"]] = log_dir
            return out

        def settled():
            dirs = described()
            if set(dirs) != {1, 2, 3}:
                return None
            for node_id, d in dirs.items():
                topics = {t["name"]: t["partitions"] for t in d["topics"]}
                if TOPIC not in topics:
                    return None
                (p,) = topics[TOPIC]
                node = cluster.nodes[node_id]
                if p["offset_lag"] != 0 or p["partition_size"] != on_disk(node, TOPIC) or p["partition_size"] == 0:
                    return None
            return dirs

        dirs = wait_for("every replica described, caught up, with its size on disk", settled, deadline=90)
        for node_id, d in dirs.items():
            node = cluster.nodes[node_id]
            assert d["error_code"] == 0, d
            assert os.path.realpath(d["log_dir"]) == os.path.realpath(node.data_dir), d["log_dir"]
            assert {t["name"] for t in d["topics"]} >= {TOPIC, OTHER}
            (p,) = next(t["partitions"] for t in d["topics"] if t["name"] == TOPIC)
            assert (p["partition_index"], p["is_future_key"]) == (0, False)
            st = os.statvfs(node.data_dir)
            assert d["total_bytes"] == st.f_blocks * st.f_frsize, d
            assert 0 <= d["usable_bytes"] <= d["total_bytes"], d

        # One topic asked for: only it is listed.
        for broker in client.describe_log_dirs(topic_partitions={TOPIC: [0]}):
            (d,) = broker["log_dirs"]
            assert [(t["name"], [p["partition_index"] for p in t["partitions"]]) for t in d["topics"]] == [(TOPIC, [0])]
    finally:
        client.close()
