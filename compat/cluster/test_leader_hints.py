"""KIP-951 leader discovery on a three-node cluster: a produce or fetch sent
to a broker that does not lead the partition is answered
NOT_LEADER_OR_FOLLOWER with the leader's id and epoch in the partition's
CurrentLeader and the leader's endpoint in the response's NodeEndpoints
(Produce v10+, Fetch v16+; older versions carry neither). Checked with raw
requests (compat/python/kwire.py), and with librdkafka, which follows the
hint without a Metadata round trip, producing across a leader move."""

from __future__ import annotations

import logging
import signal
import struct
import threading

from confluent_kafka import Consumer, Producer, TopicCollection, TopicPartition
from confluent_kafka.admin import NewTopic

import kwire  # compat/python, on the path through conftest
from conftest import HOST, wait_for

NOT_LEADER_OR_FOLLOWER = 6
FENCED_LEADER_EPOCH = 74
UNKNOWN_LEADER_EPOCH = 75


def create(cluster, name: str, partitions: int, replicas: int) -> None:
    """Creates the topic through node 1 and waits until every node has it with
    a leader for every partition."""
    futures = cluster.nodes[1].admin().create_topics([NewTopic(name, partitions, replicas)], operation_timeout=30)
    futures[name].result(timeout=60)
    for node in cluster.nodes.values():
        wait_for(f"node {node.node_id} to know {name}", lambda node=node: led_by_node(node, name, partitions))


def led_by_node(node, name: str, partitions: int) -> bool:
    """Whether `node` itself (a raw Metadata request to it, asking for every
    topic) shows `name` with a leader for each of its partitions."""
    md = kwire.metadata_v1(HOST, node.client_port, None)
    topic = next((t for t in md.topics if t["name"] == name and t["error_code"] == 0), None)
    return topic is not None and len(topic["partitions"]) == partitions and all(p["leader"] >= 1 for p in topic["partitions"])


def leaders(node, topic: str) -> dict[int, int]:
    return {p: m.leader for p, m in node.metadata().topics[topic].partitions.items()}


def topic_id(node, topic: str) -> bytes:
    described = node.admin().describe_topics(TopicCollection([topic]))[topic].result(timeout=30)
    uuid = described.topic_id
    return struct.pack(">qq", uuid.get_most_significant_bits(), uuid.get_least_significant_bits())


def produce(node, version: int, topic: str, partition: int, value: bytes = b"v"):
    """One record to `topic`-`partition` through `node` with Produce `version` (9-12: one layout)."""
    body = kwire.produce_v11_body(topic, partition, kwire.record_batch([kwire.Record(None, value)]))
    with kwire.Connection(HOST, node.client_port) as c:
        cid = c.send_request(kwire.PRODUCE, version, body, flexible=True)
        r = c.recv_response(cid, flexible_header=True)
        answers, endpoints = kwire.parse_produce_v11(r)
        assert r.remaining() == 0
    return answers[(topic, partition)], endpoints


def fetch(node, version: int, tid: bytes, partition: int, epoch: int = -1):
    """Reads `partition` of the topic with id `tid` from offset 0 through `node` (Fetch 15-17: one layout)."""
    with kwire.Connection(HOST, node.client_port) as c:
        cid = c.send_request(kwire.FETCH, version, kwire.fetch_v16_body(tid, partition, 0, epoch), flexible=True)
        r = c.recv_response(cid, flexible_header=True)
        top_error, answers, endpoints = kwire.parse_fetch_v16(r)
        assert r.remaining() == 0
    assert top_error == 0
    return answers[(tid, partition)], endpoints


def advertised(node, api_key: int) -> int:
    """The highest version of `api_key` that `node` advertises in ApiVersions."""
    with kwire.Connection(HOST, node.client_port) as c:
        cid = c.send_request(kwire.API_VERSIONS, 0, kwire.api_versions_v0_body())
        return kwire.parse_api_versions_v0(c.recv_response(cid)).api_keys[api_key][1]


