"""`tributary group` (the CLI) against groups that real confluent-kafka
(librdkafka) consumers created: list/describe JSON agrees with what
confluent-kafka's AdminClient and the partition watermarks report; seek moves
offsets that a consumer then starts from (earliest, shift-by, by time, chosen
partitions); seek and delete are refused while a member is active; delete
removes the group for the AdminClient too.

The binary is $TRIBUTARY_BIN (default target/debug/tributary), as for the
broker fixture.
"""

from __future__ import annotations

import json
import subprocess
import time
from datetime import datetime, timezone

import pytest
from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from conftest import broker_binary
from groupkit import unique

TIMEOUT_S = 60
# Records per partition of the test topics.
COUNTS = {0: 10, 1: 20, 2: 5}


def cli(bootstrap: str, *args: str) -> subprocess.CompletedProcess:
    """Runs `tributary group <args> --bootstrap <bootstrap>`."""
    argv = [str(broker_binary()), "group", *args, "--bootstrap", bootstrap, "--timeout", "20s"]
    return subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT_S)


def cli_json(bootstrap: str, *args: str) -> dict:
    r = cli(bootstrap, *args, "-o", "json")
    assert r.returncode == 0, f"tributary group {' '.join(args)} failed ({r.returncode}): {r.stderr}"
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 1, f"JSON output is one line: {r.stdout!r}"
    return json.loads(lines[0])


def admin(bootstrap: str) -> AdminClient:
    return AdminClient({"bootstrap.servers": bootstrap})


def make_topic(bootstrap: str, base_ts: int | None = None) -> str:
    """A topic with COUNTS records per partition; record i of a partition is
    stamped base_ts + i minutes when base_ts is given."""
    topic = unique("cli-grp")
    a = admin(bootstrap)  # the client must outlive its futures
    a.create_topics([NewTopic(topic, len(COUNTS), 1)])[topic].result(TIMEOUT_S)
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5})
    for partition, n in COUNTS.items():
        for i in range(n):
            extra = {"timestamp": base_ts + i * 60_000} if base_ts is not None else {}
            p.produce(topic, value=f"p{partition}-{i}".encode(), partition=partition, **extra)
    assert p.flush(TIMEOUT_S) == 0
    return topic


def consumer(bootstrap: str, group: str, **extra) -> Consumer:
    conf = {"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
            "enable.auto.commit": False, "session.timeout.ms": 10_000}
    conf.update(extra)
    return Consumer(conf)


def wait_assigned(c: Consumer, partitions: int) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        c.poll(0.1)
        if len(c.assignment()) == partitions:
            return
    pytest.fail(f"consumer got {c.assignment()} instead of {partitions} partitions")


def commit_and_leave(bootstrap: str, group: str, topic: str, offsets: dict[int, int]) -> None:
    """Joins `group`, commits `offsets` (partition -> offset), leaves."""
    c = consumer(bootstrap, group)
    c.subscribe([topic])
    wait_assigned(c, len(COUNTS))
    c.commit(offsets=[TopicPartition(topic, p, o) for p, o in offsets.items()], asynchronous=False)
    c.close()
    wait_state(bootstrap, group, "Empty")


def wait_state(bootstrap: str, group: str, state: str) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    got = None
    while time.monotonic() < deadline:
        listed = {g["group"]: g for g in cli_json(bootstrap, "list")["groups"]}
        got = listed.get(group, {}).get("state")
        if got == state:
            return
        time.sleep(0.1)
    pytest.fail(f"group {group} is {got}, expected {state}")


def admin_offsets(bootstrap: str, group: str) -> dict[int, int]:
    """Committed offsets by partition, as confluent-kafka's AdminClient reports them."""
    a = admin(bootstrap)  # the client must outlive its futures
    res = a.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)])[group].result(TIMEOUT_S)
    return {tp.partition: tp.offset for tp in res.topic_partitions if tp.offset >= 0}


