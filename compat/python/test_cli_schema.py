"""`tributary schema` / `tributary subject` (the CLI) against Tributary's
schema registry: what the CLI registers, confluent-kafka's
SchemaRegistryClient sees (and the other way round); `-o json` shapes;
compatibility checks with reasons and exit status 3; soft and permanent
deletes; subject compatibility level and mode; errors that carry the
registry's error code, a hint, and exit status 1.

The binary is $TRIBUTARY_BIN (default target/debug/tributary), as for the
broker fixture.
"""

from __future__ import annotations

import json
import subprocess
import uuid
import warnings
from pathlib import Path

import pytest

warnings.filterwarnings("ignore", category=DeprecationWarning)

from confluent_kafka.schema_registry import Schema, SchemaRegistryClient  # noqa: E402
from confluent_kafka.schema_registry.error import SchemaRegistryError  # noqa: E402

from conftest import broker_binary, free_port  # noqa: E402

TIMEOUT_S = 60

ORDER_V1 = {"type": "record", "name": "Order", "namespace": "shop",
            "fields": [{"name": "id", "type": "long"}, {"name": "item", "type": "string"}]}
ORDER_V2_OK = {**ORDER_V1, "fields": ORDER_V1["fields"] + [{"name": "qty", "type": "int", "default": 1}]}
ORDER_V2_BAD = {**ORDER_V1, "fields": ORDER_V1["fields"] + [{"name": "price", "type": "double"}]}
ITEM = {"type": "record", "name": "Item", "namespace": "shop", "fields": [{"name": "sku", "type": "string"}]}
CART = {"type": "record", "name": "Cart", "namespace": "shop",
        "fields": [{"name": "items", "type": {"type": "array", "items": "shop.Item"}}]}
JSON_SCHEMA = {"type": "object", "properties": {"id": {"type": "integer"}}}
PROTO = 'syntax = "proto3";\npackage shop;\nmessage Payment { string id = 1; double amount = 2; }\n'


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def cli(url: str, *args: str) -> subprocess.CompletedProcess:
    argv = [str(broker_binary()), *args, "--schema-registry-url", url, "--timeout", "20s"]
    return subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT_S)


def cli_json(url: str, *args: str, expect: int = 0) -> dict:
    r = cli(url, *args, "-o", "json")
    assert r.returncode == expect, f"tributary {' '.join(args)} exited {r.returncode}: {r.stderr}"
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 1, f"JSON output is one line: {r.stdout!r}"
    return json.loads(lines[0])


def write(tmp_path: Path, name: str, content) -> str:
    p = tmp_path / name
    p.write_text(content if isinstance(content, str) else json.dumps(content))
    return str(p)


def test_create_is_seen_by_the_python_client(schema_registry_url, tmp_path):
    sr = SchemaRegistryClient({"url": schema_registry_url})
    subject = unique("cli-orders") + "-value"
    created = cli_json(schema_registry_url, "schema", "create", "--subject", subject,
                       "--schema", write(tmp_path, "v1.avsc", ORDER_V1))
    assert created["subject"] == subject and created["version"] == 1 and created["type"] == "AVRO"
    latest = sr.get_latest_version(subject)
    assert (latest.schema_id, latest.version) == (created["id"], 1)
    assert json.loads(latest.schema.schema_str)["name"] == "Order"
    # Registering the same schema again is idempotent.
    again = cli_json(schema_registry_url, "schema", "create", "--subject", subject,
                     "--schema", write(tmp_path, "v1b.avsc", ORDER_V1))
    assert (again["id"], again["version"]) == (created["id"], 1)
    # The human form says what happened.
    r = cli(schema_registry_url, "schema", "create", "--subject", subject, "--schema", str(tmp_path / "v1.avsc"))
    assert r.returncode == 0 and f"schema id {created['id']}" in r.stdout

    # Described by id and by subject/version; the python client's registration shows up too.
    by_id = cli_json(schema_registry_url, "schema", "describe", "--id", str(created["id"]))
    assert by_id["id"] == created["id"] and by_id["type"] == "AVRO"
    assert json.loads(by_id["schema"]) == json.loads(latest.schema.schema_str)
    assert {"subject": subject, "version": 1} in by_id["subjects"]
    v2 = sr.register_schema(subject, Schema(json.dumps(ORDER_V2_OK), "AVRO"))
    desc = cli_json(schema_registry_url, "schema", "describe", "--subject", subject)
    assert (desc["id"], desc["version"], desc["subject"]) == (v2, 2, subject)
    desc1 = cli_json(schema_registry_url, "schema", "describe", "--subject", subject, "--version", "1")
    assert desc1["id"] == created["id"]
    human = cli(schema_registry_url, "schema", "describe", "--subject", subject)
    assert human.returncode == 0 and "VERSION" in human.stdout and '"name": "qty"' in human.stdout

    listed = cli_json(schema_registry_url, "schema", "list", "--subject-prefix", subject)
    assert [(s["subject"], s["version"], s["id"]) for s in listed["schemas"]] == \
        [(subject, 1, created["id"]), (subject, 2, v2)]
    assert subject in cli_json(schema_registry_url, "subject", "list")["subjects"]
    human = cli(schema_registry_url, "schema", "list", "--subject-prefix", subject)
    assert human.returncode == 0 and human.stdout.splitlines()[0].split() == ["SUBJECT", "VERSION", "ID", "TYPE"]


