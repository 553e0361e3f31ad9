"""Cooperative cancellation (``handle.cancel``) and termination (``handle.terminate``)."""

from __future__ import annotations

import asyncio
import subprocess
import time
from pathlib import Path

import pytest

from memflow import Worker, activity, workflow
from memflow.errors import MemFlowCancelledError, MemFlowInterruptedError, WorkflowNotFoundError
from tests.support import eventually, kill, spawn_ready, sql

TOLD: list[str] = []      # activities that saw their cancellation through heartbeat()
COMPENSATED: list[str] = []


def cx_slow_sync(label: str) -> str:
    """A sync activity that heartbeats for up to 30 s (it should be told to stop)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            activity.heartbeat()
        except asyncio.CancelledError:
            TOLD.append(label)
            raise
        time.sleep(0.05)
    return "finished"


async def cx_slow_async(label: str) -> str:
    for _ in range(600):
        try:
            activity.heartbeat()
        except asyncio.CancelledError:
            TOLD.append(label)
            raise
        await asyncio.sleep(0.05)
    return "finished"


def cx_refund(booking: str) -> str:
    COMPENSATED.append(booking)
    return f"refunded {booking}"


acts = workflow.proxy_activities(activities=[cx_slow_sync, cx_slow_async, cx_refund],
                                 retry_policy={"maximum_attempts": 1})


async def cx_on_activity(label: str) -> str:
    if label == "sync":
        return await acts.cx_slow_sync(label)
    return await acts.cx_slow_async(label)


async def cx_on_timer() -> str:
    await workflow.sleep_for("1 hour")
    return "slept"


async def cx_on_wait() -> str:
    return await workflow.wait_for("cx-never")


async def cx_on_both() -> list[object]:
    return await asyncio.gather(workflow.sleep_for("1 hour"), workflow.wait_for("cx-never-2"))


async def cx_child_waits() -> str:
    return await workflow.wait_for("cx-child-never")


async def cx_on_child() -> str:
    return await workflow.exec_child(args=[], workflow_name="cx_child_waits",
                                     workflow_id="cx-child")


async def cx_compensates(booking: str) -> str:
    try:
        await workflow.sleep_for("1 hour")
        return "kept"
    except asyncio.CancelledError:
        # durable calls go on after a caught cancellation
        refunded = await acts.cx_refund(booking)
        await workflow.sleep_for(0.01)
        return refunded


ALL = [cx_on_activity, cx_on_timer, cx_on_wait, cx_on_both, cx_child_waits, cx_on_child,
       cx_compensates]


async def _status(handle) -> str:
    return (await handle.describe()).status


async def _blocked(handle, kind: str) -> None:
    """Wait until the run has a pending step of ``kind``."""
    async def check() -> bool:
        rows = await sql(f'SELECT 1 FROM "{handle.namespace}".steps '
                         "WHERE run_id = %s AND kind = %s AND status = 'pending'",
                         handle.run_id, kind)
        return bool(rows)
    await eventually(check, timeout=20)


async def _assert_cancelled(handle) -> None:
    with pytest.raises(MemFlowCancelledError) as err:
        await handle.result(timeout=30)
    assert err.value.code == 499
    assert await _status(handle) == "cancelled"


@pytest.fixture
async def worker(dsn, namespace):
    TOLD.clear()
    COMPENSATED.clear()
    return await Worker.create(connection=dsn, namespace=namespace, task_queue="cx",
                               workflow=ALL)


@pytest.mark.parametrize("label", ["sync", "async"])
async def test_cancel_reaches_an_activity_and_tells_it(worker, client, label):
    handle = await client.workflow.start(args=[label], task_queue="cx",
                                         workflow_name="cx_on_activity")
    await _blocked(handle, "activity")
    await eventually(lambda: _running_activity(handle), timeout=20)
    await handle.cancel("stop it")
    await _assert_cancelled(handle)
    # the activity was told through heartbeat(), long before its 30 s
    await eventually(lambda: _told(label), timeout=10)
    err = (await handle.describe()).error
    assert err["message"] == "stop it" and err["code"] == 499


async def _running_activity(handle) -> bool:
    rows = await sql(f'SELECT 1 FROM "{handle.namespace}".tasks '
                     "WHERE run_id = %s AND kind = 'a' AND lease_owner IS NOT NULL",
                     handle.run_id)
    return bool(rows)


async def _told(label: str) -> bool:
    return label in TOLD


async def test_cancel_reaches_a_timer(worker, client):
    handle = await client.workflow.start(args=[], task_queue="cx", workflow_name="cx_on_timer")
    await _blocked(handle, "sleep")
    await handle.cancel()
    await _assert_cancelled(handle)
    # the timer's task is gone
    assert await sql(f'SELECT count(*) FROM "{handle.namespace}".tasks') == [(0,)]


async def test_cancel_reaches_a_wait_for(worker, client):
    handle = await client.workflow.start(args=[], task_queue="cx", workflow_name="cx_on_wait")
    await _blocked(handle, "wait")
    await handle.cancel()
    await _assert_cancelled(handle)
    # a later signal is not taken by the cancelled wait: it is kept
    await client.workflow.signal("cx-never", {"late": True})
    assert await sql(f'SELECT count(*) FROM "{handle.namespace}".signals') == [(1,)]


async def test_cancel_reaches_every_branch(worker, client):
    handle = await client.workflow.start(args=[], task_queue="cx", workflow_name="cx_on_both")
    await _blocked(handle, "wait")
    await handle.cancel()
    await _assert_cancelled(handle)


async def test_cancel_reaches_a_child(worker, client):
    handle = await client.workflow.start(args=[], task_queue="cx", workflow_name="cx_on_child")
    await _blocked(handle, "exec_child")
    child = client.workflow.get_handle("cx", "cx_child_waits", "cx-child")
    await _blocked_child(child)
    await handle.cancel()
    await _assert_cancelled(handle)
    await _assert_cancelled(child)


async def _blocked_child(child) -> None:
    async def check() -> bool:
        try:
            await child.describe()
        except WorkflowNotFoundError:
            return False
        return True
    await eventually(check, timeout=20)
    await _blocked(child, "wait")


async def test_catch_and_compensate_then_complete(worker, client):
    handle = await client.workflow.start(args=["B-1"], task_queue="cx",
                                         workflow_name="cx_compensates")
    await _blocked(handle, "sleep")
    await handle.cancel()
    await handle.cancel()  # twice is once
    assert await handle.result(timeout=30) == "refunded B-1"
    assert await _status(handle) == "completed"
    assert COMPENSATED == ["B-1"]
    await handle.cancel()  # a finished run: nothing happens
    assert await _status(handle) == "completed"
    assert await handle.result() == "refunded B-1"
    steps = await sql(f'SELECT idx, kind, status FROM "{handle.namespace}".steps '
                      "WHERE run_id = %s ORDER BY idx", handle.run_id)
    assert steps[0] == (-1, "cancel", "done")
    assert [s[1] for s in steps[1:]] == ["sleep", "activity", "sleep"]
    assert steps[1][2] == "failed"


async def test_replay_after_cancel_is_deterministic(dsn, namespace, client):
    """A worker without the cached thread replays the cancellation at its recorded place."""
    COMPENSATED.clear()
    first = await Worker.create(connection=dsn, namespace=namespace, task_queue="cx",
                                workflow=ALL)
    handle = await client.workflow.start(args=["B-2"], task_queue="cx",
                                         workflow_name="cx_compensates")
    await _blocked(handle, "sleep")
    await first.stop()
    await handle.cancel("late")
    await Worker.create(connection=dsn, namespace=namespace, task_queue="cx", workflow=ALL)
    assert await handle.result(timeout=30) == "refunded B-2"


async def test_cancel_unknown_and_terminate(worker, client):
    with pytest.raises(WorkflowNotFoundError):
        await client.workflow.get_handle("cx", "cx_on_timer", "nope").cancel()
    handle = await client.workflow.start(args=[], task_queue="cx", workflow_name="cx_on_timer")
    await _blocked(handle, "sleep")
    await handle.terminate("enough")
    with pytest.raises(MemFlowInterruptedError) as err:
        await handle.result(timeout=30)
    assert err.value.code == 410 and "enough" in str(err.value)
    assert await _status(handle) == "interrupted"
    await handle.cancel()  # finished: nothing
    assert await _status(handle) == "interrupted"
    with pytest.raises(TypeError):
        await handle.cancel(reason=42)


async def test_cancel_reaches_a_worker_process(dsn, namespace, client, tmp_path):
    """The workflow is cached by another process, its activity runs there: the cancel
    reaches both through Postgres (the activity told by NOTIFY, the thread by its marker)."""
    procs: list[subprocess.Popen[str]] = []
    try:
        await spawn_ready("tests.cancel_worker", dsn, namespace, str(tmp_path), procs=procs)
        handle = await client.workflow.start(args=["B-9"], task_queue="cxp",
                                             workflow_name="cxp_book")
        await _blocked(handle, "activity")
        await eventually(lambda: _running_activity(handle), timeout=20)
        await handle.cancel()
        await handle.cancel()
        assert await handle.result(timeout=30) == "refunded B-9"
        told = tmp_path / "told"  # the abandoned activity hears of it at its next heartbeat,
        await eventually(lambda: _exists(told), timeout=10)  # maybe after the refund ran
        assert told.read_text() == "B-9"
        assert (tmp_path / "refunded").read_text() == "B-9\n"
    finally:
        for proc in procs:
            kill(proc)


async def cx_main_waits() -> str:
    try:
        return await workflow.wait_for("cx-main-never")
    except asyncio.CancelledError:
        await workflow.sleep_for(0.2)   # gives the hook time to finish its own clean-up
        raise


async def cx_hook_waits() -> str:
    try:
        return await workflow.wait_for("cx-hook-never")
    except asyncio.CancelledError:
        return "hook cleaned up"


async def test_cancel_reaches_hook_threads(dsn, namespace, client):
    await Worker.create(connection=dsn, namespace=namespace, task_queue="cxh",
                        workflow=[cx_main_waits, cx_hook_waits])
    handle = await client.workflow.start(args=[], task_queue="cxh",
                                         workflow_name="cx_main_waits")
    await _blocked(handle, "wait")
    dim = await client.workflow.hook(workflow_id=handle.workflow_id, task_queue="cxh",
                                     workflow_name="cx_hook_waits", namespace=namespace)

    async def hook_waits() -> bool:
        rows = await sql(f'SELECT 1 FROM "{namespace}".steps WHERE run_id = %s AND dim = %s '
                         "AND kind = 'wait' AND status = 'pending'", handle.run_id, dim)
        return bool(rows)
    await eventually(hook_waits, timeout=20)
    await handle.cancel()
    await _assert_cancelled(handle)
    rows = await sql(f'SELECT status, result FROM "{namespace}".threads WHERE dim = %s', dim)
    assert rows == [("completed", "hook cleaned up")]


async def test_cancel_before_any_worker_ran_it(dsn, namespace, client):
    handle = await client.workflow.start(args=["B-3"], task_queue="cx",
                                         workflow_name="cx_compensates")
    await handle.cancel()
    COMPENSATED.clear()
    await Worker.create(connection=dsn, namespace=namespace, task_queue="cx", workflow=ALL)
    assert await handle.result(timeout=30) == "refunded B-3"


async def test_cancel_racing_the_first_passes(worker, client):
    """Cancels sent while the first pass runs (or before it is claimed) are never lost."""
    handles = []
    for _ in range(20):
        handles.append(await client.workflow.start(args=[], task_queue="cx",
                                                   workflow_name="cx_on_timer"))
        await handles[-1].cancel()
    for handle in handles:
        await _assert_cancelled(handle)


async def test_cancel_a_pending_run_ends_it(client, namespace):
    handle = await client.workflow.start(args=[], task_queue="cx", workflow_name="cx_on_timer",
                                         pending=60, run_timeout=120)
    await handle.cancel("never mind")
    await _assert_cancelled(handle)
    assert await sql(f'SELECT count(*) FROM "{namespace}".tasks') == [(0,)]


async def _exists(path: Path) -> bool:
    return path.exists()
