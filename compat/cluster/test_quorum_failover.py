"""Kill -9 of the quorum leader with Tributary's default quorum timings: the
leader is found with DescribeQuorum (kio, a codec generated from Kafka's
message JSON), killed, and a CreateTopics sent to a survivor commits; both
survivors then name the same new leader in a later epoch and list the
topic (confluent-kafka), admin requests keep working while the old leader
stays down, the survivors' logs say once that it is unreachable instead of
once per retry, and the old leader rejoins and catches up.

Deadlines are generous and nothing here measures the failover: that is
bench/metadata_bench.py's job.
"""

from __future__ import annotations

import itertools
import signal

from confluent_kafka.admin import NewTopic

import kio_wire
from conftest import HOST, wait_for

# Kafka error codes a CreateTopics may answer while the quorum has no leader.
RETRIABLE = {7, 41}  # REQUEST_TIMED_OUT, NOT_CONTROLLER
# Lines a survivor may write while the old leader is down (it wrote one per
# retry, three per attempt, thousands a second, before back-off).
LOG_LINES_BOUND = 1000


def quorum(node) -> tuple[int, int]:
    """(leader, epoch) of the metadata quorum as `node` answers DescribeQuorum."""
    r = kio_wire.describe_quorum(HOST, node.client_port, 2)
    assert r.error_code == 0, r
    [topic] = r.topics
    [p] = topic.partitions
    assert p.error_code == 0, r
    return p.leader_id, p.leader_epoch


def agreed_quorum(nodes) -> tuple[int, int] | None:
    seen = {quorum(n) for n in nodes}
    return seen.pop() if len(seen) == 1 else None


def test_killed_quorum_leader_is_replaced_and_a_survivor_commits(cluster):
    nodes = cluster.nodes
    # The quorum runs on its default timings: the cluster's configs set no
    # controller.quorum.* key but the voters.
    for n in nodes.values():
        keys = [line.split("=", 1)[0] for line in n.config.read_text().splitlines() if "=" in line]
        assert [k for k in keys if k.startswith("controller.quorum.")] == ["controller.quorum.voters"], keys

    leader, epoch = wait_for("every node to name the same quorum leader", lambda: agreed_quorum(nodes.values()))
    survivors = [i for i in nodes if i != leader]
    log_start = {i: nodes[i].log.stat().st_size for i in survivors}
    nodes[leader].kill(signal.SIGKILL)

    # A CreateTopics to a survivor commits once a new leader is elected; each
    # attempt names a new topic, so a success is that attempt's own commit.
    via = nodes[survivors[0]]
    names = (f"after-leader-kill-{i}" for i in itertools.count())
    created: list[str] = []

    def create_through_survivor() -> str | None:
        name = next(names)
        r = kio_wire.create_topics(HOST, via.client_port, [(name, 3, 1)], timeout_ms=5000)
        [t] = r.topics
        if t.error_code == 0:
            created.append(name)
            return name
        assert t.error_code in RETRIABLE, t
        return None

    topic = wait_for(f"a CreateTopics through node {via.node_id} to commit", create_through_survivor,
                     deadline=60, every=0.05)

    new_leader, new_epoch = wait_for("the survivors to name the same new leader",
                                     lambda: agreed_quorum(nodes[i] for i in survivors))
    assert new_leader in survivors and new_epoch > epoch, (leader, epoch, new_leader, new_epoch)
    for i in survivors:
        wait_for(f"node {i} to list {topic}",
                 lambda i=i: len(nodes[i].metadata().topics.get(topic).partitions) == 3
                 if topic in nodes[i].metadata().topics else False)

    # Admin requests through the other survivor, with a real client, while
    # the old leader stays down.
    other = nodes[survivors[1]]
    more = [f"while-down-{i}" for i in range(5)]
    for name in more:
        futures = other.admin().create_topics([NewTopic(name, 1, 1)], operation_timeout=30)
        futures[name].result(timeout=60)

    # The survivors said once that the old leader is unreachable, not once
    # per retry, and openraft's per-retry lines are off.
    unreachable = f"controller node {leader} is unreachable"
    said = 0
    for i in survivors:
        with open(nodes[i].log, "rb") as f:
            f.seek(log_start[i])
            lines = f.read().decode(errors="replace").splitlines()
        assert len(lines) < LOG_LINES_BOUND, f"node {i} wrote {len(lines)} lines while node {leader} was down"
        assert not [line for line in lines if "error replication to target" in line], f"node {i}"
        count = sum(unreachable in line for line in lines)
        assert count <= 1, f"node {i} logged {count} times that node {leader} is unreachable"
        said += count
    assert said >= 1, "no survivor logged that the old leader is unreachable"

    # The old leader rejoins as a follower and catches up.
    nodes[leader].start()
    cluster.wait_brokers({1, 2, 3})
    wait_for(f"node {leader} to list every topic created while it was down",
             lambda: set(created + more) <= set(nodes[leader].metadata().topics))
    wait_for("every node to name one leader again", lambda: agreed_quorum(nodes.values()))
