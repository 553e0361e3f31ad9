"""Waiting for a notification with a deadline, as a client waits for a result or an update."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable


async def until_notified(event: asyncio.Event, deadline: float | None, safety: float,
                         late: Callable[[], str]) -> None:
    """Wait until ``event`` is set (by a notification), for ``safety`` seconds at most (the
    guard against a lost notification: the caller then reads the state again); raises
    ``TimeoutError(late())`` once the event loop's clock is past ``deadline``."""
    wait = safety
    if deadline is not None:
        wait = min(wait, deadline - asyncio.get_running_loop().time())
        if wait <= 0:
            raise TimeoutError(late())
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), wait)
