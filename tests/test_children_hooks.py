"""Child workflows, hooks, interrupts, events, and the seed suite's combinations."""

from __future__ import annotations

import asyncio

import pytest

from memflow import Client, Worker, workflow
from memflow.errors import (
    MemFlowError,
    MemFlowFatalError,
    MemFlowInterruptedError,
    MemFlowMaxedError,
)
from tests.support import eventually, sql


async def add(a: int, b: int) -> int:
    return a + b


async def slow(seconds: float) -> str:
    await asyncio.sleep(seconds)
    return "slow done"


ACTS = workflow.proxy_activities(activities=[add, slow])


async def child(x: int) -> int:
    if x < 0:
        raise MemFlowFatalError(f"negative: {x}")
    return await ACTS.add(x, 100)


async def parent(x: int) -> dict:
    result = await workflow.exec_child(args=[x], workflow_name="child", workflow_id=f"c-{x}")
    started = await workflow.start_child(args=[x + 1], workflow_name=child)
    both = await asyncio.gather(
        workflow.start_child(args=[1], workflow_name="child", workflow_id=f"g-{x}"),
        workflow.exec_child(args=[2], workflow_name="child"))
    return {"result": result, "started": started, "both": both}


async def failing_parent(x: int) -> str:
    try:
        await workflow.exec_child(args=[x], workflow_name="child", workflow_id="bad-child")
    except MemFlowFatalError as err:
        return f"caught {type(err).__name__}: {err.message}"
    return "no error"


async def duplicate_parent() -> str:
    await workflow.start_child(args=[1], workflow_name="slow_child", workflow_id="dupe")
    try:
        await workflow.start_child(args=[1], workflow_name="slow_child", workflow_id="dupe")
    except MemFlowError as err:
        return str(err)
    return "no error"


async def slow_child(x: int) -> str:
    return await workflow.wait_for("never")


WORKFLOWS = [child, parent, failing_parent, duplicate_parent, slow_child]


@pytest.fixture
async def worker(dsn: str, namespace: str) -> Worker:
    return await Worker.create(connection=dsn, task_queue="k", workflow=WORKFLOWS,
                               namespace=namespace, options={"cache_size": 0})


async def test_exec_child_start_child_and_linkage(client: Client, worker: Worker,
                                                  namespace: str) -> None:
    h = await client.workflow.start(args=[5], task_queue="k", workflow_name="parent",
                                    workflow_id="p")
    result = await h.result(timeout=20)
    assert result["result"] == 105
    assert result["started"] == "p-child-1"
    assert result["both"] == ["g-5", 102]
    info = await h.describe()
    assert {c["workflow_id"] for c in info.children} == {"c-5", "p-child-1", "g-5", "p-child-3"}
    c = client.workflow.get_handle("k", "child", "c-5")
    assert (await c.describe()).parent_workflow_id == "p"
    assert await client.workflow.get_handle("k", "child", "p-child-1").result(timeout=10) == 106
    kinds = [s["kind"] for s in (await h.export())["timeline"]]
    assert kinds == ["exec_child", "start_child", "start_child", "exec_child"]


async def test_child_failure_is_raised_in_the_parent(client: Client, worker: Worker) -> None:
    h = await client.workflow.start(args=[-1], task_queue="k", workflow_name="failing_parent")
    assert await h.result(timeout=20) == "caught MemFlowFatalError: negative: -1"


async def test_duplicate_child_id(client: Client, worker: Worker) -> None:
    h = await client.workflow.start(args=[], task_queue="k", workflow_name="duplicate_parent")
    assert "Duplicate job: dupe" in await h.result(timeout=20)


# --- hooks ------------------------------------------------------------------------------

async def helper_hook(n: int, signal_id: str) -> int:
    total = await ACTS.add(n, 1)
    await workflow.sleep_for(0.05)
    await workflow.signal(signal_id, {"total": total})
    return total


