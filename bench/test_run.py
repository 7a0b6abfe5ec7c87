"""Tests of run.py's bookkeeping and verdicts that need no broker: the rounds' medians and spread, the
client-bound rule, the host accounting, and what the report says from a results dict.

    python3 -m pytest bench/test_run.py -q -p no:cacheprovider
"""
from __future__ import annotations

import sys

import pytest

import host_usage
import run


# --------------------------------------------------------------------------- host accounting

STAT_BEFORE = "cpu  100 0 50 800 10 0 0 40 0 0\ncpu0 50 0 25 400 5 0 0 20 0 0\nintr 1\n"
STAT_AFTER = "cpu  200 0 100 1500 20 0 10 120 5 0\ncpu0 100 0 50 750 10 0 5 60 0 0\nintr 2\n"


def test_steal_busy_and_iowait_are_shares_of_all_cpu_time():
    start, end = host_usage.parse_cpu_line(STAT_BEFORE), host_usage.parse_cpu_line(STAT_AFTER)
    # deltas: user 100, system 50, idle 700, iowait 10, softirq 10, steal 80 -> total 950
    steal, busy, iowait = host_usage.cpu_shares(start, end)
    assert steal == round(100 * 80 / 950, 2)
    assert busy == round(100 * 160 / 950, 1)  # user + system + softirq, not steal
    assert iowait == round(100 * 10 / 950, 1)


def test_cpu_shares_unknown_without_proc_stat():
    assert host_usage.cpu_shares(None, host_usage.parse_cpu_line(STAT_AFTER)) == (None, None, None)


def test_a_command_s_cpu_and_its_subprocess_s_count_as_client_cpu():
    burn = "sum(i * i for i in range(3_000_000))"
    child = f"import subprocess, sys; {burn}; subprocess.run([sys.executable, '-c', {burn!r}], check=True)"
    mark0 = host_usage.mark()
    r = run.run_cmd([sys.executable, "-c", child], timeout=120)
    usage = host_usage.between(mark0, host_usage.mark())
    assert r["rc"] == 0
    # Two processes each did the same fixed work; the command's CPU covers both.
    alone = run.run_cmd([sys.executable, "-c", burn], timeout=120)["cpu_s"]
    assert alone > 0.05
    assert r["cpu_s"] > 1.5 * alone
    assert usage["client_cpu_s"] == pytest.approx(r["cpu_s"], abs=0.02)


# --------------------------------------------------------------------------- rounds


def rnd(mps, cpu_gb=1.0, consume=None, error=None):
    r = {"produce": {"msgs_per_s": mps, "MB_per_s": mps / 1e4, "broker_cpu_s_per_GB": cpu_gb,
                     "delivered": 1000, "cmd": "rdkafka_performance -P"},
         "consume": consume or {"msgs_per_s": 2 * mps, "MB_per_s": 2 * mps / 1e4, "consumed": 1000},
         "host": {"steal_pct": 0.5}}
    if error:
        r = {"error": error, "host": {"steal_pct": 0.0}}
    return r


def test_rounds_summary_is_the_median_with_its_spread():
    s = run.summarize_rounds([rnd(300), rnd(100, cpu_gb=1.4), rnd(200, cpu_gb=0.9)], "produce")
    assert s["msgs_per_s"] == 200
    assert s["broker_cpu_s_per_GB"] == 1.0
    assert s["spread"]["msgs_per_s"] == {"median": 200, "min": 100, "max": 300, "n": 3}
    assert s["rounds"] == s["of_rounds"] == 3
    assert "error" not in s


def test_a_failed_read_back_fails_the_consume_summary_only():
    rounds = [rnd(300), rnd(100, consume={"error": "read back 5 of 1000 records"}), rnd(200)]
    assert "error" not in run.summarize_rounds(rounds, "produce")
    c = run.summarize_rounds(rounds, "consume")
    assert c["error"].startswith("round 2: read back 5")
    assert c["msgs_per_s"] == 500  # the median of the rounds that completed: 600 and 400


def test_no_completed_round_is_an_error():
    s = run.summarize_rounds([rnd(0, error="only 3 of 10 delivered")], "produce")
    assert s["error"] == "no round completed its produce"
    assert "msgs_per_s" not in s


# --------------------------------------------------------------------------- client-bound


def test_client_bound_when_brokers_agree_and_rdkafka_reads_far_faster():
    bound, why = run.judge_client_bound({"tributary": 189_000, "tansu": 180_000},
                                        {"tributary": 4_300_000, "tansu": 2_980_000})
    assert bound, why


@pytest.mark.parametrize("python_rates, rdk_rates", [
    ({"tributary": 230_000, "tansu": 180_000}, {"tributary": 4_300_000, "tansu": 2_980_000}),  # 28% apart
    ({"tributary": 189_000, "tansu": 180_000}, {"tributary": 4_300_000, "tansu": 500_000}),  # Tansu under 3x
    ({"tributary": 189_000}, {"tributary": 4_300_000}),  # one broker only
])
def test_not_client_bound_when_the_data_does_not_show_it(python_rates, rdk_rates):
    bound, why = run.judge_client_bound(python_rates, rdk_rates)
    assert not bound
    assert why


# --------------------------------------------------------------------------- the report


