"""Versions of one workflow, ``order``, as a deploy changes it, and a worker process serving
one of them: ``python -m tests.deploy_worker DSN NAMESPACE VERSION``.

Activities log every execution in the table ``<namespace>.exec_log`` (created by the test)
when it exists, and count them in ``CALLS`` (this process).
"""

from __future__ import annotations

import asyncio
import collections
import sys

import psycopg

from memflow import Worker, activity, workflow
from tests.support import DSN

CALLS: collections.Counter[str] = collections.Counter()


def _log(name: str) -> None:
    CALLS[name] += 1
    namespace = activity.info().namespace
    with psycopg.connect(DSN, autocommit=True) as conn:
        conn.execute(f'INSERT INTO "{namespace}".exec_log (name) VALUES (%s)', (name,))


def charge(x: int) -> str:
    _log("charge")
    return f"charged {x}"


def reserve(x: int) -> str:
    _log("reserve")
    return f"reserved {x}"


def receipt(x: int) -> str:
    _log("receipt")
    return f"receipt {x}"


def ship(x: int) -> str:
    _log("ship")
    return f"shipped {x}"


acts = workflow.proxy_activities(activities=[charge, reserve, receipt, ship])


async def order_v1(x: int) -> list[str]:
    """The first version: charge, wait for "go", ship."""
    a = await acts.charge(x)
    await workflow.wait_for(f"go-{x}")
    return [a, await acts.ship(x)]


async def order_v2_renamed(x: int) -> list[str]:
    """A bad deploy: another activity at step 0."""
    a = await acts.reserve(x)
    await workflow.wait_for(f"go-{x}")
    return [a, await acts.ship(x)]


async def order_v2_timer(x: int) -> list[str]:
    """A bad deploy: a timer where the history has the wait."""
    a = await acts.charge(x)
    await workflow.sleep_for(0.1)
    await workflow.wait_for(f"go-{x}")
    return [a, await acts.ship(x)]


async def order_v2_short(x: int) -> list[str]:
    """A bad deploy: returns before reaching the recorded wait."""
    return [await acts.charge(x)]


async def order_v2_patched(x: int) -> list[str]:
    """A safe deploy: the new receipt step behind a patch."""
    a = await acts.charge(x)
    out = [a]
    if workflow.patched("receipt"):
        out.append(await acts.receipt(x))
    await workflow.wait_for(f"go-{x}")
    return [*out, await acts.ship(x)]


async def order_v3_deprecated(x: int) -> list[str]:
    """Step 2 of the life cycle: only the new path, both kinds of history accepted."""
    a = await acts.charge(x)
    workflow.deprecate_patch("receipt")
    out = [a, await acts.receipt(x)]
    await workflow.wait_for(f"go-{x}")
    return [*out, await acts.ship(x)]


VERSIONS = {"v1": order_v1, "v2_renamed": order_v2_renamed, "v2_timer": order_v2_timer,
            "v2_short": order_v2_short, "v2_patched": order_v2_patched,
            "v3_deprecated": order_v3_deprecated}


async def start_worker(dsn: str, namespace: str, version: str, **options: object) -> Worker:
    """A worker serving queue ``deploy`` with ``version`` registered as ``order``."""
    return await Worker.create(connection=dsn, task_queue="deploy",
                               workflow={"order": VERSIONS[version]}, namespace=namespace,
                               options={"failure_backoff_seconds": 0.2, "poll_seconds": 1,
                                        "lease_seconds": 2, **options})


async def main() -> None:
    worker = await start_worker(sys.argv[1], sys.argv[2], sys.argv[3])
    print("ready", flush=True)
    await worker.run()


# for ``memflow replay --workflow tests.deploy_worker:V1`` (the name the runs are recorded under)
V1 = {"order": order_v1}
V2_RENAMED = {"order": order_v2_renamed}
V2_PATCHED = {"order": order_v2_patched}


if __name__ == "__main__":
    asyncio.run(main())
