"""Cancellation: a booking saga that compensates when it is cancelled.

A trip is booked in steps — a flight, a hotel, then a slow card payment. When the traveller
cancels (``handle.cancel``), ``asyncio.CancelledError`` is raised in the workflow at the call
it is waiting on (the payment); the payment activity is abandoned and told through
``activity.heartbeat()``; the workflow catches the error and undoes, with more durable
activities, what it had booked, then returns normally. A second trip does not catch the
cancellation and ends ``"cancelled"``; a third waits for an approval past its
``run_timeout`` and ends ``"timed_out"``.

    python examples/booking_saga.py

Uses MEMFLOW_DATABASE_URL, else the embedded Postgres; namespace ``example_saga`` (or
MEMFLOW_NAMESPACE). From the command line, ``memflow cancel ID`` does what
``handle.cancel()`` does here.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from typing import Any

from memflow import Client, MemFlow, Worker, activity, guid, workflow
from memflow.errors import MemFlowCancelledError, MemFlowTimeoutError

NAMESPACE = os.environ.get("MEMFLOW_NAMESPACE", "example_saga")
CHARGING = threading.Event()     # set when the payment activity has started
TOLD: list[str] = []             # payments that heard of their cancellation


async def book_flight(trip: str) -> str:
    """An activity: reserve a seat."""
    return f"flight to {trip}"


async def book_hotel(trip: str) -> str:
    """An activity: reserve a room."""
    return f"hotel in {trip}"


def charge_card(trip: str) -> str:
    """An activity: a slow payment authorisation that heartbeats while it waits."""
    CHARGING.set()
    for _ in range(600):
        try:
            activity.heartbeat()
        except asyncio.CancelledError:  # the run was cancelled: stop, nothing is recorded
            TOLD.append(trip)
            raise
        time.sleep(0.05)
    return f"charged for {trip}"


async def undo(booking: str) -> str:
    """An activity: the compensation of one booking."""
    return f"cancelled {booking}"


acts = workflow.proxy_activities(activities=[book_flight, book_hotel, charge_card, undo],
                                 retry_policy={"maximum_attempts": 1})


async def book_trip(trip: str) -> dict[str, Any]:
    """Book a trip; when cancelled, undo what was booked (newest first) and say so."""
    booked: list[str] = []
    try:
        booked.append(await acts.book_flight(trip))
        booked.append(await acts.book_hotel(trip))
        await acts.charge_card(trip)
        return {"trip": trip, "status": "booked", "bookings": booked}
    except asyncio.CancelledError:
        # the workflow goes on after a caught cancellation: these are durable calls too
        undone = [await acts.undo(b) for b in reversed(booked)]
        return {"trip": trip, "status": "cancelled by the traveller", "undone": undone}


async def book_without_compensation(trip: str) -> str:
    """Lets the cancellation escape: the run ends with status "cancelled"."""
    await acts.book_flight(trip)
    await workflow.sleep_for("1 day")
    return "booked"


async def wait_for_approval(trip: str) -> str:
    """Waits for a manager's approval; started with a run_timeout."""
    return await workflow.wait_for(f"approve-{trip}")


async def _waiting_on(client: Client, handle: Any, kind: str) -> None:
    ns = await client._namespace(NAMESPACE)
    while not any(s["kind"] == kind and s["status"] == "pending"
                  for s in await ns.workflows.steps(handle.run_id)):
        await asyncio.sleep(0.05)


async def main() -> None:
    await Worker.create(task_queue="trips", namespace=NAMESPACE,
                        workflow=[book_trip, book_without_compensation, wait_for_approval],
                        activities=[book_flight, book_hotel, charge_card, undo])
    client = Client(namespace=NAMESPACE)

    # 1. cancelled while paying: the saga compensates and completes
    handle = await client.workflow.start(args=["Lisbon"], task_queue="trips",
                                         workflow_name=book_trip, workflow_id=f"trip-{guid()}")
    await asyncio.to_thread(CHARGING.wait, 30)
    await handle.cancel("the traveller changed plans")
    print("saga result:", json.dumps(await handle.result(timeout=30), sort_keys=True))
    print("saga status:", (await handle.describe()).status)
    for _ in range(100):                  # the payment hears of it at its next heartbeat
        if TOLD:
            break
        await asyncio.sleep(0.05)
    print("payment told to stop:", TOLD == ["Lisbon"])
    await handle.cancel()                 # a finished run: cancelling does nothing
    print("cancelling again changes nothing:", (await handle.describe()).status)

    # 2. the cancellation escapes: status "cancelled", result() raises (code 499)
    plain = await client.workflow.start(args=["Oslo"], task_queue="trips",
                                        workflow_name=book_without_compensation,
                                        workflow_id=f"trip-{guid()}")
    await _waiting_on(client, plain, "sleep")
    await plain.cancel()
    try:
        await plain.result(timeout=30)
    except MemFlowCancelledError as err:
        print("uncompensated trip:", (await plain.describe()).status, err.code)

    # 3. a workflow timeout: the database ends the run when its run_timeout passes
    late = await client.workflow.start(args=["Rome"], task_queue="trips",
                                       workflow_name=wait_for_approval,
                                       workflow_id=f"trip-{guid()}", run_timeout="1 second")
    try:
        await late.result(timeout=30)
    except MemFlowTimeoutError as err:
        print("approval never came:", (await late.describe()).status, err.code)
    await MemFlow.shutdown()


if __name__ == "__main__":
    asyncio.run(main())
