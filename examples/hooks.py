"""Feature 2 — hooks and coordination: extra threads of one running workflow.

A *hook* runs another function as a new thread of a workflow, with its own step counter,
sharing the workflow's entity. Here a research workflow asks two "perspectives" in parallel
(``exec_hook_batch`` waits for their results), starts a reviewer hook that reports back with a
signal, and waits for an approval that arrives through a hook started from *outside* the
workflow (``client.workflow.hook``).

    python examples/hooks.py

Uses MEMFLOW_DATABASE_URL, else the embedded Postgres; namespace ``example_hooks``
(or MEMFLOW_NAMESPACE).
"""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any

from memflow import Client, MemFlow, Worker, guid, workflow

NAMESPACE = os.environ.get("MEMFLOW_NAMESPACE", "example_hooks")
QUEUE = "research"


async def optimist(topic: str) -> str:
    """One perspective (a hook thread)."""
    await workflow.sleep_for("50ms")  # hooks may use every durable call
    return f"{topic}: the upside is large"


async def skeptic(topic: str) -> str:
    """Another perspective (a hook thread)."""
    return f"{topic}: the risks are real"


async def reviewer(signal_id: str, views: dict[str, str]) -> None:
    """A fire-and-forget hook: reviews the views and signals its verdict to the main thread."""
    verdict = "go" if len(views) == 2 else "wait"
    await workflow.signal(signal_id, {"verdict": verdict, "read": sorted(views)})


async def approver(signal_id: str, who: str) -> None:
    """Started from outside by ``client.workflow.hook``: approves the research."""
    await workflow.signal(signal_id, {"approved_by": who})


async def research(topic: str) -> dict[str, Any]:
    """The main thread: gathers perspectives, a review and an approval."""
    me = workflow.get_context().workflow_id
    views = await workflow.exec_hook_batch([
        {"key": "optimist", "options": {"task_queue": QUEUE, "workflow_name": "optimist",
                                        "args": [topic]}},
        {"key": "skeptic", "options": {"task_queue": QUEUE, "workflow_name": "skeptic",
                                       "args": [topic]}},
    ])
    await workflow.hook(task_queue=QUEUE, workflow_name="reviewer",
                        args=[f"review-{me}", views])
    review = await workflow.wait_for(f"review-{me}")
    approval = await workflow.wait_for(f"approval-{me}")
    return {"views": views, "review": review, "approval": approval}


async def main() -> None:
    try:
        await Worker.create(task_queue=QUEUE, namespace=NAMESPACE,
                            workflow=[research, optimist, skeptic, reviewer, approver])
        client = Client(namespace=NAMESPACE)
        workflow_id = f"research-{guid()}"
        handle = await client.workflow.start(args=["solar roofs"], task_queue=QUEUE,
                                             workflow_name="research",
                                             workflow_id=workflow_id)
        await client.workflow.hook(workflow_id=workflow_id, task_queue=QUEUE,
                                   workflow_name="approver",
                                   args=[f"approval-{workflow_id}", "ops-team"])
        result = await handle.result(timeout=60)
        print("research result:", json.dumps(result, indent=2, sort_keys=True))
    finally:
        await MemFlow.shutdown()


if __name__ == "__main__":
    asyncio.run(main())
