"""An idempotent producer's retries after a leader change, through
confluent-kafka: batches the old leader appended, replicated and committed
but never answered are answered by the new leader, which took its producer
state over from the records it fetched as a follower, as duplicates with
their original offsets; the producer's next batch (the next sequence) is
taken; every value is in the log once.

Node 1 sits behind a proxy (kproxy.py) that withholds its answers to
Produce requests, so the producer cannot learn of the appends; node 1 is
then killed and the producer retries against the new leader with the same
producer epoch and sequences. This is the broker's half of the fault tier's
duplicate finding (docs/faults.md): a new leader must never answer such a
retry with an error that makes librdkafka renumber the batch.

The second test shows the client's half, which no broker can prevent:
librdkafka bumps its producer epoch after any permanent Produce error (here
MESSAGE_TOO_LARGE on another topic, an answer Kafka gives alike) and then
sends every record still waiting for a retry again from sequence 0 of the
new epoch, including records whose first send was appended but never
answered; a broker must take sequence 0 of a new epoch (Kafka's
ProducerAppendInfo.checkSequence does), so those records are written twice.

Every wait is a deadline on an observed outcome."""

from __future__ import annotations

import logging
import signal
import uuid

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import NewTopic

from conftest import Cluster, binary, wait_for
from kproxy import ProduceBlackhole

RECORDS = 200
IN_FLIGHT = 5


def partition_zero(cluster: Cluster, topic: str, via: list[int]):
    for node_id in via:
        try:
            t = cluster.nodes[node_id].metadata().topics.get(topic)
        except Exception:  # noqa: BLE001 - a node that does not answer: ask the next
            continue
        if t is not None and 0 in t.partitions:
            return t.partitions[0]
    return None


def high_watermark(bootstrap: str, topic: str) -> int | None:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"hw-{uuid.uuid4()}", "log_level": 0})
    try:
        return c.get_watermark_offsets(TopicPartition(topic, 0), timeout=5, cached=False)[1]
    except Exception:  # noqa: BLE001 - not answered yet: the caller's deadline decides
        return None
    finally:
        c.close()


def read_all(bootstrap: str, topic: str, end: int) -> list[tuple[int, str]]:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"r-{uuid.uuid4()}", "enable.auto.commit": False})
    c.assign([TopicPartition(topic, 0, 0)])
    out: list[tuple[int, str]] = []

    def done():
        for m in c.consume(500, timeout=1.0):
            if m.error() is None:
                out.append((m.offset(), m.value().decode()))
        return bool(out) and out[-1][0] >= end - 1

    try:
        wait_for(f"{topic} read to offset {end}", done, deadline=90, every=0)
    finally:
        c.close()
    return out


def start_with_node1_behind(cluster: Cluster, proxy: ProduceBlackhole) -> None:
    """Starts the three nodes, node 1 advertising the proxy in front of it,
    so every client reaches node 1 through the proxy."""
    for n in cluster.nodes.values():
        n.write_config({"advertised.listeners": f"PLAINTEXT://{proxy.address}"} if n.node_id == 1 else None)
        n.start()
    cluster.wait_brokers({1, 2, 3}, via=[2, 3])


def idempotent_producer(cluster: Cluster, extra: dict | None = None, **kwargs) -> Producer:
    """An acks=all idempotent producer bootstrapped from nodes 2 and 3, one
    record a batch, five batches of a partition in flight, patient enough to
    outlive node 1; `extra` settings added, `kwargs` (a logger) passed on."""
    survivors = ",".join(cluster.nodes[i].bootstrap for i in (2, 3))
    return Producer({"bootstrap.servers": survivors, "acks": "all", "enable.idempotence": True,
                     "max.in.flight.requests.per.connection": IN_FLIGHT, "linger.ms": 5,
                     "batch.num.messages": 1, "request.timeout.ms": 60000,
                     "message.timeout.ms": 180000, **(extra or {})}, **kwargs)


def test_retries_of_committed_unanswered_batches_are_duplicates_at_the_new_leader(tmp_path):
    binary()
    cluster = Cluster(tmp_path)
    node1 = cluster.nodes[1]
    proxy = ProduceBlackhole((node1.host, node1.client_port))
    producer = None
    try:
        start_with_node1_behind(cluster, proxy)
        topic = "retried"
        admin = cluster.nodes[2].admin()
        admin.create_topics([NewTopic(topic, num_partitions=1, replica_assignment=[[1, 2, 3]], config={"min.insync.replicas": "2"})],
                            operation_timeout=30)[topic].result(60)

        def led_by_1_with_full_isr():
            p = partition_zero(cluster, topic, [2, 3])
            return p is not None and p.leader == 1 and set(p.isrs) == {1, 2, 3}

        wait_for("node 1 to lead with ISR {1, 2, 3}", led_by_1_with_full_isr, deadline=90)

        reports: dict[int, object] = {}

        def report(i):
            return lambda err, msg: reports.__setitem__(i, err if err is not None else msg.offset())

        producer = idempotent_producer(cluster)
        producer.produce(topic, value=b"warm-up", partition=0, on_delivery=report(-1))
        assert producer.flush(60) == 0 and reports[-1] == 0, reports

        proxy.withhold.set()
        values = [f"v-{i}" for i in range(RECORDS)]
        for i, v in enumerate(values):
            producer.produce(topic, value=v.encode(), partition=0, on_delivery=report(i))
            producer.poll(0)
        # librdkafka keeps at most five batches of a partition in flight (one
        # record each here). Node 1 appends them, its followers fetch them, the
        # high watermark passes them, node 1 answers: committed, and not one
        # answer reaches the producer.
        wait_for("node 1 to answer five batches", lambda: proxy.withheld >= IN_FLIGHT, deadline=90)
        assert high_watermark(proxy.address, topic) == 1 + IN_FLIGHT
        producer.poll(0)
        assert set(reports) == {-1}, f"answers reached the producer: {sorted(reports)[:5]}"

        node1.kill(signal.SIGKILL)
        proxy.close()
        new_leader = wait_for("a new leader from the ISR",
                              lambda: (p := partition_zero(cluster, topic, [2, 3])) is not None
                              and p.leader in (2, 3) and p.leader, deadline=90)

        assert producer.flush(150) == 0, "records undelivered"
        retried = [reports[i] for i in range(RECORDS)]
        assert all(isinstance(r, int) for r in retried), [r for r in retried if not isinstance(r, int)][:3]
        # Each retry was answered with the offset its first append got.
        assert retried == list(range(1, RECORDS + 1)), retried[:10]

        # The next sequence is taken by the new leader.
        following = [f"w-{i}" for i in range(20)]
        for i, v in enumerate(following):
            producer.produce(topic, value=v.encode(), partition=0, on_delivery=report(RECORDS + i))
        assert producer.flush(60) == 0
        assert [reports[RECORDS + i] for i in range(20)] == list(range(RECORDS + 1, RECORDS + 21))

        log = read_all(cluster.nodes[new_leader].bootstrap, topic, RECORDS + 21)
        assert [v for _, v in log] == ["warm-up", *values, *following]
        assert [o for o, _ in log] == list(range(RECORDS + 21))
    except BaseException:
        print(cluster.logs())
        raise
    finally:
        producer = None
        proxy.close()
        cluster.stop()


