"""Reads for the web dashboard: run lists with keyset paging, a run's steps page by page, its
pending waits, queue figures and schedules. Every statement here only reads.

The run list is ordered newest first by ``(created_at, workflow_id)`` and paged by keyset (the
last row shown), never by OFFSET, so page 2,000 costs what page 1 costs. Migration 8 adds the
indexes it needs: ``workflows_recent``, ``workflows_status_recent`` and ``workflows_id_prefix``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class RunFilter:
    """What the run list is narrowed to (``None`` means any)."""

    status: str | None = None
    name: str | None = None
    task_queue: str | None = None
    id_prefix: str | None = None
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True)
class RunCursor:
    """A keyset position in the run list: the last run of the page before."""

    created_at: datetime
    workflow_id: str


@dataclass(frozen=True)
class RunRow:
    """One line of the run list."""

    workflow_id: str
    run_id: str
    name: str
    task_queue: str
    status: str
    created_at: datetime
    completed_at: datetime | None
    attempt: int
    parent_id: str | None


@dataclass(frozen=True)
class ThreadSummary:
    """One thread of a run (the main one has ``dim == ""``): its steps in aggregate."""

    dim: str
    name: str | None
    status: str | None
    steps: int
    pending: int
    failed: int
    first_at: datetime | None
    last_at: datetime | None


@dataclass(frozen=True)
class StepRow:
    """One recorded step; ``attempts`` is what an activity took (so far, while it runs)."""

    dim: str
    idx: int
    kind: str
    name: str | None
    status: str
    result: Any
    error: Any
    created_at: datetime
    completed_at: datetime | None
    attempts: int | None


@dataclass(frozen=True)
class PendingWait:
    """A step a run is blocked on: a signal wait, a hook awaited, a timer or a child."""

    dim: str
    idx: int
    kind: str
    name: str | None
    since: datetime
    due_at: datetime | None


@dataclass(frozen=True)
class QueueRow:
    """Figures of one task queue right now."""

    queue: str
    ready: int
    running: int
    delayed: int
    oldest_ready_at: datetime | None
    completed_recent: int


def _like_prefix(prefix: str) -> str:
    """``prefix`` as a LIKE pattern matching exactly the strings that start with it."""
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"


def _list_runs(table: str) -> str:
    """The run list's page, read from ``table`` (``workflows`` or ``runs``)."""
    return f"""SELECT workflow_id, run_id, name, task_queue, status, created_at, completed_at,
       attempt, parent_id
  FROM {{s}}.{table}
 WHERE (%(status)s::text IS NULL OR status = %(status)s)
   AND (%(name)s::text IS NULL OR name = %(name)s)
   AND (%(queue)s::text IS NULL OR task_queue = %(queue)s)
   AND (%(prefix)s::text IS NULL OR workflow_id LIKE %(prefix)s)
   AND (%(since)s::timestamptz IS NULL OR created_at >= %(since)s)
   AND (%(until)s::timestamptz IS NULL OR created_at < %(until)s)
   AND (%(after_at)s::timestamptz IS NULL
        OR (created_at, workflow_id) < (%(after_at)s::timestamptz, %(after_id)s::text))
 ORDER BY created_at DESC, workflow_id DESC
 LIMIT %(limit)s"""


_LIST_RUNS = _list_runs("workflows")
# Runs that continued as new are never an id's current run: they are listed from ``runs``.
_LIST_CONTINUED = _list_runs("runs")

_THREADS = """WITH agg AS (
    SELECT dim, count(*) AS steps,
           count(*) FILTER (WHERE status = 'pending') AS pending,
           count(*) FILTER (WHERE status = 'failed') AS failed,
           min(created_at) AS first_at, max(coalesce(completed_at, created_at)) AS last_at
      FROM {s}.steps WHERE run_id = %(run_id)s GROUP BY dim)
SELECT coalesce(a.dim, t.dim) AS dim, t.name, t.status, coalesce(a.steps, 0) AS steps,
       coalesce(a.pending, 0) AS pending, coalesce(a.failed, 0) AS failed,
       coalesce(a.first_at, t.created_at) AS first_at,
       coalesce(a.last_at, t.completed_at) AS last_at
  FROM agg a FULL JOIN (SELECT * FROM {s}.threads WHERE run_id = %(run_id)s) t
       ON t.dim = a.dim
 ORDER BY 1"""

