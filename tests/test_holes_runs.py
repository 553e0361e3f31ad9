"""Handles are bound to runs: a reused id makes a new run, old handles still read the old one;
and the seed behaviours of result(state=True), export()["data"] and interrupt(throw=False)."""

from __future__ import annotations

import pytest

from memflow import Worker, workflow
from memflow.errors import MemFlowInterruptedError, WorkflowNotFoundError
from memflow.store import NamespaceStore, Store
from tests.support import sql


async def hr_echo(value: str) -> str:
    await workflow.sleep_for(0.01)
    return f"echo {value}"


async def hr_wait() -> str:
    return await workflow.wait_for("hr-never")


async def test_old_handles_read_their_own_run(client, dsn, namespace):
    await Worker.create(connection=dsn, namespace=namespace, task_queue="hr",
                        workflow=[hr_echo, hr_wait])
    first = await client.workflow.start(args=["one"], task_queue="hr", workflow_name="hr_echo",
                                        workflow_id="again", expire=0)
    assert first.run_id
    assert await first.result(timeout=30) == "echo one"
    second = await client.workflow.start(args=["two"], task_queue="hr",
                                         workflow_name="hr_echo", workflow_id="again", expire=0)
    assert second.run_id != first.run_id
    assert await second.result(timeout=30) == "echo two"
    # the first handle still reads the first run
    assert await first.result() == "echo one"
    assert (await first.describe()).run_id == first.run_id
    exported = await first.export()
    assert exported["run"]["args"] == ["one"] and exported["run"]["run_id"] == first.run_id
    assert [s["kind"] for s in exported["timeline"]] == ["sleep"]
    assert (await first.state())["response"] == "echo one"
    # get_handle: latest run by default, or the given one
    latest = client.workflow.get_handle("hr", "hr_echo", "again")
    assert await latest.result() == "echo two" and latest.run_id == second.run_id
    old = client.workflow.get_handle("hr", "hr_echo", "again", run_id=first.run_id)
    assert await old.result() == "echo one"
    assert (await old.export())["run"]["args"] == ["one"]
    nope = client.workflow.get_handle("hr", "hr_echo", "again", run_id="no-such-run")
    with pytest.raises(WorkflowNotFoundError):
        await nope.result()
    # a bound handle to an old run never interrupts the new one
    third = await client.workflow.start(args=[], task_queue="hr", workflow_name="hr_wait",
                                        workflow_id="again", expire=0)
    await first.interrupt()
    assert (await third.describe()).status == "running"
    await third.interrupt()
    assert (await third.describe()).status == "interrupted"
    # prune removes archived runs too, with their steps
    ns = await NamespaceStore.open(await Store.get(dsn), namespace)
    counted = await ns.admin.count_prunable(0.0)
    assert counted["workflows"] == 3 and counted["orphan_runs"] == 0
    got = await ns.admin.prune_batch(0.0, 100)
    assert got["workflows"] == 3 and got["steps"] == 3  # two sleeps and one wait
    assert await sql(f'SELECT count(*) FROM "{namespace}".runs') == [(0,)]
    assert await sql(f'SELECT count(*) FROM "{namespace}".steps') == [(0,)]


async def hr_fields() -> str:
    s = await workflow.search()
    await s.set({"stage": "done", "count": 3})
    return "ok"


async def test_seed_behaviours(client, dsn, namespace):
    await Worker.create(connection=dsn, namespace=namespace, task_queue="hr",
                        workflow=[hr_fields, hr_wait])
    h = await client.workflow.start(args=[], task_queue="hr", workflow_name="hr_fields",
                                    search={"data": {"origin": "seed"}})
    assert await h.result(timeout=30) == "ok"
    assert await h.result(state=True) == "ok"
    exported = await h.export()
    assert exported["data"] == {"origin": "seed", "stage": "done", "count": "3"}

    quiet = await client.workflow.start(args=[], task_queue="hr", workflow_name="hr_wait")
    await quiet.interrupt(throw=False)
    assert await quiet.result() is None
    assert await quiet.result(throw_on_error=False) is None
    assert await quiet.result(state=True) is None
    assert "$error" not in await quiet.state()
    assert (await quiet.describe()).status == "interrupted"

    loud = await client.workflow.start(args=[], task_queue="hr", workflow_name="hr_wait")
    await loud.interrupt()
    with pytest.raises(MemFlowInterruptedError):
        await loud.result()
    assert (await loud.state())["$error"]["code"] == 410
