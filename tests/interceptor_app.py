"""Workflows, activities and interceptors for tests/test_interceptors.py, and its worker
processes: ``python -m tests.interceptor_app ROLE DSN NAMESPACE [CACHE_SIZE]``.

ROLE ``activities`` serves ``audit_log`` on the shared queue ``shared`` (a separate
``register_activity_worker``, as in the seed's interceptor example). ROLE ``worker`` registers
:class:`SeedAudit` (workflow) and :class:`AuditActivities` (activity) interceptors and runs a
workflow worker for the queue ``icpt`` (``journey``), with a 2 s lease. Every activity logs its
execution in the table ``<namespace>.exec_log``, so tests can count real executions. With the
environment variable ``HANG_SLOW=1`` the activity ``slow`` hangs after logging, so a test can
SIGKILL the process there.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from typing import Any

import psycopg

import memflow
from memflow import MemFlow, Worker, register_activity_worker, workflow

CONFIG: dict[str, str] = {}
SHARED_RETRY = {"maximum_attempts": 3, "initial_interval": 0.1}


def configure(dsn: str, namespace: str) -> None:
    """Where activities log their executions (the table ``<namespace>.exec_log``)."""
    CONFIG.update(dsn=dsn, namespace=namespace)


def record(name: str, arg: Any) -> None:
    """Log one real execution of activity ``name``."""
    with psycopg.connect(CONFIG["dsn"], autocommit=True) as conn:
        conn.execute(f'INSERT INTO "{CONFIG["namespace"]}".exec_log (name, arg, pid) '
                     "VALUES (%s, %s, %s)", (name, str(arg), os.getpid()))


# activities -------------------------------------------------------------------------------------
def audit_log(workflow_id: str, action: str) -> None:
    record("audit_log", f"{workflow_id}:{action}")


def step(x: int) -> int:
    record("step", x)
    return x * 10


def slow(x: int) -> int:
    record("slow", x)
    if os.environ.get("HANG_SLOW") == "1":
        time.sleep(120)  # killed here by the test
    return x * 100


# interceptors -------------------------------------------------------------------------------
class SeedAudit:
    """The seed's example interceptor, as written: audit on a shared activity queue."""

    async def execute(self, ctx: Any, next: Any) -> Any:
        acts = MemFlow.workflow.proxy_activities(task_queue="shared",
                                                 retry_policy={"maximum_attempts": 3})
        await acts.audit_log(ctx.get("workflow_id"), "started")
        return await next()


class Bracket:
    """A workflow interceptor with durable calls before and after the workflow."""

    async def execute(self, ctx: Any, next: Any) -> Any:
        await workflow.sleep_for(0.1)
        result = await next()
        acts = workflow.proxy_activities(task_queue="shared", retry_policy=SHARED_RETRY)
        await acts.audit_log(ctx["workflow_id"], "finished")
        return result


class AuditActivities:
    """An activity interceptor making its own durable calls (audits) around each activity."""

    async def execute(self, activity_ctx: Any, workflow_ctx: Any, next: Any) -> Any:
        acts = workflow.proxy_activities(task_queue="shared", retry_policy=SHARED_RETRY)
        name = activity_ctx["activity_name"]
        await acts.audit_log(workflow_ctx["workflow_id"], f"before:{name}{activity_ctx['args']}")
        result = await next()
        await acts.audit_log(workflow_ctx["workflow_id"], f"after:{name}={result}")
        return result


# workflows -------------------------------------------------------------------------------------
# At module level, so a fresh worker process knows the activities before it runs any pass of
# the workflow (a worker that resumes a crashed workflow may claim its activity task first).
ACTS = workflow.proxy_activities(activities=[step, slow],
                                 retry_policy={"maximum_attempts": 5, "initial_interval": 0.1})


async def journey(n: int) -> dict[str, Any]:
    """Sequential steps around a slow activity and a signal: a fixed timeline."""
    a = await ACTS.step(n)
    b = await ACTS.slow(n)
    go = await workflow.wait_for(f"go-{workflow.get_context()['workflow_id']}")
    c = await ACTS.step(n + 1)
    return {"a": a, "b": b, "c": c, "go": go}


def register_interceptors() -> None:
    """The interceptors the ``worker`` role runs with (also used in-process by tests)."""
    memflow.register_interceptor(SeedAudit())
    memflow.register_interceptor(Bracket())
    memflow.register_activity_interceptor(AuditActivities())


async def main(role: str, dsn: str, namespace: str, cache_size: int | None) -> None:
    configure(dsn, namespace)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    if role == "activities":
        await register_activity_worker({"connection": dsn, "task_queue": "shared",
                                        "namespace": namespace},
                                       {"audit_log": audit_log}, "shared")
    elif role == "worker":
        register_interceptors()
        options: dict[str, Any] = {"lease_seconds": 2, "poll_seconds": 1}
        if cache_size is not None:
            options["cache_size"] = cache_size
        await Worker.create(connection=dsn, task_queue="icpt", workflow=journey,
                            namespace=namespace, options=options)
    else:
        raise SystemExit(f"unknown role {role!r}")
    print("ready", flush=True)
    await stop.wait()
    await memflow.shutdown()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3],
                     int(sys.argv[4]) if len(sys.argv) > 4 else None))
