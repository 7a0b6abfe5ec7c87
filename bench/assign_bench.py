#!/usr/bin/env python3
"""Consume throughput and end-to-end latency with assign() instead of a consumer group.

The two consumer phases of shared/tools/bench_kafka.py consume through a consumer
group (subscribe()), which needs FindCoordinator/JoinGroup/SyncGroup on the broker.
This script measures the same two things with a consumer that assign()s every
partition of the topic itself, so a broker without a group coordinator can be
compared, and a broker that has one is measured without its group-join time.
Everything else mirrors bench_kafka.py, so the two can be read side by side.

Modes:

  consume  1. create a fresh topic with --partitions partitions (AdminClient)
           2. produce --messages records of --size bytes as fast as possible, with
              bench_kafka.py's producer settings (acks=all, linger.ms=5,
              batch.size=1 MiB, no compression, no idempotence unless asked)
           3. consume them all with a new Consumer that assign()s every partition at
              OFFSET_BEGINNING. Its fetch settings are librdkafka's defaults except
              exactly the overrides bench_kafka.py's throughput consumer uses
              (reported under "fetch_overrides"): fetch.max.bytes=52428800 (also the
              default), max.partition.fetch.bytes=10485760,
              queued.max.messages.kbytes=262144, fetch.wait.max.ms=500 (the default;
              --consume-fetch-wait-ms), auto.offset.reset=earliest.
              Reports msgs/s and MB/s from the first record to the last (as
              bench_kafka.py), and from assign() to the last record. The consumer
              fetches the topic's metadata before assign(), outside that clock
              ("setup_s"): assign() before the partition leaders are known parks the
              partitions on librdkafka's 500 ms offset-query retry timer, a client-side
              delay that would be the same for every broker.

  latency  On a second fresh topic (--partitions, default 1): a consumer process
           assign()s every partition at OFFSET_BEGINNING (the topic is new, so that is
           also its end) with default fetch settings (fetch.wait.max.ms=500, as
           bench_kafka.py passes; --fetch-wait-max-ms); a producer process sends at
           --lat-rate records/s for --lat-seconds, embedding the intended send time
           (time.time_ns(), little-endian int64) in the first 8 bytes of each
           --size-byte payload; the consumer computes receive time - intended send
           time (both time.time_ns() on the same machine). Reports p50/p90/p99/p99.9/
           max in ms. The producer, its pacing loop, the consumer's poll(0.1) loop and
           the percentile method are bench_kafka.py's.

Differences from bench_kafka.py:
  * The Python client refuses a Consumer without group.id, so each consumer gets a
    fresh random group.id, but never subscribes, commits or fetches committed
    offsets: enable.auto.commit=false and enable.auto.offset.store=false. librdkafka
    still looks the group's coordinator up in the background (FindCoordinator, seen
    against Tansu); a broker without groups does not advertise it and the fetches
    do not wait for it. Client-level errors, if any, are reported under
    "client_errors".
  * bench_kafka.py's consume phase ends with an OffsetCommit/OffsetFetch check; there
    is none here (no group).
  * bench_kafka.py's "from subscribe" clock starts before its Consumer exists and
    includes connecting, metadata and the group join; the "from assign" clock here
    starts after the consumer has connected and fetched the topic's metadata (see
    "setup_s"), and includes ListOffsets and the fetches.
  * Latency start: bench_kafka.py's consumer signals "ready" when the group
    assignment arrives, and the producer starts 1 s later. Here the consumer signals
    "ready" once its fetcher has had a Fetch response for every partition (librdkafka's
    cached high watermark is known), or after 10 s if that never shows, and the
    producer still starts 1 s later. Neither consumer can miss records: the topic is
    fresh and both start at its beginning.

Prints exactly one JSON object on stdout (diagnostics go to stderr). Only point it at
brokers you run yourself on loopback.

Examples:
  python3 bench/assign_bench.py consume --bootstrap 127.0.0.1:9092 --messages 1000000 --size 100 --partitions 1
  python3 bench/assign_bench.py latency --bootstrap 127.0.0.1:9092 --lat-rate 5000 --lat-seconds 20
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import struct
import sys
import time
import uuid

from confluent_kafka import (OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Producer,
                             TopicPartition)
from confluent_kafka.admin import AdminClient, NewTopic

import confluent_kafka

READY_TIMEOUT_S = 10.0  # latency consumer: give up waiting for a first Fetch response
MAX_CLIENT_ERRORS = 5


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def pct(sorted_vals, q):
    """bench_kafka.py's percentile: the value at round(q * (n - 1))."""
    if not sorted_vals:
        return None
    i = min(len(sorted_vals) - 1, max(0, int(round(q * (len(sorted_vals) - 1)))))
    return sorted_vals[i]


