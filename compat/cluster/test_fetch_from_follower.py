"""Fetch from the closest replica (KIP-392) on a three-node cluster whose
brokers are in racks RACK1-RACK3 with Kafka's RackAwareReplicaSelector.

- A confluent-kafka consumer whose client.rack is a follower's rack reads
  every record in order, and its own statistics show it fetched them from
  that follower (the partition's fetch broker is the follower, and the
  follower's received bytes cover the records); a consumer without
  client.rack reads from the leader.
- On the wire: the leader answers a v11+ consumer fetch carrying a
  follower's rack with no records and preferred_read_replica = that
  follower; the follower serves the records to a consumer, checks the
  leader epoch as the leader does (FENCED / UNKNOWN_LEADER_EPOCH), and
  answers OFFSET_OUT_OF_RANGE past its log end.
- A follower never returns records above the high watermark: with the
  third replica stopped (SIGSTOP: still in the ISR, so the high watermark
  cannot move), acks=1 records reach the follower's log, and a fetch from
  the follower returns only the committed ones, also after the follower is
  killed and restarted (its reopened log's own high watermark is its log
  end); once the third replica resumes, the consumer on the follower reads
  them all.

Every wait is a deadline on an observed outcome."""

from __future__ import annotations

import json
import signal
import struct
import uuid

import pytest
from confluent_kafka import Consumer, Producer, TopicCollection, TopicPartition
from confluent_kafka.admin import ConfigSource
from confluent_kafka.admin import ConfigResource, NewTopic

import kwire  # compat/python, on the path through conftest
from conftest import HOST, binary, free_ports, refused_start, started_cluster, wait_for

RACK_AWARE = "org.apache.kafka.common.replica.RackAwareReplicaSelector"
RECORDS = 200
OFFSET_OUT_OF_RANGE = 1
FENCED_LEADER_EPOCH = 74
UNKNOWN_LEADER_EPOCH = 75


@pytest.fixture(scope="module")
def racks(tmp_path_factory):
    # A stopped (SIGSTOP) replica stays registered and in the ISR this long:
    # the high watermark test needs the ISR to keep it while it looks.
    yield from started_cluster(tmp_path_factory.mktemp("racks"),
                               {"broker.rack": "RACK{node_id}", "replica.selector.class": RACK_AWARE,
                                "replica.lag.time.max.ms": "120000", "broker.session.timeout.ms": "120000"})


def create(cluster, name: str) -> tuple[int, list[int], bytes]:
    """An RF 3 topic of one partition, in sync on every node: its leader,
    replicas and topic id."""
    admin = cluster.nodes[1].admin()
    admin.create_topics([NewTopic(name, 1, 3)], operation_timeout=30)[name].result(timeout=60)

    def placed():
        p = cluster.nodes[1].metadata().topics.get(name)
        if p is None or 0 not in p.partitions:
            return None
        meta = p.partitions[0]
        return (meta.leader, list(meta.replicas)) if meta.leader >= 1 and len(meta.isrs) == 3 else None

    leader, replicas = wait_for(f"{name} led with three in-sync replicas", placed, deadline=60)
    described = admin.describe_topics(TopicCollection([name]))[name].result(timeout=30)
    tid = struct.pack(">qq", described.topic_id.get_most_significant_bits(),
                      described.topic_id.get_least_significant_bits())
    return leader, replicas, tid


def produce(bootstrap: str, name: str, values: list[bytes], acks: str = "all") -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "acks": acks, "linger.ms": 5})
    for v in values:
        producer.produce(name, value=v, partition=0)
    assert producer.flush(60) == 0


def fetch(node, tid: bytes, offset: int = 0, epoch: int = -1, rack: str = "") -> kwire.FetchV16Partition:
    """A consumer's Fetch v16 of partition 0 from `offset`, with `rack` as client.rack."""
    body = kwire.fetch_v16_body(tid, 0, offset, epoch, rack_id=rack)
    with kwire.Connection(HOST, node.client_port) as c:
        cid = c.send_request(kwire.FETCH, 16, body, flexible=True)
        r = c.recv_response(cid, flexible_header=True)
        top_error, answers, _ = kwire.parse_fetch_v16(r)
        assert r.remaining() == 0
    assert top_error == 0
    return answers[(tid, 0)]


def leader_epoch(cluster, leader: int, tid: bytes) -> int:
    """The partition's leader epoch, as the leader names it: a v16 fetch
    carrying epoch 0 is fenced with the current one when that is newer
    (KIP-951 hint), and served when it is 0."""
    hint = fetch(cluster.nodes[leader], tid, epoch=0)
    return hint.current_leader.leader_epoch if hint.error_code == FENCED_LEADER_EPOCH else 0


