"""`tributary start --nodes 3`: a local three-node KRaft cluster from one
command, on free ports in a temporary data directory. What it prints is
used as a person would: `cluster info` through the printed bootstrap shows
three brokers and three voters, confluent-kafka produces and consumes through
it, a schema is registered through the printed schema registry URL; `status`
and `logs` cover every node; `stop` and `destroy` leave no process and no
directory. Whatever happens, the fixture stops every process the run file or
the start's own output named."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import uuid
from pathlib import Path

import pytest
import requests
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

from conftest import binary, wait_for

RUN_FILE = "tributary-run.json"


def tributary(*args, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([str(binary()), *map(str, args)], capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=timeout)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A child of nobody here that exited but is not reaped yet is gone for our purposes.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


class LocalCluster:
    """The data directory of one `start --nodes 3` and every pid it named."""

    def __init__(self, root: Path):
        self.dir = root / "data"
        self.pids: set[int] = set()

    def remember(self, started: dict | None = None) -> None:
        if started:
            self.pids.add(started["pid"])
            self.pids.update(s["pid"] for s in started["services"] if s.get("pid"))
        run = self.dir / RUN_FILE
        if run.exists():
            try:
                data = json.loads(run.read_text())
            except ValueError:
                return
            self.pids.add(data["pid"])
            self.pids.update(s["pid"] for s in data["services"] if s.get("pid"))

    def close(self) -> None:
        self.remember()
        if self.dir.exists():
            tributary("stop", "--data-dir", self.dir, "--timeout", "20s", "--force", timeout=120)
        for pid in self.pids:
            if alive(pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
        if self.dir.exists():
            tributary("destroy", "--data-dir", self.dir, "--yes", timeout=120)


@pytest.fixture
def local_cluster(tmp_path):
    c = LocalCluster(tmp_path)
    yield c
    c.close()


def test_start_nodes_3_runs_a_cluster_that_stop_and_destroy_remove(local_cluster):
    d = local_cluster.dir
    r = tributary("start", "--nodes", "3", "--detach", "--data-dir", d, "--kafka-port", "0",
                  "--schema-registry-port", "0", "--rest-proxy-port", "0", "--timeout", "180s", "-o", "json",
                  timeout=240)
    events = [json.loads(line) for line in r.stdout.splitlines()]
    started = events[-1] if events else None
    local_cluster.remember(started)
    assert r.returncode == 0, r.stdout + r.stderr
    assert started["event"] == "started", events
    # Every node reported as it came up, then the registry and the proxy.
    ups = [(e["service"], e.get("node_id")) for e in events if e["event"] == "up"]
    assert sorted(ups[:3]) == [("broker", 1), ("broker", 2), ("broker", 3)], ups
    assert ups[3:] == [("schema-registry", None), ("rest-proxy", None)], ups

    # Every endpoint printed: three Kafka listeners, three controller listeners, one of each HTTP service.
    brokers = [s for s in started["services"] if s["service"] == "broker"]
    assert [b["node_id"] for b in brokers] == [1, 2, 3], started
    assert started["kafka"] == [b["url"] for b in brokers]
    assert len({b["pid"] for b in brokers} | {started["pid"]}) == 4, "each node is a process of its own"
    for b in brokers:
        assert Path(b["data_dir"]) == d / f"node-{b['node_id']}" and (d / f"node-{b['node_id']}").is_dir()
    bootstrap = ",".join(started["kafka"])
    registry = started["schema_registry"]
    assert registry and started["rest_proxy"]

    # `cluster info` through the printed bootstrap: the cluster as it is.
    info = tributary("cluster", "info", "--brokers", bootstrap, "--timeout", "30s", "-o", "json")
    assert info.returncode == 0, info.stderr
    got = json.loads(info.stdout)
    assert [(b["node_id"], f"{b['host']}:{b['port']}", b["fenced"]) for b in got["brokers"]] == \
        [(b["node_id"], b["url"], False) for b in brokers], got
    controllers = {b["node_id"]: b["controller"] for b in brokers}
    for b in got["brokers"]:
        assert [f"{e['host']}:{e['port']}" for e in b["endpoints"] if e["role"] == "controller"] == \
            [controllers[b["node_id"]]], b
    assert sorted(v["node_id"] for v in got["quorum"]["voters"]) == [1, 2, 3], got["quorum"]
    assert got["quorum"]["leader_id"] in (1, 2, 3) and got["quorum"]["observers"] == []
    assert got["cluster_id"] == started["cluster_id"]

    # confluent-kafka through the printed bootstrap: partitions on every node take records and give them back.
    topic = f"nodes-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    # Three replicas each (default.replication.factor): acks=all needs two in sync (min.insync.replicas).
    admin.create_topics([NewTopic(topic, 3)], operation_timeout=30)[topic].result(timeout=60)
    leaders = wait_for("a leader for every partition", lambda: (
        (t := admin.list_topics(topic, timeout=10).topics[topic]) and len(t.partitions) == 3
        and all(p.leader >= 0 for p in t.partitions.values()) and {p.leader for p in t.partitions.values()}))
    assert leaders == {1, 2, 3}, "the partitions spread over the three nodes"
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    errors = []
    for i in range(30):
        producer.produce(topic, value=f"v{i}".encode(), partition=i % 3,
                         on_delivery=lambda e, m: e and errors.append(e))
    assert producer.flush(60) == 0 and not errors, errors
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"g-{topic}", "enable.auto.commit": False})
    try:
        consumer.assign([TopicPartition(topic, p, 0) for p in range(3)])
        values: set[bytes] = set()

        def read_all():
            m = consumer.poll(1.0)
            if m is not None and m.error() is None:
                values.add(m.value())
            return len(values) == 30

        wait_for("every record read back", read_all, every=0)
        assert values == {f"v{i}".encode() for i in range(30)}
    finally:
        consumer.close()

    # A schema through the printed schema registry URL.
    schema = {"schema": json.dumps({"type": "record", "name": "Order", "fields": [{"name": "id", "type": "long"}]})}
    posted = requests.post(f"{registry}/subjects/{topic}-value/versions", json=schema,
                           headers={"Content-Type": "application/vnd.schemaregistry.v1+json"}, timeout=30)
    assert posted.status_code == 200, posted.text
    listed = requests.get(f"{registry}/subjects/{topic}-value/versions", timeout=30)
    assert listed.json() == [1], listed.text

    # Kafka's production defaults on a three-node cluster: three replicas of a topic created
    # without a replication factor and of the internal topics, acks=all needing two in sync.
    defaulted = f"defaulted-{uuid.uuid4().hex[:8]}"
    admin.create_topics([NewTopic(defaulted, 1)], operation_timeout=30)[defaulted].result(timeout=60)

    def replicas(name):
        t = admin.list_topics(name, timeout=10).topics.get(name)
        return t is not None and t.error is None and {len(p.replicas) for p in t.partitions.values()}

    assert wait_for(f"{defaulted} described", lambda: replicas(defaulted)) == {3}
    assert wait_for("_schemas described", lambda: replicas("_schemas")) == {3}
    assert wait_for("__consumer_offsets described", lambda: replicas("__consumer_offsets")) == {3}
    resource = ConfigResource("topic", defaulted)
    configs = admin.describe_configs([resource])[resource].result(timeout=30)
    assert configs["min.insync.replicas"].value == "2"

    # status and logs cover every node.
    st = tributary("status", "--data-dir", d, "-o", "json")
    assert st.returncode == 0, st.stdout + st.stderr
    status = json.loads(st.stdout)
    assert [(s["service"], s.get("node_id"), s["state"]) for s in status["services"]] == \
        [("broker", 1, "up"), ("broker", 2, "up"), ("broker", 3, "up"),
         ("schema-registry", None, "up"), ("rest-proxy", None, "up")], status
    assert [s["pid"] for s in status["services"][:3]] == [b["pid"] for b in brokers]
    logs = tributary("logs", "broker", "--data-dir", d, "-o", "json")
    tags = {json.loads(line)["service"] for line in logs.stdout.splitlines()}
    assert {"broker-1", "broker-2", "broker-3"} <= tags <= {"broker", "broker-1", "broker-2", "broker-3"}, tags

    # stop: no process left, every port closed; destroy: no directory left.
    stop = tributary("stop", "--data-dir", d, "-o", "json")
    assert stop.returncode == 0 and json.loads(stop.stdout)["was_running"] is True, stop.stdout + stop.stderr
    wait_for("every process gone", lambda: not [p for p in local_cluster.pids if alive(p)], deadline=60)
    down = json.loads(tributary("status", "--data-dir", d, "-o", "json").stdout)
    assert not down["running"] and {s["state"] for s in down["services"]} == {"down"}, down
    destroyed = tributary("destroy", "--data-dir", d, "--yes", "-o", "json")
    assert destroyed.returncode == 0 and json.loads(destroyed.stdout)["deleted"] is True, destroyed.stdout
    assert not d.exists()


def test_a_data_dir_keeps_its_node_count(local_cluster, tmp_path):
    single = tmp_path / "single"
    single.mkdir()
    (single / "tributary.properties").write_text("tributary.start.kafka.port=0\n")
    r = tributary("start", "--nodes", "3", "--data-dir", single, "--kafka-port", "0", "--no-schema-registry",
                  "--no-rest-proxy", timeout=60)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "holds a single node" in r.stderr and "--nodes 3" in r.stderr, r.stderr
    assert not (single / "node-1").exists()
