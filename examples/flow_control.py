"""Flow control — at most 2 payment calls at once, VIP orders first, bursts coalesced.

Limits live in Postgres and every worker's claim holds them: ``concurrency`` on the activity
queue ``payments-activity`` caps running payment calls across the fleet; ``concurrency=1`` on
the workflow queue ``shop`` makes orders wait (status ``pending``) and start by ``priority``,
highest first; ``debounce`` turns a burst of starts of one id into one run with the last args.

    python examples/flow_control.py

Uses MEMFLOW_DATABASE_URL, else the embedded Postgres; namespace ``example_flow``
(or MEMFLOW_NAMESPACE).
"""

from __future__ import annotations

import asyncio
import os

from memflow import Client, MemFlow, Worker, register_activity_worker, workflow

NAMESPACE = os.environ.get("MEMFLOW_NAMESPACE", "example_flow")
in_flight = 0
most_in_flight = 0
charged: list[str] = []


async def charge(order_id: str, amount: float) -> str:
    """An activity: a payment API that allows few calls at once."""
    global in_flight, most_in_flight
    in_flight += 1
    most_in_flight = max(most_in_flight, in_flight)
    await asyncio.sleep(0.2)
    in_flight -= 1
    charged.append(order_id)
    return f"{order_id} charged {amount:.2f}"


async def checkout(order_ids: list[str]) -> list[str]:
    """Charge several orders at once (the payment queue lets 2 run at a time)."""
    pay = workflow.proxy_activities(task_queue="payments")
    return list(await asyncio.gather(*(pay.charge(o, 10.0) for o in order_ids)))


async def order(order_id: str) -> str:
    """One order: a single payment call."""
    pay = workflow.proxy_activities(task_queue="payments")
    return str(await pay.charge(order_id, 25.0))


async def reindex(version: str) -> str:
    """Rebuild a search index from the given version of a document."""
    return f"reindexed {version}"


async def main() -> None:
    try:
        client = Client(namespace=NAMESPACE)
        await client.queue.configure("payments-activity", concurrency=2)
        await client.queue.configure("shop")  # no limits (from an earlier run)
        await register_activity_worker({"connection": None, "task_queue": "payments",
                                        "namespace": NAMESPACE}, [charge], "payments")
        await Worker.create(task_queue="shop", workflow=[checkout, order, reindex],
                            namespace=NAMESPACE)

        cart = [f"cart-{i}" for i in range(6)]
        handle = await client.workflow.start(args=[cart], task_queue="shop",
                                             workflow_name=checkout)
        await handle.result(timeout=60)
        print("payment calls at once, at most:", most_in_flight)

        # One order at a time on "shop": the others wait, VIP (priority 10) first.
        await client.queue.configure("shop", concurrency=1)
        charged.clear()
        first = await client.workflow.start(args=["first"], task_queue="shop",
                                            workflow_name=order)
        while (await first.describe()).status != "running":  # admitted: it holds the slot
            await asyncio.sleep(0.02)
        waiting = [await client.workflow.start(args=[oid], task_queue="shop",
                                               workflow_name=order, priority=prio)
                   for oid, prio in [("regular-1", 0), ("vip-1", 10), ("regular-2", 0),
                                     ("vip-2", 10)]]
        print("a waiting order is:", (await waiting[-1].describe()).status)
        await first.result(timeout=60)
        await asyncio.gather(*(h.result(timeout=60) for h in waiting))
        print("order of the waiting orders:", charged[1:])
        desc = await client.queue.describe("shop")
        print("shop queue:", desc.limits["concurrency"], "at once,", desc.running, "running")
        await client.queue.configure("shop")  # remove the limit: nothing waits any more

        # A burst of starts of one id within the debounce window: one run, the last args.
        for version in ("v1", "v2", "v3"):
            h = await client.workflow.start(args=[version], task_queue="shop",
                                            workflow_name=reindex, workflow_id="reindex-doc-7",
                                            debounce="0.5 seconds")
            await asyncio.sleep(0.1)
        print("debounced burst:", await h.result(timeout=60))
        await client.queue.configure("payments-activity")
    finally:
        await MemFlow.shutdown()


if __name__ == "__main__":
    asyncio.run(main())