def rdk_phase(mps_rounds, cpu_gb=1.0):
    rounds = [rnd(m, cpu_gb=cpu_gb) for m in mps_rounds]
    return {"records_per_round": 1000, "rounds": rounds,
            "produce": run.summarize_rounds(rounds, "produce"),
            "consume": run.summarize_rounds(rounds, "consume"),
            "broker_cpu_s": 5.0, "wall_s": 20.0,
            "host": {"wall_s": 20.0, "steal_pct": 1.5, "busy_pct": 80.0, "client_cpu_s": 12.0,
                     "harness_cpu_s": 0.5, "loadavg_start": (1.0, 1.0, 1.0), "loadavg_end": (2.0, 1.0, 1.0)}}


def py_phase(mps):
    return {"consume": {"consumed": 1000, "msgs_per_s_from_first": mps, "msgs_per_s_from_assign": mps,
                        "first_record_s": 0.05}, "produce": {"delivered": 1000}}


def results(python_100b, rdk_factor=2.0, tansu_cpu_gb=3.0):
    """Both brokers' results: rdkafka_performance rounds of 3, 1 and 2 M msg/s (produce; consume reads
    twice as fast) for Tributary and those over rdk_factor for Tansu; the Python 100 B rates given."""
    plan = dict(run.PLANS["quick"], rdk_rounds=3)

    def broker(py_rate, py_1k, rdk_scale, cpu_gb):
        phases = {f"rdk_{s}b_{p}p": rdk_phase([rdk_scale * x for x in (3_000_000, 1_000_000, 2_000_000)], cpu_gb)
                  for s, p in run.RDK_CASES}
        phases["assign_consume_100b_1p"] = py_phase(py_rate)
        phases["assign_consume_1024b_6p"] = py_phase(py_1k)
        return {"phases": phases, "startup": {"samples_ms": [5.0], "median_ms": 5.0, "max_ms": 5.0},
                "rss_idle_MB": 9.0, "stop": {"shutdown_s": 0.1}}

    return {
        "date": "today", "mode": "quick", "plan": plan, "command": "python3 bench/run.py", "duration_s": 60,
        "machine": {"cores": 2}, "versions": {}, "static_notes": [], "notes": [], "phases_filter": None,
        "brokers": {"tributary": broker(python_100b[0], 600_000, 1, 0.9),
                    "tansu": broker(python_100b[1], 300_000, 1 / rdk_factor, tansu_cpu_gb)},
    }


def glance_rows(report):
    table = report.split("## Targets at a glance", 1)[1].split("\n## ", 1)[0]
    return [ln for ln in table.splitlines() if ln.startswith("| ") and not ln.startswith("| target")]


def test_a_client_bound_row_judges_nothing_and_says_why():
    report = run.render(results(python_100b=(189_000, 180_000)))
    row = next(ln for ln in glance_rows(report) if "(assign): 100 B" in ln and "first to last" in ln)
    assert "client-bound (Python loop at ~184,000 msg/s; rdkafka_performance reads" in row
    assert row.endswith("| — (client-bound) |")
    assert "1 more row was client-bound in this run and judged nothing" in report
    judged = len(glance_rows(report)) - 1
    assert f" of {judged} met" in report


def test_a_python_row_the_data_does_not_show_client_bound_is_compared():
    report = run.render(results(python_100b=(400_000, 180_000)))
    row = next(ln for ln in glance_rows(report) if "(assign): 100 B" in ln and "first to last" in ln)
    assert f"≥ {run.TARGET_PYTHON_CONSUME_FACTOR:g}× Tansu" in row
    assert row.endswith("| yes |")
    assert "client-bound" not in report.split("## Targets at a glance", 1)[1].split("\n## ", 1)[0]


def test_every_target_names_its_load_generator_and_the_verdicts_use_medians():
    report = run.render(results(python_100b=(189_000, 180_000)))
    rows = glance_rows(report)
    assert rows
    for ln in rows:
        cells = [c.strip() for c in ln.strip("|").split("|")]
        assert len(cells) == 4 and cells[2], ln
    produce = next(ln for ln in rows if ln.startswith("| produce: 100 B records, 1 partition"))
    assert "| rdkafka_performance |" in produce and produce.endswith("| yes |")
    # Tributary's median is 2x Tansu's, so the 1.5x target is met; the cell shows median and spread.
    assert "2,000,000 msg/s (200.0 MB/s); rounds 1,000,000–3,000,000" in report
    cpu = [ln for ln in rows if "CPU s per GB produced (100 B records" in ln]
    assert len(cpu) == 2 and all(ln.endswith("| yes |") for ln in cpu)


def test_a_relative_target_is_not_met_below_the_factor():
    report = run.render(results(python_100b=(189_000, 180_000), rdk_factor=1.4))
    produce = next(ln for ln in glance_rows(report) if ln.startswith("| produce: 1 KiB records, 6 partitions"))
    assert produce.endswith("| **no** |")


def test_rounds_and_per_phase_host_tables():
    report = run.render(results(python_100b=(189_000, 180_000)))
    rounds = report.split("## rdkafka_performance rounds", 1)[1].split("\n## ", 1)[0]
    assert ("| 100 B, 1p | Tributary | produce | 3,000,000 | 1,000,000 | 2,000,000 | 2,000,000 | 3.00× | "
            "0.5, 0.5, 0.5 |") in rounds
    host = report.split("## What the machine did during each phase", 1)[1].split("\n## ", 1)[0]
    # busy 80% of 2 cores = 1.6; broker 5 s and client 12 s and harness 0.5 s over 20 s = 0.875 -> other 0.73
    assert "| `rdk_100b_1p` | Tributary | 20.0 | 1.5 | 1.60 | 5.0 (0.25) | 12.0 (0.60) | 0.73 | 1.00 → 2.00 |" \
        in host
