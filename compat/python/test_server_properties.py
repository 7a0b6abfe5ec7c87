"""The broker started from Kafka's own config file:
`tributary broker --config server.properties [--override key=value ...]`.

The file below is Apache Kafka's single-node KRaft server.properties with
ports, paths and a few defaults changed; the broker must accept it as is
(keys it does not use included) and honour the keys clients can observe.
"""

from __future__ import annotations

import subprocess

import pytest
from confluent_kafka.admin import ConfigSource

import ck
import kwire
from payloads import RecordGen, base_timestamp_ms, unique_topic

pytestmark = pytest.mark.restart

KRAFT_PROPERTIES = """\
# Single-node KRaft server.properties in Apache Kafka's layout
process.roles=broker,controller
node.id=3
controller.quorum.voters=3@127.0.0.1:{controller_port}
listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}
inter.broker.listener.name=PLAINTEXT
advertised.listeners=PLAINTEXT://127.0.0.1:{port}
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL
num.network.threads=3
num.io.threads=8
socket.send.buffer.bytes=102400
socket.receive.buffer.bytes=102400
socket.request.max.bytes=104857600
log.dirs={data_dir}
num.partitions=5
num.recovery.threads.per.data.dir=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
log.retention.hours=168
log.retention.ms=123456789
log.segment.bytes=1073741824
log.retention.check.interval.ms=300000
message.max.bytes=2000000
"""

STATIC = ConfigSource.STATIC_BROKER_CONFIG


def test_server_properties_with_override(broker_factory):
    b = broker_factory.start_with_config(KRAFT_PROPERTIES, overrides={"num.partitions": "2"})
    a = ck.admin(b.bootstrap)

    # node.id and advertised.listeners
    md = a.list_topics(timeout=30)
    assert list(md.brokers) == [3], md.brokers
    assert (md.brokers[3].host, md.brokers[3].port) == ("127.0.0.1", b.port)
    assert a.describe_cluster().result(30).nodes[0].id == 3

    # --override beats the file: auto-created topics get 2 partitions, not 5
    auto = unique_topic("props-auto")
    ck.produce_records(ck.producer_conf(b.bootstrap), auto, 20, RecordGen(auto, base_timestamp_ms()))
    ck.wait_for_topic(a, auto, 2)

    # broker-level values are topic defaults, reported as static broker config
    name = unique_topic("props-topic")
    ck.create_topic(a, name)
    c = ck.describe_topic_configs(a, name)
    assert c["retention.ms"].value == "123456789"
    assert ck.source_of(c["retention.ms"]) == STATIC
    assert "log.retention.ms" in c["retention.ms"].synonyms
    assert ck.source_of(c["retention.ms"].synonyms["log.retention.ms"]) == STATIC
    assert c["max.message.bytes"].value == "2000000"
    assert ck.source_of(c["max.message.bytes"]) == STATIC

    bc = ck.describe_broker_configs(a, 3)
    assert bc["num.partitions"].value == "2"
    assert ck.source_of(bc["num.partitions"]) == STATIC
    assert bc["message.max.bytes"].value == "2000000"
    assert ck.source_of(bc["message.max.bytes"]) == STATIC

    # data goes to log.dirs
    assert any(b.data_dir.iterdir()), f"nothing written under log.dirs={b.data_dir}"
    b.stop_cleanly()


def test_advertised_listener_host_is_returned(broker_factory):
    props = KRAFT_PROPERTIES.replace("advertised.listeners=PLAINTEXT://127.0.0.1:{port}",
                                     "advertised.listeners=PLAINTEXT://localhost:{port}")
    b = broker_factory.start_with_config(props)
    md = kwire.metadata_v1(b.host, b.port, topics=[])
    assert [(n, h, p) for n, h, p, _ in md.brokers] == [(3, "localhost", b.port)]
    b.stop_cleanly()


@pytest.mark.parametrize("bad", [
    {"num.partitions": "not-a-number"},
    {"message.max.bytes": "-10"},
    {"log.cleanup.policy": "bogus"},
])
def test_invalid_config_value_fails_startup(broker_factory, tmp_path, bad):
    """An invalid value is refused at startup with a message naming the key."""
    cfg = tmp_path / "bad.properties"
    data_dir = broker_factory.new_data_dir()
    port = kwire.free_port()
    cfg.write_text(KRAFT_PROPERTIES.format(port=port, controller_port=kwire.free_port(),
                                           data_dir=data_dir))
    (key, value), = bad.items()
    argv = [str(broker_factory.bin_path), "broker", "--config", str(cfg),
            "--override", f"{key}={value}"]
    try:
        p = subprocess.run(argv, capture_output=True, timeout=30)
    except subprocess.TimeoutExpired:
        pytest.fail(f"broker kept running with {key}={value}")
    out = (p.stdout + p.stderr).decode(errors="replace")
    assert p.returncode != 0, f"broker exited 0 with {key}={value}:\n{out}"
    assert key in out, f"error output does not name {key}:\n{out}"


def test_start_subcommand_defaults(broker_factory):
    """`tributary start --kafka-port P --data-dir D` listens on 127.0.0.1:P,
    advertises that endpoint and stops cleanly on SIGTERM."""
    b = broker_factory.start()
    md = kwire.metadata_v1(b.host, b.port, topics=[])
    assert len(md.brokers) == 1
    assert md.brokers[0][1:3] == ("127.0.0.1", b.port)
    b.stop_cleanly()
