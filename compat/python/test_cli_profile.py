"""The command line's shared surface: profiles (`tributary profile ...`)
and where a command takes its broker address from (flag, environment,
named profile, current profile, default), `-o yaml` carrying the same data
as `-o json`, shell completions, and an example in every command's
`--help`.

Every test points TRIBUTARY_CONFIG at a file of its own, so a developer's
own profiles never decide a result.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import uuid

import pytest
import yaml
from confluent_kafka.admin import AdminClient, NewTopic

from conftest import broker_binary, free_port

TIMEOUT_S = 60


@pytest.fixture
def env(tmp_path):
    """An environment with a profile file of its own and no connection variables."""
    e = {k: v for k, v in os.environ.items()
         if k not in ("TRIBUTARY_BROKERS", "TRIBUTARY_PROFILE", "TRIBUTARY_SCHEMA_REGISTRY_URL")}
    e["TRIBUTARY_CONFIG"] = str(tmp_path / "tributary" / "config.toml")
    return e


def run(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(broker_binary()), *args], capture_output=True, text=True,
                          timeout=TIMEOUT_S, env=env)


def ok_json(env: dict, *args: str) -> dict:
    r = run(env, *args, "-o", "json")
    assert r.returncode == 0, f"tributary {' '.join(args)} exited {r.returncode}: {r.stderr}"
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 1, f"JSON output is one line: {r.stdout!r}"
    return json.loads(lines[0])


def unreachable_address() -> str:
    return f"127.0.0.1:{free_port()}"


def make_topic(bootstrap: str) -> str:
    topic = f"cli-profile-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, 2, 1)])[topic].result(TIMEOUT_S)
    return topic


def test_profile_lifecycle(env):
    created = ok_json(env, "profile", "create", "dev", "--brokers", "h1:9092",
                      "--schema-registry-url", "http://h1:8081")
    assert created == {"profile": "dev", "current": True,
                       "settings": {"brokers": "h1:9092", "schema_registry_url": "http://h1:8081"}}
    ok_json(env, "profile", "create", "prod", "--brokers", "p1:9092,p2:9092", "--timeout", "30s", "--no-use")
    listed = ok_json(env, "profile", "list")
    assert listed["current"] == "dev"
    assert [(p["profile"], p["current"]) for p in listed["profiles"]] == [("dev", True), ("prod", False)]
    assert listed["profiles"][1]["settings"] == {"brokers": "p1:9092,p2:9092", "timeout": "30s"}

    assert ok_json(env, "profile", "use", "prod") == {"current": "prod"}
    assert ok_json(env, "profile", "show")["profile"] == "prod"
    updated = ok_json(env, "profile", "set", "prod", "--brokers", "", "--rest-proxy-url", "http://p1:8082")
    assert updated["settings"] == {"rest_proxy_url": "http://p1:8082", "timeout": "30s"}

    # The file is plain TOML a person can edit.
    text = open(env["TRIBUTARY_CONFIG"]).read()
    assert 'current = "prod"' in text and "[profiles.dev]" in text, text

    human = run(env, "profile", "list")
    assert human.returncode == 0 and re.search(r"^\*\s+prod", human.stdout, re.M), human.stdout

    # Errors: exit 4 for a profile that is not there, 1 for a name taken, 2 for a bad timeout.
    for args in (["use", "nope"], ["show", "nope"], ["delete", "nope"], ["set", "nope", "--timeout", "1s"]):
        r = run(env, "profile", *args)
        assert r.returncode == 4 and "nope" in r.stderr and "profile list" in r.stderr, (args, r.stderr)
    taken = run(env, "profile", "create", "dev")
    assert taken.returncode == 1 and "--overwrite" in taken.stderr
    bad = run(env, "profile", "set", "dev", "--timeout", "soon")
    assert bad.returncode == 2 and "duration" in bad.stderr, bad.stderr

    assert ok_json(env, "profile", "delete", "prod") == {"profile": "prod", "deleted": True}
    assert ok_json(env, "profile", "list")["current"] is None


def test_where_the_broker_address_comes_from(env, bootstrap):
    topic = make_topic(bootstrap)
    nowhere = unreachable_address()

    def topics(*args: str, extra_env: dict | None = None) -> subprocess.CompletedProcess:
        return run({**env, **(extra_env or {})}, "topic", "list", "--timeout", "2s", "-o", "json", *args)

    def lists_topic(r: subprocess.CompletedProcess) -> bool:
        assert r.returncode == 0, r.stderr
        return topic in {t["topic"] for t in json.loads(r.stdout)["topics"]}

    # No profile, no flag: the default address, where nothing listens in this test (or another broker).
    ok_json(env, "profile", "create", "good", "--brokers", bootstrap, "--no-use")
    ok_json(env, "profile", "create", "bad", "--brokers", nowhere)  # current
    r = topics()
    assert r.returncode == 5 and nowhere in r.stderr, r.stderr  # the current profile's address
    assert lists_topic(topics("--profile", "good"))  # a named profile
    assert lists_topic(topics(extra_env={"TRIBUTARY_PROFILE": "good"}))
    assert lists_topic(topics("--brokers", bootstrap))  # the flag beats the profile
    assert lists_topic(topics(extra_env={"TRIBUTARY_BROKERS": bootstrap}))  # so does the environment
    r = topics("--brokers", nowhere, extra_env={"TRIBUTARY_BROKERS": bootstrap})
    assert r.returncode == 5, "the flag beats the environment"

    # A profile file edited by hand into a bad timeout is a usage error naming it.
    path = env["TRIBUTARY_CONFIG"]
    with open(path) as f:
        text = f.read()
    with open(path, "w") as f:
        f.write(text.replace(f'brokers = "{nowhere}"', f'brokers = "{nowhere}"\ntimeout = "soon"'))
    r = run(env, "group", "list", "-o", "json")
    assert r.returncode == 2 and "profile's timeout" in r.stderr, r.stderr

    missing = topics("--profile", "absent")
    assert missing.returncode == 4 and "absent" in missing.stderr


def test_yaml_carries_what_json_does(env, bootstrap):
    topic = make_topic(bootstrap)
    for args in (["topic", "describe", topic], ["topic", "list"], ["group", "list"], ["profile", "list"]):
        base = [*args, "--brokers", bootstrap] if args[0] != "profile" else args
        as_json = ok_json(env, *base)
        r = run(env, *base, "-o", "yaml")
        assert r.returncode == 0, r.stderr
        assert yaml.safe_load(r.stdout) == as_json, r.stdout
    # Field order follows the JSON output, and strings YAML would misread are quoted.
    ok_json(env, "profile", "create", "yes", "--brokers", "on:9092", "--timeout", "10s")
    r = run(env, "profile", "show", "yes", "-o", "yaml")
    assert r.stdout.splitlines()[0] == 'profile: "yes"', r.stdout
    assert yaml.safe_load(r.stdout)["settings"] == {"brokers": "on:9092", "timeout": "10s"}


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_scripts(env, shell):
    r = run(env, "completion", shell)
    assert r.returncode == 0 and "topic" in r.stdout, r.stderr
    if shell == "bash":
        check = subprocess.run(["bash", "-n"], input=r.stdout, capture_output=True, text=True, timeout=TIMEOUT_S)
        assert check.returncode == 0, check.stderr
    elif shutil.which(shell):
        check = subprocess.run([shell, "-n" if shell == "zsh" else "--no-execute"], input=r.stdout,
                               capture_output=True, text=True, timeout=TIMEOUT_S)
        assert check.returncode == 0, check.stderr


def _subcommands(help_text: str) -> list[str]:
    """The names in the Commands: section of a --help text (without `help`)."""
    names, inside = [], False
    for line in help_text.splitlines():
        if line.strip() == "Commands:":
            inside = True
            continue
        if inside:
            m = re.match(r"^  (\S+)\s", line + " ")
            if not m:
                break
            if m.group(1) != "help":
                names.append(m.group(1))
    return names


def test_every_command_shows_an_example_and_takes_an_output_format(env):
    missing, no_output, seen = [], [], 0
    pending = [[]]
    while pending:
        path = pending.pop()
        r = run(env, *path, "--help")
        assert r.returncode == 0, (path, r.stderr)
        children = _subcommands(r.stdout)
        pending.extend([*path, c] for c in children)
        if path:
            seen += 1
            if not re.search(r"^Examples?:", r.stdout, re.M):
                missing.append(" ".join(path))
            if not children and path != ["completion"] and "--output" not in r.stdout:
                no_output.append(" ".join(path))
    assert seen >= 25, seen
    assert not missing, f"--help without an example: {missing}"
    assert not no_output, f"commands without -o/--output: {no_output}"
