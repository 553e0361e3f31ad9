"""Workflow timeouts: ``execution_timeout`` and ``run_timeout`` of a start or a child start.

Both are checked here and turned into one deadline — the run's *deadline task* (kind ``x``,
due when the nearer of the two passes; ``memflow.store.control`` ends the run when a worker
claims it). With no continue-as-new yet, a run is its whole execution (its retries run in
the same run), so both bounds are measured from the start; the one that passes first names
itself in the error.
"""

from __future__ import annotations

from typing import Any

from memflow import payload
from memflow.durations import parse_duration
from memflow.errors import MemFlowTimeoutError


def workflow_timeout(execution_timeout: Any, run_timeout: Any,
                     workflow_id: str) -> tuple[float | None, str | None]:
    """The seconds until the run's deadline (None: no timeout) and the payload of its deadline
    task (the ``MemFlowTimeoutError`` the run fails with). Bad values raise ``ValueError`` or
    ``TypeError`` naming the option."""
    bounds = []
    for name, value in (("execution_timeout", execution_timeout), ("run_timeout", run_timeout)):
        if value is None:
            continue
        seconds = parse_duration(value, name)
        if seconds <= 0:
            raise ValueError(f"{name} must be a positive duration, got {value!r}")
        bounds.append((seconds, name))
    if not bounds:
        return None, None
    seconds, name = min(bounds)
    err = MemFlowTimeoutError(f"workflow {workflow_id} timed out: its {name} of {seconds:g}s "
                              "passed")
    return seconds, payload.dumps({"error": err.to_dict()}, "timeout")
