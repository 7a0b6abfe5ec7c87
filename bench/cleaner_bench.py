#!/usr/bin/env python3
"""Produce latency with and without the log cleaner at work.

A paced producer sends --rate records/s of --size bytes (default 5,000/s of 100 B)
with acks=all and linger.ms=5 to a fresh one-partition topic of the default
(delete) policy for --seconds, and measures the latency of every record from its
*intended* send time to its delivery report (the pacing and the intended-time clock
are bench_kafka.py's latency producer's, so a stalled producer is not hidden).
It does so in up to three windows, on the same broker, one after the other
(--rounds times over, each window reported by its round with the median p99):

  quiet     nothing else runs.
  control   a second process keeps overwriting --keys keys with --value-size values
            at --overwrite-rate records/s on a topic with cleanup.policy=delete
            (and the same small segment.bytes): the same produce load as below,
            but nothing for the cleaner to do.
  cleaner   the same second process on a compacted topic (cleanup.policy=compact,
            small segment.bytes, min.cleanable.dirty.ratio=0.01), so closed
            segments keep carrying dirty data and the cleaner keeps compacting.

Both background topics are first filled with one value per key as fast as the
producer goes (off the clock); the window starts --warmup-s after the paced
overwrites have begun and, for "cleaner", after the broker has logged at least one
"compacted" line for the topic (the cleaner has started on it).

For each window the broker log (--broker-log: the file with its INFO lines; `tributary start` writes
<data dir>/logs/tributary.log) is read from
where it stood at the window's start to where it stands at its end: the
"compacted" lines that appeared, and the sum of their bytes_before (bytes of the
segments the cleaner rewrote), bytes_after (what it wrote) and bytes_skipped (bytes
of the segments it read but left as they were: nothing in them was shadowed). With --broker-pid, the broker's CPU
seconds over the window are read from /proc, and so are those of its "log-cleaner"
thread. The cleaner window fails (an "error" in the output, exit code 1) if no
"compacted" line for its topic appeared during it.

The broker should run with a short log.cleaner.backoff.ms (run.py passes
--override log.cleaner.backoff.ms=100): with Kafka's default of 15 s the cleaner
may sleep through a whole window.

Prints exactly one JSON object on stdout (diagnostics go to stderr). Only point it
at brokers you run yourself on loopback.

Example:
  tributary start --kafka-port 9092 --data-dir /tmp/d --no-schema-registry --override log.cleaner.backoff.ms=100 2>broker.log &
  python3 bench/cleaner_bench.py --bootstrap 127.0.0.1:9092 --broker-log broker.log --broker-pid $!
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import random
import re
import struct
import sys
import time
import uuid

import confluent_kafka
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

CLK_TCK = os.sysconf("SC_CLK_TCK")
WARMUP_RECORDS = 200
FIRST_CLEAN_TIMEOUT_S = 30.0
RE_COMPACTED = re.compile(r"\bcompacted\b")
RE_FIELD = re.compile(r"\b(topic|partition|bytes_before|bytes_after|bytes_skipped|records_read|records_kept|ms)=(\"[^\"]*\"|\S+)")


def log(*a):
    print(f"[cleaner {time.strftime('%H:%M:%S')}]", *a, file=sys.stderr, flush=True)


def pct(sorted_vals, q):
    """bench_kafka.py's percentile: the value at round(q * (n - 1))."""
    if not sorted_vals:
        return None
    i = min(len(sorted_vals) - 1, max(0, int(round(q * (len(sorted_vals) - 1)))))
    return sorted_vals[i]


def create_topic(bootstrap, name, config=None, timeout=30.0):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    res = {"topic": name, "config": config or {}}
    try:
        fs = admin.create_topics([NewTopic(name, num_partitions=1, replication_factor=1, config=config or {})],
                                 operation_timeout=timeout, request_timeout=timeout)
        fs[name].result(timeout=timeout)
        res["create_ok"] = True
    except Exception as e:  # noqa: BLE001
        res["create_ok"] = False
        res["create_error"] = str(e)
        return res
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        tm = admin.list_topics(topic=name, timeout=5).topics.get(name)
        if tm is not None and tm.error is None and tm.partitions:
            break
        time.sleep(0.1)
    return res


