"""Updates (message passing): requests from clients, and the pass statements that admit and
finish them in a run's main thread."""

from __future__ import annotations

from typing import Any

from memflow import commands as durable
from memflow.store.commands import Statement, Thread
from memflow.store.fragments import of_chain
from memflow.store.scope import Part

# The run a message addresses: the latest run of the id, or the given run (archived included),
# followed to the current run of its chain when it has continued as new (``of_chain``).
RUN_OF = f"""run AS (
    SELECT run_id, task_queue, status, priority FROM {{s}}.workflows w
     WHERE workflow_id = %(wid)s AND {of_chain("w", "%(run)s::text")}
    UNION ALL
    SELECT run_id, task_queue, status, priority FROM {{s}}.runs
     WHERE %(run)s::text IS NOT NULL AND run_id = %(run)s AND workflow_id = %(wid)s
    LIMIT 1)"""


def _wake_inbox(rows: str) -> str:
    """CTE ``wk``: wake the main thread of the runs ``rows`` selects (``queue, run_id,
    priority``) for a request, flagging its pass task so that a first pass taken straight
    from the start payload still looks at its inbox; returns the queues, for NOTIFY."""
    return f"""wk AS (
    INSERT INTO {{s}}.tasks (queue, kind, run_id, dim, payload, priority)
    SELECT r.queue, 'w', r.run_id, '', '{{"inbox": true}}'::jsonb, r.priority
      FROM ({rows}) AS r(queue, run_id, priority)
    ON CONFLICT (run_id, dim) WHERE kind = 'w' DO UPDATE
       SET wake = {{s}}.tasks.wake + 1,
           payload = coalesce({{s}}.tasks.payload, '{{}}'::jsonb) || '{{"inbox": true}}'::jsonb
    RETURNING queue)"""


_REQUESTED_RUN = """SELECT run.task_queue, req.run_id, run.priority
      FROM req JOIN run ON run.run_id = req.run_id"""
_FOLLOWED_RUN = """SELECT w.task_queue, w.run_id, w.priority
      FROM moved JOIN {s}.workflows w ON w.run_id = moved.run_id AND w.status = 'running'"""

# Records a request (a rejected one may be sent again under its id: it is requested anew,
# last in line) and wakes the run's main thread (``_wake_inbox``).
_REQUEST = f"""WITH {RUN_OF},
req AS (
    INSERT INTO {{s}}.updates AS u (run_id, update_id, name, args, status)
    SELECT run_id, %(uid)s, %(name)s, %(args)s, 'requested' FROM run WHERE status = 'running'
    ON CONFLICT (run_id, update_id) DO UPDATE
       SET status = 'requested', name = EXCLUDED.name, args = EXCLUDED.args, error = NULL,
           seq = DEFAULT, created_at = {{s}}.clock()
     WHERE u.status = 'rejected'
    RETURNING run_id),
{_wake_inbox(_REQUESTED_RUN)}
SELECT (SELECT run_id FROM run) AS run_id, (SELECT status FROM run) AS run_status,
       (SELECT count(*) FROM req) AS requested,
       (SELECT count(*) FROM (SELECT pg_notify(%(channel)s, 'q:' || queue) FROM wk) n)
         AS notified"""

# A request that reached a run as it continued as new (its statement read the run before the
# hand-over committed, so the hand-over did not move it): move it to the next run, and wake
# that run's main thread as a request does.
_FOLLOW = f"""WITH moved AS (
    UPDATE {{s}}.updates u SET run_id = r.config->>'$continued_to'
      FROM {{s}}.runs r
     WHERE u.run_id = %(run)s AND u.update_id = %(uid)s AND u.status = 'requested'
       AND r.run_id = u.run_id AND r.status = 'continued'
       AND NOT EXISTS (SELECT 1 FROM {{s}}.updates x
                        WHERE x.run_id = r.config->>'$continued_to' AND x.update_id = %(uid)s)
    RETURNING u.run_id),
{_wake_inbox(_FOLLOWED_RUN)}
SELECT (SELECT count(*) FROM moved) AS moved,
       (SELECT count(*) FROM (SELECT pg_notify(%(channel)s, 'q:' || queue) FROM wk) n)
         AS notified"""

_STATE = """SELECT u.status, u.result, u.error, coalesce(w.status, r.status) AS run_status,
       r.config->>'$continued_to' AS continued_to
  FROM (SELECT %(run)s::text AS run_id) k
  LEFT JOIN {s}.updates u ON u.run_id = k.run_id AND u.update_id = %(uid)s
  LEFT JOIN {s}.workflows w ON w.run_id = k.run_id
  LEFT JOIN {s}.runs r ON r.run_id = k.run_id"""

