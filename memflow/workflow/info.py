"""``workflow.info()``: what a workflow run knows about itself (a frozen snapshot)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from memflow.engine.thread import current_thread

# Past these, ``continue_as_new_suggested`` turns true (replays get long).
SUGGEST_STEPS = 10_000
SUGGEST_BYTES = 20 * 1024 * 1024


@dataclass(frozen=True)
class WorkflowInfo:
    """Facts about the running workflow. ``scheduled_at`` is the tick's time (UTC) for a run
    started by a schedule, else None. ``first_run_id`` is the first run of the run's
    continue-as-new chain (its own id for a first run), ``continued_from`` the run it continued
    from (None for a first run). ``history_length`` counts the step slots the thread has taken
    so far, ``history_size_bytes`` the JSON size of the results delivered to it;
    ``continue_as_new_suggested`` is true past 10,000 steps or 20 MB. All are the same on
    replay. ``dimension`` is the thread (``""`` for the main function, a hook's path)."""

    workflow_id: str
    run_id: str
    workflow_name: str
    task_queue: str
    namespace: str
    attempt: int
    scheduled_at: datetime | None = None
    schedule_id: str | None = None
    first_run_id: str = ""
    continued_from: str | None = None
    history_length: int = 0
    history_size_bytes: int = 0
    continue_as_new_suggested: bool = False
    dimension: str = ""


def info() -> WorkflowInfo:
    """The running workflow's ``WorkflowInfo`` (only inside a workflow function)."""
    t = current_thread("workflow.info()")
    config = t.config or {}
    scheduled = config.get("$scheduled_at")
    length, size = t.counter, t.history_size()
    return WorkflowInfo(
        workflow_id=t.ref.workflow_id, run_id=t.ref.run_id, workflow_name=t.name,
        task_queue=t.ref.task_queue, namespace=t.namespace, attempt=t.attempt,
        scheduled_at=None if scheduled is None else datetime.fromisoformat(scheduled),
        schedule_id=config.get("$schedule_id"),
        first_run_id=config.get("$first_run_id") or t.ref.run_id,
        continued_from=config.get("$continued_from"), history_length=length,
        history_size_bytes=size,
        continue_as_new_suggested=length > SUGGEST_STEPS or size > SUGGEST_BYTES,
        dimension=t.ref.dim)
