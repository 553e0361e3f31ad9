"""How a pass reads endings of workflow code that are not a plain return or exception."""

from __future__ import annotations

from typing import Any

from memflow import payload
from memflow.engine.thread import ThreadRun
from memflow.errors import MemFlowCancelledError, MemFlowError, MemFlowFatalError, error_to_dict
from memflow.retry import RetryPolicy

CANCELLED_MESSAGE = (
    "the workflow raised asyncio.CancelledError (a cancelled task or an explicit raise); "
    "workflow code cannot cancel its own run, so the run fails")


def cancelled_by_workflow_code() -> MemFlowFatalError:
    """The error that ends a run whose code raised ``asyncio.CancelledError`` (or let an
    engine interruption escape) while the engine was not stopping it: a fatal failure, never
    an interruption that would leave the run ``running`` with no task to move it."""
    return MemFlowFatalError(CANCELLED_MESSAGE)


def cancelled_finish(workflow_id: str, dim: str, reason: dict[str, Any] | None
                     ) -> tuple[str, str | None, str | None]:
    """How a thread ends when its run's cancellation escaped it (``reason``: the cancel
    marker's document): the main thread (``dim`` ``""``) ends the run ``cancelled``, a hook
    thread fails; both with ``MemFlowCancelledError`` (499)."""
    message = (reason or {}).get("message") or f"workflow {workflow_id} was cancelled"
    error = payload.dumps(error_to_dict(MemFlowCancelledError(str(message))), "error")
    return ("cancelled" if dim == "" else "failed", None, error)


WORKFLOW_RETRY_DEFAULT = RetryPolicy(maximum_attempts=1)


def workflow_policy(thread: ThreadRun) -> RetryPolicy:
    """The run's retry policy, from its config (one attempt unless it says more)."""
    try:
        # keys starting with "$" are facts of the run (e.g. a schedule's $scheduled_at)
        retry = {k: v for k, v in (thread.config or {}).items() if not k.startswith("$")}
        return RetryPolicy.of(retry or None, WORKFLOW_RETRY_DEFAULT)
    except (TypeError, ValueError):
        return WORKFLOW_RETRY_DEFAULT


def error_json(err: MemFlowError) -> str:
    """``err`` as the JSON the store keeps."""
    return payload.dumps(error_to_dict(err), "error")


def immediate_row(idx: int, row: dict[str, Any]) -> dict[str, Any]:
    """A step row for an immediate result (statements without a status report 'done')."""
    if "status" in row:
        return {"idx": idx, "status": row["status"], "result": row.get("result"),
                "error": row.get("error")}
    return {"idx": idx, "status": "done", "result": None, "error": None}
