"""A three-node Tributary cluster seen through real clients: every client
sees three brokers; partitions led on each broker take produce and fetch;
a group coordinated on another node than the bootstrap works; admin
operations through any node are seen on every node; the quorum leader
killed with -9 is replaced and the node catches up after restart (also from
a snapshot: the snapshot interval is 25 entries); a killed broker is fenced
and leaves Metadata, and comes back after restart; bad configs refuse to
start with one line."""

from __future__ import annotations

import shutil
import signal
import subprocess
import uuid

import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import ConfigResource, NewTopic
from kafka import KafkaAdminClient, KafkaConsumer

from conftest import HOST, binary, free_ports, refused_start, wait_for


def create(node, name: str, partitions: int = 3) -> None:
    futures = node.admin().create_topics([NewTopic(name, partitions, 1)], operation_timeout=30)
    futures[name].result(timeout=60)


def offsets_partition(group: str, partitions: int) -> int:
    h = 0
    for ch in group:  # ASCII ids: one UTF-16 unit each
        h = (h * 31 + ord(ch)) & 0xFFFFFFFF
    return (h & 0x7FFFFFFF) % partitions


def leaders(node, topic: str) -> dict[int, int]:
    md = node.metadata()
    return {p: m.leader for p, m in md.topics[topic].partitions.items()}


def test_every_client_sees_three_brokers(cluster):
    for node in cluster.nodes.values():
        md = node.metadata()
        assert set(md.brokers) == {1, 2, 3}
        assert {(b.host, b.port) for b in md.brokers.values()} == {(HOST, n.client_port) for n in cluster.nodes.values()}
        assert md.controller_id in {1, 2, 3}
        assert md.cluster_id and len(md.cluster_id) == 22
    # kafka-python, bootstrapped on one node only.
    admin = KafkaAdminClient(bootstrap_servers=cluster.nodes[2].bootstrap, request_timeout_ms=10000)
    try:
        described = admin.describe_cluster()
        assert {b["broker_id"] for b in described["brokers"]} == {1, 2, 3}
        assert described["cluster_id"] == cluster.nodes[1].metadata().cluster_id
    finally:
        admin.close()
    # kcat
    if shutil.which("kcat"):
        out = subprocess.run(["kcat", "-b", cluster.nodes[3].bootstrap, "-L"], capture_output=True, text=True, timeout=30)
        assert " 3 brokers:" in out.stdout, out.stdout + out.stderr


def test_produce_and_consume_on_partitions_led_by_each_broker(cluster):
    create(cluster.nodes[2], "spread", 3)
    placed = wait_for("leaders on every broker", lambda: (l := leaders(cluster.nodes[1], "spread")) and set(l.values()) == {1, 2, 3} and l)
    producer = Producer({"bootstrap.servers": cluster.nodes[1].bootstrap, "acks": "all"})
    errors = []
    for i in range(30):
        producer.produce("spread", value=f"v{i}".encode(), partition=i % 3, on_delivery=lambda e, m: e and errors.append(e))
    assert producer.flush(30) == 0 and not errors, errors
    # kafka-python reads each partition from its leader, bootstrapped elsewhere.
    consumer = KafkaConsumer(bootstrap_servers=cluster.nodes[3].bootstrap, consumer_timeout_ms=15000, auto_offset_reset="earliest")
    try:
        consumer.assign([__import__("kafka").TopicPartition("spread", p) for p in placed])
        got: dict[int, list[bytes]] = {}
        for record in consumer:
            got.setdefault(record.partition, []).append(record.value)
            if sum(len(v) for v in got.values()) == 30:
                break
    finally:
        consumer.close()
    assert {p: len(v) for p, v in got.items()} == {0: 10, 1: 10, 2: 10}
    assert got[1][0] == b"v1"


def test_group_coordinated_on_another_node_than_the_bootstrap(cluster):
    create(cluster.nodes[1], "grouped", 3)
    bootstrap = cluster.nodes[1]
    # The first FindCoordinator creates __consumer_offsets over the brokers, as in Kafka.
    probe = Consumer({"bootstrap.servers": bootstrap.bootstrap, "group.id": "probe"})
    try:
        probe.committed([TopicPartition("grouped", 0)], timeout=30)
    finally:
        probe.close()
    offsets = wait_for("__consumer_offsets led everywhere",
                       lambda: (l := leaders(bootstrap, "__consumer_offsets")) and min(l.values()) > 0 and l)
    assert set(offsets.values()) == {1, 2, 3}, offsets
    # Kafka's placement of a group: abs(Java hashCode of the id) % partitions.
    group = next(g for g in (f"g-{i}" for i in range(200)) if offsets[offsets_partition(g, len(offsets))] != 1)
    coordinator = offsets[offsets_partition(group, len(offsets))]
    described = bootstrap.admin().describe_consumer_groups([group])[group].result(timeout=30)
    assert described.coordinator.id == coordinator
    producer = Producer({"bootstrap.servers": cluster.bootstrap})
    for i in range(9):
        producer.produce("grouped", value=b"m", partition=i % 3)
    assert producer.flush(30) == 0
    consumer = Consumer({"bootstrap.servers": bootstrap.bootstrap, "group.id": group, "auto.offset.reset": "earliest",
                         "enable.auto.commit": False})
    try:
        consumer.subscribe(["grouped"])
        seen = []

        def nine() -> bool:
            m = consumer.poll(0.5)
            if m is not None and not m.error():
                seen.append(m)
            return len(seen) >= 9

        wait_for("nine records through the group", nine, every=0)
        consumer.commit(asynchronous=False)
    finally:
        consumer.close()
    # The committed offsets are read back through another node.
    reader = Consumer({"bootstrap.servers": cluster.nodes[3].bootstrap, "group.id": group})
    try:
        committed = reader.committed([TopicPartition("grouped", p) for p in range(3)], timeout=30)
        assert sorted(tp.offset for tp in committed) == [3, 3, 3], (coordinator, committed)
    finally:
        reader.close()


