"""The worker process of the ``rss`` workload: ``python -m benchmarks.rss_worker NS QUEUE [CACHE]``.

Serves the benchmark workflows and activities on ``QUEUE`` in namespace ``NS`` with default
options (or ``cache_size=CACHE``), prints one JSON line ``{"ready": true, "cache_size": ...}``
once it is serving, and runs until SIGTERM.
"""

from __future__ import annotations

import asyncio
import json
import sys

from benchmarks.flows import ACTIVITIES, WORKFLOWS
from memflow import MemFlow, Worker


async def serve(namespace: str, queue: str, cache_size: int | None) -> None:
    """Run the worker until it is stopped by a signal."""
    options = None if cache_size is None else {"cache_size": cache_size}
    worker = await Worker.create(connection=None, task_queue=queue, workflow=WORKFLOWS,
                                 namespace=namespace, activities=ACTIVITIES, options=options)
    effective = (getattr(worker, "options", None) or {}).get("cache_size", cache_size)
    print(json.dumps({"ready": True, "cache_size": effective}), flush=True)
    try:
        await worker.run()
    finally:
        await MemFlow.shutdown()


def main(argv: list[str]) -> None:
    """Entry point: ``NS QUEUE [CACHE_SIZE]``."""
    cache = int(argv[2]) if len(argv) > 2 and argv[2] else None
    asyncio.run(serve(argv[0], argv[1], cache))


if __name__ == "__main__":
    main(sys.argv[1:])
