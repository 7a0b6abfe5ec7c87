"""Dynamic voters (KIP-853) across processes: a quorum formatted with
`tributary storage format --standalone` on node 1 grows to four voters
through raw AddRaftVoter requests (each new controller formatted with
--no-initial-controllers, joined as an observer through
controller.quorum.bootstrap.servers) and loses its leader through
RemoveRaftVoter, while admin operations through every node keep
succeeding. Bad requests get Kafka's error codes. The voter set is read
from the membership each node logs (DescribeQuorum is not served yet).

No client library installed here sends AddRaftVoter (Kafka's own
kafka-metadata-quorum.sh is a Java tool, not installed): the requests are
built with kwire, the hand-written encoder of compat/python."""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
import time
import uuid

import pytest
from confluent_kafka.admin import NewTopic

from conftest import HOST, ROOT, Node, binary, free_ports, wait_for
from test_observer import membership

sys.path.insert(0, str(ROOT / "compat" / "python"))
import kwire  # noqa: E402

NONE = 0
REQUEST_TIMED_OUT = 7
INVALID_REQUEST = 42
INCONSISTENT_CLUSTER_ID = 104
DUPLICATE_VOTER = 126
VOTER_NOT_FOUND = 127


class DynamicCluster:
    """Four nodes with controller.quorum.bootstrap.servers = node 1; the
    Node helpers of conftest serve for processes, configs and clients."""

    def __init__(self, root):
        self.root = root
        ports = free_ports(8)
        self.nodes = {i: Node(self, i, ports[2 * (i - 1)], ports[2 * (i - 1) + 1]) for i in (1, 2, 3, 4)}
        self.voters = None  # Node.write_config reads it; replaced below
        self.overrides: dict[str, str] = {}  # Node.write_config reads it
        self.cluster_id = subprocess.run([str(binary()), "storage", "random-uuid"], capture_output=True, text=True,
                                         check=True).stdout.strip()

    def write(self, node: Node) -> None:
        node.write_config({"controller.quorum.bootstrap.servers": f"{HOST}:{self.nodes[1].controller_port}"})
        text = node.config.read_text().splitlines()
        node.config.write_text("".join(l + "\n" for l in text if not l.startswith("controller.quorum.voters=")))

    def format(self, node: Node, *flags: str) -> str:
        out = subprocess.run([str(binary()), "storage", "format", "--config", str(node.config),
                              "--cluster-id", self.cluster_id, *flags], capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        return out.stdout

    def logs(self) -> str:
        return "\n".join(f"--- node {i} ---\n{n.log.read_text(errors='replace')[-6000:]}"
                         for i, n in self.nodes.items() if n.log.exists())

    def stop(self) -> None:
        for n in self.nodes.values():
            if n.running():
                n.process.terminate()
        for n in self.nodes.values():
            if n.process is not None:
                try:
                    n.process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    n.process.kill()
                    n.process.wait()


@pytest.fixture(scope="module")
def dynamic(tmp_path_factory):
    c = DynamicCluster(tmp_path_factory.mktemp("dynamic"))
    yield c
    c.stop()
    shutil.rmtree(c.root, ignore_errors=True)


def voters(c: DynamicCluster, via: int) -> list[int] | None:
    m = membership(c.nodes[via])
    return m[0] if m else None


def add_voter(c: DynamicCluster, node_id: int, via: int, cluster_id: str | None = None,
              listeners: list[tuple[str, str, int]] | None = None) -> tuple[int, str | None]:
    target = c.nodes.get(node_id)
    if listeners is None:
        port = target.controller_port if target else free_ports(1)[0]
        listeners = [("CONTROLLER", HOST, port)]
    body = kwire.add_raft_voter_v0_body(cluster_id if cluster_id is not None else c.cluster_id, node_id,
                                        uuid.uuid4().bytes, listeners)
    return kwire.raft_voter_request(HOST, c.nodes[via].client_port, kwire.ADD_RAFT_VOTER, body)


def remove_voter(c: DynamicCluster, node_id: int, via: int) -> tuple[int, str | None]:
    body = kwire.remove_raft_voter_v0_body(c.cluster_id, node_id, uuid.uuid4().bytes)
    return kwire.raft_voter_request(HOST, c.nodes[via].client_port, kwire.REMOVE_RAFT_VOTER, body)


class AdminLoad:
    """Creates topics through every running node, one after another, until stopped."""

    def __init__(self, c: DynamicCluster, via: list[int]):
        self.c, self.via = c, via
        self.created: list[str] = []
        self.failures: list[str] = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        i = 0
        while not self.stopping.is_set():
            node = self.c.nodes[self.via[i % len(self.via)]]
            name = f"during-changes-{i}"
            try:
                node.admin().create_topics([NewTopic(name, 1, 1)], operation_timeout=30)[name].result(timeout=60)
                self.created.append(name)
            except Exception as e:  # noqa: BLE001 - every failure is reported
                self.failures.append(f"{name} via node {node.node_id}: {e!r}")
            i += 1
            time.sleep(0.05)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stopping.set()
        self.thread.join(timeout=120)


def test_a_standalone_quorum_grows_to_four_voters_and_loses_its_leader(dynamic):
    c = dynamic
    try:
        for node in c.nodes.values():
            c.write(node)
        assert "initial controllers 1@" in c.format(c.nodes[1], "--standalone")
        for i in (2, 3, 4):
            c.format(c.nodes[i], "--no-initial-controllers")
        assert (c.nodes[1].data_dir / "initial-controllers.properties").exists()
        assert not (c.nodes[2].data_dir / "initial-controllers.properties").exists()
        for i in (1, 2, 3):
            c.nodes[i].start()
        for i in (1, 2, 3):
            wait_for(f"node {i} to list brokers 1-3", lambda i=i: set(c.nodes[i].metadata().brokers) == {1, 2, 3})
        wait_for("one voter, two observers", lambda: membership(c.nodes[1]) == ([1], [2, 3]))

        # Every node advertises the voter APIs.
        with kwire.Connection(HOST, c.nodes[2].client_port) as conn:
            cid = conn.send_request(kwire.API_VERSIONS, 3, kwire.api_versions_v3_body("kwire", "1.0"), flexible=True)
            apis = kwire.parse_api_versions_v3(conn.recv_response(cid)).api_keys
        assert apis[kwire.ADD_RAFT_VOTER] == (0, 0) and apis[kwire.REMOVE_RAFT_VOTER] == (0, 0)

        with AdminLoad(c, via=[1, 2, 3]) as load:
            assert add_voter(c, 2, via=3) == (NONE, None)
            assert add_voter(c, 3, via=1) == (NONE, None)
            wait_for("voters 1-3 on every node", lambda: all(voters(c, i) == [1, 2, 3] for i in (1, 2, 3)))

            # A fourth controller starts, joins as an observer, becomes a voter.
            c.nodes[4].start()
            wait_for("node 4 to be a broker", lambda: set(c.nodes[1].metadata().brokers) == {1, 2, 3, 4})
            wait_for("node 4 an observer", lambda: membership(c.nodes[1]) == ([1, 2, 3], [4]))
            assert add_voter(c, 4, via=2) == (NONE, None)
            wait_for("voters 1-4 on every node", lambda: all(voters(c, i) == [1, 2, 3, 4] for i in (1, 2, 3, 4)))

            # Bad requests get Kafka's codes and change nothing.
            code, message = add_voter(c, 2, via=4)
            assert code == DUPLICATE_VOTER and "already" in message, (code, message)
            code, message = remove_voter(c, 9, via=1)
            assert code == VOTER_NOT_FOUND, (code, message)
            code, message = add_voter(c, 4, via=3, cluster_id="AAAAAAAAAAAAAAAAAAAAAA")
            assert code == INCONSISTENT_CLUSTER_ID, (code, message)
            code, message = add_voter(c, 5, via=3, listeners=[("PLAINTEXT", HOST, 9092)])
            assert code == INVALID_REQUEST and "CONTROLLER" in message, (code, message)
            # A node nobody runs never catches up; it is not left behind as an observer.
            code, message = add_voter(c, 7, via=1)
            assert code == REQUEST_TIMED_OUT and "catch up" in message, (code, message)

            # The leader is removed: it resigns, the other three elect one of themselves.
            leader = wait_for("a controller", lambda: c.nodes[1].metadata().controller_id)
            others = [i for i in (1, 2, 3, 4) if i != leader]
            assert remove_voter(c, leader, via=others[0]) == (NONE, None)
            wait_for("the voters without the old leader, on every node",
                     lambda: all(voters(c, i) == others for i in (1, 2, 3, 4)))
            wait_for("a new controller among the voters",
                     lambda: all(c.nodes[i].metadata().controller_id in others for i in (1, 2, 3, 4)))
            assert membership(c.nodes[others[0]]) == (others, [leader])
            created_before = len(load.created)
            wait_for("admin operations after the change", lambda: len(load.created) >= created_before + 3)

        assert not load.failures, load.failures
        assert len(load.created) >= 5, load.created
        # The removed voter still serves as a broker and knows every topic.
        for i in (1, 2, 3, 4):
            wait_for(f"node {i} to know every topic created during the changes",
                     lambda i=i: set(load.created) <= set(c.nodes[i].metadata().topics))
        c.nodes[leader].admin().create_topics([NewTopic("via-removed-voter", 1, 1)], operation_timeout=30)[
            "via-removed-voter"].result(timeout=60)
    except BaseException:
        print(c.logs())
        raise


def test_storage_format_checks_the_quorum_flags_as_kafka_does(tmp_path):
    client, controller = free_ports(2)
    config = tmp_path / "server.properties"
    base = (f"process.roles=broker,controller\nnode.id=5\nlisteners=PLAINTEXT://{HOST}:{client},CONTROLLER://{HOST}:{controller}\n"
            f"controller.listener.names=CONTROLLER\nlog.dirs={tmp_path}/data\n")
    cid = subprocess.run([str(binary()), "storage", "random-uuid"], capture_output=True, text=True, check=True).stdout.strip()

    def fmt(text: str, *flags: str):
        config.write_text(text)
        shutil.rmtree(tmp_path / "data", ignore_errors=True)
        return subprocess.run([str(binary()), "storage", "format", "-c", str(config), "-t", cid, *flags],
                              capture_output=True, text=True)

    dynamic = base + f"controller.quorum.bootstrap.servers={HOST}:{controller}\n"
    static = base + f"controller.quorum.voters=5@{HOST}:{controller}\n"
    missing = fmt(dynamic)
    assert missing.returncode == 1 and "--standalone" in missing.stderr and missing.stderr.count("\n") == 1
    assert fmt(static, "--standalone").returncode == 1
    both = fmt(dynamic, "--standalone", "--no-initial-controllers")
    assert both.returncode != 0
    bad = fmt(dynamic, "--initial-controllers", "5@nohost")
    assert bad.returncode == 1 and "--initial-controllers" in bad.stderr
    ok = fmt(dynamic, "--initial-controllers", f"5@{HOST}:{controller}:MvDxzVmcRsaTz33bUuRU6A,6@{HOST}:1")
    assert ok.returncode == 0, ok.stderr
    written = (tmp_path / "data" / "initial-controllers.properties").read_text()
    assert f"initial.controllers=5@{HOST}:{controller},6@{HOST}:1" in written
    assert fmt(dynamic, "-N").returncode == 0
    assert not (tmp_path / "data" / "initial-controllers.properties").exists()
