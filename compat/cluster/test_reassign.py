"""Partition reassignment (KIP-455) on a three-node cluster, through
kafka-python's AlterPartitionReassignments / ListPartitionReassignments
(`KafkaAdminClient.alter_partition_reassignments` and
`list_partition_reassignments`) and confluent-kafka producers and consumers:

- an RF=1 topic with data moves from broker 1 to broker 2: every record is
  read back from broker 2, and broker 1 deletes its copy;
- RF grows 1 -> 3 (the new replicas catch up and join the ISR);
- RF shrinks 3 -> 2 removing the leader while an idempotent acks=all
  producer keeps writing: nothing lost, nothing duplicated;
- a reassignment that cannot finish (its new replica's broker is down) is
  listed with its adding replicas, then cancelled back to the original set;
- a move held back by a replication throttle (leader.replication.throttled.rate
  set with IncrementalAlterConfigs) holds only part of the data on its new
  replica while listed in progress, and is cancelled;
- a replica added to a partition whose log no longer starts at 0 (DeleteRecords
  moved its start) starts its log at the leader's log start;
- a broker that was down while its replica was moved away deletes its copy
  once it is back (unfenced);
- Kafka's errors: unknown broker, duplicate ids, empty list, unknown topic
  or partition, cancelling nothing.
- KIP-860 (AlterPartitionReassignments v1, which kafka-python encodes): with
  AllowReplicationFactorChange false, a target that changes the replication
  factor is refused with INVALID_REPLICATION_FACTOR and Kafka's message, one
  that keeps it goes through, and with the flag true the factor may grow.

Every wait is a deadline on an observed outcome."""

from __future__ import annotations

import signal
import threading

import kafka.errors as Errors
from confluent_kafka import Producer, TopicPartition as CTopicPartition
from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource, NewTopic, ResourceType
from kafka import KafkaAdminClient, TopicPartition
from kafka.protocol.admin import AlterPartitionReassignmentsRequest
from kafka.protocol.consumer import ListOffsetsRequest

from conftest import wait_for
from test_replication import consume_all, produce


def kadmin(cluster, node_id: int = 1) -> KafkaAdminClient:
    return KafkaAdminClient(bootstrap_servers=cluster.nodes[node_id].bootstrap, request_timeout_ms=30000)


def create(cluster, name: str, assignment: list[int], configs: dict[str, str] | None = None) -> None:
    admin = cluster.nodes[1].admin()
    futures = admin.create_topics([NewTopic(name, num_partitions=1, replica_assignment=[assignment], config=configs or {})],
                                  operation_timeout=30)
    futures[name].result(timeout=60)


def partition(cluster, name: str, via: list[int] | None = None):
    for node_id in via or [1, 2, 3]:
        try:
            topic = cluster.nodes[node_id].metadata().topics.get(name)
        except Exception:  # noqa: BLE001 - a node that does not answer: ask the next
            continue
        if topic is not None and 0 in topic.partitions:
            return topic.partitions[0]
    return None


def settled(cluster, admin: KafkaAdminClient, name: str, replicas: list[int], isr: set[int],
            via: list[int] | None = None) -> None:
    """Waits until no reassignment of `name` is listed and partition 0 has
    exactly `replicas` and ISR `isr`."""
    tp = TopicPartition(name, 0)

    def done():
        if tp in admin.list_partition_reassignments([tp]):
            return False
        p = partition(cluster, name, via)
        return p is not None and list(p.replicas) == replicas and set(p.isrs) == isr and p.leader in replicas

    wait_for(f"{name} on {replicas} with ISR {sorted(isr)}", done, deadline=90)


def test_an_rf1_topic_moves_to_another_broker_with_every_record(cluster):
    name = "move-me"
    create(cluster, name, [1])
    values = [f"v-{i}" for i in range(500)]
    assert produce(cluster.bootstrap, name, values) == list(range(500))
    assert (cluster.nodes[1].data_dir / f"{name}-0").is_dir()
    assert not (cluster.nodes[2].data_dir / f"{name}-0").exists()

    admin = kadmin(cluster)
    try:
        tp = TopicPartition(name, 0)
        assert admin.alter_partition_reassignments({tp: [2]}) == {tp: None}
        settled(cluster, admin, name, [2], {2})
    finally:
        admin.close()
    assert partition(cluster, name).leader == 2
    # Broker 1 deletes its copy; broker 2 holds every record.
    wait_for("broker 1 to delete its copy", lambda: not (cluster.nodes[1].data_dir / f"{name}-0").exists())
    assert (cluster.nodes[2].data_dir / f"{name}-0").is_dir()
    assert consume_all(cluster.nodes[2].bootstrap, name, len(values)) == values


