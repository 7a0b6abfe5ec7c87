"""A small hand-written Kafka wire-protocol encoder/decoder.

Used by the raw-socket tests (test_bad_input.py) and by the broker readiness
probe in conftest.py. It deliberately depends on no Kafka library, so it can
send byte sequences a real client never would.

Only the handful of requests the tests need are implemented:

* ApiVersions v0 and v3 (flexible, request header v2; response header is
  always v0 for ApiVersions)
* Metadata v1 (non-flexible)
* Produce v7 (non-flexible, magic-2 record batches)
* Produce v11 and Fetch v16 (flexible), with the KIP-951 leader hints they
  answer (current_leader per partition, node_endpoints per response); Produce
  v9-v12 and Fetch v15-v17 have the same layouts
* CreateTopics v2 (non-flexible)
* ListOffsets v1 (non-flexible)

Request header v1 = api_key int16, api_version int16, correlation_id int32,
client_id nullable string (int16 length). Request header v2 = v1 + tagged
fields. Response header v0 = correlation_id int32 (CONTRACT A.1).
"""

from __future__ import annotations

import itertools
import socket
import struct
import time
from dataclasses import dataclass, field

# --------------------------------------------------------------------------
# API keys used here
# --------------------------------------------------------------------------
PRODUCE = 0
FETCH = 1
LIST_OFFSETS = 2
METADATA = 3
API_VERSIONS = 18
CREATE_TOPICS = 19

CLIENT_ID = "tributary-compat-raw"

# --------------------------------------------------------------------------
# Primitive encoders
# --------------------------------------------------------------------------


def i8(v: int) -> bytes:
    return struct.pack(">b", v)


def i16(v: int) -> bytes:
    return struct.pack(">h", v)


def i32(v: int) -> bytes:
    return struct.pack(">i", v)


def i64(v: int) -> bytes:
    return struct.pack(">q", v)


def u32(v: int) -> bytes:
    return struct.pack(">I", v)


def boolean(v: bool) -> bytes:
    return b"\x01" if v else b"\x00"


def string(s: str | None) -> bytes:
    """STRING / NULLABLE_STRING: int16 length (-1 = null) + UTF-8 bytes."""
    if s is None:
        return i16(-1)
    b = s.encode("utf-8")
    return i16(len(b)) + b


def nbytes(b: bytes | None) -> bytes:
    """BYTES / NULLABLE_BYTES / RECORDS: int32 length (-1 = null) + bytes."""
    if b is None:
        return i32(-1)
    return i32(len(b)) + b


def array(items, enc) -> bytes:
    """ARRAY: int32 count (-1 = null) + elements."""
    if items is None:
        return i32(-1)
    items = list(items)
    return i32(len(items)) + b"".join(enc(x) for x in items)


def uvarint(n: int) -> bytes:
    if n < 0:
        raise ValueError("uvarint must be non-negative")
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def varint(n: int) -> bytes:
    """Zig-zag signed varint/varlong (as used inside records)."""
    return uvarint((n << 1) ^ (n >> 63))


def compact_string(s: str | None) -> bytes:
    if s is None:
        return uvarint(0)
    b = s.encode("utf-8")
    return uvarint(len(b) + 1) + b


def compact_array(items, enc) -> bytes:
    if items is None:
        return uvarint(0)
    items = list(items)
    return uvarint(len(items) + 1) + b"".join(enc(x) for x in items)


EMPTY_TAGS = uvarint(0)


# --------------------------------------------------------------------------
# Decoder
# --------------------------------------------------------------------------


class DecodeError(Exception):
    pass


