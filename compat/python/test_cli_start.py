"""`tributary start` as a product, and `status|stop|logs|destroy` around it.

Every test starts its own platform on free ports with a temporary data
directory, and stops whatever it started, even when it fails: foreground
processes are killed with the test process (setpriv --pdeathsig) and at
teardown, detached ones are stopped with `tributary stop --force` and, if
that fails, killed by the pid in their run file.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient, ConfigResource, ResourceType

import kwire
from conftest import _DEATH_SIG, broker_binary, free_port

pytestmark = pytest.mark.restart

HOST = "127.0.0.1"
RUN_FILE = "tributary-run.json"


def tributary(*args, timeout: float = 60, **kw) -> subprocess.CompletedProcess:
    """Runs the CLI to completion (stdin closed, so it has no terminal)."""
    return subprocess.run([str(broker_binary()), *map(str, args)], capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=timeout, **kw)


def one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, f"expected a one-line error, got:\n{stderr}"
    return lines[0]


def free_ports(n: int) -> list[int]:
    ports: set[int] = set()
    while len(ports) < n:
        ports.add(free_port())
    return list(ports)


def port_args(kafka: int, registry: int, proxy: int) -> list[str]:
    return ["--kafka-port", str(kafka), "--schema-registry-port", str(registry), "--rest-proxy-port", str(proxy)]


def listening(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=0.5):
            return True
    except OSError:
        return False


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status == 200
    except Exception:  # noqa: BLE001
        return False


def check_answers(service: str, url: str) -> None:
    """The service behind a URL the table printed answers: Kafka a Metadata
    round trip, the registry `GET /` and the REST proxy `GET /v3/clusters`."""
    if service == "broker":
        host, port = kwire.parse_hostport(url)
        md = kwire.metadata_v1(host, port, topics=[], timeout=5)
        assert md.brokers, url
    elif service == "schema-registry":
        assert http_ok(f"{url}/"), url
    elif service == "rest-proxy":
        assert http_ok(f"{url}/v3/clusters"), url
    else:
        pytest.fail(f"unknown service {service} in the table")


class Platforms:
    """Data directories and foreground processes of one test; all stopped at teardown."""

    def __init__(self, tmp_path: Path):
        self.tmp_path = tmp_path
        self.dirs: list[Path] = []
        self.procs: list[subprocess.Popen] = []

    def data_dir(self, name: str = "data") -> Path:
        d = self.tmp_path / name
        self.dirs.append(d)
        return d

    def foreground(self, *args) -> subprocess.Popen:
        p = subprocess.Popen(_DEATH_SIG + [str(broker_binary()), "start", *map(str, args)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
        self.procs.append(p)
        return p

    def close(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(timeout=10)
        for d in self.dirs:
            if not d.exists():
                continue
            tributary("stop", "--data-dir", d, "--timeout", "10s", "--force", timeout=60)
            run = d / RUN_FILE
            if run.exists():
                try:
                    os.kill(json.loads(run.read_text())["pid"], signal.SIGKILL)
                except (OSError, ValueError, KeyError):
                    pass


@pytest.fixture
def platforms(tmp_path):
    p = Platforms(tmp_path)
    yield p
    p.close()


def read_until(proc: subprocess.Popen, last: str, timeout: float = 30) -> list[str]:
    """stdout lines up to and including the first that starts with `last`."""
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            pytest.fail(f"start exited ({proc.wait(5)}) before printing {last!r}:\n"
                        + "".join(lines) + proc.stderr.read())
        lines.append(line.rstrip("\n"))
        if line.startswith(last):
            return lines
    pytest.fail(f"no {last!r} line within {timeout} s:\n" + "\n".join(lines))


def stop_foreground(proc: subprocess.Popen) -> str:
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, f"start exited {proc.returncode} after SIGTERM:\n{err}"
    return out


def table_urls(lines: list[str]) -> dict[str, str]:
    """The SERVICE / URL table of start's output."""
    header = lines.index(next(l for l in lines if l.startswith("SERVICE")))
    urls = {}
    for line in lines[header + 1:]:
        if not line.strip():
            break
        service, url = line.split()
        urls[service] = url
    return urls


# --------------------------------------------------------------------------- foreground


