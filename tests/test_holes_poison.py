"""Poison work: a task whose handling keeps failing inside the engine is retried a bounded
number of times with backoff, then parked with its error shown by describe() and the CLI."""

from __future__ import annotations

import pytest

from memflow import Worker, workflow
from tests.support import eventually, sql
from tests.test_cli import cli


async def hp_known() -> str:
    await workflow.sleep_for(0.01)
    return "known"


async def hp_late() -> str:
    return "deployed at last"


FAST = {"max_task_failures": 4, "failure_backoff_seconds": 0.05}


async def test_unregistered_workflow_is_parked_and_shown(client, dsn, namespace):
    old = await Worker.create(connection=dsn, namespace=namespace, task_queue="hp",
                              workflow=[hp_known], options=FAST)
    h = await client.workflow.start(args=[], task_queue="hp", workflow_name="hp_late",
                                    workflow_id="poison-1")
    # the healthy workflow next to it is not held back
    ok = await client.workflow.start(args=[], task_queue="hp", workflow_name="hp_known")
    assert await ok.result(timeout=30) == "known"

    async def parked() -> list:
        return (await h.describe()).parked
    (task,) = await eventually(parked, timeout=60)
    assert task["kind"] == "w" and task["failures"] == 4 and task["queue"] == "hp"
    desc = await h.describe()
    assert desc.status == "running"
    assert "'hp_late' is not registered" in desc.error["message"]
    claimed = await sql(f'SELECT attempts, failures FROM "{namespace}".tasks')
    assert claimed == [(4, 4)]  # four claims, then never visible again

    r = await cli("show", "poison-1", "--namespace", namespace)
    assert r.code == 0, r.err
    assert "parked      pass task on hp (thread main) after 4 failures" in r.out
    assert "not registered" in r.out

    # once the workflow is deployed, unparking lets the run go on
    await old.stop()
    await Worker.create(connection=dsn, namespace=namespace, task_queue="hp",
                        workflow=[hp_known, hp_late], options=FAST)
    r = await cli("unpark", "poison-1", "--namespace", namespace)
    assert (r.code, r.out.strip()) == (0, "unparked 1 task of workflow poison-1"), r.err
    assert await h.result(timeout=30) == "deployed at last"
    assert (await h.describe()).parked == []


async def test_bad_failure_options(dsn, namespace):
    with pytest.raises(ValueError, match="max_task_failures"):
        await Worker.create(connection=dsn, namespace=namespace, task_queue="hp",
                            workflow=[hp_known], options={"max_task_failures": 0})
