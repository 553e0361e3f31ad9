"""The work queue: claiming tasks with leases, extending and releasing them, completing steps."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from memflow.store.flow import claim_limited
from memflow.store.fragments import live_threads
from memflow.store.scope import Part


@dataclass
class Task:
    """A claimed unit of work: a workflow pass ('w'), an activity ('a') or a due timer ('t')."""

    id: int
    queue: str
    kind: str
    run_id: str
    dim: str
    idx: int | None
    payload: Any
    attempts: int
    wake: int
    now: datetime | None = None  # the engine clock when the task was claimed
    failures: int = 0  # engine failures of the task so far (see poison.py)


@dataclass
class Claimed:
    """What a claim took (``tasks``), and in how many seconds the next rate token of one of
    its limited queues frees (``token_in``, None: no wait)."""

    tasks: list[Task]
    token_in: float | None = None


# The queues of ``%(queues)s`` that have limits (an InitPlan: evaluated once per statement).
_LIMITED = "ARRAY(SELECT queue FROM {s}.queue_limits WHERE queue = ANY(%(queues)s))"

# The claim of every worker, from the queues it believes have no limits: as cheap as a claim
# with no flow control at all. A queue that has limits is skipped even if the worker does not
# know it yet (``flow.claim_limited`` claims its work). ``gate`` is returned as it was: a
# gated first pass claimed here (debounced, or its queue lost its limits) is then admitted.
_CLAIM = f"""UPDATE {{s}}.tasks t
   SET lease_owner = %(owner)s, attempts = t.attempts + 1,
       visible_at = {{s}}.clock() + %(lease)s::float8 * interval '1 second'
 WHERE t.id IN (SELECT id FROM {{s}}.tasks
                 WHERE queue = ANY(%(queues)s) AND visible_at <= {{s}}.clock()
                   AND queue <> ALL({_LIMITED})
                 ORDER BY priority DESC, visible_at LIMIT %(limit)s FOR UPDATE SKIP LOCKED)
RETURNING t.id, t.queue, t.kind, t.run_id, t.dim, t.idx, t.payload, t.attempts, t.wake,
          {{s}}.clock() AS now, t.failures, t.gate"""

# Admit the runs of gated first passes this owner just claimed: they become running.
_ADMIT = """WITH t AS (
    UPDATE {s}.tasks SET gate = false
     WHERE id = ANY(%(ids)s) AND lease_owner = %(owner)s AND gate RETURNING run_id)
