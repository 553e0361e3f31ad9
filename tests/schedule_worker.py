"""A worker process for schedule tests: ``python -m tests.schedule_worker DSN NAMESPACE``.

It serves the queue ``sched`` with ``stamp`` (returns its ``workflow.info()``) and ``slow``
(a durable sleep). With ``HANG_TICK=k`` the process freezes inside its k-th tick transaction
that starts runs — after the runs' start statements reached Postgres, before the commit —
writing the file ``HANG_MARKER`` first, so a test can SIGKILL it mid-tick.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path
from typing import Any

from memflow import Worker, workflow
from memflow.store.schedules import ScheduleQueries


async def stamp() -> dict[str, Any]:
    info = workflow.info()
    return {"workflow_id": info.workflow_id,
            "scheduled_at": None if info.scheduled_at is None else info.scheduled_at.isoformat(),
            "schedule_id": info.schedule_id}


async def slow(seconds: float) -> str:
    await workflow.sleep_for(seconds)
    return workflow.info().workflow_id


def _hang_inside_ticks(k: int, marker: str) -> None:
    original = ScheduleQueries._apply
    seen = 0

    async def apply(self: ScheduleQueries, conn: Any, update: Any) -> Any:
        nonlocal seen
        cursors = await original(self, conn, update)
        if update.starts:
            seen += 1
            if seen == k:
                cur = await conn.execute("SELECT 1")
                await cur.fetchone()  # the tick's statements have run, uncommitted
                Path(marker).write_text("in tick")
                time.sleep(120)
        return cursors

    ScheduleQueries._apply = apply  # type: ignore[method-assign]


async def main() -> None:
    if os.environ.get("HANG_TICK"):
        _hang_inside_ticks(int(os.environ["HANG_TICK"]), os.environ["HANG_MARKER"])
    worker = await Worker.create(connection=sys.argv[1], task_queue="sched",
                                 workflow=[stamp, slow], namespace=sys.argv[2],
                                 options={"lease_seconds": 2, "poll_seconds": 2})
    print("ready", flush=True)
    await worker.run()


if __name__ == "__main__":
    asyncio.run(main())
