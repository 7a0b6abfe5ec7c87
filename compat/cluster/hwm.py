"""Our own checks on the high watermarks clients saw (workload.Watermarks),
beside the shared history checker's:

- **hwm-backwards**: one observer (one client, asking one request at a time)
  saw a partition's high watermark go down; and across observers, an
  answer to a request *sent after* another answer arrived is lower than
  that answer (real-time order: only observations that know when their
  request started, ListOffsets, take part).
- **hwm-below-ack**: a ListOffsets sent after an acks=all send was
  acknowledged at offset o answered a high watermark <= o: the broker
  acknowledged a record clients could not yet, or no longer, read.

Each violation is a dict naming the partition and the two observations (or
the acknowledgement) that disagree. Pure functions over lists of dicts, so
they are tested on their own (test_faults.py).
"""

from __future__ import annotations

from collections import defaultdict


def backwards(observations: list[dict]) -> list[dict]:
    """Per observer, and in real time across observers, a high watermark
    lower than one seen before it."""
    out = []
    by_observer: dict[tuple[str, int], list[dict]] = defaultdict(list)
    for o in observations:
        by_observer[(o["observer"], o["partition"])].append(o)
    for (observer, partition), seen in by_observer.items():
        top = None
        for o in sorted(seen, key=lambda o: o["end"]):
            if top is not None and o["high"] < top["high"]:
                out.append({"kind": "hwm-backwards", "partition": partition, "observer": observer, "earlier": top, "later": o})
            if top is None or o["high"] >= top["high"]:
                top = o
    # Real time: an observation that started after another ended must not be lower.
    timed: dict[int, list[dict]] = defaultdict(list)
    for o in observations:
        if o.get("start") is not None:
            timed[o["partition"]].append(o)
    for partition, seen in timed.items():
        ended = sorted(seen, key=lambda o: o["end"])
        i, top = 0, None
        for o in sorted(seen, key=lambda o: o["start"]):
            while i < len(ended) and ended[i]["end"] < o["start"]:
                if top is None or ended[i]["high"] > top["high"]:
                    top = ended[i]
                i += 1
            if top is not None and o["high"] < top["high"] and o["observer"] != top["observer"]:
                out.append({"kind": "hwm-backwards", "partition": partition, "observer": "real-time", "earlier": top, "later": o})
    return out


def below_acks(observations: list[dict], acks: list[tuple[int, int, int]]) -> list[dict]:
    """ListOffsets answers, asked after an acknowledgement of (partition,
    offset, ack time), that did not cover the acknowledged offset."""
    out = []
    timed: dict[int, list[dict]] = defaultdict(list)
    for o in observations:
        if o.get("start") is not None:
            timed[o["partition"]].append(o)
    for partition in timed:
        timed[partition].sort(key=lambda o: o["start"])
    # The highest acknowledged offset so far, swept in time order.
    acks_by_partition: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for partition, offset, at in acks:
        acks_by_partition[partition].append((at, offset))
    for partition, seen in timed.items():
        acked = sorted(acks_by_partition.get(partition, []))
        i, top = 0, None
        for o in seen:
            while i < len(acked) and acked[i][0] < o["start"]:
                if top is None or acked[i][1] > top[1]:
                    top = acked[i]
                i += 1
            if top is not None and o["high"] <= top[1]:
                out.append({"kind": "hwm-below-ack", "partition": partition, "acked_offset": top[1], "acked_at": top[0], "observation": o})
    return out


def acks_from_history(history: list[dict]) -> list[tuple[int, int, int]]:
    """(partition, offset, ack time) of every acknowledged send in a history."""
    out = []
    for op in history:
        if op.get("f") == "send" and op.get("type") == "ok":
            for _, k, (offset, _value) in op["value"]:
                if offset is not None:
                    out.append((int(k), offset, op["time"]))
    return out


def check(observations: list[dict], history: list[dict]) -> dict:
    """Both checks; {"valid", "counts", "errors" (the first 20 of each kind)}."""
    found = {"hwm-backwards": backwards(observations), "hwm-below-ack": below_acks(observations, acks_from_history(history))}
    errors = {k: v for k, v in found.items() if v}
    return {
        "valid": not errors,
        "observations": len(observations),
        "counts": {k: len(v) for k, v in errors.items()},
        "errors": {k: v[:20] for k, v in errors.items()},
    }