def record_offsets(records: bytes | None) -> list[int]:
    """Every offset the record batches hold (base offset + last offset delta)."""
    out, pos = [], 0
    data = records or b""
    while pos + 12 <= len(data):
        base, length = struct.unpack_from(">qi", data, pos)
        if pos + 12 + length > len(data):
            break  # a partial batch at the end of a size-limited read
        last_delta = struct.unpack_from(">i", data, pos + 23)[0]
        out.extend(range(base, base + last_delta + 1))
        pos += 12 + length
    return out


def consume(bootstrap: str, name: str, expected: int, **extra):
    """Reads partition 0 from the start until `expected` records; returns
    their values and the consumer's latest statistics."""
    stats: list[dict] = []
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"g-{uuid.uuid4()}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False,
                         "statistics.interval.ms": 500, "stats_cb": lambda s: stats.append(json.loads(s)),
                         **extra})
    consumer.assign([TopicPartition(name, 0, 0)])
    values: list[bytes] = []
    try:
        def read():
            for m in consumer.consume(100, timeout=1.0):
                assert m.error() is None, m.error()
                values.append(m.value())
            return len(values) >= expected
        wait_for(f"{expected} records of {name}", read, deadline=90)
        seen = len(stats)
        wait_for("fresh statistics", lambda: consumer.poll(0.2) is None and len(stats) > seen + 1, deadline=30)
        return values, stats[-1]
    finally:
        consumer.close()


def fetched_from(stats: dict, name: str) -> tuple[int, int]:
    """(the broker the consumer fetches partition 0 from, its leader), as the client reports it."""
    p = stats["topics"][name]["partitions"]["0"]
    return p["broker"], p["leader"]


def rxbytes(stats: dict, node_id: int) -> int:
    return next(b["rxbytes"] for b in stats["brokers"].values() if b["nodeid"] == node_id)


def test_an_unknown_replica_selector_refuses_to_start_naming_the_ones_that_work(tmp_path):
    binary()
    client, controller = free_ports(2)
    path = tmp_path / "selector.properties"
    path.write_text(
        "process.roles=broker,controller\nnode.id=7\ncontroller.listener.names=CONTROLLER\n"
        f"listeners=PLAINTEXT://{HOST}:{client},CONTROLLER://{HOST}:{controller}\nlog.dirs={tmp_path}/d\n"
        f"controller.quorum.voters=7@{HOST}:{controller}\nreplica.selector.class=com.example.Nearest\n")
    code, lines = refused_start(path)
    assert code != 0
    assert len(lines) == 1 and lines[0].startswith("error:"), lines
    assert "com.example.Nearest" in lines[0] and RACK_AWARE in lines[0] and "LeaderSelector" in lines[0], lines


def test_describe_configs_shows_each_brokers_rack_and_selector(racks):
    for node_id, node in racks.nodes.items():
        resource = ConfigResource(ConfigResource.Type.BROKER, str(node_id))
        configs = node.admin().describe_configs([resource])[resource].result(timeout=30)
        assert configs["broker.rack"].value == f"RACK{node_id}"
        selector = configs["replica.selector.class"]
        assert selector.value == RACK_AWARE and selector.is_read_only
        assert ConfigSource(selector.source) == ConfigSource.STATIC_BROKER_CONFIG


def test_a_consumer_reads_from_the_follower_in_its_rack(racks):
    name = "ffrack"
    leader, replicas, tid = create(racks, name)
    follower = next(r for r in replicas if r != leader)
    values = [f"record-{i:04d}-".encode() + b"x" * 100 for i in range(RECORDS)]
    produce(racks.bootstrap, name, values)

    # The leader sends a consumer of the follower's rack there, with no records.
    sent = fetch(racks.nodes[leader], tid, rack=f"RACK{follower}")
    assert sent.error_code == 0 and sent.preferred_read_replica == follower and not sent.records
    # Of its own rack, or without one, the consumer reads at the leader.
    for rack in (f"RACK{leader}", ""):
        here = fetch(racks.nodes[leader], tid, rack=rack)
        assert here.error_code == 0 and here.preferred_read_replica == -1 and here.records, rack
    # The follower serves a consumer once it has heard the high watermark.
    served = wait_for("the follower to serve committed records",
                      lambda: (lambda a: a if a.error_code == 0 and a.high_watermark == RECORDS else None)(
                          fetch(racks.nodes[follower], tid)))
    assert served.preferred_read_replica == -1
    assert record_offsets(served.records)[0] == 0

    got, stats = consume(racks.bootstrap, name, RECORDS, **{"client.rack": f"RACK{follower}"})
    assert got == values
    assert fetched_from(stats, name) == (follower, leader)
    assert rxbytes(stats, follower) > sum(len(v) for v in values), "the records came from the follower"

    got, stats = consume(racks.bootstrap, name, RECORDS)
    assert got == values
    assert fetched_from(stats, name) == (leader, leader)


