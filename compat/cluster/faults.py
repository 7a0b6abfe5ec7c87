#!/usr/bin/env python3
"""The fault tier: three nodes on their own addresses in a network namespace
of their own, a workload of acks=all idempotent producers and consumers
recording a history on a topic with replication factor 3 and
min.insync.replicas=2, and a seeded nemesis (kill -9, SIGSTOP, partitions,
packet loss) for N cycles (default 108); then the checks.

    python3 compat/cluster/faults.py [--seed S] [--cycles N] [--kinds kill,pause,...]
                                     [--replication 1] [--out DIR]

Run directly it re-executes itself in a fresh namespace (netns.py; root or
unprivileged user namespaces, and nft). test_faults.py runs it the same way.
TRIBUTARY_FAULT_SEED / TRIBUTARY_FAULT_CYCLES / TRIBUTARY_FAULT_KINDS give
the defaults of --seed / --cycles / --kinds; without a seed one is drawn
and printed. The same seed and cycles (and kinds) replay the same fault
schedule; the workload's timing is the machine's.

What fails the run (exit status 1), each reported on its own line:
- the shared history checker finds a bad anomaly (lost or duplicated
  acknowledged write, two values at one offset, a producer's sends out of
  order, a consumer skipping or going back, an acknowledged write never
  read by the final drain); a duplicate a producer wrote itself, every
  copy from one producer id in a later producer epoch than the one before
  (librdkafka's epoch bump, epoch_bumps.py), is reported and not failed;
- hwm.py: a high watermark going backwards, or below an acknowledged offset;
- replicas.py (RF > 1): once the ISR is full again and the nodes are
  stopped, any difference between the replicas' batches below the final
  high watermark (`tributary debug dump-log`), a gap, or a bad CRC;
- liveness, with generous deadlines: the cluster not recovering after a
  heal, a partition taking no acknowledged write after the final heal, a
  partition not readable to its high watermark, a partition whose ISR is
  not its full replica set within 30 s of the final heal, a node that does
  not stop cleanly on SIGTERM at the end;
- a run that proves too little: fewer cycles than asked, fewer
  acknowledged sends than --min-acked, a fault kind that never ran.

Output in --out (default: a temp dir, removed after a passing run unless
--keep): history.jsonl, hwm.jsonl, nemesis.jsonl, summary.json, and the
nodes' configs and logs (cluster/nodeN.log).
"""

from __future__ import annotations

import argparse
import faulthandler
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import netns  # noqa: E402

TOPIC = "faults"
WARMUP_ACKS = 50


def shared_checker():
    """The shared history checker (../shared/tools beside the repository)."""
    root = HERE.parents[1]
    dirs = [Path(p) for p in (os.environ.get("TRIBUTARY_SHARED_TOOLS"), root.parent / "shared" / "tools", "/work/shared/tools") if p]
    for d in dirs:
        if (d / "kafka_history_checker.py").exists():
            sys.path.insert(0, str(d))
            import kafka_history_checker

            return kafka_history_checker
    raise SystemExit(f"the shared history checker is not in {[str(d) for d in dirs]}; set TRIBUTARY_SHARED_TOOLS")


def parse_range(text: str) -> tuple[float, float]:
    lo, _, hi = text.partition(":")
    return float(lo), float(hi or lo)