def delete_topic(bootstrap, name, timeout=30.0):
    try:
        admin = AdminClient({"bootstrap.servers": bootstrap})
        admin.delete_topics([name], operation_timeout=timeout, request_timeout=timeout)[name].result(timeout)
        return None
    except Exception as e:  # noqa: BLE001
        return str(e)


def producer_conf(bootstrap, linger_ms, extra=None):
    """bench_kafka.py's producer settings: acks=all, linger.ms, batch.size 1 MiB, no compression, no idempotence."""
    c = {
        "bootstrap.servers": bootstrap,
        "acks": "all",
        "linger.ms": linger_ms,
        "batch.size": 1_048_576,
        "compression.type": "none",
        "queue.buffering.max.messages": 2_000_000,
        "queue.buffering.max.kbytes": 2_097_151,
        "message.max.bytes": 1_048_576 + 1024,
        "enable.idempotence": False,
    }
    if extra:
        c.update(extra)
    return c


# ---------------------------------------------------------------- broker observation


def cpu_s(pid, tid=None):
    path = f"/proc/{pid}/stat" if tid is None else f"/proc/{pid}/task/{tid}/stat"
    try:
        with open(path) as f:
            stat = f.read()
    except OSError:
        return None
    rest = stat[stat.rfind(")") + 2:].split()
    return (int(rest[11]) + int(rest[12])) / CLK_TCK


def cleaner_tid(pid):
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{tid}/comm") as f:
                    if f.read().strip() == "log-cleaner":
                        return tid
            except OSError:
                continue
    except OSError:
        pass
    return None


class BrokerView:
    """Where the broker log stands, and the broker's CPU counters."""

    def __init__(self, log_path, pid):
        self.log_path = log_path
        self.pid = pid
        self.tid = cleaner_tid(pid) if pid else None

    def mark(self):
        m = {"t": time.monotonic()}
        if self.log_path:
            try:
                m["log_pos"] = os.path.getsize(self.log_path)
            except OSError:
                m["log_pos"] = None
        if self.pid:
            m["cpu"] = cpu_s(self.pid)
            m["cleaner_cpu"] = cpu_s(self.pid, self.tid) if self.tid else None
        return m

    def compactions(self, start, end=None, topic=None):
        """The "compacted" lines written between two marks (end None: up to now)."""
        if not self.log_path or start.get("log_pos") is None:
            return None
        with open(self.log_path, "rb") as f:
            f.seek(start["log_pos"])
            n = (end["log_pos"] - start["log_pos"]) if end and end.get("log_pos") is not None else -1
            text = f.read(n).decode("utf-8", "replace")
        out = []
        for line in text.splitlines():
            if not RE_COMPACTED.search(line) or "bytes_before=" not in line:
                continue
            fields = {k: v.strip('"') for k, v in RE_FIELD.findall(line)}
            if topic and fields.get("topic") != topic:
                continue
            out.append(fields)
        return out

    def window(self, start, end, topic):
        r = {"seconds": round(end["t"] - start["t"], 3)}
        if self.pid and start.get("cpu") is not None and end.get("cpu") is not None:
            r["broker_cpu_s"] = round(end["cpu"] - start["cpu"], 3)
            if start.get("cleaner_cpu") is not None and end.get("cleaner_cpu") is not None:
                r["cleaner_thread_cpu_s"] = round(end["cleaner_cpu"] - start["cleaner_cpu"], 3)
                r["cleaner_thread_busy_pct"] = round(100.0 * r["cleaner_thread_cpu_s"] / max(r["seconds"], 1e-9), 1)
        all_lines = self.compactions(start, end)
        if all_lines is not None:
            mine = [c for c in all_lines if topic is None or c.get("topic") == topic]

            def total(k):
                return sum(int(c[k]) for c in mine if str(c.get(k, "")).isdigit())

            r["compacted_lines_all_topics"] = len(all_lines)
            r["compacted_lines"] = len(mine)
            r["cleaner_bytes_read"] = total("bytes_before")
            r["cleaner_bytes_written"] = total("bytes_after")
            r["cleaner_bytes_skipped"] = total("bytes_skipped")
            r["cleaner_records_read"] = total("records_read")
            r["cleaner_ms_logged"] = total("ms")
        return r


# ---------------------------------------------------------------- background overwriter (its own process)


