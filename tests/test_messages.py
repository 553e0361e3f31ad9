"""Message passing: wait_condition, updates and queries, against real Postgres and workers."""

from __future__ import annotations

import asyncio

import pytest

from memflow import Client, Worker, workflow
from memflow.errors import (
    MemFlowTimeoutError,
    QueryFailedError,
    UpdateFailedError,
    UpdateRejectedError,
)
from tests.support import eventually, sql


def double(x: int) -> int:
    return x * 2


acts = workflow.proxy_activities(activities=[double])


async def cart(limit: int) -> dict:
    items: list[str] = []
    state = {"closed": False}

    def add(item: str) -> int:
        items.append(item)
        return len(items)

    def check(item: str) -> None:
        if not item:
            raise ValueError("an item needs a name")
        if len(items) >= limit:
            raise ValueError("the cart is full")

    async def priced(n: int) -> int:
        value = await acts.double(n)       # an activity inside an update handler
        await workflow.sleep_for(0.01)     # and a timer
        items.append(f"priced-{value}")
        return value

    def boom() -> None:
        raise RuntimeError("handler broke")

    def close() -> str:
        state["closed"] = True
        return "closed"

    workflow.on_query("items", lambda: list(items))
    workflow.on_query("count", lambda: len(items))
    workflow.on_update("add", add, validator=check)
    workflow.on_update("priced", priced)
    workflow.on_update("boom", boom)
    workflow.on_update("close", close)
    await workflow.wait_condition(lambda: state["closed"])
    return {"items": items}


async def test_updates_apply_in_order_and_end_the_wait(client: Client, dsn: str,
                                                       namespace: str) -> None:
    await Worker.create(connection=dsn, task_queue="msg", workflow=cart, namespace=namespace)
    handle = await client.workflow.start(args=[3], task_queue="msg", workflow_name="cart")
    assert await handle.update("add", "apple") == 1
    assert await handle.update("add", "pear") == 2
    with pytest.raises(UpdateRejectedError, match="needs a name"):
        await handle.update("add", "")
    assert await handle.update("priced", 5) == 10
    with pytest.raises(UpdateFailedError, match="handler broke"):
        await handle.update("boom")
    assert await handle.query("count") == 3
    with pytest.raises(UpdateRejectedError, match="full"):
        await handle.update("add", "plum")
    assert await handle.update("close") == "closed"
    assert await handle.result(timeout=10) == {"items": ["apple", "pear", "priced-10"]}
    # rejections recorded nothing; the accepted ones are in the history
    kinds = await sql(f'SELECT kind, name FROM "{namespace}".steps '
                      "WHERE kind IN ('update', 'update_done') ORDER BY idx")
    assert [k for k, _ in kinds].count("update") == 5
    with pytest.raises(UpdateFailedError, match="not running"):
        await handle.update("add", "late")
    assert await handle.query("items") == ["apple", "pear", "priced-10"]


async def test_the_same_update_id_runs_once(client: Client, dsn: str, namespace: str) -> None:
    await Worker.create(connection=dsn, task_queue="msg", workflow=cart, namespace=namespace)
    handle = await client.workflow.start(args=[5], task_queue="msg", workflow_name="cart")
    both = await asyncio.gather(handle.update("add", "a", update_id="u1"),
                                handle.update("add", "a", update_id="u1"))
    assert both == [1, 1]
    assert await handle.update("add", "a", update_id="u1") == 1
    assert await handle.query("items") == ["a"]
    uh = await handle.start_update("add", "b")
    assert uh.update_id and await uh.result() == 2


async def test_an_update_waits_for_a_worker(client: Client, dsn: str, namespace: str) -> None:
    handle = await client.workflow.start(args=[5], task_queue="msg", workflow_name="cart")
    sent = asyncio.ensure_future(handle.update("add", "early"))
    await asyncio.sleep(0.5)
    assert not sent.done()
    await Worker.create(connection=dsn, task_queue="msg", workflow=cart, namespace=namespace)
    assert await asyncio.wait_for(sent, 10) == 1


