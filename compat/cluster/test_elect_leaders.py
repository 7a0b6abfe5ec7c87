"""ElectLeaders (API 43) on a three-node cluster, through confluent-kafka's
AdminClient.elect_leaders, kafka-python's describe_topic_partitions (leader
epochs), a raw request encoded by kio (an election type Kafka does not know)
and `tributary partition elect-leaders` / `tributary topic describe|list`
with -o json.

A topic with replicas [1, 2, 3] (1 preferred) and a long-lived producer:
PREFERRED while 1 leads and UNCLEAN while a leader exists are
ELECTION_NOT_NEEDED; with 1 down PREFERRED is PREFERRED_LEADER_NOT_AVAILABLE
and the partition is listed under-replicated; with 1 back in the ISR (the
automatic rebalance is off here) PREFERRED moves leadership to 1 with a new
leader epoch, and the producer and a consumer follow without losing or
repeating a record. Unknown topics and partitions are
UNKNOWN_TOPIC_OR_PARTITION; election type 7 is INVALID_REQUEST.

Every wait is a deadline on an observed outcome."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import pytest
from confluent_kafka import ElectionType, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import NewTopic
from kafka.admin import KafkaAdminClient

from conftest import HOST, ROOT, binary, wait_for
from kraft import Cluster
from test_replication import consume_all, partition_meta

sys.path.insert(0, str(ROOT / "compat" / "python"))
import kio_wire  # noqa: E402

TOPIC = "elect"
EVERY = [1, 2, 3]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    binary()
    c = Cluster(tmp_path_factory.mktemp("elect"), {"auto.leader.rebalance.enable": "false"})
    try:
        c.start()
        yield c
    except BaseException:
        print(c.logs())
        raise
    finally:
        c.stop()


def cli(cluster, *args: str, via: list[int] | None = None) -> tuple[int, dict]:
    bootstrap = ",".join(cluster.nodes[i].bootstrap for i in (via or EVERY))
    r = subprocess.run([str(binary()), *args, "--brokers", bootstrap, "--timeout", "30s", "-o", "json"],
                       capture_output=True, text=True, timeout=120)
    return r.returncode, json.loads(r.stdout) if r.stdout.strip() else {}


def elect(admin, election: ElectionType, partitions) -> dict:
    result = admin.elect_leaders(election, partitions).result(timeout=60)
    return {(tp.topic, tp.partition): err for tp, err in result.items()}


def code(err) -> int:
    return 0 if err is None else err.code()


def leader_epoch(cluster, via: list[int]) -> tuple[int, int]:
    """(leader, leader epoch) of partition 0 as kafka-python's DescribeTopicPartitions reports it."""
    client = KafkaAdminClient(bootstrap_servers=[cluster.nodes[i].bootstrap for i in via])
    try:
        topic = client.describe_topic_partitions([TOPIC])["topics"][0]
        p = next(p for p in topic["partitions"] if p["partition_index"] == 0)
        return p["leader_id"], p["leader_epoch"]
    finally:
        client.close()