def high_watermarks(bootstrap: str, topic: str) -> dict[int, int]:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": unique("watermarks")})
    try:
        return {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=TIMEOUT_S)[1] for p in COUNTS}
    finally:
        c.close()


def first_offsets(bootstrap: str, group: str, topic: str, partitions=tuple(COUNTS)) -> dict[int, int]:
    """Joins `group` (auto.offset.reset=latest, so only committed offsets make it
    read old records) and returns the first offset it reads per partition, once
    every one of `partitions` has delivered a record."""
    c = consumer(bootstrap, group, **{"auto.offset.reset": "latest"})
    c.subscribe([topic])
    first: dict[int, int] = {}
    deadline = time.monotonic() + TIMEOUT_S
    try:
        while time.monotonic() < deadline and not set(partitions) <= set(first):
            for m in c.consume(100, 0.2):
                assert m.error() is None, m.error()
                first.setdefault(m.partition(), m.offset())
    finally:
        c.close()
    return first


def partitions_of(described: dict) -> dict[int, dict]:
    return {p["partition"]: p for p in described["partitions"]}


def test_list_and_describe_agree_with_admin_client(bootstrap):
    topic, group = make_topic(bootstrap), unique("g")
    c = consumer(bootstrap, group, **{"client.id": "cli-describe"})
    c.subscribe([topic])
    wait_assigned(c, 3)
    c.commit(offsets=[TopicPartition(topic, 0, 4), TopicPartition(topic, 1, 20)], asynchronous=False)

    # Active: state, member, assignment as the AdminClient sees them.
    listed = {g["group"]: g for g in cli_json(bootstrap, "list")["groups"]}
    assert listed[group]["state"] == "Stable" and listed[group]["protocol_type"] == "consumer"
    assert group in {g["group"] for g in cli_json(bootstrap, "list", "--states", "stable")["groups"]}
    assert group not in {g["group"] for g in cli_json(bootstrap, "list", "--states", "empty")["groups"]}
    ours = cli_json(bootstrap, "describe", group)["groups"][0]
    a = admin(bootstrap)
    theirs = a.describe_consumer_groups([group])[group].result(TIMEOUT_S)
    assert ours["state"].upper() == theirs.state.name == "STABLE"
    assert ours["protocol"] == theirs.partition_assignor
    assert ours["coordinator"]["node_id"] == theirs.coordinator.id
    assert [m["member_id"] for m in ours["members"]] == [m.member_id for m in theirs.members]
    member = ours["members"][0]
    assert member["client_id"] == "cli-describe" == theirs.members[0].client_id
    assert member["client_host"].lstrip("/") == theirs.members[0].host.lstrip("/")
    assert member["subscribed_topics"] == [topic]
    ours_assigned = {(a["topic"], p) for a in member["assignments"] for p in a["partitions"]}
    theirs_assigned = {(tp.topic, tp.partition) for tp in theirs.members[0].assignment.topic_partitions}
    assert ours_assigned == theirs_assigned == {(topic, p) for p in COUNTS}
    rows = partitions_of(ours)
    assert rows[2]["committed_offset"] is None and rows[2]["lag"] is None, "nothing committed on partition 2"
    assert rows[2]["member_id"] == member["member_id"]
    c.close()

    # Empty: committed offsets, log ends and lag against the AdminClient and the watermarks.
    wait_state(bootstrap, group, "Empty")
    ours = cli_json(bootstrap, "describe", group)["groups"][0]
    assert ours["members"] == [] and ours["state"] == "Empty"
    committed, ends = admin_offsets(bootstrap, group), high_watermarks(bootstrap, topic)
    assert committed == {0: 4, 1: 20}
    rows = partitions_of(ours)
    assert set(rows) == set(committed), "an empty group shows the partitions it committed"
    for p, off in committed.items():
        assert rows[p]["committed_offset"] == off
        assert rows[p]["log_end_offset"] == ends[p] == COUNTS[p]
        assert rows[p]["lag"] == ends[p] - off
        assert rows[p]["member_id"] is None
    assert ours["total_lag"] == sum(ends[p] - off for p, off in committed.items()) == 6

    human = cli(bootstrap, "describe", group)
    assert human.returncode == 0, human.stderr
    assert "TOTAL-LAG    6" in human.stdout
    assert any(line.split()[:5] == [topic, "0", "4", "10", "6"] for line in human.stdout.splitlines()), human.stdout