async def test_query_errors_and_timeouts(client: Client, dsn: str, namespace: str) -> None:
    handle = await client.workflow.start(args=[5], task_queue="msg", workflow_name="cart")
    with pytest.raises(TimeoutError):
        await handle.query("count", timeout=0.3)
    assert await sql(f'SELECT count(*) FROM "{namespace}".queries') == [(0,)]
    await Worker.create(connection=dsn, task_queue="msg", workflow=cart, namespace=namespace)
    with pytest.raises(QueryFailedError, match="known: \\['count', 'items'\\]"):
        await handle.query("nope")
    assert await handle.query("count") == 0


async def waits_with_timeout() -> str:
    try:
        await workflow.wait_condition(lambda: False, timeout=0.2)
    except MemFlowTimeoutError:
        return "timed out"
    return "no"


async def test_wait_condition_times_out(client: Client, dsn: str, namespace: str) -> None:
    await Worker.create(connection=dsn, task_queue="wc", workflow=waits_with_timeout,
                        namespace=namespace)
    handle = await client.workflow.start(args=[], task_queue="wc",
                                         workflow_name="waits_with_timeout")
    assert await handle.result(timeout=10) == "timed out"


async def test_queries_answered_by_replay_when_nothing_is_cached(client: Client, dsn: str,
                                                                namespace: str) -> None:
    await Worker.create(connection=dsn, task_queue="msg", workflow=cart, namespace=namespace,
                        options={"cache_size": 0})
    handle = await client.workflow.start(args=[5], task_queue="msg", workflow_name="cart")
    assert await handle.update("add", "x") == 1
    assert await handle.update("priced", 2) == 4
    assert await handle.query("items") == ["x", "priced-4"]
    before = await sql(f'SELECT count(*) FROM "{namespace}".steps')
    assert await handle.query("count") == 2
    assert await sql(f'SELECT count(*) FROM "{namespace}".steps') == before


async def child_of_update(n: int) -> int:
    await workflow.sleep_for(0.01)
    return n * 100


async def late_handlers() -> list:
    seen: list = []

    def bad_query() -> int:
        return int(workflow.random() * 10)  # a durable API: refused in a query

    async def via_child(n: int) -> int:
        return int(await workflow.exec_child(args=[n], workflow_name=child_of_update,
                                             workflow_id=f"{workflow.get_context().workflow_id}-c{n}"))

    workflow.on_query("seen", lambda: list(seen))
    workflow.on_query("bad", bad_query)
    await workflow.sleep_for(0.3)             # the "late" handler does not exist before this
    workflow.on_update("late", lambda v: seen.append(v) or len(seen))
    workflow.on_update("child", via_child)
    data = await workflow.wait_for("go")      # a signal is a delivery: the condition re-checks
    seen.append(data)
    await workflow.wait_condition(lambda: len(seen) >= 3)
    return seen


async def test_an_update_waits_for_its_handler_and_handlers_start_children(
        client: Client, dsn: str, namespace: str) -> None:
    await Worker.create(connection=dsn, task_queue="late",
                        workflow=[late_handlers, child_of_update], namespace=namespace)
    handle = await client.workflow.start(args=[], task_queue="late",
                                         workflow_name="late_handlers")
    early = asyncio.ensure_future(handle.update("late", "first"))
    await asyncio.sleep(0.1)
    assert not early.done()
    assert await asyncio.wait_for(early, 10) == 1
    with pytest.raises(QueryFailedError, match="durable API"):
        await handle.query("bad")
    assert await handle.update("child", 4) == 400
    await handle.signal("go", "signalled")

    async def signalled() -> bool:
        return await handle.query("seen") == ["first", "signalled"]
    await eventually(signalled)
    assert await handle.update("late", "third") == 3
    assert await handle.result(timeout=10) == ["first", "signalled", "third"]


