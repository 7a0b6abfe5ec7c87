#!/usr/bin/env python3
"""Consumer-group rebalance time: N members (default 10) of one group over one
topic of P partitions (default 60), classic group protocol.

Every member is a confluent-kafka Consumer in its own thread, with librdkafka's
defaults except what the measurement needs:

  bootstrap.servers, group.id (fresh per repetition), group.protocol=classic,
  partition.assignment.strategy=--assignor (range: the eager protocol;
  cooperative-sticky: the incremental one), and error_cb (to count client errors).

Each member tracks what it holds from its own rebalance callbacks: with the eager
protocol on_assign hands over the whole assignment and on_revoke takes it all
away; with cooperative-sticky both hand over increments. After every callback
the shared state is checked, and the time of the callback that first makes this
true ends the step:

    every live member holds at least one partition, and the live members'
    partitions cover all P partitions exactly once (none missing, none twice).

Steps of one repetition (a fresh group each time):

  a  first join: N consumers are created and each fetches the topic's metadata
     (off the clock, so connecting is not part of the number), then all
     subscribe() at once; the clock starts at the first subscribe() call.
  b  leave: one member calls close() (which sends LeaveGroup); the clock starts
     just before close() and stops when the remaining N-1 cover all P.
  c  join: a new consumer (created and warmed up off the clock) subscribes to the
     stable group of N-1; the clock starts at subscribe() and stops when the N
     cover all P.

Between steps the group is left alone for --settle-s seconds plus a random pause of
up to --settle-jitter-s (default 3 s, librdkafka's heartbeat.interval.ms): members
learn of a rebalance from their next heartbeat, so a fixed pause would start (b)
and (c) at the same point of every heartbeat cycle and hide that part of the
spread. Rebalance callbacks seen during the pause are reported as
"late_callbacks" of the step before (a group that keeps rebalancing after it first
looked complete). A step that does not complete within
--step-timeout seconds is recorded as timed out (a result, not a crash); the rest
of that repetition is skipped. Repetitions continue until --reps are done or the
next one would not fit in --budget-s.

Prints exactly one JSON object on stdout (diagnostics go to stderr). Only point it
at brokers you run yourself on loopback.

Examples:
  python3 bench/rebalance_bench.py --bootstrap 127.0.0.1:9092 --assignor range
  python3 bench/rebalance_bench.py --bootstrap 127.0.0.1:9092 --assignor cooperative-sticky --steps a --reps 5
"""
from __future__ import annotations

import argparse
import json
import queue
import random
import statistics
import sys
import threading
import time
import uuid

import confluent_kafka
from confluent_kafka import Consumer
from confluent_kafka.admin import AdminClient, NewTopic

POLL_S = 0.02  # how often an idle member thread looks at its command queue
CLOSE_TIMEOUT_S = 30.0


def log(*a):
    print(f"[rebalance {time.strftime('%H:%M:%S')}]", *a, file=sys.stderr, flush=True)