def _overwriter(bootstrap, topic, keys, value_size, rate, linger_ms, stop_evt, filled_evt, counters):
    errors = {"n": 0, "first": None}

    def on_err(err, msg):
        if err is not None:
            errors["n"] += 1
            errors["first"] = errors["first"] or str(err)

    p = Producer(producer_conf(bootstrap, linger_ms, {"delivery.report.only.error": True, "on_delivery": on_err}))
    pool = [os.urandom(value_size) for _ in range(256)]  # incompressible values
    keyb = [b"key-%07d" % k for k in range(keys)]

    def send(k, i):
        while True:
            try:
                p.produce(topic, key=keyb[k], value=pool[i & 0xFF])
                return
            except BufferError:
                p.poll(0.01)

    # Fill: one value per key, as fast as it goes.
    t0 = time.monotonic()
    for k in range(keys):
        send(k, k)
        if (k & 0x3FF) == 0:
            p.poll(0)
    p.flush(120)
    counters["fill_s"] = round(time.monotonic() - t0, 3)
    filled_evt.set()
    # Paced overwrites of random keys until told to stop.
    rng = random.Random(1)
    interval_ns = int(1e9 / rate)
    t0 = time.monotonic_ns()
    i = 0
    while not stop_evt.is_set():
        due = (time.monotonic_ns() - t0) // interval_ns + 1
        while i < due:
            send(rng.randrange(keys), i)
            i += 1
        p.poll(0)
        counters["sent"] = i
        sl = (t0 + i * interval_ns - time.monotonic_ns()) / 1e9
        if sl > 0:
            time.sleep(min(sl, 0.002))
    counters["not_flushed"] = p.flush(60)
    counters["sent"] = i
    counters["errors"] = errors["n"]
    counters["first_error"] = errors["first"]


class Overwriter:
    def __init__(self, a, topic):
        ctx = mp.get_context("spawn")
        self.mgr = ctx.Manager()
        self.counters = self.mgr.dict()
        self.stop_evt = ctx.Event()
        self.filled = ctx.Event()
        self.proc = ctx.Process(target=_overwriter, daemon=True,
                                args=(a.bootstrap, topic, a.keys, a.value_size, a.overwrite_rate, a.linger_ms,
                                      self.stop_evt, self.filled, self.counters))

    def start(self):
        self.proc.start()

    def sent(self):
        return self.counters.get("sent", 0)

    def stop(self):
        self.stop_evt.set()
        self.proc.join(90)
        if self.proc.is_alive():
            self.proc.kill()
        out = dict(self.counters)
        self.mgr.shutdown()
        return out


# ---------------------------------------------------------------- the measured producer


