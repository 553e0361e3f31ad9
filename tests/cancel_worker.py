"""A worker process for cancellation tests: ``python -m tests.cancel_worker DSN NAMESPACE DIR``.

It serves the queue ``cxp`` with ``cxp_book`` (books through an activity that heartbeats until
told to stop, then compensates when cancelled). The activity writes ``DIR/told`` when its
``heartbeat()`` raises ``CancelledError``; the compensation writes ``DIR/refunded``.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

from memflow import activity, workflow
from tests.support import serve_worker

OUT = Path(sys.argv[3]) if len(sys.argv) > 3 else Path(".")


def cxp_hold(booking: str) -> str:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            activity.heartbeat()
        except asyncio.CancelledError:
            (OUT / "told").write_text(booking)
            raise
        time.sleep(0.05)
    return "held"


def cxp_refund(booking: str) -> str:
    with (OUT / "refunded").open("a") as f:
        f.write(booking + "\n")
    return f"refunded {booking}"


acts = workflow.proxy_activities(activities=[cxp_hold, cxp_refund],
                                 retry_policy={"maximum_attempts": 1})


async def cxp_book(booking: str) -> str:
    try:
        return await acts.cxp_hold(booking)
    except asyncio.CancelledError:
        return await acts.cxp_refund(booking)


if __name__ == "__main__":
    serve_worker("cxp", [cxp_book], options={"lease_seconds": 2, "poll_seconds": 2})
