"""A follower whose log was damaged mid-file while it was down (kill -9, then
bytes flipped in the middle of its segment) cuts the log at the first batch
that fails its CRC when it starts, fetches the rest from the leader again,
and ends up holding the leader's log byte for byte: it never keeps or serves
the damaged batches. Clients are confluent-kafka; every wait is a deadline
on an observed outcome."""

from __future__ import annotations

import signal

from confluent_kafka.admin import NewTopic

from conftest import wait_for
from test_replication import consume_all, leader_with_isr, produce, segment_bytes

RECORDS = 300


def test_a_follower_with_a_corrupt_log_cuts_it_and_fetches_it_again(cluster):
    name = "damaged-follower"
    admin = cluster.nodes[1].admin()
    admin.create_topics([NewTopic(name, 1, 3, config={"min.insync.replicas": "2"})],
                        operation_timeout=30)[name].result(timeout=60)
    every = [1, 2, 3]
    leader = leader_with_isr(cluster, name, {1, 2, 3}, every)
    first = [f"a-{i:04}-" + "x" * 200 for i in range(RECORDS)]
    assert produce(cluster.bootstrap, name, first, **{"batch.num.messages": 20}) == list(range(RECORDS))

    def identical():
        logs = [segment_bytes(cluster.nodes[i], name) for i in every]
        return len(logs[0]) > 0 and logs[0] == logs[1] == logs[2]

    wait_for("every replica to hold the same log", identical, deadline=60)

    follower = next(i for i in every if i != leader)
    node = cluster.nodes[follower]
    node.kill(signal.SIGKILL)
    segment = sorted((node.data_dir / f"{name}-0").glob("*.log"))[-1]
    data = bytearray(segment.read_bytes())
    middle = len(data) // 2
    for i in range(middle, middle + 16):
        data[i] ^= 0xFF
    segment.write_bytes(bytes(data))

    alive = [i for i in every if i != follower]
    second = [f"b-{i:04}" for i in range(RECORDS)]
    bootstrap = ",".join(cluster.nodes[i].bootstrap for i in alive)
    reports = produce(bootstrap, name, second)
    assert all(isinstance(r, int) for r in reports), [r for r in reports if not isinstance(r, int)][:3]

    node.start()
    leader_with_isr(cluster, name, {1, 2, 3}, alive)
    wait_for("the damaged follower to hold the leader's log byte for byte", identical, deadline=90)
    log = node.log.read_text(errors="replace")
    assert "cut a torn or corrupt tail off a segment" in log, "the follower's log says nothing about cutting its damaged tail"
    assert consume_all(cluster.bootstrap, name, 2 * RECORDS) == first + second
