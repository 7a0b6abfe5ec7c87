"""DescribeQuorum (55) and DescribeCluster (60) through `kio`, a codec
generated from Apache Kafka's own message JSON (the request and response
classes of each version, field by field), written by people outside this
project.

No Python Kafka client has DescribeQuorum, so this is the check that our
answers are what Kafka's schema says, byte for byte: the request is encoded
by kio, the response decoded by kio, and every byte of the response body must
be consumed (a field too many, too few or in the wrong order fails the
decode or leaves bytes over). Only the 4-byte size prefix of the frame is
written here.
"""

from __future__ import annotations

import datetime
import importlib
import io
import itertools
import socket
import struct

from kio.schema.request_header.v2.header import RequestHeader
from kio.schema.response_header.v1.header import ResponseHeader
from kio.serial import entity_reader, entity_writer
from kio.static.primitive import i16, i32, i32Timedelta

METADATA_TOPIC = "__cluster_metadata"
_correlation = itertools.count(1)


def _schema(api: str, version: int, kind: str):
    return importlib.import_module(f"kio.schema.{api}.v{version}.{kind}")


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError(f"connection closed after {len(data)} of {n} bytes")
        data += chunk
    return data


def call(host: str, port: int, request, response_type, timeout: float = 30.0):
    """Sends one request (a kio entity) and returns the decoded response;
    fails unless the response body is consumed exactly."""
    correlation_id = next(_correlation)
    buf = io.BytesIO()
    header = RequestHeader(request_api_key=i16(request.__api_key__), request_api_version=i16(request.__version__),
                           correlation_id=i32(correlation_id), client_id="kio-compat")
    entity_writer(RequestHeader)(buf, header)
    entity_writer(type(request))(buf, request)
    payload = buf.getvalue()
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(struct.pack(">i", len(payload)) + payload)
        (size,) = struct.unpack(">i", _recv_exact(sock, 4))
        frame = _recv_exact(sock, size)
    response_header, used = entity_reader(ResponseHeader)(frame, 0)
    assert response_header.correlation_id == correlation_id, response_header
    response, body_used = entity_reader(response_type)(frame, used)
    left = len(frame) - used - body_used
    assert left == 0, f"{left} bytes left after decoding {response_type.__name__} v{request.__version__}"
    return response


def describe_quorum(host: str, port: int, version: int, topics=((METADATA_TOPIC, (0,)),)):
    """DescribeQuorum at `version` (0-2) for the given (topic, partitions)."""
    rq = _schema("describe_quorum", version, "request")
    rs = _schema("describe_quorum", version, "response")
    request = rq.DescribeQuorumRequest(topics=tuple(
        rq.TopicData(topic_name=name, partitions=tuple(rq.PartitionData(partition_index=i32(p)) for p in parts))
        for name, parts in topics))
    return call(host, port, request, rs.DescribeQuorumResponse)


def create_topics(host: str, port: int, topics, version: int = 5, timeout_ms: int = 30000):
    """CreateTopics at `version` (5-7) for (name, partitions, replication factor) triples."""
    rq = _schema("create_topics", version, "request")
    rs = _schema("create_topics", version, "response")
    request = rq.CreateTopicsRequest(
        topics=tuple(rq.CreatableTopic(name=name, num_partitions=i32(partitions), replication_factor=i16(rf),
                                       assignments=(), configs=()) for name, partitions, rf in topics),
        timeout=i32Timedelta.parse(datetime.timedelta(milliseconds=timeout_ms)),
        validate_only=False)
    return call(host, port, request, rs.CreateTopicsResponse)


def describe_cluster(host: str, port: int, version: int = 2, include_fenced: bool = True):
    """DescribeCluster at `version` (0-2); fenced brokers asked for from v2."""
    rq = _schema("describe_cluster", version, "request")
    rs = _schema("describe_cluster", version, "response")
    fields = {"include_cluster_authorized_operations": False}
    if version >= 2:
        fields["include_fenced_brokers"] = include_fenced
    return call(host, port, rq.DescribeClusterRequest(**fields), rs.DescribeClusterResponse)