def test_preferred_and_unclean_elections_with_a_producer_and_consumer_following(cluster):
    admin = cluster.nodes[2].admin()
    admin.create_topics([NewTopic(TOPIC, num_partitions=1, replica_assignment=[[1, 2, 3]],
                                  config={"min.insync.replicas": "1"})])[TOPIC].result(60)
    wait_for("leader 1 with ISR 1,2,3", lambda: (p := partition_meta(cluster, TOPIC, EVERY)) is not None
             and p.leader == 1 and set(p.isrs) == {1, 2, 3}, deadline=90)
    tp = [TopicPartition(TOPIC, 0)]

    assert code(elect(admin, ElectionType.PREFERRED, tp)[(TOPIC, 0)]) == KafkaError.ELECTION_NOT_NEEDED
    assert code(elect(admin, ElectionType.UNCLEAN, tp)[(TOPIC, 0)]) == KafkaError.ELECTION_NOT_NEEDED
    status, out = cli(cluster, "partition", "elect-leaders", "--type", "preferred", "--topic", TOPIC)
    assert status == 0 and out["partitions"] == [
        {"topic": TOPIC, "partition": 0, "result": "not-needed", "leader": 1, "error": None}], out

    reports: list = []
    producer = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all", "enable.idempotence": True})

    def send(values):
        for v in values:
            producer.produce(TOPIC, value=v.encode(), partition=0,
                             on_delivery=lambda err, msg: reports.append(err if err else msg.offset()))
        assert producer.flush(120) == 0

    first = [f"a-{i}" for i in range(50)]
    send(first)

    cluster.nodes[1].kill(signal.SIGKILL)
    alive = [2, 3]
    wait_for("leadership away from 1 and 1 out of the ISR",
             lambda: (p := partition_meta(cluster, TOPIC, alive)) is not None and p.leader in alive
             and set(p.isrs) == set(alive), deadline=90)
    admin = cluster.nodes[2].admin()
    assert code(elect(admin, ElectionType.PREFERRED, tp)[(TOPIC, 0)]) == KafkaError.PREFERRED_LEADER_NOT_AVAILABLE

    status, out = cli(cluster, "topic", "describe", TOPIC, via=alive)
    assert status == 0
    [p0] = out["topics"][0]["partitions"]
    assert (p0["offline"], p0["under_replicated"], sorted(p0["isr"])) == (False, True, alive), p0
    status, out = cli(cluster, "topic", "list", "--under-replicated", via=alive)
    assert status == 0 and [(p["topic"], p["partition"]) for p in out["partitions"]] == [(TOPIC, 0)], out
    status, out = cli(cluster, "topic", "list", "--unavailable", via=alive)
    assert status == 0 and out["partitions"] == [], out
    status, out = cli(cluster, "partition", "elect-leaders", "--type", "preferred", "--topic", TOPIC,
                      "--partition", "0", via=alive)
    assert status == 1 and out["partitions"][0]["result"] == "error", out
    assert out["partitions"][0]["error"]["name"] == "PREFERRED_LEADER_NOT_AVAILABLE", out

    cluster.nodes[1].start()
    old_leader = wait_for("1 back in the ISR (another broker still leading)",
                          lambda: (p := partition_meta(cluster, TOPIC, EVERY)) is not None
                          and set(p.isrs) == {1, 2, 3} and p.leader in alive and p.leader, deadline=120)
    _, epoch_before = leader_epoch(cluster, EVERY)

    result = elect(cluster.nodes[3].admin(), ElectionType.PREFERRED, tp)
    assert result[(TOPIC, 0)] is None, result
    wait_for("leader 1 everywhere", lambda: all(
        (p := partition_meta(cluster, TOPIC, [i])) is not None and p.leader == 1 for i in EVERY), deadline=60)
    leader, epoch_after = leader_epoch(cluster, EVERY)
    assert leader == 1 and epoch_after > epoch_before, (leader, epoch_before, epoch_after)
    assert old_leader != 1

    # The producer knew the old leader; it follows to the new one.
    second = [f"b-{i}" for i in range(50)]
    send(second)
    assert [r for r in reports if not isinstance(r, int)] == []
    assert sorted(reports) == list(range(100)), reports[:5]
    assert consume_all(cluster.bootstrap, TOPIC, 100) == first + second

    # Every partition of the cluster: nothing to elect is answered with nothing.
    assert elect(admin, ElectionType.PREFERRED, None) == {}
    status, out = cli(cluster, "partition", "elect-leaders", "--type", "preferred", "--all")
    assert status == 0 and out == {"type": "preferred", "partitions": []}, out


def test_unknown_partitions_and_an_unknown_election_type_are_refused(cluster):
    admin = cluster.nodes[1].admin()
    result = elect(admin, ElectionType.PREFERRED, [TopicPartition("no-such-topic", 0), TopicPartition(TOPIC, 9)])
    assert {k: code(v) for k, v in result.items()} == {
        ("no-such-topic", 0): KafkaError.UNKNOWN_TOPIC_OR_PART, (TOPIC, 9): KafkaError.UNKNOWN_TOPIC_OR_PART}
    status, out = cli(cluster, "partition", "elect-leaders", "--type", "unclean", "--topic", TOPIC, "--partition", "9")
    assert status == 4 and out["partitions"][0]["error"]["name"] == "UNKNOWN_TOPIC_OR_PARTITION", out

    from kio.static.primitive import i8, i32
    rq = kio_wire._schema("elect_leaders", 2, "request")
    rs = kio_wire._schema("elect_leaders", 2, "response")
    request = rq.ElectLeadersRequest(election_type=i8(7), topic_partitions=(
        rq.TopicPartitions(topic=TOPIC, partitions=(i32(0),)),))
    response = kio_wire.call(HOST, cluster.nodes[2].client_port, request, rs.ElectLeadersResponse)
    invalid_request = 42
    assert response.error_code == invalid_request, response
    [topic] = response.replica_election_results
    assert [(p.partition_id, p.error_code) for p in topic.partition_result] == [(0, invalid_request)]
