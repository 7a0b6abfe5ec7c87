"""Acceptance test for consumer groups with confluent-kafka consumers in separate
OS processes (group_worker.py), checked with the shared history checker.

Scenario, on a broker of its own, while an idempotent acks=all producer writes
200,000 records over 8 partitions:

1. three consumers join one group and share the partitions;
2. one leaves cleanly (close: LeaveGroup);
3. one is SIGKILLed (its session expires and the survivor takes over);
4. a consumer with ``group.instance.id`` joins, closes (a static member sends
   no LeaveGroup) and a new process rejoins with the same instance id;
5. drain until every acknowledged record was polled.

The producer only sends up to a limit the test raises at the start of each
step, so every membership change happens while records are flowing, and each
step ends when the group has settled (the live members own disjoint sets that
cover every partition) and every acknowledged record so far has been polled.

Then all consumers stop (having committed what they polled), 50 more records
per partition are produced, the broker is stopped and started again on the same
data directory, and one new consumer in the group must start every partition
exactly at the offset committed before the restart.

Checks:

* the shared history checker (no lost or unseen acknowledged record, no
  offset with two values, per-consumer polls contiguous between assignment
  changes). At-least-once redelivery after a rebalance is expected: each
  assignment change is an ``assign`` op, which resets the checker's
  per-consumer position tracking.
* ownership: from the rebalance callbacks each member's ownership intervals
  per partition are built ([assigned, revoked | lost | exit]); every poll of a
  partition must fall in an interval of the member that polled it, and two
  members whose intervals on one partition overlap must not both poll it in the
  overlap. With the classic protocol, the assignments reported under one
  generation must be disjoint.
* committed offsets equal the end offsets after the drain, are the same after
  the broker restart (AdminClient list_consumer_group_offsets), and the new
  consumer's first offset per partition equals them.

Runs once per entry of GROUP_PROTOCOLS: the classic protocol with the eager
``range`` and the ``cooperative-sticky`` assignors, and the KIP-848 consumer
protocol (``group.protocol=consumer``; its session timeout is the broker's,
lowered to 6 s for this test through BROKER_OVERRIDES).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import ConsumerGroupTopicPartitions, Producer
from confluent_kafka.admin import AdminClient, NewTopic

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
WORKER = HERE / "group_worker.py"
TOOL_DIRS = [Path(p) for p in (os.environ.get("TRIBUTARY_SHARED_TOOLS"), REPO_ROOT.parent / "shared" / "tools",
                                "/work/shared/tools") if p]
CHECKER_NAME = "kafka_history_checker.py"

PARTITIONS = 8
RECORDS = 200_000
RATE = 6_000            # records per second while the producer is below its limit
STEP_LIMITS = [40_000, 80_000, 120_000, 150_000, 180_000, RECORDS]
TAIL_PER_PARTITION = 50
WAIT_S = 120            # for one step to settle (includes a session expiry)
TIMEOUT_S = 60

CLASSIC = {"session.timeout.ms": 6000, "heartbeat.interval.ms": 500}
GROUP_PROTOCOLS = {
    "range": {"partition.assignment.strategy": "range", **CLASSIC},
    "cooperative-sticky": {"partition.assignment.strategy": "cooperative-sticky", **CLASSIC},
    "consumer": {"group.protocol": "consumer"},
}
# Broker settings per protocol: the consumer protocol's session timeout and
# heartbeat interval are the broker's (Kafka's 45 s would make the kill step slow).
BROKER_OVERRIDES = {
    "consumer": {"group.consumer.session.timeout.ms": "6000", "group.consumer.heartbeat.interval.ms": "500"},
}

_SETPRIV = shutil.which("setpriv") if sys.platform.startswith("linux") else None
_DEATH_SIG = [_SETPRIV, "--pdeathsig", "KILL", "--"] if _SETPRIV else []


def checker_path() -> Path:
    for d in TOOL_DIRS:
        if (d / CHECKER_NAME).is_file():
            return d / CHECKER_NAME
    pytest.fail(f"{CHECKER_NAME} not found in {[str(d) for d in TOOL_DIRS]}; set TRIBUTARY_SHARED_TOOLS",
                pytrace=False)


def _tail_text(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError as e:
        return f"<cannot read {path}: {e}>"


class Tail:
    """Reads the complete JSON lines appended to a file since the last call."""

    def __init__(self, path: Path):
        self.path = path
        self.pos = 0
        self.buf = b""

    def read(self) -> list[dict]:
        try:
            with open(self.path, "rb") as f:
                f.seek(self.pos)
                data = f.read()
        except FileNotFoundError:
            return []
        self.pos += len(data)
        self.buf += data
        *lines, self.buf = self.buf.split(b"\n")
        return [json.loads(line) for line in lines if line.strip()]


class Proc:
    """One worker process and what its history file says so far."""

    def __init__(self, run: "Run", name: str, argv: list[str], instance_id: str = ""):
        self.run = run
        self.name = name
        self.identity = instance_id or name
        self.history = run.dir / f"{name}.jsonl"
        self.log = run.dir / f"{name}.log"
        self.tail = Tail(self.history)
        self.lines: list[dict] = []
        self.owned: set[int] = set()
        self.expected_alive = True
        self.killed_at: int | None = None
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(_DEATH_SIG + [sys.executable, str(WORKER)] + argv + ["--history",
                                         str(self.history)], stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL)

    def refresh(self) -> list[dict]:
        new = self.tail.read()
        for rec in new:
            if rec["ev"] in ("assign", "revoke", "lost"):
                self.owned = set(rec["owned"])
        self.lines.extend(new)
        return new

    def alive(self) -> bool:
        return self.proc.poll() is None

    def polled_since(self, t: int) -> bool:
        return any(r["ev"] == "poll" and r["t0"] >= t for r in self.lines)

    def terminate(self) -> None:
        self.expected_alive = False
        self.proc.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.expected_alive = False
        self.proc.kill()
        self.proc.wait(timeout=10)
        self.killed_at = time.monotonic_ns()  # after the process is gone

    def end_time(self) -> int:
        """When this process stopped owning anything: kill, close, or last line."""
        if self.killed_at is not None:
            return self.killed_at
        for r in reversed(self.lines):
            if r["ev"] == "closed":
                return r["t"]
        return self.lines[-1]["t"] if self.lines else 0

    def describe(self) -> str:
        state = "running" if self.alive() else f"exited ({self.proc.returncode})"
        polls = [r for r in self.lines if r["ev"] == "poll"]
        n = sum(len(r["recs"]) for r in polls)
        events = [f"{r['ev']}{r['parts']}->{r['owned']} gen {r.get('gen')}" for r in self.lines
                  if r["ev"] in ("assign", "revoke", "lost")][-4:]
        errs = [r for r in self.lines if r["ev"] == "error" or (r["ev"] == "commit" and not r["ok"])][-3:]
        return (f"  {self.name} [{state}] owns {sorted(self.owned)}, polled {n} records in {len(polls)} polls; "
                f"last events: {events}" + (f"; last errors: {errs}" if errs else ""))


class Run:
    """The producer, the consumers and the bookkeeping of one scenario."""

    def __init__(self, tmp: Path, bootstrap: str, topic: str, group: str, conf: dict):
        self.dir = tmp / "history"
        self.dir.mkdir()
        self.bootstrap, self.topic, self.group, self.conf = bootstrap, topic, group, conf
        self.limit_file = self.dir / "limit"
        self.limit_file.write_text("0")
        self.limit = 0
        self.consumers: list[Proc] = []
        self.producer: Proc | None = None
        self.acked: dict[tuple[int, str], int] = {}   # (partition, value) -> offset
        self.reports = 0                              # delivery reports, ok or not
        self.failed: list[dict] = []
        self.polled: set[tuple[int, str]] = set()
        self.unpolled: set[tuple[int, str]] = set()   # acknowledged, not polled yet
        self.t0 = time.monotonic_ns()

    # -------------------------------------------------------------- processes
    def start_producer(self) -> Proc:
        self.producer = Proc(self, "producer", ["produce", "--bootstrap", self.bootstrap, "--topic", self.topic,
                                                "--partitions", str(PARTITIONS), "--count", str(RECORDS),
                                                "--rate", str(RATE), "--limit-file", str(self.limit_file)])
        return self.producer

    def start_consumer(self, name: str, instance_id: str = "") -> Proc:
        argv = ["consume", "--bootstrap", self.bootstrap, "--topic", self.topic, "--group", self.group,
                "--name", name, "--conf", json.dumps(self.conf)]
        if instance_id:
            argv += ["--instance-id", instance_id]
        p = Proc(self, name, argv, instance_id)
        self.consumers.append(p)
        return p

    def all_procs(self) -> list[Proc]:
        return self.consumers + ([self.producer] if self.producer else [])

    def raise_limit(self, n: int) -> int:
        """Lets the producer send up to n records; returns the time it was raised."""
        self.limit = n
        tmp = self.limit_file.with_suffix(".tmp")
        tmp.write_text(str(n))
        tmp.replace(self.limit_file)
        return time.monotonic_ns()

    def stop_all(self) -> None:
        for p in self.all_procs():
            if p.alive():
                p.proc.kill()
                p.proc.wait(timeout=10)

    # -------------------------------------------------------------- state
    def refresh(self) -> None:
        for p in self.all_procs():
            if p.expected_alive and not p.alive() and p is not self.producer:
                pytest.fail(f"consumer {p.name} exited unexpectedly (status {p.proc.returncode}):\n"
                            f"{_tail_text(p.log)}\n{self.describe()}", pytrace=False)
            for r in p.refresh():
                if r["ev"] == "poll":
                    keys = {(rec[0], rec[2]) for rec in r["recs"]}
                    self.polled |= keys
                    self.unpolled -= keys
                elif r["ev"] == "send":
                    self.reports += 1
                    if r["ok"]:
                        key = (r["p"], r["v"])
                        self.acked[key] = r["off"]
                        if key not in self.polled:
                            self.unpolled.add(key)
                    else:
                        self.failed.append(r)
        if self.producer and not self.producer.alive() and self.producer.proc.returncode != 0:
            pytest.fail(f"the producer exited with status {self.producer.proc.returncode}:\n"
                        f"{_tail_text(self.producer.log)}", pytrace=False)

    def settled(self, members: list[Proc]) -> bool:
        """The members own non-empty, disjoint sets that together cover every partition."""
        owned = [m.owned for m in members]
        return (all(owned) and sum(len(o) for o in owned) == PARTITIONS
                and set().union(*owned) == set(range(PARTITIONS)))

    def caught_up(self) -> bool:
        """The producer has a delivery report for every record up to its limit,
        and every acknowledged record was polled by some member."""
        return self.reports >= self.limit and not self.unpolled

    def describe(self) -> str:
        miss = self.unpolled
        lines = [f"producer limit {self.limit}, delivery reports {self.reports}, acked {len(self.acked)}, "
                 f"failed {len(self.failed)}; acknowledged but not yet polled: {len(miss)} "
                 f"(e.g. {sorted(miss)[:5]})"]
        lines += [c.describe() for c in self.consumers]
        return "\n".join(lines)

    def wait_for(self, what: str, cond, timeout: float = WAIT_S) -> None:
        deadline = time.monotonic() + timeout
        while True:
            self.refresh()
            if cond():
                return
            if time.monotonic() > deadline:
                pytest.fail(f"timed out after {timeout:.0f} s waiting until {what}\n{self.describe()}",
                            pytrace=False)
            time.sleep(0.2)

    def wait_exit(self, p: Proc, timeout: float = TIMEOUT_S) -> None:
        try:
            rc = p.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"{p.name} did not exit within {timeout} s of SIGTERM:\n{_tail_text(p.log)}", pytrace=False)
        self.refresh()
        assert rc == 0, f"{p.name} exited with status {rc}:\n{_tail_text(p.log)}"

    def ms(self, t: int) -> str:
        return f"{(t - self.t0) / 1e6:.0f}ms"


# ------------------------------------------------------------------ history checks


def checker_history(run: Run, extra_sends: list[tuple[str, dict]]) -> list[dict]:
    """The histories of every process merged by time, in the checker's format."""
    ops: list[tuple[int, int, int, dict]] = []
    for pi, p in enumerate(run.all_procs()):
        for li, r in enumerate(p.lines):
            op = None
            if r["ev"] in ("assign", "revoke", "lost"):
                op = {"type": "ok", "f": "assign", "value": r["owned"]}
            elif r["ev"] == "poll":
                by_key: dict[str, list] = {}
                for part, off, val in r["recs"]:
                    by_key.setdefault(str(part), []).append([off, val])
                op = {"type": "ok", "f": "poll", "value": [["poll", by_key]]}
            elif r["ev"] == "send":
                op = {"type": "ok" if r["ok"] else "info", "f": "send",
                      "value": [["send", r["p"], [r["off"], r["v"]]]]}
            if op is not None:
                op.update(process=p.name, time=r["t"] - run.t0)
                ops.append((r["t"], pi, li, op))
    for li, (proc, r) in enumerate(extra_sends):
        ops.append((r["t"], -1, li, {
            "process": proc, "type": "ok" if r["ok"] else "info", "f": "send", "time": r["t"] - run.t0,
            "value": [["send", r["p"], [r["off"], r["v"]]]]}))
    ops.sort(key=lambda x: x[:3])
    out = []
    for i, (_, _, _, op) in enumerate(ops):
        op["index"] = i
        out.append(op)
    return out


