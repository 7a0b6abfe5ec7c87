"""Malformed and hostile input on raw sockets, built by hand with kwire.py.

For every case the broker must either close the connection or answer with
an error; it must never crash, hang other connections, or append anything
from a rejected batch. After each test the broker process must still be
running and a fresh connection must get a Metadata response.

Error codes come from kafka.errors (the constants only, no client code).
"""

from __future__ import annotations

import random
import socket
import ssl
import struct
import time

import pytest
import kafka.errors as Errors

import kwire
from kwire import Record, record_batch
from payloads import unique_topic

NONE = Errors.NoError.errno
CORRUPT_MESSAGE = Errors.CorruptRecordError.errno
UNKNOWN_TOPIC_OR_PARTITION = Errors.UnknownTopicOrPartitionError.errno
MESSAGE_TOO_LARGE = Errors.MessageSizeTooLargeError.errno
INVALID_TOPIC = Errors.InvalidTopicError.errno
TOPIC_ALREADY_EXISTS = Errors.TopicAlreadyExistsError.errno
INVALID_PARTITIONS = Errors.InvalidPartitionsError.errno
INVALID_REPLICATION_FACTOR = Errors.InvalidReplicationFactorError.errno
INVALID_CONFIG = Errors.InvalidConfigurationError.errno
UNSUPPORTED_VERSION = Errors.UnsupportedVersionError.errno
INVALID_REQUEST = Errors.InvalidRequestError.errno
INVALID_REQUIRED_ACKS = Errors.InvalidRequiredAcksError.errno
UNSUPPORTED_FOR_MESSAGE_FORMAT = Errors.UnsupportedForMessageFormatError.errno
INVALID_RECORD = Errors.InvalidRecordError.errno

SOCKET_REQUEST_MAX_BYTES = 104857600  # broker default (CONTRACT A.1)
DEFAULT_MAX_MESSAGE_BYTES = 1048588   # topic default (CONTRACT A.8)
CLOSE_TIMEOUT_S = 10.0


@pytest.fixture
def hp(broker):
    return broker.host, broker.port


@pytest.fixture(autouse=True)
def broker_survives(broker):
    """After every test: the process is alive and answers Metadata on a new connection."""
    yield
    check_healthy(broker)


def check_healthy(broker):
    if getattr(broker, "owned", False):
        assert broker.alive(), f"broker process died (status {broker.proc.poll()}), " \
                               f"log: {broker.log_path}"
    md = kwire.metadata_v1(broker.host, broker.port, topics=None, timeout=10)
    assert md.brokers, "Metadata response without brokers"


def connect(hp) -> kwire.Connection:
    return kwire.Connection(hp[0], hp[1], timeout=15)


def closed_or_answered(c: kwire.Connection, correlation_id: int | None,
                       timeout: float = CLOSE_TIMEOUT_S) -> str:
    """Wait for the broker's reaction to a bad request: 'closed' if it closes
    the connection, 'answered' if it sends a response frame carrying our
    correlation id. Fails on silence or on a response with a wrong id."""
    c.sock.settimeout(timeout)
    try:
        frame = c.recv_frame()
    except kwire.ConnectionClosed:
        return "closed"
    except socket.timeout:
        pytest.fail(f"broker neither answered nor closed the connection within {timeout} s")
    except (ConnectionResetError, BrokenPipeError):
        return "closed"
    assert correlation_id is not None, "broker answered a request that had no valid frame"
    got = struct.unpack(">i", frame[:4])[0]
    assert got == correlation_id, f"response correlation id {got}, expected {correlation_id}"
    return "answered"


# ==========================================================================
# Framing
# ==========================================================================


@pytest.mark.parametrize("size", [SOCKET_REQUEST_MAX_BYTES + 1, 0x7FFFFFFF, -1, -0x80000000],
                         ids=["max+1", "int32-max", "minus-1", "int32-min"])
def test_bad_frame_size_closes_connection(hp, size):
    with connect(hp) as c:
        header = kwire.request_header(kwire.METADATA, 1, 1)
        c.send_raw(struct.pack(">i", size) + header + kwire.metadata_v1_body([]))
        assert c.wait_closed(CLOSE_TIMEOUT_S), f"connection still open after frame size {size}"


