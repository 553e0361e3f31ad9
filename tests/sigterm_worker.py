"""A worker process for the SIGTERM test: ``python -m tests.sigterm_worker DSN NAMESPACE``."""

from __future__ import annotations

import asyncio
import sys

from memflow import MemFlow, Worker, workflow


async def nap(seconds: float) -> str:
    await asyncio.sleep(seconds)
    return "rested"


ACTS = workflow.proxy_activities(activities=[nap])


async def napping(seconds: float) -> str:
    return await ACTS.nap(seconds)


async def main() -> None:
    worker = await Worker.create(connection=sys.argv[1], task_queue="term", workflow=napping,
                                 namespace=sys.argv[2])
    print("ready", flush=True)
    await worker.run()
    await MemFlow.shutdown()
    print("drained", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