def arguments(argv=None) -> argparse.Namespace:
    from nemesis import KINDS, SABOTAGE

    env = os.environ.get
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=int(env("TRIBUTARY_FAULT_SEED") or random.SystemRandom().randrange(10**9)))
    ap.add_argument("--cycles", type=int, default=int(env("TRIBUTARY_FAULT_CYCLES") or 108))
    ap.add_argument("--kinds", default=env("TRIBUTARY_FAULT_KINDS") or ",".join(KINDS), help=f"comma separated, of {', '.join(KINDS)}")
    ap.add_argument("--hold", default="1:6", help="seconds a fault is held, MIN:MAX (default 1:6; nodes are fenced after 4 s without heartbeats)")
    ap.add_argument("--gap", default="0.5:2", help="seconds between a recovery and the next fault, MIN:MAX (default 0.5:2)")
    ap.add_argument("--replication", type=int, default=3, help="replication factor of the topic (default 3; 1 runs the single-replica profile)")
    ap.add_argument("--min-insync", type=int, default=None, help="min.insync.replicas of the topic (default 2 with replicas, else 1)")
    ap.add_argument("--partitions", type=int, default=6)
    ap.add_argument("--producers", type=int, default=3)
    ap.add_argument("--consumers", type=int, default=2)
    ap.add_argument("--rate", type=float, default=40.0, help="sends/s per producer")
    ap.add_argument("--min-acked", type=int, default=1000, help="fail if fewer sends were acknowledged")
    ap.add_argument("--settle-deadline", type=float, default=60.0, help="seconds the cluster gets to recover after each heal")
    ap.add_argument("--sabotage", action="store_true",
                    help=f"self-test of the checks: one {SABOTAGE} fault (kill -9, cut 3/4 of the bytes of the topic's segments on that node, restart); the run must fail")
    ap.add_argument("--deadline", type=float, default=None,
                    help="seconds after which a hung run prints every thread's stack and exits (default: 600 + 30 per cycle)")
    ap.add_argument("--out", default=None)
    ap.add_argument("--keep", action="store_true", help="keep --out (and the nodes' data) after a passing run")
    a = ap.parse_args(argv)
    a.kinds = [k for k in a.kinds.split(",") if k]
    unknown = set(a.kinds) - set(KINDS)
    if unknown:
        ap.error(f"unknown fault kinds {sorted(unknown)}; known: {', '.join(KINDS)}")
    if a.min_insync is None:
        a.min_insync = 2 if a.replication >= 3 else 1
    if a.sabotage:
        a.kinds = [SABOTAGE]
    if a.deadline is None:
        a.deadline = 600 + 30 * a.cycles
    return a


def wrong_sources(ss_output: str, node_of_pid: dict[int, int], hosts: dict[int, str],
                  ports: dict[int, set[int]]) -> tuple[list[str], int]:
    """From `ss -Htnp state established`: the connections a node opened to
    another node's listener that do not leave from the node's own address,
    and how many node-to-node connections there were in all."""
    bad, seen = [], 0
    for line in ss_output.splitlines():
        parts = line.split()
        pid = re.search(r"pid=(\d+)", line)
        if len(parts) < 4 or pid is None or int(pid.group(1)) not in node_of_pid:
            continue
        node = node_of_pid[int(pid.group(1))]
        local, peer = parts[2], parts[3]
        local_host = local.rpartition(":")[0]
        peer_host, _, peer_port = peer.rpartition(":")
        targets = [n for n in hosts if n != node and peer_host == hosts[n] and int(peer_port) in ports[n]]
        if not targets:
            continue
        seen += 1
        if local_host != hosts[node]:
            bad.append(f"node {node} -> node {targets[0]}: {local} -> {peer} (expected to leave from {hosts[node]})")
    return bad, seen