UPDATE {s}.workflows w SET status = 'running', updated_at = {s}.clock()
  FROM t WHERE w.run_id = t.run_id AND w.status = 'pending'"""

# When the next task of the queues is due, not counting due work of limited queues that waits
# for a slot (a NOTIFY announces a freed slot, a claim's token_in the next rate token), and
# which of the queues have limits now.
_NEXT_DUE = f"""SELECT extract(epoch FROM min(visible_at) - {{s}}.clock())::float8 AS due,
       {_LIMITED} AS limited
  FROM {{s}}.tasks WHERE queue = ANY(%(queues)s)
   AND (queue <> ALL({_LIMITED}) OR visible_at > {{s}}.clock() OR NOT (kind = 'a' OR gate))"""


class TaskQueries(Part):
    """Queue statements of a namespace."""


    async def claim(self, queues: list[str], owner: str, lease: float, limit: int) -> list[Task]:
        """Lease up to ``limit`` visible tasks of ``queues`` (highest priority first, then
        oldest, skipping locked), within the limits of the queues that have any."""
        return (await self.claim_flow(queues, owner, lease, limit,
                                      (await self.wake_plan(queues))[1])).tasks

    async def claim_flow(self, queues: list[str], owner: str, lease: float, limit: int,
                         limited: list[str]) -> Claimed:
        """``claim``, given which of ``queues`` have limits (``limited``, as last seen by
        ``wake_plan``; when it is out of date, a limited queue is skipped until it is
        refreshed, never claimed from without its limits). Also says when the next rate
        token of a limited queue frees.

        One statement claims from the others, as cheaply as with no flow control; the work
        of the limited ones is claimed by ``flow.claim_limited`` (their limit rows locked,
        slots counted)."""
        out = Claimed([])
        free = [q for q in queues if q not in limited] if limited else queues
        if free:
            rows = await self.store.fetch(self.sql(_CLAIM), {
                "owner": owner, "lease": lease, "queues": free, "limit": limit})
            gated = [r["id"] for r in rows if r.pop("gate")]
            if gated:
                await self.store.fetch(self.sql(_ADMIT), {"ids": gated, "owner": owner})
            out.tasks = [Task(**r) for r in rows]
        room = limit - len(out.tasks)
        if limited and room > 0:
            for r in await claim_limited(self, limited, owner, lease, room):
                token_in = r.pop("token_in")
                if r["id"] is not None:
                    out.tasks.append(Task(**r))
                elif token_in is not None:
                    wait = max(0.0, float(token_in))
                    out.token_in = wait if out.token_in is None else min(out.token_in, wait)
            out.tasks.sort(key=lambda t: t.id)
        return out

    async def wake_plan(self, queues: list[str]) -> tuple[float | None, list[str]]:
        """Seconds until the next task of ``queues`` becomes visible (None when there is none;
        due work of limited queues that waits for a slot or a token does not count), and
        which of the queues have limits now."""
        rows = await self.store.fetch(self.sql(_NEXT_DUE), {"queues": queues})
        due = rows[0]["due"] if rows else None
        limited = sorted(rows[0]["limited"] or []) if rows else []
        return (None if due is None else max(0.0, float(due))), limited

    async def next_due(self, queues: list[str]) -> float | None:
        """Seconds until the next task of ``queues`` becomes visible (see ``wake_plan``)."""
        return (await self.wake_plan(queues))[0]

    async def extend(self, ids: list[int], owner: str, lease: float) -> set[int]:
        """Extend the leases this owner still holds; returns the ids extended. Rows another
        statement has locked right now are skipped this round (never waited on)."""
        sql = self.sql("""UPDATE {s}.tasks
   SET visible_at = {s}.clock() + %(lease)s::float8 * interval '1 second'
 WHERE id IN (SELECT id FROM {s}.tasks WHERE id = ANY(%(ids)s) AND lease_owner = %(owner)s
              ORDER BY id FOR UPDATE SKIP LOCKED) RETURNING id""")
        rows = await self.store.fetch(sql, {"ids": ids, "owner": owner, "lease": lease})
        return {r["id"] for r in rows}

    async def release(self, task: Task, owner: str, delay: float,
                      payload_json: str | None = None) -> None:
        """Give a task back to the queue, visible again after ``delay`` seconds (only while
        this owner still holds it under the same claim)."""
        sql = self.sql("""WITH r AS (
  UPDATE {s}.tasks SET lease_owner = NULL,
         visible_at = {s}.clock() + %(delay)s::float8 * interval '1 second',
         payload = coalesce(%(payload)s::jsonb, payload)
   WHERE id = %(id)s AND lease_owner = %(owner)s AND attempts = %(token)s RETURNING queue)
