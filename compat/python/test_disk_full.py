"""Disk full: a produce that cannot be written is answered KAFKA_STORAGE_ERROR
(56), nothing acknowledged before is lost or damaged, the partition takes
writes again once space is back, and everything survives a restart.

The data directory sits on a size-limited tmpfs, so this needs root (CI runs
as root); elsewhere the test is skipped with the reason.
"""
import hashlib
import os
import subprocess
import uuid

import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

import kwire

STORAGE_ERROR = 56
VALUE_BYTES = 256 * 1024


def value_for(i: int) -> bytes:
    """Deterministic, incompressible-looking payload for record i."""
    seed = hashlib.sha256(str(i).encode()).digest()
    return (seed * (VALUE_BYTES // len(seed) + 1))[:VALUE_BYTES]


@pytest.fixture
def small_fs(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a size-limited tmpfs for the data directory")
    mnt = tmp_path / "small-fs"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=12m", "tmpfs", str(mnt)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount tmpfs here: {r.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def produce(host: str, port: int, topic: str, i: int) -> kwire.ProducePartitionResponse:
    batch = kwire.record_batch([kwire.Record(str(i).encode(), value_for(i))])
    with kwire.Connection(host, port, timeout=30) as c:
        cid = c.send_request(kwire.PRODUCE, 7, kwire.produce_v7_body(topic, 0, batch, -1))
        return kwire.parse_produce_v7(c.recv_response(cid))[(topic, 0)]


def read_all(bootstrap: str, topic: str, expected: int) -> list[tuple[int, bytes, bytes]]:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"disk-full-{uuid.uuid4().hex[:6]}",
                  "enable.auto.commit": False, "fetch.message.max.bytes": 4 * VALUE_BYTES})
    c.assign([TopicPartition(topic, 0, 0)])
    out = []
    idle = 0
    while len(out) < expected and idle < 20:
        msgs = c.consume(num_messages=100, timeout=1.0)
        idle = 0 if msgs else idle + 1
        for m in msgs:
            assert m.error() is None, m.error()
            out.append((m.offset(), m.key(), m.value()))
    c.close()
    return out


def test_disk_full_answers_storage_error_and_keeps_acknowledged_data(small_fs, broker_factory):
    # small_fs first: it is torn down after the brokers stop.
    data_dir = small_fs / "data"
    b = broker_factory.start(data_dir=data_dir)
    host, port = b.host, b.port
    bootstrap = f"{host}:{port}"
    topic = "disk-full"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(30)

    acked: dict[int, int] = {}  # offset -> record number
    storage_errors = 0
    for i in range(200):
        resp = produce(host, port, topic, i)
        if resp.error_code == 0:
            acked[resp.base_offset] = i
        elif resp.error_code == STORAGE_ERROR:
            storage_errors += 1
            if storage_errors >= 3:
                break
        else:
            pytest.fail(f"record {i}: unexpected error code {resp.error_code}")
    assert storage_errors >= 3, "the 12 MiB filesystem never filled up"
    assert len(acked) >= 10, f"only {len(acked)} records fit before the disk was full"
    assert sorted(acked) == list(range(len(acked))), "acknowledged offsets are dense from 0"

    def check_intact(records):
        assert [o for o, _, _ in records] == sorted(acked), "every acknowledged offset, nothing else"
        for offset, key, value in records:
            i = acked[offset]
            assert key == str(i).encode() and value == value_for(i), f"record at offset {offset} damaged"

    check_intact(read_all(bootstrap, topic, len(acked)))

    # Space comes back: the partition was not taken offline and continues right after the acked data.
    subprocess.run(["mount", "-o", "remount,size=64m", str(small_fs)], check=True)
    resp = produce(host, port, topic, 1000)
    assert resp.error_code == 0, f"produce after freeing space: error {resp.error_code}"
    assert resp.base_offset == len(acked)
    acked[resp.base_offset] = 1000

    # And a restart on the same directory recovers exactly that.
    b.stop_cleanly()
    b2 = broker_factory.start(data_dir=data_dir)
    check_intact(read_all(b2.bootstrap, topic, len(acked)))
    b2.stop_cleanly()
    for log in (b.log_path, b2.log_path):
        errors = [line for line in log.read_text().splitlines() if " ERROR " in line]
        assert not errors, f"{log}: {errors[:3]}"
