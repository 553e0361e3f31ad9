"""A minimal event loop for one workflow thread, stepped by the engine until it is blocked.

Workflow code runs on this loop so that ``asyncio.gather``, tasks and futures behave as usual,
while the engine knows exactly when every branch is waiting on a durable result: the ready
queue is empty. Real timers and I/O are refused, since they would not survive a replay.
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
import time
from collections.abc import Callable, Coroutine
from typing import Any


class NotDurableError(RuntimeError):
    """Workflow code used a real timer or I/O, which cannot be replayed."""


class WorkflowLoop(asyncio.AbstractEventLoop):
    """Runs ready callbacks only; ``run_until_blocked`` returns when none are left."""

    def __init__(self) -> None:
        self._ready: collections.deque[asyncio.Handle] = collections.deque()
        self._running = False
        self._closed = False
        self.errors: list[dict[str, Any]] = []

    def run_until_blocked(self) -> None:
        """Run callbacks until no workflow branch can make progress without a durable result."""
        outer = asyncio.events._get_running_loop()
        asyncio.events._set_running_loop(self)
        self._running = True
        try:
            while self._ready:
                handle = self._ready.popleft()
                if not handle._cancelled:
                    handle._run()
        finally:
            self._running = False
            asyncio.events._set_running_loop(outer)

    # scheduling -----------------------------------------------------------------------------
    def call_soon(self, callback: Callable[..., Any], *args: Any,  # type: ignore[override]
                  context: contextvars.Context | None = None) -> asyncio.Handle:
        handle = asyncio.Handle(callback, args, self, context)
        self._ready.append(handle)
        return handle

    def call_soon_threadsafe(self, callback: Callable[..., Any], *args: Any,  # type: ignore[override]
                             context: contextvars.Context | None = None) -> asyncio.Handle:
        raise NotDurableError("threads cannot schedule work on a workflow")

    def call_later(self, delay: float, callback: Callable[..., Any], *args: Any,  # type: ignore[override]
                   context: contextvars.Context | None = None) -> asyncio.TimerHandle:
        if delay <= 0:
            self.call_soon(callback, *args, context=context)
            return asyncio.TimerHandle(self.time(), callback, args, self, context)
        raise NotDurableError("asyncio.sleep and real timers are not durable inside a workflow: "
                              "use `await workflow.sleep_for(...)`")

    def call_at(self, when: float, callback: Callable[..., Any], *args: Any,  # type: ignore[override]
                context: contextvars.Context | None = None) -> asyncio.TimerHandle:
        return self.call_later(when - self.time(), callback, *args, context=context)

    def time(self) -> float:
        return time.monotonic()

    def create_future(self) -> asyncio.Future[Any]:
        return asyncio.Future(loop=self)

    def create_task(self, coro: Coroutine[Any, Any, Any] | Any, *, name: str | None = None,
                    context: contextvars.Context | None = None) -> asyncio.Task[Any]:
        return asyncio.Task(coro, loop=self, name=name, context=context)

    def _timer_handle_cancelled(self, handle: asyncio.TimerHandle) -> None:
        pass

    # state ----------------------------------------------------------------------------------
    def is_running(self) -> bool:
        return self._running

    def is_closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        self._closed = True
        self._ready.clear()

    def get_debug(self) -> bool:
        return False

    def call_exception_handler(self, context: dict[str, Any]) -> None:
        self.errors.append(context)

    def default_exception_handler(self, context: dict[str, Any]) -> None:
        self.errors.append(context)

    def run_in_executor(self, executor: Any, func: Callable[..., Any], *args: Any) -> Any:  # type: ignore[override]
        raise NotDurableError("threads and blocking calls are not durable inside a workflow: "
                              "run them in an activity")