def test_start_prints_every_service_in_order_and_each_url_answers(platforms):
    kafka, registry, proxy = free_ports(3)
    d = platforms.data_dir()
    t0 = time.monotonic()
    p = platforms.foreground("--data-dir", d, *port_args(kafka, registry, proxy))
    lines = read_until(p, "Ctrl-C stops the platform")
    elapsed = time.monotonic() - t0
    steps = [l for l in lines if l.startswith("Starting ") or " is up at " in l]
    expected = []
    for service in ("broker", "schema-registry", "rest-proxy"):
        expected += [f"Starting {service}", f"{service} is up at"]
    assert len(steps) == 6 and all(s.startswith(e) for s, e in zip(steps, expected)), lines
    urls = table_urls(lines)
    assert urls == {"broker": f"{HOST}:{kafka}", "schema-registry": f"http://{HOST}:{registry}",
                    "rest-proxy": f"http://{HOST}:{proxy}"}, lines
    for service, url in urls.items():
        check_answers(service, url)
    text = "\n".join(lines)
    assert f"export TRIBUTARY_BROKERS={HOST}:{kafka}" in text and "tributary topic create" in text, text
    assert elapsed < 5, f"start took {elapsed:.2f} s to print its table"
    out = stop_foreground(p)
    assert "Stopping broker" in out and "Tributary stopped" in out, out
    assert not any(listening(port) for port in (kafka, registry, proxy))
    assert not (d / RUN_FILE).exists(), "a clean stop removes the run file"


def test_start_json_events_parse(platforms):
    kafka, registry, proxy = free_ports(3)
    d = platforms.data_dir()
    p = platforms.foreground("--data-dir", d, *port_args(kafka, registry, proxy), "-o", "json")
    lines = read_until(p, '{"event":"started"')
    events = [json.loads(l) for l in lines]
    assert [(e["event"], e.get("service")) for e in events] == [
        ("starting", "broker"), ("up", "broker"), ("starting", "schema-registry"), ("up", "schema-registry"),
        ("starting", "rest-proxy"), ("up", "rest-proxy"), ("started", None)], events
    started = events[-1]
    assert started["kafka"] == [f"{HOST}:{kafka}"]
    assert started["schema_registry"] == f"http://{HOST}:{registry}"
    assert started["rest_proxy"] == f"http://{HOST}:{proxy}"
    assert started["already_running"] is False and started["detached"] is False
    assert started["data_dir"] == str(d) and started["cluster_id"]
    for s in started["services"]:
        check_answers(s["service"], s["url"])
    out = stop_foreground(p)
    tail = [json.loads(l) for l in out.splitlines() if l.strip()]
    assert tail[-1] == {"event": "stopped"}, tail


@pytest.mark.parametrize("busy", ["broker", "schema-registry", "rest-proxy"])
@pytest.mark.parametrize("detach", [False, True], ids=["foreground", "detach"])
def test_a_busy_port_is_one_line_naming_port_and_flag(platforms, busy, detach):
    ports = dict(zip(["broker", "schema-registry", "rest-proxy"], free_ports(3)))
    flag = {"broker": "--kafka-port", "schema-registry": "--schema-registry-port",
            "rest-proxy": "--rest-proxy-port"}[busy]
    d = platforms.data_dir()
    holder = socket.socket()
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    holder.bind((HOST, ports[busy]))
    holder.listen()
    try:
        r = tributary("start", "--data-dir", d, *(["--detach"] if detach else []),
                      *port_args(ports["broker"], ports["schema-registry"], ports["rest-proxy"]))
    finally:
        holder.close()
    assert r.returncode == 1, f"exit {r.returncode}\n{r.stdout}\n{r.stderr}"
    line = one_line(r.stderr)
    assert str(ports[busy]) in line and flag in line and "in use" in line, line
    others = [p for s, p in ports.items() if s != busy]
    assert not any(listening(p) for p in others), "nothing may be left listening"
    status = tributary("status", "--data-dir", d, "-o", "json")
    assert status.returncode == 1 and json.loads(status.stdout)["running"] is False, status.stdout


def test_an_unusable_data_dir_is_one_line_naming_it(platforms, tmp_path):
    kafka, registry, proxy = free_ports(3)
    if os.geteuid() != 0:
        parent = tmp_path / "read-only"
        parent.mkdir()
        parent.chmod(0o500)
        try:
            d = parent / "data"
            r = tributary("start", "--data-dir", d, *port_args(kafka, registry, proxy))
            assert r.returncode == 1, r.stderr
            line = one_line(r.stderr)
            assert str(d) in line and "--data-dir" in line, line
        finally:
            parent.chmod(0o700)
    # Root may write anywhere; a path under a regular file fails for everyone.
    plain = tmp_path / "plain-file"
    plain.write_text("not a directory")
    for detach in ([], ["--detach"]):
        d = plain / "data"
        r = tributary("start", "--data-dir", d, *detach, *port_args(kafka, registry, proxy))
        assert r.returncode == 1, f"{detach}: {r.stdout}\n{r.stderr}"
        line = one_line(r.stderr)
        assert str(d) in line and "--data-dir" in line, line
        assert not any(listening(p) for p in (kafka, registry, proxy))


