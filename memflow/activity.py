"""What activity functions may call: ``from memflow import activity``."""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

_current: contextvars.ContextVar[ActivityInfo | None] = contextvars.ContextVar(
    "memflow_activity", default=None)


@dataclass
class ActivityInfo:
    """The activity running now: its name, attempt and the workflow that called it.

    ``on_heartbeat`` (if set) is called with the details of each heartbeat; once
    ``request_cancel()`` has been called, ``heartbeat()`` raises ``asyncio.CancelledError``.
    """

    activity_name: str
    attempt: int
    workflow_id: str
    task_queue: str
    namespace: str = "memflow"
    run_id: str = ""
    last_heartbeat: float = field(default_factory=time.monotonic)
    details: Any = None
    on_heartbeat: Callable[[Any], None] | None = field(default=None, repr=False)
    cancel_requested: bool = False

    def request_cancel(self) -> None:
        """Ask the activity to stop: its next ``heartbeat()`` raises ``CancelledError``."""
        self.cancel_requested = True


def info() -> ActivityInfo:
    """Facts about the activity running now (only inside an activity)."""
    current = _current.get()
    if current is None:
        raise RuntimeError("activity.info() can only be called inside an activity")
    return current


def heartbeat(details: Any = None) -> None:
    """Tell MemFlow the activity is alive (needed when it has a ``heartbeat_timeout``).

    Raises ``asyncio.CancelledError`` when the activity has been asked to stop.
    """
    current = _current.get()
    if current is not None:
        current.last_heartbeat = time.monotonic()
        current.details = details
        if current.on_heartbeat is not None:
            current.on_heartbeat(details)
        if current.cancel_requested:
            raise asyncio.CancelledError(f"activity {current.activity_name!r} was cancelled")


class ActivityLogger(logging.LoggerAdapter[logging.Logger]):
    """Inside an activity, records carry ``workflow_id``, ``run_id``, ``activity_name``,
    ``attempt``, ``task_queue`` and ``namespace`` as ``extra``; elsewhere it logs plainly."""

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, Any]:
        """Add the running activity's identity to the record's ``extra``."""
        current = _current.get()
        if current is not None:
            extra = {"workflow_id": current.workflow_id, "run_id": current.run_id,
                     "activity_name": current.activity_name, "attempt": current.attempt,
                     "task_queue": current.task_queue, "namespace": current.namespace}
            extra.update(kwargs.get("extra") or {})
            kwargs["extra"] = extra
        return msg, kwargs


logger = ActivityLogger(logging.getLogger("memflow.activity"), {})
