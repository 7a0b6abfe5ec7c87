"""Deterministic record generator shared by the client test suites.

Every record is a pure function of (seed, index), so a consumer can verify
what it reads back without the producer keeping the payloads in memory.
The mix covers: null keys, empty keys, null values, empty values, values of
many lengths (compressible text and incompressible bytes), records without
headers, with several headers, with a repeated header key, with a null
header value (where the client allows it) and with non-ASCII header keys.
"""

from __future__ import annotations

import hashlib
import random
import time
import uuid
from dataclasses import dataclass


@dataclass(frozen=True)
class Rec:
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes | None], ...]
    timestamp_ms: int


def unique_topic(prefix: str) -> str:
    return f"compat-{prefix}-{uuid.uuid4().hex[:12]}"


def base_timestamp_ms() -> int:
    """A CreateTime base safely in the past (brokers may reject far-future
    timestamps, message.timestamp.after.max.ms) and well inside retention."""
    return (int(time.time() * 1000) - 3_600_000) // 1000 * 1000


class RecordGen:
    def __init__(self, seed: str, base_ts: int, null_header_values: bool = True,
                 max_value_len: int = 510, allow_null_key_and_value: bool = True):
        self.seed = seed
        self.allow_null_key_and_value = allow_null_key_and_value
        self.base_ts = base_ts
        self.null_header_values = null_header_values
        self.max_value_len = max_value_len

    def __call__(self, i: int) -> Rec:
        d = hashlib.blake2b(f"{self.seed}:{i}".encode(), digest_size=32).digest()

        if i % 13 == 0:
            key = None
        elif i % 97 == 5:
            key = b""
        else:
            key = f"key-{i}".encode()

        if i % 11 == 0:
            value = None
        elif i % 89 == 3:
            value = b""
        else:
            length = (d[0] + d[1]) % (self.max_value_len + 1)
            if i % 3 == 0:
                # incompressible bytes
                value = hashlib.shake_256(d).digest(length)
            else:
                # compressible text
                unit = f"{self.seed}|{i}|{d[:6].hex()}|".encode()
                value = (unit * (length // len(unit) + 1))[:length]

        if key is None and value is None and not self.allow_null_key_and_value:
            key = b"both-null"

        if i % 7 == 0:
            headers = [
                ("h-index", str(i).encode()),
                ("h-dup", b"first"),
                ("h-dup", b"second"),
                ("h-empty", b""),
            ]
            if self.null_header_values:
                headers.append(("h-null", None))
        elif i % 7 == 1:
            headers = [("ключ-ü", "значение-✓".encode())]
        else:
            headers = []

        return Rec(key, value, tuple(headers), self.base_ts + i)


def big_value(seed: str, i: int, size: int) -> bytes:
    """Incompressible deterministic bytes of the given size."""
    return random.Random(f"{seed}:{i}").randbytes(size)


def normalize_headers(h) -> tuple:
    """Clients return None or [] for 'no headers'; compare as tuples."""
    if not h:
        return ()
    return tuple((k, v) for k, v in h)


def first_offset_at_or_after(timestamps: list[int], ts: int) -> int:
    """Kafka ListOffsets semantics for a positive timestamp on one partition:
    the first offset whose record timestamp is >= ts, or -1 if none."""
    for off, t in enumerate(timestamps):
        if t >= ts:
            return off
    return -1
