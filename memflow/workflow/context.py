"""What a workflow can know about itself: ``get_context()`` and deterministic helpers."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from memflow.engine.thread import ThreadRun, current_thread


class WorkflowContext(Mapping[str, Any]):
    """The running workflow's identity and position, as attributes and as a mapping."""

    def __init__(self, thread: ThreadRun):
        self._thread = thread

    def _values(self) -> dict[str, Any]:
        t = self._thread
        return {
            "workflow_id": t.ref.workflow_id,
            "workflow_name": t.name,
            "task_queue": t.ref.task_queue,
            "namespace": t.namespace,
            "run_id": t.ref.run_id,
            "workflow_dimension": t.ref.dim,
            "counter": t.counter,
            "replay": t.replaying,
            "attempt": t.attempt,
            "can_retry": t.ref.dim == "" and t.attempt < int(
                (t.config or {}).get("maximum_attempts", 1)),
            "raw": None,
        }

    def __getitem__(self, key: str) -> Any:
        return self._values()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values())

    def __len__(self) -> int:
        return len(self._values())

    def __getattr__(self, key: str) -> Any:
        try:
            return self._values()[key]
        except KeyError:
            raise AttributeError(key) from None

    def __repr__(self) -> str:
        return f"WorkflowContext({self._values()!r})"


def get_context() -> WorkflowContext:
    """The context of the workflow running now."""
    return WorkflowContext(current_thread("workflow.get_context()"))


def random() -> float:
    """A random float in [0, 1) that is the same on every replay."""
    return current_thread("workflow.random()").random()
