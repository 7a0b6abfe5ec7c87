"""Connection limits on raw sockets, as Kafka's listeners apply them.

* ``max.connections.per.ip`` (+ ``.overrides``): a connection from an address
  that already holds its maximum is closed right after it is accepted, while
  the others stay served.
* ``max.connections``: while the broker holds that many connections, the next
  one is accepted by the kernel but not served until one closes; lowering it
  at runtime closes the least recently active connections.
* ``max.connection.creation.rate``: new connections are accepted no faster
  than the rate.
* ``queued.max.request.bytes``: when the request bytes held across all
  connections reach it, connections stop being read until memory frees.
* ``connections.max.idle.ms``: closes idle connections, connections stuck
  halfway through a request (slowloris) and connections whose client does
  not read its responses.
* ``socket.request.max.bytes``: a larger request closes the connection.
* Thousands of idle or slowloris connections keep the broker's memory under a
  documented bound (docs/limits.md) and do not starve real clients.

Every test starts its own broker (broker_factory) with the limits it needs.
Where a test checks that something does *not* happen (a blocked connection
gets no answer), it looks for a bounded time after the broker has logged the
limit; a slow machine can only make that check pass more easily, never fail.
"""

from __future__ import annotations

import resource
import select
import socket
import struct
import threading
import time
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaError, Producer
from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource, ResourceType

import ck
import kwire
from payloads import unique_topic

pytestmark = pytest.mark.restart

HOST = "127.0.0.1"
# Linux routes all of 127/8 to loopback: a second client address for per-address limits.
OTHER_HOST = "127.0.0.2"
DEADLINE_S = 30.0
# What "no answer while blocked" waits, after the broker logged the limit.
QUIET_S = 2.0
# The bounds docs/limits.md states, per connection, for the broker's resident memory.
IDLE_CONNECTION_RSS_BYTES = 5 * 1024
SLOWLORIS_RSS_BYTES = 8 * 1024          # plus 4 x the bytes each one sent
IDLE_CONNECTIONS = 10_000
SLOWLORIS_CONNECTIONS = 2_000


