"""The fault tier (issue 15): three nodes on 127.0.0.2-4 in a network
namespace of their own, acks=all idempotent producers and consumers
recording a history, and a seeded nemesis (kill -9 and SIGSTOP, of any node and of
the active controller, isolating the controller, a minority/majority split, a
one-link bridge, a one-way cut, packet loss) for N cycles, each ending with
a heal. faults.py runs it all and checks: the shared history checker (no
acknowledged write lost, one value per offset, no duplicates, per-producer
order, consumers neither skip nor go back, the final drain reads every
acknowledged write), our own high watermark checks (hwm.py), recovery
after every heal, every partition writable, readable and with a full ISR
after the final heal, every producer making progress again, no broker
fenced that no fault explains, node-to-node connections from each node's
own address, and a clean SIGTERM stop.

TRIBUTARY_FAULT_SEED, TRIBUTARY_FAULT_CYCLES (default 108, twelve rounds
of the nine kinds, about ten minutes here) and TRIBUTARY_FAULT_KINDS choose
the run; a failure prints
the seed and the command that replays its fault schedule. Needs root (or
unprivileged user namespaces) and nft: skipped otherwise, unless
TRIBUTARY_REQUIRE_FAULTS=1 (CI) makes that a failure.

The topic has replication factor 3 and min.insync.replicas=2 (issue 15):
after the final heal every partition's ISR must be full again within 30 s,
and once the nodes are stopped every replica's log below the final high
watermark must be identical batch for batch (replicas.py over `tributary
debug dump-log`). TRIBUTARY_FAULT_REPLICATION=1 runs the single-replica
profile instead (acknowledged data must then survive kill -9 because
acks=all is fsynced before the answer).
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

import epoch_bumps
import hwm
import netns
import nemesis
import replicas
from conftest import binary
from faults import shared_checker, wrong_sources

HERE = Path(__file__).resolve().parent
FAULTS = HERE / "faults.py"
REPLICATION = int(os.environ.get("TRIBUTARY_FAULT_REPLICATION") or 3)
DEFAULT_CYCLES = 108  # twelve rounds of the nine kinds


@pytest.fixture(scope="module")
def namespaces():
    binary()
    ok, why = netns.available()
    if not ok:
        if os.environ.get("TRIBUTARY_REQUIRE_FAULTS") == "1":
            pytest.fail(f"TRIBUTARY_REQUIRE_FAULTS=1 but the fault tier cannot run here: {why}")
        pytest.skip(why)


def run_faults(out: Path, args: list[str], timeout: float) -> tuple[subprocess.CompletedProcess, dict]:
    """faults.py in a fresh namespace; its output (echoed for the pytest
    report) and its summary.json."""
    out.mkdir(parents=True, exist_ok=True)
    proc = netns.run([sys.executable, str(FAULTS), "--out", str(out), *args], timeout=timeout,
                     capture_output=True, text=True)
    # librdkafka's own log lines ("%4|...") are noise here; the run's are not.
    print("\n".join(line for line in proc.stdout.splitlines() if not line.startswith("%")))
    summary_path = out / "summary.json"
    assert summary_path.exists(), f"faults.py wrote no summary (exit {proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc, json.loads(summary_path.read_text())


def test_fault_cycles_lose_nothing_acknowledged(namespaces, tmp_path):
    seed = int(os.environ.get("TRIBUTARY_FAULT_SEED") or random.SystemRandom().randrange(10**9))
    cycles = int(os.environ.get("TRIBUTARY_FAULT_CYCLES") or DEFAULT_CYCLES)
    print(f"seed {seed}, {cycles} cycles, RF {REPLICATION} (TRIBUTARY_FAULT_SEED={seed} TRIBUTARY_FAULT_CYCLES={cycles} "
          f"TRIBUTARY_FAULT_REPLICATION={REPLICATION} replays the schedule)")
    proc, summary = run_faults(
        tmp_path / "run", ["--seed", str(seed), "--cycles", str(cycles), "--replication", str(REPLICATION)],
        timeout=900 + 30 * cycles,
    )
    assert proc.returncode == 0, f"seed {seed}: {summary['failures']}"
    assert summary["failures"] == []
    assert summary["cycles_done"] == cycles
    assert summary["checker"]["valid"] and summary["hwm"]["valid"]
    assert summary["sends"]["ok"] >= 1000
    assert summary["inter_node_connections"]["after start"] > 0
    if REPLICATION > 1:
        compared = summary["replicas"]
        assert len(compared) == 6 and all(not c["problems"] for c in compared.values()), compared
        assert all(c["high_watermark"] > 0 for c in compared.values()), compared


def test_a_controller_paused_past_the_session_timeout_fences_nobody_when_it_resumes(namespaces, tmp_path):
    """The active controller is stopped (SIGSTOP) for 5 to 6 s, longer than
    broker.session.timeout.ms (4 s here): the others elect a new leader and
    fence it. When it resumes it must not fence the two healthy brokers
    (it did: still believing it led, it saw every broker silent and its
    fencings were forwarded to, and committed by, the new leader)."""
    proc, summary = run_faults(
        tmp_path / "pauses",
        ["--seed", "21", "--cycles", "4", "--kinds", "pause-controller", "--hold", "5:6", "--min-acked", "500"],
        timeout=900,
    )
    assert summary["cycles_done"] == 4, summary["failures"]
    assert summary["spurious_fencing"] == [], summary["spurious_fencing"]
    assert proc.returncode == 0, summary["failures"]


def test_the_checks_catch_acknowledged_writes_cut_from_a_log(namespaces, tmp_path):
    """The harness can fail: a node is killed, three quarters of the bytes
    of its partitions' segments are cut (acknowledged records gone, as an
    unsynced disk would lose them), and it is restarted. The history checker
    must report the loss, and the high watermark checks the watermark going
    back below acknowledged offsets. (Single replica: with three, the
    others would hold what was cut; replica divergence has its own tests.)"""
    # One replica: with three, the others would hold what was cut.
    proc, summary = run_faults(tmp_path / "sabotage", ["--seed", "3", "--sabotage", "--replication", "1"], timeout=900)
    assert proc.returncode == 1, "a run with acknowledged records cut from a log passed"
    truncated = summary["cycles_done"] == 1 and any(
        sizes[1] < sizes[0] for sizes in summary.get("truncated", {}).values()
    )
    assert truncated, f"the sabotage cut nothing: {summary.get('truncated')}"
    bad = set(summary["checker"]["bad-error-types"])
    assert bad & {"lost-write", "inconsistent-offsets"}, summary["checker"]
    assert set(summary["hwm"]["counts"]) & {"hwm-backwards", "hwm-below-ack"}, summary["hwm"]


# ---------------------------------------------------------------- the checks' own tests


def test_the_shared_checker_flags_a_lost_acknowledged_write():
    """The checker faults.py loads, on a history shaped as workload.py
    writes it: three acknowledged sends, and a drain that reads offsets 0
    and 2 but not 1."""
    checker = shared_checker()
    sends = [{"process": 0, "type": "ok", "f": "send", "value": [["send", 4, [o, f"0-{o}"]]], "index": o, "time": o}
             for o in range(3)]
    assign = {"process": "drain", "type": "ok", "f": "assign", "value": [4], "index": 3, "time": 3}

    def drain(offsets):
        return {"process": "drain", "type": "ok", "f": "poll", "index": 4, "time": 4,
                "value": [["poll", {"4": [[o, f"0-{o}"] for o in offsets]}]]}

    assert checker.check(sends + [assign, drain([0, 1, 2])], final_drain_done=True)["valid"]
    verdict = checker.check(sends + [assign, drain([0, 2])], final_drain_done=True)
    assert not verdict["valid"] and "lost-write" in verdict["bad-error-types"], verdict


def obs(observer, high, end, start=None, partition=0):
    return {"observer": observer, "partition": partition, "high": high, "start": start, "end": end}


def test_hwm_backwards_per_observer_and_in_real_time():
    ok = [obs("list-offsets", 5, 10, 9), obs("list-offsets", 7, 20, 19), obs("consumer-100", 6, 15)]
    assert hwm.backwards(ok) == []
    one_observer = ok + [obs("consumer-100", 4, 30)]
    assert [v["observer"] for v in hwm.backwards(one_observer)] == ["consumer-100"]
    # Another observer's request sent after the 7 arrived (t=20) answers 6.
    real_time = ok + [obs("drain", 6, 26, 25)]
    assert [v["observer"] for v in hwm.backwards(real_time)] == ["real-time"]
    # Sent before the 7 arrived: concurrent, either order is fine.
    assert hwm.backwards(ok + [obs("drain", 6, 26, 18)]) == []
    # Partitions are separate.
    assert hwm.backwards(ok + [obs("drain", 0, 26, 25, partition=1)]) == []


def test_hwm_below_an_acknowledged_offset():
    acks = [(0, 41, 100)]  # offset 41 of partition 0 acknowledged at t=100
    assert hwm.below_acks([obs("list-offsets", 42, 120, 110)], acks) == []
    assert hwm.below_acks([obs("list-offsets", 41, 99, 90)], acks) == []  # asked before the ack
    [v] = hwm.below_acks([obs("list-offsets", 41, 120, 110)], acks)
    assert v["acked_offset"] == 41 and v["observation"]["high"] == 41
    history = [{"f": "send", "type": "ok", "time": 100, "value": [["send", 0, [41, "0-1"]]]},
               {"f": "send", "type": "info", "time": 101, "value": [["send", 0, [None, "0-2"]]]}]
    assert hwm.acks_from_history(history) == acks
    assert not hwm.check([obs("list-offsets", 40, 120, 110)], history)["valid"]


def test_the_schedule_is_a_function_of_the_seed():
    plan = nemesis.schedule(42, 20)
    assert plan == nemesis.schedule(42, 20)
    assert plan != nemesis.schedule(43, 20)
    assert nemesis.schedule(42, 12) == plan[:12]
    # Every kind once per round of len(KINDS) cycles.
    rounds = [plan[i:i + len(nemesis.KINDS)] for i in range(0, 16, len(nemesis.KINDS))]
    assert all(sorted(f.kind for f in r) == sorted(nemesis.KINDS) for r in rounds)
    for f in plan:
        assert 1.0 <= f.hold_s <= 6.0
        if f.kind in ("split", "one-way"):
            [victim] = f.nodes
            assert all(victim in link for link in f.links) and f.links
        if f.kind == "loss":
            assert 20 <= f.loss_pct <= 60
    # The controller's faults get their victim when they start.
    f = next(f for f in plan if f.kind == "bridge")
    nemesis.plan(f, 2)
    assert f.nodes[0] == 2 and sorted(f.links) == sorted([(2, f.nodes[1]), (f.nodes[1], 2)])


def test_fencing_that_no_fault_explains():
    everyone = {1: {1, 2, 3}, 2: {1, 2, 3}, 3: {1, 2, 3}}
    windows = [(10.0, 20.0, [1], 7)]  # cycle 7 paused node 1 from t=10 to its recovery at t=20
    rounds = [(5.0, everyone),
              (12.0, {1: None, 2: {2, 3}, 3: {2, 3}}),  # node 1 fenced while paused: explained
              (15.0, {1: {1, 2, 3}, 2: {1, 2, 3}, 3: {1, 3}}),  # one node alone: a stale view
              (25.0, everyone)]
    assert nemesis.spurious_fencing(rounds, windows) == []
    # After its resume, node 1 fenced brokers 2 and 3.
    rounds.append((18.0, {1: {1}, 2: {1}, 3: {1, 2, 3}}))
    found = nemesis.spurious_fencing(rounds, windows)
    assert [(f["broker"], f["during_cycle"]) for f in found] == [(2, 7), (3, 7)]
    # Outside every fault, any fencing is spurious.
    assert [f["broker"] for f in nemesis.spurious_fencing([(30.0, {1: {2, 3}, 2: {2, 3}, 3: None})], windows)] == [1]


SS = """\
0 0 127.0.0.3:40001 127.0.0.2:9093 users:(("tributary",pid=12,fd=9))
0 0 127.0.0.2:9093 127.0.0.3:40001 users:(("tributary",pid=11,fd=10))
0 0 127.0.0.1:50000 127.0.0.4:9096 users:(("python3",pid=3,fd=5))
"""
HOSTS = {1: "127.0.0.2", 2: "127.0.0.3", 3: "127.0.0.4"}
PORTS = {1: {9092, 9093}, 2: {9094, 9095}, 3: {9096, 9097}}


def test_node_to_node_connections_are_checked_for_their_source():
    pids = {11: 1, 12: 2, 13: 3}
    assert wrong_sources(SS, pids, HOSTS, PORTS) == ([], 1)
    unbound = SS + '0 0 127.0.0.1:40002 127.0.0.2:9093 users:(("tributary",pid=13,fd=9))\n'
    bad, seen = wrong_sources(unbound, pids, HOSTS, PORTS)
    assert seen == 2 and len(bad) == 1 and "node 3 -> node 1" in bad[0]


def batch(base, last, epoch=1, producer=7, seq=0, crc=0xABCD, crc_ok=True):
    return {"base_offset": base, "last_offset": last, "leader_epoch": epoch, "producer_id": producer,
            "producer_epoch": 0, "base_sequence": seq, "records": last - base + 1, "crc": crc, "crc_ok": crc_ok}


def test_replicas_that_agree_below_the_high_watermark_pass():
    same = [batch(0, 4), batch(5, 9, seq=5)]
    dumps = {1: {"batches": same}, 2: {"batches": list(same)}, 3: {"batches": list(same)}}
    assert replicas.compare(dumps, 10) == []


def test_replicas_that_diverge_or_fall_short_are_reported_readably():
    leader = [batch(0, 4), batch(5, 9, seq=5)]
    # Node 2 kept an old epoch's batch at offset 5 (a divergent tail never truncated).
    diverged = [batch(0, 4), batch(5, 7, epoch=0, seq=5, crc=0x1111)]
    [problem] = [p for p in replicas.compare({1: {"batches": leader}, 2: {"batches": diverged}}, 10) if "differ" in p]
    assert "node 1 and node 2 differ at 1 batch offsets below the high watermark 10; first at 5" in problem
    assert "epoch 0" in problem and "crc 00001111" in problem
    short = replicas.compare({1: {"batches": leader}, 2: {"batches": leader[:1]}}, 10)
    assert any("node 2: ends at offset 5, below the high watermark 10" in p for p in short), short
    gap = replicas.compare({1: {"batches": [batch(0, 4), batch(6, 9)]}}, 10)
    assert any("batch at 6 where offset 5 was expected" in p for p in gap), gap
    damaged = replicas.compare({1: {"batches": [batch(0, 9, crc_ok=False)]}}, 10)
    assert any("CRC does not match" in p for p in damaged), damaged


def produced(pid: int, epoch: int, base: int, last: int, seq: int) -> dict:
    return {"base_offset": base, "last_offset": last, "leader_epoch": 3, "producer_id": pid,
            "producer_epoch": epoch, "base_sequence": seq, "records": last - base + 1, "crc": 0, "crc_ok": True}


def test_duplicates_a_producer_wrote_after_bumping_its_epoch_are_set_aside_and_no_others():
    """Through the shared checker: value 0-1 acknowledged at offset 3 and
    read at 1 and 3. Written by producer 7 in epoch 0 (offset 1, never
    answered) and again in epoch 1 (offset 3) it is the client's epoch bump;
    twice in one epoch, or by two producer ids, it stays a failure."""
    checker = shared_checker()
    values = {0: "0-0", 1: "0-1", 2: "0-2", 3: "0-1"}
    sends = [{"process": 0, "type": "ok", "f": "send", "value": [["send", 4, [o, v]]], "index": i, "time": i}
             for i, (o, v) in enumerate([(0, "0-0"), (2, "0-2"), (3, "0-1")])]
    assign = {"process": "drain", "type": "ok", "f": "assign", "value": [4], "index": 3, "time": 3}
    drain = {"process": "drain", "type": "ok", "f": "poll", "index": 4, "time": 4,
             "value": [["poll", {"4": [[o, v] for o, v in values.items()]}]]}
    verdict = checker.check(sends + [assign, drain], final_drain_done=True)
    assert verdict["bad-error-types"] == ["duplicate"], verdict

    bumped = [produced(7, 0, 0, 1, 0), produced(7, 0, 2, 2, 2), produced(7, 1, 3, 3, 0)]
    explained, other = epoch_bumps.split(verdict["errors"]["duplicate"], lambda p: bumped)
    assert other == [] and explained[0]["copies"] == [{"offset": 1, "producer": "7/0", "base_sequence": 0},
                                                      {"offset": 3, "producer": "7/1", "base_sequence": 0}]
    assert epoch_bumps.set_aside(verdict, other)["valid"]

    for batches in ([produced(7, 0, 0, 1, 0), produced(7, 0, 2, 3, 2)],          # one epoch: the broker's
                    [produced(7, 0, 0, 1, 0), produced(7, 0, 2, 2, 2), produced(8, 1, 3, 3, 0)],  # two producers
                    [produced(7, 1, 0, 1, 0), produced(7, 1, 2, 2, 2), produced(7, 0, 3, 3, 0)],  # epoch went down
                    [produced(7, 0, 0, 1, 0)]):                                    # a copy not in the dump
        explained, other = epoch_bumps.split(verdict["errors"]["duplicate"], lambda p, b=batches: b)
        assert explained == [] and len(other) == 1, batches
        assert not epoch_bumps.set_aside(verdict, other)["valid"]
    # More duplicates than the checker lists: nothing is set aside.
    truncated = {**verdict, "counts": {**verdict["counts"], "duplicate": 21}}
    assert not epoch_bumps.set_aside(truncated, [])["valid"]
    assert epoch_bumps.bump_lines("DRAIN x: All partitions drained, bumped epoch to PID{Id:0,Epoch:2}\nOTHER y") == [
        "DRAIN x: All partitions drained, bumped epoch to PID{Id:0,Epoch:2}"]


def test_dump_log_reads_a_real_partition_directory(tmp_path):
    """`tributary debug dump-log -o json` as replicas.py runs it, on a
    segment holding one v2 batch built here with a zero CRC: the header's
    fields come back, and the CRC is reported as not matching."""
    import struct

    part = tmp_path / "t-0"
    part.mkdir()
    body = struct.pack(">hiqqqhii", 0, 0, 1000, 1000, 7, 0, 0, 1) + b"\x10\x00\x00\x00\x00\x02v\x00"  # attributes..count, one record
    header = struct.pack(">qiib", 0, 4 + 1 + 4 + len(body), 3, 2) + struct.pack(">I", 0)
    (part / ("0" * 20 + ".log")).write_bytes(header + body)
    dump = replicas.dump_log(binary(), tmp_path, "t", 0, 10)
    [b] = dump["batches"]
    assert (b["base_offset"], b["last_offset"], b["leader_epoch"], b["producer_id"], b["crc_ok"]) == (0, 0, 3, 7, False)
    assert replicas.compare({1: dump}, 1) == [f"node 1: 1 batches whose CRC does not match their bytes, first {replicas.describe(b)}"]
