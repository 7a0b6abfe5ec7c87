"""The fault tier's workload: acks=all idempotent producers and assign-mode
consumers (confluent-kafka) writing a history in the JSONL format of
../shared/tools/kafka_history_checker.py, plus the high watermarks clients
see, for our own checks (hwm.py).

It keeps the shared kafka_workload_driver.py's conventions (Jepsen's queue
workload: one topic, key k = partition k, values unique per key and never
re-sent by us, delivery reports as ok / fail / info, a crash op and a new
process id when a client is replaced) but runs in the test's own process,
so the nemesis and the workload share one clock and one history, and its
drain ends on an observed outcome. Run against a live cluster (and read),
the shared driver showed why it cannot be used as is:
- its final drain counts a partition as caught up only once its consumer
  has a position, so an empty partition (or one never fetched) keeps it
  waiting for the whole idle timeout (120 s): a 15 s run took 2m49s;
- in the drain, a partition without a leader makes get_watermark_offsets
  raise, and nothing catches it: the drain would stop there;
- its defaults (replication 3, min.insync.replicas 2) on a cluster that
  does not replicate yet get every send answered NOT_ENOUGH_REPLICAS and
  retried until it times out, and the checker then calls a history with
  no acknowledged send at all valid (hence faults.py's --min-acked);
- it records no high watermarks, and its nemesis is a shell command that
  cannot see the cluster's processes.

Client callbacks (delivery reports, error_cb) do nothing but time-stamp
and queue what they were given: confluent-kafka can run a callback while a
Python exception is still set (after a fatal idempotence error it served
the remaining delivery reports that way; the same family as its issue #865),
and then the first builtin call in the callback raises SystemError *after*
doing its work: a lock taken that way was never released, and every thread
that wrote to the history hung on it. So callbacks absorb that SystemError first (see
`_absorb_pending_exception`) and take no lock; the thread that owns the
client writes the history.

History ops (one JSON object a line): send (ok/fail/info), poll (ok),
assign (ok), crash (info), nemesis (info, process "nemesis"). High
watermark observations go to a second file, hwm.jsonl: observer,
partition, high, and start/end times on the history's clock (ns).
"""

from __future__ import annotations

import json
import logging
import os
import queue
import random
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Producer, TopicPartition

# Delivery errors that say the record was certainly not written; everything
# else (timeouts, transport errors, NOT_ENOUGH_REPLICAS_AFTER_APPEND) is
# indefinite ("info"), as in the shared driver.
DEFINITE_FAIL = {
    KafkaError.TOPIC_AUTHORIZATION_FAILED,
    KafkaError.CLUSTER_AUTHORIZATION_FAILED,
    KafkaError.INVALID_RECORD,
    KafkaError.MSG_SIZE_TOO_LARGE,
    KafkaError.INVALID_REQUIRED_ACKS,
    KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
}

# How far back of a partition's high watermark a consumer starts reading
# when it is (re)assigned; the final drain reads everything from offset 0.
REREAD = 2000

# Shorter client back-offs than librdkafka's defaults (up to 10 s), so a
# restarted node is reconnected to within a second of coming back.
CLIENT_TUNING = {"reconnect.backoff.ms": 50, "reconnect.backoff.max.ms": 1000, "retry.backoff.max.ms": 1000}


class History:
    """A thread-safe JSONL history; times are ns since the history began."""

    def __init__(self, path: Path):
        self.path = path
        self._f = open(path, "w")
        self._lock = threading.Lock()  # never taken by a client callback (see the module doc)
        self._index = 0
        self._t0 = time.monotonic_ns()

    def now(self) -> int:
        return time.monotonic_ns() - self._t0

    def since_start(self, at_ns: int) -> int:
        """A time.monotonic_ns() reading on the history's clock."""
        return at_ns - self._t0

    def add(self, at_ns: int | None = None, **op) -> None:
        """Appends an op; `at_ns` (time.monotonic_ns()) when it happened, if not now."""
        with self._lock:
            if self._f.closed:
                return
            op["index"], op["time"] = self._index, self.now() if at_ns is None else self.since_start(at_ns)
            self._index += 1
            self._f.write(json.dumps(op) + "\n")
            self._f.flush()  # a killed run keeps its history

    def close(self) -> None:
        with self._lock:
            self._f.close()


