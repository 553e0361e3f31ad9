"""Deterministic time and ids inside workflows: ``workflow.now()`` and ``workflow.guid()``."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from memflow.commands import Now
from memflow.engine.thread import current_thread


def now() -> datetime:
    """The time of the current pass (timezone-aware, UTC): the same on every replay. It is
    the namespace's engine clock when the pass began, so it follows a time-skipping test
    environment.

    The first call after each delivery of results (and in the first pass) takes a step slot
    and records the time as a step of kind ``now``; later calls before the next delivery
    return the same value without taking a slot. On replay the recorded value comes back.
    """
    thread = current_thread("workflow.now()")
    cached = thread.pass_time
    if cached is not None and cached[0] == thread.deliveries:
        return cached[1]
    idx, rec = thread.next_slot("now")
    if rec is not None and rec.get("status") == "done" and isinstance(rec.get("result"), str):
        value = datetime.fromisoformat(rec["result"])
    else:
        # the engine clock when the pass was taken (a test environment's clock moves with it)
        value = thread.clock.astimezone(UTC) if thread.clock is not None else datetime.now(UTC)
        thread.commands.append(Now(idx, value))
    thread.pass_time = (thread.deliveries, value)
    return value


def guid() -> str:
    """A deterministic id, the same on every replay (``H`` and 32 hex digits, like
    ``memflow.guid()``): derived from the run id, the thread and the counter slot it takes
    (a slot, like ``workflow.random()``, but no recorded step). Outside workflows use
    ``memflow.guid()``, which is random."""
    thread = current_thread("workflow.guid()")
    idx, _ = thread.next_slot("guid")
    seed = f"memflow-guid/{thread.ref.run_id}/{thread.ref.dim}/{idx}".encode()
    return "H" + hashlib.sha256(seed).hexdigest()[:32]