class Run:
    """One fault run: cluster, workload, nemesis and the checks."""

    def __init__(self, a: argparse.Namespace, out: Path):
        from kraft import Cluster

        self.a, self.out = a, out
        self.replicas_stopped = False  # the nodes stopped for the replica comparison, their logs still there
        (out / "cluster").mkdir(exist_ok=True)
        self.cluster = Cluster(out / "cluster", own_addresses=True)
        self.failures: list[str] = []
        self.stopped = False
        self.summary: dict = {"seed": a.seed, "cycles_asked": a.cycles, "kinds": a.kinds, "replication": a.replication,
                              "min_insync": a.min_insync, "out": str(out)}

    def fail(self, why: str) -> None:
        print(f"FAIL: {why}", flush=True)
        self.failures.append(why)

    def say(self, text: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)

    def check_sources(self, when: str) -> None:
        """Every node-to-node connection leaves from the opening node's own
        address (what lets the nemesis cut nodes apart by address)."""
        nodes = self.cluster.nodes.values()
        ss = subprocess.run(["ss", "-Htnp", "state", "established"], capture_output=True, text=True, timeout=30).stdout
        bad, seen = wrong_sources(ss, {n.process.pid: n.node_id for n in nodes if n.running()},
                                  {n.node_id: n.host for n in nodes},
                                  {n.node_id: {n.client_port, n.controller_port} for n in nodes})
        self.summary.setdefault("inter_node_connections", {})[when] = seen
        if bad:
            self.fail(f"{when}: node-to-node connections not from the node's own address: {bad[:5]}")
        if not seen:
            self.fail(f"{when}: no node-to-node connection seen, nothing to check the addresses of:\n{ss}")

    def create_topic(self) -> None:
        from confluent_kafka.admin import AdminClient, NewTopic

        admin = AdminClient({"bootstrap.servers": self.cluster.bootstrap})
        topic = NewTopic(TOPIC, self.a.partitions, self.a.replication, config={"min.insync.replicas": str(self.a.min_insync)})
        admin.create_topics([topic], operation_timeout=30)[TOPIC].result(60)

    def run(self) -> int:
        from hwm import check as hwm_check
        from kraft import wait_for
        from nemesis import LivenessError, MetadataWatch, Nemesis, schedule, spurious_fencing
        from workload import Workload

        a, out = self.a, self.out
        checker = shared_checker()
        faults = schedule(a.seed, 1 if a.sabotage else a.cycles, a.kinds, parse_range(a.hold), parse_range(a.gap))
        self.say(f"fault run: seed {a.seed}, {len(faults)} cycles of {', '.join(a.kinds)}; RF {a.replication}, "
                 f"min.insync.replicas {a.min_insync}; output in {out}")
        self.say(f"replay: TRIBUTARY_FAULT_SEED={a.seed} TRIBUTARY_FAULT_CYCLES={len(faults)} "
                 f"TRIBUTARY_FAULT_KINDS={','.join(a.kinds) if not a.sabotage else ''} python3 compat/cluster/faults.py"
                 + (" --sabotage" if a.sabotage else ""))
        self.cluster.start()
        self.summary["nodes"] = {i: n.bootstrap for i, n in self.cluster.nodes.items()}
        self.create_topic()
        workload = Workload(self.cluster.bootstrap, TOPIC, a.partitions, out, a.seed, a.producers, a.consumers, a.rate)
        nemesis = Nemesis(
            self.cluster, a.seed, out / "nemesis.jsonl", TOPIC, a.settle_deadline,
            on_event=lambda r: workload.history.add(process="nemesis", type="info", f="nemesis",
                                                    value={k: r[k] for k in ("event", "cycle", "kind") if k in r}),
        )
        watch = MetadataWatch(nemesis)
        try:
            nemesis.settle("topic creation")
            self.check_sources("after start")
            watch.start()
            workload.start()
            # Enough data on every partition that a lost tail would show.
            wait_for(f"every partition to take {WARMUP_ACKS} acknowledged writes before the first fault",
                     lambda: min(workload.acked()) >= WARMUP_ACKS, deadline=120)
            self.say("workload running; faults start")
            started = time.monotonic()
            try:
                nemesis.run(faults)
            except LivenessError as e:
                self.fail(f"liveness: {e}")
            self.summary["fault_phase_s"] = round(time.monotonic() - started, 1)
            self.say(f"{len(nemesis.done)} fault cycles done in {self.summary['fault_phase_s']} s; final heal")
            self.after_heal(workload, nemesis)
        finally:
            watch.stop()
            wedged = workload.stop(deadline=workload.message_timeout_ms / 1000 + 30)
            if wedged:
                self.fail(f"client threads still running after the stop deadline: {wedged}")
            nemesis.close()

        drain = workload.drain(deadline=120)
        workload.close()
        self.summary["drain"] = {"high_watermarks": drain.high, "unreadable": drain.unreadable}
        for p, why in sorted(drain.unreadable.items()):
            self.fail(f"partition {p} not readable after the final heal: {why}")
        self.compare_replicas(nemesis, drain.high)

        history = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines() if line.strip()]
        verdict = checker.check(history, final_drain_done=drain.complete)
        hwm_verdict = hwm_check(workload.watermarks.observations, history)
        verdict = self.set_aside_epoch_bump_duplicates(verdict, drain.high)
        self.summarize(history, nemesis, workload, verdict, hwm_verdict)
        if not verdict["valid"]:
            self.fail(f"history checker: bad anomalies {verdict['bad-error-types']} (counts {verdict['counts']})")
        if not hwm_verdict["valid"]:
            self.fail(f"high watermark checks: {hwm_verdict['counts']}")
        asked = {p: 0 for p in range(a.partitions)}
        for o in workload.watermarks.observations:
            if o["observer"] == "list-offsets":
                asked[o["partition"]] += 1
        if min(asked.values()) < 10:
            self.fail(f"high watermarks asked too rarely for the checks to mean something: {asked}")
        acked = self.summary["sends"]["ok"]
        if acked < a.min_acked:
            self.fail(f"only {acked} sends were acknowledged (< {a.min_acked}): the run proves too little")
        fenced = spurious_fencing(watch.rounds, nemesis.windows())
        self.summary["spurious_fencing"] = fenced[:20]
        self.summary["metadata_rounds"] = len(watch.rounds)
        if fenced:
            self.fail(f"brokers fenced that no fault explains (broker, nemesis time, during cycle): "
                      f"{[(f['broker'], f['t'], f['during_cycle']) for f in fenced[:10]]}")
        if len(nemesis.done) < len(faults):
            self.fail(f"only {len(nemesis.done)} of {len(faults)} fault cycles ran")
        missing = set(f.kind for f in faults) - {r["kind"] for r in nemesis.done}
        if missing:
            self.fail(f"fault kinds that never ran: {sorted(missing)}")
        crashes = [op.get("error") for op in history if op.get("f") == "crash"]
        self.summary["client_crashes"] = crashes[:20]
        if crashes or workload.counters.fatal_errors:
            # acks=all on fsynced logs gives an idempotent producer no reason
            # for a fatal error (OUT_OF_ORDER_SEQUENCE_NUMBER: the broker lost
            # or forgot what it had acknowledged).
            self.fail(f"clients hit errors that replaced them: {(crashes + workload.counters.fatal_errors)[:5]}")
        return 0

    def after_heal(self, workload, nemesis) -> None:
        """After the final heal: the cluster recovers, every partition takes a
        new acknowledged write, and every partition's ISR is its full
        replica set within 30 s."""
        from nemesis import LivenessError

        try:
            settle = nemesis.settle("the final heal")
            self.say(f"recovered {settle:.1f} s after the final heal")
            self.check_sources("after the final heal")
        except LivenessError as e:
            self.fail(f"liveness: {e}")
            return
        heal_at = workload.history.now()
        end = time.monotonic() + 60

        def progressed() -> bool:
            return all(t > heal_at for t in workload.last_ack_times() + workload.last_ack_by_producer())

        while time.monotonic() < end and not progressed():
            time.sleep(0.2)
        stale = [p for p, t in enumerate(workload.last_ack_times()) if t <= heal_at]
        if stale:
            self.fail(f"partitions {stale} took no acknowledged write within 60 s of the final heal")
        stuck = {p: round(t / 1e9, 1) for p, t in enumerate(workload.last_ack_by_producer()) if t <= heal_at}
        if stuck:
            self.fail(f"producers with no acknowledged send within 60 s of the final heal (their last ack, s): {stuck}")
        end = time.monotonic() + 30
        short = self.short_isr(nemesis)
        while short and time.monotonic() < end:
            time.sleep(0.5)
            short = self.short_isr(nemesis)
        if short:
            self.fail(f"partitions whose ISR is not their replica set 30 s after the final heal: {short}")

    def compare_replicas(self, nemesis, high: dict[int, int]) -> None:
        """With the producers stopped and the ISR full again, the nodes are
        stopped and every replica's batches below the final high watermark
        compared (replicas.py); any difference fails the run."""
        from kraft import binary
        from replicas import compare_partition

        if self.a.replication < 2:
            return
        end = time.monotonic() + 30
        short = self.short_isr(nemesis)
        while short and time.monotonic() < end:
            time.sleep(0.5)
            short = self.short_isr(nemesis)
        if short:
            self.fail(f"replicas not compared: ISR not full after the drain: {short}")
            return
        self.stop_cluster()
        self.replicas_stopped = True
        data_dirs = {n.node_id: n.data_dir for n in self.cluster.nodes.values()}
        compared = {}
        for p in range(self.a.partitions):
            if p not in high:
                self.fail(f"replicas of partition {p} not compared: no final high watermark")
                continue
            problems, counts = compare_partition(binary(), data_dirs, TOPIC, p, high[p])
            compared[p] = {"high_watermark": high[p], "batches": counts, "problems": problems[:5]}
            for why in problems:
                self.fail(f"replicas of {TOPIC}-{p} below the high watermark {high[p]}: {why}")
        self.summary["replicas"] = compared
        self.say(f"replicas compared below the final high watermarks {high}: "
                 f"{sum(1 for c in compared.values() if not c['problems'])} of {len(compared)} partitions identical")

    def set_aside_epoch_bump_duplicates(self, verdict: dict, high: dict[int, int]) -> dict:
        """Duplicates the producers wrote themselves by bumping their epoch
        (epoch_bumps.py: every copy in a batch of one producer id, in
        strictly increasing producer epochs, as the stopped replicas' own
        batches show) are reported, not failed: Kafka holds the same. The
        verdict comes back without them when they were all of the
        duplicates; any other duplicate, or more than the checker lists,
        leaves it as it was."""
        from kraft import binary
        from replicas import dump_log
        import epoch_bumps

        listed = verdict["errors"].get("duplicate", [])
        if not listed or self.a.replication < 2 or not self.replicas_stopped:
            return verdict
        node = self.cluster.nodes[min(self.cluster.nodes)]

        def batches_of(p: int):
            try:
                return dump_log(binary(), node.data_dir, TOPIC, p, high[p])["batches"]
            except (KeyError, RuntimeError):
                return None

        bumped, other = epoch_bumps.split(listed, batches_of)
        bumps = {f.name: epoch_bumps.bump_lines(f.read_text(errors="replace"))
                 for f in sorted(self.out.glob("producer-*.log"))}
        self.summary["duplicates_after_epoch_bump"] = {"count": len(bumped), "first": bumped[:20],
                                                       "client_bump_lines": {k: v[:20] for k, v in bumps.items() if v}}
        if bumped:
            self.say(f"{len(bumped)} duplicates written by a producer after bumping its epoch (librdkafka resends "
                     f"possibly written records from sequence 0 of the new epoch; Kafka holds the same), first: {bumped[0]}")
            for name, lines in bumps.items():
                for line in lines[:3]:
                    self.say(f"  {name}: {line[:300]}")
        return epoch_bumps.set_aside(verdict, other)

    def short_isr(self, nemesis) -> dict:
        short = {}
        for n in self.cluster.nodes.values():
            try:
                md = nemesis.metadata(n)
            except Exception as e:  # noqa: BLE001 - reported as the node's answer
                return {f"node {n.node_id}": repr(e)}
            for t in md.topics:
                for p in t["partitions"]:
                    if sorted(p["isr"]) != sorted(p["replicas"]):
                        short[f"node {n.node_id}: {t['name']}-{p['partition']}"] = {"replicas": p["replicas"], "isr": p["isr"]}
        return short

    def summarize(self, history, nemesis, workload, verdict, hwm_verdict) -> None:
        sends = {"ok": 0, "info": 0, "fail": 0}
        polled = 0
        for op in history:
            if op.get("f") == "send":
                sends[op["type"]] += 1
            elif op.get("f") == "poll":
                polled += sum(len(v) for m in op["value"] for v in m[1].values())
        kinds: dict[str, int] = {}
        for r in nemesis.done:
            kinds[r["kind"]] = kinds.get(r["kind"], 0) + 1
        settles = [r["settle_s"] for r in nemesis.done]
        self.summary.update({
            "cycles_done": len(nemesis.done),
            "faults": kinds,
            "settle_s": {"max": max(settles, default=0), "mean": round(sum(settles) / len(settles), 2) if settles else 0},
            "dropped_packets": sum(r.get("dropped_packets", 0) for r in nemesis.done),
            "truncated": {seg: sizes for r in nemesis.done for seg, sizes in (r.get("truncated") or {}).items()},
            "sends": sends,
            "records_polled": polled,
            "client_errors": workload.counters.client_errors,
            "fatal_client_errors": workload.counters.fatal_errors[:20],
            "watermark_query_errors": workload.watermarks.failures,
            "checker": {k: verdict[k] for k in ("valid", "bad-error-types", "counts")},
            "checker_errors": verdict["errors"],
            "hwm": hwm_verdict,
        })
        self.say(f"history: {sends['ok']} acknowledged sends, {sends['info']} indefinite, {sends['fail']} failed; "
                 f"{polled} records polled; faults {kinds}; {self.summary['dropped_packets']} packets dropped by partitions")
        self.say(f"history checker: valid={verdict['valid']} bad={verdict['bad-error-types']} counts={verdict['counts']}")
        self.say(f"high watermarks: {hwm_verdict['observations']} observations, valid={hwm_verdict['valid']} counts={hwm_verdict['counts']}")

    def stop_cluster(self) -> None:
        if self.stopped:
            return
        self.stopped = True
        self.cluster.stop()
        codes = {i: n.process.returncode for i, n in self.cluster.nodes.items() if n.process is not None}
        self.summary["exit_codes"] = codes
        unclean = {i: c for i, c in codes.items() if c != 0}
        if unclean:
            self.fail(f"nodes that did not stop cleanly on SIGTERM (exit status): {unclean}")