def test_a_follower_checks_epochs_and_offsets_as_a_leader_does(racks):
    name = "ffepochs"
    leader, replicas, tid = create(racks, name)
    follower = next(r for r in replicas if r != leader)
    produce(racks.bootstrap, name, [b"a", b"b", b"c"])
    node = racks.nodes[follower]
    wait_for("the follower to know the high watermark", lambda: fetch(node, tid).high_watermark == 3)
    epoch = leader_epoch(racks, leader, tid)
    assert fetch(node, tid, epoch=epoch).error_code == 0
    assert fetch(node, tid, epoch=epoch + 1).error_code == UNKNOWN_LEADER_EPOCH
    if epoch > 0:
        assert fetch(node, tid, epoch=epoch - 1).error_code == FENCED_LEADER_EPOCH
    past = fetch(node, tid, offset=1000)
    assert past.error_code == OFFSET_OUT_OF_RANGE and not past.records
    at_end = fetch(node, tid, offset=3)
    assert at_end.error_code == 0 and not at_end.records


def test_a_follower_returns_nothing_above_the_high_watermark(racks):
    name = "ffhw"
    leader, replicas, tid = create(racks, name)
    followers = [r for r in replicas if r != leader]
    # Stop the follower that is not the active controller, if one is not,
    # so the metadata quorum keeps its leader.
    controller = racks.controller(via=leader)
    stopped = next((f for f in followers if f != controller), followers[0])
    reader = next(f for f in followers if f != stopped)
    committed = [f"c{i}".encode() for i in range(20)]
    produce(racks.bootstrap, name, committed)
    wait_for("the reader to know the high watermark",
             lambda: fetch(racks.nodes[reader], tid).high_watermark == len(committed))

    racks.nodes[stopped].process.send_signal(signal.SIGSTOP)
    try:
        pending = [f"p{i}".encode() for i in range(30)]
        # acks=1: the leader takes them; the stopped replica is still in the
        # ISR, so the high watermark stays where it was.
        produce(racks.nodes[leader].bootstrap, name, pending, acks="1")
        total = len(committed) + len(pending)

        def reader_holds_all():
            # A replica-less look at what the reader's log holds: its segment files.
            files = sorted((racks.nodes[reader].data_dir / f"{name}-0").glob("*.log"))
            return record_offsets(b"".join(f.read_bytes() for f in files))[-1:] == [total - 1]

        wait_for("the reader's log to hold the uncommitted records", reader_holds_all)
        answer = fetch(racks.nodes[reader], tid)
        assert answer.error_code == 0
        assert answer.high_watermark == len(committed)
        assert record_offsets(answer.records) == list(range(len(committed)))
        # A consumer already past the high watermark (but not past the log end) gets nothing, no error.
        ahead = fetch(racks.nodes[reader], tid, offset=len(committed) + 5)
        assert ahead.error_code == 0 and not ahead.records

        # Restarted, the reader's log takes its log end as its high watermark
        # (none is kept on disk): it serves consumers again only below the
        # high watermark its leader reports.
        racks.nodes[reader].kill(signal.SIGKILL)
        racks.nodes[reader].start()

        def served_again():
            try:
                a = fetch(racks.nodes[reader], tid)
            except (OSError, kwire.ConnectionClosed):
                return None
            # (NOT_LEADER_OR_FOLLOWER or UNKNOWN_TOPIC_ID while it reloads, then
            # OFFSET_NOT_AVAILABLE until its leader answers: retried.)
            return a if a.error_code == 0 else None

        again = wait_for("the restarted reader to serve consumers", served_again, deadline=90)
        assert again.high_watermark == len(committed)
        assert record_offsets(again.records) == list(range(len(committed)))
    finally:
        racks.nodes[stopped].process.send_signal(signal.SIGCONT)

    got, stats = consume(racks.bootstrap, name, total, **{"client.rack": f"RACK{reader}"})
    assert got == committed + pending
    assert fetched_from(stats, name)[0] == reader
