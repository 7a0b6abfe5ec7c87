#!/usr/bin/env python3
"""Replication: what replication factor 3 costs and how it behaves when a node goes away.

A 3-node Tributary cluster and a single node, side by side, from generated KRaft
server.properties that set only what a cluster needs (bench/metadata_bench.py's
`Quorum`: roles, node.id, voters, listeners, controller listener, log.dirs).
Every other setting is Tributary's default. Everything runs on one machine:
the three nodes share its cores and its one disk, and the numbers include the
clients' CPU.

Phases (each can be skipped with --phases):

  produce   acks=all produce of --size-byte records to a topic of 6 partitions
            with librdkafka's rdkafka_performance (-a -1, linger.ms=5): replication
            factor 3 with min.insync.replicas=2 on the cluster against replication
            factor 1 on the single node. --rounds rounds, the two taking turns, each
            round on a fresh topic; MB/s per run, the median of each side and
            their ratio. Every record must be delivered.
  latency   end-to-end latency p50/p99 at --lat-rate records/s with acks=all
            (bench/assign_bench.py latency: one producer, one consumer that
            assign()s the partition; 100-byte records, 1 partition), replication
            factor 3 on the cluster and 1 on the single node.
  failover  --kills rounds on a topic of three partitions, replication factor 3,
            min.insync.replicas=2; odd rounds kill the active controller, even
            rounds another node: the round's partition is one its node leads.
            Two confluent-kafka producers send one record every 2 ms each to the
            partition, one with librdkafka's defaults and
            acks=all (linger.ms=0), one also idempotent; the partition's leader is
            killed with SIGKILL at a random moment; per producer, the time is from
            just before the kill to the first delivery report of success for a
            record *produced after the kill* (so the old leader cannot have
            acknowledged it). The killed node is restarted and the round ends when
            the partition's ISR is full again. Median and max over the rounds
            against the goal.
  rolling   a rolling restart of all three nodes (SIGTERM: controlled shutdown,
            then a restart on the same data directory; the next node only once
            every partition's ISR is full again) while a producer with
            librdkafka's defaults and acks=all sends --rolling-rate records/s to
            6 partitions, replication factor 3, min.insync.replicas=2. Reports
            failed sends (goal 0), the total time and, read back afterwards,
            that every acknowledged record is there.
  reassign  a 4th node joins the cluster as a broker only (process.roles=broker,
            the same controller voters). A topic of 6 partitions, replication
            factor 3 on brokers 1-3 (placed by hand), min.insync.replicas=2, is
            filled with --reassign-bytes of 1 KiB records (rdkafka_performance,
            acks=all), the page cache is written out (sync), and then
            `tributary partition reassign --execute --plan` replaces one follower
            of every partition with broker 4 (the leaders stay): a move of the
            whole topic's data onto the new broker. The time runs from --execute
            until every node's metadata shows every partition on the plan's
            replicas, all in the ISR (polled every 50 ms), and `--verify` calls
            the plan complete (which also removes the throttles). Twice, each on
            a fresh topic that is deleted afterwards: without a throttle, then
            with --throttle --reassign-throttle bytes/s. Throughout, a
            confluent-kafka producer (acks=all, linger.ms=0) sends
            --reassign-rate records/s of 1 KiB to another topic of brokers 1-3
            (6 partitions, RF 3, its replicas stay); its per-send latency
            (produce() to the delivery report) p50/p99/max during the move is
            set against the --reassign-baseline-s seconds just before --execute,
            with p99 per second from the end of the fill, and its failed sends
            are counted. Bytes moved are broker 4's segment files of the topic
            at the end (against the leaders'); with the throttle also the
            highest rate over any 11 s (the span a replication throttle is
            measured over) from a sample of those files every second.

One JSON object on stdout; progress on stderr. Every process started here is
stopped on exit (and gets SIGKILL from the kernel if this script dies).

    python3 bench/replication_bench.py --tributary-bin target/release/tributary
    python3 bench/replication_bench.py --tributary-bin target/debug/tributary --quick
    python3 bench/replication_bench.py --tributary-bin target/release/tributary --phases reassign --data-root /var/tmp
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shlex
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import metadata_bench as mb  # noqa: E402 - the cluster harness lives there
from metadata_bench import summary  # noqa: E402
from assign_bench import pct  # noqa: E402 - the percentile every bench script uses
from run import parse_perf_produce, resolve_perf  # noqa: E402 - rdkafka_performance as run.py finds and reads it

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ASSIGN_BENCH = os.path.join(REPO, "bench", "assign_bench.py")
ISR_TIMEOUT_S = 120.0
FAILOVER_LIMIT_S = 60.0
PHASES = ("produce", "latency", "failover", "rolling", "reassign")


def log(*a):
    print("[replication_bench]", *a, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- partition state from one node


def partitions_of(port: int, topic: str, timeout: float = 5.0) -> dict:
    """Metadata v1 for one topic from this node alone: partition -> {leader, replicas, isr}."""
    body = struct.pack(">i", 1) + mb._string(topic)
    r = mb.round_trip(port, 3, 1, body, timeout)
    for _ in range(r.take(">i")):  # brokers
        r.take(">i"), r.string(), r.take(">i"), r.string()
    r.take(">i")  # controller
    out = {}
    for _ in range(r.take(">i")):
        err = r.take(">h")
        name = r.string()
        r.take(">b")
        parts = {}
        for _ in range(r.take(">i")):
            perr = r.take(">h")
            index = r.take(">i")
            leader = r.take(">i")
            replicas = r.array(lambda: r.take(">i"))
            isr = r.array(lambda: r.take(">i"))
            parts[index] = {"error": perr, "leader": leader, "replicas": replicas, "isr": isr}
        if name == topic and err == 0:
            out = parts
    return out


def full_isr_everywhere(q: mb.Quorum, topic: str, partitions: int) -> bool:
    """Every node shows every partition of the topic with a leader and every replica in its ISR."""
    for nd in q.nodes.values():
        parts = partitions_of(nd.port, topic)
        if len(parts) != partitions:
            return False
        for p in parts.values():
            if p["leader"] < 0 or sorted(p["isr"]) != sorted(p["replicas"]):
                return False
    return True


def create_topic(bootstrap: str, name: str, partitions: int, rf: int, configs: dict | None = None) -> None:
    from confluent_kafka.admin import NewTopic

    client = mb.admin_client(bootstrap, quiet=True)
    fs = client.create_topics([NewTopic(name, partitions, rf, config=configs or {})], operation_timeout=30,
                              request_timeout=30)
    fs[name].result(timeout=60)


def wait_full_isr(q: mb.Quorum, topic: str, partitions: int) -> float:
    t0 = time.monotonic()
    mb.wait_for(f"every partition of {topic} to have a full ISR on every node",
                lambda: full_isr_everywhere(q, topic, partitions), ISR_TIMEOUT_S, 0.1, q.check_alive)
    return round(time.monotonic() - t0, 2)


# --------------------------------------------------------------------------- produce throughput


def perf_produce(perf: str, bootstrap: str, topic: str, size: int, count: int, timeout: float,
                 extra: tuple[str, ...] = ()) -> dict:
    argv = [perf, "-P", "-t", topic, "-b", bootstrap, "-s", str(size), "-c", str(count), "-a", "-1",
            "-X", "linger.ms=5", *extra]
    t0 = time.monotonic()
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        raise RuntimeError(f"rdkafka_performance -P timed out after {timeout:g} s: {(e.stdout or '')[-500:]}")
    parsed = parse_perf_produce(p.stdout)
    if parsed is None:
        raise RuntimeError(f"no summary from rdkafka_performance (rc {p.returncode}): {p.stdout[-800:]} "
                           f"{p.stderr[-800:]}")
    if parsed["delivered"] != count or parsed["failed"]:
        raise RuntimeError(f"only {parsed['delivered']} of {count} delivered ({parsed['failed']} failed)")
    parsed["wall_s"] = round(time.monotonic() - t0, 2)
    parsed["cmd"] = shlex.join(["rdkafka_performance"] + argv[1:])
    return parsed


def produce_phase(args, single: mb.Quorum, cluster: mb.Quorum, prefix: str) -> dict:
    runs = {"single_rf1": [], "cluster_rf3": []}
    for r in range(args.rounds):
        order = [("single_rf1", single, 1, {}), ("cluster_rf3", cluster, 3, {"min.insync.replicas": "2"})]
        if r % 2:
            order.reverse()
        for label, q, rf, configs in order:
            topic = f"{prefix}p-{label}-{r}"
            create_topic(q.bootstrap(), topic, 6, rf, configs)
            if rf > 1:
                wait_full_isr(q, topic, 6)
            x = perf_produce(args.perf, q.bootstrap(), topic, args.size, args.messages, 900)
            runs[label].append(x)
            log(f"produce round {r + 1}/{args.rounds} {label}: {x['MB_per_s']} MB/s ({x['msgs_per_s']} msgs/s)")
    out = {"size": args.size, "messages": args.messages, "partitions": 6, "runs": runs}
    for label, xs in runs.items():
        out[label] = summary([x["MB_per_s"] for x in xs])
    out["ratio"] = round(out["cluster_rf3"]["median"] / out["single_rf1"]["median"], 3)
    out["cmd"] = runs["cluster_rf3"][0]["cmd"].replace(cluster.bootstrap(), "CLUSTER")
    return out


# --------------------------------------------------------------------------- end-to-end latency


def latency_run(args, q: mb.Quorum, rf: int, prefix: str) -> dict:
    argv = [sys.executable, ASSIGN_BENCH, "latency", "--bootstrap", q.bootstrap(), "--size", "100",
            "--partitions", "1", "--replication-factor", str(rf), "--lat-rate", str(args.lat_rate),
            "--lat-seconds", str(args.lat_seconds), "--topic-prefix", prefix]
    p = subprocess.run(argv, capture_output=True, text=True, timeout=args.lat_seconds + 300)
    try:
        d = json.loads(p.stdout)
    except ValueError:
        raise RuntimeError(f"assign_bench.py printed no JSON (rc {p.returncode}): {p.stderr[-800:]}")
    lat = d.get("latency") or {}
    if lat.get("error"):
        raise RuntimeError(f"assign_bench.py latency failed: {lat['error']}")
    if not lat.get("received"):
        raise RuntimeError("assign_bench.py received no records")
    d["cmd"] = shlex.join(["python3", "bench/assign_bench.py"] + argv[2:]).replace(q.bootstrap(), "BOOTSTRAP")
    return d


def latency_phase(args, single: mb.Quorum, cluster: mb.Quorum, prefix: str) -> dict:
    out = {"rate": args.lat_rate, "seconds": args.lat_seconds}
    for label, q, rf in (("single_rf1", single, 1), ("cluster_rf3", cluster, 3)):
        d = latency_run(args, q, rf, f"{prefix}l-{label}-")
        lat = d["latency"]
        out[label] = {k: lat.get(k) for k in ("p50_ms", "p99_ms", "p999_ms", "max_ms", "sent", "received")}
        out[label]["cmd"] = d["cmd"]
        log(f"latency {label}: p50 {lat.get('p50_ms')} ms, p99 {lat.get('p99_ms')} ms")
    return out


# --------------------------------------------------------------------------- failover


class Sender(threading.Thread):
    """Produces one record every `every` seconds to one partition and keeps every delivery report:
    (time the record was produced, time its report arrived, error or None)."""

    def __init__(self, bootstrap: str, topic: str, partition: int | None, every: float, config: dict,
                 size: int = 0, keep_values: bool = True):
        super().__init__(daemon=True)
        from confluent_kafka import Producer

        self.topic, self.partition, self.every = topic, partition, every
        self.size, self.keep_values = size, keep_values  # values padded to `size` bytes; acked ones kept
        debug = os.environ.get("REPLICATION_BENCH_CLIENT_DEBUG")  # librdkafka debug contexts, to stderr
        extra = {"debug": debug, "log_level": 7} if debug else {"log_level": 0}
        self.producer = Producer({"bootstrap.servers": bootstrap, **extra, **config})
        self.reports: list[tuple[float, float, str | None]] = []
        self.lock = threading.Lock()
        self.stop_flag = threading.Event()
        self.sent = 0
        self.acked_values: list[bytes] = []

    def run(self):
        n = 0
        next_at = time.monotonic()
        while not self.stop_flag.is_set():
            now = time.monotonic()
            if now >= next_at:
                produced_at = now
                value = f"{n}".encode().ljust(self.size, b".")

                def report(err, msg, produced_at=produced_at, value=value):
                    with self.lock:
                        self.reports.append((produced_at, time.monotonic(), None if err is None else str(err)))
                        if err is None and self.keep_values:
                            self.acked_values.append(value)

                kw = {} if self.partition is None else {"partition": self.partition}
                try:
                    self.producer.produce(self.topic, value=value, on_delivery=report, **kw)
                    n += 1
                except BufferError:
                    pass
                next_at += self.every
                if next_at < now - 1.0:  # fell far behind (a stall): do not burst
                    next_at = now
            self.producer.poll(min(0.001, max(0.0, next_at - time.monotonic())))
        self.sent = n

    def finish(self, timeout: float = 120.0) -> int:
        self.stop_flag.set()
        self.join(30)
        return self.producer.flush(timeout)

    def first_ok_after(self, t: float) -> float | None:
        with self.lock:
            oks = [done for produced, done, err in self.reports if err is None and produced > t]
        return min(oks) if oks else None

    def errors(self) -> list[str]:
        with self.lock:
            return [err for _, _, err in self.reports if err is not None]


# The two producers of every failover round: librdkafka's defaults with acks=all (the figure the goal is
# judged on), and an idempotent one, whose in-flight requests to the dead leader are drained before it
# produces to the new one.
FAILOVER_PARTITIONS = 3
FAILOVER_PRODUCERS = {
    "default": {"acks": "all", "linger.ms": 0},
    "idempotent": {"acks": "all", "enable.idempotence": True, "linger.ms": 0},
}


def failover_round(q: mb.Quorum, topic: str, r: int) -> dict:
    # Odd rounds kill the active controller (a dead controller's partitions wait for a new one to be
    # elected), even rounds another node, taking turns: the partition the round's node leads, else
    # partition 0.
    first = next(iter(q.nodes.values())).port
    parts = partitions_of(first, topic)
    controller = mb.metadata(first, [])["controller_id"]
    others = sorted(i for i in q.nodes if i != controller)
    wanted = controller if r % 2 else others[(r // 2) % len(others)]
    partition = next((p for p, st in sorted(parts.items()) if st["leader"] == wanted), 0)
    leader = parts[partition]["leader"]
    victim = q.nodes[leader]
    senders = {name: Sender(q.bootstrap(), topic, partition, 0.002, cfg) for name, cfg in FAILOVER_PRODUCERS.items()}
    for s in senders.values():
        s.start()
    for name, s in senders.items():
        mb.wait_for(f"the {name} producer's first acknowledged record", lambda s=s: s.first_ok_after(0.0), 30, 0.02)
    time.sleep(random.uniform(0.2, 1.0))
    t_kill = time.monotonic()
    wall_kill = time.time()
    victim.kill9()
    victim.proc.wait(10)
    first = {}
    deadline = t_kill + FAILOVER_LIMIT_S
    while time.monotonic() < deadline and len(first) < len(senders):
        for name, s in senders.items():
            if name not in first and (t := s.first_ok_after(t_kill)) is not None:
                first[name] = t
        time.sleep(0.005)
    new_leader = None
    for nd in q.nodes.values():
        if nd is victim:
            continue
        try:
            new_leader = partitions_of(nd.port, topic)[partition]["leader"]
            break
        except Exception:  # noqa: BLE001 - any survivor will do
            continue
    x = {"round": r, "partition": partition, "killed": leader, "killed_was_controller": leader == controller,
         "killed_at": round(wall_kill, 3), "new_leader": new_leader}
    for name, s in senders.items():
        unflushed = s.finish()
        errors = s.errors()
        x[name] = {"failover_s": round(first[name] - t_kill, 3) if name in first else None,
                   "failed_sends": len(errors), "unflushed": unflushed}
        if errors:
            x[name]["first_error"] = errors[0]
    victim.start()
    x["rejoin_s"] = wait_full_isr(q, topic, FAILOVER_PARTITIONS)
    return x


def failover_phase(args, cluster: mb.Quorum, prefix: str) -> dict:
    topic = f"{prefix}fo"
    create_topic(cluster.bootstrap(), topic, FAILOVER_PARTITIONS, 3, {"min.insync.replicas": "2"})
    wait_full_isr(cluster, topic, FAILOVER_PARTITIONS)
    rounds = []
    for r in range(args.kills):
        x = failover_round(cluster, topic, r)
        rounds.append(x)
        log(f"failover {r + 1}/{args.kills}: killed leader {x['killed']}"
            + (" (the active controller)" if x["killed_was_controller"] else "")
            + f" of partition {x['partition']} (new leader {x['new_leader']}), first ack "
            + ", ".join(f"{n} {x[n]['failover_s']} s" for n in FAILOVER_PRODUCERS)
            + f"; rejoined in {x['rejoin_s']} s")
    out = {"kills": args.kills, "goal_median_s": 1.0, "goal_max_s": 3.0, "rounds": rounds}
    for name in FAILOVER_PRODUCERS:
        s = summary([x[name]["failover_s"] for x in rounds if x[name]["failover_s"] is not None])
        failed = [x["round"] for x in rounds if x[name]["failover_s"] is None]
        out[name] = {"failover_s": s, "failed_rounds": failed,
                     "failed_sends": sum(x[name]["failed_sends"] for x in rounds),
                     "goal_met": bool(s["n"]) and not failed and s["median"] <= 1.0 and s["max"] <= 3.0}
    return out


# --------------------------------------------------------------------------- rolling restart


def read_back(bootstrap: str, topic: str, partitions: int, expected: set[bytes], timeout: float = 120.0) -> dict:
    from confluent_kafka import Consumer, TopicPartition, OFFSET_BEGINNING

    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"rb-{uuid.uuid4().hex[:6]}",
                  "enable.auto.commit": False, "log_level": 0})
    c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
    seen: dict[bytes, int] = {}
    end = time.monotonic() + timeout
    try:
        while time.monotonic() < end and not expected.issubset(seen):
            for m in c.consume(1000, 0.5):
                if m.error() is None:
                    seen[m.value()] = seen.get(m.value(), 0) + 1
    finally:
        c.close()
    missing = expected - set(seen)
    return {"read": sum(seen.values()), "distinct": len(seen), "missing_acked": len(missing),
            "duplicates": sum(n - 1 for n in seen.values() if n > 1)}


def rolling_phase(args, cluster: mb.Quorum, prefix: str) -> dict:
    topic = f"{prefix}roll"
    create_topic(cluster.bootstrap(), topic, 6, 3, {"min.insync.replicas": "2"})
    wait_full_isr(cluster, topic, 6)
    # librdkafka's defaults (retries, delivery timeout 300 s, no idempotence) with acks=all.
    sender = Sender(cluster.bootstrap(), topic, None, 1.0 / args.rolling_rate, {"acks": "all"})
    sender.start()
    time.sleep(2.0)
    t0 = time.monotonic()
    steps = []
    for i, nd in cluster.nodes.items():
        s0 = time.monotonic()
        nd.proc.send_signal(signal.SIGTERM)
        try:
            nd.proc.wait(120)
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"node {i} did not stop within 120 s of SIGTERM")
        stopped = time.monotonic() - s0
        nd.start()
        back = wait_full_isr(cluster, topic, 6)
        steps.append({"node": i, "stop_s": round(stopped, 2), "back_in_isr_s": back,
                      "total_s": round(time.monotonic() - s0, 2)})
        log(f"rolling: node {i} stopped in {stopped:.2f} s, back in every ISR after {back} s")
    total = round(time.monotonic() - t0, 2)
    time.sleep(2.0)
    unflushed = sender.finish()
    errors = sender.errors()
    check = read_back(cluster.bootstrap(), topic, 6, set(sender.acked_values))
    out = {"rate": args.rolling_rate, "sent": sender.sent, "acked": len(sender.acked_values),
           "failed_sends": len(errors), "unflushed": unflushed, "total_s": total, "steps": steps, **check}
    if errors:
        out["first_error"] = errors[0]
    log(f"rolling restart: {total} s, {len(errors)} failed sends of {sender.sent}, "
        f"{check['missing_acked']} acknowledged records missing")
    return out


# --------------------------------------------------------------------------- reassignment onto a new broker

NEW_BROKER = 4
REASSIGN_PARTITIONS = 6
REASSIGN_RECORD = 1024
REASSIGN_SETTLE_S = 2.0
QUOTA_SPAN_S = 11.0  # replication.quota.window.num x replication.quota.window.size.seconds (the defaults)


def add_broker(q: mb.Quorum, binary: str, work: str, node_id: int) -> mb.Node:
    """Starts a broker-only node (no controller port) with the cluster's voters; returns once every node
    lists it."""
    (port,) = mb.free_ports(1)
    nd = mb.Node(binary, work, "cluster", node_id, port, None)
    nd.props = nd.write_config(q.voters)
    nd.start()
    expected = q.ids | {node_id}

    def listed():
        if not nd.running():
            raise RuntimeError(f"broker {node_id} exited with status {nd.proc.returncode}:\n{nd.log_tail()}")
        return all(set(mb.metadata(n.port, [])["brokers"]) == expected for n in [*q.nodes.values(), nd])

    mb.wait_for(f"every node to list brokers {sorted(expected)}", listed, mb.READY_TIMEOUT_S, 0.1, q.check_alive)
    return nd


def create_assigned(bootstrap: str, name: str, assignment: list[list[int]], configs: dict) -> None:
    """A topic whose replicas are placed by hand (a new broker would otherwise get some of them)."""
    from confluent_kafka.admin import NewTopic

    client = mb.admin_client(bootstrap, quiet=True)
    fs = client.create_topics([NewTopic(name, num_partitions=len(assignment), replica_assignment=assignment,
                                        config=configs)],
                              operation_timeout=30, request_timeout=30)
    fs[name].result(timeout=60)


def delete_topic(bootstrap: str, name: str) -> None:
    client = mb.admin_client(bootstrap, quiet=True)
    client.delete_topics([name], operation_timeout=30, request_timeout=30)[name].result(timeout=60)


def log_bytes(data_dir: str, topic: str, partition: int) -> int:
    """The bytes of a replica's segment files (*.log) on disk; 0 when the replica is not there."""
    d = os.path.join(data_dir, f"{topic}-{partition}")
    try:
        names = os.listdir(d)
    except OSError:
        return 0
    total = 0
    for n in names:
        if n.endswith(".log"):
            try:
                total += os.path.getsize(os.path.join(d, n))
            except OSError:
                pass  # a segment deleted between listdir and stat
    return total


