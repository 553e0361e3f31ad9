"""Observability: one trace across client, passes and activities (in and across processes),
replay-aware logs and spans, and the Prometheus metrics a worker serves."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client.parser import text_string_to_metric_families

from memflow import Client, Worker, activity, observe
from memflow.observe import JsonFormatter
from tests import observe_app as app

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """MemFlow traces into an in-memory exporter for the test."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    observe.use_tracer_provider(provider)
    app.FAILED_ONCE.clear()
    yield exporter
    observe.use_tracer_provider(None)


def records(exporter: InMemorySpanExporter) -> list[dict[str, Any]]:
    return [app.span_record(s) for s in exporter.get_finished_spans()]


def named(recs: list[dict[str, Any]], prefix: str) -> list[dict[str, Any]]:
    return [r for r in recs if r["name"].startswith(prefix)]


async def worker(dsn: str, namespace: str, **options: Any) -> Worker:
    return await Worker.create(connection=dsn, task_queue="obs", namespace=namespace,
                               workflow=[app.traced, app.kid, app.two_steps, app.crosses],
                               activities=app.ACTIVITIES, options=options or None)


async def test_one_trace_from_client_start_through_passes_activities_and_child(
        dsn: str, namespace: str, client: Client, spans: InMemorySpanExporter) -> None:
    await worker(dsn, namespace)
    handle = await client.workflow.start(args=["ann"], task_queue="obs", workflow_name="traced")
    assert await handle.result(timeout=60) == "hi ann|ok ann|hi kid ann"
    recs = records(spans)
    by_id = {r["span_id"]: r for r in recs}
    assert len({r["trace_id"] for r in recs}) == 1, recs
    (start,) = named(recs, "StartWorkflow:traced")
    assert start["parent_id"] is None
    assert start["attributes"]["memflow.workflow_id"] == handle.workflow_id
    passes = named(recs, "RunWorkflow:traced")
    assert passes and all(p["parent_id"] == start["span_id"] for p in passes)
    assert all(p["attributes"]["memflow.replay"] is False for p in passes)
    pass_ids = {p["span_id"] for p in passes}
    greet = [r for r in named(recs, "RunActivity:greet")
             if r["attributes"]["memflow.workflow_id"] == handle.workflow_id]
    assert len(greet) == 1 and greet[0]["parent_id"] in pass_ids
    flaky = sorted(named(recs, "RunActivity:flaky"),
                   key=lambda r: r["attributes"]["memflow.attempt"])
    assert [f["attributes"]["memflow.attempt"] for f in flaky] == [1, 2]
    assert [f["status"] for f in flaky] == ["ERROR", "UNSET"]
    assert flaky[0]["parent_id"] == flaky[1]["parent_id"] and flaky[0]["parent_id"] in pass_ids
    assert greet[0]["parent_id"] != flaky[0]["parent_id"]  # each scheduled by its own pass
    (event,) = named(recs, "memflow.traced")
    assert event["attributes"]["step"] == "after-flaky" and event["parent_id"] in pass_ids
    kid_passes = named(recs, "RunWorkflow:kid")
    assert kid_passes and all(by_id[k["parent_id"]]["name"] == "RunWorkflow:traced"
                              for k in kid_passes)
    (kid_greet,) = [r for r in named(recs, "RunActivity:greet") if r is not greet[0]]
    assert kid_greet["parent_id"] in {k["span_id"] for k in kid_passes}


