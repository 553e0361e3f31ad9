"""A worker process for flow-control tests: ``python -m tests.flow_worker DSN NAMESPACE``.

It serves the queue ``flow`` (workflows) and ``flow-activity`` (activities). Every activity
``hold`` records the start and end of its slot in the table ``slot_log`` of the namespace
(created by the test), with the process id, so a test can check from the rows how many ran at
once, per key and per process. ``FLOW_CONCURRENCY`` sets the worker's ``concurrency`` option.
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

import psycopg

from memflow import Worker, workflow

_conn: psycopg.AsyncConnection[Any] | None = None
_lock = asyncio.Lock()


async def _record(tag: str, key: str | None, event: str) -> None:
    global _conn
    async with _lock:
        if _conn is None or _conn.closed:
            _conn = await psycopg.AsyncConnection.connect(sys.argv[1], autocommit=True)
        await _conn.execute(
            f'INSERT INTO "{sys.argv[2]}".slot_log (tag, key, event, pid, at) '
            "VALUES (%s, %s, %s, %s, clock_timestamp())", (tag, key, event, os.getpid()))


async def hold(tag: str, key: str | None, seconds: float) -> str:
    """Hold a slot for ``seconds``, recording its start and end."""
    await _record(tag, key, "start")
    await asyncio.sleep(seconds)
    await _record(tag, key, "end")
    return tag


async def one(tag: str, seconds: float) -> str:
    """A workflow whose whole run is one recorded slot (its queue's limits hold it)."""
    acts = workflow.proxy_activities(retry_policy={"maximum_attempts": 3})
    return str(await acts.hold(tag, None, seconds))


async def fan(tags: list[str], keys: list[str | None], seconds: float,
              priority: int = 0) -> list[str]:
    """Run one activity per tag at once (``keys[i]`` its concurrency key)."""
    calls = []
    for tag, key in zip(tags, keys, strict=True):
        acts = workflow.proxy_activities(retry_policy={"maximum_attempts": 3},
                                         concurrency_key=key, priority=priority)
        calls.append(acts.hold(tag, key, seconds))
    return [str(r) for r in await asyncio.gather(*calls)]


async def paced(tag: str, steps: int, priority: int = 0) -> str:
    """``steps`` short timers (each a task of the queue, then a new pass), then one recorded
    activity of ``priority``: its slot's start marks when the run got through."""
    for _ in range(steps):
        await workflow.sleep_for(0.001)
    acts = workflow.proxy_activities(retry_policy={"maximum_attempts": 3}, priority=priority)
    return str(await acts.hold(tag, None, 0))


async def paced_parent(tag: str, steps: int, priority: int = 0) -> str:
    """``paced`` run as an exec_child child (started without a priority of its own)."""
    result: str = await workflow.exec_child(args=[tag, steps, priority],
                                            workflow_name="paced")
    return result


async def main() -> None:
    options: dict[str, Any] = {"lease_seconds": 5, "poll_seconds": 30}
    if os.environ.get("FLOW_CONCURRENCY"):
        options["concurrency"] = int(os.environ["FLOW_CONCURRENCY"])
    worker = await Worker.create(connection=sys.argv[1], task_queue="flow",
                                 workflow=[one, fan, paced, paced_parent], namespace=sys.argv[2],
                                 activities=[hold], options=options)
    print("ready", flush=True)
    await worker.run()


if __name__ == "__main__":
    asyncio.run(main())