class Reader:
    def __init__(self, data: bytes, pos: int = 0):
        self.data = data
        self.pos = pos

    def _take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise DecodeError(
                f"read of {n} bytes at {self.pos} past end of {len(self.data)}-byte buffer"
            )
        b = self.data[self.pos : self.pos + n]
        self.pos += n
        return b

    def remaining(self) -> int:
        return len(self.data) - self.pos

    def i8(self) -> int:
        return struct.unpack(">b", self._take(1))[0]

    def i16(self) -> int:
        return struct.unpack(">h", self._take(2))[0]

    def i32(self) -> int:
        return struct.unpack(">i", self._take(4))[0]

    def i64(self) -> int:
        return struct.unpack(">q", self._take(8))[0]

    def boolean(self) -> bool:
        v = self.i8()
        if v not in (0, 1):
            raise DecodeError(f"boolean byte {v}")
        return bool(v)

    def string(self) -> str | None:
        n = self.i16()
        if n == -1:
            return None
        if n < -1:
            raise DecodeError(f"string length {n}")
        return self._take(n).decode("utf-8")

    def bytes_(self) -> bytes | None:
        n = self.i32()
        if n == -1:
            return None
        if n < -1:
            raise DecodeError(f"bytes length {n}")
        return self._take(n)

    def array(self, dec):
        n = self.i32()
        if n == -1:
            return None
        if n < -1 or n > self.remaining():
            raise DecodeError(f"array count {n} with {self.remaining()} bytes left")
        return [dec(self) for _ in range(n)]

    def uvarint(self) -> int:
        shift = 0
        result = 0
        while True:
            b = self._take(1)[0]
            result |= (b & 0x7F) << shift
            if not b & 0x80:
                return result
            shift += 7
            if shift > 63:
                raise DecodeError("uvarint too long")

    def varint(self) -> int:
        n = self.uvarint()
        return (n >> 1) ^ -(n & 1)

    def compact_string(self) -> str | None:
        n = self.uvarint()
        if n == 0:
            return None
        return self._take(n - 1).decode("utf-8")

    def compact_array(self, dec):
        n = self.uvarint()
        if n == 0:
            return None
        if n - 1 > self.remaining():
            raise DecodeError(f"compact array count {n - 1} with {self.remaining()} bytes left")
        return [dec(self) for _ in range(n - 1)]

    def tagged_fields(self) -> dict[int, bytes]:
        tags = {}
        for _ in range(self.uvarint()):
            tag = self.uvarint()
            size = self.uvarint()
            tags[tag] = self._take(size)
        return tags


# --------------------------------------------------------------------------
# Framing and headers
# --------------------------------------------------------------------------


def request_header(api_key: int, api_version: int, correlation_id: int,
                   client_id: str | None = CLIENT_ID, flexible: bool = False) -> bytes:
    h = i16(api_key) + i16(api_version) + i32(correlation_id) + string(client_id)
    if flexible:
        h += EMPTY_TAGS
    return h


def frame(payload: bytes) -> bytes:
    return i32(len(payload)) + payload


class ConnectionClosed(Exception):
    pass


_correlation = itertools.count(1000)


def next_correlation_id() -> int:
    return next(_correlation) & 0x7FFFFFFF


