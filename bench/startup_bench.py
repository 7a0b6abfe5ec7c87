#!/usr/bin/env python3
"""Platform start-up time: from exec of `tributary start` to every service it
runs accepting connections and answering.

A service counts as up at the first answer to a probe, each polled on a fresh
connection until it answers:

  * Kafka: an ApiVersions v0 round trip (a raw socket; a listening port alone
    is not enough, since the kernel accepts connections before the broker
    serves them);
  * the schema registry: `GET /` answering 200;
  * the REST proxy: `GET /v3/clusters` answering 200 (the proxy asks the
    broker for the cluster first, so this is the proxy serving, not just
    listening).

Cases, each over --runs runs, median/min/max reported:

  fresh     `tributary start` on a new, empty data directory (it creates the
            internal topics: `__consumer_offsets`, `_schemas`)
  existing  `tributary start` again on a data directory a previous start
            created and stopped cleanly (the timed starts reuse it in turn)
  detach    `tributary start --detach` on a new data directory, to its exit
            (it returns only once every service accepts connections); then the
            probes are checked off the clock and `tributary stop` stops it
  tansu     (with --tansu-bin) Tansu with its memory storage engine, from exec
            to an ApiVersions answer: Kafka is all it serves

Every process is started on free 127.0.0.1 ports, stopped (SIGTERM, then
SIGKILL after 10 s) before the next run, and its data directory deleted. One
JSON object is printed on stdout; progress goes to stderr.

    python3 bench/startup_bench.py --tributary-bin target/release/tributary --runs 10
    python3 bench/startup_bench.py --tributary-bin target/release/tributary --tansu-bin ~/.cache/tributary/tansu/tansu
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time

HOST = "127.0.0.1"
STOP_GRACE_S = 10.0


def log(*a):
    print("[startup_bench]", *a, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def free_ports(n: int) -> list[int]:
    ports: set[int] = set()
    while len(ports) < n:
        ports.add(free_port())
    return list(ports)


def kafka_answers(port: int) -> bool:
    """One ApiVersions v0 round trip on a new connection."""
    cid = b"startup-bench"
    req = struct.pack(">hhih", 18, 0, 1, len(cid)) + cid
    try:
        with socket.create_connection((HOST, port), timeout=2.0) as s:
            s.sendall(struct.pack(">i", len(req)) + req)
            head = b""
            while len(head) < 4:
                chunk = s.recv(4 - len(head))
                if not chunk:
                    return False
                head += chunk
            (size,) = struct.unpack(">i", head)
            body = b""
            while len(body) < size:
                chunk = s.recv(size - len(body))
                if not chunk:
                    return False
                body += chunk
        _corr, err = struct.unpack_from(">ih", body, 0)
        return err == 0
    except OSError:
        return False


def http_answers(port: int, path: str) -> bool:
    try:
        c = http.client.HTTPConnection(HOST, port, timeout=5.0)
        try:
            c.request("GET", path)
            return c.getresponse().status == 200
        finally:
            c.close()
    except OSError:
        return False


def probes(ports: dict[str, int]) -> dict[str, callable]:
    out = {}
    for service, port in ports.items():
        if service == "broker":
            out[service] = lambda p=port: kafka_answers(p)
        elif service == "schema-registry":
            out[service] = lambda p=port: http_answers(p, "/")
        else:
            out[service] = lambda p=port: http_answers(p, "/v3/clusters")
    return out


def wait_up(proc: subprocess.Popen | None, checks: dict, t0: float, timeout: float) -> dict[str, float]:
    """Milliseconds from t0 to each service's first answer."""
    pending = dict(checks)
    up: dict[str, float] = {}
    deadline = t0 + timeout
    while pending:
        for service, check in list(pending.items()):
            if check():
                up[service] = (time.perf_counter() - t0) * 1000.0
                del pending[service]
        if not pending:
            break
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"exited with status {proc.returncode} before {', '.join(pending)} answered")
        if time.perf_counter() > deadline:
            raise RuntimeError(f"{', '.join(pending)} did not answer within {timeout:g} s")
        time.sleep(0.0005)
    return up


def stop(proc: subprocess.Popen, sig=signal.SIGTERM) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def start_argv(binary: str, data_dir: str, ports: dict[str, int]) -> list[str]:
    return [binary, "start", "--data-dir", data_dir, "--kafka-port", str(ports["broker"]),
            "--schema-registry-port", str(ports["schema-registry"]), "--rest-proxy-port", str(ports["rest-proxy"])]


def new_ports() -> dict[str, int]:
    return dict(zip(["broker", "schema-registry", "rest-proxy"], free_ports(3)))


def summarize(samples: list[float], per_service: dict[str, list[float]]) -> dict:
    return {
        "samples_ms": [round(s, 1) for s in samples],
        "median_ms": round(statistics.median(samples), 1),
        "min_ms": round(min(samples), 1),
        "max_ms": round(max(samples), 1),
        "per_service_median_ms": {k: round(statistics.median(v), 1) for k, v in per_service.items()},
    }


