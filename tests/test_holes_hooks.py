"""Hook threads end with their run: closed, their exec_hook callers told, the run prunable."""

from __future__ import annotations

import pytest

from memflow import Worker, workflow
from memflow.errors import MemFlowFatalError
from memflow.store import NamespaceStore, Store
from tests.support import eventually, sql


async def hk_target(mode: str) -> str:
    await workflow.wait_for(f"go-{workflow.get_context().workflow_id}")
    if mode == "fail":
        raise MemFlowFatalError("target gave up")
    return "target done"


async def hk_hook(tag: str) -> str:
    return await workflow.wait_for(f"hook-{tag}")


async def hk_caller(target: str, tag: str) -> str:
    try:
        return await workflow.exec_hook(task_queue="hk", workflow_name="hk_hook", args=[tag],
                                        workflow_id=target)
    except MemFlowFatalError as err:
        return f"caught: {err.message}"


WFS = [hk_target, hk_hook, hk_caller]


async def _hook_running(namespace: str, target: str) -> bool:
    rows = await sql(f'SELECT count(*) FROM "{namespace}".threads th '
                     f'JOIN "{namespace}".workflows w USING (run_id) '
                     "WHERE w.workflow_id = %s AND th.status = 'running'", target)
    return rows[0][0] == 1


@pytest.mark.parametrize("cache_size", [512, 0])
@pytest.mark.parametrize("ending", ["complete", "fail", "interrupt"])
async def test_hooks_end_with_their_run(client, dsn, namespace, ending, cache_size):
    await Worker.create(connection=dsn, namespace=namespace, task_queue="hk", workflow=WFS,
                        options={"cache_size": cache_size})
    target = await client.workflow.start(args=["fail" if ending == "fail" else "ok"],
                                         task_queue="hk", workflow_name="hk_target",
                                         workflow_id=f"tgt-{ending}")
    caller = await client.workflow.start(args=[target.workflow_id, ending], task_queue="hk",
                                         workflow_name="hk_caller")
    await eventually(lambda: _hook_running(namespace, target.workflow_id), timeout=30)
    if ending == "interrupt":
        await target.interrupt()
    else:
        await client.workflow.signal(f"go-{target.workflow_id}", None)
    out = await caller.result(timeout=30)
    assert out.startswith("caught: hook hk_hook of workflow tgt-") and "ended with its run" in out
    rows = await sql(f'SELECT status FROM "{namespace}".threads')
    assert rows == [("failed",)]
    # the ended run (and the caller) can be pruned: no running thread holds them back
    ns = await NamespaceStore.open(await Store.get(dsn), namespace)
    got = await ns.admin.prune_batch(0.0, 100)
    assert got["workflows"] == 2 and got["threads"] == 1


async def test_signal_in_true_keeps_hooks_after_completion(client, dsn, namespace):
    await Worker.create(connection=dsn, namespace=namespace, task_queue="hk", workflow=WFS)
    target = await client.workflow.start(args=["ok"], task_queue="hk", workflow_name="hk_target",
                                         workflow_id="tgt-open", signal_in=True)
    caller = await client.workflow.start(args=["tgt-open", "open"], task_queue="hk",
                                         workflow_name="hk_caller")
    await eventually(lambda: _hook_running(namespace, "tgt-open"), timeout=30)
    await client.workflow.signal("go-tgt-open", None)
    assert await target.result(timeout=30) == "target done"
    assert await _hook_running(namespace, "tgt-open")
    await client.workflow.signal("hook-open", "late answer")
    assert await caller.result(timeout=30) == "late answer"


async def test_reusing_an_open_id_ends_its_hooks(client, dsn, namespace):
    await Worker.create(connection=dsn, namespace=namespace, task_queue="hk", workflow=WFS)
    target = await client.workflow.start(args=["ok"], task_queue="hk", workflow_name="hk_target",
                                         workflow_id="tgt-reused", signal_in=True, expire=0)
    caller = await client.workflow.start(args=["tgt-reused", "reused"], task_queue="hk",
                                         workflow_name="hk_caller")
    await eventually(lambda: _hook_running(namespace, "tgt-reused"), timeout=30)
    await client.workflow.signal("go-tgt-reused", None)
    assert await target.result(timeout=30) == "target done"
    again = await client.workflow.start(args=["ok"], task_queue="hk",
                                        workflow_name="hk_target", workflow_id="tgt-reused")
    out = await caller.result(timeout=30)
    assert out == "caught: hook hk_hook ended: its workflow id tgt-reused was reused by a new run"
    assert await target.result() == "target done" and again.run_id != target.run_id
