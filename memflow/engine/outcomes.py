"""How a pass reads endings of workflow code that are not a plain return or exception."""

from __future__ import annotations

from memflow.errors import MemFlowFatalError

CANCELLED_MESSAGE = (
    "the workflow raised asyncio.CancelledError (a cancelled task or an explicit raise); "
    "workflow code cannot cancel its own run, so the run fails")


def cancelled_by_workflow_code() -> MemFlowFatalError:
    """The error that ends a run whose code raised ``asyncio.CancelledError`` (or let an
    engine interruption escape) while the engine was not stopping it: a fatal failure, never
    an interruption that would leave the run ``running`` with no task to move it."""
    return MemFlowFatalError(CANCELLED_MESSAGE)