def foreground_run(binary: str, data_dir: str, timeout: float, log_path: str) -> dict[str, float]:
    ports = new_ports()
    with open(log_path, "a") as out:
        t0 = time.perf_counter()
        proc = subprocess.Popen(start_argv(binary, data_dir, ports), stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        return wait_up(proc, probes(ports), t0, timeout)
    finally:
        stop(proc)
        if proc.returncode not in (0, -signal.SIGTERM):
            raise RuntimeError(f"tributary start exited {proc.returncode} on SIGTERM; see {log_path}")


def bench_tributary(binary: str, runs: int, root: str, timeout: float, detach: bool, work: str) -> dict:
    out: dict = {}
    log_path = os.path.join(work, "tributary.log")
    # fresh
    samples, per = [], {}
    for i in range(runs):
        d = tempfile.mkdtemp(prefix="startup-fresh-", dir=root)
        try:
            up = foreground_run(binary, d, timeout, log_path)
        finally:
            shutil.rmtree(d, ignore_errors=True)
        samples.append(max(up.values()))
        for k, v in up.items():
            per.setdefault(k, []).append(v)
        log(f"fresh {i + 1}/{runs}: {max(up.values()):.1f} ms {json.dumps({k: round(v, 1) for k, v in up.items()})}")
    out["fresh"] = summarize(samples, per)
    # existing: one untimed start creates the directory
    d = tempfile.mkdtemp(prefix="startup-existing-", dir=root)
    try:
        foreground_run(binary, d, timeout, log_path)
        samples, per = [], {}
        for i in range(runs):
            up = foreground_run(binary, d, timeout, log_path)
            samples.append(max(up.values()))
            for k, v in up.items():
                per.setdefault(k, []).append(v)
            log(f"existing {i + 1}/{runs}: {max(up.values()):.1f} ms")
        out["existing"] = summarize(samples, per)
    finally:
        shutil.rmtree(d, ignore_errors=True)
    if detach:
        samples = []
        for i in range(runs):
            d = tempfile.mkdtemp(prefix="startup-detach-", dir=root)
            ports = new_ports()
            try:
                t0 = time.perf_counter()
                r = subprocess.run(start_argv(binary, d, ports) + ["--detach"], capture_output=True, text=True,
                                   stdin=subprocess.DEVNULL, timeout=timeout + 30)
                ms = (time.perf_counter() - t0) * 1000.0
                if r.returncode != 0:
                    raise RuntimeError(f"start --detach exited {r.returncode}: {r.stderr.strip()[-500:]}")
                missing = [s for s, check in probes(ports).items() if not check()]
                if missing:
                    raise RuntimeError(f"start --detach returned but {', '.join(missing)} did not answer")
                samples.append(ms)
                log(f"detach {i + 1}/{runs}: {ms:.1f} ms")
            finally:
                subprocess.run([binary, "stop", "--data-dir", d, "--timeout", "10s", "--force"],
                               capture_output=True, stdin=subprocess.DEVNULL, timeout=60)
                shutil.rmtree(d, ignore_errors=True)
        out["detach"] = summarize(samples, {})
    return out


def bench_tansu(binary: str, runs: int, timeout: float, work: str) -> dict:
    samples = []
    log_path = os.path.join(work, "tansu.log")
    for i in range(runs):
        port = free_port()
        url = f"tcp://{HOST}:{port}"
        argv = [binary, "broker", "--listener-url", url, "--advertised-listener-url", url,
                "--storage-engine", "memory://"]
        with open(log_path, "a") as out:
            t0 = time.perf_counter()
            proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True)
        try:
            up = wait_up(proc, {"broker": lambda p=port: kafka_answers(p)}, t0, timeout)
        finally:
            stop(proc, signal.SIGINT)
        samples.append(up["broker"])
        log(f"tansu {i + 1}/{runs}: {up['broker']:.1f} ms")
    return {"fresh": summarize(samples, {"broker": samples}),
            "argv": "tansu broker --listener-url tcp://127.0.0.1:PORT --advertised-listener-url "
                    "tcp://127.0.0.1:PORT --storage-engine memory://"}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tributary-bin", help="the tributary binary")
    ap.add_argument("--tansu-bin", help="a tansu binary, to time its start beside")
    ap.add_argument("--runs", type=int, default=10, help="runs per case (default %(default)s)")
    ap.add_argument("--data-root", default=tempfile.gettempdir(),
                    help="where the data directories go (default %(default)s; a real disk, not tmpfs)")
    ap.add_argument("--timeout", type=float, default=30.0, help="longest wait for one start, in seconds")
    ap.add_argument("--no-detach", action="store_true", help="skip the --detach case")
    args = ap.parse_args()
    if args.runs < 1:
        ap.error("--runs must be at least 1")
    if not args.tributary_bin and not args.tansu_bin:
        ap.error("give --tributary-bin, --tansu-bin or both")
    work = tempfile.mkdtemp(prefix="startup-bench-")
    result: dict = {"runs": args.runs, "probes": {"broker": "ApiVersions v0", "schema-registry": "GET / → 200",
                                                  "rest-proxy": "GET /v3/clusters → 200"},
                    "logs": work}
    if args.tributary_bin:
        try:
            result["tributary"] = bench_tributary(os.path.abspath(args.tributary_bin), args.runs, args.data_root,
                                                  args.timeout, not args.no_detach, work)
        except Exception as e:  # noqa: BLE001 - reported in the JSON, the run goes on
            result["tributary"] = {"error": f"{type(e).__name__}: {e}"}
    if args.tansu_bin:
        try:
            result["tansu"] = bench_tansu(args.tansu_bin, args.runs, args.timeout, work)
        except Exception as e:  # noqa: BLE001
            result["tansu"] = {"error": f"{type(e).__name__}: {e}"}
    print(json.dumps(result))
    return 0 if not any("error" in (result.get(k) or {}) for k in ("tributary", "tansu")) else 1


if __name__ == "__main__":
    sys.exit(main())
