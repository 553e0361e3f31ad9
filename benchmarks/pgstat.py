"""Counting the database's commits around a workload (``pg_stat_database.xact_commit``).

Two caveats, both documented in ``docs/benchmarks.md``:

- ``xact_commit`` counts every committed transaction of the database, from every session,
  read-only ones included. Other sessions' commits are noise; the meter measures the commit rate
  while idle just before the run and subtracts ``idle rate * elapsed``.
- Since PostgreSQL 15 a backend flushes its statistics at most once a second, and an idle
  backend may hold them back up to 10 s. The "after" reading is therefore taken once the
  workload's connections are closed (a backend flushes when it exits).

The meter also counts transaction ids handed out (``pg_current_snapshot()``'s xmax): only
transactions that wrote something get one, and it has no flush lag, but it is cluster-wide.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import psycopg

from benchmarks.common import database_url

_READ = """SELECT (SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()),
                  pg_snapshot_xmax(pg_current_snapshot())::text::bigint"""


@dataclass
class Reading:
    """Commits of the database and the next transaction id, at one moment."""

    at: float
    commits: int
    next_xid: int


class CommitMeter:
    """Measures commits and write transactions of the database across a workload."""

    def __init__(self) -> None:
        self.conn: psycopg.AsyncConnection[Any] | None = None
        self.idle_commit_per_s = 0.0
        self.before: Reading | None = None

    async def read(self) -> Reading:
        """One reading (each query is its own transaction, so the statistics are fresh).

        Every reading is itself one commit; ``start``/``stop`` account for them (±1)."""
        if self.conn is None:
            self.conn = await psycopg.AsyncConnection.connect(
                await database_url(), autocommit=True, application_name="memflow-bench-meter")
        cur = await self.conn.execute(_READ)
        row = await cur.fetchone()
        assert row is not None
        return Reading(time.perf_counter(), int(row[0] or 0), int(row[1]))

    async def start(self, idle_seconds: float = 1.0) -> None:
        """Measure the idle commit rate for ``idle_seconds``, then take the "before" reading."""
        first = await self.read()
        if idle_seconds > 0:
            await asyncio.sleep(idle_seconds)
        second = await self.read()
        own = 1  # the first reading's own commit is not another session's
        self.idle_commit_per_s = max(0.0, (second.commits - first.commits - own)
                                     / max(second.at - first.at, 1e-9))
        self.before = await self.read()

    async def stop(self, settle: float = 0.3) -> dict[str, float]:
        """The "after" reading (call it once the workload's connections are closed)."""
        assert self.before is not None
        await asyncio.sleep(settle)  # let the closed backends exit and flush their statistics
        after = await self.read()
        await self.close()
        elapsed = after.at - self.before.at
        raw = after.commits - self.before.commits - 1
        return {"commits": raw, "elapsed_s": elapsed,
                "commits_net": raw - self.idle_commit_per_s * elapsed,
                "write_xacts": after.next_xid - self.before.next_xid,
                "idle_commit_per_s": self.idle_commit_per_s}

    async def close(self) -> None:
        """Close the meter's own connection."""
        if self.conn is not None:
            await self.conn.close()
            self.conn = None