async def test_a_query_replays_when_the_run_is_in_no_cache(client: Client, dsn: str,
                                                           namespace: str) -> None:
    workers = [await Worker.create(connection=dsn, task_queue="msg", workflow=cart,
                                   namespace=namespace) for _ in range(2)]
    handle = await client.workflow.start(args=[9], task_queue="msg", workflow_name="cart")
    for item in ("a", "b", "c"):
        await handle.update("add", item)
    # the last update's pass has committed (its result is in) but may not have cached the
    # thread yet: let it end (its task gone, then a moment) before evicting
    await eventually(lambda: _no_pass_task(namespace, handle.run_id))
    await asyncio.sleep(0.1)
    for w in workers:  # evicted from every cache
        w.cache.clear()
    assert all(len(w.cache) == 0 for w in workers)
    assert await handle.query("items") == ["a", "b", "c"]
    assert all(len(w.cache) == 0 for w in workers)  # answering cached nothing either


async def _no_pass_task(namespace: str, run_id: str) -> bool:
    rows = await sql(f'SELECT count(*) FROM "{namespace}".tasks WHERE run_id = %s '
                     "AND kind = 'w'", run_id)
    return rows == [(0,)]


async def test_racing_updates_from_many_callers_each_run_once(client: Client, dsn: str,
                                                              namespace: str) -> None:
    for _ in range(2):
        await Worker.create(connection=dsn, task_queue="msg", workflow=cart, namespace=namespace)
    handle = await client.workflow.start(args=[100], task_queue="msg", workflow_name="cart")
    results = await asyncio.gather(*(handle.update("add", f"i{i}") for i in range(20)))
    assert sorted(results) == list(range(1, 21))
    items = await handle.query("items")
    assert sorted(items) == sorted(f"i{i}" for i in range(20))
    # applied in order of acceptance: each result is the item's place in the list
    for i, n in enumerate(results):
        assert items[n - 1] == f"i{i}"
    # the order of acceptance is the history's: handlers ran in the order of their steps
    by_step = await sql(f'SELECT result FROM "{namespace}".updates ORDER BY idx')
    assert [r[0] for r in by_step] == list(range(1, 21))


async def test_pruning_a_run_drops_its_updates(client: Client, dsn: str, namespace: str) -> None:
    await Worker.create(connection=dsn, task_queue="msg", workflow=cart, namespace=namespace)
    handle = await client.workflow.start(args=[5], task_queue="msg", workflow_name="cart")
    await handle.update("add", "x")
    await handle.update("close")
    await handle.result(timeout=10)
    assert await sql(f'SELECT count(*) FROM "{namespace}".updates') == [(2,)]
    ns = await client._namespace(namespace)
    assert (await ns.admin.prune_batch(0.0, 10))["workflows"] == 1
    assert await sql(f'SELECT count(*) FROM "{namespace}".updates') == [(0,)]


async def cancellable() -> str:
    state = {"stop": False}

    async def slow() -> str:
        await workflow.sleep_for(60)
        return "slept"

    workflow.on_update("slow", slow)
    workflow.on_update("stop", lambda: state.update(stop=True))
    try:
        await workflow.wait_condition(lambda: state["stop"])
    except asyncio.CancelledError:
        return "cancelled, cleaned up"
    return "stopped"


async def test_a_running_handler_fails_its_update_when_the_run_is_cancelled(
        client: Client, dsn: str, namespace: str) -> None:
    await Worker.create(connection=dsn, task_queue="cx", workflow=cancellable,
                        namespace=namespace)
    handle = await client.workflow.start(args=[], task_queue="cx", workflow_name="cancellable")
    uh = await handle.start_update("slow")
    await handle.cancel("enough")
    with pytest.raises(UpdateFailedError, match="cancelled"):
        await uh.result(timeout=10)
    assert await handle.result(timeout=10) == "cancelled, cleaned up"
