"""A seeded nemesis for a three-node cluster (kraft.Cluster with
own_addresses=True) running in a network namespace of its own (netns.py).

Fault kinds (KINDS), each held for a while and always ended by a heal:

  kill                kill -9 a random node, restart it after the hold
  kill-controller     the same, aimed at the active controller (quorum leader)
  pause               SIGSTOP a random node, SIGCONT after the hold
  pause-controller    the same, aimed at the active controller
  isolate-controller  cut the active controller off from both other nodes
                      (minority {controller} | majority {the other two})
  split               a random minority/majority split (one node | two)
  bridge              cut one link only, between the active controller and
                      one other node, while the third still reaches both
  one-way             drop everything one node sends to the others; what
                      they send it still arrives
  loss                drop a random 20-60 % of the packets, both ways, on the
                      link between the active controller and one other node

and, only for the checks' self-test (faults.py --sabotage), truncate-tail:
kill -9 a node, cut 3/4 of the bytes of its segments of the topic, restart.

(A link between two followers carries nothing today: the quorum leader
talks to each follower, brokers heartbeat to the active controller. So the
link faults are anchored on the controller.)

Network faults are nftables rules on the namespace's output hook, matched by
address: nodes talk to each other from their own 127.0.0.(i+1) (the quorum
transport binds its sockets there), clients leave from 127.0.0.1, so the
clients still reach every node and only node-to-node traffic is cut, as in
Jepsen's partitions. Each rule counts what it dropped; the count is logged
at the heal, so a log shows that a partition really cut something.

After every heal the nemesis waits (with a deadline, never a fixed time)
until the cluster has recovered: a restarted node accepts connections and
has been let back in (its log says "this broker is unfenced" since the
restart: a restarted broker registers anew, fenced, and is unfenced only
once the controller has moved the leaderships its previous incarnation
held), and every node's Metadata lists all three brokers and a leader for
every partition of the topic. A deadline missed is a liveness failure, reported
as such.

The schedule (kind, nodes, hold, gap, loss %) is a function of the seed,
the cycle count and the kinds alone: rounds over the kinds in a seeded random order, so every kind comes
up once per round. Only "the active controller" is resolved when its fault
starts (and with it which node is "the other end" of a link, from a seeded
draw). Every action is logged to nemesis.jsonl with its monotonic and wall
clock times; `schedule(seed, cycles, kinds)` recomputes a run's plan.
"""

from __future__ import annotations

import datetime
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from kraft import ROOT, Cluster, Node

sys.path.append(str(ROOT / "compat" / "python"))
import kwire  # noqa: E402 - raw Metadata v1, no client back-off in the way

KINDS = ("kill", "kill-controller", "pause", "pause-controller", "isolate-controller", "split", "bridge", "one-way", "loss")
# A fault only the checker's self-test uses: it truncates acknowledged data.
SABOTAGE = "truncate-tail"
TABLE = "tributary_nemesis"
# A fault's victim may still be fenced this long after the cluster looked
# recovered: the controller's session timer can run out right at the heal
# (seen: a 4.6 s pause, recovered 0.02 s after SIGCONT, fenced 0.5 s later).
FENCE_GRACE_S = 3.0
NODE_IDS = (1, 2, 3)


@dataclass
class Fault:
    """One planned cycle. `nodes` are the victims (for "…-controller"
    kinds, filled in when the fault starts); `links` the (src, dst) pairs
    whose packets are dropped; `other` picks the far end of a controller's
    link (the first or second of the other two nodes)."""

    cycle: int
    kind: str
    hold_s: float
    gap_s: float
    nodes: list[int] = field(default_factory=list)
    links: list[tuple[int, int]] = field(default_factory=list)
    loss_pct: int = 0
    other: int = 0


def _others(node: int) -> list[int]:
    return [n for n in NODE_IDS if n != node]


def _cut(group_a: list[int], group_b: list[int]) -> list[tuple[int, int]]:
    """Both directions of every link between the two groups."""
    return [(a, b) for a in group_a for b in group_b] + [(b, a) for a in group_a for b in group_b]


CONTROLLER_KINDS = ("kill-controller", "pause-controller", "isolate-controller", "bridge", "loss")


def plan(fault: Fault, victim: int) -> Fault:
    """The fault's nodes and links once its victim is known."""
    fault.nodes = [victim]
    if fault.kind in ("isolate-controller", "split"):
        fault.links = _cut([victim], _others(victim))
    elif fault.kind == "one-way":
        fault.links = [(victim, o) for o in _others(victim)]
    elif fault.kind in ("bridge", "loss"):
        other = _others(victim)[fault.other]
        fault.nodes = [victim, other]
        fault.links = _cut([victim], [other])
    return fault


