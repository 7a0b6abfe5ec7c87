"""Helpers for the REST proxy tests: JSON calls, concatenated-JSON answers,
a `tributary rest-proxy` process on a free port, and the Kafka side (a new
topic, its records read back by confluent-kafka)."""

from __future__ import annotations

import contextlib
import http.client
import json
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

import conftest


def call(method: str, url: str, body=None, headers: dict | None = None):
    """One request with a JSON body; (status, decoded JSON or None)."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            raw = r.read()
            return r.status, (json.loads(raw) if raw else None)
    except urllib.error.HTTPError as e:
        raw = e.read()
        return e.code, (json.loads(raw) if raw else None)


def concatenated(text: str) -> list:
    """The JSON values of a concatenated-JSON text, in order."""
    decoder, values, at = json.JSONDecoder(), [], 0
    while True:
        while at < len(text) and text[at].isspace():
            at += 1
        if at == len(text):
            return values
        value, at = decoder.raw_decode(text, at)
        values.append(value)


def post_stream(url: str, chunks) -> tuple[int, list]:
    """POSTs `chunks` (bytes) with Transfer-Encoding: chunked; (status, reports)."""
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=120)
    try:
        conn.request("POST", u.path, body=iter(chunks), encode_chunked=True,
                     headers={"Content-Type": "application/json", "Transfer-Encoding": "chunked"})
        r = conn.getresponse()
        return r.status, concatenated(r.read().decode())
    finally:
        conn.close()


@contextlib.contextmanager
def rest_proxy(bootstrap: str, log: Path, extra: list[str] | None = None):
    """`tributary rest-proxy` against `bootstrap` on a free port; yields its URL."""
    port = conftest.free_port()
    with open(log, "wb") as out:
        p = subprocess.Popen([str(conftest.broker_binary()), "rest-proxy", "--bootstrap-servers", bootstrap,
                              "--host", "127.0.0.1", "--port", str(port)] + (extra or []),
                             stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if call("GET", f"{url}/v3/clusters")[0] == 200:
                    break
            except OSError:
                pass
            if p.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the REST proxy did not come up: {log.read_text()}")
            time.sleep(0.1)
        yield url
    finally:
        p.terminate()
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()


def new_topic(bootstrap: str, partitions: int = 1) -> str:
    """A new topic, created with confluent-kafka's AdminClient."""
    name = f"rest-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(name, partitions, 1)])[name].result(10)
    return name


def read_all(bootstrap: str, topic: str, partitions: int, count: int) -> list:
    """`count` records of `topic` from the beginning, by confluent-kafka."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"g-{uuid.uuid4().hex[:6]}",
                  "enable.auto.commit": False})
    try:
        c.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
        out = []
        deadline = time.monotonic() + 30
        while len(out) < count and time.monotonic() < deadline:
            for m in c.consume(count - len(out), 0.25):
                assert m.error() is None, m.error()
                out.append(m)
        assert len(out) == count, f"read {len(out)} of {count}"
        return out
    finally:
        c.close()
