"""Schedules: their rows, claiming due ticks, and applying what a tick decided, atomically.

A tick is applied in the transaction that locked its schedule row (``FOR UPDATE``, claimed
with ``SKIP LOCKED`` by the schedulers of every worker): its runs are started, its counters and
next due time advanced, and its other runs terminated, all or nothing. A worker that dies
mid-tick rolls the whole tick back, and the next worker takes it again.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

from memflow.store.fragments import start_ctes, start_params
from memflow.store.interrupts import interrupt_sql
from memflow.store.scope import Part

NOTIFY_KEY = "s:schedules"  # NOTIFY payload when schedules change (wakes the schedulers)
KEEP_RUNS = 200             # finished runs kept per schedule (for describe and idempotency)

_OPEN = "('running', 'pending')"
_RUNNING_OF = f"""ARRAY(SELECT r.workflow_id FROM {{s}}.schedule_runs r
                JOIN {{s}}.workflows w ON w.workflow_id = r.workflow_id
               WHERE r.schedule_id = c.schedule_id AND w.status IN {_OPEN}
               ORDER BY r.scheduled_at)"""
_ROW = f"""c.*, {{s}}.clock() AS db_now, {_RUNNING_OF} AS running,
       (SELECT max(r.scheduled_at) FROM {{s}}.schedule_runs r
         WHERE r.schedule_id = c.schedule_id) AS last_run_at"""
_LOCKED_ROWS = f"""SELECT {_ROW} FROM {{s}}.schedules c WHERE c.schedule_id = ANY(%(ids)s)
 ORDER BY c.fire_at"""


@dataclass
class ScheduleRow:
    """A schedule as stored, with the ids of its open runs and the database's ``now``."""

    schedule_id: str
    spec: dict[str, Any]
    action: dict[str, Any]
    overlap: str
    paused: bool
    note: str | None
    next_at: datetime | None
    fire_at: datetime | None
    buffer: list[datetime]
    skipped: int
    missed: int
    created_at: datetime
    updated_at: datetime
    db_now: datetime
    running: list[str]
    last_run_at: datetime | None


@dataclass
class TickStart:
    """One run to start: the tick's time, its workflow id and the START parameters."""

    scheduled_at: datetime
    workflow_id: str
    params: dict[str, Any]


@dataclass
class ScheduleUpdate:
    """The new state of a schedule row, and what to do in the same transaction."""

    row: ScheduleRow
    starts: list[TickStart] = field(default_factory=list)
    interrupts: list[str] = field(default_factory=list)
    add_skipped: int = 0
    add_missed: int = 0
    notify: bool = False
    cancel: list[str] = field(default_factory=list)  # runs to cancel once committed


Decide = Callable[[ScheduleRow], ScheduleUpdate | None]


