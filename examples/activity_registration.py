"""Feature 4 — explicit activity registration: activity workers on their own queues.

``register_activity_worker`` serves activities on ``<queue>-activity`` from any process, on
any machine — before any workflow exists. A workflow reaches them with
``proxy_activities(task_queue=queue)``; the workflow worker itself needs none of their code.
This is the seed system's order example.

    python examples/activity_registration.py

Uses MEMFLOW_DATABASE_URL, else the embedded Postgres; namespace ``example_registration``
(or MEMFLOW_NAMESPACE).
"""

from __future__ import annotations

import asyncio
import os

from memflow import Client, MemFlow, Worker, guid, register_activity_worker, workflow

NAMESPACE = os.environ.get("MEMFLOW_NAMESPACE", "example_registration")
SENT: list[str] = []


class PaymentActivities:
    """An object's public methods are its activities."""

    async def process_payment(self, amount: float) -> str:
        return f"Processed ${amount:.2f}"

    async def send_email(self, to: str, message: str) -> None:
        SENT.append(f"to {to}: {message}")


async def audit_log(workflow_id: str, action: str) -> str:
    """A shared activity, on its own queue."""
    return f"{workflow_id} {action}"


async def order_workflow(order_id: str, amount: float) -> str:
    """Runs on queue 'orders'; its activities run on 'payment-activity' and
    'shared-activity'."""
    payment = workflow.proxy_activities(task_queue="payment",
                                        retry_policy={"maximum_attempts": 3})
    shared = workflow.proxy_activities(task_queue="shared")
    result: str = await payment.process_payment(amount)
    await payment.send_email("customer@example.com", f"Order {order_id}: {result}")
    await shared.audit_log(order_id, "paid")
    return result


async def main() -> None:
    try:
        # Activity workers first (any process, any machine): 'payment-activity', 'shared-activity'.
        await register_activity_worker(
            {"connection": None, "task_queue": "payment", "namespace": NAMESPACE},
            PaymentActivities(), "payment")
        await register_activity_worker(
            {"connection": None, "task_queue": "shared", "namespace": NAMESPACE},
            {"audit_log": audit_log}, "shared")
        # Then the workflow worker, which knows nothing about the activities' code.
        await Worker.create(task_queue="orders", workflow=order_workflow, namespace=NAMESPACE)
        client = Client(namespace=NAMESPACE)
        order_id = f"order-{guid()}"
        handle = await client.workflow.start(args=[order_id, 99.5], task_queue="orders",
                                             workflow_name="order_workflow",
                                             workflow_id=order_id)
        print("order result:", await handle.result(timeout=60))
        print("emails sent: ", SENT)
    finally:
        await MemFlow.shutdown()


if __name__ == "__main__":
    asyncio.run(main())
