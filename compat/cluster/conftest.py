"""Process tier for a Tributary cluster: three `tributary broker` processes
(kraft.py) checked through real clients (confluent-kafka, kafka-python,
kcat). TRIBUTARY_BIN names the binary (default: target/debug/tributary).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import kraft
from kraft import DEADLINE, HOST, ROOT, Cluster, Node, free_ports, wait_for  # noqa: F401 - re-exported to the tests

# Helpers shared with the single-node suite (kio_wire, kwire), after this directory's own modules.
sys.path.append(str(ROOT / "compat" / "python"))


def binary() -> Path:
    path = kraft.binary()
    if not path.exists():
        pytest.skip(f"{path} not built (cargo build -p tributary)")
    return path


def started_cluster(root: Path, overrides: dict[str, str | None] | None = None,
                    node_configs: dict[int, dict[str, str]] | None = None):
    """For a fixture to `yield from`: three nodes under `root` with broker
    `overrides` (and `node_configs`, extra server.properties per node id),
    started; their logs printed if they do not come up. Stopped and their
    data removed afterwards."""
    binary()
    c = Cluster(root, overrides)
    try:
        for node_id, n in c.nodes.items():
            n.write_config((node_configs or {}).get(node_id))
            n.start()
        c.wait_brokers({1, 2, 3})
    except BaseException:
        print(c.logs())
        c.stop()
        raise
    try:
        yield c
    finally:
        c.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    yield from started_cluster(tmp_path_factory.mktemp("cluster"))


def refused_start(config: Path, deadline: float = 45.0) -> tuple[int, list[str]]:
    """Starts a broker that must refuse: its exit status and the lines it wrote to stderr
    that are not log lines."""
    proc = subprocess.run(
        [str(binary()), "broker", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=deadline,
        env={**os.environ, "RUST_LOG": "off"},
    )
    lines = [l for l in proc.stderr.splitlines() if l.strip()]
    return proc.returncode, lines
