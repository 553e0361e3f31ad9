"""Schedules (interval) — poll every 10 seconds, and skip a tick while the last poll runs.

``every="10 seconds"`` ticks on elapsed time; ``overlap="skip"`` drops (and counts) a tick
that comes while the previous run is still open, so polls never pile up. The other overlap
policies are ``buffer_one``, ``buffer_all``, ``cancel_other``, ``terminate_other`` and
``allow_all``. The example triggers two polls at once to show the skip without waiting.

    python examples/poller.py

Uses MEMFLOW_DATABASE_URL, else the embedded Postgres; namespace ``example_poller``
(or MEMFLOW_NAMESPACE).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os

from memflow import Client, MemFlow, Worker, workflow
from memflow.errors import ScheduleNotFoundError

NAMESPACE = os.environ.get("MEMFLOW_NAMESPACE", "example_poller")


async def fetch_new_items() -> list[str]:
    """An activity: a slow look at an inbox (two new items here)."""
    await asyncio.sleep(1.5)
    return ["invoice-17", "invoice-18"]


async def poll_inbox() -> str:
    """The scheduled workflow: take what is new, hand it on."""
    acts = workflow.proxy_activities(activities=[fetch_new_items])
    items = await acts.fetch_new_items()
    return f"processed {len(items)} items"


async def main() -> None:
    try:
        await Worker.create(task_queue="poller", workflow=poll_inbox, namespace=NAMESPACE)
        client = Client(namespace=NAMESPACE)
        with contextlib.suppress(ScheduleNotFoundError):
            await client.schedule.get_handle("inbox-poller").delete()  # from an earlier run
        sched = await client.schedule.create(
            "inbox-poller", workflow_name=poll_inbox, task_queue="poller",
            every="10 seconds", overlap="skip")
        first = await sched.trigger()
        print("first poll started:", first is not None)
        second = await sched.trigger()  # the first one still runs: skipped
        print("second poll while the first runs:", "skipped" if second is None else second)
        assert first is not None
        print("poll result:", await client.workflow.get_handle(workflow_id=first).result(
            timeout=60))
        desc = await sched.describe()
        print("ticks skipped so far >= 1:", desc.skipped >= 1)
        print("next polls 10 s apart:", all(
            (b - a).total_seconds() == 10 for a, b in itertools.pairwise(desc.next_runs)))
        await sched.delete()
    finally:
        await MemFlow.shutdown()


if __name__ == "__main__":
    asyncio.run(main())
