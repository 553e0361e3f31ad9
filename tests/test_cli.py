"""The ``memflow`` command line, driven as a user would: subprocesses against a real Postgres."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from memflow import Client, MemFlow, Worker
from memflow.client import WorkflowClient
from memflow.store.schema import LATEST
from tests import cli_workflows
from tests.support import DSN, eventually, sql

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = "tests.cli_workflows:WORKFLOWS"
ACTIVITIES = "tests.cli_workflows:ACTIVITIES"


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def lines(self) -> list[str]:
        return self.out.splitlines()


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(MEMFLOW_DATABASE_URL=DSN, PYTHONUNBUFFERED="1")
    env.pop("MEMFLOW_NAMESPACE", None)
    return env


async def cli(*args: str, timeout: float = 30) -> Result:
    """Run ``memflow ARGS`` (as ``python -m memflow.cli``) to the end."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "memflow.cli", *args, cwd=ROOT, env=_env(),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode is not None
    return Result(proc.returncode, out.decode(), err.decode())


@contextlib.asynccontextmanager
async def worker_process(*args: str) -> AsyncIterator[dict[str, str]]:
    """A ``memflow worker ARGS`` subprocess, ready to work; stopped with SIGTERM afterwards.
    Yields a dict whose ``"stderr"`` is filled in once the worker has exited."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "memflow.cli", "worker", *args, cwd=ROOT, env=_env(),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    seen: list[str] = []
    box: dict[str, str] = {}
    try:
        assert proc.stderr is not None
        while True:
            line = (await asyncio.wait_for(proc.stderr.readline(), 20)).decode()
            if not line:
                raise AssertionError(f"worker exited before it was ready: {''.join(seen)}")
            seen.append(line)
            if "memflow worker ready" in line:
                break
        yield box
        proc.send_signal(signal.SIGTERM)
        rest = await asyncio.wait_for(proc.stderr.read(), 20)
        await asyncio.wait_for(proc.wait(), 10)
        box["stderr"] = "".join(seen) + rest.decode()
        box["code"] = str(proc.returncode)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


def one_error_line(result: Result) -> str:
    """The error line of a failed command (asserting it is the only line on stderr)."""
    lines = [line for line in result.err.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1, result.err
    assert "Traceback" not in result.err
    return errors[0]


async def test_worker_start_signal_result_list_show_interrupt(namespace: str) -> None:
    ns = ["--namespace", namespace]
    async with worker_process(WORKFLOWS, "--task-queue", "cliq", "--activities", ACTIVITIES,
                              *ns) as stopped:
        r = await cli("start", "greet", "-q", "cliq", "--arg", '"Ann"', "--wait", *ns)
        assert (r.code, r.out.strip()) == (0, '"Hello, Ann!"'), r.err
        assert "started workflow" in r.err

        r = await cli("start", "loud_greet", "-q", "cliq", "--args", '["Bob"]', "--id", "lg",
                      "--search", "customer=bob", "--wait", *ns)
        assert (r.code, json.loads(r.out)) == (0, "HELLO, BOB"), r.err

        r = await cli("start", "waiter", "-q", "cliq", "--arg", '"sig-1"', "--id", "w1", *ns)
        assert (r.code, r.out.strip()) == (0, "w1"), r.err
        r = await cli("signal", "sig-1", '{"n": 1, "s": "x"}', *ns)
        assert (r.code, r.out.strip()) == (0, "sent signal sig-1"), r.err
        r = await cli("result", "w1", "--timeout", "20s", *ns)
        assert (r.code, json.loads(r.out)) == (0, {"n": 1, "s": "x"}), r.err

        r = await cli("start", "sleeper", "-q", "cliq", "--arg", "600", "--id", "s1", *ns)
        assert r.code == 0, r.err
        r = await cli("result", "s1", "--no-wait", *ns)
        assert r.code == 1 and "is running: no result yet" in one_error_line(r)
        r = await cli("interrupt", "s1", "--reason", "enough sleep", *ns)
        assert (r.code, r.out.strip()) == (0, "interrupted workflow s1"), r.err
        r = await cli("result", "s1", *ns)
        assert r.code == 1
        assert one_error_line(r) == "error: workflow s1 was interrupted: enough sleep"
        r = await cli("interrupt", "s1", *ns)
        assert r.code == 1 and "already interrupted" in one_error_line(r)

        r = await cli("start", "failing", "-q", "cliq", "--arg", '"boom"', "--id", "f1",
                      "--wait", *ns)
        assert r.code == 1
        assert one_error_line(r) == "error: workflow f1 failed: MemFlowMaxedError (597): boom"

    assert stopped["code"] == "0", stopped["stderr"]
    assert "finishing the work in flight" in stopped["stderr"]
    assert "worker stopped" in stopped["stderr"]

    r = await cli("list", *ns)
    assert r.code == 0, r.err
    header, *rows = r.lines
    assert header.split() == ["WORKFLOW", "ID", "NAME", "QUEUE", "STATUS", "CREATED", "DURATION"]
    by_id = {row.split()[0]: row.split() for row in rows}
    assert by_id["lg"][1:4] == ["loud_greet", "cliq", "completed"]
    assert by_id["s1"][3] == "interrupted" and by_id["f1"][3] == "failed"
    assert "\x1b[" not in r.out  # no colour when piped

    r = await cli("list", "--status", "failed", "--json", *ns)
    listed = json.loads(r.out)
    assert [(w["workflow_id"], w["status"]) for w in listed] == [("f1", "failed")]
    assert listed[0]["error"]["message"] == "boom"
    r = await cli("list", "--name", "loud_greet", "--queue", "cliq", *ns)
    assert [line.split()[0] for line in r.lines[1:]] == ["lg"]
    r = await cli("list", "--limit", "2", *ns)
    assert len(r.lines) == 3 and "use --limit for more" in r.err

    r = await cli("show", "lg", *ns)
    assert r.code == 0, r.err
    text = r.out
    assert text.splitlines()[0] == "lg  completed"
    for expected in ("loud_greet", "arguments   [\"Bob\"]", "result      \"HELLO, BOB\"",
                     "customer=bob", "timeline (2 steps)", "activity", "shout", "sleep"):
        assert expected in text, (expected, text)
    step_rows = [line.split() for line in text.splitlines() if line.startswith("  0 ")
                 or line.startswith("  1 ")]
    assert [row[:3] for row in step_rows] == [["0", "main", "activity"], ["1", "main", "sleep"]]

    r = await cli("show", "f1", *ns)
    assert "error       MemFlowMaxedError (597): boom" in r.out

    r = await cli("show", "lg", "--json", *ns)
    doc = json.loads(r.out)
    assert doc["status"] == "completed" and doc["state"]["response"] == "HELLO, BOB"
    assert [s["kind"] for s in doc["timeline"]] == ["activity", "sleep"]
    assert doc["run"]["args"] == ["Bob"] and doc["describe"]["workflow_name"] == "loud_greet"


async def test_activity_worker_on_its_own_queue_from_a_file_path(namespace: str) -> None:
    await Worker.create(connection=DSN, task_queue="remote", namespace=namespace,
                        workflow=cli_workflows.remote_shout)
    async with worker_process("--activities", "tests/cli_workflows.py:ACTIVITIES",
                              "--activity-queue", "shouter", "--namespace", namespace):
        client = Client(connection=DSN, namespace=namespace)
        handle = await client.workflow.start(args=["far away"], task_queue="remote",
                                             workflow_name="remote_shout")
        assert await handle.result(timeout=20) == "FAR AWAY"
    await MemFlow.shutdown()


@pytest.mark.skipif(not hasattr(WorkflowClient, "hook"),
                    reason="needs client.workflow.hook (hooks not implemented yet)")
async def test_hook_command(namespace: str) -> None:
    ns = ["--namespace", namespace]
    async with worker_process(WORKFLOWS, "-q", "cliq", *ns):
        r = await cli("start", "hook_target", "-q", "cliq", "--arg", '"hooked"', "--id", "h1",
                      *ns)
        assert r.code == 0, r.err
        r = await cli("hook", "h1", "hook_sender", "--arg", '"hooked"', "--arg",
                      '{"via": "hook"}', *ns)
        assert r.code == 0, r.err
        assert r.out.startswith("hooked hook_sender into workflow h1")
        r = await cli("result", "h1", "--timeout", "20", *ns)
        assert (r.code, json.loads(r.out)) == (0, {"via": "hook"}), r.err
        r = await cli("hook", "nobody", "hook_sender", "-q", "cliq", *ns)
        assert r.code == 1 and "nobody" in one_error_line(r)


async def _finished_runs(namespace: str) -> Client:
    """Three finished runs (one id run twice, its first run archived) and one running."""
    await Worker.create(connection=DSN, task_queue="cliq", namespace=namespace,
                        workflow=cli_workflows.WORKFLOWS, activities=cli_workflows.ACTIVITIES)
    client = Client(connection=DSN, namespace=namespace)
    for wf_id in ("again", "again", "other"):
        handle = await client.workflow.start(args=["x"], task_queue="cliq", expire=0,
                                             workflow_name="loud_greet", workflow_id=wf_id)
        assert await handle.result(timeout=20) == "HELLO, X"
    await client.workflow.start(args=["never"], task_queue="cliq", workflow_name="waiter",
                                workflow_id="live")
    await eventually(lambda: sql(f'SELECT 1 FROM "{namespace}".steps s JOIN '
                                 f'"{namespace}".workflows w USING (run_id) '
                                 "WHERE w.workflow_id = 'live'"))
    await MemFlow.shutdown()
    return client


async def test_prune(namespace: str) -> None:
    await _finished_runs(namespace)
    steps = f'SELECT count(*) FROM "{namespace}".steps'
    workflows = f'SELECT workflow_id FROM "{namespace}".workflows ORDER BY 1'
    assert (await sql(steps))[0][0] == 7  # 3 runs x 2 steps + the live wait

    r = await cli("db", "prune", "--dry-run", "--older-than", "0s", "--namespace", namespace)
    assert r.out.strip() == ("would remove 3 finished workflows older than 0 s and the rows "
                             "of 0 orphaned runs"), r.err

    r = await cli("db", "prune", "--namespace", namespace)  # default: older than 7 days
    assert r.code == 0, r.err
    assert r.out.startswith("removed 0 finished workflows older than 7d (0 steps")
    assert "and 0 orphaned runs (0 steps, 0 threads, 0 tasks)" in r.out
    assert (await sql(steps))[0][0] == 7  # the archived run keeps its steps
    assert [w[0] for w in await sql(workflows)] == ["again", "live", "other"]

    r = await cli("db", "prune", "--older-than", "0s", "--batch-size", "1",
                  "--namespace", namespace)
    assert r.code == 0, r.err
    assert r.out.startswith("removed 3 finished workflows older than 0 s (6 steps, 0 threads")
    assert "pruned 1 workflows" in r.err and "pruned 3 workflows" in r.err  # progress
    assert [w[0] for w in await sql(workflows)] == ["live"]
    assert (await sql(steps))[0][0] == 1  # the live run keeps its step


async def test_db_migrate_and_info(namespace: str) -> None:
    ns = ["--namespace", namespace]
    r = await cli("db", "migrate", *ns)
    assert (r.code, r.out.strip()) == (0, f"namespace {namespace}: migration version {LATEST} "
                                          "(created)"), r.err
    r = await cli("db", "migrate", *ns)
    assert r.out.strip() == (f"namespace {namespace}: migration version {LATEST} "
                             "(already up to date)")

    client = Client(connection=DSN, namespace=namespace)
    for _ in range(3):
        await client.workflow.start(args=["x"], task_queue="nobody-serves",
                                    workflow_name="greet")
    await client.workflow.signal("unheard", 1)
    await MemFlow.shutdown()

    r = await cli("db", "info", *ns)
    assert r.code == 0, r.err
    assert r.lines[0].startswith("database  postgresql://") and "PostgreSQL" in r.lines[0]
    assert f"namespace {namespace}  migration version {LATEST}" in r.out
    assert "workflows  3  (running 3)" in r.out
    assert "signals    1 kept" in r.out
    queue_rows = [line.split() for line in r.lines if "nobody-serves" in line]
    assert queue_rows == [["nobody-serves", "workflow", "pass", "3", "0"]]

    r = await cli("db", "info", "--json")  # every namespace
    info = json.loads(r.out)
    mine = [n for n in info["namespaces"] if n["namespace"] == namespace]
    assert mine and mine[0]["workflows"] == {"running": 3} and mine[0]["version"] == LATEST
    assert "***" in info["database"] or "@" not in info["database"]


@pytest.mark.parametrize("args", [
    ["start", "greet", "-q", "q", "--arg", "Ann"],              # not JSON
    ["start", "greet", "--arg", "1"],                           # no --task-queue
    ["start", "greet", "-q", "q", "--args", '{"a": 1}'],        # not a list
    ["start", "greet", "-q", "q", "--arg", "1", "--args", "[1]"],
    ["start", "greet", "-q", "q", "--search", "novalue"],
    ["start", "greet", "-q", "q", "--expire", "soon"],
    ["signal", "s", "{bad json"],
    ["list", "--status", "sleeping"],
    ["list", "--limit", "0"],
    ["list", "--namespace", "Bad-Name"],
    ["db", "prune", "--older-than", "a while"],
    ["worker", "no_such_module_xyz:flow", "-q", "q"],
    ["worker", "tests.cli_workflows:nothing_here", "-q", "q"],
    ["worker", "tests.support:DSN", "-q", "q"],                 # not an async def function
    ["worker", WORKFLOWS],                                      # no --task-queue
    ["worker"],
    ["nosuchcommand"],
])
async def test_bad_arguments_are_one_line_and_exit_2(args: list[str]) -> None:
    r = await cli(*args, "--database-url", "postgresql://nobody@127.0.0.1:1/none")
    assert r.code == 2, (args, r)
    assert one_error_line(r).startswith("error: ")
    assert len(r.err.strip().splitlines()) == 1, r.err
    assert r.out == ""


async def test_runtime_errors_are_one_line_and_exit_1(namespace: str) -> None:
    ns = ["--namespace", namespace]
    r = await cli("list", *ns)  # the namespace does not exist yet: it is not created
    assert r.code == 1 and "has no MemFlow tables" in one_error_line(r)
    assert not await sql("SELECT 1 FROM pg_namespace WHERE nspname = %s", namespace)

    r = await cli("start", "greet", "-q", "nobody", "--arg", '"x"', "--id", "dup", *ns)
    assert r.code == 0
    r = await cli("start", "greet", "-q", "nobody", "--arg", '"x"', "--id", "dup", *ns)
    assert (r.code, one_error_line(r)) == (1, "error: Duplicate job: dup")
    r = await cli("show", "missing", *ns)
    assert (r.code, one_error_line(r)) == (1, "error: Workflow not found: missing")
    r = await cli("result", "dup", "--timeout", "0.3s", *ns)
    assert r.code == 1 and "did not finish within 0.3s" in one_error_line(r)
    r = await cli("list", "--database-url", "postgresql://nobody@127.0.0.1:1/none")
    assert r.code == 1 and one_error_line(r).startswith("error: cannot connect to postgresql")

    r = await cli("show", "missing", "--debug", *ns)
    assert r.code == 1 and "Traceback" in r.err and "WorkflowNotFoundError" in r.err


async def test_demo_still_works(namespace: str) -> None:
    r = await cli("demo", "--namespace", namespace)
    assert r.code == 0, r.err
    assert r.lines[-1].startswith("result: 'Processed $99.50'")
    assert any("activity process_payment" in line for line in r.lines)


def test_console_script_points_at_the_cli() -> None:
    (script,) = [e for e in entry_points(group="console_scripts") if e.name == "memflow"]
    from memflow.cli import main

    assert script.load() is main
