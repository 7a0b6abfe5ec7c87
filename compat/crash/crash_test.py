#!/usr/bin/env python3
"""Crash test: kill -9 the broker repeatedly during an acks=all idempotent
produce, restart it on the same data directory, and check the recorded
history with the shared history checker: no acknowledged record may be lost,
duplicated, or moved.

    python3 compat/crash/crash_test.py --bin target/debug/tributary --cycles 20

The workload (producers with acks=all + enable.idempotence, consumers that
assign partitions and read from offset 0, a final drain) is the shared
Jepsen-style driver; this script owns the broker: it starts it on a free
port, and every few seconds SIGKILLs it and starts it again, waiting until it
accepts connections. Exit status 0 means the checker found no anomaly, at
least --cycles kills happened, and enough sends were acknowledged for the
run to mean something.
"""
import argparse
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# The shared workload driver and history checker live beside the repository.
TOOL_DIRS = [Path(p) for p in (os.environ.get("TRIBUTARY_SHARED_TOOLS"), ROOT.parent / "shared" / "tools", "/work/shared/tools") if p]
TOOLS = next((d for d in TOOL_DIRS if (d / "kafka_history_checker.py").exists()), TOOL_DIRS[0])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return True
        except OSError:
            time.sleep(0.01)
    return False


class BrokerProcess:
    """The broker under test; restarted in place after every kill."""

    def __init__(self, binary: str, port: int, data_dir: str, log_path: Path):
        self.binary, self.port, self.data_dir, self.log_path = binary, port, data_dir, log_path
        self.proc = None
        self.lock = threading.Lock()
        self.kills = 0

    def start(self):
        log = open(self.log_path, "a")
        log.write(f"\n===== start #{self.kills}\n")
        log.flush()
        self.proc = subprocess.Popen(
            [self.binary, "start", "--kafka-port", str(self.port), "--data-dir", self.data_dir,
             "--no-schema-registry", "--no-rest-proxy"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        if not wait_listening(self.port, 30):
            raise RuntimeError(f"broker did not listen on {self.port}; see {self.log_path}")

    def kill_and_restart(self) -> str:
        with self.lock:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
            self.kills += 1
            self.start()
            return f"kill -9 #{self.kills}, restarted pid {self.proc.pid}"

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=str(ROOT / "target" / "debug" / "tributary"))
    ap.add_argument("--cycles", type=int, default=20, help="kill -9 cycles (at least)")
    ap.add_argument("--every", type=float, default=3.0, help="seconds between kills")
    ap.add_argument("--keys", type=int, default=6, help="partitions")
    ap.add_argument("--producers", type=int, default=3)
    ap.add_argument("--consumers", type=int, default=2)
    ap.add_argument("--rate", type=float, default=150, help="sends/s per producer")
    ap.add_argument("--min-acked", type=int, default=2000, help="fail if fewer sends were acknowledged")
    ap.add_argument("--out", default=None, help="directory for history and logs (default: a temp dir)")
    a = ap.parse_args()

    if not (TOOLS / "kafka_workload_driver.py").exists():
        print(f"FAIL: the shared workload driver is not in {[str(d) for d in TOOL_DIRS]}; set TRIBUTARY_SHARED_TOOLS")
        return 2
    out = Path(a.out or tempfile.mkdtemp(prefix="tributary-crash-"))
    out.mkdir(parents=True, exist_ok=True)
    data_dir = str(out / "data")
    port = free_port()
    broker = BrokerProcess(a.bin, port, data_dir, out / "broker.log")
    broker.start()
    bootstrap = f"127.0.0.1:{port}"
    print(f"crash test: broker on {bootstrap}, data {data_dir}, output {out}", flush=True)

    # The topic with RF=1 and min.insync.replicas=1 (the driver's own create asks for 3/2).
    from confluent_kafka.admin import AdminClient, NewTopic
    adm = AdminClient({"bootstrap.servers": bootstrap})
    for f in adm.create_topics([NewTopic("jq", a.keys, 1, config={"min.insync.replicas": "1"})]).values():
        f.result(30)

    # Each kill takes its interval plus the restart, which a loaded machine
    # stretches; the run is twice as long as the kills need, and kills stop
    # once --cycles have happened, so a slow restart cannot leave the run short.
    duration = 2 * a.cycles * a.every + 10
    history = out / "history.jsonl"
    nemesis_requests, nemesis_done = out / "nemesis.cmd", out / "nemesis.done"
    # The driver runs --nemesis as a shell command; it asks this process, which owns the
    # broker, for a kill and waits until the broker has been restarted and listens again.
    # Waiting matters: the driver starts its final drain right after the last nemesis, and a
    # kill landing in the middle of that drain would fail the run for the wrong reason.
    nemesis_requests.write_text("")
    nemesis_done.write_text("")
    requests_arg, done_arg = shlex.quote(str(nemesis_requests)), shlex.quote(str(nemesis_done))
    nemesis = (f"n=$(( $(grep -c kill {requests_arg}) + 1 )); echo kill >> {requests_arg}; "
               f"while [ \"$(grep -c . {done_arg})\" -lt \"$n\" ]; do sleep 0.05; done; tail -n 1 {done_arg}")
    driver = subprocess.Popen(
        [sys.executable, str(TOOLS / "kafka_workload_driver.py"), "--bootstrap", bootstrap, "--topic", "jq",
         "--keys", str(a.keys), "--replication", "1", "--producers", str(a.producers), "--consumers", str(a.consumers),
         "--rate", str(a.rate), "--duration", str(duration), "--timeout-ms", "60000", "--drain-s", "90",
         "--nemesis", nemesis, "--nemesis-every", str(a.every), "--history", str(history)],
        stdout=open(out / "driver.log", "w"), stderr=subprocess.STDOUT)

    handled = 0
    try:
        while driver.poll() is None:
            requests = nemesis_requests.read_text().count("kill")
            while handled < requests:
                if broker.kills < a.cycles:
                    msg = broker.kill_and_restart()
                else:
                    msg = f"no kill: {broker.kills} kill -9 cycles done"
                handled += 1
                with open(nemesis_done, "a") as done_log:
                    done_log.write(msg + "\n")
                print(f"  {msg}", flush=True)
            time.sleep(0.05)
    finally:
        if driver.poll() is None:
            driver.kill()
        broker.stop()
    if driver.returncode != 0:
        print(f"FAIL: workload driver exited {driver.returncode}; see {out / 'driver.log'}")
        return 1

    ops = [json.loads(line) for line in history.read_text().splitlines() if line.strip()]
    acked = sum(1 for o in ops if o.get("f") == "send" and o.get("type") == "ok")
    unacked = sum(1 for o in ops if o.get("f") == "send" and o.get("type") != "ok")
    polled = sum(len(v) for o in ops if o.get("f") == "poll" for m in o["value"] for v in m[1].values())
    print(f"history: {len(ops)} operations, {acked} acknowledged sends, {unacked} unacknowledged, "
          f"{polled} records polled, {broker.kills} kill -9 cycles")
    check = subprocess.run([sys.executable, str(TOOLS / "kafka_history_checker.py"), str(history)],
                           capture_output=True, text=True)
    print(check.stdout.strip())
    if check.returncode != 0:
        print(f"FAIL: the history checker found anomalies (exit {check.returncode}); history: {history}")
        print(check.stderr.strip())
        return 1
    if broker.kills < a.cycles:
        print(f"FAIL: only {broker.kills} kill cycles happened, {a.cycles} were required")
        return 1
    if acked < a.min_acked:
        print(f"FAIL: only {acked} sends were acknowledged (< {a.min_acked}); the run proves too little")
        return 1
    print(f"PASS: 0 lost, 0 duplicated, 0 reordered acknowledged records over {broker.kills} kill -9 cycles")
    return 0


if __name__ == "__main__":
    sys.exit(main())
