#!/usr/bin/env python3
"""Schema Registry throughput: registrations per second and cached lookups per second.

Against a running Confluent-compatible registry (--url), N client processes
(--clients), each with one keep-alive HTTP/1.1 connection, run three phases of
--seconds each, one after the other:

  register      POST /subjects/{s}/versions with a schema the registry has not
                seen: an Avro record whose `doc` names the client and a counter,
                with the same fields as the subject's previous version, so every
                request is a new id, a new version and a real BACKWARD check
                against the latest version. Each client writes to its own
                subject (--subjects-per-client spreads them wider). A registration
                is answered only once it is stored (in Tributary: produced with
                acks=all to `_schemas` and read back), so this is the write path.
  get_by_id     GET /schemas/ids/{id} for ids registered above, in random order:
                what every deserializer does once per id.
  lookup        POST /subjects/{s} with the body of a registered version: what a
                serializer with auto.register.schemas=false does; the registry
                parses and canonicalizes the schema to find it.

Every response must be 200 with the expected id; anything else counts as an
error (the first one is reported). Prints exactly one JSON object on stdout:
per phase the requests, errors, requests/s and latency percentiles (ms).
The clients are Python processes: on a small machine they share the CPU with
the registry, so read the numbers as a floor.

Example:
  tributary start --kafka-port 9092 --schema-registry-port 8081 --data-dir /tmp/d &
  python3 bench/registry_bench.py --url http://127.0.0.1:8081 --clients 4 --seconds 10
"""
from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing as mp
import random
import sys
import time
import urllib.parse
import uuid

CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"
FIELDS = [{"name": "id", "type": "long"}, {"name": "name", "type": "string"},
          {"name": "amount", "type": ["null", "double"], "default": None}]


def avro_schema(doc: str) -> str:
    return json.dumps({"type": "record", "name": "BenchOrder", "namespace": "bench",
                       "doc": doc, "fields": FIELDS})


def pct(sorted_vals, q):
    if not sorted_vals:
        return None
    i = min(len(sorted_vals) - 1, max(0, int(round(q * (len(sorted_vals) - 1)))))
    return round(sorted_vals[i], 3)


class Conn:
    def __init__(self, url: str, timeout: float):
        u = urllib.parse.urlsplit(url)
        self.host, self.port = u.hostname or "127.0.0.1", u.port or 8081
        self.timeout = timeout
        self.c = http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def call(self, method: str, path: str, body: str | None = None):
        headers = {"Accept": CONTENT_TYPE}
        if body is not None:
            headers["Content-Type"] = CONTENT_TYPE
        for attempt in (0, 1):
            try:
                self.c.request(method, path, body=body, headers=headers)
                r = self.c.getresponse()
                data = r.read()
                return r.status, data
            except (http.client.HTTPException, OSError):
                # A dropped keep-alive connection: reconnect once.
                self.c.close()
                self.c = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
                if attempt:
                    raise
        raise RuntimeError("unreachable")


def subject_for(run: str, client: int, i: int, per_client: int) -> str:
    return f"bench-{run}-c{client}-s{i % per_client}-value"


def client_main(phase, url, run, client, seconds, per_client, work, out):
    """One client process: runs `phase` for `seconds`, sends (stats, produced) to `out`."""
    conn = Conn(url, 30.0)
    lat, errors, first_error, produced = [], 0, None, []
    rnd = random.Random(client)
    deadline = time.perf_counter() + seconds
    i = 0
    while time.perf_counter() < deadline:
        if phase == "register":
            subject = subject_for(run, client, i, per_client)
            body = json.dumps({"schema": avro_schema(f"c{client}-{i}")})
            path = f"/subjects/{urllib.parse.quote(subject, safe='')}/versions"
            method, expect = "POST", None
        else:
            subject, schema_id, doc = work[rnd.randrange(len(work))]
            if phase == "get_by_id":
                method, path, body = "GET", f"/schemas/ids/{schema_id}", None
            else:
                method, path = "POST", f"/subjects/{urllib.parse.quote(subject, safe='')}"
                body = json.dumps({"schema": avro_schema(doc)})
            expect = schema_id
        t = time.perf_counter()
        try:
            status, data = conn.call(method, path, body)
        except Exception as e:  # noqa: BLE001 - every failure is one error of the run
            status, data = None, str(e).encode()
        elapsed = (time.perf_counter() - t) * 1000
        ok = status == 200
        if ok:
            try:
                answer = json.loads(data)
            except ValueError:
                answer, ok = None, False
            if ok and phase == "register":
                produced.append((subject, answer.get("id"), f"c{client}-{i}"))
                ok = isinstance(answer.get("id"), int)
            elif ok and phase == "lookup":
                ok = answer.get("id") == expect
            elif ok:
                ok = "schema" in answer
        if ok:
            lat.append(elapsed)
        else:
            errors += 1
            if first_error is None:
                first_error = f"{method} {path}: HTTP {status}: {data[:200]!r}"
        i += 1
    out.put({"lat": lat, "errors": errors, "first_error": first_error, "produced": produced})


def run_phase(phase, args, run, work):
    out = mp.Queue()
    procs = [mp.Process(target=client_main,
                        args=(phase, args.url, run, c, args.seconds, args.subjects_per_client, work, out))
             for c in range(args.clients)]
    started = time.perf_counter()
    for p in procs:
        p.start()
    results = [out.get(timeout=args.seconds + 120) for _ in procs]
    for p in procs:
        p.join(timeout=10)
    wall = time.perf_counter() - started
    lat = sorted(x for r in results for x in r["lat"])
    errors = sum(r["errors"] for r in results)
    first = next((r["first_error"] for r in results if r["first_error"]), None)
    produced = [x for r in results for x in r["produced"]]
    stats = {
        "clients": args.clients, "seconds": args.seconds, "ok": len(lat), "errors": errors,
        "first_error": first, "per_second": round(len(lat) / args.seconds, 1),
        "wall_s": round(wall, 2), "p50_ms": pct(lat, 0.5), "p99_ms": pct(lat, 0.99), "max_ms": pct(lat, 1.0),
    }
    return stats, produced


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", default="http://127.0.0.1:8081", help="registry base URL (default %(default)s)")
    ap.add_argument("--clients", type=int, default=4, help="client processes (default %(default)s)")
    ap.add_argument("--seconds", type=float, default=10.0, help="seconds per phase (default %(default)s)")
    ap.add_argument("--subjects-per-client", type=int, default=1,
                    help="subjects each client registers into, round robin (default %(default)s)")
    ap.add_argument("--phases", default="register,get_by_id,lookup", help="comma-separated (default %(default)s)")
    args = ap.parse_args()
    run = uuid.uuid4().hex[:8]
    phases = [p.strip() for p in args.phases.split(",") if p.strip()]
    result = {"url": args.url, "run": run, "phases": {}}
    work = []
    for phase in phases:
        if phase not in ("register", "get_by_id", "lookup"):
            print(f"unknown phase {phase!r}", file=sys.stderr)
            return 2
        if phase != "register" and not work:
            # Lookups need registered schemas: register a few first, off the clock.
            _, work = run_phase("register", argparse.Namespace(**{**vars(args), "seconds": 2.0}), run + "w", [])
            if not work:
                result["phases"][phase] = {"error": "no schema could be registered to look up"}
                continue
        stats, produced = run_phase(phase, args, run, work)
        if phase == "register":
            work = produced or work
        result["phases"][phase] = stats
    print(json.dumps(result, indent=2))
    return 1 if any(p.get("errors") or p.get("error") for p in result["phases"].values()) else 0


if __name__ == "__main__":
    sys.exit(main())