def reassign_cli(binary: str, bootstrap: str, plan: str, action: str, *extra: str) -> tuple[int, dict, str]:
    """`tributary partition reassign --ACTION --plan PLAN -o json`: (exit status, its JSON, stderr)."""
    argv = [binary, "partition", "reassign", "--brokers", bootstrap, f"--{action}", "--plan", plan,
            "--timeout", "30s", "-o", "json", *extra]
    p = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    try:
        out = json.loads(p.stdout) if p.stdout.strip() else {}
    except ValueError:
        out = {"unparsed": p.stdout[-500:]}
    return p.returncode, out, p.stderr[-800:]


def latency_window(reports: list[tuple[float, float, str | None]], t0: float, t1: float) -> dict:
    """Per-send latency (produce() to its delivery report) of the records produced in [t0, t1)."""
    window = [(done - produced, err) for produced, done, err in reports if t0 <= produced < t1]
    ok = sorted(lat * 1000.0 for lat, err in window if err is None)
    out = {"sent": len(window), "failed": sum(1 for _, err in window if err is not None),
           "seconds": round(t1 - t0, 2)}
    if ok:
        out.update({"p50_ms": round(pct(ok, 0.50), 2), "p99_ms": round(pct(ok, 0.99), 2),
                    "max_ms": round(ok[-1], 2)})
    return out


