"""The benchmark harness still runs: every workload with a tiny N, checked line by line."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import DSN

ROOT = Path(__file__).resolve().parent.parent

CASES = {
    "W1": (["W1", "--n", "5", "--floor-seconds", "0.3"],
           ["total_s", "workflows_per_s", "p50_ms", "p99_ms", "commits_per_workflow",
            "write_xacts_per_workflow", "pg_commit_per_s", "floor_share", "write_floor_share"]),
    "W2": (["W2"], ["total_s"]),
    "W3": (["W3", "--runs", "3"], ["p50_ms", "p99_ms", "mean_ms"]),
    "W4": (["W4", "--n", "3"], ["total_s", "first_to_last_s", "send_s", "all_waiting_s"]),
    "floor": (["floor", "--seconds", "0.3"],
              ["pg_commit_per_s", "pg_commit_per_s_1conn", "pg_commit_per_s_8conn",
               "pg_commit_per_s_8conn_notify"]),
    "timers": (["timers", "--n", "3"],
               ["p50_ms", "p99_ms", "fire_p50_ms", "resume_p50_ms", "total_s"]),
    "long": (["long", "--n", "5"], ["total_s_5", "total_s_5_cache0"]),
    "long-can": (["long-can", "--n", "40"],
                 ["total_s", "per_step_ms", "runs", "per_step_ms_first_run",
                  "per_step_ms_last_run", "plain_per_step_ms_2", "plain_per_step_ms_4"]),
    "rss": (["rss", "--n", "5"], ["rss_mb", "rss_idle_mb", "cache_size"]),
    "dashboard": (["dashboard", "--n", "300"],
                  ["list_ms", "list_deep_page_ms", "run_10k_steps_ms", "queues_ms", "steps"]),
    "W1-observe": (["W1-observe", "--n", "3", "--runs", "1"],
                   ["total_s_off", "total_s_tracing", "total_s_metrics", "cpu_s_off",
                    "tracing_overhead_pct", "metrics_overhead_pct", "spans_per_run"]),
    "W1-limited": (["W1-limited", "--n", "6", "--concurrency", "2"],
                   ["total_s", "workflows_per_s", "p50_ms", "p99_ms", "peak_running",
                    "peak_admitted", "concurrency"]),
    "W1-rate": (["W1-rate", "--n", "8", "--rate", "4"],
                ["total_s", "workflows_per_s", "achieved_rate_per_s", "max_in_window"]),
    "schedules": (["schedules", "--n", "3", "--seconds", "2"],
                  ["p50_ms", "p99_ms", "claim_p50_ms", "claim_p99_ms", "ticks", "missing",
                   "duplicates"]),
    "queries": (["queries", "--n", "2", "--runs", "5"],
                ["cached_p50_ms", "cached_p99_ms", "uncached_p50_ms", "uncached_p99_ms"]),
    "updates": (["updates", "--n", "2", "--runs", "10"],
                ["p50_ms", "p99_ms", "activity_p50_ms", "activity_p99_ms"]),
}


def run_harness(args: list[str]) -> list[dict]:
    """Run ``python -m benchmarks ARGS`` and parse its JSON lines."""
    env = dict(os.environ, MEMFLOW_DATABASE_URL=DSN)
    proc = subprocess.run([sys.executable, "-m", "benchmarks", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    assert lines, proc.stderr[-3000:]
    return lines


@pytest.mark.parametrize("workload", list(CASES))
def test_workload_prints_sane_json(workload: str) -> None:
    args, keys = CASES[workload]
    [line] = run_harness(args)
    assert line["workload"] == workload
    assert "error" not in line
    assert line["driver"] in ("same-process", "separate-process worker")
    for key in keys:
        value = line[key]
        assert isinstance(value, int | float) and math.isfinite(value), (key, value)
    if workload == "W1-observe":  # 4 workflows (warm-up included) of 8 spans each
        assert line["spans_per_run"] == 32
    for key in ("total_s", "workflows_per_s", "pg_commit_per_s", "rss_mb"):
        if key in line:
            assert line[key] > 0, (key, line)
    if "p50_ms" in line:
        assert line["p50_ms"] <= line["p99_ms"]
        if workload != "timers":
            assert line["p50_ms"] > 0
    if workload == "W1":
        assert line["commits_per_workflow"] > 0 and line["write_xacts_per_workflow"] > 0
    if workload == "W4":
        assert line["first_to_last_s"] >= line["total_s"] >= 0
    if workload == "schedules":
        assert line["ticks"] == line["expected_ticks"] == 6
        assert line["missing"] == line["duplicates"] == 0
    if workload == "W1-limited":
        assert 1 <= line["peak_running"] <= 2 and line["peak_admitted"] <= 2
    if workload == "W1-rate":
        assert line["max_in_window"] <= 4
    if workload == "timers":
        assert line["fire_p50_ms"] >= 0  # a timer never fires before it is due (one clock: PG)


def test_unknown_workload_is_a_usage_error() -> None:
    proc = subprocess.run([sys.executable, "-m", "benchmarks", "W9"], cwd=ROOT,
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2
    assert "unknown workload" in proc.stderr