def test_seek_earliest_then_a_consumer_starts_at_zero(bootstrap):
    topic, group = make_topic(bootstrap), unique("g")
    commit_and_leave(bootstrap, group, topic, {0: 7, 1: 15, 2: 5})

    plan = cli_json(bootstrap, "seek", group, "--to", "earliest")
    assert plan["executed"] is False and plan["target"] == "earliest"
    assert {(p["partition"], p["current_offset"], p["new_offset"]) for p in plan["partitions"]} == {
        (0, 7, 0), (1, 15, 0), (2, 5, 0)}
    assert admin_offsets(bootstrap, group) == {0: 7, 1: 15, 2: 5}, "a dry run commits nothing"
    human = cli(bootstrap, "seek", group, "--to", "earliest")
    assert human.returncode == 0 and "Dry run" in human.stdout and "--execute" in human.stdout

    done = cli_json(bootstrap, "seek", group, "--to", "earliest", "--execute")
    assert done["executed"] is True
    assert admin_offsets(bootstrap, group) == {0: 0, 1: 0, 2: 0}
    assert first_offsets(bootstrap, group, topic) == {0: 0, 1: 0, 2: 0}


def test_seek_shift_by_chosen_partitions_and_latest(bootstrap):
    topic, group = make_topic(bootstrap), unique("g")
    commit_and_leave(bootstrap, group, topic, {0: 8, 1: 10})

    shifted = cli_json(bootstrap, "seek", group, "--to", "shift-by:-3", "--execute")
    assert {p["partition"]: p["new_offset"] for p in shifted["partitions"]} == {0: 5, 1: 7}
    assert admin_offsets(bootstrap, group) == {0: 5, 1: 7}
    forward = cli_json(bootstrap, "seek", group, "--to", "shift-by:100", "--topics", f"{topic}:1", "--execute")
    assert [(p["partition"], p["new_offset"]) for p in forward["partitions"]] == [(1, 20)], "clamped to the end"
    assert admin_offsets(bootstrap, group) == {0: 5, 1: 20}

    # shift-by needs a committed offset; partition 2 has none.
    refused = cli(bootstrap, "seek", group, "--to", "shift-by:1", "--topics", topic)
    assert refused.returncode == 1 and f"{topic}:2" in refused.stderr, refused.stderr
    latest = cli_json(bootstrap, "seek", group, "--to", "latest", "--topics", f"{topic}:2", "--execute")
    assert [(p["partition"], p["current_offset"], p["new_offset"]) for p in latest["partitions"]] == [(2, None, 5)]
    to_offset = cli_json(bootstrap, "seek", group, "--to", "3", "--topics", f"{topic}:0", "--execute")
    assert to_offset["partitions"][0]["new_offset"] == 3
    assert admin_offsets(bootstrap, group) == {0: 3, 1: 20, 2: 5}
    assert first_offsets(bootstrap, group, topic, partitions=[0]).get(0) == 3