def peak_window_rate(timeline: list[tuple[float, int]], span: float) -> float | None:
    """The highest rate, bytes/s, over any `span` seconds of a (seconds, bytes so far) timeline: the
    bytes between two samples at most `span` apart, over `span`."""
    best = None
    for i, (t0, b0) in enumerate(timeline):
        for t1, b1 in timeline[i + 1:]:
            if t1 - t0 > span:
                break
            best = max(best or 0.0, (b1 - b0) / span)
    return best


def latency_per_second(reports: list[tuple[float, float, str | None]], t0: float, t1: float) -> list:
    """[second since t0, sends, p99 ms] for each whole second of [t0, t1): how the latency moved."""
    buckets: dict[int, list[float]] = {}
    for produced, done, err in reports:
        if t0 <= produced < t1 and err is None:
            buckets.setdefault(int(produced - t0), []).append((done - produced) * 1000.0)
    return [[s, len(v), round(pct(sorted(v), 0.99), 1)] for s, v in sorted(buckets.items())]


def reassign_run(args, cluster: mb.Quorum, new: mb.Node, topic: str, throttle: int | None,
                 work: str) -> dict:
    """Fills a topic on brokers 1-3, waits --reassign-baseline-s, then moves one replica of every
    partition onto the new broker with `tributary partition reassign` and times it to complete."""
    binary = os.path.abspath(args.tributary_bin)
    bootstrap = cluster.bootstrap()
    ids = sorted(cluster.ids)
    # Partition p on a rotation of brokers 1-3, its first replica the leader; the move replaces the last
    # replica (a follower), so every old broker gives up two replicas and no leader moves.
    assignment = [[ids[(p + j) % len(ids)] for j in range(3)] for p in range(REASSIGN_PARTITIONS)]
    create_assigned(bootstrap, topic, assignment, {"min.insync.replicas": "2"})
    wait_full_isr(cluster, topic, REASSIGN_PARTITIONS)
    count = max(1, args.reassign_bytes // REASSIGN_RECORD)
    # A partition per record at random (not librdkafka's sticky one per batch), so the partitions fill evenly.
    fill = perf_produce(args.perf, bootstrap, topic, REASSIGN_RECORD, count, 1800,
                        ("-X", "sticky.partitioning.linger.ms=0"))
    fill["cmd"] = fill["cmd"].replace(bootstrap, "CLUSTER")
    wait_full_isr(cluster, topic, REASSIGN_PARTITIONS)
    source = {p: log_bytes(cluster.nodes[a[0]].data_dir, topic, p) for p, a in enumerate(assignment)}
    log(f"reassign {topic}: filled {sum(source.values()) / 1e6:.1f} MB ({fill['MB_per_s']} MB/s); "
        f"baseline latency for {args.reassign_baseline_s:g} s")
    target = [a[:2] + [NEW_BROKER] for a in assignment]
    plan_path = os.path.join(work, f"{topic}.plan.json")
    with open(plan_path, "w") as f:
        json.dump({"version": 1, "partitions": [{"topic": topic, "partition": p, "replicas": r}
                                                for p, r in enumerate(target)]}, f)

    # The fill leaves the kernel with up to a GB of dirty pages to write back, which slows every fsync (and
    # so every acks=all produce) for seconds: written out now, so the baseline is the cluster at rest.
    t_sync = time.monotonic()
    os.sync()
    sync_s = round(time.monotonic() - t_sync, 2)
    time.sleep(REASSIGN_SETTLE_S)
    time.sleep(args.reassign_baseline_s)
    t_exec = time.monotonic()
    extra = ("--throttle", str(throttle)) if throttle else ()
    rc, started, err = reassign_cli(binary, bootstrap, plan_path, "execute", *extra)
    execute_s = time.monotonic() - t_exec
    if rc != 0 or any(x.get("status") != "started" for x in started.get("partitions", [])) \
            or len(started.get("partitions", [])) != REASSIGN_PARTITIONS:
        raise RuntimeError(f"reassign --execute exited {rc}: {started} {err}")

    # Done when every node's metadata shows every partition on the plan's replicas with all of them in the
    # ISR (the controller completes a reassignment once its new replicas are in the ISR, and drops the old
    # one then), polled on raw sockets every 50 ms, and --verify then calls every partition complete (nothing
    # listed in progress, the replicas the plan's). The time is the metadata's.
    expected_s = args.reassign_bytes / throttle if throttle else args.reassign_bytes / 50e6
    limit = max(180.0, 4 * expected_s)
    nodes = [*cluster.nodes.values(), new]
    timeline = [(0.0, 0)]  # (seconds after --execute, bytes on the new broker), about one a second
    verify, verify_calls = {}, 0

    def on_target_everywhere() -> bool:
        for nd in nodes:
            parts = partitions_of(nd.port, topic)
            if len(parts) != REASSIGN_PARTITIONS:
                return False
            for p, st in parts.items():
                if sorted(st["replicas"]) != sorted(target[p]) or not set(target[p]) <= set(st["isr"]):
                    return False
        return True

    t_done = None
    while time.monotonic() - t_exec < limit:
        cluster.check_alive()
        if not new.running():
            raise RuntimeError(f"broker {NEW_BROKER} exited:\n{new.log_tail()}")
        now = time.monotonic()
        if now - t_exec - timeline[-1][0] >= 1.0:
            timeline.append((round(now - t_exec, 2), sum(log_bytes(new.data_dir, topic, p) for p in source)))
        try:
            seen = on_target_everywhere()
        except mb.WireError:
            seen = False  # a node busy past the socket timeout: ask again
        if seen or verify_calls == 0 or now - t_exec > 10.0 * verify_calls:
            # Also every 10 s, to stop early on a reassignment that failed.
            rc, verify, err = reassign_cli(binary, bootstrap, plan_path, "verify")
            verify_calls += 1
            if seen and verify.get("complete"):
                t_done = now
                break
            if rc not in (0, 1) or any(x.get("status") == "failed" for x in verify.get("partitions", [])):
                raise RuntimeError(f"reassign --verify exited {rc}: {verify} {err}")
        time.sleep(0.05)
    if t_done is not None:
        timeline.append((round(t_done - t_exec, 2), sum(log_bytes(new.data_dir, topic, p) for p in source)))
    else:
        moved = sum(log_bytes(new.data_dir, topic, p) for p in source)
        raise RuntimeError(f"the reassignment of {topic} was not complete {limit:g} s after --execute "
                           f"(broker {NEW_BROKER} holds {moved} of {sum(source.values())} bytes; last verify: "
                           f"{json.dumps(verify)[:600]})")
    took = t_done - t_exec
    moved = {p: log_bytes(new.data_dir, topic, p) for p in source}
    total = sum(moved.values())
    out = {
        "topic_partitions": REASSIGN_PARTITIONS, "throttle_B_per_s": throttle, "fill": fill,
        "source_bytes": sum(source.values()), "bytes_moved": total,
        "bytes_moved_per_partition": {str(p): b for p, b in moved.items()},
        "seconds": round(took, 2), "MB_per_s": round(total / took / 1e6, 1), "execute_cli_s": round(execute_s, 2),
        "throttles_removed": verify.get("throttles_removed"), "verify_calls": verify_calls,
        "timeline": timeline, "sync_after_fill_s": sync_s,
        # When the latency windows are: [baseline, execute) and [execute, done).
        "t_execute": t_exec, "t_done": t_done,
    }
    if throttle:
        out["expected_s_at_throttle"] = round(total / throttle, 2)
        out["time_over_expected"] = round(took / (total / throttle), 2)
    # With a throttle: a replication throttle is a rate over the last replication.quota.window.num (11) samples of 1 s, counted
    # as at least 10 s: over any 11 s of the move, broker 4 may receive about the throttle, not more (the
    # first 10 s worth may come at once).
    if throttle:
        peak = peak_window_rate(timeline, QUOTA_SPAN_S)
        out["peak_11s_MB_per_s"] = None if peak is None else round(peak / 1e6, 1)
    if total < 0.95 * out["source_bytes"]:
        out["warning"] = f"broker {NEW_BROKER} holds {total} bytes, the leaders {out['source_bytes']}"
    return out


def reassign_phase(args, cluster: mb.Quorum, work: str, prefix: str) -> dict:
    binary = os.path.abspath(args.tributary_bin)
    t0 = time.monotonic()
    new = add_broker(cluster, binary, work, NEW_BROKER)
    log(f"broker {NEW_BROKER} (process.roles=broker) joined in {time.monotonic() - t0:.2f} s")
    ids = sorted(cluster.ids)
    lat_topic = f"{prefix}ra-lat"
    create_assigned(cluster.bootstrap(), lat_topic,
                    [[ids[(p + j) % len(ids)] for j in range(3)] for p in range(REASSIGN_PARTITIONS)],
                    {"min.insync.replicas": "2"})
    wait_full_isr(cluster, lat_topic, REASSIGN_PARTITIONS)
    out = {"bytes": args.reassign_bytes, "partitions": REASSIGN_PARTITIONS, "record": REASSIGN_RECORD,
           "new_broker": NEW_BROKER, "producer_rate": args.reassign_rate, "baseline_s": args.reassign_baseline_s,
           "new_broker_config": {k: v for k, v in new.props.items()
                                 if k not in ("listeners", "log.dirs", "controller.quorum.voters")},
           "cmd_execute": "tributary partition reassign --brokers CLUSTER --execute --plan plan.json "
                          "[--throttle BYTES_PER_S] -o json",
           "cmd_verify": "tributary partition reassign --brokers CLUSTER --verify --plan plan.json -o json"}
    for label, throttle in (("unthrottled", None), ("throttled", args.reassign_throttle)):
        topic = f"{prefix}ra-{label}"
        # The measured producer: acks=all, linger.ms=0, 1 KiB records at --reassign-rate to the other topic
        # of the same brokers (its replicas stay where they are), for the whole run.
        sender = Sender(cluster.bootstrap(), lat_topic, None, 1.0 / args.reassign_rate,
                        {"acks": "all", "linger.ms": 0}, size=REASSIGN_RECORD, keep_values=False)
        sender.start()
        try:
            mb.wait_for("the latency producer's first acknowledged record", lambda: sender.first_ok_after(0.0),
                        30, 0.05)
            x = reassign_run(args, cluster, new, topic, throttle, work)
        finally:
            unflushed = sender.finish()  # every record produced so far is reported (or unflushed)
        t_exec, t_done = x.pop("t_execute"), x.pop("t_done")
        x["produce_before"] = latency_window(sender.reports, t_exec - args.reassign_baseline_s, t_exec)
        x["produce_during"] = latency_window(sender.reports, t_exec, t_done)
        # From the end of the fill: -(sync + settle + baseline) s to the end of the move.
        since = t_exec - args.reassign_baseline_s - REASSIGN_SETTLE_S - x["sync_after_fill_s"]
        x["produce_p99_per_s"] = {"from_execute_s": round(since - t_exec, 2),
                                  "seconds": latency_per_second(sender.reports, since, t_done)}
        b, d = x["produce_before"], x["produce_during"]
        if b.get("p99_ms") and d.get("p99_ms"):
            x["p99_ratio"] = round(d["p99_ms"] / b["p99_ms"], 2)
        errors = sender.errors()
        x["producer"] = {"sent": sender.sent, "failed_sends": len(errors), "unflushed": unflushed}
        if errors:
            x["producer"]["first_error"] = errors[0]
        out[label] = x
        log(f"reassign {label}: {x['bytes_moved'] / 1e6:.1f} MB onto broker {NEW_BROKER} in {x['seconds']} s "
            f"({x['MB_per_s']} MB/s); produce p99 {b.get('p99_ms')} ms before, {d.get('p99_ms')} ms during; "
            f"{len(errors)} failed sends")
        # The data of this run goes; the next one moves a fresh topic of the same size.
        delete_topic(cluster.bootstrap(), topic)
    return out


# --------------------------------------------------------------------------- main


def run(args, work: str, result: dict) -> None:
    prefix = f"rb-{uuid.uuid4().hex[:6]}-"
    binary = os.path.abspath(args.tributary_bin)
    phases = set(args.phases.split(","))
    single = None
    if phases & {"produce", "latency"}:
        single = mb.Quorum(binary, work, "single", 1)
        single.start()
    cluster = mb.Quorum(binary, work, "cluster", 3)
    cluster.start()
    if single:
        result["single_ready"] = mb.wait_ready(single, prefix + "single-")
    result["cluster_ready"] = mb.wait_ready(cluster, prefix + "cluster-")
    result["cluster_config"] = cluster.shown_props()
    log(f"cluster ready in {result['cluster_ready']['ready_s']} s")
    for name, fn in (("produce", lambda: produce_phase(args, single, cluster, prefix)),
                     ("latency", lambda: latency_phase(args, single, cluster, prefix)),
                     ("failover", lambda: failover_phase(args, cluster, prefix)),
                     ("rolling", lambda: rolling_phase(args, cluster, prefix)),
                     ("reassign", lambda: reassign_phase(args, cluster, work, prefix))):
        if name not in phases:
            continue
        try:
            result[name] = fn()
        except Exception as e:  # noqa: BLE001 - reported; the next phase runs if the cluster is up
            result[name] = {"error": f"{type(e).__name__}: {e}",
                            "log_tails": {os.path.basename(nd.log_path): nd.log_tail(8) for nd in mb.LIVE}}
            log(f"{name}: {result[name]['error']}")
            for nd in cluster.nodes.values():  # a phase that failed mid-kill leaves a node down
                if not nd.running():
                    nd.start()
        if name == "produce" and single and "latency" not in phases:
            single.nodes[1].stop()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tributary-bin", required=True)
    ap.add_argument("--perf", help="rdkafka_performance (default: the one bench/setup.sh built)")
    ap.add_argument("--phases", default=",".join(PHASES), help="comma-separated subset of " + ", ".join(PHASES))
    ap.add_argument("--size", type=int, default=1024, help="record size of the produce phase")
    ap.add_argument("--messages", type=int, default=300_000, help="records per produce run")
    ap.add_argument("--rounds", type=int, default=3, help="produce rounds (each side once per round)")
    ap.add_argument("--lat-rate", type=int, default=5000)
    ap.add_argument("--lat-seconds", type=int, default=30)
    ap.add_argument("--kills", type=int, default=10)
    ap.add_argument("--rolling-rate", type=int, default=1000)
    ap.add_argument("--reassign-bytes", type=int, default=1 << 30,
                    help="bytes of 1 KiB records each reassignment moves onto the new broker (default 1 GiB)")
    ap.add_argument("--reassign-throttle", type=int, default=50_000_000,
                    help="the second reassignment's --throttle, bytes/s (default %(default)s)")
    ap.add_argument("--reassign-rate", type=int, default=1000,
                    help="records/s of the producer measured during the reassignments (default %(default)s)")
    ap.add_argument("--reassign-baseline-s", type=float, default=5.0,
                    help="seconds of produce latency measured before each reassignment (default %(default)s)")
    ap.add_argument("--quick", action="store_true", help="small sizes, for trying the script out")
    ap.add_argument("--data-root", default=tempfile.gettempdir())
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    if args.quick:
        args.messages, args.rounds, args.lat_seconds, args.kills = 20_000, 1, 5, 2
        args.reassign_bytes, args.reassign_throttle, args.reassign_baseline_s = 48 << 20, 4_000_000, 3.0
    if args.reassign_bytes < 1 << 20 or args.reassign_throttle < 1 or args.reassign_rate < 1 \
            or args.reassign_baseline_s <= 0:
        ap.error("--reassign-bytes must be at least 1 MiB, --reassign-throttle, --reassign-rate and "
                 "--reassign-baseline-s above 0")
    unknown = set(args.phases.split(",")) - set(PHASES)
    if unknown:
        ap.error(f"unknown phases {sorted(unknown)}")
    if args.perf is None and {"produce", "reassign"} & set(args.phases.split(",")):
        args.perf = resolve_perf(None)
        if args.perf is None:
            ap.error("no rdkafka_performance: run bash bench/setup.sh or pass --perf")

    def on_term(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_term)
    work = tempfile.mkdtemp(prefix="replication-bench-", dir=args.data_root)
    result = {"settings": {k: getattr(args, k) for k in ("phases", "size", "messages", "rounds", "lat_rate",
                                                         "lat_seconds", "kills", "rolling_rate", "reassign_bytes",
                                                         "reassign_throttle", "reassign_rate",
                                                         "reassign_baseline_s")}}
    rc = 0
    try:
        run(args, work, result)
    except KeyboardInterrupt as e:
        result["error"] = f"interrupted ({e or 'SIGINT'})"
        rc = 130
    except Exception as e:  # noqa: BLE001 - reported in the JSON
        result["error"] = f"{type(e).__name__}: {e}"
        result["log_tails"] = {os.path.basename(nd.log_path): nd.log_tail(8) for nd in mb.LIVE}
        rc = 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        mb.stop_all()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(result))
    return rc


if __name__ == "__main__":
    sys.exit(main())
