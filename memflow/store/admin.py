"""Administration queries: namespace inventory, migration version, counts, and pruning.

Used by the ``memflow db`` and ``memflow list`` commands. Pruning works in small batches, each
its own short transaction that skips rows locked by running work, so it never blocks workers.
"""

from __future__ import annotations

import psycopg

from memflow.store.base import Store, validate_namespace
from memflow.store.scope import Part

FINISHED = ("completed", "failed", "interrupted")
MEMFLOW_TABLES = ("migrations", "workflows", "steps", "tasks")

# Finished runs past their retention (current ones first, then archived old runs of reused
# ids, at most ``limit`` in all), oldest first, with everything they own — except runs
# with a hook thread still running (a workflow started with signal_in=True accepts hooks after
# it completes). Rows are taken FOR UPDATE SKIP LOCKED: a run that a worker or a client holds
# right now waits for the next batch. Child tables are deleted by the run ids the same
# statement removed, so a run whose id was reused meanwhile (a new run_id) is never touched.
# Retention is real time (not the namespace's clock): `memflow db prune` may run on namespaces
# not yet migrated to the version that has the clock.
_PRUNABLE = """status = ANY(%(finished)s) AND completed_at IS NOT NULL
       AND completed_at < now() - %(age)s::float8 * interval '1 second'
       AND NOT EXISTS (SELECT 1 FROM {s}.threads th
                        WHERE th.run_id = w.run_id AND th.status = 'running')"""

_PRUNE_BATCH = f"""WITH victims AS (
    SELECT run_id FROM {{s}}.workflows w
     WHERE {_PRUNABLE}
     ORDER BY completed_at
     LIMIT %(limit)s
       FOR UPDATE SKIP LOCKED),
archived AS (
    SELECT run_id FROM {{s}}.runs w
     WHERE {_PRUNABLE}
     ORDER BY completed_at
     LIMIT %(limit)s - (SELECT count(*) FROM victims)
       FOR UPDATE SKIP LOCKED),
gone_current AS (DELETE FROM {{s}}.workflows w USING victims v WHERE w.run_id = v.run_id
                 RETURNING w.run_id),
gone_archived AS (DELETE FROM {{s}}.runs w USING archived v WHERE w.run_id = v.run_id
                  RETURNING w.run_id),
gone AS (SELECT run_id FROM gone_current UNION ALL SELECT run_id FROM gone_archived),
st AS (DELETE FROM {{s}}.steps WHERE run_id IN (SELECT run_id FROM gone) RETURNING 1),
th AS (DELETE FROM {{s}}.threads WHERE run_id IN (SELECT run_id FROM gone) RETURNING 1),
tk AS (DELETE FROM {{s}}.tasks WHERE run_id IN (SELECT run_id FROM gone) RETURNING 1),
-- a run's update requests go with it (a data-modifying CTE runs unreferenced)
up AS (DELETE FROM {{s}}.updates WHERE run_id IN (SELECT run_id FROM gone))
SELECT (SELECT count(*) FROM gone) AS workflows, (SELECT count(*) FROM st) AS steps,
       (SELECT count(*) FROM th) AS threads, (SELECT count(*) FROM tk) AS tasks"""

# Run ids that own steps, threads or tasks but have no run row any more, current or archived:
# leftovers of runs replaced before runs were archived (older versions), or of a crash.
def _no_run(t: str) -> str:
    return f"""NOT EXISTS (SELECT 1 FROM {{s}}.workflows w WHERE w.run_id = {t}.run_id)
        AND NOT EXISTS (SELECT 1 FROM {{s}}.runs r WHERE r.run_id = {t}.run_id)"""


_ORPHAN_RUNS = f"""
    (SELECT s.run_id FROM {{s}}.steps s WHERE {_no_run("s")} LIMIT %(limit)s)
    UNION
    (SELECT t.run_id FROM {{s}}.threads t WHERE {_no_run("t")} LIMIT %(limit)s)
    UNION
    (SELECT k.run_id FROM {{s}}.tasks k WHERE {_no_run("k")} LIMIT %(limit)s)"""

_PRUNE_ORPHANS = f"""WITH orphan AS ({_ORPHAN_RUNS}),
st AS (DELETE FROM {{s}}.steps WHERE run_id IN (SELECT run_id FROM orphan)
       RETURNING 1),
th AS (DELETE FROM {{s}}.threads WHERE run_id IN (SELECT run_id FROM orphan)
       RETURNING 1),
tk AS (DELETE FROM {{s}}.tasks WHERE run_id IN (SELECT run_id FROM orphan)
       RETURNING 1)
SELECT (SELECT count(*) FROM orphan) AS runs, (SELECT count(*) FROM st) AS steps,
       (SELECT count(*) FROM th) AS threads, (SELECT count(*) FROM tk) AS tasks"""


