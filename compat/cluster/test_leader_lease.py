"""A leader cut off from the metadata quorum stops answering as the leader
once its lease lapses (crates/broker/src/leader_lease.rs): nine tenths of
broker.session.timeout.ms after its last answered heartbeat was sent,
before the controller may give its partitions to another broker. Here two
of the three voters are paused, so no heartbeat can be answered; the third
node, sole replica and leader of a partition, answers ListOffsets with
NOT_LEADER_OR_FOLLOWER instead of its frozen high watermark, and serves
again once the quorum is back. Twice: the node left alone is a voter that
follows the quorum's leader, then it is the active controller itself, whose
own heartbeat never crosses the network, so only the quorum's confirmation
of its leadership can end its lease (it used to lead forever). Through
confluent-kafka; every wait is a deadline on an observed outcome."""

from __future__ import annotations

import signal

import pytest

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


@pytest.mark.parametrize("alone", ["a follower voter", "the active controller"])
def test_a_leader_without_a_quorum_stops_answering_once_its_lease_lapses(tmp_path, alone):
    binary()
    cluster = Cluster(tmp_path, {"broker.session.timeout.ms": "4000", "broker.heartbeat.interval.ms": "500"})
    try:
        cluster.start()
        controller = cluster.controller(via=1)
        assert controller in (1, 2, 3), controller
        keep = controller if alone == "the active controller" else next(i for i in (1, 2, 3) if i != controller)
        others = [i for i in (1, 2, 3) if i != keep]
        admin = cluster.nodes[others[0]].admin()
        admin.create_topics([NewTopic("leased", num_partitions=1, replica_assignment=[[keep]])],
                            operation_timeout=30)["leased"].result(60)
        lone = cluster.nodes[keep].bootstrap
        wait_for(f"node {keep} to answer the partition's watermarks", lambda: isinstance(watermarks(lone, "leased"), tuple))
        for i in others:
            cluster.nodes[i].process.send_signal(signal.SIGSTOP)
        try:
            err = wait_for(f"node {keep} ({alone}) to stop answering as the leader",
                           lambda: None if isinstance(r := watermarks(lone, "leased"), tuple) else r,
                           deadline=60)
            assert "NOT_LEADER" in err.name() or "LEADER" in str(err), err
        finally:
            for i in others:
                cluster.nodes[i].process.send_signal(signal.SIGCONT)
        wait_for(f"node {keep} to answer again once the quorum is back",
                 lambda: isinstance(watermarks(lone, "leased"), tuple), deadline=60)
    except BaseException:
        print(cluster.logs())
        raise
    finally:
        cluster.stop()
