"""Queries (message passing): a client's request row, announced by NOTIFY ``y:<queue>`` to the
workers of the run's queue; the worker that claims it answers in the row and NOTIFYs
``a:<query_id>``; the client takes the row. Nothing of it enters the run's history.

A claim older than ``RECLAIM_SECONDS`` whose request is still unanswered (its worker died or
froze) may be claimed by another worker; the asking client announces its request again at
that interval. The first answer is kept, whoever gives it: a query reads and records
nothing, so two answers are the same answer."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import dict_row

from memflow.store.scope import Part
from memflow.store.updates import RUN_OF

_REQUEST = f"""WITH {RUN_OF},
q AS (
    INSERT INTO {{s}}.queries (query_id, run_id, queue, name, args)
    SELECT %(qid)s, run_id, task_queue, %(name)s, %(args)s FROM run RETURNING queue)
SELECT (SELECT run_id FROM run) AS run_id,
       (SELECT count(*) FROM (SELECT pg_notify(%(channel)s, 'y:' || queue) FROM q) n)
         AS notified"""

RECLAIM_SECONDS = 2.0  # an unanswered claim this old is taken over (its worker is gone)

_CLAIM = """UPDATE {s}.queries q SET owner = %(owner)s, claimed_at = now()
 WHERE q.query_id IN (SELECT query_id FROM {s}.queries
                       WHERE queue = ANY(%(queues)s) AND status = 'requested'
                         AND (owner IS NULL
                              OR claimed_at < now() - %(reclaim)s * interval '1 second')
                       ORDER BY created_at LIMIT %(limit)s FOR UPDATE SKIP LOCKED)
RETURNING q.query_id, q.run_id, q.name, q.args,
          (SELECT version FROM {s}.workflows w WHERE w.run_id = q.run_id) AS version,
          (SELECT status FROM {s}.workflows w WHERE w.run_id = q.run_id) AS run_status"""

_ANSWER = """WITH a AS (
    UPDATE {s}.queries SET status = 'answered', result = %(result)s, error = %(error)s
     WHERE query_id = %(qid)s AND status = 'requested' RETURNING query_id)
SELECT pg_notify(%(channel)s, 'a:' || query_id) FROM a"""

# A run's main thread as a query replays it: its function, arguments and whole history, live
# or finished, current or archived (the version is read before the steps, in one snapshot).
_RUN_META = """SELECT workflow_id, run_id, '' AS dim, name, task_queue, args, status, config,
       attempt, version
  FROM {s}.workflows WHERE run_id = %(run_id)s
UNION ALL
SELECT workflow_id, run_id, '' AS dim, name, task_queue, args, status, config, attempt, version
  FROM {s}.runs WHERE run_id = %(run_id)s
LIMIT 1"""

_RUN_STEPS = """SELECT idx, kind, name, status, result, error, seq FROM {s}.steps
 WHERE run_id = %(run_id)s AND dim = '' ORDER BY idx"""


class QueryRequests(Part):
    """Query requests of a namespace: asked by clients, claimed and answered by workers."""

    async def request(self, query_id: str, workflow_id: str, run_id: str | None, name: str,
                      args_json: str) -> str | None:
        """Ask the run (the latest of the id, or ``run_id``) a query; returns its run id, or
        None when there is no such run (nothing is written then)."""
        rows = await self.store.fetch(self.sql(_REQUEST), {
            "qid": query_id, "wid": workflow_id, "run": run_id, "name": name,
            "args": args_json, "channel": self.namespace})
        return rows[0]["run_id"]

    async def take(self, query_id: str, answered_only: bool = False) -> dict[str, Any] | None:
        """Remove the request and return it (``status``, ``result``, ``error``); None if gone
        (or, with ``answered_only``, not answered yet: it is then left in place)."""
        rows = await self.store.fetch(self.sql(
            "DELETE FROM {s}.queries WHERE query_id = %(qid)s "
            "AND (NOT %(answered)s OR status = 'answered') RETURNING status, result, error"),
            {"qid": query_id, "answered": answered_only})
        return rows[0] if rows else None

    async def remind(self, query_id: str) -> None:
        """Announce an unanswered request again (its worker may be gone)."""
        await self.store.fetch(self.sql(
            "SELECT pg_notify(%(channel)s, 'y:' || queue) FROM {s}.queries "
            "WHERE query_id = %(qid)s AND status = 'requested'"),
            {"qid": query_id, "channel": self.namespace})

    async def claim(self, queues: list[str], owner: str, limit: int) -> list[dict[str, Any]]:
        """Take up to ``limit`` unanswered requests of ``queues`` (unclaimed, or claimed over
        ``RECLAIM_SECONDS`` ago), each with the version and status of its run's main thread
        now (None when archived)."""
        return list(await self.store.fetch(self.sql(_CLAIM), {
            "queues": queues, "owner": owner, "limit": limit, "reclaim": RECLAIM_SECONDS}))

    async def answer(self, query_id: str, result_json: str | None,
                     error_json: str | None) -> None:
        """Answer a claimed request (unless another worker answered it first) and tell the
        asking client."""
        await self.store.fetch(self.sql(_ANSWER), {
            "qid": query_id, "result": result_json, "error": error_json,
            "channel": self.namespace})

    async def load_run(self, run_id: str) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
        """The run's main thread (function, arguments, status, version) and its history."""
        params = {"run_id": run_id}

        async def go(conn: psycopg.AsyncConnection[Any]) -> tuple[Any, Any]:
            async with conn.pipeline():
                c1 = conn.cursor(row_factory=dict_row)
                c2 = conn.cursor(row_factory=dict_row)
                await c1.execute(self.sql(_RUN_META), params)
                await c2.execute(self.sql(_RUN_STEPS), params)
            return await c1.fetchone(), await c2.fetchall()
        meta, steps = await self.store.run(go)
        return meta, list(steps)
