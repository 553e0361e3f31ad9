"""``ActivityEnvironment``: run one activity function alone, as a worker would run it."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
from collections.abc import Callable
from typing import Any

from memflow import activity


class ActivityEnvironment:
    """Runs activity functions (``def`` or ``async def``) with ``memflow.activity.info()``
    filled in, records their heartbeats in ``heartbeats`` and delivers ``cancel()`` through
    ``memflow.activity.heartbeat()``, which then raises ``asyncio.CancelledError``."""

    def __init__(self, *, workflow_id: str = "test-workflow", task_queue: str = "test",
                 namespace: str = "memflow", attempt: int = 1):
        if isinstance(attempt, bool) or not isinstance(attempt, int) or attempt < 1:
            raise ValueError("attempt must be a positive int")
        self.workflow_id = workflow_id
        self.task_queue = task_queue
        self.namespace = namespace
        self.attempt = attempt
        self.heartbeats: list[Any] = []
        self.cancelled = False
        self._running: list[activity.ActivityInfo] = []

    def cancel(self) -> None:
        """Cancel the activities running (and those run later) in this environment."""
        self.cancelled = True
        for info in self._running:
            info.request_cancel()

    async def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run ``fn(*args)`` as an activity and return its result (or raise its error)."""
        if not callable(fn):
            raise TypeError(f"ActivityEnvironment.run: {fn!r} is not a function")
        name = getattr(fn, "__name__", type(fn).__name__)
        info = activity.ActivityInfo(name, self.attempt, self.workflow_id, self.task_queue,
                                     self.namespace, on_heartbeat=self.heartbeats.append)
        if self.cancelled:
            info.request_cancel()
        ctx = contextvars.copy_context()
        ctx.run(activity._current.set, info)
        loop = asyncio.get_running_loop()
        self._running.append(info)
        try:
            if inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
                    getattr(fn, "__call__", None)):  # noqa: B004
                result = await loop.create_task(fn(*args), context=ctx)
            else:
                result = await loop.run_in_executor(None, functools.partial(ctx.run, fn, *args))
            if inspect.isawaitable(result):
                result = await result
            return result
        finally:
            self._running.remove(info)