def test_frame_at_size_limit_sent_partially(hp):
    """A frame announcing exactly socket.request.max.bytes is legal to announce;
    while it is incomplete other clients are served, and closing mid-frame
    does not hurt the broker."""
    with connect(hp) as c:
        c.send_raw(struct.pack(">i", SOCKET_REQUEST_MAX_BYTES) + b"\x00" * 1024)
        # another client is served meanwhile
        md = kwire.metadata_v1(*hp, topics=[])
        assert md.brokers


def test_zero_size_frame(hp):
    with connect(hp) as c:
        c.send_raw(struct.pack(">i", 0))
        cid = c.send_request(kwire.METADATA, 1, kwire.metadata_v1_body([]))
        c.sock.settimeout(CLOSE_TIMEOUT_S)
        try:
            r = c.recv_response(cid)   # tolerated: skipped, and the next request served
            kwire.parse_metadata_v1(r)
        except (kwire.ConnectionClosed, ConnectionResetError):
            pass                        # or: the connection is closed


def test_truncated_frame_then_close(hp):
    with connect(hp) as c:
        payload = kwire.request_header(kwire.METADATA, 1, 7) + kwire.metadata_v1_body(["a", "b"])
        c.send_raw(struct.pack(">i", len(payload) + 50) + payload)
    # closed mid-frame; the autouse check verifies the broker is fine


def test_partial_frame_does_not_block_other_connections(hp):
    stuck = []
    try:
        for _ in range(32):
            c = connect(hp)
            c.send_raw(struct.pack(">i", 200) + b"\x00\x03\x00\x01")
            stuck.append(c)
        t0 = time.monotonic()
        md = kwire.metadata_v1(*hp, topics=[])
        assert md.brokers
        assert time.monotonic() - t0 < 5, "Metadata slowed down by idle half-sent requests"
    finally:
        for c in stuck:
            c.close()


def test_client_id_longer_than_frame(hp):
    with connect(hp) as c:
        header = kwire.i16(kwire.METADATA) + kwire.i16(1) + kwire.i32(5) + kwire.i16(30000) + b"x"
        c.send_raw(kwire.frame(header))
        assert closed_or_answered(c, 5) in ("closed", "answered")


# ==========================================================================
# Garbage and other protocols
# ==========================================================================


def test_random_garbage_stream(hp):
    rnd = random.Random(1234)
    with connect(hp) as c:
        # A first int32 above the limit makes the expected reaction unambiguous.
        data = struct.pack(">i", 0x7A6B5C4D) + rnd.randbytes(4092)
        try:
            c.send_raw(data)
        except (BrokenPipeError, ConnectionResetError):
            return
        assert c.wait_closed(CLOSE_TIMEOUT_S)


@pytest.mark.parametrize("seed", range(8))
def test_framed_garbage(hp, seed):
    """Well-framed requests whose header and body are random bytes."""
    rnd = random.Random(seed)
    payload = rnd.randbytes(rnd.randint(1, 600))
    with connect(hp) as c:
        c.send_raw(kwire.frame(payload))
        cid = struct.unpack(">i", payload[4:8])[0] if len(payload) >= 8 else None
        c.sock.settimeout(CLOSE_TIMEOUT_S)
        try:
            frame = c.recv_frame()
        except (kwire.ConnectionClosed, ConnectionResetError):
            return
        except socket.timeout:
            pytest.fail("broker neither answered nor closed the connection")
        assert cid is not None and struct.unpack(">i", frame[:4])[0] == cid


def test_tls_client_hello_on_plaintext_port(hp):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(incoming, outgoing, server_hostname="localhost")
    with pytest.raises(ssl.SSLWantReadError):
        tls.do_handshake()
    hello = outgoing.read()
    assert hello[0] == 0x16  # TLS handshake record
    # read as a Kafka frame size this is far above socket.request.max.bytes
    assert struct.unpack(">i", hello[:4])[0] > SOCKET_REQUEST_MAX_BYTES
    with connect(hp) as c:
        c.send_raw(hello)
        assert c.wait_closed(CLOSE_TIMEOUT_S), "TLS ClientHello did not close the connection"