class ClientErrors:
    """error_cb sink: a count and the first few distinct messages."""

    def __init__(self):
        self.count = 0
        self.first = []

    def __call__(self, err):
        self.count += 1
        s = str(err)
        if s not in self.first and len(self.first) < MAX_CLIENT_ERRORS:
            self.first.append(s)

    def report(self):
        return {"count": self.count, "first": self.first}


def create_topic(bootstrap, name, partitions, rf, timeout):
    """CreateTopics, then wait until metadata shows all partitions (as bench_kafka.py)."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    t0 = time.perf_counter()
    res = {"topic": name, "requested_partitions": partitions}
    try:
        fs = admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=rf)],
                                 operation_timeout=timeout, request_timeout=timeout)
        fs[name].result(timeout=timeout)
        res["create_ok"] = True
    except Exception as e:  # noqa: BLE001
        res["create_ok"] = False
        res["create_error"] = str(e)
    res["create_s"] = round(time.perf_counter() - t0, 4)
    deadline = time.time() + timeout
    seen = None
    while time.time() < deadline:
        try:
            tm = admin.list_topics(topic=name, timeout=5).topics.get(name)
            if tm is not None and tm.error is None:
                seen = len(tm.partitions)
                if seen >= partitions:
                    break
        except Exception as e:  # noqa: BLE001
            res["metadata_error"] = str(e)
        time.sleep(0.2)
    res["metadata_partitions"] = seen
    return res


def producer_conf(a, extra=None):
    """bench_kafka.py's producer configuration, unchanged."""
    c = {
        "bootstrap.servers": a.bootstrap,
        "acks": a.acks,
        "linger.ms": a.linger_ms,
        "batch.size": a.batch_size,
        "compression.type": a.compression,
        "queue.buffering.max.messages": 2_000_000,
        "queue.buffering.max.kbytes": 2_097_151,
        "message.max.bytes": max(1_000_000, a.batch_size + 1024),
        "enable.idempotence": a.idempotence,
    }
    if extra:
        c.update(extra)
    return c


def assign_plumbing(prefix):
    """What a Python Consumer needs to exist and to stay out of group machinery.

    Not fetch settings: no subscribe(), no commits, no stored offsets."""
    return {
        "group.id": f"{prefix}-{uuid.uuid4().hex[:8]}",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
    }


def consume_overrides(a):
    """Exactly the overrides bench_kafka.py's throughput consumer sets (besides its group settings)."""
    return {
        "auto.offset.reset": "earliest",
        "fetch.max.bytes": 52_428_800,
        "max.partition.fetch.bytes": 10_485_760,
        "queued.max.messages.kbytes": 262_144,
        "fetch.wait.max.ms": a.consume_fetch_wait_ms,
    }


def latency_overrides(a):
    """Exactly the overrides bench_kafka.py's latency consumer sets (besides its group settings)."""
    return {
        "auto.offset.reset": "earliest",
        "fetch.wait.max.ms": a.fetch_wait_max_ms,
    }


def warm_metadata(c, topic):
    """Fetch the topic's metadata through the consumer; returns an error string or None."""
    try:
        tm = c.list_topics(topic=topic, timeout=10).topics.get(topic)
        if tm is None or tm.error is not None:
            return f"topic metadata: {tm.error if tm is not None else 'missing'}"
    except KafkaException as e:
        return str(e)
    return None


# ---------------------------------------------------------------- consume mode


