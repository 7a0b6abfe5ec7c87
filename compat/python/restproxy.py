"""Helpers for the REST proxy tests: JSON calls, concatenated-JSON answers,
and a `tributary rest-proxy` process on a free port."""

from __future__ import annotations

import contextlib
import http.client
import json
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

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