class Connection:
    """A blocking TCP connection that speaks Kafka framing."""

    def __init__(self, host: str, port: int, timeout: float = 10.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.timeout = timeout

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send_raw(self, data: bytes):
        self.sock.sendall(data)

    def send_request(self, api_key: int, api_version: int, body: bytes,
                     flexible: bool = False, correlation_id: int | None = None,
                     client_id: str | None = CLIENT_ID) -> int:
        if correlation_id is None:
            correlation_id = next_correlation_id()
        payload = request_header(api_key, api_version, correlation_id, client_id, flexible) + body
        self.send_raw(frame(payload))
        return correlation_id

    def _recv_exact(self, n: int) -> bytes:
        buf = bytearray()
        while len(buf) < n:
            try:
                chunk = self.sock.recv(min(n - len(buf), 1 << 20))
            except (ConnectionResetError, BrokenPipeError) as e:
                raise ConnectionClosed(str(e)) from e
            if not chunk:
                raise ConnectionClosed(f"peer closed after {len(buf)} of {n} bytes")
            buf += chunk
        return bytes(buf)

    def recv_frame(self) -> bytes:
        size = struct.unpack(">i", self._recv_exact(4))[0]
        if size < 0 or size > 256 * 1024 * 1024:
            raise DecodeError(f"response frame size {size}")
        return self._recv_exact(size)

    def recv_response(self, correlation_id: int, flexible_header: bool = False) -> Reader:
        """Read one response frame, check its correlation id, return a Reader
        positioned at the start of the body."""
        r = Reader(self.recv_frame())
        got = r.i32()
        if got != correlation_id:
            raise DecodeError(f"correlation id {got}, expected {correlation_id}")
        if flexible_header:
            r.tagged_fields()
        return r

    def wait_closed(self, timeout: float = 10.0) -> bool:
        """True if the peer closes (EOF or reset) within `timeout` seconds.

        Any bytes the peer sends before closing are read and discarded."""
        deadline = time.monotonic() + timeout
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.sock.settimeout(left)
                try:
                    chunk = self.sock.recv(65536)
                except socket.timeout:
                    return False
                if not chunk:
                    return True
        except (ConnectionResetError, BrokenPipeError, ConnectionAbortedError):
            return True
        finally:
            self.sock.settimeout(self.timeout)


def free_port(host: str = "127.0.0.1") -> int:
    """A port that was free a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def parse_hostport(bootstrap: str) -> tuple[str, int]:
    first = bootstrap.split(",")[0].strip()
    host, _, port = first.rpartition(":")
    return host.strip("[]"), int(port)


# --------------------------------------------------------------------------
# ApiVersions (key 18)
# --------------------------------------------------------------------------


@dataclass
class ApiVersionsResponse:
    error_code: int
    api_keys: dict[int, tuple[int, int]]
    throttle_time_ms: int | None = None
    tags: dict = field(default_factory=dict)


def api_versions_v0_body() -> bytes:
    return b""


def api_versions_v3_body(software_name: str | None, software_version: str | None) -> bytes:
    return compact_string(software_name) + compact_string(software_version) + EMPTY_TAGS


def parse_api_versions_v0(r: Reader) -> ApiVersionsResponse:
    error_code = r.i16()
    keys = r.array(lambda rr: (rr.i16(), rr.i16(), rr.i16()))
    return ApiVersionsResponse(error_code, {k: (lo, hi) for k, lo, hi in keys or []})


def parse_api_versions_v3(r: Reader) -> ApiVersionsResponse:
    error_code = r.i16()

    def key(rr):
        k, lo, hi = rr.i16(), rr.i16(), rr.i16()
        rr.tagged_fields()
        return k, lo, hi

    keys = r.compact_array(key)
    throttle = r.i32()
    tags = r.tagged_fields()
    return ApiVersionsResponse(error_code, {k: (lo, hi) for k, lo, hi in keys or []}, throttle, tags)


# --------------------------------------------------------------------------
# Metadata v1 (key 3)
# --------------------------------------------------------------------------


@dataclass
class MetadataV1:
    brokers: list[tuple[int, str, int, str | None]]
    controller_id: int
    topics: list[dict]


def metadata_v1_body(topics: list[str] | None) -> bytes:
    return array(topics, string)


def parse_metadata_v1(r: Reader) -> MetadataV1:
    brokers = r.array(lambda rr: (rr.i32(), rr.string(), rr.i32(), rr.string()))
    controller = r.i32()

    def partition(rr):
        return {
            "error_code": rr.i16(),
            "partition": rr.i32(),
            "leader": rr.i32(),
            "replicas": rr.array(lambda x: x.i32()),
            "isr": rr.array(lambda x: x.i32()),
        }

    def topic(rr):
        return {
            "error_code": rr.i16(),
            "name": rr.string(),
            "is_internal": rr.boolean(),
            "partitions": rr.array(partition),
        }

    topics = r.array(topic)
    return MetadataV1(brokers or [], controller, topics or [])


def metadata_v1(host: str, port: int, topics: list[str] | None = None,
                timeout: float = 10.0) -> MetadataV1:
    """Open a fresh connection, send Metadata v1, parse and return the reply."""
    # Metadata v1+: a null array asks for every topic; an empty one asks for none.
    with Connection(host, port, timeout=timeout) as c:
        cid = c.send_request(METADATA, 1, metadata_v1_body(topics))
        r = c.recv_response(cid)
        md = parse_metadata_v1(r)
        if r.remaining():
            raise DecodeError(f"{r.remaining()} trailing bytes after Metadata v1 response")
        return md


# --------------------------------------------------------------------------
# CreateTopics v2 (key 19)
# --------------------------------------------------------------------------


def create_topics_v2_body(topics: list[dict], timeout_ms: int = 30000,
                          validate_only: bool = False) -> bytes:
    """topics: [{name, num_partitions, replication_factor, configs: {k: v}}]"""

    def topic(t):
        return (
            string(t["name"])
            + i32(t.get("num_partitions", -1))
            + i16(t.get("replication_factor", -1))
            + array([], lambda a: b"")  # no manual assignments
            + array(sorted(t.get("configs", {}).items()), lambda kv: string(kv[0]) + string(kv[1]))
        )

    return array(topics, topic) + i32(timeout_ms) + boolean(validate_only)


def parse_create_topics_v2(r: Reader) -> dict[str, tuple[int, str | None]]:
    r.i32()  # throttle_time_ms
    topics = r.array(lambda rr: (rr.string(), rr.i16(), rr.string()))
    return {name: (err, msg) for name, err, msg in topics or []}


# --------------------------------------------------------------------------
# ListOffsets v1 (key 2)
# --------------------------------------------------------------------------

EARLIEST = -2
LATEST = -1


def list_offsets_v1_body(topic: str, partition: int, timestamp: int) -> bytes:
    return i32(-1) + array([topic], lambda t: string(t) + array(
        [partition], lambda p: i32(p) + i64(timestamp)))


def parse_list_offsets_v1(r: Reader) -> dict[tuple[str, int], tuple[int, int, int]]:
    """-> {(topic, partition): (error_code, timestamp, offset)}"""
    out = {}
    for name, parts in r.array(lambda rr: (rr.string(), rr.array(
            lambda x: (x.i32(), x.i16(), x.i64(), x.i64())))) or []:
        for p, err, ts, off in parts or []:
            out[(name, p)] = (err, ts, off)
    return out


# --------------------------------------------------------------------------
# Produce v7 (key 0) and record batches (magic 2)
# --------------------------------------------------------------------------


def produce_v7_body(topic: str, partition: int, records: bytes | None, acks: int = -1,
                    timeout_ms: int = 30000, transactional_id: str | None = None) -> bytes:
    return (
        string(transactional_id)
        + i16(acks)
        + i32(timeout_ms)
        + array([topic], lambda t: string(t) + array(
            [partition], lambda p: i32(p) + nbytes(records)))
    )


@dataclass
class ProducePartitionResponse:
    error_code: int
    base_offset: int
    log_append_time: int
    log_start_offset: int


def parse_produce_v7(r: Reader) -> dict[tuple[str, int], ProducePartitionResponse]:
    out = {}
    topics = r.array(lambda rr: (rr.string(), rr.array(
        lambda x: (x.i32(), ProducePartitionResponse(x.i16(), x.i64(), x.i64(), x.i64())))))
    for name, parts in topics or []:
        for p, resp in parts or []:
            out[(name, p)] = resp
    r.i32()  # throttle_time_ms
    return out


# CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), table driven.
def _make_crc32c_table():
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC32C_TABLE = _make_crc32c_table()


def crc32c(data: bytes, crc: int = 0) -> int:
    crc ^= 0xFFFFFFFF
    t = _CRC32C_TABLE
    for b in data:
        crc = t[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


assert crc32c(b"123456789") == 0xE3069283, "crc32c self-test failed"


@dataclass
class Record:
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes | None]] = field(default_factory=list)
    timestamp_delta: int = 0


def encode_record(rec: Record, offset_delta: int) -> bytes:
    body = (
        i8(0)
        + varint(rec.timestamp_delta)
        + varint(offset_delta)
        + (varint(-1) if rec.key is None else varint(len(rec.key)) + rec.key)
        + (varint(-1) if rec.value is None else varint(len(rec.value)) + rec.value)
        + varint(len(rec.headers))
    )
    for hk, hv in rec.headers:
        kb = hk.encode("utf-8")
        body += varint(len(kb)) + kb
        body += varint(-1) if hv is None else varint(len(hv)) + hv
    return varint(len(body)) + body


def record_batch(records: list[Record], base_timestamp: int | None = None, *,
                 magic: int = 2, attributes: int = 0, producer_id: int = -1,
                 producer_epoch: int = -1, base_sequence: int = -1,
                 records_count: int | None = None, corrupt_crc: bool = False,
                 batch_length_delta: int = 0) -> bytes:
    """Encode an uncompressed record batch (CONTRACT A.6).

    records_count, corrupt_crc and batch_length_delta exist to build invalid
    batches on purpose."""
    if base_timestamp is None:
        base_timestamp = int(time.time() * 1000)
    recs = b"".join(encode_record(r, i) for i, r in enumerate(records))
    max_ts = base_timestamp + max((r.timestamp_delta for r in records), default=0)
    after_crc = (
        i16(attributes)
        + i32(len(records) - 1)  # lastOffsetDelta
        + i64(base_timestamp)
        + i64(max_ts)
        + i64(producer_id)
        + i16(producer_epoch)
        + i32(base_sequence)
        + i32(len(records) if records_count is None else records_count)
        + recs
    )
    crc = crc32c(after_crc)
    if corrupt_crc:
        crc ^= 0xDEADBEEF
    after_length = i32(-1) + i8(magic) + u32(crc) + after_crc  # partitionLeaderEpoch, magic, crc
    return i64(0) + i32(len(after_length) + batch_length_delta) + after_length


# --------------------------------------------------------------------------
# KIP-853 voter changes: AddRaftVoter (80) v0 and RemoveRaftVoter (81) v0,
# both flexible (request header v2, response header v1).
# --------------------------------------------------------------------------

ADD_RAFT_VOTER = 80
REMOVE_RAFT_VOTER = 81


def add_raft_voter_v0_body(cluster_id: str | None, voter_id: int, directory_id: bytes,
                           listeners: list[tuple[str, str, int]], timeout_ms: int = 30000) -> bytes:
    """ClusterId, TimeoutMs, VoterId, VoterDirectoryId (16 bytes), Listeners [(name, host, port)]."""
    assert len(directory_id) == 16

    def listener(l):
        name, host, port = l
        return compact_string(name) + compact_string(host) + struct.pack(">H", port) + EMPTY_TAGS

    return (compact_string(cluster_id) + i32(timeout_ms) + i32(voter_id) + directory_id
            + compact_array(listeners, listener) + EMPTY_TAGS)


def remove_raft_voter_v0_body(cluster_id: str | None, voter_id: int, directory_id: bytes) -> bytes:
    assert len(directory_id) == 16
    return compact_string(cluster_id) + i32(voter_id) + directory_id + EMPTY_TAGS


def parse_raft_voter_response_v0(r: Reader) -> tuple[int, str | None]:
    """AddRaftVoter / RemoveRaftVoter response v0: (error code, error message)."""
    r.i32()  # ThrottleTimeMs
    code = r.i16()
    message = r.compact_string()
    r.tagged_fields()
    return code, message


def raft_voter_request(host: str, port: int, api_key: int, body: bytes,
                       timeout: float = 60.0) -> tuple[int, str | None]:
    with Connection(host, port, timeout=timeout) as c:
        cid = c.send_request(api_key, 0, body, flexible=True)
        return parse_raft_voter_response_v0(c.recv_response(cid, flexible_header=True))


# --------------------------------------------------------------------------
# Produce v11 and Fetch v16 (flexible), with KIP-951's leader hints
# --------------------------------------------------------------------------


def compact_bytes(b: bytes | None) -> bytes:
    if b is None:
        return uvarint(0)
    return uvarint(len(b) + 1) + b


@dataclass
class LeaderHint:
    """KIP-951: a partition answer's current leader (-1, -1 when absent)."""
    leader_id: int = -1
    leader_epoch: int = -1


@dataclass
class NodeEndpoint:
    node_id: int
    host: str
    port: int
    rack: str | None


def _leader_hint(raw: bytes) -> LeaderHint:
    r = Reader(raw)
    hint = LeaderHint(r.i32(), r.i32())
    r.tagged_fields()
    return hint


def _node_endpoints(raw: bytes) -> list[NodeEndpoint]:
    def one(x: Reader) -> NodeEndpoint:
        e = NodeEndpoint(x.i32(), x.compact_string(), x.i32(), x.compact_string())
        x.tagged_fields()
        return e

    return Reader(raw).compact_array(one) or []


def produce_v11_body(topic: str, partition: int, records: bytes | None, acks: int = -1,
                     timeout_ms: int = 30000) -> bytes:
    part = i32(partition) + compact_bytes(records) + EMPTY_TAGS
    return (
        compact_string(None)  # transactional_id
        + i16(acks)
        + i32(timeout_ms)
        + compact_array([topic], lambda t: compact_string(t) + compact_array([part], lambda p: p) + EMPTY_TAGS)
        + EMPTY_TAGS
    )


@dataclass
class ProduceV11Partition:
    error_code: int
    base_offset: int
    current_leader: LeaderHint


def parse_produce_v11(r: Reader) -> tuple[dict[tuple[str, int], ProduceV11Partition], list[NodeEndpoint]]:
    """Partition answers by (topic, partition), and the response's node endpoints."""
    out = {}

    def partition(x: Reader):
        index, error_code, base_offset = x.i32(), x.i16(), x.i64()
        x.i64()  # log_append_time_ms
        x.i64()  # log_start_offset
        x.compact_array(lambda e: (e.i32(), e.compact_string(), e.tagged_fields()))  # record_errors
        x.compact_string()  # error_message
        tags = x.tagged_fields()
        hint = _leader_hint(tags[0]) if 0 in tags else LeaderHint()
        return index, ProduceV11Partition(error_code, base_offset, hint)

    def topic(x: Reader):
        name = x.compact_string()
        parts = x.compact_array(partition) or []
        x.tagged_fields()
        return name, parts

    for name, parts in r.compact_array(topic) or []:
        for index, answer in parts:
            out[(name, index)] = answer
    r.i32()  # throttle_time_ms
    tags = r.tagged_fields()
    return out, _node_endpoints(tags[0]) if 0 in tags else []


def fetch_v16_body(topic_id: bytes, partition: int, fetch_offset: int, current_leader_epoch: int = -1,
                   max_wait_ms: int = 0, max_bytes: int = 1 << 20, *,
                   replica: tuple[int, int] | None = None, last_fetched_epoch: int = -1,
                   log_start_offset: int = -1) -> bytes:
    """One partition of the topic with `topic_id` (16 bytes), from `fetch_offset`
    (the body of Fetch v15-17). `replica` = (broker id, broker epoch) sends the
    request as a follower does, in the ReplicaState tagged field."""
    assert len(topic_id) == 16
    part = (
        i32(partition)
        + i32(current_leader_epoch)
        + i64(fetch_offset)
        + i32(last_fetched_epoch)
        + i64(log_start_offset)  # -1: a consumer's
        + i32(max_bytes)  # partition_max_bytes
        + EMPTY_TAGS
    )
    tags = EMPTY_TAGS
    if replica is not None:
        state = i32(replica[0]) + i64(replica[1]) + EMPTY_TAGS
        tags = uvarint(1) + uvarint(1) + uvarint(len(state)) + state  # tag 1: ReplicaState
    return (
        i32(max_wait_ms)
        + i32(1)  # min_bytes
        + i32(max_bytes)
        + i8(0)  # isolation_level: read uncommitted
        + i32(0)  # session_id
        + i32(-1)  # session_epoch: a full request, no session
        + compact_array([topic_id], lambda t: t + compact_array([part], lambda p: p) + EMPTY_TAGS)
        + compact_array([], lambda f: f)  # forgotten_topics_data
        + compact_string("")  # rack_id
        + tags
    )


def fetch_v13_body(topic_id: bytes, partition: int, fetch_offset: int, replica_id: int = -1, **kwargs) -> bytes:
    """Fetch v13-14: the v15 body after the ReplicaId field v15 dropped."""
    assert "replica" not in kwargs, "v13-14 name the replica in ReplicaId"
    return i32(replica_id) + fetch_v16_body(topic_id, partition, fetch_offset, **kwargs)


@dataclass
class FetchV16Partition:
    error_code: int
    high_watermark: int
    records: bytes | None
    current_leader: LeaderHint
    # KIP-320: (epoch, end offset) when the fetcher's log diverges, else None.
    diverging_epoch: tuple[int, int] | None = None
    log_start_offset: int = -1


def parse_fetch_v16(r: Reader) -> tuple[int, dict[tuple[bytes, int], FetchV16Partition], list[NodeEndpoint]]:
    """The top-level error code, partition answers by (topic id, partition), and node endpoints."""
    r.i32()  # throttle_time_ms
    error_code = r.i16()
    r.i32()  # session_id
    out = {}

    def aborted(x: Reader):
        x.i64(), x.i64()
        x.tagged_fields()

    def partition(x: Reader):
        index, code, hw = x.i32(), x.i16(), x.i64()
        x.i64()  # last_stable_offset
        log_start = x.i64()
        x.compact_array(aborted)
        x.i32()  # preferred_read_replica
        n = x.uvarint()
        records = None if n == 0 else x._take(n - 1)
        tags = x.tagged_fields()
        hint = _leader_hint(tags[1]) if 1 in tags else LeaderHint()
        diverging = None
        if 0 in tags:
            d = Reader(tags[0])
            diverging = (d.i32(), d.i64())
        return index, FetchV16Partition(code, hw, records, hint, diverging, log_start)

    def topic(x: Reader):
        topic_id = x._take(16)
        parts = x.compact_array(partition) or []
        x.tagged_fields()
        return topic_id, parts

    for topic_id, parts in r.compact_array(topic) or []:
        for index, answer in parts:
            out[(topic_id, index)] = answer
    tags = r.tagged_fields()
    return error_code, out, _node_endpoints(tags[0]) if 0 in tags else []