class Lines(logging.Handler):
    """Keeps librdkafka's log lines, to wait on what the client did."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())

    def seen(self, producer: Producer, text: str) -> bool:
        producer.poll(0.1)  # the client's log lines reach the logger through poll
        return any(text in line for line in list(self.lines))


def test_librdkafka_sends_possibly_written_records_again_after_an_epoch_bump(tmp_path):
    """Kafka would hold the same duplicate: every broker answer here is one
    Kafka gives (see the module docstring)."""
    binary()
    cluster = Cluster(tmp_path)
    node1 = cluster.nodes[1]
    proxy = ProduceBlackhole((node1.host, node1.client_port))
    producer = None
    try:
        start_with_node1_behind(cluster, proxy)
        admin = cluster.nodes[2].admin()
        futures = admin.create_topics([
            NewTopic("written", num_partitions=1, replica_assignment=[[1]]),
            NewTopic("small", num_partitions=1, replica_assignment=[[2]], config={"max.message.bytes": "2000"}),
        ], operation_timeout=30)
        for f in futures.values():
            f.result(60)
        for topic, leader in (("written", 1), ("small", 2)):
            wait_for(f"node {leader} to lead {topic}",
                     lambda topic=topic, leader=leader: (p := partition_zero(cluster, topic, [2, 3])) is not None
                     and p.leader == leader, deadline=90)

        log = logging.getLogger(f"librdkafka-{uuid.uuid4()}")
        log.setLevel(logging.DEBUG)
        lines = Lines()
        log.addHandler(lines)
        reports: dict[str, object] = {}

        def report(key):
            return lambda err, msg: reports.__setitem__(key, err if err is not None else msg.offset())

        producer = idempotent_producer(cluster, {"debug": "eos"}, logger=log)
        producer.produce("written", value=b"warm-up", partition=0, on_delivery=report("warm-up"))
        assert producer.flush(60) == 0 and reports["warm-up"] == 0, reports

        # Five records appended (acks=all: answered only once durable), no answer delivered.
        proxy.withhold.set()
        values = [f"v-{i}" for i in range(IN_FLIGHT)]
        for v in values:
            producer.produce("written", value=v.encode(), partition=0, on_delivery=report(v))
        wait_for("node 1 to answer five batches", lambda: proxy.withheld >= IN_FLIGHT, deadline=90)
        assert high_watermark(proxy.address, "written") == 1 + IN_FLIGHT
        producer.poll(0)
        assert set(reports) == {"warm-up"}, reports

        # Node 1 dies: the five fail with a transport error and wait for a
        # retry, "possibly persisted" (librdkafka's own word), while the
        # partition has no leader.
        node1.kill(signal.SIGKILL)
        proxy.withhold.clear()
        wait_for("the five to wait for a retry", lambda: lines.seen(producer, "drain before retrying"), deadline=60, every=0)

        # A permanent error on another topic: librdkafka bumps the epoch.
        producer.produce("small", value=b"x" * 10000, partition=0, on_delivery=report("large"))
        wait_for("the large record's answer", lambda: producer.poll(0.2) is not None and "large" in reports,
                 deadline=60, every=0)
        assert isinstance(reports["large"], KafkaError) and reports["large"].code() == KafkaError.MSG_SIZE_TOO_LARGE
        wait_for("the epoch bump", lambda: lines.seen(producer, "bumped epoch to PID{Id:"), deadline=60, every=0)

        node1.start()
        assert producer.flush(120) == 0
        resent = [reports[v] for v in values]
        assert all(isinstance(r, int) for r in resent), resent
        written = read_all(proxy.address, "written", 1 + 2 * IN_FLIGHT)
        # Each of the five is in the log twice: at offsets 1-5 (epoch 0,
        # sequences 1-5, never answered) and again at 6-10 (epoch 1,
        # sequences 0-4), where the producer was told it went.
        assert [v for _, v in written] == ["warm-up", *values, *values]
        assert resent == list(range(1 + IN_FLIGHT, 1 + 2 * IN_FLIGHT))
    except BaseException:
        print(cluster.logs())
        raise
    finally:
        producer = None
        proxy.close()
        cluster.stop()
