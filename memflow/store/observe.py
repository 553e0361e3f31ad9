"""Statements for observability: the trace context of runs, and queue statistics."""

from __future__ import annotations

from typing import Any

from memflow.store.batch import TickBatcher
from memflow.store.scope import Part, Scope


class ObserveQueries(Part):
    """Observability statements of a namespace."""

    def __init__(self, scope: Scope):
        super().__init__(scope)
        self._trace_reads = TickBatcher(self._traces_of)

    async def run_trace(self, run_id: str) -> dict[str, Any] | None:
        """The trace context a run was started under (None when it was not traced). The reads
        of one event-loop tick share one statement."""
        found: dict[str, Any] | None = await self._trace_reads.get(run_id)
        return found

    async def _traces_of(self, run_ids: list[str]) -> dict[str, Any]:
        rows = await self.store.fetch(self.sql(
            "SELECT run_id, trace FROM {s}.workflows WHERE run_id = ANY(%(ids)s) "
            "AND trace IS NOT NULL"), {"ids": run_ids})
        return {r["run_id"]: r["trace"] for r in rows}

    async def queue_stats(self, queues: list[str]) -> list[dict[str, Any]]:
        """Per queue of ``queues``: ``ready`` (visible, unleased or lease run out), ``leased``
        (held by a worker now), ``delayed`` (timers and retries not due yet) and
        ``oldest_ready_s`` (how long the oldest ready task has waited; 0 when none)."""
        sql = self.sql("""SELECT q.queue,
       count(t.id) FILTER (WHERE t.visible_at <= {s}.clock()) AS ready,
       count(t.id) FILTER (WHERE t.visible_at > {s}.clock()
                             AND t.lease_owner IS NOT NULL) AS leased,
       count(t.id) FILTER (WHERE t.visible_at > {s}.clock() AND t.lease_owner IS NULL) AS delayed,
       coalesce(extract(epoch FROM {s}.clock() - min(t.visible_at)
                        FILTER (WHERE t.visible_at <= {s}.clock())), 0)::float8 AS oldest_ready_s
  FROM unnest(%(queues)s::text[]) AS q(queue)
  LEFT JOIN {s}.tasks t ON t.queue = q.queue
 GROUP BY q.queue ORDER BY q.queue""")
        return list(await self.store.fetch(sql, {"queues": queues}))