def test_seek_by_timestamp_matches_offsets_for_times(bootstrap):
    base = int(time.time() * 1000) - 3_600_000
    topic, group = make_topic(bootstrap, base_ts=base), unique("g")
    commit_and_leave(bootstrap, group, topic, {0: 9, 1: 19, 2: 4})
    at = base + 4 * 60_000 - 1  # just before record 4 of each partition
    rfc3339 = datetime.fromtimestamp(at / 1000, tz=timezone.utc).isoformat(timespec="milliseconds")

    c = Consumer({"bootstrap.servers": bootstrap, "group.id": unique("oft")})
    expected = {tp.partition: tp.offset for tp in
                c.offsets_for_times([TopicPartition(topic, p, at) for p in COUNTS], timeout=TIMEOUT_S)}
    c.close()
    assert expected == {0: 4, 1: 4, 2: 4}
    for to in (f"@{at}", f"@{rfc3339}", rfc3339):
        plan = cli_json(bootstrap, "seek", group, "--to", to)
        assert {p["partition"]: p["new_offset"] for p in plan["partitions"]} == expected, to

    # Past the newest record: the log end, as Kafka's reset tool does.
    later = cli_json(bootstrap, "seek", group, "--to", f"@{base + 3_600_000}", "--execute")
    assert {p["partition"]: p["new_offset"] for p in later["partitions"]} == COUNTS
    assert admin_offsets(bootstrap, group) == COUNTS


def test_seek_and_delete_refused_while_a_member_is_active(bootstrap):
    topic, group = make_topic(bootstrap), unique("g")
    c = consumer(bootstrap, group)
    c.subscribe([topic])
    wait_assigned(c, 3)
    c.commit(offsets=[TopicPartition(topic, 0, 6)], asynchronous=False)
    try:
        r = cli(bootstrap, "seek", group, "--to", "earliest", "--execute")
        assert r.returncode == 1
        assert "1 active member" in r.stderr and "Stop its consumers" in r.stderr, r.stderr
        assert admin_offsets(bootstrap, group) == {0: 6}
        d = cli(bootstrap, "delete", group, "-o", "json")
        assert d.returncode == 1 and "NON_EMPTY_GROUP" in d.stderr
        result = json.loads(d.stdout)["groups"][0]
        assert result["deleted"] is False and result["error"]["name"] == "NON_EMPTY_GROUP"
    finally:
        c.close()


def test_delete_removes_the_group(bootstrap):
    topic, group = make_topic(bootstrap), unique("g")
    commit_and_leave(bootstrap, group, topic, {0: 1})
    a = admin(bootstrap)
    assert group in {g.group_id for g in a.list_consumer_groups().result(TIMEOUT_S).valid}

    deleted = cli_json(bootstrap, "delete", group)
    assert deleted == {"groups": [{"group": group, "deleted": True, "error": None}]}
    assert group not in {g.group_id for g in a.list_consumer_groups().result(TIMEOUT_S).valid}
    assert group not in {g["group"] for g in cli_json(bootstrap, "list")["groups"]}
    assert admin_offsets(bootstrap, group) == {}

    again = cli(bootstrap, "delete", group, "-o", "json")
    assert again.returncode == 4  # not found
    assert json.loads(again.stdout)["groups"][0]["error"]["name"] == "GROUP_ID_NOT_FOUND"
    missing = cli(bootstrap, "describe", group)
    assert missing.returncode == 4 and "does not exist" in missing.stderr


def test_usage_and_connection_errors(bootstrap):
    bad = cli(bootstrap, "seek", "g", "--to", "yesterday")
    assert bad.returncode == 2 and "is not a seek target" in bad.stderr, bad.stderr
    bad_topics = cli(bootstrap, "seek", "g", "--to", "earliest", "--topics", "t:x")
    assert bad_topics.returncode == 2 and "partition number" in bad_topics.stderr
    unreachable = subprocess.run([str(broker_binary()), "group", "list", "--bootstrap", "127.0.0.1:1"],
                                 capture_output=True, text=True, timeout=TIMEOUT_S)
    assert unreachable.returncode == 5 and "no broker reachable at 127.0.0.1:1" in unreachable.stderr
    assert "--brokers" in unreachable.stderr and len(unreachable.stderr.strip().splitlines()) == 1
    help_text = subprocess.run([str(broker_binary()), "group", "describe", "--help"],
                               capture_output=True, text=True, timeout=TIMEOUT_S).stdout
    assert '"total_lag": int' in help_text, "the JSON shape is documented in --help"