def test_produce_and_fetch_sent_elsewhere_name_the_leader(cluster):
    # Three replicas: every broker hosts every partition, the others as followers.
    create(cluster, "hinted", 3, 3)
    placed = wait_for("a leader on every broker",
                      lambda: (l := leaders(cluster.nodes[1], "hinted")) and set(l.values()) == {1, 2, 3} and l)
    tid = topic_id(cluster.nodes[1], "hinted")
    produce_max, fetch_max = advertised(cluster.nodes[1], kwire.PRODUCE), advertised(cluster.nodes[1], kwire.FETCH)
    # The layouts kwire reads (Produce 9-12, Fetch 15-17) cover what is advertised.
    assert 10 <= produce_max <= 12 and 16 <= fetch_max <= 17, (produce_max, fetch_max)
    for partition, leader in placed.items():
        endpoint = kwire.NodeEndpoint(leader, HOST, cluster.nodes[leader].client_port, None)
        # The leader takes the record; its answer names no other leader.
        ok, endpoints = produce(cluster.nodes[leader], 11, "hinted", partition)
        assert ok.error_code == 0 and ok.current_leader == kwire.LeaderHint() and endpoints == []
        for other in (i for i in (1, 2, 3) if i != leader):
            node = cluster.nodes[other]
            refused, endpoints = produce(node, 11, "hinted", partition)
            assert refused.error_code == NOT_LEADER_OR_FOLLOWER
            assert refused.current_leader.leader_id == leader
            epoch = refused.current_leader.leader_epoch
            assert epoch >= 0
            assert endpoints == [endpoint]
            # Every advertised version that has the fields fills them.
            for version in range(10, produce_max + 1):
                refused, endpoints = produce(node, version, "hinted", partition)
                assert (refused.error_code, refused.current_leader, endpoints) == \
                    (NOT_LEADER_OR_FOLLOWER, kwire.LeaderHint(leader, epoch), [endpoint]), version
            for version in range(16, fetch_max + 1):
                refused, endpoints = fetch(node, version, tid, partition)
                assert refused.error_code == NOT_LEADER_OR_FOLLOWER and not refused.records
                assert refused.current_leader == kwire.LeaderHint(leader, epoch), version
                assert endpoints == [endpoint], version
            # Versions before the fields carry no hint (Produce v9, Fetch v15), as Kafka's brokers answer.
            refused, endpoints = produce(node, 9, "hinted", partition)
            assert refused.error_code == NOT_LEADER_OR_FOLLOWER
            assert refused.current_leader == kwire.LeaderHint() and endpoints == []
            refused, endpoints = fetch(node, 15, tid, partition)
            assert refused.error_code == NOT_LEADER_OR_FOLLOWER
            assert refused.current_leader == kwire.LeaderHint() and endpoints == []
        # The epoch named is the leader's: the leader serves it, and refuses a newer one.
        served, endpoints = fetch(cluster.nodes[leader], 16, tid, partition, epoch)
        assert served.error_code == 0 and served.high_watermark == 1 and served.records
        assert served.current_leader == kwire.LeaderHint() and endpoints == []
        ahead, _ = fetch(cluster.nodes[leader], 16, tid, partition, epoch + 1)
        assert ahead.error_code == UNKNOWN_LEADER_EPOCH


def test_hints_follow_a_leader_that_moves(cluster):
    create(cluster, "moved", 1, 3)
    leader = wait_for("a leader", lambda: (l := leaders(cluster.nodes[1], "moved")[0]) >= 1 and l)
    others = [i for i in (1, 2, 3) if i != leader]
    tid = topic_id(cluster.nodes[others[0]], "moved")
    before, _ = produce(cluster.nodes[others[0]], 11, "moved", 0)
    assert before.current_leader.leader_id == leader
    old_epoch = before.current_leader.leader_epoch
    # SIGTERM: the leader hands the partition to another in-sync replica before it exits.
    cluster.nodes[leader].kill(signal.SIGTERM)
    try:
        new_leader = wait_for("the leadership to move", lambda: (l := leaders(cluster.nodes[others[0]], "moved")[0]) in others and l)
        bystander = next(i for i in others if i != new_leader)
        hint, endpoints = produce(cluster.nodes[bystander], 11, "moved", 0)
        assert hint.error_code == NOT_LEADER_OR_FOLLOWER
        assert hint.current_leader.leader_id == new_leader
        assert hint.current_leader.leader_epoch > old_epoch
        assert endpoints == [kwire.NodeEndpoint(new_leader, HOST, cluster.nodes[new_leader].client_port, None)]
        # A fetch that names the old epoch at the new leader is fenced, and told the current one.
        fenced, endpoints = fetch(cluster.nodes[new_leader], 16, tid, 0, old_epoch)
        assert fenced.error_code == FENCED_LEADER_EPOCH
        assert fenced.current_leader == hint.current_leader
        assert endpoints == [kwire.NodeEndpoint(new_leader, HOST, cluster.nodes[new_leader].client_port, None)]
    finally:
        cluster.nodes[leader].start()
        cluster.wait_brokers({1, 2, 3})


class Captured(logging.Handler):
    """Keeps librdkafka's log lines (delivered through the client's logger)."""

    def __init__(self):
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record):
        self.lines.append(record.getMessage())


