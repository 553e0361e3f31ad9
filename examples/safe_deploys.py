"""Long-lived workflows and safe deploys: continue-as-new, a bad deploy and its rollback,
``workflow.patched()``, and the offline replayer.

A billing workflow charges one period per run and continues as new, so its history never
grows. Version 2 sends a receipt before the charge. Deployed *without* a patch, it cannot replay
the runs in flight: their passes fail with a ``NonDeterminismError`` while the runs stay
running, and rolling back lets them go on, with no charge made twice. Deployed *with*
``workflow.patched("receipt")``, old histories replay the old path and new runs take the new
one. Finally the saved history of a run is replayed offline against each version, as a CI check
before a deploy would.

    python examples/safe_deploys.py

Uses MEMFLOW_DATABASE_URL, else the embedded Postgres; namespace ``example_deploys``
(or MEMFLOW_NAMESPACE).
"""

from __future__ import annotations

import asyncio
import os
from collections import Counter

from memflow import Client, MemFlow, Worker, workflow
from memflow.errors import NonDeterminismError
from memflow.testing import Replayer

NAMESPACE = os.environ.get("MEMFLOW_NAMESPACE", "example_deploys")
CALLS: Counter[str] = Counter()


async def charge(account: str, period: int) -> str:
    CALLS["charge"] += 1
    return f"{account}: charged period {period}"


async def send_receipt(account: str, period: int) -> str:
    CALLS["receipt"] += 1
    return f"{account}: receipt for period {period}"


acts = workflow.proxy_activities(activities=[charge, send_receipt])


async def billing_v1(account: str, period: int = 1, last: int = 3) -> str:
    """Version 1: charge the period, wait for it to close, go on with the next period."""
    done = await acts.charge(account, period)
    await workflow.wait_for(f"close-{account}-{period}")
    if period < last:
        workflow.continue_as_new(account, period + 1, last)
    return done


async def billing_v2_unsafe(account: str, period: int = 1, last: int = 3) -> str:
    """Version 2 without a patch: a receipt is sent before the charge."""
    await acts.send_receipt(account, period)
    done = await acts.charge(account, period)
    await workflow.wait_for(f"close-{account}-{period}")
    if period < last:
        workflow.continue_as_new(account, period + 1, last)
    return done


async def billing_v2(account: str, period: int = 1, last: int = 3) -> str:
    """Version 2, patched: runs that already charged keep the old path."""
    if workflow.patched("receipt-first"):
        await acts.send_receipt(account, period)
    done = await acts.charge(account, period)
    await workflow.wait_for(f"close-{account}-{period}")
    if period < last:
        workflow.continue_as_new(account, period + 1, last)
    return done


async def serve(version: object) -> Worker:
    """A worker running ``version`` under the name the runs are recorded with."""
    return await Worker.create(task_queue="billing", workflow={"billing": version},
                               namespace=NAMESPACE,
                               options={"cache_size": 0, "failure_backoff_seconds": 0.2})


async def main() -> None:
    try:
        client = Client(namespace=NAMESPACE)
        worker = await serve(billing_v1)
        h = await client.workflow.start(args=["acme"], task_queue="billing",
                                        workflow_name="billing")
        latest = client.workflow.get_handle(workflow_id=h.workflow_id)
        await client.workflow.signal("close-acme-1", None)
        while CALLS["charge"] < 2:  # period 2's run has charged and waits for its close
            await asyncio.sleep(0.05)
        d = await latest.describe()
        print("period 1's run:", (await h.describe()).status, "| period 2's run continued "
              "from it:", d.continued_from == h.run_id)
        await worker.stop()
        worker = await serve(billing_v2_unsafe)  # the bad deploy
        await client.workflow.signal("close-acme-2", None)
        while not ((await latest.describe()).error or {}).get("type"):
            await asyncio.sleep(0.05)
        d = await latest.describe()
        assert d.error is not None
        print("bad deploy: status", d.status, "|", d.error["type"], "at step",
              d.error["step"], "recorded", d.error["recorded"]["name"], "requested",
              d.error["requested"]["name"])
        history = await latest.fetch_history()
        await worker.stop()
        worker = await serve(billing_v2)  # roll forward to the patched version
        while CALLS["charge"] < 3:
            await asyncio.sleep(0.05)
        await client.workflow.signal("close-acme-3", None)
        print("result:", await h.result(timeout=30))
        print("activity calls:", dict(sorted(CALLS.items())))
        for name, version in (("v1", billing_v1), ("v2 unsafe", billing_v2_unsafe),
                              ("v2 patched", billing_v2)):
            try:
                await Replayer({"billing": version}).replay(history)
                print(f"period 2's history replays with {name}: ok")
            except NonDeterminismError as err:
                print(f"period 2's history replays with {name}: no, diverges at step "
                      f"{err.step}")
    finally:
        await MemFlow.shutdown()


if __name__ == "__main__":
    asyncio.run(main())