def test_a_new_replica_starts_at_the_leaders_log_start(cluster):
    name = "moved-start"
    create(cluster, name, [1], {"segment.bytes": "16384"})
    values = [f"{i:04d}" + "y" * 1000 for i in range(300)]
    # Batches well under a segment, so there are many segments to delete.
    assert produce(cluster.bootstrap, name, values, **{"batch.size": 8000}) == list(range(300))
    deleted = cluster.nodes[1].admin().delete_records([CTopicPartition(name, 0, 150)])
    assert list(deleted.values())[0].result(60).low_watermark == 150
    # What broker 1 serves from its log start on (the batch holding offset 150 may start before it).
    before = consume_all(cluster.nodes[1].bootstrap, name, 150)
    assert before[-150:] == values[150:]
    admin = kadmin(cluster)
    try:
        tp = TopicPartition(name, 0)
        assert admin.alter_partition_reassignments({tp: [2]}) == {tp: None}
        settled(cluster, admin, name, [2], {2})
    finally:
        admin.close()
    assert consume_all(cluster.nodes[2].bootstrap, name, len(before)) == before


def test_the_replication_factor_grows_from_one_to_three(cluster):
    name = "grow-me"
    create(cluster, name, [3])
    values = [f"g-{i}" for i in range(200)]
    assert produce(cluster.bootstrap, name, values) == list(range(200))
    admin = kadmin(cluster, 2)
    try:
        tp = TopicPartition(name, 0)
        assert admin.alter_partition_reassignments({tp: [3, 1, 2]}) == {tp: None}
        settled(cluster, admin, name, [3, 1, 2], {1, 2, 3})
    finally:
        admin.close()
    assert partition(cluster, name).leader == 3
    # Kafka's debugging replica id (-2): every replica answers ListOffsets
    # with its own log end offset; a consumer's (-1) only the leader.
    admin = kadmin(cluster)
    try:
        _Topic = ListOffsetsRequest.ListOffsetsTopic

        def latest(node_id: int, replica_id: int):
            request = ListOffsetsRequest(replica_id=replica_id, isolation_level=0, topics=[
                _Topic(name=name, partitions=[_Topic.ListOffsetsPartition(partition_index=0, timestamp=-1)])])
            (topic,) = admin._manager.run(admin._manager.send, request, node_id).topics
            (answer,) = topic.partitions
            return answer.error_code, answer.offset

        for node_id in (1, 2, 3):
            wait_for(f"broker {node_id}'s replica to end at 200", lambda node_id=node_id: latest(node_id, -2) == (0, 200))
        assert latest(1, -1)[0] == Errors.NotLeaderForPartitionError.errno
    finally:
        admin.close()
    # Each new replica holds the leader's records.
    for node_id in (1, 2):
        wait_for(f"broker {node_id} to hold a copy",
                 lambda node_id=node_id: sum(f.stat().st_size for f in
                                             (cluster.nodes[node_id].data_dir / f"{name}-0").glob("*.log")) > 0)
    assert consume_all(cluster.bootstrap, name, len(values)) == values


def test_shrinking_away_the_leader_keeps_an_idempotent_producer_going_without_loss(cluster):
    name = "shrink-me"
    create(cluster, name, [1, 2, 3], {"min.insync.replicas": "1"})
    admin = kadmin(cluster, 3)
    p = partition(cluster, name)
    wait_for(f"{name} fully in sync", lambda: set(partition(cluster, name).isrs) == {1, 2, 3}, deadline=90)
    leader = p.leader
    keep = [b for b in (1, 2, 3) if b != leader]

    total = 3000
    reports: dict[int, object] = {}
    producer = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all", "enable.idempotence": True,
                         "linger.ms": 2, "message.timeout.ms": 120000})
    started = threading.Event()

    def run():
        for i in range(total):
            producer.produce(name, value=f"s-{i}".encode(), partition=0,
                             on_delivery=lambda err, msg, i=i: reports.__setitem__(i, err if err else msg.offset()))
            producer.poll(0)
            if i == total // 4:
                started.set()
        producer.flush(120)

    writer = threading.Thread(target=run)
    writer.start()
    try:
        assert started.wait(60)
        tp = TopicPartition(name, 0)
        assert admin.alter_partition_reassignments({tp: keep}) == {tp: None}
        settled(cluster, admin, name, keep, set(keep))
    finally:
        writer.join(180)
        admin.close()
    assert partition(cluster, name).leader in keep
    failed = [r for r in reports.values() if not isinstance(r, int)]
    assert len(reports) == total and not failed, failed[:3]
    assert consume_all(cluster.bootstrap, name, total) == [f"s-{i}" for i in range(total)]


