"""Id policies of ``client.workflow.start``: decided by the database in one statement, so
racing starts of one id never both win."""

from __future__ import annotations

import asyncio

import pytest

from memflow import Client, Worker, workflow
from memflow.errors import DuplicateJobError, MemFlowInterruptedError
from tests.support import sql

RACERS = 50


async def ip_quick() -> str:
    return "done"


async def ip_fails() -> str:
    raise ValueError("boom")


async def _race(dsn: str, namespace: str, **options: object) -> list[object]:
    # several clients (each start is its own statement on a pooled connection), all at once
    clients = [Client(connection=dsn, namespace=namespace) for _ in range(5)]

    async def one(n: int) -> object:
        try:
            return await clients[n % 5].workflow.start(
                args=[], task_queue="ip", workflow_name="ip_quick", workflow_id="raced",
                **options)
        except DuplicateJobError as exc:
            return exc

    return list(await asyncio.gather(*(one(n) for n in range(RACERS))))


async def test_fail_racing_starts_one_wins(dsn, namespace):
    outcomes = await _race(dsn, namespace)
    won = [o for o in outcomes if not isinstance(o, DuplicateJobError)]
    assert len(won) == 1
    assert sum(isinstance(o, DuplicateJobError) for o in outcomes) == RACERS - 1
    rows = await sql(f'SELECT run_id FROM "{namespace}".workflows')
    assert [r[0] for r in rows] == [won[0].run_id]


async def test_use_existing_racing_starts_share_one_run(dsn, namespace):
    outcomes = await _race(dsn, namespace, id_conflict_policy="use_existing")
    assert not [o for o in outcomes if isinstance(o, DuplicateJobError)]
    run_ids = {o.run_id for o in outcomes}
    assert len(run_ids) == 1
    assert await sql(f'SELECT count(*) FROM "{namespace}".workflows') == [(1,)]
    assert await sql(f'SELECT count(*) FROM "{namespace}".runs') == [(0,)]
    # one first pass, not fifty
    assert await sql(f'SELECT count(*) FROM "{namespace}".tasks') == [(1,)]


async def test_terminate_existing_racing_starts_each_replace_the_last(dsn, namespace, client):
    outcomes = await _race(dsn, namespace, id_conflict_policy="terminate_existing")
    assert not [o for o in outcomes if isinstance(o, DuplicateJobError)]
    assert len({o.run_id for o in outcomes}) == RACERS
    live = await sql(f'SELECT run_id, status FROM "{namespace}".workflows')
    assert len(live) == 1 and live[0][1] == "running"
    archived = await sql(f'SELECT status, count(*) FROM "{namespace}".runs GROUP BY status')
    assert archived == [("interrupted", RACERS - 1)]
    # only the live run keeps a task
    assert await sql(f'SELECT DISTINCT run_id FROM "{namespace}".tasks') == [(live[0][0],)]
    old = next(o for o in outcomes if o.run_id != live[0][0])
    with pytest.raises(MemFlowInterruptedError):
        await old.result(timeout=10)
    assert (await old.describe()).status == "interrupted"


async def test_terminate_existing_runs_the_new_run(dsn, namespace, client):
    await Worker.create(connection=dsn, namespace=namespace, task_queue="ip",
                        workflow=[ip_quick, ip_waits])
    first = await client.workflow.start(args=[], task_queue="ip", workflow_name="ip_waits",
                                        workflow_id="take-over")
    second = await client.workflow.start(args=[], task_queue="ip", workflow_name="ip_quick",
                                         workflow_id="take-over",
                                         id_conflict_policy="terminate_existing")
    assert await second.result(timeout=30) == "done"
    with pytest.raises(MemFlowInterruptedError):
        await first.result(timeout=10)


async def ip_waits() -> str:
    return await workflow.wait_for("ip-never")


async def test_use_existing_returns_the_live_run(client):
    first = await client.workflow.start(args=[], task_queue="ip", workflow_name="ip_quick",
                                        workflow_id="same")
    again = await client.workflow.start(args=[], task_queue="ip", workflow_name="ip_quick",
                                        workflow_id="same", id_conflict_policy="use_existing")
    assert again.run_id == first.run_id
    with pytest.raises(DuplicateJobError):
        await client.workflow.start(args=[], task_queue="ip", workflow_name="ip_quick",
                                    workflow_id="same")


async def _finished(client: Client, workflow_id: str, name: str) -> None:
    handle = await client.workflow.start(args=[], task_queue="ip", workflow_name=name,
                                         workflow_id=workflow_id, expire=0)
    await handle.result(timeout=30, throw_on_error=False)


async def test_reuse_policies(dsn, namespace, client):
    await Worker.create(connection=dsn, namespace=namespace, task_queue="ip",
                        workflow=[ip_quick, ip_fails])

    async def start(wf_id: str, policy: str) -> object:
        return await client.workflow.start(args=[], task_queue="ip", workflow_name="ip_quick",
                                           workflow_id=wf_id, expire=0,
                                           id_reuse_policy=policy)

    await _finished(client, "ok", "ip_quick")
    await _finished(client, "bad", "ip_fails")
    # reject_duplicate: no finished run's id is taken again
    for wf_id in ("ok", "bad"):
        with pytest.raises(DuplicateJobError):
            await start(wf_id, "reject_duplicate")
    # allow_duplicate_failed_only: after a failure only
    with pytest.raises(DuplicateJobError):
        await start("ok", "allow_duplicate_failed_only")
    again = await start("bad", "allow_duplicate_failed_only")
    assert await again.result(timeout=30) == "done"
    # allow_duplicate (the default): any finished, expired run
    again = await start("ok", "allow_duplicate")
    assert await again.result(timeout=30) == "done"
    # an interrupted run counts as failed
    stopped = await client.workflow.start(args=[], task_queue="ip", workflow_name="ip_quick",
                                          workflow_id="stopped", pending=60)
    await stopped.interrupt(expire=0)
    assert (await start("stopped", "allow_duplicate_failed_only")).run_id != stopped.run_id


@pytest.mark.parametrize("policy", ["allow_duplicate", "allow_duplicate_failed_only",
                                    "reject_duplicate"])
async def test_racing_reuse_of_a_finished_id(dsn, namespace, client, policy):
    stopped = await client.workflow.start(args=[], task_queue="ip", workflow_name="ip_quick",
                                          workflow_id="raced", pending=60)
    await stopped.interrupt(expire=0)  # an interrupted run counts as failed
    outcomes = await _race(dsn, namespace, id_reuse_policy=policy)
    won = [o for o in outcomes if not isinstance(o, DuplicateJobError)]
    expected = 0 if policy == "reject_duplicate" else 1
    assert len(won) == expected
    assert await sql(f'SELECT count(*) FROM "{namespace}".runs') == [(expected,)]


async def test_bad_policies(client):
    with pytest.raises(ValueError, match="id_reuse_policy"):
        await client.workflow.start(args=[], task_queue="ip", workflow_name="ip_quick",
                                    id_reuse_policy="sometimes")
    with pytest.raises(ValueError, match="id_conflict_policy"):
        await client.workflow.start(args=[], task_queue="ip", workflow_name="ip_quick",
                                    id_conflict_policy="use-existing")
    with pytest.raises(TypeError):
        await client.workflow.start(args=[], task_queue="ip", workflow_name="ip_quick",
                                    id_conflict_policy=None)
    with pytest.raises(TypeError):
        await client.workflow.start(args=[], task_queue="ip", workflow_name="ip_quick",
                                    id_policy="fail")
