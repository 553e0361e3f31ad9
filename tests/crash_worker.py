"""A worker process for crash tests: ``python -m tests.crash_worker DSN NAMESPACE``.

Activities log every execution in the table ``<namespace>.exec_log``. Environment flags make
the process hang at a chosen point, so a test can kill it there with SIGKILL:
``HANG_ACTIVITY=i`` hangs inside activity ``step(i)``; ``HANG_PASS=i`` hangs inside the
workflow pass that follows step ``i``'s result (writing the file ``HANG_MARKER`` first).
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

import psycopg

from memflow import Worker, activity, workflow
from tests.support import DSN


def step(i: int) -> int:
    namespace = activity.info().namespace
    with psycopg.connect(DSN, autocommit=True) as conn:
        conn.execute(f'INSERT INTO "{namespace}".exec_log (step, pid) VALUES (%s, %s)',
                     (i, os.getpid()))
    if os.environ.get("HANG_ACTIVITY") == str(i):
        time.sleep(120)
    return i * 10


# module level: registered at import, so a fresh worker can run `step` before any replay
acts = workflow.proxy_activities(activities=[step],
                                 retry_policy={"maximum_attempts": 5, "initial_interval": 0.1})


async def crashy(n: int) -> int:
    total = 0
    for i in range(n):
        total += await acts.step(i)
        if os.environ.get("HANG_PASS") == str(i):
            Path(os.environ["HANG_MARKER"]).write_text("in pass")
            time.sleep(120)  # blocks the pass itself, on purpose
    await workflow.sleep_for(0.1)
    return total


async def main() -> None:
    import logging

    logging.basicConfig(level=logging.INFO)
    worker = await Worker.create(connection=sys.argv[1], task_queue="crash", workflow=crashy,
                                 namespace=sys.argv[2],
                                 options={"lease_seconds": 1.5, "poll_seconds": 1})
    print("ready", flush=True)
    await worker.run()


if __name__ == "__main__":
    asyncio.run(main())
