"""The HTTP limits of the Schema Registry and the REST Proxy, on raw sockets
and with `requests`, as docs/limits.md states them:

* ``header.read.timeout.ms`` (``--http-header-read-timeout-ms``): a client
  trickling a request head (slowloris) is closed, while other clients are
  served alongside;
* ``idle.timeout.ms`` (``--http-idle-timeout-ms``): keep-alive connections
  with no request are closed; a v3 streaming produce sending a record every
  second, and a v2 poll that waits longer than the timeout, are not;
* ``max.request.header.size``: a larger head gets 431, so a connection
  buffers at most that much while its head arrives;
* ``server.connection.limit`` (``--http-connection-limit``): the next
  connection is accepted by the kernel but not served until one closes, and
  connections beyond the cap hold no file descriptor of the process;
* memory: many slowloris connections stay under the documented bound.

Each test starts its own platform (broker_factory) with the limits it
needs. Checks that something does *not* happen (a blocked connection gets no
answer) look for a bounded time after the limit was logged: a slow machine can
only make them pass more easily, never fail.
"""

from __future__ import annotations

import http.client
import json
import os
import select
import socket
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest
import requests

import conftest
from restproxy import call, concatenated, new_topic, read_all, rest_proxy

pytestmark = pytest.mark.restart

HOST = "127.0.0.1"
DEADLINE_S = 30.0
QUIET_S = 2.0
# Short limits for the tests that wait for them to run out.
TIMEOUT_MS = 2000
LONG_MS = 600_000
# The bound docs/limits.md states for the resident memory one connection
# waiting for its request head holds, with a head just under
# max.request.header.size (8192 bytes) already sent: the worst a client can do.
SLOWLORIS_RSS_BYTES = 32 * 1024
SLOWLORIS_HEAD_BYTES = 8000
SLOWLORIS_PER_PORT = 800


def http_flags(header_ms: int = LONG_MS, idle_ms: int = LONG_MS, cap: int | None = None) -> list[str]:
    flags = ["--http-header-read-timeout-ms", str(header_ms), "--http-idle-timeout-ms", str(idle_ms)]
    if cap is not None:
        flags += ["--http-connection-limit", str(cap)]
    return flags


def start_platform(broker_factory, **limits):
    """`tributary start` with both HTTP services and the given limits; waits for the REST proxy too."""
    b = broker_factory.start(schema_registry=True, rest_proxy=True, argv_extra=http_flags(**limits))
    deadline = time.monotonic() + DEADLINE_S
    while True:
        try:
            if requests.get(f"{b.rest_proxy_url}/v3/clusters", timeout=5).status_code == 200:
                return b
        except requests.RequestException:
            pass
        assert time.monotonic() < deadline, f"the REST proxy did not come up; log: {b.log_path}"
        time.sleep(0.1)


def services(b) -> list[tuple[str, str, str]]:
    """(log tag, base URL, a path that answers 200) of each HTTP service of `b`."""
    return [("schema-registry", b.registry_url, "/subjects"), ("rest-proxy", b.rest_proxy_url, "/v3/clusters")]


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def log_text(b) -> str:
    return Path(b.log_path).read_text(errors="replace")


def wait_for_log(b, needle: str, count: int = 1) -> str:
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        text = log_text(b)
        if text.count(needle) >= count:
            return text
        time.sleep(0.1)
    pytest.fail(f"{needle!r} was not logged {count} time(s) within {DEADLINE_S} s; log: {b.log_path}")


def limit_lines(text: str, service: str, key: str) -> list[str]:
    return [line for line in text.splitlines() if f"[{service}]" in line and f'limit="{key}"' in line]


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS in /proc/{pid}/status")


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


class Slowloris:
    """A connection that sends a request head one byte at a time, never ending it
    (after `padding` bytes of headers sent at once)."""

    def __init__(self, port: int, path: str = "/", padding: int = 0):
        self.sock = socket.create_connection((HOST, port), timeout=DEADLINE_S)
        pad = f"X-Pad: {'p' * (padding - 10)}\r\n" if padding >= 10 else ""
        self.sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\n{pad}X-Slow: ".encode())

    def drip(self) -> None:
        try:
            self.sock.send(b"a")
        except OSError:
            pass

    def closed(self, wait: float = 0.0) -> bool:
        """True once the server has closed the connection without answering."""
        readable, _, _ = select.select([self.sock], [], [], wait)
        if not readable:
            return False
        try:
            data = self.sock.recv(4096)
        except (ConnectionResetError, BrokenPipeError):
            return True
        assert data == b"", f"the server answered a head that never ended: {data[:200]!r}"
        return True

    def close(self) -> None:
        self.sock.close()