async def test_replay_adds_no_activity_span_and_no_duplicate_log(
        dsn: str, namespace: str, client: Client, spans: InMemorySpanExporter,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="memflow")
    await worker(dsn, namespace, cache_size=0)  # every pass after the first one replays
    handle = await client.workflow.start(args=["bo"], task_queue="obs", workflow_name="traced")
    assert await handle.result(timeout=60) == "hi bo|ok bo|hi kid bo"
    recs = records(spans)
    assert len({r["trace_id"] for r in recs}) == 1
    passes = named(recs, "RunWorkflow:traced")
    assert len(passes) >= 3  # results arriving during a pass may share it
    assert [p["attributes"]["memflow.replay"] for p in passes] == [False] + [True] * (
        len(passes) - 1)
    (start,) = named(recs, "StartWorkflow:traced")
    assert all(p["parent_id"] == start["span_id"] for p in passes)
    assert len(named(recs, "RunActivity:greet")) == 2      # the workflow's and the child's
    assert len(named(recs, "RunActivity:flaky")) == 2      # its two attempts
    assert len(named(recs, "memflow.traced")) == 1
    mine = [r for r in caplog.records if r.name == "memflow.workflow"
            and getattr(r, "run_id", None) == handle.run_id]
    assert [r.getMessage() for r in mine] == ["starting bo", "greeted bo", "done bo"]
    assert all(r.workflow_id == handle.workflow_id for r in mine)
    acts = [r for r in caplog.records if r.name == "memflow.activity"
            and getattr(r, "workflow_id", None) == handle.workflow_id]
    assert [(r.getMessage()[:25], r.activity_name, r.attempt, r.run_id) for r in acts] == [
        ("greeting bo", "greet", 1, handle.run_id),
        ("activity flaky failed (at", "flaky", 1, handle.run_id)]  # the engine's retry note


