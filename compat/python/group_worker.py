#!/usr/bin/env python3
"""One Kafka client in its own OS process, for the consumer-group history test.

Two roles, each appending JSON lines to its own history file (line-buffered, so
a SIGKILL loses nothing that was written):

``consume``: one confluent-kafka group consumer. Every batch it polls is
recorded as ``{"ev": "poll", "t0": ns, "t": ns, "recs": [[partition, offset,
value], ...]}`` (``t0`` before the consume call, ``t`` after it), then the
batch's offsets are committed synchronously and recorded (``"ev": "commit"``).
Rebalance callbacks are recorded as ``"ev": "assign" | "revoke" | "lost"`` with
the partitions of the event, the partitions owned afterwards (``owned``), the
generation (or KIP-848 member epoch) and the member id. SIGTERM stops the loop
after the current batch is committed, then ``close()`` runs (a dynamic member
sends LeaveGroup; a static one, with ``group.instance.id``, does not) and a
``"ev": "closed"`` line follows.

``produce``: an idempotent ``acks=all`` producer that sends values "0", "1", ...
with value i going to partition i % partitions, at most ``--rate`` records per
second and never beyond the number written in ``--limit-file`` (re-read while
it waits), so the test decides when records flow. Each delivery report is one
line ``{"ev": "send", "t": ns, "p": partition, "off": offset, "v": value,
"ok": bool}``; the last line is ``{"ev": "done", ...}``.

All times are ``time.monotonic_ns()`` (CLOCK_MONOTONIC on Linux: one clock for
every process on the machine, so times compare across processes).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import struct
import sys
import time
from pathlib import Path

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition


class History:
    def __init__(self, path: str):
        self.f = open(path, "a", buffering=1)  # one write(2) per line

    def write(self, **rec) -> None:
        rec.setdefault("t", time.monotonic_ns())
        self.f.write(json.dumps(rec, separators=(",", ":")) + "\n")


def generation_of(consumer: Consumer) -> int | None:
    """The generation id (member epoch with KIP-848) from librdkafka's
    serialized group metadata: b"CGMDv2:" + int32 (host order) + ..."""
    try:
        raw = bytes(consumer.consumer_group_metadata())
    except Exception:  # noqa: BLE001 - only a diagnostic
        return None
    if raw.startswith(b"CGMDv2:") and len(raw) >= 11:
        return struct.unpack("=i", raw[7:11])[0]
    return None


def consume(a) -> int:
    h = History(a.history)
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    conf = {
        "bootstrap.servers": a.bootstrap,
        "group.id": a.group,
        "client.id": a.name,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
    }
    conf.update(json.loads(a.conf))
    if a.instance_id:
        conf["group.instance.id"] = a.instance_id
    c = Consumer(conf)
    owned: set[int] = set()

    def event(kind: str, parts) -> None:
        ps = sorted(tp.partition for tp in parts)
        if kind == "assign":
            owned.update(ps)
        else:
            owned.difference_update(ps)
        h.write(ev=kind, parts=ps, owned=sorted(owned), gen=generation_of(c), member=c.memberid())

    c.subscribe([a.topic],
                on_assign=lambda _c, parts: event("assign", parts),
                on_revoke=lambda _c, parts: event("revoke", parts),
                on_lost=lambda _c, parts: event("lost", parts))
    h.write(ev="start", name=a.name, instance=a.instance_id, pid=os.getpid())
    while not stop:
        t0 = time.monotonic_ns()
        msgs = c.consume(1000, 0.2)
        t1 = time.monotonic_ns()
        recs, errors, last = [], [], {}
        for m in msgs:
            if m.error() is not None:
                errors.append(str(m.error()))
                continue
            recs.append([m.partition(), m.offset(), m.value().decode()])
            last[m.partition()] = m.offset()
        if errors:
            h.write(ev="error", errors=errors)
        if not recs:
            continue
        h.write(ev="poll", t0=t0, t=t1, recs=recs)
        offsets = [TopicPartition(a.topic, p, off + 1) for p, off in sorted(last.items())]
        try:
            res = c.commit(offsets=offsets, asynchronous=False)
            bad = [(tp.partition, str(tp.error)) for tp in res or [] if tp.error is not None]
            h.write(ev="commit", ok=not bad, offsets=[[tp.partition, tp.offset] for tp in offsets], errors=bad)
        except KafkaException as e:
            # At-least-once: the next owner re-reads from the previous commit.
            h.write(ev="commit", ok=False, offsets=[[tp.partition, tp.offset] for tp in offsets], errors=[str(e)])
    h.write(ev="closing")
    c.close()
    h.write(ev="closed")
    return 0


def produce(a) -> int:
    h = History(a.history)
    limit_file = Path(a.limit_file)
    p = Producer({"bootstrap.servers": a.bootstrap, "acks": "all", "enable.idempotence": True,
                  "linger.ms": 5, "client.id": "history-producer", "message.timeout.ms": 120_000})
    acked = failed = 0

    def report(err, msg):
        nonlocal acked, failed
        if err is None:
            acked += 1
            h.write(ev="send", p=msg.partition(), off=msg.offset(), v=msg.value().decode(), ok=True)
        else:
            failed += 1
            h.write(ev="send", p=msg.partition(), off=None, v=msg.value().decode(), ok=False, err=str(err))

    def read_limit() -> int:
        try:
            return int(limit_file.read_text().strip() or 0)
        except (OSError, ValueError):
            return 0

    start = time.monotonic()
    paused = 0.0
    limit = read_limit()
    for i in range(a.count):
        while i >= limit:
            t = time.monotonic()
            p.poll(0.05)
            limit = read_limit()
            paused += time.monotonic() - t
        # Pace: record i is due (i / rate) seconds of producing time after the start.
        due = start + paused + i / a.rate
        while time.monotonic() < due:
            p.poll(min(0.01, max(0.0, due - time.monotonic())))
        while True:
            try:
                p.produce(a.topic, value=str(i).encode(), key=str(i).encode(), partition=i % a.partitions,
                          on_delivery=report)
                break
            except BufferError:
                p.poll(0.05)
        if i % 200 == 0:
            p.poll(0)
    left = p.flush(180)
    h.write(ev="done", acked=acked, failed=failed, unflushed=left)
    return 0 if left == 0 else 1


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="role", required=True)
    c = sub.add_parser("consume")
    c.add_argument("--name", required=True)
    c.add_argument("--instance-id", default="")
    c.add_argument("--conf", default="{}", help="extra consumer settings as a JSON object")
    p = sub.add_parser("produce")
    p.add_argument("--partitions", type=int, required=True)
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--rate", type=float, required=True)
    p.add_argument("--limit-file", required=True)
    for s in (c, p):
        s.add_argument("--bootstrap", required=True)
        s.add_argument("--topic", required=True)
        s.add_argument("--history", required=True)
    c.add_argument("--group", required=True)
    a = ap.parse_args(argv)
    return consume(a) if a.role == "consume" else produce(a)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
