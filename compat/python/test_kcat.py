"""Compatibility tests with kcat (librdkafka-based CLI; Debian ships kcat
1.7.1 with librdkafka 2.0.x, an older librdkafka than confluent-kafka's).

kcat is installed with `apt-get install -y kcat`; these tests are skipped when
it is not on PATH.
"""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

import ck
from payloads import Rec, base_timestamp_ms, first_offset_at_or_after, unique_topic

KCAT = shutil.which("kcat") or shutil.which("kafkacat")

pytestmark = [
    pytest.mark.kcat,
    pytest.mark.skipif(KCAT is None, reason="kcat is not on PATH (apt-get install -y kcat)"),
]


def kcat(bootstrap: str, *args: str, input: bytes | None = None, timeout: float = 60.0) -> str:
    argv = [KCAT, "-b", bootstrap, "-q", *args]
    p = subprocess.run(argv, input=input, capture_output=True, timeout=timeout)
    assert p.returncode == 0, (
        f"{' '.join(argv)} exited {p.returncode}\nstdout:\n{p.stdout.decode(errors='replace')}"
        f"\nstderr:\n{p.stderr.decode(errors='replace')}")
    return p.stdout.decode()


@pytest.fixture
def adm(bootstrap):
    return ck.admin(bootstrap)


def test_kcat_metadata(adm, bootstrap):
    name = unique_topic("kcat-md")
    ck.create_topic(adm, name, partitions=2)
    bid = ck.broker_id(adm)
    md = json.loads(kcat(bootstrap, "-L", "-J"))
    assert [b["id"] for b in md["brokers"]] == [bid]
    assert md["brokers"][0]["name"] == bootstrap
    topics = {t["topic"]: t for t in md["topics"]}
    assert name in topics
    parts = sorted(topics[name]["partitions"], key=lambda p: p["partition"])
    assert [p["partition"] for p in parts] == [0, 1]
    for p in parts:
        assert p["leader"] == bid
        assert [r["id"] for r in p["replicas"]] == [bid]
        assert [r["id"] for r in p["isrs"]] == [bid]
        assert "error" not in p, p


def test_kcat_metadata_plain_text(adm, bootstrap):
    name = unique_topic("kcat-mdtxt")
    ck.create_topic(adm, name, partitions=3)
    out = kcat(bootstrap, "-L", "-t", name)
    assert "1 brokers:" in out, out
    assert f'topic "{name}" with 3 partitions:' in out, out


@pytest.mark.parametrize("codec", ["none", "gzip", "snappy", "lz4", "zstd"])
def test_kcat_produce_consume_keys(adm, bootstrap, codec):
    name = unique_topic(f"kcat-{codec}")
    ck.create_topic(adm, name, partitions=1)
    n = 500
    lines = [f"key-{i}:value-{i}-{'x' * (i % 50)}" for i in range(n)]
    kcat(bootstrap, "-P", "-t", name, "-p", "0", "-K:", "-z", codec,
         input=("\n".join(lines) + "\n").encode())
    out = kcat(bootstrap, "-C", "-t", name, "-p", "0", "-o", "beginning", "-e",
               "-f", "%p|%o|%k|%s\n")
    got = out.splitlines()
    want = [f"0|{i}|{line.replace(':', '|', 1)}" for i, line in enumerate(lines)]
    assert got == want


def test_kcat_headers_and_null_values(adm, bootstrap):
    name = unique_topic("kcat-hdr")
    ck.create_topic(adm, name, partitions=1)
    # -Z: an empty value is sent as NULL (a tombstone)
    kcat(bootstrap, "-P", "-t", name, "-p", "0", "-K:", "-Z", "-H", "h1=one", "-H", "h2=two",
         input=b"a:1\nb:\nc:3\n")
    out = kcat(bootstrap, "-C", "-t", name, "-p", "0", "-o", "beginning", "-e", "-Z",
               "-f", "%o|%k|%s|%S|%h\n")
    assert out.splitlines() == [
        "0|a|1|1|h1=one,h2=two",
        "1|b|NULL|-1|h1=one,h2=two",
        "2|c|3|1|h1=one,h2=two",
    ]


def test_kcat_consume_from_offset_with_count(adm, bootstrap):
    name = unique_topic("kcat-offset")
    ck.create_topic(adm, name, partitions=1)
    kcat(bootstrap, "-P", "-t", name, "-p", "0",
         input="".join(f"line-{i}\n" for i in range(20)).encode())
    out = kcat(bootstrap, "-C", "-t", name, "-p", "0", "-o", "7", "-c", "4", "-f", "%o:%s\n")
    assert out.splitlines() == [f"{i}:line-{i}" for i in range(7, 11)]
    # negative offset = relative to the end
    out = kcat(bootstrap, "-C", "-t", name, "-p", "0", "-o", "-3", "-e", "-f", "%o:%s\n")
    assert out.splitlines() == [f"{i}:line-{i}" for i in range(17, 20)]


def test_kcat_query_offsets_for_times(adm, bootstrap):
    name = unique_topic("kcat-times")
    ck.create_topic(adm, name, partitions=1)
    base = base_timestamp_ms()
    stamps = [base + 1000 * i for i in range(10)]
    stamps[3] = base + 50_000

    d = ck.produce_records(ck.producer_conf(bootstrap), name, len(stamps),
                           lambda i: Rec(f"k{i}".encode(), f"v{i}".encode(), (), stamps[i]),
                           partition=0)
    assert d.positions == [(0, i) for i in range(len(stamps))]

    for ts in [base - 1, base, base + 1, base + 2500, base + 9000, base + 9001, base + 50_000,
               base + 50_001]:
        want = first_offset_at_or_after(stamps, ts)
        out = json.loads(kcat(bootstrap, "-Q", "-J", "-t", f"{name}:0:{ts}"))
        got = out[name]["0"]
        assert "error" not in got, got
        assert got["offset"] == want, f"-Q at {ts - base:+d}: {got}, expected {want}"

    # and the plain-text form
    out = kcat(bootstrap, "-Q", "-t", f"{name}:0:{base + 1}")
    assert out.strip() == f"{name} [0] offset 1", out

    # start consuming at a timestamp: -o s@<ts>
    out = kcat(bootstrap, "-C", "-t", name, "-p", "0", "-o", f"s@{base + 4500}", "-e",
               "-f", "%o|%T\n")
    first = first_offset_at_or_after(stamps, base + 4500)
    assert out.splitlines() == [f"{o}|{stamps[o]}" for o in range(first, len(stamps))]
