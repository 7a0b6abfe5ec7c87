"""Fixtures that run a Tributary broker for the compatibility tests.

* ``registry_platform`` / ``schema_registry_url`` (session): a second
  ``tributary start`` with its schema registry on a free port.
* ``broker`` (session): starts ``$TRIBUTARY_BIN start --kafka-port <free port>
  --data-dir <tmp>``, waits until the port accepts connections and a Metadata
  request succeeds, and at the end stops it with SIGTERM (SIGKILL after 10 s)
  and checks that it exited with status 0.
* ``bootstrap`` (session): the ``host:port`` string of that broker.
* ``broker_factory`` (function): starts/stops extra broker processes, e.g. to
  restart on the same data directory.

Set ``TRIBUTARY_BOOTSTRAP=host:port`` to run against an already-running broker
instead (then no process is started and tests that need to restart or
configure the broker are skipped).
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import kwire

REPO_ROOT = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT_S = 30.0
SHUTDOWN_TIMEOUT_S = 10.0
HOST = "127.0.0.1"


def external_bootstrap() -> str | None:
    v = os.environ.get("TRIBUTARY_BOOTSTRAP", "").strip()
    return v or None


def broker_binary() -> Path:
    raw = os.environ.get("TRIBUTARY_BIN", "target/debug/tributary")
    p = Path(raw)
    if not p.is_absolute():
        p = REPO_ROOT / p
    if not p.is_file() or not os.access(p, os.X_OK):
        pytest.fail(
            f"Tributary binary not found at {p}. Run `cargo build` in {REPO_ROOT} "
            "(or set TRIBUTARY_BIN to the binary, or TRIBUTARY_BOOTSTRAP=host:port "
            "to use a broker that is already running).",
            pytrace=False,
        )
    return p


def free_port() -> int:
    return kwire.free_port(HOST)


def metadata_ok(host: str, port: int, timeout: float = 5.0) -> kwire.MetadataV1:
    """One Metadata v1 round trip on a fresh connection; raises on any failure."""
    md = kwire.metadata_v1(host, port, topics=[], timeout=timeout)
    if not md.brokers:
        raise kwire.DecodeError("Metadata response lists no brokers")
    return md


def _tail(path: Path, lines: int = 60) -> str:
    try:
        data = path.read_text(errors="replace").splitlines()
    except OSError as e:
        return f"<cannot read {path}: {e}>"
    return "\n".join(data[-lines:])


# All brokers started by this run (session and factory); used for failure reports.
_ALL_BROKERS: list["BrokerProcess"] = []


# Linux (util-linux): the broker gets SIGKILL if the test process dies without
# cleaning up (e.g. killed by a CI timeout), so no broker outlives a run.
# setpriv execs the broker, so the pid we signal is the broker's own.
_SETPRIV = shutil.which("setpriv") if sys.platform.startswith("linux") else None
_DEATH_SIG = [_SETPRIV, "--pdeathsig", "KILL", "--"] if _SETPRIV else []


@atexit.register
def _kill_leftover_brokers():
    for b in _ALL_BROKERS:
        if b.proc is not None and b.proc.poll() is None:
            b.proc.kill()


class BrokerProcess:
    """One broker OS process, with its output going to a log file."""

    def __init__(self, argv: list[str], port: int, log_path: Path, data_dir: Path | None):
        self.argv = argv
        self.port = port
        self.host = HOST
        self.log_path = log_path
        self.data_dir = data_dir
        self.proc: subprocess.Popen | None = None
        self.returncode: int | None = None
        self.owned = True
        # `--schema-registry-port N` in argv: the in-process schema registry's URL.
        self.registry_url: str | None = None
        if "--schema-registry-port" in argv:
            self.registry_url = f"http://{HOST}:{argv[argv.index('--schema-registry-port') + 1]}"
        # `--rest-proxy-port N` in argv: the in-process REST proxy's URL.
        self.rest_proxy_url: str | None = None
        if "--rest-proxy-port" in argv:
            self.rest_proxy_url = f"http://{HOST}:{argv[argv.index('--rest-proxy-port') + 1]}"

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def start(self, timeout: float = STARTUP_TIMEOUT_S) -> "BrokerProcess":
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        log.write(f"\n===== starting: {' '.join(self.argv)}\n".encode())
        log.flush()
        self.proc = subprocess.Popen(
            _DEATH_SIG + self.argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            cwd=str(self.data_dir.parent if self.data_dir else self.log_path.parent),
        )
        log.close()
        _ALL_BROKERS.append(self)
        self.returncode = None
        deadline = time.monotonic() + timeout
        last_err: Exception | None = None
        while time.monotonic() < deadline:
            rc = self.proc.poll()
            if rc is not None:
                self.returncode = rc
                pytest.fail(
                    f"broker exited with status {rc} during startup.\n"
                    f"command: {' '.join(self.argv)}\nlog: {self.log_path}\n{_tail(self.log_path)}",
                    pytrace=False,
                )
            try:
                metadata_ok(self.host, self.port, timeout=2.0)
                if self.registry_url and not registry_ready(self.registry_url):
                    raise RuntimeError(f"schema registry at {self.registry_url} not answering yet")
            except Exception as e:  # noqa: BLE001 - any failure means "not ready yet"
                last_err = e
                time.sleep(0.1)
                continue
            time.sleep(0.2)
            if self.proc.poll() is None:  # the answer came from our process, not a stray one
                return self
        self.kill()
        pytest.fail(
            f"broker did not answer a Metadata request on {self.bootstrap} within {timeout:.0f} s "
            f"(last error: {last_err!r}).\ncommand: {' '.join(self.argv)}\n"
            f"log: {self.log_path}\n{_tail(self.log_path)}",
            pytrace=False,
        )

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = SHUTDOWN_TIMEOUT_S) -> tuple[int, bool]:
        """SIGTERM, wait up to `timeout`, then SIGKILL.

        Returns (exit status, True if it had to be killed)."""
        if self.proc is None:
            return 0, False
        if self.proc.poll() is not None:
            self.returncode = self.proc.returncode
            return self.returncode, False
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.returncode = self.proc.wait(timeout=timeout)
            return self.returncode, False
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.returncode = self.proc.wait(timeout=10)
            return self.returncode, True

    def stop_cleanly(self, timeout: float = SHUTDOWN_TIMEOUT_S) -> None:
        """Stop and fail the test unless the process exited with status 0 in time."""
        rc, killed = self.stop(timeout)
        if killed:
            pytest.fail(
                f"broker (pid {self.pid}) did not exit within {timeout:.0f} s of SIGTERM and was "
                f"killed.\nlog: {self.log_path}\n{_tail(self.log_path)}",
                pytrace=False,
            )
        if rc != 0:
            pytest.fail(
                f"broker (pid {self.pid}) exited with status {rc} after SIGTERM, expected 0.\n"
                f"log: {self.log_path}\n{_tail(self.log_path)}",
                pytrace=False,
            )

    def kill(self) -> None:
        """SIGKILL (a crash, from the broker's point of view)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.returncode = self.proc.wait(timeout=10)

    def describe(self) -> str:
        state = "running" if self.alive() else f"exited ({self.returncode})"
        return f"broker pid {self.pid} on {self.bootstrap} [{state}] log: {self.log_path}"


class ExternalBroker:
    """A broker this suite did not start (TRIBUTARY_BOOTSTRAP)."""

    owned = False
    log_path = None
    pid = None

    def __init__(self, bootstrap: str):
        self.bootstrap = bootstrap
        self.host, self.port = kwire.parse_hostport(bootstrap)

    def alive(self) -> bool:
        try:
            metadata_ok(self.host, self.port)
            return True
        except Exception:  # noqa: BLE001
            return False

    def describe(self) -> str:
        return f"external broker {self.bootstrap} (TRIBUTARY_BOOTSTRAP)"


def start_args(bin_path: Path, port: int, data_dir: Path, schema_registry: bool = False,
               rest_proxy: bool = False) -> list[str]:
    """`tributary start` on `port`; the schema registry and the REST proxy run
    only when asked, each on a free port of its own (many brokers run at once:
    8081 and 8082 must never matter)."""
    registry = ["--schema-registry-port", str(free_port())] if schema_registry else ["--no-schema-registry"]
    proxy = ["--rest-proxy-port", str(free_port())] if rest_proxy else ["--no-rest-proxy"]
    return [str(bin_path), "start", "--kafka-port", str(port), "--data-dir", str(data_dir)] + registry + proxy


def registry_ready(url: str, timeout: float = 2.0) -> bool:
    """GET /subjects answers 200."""
    import urllib.request
    try:
        with urllib.request.urlopen(f"{url}/subjects", timeout=timeout) as r:
            return r.status == 200
    except Exception:  # noqa: BLE001
        return False


def launch(argv_for_port, log_path: Path, data_dir: Path | None, port: int | None = None,
           attempts: int = 3) -> BrokerProcess:
    """Start a broker on a free port (retrying with a new port if a start fails
    because another process took the port in between)."""
    last: BaseException | None = None
    for _ in range(attempts if port is None else 1):
        p = port if port is not None else free_port()
        b = BrokerProcess(argv_for_port(p), p, log_path, data_dir)
        try:
            return b.start()
        except pytest.fail.Exception as e:
            last = e
            b.kill()
            if "in use" not in _tail(log_path, 20).lower():
                raise
    assert last is not None
    raise last


@pytest.fixture(scope="session")
def broker(tmp_path_factory):
    ext = external_bootstrap()
    if ext:
        b = ExternalBroker(ext)
        if not b.alive():
            pytest.fail(f"TRIBUTARY_BOOTSTRAP={ext}: no Metadata response from that broker",
                        pytrace=False)
        yield b
        return
    bin_path = broker_binary()
    data_dir = tmp_path_factory.mktemp("session-data")
    log_path = tmp_path_factory.mktemp("session-logs") / "broker.log"
    b = launch(lambda p: start_args(bin_path, p, data_dir), log_path, data_dir)
    print(f"\n[tributary] session {b.describe()}")
    yield b
    b.stop_cleanly()


@pytest.fixture(scope="session")
def bootstrap(broker) -> str:
    return broker.bootstrap


@pytest.fixture(scope="session")
def registry_platform(tmp_path_factory):
    """A `tributary start` of its own with the schema registry on a free port
    (`.registry_url`); the session broker stays without one, so its topic and
    group lists are not changed by the registry's `_schemas` and election group."""
    if external_bootstrap():
        pytest.skip("TRIBUTARY_BOOTSTRAP is set: the schema registry tests start their own platform")
    bin_path = broker_binary()
    data_dir = tmp_path_factory.mktemp("registry-data")
    log_path = tmp_path_factory.mktemp("registry-logs") / "platform.log"
    b = launch(lambda p: start_args(bin_path, p, data_dir, schema_registry=True), log_path, data_dir)
    print(f"\n[tributary] schema registry platform {b.describe()} registry {b.registry_url}")
    yield b
    b.stop_cleanly()


@pytest.fixture(scope="session")
def schema_registry_url(registry_platform) -> str:
    return registry_platform.registry_url


@pytest.fixture(autouse=True)
def _session_broker_still_alive(request):
    """After each test that used the session broker, check it is still running."""
    yield
    names = request.fixturenames
    if "broker" not in names and "bootstrap" not in names:
        return
    b = request.getfixturevalue("broker")
    if isinstance(b, BrokerProcess) and not b.alive():
        pytest.fail(
            f"the session broker died during this test (status {b.proc.returncode}).\n"
            f"log: {b.log_path}\n{_tail(b.log_path)}",
            pytrace=False,
        )


class BrokerFactory:
    """Start extra broker processes for one test; all are stopped at teardown."""

    def __init__(self, tmp_path: Path):
        self.tmp_path = tmp_path
        self.bin_path = broker_binary()
        self.started: list[BrokerProcess] = []
        self._n = 0

    def new_data_dir(self) -> Path:
        self._n += 1
        d = self.tmp_path / f"data-{self._n}"
        d.mkdir(parents=True, exist_ok=True)
        return d

    def _log(self, tag: str) -> Path:
        return self.tmp_path / "logs" / f"broker-{len(self.started) + 1}-{tag}.log"

    def start(self, data_dir: Path | None = None, port: int | None = None,
              overrides: dict[str, str] | None = None, schema_registry: bool = False,
              rest_proxy: bool = False, argv_extra: list[str] | None = None) -> BrokerProcess:
        """`tributary start --kafka-port P --data-dir D [--override k=v ...] [argv_extra ...]`
        (a new process); with `schema_registry`, its registry runs on a free port
        (`b.registry_url`); with `rest_proxy`, its REST proxy does (`b.rest_proxy_url`)."""
        data_dir = data_dir or self.new_data_dir()
        extra = [a for k, v in (overrides or {}).items() for a in ("--override", f"{k}={v}")]
        extra += list(argv_extra or [])
        b = launch(lambda p: start_args(self.bin_path, p, data_dir, schema_registry, rest_proxy) + extra,
                   self._log("start"), data_dir, port=port)
        self.started.append(b)
        return b

    def start_with_config(self, properties: str, overrides: dict[str, str] | None = None,
                          port: int | None = None, data_dir: Path | None = None,
                          argv_extra: list[str] | None = None) -> BrokerProcess:
        """`tributary broker --config server.properties [--override k=v ...]`.

        `properties` may contain {port}, {controller_port} and {data_dir}."""
        data_dir = data_dir or self.new_data_dir()
        cfg_path = self.tmp_path / f"server-{len(self.started) + 1}.properties"
        controller_port = free_port()

        def argv(p: int) -> list[str]:
            cfg_path.write_text(properties.format(port=p, controller_port=controller_port,
                                                  data_dir=data_dir))
            a = [str(self.bin_path), "broker", "--config", str(cfg_path)]
            for k, v in (overrides or {}).items():
                a += ["--override", f"{k}={v}"]
            return a + list(argv_extra or [])

        b = launch(argv, self._log("config"), data_dir, port=port)
        self.started.append(b)
        return b

    def close(self):
        problems = []
        for b in self.started:
            if b.alive():
                rc, killed = b.stop()
                if killed or rc != 0:
                    problems.append(f"{b.describe()}: status {rc}, killed={killed}")
        if problems:
            pytest.fail("brokers did not shut down cleanly:\n" + "\n".join(problems),
                        pytrace=False)


@pytest.fixture
def broker_factory(tmp_path):
    if external_bootstrap():
        pytest.skip("TRIBUTARY_BOOTSTRAP is set: this test must start its own broker processes")
    f = BrokerFactory(tmp_path)
    yield f
    f.close()


# --------------------------------------------------------------------------
# Failure reports: show where the broker logs are.
# --------------------------------------------------------------------------


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed and _ALL_BROKERS:
        lines = []
        for b in _ALL_BROKERS:
            lines.append(b.describe())
        last = _ALL_BROKERS[-1]
        lines.append("")
        lines.append(f"last 40 lines of {last.log_path}:")
        lines.append(_tail(last.log_path, 40))
        rep.sections.append(("tributary broker logs", "\n".join(lines)))
