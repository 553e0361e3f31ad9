"""exec_child/start_child with the id of a live workflow raise DuplicateJobError at the call."""

from __future__ import annotations

import pytest

from memflow import Worker, workflow
from memflow.errors import DuplicateJobError, MemFlowError


async def hc_sleeper() -> str:
    await workflow.sleep_for(30)
    return "slept"


async def hc_self_child(kind: str) -> str:
    me = workflow.get_context().workflow_id
    call = workflow.exec_child if kind == "exec" else workflow.start_child
    try:
        await call(args=[], workflow_name="hc_sleeper", workflow_id=me)
    except DuplicateJobError as err:
        return f"caught: {err.message}"
    return "no error"


async def hc_other_child(kind: str, other: str) -> str:
    call = workflow.exec_child if kind == "exec" else workflow.start_child
    try:
        await call(args=[], workflow_name="hc_sleeper", workflow_id=other)
    except DuplicateJobError as err:
        caught = err.message
    else:
        caught = "no error"
    await workflow.sleep_for(0.01)  # go on with durable calls after catching
    return f"caught: {caught}"


async def hc_uncaught(other: str) -> str:
    await workflow.exec_child(args=[], workflow_name="hc_sleeper", workflow_id=other)
    return "no error"


WFS = [hc_sleeper, hc_self_child, hc_other_child, hc_uncaught]


@pytest.mark.parametrize("cache_size", [512, 0])
@pytest.mark.parametrize("kind", ["exec", "start"])
async def test_child_with_own_id_raises_duplicate(client, dsn, namespace, cache_size, kind):
    await Worker.create(connection=dsn, namespace=namespace, task_queue="hc", workflow=WFS,
                        options={"cache_size": cache_size})
    h = await client.workflow.start(args=[kind], task_queue="hc",
                                    workflow_name="hc_self_child", workflow_id=f"self-{kind}")
    assert await h.result(timeout=30) == f"caught: Duplicate job: self-{kind}"


@pytest.mark.parametrize("cache_size", [512, 0])
@pytest.mark.parametrize("kind", ["exec", "start"])
async def test_child_with_live_id_raises_duplicate(client, dsn, namespace, cache_size, kind):
    await Worker.create(connection=dsn, namespace=namespace, task_queue="hc", workflow=WFS,
                        options={"cache_size": cache_size})
    await client.workflow.start(args=[], task_queue="hc", workflow_name="hc_sleeper",
                                workflow_id="busy")
    h = await client.workflow.start(args=[kind, "busy"], task_queue="hc",
                                    workflow_name="hc_other_child")
    assert await h.result(timeout=30) == "caught: Duplicate job: busy"


@pytest.mark.parametrize("cache_size", [512, 0])
async def test_uncaught_duplicate_fails_the_parent(client, dsn, namespace, cache_size):
    await Worker.create(connection=dsn, namespace=namespace, task_queue="hc", workflow=WFS,
                        options={"cache_size": cache_size})
    await client.workflow.start(args=[], task_queue="hc", workflow_name="hc_sleeper",
                                workflow_id="busy2")
    h = await client.workflow.start(args=["busy2"], task_queue="hc", workflow_name="hc_uncaught")
    with pytest.raises(MemFlowError, match="Duplicate job: busy2"):
        await h.result(timeout=30)
    assert (await h.describe()).status == "failed"
