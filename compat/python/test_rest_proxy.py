"""Tributary's REST Proxy (Confluent's kafka-rest v3) against the session
broker, checked with a client nobody here wrote: what is created or deleted
through v3 is seen by confluent-kafka's AdminClient, and the other way round.

The proxy runs as `tributary rest-proxy --bootstrap-servers ... --port <free>`
and is stopped afterwards."""

from __future__ import annotations

import subprocess
import time
import uuid

import pytest
from confluent_kafka.admin import AdminClient, NewTopic

import conftest
from restproxy import call, rest_proxy


@pytest.fixture(scope="module")
def proxy(bootstrap, tmp_path_factory):
    with rest_proxy(bootstrap, tmp_path_factory.mktemp("rest-proxy") / "rest-proxy.log") as url:
        yield url


def cluster_id(proxy: str) -> str:
    status, body = call("GET", f"{proxy}/v3/clusters")
    assert status == 200 and body["kind"] == "KafkaClusterList", body
    assert len(body["data"]) == 1
    return body["data"][0]["cluster_id"]


def test_cluster_is_the_brokers(proxy, bootstrap):
    cid = cluster_id(proxy)
    admin = AdminClient({"bootstrap.servers": bootstrap})
    assert admin.describe_cluster(request_timeout=10).result().cluster_id == cid
    status, body = call("GET", f"{proxy}/v3/clusters/{cid}")
    assert status == 200 and body["kind"] == "KafkaCluster" and body["cluster_id"] == cid
    assert body["metadata"]["resource_name"] == f"crn:///kafka={cid}"
    assert body["topics"]["related"] == f"{proxy}/v3/clusters/{cid}/topics"
    # Confluent Server's and Cloud's prefix serves the same, with links under it.
    status, body = call("GET", f"{proxy}/kafka/v3/clusters/{cid}")
    assert status == 200 and body["metadata"]["self"] == f"{proxy}/kafka/v3/clusters/{cid}"
    status, body = call("GET", f"{proxy}/v3/clusters/not-{cid}")
    assert (status, body["error_code"]) == (404, 404), body


def test_topic_lifecycle_is_seen_by_the_admin_client(proxy, bootstrap):
    cid = cluster_id(proxy)
    admin = AdminClient({"bootstrap.servers": bootstrap})
    name = f"rest-{uuid.uuid4().hex[:8]}"
    status, body = call("POST", f"{proxy}/v3/clusters/{cid}/topics",
                        {"topic_name": name, "partitions_count": 3, "replication_factor": 1,
                         "configs": [{"name": "cleanup.policy", "value": "compact"}]})
    assert status == 201, body
    assert (body["kind"], body["topic_name"], body["partitions_count"], body["replication_factor"]) == \
        ("KafkaTopic", name, 3, 1)
    md = admin.list_topics(name, timeout=10)
    assert len(md.topics[name].partitions) == 3
    from confluent_kafka.admin import ConfigResource
    res = ConfigResource(ConfigResource.Type.TOPIC, name)
    assert admin.describe_configs([res])[res].result(10)["cleanup.policy"].value == "compact"

    status, body = call("POST", f"{proxy}/v3/clusters/{cid}/topics", {"topic_name": name, "partitions_count": 1})
    assert (status, body["error_code"]) == (400, 40002), body

    # Created by the admin client, listed and described through v3.
    other = f"rest-{uuid.uuid4().hex[:8]}"
    admin.create_topics([NewTopic(other, 2, 1)])[other].result(10)
    status, body = call("GET", f"{proxy}/v3/clusters/{cid}/topics")
    assert status == 200 and body["kind"] == "KafkaTopicList"
    listed = {t["topic_name"]: t["partitions_count"] for t in body["data"]}
    assert listed[name] == 3 and listed[other] == 2
    status, body = call("GET", f"{proxy}/v3/clusters/{cid}/topics/{other}")
    assert status == 200 and body["partitions_count"] == 2 and body["is_internal"] is False

    # Deleted through v3, gone for the admin client; a second delete is a 404.
    for t in (name, other):
        assert call("DELETE", f"{proxy}/v3/clusters/{cid}/topics/{t}")[0] == 204
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and (name in admin.list_topics(timeout=10).topics):
        time.sleep(0.2)
    assert name not in admin.list_topics(timeout=10).topics
    status, body = call("DELETE", f"{proxy}/v3/clusters/{cid}/topics/{name}")
    assert (status, body["error_code"]) == (404, 40403), body
    status, body = call("GET", f"{proxy}/v3/clusters/{cid}/topics/{name}")
    assert (status, body["error_code"]) == (404, 40403), body


def test_bad_requests_get_kafka_rest_errors(proxy):
    cid = cluster_id(proxy)
    status, body = call("POST", f"{proxy}/v3/clusters/{cid}/topics", {"partitions_count": 1})
    assert status == 400 and body["error_code"] == 400 and "topic_name" in body["message"], body
    status, body = call("POST", f"{proxy}/v3/clusters/{cid}/topics",
                        {"topic_name": f"bad-{uuid.uuid4().hex[:6]}", "partitions_count": 1,
                         "configs": [{"name": "cleanup.policy", "value": "sideways"}]})
    assert (status, body["error_code"]) == (400, 40002), body
    status, body = call("GET", f"{proxy}/v3/nowhere")
    assert (status, body["error_code"]) == (404, 404), body
    # Errors of the HTTP layer itself come in the same shape.
    status, body = call("PUT", f"{proxy}/v3/clusters", {})
    assert (status, body["error_code"]) == (405, 405), body


def test_start_runs_the_rest_proxy_next_to_the_broker(broker_factory):
    """`tributary start --rest-proxy-port P` serves v3 on P for its own broker,
    and says where in its startup summary."""
    b = broker_factory.start(rest_proxy=True)
    assert b.rest_proxy_url
    status, body = call("GET", f"{b.rest_proxy_url}/v3/clusters")
    assert status == 200 and len(body["data"]) == 1, body
    cid = body["data"][0]["cluster_id"]
    admin = AdminClient({"bootstrap.servers": b.bootstrap})
    assert admin.describe_cluster(request_timeout=10).result().cluster_id == cid
    assert f"{b.rest_proxy_url}/v3/clusters" in b.log_path.read_text()
    b.stop_cleanly()


def test_start_with_the_rest_proxy_port_taken_says_what_to_do(broker_factory):
    """A busy REST proxy port stops `tributary start` before the broker starts,
    with the flags that fix it."""
    import socket
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    try:
        port = taken.getsockname()[1]
        argv = conftest.start_args(conftest.broker_binary(), conftest.free_port(), broker_factory.new_data_dir())
        argv = [a for a in argv if a != "--no-rest-proxy"] + ["--rest-proxy-port", str(port)]
        p = subprocess.run(argv, capture_output=True, timeout=30)
        out = (p.stdout + p.stderr).decode(errors="replace")
        assert p.returncode != 0, out
        assert f"127.0.0.1:{port}" in out and "--rest-proxy-port" in out and "--no-rest-proxy" in out, out
    finally:
        taken.close()