def test_an_unfinishable_reassignment_is_listed_and_cancelled(cluster):
    name = "cancel-me"
    create(cluster, name, [1])
    assert produce(cluster.bootstrap, name, ["x"]) == [0]
    # A broker that is down but still registered: a replica there never
    # catches up. Not the active controller (clients would keep asking it).
    down = 3 if cluster.controller(1) != 3 else 2
    other = 5 - down
    cluster.nodes[down].kill(signal.SIGKILL)
    cluster.wait_brokers({1, other}, via=[1, other])
    admin = kadmin(cluster)
    tp = TopicPartition(name, 0)
    try:
        assert admin.alter_partition_reassignments({tp: [1, down]}) == {tp: None}
        listed = admin.list_partition_reassignments()
        assert listed[tp] == {"replicas": [1, down], "adding_replicas": [down], "removing_replicas": []}, listed
        assert admin.list_partition_reassignments({name: [0]})[tp]["adding_replicas"] == [down]
        # Replaced by a move that also drops 1: 1 is now removing.
        assert admin.alter_partition_reassignments({tp: [other, down]}) == {tp: None}
        listed = admin.list_partition_reassignments([tp])
        assert listed[tp] == {"replicas": [other, down, 1], "adding_replicas": [other, down],
                              "removing_replicas": [1]}, listed
        assert admin.alter_partition_reassignments({tp: None}) == {tp: None}
        assert tp not in admin.list_partition_reassignments()
        wait_for("the original replicas back in every node's metadata", lambda: all(
            (p := partition(cluster, name, [i])) is not None
            and (list(p.replicas), list(p.isrs), p.leader) == ([1], [1], 1) for i in (1, other)))
    finally:
        admin.close()
        cluster.nodes[down].start()
        cluster.wait_brokers({1, 2, 3})
    # The other broker fetched for a while as an adding replica: its copy is gone again.
    wait_for(f"broker {other} to delete its copy",
             lambda: not (cluster.nodes[other].data_dir / f"{name}-0").exists())


def test_a_copy_moved_away_while_its_broker_was_down_is_deleted_when_it_returns(cluster):
    name = "moved-while-down"
    down = 3 if cluster.controller(1) != 3 else 2
    other = 5 - down
    create(cluster, name, [1, down])
    values = [f"d-{i}" for i in range(100)]
    assert produce(cluster.bootstrap, name, values) == list(range(100))
    copy = cluster.nodes[down].data_dir / f"{name}-0"
    wait_for(f"broker {down} to hold a copy", lambda: sum(f.stat().st_size for f in copy.glob("*.log")) > 0)
    cluster.nodes[down].kill(signal.SIGKILL)
    try:
        cluster.wait_brokers({1, other}, via=[1, other])
        admin = kadmin(cluster)
        try:
            tp = TopicPartition(name, 0)
            assert admin.alter_partition_reassignments({tp: [1, other]}) == {tp: None}
            settled(cluster, admin, name, [1, other], {1, other}, via=[1, other])
        finally:
            admin.close()
        assert copy.is_dir(), "the broker is down: its copy is still there"
    finally:
        cluster.nodes[down].start()
        cluster.wait_brokers({1, 2, 3})
    wait_for(f"broker {down} to delete its stray copy", lambda: not copy.exists())
    assert consume_all(cluster.nodes[other].bootstrap, name, len(values)) == values


def alter_configs(cluster, kind, name: str, entries: dict[str, str | None]) -> None:
    """IncrementalAlterConfigs through confluent-kafka: SET each value, DELETE each None."""
    res = ConfigResource(kind, name, incremental_configs=[
        ConfigEntry(k, v or "", incremental_operation=AlterConfigOpType.SET if v is not None
                    else AlterConfigOpType.DELETE) for k, v in entries.items()])
    assert cluster.nodes[1].admin().incremental_alter_configs([res])[res].result(60) is None


def describe(cluster, kind, name: str) -> dict[str, str]:
    res = ConfigResource(kind, name)
    return {k: v.value for k, v in cluster.nodes[1].admin().describe_configs([res])[res].result(60).items()}