def schedule(seed: int, cycles: int, kinds=KINDS, hold=(1.0, 6.0), gap=(0.5, 2.0)) -> list[Fault]:
    """The run's plan, a function of its arguments alone."""
    rng = random.Random(seed)
    out: list[Fault] = []
    while len(out) < cycles:
        round_ = list(kinds)
        rng.shuffle(round_)
        for kind in round_:
            if len(out) == cycles:
                break
            f = Fault(len(out) + 1, kind, round(rng.uniform(*hold), 2), round(rng.uniform(*gap), 2))
            # Drawn for every kind, so one kind's plan never shifts another's.
            victim, f.other, loss = rng.choice(NODE_IDS), rng.randrange(2), rng.randint(20, 60)
            if kind == "loss":
                f.loss_pct = loss
            if kind not in CONTROLLER_KINDS:
                plan(f, victim)
            out.append(f)
    return out


def spurious_fencing(rounds: list[tuple[float, dict[int, set[int] | None]]],
                     windows: list[tuple[float, float, list[int], int]]) -> list[dict]:
    """Brokers fenced that no fault explains. `rounds`: (time, {node: the
    brokers its Metadata listed, or None if it did not answer}); `windows`:
    (from, to, the fault's nodes, cycle) of every fault, from its injection
    to the recovery after its heal. A broker missing from the answers of
    two nodes or more in one round was fenced (one node alone may be a
    restarted node replaying its log); outside every window naming it, that
    is spurious."""
    out, seen = [], set()
    for t, answers in rounds:
        lists = [b for b in answers.values() if b is not None]
        for broker in NODE_IDS:
            if sum(broker not in b for b in lists) < 2:
                continue
            if any(lo <= t <= hi and broker in nodes for lo, hi, nodes, _ in windows):
                continue
            during = [c for lo, hi, _, c in windows if lo <= t <= hi]
            key = (broker, during[0] if during else None)
            if key not in seen:
                seen.add(key)
                out.append({"broker": broker, "t": round(t, 2), "during_cycle": key[1],
                            "answers": {n: sorted(b) if b is not None else None for n, b in answers.items()}})
    return out