def test_admin_through_any_node_is_seen_everywhere(cluster):
    create(cluster.nodes[1], "admin-any", 2)
    for node in cluster.nodes.values():
        wait_for(f"node {node.node_id} sees admin-any", lambda node=node: "admin-any" in node.metadata().topics)
    resource = ConfigResource(ConfigResource.Type.TOPIC, "admin-any", set_config={"retention.ms": "123456"})
    cluster.nodes[2].admin().alter_configs([resource])[resource].result(timeout=30)
    for node in cluster.nodes.values():
        described = node.admin().describe_configs([ConfigResource(ConfigResource.Type.TOPIC, "admin-any")])
        configs = next(iter(described.values())).result(timeout=30)
        assert configs["retention.ms"].value == "123456", node.node_id
    futures = cluster.nodes[3].admin().create_partitions([__import__("confluent_kafka").admin.NewPartitions("admin-any", 4)])
    next(iter(futures.values())).result(timeout=30)
    wait_for("4 partitions on node 1", lambda: len(cluster.nodes[1].metadata().topics["admin-any"].partitions) == 4)
    # A per-broker dynamic config for another broker id, set through node 1.
    broker3 = ConfigResource(ConfigResource.Type.BROKER, "3", set_config={"log.cleanup.policy": "delete"})
    cluster.nodes[1].admin().alter_configs([broker3])[broker3].result(timeout=30)
    deleted = cluster.nodes[3].admin().delete_topics(["admin-any"], operation_timeout=30)
    deleted["admin-any"].result(timeout=30)
    for node in cluster.nodes.values():
        wait_for(f"node {node.node_id} forgets admin-any", lambda node=node: "admin-any" not in node.metadata().topics)
    # The same name again: another topic id, created through another node.
    create(cluster.nodes[2], "admin-any", 1)
    with pytest.raises(Exception) as exists:
        create(cluster.nodes[3], "admin-any", 1)
    assert exists.value.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS


def test_replication_factor_above_the_brokers_is_refused(cluster):
    futures = cluster.nodes[1].admin().create_topics([NewTopic("too-many", 1, 4)], operation_timeout=30)
    with pytest.raises(Exception) as refused:
        futures["too-many"].result(timeout=30)
    error = refused.value.args[0]
    assert error.code() == KafkaError.INVALID_REPLICATION_FACTOR
    assert "only 3 broker(s) are registered" in error.str()


def test_killed_quorum_leader_is_replaced_and_catches_up_from_a_snapshot(cluster):
    leader = cluster.controller(via=1)
    survivors = [i for i in (1, 2, 3) if i != leader]
    cluster.nodes[leader].kill(signal.SIGKILL)
    wait_for("a new controller", lambda: cluster.controller(via=survivors[0]) in survivors)
    cluster.wait_brokers(set(survivors), via=survivors)
    # Enough admin operations to pass the snapshot interval (25 entries).
    names = [f"after-kill-{i}" for i in range(15)]
    for i, name in enumerate(names):
        create(cluster.nodes[survivors[i % 2]], name, 1)
    cluster.nodes[leader].start()
    cluster.wait_brokers({1, 2, 3})
    wait_for(f"node {leader} to know every topic", lambda: set(names) <= set(cluster.nodes[leader].metadata().topics))
    snapshots = list((cluster.nodes[survivors[0]].data_dir / "__cluster_metadata").glob("snapshot-*.snap"))
    assert snapshots, "the survivors wrote a metadata snapshot"
    # Admin operations through the restarted node work.
    create(cluster.nodes[leader], "after-restart", 1)


def test_killed_broker_is_fenced_and_comes_back(cluster):
    create(cluster.nodes[1], "fenced", 3)
    placed = wait_for("leaders on every broker", lambda: (l := leaders(cluster.nodes[1], "fenced")) and set(l.values()) == {1, 2, 3} and l)
    controller = cluster.controller(via=1)
    victim = next(i for i in (1, 2, 3) if i != controller)
    others = [i for i in (1, 2, 3) if i != victim]
    cluster.nodes[victim].kill(signal.SIGKILL)
    cluster.wait_brokers(set(others), via=others)
    orphan = next(p for p, b in placed.items() if b == victim)
    md = cluster.nodes[others[0]].metadata()
    assert md.topics["fenced"].partitions[orphan].leader == -1
    assert md.topics["fenced"].partitions[orphan].error.code() == KafkaError.LEADER_NOT_AVAILABLE
    cluster.nodes[victim].start()
    cluster.wait_brokers({1, 2, 3})
    wait_for("the partition led again", lambda: leaders(cluster.nodes[others[0]], "fenced")[orphan] == victim)


