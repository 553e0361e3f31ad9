"""Fencing, step by step against the store: a commit under a lapsed or taken-over lease, or from
a thread copy that another worker advanced, is refused by the database and changes nothing."""

from __future__ import annotations

import asyncio

from memflow import Client, Worker, workflow
from memflow.commands import Emit
from memflow.store import NamespaceStore, Thread
from memflow.store.passes import Lease
from tests.support import eventually, sql


async def _idle_run(client: Client, namespace: str) -> tuple[NamespaceStore, Thread]:
    handle = await client.workflow.start(args=[], task_queue="idle", workflow_name="idle")
    ns = await client._namespace(namespace)
    return ns, Thread(handle.workflow_id, handle.run_id or "", "", "idle")


def _emit(idx: int) -> Emit:
    return Emit(idx, "topic", '{"topic": 1}')


async def _steps(ns: str, run_id: str) -> int:
    return int((await sql(f'SELECT count(*) FROM "{ns}".steps WHERE run_id = %s',
                          run_id))[0][0])


async def test_a_pass_commit_under_a_lapsed_lease_changes_nothing(client: Client,
                                                                  namespace: str) -> None:
    ns, thread = await _idle_run(client, namespace)
    [a] = await ns.tasks.claim(["idle"], "worker-a", 0.2, 1)
    await asyncio.sleep(0.4)
    lapsed = await ns.passes.commit_pass(thread, [_emit(0)], [], lease=Lease(a.id, "worker-a", 1),
                                  version=0, finalize=a.wake)
    assert lapsed.refused == "lease lost"  # lapsed, even before anyone took it over
    [b] = await ns.tasks.claim(["idle"], "worker-b", 30.0, 1)
    assert b.id == a.id and b.attempts == 2
    late = await ns.passes.commit_pass(thread, [_emit(0)], [], lease=Lease(a.id, "worker-a", 1),
                                version=0, finalize=a.wake)
    assert late.refused == "lease lost"
    await ns.tasks.delete_task(a, "worker-a")  # a stale owner cannot drop the task either
    assert await _steps(namespace, thread.run_id) == 0
    assert await sql(f'SELECT lease_owner FROM "{namespace}".tasks WHERE id = %s', a.id) == [
        ("worker-b",)]
    done = await ns.passes.commit_pass(thread, [_emit(0)], [], lease=Lease(b.id, "worker-b", 2),
                                version=0)
    assert done.refused is None and done.version == 1
    assert await _steps(namespace, thread.run_id) == 1


async def test_a_commit_from_a_stale_copy_is_refused(client: Client, namespace: str) -> None:
    ns, thread = await _idle_run(client, namespace)
    [task] = await ns.tasks.claim(["idle"], "w", 30.0, 1)
    lease = Lease(task.id, "w", task.attempts)
    first = await ns.passes.commit_pass(thread, [_emit(0)], [], lease=lease, version=0)
    assert first.version == 1
    stale = await ns.passes.commit_pass(thread, [_emit(1)], [], lease=lease, version=0)
    assert stale.refused == "stale"
    assert await _steps(namespace, thread.run_id) == 1
    version, _, _ = await ns.passes.load_steps(thread.run_id, "", [], 0)
    assert version == 1


async def lonely(n: int) -> str:
    nobody = workflow.proxy_activities(task_queue="nobody")
    return str(await nobody.work(n))


async def test_a_step_result_under_a_lost_lease_is_ignored(client: Client, dsn: str,
                                                           namespace: str) -> None:
    await Worker.create(connection=dsn, task_queue="fq", workflow=lonely, namespace=namespace)
    handle = await client.workflow.start(args=[1], task_queue="fq", workflow_name="lonely")
    ns = await client._namespace(namespace)
    claimed: list = []

    async def claim_activity() -> bool:
        claimed[:] = await ns.tasks.claim(["nobody-activity"], "act-a", 0.2, 1)
        return bool(claimed)

    await eventually(claim_activity)
    [a] = claimed
    await asyncio.sleep(0.4)
    [b] = await ns.tasks.claim(["nobody-activity"], "act-b", 30.0, 1)
    await ns.tasks.complete_steps([(a, "done", '"from a"', None, False)], "act-a", 30.0)
    rows = await sql(f'SELECT status FROM "{namespace}".steps WHERE run_id = %s',
                     handle.run_id)
    assert rows == [("pending",)]  # a's late result was not recorded
    assert await sql(f'SELECT lease_owner FROM "{namespace}".tasks WHERE id = %s', b.id) == [
        ("act-b",)]  # nor did it delete the task b holds
    await ns.tasks.complete_steps([(b, "done", '"from b"', None, False)], "act-b", 30.0)
    assert await handle.result(timeout=20) == "from b"