def test_json_protobuf_and_references(schema_registry_url, tmp_path):
    sr = SchemaRegistryClient({"url": schema_registry_url})
    js = unique("cli-json") + "-value"
    created = cli_json(schema_registry_url, "schema", "create", "--subject", js, "--type", "json",
                       "--schema", write(tmp_path, "s.json", JSON_SCHEMA))
    assert created["type"] == "JSON"
    assert sr.get_schema(created["id"]).schema_type == "JSON"
    # .proto files are Protobuf without --type.
    pb = unique("cli-proto") + "-value"
    created = cli_json(schema_registry_url, "schema", "create", "--subject", pb,
                       "--schema", write(tmp_path, "p.proto", PROTO))
    assert created["type"] == "PROTOBUF"
    assert "message Payment" in sr.get_schema(created["id"]).schema_str
    described = cli_json(schema_registry_url, "schema", "describe", "--id", str(created["id"]))
    assert described["type"] == "PROTOBUF"

    item = unique("cli-item") + "-value"
    cli_json(schema_registry_url, "schema", "create", "--subject", item, "--schema", write(tmp_path, "i.avsc", ITEM))
    cart = unique("cli-cart") + "-value"
    refs = [{"name": "shop.Item", "subject": item, "version": 1}]
    created = cli_json(schema_registry_url, "schema", "create", "--subject", cart,
                       "--schema", write(tmp_path, "c.avsc", CART),
                       "--references", write(tmp_path, "refs.json", refs))
    got = sr.get_latest_version(cart)
    assert got.schema_id == created["id"]
    assert [(r.name, r.subject, r.version) for r in got.schema.references] == [("shop.Item", item, 1)]
    described = cli_json(schema_registry_url, "schema", "describe", "--subject", cart)
    assert described["references"] == refs


def test_check_compatibility(schema_registry_url, tmp_path):
    subject = unique("cli-compat") + "-value"
    cli_json(schema_registry_url, "schema", "create", "--subject", subject,
             "--schema", write(tmp_path, "v1.avsc", ORDER_V1))
    ok = cli_json(schema_registry_url, "schema", "check-compatibility", "--subject", subject,
                  "--schema", write(tmp_path, "ok.avsc", ORDER_V2_OK))
    assert ok["is_compatible"] is True
    bad_file = write(tmp_path, "bad.avsc", ORDER_V2_BAD)
    bad = cli_json(schema_registry_url, "schema", "check-compatibility", "--subject", subject,
                   "--schema", bad_file, "--version", "latest", expect=3)
    assert bad["is_compatible"] is False and bad["messages"], bad
    assert any("price" in m for m in bad["messages"]), bad["messages"]
    human = cli(schema_registry_url, "schema", "check-compatibility", "--subject", subject, "--schema", bad_file)
    assert human.returncode == 3 and "NOT compatible" in human.stdout

    # Registering it fails with the registry's code and a hint, exit status 1.
    r = cli(schema_registry_url, "schema", "create", "--subject", subject, "--schema", bad_file)
    assert r.returncode == 1
    assert "error code 409" in r.stderr and "hint:" in r.stderr, r.stderr
    # Relaxing the subject lets it in.
    upd = cli_json(schema_registry_url, "subject", "update", subject, "--compatibility", "none")
    assert upd == {"subject": subject, "compatibility": "NONE", "mode": None}
    assert SchemaRegistryClient({"url": schema_registry_url}).get_compatibility(subject) == "NONE"
    created = cli_json(schema_registry_url, "schema", "create", "--subject", subject, "--schema", bad_file)
    assert created["version"] == 2
    desc = cli_json(schema_registry_url, "subject", "describe", subject)
    assert desc == {"subject": subject, "versions": [1, 2], "compatibility": "NONE", "mode": "READWRITE"}