async def main_with_hook(n: int) -> dict:
    ctx = workflow.get_context()
    sid = f"done-{ctx.workflow_id}"
    thread = await workflow.hook(workflow_name="helper_hook", args=[n, sid])
    from_signal = await workflow.wait_for(sid)
    direct = await workflow.exec_hook(workflow_name="helper_hook", args=[n * 2, sid + "-2"])
    batch = await workflow.exec_hook_batch([
        {"key": "a", "options": {"workflow_name": "helper_hook", "args": [1, sid + "-a"]}},
        {"key": "b", "options": {"workflow_name": "helper_hook", "args": [2, sid + "-b"]}},
    ])
    return {"thread": thread, "from_signal": from_signal, "direct": direct, "batch": batch}


async def failing_hook() -> None:
    raise MemFlowFatalError("hook broke")


async def main_with_failing_hook() -> str:
    try:
        await workflow.exec_hook(workflow_name="failing_hook", args=[])
    except MemFlowFatalError as err:
        return f"propagated: {err.message}"
    return "swallowed"


async def self_hook() -> None:
    await workflow.hook(workflow_name="self_hook", args=[])


async def open_main(signal_id: str) -> str:
    return await workflow.wait_for(signal_id)


async def outside_hook(signal_id: str, value: str) -> None:
    await workflow.signal(signal_id, value)


HOOK_WORKFLOWS = [helper_hook, main_with_hook, failing_hook, main_with_failing_hook,
                  self_hook, open_main, outside_hook]


@pytest.fixture
async def hook_worker(dsn: str, namespace: str) -> Worker:
    return await Worker.create(connection=dsn, task_queue="h", workflow=HOOK_WORKFLOWS,
                               namespace=namespace)


async def test_hooks_exec_hook_and_batch(client: Client, hook_worker: Worker) -> None:
    h = await client.workflow.start(args=[10], task_queue="h", workflow_name="main_with_hook")
    result = await h.result(timeout=20)
    assert result == {"thread": ".0", "from_signal": {"total": 11}, "direct": 21,
                      "batch": {"a": 2, "b": 3}}
    dims = {s["dimension"] for s in (await h.export())["timeline"]}
    assert len(dims) == 5  # the main thread and four hook threads, each with its own counter


async def test_exec_hook_propagates_the_hooks_error(client: Client, hook_worker: Worker) -> None:
    h = await client.workflow.start(args=[], task_queue="h",
                                    workflow_name="main_with_failing_hook")
    assert await h.result(timeout=20) == "propagated: hook broke"


async def test_hook_on_itself_is_a_clear_error(client: Client, hook_worker: Worker) -> None:
    h = await client.workflow.start(args=[], task_queue="h", workflow_name="self_hook")
    with pytest.raises(MemFlowMaxedError, match="potential infinite loop"):
        await h.result(timeout=20)


async def test_client_hook_runs_in_a_running_workflow(client: Client, hook_worker: Worker,
                                                      namespace: str) -> None:
    h = await client.workflow.start(args=["ping"], task_queue="h", workflow_name="open_main",
                                    workflow_id="open")
    thread = await client.workflow.hook(workflow_id="open", task_queue="h",
                                        workflow_name="outside_hook", args=["ping", "pong"])
    assert thread.startswith("~")
    assert await h.result(timeout=20) == "pong"
    with pytest.raises(MemFlowError, match="does not accept hooks"):
        await client.workflow.hook(workflow_id="open", task_queue="h",
                                   workflow_name="outside_hook", args=["x", "y"])


async def test_signal_in_false_refuses_hooks(client: Client, hook_worker: Worker) -> None:
    await client.workflow.start(args=["z"], task_queue="h", workflow_name="open_main",
                                workflow_id="closed", signal_in=False)
    with pytest.raises(MemFlowError, match="does not accept hooks"):
        await client.workflow.hook(workflow_id="closed", task_queue="h",
                                   workflow_name="outside_hook", args=["z", "y"])


# --- interrupts and events ------------------------------------------------------------------

async def long_parent() -> str:
    await workflow.start_child(args=[1], workflow_name="slow_child", workflow_id="kid")
    return await workflow.wait_for("never-comes")