# --------------------------------------------------------------------------- detached


def status_json(d: Path) -> tuple[int, dict]:
    r = tributary("status", "--data-dir", d, "-o", "json")
    return r.returncode, json.loads(r.stdout)


def test_detach_status_logs_stop_and_already_running(platforms):
    kafka, registry, proxy = free_ports(3)
    d = platforms.data_dir()
    r = tributary("start", "--detach", "--data-dir", d, *port_args(kafka, registry, proxy))
    assert r.returncode == 0, r.stderr
    assert "Starting broker" in r.stdout and "rest-proxy is up at" in r.stdout, r.stdout
    urls = table_urls(r.stdout.splitlines())
    assert set(urls) == {"broker", "schema-registry", "rest-proxy"}, r.stdout
    for service, url in urls.items():
        check_answers(service, url)
    run = json.loads((d / RUN_FILE).read_text())
    assert run["state"] == "running" and run["detached"] is True
    assert {s["service"]: s["port"] for s in run["services"]} == \
        {"broker": kafka, "schema-registry": registry, "rest-proxy": proxy}

    rc, st = status_json(d)
    assert rc == 0 and st["running"] is True and st["pid"] == run["pid"], st
    assert [(s["service"], s["state"]) for s in st["services"]] == \
        [("broker", "up"), ("schema-registry", "up"), ("rest-proxy", "up")], st
    assert all(s["pid"] == run["pid"] and s["uptime_s"] is not None for s in st["services"]), st
    human = tributary("status", "--data-dir", d)
    assert human.returncode == 0 and "running" in human.stdout and str(run["pid"]) in human.stdout, human.stdout

    # Idempotent with --detach; refused in the foreground.
    again = tributary("start", "--detach", "--data-dir", d)
    assert again.returncode == 0 and "already running" in again.stdout, again.stdout + again.stderr
    assert f"{HOST}:{kafka}" in again.stdout, again.stdout
    again_json = tributary("start", "--detach", "--data-dir", d, "-o", "json")
    event = json.loads(again_json.stdout)
    assert again_json.returncode == 0 and event["already_running"] is True and event["pid"] == run["pid"], event
    fg = tributary("start", "--data-dir", d, timeout=30)
    assert fg.returncode == 1, fg.stdout + fg.stderr
    line = one_line(fg.stderr)
    assert "already running" in line and str(run["pid"]) in line and "tributary stop" in line, line

    # The log: one service's lines only, each tagged with it.
    logs = tributary("logs", "broker", "--data-dir", d)
    assert logs.returncode == 0, logs.stderr
    lines = logs.stdout.splitlines()
    assert any("Starting broker" in l for l in lines), logs.stdout
    tagged = [l.split()[2] for l in lines if len(l.split()) > 2 and l[:1].isdigit()]
    assert tagged and set(tagged) == {"[broker]"}, set(tagged)
    every = tributary("logs", "--data-dir", d).stdout
    assert "[schema-registry]" in every and "[rest-proxy]" in every
    last2 = tributary("logs", "schema-registry", "-n", "2", "--data-dir", d).stdout.splitlines()
    assert len(last2) == 2 and all("[schema-registry]" in l for l in last2), last2
    as_json = tributary("logs", "broker", "--data-dir", d, "-o", "json")
    records = [json.loads(l) for l in as_json.stdout.splitlines()]
    assert as_json.returncode == 0 and len(records) == len(lines), as_json.stdout
    assert {r["service"] for r in records} == {"broker"} and records[0]["level"] == "INFO", records[0]
    assert any(r["message"] == "Starting broker" for r in records), records[:3]

    stop = tributary("stop", "--data-dir", d, "-o", "json")
    assert stop.returncode == 0, stop.stderr
    assert json.loads(stop.stdout)["was_running"] is True
    rc, st = status_json(d)
    assert rc == 1 and st["running"] is False, st
    assert [s["state"] for s in st["services"]] == ["down", "down", "down"], st
    assert not any(listening(p) for p in (kafka, registry, proxy))
    assert not (d / RUN_FILE).exists()
    # The stop was clean: the broker marked it.
    assert (d / ".tributary_cleanshutdown").exists()
    nothing = tributary("stop", "--data-dir", d)
    assert nothing.returncode == 0 and "not running" in nothing.stdout, nothing.stdout