def test_mode_and_deletes(schema_registry_url, tmp_path):
    sr = SchemaRegistryClient({"url": schema_registry_url})
    subject = unique("cli-del") + "-value"
    v1 = write(tmp_path, "v1.avsc", ORDER_V1)
    cli_json(schema_registry_url, "schema", "create", "--subject", subject, "--schema", v1)
    cli_json(schema_registry_url, "schema", "create", "--subject", subject,
             "--schema", write(tmp_path, "v2.avsc", ORDER_V2_OK))
    cli_json(schema_registry_url, "schema", "create", "--subject", subject,
             "--schema", write(tmp_path, "v3.avsc", {**ORDER_V2_OK, "doc": "third"}))

    assert cli_json(schema_registry_url, "subject", "update", subject, "--mode", "readonly")["mode"] == "READONLY"
    r = cli(schema_registry_url, "schema", "create", "--subject", subject,
            "--schema", write(tmp_path, "v4.avsc", {**ORDER_V2_OK, "doc": "fourth"}))
    assert r.returncode == 1 and "42205" in r.stderr and "--mode READWRITE" in r.stderr, r.stderr
    cli_json(schema_registry_url, "subject", "update", subject, "--mode", "READWRITE")

    # One version soft, then permanently (the CLI needs no second soft delete step).
    assert cli_json(schema_registry_url, "schema", "delete", "--subject", subject, "--version", "1") == \
        {"subject": subject, "versions": [1], "permanent": False}
    assert sr.get_versions(subject) == [2, 3]
    assert cli_json(schema_registry_url, "schema", "delete", "--subject", subject, "--version", "2",
                    "--permanent") == {"subject": subject, "versions": [2], "permanent": True}
    listed = cli_json(schema_registry_url, "schema", "list", "--subject-prefix", subject, "--deleted")
    assert [s["version"] for s in listed["schemas"]] == [1, 3]
    # The whole subject.
    gone = cli_json(schema_registry_url, "schema", "delete", "--subject", subject)
    assert gone["versions"] == [3]
    assert subject not in cli_json(schema_registry_url, "subject", "list")["subjects"]
    assert subject in cli_json(schema_registry_url, "subject", "list", "--deleted")["subjects"]
    assert cli_json(schema_registry_url, "schema", "delete", "--subject", subject, "--permanent")["permanent"]
    with pytest.raises(SchemaRegistryError) as e:
        sr.get_versions(subject)
    assert e.value.error_code == 40401


def test_errors_say_what_to_do(schema_registry_url, tmp_path):
    missing = unique("cli-missing")
    r = cli(schema_registry_url, "subject", "describe", missing, "-o", "json")
    assert r.returncode == 4 and r.stdout == ""  # not found
    assert "40401" in r.stderr and "tributary subject list" in r.stderr, r.stderr
    r = cli(schema_registry_url, "schema", "describe", "--id", "999999")
    assert r.returncode == 4 and "40403" in r.stderr
    r = cli(schema_registry_url, "schema", "create", "--subject", missing,
            "--schema", write(tmp_path, "broken.avsc", "{not avro"))
    assert r.returncode == 1 and "42201" in r.stderr and "hint:" in r.stderr
    r = cli(schema_registry_url, "subject", "update", missing, "--compatibility", "sideways")
    assert r.returncode == 1 and "42203" in r.stderr and "FULL_TRANSITIVE" in r.stderr
    r = cli(schema_registry_url, "schema", "create", "--subject", missing, "--schema", str(tmp_path / "nope.avsc"))
    assert r.returncode == 1 and "cannot read the schema file" in r.stderr
    # Nobody listening.
    r = cli(f"http://127.0.0.1:{free_port()}", "subject", "list")
    assert r.returncode == 5 and "cannot reach the schema registry" in r.stderr  # unreachable
    assert "TRIBUTARY_SCHEMA_REGISTRY_URL" in r.stderr
    # Bad arguments are exit status 2.
    r = cli(schema_registry_url, "schema", "describe", "--id", "1", "--subject", "x")
    assert r.returncode == 2


def test_url_from_the_environment(schema_registry_url):
    import os
    env = {**os.environ, "TRIBUTARY_SCHEMA_REGISTRY_URL": schema_registry_url}
    r = subprocess.run([str(broker_binary()), "subject", "list", "-o", "json"], capture_output=True, text=True,
                       timeout=TIMEOUT_S, env=env)
    assert r.returncode == 0, r.stderr
    assert isinstance(json.loads(r.stdout)["subjects"], list)
