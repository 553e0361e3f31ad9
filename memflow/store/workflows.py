"""Workflow runs: starting, reading, finishing, retrying and interrupting them."""

from __future__ import annotations

from typing import Any

from memflow.store.batch import TickBatcher
from memflow.store.commands import finish_thread, start_workflow
from memflow.store.interrupts import interrupt_sql
from memflow.store.scope import Part, Scope

WORKFLOW_COLUMNS = """workflow_id, run_id, name, task_queue, status, args, result, error,
    entity_type, entity, search, config, attempt, signal_in, parent_id, parent_run_id,
    parent_dim, parent_idx, created_at, updated_at, completed_at, expire_seconds, expire_at"""


START_TRIES = 500  # decisions of one start taken on a stale view (a racing insert) before giving up

# One run by its id: the current row of the workflow id, or an archived run of it.
_RUN_BY_ID = f"""SELECT {WORKFLOW_COLUMNS} FROM {{s}}.workflows
 WHERE workflow_id = %(id)s AND run_id = %(run)s
UNION ALL
SELECT {WORKFLOW_COLUMNS} FROM {{s}}.runs WHERE run_id = %(run)s AND workflow_id = %(id)s
LIMIT 1"""

_OUTCOMES = """SELECT workflow_id, run_id, status, result, error, true AS current,
       config->>'$continued_to' AS continued_to
  FROM {s}.workflows WHERE workflow_id = ANY(%(ids)s)
UNION ALL
SELECT workflow_id, run_id, status, result, error, false AS current,
       config->>'$continued_to' AS continued_to
  FROM {s}.runs WHERE run_id = ANY(%(runs)s)"""


class WorkflowQueries(Part):
    """Workflow statements of a namespace."""

    def __init__(self, scope: Scope):
        super().__init__(scope)
        self._outcomes = TickBatcher(self._outcomes_of)

    async def start(self, params: dict[str, Any]) -> tuple[str, str | None]:
        """Create a run as the id's policies allow, decided by one statement on the id's
        current row (``fragments.start_ctes``). Returns ``("started", run_id)``,
        ``("existing", run_id)`` (a live run, with ``id_conflict_policy="use_existing"``) or
        ``("duplicate", None)``. A start that lost the insert of a new id to a racing start
        decides again, on the winner's row. A new id (the common case) takes one short
        statement that locks nothing; an existing one then the deciding statement."""
        sql, full = start_workflow(params, self.namespace, fresh=True)
        row = (await self.store.fetch(self.sql(sql), full))[0]
        if row["started"] is not None:
            return "started", str(row["started"])
        for _ in range(START_TRIES):
            sql, full = start_workflow(params, self.namespace)
            row = (await self.store.fetch(self.sql(sql), full))[0]
            if row["started"] is not None:
                return "started", str(row["started"])
            if row["old_run_id"] == params["run_id"]:
                return "started", params["run_id"]  # this very start, retried after a reconnect
            if row["action"] == "existing":
                return "existing", str(row["old_run_id"])
            if row["action"] not in ("insert", "stale"):
                return "duplicate", None
        raise RuntimeError(f"start of {params['workflow_id']!r} kept losing races")

    async def start_debounced(self, params: dict[str, Any]) -> str | None:
        """Start a debounced run (``params["debounce"]`` seconds): a run of the id that has
        not started yet (pending: in its debounce window, or waiting for a slot) takes the new
        args and priority, and its window starts again; else a new run starts, pending for the
        window. Returns the run's id; None when a started live run holds the id."""
        for _ in range(2):  # a racing start may create or start the run in between
            rows = await self.store.fetch(self.sql(_DEBOUNCE), params)
            if rows:
                return str(rows[0]["run_id"])
            how, bound = await self.start(params)
            if how != "duplicate":
                return bound
        return None

    async def get(self, workflow_id: str, run_id: str | None = None) -> dict[str, Any] | None:
        """The latest run of ``workflow_id`` (or its run ``run_id``, archived ones included),
        or None."""
        if run_id is None:
            rows = await self.store.fetch(self.sql(
                f"SELECT {WORKFLOW_COLUMNS} FROM {{s}}.workflows WHERE workflow_id = %(id)s"),
                {"id": workflow_id})
        else:
            rows = await self.store.fetch(self.sql(_RUN_BY_ID), {"id": workflow_id, "run": run_id})
        return rows[0] if rows else None

    async def outcome(self, workflow_id: str,
                      run_id: str | None = None) -> dict[str, Any] | None:
        """Just what awaiting a result needs: the run's id, status, result and error — of the
        latest run, or of run ``run_id`` (archived ones included). The reads of one
        event-loop tick (many handles awaiting) share one statement."""
        found: dict[str, Any] | None = await self._outcomes.get((workflow_id, run_id))
        return found

    async def _outcomes_of(self, keys: list[tuple[str, str | None]]
                           ) -> dict[tuple[str, str | None], dict[str, Any]]:
        rows = await self.store.fetch(self.sql(_OUTCOMES), {
            "ids": [k[0] for k in keys], "runs": [k[1] for k in keys if k[1] is not None]})
        latest = {r["workflow_id"]: r for r in rows if r.pop("current")}
        by_run = {(r["workflow_id"], r["run_id"]): r for r in rows}
        found: dict[tuple[str, str | None], dict[str, Any]] = {}
        for key in keys:
            row = latest.get(key[0]) if key[1] is None else by_run.get((key[0], key[1]))
            if row is not None:
                found[key] = row
        return found

    async def children(self, run_id: str) -> list[dict[str, Any]]:
        """The child runs started by ``run_id``."""
        return list(await self.store.fetch(self.sql(
            "SELECT workflow_id, run_id, name, status FROM {s}.workflows "
            "WHERE parent_run_id = %(id)s ORDER BY created_at"), {"id": run_id}))

    async def finish_thread(self, ref: Any, status: str, result_json: str | None,
                            error_json: str | None) -> bool:
        """End a thread: the main one ends its run (dropping its tasks and settling a parent
        that waits for it); a hook thread ends only itself (settling an ``exec_hook``)."""
        sql, params = finish_thread(ref.run_id, ref.dim, status, result_json, error_json,
                                    self.namespace)
        rows = await self.store.fetch(self.sql(sql), params)
        return bool(rows and rows[0]["finished"])

    async def retry_workflow(self, run_id: str, task: Any, owner: str, delay: float) -> None:
        """Count a failed attempt of the workflow function and run it again after ``delay``
        (only while ``owner`` still holds the pass ``task`` under the same claim)."""
        sql = self.sql("""WITH held AS (
    SELECT id FROM {s}.tasks WHERE id = %(task_id)s AND lease_owner = %(owner)s
       AND attempts = %(token)s FOR UPDATE),
a AS (
    UPDATE {s}.workflows SET attempt = attempt + 1, version = version + 1, updated_at = {s}.clock()
     WHERE run_id = %(run_id)s AND status = 'running' AND EXISTS (SELECT 1 FROM held)
    RETURNING run_id)
UPDATE {s}.tasks SET lease_owner = NULL,
       visible_at = {s}.clock() + %(delay)s::float8 * interval '1 second'
 WHERE id IN (SELECT id FROM held) AND EXISTS (SELECT 1 FROM a)""")
        await self.store.fetch(sql, {"run_id": run_id, "task_id": task.id, "owner": owner,
                                     "token": task.attempts, "delay": delay})

    async def interrupt(self, workflow_id: str, error_json: str, descend: bool,
                        expire: float | None, run_id: str | None = None) -> int:
        """Interrupt a live run (and its live descendants) — the latest of ``workflow_id``, or
        only run ``run_id`` if it is still the live one; returns how many runs stopped."""
        rows = await self.store.fetch(self.sql(interrupt_sql(step=False)), {
            "target_id": workflow_id, "target_run": run_id, "descend": descend,
            "ierror": error_json, "expire": expire, "channel": self.namespace})
        return int(rows[0]["stopped"]) if rows else 0

    async def steps(self, run_id: str) -> list[dict[str, Any]]:
        """Every recorded step of a run, in thread and index order."""
        return list(await self.store.fetch(self.sql(
            """SELECT dim, idx, kind, name, status, result, error, created_at, completed_at
                 FROM {s}.steps WHERE run_id = %(id)s ORDER BY dim, idx"""), {"id": run_id}))

    async def list_workflows(self, status: str | None = None, queue: str | None = None,
                             name: str | None = None, limit: int = 50, offset: int = 0,
                             all_runs: bool = False) -> list[dict[str, Any]]:
        """Runs filtered by status, queue and name, newest first: the current run of each
        workflow id, and with ``all_runs`` the earlier ones too (continued as new, replaced
        by a reuse of the id, terminated by ``terminate_existing``)."""
        return list(await self.store.fetch(self.sql(_LIST_ALL if all_runs else _LIST), {
            "status": status, "queue": queue, "name": name, "limit": limit, "offset": offset}))