class Watermarks:
    """High watermark observations, in memory for the checks and in hwm.jsonl."""

    def __init__(self, path: Path):
        self._f = open(path, "w")
        self._lock = threading.Lock()
        self.observations: list[dict] = []
        self.highest: dict[int, int] = {}  # partition -> highest high watermark seen
        self.failures: dict[str, int] = {}  # error -> questions that got no answer

    def add(self, observer: str, partition: int, high: int, start: int | None, end: int) -> None:
        obs = {"observer": observer, "partition": partition, "high": high, "start": start, "end": end}
        with self._lock:
            self.observations.append(obs)
            self.highest[partition] = max(high, self.highest.get(partition, 0))
            if not self._f.closed:
                self._f.write(json.dumps(obs) + "\n")

    def failed(self, observer: str, partition: int, error: str, start: int, end: int) -> None:
        """A question that got no high watermark: in hwm.jsonl, not in the checks."""
        line = {"observer": observer, "partition": partition, "error": error, "start": start, "end": end}
        with self._lock:
            self.failures[error] = self.failures.get(error, 0) + 1
            if not self._f.closed:
                self._f.write(json.dumps(line) + "\n")

    def close(self) -> None:
        with self._lock:
            self._f.close()


def _absorb_pending_exception() -> None:
    """Clears an exception a client library left set when it called us: the
    first builtin call then raises SystemError (chained to it), caught here."""
    try:
        abs(0)
    except SystemError:
        pass


@dataclass
class Counters:
    """What the clients went through, for the report. `error` is an
    error_cb: it only queues; `tally` counts."""

    client_errors: dict[str, int] = field(default_factory=dict)
    fatal_errors: list[str] = field(default_factory=list)
    _queued: queue.SimpleQueue = field(default_factory=queue.SimpleQueue)

    def error(self, err: KafkaError) -> None:
        _absorb_pending_exception()
        self._queued.put(err)

    def tally(self) -> None:
        while True:
            try:
                err = self._queued.get_nowait()
            except queue.Empty:
                return
            name = err.name()
            self.client_errors[name] = self.client_errors.get(name, 0) + 1
            if err.fatal():
                self.fatal_errors.append(str(err))


@dataclass
class DrainResult:
    """The final read: each partition's high watermark and how far it was read."""

    high: dict[int, int]
    read_to: dict[int, int]
    unreadable: dict[int, str]

    @property
    def complete(self) -> bool:
        return not self.unreadable and all(self.read_to.get(p, 0) >= h for p, h in self.high.items())


