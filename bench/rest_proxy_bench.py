#!/usr/bin/env python3
"""Produce throughput through a REST proxy, beside direct Kafka produce.

Three rows, each writing --records records of --value-bytes random bytes
(null keys) to a fresh topic of --partitions partitions, acks=all:

* v3 streaming: one `POST /v3/clusters/{c}/topics/{t}/records` request with
  Transfer-Encoding: chunked carrying every record as concatenated JSON
  (BINARY values), while a reader thread takes the per-record reports;
  timed from the first byte sent to the last report read.
* v2: `POST /topics/{t}` (application/vnd.kafka.binary.v2+json) with
  --v2-batch records per request, one keep-alive connection per client,
  --v2-clients clients at once.
* direct: confluent-kafka's Producer (librdkafka) to the same broker,
  acks=all, linger.ms=5; timed to the end of flush().

Every report is checked: a record that is not acknowledged counts as an
error. Prints one JSON object.

  tributary start --kafka-port 9092 --rest-proxy-port 8082 --data-dir /tmp/d &
  python3 bench/rest_proxy_bench.py --url http://127.0.0.1:8082 --bootstrap 127.0.0.1:9092
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import socket
import threading
import time
import urllib.parse
import urllib.request
import uuid


def call(method, url, body=None, content_type="application/json"):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": content_type})
    with urllib.request.urlopen(req, timeout=60) as r:
        raw = r.read()
        return json.loads(raw) if raw else None


def new_topic(url, cluster, partitions):
    name = f"rest-bench-{uuid.uuid4().hex[:8]}"
    call("POST", f"{url}/v3/clusters/{cluster}/topics", {"topic_name": name, "partitions_count": partitions})
    return name


def v3_stream(url, cluster, topic, records, value_bytes):
    u = urllib.parse.urlsplit(url)
    payload = base64.b64encode(os.urandom(value_bytes)).decode()
    line = (json.dumps({"value": {"type": "BINARY", "data": payload}}) + "\n").encode()
    sock = socket.create_connection((u.hostname, u.port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    path = f"/v3/clusters/{cluster}/topics/{topic}/records"
    head = (f"POST {path} HTTP/1.1\r\nHost: {u.netloc}\r\nContent-Type: application/json\r\n"
            "Transfer-Encoding: chunked\r\n\r\n").encode()
    result = {"ok": 0, "errors": 0, "first_error": None}
    done = threading.Event()

    def reader():
        f = sock.makefile("rb")
        status = f.readline()
        if b" 200 " not in status:
            result["first_error"] = status.decode(errors="replace").strip()
            done.set()
            return
        chunked = False
        while True:
            h = f.readline().strip().lower()
            if not h:
                break
            if h.startswith(b"transfer-encoding:") and b"chunked" in h:
                chunked = True
        decoder, text = json.JSONDecoder(), ""
        while result["ok"] + result["errors"] < records:
            if chunked:
                size = int(f.readline().split(b";")[0], 16)
                if size == 0:
                    break
                data = f.read(size)
                f.readline()
            else:
                data = f.read1(65536)
                if not data:
                    break
            text += data.decode()
            at = 0
            while True:
                while at < len(text) and text[at].isspace():
                    at += 1
                try:
                    report, at = decoder.raw_decode(text, at)
                except ValueError:
                    break
                if report.get("error_code") == 200:
                    result["ok"] += 1
                else:
                    result["errors"] += 1
                    result["first_error"] = result["first_error"] or report.get("message")
            text = text[at:]
        done.set()

    t = threading.Thread(target=reader, daemon=True)
    start = time.perf_counter()
    t.start()
    sock.sendall(head)
    per_chunk = 500
    sent = 0
    while sent < records:
        n = min(per_chunk, records - sent)
        body = line * n
        sock.sendall(f"{len(body):x}\r\n".encode() + body + b"\r\n")
        sent += n
    sock.sendall(b"0\r\n\r\n")
    done.wait(600)
    elapsed = time.perf_counter() - start
    sock.close()
    return {"records": records, "seconds": elapsed, "per_second": result["ok"] / elapsed if elapsed else 0,
            "errors": result["errors"] + (records - result["ok"] - result["errors"]),
            "first_error": result["first_error"]}


def v2_produce(url, topic, records, value_bytes, batch, clients):
    u = urllib.parse.urlsplit(url)
    payload = base64.b64encode(os.urandom(value_bytes)).decode()
    body = json.dumps({"records": [{"value": payload}] * batch}).encode()
    per_client = records // clients // batch
    result = {"ok": 0, "errors": 0, "first_error": None}
    lock = threading.Lock()

    def client():
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=120)
        for _ in range(per_client):
            conn.request("POST", f"/topics/{topic}", body=body,
                         headers={"Content-Type": "application/vnd.kafka.binary.v2+json"})
            r = conn.getresponse()
            answer = json.loads(r.read())
            ok = sum(1 for o in answer.get("offsets", []) if o.get("error_code") is None)
            with lock:
                result["ok"] += ok
                result["errors"] += batch - ok
                if ok < batch and not result["first_error"]:
                    result["first_error"] = answer.get("message") or str(answer)[:200]
        conn.close()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    total = per_client * batch * clients
    return {"records": total, "seconds": elapsed, "per_second": result["ok"] / elapsed if elapsed else 0,
            "errors": result["errors"], "first_error": result["first_error"], "batch": batch, "clients": clients}


def direct(bootstrap, topic, records, value_bytes):
    from confluent_kafka import Producer
    value = os.urandom(value_bytes)
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5,
                  "queue.buffering.max.messages": 1_000_000})
    result = {"ok": 0, "errors": 0, "first_error": None}

    def report(err, _msg):
        if err is None:
            result["ok"] += 1
        else:
            result["errors"] += 1
            result["first_error"] = result["first_error"] or str(err)

    start = time.perf_counter()
    for _ in range(records):
        while True:
            try:
                p.produce(topic, value=value, on_delivery=report)
                break
            except BufferError:
                p.poll(0.01)
        p.poll(0)
    p.flush(300)
    elapsed = time.perf_counter() - start
    return {"records": records, "seconds": elapsed, "per_second": result["ok"] / elapsed if elapsed else 0,
            "errors": result["errors"] + (records - result["ok"] - result["errors"]),
            "first_error": result["first_error"]}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", required=True, help="REST proxy base URL")
    ap.add_argument("--bootstrap", required=True, help="Kafka bootstrap of the same cluster")
    ap.add_argument("--records", type=int, default=200_000)
    ap.add_argument("--value-bytes", type=int, default=100)
    ap.add_argument("--partitions", type=int, default=3)
    ap.add_argument("--v2-batch", type=int, default=500)
    ap.add_argument("--v2-clients", type=int, default=2)
    a = ap.parse_args()
    url = a.url.rstrip("/")
    cluster = call("GET", f"{url}/v3/clusters")["data"][0]["cluster_id"]
    out = {"records": a.records, "value_bytes": a.value_bytes, "partitions": a.partitions, "phases": {}}
    for name, fn in (
        ("direct", lambda t: direct(a.bootstrap, t, a.records, a.value_bytes)),
        ("v3_stream", lambda t: v3_stream(url, cluster, t, a.records, a.value_bytes)),
        ("v2", lambda t: v2_produce(url, t, a.records, a.value_bytes, a.v2_batch, a.v2_clients)),
    ):
        topic = new_topic(url, cluster, a.partitions)
        try:
            out["phases"][name] = fn(topic)
        except Exception as e:  # noqa: BLE001 - reported, not hidden
            out["phases"][name] = {"error": f"{type(e).__name__}: {e}"}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