def test_librdkafka_produces_across_a_leader_move(cluster):
    """librdkafka (>= 2.6 follows KIP-951 hints) produces a stream while the
    leader is stopped with SIGTERM: every message is acknowledged exactly
    once, the client learns the new leader from the produce answer itself,
    and the new leader, holding the replicated log, serves every message
    once, in order.

    The hint reaches the client only if one of its produce requests arrives
    at the old leader between the handover and the exit; on a loaded machine
    the client may be descheduled through that window and reach the new
    leader through a Metadata refresh instead. Such a move proves nothing
    about hints (everything else is still checked), so the move is repeated,
    on a new topic, until the old leader has answered NOT_LEADER_OR_FOLLOWER
    at least once; whenever it did, the client must have followed the hint."""
    attempts = []
    for attempt in range(4):
        saw_not_leader = produce_across_a_leader_move(cluster, f"stream-{attempt}")
        attempts.append(saw_not_leader)
        if saw_not_leader:
            break
    assert any(attempts), f"the old leader never answered a produce with NOT_LEADER_OR_FOLLOWER in {len(attempts)} moves"


def produce_across_a_leader_move(cluster, topic: str) -> bool:
    """One move (see the test above); returns whether the old leader answered NOT_LEADER_OR_FOLLOWER."""
    create(cluster, topic, 1, 3)
    leader = wait_for("a leader", lambda: (l := leaders(cluster.nodes[1], topic)[0]) >= 1 and l)
    others = [i for i in (1, 2, 3) if i != leader]
    captured = Captured()
    log = logging.getLogger("librdkafka.kip951")
    log.addHandler(captured)
    log.setLevel(logging.DEBUG)
    producer = Producer({
        "bootstrap.servers": cluster.bootstrap,
        "acks": "all",
        # The new leader holds the replicated log and each producer's state, so
        # a batch retried after the move is recognised as a duplicate.
        "enable.idempotence": True,
        "max.in.flight.requests.per.connection": 1,
        "linger.ms": 5,
        "retries": 1000,
        "retry.backoff.ms": 50,
        "message.timeout.ms": 120000,
        "topic.metadata.refresh.interval.ms": 600000,
        "debug": "metadata,msg",
    }, logger=log)
    reports: dict[bytes, list[tuple[int, int]]] = {}
    errors = []

    def delivered(err, msg):
        if err is not None:
            errors.append(err)
        else:
            reports.setdefault(msg.value(), []).append((msg.partition(), msg.offset()))

    def send(i: int) -> None:
        producer.produce(topic, value=f"m{i:05d}".encode(), partition=0, on_delivery=delivered)

    # Before the move: 500 messages, acknowledged by the first leader.
    for i in range(500):
        send(i)
    assert producer.flush(60) == 0 and len(reports) == 500, errors[:5]
    # Across the move: a steady stream while the leader is stopped with SIGTERM
    # (it hands the partition over, then still answers until it exits), and on
    # until 300 more have been sent after it exited.
    stopper = threading.Thread(target=cluster.nodes[leader].kill, args=(signal.SIGTERM,))
    stopper.start()
    total, after_exit = 500, None
    while after_exit is None or total < after_exit + 300:
        assert total < 50_000, "the leader did not exit"
        send(total)
        total += 1
        producer.poll(0.002)
        if after_exit is None and not stopper.is_alive():
            after_exit = total
    try:
        assert producer.flush(120) == 0
        stopper.join()
        assert not errors, errors[:5]
        values = [f"m{i:05d}".encode() for i in range(total)]
        assert sorted(reports) == values, "every message acknowledged"
        assert all(len(r) == 1 for r in reports.values()), "no message acknowledged twice"
        new_leader = leaders(cluster.nodes[others[0]], topic)[0]
        assert new_leader in others
        # The client followed the produce answer's hint (KIP-951), not only a Metadata refresh.
        followed = [l for l in captured.lines if "METADATAUPDATE" in l and f"updated with leader {new_leader} " in l]
        saw_not_leader = any("NOT_LEADER" in l for l in captured.lines)
        assert followed or not saw_not_leader, "librdkafka applied no produce answer's CurrentLeader:\n" + "\n".join(
            l for l in captured.lines if "NOT_LEADER" in l or "METADATAUPDATE" in l or "leader" in l.lower())[-6000:]
        # Acknowledged in order, each once: the new leader continues the replicated log.
        offsets = [reports[v][0][1] for v in values]
        assert offsets == list(range(total))
        # The new leader serves every acknowledged message, once, in order.
        consumer = Consumer({"bootstrap.servers": cluster.bootstrap, "group.id": f"kip951-check-{topic}",
                             "enable.auto.commit": False})
        try:
            consumer.assign([TopicPartition(topic, 0, 0)])
            got = []
            wait_for("the new leader's messages",
                     lambda: got.extend(m.value() for m in consumer.consume(500, 1.0) if not m.error()) or len(got) >= total)
        finally:
            consumer.close()
        assert got == values
        return saw_not_leader or bool(followed)
    finally:
        log.removeHandler(captured)
        cluster.nodes[leader].start()
        cluster.wait_brokers({1, 2, 3})