class AdminQueries(Part):
    """Administration statements of a namespace."""


    async def migration_version(self) -> int:
        """The highest migration applied to this namespace (0 when none)."""
        rows = await self.store.fetch(self.sql(
            "SELECT coalesce(max(version), 0) AS version FROM {s}.migrations"))
        return int(rows[0]["version"]) if rows else 0

    async def status_counts(self) -> dict[str, int]:
        """How many runs the namespace holds in each status."""
        rows = await self.store.fetch(self.sql(
            "SELECT status, count(*) AS n FROM {s}.workflows GROUP BY status ORDER BY status"))
        return {r["status"]: int(r["n"]) for r in rows}

    async def kept_signals(self) -> int:
        """Signals sent that no ``wait_for`` has consumed yet."""
        rows = await self.store.fetch(self.sql("SELECT count(*) AS n FROM {s}.signals"))
        return int(rows[0]["n"]) if rows else 0

    async def count_prunable(self, older_than: float) -> dict[str, int]:
        """What ``prune`` would remove now: finished runs past ``older_than`` seconds, and runs
        whose rows are orphaned (counted up to 1,000,000)."""
        rows = await self.store.fetch(self.sql(f"""SELECT
  (SELECT count(*) FROM {{s}}.workflows w WHERE {_PRUNABLE})
    + (SELECT count(*) FROM {{s}}.runs w WHERE {_PRUNABLE}) AS workflows,
  (SELECT count(*) FROM ({_ORPHAN_RUNS}) o) AS orphan_runs"""), {
            "finished": list(FINISHED), "age": older_than, "limit": 1_000_000})
        return {k: int(v) for k, v in rows[0].items()} if rows else {}

    async def prune_batch(self, older_than: float, limit: int) -> dict[str, int]:
        """Delete up to ``limit`` finished runs older than ``older_than`` seconds, with their
        steps, threads and tasks, in one short transaction; returns what was removed."""
        rows = await self.store.fetch(self.sql(_PRUNE_BATCH), {
            "finished": list(FINISHED), "age": older_than, "limit": limit})
        return {k: int(v) for k, v in rows[0].items()} if rows else {}

    async def prune_orphans_batch(self, limit: int) -> dict[str, int]:
        """Delete the steps, threads and tasks of up to ``limit`` run ids that have no
        workflow row any more (old runs of reused ids); returns what was removed."""
        rows = await self.store.fetch(self.sql(_PRUNE_ORPHANS), {"limit": limit})
        return {k: int(v) for k, v in rows[0].items()} if rows else {}


def database_error_text(exc: BaseException) -> str | None:
    """A short description of ``exc`` if it is a database error (``None`` otherwise)."""
    if isinstance(exc, psycopg.OperationalError):
        return f"database unavailable: {exc}"
    if isinstance(exc, psycopg.Error):
        return f"database error: {exc}"
    return None


async def ping(dsn: str, timeout: float = 5.0) -> str:
    """Connect once to ``dsn`` (giving up after ``timeout`` seconds); returns the server version.

    Raises ``psycopg.OperationalError`` with the driver's reason when the database is unreachable.
    """
    async with await psycopg.AsyncConnection.connect(
            dsn, connect_timeout=max(1, int(timeout)), autocommit=True,
            application_name="memflow-cli") as conn:
        cur = await conn.execute("SHOW server_version")
        row = await cur.fetchone()
        return str(row[0]) if row else "?"


async def memflow_namespaces(store: Store) -> list[str]:
    """The schemas of the database that hold MemFlow tables, by name."""
    rows = await store.fetch(
        """SELECT schemaname FROM pg_catalog.pg_tables WHERE tablename = ANY(%(tables)s)
            GROUP BY schemaname HAVING count(DISTINCT tablename) = %(n)s
            ORDER BY schemaname""", {"tables": list(MEMFLOW_TABLES), "n": len(MEMFLOW_TABLES)})
    return [r["schemaname"] for r in rows]


async def namespace_exists(store: Store, namespace: str) -> bool:
    """True when ``namespace`` already has MemFlow tables (nothing is created)."""
    validate_namespace(namespace)
    rows = await store.fetch(
        """SELECT count(DISTINCT tablename) AS n FROM pg_catalog.pg_tables
            WHERE schemaname = %(ns)s AND tablename = ANY(%(tables)s)""",
        {"ns": namespace, "tables": list(MEMFLOW_TABLES)})
    return bool(rows) and int(rows[0]["n"]) == len(MEMFLOW_TABLES)