def test_a_throttled_move_holds_back_and_is_cancelled(cluster):
    name = "throttle-me"
    create(cluster, name, [1])
    # 3 MB in 10 kB records: more than one fetch (replica.fetch.max.bytes, 1 MB).
    values = [f"{i:06d}" + "x" * 10_000 for i in range(300)]
    assert produce(cluster.bootstrap, name, values) == list(range(300))
    leader_copy = sum(f.stat().st_size for f in (cluster.nodes[1].data_dir / f"{name}-0").glob("*.log"))

    # 1 byte/s for broker 2's new replica, on the leader (broker 1).
    alter_configs(cluster, ResourceType.BROKER, "1", {"leader.replication.throttled.rate": "1"})
    alter_configs(cluster, ResourceType.TOPIC, name, {"leader.replication.throttled.replicas": "0:2"})
    assert describe(cluster, ResourceType.BROKER, "1")["leader.replication.throttled.rate"] == "1"
    admin = kadmin(cluster)
    tp = TopicPartition(name, 0)
    copy = cluster.nodes[2].data_dir / f"{name}-0"
    try:
        assert admin.alter_partition_reassignments({tp: [1, 2]}) == {tp: None}
        # The first fetch passes (the quota is charged after it); the next ones wait.
        wait_for("broker 2 to fetch a first part",
                 lambda: sum(f.stat().st_size for f in copy.glob("*.log")) > 0)
        fetched = sum(f.stat().st_size for f in copy.glob("*.log"))
        assert 0 < fetched < leader_copy, (fetched, leader_copy)
        assert admin.list_partition_reassignments([tp])[tp]["adding_replicas"] == [2]
        assert admin.alter_partition_reassignments({tp: None}) == {tp: None}
        assert admin.list_partition_reassignments() == {}
    finally:
        admin.close()
        alter_configs(cluster, ResourceType.BROKER, "1", {"leader.replication.throttled.rate": None})
        alter_configs(cluster, ResourceType.TOPIC, name, {"leader.replication.throttled.replicas": None})
    wait_for("broker 2 to delete its partial copy", lambda: not copy.exists())
    assert list(partition(cluster, name, [1]).replicas) == [1]


def test_refusals_are_kafkas(cluster):
    name = "refuse-me"
    create(cluster, name, [1, 2])
    admin = kadmin(cluster)
    tp = TopicPartition(name, 0)
    try:
        assert admin.alter_partition_reassignments({tp: [1, 99]}) == {tp: Errors.InvalidReplicationAssignmentError}
        assert admin.alter_partition_reassignments({tp: [2, 2]}) == {tp: Errors.InvalidReplicationAssignmentError}
        assert admin.alter_partition_reassignments({tp: None}) == {tp: Errors.NoReassignmentInProgressError}
        missing = TopicPartition("no-such-topic", 0)
        assert admin.alter_partition_reassignments({missing: [1]}) == {missing: Errors.UnknownTopicOrPartitionError}
        beyond = TopicPartition(name, 7)
        assert admin.alter_partition_reassignments({beyond: [1]}) == {beyond: Errors.UnknownTopicOrPartitionError}
        # kafka-python refuses an empty list itself; the request is sent as built.
        _Topic = AlterPartitionReassignmentsRequest.ReassignableTopic
        request = AlterPartitionReassignmentsRequest(
            timeout_ms=30000,
            topics=[_Topic(name=name, partitions=[_Topic.ReassignablePartition(partition_index=0, replicas=[])])],
        )
        response = admin._manager.run(admin._send_request_to_controller, request)
        (topic,) = response.responses
        (answer,) = topic.partitions
        assert answer.error_code == Errors.InvalidReplicationAssignmentError.errno, answer
        assert "empty" in answer.error_message
        # Nothing moved; nothing is listed.
        assert admin.list_partition_reassignments() == {}
        assert list(partition(cluster, name).replicas) == [1, 2]
    finally:
        admin.close()


def test_a_reassignment_that_must_keep_the_replication_factor(cluster):
    name = "keep-rf"
    create(cluster, name, [1, 2])
    admin = kadmin(cluster)
    _Topic = AlterPartitionReassignmentsRequest.ReassignableTopic

    def alter(replicas: list[int], allow: bool):
        request = AlterPartitionReassignmentsRequest(
            timeout_ms=30000, allow_replication_factor_change=allow, version=1,
            topics=[_Topic(name=name, partitions=[_Topic.ReassignablePartition(partition_index=0, replicas=replicas)])])
        response = admin._manager.run(admin._send_request_to_controller, request)
        assert response.allow_replication_factor_change is allow, response
        (topic,) = response.responses
        (answer,) = topic.partitions
        return answer.error_code, answer.error_message

    try:
        assert alter([1, 2, 3], allow=False) == \
            (Errors.InvalidReplicationFactorError.errno, "The replication factor is changed from 2 to 3")
        assert alter([3], allow=False) == \
            (Errors.InvalidReplicationFactorError.errno, "The replication factor is changed from 2 to 1")
        assert admin.list_partition_reassignments() == {}
        assert list(partition(cluster, name).replicas) == [1, 2], "nothing moved"
        # The same factor on other brokers is a move like any other.
        assert alter([2, 3], allow=False) == (0, None)
        settled(cluster, admin, name, [2, 3], {2, 3})
        assert alter([1, 2, 3], allow=True) == (0, None)
        settled(cluster, admin, name, [1, 2, 3], {1, 2, 3})
    finally:
        admin.close()
