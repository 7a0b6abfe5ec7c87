"""unclean.leader.election.enable on a cluster, through confluent-kafka:
when a partition's last in-sync replica dies, the controller leaves it
offline (leader -1) while the setting is false, the default, and elects a
live out-of-sync replica (the ISR becomes just that replica) where a topic
sets it true, or once the cluster-wide dynamic default is set true. An
explicit UNCLEAN ElectLeaders elects one whatever the setting. A producer
and a consumer work on the uncleanly elected leader.

The three controllers (1-3) must keep a majority up, so the replicas are
[4, 5, 1] with 4 and 5 broker-only nodes (quorum observers): 5 dies, then
1 (the ISR is 4 alone), then 4 (no leader); 1 comes back out of sync.
`tributary topic list --unavailable -o json` lists the offline partitions.

Every wait is a deadline on an observed outcome."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

from confluent_kafka import ElectionType, TopicPartition
from confluent_kafka.admin import NewTopic

from conftest import HOST, ROOT, binary, free_ports, wait_for
from kraft import Cluster, Node
from test_replication import consume_all, partition_meta, produce

sys.path.insert(0, str(ROOT / "compat" / "python"))
import kwire  # noqa: E402

ON, OFF, DEFAULT = "unclean-on", "unclean-off", "unclean-by-default"
TOPICS = [ON, OFF, DEFAULT]


def add_broker_only(cluster: Cluster, node_id: int) -> Node:
    client_port, = free_ports(1)
    node = Node(cluster, node_id, client_port, 0)
    node.write_config({"process.roles": "broker", "listeners": f"PLAINTEXT://{HOST}:{client_port}"})
    cluster.nodes[node_id] = node
    node.start()
    return node


def state(cluster, topic: str, via: list[int]) -> tuple[int, set[int]] | None:
    p = partition_meta(cluster, topic, via)
    return None if p is None else (p.leader, set(p.isrs))


def wait_state(cluster, topics, leader: int, isr: set[int], via: list[int]) -> None:
    for t in topics:
        wait_for(f"{t} led by {leader} with ISR {sorted(isr)}",
                 lambda t=t: state(cluster, t, via) == (leader, isr), deadline=120)


def set_cluster_default(bootstrap: str, key: str, value: str) -> int:
    """IncrementalAlterConfigs v1 for the cluster-wide broker default (an
    empty broker name, which the clients refuse to send); the error code."""
    host, port = kwire.parse_hostport(bootstrap)
    entry = kwire.compact_string(key) + kwire.i8(0) + kwire.compact_string(value) + kwire.EMPTY_TAGS
    resource = kwire.i8(4) + kwire.compact_string("") + kwire.compact_array([entry], lambda e: e) + kwire.EMPTY_TAGS
    body = kwire.compact_array([resource], lambda r: r) + kwire.boolean(False) + kwire.EMPTY_TAGS
    with kwire.Connection(host, port) as c:
        cid = c.send_request(44, 1, body, flexible=True)
        r = c.recv_response(cid, flexible_header=True)
    r.i32()

    def result(rr):
        code = rr.i16()
        rr.compact_string(), rr.i8(), rr.compact_string(), rr.tagged_fields()
        return code

    (code,) = r.compact_array(result)
    return code


def test_the_controller_elects_out_of_sync_replicas_only_where_allowed(tmp_path):
    binary()
    cluster = Cluster(tmp_path, {"auto.leader.rebalance.enable": "false"})
    try:
        cluster.start()
        add_broker_only(cluster, 4)
        add_broker_only(cluster, 5)
        wait_for("brokers 1-5 registered", lambda: cluster.brokers_seen_by(1) == {1, 2, 3, 4, 5}, deadline=90)

        admin = cluster.nodes[1].admin()
        configs = {ON: {"unclean.leader.election.enable": "true"}, OFF: {}, DEFAULT: {}}
        futures = admin.create_topics([
            NewTopic(t, num_partitions=1, replica_assignment=[[4, 5, 1]],
                     config={"min.insync.replicas": "1", **configs[t]}) for t in TOPICS])
        for f in futures.values():
            f.result(60)
        wait_state(cluster, TOPICS, 4, {4, 5, 1}, [1, 2, 3])
        written = {t: [f"{t}-{i}" for i in range(30)] for t in TOPICS}
        for t in TOPICS:
            assert produce(cluster.bootstrap, t, written[t]) == list(range(30))
        # Every replica holds the records before the ISR shrinks.
        wait_for("the followers caught up", lambda: all(
            (cluster.nodes[n].data_dir / f"{t}-0").exists() and
            sum(f.stat().st_size for f in (cluster.nodes[n].data_dir / f"{t}-0").glob("*.log")) > 0
            for n in (1, 5) for t in TOPICS))

        cluster.nodes[5].kill(signal.SIGKILL)
        wait_state(cluster, TOPICS, 4, {4, 1}, [1, 2, 3])
        cluster.nodes[1].kill(signal.SIGKILL)
        wait_state(cluster, TOPICS, 4, {4}, [2, 3])
        cluster.nodes[4].kill(signal.SIGKILL)
        # No live replica at all: every partition is offline, its ISR kept.
        wait_state(cluster, TOPICS, -1, {4}, [2, 3])
        bootstrap23 = ",".join(cluster.nodes[i].bootstrap for i in (2, 3))
        r = subprocess.run([str(binary()), "topic", "list", "--unavailable", "--brokers", bootstrap23, "-o", "json"],
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        offline = json.loads(r.stdout)["partitions"]
        assert sorted(p["topic"] for p in offline) == sorted(TOPICS) and all(p["offline"] for p in offline), offline

        # 1 comes back, out of sync: only the topic that allows it gets 1 as leader.
        cluster.nodes[1].start()
        wait_state(cluster, [ON], 1, {1}, [1, 2, 3])
        for t in (OFF, DEFAULT):
            assert state(cluster, t, [1, 2, 3]) == (-1, {4}), t

        bootstrap = ",".join(cluster.nodes[i].bootstrap for i in (1, 2, 3))
        assert consume_all(bootstrap, ON, 30) == written[ON]
        assert produce(bootstrap, ON, ["after"]) == [30]

        # An explicit unclean election does not ask the topic.
        result = cluster.nodes[2].admin().elect_leaders(ElectionType.UNCLEAN, [TopicPartition(OFF, 0)]).result(60)
        assert list(result.values()) == [None], result
        wait_state(cluster, [OFF], 1, {1}, [1, 2, 3])
        assert consume_all(bootstrap, OFF, 30) == written[OFF]

        # The cluster-wide default reaches the topic without an override.
        assert state(cluster, DEFAULT, [1, 2, 3]) == (-1, {4})
        assert set_cluster_default(cluster.nodes[2].bootstrap, "unclean.leader.election.enable", "true") == 0
        wait_state(cluster, [DEFAULT], 1, {1}, [1, 2, 3])
        assert consume_all(bootstrap, DEFAULT, 30) == written[DEFAULT]
    except BaseException:
        print(cluster.logs())
        raise
    finally:
        cluster.stop()
