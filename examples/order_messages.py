"""Message passing: an order workflow answering "status" queries and taking "add item" updates.

A query (``workflow.on_query``) reads the workflow's state without recording anything: a worker
answers it from the workflow's cached state, or by replaying its history. An update
(``workflow.on_update``) is a durable request: its validator may refuse it (nothing is
recorded), and an accepted one runs its handler exactly once — here the handler prices the
item with an activity — and returns the handler's result to the caller. The workflow waits
with ``workflow.wait_condition`` until it is checked out.

    python examples/order_messages.py

Uses MEMFLOW_DATABASE_URL, else the embedded Postgres; namespace ``example_messages``
(or MEMFLOW_NAMESPACE). The same workflow serves ``memflow worker
examples/order_messages.py:WORKFLOWS --activities examples/order_messages.py:ACTIVITIES -q
orders``, for ``memflow query ID status`` and ``memflow update ID add_item widget 2``.
"""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any

from memflow import Client, MemFlow, Worker, guid, workflow
from memflow.errors import UpdateRejectedError

NAMESPACE = os.environ.get("MEMFLOW_NAMESPACE", "example_messages")
PRICES = {"widget": 2.5, "gadget": 10.0, "gizmo": 7.25}


async def unit_price(item: str) -> float:
    """An activity: the price list of the shop."""
    return PRICES[item]


acts = workflow.proxy_activities(activities=[unit_price])


async def order(customer: str) -> dict[str, Any]:
    """An order that takes items until it is checked out, then returns its summary."""
    lines: list[dict[str, Any]] = []
    state = {"stage": "open"}

    def status() -> dict[str, Any]:
        return {"customer": customer, "stage": state["stage"], "items": len(lines),
                "total": round(sum(line["amount"] for line in lines), 2)}

    def check_item(item: str, quantity: int) -> None:
        if state["stage"] != "open":
            raise ValueError(f"the order is {state['stage']}")
        if item not in PRICES:
            raise ValueError(f"we do not sell {item!r}")
        if quantity < 1:
            raise ValueError("quantity must be at least 1")

    async def add_item(item: str, quantity: int) -> dict[str, Any]:
        price = await acts.unit_price(item)             # durable, run once
        lines.append({"item": item, "quantity": quantity, "amount": price * quantity})
        return status()

    def checkout() -> dict[str, Any]:
        state["stage"] = "checked out"
        return status()

    workflow.on_query("status", status)
    workflow.on_update("add_item", add_item, validator=check_item)
    workflow.on_update("checkout", checkout)
    await workflow.wait_condition(lambda: state["stage"] != "open", timeout="1 hour")
    return {"lines": lines, **status()}


WORKFLOWS = [order]
ACTIVITIES = {"unit_price": unit_price}


def _show(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


async def main() -> None:
    try:
        await Worker.create(task_queue="orders", namespace=NAMESPACE, workflow=order)
        client = Client(namespace=NAMESPACE)
        handle = await client.workflow.start(args=["Ada"], task_queue="orders",
                                             workflow_name="order",
                                             workflow_id=f"order-{guid()}")
        print("status at first:", _show(await handle.query("status")))
        print("after add_item:", _show(await handle.update("add_item", "widget", 4)))
        pending = await handle.start_update("add_item", "gizmo", 2)
        print("accepted update:", pending.update_id.startswith("H"))
        print("its result:", _show(await pending.result()))
        try:
            await handle.update("add_item", "unicorn", 1)
        except UpdateRejectedError as exc:
            print("rejected:", exc.message)
        print("status now:", _show(await handle.query("status")))
        print("checkout:", _show(await handle.update("checkout")))
        result = await handle.result(timeout=60)
        print("order result:", [(line["item"], line["quantity"]) for line in result["lines"]],
              result["total"])
        print("still answers queries when finished:", _show(await handle.query("status")))
    finally:
        await MemFlow.shutdown()


if __name__ == "__main__":
    asyncio.run(main())
