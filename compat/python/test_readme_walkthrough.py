"""The README's quickstart, run exactly as written, as a user would type it
into a terminal: the code block under "## Quickstart" is run line by line by
one bash on a pseudo-terminal (so progress bars and colours behave as they do
for a person), in a fresh directory, and every step's output is checked.

Nothing in the block is edited. Only the environment differs from a user's:
the binary under test is first on PATH, and TRIBUTARY_KAFKA_PORT,
TRIBUTARY_SCHEMA_REGISTRY_PORT, TRIBUTARY_REST_PROXY_PORT and
TRIBUTARY_BROKERS point the platform and the commands at free ports, so a
busy 9092 on the machine never decides the result.
"""

from __future__ import annotations

import json
import os
import pty
import re
import select
import socket
import subprocess
import time
from pathlib import Path

import pytest

from conftest import REPO_ROOT, broker_binary, free_port

STEP_TIMEOUT_S = 120


def quickstart_lines() -> list[str]:
    text = (REPO_ROOT / "README.md").read_text()
    section = text.split("\n## Quickstart", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block, "README's Quickstart has a ```sh block"
    return [line for line in block.group(1).splitlines() if line.strip() and not line.lstrip().startswith("#")]


def run_on_a_terminal(lines: list[str], cwd: Path, env: dict) -> list[str]:
    """Runs the lines in one bash on a pty; returns what each line printed.

    Before each line the script echoes a marker, so the transcript splits
    into steps; `set -e` stops at the first failing line."""
    script = ["set -e"]
    for n, line in enumerate(lines):
        script.append(f"echo '@@step {n}'")
        script.append(line)
    script.append("echo '@@done'")
    (cwd / "quickstart.sh").write_text("\n".join(script) + "\n")

    controller, terminal = pty.openpty()
    proc = subprocess.Popen(["bash", "quickstart.sh"], cwd=cwd, env=env, stdin=terminal, stdout=terminal,
                            stderr=terminal, close_fds=True, start_new_session=True)
    os.close(terminal)
    chunks = []
    deadline = time.monotonic() + STEP_TIMEOUT_S * len(lines)
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([controller], [], [], 1.0)
            if ready:
                try:
                    data = os.read(controller, 65536)
                except OSError:  # the terminal closed: every writer exited
                    break
                if not data:
                    break
                chunks.append(data)
            elif proc.poll() is not None:
                break
        proc.wait(timeout=30)
    finally:
        os.close(controller)
        if proc.poll() is None:
            proc.kill()
    transcript = b"".join(chunks).decode("utf-8", "replace")
    assert proc.returncode == 0 and "@@done" in transcript, f"the quickstart failed:\n{transcript}"
    steps = re.split(r"@@step \d+\r?\n", transcript.split("@@done")[0])[1:]
    assert len(steps) == len(lines), transcript
    return steps


def plain(text: str) -> str:
    """Terminal output without colour codes and carriage-return redraws."""
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text)
    return "\n".join(line.split("\r")[-1] for line in text.replace("\r\n", "\n").split("\n"))


def step(lines: list[str], steps: list[str], starts: str) -> str:
    found = [s for line, s in zip(lines, steps) if line.lstrip().startswith(starts)]
    assert found, f"the quickstart has a `{starts}` line"
    return found[0]


def test_quickstart_as_written(tmp_path):
    lines = quickstart_lines()
    bin_dir = str(broker_binary().parent)
    kafka, registry, proxy = free_port(), free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIBUTARY_")}
    env.update({
        "PATH": f"{bin_dir}:{env.get('PATH', '')}",
        "TERM": "xterm-256color",
        "COLUMNS": "120",
        "TRIBUTARY_KAFKA_PORT": str(kafka),
        "TRIBUTARY_SCHEMA_REGISTRY_PORT": str(registry),
        "TRIBUTARY_REST_PROXY_PORT": str(proxy),
        "TRIBUTARY_BROKERS": f"127.0.0.1:{kafka}",
        "TRIBUTARY_SCHEMA_REGISTRY_URL": f"http://127.0.0.1:{registry}",
        "TRIBUTARY_CONFIG": str(tmp_path / "profiles.toml"),
    })
    try:
        steps = run_on_a_terminal(lines, tmp_path, env)
    finally:
        # Whatever happened, nothing is left running.
        subprocess.run([str(broker_binary()), "stop", "--force"], cwd=tmp_path, env=env, capture_output=True,
                       timeout=60)

    started = plain(step(lines, steps, "tributary start"))
    for port in (kafka, registry, proxy):
        assert f"127.0.0.1:{port}" in started, started

    created = plain(step(lines, steps, "tributary topic create"))
    assert "Created topic orders" in created, created

    produced = step(lines, steps, "tributary topic produce")
    # The progress bar redraws itself with carriage returns on a terminal.
    assert "\r" in produced.replace("\r\n", "\n"), f"no progress bar on the terminal: {produced!r}"
    assert re.search(r"\b1,?000 records\b", plain(produced)), plain(produced)

    sent = (tmp_path / "orders.txt").read_text().splitlines()
    assert len(sent) == 1000
    received = [json.loads(line) for line in (tmp_path / "orders.jsonl").read_text().splitlines()]
    assert len(received) == 1000
    assert sorted(f"{r['key']}:{r['value']}" for r in received) == sorted(sent)
    assert {r["topic"] for r in received} == {"orders"} and {r["partition"] for r in received} == {0, 1, 2}

    described = plain(step(lines, steps, "tributary group describe"))
    rows = [line.split() for line in described.splitlines() if line.startswith("orders ")]
    assert len(rows) == 3, described
    header = next(line.split() for line in described.splitlines() if line.startswith("TOPIC"))
    lag = header.index("LAG")
    assert [row[lag] for row in rows] == ["0", "0", "0"], described

    stopped = plain(step(lines, steps, "tributary stop"))
    assert "stopped" in stopped.lower(), stopped
    for port in (kafka, registry, proxy):
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=1).close()

