"""Workflow timeouts: ``execution_timeout`` and ``run_timeout`` on start() and exec_child(),
enforced by a deadline task in the database."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from memflow import Worker, workflow
from memflow.errors import MemFlowTimeoutError
from memflow.testing import WorkflowEnvironment
from tests.support import eventually, sql


async def wt_sleeps() -> str:
    await workflow.sleep_for("1 hour")
    return "slept"


async def wt_waits() -> str:
    return await workflow.wait_for("wt-never")


async def wt_quick() -> str:
    await workflow.sleep_for(0.01)
    return "quick"


async def wt_child_times_out() -> str:
    try:
        return await workflow.exec_child(args=[], workflow_name="wt_sleeps",
                                         workflow_id="wt-child-1", run_timeout=0.5)
    except MemFlowTimeoutError as err:
        return f"child: {err.code}"


async def wt_child_waits() -> str:
    try:
        return await workflow.wait_for("wt-child-never")
    except asyncio.CancelledError:
        await workflow.sleep_for(0.01)  # clean-up after the parent's timeout
        raise


async def wt_parent_times_out() -> str:
    return await workflow.exec_child(args=[], workflow_name="wt_child_waits",
                                     workflow_id="wt-child-2")


ALL = [wt_sleeps, wt_waits, wt_quick, wt_child_times_out, wt_child_waits, wt_parent_times_out]


@pytest.fixture
async def worker(dsn, namespace):
    return await Worker.create(connection=dsn, namespace=namespace, task_queue="wt",
                               workflow=ALL)


async def _timed_out(handle) -> None:
    with pytest.raises(MemFlowTimeoutError) as err:
        await handle.result(timeout=30)
    assert err.value.code == 596
    assert (await handle.describe()).status == "timed_out"


async def test_run_timeout_fails_a_sleeping_run(worker, client, namespace):
    handle = await client.workflow.start(args=[], task_queue="wt", workflow_name="wt_sleeps",
                                         run_timeout="1 second")
    await _timed_out(handle)
    assert "run_timeout" in (await handle.describe()).error["message"]
    # its timer is dropped with it
    assert await sql(f'SELECT count(*) FROM "{namespace}".tasks') == [(0,)]


async def test_execution_timeout_drops_a_wait(worker, client, namespace):
    handle = await client.workflow.start(args=[], task_queue="wt", workflow_name="wt_waits",
                                         execution_timeout=timedelta(seconds=1),
                                         run_timeout=60)
    await _timed_out(handle)
    assert "execution_timeout" in (await handle.describe()).error["message"]
    await client.workflow.signal("wt-never", 1)  # no one takes it: the wait went with its run
    assert await sql(f'SELECT count(*) FROM "{namespace}".signals') == [(1,)]


async def test_a_run_that_ends_in_time_drops_its_deadline(worker, client, namespace):
    handle = await client.workflow.start(args=[], task_queue="wt", workflow_name="wt_quick",
                                         run_timeout=60)
    assert await handle.result(timeout=30) == "quick"
    assert await sql(f'SELECT count(*) FROM "{namespace}".tasks') == [(0,)]


async def test_child_run_timeout_is_raised_in_the_parent(worker, client):
    handle = await client.workflow.start(args=[], task_queue="wt",
                                         workflow_name="wt_child_times_out")
    assert await handle.result(timeout=30) == "child: 596"
    child = client.workflow.get_handle("wt", "wt_sleeps", "wt-child-1")
    assert (await child.describe()).status == "timed_out"


async def test_parent_timeout_cancels_its_children(worker, client):
    handle = await client.workflow.start(args=[], task_queue="wt",
                                         workflow_name="wt_parent_times_out", run_timeout=1.5)
    await _timed_out(handle)
    child = client.workflow.get_handle("wt", "wt_child_waits", "wt-child-2")

    async def cancelled() -> bool:
        return (await child.describe()).status == "cancelled"
    await eventually(cancelled, timeout=20)


async def test_bad_timeouts(client):
    for bad in (-1, 0, "soon"):
        with pytest.raises(ValueError):
            await client.workflow.start(args=[], task_queue="wt", workflow_name="wt_quick",
                                        run_timeout=bad)
    with pytest.raises(TypeError):
        await client.workflow.start(args=[], task_queue="wt", workflow_name="wt_quick",
                                    execution_timeout=[1])


async def test_timeouts_follow_the_time_skipping_clock(dsn):
    async with await WorkflowEnvironment.start_time_skipping(connection=dsn) as env:
        await env.worker(task_queue="wt", workflow=ALL)
        handle = await env.client.workflow.start(args=[], task_queue="wt",
                                                 workflow_name="wt_sleeps",
                                                 execution_timeout="30 minutes")
        await _timed_out(handle)
