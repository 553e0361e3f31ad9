"""Processes die, connections drop: workflows still finish, completed steps never re-run."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from memflow import Client, Worker, WorkflowHandle
from tests.crash_worker import crashy
from tests.support import eventually, kill, spawn_ready, sql


async def spawn_worker(dsn: str, namespace: str, **env: str) -> subprocess.Popen[str]:
    """A ``tests.crash_worker`` process, once it is ready."""
    return await spawn_ready("tests.crash_worker", dsn, namespace, **env)


async def crash_then_resume(dsn: str, ns: str, client: Client, steps: int,
                            hanging: Callable[[], Awaitable[bool]], **env: str) -> WorkflowHandle:
    """Start `crashy` on a worker that hangs where ``env`` says, SIGKILL it once ``hanging()``
    holds, and let a second worker finish the workflow; returns its handle."""
    first = await spawn_worker(dsn, ns, **env)
    try:
        h = await client.workflow.start(args=[steps], task_queue="crash", workflow_name="crashy")
        await eventually(hanging, timeout=20)
        kill(first)
        second = await spawn_worker(dsn, ns)
        try:
            await h.result(timeout=30)
        finally:
            kill(second)
    finally:
        kill(first)
    return h


async def executions(namespace: str) -> dict[int, int]:
    rows = await sql(f'SELECT step, count(*) FROM "{namespace}".exec_log GROUP BY step')
    return {r[0]: r[1] for r in rows}


@pytest.fixture
async def exec_log(namespace: str, client: Client) -> str:
    await client._namespace(namespace)  # creates the schema
    await sql(f'CREATE TABLE "{namespace}".exec_log (step int, pid int)')
    return namespace


async def test_worker_killed_inside_an_activity(dsn: str, exec_log: str, client: Client) -> None:
    ns = exec_log
    h = await crash_then_resume(dsn, ns, client, 5, lambda: _has_step(ns, 2),
                                HANG_ACTIVITY="2")
    assert await h.result() == sum(i * 10 for i in range(5))
    runs = await executions(ns)
    assert runs[0] == runs[1] == runs[3] == runs[4] == 1
    assert runs[2] == 2  # the attempt that died never committed: it ran again


async def test_worker_killed_inside_a_workflow_pass(dsn: str, exec_log: str, client: Client,
                                                    tmp_path: Path) -> None:
    ns = exec_log
    marker = tmp_path / "marker"
    h = await crash_then_resume(dsn, ns, client, 4, lambda: _exists(marker), HANG_PASS="1",
                                HANG_MARKER=str(marker))
    assert await h.result() == sum(i * 10 for i in range(4))
    assert await executions(ns) == {0: 1, 1: 1, 2: 1, 3: 1}
    timeline = (await h.export())["timeline"]
    assert [(s["index"], s["kind"]) for s in timeline] == [
        (0, "activity"), (1, "activity"), (2, "activity"), (3, "activity"), (4, "sleep")]


async def test_dropped_connections_reconnect_and_finish(dsn: str, exec_log: str,
                                                        client: Client) -> None:
    ns = exec_log
    await Worker.create(connection=dsn, task_queue="crash", workflow=crashy, namespace=ns,
                        options={"lease_seconds": 2, "poll_seconds": 1})
    h = await client.workflow.start(args=[30], task_queue="crash", workflow_name="crashy")
    for _ in range(3):
        await eventually(lambda: _has_any(ns), timeout=20)
        await asyncio.sleep(0.1)
        killed = await sql("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                           "WHERE application_name LIKE 'memflow%%' AND pid <> pg_backend_pid()")
        assert killed[0][0] >= 1
    assert await h.result(timeout=60) == sum(i * 10 for i in range(30))
    runs = await executions(ns)
    assert sorted(runs) == list(range(30))


async def _has_step(ns: str, i: int) -> bool:
    return bool(await sql(f'SELECT 1 FROM "{ns}".exec_log WHERE step = %s', i))


async def _has_any(ns: str) -> bool:
    return bool(await sql(f'SELECT 1 FROM "{ns}".exec_log LIMIT 1'))


async def _exists(path: Path) -> bool:
    return path.exists()


__all__ = ["crashy"]
