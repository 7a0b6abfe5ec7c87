#!/usr/bin/env python3
"""Runs a command in a throwaway network namespace of its own:

    python3 compat/cluster/netns.py -- COMMAND [ARGS...]

The command sees only a loopback interface (brought up here), so its
brokers can take any port on 127.0.0.1, .2, .3, ... without colliding with
anything else on the machine, and nftables rules it adds (nemesis.py) touch
nothing outside. Nothing can outlive it either: the namespace is entered
with `unshare --net --pid --fork --kill-child --mount-proc`, which makes
this script PID 1 of a new PID namespace. When PID 1 exits, for whatever
reason, the kernel SIGKILLs every process left in that namespace (brokers
a crashed test forgot), and `--kill-child` makes the same happen when
`unshare` itself is killed, e.g. by a pytest timeout. The network namespace
(and with it every nft rule) goes away with its last process.

Why a re-executed process rather than `unshare(2)` inside the test process:
a process that already has threads (librdkafka's, pytest's) cannot move all
of them into a new namespace, and a PID namespace only applies to children
forked afterwards. A fresh process has neither problem, and dies as one.

Root is needed, or unprivileged user namespaces: not root, `--map-root-user`
is added, which gives the command root inside its own namespaces only.
`available()` says whether this machine can do it; `run()` is what tests
call. Inside, NETNS_ENV is set to "1" so a script can tell where it is.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys

NETNS_ENV = "TRIBUTARY_NETNS"
HERE = os.path.abspath(__file__)


def inside() -> bool:
    """True in a namespace this module created."""
    return os.environ.get(NETNS_ENV) == "1"


def unshare_argv() -> list[str]:
    argv = ["unshare", "--net", "--pid", "--fork", "--kill-child", "--mount-proc"]
    if os.geteuid() != 0:
        argv.append("--map-root-user")
    return argv


def wrap(command: list[str]) -> list[str]:
    """The argv that runs `command` in a fresh namespace."""
    return unshare_argv() + ["--", sys.executable, HERE, "--inside", "--", *command]


def available() -> tuple[bool, str]:
    """(True, "") when a namespace can be made here, else (False, why not)."""
    if sys.platform != "linux":
        return False, "network namespaces need Linux"
    for tool in ("unshare", "ip", "nft"):
        if shutil.which(tool) is None:
            hint = " (apt-get install nftables)" if tool == "nft" else ""
            return False, f"{tool} is not installed{hint}"
    probe = subprocess.run(wrap(["nft", "list", "ruleset"]), capture_output=True, text=True, timeout=60)
    if probe.returncode != 0:
        return False, f"cannot make a network namespace with nftables here: {probe.stderr.strip()[-300:]}"
    return True, ""


def run(command: list[str], timeout: float, **kwargs) -> subprocess.CompletedProcess:
    """Runs `command` in a fresh namespace and waits for it (subprocess.run's
    keyword arguments pass through). On timeout the namespace is killed with
    everything in it, and TimeoutExpired is raised as subprocess.run does."""
    return subprocess.run(wrap(command), timeout=timeout, **kwargs)


def reexec_inside() -> None:
    """Replaces this process by itself in a fresh namespace, unless already
    in one: a script calls this first thing so that it can be run directly."""
    if not inside():
        os.execvp("unshare", wrap([sys.executable, *sys.argv]))


def _init(command: list[str]) -> int:
    """PID 1 of the namespace: brings loopback up, runs `command`, passes
    SIGTERM/SIGINT/SIGHUP on to it, reaps whatever else dies, and returns
    the command's exit status."""
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    child = subprocess.Popen(command, env={**os.environ, NETNS_ENV: "1"})

    def forward(signum, _frame):
        if child.poll() is None:
            child.send_signal(signum)

    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(s, forward)
    # As PID 1, orphans (a broker whose launcher died) are ours to reap.
    while True:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        except InterruptedError:
            continue
        if pid == child.pid:
            child.returncode = os.waitstatus_to_exitcode(status)
            break
    code = child.returncode
    return 128 - code if code < 0 else code


def main(argv: list[str]) -> int:
    if argv[:1] == ["--inside"]:
        argv = argv[1:]
        if argv[:1] == ["--"]:
            argv = argv[1:]
        return _init(argv)
    if argv[:1] == ["--"]:
        argv = argv[1:]
    if not argv:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    return subprocess.call(wrap(argv))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
