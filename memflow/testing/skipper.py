"""Automatic time skipping: jump a namespace's clock whenever it is idle and work is due later.

The skipper wakes up on events, not on a fast poll: any notification on the namespace's channel
(a timer, a retry or a wake-up was recorded, a workflow changed state) and the end of any task
run by the environment's workers. A slow poll is only a safety net for workers the environment
does not know about.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from memflow.store.notify import Notifier
from memflow.store.testclock import MovableClock, Skip

log = logging.getLogger("memflow.testing")

SAFETY_POLL_SECONDS = 1.0


class AutoSkipper:
    """Skips idle time of one namespace; ``skip()`` also serves ``env.sleep``."""

    def __init__(self, clock: MovableClock, on_skew: Callable[[float], None],
                 on_jump: Callable[[], None]):
        self.clock = clock
        self.on_skew = on_skew
        self.on_jump = on_jump
        self.paused = 0
        self.caps: list[datetime] = []
        self._event = asyncio.Event()
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._waiters: set[asyncio.Event] = set()

    async def start(self, notifier: Notifier, namespace: str) -> None:
        """Listen to the namespace's notifications and start skipping."""
        self._unsubscribe = notifier.subscribe(namespace, "*", lambda _key: self.poke())
        await notifier.wait_listening(namespace)
        self._task = asyncio.create_task(self._run(), name=f"memflow-skipper-{namespace}")

    async def stop(self) -> None:
        """Stop skipping."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def poke(self) -> None:
        """Something changed in the namespace: look again whether time can be skipped."""
        self._event.set()
        for waiter in self._waiters:
            waiter.set()

    def wrap(self, handler: Callable[[Any], Awaitable[None]]) -> Callable[[Any], Awaitable[None]]:
        """A task handler that pokes the skipper each time a task ends."""
        async def handle(task: Any) -> None:
            try:
                await handler(task)
            finally:
                self.poke()
        return handle

    async def skip(self, limit: datetime | None) -> Skip:
        """One skip attempt (see ``MovableClock.skip``), serialised with the others."""
        async with self._lock:
            outcome = await self.clock.skip(limit)
        self.on_skew(outcome.skew)
        if outcome.jumped:
            self.on_jump()  # the jump's NOTIFY wakes workers too, unless the listener is down
        return outcome

    async def wait_change(self, timeout: float = SAFETY_POLL_SECONDS) -> None:
        """Wait for the next poke (or the safety-net poll)."""
        event = asyncio.Event()
        self._waiters.add(event)
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), timeout)
        finally:
            self._waiters.discard(event)

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._event.wait(), SAFETY_POLL_SECONDS)
            self._event.clear()
            if self.paused:
                continue
            try:
                # while env.sleep() runs, automatic skips stop at its end
                await self.skip(min(self.caps) if self.caps else None)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the store already retried through reconnects
                log.warning("time skipping failed: %s", exc)
