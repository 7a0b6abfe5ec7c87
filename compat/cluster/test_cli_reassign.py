"""`tributary partition reassign` against three KRaft processes, -o json in a
subprocess: --generate proposes Kafka's reassignment JSON from the current
assignment; --execute --throttle starts the move and sets the throttle
configs (as confluent-kafka's DescribeConfigs reads them); --verify --wait
reports the move complete, the partition ends where the plan says (as
confluent-kafka's Metadata sees it, every record still readable), and the
throttles are gone; --cancel of a finished plan cancels nothing; a plan
naming an unknown broker is refused with Kafka's INVALID_REPLICA_ASSIGNMENT,
one growing a partition with --disallow-replication-factor-change with
INVALID_REPLICATION_FACTOR.
--verify counts in bytes what the new replicas have to copy and still lack,
matching the sizes kafka-python's describe_log_dirs reads; the count reaches
0 once the move is done. On brokers in racks (A, A, B), --generate places
each partition's replicas on both racks, as Kafka's rack-aware assignment
does, and --disable-rack-aware plans without racks."""

from __future__ import annotations

import json
import subprocess

import pytest

from confluent_kafka.admin import ConfigResource, NewTopic, ResourceType
from kafka import KafkaAdminClient

from conftest import binary, started_cluster, wait_for
from test_reassign import alter_configs, consume_all, partition, produce


def reassign(cluster, *args: str, expect: int = 0) -> dict:
    r = subprocess.run([str(binary()), "partition", "reassign", "--brokers", cluster.nodes[1].bootstrap,
                        "--timeout", "30s", "-o", "json", *args], capture_output=True, text=True, timeout=180)
    assert r.returncode == expect, r.stdout + r.stderr
    return json.loads(r.stdout) if r.stdout.strip() else {"stderr": r.stderr}


def create_everywhere(cluster, name: str, assignment: list[list[int]]) -> None:
    """Creates a topic through node 1 and waits until every node lists it: the CLI
    may ask any node, and a node applies the committed topic a moment after the
    controller answers CreateTopics (as Kafka's brokers do)."""
    cluster.nodes[1].admin().create_topics(
        [NewTopic(name, num_partitions=len(assignment), replica_assignment=assignment)],
        operation_timeout=30)[name].result(60)
    for node in cluster.nodes.values():
        wait_for(f"node {node.node_id} lists {name}", lambda node=node: name in node.metadata().topics)


def configs(cluster, kind, name: str) -> dict[str, str]:
    res = ConfigResource(kind, name)
    return {k: v.value for k, v in cluster.nodes[1].admin().describe_configs([res])[res].result(60).items()}