def run_produce(a, topic):
    """bench_kafka.py's produce phase."""
    errors = {"count": 0, "first": None}

    def on_err(err, msg):
        if err is not None:
            errors["count"] += 1
            if errors["first"] is None:
                errors["first"] = str(err)

    stats = {"rtt_p50_us": [], "rtt_p99_us": []}

    def on_stats(js):
        try:
            d = json.loads(js)
            for b in d.get("brokers", {}).values():
                rtt = b.get("rtt", {})
                if rtt.get("cnt", 0) > 0:
                    stats["rtt_p50_us"].append(rtt.get("p50"))
                    stats["rtt_p99_us"].append(rtt.get("p99"))
        except Exception:  # noqa: BLE001
            pass

    p = Producer(producer_conf(a, {
        "delivery.report.only.error": True,
        "on_delivery": on_err,
        "statistics.interval.ms": 1000,
        "stats_cb": on_stats,
    }))
    payload = os.urandom(a.size)
    n = a.messages
    produce = p.produce
    poll = p.poll
    t0 = time.perf_counter()
    i = 0
    while i < n:
        try:
            produce(topic, payload)
            i += 1
            if (i & 0x3FF) == 0:
                poll(0)
        except BufferError:
            poll(0.01)
        if time.perf_counter() - t0 > a.timeout:
            break
    t_enq = time.perf_counter() - t0
    remaining = p.flush(a.timeout)
    dt = time.perf_counter() - t0
    delivered = i - remaining - errors["count"]
    r = {
        "produced_attempted": i,
        "delivered": delivered,
        "errors": errors["count"],
        "first_error": errors["first"],
        "not_flushed": remaining,
        "enqueue_s": round(t_enq, 3),
        "total_s": round(dt, 3),
        "msgs_per_s": round(delivered / dt, 1) if dt > 0 else None,
        "MB_per_s": round(delivered * a.size / dt / 1e6, 2) if dt > 0 else None,
    }
    if stats["rtt_p50_us"]:
        r["broker_rtt_p50_us_median_window"] = sorted(stats["rtt_p50_us"])[len(stats["rtt_p50_us"]) // 2]
        r["broker_rtt_p99_us_max_window"] = max(stats["rtt_p99_us"])
    return r


def run_consume(a, topic, partitions, expected):
    """assign() every partition at OFFSET_BEGINNING; bench_kafka.py's consume loop and clocks."""
    cerr = ClientErrors()
    overrides = consume_overrides(a)
    plumbing = assign_plumbing("assign")
    conf = {"bootstrap.servers": a.bootstrap, **plumbing, **overrides, "error_cb": cerr}
    t_create = time.perf_counter()
    c = Consumer(conf)
    # Metadata first: assign() before librdkafka knows the partition leaders parks the
    # partitions on a client-side 500 ms offset-query retry timer, the same for every broker.
    warm_error = warm_metadata(c, topic)
    t_assign = time.perf_counter()
    c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
    got = 0
    nbytes = 0
    errs = 0
    first_err = None
    t_first = None
    t_last = None
    per_partition = [0] * partitions
    last_progress = time.perf_counter()
    while got < expected:
        msgs = c.consume(num_messages=10000, timeout=1.0)
        now = time.perf_counter()
        if msgs:
            for m in msgs:
                e = m.error()
                if e is not None:
                    if e.code() != KafkaError._PARTITION_EOF:
                        errs += 1
                        first_err = first_err or str(e)
                    continue
                got += 1
                nbytes += len(m.value() or b"")
                p = m.partition()
                if 0 <= p < partitions:
                    per_partition[p] += 1
            if t_first is None:
                t_first = now
            t_last = now
            last_progress = now
        elif now - last_progress > a.idle_timeout:
            break
        if now - t_assign > a.timeout:
            break
    c.close()
    end = t_last or time.perf_counter()
    span_first = (end - t_first) if t_first else None
    span_assign = end - t_assign
    return {
        "method": "assign",
        "partitions_assigned": partitions,
        "consumed": got,
        "consumed_per_partition": per_partition,
        "bytes": nbytes,
        "errors": errs,
        "first_error": first_err,
        "client_errors": cerr.report(),
        "setup_s": round(t_assign - t_create, 4),
        "setup_metadata_error": warm_error,
        "first_record_s": round(t_first - t_assign, 3) if t_first else None,
        "assign_to_last_s": round(span_assign, 3),
        "first_to_last_s": round(span_first, 3) if span_first else None,
        "msgs_per_s_from_assign": round(got / span_assign, 1) if span_assign else None,
        "msgs_per_s_from_first": round(got / span_first, 1) if span_first else None,
        "MB_per_s_from_assign": round(nbytes / span_assign / 1e6, 2) if span_assign else None,
        "MB_per_s_from_first": round(nbytes / span_first / 1e6, 2) if span_first else None,
        "fetch_overrides": overrides,
        "consumer_plumbing": {k: v for k, v in plumbing.items() if k != "group.id"},
    }


# ---------------------------------------------------------------- latency mode (separate processes)


def _fetcher_ready(c, tps):
    """True once librdkafka has a high watermark from a Fetch response for every partition."""
    for tp in tps:
        try:
            wm = c.get_watermark_offsets(tp, cached=True)
        except KafkaException:
            return False
        if not wm or wm[1] < 0:
            return False
    return True


def _lat_consumer(a, topic, partitions, expected, ready_evt, out_q):
    cerr = ClientErrors()
    overrides = latency_overrides(a)
    c = Consumer({"bootstrap.servers": a.bootstrap, **assign_plumbing("assign-lat"), **overrides,
                  "error_cb": cerr})
    tps = [TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)]
    warm_metadata(c, topic)
    t_assign = time.time()
    c.assign(tps)
    ready_how = None
    lats = []
    deadline = time.time() + a.lat_seconds + 120
    last = time.time()
    # poll() returns as soon as one message is available (consume(n, t) would wait
    # for n messages or t seconds and inflate the measured latency)
    poll = c.poll
    while len(lats) < expected and time.time() < deadline:
        m = poll(0.1)
        if ready_how is None:
            if _fetcher_ready(c, tps):
                ready_how = "fetch_response"
            elif time.time() - t_assign > READY_TIMEOUT_S:
                ready_how = "timeout"
            if ready_how is not None:
                ready_evt.set()
        if m is None:
            if ready_evt.is_set() and len(lats) > 0 and time.time() - last > a.idle_timeout:
                break
            continue
        now_ns = time.time_ns()
        last = time.time()
        if m.error() is not None:
            continue
        v = m.value()
        if v and len(v) >= 8:
            (sent_ns,) = struct.unpack_from("<q", v, 0)
            lats.append((now_ns - sent_ns) / 1e6)
    c.close()
    out_q.put({"lats": lats, "ready": ready_how, "client_errors": cerr.report(), "overrides": overrides})