def main(argv=None) -> int:
    netns.reexec_inside()
    a = arguments(argv)
    # A harness that hangs shows where: every thread's stack, then exit 3.
    faulthandler.dump_traceback_later(a.deadline, exit=True)
    faulthandler.register(signal.SIGUSR1)
    out = Path(a.out) if a.out else Path(tempfile.mkdtemp(prefix="tributary-faults-"))
    out.mkdir(parents=True, exist_ok=True)
    run = Run(a, out)
    try:
        run.run()
    except Exception:  # noqa: BLE001 - any crash of the harness fails the run, with its trace
        run.fail(f"the run stopped on an exception:\n{traceback.format_exc()}")
    finally:
        run.stop_cluster()
    run.summary["failures"] = run.failures
    (out / "summary.json").write_text(json.dumps(run.summary, indent=1, default=str))
    if run.failures:
        print(f"FAILED ({len(run.failures)} problems); seed {a.seed}; everything is in {out}", flush=True)
        print("node logs (ends):\n" + run.cluster.logs()[-6000:], flush=True)
        return 1
    print(f"PASS: seed {a.seed}, {run.summary['cycles_done']} fault cycles {run.summary['faults']}, "
          f"{run.summary['sends']['ok']} acknowledged sends, nothing lost, duplicated or reordered", flush=True)
    if not a.keep and not a.out:
        shutil.rmtree(out, ignore_errors=True)
    elif not a.keep:
        for data in (out / "cluster").glob("data*"):
            shutil.rmtree(data, ignore_errors=True)  # the nodes' data; histories, configs and logs stay
    return 0


if __name__ == "__main__":
    sys.exit(main())