def test_generate_execute_verify_with_a_throttle(cluster, tmp_path):
    name = "cli-move"
    create_everywhere(cluster, name, [[1], [1]])
    values = [f"c-{i}" for i in range(200)]
    assert produce(cluster.bootstrap, name, values) == list(range(200))

    generated = reassign(cluster, "--generate", "--topics", name, "--broker-list", "2,3")
    assert generated["current"] == {"version": 1, "partitions": [
        {"topic": name, "partition": 0, "replicas": [1]}, {"topic": name, "partition": 1, "replicas": [1]}]}
    proposed = generated["proposed"]
    assert proposed["version"] == 1
    assert [(p["topic"], p["partition"]) for p in proposed["partitions"]] == [(name, 0), (name, 1)]
    assert sorted(p["replicas"][0] for p in proposed["partitions"]) == [2, 3], "spread over the brokers given"

    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps(proposed))
    started = reassign(cluster, "--execute", "--plan", str(plan), "--throttle", "50000000")
    assert started["current"] == generated["current"], "the rollback plan"
    assert started["throttle"] == 50000000 and started["complete"] is None
    assert [(r["partition"], r["status"], r["error"]) for r in started["partitions"]] == \
        [(0, "started", None), (1, "started", None)]
    # The throttle is set on the brokers taking part and the moving replicas are listed.
    for broker in ("1", "2", "3"):
        got = configs(cluster, ResourceType.BROKER, broker)
        assert got["leader.replication.throttled.rate"] == "50000000", (broker, got)
        assert got["follower.replication.throttled.rate"] == "50000000", (broker, got)
    topic = configs(cluster, ResourceType.TOPIC, name)
    assert sorted(topic["leader.replication.throttled.replicas"].split(",")) == ["0:1", "1:1"]
    new = {p["partition"]: p["replicas"][0] for p in proposed["partitions"]}
    assert sorted(topic["follower.replication.throttled.replicas"].split(",")) == \
        sorted(f"{p}:{b}" for p, b in new.items())

    verified = reassign(cluster, "--verify", "--plan", str(plan), "--wait")
    assert verified["complete"] is True and verified["throttles_removed"] is True, verified
    assert [(s["partition"], s["status"], s["replicas"]) for s in verified["partitions"]] == \
        [(p, "complete", [b]) for p, b in sorted(new.items())]
    for p, b in new.items():
        wait_for(f"{name}-{p} on broker {b}", lambda p=p, b=b: (m := cluster.nodes[1].metadata().topics.get(name))
                 is not None and list(m.partitions[p].replicas) == [b])
    assert list(partition(cluster, name).replicas) == [new[0]]
    # The throttles are gone: back to the defaults.
    for broker in ("1", "2", "3"):
        got = configs(cluster, ResourceType.BROKER, broker)
        assert got["leader.replication.throttled.rate"] == str(2**63 - 1), (broker, got)
    topic = configs(cluster, ResourceType.TOPIC, name)
    assert topic["leader.replication.throttled.replicas"] == "" and topic["follower.replication.throttled.replicas"] == ""
    assert consume_all(cluster.bootstrap, name, len(values)) == values

    # Cancelling a finished plan cancels nothing.
    cancelled = reassign(cluster, "--cancel", "--plan", str(plan))
    assert [r["status"] for r in cancelled["partitions"]] == ["not_in_progress", "not_in_progress"]


def test_execute_refusals_say_what_to_do(cluster, tmp_path):
    name = "cli-refuse"
    create_everywhere(cluster, name, [[1]])
    plan = tmp_path / "bad.json"
    plan.write_text(json.dumps({"version": 1, "partitions": [{"topic": name, "partition": 0, "replicas": [1, 42]}]}))
    got = reassign(cluster, "--execute", "--plan", str(plan), expect=1)
    [result] = got["partitions"]
    assert result["status"] == "failed" and result["error"]["code"] == 39, result
    assert result["error"]["name"] == "INVALID_REPLICA_ASSIGNMENT"
    assert "broker 42" in result["error"]["message"] and "tributary cluster info" in result["error"]["message"]

    # KIP-860: a plan that would grow the replication factor, refused when asked to keep it.
    plan.write_text(json.dumps({"version": 1, "partitions": [{"topic": name, "partition": 0, "replicas": [1, 2]}]}))
    kept = reassign(cluster, "--execute", "--plan", str(plan), "--disallow-replication-factor-change", expect=1)
    [result] = kept["partitions"]
    assert (result["status"], result["error"]["code"], result["error"]["name"]) == \
        ("failed", 38, "INVALID_REPLICATION_FACTOR"), result
    assert "The replication factor is changed from 1 to 2" in result["error"]["message"]
    assert list(partition(cluster, name).replicas) == [1]

    plan.write_text(json.dumps({"version": 1, "partitions": [{"topic": "no-such", "partition": 0, "replicas": [1]}]}))
    missing = reassign(cluster, "--execute", "--plan", str(plan), expect=4)
    assert "does not exist" in missing["stderr"]

    plan.write_text(json.dumps({"version": 1, "partitions": [{"topic": name, "partition": 0, "replicas": [1, 1]}]}))
    invalid = reassign(cluster, "--verify", "--plan", str(plan), expect=2)
    assert "broker twice" in invalid["stderr"]


def log_size(cluster, broker: int, topic: str) -> int | None:
    """The size of `broker`'s replica of topic-0, as kafka-python's describe_log_dirs reads it."""
    client = KafkaAdminClient(bootstrap_servers=cluster.bootstrap)
    try:
        for answer in client.describe_log_dirs():
            if answer["broker"] != broker:
                continue
            for d in answer["log_dirs"]:
                for t in d["topics"]:
                    if t["name"] == topic:
                        return next(p["partition_size"] for p in t["partitions"] if p["partition_index"] == 0)
        return None
    finally:
        client.close()


