"""A data directory whose cluster metadata was written by the metadata store
that came before the Raft-shaped log opens, as confluent-kafka sees it.

The metadata files come from ``crates/metadata/tests/fixtures/legacy/``,
written by that old store itself (the fixture's README lists what it holds).
On first open the broker migrates them; topics, deletions, configs and the
cluster id must all be there, records must flow, and changes made after the
upgrade must survive the next restart.
"""

from __future__ import annotations

import shutil
import struct
from pathlib import Path

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import ConfigSource

import ck
from ck import ADMIN_TIMEOUT_S

FIXTURES = Path(__file__).resolve().parents[2] / "crates/metadata/tests/fixtures/legacy"


def _data_dir_with_old_metadata(broker_factory, fixture: str) -> Path:
    data_dir = broker_factory.new_data_dir()
    shutil.copytree(FIXTURES / fixture, data_dir / "__cluster_metadata")
    return data_dir


def _read_values(bootstrap: str, topic: str, per_partition: int, partitions: int = 3) -> list[str]:
    values: list[str] = []
    ck.read_back(bootstrap, topic, {p: per_partition for p in range(partitions)},
                 lambda m: values.append(m.value().decode()))
    return sorted(values)


@pytest.mark.restart
def test_metadata_written_by_the_old_store_opens_after_upgrade(broker_factory):
    data_dir = _data_dir_with_old_metadata(broker_factory, "with-snapshot")
    b1 = broker_factory.start(data_dir=data_dir)
    a = ck.admin(b1.bootstrap)
    ck.wait_for_topic(a, "orders", 3)
    ck.wait_for_topic(a, "payments", 3)
    assert "late" not in ck.topic_names(a), "a topic the old log deleted came back"
    assert a.describe_cluster().result(ADMIN_TIMEOUT_S).cluster_id == "lEgAcYcLuStErIdAbCdEfG"

    orders = ck.describe_topic_configs(a, "orders")
    assert orders["retention.ms"].value == "5"
    assert ck.source_of(orders["retention.ms"]) == ConfigSource.DYNAMIC_TOPIC_CONFIG
    payments = ck.describe_topic_configs(a, "payments")
    assert payments["cleanup.policy"].value == "compact"
    broker = ck.describe_broker_configs(a, ck.broker_id(a))
    assert broker["log.retention.ms"].value == "60000"
    assert ck.source_of(broker["log.retention.ms"]) == ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG

    # `payments` is compacted: records need keys.
    failed: list[str] = []
    p = Producer(ck.producer_conf(b1.bootstrap))
    for i in range(12):
        p.produce("payments", key=f"k{i}".encode(), value=f"v{i}".encode(), partition=i % 3,
                  on_delivery=lambda err, _m: err and failed.append(str(err)))
    assert p.flush(30) == 0 and not failed, failed
    assert _read_values(b1.bootstrap, "payments", 4) == sorted(f"v{i}" for i in range(12))
    ck.create_topic(a, "after-upgrade", partitions=2)
    b1.stop_cleanly()

    names = sorted(x.name for x in (data_dir / "__cluster_metadata").iterdir())
    assert "metadata.log" not in names and "metadata.snapshot" not in names, names

    b2 = broker_factory.start(data_dir=data_dir)
    a2 = ck.admin(b2.bootstrap)
    ck.wait_for_topic(a2, "after-upgrade", 2)
    ck.wait_for_topic(a2, "orders", 3)
    assert a2.describe_cluster().result(ADMIN_TIMEOUT_S).cluster_id == "lEgAcYcLuStErIdAbCdEfG"
    assert _read_values(b2.bootstrap, "payments", 4) == sorted(f"v{i}" for i in range(12))
    b2.stop_cleanly()


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli), bitwise: the old log's checksum."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


@pytest.mark.restart
def test_an_old_metadata_log_with_an_unreadable_command_stops_the_start(broker_factory):
    """A command whose checksum holds but which does not parse: the old store
    dropped it and everything after it; now the broker refuses to start and
    says which file, where, and what to do."""
    data_dir = _data_dir_with_old_metadata(broker_factory, "log-only")
    log = data_dir / "__cluster_metadata" / "metadata.log"
    payload = b'["not a command"]'
    covered = struct.pack(">Q", 10) + payload
    frame = struct.pack(">II", len(payload), crc32c(covered)) + covered
    offset = log.stat().st_size
    with log.open("ab") as f:
        f.write(frame)
    with pytest.raises(pytest.fail.Exception, match="exited with status") as failed:
        broker_factory.start(data_dir=data_dir)
    said = str(failed.value)
    assert str(log) in said and f"byte {offset}" in said and "start the version that wrote it" in said, said
    assert "\n" not in [line for line in said.splitlines() if "metadata.log" in line][0]
    assert log.stat().st_size == offset + len(frame), "the old log must be left as it was"
