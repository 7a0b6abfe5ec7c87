"""Three `tributary broker` processes as a KRaft cluster on 127.0.0.1, for the
cluster tests (conftest.py) and for running other suites against a cluster
(scripts/with-cluster). Each node is started from a generated KRaft
server.properties (process.roles = broker,controller) with its own free
client and controller ports. With `own_addresses=True` node i listens (client
and controller listeners) on 127.0.0.(i+1) instead, so a test in a network
namespace of its own can cut the nodes apart by address (nemesis.py); clients
keep leaving from 127.0.0.1, which no node uses then.

TRIBUTARY_BIN names the binary (default: target/debug/tributary).
Every wait is a deadline on an observed outcome, never a fixed sleep.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

from confluent_kafka.admin import AdminClient

HOST = "127.0.0.1"
ROOT = Path(__file__).resolve().parents[2]
DEADLINE = 60.0


def binary() -> Path:
    """The broker binary: TRIBUTARY_BIN, else target/debug/tributary."""
    return Path(os.environ.get("TRIBUTARY_BIN", ROOT / "target" / "debug" / "tributary"))


def node_host(node_id: int) -> str:
    """The address node `node_id` listens on when nodes have addresses of their own."""
    return f"127.0.0.{node_id + 1}"


def free_ports(n: int, host: str = HOST) -> list[int]:
    sockets = []
    for _ in range(n):
        s = socket.socket()
        s.bind((host, 0))
        sockets.append(s)
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def wait_for(what: str, check, deadline: float = DEADLINE, every: float = 0.2):
    """Calls `check` until it returns a truthy value; fails after `deadline` seconds."""
    end = time.monotonic() + deadline
    last = None
    while time.monotonic() < end:
        try:
            value = check()
            if value:
                return value
            last = value
        except Exception as e:  # noqa: BLE001 - the last failure is reported
            last = e
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}")


class Node:
    def __init__(self, cluster: "Cluster", node_id: int, client_port: int, controller_port: int, host: str = HOST):
        self.cluster = cluster
        self.node_id = node_id
        self.host = host
        self.client_port = client_port
        self.controller_port = controller_port
        self.data_dir = cluster.root / f"data{node_id}"
        self.config = cluster.root / f"node{node_id}.properties"
        self.log = cluster.root / f"node{node_id}.log"
        self.process: subprocess.Popen | None = None
        self._admin: AdminClient | None = None

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.client_port}"

    def write_config(self, extra: dict[str, str] | None = None) -> None:
        props = {
            "process.roles": "broker,controller",
            "node.id": str(self.node_id),
            "controller.quorum.voters": self.cluster.voters,
            "listeners": f"PLAINTEXT://{self.host}:{self.client_port},CONTROLLER://{self.host}:{self.controller_port}",
            "controller.listener.names": "CONTROLLER",
            "log.dirs": str(self.data_dir),
            "num.partitions": "3",
            "offsets.topic.num.partitions": "6",
            "offsets.topic.replication.factor": "1",
            "broker.heartbeat.interval.ms": "500",
            "broker.session.timeout.ms": "4000",
            "metadata.log.max.snapshot.interval.entries": "25",
            "group.initial.rebalance.delay.ms": "0",
            # Tests that move leaders check where they went; a rebalance
            # 300 s into a long module would move them back (the tests of
            # the rebalance itself switch it on).
            "auto.leader.rebalance.enable": "false",
        }
        # An override may name the node: "{node_id}" in its value is this node's id.
        props.update({k: v if v is None else v.replace("{node_id}", str(self.node_id))
                      for k, v in self.cluster.overrides.items()})
        props.update(extra or {})
        # An override of None leaves the key out: the broker's own default applies.
        self.config.write_text("".join(f"{k}={v}\n" for k, v in props.items() if v is not None))

    def start(self) -> None:
        assert self.process is None or self.process.poll() is not None, "already running"
        log = open(self.log, "ab")
        self.process = subprocess.Popen(
            [str(binary()), "broker", "--config", str(self.config)],
            stdout=log,
            stderr=log,
            env={**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "info")},
        )
        log.close()

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(timeout=DEADLINE)

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def admin(self) -> AdminClient:
        """One admin client per node, kept (a dropped client cancels its futures)."""
        if self._admin is None:
            self._admin = AdminClient({"bootstrap.servers": self.bootstrap, "socket.timeout.ms": 5000})
        return self._admin

    def metadata(self):
        """Metadata as this node alone answers it (only its own address is bootstrapped)."""
        return self.admin().list_topics(timeout=5)


class Cluster:
    def __init__(self, root: Path, overrides: dict[str, str] | None = None, own_addresses: bool = False):
        """Three nodes whose data lives under `root`; `overrides` are broker
        settings every node's server.properties gets on top of the defaults
        (None leaves a key out; "{node_id}" in a value becomes each node's
        id, e.g. broker.rack=RACK{node_id}). `own_addresses`: node i on
        127.0.0.(i+1) (node_host) rather than all on 127.0.0.1."""
        self.root = root
        self.overrides = dict(overrides or {})
        hosts = {i: node_host(i) if own_addresses else HOST for i in (1, 2, 3)}
        # All ports of one host are picked at once, so no two nodes get the same.
        ports = free_ports(6) if not own_addresses else [p for i in (1, 2, 3) for p in free_ports(2, hosts[i])]
        self.nodes = {i: Node(self, i, ports[2 * (i - 1)], ports[2 * (i - 1) + 1], hosts[i]) for i in (1, 2, 3)}
        self.voters = ",".join(f"{i}@{n.host}:{n.controller_port}" for i, n in self.nodes.items())

    @property
    def bootstrap(self) -> str:
        return ",".join(n.bootstrap for n in self.nodes.values())

    def start(self) -> None:
        for n in self.nodes.values():
            n.write_config()
            n.start()
        self.wait_brokers({1, 2, 3})

    def brokers_seen_by(self, node_id: int) -> set[int]:
        return set(self.nodes[node_id].metadata().brokers)

    def wait_brokers(self, expected: set[int], via: list[int] | None = None) -> None:
        for node_id in via or sorted(expected):
            wait_for(
                f"node {node_id} to report brokers {sorted(expected)}",
                lambda node_id=node_id: self.brokers_seen_by(node_id) == expected,
            )

    def controller(self, via: int) -> int:
        return self.nodes[via].metadata().controller_id

    def logs(self) -> str:
        return "\n".join(f"--- node {i} ---\n{n.log.read_text(errors='replace')[-4000:]}" for i, n in self.nodes.items() if n.log.exists())

    def stop(self) -> None:
        for n in self.nodes.values():
            n._admin = None  # its handle would keep reconnecting to stopped nodes
        for n in self.nodes.values():
            if n.running():
                n.process.send_signal(signal.SIGCONT)  # a paused node would never see its SIGTERM
                n.process.send_signal(signal.SIGTERM)
        for n in self.nodes.values():
            if n.process is not None:
                try:
                    n.process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    n.process.kill()
                    n.process.wait()


class Service:
    """A `tributary schema-registry` or `tributary rest-proxy` process that
    runs next to one node, as on a host of a three-host cluster: it names
    its own node first in its bootstrap list, then the others."""

    def __init__(self, cluster: "Cluster", kind: str, node_id: int, extra: list[str] | None = None):
        self.cluster = cluster
        self.kind = kind
        self.node_id = node_id
        self.port = free_ports(1)[0]
        self.extra = list(extra or [])
        self.log = cluster.root / f"{kind}{node_id}.log"
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def bootstrap(self) -> str:
        first = self.cluster.nodes[self.node_id]
        rest = [n for i, n in sorted(self.cluster.nodes.items()) if i != self.node_id]
        return ",".join(n.bootstrap for n in [first, *rest])

    def start(self) -> None:
        if self.kind == "schema-registry":
            args = ["schema-registry", "--bootstrap-servers", self.bootstrap(), "--listeners", self.url,
                    "--override", f"host.name={HOST}"]
        else:
            args = ["rest-proxy", "--bootstrap-servers", self.bootstrap(), "--host", HOST, "--port", str(self.port)]
        log = open(self.log, "ab")
        self.process = subprocess.Popen([str(binary()), *args, *self.extra], stdout=log, stderr=log,
                                        env={**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "info")})
        log.close()

    def wait_up(self, path: str, deadline: float = 120.0) -> None:
        import urllib.request

        def up():
            assert self.process is not None and self.process.poll() is None, self.log.read_text(errors="replace")[-2000:]
            with urllib.request.urlopen(self.url + path, timeout=5) as r:
                return r.status == 200

        wait_for(f"{self.kind} next to node {self.node_id}", up, deadline=deadline)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(timeout=DEADLINE)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