def test_verify_counts_the_bytes_left_to_copy(cluster, tmp_path):
    name = "cli-bytes"
    create_everywhere(cluster, name, [[1]])
    # 3 MB in 10 kB records: more than the one fetch (replica.fetch.max.bytes, 1 MB) a
    # 1 byte/s throttle lets through before it holds the new replica back.
    values = [f"{i:06d}" + "x" * 10_000 for i in range(300)]
    assert produce(cluster.bootstrap, name, values) == list(range(300))
    leader_size = log_size(cluster, 1, name)
    assert leader_size is not None and leader_size > 3_000_000

    plan = tmp_path / "bytes.json"
    plan.write_text(json.dumps({"version": 1, "partitions": [{"topic": name, "partition": 0, "replicas": [1, 2]}]}))
    try:
        started = reassign(cluster, "--execute", "--plan", str(plan), "--throttle", "1")
        assert [r["status"] for r in started["partitions"]] == ["started"]
        held = reassign(cluster, "--verify", "--plan", str(plan))
        [status] = held["partitions"]
        assert status["status"] == "in_progress" and status["adding"] == [2], held
        # Broker 2 has to copy the leader's log and lacks part of it.
        assert status["bytes_total"] == leader_size, (status, leader_size)
        copied = log_size(cluster, 2, name) or 0
        assert 0 < status["bytes_left"] <= leader_size and copied < leader_size, (status, copied)
        assert (held["bytes_total"], held["bytes_left"]) == (status["bytes_total"], status["bytes_left"])
        assert held["complete"] is False and held["throttles_removed"] is False
    finally:
        # Lift the throttle (as kafka-reassign-partitions --execute --additional would).
        for broker in ("1", "2"):
            alter_configs(cluster, ResourceType.BROKER, broker, {"leader.replication.throttled.rate": None,
                                                                 "follower.replication.throttled.rate": None})

    done = reassign(cluster, "--verify", "--plan", str(plan), "--wait")
    assert done["complete"] is True and done["throttles_removed"] is True, done
    [status] = done["partitions"]
    assert (status["status"], status["bytes_total"], status["bytes_left"]) == ("complete", 0, 0), status
    assert (done["bytes_total"], done["bytes_left"]) == (0, 0)
    wait_for("broker 2's copy as large as the leader's", lambda: log_size(cluster, 2, name) == log_size(cluster, 1, name))
    assert consume_all(cluster.nodes[2].bootstrap, name, len(values)) == values


RACKS = {1: "A", 2: "A", 3: "B"}


@pytest.fixture(scope="module")
def racked(tmp_path_factory):
    """Three nodes whose broker.rack is A, A and B."""
    yield from started_cluster(tmp_path_factory.mktemp("racked"),
                               node_configs={i: {"broker.rack": rack} for i, rack in RACKS.items()})


def test_generate_spreads_replicas_over_racks(racked):
    name = "cli-racks"
    create_everywhere(racked, name, [[1, 2]] * 4)
    # Every replica in rack A now; the plan over all three brokers puts one of each partition in B.
    aware = reassign(racked, "--generate", "--topics", name, "--broker-list", "1,2,3")["proposed"]
    assert [p["partition"] for p in aware["partitions"]] == [0, 1, 2, 3]
    for p in aware["partitions"]:
        assert len(p["replicas"]) == 2 and {RACKS[b] for b in p["replicas"]} == {"A", "B"}, aware
    leaders = {p["replicas"][0] for p in aware["partitions"]}
    assert leaders >= {3} and leaders & {1, 2}, f"leaders in both racks: {aware}"

    unaware = reassign(racked, "--generate", "--topics", name, "--broker-list", "1,2,3",
                       "--disable-rack-aware")["proposed"]
    assert any({RACKS[b] for b in p["replicas"]} == {"A"} for p in unaware["partitions"]), \
        f"round-robin over 1, 2, 3 puts some partition on 1 and 2 only: {unaware}"
