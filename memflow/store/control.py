"""Cancelling runs, and ending them when their workflow timeout passes.

**Cancellation** is recorded, never inferred. The statement that cancels a run inserts a
*cancel marker* into the history of each of its live threads — a step at slot ``-1`` (no
counter slot is ever negative), kind ``cancel`` — and settles every step those threads wait
on as failed with a ``CancelledError`` document; it drops the run's activity and timer tasks
(abandoned: their results would be ignored, and ``c:<run_id>`` tells the workers running
them), wakes the threads, and does the same, recursively, to the live ``exec_child``
children of the run. The marker is delivered to the thread like any result, with its delivery
number: the engine then cancels whatever the thread still awaits (calls committed by a pass
that raced the cancel included) and remembers that the run was asked to cancel, on every
replay alike. The marker's insert is ``ON CONFLICT DO NOTHING`` and everything else hangs on
it, so cancelling twice is cancelling once, and a finished run is left alone.

**Workflow timeouts** are a task of kind ``x`` created with the run, due at its deadline;
when a worker claims it, one transaction fails the run (status ``timed_out``, tasks dropped,
a waiting parent settled) and cancels its ``exec_child`` children. Continue-as-new re-arms
the task for the next run and takes it back from a worker that had claimed it (its lease
and run id are checked under the task's row lock), so a deadline coming due during the
hand-over times out the next run, never nothing.
"""

from __future__ import annotations

from typing import Any

from psycopg.rows import dict_row

from memflow.store.fragments import (
    NOTIFY_WOKEN,
    SETTLE_PARENT,
    WAKE,
    ended_runs_report,
    of_chain,
)
from memflow.store.scope import Part

CANCEL_MARKER = -1  # the slot of a thread's cancel marker step

# The rows of the runs to cancel (the target's, or the children of ``children_of``, and their
# live exec_child descendants), locked before the cancel statement takes its snapshot: a
# continue-as-new hand-over of one of them (which updates its row) is then either committed
# and seen by the cancel, which cancels the new run, or waits for the cancel, whose version
# bump of the old run makes the hand-over's pass stale (it replays, with the cancel marker in
# its history).
_LOCK_TREE = """WITH RECURSIVE tree AS (
    SELECT run_id FROM {s}.workflows WHERE workflow_id = %(target_id)s
    UNION ALL
    SELECT run_id FROM {s}.workflows WHERE parent_run_id = %(children_of)s
    UNION ALL
    SELECT c.run_id FROM {s}.workflows c JOIN tree ON c.parent_run_id = tree.run_id
     WHERE c.parent_idx IS NOT NULL AND c.status = 'running')
SELECT 1 FROM {s}.workflows WHERE run_id IN (SELECT run_id FROM tree)
   ORDER BY run_id FOR NO KEY UPDATE"""

# The runs to cancel: the target run (or the exec_child children of run ``children_of``),
# with their live exec_child descendants.
_CANCEL = f"""WITH RECURSIVE tree AS (
    SELECT run_id FROM {{s}}.workflows w
     WHERE workflow_id = %(target_id)s AND status = 'running'
       AND {of_chain("w", "%(target_run)s::text")}
    UNION ALL
    SELECT run_id FROM {{s}}.workflows
     WHERE parent_run_id = %(children_of)s AND parent_idx IS NOT NULL AND status = 'running'
    UNION ALL
    SELECT c.run_id FROM {{s}}.workflows c JOIN tree ON c.parent_run_id = tree.run_id
     WHERE c.parent_idx IS NOT NULL AND c.status = 'running'),
live AS (
    SELECT run_id, '' AS dim FROM tree
    UNION ALL
    SELECT th.run_id, th.dim FROM {{s}}.threads th
     WHERE th.run_id IN (SELECT run_id FROM tree) AND th.status = 'running'),
marker AS (
    INSERT INTO {{s}}.steps (run_id, dim, idx, kind, name, status, result, completed_at)
    SELECT run_id, dim, {CANCEL_MARKER}, 'cancel', 'cancel', 'done', %(reason)s::jsonb,
           {{s}}.clock()
      FROM live
    ON CONFLICT DO NOTHING RETURNING run_id, dim),
settled AS (
    UPDATE {{s}}.steps s SET status = 'failed', error = %(cerror)s::jsonb,
           completed_at = {{s}}.clock()
      FROM marker m
     WHERE s.run_id = m.run_id AND s.dim = m.dim AND s.status = 'pending'
       AND s.idx <> {CANCEL_MARKER}
    RETURNING s.run_id),
-- the main thread's history changed under any pass in progress: make it stale
bumped AS (
    UPDATE {{s}}.workflows SET version = version + 1
     WHERE run_id IN (SELECT run_id FROM marker WHERE dim = '')),
dropped AS (
    DELETE FROM {{s}}.tasks t USING marker m
     WHERE t.run_id = m.run_id AND t.dim = m.dim AND t.kind IN ('a', 't')
    RETURNING t.run_id, t.kind),
-- a first pass not claimed yet would build its thread from the start payload without reading
-- the history (and its marker): make it read the history
unstarted AS (
    UPDATE {{s}}.tasks t SET payload = t.payload - 'start'
      FROM marker m
     WHERE t.run_id = m.run_id AND t.dim = m.dim AND t.kind = 'w' AND t.attempts = 0
       AND t.payload ? 'start'
    RETURNING t.run_id, t.dim),
woken AS (SELECT run_id, dim FROM marker EXCEPT SELECT run_id, dim FROM unstarted),
-- a run created pending (not run yet) has no code to clean up: it ends cancelled at once
unborn AS (
    UPDATE {{s}}.workflows SET status = 'cancelled', error = %(rerror)s::jsonb,
           completed_at = {{s}}.clock(), updated_at = {{s}}.clock(),
           expire_at = {{s}}.clock() + expire_seconds * interval '1 second'
     WHERE workflow_id = %(target_id)s AND status = 'pending'
       AND (%(target_run)s::text IS NULL OR run_id = %(target_run)s)
    RETURNING workflow_id, run_id),
unborn_tasks AS (DELETE FROM {{s}}.tasks WHERE run_id IN (SELECT run_id FROM unborn)),
{WAKE.strip()}
SELECT (SELECT count(DISTINCT run_id) FROM marker) + (SELECT count(*) FROM unborn)
         AS cancelled,
       (SELECT count(*) FROM (SELECT pg_notify(%(channel)s, 'd:' || workflow_id)
                                FROM unborn) u) AS notified_done,
       (SELECT count(*) FROM settled) AS settled,
       (SELECT count(*) FROM ({NOTIFY_WOKEN}) n) AS notified,
       (SELECT count(*) FROM (SELECT pg_notify(%(channel)s, 'c:' || run_id)
                                FROM (SELECT DISTINCT run_id FROM dropped
                                       WHERE kind = 'a') a) c) AS told"""

