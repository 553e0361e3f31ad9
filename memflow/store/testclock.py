"""The SQL of test environments: a movable engine clock, time skips, dropping a namespace.

A namespace's ``{s}.clock()`` (migration 7) is ``now()``. A time-skipping environment redefines
it in its own namespace as ``now()`` plus the skew kept in ``{s}.clock_skew``, and moves time by
raising that skew. A skip happens only while the namespace is idle: no task is visible (ready,
or a lapsed lease), no task is leased (a pass or an activity running) and no schedule tick is
due; the jump goes to the next due task or schedule tick. The check and the jump
run under a SHARE lock on the tasks table, so no claim can slip in between them: a lease is
never taken on the old clock and expired by the jump.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from memflow.store.base import Store, schema_sql, validate_namespace
from memflow.store.schedules import NOTIFY_KEY

_SKIPPING_CLOCK = """CREATE OR REPLACE FUNCTION {s}.clock() RETURNS timestamptz
LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT now() + coalesce((SELECT skew FROM {s}.clock_skew), interval '0') $$"""

_SKEW_ROW = "INSERT INTO {s}.clock_skew DEFAULT VALUES ON CONFLICT DO NOTHING"

_READ = """SELECT extract(epoch FROM coalesce((SELECT skew FROM {s}.clock_skew),
                                             interval '0'))::float8 AS skew"""

_LOCK = "LOCK TABLE {s}.tasks IN SHARE MODE"

# ``limit`` (an absolute time, or NULL) caps the jump; with no due task the jump goes to it.
# Schedule ticks are jump targets only with a limit (``env.sleep``): an automatic skip never
# races through the ticks of an endless schedule, but no skip happens while a tick is due.
_SKIP = """WITH st AS (
    SELECT NOT EXISTS (SELECT 1 FROM {s}.tasks
                        WHERE lease_owner IS NOT NULL OR visible_at <= {s}.clock())
           AND NOT EXISTS (SELECT 1 FROM {s}.schedules
                            WHERE NOT paused AND fire_at <= {s}.clock()) AS idle,
           least((SELECT min(visible_at) FROM {s}.tasks),
                 (SELECT min(fire_at) FROM {s}.schedules
                   WHERE NOT paused AND %(limit)s::timestamptz IS NOT NULL),
                 %(limit)s::timestamptz) AS target,
           {s}.clock() AS now),
up AS (
    UPDATE {s}.clock_skew SET skew = skew + (st.target - st.now)
      FROM st WHERE st.idle AND st.target > st.now
    RETURNING skew)
SELECT st.idle, EXISTS (SELECT 1 FROM up) AS jumped,
       extract(epoch FROM coalesce((SELECT skew FROM up), (SELECT skew FROM {s}.clock_skew),
                                   interval '0'))::float8 AS skew,
       CASE WHEN EXISTS (SELECT 1 FROM up) THEN st.target ELSE st.now END AS clock
  FROM st"""

# Wake the workers of the queues whose tasks the jump made due, and the schedulers.
_NOTIFY_DUE = """SELECT pg_notify(%(channel)s, 'q:' || queue)
  FROM (SELECT DISTINCT queue FROM {s}.tasks WHERE visible_at <= {s}.clock()) due
UNION ALL SELECT pg_notify(%(channel)s, %(schedules_key)s)"""


@dataclass
class Skip:
    """What one skip attempt found: whether the namespace was idle, whether the clock jumped,
    the clock's skew after it (seconds ahead of real time) and the clock's time after it."""

    idle: bool
    jumped: bool
    skew: float
    clock: datetime


class MovableClock:
    """Controls the engine clock of one namespace (a test environment's own)."""

    def __init__(self, store: Store, namespace: str):
        self.store = store
        self.namespace = validate_namespace(namespace)

    def _q(self, template: str) -> str:
        return schema_sql(template, self.namespace)

    async def make_movable(self) -> None:
        """Redefine the namespace's clock as ``now()`` plus a skew that starts at zero."""
        async def go(conn: psycopg.AsyncConnection[Any]) -> None:
            async with conn.transaction():
                await conn.execute(self._q(_SKIPPING_CLOCK))
                await conn.execute(self._q(_SKEW_ROW))
        await self.store.run(go)

    async def skew(self) -> float:
        """Seconds the namespace's clock runs ahead of real time."""
        rows = await self.store.fetch(self._q(_READ))
        return float(rows[0]["skew"])

    async def skip(self, limit: datetime | None = None) -> Skip:
        """If the namespace is idle, jump its clock to the next due task (at most to ``limit``;
        to ``limit`` when nothing is due) and wake the workers of the queues now due."""
        async def go(conn: psycopg.AsyncConnection[Any]) -> Skip:
            async with conn.transaction():
                await conn.execute(self._q(_LOCK))
                cur = await conn.execute(self._q(_SKIP), {"limit": limit})
                row = await cur.fetchone()
                if row is None:  # pragma: no cover - the statement always returns one row
                    raise RuntimeError("time skip: no answer from the database")
                idle, jumped, skew, clock = row
                if jumped:
                    await conn.execute(self._q(_NOTIFY_DUE), {"channel": self.namespace,
                                                             "schedules_key": NOTIFY_KEY})
            return Skip(bool(idle), bool(jumped), float(skew), clock)
        return await self.store.run(go)


async def drop_namespace(store: Store, namespace: str) -> None:
    """Drop a namespace's schema and everything in it (test environments' own namespaces)."""
    await store.fetch(schema_sql("DROP SCHEMA IF EXISTS {s} CASCADE",
                                 validate_namespace(namespace)))
