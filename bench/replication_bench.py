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

One JSON object on stdout; progress on stderr. Every process started here is
stopped on exit (and gets SIGKILL from the kernel if this script dies).

    python3 bench/replication_bench.py --tributary-bin target/release/tributary
    python3 bench/replication_bench.py --tributary-bin target/debug/tributary --quick
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
from run import parse_perf_produce, resolve_perf  # noqa: E402 - rdkafka_performance as run.py finds and reads it

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ASSIGN_BENCH = os.path.join(REPO, "bench", "assign_bench.py")
ISR_TIMEOUT_S = 120.0
FAILOVER_LIMIT_S = 60.0
PHASES = ("produce", "latency", "failover", "rolling")


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


def perf_produce(perf: str, bootstrap: str, topic: str, size: int, count: int, timeout: float) -> dict:
    argv = [perf, "-P", "-t", topic, "-b", bootstrap, "-s", str(size), "-c", str(count), "-a", "-1",
            "-X", "linger.ms=5"]
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

    def __init__(self, bootstrap: str, topic: str, partition: int | None, every: float, config: dict):
        super().__init__(daemon=True)
        from confluent_kafka import Producer

        self.topic, self.partition, self.every = topic, partition, every
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
                value = f"{n}".encode()

                def report(err, msg, produced_at=produced_at, value=value):
                    with self.lock:
                        self.reports.append((produced_at, time.monotonic(), None if err is None else str(err)))
                        if err is None:
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
                     ("rolling", lambda: rolling_phase(args, cluster, prefix))):
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
    ap.add_argument("--quick", action="store_true", help="small sizes, for trying the script out")
    ap.add_argument("--data-root", default=tempfile.gettempdir())
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    if args.quick:
        args.messages, args.rounds, args.lat_seconds, args.kills = 20_000, 1, 5, 2
    unknown = set(args.phases.split(",")) - set(PHASES)
    if unknown:
        ap.error(f"unknown phases {sorted(unknown)}")
    if args.perf is None and "produce" in args.phases:
        args.perf = resolve_perf(None)
        if args.perf is None:
            ap.error("no rdkafka_performance: run bash bench/setup.sh or pass --perf")

    def on_term(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_term)
    work = tempfile.mkdtemp(prefix="replication-bench-", dir=args.data_root)
    result = {"settings": {k: getattr(args, k) for k in ("phases", "size", "messages", "rounds", "lat_rate",
                                                         "lat_seconds", "kills", "rolling_rate")}}
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
