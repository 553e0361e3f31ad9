"""Durable timers and durable signals."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import pytest

from memflow import Client, MemFlow, Worker, workflow
from memflow.errors import MemFlowMaxedError, MemFlowTimeoutError
from memflow.testing import WorkflowEnvironment
from tests.support import eventually, sql


async def sleeper(duration) -> dict:
    started = time.time()
    slept = await workflow.sleep_for(duration)
    return {"slept": slept, "took": time.time() - started}


async def test_sleep_for_forms_return_seconds(client: Client, dsn: str, namespace: str) -> None:
    await Worker.create(connection=dsn, task_queue="s", workflow=sleeper, namespace=namespace)
    cases = {"0.2 seconds": 0.2, "0.3s": 0.3, 0.25: 0.25}
    handles = {k: await client.workflow.start(args=[k], task_queue="s", workflow_name="sleeper")
               for k in cases}
    for key, h in handles.items():
        result = await h.result(timeout=10)
        assert result["slept"] == cases[key]
    from memflow.durations import parse_duration
    assert parse_duration("2 minutes") == 120
    assert parse_duration(timedelta(milliseconds=1500)) == 1.5
    assert parse_duration("1h") == 3600


async def test_bad_duration_is_a_clear_error_at_the_call(client: Client, dsn: str,
                                                         namespace: str) -> None:
    await Worker.create(connection=dsn, task_queue="s", workflow=sleeper, namespace=namespace)
    h = await client.workflow.start(args=["soon"], task_queue="s", workflow_name="sleeper")
    with pytest.raises(MemFlowMaxedError, match="sleep_for duration: cannot read 'soon'"):
        await h.result(timeout=10)


async def test_a_sleeping_workflow_is_only_a_row(memflow_env: WorkflowEnvironment) -> None:
    namespace = memflow_env.namespace
    with memflow_env.auto_time_skipping_disabled():
        worker = await memflow_env.worker(task_queue="s", workflow=sleeper)
        h = await memflow_env.client.workflow.start(args=["1 day"], task_queue="s",
                                                    workflow_name="sleeper")

        async def parked() -> bool:
            kinds = await sql(f'SELECT kind, lease_owner FROM "{namespace}".tasks')
            return kinds == [("t", None)]
        await eventually(parked)
        await worker.stop()  # the worker goes away while the workflow sleeps
        assert len(worker.cache) == 0
        await memflow_env.worker(task_queue="s", workflow=sleeper)
    result = await h.result(timeout=10)  # the day is skipped now
    assert result["slept"] == 86400
    (step,) = (await h.export())["timeline"]
    assert step["kind"] == "sleep" and step["duration_ms"] >= 86400 * 1000


async def waiter(signal_id: str, timeout) -> object:
    try:
        return await workflow.wait_for(signal_id, timeout=timeout)
    except MemFlowTimeoutError as err:
        return {"timed_out": err.code}


async def test_signal_sent_before_the_wait_is_kept(client: Client, dsn: str,
                                                   namespace: str) -> None:
    await client.workflow.signal("early", {"v": 1})
    await Worker.create(connection=dsn, task_queue="w", workflow=waiter, namespace=namespace)
    h = await client.workflow.start(args=["early", None], task_queue="w", workflow_name="waiter")
    assert await h.result(timeout=10) == {"v": 1}
    # consumed: a second waiter does not get it again
    h2 = await client.workflow.start(args=["early", 0.3], task_queue="w", workflow_name="waiter")
    assert await h2.result(timeout=10) == {"timed_out": 596}


async def test_signal_after_the_wait_and_two_handles(client: Client, dsn: str,
                                                     namespace: str) -> None:
    await Worker.create(connection=dsn, task_queue="w", workflow=waiter, namespace=namespace)
    h = await client.workflow.start(args=["late", None], task_queue="w", workflow_name="waiter",
                                    workflow_id="w1")
    other = client.workflow.get_handle("w", "waiter", "w1")
    both = asyncio.gather(h.result(timeout=10), other.result(timeout=10))
    await eventually(lambda: _waiting(namespace, "late"))
    await h.signal("late", ["data"])
    assert await both == [["data"], ["data"]]
    assert await sql(f'SELECT count(*) FROM "{namespace}".signals') == [(0,)]


async def twice(signal_id: str) -> list:
    first = await workflow.wait_for(signal_id)
    second = await workflow.wait_for(signal_id)
    return [first, second]


async def test_one_signal_is_never_delivered_twice(client: Client, dsn: str,
                                                   namespace: str) -> None:
    await Worker.create(connection=dsn, task_queue="w", workflow=twice, namespace=namespace,
                        options={"cache_size": 0})
    h = await client.workflow.start(args=["s"], task_queue="w", workflow_name="twice")
    await eventually(lambda: _waiting(namespace, "s"))
    await client.workflow.signal("s", 1)
    with pytest.raises(TimeoutError):
        await h.result(timeout=0.5)
    await client.workflow.signal("s", 2)
    assert await h.result(timeout=10) == [1, 2]


async def test_wait_timeout_raises_in_the_workflow(client: Client, dsn: str,
                                                   namespace: str) -> None:
    await Worker.create(connection=dsn, task_queue="w", workflow=waiter, namespace=namespace)
    h = await client.workflow.start(args=["never", "0.3s"], task_queue="w",
                                    workflow_name="waiter")
    assert await h.result(timeout=10) == {"timed_out": 596}


async def signaller(target: str, data: object) -> str:
    await workflow.signal(target, data)
    return "sent"


async def test_workflow_signal_wakes_another_workflow(client: Client, dsn: str,
                                                      namespace: str) -> None:
    await Worker.create(connection=dsn, task_queue="w", workflow=[waiter, signaller],
                        namespace=namespace, options={"cache_size": 0})
    h = await client.workflow.start(args=["x", None], task_queue="w", workflow_name="waiter")
    await eventually(lambda: _waiting(namespace, "x"))
    s = await client.workflow.start(args=["x", {"from": "wf"}], task_queue="w",
                                    workflow_name="signaller")
    assert await s.result(timeout=10) == "sent"
    assert await h.result(timeout=10) == {"from": "wf"}


async def test_signals_survive_a_worker_restart(client: Client, dsn: str,
                                                namespace: str) -> None:
    await Worker.create(connection=dsn, task_queue="w", workflow=waiter, namespace=namespace)
    h = await client.workflow.start(args=["r", None], task_queue="w", workflow_name="waiter")
    await eventually(lambda: _waiting(namespace, "r"))
    await MemFlow.shutdown()
    await client.workflow.signal("r", "while nobody runs")
    await Worker.create(connection=dsn, task_queue="w", workflow=waiter, namespace=namespace)
    assert await h.result(timeout=10) == "while nobody runs"


async def _waiting(namespace: str, signal_id: str) -> bool:
    rows = await sql(f'SELECT 1 FROM "{namespace}".steps WHERE kind = %s AND name = %s '
                     "AND status = 'pending'", "wait", signal_id)
    return bool(rows)


async def test_a_finished_waiter_does_not_swallow_signals(client: Client, dsn: str,
                                                          namespace: str) -> None:
    await Worker.create(connection=dsn, task_queue="w", workflow=waiter, namespace=namespace)
    dead = await client.workflow.start(args=["shared", None], task_queue="w",
                                       workflow_name="waiter")
    await eventually(lambda: _waiting(namespace, "shared"))
    await dead.interrupt(throw=False)
    await client.workflow.signal("shared", "for the living")
    alive = await client.workflow.start(args=["shared", None], task_queue="w",
                                        workflow_name="waiter")
    assert await alive.result(timeout=10) == "for the living"
