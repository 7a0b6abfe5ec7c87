"""A leader cut off from the metadata quorum stops answering as the leader
once its lease lapses (crates/broker/src/leader_lease.rs): nine tenths of
broker.session.timeout.ms after its last answered heartbeat was sent,
before the controller may give its partitions to another broker. Here two
of the three voters are paused, so no heartbeat can be answered; the third
node, sole replica and leader of a partition, answers ListOffsets with
NOT_LEADER_OR_FOLLOWER instead of its frozen high watermark, and serves
again once the quorum is back. Through confluent-kafka; every wait is a
deadline on an observed outcome."""

from __future__ import annotations

import signal

from confluent_kafka import Consumer, KafkaException, TopicPartition
from confluent_kafka.admin import NewTopic

from conftest import Cluster, binary, wait_for


def watermarks(bootstrap: str, topic: str):
    """The partition's watermarks as this node alone answers them, or the error."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "lease-probe", "log_level": 0,
                  "topic.metadata.refresh.interval.ms": 1000})
    try:
        return c.get_watermark_offsets(TopicPartition(topic, 0), timeout=3)
    except KafkaException as e:
        return e.args[0]
    finally:
        c.close()


def test_a_leader_without_a_quorum_stops_answering_once_its_lease_lapses(tmp_path):
    binary()
    cluster = Cluster(tmp_path, {"broker.session.timeout.ms": "4000", "broker.heartbeat.interval.ms": "500"})
    try:
        cluster.start()
        admin = cluster.nodes[1].admin()
        admin.create_topics([NewTopic("leased", num_partitions=1, replica_assignment=[[3]])], operation_timeout=30)["leased"].result(60)
        node3 = cluster.nodes[3].bootstrap
        wait_for("node 3 to answer the partition's watermarks", lambda: isinstance(watermarks(node3, "leased"), tuple))
        for i in (1, 2):
            cluster.nodes[i].process.send_signal(signal.SIGSTOP)
        try:
            err = wait_for("node 3 to stop answering as the leader",
                           lambda: None if isinstance(r := watermarks(node3, "leased"), tuple) else r,
                           deadline=60)
            assert "NOT_LEADER" in err.name() or "LEADER" in str(err), err
        finally:
            for i in (1, 2):
                cluster.nodes[i].process.send_signal(signal.SIGCONT)
        wait_for("node 3 to answer again once the quorum is back",
                 lambda: isinstance(watermarks(node3, "leased"), tuple), deadline=60)
    except BaseException:
        print(cluster.logs())
        raise
    finally:
        cluster.stop()