def test_ports_and_settings_persist_across_a_plain_restart(platforms):
    kafka, registry, proxy = free_ports(3)
    d = platforms.data_dir()
    first = tributary("start", "--detach", "--data-dir", d, *port_args(kafka, registry, proxy),
                      "--override", "num.partitions=3")
    assert first.returncode == 0, first.stderr
    admin = AdminClient({"bootstrap.servers": f"{HOST}:{kafka}"})
    res = ConfigResource(ResourceType.BROKER, "1")
    assert admin.describe_configs([res])[res].result(timeout=30)["num.partitions"].value == "3"
    props = (d / "tributary.properties").read_text()
    assert f"tributary.start.kafka.port={kafka}" in props, props
    assert "num.partitions" not in props, "an --override is for one start, as Kafka's is"
    assert tributary("stop", "--data-dir", d).returncode == 0

    # A line added to the file while stopped is kept for every start.
    (d / "tributary.properties").write_text(props + "log.retention.ms=4242000\n")
    # A plain start: no ports, no overrides.
    plain = tributary("start", "--detach", "--data-dir", d, "-o", "json")
    assert plain.returncode == 0, plain.stderr
    started = [json.loads(l) for l in plain.stdout.splitlines() if l.strip()][-1]
    assert started["kafka"] == [f"{HOST}:{kafka}"], started
    assert started["schema_registry"] == f"http://{HOST}:{registry}", started
    assert started["rest_proxy"] == f"http://{HOST}:{proxy}", started
    configs = admin.describe_configs([res])[res].result(timeout=30)
    assert configs["num.partitions"].value == "1", configs["num.partitions"]
    assert configs["log.retention.ms"].value == "4242000", configs["log.retention.ms"]
    assert configs["group.initial.rebalance.delay.ms"].value == "0"
    assert configs["default.replication.factor"].value == "1"
    assert tributary("stop", "--data-dir", d).returncode == 0
    assert "log.retention.ms=4242000" in (d / "tributary.properties").read_text()


def test_destroy_asks_and_removes_the_data_dir(platforms):
    kafka, registry, proxy = free_ports(3)
    d = platforms.data_dir()
    r = tributary("start", "--detach", "--data-dir", d, *port_args(kafka, registry, proxy))
    assert r.returncode == 0, r.stderr
    refused = tributary("destroy", "--data-dir", d)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    line = one_line(refused.stderr)
    assert "--yes" in line and str(d) in line, line
    assert d.exists() and status_json(d)[0] == 0, "a refused destroy changes nothing"
    gone = tributary("destroy", "--yes", "--data-dir", d, "-o", "json")
    assert gone.returncode == 0, gone.stderr
    report = json.loads(gone.stdout)
    assert report["deleted"] is True and report["data_dir"] == str(d) and report["stopped_pid"] > 0, report
    assert not d.exists()
    assert not any(listening(p) for p in (kafka, registry, proxy))
    # Nothing left to destroy; and a folder Tributary did not make is never deleted.
    assert tributary("destroy", "--yes", "--data-dir", d).returncode == 0
    other = platforms.data_dir("not-tributary")
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    r = tributary("destroy", "--yes", "--data-dir", other)
    assert r.returncode == 1 and (other / "keep.txt").exists(), r.stderr


@pytest.mark.parametrize("command", [
    ["schema-registry", "--listeners", "http://127.0.0.1:0"],
    ["rest-proxy", "--host", "127.0.0.1", "--port", "0"],
])
def test_standalone_servers_announce_themselves_as_json(bootstrap, command):
    service = command[0]
    argv = [*_DEATH_SIG, str(broker_binary()), *command, "--bootstrap-servers", bootstrap, "-o", "json"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        started = json.loads(proc.stdout.readline())
        assert started["event"] == "started" and started["service"] == service, started
        path = "/subjects" if service == "schema-registry" else "/v3/clusters"
        with urllib.request.urlopen(started["url"] + path, timeout=30) as answer:
            assert answer.status == 200
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
        assert proc.returncode == 0
        assert json.loads(out.strip().splitlines()[-1]) == {"event": "stopped", "service": service}
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