def keep_alive_connection(url: str, path: str) -> http.client.HTTPConnection:
    """A connection that made one request and stays open (keep-alive)."""
    c = http.client.HTTPConnection(HOST, port_of(url), timeout=DEADLINE_S)
    c.request("GET", path)
    r = c.getresponse()
    r.read()
    assert r.status == 200, r.status
    return c


def server_closed(c: http.client.HTTPConnection, wait: float) -> bool:
    readable, _, _ = select.select([c.sock], [], [], wait)
    if not readable:
        return False
    try:
        return c.sock.recv(1) == b""
    except ConnectionResetError:
        return True


# ==========================================================================
# header.read.timeout.ms
# ==========================================================================


def test_a_slowloris_client_is_closed_after_the_header_timeout_while_clients_are_served(broker_factory):
    b = start_platform(broker_factory, header_ms=TIMEOUT_MS)   # the idle timeout stays at 10 minutes
    slow = {name: Slowloris(port_of(url), path) for name, url, path in services(b)}
    try:
        deadline = time.monotonic() + DEADLINE_S
        served = 0
        while not all(s.closed() for s in slow.values()):
            assert time.monotonic() < deadline, (
                f"still open after {DEADLINE_S} s: {[n for n, s in slow.items() if not s.closed()]}")
            for s in slow.values():
                s.drip()
            for _, url, path in services(b):
                assert requests.get(f"{url}{path}", timeout=DEADLINE_S).status_code == 200
                served += 1
            time.sleep(0.5)
        assert served > 0
        text = wait_for_log(b, 'limit="header.read.timeout.ms"', count=2)
        for name, _, _ in services(b):
            assert limit_lines(text, name, "header.read.timeout.ms"), f"no header timeout warning from {name}"
        assert "peer=127.0.0.1:" in text
    finally:
        for s in slow.values():
            s.close()


