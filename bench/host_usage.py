"""What the machine did while one benchmark phase ran: CPU steal, busy time, load, client CPU.

A phase's number means little without knowing who had the cores. `mark()` takes a snapshot and
`between(start, end)` turns two snapshots into the figures `run.py` stores per phase (and per
rdkafka_performance round) and renders in its per-phase table:

- **steal**: the `steal` column of the aggregate `cpu` line of `/proc/stat` (time the hypervisor ran
  something else while this VM wanted to run), as a percentage of all CPU time of the machine over
  the interval (every core, every state). `busy` is the share this machine's own work used the same
  way (user, nice, system, irq, softirq: everything but idle, iowait and steal), `iowait` its own share.
- **client CPU**: user + system time of the commands the harness ran (load generators, phase scripts
  and whatever they started and waited for), from `getrusage(RUSAGE_CHILDREN)` read just before each
  command starts and just after it is reaped, summed by `add_client_cpu`. The brokers are children of
  the harness too, but they are reaped outside any command, so their CPU never lands here (it is read
  from `/proc/PID/stat` instead). A phase script that starts brokers of its own (start-up, metadata
  quorum, replication) has them in its client CPU.
- **harness CPU**: the harness process itself (its RSS sampler thread, its admin client calls).
- **load average**: `os.getloadavg()` at both ends (1, 5 and 15 minutes).

Linux only; on a system without `/proc/stat` the CPU shares are None.
"""
from __future__ import annotations

import os
import resource
import time

# /proc/stat `cpu` line fields, in order (man 5 proc). guest and guest_nice are already counted in
# user and nice, so they are left out of the total.
CPU_FIELDS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")

_client_cpu_s = 0.0


def add_client_cpu(seconds):
    """Count `seconds` of a finished command's CPU (its own and its waited-for descendants')."""
    global _client_cpu_s
    _client_cpu_s += max(0.0, seconds)


def children_cpu_s():
    """user + system seconds of every reaped child of this process so far."""
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def parse_cpu_line(text):
    """{field: ticks} from the aggregate `cpu ` line of /proc/stat text; None if there is none."""
    for line in text.splitlines():
        if line.startswith("cpu "):
            values = [int(v) for v in line.split()[1:]]
            values += [0] * (len(CPU_FIELDS) - len(values))  # old kernels have fewer columns
            return dict(zip(CPU_FIELDS, values))
    return None


def cpu_ticks():
    try:
        with open("/proc/stat") as f:
            return parse_cpu_line(f.read())
    except OSError:
        return None


def mark():
    """A snapshot of the machine and of this process's accounting, to pass to `between`."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    try:
        load = tuple(round(x, 2) for x in os.getloadavg())
    except OSError:
        load = None
    return {"t": time.monotonic(), "cpu": cpu_ticks(), "client_cpu_s": _client_cpu_s,
            "harness_cpu_s": ru.ru_utime + ru.ru_stime, "loadavg": load}


def cpu_shares(start, end):
    """(steal %, busy %, iowait %) of all CPU time between two /proc/stat readings; Nones if unknown."""
    if not start or not end:
        return None, None, None
    delta = {k: end[k] - start[k] for k in CPU_FIELDS}
    total = sum(delta.values())
    if total <= 0:
        return None, None, None
    busy = total - delta["idle"] - delta["iowait"] - delta["steal"]
    return (round(100.0 * delta["steal"] / total, 2), round(100.0 * busy / total, 1),
            round(100.0 * delta["iowait"] / total, 1))


def between(start, end):
    """The figures for the interval from `start` to `end` (two `mark()`s)."""
    steal, busy, iowait = cpu_shares(start["cpu"], end["cpu"])
    return {
        "wall_s": round(end["t"] - start["t"], 2),
        "steal_pct": steal,
        "busy_pct": busy,
        "iowait_pct": iowait,
        "client_cpu_s": round(end["client_cpu_s"] - start["client_cpu_s"], 2),
        "harness_cpu_s": round(end["harness_cpu_s"] - start["harness_cpu_s"], 2),
        "loadavg_start": start["loadavg"],
        "loadavg_end": end["loadavg"],
    }