def test_http_request_on_kafka_port(hp):
    with connect(hp) as c:
        c.send_raw(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        # "GET " = 0x47455420 > socket.request.max.bytes
        assert c.wait_closed(CLOSE_TIMEOUT_S)


# ==========================================================================
# Malformed bodies
# ==========================================================================


@pytest.mark.parametrize("body", [
    kwire.i32(-2),                                   # negative array count (not -1)
    kwire.i32(-0x80000000),
    kwire.i32(0x7FFFFFFF),                           # huge count, no elements
    kwire.i32(1_000_000) + kwire.string("t") * 3,    # count larger than the data
    kwire.i32(1) + kwire.i16(-7),                    # negative string length
    kwire.i32(1) + kwire.i16(5000) + b"abc",         # string longer than the frame
    kwire.i32(2) + kwire.string("ok"),               # one element missing
], ids=["count-2", "count-min", "count-max", "count-1e6", "strlen-neg", "strlen-long",
        "missing-element"])
def test_malformed_metadata_v1(hp, body):
    with connect(hp) as c:
        cid = c.send_request(kwire.METADATA, 1, body)
        closed_or_answered(c, cid)


def test_metadata_v1_null_topics_lists_all(hp):
    """Control for the malformed cases: count -1 (null) is valid and means all topics."""
    with connect(hp) as c:
        cid = c.send_request(kwire.METADATA, 1, kwire.metadata_v1_body(None))
        md = kwire.parse_metadata_v1(c.recv_response(cid))
    assert md.brokers


def test_metadata_v1_controller_is_a_live_broker(hp):
    """kafka-python's admin client sends CreateTopics etc. to Metadata's
    controller_id and waits while it is -1, so it must name a live broker."""
    md = kwire.metadata_v1(*hp, topics=[])
    ids = {b[0] for b in md.brokers}
    assert md.controller_id in ids, f"controller_id {md.controller_id} not in brokers {ids}"


@pytest.mark.parametrize("api_key", [9999, 32767, -1, 4])
def test_unknown_or_internal_api_key(hp, api_key):
    with connect(hp) as c:
        cid = c.send_request(api_key, 0, b"\x00" * 8)
        closed_or_answered(c, cid)


def test_unsupported_version_of_known_api(hp):
    with connect(hp) as c:
        cid = c.send_request(kwire.METADATA, 999, kwire.metadata_v1_body([]))
        closed_or_answered(c, cid)


# ==========================================================================
# ApiVersions
# ==========================================================================


def api_versions(c, version):
    if version >= 3:
        cid = c.send_request(kwire.API_VERSIONS, version,
                             kwire.api_versions_v3_body("tributary-compat", "1.0"), flexible=True)
        r = c.recv_response(cid)   # ApiVersions responses always use header v0
        resp = kwire.parse_api_versions_v3(r)
    else:
        cid = c.send_request(kwire.API_VERSIONS, version, kwire.api_versions_v0_body())
        r = c.recv_response(cid)
        resp = kwire.parse_api_versions_v0(r)
        if version >= 1:
            resp.throttle_time_ms = r.i32()
    assert r.remaining() == 0, f"{r.remaining()} unexpected trailing bytes in ApiVersions v{version}"
    return resp


def test_api_versions_v0_and_v3_agree(hp):
    with connect(hp) as c:
        v0 = api_versions(c, 0)
        v3 = api_versions(c, 3)
    assert v0.error_code == NONE and v3.error_code == NONE
    assert v0.api_keys == v3.api_keys
    keys = v3.api_keys
    for k in (0, 1, 2, 3, 18, 19):  # Produce, Fetch, ListOffsets, Metadata, ApiVersions, CreateTopics
        assert k in keys, f"api key {k} not advertised"
    for k, (lo, hi) in keys.items():
        assert 0 <= lo <= hi, f"api key {k}: range {lo}..{hi}"
    assert keys[18][1] >= 3
    assert v3.throttle_time_ms == 0


def test_api_versions_unsupported_version(hp):
    """Version above the broker's max: header v0, v0-shaped body, error 35 and
    the full table; the connection stays usable so the client can retry."""
    with connect(hp) as c:
        cid = c.send_request(kwire.API_VERSIONS, 99, b"\x00\x00\x00", flexible=True)
        frame = c.recv_frame()
        r = kwire.Reader(frame)
        assert r.i32() == cid, "response header must be v0 (correlation id only)"
        try:
            resp = kwire.parse_api_versions_v0(r)
        except kwire.DecodeError as e:
            pytest.fail(f"body is not ApiVersions v0-shaped ({e}): {frame[4:40].hex()}...")
        assert r.remaining() == 0, f"{r.remaining()} trailing bytes after the v0-shaped body"
        assert resp.error_code == UNSUPPORTED_VERSION
        assert 18 in resp.api_keys and resp.api_keys[18][1] < 99
        # retry on the same connection with the advertised max version
        good = api_versions(c, min(resp.api_keys[18][1], 3))
    assert good.error_code == NONE
    assert good.api_keys == resp.api_keys


def test_api_versions_invalid_client_software_name(hp):
    with connect(hp) as c:
        cid = c.send_request(kwire.API_VERSIONS, 3,
                             kwire.api_versions_v3_body("bad name!", "1.0"), flexible=True)
        resp = kwire.parse_api_versions_v3(c.recv_response(cid))
    assert resp.error_code == INVALID_REQUEST


def test_pipelined_requests_answered_in_order(hp):
    with connect(hp) as c:
        sent = []
        for i in range(300):
            if i % 3 == 0:
                sent.append(("md", c.send_request(kwire.METADATA, 1, kwire.metadata_v1_body([]))))
            elif i % 3 == 1:
                sent.append(("av0", c.send_request(kwire.API_VERSIONS, 0, b"")))
            else:
                sent.append(("av3", c.send_request(
                    kwire.API_VERSIONS, 3, kwire.api_versions_v3_body("x", "1"), flexible=True)))
        for kind, cid in sent:
            r = c.recv_response(cid)
            if kind == "md":
                kwire.parse_metadata_v1(r)
            elif kind == "av0":
                kwire.parse_api_versions_v0(r)
            else:
                kwire.parse_api_versions_v3(r)
            assert r.remaining() == 0, kind


# ==========================================================================
# CreateTopics v2
# ==========================================================================


def create_topics(hp, topics, validate_only=False) -> dict:
    with connect(hp) as c:
        cid = c.send_request(kwire.CREATE_TOPICS, 2,
                             kwire.create_topics_v2_body(topics, validate_only=validate_only))
        return kwire.parse_create_topics_v2(c.recv_response(cid))


def topic_exists(hp, name) -> bool:
    md = kwire.metadata_v1(*hp, topics=None)
    return any(t["name"] == name for t in md.topics)


def create_topic_ready(hp, name, partitions=1, configs=None):
    res = create_topics(hp, [{"name": name, "num_partitions": partitions,
                              "replication_factor": 1, "configs": configs or {}}])
    assert res[name][0] == NONE, res
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        md = kwire.metadata_v1(*hp, topics=None)
        for t in md.topics:
            if t["name"] == name and t["error_code"] == NONE and len(t["partitions"]) == partitions \
                    and all(p["leader"] >= 0 for p in t["partitions"]):
                return
        time.sleep(0.1)
    pytest.fail(f"topic {name} not ready")


@pytest.mark.parametrize("name", ["bad name", "a/b", "..", ".", "x" * 250, ""],
                         ids=["space", "slash", "dotdot", "dot", "too-long", "empty"])
def test_create_topics_invalid_name(hp, name):
    res = create_topics(hp, [{"name": name, "num_partitions": 1, "replication_factor": 1}])
    assert res[name][0] == INVALID_TOPIC, res
    assert not topic_exists(hp, name)


@pytest.mark.parametrize("partitions", [0, -5])
def test_create_topics_invalid_partitions(hp, partitions):
    name = unique_topic("raw-parts")
    res = create_topics(hp, [{"name": name, "num_partitions": partitions,
                              "replication_factor": 1}])
    assert res[name][0] == INVALID_PARTITIONS, res
    assert not topic_exists(hp, name)


@pytest.mark.parametrize("rf", [0, 2, -5])
def test_create_topics_invalid_replication_factor(hp, rf):
    name = unique_topic("raw-rf")
    res = create_topics(hp, [{"name": name, "num_partitions": 1, "replication_factor": rf}])
    assert res[name][0] == INVALID_REPLICATION_FACTOR, res
    assert not topic_exists(hp, name)


def test_create_topics_mixed_batch(hp):
    """Each topic of one request gets its own result."""
    good, bad_cfg, exists = unique_topic("raw-good"), unique_topic("raw-badcfg"), \
        unique_topic("raw-exists")
    create_topic_ready(hp, exists)
    res = create_topics(hp, [
        {"name": good, "num_partitions": 2, "replication_factor": 1},
        {"name": bad_cfg, "num_partitions": 1, "replication_factor": 1,
         "configs": {"no.such.config": "1"}},
        {"name": exists, "num_partitions": 1, "replication_factor": 1},
    ])
    assert res[good][0] == NONE
    assert res[bad_cfg][0] == INVALID_CONFIG
    assert res[exists][0] == TOPIC_ALREADY_EXISTS
    assert not topic_exists(hp, bad_cfg)


def test_create_topics_duplicate_name_in_one_request(hp):
    name = unique_topic("raw-dup")
    with connect(hp) as c:
        t = {"name": name, "num_partitions": 1, "replication_factor": 1}
        cid = c.send_request(kwire.CREATE_TOPICS, 2, kwire.create_topics_v2_body([t, t]))
        r = c.recv_response(cid)
        r.i32()
        results = r.array(lambda rr: (rr.string(), rr.i16(), rr.string()))
    assert results and all(n == name and err == INVALID_REQUEST for n, err, _ in results), results
    assert not topic_exists(hp, name)


def test_create_topics_validate_only(hp):
    name = unique_topic("raw-validate")
    res = create_topics(hp, [{"name": name, "num_partitions": 3, "replication_factor": 1}],
                        validate_only=True)
    assert res[name][0] == NONE
    assert not topic_exists(hp, name)


# ==========================================================================
# Produce v7
# ==========================================================================


def records(n=3, size=10):
    return [Record(f"k{i}".encode(), bytes([65 + i % 26]) * size, [("h", b"v")], i)
            for i in range(n)]


def produce(hp, topic, batch, partition=0, acks=-1) -> kwire.ProducePartitionResponse:
    with connect(hp) as c:
        cid = c.send_request(kwire.PRODUCE, 7, kwire.produce_v7_body(topic, partition, batch, acks))
        r = c.recv_response(cid)
        resp = kwire.parse_produce_v7(r)
        assert r.remaining() == 0
    assert (topic, partition) in resp, resp
    return resp[(topic, partition)]


def latest_offset(hp, topic, partition=0) -> int:
    with connect(hp) as c:
        cid = c.send_request(kwire.LIST_OFFSETS, 1,
                             kwire.list_offsets_v1_body(topic, partition, kwire.LATEST))
        res = kwire.parse_list_offsets_v1(c.recv_response(cid))
    err, _, off = res[(topic, partition)]
    assert err == NONE, err
    return off


@pytest.fixture
def topic(hp):
    name = unique_topic("raw-produce")
    create_topic_ready(hp, name, partitions=1)
    return name


def test_produce_valid_batch(hp, topic):
    """Control for the invalid cases below."""
    r = produce(hp, topic, record_batch(records(3)))
    assert r.error_code == NONE
    assert r.base_offset == 0
    r = produce(hp, topic, record_batch(records(2)))
    assert (r.error_code, r.base_offset) == (NONE, 3)
    assert latest_offset(hp, topic) == 5


def test_produce_wrong_crc(hp, topic):
    r = produce(hp, topic, record_batch(records(3), corrupt_crc=True))
    assert r.error_code == CORRUPT_MESSAGE, r
    assert latest_offset(hp, topic) == 0
    ok = produce(hp, topic, record_batch(records(1)))
    assert (ok.error_code, ok.base_offset) == (NONE, 0), "rejected batch consumed offsets"


def test_produce_old_magic(hp, topic):
    r = produce(hp, topic, record_batch(records(2), magic=1))
    assert r.error_code in (CORRUPT_MESSAGE, UNSUPPORTED_FOR_MESSAGE_FORMAT, INVALID_RECORD), r
    assert latest_offset(hp, topic) == 0


@pytest.mark.parametrize("delta", [40, -10])
def test_produce_batch_length_mismatch(hp, topic, delta):
    r = produce(hp, topic, record_batch(records(3), batch_length_delta=delta))
    assert r.error_code in (CORRUPT_MESSAGE, INVALID_RECORD), r
    assert latest_offset(hp, topic) == 0


@pytest.mark.parametrize("count", [5, 0, -1])
def test_produce_wrong_record_count(hp, topic, count):
    r = produce(hp, topic, record_batch(records(2), records_count=count))
    assert r.error_code in (CORRUPT_MESSAGE, INVALID_RECORD), r
    assert latest_offset(hp, topic) == 0


def test_produce_truncated_batch(hp, topic):
    b = record_batch(records(3))
    r = produce(hp, topic, b[:40])
    assert r.error_code in (CORRUPT_MESSAGE, INVALID_RECORD), r
    assert latest_offset(hp, topic) == 0


def test_produce_compressed_flag_on_uncompressed_data(hp, topic):
    """attributes say gzip, the payload is plain records."""
    r = produce(hp, topic, record_batch(records(3), attributes=1))
    assert r.error_code in (CORRUPT_MESSAGE, INVALID_RECORD), r
    assert latest_offset(hp, topic) == 0


def test_produce_batch_larger_than_topic_max_message_bytes(hp):
    name = unique_topic("raw-small")
    create_topic_ready(hp, name, configs={"max.message.bytes": "2048"})
    small = record_batch(records(2, size=100))
    big = record_batch(records(4, size=1000))
    assert len(small) < 2048 < len(big)
    r = produce(hp, name, big)
    assert r.error_code == MESSAGE_TOO_LARGE, r
    assert latest_offset(hp, name) == 0
    r = produce(hp, name, small)
    assert (r.error_code, r.base_offset) == (NONE, 0)


def test_produce_batch_larger_than_default_max_message_bytes(hp, topic):
    value = random.Random(5).randbytes(DEFAULT_MAX_MESSAGE_BYTES + 1000)
    r = produce(hp, topic, record_batch([Record(b"k", value)]))
    assert r.error_code == MESSAGE_TOO_LARGE, r
    fits = random.Random(6).randbytes(DEFAULT_MAX_MESSAGE_BYTES - 1000)
    r = produce(hp, topic, record_batch([Record(b"k", fits)]))
    assert (r.error_code, r.base_offset) == (NONE, 0)


@pytest.mark.parametrize("acks", [2, 5, -2])
def test_produce_invalid_acks(hp, topic, acks):
    r = produce(hp, topic, record_batch(records(1)), acks=acks)
    assert r.error_code == INVALID_REQUIRED_ACKS, r
    assert latest_offset(hp, topic) == 0


def test_produce_unknown_partition(hp, topic):
    r = produce(hp, topic, record_batch(records(1)), partition=7)
    assert r.error_code == UNKNOWN_TOPIC_OR_PARTITION, r


def test_produce_acks_0_sends_no_response(hp, topic):
    with connect(hp) as c:
        c.send_request(kwire.PRODUCE, 7,
                       kwire.produce_v7_body(topic, 0, record_batch(records(4)), acks=0))
        cid = c.send_request(kwire.METADATA, 1, kwire.metadata_v1_body([]))
        first = c.recv_frame()  # the first frame back must be the Metadata answer
        got = struct.unpack(">i", first[:4])[0]
        assert got == cid, f"first response has correlation id {got}, not the Metadata's " \
                           f"{cid}: the acks=0 produce was answered"
        kwire.parse_metadata_v1(kwire.Reader(first, 4))
    deadline = time.monotonic() + 10
    while latest_offset(hp, topic) != 4 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert latest_offset(hp, topic) == 4
