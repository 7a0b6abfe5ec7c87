#!/usr/bin/env python3
"""Metadata through the quorum: how fast topics are created on a 3-node
Tributary cluster next to a single node, and how long the cluster takes to
commit an admin operation again after its quorum leader is killed.

Every node is a `tributary broker --config node.properties` process on
127.0.0.1 with free ports, from a generated KRaft server.properties
(process.roles=broker,controller) that sets only what a cluster needs
(roles, node.id, controller.quorum.voters, listeners, controller listener,
log.dirs): the quorum's election and heartbeat timeouts and the broker's
heartbeat and session timeouts are Tributary's defaults. Everything runs on
one machine, so the numbers include the clients' CPU.

Topic creation
  Sets of --topics topics of --partitions partitions, each created with its
  own confluent-kafka AdminClient (bootstrapped with every node of its
  quorum) in CreateTopics requests of --batch topics, one request at a time:
    single       one `tributary broker` whose quorum has one voter (itself):
                 the same code path without replication; replication
                 factor 1;
    cluster      the 3-node cluster (after the failover rounds),
                 replication factor 1: the same requests as the single
                 node, so cluster / single node is the ratio to read;
    cluster_rf3  the same cluster, replication factor 3 (every node hosts
                 every partition; --no-rf3 skips it).
  The single node and the cluster run side by side and the sets take turns,
  one request each (the order rotating every turn), so a machine that gets
  busier or quieter meanwhile weighs on every set alike. A set's clock is
  the sum of its own requests:
    acked     to the answer of its last request;
    visible   plus, right after its last request, the wait until every node,
              asked alone, lists every topic of the set with all its
              partitions and a leader for each: a Metadata v1 request on a
              raw socket to that node's port (an AdminClient's list_topics
              may be answered by any broker it has learned of), polled every
              50 ms.

Quorum leader failover (on the fresh cluster, before its topic runs: a
restarted node that hosts thousands of partitions takes long to rejoin)
  Each of --kills rounds: find the quorum leader (all three nodes list all
  three brokers and name the same controller id, which Tributary sets to
  the quorum leader when that is a live broker; a CreateTopics has just
  committed), wait a random 0-1 s (so the kill falls anywhere in the
  heartbeat cycle), kill -9 it, and measure from just before the kill to
  the first CreateTopics sent to a surviving node that succeeds. Each
  survivor gets its own CreateTopics v2 on a raw socket, re-sent 20 ms
  after every failure (a client library cannot pin a request to one node:
  librdkafka sends CreateTopics to the controller its metadata names). The
  node that receives it forwards it to the quorum leader, so the first
  success is when the quorum commits again. Beside it, to explain it:
    elected   the first survivor log line after the kill saying a vote is
              committed (openraft's "vote is changing from ... to
              T<term>-N<id>:committed"): the new leader's election;
    named     when a survivor's Metadata first names the new leader as the
              controller (each survivor polled every 20 ms);
  and the victim's own log confirms it was the leader (its last committed
  vote before the kill names it). Then the killed node is restarted on its
  data directory and the round ends once every node lists all three
  brokers and names the same controller, and the restarted node lists the
  last topic created. The summary gives the median and max over the rounds
  and whether they are within --goal-s.

  One more kill (--client-round S; not in the summary) adds confluent-kafka
  clients: a new AdminClient per attempt, bootstrapped with the survivors
  (--attempt-timeout each), and two long-lived ones that created a topic
  before the kill: one with librdkafka's defaults, one with
  topic.metadata.refresh.interval.ms=1000, watched for up to S seconds.
  They stay out of the measured rounds because librdkafka, while an admin
  request waits for a controller that is down, reconnects to it in a busy
  loop that takes about a core.

One JSON object on stdout; progress on stderr. Every process started here
is stopped (SIGTERM, SIGKILL after 10 s) and the work directory deleted on
exit, on an error, on Ctrl-C and on SIGTERM; the brokers also get SIGKILL
from the kernel if this script dies without cleaning up (PR_SET_PDEATHSIG).

    python3 bench/metadata_bench.py --tributary-bin target/release/tributary
    python3 bench/metadata_bench.py --tributary-bin target/debug/tributary --topics 200 --kills 3
"""

from __future__ import annotations

import argparse
import ctypes
import datetime as dt
import json
import os
import random
import re
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
import uuid

HOST = "127.0.0.1"
STOP_GRACE_S = 10.0
READY_TIMEOUT_S = 90.0
VISIBLE_TIMEOUT_S = 120.0
FAILOVER_LIMIT_S = 60.0
REJOIN_TIMEOUT_S = 90.0
VISIBLE_POLL_S = 0.05
WATCH_POLL_S = 0.02
RETRY_PAUSE_S = 0.02

# Kafka error codes the harness may see (names for the report).
ERROR_NAMES = {
    0: "NONE", 5: "LEADER_NOT_AVAILABLE", 7: "REQUEST_TIMED_OUT", 15: "COORDINATOR_NOT_AVAILABLE",
    36: "TOPIC_ALREADY_EXISTS", 37: "INVALID_PARTITIONS", 38: "INVALID_REPLICATION_FACTOR",
    41: "NOT_CONTROLLER", 42: "INVALID_REQUEST", -1: "UNKNOWN_SERVER_ERROR",
}

