"""Feature 5 — composition: workflows that start child workflows.

``exec_child`` starts a child workflow and waits for its result (its failure is raised in the
parent); ``start_child`` starts one and returns its id at once. Children are ordinary
workflows: on any queue, served by any worker, each with its own history.

    python examples/child_workflows.py

Uses MEMFLOW_DATABASE_URL, else the embedded Postgres; namespace ``example_children``
(or MEMFLOW_NAMESPACE).
"""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any

from memflow import Client, MemFlow, Worker, guid, workflow

NAMESPACE = os.environ.get("MEMFLOW_NAMESPACE", "example_children")


async def pack_item(item: str, quantity: int) -> dict[str, Any]:
    """A child workflow: packs one line of the order."""
    await workflow.sleep_for("20ms")
    return {"item": item, "boxes": (quantity + 9) // 10}


async def send_receipt(order_id: str, boxes: int) -> str:
    """A fire-and-forget child workflow."""
    return f"receipt for {order_id}: {boxes} boxes"


async def fulfil_order(order_id: str, lines: list[list[Any]]) -> dict[str, Any]:
    """The parent: one child per order line, in parallel, then a detached receipt child."""
    packed = await asyncio.gather(*(
        workflow.exec_child(args=[item, qty], task_queue="packing", workflow_name="pack_item",
                            workflow_id=f"{order_id}-pack-{item}")
        for item, qty in lines))
    boxes = sum(p["boxes"] for p in packed)
    receipt_id = await workflow.start_child(args=[order_id, boxes], workflow_name=send_receipt,
                                            workflow_id=f"{order_id}-receipt")
    return {"order_id": order_id, "packed": packed, "boxes": boxes, "receipt": receipt_id}


async def main() -> None:
    try:
        await Worker.create(task_queue="orders", namespace=NAMESPACE,
                            workflow=[fulfil_order, send_receipt])
        await Worker.create(task_queue="packing", workflow=pack_item, namespace=NAMESPACE)
        client = Client(namespace=NAMESPACE)
        order_id = f"order-{guid()}"
        handle = await client.workflow.start(
            args=[order_id, [["widgets", 25], ["gadgets", 8], ["gizmos", 40]]],
            task_queue="orders", workflow_name="fulfil_order", workflow_id=order_id)
        result = await handle.result(timeout=60)
        print("parent result:", json.dumps(result, sort_keys=True))
        receipt = client.workflow.get_handle("orders", "send_receipt", result["receipt"])
        print("receipt child:", await receipt.result(timeout=60))
        children = (await handle.describe()).children
        print("children:", sorted(f"{c['name']}={c['status']}" for c in children))
    finally:
        await MemFlow.shutdown()


if __name__ == "__main__":
    asyncio.run(main())