def run_checker(history: list[dict], path: Path) -> None:
    with open(path, "w") as f:
        for op in history:
            f.write(json.dumps(op, separators=(",", ":")) + "\n")
    res = subprocess.run([sys.executable, str(checker_path()), str(path)], capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, (
        f"the history checker found anomalies (exit status {res.returncode}) in {path}:\n"
        f"{res.stdout[-6000:]}\n{res.stderr[-2000:]}")


def ownership_violations(run: Run, classic: bool) -> list[str]:
    """Polls outside the poller's ownership, concurrent consumption of one
    partition by two members, and overlapping assignments in one generation."""
    intervals: dict[int, list[tuple]] = {p: [] for p in range(PARTITIONS)}   # (name, start, end, gen, how)
    polls: dict[int, list[tuple]] = {p: [] for p in range(PARTITIONS)}       # (name, t0, t1, first, last)
    by_gen: dict[int, dict[str, tuple]] = {}                                  # gen -> identity -> (owned, name, t)
    for c in run.consumers:
        opened: dict[int, tuple[int, int | None]] = {}
        for r in c.lines:
            if r["ev"] == "assign":
                for part in r["parts"]:
                    opened.setdefault(part, (r["t"], r.get("gen")))
            elif r["ev"] in ("revoke", "lost"):
                for part in r["parts"]:
                    if part in opened:
                        start, gen = opened.pop(part)
                        intervals[part].append((c.name, start, r["t"], gen, r["ev"]))
            elif r["ev"] == "poll":
                per: dict[int, list[int]] = {}
                for part, off, _ in r["recs"]:
                    per.setdefault(part, []).append(off)
                for part, offs in per.items():
                    polls[part].append((c.name, r["t0"], r["t"], min(offs), max(offs)))
            if r["ev"] in ("assign", "revoke", "lost") and r.get("gen") is not None:
                # Everything the member owned under this generation (an eager
                # revoke reports the old generation with nothing left).
                prev = by_gen.setdefault(r["gen"], {}).get(c.identity, (frozenset(), c.name, r["t"]))
                by_gen[r["gen"]][c.identity] = (prev[0] | frozenset(r["owned"]), c.name, r["t"])
        end = c.end_time()
        for part, (start, gen) in opened.items():
            intervals[part].append((c.name, start, end, gen, "killed" if c.killed_at else "exit"))

    def fmt_iv(iv):
        name, s, e, gen, how = iv
        return f"{name} owned it from {run.ms(s)} to {run.ms(e)} (generation {gen}, ended by {how})"

    def fmt_poll(pl):
        name, t0, t1, lo, hi = pl
        return f"{name} polled offsets {lo}..{hi} in a poll call {run.ms(t0)}..{run.ms(t1)}"

    problems = []
    for part in range(PARTITIONS):
        for pl in polls[part]:
            own = [iv for iv in intervals[part] if iv[0] == pl[0] and iv[1] <= pl[2] and iv[2] >= pl[1]]
            if not own:
                mine = [fmt_iv(iv) for iv in intervals[part] if iv[0] == pl[0]]
                problems.append(f"partition {part}: {fmt_poll(pl)} without owning it; its ownership of the "
                                f"partition: {mine or 'never'}")
        ivs = intervals[part]
        for i, a in enumerate(ivs):
            for b in ivs[i + 1:]:
                if a[0] == b[0]:
                    continue
                lo, hi = max(a[1], b[1]), min(a[2], b[2])
                if lo > hi:
                    continue
                pa = [pl for pl in polls[part] if pl[0] == a[0] and pl[2] >= lo and pl[1] <= hi]
                pb = [pl for pl in polls[part] if pl[0] == b[0] and pl[2] >= lo and pl[1] <= hi]
                if pa and pb:
                    problems.append(f"partition {part} consumed by two members at once: {fmt_iv(a)}; "
                                    f"{fmt_iv(b)}; in the overlap {run.ms(lo)}..{run.ms(hi)}: "
                                    f"{fmt_poll(pa[0])} and {fmt_poll(pb[0])} "
                                    f"({len(pa)} and {len(pb)} polls)")
    if classic:
        for gen, members in sorted(by_gen.items()):
            seen: dict[int, str] = {}
            for ident, (owned, name, t) in members.items():
                for part in owned:
                    if part in seen:
                        problems.append(f"generation {gen}: partition {part} assigned to {seen[part]} and to "
                                        f"{name} (at {run.ms(t)}); assignments in this generation: "
                                        f"{ {n: sorted(o) for (o, n, _) in members.values()} }")
                    seen[part] = name
    return problems


# ------------------------------------------------------------------ admin helpers


def committed_offsets(bootstrap: str, group: str) -> dict[int, int]:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    res = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)])[group].result(TIMEOUT_S)
    return {tp.partition: tp.offset for tp in res.topic_partitions}