# openraft's log line when a node learns a vote is committed (a leader is established).
VOTE_COMMITTED = re.compile(r"^(\S+Z)\s+INFO vote is changing from \S+ to T(\d+)-N(\d+):committed")
FENCING = re.compile(r"^(\S+Z)\s+WARN no heartbeat within broker\.session\.timeout\.ms: fencing broker=(\d+)")


def log(*a):
    print("[metadata_bench]", *a, file=sys.stderr, flush=True)


def free_ports(n: int) -> list[int]:
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind((HOST, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def summary(values: list[float]) -> dict:
    if not values:
        return {"n": 0}
    return {"n": len(values), "median": round(statistics.median(values), 3), "min": round(min(values), 3),
            "max": round(max(values), 3)}


# --------------------------------------------------------------------------- Kafka wire (raw, one node)


class WireError(Exception):
    pass


class Reader:
    def __init__(self, data: bytes):
        self.data = data
        self.off = 0

    def take(self, fmt: str):
        (v,) = struct.unpack_from(fmt, self.data, self.off)
        self.off += struct.calcsize(fmt)
        return v

    def string(self) -> str | None:
        n = self.take(">h")
        if n < 0:
            return None
        s = self.data[self.off:self.off + n].decode("utf-8", "replace")
        self.off += n
        return s

    def array(self, item) -> list:
        n = self.take(">i")
        return [item() for _ in range(max(n, 0))]


def _string(s: str) -> bytes:
    b = s.encode()
    return struct.pack(">h", len(b)) + b


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise WireError("connection closed")
        buf += chunk
    return bytes(buf)


def round_trip(port: int, api_key: int, version: int, body: bytes, timeout: float) -> Reader:
    """One request on a new connection to one node; the response body after the correlation id."""
    header = struct.pack(">hhi", api_key, version, 7) + _string("metadata-bench")
    req = header + body
    try:
        with socket.create_connection((HOST, port), timeout=timeout) as s:
            s.settimeout(timeout)
            s.sendall(struct.pack(">i", len(req)) + req)
            (size,) = struct.unpack(">i", _recv_exact(s, 4))
            data = _recv_exact(s, size)
    except OSError as e:
        raise WireError(f"{type(e).__name__}: {e}") from None
    r = Reader(data)
    if r.take(">i") != 7:
        raise WireError("correlation id mismatch")
    return r


def metadata(port: int, topics: list[str] | None = None, timeout: float = 5.0) -> dict:
    """Metadata v1 from this node alone: brokers, controller id and, per topic, its error and the leader
    of each partition. topics=None asks for every topic, [] for none."""
    body = struct.pack(">i", -1) if topics is None else struct.pack(">i", len(topics)) + b"".join(map(_string, topics))
    r = round_trip(port, 3, 1, body, timeout)
    brokers = {}
    for _ in range(r.take(">i")):
        node_id = r.take(">i")
        host = r.string()
        bport = r.take(">i")
        r.string()  # rack
        brokers[node_id] = f"{host}:{bport}"
    controller = r.take(">i")
    out_topics = {}
    for _ in range(r.take(">i")):
        err = r.take(">h")
        name = r.string()
        r.take(">b")  # is_internal
        parts = {}
        for _ in range(r.take(">i")):
            r.take(">h")  # partition error
            index = r.take(">i")
            leader = r.take(">i")
            r.array(lambda: r.take(">i"))  # replicas
            r.array(lambda: r.take(">i"))  # isr
            parts[index] = leader
        out_topics[name] = {"error": err, "partitions": parts}
    return {"brokers": brokers, "controller_id": controller, "topics": out_topics}


def create_topics_raw(port: int, names: list[str], partitions: int, rf: int, timeout_ms: int) -> dict:
    """CreateTopics v2 sent to this node (it forwards to the quorum leader itself): name -> (code, message)."""
    body = struct.pack(">i", len(names))
    for n in names:
        body += _string(n) + struct.pack(">ihii", partitions, rf, 0, 0)
    body += struct.pack(">ib", timeout_ms, 0)
    r = round_trip(port, 19, 2, body, timeout_ms / 1000.0 + 5.0)
    r.take(">i")  # throttle
    out = {}
    for _ in range(r.take(">i")):
        name = r.string()
        code = r.take(">h")
        out[name] = (code, r.string())
    return out


# --------------------------------------------------------------------------- processes

_libc = ctypes.CDLL(None, use_errno=True)
PR_SET_PDEATHSIG = 1


def _die_with_parent():  # runs in the child between fork and exec
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


LIVE: list["Node"] = []


class Node:
    """One `tributary broker` process of a quorum, with its properties file, data directory and log."""

    def __init__(self, binary: str, work: str, name: str, node_id: int, client_port: int,
                 controller_port: int | None):
        self.binary = binary
        self.node_id = node_id
        self.port = client_port
        self.controller_port = controller_port
        self.data_dir = os.path.join(work, f"{name}-data{node_id}")
        self.config = os.path.join(work, f"{name}-node{node_id}.properties")
        self.log_path = os.path.join(work, f"{name}-node{node_id}.log")
        self.proc: subprocess.Popen | None = None

    @property
    def bootstrap(self) -> str:
        return f"{HOST}:{self.port}"

    def write_config(self, voters: str) -> dict:
        """Its server.properties: broker and controller, or a broker only (process.roles=broker, learning
        the metadata from the controllers of `voters`) when it has no controller port."""
        voter = self.controller_port is not None
        listeners = f"PLAINTEXT://{HOST}:{self.port}" + (f",CONTROLLER://{HOST}:{self.controller_port}" if voter else "")
        props = {
            "process.roles": "broker,controller" if voter else "broker",
            "node.id": str(self.node_id),
            "controller.quorum.voters": voters,
            "listeners": listeners,
            "controller.listener.names": "CONTROLLER",
            "log.dirs": self.data_dir,
        }
        with open(self.config, "w") as f:
            f.write("".join(f"{k}={v}\n" for k, v in props.items()))
        return props

    def start(self) -> None:
        assert not self.running(), "already running"
        env = {**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "info")}
        with open(self.log_path, "ab") as out:
            self.proc = subprocess.Popen([self.binary, "broker", "--config", self.config], stdout=out,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                         preexec_fn=_die_with_parent)
        if self not in LIVE:
            LIVE.append(self)

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill9(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if self in LIVE:
            LIVE.remove(self)

    def log_size(self) -> int:
        try:
            return os.path.getsize(self.log_path)
        except OSError:
            return 0

    def logged_since(self, offset: int, text: str) -> bool:
        """Whether the log has a line containing `text` after byte `offset`."""
        try:
            with open(self.log_path, "rb") as f:
                f.seek(offset)
                return text.encode() in f.read()
        except OSError:
            return False

    def log_tail(self, n: int = 15) -> str:
        try:
            with open(self.log_path, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""


def stop_all() -> None:
    for n in list(LIVE):
        if n.running():
            n.proc.send_signal(signal.SIGTERM)
    for n in list(LIVE):
        n.stop()


class Quorum:
    """n nodes, every one a voter (n=1: a single node whose quorum is itself)."""

    def __init__(self, binary: str, work: str, name: str, n: int):
        ports = free_ports(2 * n)
        self.nodes = {i: Node(binary, work, name, i, ports[2 * (i - 1)], ports[2 * (i - 1) + 1])
                      for i in range(1, n + 1)}
        self.voters = ",".join(f"{i}@{HOST}:{nd.controller_port}" for i, nd in self.nodes.items())
        self.props = {}
        self.logs = LogEvents()

    @property
    def ids(self) -> set[int]:
        return set(self.nodes)

    def bootstrap(self, exclude: int | None = None) -> str:
        return ",".join(nd.bootstrap for i, nd in self.nodes.items() if i != exclude)

    def start(self) -> None:
        for nd in self.nodes.values():
            self.props = nd.write_config(self.voters)
            nd.start()

    def check_alive(self) -> None:
        dead = [nd for nd in self.nodes.values() if not nd.running()]
        if dead:
            nd = dead[0]
            raise RuntimeError(f"node {nd.node_id} exited with status {nd.proc.returncode}; log tail:\n{nd.log_tail()}")

    def agreement(self, expected: set[int]) -> int | None:
        """The controller id every node names, if every node lists exactly `expected` as its brokers."""
        ctl = set()
        for nd in self.nodes.values():
            md = metadata(nd.port, [])
            if set(md["brokers"]) != expected:
                return None
            ctl.add(md["controller_id"])
        return ctl.pop() if len(ctl) == 1 and next(iter(ctl)) in expected else None

    def shown_props(self) -> dict:
        """The last node's server.properties with its ports and directory as placeholders."""
        placeholders = {
            "controller.quorum.voters": ",".join(f"{i}@{HOST}:CPORT{i}" for i in self.nodes),
            "listeners": f"PLAINTEXT://{HOST}:PORT,CONTROLLER://{HOST}:CPORT",
            "log.dirs": "DATA_DIR",
        }
        return {k: placeholders.get(k, v) for k, v in self.props.items()}


def wait_for(what: str, check, timeout: float, every: float = 0.05, alive=None):
    """Calls check() until it returns a truthy value; raises after timeout with the last result."""
    end = time.monotonic() + timeout
    last = None
    while True:
        if alive is not None:
            alive()
        try:
            v = check()
            if v:
                return v
            last = v
        except Exception as e:  # noqa: BLE001 - the last failure is reported
            last = f"{type(e).__name__}: {e}"
        if time.monotonic() > end:
            raise RuntimeError(f"timed out after {timeout:g} s waiting for {what}; last: {last!r}")
        time.sleep(every)


def admin_client(bootstrap: str, quiet: bool = False):
    """An AdminClient; quiet ones log nothing (after a kill librdkafka logs every refused connect)."""
    from confluent_kafka.admin import AdminClient

    return AdminClient({"bootstrap.servers": bootstrap, "log_level": 0 if quiet else 3})


def create_one(client, name: str, timeout: float, exists_ok: bool = False) -> None:
    """One CreateTopics of a one-partition topic; raises unless it succeeds (or, with exists_ok, the topic
    exists: an earlier attempt whose answer was lost may have created it)."""
    from confluent_kafka import KafkaError
    from confluent_kafka.admin import NewTopic

    fs = client.create_topics([NewTopic(name, 1, 1)], operation_timeout=timeout, request_timeout=timeout)
    try:
        fs[name].result(timeout=timeout + 5)
    except Exception as e:  # noqa: BLE001 - re-raised unless the topic exists
        err = e.args[0] if e.args else None
        if not (exists_ok and isinstance(err, KafkaError) and err.code() == KafkaError.TOPIC_ALREADY_EXISTS):
            raise


def wait_ready(q: Quorum, prefix: str) -> dict:
    """Every node lists every broker and names the same controller, and a CreateTopics commits."""
    t0 = time.perf_counter()
    leader = wait_for(f"every node to list brokers {sorted(q.ids)} and agree on a controller",
                      lambda: q.agreement(q.ids), READY_TIMEOUT_S, 0.1, q.check_alive)
    client = admin_client(q.bootstrap(), quiet=True)
    warm = f"{prefix}warm"
    wait_for("a first CreateTopics to succeed", lambda: create_one(client, warm, 10.0, True) or True,
             READY_TIMEOUT_S, 0.5, q.check_alive)
    return {"ready_s": round(time.perf_counter() - t0, 2), "leader": leader}


# --------------------------------------------------------------------------- topic creation


def all_visible(md: dict, names: list[str], partitions: int) -> int:
    """How many of names this Metadata answer shows complete (no error, every partition with a leader)."""
    n = 0
    for name in names:
        t = md["topics"].get(name)
        if t and t["error"] == 0 and len(t["partitions"]) == partitions and all(
                leader >= 0 for leader in t["partitions"].values()):
            n += 1
    return n


class CreateRun:
    """One set of topics created on one quorum, a request at a time; its clock runs only during its own
    requests and its final wait for every node to list them (see create_interleaved)."""

    def __init__(self, q: Quorum, label: str, topics: int, partitions: int, rf: int, batch: int, prefix: str):
        self.q = q
        self.label = label
        self.partitions = partitions
        self.rf = rf
        self.names = [f"{prefix}{label}-{i:04d}" for i in range(topics)]
        self.chunks = [self.names[i:i + batch] for i in range(0, topics, batch)]
        self.batch = batch
        self.client = admin_client(q.bootstrap())
        self.client.list_topics(timeout=10)  # connections and metadata off the clock
        self.request_s: list[float] = []
        self.visible_lag_s: float | None = None
        self.visible_per_node_lag_s: dict[int, float] = {}

    def send(self, i: int) -> None:
        """CreateTopics for chunk i; returns once every topic in it has its answer."""
        from confluent_kafka.admin import NewTopic

        chunk = self.chunks[i]
        errors: dict[str, list[str]] = {}
        t0 = time.perf_counter()
        fs = self.client.create_topics([NewTopic(n, self.partitions, self.rf) for n in chunk], operation_timeout=60,
                                       request_timeout=120)
        for n, f in fs.items():
            try:
                f.result(timeout=180)
            except Exception as e:  # noqa: BLE001 - counted and reported
                errors.setdefault(kafka_error(e)[1], []).append(n)
        self.request_s.append(time.perf_counter() - t0)
        if errors:
            first = next(iter(errors.items()))
            raise RuntimeError(f"{self.label}: {sum(map(len, errors.values()))} of {len(chunk)} topics failed; "
                               f"first: {first[0]} ({first[1][0]})")
        self.q.check_alive()

    def wait_visible(self) -> None:
        """After the last request: until every node, asked alone, lists every topic of the set complete."""
        t0 = time.perf_counter()
        pending = set(self.q.nodes)
        seen = {}
        deadline = t0 + VISIBLE_TIMEOUT_S
        while pending:
            for node_id in sorted(pending):
                try:
                    n = all_visible(metadata(self.q.nodes[node_id].port, None, timeout=10), self.names,
                                    self.partitions)
                except WireError as e:
                    n = str(e)
                seen[node_id] = n
                if n == len(self.names):
                    self.visible_per_node_lag_s[node_id] = time.perf_counter() - t0
                    pending.discard(node_id)
            if not pending:
                break
            if time.perf_counter() > deadline:
                raise RuntimeError(f"{self.label}: not every node listed the {len(self.names)} topics within "
                                   f"{VISIBLE_TIMEOUT_S:g} s of the last answer; complete per node: {seen}")
            self.q.check_alive()
            time.sleep(VISIBLE_POLL_S)
        self.visible_lag_s = max(self.visible_per_node_lag_s.values())

    def result(self) -> dict:
        topics = len(self.names)
        acked = sum(self.request_s)
        visible = acked + (self.visible_lag_s or 0.0)
        return {
            "topics": topics, "partitions": self.partitions, "replication_factor": self.rf, "batch": self.batch,
            "requests": len(self.request_s),
            "acked_s": round(acked, 3), "visible_s": round(visible, 3),
            "topics_per_s_acked": round(topics / acked, 1), "topics_per_s_visible": round(topics / visible, 1),
            "visible_lag_per_node_s": {str(k): round(v, 3) for k, v in sorted(self.visible_per_node_lag_s.items())},
            "request_s": summary(self.request_s),
        }


def create_interleaved(runs: list[CreateRun]) -> dict:
    """The sets' requests in turn (the first set's first request, the second's, ...; the order rotates by one
    each turn), so a machine that gets busier or quieter during the phase weighs on every set alike. Each
    set's clock is the sum of its own requests, plus its wait for every node to list its topics, taken right
    after its last request."""
    turns = max(len(r.chunks) for r in runs)
    for i in range(turns):
        k = i % len(runs)
        for r in runs[k:] + runs[:k]:
            if i < len(r.chunks):
                r.send(i)
                if i == len(r.chunks) - 1:
                    r.wait_visible()
        if (i + 1) % max(1, turns // 5) == 0:
            log(f"topics: {min(turns, i + 1) * runs[0].batch} of {len(runs[0].names)} per set")
    out = {r.label: r.result() for r in runs}
    for r in runs:
        x = out[r.label]
        log(f"{r.label}: {x['topics_per_s_acked']} topics/s to the last answer, {x['topics_per_s_visible']} until "
            f"every node lists them")
    return out


# --------------------------------------------------------------------------- failover


class Watcher(threading.Thread):
    """Polls each survivor's Metadata every 20 ms: the controller ids it names, with the time of each
    change, and when it stops listing the killed broker."""

    def __init__(self, survivors: list[Node], killed: int, t_ref: list):
        super().__init__(daemon=True)
        self.survivors = survivors
        self.killed = killed
        self.t_ref = t_ref
        self.stop_flag = threading.Event()
        self.history: dict[int, list[tuple[float, int]]] = {nd.node_id: [] for nd in survivors}
        self.unlisted_at: dict[int, float] = {}

    def run(self):
        while not self.stop_flag.is_set():
            for nd in self.survivors:
                try:
                    md = metadata(nd.port, [], timeout=2.0)
                except WireError:
                    continue
                t = time.perf_counter() - self.t_ref[0]
                hist = self.history[nd.node_id]
                if not hist or hist[-1][1] != md["controller_id"]:
                    hist.append((round(t, 3), md["controller_id"]))
                if nd.node_id not in self.unlisted_at and self.killed not in md["brokers"]:
                    self.unlisted_at[nd.node_id] = round(t, 3)
            self.stop_flag.wait(WATCH_POLL_S)

    def first_naming(self, leader: int) -> float | None:
        """When the first survivor named `leader` as the controller."""
        times = [t for hist in self.history.values() for t, c in hist if c == leader]
        return min(times) if times else None


class Attempts(threading.Thread):
    """CreateTopics of a fresh topic, again and again (20 ms after a failure), until one succeeds or
    stop_flag is set: ok_s is when the first success came back, seconds after the kill."""

    def __init__(self, label: str, names: str, t_ref: list, attempt):
        super().__init__(daemon=True)
        self.label = label
        self.names = names
        self.t_ref = t_ref
        self.attempt = attempt  # fn(topic name) -> None, raises on failure
        self.stop_flag = threading.Event()
        self.ok_s: float | None = None
        self.ok_topic: str | None = None
        self.failures: list[dict] = []

    def run(self):
        k = 0
        while not self.stop_flag.is_set():
            name = f"{self.names}-{k}"
            k += 1
            ta = time.perf_counter() - self.t_ref[0]
            try:
                self.attempt(name)
            except Exception as e:  # noqa: BLE001 - every failed attempt is recorded
                code, msg = kafka_error(e)
                self.failures.append({"sent_s": round(ta, 3), "failed_s": round(time.perf_counter() - self.t_ref[0], 3),
                                      "error": code, "message": msg[:200]})
                self.stop_flag.wait(RETRY_PAUSE_S)
                continue
            self.ok_s = time.perf_counter() - self.t_ref[0]
            self.ok_topic = name
            return

    def report(self) -> dict:
        failures = self.failures if len(self.failures) <= 10 else self.failures[:8] + ["..."] + self.failures[-2:]
        return {"s": round(self.ok_s, 3) if self.ok_s is not None else None,
                "attempts": len(self.failures) + (1 if self.ok_s is not None else 0), "failures": failures}


class RawError(Exception):
    def __init__(self, code: int, message: str):
        super().__init__(f"{ERROR_NAMES.get(code, code)}: {message}")
        self.code = code


def raw_attempt(port: int):
    """One CreateTopics v2 straight to one node, which forwards it to the quorum leader itself."""
    def attempt(name: str) -> None:
        try:
            code, msg = create_topics_raw(port, [name], 1, 1, 30_000).get(name, (-2, "no result for the topic"))
        except WireError as e:
            raise RawError(-3, str(e)) from None
        if code != 0:
            raise RawError(code, msg or "")
    return attempt


def fresh_client_attempt(bootstrap: str, timeout: float):
    """One CreateTopics through a new confluent-kafka AdminClient (it asks the bootstrap nodes for the
    metadata and sends the request to the controller they name)."""
    def attempt(name: str) -> None:
        client = admin_client(bootstrap, quiet=True)
        create_one(client, name, timeout)
    return attempt


def kafka_error(e: Exception) -> tuple[str, str]:
    """The Kafka error name and message of a client exception (else its type and text)."""
    from confluent_kafka import KafkaError

    if isinstance(e, RawError):
        return ERROR_NAMES.get(e.code, str(e.code)), str(e)
    err = e.args[0] if e.args else None
    if isinstance(err, KafkaError):
        return err.name(), err.str()
    return type(e).__name__, str(e)


class LogEvents:
    """Committed votes and fencing lines from the nodes' logs, read incrementally: a quorum leader whose
    follower is down logs thousands of lines a second, so the logs reach hundreds of MB."""

    def __init__(self):
        self.pos: dict[str, int] = {}
        self.votes: dict[int, list[tuple[float, int, int]]] = {}  # node -> (wall time, term, leader)
        self.fences: dict[int, list[tuple[float, int]]] = {}  # node -> (wall time, fenced broker)

    @staticmethod
    def _ts(text: str) -> float | None:
        try:
            return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.timezone.utc).timestamp()
        except ValueError:
            return None

    def scan(self, nd: Node) -> None:
        start = self.pos.get(nd.log_path, 0)
        try:
            with open(nd.log_path, "rb") as f:
                f.seek(start)
                data = f.read()
        except OSError:
            return
        end = data.rfind(b"\n") + 1  # complete lines only
        self.pos[nd.log_path] = start + end
        for line in data[:end].decode("utf-8", "replace").splitlines():
            if "vote is changing" in line:
                m = VOTE_COMMITTED.match(line)
                ts = m and self._ts(m.group(1))
                if ts:
                    self.votes.setdefault(nd.node_id, []).append((ts, int(m.group(2)), int(m.group(3))))
            elif "fencing broker" in line:
                m = FENCING.match(line)
                ts = m and self._ts(m.group(1))
                if ts:
                    self.fences.setdefault(nd.node_id, []).append((ts, int(m.group(2))))

    def leader_before(self, nd: Node, wall: float) -> int | None:
        """The leader of the last committed vote this node logged before `wall`."""
        self.scan(nd)
        before = [v for v in self.votes.get(nd.node_id, []) if v[0] <= wall]
        return max(before)[2] if before else None

    def after(self, nodes: list[Node], wall: float) -> dict:
        """The first committed vote and the first fencing line any of these nodes logged after `wall`."""
        for nd in nodes:
            self.scan(nd)
        votes = [v for nd in nodes for v in self.votes.get(nd.node_id, []) if v[0] >= wall]
        fences = [f for nd in nodes for f in self.fences.get(nd.node_id, []) if f[0] >= wall]
        out = {}
        if votes:
            ts, term, leader = min(votes)
            out.update({"elected_s": round(ts - wall, 3), "new_term": term, "new_leader": leader})
        if fences:
            out["fenced_in_log_s"] = round(min(fences)[0] - wall, 3)
        return out


def failover_round(q: Quorum, r: int, prefix: str, attempt_timeout: float, observe_s: float = 0.0) -> dict:
    """One kill of the quorum leader. observe_s > 0 makes it the client round: confluent-kafka clients
    try too (a new one per attempt, and two long-lived ones watched for up to observe_s seconds). They
    stay out of the measured rounds because librdkafka, while an admin request waits for a controller
    that is down, reconnects to it in a busy loop (about a core of CPU on this machine)."""
    expected = q.ids
    from confluent_kafka.admin import AdminClient

    for attempt in range(5):
        leader = wait_for("every node to agree on the controller", lambda: q.agreement(expected),
                          REJOIN_TIMEOUT_S, 0.1, q.check_alive)
        survivors_bootstrap = q.bootstrap(exclude=leader)
        long_lived = {}
        if observe_s > 0:
            # Running applications' clients: connected, with metadata, one CreateTopics done (so they
            # know the controller), off the clock. One with librdkafka's defaults, one refreshing its
            # metadata every 1 s.
            for label, extra in (("defaults", {}),
                                 ("metadata_refresh_1s", {"topic.metadata.refresh.interval.ms": 1000})):
                client = AdminClient({"bootstrap.servers": survivors_bootstrap, "log_level": 0, **extra})
                wait_for(f"the {label} client to create a topic",
                         lambda c=client, lb=label: create_one(c, f"{prefix}fo{r}-{lb}-warm{attempt}", 10.0, True) or True,
                         REJOIN_TIMEOUT_S, 0.5, q.check_alive)
                long_lived[label] = client
        time.sleep(random.uniform(0.0, 1.0))
        if q.agreement(expected) == leader:
            break
        log(f"kill {r + 1}: the controller changed while getting ready; again")
    else:
        raise RuntimeError("the controller kept changing before the kill")
    victim = q.nodes[leader]
    survivors = [nd for i, nd in sorted(q.nodes.items()) if i != leader]
    for nd in q.nodes.values():
        q.logs.scan(nd)  # so the reads after the kill are short
    t_ref = [0.0]
    watcher = Watcher(survivors, leader, t_ref)
    server = [Attempts(f"server{nd.node_id}", f"{prefix}fo{r}-raw{nd.node_id}", t_ref, raw_attempt(nd.port))
              for nd in survivors]
    fresh = [Attempts("fresh_client", f"{prefix}fo{r}-fresh", t_ref,
                      fresh_client_attempt(survivors_bootstrap, attempt_timeout))] if observe_s > 0 else []
    observers = [Attempts(label, f"{prefix}fo{r}-{label}", t_ref,
                          lambda name, c=c: create_one(c, name, observe_s))
                 for label, c in long_lived.items()]
    threads = [watcher, *server, *fresh, *observers]
    cpu0 = time.process_time()
    wall_kill = time.time()
    t_ref[0] = time.perf_counter()
    victim.kill9()
    for t in threads:
        t.start()
    limit = max(FAILOVER_LIMIT_S, observe_s)
    for t in [*server, *fresh]:
        t.join(timeout=max(0.0, t_ref[0] + FAILOVER_LIMIT_S - time.perf_counter()))
    for t in observers:
        t.join(timeout=max(0.0, t_ref[0] + observe_s - time.perf_counter()))
    for t in threads:
        t.stop_flag.set()
    harness_cpu = time.process_time() - cpu0
    elapsed = time.perf_counter() - t_ref[0]
    victim.proc.wait(10)
    watcher.join(5)
    out = {
        "round": r, "killed": leader, "survivors": [nd.node_id for nd in survivors],
        "server": {str(nd.node_id): p.report() for p, nd in zip(server, survivors)},
        "controller_history": {str(k): v for k, v in watcher.history.items()},
        "unlisted_s": {str(k): v for k, v in sorted(watcher.unlisted_at.items())},
        "harness_cpu_s": round(harness_cpu, 2), "observed_s": round(elapsed, 3),
    }
    ok = [p.ok_s for p in server if p.ok_s is not None]
    out["server_s"] = round(min(ok), 3) if ok else None
    out.update(q.logs.after(survivors, wall_kill))
    out["leader_before_kill_in_log"] = q.logs.leader_before(victim, wall_kill)
    if out.get("new_leader") is not None:
        out["survivor_names_new_leader_s"] = watcher.first_naming(out["new_leader"])
    if observe_s > 0:
        out["fresh_client"] = fresh[0].report() | {"attempt_timeout_s": attempt_timeout}
        out["long_lived"] = {o.label: o.report() | {"waited_s": observe_s} for o in observers}
    # Restart the killed node and wait for it to rejoin: every node lists every broker and names the
    # same controller, and the restarted node lists the last topic a survivor created.
    last_topic = next((p.ok_topic for p in server if p.ok_topic), None)
    log_offset = victim.log_size()
    t_restart = time.perf_counter()
    victim.start()

    def rejoined():
        # Registered again with its new incarnation and heartbeating (until then the others list the
        # old registration, or none), every node agreeing, and caught up with the log.
        if not victim.logged_since(log_offset, "this broker is unfenced"):
            return False
        if q.agreement(expected) is None:
            return False
        return not last_topic or all_visible(metadata(victim.port, [last_topic]), [last_topic], 1) == 1

    wait_for(f"node {leader} to rejoin", rejoined, REJOIN_TIMEOUT_S, 0.1, q.check_alive)
    out["rejoin_s"] = round(time.perf_counter() - t_restart, 3)
    if out["server_s"] is None:
        out["error"] = f"no CreateTopics sent to a survivor succeeded within {limit:g} s of the kill"
    return out


def failover(q: Quorum, kills: int, prefix: str, attempt_timeout: float, goal_s: float, observe_s: float) -> dict:
    rounds = []
    for r in range(kills):
        x = failover_round(q, r, prefix, attempt_timeout)
        rounds.append(x)
        log(f"kill {r + 1}/{kills}: node {x['killed']}; a survivor committed after {x['server_s']} s; new leader "
            f"{x.get('new_leader')} elected after {x.get('elected_s')} s; rejoined in {x['rejoin_s']} s")

    def col(key):
        return [x[key] for x in rounds if x.get(key) is not None]

    server = summary(col("server_s"))
    failed = [x["round"] for x in rounds if x["server_s"] is None]
    out = {
        "kills": kills, "attempt_timeout_s": attempt_timeout, "goal_s": goal_s,
        "server_s": server, "elected_s": summary(col("elected_s")),
        "survivor_names_new_leader_s": summary(col("survivor_names_new_leader_s")),
        "rejoin_s": summary(col("rejoin_s")),
        "goal_met_median": bool(server["n"]) and not failed and server["median"] <= goal_s,
        "goal_met_max": bool(server["n"]) and not failed and server["max"] <= goal_s,
        "failed_rounds": failed,
        "rounds": rounds,
    }
    if server["n"] and out["elected_s"]["n"]:
        out["election_share_of_median"] = round(out["elected_s"]["median"] / server["median"], 3)
    out["killed_not_leader_in_log"] = [x["round"] for x in rounds
                                       if x.get("leader_before_kill_in_log") not in (None, x["killed"])]
    if observe_s > 0:
        x = failover_round(q, kills, prefix, attempt_timeout, observe_s)
        out["client_round"] = x
        log(f"client round: node {x['killed']} killed; a survivor committed after {x['server_s']} s, a new client "
            f"after {x['fresh_client']['s']} s; long-lived clients: "
            + ", ".join(f"{k} {v['s']} s" for k, v in x["long_lived"].items()) + f" (watched for {observe_s:g} s)")
    return out


# --------------------------------------------------------------------------- main


def run(args, work: str, result: dict) -> None:
    prefix = f"mb-{uuid.uuid4().hex[:6]}-"
    binary = os.path.abspath(args.tributary_bin)
    single = None
    if not args.skip_create:
        single = Quorum(binary, work, "single", 1)
        single.start()
    cluster = Quorum(binary, work, "cluster", 3)
    cluster.start()
    if single:
        ready = wait_ready(single, prefix + "single-")
        result["single_config"] = single.shown_props()
        result["single_ready"] = ready
        log(f"single node ready in {ready['ready_s']} s")
    ready = wait_ready(cluster, prefix + "cluster-")
    result["cluster_config"] = cluster.shown_props()
    result["cluster_ready"] = ready
    log(f"3-node cluster ready in {ready['ready_s']} s (controller {ready['leader']})")
    # The kills first, while the cluster holds only a few dozen topics: a restarted node that hosts
    # thousands of partitions takes minutes of log recovery and leadership moves to rejoin.
    if args.kills > 0:
        try:
            result["failover"] = failover(cluster, args.kills, prefix, args.attempt_timeout, args.goal_s,
                                          args.client_round)
        except Exception as e:  # noqa: BLE001 - reported; the topic runs still go on if the cluster is up
            result["failover"] = {"error": f"{type(e).__name__}: {e}",
                                  "log_tails": {os.path.basename(nd.log_path): nd.log_tail(8) for nd in LIVE}}
            log(f"failover: {result['failover']['error']}")
            cluster.check_alive()
    if single:
        runs = [CreateRun(single, "single", args.topics, args.partitions, 1, args.batch, prefix),
                CreateRun(cluster, "cluster", args.topics, args.partitions, 1, args.batch, prefix)]
        if not args.no_rf3:
            runs.append(CreateRun(cluster, "cluster_rf3", args.topics, args.partitions, 3, args.batch, prefix))
        created = create_interleaved(runs)
        result["create"].update(created)
        s, c = created["single"], created["cluster"]
        result["create"]["ratio_acked"] = round(c["topics_per_s_acked"] / s["topics_per_s_acked"], 3)
        result["create"]["ratio_visible"] = round(c["topics_per_s_visible"] / s["topics_per_s_visible"], 3)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tributary-bin", required=True, help="the tributary binary")
    ap.add_argument("--topics", type=int, default=1000, help="topics per set (default %(default)s)")
    ap.add_argument("--partitions", type=int, default=3, help="partitions per topic (default %(default)s)")
    ap.add_argument("--batch", type=int, default=100, help="topics per CreateTopics request (default %(default)s)")
    ap.add_argument("--no-rf3", action="store_true",
                    help="skip the cluster's set with replication factor 3")
    ap.add_argument("--kills", type=int, default=10, help="quorum leader kills (default %(default)s; 0: none)")
    ap.add_argument("--attempt-timeout", type=float, default=1.0,
                    help="request and operation timeout of each fresh-client CreateTopics attempt after a kill, "
                         "in seconds (default %(default)s)")
    ap.add_argument("--client-round", type=float, default=15.0, metavar="S",
                    help="after the measured kills, one more kill with confluent-kafka clients trying too: a new "
                         "AdminClient per attempt, and two long-lived ones (librdkafka defaults; metadata refresh "
                         "every 1 s) watched for up to S seconds; 0: skip (default %(default)s)")
    ap.add_argument("--goal-s", type=float, default=1.0, help="the failover goal, in seconds (default %(default)s)")
    ap.add_argument("--skip-create", action="store_true", help="skip the topic sets (and the single node)")
    ap.add_argument("--data-root", default=tempfile.gettempdir(),
                    help="where the work directory goes (default %(default)s; a real disk, not tmpfs)")
    ap.add_argument("--keep", action="store_true", help="keep the work directory (logs, data) for inspection")
    args = ap.parse_args()
    if args.topics < 1 or args.partitions < 1 or args.batch < 1 or args.kills < 0:
        ap.error("--topics, --partitions and --batch must be at least 1, --kills at least 0")
    if not (os.path.isfile(args.tributary_bin) and os.access(args.tributary_bin, os.X_OK)):
        ap.error(f"--tributary-bin {args.tributary_bin} is not an executable file")

    def on_term(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_term)
    work = tempfile.mkdtemp(prefix="metadata-bench-", dir=args.data_root)
    result: dict = {
        "settings": {"topics": args.topics, "partitions": args.partitions, "batch": args.batch,
                     "in_flight_requests": 1, "rf3": not args.no_rf3, "kills": args.kills,
                     "client_round_s": args.client_round, "attempt_timeout_s": args.attempt_timeout,
                     "goal_s": args.goal_s},
        "create": {},
        "work_dir": work if args.keep else None,
    }
    rc = 0
    try:
        run(args, work, result)
    except KeyboardInterrupt as e:
        result["error"] = f"interrupted ({e or 'SIGINT'})"
        rc = 130
    except Exception as e:  # noqa: BLE001 - reported in the JSON
        result["error"] = f"{type(e).__name__}: {e}"
        result["log_tails"] = {os.path.basename(nd.log_path): nd.log_tail(8) for nd in LIVE}
        rc = 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        stop_all()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    fo = result.get("failover") or {}
    if rc == 0 and (fo.get("failed_rounds") or fo.get("error")):
        rc = 1
    print(json.dumps(result))
    return rc


if __name__ == "__main__":
    sys.exit(main())