# A run whose deadline task came due: it fails with the timeout (while this worker holds the
# task under its claim and the run is live), its tasks go, and a parent waiting is settled.
_TIME_OUT = f"""WITH held AS (
    SELECT id, run_id FROM {{s}}.tasks WHERE id = %(task_id)s AND lease_owner = %(owner)s
       AND attempts = %(token)s AND run_id = %(run_id)s FOR UPDATE),
fin AS (
    UPDATE {{s}}.workflows SET status = 'timed_out', result = NULL, error = %(error)s::jsonb,
           completed_at = {{s}}.clock(), updated_at = {{s}}.clock(), version = version + 1,
           expire_at = {{s}}.clock() + expire_seconds * interval '1 second'
     WHERE run_id = %(run_id)s AND status = 'running' AND EXISTS (SELECT 1 FROM held)
    RETURNING workflow_id, run_id, parent_run_id, parent_dim, parent_idx, status, result, error,
              signal_in, task_queue),
gone AS (DELETE FROM {{s}}.tasks WHERE run_id = %(run_id)s AND EXISTS (SELECT 1 FROM held)),
{SETTLE_PARENT}{WAKE.strip()}
SELECT {ended_runs_report("timed_out")}"""


def cancel_params(*, reason_json: str, cancel_error_json: str, run_error_json: str | None = None,
                  target_id: str | None = None,
                  target_run: str | None = None, children_of: str | None = None,
                  channel: str) -> dict[str, Any]:
    """The parameters of the cancel statement: the target (a workflow id, optionally one of
    its runs) or the parent whose exec_child children are cancelled; ``run_error_json`` is
    the error a run still ``pending`` (never run) ends with."""
    return {"target_id": target_id, "target_run": target_run, "children_of": children_of,
            "reason": reason_json, "cerror": cancel_error_json, "rerror": run_error_json,
            "channel": channel}


class ControlQueries(Part):
    """Cancellation and workflow timeouts of a namespace."""

    async def cancel(self, workflow_id: str, run_id: str | None, reason_json: str,
                     cancel_error_json: str, run_error_json: str) -> int:
        """Ask the live run of ``workflow_id`` (only run ``run_id`` if given) and its live
        exec_child descendants to cancel (a run still ``pending`` ends ``cancelled`` at once,
        with ``run_error_json``); returns how many runs were newly asked."""
        params = cancel_params(
            reason_json=reason_json, cancel_error_json=cancel_error_json,
            run_error_json=run_error_json,
            target_id=workflow_id, target_run=run_id, channel=self.namespace)

        async def go(conn: Any) -> int:
            async with conn.transaction():
                await conn.execute(self.sql(_LOCK_TREE), params)
                cur = conn.cursor(row_factory=dict_row)
                await cur.execute(self.sql(_CANCEL), params)
                row = await cur.fetchone()
                return int(row["cancelled"]) if row else 0

        cancelled: int = await self.store.run(go)
        return cancelled

    async def time_out(self, task: Any, owner: str, error_json: str, reason_json: str,
                       cancel_error_json: str) -> bool:
        """Fail the run of deadline task ``task`` with ``error_json`` (status ``timed_out``)
        and cancel its exec_child children, in one transaction; False when the run had
        already ended (or the task is no longer this worker's)."""
        timeout_params = {"task_id": task.id, "owner": owner, "token": task.attempts,
                          "run_id": task.run_id, "error": error_json, "channel": self.namespace}
        children = cancel_params(reason_json=reason_json, cancel_error_json=cancel_error_json,
                                 children_of=task.run_id, channel=self.namespace)

        async def go(conn: Any) -> bool:
            async with conn.transaction():
                cur = conn.cursor(row_factory=dict_row)
                await cur.execute(self.sql(_TIME_OUT), timeout_params)
                row = await cur.fetchone()
                ended = bool(row and row["timed_out"])
                if ended:
                    await conn.execute(self.sql(_LOCK_TREE), children)
                    await conn.execute(self.sql(_CANCEL), children)
                return ended

        ended: bool = await self.store.run(go)
        return ended
