"""The seed's order workflow, run end to end: ``memflow demo``."""

from __future__ import annotations

import time
from typing import Any

from memflow import workflow


async def process_payment(amount: float) -> str:
    """Charge the customer (the demo only formats a receipt)."""
    return f"Processed ${amount:.2f}"


async def send_email(to: str, message: str) -> None:
    """Send the confirmation (the demo only pretends)."""
    return None


async def order_workflow(order_id: str, amount: float) -> str:
    """Take a payment, then send a confirmation: two durable activities on 'payment'."""
    acts = workflow.proxy_activities(task_queue="payment", retry_policy={"maximum_attempts": 3})
    result: str = await acts.process_payment(amount)
    await acts.send_email("customer@example.com", f"Order {order_id}: {result}")
    return result


async def run_demo(connection: Any = None, namespace: str = "memflow_demo",
                   echo: Any = print) -> str:
    """Start the workers, run one order workflow and return its result."""
    from memflow import Client, MemFlow, Worker, guid, register_activity_worker

    started = time.perf_counter()
    try:
        await register_activity_worker(
            {"connection": connection, "task_queue": "payment", "namespace": namespace},
            {"process_payment": process_payment, "send_email": send_email}, "payment")
        await Worker.create(connection=connection, task_queue="orders",
                            workflow=order_workflow, namespace=namespace)
        client = Client(connection=connection, namespace=namespace)
        order_id = guid()
        handle = await client.workflow.start(args=[order_id, 99.5], task_queue="orders",
                                             workflow_name="order_workflow",
                                             workflow_id=f"order-{order_id}")
        echo(f"started workflow {handle.workflow_id}")
        result: str = await handle.result(timeout=60)
        steps = (await handle.export())["timeline"]
        for step in steps:
            echo(f"  step {step['index']}: {step['kind']} {step['name']} -> {step['result']!r} "
                 f"({step['duration_ms']} ms)")
        echo(f"result: {result!r} in {time.perf_counter() - started:.2f}s")
        return result
    finally:
        await MemFlow.shutdown()
