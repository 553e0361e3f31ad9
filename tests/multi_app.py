"""A worker process for the multi-worker suite: ``python -m tests.multi_app DSN NAMESPACE``.

Its workflows race activities against signals and timers. Every activity execution is logged in
``<namespace>.exec_log`` (key, pid), so a test can count executions across processes.
"""

from __future__ import annotations

import asyncio
import os

import psycopg

from memflow import activity, workflow
from tests.support import DSN, serve_worker

LEASE = float(os.environ.get("MULTI_LEASE", "2"))


def work(key: str) -> str:
    namespace = activity.info().namespace
    with psycopg.connect(DSN, autocommit=True) as conn:
        conn.execute(f'INSERT INTO "{namespace}".exec_log (key, pid) VALUES (%s, %s)',
                     (key, os.getpid()))
    return key.upper()


acts = workflow.proxy_activities(activities=[work],
                                 retry_policy={"maximum_attempts": 5, "initial_interval": 0.1})


async def racer(i: int) -> list[str]:
    """An activity racing a signal, then one racing a short timer, then a last activity."""
    first, data = await asyncio.gather(acts.work(f"{i}-a"), workflow.wait_for(f"sig-{i}"))
    second, _slept = await asyncio.gather(acts.work(f"{i}-b"), workflow.sleep_for(0.02))
    third = await acts.work(f"{i}-c")
    return [first, str(data), second, third]


async def fanout(i: int) -> int:
    """Several activities in parallel with a signal, twice."""
    parts = await asyncio.gather(*(acts.work(f"{i}-p{k}") for k in range(4)),
                                 workflow.wait_for(f"fan-{i}"))
    more = await asyncio.gather(*(acts.work(f"{i}-q{k}") for k in range(3)),
                                workflow.sleep_for(0.01))
    return len(parts) + len(more)


if __name__ == "__main__":
    serve_worker("multi", [racer, fanout], options={"lease_seconds": LEASE, "poll_seconds": 1})
