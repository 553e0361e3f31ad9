"""Feature 6 — interceptors: cross-cutting code around every workflow and activity.

A workflow interceptor wraps each workflow function and runs *as workflow code*: it may call
durable APIs (here an audit activity), which are recorded like the workflow's own steps. An
activity interceptor wraps every activity call of every workflow. The first registered is
the outermost.

    python examples/interceptors.py

Uses MEMFLOW_DATABASE_URL, else the embedded Postgres; namespace ``example_interceptors``
(or MEMFLOW_NAMESPACE).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from typing import Any

from memflow import (
    Client,
    MemFlow,
    Worker,
    did_interrupt,
    guid,
    register_activity_worker,
    workflow,
)

NAMESPACE = os.environ.get("MEMFLOW_NAMESPACE", "example_interceptors")
AUDIT: list[str] = []
CALLS: list[str] = []


async def audit_log(workflow_id: str, event: str) -> None:
    """The audit trail (an activity on the shared 'audit' queue)."""
    AUDIT.append(f"{workflow_id}: {event}")


async def reserve(item: str) -> str:
    return f"reserved {item}"


async def charge(amount: float) -> str:
    return f"charged {amount:.2f}"


class AuditInterceptor:
    """Records when each workflow starts and how it ends, with durable activity calls."""

    async def execute(self, ctx: Any, next: Callable[[], Awaitable[Any]]) -> Any:
        audit = workflow.proxy_activities(task_queue="audit",
                                          retry_policy={"maximum_attempts": 3})
        await audit.audit_log(ctx["workflow_id"], f"{ctx['workflow_name']} started")
        try:
            result = await next()
        except BaseException as err:
            if not did_interrupt(err):  # the engine's own pauses are not failures
                await audit.audit_log(ctx["workflow_id"], f"failed: {err}")
            raise
        await audit.audit_log(ctx["workflow_id"], f"completed with {result!r}")
        return result


class ActivityNameInterceptor:
    """Sees every activity call (on every pass: keep it free of side effects that matter)."""

    async def execute(self, activity_ctx: Any, workflow_ctx: Any,
                      next: Callable[[], Awaitable[Any]]) -> Any:
        call = f"{activity_ctx['activity_name']}{tuple(activity_ctx['args'])}"
        if call not in CALLS:
            CALLS.append(call)
        return await next()


async def checkout(item: str, amount: float) -> str:
    """An ordinary workflow: it knows nothing about the interceptors."""
    acts = workflow.proxy_activities(activities=[reserve, charge])
    reserved = await acts.reserve(item)
    charged = await acts.charge(amount)
    return f"{reserved}, {charged}"


async def main() -> None:
    MemFlow.register_interceptor(AuditInterceptor())
    MemFlow.register_activity_interceptor(ActivityNameInterceptor())
    try:
        await register_activity_worker(
            {"connection": None, "task_queue": "audit", "namespace": NAMESPACE},
            {"audit_log": audit_log}, "audit")
        await Worker.create(task_queue="shop", workflow=checkout, namespace=NAMESPACE)
        client = Client(namespace=NAMESPACE)
        workflow_id = f"checkout-{guid()}"
        handle = await client.workflow.start(args=["book", 12.0], task_queue="shop",
                                             workflow_name="checkout",
                                             workflow_id=workflow_id)
        print("checkout result:", await handle.result(timeout=60))
        print("audit trail:")
        for line in AUDIT:
            print("  ", line.replace(workflow_id, "<id>"))
        print("activities seen by the activity interceptor:",
              [call.split("(")[0] for call in CALLS])
    finally:
        MemFlow.clear_interceptors()
        await MemFlow.shutdown()


if __name__ == "__main__":
    asyncio.run(main())