class Workload:
    """Producers, consumers and a watermark watcher on one topic of `partitions` partitions."""

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        partitions: int,
        out: Path,
        seed: int,
        producers: int = 3,
        consumers: int = 2,
        rate: float = 40.0,
        message_timeout_ms: int = 60000,
        reassign_s: float = 8.0,
    ):
        self.bootstrap, self.topic, self.partitions = bootstrap, topic, partitions
        self.rng = random.Random(seed)
        self.n_producers, self.n_consumers, self.rate = producers, consumers, rate
        self.message_timeout_ms, self.reassign_s = message_timeout_ms, reassign_s
        self.out = out
        # librdkafka's debug contexts for the producers' logs (producer-N.log):
        # `eos` by default, a few lines per leader change and every epoch bump
        # with its reason; empty for none.
        self.client_debug = os.environ.get("TRIBUTARY_FAULT_CLIENT_DEBUG", "eos") or None
        self.history = History(out / "history.jsonl")
        self.watermarks = Watermarks(out / "hwm.jsonl")
        self.counters = Counters()
        self._stop_producing, self._stop_reading = threading.Event(), threading.Event()
        self._producers: list[threading.Thread] = []
        self._readers: list[threading.Thread] = []
        self._acked = [0] * partitions
        self._last_ack = [-1] * partitions  # history time of each partition's latest ok send
        self._last_ack_by_producer = [-1] * producers  # and of each producer thread's
        self._acked_lock = threading.Lock()
        self._retired: list[Producer] = []  # producers replaced after a fatal error, destroyed at close()
        self._retired: list[Producer] = []  # producers replaced after a fatal error

    # ------------------------------------------------------------- lifecycle

    def start(self) -> None:
        for i in range(self.n_producers):
            t = threading.Thread(target=self._producer_loop, args=(i, random.Random(self.rng.random())), name=f"producer-{i}", daemon=True)
            self._producers.append(t)
        for i in range(self.n_consumers):
            t = threading.Thread(target=self._consumer_loop, args=(100 + i, random.Random(self.rng.random())), name=f"consumer-{i}", daemon=True)
            self._readers.append(t)
        self._readers.append(threading.Thread(target=self._watcher_loop, name="watermarks", daemon=True))
        for t in self._producers + self._readers:
            t.start()

    def acked(self) -> list[int]:
        """Acknowledged sends so far, per partition."""
        with self._acked_lock:
            return list(self._acked)

    def last_ack_times(self) -> list[int]:
        """History time (ns) of each partition's latest acknowledged send (-1: none)."""
        with self._acked_lock:
            return list(self._last_ack)

    def last_ack_by_producer(self) -> list[int]:
        """History time (ns) of each producer thread's latest acknowledged send (-1: none)."""
        with self._acked_lock:
            return list(self._last_ack_by_producer)

    def stop(self, deadline: float) -> list[str]:
        """Stops producing (each producer flushes what it has in flight) and
        reading; the names of threads still running after `deadline` s."""
        self._stop_producing.set()
        end = time.monotonic() + deadline
        for t in self._producers:
            t.join(max(0.0, end - time.monotonic()))
        self._stop_reading.set()
        for t in self._readers:
            t.join(max(0.0, end - time.monotonic()))
        wedged = [t.name for t in self._producers + self._readers if t.is_alive()]
        for name in wedged:
            self.history.add(process="driver", type="info", f="wedged", value=name)
        return wedged

    def close(self) -> None:
        self._retired.clear()
        self.counters.tally()
        self.history.close()
        self.watermarks.close()

    # ------------------------------------------------------------- producers

    def _new_producer(self, proc: int) -> Producer:
        conf = {
            "bootstrap.servers": self.bootstrap,
            "acks": "all",
            "enable.idempotence": True,
            "max.in.flight.requests.per.connection": 5,
            "message.timeout.ms": self.message_timeout_ms,
            "linger.ms": 5,
            "error_cb": self.counters.error,
            **CLIENT_TUNING,
        }
        if self.client_debug:
            # librdkafka's own log of this producer, e.g. TRIBUTARY_FAULT_CLIENT_DEBUG=eos,msg,broker
            log = logging.getLogger(f"producer-{proc}")
            log.propagate = False
            log.setLevel(logging.DEBUG)
            handler = logging.FileHandler(self.out / f"producer-{proc}.log")
            # Wall-clock UTC, as nemesis.jsonl's "wall": the time the line
            # reached the logger (librdkafka hands its lines over in poll()).
            stamp = logging.Formatter("%(asctime)s.%(msecs)03dZ %(message)s", "%Y-%m-%dT%H:%M:%S")
            stamp.converter = time.gmtime
            handler.setFormatter(stamp)
            log.addHandler(handler)
            return Producer({**conf, "debug": self.client_debug}, logger=log)
        return Producer(conf)

    def _producer_loop(self, proc: int, rng: random.Random) -> None:
        h, seq, slot = self.history, 0, proc
        reports: queue.SimpleQueue = queue.SimpleQueue()

        def reporter(proc: int):
            """The delivery callback of process `proc`'s sends: queues the report."""

            def delivered(err, msg):
                _absorb_pending_exception()
                reports.put((time.monotonic_ns(), proc, err, msg.partition(), msg.value().decode(), msg.offset()))

            return delivered

        pending: dict[str, int] = {}  # value -> partition, of sends not reported yet

        def record() -> None:
            """Writes the delivery reports queued so far, in their order."""
            while True:
                try:
                    at, p_id, err, k, v, offset = reports.get_nowait()
                except queue.Empty:
                    return
                pending.pop(v, None)
                if err is None:
                    h.add(at_ns=at, process=p_id, type="ok", f="send", value=[["send", k, [offset, v]]])
                    with self._acked_lock:
                        self._acked[k] += 1
                        self._last_ack[k] = self._last_ack_by_producer[slot] = h.since_start(at)
                else:
                    kind = "fail" if err.code() in DEFINITE_FAIL else "info"
                    h.add(at_ns=at, process=p_id, type=kind, f="send", value=[["send", k, [None, v]]], error=str(err))

        def unreported(why: str) -> None:
            """Every send without a report is indefinite: so no value the
            consumers read is without a writer in the history."""
            for v, k in pending.items():
                h.add(process=proc, type="info", f="send", value=[["send", k, [None, v]]], error=why)
            pending.clear()

        p, delivered = self._new_producer(proc), reporter(proc)
        while not self._stop_producing.is_set():
            k, v = rng.randrange(self.partitions), f"{proc}-{seq}"
            seq += 1
            failure = None
            try:
                p.produce(self.topic, value=v.encode(), partition=k, on_delivery=delivered)
                pending[v] = k
                p.poll(0)
            except Exception as e:  # noqa: BLE001 - a fatal client error, a full queue, or an exception a callback left
                failure = e
            record()
            if failure is not None:
                # The client is replaced under a new process id; what it did
                # not report on is indefinite.
                if v not in pending:
                    h.add(process=proc, type="info", f="send", value=[["send", k, [None, v]]], error=str(failure))
                h.add(process=proc, type="info", f="crash", value=None, error=str(failure))
                try:
                    p.flush(self.message_timeout_ms / 1000)
                except Exception:  # noqa: BLE001 - a fatal client may refuse even this
                    pass
                record()
                unreported(f"no delivery report from the client replaced after: {failure}")
                proc += 1000
                self._retired.append(p)  # kept: destroying it here would run callbacks in the middle of things
                p, delivered = self._new_producer(proc), reporter(proc)
            time.sleep(1.0 / self.rate)
        try:
            p.flush(self.message_timeout_ms / 1000 + 5)
        except Exception:  # noqa: BLE001 - what was not reported stays indefinite, below
            pass
        record()
        unreported("no delivery report before the end of the run")

    # ------------------------------------------------------------- readers

    def _new_consumer(self, proc: int | str, isolation: str = "read_committed") -> Consumer:
        return Consumer(
            {
                "bootstrap.servers": self.bootstrap,
                "group.id": f"faults-{proc}",
                "enable.auto.commit": False,
                "isolation.level": isolation,
                "auto.offset.reset": "earliest",
                "fetch.wait.max.ms": 200,
                "error_cb": self.counters.error,
                **CLIENT_TUNING,
            }
        )

    def _record_poll(self, proc, msgs) -> dict[int, list]:
        by_key: dict[int, list] = {}
        for m in msgs:
            if m.error():
                self.counters.error(m.error())  # queued, tallied at the end
                continue
            by_key.setdefault(m.partition(), []).append([m.offset(), m.value().decode()])
        if by_key:
            self.history.add(process=proc, type="ok", f="poll", value=[["poll", by_key]])
        return by_key

    def _consumer_loop(self, proc: int, rng: random.Random) -> None:
        """Reads a random half of the partitions from REREAD records before
        their high watermark (from offset 0 while they are young), and again
        with another half every reassign_s seconds (the assign op resets the
        checker's per-consumer order tracking). A client that raises is
        replaced under a new process id, after a crash op."""
        while not self._stop_reading.is_set():
            c = self._new_consumer(proc)
            try:
                self._consume(c, proc, rng)
                return
            except Exception as e:  # noqa: BLE001 - recorded, and the reading goes on
                self.history.add(process=proc, type="info", f="crash", value=None, error=repr(e))
                proc += 1000
            finally:
                c.close()

    def _consume(self, c: Consumer, proc: int, rng: random.Random) -> None:
        def assign():
            # From the last REREAD records (all of a young partition): what
            # is read grows with the run's length, not with its square.
            keys = sorted(rng.sample(range(self.partitions), max(1, self.partitions // 2)))
            starts = {k: max(0, self.watermarks.highest.get(k, 0) - REREAD) for k in keys}
            c.assign([TopicPartition(self.topic, k, starts[k] or OFFSET_BEGINNING) for k in keys])
            self.history.add(process=proc, type="ok", f="assign", value=keys, start=starts)
            return time.monotonic()

        assigned = assign()
        while not self._stop_reading.is_set():
            by_key = self._record_poll(proc, c.consume(num_messages=500, timeout=0.5))
            now = self.history.now()
            for k in by_key:
                # The high watermark of the last fetch response for this partition.
                _, high = c.get_watermark_offsets(TopicPartition(self.topic, k), cached=True)
                if high >= 0:
                    self.watermarks.add(f"consumer-{proc}", k, high, None, now)
            if time.monotonic() - assigned > self.reassign_s:
                assigned = assign()

    def _watcher_loop(self) -> None:
        """Asks every partition's leader for its high watermark (ListOffsets
        latest, read_uncommitted) one partition at a time, over and over.

        After a NOT_LEADER_OR_FOLLOWER answer from a leader that was fenced
        and came back, librdkafka 2.16 answers _UNKNOWN_PARTITION for that
        partition for tens of seconds although every node's Metadata names
        its leader again (seen in this harness; a fresh client asks
        successfully at once). So on _UNKNOWN_PARTITION the watcher's client
        is replaced, rather than the partition going unwatched."""
        c = self._new_consumer("watermarks", isolation="read_uncommitted")
        while not self._stop_reading.is_set():
            for k in range(self.partitions):
                start = self.history.now()
                try:
                    _, high = c.get_watermark_offsets(TopicPartition(self.topic, k), timeout=2.0, cached=False)
                except Exception as e:  # noqa: BLE001 - counted; a partition without a leader answers nothing
                    err = e.args[0] if isinstance(e, KafkaException) and e.args else e
                    name = err.name() if isinstance(err, KafkaError) else type(err).__name__
                    self.watermarks.failed("list-offsets", k, name, start, self.history.now())
                    if name == "_UNKNOWN_PARTITION":
                        c.close()
                        c = self._new_consumer("watermarks", isolation="read_uncommitted")
                    continue
                self.watermarks.add("list-offsets", k, high, start, self.history.now())
            self._stop_reading.wait(0.1)
        c.close()

    # ------------------------------------------------------------- final read

    def drain(self, deadline: float) -> DrainResult:
        """Reads every partition from offset 0 up to its high watermark, with
        a fresh consumer, recorded as process "drain". The watermarks are
        asked for first (retried until `deadline`); nobody produces any more,
        so they are final."""
        end = time.monotonic() + deadline
        c = self._new_consumer("drain", isolation="read_committed")
        wm = self._new_consumer("drain-watermarks", isolation="read_uncommitted")
        high: dict[int, int] = {}
        unreadable: dict[int, str] = {}
        for k in range(self.partitions):
            last = "no answer"
            while time.monotonic() < end:
                start = self.history.now()
                try:
                    _, high[k] = wm.get_watermark_offsets(TopicPartition(self.topic, k), timeout=5.0, cached=False)
                    self.watermarks.add("drain", k, high[k], start, self.history.now())
                    break
                except KafkaException as e:
                    last = str(e)
                    time.sleep(0.5)
            else:
                unreadable[k] = f"no high watermark within the deadline: {last}"
        wm.close()
        keys = sorted(high)
        read_to = {k: 0 for k in keys}
        c.assign([TopicPartition(self.topic, k, OFFSET_BEGINNING) for k in keys])
        self.history.add(process="drain", type="ok", f="assign", value=keys)
        while any(read_to[k] < high[k] for k in keys) and time.monotonic() < end:
            by_key = self._record_poll("drain", c.consume(num_messages=1000, timeout=0.5))
            for k, pairs in by_key.items():
                read_to[k] = max(read_to[k], pairs[-1][0] + 1)
        c.close()
        for k in keys:
            if read_to[k] < high[k]:
                unreadable[k] = f"read up to offset {read_to[k]} of {high[k]} within the deadline"
        return DrainResult(high, read_to, unreadable)
