"""Workflow timeouts: ``execution_timeout`` and ``run_timeout`` of a start or a child start.

Both are checked here and turned into one deadline — the run's *deadline task* (kind ``x``,
due when the nearer of the two passes; ``memflow.store.control`` ends the run when a worker
claims it). Its payload keeps both bounds (``execution`` and ``run``: seconds and the error
each fails the run with) so that continue-as-new can re-arm the task for the next run: the
execution deadline stays where it was (it bounds the whole chain, measured from the first
run's start), the run deadline starts again with each run. The bound that passes first names
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
    task: ``error`` (the ``MemFlowTimeoutError`` the run fails with when the nearer bound
    passes) and, per bound given, ``execution``/``run`` ``{"seconds", "error"}``. Bad values
    raise ``ValueError`` or ``TypeError`` naming the option."""
    bounds: dict[str, dict[str, Any]] = {}
    for name, value in (("execution_timeout", execution_timeout), ("run_timeout", run_timeout)):
        if value is None:
            continue
        seconds = parse_duration(value, name)
        if seconds <= 0:
            raise ValueError(f"{name} must be a positive duration, got {value!r}")
        err = MemFlowTimeoutError(f"workflow {workflow_id} timed out: its {name} of "
                                  f"{seconds:g}s passed")
        bounds[name.split("_")[0]] = {"seconds": seconds, "error": err.to_dict()}
    if not bounds:
        return None, None
    nearer = min(bounds.values(), key=lambda b: b["seconds"])
    return nearer["seconds"], payload.dumps({"error": nearer["error"], **bounds}, "timeout")