SELECT pg_notify(%(channel)s, 'q:' || queue) FROM r""")
        await self.store.fetch(sql, {"id": task.id, "owner": owner, "delay": delay,
                                     "token": task.attempts, "payload": payload_json,
                                     "channel": self.namespace})

    async def delete_task(self, task: Task, owner: str) -> None:
        """Remove a task that has nothing left to do (only while this owner holds it)."""
        await self.store.fetch(self.sql(
            "DELETE FROM {s}.tasks WHERE id = %(id)s AND lease_owner = %(owner)s "
            "AND attempts = %(token)s"), {"id": task.id, "owner": owner, "token": task.attempts})

    async def complete_steps(self, items: list[tuple[Task, str, str | None, str | None, bool]],
                             owner: str, lease: float) -> list[dict[str, Any]]:
        """Record step results in one statement: settle each step (if still pending), drop its
        task and wake its thread. A woken thread without a pending pass gets a new pass task,
        leased to ``owner`` when its item has ``hold`` (the caller then runs that pass itself,
        no NOTIFY); other wake-ups are announced by NOTIFY.

        Fenced: an item counts only while ``owner`` still holds its task under the same claim
        and the lease has not lapsed; any other item is ignored (another worker owns that
        step now). ``items`` are (task, status, result, error, hold). Returns one row per
        woken thread: ``run_id``, ``dim``, the pass task's ``id`` and ``wake``, ``held``
        (created leased to ``owner``, for the caller to run), ``idxs``, the steps this
        statement settled, and the thread's ``version`` when held.
        """
        sql = self.sql(_COMPLETE_STEPS)
        rows = await self.store.fetch(sql, {
            "run_ids": [t.run_id for t, *_ in items], "dims": [t.dim for t, *_ in items],
            "idxs": [t.idx for t, *_ in items], "statuses": [i[1] for i in items],
            "results": [i[2] for i in items], "errors": [i[3] for i in items],
            "task_ids": [t.id for t, *_ in items], "tokens": [t.attempts for t, *_ in items],
            "holds": [i[4] for i in items], "owner": owner, "lease": lease,
            "channel": self.namespace})
        return list(rows)

    async def queue_depths(self) -> list[dict[str, Any]]:
        """Tasks per queue and kind, with how many are leased right now.

        Real time (not the namespace's clock): ``memflow db info`` reads namespaces that may
        not be migrated to the version that has the clock."""
        sql = self.sql("""SELECT queue, kind, count(*) AS tasks,
       count(*) FILTER (WHERE lease_owner IS NOT NULL AND visible_at > now()) AS leased
  FROM {s}.tasks GROUP BY queue, kind ORDER BY queue, kind""")
        return list(await self.store.fetch(sql))



_COMPLETE_STEPS = f"""WITH reported AS (
    SELECT * FROM unnest(%(run_ids)s::text[], %(dims)s::text[], %(idxs)s::int[],
                         %(statuses)s::text[], %(results)s::text[], %(errors)s::text[],
                         %(tokens)s::int[], %(holds)s::boolean[])
           AS r(run_id, dim, idx, status, result, error, token, hold)),
owned_tasks AS (
    SELECT t.id FROM {{s}}.tasks t
      JOIN unnest(%(task_ids)s::bigint[], %(tokens)s::int[]) AS k(task_id, token)
        ON t.id = k.task_id AND t.attempts = k.token
     WHERE t.lease_owner = %(owner)s AND t.visible_at > {{s}}.clock()
     ORDER BY t.id FOR UPDATE OF t),
-- ``woken`` joins the steps to ``reported`` (an unnest, whose row count the planner knows) and
-- leaves out the steps of the items that failed the fence (usually none). It never joins
-- ``owned_tasks``: a locking CTE is estimated from the tasks table's statistics (one row while
-- they are fresh), and a join to it becomes a nested loop rescanning it per step (quadratic).
woken AS (
    UPDATE {{s}}.steps s SET status = r.status, result = r.result::jsonb,
           error = r.error::jsonb, completed_at = {{s}}.clock(), attempts = r.token
      FROM reported r
     WHERE s.run_id = r.run_id AND s.dim = r.dim AND s.idx = r.idx AND s.status = 'pending'
       AND NOT (s.run_id, s.dim, s.idx) = ANY(ARRAY(
           SELECT (k.run_id, k.dim, k.idx)
             FROM unnest(%(run_ids)s::text[], %(dims)s::text[], %(idxs)s::int[],
                         %(task_ids)s::bigint[]) AS k(run_id, dim, idx, task_id)
            WHERE k.task_id <> ALL(ARRAY(SELECT id FROM owned_tasks))))
    RETURNING s.run_id, s.dim, s.idx, r.hold),
-- a settled activity frees a slot of its queue when it has limits: NOTIFY it (in RETURNING:
-- the CTE runs unreferenced)
gone AS (DELETE FROM {{s}}.tasks t WHERE id = ANY(ARRAY(SELECT id FROM owned_tasks))
         RETURNING CASE WHEN EXISTS (SELECT 1 FROM {{s}}.queue_limits l WHERE l.queue = t.queue)
                        THEN pg_notify(%(channel)s, 'q:' || t.queue) END),
threads_woken AS (
    SELECT run_id, dim, bool_and(hold) AS hold, array_agg(idx ORDER BY idx) AS idxs
      FROM woken GROUP BY run_id, dim),
pass_tasks AS (
    INSERT INTO {{s}}.tasks (queue, kind, run_id, dim, lease_owner, attempts, visible_at,
                            priority)
    SELECT coalesce(th.task_queue, w.task_queue), 'w', v.run_id, v.dim,
           CASE WHEN v.hold THEN %(owner)s::text END, CASE WHEN v.hold THEN 1 ELSE 0 END,
           {{s}}.clock() + CASE WHEN v.hold THEN %(lease)s::float8 ELSE 0 END * interval '1 second',
           w.priority
      FROM threads_woken v
      {live_threads("v")}
     ORDER BY v.run_id, v.dim
    ON CONFLICT (run_id, dim) WHERE kind = 'w' DO UPDATE SET wake = {{s}}.tasks.wake + 1
    RETURNING id, run_id, dim, queue, wake, lease_owner, (xmax = 0) AS inserted)
SELECT p.id, p.run_id, p.dim, p.queue, p.wake, (p.inserted AND p.lease_owner IS NOT NULL) AS held,
       (SELECT v.idxs FROM threads_woken v WHERE v.run_id = p.run_id AND v.dim = p.dim) AS idxs,
       CASE WHEN p.dim = '' THEN (SELECT version FROM {{s}}.workflows v WHERE v.run_id = p.run_id)
            ELSE (SELECT version FROM {{s}}.threads v
                   WHERE v.run_id = p.run_id AND v.dim = p.dim) END AS version,
       CASE WHEN NOT (p.inserted AND p.lease_owner IS NOT NULL)
            THEN pg_notify(%(channel)s, 'q:' || p.queue) END AS notified,
       {{s}}.clock() AS now
  FROM pass_tasks p"""
