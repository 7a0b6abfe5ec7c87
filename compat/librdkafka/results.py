#!/usr/bin/env python3
"""Writes compat/librdkafka/RESULTS.md from runs of the whole broker suite
against one node and against a three-node cluster.

    T=$(compat/librdkafka/results.py --broker-tests)
    RESULTS_DIR=/tmp/rdk-all scripts/with-broker --override num.partitions=4 -- \\
        compat/librdkafka/run.sh {bootstrap} $T
    RESULTS_DIR=/tmp/rdk-all3 scripts/with-cluster --override num.partitions=4 -- \\
        compat/librdkafka/run.sh {bootstrap} $T
    RESULTS_DIR=/tmp/rdk-cl3 CURATED=compat/librdkafka/curated-cluster.txt scripts/with-cluster \\
        --override num.partitions=4 --override 'broker.rack=RACK{node_id}' \\
        --override replica.selector.class=org.apache.kafka.common.replica.RackAwareReplicaSelector \\
        --override auto.create.topics.enable=false -- compat/librdkafka/run.sh {bootstrap}
    compat/librdkafka/results.py /tmp/rdk-all/summary.tsv --cluster /tmp/rdk-all3/summary.tsv \\
        --cluster-curated /tmp/rdk-cl3/summary.tsv > compat/librdkafka/RESULTS.md

Every test of librdkafka's tests/test.c appears once: its outcome against
Tributary on one node and on three (or why it was not run), its category
from classification.tsv and that file's reason. Local-only tests (mock
cluster, unit tests) and manual tests are listed as not run. Tests whose
outcome differs between the two are listed again with both details.
"""
import argparse
import csv
import sys
from collections import Counter
from datetime import date
from pathlib import Path

HERE = Path(__file__).resolve().parent

CATEGORY_TEXT = {
    "curated": "runs in CI on every change",
    "cluster": "needs three brokers: runs in CI on the three-node cluster",
    "needs-groups": "consumer groups: not passing yet",
    "needs-transactions": "needs transactions",
    "needs-sasl-ssl": "needs SASL/SSL/ACLs",
    "local-only": "no broker involved",
    "other": "other",
}