class MetadataWatch:
    """Asks every node for its Metadata brokers a few times a second, so
    fencings show even when they last less than a heartbeat."""

    def __init__(self, nemesis: "Nemesis", every: float = 0.25):
        self.nemesis, self.every = nemesis, every
        self.rounds: list[tuple[float, dict[int, set[int] | None]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="metadata-watch", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)

    def _loop(self) -> None:
        while not self._stop.is_set():
            t = self.nemesis.now()
            answers: dict[int, set[int] | None] = {}
            for n in self.nemesis.cluster.nodes.values():
                try:
                    answers[n.node_id] = {b[0] for b in self.nemesis.metadata(n, timeout=0.5).brokers}
                except (OSError, kwire.DecodeError, kwire.ConnectionClosed):
                    answers[n.node_id] = None
            self.rounds.append((t, answers))
            self._stop.wait(self.every)


class LivenessError(AssertionError):
    """The cluster did not recover from a healed fault within the deadline."""


class Net:
    """nftables rules that drop node-to-node packets by address."""

    def __init__(self, cluster: Cluster):
        self.host = {i: n.host for i, n in cluster.nodes.items()}

    def _nft(self, script: str) -> str:
        r = subprocess.run(["nft", "-f", "-"], input=script, capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            raise RuntimeError(f"nft failed ({r.returncode}): {r.stderr.strip()}\n{script}")
        return r.stdout

    def apply(self, links: list[tuple[int, int]], loss_pct: int = 0) -> None:
        """Replaces any rules by drops on `links` (all packets, or a random
        `loss_pct` % of them)."""
        sample = f"numgen random mod 100 < {loss_pct} " if loss_pct else ""
        rules = "".join(f"    ip saddr {self.host[a]} ip daddr {self.host[b]} {sample}counter drop\n" for a, b in links)
        self._nft(
            f"add table inet {TABLE}\ndelete table inet {TABLE}\n"
            f"table inet {TABLE} {{\n  chain out {{\n    type filter hook output priority 0; policy accept;\n{rules}  }}\n}}\n"
        )

    def dropped(self) -> int:
        """Packets the current rules dropped."""
        r = subprocess.run(["nft", "-j", "list", "table", "inet", TABLE], capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            return 0
        total = 0
        for item in json.loads(r.stdout).get("nftables", []):
            for expr in item.get("rule", {}).get("expr", []):
                if "counter" in expr:
                    total += expr["counter"]["packets"]
        return total

    def heal(self) -> None:
        self._nft(f"add table inet {TABLE}\ndelete table inet {TABLE}\n")


class Nemesis:
    def __init__(
        self,
        cluster: Cluster,
        seed: int,
        log_path: Path,
        topic: str,
        settle_deadline: float = 60.0,
        on_event=None,
    ):
        self.cluster, self.seed, self.topic = cluster, seed, topic
        self.settle_deadline = settle_deadline
        # Restarted nodes not yet let back in: node id -> size of its log at the restart.
        self.readmissions: dict[int, int] = {}
        self.net = Net(cluster)
        self.on_event = on_event or (lambda record: None)
        self.log_path = log_path
        self._log = open(log_path, "a")
        self._t0 = time.monotonic()
        self.done: list[dict] = []  # one record per completed cycle
        self.paused: set[int] = set()

    # ------------------------------------------------------------- logging

    def now(self) -> float:
        """Seconds since the nemesis began: the clock of its log and windows."""
        return time.monotonic() - self._t0

    def windows(self) -> list[tuple[float, float, list[int], int]]:
        """(injected, recovered + FENCE_GRACE_S, nodes, cycle) of every
        completed fault: a fencing its victim earned during the fault may
        be committed just after every node listed all brokers again."""
        return [(r["injected_t"], r["settled_t"] + FENCE_GRACE_S, r["nodes"], r["cycle"]) for r in self.done]

    def log(self, event: str, **fields) -> dict:
        record = {
            "t": round(self.now(), 3),
            "wall": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds"),
            "event": event,
            **fields,
        }
        self._log.write(json.dumps(record) + "\n")
        self._log.flush()
        self.on_event(record)
        return record

    def close(self) -> None:
        self._log.close()

    # ------------------------------------------------------------- cluster views

    def metadata(self, node: Node, timeout: float = 3.0):
        return kwire.metadata_v1(node.host, node.client_port, [self.topic], timeout=timeout)

    def controller(self, rng_fallback: random.Random) -> tuple[int, str]:
        """The active controller as the live nodes report it (most votes),
        else a node the fallback picks."""
        votes: dict[int, int] = {}
        for n in self.cluster.nodes.values():
            if not n.running() or n.node_id in self.paused:
                continue
            try:
                c = self.metadata(n).controller_id
            except (OSError, kwire.DecodeError, kwire.ConnectionClosed):
                continue
            if c in NODE_IDS:
                votes[c] = votes.get(c, 0) + 1
        if votes:
            return max(votes, key=votes.get), "reported"
        return rng_fallback.choice(NODE_IDS), "no node named a controller; picked at random"

    def _accepts(self, node: Node) -> bool:
        try:
            with socket.create_connection((node.host, node.client_port), timeout=1.0):
                return True
        except OSError:
            return False

    def _converged(self) -> str | None:
        """None once every node reports all three brokers and a leader for
        every partition of the topic; else what is still missing."""
        for n in self.cluster.nodes.values():
            try:
                md = self.metadata(n)
            except (OSError, kwire.DecodeError, kwire.ConnectionClosed) as e:
                return f"node {n.node_id}: {e!r}"
            brokers = {b[0] for b in md.brokers}
            if brokers != set(NODE_IDS):
                return f"node {n.node_id} lists brokers {sorted(brokers)}"
            for t in md.topics:
                leaderless = [p["partition"] for p in t["partitions"] if p["leader"] not in NODE_IDS or p["error_code"]]
                if t["error_code"] or leaderless:
                    return f"node {n.node_id}: topic {t['name']} error {t['error_code']}, leaderless partitions {leaderless}"
        return None

    def settle(self, what: str) -> float:
        """Waits until the cluster has recovered; the seconds it took."""
        start = time.monotonic()
        end = start + self.settle_deadline
        for n in self.cluster.nodes.values():
            while not self._accepts(n):
                if not n.running():
                    raise LivenessError(f"after {what}: node {n.node_id} exited with {n.process.returncode}")
                if time.monotonic() > end:
                    raise LivenessError(f"after {what}: node {n.node_id} does not accept connections after {self.settle_deadline:.0f} s")
                time.sleep(0.1)
        for node_id, offset in sorted(self.readmissions.items()):
            n = self.cluster.nodes[node_id]
            while not self._unfenced_since(n, offset):
                if not n.running():
                    raise LivenessError(f"after {what}: node {node_id} exited with {n.process.returncode}")
                if time.monotonic() > end:
                    raise LivenessError(f"after {what}: restarted node {node_id} not unfenced after {self.settle_deadline:.0f} s")
                time.sleep(0.1)
        self.readmissions.clear()
        missing = self._converged()
        while missing is not None:
            if time.monotonic() > end:
                raise LivenessError(f"after {what}: not recovered after {self.settle_deadline:.0f} s: {missing}")
            time.sleep(0.2)
            missing = self._converged()
        return time.monotonic() - start

    @staticmethod
    def _unfenced_since(node: Node, offset: int) -> bool:
        """Whether the node's log, from byte `offset` on, says it is unfenced."""
        with open(node.log, "rb") as f:
            f.seek(offset)
            return b"this broker is unfenced" in f.read()

    # ------------------------------------------------------------- faults

    def _mark(self, node: Node, line: str) -> None:
        with open(node.log, "a") as f:
            f.write(f"===== nemesis: {line}\n")

    def _kill(self, node: Node, cycle: int) -> int:
        pid = node.process.pid
        self._mark(node, f"cycle {cycle}: kill -9 pid {pid}")
        node.kill(signal.SIGKILL)
        return pid

    def _restart(self, node: Node, cycle: int) -> int:
        self._mark(node, f"cycle {cycle}: restart")
        self.readmissions[node.node_id] = node.log.stat().st_size
        node.start()
        return node.process.pid

    def _truncate_tail(self, node: Node) -> dict:
        """Cuts the newest three quarters of the bytes of every segment of
        the topic on the node (which is down): acknowledged records gone."""
        cut = {}
        for seg in sorted(node.data_dir.glob(f"{self.topic}-*/*.log")):
            size = seg.stat().st_size
            os.truncate(seg, size // 4)
            cut[str(seg.relative_to(node.data_dir))] = [size, size // 4]
        return {"truncated": cut}

    def run_cycle(self, fault: Fault, rng: random.Random) -> dict:
        if fault.kind in CONTROLLER_KINDS:
            victim, how = self.controller(rng)
            plan(fault, victim)
            self.log("target", cycle=fault.cycle, kind=fault.kind, controller=victim, how=how)
        nodes = [self.cluster.nodes[i] for i in fault.nodes]
        info: dict = {"injected_t": self.now()}
        self.log("inject", **asdict(fault))
        if fault.kind in ("kill", "kill-controller", SABOTAGE):
            info["killed_pid"] = self._kill(nodes[0], fault.cycle)
            if fault.kind == SABOTAGE:
                info.update(self._truncate_tail(nodes[0]))
            time.sleep(fault.hold_s)
            info["new_pid"] = self._restart(nodes[0], fault.cycle)
        elif fault.kind in ("pause", "pause-controller"):
            self._mark(nodes[0], f"cycle {fault.cycle}: SIGSTOP")
            nodes[0].process.send_signal(signal.SIGSTOP)
            self.paused.add(nodes[0].node_id)
            time.sleep(fault.hold_s)
            nodes[0].process.send_signal(signal.SIGCONT)
            self.paused.discard(nodes[0].node_id)
            self._mark(nodes[0], f"cycle {fault.cycle}: SIGCONT")
        else:
            self.net.apply(fault.links, fault.loss_pct)
            time.sleep(fault.hold_s)
            info["dropped_packets"] = self.net.dropped()
            self.net.heal()
        self.log("heal", cycle=fault.cycle, kind=fault.kind, **info)
        info["settle_s"] = round(self.settle(f"cycle {fault.cycle} ({fault.kind} {fault.nodes})"), 2)
        info["settled_t"] = self.now()
        self.log("settled", cycle=fault.cycle, kind=fault.kind, settle_s=info["settle_s"])
        record = {**asdict(fault), **info}
        self.done.append(record)
        time.sleep(fault.gap_s)
        return record

    def heal_all(self) -> None:
        """Ends every fault, whatever state a failure left: rules removed,
        paused nodes continued, dead nodes restarted."""
        try:
            self.net.heal()
        except RuntimeError as e:
            self.log("heal-all-error", error=str(e))
        for n in self.cluster.nodes.values():
            if n.running():
                n.process.send_signal(signal.SIGCONT)
        self.paused.clear()
        restarted = []
        for n in self.cluster.nodes.values():
            if n.process is not None and not n.running():
                self._mark(n, "final heal: restart")
                self.readmissions[n.node_id] = n.log.stat().st_size
                n.start()
                restarted.append(n.node_id)
        self.log("heal-all", restarted=restarted)

    def run(self, faults: list[Fault], stop=None) -> None:
        """Runs the faults in order (until `stop` is set), then heals all."""
        rng = random.Random(f"{self.seed}-runtime")
        self.log("start", seed=self.seed, cycles=len(faults), plan=[asdict(f) for f in faults])
        try:
            for fault in faults:
                if stop is not None and stop.is_set():
                    break
                self.run_cycle(fault, rng)
        finally:
            self.heal_all()