def produce_tail(bootstrap: str, topic: str) -> list[dict]:
    """TAIL_PER_PARTITION more records per partition; returns their delivery reports."""
    reports: list[dict] = []

    def report(err, msg):
        reports.append({"t": time.monotonic_ns(), "p": msg.partition(), "v": msg.value().decode(),
                        "off": msg.offset() if err is None else None, "ok": err is None, "err": str(err)})

    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True, "linger.ms": 5})
    for part in range(PARTITIONS):
        for j in range(TAIL_PER_PARTITION):
            p.produce(topic, value=f"tail-{part}-{j}".encode(), partition=part, on_delivery=report)
    assert p.flush(TIMEOUT_S) == 0, "the tail records were not all delivered"
    bad = [r for r in reports if not r["ok"]]
    assert not bad, f"tail records failed: {bad[:5]}"
    return reports


# ------------------------------------------------------------------ the test


@pytest.mark.slow
@pytest.mark.restart
@pytest.mark.parametrize("protocol", list(GROUP_PROTOCOLS))
def test_group_membership_changes_lose_nothing_and_resume_after_restart(broker_factory, tmp_path, protocol):
    conf = GROUP_PROTOCOLS[protocol]
    classic = conf.get("group.protocol", "classic") == "classic"
    checker_path()  # fail early if the checker is missing
    overrides = BROKER_OVERRIDES.get(protocol, {})
    broker = broker_factory.start(overrides=overrides)
    topic, group = f"hist-{uuid.uuid4().hex[:8]}", f"hist-g-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.create_topics([NewTopic(topic, PARTITIONS, 1)])[topic].result(TIMEOUT_S)

    run = Run(tmp_path, broker.bootstrap, topic, group, conf)
    limits = iter(STEP_LIMITS)
    try:
        # 1. Three members join while records flow.
        run.raise_limit(next(limits))
        run.start_producer()
        w1, w2, w3 = (run.start_consumer(n) for n in ("w1", "w2", "w3"))
        run.wait_for("w1, w2 and w3 share all partitions and every acknowledged record was polled",
                     lambda: run.settled([w1, w2, w3]) and run.caught_up())

        # 2. w1 leaves cleanly in the middle of the flow.
        mark = run.raise_limit(next(limits))
        run.wait_for("w1 polls records sent after the limit was raised", lambda: w1.polled_since(mark))
        w1.terminate()
        run.wait_exit(w1)
        run.wait_for("w2 and w3 share all partitions after w1 left and caught up",
                     lambda: run.settled([w2, w3]) and run.caught_up())

        # 3. w2 is killed; its partitions move to w3 once its session expires.
        mark = run.raise_limit(next(limits))
        run.wait_for("w2 polls records sent after the limit was raised", lambda: w2.polled_since(mark))
        w2.kill()
        run.wait_for("w3 owns every partition after w2's session expired and caught up",
                     lambda: run.settled([w3]) and run.caught_up())

        # 4. A static member joins, closes (no LeaveGroup) and rejoins with the same instance id.
        run.raise_limit(next(limits))
        s1 = run.start_consumer("s1", instance_id="static-1")
        run.wait_for("w3 and the static member s1 share all partitions and caught up",
                     lambda: run.settled([w3, s1]) and run.caught_up())
        mark = run.raise_limit(next(limits))
        run.wait_for("s1 polls records sent after the limit was raised", lambda: s1.polled_since(mark))
        s1.terminate()
        run.wait_exit(s1)
        s1b = run.start_consumer("s1-rejoined", instance_id="static-1")
        run.wait_for("w3 and the rejoined static member share all partitions and caught up",
                     lambda: run.settled([w3, s1b]) and run.caught_up())

        # 5. Drain.
        run.raise_limit(next(limits))
        run.wait_for("the producer finished", lambda: not run.producer.alive(), timeout=RECORDS / RATE + WAIT_S)
        run.wait_for("every acknowledged record was polled", run.caught_up)
        assert len(run.acked) == RECORDS and not run.failed, (
            f"expected all {RECORDS} sends acknowledged; acked {len(run.acked)}, failed {run.failed[:5]}")
        for p in (w3, s1b):
            p.terminate()
            run.wait_exit(p)

        # 6. Committed offsets survive a broker restart and consumption resumes there.
        end_offsets = {part: 0 for part in range(PARTITIONS)}
        for (part, _), off in run.acked.items():
            end_offsets[part] = max(end_offsets[part], off + 1)
        before = committed_offsets(broker.bootstrap, group)
        assert before == end_offsets, (
            f"after the drain the group's committed offsets should be the end offsets\n"
            f"committed: {before}\nend:       {end_offsets}\n{run.describe()}")
        tail = produce_tail(broker.bootstrap, topic)
        data_dir, port = broker.data_dir, broker.port
        broker.stop_cleanly()
        broker = broker_factory.start(data_dir=data_dir, port=port, overrides=overrides)
        after = committed_offsets(broker.bootstrap, group)
        assert after == before, f"committed offsets changed across the restart\nbefore: {before}\nafter:  {after}"

        resumed = run.start_consumer("after-restart")
        tail_keys = {(r["p"], r["v"]) for r in tail}
        run.wait_for("the consumer started after the restart polled every tail record",
                     lambda: tail_keys <= run.polled)
        resumed.terminate()
        run.wait_exit(resumed)
        first: dict[int, int] = {}
        polled_values = []
        for r in resumed.lines:
            if r["ev"] == "poll":
                for part, off, val in r["recs"]:
                    first.setdefault(part, off)
                    polled_values.append(val)
        assert first == before, (
            f"after the restart the consumer must start each partition at the committed offset\n"
            f"first polled: {dict(sorted(first.items()))}\ncommitted:    {before}")
        stale = [v for v in polled_values if not v.startswith("tail-")]
        assert not stale, f"after the restart the consumer re-read {len(stale)} committed records, e.g. {stale[:5]}"
    finally:
        run.stop_all()

    # 7. The whole history.
    history = checker_history(run, [("tail-producer", r) for r in tail])
    run_checker(history, tmp_path / "history.jsonl")
    problems = ownership_violations(run, classic)
    assert not problems, (f"{len(problems)} ownership violations (times since the start of the run):\n"
                          + "\n".join(problems[:20]))