def classification():
    with open(HERE / "classification.tsv", newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def broker_tests(rows):
    """Tests that talk to a broker and are not manual."""
    return sorted({r["test"] for r in rows if r["category"] != "local-only" and "MANUAL" not in r["suite_flags"]})


def read_outcomes(path):
    """Each test number's outcome in a summary.tsv. A number may have several
    runs (sub-tests, "[...]", or another group protocol, "@consumer"); the
    worst is kept."""
    outcomes = {}
    with open(path, newline="") as f:
        for r in csv.DictReader(f, delimiter="\t"):
            number = r["test"].split("[")[0].split("@")[0]
            prev = outcomes.get(number)
            if prev is None or (prev["result"] == "PASS" and r["result"] != "PASS"):
                outcomes[number] = r
    return outcomes


def outcome(row, outcomes):
    """(status, detail) of one classification row in a run."""
    o = outcomes.get(row["test"])
    if row["category"] == "local-only":
        return "not run", "local (mock cluster or unit test): no broker"
    if o:
        return o["result"], o["detail"].replace("|", "\\|")
    if "MANUAL" in row["suite_flags"]:
        return "not run", "manual test"
    return "not run", "not in the run"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("summary", nargs="?", help="summary.tsv written by run.sh against one node")
    ap.add_argument("--cluster", help="summary.tsv written by run.sh against a three-node cluster")
    ap.add_argument("--cluster-curated", help="summary.tsv written by run.sh with curated-cluster.txt against a "
                    "three-node cluster in racks: the three-node outcome of the 'cluster' tests")
    ap.add_argument("--broker-tests", action="store_true", help="print the test numbers to run and exit")
    ap.add_argument("--command", default="T=$(compat/librdkafka/results.py --broker-tests)\n"
                    "RESULTS_DIR=/tmp/rdk-all scripts/with-broker --override num.partitions=4 -- "
                    "compat/librdkafka/run.sh {bootstrap} $T\n"
                    "RESULTS_DIR=/tmp/rdk-all3 scripts/with-cluster --override num.partitions=4 -- "
                    "compat/librdkafka/run.sh {bootstrap} $T\n"
                    "RESULTS_DIR=/tmp/rdk-cl3 CURATED=compat/librdkafka/curated-cluster.txt scripts/with-cluster "
                    "--override num.partitions=4 --override 'broker.rack=RACK{node_id}' --override "
                    "replica.selector.class=org.apache.kafka.common.replica.RackAwareReplicaSelector --override "
                    "auto.create.topics.enable=false -- compat/librdkafka/run.sh {bootstrap}")
    a = ap.parse_args()
    rows = classification()
    if a.broker_tests:
        print(" ".join(broker_tests(rows)))
        return 0
    if not a.summary:
        ap.error("give the summary.tsv of a run")
    outcomes = read_outcomes(a.summary)
    cluster = read_outcomes(a.cluster) if a.cluster else None
    if cluster is not None and a.cluster_curated:
        racked = read_outcomes(a.cluster_curated)
        cluster.update({r["test"]: racked[r["test"]] for r in rows if r["category"] == "cluster" and r["test"] in racked})
    counts = Counter()
    lines = []
    for r in rows:
        status, detail = outcome(r, outcomes)
        counts[(r["category"], status)] += 1
        line = {"test": r["test"], "name": r["name"], "category": r["category"], "status": status,
                "reason": r["reason"].replace("|", "\\|"), "detail": detail[:160]}
        if cluster is not None:
            status3, detail3 = outcome(r, cluster)
            counts[(r["category"], status3, 3)] += 1
            line.update(status3=status3, detail3=detail3[:160])
        lines.append(line)

    out = sys.stdout
    nodes = "one node and a three-node cluster (KRaft, every node broker and controller)" if cluster is not None \
        else "one node"
    out.write("# librdkafka's test suite against Tributary\n\n")
    out.write(f"Generated by `compat/librdkafka/results.py` on {date.today().isoformat()} from runs of every broker "
              f"test of librdkafka 2.15.1's suite against {nodes} (quick mode, `TEST_KAFKA_VERSION=3.9.0`, brokers "
              "started with `num.partitions=4` as librdkafka's own test clusters are). Regenerate rather than "
              "edit:\n\n")
    cluster_arg = " --cluster /tmp/rdk-all3/summary.tsv" if cluster is not None else ""
    if cluster is not None and a.cluster_curated:
        cluster_arg += " --cluster-curated /tmp/rdk-cl3/summary.tsv"
    out.write(f"```sh\n{a.command}\ncompat/librdkafka/results.py /tmp/rdk-all/summary.tsv{cluster_arg} "
              "> compat/librdkafka/RESULTS.md\n```\n\n")
    out.write("CI runs the `curated` tests on every change (`curated.txt`), against one node and against a "
              "three-node cluster, and the `cluster` tests (`curated-cluster.txt`) against a three-node cluster "
              "whose nodes are in racks RACK1-RACK3 with the rack-aware replica selector and no topic "
              "auto-creation (their three-node outcome is from that run); this page records the whole suite.\n\n")
    cats = ["curated", "cluster", "needs-groups", "needs-transactions", "needs-sasl-ssl", "other", "local-only"]
    states = ["PASS", "FAIL", "SKIP", "not run"]
    if cluster is None:
        out.write("## Summary\n\n| category | what it needs | PASS | FAIL | SKIP | not run |\n|---|---|---:|---:|---:|---:|\n")
        for cat in cats:
            out.write(f"| {cat} | {CATEGORY_TEXT[cat]} | " + " | ".join(str(counts[(cat, s)]) for s in states) + " |\n")
    else:
        out.write("## Summary\n\nEach cell: one node / three nodes.\n\n"
                  "| category | what it needs | PASS | FAIL | SKIP | not run |\n|---|---|---:|---:|---:|---:|\n")
        for cat in cats:
            out.write(f"| {cat} | {CATEGORY_TEXT[cat]} | "
                      + " | ".join(f"{counts[(cat, s)]} / {counts[(cat, s, 3)]}" for s in states) + " |\n")
        differing = [x for x in lines if x["status"] != x["status3"]]
        out.write("\n## Different on three nodes\n\n")
        if not differing:
            out.write("No test has another outcome on three nodes than on one.\n")
        else:
            out.write("| test | category | one node | three nodes | three-node detail |\n|---|---|---|---|---|\n")
            for x in differing:
                out.write(f"| {x['name']} | {x['category']} | {x['status']} | {x['status3']} | {x['detail3']} |\n")
    if cluster is None:
        out.write("\n## Every test\n\n| test | category | result | why it is in this category | outcome detail |\n"
                  "|---|---|---|---|---|\n")
        for x in lines:
            out.write(f"| {x['name']} | {x['category']} | {x['status']} | {x['reason']} | {x['detail']} |\n")
    else:
        out.write("\n## Every test\n\n| test | category | one node | three nodes | why it is in this category | "
                  "outcome detail (one node) |\n|---|---|---|---|---|---|\n")
        for x in lines:
            out.write(f"| {x['name']} | {x['category']} | {x['status']} | {x['status3']} | {x['reason']} | "
                      f"{x['detail']} |\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