class Conn(kwire.Connection):
    """A kwire connection from a chosen source address."""

    def __init__(self, port: int, source: str = HOST, timeout: float = DEADLINE_S,
                 receive_buffer: int | None = None):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if receive_buffer is not None:   # before connect, so the window never grows past it
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        self.sock.settimeout(timeout)
        self.sock.bind((source, 0))
        self.sock.connect((HOST, port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.timeout = timeout


def metadata(c: kwire.Connection) -> None:
    """One Metadata v1 round trip; raises if the connection is closed."""
    cid = c.send_request(kwire.METADATA, 1, kwire.metadata_v1_body([]))
    md = kwire.parse_metadata_v1(c.recv_response(cid))
    assert md.brokers


def refused(port: int, source: str = HOST) -> bool:
    """Opens a connection and sends Metadata: True if the broker closes it,
    False if it answers."""
    c = Conn(port, source)
    try:
        metadata(c)
        return False
    except (kwire.ConnectionClosed, ConnectionResetError, BrokenPipeError):
        return True
    finally:
        c.close()


def open_served(port: int, n: int, source: str = HOST) -> list[Conn]:
    conns = []
    for i in range(n):
        c = Conn(port, source)
        try:
            metadata(c)
        except kwire.ConnectionClosed as e:
            pytest.fail(f"connection {i + 1} of {n} from {source} was closed ({e}); it is within the limit")
        conns.append(c)
    return conns


def close_all(conns):
    for c in conns:
        c.close()


def log_text(broker) -> str:
    return Path(broker.log_path).read_text(errors="replace")


def wait_for_log(broker, needle: str, count: int = 1, timeout: float = DEADLINE_S) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = log_text(broker)
        if text.count(needle) >= count:
            return text
        time.sleep(0.1)
    pytest.fail(f"the broker did not log {needle!r} within {timeout} s; log: {broker.log_path}")


def nothing_received(c: kwire.Connection, seconds: float) -> bool:
    readable, _, _ = select.select([c.sock], [], [], seconds)
    return not readable


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS in /proc/{pid}/status")


def broker_admin(broker):
    return ck.admin(broker.bootstrap)


def alter_broker(adm, *entries):
    """IncrementalAlterConfigs on broker 1 (librdkafka cannot name the
    cluster-wide default resource "")."""
    res = ConfigResource(ResourceType.BROKER, "1", incremental_configs=[
        ConfigEntry(k, v, incremental_operation=AlterConfigOpType.SET) for k, v in entries])
    return adm.incremental_alter_configs([res])[res]


# ==========================================================================
# max.connections.per.ip and its overrides
# ==========================================================================


def test_the_51st_connection_from_one_address_is_closed_and_the_50_stay_served(broker_factory):
    b = broker_factory.start(overrides={"max.connections.per.ip": "50"})
    conns = open_served(b.port, 50)
    try:
        assert refused(b.port), "the 51st connection from 127.0.0.1 was served"
        text = wait_for_log(b, 'limit="max.connections.per.ip"')
        assert "maximum of 50 connections" in text
        assert "not used by Tributary" not in text, "the key is still reported as unused"
        for i, c in enumerate(conns):
            try:
                metadata(c)
            except kwire.ConnectionClosed:
                pytest.fail(f"connection {i + 1} of the 50 was closed after the 51st was refused")
        # Another address has its own count.
        other = open_served(b.port, 1, source=OTHER_HOST)
        close_all(other)
        # A closed connection gives its place back.
        conns.pop().close()
        deadline = time.monotonic() + DEADLINE_S
        while refused(b.port):
            assert time.monotonic() < deadline, "no connection admitted after one of the 50 closed"
            time.sleep(0.05)
    finally:
        close_all(conns)


def test_an_override_raises_the_limit_for_one_address_only(broker_factory):
    b = broker_factory.start(overrides={"max.connections.per.ip": "5",
                                        "max.connections.per.ip.overrides": f"{HOST}:60"})
    local = open_served(b.port, 60, source=HOST)
    other = open_served(b.port, 5, source=OTHER_HOST)
    try:
        assert refused(b.port, source=HOST), "the 61st connection from 127.0.0.1 (override 60) was served"
        assert refused(b.port, source=OTHER_HOST), "the 6th connection from 127.0.0.2 (default 5) was served"
        metadata(local[0])
        metadata(other[-1])
    finally:
        close_all(local + other)


def test_per_ip_limits_change_at_runtime_and_bad_values_are_refused(broker_factory):
    b = broker_factory.start()
    adm = broker_admin(b)
    # The admin client's own connections come from 127.0.0.1: keep that address unlimited.
    alter_broker(adm, ("max.connections.per.ip", "3"),
                         ("max.connections.per.ip.overrides", f"{HOST}:1000")).result(ck.ADMIN_TIMEOUT_S)
    conns = open_served(b.port, 3, source=OTHER_HOST)
    try:
        assert refused(b.port, source=OTHER_HOST), "4th connection served with max.connections.per.ip=3"
        configs = ck.describe_broker_configs(adm, 1)
        entry = configs["max.connections.per.ip"]
        assert entry.value == "3" and not entry.is_read_only, entry
        alter_broker(adm, ("max.connections.per.ip", "5"),
                             ("max.connections.per.ip.overrides", f"{HOST}:1000")).result(ck.ADMIN_TIMEOUT_S)
        conns += open_served(b.port, 2, source=OTHER_HOST)
        assert refused(b.port, source=OTHER_HOST), "6th connection served with max.connections.per.ip=5"

        for entries, what in [
            ((("max.connections.per.ip", "0"), ("max.connections.per.ip.overrides", "")), "0 without overrides"),
            ((("max.connections.per.ip.overrides", "127.0.0.1"),), "an override without a count"),
            ((("max.connections", "-1"),), "a negative max.connections"),
        ]:
            err = ck.error_of(alter_broker(adm, *entries))
            assert err.code() == KafkaError.INVALID_CONFIG, f"{what}: {err}"
        # The refused updates changed nothing.
        assert refused(b.port, source=OTHER_HOST)
        metadata(conns[0])
    finally:
        close_all(conns)


# ==========================================================================
# max.connections
# ==========================================================================


def test_max_connections_blocks_the_next_connection_until_one_closes(broker_factory):
    b = broker_factory.start(overrides={"max.connections": "5"})
    conns = open_served(b.port, 5)
    waiting = Conn(b.port)   # the kernel completes the handshake; the broker does not serve it
    try:
        cid = waiting.send_request(kwire.METADATA, 1, kwire.metadata_v1_body([]))
        wait_for_log(b, 'limit="max.connections"')
        assert nothing_received(waiting, QUIET_S), "the 6th connection was served with max.connections=5"
        for c in conns:
            metadata(c)
        conns.pop(0).close()
        waiting.sock.settimeout(DEADLINE_S)
        kwire.parse_metadata_v1(waiting.recv_response(cid))
    finally:
        close_all(conns + [waiting])


def test_lowering_max_connections_closes_the_least_recently_active(broker_factory):
    b = broker_factory.start()
    conns = [Conn(b.port) for _ in range(6)]
    try:
        for c in conns:          # activity order: conns[0] least recent ... conns[5] most recent
            metadata(c)
        adm = broker_admin(b)    # its connections are the most recent of all
        alter_broker(adm, ("max.connections", "3")).result(ck.ADMIN_TIMEOUT_S)
        # 6 raw + 1 or 2 admin connections, 3 allowed: at least the 4 least recently active close.
        for i in range(4):
            assert conns[i].wait_closed(DEADLINE_S), f"connection {i} (among the least recent) still open"
        metadata(conns[5])
        wait_for_log(b, "max.connections was lowered")
        alter_broker(adm, ("max.connections", "100")).result(ck.ADMIN_TIMEOUT_S)
        close_all(open_served(b.port, 10))
    finally:
        close_all(conns)


# ==========================================================================
# max.connection.creation.rate
# ==========================================================================


def test_connection_creation_rate_spaces_new_connections(broker_factory):
    b = broker_factory.start(overrides={"max.connection.creation.rate": "5"})
    # Startup probes may have used the first second's burst; 30 connections at
    # 5/s take at least (30 - 5) / 5 = 5 s however fast the machine is.
    started = time.monotonic()
    conns = open_served(b.port, 30)
    elapsed = time.monotonic() - started
    close_all(conns)
    assert elapsed >= 4.5, f"30 connections served in {elapsed:.1f} s with max.connection.creation.rate=5"
    wait_for_log(b, 'limit="max.connection.creation.rate"')


# ==========================================================================
# socket.request.max.bytes
# ==========================================================================


def api_versions_v3_of_size(payload_size: int) -> bytes:
    """An ApiVersions v3 request frame whose payload is exactly `payload_size`
    bytes (the client software name pads it)."""
    base = kwire.request_header(kwire.API_VERSIONS, 3, 1, flexible=True)
    fixed = len(base) + len(kwire.api_versions_v3_body("", "1"))
    name_len = payload_size - fixed
    body = kwire.api_versions_v3_body("x" * name_len, "1")
    payload = base + body
    # the compact string length varint grows with the name
    while len(payload) > payload_size:
        name_len -= 1
        payload = base + kwire.api_versions_v3_body("x" * name_len, "1")
    assert len(payload) == payload_size, (len(payload), payload_size)
    return kwire.frame(payload)


def test_socket_request_max_bytes_closes_only_larger_requests(broker_factory):
    b = broker_factory.start(overrides={"socket.request.max.bytes": "4096"})
    with Conn(b.port) as c:
        c.send_raw(api_versions_v3_of_size(4096))
        c.recv_frame()   # exactly the limit: answered (whatever the error code for the long name)
        metadata(c)
    with Conn(b.port) as c:
        c.send_raw(struct.pack(">i", 4097))
        assert c.wait_closed(DEADLINE_S), "a request announcing 4097 bytes did not close the connection"
    text = wait_for_log(b, 'limit="socket.request.max.bytes"')
    assert "socket.request.max.bytes=4096" in text


# ==========================================================================
# connections.max.idle.ms: idle, half-sent requests, unread responses
# ==========================================================================


def trickle(c: kwire.Connection, stop: threading.Event, interval: float = 0.2, announce: int = 1 << 20):
    """Slowloris: announce a request of `announce` bytes, then send one byte per interval."""
    try:
        c.send_raw(struct.pack(">i", announce) + kwire.request_header(kwire.METADATA, 1, 1))
        while not stop.wait(interval):
            c.send_raw(b"\x00")
    except OSError:
        pass


def test_a_request_never_completed_is_closed_after_connections_max_idle_ms(broker_factory):
    b = broker_factory.start(overrides={"connections.max.idle.ms": "2000"})
    slow = Conn(b.port)
    idle = Conn(b.port)
    active = Conn(b.port)
    stop = threading.Event()
    sender = threading.Thread(target=trickle, args=(slow, stop), daemon=True)
    sender.start()
    try:
        # The trickling connection sends a byte every 0.2 s and still is closed:
        # bytes of an unfinished request are not activity.
        deadline = time.monotonic() + DEADLINE_S
        while not slow.wait_closed(0.2):
            assert time.monotonic() < deadline, "a request trickling forever kept its connection open"
            metadata(active)       # a connection completing requests stays open meanwhile
        assert idle.wait_closed(DEADLINE_S), "an idle connection outlived connections.max.idle.ms"
        metadata(active)
        text = wait_for_log(b, 'limit="connections.max.idle.ms"')
        assert "the request was not completed" in text
    finally:
        stop.set()
        sender.join(10)
        close_all([slow, idle, active])


def test_a_client_that_never_reads_its_responses_is_closed(broker_factory):
    b = broker_factory.start(overrides={"connections.max.idle.ms": "2000"})
    c = Conn(b.port, receive_buffer=4096)
    request = kwire.frame(kwire.request_header(kwire.API_VERSIONS, 0, 1) + kwire.api_versions_v0_body())

    def flood():
        # Far more responses than the socket buffers on both sides hold.
        try:
            for _ in range(50):
                c.sock.sendall(request * 1000)
        except OSError:
            pass

    t = threading.Thread(target=flood, daemon=True)
    t.start()
    try:
        wait_for_log(b, "a response was not read by the client")
        assert c.wait_closed(DEADLINE_S), "the connection stayed open after its writes timed out"
        with Conn(b.port) as fresh:
            metadata(fresh)
    finally:
        c.close()
        t.join(10)


def test_connections_max_idle_ms_minus_one_never_closes_idle_connections(broker_factory):
    b = broker_factory.start(overrides={"connections.max.idle.ms": "-1"})
    with Conn(b.port) as c:
        metadata(c)
        # Before, -1 was raised to 1 ms and the connection closed at once.
        assert nothing_received(c, QUIET_S), "the idle connection was closed (or sent something)"
        metadata(c)


# ==========================================================================
# queued.max.request.bytes
# ==========================================================================


def test_request_memory_budget_pauses_reading_until_memory_frees(broker_factory):
    mib = 1 << 20
    b = broker_factory.start(overrides={"socket.request.max.bytes": str(mib),
                                        "queued.max.request.bytes": str(mib)})
    # Each announces a request of almost 1 MiB and sends 1,000 bytes of it.
    # The first reservation leaves a few bytes of the budget, so the second
    # also gets one (as in Kafka, a reservation succeeds while any budget is
    # left); the third finds none and its connection stops being read.
    hogs = [Conn(b.port) for _ in range(3)]
    waiting = None
    try:
        for h in hogs:
            h.send_raw(struct.pack(">i", mib - 16) + b"\x00" * 1000)
        wait_for_log(b, 'limit="queued.max.request.bytes"')
        waiting = Conn(b.port)
        cid = waiting.send_request(kwire.METADATA, 1, kwire.metadata_v1_body([]))
        assert nothing_received(waiting, QUIET_S), "a request was read while the request budget was spent"
        close_all(hogs)   # their reservations go back to the budget
        waiting.sock.settimeout(DEADLINE_S)
        kwire.parse_metadata_v1(waiting.recv_response(cid))
    finally:
        close_all(hogs + ([waiting] if waiting else []))


# ==========================================================================
# Many idle and slowloris connections: memory bound, no starvation
# ==========================================================================


@pytest.fixture
def many_fds():
    """Raise this process's open-file limit to its hard limit (brokers started
    afterwards inherit it); returns how many connections fit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    yield hard - 500
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def open_idle(port: int, n: int) -> list[socket.socket]:
    socks = []
    for _ in range(n):
        socks.append(socket.create_connection((HOST, port), timeout=DEADLINE_S))
    return socks


def all_accepted(port: int):
    """A Metadata answer on a connection opened after the others: the broker
    accepts in order, so every earlier connection was accepted too."""
    with Conn(port) as c:
        metadata(c)


def produce_and_consume(bootstrap: str, n: int = 500):
    topic = unique_topic("limits")
    adm = ck.admin(bootstrap)
    ck.create_topic(adm, topic)
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    delivered = []
    for i in range(n):
        producer.produce(topic, value=f"v{i}".encode(), on_delivery=lambda e, m: delivered.append(e))
    assert producer.flush(DEADLINE_S) == 0, "producer could not deliver within the deadline"
    assert delivered == [None] * n, [e for e in delivered if e is not None][:3]
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": unique_topic("g"),
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([topic])
    got = []
    deadline = time.monotonic() + 60
    try:
        while len(got) < n and time.monotonic() < deadline:
            m = consumer.poll(0.5)
            if m is not None and m.error() is None:
                got.append(m.value())
    finally:
        consumer.close()
    assert got == [f"v{i}".encode() for i in range(n)], f"consumed {len(got)} of {n}"


@pytest.mark.slow
def test_ten_thousand_idle_connections_stay_under_the_memory_bound_and_clients_are_served(
        broker_factory, many_fds):
    n = min(IDLE_CONNECTIONS, many_fds)
    if n < IDLE_CONNECTIONS:
        print(f"open-file limit allows {n} idle connections, not {IDLE_CONNECTIONS}")
    b = broker_factory.start()
    all_accepted(b.port)
    before = rss_kb(b.pid)
    socks = open_idle(b.port, n)
    try:
        all_accepted(b.port)
        grown = (rss_kb(b.pid) - before) * 1024
        print(f"broker RSS grew {grown / 1024:.0f} KiB for {n} idle connections "
              f"({grown / n:.0f} bytes each)")
        assert grown <= n * IDLE_CONNECTION_RSS_BYTES, (
            f"{n} idle connections grew the broker's RSS by {grown} bytes "
            f"({grown / n:.0f} each); the bound is {IDLE_CONNECTION_RSS_BYTES} each")
        produce_and_consume(b.bootstrap)
    finally:
        for s in socks:
            s.close()


@pytest.mark.slow
def test_slowloris_connections_stay_under_the_memory_bound_and_do_not_starve_clients(
        broker_factory, many_fds):
    n = min(SLOWLORIS_CONNECTIONS, many_fds)
    sent_each = 4 + 100
    b = broker_factory.start()
    produce_and_consume(b.bootstrap)   # warm up, so the measurement holds the connections only
    before = rss_kb(b.pid)
    socks = []
    stop = threading.Event()
    try:
        for _ in range(n):
            s = socket.create_connection((HOST, b.port), timeout=DEADLINE_S)
            # Each announces a 100 MiB request (within socket.request.max.bytes) and sends 100 bytes of it.
            s.sendall(struct.pack(">i", 100 * (1 << 20)) + b"\x00" * (sent_each - 4))
            socks.append(s)
        all_accepted(b.port)

        def drip():
            while not stop.wait(1.0):
                for s in socks:
                    try:
                        s.send(b"\x00")
                    except OSError:
                        pass

        dripper = threading.Thread(target=drip, daemon=True)
        dripper.start()
        produce_and_consume(b.bootstrap)
        grown = (rss_kb(b.pid) - before) * 1024
        sent = sent_each + 60   # at most one byte a second for the duration of the clients' run
        bound = n * (SLOWLORIS_RSS_BYTES + 4 * sent)
        print(f"broker RSS grew {grown / 1024:.0f} KiB for {n} slowloris connections "
              f"({grown / n:.0f} bytes each)")
        assert grown <= bound, (
            f"{n} slowloris connections grew the broker's RSS by {grown} bytes ({grown / n:.0f} each); "
            f"the bound is {bound / n:.0f} each")
        for s in socks[:10]:
            s.setblocking(False)
            try:
                assert s.recv(1) != b"", "a slowloris connection was closed within connections.max.idle.ms"
            except BlockingIOError:
                pass
    finally:
        stop.set()
        for s in socks:
            s.close()