def paced_latency(a, topic):
    """bench_kafka.py's paced producer; latency = delivery report time - intended send time."""
    lats = []
    errors = {"n": 0, "first": None}

    def on_delivery(err, msg):
        now = time.monotonic_ns()
        if err is not None:
            errors["n"] += 1
            errors["first"] = errors["first"] or str(err)
            return
        v = msg.value()
        if v and len(v) >= 8:
            (intended,) = struct.unpack_from("<q", v, 0)
            if intended > 0:
                lats.append((now - intended) / 1e6)

    p = Producer(producer_conf(a.bootstrap, a.linger_ms, {"on_delivery": on_delivery}))
    pad = b"\0" * max(0, a.size - 8)
    # Warm-up, off the clock: connection, metadata, first batches. Intended time 0 = not counted.
    for _ in range(WARMUP_RECORDS):
        p.produce(topic, struct.pack("<q", 0) + pad)
    p.flush(30)
    warm_errors = errors["n"]
    n = int(a.rate * a.seconds)
    interval_ns = int(1e9 / a.rate)
    t0 = time.monotonic_ns()
    i = 0
    while i < n:
        now = time.monotonic_ns()
        due = min(n, (now - t0) // interval_ns + 1)
        while i < due:
            p.produce(topic, struct.pack("<q", t0 + i * interval_ns) + pad)
            i += 1
        p.poll(0)
        sl = (t0 + i * interval_ns - time.monotonic_ns()) / 1e9
        if sl > 0:
            time.sleep(min(sl, 0.001))
    send_s = (time.monotonic_ns() - t0) / 1e9
    rem = p.flush(60)
    lats.sort()
    return {
        "rate_target": a.rate,
        "seconds": a.seconds,
        "size": a.size,
        "sent": i,
        "delivered": len(lats),
        "errors": errors["n"] - warm_errors,
        "first_error": errors["first"],
        "warmup_errors": warm_errors,
        "not_flushed": rem,
        "send_s": round(send_s, 3),
        "p50_ms": round(pct(lats, 0.50), 3) if lats else None,
        "p90_ms": round(pct(lats, 0.90), 3) if lats else None,
        "p99_ms": round(pct(lats, 0.99), 3) if lats else None,
        "p999_ms": round(pct(lats, 0.999), 3) if lats else None,
        "max_ms": round(lats[-1], 3) if lats else None,
    }


# ---------------------------------------------------------------- windows


def background_config(a, policy):
    c = {"cleanup.policy": policy, "segment.bytes": str(a.segment_bytes)}
    if policy == "compact":
        c["min.cleanable.dirty.ratio"] = "0.01"
    return c


def run_window(a, view, name, lat_topic, run_id):
    log(f"window {name}")
    out = {"window": name}
    bg = None
    topic = None
    try:
        if name != "quiet":
            policy = "compact" if name == "cleaner" else "delete"
            topic = f"{a.topic_prefix}-{name}-{run_id}"
            out["background_topic"] = create_topic(a.bootstrap, topic, background_config(a, policy))
            if not out["background_topic"].get("create_ok"):
                out["error"] = f"creating the {policy} topic failed: {out['background_topic'].get('create_error')}"
                return out
            bg = Overwriter(a, topic)
            t_fill = time.monotonic()
            bg.start()
            if not bg.filled.wait(180):
                out["error"] = "the background producer did not finish filling its topic in 180 s"
                return out
            out["fill_wall_s"] = round(time.monotonic() - t_fill, 2)
            if name == "cleaner":
                # Wait for the cleaner to have started on the topic (it usually has, during the fill).
                start = {"t": t_fill, "log_pos": 0}
                deadline = time.monotonic() + FIRST_CLEAN_TIMEOUT_S
                while time.monotonic() < deadline:
                    seen = view.compactions(start, None, topic)
                    if seen is None or seen:
                        break
                    time.sleep(0.2)
                out["first_clean_wait_s"] = round(time.monotonic() - t_fill, 2)
            time.sleep(a.warmup_s)
        sent0 = bg.sent() if bg else 0
        m0 = view.mark()
        out["latency"] = paced_latency(a, lat_topic)
        m1 = view.mark()
        out["broker"] = view.window(m0, m1, topic)
        if bg:
            out["overwrites_in_window"] = bg.sent() - sent0
            out["overwrite_rate_achieved"] = round(out["overwrites_in_window"] / max(out["broker"]["seconds"], 1e-9), 1)
    finally:
        if bg:
            out["background"] = bg.stop()
        if topic:
            err = delete_topic(a.bootstrap, topic)
            if err:
                out["delete_error"] = err
    lat = out.get("latency") or {}
    if lat.get("errors") or (lat.get("delivered") or 0) < (lat.get("sent") or 0):
        out["warning"] = (f"{name}: {lat.get('delivered')} of {lat.get('sent')} delivered, {lat.get('errors')} "
                          f"delivery errors ({lat.get('first_error')})")
    if name == "cleaner" and "error" not in out:
        b = out.get("broker") or {}
        if b.get("compacted_lines") is None:
            out["error"] = "no broker log to check (--broker-log): cannot tell whether the cleaner ran"
        elif b["compacted_lines"] == 0:
            out["error"] = (f"the cleaner logged no 'compacted' line for {topic} during the "
                            f"{b.get('seconds')} s window (is log.cleaner.backoff.ms short? is the cleaner enabled?)")
    return out


def median_round(results):
    """The round with the median produce p99 (the lower middle for an even count), with every round's
    p99 beside it; a round that failed wins, so its error is reported."""
    failed = [r for r in results if r.get("error")]
    if failed:
        chosen = dict(failed[0])
    else:
        ranked = sorted(results, key=lambda r: (r.get("latency") or {}).get("p99_ms") or 0.0)
        chosen = dict(ranked[(len(ranked) - 1) // 2])
    chosen["rounds_p99_ms"] = [(r.get("latency") or {}).get("p99_ms") for r in results]
    return chosen


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bootstrap", default="127.0.0.1:9092", help="broker address (default %(default)s)")
    ap.add_argument("--broker-log", help="the broker's log file with its INFO lines (for tributary start: <data dir>/logs/tributary.log), to count 'compacted' lines")
    ap.add_argument("--broker-pid", type=int, help="the broker's pid, for its CPU and its log-cleaner thread's")
    ap.add_argument("--windows", default="quiet,control,cleaner",
                    help="which windows, in order (default %(default)s)")
    ap.add_argument("--rate", type=float, default=5000.0, help="measured producer: records/s (default %(default)s)")
    ap.add_argument("--size", type=int, default=100, help="measured producer: record bytes, >= 8 (default %(default)s)")
    ap.add_argument("--seconds", type=float, default=20.0, help="measured producer: seconds per window (default %(default)s)")
    ap.add_argument("--linger-ms", type=int, default=5, help="both producers' linger.ms (default %(default)s)")
    ap.add_argument("--keys", type=int, default=50_000, help="background: distinct keys (default %(default)s)")
    ap.add_argument("--value-size", type=int, default=1024, help="background: value bytes (default %(default)s)")
    ap.add_argument("--overwrite-rate", type=float, default=5000.0,
                    help="background: overwrites/s after the fill (default %(default)s)")
    ap.add_argument("--segment-bytes", type=int, default=1 << 20,
                    help="background topics' segment.bytes (default %(default)s)")
    ap.add_argument("--warmup-s", type=float, default=3.0,
                    help="background: seconds of paced overwrites before a window starts (default %(default)s)")
    ap.add_argument("--rounds", type=int, default=1,
                    help="run the windows this many times, in turn, and report each window's round with the "
                         "median p99 (the machine's noise moves single rounds a lot) (default %(default)s)")
    ap.add_argument("--topic-prefix", default="cleaner", help="topics are PREFIX-... (default %(default)s)")
    ap.add_argument("--timeout", type=float, default=600.0, help="accepted for symmetry; each step is bounded")
    a = ap.parse_args()
    if a.size < 8:
        ap.error("--size must be at least 8 (the intended send time)")
    if a.rounds < 1:
        ap.error("--rounds must be at least 1")
    windows = [w.strip() for w in a.windows.split(",") if w.strip()]
    bad = [w for w in windows if w not in ("quiet", "control", "cleaner")]
    if bad:
        ap.error(f"unknown window(s): {', '.join(bad)}")

    out = {
        "client": "confluent-kafka %s / librdkafka %s" % (confluent_kafka.__version__, confluent_kafka.libversion()[0]),
        "producer": {"acks": "all", "linger.ms": a.linger_ms, "batch.size": 1_048_576, "compression.type": "none",
                     "enable.idempotence": False},
        "rate": a.rate, "size": a.size, "seconds": a.seconds,
        "background": {"keys": a.keys, "value_size": a.value_size, "overwrite_rate": a.overwrite_rate,
                       "segment_bytes": a.segment_bytes, "compact_config": background_config(a, "compact")},
        "windows": {},
    }
    run_id = uuid.uuid4().hex[:6]
    view = BrokerView(a.broker_log, a.broker_pid)
    if a.broker_pid and not view.tid:
        out["note"] = "no thread named log-cleaner in the broker process: cleaner CPU not measured"
    lat_topic = f"{a.topic_prefix}-lat-{run_id}"
    out["lat_create"] = create_topic(a.bootstrap, lat_topic)
    rc = 0
    rounds = {w: [] for w in windows}
    for r in range(a.rounds):
        for w in windows:
            try:
                res = run_window(a, view, w, lat_topic, f"{run_id}-{r}")
            except Exception as e:  # noqa: BLE001
                res = {"window": w, "error": repr(e)}
            res["round"] = r + 1
            rounds[w].append(res)
            log(w, f"round {r + 1}/{a.rounds}",
                json.dumps({k: v for k, v in res.items() if k in ("latency", "broker", "error", "warning")}))
            if res.get("error"):
                rc = 1
    for w, results in rounds.items():
        out["windows"][w] = median_round(results)
    delete_topic(a.bootstrap, lat_topic)
    print(json.dumps(out), flush=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
