"""Which of the history checker's duplicates an idempotent producer wrote
itself by bumping its producer epoch, told apart from those a broker let
through.

librdkafka bumps its producer epoch (KIP-360) after a permanent Produce
error, an OUT_OF_ORDER_SEQUENCE_NUMBER answer to a request behind one that
failed, or a message timeout, and then sends every record still waiting for
a retry again from sequence 0 of the new epoch, including records whose
first send was appended and never answered (rdkafka_request.c
rd_kafka_handle_idempotent_Produce_error and rd_kafka_handle_Produce_error,
rdkafka_partition.c rd_kafka_toppar_pid_change; librdkafka issue 4953). A
broker must take sequence 0 of a new epoch (Kafka's
ProducerAppendInfo.checkSequence) and cannot know the records are the ones
it holds under the old epoch, so Kafka holds the same duplicate.
compat/cluster/test_idempotent_failover.py shows both halves.

A duplicate is put down to an epoch bump only when the replica's own batches
say so: every copy of the value lies in a batch of one producer id, and the
copies' producer epochs strictly increase with their offsets (no two copies
in one epoch: within an epoch the broker's sequence check must refuse a
second copy, and a duplicate there is the broker's). Anything else, or a
copy the dump does not cover, is left a duplicate.
"""

from __future__ import annotations

import bisect
from typing import Callable

# librdkafka's `eos` debug lines that name an epoch bump and why.
BUMP_MARKERS = ("epoch bump for", "bumped epoch to")


def batch_at(batches: list[dict], offset: int) -> dict | None:
    """The batch holding `offset`, from batches in offset order."""
    starts = [b["base_offset"] for b in batches]
    i = bisect.bisect_right(starts, offset) - 1
    if i >= 0 and batches[i]["base_offset"] <= offset <= batches[i]["last_offset"]:
        return batches[i]
    return None


def explained(duplicate: dict, batches: list[dict]) -> dict | None:
    """The copies' (offset, producer id, producer epoch, base sequence) when
    an epoch bump accounts for this duplicate, else None."""
    copies = []
    for offset in sorted(duplicate["offsets"]):
        b = batch_at(batches, offset)
        if b is None or b["producer_id"] < 0:
            return None
        copies.append((offset, b["producer_id"], b["producer_epoch"], b["base_sequence"]))
    if len({pid for _, pid, _, _ in copies}) != 1:
        return None
    epochs = [epoch for _, _, epoch, _ in copies]
    if any(later <= earlier for earlier, later in zip(epochs, epochs[1:])):
        return None
    return {"partition": duplicate["key"], "value": duplicate["value"],
            "copies": [{"offset": o, "producer": f"{pid}/{e}", "base_sequence": s} for o, pid, e, s in copies]}


def split(duplicates: list[dict], batches_of: Callable[[int], list[dict] | None]) -> tuple[list[dict], list[dict]]:
    """(explained by an epoch bump, not explained). `batches_of(partition)`
    gives a replica's batches in offset order, or None when it has none."""
    bumped, other = [], []
    cache: dict[int, list[dict] | None] = {}
    for d in duplicates:
        p = int(d["key"])
        if p not in cache:
            cache[p] = batches_of(p)
        why = explained(d, cache[p]) if cache[p] is not None else None
        (bumped if why is not None else other).append(why if why is not None else d)
    return bumped, other


def set_aside(verdict: dict, unexplained: list[dict]) -> dict:
    """The history checker's verdict without its duplicates when every one
    of them is explained (none left in `unexplained`, and the checker listed
    them all: it lists 20 of a kind at most); else the verdict as it was."""
    listed = verdict["errors"].get("duplicate", [])
    if not listed or unexplained or verdict["counts"].get("duplicate", 0) > len(listed):
        return verdict
    bad = [t for t in verdict["bad-error-types"] if t != "duplicate"]
    return {**verdict, "valid": not bad, "bad-error-types": bad}


def bump_lines(log_text: str) -> list[str]:
    """librdkafka's lines about epoch bumps in a producer's log."""
    return [line for line in log_text.splitlines() if any(m in line for m in BUMP_MARKERS)]
