"""``workflow.info()``: what a workflow run knows about itself (a frozen snapshot)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from memflow.engine.thread import current_thread


@dataclass(frozen=True)
class WorkflowInfo:
    """Facts about the running workflow. ``scheduled_at`` is the tick's time (UTC) for a run
    started by a schedule, else None. More fields may be added later."""

    workflow_id: str
    run_id: str
    workflow_name: str
    task_queue: str
    namespace: str
    attempt: int
    scheduled_at: datetime | None = None
    schedule_id: str | None = None


def info() -> WorkflowInfo:
    """The running workflow's ``WorkflowInfo`` (only inside a workflow function)."""
    t = current_thread("workflow.info()")
    config = t.config or {}
    scheduled = config.get("$scheduled_at")
    return WorkflowInfo(
        workflow_id=t.ref.workflow_id, run_id=t.ref.run_id, workflow_name=t.name,
        task_queue=t.ref.task_queue, namespace=t.namespace, attempt=t.attempt,
        scheduled_at=None if scheduled is None else datetime.fromisoformat(scheduled),
        schedule_id=config.get("$schedule_id"))