async def slow_activity_workflow() -> str:
    first = await ACTS.slow(0.6)
    await ACTS.add(1, 1)
    return first


async def interrupter(target: str) -> str:
    await workflow.interrupt(target, reason="stop it", throw=False)
    return "done"


async def emitter(n: int) -> bool:
    for i in range(n):
        await workflow.emit({"news": {"i": i}})
    return await workflow.trace({"n": n})


EVENT_WORKFLOWS = [long_parent, slow_child, slow_activity_workflow, interrupter, emitter]


@pytest.fixture
async def event_worker(dsn: str, namespace: str) -> Worker:
    return await Worker.create(connection=dsn, task_queue="e", workflow=EVENT_WORKFLOWS,
                               namespace=namespace)


async def test_interrupt_with_descend_and_throw(client: Client, event_worker: Worker) -> None:
    h = await client.workflow.start(args=[], task_queue="e", workflow_name="long_parent",
                                    workflow_id="lp")
    kid = client.workflow.get_handle("e", "slow_child", "kid")
    await eventually(lambda: _status_is(kid, 1))
    await h.interrupt(reason="enough", descend=True)
    with pytest.raises(MemFlowInterruptedError, match="enough") as info:
        await h.result(timeout=10)
    assert info.value.code == 410
    assert (await h.describe()).status == "interrupted"
    assert (await kid.describe()).status == "interrupted"
    assert await h.status() < -100_000_000


async def test_interrupt_without_throw_and_inflight_activity(client: Client, namespace: str,
                                                             event_worker: Worker) -> None:
    h = await client.workflow.start(args=[], task_queue="e",
                                    workflow_name="slow_activity_workflow", workflow_id="sa")
    await eventually(lambda: _has_task(namespace, "a"))
    stopper = await client.workflow.start(args=["sa"], task_queue="e",
                                          workflow_name="interrupter")
    assert await stopper.result(timeout=10) == "done"
    assert await h.result(timeout=10) is None
    assert (await h.describe()).status == "interrupted"
    await asyncio.sleep(0.8)  # the in-flight activity finishes; its result is not applied
    timeline = (await h.export())["timeline"]
    assert [s["kind"] for s in timeline] == ["activity"]


async def test_emit_reaches_subscribers_once(client: Client, event_worker: Worker) -> None:
    got: list = []
    stop = await client.workflow.subscribe("news", got.append)
    h = await client.workflow.start(args=[3], task_queue="e", workflow_name="emitter")
    assert await h.result(timeout=10) is True
    await eventually(lambda: _len_is(got, 3))
    await asyncio.sleep(0.2)
    assert got == [{"i": 0}, {"i": 1}, {"i": 2}]
    stop()


async def _status_is(handle, code: int) -> bool:
    try:
        return await handle.status() == code
    except Exception:
        return False


async def _has_task(namespace: str, kind: str) -> bool:
    return bool(await sql(f'SELECT 1 FROM "{namespace}".tasks WHERE kind = %s', kind))


async def _len_is(items: list, n: int) -> bool:
    return len(items) == n


async def quick_main() -> str:
    return "main done"


async def test_signal_in_true_keeps_hooks_open_after_completion(client: Client, dsn: str,
                                                                namespace: str) -> None:
    await Worker.create(connection=dsn, task_queue="h2",
                        workflow=[quick_main, outside_hook, open_main], namespace=namespace)
    done = await client.workflow.start(args=[], task_queue="h2", workflow_name="quick_main",
                                       workflow_id="kept-open", signal_in=True)
    assert await done.result(timeout=10) == "main done"
    listener = await client.workflow.start(args=["late-hook"], task_queue="h2",
                                           workflow_name="open_main")
    await client.workflow.hook(workflow_id="kept-open", task_queue="h2",
                               workflow_name="outside_hook", args=["late-hook", "still here"])
    assert await listener.result(timeout=10) == "still here"
    assert (await done.describe()).status == "completed"