async def test_trace_joins_an_activity_worker_in_another_process(
        dsn: str, namespace: str, client: Client, spans: InMemorySpanExporter,
        tmp_path: Path) -> None:
    span_file = tmp_path / "spans.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "tests.observe_app", dsn, namespace,
                             str(span_file)], cwd=ROOT, env=dict(os.environ),
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert (await asyncio.to_thread(proc.stdout.readline)).strip() == "ready"
        await worker(dsn, namespace)
        handle = await client.workflow.start(args=["cy"], task_queue="obs",
                                             workflow_name="crosses")
        assert await handle.result(timeout=60) == "hi cy|CY"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    local = records(spans)
    remote = [json.loads(line) for line in span_file.read_text().splitlines()]
    (act,) = remote
    assert act["name"] == "RunActivity:remote_upper"
    assert act["attributes"]["memflow.attempt"] == 1
    assert act["attributes"]["memflow.run_id"] == handle.run_id
    (trace_id,) = {r["trace_id"] for r in local}
    assert act["trace_id"] == trace_id
    assert act["parent_id"] in {r["span_id"] for r in named(local, "RunWorkflow:crosses")}


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(samples: dict[Any, float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_metrics_endpoint_counts_what_ran(dsn: str, namespace: str,
                                                client: Client) -> None:
    app.FAILED_ONCE.clear()
    w = await worker(dsn, namespace, metrics_port=0)
    assert w.metrics_port
    before = await asyncio.to_thread(scrape, w.metrics_port)
    n = 4
    handles = [await client.workflow.start(args=[f"m{i}"], task_queue="obs",
                                           workflow_name="two_steps") for i in range(n)]
    for i, h in enumerate(handles):
        assert await h.result(timeout=60) == f"hi m{i}|ok m{i}"
    failing = await client.workflow.start(args=[], task_queue="obs", workflow_name="kid")
    with pytest.raises(Exception):  # noqa: B017 - a missing argument fails the run
        await failing.result(timeout=60)
    after = await asyncio.to_thread(scrape, w.metrics_port)
    ns = namespace
    assert value(after, "memflow_workflows_started_total", namespace=ns,
                 workflow="two_steps") == n
    assert value(after, "memflow_workflows_completed_total", namespace=ns,
                 workflow="two_steps", status="completed") == n
    assert value(after, "memflow_workflows_completed_total", namespace=ns,
                 workflow="kid", status="failed") == 1
    assert value(after, "memflow_activity_attempts_total", namespace=ns, activity="greet") == n
    assert value(after, "memflow_activity_attempts_total", namespace=ns,
                 activity="flaky") == 2 * n
    assert value(after, "memflow_activity_failures_total", namespace=ns, activity="flaky") == n
    assert value(after, "memflow_activity_failures_total", namespace=ns, activity="greet") == 0
    assert value(after, "memflow_activity_seconds_count", namespace=ns,
                 activity="flaky") == 2 * n
    passes = sum(value(after, "memflow_workflow_passes_total", namespace=ns,
                       workflow="two_steps", replay=r) for r in ("true", "false"))
    assert passes >= 3 * n
    assert value(after, "memflow_workflow_pass_seconds_count", namespace=ns,
                 workflow="two_steps") == passes
    assert value(after, "memflow_schedule_to_start_seconds_count", namespace=ns,
                 kind="activity") == 2 * n
    assert value(after, "memflow_schedule_to_start_seconds_count", namespace=ns,
                 kind="workflow") == n + 1
    hits = value(after, "memflow_cache_total", event="hit") - value(
        before, "memflow_cache_total", event="hit")
    assert hits >= 2 * n
    assert value(after, "memflow_notify_wakeups_total", kind="d") > value(
        before, "memflow_notify_wakeups_total", kind="d")
    for state in ("ready", "leased", "delayed"):  # sampled at start, then every 5 s
        assert ("memflow_queue_depth", (("namespace", ns), ("queue", "obs"),
                                        ("state", state))) in after
    assert ("memflow_queue_oldest_ready_seconds",
            (("namespace", ns), ("queue", "obs-activity"))) in after


async def test_queue_stats_reports_depth_and_oldest_ready_age(dsn: str, namespace: str,
                                                              client: Client) -> None:
    for i in range(3):  # no worker: the passes wait in the queue
        await client.workflow.start(args=[f"q{i}"], task_queue="idle", workflow_name="kid")
    await client.workflow.start(args=["p"], task_queue="idle", workflow_name="kid",
                                pending=60)
    ns = await client._namespace(namespace)
    await asyncio.sleep(0.05)
    rows = {r["queue"]: r for r in await ns.observe.queue_stats(["idle", "none"])}
    assert rows["idle"]["ready"] == 3 and rows["idle"]["leased"] == 0
    assert rows["idle"]["oldest_ready_s"] > 0
    assert rows["none"] == {"queue": "none", "ready": 0, "leased": 0, "delayed": 0,
                            "oldest_ready_s": 0.0}


def test_bad_metrics_port_is_a_clear_error() -> None:
    from memflow.worker import _options

    for bad in (-1, 70000, "9464", True):
        with pytest.raises(ValueError, match="metrics_port"):
            _options({"metrics_port": bad})


def test_json_formatter_keeps_extra_fields() -> None:
    record = logging.LogRecord("memflow.activity", logging.INFO, __file__, 1, "hi %s",
                               ("there",), None)
    record.workflow_id = "w1"
    record.attempt = 2
    doc = json.loads(JsonFormatter().format(record))
    assert doc["message"] == "hi there" and doc["level"] == "INFO"
    assert doc["workflow_id"] == "w1" and doc["attempt"] == 2
    assert doc["logger"] == "memflow.activity" and "ts" in doc


def test_loggers_log_plainly_outside_workflows_and_activities(
        caplog: pytest.LogCaptureFixture) -> None:
    from memflow import workflow

    caplog.set_level(logging.INFO, logger="memflow")
    workflow.logger.info("outside")
    activity.logger.info("outside too")
    assert [r.getMessage() for r in caplog.records] == ["outside", "outside too"]
    assert not hasattr(caplog.records[0], "workflow_id")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_cli_worker_logs_json_and_serves_metrics(namespace: str, client: Client) -> None:
    from tests.test_cli import worker_process

    port = free_port()
    async with worker_process("tests.observe_app:WORKFLOWS", "-q", "obs", "--activities",
                              "tests.observe_app:ACTIVITIES", "--namespace", namespace,
                              "--log-format", "json", "--metrics-port", str(port)) as box:
        handle = await client.workflow.start(args=["di"], task_queue="obs",
                                             workflow_name="traced")
        assert await handle.result(timeout=60) == "hi di|ok di|hi kid di"
        samples = await asyncio.to_thread(scrape, port)
        assert value(samples, "memflow_workflows_completed_total", namespace=namespace,
                     workflow="traced", status="completed") == 1
        assert value(samples, "memflow_activity_attempts_total", namespace=namespace,
                     activity="flaky") == 2
    assert box["code"] == "0"
    docs = [json.loads(line) for line in box["stderr"].splitlines() if line.startswith("{")]
    logged = {(d["logger"], d["message"]): d for d in docs}
    done = logged[("memflow.workflow", "done di")]
    assert done["workflow_id"] == handle.workflow_id and done["run_id"] == handle.run_id
    greet = logged[("memflow.activity", "greeting di")]
    assert greet["activity_name"] == "greet" and greet["attempt"] == 1
    assert greet["level"] == "INFO" and greet["ts"]


def test_no_cost_and_clear_errors_without_the_extras(dsn: str, namespace: str) -> None:
    """With opentelemetry and prometheus_client not importable, workflows run as before
    (tracing is off), and asking for metrics is a clear ImportError."""
    script = f"""
import asyncio, sys
sys.modules["opentelemetry"] = None
sys.modules["prometheus_client"] = None
from memflow import Client, MemFlow, Worker, observe
from tests import observe_app as app
assert not observe.tracing.INSTALLED and not observe.metrics.INSTALLED
assert observe.tracing.tracer() is None

async def main():
    await Worker.create(connection={dsn!r}, task_queue="obs", namespace={namespace!r},
                        workflow=[app.traced, app.kid], activities=app.ACTIVITIES)
    client = Client(connection={dsn!r}, namespace={namespace!r})
    h = await client.workflow.start(args=["ed"], task_queue="obs", workflow_name="traced")
    print(await h.result(timeout=60))
    try:
        await Worker.create(connection={dsn!r}, task_queue="obs2", namespace={namespace!r},
                            options={{"metrics_port": 0}})
    except ImportError as exc:
        print("ImportError:", exc)
    await MemFlow.shutdown()

asyncio.run(main())
"""
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=dict(os.environ),
                          capture_output=True, text=True, timeout=90)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    assert lines[0] == "hi ed|ok ed|hi kid ed"
    assert lines[1].startswith("ImportError:") and "memflow[metrics]" in lines[1]


def test_dashboard_uses_only_exported_metrics() -> None:
    import re

    from memflow.observe import metrics

    metrics.enable()
    suffixes = {"counter": ["_total"], "gauge": [""], "histogram": ["_bucket", "_count", "_sum"]}
    names = {m._name + suffix for m in vars(metrics.M).values() for suffix in suffixes[m._type]}
    dashboard = (ROOT / "docs" / "grafana-dashboard.json").read_text()
    used = set(re.findall(r"memflow_[a-z_]+", dashboard))
    assert len(used) >= 10 and used <= names, used - names


async def test_a_pass_taken_over_after_a_crash_counts_as_a_lease_expiry(
        dsn: str, namespace: str, client: Client, tmp_path: Path) -> None:
    from tests.crash_worker import crashy
    from tests.support import sql
    from tests.test_crash import kill, spawn_worker

    await client._namespace(namespace)
    await sql(f'CREATE TABLE "{namespace}".exec_log (step int, pid int)')
    marker = tmp_path / "hang"
    first = await spawn_worker(dsn, namespace, HANG_PASS="1", HANG_MARKER=str(marker))
    try:
        h = await client.workflow.start(args=[3], task_queue="crash", workflow_name="crashy")
        for _ in range(400):
            if marker.exists():
                break
            await asyncio.sleep(0.05)
        assert marker.exists()
        kill(first)
        w = await Worker.create(connection=dsn, task_queue="crash", workflow=crashy,
                                namespace=namespace, options={"metrics_port": 0,
                                                              "poll_seconds": 1})
        assert await h.result(timeout=60) == 30
        samples = await asyncio.to_thread(scrape, w.metrics_port)
    finally:
        kill(first)
    assert value(samples, "memflow_lease_expiries_total", namespace=namespace,
                 queue="crash") == 1
    assert value(samples, "memflow_workflow_passes_total", namespace=namespace,
                 workflow="crashy", replay="true") >= 1
