"""Worker behaviour: graceful SIGTERM, pending workflows, activity forms, heartbeats."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import types
from pathlib import Path

import pytest

from memflow import Client, Worker, activity, register_activity_worker, workflow
from memflow.errors import DuplicateJobError, MemFlowFatalError
from memflow.testing import WorkflowEnvironment
from tests.support import eventually, sql

ROOT = Path(__file__).resolve().parent.parent


async def test_sigterm_drains_the_activity_in_flight(client: Client, dsn: str,
                                                     namespace: str) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "tests.sigterm_worker", dsn, namespace],
                            cwd=ROOT, env=dict(os.environ), stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert (await asyncio.to_thread(proc.stdout.readline)).strip() == "ready"
        h = await client.workflow.start(args=[1.0], task_queue="term", workflow_name="napping")

        async def running() -> bool:
            return bool(await sql(f'SELECT 1 FROM "{namespace}".tasks WHERE kind = %s '
                                  "AND lease_owner IS NOT NULL", "a"))
        await eventually(running)
        proc.send_signal(signal.SIGTERM)
        out, _ = await asyncio.to_thread(proc.communicate, timeout=30)
        assert proc.returncode == 0 and "drained" in out
        # the activity finished and was recorded before the process left
        steps = await sql(f'SELECT status, result FROM "{namespace}".steps')
        assert steps == [("done", "rested")]
        from tests.sigterm_worker import napping
        await Worker.create(connection=dsn, task_queue="term", workflow=napping,
                            namespace=namespace)
        assert await h.result(timeout=10) == "rested"
    finally:
        if proc.poll() is None:
            proc.kill()


async def hello(name: str) -> str:
    return f"hi {name}"


async def test_pending_workflow_is_created_but_not_run(memflow_env: WorkflowEnvironment) -> None:
    client = memflow_env.client
    await memflow_env.worker(task_queue="p", workflow=hello)
    h = await client.workflow.start(args=["x"], task_queue="p", workflow_name="hello",
                                    workflow_id="later", pending="1 hour")
    assert await h.status() == -1
    assert (await h.describe()).status == "pending"
    await memflow_env.sleep("30 minutes")
    assert await h.status() == -1  # never run
    with pytest.raises(DuplicateJobError):  # the pending id is still held
        await client.workflow.start(args=["y"], task_queue="p", workflow_name="hello",
                                    workflow_id="later")
    await memflow_env.sleep("31 minutes")
    h2 = await client.workflow.start(args=["y"], task_queue="p", workflow_name="hello",
                                     workflow_id="later")  # the pending id has expired
    assert await h2.result(timeout=10) == "hi y"


def sync_double(x: int) -> int:
    return 2 * x


async def async_triple(x: int) -> int:
    return 3 * x


class Tools:
    def __init__(self) -> None:
        self.offset = 1000

    async def shifted(self, x: int) -> int:
        return x + self.offset


forms_module = types.ModuleType("forms_module")
forms_module.__dict__["modular"] = None


async def modular(x: int) -> int:
    return -x


modular.__module__ = "forms_module"
forms_module.modular = modular  # type: ignore[attr-defined]


async def forms_workflow(x: int) -> list:
    a = workflow.proxy_activities({"dbl": sync_double})
    b = workflow.proxy_activities([async_triple])
    c = workflow.proxy_activities(Tools)
    d = workflow.proxy_activities(forms_module)
    e = workflow.proxy_activities(task_queue="remote")
    return [await a.dbl(x), await b.async_triple(x), await c.shifted(x), await d.modular(x),
            await e.remote_add(x, 1)]


async def remote_add(a: int, b: int) -> int:
    return a + b


async def test_activity_forms_and_remote_queue(client: Client, dsn: str,
                                               namespace: str) -> None:
    await register_activity_worker({"connection": dsn, "task_queue": "remote",
                                    "namespace": namespace}, [remote_add])
    await Worker.create(connection=dsn, task_queue="f", workflow=forms_workflow,
                        namespace=namespace)
    h = await client.workflow.start(args=[5], task_queue="f", workflow_name="forms_workflow")
    assert await h.result(timeout=20) == [10, 15, 1005, -5, 6]
    queues = await sql(f'SELECT count(*) FROM "{namespace}".steps')
    assert queues == [(5,)]


async def quiet(seconds: float, beat: bool) -> str:
    for _ in range(int(seconds / 0.1)):
        await asyncio.sleep(0.1)
        if beat:
            activity.heartbeat()
    return f"done attempt {activity.info().attempt}"


async def heartbeat_workflow(seconds: float, beat: bool) -> str:
    acts = workflow.proxy_activities(activities=[quiet], heartbeat_timeout=0.35,
                                     retry_policy={"maximum_attempts": 2,
                                                   "initial_interval": 0.05})
    return await acts.quiet(seconds, beat)


async def test_heartbeat_timeout(client: Client, dsn: str, namespace: str) -> None:
    await Worker.create(connection=dsn, task_queue="hb", workflow=heartbeat_workflow,
                        namespace=namespace)
    ok = await client.workflow.start(args=[1.0, True], task_queue="hb",
                                     workflow_name="heartbeat_workflow")
    assert await ok.result(timeout=20) == "done attempt 1"
    silent = await client.workflow.start(args=[1.0, False], task_queue="hb",
                                         workflow_name="heartbeat_workflow")
    with pytest.raises(MemFlowFatalError, match="missed its heartbeat"):
        await silent.result(timeout=20)


async def test_asyncio_sleep_in_a_workflow_is_a_clear_error(client: Client, dsn: str,
                                                            namespace: str) -> None:
    async def naughty() -> None:
        await asyncio.sleep(1)

    await Worker.create(connection=dsn, task_queue="n", workflow=naughty, namespace=namespace)
    h = await client.workflow.start(args=[], task_queue="n", workflow_name="naughty")
    with pytest.raises(Exception, match=r"workflow\.sleep_for"):
        await h.result(timeout=10)


async def test_bad_worker_options_and_workflows(dsn: str, namespace: str) -> None:
    with pytest.raises(ValueError, match="unknown worker option"):
        await Worker.create(connection=dsn, task_queue="x", workflow=hello, namespace=namespace,
                            options={"concurency": 3})
    with pytest.raises(TypeError, match="async def"):
        await Worker.create(connection=dsn, task_queue="x", workflow=sync_double,
                            namespace=namespace)
