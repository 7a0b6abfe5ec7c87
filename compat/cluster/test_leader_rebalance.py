"""The active controller's automatic preferred-leader rebalance
(auto.leader.rebalance.enable, default true; here every second through
leader.imbalance.check.interval.seconds): a broker killed and restarted gets
the leadership of the partitions it is the preferred replica of back once
it is in sync again, with no admin request, and a producer and consumer
keep working across the moves. Seen through confluent-kafka's metadata.

Every wait is a deadline on an observed outcome."""

from __future__ import annotations

import signal

from confluent_kafka.admin import NewTopic

from conftest import binary, wait_for
from kraft import Cluster
from test_replication import consume_all, produce

TOPIC = "rebalanced"
ASSIGNMENT = [[1, 2, 3], [2, 3, 1], [3, 1, 2]]


def leaders(cluster, via: list[int]) -> dict[int, tuple[int, set[int]]] | None:
    for node_id in via:
        try:
            topic = cluster.nodes[node_id].metadata().topics.get(TOPIC)
        except Exception:  # noqa: BLE001 - a node that does not answer: ask the next
            continue
        if topic is not None and len(topic.partitions) == len(ASSIGNMENT):
            return {i: (p.leader, set(p.isrs)) for i, p in topic.partitions.items()}
    return None


def test_a_restarted_broker_gets_its_preferred_leaderships_back(tmp_path):
    binary()
    cluster = Cluster(tmp_path, {"auto.leader.rebalance.enable": "true", "leader.imbalance.check.interval.seconds": "1"})
    try:
        cluster.start()
        admin = cluster.nodes[1].admin()
        admin.create_topics([NewTopic(TOPIC, num_partitions=len(ASSIGNMENT), replica_assignment=ASSIGNMENT)])[
            TOPIC].result(60)
        balanced = {i: (replicas[0], {1, 2, 3}) for i, replicas in enumerate(ASSIGNMENT)}
        wait_for("every partition led by its preferred replica", lambda: leaders(cluster, [1, 2, 3]) == balanced,
                 deadline=90)

        cluster.nodes[1].kill(signal.SIGKILL)
        wait_for("partition 0 led by another broker",
                 lambda: (l := leaders(cluster, [2, 3])) is not None and l[0][0] in (2, 3), deadline=90)
        # Writes go on while 1 is down (partition 0 to its new leader).
        bootstrap = ",".join(cluster.nodes[i].bootstrap for i in (2, 3))
        assert produce(bootstrap, TOPIC, [f"down-{i}" for i in range(20)]) == list(range(20))

        cluster.nodes[1].start()
        wait_for("partition 0 led by broker 1 again, every replica in sync",
                 lambda: leaders(cluster, [1, 2, 3]) == balanced, deadline=120)
        assert produce(cluster.bootstrap, TOPIC, [f"back-{i}" for i in range(20)]) == list(range(20, 40))
        assert consume_all(cluster.bootstrap, TOPIC, 40) == [f"down-{i}" for i in range(20)] + [
            f"back-{i}" for i in range(20)]
    except BaseException:
        print(cluster.logs())
        raise
    finally:
        cluster.stop()
