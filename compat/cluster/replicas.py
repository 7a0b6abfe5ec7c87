"""Replica comparison for the fault tier: after the final heal, with every
partition's ISR full and the nodes stopped, every replica's log below the
final high watermark must be the same batch for batch.

Each node's files are read with `tributary debug dump-log -o json`
(read-only, no recovery), and the batches whose last offset is below the
high watermark are compared on what identifies them: offsets, partition
leader epoch, producer id, epoch and sequence, record count and CRC-32C
(which covers every record's bytes). A replica must also hold that range
without a gap, and every batch's CRC must match its bytes.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

# What makes two batches the same batch (position and segment may differ:
# replicas roll segments at different times).
IDENTITY = ("base_offset", "last_offset", "leader_epoch", "producer_id", "producer_epoch", "base_sequence", "records", "crc")


def dump_log(binary: Path | str, data_dir: Path, topic: str, partition: int, up_to: int) -> dict:
    """`tributary debug dump-log` of one replica, parsed."""
    proc = subprocess.run(
        [str(binary), "debug", "dump-log", "--data-dir", str(data_dir), "--topic", topic, "--partition", str(partition),
         "--up-to", str(up_to), "-o", "json"],
        capture_output=True, text=True, timeout=120,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"dump-log {data_dir} {topic}-{partition} exited {proc.returncode}: {proc.stderr.strip()}")
    return json.loads(proc.stdout)


def identity(batch: dict) -> tuple:
    return tuple(batch[k] for k in IDENTITY)


def describe(batch: dict | None) -> str:
    if batch is None:
        return "(none)"
    return (f"[{batch['base_offset']}..{batch['last_offset']}] epoch {batch['leader_epoch']} "
            f"producer {batch['producer_id']}/{batch['producer_epoch']} seq {batch['base_sequence']} "
            f"records {batch['records']} crc {batch['crc']:08x}")


def gaps(batches: list[dict], log_start: int, high: int) -> list[str]:
    """Where `batches` (sorted) fail to cover [log_start, high) one after
    another."""
    problems = []
    expect = log_start
    for b in batches:
        if b["base_offset"] != expect:
            problems.append(f"batch at {b['base_offset']} where offset {expect} was expected")
        expect = b["last_offset"] + 1
    if high > log_start and expect != high:
        problems.append(f"ends at offset {expect}, below the high watermark {high}")
    return problems


def compare(dumps: dict[int, dict], high: int) -> list[str]:
    """Differences between the replicas' batches below `high` (node id ->
    dump), as readable lines; empty when they agree."""
    problems: list[str] = []
    nodes = sorted(dumps)
    if not nodes:
        return ["no replica to compare"]
    for n in nodes:
        bad = [b for b in dumps[n]["batches"] if not b["crc_ok"]]
        if bad:
            problems.append(f"node {n}: {len(bad)} batches whose CRC does not match their bytes, first {describe(bad[0])}")
    # Every replica starts where the first batch of the reference starts
    # (retention may have deleted earlier segments, the same on each when
    # nothing is deleted; the tier's topic keeps everything).
    ref = nodes[0]
    starts = {n: (dumps[n]["batches"][0]["base_offset"] if dumps[n]["batches"] else high) for n in nodes}
    log_start = min(starts.values())
    for n in nodes:
        for g in gaps(dumps[n]["batches"], log_start, high)[:3]:
            problems.append(f"node {n}: {g}")
    by_offset = {n: {b["base_offset"]: b for b in dumps[n]["batches"]} for n in nodes}
    for n in nodes[1:]:
        offsets = sorted(set(by_offset[ref]) | set(by_offset[n]))
        diffs = [o for o in offsets if (lambda a, b: a is None or b is None or identity(a) != identity(b))(
            by_offset[ref].get(o), by_offset[n].get(o))]
        if diffs:
            first = diffs[0]
            lines = [f"node {ref} and node {n} differ at {len(diffs)} batch offsets below the high watermark {high}; first at {first}:"]
            for o in diffs[:5]:
                lines.append(f"  offset {o}: node {ref} {describe(by_offset[ref].get(o))}")
                lines.append(f"  {' ' * len(f'offset {o}')}  node {n} {describe(by_offset[n].get(o))}")
            problems.append("\n".join(lines))
    return problems


def compare_partition(binary, data_dirs: dict[int, Path], topic: str, partition: int, high: int) -> tuple[list[str], dict]:
    """Dumps the partition on every node in `data_dirs` and compares the
    replicas below `high`; (problems, per-node batch counts)."""
    dumps, counts, problems = {}, {}, []
    for n, d in sorted(data_dirs.items()):
        try:
            dumps[n] = dump_log(binary, d, topic, partition, high)
        except Exception as e:  # noqa: BLE001 - reported as the replica's problem
            problems.append(f"node {n}: {e}")
            continue
        counts[n] = len(dumps[n]["batches"])
        if dumps[n]["torn"]:
            counts[f"{n}-torn"] = dumps[n]["torn"]
    problems += compare(dumps, high)
    return problems, counts
