"""A CancelledError raised by workflow code fails the run clearly (never a silent stall)."""

from __future__ import annotations

import asyncio

import pytest

from memflow import Worker, workflow
from memflow.errors import MemFlowFatalError
from tests.support import sql


async def hx_raise() -> str:
    await workflow.sleep_for(0.01)
    raise asyncio.CancelledError


async def hx_inner() -> str:
    inner = asyncio.ensure_future(workflow.sleep_for(30))
    await workflow.sleep_for(0.01)
    inner.cancel()
    await inner
    return "not reached"


async def hx_caught() -> str:
    inner = asyncio.ensure_future(workflow.sleep_for(30))
    await asyncio.sleep(0)
    inner.cancel()
    try:
        await inner
    except asyncio.CancelledError:
        pass
    await workflow.sleep_for(0.01)
    return "went on"


@pytest.mark.parametrize("cache_size", [512, 0])
@pytest.mark.parametrize("name", ["hx_raise", "hx_inner"])
async def test_cancelled_error_fails_the_run(client, dsn, namespace, cache_size, name):
    await Worker.create(connection=dsn, namespace=namespace, task_queue="hx",
                        workflow=[hx_raise, hx_inner, hx_caught],
                        options={"cache_size": cache_size})
    h = await client.workflow.start(args=[], task_queue="hx", workflow_name=name)
    with pytest.raises(MemFlowFatalError, match="CancelledError"):
        await h.result(timeout=30)
    desc = await h.describe()
    assert desc.status == "failed"
    assert "CancelledError" in desc.error["message"]
    # nothing is left behind: no run 'running' without a task
    rows = await sql(f'SELECT count(*) FROM "{namespace}".tasks')
    assert rows[0][0] == 0


async def test_caught_cancellation_goes_on(client, dsn, namespace):
    await Worker.create(connection=dsn, namespace=namespace, task_queue="hx",
                        workflow=[hx_caught])
    h = await client.workflow.start(args=[], task_queue="hx", workflow_name="hx_caught")
    assert await h.result(timeout=30) == "went on"