_ACCEPT = """WITH st AS (
    INSERT INTO {s}.steps (run_id, dim, idx, kind, name, status, result, seq, completed_at)
    VALUES (%(run_id)s, %(dim)s, %(idx)s, 'update', %(name)s, 'done',
            jsonb_build_object('update_id', %(uid)s::text, 'args', %(args)s::jsonb),
            %(seq)s, {s}.clock())
    ON CONFLICT DO NOTHING RETURNING 1),
up AS (
    UPDATE {s}.updates SET status = 'accepted', idx = %(idx)s
     WHERE run_id = %(run_id)s AND update_id = %(uid)s AND status = 'requested'
       AND EXISTS (SELECT 1 FROM st)
    RETURNING update_id)
SELECT (SELECT count(*) FROM (SELECT pg_notify(%(channel)s, 'u:' || update_id) FROM up) n)
         AS notified"""

_FINISH = """WITH st AS (
    INSERT INTO {s}.steps (run_id, dim, idx, kind, name, status, result, error, completed_at)
    VALUES (%(run_id)s, %(dim)s, %(idx)s, 'update_done', %(name)s, %(status)s, %(result)s,
            %(error)s, {s}.clock())
    ON CONFLICT DO NOTHING RETURNING 1),
up AS (
    UPDATE {s}.updates
       SET status = CASE WHEN %(status)s = 'done' THEN 'completed' ELSE 'failed' END,
           result = %(result)s, error = %(error)s, completed_at = {s}.clock()
     WHERE run_id = %(run_id)s AND update_id = %(uid)s AND EXISTS (SELECT 1 FROM st)
    RETURNING update_id)
SELECT (SELECT count(*) FROM (SELECT pg_notify(%(channel)s, 'u:' || update_id) FROM up) n)
         AS notified"""


def accept_update(t: Thread, c: durable.AcceptUpdate, channel: str) -> list[Statement]:
    """Record an update's admission into thread ``t`` (its step, consumed by the delivery that
    admitted it) and mark its request accepted, once across replays."""
    return [(_ACCEPT, {"run_id": t.run_id, "dim": t.dim, "idx": c.idx, "name": c.name,
                       "uid": c.update_id, "args": c.args_json, "seq": c.delivery,
                       "channel": channel})]


def finish_update(t: Thread, c: durable.FinishUpdate, channel: str) -> list[Statement]:
    """Record the end of an update's handler and settle the update, once across replays."""
    return [(_FINISH, {"run_id": t.run_id, "dim": t.dim, "idx": c.idx, "name": c.name,
                       "uid": c.update_id, "status": c.status, "result": c.result_json,
                       "error": c.error_json, "channel": channel})]


class UpdateQueries(Part):
    """Update requests of a namespace, as clients and passes see them."""

    async def request(self, workflow_id: str, run_id: str | None, update_id: str, name: str,
                      args_json: str) -> dict[str, Any]:
        """Request an update of the run (latest of the id, or ``run_id``) and wake its main
        thread. Returns ``run_id`` (None: no such run), ``run_status`` and ``requested``
        (0 when the id was requested before and not rejected, or the run is not running)."""
        rows = await self.store.fetch(self.sql(_REQUEST), {
            "wid": workflow_id, "run": run_id, "uid": update_id, "name": name,
            "args": args_json, "channel": self.namespace})
        return rows[0]

    async def state(self, run_id: str, update_id: str) -> dict[str, Any]:
        """The update's ``status`` (None when unknown), ``result``, ``error``, and the status of
        its run (``run_status``)."""
        rows = await self.store.fetch(self.sql(_STATE), {"run": run_id, "uid": update_id})
        return rows[0]

    async def follow(self, run_id: str, update_id: str) -> None:
        """Move request ``update_id``, still waiting on run ``run_id`` that has continued as
        new, to the next run of the chain (a request that raced the hand-over)."""
        await self.store.fetch(self.sql(_FOLLOW), {"run": run_id, "uid": update_id,
                                                   "channel": self.namespace})

    async def requested(self, run_id: str) -> list[dict[str, Any]]:
        """The run's requests not yet accepted nor rejected, in order of arrival."""
        return list(await self.store.fetch(self.sql(
            "SELECT update_id, name, args FROM {s}.updates "
            "WHERE run_id = %(run)s AND status = 'requested' ORDER BY seq"), {"run": run_id}))

    async def reject(self, run_id: str, update_id: str, error_json: str) -> None:
        """A validator refused the request: mark it rejected (nothing enters the history)."""
        await self.store.fetch(self.sql("""WITH r AS (
    UPDATE {s}.updates SET status = 'rejected', error = %(error)s
     WHERE run_id = %(run)s AND update_id = %(uid)s AND status = 'requested'
    RETURNING update_id)
SELECT pg_notify(%(channel)s, 'u:' || update_id) FROM r"""), {
            "run": run_id, "uid": update_id, "error": error_json, "channel": self.namespace})
