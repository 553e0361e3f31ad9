"""Schedules (cron) — a nightly report at 03:00 Paris time, run by whichever worker is up.

``client.schedule.create`` stores the schedule in Postgres; every ``Worker.create`` process
of the namespace runs schedules, so no extra process is needed and each night's tick starts
exactly once however many workers there are. The run of a tick has the workflow id
``nightly-report-<UTC time>``, and ``workflow.info().scheduled_at`` tells it which night it is
for. Here the example does not wait for 03:00: it triggers one run now.

    python examples/nightly_report.py

Uses MEMFLOW_DATABASE_URL, else the embedded Postgres; namespace ``example_schedules``
(or MEMFLOW_NAMESPACE).
"""

from __future__ import annotations

import asyncio
import contextlib
import os

from memflow import Client, MemFlow, Worker, workflow
from memflow.errors import ScheduleNotFoundError

NAMESPACE = os.environ.get("MEMFLOW_NAMESPACE", "example_schedules")
ORDERS = [{"id": "A-1", "eur": 12.5}, {"id": "A-2", "eur": 40.0}, {"id": "A-3", "eur": 7.25}]


async def load_orders(day: str) -> list[dict[str, float]]:
    """An activity: the orders of one day (a fixed list here)."""
    return ORDERS


async def nightly_report() -> str:
    """The scheduled workflow: a report for the night of its tick."""
    acts = workflow.proxy_activities(activities=[load_orders])
    info = workflow.info()
    assert info.scheduled_at is not None  # set for every run a schedule starts
    orders = await acts.load_orders(info.scheduled_at.date().isoformat())
    total = sum(o["eur"] for o in orders)
    return f"report built from {len(orders)} orders (total {total:.2f} EUR)"


async def main() -> None:
    try:
        await Worker.create(task_queue="reports", workflow=nightly_report, namespace=NAMESPACE)
        client = Client(namespace=NAMESPACE)
        with contextlib.suppress(ScheduleNotFoundError):
            await client.schedule.get_handle("nightly-report").delete()  # from an earlier run
        sched = await client.schedule.create(
            "nightly-report", workflow_name=nightly_report, task_queue="reports",
            cron="0 3 * * *", timezone="Europe/Paris", overlap="skip",
            catchup_window="1 hour", note="the finance team reads it at 8")
        desc = await sched.describe()
        print(f"schedule {desc.schedule_id}: cron {desc.cron[0]} in {desc.timezone}, "
              f"overlap {desc.overlap}")
        print("every next run is at 03:00 local:",
              all(t.hour == 3 and t.minute == 0 for t in desc.next_runs))
        wf_id = await sched.trigger()  # one run now, instead of waiting for 03:00
        assert wf_id is not None
        result = await client.workflow.get_handle(workflow_id=wf_id).result(timeout=60)
        print("triggered run:", result)
        recent = (await sched.describe()).recent_runs[-1]
        print("run id matches its tick:",
              wf_id == f"nightly-report-{recent['scheduled_at']:%Y-%m-%dT%H:%M:%SZ}",
              "| status:", recent["status"])
        await sched.delete()
    finally:
        await MemFlow.shutdown()


if __name__ == "__main__":
    asyncio.run(main())
