"""``queries`` and ``updates``: round trips of message passing, one caller at a time.

- ``queries``: ``--n`` workflows (default 20), each with ``STEPS`` recorded activity steps,
  blocked in ``wait_condition``; ``--runs`` queries (default 200) asked in turn of them, on a
  worker with the default sticky cache (``cached_p50_ms``/``cached_p99_ms``: answered from the
  cached thread) and on one with ``cache_size=0`` (``uncached_p50_ms``/``uncached_p99_ms``:
  answered by replaying the history).
- ``updates``: ``--runs`` updates (default 200) sent in turn to ``--n`` workflows (default 5)
  and awaited (``p50_ms``/``p99_ms``: ``handle.update`` until the handler's result, a plain
  handler); and a tenth as many whose handler calls one activity (``activity_p50_ms``/
  ``activity_p99_ms``).

Both measure from the client's call to its return, with the worker in the same process.
"""

from __future__ import annotations

import time
from typing import Any

from benchmarks.common import base_line, latency_figures, session
from memflow import workflow

STEPS = 10
QUERIES = 200
UPDATES = 200


async def bump(n: int) -> int:
    """The activity of the workflows below."""
    return n + 1


async def chatty(steps: int) -> int:
    """Records ``steps`` activity steps, then answers queries and takes updates until closed."""
    acts = workflow.proxy_activities()
    state = {"count": 0, "closed": False}

    def add(by: int) -> int:
        state["count"] += by
        return state["count"]

    async def add_remote(by: int) -> int:
        state["count"] = await acts.bump(state["count"] + by - 1)
        return state["count"]

    def close() -> None:
        state["closed"] = True

    workflow.on_query("count", lambda: state["count"])
    workflow.on_update("add", add)
    workflow.on_update("add_remote", add_remote)
    workflow.on_update("close", close)
    for _ in range(steps):
        state["count"] = await acts.bump(state["count"])
    await workflow.wait_condition(lambda: state["closed"])
    return state["count"]


async def _started(s: Any, n: int, steps: int) -> list[Any]:
    handles = [await s.start(chatty, [steps]) for _ in range(n)]
    for h in handles:  # every workflow has recorded its steps and blocks
        while await h.query("count", timeout=30) < steps:
            pass
    return handles


async def _timed(calls: list[Any]) -> list[float]:
    spent = []
    for call in calls:
        t0 = time.perf_counter()
        await call()
        spent.append(time.perf_counter() - t0)
    return spent


async def _query_round(handles: list[Any], runs: int) -> list[float]:
    return await _timed([lambda h=handles[i % len(handles)]: h.query("count")
                         for i in range(runs)])


async def _close(handles: list[Any]) -> None:
    for h in handles:
        await h.update("close")
        await h.result(timeout=60)


async def queries(opts: Any) -> dict[str, Any]:
    """Query round trips, cached and uncached."""
    n = int(opts.n or 20)
    runs = int(opts.runs or QUERIES)
    out = base_line("queries", n)
    async with session("queries", [chatty], [bump]) as s:
        handles = await _started(s, n, STEPS)
        await _query_round(handles, min(20, runs))  # warm-up
        cached = await _query_round(handles, runs)
        await _close(handles)
    async with session("queries_nocache", [chatty], [bump], options={"cache_size": 0}) as s:
        handles = await _started(s, n, STEPS)
        uncached = await _query_round(handles, runs)
        await _close(handles)
    out.update(latency_figures(cached, "cached_"), **latency_figures(uncached, "uncached_"),
               queries=runs, history_steps=STEPS)
    return out


async def updates(opts: Any) -> dict[str, Any]:
    """Update round trips: a plain handler, and one that calls an activity."""
    n = int(opts.n or 5)
    runs = int(opts.runs or UPDATES)
    out = base_line("updates", n)
    async with session("updates", [chatty], [bump]) as s:
        handles = await _started(s, n, 0)
        await _timed([lambda h=h: h.update("add", 1) for h in handles])  # warm-up
        plain = await _timed([lambda h=handles[i % n]: h.update("add", 1) for i in range(runs)])
        remote = await _timed([lambda h=handles[i % n]: h.update("add_remote", 1)
                               for i in range(max(1, runs // 10))])
        await _close(handles)
    out.update(latency_figures(plain), **latency_figures(remote, "activity_"), updates=runs)
    return out
