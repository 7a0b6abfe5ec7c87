"""`tributary topic` (the CLI) checked against confluent-kafka's AdminClient:
what the CLI creates, alters, grows and deletes is what the admin client
sees, and what the admin client does shows in the CLI's JSON. Exit codes:
0 on success, 1 when the broker refuses, 2 for bad arguments, 4 for a
missing topic, 5 for an unreachable broker (each with a one-line error
naming the problem).

The binary is $TRIBUTARY_BIN (default target/debug/tributary).
"""

from __future__ import annotations

import json
import socket
import subprocess
import uuid

from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

from conftest import broker_binary

TIMEOUT_S = 60


def cli(bootstrap: str, *args: str) -> subprocess.CompletedProcess:
    argv = [str(broker_binary()), "topic", *args, "--brokers", bootstrap, "--timeout", "10s"]
    return subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT_S)


def cli_json(bootstrap: str, *args: str) -> dict:
    r = cli(bootstrap, *args, "-o", "json")
    assert r.returncode == 0, f"tributary topic {' '.join(args)} failed ({r.returncode}): {r.stderr}"
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 1, f"JSON output is one line: {r.stdout!r}"
    return json.loads(lines[0])


def name() -> str:
    return f"cli-topic-{uuid.uuid4().hex[:8]}"


def test_create_describe_alter_grow_delete_as_the_admin_client_sees_it(bootstrap):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    topic = name()
    out = cli_json(bootstrap, "create", topic, "-p", "3", "-c", "cleanup.policy=compact", "-c", "retention.ms=60000")
    assert out == {"topic": topic, "created": True, "partitions": 3}
    md = admin.list_topics(topic, timeout=10)
    assert len(md.topics[topic].partitions) == 3
    res = ConfigResource(ConfigResource.Type.TOPIC, topic)
    assert admin.describe_configs([res])[res].result(10)["cleanup.policy"].value == "compact"

    listed = {t["topic"]: t for t in cli_json(bootstrap, "list")["topics"]}
    assert listed[topic] == {"topic": topic, "partitions": 3, "replication_factor": 1, "internal": False}
    assert "__consumer_offsets" not in listed or not listed["__consumer_offsets"]["internal"]

    described = cli_json(bootstrap, "describe", topic)["topics"][0]
    assert [p["partition"] for p in described["partitions"]] == [0, 1, 2]
    assert all(p["leader"] >= 0 and p["isr"] == p["replicas"] for p in described["partitions"])
    assert described["configs"] == {"cleanup.policy": "compact", "retention.ms": "60000"}

    out = cli_json(bootstrap, "alter-config", topic, "--set", "retention.ms=120000", "--delete", "cleanup.policy")
    assert out == {"topic": topic, "set": {"retention.ms": "120000"}, "deleted": ["cleanup.policy"]}
    configs = admin.describe_configs([res])[res].result(10)
    assert configs["retention.ms"].value == "120000" and configs["cleanup.policy"].value == "delete"

    assert cli_json(bootstrap, "add-partitions", topic, "--num", "5") == {"topic": topic, "partitions": 5}
    assert len(admin.list_topics(topic, timeout=10).topics[topic].partitions) == 5

    # Created by the admin client: the CLI lists it.
    other = name()
    admin.create_topics([NewTopic(other, 2, 1)])[other].result(10)
    assert {t["topic"] for t in cli_json(bootstrap, "list")["topics"]} >= {topic, other}

    out = cli_json(bootstrap, "delete", topic, other)
    assert [(t["topic"], t["deleted"]) for t in out["topics"]] == [(topic, True), (other, True)]
    assert topic not in admin.list_topics(timeout=10).topics


def test_exit_codes_and_one_line_errors(bootstrap):
    topic = name()
    assert cli(bootstrap, "create", topic).returncode == 0
    again = cli(bootstrap, "create", topic)
    assert again.returncode == 1 and "--if-not-exists" in again.stderr, again.stderr
    assert cli_json(bootstrap, "create", topic, "--if-not-exists")["created"] is False

    missing = name()
    for args in (["describe", missing], ["delete", missing], ["alter-config", missing, "--set", "a=b"],
                 ["add-partitions", missing, "--num", "3"]):
        r = cli(bootstrap, *args)
        assert r.returncode == 4, (args, r.returncode, r.stderr)  # not found
        assert "UNKNOWN_TOPIC_OR_PARTITION" in r.stderr and missing in r.stderr, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr

    r = cli(bootstrap, "create", name(), "-c", "no-equals-sign")
    assert r.returncode == 2, r.stderr

    # A broker that is not there: a one-line error after the timeout, exit status 5.
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    r = subprocess.run([str(broker_binary()), "topic", "list", "--brokers", f"127.0.0.1:{port}", "--timeout", "2s"],
                       capture_output=True, text=True, timeout=TIMEOUT_S)
    assert r.returncode == 5 and f"127.0.0.1:{port}" in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_cluster_info_is_what_the_admin_client_sees(bootstrap):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    md = admin.list_topics(timeout=10)
    r = subprocess.run([str(broker_binary()), "cluster", "info", "--brokers", bootstrap, "-o", "json"],
                       capture_output=True, text=True, timeout=TIMEOUT_S)
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert info["cluster_id"] == md.cluster_id and info["controller_id"] == md.controller_id
    assert [(b["node_id"], b["host"], b["port"]) for b in info["brokers"]] == \
        [(b.id, b.host, b.port) for b in sorted(md.brokers.values(), key=lambda b: b.id)]
    assert info["topics"] == len(md.topics)
    assert info["partitions"] == sum(len(t.partitions) for t in md.topics.values())
    human = subprocess.run([str(broker_binary()), "cluster", "info", "--brokers", bootstrap],
                           capture_output=True, text=True, timeout=TIMEOUT_S)
    assert human.returncode == 0 and md.cluster_id in human.stdout and "BROKER" in human.stdout, human.stdout


def test_a_node_alone_has_no_under_replicated_or_offline_partitions_and_nothing_to_elect(bootstrap):
    """On one node every partition is led by its only replica: describe marks
    none offline or under-replicated, the filtered listings are empty, and a
    preferred or unclean election is not needed (ElectLeaders through
    `tributary partition elect-leaders`)."""
    topic = name()
    cli_json(bootstrap, "create", topic, "-p", "2")
    described = cli_json(bootstrap, "describe", topic)["topics"][0]
    assert [(p["offline"], p["under_replicated"]) for p in described["partitions"]] == [(False, False)] * 2
    assert cli_json(bootstrap, "list", "--under-replicated", "--unavailable") == {"partitions": []}
    table = cli(bootstrap, "describe", topic)
    assert table.returncode == 0 and "STATUS" in table.stdout and table.stdout.count(" ok") == 2, table.stdout

    def elect(*args: str) -> tuple[int, dict]:
        argv = [str(broker_binary()), "partition", "elect-leaders", *args, "--brokers", bootstrap, "-o", "json"]
        r = subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT_S)
        return r.returncode, json.loads(r.stdout) if r.stdout.strip() else {"stderr": r.stderr}

    for kind in ("preferred", "unclean"):
        status, out = elect("--type", kind, "--topic", topic)
        assert status == 0, out
        assert out == {"type": kind, "partitions": [
            {"topic": topic, "partition": p, "result": "not-needed", "leader": 1, "error": None} for p in (0, 1)]}
    assert elect("--type", "preferred", "--all") == (0, {"type": "preferred", "partitions": []})
    status, out = elect("--type", "preferred", "--topic", name())
    assert status == 4 and "UNKNOWN_TOPIC_OR_PARTITION" in out["stderr"], out