_STEPS_PAGE = """SELECT s.dim, s.idx, s.kind, s.name, s.status, s.result, s.error, s.created_at,
       s.completed_at,
       coalesce(s.attempts, (SELECT max(k.attempts) FROM {s}.tasks k
                              WHERE k.run_id = s.run_id AND k.dim = s.dim AND k.idx = s.idx
                                AND k.kind = 'a')) AS attempts
  FROM {s}.steps s
 WHERE s.run_id = %(run_id)s
   AND (%(dim)s::text IS NULL OR s.dim = %(dim)s)
   AND (%(after_dim)s::text IS NULL OR (s.dim, s.idx) > (%(after_dim)s::text, %(after_idx)s::int))
 ORDER BY s.dim, s.idx
 LIMIT %(limit)s"""

_PENDING = """SELECT s.dim, s.idx, s.kind, s.name, s.created_at AS since,
       (SELECT min(k.visible_at) FROM {s}.tasks k
         WHERE k.run_id = s.run_id AND k.dim = s.dim AND k.idx = s.idx
           AND k.kind = 't') AS due_at
  FROM {s}.steps s
 WHERE s.run_id = %(run_id)s AND s.status = 'pending'
   AND s.kind IN ('wait', 'exec_hook', 'sleep', 'exec_child', 'wait_condition', 'update')
 ORDER BY s.created_at, s.dim, s.idx
 LIMIT %(limit)s"""

_QUEUES = """WITH t AS (
    SELECT queue,
           count(*) FILTER (WHERE lease_owner IS NULL AND visible_at <= {s}.clock()) AS ready,
           count(*) FILTER (WHERE lease_owner IS NOT NULL AND visible_at > {s}.clock()) AS running,
           count(*) FILTER (WHERE lease_owner IS NULL AND visible_at > {s}.clock()) AS delayed,
           min(visible_at) FILTER (WHERE lease_owner IS NULL AND visible_at <= {s}.clock())
             AS oldest_ready_at
      FROM {s}.tasks GROUP BY queue),
done AS (
    SELECT task_queue AS queue, count(*) AS completed_recent
      FROM {s}.workflows
     WHERE completed_at IS NOT NULL
       AND completed_at > {s}.clock() - %(window)s::float8 * interval '1 second'
     GROUP BY task_queue)
SELECT coalesce(t.queue, done.queue) AS queue, coalesce(t.ready, 0) AS ready,
       coalesce(t.running, 0) AS running, coalesce(t.delayed, 0) AS delayed,
       t.oldest_ready_at, coalesce(done.completed_recent, 0) AS completed_recent
  FROM t FULL JOIN done ON done.queue = t.queue
 ORDER BY 1"""