# A debounced start onto a run that has not started: its first pass is still gated and
# unclaimed (a claim holding the task makes this wait, then find it claimed: no row).
_DEBOUNCE = """WITH t AS (
    UPDATE {s}.tasks t
       SET visible_at = {s}.clock() + %(debounce)s::float8 * interval '1 second',
           payload = jsonb_set(t.payload, '{start,args}', %(args)s::jsonb),
           priority = %(priority)s, ckey = %(concurrency_key)s
      FROM {s}.workflows w
     WHERE w.workflow_id = %(workflow_id)s AND w.status = 'pending' AND t.run_id = w.run_id
       AND t.kind = 'w' AND t.dim = '' AND t.gate AND t.lease_owner IS NULL
    RETURNING t.run_id)
UPDATE {s}.workflows w SET args = %(args)s::jsonb, concurrency_key = %(concurrency_key)s,
       priority = %(priority)s, updated_at = {s}.clock()
  FROM t WHERE w.run_id = t.run_id
RETURNING w.run_id"""

_FILTER = """ WHERE (%(status)s::text IS NULL OR status = %(status)s)
   AND (%(queue)s::text IS NULL OR task_queue = %(queue)s)
   AND (%(name)s::text IS NULL OR name = %(name)s)"""
_PAGE = " ORDER BY created_at DESC, run_id LIMIT %(limit)s OFFSET %(offset)s"
_LIST = f"SELECT {WORKFLOW_COLUMNS} FROM {{s}}.workflows{_FILTER}{_PAGE}"
_LIST_ALL = f"""SELECT * FROM (
    SELECT {WORKFLOW_COLUMNS} FROM {{s}}.workflows{_FILTER}
    UNION ALL
    SELECT {WORKFLOW_COLUMNS} FROM {{s}}.runs{_FILTER}) every_run{_PAGE}"""