def _lat_producer(a, topic, n, start_evt, out_q):
    """bench_kafka.py's latency producer, unchanged."""
    errors = {"n": 0, "first": None}

    def on_err(err, msg):
        if err is not None:
            errors["n"] += 1
            errors["first"] = errors["first"] or str(err)

    p = Producer(producer_conf(a, {"delivery.report.only.error": True, "on_delivery": on_err}))
    start_evt.wait(60)
    pad = b"\0" * max(0, a.size - 8)
    t0 = time.time_ns()
    interval_ns = int(1e9 / a.lat_rate)
    i = 0
    while i < n:
        now = time.time_ns()
        due = min(n, (now - t0) // interval_ns + 1)
        while i < due:
            intended = t0 + i * interval_ns
            p.produce(topic, struct.pack("<q", intended) + pad)
            i += 1
        p.poll(0)
        nxt = t0 + i * interval_ns
        sl = (nxt - time.time_ns()) / 1e9
        if sl > 0:
            time.sleep(min(sl, 0.001))
    rem = p.flush(60)
    out_q.put({"sent": i, "errors": errors["n"], "first_error": errors["first"], "not_flushed": rem,
               "send_s": round((time.time_ns() - t0) / 1e9, 3)})


def run_latency(a, topic, partitions):
    n = int(a.lat_rate * a.lat_seconds)
    ctx = mp.get_context("spawn")
    ready = ctx.Event()
    qc = ctx.Queue()
    qp = ctx.Queue()
    pc = ctx.Process(target=_lat_consumer, args=(a, topic, partitions, n, ready, qc))
    pc.start()
    if not ready.wait(60):
        log("latency consumer: not ready in 60 s")
    time.sleep(1.0)  # as bench_kafka.py
    pp = ctx.Process(target=_lat_producer, args=(a, topic, n, ready, qp))
    pp.start()
    prod = qp.get(timeout=a.lat_seconds + 180)
    cons = qc.get(timeout=a.lat_seconds + 300)
    pp.join(10)
    pc.join(10)
    lats = sorted(cons["lats"])
    return {
        "method": "assign",
        "rate_target": a.lat_rate,
        "seconds": a.lat_seconds,
        "sent": prod["sent"],
        "producer_errors": prod["errors"],
        "producer_first_error": prod["first_error"],
        "producer_not_flushed": prod["not_flushed"],
        "send_s": prod["send_s"],
        "received": len(lats),
        "consumer_ready": cons["ready"],
        "client_errors": cons["client_errors"],
        "p50_ms": round(pct(lats, 0.50), 3) if lats else None,
        "p90_ms": round(pct(lats, 0.90), 3) if lats else None,
        "p99_ms": round(pct(lats, 0.99), 3) if lats else None,
        "p999_ms": round(pct(lats, 0.999), 3) if lats else None,
        "max_ms": round(lats[-1], 3) if lats else None,
        "fetch_wait_max_ms": a.fetch_wait_max_ms,
        "fetch_overrides": cons["overrides"],
    }


# ---------------------------------------------------------------- main


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=("consume", "latency"),
                    help="consume: produce then read back with assign(); latency: end-to-end latency with assign()")
    ap.add_argument("--bootstrap", default="127.0.0.1:9092", help="broker address (default %(default)s)")
    ap.add_argument("--messages", type=int, default=1_000_000, help="consume: records to produce and read back (default %(default)s)")
    ap.add_argument("--size", type=int, default=100, help="record payload bytes (default %(default)s; at least 8 for latency)")
    ap.add_argument("--partitions", type=int, default=1, help="partitions of the fresh topic (default %(default)s)")
    ap.add_argument("--acks", default="all", help="producer acks: all | -1 | 1 | 0 (default %(default)s)")
    ap.add_argument("--linger-ms", type=int, default=5, help="producer linger.ms (default %(default)s)")
    ap.add_argument("--batch-size", type=int, default=1_048_576, help="producer batch.size (default %(default)s)")
    ap.add_argument("--compression", default="none", help="producer compression.type (default %(default)s)")
    ap.add_argument("--idempotence", action="store_true", help="producer enable.idempotence=true (default off)")
    ap.add_argument("--replication-factor", type=int, default=1, help="of the fresh topic (default %(default)s)")
    ap.add_argument("--topic-prefix", default="assign", help="fresh topics are named PREFIX-... (default %(default)s)")
    ap.add_argument("--consume-fetch-wait-ms", type=int, default=500,
                    help="consume: consumer fetch.wait.max.ms (default %(default)s, librdkafka's default)")
    ap.add_argument("--lat-rate", type=float, default=5000.0, help="latency: records/s (default %(default)s)")
    ap.add_argument("--lat-seconds", type=float, default=20.0, help="latency: seconds of sending (default %(default)s)")
    ap.add_argument("--fetch-wait-max-ms", type=int, default=500,
                    help="latency: consumer fetch.wait.max.ms (default %(default)s, librdkafka's default)")
    ap.add_argument("--idle-timeout", type=float, default=20.0,
                    help="stop consuming after this many seconds without a record (default %(default)s)")
    ap.add_argument("--timeout", type=float, default=900.0, help="hard limit per step, seconds (default %(default)s)")
    ap.add_argument("--label", default="", help="free text copied to the output")
    a = ap.parse_args()
    partitions = a.partitions
    if a.mode == "latency" and a.size < 8:
        ap.error("--size must be at least 8 in latency mode (the send timestamp)")

    out = {
        "label": a.label,
        "mode": a.mode,
        "method": "assign",
        "bootstrap": a.bootstrap,
        "size": a.size,
        "partitions": partitions,
        "acks": a.acks,
        "linger_ms": a.linger_ms,
        "batch_size": a.batch_size,
        "compression": a.compression,
        "idempotence": a.idempotence,
        "client": "confluent-kafka %s / librdkafka %s" % (confluent_kafka.__version__, confluent_kafka.libversion()[0]),
    }
    run_id = uuid.uuid4().hex[:6]
    if a.mode == "consume":
        out["messages"] = a.messages
        out["consume_fetch_wait_ms"] = a.consume_fetch_wait_ms
        topic = f"{a.topic_prefix}-{partitions}p-{a.size}b-{run_id}"
        out["create"] = create_topic(a.bootstrap, topic, partitions, a.replication_factor, 30)
        log("topic", out["create"])
        out["produce"] = run_produce(a, topic)
        log("produce", out["produce"])
        seen = out["create"].get("metadata_partitions") or partitions
        try:
            out["consume"] = run_consume(a, topic, seen, out["produce"]["delivered"])
        except Exception as e:  # noqa: BLE001
            out["consume"] = {"error": repr(e)}
        log("consume", out["consume"])
    else:
        ltopic = f"{a.topic_prefix}-lat-{partitions}p-{run_id}"
        out["lat_create"] = create_topic(a.bootstrap, ltopic, partitions, a.replication_factor, 30)
        log("topic", out["lat_create"])
        seen = out["lat_create"].get("metadata_partitions") or partitions
        try:
            out["latency"] = run_latency(a, ltopic, seen)
        except Exception as e:  # noqa: BLE001
            out["latency"] = {"error": repr(e)}
        log("latency", out["latency"])
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
