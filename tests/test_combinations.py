"""The seed system's own combinations: a signal first, then activities, children, parallels."""

from __future__ import annotations

import asyncio

import pytest

from memflow import Client, Worker, workflow
from tests.support import eventually, sql


async def greet(name: str) -> str:
    return f"Hello, {name}!"


async def bye(name: str) -> str:
    return f"Bye, {name}!"


ACTS = workflow.proxy_activities(activities=[greet, bye])


async def kid(name: str) -> str:
    return await ACTS.greet(f"child {name}")


async def wait_then_activity(sid: str) -> str:
    data = await workflow.wait_for(sid)
    return await ACTS.greet(data["name"])


async def wait_then_parallel(sid: str) -> list:
    data = await workflow.wait_for(sid)
    return await asyncio.gather(ACTS.greet(data["name"]), ACTS.bye(data["name"]))


async def wait_then_exec_child(sid: str) -> str:
    data = await workflow.wait_for(sid)
    return await workflow.exec_child(args=[data["name"]], workflow_name="kid")


async def wait_then_start_child(sid: str) -> str:
    data = await workflow.wait_for(sid)
    return await workflow.start_child(args=[data["name"]], workflow_name="kid",
                                      workflow_id=f"kid-{sid}")


async def gather_children(name: str) -> list:
    return await asyncio.gather(
        workflow.start_child(args=[name], workflow_name="kid", workflow_id=f"s-{name}"),
        workflow.exec_child(args=[name], workflow_name="kid"))


async def everything(name: str) -> dict:
    r = workflow.random()
    hello = await ACTS.greet(name)
    slept = await workflow.sleep_for("0.1 seconds")
    child = await workflow.exec_child(args=[name], workflow_name="kid")
    started = await workflow.start_child(args=[name], workflow_name="kid",
                                         workflow_id=f"bg-{name}")
    signal = await workflow.wait_for(f"go-{name}")
    parallel = await workflow.all(ACTS.greet("a"), ACTS.bye("b"), workflow.sleep_for(0.05))
    return {"random_ok": 0 <= r < 1, "hello": hello, "slept": slept, "child": child,
            "started": started, "signal": signal, "parallel": parallel}


WORKFLOWS = [kid, wait_then_activity, wait_then_parallel, wait_then_exec_child,
             wait_then_start_child, gather_children, everything]


@pytest.fixture(params=[512, 0], ids=["cached", "replayed"])
async def worker(request, dsn: str, namespace: str) -> Worker:
    return await Worker.create(connection=dsn, task_queue="c", workflow=WORKFLOWS,
                               namespace=namespace, options={"cache_size": request.param})


@pytest.mark.parametrize(("name", "expected"), [
    ("wait_then_activity", "Hello, Ann!"),
    ("wait_then_parallel", ["Hello, Ann!", "Bye, Ann!"]),
    ("wait_then_exec_child", "Hello, child Ann!"),
    ("wait_then_start_child", "kid-sig"),
])
async def test_wait_then(client: Client, worker: Worker, namespace: str, name: str,
                         expected: object) -> None:
    h = await client.workflow.start(args=["sig"], task_queue="c", workflow_name=name)
    await eventually(lambda: _waiting(namespace))
    await client.workflow.signal("sig", {"name": "Ann"})
    assert await h.result(timeout=20) == expected


async def test_gather_start_child_and_exec_child(client: Client, worker: Worker) -> None:
    h = await client.workflow.start(args=["Bo"], task_queue="c", workflow_name="gather_children")
    assert await h.result(timeout=20) == ["s-Bo", "Hello, child Bo!"]


async def test_everything_together(client: Client, worker: Worker, namespace: str) -> None:
    h = await client.workflow.start(args=["Cy"], task_queue="c", workflow_name="everything")
    await eventually(lambda: _waiting(namespace))
    await client.workflow.signal("go-Cy", {"ok": True})
    assert await h.result(timeout=20) == {
        "random_ok": True, "hello": "Hello, Cy!", "slept": 0.1, "child": "Hello, child Cy!",
        "started": "bg-Cy", "signal": {"ok": True},
        "parallel": ["Hello, a!", "Bye, b!", 0.05]}
    bg = client.workflow.get_handle("c", "kid", "bg-Cy")
    assert await bg.result(timeout=10) == "Hello, child Cy!"


async def branchy(n: int) -> list:
    async def branch(i: int) -> list:
        first = await ACTS.greet(str(i))
        await workflow.sleep_for(0.01 * (n - i))
        second = await ACTS.bye(str(i))
        return [first, second]
    return await asyncio.gather(*[branch(i) for i in range(n)])


async def test_parallel_branches_progress_independently_and_replay(
        client: Client, dsn: str, namespace: str) -> None:
    await Worker.create(connection=dsn, task_queue="b", workflow=branchy, namespace=namespace)
    h = await client.workflow.start(args=[6], task_queue="b", workflow_name="branchy",
                                    workflow_id="br")
    expected = [[f"Hello, {i}!", f"Bye, {i}!"] for i in range(6)]
    assert await h.result(timeout=20) == expected
    # every recorded step replays to the same numbering on a worker that has no cache
    timeline = [(s["index"], s["kind"], s["name"]) for s in (await h.export())["timeline"]]
    assert len(timeline) == 18 and len({t[0] for t in timeline}) == 18


async def _waiting(namespace: str) -> bool:
    return bool(await sql(f'SELECT 1 FROM "{namespace}".steps WHERE kind = %s '
                          "AND status = 'pending'", "wait"))
