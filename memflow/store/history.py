"""A run's whole recorded history, for ``handle.fetch_history()`` (and the offline replayer)."""

from __future__ import annotations

from typing import Any

from memflow.store.scope import Part

_STEPS = """SELECT dim, idx, kind, name, status, result, error, seq, attempts, created_at,
       completed_at
  FROM {s}.steps WHERE run_id = %(run_id)s ORDER BY dim, idx"""

_THREADS = """SELECT dim, name, task_queue, args, status, created_at, completed_at
  FROM {s}.threads WHERE run_id = %(run_id)s ORDER BY created_at, dim"""


class HistoryQueries(Part):
    """History statements of a namespace."""

    async def of_run(self, run_id: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Every recorded step of run ``run_id`` (all threads, in thread and index order, with
        the delivery ``seq`` that consumed each) and its hook threads."""
        steps = await self.store.fetch(self.sql(_STEPS), {"run_id": run_id})
        threads = await self.store.fetch(self.sql(_THREADS), {"run_id": run_id})
        return list(steps), list(threads)