class ScheduleQueries(Part):
    """Schedule statements of a namespace."""


    async def db_now(self) -> datetime:
        """The namespace's engine clock (every due time is compared with it)."""
        rows = await self.store.fetch(self.sql("SELECT {s}.clock() AS now"))
        now: datetime = rows[0]["now"]
        return now

    async def create_schedule(self, row: dict[str, Any]) -> bool:
        """Insert a schedule; False when the id is taken."""
        rows = await self.store.fetch(self.sql("""WITH ins AS (
    INSERT INTO {s}.schedules (schedule_id, spec, action, overlap, paused, note, next_at,
                               fire_at)
    VALUES (%(schedule_id)s, %(spec)s, %(action)s, %(overlap)s, %(paused)s, %(note)s,
            %(next_at)s, %(fire_at)s)
    ON CONFLICT DO NOTHING RETURNING schedule_id)
SELECT schedule_id, pg_notify(%(channel)s, %(key)s) FROM ins"""),
            {**row, "channel": self.namespace, "key": NOTIFY_KEY})
        return bool(rows)

    async def get_schedule(self, schedule_id: str) -> ScheduleRow | None:
        """One schedule, or None."""
        rows = await self.store.fetch(self.sql(
            f"SELECT {_ROW} FROM {{s}}.schedules c WHERE c.schedule_id = %(id)s"),
            {"id": schedule_id})
        return ScheduleRow(**rows[0]) if rows else None

    async def list_schedules(self) -> list[ScheduleRow]:
        """Every schedule of the namespace, by id."""
        rows = await self.store.fetch(self.sql(
            f"SELECT {_ROW} FROM {{s}}.schedules c ORDER BY c.schedule_id"))
        return [ScheduleRow(**r) for r in rows]

    async def delete_schedule(self, schedule_id: str) -> bool:
        """Delete a schedule (its runs go on); False when it does not exist."""
        rows = await self.store.fetch(self.sql("""WITH d AS (
    DELETE FROM {s}.schedules WHERE schedule_id = %(id)s RETURNING schedule_id)
SELECT schedule_id, pg_notify(%(channel)s, %(key)s) FROM d"""),
            {"id": schedule_id, "channel": self.namespace, "key": NOTIFY_KEY})
        return bool(rows)

    async def schedule_runs(self, schedule_id: str, limit: int) -> list[dict[str, Any]]:
        """The newest ``limit`` runs of a schedule, oldest first, with their workflow status."""
        rows = await self.store.fetch(self.sql("""SELECT * FROM (
    SELECT r.scheduled_at, r.started_at, r.workflow_id, coalesce(w.status, 'unknown') AS status
      FROM {s}.schedule_runs r LEFT JOIN {s}.workflows w ON w.workflow_id = r.workflow_id
     WHERE r.schedule_id = %(id)s ORDER BY r.scheduled_at DESC LIMIT %(limit)s) x
 ORDER BY scheduled_at"""), {"id": schedule_id, "limit": limit})
        return list(rows)

    async def schedule_wait(self) -> tuple[float | None, list[str]]:
        """Seconds until the next tick of any active schedule is claimable (None: none), and
        the open runs that buffered ticks wait for (their end wakes the scheduler)."""
        rows = await self.store.fetch(self.sql(f"""SELECT
    (SELECT extract(epoch FROM min(fire_at) - {{s}}.clock())::float8
       FROM {{s}}.schedules WHERE NOT paused) AS due,
    ARRAY(SELECT unnest({_RUNNING_OF}) FROM {{s}}.schedules c
           WHERE NOT c.paused AND cardinality(c.buffer) > 0) AS blocking"""))
        due = rows[0]["due"]
        return (None if due is None else max(0.0, float(due))), list(rows[0]["blocking"])

    async def tick_due(self, limit: int, decide: Decide) -> list[tuple[ScheduleUpdate, list[str]]]:
        """Claim up to ``limit`` schedules with a due tick (or a buffered tick whose turn has
        come), skipping those another worker holds, and apply ``decide(row)`` to each in the
        same transaction. Returns each update with the workflow ids it started."""
        sql = self.sql(f"""WITH c AS (
    SELECT * FROM {{s}}.schedules s
     WHERE NOT s.paused
       AND (s.fire_at <= {{s}}.clock()
            OR (cardinality(s.buffer) > 0 AND NOT EXISTS (
                  SELECT 1 FROM {{s}}.schedule_runs r
                    JOIN {{s}}.workflows w ON w.workflow_id = r.workflow_id
                   WHERE r.schedule_id = s.schedule_id AND w.status IN {_OPEN})))
     ORDER BY s.fire_at LIMIT %(limit)s FOR UPDATE SKIP LOCKED)
SELECT {_ROW} FROM c""")
        return await self._locked(sql, {"limit": limit}, decide)

    async def modify_schedule(self, schedule_id: str,
                              decide: Decide) -> tuple[ScheduleUpdate, list[str]] | None:
        """Lock one schedule (waiting for a scheduler that holds it) and apply
        ``decide(row)``; None when the schedule does not exist."""
        sql = self.sql(f"SELECT {_ROW} FROM {{s}}.schedules c "
                     "WHERE c.schedule_id = %(id)s FOR UPDATE")
        done = await self._locked(sql, {"id": schedule_id}, decide)
        return done[0] if done else None

    async def _locked(self, sql: str, params: dict[str, Any],
                      decide: Decide) -> list[tuple[ScheduleUpdate, list[str]]]:
        async def go(conn: psycopg.AsyncConnection[Any]) -> list[tuple[ScheduleUpdate,
                                                                       list[str]]]:
            out = []
            async with conn.transaction():
                async with conn.cursor(row_factory=dict_row) as cur:
                    await cur.execute(sql, params)
                    ids = [r["schedule_id"] for r in await cur.fetchall()]
                    # read again now they are locked: the locking statement's snapshot may
                    # predate the commit of the scheduler that held one just before (its
                    # new run would look absent, and a buffered tick would start beside it)
                    rows = []
                    if ids:
                        await cur.execute(self.sql(_LOCKED_ROWS), {"ids": ids})
                        rows = [ScheduleRow(**r) for r in await cur.fetchall()]
                updates = [u for u in (decide(r) for r in rows) if u is not None]
                if updates:
                    async with conn.pipeline():
                        pending = [(u, await self._apply(conn, u)) for u in updates]
                    for update, cursors in pending:
                        started = []
                        for cur in cursors:
                            row = await cur.fetchone()
                            if row is not None:
                                started.append(str(row["workflow_id"]))
                        out.append((update, started))
            return out
        result: list[tuple[ScheduleUpdate, list[str]]] = await self.store.run(go)
        return result

    async def _apply(self, conn: psycopg.AsyncConnection[Any],
                     u: ScheduleUpdate) -> list[psycopg.AsyncCursor[Any]]:
        """Send the statements of one update (in pipeline mode); the returned cursors yield a
        row per run that really started."""
        ch = self.namespace
        for wf_id in u.interrupts:
            await conn.execute(self.sql(interrupt_sql(step=False)), {
                "target_id": wf_id, "target_run": None, "descend": False, "expire": None,
                "channel": ch,
                "ierror": '{"message": "terminated by its schedule (overlap policy)", '
                          '"code": 410, "type": "MemFlowInterruptedError", "stack": "", '
                          '"throw": true}'})
        cursors = []
        for s in u.starts:
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(self.sql(_START_TICK), {
                **s.params, "schedule_id": u.row.schedule_id, "scheduled_at": s.scheduled_at,
                "channel": ch})
            cursors.append(cur)
        r = u.row
        await conn.execute(self.sql(_UPDATE), {
            "id": r.schedule_id, "spec": _json(r.spec), "action": _json(r.action),
            "overlap": r.overlap, "paused": r.paused, "note": r.note, "next_at": r.next_at,
            "fire_at": r.fire_at, "buffer": r.buffer, "skipped": u.add_skipped,
            "missed": u.add_missed, "notify": u.notify, "channel": ch, "key": NOTIFY_KEY,
            "keep": KEEP_RUNS, "prune": bool(u.starts) and random.random() < 0.05})
        return cursors


