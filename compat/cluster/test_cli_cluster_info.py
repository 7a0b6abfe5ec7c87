"""`tributary cluster info` against three KRaft processes: its JSON is what
the cluster is (its brokers with their Kafka and controller endpoints, the
quorum's leader and voters), as confluent-kafka's Metadata and DescribeQuorum
and DescribeCluster decoded by kio (a codec generated from Kafka's message
JSON) see it; a broker killed with -9 shows as fenced and behind, and
unfenced and caught up after its restart."""

from __future__ import annotations

import json
import signal
import subprocess

from confluent_kafka.admin import NewTopic

import kio_wire
from conftest import HOST, binary, wait_for

CONTROLLER = "CONTROLLER"


def info(*bootstraps: str, output: str = "json") -> dict | str:
    r = subprocess.run([str(binary()), "cluster", "info", "--brokers", ",".join(bootstraps), "--timeout", "30s",
                        "-o", output], capture_output=True, text=True, timeout=90)
    assert r.returncode == 0, r.stdout + r.stderr
    return json.loads(r.stdout) if output == "json" else r.stdout


def quorum_by_kio(node, version: int = 2):
    """(leader, epoch, voter ids) of __cluster_metadata-0 as one node answers DescribeQuorum."""
    r = kio_wire.describe_quorum(HOST, node.client_port, version)
    assert r.error_code == 0, r
    [topic] = r.topics
    [p] = topic.partitions
    assert (topic.topic_name, p.partition_index, p.error_code) == ("__cluster_metadata", 0, 0), r
    return p.leader_id, p.leader_epoch, tuple(sorted(v.replica_id for v in p.current_voters))


def test_cluster_info_json_is_the_cluster(cluster):
    nodes = cluster.nodes
    md = nodes[1].metadata()
    # The same quorum from every node, at every version, before and after the CLI's look.
    before = {quorum_by_kio(n, v) for n in nodes.values() for v in (0, 1, 2)}
    got = info(cluster.bootstrap)
    after = {quorum_by_kio(n, v) for n in nodes.values() for v in (0, 1, 2)}
    assert len(before) == 1 and before == after, (before, after)
    [(leader, epoch, voters)] = before

    assert got["cluster_id"] == md.cluster_id
    assert got["controller_id"] == md.controller_id == leader
    assert [(b["node_id"], b["host"], b["port"], b["fenced"]) for b in got["brokers"]] == \
        [(i, HOST, n.client_port, False) for i, n in sorted(nodes.items())]
    for b in got["brokers"]:
        n = nodes[b["node_id"]]
        assert b["endpoints"] == [
            {"role": "broker", "listener": None, "host": HOST, "port": n.client_port},
            {"role": "controller", "listener": CONTROLLER, "host": HOST, "port": n.controller_port},
        ], b

    q = got["quorum"]
    assert (q["leader_id"], q["leader_epoch"]) == (leader, epoch) and epoch >= 1, q
    assert voters == (1, 2, 3)
    # The leader first, then the followers; every node is a voter here, none only observes.
    assert [(v["node_id"], v["role"]) for v in q["voters"]] == \
        [(leader, "leader")] + [(i, "follower") for i in (1, 2, 3) if i != leader], q
    assert q["observers"] == []
    assert q["high_watermark"] > 0
    for v in q["voters"]:
        assert v["endpoints"] == [{"listener": CONTROLLER, "host": HOST, "port": nodes[v["node_id"]].controller_port}]
        assert v["log_end_offset"] > 0 and v["lag"] is not None and v["lag"] >= 0, v
        assert v["last_fetch_timestamp"] and v["last_caught_up_timestamp"], v

    # The table says the same for people; YAML holds the same document.
    text = info(cluster.bootstrap, output="table")
    assert f"QUORUM  leader {leader}, epoch " in text, text
    for i, n in nodes.items():
        assert f"{HOST}:{n.client_port}, {CONTROLLER}://{HOST}:{n.controller_port}" in text, text
    assert f"{leader}*" in text, text


def test_a_killed_broker_is_fenced_and_behind_then_back(cluster):
    nodes = cluster.nodes
    leader = cluster.controller(via=1)
    victim = next(i for i in (3, 2, 1) if i != leader)
    others = [nodes[i].bootstrap for i in (1, 2, 3) if i != victim]
    nodes[victim].kill(signal.SIGKILL)
    try:
        def fenced():
            got = info(*others)
            return {b["node_id"]: b["fenced"] for b in got["brokers"]}.get(victim) is True and got

        got = wait_for(f"broker {victim} shown fenced", fenced)
        assert {b["node_id"]: b["fenced"] for b in got["brokers"]} == {i: i == victim for i in (1, 2, 3)}, got
        # Kafka's DescribeCluster v2 lists it only when fenced brokers are asked for; clients see two brokers.
        survivor = nodes[next(i for i in (1, 2, 3) if i != victim)]
        asked = kio_wire.describe_cluster(HOST, survivor.client_port, 2, include_fenced=True)
        assert {b.broker_id: b.is_fenced for b in asked.brokers} == {i: i == victim for i in (1, 2, 3)}, asked
        plain = kio_wire.describe_cluster(HOST, survivor.client_port, 2, include_fenced=False)
        assert sorted(b.broker_id for b in plain.brokers) == sorted(i for i in (1, 2, 3) if i != victim), plain
        assert set(survivor.metadata().brokers) == {i for i in (1, 2, 3) if i != victim}

        # A metadata change the dead voter cannot fetch: it falls behind, still a voter.
        survivor.admin().create_topics([NewTopic("while-fenced", 1, 1)], operation_timeout=30)["while-fenced"].result(60)

        def behind():
            q = info(*others)["quorum"]
            v = next(v for v in q["voters"] if v["node_id"] == victim)
            return v["lag"] is not None and v["lag"] > 0 and q

        q = wait_for(f"voter {victim} shown behind", behind)
        assert sorted(v["node_id"] for v in q["voters"]) == [1, 2, 3], q
    finally:
        nodes[victim].start()
    cluster.wait_brokers({1, 2, 3})

    def back():
        got = info(cluster.bootstrap)
        v = next(v for v in got["quorum"]["voters"] if v["node_id"] == victim)
        return not any(b["fenced"] for b in got["brokers"]) and v["lag"] == 0 and got

    wait_for(f"broker {victim} unfenced and caught up", back)


def test_describe_quorum_for_another_partition_is_unknown(cluster):
    node = cluster.nodes[2]
    for topics in ((("__cluster_metadata", (1,)),), (("orders", (0,)),)):
        r = kio_wire.describe_quorum(HOST, node.client_port, 2, topics=topics)
        [p] = r.topics[0].partitions
        assert int(p.error_code) == 3 and p.error_message, r  # UNKNOWN_TOPIC_OR_PARTITION
