"""AlterPartitionReassignments / ListPartitionReassignments on a node alone,
through kafka-python's admin client: the node is the only broker there is, so
the only assignment it takes is its own (a no-op), any other broker is
Kafka's INVALID_REPLICA_ASSIGNMENT, cancelling is NO_REASSIGNMENT_IN_PROGRESS,
and nothing is ever listed. Moves between brokers are in compat/cluster."""

from __future__ import annotations

import uuid

import kafka.errors as Errors
from kafka import KafkaAdminClient, TopicPartition
from kafka.admin import NewTopic


def test_a_node_alone_reassigns_only_to_itself(bootstrap):
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=30000)
    try:
        name = f"reassign-alone-{uuid.uuid4().hex[:8]}"
        admin.create_topics([NewTopic(name, 1, 1)])
        node = admin.describe_cluster()["brokers"][0]["broker_id"]
        tp = TopicPartition(name, 0)
        assert admin.alter_partition_reassignments({tp: [node]}) == {tp: None}
        assert admin.alter_partition_reassignments({tp: [node + 1]}) == {
            tp: Errors.InvalidReplicationAssignmentError}
        assert admin.alter_partition_reassignments({tp: [node, node]}) == {
            tp: Errors.InvalidReplicationAssignmentError}
        assert admin.alter_partition_reassignments({tp: None}) == {tp: Errors.NoReassignmentInProgressError}
        missing = TopicPartition(f"{name}-missing", 0)
        assert admin.alter_partition_reassignments({missing: [node]}) == {
            missing: Errors.UnknownTopicOrPartitionError}
        assert admin.list_partition_reassignments() == {}
    finally:
        admin.close()
