"""Updates survive a worker SIGKILLed while their handler runs: a new worker finishes each
accepted update exactly once."""

from __future__ import annotations

import asyncio
import signal
import subprocess
from pathlib import Path

import pytest

from memflow import Client
from tests.support import eventually, kill, spawn_ready, sql


@pytest.fixture
async def exec_log(namespace: str, client: Client) -> str:
    await client._namespace(namespace)
    await sql(f'CREATE TABLE "{namespace}".exec_log (step int, pid int)')
    return namespace


async def _executions(namespace: str) -> dict[int, int]:
    rows = await sql(f'SELECT step, count(*) FROM "{namespace}".exec_log GROUP BY step')
    return {r[0]: r[1] for r in rows}


@pytest.mark.parametrize("where", ["activity", "pass"])
async def test_an_update_whose_worker_was_killed_finishes_once(
        dsn: str, exec_log: str, client: Client, tmp_path: Path, where: str) -> None:
    ns = exec_log
    marker = tmp_path / "marker"
    env = ({"HANG_ACTIVITY": "1007"} if where == "activity"
           else {"HANG_HANDLER": "7", "HANG_MARKER": str(marker)})
    procs: list[subprocess.Popen[str]] = []
    try:
        first = await spawn_ready("tests.update_worker", dsn, ns, procs=procs, **env)
        handle = await client.workflow.start(args=[], task_queue="ledger",
                                             workflow_name="ledger")
        assert await handle.update("deposit", 5) == 5
        # accepted (in the history) before the handler finished; the caller keeps waiting
        pending = asyncio.ensure_future(handle.update("deposit", 7, update_id="dep-7"))

        async def hanging() -> bool:
            if where == "pass":
                return marker.exists()
            return (await _executions(ns)).get(1007, 0) >= 1
        await eventually(hanging, timeout=20)
        accepted = await sql(f'SELECT status FROM "{ns}".updates WHERE update_id = %s', "dep-7")
        assert accepted == [("accepted",)]
        kill(first)
        assert not pending.done()
        await spawn_ready("tests.update_worker", dsn, ns, procs=procs)
        assert await asyncio.wait_for(pending, 30) == 12
        # the same id again: the recorded result, the handler not run again
        assert await handle.update("deposit", 7, update_id="dep-7") == 12
        final = await handle.update("close")
        assert final["deposits"] == [5, 7] and final["balance"] == 12
        assert await handle.result(timeout=10) == final
    finally:
        for proc in procs:
            kill(proc)
    runs = await _executions(ns)
    assert runs[5] == runs[1005] == 1 and runs[7] == 1  # completed steps never re-ran
    assert runs[1007] == (2 if where == "activity" else 1)  # the attempt that died re-ran
    done = await sql(f"""SELECT count(*) FROM "{ns}".steps WHERE kind = 'update_done'""")
    assert done == [(3,)]


@pytest.mark.parametrize("how", ["killed", "frozen"])
async def test_a_query_whose_worker_died_is_answered_by_another(
        dsn: str, client: Client, exec_log: str, tmp_path: Path, how: str) -> None:
    """The only worker claims a query and dies (SIGKILL) or freezes (SIGSTOP) inside the
    handler; a worker started afterwards takes the claim over and answers, within the
    caller's timeout. Nothing was recorded in the run's history by either."""
    namespace = exec_log
    marker = tmp_path / "marker"
    procs: list[subprocess.Popen[str]] = []
    try:
        first = await spawn_ready("tests.update_worker", dsn, namespace, procs=procs,
                                  HANG_QUERY="1", HANG_MARKER=str(marker))
        handle = await client.workflow.start(args=[], task_queue="ledger",
                                             workflow_name="ledger")
        assert await handle.update("deposit", 5) == 5
        steps = await sql(f'SELECT count(*) FROM "{namespace}".steps')
        asked = asyncio.ensure_future(handle.query("balance", timeout=30))
        await eventually(lambda: _exists(marker), timeout=20)  # claimed, and hanging
        if how == "killed":
            kill(first)
        else:
            first.send_signal(signal.SIGSTOP)
        assert not asked.done()
        await spawn_ready("tests.update_worker", dsn, namespace, procs=procs)
        assert await asyncio.wait_for(asked, 30) == 5
        assert await sql(f'SELECT count(*) FROM "{namespace}".steps') == steps
        assert await sql(f'SELECT count(*) FROM "{namespace}".queries') == [(0,)]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGCONT)
            kill(proc)


async def _exists(path: Path) -> bool:
    return path.exists()