def create_topic(bootstrap, name, partitions, timeout=30.0):
    """CreateTopics, then wait until metadata shows all partitions."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    res = {"topic": name, "requested_partitions": partitions}
    try:
        fs = admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)],
                                 operation_timeout=timeout, request_timeout=timeout)
        fs[name].result(timeout=timeout)
        res["create_ok"] = True
    except Exception as e:  # noqa: BLE001
        res["create_ok"] = False
        res["create_error"] = str(e)
    deadline = time.monotonic() + timeout
    seen = None
    while time.monotonic() < deadline:
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


class Group:
    """What every member holds, and the step being timed."""

    def __init__(self, partitions):
        self.partitions = partitions
        self.lock = threading.Lock()
        self.held = {}  # member id -> set of partitions (live members only)
        self.callbacks = {"assign": 0, "revoke": 0, "lost": 0}
        self.events = []  # (perf_counter, member, kind, partitions in the callback, partitions held after)
        self.errors = {"count": 0, "first": []}
        self.done = threading.Event()
        self.done_at = None
        self.done_shape = None

    def arm(self):
        """Start waiting for the next complete state; returns the callback counts so far."""
        with self.lock:
            self.done.clear()
            self.done_at = None
            self.done_shape = None
            self.events = []
            return dict(self.callbacks)

    def _check(self, now):
        if self.done.is_set() or not self.held:
            return
        sizes = [len(s) for s in self.held.values()]
        if min(sizes) == 0 or sum(sizes) != self.partitions:
            return
        union = set().union(*self.held.values())
        if len(union) != self.partitions:
            return
        self.done_at = now
        self.done_shape = {"members": len(sizes), "min_partitions": min(sizes), "max_partitions": max(sizes)}
        self.done.set()

    def join(self, mid):
        with self.lock:
            self.held[mid] = set()

    def leave(self, mid):
        with self.lock:
            self.held.pop(mid, None)

    def change(self, mid, kind, add=(), remove=(), replace=None):
        now = time.perf_counter()
        with self.lock:
            if mid not in self.held:
                return  # the member that is leaving, or one not counted yet
            self.callbacks[kind] += 1
            if replace is not None:
                self.held[mid] = set(replace)
            else:
                self.held[mid] |= set(add)
                self.held[mid] -= set(remove)
            self.events.append((now, mid, kind, len(replace if replace is not None else (add or remove)),
                                len(self.held[mid])))
            self._check(now)

    def error(self, err):
        with self.lock:
            self.errors["count"] += 1
            s = str(err)
            if s not in self.errors["first"] and len(self.errors["first"]) < 5:
                self.errors["first"].append(s)


class Member(threading.Thread):
    """One consumer, driven only from its own thread: create, warm up, then subscribe/close on command."""

    def __init__(self, mid, args, topic, group_id, group):
        super().__init__(daemon=True, name=f"member-{mid}")
        self.mid = mid
        self.args = args
        self.topic = topic
        self.group = group
        self.conf = {
            "bootstrap.servers": args.bootstrap,
            "group.id": group_id,
            "group.protocol": "classic",
            "partition.assignment.strategy": args.assignor,
            "error_cb": group.error,
        }
        if args.librdkafka_debug:
            self.conf["debug"] = args.librdkafka_debug
        self.cooperative = args.assignor == "cooperative-sticky"
        self.cmds = queue.Queue()
        self.ready = threading.Event()
        self.warm_error = None
        self.subscribed_at = None
        self.close_started = None
        self.closed_at = None
        self.close_error = None
        self.error = None
        self.member_id = None  # as the broker assigned it, refreshed every ~0.5 s while subscribed
        self.finished = threading.Event()

    # -- rebalance callbacks (called from poll() in this thread)
    def _on_assign(self, c, parts):
        ps = [p.partition for p in parts]
        if self.cooperative:
            self.group.change(self.mid, "assign", add=ps)
        else:
            self.group.change(self.mid, "assign", replace=ps)

    def _on_revoke(self, c, parts):
        ps = [p.partition for p in parts]
        if self.cooperative:
            self.group.change(self.mid, "revoke", remove=ps)
        else:
            self.group.change(self.mid, "revoke", replace=())

    def _on_lost(self, c, parts):
        ps = [p.partition for p in parts]
        self.group.change(self.mid, "lost", remove=ps)

    def run(self):
        try:
            c = Consumer(self.conf)
        except Exception as e:  # noqa: BLE001
            self.warm_error = repr(e)
            self.ready.set()
            self.finished.set()
            return
        try:
            tm = c.list_topics(topic=self.topic, timeout=15).topics.get(self.topic)
            if tm is None or tm.error is not None or len(tm.partitions) < self.args.partitions:
                self.warm_error = f"topic metadata: {tm.error if tm is not None else 'missing'}"
        except Exception as e:  # noqa: BLE001
            self.warm_error = repr(e)
        self.ready.set()
        try:
            self._loop(c)
        except Exception as e:  # noqa: BLE001
            self.error = repr(e)
            log(f"member {self.mid}: {self.error}")
        self.finished.set()

    def _loop(self, c):
        subscribed = False
        next_id_check = 0.0
        while True:
            try:
                cmd = self.cmds.get_nowait()
            except queue.Empty:
                cmd = None
            if cmd == "subscribe":
                self.subscribed_at = time.perf_counter()
                c.subscribe([self.topic], on_assign=self._on_assign, on_revoke=self._on_revoke,
                            on_lost=self._on_lost)
                subscribed = True
            elif cmd == "close":
                self.close_started = time.perf_counter()
                try:
                    c.close()
                except Exception as e:  # noqa: BLE001
                    self.close_error = repr(e)
                self.closed_at = time.perf_counter()
                break
            if subscribed:
                c.poll(POLL_S)  # serves the rebalance callbacks; no records are produced
                now = time.monotonic()
                if now >= next_id_check:
                    self.member_id = c.memberid() or None
                    next_id_check = now + 0.5
            else:
                time.sleep(POLL_S)

    def close_and_wait(self, timeout=CLOSE_TIMEOUT_S):
        self.cmds.put("close")
        self.finished.wait(timeout)
        return self.finished.is_set()


def wait_step(group, timeout, t_start_fn):
    """Waits for the armed complete state; returns (seconds or None, timed_out)."""
    group.done.wait(timeout)
    t0 = t_start_fn()
    if group.done.is_set() and t0 is not None:
        return max(0.0, group.done_at - t0), False
    return None, True


def step_result(group, before, secs, timed_out, timeout, t0, members=()):
    with group.lock:
        after = dict(group.callbacks)
        shape = group.done_shape
        events = list(group.events)
    r = {"s": round(secs, 4) if secs is not None else None, "timed_out": timed_out,
         "callbacks": {k: after[k] - before[k] for k in after}}
    if t0 is not None:
        # [seconds since the step started, member, callback, partitions in it, partitions held after it]
        r["timeline"] = [[round(t - t0, 4), m, k, n, h] for t, m, k, n, h in events]
    if timed_out:
        r["timeout_s"] = timeout
        with group.lock:
            sizes = sorted(len(s) for s in group.held.values())
            r["state_at_timeout"] = {"members": len(sizes), "partitions_held": sum(sizes),
                                     "distinct": len(set().union(*group.held.values())) if group.held else 0,
                                     "sizes": sizes}
        # Which members had subscribed, had a member id from the broker, or had died.
        r["members_at_timeout"] = [
            {"member": m.mid, "subscribed": m.subscribed_at is not None, "member_id": bool(m.member_id),
             "alive": m.is_alive(), "error": m.error}
            for m in members if not m.finished.is_set() or m.error]
    else:
        r["shape"] = shape
    return r


def brief(r):
    return {k: v for k, v in r.items() if k != "timeline"}


def settle(group, r, args, rng):
    """Leaves the group alone for --settle-s plus a random part of --settle-jitter-s.

    Members learn of a rebalance from their next heartbeat (heartbeat.interval.ms, 3 s by
    default). A fixed pause would start every step at the same point of the heartbeat cycle
    and make (b) and (c) look steadier than they are; the jitter samples that phase."""
    group.arm()
    pause = args.settle_s + rng.uniform(0.0, args.settle_jitter_s)
    r["settle_s"] = round(pause, 3)
    time.sleep(pause)
    with group.lock:
        # Callbacks that moved partitions (cooperative members also get empty on_assign calls).
        r["late_callbacks"] = sum(1 for e in group.events if e[3] > 0)


def one_rep(args, topic, rep, steps, rng):
    group_id = f"{args.group_prefix}-{args.assignor}-{rep}-{uuid.uuid4().hex[:6]}"
    group = Group(args.partitions)
    out = {"group": group_id}
    members = [Member(i, args, topic, group_id, group) for i in range(args.members)]
    extra = None
    try:
        for m in members:
            m.start()
        for m in members:
            m.ready.wait(30)
        warm = [m.warm_error for m in members if m.warm_error]
        if warm:
            out["warm_errors"] = warm[:3]

        # (a) first join
        # Every member counts from the start, so one member holding all P alone is not "complete".
        for m in members:
            group.join(m.mid)
        before = group.arm()
        for m in members:
            m.cmds.put("subscribe")

        def first_subscribe():
            ts = [m.subscribed_at for m in members if m.subscribed_at is not None]
            return min(ts) if ts else None

        secs, to = wait_step(group, args.step_timeout, first_subscribe)
        out["a"] = step_result(group, before, secs, to, args.step_timeout, first_subscribe(), members)
        log(f"rep {rep} a: {brief(out['a'])}")
        if to or "a" == steps[-1]:
            return out, group
        settle(group, out["a"], args, rng)

        # (b) one member leaves
        if "b" in steps:
            leaver = members[0]
            group.leave(leaver.mid)
            before = group.arm()
            leaver.cmds.put("close")
            secs, to = wait_step(group, args.step_timeout, lambda: leaver.close_started)
            out["b"] = step_result(group, before, secs, to, args.step_timeout, leaver.close_started, members)
            leaver.finished.wait(CLOSE_TIMEOUT_S)
            if leaver.close_started and leaver.closed_at:
                out["b"]["close_call_s"] = round(leaver.closed_at - leaver.close_started, 4)
            log(f"rep {rep} b: {brief(out['b'])}")
            if to:
                return out, group
            settle(group, out["b"], args, rng)

        # (c) a new member joins the stable group
        if "c" in steps:
            extra = Member(args.members, args, topic, group_id, group)
            members.append(extra)
            extra.start()
            extra.ready.wait(30)
            group.join(extra.mid)
            before = group.arm()
            extra.cmds.put("subscribe")
            secs, to = wait_step(group, args.step_timeout, lambda: extra.subscribed_at)
            out["c"] = step_result(group, before, secs, to, args.step_timeout, extra.subscribed_at, members)
            log(f"rep {rep} c: {brief(out['c'])}")
            if not to:
                settle(group, out["c"], args, rng)
        return out, group
    finally:
        # Close the rest in parallel (each close() is a LeaveGroup); off the clock.
        t0 = time.perf_counter()
        for m in members:
            if m.is_alive() and not m.finished.is_set():
                m.cmds.put("close")
        for m in members:
            m.finished.wait(CLOSE_TIMEOUT_S)
        stuck = [m.mid for m in members if not m.finished.is_set()]
        out["teardown_s"] = round(time.perf_counter() - t0, 3)
        if stuck:
            out["teardown_stuck_members"] = stuck


def summarize(reps, step):
    vals = [r[step]["s"] for r in reps if step in r and not r[step]["timed_out"] and r[step]["s"] is not None]
    timeouts = [r[step]["timeout_s"] for r in reps if step in r and r[step]["timed_out"]]
    s = {"runs": len(vals) + len(timeouts), "completed": len(vals), "timed_out": len(timeouts),
         "samples_s": vals}
    if vals:
        s["median_s"] = round(statistics.median(vals), 4)
        s["max_s"] = round(max(vals), 4)
        s["min_s"] = round(min(vals), 4)
    if timeouts:
        s["timeout_s"] = max(timeouts)
    return s


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bootstrap", default="127.0.0.1:9092", help="broker address (default %(default)s)")
    ap.add_argument("--assignor", default="range", choices=("range", "roundrobin", "cooperative-sticky"),
                    help="partition.assignment.strategy (default %(default)s)")
    ap.add_argument("--members", type=int, default=10, help="members of the group (default %(default)s)")
    ap.add_argument("--partitions", type=int, default=60, help="partitions of the fresh topic (default %(default)s)")
    ap.add_argument("--reps", type=int, default=3, help="repetitions, a fresh group each (default %(default)s)")
    ap.add_argument("--steps", default="abc", help="which steps to run: a, ab or abc (default %(default)s)")
    ap.add_argument("--step-timeout", type=float, default=60.0,
                    help="seconds before a step counts as timed out (default %(default)s)")
    ap.add_argument("--settle-s", type=float, default=1.0,
                    help="quiet time after a step completes, before the next (default %(default)s)")
    ap.add_argument("--settle-jitter-s", type=float, default=3.0,
                    help="plus a uniformly random pause of up to this many seconds, so steps (b) and (c) start "
                         "at varying points of the members' heartbeat cycle (default %(default)s: "
                         "librdkafka's heartbeat.interval.ms)")
    ap.add_argument("--seed", type=int, default=1, help="seed of the pause jitter (default %(default)s)")
    ap.add_argument("--budget-s", type=float, default=110.0,
                    help="start no repetition that would likely end after this many seconds; "
                         "at least one always runs (default %(default)s)")
    ap.add_argument("--topic-prefix", default="rebalance", help="the fresh topic is PREFIX-... (default %(default)s)")
    ap.add_argument("--group-prefix", default="rb", help="group ids are PREFIX-... (default %(default)s)")
    ap.add_argument("--topic", help="use this existing topic instead of creating one")
    ap.add_argument("--librdkafka-debug", metavar="CONTEXTS",
                    help="librdkafka debug contexts for every member, e.g. cgrp (logs go to stderr)")
    ap.add_argument("--timeout", type=float, default=600.0, help="accepted for symmetry with the other scripts; "
                                                                 "the budget and step timeout bound the run")
    a = ap.parse_args()
    if a.steps not in ("a", "ab", "abc"):
        ap.error("--steps must be a, ab or abc")
    if a.members < 2:
        ap.error("--members must be at least 2")

    out = {
        "assignor": a.assignor,
        "protocol": "cooperative" if a.assignor == "cooperative-sticky" else "eager",
        "group_protocol": "classic",
        "members": a.members,
        "partitions": a.partitions,
        "steps": a.steps,
        "step_timeout_s": a.step_timeout,
        "settle_s": a.settle_s,
        "settle_jitter_s": a.settle_jitter_s,
        "client": "confluent-kafka %s / librdkafka %s" % (confluent_kafka.__version__, confluent_kafka.libversion()[0]),
        "consumer_config": {"group.protocol": "classic", "partition.assignment.strategy": a.assignor},
    }
    t_start = time.monotonic()
    if a.topic:
        topic = a.topic
    else:
        topic = f"{a.topic_prefix}-{a.partitions}p-{uuid.uuid4().hex[:6]}"
        out["create"] = create_topic(a.bootstrap, topic, a.partitions)
        log("topic", out["create"])
    reps = []
    rng = random.Random(a.seed)
    errors = {"count": 0, "first": []}
    rep_durations = []
    for rep in range(a.reps):
        elapsed = time.monotonic() - t_start
        if reps and elapsed + max(rep_durations) > a.budget_s:
            out["stopped_early"] = (f"{len(reps)} of {a.reps} repetitions: another would likely end after "
                                    f"the {a.budget_s:g} s budget")
            break
        t0 = time.monotonic()
        r, group = one_rep(a, topic, rep, a.steps, rng)
        r["duration_s"] = round(time.monotonic() - t0, 2)
        rep_durations.append(r["duration_s"])
        errors["count"] += group.errors["count"]
        for e in group.errors["first"]:
            if e not in errors["first"] and len(errors["first"]) < 5:
                errors["first"].append(e)
        reps.append(r)
    out["reps"] = reps
    out["client_errors"] = errors
    out["summary"] = {s: summarize(reps, s) for s in a.steps}
    out["duration_s"] = round(time.monotonic() - t_start, 2)
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