def _json(doc: dict[str, Any]) -> str:
    from memflow import payload

    return payload.dumps(doc, "schedule")


_GUARD = """NOT EXISTS (SELECT 1 FROM {s}.schedule_runs
                  WHERE schedule_id = %(schedule_id)s AND scheduled_at = %(scheduled_at)s)"""

# Starts a tick's run (once per tick: the guard and the runs key) and records it.
_START_TICK = f"""WITH {start_ctes(_GUARD)},
rec AS (
    INSERT INTO {{s}}.schedule_runs (schedule_id, scheduled_at, workflow_id, run_id,
                                     started_at)
    SELECT %(schedule_id)s, %(scheduled_at)s, workflow_id, run_id, {{s}}.clock() FROM up
    ON CONFLICT DO NOTHING RETURNING workflow_id)
SELECT rec.workflow_id,
       (SELECT count(*) FROM (SELECT pg_notify(%(channel)s, 'q:' || queue) FROM first_pass) n)
         AS notified
  FROM rec"""

_UPDATE = f"""WITH up AS (
    UPDATE {{s}}.schedules SET spec = %(spec)s, action = %(action)s, overlap = %(overlap)s,
           paused = %(paused)s, note = %(note)s, next_at = %(next_at)s, fire_at = %(fire_at)s,
           buffer = %(buffer)s::timestamptz[],
           skipped = skipped + %(skipped)s, missed = missed + %(missed)s,
           updated_at = {{s}}.clock()
     WHERE schedule_id = %(id)s RETURNING schedule_id),
pruned AS (
    DELETE FROM {{s}}.schedule_runs r
     WHERE %(prune)s AND r.schedule_id = %(id)s
       AND r.scheduled_at < (SELECT scheduled_at FROM {{s}}.schedule_runs
                              WHERE schedule_id = %(id)s
                              ORDER BY scheduled_at DESC OFFSET %(keep)s LIMIT 1)
       AND NOT EXISTS (SELECT 1 FROM {{s}}.workflows w
                        WHERE w.workflow_id = r.workflow_id AND w.status IN {_OPEN}))
SELECT CASE WHEN %(notify)s THEN pg_notify(%(channel)s, %(key)s) END FROM up"""


def tick_start_params(action: dict[str, Any], workflow_id: str, run_id: str,
                      config_json: str) -> dict[str, Any]:
    """The START parameters of a tick's run (``action`` holds its name, queue and args)."""
    return start_params(workflow_id=workflow_id, run_id=run_id, name=action["workflow_name"],
                        task_queue=action["task_queue"],
                        args_json=_json_value(action.get("args") or []),
                        config_json=config_json)


def _json_value(value: Any) -> str:
    from memflow import payload

    return payload.dumps(value, "args")