def test_sigterm_moves_leaderships_away_before_exit(cluster):
    create(cluster.nodes[1], "graceful", 3)
    wait_for("leaders", lambda: set(leaders(cluster.nodes[1], "graceful").values()) == {1, 2, 3})
    controller = cluster.controller(via=1)
    victim = next(i for i in (1, 2, 3) if i != controller)
    cluster.nodes[victim].kill(signal.SIGTERM)
    assert cluster.nodes[victim].process.returncode == 0
    others = [i for i in (1, 2, 3) if i != victim]
    # Gone from Metadata at once (unregistered), not after a session timeout.
    assert cluster.brokers_seen_by(others[0]) == set(others)
    cluster.nodes[victim].start()
    cluster.wait_brokers({1, 2, 3})


def test_bad_configs_refuse_to_start_with_one_line(cluster, tmp_path):
    c1, c2 = free_ports(2)
    base = (
        "process.roles=broker,controller\nnode.id=7\ncontroller.listener.names=CONTROLLER\n"
        f"listeners=PLAINTEXT://{HOST}:{c1},CONTROLLER://{HOST}:{c2}\nlog.dirs={tmp_path}/d\n"
    )
    cases = {
        "not in its own voters": (f"controller.quorum.voters=1@{HOST}:1\n", "not in controller.quorum.voters"),
        "duplicate node ids": (f"controller.quorum.voters=7@{HOST}:{c2},7@{HOST}:2\n", "listed twice"),
    }
    for name, (extra, expected) in cases.items():
        path = tmp_path / f"{name.replace(' ', '_')}.properties"
        path.write_text(base + extra)
        code, lines = refused_start(path)
        assert code != 0, name
        assert len(lines) == 1 and lines[0].startswith("error:") and expected in lines[0], (name, lines)

    # Voters that disagree with the running cluster's: its nodes refuse this one.
    node1 = cluster.nodes[1]
    path = tmp_path / "disagree.properties"
    path.write_text(base.replace("node.id=7", "node.id=1").replace(f"{tmp_path}/d", f"{tmp_path}/d1")
                    + f"controller.quorum.voters=1@{HOST}:{c2},2@{HOST}:{cluster.nodes[2].controller_port},"
                      f"3@{HOST}:{cluster.nodes[3].controller_port}\n")
    code, lines = refused_start(path, deadline=60)
    assert code != 0
    assert len(lines) == 1 and "controller.quorum.voters differs" in lines[0], lines
    assert node1.running()

    # A data directory of another cluster id: a stopped node's meta.properties rewritten.
    node = cluster.nodes[3]
    node.kill(signal.SIGTERM)
    meta = node.data_dir / "meta.properties"
    original = meta.read_text()
    other_id = subprocess.run([str(binary()), "storage", "random-uuid"], capture_output=True, text=True, check=True).stdout.strip()
    meta.write_text("\n".join(f"cluster.id={other_id}" if l.startswith("cluster.id=") else l for l in original.splitlines()) + "\n")
    code, lines = refused_start(node.config)
    assert code != 0
    assert len(lines) == 1 and other_id in lines[0] and "belongs to cluster" in lines[0], lines
    meta.write_text(original)
    node.start()
    cluster.wait_brokers({1, 2, 3})


def test_storage_format_and_random_uuid(tmp_path):
    out = subprocess.run([str(binary()), "storage", "random-uuid"], capture_output=True, text=True, check=True).stdout.strip()
    assert len(out) == 22 and uuid.UUID(bytes=__import__("base64").urlsafe_b64decode(out + "==")).bytes
    client, controller = free_ports(2)
    config = tmp_path / "server.properties"
    config.write_text(
        f"process.roles=broker,controller\nnode.id=4\ncontroller.quorum.voters=4@{HOST}:{controller}\n"
        f"listeners=PLAINTEXT://{HOST}:{client},CONTROLLER://{HOST}:{controller}\ncontroller.listener.names=CONTROLLER\n"
        f"log.dirs={tmp_path}/data\n"
    )
    run = lambda *extra: subprocess.run([str(binary()), "storage", "format", "--config", str(config), "--cluster-id", out, *extra],
                                        capture_output=True, text=True)
    first = run()
    assert first.returncode == 0, first.stderr
    assert f"cluster.id={out}" in (tmp_path / "data" / "meta.properties").read_text()
    again = run()
    assert again.returncode == 1 and "already formatted" in again.stderr
    assert run("--ignore-formatted").returncode == 0
    bad = subprocess.run([str(binary()), "storage", "format", "--config", str(config), "--cluster-id", "nope"], capture_output=True, text=True)
    assert bad.returncode == 1 and bad.stderr.count("\n") == 1