class DashboardQueries:
    """The dashboard's reads of one namespace (a thin layer over a ``NamespaceStore``)."""

    def __init__(self, ns: Any):
        self.ns = ns

    async def _fetch(self, template: str, params: Any = None) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = await self.ns.store.fetch(self.ns.sql(template), params)
        return rows

    async def list_runs(self, where: RunFilter, after: RunCursor | None = None,
                        limit: int = 50) -> list[RunRow]:
        """Up to ``limit`` runs matching ``where``, newest first, after the ``after`` run."""
        if not 1 <= limit <= 1000:
            raise ValueError(f"limit must be between 1 and 1000, not {limit!r}")
        rows = await self._fetch(_LIST_CONTINUED if where.status == "continued" else _LIST_RUNS, {
            "status": where.status, "name": where.name, "queue": where.task_queue,
            "prefix": _like_prefix(where.id_prefix) if where.id_prefix else None,
            "since": where.since, "until": where.until,
            "after_at": after.created_at if after else None,
            "after_id": after.workflow_id if after else None, "limit": limit})
        return [RunRow(**r) for r in rows]

    async def run(self, workflow_id: str, run_id: str | None = None) -> dict[str, Any] | None:
        """The full row of the latest run of ``workflow_id``, or of its run ``run_id`` (an
        earlier run included); None when unknown."""
        row: dict[str, Any] | None = await self.ns.workflows.get(workflow_id, run_id)
        return row

    async def children(self, run_id: str) -> list[dict[str, Any]]:
        """The runs ``run_id`` started as children."""
        rows: list[dict[str, Any]] = await self.ns.workflows.children(run_id)
        return rows

    async def threads(self, run_id: str) -> list[ThreadSummary]:
        """The run's threads (main first, then hook threads), with step counts and spans."""
        return [ThreadSummary(**r) for r in await self._fetch(_THREADS, {"run_id": run_id})]

    async def steps(self, run_id: str, dim: str | None = None,
                    after: tuple[str, int] | None = None, limit: int = 500) -> list[StepRow]:
        """Up to ``limit`` steps of the run in (thread, index) order after ``after``; only
        thread ``dim`` when given."""
        if not 1 <= limit <= 20_000:
            raise ValueError(f"limit must be between 1 and 20000, not {limit!r}")
        rows = await self._fetch(_STEPS_PAGE, {
            "run_id": run_id, "dim": dim, "after_dim": after[0] if after else None,
            "after_idx": after[1] if after else None, "limit": limit})
        return [StepRow(**r) for r in rows]

    async def pending_waits(self, run_id: str, limit: int = 200) -> list[PendingWait]:
        """What the run is blocked on now: signal waits, awaited hooks, timers, children."""
        rows = await self._fetch(_PENDING, {"run_id": run_id, "limit": limit})
        return [PendingWait(**r) for r in rows]

    async def kept_signals(self, signal_ids: list[str]) -> dict[str, int]:
        """How many sent-but-unconsumed signals each of ``signal_ids`` has waiting."""
        if not signal_ids:
            return {}
        rows = await self._fetch(
            "SELECT signal_id, count(*) AS n FROM {s}.signals "
            "WHERE signal_id = ANY(%(ids)s) GROUP BY signal_id", {"ids": signal_ids})
        return {r["signal_id"]: int(r["n"]) for r in rows}

    async def status_counts(self) -> dict[str, int]:
        """How many runs the namespace holds in each status."""
        counts: dict[str, int] = await self.ns.admin.status_counts()
        return counts

    async def filter_choices(self, limit: int = 200) -> tuple[list[str], list[str]]:
        """The workflow names and task queues in use (for the filter form's suggestions)."""
        rows = await self._fetch(
            "SELECT DISTINCT name, task_queue FROM {s}.workflows LIMIT %(limit)s",
            {"limit": limit})
        return (sorted({r["name"] for r in rows}), sorted({r["task_queue"] for r in rows}))

    async def queues(self, window: float = 300.0) -> list[QueueRow]:
        """Every queue with tasks or recent completions: ready, running (leased), delayed
        (timers and retries), the oldest ready task, and workflows completed in ``window``."""
        return [QueueRow(**r) for r in await self._fetch(_QUEUES, {"window": window})]

    async def kept_signal_total(self) -> int:
        """Signals sent that no ``wait_for`` has consumed yet (the whole namespace)."""
        count: int = await self.ns.admin.kept_signals()
        return count

    async def schedules(self, limit: int = 500) -> list[dict[str, Any]] | None:
        """The namespace's schedule rows as documents, or None when the namespace has no
        schedules table (the schedules feature is not installed)."""
        exists = await self._fetch("SELECT to_regclass(%(t)s) IS NOT NULL AS ok",
                                   {"t": f'"{self.ns.namespace}".schedules'})
        if not exists or not exists[0]["ok"]:
            return None
        rows = await self._fetch(
            "SELECT to_jsonb(x) AS doc FROM {s}.schedules x LIMIT %(limit)s", {"limit": limit})
        return [r["doc"] for r in rows]