def test_the_standalone_services_take_the_header_timeout_from_their_own_config(broker_factory, tmp_path):
    """`tributary schema-registry --override header.read.timeout.ms=...` and
    `tributary rest-proxy --header-read-timeout-ms ...`."""
    b = broker_factory.start()
    port = conftest.free_port()
    log = tmp_path / "registry.log"
    with open(log, "wb") as out:
        registry = subprocess.Popen(
            [str(conftest.broker_binary()), "schema-registry", "--bootstrap-servers", b.bootstrap,
             "--listeners", f"http://{HOST}:{port}", "--override", f"header.read.timeout.ms={TIMEOUT_MS}",
             "--override", f"idle.timeout.ms={LONG_MS}"], stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + DEADLINE_S
        while not conftest.registry_ready(f"http://{HOST}:{port}"):
            assert registry.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        flags = ["--header-read-timeout-ms", str(TIMEOUT_MS), "--idle-timeout-ms", str(LONG_MS)]
        with rest_proxy(b.bootstrap, tmp_path / "proxy.log", flags) as proxy:
            slow = [Slowloris(port, "/subjects"), Slowloris(port_of(proxy), "/v3/clusters")]
            try:
                deadline = time.monotonic() + DEADLINE_S
                while not all(s.closed() for s in slow):
                    assert time.monotonic() < deadline, "a slowloris connection outlived the header timeout"
                    for s in slow:
                        s.drip()
                    time.sleep(0.5)
            finally:
                for s in slow:
                    s.close()
    finally:
        registry.terminate()
        assert registry.wait(20) == 0, log.read_text()
    assert 'limit="header.read.timeout.ms"' in log.read_text()


def test_a_request_head_over_max_request_header_size_gets_431_and_smaller_ones_are_served(broker_factory):
    b = start_platform(broker_factory)
    for name, url, path in services(b):
        s = socket.create_connection((HOST, port_of(url)), timeout=DEADLINE_S)
        try:
            # 64 KiB of head, never ended: refused once 8192 bytes have arrived, not buffered whole.
            try:
                s.sendall(f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\nX-Big: {'b' * 65536}".encode())
            except (BrokenPipeError, ConnectionResetError):
                pass
            answer = b""
            try:
                while chunk := s.recv(4096):
                    answer += chunk
            except ConnectionResetError:
                pass
            assert answer.startswith(b"HTTP/1.1 431"), f"{name}: {answer[:100]!r}"
        finally:
            s.close()
        r = requests.get(f"{url}{path}", headers={"X-Fits": "f" * 6000}, timeout=DEADLINE_S)
        assert r.status_code == 200, f"{name}: a 6 KB head was refused"
    text = wait_for_log(b, 'limit="max.request.header.size"', count=2)
    for name, _, _ in services(b):
        assert limit_lines(text, name, "max.request.header.size"), f"no head size warning from {name}"


# ==========================================================================
# idle.timeout.ms
# ==========================================================================


def test_idle_keep_alive_connections_are_closed_after_the_idle_timeout(broker_factory):
    b = start_platform(broker_factory, idle_ms=TIMEOUT_MS)   # the header timeout stays at 10 minutes
    n = 10
    conns = [keep_alive_connection(url, path) for _, url, path in services(b) for _ in range(n)]
    silent = [socket.create_connection((HOST, port_of(url)), timeout=DEADLINE_S) for _, url, _ in services(b)]
    try:
        deadline = time.monotonic() + DEADLINE_S
        for i, c in enumerate(conns):
            assert server_closed(c, max(0.0, deadline - time.monotonic())), f"keep-alive connection {i} still open"
        for s in silent:
            readable, _, _ = select.select([s], [], [], max(0.0, deadline - time.monotonic()))
            assert readable and s.recv(1) == b"", "a connection that never sent anything stayed open"
        text = wait_for_log(b, 'limit="idle.timeout.ms"', count=2)
        for name, url, path in services(b):
            assert limit_lines(text, name, "idle.timeout.ms"), f"no idle timeout warning from {name}"
            assert requests.get(f"{url}{path}", timeout=DEADLINE_S).status_code == 200
    finally:
        for c in conns:
            c.close()
        for s in silent:
            s.close()


def test_a_v3_streaming_produce_outlives_the_header_and_idle_timeouts(broker_factory):
    b = start_platform(broker_factory, header_ms=TIMEOUT_MS, idle_ms=TIMEOUT_MS)
    topic = new_topic(b.bootstrap)
    status, clusters = call("GET", f"{b.rest_proxy_url}/v3/clusters")
    cluster = clusters["data"][0]["cluster_id"]
    records = 8   # one a second: four times the timeouts

    def chunks():
        for i in range(records):
            yield json.dumps({"value": {"type": "STRING", "data": f"r{i}"}}).encode() + b"\n"
            time.sleep(1.0)

    c = http.client.HTTPConnection(HOST, port_of(b.rest_proxy_url), timeout=DEADLINE_S)
    started = time.monotonic()
    try:
        c.request("POST", f"/v3/clusters/{cluster}/topics/{topic}/records", body=chunks(), encode_chunked=True,
                  headers={"Content-Type": "application/json", "Transfer-Encoding": "chunked"})
        r = c.getresponse()
        text = r.read().decode()
    finally:
        c.close()
    assert time.monotonic() - started > 2 * TIMEOUT_MS / 1000, "the stream did not outlast the timeouts"
    assert r.status == 200, text
    reports = concatenated(text)
    assert [rep["error_code"] for rep in reports] == [200] * records, reports
    assert [m.value() for m in read_all(b.bootstrap, topic, 1, records)] == [f"r{i}".encode() for i in range(records)]
    assert not limit_lines(log_text(b), "rest-proxy", "idle.timeout.ms")


def test_a_v2_poll_that_waits_longer_than_the_idle_timeout_is_answered(broker_factory):
    b = start_platform(broker_factory, header_ms=TIMEOUT_MS, idle_ms=TIMEOUT_MS)
    topic = new_topic(b.bootstrap)
    group = f"http-limits-{uuid.uuid4().hex[:6]}"
    headers = {"Content-Type": "application/vnd.kafka.v2+json"}
    with requests.Session() as s:
        r = s.post(f"{b.rest_proxy_url}/consumers/{group}", headers=headers, timeout=DEADLINE_S,
                   json={"format": "binary", "consumer.request.timeout.ms": 6000})
        assert r.status_code == 200, r.text
        base = r.json()["base_uri"]
        r = s.post(f"{base}/assignments", headers=headers, timeout=DEADLINE_S,
                   json={"partitions": [{"topic": topic, "partition": 0}]})
        assert r.status_code == 204, r.text
        started = time.monotonic()
        r = s.get(f"{base}/records?timeout=6000", headers={"Accept": "application/vnd.kafka.binary.v2+json"},
                  timeout=DEADLINE_S)
        waited = time.monotonic() - started
        assert (r.status_code, r.json()) == (200, []), r.text
        assert waited > 2 * TIMEOUT_MS / 1000, f"the poll waited {waited:.1f} s, not past the idle timeout"
        assert s.delete(base, headers=headers, timeout=DEADLINE_S).status_code == 204
    assert not limit_lines(log_text(b), "rest-proxy", "idle.timeout.ms")


# ==========================================================================
# server.connection.limit
# ==========================================================================


def test_the_connection_after_the_cap_is_served_once_one_closes(broker_factory):
    cap = 3
    b = start_platform(broker_factory, cap=cap)
    # The readiness checks' connections have closed once a fresh one is served at the cap.
    for name, url, path in services(b):
        held = [keep_alive_connection(url, path) for _ in range(cap)]
        waiting = socket.create_connection((HOST, port_of(url)), timeout=DEADLINE_S)
        result: dict = {}

        def client():
            try:
                result["status"] = requests.get(f"{url}{path}", timeout=DEADLINE_S * 2).status_code
            except requests.RequestException as e:  # reported below
                result["error"] = e

        try:
            waiting.sendall(f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode())
            wait_for_log(b, f"[{name}] HTTP connection limit reached")
            assert limit_lines(log_text(b), name, "server.connection.limit")
            readable, _, _ = select.select([waiting], [], [], QUIET_S)
            assert not readable, f"{name}: connection {cap + 1} was served with server.connection.limit={cap}"
            t = threading.Thread(target=client)
            t.start()
            held.pop(0).close()
            waiting.settimeout(DEADLINE_S)
            assert waiting.recv(12).startswith(b"HTTP/1.1 200"), f"{name}: the waiting connection was not served"
            waiting.close()
            t.join(DEADLINE_S * 2)
            assert result.get("status") == 200, f"{name}: the requests client was not served: {result}"
        finally:
            waiting.close()
            for c in held:
                c.close()


def test_connections_beyond_the_cap_hold_no_file_descriptors(broker_factory):
    cap = 50
    b = start_platform(broker_factory, cap=cap)
    before = open_fds(b.pid)
    socks = []
    try:
        # cap + 100 per port: the ones past the cap wait in the listen backlog (128 connections;
        # past that the kernel leaves SYNs unanswered and connecting itself waits).
        for _, url, path in services(b):
            socks += [Slowloris(port_of(url), path) for _ in range(cap + 100)]
        for name, _, _ in services(b):
            wait_for_log(b, f"[{name}] HTTP connection limit reached")
        grown = open_fds(b.pid) - before
        print(f"{len(socks)} connections, process file descriptors grew by {grown}")
        assert grown <= 2 * cap + 10, f"{len(socks)} connections took {grown} file descriptors with a cap of {cap} each"
    finally:
        for s in socks:
            s.close()


# ==========================================================================
# memory
# ==========================================================================


@pytest.fixture
def many_fds():
    """Raise this process's open-file limit to its hard limit (the platform started afterwards inherits it)."""
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    yield hard - 500
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@pytest.mark.slow
def test_slowloris_connections_stay_under_the_memory_bound_and_clients_are_served(broker_factory, many_fds):
    n = min(SLOWLORIS_PER_PORT, many_fds // 2)
    b = start_platform(broker_factory)   # the defaults: 30 s header timeout, 1000 connections per service
    for _, url, path in services(b):     # warm up, so the measurement holds the connections only
        for _ in range(20):
            assert requests.get(f"{url}{path}", timeout=DEADLINE_S).status_code == 200
    before = rss_kb(b.pid)
    socks = []
    try:
        for _, url, path in services(b):
            socks += [Slowloris(port_of(url), path, SLOWLORIS_HEAD_BYTES) for _ in range(n)]
        for s in socks:
            s.drip()
        for _, url, path in services(b):
            assert requests.get(f"{url}{path}", timeout=DEADLINE_S).status_code == 200
        grown = (rss_kb(b.pid) - before) * 1024
        print(f"RSS grew {grown / 1024:.0f} KiB for {len(socks)} slowloris connections "
              f"({grown / len(socks):.0f} bytes each)")
        assert grown <= len(socks) * SLOWLORIS_RSS_BYTES, (
            f"{len(socks)} slowloris connections grew the RSS by {grown} bytes ({grown / len(socks):.0f} each); "
            f"the bound is {SLOWLORIS_RSS_BYTES} each")
        assert not any(s.closed() for s in socks[:10]), "closed before the 30 s header timeout"
    finally:
        for s in socks:
            s.close()
